/*
 * front.h — the client's side of a connection, up to a parsed request: the load balancer's
 * PROXY header, the TLS handshake (through the hop's front end), the request head and the
 * small body of a request for the relay itself.
 *
 * Owns: reading from the client before a tunnel (PPHDR, HEAD), the tls.fail and
 * proxyproto.fail lines, keep-alive (what follows a request becomes the next head). Must
 * not touch: what the request means (request.c), the upstream side. Refusals of a head
 * (400, 431) are answered through respond.c.
 */
#ifndef RELAYPRO_FRONT_H
#define RELAYPRO_FRONT_H

#include "conn.h"

/* Move bytes (or TLS records) between the client socket and the client-side buffers until
 * the socket would block; a TLS session that fails before its handshake is done is logged
 * once (tls.fail). 1 on progress, 0 on none, -1 when the connection must end. */
int front_io(struct conn *c);

/* PPHDR: read the PROXY header from the raw socket, never a byte past its end; when it is
 * whole, its source becomes the peer and the state HEAD. May close the connection. */
void front_pphdr(struct conn *c);

/* PPHDR's deadline passed: logged (proxyproto.fail) and closed. */
void front_pphdr_timeout(struct conn *c);

/* HEAD: take client bytes into the head buffer and parse them. 1 when a complete head (and
 * the whole body of a request for the relay itself) is there for request.c; 0 while more
 * is needed, or when the head was refused (400/431 answered) or the client went away
 * (closed). */
int front_read_head(struct conn *c);

/* After a keep-alive answer: what followed the request becomes the next head (HEAD). */
void front_next_request(struct conn *c);

#endif

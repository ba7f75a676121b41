/*
 * tunnel.h — the tunnel: its start (the 200 or 101, tunnel.open), the bytes of an
 * absolute-form request rewritten for the upstream, one round of relaying and the
 * end-of-stream rules (docs/protocol.md: half-close on the plain listener; on TLS a close_notify
 * is a full close, an upstream EOF is flushed and followed by close_notify).
 *
 * Owns: the TUNNEL state of CONNECT and absolute-form tunnels, the raw pump's use (hop.c),
 * the idle bookkeeping (last_io) and the tunnel's row in the session table (opened here,
 * kept current after each round that moved bytes: sessions.h). WebSocket tunnels and UDP
 * associations share the start and the TUNNEL state; their framing and closing rules are
 * wstunnel.c's (and udptunnel.c's for datagrams). Must not touch: admission,
 * dialing, the tunnel.close line (conn_free writes it, once).
 */
#ifndef RELAYPRO_TUNNEL_H
#define RELAYPRO_TUNNEL_H

#include "conn.h"

/* Absolute-form: rewrite the head in origin-form for the upstream, in place: request line
 * with the path only, Host from the URI's authority (RFC 9112 §3.2.2), Proxy-Authorization,
 * Proxy-Connection and hop-by-hop fields removed, "Connection: close" appended; pipelined
 * bytes follow. It becomes the front end's prefix (sent upstream first), and the tunnel
 * carries exactly one request: the head, then the body its Content-Length or chunked
 * framing declares (body.h); what the client sends after it is read and dropped, never
 * forwarded (a framing error closes the connection). ERR_OK, ERR_NOSPACE when it does not
 * fit the head buffer (431), ERR_INVAL when the body has no reliable length (admission
 * refuses such heads first). */
int tunnel_forward_head(struct conn *c, const struct http_target *t);

/* The upstream is reached: answer 200 (CONNECT) or 101 (WebSocket, wstunnel.c), log
 * tunnel.open, enter TUNNEL. Bytes the client sent after its head go upstream first. */
void tunnel_start(struct conn *c);

/* One round of TUNNEL after the client's I/O (moved: it moved bytes): the upstream end's
 * records, the pump, the end-of-stream rules; the tunnel is not idle when anything moved.
 * Returns 1 when the pump moved anything. May close the connection. */
int tunnel_step(struct conn *c, int moved);

#endif

/*
 * wstunnel.h — WebSocket tunnels (GET /v1/tunnel, RFC 6455 server side): the same TUNNEL
 * state as a CONNECT tunnel, the client's bytes in frames.
 *
 * Owns: the 101 answer, the frame adapter on the one pump (hop.h: client frames decoded
 * and unmasked in place, upstream bytes framed in the send buffer 4 bytes in, the header
 * written in front), control frames (ping answered with pong, close echoed), the ws.error
 * line, the closing rules (a close frame — 1000 on upstream EOF, the client's status
 * echoed, 1002/1003/1007/1009 for bad frames, 1011 when the upstream fails — then
 * CLOSING). Must not touch: the frame syntax itself (ws.c, pure), admission of the
 * handshake (admit.c), sockets other than through the hop.
 */
#ifndef RELAYPRO_WSTUNNEL_H
#define RELAYPRO_WSTUNNEL_H

#include "conn.h"

/* The upstream is reached: queue the 101 (Sec-WebSocket-Accept from the head's key), put
 * the frame adapter on the pump; frames the client sent with its head are decoded first.
 * ERR_OK, or an error when the answer cannot be queued. */
int wstunnel_start(struct conn *c);

/* One round of a WebSocket tunnel: the pump through the frame adapter, then the closing
 * rules. Returns 1 when anything moved. May close the connection. */
int wstunnel_step(struct conn *c);

#endif

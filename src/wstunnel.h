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
 * rules. Returns 1 when anything moved. May close the connection. UDP associations
 * (udptunnel.c) run through it too, with their own adapter on the pump. */
int wstunnel_step(struct conn *c);

/* For another frame adapter on the same client frames (udptunnel.c, whose messages are
 * datagrams), the steps ws_in and ws_out are made of: */

/* 1 once a close frame is owed, sent or received, or the upstream side is finished: no
 * more data either way. */
int wstunnel_closing(const struct conn *c);

/* While ws_rx.left is 0: take header bytes from b[0..len) (the front's receive view),
 * acked on the front. A complete control frame without payload is acted on; a broken
 * frame queues its close (wstunnel_fail). Returns ws_rx_header's code (WS_OK: a header is
 * complete, ws_rx describes the frame). */
int wstunnel_rx_header(struct conn *c, const unsigned char *b, size_t len);

/* While a control frame's payload comes: unmask and take it from b[0..len), acked on the
 * front; the frame is acted on once whole (ping: a pong owed; close: echoed, the upstream
 * side ended). */
void wstunnel_rx_control(struct conn *c, unsigned char *b, size_t len);

/* Queue a close frame with this status (ws.error logged with why) and read no more frames. */
void wstunnel_fail(struct conn *c, unsigned code, const char *why);

/* Write the control frames that are owed (pong, then close) into the front's send buffer,
 * as far as it has room; *progress set when any was. Call it only between whole data
 * frames. Returns 1 when data may flow to the client (nothing owed, no close either way). */
int wstunnel_tx_control(struct conn *c, int *progress);

#endif

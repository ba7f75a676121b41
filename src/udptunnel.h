/*
 * udptunnel.h — UDP associations (GET /v1/udp?target=host:port): a WebSocket tunnel whose
 * messages are datagrams, to and from one connected UDP socket.
 *
 * Owns: the association's datagram buffers, the frame adapter that keeps message
 * boundaries on the one pump (hop.h; the upstream end is a datagram end), the 65,507-byte
 * limit (more: close 1009), the datagram counts (tunnel.close, metrics) and what is
 * dropped. Must not touch: the handshake and its admission (admit.c), the WebSocket
 * control frames and closing rules (wstunnel.c: the same as for /v1/tunnel), the frame
 * syntax (ws.c), sockets other than through the hop.
 *
 * One WebSocket binary message (a frame, or fragments with control frames between them)
 * is one datagram to the target, sent whole once the message is complete; each datagram
 * the target sends comes back as one binary frame. A message whose whole payload arrived
 * in the front's receive view (BearSSL's decrypted record, the plain buffer) is sent from
 * there, unmasked in place; a longer or fragmented one is gathered in up[]. A datagram
 * from the target is read into down[] and framed into the front's send buffer as it has
 * room, a header then the payload, so one datagram of 65,535 bytes crosses 16 KiB TLS
 * records. Memory: the two buffers, UDPT_BYTES in one allocation at the 101, once per
 * association, freed by conn_free; nothing per datagram.
 *
 * Back-pressure, and what is dropped: a message from the client waits in place (or in
 * up[]) while the socket cannot take it (EAGAIN), and the client's further frames are not
 * read meanwhile (TCP holds them): nothing is dropped for a slow target. A send the
 * socket refuses otherwise (ECONNREFUSED after an ICMP port unreachable, ENOBUFS,
 * EMSGSIZE ...) drops that one datagram: counted (dropped_up). From the target, one
 * datagram waits in down[] until the client has taken it; meanwhile the socket is not
 * read, datagrams queue in the kernel's receive buffer, and past it the kernel drops
 * them: counted as the kernel reports them (dropped_down, SO_RXQ_OVFL).
 */
#ifndef RELAYPRO_UDPTUNNEL_H
#define RELAYPRO_UDPTUNNEL_H

#include "conn.h"

#define UDPT_DGRAM_MAX 65507 /* the longest datagram a client may send (UDP over IPv4) */
#define UDPT_RECV_MAX 65535  /* room for the longest datagram the target may send */

/* The upstream end is a datagram end (dial.c): allocate the association's buffers, queue
 * the 101 (wstunnel_start) and put the datagram adapter on the pump. ERR_OK, or an error
 * (no memory, the 101 did not fit): the caller closes the connection. */
int udptunnel_start(struct conn *c);

#endif

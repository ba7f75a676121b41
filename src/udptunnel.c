/*
 * udptunnel.c — UDP associations: WebSocket messages as datagrams on the one pump. See
 * udptunnel.h.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hop.h"
#include "metrics.h"
#include "udptunnel.h"
#include "ws.h"
#include "wstunnel.h"

/* The association's buffers and the state of the datagram in each direction. */
struct udpt {
	uint32_t up_len;        /* payload of the message gathered in up[] so far */
	uint32_t down_len;      /* the datagram in down[] (while down_busy) */
	uint32_t down_off;      /* bytes of its frame (header, then payload) queued so far */
	uint32_t drops_seen;    /* the kernel's drop count already added to the metrics */
	uint8_t up_whole;       /* up[0..up_len) is a whole message waiting for the socket */
	uint8_t down_busy;      /* down[] holds a datagram not yet all queued for the client */
	uint8_t hlen;           /* its frame header, hdr[0..hlen) */
	unsigned char hdr[4];
	unsigned char up[UDPT_DGRAM_MAX];
	unsigned char down[UDPT_RECV_MAX];
};

/* Client -> target: the next whole message, as one datagram's bytes. In place when its one
 * frame is whole in the receive view (c->ws_ready bytes at the view's start, unmasked);
 * else gathered in up[]. Control frames and closing are wstunnel.c's. */
static unsigned char *
udp_in(void *ctx, size_t *len, int *progress)
{
	struct conn *c = ctx;
	struct udpt *u = c->udpt;
	struct hop_end *f = &c->hop.front;
	unsigned char *b;
	size_t avail, n;

	if (u->up_whole) {
		*len = u->up_len;
		return u->up;
	}
	while ((b = hop_rbuf(f, &avail)) != NULL) {
		if (c->ws_ready) {
			*len = c->ws_ready;
			return b;
		}
		*progress = 1;
		if (wstunnel_closing(c)) {
			hop_rack(f, avail); /* closing: what follows is dropped, never parsed */
			continue;
		}
		if (c->ws_rx.left == 0) {
			if (wstunnel_rx_header(c, b, avail) != WS_OK || (c->ws_rx.opcode & 8))
				continue;
			/* a data frame: the message may not grow past the datagram limit */
			if (u->up_len + c->ws_rx.left > UDPT_DGRAM_MAX) {
				wstunnel_fail(c, WS_CLOSE_TOO_BIG, "datagram over 65507 bytes");
				continue;
			}
			if (c->ws_rx.left == 0 && c->ws_rx.fin) { /* an empty last frame */
				u->up_whole = 1;
				*len = u->up_len;
				return u->up;
			}
			continue;
		}
		if (c->ws_rx.opcode & 8) {
			wstunnel_rx_control(c, b, avail);
			continue;
		}
		if (u->up_len == 0 && c->ws_rx.fin && c->ws_rx.left <= avail) {
			c->ws_ready = (uint32_t)ws_rx_unmask(&c->ws_rx, b, avail); /* whole, in place */
			*len = c->ws_ready;
			return b;
		}
		n = ws_rx_unmask(&c->ws_rx, b, avail);
		memcpy(u->up + u->up_len, b, n); /* the check above: up_len + n <= UDPT_DGRAM_MAX */
		u->up_len += (uint32_t)n;
		hop_rack(f, n);
		if (c->ws_rx.left == 0 && c->ws_rx.fin) {
			u->up_whole = 1;
			*len = u->up_len;
			return u->up;
		}
	}
	return NULL;
}

/* The message udp_in gave is done with: sent (the pump counted its bytes) or dropped. */
static void
udp_taken(struct conn *c)
{
	struct udpt *u = c->udpt;

	if (u->up_whole) {
		u->up_whole = 0;
		u->up_len = 0;
	} else {
		hop_rack(&c->hop.front, c->ws_ready);
		c->ws_ready = 0;
	}
}

static void
udp_in_ack(void *ctx, size_t n)
{
	struct conn *c = ctx;

	(void)n; /* a datagram goes whole or not at all */
	udp_taken(c);
	c->udp_up++;
	metrics_udp(1, 0);
}

/* Queue what is left of the datagram in down[] (its frame header, then its payload) into
 * the front's send buffer, as far as it has room. 1 once all of it is queued. */
static int
udp_push(struct conn *c, int *progress)
{
	struct udpt *u = c->udpt;
	size_t total = u->hlen + (size_t)u->down_len, room, k, n;
	unsigned char *b;

	while (u->down_off < total && (b = hop_wbuf(&c->hop.front, &room)) != NULL) {
		for (k = 0; k < room && u->down_off < total; k += n) {
			if (u->down_off < u->hlen) {
				b[k] = u->hdr[u->down_off++];
				n = 1;
				continue;
			}
			n = total - u->down_off < room - k ? total - u->down_off : room - k;
			memcpy(b + k, u->down + (u->down_off - u->hlen), n);
			u->down_off += (uint32_t)n;
		}
		hop_wack(&c->hop.front, k);
		*progress = 1;
	}
	if (u->down_off < total)
		return 0;
	u->down_busy = 0;
	return 1;
}

/* Target -> client: finish the datagram in down[] first (a control frame must not cut a
 * frame in two), then the control frames owed, then down[] for the next datagram. */
static unsigned char *
udp_out(void *ctx, size_t *room, int *progress)
{
	struct conn *c = ctx;
	struct udpt *u = c->udpt;

	if (u->down_busy && !udp_push(c, progress))
		return NULL;
	if (!wstunnel_tx_control(c, progress))
		return NULL;
	*room = UDPT_RECV_MAX;
	return u->down;
}

/* One datagram of n bytes was read into down[]: frame it for the client. */
static void
udp_out_ack(void *ctx, size_t n)
{
	struct conn *c = ctx;
	struct udpt *u = c->udpt;
	uint32_t drops = c->hop.up.drops;
	int progress = 0;

	u->down_len = (uint32_t)n;
	u->hlen = (uint8_t)ws_frame_header(u->hdr, sizeof u->hdr, WS_OP_BINARY, n);
	u->down_off = 0;
	u->down_busy = 1;
	c->udp_down++;
	metrics_udp(0, 1);
	if (drops != u->drops_seen) { /* the kernel dropped some while we did not read */
		metrics_udp_dropped(0, drops - u->drops_seen);
		u->drops_seen = drops;
	}
	(void)udp_push(c, &progress);
}

/* The socket refused a send: that datagram is dropped (counted), the association goes on.
 * A read error is the kernel reporting an ICMP error (port unreachable) on receive:
 * nothing was lost. */
static void
udp_up_fail(void *ctx, int writing, const char *why)
{
	struct conn *c = ctx;

	(void)why;
	if (!writing)
		return;
	udp_taken(c);
	c->udp_drop_up++;
	metrics_udp_dropped(1, 0);
}

/* Read the socket while down[] is free; write it while a whole message waits. */
static void
udp_wants(const void *ctx, int *read_up, int *write_up)
{
	const struct conn *c = ctx;
	const struct udpt *u = c->udpt;

	*read_up = *write_up = 0;
	if (wstunnel_closing(c))
		return;
	*read_up = !u->down_busy;
	*write_up = u->up_whole || c->ws_ready > 0;
}

static const struct hop_frame udp_frame = { udp_in, udp_in_ack, udp_out, udp_out_ack,
	udp_up_fail, udp_wants };

/* see udptunnel.h */
int
udptunnel_start(struct conn *c)
{
	int rc;

	c->udpt = malloc(sizeof *c->udpt); /* freed by conn_free */
	if (c->udpt == NULL)
		return ERR_IO;
	memset(c->udpt, 0, offsetof(struct udpt, up)); /* the buffers stay untouched */
	rc = wstunnel_start(c);
	if (rc != ERR_OK)
		return rc;
	c->hop.frame = &udp_frame;
	return ERR_OK;
}

/*
 * wstunnel.c — WebSocket tunnels: the frame adapter on the one pump, control frames,
 * closing. See wstunnel.h.
 *
 * Zero-copy as for CONNECT: client payload is unmasked in place in the receive buffer
 * (BearSSL's decrypted input, the plain buffer, or the prefix after the head) and written
 * upstream from there; upstream bytes are read into the client-side send buffer
 * WS_DOWN_HDR bytes in and the frame header is written in front (a frame under 126 bytes
 * has a 2-byte header, so those bytes move down by 2). Relay frames hold at most 65,535
 * bytes, so a header is never longer than 4 bytes.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "hop.h"
#include "http.h"
#include "log.h"
#include "respond.h"
#include "ws.h"
#include "wstunnel.h"

#define WS_DOWN_HDR 4 /* upstream bytes are read this far into the send buffer (the header
                       * of a frame of at most 65535 bytes goes in front of them) */

/* see wstunnel.h */
void
wstunnel_fail(struct conn *c, unsigned code, const char *why)
{
	struct log_rec r;

	if (log_begin(&r, LOG_WARN, "ws.error")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "user", c->who);
		log_str(&r, "reason", why);
		log_int(&r, "close", code);
		log_end(&r);
	}
	c->ws_code = (uint16_t)code;
	c->ws_close_due = 1;
	c->ws_ready = 0;
}

/* The upstream side is finished (client close, or an upstream error). */
static void
ws_up_done(struct conn *c)
{
	if (c->hop.up.fd >= 0 && !c->ws_up_dead) {
		if (c->hop.up.eng)
			hop_shutdown(&c->hop.up); /* close_notify to an https:// proxy first */
		shutdown(c->hop.up.fd, SHUT_RDWR);
	}
	c->ws_up_dead = 1;
	c->ws_ready = 0;
}

/* A control frame is complete in ws_ctl[0..ws_ctl_len). */
static void
ws_control(struct conn *c)
{
	unsigned code;
	int rc;

	switch (c->ws_rx.opcode) {
	case WS_OP_PING: /* answered with the same payload; a newer ping replaces an unsent pong */
		memcpy(c->ws_pong, c->ws_ctl, c->ws_ctl_len);
		c->ws_pong_len = c->ws_ctl_len;
		c->ws_pong_due = 1;
		break;
	case WS_OP_CLOSE:
		rc = ws_close_check(c->ws_ctl, c->ws_ctl_len, &code);
		if (rc != WS_OK) {
			wstunnel_fail(c, ws_close_code(rc), ws_str(rc));
			break;
		}
		/* Echo the status, and the console's connection ends now. */
		c->ws_close_rcvd = 1;
		c->ws_code = code == WS_CLOSE_NO_STATUS ? 0 : (uint16_t)code;
		c->ws_close_due = 1;
		ws_up_done(c);
		break;
	default: /* pong: nothing to do */
		break;
	}
}

/* see wstunnel.h */
int
wstunnel_closing(const struct conn *c)
{
	return c->ws_close_due || c->ws_close_sent || c->ws_close_rcvd || c->ws_up_dead;
}

/* see wstunnel.h */
int
wstunnel_rx_header(struct conn *c, const unsigned char *b, size_t len)
{
	size_t used;
	int rc = ws_rx_header(&c->ws_rx, b, len, &used);

	hop_rack(&c->hop.front, used);
	if (rc == WS_OK) {
		c->ws_ctl_len = 0;
		if (c->ws_rx.left == 0 && (c->ws_rx.opcode & 8))
			ws_control(c);
	} else if (rc != WS_MORE) {
		wstunnel_fail(c, ws_close_code(rc), ws_str(rc));
	}
	return rc;
}

/* see wstunnel.h */
void
wstunnel_rx_control(struct conn *c, unsigned char *b, size_t len)
{
	size_t n = ws_rx_unmask(&c->ws_rx, b, len);

	memcpy(c->ws_ctl + c->ws_ctl_len, b, n); /* left <= 125 - ws_ctl_len */
	c->ws_ctl_len = (uint8_t)(c->ws_ctl_len + n);
	hop_rack(&c->hop.front, n);
	if (c->ws_rx.left == 0)
		ws_control(c);
}

/* The frame adapter (hop.h), client side: decode frames from the front's bytes (what was
 * pipelined after the head first: the end's prefix), unmask data in place and hand it to
 * the pump; control frames are taken here. Both buffers are ours to write. */
static unsigned char *
ws_in(void *ctx, size_t *len, int *progress)
{
	struct conn *c = ctx;
	struct hop_end *f = &c->hop.front;
	unsigned char *b;

	while ((b = hop_rbuf(f, len)) != NULL) {
		if (c->ws_ready) {
			if (*len > c->ws_ready)
				*len = c->ws_ready;
			return b;
		}
		*progress = 1;
		if (wstunnel_closing(c))
			hop_rack(f, *len); /* closing: what follows is dropped, never parsed */
		else if (c->ws_rx.left == 0)
			wstunnel_rx_header(c, b, *len);
		else if (c->ws_rx.opcode & 8)
			wstunnel_rx_control(c, b, *len);
		else
			c->ws_ready = ws_rx_unmask(&c->ws_rx, b, *len); /* at the start of b */
	}
	return NULL;
}

static void
ws_in_ack(void *ctx, size_t n)
{
	struct conn *c = ctx;

	c->ws_ready -= n;
	hop_rack(&c->hop.front, n);
}

/* see wstunnel.h */
int
wstunnel_tx_control(struct conn *c, int *progress)
{
	struct hop_end *f = &c->hop.front;
	unsigned char *b;
	size_t r;

	while (!c->ws_close_sent && (c->ws_pong_due || c->ws_close_due)) {
		unsigned op = c->ws_pong_due ? WS_OP_PONG : WS_OP_CLOSE;
		size_t plen = op == WS_OP_PONG ? c->ws_pong_len : c->ws_code ? 2 : 0;
		b = hop_wbuf(f, &r);
		if (b == NULL || r < 2 + plen)
			return 0;
		ws_frame_header(b, r, op, plen);
		if (op == WS_OP_PONG) {
			memcpy(b + 2, c->ws_pong, plen);
			c->ws_pong_due = 0;
		} else {
			b[2] = (unsigned char)(c->ws_code >> 8);
			b[3] = (unsigned char)c->ws_code;
			c->ws_close_due = 0;
			c->ws_close_sent = 1;
		}
		hop_wack(f, 2 + plen);
		*progress = 1;
	}
	return !wstunnel_closing(c);
}

/* Upstream -> client: control frames first (pong, close; a close 1000 once the upstream
 * ended), then room for upstream bytes WS_DOWN_HDR into the send buffer, at most one
 * frame of 65535 bytes, the header written in front by ws_out_ack. */
static unsigned char *
ws_out(void *ctx, size_t *room, int *progress)
{
	struct conn *c = ctx;
	unsigned char *b;
	size_t r;

	while (wstunnel_tx_control(c, progress)) {
		if (c->hop.up_eof) { /* the console closed: tell the client, normally */
			c->ws_code = WS_CLOSE_NORMAL;
			c->ws_close_due = 1;
			continue;
		}
		b = hop_wbuf(&c->hop.front, &r);
		if (b == NULL || r <= WS_DOWN_HDR)
			return NULL;
		*room = r - WS_DOWN_HDR < 0xffff ? r - WS_DOWN_HDR : 0xffff;
		return b + WS_DOWN_HDR;
	}
	return NULL;
}

/* n upstream bytes are at WS_DOWN_HDR: put the frame header in front of them. */
static void
ws_out_ack(void *ctx, size_t n)
{
	struct conn *c = ctx;
	size_t r, hl = ws_frame_header(NULL, 0, WS_OP_BINARY, (uint64_t)n);
	unsigned char *b = hop_wbuf(&c->hop.front, &r); /* the buffer ws_out gave */

	if (hl < WS_DOWN_HDR) /* a small frame: its 2-byte header wants the data closer */
		memmove(b + hl, b + WS_DOWN_HDR, n);
	ws_frame_header(b, hl, WS_OP_BINARY, (uint64_t)n);
	hop_wack(&c->hop.front, hl + n);
}

static void
ws_up_fail(void *ctx, int writing, const char *why)
{
	struct conn *c = ctx;

	(void)writing;
	ws_up_done(c);
	wstunnel_fail(c, WS_CLOSE_INTERNAL, why);
}

/* Upstream poll interest: read while a frame fits in the client side's send buffer, write
 * while unmasked payload waits. */
static void
ws_wants(const void *ctx, int *read_up, int *write_up)
{
	const struct conn *c = ctx;

	*read_up = *write_up = 0;
	if (wstunnel_closing(c))
		return;
	*read_up = !c->hop.up_eof && hop_wroom(&c->hop.front) > WS_DOWN_HDR;
	*write_up = c->ws_ready > 0;
}

static const struct hop_frame ws_frame = { ws_in, ws_in_ack, ws_out, ws_out_ack, ws_up_fail,
	ws_wants };

/* see wstunnel.h */
int
wstunnel_step(struct conn *c)
{
	struct hop_end *f = &c->hop.front;
	int progress = hop_pump(&c->hop);
	size_t len;

	if (c->ws_close_sent && hop_wempty(f)) {
		/* Our close frame is out: close_notify (TLS) or FIN, input discarded until the
		 * client's EOF or the linger ends (CLOSING). */
		respond_close(c);
		return 1;
	}
	/* The client is gone; a close frame still owed goes out first unless TLS is closed
	 * (a client may half-close right after its own close frame). */
	if ((f->eof || f->closed) && hop_rbuf(f, &len) == NULL &&
	    (f->closed || !(c->ws_close_due || c->ws_close_sent))) {
		conn_close(c, "client closed");
		return 0;
	}
	return progress;
}

/* see wstunnel.h */
int
wstunnel_start(struct conn *c)
{
	const struct http_span *k = &c->req.val[HTTP_H_SEC_WEBSOCKET_KEY];
	char buf[160], lines[96], acc[WS_ACCEPT_LEN + 1];
	size_t n;

	/* The head is still whole; admission checked the key. */
	if (ws_accept_key(c->head + k->off, k->len, acc) != ERR_OK)
		return ERR_INVAL;
	acc[WS_ACCEPT_LEN] = 0;
	snprintf(lines, sizeof lines, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n", acc);
	n = http_response_head(buf, sizeof buf, 101, NULL, NULL, 0, 0, lines);
	if (n == 0)
		return ERR_NOSPACE;
	ws_rx_init(&c->ws_rx);
	c->hop.front.pre = (unsigned char *)c->head + c->req.head_len;
	c->hop.front.pre_len = (uint32_t)(c->head_len - c->req.head_len);
	c->hop.frame = &ws_frame;
	c->hop.ctx = c;
	return respond_raw(c, buf, n);
}

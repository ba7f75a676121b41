/*
 * tunnel.c — tunnels of CONNECT and absolute-form, and what every tunnel shares. See
 * tunnel.h.
 */
#include <stdio.h>
#include <string.h>

#include "body.h"
#include "err.h"
#include "hop.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "respond.h"
#include "sessions.h"
#include "tunnel.h"
#include "udptunnel.h"
#include "wstunnel.h"


/* A field name equal to lit, ASCII case-insensitive (names are compared whole). */
static int
name_is(const char *h, struct http_span s, const char *lit)
{
	return http_ieq(h + s.off, s.len, lit, strlen(lit));
}

/* ---- absolute-form: one request, then nothing ----------------------------------------
 * A frame adapter on the pump (hop.h) for absolute-form tunnels: client bytes go upstream
 * only while they belong to the request — its rewritten head, then its body as body.c
 * follows it (Content-Length or chunked) — and what comes after is read and dropped, never
 * parsed, never forwarded. fwd_ready counts the bytes at the input's start already judged
 * part of the request (the pump may write fewer than offered). Upstream bytes pass as
 * they are. */

static unsigned char *
fwd_in(void *ctx, size_t *len, int *progress)
{
	struct conn *c = ctx;
	struct hop_end *f = &c->hop.front;
	unsigned char *b;
	size_t n;
	int st;

	while (!conn_dead(c) && (b = hop_rbuf(f, len)) != NULL) {
		if (c->fwd_ready) {
			if (*len > c->fwd_ready)
				*len = c->fwd_ready;
			return b;
		}
		n = body_take(&c->body, b, *len, &st);
		if (n) {
			c->fwd_ready = (uint32_t)n;
			continue;
		}
		if (st == BODY_BAD) {
			conn_close(c, "bad chunked body");
			return NULL;
		}
		hop_rack(f, *len); /* after the request: dropped */
		*progress = 1;
	}
	return NULL;
}

static void
fwd_in_ack(void *ctx, size_t n)
{
	struct conn *c = ctx;

	c->fwd_ready -= (uint32_t)n;
	hop_rack(&c->hop.front, n);
}

static unsigned char *
fwd_out(void *ctx, size_t *room, int *progress)
{
	struct conn *c = ctx;

	(void)progress;
	return conn_dead(c) || c->hop.up_eof ? NULL : hop_wbuf(&c->hop.front, room);
}

static void
fwd_out_ack(void *ctx, size_t n)
{
	struct conn *c = ctx;

	hop_wack(&c->hop.front, n);
}

static void
fwd_up_fail(void *ctx, int writing, const char *why)
{
	(void)writing;
	conn_close(ctx, why);
}

static void
fwd_wants(const void *ctx, int *read_up, int *write_up)
{
	const struct conn *c = ctx;

	*read_up = !c->hop.up_eof && hop_wroom(&c->hop.front) > 0;
	*write_up = c->fwd_ready > 0 || (!c->body.done && hop_rpending(&c->hop.front));
}

static const struct hop_frame fwd_frame = { fwd_in, fwd_in_ack, fwd_out, fwd_out_ack,
	fwd_up_fail, fwd_wants };

/* see tunnel.h */
int
tunnel_forward_head(struct conn *c, const struct http_target *t)
{
	static char out[65536 + CONN_HEAD_SLACK]; /* scratch, loop thread only */
	const struct http_request *r = &c->req;
	const char *h = c->head;
	size_t o = 0, i, tail = c->head_len - r->head_len;
	int n;

	/* One request: the head, its body, nothing after (admission checked the framing);
	 * read from the head as parsed, before it is rewritten below. */
	if (body_start(&c->body, h, r) != ERR_OK)
		return ERR_INVAL;
#define PUT(p, l) do { if (o + (l) > sizeof out) return ERR_NOSPACE; memcpy(out + o, (p), (l)); o += (l); } while (0)
	PUT(h + r->method.off, r->method.len);
	PUT(" ", 1);
	if (t->path.len == 0 || h[t->path.off] == '?')
		PUT("/", 1);
	PUT(h + t->path.off, t->path.len);
	n = snprintf(out + o, sizeof out - o, " HTTP/1.%d\r\n", r->minor);
	o += (size_t)n;
	{	/* RFC 9112 §3.2.2: a proxy replaces Host with the absolute URI's authority; the
		 * client's own Host (which may name another site) is never forwarded. */
		n = snprintf(out + o, sizeof out - o, "Host: %s%s%s:%u\r\n",
		    t->addr.host.kind == TARGET_IPV6 ? "[" : "", t->addr.host.name,
		    t->addr.host.kind == TARGET_IPV6 ? "]" : "", t->addr.port);
		o += (size_t)n;
	}
	for (i = 0; i < r->nheaders; i++) {
		const struct http_header *f = &r->headers[i];

		if (f->id == HTTP_H_PROXY_AUTHORIZATION || f->id == HTTP_H_PROXY_CONNECTION ||
		    f->id == HTTP_H_CONNECTION || f->id == HTTP_H_UPGRADE || f->id == HTTP_H_HOST)
			continue;
		/* hop-by-hop: the fixed ones and every name Connection lists, whole at any length */
		if (name_is(h, f->name, "keep-alive") || name_is(h, f->name, "te") ||
		    name_is(h, f->name, "trailer") || http_list_has_span(h, r, HTTP_H_CONNECTION, f->name))
			continue;
		PUT(h + f->name.off, f->name.len);
		PUT(": ", 2);
		PUT(h + f->value.off, f->value.len);
		PUT("\r\n", 2);
	}
	PUT("Connection: close\r\n\r\n", 21);
#undef PUT
	if (o + tail > c->head_cap)
		return ERR_NOSPACE;
	memmove(c->head + o, c->head + r->head_len, tail);
	memcpy(c->head, out, o);
	c->hop.front.pre = (unsigned char *)c->head; /* goes upstream first */
	c->hop.front.pre_len = (uint32_t)(o + tail);
	c->fwd_ready = (uint32_t)o;
	c->hop.frame = &fwd_frame;
	c->hop.ctx = c;
	return ERR_OK;
}

/* see tunnel.h */
void
tunnel_start(struct conn *c)
{
	struct log_rec r;
	char ok[64];
	size_t n;

	if (c->websocket) {
		if ((c->udp ? udptunnel_start(c) : wstunnel_start(c)) != ERR_OK) {
			conn_close(c, "send failed");
			return;
		}
	} else if (!c->forward) {
		n = http_response_head(ok, sizeof ok, 200, "Connection established", NULL, 0, 0, NULL);
		if (n == 0 || respond_raw(c, ok, n) != ERR_OK) {
			conn_close(c, "send failed");
			return;
		}
		/* pipelined bytes go upstream first */
		c->hop.front.pre = (unsigned char *)c->head + c->req.head_len;
		c->hop.front.pre_len = (uint32_t)(c->head_len - c->req.head_len);
	}
	c->status = c->websocket ? 101 : 200;
	c->tunnel_open = 1;
	c->mseries = metrics_tunnel_open(&c->target);
	c->last_io = c->rl->now_ms;
	conn_set_state(c, CS_TUNNEL);
	c->session = sessions_open(conn_transport(c), c->peer, c->who, &c->target, c->rl->now,
	    c->rl->now_ms);
	if (log_begin(&r, LOG_INFO, "tunnel.open")) {
		log_int(&r, "pid", c->rl->pid); /* which worker */
		conn_log_tunnel(&r, c);
		log_str(&r, "kind", c->websocket ? "websocket" : c->forward ? "forward" : "connect");
		log_end(&r);
	}
}

/* End-of-stream rules (docs/protocol.md), after the pump. */
static void
tunnel_eof(struct conn *c)
{
	struct hop_end *f = &c->hop.front, *u = &c->hop.up;
	size_t len;
	int up_empty = hop_rbuf(f, &len) == NULL; /* everything the client sent went upstream */

	if (c->sc) {
		/* TLS: close_notify or TCP EOF from the client is a full close, once the data
		 * before it went upstream. Upstream EOF: flush, close_notify, close. */
		if ((f->closed || f->eof) && up_empty) {
			conn_close(c, "client closed");
			return;
		}
		if (c->hop.up_eof && !f->closed && hop_wempty(f)) {
			c->status = 200;
			respond_close(c);
		}
		return;
	}
	/* Plain: half-close both ways. */
	if (f->eof && up_empty)
		hop_shutdown(u);
	if (c->hop.up_eof && hop_wempty(f))
		hop_shutdown(f);
	if (u->shut && f->shut)
		conn_close(c, "both sides closed");
}

/* see tunnel.h */
int
tunnel_step(struct conn *c, int moved)
{
	int rc;

	if (hop_io(&c->hop.up) < 0) {
		conn_close(c, "upstream i/o error");
		return 0;
	}
	if (c->websocket) {
		rc = wstunnel_step(c);
	} else {
		rc = hop_pump(&c->hop); /* absolute-form: through its adapter, errors close there */
		if (rc < 0) {
			conn_close(c, rc == HOP_E_WRITE ? "upstream write error" : "upstream read error");
			return 0;
		}
		if (conn_dead(c))
			return 0;
		tunnel_eof(c);
	}
	if (rc || moved) {
		c->last_io = c->rl->now_ms; /* bytes either way: not idle */
		sessions_update(c->session, c->hop.up_bytes, c->hop.down_bytes, c->last_io);
	}
	return rc;
}

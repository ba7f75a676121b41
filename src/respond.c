/*
 * respond.c — the relay's own answers and the closing linger. See respond.h.
 */
#include <string.h>

#include "err.h"
#include "hop.h"
#include "http.h"
#include "metrics.h"
#include "respond.h"
#include "secret.h"
#include "sessions.h"
#include "token.h"

/* see respond.h */
int
respond_raw(struct conn *c, const void *data, size_t len)
{
	size_t room;
	unsigned char *b = hop_wbuf(&c->hop.front, &room);

	if (b == NULL || room < len)
		return ERR_NOSPACE;
	memcpy(b, data, len);
	hop_wack(&c->hop.front, len);
	return ERR_OK;
}

/* The answer is queued: RESPOND until it is out (walk.c), at most CONN_RESPOND_MS. */
static void
responding(struct conn *c, int status, int keep_alive)
{
	c->status = status;
	c->keep_alive = keep_alive ? 1 : 0;
	conn_set_state(c, CS_RESPOND);
	c->deadline = c->rl->now_ms + CONN_RESPOND_MS;
}

/* see respond.h */
void
respond_close(struct conn *c)
{
	conn_set_state(c, CS_CLOSING);
	c->deadline = c->rl->now_ms + CONN_LINGER_MS;
	if (c->sc)
		hop_shutdown(&c->hop.front);
}

/* see respond.h */
void
respond_error(struct conn *c, int status, const char *code, const char *msg, const char *extra)
{
	char buf[1024];
	size_t n;

	if (conn_dead(c))
		return;
	n = http_error_response(buf, sizeof buf, status, code, msg, extra);
	c->status = status;
	if (n == 0 || respond_raw(c, buf, n) != ERR_OK) {
		respond_close(c);
		return;
	}
	responding(c, status, 0);
}

/* see respond.h */
void
respond_json(struct conn *c, int status, const char *body, int keep_alive)
{
	char buf[TOKEN_ACCESS_MAX + 512];
	size_t blen = strlen(body), n = 0;

	if (conn_dead(c))
		return;
	if (blen + 1 < sizeof buf)
		n = http_response_head(buf, sizeof buf - blen - 1, status, NULL, "application/json",
		    blen + 1, HTTP_RH_NOSTORE | (keep_alive ? 0 : HTTP_RH_CLOSE), NULL);
	c->status = status;
	if (n > 0) {
		memcpy(buf + n, body, blen);
		buf[n + blen] = '\n';
		if (respond_raw(c, buf, n + blen + 1) != ERR_OK)
			n = 0;
	}
	secret_wipe(buf, sizeof buf); /* may hold an access token */
	if (n == 0) {
		respond_close(c);
		return;
	}
	responding(c, status, keep_alive);
}

/* see respond.h */
void
respond_metrics(struct conn *c, int keep_alive)
{
	char head[200];
	size_t room, blen = 0, hl = 0;
	unsigned char *b = hop_wbuf(&c->hop.front, &room);

	/* The body is rendered after room for the head, then the head is put in front. */
	if (b && room > sizeof head)
		blen = metrics_render((char *)b + sizeof head, room - sizeof head);
	if (blen)
		hl = http_response_head(head, sizeof head, 200, NULL,
		    "text/plain; version=0.0.4; charset=utf-8", blen,
		    HTTP_RH_NOSTORE | (keep_alive ? 0 : HTTP_RH_CLOSE), NULL);
	if (blen == 0 || hl == 0) {
		respond_error(c, 500, "internal", "the metrics do not fit the buffer", NULL);
		return;
	}
	memmove(b + hl, b + sizeof head, blen);
	memcpy(b, head, hl);
	hop_wack(&c->hop.front, hl + blen);
	responding(c, 200, keep_alive);
}

#define CHUNK_HEAD 8  /* "xxxxxx\r\n": a chunk's size, 6 hex digits (the buffer is < 16 MiB) */
#define CHUNK_END 5   /* "0\r\n\r\n": the last chunk */

/* see respond.h */
void
respond_sessions(struct conn *c, int keep_alive)
{
	char head[256];
	size_t n;
	int chunked = c->req.minor >= 1;

	if (conn_dead(c))
		return;
	n = http_response_head(head, sizeof head, 200, NULL, NULL, 0,
	    HTTP_RH_NOSTORE | (chunked && keep_alive ? 0 : HTTP_RH_CLOSE), chunked ?
	    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n" :
	    "Content-Type: application/json\r\n");
	c->status = 200;
	if (n == 0 || respond_raw(c, head, n) != ERR_OK) {
		respond_close(c);
		return;
	}
	memset(&c->scur, 0, sizeof c->scur);
	c->streaming = 1;
	c->chunked = chunked ? 1 : 0;
	responding(c, 200, chunked && keep_alive);
	(void)respond_more(c);
}

/* see respond.h */
int
respond_more(struct conn *c)
{
	size_t room, n, pre = c->chunked ? CHUNK_HEAD : 0;
	unsigned char *b;
	int i;

	if (!c->streaming || conn_dead(c))
		return 0;
	b = hop_wbuf(&c->hop.front, &room);
	if (b == NULL || room < pre + SESSIONS_ROW_MAX + 2 + CHUNK_END)
		return 0; /* wait for the client to take more */
	n = sessions_render((char *)b + pre, room - pre - 2 - CHUNK_END, &c->scur, c->rl->now_ms);
	if (c->chunked) {
		if (n > 0) {
			for (i = 0; i < 6; i++) /* n < 2^24: the buffer is far smaller */
				b[i] = (unsigned char)"0123456789abcdef"[(n >> (20 - 4 * i)) & 15];
			memcpy(b + 6, "\r\n", 2);
			memcpy(b + pre + n, "\r\n", 2);
			n += pre + 2;
		}
		if (c->scur.done) {
			memcpy(b + n, "0\r\n\r\n", CHUNK_END);
			n += CHUNK_END;
		}
	}
	if (c->scur.done)
		c->streaming = 0;
	if (n == 0)
		return 0;
	hop_wack(&c->hop.front, n);
	c->deadline = c->rl->now_ms + CONN_RESPOND_MS; /* a client that reads on gets time */
	return 1;
}

/* see respond.h */
int
respond_closing(struct conn *c)
{
	struct hop_end *f = &c->hop.front;
	size_t len;

	if (f->eof || f->closed) {
		conn_close(c, "closed");
		return 0;
	}
	if (!c->sc)
		hop_shutdown(f); /* the answer is out: the client's I/O flushed it first */
	/* Input is discarded, never parsed (TLS: the engine reads on until the client's
	 * close_notify). */
	if (hop_rbuf(f, &len)) {
		hop_rack(f, len);
		return 1;
	}
	return 0;
}

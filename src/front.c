/*
 * front.c — the client's side up to a parsed request. See front.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "front.h"
#include "hop.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "respond.h"
#include "secret.h"
#include "tls.h"

static void
log_tls_fail(struct conn *c, int err)
{
	struct log_rec r;

	metrics_tls_fail();
	if (log_begin(&r, LOG_WARN, "tls.fail")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "reason", tls_error_str(err));
		log_int(&r, "code", err);
		log_end(&r);
	}
}

/* see front.h */
int
front_io(struct conn *c)
{
	struct hop_end *f = &c->hop.front;
	int was_closed = f->closed, was_ready = f->ready, rc = hop_io(f);

	if (!was_ready && f->ready && c->sc)
		tls_conn_release(c->sc); /* the handshake is done: its certificate is not read again */
	if (!was_closed && f->closed && f->err != BR_ERR_OK && !f->ready)
		log_tls_fail(c, f->err);
	return rc;
}

/* ---- PROXY protocol header ------------------------------------------------------------ */

static void
log_pp_fail(struct conn *c, const char *reason)
{
	struct log_rec r;

	if (log_begin(&r, LOG_WARN, "proxyproto.fail")) {
		log_str(&r, "client", c->peer); /* still the balancer's address */
		log_str(&r, "reason", reason);
		log_int(&r, "bytes", (int64_t)c->pp_len);
		log_end(&r);
	}
}

/* A whole header was read: its source address becomes the peer address (logs, the
 * brute-force limiter, tunnel.open/close); LOCAL, UNKNOWN, UNSPEC and UNIX keep the
 * balancer's. The head's deadline still counts from accept. */
static void
pp_done(struct conn *c, const struct pp_header *h)
{
	struct log_rec r;
	char client[NET_ADDR_TEXT];

	if (h->has_addr)
		net_addr_text(&h->src, client, 1);
	if (log_begin(&r, LOG_DEBUG, "proxyproto.header")) {
		log_str(&r, "balancer", c->peer);
		log_int(&r, "version", h->version);
		log_str(&r, "client", h->has_addr ? client : c->peer);
		log_bool(&r, "local", !h->has_addr);
		log_end(&r);
	}
	if (h->has_addr) {
		c->peer_addr = h->src;
		memcpy(c->peer, client, sizeof client);
		/* The client is known now: maxPendingPerAddress counts it (pending.h). */
		if (conn_pending_over_address(c))
			return;
	}
	c->pp_len = 0;
	conn_set_state(c, CS_HEAD);
}

/* see front.h. Peek at what has arrived, then take exactly the bytes that are certainly
 * header: all of them while the header is incomplete (a header has no end before its last
 * byte), up to its end once it is whole; what follows stays in the socket for BearSSL or
 * the HTTP head. Taking the bytes (not just peeking) keeps a half-sent header from making
 * poll() spin. The head buffer, unused until HEAD, holds the header (PP_MAX fits). */
void
front_pphdr(struct conn *c)
{
	size_t cap = c->head_cap < PP_MAX ? c->head_cap : PP_MAX, take;
	struct pp_header h;
	ssize_t n;
	int rc;

	for (;;) {
		if (c->pp_len >= cap) { /* cannot happen: pp_parse refuses before PP_MAX */
			log_pp_fail(c, "header too long");
			conn_close(c, "bad PROXY header");
			return;
		}
		n = recv(c->hop.front.fd, c->head + c->pp_len, cap - c->pp_len, MSG_PEEK);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(c, "client i/o error");
			return;
		}
		if (n == 0) {
			if (c->pp_len == 0) {
				conn_close(c, "client closed"); /* a balancer's TCP health check */
				return;
			}
			log_pp_fail(c, "closed in the middle of the header");
			conn_close(c, "client closed mid-PROXY header");
			return;
		}
		rc = pp_parse((const unsigned char *)c->head, c->pp_len + (size_t)n, &h);
		if (rc == ERR_INVAL) {
			c->pp_len += (size_t)n;
			log_pp_fail(c, h.reason);
			conn_close(c, "bad PROXY header");
			return;
		}
		take = rc == ERR_OK ? h.len - c->pp_len : (size_t)n;
		n = recv(c->hop.front.fd, c->head + c->pp_len, take, 0); /* the bytes just peeked */
		if (n != (ssize_t)take) {
			conn_close(c, "client i/o error");
			return;
		}
		c->pp_len += take;
		if (rc == ERR_OK) {
			pp_done(c, &h);
			return;
		}
	}
}

/* see front.h */
void
front_pphdr_timeout(struct conn *c)
{
	log_pp_fail(c, "no complete header within headerTimeout");
	conn_close(c, "header timeout");
}

/* ---- the request head ----------------------------------------------------------------- */

/* Take client bytes into head[] up to end. What is taken is wiped where it lay (the
 * plain buffer, or BearSSL's input buffer, decrypted in place): head[] is the one copy of
 * the credentials, wiped at conn_free, and a block kept for reuse holds none. */
static void
take_until(struct conn *c, size_t end)
{
	size_t avail, take;
	unsigned char *b;

	while (c->head_len < end && (b = hop_rbuf(&c->hop.front, &avail)) != NULL) {
		take = end - c->head_len;
		take = avail < take ? avail : take;
		memcpy(c->head + c->head_len, b, take);
		secret_wipe(b, take);
		c->head_len += take;
		hop_rack(&c->hop.front, take);
	}
}

/* see front.h */
int
front_read_head(struct conn *c)
{
	const struct hop_end *f = &c->hop.front;
	int rc;

	take_until(c, c->head_max);
	rc = http_parse(&c->req, c->head, c->head_len, c->head_max);
	if (rc == HTTP_INCOMPLETE) {
		if (f->eof || f->closed)
			conn_close(c, c->head_len ? "client closed mid-head" : "client closed");
		return 0;
	}
	if (rc == HTTP_TOO_LARGE) {
		respond_error(c, 431, "bad_request", c->req.reason ? c->req.reason : "head too large",
		    NULL);
		return 0;
	}
	if (rc != HTTP_OK) {
		respond_error(c, 400, "bad_request", c->req.reason ? c->req.reason :
		    "malformed request", NULL);
		return 0;
	}
	/* A request for the relay itself may carry a small body: wait for it whole (it is
	 * skipped, so the next request on the connection starts after it). */
	if (c->req.target.len && c->head[c->req.target.off] == '/') {
		uint64_t cl = 0;
		if (c->req.have & (1u << HTTP_H_TRANSFER_ENCODING)) {
			respond_error(c, 400, "bad_request", "chunked bodies are not accepted here", NULL);
			return 0;
		}
		if (c->req.have & (1u << HTTP_H_CONTENT_LENGTH))
			http_parse_content_length(c->head + c->req.val[HTTP_H_CONTENT_LENGTH].off,
			    c->req.val[HTTP_H_CONTENT_LENGTH].len, &cl);
		if (cl > c->head_cap - c->req.head_len) {
			respond_error(c, 400, "bad_request", "request body too large", NULL);
			return 0;
		}
		c->body_len = (size_t)cl;
		take_until(c, c->req.head_len + c->body_len);
		if (c->head_len < c->req.head_len + c->body_len) {
			if (f->eof || f->closed)
				conn_close(c, "client closed mid-body");
			return 0;
		}
	}
	return 1;
}

/* see front.h */
void
front_next_request(struct conn *c)
{
	size_t used = c->req.head_len + c->body_len;

	memmove(c->head, c->head + used, c->head_len - used);
	c->head_len -= used;
	c->body_len = 0;
	c->keep_alive = 0;
	http_init(&c->req);
	conn_set_state(c, CS_HEAD);
	c->deadline = c->rl->now_ms + (int64_t)c->rl->cfg->header_timeout * 1000;
}

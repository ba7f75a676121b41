/*
 * conn.c — the per-connection state machine. See conn.h.
 *
 * Bytes move through the connection's hop (hop.h): the client's end (TLS or the plain
 * buffers) and the upstream end (a plain socket, or TLS to an https:// proxy) offer the
 * same views, so the head reader, the responses, the CONNECT exchange with a proxy and
 * the one tunnel pump are written once; a WebSocket tunnel is a framing adapter on the
 * pump (ws_frame).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bearssl.h>

#include "admit.h"
#include "anchors.h"
#include "auth.h"
#include "conn.h"
#include "err.h"
#include "hop.h"
#include "http.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "resolve.h"
#include "secret.h"
#include "server.h"
#include "target.h"
#include "tls.h"
#include "token.h"
#include "upstream.h"
#include "ws.h"

struct conn {
	int slot;                    /* in the server's table */
	enum conn_state state;
	size_t block_size;           /* this allocation's bytes (conn_footprint at accept) */
	struct hop hop;              /* the client's end, the upstream end, the pump (hop.h) */
	br_ssl_server_context *sc;   /* NULL on the plain listener */
	char *head;                  /* request head (and what was pipelined after it) */
	size_t head_max;             /* maxHeaderBytes when accepted (a reload may change it) */
	size_t head_cap, head_len;
	size_t pp_len;               /* PPHDR: PROXY header bytes taken into head[] so far */
	struct http_request req;
	struct target_addr target;
	const struct upstream_proxy *via; /* the HTTP proxy in between, or NULL */
	size_t preq_off;             /* PROXY: bytes of our CONNECT request already sent */
	size_t presp_len;            /* PROXY: bytes of the proxy's answer head read */
	struct net_addr addrs[RESOLVE_MAX_ADDRS];
	int naddr, addr_i, last_errno;
	int status;                  /* HTTP status answered (logs) */
	struct net_addr peer_addr;
	size_t body_len;             /* a local request's body, skipped before the next head */
	int64_t t_start, deadline, last_io;
	unsigned over_limit : 1, tunnel_open : 1, keep_alive : 1, preq_done : 1,
	    forward : 1;             /* absolute-form (else CONNECT) */
	/* WebSocket mode (GET /v1/tunnel, SPEC §2.2): the same TUNNEL state, client bytes in
	 * frames. Fixed size, part of the one allocation. */
	unsigned websocket : 1, ws_pong_due : 1, ws_close_due : 1, ws_close_sent : 1,
	    ws_close_rcvd : 1, ws_up_dead : 1;
	int kind, mlistener, mseries; /* CONN_* listener kind; metrics listener and target series */
	struct ws_rx ws_rx;               /* client frame decoder */
	size_t ws_ready;                  /* unmasked payload at the input's start, not yet upstream */
	/* TLS to an https:// upstream proxy: the memory exists when such a route was configured
	 * at start (conn_footprint); hop.up.eng points into it while the hop uses it. */
	br_ssl_client_context *ucc;
	br_x509_minimal_context *uxc;
	unsigned char *uibuf, *uobuf;
	const char *close_reason;    /* DEAD: why (static text), logged by conn_free */
	/* byte arrays last, together: no padding between them */
	char presp[256];             /* PROXY: the proxy's answer head */
	char peer[NET_ADDR_TEXT];
	char who[AUTH_USER_MAX + 1];
	unsigned char ws_ctl[WS_CTL_MAX]; /* control frame payload being received */
	unsigned char ws_pong[WS_CTL_MAX]; /* payload of the pong to send */
	uint8_t ws_ctl_len, ws_pong_len;
	uint16_t ws_code;                 /* close status to send (0: an empty close frame) */
};

static const struct hop_frame ws_frame;

static const char *const state_names[] = { "head", "resolve", "connect", "proxy", "tunnel",
	"respond", "closing", "pphdr", "dead" };

/* An https:// proxy route exists: every connection also holds the upstream TLS state.
 * Decided once at start (conn_proxy_setup), with the anchors it checks the proxy against. */
static int up_tls_mem;
static struct anchors *proxy_ta;

#define UP_TLS_BYTES (sizeof(br_ssl_client_context) + sizeof(br_x509_minimal_context) + \
	CONN_UP_IBUF + CONN_UP_OBUF + 16) /* 16: alignment */

/* see conn.h */
size_t
conn_footprint(int tls)
{
	size_t n = sizeof(struct conn) + srv.cfg->max_header_bytes + CONN_HEAD_SLACK;

	if (tls == CONN_ADMIN) /* never tunnels: no upstream TLS state */
		return n + CONN_ADMIN_IBUF + CONN_ADMIN_OBUF;
	if (up_tls_mem)
		n += UP_TLS_BYTES;
	return n + (tls ? sizeof(br_ssl_server_context) + TLS_IBUF + TLS_OBUF : 2 * CONN_PLAIN_BUF);
}

/* see conn.h */
int
conn_proxy_setup(const struct config *cfg, char *err, size_t errlen)
{
	struct upstream_routes probe;
	int any;

	/* The environment is read whatever proxyEnabled says now: a reload may turn it on. */
	any = upstream_load(&probe, 1, err, errlen) == ERR_OK && upstream_any_tls(&probe);
	upstream_wipe(&probe);
	err[0] = 0;
	if (!any)
		return ERR_OK;
	proxy_ta = malloc(sizeof *proxy_ta);
	if (proxy_ta == NULL) {
		snprintf(err, errlen, "out of memory for the https:// proxy's trust anchors");
		return ERR_IO;
	}
	if (upstream_trust_load(proxy_ta, cfg, err, errlen) != ERR_OK) {
		anchors_wipe(proxy_ta);
		free(proxy_ta);
		proxy_ta = NULL;
		return cfg->proxy_enabled ? ERR_INVAL : ERR_OK;
	}
	up_tls_mem = 1;
	return ERR_OK;
}

/* The one place a state changes; logged at debug level. DEAD is final. */
static void
set_state(struct conn *c, enum conn_state s)
{
	struct log_rec r;

	if (c->state == CS_DEAD)
		return;
	if (log_begin(&r, LOG_DEBUG, "conn.state")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "from", state_names[c->state]);
		log_str(&r, "to", state_names[s]);
		log_end(&r);
	}
	c->state = s;
}

/* see conn.h */
enum conn_state
conn_state(const struct conn *c)
{
	return c->state;
}

/* ---- client-side I/O ------------------------------------------------------------- */

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

/* Move bytes (or TLS records) between the client socket and the client-side buffers,
 * until the socket would block. A TLS session that fails before its handshake is done is
 * logged once (tls.fail). Returns 1 on progress, 0 on none, -1 when the connection must
 * end. */
static int
client_io(struct conn *c)
{
	struct hop_end *f = &c->hop.front;
	int was_closed = f->closed, rc = hop_io(f);

	if (!was_closed && f->closed && f->err != BR_ERR_OK && !f->ready)
		log_tls_fail(c, f->err);
	return rc;
}

/* ---- responses --------------------------------------------------------------------- */

/* Queue a whole response for the client (responses are small: they always fit in the
 * send buffer, which is empty before a tunnel starts). */
static int
send_raw(struct conn *c, const char *data, size_t len)
{
	size_t room;
	unsigned char *b = hop_wbuf(&c->hop.front, &room);

	if (b == NULL || room < len)
		return ERR_NOSPACE;
	memcpy(b, data, len);
	hop_wack(&c->hop.front, len);
	return ERR_OK;
}

/* Close after what was queued for the client: close_notify (TLS) now, the write side
 * (plain) once CLOSING has flushed it; input is then discarded until EOF or the linger. */
static void
start_closing(struct conn *c)
{
	set_state(c, CS_CLOSING);
	c->deadline = srv.now_ms + CONN_LINGER_MS;
	if (c->sc)
		hop_shutdown(&c->hop.front);
}

/* Answer an error (or other closing) response and close after it is sent. */
static void
respond_error(struct conn *c, int status, const char *code, const char *msg, const char *extra)
{
	char buf[1024];
	size_t n;

	if (c->state == CS_DEAD)
		return;
	n = http_error_response(buf, sizeof buf, status, code, msg, extra);
	c->status = status;
	if (n == 0 || send_raw(c, buf, n) != ERR_OK) {
		start_closing(c);
		return;
	}
	set_state(c, CS_RESPOND);
	c->deadline = srv.now_ms + CONN_RESPOND_MS;
}

/* A JSON response of the relay's own (health endpoints, tokens). With keep_alive the
 * connection reads the next request once it is sent; otherwise it closes. */
static void
respond_json_ka(struct conn *c, int status, const char *body, int keep_alive)
{
	char buf[TOKEN_ACCESS_MAX + 512];
	size_t blen = strlen(body), n = 0;

	if (c->state == CS_DEAD)
		return;
	if (blen + 1 < sizeof buf)
		n = http_response_head(buf, sizeof buf - blen - 1, status, NULL, "application/json",
		    blen + 1, HTTP_RH_NOSTORE | (keep_alive ? 0 : HTTP_RH_CLOSE), NULL);
	c->status = status;
	c->keep_alive = keep_alive ? 1 : 0;
	if (n > 0) {
		memcpy(buf + n, body, blen);
		buf[n + blen] = '\n';
		if (send_raw(c, buf, n + blen + 1) != ERR_OK)
			n = 0;
	}
	secret_wipe(buf, sizeof buf); /* may hold an access token */
	if (n == 0) {
		start_closing(c);
		return;
	}
	set_state(c, CS_RESPOND);
	c->deadline = srv.now_ms + CONN_RESPOND_MS;
}

static void
respond_json(struct conn *c, int status, const char *body)
{
	respond_json_ka(c, status, body, 0);
}

/* auth.fail: reason is the short cause metrics count by (a token code, "missing",
 * "unsupported scheme", "bad password"); why, when set, the precise cause for the operator
 * (then logged as the reason, with the short one as code). */
static void
log_auth_fail(struct conn *c, const char *reason, const char *why)
{
	struct log_rec r;

	metrics_auth_fail(reason);
	if (log_begin(&r, LOG_WARN, "auth.fail")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "reason", why && why[0] ? why : reason);
		if (why && why[0])
			log_str(&r, "code", reason);
		if (c->who[0])
			log_str(&r, "user", c->who);
		log_end(&r);
	}
}

/* ---- the upstream end ---------------------------------------------------------------
 *
 * The upstream socket is the hop's other end (hop.h): direct for a plain hop, TLS to an
 * https:// proxy. The TLS hop cannot carry a half-close: a client's EOF (plain listener)
 * becomes close_notify to the proxy (hop_shutdown), which passes the EOF on, but after it
 * BearSSL drops the application data that still arrives; the tunnel ends when the proxy
 * answers with its close_notify or EOF. (Holding the EOF back instead would keep a tunnel
 * whose client has gone open until idleTimeout; a bare TCP FIN is a full close to proxies
 * such as stunnel.)
 */

/* Start TLS to the proxy on the connected upstream socket. ERR_OK or an error. */
static int
up_tls_start(struct conn *c)
{
	int rc;

	if (c->ucc == NULL || proxy_ta == NULL)
		return ERR_NOSPACE; /* the route appeared after start (see conn_proxy_setup) */
	rc = tls_client_init(c->ucc, c->uxc, proxy_ta->ta, proxy_ta->n, c->uibuf, CONN_UP_IBUF,
	    c->uobuf, CONN_UP_OBUF, c->via->host.name, NULL, 0);
	hop_end_tls(&c->hop.up, c->hop.up.fd, &c->ucc->eng);
	return rc;
}

/* ---- upstream ----------------------------------------------------------------------- */

static void
upstream_failed(struct conn *c, int timed_out)
{
	struct log_rec r;

	if (log_begin(&r, LOG_WARN, "upstream.fail")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "target", c->target.host.name);
		log_int(&r, "port", c->target.port);
		log_str(&r, "reason", timed_out ? "timeout" : strerror(c->last_errno));
		log_end(&r);
	}
	if (timed_out)
		respond_error(c, 504, "upstream_timeout", "the console did not answer in time", NULL);
	else
		respond_error(c, 502, "upstream_unreachable", "cannot connect to the console", NULL);
}

/* Try the resolved addresses from addr_i on. */
static void
connect_next(struct conn *c)
{
	while (c->addr_i < c->naddr) {
		int fd = net_connect_start(&c->addrs[c->addr_i++]);
		if (fd >= 0) {
			hop_end_plain(&c->hop.up, fd, NULL, 0, NULL, 0);
			set_state(c, CS_CONNECT);
			c->deadline = srv.now_ms + (int64_t)srv.cfg->connect_timeout * 1000;
			return;
		}
		c->last_errno = errno;
	}
	upstream_failed(c, 0);
}

/* Look the target up (IP literals need no lookup) and connect, or wait in RESOLVE. */
static void
resolve_and_connect(struct conn *c)
{
	const struct target_host *h;
	unsigned port;
	int rc;

	c->via = upstream_route(&srv.routes, &c->target.host, c->target.port);
	h = c->via ? &c->via->host : &c->target.host;
	port = c->via ? c->via->port : c->target.port;
	c->naddr = c->addr_i = 0;
	if (h->kind == TARGET_IPV4 || h->kind == TARGET_IPV6) {
		struct net_addr *a = &c->addrs[0];
		memset(a, 0, sizeof *a);
		if (h->kind == TARGET_IPV4) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			memcpy(&s4->sin_addr, h->ip, 4);
			a->len = sizeof *s4;
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			memcpy(&s6->sin6_addr, h->ip, 16);
			a->len = sizeof *s6;
		}
		c->naddr = 1;
		connect_next(c);
		return;
	}
	rc = resolve_lookup(h->name, port, c->addrs, RESOLVE_MAX_ADDRS, &c->naddr);
	if (rc == ERR_OK) {
		connect_next(c);
	} else if (rc == ERR_TRUNC) {
		if (c->state != CS_RESOLVE) {
			set_state(c, CS_RESOLVE);
			c->deadline = srv.now_ms + (int64_t)srv.cfg->connect_timeout * 1000;
		}
	} else {
		c->last_errno = EHOSTUNREACH;
		upstream_failed(c, 0);
	}
}

/* see conn.h */
void
conn_resolved(struct conn *c)
{
	if (c->state == CS_RESOLVE)
		resolve_and_connect(c);
}

/* Absolute-form: rewrite the head in origin-form for the upstream, in place: request
 * line with the path only, Proxy-Authorization, Proxy-Connection and hop-by-hop fields
 * removed, Host kept (or added), "Connection: close" appended. Pipelined bytes follow. */
static int
rewrite_forward_head(struct conn *c, const struct http_target *t)
{
	static char out[65536 + CONN_HEAD_SLACK];
	const struct http_request *r = &c->req;
	const char *h = c->head;
	size_t o = 0, i, tail = c->head_len - r->head_len;
	int n;

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
		char name[64];
		size_t nl = f->name.len < sizeof name - 1 ? f->name.len : sizeof name - 1;

		if (f->id == HTTP_H_PROXY_AUTHORIZATION || f->id == HTTP_H_PROXY_CONNECTION ||
		    f->id == HTTP_H_CONNECTION || f->id == HTTP_H_UPGRADE || f->id == HTTP_H_HOST)
			continue;
		memcpy(name, h + f->name.off, nl);
		name[nl] = 0;
		if (strcasecmp(name, "keep-alive") == 0 || strcasecmp(name, "te") == 0 ||
		    strcasecmp(name, "trailer") == 0 || http_list_has(h, r, HTTP_H_CONNECTION, name))
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
	c->hop.front.pre_len = o + tail;
	return ERR_OK;
}

/* WebSocket: the upstream is connected, answer 101 (the accept key from the head, which
 * is still whole; the handshake checked it). Bytes the client sent after the head (frames
 * sent early) are decoded first: they are the front end's prefix. */
static int
ws_send_101(struct conn *c)
{
	const struct http_span *k = &c->req.val[HTTP_H_SEC_WEBSOCKET_KEY];
	char buf[160], lines[96], acc[WS_ACCEPT_LEN + 1];
	size_t n;

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
	c->hop.front.pre_len = c->head_len - c->req.head_len;
	c->hop.frame = &ws_frame;
	c->hop.ctx = c;
	return send_raw(c, buf, n);
}

/* The upstream connect finished: answer 200 (CONNECT) or 101 (WebSocket) and start
 * relaying. */
static void
tunnel_start(struct conn *c)
{
	struct log_rec r;
	char ok[64];
	size_t n;

	if (c->websocket) {
		if (ws_send_101(c) != ERR_OK) {
			conn_close(c, "send failed");
			return;
		}
	} else if (!c->forward) {
		n = http_response_head(ok, sizeof ok, 200, "Connection established", NULL, 0, 0, NULL);
		if (n == 0 || send_raw(c, ok, n) != ERR_OK) {
			conn_close(c, "send failed");
			return;
		}
		/* pipelined bytes go upstream first */
		c->hop.front.pre = (unsigned char *)c->head + c->req.head_len;
		c->hop.front.pre_len = c->head_len - c->req.head_len;
	}
	c->status = c->websocket ? 101 : 200;
	c->tunnel_open = 1;
	c->mseries = metrics_tunnel_open(&c->target);
	c->last_io = srv.now_ms;
	set_state(c, CS_TUNNEL);
	if (log_begin(&r, LOG_INFO, "tunnel.open")) {
		log_int(&r, "pid", srv.pid); /* which worker */
		log_str(&r, "client", c->peer);
		log_str(&r, "user", c->who);
		log_str(&r, "target", c->target.host.name);
		log_int(&r, "port", c->target.port);
		log_str(&r, "kind", c->websocket ? "websocket" : c->forward ? "forward" : "connect");
		log_end(&r);
	}
}

/* The TLS session to an https:// proxy failed: log the proxy and BearSSL's reason (never
 * its credentials), answer 502. */
static void
proxy_tls_failed(struct conn *c)
{
	struct log_rec r;

	if (log_begin(&r, LOG_WARN, "upstream.proxy_tls_fail")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "proxy", c->via->host.name);
		log_int(&r, "proxy_port", c->via->port);
		/* no TLS memory: the https:// route appeared by a reload after start */
		log_str(&r, "reason", c->ucc && proxy_ta ? upstream_tls_error(c->hop.up.err) : "restart_required");
		log_int(&r, "code", c->hop.up.err);
		log_end(&r);
	}
	respond_error(c, 502, "upstream_unreachable", "cannot reach the upstream proxy", NULL);
}

/* An upstream I/O error in PROXY state (errno set by up_read/up_write). */
static void
proxy_io_failed(struct conn *c)
{
	if (c->hop.up.eng && errno == EPROTO) {
		proxy_tls_failed(c);
		return;
	}
	c->last_errno = errno;
	upstream_failed(c, 0);
}

/* PROXY state: send CONNECT to the upstream proxy (through TLS for an https:// proxy) and
 * read its answer head. Bytes that came after the head belong to the tunnel: they stay in
 * presp[] as the upstream end's prefix. */
static void
proxy_step(struct conn *c)
{
	char req[UPSTREAM_REQ_MAX];
	size_t len = upstream_connect_request(c->via, &c->target.host, c->target.port, req, sizeof req);
	size_t head_len;
	ssize_t n;
	int status, rc;

	while (c->preq_off < len) {
		n = hop_write(&c->hop.up, req + c->preq_off, len - c->preq_off);
		if (n <= 0) {
			int e = errno;
			secret_wipe(req, sizeof req);
			errno = e;
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				proxy_io_failed(c);
			return;
		}
		c->preq_off += (size_t)n;
	}
	c->preq_done = 1;
	secret_wipe(req, sizeof req); /* it may carry the proxy's credentials */
	for (;;) {
		n = hop_read(&c->hop.up, c->presp + c->presp_len, sizeof c->presp - c->presp_len);
		if (n == 0) {
			errno = ECONNRESET;
			proxy_io_failed(c);
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				proxy_io_failed(c);
			return;
		}
		c->presp_len += (size_t)n;
		rc = upstream_parse_answer(c->presp, c->presp_len, &status, &head_len);
		if (rc == ERR_OK)
			break;
		if (rc != ERR_TRUNC || c->presp_len == sizeof c->presp) {
			c->last_errno = EPROTO;
			upstream_failed(c, 0);
			return;
		}
	}
	/* what followed the head belongs to the tunnel: it reaches the client first */
	c->hop.up.pre = (unsigned char *)c->presp + head_len;
	c->hop.up.pre_len = c->presp_len - head_len;
	if (status != 200) {
		struct log_rec r;
		if (log_begin(&r, LOG_WARN, "upstream.proxy_refused")) {
			log_str(&r, "client", c->peer);
			log_str(&r, "proxy", c->via->host.name);
			log_int(&r, "status", status);
			log_end(&r);
		}
		respond_error(c, 502, "upstream_unreachable", status == 407 || status == 401 ?
		    "the upstream proxy refused the relay's credentials" : "the upstream proxy refused the tunnel", NULL);
		return;
	}
	tunnel_start(c);
}

/* ---- the request ------------------------------------------------------------------- */

/* A counted authentication failure: the brute-force limiter may ban the address now. */
static void
count_failure(struct conn *c)
{
	if (limit_fail(&c->peer_addr, srv.now_ms, srv.cfg->auth_fail_limit,
	    (int64_t)srv.cfg->auth_fail_ban)) {
		struct log_rec r;
		metrics_ban();
		if (log_begin(&r, LOG_WARN, "auth.ban")) {
			log_str(&r, "client", c->peer);
			log_int(&r, "seconds", (int64_t)srv.cfg->auth_fail_ban);
			log_end(&r);
		}
	}
}

/* The credential the request carries for its kind (admit.h says which header and which
 * schemes), checked — never logged here: admission decides what a failure means. The
 * user (a Basic user even when refused, for the log; the token's sub when accepted) goes
 * to c->who. */
static void
check_cred(struct conn *c, enum admit_kind kind, struct admit_cred *cr)
{
	const struct http_request *r = &c->req;
	int id = admit_cred_header(kind), scheme, rc;
	unsigned ok = admit_schemes(kind, srv.users != NULL);
	const char *cred;
	size_t credlen;

	memset(cr, 0, sizeof *cr);
	c->who[0] = 0;
	if (id < 0 || !(r->have & (1u << id)))
		return; /* ADMIT_CRED_NONE */
	scheme = auth_scheme(c->head + r->val[id].off, r->val[id].len, &cred, &credlen);
	if (scheme == AUTH_BEARER && (ok & ADMIT_SCHEME_BEARER)) {
		if (admit_wants_grant(kind)) {
			if (credlen == 0)
				return; /* an empty grant is no grant */
			rc = token_verify_grant(srv.cfg, cred, credlen, (int64_t)srv.now, c->who,
			    sizeof c->who, &cr->code);
		} else {
			rc = token_verify_access(srv.cfg, cred, credlen, (int64_t)srv.now, c->who,
			    sizeof c->who, &cr->code);
		}
		cr->state = rc == ERR_OK ? ADMIT_CRED_OK : ADMIT_CRED_BAD;
		if (rc != ERR_OK)
			c->who[0] = 0;
		return;
	}
	if (scheme == AUTH_BASIC && (ok & ADMIT_SCHEME_BASIC)) {
		cr->basic = 1;
		if (auth_check_basic(srv.users, cred, credlen, c->who, sizeof c->who) == ERR_OK) {
			cr->state = ADMIT_CRED_OK;
		} else {
			cr->state = ADMIT_CRED_BAD; /* c->who keeps the user name for the log */
			cr->code = "auth_failed";
			cr->reason = "bad password";
		}
		return;
	}
	cr->state = ADMIT_CRED_SCHEME;
}

/* A refusal from admission: what it says is logged (auth.fail, counted or not;
 * target.forbidden), then answered. */
static void
refuse(struct conn *c, const struct admit_verdict *v)
{
	struct log_rec r;

	if (v->log == ADMIT_LOG_AUTH) {
		log_auth_fail(c, v->reason, v->why);
		if (v->counted)
			count_failure(c);
	} else if (v->log == ADMIT_LOG_TARGET && log_begin(&r, LOG_WARN, "target.forbidden")) {
		log_str(&r, "client", c->peer);
		if (v->authed)
			log_str(&r, "user", c->who);
		if (v->text[0]) {
			log_str(&r, "target", v->text); /* as sent: it did not parse */
		} else {
			log_str(&r, "target", v->target.host.name);
			log_int(&r, "port", v->target.port);
		}
		log_str(&r, "reason", v->reason);
		log_end(&r);
	}
	respond_error(c, v->status, v->code, v->message, v->extra);
}

/* POST /v1/token, admitted: the grant's sub is in c->who; an access token out (SPEC §3.2).
 * Keep-alive. */
static void
issue_token(struct conn *c)
{
	char token[TOKEN_ACCESS_MAX], body[TOKEN_ACCESS_MAX + 128];
	size_t n;
	struct log_rec lr;

	n = token_issue(srv.cfg, c->who, (int64_t)srv.now, token, sizeof token);
	if (n == 0) {
		respond_error(c, 500, "internal", "cannot issue a token", NULL);
		return;
	}
	snprintf(body, sizeof body, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%llu}",
	    token, (unsigned long long)srv.cfg->token_duration);
	secret_wipe(token, sizeof token);
	metrics_token_issued();
	if (log_begin(&lr, LOG_INFO, "token.issue")) {
		log_str(&lr, "client", c->peer);
		log_str(&lr, "sub", c->who);
		log_int(&lr, "expires_in", (int64_t)srv.cfg->token_duration);
		log_end(&lr);
	}
	respond_json_ka(c, 200, body, !http_list_has(c->head, &c->req, HTTP_H_CONNECTION, "close"));
	secret_wipe(body, sizeof body);
}

/* The relay's own paths on the proxy listeners: /healthz, /readyz; else 404 or 405. */
static void
handle_local(struct conn *c, const struct http_target *t)
{
	const char *h = c->head, *q;
	const struct http_request *r = &c->req;
	struct http_span path = t->path;
	const char *reason;
	char body[160];

	if ((q = memchr(h + path.off, '?', path.len)) != NULL)
		path.len = (uint32_t)(q - (h + path.off)); /* the path without its query */
	if (http_span_is(h, r->method, "GET") && http_span_is(h, path, "/healthz")) {
		respond_json(c, 200, "{\"status\":\"ok\"}");
		return;
	}
	if (http_span_is(h, r->method, "GET") && http_span_is(h, path, "/readyz")) {
		if (server_ready(&reason)) {
			respond_json(c, 200, "{\"status\":\"ready\"}");
		} else {
			snprintf(body, sizeof body, "{\"status\":\"not_ready\",\"reason\":\"%s\"}", reason);
			respond_json(c, 503, body);
		}
		return;
	}
	if (http_span_is(h, r->method, "GET") || http_span_is(h, r->method, "HEAD") ||
	    http_span_is(h, r->method, "POST"))
		respond_error(c, 404, "not_found", "no such path", NULL);
	else
		respond_error(c, 405, "method_not_allowed", "method not allowed", "Allow: GET, POST, CONNECT\r\n");
}

/* GET /metrics: the whole exposition in one response. The admin send buffer was sized
 * at accept for the longest one (CONN_ADMIN_OBUF), so it is rendered straight into it
 * after room for the head, and the head put in front. */
static void
respond_metrics(struct conn *c, int keep_alive)
{
	char head[200];
	size_t room, blen = 0, hl = 0;
	unsigned char *b = hop_wbuf(&c->hop.front, &room);

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
	c->status = 200;
	c->keep_alive = keep_alive ? 1 : 0;
	set_state(c, CS_RESPOND);
	c->deadline = srv.now_ms + CONN_RESPOND_MS;
}

/* The admin listener (SPEC §2.1): GET /metrics, /healthz and /readyz, nothing else — no
 * CONNECT, no tokens, no tunnels, no credentials. Keep-alive unless the client closes. */
static void
handle_admin(struct conn *c)
{
	const char *h = c->head, *q, *reason;
	const struct http_request *r = &c->req;
	struct http_span path = r->target;
	int ka = r->minor == 1 && !http_list_has(h, r, HTTP_H_CONNECTION, "close");
	char body[160];

	if ((q = memchr(h + path.off, '?', path.len)) != NULL)
		path.len = (uint32_t)(q - (h + path.off));
	if (!http_span_is(h, r->method, "GET"))
		respond_error(c, 405, "method_not_allowed", "the admin listener answers GET only",
		    "Allow: GET\r\n");
	else if (http_span_is(h, path, "/metrics"))
		respond_metrics(c, ka);
	else if (http_span_is(h, path, "/healthz"))
		respond_json_ka(c, 200, "{\"status\":\"ok\"}", ka);
	else if (!http_span_is(h, path, "/readyz"))
		respond_error(c, 404, "not_found", "the admin listener serves /metrics, /healthz, /readyz", NULL);
	else if (server_ready(&reason))
		respond_json_ka(c, 200, "{\"status\":\"ready\"}", ka);
	else {
		snprintf(body, sizeof body, "{\"status\":\"not_ready\",\"reason\":\"%s\"}", reason);
		respond_json_ka(c, 503, body, ka);
	}
}

/* What a head on a proxy listener asks for (admission judges it): CONNECT; a WebSocket
 * tunnel or POST /v1/token among the relay's paths; another origin-form path is the relay's
 * own; anything else is treated as absolute-form. (/v1/udp is not served yet: 404.) */
static enum admit_kind
route(const struct conn *c, const struct http_target *t, int split_rc)
{
	const char *h = c->head, *q;
	struct http_span path = t->path;

	if (http_span_is(h, c->req.method, "CONNECT"))
		return ADMIT_CONNECT;
	if (split_rc != HTTP_OK || t->form != HTTP_FORM_ORIGIN)
		return ADMIT_FORWARD;
	if ((q = memchr(h + path.off, '?', path.len)) != NULL)
		path.len = (uint32_t)(q - (h + path.off));
	if (http_span_is(h, path, "/v1/tunnel"))
		return ADMIT_TUNNEL;
	if (http_span_is(h, c->req.method, "POST") && http_span_is(h, path, "/v1/token"))
		return ADMIT_TOKEN;
	return ADMIT_LOCAL;
}

/* A complete head is in head[0..req.head_len): route it, admit it, then act. */
static void
handle_request(struct conn *c)
{
	struct http_target t;
	struct admit_req rq;
	struct admit_cred cr;
	struct admit_policy pol;
	struct admit_verdict v;

	if (c->kind == CONN_ADMIN) {
		handle_admin(c);
		return;
	}
	memset(&rq, 0, sizeof rq);
	rq.buf = c->head;
	rq.req = &c->req;
	rq.t = &t;
	rq.split_rc = http_target_split(c->head, &c->req, &t);
	rq.kind = route(c, &t, rq.split_rc);
	rq.body_len = c->body_len;
	rq.over_limit = c->over_limit;
	rq.draining = srv.draining;
	rq.banned = rq.kind != ADMIT_LOCAL && limit_banned(&c->peer_addr, srv.now_ms);
	check_cred(c, rq.kind, &cr);
	memset(&pol, 0, sizeof pol);
	pol.targets = &srv.policy;
	pol.basic = srv.users != NULL;
	pol.now = srv.now;
	if (admit_check(&rq, &cr, &pol, &v) != 0) {
		refuse(c, &v);
		return;
	}
	switch (rq.kind) {
	case ADMIT_LOCAL:
		handle_local(c, &t);
		return;
	case ADMIT_TOKEN:
		issue_token(c);
		return;
	case ADMIT_TUNNEL:
		c->websocket = 1;
		break;
	case ADMIT_FORWARD:
		c->forward = 1;
		if (rewrite_forward_head(c, &t) != ERR_OK) {
			respond_error(c, 431, "bad_request", "request head too large to forward", NULL);
			return;
		}
		break;
	default:
		break;
	}
	c->target = v.target;
	resolve_and_connect(c);
}

/* HEAD state: move client bytes into the head buffer and parse. */
static void
read_head(struct conn *c)
{
	size_t avail, room, take;
	unsigned char *b;
	int rc;

	while ((b = hop_rbuf(&c->hop.front, &avail)) != NULL && c->head_len < c->head_max) {
		room = c->head_max - c->head_len;
		take = avail < room ? avail : room;
		memcpy(c->head + c->head_len, b, take);
		c->head_len += take;
		hop_rack(&c->hop.front, take);
	}
	rc = http_parse(&c->req, c->head, c->head_len, c->head_max);
	if (rc == HTTP_INCOMPLETE) {
		if (c->hop.front.eof || c->hop.front.closed) {
			conn_close(c, c->head_len ? "client closed mid-head" : "client closed");
			return;
		}
		return;
	}
	if (rc == HTTP_TOO_LARGE) {
		respond_error(c, 431, "bad_request", c->req.reason ? c->req.reason : "head too large", NULL);
		return;
	}
	if (rc != HTTP_OK) {
		respond_error(c, 400, "bad_request", c->req.reason ? c->req.reason : "malformed request", NULL);
		return;
	}
	/* A request for the relay itself may carry a small body: wait for it whole (it is
	 * skipped, so the next request on the connection starts after it). */
	if (c->req.target.len && c->head[c->req.target.off] == '/') {
		uint64_t cl = 0;
		if (c->req.have & (1u << HTTP_H_TRANSFER_ENCODING)) {
			respond_error(c, 400, "bad_request", "chunked bodies are not accepted here", NULL);
			return;
		}
		if (c->req.have & (1u << HTTP_H_CONTENT_LENGTH))
			http_parse_content_length(c->head + c->req.val[HTTP_H_CONTENT_LENGTH].off,
			    c->req.val[HTTP_H_CONTENT_LENGTH].len, &cl);
		if (cl > c->head_cap - c->req.head_len) {
			respond_error(c, 400, "bad_request", "request body too large", NULL);
			return;
		}
		c->body_len = (size_t)cl;
		while (c->head_len < c->req.head_len + c->body_len &&
		    (b = hop_rbuf(&c->hop.front, &avail)) != NULL) {
			take = c->req.head_len + c->body_len - c->head_len;
			take = avail < take ? avail : take;
			memcpy(c->head + c->head_len, b, take);
			c->head_len += take;
			hop_rack(&c->hop.front, take);
		}
		if (c->head_len < c->req.head_len + c->body_len) {
			if (c->hop.front.eof || c->hop.front.closed) {
				conn_close(c, "client closed mid-body");
				return;
			}
			return;
		}
	}
	handle_request(c);
}

/* After a keep-alive response: what followed the request becomes the next head. */
static void
next_request(struct conn *c)
{
	size_t used = c->req.head_len + c->body_len;

	memmove(c->head, c->head + used, c->head_len - used);
	c->head_len -= used;
	c->body_len = 0;
	c->keep_alive = 0;
	http_init(&c->req);
	set_state(c, CS_HEAD);
	c->deadline = srv.now_ms + (int64_t)srv.cfg->header_timeout * 1000;
}

/* ---- the tunnel ---------------------------------------------------------------------- */

/* End-of-stream rules (SPEC §2.2), after the pump. */
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
			start_closing(c);
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

/* ---- WebSocket tunnels (GET /v1/tunnel) ---------------------------------------------- */

#define WS_DOWN_HDR 4 /* upstream bytes are read this far into the send buffer (the header
                       * of a frame of at most 65535 bytes goes in front of them) */

/* Queue a close frame with this status and read no more frames. */
static void
ws_fail(struct conn *c, unsigned code, const char *why)
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
			ws_fail(c, ws_close_code(rc), ws_str(rc));
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

/* The frame adapter (hop.h), client side: decode frames from the front's bytes (what was
 * pipelined after the head first: the end's prefix), unmask data in place and hand it to
 * the pump; control frames are taken here. Both buffers are ours to write. */
static unsigned char *
ws_in(void *ctx, size_t *len, int *progress)
{
	struct conn *c = ctx;
	struct hop_end *f = &c->hop.front;
	unsigned char *b;
	size_t n, used;
	int rc;

	while ((b = hop_rbuf(f, len)) != NULL) {
		if (c->ws_ready) {
			if (*len > c->ws_ready)
				*len = c->ws_ready;
			return b;
		}
		if (c->ws_close_due || c->ws_close_sent || c->ws_up_dead) {
			hop_rack(f, *len); /* closing: what follows is dropped, never parsed */
			*progress = 1;
			continue;
		}
		if (c->ws_rx.left == 0) {
			rc = ws_rx_header(&c->ws_rx, b, *len, &used);
			hop_rack(f, used);
			*progress = 1;
			if (rc == WS_OK) {
				c->ws_ctl_len = 0;
				if (c->ws_rx.left == 0 && (c->ws_rx.opcode & 8))
					ws_control(c);
			} else if (rc != WS_MORE) {
				ws_fail(c, ws_close_code(rc), ws_str(rc));
			}
			continue;
		}
		n = ws_rx_unmask(&c->ws_rx, b, *len);
		if (c->ws_rx.opcode & 8) {
			memcpy(c->ws_ctl + c->ws_ctl_len, b, n); /* left <= 125 - ws_ctl_len */
			c->ws_ctl_len = (uint8_t)(c->ws_ctl_len + n);
			hop_rack(f, n);
			*progress = 1;
			if (c->ws_rx.left == 0)
				ws_control(c);
		} else {
			c->ws_ready = n; /* unmasked payload at the start of b */
		}
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

/* Upstream -> client: control frames first (pong, close; a close 1000 once the upstream
 * ended), then room for upstream bytes WS_DOWN_HDR into the send buffer, at most one
 * frame of 65535 bytes, the header written in front by ws_out_ack. */
static unsigned char *
ws_out(void *ctx, size_t *room, int *progress)
{
	struct conn *c = ctx;
	struct hop_end *f = &c->hop.front;
	unsigned char *b;
	size_t r;

	while (!c->ws_close_sent) {
		b = hop_wbuf(f, &r);
		if (c->ws_pong_due || c->ws_close_due) {
			unsigned op = c->ws_pong_due ? WS_OP_PONG : WS_OP_CLOSE;
			size_t plen = op == WS_OP_PONG ? c->ws_pong_len : c->ws_code ? 2 : 0;
			if (b == NULL || r < 2 + plen)
				return NULL;
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
			continue;
		}
		if (c->ws_close_rcvd || c->ws_up_dead)
			return NULL;
		if (c->hop.up_eof) { /* the console closed: tell the client, normally */
			c->ws_code = WS_CLOSE_NORMAL;
			c->ws_close_due = 1;
			continue;
		}
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
ws_up_fail(void *ctx, const char *why)
{
	struct conn *c = ctx;

	ws_up_done(c);
	ws_fail(c, WS_CLOSE_INTERNAL, why);
}

/* Upstream poll interest: read while a frame fits in the client side's send buffer, write
 * while unmasked payload waits. */
static void
ws_wants(const void *ctx, int *read_up, int *write_up)
{
	const struct conn *c = ctx;

	*read_up = *write_up = 0;
	if (c->ws_up_dead || c->ws_close_rcvd || c->ws_close_due || c->ws_close_sent)
		return;
	*read_up = !c->hop.up_eof && hop_wroom(&c->hop.front) > WS_DOWN_HDR;
	*write_up = c->ws_ready > 0;
}

static const struct hop_frame ws_frame = { ws_in, ws_in_ack, ws_out, ws_out_ack, ws_up_fail,
	ws_wants };

/* One round of a WebSocket tunnel: the pump through the frame adapter, then the closing
 * rules. Returns whether anything moved. */
static int
ws_tunnel(struct conn *c)
{
	struct hop_end *f = &c->hop.front;
	int progress = hop_pump(&c->hop);
	size_t len;

	if (c->ws_close_sent && hop_wempty(f)) {
		/* Our close frame is out: close_notify (TLS) or FIN, input discarded until the
		 * client's EOF or the linger ends (CLOSING). */
		start_closing(c);
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

/* ---- PROXY protocol header (SPEC §2.1) ------------------------------------------------ */

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
	}
	c->pp_len = 0;
	set_state(c, CS_HEAD);
}

/* PPHDR: read the header from the raw socket without ever taking a byte past its end.
 * Peek at what has arrived, then take exactly the bytes that are certainly header: all
 * of them while the header is incomplete (a header has no end before its last byte), up
 * to its end once it is whole; what follows stays in the socket for BearSSL or the HTTP
 * head. Taking the bytes (not just peeking) keeps a half-sent header from making poll()
 * spin. */
static void
pp_step(struct conn *c)
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
			if (errno == EAGAIN || errno == EINTR)
				return;
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

/* ---- driving ------------------------------------------------------------------------ */

/* Do everything that can be done now without blocking. */
static void
run(struct conn *c)
{
	int rounds;

	if (c->state == CS_PPHDR) {
		pp_step(c);
		if (c->state != CS_HEAD)
			return; /* closed, or the header is not whole yet */
	}
	for (rounds = 0; rounds < 16 && c->state != CS_DEAD; rounds++) {
		int progress, rc = client_io(c);

		if (rc < 0) {
			conn_close(c, c->state == CS_CLOSING ? "closed" : "client i/o error");
			return;
		}
		progress = rc;
		switch (c->state) {
		case CS_HEAD:
			read_head(c);
			if (c->state == CS_HEAD || c->state == CS_DEAD)
				return; /* needs more bytes, or closed */
			progress = 1;
			break;
		case CS_RESOLVE:
		case CS_CONNECT:
		case CS_PROXY:
		case CS_PPHDR:
		case CS_DEAD:
			return;
		case CS_TUNNEL:
			if (hop_io(&c->hop.up) < 0) {
				conn_close(c, "upstream i/o error");
				return;
			}
			if (c->websocket) {
				if ((progress |= ws_tunnel(c)))
					c->last_io = srv.now_ms;
				break;
			}
			rc = hop_pump(&c->hop);
			if (rc < 0) {
				conn_close(c, rc == HOP_E_WRITE ? "upstream write error" : "upstream read error");
				return;
			}
			if ((progress |= rc))
				c->last_io = srv.now_ms;
			tunnel_eof(c);
			break;
		case CS_RESPOND:
			if (hop_wempty(&c->hop.front)) {
				if (c->keep_alive)
					next_request(c);
				else
					start_closing(c);
				progress = 1;
			}
			break;
		case CS_CLOSING: {
			struct hop_end *f = &c->hop.front;
			size_t len;
			if (f->eof || f->closed) {
				conn_close(c, "closed");
				return;
			}
			if (!c->sc)
				hop_shutdown(f); /* the response is out (client_io flushed it) */
			/* Input is discarded, never parsed (TLS: the engine reads on until the
			 * client's close_notify). */
			if (hop_rbuf(f, &len)) {
				hop_rack(f, len);
				progress = 1;
			}
			break;
		}
		}
		if (!progress)
			return;
	}
}

/* see conn.h */
void
conn_events(struct conn *c, short crev, short urev)
{
	(void)crev;
	if (c->state == CS_CONNECT && urev) {
		int err = net_connect_result(c->hop.up.fd);
		if (err != 0) {
			c->last_errno = err;
			close(c->hop.up.fd);
			c->hop.up.fd = -1;
			connect_next(c);
			run(c);
			return;
		}
		if (c->via) {
			set_state(c, CS_PROXY);
			c->preq_off = c->presp_len = 0;
			c->preq_done = 0;
			if (c->via->tls && up_tls_start(c) != ERR_OK) {
				c->hop.up.err = BR_ERR_BAD_PARAM;
				proxy_tls_failed(c);
				run(c);
				return;
			}
			proxy_step(c);
		} else {
			tunnel_start(c);
		}
	} else if (c->state == CS_PROXY && urev) {
		proxy_step(c);
	}
	run(c);
}

/* see conn.h */
void
conn_interest(const struct conn *c, int *cfd, short *cev, int *ufd, short *uev)
{
	const struct hop_end *f = &c->hop.front, *u = &c->hop.up;

	*cfd = f->fd;
	*ufd = u->fd;
	*uev = 0;
	if (c->state == CS_PPHDR) {
		*cev = POLLIN; /* the raw socket: BearSSL sees nothing before the header is read */
		return;
	}
	/* The client is read while a head, tunnel bytes or (CLOSING) the discarded rest can
	 * come; what is queued for it is always written. */
	*cev = hop_interest(f, c->state == CS_HEAD || c->state == CS_TUNNEL ||
	    c->state == CS_CLOSING, 0);
	if (u->fd < 0)
		return;
	if (c->state == CS_CONNECT)
		*uev = POLLOUT;
	else if (c->state == CS_PROXY)
		*uev = hop_interest(u, 1, !c->preq_done);
	else if (c->state == CS_TUNNEL)
		*uev = hop_up_interest(&c->hop);
}

/* see conn.h */
void
conn_tick(struct conn *c, int64_t now)
{
	if (c->state == CS_TUNNEL) {
		if (now - c->last_io >= (int64_t)srv.cfg->idle_timeout * 1000)
			conn_close(c, "idle timeout");
		return;
	}
	if (now < c->deadline)
		return;
	switch (c->state) {
	case CS_HEAD:
		conn_close(c, "header timeout");
		break;
	case CS_PPHDR:
		log_pp_fail(c, "no complete header within headerTimeout");
		conn_close(c, "header timeout");
		break;
	case CS_RESOLVE:
		c->last_errno = ETIMEDOUT;
		upstream_failed(c, 1);
		run(c);
		break;
	case CS_PROXY:
		c->last_errno = ETIMEDOUT;
		upstream_failed(c, 1);
		run(c);
		break;
	case CS_CONNECT:
		close(c->hop.up.fd);
		c->hop.up.fd = -1;
		c->last_errno = ETIMEDOUT;
		if (c->addr_i < c->naddr)
			connect_next(c);
		else
			upstream_failed(c, 1);
		run(c);
		break;
	default:
		conn_close(c, "response timeout");
	}
}

/* see conn.h */
void
conn_shutdown(struct conn *c)
{
	if ((c->state == CS_HEAD && c->head_len == 0) || c->state == CS_PPHDR)
		conn_close(c, "shutting down");
}

/* Connection blocks freed recently, kept for the next accepts. musl returns a freed block
 * of this size to the kernel (munmap), and on these VMs each of those costs a TLB
 * shoot-down on the other CPU: 8-12% of the relay's CPU under a new-connection load
 * (docs/performance.md). A block is reused only for a connection of exactly the same
 * footprint (listener kind and maxHeaderBytes), so memory per connection is still decided
 * at accept; at most CONN_SPARE_MAX blocks wait here, and none once accepts have paused
 * for CONN_SPARE_IDLE_MS (so a burst does not leave its memory resident). Under AddressSanitizer none are kept,
 * so a use after conn_close() is still caught. */
#define CONN_SPARE_MAX 32
#define CONN_SPARE_IDLE_MS 5000 /* no accept for this long: the spares go back (conn_trim) */
#ifdef __SANITIZE_ADDRESS__
#define CONN_SPARE_KEEP 0
#else
#define CONN_SPARE_KEEP CONN_SPARE_MAX
#endif
static struct {
	void *p;
	size_t size;
} spare[CONN_SPARE_MAX];
static int nspare;
static int64_t spare_used_ms; /* when a spare block last served an accept */

/* see conn.h */
void
conn_trim(int64_t now)
{
	if (nspare == 0 || now - spare_used_ms < CONN_SPARE_IDLE_MS)
		return;
	while (nspare > 0)
		free(spare[--nspare].p);
}

static void *
block_get(size_t size)
{
	int i;

	spare_used_ms = srv.now_ms;

	for (i = nspare - 1; i >= 0; i--) {
		if (spare[i].size == size) {
			void *p = spare[i].p;
			spare[i] = spare[--nspare];
			return p;
		}
	}
	return malloc(size);
}

static void
block_put(void *p, size_t size)
{
	if (nspare < CONN_SPARE_KEEP) {
		spare[nspare].p = p;
		spare[nspare++].size = size;
	} else {
		free(p);
	}
}

/* see conn.h */
struct conn *
conn_new(int fd, const struct net_addr *peer, int tls, int over_limit, int proxy_hdr)
{
	size_t head_cap = srv.cfg->max_header_bytes + CONN_HEAD_SLACK;
	size_t total = conn_footprint(tls);
	unsigned char *block = block_get(total), *p;
	struct conn *c = (struct conn *)(void *)block;

	if (block == NULL)
		return NULL;
	memset(c, 0, sizeof *c);
	c->block_size = total;
	p = block + sizeof *c;
	c->state = proxy_hdr ? CS_PPHDR : CS_HEAD;
	c->over_limit = over_limit ? 1 : 0;
	c->t_start = srv.now_ms;
	c->deadline = srv.now_ms + (int64_t)srv.cfg->header_timeout * 1000;
	c->peer_addr = *peer;
	net_addr_text(peer, c->peer, 1);
	c->head = (char *)p;
	c->head_max = srv.cfg->max_header_bytes;
	c->head_cap = head_cap;
	p += head_cap;
	c->kind = tls;
	c->mlistener = tls == CONN_ADMIN ? METRICS_ADMIN : tls == CONN_TLS ? METRICS_HTTPS : METRICS_HTTP;
	if (tls == CONN_ADMIN) {
		hop_end_plain(&c->hop.front, fd, p, CONN_ADMIN_IBUF, p + CONN_ADMIN_IBUF, CONN_ADMIN_OBUF);
	} else if (tls) {
		c->sc = (br_ssl_server_context *)(void *)p;
		p += sizeof(br_ssl_server_context);
		if (tls_server_init(c->sc, p, TLS_IBUF, p + TLS_IBUF, TLS_OBUF) != ERR_OK) {
			block_put(block, total);
			return NULL;
		}
		hop_end_tls(&c->hop.front, fd, &c->sc->eng);
		p += TLS_IBUF + TLS_OBUF;
	} else {
		hop_end_plain(&c->hop.front, fd, p, CONN_PLAIN_BUF, p + CONN_PLAIN_BUF, CONN_PLAIN_BUF);
		p += 2 * CONN_PLAIN_BUF;
	}
	hop_end_plain(&c->hop.up, -1, NULL, 0, NULL, 0);
	if (up_tls_mem && tls != CONN_ADMIN) { /* after the client-side buffers (see conn_footprint) */
		p = block + ((size_t)(p - block) + 15) / 16 * 16;
		c->ucc = (br_ssl_client_context *)(void *)p;
		p += sizeof(br_ssl_client_context);
		c->uxc = (br_x509_minimal_context *)(void *)p;
		p += sizeof(br_x509_minimal_context);
		c->uibuf = p;
		c->uobuf = p + CONN_UP_IBUF;
	}
	http_init(&c->req);
	c->slot = server_add_conn(c);
	if (c->slot < 0) {
		block_put(block, total);
		return NULL;
	}
	metrics_conn_open((enum metrics_listener)c->mlistener);
	return c;
}

/* see conn.h */
void
conn_close(struct conn *c, const char *reason)
{
	if (c->state == CS_DEAD)
		return; /* the first reason stays */
	c->close_reason = reason;
	set_state(c, CS_DEAD);
}

/* see conn.h */
int
conn_dead(const struct conn *c)
{
	return c->state == CS_DEAD;
}

/* see conn.h */
void
conn_free(struct conn *c)
{
	const char *reason = c->close_reason ? c->close_reason : "closed";
	struct log_rec r;

	if (c->tunnel_open && log_begin(&r, LOG_INFO, "tunnel.close")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "user", c->who);
		log_str(&r, "target", c->target.host.name);
		log_int(&r, "port", c->target.port);
		log_int(&r, "bytes_up", (int64_t)c->hop.up_bytes);
		log_int(&r, "bytes_down", (int64_t)c->hop.down_bytes);
		if (c->websocket)
			log_int(&r, "ws_close", c->ws_close_sent ? c->ws_code : 0);
		log_int(&r, "duration_ms", srv.now_ms - c->t_start);
		log_str(&r, "reason", reason);
		log_end(&r);
	} else if (log_begin(&r, LOG_DEBUG, "conn.close")) {
		log_str(&r, "client", c->peer);
		log_int(&r, "status", c->status);
		log_str(&r, "reason", reason);
		log_end(&r);
	}
	if (c->tunnel_open)
		metrics_tunnel_close(c->mseries);
	metrics_conn_close((enum metrics_listener)c->mlistener);
	if (c->hop.up.fd >= 0)
		close(c->hop.up.fd);
	close(c->hop.front.fd);
	if (c->sc)
		secret_wipe(c->sc, sizeof *c->sc); /* session keys */
	if (c->hop.up.eng) {
		secret_wipe(c->ucc, sizeof *c->ucc); /* the proxy hop's keys */
		secret_wipe(c->uobuf, CONN_UP_OBUF); /* may have held Proxy-Authorization */
		secret_wipe(c->uibuf, CONN_UP_IBUF);
	}
	secret_wipe(c->head, c->head_cap);   /* credentials */
	block_put(c, c->block_size);
}

/*
 * dial.c — route, resolve, connect, and the CONNECT exchange with an upstream proxy. See
 * dial.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "anchors.h"
#include "dial.h"
#include "err.h"
#include "hop.h"
#include "log.h"
#include "net.h"
#include "resolve.h"
#include "respond.h"
#include "secret.h"
#include "tls.h"
#include "tunnel.h"
#include "upstream.h"

/* The target cannot be reached: logged, 502 (or 504 when it timed out). */
static void
dial_failed(struct conn *c, int timed_out)
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
			hop_end_plain(&c->hop.up, fd, NULL, 0, NULL, 0); /* a direct end */
			conn_set_state(c, CS_CONNECT);
			c->deadline = c->rl->now_ms + (int64_t)c->rl->cfg->connect_timeout * 1000;
			return;
		}
		c->last_errno = errno;
	}
	dial_failed(c, 0);
}

/* An IP literal is connected to as written: one address. */
static void
literal(struct net_addr *a, const struct target_host *h, unsigned port)
{
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
}

/* Look the next hop up (IP literals need no lookup) and connect, or wait in RESOLVE. */
static void
resolve_and_connect(struct conn *c)
{
	const struct target_host *h = c->via ? &c->via->host : &c->target.host;
	unsigned port = c->via ? c->via->port : c->target.port;
	int rc;

	c->naddr = c->addr_i = 0;
	if (h->kind == TARGET_IPV4 || h->kind == TARGET_IPV6) {
		literal(&c->addrs[0], h, port);
		c->naddr = 1;
		connect_next(c);
		return;
	}
	rc = resolve_lookup(h->name, port, c->addrs, RESOLVE_MAX_ADDRS, &c->naddr);
	if (rc == ERR_OK) {
		connect_next(c);
	} else if (rc == ERR_TRUNC) {
		if (c->state != CS_RESOLVE) {
			conn_set_state(c, CS_RESOLVE);
			c->deadline = c->rl->now_ms + (int64_t)c->rl->cfg->connect_timeout * 1000;
		}
	} else {
		c->last_errno = EHOSTUNREACH;
		dial_failed(c, 0);
	}
}

/* see dial.h */
void
dial_start(struct conn *c)
{
	c->via = upstream_route(&c->rl->routes, &c->target.host, c->target.port);
	resolve_and_connect(c);
}

/* see dial.h */
void
dial_resolved(struct conn *c)
{
	if (c->state == CS_RESOLVE)
		resolve_and_connect(c);
}

/* ---- through an upstream proxy ------------------------------------------------------ */

/* Start TLS to the https:// proxy on the connected upstream socket: the relay's one
 * client policy (tls.h), the proxy's chain and name checked against conn_proxy_setup's
 * anchors. ERR_OK or an error. */
static int
up_tls_start(struct conn *c)
{
	const struct anchors *ta = conn_proxy_anchors();
	int rc;

	if (c->ucc == NULL || ta == NULL)
		return ERR_NOSPACE; /* the route appeared after start (see conn_proxy_setup) */
	rc = tls_client_init(c->ucc, c->uxc, ta->ta, ta->n, c->uibuf, CONN_UP_IBUF, c->uobuf,
	    CONN_UP_OBUF, c->via->host.name, NULL, 0);
	hop_end_tls(&c->hop.up, c->hop.up.fd, &c->ucc->eng);
	return rc;
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
		log_str(&r, "reason", c->ucc && conn_proxy_anchors() ?
		    upstream_tls_error(c->hop.up.err) : "restart_required");
		log_int(&r, "code", c->hop.up.err);
		log_end(&r);
	}
	respond_error(c, 502, "upstream_unreachable", "cannot reach the upstream proxy", NULL);
}

/* An upstream I/O error in PROXY state (errno set by hop_read/hop_write). */
static void
proxy_io_failed(struct conn *c)
{
	if (c->hop.up.eng && errno == EPROTO) {
		proxy_tls_failed(c);
		return;
	}
	c->last_errno = errno;
	dial_failed(c, 0);
}

/* PROXY: send CONNECT to the upstream proxy (through TLS for an https:// proxy) and read
 * its answer head. Bytes that came after the head belong to the tunnel: they stay in
 * presp[] as the upstream end's prefix and reach the client first. */
static void
proxy_step(struct conn *c)
{
	char req[UPSTREAM_REQ_MAX];
	size_t len = upstream_connect_request(c->via, &c->target.host, c->target.port, req,
	    sizeof req);
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
		c->preq_off += (uint32_t)n;
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
		c->presp_len += (uint32_t)n;
		rc = upstream_parse_answer(c->presp, c->presp_len, &status, &head_len);
		if (rc == ERR_OK)
			break;
		if (rc != ERR_TRUNC || c->presp_len == sizeof c->presp) {
			c->last_errno = EPROTO;
			dial_failed(c, 0);
			return;
		}
	}
	c->hop.up.pre = (unsigned char *)c->presp + head_len;
	c->hop.up.pre_len = c->presp_len - (uint32_t)head_len;
	if (status != 200) {
		struct log_rec r;
		if (log_begin(&r, LOG_WARN, "upstream.proxy_refused")) {
			log_str(&r, "client", c->peer);
			log_str(&r, "proxy", c->via->host.name);
			log_int(&r, "status", status);
			log_end(&r);
		}
		respond_error(c, 502, "upstream_unreachable", status == 407 || status == 401 ?
		    "the upstream proxy refused the relay's credentials" :
		    "the upstream proxy refused the tunnel", NULL);
		return;
	}
	tunnel_start(c);
}

/* see dial.h */
void
dial_event(struct conn *c)
{
	int err;

	if (c->state == CS_PROXY) {
		proxy_step(c);
		return;
	}
	if (c->state != CS_CONNECT)
		return;
	err = net_connect_result(c->hop.up.fd);
	if (err != 0) {
		c->last_errno = err;
		close(c->hop.up.fd);
		c->hop.up.fd = -1;
		connect_next(c);
		return;
	}
	if (c->via == NULL) {
		tunnel_start(c);
		return;
	}
	conn_set_state(c, CS_PROXY);
	c->preq_off = c->presp_len = 0;
	c->preq_done = 0;
	if (c->via->tls && up_tls_start(c) != ERR_OK) {
		c->hop.up.err = BR_ERR_BAD_PARAM;
		proxy_tls_failed(c);
		return;
	}
	proxy_step(c);
}

/* see dial.h */
void
dial_timeout(struct conn *c)
{
	c->last_errno = ETIMEDOUT;
	if (c->state == CS_CONNECT) {
		close(c->hop.up.fd);
		c->hop.up.fd = -1;
		if (c->addr_i < c->naddr) {
			connect_next(c);
			return;
		}
	}
	dial_failed(c, 1);
}

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

/* Try the resolved addresses from addr_i on. A UDP association's socket is connected at
 * once (UDP has no handshake): the tunnel starts. */
static void
connect_next(struct conn *c)
{
	while (c->addr_i < c->naddr) {
		int fd;
		if (c->udp) {
			fd = net_udp_connect(&c->addrs[c->addr_i++]);
			if (fd >= 0) {
				hop_end_dgram(&c->hop.up, fd);
				tunnel_start(c);
				return;
			}
			c->last_errno = errno;
			continue;
		}
		fd = net_connect_start(&c->addrs[c->addr_i++]);
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

/* socks5:// with a target name: the relay's own address for it, the socks_try-th of the
 * resolver's answer (the allowed-target rules: resolved by the relay, never a client's).
 * ERR_OK, ERR_TRUNC (no answer yet) or ERR_NOTFOUND (none, or no more to try). */
static int
socks_target_addr(const struct conn *c, struct net_addr *out)
{
	struct net_addr a[RESOLVE_MAX_ADDRS];
	int n = 0, rc = resolve_lookup(c->target.host.name, c->target.port, a, RESOLVE_MAX_ADDRS, &n);

	if (rc != ERR_OK)
		return rc;
	if (c->socks_try >= n || c->socks_try >= UPSTREAM_SOCKS5_TRIES)
		return ERR_NOTFOUND;
	*out = a[c->socks_try];
	return ERR_OK;
}

/* The relay resolves the target itself for a socks5:// proxy (not socks5h://). */
static int
socks_needs_addr(const struct conn *c)
{
	return c->via && c->via->socks == UPSTREAM_SOCKS5 && c->target.host.kind == TARGET_NAME;
}

/* Wait in RESOLVE for the resolver's news (from the state's first entry on). */
static void
wait_resolve(struct conn *c)
{
	if (c->state != CS_RESOLVE) {
		conn_set_state(c, CS_RESOLVE);
		c->deadline = c->rl->now_ms + (int64_t)c->rl->cfg->connect_timeout * 1000;
	}
}

/* Look the next hop up (IP literals need no lookup) and connect, or wait in RESOLVE. */
static void
resolve_and_connect(struct conn *c)
{
	const struct target_host *h = c->via ? &c->via->host : &c->target.host;
	unsigned port = c->via ? c->via->port : c->target.port;
	struct net_addr ta;
	int rc;

	c->naddr = c->addr_i = 0;
	if (socks_needs_addr(c)) { /* the target's address first: it is what the proxy gets */
		rc = socks_target_addr(c, &ta);
		if (rc == ERR_TRUNC) {
			wait_resolve(c);
			return;
		}
		if (rc != ERR_OK) {
			c->last_errno = EHOSTUNREACH;
			dial_failed(c, 0);
			return;
		}
	}
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
		wait_resolve(c);
	} else {
		c->last_errno = EHOSTUNREACH;
		dial_failed(c, 0);
	}
}

/* see dial.h */
void
dial_start(struct conn *c)
{
	/* UDP goes direct: an HTTP proxy carries no datagrams (nor does a SOCKS5 CONNECT) */
	c->via = c->udp ? NULL : upstream_route(&c->rl->routes, &c->target.host, c->target.port);
	c->socks_try = 0;
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
	hop_end_tls_same(&c->hop.up, &c->ucc->eng); /* still in the poll set */
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

/* The SOCKS5 proxy did not open the tunnel: logged with what it did, 502. A socks5://
 * proxy that cannot reach one of the target's addresses (replies 3, 4, 5) is asked for
 * the next one, on a new connection (at most UPSTREAM_SOCKS5_TRIES addresses). */
static void
socks_failed(struct conn *c)
{
	struct net_addr ta;
	char why[TARGET_HOST_MAX * 2 + 160];
	struct log_rec r;
	unsigned rep = c->socks.rep;

	if (c->socks.err == SOCKS5_E_REFUSED && (rep == 3 || rep == 4 || rep == 5) &&
	    socks_needs_addr(c)) {
		c->socks_try++;
		if (socks_target_addr(c, &ta) == ERR_OK) {
			close(c->hop.up.fd);
			hop_end_plain(&c->hop.up, -1, NULL, 0, NULL, 0);
			resolve_and_connect(c);
			return;
		}
	}
	upstream_socks5_why(c->via, &c->target.host, c->target.port, &c->socks, why, sizeof why);
	if (log_begin(&r, LOG_WARN, "upstream.proxy_refused")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "proxy", c->via->host.name);
		log_int(&r, "proxy_port", c->via->port);
		if (c->socks.err == SOCKS5_E_REFUSED)
			log_int(&r, "rep", rep);
		log_str(&r, "reason", why);
		log_end(&r);
	}
	respond_error(c, 502, "upstream_unreachable", "the upstream proxy refused the tunnel", NULL);
}

/* PROXY through a SOCKS5 proxy (socks5.h): the exchange on the connected socket, each
 * message read exactly (never a byte past the CONNECT reply: what follows stays in the
 * socket for the tunnel), the message that carried the password wiped after each write.
 * preq_done says whether the relay is waiting for the proxy (poll interest). */
static void
socks_step(struct conn *c)
{
	struct socks5_req req;
	unsigned char msg[SOCKS5_MSG_MAX], in[SOCKS5_REPLY_MAX];
	size_t n, used;
	ssize_t k;
	int w, e = 0;

	/* the same request at every step (socks5.h): from c->target and c->socks_addr */
	if (upstream_socks5_req(c->via, &c->target.host, c->target.port,
	    socks_needs_addr(c) ? &c->socks_addr : NULL, &req) != ERR_OK)
		return; /* cannot happen: socks_start built it from the same facts */
	for (;;) {
		w = socks5_want(&c->socks);
		c->preq_done = w != SOCKS5_WRITE;
		if (w == SOCKS5_WRITE) {
			n = socks5_output(&c->socks, &req, msg, sizeof msg);
			k = n ? hop_write(&c->hop.up, msg, n) : -1;
			e = errno;
			secret_wipe(msg, sizeof msg); /* it may have held the password */
			if (n == 0)
				continue; /* socks5_output failed the exchange */
			if (k < 0 && (e == EAGAIN || e == EINTR))
				return;
			if (k < 0 && (e == EPIPE || e == ECONNRESET))
				socks5_closed(&c->socks);
			else if (k < 0)
				break;
			else
				socks5_sent(&c->socks, (size_t)k);
		} else if (w == SOCKS5_READ) {
			k = hop_read(&c->hop.up, in, socks5_need(&c->socks)); /* exactly */
			e = errno;
			if (k < 0 && (e == EAGAIN || e == EINTR))
				return;
			if (k == 0 || (k < 0 && e == ECONNRESET))
				socks5_closed(&c->socks);
			else if (k < 0)
				break;
			else
				socks5_input(&c->socks, in, (size_t)k, &used);
		} else {
			break;
		}
	}
	if (w == SOCKS5_DONE) {
		tunnel_start(c);
	} else if (w == SOCKS5_WRITE || w == SOCKS5_READ) {
		errno = e;
		proxy_io_failed(c);
	} else {
		socks_failed(c);
	}
}

/* Connected to a SOCKS5 proxy: the request (for socks5://, the target's address the
 * relay resolved, kept for the whole exchange), then the exchange. */
static void
socks_start(struct conn *c)
{
	struct socks5_req req;

	memset(&c->socks_addr, 0, sizeof c->socks_addr);
	if ((socks_needs_addr(c) && socks_target_addr(c, &c->socks_addr) != ERR_OK) ||
	    upstream_socks5_req(c->via, &c->target.host, c->target.port,
	    socks_needs_addr(c) ? &c->socks_addr : NULL, &req) != ERR_OK ||
	    socks5_init(&c->socks, &req) != ERR_OK) {
		c->last_errno = EHOSTUNREACH;
		dial_failed(c, 0);
		return;
	}
	socks_step(c);
}

/* see dial.h */
void
dial_event(struct conn *c)
{
	int err;

	if (c->state == CS_PROXY) {
		if (c->via->socks)
			socks_step(c);
		else
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
	if (c->via->socks) {
		socks_start(c);
		return;
	}
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

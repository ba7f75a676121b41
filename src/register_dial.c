/*
 * register_dial.c — the registration thread reaching the console (register_int.h):
 * the console's addresses in turn, or the proxy route (HTTP CONNECT, inside a TLS session
 * to an https:// proxy under the relay's one client policy, or SOCKS5), each step bounded
 * by the attempt's deadline; and the byte I/O the console's TLS session runs on. It owns
 * nothing past the attempt and never logs: reasons go back to register.c in why. It must
 * not touch the answer or the tokens.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <bearssl.h>

#include "err.h"
#include "loop.h"
#include "register.h"
#include "register_int.h"
#include "secret.h"
#include "tls.h"
#include "upstream.h"

/* see register_int.h */
int64_t
reg_attempt_deadline(const struct reg *r)
{
	int64_t d = loop_now_ms() + REG_ATTEMPT_MS;

	return r->limit && r->limit < d ? r->limit : d;
}

/* One recv (buf) or send (wbuf) on the console socket before the attempt's deadline, EINTR
 * taken again; the byte count, or -1 with io_errno (ETIMEDOUT past the deadline or on the
 * socket's own timeout, 0 for a read at EOF). */
static int
raw_io(struct reg *r, unsigned char *buf, const unsigned char *wbuf, size_t len)
{
	ssize_t n;

	do {
		if (loop_now_ms() > r->deadline) {
			r->io_errno = ETIMEDOUT;
			return -1;
		}
		n = wbuf ? send(r->fd, wbuf, len, MSG_NOSIGNAL) : recv(r->fd, buf, len, 0);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		return (int)n;
	r->io_errno = n == 0 && !wbuf ? 0 : errno == EAGAIN ? ETIMEDOUT : errno;
	return -1;
}

static int
raw_read(void *ctx, unsigned char *buf, size_t len)
{
	return raw_io(ctx, buf, NULL, len);
}

static int
raw_write(void *ctx, const unsigned char *buf, size_t len)
{
	return raw_io(ctx, NULL, buf, len);
}

/* The console session's transport: the socket, or the TLS session to an https:// proxy. */
/* see register_int.h */
int
reg_sock_read(void *ctx, unsigned char *buf, size_t len)
{
	struct reg *r = ctx;

	return r->pt ? br_sslio_read(&r->pt->io, buf, len) : raw_read(ctx, buf, len);
}

/* see register_int.h */
int
reg_sock_write(void *ctx, const unsigned char *buf, size_t len)
{
	struct reg *r = ctx;

	if (r->pt == NULL)
		return raw_write(ctx, buf, len);
	if (br_sslio_write_all(&r->pt->io, buf, len) != 0 || br_sslio_flush(&r->pt->io) != 0)
		return -1;
	return (int)len;
}

/* Why the TLS session to an https:// proxy failed. */
static void
proxy_tls_why(struct reg *r, char *why, size_t whylen)
{
	int err = br_ssl_engine_last_error(&r->pt->cc.eng);

	if (err == BR_ERR_OK || err == BR_ERR_IO)
		snprintf(why, whylen, "tls to the proxy %s: connection %s", r->proxy.host.name,
		    r->io_errno ? strerror(r->io_errno) : "closed");
	else
		snprintf(why, whylen, "tls to the proxy %s: %s", r->proxy.host.name,
		    upstream_tls_error(err));
}

/* Through the upstream proxy (inside TLS to it for an https:// proxy): CONNECT to the
 * console and read the answer head byte by byte (what follows it is the console's TLS). */
static int
proxy_connect(struct reg *r, char *why, size_t whylen)
{
	char req[UPSTREAM_REQ_MAX], head[1024];
	size_t len = upstream_connect_request(&r->proxy, &r->target, (unsigned)atoi(r->port), req,
	    sizeof req), n = 0, hl;
	int status = 0, rc = ERR_TRUNC, sent;

	r->deadline = reg_attempt_deadline(r);
	r->io_errno = 0;
	if (r->pt) {
		struct reg_ptls *pt = r->pt;
		unsigned char seed[32];
		if (pt->trust_err[0]) {
			snprintf(why, whylen, "%s", pt->trust_err);
			secret_wipe(req, sizeof req);
			close(r->fd);
			r->fd = -1;
			return ERR_IO;
		}
		br_hmac_drbg_generate(&r->rng, seed, sizeof seed);
		rc = tls_client_init(&pt->cc, &pt->xc, pt->an.ta, pt->an.n, pt->iobuf,
		    BR_SSL_BUFSIZE_INPUT, pt->iobuf + BR_SSL_BUFSIZE_INPUT,
		    sizeof pt->iobuf - BR_SSL_BUFSIZE_INPUT, r->proxy.host.name, seed, sizeof seed);
		secret_wipe(seed, sizeof seed);
		br_sslio_init(&pt->io, &pt->cc.eng, raw_read, r, raw_write, r);
		sent = rc == ERR_OK && len > 0 && br_sslio_write_all(&pt->io, req, len) == 0 &&
		    br_sslio_flush(&pt->io) == 0;
		rc = ERR_TRUNC;
	} else {
		sent = len > 0 && send(r->fd, req, len, MSG_NOSIGNAL) == (ssize_t)len;
	}
	secret_wipe(req, sizeof req);
	if (!sent) {
		if (r->pt)
			proxy_tls_why(r, why, whylen);
		else
			snprintf(why, whylen, "cannot send CONNECT to the proxy");
		close(r->fd);
		r->fd = -1;
		return ERR_IO;
	}
	while (rc == ERR_TRUNC && n < sizeof head && (r->pt ?
	    br_sslio_read(&r->pt->io, head + n, 1) == 1 : recv(r->fd, head + n, 1, 0) == 1)) {
		n++;
		rc = upstream_parse_answer(head, n, &status, &hl);
	}
	if (rc != ERR_OK || status != 200) {
		if (r->pt && rc == ERR_TRUNC && br_ssl_engine_last_error(&r->pt->cc.eng) != BR_ERR_OK)
			proxy_tls_why(r, why, whylen);
		else
			snprintf(why, whylen, "the upstream proxy refused the tunnel (status %d)", status);
		close(r->fd);
		r->fd = -1;
		return ERR_IO;
	}
	return ERR_OK;
}

/* Resolve and connect to each address in turn. ERR_OK with r->fd, or a reason. */
/* see register_int.h */
int
reg_dial(struct reg *r, char *why, size_t whylen)
{
	struct addrinfo hints, *res, *ai;
	int64_t io_ms = REG_IO_TIMEOUT_MS, left = r->limit - loop_now_ms();
	struct timeval tv;
	int rc, e = 0;
	char pport[8];

	if (r->limit && left < io_ms)
		io_ms = left > 1 ? left : 1;
	tv.tv_sec = (time_t)(io_ms / 1000);
	tv.tv_usec = (suseconds_t)(io_ms % 1000) * 1000;
	if (r->via_proxy && r->proxy.socks) { /* SOCKS5: upstream.c dials and runs the exchange */
		r->fd = upstream_socks5_dial(&r->proxy, &r->target, (unsigned)atoi(r->port),
		    (int)io_ms, why, whylen);
		return r->fd >= 0 ? ERR_OK : ERR_IO;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(pport, sizeof pport, "%u", r->proxy.port);
	rc = r->via_proxy ? getaddrinfo(r->proxy.host.name, pport, &hints, &res) :
	    getaddrinfo(r->host, r->port, &hints, &res);
	if (rc != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s",
		    r->via_proxy ? r->proxy.host.name : r->host, gai_strerror(rc));
		return ERR_IO;
	}
	r->fd = -1;
	for (ai = res; ai != NULL && r->fd < 0 && !reg_cancelled(r); ai = ai->ai_next) {
		r->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (r->fd < 0) {
			e = errno;
			continue;
		}
		/* On Linux SO_SNDTIMEO also bounds connect(). */
		setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (connect(r->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
			close(r->fd);
			r->fd = -1;
		}
	}
	freeaddrinfo(res);
	if (r->fd < 0) {
		snprintf(why, whylen, "cannot connect%s: %s", r->via_proxy ? " to the proxy" : "",
		    e ? strerror(e) : "cancelled");
		return ERR_IO;
	}
	return r->via_proxy ? proxy_connect(r, why, whylen) : ERR_OK;
}

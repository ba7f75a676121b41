/*
 * register.c — console registration on a thread of its own. See register.h.
 *
 * The parsers (address, HTTP answer, JSON answer) and the body builder are pure and take
 * (buf, len); the thread part owns one heap block (struct reg) holding every buffer it
 * needs — trust anchors, the BearSSL contexts and I/O buffer, the answer — so its stack
 * stays small and its secrets are wiped in one place before the block is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#include "anchors.h"
#include "cfgwrite.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "rand.h"
#include "register.h"
#include "upstream.h"
#include "secret.h"
#include "units.h"
#include "tls.h"

#ifndef RELAYPRO_VERSION
#define RELAYPRO_VERSION "dev"
#endif

enum { A_DONE, A_RETRY, A_SLOW };

/* Everything one registration thread owns; wiped and freed when it ends. */
struct reg {
	unsigned gen;
	register_done_fn done;
	void *user;
	uint32_t base_ms, cap_ms;
	char host[CFG_STR], port[8], console[CFG_STR + 16];
	char ca[CFG_PEM], ca_file[CFG_PATH];
	char *req;                 /* request head and body: holds the deployment token */
	size_t reqlen;
	int fd, io_errno;
	int64_t deadline;
	int64_t limit;             /* register_once: no attempt runs past it (0 = none) */
	br_hmac_drbg_context rng;  /* this thread's own: rand.c is not thread-safe */
	struct anchors an;
	br_ssl_client_context cc;
	br_x509_minimal_context xc;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
	char resp[REG_RESP_MAX];
	char token[REG_TOKEN_MAX + 1];
	int via_proxy;             /* proxyEnabled and HTTPS_PROXY applies (SPEC §2.4) */
	struct upstream_proxy proxy;
	struct target_host target;
	struct reg_ptls *pt;       /* https:// proxy: the TLS session to it, else NULL */
};

/* An https:// proxy: the console's TLS session runs inside a TLS session to the proxy
 * (SPEC §2.4). Allocated only then; its anchors are read once, by register_start. */
struct reg_ptls {
	struct anchors an;
	char trust_err[CFG_PATH + 160]; /* why the anchors could not be loaded ("" when they were) */
	br_ssl_client_context cc;
	br_x509_minimal_context xc;
	br_sslio_context io;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
};

/* gen changes on every start and stop; a thread whose gen is stale is cancelled. mu
 * orders done() against register_stop(). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned gen;
static uint32_t set_base_ms, set_cap_ms;

static int
cancelled(const struct reg *r)
{
	return __atomic_load_n(&gen, __ATOMIC_ACQUIRE) != r->gen;
}

/* ---------------------------------------------------------------- pure parts */

/* see register.h */
uint32_t
register_backoff_ms(unsigned failures, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd)
{
	uint64_t d = base_ms;
	unsigned i;

	for (i = 1; i < failures && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	d = d * (800 + rnd % 401) / 1000;
	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* see register.h */
int
register_split_address(const char *addr, char *host, size_t hostcap, char *port,
    size_t portcap)
{
	const char *h = addr, *p = NULL, *c = strchr(addr, ':');
	size_t hl, pl, i;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (rb == NULL || (rb[1] != 0 && rb[1] != ':'))
			return ERR_INVAL;
		h = addr + 1;
		hl = (size_t)(rb - h);
		p = rb[1] ? rb + 2 : NULL;
	} else if (c != NULL && strchr(c + 1, ':') == NULL) {
		hl = (size_t)(c - addr);
		p = c + 1;
	} else {
		hl = strlen(addr); /* a name, or a bare IPv6 literal */
	}
	if (p == NULL)
		p = "443";
	pl = strlen(p);
	if (hl == 0 || pl == 0 || pl > 5 || p[0] == '0')
		return ERR_INVAL;
	for (i = 0; i < pl; i++)
		if (p[i] < '0' || p[i] > '9')
			return ERR_INVAL;
	if (atoi(p) > 65535)
		return ERR_INVAL;
	if (hl >= hostcap || pl >= portcap)
		return ERR_NOSPACE;
	memcpy(host, h, hl);
	host[hl] = 0;
	memcpy(port, p, pl + 1);
	return ERR_OK;
}

/* Append s[0..n) (JSON-escaped when esc) at out + *o; out == NULL only counts. */
static void
put(char *out, size_t *o, const char *s, size_t n, int esc)
{
	if (esc) {
		*o += json_escape(out ? out + *o : NULL, (size_t)-1 / 2, s, n);
		return;
	}
	if (out)
		memcpy(out + *o, s, n);
	*o += n;
}

static size_t
body_pass(char *w, const char *num, const char *const val[4])
{
	static const char *const name[] = { "deploymentToken", "relayProId", "hostname", "version" };
	size_t o = 0, i;

	put(w, &o, "{\"organizationId\":", 18, 0);
	put(w, &o, num, strlen(num), 0);
	for (i = 0; i < 4; i++) {
		put(w, &o, ",\"", 2, 0);
		put(w, &o, name[i], strlen(name[i]), 0);
		put(w, &o, "\":\"", 3, 0);
		put(w, &o, val[i], strlen(val[i]), 1);
		put(w, &o, "\"", 1, 0);
	}
	put(w, &o, "}", 1, 0);
	return o;
}

/* see register.h */
size_t
register_body(char *out, size_t cap, int64_t org, const char *deployment_token,
    const char *relay_pro_id, const char *hostname, const char *version)
{
	const char *const val[4] = { deployment_token, relay_pro_id, hostname, version };
	char num[24];
	size_t n;

	snprintf(num, sizeof num, "%lld", (long long)org);
	n = body_pass(NULL, num, val);
	if (out != NULL && n < cap) {
		body_pass(out, num, val);
		out[n] = 0;
	}
	return n;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A byte allowed in a reason phrase, header value or chunk extension. */
static int
textbyte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* An RFC 9110 token character (header names). */
static int
tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	    (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Chunked body at buf[start..len): checks it (write == 0) or also decodes it in place to
 * buf[start..) (write == 1). ERR_TRUNC when incomplete. */
static int
dechunk(char *buf, size_t len, size_t start, size_t *outlen, int write)
{
	size_t p = start, o = start, size, e;
	int digits, v;

	for (;;) {
		for (size = 0, digits = 0; p < len && (v = hexval(buf[p])) >= 0; p++, digits++) {
			size = size * 16 + (size_t)v;
			if (size > REG_RESP_MAX)
				return ERR_INVAL; /* could never fit */
		}
		if (p < len && digits == 0)
			return ERR_INVAL;
		if (p < len && buf[p] == ';') /* chunk extensions are ignored */
			for (; p < len && buf[p] != '\r'; p++)
				if (!textbyte((unsigned char)buf[p]))
					return ERR_INVAL;
		if (p < len && buf[p] != '\r')
			return ERR_INVAL;
		if (len - p < 2)
			return ERR_TRUNC;
		if (buf[p + 1] != '\n')
			return ERR_INVAL;
		p += 2;
		if (size == 0)
			break;
		if (len - p < size + 2)
			return ERR_TRUNC;
		if (buf[p + size] != '\r' || buf[p + size + 1] != '\n')
			return ERR_INVAL;
		if (write)
			memmove(buf + o, buf + p, size);
		o += size;
		p += size + 2;
	}
	for (;;) { /* trailer lines, then an empty line */
		for (e = p; e < len && buf[e] != '\r'; e++)
			if (!textbyte((unsigned char)buf[e]))
				return ERR_INVAL;
		if (len - e < 2)
			return ERR_TRUNC;
		if (buf[e + 1] != '\n')
			return ERR_INVAL;
		if (e == p)
			break;
		p = e + 2;
	}
	*outlen = o - start;
	return ERR_OK;
}

/* see register.h */
int
register_parse_response(char *buf, size_t len, int eof, int *status, char **body,
    size_t *bodylen)
{
	size_t p, e, hend, cl = 0, n, i;
	int have_cl = 0, chunked = 0, rc;
	const int more = eof ? ERR_INVAL : ERR_TRUNC;

	for (hend = 0; hend + 4 <= len && memcmp(buf + hend, "\r\n\r\n", 4) != 0; hend++)
		;
	if (hend + 4 > len) {
		/* a head that has already gone wrong needs no more bytes to be refused */
		if (len >= 9 && (memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' '))
			return ERR_INVAL;
		return more;
	}
	hend += 2; /* end of the last header line's CRLF... */
	if (hend < 14 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9' || buf[12] != ' ')
		return ERR_INVAL;
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	for (p = 13; buf[p] != '\r'; p++)
		if (!textbyte((unsigned char)buf[p]))
			return ERR_INVAL;
	if (buf[p + 1] != '\n')
		return ERR_INVAL;
	for (p += 2; p < hend; p = e + 2) {
		size_t name, vs, ve;

		for (e = p; buf[e] != ':' && buf[e] != '\r'; e++)
			if (!tchar((unsigned char)buf[e]))
				return ERR_INVAL;
		if (buf[e] != ':' || e == p)
			return ERR_INVAL;
		name = e - p;
		for (vs = e + 1; buf[vs] == ' ' || buf[vs] == '\t'; vs++)
			;
		for (e = vs; buf[e] != '\r'; e++)
			if (!textbyte((unsigned char)buf[e]))
				return ERR_INVAL;
		if (buf[e + 1] != '\n')
			return ERR_INVAL;
		for (ve = e; ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'); ve--)
			;
		if (name == 14 && strncasecmp(buf + p, "content-length", 14) == 0) {
			if (ve == vs || ve - vs > 9)
				return ERR_INVAL;
			for (n = 0, i = vs; i < ve; i++) {
				if (buf[i] < '0' || buf[i] > '9')
					return ERR_INVAL;
				n = n * 10 + (size_t)(buf[i] - '0');
			}
			if (have_cl && n != cl)
				return ERR_INVAL;
			cl = n;
			have_cl = 1;
		} else if (name == 17 && strncasecmp(buf + p, "transfer-encoding", 17) == 0) {
			if (chunked || ve - vs != 7 || strncasecmp(buf + vs, "chunked", 7) != 0)
				return ERR_INVAL;
			chunked = 1;
		}
	}
	hend += 2; /* ...and of the empty line */
	if (have_cl && chunked)
		return ERR_INVAL;
	*body = buf + hend;
	if (*status < 200 || *status == 204 || *status == 304) {
		*bodylen = 0;
	} else if (have_cl) {
		if (len - hend < cl)
			return more;
		*bodylen = cl;
	} else if (chunked) {
		rc = dechunk(buf, len, hend, bodylen, 0);
		if (rc != ERR_OK)
			return rc == ERR_TRUNC ? more : rc;
		dechunk(buf, len, hend, bodylen, 1);
	} else {
		if (!eof)
			return ERR_TRUNC;
		*bodylen = len - hend;
	}
	return ERR_OK;
}

struct answer {
	int64_t id;
	int have_id, have_token;
	char *token;
	size_t cap, toklen;
};

static int
answer_member(void *user, const char *key, size_t keylen, struct json *j)
{
	struct answer *a = user;

	if (keylen == 7 && memcmp(key, "relayId", 7) == 0) {
		a->have_id = 1;
		if (json_peek(j) != JSON_NUMBER || json_read_int(j, &a->id) != ERR_OK || a->id < 1)
			return ERR_INVAL;
		return ERR_OK;
	}
	if (keylen == 13 && memcmp(key, "securityToken", 13) == 0) {
		a->have_token = 1;
		if (json_peek(j) != JSON_STRING ||
		    json_read_string(j, a->token, a->cap, &a->toklen) != ERR_OK)
			return ERR_INVAL;
		return ERR_OK;
	}
	return json_skip(j);
}

/* see register.h */
int
register_parse_answer(const char *body, size_t len, int64_t *relay_id, char *token,
    size_t cap)
{
	struct answer a;
	struct json j;
	size_t i;
	int ok;

	memset(&a, 0, sizeof a);
	a.token = token;
	a.cap = cap < REG_TOKEN_MAX + 1 ? cap : REG_TOKEN_MAX + 1;
	json_init(&j, body, len);
	ok = cap > 0 && json_walk_object(&j, answer_member, &a) == ERR_OK &&
	    json_end(&j) == ERR_OK && a.have_id && a.have_token && a.toklen > 0 &&
	    token[0] != ' ' && token[a.toklen - 1] != ' ';
	for (i = 0; ok && i < a.toklen; i++)
		ok = (unsigned char)token[i] >= 0x20 && token[i] != 0x7f;
	if (!ok) {
		secret_wipe(token, cap);
		return ERR_INVAL;
	}
	*relay_id = a.id;
	return ERR_OK;
}

/* ---------------------------------------------------------------- trust anchors */

/* Load the anchors for this attempt (the operator may fix a CA file between attempts).
 * ERR_OK with at least one anchor, or a reason in why. */
static int
load_anchors(struct reg *r, char *why, size_t whylen)
{
	struct anchors *a = &r->an;
	const char *src = r->ca[0] ? r->ca : r->ca_file[0] ? r->ca_file : REG_SYSTEM_BUNDLE;

	anchors_reset(a);
	if (anchors_add_value(a, src, why, whylen) != ERR_OK)
		return ERR_IO;
	if (a->n == 0) {
		snprintf(why, whylen, "no usable CA certificate in %.1024s",
		    strstr(src, "-----BEGIN") ? "inline consoleCACert" : src);
		return ERR_INVAL;
	}
	return ERR_OK;
}

/* ---------------------------------------------------------------- the attempt */

/* The deadline of what starts now: REG_ATTEMPT_MS, cut short by register_once's limit. */
static int64_t
attempt_deadline(const struct reg *r)
{
	int64_t d = loop_now_ms() + REG_ATTEMPT_MS;

	return r->limit && r->limit < d ? r->limit : d;
}

static int
raw_read(void *ctx, unsigned char *buf, size_t len)
{
	struct reg *r = ctx;
	ssize_t n;

	do {
		if (loop_now_ms() > r->deadline) {
			r->io_errno = ETIMEDOUT;
			return -1;
		}
		n = recv(r->fd, buf, len, 0);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		return (int)n;
	r->io_errno = n == 0 ? 0 : errno == EAGAIN ? ETIMEDOUT : errno;
	return -1;
}

static int
raw_write(void *ctx, const unsigned char *buf, size_t len)
{
	struct reg *r = ctx;
	ssize_t n;

	do {
		if (loop_now_ms() > r->deadline) {
			r->io_errno = ETIMEDOUT;
			return -1;
		}
		n = send(r->fd, buf, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		return (int)n;
	r->io_errno = errno == EAGAIN ? ETIMEDOUT : errno;
	return -1;
}

/* The console session's transport: the socket, or the TLS session to an https:// proxy. */
static int
sock_read(void *ctx, unsigned char *buf, size_t len)
{
	struct reg *r = ctx;

	return r->pt ? br_sslio_read(&r->pt->io, buf, len) : raw_read(ctx, buf, len);
}

static int
sock_write(void *ctx, const unsigned char *buf, size_t len)
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

	r->deadline = attempt_deadline(r);
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
static int
dial(struct reg *r, char *why, size_t whylen)
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
	for (ai = res; ai != NULL && r->fd < 0 && !cancelled(r); ai = ai->ai_next) {
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

/* Why the TLS session failed. *level becomes error for certificate problems. */
static void
tls_why(struct reg *r, char *why, size_t whylen, int *level)
{
	int err = br_ssl_engine_last_error(&r->cc.eng);
	const char *s = NULL;

	switch (err) {
	case BR_ERR_X509_NOT_TRUSTED:
		s = "console certificate not trusted (check consoleCACert or RELAYPRO_CONSOLE_CA_FILE)";
		break;
	case BR_ERR_X509_BAD_SERVER_NAME:
		s = "console certificate does not name the console host";
		break;
	case BR_ERR_X509_EXPIRED:
		s = "console certificate expired or not yet valid";
		break;
	case BR_ERR_OK: case BR_ERR_IO:
		snprintf(why, whylen, "connection %s", r->io_errno ? strerror(r->io_errno) :
		    "closed by the console without an answer");
		return;
	case BR_ERR_RECV_FATAL_ALERT + 40: /* handshake_failure */
	case BR_ERR_RECV_FATAL_ALERT + 70: /* protocol_version */
	case BR_ERR_RECV_FATAL_ALERT + 71: /* insufficient_security */
	case BR_ERR_BAD_CIPHER_SUITE: case BR_ERR_UNSUPPORTED_VERSION:
		*level = LOG_ERROR;
		snprintf(why, whylen, "tls: the console offers none of the relay's TLS 1.2 ECDHE "
		    "suites with AES-GCM or ChaCha20-Poly1305 (BearSSL error %d); a weaker "
		    "handshake is never accepted", err);
		return;
	}
	if (err >= BR_ERR_X509_OK && err < BR_ERR_X509_OK + 32)
		*level = LOG_ERROR;
	if (s)
		snprintf(why, whylen, "tls: %s", s);
	else if (err >= BR_ERR_SEND_FATAL_ALERT)
		snprintf(why, whylen, "tls: alert %d", err & 255);
	else
		snprintf(why, whylen, "tls: BearSSL error %d", err);
}

/* One registration attempt. A_DONE with *id and r->token, else A_RETRY or A_SLOW with a
 * reason in why, the HTTP status (0 when there was none) and the log level. */
static int
attempt(struct reg *r, int64_t *id, int *status, int *level, char *why, size_t whylen)
{
	br_sslio_context io;
	unsigned char seed[32];
	size_t len = 0, bodylen = 0;
	char *body = NULL;
	int rc = ERR_INVAL, k;

	*status = 0;
	*level = LOG_WARN;
	if (load_anchors(r, why, whylen) != ERR_OK) {
		*level = LOG_ERROR;
		return A_RETRY;
	}
	if (dial(r, why, whylen) != ERR_OK)
		return A_RETRY;
	r->deadline = attempt_deadline(r);
	r->io_errno = 0;
	/* The relay's one TLS policy (tls.h): a console that offers less than TLS 1.2 with
	 * ECDHE and an AEAD suite gets no handshake (a failed reset shows as the TLS error
	 * of the first write). */
	br_hmac_drbg_generate(&r->rng, seed, sizeof seed);
	(void)tls_client_init(&r->cc, &r->xc, r->an.ta, r->an.n, r->iobuf, BR_SSL_BUFSIZE_INPUT,
	    r->iobuf + BR_SSL_BUFSIZE_INPUT, sizeof r->iobuf - BR_SSL_BUFSIZE_INPUT, r->host, seed,
	    sizeof seed);
	secret_wipe(seed, sizeof seed);
	br_sslio_init(&io, &r->cc.eng, sock_read, r, sock_write, r);
	if (br_sslio_write_all(&io, r->req, r->reqlen) != 0 || br_sslio_flush(&io) != 0) {
		close(r->fd);
		tls_why(r, why, whylen, level);
		return A_RETRY;
	}
	for (;;) {
		rc = register_parse_response(r->resp, len, 0, status, &body, &bodylen);
		if (rc != ERR_TRUNC || len == sizeof r->resp)
			break;
		k = br_sslio_read(&io, r->resp + len, sizeof r->resp - len);
		if (k < 0) {
			/* EOF counts only after close_notify: a cut connection is not an answer. */
			if (len > 0)
				rc = register_parse_response(r->resp, len,
				    br_ssl_engine_last_error(&r->cc.eng) == BR_ERR_OK, status, &body,
				    &bodylen);
			break;
		}
		len += (size_t)k;
	}
	close(r->fd);
	if (rc != ERR_OK) {
		if (len == 0)
			tls_why(r, why, whylen, level);
		else
			snprintf(why, whylen, "%s HTTP answer", rc == ERR_TRUNC ?
			    len == sizeof r->resp ? "oversized" : "truncated" : "malformed");
		*status = 0;
		return A_RETRY;
	}
	if (*status == 200) {
		if (register_parse_answer(body, bodylen, id, r->token, sizeof r->token) == ERR_OK)
			return A_DONE;
		*level = LOG_ERROR;
		snprintf(why, whylen, "malformed registration answer");
		return A_RETRY;
	}
	snprintf(why, whylen, "console answered %d", *status);
	if (*status >= 500 || *status == 429 || *status == 408)
		return A_RETRY;
	*level = LOG_ERROR; /* 401/403: wrong deploymentToken or organizationId */
	return A_SLOW;
}

/* Sleep ms, waking early when cancelled. Returns 0 when cancelled. */
static int
nap(const struct reg *r, uint32_t ms)
{
	int64_t end = loop_now_ms() + ms;

	while (!cancelled(r)) {
		int64_t left = end - loop_now_ms();
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (left <= 0)
			return 1;
		if (left < 50)
			ts.tv_nsec = (long)left * 1000 * 1000;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void
reg_free(struct reg *r)
{
	secret_wipe(r->req, r->reqlen);
	free(r->req);
	if (r->pt) {
		secret_wipe(r->pt, sizeof *r->pt);
		free(r->pt);
	}
	secret_wipe(r, sizeof *r);
	free(r);
}

static void *
reg_main(void *arg)
{
	struct reg *r = arg;
	struct log_rec lr;
	unsigned failures = 0;

	while (!cancelled(r)) {
		char why[CFG_PATH + 256];
		int64_t id = 0;
		int status, level, c;
		uint32_t rnd, wait;

		c = attempt(r, &id, &status, &level, why, sizeof why);
		secret_wipe(r->resp, sizeof r->resp);
		secret_wipe(r->iobuf, sizeof r->iobuf);
		if (r->pt) {
			secret_wipe(r->pt->iobuf, sizeof r->pt->iobuf);
			secret_wipe(&r->pt->cc, sizeof r->pt->cc);
		}
		if (c == A_DONE) {
			pthread_mutex_lock(&mu);
			if (!cancelled(r)) {
				if (log_begin(&lr, LOG_INFO, "register.ok")) {
					log_int(&lr, "relay_id", id);
					log_int(&lr, "attempt", failures + 1);
					log_str(&lr, "console", r->console);
					log_end(&lr);
				}
				metrics_registration(METRICS_REG_REGISTERED);
				r->done(r->user, id, r->token);
			}
			pthread_mutex_unlock(&mu);
			break;
		}
		failures++;
		metrics_registration_failed();
		br_hmac_drbg_generate(&r->rng, &rnd, sizeof rnd);
		wait = register_backoff_ms(c == A_SLOW ? 64 : failures, r->base_ms, r->cap_ms, rnd);
		if (cancelled(r))
			break;
		if (log_begin(&lr, (enum log_level)level, "register.fail")) {
			log_int(&lr, "status", status);
			log_int(&lr, "attempt", failures);
			log_int(&lr, "retry_ms", wait);
			log_str(&lr, "reason", why);
			log_str(&lr, "console", r->console);
			log_end(&lr);
		}
		if (!nap(r, wait))
			break;
	}
	reg_free(r);
	return NULL;
}

#define REQ_HEAD "POST /api/relaypro/register HTTP/1.1\r\nHost: %s%s%s%s%s\r\n" \
	"User-Agent: relaypro/%s\r\nContent-Type: application/json\r\n" \
	"Accept: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"

/* Everything one registration needs, copied from cfg (see register_start). NULL with
 * *rc set (ERR_INVAL: no consoleAddress or deploymentToken, or a bad address; ERR_IO). */
static struct reg *
reg_new(const struct config *cfg, int *rc)
{
	char hostname[CFG_STR] = "", seed[32];
	struct reg *r;
	size_t blen;
	int hl, v6;

	*rc = ERR_INVAL;
	if (!cfg->console_address[0] || !cfg->deployment_token[0])
		return NULL;
	*rc = ERR_IO;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	if (register_split_address(cfg->console_address, r->host, sizeof r->host, r->port,
	    sizeof r->port) != ERR_OK) {
		free(r);
		*rc = ERR_INVAL;
		return NULL;
	}
	v6 = strchr(r->host, ':') != NULL;
	snprintf(r->console, sizeof r->console, "%s%s%s:%s", v6 ? "[" : "", r->host,
	    v6 ? "]" : "", r->port);
	if (cfg->proxy_enabled) {
		/* Registration takes the same route as the tunnels (SPEC §2.4). */
		static struct upstream_routes routes;
		const struct upstream_proxy *p;
		char err[CFG_PATH + 160];
		unsigned port = (unsigned)atoi(r->port);
		if (upstream_load_with(&routes, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err) == ERR_OK &&
		    target_parse_host(r->host, strlen(r->host), &r->target) == TARGET_OK &&
		    (p = upstream_route(&routes, &r->target, port)) != NULL) {
			r->proxy = *p;
			r->via_proxy = 1;
		}
		upstream_wipe(&routes);
		if (r->via_proxy && r->proxy.tls) {
			r->pt = calloc(1, sizeof *r->pt);
			if (r->pt == NULL) {
				reg_free(r);
				return NULL;
			}
			if (upstream_trust_load(&r->pt->an, cfg, err, sizeof err) != ERR_OK)
				snprintf(r->pt->trust_err, sizeof r->pt->trust_err, "%s", err);
		}
	}
	memcpy(r->ca, cfg->console_ca_cert, sizeof r->ca);
	memcpy(r->ca_file, cfg->console_ca_file, sizeof r->ca_file);
	r->ca[sizeof r->ca - 1] = r->ca_file[sizeof r->ca_file - 1] = 0;
	gethostname(hostname, sizeof hostname - 1);
	blen = register_body(NULL, 0, cfg->organization_id, cfg->deployment_token,
	    cfg->relay_pro_id, hostname, RELAYPRO_VERSION);
	hl = snprintf(NULL, 0, REQ_HEAD, v6 ? "[" : "", r->host, v6 ? "]" : "",
	    strcmp(r->port, "443") ? ":" : "", strcmp(r->port, "443") ? r->port : "",
	    RELAYPRO_VERSION, blen);
	r->reqlen = (size_t)hl + blen;
	r->req = malloc(r->reqlen + 1);
	if (hl < 0 || r->req == NULL) {
		reg_free(r);
		return NULL;
	}
	snprintf(r->req, (size_t)hl + 1, REQ_HEAD, v6 ? "[" : "", r->host, v6 ? "]" : "",
	    strcmp(r->port, "443") ? ":" : "", strcmp(r->port, "443") ? r->port : "",
	    RELAYPRO_VERSION, blen);
	register_body(r->req + hl, blen + 1, cfg->organization_id, cfg->deployment_token,
	    cfg->relay_pro_id, hostname, RELAYPRO_VERSION);
	rand_bytes(seed, sizeof seed);
	br_hmac_drbg_init(&r->rng, &br_sha256_vtable, seed, sizeof seed);
	secret_wipe(seed, sizeof seed);
	r->fd = -1;
	*rc = ERR_OK;
	return r;
}

/* see register.h */
int
register_start(const struct config *cfg, register_done_fn done, void *user)
{
	struct reg *r;
	pthread_attr_t at;
	pthread_t t;
	sigset_t all, old;
	int rc;

	if ((r = reg_new(cfg, &rc)) == NULL)
		return rc;
	r->done = done;
	r->user = user;

	pthread_mutex_lock(&mu);
	r->base_ms = set_base_ms ? set_base_ms : REG_BACKOFF_BASE_MS;
	r->cap_ms = set_cap_ms ? set_cap_ms : REG_BACKOFF_CAP_MS;
	r->gen = gen + 1;
	__atomic_store_n(&gen, r->gen, __ATOMIC_RELEASE); /* cancels any earlier thread */
	pthread_mutex_unlock(&mu);

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: signals stay with the loop */
	rc = pthread_create(&t, &at, reg_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		reg_free(r);
		return ERR_IO;
	}
	return ERR_OK;
}

/* see register.h */
void
register_stop(void)
{
	pthread_mutex_lock(&mu);
	__atomic_store_n(&gen, gen + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mu);
}

/* see register.h */
void
register_set_backoff(uint32_t base_ms, uint32_t cap_ms)
{
	pthread_mutex_lock(&mu);
	set_base_ms = base_ms;
	set_cap_ms = cap_ms;
	pthread_mutex_unlock(&mu);
}

/* see register.h */
int
register_once(const struct config *cfg, uint32_t timeout_ms, int64_t *relay_id, char *token,
    size_t cap)
{
	struct reg *r;
	struct log_rec lr;
	unsigned failures = 0;
	int rc;

	if ((r = reg_new(cfg, &rc)) == NULL)
		return rc == ERR_INVAL ? ERR_NOTFOUND : rc;
	pthread_mutex_lock(&mu);
	r->base_ms = set_base_ms ? set_base_ms : REG_BACKOFF_BASE_MS;
	r->cap_ms = set_cap_ms ? set_cap_ms : REG_BACKOFF_CAP_MS;
	r->gen = gen; /* not cancelled: nothing else runs in this process */
	pthread_mutex_unlock(&mu);
	r->limit = loop_now_ms() + (int64_t)timeout_ms;
	for (;;) {
		char why[CFG_PATH + 256];
		int64_t id = 0, left;
		int status, level, c;
		uint32_t rnd, wait;

		c = attempt(r, &id, &status, &level, why, sizeof why);
		secret_wipe(r->resp, sizeof r->resp);
		secret_wipe(r->iobuf, sizeof r->iobuf);
		if (c == A_DONE) {
			if (log_begin(&lr, LOG_INFO, "register.ok")) {
				log_int(&lr, "relay_id", id);
				log_int(&lr, "attempt", failures + 1);
				log_str(&lr, "console", r->console);
				log_end(&lr);
			}
			*relay_id = id;
			snprintf(token, cap, "%s", r->token);
			rc = strlen(r->token) < cap ? ERR_OK : ERR_NOSPACE;
			break;
		}
		failures++;
		br_hmac_drbg_generate(&r->rng, &rnd, sizeof rnd);
		wait = register_backoff_ms(failures, r->base_ms, r->cap_ms, rnd);
		/* A refusal is final here; anything else is retried until the time is up (the
		 * last wait cut to what is left, the last attempt bounded by the limit). */
		left = r->limit - loop_now_ms();
		rc = c == A_SLOW ? ERR_CRYPTO : left <= 0 ? ERR_IO : ERR_OK;
		if (rc == ERR_OK && (int64_t)wait > left)
			wait = (uint32_t)left;
		if (log_begin(&lr, rc == ERR_OK ? LOG_WARN : LOG_ERROR, "register.fail")) {
			log_int(&lr, "status", status);
			log_int(&lr, "attempt", failures);
			if (rc == ERR_OK)
				log_int(&lr, "retry_ms", wait);
			log_str(&lr, "reason", why);
			log_str(&lr, "console", r->console);
			if (rc != ERR_OK)
				log_str(&lr, "msg", rc == ERR_CRYPTO ? "the console refused: not retried" :
				    "giving up: the console was not reached in time (--timeout)");
			log_end(&lr);
		}
		(void)level;
		if (rc != ERR_OK)
			break;
		nap(r, wait);
	}
	reg_free(r);
	return rc;
}

/* ---------------------------------------------------------------- the command */

/* A relayProId for this registration when none is configured (UUID v4, as main does). */
static void
reg_pro_id(struct config *c)
{
	unsigned char u[16];

	if (c->relay_pro_id[0])
		return;
	rand_bytes(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	snprintf(c->relay_pro_id, sizeof c->relay_pro_id,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
	    u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* see register.h */
int
register_main(int argc, char **argv)
{
	static struct config c; /* large: kept off the stack */
	char err[2 * CFG_PATH + 512], where[CFG_PATH], token[REG_TOKEN_MAX + 1];
	const char *cli = NULL, *cmd = NULL, *timeout_text = NULL;
	uint64_t timeout_s = 60;
	int64_t id = 0;
	int i, env = 0, rc, generated;

	for (i = 1; i < argc && cmd == NULL; i++) { /* the command word, past -c FILE */
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
			i++;
		else if (argv[i][0] != '-')
			cmd = argv[i];
	}
	if (cmd == NULL || strcmp(cmd, "register") != 0)
		return REGISTER_NOT_MINE;
	for (i = 1; i < argc; i++) /* main prints the usage (its table) and the version */
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "--version") == 0)
			return REGISTER_NOT_MINE;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a == cmd) {
			continue;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
			cli = argv[++i];
		} else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			timeout_text = argv[++i];
		} else if (strcmp(a, "--env") == 0) {
			env = 1;
		} else {
			fprintf(stderr, "relaypro register: unexpected argument %s "
			    "(relaypro register --help)\n", a);
			return 2;
		}
	}
	if (timeout_text && (units_duration(timeout_text, &timeout_s) != ERR_OK || timeout_s < 1 ||
	    timeout_s > 86400)) {
		fprintf(stderr, "relaypro register: --timeout: not a duration between 1s and 24h\n");
		return 2;
	}
	if (rand_init() != ERR_OK) {
		fprintf(stderr, "relaypro: getrandom() failed: %s\n", strerror(errno));
		return 1;
	}
	if (config_load(&c, config_pick_file(cli), err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return 2;
	}
	log_set_debug(c.debug_logging); /* the log stays on stderr */
	if (!c.console_address[0] || !c.deployment_token[0]) {
		fprintf(stderr, "relaypro register: needs consoleAddress and deploymentToken "
		    "(RELAYPRO_CONSOLE_ADDRESS, RELAYPRO_DEPLOYMENT_TOKEN)\n");
		config_wipe(&c);
		return 2;
	}
	generated = !c.relay_pro_id[0];
	reg_pro_id(&c);
	rc = register_once(&c, (uint32_t)timeout_s * 1000, &id, token, sizeof token);
	if (rc != ERR_OK) {
		config_wipe(&c);
		return rc == ERR_CRYPTO ? 1 : rc == ERR_NOTFOUND ? 2 : 3;
	}
	if (env) {
		rc = printf("RELAYPRO_RELAY_ID=%lld\nRELAYPRO_SECURITY_TOKEN=%s\n", (long long)id,
		    token) < 0 || fflush(stdout) != 0;
		if (generated)
			fprintf(stderr, "relaypro register: relayProId %s was generated for this "
			    "registration; set RELAYPRO_RELAY_PRO_ID=%s where the relay runs to keep it\n",
			    c.relay_pro_id, c.relay_pro_id);
	} else {
		rc = cfgwrite_save(&c, id, token, where, sizeof where, err, sizeof err) != ERR_OK;
		if (rc)
			fprintf(stderr, "relaypro register: registered as relayId %lld but cannot save "
			    "it: %s (use --env)\n", (long long)id, err);
		else
			printf("registered as relayId %lld; saved in %s\n", (long long)id, where);
	}
	secret_wipe(token, sizeof token);
	config_wipe(&c);
	return rc ? 1 : 0;
}

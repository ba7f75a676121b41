/*
 * upstream.c — proxy URLs, NO_PROXY, the CONNECT exchange, the TLS hop to an https://
 * proxy, and the glue between a route and socks5.c's exchange. See upstream.h.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "anchors.h"
#include "b64.h"
#include "err.h"
#include "secret.h"
#include "tls.h"
#include "upstream.h"

/* The value of lower, else of upper (when upper is not NULL), an empty value counting as
 * unset (curl's rule); *name says which one it was. NULL when neither is set. */
static const char *
env_var(const char *lower, const char *upper, const char **name)
{
	const char *v = getenv(lower);

	*name = lower;
	if (v && *v)
		return v;
	*name = upper;
	v = upper ? getenv(upper) : NULL;
	return v && *v ? v : NULL;
}

/* Standard base64 with padding (Basic credentials). */
static size_t
b64std(char *out, size_t cap, const unsigned char *in, size_t n)
{
	size_t o = b64url_encode(out, cap, in, n), i;

	for (i = 0; i < o; i++)
		out[i] = out[i] == '-' ? '+' : out[i] == '_' ? '/' : out[i];
	while (o % 4 && o + 1 < cap)
		out[o++] = '=';
	return o;
}

static const struct {
	const char *prefix;
	size_t len;
	int tls, socks;
	unsigned port;
} schemes[] = {
	{ "http://", 7, 0, 0, 80 },
	{ "https://", 8, 1, 0, 443 },
	{ "socks5://", 9, 0, UPSTREAM_SOCKS5, 1080 },
	{ "socks5h://", 10, 0, UPSTREAM_SOCKS5H, 1080 },
};

/* user:password of a URL, s[0..cl), into p: Basic credentials for an HTTP proxy, the
 * RFC 1929 pair for a SOCKS5 one. */
static int
parse_creds(const char *name, const char *s, size_t cl, struct upstream_proxy *p, char *err,
    size_t errlen)
{
	const char *colon = memchr(s, ':', cl);
	unsigned char cred[300];
	size_t o;

	if (colon == NULL || memchr(s, '%', cl) != NULL) {
		snprintf(err, errlen, "%s: credentials must be user:password (no %%-escapes)", name);
		return ERR_INVAL;
	}
	if (p->socks) {
		size_t ul = (size_t)(colon - s), pl = cl - ul - 1;
		if (ul < 1 || ul > SOCKS5_NAME_MAX || pl < 1 || pl > SOCKS5_NAME_MAX) {
			/* RFC 1929: UNAME and PASSWD are 1 to 255 bytes each */
			snprintf(err, errlen, "%s: a SOCKS5 user name and password must be 1 to %d "
			    "bytes each", name, SOCKS5_NAME_MAX);
			return ERR_INVAL;
		}
		memcpy(p->user, s, ul);
		memcpy(p->pass, colon + 1, pl);
		p->ulen = ul;
		p->plen = pl;
		return ERR_OK;
	}
	/* "Basic " + padded base64 + NUL must fit p->auth, else the header would be sent
	 * without credentials (found by tests/fuzz/fuzz_upstream.c). */
	if (cl >= sizeof cred || (cl + 2) / 3 * 4 > sizeof p->auth - 7) {
		snprintf(err, errlen, "%s: credentials longer than %d bytes", name,
		    (int)((sizeof p->auth - 7) / 4 * 3));
		return ERR_INVAL;
	}
	memcpy(cred, s, cl);
	memcpy(p->auth, "Basic ", 6);
	o = b64std(p->auth + 6, sizeof p->auth - 7, cred, cl);
	p->auth[6 + o] = 0;
	secret_wipe(cred, sizeof cred);
	return ERR_OK;
}

static int
parse_proxy(const char *name, const char *url, struct upstream_proxy *p, char *err, size_t errlen)
{
	const char *s = url, *at, *end, *colon, *hs;
	size_t n, i;

	memset(p, 0, sizeof *p);
	p->port = 80;
	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		if (strncasecmp(s, schemes[i].prefix, schemes[i].len) == 0) {
			s += schemes[i].len;
			p->tls = schemes[i].tls;
			p->socks = schemes[i].socks;
			p->port = schemes[i].port;
			break;
		}
	}
	if (i == sizeof schemes / sizeof schemes[0] && strstr(s, "://")) {
		snprintf(err, errlen, "%s: only http://, https://, socks5:// and socks5h:// proxies "
		    "are supported", name);
		return ERR_INVAL;
	}
	end = s + strcspn(s, "/");
	if (end[0] == '/' && end[1] != 0) {
		snprintf(err, errlen, "%s: a proxy URL has no path", name);
		return ERR_INVAL;
	}
	at = memchr(s, '@', (size_t)(end - s));
	hs = s;
	if (at) {
		if (parse_creds(name, s, (size_t)(at - s), p, err, errlen) != ERR_OK) {
			secret_wipe(p, sizeof *p);
			return ERR_INVAL;
		}
		hs = at + 1;
	}
	n = (size_t)(end - hs);
	colon = hs[0] == '[' ? memchr(hs, ']', n) : hs;
	colon = colon ? memchr(colon, ':', (size_t)(end - colon)) : NULL;
	if (colon) {
		if (target_parse_port(colon + 1, (size_t)(end - colon - 1), &p->port) != TARGET_OK) {
			snprintf(err, errlen, "%s: bad port", name);
			secret_wipe(p, sizeof *p);
			return ERR_INVAL;
		}
		n = (size_t)(colon - hs);
	}
	if (target_parse_host(hs, n, &p->host) != TARGET_OK) {
		snprintf(err, errlen, "%s: bad host", name);
		secret_wipe(p, sizeof *p);
		return ERR_INVAL;
	}
	if (p->tls && p->host.kind != TARGET_NAME) {
		/* BearSSL checks a certificate against DNS names only: an address could never
		 * be verified, and an unverified proxy is not an option. */
		snprintf(err, errlen, "%s: an https:// proxy must be named by its DNS name "
		    "(its certificate is checked against it), not an IP address", name);
		secret_wipe(p, sizeof *p);
		return ERR_INVAL;
	}
	p->var = name;
	p->set = 1;
	return ERR_OK;
}

/* One route: the scheme's own variables, else all_proxy / ALL_PROXY (curl's order). */
static int
load_route(struct upstream_proxy *p, const char *lower, const char *upper, unsigned with,
    char *err, size_t errlen)
{
	const char *name, *v = env_var(lower, upper, &name);

	if (v == NULL && (v = env_var("all_proxy", "ALL_PROXY", &name)) == NULL)
		return ERR_OK;
	if (parse_proxy(name, v, p, err, errlen) != ERR_OK)
		return ERR_INVAL;
	if (p->socks && !(with & UPSTREAM_WITH_SOCKS5)) {
		snprintf(err, errlen, "%s: a SOCKS5 proxy (socks5://, socks5h://) cannot be used "
		    "here: this needs an http:// or https:// proxy", name);
		secret_wipe(p, sizeof *p);
		return ERR_INVAL;
	}
	return ERR_OK;
}

/* see upstream.h */
int
upstream_load_with(struct upstream_routes *r, int enabled, unsigned with, char *err,
    size_t errlen)
{
	const char *v, *name;

	memset(r, 0, sizeof *r);
	r->enabled = enabled;
	if (!enabled)
		return ERR_OK;
	if (load_route(&r->https, "https_proxy", "HTTPS_PROXY", with, err, errlen) != ERR_OK ||
	    load_route(&r->http, "http_proxy", "HTTP_PROXY", with, err, errlen) != ERR_OK) {
		upstream_wipe(r);
		return ERR_INVAL;
	}
	if ((v = env_var("no_proxy", "NO_PROXY", &name)) != NULL) {
		while (*v) {
			size_t n = strcspn(v, ",");
			const char *e = v;
			while (n && (*e == ' ' || *e == '.')) {
				e++;
				n--;
			}
			while (n && e[n - 1] == ' ')
				n--;
			if (n == 1 && *e == '*')
				r->no_proxy_all = 1;
			else if (n && n <= TARGET_HOST_MAX && r->n_no_proxy < UPSTREAM_NO_PROXY_MAX) {
				size_t i;
				for (i = 0; i < n; i++)
					r->no_proxy[r->n_no_proxy][i] = (char)((e[i] >= 'A' && e[i] <= 'Z') ? e[i] + 32 : e[i]);
				r->no_proxy[r->n_no_proxy++][n] = 0;
			}
			v += strcspn(v, ",");
			if (*v == ',')
				v++;
		}
	}
	return ERR_OK;
}

/* see upstream.h */
int
upstream_load(struct upstream_routes *r, int enabled, char *err, size_t errlen)
{
	return upstream_load_with(r, enabled, 0, err, errlen);
}

/* see upstream.h */
const struct upstream_proxy *
upstream_route(const struct upstream_routes *r, const struct target_host *host, unsigned port)
{
	const struct upstream_proxy *p;
	int i;

	if (!r->enabled)
		return NULL;
	p = port == 80 ? &r->http : &r->https;
	if (!p->set || r->no_proxy_all)
		return NULL;
	for (i = 0; i < r->n_no_proxy; i++) {
		size_t n = strlen(r->no_proxy[i]);
		if (strcmp(host->name, r->no_proxy[i]) == 0)
			return NULL;
		if (host->kind == TARGET_NAME && host->len > n && host->name[host->len - n - 1] == '.' &&
		    strcmp(host->name + host->len - n, r->no_proxy[i]) == 0)
			return NULL;
	}
	return p;
}

/* see upstream.h */
size_t
upstream_connect_request(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, char *out, size_t cap)
{
	const char *lb = host->kind == TARGET_IPV6 ? "[" : "", *rb = host->kind == TARGET_IPV6 ? "]" : "";
	int n = snprintf(out, cap, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n%s%s%s\r\n", lb,
	    host->name, rb, port, lb, host->name, rb, port, p->auth[0] ? "Proxy-Authorization: " : "",
	    p->auth, p->auth[0] ? "\r\n" : "");

	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* see upstream.h */
int
upstream_parse_answer(const char *buf, size_t len, int *status, size_t *head_len)
{
	size_t i;

	for (i = 0; i + 3 < len; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
			break;
	}
	if (i + 3 >= len)
		return ERR_TRUNC;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9')
		return ERR_INVAL;
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	*head_len = i + 4;
	return ERR_OK;
}

/* see upstream.h */
void
upstream_wipe(struct upstream_routes *r)
{
	secret_wipe(r, sizeof *r);
}

/* see upstream.h */
int
upstream_any_tls(const struct upstream_routes *r)
{
	return r->enabled && ((r->https.set && r->https.tls) || (r->http.set && r->http.tls));
}

/* see upstream.h */
int
upstream_trust_load(struct anchors *a, const struct config *cfg, char *err, size_t errlen)
{
	const char *console = cfg->console_ca_cert[0] ? cfg->console_ca_cert : cfg->console_ca_file;
	char why[CFG_PATH + 64];

	anchors_reset(a);
	/* The system bundle may be absent (FROM scratch): then the other sources must do. */
	(void)anchors_add_file(a, ANCHORS_SYSTEM_BUNDLE, why, sizeof why);
	if (console[0] && anchors_add_value(a, console, why, sizeof why) != ERR_OK) {
		snprintf(err, errlen, "https:// proxy trust: %s", why);
		return ERR_IO;
	}
	if (cfg->proxy_ca_file[0] && anchors_add_file(a, cfg->proxy_ca_file, why, sizeof why) != ERR_OK) {
		snprintf(err, errlen, "RELAYPRO_PROXY_CA_FILE: %s", why);
		return ERR_IO;
	}
	if (a->n == 0) {
		snprintf(err, errlen, "https:// proxy trust: no CA certificate (system bundle %s, "
		    "consoleCACert, RELAYPRO_CONSOLE_CA_FILE, RELAYPRO_PROXY_CA_FILE)",
		    ANCHORS_SYSTEM_BUNDLE);
		return ERR_INVAL;
	}
	return ERR_OK;
}

/* see upstream.h */
const char *
upstream_tls_error(int err)
{
	switch (err) {
	case BR_ERR_X509_NOT_TRUSTED: return "certificate_not_trusted";
	case BR_ERR_X509_BAD_SERVER_NAME: return "certificate_name_mismatch";
	case BR_ERR_X509_EXPIRED: return "certificate_expired";
	case BR_ERR_X509_BAD_SIGNATURE: return "certificate_bad_signature";
	case BR_ERR_X509_NOT_CA: return "certificate_issuer_not_ca";
	case BR_ERR_X509_FORBIDDEN_KEY_USAGE: return "certificate_key_usage";
	case BR_ERR_X509_WEAK_PUBLIC_KEY: return "certificate_weak_key";
	case BR_ERR_X509_LIMIT_EXCEEDED: return "certificate_chain_too_long";
	case BR_ERR_OK: return "closed";
	case BR_ERR_IO: return "io";
	case BR_ERR_BAD_CIPHER_SUITE: return "no_common_cipher_suite";
	case BR_ERR_UNSUPPORTED_VERSION: return "unsupported_version";
	}
	if (err >= BR_ERR_X509_OK && err < BR_ERR_X509_OK + 64)
		return "certificate_invalid";
	if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT)
		return "proxy_sent_alert";
	if (err >= BR_ERR_SEND_FATAL_ALERT)
		return "sent_alert";
	return tls_error_str(err);
}

/* see upstream.h */
int
upstream_socks5_req(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, const struct net_addr *addr, struct socks5_req *req)
{
	memset(req, 0, sizeof *req);
	if (p->ulen) {
		req->user = p->user;
		req->ulen = p->ulen;
		req->pass = p->pass;
		req->plen = p->plen;
	}
	req->port = port;
	if (host->kind == TARGET_IPV4 || host->kind == TARGET_IPV6) {
		req->atyp = host->kind == TARGET_IPV4 ? SOCKS5_ATYP_IPV4 : SOCKS5_ATYP_IPV6;
		req->addr = host->ip;
		req->alen = host->kind == TARGET_IPV4 ? 4 : 16;
	} else if (p->socks == UPSTREAM_SOCKS5H) {
		req->atyp = SOCKS5_ATYP_NAME;
		req->addr = (const unsigned char *)host->name;
		req->alen = host->len;
	} else if (addr != NULL && addr->ss.ss_family == AF_INET) {
		req->atyp = SOCKS5_ATYP_IPV4;
		req->addr = (const unsigned char *)&((const struct sockaddr_in *)&addr->ss)->sin_addr;
		req->alen = 4;
	} else if (addr != NULL && addr->ss.ss_family == AF_INET6) {
		req->atyp = SOCKS5_ATYP_IPV6;
		req->addr = (const unsigned char *)&((const struct sockaddr_in6 *)&addr->ss)->sin6_addr;
		req->alen = 16;
	} else {
		return ERR_INVAL;
	}
	return ERR_OK;
}

/* "socks5 proxy host:port" into out, for reasons. */
static void
proxy_name(const struct upstream_proxy *p, char *out, size_t cap)
{
	int v6 = p->host.kind == TARGET_IPV6;

	snprintf(out, cap, "%s proxy %s%s%s:%u", p->socks == UPSTREAM_SOCKS5H ? "socks5h" : "socks5",
	    v6 ? "[" : "", p->host.name, v6 ? "]" : "", p->port);
}

/* see upstream.h */
int
upstream_socks5_connect_fd(int fd, const struct upstream_proxy *p,
    const struct target_host *host, unsigned port, const struct net_addr *addr,
    unsigned *rep, char *why, size_t whylen)
{
	struct socks5 s;
	struct socks5_req req;
	unsigned char msg[SOCKS5_MSG_MAX], in[SOCKS5_REPLY_MAX];
	char pn[TARGET_HOST_MAX + 32];
	int i, w = SOCKS5_E_STATE, e = 0;

	*rep = 0;
	proxy_name(p, pn, sizeof pn);
	if (upstream_socks5_req(p, host, port, addr, &req) != ERR_OK || socks5_init(&s, &req) != ERR_OK) {
		snprintf(why, whylen, "%s: cannot ask for %s", pn, host->name);
		return ERR_IO;
	}
	/* Each pass moves at least one byte; the exchange is at most about 800 bytes. */
	for (i = 0; i < 2048; i++) {
		w = socks5_want(&s);
		if (w == SOCKS5_WRITE) {
			size_t n = socks5_output(&s, &req, msg, sizeof msg);
			ssize_t k = n ? send(fd, msg, n, MSG_NOSIGNAL) : -1;
			e = errno;
			secret_wipe(msg, sizeof msg); /* it may have held the password */
			if (n == 0)
				continue; /* socks5_output failed s */
			if (k <= 0) {
				if (e == EPIPE || e == ECONNRESET) {
					socks5_closed(&s);
					continue;
				}
				break;
			}
			socks5_sent(&s, (size_t)k);
		} else if (w == SOCKS5_READ) {
			size_t used;
			ssize_t k = recv(fd, in, socks5_need(&s), 0); /* exactly: never the tunnel's */
			e = errno;
			if (k == 0 || (k < 0 && e == ECONNRESET))
				socks5_closed(&s);
			else if (k < 0)
				break;
			else
				socks5_input(&s, in, (size_t)k, &used);
		} else {
			break;
		}
	}
	if (w == SOCKS5_DONE)
		return ERR_OK;
	if (w == SOCKS5_WRITE || w == SOCKS5_READ) /* an I/O error or timeout */
		snprintf(why, whylen, "%s: %s: %s", pn, w == SOCKS5_WRITE ? "cannot send" : "no answer",
		    e == EAGAIN || e == EWOULDBLOCK ? "timed out" : strerror(e));
	else
		upstream_socks5_why(p, host, port, &s, why, whylen);
	if (w == SOCKS5_E_REFUSED)
		*rep = s.rep;
	return ERR_IO;
}

/* see upstream.h */
void
upstream_socks5_why(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, const struct socks5 *s, char *why, size_t whylen)
{
	char pn[TARGET_HOST_MAX + 32];

	proxy_name(p, pn, sizeof pn);
	if (s->err == SOCKS5_E_REFUSED)
		snprintf(why, whylen, "%s refused the connection to %s:%u: %s (reply %u)", pn,
		    host->name, port, socks5_reason(s), (unsigned)s->rep);
	else
		snprintf(why, whylen, "%s: %s", pn, socks5_reason(s));
}

/* A blocking connect to one of the proxy's addresses; fd or -1 (errno set). */
static int
connect_proxy(const struct upstream_proxy *p, int timeout_ms)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv;
	char port[8];
	int fd = -1, e = EHOSTUNREACH;

	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = p->host.kind == TARGET_NAME ? 0 : AI_NUMERICHOST;
	snprintf(port, sizeof port, "%u", p->port);
	if (getaddrinfo(p->host.name, port, &hints, &res) != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		/* On Linux SO_SNDTIMEO also bounds connect(). */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	errno = e;
	return fd;
}

/* see upstream.h */
int
upstream_socks5_dial(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, int timeout_ms, char *why, size_t whylen)
{
	struct net_addr addrs[UPSTREAM_SOCKS5_TRIES];
	char pn[TARGET_HOST_MAX + 32];
	int n = 1, i;

	proxy_name(p, pn, sizeof pn);
	memset(addrs, 0, sizeof addrs);
	if (p->socks == UPSTREAM_SOCKS5 && host->kind == TARGET_NAME) {
		/* socks5://: the relay resolves the (allowed) name itself and sends addresses */
		struct addrinfo hints, *res, *ai;
		int rc;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		if ((rc = getaddrinfo(host->name, NULL, &hints, &res)) != 0) {
			snprintf(why, whylen, "cannot resolve %s for the %s: %s", host->name, pn,
			    gai_strerror(rc));
			return -1;
		}
		for (n = 0, ai = res; ai != NULL && n < UPSTREAM_SOCKS5_TRIES; ai = ai->ai_next) {
			if (ai->ai_addrlen <= sizeof addrs[n].ss) {
				memcpy(&addrs[n].ss, ai->ai_addr, ai->ai_addrlen);
				addrs[n++].len = ai->ai_addrlen;
			}
		}
		freeaddrinfo(res);
		if (n == 0) {
			snprintf(why, whylen, "cannot resolve %s for the %s: no address", host->name, pn);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		unsigned rep;
		int fd = connect_proxy(p, timeout_ms);
		if (fd < 0) {
			snprintf(why, whylen, "cannot connect to the %s: %s", pn, strerror(errno));
			return -1;
		}
		if (upstream_socks5_connect_fd(fd, p, host, port, n > 1 || addrs[0].len ? &addrs[i] : NULL,
		    &rep, why, whylen) == ERR_OK)
			return fd;
		close(fd);
		/* Only "this address cannot be reached" is worth another address. */
		if (rep != 3 && rep != 4 && rep != 5)
			break;
	}
	return -1;
}

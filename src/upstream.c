/*
 * upstream.c — proxy URLs, NO_PROXY and the CONNECT exchange. See upstream.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "anchors.h"
#include "b64.h"
#include "err.h"
#include "secret.h"
#include "tls.h"
#include "upstream.h"

static const char *
env2(const char *upper, const char *lower)
{
	const char *v = getenv(upper);

	return v && *v ? v : getenv(lower);
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

static int
parse_proxy(const char *name, const char *url, struct upstream_proxy *p, char *err, size_t errlen)
{
	const char *s = url, *at, *end, *colon, *hs;
	size_t n;

	memset(p, 0, sizeof *p);
	if (strncasecmp(s, "https://", 8) == 0) {
		s += 8;
		p->tls = 1;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		s += 7;
	} else if (strstr(s, "://")) {
		snprintf(err, errlen, "%s: only http:// and https:// proxies are supported", name);
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
		unsigned char cred[300];
		size_t cl = (size_t)(at - s), o;
		if (cl >= sizeof cred || memchr(s, ':', cl) == NULL || memchr(s, '%', cl) != NULL) {
			snprintf(err, errlen, "%s: credentials must be user:password (no %%-escapes)", name);
			return ERR_INVAL;
		}
		/* "Basic " + padded base64 + NUL must fit p->auth, else the header would be
		 * sent without credentials (found by tests/fuzz/fuzz_upstream.c). */
		if ((cl + 2) / 3 * 4 > sizeof p->auth - 7) {
			snprintf(err, errlen, "%s: credentials longer than %d bytes", name,
			    (int)((sizeof p->auth - 7) / 4 * 3));
			return ERR_INVAL;
		}
		memcpy(cred, s, cl);
		memcpy(p->auth, "Basic ", 6);
		o = b64std(p->auth + 6, sizeof p->auth - 7, cred, cl);
		p->auth[6 + o] = 0;
		secret_wipe(cred, sizeof cred);
		hs = at + 1;
	}
	n = (size_t)(end - hs);
	colon = hs[0] == '[' ? memchr(hs, ']', n) : hs;
	colon = colon ? memchr(colon, ':', (size_t)(end - colon)) : NULL;
	if (colon) {
		if (target_parse_port(colon + 1, (size_t)(end - colon - 1), &p->port) != TARGET_OK) {
			snprintf(err, errlen, "%s: bad port", name);
			return ERR_INVAL;
		}
		n = (size_t)(colon - hs);
	} else {
		p->port = p->tls ? 443 : 80;
	}
	if (target_parse_host(hs, n, &p->host) != TARGET_OK) {
		snprintf(err, errlen, "%s: bad host", name);
		return ERR_INVAL;
	}
	if (p->tls && p->host.kind != TARGET_NAME) {
		/* BearSSL checks a certificate against DNS names only: an address could never
		 * be verified, and an unverified proxy is not an option. */
		snprintf(err, errlen, "%s: an https:// proxy must be named by its DNS name "
		    "(its certificate is checked against it), not an IP address", name);
		return ERR_INVAL;
	}
	p->set = 1;
	return ERR_OK;
}

/* see upstream.h */
int
upstream_load(struct upstream_routes *r, int enabled, char *err, size_t errlen)
{
	const char *v;

	memset(r, 0, sizeof *r);
	r->enabled = enabled;
	if (!enabled)
		return ERR_OK;
	if ((v = env2("HTTPS_PROXY", "https_proxy")) && *v &&
	    parse_proxy("HTTPS_PROXY", v, &r->https, err, errlen) != ERR_OK)
		return ERR_INVAL;
	if ((v = env2("HTTP_PROXY", "http_proxy")) && *v &&
	    parse_proxy("HTTP_PROXY", v, &r->http, err, errlen) != ERR_OK)
		return ERR_INVAL;
	if ((v = env2("NO_PROXY", "no_proxy")) != NULL) {
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

/*
 * fuzz_upstream.c — the upstream proxy settings and answers (upstream.c).
 *
 * Byte 0, bit 0 clear: the rest is a proxy's answer head for upstream_parse_answer.
 * Bit 0 set: the rest is split at NUL bytes into HTTPS_PROXY, HTTP_PROXY, NO_PROXY and a
 * target host; upstream_load reads them (the lower-case names are unset), then the
 * target is routed and, when a proxy is picked, its CONNECT request is built. A proxy
 * URL with user:password must give Basic credentials that decode back to exactly them.
 */
#include <string.h>

#include "b64.h"
#include "err.h"
#include "fuzz.h"
#include "upstream.h"

static struct upstream_routes routes;

static void
field(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);

	if (n >= cap)
		n = cap - 1;
	memcpy(out, *p, n);
	out[n] = 0;
	*p = z ? z + 1 : end;
}

/* url "http://user:pass@host..." with credentials: auth must be "Basic " + them. */
static void
creds_kept(const char *url, const struct upstream_proxy *px)
{
	const char *s = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
	const char *end = s + strcspn(s, "/");
	const char *at = memchr(s, '@', (size_t)(end - s));
	unsigned char dec[UPSTREAM_AUTH_MAX];
	size_t n;

	if (!px->set || at == NULL)
		return;
	FUZZ_ASSERT(strncmp(px->auth, "Basic ", 6) == 0);
	FUZZ_ASSERT(b64std_decode(dec, sizeof dec, &n, px->auth + 6, strlen(px->auth + 6)) == ERR_OK);
	FUZZ_ASSERT(n == (size_t)(at - s) && memcmp(dec, s, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char https[1024], http[1024], noproxy[2048], host[300];
	const uint8_t *p, *end = data + size;
	char err[256], req[UPSTREAM_REQ_MAX];
	int rc;

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		int status = 0;
		size_t head = 0;
		rc = upstream_parse_answer((const char *)data + 1, size - 1, &status, &head);
		FUZZ_ASSERT(rc == ERR_OK || rc == ERR_TRUNC || rc == ERR_INVAL);
		if (rc == ERR_OK)
			FUZZ_ASSERT(status >= 100 && status <= 599 && head >= 16 && head <= size - 1);
		return 0;
	}
	p = data + 1;
	field(&p, end, https, sizeof https);
	field(&p, end, http, sizeof http);
	field(&p, end, noproxy, sizeof noproxy);
	field(&p, end, host, sizeof host);
	unsetenv("https_proxy");
	unsetenv("http_proxy");
	unsetenv("no_proxy");
	setenv("HTTPS_PROXY", https, 1);
	setenv("HTTP_PROXY", http, 1);
	setenv("NO_PROXY", noproxy, 1);
	err[0] = 0;
	rc = upstream_load(&routes, 1, err, sizeof err);
	unsetenv("HTTPS_PROXY");
	unsetenv("HTTP_PROXY");
	unsetenv("NO_PROXY");
	if (rc != ERR_OK) {
		FUZZ_ASSERT(rc == ERR_INVAL && err[0] != 0 && memchr(err, 0, sizeof err) != NULL);
		return 0;
	}
	FUZZ_ASSERT(routes.n_no_proxy >= 0 && routes.n_no_proxy <= UPSTREAM_NO_PROXY_MAX);
	creds_kept(https, &routes.https);
	creds_kept(http, &routes.http);
	{
		struct target_host th;
		unsigned ports[] = { 80, 443 };
		size_t i;
		if (target_parse_host(host, strlen(host), &th) != TARGET_OK)
			return 0;
		for (i = 0; i < 2; i++) {
			const struct upstream_proxy *px = upstream_route(&routes, &th, ports[i]);
			size_t n;
			if (px == NULL)
				continue;
			FUZZ_ASSERT(px->set);
			n = upstream_connect_request(px, &th, ports[i], req, sizeof req);
			FUZZ_ASSERT(n < sizeof req);
			if (n)
				FUZZ_ASSERT(strlen(req) == n && memcmp(req, "CONNECT ", 8) == 0);
		}
	}
	upstream_wipe(&routes);
	return 0;
}

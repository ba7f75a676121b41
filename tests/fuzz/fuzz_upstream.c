/*
 * fuzz_upstream.c — the upstream proxy settings and answers (upstream.c).
 *
 * Byte 0, bit 0 clear: the rest is a proxy's answer head for upstream_parse_answer.
 * Bit 0 set: the rest is split at NUL bytes into HTTPS_PROXY, HTTP_PROXY, NO_PROXY, a
 * target host and ALL_PROXY; upstream_load reads them (the lower-case names are unset),
 * or upstream_load_with(UPSTREAM_WITH_SOCKS5) when bit 1 is set; then the target is
 * routed and, when a proxy is picked, its CONNECT request is built, or for a SOCKS5
 * proxy its SOCKS5 request (which socks5_init must accept). A proxy URL with
 * user:password must give Basic credentials that decode back to exactly them, or for
 * SOCKS5 exactly that user and password; without bit 1 no SOCKS5 route is loaded.
 */
#include <string.h>

#include <netinet/in.h>

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

/* url "scheme://user:pass@host..." with credentials: auth must be "Basic " + them, or
 * for SOCKS5 user and pass must be them. */
static void
creds_kept(const char *url, const struct upstream_proxy *px)
{
	const char *s = strstr(url, "://") ? strstr(url, "://") + 3 : url;
	const char *end = s + strcspn(s, "/");
	const char *at = memchr(s, '@', (size_t)(end - s));
	unsigned char dec[UPSTREAM_AUTH_MAX];
	size_t n;

	if (!px->set || at == NULL)
		return;
	if (px->socks) {
		FUZZ_ASSERT(px->ulen + 1 + px->plen == (size_t)(at - s) && px->auth[0] == 0);
		FUZZ_ASSERT(memcmp(px->user, s, px->ulen) == 0 && s[px->ulen] == ':' &&
		    memcmp(px->pass, s + px->ulen + 1, px->plen) == 0);
		return;
	}
	FUZZ_ASSERT(strncmp(px->auth, "Basic ", 6) == 0);
	FUZZ_ASSERT(b64std_decode(dec, sizeof dec, &n, px->auth + 6, strlen(px->auth + 6)) == ERR_OK);
	FUZZ_ASSERT(n == (size_t)(at - s) && memcmp(dec, s, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char https[1024], http[1024], noproxy[2048], host[300], all[1024];
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
	field(&p, end, all, sizeof all);
	unsetenv("https_proxy");
	unsetenv("http_proxy");
	unsetenv("no_proxy");
	unsetenv("all_proxy");
	setenv("HTTPS_PROXY", https, 1);
	setenv("HTTP_PROXY", http, 1);
	setenv("NO_PROXY", noproxy, 1);
	setenv("ALL_PROXY", all, 1);
	err[0] = 0;
	rc = data[0] & 2 ? upstream_load_with(&routes, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err) :
	    upstream_load(&routes, 1, err, sizeof err);
	unsetenv("HTTPS_PROXY");
	unsetenv("HTTP_PROXY");
	unsetenv("NO_PROXY");
	unsetenv("ALL_PROXY");
	if (rc != ERR_OK) {
		FUZZ_ASSERT(rc == ERR_INVAL && err[0] != 0 && memchr(err, 0, sizeof err) != NULL);
		return 0;
	}
	FUZZ_ASSERT(routes.n_no_proxy >= 0 && routes.n_no_proxy <= UPSTREAM_NO_PROXY_MAX);
	FUZZ_ASSERT((data[0] & 2) || (!routes.https.socks && !routes.http.socks));
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
			if (px->socks) {
				struct socks5_req sr;
				struct socks5 s5;
				struct net_addr a;
				memset(&a, 0, sizeof a);
				a.ss.ss_family = AF_INET;
				FUZZ_ASSERT(upstream_socks5_req(px, &th, ports[i], &a, &sr) == ERR_OK);
				FUZZ_ASSERT(socks5_init(&s5, &sr) == ERR_OK);
				continue;
			}
			n = upstream_connect_request(px, &th, ports[i], req, sizeof req);
			FUZZ_ASSERT(n < sizeof req);
			if (n)
				FUZZ_ASSERT(strlen(req) == n && memcmp(req, "CONNECT ", 8) == 0);
		}
	}
	upstream_wipe(&routes);
	return 0;
}

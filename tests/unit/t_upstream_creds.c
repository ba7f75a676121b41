/* t_upstream_creds.c — proxy URLs from the environment (upstream.c, docs/configuration.md): the Basic
 * credentials, their length limit (a fuzz finding), routing, the CONNECT request and the
 * proxy's answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "err.h"
#include "upstream.h"
#include "test.h"

static struct upstream_routes r;

static void
clear(void)
{
	static const char *const v[] = { "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
		"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy" };
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		unsetenv(v[i]);
}

/* Load with HTTPS_PROXY = http://<user>:<pass>@proxy.test:3128 (user and pass of n bytes). */
static int
load_creds(size_t ulen, size_t plen, char *err, size_t errlen)
{
	char url[800];
	size_t o = 0;

	memcpy(url, "http://", 7);
	o = 7;
	memset(url + o, 'u', ulen);
	o += ulen;
	url[o++] = ':';
	memset(url + o, 'p', plen);
	o += plen;
	snprintf(url + o, sizeof url - o, "@proxy.test:3128");
	clear();
	setenv("HTTPS_PROXY", url, 1);
	return upstream_load(&r, 1, err, errlen);
}

void
t_upstream_creds(void)
{
	char err[256], req[UPSTREAM_REQ_MAX];
	unsigned char dec[UPSTREAM_AUTH_MAX];
	size_t n;
	struct target_host h;
	int status = 0;
	size_t head = 0;

	/* Credentials: 294 bytes is the longest that fits "Basic " + base64 in auth[400];
	 * 295..299 used to give an empty "Basic " header (tests/fuzz/corpus/upstream/
	 * seed-env-long-creds, found by fuzz_upstream). */
	CHECK_INT(load_creds(100, 193, err, sizeof err), ERR_OK, "294-byte credentials accepted");
	CHECK(strncmp(r.https.auth, "Basic ", 6) == 0, "Basic scheme");
	CHECK_INT(b64std_decode(dec, sizeof dec, &n, r.https.auth + 6, strlen(r.https.auth + 6)),
	    ERR_OK, "294-byte credentials: base64 decodes");
	CHECK_INT(n, 294, "294-byte credentials: all of them sent");
	CHECK(n == 294 && dec[0] == 'u' && dec[100] == ':' && dec[293] == 'p',
	    "294-byte credentials: as given");
	CHECK_INT(load_creds(150, 148, err, sizeof err), ERR_INVAL, "299-byte credentials refused");
	CHECK(strstr(err, "HTTPS_PROXY: credentials longer than 294 bytes") != NULL,
	    "299-byte credentials: message");
	CHECK(strstr(err, "ppp") == NULL, "the password is not in the message");
	CHECK_INT(load_creds(100, 194, err, sizeof err), ERR_INVAL, "295-byte credentials refused");

	/* A small URL, routing and the CONNECT request. */
	CHECK_INT(load_creds(5, 6, err, sizeof err), ERR_OK, "short credentials");
	setenv("NO_PROXY", " .internal , *x", 1);
	setenv("HTTPS_PROXY", "http://alice:secret@proxy.test:3128", 1);
	CHECK_INT(upstream_load(&r, 1, err, sizeof err), ERR_OK, "proxy with NO_PROXY");
	CHECK_STR(r.https.auth, "Basic YWxpY2U6c2VjcmV0", "Basic credentials");
	CHECK_INT(r.https.port, 3128, "proxy port");
	CHECK_INT(target_parse_host("db.internal", 11, &h), TARGET_OK, "host");
	CHECK(upstream_route(&r, &h, 443) == NULL, "NO_PROXY suffix: direct");
	CHECK_INT(target_parse_host("example.com", 11, &h), TARGET_OK, "host 2");
	CHECK(upstream_route(&r, &h, 443) == &r.https, "other host: through the proxy");
	CHECK(upstream_route(&r, &h, 80) == NULL, "no HTTP_PROXY: port 80 direct");
	n = upstream_connect_request(&r.https, &h, 443, req, sizeof req);
	CHECK_STR(req, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
	    "Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n", "CONNECT request");
	CHECK_INT(n, strlen(req), "CONNECT request length");
	setenv("HTTPS_PROXY", "socks5://proxy.test", 1);
	CHECK_INT(upstream_load(&r, 1, err, sizeof err), ERR_INVAL, "socks5:// proxy refused");
	clear();
	upstream_wipe(&r);

	/* The proxy's answer. */
	CHECK_INT(upstream_parse_answer("HTTP/1.1 200 OK\r\n\r\nxy", 21, &status, &head), ERR_OK,
	    "answer parsed");
	CHECK(status == 200 && head == 19, "answer status and head length");
	CHECK_INT(upstream_parse_answer("HTTP/1.1 200 OK\r\n", 17, &status, &head), ERR_TRUNC,
	    "answer incomplete");
	CHECK_INT(upstream_parse_answer("HTTP/1.1 20 OK\r\n\r\n", 18, &status, &head), ERR_INVAL,
	    "short status refused");
}

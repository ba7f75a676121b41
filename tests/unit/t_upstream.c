/*
 * t_upstream.c — proxy URLs (SPEC §2.4): a table of HTTPS_PROXY values, good and hostile,
 * one assertion per field; NO_PROXY routing; the CONNECT request and answer; the TLS
 * failure names; and the shared trust-anchor loader (anchors.c) fed a CA minted here.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anchors.h"
#include "ca.h"
#include "err.h"
#include "test.h"
#include "upstream.h"

static const struct {
	const char *url;
	int rc, tls;
	const char *host;
	unsigned port;
	const char *auth;
} urls[] = {
	{ "http://proxy.example:3128", ERR_OK, 0, "proxy.example", 3128, "" },
	{ "http://proxy.example", ERR_OK, 0, "proxy.example", 80, "" },
	{ "http://proxy.example/", ERR_OK, 0, "proxy.example", 80, "" },
	{ "proxy.example:3128", ERR_OK, 0, "proxy.example", 3128, "" },
	{ "http://10.0.0.1:3128", ERR_OK, 0, "10.0.0.1", 3128, "" },
	{ "https://proxy.example", ERR_OK, 1, "proxy.example", 443, "" },
	{ "https://proxy.example/", ERR_OK, 1, "proxy.example", 443, "" },
	{ "HTTPS://Proxy.Example:8443", ERR_OK, 1, "proxy.example", 8443, "" },
	{ "https://u:p@proxy.example", ERR_OK, 1, "proxy.example", 443, "Basic dTpw" },
	{ "https://user:pass@proxy.example:3129/", ERR_OK, 1, "proxy.example", 3129, "Basic dXNlcjpwYXNz" },
	/* hostile or unsupported */
	{ "https://10.0.0.1:443", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://[::1]:443", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://u:secretpw@10.0.0.1", ERR_INVAL, 0, NULL, 0, NULL },
	{ "socks5://proxy.example:1080", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example/path", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example:0", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example:99999", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example:", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://user@proxy.example", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://u:p%41@proxy.example", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://:443", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://", ERR_INVAL, 0, NULL, 0, NULL },
};

static void
clear_env(void)
{
	static const char *const v[] = { "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
		"NO_PROXY", "no_proxy" };
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		unsetenv(v[i]);
}

static void
url_table(void)
{
	struct upstream_routes r;
	char err[200], name[160];
	size_t i;

	for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		int rc;

		clear_env();
		setenv("HTTPS_PROXY", urls[i].url, 1);
		err[0] = 0;
		rc = upstream_load(&r, 1, err, sizeof err);
		snprintf(name, sizeof name, "%s: result", urls[i].url);
		CHECK_INT(rc, urls[i].rc, name);
		if (rc != ERR_OK) {
			snprintf(name, sizeof name, "%s: error names HTTPS_PROXY, not the password", urls[i].url);
			CHECK(strstr(err, "HTTPS_PROXY") != NULL && strstr(err, "secretpw") == NULL, name);
			continue;
		}
		snprintf(name, sizeof name, "%s: tls", urls[i].url);
		CHECK_INT(r.https.tls, urls[i].tls, name);
		snprintf(name, sizeof name, "%s: host", urls[i].url);
		CHECK_STR(r.https.host.name, urls[i].host, name);
		snprintf(name, sizeof name, "%s: port", urls[i].url);
		CHECK_INT(r.https.port, urls[i].port, name);
		snprintf(name, sizeof name, "%s: Proxy-Authorization", urls[i].url);
		CHECK_STR(r.https.auth, urls[i].auth, name);
		snprintf(name, sizeof name, "%s: any_tls", urls[i].url);
		CHECK_INT(upstream_any_tls(&r), urls[i].tls, name);
		upstream_wipe(&r);
	}
	clear_env();
}

static void
routing(void)
{
	struct upstream_routes r;
	struct target_host h;
	const struct upstream_proxy *p;
	char err[200], req[UPSTREAM_REQ_MAX];
	size_t n;
	int status = 0;
	size_t hl = 0;
	const char ans[] = "HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n\x16\x03\x03";

	clear_env();
	setenv("https_proxy", "https://a:b@proxy.example:8443", 1);
	setenv("HTTP_PROXY", "http://plain.example:3128", 1);
	setenv("NO_PROXY", "internal.example, .Skip.Example", 1);
	CHECK_INT(upstream_load(&r, 1, err, sizeof err), ERR_OK, "routes: load");
	CHECK(upstream_any_tls(&r), "routes: an https:// route exists");
	target_parse_host("console.example", 15, &h);
	p = upstream_route(&r, &h, 443);
	CHECK(p != NULL && p->tls && p->port == 8443, "routes: 443 goes through the https:// proxy");
	p = upstream_route(&r, &h, 80);
	CHECK(p != NULL && !p->tls && p->port == 3128, "routes: 80 goes through HTTP_PROXY (plain)");
	target_parse_host("a.skip.example", 14, &h);
	CHECK(upstream_route(&r, &h, 443) == NULL, "routes: NO_PROXY suffix bypasses the https proxy");
	target_parse_host("console.example", 15, &h);
	n = upstream_connect_request(upstream_route(&r, &h, 443), &h, 443, req, sizeof req);
	CHECK(n > 0 && strncmp(req, "CONNECT console.example:443 HTTP/1.1\r\nHost: console.example:443\r\n", 65) == 0,
	    "CONNECT request line and Host");
	CHECK(n > 0 && strstr(req, "Proxy-Authorization: Basic YTpi\r\n\r\n") != NULL,
	    "CONNECT request carries Basic credentials");
	CHECK_INT(upstream_load(&r, 0, err, sizeof err), ERR_OK, "routes: disabled");
	CHECK(!upstream_any_tls(&r), "routes: disabled means no https:// route");
	/* the answer head ends at the blank line; what follows is the tunnel's */
	CHECK_INT(upstream_parse_answer(ans, 20, &status, &hl), ERR_TRUNC, "answer: truncated");
	CHECK_INT(upstream_parse_answer(ans, sizeof ans - 1, &status, &hl), ERR_OK, "answer: complete");
	CHECK_INT(status, 200, "answer: status");
	CHECK_INT(hl, sizeof ans - 1 - 3, "answer: head length leaves the 3 tunnel bytes");
	CHECK_INT(upstream_parse_answer("HTTP/2 200 OK\r\n\r\n", 17, &status, &hl), ERR_INVAL,
	    "answer: not HTTP/1.x");
	upstream_wipe(&r);
	clear_env();
}

static void
tls_names(void)
{
	CHECK_STR(upstream_tls_error(BR_ERR_X509_NOT_TRUSTED), "certificate_not_trusted", "tls: not trusted");
	CHECK_STR(upstream_tls_error(BR_ERR_X509_BAD_SERVER_NAME), "certificate_name_mismatch", "tls: name");
	CHECK_STR(upstream_tls_error(BR_ERR_X509_EXPIRED), "certificate_expired", "tls: expired");
	CHECK_STR(upstream_tls_error(BR_ERR_BAD_CIPHER_SUITE), "no_common_cipher_suite", "tls: suites");
	CHECK_STR(upstream_tls_error(BR_ERR_RECV_FATAL_ALERT + 40), "proxy_sent_alert", "tls: alert");
}

/* A CA minted here, written as PEM, loaded back as an anchor (file, inline, one-line). */
static void
anchors_load(void)
{
	static struct ca ca;
	static struct anchors a;
	char pem[8192], oneline[9000], path[] = "/tmp/t_upstream-XXXXXX", why[256];
	size_t n, i, o = 0;
	int fd;

	CHECK_INT(ca_generate(&ca, 2048, "t-upstream", time(NULL)), ERR_OK, "anchors: CA minted");
	n = br_pem_encode(pem, ca.cert, ca.cert_len, "CERTIFICATE", BR_PEM_LINE64);
	CHECK(n > 0 && n < sizeof pem, "anchors: PEM encoded");
	fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, "junk\n", 5) == 5 && write(fd, pem, n) == (ssize_t)n, "anchors: file written");
	close(fd);
	anchors_reset(&a);
	CHECK_INT(anchors_add_file(&a, path, why, sizeof why), ERR_OK, "anchors: file read");
	CHECK_INT(a.n, 1, "anchors: one anchor from the file");
	CHECK(a.n == 1 && (a.ta[0].flags & BR_X509_TA_CA) && a.ta[0].pkey.key_type == BR_KEYTYPE_RSA,
	    "anchors: a CA with an RSA key");
	anchors_add_pem(&a, pem);
	CHECK_INT(a.n, 2, "anchors: inline PEM adds one more");
	for (i = 0; i < n && o + 2 < sizeof oneline; i++) {
		if (pem[i] == '\n') {
			oneline[o++] = '\\';
			oneline[o++] = 'n';
		} else {
			oneline[o++] = pem[i];
		}
	}
	oneline[o] = 0;
	CHECK_INT(anchors_add_value(&a, oneline, why, sizeof why), ERR_OK, "anchors: one-line value");
	CHECK_INT(a.n, 3, "anchors: one-line PEM (literal \\n) adds one more");
	anchors_add_pem(&a, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	CHECK_INT(a.n, 3, "anchors: a damaged certificate is skipped");
	/* CRLF line ends (a CA file saved on Windows): BearSSL's PEM decoder needs them read
	 * as LF. The junk line puts the BEGIN line's CR as the last byte of the first 4 KiB
	 * read, so the CR and its LF arrive in different pushes. */
	{
		static char crlf[4096 + 10000];
		size_t c = 0, j;
		for (j = 0; j < 4067; j++)
			crlf[c++] = 'x';
		crlf[c++] = '\n';
		for (j = 0; j < n; j++) {
			if (pem[j] == '\n')
				crlf[c++] = '\r';
			crlf[c++] = pem[j];
		}
		CHECK(crlf[4095] == '\r' && crlf[4096] == '\n', "anchors: CRLF file splits a CR from its LF at 4 KiB");
		fd = open(path, O_WRONLY | O_TRUNC);
		CHECK(fd >= 0 && write(fd, crlf, c) == (ssize_t)c, "anchors: CRLF file written");
		close(fd);
		CHECK_INT(anchors_add_file(&a, path, why, sizeof why), ERR_OK, "anchors: CRLF file read");
		CHECK_INT(a.n, 4, "anchors: a CA file with CRLF line ends adds one more");
	}
	unlink(path);
	CHECK_INT(anchors_add_value(&a, path, why, sizeof why), ERR_IO, "anchors: missing file");
	CHECK(strstr(why, path) != NULL, "anchors: the reason names the file");
	anchors_reset(&a);
	CHECK_INT(a.n, 0, "anchors: reset empties");
	anchors_wipe(&a);
	ca_free(&ca);
}

void
t_upstream(void)
{
	url_table();
	routing();
	tls_names();
	anchors_load();
}

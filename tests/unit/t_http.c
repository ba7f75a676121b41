/*
 * t_http.c — request heads (docs/protocol.md): a table of good and hostile heads, one assertion
 * per case, each fed whole, one byte at a time and in odd chunks (the outcome must not
 * change); request-target forms; Content-Length; list fields; error responses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "test.h"

#define MAXH HTTP_DEFAULT_MAX_HEAD
#define CRLF "\r\n"
#define RL "GET / HTTP/1.1" CRLF

static const struct {
	const char *name;
	const char *in;
	size_t max;  /* 0: MAXH */
	int rc;
	const char *reason; /* NULL: not checked */
} heads[] = {
	/* good */
	{ "minimal", RL CRLF, 0, HTTP_OK, NULL },
	{ "connect", "CONNECT a.example:443 HTTP/1.1" CRLF "Host: a.example:443" CRLF CRLF, 0,
	    HTTP_OK, NULL },
	{ "bare LF", "GET / HTTP/1.1\nHost: a\n\n", 0, HTTP_OK, NULL },
	{ "mixed LF then CRLF", "GET / HTTP/1.1\nHost: a\r\n\n", 0, HTTP_OK, NULL },
	{ "mixed CRLF then LF", "GET / HTTP/1.1\r\nHost: a\n\r\n", 0, HTTP_OK, NULL },
	{ "HTTP/1.0", "GET / HTTP/1.0" CRLF CRLF, 0, HTTP_OK, NULL },
	{ "leading empty lines", CRLF "\n" RL CRLF, 0, HTTP_OK, NULL },
	{ "empty value", RL "X:" CRLF CRLF, 0, HTTP_OK, NULL },
	{ "OWS only value", RL "X: \t " CRLF CRLF, 0, HTTP_OK, NULL },
	{ "obs-text value", RL "X: caf\xc3\xa9" CRLF CRLF, 0, HTTP_OK, NULL },
	{ "tab in value", RL "X: a\tb" CRLF CRLF, 0, HTTP_OK, NULL },
	{ "Content-Length leading zeros", RL "Content-Length: 007" CRLF CRLF, 0, HTTP_OK, NULL },
	{ "repeated Connection", RL "Connection: a" CRLF "connection: b" CRLF CRLF, 0,
	    HTTP_OK, NULL },
	{ "tchar name", RL "X-!#$%&'*+.^_`|~: v" CRLF CRLF, 0, HTTP_OK, NULL },
	{ "exactly max", RL "X: 12" CRLF CRLF, sizeof(RL "X: 12" CRLF CRLF) - 1, HTTP_OK,
	    NULL },
	/* request line */
	{ "double space after method", "GET  / HTTP/1.1" CRLF CRLF, 0, HTTP_BAD,
	    "bad request-target" },
	{ "double space before version", "GET /  HTTP/1.1" CRLF CRLF, 0, HTTP_BAD,
	    "bad HTTP version" },
	{ "leading space", " GET / HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad method" },
	{ "trailing space", "GET / HTTP/1.1 " CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "tab separator", "GET\t/ HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad method" },
	{ "method not token", "G(T / HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad method" },
	{ "method missing", "/ HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad method" },
	{ "method alone", "GET" CRLF CRLF, 0, HTTP_BAD, "bad method" },
	{ "no version", "GET /" CRLF CRLF, 0, HTTP_BAD, "bad request-target" },
	{ "empty version", "GET / " CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "HTTP/0.9 style", "GET /" CRLF, 0, HTTP_BAD, "bad request-target" },
	{ "lowercase version", "GET / http/1.1" CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "HTTP/2.0", "GET / HTTP/2.0" CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "HTTP/1.2", "GET / HTTP/1.2" CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "HTTP/1.10", "GET / HTTP/1.10" CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "HTTP/1", "GET / HTTP/1" CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	{ "target with DEL", "GET /\x7f HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad request-target" },
	{ "target with 8-bit", "GET /\xc3\xa9 HTTP/1.1" CRLF CRLF, 0, HTTP_BAD,
	    "bad request-target" },
	{ "target with control", "GET /\x01 HTTP/1.1" CRLF CRLF, 0, HTTP_BAD,
	    "bad request-target" },
	{ "target with tab", "GET /a\tb HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad request-target" },
	{ "target with space", "GET /a b HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "bad HTTP version" },
	/* line ends and bytes */
	{ "bare CR in field", RL "Host: a\rb" CRLF CRLF, 0, HTTP_BAD, "bare CR" },
	{ "bare CR as line end", RL "Host: a\rX: b" CRLF CRLF, 0, HTTP_BAD, "bare CR" },
	{ "bare CR in request line", "GET / HTTP/1.1\rHost: a" CRLF CRLF, 0, HTTP_BAD,
	    "bare CR" },
	{ "CR CR LF", RL "Host: a\r\r\n" CRLF, 0, HTTP_BAD, "bare CR" },
	{ "CR CR LF at end", RL "\r\r\n", 0, HTTP_BAD, "bare CR" },
	{ "NUL in value", RL "Host: a\0b" CRLF CRLF, 0, HTTP_BAD, "NUL byte" },
	{ "NUL in name", RL "Ho\0st: a" CRLF CRLF, 0, HTTP_BAD, "NUL byte" },
	{ "NUL in request line", "GET /\0 HTTP/1.1" CRLF CRLF, 0, HTTP_BAD, "NUL byte" },
	{ "control in value", RL "X: a\x01" "b" CRLF CRLF, 0, HTTP_BAD,
	    "control character in field value" },
	{ "DEL in value", RL "X: a\x7f" CRLF CRLF, 0, HTTP_BAD,
	    "control character in field value" },
	/* field lines */
	{ "obs-fold SP", RL "X: a" CRLF " b" CRLF CRLF, 0, HTTP_BAD, "obs-fold" },
	{ "obs-fold HT", RL "X: a" CRLF "\tb" CRLF CRLF, 0, HTTP_BAD, "obs-fold" },
	{ "fold as first field", RL " X: a" CRLF CRLF, 0, HTTP_BAD, "obs-fold" },
	{ "no colon", RL "Host a" CRLF CRLF, 0, HTTP_BAD, "header line without colon" },
	{ "SP before colon", RL "Host : a" CRLF CRLF, 0, HTTP_BAD, "whitespace before colon" },
	{ "HT before colon", RL "Host\t: a" CRLF CRLF, 0, HTTP_BAD, "whitespace before colon" },
	{ "empty name", RL ": a" CRLF CRLF, 0, HTTP_BAD, "empty field name" },
	{ "space in name", RL "Ho st: a" CRLF CRLF, 0, HTTP_BAD, "bad field name" },
	{ "paren in name", RL "Ho(st: a" CRLF CRLF, 0, HTTP_BAD, "bad field name" },
	{ "8-bit name", RL "H\xc3\xa9: a" CRLF CRLF, 0, HTTP_BAD, "bad field name" },
	{ "dup Host", RL "Host: a" CRLF "Host: a" CRLF CRLF, 0, HTTP_BAD, "duplicate Host" },
	{ "dup Host any case", RL "host: a" CRLF "HOST: b" CRLF CRLF, 0, HTTP_BAD,
	    "duplicate Host" },
	{ "dup Proxy-Authorization", RL "Proxy-Authorization: a" CRLF
	    "proxy-authorization: b" CRLF CRLF, 0, HTTP_BAD, "duplicate Proxy-Authorization" },
	{ "dup Authorization", RL "Authorization: a" CRLF "AUTHORIZATION: a" CRLF CRLF, 0,
	    HTTP_BAD, "duplicate Authorization" },
	{ "dup Content-Length", RL "Content-Length: 1" CRLF "content-length: 1" CRLF CRLF, 0,
	    HTTP_BAD, "duplicate Content-Length" },
	{ "dup Transfer-Encoding", RL "Transfer-Encoding: chunked" CRLF
	    "Transfer-Encoding: chunked" CRLF CRLF, 0, HTTP_BAD, "duplicate Transfer-Encoding" },
	{ "dup Sec-WebSocket-Key", RL "Sec-WebSocket-Key: a" CRLF "sec-websocket-key: b" CRLF
	    CRLF, 0, HTTP_BAD, "duplicate Sec-WebSocket-Key" },
	{ "dup Sec-WebSocket-Version", RL "Sec-WebSocket-Version: 13" CRLF
	    "Sec-WebSocket-Version: 13" CRLF CRLF, 0, HTTP_BAD,
	    "duplicate Sec-WebSocket-Version" },
	{ "CL and TE", RL "Content-Length: 1" CRLF "Transfer-Encoding: chunked" CRLF CRLF, 0,
	    HTTP_BAD, "both Content-Length and Transfer-Encoding" },
	{ "TE and CL", RL "Transfer-Encoding: chunked" CRLF "Content-Length: 1" CRLF CRLF, 0,
	    HTTP_BAD, "both Content-Length and Transfer-Encoding" },
	{ "CL negative", RL "Content-Length: -1" CRLF CRLF, 0, HTTP_BAD, "bad Content-Length" },
	{ "CL plus", RL "Content-Length: +1" CRLF CRLF, 0, HTTP_BAD, "bad Content-Length" },
	{ "CL list", RL "Content-Length: 1, 1" CRLF CRLF, 0, HTTP_BAD, "bad Content-Length" },
	{ "CL inner space", RL "Content-Length: 1 1" CRLF CRLF, 0, HTTP_BAD,
	    "bad Content-Length" },
	{ "CL empty", RL "Content-Length:" CRLF CRLF, 0, HTTP_BAD, "bad Content-Length" },
	{ "CL hex", RL "Content-Length: 0x10" CRLF CRLF, 0, HTTP_BAD, "bad Content-Length" },
	{ "CL overflow", RL "Content-Length: 9223372036854775808" CRLF CRLF, 0, HTTP_BAD,
	    "bad Content-Length" },
	/* size */
	{ "head over max", RL "X: 12" CRLF CRLF, sizeof(RL "X: 12" CRLF CRLF) - 2,
	    HTTP_TOO_LARGE, "request head too large" },
	{ "request line over max", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1" CRLF
	    CRLF, 16, HTTP_TOO_LARGE, "request head too large" },
	{ "empty lines over max", CRLF CRLF CRLF CRLF CRLF CRLF, 8, HTTP_TOO_LARGE,
	    "request head too large" },
	{ "error before max wins", RL "Host : a" CRLF "X: aaaaaaaaaaaaaaaaaaaaaaaaaaa" CRLF,
	    40, HTTP_BAD, "whitespace before colon" },
};

/* Compare two parse results, the whole-buffer one being the reference. */
static void
same(const struct http_request *a, const struct http_request *b, int rca, int rcb,
    const char *name)
{
	int ok = rca == rcb && a->reason == b->reason;

	if (ok && rca == HTTP_OK)
		ok = a->head_len == b->head_len && a->nheaders == b->nheaders &&
		    a->have == b->have && a->minor == b->minor &&
		    memcmp(&a->method, &b->method, sizeof a->method) == 0 &&
		    memcmp(&a->target, &b->target, sizeof a->target) == 0 &&
		    memcmp(a->headers, b->headers, a->nheaders * sizeof a->headers[0]) == 0 &&
		    memcmp(a->val, b->val, sizeof a->val) == 0;
	CHECK(ok, name);
}

/* Feed in[0..n) in chunks of the given sizes (cycled); the result of the last call.
 * Each call sees an exact-size heap copy, so a sanitizer build catches any read past
 * what has arrived (the one allocation in these tests, for that reason). */
static int
feed(struct http_request *r, const char *in, size_t n, size_t max, const size_t *chunks,
    size_t nchunks)
{
	size_t have = 0, k = 0;
	int rc = HTTP_INCOMPLETE, early = 0;
	char *copy;

	http_init(r);
	while (have < n) {
		have += chunks[k++ % nchunks];
		if (have > n)
			have = n;
		if ((copy = malloc(have)) == NULL)
			return 98;
		memcpy(copy, in, have);
		rc = http_parse(r, copy, have, max);
		free(copy);
		if (rc != HTTP_INCOMPLETE && have < n && !early)
			early = rc; /* decided early: later calls must say the same */
		if (early && rc != early)
			return 99;
	}
	return rc;
}

static void
head_table(void)
{
	static const size_t one[] = { 1 }, odd[] = { 7, 3, 13, 1, 5 }, two[] = { 2 };
	struct http_request whole, part;
	char name[160];
	size_t i, n, max;
	int rc, prc;

	for (i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		n = strlen(heads[i].in);
		/* strlen stops at a NUL: those cases carry it mid-string */
		if (strstr(heads[i].name, "NUL") != NULL)
			n += strlen(heads[i].in + n + 1) + 1;
		max = heads[i].max ? heads[i].max : MAXH;
		http_init(&whole);
		rc = http_parse(&whole, heads[i].in, n, max);
		CHECK_INT(rc, heads[i].rc, heads[i].name);
		if (heads[i].reason != NULL)
			CHECK_STR(whole.reason, heads[i].reason, heads[i].name);
		if (rc == HTTP_OK)
			CHECK_INT(whole.head_len, n, heads[i].name);
		snprintf(name, sizeof name, "%s: again", heads[i].name);
		CHECK_INT(http_parse(&whole, heads[i].in, n, max), rc, name);

		prc = feed(&part, heads[i].in, n, max, one, 1);
		snprintf(name, sizeof name, "%s: byte by byte", heads[i].name);
		same(&whole, &part, rc, prc, name);
		prc = feed(&part, heads[i].in, n, max, odd, 5);
		snprintf(name, sizeof name, "%s: odd chunks", heads[i].name);
		same(&whole, &part, rc, prc, name);
		prc = feed(&part, heads[i].in, n, max, two, 1);
		snprintf(name, sizeof name, "%s: two by two", heads[i].name);
		same(&whole, &part, rc, prc, name);
	}
}

/* A full request: every field the relay uses, its spans, and pipelined bytes after it. */
static void
head_fields(void)
{
	static const char in[] =
	    "CONNECT console.example.com:443 HTTP/1.1\r\n"
	    "Host: console.example.com:443\r\n"
	    "proxy-authorization:   Bearer abc.def.ghi  \t\r\n"
	    "Authorization: Bearer x\n"
	    "Content-Length: 0\r\n"
	    "Connection: keep-alive, Upgrade\r\n"
	    "Proxy-Connection: Keep-Alive\r\n"
	    "Upgrade: websocket\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "X-Other: 1\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "\x16\x03\x01 pipelined TLS bytes\r\n\r\n";
	struct http_request r;
	struct http_target t;
	size_t head = (size_t)(strstr(in, "\r\n\r\n") - in) + 4;

	http_init(&r);
	CHECK_INT(http_parse(&r, in, 10, MAXH), HTTP_INCOMPLETE, "fields: partial");
	CHECK_INT(http_parse(&r, in, sizeof in - 1, MAXH), HTTP_OK, "fields: parse");
	CHECK_INT(r.head_len, head, "fields: head_len stops before pipelined bytes");
	CHECK(http_span_is(in, r.method, "CONNECT"), "fields: method");
	CHECK(!http_span_is(in, r.method, "connect"), "fields: method is case-sensitive");
	CHECK(http_span_is(in, r.target, "console.example.com:443"), "fields: target");
	CHECK_INT(r.minor, 1, "fields: minor");
	CHECK_INT(r.nheaders, 11, "fields: count");
	CHECK(http_span_is(in, r.val[HTTP_H_HOST], "console.example.com:443"), "fields: Host");
	CHECK(http_span_is(in, r.val[HTTP_H_PROXY_AUTHORIZATION], "Bearer abc.def.ghi"),
	    "fields: Proxy-Authorization trimmed");
	CHECK(http_span_is(in, r.val[HTTP_H_AUTHORIZATION], "Bearer x"), "fields: Authorization");
	CHECK(http_span_is(in, r.val[HTTP_H_CONTENT_LENGTH], "0"), "fields: Content-Length");
	CHECK(http_span_is(in, r.val[HTTP_H_CONNECTION], "keep-alive, Upgrade"),
	    "fields: Connection keeps the first");
	CHECK(http_span_is(in, r.val[HTTP_H_PROXY_CONNECTION], "Keep-Alive"),
	    "fields: Proxy-Connection");
	CHECK(http_span_is(in, r.val[HTTP_H_UPGRADE], "websocket"), "fields: Upgrade");
	CHECK(http_span_is(in, r.val[HTTP_H_SEC_WEBSOCKET_KEY], "dGhlIHNhbXBsZSBub25jZQ=="),
	    "fields: Sec-WebSocket-Key");
	CHECK(http_span_is(in, r.val[HTTP_H_SEC_WEBSOCKET_VERSION], "13"),
	    "fields: Sec-WebSocket-Version");
	CHECK(!(r.have & (1u << HTTP_H_TRANSFER_ENCODING)), "fields: no Transfer-Encoding");
	CHECK(r.have & (1u << HTTP_H_HOST), "fields: have Host");
	CHECK(http_span_is(in, r.headers[1].name, "proxy-authorization"), "fields: name as sent");
	CHECK_INT(r.headers[1].id, HTTP_H_PROXY_AUTHORIZATION, "fields: id");
	CHECK(http_span_is(in, r.headers[9].name, "X-Other"), "fields: other name");
	CHECK_INT(r.headers[9].id, HTTP_H_OTHER, "fields: other id");
	CHECK(http_list_has(in, &r, HTTP_H_CONNECTION, "upgrade"), "list: upgrade");
	CHECK(http_list_has(in, &r, HTTP_H_CONNECTION, "KEEP-ALIVE"), "list: keep-alive");
	CHECK(http_list_has(in, &r, HTTP_H_CONNECTION, "close"), "list: second field");
	CHECK(!http_list_has(in, &r, HTTP_H_CONNECTION, "upgrad"), "list: no prefix match");
	CHECK(!http_list_has(in, &r, HTTP_H_CONNECTION, "keep"), "list: no partial");
	CHECK(http_list_has(in, &r, HTTP_H_UPGRADE, "WebSocket"), "list: Upgrade");
	CHECK(!http_list_has(in, &r, HTTP_H_TRANSFER_ENCODING, "chunked"), "list: absent");
	CHECK_INT(http_target_split(in, &r, &t), HTTP_OK, "fields: target split");
	CHECK_INT(t.form, HTTP_FORM_AUTHORITY, "fields: authority-form");
	CHECK_STR(t.addr.host.name, "console.example.com", "fields: target host");
	CHECK_INT(t.addr.port, 443, "fields: target port");

	/* 64 fields fit, 65 do not (431) */
	{
		static char big[64 * 8 + 64];
		size_t n, k;
		int rc;

		n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
		for (k = 0; k < HTTP_MAX_HEADERS; k++)
			n += (size_t)snprintf(big + n, sizeof big - n, "X%02u: v\n", (unsigned)k);
		memcpy(big + n, "\n", 2);
		http_init(&r);
		rc = http_parse(&r, big, n + 1, MAXH);
		CHECK_INT(rc, HTTP_OK, "64 fields");
		CHECK_INT(r.nheaders, HTTP_MAX_HEADERS, "64 fields: count");
		memcpy(big + n, "Y: v\n\n", 7);
		http_init(&r);
		CHECK_INT(http_parse(&r, big, n + 6, MAXH), HTTP_TOO_LARGE, "65 fields");
		CHECK_STR(r.reason, "too many header fields", "65 fields: reason");
	}
	/* leading empty lines shift the method */
	http_init(&r);
	CHECK_INT(http_parse(&r, "\r\nGET /x HTTP/1.0\n\n", 19, MAXH), HTTP_OK, "skip CRLF");
	CHECK_INT(r.method.off, 2, "skip CRLF: method offset");
	CHECK_INT(r.minor, 0, "skip CRLF: minor 0");
	/* max larger than the buffer holds: incomplete, not too large */
	http_init(&r);
	CHECK_INT(http_parse(&r, RL, sizeof RL - 1, MAXH), HTTP_INCOMPLETE, "incomplete");
	CHECK_INT(http_parse(&r, RL, 0, MAXH), HTTP_INCOMPLETE, "incomplete, empty");
}

static const struct {
	const char *line; /* request line without CRLF */
	int rc, form;
	const char *host;
	unsigned port;
	const char *path;
} targets[] = {
	{ "CONNECT a.example:443 HTTP/1.1", HTTP_OK, HTTP_FORM_AUTHORITY, "a.example", 443, "" },
	{ "CONNECT [::1]:4222 HTTP/1.1", HTTP_OK, HTTP_FORM_AUTHORITY, "::1", 4222, "" },
	{ "CONNECT a.example HTTP/1.1", TARGET_E_NO_PORT, 0, NULL, 0, NULL },
	{ "CONNECT /x HTTP/1.1", TARGET_E_HOST_CHARS, 0, NULL, 0, NULL },
	{ "CONNECT http://a.example:443/ HTTP/1.1", TARGET_E_PORT_CHARS, 0, NULL, 0, NULL },
	{ "CONNECT user@a.example:443 HTTP/1.1", TARGET_E_USERINFO, 0, NULL, 0, NULL },
	{ "CONNECT a.example:0443 HTTP/1.1", TARGET_E_PORT_ZEROS, 0, NULL, 0, NULL },
	{ "GET /path?q=1&r=%20 HTTP/1.1", HTTP_OK, HTTP_FORM_ORIGIN, "", 0, "/path?q=1&r=%20" },
	{ "GET http://A.Example/p?q HTTP/1.1", HTTP_OK, HTTP_FORM_ABSOLUTE, "a.example", 80,
	    "/p?q" },
	{ "POST HTTP://a.example:8080 HTTP/1.1", HTTP_OK, HTTP_FORM_ABSOLUTE, "a.example", 8080,
	    "" },
	{ "GET http://a.example?x=1 HTTP/1.1", HTTP_OK, HTTP_FORM_ABSOLUTE, "a.example", 80,
	    "?x=1" },
	{ "GET http://[2001:db8::1]:81/x HTTP/1.1", HTTP_OK, HTTP_FORM_ABSOLUTE, "2001:db8::1",
	    81, "/x" },
	{ "GET http://a.example/%2e%2e/ HTTP/1.1", HTTP_OK, HTTP_FORM_ABSOLUTE, "a.example", 80,
	    "/%2e%2e/" },
	{ "GET https://a.example/ HTTP/1.1", HTTP_HTTPS, 0, NULL, 0, NULL },
	{ "GET HTTPS://a.example/ HTTP/1.1", HTTP_HTTPS, 0, NULL, 0, NULL },
	{ "GET ftp://a.example/ HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "GET ws://a.example/ HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "GET http:/a.example/ HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "OPTIONS * HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "GET a.example:443 HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "GET /p#frag HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "GET http://a.example/#f HTTP/1.1", HTTP_BAD, 0, NULL, 0, NULL },
	{ "GET http://u:p@a.example/ HTTP/1.1", TARGET_E_USERINFO, 0, NULL, 0, NULL },
	{ "GET http://a%2eexample/ HTTP/1.1", TARGET_E_PERCENT, 0, NULL, 0, NULL },
	{ "GET http:/// HTTP/1.1", TARGET_E_EMPTY_HOST, 0, NULL, 0, NULL },
	{ "GET http:// HTTP/1.1", TARGET_E_EMPTY_HOST, 0, NULL, 0, NULL },
	{ "GET http://a.example:0/ HTTP/1.1", TARGET_E_PORT_ZERO, 0, NULL, 0, NULL },
	{ "GET http://a.example:/ HTTP/1.1", TARGET_E_NO_PORT, 0, NULL, 0, NULL },
	{ "GET http://a.example:65536/ HTTP/1.1", TARGET_E_PORT_RANGE, 0, NULL, 0, NULL },
	{ "GET http://167772165/ HTTP/1.1", TARGET_E_NUMERIC, 0, NULL, 0, NULL },
};

static void
target_table(void)
{
	char in[256];
	struct http_request r;
	struct http_target t;
	size_t i, n;
	int rc;

	for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		n = (size_t)snprintf(in, sizeof in, "%s\r\n\r\n", targets[i].line);
		http_init(&r);
		if (http_parse(&r, in, n, MAXH) != HTTP_OK) {
			CHECK(0, targets[i].line);
			continue;
		}
		rc = http_target_split(in, &r, &t);
		CHECK_INT(rc, targets[i].rc, targets[i].line);
		if (rc != HTTP_OK || targets[i].rc != HTTP_OK)
			continue;
		CHECK(t.form == targets[i].form && strcmp(t.addr.host.name, targets[i].host) == 0 &&
		    t.addr.port == targets[i].port &&
		    (t.form == HTTP_FORM_AUTHORITY || http_span_is(in, t.path, targets[i].path)),
		    targets[i].line);
	}
}

static void
content_length(void)
{
	uint64_t v = 1;

	CHECK_INT(http_parse_content_length("0", 1, &v), HTTP_OK, "CL 0");
	CHECK_INT(v, 0, "CL 0 value");
	CHECK_INT(http_parse_content_length("9223372036854775807", 19, &v), HTTP_OK, "CL max");
	CHECK(v == 9223372036854775807ull, "CL max value");
	CHECK_INT(http_parse_content_length("9223372036854775808", 19, &v), HTTP_BAD,
	    "CL max + 1");
	CHECK_INT(http_parse_content_length("18446744073709551616", 20, &v), HTTP_BAD,
	    "CL 2^64");
	CHECK_INT(http_parse_content_length("99999999999999999999999", 23, &v), HTTP_BAD,
	    "CL huge");
	CHECK_INT(http_parse_content_length("", 0, &v), HTTP_BAD, "CL empty");
	CHECK_INT(http_parse_content_length("-0", 2, &v), HTTP_BAD, "CL sign");
	CHECK_INT(http_parse_content_length(" 1", 2, &v), HTTP_BAD, "CL space");
	CHECK_INT(http_parse_content_length("1a", 2, &v), HTTP_BAD, "CL letter");
	CHECK_INT(http_parse_content_length("12", 1, &v), HTTP_OK, "CL uses len");
	CHECK_INT(v, 1, "CL uses len value");
}

static void
responses(void)
{
	static const char want[] =
	    "HTTP/1.1 407 Proxy Authentication Required\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 53\r\n"
	    "Connection: close\r\n"
	    "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n"
	    "\r\n"
	    "{\"error\":\"auth_required\",\"message\":\"no credentials\"}\n";
	static const char want_esc[] =
	    "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 64\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "{\"error\":\"bad_request\",\"message\":\"a\\\"b\\\\c\\u000a\\u0001\\u007f??\"}\n";
	char buf[512];
	size_t n;
	static const int codes[] = { 200, 400, 401, 403, 404, 405, 407, 429, 431, 502, 503,
	    504 };
	size_t i;

	n = http_error_response(buf, sizeof buf, 407, "auth_required", "no credentials",
	    "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n");
	CHECK_INT(n, sizeof want - 1, "407 length");
	CHECK_MEM(buf, want, sizeof want - 1, "407 bytes");
	CHECK_INT(http_error_response(NULL, 0, 407, "auth_required", "no credentials",
	    "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n"), sizeof want - 1,
	    "407 length only");
	memset(buf, 'z', sizeof buf);
	CHECK_INT(http_error_response(buf, sizeof want - 2, 407, "auth_required",
	    "no credentials", "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n"), 0,
	    "407 one byte short");
	CHECK(buf[0] == 'z', "one byte short writes nothing");
	CHECK_INT(http_error_response(buf, sizeof want - 1, 407, "auth_required",
	    "no credentials", "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n"),
	    sizeof want - 1, "407 exact fit");
	n = http_error_response(buf, sizeof buf, 400, "bad_request", "a\"b\\c\n\x01\x7f\xc3\xa9",
	    NULL);
	CHECK_INT(n, sizeof want_esc - 1, "escaped length");
	CHECK_MEM(buf, want_esc, sizeof want_esc - 1, "escaped bytes");
	for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
		CHECK(strcmp(http_reason(codes[i]), "Error") != 0, "reason phrase known");
	CHECK_STR(http_reason(431), "Request Header Fields Too Large", "431 reason");
	CHECK_STR(http_reason(299), "Error", "unknown reason");
}

/* Field names listed in Connection (hop-by-hop, never forwarded), compared whole at any
 * length: http_list_has_span on the span of each field's name. Before issue 17 the names
 * were copied into 64 bytes first: a 64-byte listed name was missed and a 63-byte one
 * matched its longer neighbours. */
static void
hop_by_hop_names(void)
{
	static const size_t lens[] = { 1, 10, 62, 63, 64, 65, 200, 1000, 1900 };
	static char in[HTTP_DEFAULT_MAX_HEAD], name[2048], upper[2048];
	static struct http_request r;
	char what[96];
	size_t i, k, n, o;
	int ok;

	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		n = lens[i];
		for (k = 0; k < n; k++) {
			name[k] = (char)('a' + k % 26);
			upper[k] = (char)('A' + k % 26);
		}
		name[n] = upper[n] = 0;
		/* fields: 0 Connection, 1 the name, 2 the name + "x", 3 the name less its last
		 * byte (absent for n = 1), 4 a second Connection with the name again */
		o = (size_t)snprintf(in, sizeof in, "GET http://a/ HTTP/1.1\r\nConnection: close, \t%s ,x\r\n"
		    "%s: 1\r\n%sx: 2\r\n", upper, name, name);
		o += (size_t)snprintf(in + o, sizeof in - o, "%.*s%s\r\nconnection: y\r\n\r\n",
		    (int)(n - 1), name, n > 1 ? ": 3" : "Z: 3");
		http_init(&r);
		snprintf(what, sizeof what, "hop-by-hop %zu-byte name: head parses", n);
		ok = o < sizeof in && http_parse(&r, in, o, sizeof in) == HTTP_OK && r.nheaders == 5;
		CHECK(ok, what);
		if (!ok)
			continue;
		snprintf(what, sizeof what, "hop-by-hop %zu-byte name listed (other case)", n);
		CHECK(http_list_has_span(in, &r, HTTP_H_CONNECTION, r.headers[1].name), what);
		snprintf(what, sizeof what, "hop-by-hop %zu-byte name + 1 byte not listed", n);
		CHECK(!http_list_has_span(in, &r, HTTP_H_CONNECTION, r.headers[2].name), what);
		snprintf(what, sizeof what, "hop-by-hop %zu-byte name - 1 byte not listed", n);
		CHECK(!http_list_has_span(in, &r, HTTP_H_CONNECTION, r.headers[3].name), what);
		snprintf(what, sizeof what, "hop-by-hop %zu-byte name: the Connection names", n);
		CHECK(!http_list_has_span(in, &r, HTTP_H_CONNECTION, r.headers[0].name) &&
		    !http_list_has_span(in, &r, HTTP_H_CONNECTION, r.headers[4].name), what);
	}
	/* A name listed only by the second Connection field; an empty span. */
	{
		static const char h2[] = "GET http://a/ HTTP/1.1\r\nConnection: close\r\n"
		    "X-Secret-Route: 1\r\nConnection: , ,X-SECRET-ROUTE\r\n\r\n";
		struct http_span none = { 0, 0 };

		http_init(&r);
		CHECK_INT(http_parse(&r, h2, sizeof h2 - 1, MAXH), HTTP_OK, "hop-by-hop: second Connection parses");
		CHECK(http_list_has_span(h2, &r, HTTP_H_CONNECTION, r.headers[1].name),
		    "hop-by-hop: listed in the second Connection field, after empty elements");
		CHECK(!http_list_has_span(h2, &r, HTTP_H_CONNECTION, none),
		    "hop-by-hop: an empty name is never listed (empty list elements)");
		CHECK(!http_list_has_span(h2, &r, HTTP_H_UPGRADE, r.headers[1].name),
		    "hop-by-hop: no Upgrade field, nothing listed");
	}
}

/* http_response_head: every response head the relay writes, byte for byte. */
static void
response_heads(void)
{
	static const struct {
		const char *name;
		int status;
		const char *reason, *ctype;
		size_t clen;
		unsigned flags;
		const char *extra, *want;
	} rows[] = {
		{ "CONNECT established", 200, "Connection established", NULL, 0, 0, NULL,
		  "HTTP/1.1 200 Connection established\r\n\r\n" },
		{ "WebSocket 101", 101, NULL, NULL, 0, 0,
		  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
		  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" },
		{ "JSON keep-alive", 200, NULL, "application/json", 16, HTTP_RH_NOSTORE, NULL,
		  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n"
		  "Cache-Control: no-store\r\n\r\n" },
		{ "JSON closing", 503, NULL, "application/json", 7, HTTP_RH_NOSTORE | HTTP_RH_CLOSE, NULL,
		  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		  "Content-Length: 7\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" },
		{ "metrics", 200, NULL, "text/plain; version=0.0.4; charset=utf-8", 24576, HTTP_RH_NOSTORE,
		  NULL, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		  "Content-Length: 24576\r\nCache-Control: no-store\r\n\r\n" },
	};
	char buf[512];
	size_t i, n, want;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		want = strlen(rows[i].want);
		n = http_response_head(buf, sizeof buf, rows[i].status, rows[i].reason, rows[i].ctype,
		    rows[i].clen, rows[i].flags, rows[i].extra);
		CHECK_INT(n, want, rows[i].name);
		CHECK_MEM(buf, rows[i].want, want, rows[i].name);
		CHECK_INT(http_response_head(NULL, 0, rows[i].status, rows[i].reason, rows[i].ctype,
		    rows[i].clen, rows[i].flags, rows[i].extra), want, "length pass = write pass");
		CHECK_INT(http_response_head(buf, want - 1, rows[i].status, rows[i].reason, rows[i].ctype,
		    rows[i].clen, rows[i].flags, rows[i].extra), 0, "one byte short: nothing");
		CHECK_INT(http_response_head(buf, want, rows[i].status, rows[i].reason, rows[i].ctype,
		    rows[i].clen, rows[i].flags, rows[i].extra), want, "exact fit");
	}
}

void
t_http(void)
{
	head_table();
	head_fields();
	hop_by_hop_names();
	target_table();
	content_length();
	responses();
	response_heads();
}

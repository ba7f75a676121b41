/*
 * fuzz_http.c — HTTP request heads (http.c): http_parse fed whole and again in chunks
 * (the outcome must not depend on the split, as http.h promises), then, for a parsed
 * head, http_target_split, Content-Length and the list lookups (the lookup by span of
 * field names in Connection agrees with the lookup by copy, and finds every listed
 * element at any length).
 *
 * Input: byte 0 picks the chunk size (1..32) and whether maxHeaderBytes is the default
 * or the length of the input; the rest is the head.
 */
#include <string.h>

#include "fuzz.h"
#include "http.h"

static struct http_request whole, parts;

static void
same(const struct http_request *a, const struct http_request *b)
{
	size_t i;

	FUZZ_ASSERT(a->head_len == b->head_len);
	FUZZ_ASSERT(a->nheaders == b->nheaders);
	FUZZ_ASSERT(a->have == b->have);
	FUZZ_ASSERT(memcmp(&a->method, &b->method, sizeof a->method) == 0);
	FUZZ_ASSERT(memcmp(&a->target, &b->target, sizeof a->target) == 0);
	FUZZ_ASSERT(a->minor == b->minor);
	for (i = 0; i < a->nheaders; i++) {
		FUZZ_ASSERT(a->headers[i].id == b->headers[i].id);
		FUZZ_ASSERT(memcmp(&a->headers[i].name, &b->headers[i].name, sizeof(struct http_span)) == 0);
		FUZZ_ASSERT(memcmp(&a->headers[i].value, &b->headers[i].value, sizeof(struct http_span)) == 0);
	}
}

static void
in_head(const struct http_request *r, struct http_span s)
{
	FUZZ_ASSERT(s.off <= r->head_len && s.len <= r->head_len - s.off);
}

/* The Connection list lookup by span (which fields are hop-by-hop): for every field name
 * it agrees with the NUL-terminated lookup on a copy of the name (names of any length up
 * to the copy's size); every element of every Connection list is found by its own span,
 * whatever its length; an empty span is never listed. */
static void
hop_by_hop(const char *buf, const struct http_request *r)
{
	static char name[HTTP_DEFAULT_MAX_HEAD + 1];
	struct http_span none = { 0, 0 };
	size_t i, a, b, e, end;

	FUZZ_ASSERT(!http_list_has_span(buf, r, HTTP_H_CONNECTION, none));
	for (i = 0; i < r->nheaders; i++) {
		struct http_span n = r->headers[i].name;
		int by_span = http_list_has_span(buf, r, HTTP_H_CONNECTION, n);
		if (n.len < sizeof name && memchr(buf + n.off, 0, n.len) == NULL) {
			memcpy(name, buf + n.off, n.len);
			name[n.len] = 0;
			FUZZ_ASSERT(by_span == http_list_has(buf, r, HTTP_H_CONNECTION, name));
		}
		if (r->headers[i].id != HTTP_H_CONNECTION)
			continue;
		a = r->headers[i].value.off;
		end = a + r->headers[i].value.len;
		while (a <= end) {
			for (e = a; e < end && buf[e] != ','; e++)
				;
			for (b = a; b < e && (buf[b] == ' ' || buf[b] == '\t'); b++)
				;
			while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
				e--;
			if (e > b) {
				struct http_span el = { (uint32_t)b, (uint32_t)(e - b) };
				FUZZ_ASSERT(http_list_has_span(buf, r, HTTP_H_CONNECTION, el));
			}
			for (; a < end && buf[a] != ','; a++)
				;
			a++;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf;
	size_t len, max, step, at, i;
	int rw, rp = HTTP_INCOMPLETE;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] & 31) + 1;
	buf = (const char *)data + 1;
	len = size - 1;
	max = (data[0] & 0x80) ? (len ? len : 1) : HTTP_DEFAULT_MAX_HEAD;

	http_init(&whole);
	rw = http_parse(&whole, buf, len, max);
	FUZZ_ASSERT(rw == HTTP_OK || rw == HTTP_INCOMPLETE || rw == HTTP_BAD || rw == HTTP_TOO_LARGE);
	FUZZ_ASSERT(http_parse(&whole, buf, len, max) == rw); /* sticky */

	/* Each call sees a copy of exactly the bytes received so far, so a read past them
	 * is an ASan report (spans are offsets: the copy may move). Long inputs share one
	 * buffer to keep the copying linear. */
	http_init(&parts);
	for (at = 0; rp == HTTP_INCOMPLETE && at < len;) {
		at = at + step < len ? at + step : len;
		if (len <= 2048) {
			char *copy = malloc(at);
			FUZZ_ASSERT(copy != NULL);
			memcpy(copy, buf, at);
			rp = http_parse(&parts, copy, at, max);
			free(copy);
		} else {
			rp = http_parse(&parts, buf, at, max);
		}
	}
	if (len == 0)
		rp = http_parse(&parts, buf, 0, max);
	FUZZ_ASSERT(rp == rw);
	if (rw != HTTP_OK) {
		if (rw == HTTP_BAD || rw == HTTP_TOO_LARGE)
			FUZZ_ASSERT(whole.reason != NULL && parts.reason != NULL);
		return 0;
	}
	same(&whole, &parts);
	FUZZ_ASSERT(whole.head_len <= len && whole.head_len <= max);
	FUZZ_ASSERT(whole.nheaders <= HTTP_MAX_HEADERS);
	FUZZ_ASSERT(whole.minor == 0 || whole.minor == 1);
	in_head(&whole, whole.method);
	in_head(&whole, whole.target);
	for (i = 0; i < whole.nheaders; i++) {
		in_head(&whole, whole.headers[i].name);
		in_head(&whole, whole.headers[i].value);
		FUZZ_ASSERT(whole.headers[i].id >= 0 && whole.headers[i].id < HTTP_H_COUNT);
	}
	for (i = 0; i < HTTP_H_COUNT; i++)
		if (whole.have & (1u << i))
			in_head(&whole, whole.val[i]);

	{
		struct http_target t;
		int rc = http_target_split(buf, &whole, &t);
		if (rc == HTTP_OK) {
			FUZZ_ASSERT(t.form == HTTP_FORM_ORIGIN || t.form == HTTP_FORM_AUTHORITY ||
			    t.form == HTTP_FORM_ABSOLUTE);
			if (t.form != HTTP_FORM_ORIGIN) {
				FUZZ_ASSERT(t.addr.port >= 1 && t.addr.port <= 65535);
				FUZZ_ASSERT(t.addr.host.len == strlen(t.addr.host.name));
				FUZZ_ASSERT(t.addr.host.len >= 1 && t.addr.host.len <= TARGET_HOST_MAX);
			}
			if (t.form != HTTP_FORM_AUTHORITY)
				in_head(&whole, t.path);
		}
	}
	if (whole.have & (1u << HTTP_H_CONTENT_LENGTH)) {
		struct http_span s = whole.val[HTTP_H_CONTENT_LENGTH];
		uint64_t v;
		if (http_parse_content_length(buf + s.off, s.len, &v) == HTTP_OK) {
			char back[24];
			int n = snprintf(back, sizeof back, "%llu", (unsigned long long)v);
			size_t z = 0;
			while (z + 1 < s.len && buf[s.off + z] == '0') /* leading zeros are allowed */
				z++;
			FUZZ_ASSERT(v <= INT64_MAX);
			FUZZ_ASSERT((size_t)n == s.len - z && memcmp(back, buf + s.off + z, s.len - z) == 0);
		}
	}
	(void)http_list_has(buf, &whole, HTTP_H_CONNECTION, "upgrade");
	(void)http_list_has(buf, &whole, HTTP_H_UPGRADE, "websocket");
	(void)http_list_has(buf, &whole, HTTP_H_TRANSFER_ENCODING, "chunked");
	hop_by_hop(buf, &whole);
	return 0;
}

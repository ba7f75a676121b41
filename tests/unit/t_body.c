/*
 * t_body.c — where a forwarded request's body ends (body.h): no body, Content-Length,
 * chunked (sizes, extensions, data, trailers) fed whole, one byte at a time and in odd
 * pieces, each run agreeing on where the body ends; the bytes after it never counted; and
 * a table of broken framings, each stopped at the first bad byte. Transfer-Encoding lists
 * are in t_admit (rule 2).
 */
#include <stdio.h>
#include <string.h>

#include "body.h"
#include "err.h"
#include "test.h"

/* Set a body up from a head's framing fields ("" for none). */
static int
start(struct body_state *b, const char *fields)
{
	char head[512];
	struct http_request r;

	snprintf(head, sizeof head, "POST http://x/ HTTP/1.1\r\nHost: x\r\n%s\r\n", fields);
	http_init(&r);
	if (http_parse(&r, head, strlen(head), sizeof head) != HTTP_OK)
		return -99;
	return body_start(b, head, &r);
}

/* Feed data in pieces of `step` bytes (0: whole); the bytes judged body until the end
 * (or a bad byte); *st the last status. */
static size_t
feed(struct body_state *b, const char *data, size_t step, int *st)
{
	size_t len = strlen(data), off = 0, n, piece;

	*st = BODY_MORE;
	while (off < len) {
		piece = step && step < len - off ? step : len - off;
		n = body_take(b, (const unsigned char *)data + off, piece, st);
		off += n;
		if (*st != BODY_MORE || n < piece)
			break;
	}
	return off;
}

void
t_body(void)
{
	static const struct {
		const char *name, *body;
		long end;   /* bytes that belong to the body; the rest follows it */
		int status; /* at the end */
	} chunked[] = {
		{ "one chunk", "5\r\nhello\r\n0\r\n\r\nGET /next", 15, BODY_DONE },
		{ "no chunk", "0\r\n\r\nGET /next", 5, BODY_DONE },
		{ "leading zeros, upper hex", "000A\r\n0123456789\r\n0000\r\n\r\nX", 26, BODY_DONE },
		{ "extensions", "5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\nX", 32, BODY_DONE },
		{ "whitespace before ;", "5 ;a\r\nhello\r\n0\r\n\r\n", 18, BODY_DONE },
		{ "trailers", "3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nZZZ", 27, BODY_DONE },
		{ "two chunks", "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", 18, BODY_DONE },
		{ "unfinished", "5\r\nhel", 6, BODY_MORE },
		{ "bare LF after size", "5\nhello\r\n0\r\n\r\n", 1, BODY_BAD },
		{ "no CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 8, BODY_BAD },
		{ "LF only after data", "5\r\nhello\n0\r\n\r\n", 8, BODY_BAD },
		{ "no digits", "\r\nhello\r\n", 0, BODY_BAD },
		{ "sign", "+5\r\nhello\r\n", 0, BODY_BAD },
		{ "0x prefix", "0x5\r\nhello\r\n", 1, BODY_BAD },
		{ "16 hex digits", "1000000000000000\r\n", 15, BODY_BAD },
		{ "a control byte in an extension", "5;a\001b\r\n", 3, BODY_BAD },
		{ "CR alone in an extension", "5;a\rb\r\n", 4, BODY_BAD },
		{ "obs-fold in the trailers", "0\r\nA: 1\r\n continued\r\n\r\n", 9, BODY_BAD },
		{ "bare LF ending the trailers", "0\r\n\n", 3, BODY_BAD },
	};
	struct body_state b;
	char big[BODY_LINE_MAX + 64];
	size_t steps[] = { 0, 1, 2, 3, 7 }, i, j, n;
	int st;
	char name[160];

	/* no body, Content-Length */
	CHECK_INT(start(&b, ""), ERR_OK, "no framing fields: ok");
	CHECK_INT(body_take(&b, (const unsigned char *)"GET /", 5, &st), 0, "no body: nothing belongs");
	CHECK_INT(st, BODY_DONE, "no body: done at once");
	CHECK_INT(start(&b, "Content-Length: 0\r\n"), ERR_OK, "Content-Length 0");
	CHECK(body_take(&b, (const unsigned char *)"x", 1, &st) == 0 && st == BODY_DONE, "length 0: done");
	CHECK_INT(start(&b, "Content-Length: 10\r\n"), ERR_OK, "Content-Length 10");
	CHECK(body_take(&b, (const unsigned char *)"0123", 4, &st) == 4 && st == BODY_MORE, "4 of 10");
	CHECK(body_take(&b, (const unsigned char *)"456789GET /", 11, &st) == 6 && st == BODY_DONE,
	    "the last 6, then the end: what follows is not the body's");
	CHECK(body_take(&b, (const unsigned char *)"more", 4, &st) == 0 && st == BODY_DONE,
	    "after the end: nothing belongs");
	CHECK_INT(start(&b, "Transfer-Encoding: gzip\r\n"), ERR_INVAL, "gzip alone: no length");

	/* chunked, in every piece size */
	for (i = 0; i < sizeof chunked / sizeof chunked[0]; i++) {
		for (j = 0; j < sizeof steps / sizeof steps[0]; j++) {
			CHECK_INT(start(&b, "Transfer-Encoding: chunked\r\n"), ERR_OK, "chunked");
			n = feed(&b, chunked[i].body, steps[j], &st);
			snprintf(name, sizeof name, "chunked %s, pieces of %zu: end at %ld", chunked[i].name,
			    steps[j], chunked[i].end);
			CHECK_INT(n, chunked[i].end, name);
			snprintf(name, sizeof name, "chunked %s, pieces of %zu: status", chunked[i].name,
			    steps[j]);
			CHECK_INT(st, chunked[i].status, name);
		}
	}
	/* a bad body stays bad */
	CHECK_INT(start(&b, "Transfer-Encoding: chunked\r\n"), ERR_OK, "chunked");
	body_take(&b, (const unsigned char *)"z", 1, &st);
	CHECK(body_take(&b, (const unsigned char *)"5\r\n", 3, &st) == 0 && st == BODY_BAD,
	    "after a bad byte, nothing more belongs");
	/* line length */
	memset(big, 'a', sizeof big);
	memcpy(big, "5;", 2);
	big[sizeof big - 1] = 0;
	CHECK_INT(start(&b, "Transfer-Encoding: chunked\r\n"), ERR_OK, "chunked");
	n = feed(&b, big, 0, &st);
	CHECK(st == BODY_BAD && n == BODY_LINE_MAX, "a size line longer than BODY_LINE_MAX");
	/* a large chunk announced and streamed */
	CHECK_INT(start(&b, "Transfer-Encoding: chunked\r\n"), ERR_OK, "chunked");
	CHECK(body_take(&b, (const unsigned char *)"fffffffffffffff\r\n", 17, &st) == 17 &&
	    st == BODY_MORE, "a 2^60-1 byte chunk announced");
	CHECK(body_take(&b, (const unsigned char *)big, 4096, &st) == 4096 && st == BODY_MORE,
	    "its data streams on");
}

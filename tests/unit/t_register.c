/* t_register.c — the pure parts of console registration: consoleAddress splitting, the
 * request body (JSON escaping, two-pass length), backoff bounds, and tables of good and
 * hostile HTTP answers and JSON bodies, one assertion per case; then every prefix and a
 * few thousand mutations of good answers through both parsers (they must not crash or
 * read out of bounds — the ASan build checks that). */
#include <stdio.h>
#include <stdlib.h>

#include "err.h"
#include "register.h"
#include "test.h"

static void
address(const char *in, int want_rc, const char *host, const char *port)
{
	char h[64], p[8], name[128];
	int rc = register_split_address(in, h, sizeof h, p, sizeof p);

	snprintf(name, sizeof name, "address \"%s\"", in);
	CHECK_INT(rc, want_rc, name);
	if (rc == ERR_OK && want_rc == ERR_OK) {
		CHECK_STR(h, host, name);
		CHECK_STR(p, port, name);
	}
}

/* The answer text must parse with want_rc (and, when OK, status and body). */
static void
response(const char *text, int eof, int want_rc, int want_status, const char *want_body)
{
	char buf[2048], name[160];
	char *body = NULL;
	size_t len = strlen(text), bl = 0;
	int status = -1, rc;

	memcpy(buf, text, len + 1);
	rc = register_parse_response(buf, len, eof, &status, &body, &bl);
	snprintf(name, sizeof name, "response %.60s%s (eof %d)", text, len > 60 ? "..." : "", eof);
	for (char *c = name; *c; c++)
		if (*c == '\r' || *c == '\n')
			*c = '|';
	CHECK_INT(rc, want_rc, name);
	if (rc == ERR_OK && want_rc == ERR_OK) {
		CHECK_INT(status, want_status, name);
		CHECK(bl == strlen(want_body) && memcmp(body, want_body, bl) == 0, name);
	}
	if (rc != ERR_OK)
		CHECK(memcmp(buf, text, len) == 0, "buffer untouched on failure");
}

static void
answer(const char *json, int want_rc, int64_t want_id, const char *want_token)
{
	char token[REG_TOKEN_MAX + 1], name[160];
	int64_t id = -1;
	int rc = register_parse_answer(json, strlen(json), &id, token, sizeof token);

	snprintf(name, sizeof name, "answer %.70s", json);
	CHECK_INT(rc, want_rc, name);
	if (rc == ERR_OK && want_rc == ERR_OK) {
		CHECK_INT(id, want_id, name);
		CHECK_STR(token, want_token, name);
	}
}

static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

void
t_register(void)
{
	static const char good[] =
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42\r\n"
	    "Connection: close\r\n\r\n{\"relayId\":7,\"securityToken\":\"tok-12345\"}\n";
	static const char chunked[] =
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "a;ext=1\r\n{\"relayId\"\r\n1f\r\n:7,\"securityToken\":\"tok-12345\"}\r\n0\r\n\r\n";
	char body[512], big[1100], json[1200], buf[2048], tok[REG_TOKEN_MAX + 1], *b;
	size_t n, bl;
	int64_t id;
	int st, round, rc;
	uint32_t seed = 12345, d, prev = 0;

	/* consoleAddress */
	address("console.test", ERR_OK, "console.test", "443");
	address("console.test:8443", ERR_OK, "console.test", "8443");
	address("localhost:1", ERR_OK, "localhost", "1");
	address("127.0.0.1:65535", ERR_OK, "127.0.0.1", "65535");
	address("[::1]:9443", ERR_OK, "::1", "9443");
	address("[::1]", ERR_OK, "::1", "443");
	address("::1", ERR_OK, "::1", "443");
	address("console.test:", ERR_INVAL, NULL, NULL);
	address("console.test:0", ERR_INVAL, NULL, NULL);
	address("console.test:65536", ERR_INVAL, NULL, NULL);
	address("console.test:08443", ERR_INVAL, NULL, NULL);
	address("console.test:84a3", ERR_INVAL, NULL, NULL);
	address(":443", ERR_INVAL, NULL, NULL);
	address("", ERR_INVAL, NULL, NULL);
	address("[::1", ERR_INVAL, NULL, NULL);
	address("[::1]x", ERR_INVAL, NULL, NULL);
	address("a-very-long-name-that-does-not-fit-into-the-sixty-four-byte-buffer.example", ERR_NOSPACE,
	    NULL, NULL);

	/* Request body */
	n = register_body(NULL, 0, 42, "dep", "12345678-1234-4abc-8def-123456789abc", "relay1", "0.1.0");
	CHECK_INT(register_body(body, sizeof body, 42, "dep", "12345678-1234-4abc-8def-123456789abc",
	    "relay1", "0.1.0"), n, "body: both passes agree");
	CHECK_STR(body, "{\"organizationId\":42,\"deploymentToken\":\"dep\",\"relayProId\":"
	    "\"12345678-1234-4abc-8def-123456789abc\",\"hostname\":\"relay1\",\"version\":\"0.1.0\"}",
	    "body: exact text");
	register_body(body, sizeof body, 0, "a\"b\\c\n\x01", "", "h\xff", "v");
	CHECK_STR(body, "{\"organizationId\":0,\"deploymentToken\":\"a\\\"b\\\\c\\n\\u0001\","
	    "\"relayProId\":\"\",\"hostname\":\"h\\u00ff\",\"version\":\"v\"}", "body: escaped");
	memset(body, 'X', sizeof body);
	n = register_body(body, 10, 1, "d", "p", "h", "v");
	CHECK(n > 10 && body[0] == 'X', "body: too small a buffer is left alone");
	CHECK_INT(register_body(body, n, 1, "d", "p", "h", "v"), n, "body: no room for NUL");
	CHECK(body[0] == 'X', "body: no room for NUL writes nothing");
	CHECK_INT(register_body(body, n + 1, 1, "d", "p", "h", "v"), n, "body: exact fit");
	CHECK(body[n] == 0 && body[0] == '{', "body: exact fit written");

	/* Backoff: ±20 % around min(cap, base * 2^(k-1)), growing, capped. */
	CHECK_INT(register_backoff_ms(1, 1000, 300000, 0), 800, "backoff 1 low");
	CHECK_INT(register_backoff_ms(1, 1000, 300000, 400), 1200, "backoff 1 high");
	CHECK_INT(register_backoff_ms(1, 1000, 300000, 200), 1000, "backoff 1 middle");
	CHECK_INT(register_backoff_ms(0, 1000, 300000, 200), 1000, "backoff 0 = 1");
	CHECK_INT(register_backoff_ms(4, 1000, 300000, 200), 8000, "backoff 4");
	CHECK_INT(register_backoff_ms(9, 1000, 300000, 200), 256000, "backoff 9");
	CHECK_INT(register_backoff_ms(10, 1000, 300000, 200), 300000, "backoff 10 capped");
	CHECK_INT(register_backoff_ms(4000000000u, 1000, 300000, 400), 360000, "backoff huge k");
	CHECK_INT(register_backoff_ms(64, 4000000000u, 4000000000u, 400), UINT32_MAX,
	    "backoff: saturates instead of wrapping");
	for (round = 1; round < 12; round++) {
		d = register_backoff_ms((unsigned)round, 100, 1u << 30, 200);
		CHECK(d > prev, "backoff grows");
		prev = d;
	}

	/* HTTP answers: good */
	response(good, 0, ERR_OK, 200, "{\"relayId\":7,\"securityToken\":\"tok-12345\"}\n");
	response(chunked, 0, ERR_OK, 200, "{\"relayId\":7,\"securityToken\":\"tok-12345\"}");
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n", 0, ERR_OK,
	    200, "");
	response("HTTP/1.0 401 Unauthorized\r\nContent-Length: 25\r\n\r\n{\"error\":\"unauthorized\"}\n",
	    0, ERR_OK, 401, "{\"error\":\"unauthorized\"}\n");
	response("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", 0, ERR_OK, 503, "");
	response("HTTP/1.1 200 OK\r\n\r\n{\"a\":1}", 1, ERR_OK, 200, "{\"a\":1}");
	response("HTTP/1.1 200 OK\r\ncontent-length:  3 \r\nCONTENT-LENGTH: 3\r\n\r\nabcdef", 0,
	    ERR_OK, 200, "abc");
	response("HTTP/1.1 204 No Content\r\n\r\n", 0, ERR_OK, 204, "");
	response("HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n", 0, ERR_OK, 200, "");
	/* HTTP answers: incomplete (more bytes needed) */
	response("", 0, ERR_TRUNC, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", 0, ERR_TRUNC, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, ERR_TRUNC, 0, NULL);
	response("HTTP/1.1 200 OK\r\n\r\nabc", 0, ERR_TRUNC, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", 0, ERR_TRUNC, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 0, ERR_TRUNC, 0, NULL);
	/* HTTP answers: hostile or broken */
	response("", 1, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", 1, ERR_INVAL, 0, NULL);
	response("HTTP/2 200 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.2 200 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("http/1.1 200 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 20 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 2000 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 099 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 600 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1  200 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 2x0 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 O\x01K\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("XTTP/1.1 200 OK", 0, ERR_INVAL, 0, NULL);
	response("\r\nHTTP/1.1 200 OK\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\nContent-Length: 0\n\n", 1, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\n: empty\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 0, ERR_INVAL,
	    0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 3 3\r\n\r\nabc", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 0x3\r\n\r\nabc", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, ERR_INVAL, 0,
	    NULL);
	response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 0, ERR_INVAL,
	    0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n0\r\n\r\n", 0,
	    ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 0,
	    ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 0,
	    ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 0,
	    ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5000\r\n", 0, ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x01\r\n\r\n", 0,
	    ERR_INVAL, 0, NULL);
	response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;\x01\r\na\r\n0\r\n\r\n", 0,
	    ERR_INVAL, 0, NULL);

	/* JSON answers: good */
	answer("{\"relayId\":7,\"securityToken\":\"tok-12345\"}", ERR_OK, 7, "tok-12345");
	answer(" {\"securityToken\":\"t\",\"relayId\":9223372036854775807}\n", ERR_OK,
	    INT64_MAX, "t");
	answer("{\"relayId\":7,\"securityToken\":\"a\\u0041\\/\",\"extra\":{\"x\":[1,2,null]},"
	    "\"more\":true}", ERR_OK, 7, "aA/");
	answer("{\"relayId\":7,\"securityToken\":\"caf\xc3\xa9 x\"}", ERR_OK, 7, "caf\xc3\xa9 x");
	memset(big, 'k', REG_TOKEN_MAX);
	big[REG_TOKEN_MAX] = 0;
	snprintf(json, sizeof json, "{\"relayId\":1,\"securityToken\":\"%s\"}", big);
	answer(json, ERR_OK, 1, big);
	/* JSON answers: hostile or wrong */
	snprintf(json, sizeof json, "{\"relayId\":1,\"securityToken\":\"%sk\"}", big);
	answer(json, ERR_INVAL, 0, NULL);
	answer("", ERR_INVAL, 0, NULL);
	answer("null", ERR_INVAL, 0, NULL);
	answer("[]", ERR_INVAL, 0, NULL);
	answer("\"tok\"", ERR_INVAL, 0, NULL);
	answer("{}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7}", ERR_INVAL, 0, NULL);
	answer("{\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":\"7\",\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7.0,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7e0,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":-7,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":0,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":07,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":9223372036854775808,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":null,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":true,\"securityToken\":\"t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":null}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":5}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":[\"t\"]}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\" t\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t \"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"a\\nrelayId = 1\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"a\\r\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"a\\u0000b\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"a\\u007f\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"a\tb\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"\xff\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"\\ud800\"}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t\",\"relayId\":8}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t\"}x", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t\"}{}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t\"", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t\",}", ERR_INVAL, 0, NULL);
	answer("{'relayId':7,'securityToken':'t'}", ERR_INVAL, 0, NULL);
	answer("{\"relayId\":7,\"securityToken\":\"t\",\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}",
	    ERR_INVAL, 0, NULL);
	strcpy(tok, "secret");
	b = "{\"relayId\":7,\"securityToken\":\" secret\"}";
	CHECK_INT(register_parse_answer(b, strlen(b), &id, tok, sizeof tok), ERR_INVAL,
	    "refused answer");
	CHECK(strstr(tok, "secret") == NULL, "refused answer: token buffer wiped");
	b = "{\"relayId\":7,\"securityToken\":\"t\"}";
	CHECK_INT(register_parse_answer(b, strlen(b), &id, tok, 1), ERR_INVAL,
	    "token buffer of one byte");

	/* Every prefix of the good answers: TRUNC (or OK at the end), never a crash. */
	for (n = 0; n <= strlen(good); n++) {
		memcpy(buf, good, n);
		rc = register_parse_response(buf, n, 0, &st, &b, &bl);
		if (rc != ERR_TRUNC && !(n == strlen(good) && rc == ERR_OK))
			break;
	}
	CHECK_INT(n, strlen(good) + 1, "every prefix of a good answer wants more");
	for (n = 0; n <= strlen(chunked); n++) {
		memcpy(buf, chunked, n);
		rc = register_parse_response(buf, n, 0, &st, &b, &bl);
		if (rc != ERR_TRUNC && !(n == strlen(chunked) && rc == ERR_OK))
			break;
	}
	CHECK_INT(n, strlen(chunked) + 1, "every prefix of a chunked answer wants more");

	/* Mutations: flip, insert, delete bytes; both parsers must return cleanly. */
	for (round = 0; round < 4000; round++) {
		const char *src = round & 1 ? chunked : good;
		size_t len = strlen(src), k, edits = 1 + xorshift(&seed) % 4;
		char *heap;

		memcpy(buf, src, len);
		for (k = 0; k < edits && len > 1; k++) {
			size_t at = xorshift(&seed) % len;
			switch (xorshift(&seed) % 3) {
			case 0:
				buf[at] = (char)xorshift(&seed);
				break;
			case 1:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			default:
				if (len + 1 < sizeof buf) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = "\r\n:0 ;\"{}a"[xorshift(&seed) % 10];
					len++;
				}
			}
		}
		heap = malloc(len ? len : 1); /* exact size: ASan sees any overread */
		memcpy(heap, buf, len);
		if (register_parse_response(heap, len, (int)(round & 2), &st, &b, &bl) == ERR_OK) {
			CHECK(b >= heap && b + bl <= heap + len, "mutated answer: body inside the buffer");
			register_parse_answer(b, bl, &id, tok, sizeof tok);
		}
		register_parse_answer(heap, len, &id, tok, sizeof tok);
		free(heap);
	}
	CHECK(1, "mutations survived");
}

/*
 * fuzz_register.c — the console's registration answer (register.c): the HTTP/1.x
 * answer parser (Content-Length, chunked, or to EOF) and the JSON body reader.
 *
 * Byte 0, bit 0: the peer has closed (eof). Bit 1 set: the rest is a body for
 * register_parse_answer alone. Otherwise the rest is a whole answer (copied: a chunked
 * body is decoded in place) and, when it parses with status 200, its body goes to
 * register_parse_answer. Once the peer has closed, "need more bytes" is no answer:
 * with eof set the result is never ERR_TRUNC.
 */
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "register.h"

static void
answer(const char *body, size_t len)
{
	char token[REG_TOKEN_MAX + 2];
	int64_t id = 0;
	size_t n, i;

	if (register_parse_answer(body, len, &id, token, sizeof token) != ERR_OK)
		return;
	FUZZ_ASSERT(id >= 1);
	n = strlen(token);
	FUZZ_ASSERT(n >= 1 && n <= REG_TOKEN_MAX);
	for (i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)token[i] >= 0x20 && token[i] != 0x7f);
	FUZZ_ASSERT(token[0] != ' ' && token[n - 1] != ' ');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *body = NULL;
	size_t bodylen = 0;
	int status = 0, rc, eof;

	if (size < 1 || size > REG_RESP_MAX + 1)
		return 0;
	eof = data[0] & 1;
	if (data[0] & 2) {
		answer((const char *)data + 1, size - 1);
		return 0;
	}
	buf = malloc(size - 1 ? size - 1 : 1);
	FUZZ_ASSERT(buf != NULL);
	memcpy(buf, data + 1, size - 1);
	rc = register_parse_response(buf, size - 1, eof, &status, &body, &bodylen);
	FUZZ_ASSERT(rc == ERR_OK || rc == ERR_TRUNC || rc == ERR_INVAL);
	if (eof)
		FUZZ_ASSERT(rc != ERR_TRUNC);
	if (rc == ERR_OK) {
		FUZZ_ASSERT(status >= 100 && status <= 999);
		FUZZ_ASSERT(body >= buf && bodylen <= size - 1 && body + bodylen <= buf + size - 1);
		if (status == 200)
			answer(body, bodylen);
	}
	free(buf);
	return 0;
}

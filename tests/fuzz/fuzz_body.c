/*
 * fuzz_body.c — fuzz target for body.c: where a forwarded request's body ends. Byte 0
 * chooses the framing: even = chunked, odd = Content-Length taken from bytes 1-2. The rest
 * is the client's byte stream after the head, judged twice — whole, and in pieces whose
 * sizes come from the input itself — and both runs must end at the same offset with the
 * same status; the count never passes the input, nothing is counted after the end or a
 * bad byte, and a Content-Length body is exactly min(length, input).
 */
#include <string.h>

#include "body.h"
#include "fuzz.h"

struct outcome {
	size_t end;
	int status;
};

static void
judge(const uint8_t *in, size_t n, int chunked, uint64_t cl, int split, struct outcome *o)
{
	struct body_state b;
	struct http_request r;
	char head[128];
	size_t off = 0, step = 1, piece, k;
	int st = BODY_MORE;

	/* The framing as the relay meets it: from a parsed head. */
	if (chunked)
		snprintf(head, sizeof head, "POST http://x/ HTTP/1.1\r\nTransfer-Encoding: gzip, "
		    "chunked\r\n\r\n");
	else
		snprintf(head, sizeof head, "POST http://x/ HTTP/1.1\r\nContent-Length: %llu\r\n\r\n",
		    (unsigned long long)cl);
	http_init(&r);
	FUZZ_ASSERT(http_parse(&r, head, strlen(head), sizeof head) == HTTP_OK);
	FUZZ_ASSERT(body_start(&b, head, &r) == 0);
	o->end = 0;
	o->status = b.done ? BODY_DONE : BODY_MORE;
	while (off < n && !b.done) {
		piece = split ? (step < n - off ? step : n - off) : n - off;
		k = body_take(&b, in + off, piece, &st);
		FUZZ_ASSERT(k <= piece);
		off += k;
		o->status = st;
		if (st != BODY_MORE) {
			FUZZ_ASSERT(body_take(&b, in, n, &st) == 0); /* nothing after the end */
			break;
		}
		FUZZ_ASSERT(k == piece); /* more: every byte offered belongs */
		step = (size_t)(in[off - 1] % 13) + 1;
	}
	o->end = off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, split;
	int chunked;
	uint64_t cl;

	if (size < 3)
		return 0;
	chunked = (data[0] & 1) == 0;
	cl = (uint64_t)data[1] << 8 | data[2];
	judge(data + 3, size - 3, chunked, cl, 0, &whole);
	judge(data + 3, size - 3, chunked, cl, 1, &split);
	FUZZ_ASSERT(whole.end == split.end && whole.status == split.status);
	if (!chunked)
		FUZZ_ASSERT(whole.end == (cl < size - 3 ? cl : size - 3));
	return 0;
}

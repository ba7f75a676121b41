/*
 * fuzz_ws.c — fuzz target for ws.c: the input is a client byte stream. It is decoded
 * twice, whole and in chunks whose sizes come from the input itself, the way conn.c
 * does it (headers into the decoder, payload unmasked in place, control payloads
 * collected and close payloads checked); both runs must reach the same outcome at the
 * same offset with the same unmasked bytes, or the target aborts. The first bytes also
 * go through ws_query_target and ws_accept_key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 131072

struct outcome {
	int rc;
	size_t at, frames;
	uint32_t sum; /* a checksum of the unmasked payload */
};

static void
decode(const uint8_t *in, size_t n, unsigned char *buf, int split, struct outcome *o)
{
	struct ws_rx rx;
	unsigned char ctl[WS_CTL_MAX];
	size_t ctl_len = 0, off = 0, step = 1;
	unsigned code;

	memcpy(buf, in, n);
	memset(o, 0, sizeof *o);
	ws_rx_init(&rx);
	while (off < n) {
		size_t len = split ? (step < n - off ? step : n - off) : n - off;
		unsigned char *b = buf + off;

		off += len;
		step = split ? (size_t)(in[off - 1] % 17) + 1 : step;
		while (len) {
			int done;
			if (rx.left == 0) {
				size_t used = 0;
				int rc = ws_rx_header(&rx, b, len, &used);
				if (used > len)
					abort();
				b += used, len -= used, o->at += used;
				if (rc == WS_MORE)
					continue;
				if (rc != WS_OK) {
					o->rc = rc;
					return;
				}
				ctl_len = 0;
				done = rx.left == 0;
			} else {
				size_t k = ws_rx_unmask(&rx, b, len), i;
				if (k == 0 || k > len)
					abort();
				if (rx.opcode & 8) {
					if (ctl_len + k > sizeof ctl)
						abort();
					memcpy(ctl + ctl_len, b, k);
					ctl_len += k;
				}
				for (i = 0; i < k; i++)
					o->sum = o->sum * 31 + b[i];
				b += k, len -= k, o->at += k;
				done = rx.left == 0;
			}
			if (done) {
				o->frames++;
				if (rx.opcode == WS_OP_CLOSE && ws_close_check(ctl, ctl_len, &code) != WS_OK) {
					o->rc = -1;
					return;
				}
			}
		}
	}
	o->rc = rx.left || rx.hlen ? WS_MORE : WS_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[FUZZ_MAX];
	struct outcome a, b;
	char out[WS_ACCEPT_LEN], q[300];
	size_t n;

	if (size > FUZZ_MAX)
		return 0;
	decode(data, size, buf, 0, &a);
	decode(data, size, buf, 1, &b);
	if (a.rc != b.rc || a.at != b.at || a.frames != b.frames || a.sum != b.sum)
		abort();
	(void)ws_query_target((const char *)data, size < 512 ? size : 512, q, sizeof q, &n);
	(void)ws_accept_key((const char *)data, size < WS_KEY_LEN ? size : WS_KEY_LEN, out);
	return 0;
}

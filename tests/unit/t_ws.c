/* t_ws.c — WebSocket (RFC 6455): the §1.3 accept-key example, the §5.7 frame examples,
 * the server header encoder, a table of good and hostile client streams (one assertion per
 * case, each stream fed whole, one byte at a time and in odd chunks, all of which must
 * agree), close payloads, and the ?target= query parameter. */
#include <stdio.h>

#include "err.h"
#include "test.h"
#include "ws.h"

#define BIG 70000

/* What a stream decoded to. */
struct res {
	int rc;                 /* WS_OK (ended on a frame boundary), WS_MORE, or WS_E_* */
	size_t at;              /* bytes consumed when rc was decided */
	unsigned char data[BIG]; /* data payload, unmasked, in order */
	size_t dlen;
	int pings, pongs, closes;
	unsigned close_code;
	unsigned char ctl[WS_CTL_MAX]; /* last control payload */
	size_t ctl_len;
};

static unsigned char scratch[BIG + 64];
static struct res got, want0;

/* Feed in[0..n) in chunks of `chunk` bytes (0: whole) the way conn.c does: headers into
 * the decoder, payload unmasked in place. */
static void
feed(const unsigned char *in, size_t n, size_t chunk, struct res *r)
{
	struct ws_rx rx;
	size_t off = 0, consumed = 0;

	memset(r, 0, sizeof *r);
	memcpy(scratch, in, n);
	ws_rx_init(&rx);
	while (off < n) {
		size_t take = chunk && chunk < n - off ? chunk : n - off;
		unsigned char *b = scratch + off;
		size_t len = take;

		while (len) {
			int done = 0;
			if (rx.left == 0) {
				size_t used = 0;
				int rc = ws_rx_header(&rx, b, len, &used);
				b += used;
				len -= used;
				consumed += used;
				if (rc == WS_MORE)
					continue;
				if (rc != WS_OK) {
					r->rc = rc;
					r->at = consumed;
					return;
				}
				r->ctl_len = 0;
				done = rx.left == 0;
			} else {
				size_t k = ws_rx_unmask(&rx, b, len);
				if (rx.opcode & 8) {
					memcpy(r->ctl + r->ctl_len, b, k);
					r->ctl_len += k;
				} else {
					memcpy(r->data + r->dlen, b, k);
					r->dlen += k;
				}
				b += k;
				len -= k;
				consumed += k;
				done = rx.left == 0;
			}
			if (done && rx.opcode == WS_OP_PING)
				r->pings++;
			if (done && rx.opcode == WS_OP_PONG)
				r->pongs++;
			if (done && rx.opcode == WS_OP_CLOSE) {
				int rc = ws_close_check(r->ctl, r->ctl_len, &r->close_code);
				r->closes++;
				if (rc != WS_OK) {
					r->rc = rc;
					r->at = consumed;
					return;
				}
			}
		}
		off += take;
	}
	r->rc = rx.left || rx.hlen ? WS_MORE : WS_OK;
	r->at = consumed;
}

static const unsigned char MASK[4] = { 0x37, 0xfa, 0x21, 0x3d }; /* RFC 6455 §5.7 */

/* Append a masked client frame: b0 (FIN/RSV/opcode) and a payload, minimal length. */
static size_t
put_frame(unsigned char *out, unsigned b0, const unsigned char *p, size_t n)
{
	size_t o = 0, i;

	out[o++] = (unsigned char)b0;
	if (n < 126) {
		out[o++] = (unsigned char)(0x80 | n);
	} else if (n <= 0xffff) {
		out[o++] = 0x80 | 126;
		out[o++] = (unsigned char)(n >> 8);
		out[o++] = (unsigned char)n;
	} else {
		out[o++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			out[o++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(out + o, MASK, 4);
	o += 4;
	for (i = 0; i < n; i++)
		out[o + i] = p[i] ^ MASK[i & 3];
	return o + n;
}

static int
same(const struct res *a, const struct res *b)
{
	return a->rc == b->rc && a->at == b->at && a->dlen == b->dlen &&
	    memcmp(a->data, b->data, a->dlen) == 0 && a->pings == b->pings && a->pongs == b->pongs &&
	    a->closes == b->closes && a->close_code == b->close_code && a->ctl_len == b->ctl_len &&
	    memcmp(a->ctl, b->ctl, a->ctl_len) == 0;
}

/* Feed whole, then in chunks of 1, 2, 3, 7 and 13: every split must agree with the whole.
 * Leaves the whole-feed result in `got`. */
static int
feed_all_ways(const unsigned char *in, size_t n)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 13 };
	size_t i;
	int ok = 1;

	feed(in, n, 0, &want0);
	for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		feed(in, n, chunks[i], &got);
		if (!same(&got, &want0)) {
			printf("     split %zu: rc %d at %zu, whole: rc %d at %zu\n", chunks[i], got.rc,
			    got.at, want0.rc, want0.at);
			ok = 0;
		}
	}
	memcpy(&got, &want0, sizeof got);
	return ok;
}

static void
t_ws_accept(void)
{
	static const char *bad[] = {
		"", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZQ",
		"AAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB==",
		"dGhlIHNhbXBsZSBub25jZ-==", "dGhlIHNhbXBsZSBub25j ZQ=", "dGhlIHNhbXBsZSBub25jZQ==\r",
	};
	char out[WS_ACCEPT_LEN + 1];
	size_t i;

	memset(out, 0, sizeof out);
	CHECK_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), ERR_OK, "RFC 6455 §1.3 key accepted");
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 §1.3 Sec-WebSocket-Accept");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(ws_accept_key(bad[i], strlen(bad[i]), out), ERR_INVAL, bad[i]);
}

static void
t_ws_rfc_frames(void)
{
	static const unsigned char hello_masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f,
		0x4d, 0x51, 0x58 };
	static const unsigned char hello_unmasked[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	static const unsigned char frag_text[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f };
	static const unsigned char ping_unmasked[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	static const unsigned char pong_masked[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f,
		0x4d, 0x51, 0x58 };
	unsigned char buf[16], h[16];

	/* §5.7 "A single-frame masked text message": a text frame, refused at its first byte. */
	CHECK(feed_all_ways(hello_masked, sizeof hello_masked) && got.rc == WS_E_TEXT && got.at == 1,
	    "§5.7 masked text frame: refused (1003) at byte 1");
	CHECK_INT(ws_close_code(WS_E_TEXT), 1003, "text frame closes with 1003");
	/* The same frame as binary: the §5.7 mask gives "Hello". */
	memcpy(buf, hello_masked, sizeof hello_masked);
	buf[0] = 0x82;
	CHECK(feed_all_ways(buf, sizeof hello_masked) && got.rc == WS_OK && got.dlen == 5 &&
	    memcmp(got.data, "Hello", 5) == 0, "§5.7 masked frame (as binary) unmasks to Hello");
	CHECK(feed_all_ways(hello_unmasked, sizeof hello_unmasked) && got.rc == WS_E_TEXT,
	    "§5.7 unmasked text frame: refused");
	memcpy(buf, hello_unmasked, sizeof hello_unmasked);
	buf[0] = 0x82;
	CHECK(feed_all_ways(buf, sizeof hello_unmasked) && got.rc == WS_E_UNMASKED && got.at == 2,
	    "§5.7 unmasked frame (as binary): refused at byte 2, unmasked client frame");
	CHECK(feed_all_ways(frag_text, sizeof frag_text) && got.rc == WS_E_TEXT && got.at == 1,
	    "§5.7 fragmented unmasked text: refused at its first byte");
	CHECK(feed_all_ways(ping_unmasked, sizeof ping_unmasked) && got.rc == WS_E_UNMASKED,
	    "§5.7 unmasked ping from a client: refused");
	CHECK(feed_all_ways(pong_masked, sizeof pong_masked) && got.rc == WS_OK && got.pongs == 1 &&
	    got.ctl_len == 5 && memcmp(got.ctl, "Hello", 5) == 0, "§5.7 masked pong: Hello");

	/* Encoder: the §5.7 server-side headers. */
	CHECK(ws_frame_header(h, sizeof h, WS_OP_TEXT, 5) == 2 && h[0] == 0x81 && h[1] == 0x05,
	    "encode §5.7 Hello header 81 05");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_PING, 5) == 2 && h[0] == 0x89 && h[1] == 0x05,
	    "encode §5.7 ping header 89 05");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_BINARY, 256) == 4 &&
	    memcmp(h, "\x82\x7e\x01\x00", 4) == 0, "encode §5.7 256-byte binary header 82 7e 01 00");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_BINARY, 65536) == 10 &&
	    memcmp(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10) == 0,
	    "encode §5.7 64 KiB binary header 82 7f 00..01 00 00");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_BINARY, 125) == 2 && h[1] == 125, "encode 125: 7-bit");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_BINARY, 126) == 4 && h[1] == 126 && h[3] == 126,
	    "encode 126: 16-bit");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_BINARY, 65535) == 4 && h[2] == 0xff && h[3] == 0xff,
	    "encode 65535: 16-bit");
	CHECK_INT(ws_frame_header(NULL, 0, WS_OP_BINARY, 70000), 10, "encode: length pass");
	CHECK_INT(ws_frame_header(h, 3, WS_OP_BINARY, 126), 0, "encode: too small writes nothing");
	CHECK(ws_frame_header(h, sizeof h, WS_OP_CLOSE, 2) == 2 && h[0] == 0x88 && h[1] == 2,
	    "encode close header 88 02");
}

/* A stream described in hex (spaces ignored) with its expected outcome. */
struct hcase {
	const char *name, *hex;
	int rc;
	size_t at;       /* where rc was decided (0: end of input) */
	const char *data; /* expected data payload (NULL: do not check) */
};

static size_t
unhex_sp(const char *s, unsigned char *out, size_t cap)
{
	char tmp[1024];
	size_t n = 0;

	for (; *s && n + 1 < sizeof tmp; s++)
		if (*s != ' ')
			tmp[n++] = *s;
	tmp[n] = 0;
	return t_unhex(tmp, out, cap);
}

static void
t_ws_table(void)
{
	/* mask 37fa213d throughout; "m" bytes below are the masked payload. */
	static const struct hcase cases[] = {
		{ "empty binary frame", "82 80 37fa213d", WS_OK, 6, "" },
		{ "binary Hello", "82 85 37fa213d 7f9f4d5158", WS_OK, 11, "Hello" },
		{ "two binary frames", "82 81 37fa213d 7f 82 81 37fa213d 5e", WS_OK, 14, "Hi" },
		{ "fragmented 3+2", "02 83 37fa213d 7f9f4d 80 82 37fa213d 5b95", WS_OK, 17, "Hello" },
		{ "fragmented, empty first and last", "02 80 37fa213d 00 82 37fa213d 7f9f 80 80 37fa213d",
		    WS_OK, 20, "He" },
		{ "ping inside a fragmented message", "02 83 37fa213d 7f9f4d 89 80 37fa213d 80 82 37fa213d 5b95",
		    WS_OK, 23, "Hello" },
		{ "pong inside a fragmented message", "02 81 37fa213d 7f 8a 81 37fa213d 00 80 81 37fa213d 5e",
		    WS_OK, 21, "Hi" },
		{ "close 1000", "88 82 37fa213d 3412", WS_OK, 8, "" },
		{ "close without status", "88 80 37fa213d", WS_OK, 6, "" },
		{ "close 4999 with reason ok", "88 84 37fa213d 247d4e56", WS_OK, 10, NULL },
		{ "incomplete header", "82", WS_MORE, 1, NULL },
		{ "incomplete mask", "82 85 37fa", WS_MORE, 4, NULL },
		{ "incomplete payload", "82 85 37fa213d 7f9f", WS_MORE, 8, NULL },
		{ "RSV1 set", "c2 80 37fa213d", WS_E_RSV, 1, NULL },
		{ "RSV2 set", "a2 80 37fa213d", WS_E_RSV, 1, NULL },
		{ "RSV3 set", "92 80 37fa213d", WS_E_RSV, 1, NULL },
		{ "opcode 3", "83 80 37fa213d", WS_E_OPCODE, 1, NULL },
		{ "opcode 7", "87 80 37fa213d", WS_E_OPCODE, 1, NULL },
		{ "opcode 0xb", "8b 80 37fa213d", WS_E_OPCODE, 1, NULL },
		{ "opcode 0xf", "8f 80 37fa213d", WS_E_OPCODE, 1, NULL },
		{ "unmasked binary", "82 05 48656c6c6f", WS_E_UNMASKED, 2, NULL },
		{ "unmasked close", "88 00", WS_E_UNMASKED, 2, NULL },
		{ "text frame", "81 85 37fa213d 7f9f4d5158", WS_E_TEXT, 1, NULL },
		{ "text continuation start", "01 80 37fa213d", WS_E_TEXT, 1, NULL },
		{ "ping of 126 bytes", "89 fe 007e", WS_E_CTL_LONG, 2, NULL },
		{ "close of 127 bytes (64-bit form)", "88 ff", WS_E_CTL_LONG, 2, NULL },
		{ "fragmented ping", "09 80 37fa213d", WS_E_CTL_FRAG, 1, NULL },
		{ "fragmented close", "08 80 37fa213d", WS_E_CTL_FRAG, 1, NULL },
		{ "continuation without a message", "80 80 37fa213d", WS_E_CONT, 1, NULL },
		{ "continuation after a finished message", "82 80 37fa213d 80 80 37fa213d", WS_E_CONT, 7, NULL },
		{ "binary inside a fragmented message", "02 80 37fa213d 82 80 37fa213d", WS_E_NOT_CONT, 7, NULL },
		{ "16-bit length of 0", "82 fe 0000", WS_E_LEN_FORM, 4, NULL },
		{ "16-bit length of 125", "82 fe 007d", WS_E_LEN_FORM, 4, NULL },
		{ "64-bit length of 125", "82 ff 000000000000007d", WS_E_LEN_FORM, 10, NULL },
		{ "64-bit length of 65535", "82 ff 000000000000ffff", WS_E_LEN_FORM, 10, NULL },
		{ "64-bit length with the MSB set", "82 ff 8000000000000001", WS_E_LEN_MSB, 10, NULL },
		{ "64-bit length 2^64-1", "82 ff ffffffffffffffff", WS_E_LEN_MSB, 10, NULL },
		{ "frame of 1 MiB + 1", "82 ff 0000000000100001", WS_E_TOO_BIG, 10, NULL },
		{ "frame of 2^40", "82 ff 0000010000000000", WS_E_TOO_BIG, 10, NULL },
		{ "header of exactly 1 MiB is fine", "82 ff 0000000000100000 37fa213d", WS_MORE, 14, NULL },
		{ "close with 1 byte", "88 81 37fa213d 34", WS_E_CLOSE_LEN, 7, NULL },
		{ "close 999", "88 82 37fa213d 341d", WS_E_CLOSE_CODE, 8, NULL },
		{ "close 1004", "88 82 37fa213d 3416", WS_E_CLOSE_CODE, 8, NULL },
		{ "close 1005", "88 82 37fa213d 3417", WS_E_CLOSE_CODE, 8, NULL },
		{ "close 1006", "88 82 37fa213d 3414", WS_E_CLOSE_CODE, 8, NULL },
		{ "close 1015", "88 82 37fa213d 340d", WS_E_CLOSE_CODE, 8, NULL },
		{ "close 2999", "88 82 37fa213d 3d4d", WS_E_CLOSE_CODE, 8, NULL },
		{ "close 5000", "88 82 37fa213d 2472", WS_E_CLOSE_CODE, 8, NULL },
		{ "close reason not UTF-8 (ff)", "88 83 37fa213d 3412de", WS_E_CLOSE_UTF8, 9, NULL },
		{ "close reason overlong (c0 80)", "88 84 37fa213d 3412e1bd", WS_E_CLOSE_UTF8, 10, NULL },
	};
	unsigned char in[64];
	size_t i, n;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct hcase *k = &cases[i];
		int ok;
		n = unhex_sp(k->hex, in, sizeof in);
		ok = feed_all_ways(in, n) && got.rc == k->rc && got.at == k->at &&
		    (k->data == NULL || (got.dlen == strlen(k->data) && memcmp(got.data, k->data, got.dlen) == 0));
		CHECK(ok, k->name);
		if (!ok)
			printf("     got rc %d at %zu (%s), data %zu bytes\n", got.rc, got.at, ws_str(got.rc), got.dlen);
	}
}

/* Built streams: lengths at every encoding boundary, control frames of 125, codes. */
static void
t_ws_built(void)
{
	static unsigned char in[BIG + 64], pay[BIG];
	static const size_t lens[] = { 0, 1, 124, 125, 126, 127, 65535, 65536, 65537 };
	size_t i, n;

	for (i = 0; i < sizeof pay; i++)
		pay[i] = (unsigned char)(i * 31 + 7);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char name[64];
		n = put_frame(in, 0x82, pay, lens[i]);
		snprintf(name, sizeof name, "binary frame of %zu bytes, all splits", lens[i]);
		CHECK(feed_all_ways(in, n) && got.rc == WS_OK && got.dlen == lens[i] &&
		    memcmp(got.data, pay, lens[i]) == 0, name);
	}
	n = put_frame(in, 0x89, pay, 125);
	CHECK(feed_all_ways(in, n) && got.rc == WS_OK && got.pings == 1 && got.ctl_len == 125 &&
	    memcmp(got.ctl, pay, 125) == 0, "ping of 125 bytes");
	/* A message of three fragments with a ping and a pong between them. */
	n = put_frame(in, 0x02, pay, 1000);
	n += put_frame(in + n, 0x89, pay, 3);
	n += put_frame(in + n, 0x00, pay + 1000, 200);
	n += put_frame(in + n, 0x8a, pay, 0);
	n += put_frame(in + n, 0x80, pay + 1200, 300);
	CHECK(feed_all_ways(in, n) && got.rc == WS_OK && got.dlen == 1500 && got.pings == 1 &&
	    got.pongs == 1 && memcmp(got.data, pay, 1500) == 0, "3 fragments with ping and pong between");
	{
		static const unsigned codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
			1012, 1013, 1014, 3000, 3999, 4000, 4999 };
		int ok = 1;
		for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
			unsigned char p[2] = { (unsigned char)(codes[i] >> 8), (unsigned char)codes[i] };
			n = put_frame(in, 0x88, p, 2);
			if (!feed_all_ways(in, n) || got.rc != WS_OK || got.close_code != codes[i])
				ok = 0;
		}
		CHECK(ok, "close statuses a peer may send are accepted (1000-1003, 1007-1014, 3000-4999)");
	}
	{
		/* A close with a 123-byte UTF-8 reason (a 4-byte character at the end). */
		unsigned char p[125];
		memset(p, 'a', sizeof p);
		p[0] = 0x03, p[1] = 0xe8;
		memcpy(p + 121, "\xf0\x9f\x98\x80", 4);
		n = put_frame(in, 0x88, p, 125);
		CHECK(feed_all_ways(in, n) && got.rc == WS_OK && got.close_code == 1000,
		    "close with a 123-byte UTF-8 reason");
		memcpy(p + 121, "\xed\xa0\x80\x61", 4); /* a surrogate */
		n = put_frame(in, 0x88, p, 125);
		CHECK(feed_all_ways(in, n) && got.rc == WS_E_CLOSE_UTF8, "close reason with a surrogate: 1007");
		memcpy(p + 121, "\xf4\x90\x80\x80", 4); /* above U+10FFFF */
		n = put_frame(in, 0x88, p, 125);
		CHECK(feed_all_ways(in, n) && got.rc == WS_E_CLOSE_UTF8, "close reason above U+10FFFF: 1007");
		memcpy(p + 121, "a\xe2\x82", 3); /* truncated */
		n = put_frame(in, 0x88, p, 124);
		CHECK(feed_all_ways(in, n) && got.rc == WS_E_CLOSE_UTF8, "close reason truncated UTF-8: 1007");
	}
	CHECK_INT(ws_close_code(WS_E_TOO_BIG), 1009, "too big closes with 1009");
	CHECK_INT(ws_close_code(WS_E_RSV), 1002, "protocol errors close with 1002");
	CHECK_INT(ws_close_code(WS_E_CLOSE_UTF8), 1007, "bad close reason closes with 1007");
}

static void
t_ws_query(void)
{
	static const struct {
		const char *q;
		int rc;
		const char *out;
	} cases[] = {
		{ "target=localhost:443", ERR_OK, "localhost:443" },
		{ "target=localhost%3A443", ERR_OK, "localhost:443" },
		{ "target=localhost%3a443", ERR_OK, "localhost:443" },
		{ "a=1&target=[::1]:443&b=2", ERR_OK, "[::1]:443" },
		{ "target=a%2Fb:1", ERR_OK, "a%2Fb:1" },
		{ "target=a%3", ERR_OK, "a%3" },
		{ "target=a:1&", ERR_OK, "a:1" },
		{ "target=a:1&target=b:2", ERR_DUP, NULL },
		{ "", ERR_NOTFOUND, NULL },
		{ "target=", ERR_NOTFOUND, NULL },
		{ "target", ERR_NOTFOUND, NULL },
		{ "xtarget=a:1", ERR_NOTFOUND, NULL },
		{ "TARGET=a:1", ERR_NOTFOUND, NULL },
		{ "target=0123456789012345678901234567890123456789", ERR_NOSPACE, NULL },
	};
	char out[32];
	size_t i, n;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = ws_query_target(cases[i].q, strlen(cases[i].q), out, sizeof out, &n);
		CHECK(rc == cases[i].rc && (cases[i].out == NULL ||
		    (n == strlen(cases[i].out) && memcmp(out, cases[i].out, n) == 0)), cases[i].q);
	}
}

void
t_ws(void)
{
	t_ws_accept();
	t_ws_rfc_frames();
	t_ws_table();
	t_ws_built();
	t_ws_query();
}

/* t_deflate.c — the DEFLATE encoder checked by an independent inflater written here from
 * RFC 1951 (canonical Huffman decoding from code lengths, table-driven lengths and
 * distances: none of the encoder's arithmetic is reused) and a bit-at-a-time CRC-32.
 * The inflater accepts stored and fixed blocks only: the encoder must never emit anything
 * else. Cases: CRC-32 known answer; empty input; one byte; all byte values; random data
 * (stored fallback, bounded growth); highly repetitive data; log-like text over 64 KiB
 * (ratio); matches at every length and at distances up to the window; identical output
 * whether fed whole, byte by byte or in odd chunks; raw mode; sink errors; files.
 * gunzip itself is exercised on files written by the real binary in
 * tests/integration/test_logrotate.py. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deflate.h"
#include "err.h"
#include "test.h"

/* ------------------------------------------------------------ test inflater */

struct bits {
	const uint8_t *p;
	size_t len, pos;
	uint32_t buf;
	unsigned cnt;
	int err;
};

static unsigned
getbits(struct bits *s, unsigned n)
{
	uint32_t v = s->buf;

	while (s->cnt < n) {
		if (s->pos >= s->len) {
			s->err = 1;
			return 0;
		}
		v |= (uint32_t)s->p[s->pos++] << s->cnt;
		s->cnt += 8;
	}
	s->buf = n < 32 ? v >> n : 0;
	s->cnt -= n;
	return n ? v & ((1u << n) - 1) : 0;
}

struct huff {
	short count[16];
	short symbol[288];
};

static void
huff_build(struct huff *h, const uint8_t *lens, int n)
{
	short offs[16];
	int i;

	memset(h->count, 0, sizeof h->count);
	for (i = 0; i < n; i++)
		h->count[lens[i]]++;
	h->count[0] = 0;
	offs[1] = 0;
	for (i = 1; i < 15; i++)
		offs[i + 1] = (short)(offs[i] + h->count[i]);
	for (i = 0; i < n; i++)
		if (lens[i])
			h->symbol[offs[lens[i]]++] = (short)i;
}

static int
huff_decode(struct bits *s, const struct huff *h)
{
	int code = 0, first = 0, index = 0, len;

	for (len = 1; len < 16; len++) {
		code |= (int)getbits(s, 1);
		if (s->err)
			return -1;
		if (code - h->count[len] < first)
			return h->symbol[index + (code - first)];
		index += h->count[len];
		first += h->count[len];
		first <<= 1;
		code <<= 1;
	}
	return -1;
}

static const short lbase[29] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const short lext[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
	4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const short dbase[30] = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const short dext[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
	9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

/* Inflate raw deflate data; returns the output length or -1; *used = input bytes read. */
static long
inflate_raw(const uint8_t *in, size_t inlen, uint8_t *out, size_t cap, size_t *used,
    int *btypes)
{
	struct bits s = { in, inlen, 0, 0, 0, 0 };
	struct huff lit, dist;
	uint8_t lens[288];
	size_t o = 0;
	int last, i;

	for (i = 0; i < 288; i++)
		lens[i] = (uint8_t)(i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8);
	huff_build(&lit, lens, 288);
	memset(lens, 5, 30);
	huff_build(&dist, lens, 30);
	*btypes = 0;
	do {
		unsigned type;

		last = (int)getbits(&s, 1);
		type = getbits(&s, 2);
		if (s.err)
			return -1;
		*btypes |= 1 << type;
		if (type == 0) {
			unsigned n, nn;
			s.buf = 0;
			s.cnt = 0;
			if (s.pos + 4 > s.len)
				return -1;
			n = s.p[s.pos] | (unsigned)s.p[s.pos + 1] << 8;
			nn = s.p[s.pos + 2] | (unsigned)s.p[s.pos + 3] << 8;
			s.pos += 4;
			if (n != (~nn & 0xffff) || s.pos + n > s.len || o + n > cap)
				return -1;
			memcpy(out + o, s.p + s.pos, n);
			s.pos += n;
			o += n;
		} else if (type == 1) {
			for (;;) {
				int sym = huff_decode(&s, &lit), d;
				unsigned len, off;
				if (sym < 0 || sym > 285)
					return -1;
				if (sym < 256) {
					if (o >= cap)
						return -1;
					out[o++] = (uint8_t)sym;
					continue;
				}
				if (sym == 256)
					break;
				len = (unsigned)lbase[sym - 257] + getbits(&s, (unsigned)lext[sym - 257]);
				d = huff_decode(&s, &dist);
				if (d < 0 || d > 29 || s.err)
					return -1;
				off = (unsigned)dbase[d] + getbits(&s, (unsigned)dext[d]);
				if (s.err || off > o || off > 32768 || o + len > cap)
					return -1;
				while (len--) {
					out[o] = out[o - off];
					o++;
				}
			}
		} else {
			return -1; /* the encoder emits stored and fixed blocks only */
		}
	} while (!last);
	*used = s.pos;
	return (long)o;
}

static uint32_t
crc32_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320 : c >> 1;
	}
	return ~c;
}

static uint32_t
le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Check a gzip member completely; returns the output length or -1. */
static long
gunzip_buf(const uint8_t *in, size_t inlen, uint8_t *out, size_t cap, int *btypes)
{
	size_t used;
	long n;

	if (inlen < 18 || in[0] != 0x1f || in[1] != 0x8b || in[2] != 8 || in[3] != 0)
		return -1;
	n = inflate_raw(in + 10, inlen - 18, out, cap, &used, btypes);
	if (n < 0 || used != inlen - 18)
		return -1;
	if (le32(in + inlen - 8) != crc32_bitwise(out, (size_t)n) ||
	    le32(in + inlen - 4) != (uint32_t)n)
		return -1;
	return n;
}

/* ------------------------------------------------------------ helpers */

#define BIG (1u << 20)

static uint8_t in_buf[BIG], out_buf[BIG + BIG / 8], back_buf[BIG], alt_buf[BIG + BIG / 8];
static struct deflate_ctx ctx;

struct sink {
	uint8_t *p;
	size_t len, cap;
	int fail_after; /* calls before failing; -1 = never */
};

static int
to_buf(void *arg, const uint8_t *buf, size_t len)
{
	struct sink *s = arg;

	if (s->fail_after == 0 || len > s->cap - s->len)
		return -1;
	if (s->fail_after > 0)
		s->fail_after--;
	memcpy(s->p + s->len, buf, len);
	s->len += len;
	return 0;
}

static uint32_t rng = 2463534242u;

static uint32_t
xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* Compress in[0..n) fed in chunks of `chunk` bytes (0 = whole) into out; returns size. */
static size_t
gz(const uint8_t *in, size_t n, size_t chunk, uint8_t *out, size_t cap, int gzip)
{
	struct sink s = { out, 0, cap, -1 };
	size_t off = 0;

	deflate_init(&ctx, gzip, 0, to_buf, &s);
	if (chunk == 0)
		chunk = n ? n : 1;
	while (off < n) {
		size_t k = n - off < chunk ? n - off : chunk;
		if (deflate_update(&ctx, in + off, k) != ERR_OK)
			return 0;
		off += k;
	}
	if (deflate_finish(&ctx) != ERR_OK)
		return 0;
	return s.len;
}

/* Round trip through gzip and the test inflater; returns the compressed size (0 = bad). */
static size_t
round_trip(const uint8_t *in, size_t n, const char *name, int *btypes)
{
	size_t z = gz(in, n, 0, out_buf, sizeof out_buf, 1);
	long back = z ? gunzip_buf(out_buf, z, back_buf, sizeof back_buf, btypes) : -1;
	char what[128];

	snprintf(what, sizeof what, "%s: inflates to the input", name);
	CHECK(back == (long)n && memcmp(back_buf, in, n) == 0, what);
	return back == (long)n ? z : 0;
}

/* relaypro-like JSON lines with varying fields, n bytes. */
static void
make_log(uint8_t *p, size_t n)
{
	static const char *const ev[] = { "tunnel.open", "tunnel.close", "auth.fail", "conn.state" };
	char line[400];
	size_t o = 0;
	unsigned i = 0;

	while (o < n) {
		/* One call each, in order: argument evaluation order is unspecified. */
		uint32_t r = xorshift(), up = xorshift() % 100000, down = xorshift() % 10000000;
		uint32_t dur = xorshift() % 600000;
		int k = snprintf(line, sizeof line,
		    "{\"ts\":\"2026-11-23T10:%02u:%02u.%03uZ\",\"level\":\"%s\",\"event\":\"%s\","
		    "\"conn\":%u,\"sub\":\"responder-%u\",\"target\":\"api%u.example.com:443\","
		    "\"client\":\"10.%u.%u.%u:%u\",\"bytes_up\":%u,\"bytes_down\":%u,"
		    "\"duration_ms\":%u}\n", (i / 600) % 60, (i / 10) % 60, r % 1000,
		    r & 0x100 ? "info" : "debug", ev[(r >> 9) & 3], i, (r >> 11) % 50,
		    (r >> 13) % 20, (r >> 16) & 255, (r >> 20) & 255, (r >> 24) & 255,
		    1024 + (r % 60000), up, down, dur);
		size_t m = (size_t)k < n - o ? (size_t)k : n - o;
		memcpy(p + o, line, m);
		o += m;
		i++;
	}
}

/* ------------------------------------------------------------ cases */

static void
crc_cases(void)
{
	static const char v[] = "123456789";
	uint32_t c;

	CHECK_INT(deflate_crc32(0, v, 9), 0xCBF43926u, "CRC-32 of \"123456789\" is CBF43926");
	c = deflate_crc32(0, v, 4);
	CHECK_INT(deflate_crc32(c, v + 4, 5), 0xCBF43926u, "CRC-32 continues across calls");
	CHECK_INT(deflate_crc32(0, v, 0), 0, "CRC-32 of nothing is 0");
	make_log(in_buf, 5000);
	CHECK_INT(deflate_crc32(0, in_buf, 5000), crc32_bitwise(in_buf, 5000),
	    "CRC-32 agrees with a bitwise CRC on 5000 bytes");
}

static void
small_cases(void)
{
	size_t z, i;
	int bt;

	z = round_trip(in_buf, 0, "empty input", &bt);
	CHECK_INT(z, 20, "empty input: 10-byte header, 2-byte empty block, 8-byte trailer");
	CHECK(z >= 18 && out_buf[3] == 0 && out_buf[9] == 3, "gzip header: no flags, OS Unix");

	in_buf[0] = 'x';
	z = round_trip(in_buf, 1, "one byte", &bt);
	CHECK(z > 0 && z <= 21, "one byte: at most 21 bytes");
	in_buf[0] = 0xff;
	CHECK(round_trip(in_buf, 1, "one byte 0xff (9-bit literal)", &bt) > 0, "0xff packed");

	for (i = 0; i < 256; i++)
		in_buf[i] = (uint8_t)i;
	CHECK(round_trip(in_buf, 256, "all 256 byte values", &bt) > 0, "every literal code");
	memset(in_buf, 'a', 3);
	CHECK(round_trip(in_buf, 3, "three equal bytes", &bt) > 0, "shortest input with a repeat");
	memcpy(in_buf, "abcabcabcabc", 12);
	CHECK(round_trip(in_buf, 12, "short repeat", &bt) > 0, "overlapping match");
}

static void
random_cases(void)
{
	size_t n = 300000, z, i;
	int bt = 0;

	for (i = 0; i < n; i++)
		in_buf[i] = (uint8_t)xorshift();
	z = round_trip(in_buf, n, "random 300000 bytes", &bt);
	CHECK(z > 0 && z <= n + 18 + 5 * (n / 16384 + 2), "random: growth bounded by stored blocks");
	CHECK(bt & 1, "random: stored blocks used");
	CHECK(!(bt & ~3), "random: only stored or fixed blocks");
	printf("     deflate: random %zu -> %zu bytes\n", n, z);

	/* Long-distance matches: a random block, then the same block again 30000 bytes on. */
	for (i = 0; i < 30000; i++)
		in_buf[i] = (uint8_t)xorshift();
	memcpy(in_buf + 30000, in_buf, 30000);
	z = round_trip(in_buf, 60000, "random block repeated at distance 30000", &bt);
	CHECK(z > 0 && z < 30000 + 3000, "far repeat found (distance near the window's end)");
}

static void
repetitive_cases(void)
{
	static const char line[] = "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
	    "\"event\":\"tunnel.close\",\"sub\":\"responder-1\"}\n";
	size_t n = 0, z, i;
	int bt;

	while (n + sizeof line - 1 <= 500000) {
		memcpy(in_buf + n, line, sizeof line - 1);
		n += sizeof line - 1;
	}
	z = round_trip(in_buf, n, "one log line repeated (500 kB)", &bt);
	CHECK(z > 0 && n / z > 50, "repetitive: ratio above 50");
	printf("     deflate: repetitive %zu -> %zu bytes (%.1f:1)\n", n, z, (double)n / (double)z);
	memset(in_buf, 0, 200000);
	z = round_trip(in_buf, 200000, "200000 zero bytes", &bt);
	CHECK(z > 0 && z < 2000, "zeros: ratio above 100");

	/* An LZ77-shaped generator: literals and copies of every length 3..258 at random
	 * distances up to 32768 — every length and distance code. */
	n = 0;
	while (n < 400000) {
		uint32_t r = xorshift();
		if (n < 4 || (r & 3) == 0) {
			in_buf[n++] = (uint8_t)(r >> 8);
			continue;
		}
		{
			size_t len = 3 + (r >> 2) % 256, maxd = n < 32768 ? n : 32768;
			size_t d = 1 + ((r >> 10) % maxd);
			if ((r >> 30) == 0)
				d = 1 + (r >> 10) % 8; /* short distances too */
			if (d > maxd)
				d = maxd;
			for (i = 0; i < len && n < 400000; i++, n++)
				in_buf[n] = in_buf[n - d];
		}
	}
	z = round_trip(in_buf, n, "LZ77-generated data (all lengths and distances)", &bt);
	CHECK(z > 0 && z < n / 2, "LZ77-generated data compresses");
}

static void
log_cases(void)
{
	size_t n = BIG, z, z1, z2, z3;
	int bt;

	make_log(in_buf, n);
	z = round_trip(in_buf, n, "log-like text, 1 MiB", &bt);
	CHECK(z > 0 && (double)n / (double)z > 4.5, "log-like text (random numbers): ratio above 4.5");
	CHECK(bt == 2, "log-like text: fixed blocks only");
	printf("     deflate: log-like %zu -> %zu bytes (%.2f:1)\n", n, z, (double)n / (double)z);

	n = 200000;
	z1 = gz(in_buf, n, 0, out_buf, sizeof out_buf, 1);
	z2 = gz(in_buf, n, 1, alt_buf, sizeof alt_buf, 1);
	CHECK(z1 > 0 && z1 == z2 && memcmp(out_buf, alt_buf, z1) == 0,
	    "same output fed whole and one byte at a time");
	z3 = gz(in_buf, n, 65537, alt_buf, sizeof alt_buf, 1);
	CHECK(z1 == z3 && memcmp(out_buf, alt_buf, z1) == 0, "same output fed in 65537-byte chunks");
	z3 = gz(in_buf, n, 7, alt_buf, sizeof alt_buf, 1);
	CHECK(z1 == z3 && memcmp(out_buf, alt_buf, z1) == 0, "same output fed in 7-byte chunks");

	{
		size_t used;
		long back;
		z = gz(in_buf, n, 1000, out_buf, sizeof out_buf, 0);
		back = z ? inflate_raw(out_buf, z, back_buf, sizeof back_buf, &used, &bt) : -1;
		CHECK(back == (long)n && used == z && memcmp(back_buf, in_buf, n) == 0,
		    "raw deflate (no gzip framing) round trip");
	}
}

static void
error_cases(void)
{
	struct sink s = { out_buf, 0, sizeof out_buf, 1 };
	int rc;

	make_log(in_buf, 100000);
	deflate_init(&ctx, 1, 0, to_buf, &s);
	rc = deflate_update(&ctx, in_buf, 100000);
	if (rc == ERR_OK)
		rc = deflate_finish(&ctx);
	CHECK_INT(rc, ERR_IO, "a failing sink is reported as ERR_IO");
	CHECK_INT(deflate_update(&ctx, in_buf, 10), ERR_IO, "the error is sticky");

	s.fail_after = -1;
	s.len = 0;
	deflate_init(&ctx, 1, 0, to_buf, &s);
	CHECK_INT(deflate_finish(&ctx), ERR_OK, "finish");
	CHECK_INT(deflate_update(&ctx, "x", 1), ERR_INVAL, "update after finish refused");
	CHECK_INT(deflate_finish(&ctx), ERR_INVAL, "finish twice refused");
}

static void
file_cases(void)
{
	char dir[] = "/tmp/t_deflate.XXXXXX", src[64], dst[64], tmp[96];
	struct stat st;
	size_t n = 150000;
	ssize_t got;
	long back;
	int fd, bt;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(src, sizeof src, "%s/a.log", dir);
	snprintf(dst, sizeof dst, "%s/a.log.gz", dir);
	make_log(in_buf, n);
	fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, in_buf, n) == (ssize_t)n, "write the source file");
	if (fd >= 0)
		close(fd);
	CHECK_INT(deflate_gzip_file(src, dst), ERR_OK, "deflate_gzip_file");
	fd = open(dst, O_RDONLY);
	got = fd >= 0 ? read(fd, out_buf, sizeof out_buf) : -1;
	if (fd >= 0)
		close(fd);
	back = got > 0 ? gunzip_buf(out_buf, (size_t)got, back_buf, sizeof back_buf, &bt) : -1;
	CHECK(back == (long)n && memcmp(back_buf, in_buf, n) == 0, "the .gz file inflates to the source");
	CHECK(got > 8 && le32(out_buf + 4) != 0, "gzip header carries the source's mtime");
	CHECK(stat(dst, &st) == 0 && (st.st_mode & 0777) == 0640, "the .gz file has mode 0640");
	CHECK(stat(src, &st) == 0, "the source is left in place");
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dst, (long)getpid());
	CHECK(stat(tmp, &st) != 0, "no temporary file left");

	/* Empty source. */
	fd = open(src, O_WRONLY | O_TRUNC);
	if (fd >= 0)
		close(fd);
	CHECK_INT(deflate_gzip_file(src, dst), ERR_OK, "empty source file");
	CHECK(stat(dst, &st) == 0 && st.st_size == 20, "empty source: a 20-byte gzip file");

	/* Failures leave dst as it was. */
	unlink(src);
	CHECK_INT(deflate_gzip_file(src, dst), ERR_IO, "missing source: ERR_IO");
	CHECK(stat(dst, &st) == 0 && st.st_size == 20, "missing source: dst untouched");
	fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		(void)!write(fd, "x\n", 2);
		close(fd);
	}
	snprintf(tmp, sizeof tmp, "%s/no/such/dir.gz", dir);
	CHECK_INT(deflate_gzip_file(src, tmp), ERR_IO, "unwritable destination: ERR_IO");
	if (geteuid() != 0) { /* root writes anywhere: the case proves nothing there */
		char ro[80];
		snprintf(ro, sizeof ro, "%s/ro", dir);
		mkdir(ro, 0500);
		snprintf(tmp, sizeof tmp, "%s/x.gz", ro);
		CHECK_INT(deflate_gzip_file(src, tmp), ERR_IO, "read-only folder: ERR_IO");
		rmdir(ro);
	}
	unlink(src);
	unlink(dst);
	rmdir(dir);
}

void
t_deflate(void)
{
	crc_cases();
	small_cases();
	random_cases();
	repetitive_cases();
	log_cases();
	error_cases();
	file_cases();
}

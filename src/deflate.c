/*
 * deflate.c — LZ77 + fixed-Huffman DEFLATE, gzip framing, CRC-32. See deflate.h.
 *
 * The matcher follows zlib's deflate_slow (hash chains, one-step lazy evaluation) with
 * the window slid by WSIZE when full. Symbols are buffered per block with their fixed-code
 * bit cost, so at the end of a block we know whether fixed coding or stored blocks are
 * smaller; the block's raw bytes are still in the window because a block is always
 * flushed before the window slides.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deflate.h"
#include "err.h"
#include "fileio.h"

#define WSIZE DEFLATE_WSIZE
#define WMASK (WSIZE - 1)
#define HASH_SIZE (1u << DEFLATE_HASH_BITS)
#define MIN_MATCH 3u
#define MAX_MATCH 258u
#define MIN_LOOKAHEAD (MAX_MATCH + MIN_MATCH + 1)
#define MAX_DIST (WSIZE - MIN_LOOKAHEAD)  /* matches stay inside the window after a slide */
#define GOOD_LENGTH 8u     /* a match this long: search a quarter of the chain for better */
#define MAX_LAZY 16u       /* a match this long is taken without looking one byte further */
#define NICE_LENGTH 128u   /* a match this long ends the search */
#define TOO_FAR 4096u      /* a 3-byte match further than this costs more than 3 literals */
#define STORED_MAX 65535u

/* ------------------------------------------------------------------ bit output */

static void
out_byte(struct deflate_ctx *c, unsigned b)
{
	c->out[c->outlen++] = (uint8_t)b;
	if (c->outlen == DEFLATE_OUTBUF) {
		if (!c->err && c->sink(c->arg, c->out, c->outlen) != 0)
			c->err = ERR_IO;
		c->outlen = 0;
	}
}

/* Append the n low bits of v, least significant first (RFC 1951 §3.1.1). */
static void
put_bits(struct deflate_ctx *c, unsigned v, unsigned n)
{
	c->bitbuf |= (uint64_t)v << c->bitcnt;
	c->bitcnt += n;
	while (c->bitcnt >= 8) {
		out_byte(c, (unsigned)(c->bitbuf & 0xff));
		c->bitbuf >>= 8;
		c->bitcnt -= 8;
	}
}

/* Huffman codes are packed most significant bit first: reverse, then append. */
static void
put_code(struct deflate_ctx *c, unsigned code, unsigned n)
{
	unsigned r = 0, i;

	for (i = 0; i < n; i++, code >>= 1)
		r = (r << 1) | (code & 1);
	put_bits(c, r, n);
}

/* ------------------------------------------------------------------ fixed code */

static unsigned
ilog2(unsigned x)
{
	unsigned n = 0;

	while (x >>= 1)
		n++;
	return n;
}

/* Bits of literal/length symbol sym in the fixed code (RFC 1951 §3.2.6). */
static unsigned
ll_bits(unsigned sym)
{
	return sym < 144 ? 8 : sym < 256 ? 9 : sym < 280 ? 7 : 8;
}

static void
put_ll(struct deflate_ctx *c, unsigned sym)
{
	if (sym < 144)
		put_code(c, 0x30 + sym, 8);
	else if (sym < 256)
		put_code(c, 0x190 + sym - 144, 9);
	else if (sym < 280)
		put_code(c, sym - 256, 7);
	else
		put_code(c, 0xc0 + sym - 280, 8);
}

/* Length 3..258 → symbol 257..285, with *eb extra bits holding *ev. */
static unsigned
len_code(unsigned len, unsigned *eb, unsigned *ev)
{
	unsigned x = len - 3, n;

	*eb = *ev = 0;
	if (len == MAX_MATCH)
		return 285;
	if (x < 8)
		return 257 + x;
	n = ilog2(x);
	*eb = n - 2;
	*ev = x & ((1u << *eb) - 1);
	return 257 + 4 * (n - 1) + ((x >> (n - 2)) & 3);
}

/* Distance 1..32768 → code 0..29, with *eb extra bits holding *ev. */
static unsigned
dist_code(unsigned dist, unsigned *eb, unsigned *ev)
{
	unsigned x = dist - 1, n;

	*eb = *ev = 0;
	if (x < 4)
		return x;
	n = ilog2(x);
	*eb = n - 1;
	*ev = x & ((1u << *eb) - 1);
	return 2 * n + ((x >> (n - 1)) & 1);
}

/* ------------------------------------------------------------------ blocks */

static void
tally_lit(struct deflate_ctx *c, unsigned b)
{
	c->sym_dist[c->nsyms] = 0;
	c->sym_lc[c->nsyms++] = (uint8_t)b;
	c->sym_bits += ll_bits(b);
	c->tallied++;
}

static void
tally_match(struct deflate_ctx *c, unsigned dist, unsigned len)
{
	unsigned eb, ev, db, dv;

	c->sym_dist[c->nsyms] = (uint16_t)dist;
	c->sym_lc[c->nsyms++] = (uint8_t)(len - MIN_MATCH);
	c->sym_bits += ll_bits(len_code(len, &eb, &ev)) + eb;
	dist_code(dist, &db, &dv);
	c->sym_bits += 5 + db;
	c->tallied += len;
}

/* Emit the buffered symbols as one block — fixed Huffman, or stored blocks when those
 * are smaller — and start a new one. The raw bytes are win[block_start .. +tallied). */
static void
flush_block(struct deflate_ctx *c, int last)
{
	uint64_t fixed = 3 + c->sym_bits + 7, stored;
	unsigned chunks = (c->tallied + STORED_MAX - 1) / STORED_MAX, i, eb, ev;

	if (!last && c->tallied == 0)
		return;
	if (chunks == 0)
		chunks = 1;
	stored = (uint64_t)chunks * (3 + 7 + 32) + 8 * (uint64_t)c->tallied;
	if (stored < fixed) {
		const uint8_t *p = c->win + c->block_start;
		unsigned left = c->tallied;

		do {
			unsigned n = left < STORED_MAX ? left : STORED_MAX;
			left -= n;
			put_bits(c, last && left == 0, 1);
			put_bits(c, 0, 2);
			if (c->bitcnt)
				put_bits(c, 0, 8 - c->bitcnt);
			put_bits(c, n & 0xffff, 16);
			put_bits(c, ~n & 0xffff, 16);
			while (n--)
				out_byte(c, *p++);
		} while (left);
	} else {
		put_bits(c, last != 0, 1);
		put_bits(c, 1, 2);
		for (i = 0; i < c->nsyms; i++) {
			unsigned d = c->sym_dist[i], lc = c->sym_lc[i];
			if (d == 0) {
				put_ll(c, lc);
				continue;
			}
			put_ll(c, len_code(lc + MIN_MATCH, &eb, &ev));
			put_bits(c, ev, eb);
			put_code(c, dist_code(d, &eb, &ev), 5);
			put_bits(c, ev, eb);
		}
		put_ll(c, 256);
	}
	c->block_start += c->tallied;
	c->tallied = c->nsyms = 0;
	c->sym_bits = 0;
}

/* ------------------------------------------------------------------ matching */

/* Link position pos into its hash chain; returns the previous head (0 = none). */
static unsigned
insert(struct deflate_ctx *c, unsigned pos)
{
	const uint8_t *p = c->win + pos;
	uint32_t h = ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) * 2654435761u;
	unsigned old;

	h >>= 32 - DEFLATE_HASH_BITS;
	old = c->head[h];
	c->prev[pos & WMASK] = (uint16_t)old;
	c->head[h] = (uint16_t)pos;
	return old;
}

/* Longest match at strstart longer than prev_length along the chain from cur, at most
 * DEFLATE_MAX_CHAIN candidates; its distance goes to match_dist. Returns its length,
 * or MIN_MATCH - 1 when there is none. */
static unsigned
longest_match(struct deflate_ctx *c, unsigned cur)
{
	const uint8_t *scan = c->win + c->strstart;
	unsigned chain = c->prev_length >= GOOD_LENGTH ? DEFLATE_MAX_CHAIN / 4 : DEFLATE_MAX_CHAIN;
	unsigned limit = c->strstart > MAX_DIST ? c->strstart - MAX_DIST : 0;
	unsigned best = c->prev_length, maxlen = c->lookahead < MAX_MATCH ? c->lookahead : MAX_MATCH;
	unsigned nice = NICE_LENGTH < maxlen ? NICE_LENGTH : maxlen, found = 0;

	if (best < MIN_MATCH - 1)
		best = MIN_MATCH - 1;
	if (best >= maxlen)
		return MIN_MATCH - 1;
	do {
		const uint8_t *m = c->win + cur;
		unsigned len;

		if (m[best] != scan[best] || m[0] != scan[0] || m[1] != scan[1])
			continue;
		for (len = 2; len < maxlen && m[len] == scan[len]; len++)
			;
		if (len > best) {
			best = len;
			c->match_dist = c->strstart - cur;
			found = 1;
			if (len >= nice)
				break;
		}
	} while ((cur = c->prev[cur & WMASK]) > limit && cur < c->strstart && --chain != 0);
	return found ? best : MIN_MATCH - 1;
}

/* Process the window: all of it when flush, else while a full match could still follow. */
static void
run(struct deflate_ctx *c, int flush)
{
	unsigned head;

	while (c->lookahead >= MIN_LOOKAHEAD || (flush && c->lookahead > 0)) {
		head = 0;
		if (c->lookahead >= MIN_MATCH)
			head = insert(c, c->strstart);
		c->prev_length = c->match_length;
		c->prev_dist = c->match_dist;
		c->match_length = MIN_MATCH - 1;
		if (head != 0 && c->prev_length < MAX_LAZY && c->strstart - head <= MAX_DIST) {
			c->match_length = longest_match(c, head);
			if (c->match_length == MIN_MATCH && c->match_dist > TOO_FAR)
				c->match_length = MIN_MATCH - 1;
		}
		if (c->prev_length >= MIN_MATCH && c->match_length <= c->prev_length) {
			/* The match found one byte back is at least as good: take it. It starts
			 * at strstart - 1; hash the positions it covers, then skip past it. */
			unsigned max_insert = c->strstart + c->lookahead - MIN_MATCH, n;

			tally_match(c, c->prev_dist, c->prev_length);
			c->lookahead -= c->prev_length - 1;
			for (n = c->prev_length - 2; n > 0; n--)
				if (++c->strstart <= max_insert)
					insert(c, c->strstart);
			c->strstart++;
			c->match_available = 0;
			c->match_length = MIN_MATCH - 1;
		} else {
			/* No better match one byte back: the byte there is a literal, and the
			 * byte here waits one step for a possibly longer match. */
			if (c->match_available)
				tally_lit(c, c->win[c->strstart - 1]);
			c->match_available = 1;
			c->strstart++;
			c->lookahead--;
		}
		if (c->nsyms == DEFLATE_SYMS)
			flush_block(c, 0);
	}
}

/* Make room: flush the block (its bytes are about to move), move the upper half of the
 * window down and rebase every stored position; positions that fall off become 0. */
static void
slide(struct deflate_ctx *c)
{
	unsigned i;

	flush_block(c, 0);
	memmove(c->win, c->win + WSIZE, WSIZE);
	c->strstart -= WSIZE;
	c->block_start -= WSIZE;
	for (i = 0; i < HASH_SIZE; i++)
		c->head[i] = (uint16_t)(c->head[i] >= WSIZE ? c->head[i] - WSIZE : 0);
	for (i = 0; i < WSIZE; i++)
		c->prev[i] = (uint16_t)(c->prev[i] >= WSIZE ? c->prev[i] - WSIZE : 0);
}

/* ------------------------------------------------------------------ API */

/* see deflate.h */
uint32_t
deflate_crc32(uint32_t crc, const void *data, size_t len)
{
	static const uint32_t tab[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
		0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
		0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c
	};
	const uint8_t *p = data;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ tab[crc & 15];
		crc = (crc >> 4) ^ tab[crc & 15];
	}
	return ~crc;
}

/* see deflate.h */
void
deflate_init(struct deflate_ctx *c, int gzip, uint32_t mtime, deflate_sink sink, void *arg)
{
	static const uint8_t hdr[4] = { 0x1f, 0x8b, 8, 0 }; /* magic, CM=deflate, no flags */
	unsigned i;

	memset(c->head, 0, sizeof c->head);
	memset(c->prev, 0, sizeof c->prev);
	memset(c->win + 2 * WSIZE, 0, MAX_MATCH);
	c->strstart = c->lookahead = c->block_start = c->tallied = c->nsyms = 0;
	c->match_length = c->prev_length = MIN_MATCH - 1;
	c->match_dist = c->prev_dist = c->match_available = 0;
	c->sym_bits = c->bitbuf = 0;
	c->bitcnt = 0;
	c->outlen = 0;
	c->crc = c->isize = 0;
	c->gzip = gzip;
	c->finished = c->err = 0;
	c->sink = sink;
	c->arg = arg;
	/* Window positions start at 1: position 0 would read as "no chain" in head[]. */
	c->strstart = c->block_start = 1;
	if (gzip) {
		for (i = 0; i < 4; i++)
			out_byte(c, hdr[i]);
		for (i = 0; i < 4; i++)
			out_byte(c, (mtime >> (8 * i)) & 0xff);
		out_byte(c, 0);     /* XFL */
		out_byte(c, 3);     /* OS = Unix */
	}
}

/* see deflate.h */
int
deflate_update(struct deflate_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (c->finished)
		return c->err ? c->err : ERR_INVAL;
	if (c->gzip) {
		c->crc = deflate_crc32(c->crc, p, len);
		c->isize += (uint32_t)len;
	}
	while (len > 0 && !c->err) {
		size_t room, n;

		if (c->strstart + c->lookahead >= 2 * WSIZE)
			slide(c);
		room = 2 * WSIZE - (c->strstart + c->lookahead);
		n = len < room ? len : room;
		memcpy(c->win + c->strstart + c->lookahead, p, n);
		c->lookahead += (unsigned)n;
		p += n;
		len -= n;
		run(c, 0);
	}
	return c->err;
}

/* see deflate.h */
int
deflate_finish(struct deflate_ctx *c)
{
	unsigned i;

	if (c->finished)
		return c->err ? c->err : ERR_INVAL;
	run(c, 1);
	if (c->match_available)
		tally_lit(c, c->win[c->strstart - 1]);
	c->match_available = 0;
	flush_block(c, 1);
	if (c->bitcnt)
		put_bits(c, 0, 8 - c->bitcnt);
	if (c->gzip) {
		for (i = 0; i < 4; i++)
			out_byte(c, (c->crc >> (8 * i)) & 0xff);
		for (i = 0; i < 4; i++)
			out_byte(c, (c->isize >> (8 * i)) & 0xff);
	}
	if (c->outlen && !c->err && c->sink(c->arg, c->out, c->outlen) != 0)
		c->err = ERR_IO;
	c->outlen = 0;
	c->finished = 1;
	return c->err;
}

/* ------------------------------------------------------------------ files */

static int
sink_fd(void *arg, const uint8_t *buf, size_t len)
{
	return fileio_write_all(*(const int *)arg, buf, len) == ERR_OK ? 0 : -1;
}

/* see deflate.h */
int
deflate_gzip_file(const char *src_path, const char *dst_path)
{
	static struct deflate_ctx ctx;
	static uint8_t buf[16384];
	char tmp[PATH_MAX];
	struct stat st;
	int in, out = -1, rc = ERR_IO, saved, n;

	n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dst_path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return ERR_RANGE;
	in = open(src_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return ERR_IO;
	if (fstat(in, &st) != 0)
		goto done;
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);
	if (out < 0)
		goto done;
	deflate_init(&ctx, 1, st.st_mtime > 0 ? (uint32_t)st.st_mtime : 0, sink_fd, &out);
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto done;
		if (r == 0)
			break;
		if (deflate_update(&ctx, buf, (size_t)r) != ERR_OK)
			goto done;
	}
	if (deflate_finish(&ctx) != ERR_OK || fsync(out) != 0)
		goto done;
	n = close(out);
	out = -1;
	if (n != 0 || rename(tmp, dst_path) != 0)
		goto done;
	(void)fileio_sync_dir(dst_path); /* best effort: the file itself is complete */
	rc = ERR_OK;
done:
	saved = errno;
	if (out >= 0)
		close(out);
	if (rc != ERR_OK)
		unlink(tmp);
	close(in);
	errno = saved;
	return rc;
}

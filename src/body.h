/*
 * body.h — where a request's body ends (RFC 9112 §6.3, §7.1), followed byte by byte as it
 * streams: an absolute-form request is forwarded with its body and nothing after it.
 *
 * Owns: the body's framing from the parsed head — Content-Length, or Transfer-Encoding
 * whose last coding is chunked (the chunked framing then parsed incrementally: chunk
 * sizes, extensions, data, trailer lines), or no body at all — and what of a run of bytes
 * belongs to it. Pure: no I/O, no allocation, no globals; the state is a few fixed fields
 * the caller keeps (struct conn). Must not touch: the bytes themselves (they are judged,
 * never copied or changed), sockets, responses.
 *
 * Strict where a lenient reading could make the upstream see the body end earlier than
 * the relay does (the bytes after it would then reach the upstream as a new request):
 * chunk lines end with CRLF only, a chunk size is 1 to 15 hex digits, an extension or
 * trailer line holds no control character but HTAB, a line is at most BODY_LINE_MAX
 * bytes. Anything else is BODY_BAD: the caller stops forwarding there.
 */
#ifndef RELAYPRO_BODY_H
#define RELAYPRO_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define BODY_LINE_MAX 8192 /* a chunk-size line with its extensions, or a trailer line */

enum { BODY_MORE = 0, BODY_DONE = 1, BODY_BAD = -1 };

struct body_state {
	uint64_t left;      /* bytes of the body (Content-Length) or of the chunk still due */
	uint32_t line;      /* bytes of the current chunk-size or trailer line so far */
	uint8_t st;         /* where the chunked parser is (body.c) */
	uint8_t digits;     /* hex digits of the chunk size so far */
	uint8_t chunked;    /* the framing is chunked */
	uint8_t done;       /* the body ended: nothing more belongs to it */
};

/* The framing of the request r parsed from head: ERR_OK with b set up, or ERR_INVAL when
 * a Transfer-Encoding does not end in chunked (or names chunked twice): such a body has
 * no length the relay could trust (answered 400). */
int body_start(struct body_state *b, const char *head, const struct http_request *r);

/* Of buf[0..len), how many bytes (from the start) belong to the body: all of them while
 * it goes on, fewer when it ends inside buf (*status BODY_DONE; the rest follow the
 * request). *status BODY_MORE while it goes on, BODY_BAD at the first byte that breaks the
 * framing (the return counts the bytes before it). Once done, returns 0. */
size_t body_take(struct body_state *b, const unsigned char *buf, size_t len, int *status);

#endif

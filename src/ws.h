/*
 * ws.h — the pure part of WebSocket tunnels (RFC 6455, server side; docs/protocol.md).
 *
 * No I/O and no allocation; the caller owns every buffer. conn.c drives it:
 *
 *   handshake  ws_accept_key checks Sec-WebSocket-Key (base64 of exactly 16 bytes) and
 *              computes Sec-WebSocket-Accept = base64(SHA-1(key || WS_GUID));
 *              ws_query_target finds `target=` in the request's query.
 *   receiving  a struct ws_rx per connection. ws_rx_header takes the bytes received so
 *              far, (buf, len), consumes header bytes into a 14-byte accumulator, checks
 *              every rule as soon as the byte it needs has arrived, and returns WS_OK once
 *              a header is complete (then rx->opcode, rx->fin and rx->left describe the
 *              frame). While rx->left > 0 the frame's payload follows: ws_rx_unmask
 *              unmasks it in place in the caller's buffer (a running mask offset, so any
 *              split of the payload gives the same bytes) and counts it off. The outcome
 *              does not depend on how the stream was cut into calls.
 *   sending    ws_frame_header writes a server frame header (FIN, no mask, minimal
 *              length encoding) in front of a payload the caller already holds.
 *
 * Rules enforced by ws_rx_header (each failure is a WS_E_* code; ws_close_code maps it to
 * the close status the relay sends): client frames must be masked; RSV1-3 must be zero
 * (no extension is negotiated); opcodes other than 0, 1, 2, 8, 9, 10 are refused; control
 * frames (8, 9, 10) must have FIN set and at most 125 bytes of payload; a continuation
 * frame needs an open fragmented message and a new data frame must not start inside one
 * (control frames inside one are fine); the 16-bit length form only for 126..65535, the
 * 64-bit form only for more than 65535 and with its most significant bit clear (all
 * 1002); a text frame (opcode 1) is refused with 1003 (the tunnel carries bytes); a
 * payload over WS_FRAME_MAX is refused with 1009.
 */
#ifndef RELAYPRO_WS_H
#define RELAYPRO_WS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 24          /* Sec-WebSocket-Key: base64 of 16 bytes */
#define WS_ACCEPT_LEN 28       /* Sec-WebSocket-Accept: base64 of a SHA-1 */
#define WS_HDR_MAX 14          /* longest client frame header: 2 + 8 + 4 (mask) */
#define WS_CTL_MAX 125         /* longest control frame payload */
#define WS_FRAME_MAX 1048576u  /* longest client frame payload (1 MiB); more → 1009 */

enum { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8, WS_OP_PING = 9,
	WS_OP_PONG = 10 };

/* Close status codes the relay sends (RFC 6455 §7.4.1). */
enum {
	WS_CLOSE_NORMAL = 1000,       /* the console closed the tunnel; echo of a client close */
	WS_CLOSE_PROTOCOL = 1002,     /* a frame broke RFC 6455 */
	WS_CLOSE_UNSUPPORTED = 1003,  /* a text frame */
	WS_CLOSE_NO_STATUS = 1005,    /* (never sent) a close frame without a status */
	WS_CLOSE_BAD_DATA = 1007,     /* a close reason that is not UTF-8 */
	WS_CLOSE_TOO_BIG = 1009,      /* a frame over WS_FRAME_MAX */
	WS_CLOSE_INTERNAL = 1011      /* the upstream connection failed */
};

/* Return codes: 0 is OK; the others are negative and distinct from err.h's and
 * target.h's. */
enum {
	WS_OK = 0,
	WS_MORE = ERR_TRUNC,          /* every byte consumed, the header is not complete yet */
	WS_E_RSV = -60,               /* 1002: RSV1-3 set */
	WS_E_OPCODE = -61,            /* 1002: reserved opcode */
	WS_E_UNMASKED = -62,          /* 1002: client frame without mask */
	WS_E_CTL_LONG = -63,          /* 1002: control frame over 125 bytes */
	WS_E_CTL_FRAG = -64,          /* 1002: control frame without FIN */
	WS_E_LEN_FORM = -65,          /* 1002: length not in its minimal encoding */
	WS_E_LEN_MSB = -66,           /* 1002: 64-bit length with the top bit set */
	WS_E_CONT = -67,              /* 1002: continuation frame without an open message */
	WS_E_NOT_CONT = -68,          /* 1002: new data frame inside a fragmented message */
	WS_E_TEXT = -69,              /* 1003: text frame */
	WS_E_TOO_BIG = -70,           /* 1009: payload over WS_FRAME_MAX */
	WS_E_CLOSE_LEN = -71,         /* 1002: close payload of 1 byte */
	WS_E_CLOSE_CODE = -72,        /* 1002: close status that may not be sent */
	WS_E_CLOSE_UTF8 = -73         /* 1007: close reason not UTF-8 */
};

/* One direction's receiver state. Zero it (ws_rx_init) when the tunnel starts. */
struct ws_rx {
	unsigned char hdr[WS_HDR_MAX]; /* header bytes so far */
	uint8_t hlen;                  /* how many */
	uint8_t in_msg;                /* a fragmented data message is open */
	uint8_t opcode, fin;           /* the current (last complete) frame header */
	unsigned char mask[4];
	uint8_t mpos;                  /* payload bytes unmasked so far, mod 4 */
	uint64_t left;                 /* payload bytes of the current frame still to come */
};

/* Check key[0..len) (Sec-WebSocket-Key: exactly 24 characters of base64 decoding to 16
 * bytes) and write the 28-character Sec-WebSocket-Accept into out (no NUL).
 * ERR_OK or ERR_INVAL. */
int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN]);

/* Find the `target` parameter in query q[0..len) (what follows '?', parameters split by
 * '&'; others ignored) and copy its value into out with `%3A`/`%3a` decoded to ':'
 * (every other '%' is copied as is, so the target parser refuses it). ERR_OK and
 * *outlen; ERR_NOTFOUND (no target, or an empty one), ERR_DUP (two), ERR_NOSPACE (the
 * value does not fit in cap bytes). */
int ws_query_target(const char *q, size_t len, char *out, size_t cap, size_t *outlen);

void ws_rx_init(struct ws_rx *rx);

/* Only while rx->left == 0: consume header bytes from buf[0..len) (never more than the
 * header), *used = bytes consumed. WS_OK: a header is complete (a zero-length frame is
 * then already complete too); WS_MORE: all of buf consumed, header incomplete; WS_E_*:
 * the stream is broken (the rest must not be read). */
int ws_rx_header(struct ws_rx *rx, const unsigned char *buf, size_t len, size_t *used);

/* Unmask min(len, rx->left) payload bytes of buf in place and count them off; returns
 * that count. */
size_t ws_rx_unmask(struct ws_rx *rx, unsigned char *buf, size_t len);

/* Write a server frame header (FIN set, no mask, minimal length form) for a payload of
 * len bytes into out. With out == NULL only returns its length (2, 4 or 10). Returns 0
 * with nothing written when cap is too small. */
size_t ws_frame_header(unsigned char *out, size_t cap, unsigned opcode, uint64_t len);

/* Check a close frame's payload p[0..n): empty (→ *code = WS_CLOSE_NO_STATUS), or a
 * status a peer may send (1000-1003, 1007-1014, 3000-4999) followed by UTF-8.
 * WS_OK, WS_E_CLOSE_LEN, WS_E_CLOSE_CODE or WS_E_CLOSE_UTF8. */
int ws_close_check(const unsigned char *p, size_t n, unsigned *code);

/* The close status to send for a WS_E_* code (1002, 1003, 1007 or 1009). */
unsigned ws_close_code(int err);

/* A short English text for a WS_E_* code, for logs. */
const char *ws_str(int err);

#endif

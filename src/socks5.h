/*
 * socks5.h — the client side of a SOCKS5 CONNECT (RFC 1928) with username/password
 * authentication (RFC 1929), as a state machine without I/O.
 *
 * The caller owns the socket and runs the exchange; struct socks5 is the whole state
 * (a few bytes, no buffer, no secret, no target):
 *
 *     if (socks5_init(&s, &req) != ERR_OK) ...          refused before any byte is sent
 *     for (;;) switch (socks5_want(&s)) {
 *     case SOCKS5_WRITE:  n = socks5_output(&s, &req, msg, sizeof msg);
 *                         w = write(fd, msg, n); secret_wipe(msg, n);
 *                         if (w > 0) socks5_sent(&s, w);     (a partial write is fine)
 *     case SOCKS5_READ:   r = read(fd, buf, cap);
 *                         r == 0: socks5_closed(&s)          (EOF before the reply ended)
 *                         else socks5_input(&s, buf, r, &used);
 *     case SOCKS5_DONE:   the tunnel is open; buf[used..r) of the last read is the
 *                         tunnel's first data;
 *     default (< 0):      failed: log socks5_reason(&s) (and s.rep), close the socket.
 *     }
 *
 * Sent: a greeting offering X'00' (no authentication) and, when req has credentials,
 * X'02' (username/password); the RFC 1929 request when the proxy picks X'02'; then
 * CONNECT (CMD X'01') to an IPv4 address, an IPv6 address or a domain name of 1..255
 * bytes, and a port. socks5_output regenerates the message in progress from req on each
 * call and hands back the part not yet sent, so req must stay the same for the whole
 * exchange. While the RFC 1929 request is in progress msg holds the password: the
 * caller wipes msg after every write; nothing here keeps a copy.
 *
 * Received: each server message is taken a byte at a time into the state, so it may
 * arrive split anywhere; socks5_need() says how many bytes would complete it (a blocking
 * caller reads exactly that many and never reads past the reply). socks5_input consumes
 * only bytes of the current server message: after the CONNECT reply the rest of buf is
 * the tunnel's (*used says where it starts); bytes after any earlier server message,
 * before the relay spoke again, break the protocol (SOCKS5_E_EXTRA). The version bytes
 * are checked (X'05', and X'01' for the RFC 1929 status), a failing REP ends the
 * exchange as soon as it is read (the proxy closes after it anyway), RSV is not checked,
 * BND.ADDR of each type (IPv4, IPv6, a name of 0..255 bytes) is skipped, its IP bytes and
 * BND.PORT kept for debugging. Failures are sticky: every later call returns the same
 * code.
 *
 * Codes: SOCKS5_DONE (0), SOCKS5_WRITE and SOCKS5_READ (positive), SOCKS5_E_* (negative,
 * distinct from err.h's and target.h's).
 */
#ifndef RELAYPRO_SOCKS5_H
#define RELAYPRO_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#define SOCKS5_NAME_MAX 255  /* a domain name, a user name, a password */
#define SOCKS5_MSG_MAX 513   /* longest message sent: RFC 1929 request, 3 + 255 + 255 */
#define SOCKS5_REPLY_MAX 262 /* longest CONNECT reply: 4 + 1 + 255 + 2 */

enum { SOCKS5_ATYP_IPV4 = 1, SOCKS5_ATYP_NAME = 3, SOCKS5_ATYP_IPV6 = 4 };

enum {
	SOCKS5_DONE = 0,          /* CONNECT succeeded: the tunnel is open */
	SOCKS5_WRITE = 1,         /* bytes to send: socks5_output */
	SOCKS5_READ = 2,          /* waiting for the proxy: socks5_input */
	SOCKS5_E_REQUEST = -60,   /* req cannot be encoded (lengths, port, address type) */
	SOCKS5_E_VERSION = -61,   /* the proxy's version byte is wrong: not a SOCKS5 proxy */
	SOCKS5_E_NO_METHOD = -62, /* X'FF': none of the offered methods is acceptable */
	SOCKS5_E_METHOD = -63,    /* the proxy chose a method that was not offered */
	SOCKS5_E_AUTH = -64,      /* RFC 1929 STATUS not X'00': user name or password refused */
	SOCKS5_E_REFUSED = -65,   /* REP not X'00': the CONNECT was refused (s->rep says why) */
	SOCKS5_E_ATYP = -66,      /* the reply's address type is none of 1, 3, 4 */
	SOCKS5_E_EXTRA = -67,     /* the proxy sent bytes when it was the relay's turn */
	SOCKS5_E_CLOSED = -68,    /* the proxy closed the connection mid-exchange */
	SOCKS5_E_STATE = -69      /* a call out of turn (a bug in the caller) */
};

/* What to ask for. Pointers are the caller's and must stay valid and unchanged for the
 * whole exchange. user == NULL: no credentials (then only X'00' is offered). */
struct socks5_req {
	const unsigned char *user, *pass; /* RFC 1929 credentials, 1..255 bytes each */
	size_t ulen, plen;
	int atyp;                         /* SOCKS5_ATYP_IPV4, _NAME or _IPV6 */
	const unsigned char *addr;        /* 4 bytes, 16 bytes, or the name */
	size_t alen;                      /* 4, 16, or 1..255 */
	unsigned port;                    /* 1..65535 */
};

/* The state of one exchange. Read-only for the caller, except through the functions. */
struct socks5 {
	uint8_t state;     /* internal: which message is being sent or read */
	uint8_t creds;     /* X'02' was offered */
	uint8_t method;    /* the method the proxy chose */
	uint8_t ver;       /* the proxy's version byte (meaningful after SOCKS5_E_VERSION) */
	uint8_t rep;       /* REP of the CONNECT reply, or the RFC 1929 STATUS */
	uint8_t atyp;      /* ATYP of the reply */
	uint16_t pos;      /* bytes of the current message sent or read so far */
	uint16_t len;      /* the current message's whole length, once known */
	uint16_t bnd_port; /* BND.PORT (after SOCKS5_DONE) */
	uint8_t bnd[16];   /* BND.ADDR when an IP address: 4 or 16 bytes */
	int err;           /* the sticky failure, or 0 */
};

/* Encoders, two-pass: with dest == NULL they return the message's length; otherwise
 * they write it when it fits cap and return its length, or return 0 (no room, or a
 * field out of range). */
size_t socks5_greeting(unsigned char *dest, size_t cap, int creds);
size_t socks5_auth_request(unsigned char *dest, size_t cap, const unsigned char *user,
    size_t ulen, const unsigned char *pass, size_t plen);
size_t socks5_connect_request(unsigned char *dest, size_t cap, int atyp,
    const unsigned char *addr, size_t alen, unsigned port);

/* Start an exchange for req (checked here: lengths, port, address type). ERR_OK (0), or
 * SOCKS5_E_REQUEST (s is then failed too). */
int socks5_init(struct socks5 *s, const struct socks5_req *req);

/* SOCKS5_WRITE, SOCKS5_READ, SOCKS5_DONE or the failure code. */
int socks5_want(const struct socks5 *s);

/* In state SOCKS5_WRITE: the unsent rest of the current message into out (cap at least
 * SOCKS5_MSG_MAX), its length returned; 0 otherwise (or when req no longer encodes:
 * then s fails with SOCKS5_E_REQUEST). out may hold the password: wipe it after use. */
size_t socks5_output(struct socks5 *s, const struct socks5_req *req, unsigned char *out,
    size_t cap);

/* n bytes of what socks5_output gave were written. Returns socks5_want(s) afterwards
 * (SOCKS5_E_STATE when n is more than was pending). */
int socks5_sent(struct socks5 *s, size_t n);

/* In state SOCKS5_READ: take bytes of the proxy's message from buf[0..len). *used gets
 * how many were consumed (always all of them, except after SOCKS5_DONE or a failure).
 * Returns socks5_want(s) afterwards. */
int socks5_input(struct socks5 *s, const unsigned char *buf, size_t len, size_t *used);

/* In state SOCKS5_READ: the bytes that would complete the current server message as far
 * as is known now (at least 1); 0 in any other state. */
size_t socks5_need(const struct socks5 *s);

/* The proxy closed the connection (EOF) before SOCKS5_DONE: s fails with SOCKS5_E_CLOSED
 * (unless it had failed already). Returns the failure code. */
int socks5_closed(struct socks5 *s);

/* A short English text for a SOCKS5_* code. */
const char *socks5_str(int code);

/* The most precise reason for s's failure, for the log: the meaning of REP for a refused
 * CONNECT ("connection refused", "host unreachable", ...), where the proxy closed the
 * connection, whether credentials were offered when it wanted some. Never holds a
 * credential. "" when s has not failed. */
const char *socks5_reason(const struct socks5 *s);

/* The meaning of a REP code: "succeeded", "general failure", ..., "unassigned reply
 * code" for X'09'..X'FF'. */
const char *socks5_rep_str(unsigned rep);

#endif

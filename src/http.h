/*
 * http.h — HTTP/1.1 request heads (docs/protocol.md), and the heads of every response the relay
 * writes itself (errors, JSON answers, /metrics, 101, 200 Connection established): they
 * are built here and nowhere else.
 *
 * http_parse reads a request head from the bytes received so far and is called again,
 * with the same struct and a longer buffer, as more arrive. It keeps a cursor, so each
 * byte is examined once per call that first sees it: no rescan from the start. The caller
 * owns the buffer and must not change bytes it has already passed in. Results are spans
 * (offset, length) into that buffer; nothing is copied. head_len is where the head ends:
 * bytes after it (a body, pipelined data) belong to the caller, untouched.
 *
 * Accepted: CRLF or bare LF line ends, in any mixture; empty lines before the request
 * line are skipped (RFC 9112 §2.2). Refused with HTTP_BAD (→ 400) and a reason: bare CR,
 * NUL, obs-fold, a header line without a colon, whitespace before the colon, an empty or
 * non-token field name, a control character (other than HT) or DEL in a field value, a
 * duplicate Host, Proxy-Authorization, Authorization, Content-Length, Transfer-Encoding,
 * Sec-WebSocket-Key or Sec-WebSocket-Version, both Content-Length and Transfer-Encoding,
 * a Content-Length that is not plain digits, a malformed request line (method not a
 * token, not exactly single spaces, a request-target that is empty or holds a byte outside
 * 0x21-0x7e, a version other than exactly HTTP/1.1 or HTTP/1.0). Refused with
 * HTTP_TOO_LARGE (→ 431): a head not ended within max bytes, or more than
 * HTTP_MAX_HEADERS field lines. A missing Host is not refused here (CONNECT clients differ
 * on it); absolute-form forwarding must replace Host anyway (RFC 9112 §3.2.2).
 * Errors are found as soon as the offending line is complete, so the outcome does not
 * depend on how the bytes were split into calls. The outcome is sticky: once http_parse
 * returned something other than HTTP_INCOMPLETE it returns the same again.
 */
#ifndef RELAYPRO_HTTP_H
#define RELAYPRO_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "target.h"

#define HTTP_MAX_HEADERS 64       /* field lines per head; more → HTTP_TOO_LARGE */
#define HTTP_DEFAULT_MAX_HEAD 8192 /* maxHeaderBytes default */

enum {
	HTTP_OK = ERR_OK,
	HTTP_BAD = ERR_INVAL,         /* 400, see reason */
	HTTP_TOO_LARGE = ERR_RANGE,   /* 431, see reason */
	HTTP_INCOMPLETE = ERR_TRUNC,  /* need more bytes */
	HTTP_HTTPS = -20              /* https:// absolute-form: 400, "use CONNECT" */
};

/* Field names the relay acts on; HTTP_H_OTHER is every other name. */
enum {
	HTTP_H_OTHER = 0,
	HTTP_H_HOST,
	HTTP_H_PROXY_AUTHORIZATION,
	HTTP_H_AUTHORIZATION,
	HTTP_H_CONTENT_LENGTH,
	HTTP_H_TRANSFER_ENCODING,
	HTTP_H_CONNECTION,
	HTTP_H_PROXY_CONNECTION,
	HTTP_H_UPGRADE,
	HTTP_H_SEC_WEBSOCKET_KEY,
	HTTP_H_SEC_WEBSOCKET_VERSION,
	HTTP_H_COUNT
};

/* Bytes buf[off .. off+len) of the caller's buffer. */
struct http_span {
	uint32_t off, len;
};

struct http_header {
	struct http_span name;
	struct http_span value; /* leading and trailing SP/HT removed */
	int id;                 /* HTTP_H_* */
};

/* One request head. Zero-initialised (or http_init) before the first http_parse call;
 * the result fields are valid once http_parse returned HTTP_OK. */
struct http_request {
	struct http_span method;
	struct http_span target;
	int minor;              /* HTTP/1.<minor>: 0 or 1 */
	size_t head_len;        /* bytes of the head, final empty line included */
	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned have;          /* bit (1u << HTTP_H_x) set when that field is present */
	struct http_span val[HTTP_H_COUNT]; /* value of its first occurrence */
	const char *reason;     /* static text for HTTP_BAD / HTTP_TOO_LARGE */
	/* parser state, private */
	size_t line, scan;
	int started, done, status;
};

/* Request-target forms. */
enum { HTTP_FORM_ORIGIN = 1, HTTP_FORM_AUTHORITY, HTTP_FORM_ABSOLUTE };

struct http_target {
	int form;
	struct target_addr addr; /* authority- and absolute-form (port 80 by default) */
	struct http_span path;   /* origin-form: the target; absolute-form: path and query
	                          * as sent, possibly empty or starting with '?' (then the
	                          * caller sends '/' first) */
};

/* Reset r for a new head. */
void http_init(struct http_request *r);

/* Parse the head in buf[0..len), at most max bytes (maxHeaderBytes). Returns HTTP_OK,
 * HTTP_INCOMPLETE, HTTP_BAD or HTTP_TOO_LARGE (r->reason says why for the last two). */
int http_parse(struct http_request *r, const char *buf, size_t len, size_t max);

/* Classify a parsed request's target. CONNECT must use authority-form (port required);
 * other methods origin-form or `http://` absolute-form. Returns HTTP_OK, HTTP_HTTPS,
 * HTTP_BAD (asterisk-form, other schemes, a fragment, a form the method does not
 * allow) or a TARGET_E_* code from the authority (all 400). */
int http_target_split(const char *buf, const struct http_request *r,
    struct http_target *out);

/* Content-Length: 1*DIGIT, no sign, no spaces, no list, at most 2^63-1.
 * HTTP_OK and *out, or HTTP_BAD. */
int http_parse_content_length(const char *s, size_t len, uint64_t *out);

/* 1 if buf[s] is exactly the NUL-terminated lit (case-sensitive: methods, versions). */
int http_span_is(const char *buf, struct http_span s, const char *lit);

/* 1 if a[0..n) equals b[0..m), ASCII case-insensitive (only A-Z fold, whatever the
 * locale): the one comparison for field names and tokens ("chunked", "keep-alive").
 * Lengths differ: 0. Neither needs a NUL; bytes past n and m are never read. */
int http_ieq(const char *a, size_t n, const char *b, size_t m);

/* 1 if any field with this id holds token in its comma-separated list, ASCII
 * case-insensitive ("Connection: keep-alive, Upgrade" has "upgrade"). */
int http_list_has(const char *buf, const struct http_request *r, int id, const char *token);

/* The same for a token that is a span of buf, compared whole at any length (a field
 * name: is it listed in Connection, so hop-by-hop?). Nothing is copied; an empty span
 * is never listed. */
int http_list_has_span(const char *buf, const struct http_request *r, int id,
    struct http_span tok);

/* Reason phrase for 101 200 400 401 403 404 405 407 426 429 431 500 502 503 504, else
 * "Error". */
const char *http_reason(int status);

enum { HTTP_RH_CLOSE = 1, HTTP_RH_NOSTORE = 2 }; /* http_response_head flags */

/* Write into buf (at most cap bytes, no NUL) the response head
 *   HTTP/1.1 <status> <reason>\r\n
 *   Content-Type: <ctype>\r\n Content-Length: <clen>\r\n      (when ctype != NULL)
 *   Cache-Control: no-store\r\n                               (HTTP_RH_NOSTORE)
 *   Connection: close\r\n                                     (HTTP_RH_CLOSE)
 *   <extra> \r\n
 * reason NULL: http_reason(status). extra is NULL or whole header lines, each ending in
 * CRLF, written as given. With buf == NULL only returns the length. Returns the length,
 * or 0 with nothing written when cap is too small. */
size_t http_response_head(char *buf, size_t cap, int status, const char *reason,
    const char *ctype, size_t clen, unsigned flags, const char *extra);

/* Write into buf (at most cap bytes, no NUL) the response
 *   HTTP/1.1 <status> <reason>\r\n Content-Type: application/json\r\n
 *   Content-Length: N\r\n Connection: close\r\n <extra> \r\n
 *   {"error":"<code>","message":"<message>"}\n
 * code and message JSON-escaped (bytes >= 0x80 become '?', so the body is ASCII).
 * extra is NULL or whole header lines, each ending in CRLF, written as given.
 * With buf == NULL only returns the length. Returns the length, or 0 with nothing
 * written when cap is too small. */
size_t http_error_response(char *buf, size_t cap, int status, const char *code,
    const char *message, const char *extra);

#endif

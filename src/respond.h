/*
 * respond.h — what the relay itself says to a client, and how a connection closes after it.
 *
 * Owns: queueing a whole response (error, JSON, /metrics) into the client's send buffer,
 * the RESPOND state (set by every respond_* answer) and the CLOSING state (close_notify or
 * a shut write side, then input discarded — never parsed — until EOF or the linger).
 * Response heads are built by http.c (http_response_head, http_error_response), never
 * here. Must not touch: the upstream side, admission, the head parser.
 *
 * Responses are small: they always fit in the send buffer, which is empty before a tunnel
 * starts. An answer that does not fit closes the connection instead (CLOSING). Nothing is
 * answered on a DEAD connection. One answer has no bound, GET /sessions (thousands of
 * tunnels): it is streamed — rendered a few rows at a time into the send buffer as the
 * client drains it (respond_more, called by the RESPOND step), in chunks on HTTP/1.1.
 */
#ifndef RELAYPRO_RESPOND_H
#define RELAYPRO_RESPOND_H

#include <stddef.h>

#include "conn.h"

/* Queue len bytes for the client. ERR_OK, or ERR_NOSPACE when they do not fit now. */
int respond_raw(struct conn *c, const void *data, size_t len);

/* An error response (http_error_response: JSON body, Connection: close, extra header
 * lines) and RESPOND; the connection closes once it is sent. */
void respond_error(struct conn *c, int status, const char *code, const char *msg,
    const char *extra);

/* A JSON answer of the relay's own (health endpoints, tokens): Cache-Control: no-store;
 * with keep_alive the connection reads the next request once it is sent (walk.c),
 * otherwise it closes. The buffer it was built in is wiped (it may hold an access token). */
void respond_json(struct conn *c, int status, const char *body, int keep_alive);

/* GET /metrics on the admin listener: the whole exposition, rendered straight into the
 * send buffer (sized at accept for the longest one), or 500 when it does not fit. */
void respond_metrics(struct conn *c, int keep_alive);

/* GET /sessions on the admin listener: the head (Transfer-Encoding: chunked for HTTP/1.1,
 * else the body ends when the connection closes) and the first rows; the rest follows as
 * the buffer drains (respond_more). */
void respond_sessions(struct conn *c, int keep_alive);

/* The RESPOND step, before the "is everything sent" check: a streamed answer's next rows
 * into the room the send buffer has (at least a row's worth), its end once every row is
 * out; each piece moves the response deadline on. 1 when anything was queued. */
int respond_more(struct conn *c);

/* Enter CLOSING: close_notify now (TLS), the write side once the answer is flushed
 * (plain), then input is discarded until EOF or CONN_LINGER_MS. */
void respond_close(struct conn *c);

/* One CLOSING step (after the client's I/O): close on EOF, else discard what arrived.
 * Returns 1 when anything was discarded. */
int respond_closing(struct conn *c);

#endif

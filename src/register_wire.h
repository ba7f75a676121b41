/*
 * register_wire.h — the console registration's wire format, pure (register_wire.c): the
 * request body, the console's HTTP answer and its JSON, the console address split, the
 * retry backoff. No I/O, no allocation, no logging; register.h includes this.
 */
#ifndef RELAYPRO_REGISTER_WIRE_H
#define RELAYPRO_REGISTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define REG_RESP_MAX (16 * 1024)     /* whole HTTP answer, head and body */
#define REG_TOKEN_MAX 1023           /* securityToken bytes */

/* The delay before retry number `failures` (1 = after the first failure):
 * min(cap, base * 2^(failures-1)) scaled by 0.8 + 0.4 * (rnd % 401) / 400. */
uint32_t register_backoff_ms(unsigned failures, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd);

/* Split a consoleAddress ("host", "host:port", "[v6]", "[v6]:port") into host (no
 * brackets) and port ("443" when absent). ERR_INVAL or ERR_NOSPACE on failure. */
int register_split_address(const char *addr, char *host, size_t hostcap, char *port,
    size_t portcap);

/* The request body {"organizationId":N,"deploymentToken":"..","relayProId":"..",
 * "hostname":"..","version":".."}, strings JSON-escaped. Returns its length; writes it and
 * a NUL only when out != NULL and length < cap (two-pass: call with out == NULL first). */
size_t register_body(char *out, size_t cap, int64_t org, const char *deployment_token,
    const char *relay_pro_id, const char *hostname, const char *version);

/* Parse an HTTP/1.x answer in buf[0..len): status line "HTTP/1.D SSS reason" and header
 * lines ending in CRLF, Content-Length (digits, duplicates must agree) or
 * Transfer-Encoding: chunked (not both) or, with neither, a body ending at EOF.
 * eof: the peer has closed. ERR_TRUNC: need more bytes; ERR_INVAL: malformed. On ERR_OK,
 * *status, and *body, *bodylen inside buf (a chunked body is decoded in place; buf is
 * changed only when ERR_OK is returned). */
int register_parse_response(char *buf, size_t len, int eof, int *status, char **body,
    size_t *bodylen);

/* The 200 answer: a JSON object with relayId (integer 1..INT64_MAX) and securityToken
 * (string of 1..REG_TOKEN_MAX bytes, no control characters, no leading or trailing white
 * space — it must survive the INI file); other members are ignored. token gets the
 * NUL-terminated value (cap > REG_TOKEN_MAX). ERR_OK or ERR_INVAL; token is wiped on
 * failure. */
int register_parse_answer(const char *body, size_t len, int64_t *relay_id, char *token,
    size_t cap);

#endif

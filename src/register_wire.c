/*
 * register_wire.c — the registration's wire format, pure (register.h): the request body,
 * the console's HTTP answer (Content-Length, chunked or EOF-delimited) and its JSON, the
 * console address split, and the retry backoff. Parsers take (buf, len) and check before
 * every read; nothing here does I/O, allocates or logs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "json.h"
#include "register_wire.h"
#include "secret.h"

/* see register_wire.h */
uint32_t
register_backoff_ms(unsigned failures, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd)
{
	uint64_t d = base_ms;
	unsigned i;

	for (i = 1; i < failures && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	d = d * (800 + rnd % 401) / 1000;
	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* see register_wire.h */
int
register_split_address(const char *addr, char *host, size_t hostcap, char *port,
    size_t portcap)
{
	const char *h = addr, *p = NULL, *c = strchr(addr, ':');
	size_t hl, pl, i;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (rb == NULL || (rb[1] != 0 && rb[1] != ':'))
			return ERR_INVAL;
		h = addr + 1;
		hl = (size_t)(rb - h);
		p = rb[1] ? rb + 2 : NULL;
	} else if (c != NULL && strchr(c + 1, ':') == NULL) {
		hl = (size_t)(c - addr);
		p = c + 1;
	} else {
		hl = strlen(addr); /* a name, or a bare IPv6 literal */
	}
	if (p == NULL)
		p = "443";
	pl = strlen(p);
	if (hl == 0 || pl == 0 || pl > 5 || p[0] == '0')
		return ERR_INVAL;
	for (i = 0; i < pl; i++)
		if (p[i] < '0' || p[i] > '9')
			return ERR_INVAL;
	if (atoi(p) > 65535)
		return ERR_INVAL;
	if (hl >= hostcap || pl >= portcap)
		return ERR_NOSPACE;
	memcpy(host, h, hl);
	host[hl] = 0;
	memcpy(port, p, pl + 1);
	return ERR_OK;
}

/* Append s[0..n) (JSON-escaped when esc) at out + *o; out == NULL only counts. */
static void
put(char *out, size_t *o, const char *s, size_t n, int esc)
{
	if (esc) {
		*o += json_escape(out ? out + *o : NULL, (size_t)-1 / 2, s, n);
		return;
	}
	if (out)
		memcpy(out + *o, s, n);
	*o += n;
}

static size_t
body_pass(char *w, const char *num, const char *const val[4])
{
	static const char *const name[] = { "deploymentToken", "relayProId", "hostname", "version" };
	size_t o = 0, i;

	put(w, &o, "{\"organizationId\":", 18, 0);
	put(w, &o, num, strlen(num), 0);
	for (i = 0; i < 4; i++) {
		put(w, &o, ",\"", 2, 0);
		put(w, &o, name[i], strlen(name[i]), 0);
		put(w, &o, "\":\"", 3, 0);
		put(w, &o, val[i], strlen(val[i]), 1);
		put(w, &o, "\"", 1, 0);
	}
	put(w, &o, "}", 1, 0);
	return o;
}

/* see register_wire.h */
size_t
register_body(char *out, size_t cap, int64_t org, const char *deployment_token,
    const char *relay_pro_id, const char *hostname, const char *version)
{
	const char *const val[4] = { deployment_token, relay_pro_id, hostname, version };
	char num[24];
	size_t n;

	snprintf(num, sizeof num, "%lld", (long long)org);
	n = body_pass(NULL, num, val);
	if (out != NULL && n < cap) {
		body_pass(out, num, val);
		out[n] = 0;
	}
	return n;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A byte allowed in a reason phrase, header value or chunk extension. */
static int
textbyte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* An RFC 9110 token character (header names). */
static int
tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	    (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Chunked body at buf[start..len): checks it (write == 0) or also decodes it in place to
 * buf[start..) (write == 1). ERR_TRUNC when incomplete. */
static int
dechunk(char *buf, size_t len, size_t start, size_t *outlen, int write)
{
	size_t p = start, o = start, size, e;
	int digits, v;

	for (;;) {
		for (size = 0, digits = 0; p < len && (v = hexval(buf[p])) >= 0; p++, digits++) {
			size = size * 16 + (size_t)v;
			if (size > REG_RESP_MAX)
				return ERR_INVAL; /* could never fit */
		}
		if (p < len && digits == 0)
			return ERR_INVAL;
		if (p < len && buf[p] == ';') /* chunk extensions are ignored */
			for (; p < len && buf[p] != '\r'; p++)
				if (!textbyte((unsigned char)buf[p]))
					return ERR_INVAL;
		if (p < len && buf[p] != '\r')
			return ERR_INVAL;
		if (len - p < 2)
			return ERR_TRUNC;
		if (buf[p + 1] != '\n')
			return ERR_INVAL;
		p += 2;
		if (size == 0)
			break;
		if (len - p < size + 2)
			return ERR_TRUNC;
		if (buf[p + size] != '\r' || buf[p + size + 1] != '\n')
			return ERR_INVAL;
		if (write)
			memmove(buf + o, buf + p, size);
		o += size;
		p += size + 2;
	}
	for (;;) { /* trailer lines, then an empty line */
		for (e = p; e < len && buf[e] != '\r'; e++)
			if (!textbyte((unsigned char)buf[e]))
				return ERR_INVAL;
		if (len - e < 2)
			return ERR_TRUNC;
		if (buf[e + 1] != '\n')
			return ERR_INVAL;
		if (e == p)
			break;
		p = e + 2;
	}
	*outlen = o - start;
	return ERR_OK;
}

/* see register_wire.h */
int
register_parse_response(char *buf, size_t len, int eof, int *status, char **body,
    size_t *bodylen)
{
	size_t p, e, hend, cl = 0, n, i;
	int have_cl = 0, chunked = 0, rc;
	const int more = eof ? ERR_INVAL : ERR_TRUNC;

	for (hend = 0; hend + 4 <= len && memcmp(buf + hend, "\r\n\r\n", 4) != 0; hend++)
		;
	if (hend + 4 > len) {
		/* a head that has already gone wrong needs no more bytes to be refused */
		if (len >= 9 && (memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' '))
			return ERR_INVAL;
		return more;
	}
	hend += 2; /* end of the last header line's CRLF... */
	if (hend < 14 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9' || buf[12] != ' ')
		return ERR_INVAL;
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	for (p = 13; buf[p] != '\r'; p++)
		if (!textbyte((unsigned char)buf[p]))
			return ERR_INVAL;
	if (buf[p + 1] != '\n')
		return ERR_INVAL;
	for (p += 2; p < hend; p = e + 2) {
		size_t name, vs, ve;

		for (e = p; buf[e] != ':' && buf[e] != '\r'; e++)
			if (!tchar((unsigned char)buf[e]))
				return ERR_INVAL;
		if (buf[e] != ':' || e == p)
			return ERR_INVAL;
		name = e - p;
		for (vs = e + 1; buf[vs] == ' ' || buf[vs] == '\t'; vs++)
			;
		for (e = vs; buf[e] != '\r'; e++)
			if (!textbyte((unsigned char)buf[e]))
				return ERR_INVAL;
		if (buf[e + 1] != '\n')
			return ERR_INVAL;
		for (ve = e; ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'); ve--)
			;
		if (name == 14 && strncasecmp(buf + p, "content-length", 14) == 0) {
			if (ve == vs || ve - vs > 9)
				return ERR_INVAL;
			for (n = 0, i = vs; i < ve; i++) {
				if (buf[i] < '0' || buf[i] > '9')
					return ERR_INVAL;
				n = n * 10 + (size_t)(buf[i] - '0');
			}
			if (have_cl && n != cl)
				return ERR_INVAL;
			cl = n;
			have_cl = 1;
		} else if (name == 17 && strncasecmp(buf + p, "transfer-encoding", 17) == 0) {
			if (chunked || ve - vs != 7 || strncasecmp(buf + vs, "chunked", 7) != 0)
				return ERR_INVAL;
			chunked = 1;
		}
	}
	hend += 2; /* ...and of the empty line */
	if (have_cl && chunked)
		return ERR_INVAL;
	*body = buf + hend;
	if (*status < 200 || *status == 204 || *status == 304) {
		*bodylen = 0;
	} else if (have_cl) {
		if (len - hend < cl)
			return more;
		*bodylen = cl;
	} else if (chunked) {
		rc = dechunk(buf, len, hend, bodylen, 0);
		if (rc != ERR_OK)
			return rc == ERR_TRUNC ? more : rc;
		dechunk(buf, len, hend, bodylen, 1);
	} else {
		if (!eof)
			return ERR_TRUNC;
		*bodylen = len - hend;
	}
	return ERR_OK;
}

struct answer {
	int64_t id;
	int have_id, have_token;
	char *token;
	size_t cap, toklen;
};

static int
answer_member(void *user, const char *key, size_t keylen, struct json *j)
{
	struct answer *a = user;

	if (keylen == 7 && memcmp(key, "relayId", 7) == 0) {
		a->have_id = 1;
		if (json_peek(j) != JSON_NUMBER || json_read_int(j, &a->id) != ERR_OK || a->id < 1)
			return ERR_INVAL;
		return ERR_OK;
	}
	if (keylen == 13 && memcmp(key, "securityToken", 13) == 0) {
		a->have_token = 1;
		if (json_peek(j) != JSON_STRING ||
		    json_read_string(j, a->token, a->cap, &a->toklen) != ERR_OK)
			return ERR_INVAL;
		return ERR_OK;
	}
	return json_skip(j);
}

/* see register_wire.h */
int
register_parse_answer(const char *body, size_t len, int64_t *relay_id, char *token,
    size_t cap)
{
	struct answer a;
	struct json j;
	size_t i;
	int ok;

	memset(&a, 0, sizeof a);
	a.token = token;
	a.cap = cap < REG_TOKEN_MAX + 1 ? cap : REG_TOKEN_MAX + 1;
	json_init(&j, body, len);
	ok = cap > 0 && json_walk_object(&j, answer_member, &a) == ERR_OK &&
	    json_end(&j) == ERR_OK && a.have_id && a.have_token && a.toklen > 0 &&
	    token[0] != ' ' && token[a.toklen - 1] != ' ';
	for (i = 0; ok && i < a.toklen; i++)
		ok = (unsigned char)token[i] >= 0x20 && token[i] != 0x7f;
	if (!ok) {
		secret_wipe(token, cap);
		return ERR_INVAL;
	}
	*relay_id = a.id;
	return ERR_OK;
}

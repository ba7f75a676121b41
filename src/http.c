/*
 * http.c — request-head parser, and every response head the relay writes. See http.h.
 *
 * The parser works line by line: each call searches for the next LF from where the
 * previous call stopped (r->scan), and a line is judged only once its LF has arrived, so
 * however the input is split the lines are judged in the same order with the same
 * outcome. Cost: each byte is read once by memchr and once by the line check.
 */
#include <stdint.h>
#include <string.h>

#include "http.h"

/* The fields we index; dup is the reason given when a field that must appear at most
 * once appears twice (NULL: it may repeat, val[] keeps the first). */
static const struct {
	const char *name;
	const char *dup;
} known[HTTP_H_COUNT] = {
	[HTTP_H_HOST] = { "Host", "duplicate Host" },
	[HTTP_H_PROXY_AUTHORIZATION] = { "Proxy-Authorization", "duplicate Proxy-Authorization" },
	[HTTP_H_AUTHORIZATION] = { "Authorization", "duplicate Authorization" },
	[HTTP_H_CONTENT_LENGTH] = { "Content-Length", "duplicate Content-Length" },
	[HTTP_H_TRANSFER_ENCODING] = { "Transfer-Encoding", "duplicate Transfer-Encoding" },
	[HTTP_H_CONNECTION] = { "Connection", NULL },
	[HTTP_H_PROXY_CONNECTION] = { "Proxy-Connection", NULL },
	[HTTP_H_UPGRADE] = { "Upgrade", NULL },
	[HTTP_H_SEC_WEBSOCKET_KEY] = { "Sec-WebSocket-Key", "duplicate Sec-WebSocket-Key" },
	[HTTP_H_SEC_WEBSOCKET_VERSION] = { "Sec-WebSocket-Version",
	    "duplicate Sec-WebSocket-Version" },
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* RFC 9110 tchar. */
static int
is_tchar(int c)
{
	return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'z') ||
	    (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
is_ows(int c)
{
	return c == ' ' || c == '\t';
}

/* 1 if s[0..n) equals the NUL-terminated lit, ASCII case-insensitive. */
static int
ieq(const char *s, size_t n, const char *lit)
{
	return http_ieq(s, n, lit, strlen(lit));
}

static struct http_span
span(size_t off, size_t len)
{
	struct http_span s = { (uint32_t)off, (uint32_t)len };

	return s;
}

/* End the parse with this outcome; http_parse returns it from now on. */
static int
finish(struct http_request *r, int status, const char *reason)
{
	r->done = 1;
	r->status = status;
	r->reason = reason;
	return status;
}

/* The request line buf[s..e) (line end removed). */
static int
request_line(struct http_request *r, const char *buf, size_t s, size_t e)
{
	size_t i = s, t;

	while (i < e && is_tchar((unsigned char)buf[i]))
		i++;
	if (i == s || i >= e || buf[i] != ' ')
		return finish(r, HTTP_BAD, "bad method");
	r->method = span(s, i - s);
	t = ++i;
	while (i < e && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
		i++;
	if (i == t || i >= e || buf[i] != ' ')
		return finish(r, HTTP_BAD, "bad request-target");
	r->target = span(t, i - t);
	i++;
	if (e - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0 ||
	    (buf[i + 7] != '0' && buf[i + 7] != '1'))
		return finish(r, HTTP_BAD, "bad HTTP version");
	r->minor = buf[i + 7] - '0';
	r->started = 1;
	return HTTP_INCOMPLETE;
}

/* A field line buf[s..e) (line end removed, not empty). */
static int
field_line(struct http_request *r, const char *buf, size_t s, size_t e)
{
	const char *colon;
	size_t c, v, ve, i;
	uint64_t cl;
	int id;

	if (is_ows(buf[s]))
		return finish(r, HTTP_BAD, "obs-fold");
	if ((colon = memchr(buf + s, ':', e - s)) == NULL)
		return finish(r, HTTP_BAD, "header line without colon");
	c = (size_t)(colon - buf);
	if (c == s)
		return finish(r, HTTP_BAD, "empty field name");
	if (is_ows(buf[c - 1]))
		return finish(r, HTTP_BAD, "whitespace before colon");
	for (i = s; i < c; i++)
		if (!is_tchar((unsigned char)buf[i]))
			return finish(r, HTTP_BAD, "bad field name");
	for (v = c + 1; v < e && is_ows(buf[v]); v++)
		;
	for (ve = e; ve > v && is_ows(buf[ve - 1]); ve--)
		;
	for (i = v; i < ve; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return finish(r, HTTP_BAD, "control character in field value");
	}
	if (r->nheaders >= HTTP_MAX_HEADERS)
		return finish(r, HTTP_TOO_LARGE, "too many header fields");
	for (id = HTTP_H_COUNT - 1; id > HTTP_H_OTHER; id--)
		if (ieq(buf + s, c - s, known[id].name))
			break;
	if (id != HTTP_H_OTHER) {
		if (r->have & (1u << id)) {
			if (known[id].dup != NULL)
				return finish(r, HTTP_BAD, known[id].dup);
		} else {
			r->have |= 1u << id;
			r->val[id] = span(v, ve - v);
		}
		if (id == HTTP_H_CONTENT_LENGTH &&
		    http_parse_content_length(buf + v, ve - v, &cl) != HTTP_OK)
			return finish(r, HTTP_BAD, "bad Content-Length");
	}
	r->headers[r->nheaders].name = span(s, c - s);
	r->headers[r->nheaders].value = span(v, ve - v);
	r->headers[r->nheaders].id = id;
	r->nheaders++;
	return HTTP_INCOMPLETE;
}

/* One complete line buf[s..lf), lf the index of its LF. HTTP_INCOMPLETE: go on. */
static int
line(struct http_request *r, const char *buf, size_t s, size_t lf)
{
	size_t e = lf, i;

	if (e > s && buf[e - 1] == '\r')
		e--;
	for (i = s; i < e; i++) {
		if (buf[i] == '\0')
			return finish(r, HTTP_BAD, "NUL byte");
		if (buf[i] == '\r')
			return finish(r, HTTP_BAD, "bare CR");
	}
	if (e > s)
		return r->started ? field_line(r, buf, s, e) : request_line(r, buf, s, e);
	if (!r->started)
		return HTTP_INCOMPLETE; /* empty line before the request line */
	if ((r->have & (1u << HTTP_H_CONTENT_LENGTH)) &&
	    (r->have & (1u << HTTP_H_TRANSFER_ENCODING)))
		return finish(r, HTTP_BAD, "both Content-Length and Transfer-Encoding");
	r->head_len = lf + 1;
	return finish(r, HTTP_OK, NULL);
}

/* see http.h */
void
http_init(struct http_request *r)
{
	memset(r, 0, sizeof *r);
}

/* see http.h */
int
http_parse(struct http_request *r, const char *buf, size_t len, size_t max)
{
	const char *nl;
	size_t lim, lf;
	int rc;

	if (r->done)
		return r->status;
	if (max > UINT32_MAX)
		max = UINT32_MAX; /* spans are 32-bit */
	lim = len < max ? len : max;
	while (r->scan < lim) {
		nl = memchr(buf + r->scan, '\n', lim - r->scan);
		if (nl == NULL) {
			r->scan = lim;
			break;
		}
		lf = (size_t)(nl - buf);
		r->scan = lf + 1;
		rc = line(r, buf, r->line, lf);
		r->line = lf + 1;
		if (rc != HTTP_INCOMPLETE)
			return rc;
	}
	if (len >= max)
		return finish(r, HTTP_TOO_LARGE, "request head too large");
	return HTTP_INCOMPLETE;
}

/* see http.h */
int
http_target_split(const char *buf, const struct http_request *r, struct http_target *out)
{
	const char *t = buf + r->target.off;
	size_t n = r->target.len, i;
	int rc;

	memset(out, 0, sizeof *out);
	if (http_span_is(buf, r->method, "CONNECT")) {
		out->form = HTTP_FORM_AUTHORITY;
		return target_parse_authority(t, n, 0, &out->addr);
	}
	if (memchr(t, '#', n) != NULL)
		return HTTP_BAD;
	if (n > 0 && t[0] == '/') {
		out->form = HTTP_FORM_ORIGIN;
		out->path = r->target;
		return HTTP_OK;
	}
	if (n >= 8 && ieq(t, 8, "https://"))
		return HTTP_HTTPS;
	if (n < 7 || !ieq(t, 7, "http://"))
		return HTTP_BAD;
	for (i = 7; i < n && t[i] != '/' && t[i] != '?'; i++)
		;
	rc = target_parse_authority(t + 7, i - 7, 80, &out->addr);
	if (rc != TARGET_OK)
		return rc;
	out->form = HTTP_FORM_ABSOLUTE;
	out->path = span(r->target.off + i, n - i);
	return HTTP_OK;
}

/* see http.h */
int
http_parse_content_length(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return HTTP_BAD;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > ((uint64_t)INT64_MAX - d) / 10)
			return HTTP_BAD;
		v = v * 10 + d;
	}
	*out = v;
	return HTTP_OK;
}

/* see http.h */
int
http_span_is(const char *buf, struct http_span s, const char *lit)
{
	return strlen(lit) == s.len && memcmp(buf + s.off, lit, s.len) == 0;
}

/* see http.h */
int
http_ieq(const char *a, size_t n, const char *b, size_t m)
{
	size_t i;

	if (n != m)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Whether a field with this id lists tok[0..toklen) (never empty: an empty element of a
 * list such as "a,,b" matches nothing). tok may point anywhere, buf included. */
static int
list_has(const char *buf, const struct http_request *r, int id, const char *tok, size_t toklen)
{
	size_t h, i, a, b, end;

	if (toklen == 0)
		return 0;
	for (h = 0; h < r->nheaders && h < HTTP_MAX_HEADERS; h++) {
		if (r->headers[h].id != id)
			continue;
		i = r->headers[h].value.off;
		end = i + r->headers[h].value.len;
		while (i <= end) {
			for (a = i; a < end && buf[a] != ','; a++)
				;
			for (b = a; b > i && is_ows(buf[b - 1]); b--)
				;
			while (i < b && is_ows(buf[i]))
				i++;
			if (http_ieq(buf + i, b - i, tok, toklen))
				return 1;
			i = a + 1;
		}
	}
	return 0;
}

/* see http.h */
int
http_list_has(const char *buf, const struct http_request *r, int id, const char *token)
{
	return list_has(buf, r, id, token, strlen(token));
}

/* see http.h */
int
http_list_has_span(const char *buf, const struct http_request *r, int id, struct http_span tok)
{
	return list_has(buf, r, id, buf + tok.off, tok.len);
}

/* see http.h */
const char *
http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 429: return "Too Many Requests";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

/* An output cursor; with p == NULL it only counts. */
struct out {
	char *p;
	size_t n;
};

static void
put(struct out *o, const char *s, size_t len)
{
	if (o->p != NULL)
		memcpy(o->p + o->n, s, len);
	o->n += len;
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
put_uint(struct out *o, size_t v)
{
	char d[20];
	size_t i = sizeof d;

	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	put(o, d + i, sizeof d - i);
}

/* s as the inside of a JSON string, ASCII only. */
static void
put_json(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	char u[6] = { '\\', 'u', '0', '0', 0, 0 };
	unsigned char c;

	for (; s != NULL && (c = (unsigned char)*s) != '\0'; s++) {
		if (c == '"' || c == '\\') {
			put(o, "\\", 1);
			put(o, s, 1);
		} else if (c < 0x20 || c == 0x7f) {
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			put(o, u, sizeof u);
		} else {
			put(o, c < 0x80 ? s : "?", 1);
		}
	}
}

static void
put_body(struct out *o, const char *code, const char *message)
{
	put_str(o, "{\"error\":\"");
	put_json(o, code);
	put_str(o, "\",\"message\":\"");
	put_json(o, message);
	put_str(o, "\"}\n");
}

static void
put_head(struct out *o, int status, const char *reason, const char *ctype, size_t clen,
    unsigned flags, const char *extra)
{
	put_str(o, "HTTP/1.1 ");
	put_uint(o, (size_t)(status < 0 ? 0 : status));
	put_str(o, " ");
	put_str(o, reason ? reason : http_reason(status));
	put_str(o, "\r\n");
	if (ctype != NULL) {
		put_str(o, "Content-Type: ");
		put_str(o, ctype);
		put_str(o, "\r\nContent-Length: ");
		put_uint(o, clen);
		put_str(o, "\r\n");
	}
	if (flags & HTTP_RH_NOSTORE)
		put_str(o, "Cache-Control: no-store\r\n");
	if (flags & HTTP_RH_CLOSE)
		put_str(o, "Connection: close\r\n");
	if (extra != NULL)
		put_str(o, extra);
	put_str(o, "\r\n");
}

/* see http.h */
size_t
http_response_head(char *buf, size_t cap, int status, const char *reason, const char *ctype,
    size_t clen, unsigned flags, const char *extra)
{
	struct out o = { NULL, 0 };

	put_head(&o, status, reason, ctype, clen, flags, extra);
	if (buf == NULL)
		return o.n;
	if (o.n > cap)
		return 0;
	o.p = buf;
	o.n = 0;
	put_head(&o, status, reason, ctype, clen, flags, extra);
	return o.n;
}

static void
put_response(struct out *o, int status, const char *code, const char *message,
    const char *extra)
{
	struct out count = { NULL, 0 };

	put_body(&count, code, message);
	put_head(o, status, NULL, "application/json", count.n, HTTP_RH_CLOSE, extra);
	put_body(o, code, message);
}

/* see http.h */
size_t
http_error_response(char *buf, size_t cap, int status, const char *code,
    const char *message, const char *extra)
{
	struct out o = { NULL, 0 };

	put_response(&o, status, code, message, extra);
	if (buf == NULL)
		return o.n;
	if (o.n > cap)
		return 0;
	o.p = buf;
	o.n = 0;
	put_response(&o, status, code, message, extra);
	return o.n;
}

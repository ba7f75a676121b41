/*
 * body.c — a request body's framing, followed as it streams. See body.h.
 */
#include <string.h>

#include "body.h"
#include "err.h"

/* The chunked parser's states (RFC 9112 §7.1):
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF */
enum {
	S_SIZE,          /* the first hex digit of a chunk size */
	S_SIZE_MORE,     /* more hex digits, or the extensions, or CR */
	S_EXT,           /* chunk extensions, up to CR */
	S_SIZE_LF,       /* LF after the size line */
	S_DATA,          /* chunk data: left bytes */
	S_DATA_CR,       /* CR after the data */
	S_DATA_LF,       /* LF after the data */
	S_TRAILER_START, /* a trailer line, or the final CRLF */
	S_TRAILER,       /* a trailer line, up to CR */
	S_TRAILER_LF,    /* LF after a trailer line */
	S_END_LF         /* LF of the final CRLF */
};

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A byte that may stand in an extension or trailer line: visible, SP, HTAB, obs-text. */
static int
linechar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* see body.h */
int
body_start(struct body_state *b, const char *head, const struct http_request *r)
{
	memset(b, 0, sizeof *b);
	if (r->have & (1u << HTTP_H_TRANSFER_ENCODING)) {
		const struct http_span *v = &r->val[HTTP_H_TRANSFER_ENCODING];
		size_t i = v->off, end = v->off + v->len, s, e;
		int chunked = 0, last = 0;

		/* A list of codings, comma-separated, optional whitespace around them. */
		while (i < end) {
			while (i < end && (head[i] == ' ' || head[i] == '\t' || head[i] == ','))
				i++;
			s = i;
			while (i < end && head[i] != ',')
				i++;
			e = i;
			while (e > s && (head[e - 1] == ' ' || head[e - 1] == '\t'))
				e--;
			if (e == s)
				continue;
			last = http_ieq(head + s, e - s, "chunked", sizeof "chunked" - 1);
			chunked += last;
		}
		if (!last || chunked != 1)
			return ERR_INVAL; /* no reliable length: 400 (RFC 9112 §6.3) */
		b->chunked = 1;
		b->st = S_SIZE;
		return ERR_OK;
	}
	if (r->have & (1u << HTTP_H_CONTENT_LENGTH))
		(void)http_parse_content_length(head + r->val[HTTP_H_CONTENT_LENGTH].off,
		    r->val[HTTP_H_CONTENT_LENGTH].len, &b->left); /* checked by http_parse */
	b->done = b->left == 0;
	return ERR_OK;
}

/* One more byte of a size or trailer line; BODY_BAD past BODY_LINE_MAX. */
static int
grow(struct body_state *b)
{
	return ++b->line > BODY_LINE_MAX ? BODY_BAD : BODY_MORE;
}

/* see body.h */
size_t
body_take(struct body_state *b, const unsigned char *buf, size_t len, int *status)
{
	size_t i = 0, n;
	int h;

	*status = BODY_MORE;
	if (b->done) {
		*status = BODY_DONE;
		return 0;
	}
	if (!b->chunked) {
		n = b->left < len ? (size_t)b->left : len;
		b->left -= n;
		if (b->left == 0) {
			b->done = 1;
			*status = BODY_DONE;
		}
		return n;
	}
	while (i < len) {
		unsigned char c = buf[i];

		switch (b->st) {
		case S_SIZE:
		case S_SIZE_MORE:
			h = hexval(c);
			if (h >= 0) {
				if (b->digits == 15) /* 60 bits: no chunk is that large */
					goto bad;
				b->left = b->left << 4 | (uint64_t)h;
				b->digits++;
				b->st = S_SIZE_MORE;
			} else if (b->st == S_SIZE) {
				goto bad; /* a size line starts with a digit */
			} else if (c == '\r') {
				b->st = S_SIZE_LF;
			} else if (c == ';' || c == ' ' || c == '\t') {
				b->st = S_EXT;
			} else {
				goto bad;
			}
			if (grow(b) != BODY_MORE)
				goto bad;
			i++;
			break;
		case S_EXT:
			if (c == '\r')
				b->st = S_SIZE_LF;
			else if (!linechar(c) || grow(b) != BODY_MORE)
				goto bad;
			i++;
			break;
		case S_SIZE_LF:
			if (c != '\n')
				goto bad;
			b->line = 0;
			b->digits = 0;
			b->st = b->left ? S_DATA : S_TRAILER_START;
			i++;
			break;
		case S_DATA:
			n = b->left < len - i ? (size_t)b->left : len - i;
			b->left -= n;
			i += n;
			if (b->left == 0)
				b->st = S_DATA_CR;
			break;
		case S_DATA_CR:
			if (c != '\r')
				goto bad;
			b->st = S_DATA_LF;
			i++;
			break;
		case S_DATA_LF:
			if (c != '\n')
				goto bad;
			b->st = S_SIZE;
			i++;
			break;
		case S_TRAILER_START:
			if (c == '\r') {
				b->st = S_END_LF;
			} else if (linechar(c) && c != ' ' && c != '\t') {
				b->st = S_TRAILER; /* a field line (obs-fold is not a field line) */
				b->line = 1;
			} else {
				goto bad;
			}
			i++;
			break;
		case S_TRAILER:
			if (c == '\r')
				b->st = S_TRAILER_LF;
			else if (!linechar(c) || grow(b) != BODY_MORE)
				goto bad;
			i++;
			break;
		case S_TRAILER_LF:
			if (c != '\n')
				goto bad;
			b->line = 0;
			b->st = S_TRAILER_START;
			i++;
			break;
		case S_END_LF:
			if (c != '\n')
				goto bad;
			b->done = 1;
			*status = BODY_DONE;
			return i + 1;
		default:
			goto bad;
		}
	}
	return i;
bad:
	b->st = 0xff; /* stays bad */
	*status = BODY_BAD;
	return i;
}

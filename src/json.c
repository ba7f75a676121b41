/*
 * json.c — strict JSON reader and string escaper. See json.h.
 */
#include <string.h>

#include "err.h"
#include "json.h"

/* Length of the valid UTF-8 sequence starting at s[0] (at most n bytes available), or 0
 * when it is invalid: overlong forms, surrogates and code points above U+10FFFF refused. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len, i;
	unsigned cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2; cp = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3; cp = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* see json.h */
void
json_init(struct json *j, const char *buf, size_t len)
{
	j->buf = buf;
	j->len = len;
	j->pos = 0;
	j->depth = 0;
}

static void
skip_ws(struct json *j)
{
	while (j->pos < j->len) {
		char c = j->buf[j->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		j->pos++;
	}
}

/* see json.h */
enum json_type
json_peek(struct json *j)
{
	skip_ws(j);
	if (j->pos >= j->len)
		return JSON_NONE;
	switch (j->buf[j->pos]) {
	case '{': return JSON_OBJECT;
	case '[': return JSON_ARRAY;
	case '"': return JSON_STRING;
	case 't': case 'f': return JSON_BOOL;
	case 'n': return JSON_NULL;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9': return JSON_NUMBER;
	}
	return JSON_NONE;
}

static int
hex4(struct json *j, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (j->len - j->pos < 4)
		return ERR_INVAL;
	for (i = 0; i < 4; i++) {
		char c = j->buf[j->pos++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return ERR_INVAL;
	}
	*out = v;
	return ERR_OK;
}

/* Append one byte to out if there is room; track the full length either way. */
static void
put(char *out, size_t cap, size_t *o, int *over, unsigned char c)
{
	if (out && *o + 1 < cap)
		out[*o] = (char)c;
	else
		*over = 1;
	(*o)++;
}

/* Read a string; out may be NULL (skip). */
static int
string_at(struct json *j, char *out, size_t cap, size_t *outlen)
{
	size_t o = 0;
	int over = 0;

	if (j->pos >= j->len || j->buf[j->pos] != '"')
		return ERR_INVAL;
	j->pos++;
	for (;;) {
		unsigned char c;
		if (j->pos >= j->len)
			return ERR_INVAL;
		c = (unsigned char)j->buf[j->pos];
		if (c == '"') {
			j->pos++;
			break;
		}
		if (c < 0x20)
			return ERR_INVAL;
		if (c == '\\') {
			unsigned cp;
			if (++j->pos >= j->len)
				return ERR_INVAL;
			c = (unsigned char)j->buf[j->pos++];
			switch (c) {
			case '"': case '\\': case '/': put(out, cap, &o, &over, c); continue;
			case 'b': put(out, cap, &o, &over, '\b'); continue;
			case 'f': put(out, cap, &o, &over, '\f'); continue;
			case 'n': put(out, cap, &o, &over, '\n'); continue;
			case 'r': put(out, cap, &o, &over, '\r'); continue;
			case 't': put(out, cap, &o, &over, '\t'); continue;
			case 'u': break;
			default: return ERR_INVAL;
			}
			if (hex4(j, &cp) != ERR_OK)
				return ERR_INVAL;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return ERR_INVAL; /* lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (j->len - j->pos < 2 || j->buf[j->pos] != '\\' || j->buf[j->pos + 1] != 'u')
					return ERR_INVAL;
				j->pos += 2;
				if (hex4(j, &lo) != ERR_OK || lo < 0xdc00 || lo > 0xdfff)
					return ERR_INVAL;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp < 0x80) {
				put(out, cap, &o, &over, (unsigned char)cp);
			} else if (cp < 0x800) {
				put(out, cap, &o, &over, (unsigned char)(0xc0 | cp >> 6));
				put(out, cap, &o, &over, (unsigned char)(0x80 | (cp & 0x3f)));
			} else if (cp < 0x10000) {
				put(out, cap, &o, &over, (unsigned char)(0xe0 | cp >> 12));
				put(out, cap, &o, &over, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
				put(out, cap, &o, &over, (unsigned char)(0x80 | (cp & 0x3f)));
			} else {
				put(out, cap, &o, &over, (unsigned char)(0xf0 | cp >> 18));
				put(out, cap, &o, &over, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
				put(out, cap, &o, &over, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
				put(out, cap, &o, &over, (unsigned char)(0x80 | (cp & 0x3f)));
			}
			continue;
		}
		{
			size_t k, n = utf8_seq((const unsigned char *)j->buf + j->pos, j->len - j->pos);
			if (n == 0)
				return ERR_INVAL;
			for (k = 0; k < n; k++)
				put(out, cap, &o, &over, (unsigned char)j->buf[j->pos + k]);
			j->pos += n;
		}
	}
	if (out) {
		if (over)
			return ERR_NOSPACE;
		out[o] = 0;
	}
	if (outlen)
		*outlen = o;
	return ERR_OK;
}

/* see json.h */
int
json_read_string(struct json *j, char *out, size_t cap, size_t *outlen)
{
	if (out == NULL || cap == 0)
		return ERR_NOSPACE;
	skip_ws(j);
	return string_at(j, out, cap, outlen);
}

/* Check the number grammar at the cursor; report whether it was a plain integer. */
static int
number_at(struct json *j, int *integral)
{
	size_t p = j->pos;

	*integral = 1;
	if (p < j->len && j->buf[p] == '-')
		p++;
	if (p >= j->len)
		return ERR_INVAL;
	if (j->buf[p] == '0') {
		p++;
	} else if (j->buf[p] >= '1' && j->buf[p] <= '9') {
		while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
			p++;
	} else {
		return ERR_INVAL;
	}
	if (p < j->len && j->buf[p] == '.') {
		*integral = 0;
		if (++p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
			return ERR_INVAL;
		while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
			p++;
	}
	if (p < j->len && (j->buf[p] == 'e' || j->buf[p] == 'E')) {
		*integral = 0;
		if (++p < j->len && (j->buf[p] == '+' || j->buf[p] == '-'))
			p++;
		if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
			return ERR_INVAL;
		while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
			p++;
	}
	j->pos = p;
	return ERR_OK;
}

/* see json.h */
int
json_read_int(struct json *j, int64_t *out)
{
	size_t start;
	int integral, neg;
	uint64_t v = 0, limit;

	skip_ws(j);
	start = j->pos;
	if (number_at(j, &integral) != ERR_OK || !integral)
		return ERR_INVAL;
	neg = j->buf[start] == '-';
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (start += (size_t)neg; start < j->pos; start++) {
		unsigned d = (unsigned)(j->buf[start] - '0');
		if (v > (limit - d) / 10)
			return ERR_RANGE;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return ERR_OK;
}

static int
literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if (j->len - j->pos < n || memcmp(j->buf + j->pos, word, n) != 0)
		return ERR_INVAL;
	j->pos += n;
	return ERR_OK;
}

/* see json.h */
int
json_read_bool(struct json *j, int *out)
{
	skip_ws(j);
	if (literal(j, "true") == ERR_OK) {
		*out = 1;
		return ERR_OK;
	}
	if (literal(j, "false") == ERR_OK) {
		*out = 0;
		return ERR_OK;
	}
	return ERR_INVAL;
}

static int skip_cb(void *user, const char *key, size_t keylen, struct json *j);

/* see json.h */
int
json_skip(struct json *j)
{
	int integral, rc;

	switch (json_peek(j)) {
	case JSON_STRING:
		return string_at(j, NULL, 0, NULL);
	case JSON_NUMBER:
		return number_at(j, &integral);
	case JSON_BOOL:
		return json_read_bool(j, &integral);
	case JSON_NULL:
		return literal(j, "null");
	case JSON_OBJECT:
		return json_walk_object(j, skip_cb, NULL);
	case JSON_ARRAY:
		if (++j->depth > JSON_MAX_DEPTH)
			return ERR_RANGE;
		j->pos++;
		skip_ws(j);
		if (j->pos < j->len && j->buf[j->pos] == ']') {
			j->pos++;
			j->depth--;
			return ERR_OK;
		}
		for (;;) {
			if ((rc = json_skip(j)) != ERR_OK)
				return rc;
			skip_ws(j);
			if (j->pos >= j->len)
				return ERR_INVAL;
			if (j->buf[j->pos] == ']') {
				j->pos++;
				j->depth--;
				return ERR_OK;
			}
			if (j->buf[j->pos++] != ',')
				return ERR_INVAL;
		}
	default:
		return ERR_INVAL;
	}
}

static int
skip_cb(void *user, const char *key, size_t keylen, struct json *j)
{
	(void)user;
	(void)key;
	(void)keylen;
	return json_skip(j);
}

/* see json.h */
int
json_walk_object(struct json *j,
    int (*cb)(void *user, const char *key, size_t keylen, struct json *j), void *user)
{
	char keys[JSON_MAX_MEMBERS][JSON_MAX_KEY + 1];
	size_t lens[JSON_MAX_MEMBERS];
	int n = 0, i, rc;

	if (json_peek(j) != JSON_OBJECT)
		return ERR_INVAL;
	if (++j->depth > JSON_MAX_DEPTH)
		return ERR_RANGE;
	j->pos++;
	skip_ws(j);
	if (j->pos < j->len && j->buf[j->pos] == '}') {
		j->pos++;
		j->depth--;
		return ERR_OK;
	}
	for (;;) {
		if (n == JSON_MAX_MEMBERS)
			return ERR_RANGE;
		skip_ws(j);
		rc = string_at(j, keys[n], sizeof keys[n], &lens[n]);
		if (rc != ERR_OK)
			return rc == ERR_NOSPACE ? ERR_RANGE : rc;
		for (i = 0; i < n; i++)
			if (lens[i] == lens[n] && memcmp(keys[i], keys[n], lens[n]) == 0)
				return ERR_DUP;
		skip_ws(j);
		if (j->pos >= j->len || j->buf[j->pos++] != ':')
			return ERR_INVAL;
		if ((rc = cb(user, keys[n], lens[n], j)) != ERR_OK)
			return rc;
		n++;
		skip_ws(j);
		if (j->pos >= j->len)
			return ERR_INVAL;
		if (j->buf[j->pos] == '}') {
			j->pos++;
			j->depth--;
			return ERR_OK;
		}
		if (j->buf[j->pos++] != ',')
			return ERR_INVAL;
	}
}

/* see json.h */
int
json_end(struct json *j)
{
	skip_ws(j);
	return j->pos == j->len ? ERR_OK : ERR_INVAL;
}

/* see json.h */
size_t
json_escape(char *dst, size_t cap, const void *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t i = 0, o = 0;

	while (i < n) {
		char tmp[6];
		const char *piece = tmp;
		size_t plen, adv = 1;
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			tmp[0] = '\\'; tmp[1] = (char)c; plen = 2;
		} else if (c == '\n') {
			tmp[0] = '\\'; tmp[1] = 'n'; plen = 2;
		} else if (c == '\r') {
			tmp[0] = '\\'; tmp[1] = 'r'; plen = 2;
		} else if (c == '\t') {
			tmp[0] = '\\'; tmp[1] = 't'; plen = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(tmp, "\\u00", 4); tmp[4] = hex[c >> 4]; tmp[5] = hex[c & 15]; plen = 6;
		} else if (c < 0x80) {
			tmp[0] = (char)c; plen = 1;
		} else if ((adv = utf8_seq(s + i, n - i)) != 0) {
			piece = (const char *)s + i; plen = adv;
		} else {
			/* Not UTF-8: show the byte as an escape so the output stays valid. */
			memcpy(tmp, "\\u00", 4); tmp[4] = hex[c >> 4]; tmp[5] = hex[c & 15]; plen = 6;
			adv = 1;
		}
		if (dst) {
			if (cap - o < plen)
				break;
			memcpy(dst + o, piece, plen);
		}
		o += plen;
		i += adv;
	}
	return o;
}

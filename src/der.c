/*
 * der.c — DER writer and TLV reader. See der.h.
 */
#include <stdint.h>
#include <string.h>

#include "der.h"
#include "err.h"

/* Encode a DER length into out (at most 5 bytes); returns the byte count, 0 if the length
 * does not fit in 32 bits. */
static size_t
len_bytes(size_t len, unsigned char out[5])
{
	size_t n = 0, i;

	if (len < 0x80) {
		out[0] = (unsigned char)len;
		return 1;
	}
	if (len > 0xFFFFFFFFu)
		return 0;
	for (i = len; i > 0; i >>= 8)
		n++;
	out[0] = (unsigned char)(0x80 | n);
	for (i = n; i > 0; i--, len >>= 8)
		out[i] = (unsigned char)len;
	return n + 1;
}

static void
fail(struct der *d, int err)
{
	if (d->err == ERR_OK)
		d->err = err;
}

/* see der.h */
void
der_init(struct der *d, unsigned char *buf, size_t cap)
{
	d->buf = buf;
	d->cap = buf ? cap : 0;
	d->len = 0;
	d->err = ERR_OK;
}

/* see der.h */
void
der_raw(struct der *d, const void *p, size_t n)
{
	if (d->err != ERR_OK)
		return;
	if (d->buf != NULL) {
		if (n > d->cap - d->len) {
			fail(d, ERR_NOSPACE);
			return;
		}
		if (n > 0)
			memcpy(d->buf + d->len, p, n);
	}
	d->len += n;
}

/* see der.h */
void
der_len(struct der *d, size_t len)
{
	unsigned char b[5];
	size_t n = len_bytes(len, b);

	if (n == 0)
		fail(d, ERR_RANGE);
	der_raw(d, b, n);
}

/* see der.h */
void
der_tlv(struct der *d, unsigned tag, const void *val, size_t n)
{
	unsigned char t = (unsigned char)tag;

	der_raw(d, &t, 1);
	der_len(d, n);
	der_raw(d, val, n);
}

/* see der.h */
void
der_uint(struct der *d, const unsigned char *be, size_t n)
{
	unsigned char t = DER_INTEGER;
	size_t pad;

	while (n > 0 && be[0] == 0) {
		be++;
		n--;
	}
	if (n == 0) {
		der_tlv(d, DER_INTEGER, "", 1);
		return;
	}
	pad = be[0] >> 7;
	der_raw(d, &t, 1);
	der_len(d, n + pad);
	der_raw(d, "", pad);
	der_raw(d, be, n);
}

/* Append v in base 128, high groups first, continuation bit on all but the last. */
static int
put_arc(unsigned char *c, size_t *cl, uint64_t v)
{
	size_t n = 1, i;
	uint64_t t;

	for (t = v >> 7; t > 0; t >>= 7)
		n++;
	if (n > DER_OID_MAX - *cl)
		return ERR_RANGE;
	for (i = n; i > 0; i--, v >>= 7)
		c[*cl + i - 1] = (unsigned char)((v & 0x7F) | (i == n ? 0 : 0x80));
	*cl += n;
	return ERR_OK;
}

/* see der.h */
void
der_oid(struct der *d, const char *dotted)
{
	unsigned char c[DER_OID_MAX];
	size_t cl = 0, idx = 0;
	uint64_t arc, first = 0;
	const char *s = dotted;
	int r;

	for (;;) {
		if (*s < '0' || *s > '9' || (*s == '0' && s[1] >= '0' && s[1] <= '9')) {
			fail(d, ERR_INVAL);
			return;
		}
		for (arc = 0; *s >= '0' && *s <= '9'; s++) {
			arc = arc * 10 + (uint64_t)(*s - '0');
			if (arc > 0xFFFFFFFFu) {
				fail(d, ERR_RANGE);
				return;
			}
		}
		if (idx == 0) {
			if (arc > 2) {
				fail(d, ERR_INVAL);
				return;
			}
			first = arc;
		} else {
			if (idx == 1 && first < 2 && arc >= 40) {
				fail(d, ERR_INVAL);
				return;
			}
			r = put_arc(c, &cl, idx == 1 ? first * 40 + arc : arc);
			if (r != ERR_OK) {
				fail(d, r);
				return;
			}
		}
		idx++;
		if (*s == '\0')
			break;
		if (*s++ != '.') {
			fail(d, ERR_INVAL);
			return;
		}
	}
	if (idx < 2) {
		fail(d, ERR_INVAL);
		return;
	}
	der_tlv(d, DER_OID, c, cl);
}

/* see der.h */
void
der_bits(struct der *d, const void *p, size_t n, unsigned unused)
{
	unsigned char t[2] = { DER_BIT_STRING, 0 };

	if (unused > 7 || (n == 0 && unused != 0)) {
		fail(d, ERR_INVAL);
		return;
	}
	t[1] = (unsigned char)unused;
	der_raw(d, t, 1);
	der_len(d, n + 1);
	der_raw(d, t + 1, 1);
	der_raw(d, p, n);
}

/* PrintableString alphabet (X.680 §41.4). */
static int
printable(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr(" '()+,-./:=?", c) != NULL);
}

/* see der.h */
void
der_str(struct der *d, unsigned tag, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((tag == DER_PRINTABLESTRING && !printable(c)) ||
		    (tag == DER_IA5STRING && c > 0x7F)) {
			fail(d, ERR_INVAL);
			return;
		}
	}
	der_tlv(d, tag, s, n);
}

/* Write v as `digits` decimal digits at out. */
static void
put_dec(char *out, int v, int digits)
{
	while (digits-- > 0) {
		out[digits] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* see der.h */
void
der_time(struct der *d, time_t t)
{
	struct tm tm;
	char s[16];
	int year, n = 0;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		fail(d, ERR_RANGE);
		return;
	}
	year = tm.tm_year + 1900;
	if (year >= 1950 && year < 2050) {
		put_dec(s, year % 100, 2);
		n = 2;
	} else {
		put_dec(s, year, 4);
		n = 4;
	}
	put_dec(s + n, tm.tm_mon + 1, 2);
	put_dec(s + n + 2, tm.tm_mday, 2);
	put_dec(s + n + 4, tm.tm_hour, 2);
	put_dec(s + n + 6, tm.tm_min, 2);
	put_dec(s + n + 8, tm.tm_sec, 2);
	s[n + 10] = 'Z';
	der_tlv(d, n == 2 ? DER_UTCTIME : DER_GENERALIZEDTIME, s, (size_t)n + 11);
}

/* see der.h */
void
der_bool(struct der *d, int v)
{
	der_tlv(d, DER_BOOLEAN, v ? "\xff" : "", 1);
}

/* see der.h */
size_t
der_begin(const struct der *d)
{
	return d->len;
}

/* see der.h */
void
der_end(struct der *d, unsigned tag, size_t mark)
{
	unsigned char h[6];
	size_t n, clen;

	if (d->err != ERR_OK)
		return;
	if (mark > d->len) {
		fail(d, ERR_INVAL);
		return;
	}
	clen = d->len - mark;
	h[0] = (unsigned char)tag;
	n = len_bytes(clen, h + 1);
	if (n == 0) {
		fail(d, ERR_RANGE);
		return;
	}
	n++;
	if (d->buf != NULL) {
		if (n > d->cap - d->len) {
			fail(d, ERR_NOSPACE);
			return;
		}
		memmove(d->buf + mark + n, d->buf + mark, clen);
		memcpy(d->buf + mark, h, n);
	}
	d->len += n;
}

/* see der.h */
int
der_read(const unsigned char *buf, size_t len, size_t *pos, struct der_tlv *t)
{
	size_t p = *pos, n, nb;

	if (p > len || len - p < 2)
		return ERR_TRUNC;
	t->tag = buf[p++];
	if ((t->tag & 0x1F) == 0x1F)
		return ERR_INVAL;
	n = buf[p++];
	if (n & 0x80) {
		nb = n & 0x7F;
		if (nb == 0 || nb > 4)
			return ERR_INVAL;
		if (len - p < nb)
			return ERR_TRUNC;
		if (buf[p] == 0)
			return ERR_INVAL;
		for (n = 0; nb > 0; nb--)
			n = n << 8 | buf[p++];
		if (n < 0x80)
			return ERR_INVAL;
	}
	if (len - p < n)
		return ERR_TRUNC;
	t->val = buf + p;
	t->len = n;
	*pos = p + n;
	return ERR_OK;
}

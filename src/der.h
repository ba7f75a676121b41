/*
 * der.h — a DER writer and a TLV reader, just enough for X.509 minting (RFC 5280).
 *
 * Writing goes through a cursor, struct der, over a caller-owned buffer. Every write is
 * checked against the capacity first; the first failure is remembered in d->err and makes
 * every later call a no-op, so a builder checks once at the end. With buf == NULL nothing
 * is written and d->len counts the bytes that would be (the size-first pass).
 *
 * Constructed values are written content first: der_begin() marks where the content
 * starts, der_end() inserts the tag and length in front of it (shifting the content, which
 * is short). So nesting needs no length computed in advance.
 *
 * Only single-byte tags (number < 31) and lengths below 2^32 are handled, which is all
 * X.509 needs.
 */
#ifndef RELAYPRO_DER_H
#define RELAYPRO_DER_H

#include <stddef.h>
#include <time.h>

#define DER_BOOLEAN 0x01
#define DER_INTEGER 0x02
#define DER_BIT_STRING 0x03
#define DER_OCTET_STRING 0x04
#define DER_NULL 0x05
#define DER_OID 0x06
#define DER_UTF8STRING 0x0C
#define DER_PRINTABLESTRING 0x13
#define DER_IA5STRING 0x16
#define DER_UTCTIME 0x17
#define DER_GENERALIZEDTIME 0x18
#define DER_SEQUENCE 0x30
#define DER_SET 0x31
#define DER_CTX(n) (0xA0 | (n))      /* [n], constructed (EXPLICIT, or IMPLICIT SEQUENCE) */
#define DER_CTX_PRIM(n) (0x80 | (n)) /* [n] IMPLICIT, primitive */

/* Longest OID content der_oid accepts, in bytes. */
#define DER_OID_MAX 32

struct der {
	unsigned char *buf; /* NULL: count only */
	size_t cap;         /* bytes available at buf */
	size_t len;         /* bytes written (or counted) so far */
	int err;            /* first error: ERR_NOSPACE, ERR_INVAL or ERR_RANGE; sticky */
};

/* Start a cursor over buf[0..cap); buf may be NULL to only measure. */
void der_init(struct der *d, unsigned char *buf, size_t cap);

/* Append n raw bytes (an already encoded element). */
void der_raw(struct der *d, const void *p, size_t n);

/* Append a DER length: short form below 128, else 0x8N and N big-endian bytes. */
void der_len(struct der *d, size_t len);

/* Append tag, length and n content bytes (OCTET STRING, NULL, IA5String...). */
void der_tlv(struct der *d, unsigned tag, const void *val, size_t n);

/* Append an INTEGER holding the unsigned big-endian number be[0..n): leading zeros are
 * dropped and a 0x00 is put in front when the top bit is set, so the value stays positive
 * and the encoding minimal. n == 0 encodes zero. */
void der_uint(struct der *d, const unsigned char *be, size_t n);

/* Append an OBJECT IDENTIFIER given in dotted form ("2.5.29.17"). Malformed text: ERR_INVAL;
 * an arc beyond 32 bits or content beyond DER_OID_MAX: ERR_RANGE. */
void der_oid(struct der *d, const char *dotted);

/* Append a BIT STRING of n bytes whose last `unused` (0..7) bits are not part of it. */
void der_bits(struct der *d, const void *p, size_t n, unsigned unused);

/* Append a string with the given tag. PrintableString and IA5String contents are checked
 * against their alphabets (ERR_INVAL); UTF8String contents are the caller's to get right. */
void der_str(struct der *d, unsigned tag, const char *s, size_t n);

/* Append a Time as RFC 5280 §4.1.2.5 wants: UTCTime (YYMMDDHHMMSSZ) for years 1950..2049,
 * GeneralizedTime (YYYYMMDDHHMMSSZ) otherwise. Years beyond 0..9999: ERR_RANGE. */
void der_time(struct der *d, time_t t);

/* Append a BOOLEAN (TRUE is 0xFF in DER). */
void der_bool(struct der *d, int v);

/* Mark the start of a constructed value's content; pass the mark to der_end. */
size_t der_begin(const struct der *d);

/* Close the value begun at mark: put tag and length in front of its content. */
void der_end(struct der *d, unsigned tag, size_t mark);

/* One element read by der_read. */
struct der_tlv {
	unsigned tag;
	const unsigned char *val; /* content, inside the caller's buffer */
	size_t len;               /* content length */
};

/* Read the element at buf[*pos] (buf holds len bytes) and move *pos past it. Returns
 * ERR_OK, ERR_TRUNC (the element runs past len) or ERR_INVAL (multi-byte tag, indefinite
 * or non-minimal length, length over 2^32). */
int der_read(const unsigned char *buf, size_t len, size_t *pos, struct der_tlv *t);

#endif

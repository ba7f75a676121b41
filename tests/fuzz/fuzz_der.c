/*
 * fuzz_der.c — the DER writer and reader (der.c).
 *
 * Byte 0, bit 0 clear: the input is a little program that builds a structure with the
 * writer (constructed values nested up to 8 deep, INTEGERs, OIDs from text, BIT
 * STRINGs, strings, times, booleans, plain TLVs). It is run twice, counting (buf NULL)
 * and writing: both must agree on length and error. A structure written without error
 * is read back with der_read: the same tags in the same order, constructed values
 * holding exactly their children, minimal INTEGERs, every length consumed; the
 * certificate-shaped ones go to BearSSL's X.509 decoder too (it must not misbehave).
 * Bit 0 set: the rest is read with der_read, descending into constructed values.
 */
#include <stdio.h>
#include <string.h>

#include <bearssl.h>

#include "der.h"
#include "err.h"
#include "fuzz.h"

#define OUT_MAX 16384
#define EV_MAX 512

static const unsigned ctags[] = { DER_SEQUENCE, DER_SET, DER_CTX(0), DER_CTX(3) };
static const unsigned ptags[] = { DER_OCTET_STRING, DER_NULL, DER_IA5STRING, DER_CTX_PRIM(2) };
static const unsigned stags[] = { DER_PRINTABLESTRING, DER_IA5STRING, DER_UTF8STRING };

/* Tags in the order they start (pre-order), as written. */
static unsigned ev[EV_MAX];
static size_t nev;
static int ev_over;

static size_t
take(const uint8_t **p, const uint8_t *end, size_t want)
{
	size_t left = (size_t)(end - *p);
	return want < left ? want : left;
}

static void
build(struct der *d, const uint8_t *p, const uint8_t *end, int record)
{
	size_t marks[8];
	unsigned mtags[8];
	size_t mev[8];
	int depth = 0;

	nev = 0;
	ev_over = 0;
	while (p < end) {
		unsigned op = *p++ % 10;
		unsigned arg = p < end ? *p++ : 0;
		size_t n;
		unsigned tag = 0;
		switch (op) {
		case 0:
			if (depth == 8)
				break;
			mtags[depth] = ctags[arg % 4];
			mev[depth] = nev;
			marks[depth++] = der_begin(d);
			tag = mtags[depth - 1];
			break;
		case 1:
			if (depth == 0)
				break;
			depth--;
			der_end(d, mtags[depth], marks[depth]);
			break;
		case 2:
			n = take(&p, end, arg);
			tag = ptags[arg % 4];
			der_tlv(d, tag, p, n);
			p += n;
			break;
		case 3:
			n = take(&p, end, arg % 40);
			der_uint(d, p, n);
			p += n;
			tag = DER_INTEGER;
			break;
		case 4: {
			char oid[64];
			n = take(&p, end, arg % 48);
			memcpy(oid, p, n);
			oid[n] = 0;
			p += n;
			der_oid(d, oid);
			tag = DER_OID;
			break;
		}
		case 5:
			n = take(&p, end, arg / 8);
			der_bits(d, p, n, arg % 8);
			p += n;
			tag = DER_BIT_STRING;
			break;
		case 6:
			n = take(&p, end, arg / 3);
			der_str(d, stags[arg % 3], (const char *)p, n);
			p += n;
			tag = stags[arg % 3];
			break;
		case 7: {
			int64_t t = 0;
			n = take(&p, end, 8);
			memcpy(&t, p, n);
			p += n;
			t = (int64_t)((uint64_t)t >> (arg % 64)) * ((arg & 1) ? -1 : 1);
			der_time(d, (time_t)t);
			tag = DER_UTCTIME; /* or GeneralizedTime: checked by the reader */
			break;
		}
		case 8:
			der_bool(d, arg & 1);
			tag = DER_BOOLEAN;
			break;
		default:
			break;
		}
		if (tag && record && nev < EV_MAX)
			ev[nev++] = tag;
		else if (tag && record)
			ev_over = 1; /* too many to check the order; still written whole */
	}
	while (depth > 0) {
		depth--;
		der_end(d, mtags[depth], marks[depth]);
	}
	(void)mev;
}

static size_t seen;

/* Read buf[0..len) as a sequence of elements, descending into constructed ones. */
static void
walk(const unsigned char *buf, size_t len, int check, int level)
{
	size_t pos = 0;
	struct der_tlv t;

	while (pos < len) {
		size_t before = pos;
		int rc = der_read(buf, len, &pos, &t);
		if (check)
			FUZZ_ASSERT(rc == ERR_OK);
		if (rc != ERR_OK)
			return;
		FUZZ_ASSERT(pos > before && pos <= len && t.val >= buf + before && t.val + t.len == buf + pos);
		if (check) {
			FUZZ_ASSERT(seen < nev);
			if (ev[seen] == DER_UTCTIME) {
				FUZZ_ASSERT(t.tag == DER_UTCTIME || t.tag == DER_GENERALIZEDTIME);
				FUZZ_ASSERT(t.len == (t.tag == DER_UTCTIME ? 13u : 15u) && t.val[t.len - 1] == 'Z');
			} else {
				FUZZ_ASSERT(t.tag == ev[seen]);
			}
			if (t.tag == DER_INTEGER) {
				FUZZ_ASSERT(t.len >= 1 && !(t.val[0] & 0x80));
				FUZZ_ASSERT(t.len == 1 || t.val[0] != 0 || (t.val[1] & 0x80));
			}
			if (t.tag == DER_BOOLEAN)
				FUZZ_ASSERT(t.len == 1 && (t.val[0] == 0 || t.val[0] == 0xFF));
			if (t.tag == DER_BIT_STRING)
				FUZZ_ASSERT(t.len >= 1 && t.val[0] < 8 && (t.len > 1 || t.val[0] == 0));
			seen++;
		}
		if ((t.tag & 0x20) && level < 64)
			walk(t.val, t.len, check, level + 1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char out[OUT_MAX];
	struct der count, d;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		seen = nev = 0;
		walk(data + 1, size - 1, 0, 0);
		return 0;
	}
	der_init(&count, NULL, 0);
	build(&count, data + 1, data + size, 0);
	der_init(&d, out, sizeof out);
	build(&d, data + 1, data + size, 1);
	FUZZ_ASSERT(d.len <= sizeof out);
	if (count.err == ERR_OK && count.len <= sizeof out)
		FUZZ_ASSERT(d.err == ERR_OK && d.len == count.len);
	if (d.err == ERR_OK) {
		FUZZ_ASSERT(count.err == ERR_OK && count.len == d.len);
		if (!ev_over) {
			seen = 0;
			walk(out, d.len, 1, 0);
			FUZZ_ASSERT(seen == nev);
		}
		if (d.len > 0 && out[0] == DER_SEQUENCE) {
			br_x509_decoder_context xc;
			br_x509_decoder_init(&xc, NULL, NULL);
			br_x509_decoder_push(&xc, out, d.len);
			(void)br_x509_decoder_get_pkey(&xc);
			(void)br_x509_decoder_last_error(&xc);
		}
	}
	/* Too small by one byte: the writer must say so, never write past cap. */
	if (d.err == ERR_OK && d.len > 0) {
		der_init(&d, out, count.len - 1);
		build(&d, data + 1, data + size, 0);
		FUZZ_ASSERT(d.err == ERR_NOSPACE && d.len <= count.len - 1);
	}
	return 0;
}

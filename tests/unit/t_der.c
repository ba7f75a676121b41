/*
 * t_der.c — DER writer and reader: known encodings (X.690, RFC 5280 times), the size-only
 * pass agreeing with the writing pass, bounds, and hostile input to the reader.
 */
#include <stdio.h>
#include <string.h>

#include "der.h"
#include "err.h"
#include "test.h"

/* Run op once measuring and once writing; expect hex (or the error err). */
static void
run(void (*op)(struct der *, const void *), const void *arg, const char *hex, int err,
    const char *name)
{
	unsigned char out[320], want[320];
	struct der d, m;
	size_t n = t_unhex(hex, want, sizeof want), i;
	int ok;

	der_init(&m, NULL, 0);
	op(&m, arg);
	der_init(&d, out, sizeof out);
	op(&d, arg);
	if (err != ERR_OK) {
		CHECK(d.err == err && m.err == err, name);
		return;
	}
	ok = d.err == ERR_OK && m.err == ERR_OK && d.len == n && m.len == n &&
	    memcmp(out, want, n) == 0;
	CHECK(ok, name);
	if (!ok) {
		printf("     err %d/%d, got ", d.err, m.err);
		for (i = 0; i < d.len; i++)
			printf("%02x", out[i]);
		printf("\n");
	}
}

static void
op_len(struct der *d, const void *arg)
{
	der_len(d, *(const size_t *)arg);
}

static void
op_uint(struct der *d, const void *arg)
{
	unsigned char b[32];
	size_t n = t_unhex(arg, b, sizeof b);

	der_uint(d, b, n);
}

static void
op_oid(struct der *d, const void *arg)
{
	der_oid(d, arg);
}

static void
op_time(struct der *d, const void *arg)
{
	der_time(d, *(const time_t *)arg);
}

static void
op_printable(struct der *d, const void *arg)
{
	der_str(d, DER_PRINTABLESTRING, arg, strlen(arg));
}

static void
op_ia5(struct der *d, const void *arg)
{
	der_str(d, DER_IA5STRING, arg, strlen(arg));
}

static void
op_utf8(struct der *d, const void *arg)
{
	der_str(d, DER_UTF8STRING, arg, strlen(arg));
}

static void
op_misc(struct der *d, const void *arg)
{
	int which = *(const int *)arg;
	size_t m, k;
	unsigned char big[200];

	switch (which) {
	case 0: der_bool(d, 1); break;
	case 1: der_bool(d, 0); break;
	case 2: der_tlv(d, DER_NULL, NULL, 0); break;
	case 3: der_tlv(d, DER_OCTET_STRING, "ab", 2); break;
	case 4: der_bits(d, "\x06", 1, 1); break;
	case 5: der_bits(d, NULL, 0, 0); break;
	case 6: der_bits(d, "\x80", 1, 8); break;
	case 7: /* SEQUENCE { INTEGER 1, SEQUENCE {} } */
		m = der_begin(d);
		der_uint(d, (const unsigned char *)"\x01", 1);
		k = der_begin(d);
		der_end(d, DER_SEQUENCE, k);
		der_end(d, DER_SEQUENCE, m);
		break;
	case 8: /* [3] { SET { } } and a [0] primitive */
		m = der_begin(d);
		k = der_begin(d);
		der_end(d, DER_SET, k);
		der_end(d, DER_CTX(3), m);
		der_tlv(d, DER_CTX_PRIM(0), "\x01", 1);
		break;
	case 9: /* SEQUENCE of 200 bytes: the header grows to 3 bytes in front */
		memset(big, 0xAB, sizeof big);
		m = der_begin(d);
		der_raw(d, big, 3);
		der_raw(d, big, sizeof big - 3);
		der_end(d, DER_SEQUENCE, m);
		break;
	}
}

static const struct {
	size_t len;
	const char *hex;
} lens[] = {
	{ 0, "00" }, { 1, "01" }, { 127, "7f" }, { 128, "8180" }, { 255, "81ff" },
	{ 256, "820100" }, { 65535, "82ffff" }, { 65536, "83010000" },
	{ 0xFFFFFFFFu, "84ffffffff" },
};

static const struct {
	const char *in, *hex;
} uints[] = {
	{ "", "020100" },           /* empty: zero */
	{ "00", "020100" },         /* zero */
	{ "000000", "020100" },     /* zeros stripped down to one */
	{ "7f", "02017f" },         /* 127 */
	{ "80", "02020080" },       /* 128: top bit set, 0x00 in front */
	{ "ff", "020200ff" },       /* 255 */
	{ "0100", "02020100" },     /* 256 */
	{ "000080", "02020080" },   /* leading zeros stripped, then the sign byte */
	{ "00007f", "02017f" },
	{ "ffff", "020300ffff" },
	{ "8000000000000000000000000000000000", "0212008000000000000000000000000000000000" },
	{ "40112233445566778899aabbccddeeff", "021040112233445566778899aabbccddeeff" },
};

static const struct {
	const char *dotted, *hex;
	int err;
} oids[] = {
	{ "1.2.840.113549.1.1.11", "06092a864886f70d01010b", 0 },
	{ "1.2.840.113549.1.1.1", "06092a864886f70d010101", 0 },
	{ "2.5.29.17", "0603551d11", 0 },
	{ "2.5.4.3", "0603550403", 0 },
	{ "1.2.840.10045.3.1.7", "06082a8648ce3d030107", 0 },
	{ "1.3.6.1.5.5.7.3.1", "06082b06010505070301", 0 },
	{ "0.0", "060100", 0 },
	{ "1.39", "06014f", 0 },
	{ "2.999.3", "0603883703", 0 },             /* second arc of 2 may exceed 39 */
	{ "1.2.4294967295", "06062a8fffffff7f", 0 }, /* largest arc */
	{ "", NULL, ERR_INVAL },
	{ "1", NULL, ERR_INVAL },
	{ "3.1", NULL, ERR_INVAL },
	{ "1.40", NULL, ERR_INVAL },
	{ "1..2", NULL, ERR_INVAL },
	{ "1.2.", NULL, ERR_INVAL },
	{ ".1.2", NULL, ERR_INVAL },
	{ "01.2", NULL, ERR_INVAL },
	{ "1.02", NULL, ERR_INVAL },
	{ "1.2a", NULL, ERR_INVAL },
	{ "1.-2", NULL, ERR_INVAL },
	{ "1.2.4294967296", NULL, ERR_RANGE },
	{ "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31"
	  ".32.33.34", NULL, ERR_RANGE },
};

static const struct {
	time_t t;
	const char *hex;
	int err;
} times[] = {
	{ 0, "170d3730303130313030303030305a", 0 },                 /* 700101000000Z */
	{ 1709210096, "170d3234303232393132333435365a", 0 },        /* 240229123456Z */
	{ 2524607999, "170d3439313233313233353935395a", 0 },        /* 491231235959Z */
	{ 2524608000, "180f32303530303130313030303030305a", 0 },    /* 20500101000000Z */
	{ -631152000, "170d3530303130313030303030305a", 0 },        /* 500101000000Z */
	{ -631152001, "180f31393439313233313233353935395a", 0 },    /* 19491231235959Z */
	{ 253402300799, "180f39393939313233313233353935395a", 0 },  /* 99991231235959Z */
	{ 253402300800, NULL, ERR_RANGE },                          /* year 10000 */
};

static void
writer(void)
{
	size_t i;
	int k;
	static const int misc_ok[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9 };
	static const char *const misc_hex[] = {
		"0101ff", "010100", "0500", "04026162", "03020106", "030100", "",
		"3005020101" "3000", "a3023100" "800101", NULL,
	};
	char big[2 * 203 + 1];

	for (i = 0; i < sizeof lens / sizeof lens[0]; i++)
		run(op_len, &lens[i].len, lens[i].hex, 0, lens[i].hex);
	for (i = 0; i < sizeof uints / sizeof uints[0]; i++)
		run(op_uint, uints[i].in, uints[i].hex, 0, uints[i].hex);
	for (i = 0; i < sizeof oids / sizeof oids[0]; i++)
		run(op_oid, oids[i].dotted, oids[i].hex ? oids[i].hex : "", oids[i].err,
		    oids[i].dotted);
	for (i = 0; i < sizeof times / sizeof times[0]; i++)
		run(op_time, &times[i].t, times[i].hex ? times[i].hex : "", times[i].err,
		    times[i].hex ? times[i].hex : "time out of range");

	run(op_printable, "Ab 1'()+,-./:=?", "130f41622031272829" "2b2c2d2e2f3a3d3f", 0,
	    "PrintableString");
	run(op_printable, "a@b", "", ERR_INVAL, "PrintableString refuses @");
	run(op_printable, "*.example", "", ERR_INVAL, "PrintableString refuses *");
	run(op_ia5, "*.a_b", "16052a2e615f62", 0, "IA5String");
	run(op_ia5, "\xc3\xa9", "", ERR_INVAL, "IA5String refuses 8-bit");
	run(op_utf8, "relaypro CA \xc3\xa9", "0c0e72656c617970726f20434120c3a9", 0, "UTF8String");

	for (i = 0; i < sizeof misc_ok / sizeof misc_ok[0]; i++) {
		k = misc_ok[i];
		if (k == 9) {
			strcpy(big, "3081c8");
			for (size_t j = 0; j < 200; j++)
				strcat(big, "ab");
			run(op_misc, &k, big, 0, "long SEQUENCE header inserted in front");
		} else {
			run(op_misc, &k, misc_hex[k], 0, misc_hex[k]);
		}
	}
	k = 6;
	run(op_misc, &k, "", ERR_INVAL, "BIT STRING with 8 unused bits");
}

static void
bounds(void)
{
	unsigned char buf[16];
	struct der d;
	size_t m;

	/* a write that does not fit leaves the bytes past cap alone and sticks */
	memset(buf, 0xEE, sizeof buf);
	der_init(&d, buf, 5);
	der_tlv(&d, DER_OCTET_STRING, "abcd", 4);
	CHECK_INT(d.err, ERR_NOSPACE, "OCTET STRING past cap: ERR_NOSPACE");
	CHECK(buf[5] == 0xEE && buf[6] == 0xEE, "nothing written past cap");
	der_bool(&d, 1);
	CHECK_INT(d.err, ERR_NOSPACE, "error is sticky");

	/* content fits, the header that der_end inserts does not */
	memset(buf, 0xEE, sizeof buf);
	der_init(&d, buf, 4);
	m = der_begin(&d);
	der_raw(&d, "abc", 3);
	der_end(&d, DER_SEQUENCE, m);
	CHECK_INT(d.err, ERR_NOSPACE, "header past cap: ERR_NOSPACE");
	CHECK(buf[4] == 0xEE, "der_end wrote nothing past cap");

	/* exactly full is fine */
	der_init(&d, buf, 5);
	m = der_begin(&d);
	der_raw(&d, "abc", 3);
	der_end(&d, DER_SEQUENCE, m);
	CHECK(d.err == ERR_OK && d.len == 5 && memcmp(buf, "\x30\x03" "abc", 5) == 0,
	    "exactly full");

	/* measuring never fails for space */
	der_init(&d, NULL, 0);
	der_raw(&d, buf, sizeof buf);
	CHECK(d.err == ERR_OK && d.len == sizeof buf, "measure-only pass counts");

	der_init(&d, buf, sizeof buf);
	der_end(&d, DER_SEQUENCE, 3);
	CHECK_INT(d.err, ERR_INVAL, "der_end with a mark past the end");
}

static void
reader(void)
{
	static const struct {
		const char *hex;
		int err;
		unsigned tag;
		size_t len;
	} cases[] = {
		{ "3003020105", 0, 0x30, 3 },
		{ "0400", 0, 0x04, 0 },
		{ "04817f", ERR_INVAL, 0, 0 },       /* long form for a short length */
		{ "048200ff", ERR_INVAL, 0, 0 },     /* leading zero in the length */
		{ "3080", ERR_INVAL, 0, 0 },         /* indefinite */
		{ "3085ffffffffff", ERR_INVAL, 0, 0 },/* length over 32 bits */
		{ "1f0100", ERR_INVAL, 0, 0 },       /* multi-byte tag */
		{ "30050201", ERR_TRUNC, 0, 0 },
		{ "0481", ERR_TRUNC, 0, 0 },
		{ "048201", ERR_TRUNC, 0, 0 },
		{ "30", ERR_TRUNC, 0, 0 },
		{ "", ERR_TRUNC, 0, 0 },
		{ "0484ffffffff00", ERR_TRUNC, 0, 0 },
	};
	unsigned char b[300];
	struct der_tlv t;
	size_t i, n, pos;
	int r;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		n = t_unhex(cases[i].hex, b, sizeof b);
		pos = 0;
		r = der_read(b, n, &pos, &t);
		if (cases[i].err != ERR_OK)
			CHECK(r == cases[i].err && pos == 0, cases[i].hex);
		else
			CHECK(r == ERR_OK && t.tag == cases[i].tag && t.len == cases[i].len &&
			    pos == n && t.val == b + n - t.len, cases[i].hex);
	}
	/* a 256-byte OCTET STRING, then a second element */
	b[0] = 0x04, b[1] = 0x82, b[2] = 0x01, b[3] = 0x00;
	memset(b + 4, 0x5A, 256);
	b[260] = 0x05, b[261] = 0x00;
	pos = 0;
	r = der_read(b, 262, &pos, &t);
	CHECK(r == ERR_OK && t.len == 256 && pos == 260, "long-form length 256");
	r = der_read(b, 262, &pos, &t);
	CHECK(r == ERR_OK && t.tag == DER_NULL && pos == 262, "next element");
	r = der_read(b, 262, &pos, &t);
	CHECK_INT(r, ERR_TRUNC, "at the end: ERR_TRUNC");
	pos = 300;
	CHECK_INT(der_read(b, 262, &pos, &t), ERR_TRUNC, "position past the end");
}

void
t_der(void)
{
	writer();
	bounds();
	reader();
}

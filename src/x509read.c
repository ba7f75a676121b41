/*
 * x509read.c — reading X.509 certificates far enough to check a chain. See x509read.h.
 */
#include <stdio.h>
#include <string.h>

#include <bearssl.h>

#include "der.h"
#include "err.h"
#include "units.h"
#include "x509read.h"

static int
digits(const unsigned char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* see x509read.h */
int
x509read_time(unsigned tag, const unsigned char *s, size_t n, int64_t *t)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, leap;

	if (tag == DER_UTCTIME && n == 13) {
		y = digits(s, 2);
		y = y < 0 ? -1 : y < 50 ? 2000 + y : 1900 + y;
		s += 2;
	} else if (tag == DER_GENERALIZEDTIME && n == 15) {
		y = digits(s, 4);
		s += 4;
	} else {
		return ERR_INVAL;
	}
	mo = digits(s, 2);
	d = digits(s + 2, 2);
	h = digits(s + 4, 2);
	mi = digits(s + 6, 2);
	sec = digits(s + 8, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    sec < 0 || sec > 59 || s[10] != 'Z')
		return ERR_INVAL;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return ERR_INVAL;
	*t = units_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
	return ERR_OK;
}

/* see x509read.h */
int
x509read_cert(const unsigned char *der, size_t len, struct x509read_cert *v)
{
	struct der_tlv c, tbs, x, alg, sig, nb, na;
	size_t p = 0, q = 0, r = 0, start;
	int i = 0;

	memset(v, 0, sizeof *v);
	if (der_read(der, len, &p, &c) != ERR_OK || c.tag != DER_SEQUENCE || p != len)
		return ERR_INVAL;
	if (der_read(c.val, c.len, &q, &tbs) != ERR_OK || tbs.tag != DER_SEQUENCE)
		return ERR_INVAL;
	v->tbs = c.val;
	v->tbs_len = q;
	/* serialNumber is field 0 (after the optional version), then signature (1), issuer
	 * (2), validity (3), subject (4), subjectPublicKeyInfo (5) */
	while (r < tbs.len && i < 6) {
		start = r;
		if (der_read(tbs.val, tbs.len, &r, &x) != ERR_OK)
			return ERR_INVAL;
		if (i == 0 && x.tag == DER_CTX(0))
			continue; /* version */
		if (i == 2 || i == 4) {
			if (x.tag != DER_SEQUENCE)
				return ERR_INVAL;
			if (i == 2) {
				v->issuer = tbs.val + start;
				v->issuer_len = r - start;
			} else {
				v->subject = tbs.val + start;
				v->subject_len = r - start;
			}
		}
		if (i == 3) {
			size_t k = 0;
			if (x.tag != DER_SEQUENCE || der_read(x.val, x.len, &k, &nb) != ERR_OK ||
			    der_read(x.val, x.len, &k, &na) != ERR_OK || k != x.len ||
			    x509read_time(nb.tag, nb.val, nb.len, &v->not_before) != ERR_OK ||
			    x509read_time(na.tag, na.val, na.len, &v->not_after) != ERR_OK)
				return ERR_INVAL;
		}
		i++;
	}
	if (i < 6)
		return ERR_INVAL;
	r = 0;
	if (der_read(c.val, c.len, &q, &alg) != ERR_OK || alg.tag != DER_SEQUENCE ||
	    der_read(alg.val, alg.len, &r, &x) != ERR_OK || x.tag != DER_OID)
		return ERR_INVAL;
	v->alg = x.val;
	v->alg_len = x.len;
	if (der_read(c.val, c.len, &q, &sig) != ERR_OK || sig.tag != DER_BIT_STRING ||
	    q != c.len || sig.len < 2 || sig.val[0] != 0)
		return ERR_INVAL;
	v->sig = sig.val + 1;
	v->sig_len = sig.len - 1;
	return ERR_OK;
}

/* see x509read.h */
void
x509read_name(const unsigned char *name, size_t len, char *out, size_t cap)
{
	struct der_tlv seq, set, atv, oid, val;
	size_t p = 0, q = 0, r, s, i, o;

	snprintf(out, cap, "no common name");
	if (cap < 8 || der_read(name, len, &p, &seq) != ERR_OK)
		return;
	while (q < seq.len && der_read(seq.val, seq.len, &q, &set) == ERR_OK) {
		for (r = 0; r < set.len && der_read(set.val, set.len, &r, &atv) == ERR_OK;) {
			s = 0;
			if (atv.tag != DER_SEQUENCE || der_read(atv.val, atv.len, &s, &oid) != ERR_OK ||
			    der_read(atv.val, atv.len, &s, &val) != ERR_OK || oid.tag != DER_OID ||
			    oid.len != 3 || memcmp(oid.val, "\x55\x04\x03", 3) != 0)
				continue;
			memcpy(out, "CN=", 3);
			for (i = 0, o = 3; i < val.len && o + 1 < cap; i++)
				out[o++] = val.val[i] >= 0x20 && val.val[i] < 0x7f ? (char)val.val[i] : '?';
			out[o] = 0;
			return;
		}
	}
}

/* Hash for a signature algorithm OID: 1 = RSA PKCS#1 v1.5, 2 = ECDSA, 0 = not checked. */
static int
sig_hash(const unsigned char *oid, size_t len, const br_hash_class **h, const unsigned char **hoid)
{
	static const unsigned char rsa[] = { 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01 };
	static const unsigned char ecdsa[] = { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04 };

	if (len == sizeof rsa + 1 && memcmp(oid, rsa, sizeof rsa) == 0) {
		switch (oid[sizeof rsa]) {
		case 0x05: *h = &br_sha1_vtable; *hoid = BR_HASH_OID_SHA1; return 1;
		case 0x0E: *h = &br_sha224_vtable; *hoid = BR_HASH_OID_SHA224; return 1;
		case 0x0B: *h = &br_sha256_vtable; *hoid = BR_HASH_OID_SHA256; return 1;
		case 0x0C: *h = &br_sha384_vtable; *hoid = BR_HASH_OID_SHA384; return 1;
		case 0x0D: *h = &br_sha512_vtable; *hoid = BR_HASH_OID_SHA512; return 1;
		}
		return 0;
	}
	if (len == sizeof ecdsa + 1 && memcmp(oid, ecdsa, sizeof ecdsa) == 0 && oid[6] == 0x01) {
		*h = &br_sha1_vtable;
		return 2;
	}
	if (len == sizeof ecdsa + 2 && memcmp(oid, ecdsa, sizeof ecdsa) == 0 && oid[6] == 0x03) {
		switch (oid[7]) {
		case 0x01: *h = &br_sha224_vtable; return 2;
		case 0x02: *h = &br_sha256_vtable; return 2;
		case 0x03: *h = &br_sha384_vtable; return 2;
		case 0x04: *h = &br_sha512_vtable; return 2;
		}
	}
	return 0;
}

/* see x509read.h */
int
x509read_signed_by(const struct x509read_cert *child, const br_x509_pkey *issuer)
{
	const br_hash_class *h = NULL;
	const unsigned char *hoid = NULL;
	br_hash_compat_context hc;
	unsigned char hash[64], out[64];
	size_t hlen;
	int kind = sig_hash(child->alg, child->alg_len, &h, &hoid);

	if (kind == 0)
		return -1;
	h->init(&hc.vtable);
	h->update(&hc.vtable, child->tbs, child->tbs_len);
	h->out(&hc.vtable, hash);
	hlen = (h->desc >> BR_HASHDESC_OUT_OFF) & BR_HASHDESC_OUT_MASK;
	if (kind == 1)
		return issuer->key_type == BR_KEYTYPE_RSA &&
		    br_rsa_pkcs1_vrfy_get_default()(child->sig, child->sig_len, hoid, hlen,
		    &issuer->key.rsa, out) && memcmp(out, hash, hlen) == 0;
	return issuer->key_type == BR_KEYTYPE_EC &&
	    br_ecdsa_vrfy_asn1_get_default()(br_ec_get_default(), hash, hlen, &issuer->key.ec,
	    child->sig, child->sig_len) == 1;
}

/* see x509read.h */
int
x509read_pubkey(const unsigned char *der, size_t len, struct x509read_pubkey *k)
{
	static br_x509_decoder_context xc; /* about 1.5 KiB: kept off the stack */
	const br_x509_pkey *pk;
	int e;

	br_x509_decoder_init(&xc, NULL, NULL);
	br_x509_decoder_push(&xc, der, len);
	pk = br_x509_decoder_get_pkey(&xc);
	if (pk == NULL) {
		e = br_x509_decoder_last_error(&xc);
		return e ? e : ERR_INVAL;
	}
	k->pk = *pk;
	k->signer_key_type = br_x509_decoder_get_signer_key_type(&xc);
	if (pk->key_type == BR_KEYTYPE_RSA && pk->key.rsa.nlen + pk->key.rsa.elen <= sizeof k->buf) {
		memcpy(k->buf, pk->key.rsa.n, pk->key.rsa.nlen);
		memcpy(k->buf + pk->key.rsa.nlen, pk->key.rsa.e, pk->key.rsa.elen);
		k->pk.key.rsa.n = k->buf;
		k->pk.key.rsa.e = k->buf + pk->key.rsa.nlen;
	} else if (pk->key_type == BR_KEYTYPE_EC && pk->key.ec.qlen <= sizeof k->buf) {
		memcpy(k->buf, pk->key.ec.q, pk->key.ec.qlen);
		k->pk.key.ec.q = k->buf;
	} else {
		return BR_ERR_X509_UNSUPPORTED;
	}
	return ERR_OK;
}

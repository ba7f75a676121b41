/*
 * t_x509.c — minted certificates read back with BearSSL's decoder (subject, key type,
 * isCA), walked with the DER reader (extensions, serial), and the server certificate
 * validated against the CA with br_x509_minimal at fixed times, either side of 2050 so
 * both UTCTime and GeneralizedTime are exercised.
 */
#include <string.h>

#include <bearssl.h>

#include "ca.h"
#include "der.h"
#include "err.h"
#include "test.h"
#include "x509.h"

#define DAY 86400
#define T0 ((time_t)2506204800) /* 2049-06-02 00:00:00 UTC */

static struct ca ca;
static struct x509_server srv, srv2;

struct dn {
	unsigned char b[512];
	size_t n;
};

static void
dn_add(void *ctx, const void *p, size_t n)
{
	struct dn *d = ctx;

	if (n <= sizeof d->b - d->n) {
		memcpy(d->b + d->n, p, n);
		d->n += n;
	}
}

/* Validate one certificate against the CA at time `at` for server name `name` (NULL: no
 * name check). Returns BearSSL's error code, 0 when valid. */
static int
validate(const unsigned char *cert, size_t len, const char *name, time_t at)
{
	br_x509_minimal_context xc;
	br_x509_trust_anchor ta;
	const br_x509_class **vt = &xc.vtable;

	memset(&ta, 0, sizeof ta);
	ta.dn.data = ca.name;
	ta.dn.len = ca.name_len;
	ta.flags = BR_X509_TA_CA;
	ta.pkey.key_type = BR_KEYTYPE_RSA;
	ta.pkey.key.rsa.n = ca.pk.n;
	ta.pkey.key.rsa.nlen = ca.pk.nlen;
	ta.pkey.key.rsa.e = ca.pk.e;
	ta.pkey.key.rsa.elen = ca.pk.elen;
	br_x509_minimal_init_full(&xc, &ta, 1);
	br_x509_minimal_set_time(&xc, (uint32_t)(at / DAY + 719528), (uint32_t)(at % DAY));
	(*vt)->start_chain(vt, name);
	(*vt)->start_cert(vt, (uint32_t)len);
	(*vt)->append(vt, cert, len);
	(*vt)->end_cert(vt);
	return (int)(*vt)->end_chain(vt);
}

/* Fields of the TBSCertificate, by position after the version: 0 serial ... 5 SPKI. */
static int
tbs_field(const unsigned char *cert, size_t len, int want, struct der_tlv *out)
{
	struct der_tlv c, tbs;
	size_t p = 0;
	int i = 0;

	if (der_read(cert, len, &p, &c) != ERR_OK)
		return -1;
	p = 0;
	if (der_read(c.val, c.len, &p, &tbs) != ERR_OK)
		return -1;
	for (p = 0; p < tbs.len;) {
		if (der_read(tbs.val, tbs.len, &p, out) != ERR_OK)
			return -1;
		if (out->tag == DER_CTX(0) && i == 0)
			continue;
		if (i++ == want)
			return 0;
	}
	return -1;
}

/* The extnValue of the extension whose OID content is oid (n bytes); *crit set. */
static int
find_ext(const unsigned char *cert, size_t len, const char *oid, size_t n, struct der_tlv *val,
    int *crit)
{
	struct der_tlv x, seq, ext, f;
	size_t p = 0, q, r;

	if (tbs_field(cert, len, 6, &x) != 0 || x.tag != DER_CTX(3) ||
	    der_read(x.val, x.len, &p, &seq) != ERR_OK)
		return -1;
	for (q = 0; q < seq.len;) {
		r = 0;
		if (der_read(seq.val, seq.len, &q, &ext) != ERR_OK ||
		    der_read(ext.val, ext.len, &r, &f) != ERR_OK)
			return -1;
		if (f.len != n || memcmp(f.val, oid, n) != 0)
			continue;
		if (der_read(ext.val, ext.len, &r, &f) != ERR_OK)
			return -1;
		*crit = f.tag == DER_BOOLEAN && f.len == 1 && f.val[0] == 0xFF;
		if (f.tag == DER_BOOLEAN && der_read(ext.val, ext.len, &r, &f) != ERR_OK)
			return -1;
		*val = f;
		return f.tag == DER_OCTET_STRING ? 0 : -1;
	}
	return -1;
}

/* extnValue equals the given bytes, with the given criticality. */
static void
ext_is(const struct x509_server *s, const char *oid, const char *want, size_t n, int crit,
    const char *name)
{
	struct der_tlv v;
	int c = -1;

	CHECK(find_ext(s->cert, s->cert_len, oid, 3, &v, &c) == 0 && c == crit && v.len == n &&
	    memcmp(v.val, want, n) == 0, name);
}

static void
ca_cert(void)
{
	static const char name[] = "\x30\x21\x31\x1f\x30\x1d\x06\x03\x55\x04\x03\x0c\x16"
	    "relaypro CA test-relay";
	br_x509_decoder_context xc;
	const br_x509_pkey *pk;
	struct dn dn = { .n = 0 };
	unsigned char small[100];
	size_t len = 0;

	br_x509_decoder_init(&xc, dn_add, &dn);
	br_x509_decoder_push(&xc, ca.cert, ca.cert_len);
	pk = br_x509_decoder_get_pkey(&xc);
	CHECK(pk != NULL, "CA certificate decodes");
	CHECK(br_x509_decoder_isCA(&xc), "CA certificate is a CA");
	CHECK(pk && pk->key_type == BR_KEYTYPE_RSA && pk->key.rsa.nlen == 256,
	    "CA key is RSA 2048");
	CHECK_INT(br_x509_decoder_get_signer_key_type(&xc), BR_KEYTYPE_RSA, "signed with RSA");
	CHECK_INT(br_x509_decoder_get_signer_hash_id(&xc), br_sha256_ID, "signed with SHA-256");
	CHECK(dn.n == sizeof name - 1 && memcmp(dn.b, name, dn.n) == 0,
	    "CA subject is CN=relaypro CA <id>");
	CHECK(ca.name_len == dn.n && memcmp(ca.name, dn.b, dn.n) == 0,
	    "ca.name is the subject DER");
	CHECK_INT(ca.ski_len, 20, "CA subjectKeyIdentifier is 20 bytes");
	CHECK_INT(validate(ca.cert, ca.cert_len, NULL, T0), 0, "CA self-signature verifies");
	CHECK_INT(validate(ca.cert, ca.cert_len, NULL, T0 + 3652 * (time_t)DAY), 0,
	    "CA still valid after 3652 days (GeneralizedTime notAfter)");
	CHECK_INT(validate(ca.cert, ca.cert_len, NULL, T0 + 3654 * (time_t)DAY),
	    BR_ERR_X509_EXPIRED, "CA expired after ten years");
	CHECK_INT(x509_mint_ca(small, sizeof small, &len, &ca.sk, &ca.pk, "x", T0), ERR_NOSPACE,
	    "CA into a small buffer: ERR_NOSPACE");
	CHECK_INT(x509_mint_ca(small, sizeof small, &len, &ca.sk, &ca.pk,
	    "0123456789012345678901234567890123456789012345678901234", T0), ERR_RANGE,
	    "CA name over 64 bytes: ERR_RANGE");
}

static void
server_ec(void)
{
	static const char *const alt[] = { "10.0.0.1", "::1", "alt.example.com",
		"Relay.Example.com" };
	static const char san[] = "\x30\x3c"
	    "\x82\x11" "relay.example.com"
	    "\x87\x04\x0a\x00\x00\x01"
	    "\x87\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\x82\x0f" "alt.example.com";
	static const char cn[] = "\x30\x1c\x31\x1a\x30\x18\x06\x03\x55\x04\x03\x0c\x11"
	    "relay.example.com";
	br_x509_decoder_context xc;
	const br_x509_pkey *pk;
	br_ec_public_key pub;
	unsigned char pbuf[BR_EC_KBUF_PUB_MAX_SIZE], aki[24];
	struct dn dn = { .n = 0 };
	struct der_tlv s1, s2;
	int r;

	r = x509_mint_server(&srv, &ca.issuer, "relay.example.com", alt, 4, BR_KEYTYPE_EC, T0);
	CHECK_INT(r, ERR_OK, "mint EC server certificate");
	if (r != ERR_OK)
		return;
	CHECK_INT(srv.key_type, BR_KEYTYPE_EC, "key type EC");
	CHECK_INT(srv.not_after, T0 + 90 * (time_t)DAY, "not_after is now + 90 days");
	CHECK(srv.cert_len > 400 && srv.cert_len < 1000, "EC certificate size plausible");

	br_x509_decoder_init(&xc, dn_add, &dn);
	br_x509_decoder_push(&xc, srv.cert, srv.cert_len);
	pk = br_x509_decoder_get_pkey(&xc);
	CHECK(pk != NULL, "server certificate decodes");
	CHECK(!br_x509_decoder_isCA(&xc), "server certificate is not a CA");
	CHECK(pk && pk->key_type == BR_KEYTYPE_EC && pk->key.ec.curve == BR_EC_secp256r1,
	    "server key is P-256");
	br_ec_compute_pub(br_ec_get_default(), &pub, pbuf, &srv.ec);
	CHECK(pk && pk->key.ec.qlen == pub.qlen && memcmp(pk->key.ec.q, pub.q, pub.qlen) == 0,
	    "certificate key is the returned private key's");
	CHECK(dn.n == sizeof cn - 1 && memcmp(dn.b, cn, dn.n) == 0,
	    "subject is CN=relay.example.com");

	ext_is(&srv, "\x55\x1d\x11", san, sizeof san - 1, 0,
	    "SAN: serverName, IPv4, IPv6, DNS; duplicate skipped");
	ext_is(&srv, "\x55\x1d\x25", "\x30\x0a\x06\x08\x2b\x06\x01\x05\x05\x07\x03\x01", 12, 0,
	    "extendedKeyUsage serverAuth");
	ext_is(&srv, "\x55\x1d\x0f", "\x03\x02\x07\x80", 4, 1,
	    "keyUsage critical digitalSignature");
	ext_is(&srv, "\x55\x1d\x13", "\x30\x00", 2, 1, "basicConstraints critical CA:FALSE");
	memcpy(aki, "\x30\x16\x80\x14", 4);
	memcpy(aki + 4, ca.ski, 20);
	ext_is(&srv, "\x55\x1d\x23", (const char *)aki, 24, 0,
	    "authorityKeyIdentifier is the CA's SKI");

	CHECK(tbs_field(srv.cert, srv.cert_len, 0, &s1) == 0 && s1.tag == DER_INTEGER &&
	    s1.len == 16 && (s1.val[0] & 0xC0) == 0x40, "serial: 16 bytes, positive, minimal");

	CHECK_INT(validate(srv.cert, srv.cert_len, "relay.example.com", T0), 0,
	    "validates against the CA");
	CHECK_INT(validate(srv.cert, srv.cert_len, "alt.example.com", T0), 0,
	    "validates for an alt name");
	CHECK_INT(validate(srv.cert, srv.cert_len, "other.example.com", T0),
	    BR_ERR_X509_BAD_SERVER_NAME, "wrong name refused");
	CHECK_INT(validate(srv.cert, srv.cert_len, "relay.example.com", T0 - 1800), 0,
	    "valid from an hour before now");
	CHECK_INT(validate(srv.cert, srv.cert_len, "relay.example.com", T0 - 7200),
	    BR_ERR_X509_EXPIRED, "not valid two hours before");
	CHECK_INT(validate(srv.cert, srv.cert_len, "relay.example.com", T0 + 91 * (time_t)DAY),
	    BR_ERR_X509_EXPIRED, "expired after 90 days");

	/* minted across 2050: notBefore UTCTime, notAfter GeneralizedTime */
	r = x509_mint_server(&srv2, &ca.issuer, "relay.example.com", NULL, 0, BR_KEYTYPE_EC,
	    T0 + 200 * (time_t)DAY);
	CHECK_INT(r, ERR_OK, "mint in December 2049");
	CHECK(tbs_field(srv2.cert, srv2.cert_len, 3, &s2) == 0 && s2.len == 32 &&
	    s2.val[0] == DER_UTCTIME && s2.val[15] == DER_GENERALIZEDTIME,
	    "validity: UTCTime then GeneralizedTime");
	CHECK_INT(validate(srv2.cert, srv2.cert_len, "relay.example.com",
	    T0 + 250 * (time_t)DAY), 0, "validates in 2050");
	CHECK(tbs_field(srv2.cert, srv2.cert_len, 0, &s2) == 0 &&
	    (s2.len != s1.len || memcmp(s2.val, s1.val, s1.len) != 0), "serials differ");
	x509_server_free(&srv2);
}

static void
server_rsa(void)
{
	br_x509_decoder_context xc;
	const br_x509_pkey *pk;
	unsigned char n[256];
	size_t nlen;
	int r;

	r = x509_mint_server(&srv2, &ca.issuer, "192.0.2.7", NULL, 0, BR_KEYTYPE_RSA, T0);
	CHECK_INT(r, ERR_OK, "mint RSA server certificate for an IP serverName");
	if (r != ERR_OK)
		return;
	br_x509_decoder_init(&xc, NULL, NULL);
	br_x509_decoder_push(&xc, srv2.cert, srv2.cert_len);
	pk = br_x509_decoder_get_pkey(&xc);
	nlen = br_rsa_compute_modulus_get_default()(n, &srv2.rsa);
	CHECK(pk && pk->key_type == BR_KEYTYPE_RSA && pk->key.rsa.nlen == nlen &&
	    memcmp(pk->key.rsa.n, n, nlen) == 0 && nlen == 256,
	    "RSA 2048 key, matching the returned private key");
	ext_is(&srv2, "\x55\x1d\x0f", "\x03\x02\x05\xa0", 4, 1,
	    "keyUsage digitalSignature+keyEncipherment");
	ext_is(&srv2, "\x55\x1d\x11", "\x30\x06\x87\x04\xc0\x00\x02\x07", 8, 0,
	    "SAN: the IP serverName as iPAddress");
	CHECK_INT(validate(srv2.cert, srv2.cert_len, NULL, T0), 0, "RSA leaf validates");
	x509_server_free(&srv2);
	CHECK(srv2.key_buf[0] == 0 && srv2.key_buf[sizeof srv2.key_buf - 1] == 0 &&
	    srv2.cert_len == 0, "x509_server_free wipes");
}

static void
refusals(void)
{
	static const char *const bad[] = { "bad name" };
	static const char *const zone[] = { "fe80::1%eth0" };
	static const char *const many[X509_ALT_MAX + 1] = { "a", "b", "c", "d", "e", "f", "g",
		"h", "i", "j", "k", "l", "m", "n", "o", "p", "q" };
	static const char long_cn[] = "a23456789.123456789.123456789.123456789.123456789."
	    "123456789.12345";

	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, "ok.example", bad, 1, BR_KEYTYPE_EC, T0),
	    ERR_INVAL, "alt name with a space refused");
	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, "ok.example", zone, 1, BR_KEYTYPE_EC, T0),
	    ERR_INVAL, "IPv6 with a zone refused");
	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, "", NULL, 0, BR_KEYTYPE_EC, T0), ERR_INVAL,
	    "empty serverName refused");
	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, "ok.example", many, X509_ALT_MAX + 1,
	    BR_KEYTYPE_EC, T0), ERR_RANGE, "too many alt names refused");
	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, long_cn, NULL, 0, BR_KEYTYPE_EC, T0), ERR_RANGE,
	    "serverName over 64 bytes refused");
	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, "ok.example", NULL, 0, 99, T0), ERR_INVAL,
	    "unknown key type refused");
	CHECK_INT(x509_mint_server(&srv2, &ca.issuer, "ok.example", many, X509_ALT_MAX, BR_KEYTYPE_EC,
	    T0), ERR_OK, "X509_ALT_MAX alt names fit");
	x509_server_free(&srv2);
}

void
t_x509(void)
{
	int r = ca_generate(&ca, 2048, "test-relay", T0);

	CHECK_INT(r, ERR_OK, "generate a 2048-bit CA");
	if (r != ERR_OK)
		return;
	ca_cert();
	server_ec();
	server_rsa();
	refusals();
	x509_server_free(&srv);
	ca_free(&ca);
}

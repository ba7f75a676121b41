/*
 * x509.c — minting the CA and server certificates. See x509.h.
 *
 * Both certificates come from one builder, mint(), driven by a template of what differs.
 * The TBSCertificate is written in place, hashed, signed with the CA key, and the
 * signature appended; the DER cursor checks every write against X509_CERT_MAX.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <bearssl.h>

#include "der.h"
#include "err.h"
#include "rand.h"
#include "secret.h"
#include "x509.h"

#define SKI_LEN 20   /* SHA-1 */
#define SPK_MAX 540  /* RSAPublicKey of a 4096-bit key (526 bytes) */

/* What differs between the certificates minted here. */
struct tmpl {
	const char *cn;
	const unsigned char *issuer; /* issuer Name DER; NULL: self-issued (issuer = subject) */
	size_t issuer_len;
	const unsigned char *aki;    /* authority key identifier; NULL for the CA itself */
	size_t aki_len;
	int key_type;                /* subject key: BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
	const unsigned char *spk;    /* subjectPublicKey bits: RSAPublicKey DER or EC point */
	size_t spk_len;
	unsigned char ku;            /* keyUsage bits, first byte */
	unsigned ku_unused;          /* its unused trailing bits */
	const char *const *alt;      /* serverAltNames (server certificate only) */
	size_t n_alt;
	time_t not_before, not_after;
};

static const unsigned char v3[] = { 2 };

/* Name ::= SEQUENCE { SET { SEQUENCE { id-at-commonName, UTF8String } } } */
static void
put_name(struct der *d, const char *cn)
{
	size_t name = der_begin(d), set, atv;

	set = der_begin(d);
	atv = der_begin(d);
	der_oid(d, "2.5.4.3");
	der_str(d, DER_UTF8STRING, cn, strlen(cn));
	der_end(d, DER_SEQUENCE, atv);
	der_end(d, DER_SET, set);
	der_end(d, DER_SEQUENCE, name);
}

/* AlgorithmIdentifier sha256WithRSAEncryption, parameters NULL (RFC 4055 §5). */
static void
put_sigalg(struct der *d)
{
	size_t m = der_begin(d);

	der_oid(d, "1.2.840.113549.1.1.11");
	der_tlv(d, DER_NULL, NULL, 0);
	der_end(d, DER_SEQUENCE, m);
}

static void
put_spki(struct der *d, const struct tmpl *t)
{
	size_t s = der_begin(d), a = der_begin(d);

	if (t->key_type == BR_KEYTYPE_RSA) {
		der_oid(d, "1.2.840.113549.1.1.1");
		der_tlv(d, DER_NULL, NULL, 0);
	} else {
		der_oid(d, "1.2.840.10045.2.1");   /* id-ecPublicKey */
		der_oid(d, "1.2.840.10045.3.1.7"); /* prime256v1 */
	}
	der_end(d, DER_SEQUENCE, a);
	der_bits(d, t->spk, t->spk_len, 0);
	der_end(d, DER_SEQUENCE, s);
}

/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING };
 * ext_begin opens it up to the inside of extnValue, ext_end closes both. */
static size_t
ext_begin(struct der *d, const char *oid, int critical, size_t *val)
{
	size_t m = der_begin(d);

	der_oid(d, oid);
	if (critical)
		der_bool(d, 1);
	*val = der_begin(d);
	return m;
}

static void
ext_end(struct der *d, size_t m, size_t val)
{
	der_end(d, DER_OCTET_STRING, val);
	der_end(d, DER_SEQUENCE, m);
}

/* One GeneralName: iPAddress [7] for IPv4/IPv6 literals, else dNSName [2]. */
static void
put_general_name(struct der *d, const char *name)
{
	unsigned char ip[16];

	if (inet_pton(AF_INET, name, ip) == 1)
		der_tlv(d, DER_CTX_PRIM(7), ip, 4);
	else if (inet_pton(AF_INET6, name, ip) == 1)
		der_tlv(d, DER_CTX_PRIM(7), ip, 16);
	else
		der_str(d, DER_CTX_PRIM(2), name, strlen(name));
}

static void
put_exts(struct der *d, const struct tmpl *t, const unsigned char ski[SKI_LEN])
{
	size_t x = der_begin(d), s = der_begin(d), e, v, q, i;

	/* basicConstraints: the CA (the one template without an AKI) gets CA:TRUE and
	 * pathLenConstraint 0 (zero bytes encode 0); others the empty sequence, since
	 * cA DEFAULT FALSE must be left out in DER */
	e = ext_begin(d, "2.5.29.19", 1, &v);
	q = der_begin(d);
	if (t->aki == NULL) {
		der_bool(d, 1);
		der_uint(d, v3, 0);
	}
	der_end(d, DER_SEQUENCE, q);
	ext_end(d, e, v);

	e = ext_begin(d, "2.5.29.15", 1, &v); /* keyUsage */
	der_bits(d, &t->ku, 1, t->ku_unused);
	ext_end(d, e, v);

	e = ext_begin(d, "2.5.29.14", 0, &v); /* subjectKeyIdentifier */
	der_tlv(d, DER_OCTET_STRING, ski, SKI_LEN);
	ext_end(d, e, v);

	if (t->aki != NULL) {
		e = ext_begin(d, "2.5.29.35", 0, &v); /* authorityKeyIdentifier: [0] keyIdentifier */
		q = der_begin(d);
		der_tlv(d, DER_CTX_PRIM(0), t->aki, t->aki_len);
		der_end(d, DER_SEQUENCE, q);
		ext_end(d, e, v);

		e = ext_begin(d, "2.5.29.37", 0, &v); /* extendedKeyUsage: serverAuth */
		q = der_begin(d);
		der_oid(d, "1.3.6.1.5.5.7.3.1");
		der_end(d, DER_SEQUENCE, q);
		ext_end(d, e, v);

		e = ext_begin(d, "2.5.29.17", 0, &v); /* subjectAltName */
		q = der_begin(d);
		put_general_name(d, t->cn);
		for (i = 0; i < t->n_alt; i++)
			if (strcasecmp(t->alt[i], t->cn) != 0)
				put_general_name(d, t->alt[i]);
		der_end(d, DER_SEQUENCE, q);
		ext_end(d, e, v);
	}
	der_end(d, DER_SEQUENCE, s);
	der_end(d, DER_CTX(3), x);
}

/* Build, sign with sk and write the certificate into dest[0..cap). */
static int
mint(unsigned char *dest, size_t cap, size_t *len, const struct tmpl *t,
    const br_rsa_private_key *sk)
{
	struct der d;
	br_sha1_context h1;
	br_sha256_context h2;
	unsigned char serial[16], ski[SKI_LEN], hash[32], sig[X509_SIG_MAX];
	size_t cert, tbs, m, siglen = (sk->n_bitlen + 7) / 8;

	if (siglen > sizeof sig)
		return ERR_RANGE;
	/* 16 bytes, top bit clear (positive), next bit set (no byte for DER to strip) */
	rand_bytes(serial, sizeof serial);
	serial[0] = (unsigned char)((serial[0] & 0x7F) | 0x40);
	br_sha1_init(&h1);
	br_sha1_update(&h1, t->spk, t->spk_len);
	br_sha1_out(&h1, ski);

	der_init(&d, dest, cap);
	cert = der_begin(&d);
	tbs = der_begin(&d);
	m = der_begin(&d);
	der_uint(&d, v3, 1);
	der_end(&d, DER_CTX(0), m);
	der_uint(&d, serial, sizeof serial);
	put_sigalg(&d);
	if (t->issuer != NULL)
		der_raw(&d, t->issuer, t->issuer_len);
	else
		put_name(&d, t->cn);
	m = der_begin(&d);
	der_time(&d, t->not_before);
	der_time(&d, t->not_after);
	der_end(&d, DER_SEQUENCE, m);
	put_name(&d, t->cn);
	put_spki(&d, t);
	put_exts(&d, t, ski);
	der_end(&d, DER_SEQUENCE, tbs);
	if (d.err != ERR_OK || d.buf == NULL)
		return d.err != ERR_OK ? d.err : ERR_NOSPACE;

	br_sha256_init(&h2);
	br_sha256_update(&h2, d.buf + tbs, d.len - tbs);
	br_sha256_out(&h2, hash);
	if (!br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hash, sizeof hash, sk, sig))
		return ERR_CRYPTO;
	put_sigalg(&d);
	der_bits(&d, sig, siglen, 0);
	der_end(&d, DER_SEQUENCE, cert);
	if (d.err != ERR_OK)
		return d.err;
	*len = d.len;
	return ERR_OK;
}

/* RSAPublicKey ::= SEQUENCE { modulus, publicExponent }; returns the length, 0 if it does
 * not fit. */
static size_t
rsa_pub_der(unsigned char *buf, size_t cap, const br_rsa_public_key *pk)
{
	struct der d;
	size_t m;

	der_init(&d, buf, cap);
	m = der_begin(&d);
	der_uint(&d, pk->n, pk->nlen);
	der_uint(&d, pk->e, pk->elen);
	der_end(&d, DER_SEQUENCE, m);
	return d.err == ERR_OK ? d.len : 0;
}

/* A DNS name (letters, digits, '-', '.', '_', '*'; 1..253 bytes) or an IP literal. */
static int
valid_name(const char *s)
{
	unsigned char ip[16];
	size_t n = strlen(s), i;

	if (inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1)
		return 1;
	if (n == 0 || n > X509_DNS_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '*'))
			return 0;
	}
	return 1;
}

/* see x509.h */
int
x509_mint_ca(unsigned char *dest, size_t cap, size_t *len, const br_rsa_private_key *sk,
    const br_rsa_public_key *pk, const char *relay_pro_id, time_t now)
{
	char cn[X509_CN_MAX + 1];
	unsigned char spk[SPK_MAX];
	struct tmpl t;
	int n;

	n = snprintf(cn, sizeof cn, "relaypro CA%s%s", *relay_pro_id ? " " : "", relay_pro_id);
	if (n < 0 || (size_t)n >= sizeof cn)
		return ERR_RANGE;
	memset(&t, 0, sizeof t);
	t.cn = cn;
	t.key_type = BR_KEYTYPE_RSA;
	t.spk = spk;
	t.spk_len = rsa_pub_der(spk, sizeof spk, pk);
	if (t.spk_len == 0)
		return ERR_RANGE;
	t.ku = 0x06; /* keyCertSign (5), cRLSign (6) */
	t.ku_unused = 1;
	t.not_before = now - 3600;
	t.not_after = now + (time_t)X509_CA_DAYS * 86400;
	return mint(dest, cap, len, &t, sk);
}

/* see x509.h */
int
x509_mint_server(struct x509_server *out, const struct x509_issuer *iss, const char *server_name,
    const char *const *alt, size_t n_alt, int key_type, time_t now)
{
	unsigned char spk[SPK_MAX], pub[BR_RSA_KBUF_PUB_SIZE(2048)];
	struct tmpl t;
	size_t i;
	int r;

	if (n_alt > X509_ALT_MAX || strlen(server_name) > X509_CN_MAX)
		return ERR_RANGE;
	if (!valid_name(server_name))
		return ERR_INVAL;
	for (i = 0; i < n_alt; i++)
		if (!valid_name(alt[i]))
			return ERR_INVAL;
	if (iss->ski_len == 0 || iss->name_len == 0 || iss->sk == NULL)
		return ERR_INVAL;

	memset(out, 0, sizeof *out);
	memset(&t, 0, sizeof t);
	out->key_type = key_type;
	if (key_type == BR_KEYTYPE_EC) {
		const br_ec_impl *ec = br_ec_get_default();
		br_ec_public_key pk;

		if (br_ec_keygen(rand_prng(), ec, &out->ec, out->key_buf, BR_EC_secp256r1) == 0 ||
		    br_ec_compute_pub(ec, &pk, pub, &out->ec) == 0) {
			r = ERR_CRYPTO;
			goto fail;
		}
		t.spk = pk.q;
		t.spk_len = pk.qlen;
		t.ku = 0x80; /* digitalSignature (0) */
		t.ku_unused = 7;
	} else if (key_type == BR_KEYTYPE_RSA) {
		br_rsa_public_key pk;

		if (!br_rsa_keygen_get_default()(rand_prng(), &out->rsa, out->key_buf, &pk, pub,
		    2048, 65537)) {
			r = ERR_CRYPTO;
			goto fail;
		}
		t.spk = spk;
		t.spk_len = rsa_pub_der(spk, sizeof spk, &pk);
		t.ku = 0xA0; /* digitalSignature (0), keyEncipherment (2) */
		t.ku_unused = 5;
	} else {
		return ERR_INVAL;
	}
	t.cn = server_name;
	t.issuer = iss->name;
	t.issuer_len = iss->name_len;
	t.aki = iss->ski;
	t.aki_len = iss->ski_len;
	t.key_type = key_type;
	t.alt = alt;
	t.n_alt = n_alt;
	t.not_before = now - 3600;
	t.not_after = now + (time_t)X509_SERVER_DAYS * 86400;
	r = mint(out->cert, sizeof out->cert, &out->cert_len, &t, iss->sk);
	if (r != ERR_OK)
		goto fail;
	out->not_after = t.not_after;
	return ERR_OK;
fail:
	x509_server_free(out);
	return r;
}

/* see x509.h */
void
x509_server_free(struct x509_server *s)
{
	secret_wipe(s, sizeof *s);
}

/*
 * t_certfile.c — the operator's certificate and key (certfile.c) and the PEM reader under
 * it (pem.c): X.509 times (RFC 5280 vectors and hostile ones); PEM objects with CRLF, text
 * around them, a keep filter, and refused when damaged, cut short, too many or too large;
 * chains minted here (the relay's CA -> server certificate) accepted with EC and RSA keys
 * in PKCS#1, SEC1 and PKCS#8 form, in one file or two, with CRLF; and refused, naming the
 * file, when out of order, signed by another key of the same name, not the key's, or when
 * the key is encrypted, Ed25519, DSA, RSA-1024, on P-521, missing or doubled. Files: loaded
 * from a temporary folder, stamps that change with the file, a missing file named.
 * Serving (tls.c): pairs held by unfinished handshakes survive reloads, a reload waits
 * while every slot is held and runs once one is released, an expired pair is refused.
 * The operator-made (openssl) chains are tests/integration/test_opcert.py's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bearssl.h>

#include "ca.h"
#include "certfile.h"
#include "der.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "pem.h"
#include "rand.h"
#include "secret.h"
#include "test.h"
#include "tls.h"
#include "x509.h"

#define T0 ((time_t)1900000000) /* 2030-03-17 */

static struct ca ca, ca_same_name, ca_other;
static struct x509_server ec_srv, rsa_srv, other_srv;
static struct certfile_pair pair;
static char err[4096];
static unsigned char cert_pem[16384], key_pem[8192], both[24576];
static size_t cert_len, key_len;

/* ---- helpers ----------------------------------------------------------------------- */

/* Append data as PEM object `name` to buf at *len. */
static void
pem_add(unsigned char *buf, size_t cap, size_t *len, const void *data, size_t n, const char *name)
{
	size_t k = br_pem_encode(NULL, data, n, name, BR_PEM_LINE64);

	if (*len + k + 1 > cap) {
		CHECK(0, "test buffer too small");
		return;
	}
	br_pem_encode(buf + *len, data, n, name, BR_PEM_LINE64);
	*len += k;
}

static void
pem_text(unsigned char *buf, size_t cap, size_t *len, const char *text)
{
	size_t n = strlen(text);

	if (*len + n + 1 > cap)
		return;
	memcpy(buf + *len, text, n);
	*len += n;
	buf[*len] = 0;
}

/* SEC1 (raw) or PKCS#8 DER of an EC key; returns its length. */
static size_t
ec_der(const br_ec_private_key *sk, int pkcs8, unsigned char *out)
{
	unsigned char pub[BR_EC_KBUF_PUB_MAX_SIZE];
	br_ec_public_key pk;

	if (br_ec_compute_pub(br_ec_get_default(), &pk, pub, sk) == 0)
		return 0;
	return pkcs8 ? br_encode_ec_pkcs8_der(out, sk, &pk) : br_encode_ec_raw_der(out, sk, &pk);
}

/* PKCS#1 or PKCS#8 DER of an RSA key (e recomputed: BearSSL's keys have primes 3 mod 4). */
static size_t
rsa_der(const br_rsa_private_key *sk, int pkcs8, unsigned char *out)
{
	unsigned char n[512], e[4], d[512];
	br_rsa_public_key pk;
	uint32_t ev = br_rsa_compute_pubexp_get_default()(sk);
	size_t dlen;

	pk.n = n;
	pk.nlen = br_rsa_compute_modulus_get_default()(n, sk);
	e[0] = (unsigned char)(ev >> 24);
	e[1] = (unsigned char)(ev >> 16);
	e[2] = (unsigned char)(ev >> 8);
	e[3] = (unsigned char)ev;
	pk.e = e;
	pk.elen = 4;
	while (pk.elen > 1 && pk.e[0] == 0) {
		pk.e++;
		pk.elen--;
	}
	dlen = br_rsa_compute_privexp_get_default()(d, sk, ev);
	if (ev == 0 || pk.nlen == 0 || dlen == 0)
		return 0;
	return pkcs8 ? br_encode_rsa_pkcs8_der(out, sk, &pk, d, dlen) :
	    br_encode_rsa_raw_der(out, sk, &pk, d, dlen);
}

/* The key file for a minted server key in the given form. */
static void
key_for(const struct x509_server *s, int pkcs8)
{
	unsigned char der[4096];
	size_t n = s->key_type == BR_KEYTYPE_EC ? ec_der(&s->ec, pkcs8, der) : rsa_der(&s->rsa, pkcs8, der);

	key_len = 0;
	CHECK(n > 0, "test key encodes");
	pem_add(key_pem, sizeof key_pem, &key_len, der, n, pkcs8 ? "PRIVATE KEY" :
	    s->key_type == BR_KEYTYPE_EC ? "EC PRIVATE KEY" : "RSA PRIVATE KEY");
	memset(der, 0, sizeof der);
}

/* The chain file: the given certificates in order. */
static void
chain_of(const unsigned char *c1, size_t n1, const unsigned char *c2, size_t n2)
{
	cert_len = 0;
	pem_add(cert_pem, sizeof cert_pem, &cert_len, c1, n1, "CERTIFICATE");
	if (c2 != NULL)
		pem_add(cert_pem, sizeof cert_pem, &cert_len, c2, n2, "CERTIFICATE");
}

static int
parse(void)
{
	err[0] = 0;
	return certfile_parse(&pair, cert_pem, cert_len, "cert.pem", key_pem, key_len, "key.pem",
	    err, sizeof err);
}

static int
has(const char *needle)
{
	return strstr(err, needle) != NULL;
}

/* ---- X.509 times --------------------------------------------------------------------- */

static void
times(void)
{
	static const struct {
		unsigned tag;
		const char *s;
		int ok;
		long long want;
	} v[] = {
		{ DER_UTCTIME, "700101000000Z", 1, 0 },
		{ DER_UTCTIME, "491231235959Z", 1, 2524607999LL },   /* YY < 50: 20YY */
		{ DER_UTCTIME, "500101000000Z", 1, -631152000LL },   /* YY >= 50: 19YY */
		{ DER_GENERALIZEDTIME, "20500101000000Z", 1, 2524608000LL },
		{ DER_GENERALIZEDTIME, "20240229120000Z", 1, 1709208000LL }, /* leap day */
		{ DER_GENERALIZEDTIME, "20000229000000Z", 1, 951782400LL },  /* 400-year leap */
		{ DER_GENERALIZEDTIME, "99991231235959Z", 1, 253402300799LL },
		{ DER_GENERALIZEDTIME, "20230229000000Z", 0, 0 },    /* not a leap year */
		{ DER_GENERALIZEDTIME, "21000229000000Z", 0, 0 },    /* century, not leap */
		{ DER_GENERALIZEDTIME, "20240431000000Z", 0, 0 },    /* April 31 */
		{ DER_GENERALIZEDTIME, "20241301000000Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "20240001000000Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "20240100000000Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "20240101240000Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "20240101006000Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "20240101000060Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "2024010100000aZ", 0, 0 },
		{ DER_GENERALIZEDTIME, "20240101000000+", 0, 0 },
		{ DER_GENERALIZEDTIME, "2024010100000Z", 0, 0 },     /* one digit short */
		{ DER_GENERALIZEDTIME, "202401010000000Z", 0, 0 },
		{ DER_GENERALIZEDTIME, "-2024010100000Z", 0, 0 },
		{ DER_UTCTIME, "20240101000000Z", 0, 0 },            /* length of the other type */
		{ DER_GENERALIZEDTIME, "240101000000Z", 0, 0 },
		{ DER_UTCTIME, "2401010000Z", 0, 0 },                /* no seconds (not DER) */
		{ DER_OCTET_STRING, "240101000000Z", 0, 0 },
	};
	size_t i;
	char name[96];

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		int64_t t = -1;
		int r = certfile_time(v[i].tag, (const unsigned char *)v[i].s, strlen(v[i].s), &t);
		snprintf(name, sizeof name, "time %s %s", v[i].s, v[i].ok ? "reads" : "refused");
		CHECK_INT(r, v[i].ok ? ERR_OK : ERR_INVAL, name);
		if (v[i].ok)
			CHECK_INT(t, v[i].want, name);
	}
}

/* ---- PEM ----------------------------------------------------------------------------- */

static int
keep_b(const char *name)
{
	return strcmp(name, "B") == 0;
}

static void
pem(void)
{
	static const char two[] =
	    "Bag Attributes: ignored\r\n"
	    "-----BEGIN A-----\r\nAQID\r\n-----END A-----\r\n"
	    "subject=/CN=text between objects\n"
	    "-----BEGIN B-----\nBAUG\nBw==\n-----END B-----";  /* no newline at the end */
	struct pem_obj o[4];
	unsigned char out[16];
	const char *why = NULL;
	int n;

	n = pem_decode(two, strlen(two), NULL, o, 4, out, sizeof out, &why);
	CHECK_INT(n, 2, "pem: two objects, CRLF and LF, text around them");
	CHECK_STR(o[0].name, "A", "pem: first name (CR before LF not in it)");
	CHECK_STR(o[1].name, "B", "pem: second name");
	CHECK(o[0].kept && o[0].off == 0 && o[0].len == 3 && memcmp(out, "\1\2\3", 3) == 0,
	    "pem: first body");
	CHECK(o[1].kept && o[1].off == 3 && o[1].len == 4 && memcmp(out + 3, "\4\5\6\7", 4) == 0,
	    "pem: second body follows it");
	n = pem_decode(two, strlen(two), keep_b, o, 4, out, sizeof out, &why);
	CHECK(n == 2 && !o[0].kept && o[1].kept && o[1].off == 0 && memcmp(out, "\4\5\6\7", 4) == 0,
	    "pem: keep filter stores only the wanted object");
	n = pem_decode(two, strlen(two), NULL, o, 1, out, sizeof out, &why);
	CHECK(n == -1 && strstr(why, "too many") != NULL, "pem: more objects than max refused");
	n = pem_decode(two, strlen(two), NULL, o, 4, out, 5, &why);
	CHECK(n == -1 && strcmp(why, "too large") == 0, "pem: bodies over cap refused");
	n = pem_decode(two, 50, NULL, o, 4, out, sizeof out, &why); /* up to A's END line */
	CHECK(n == -1 && strstr(why, "truncated") != NULL, "pem: object without END refused");
	n = pem_decode(two, 57, NULL, o, 4, out, sizeof out, &why);
	CHECK(n == -1 && strstr(why, "damaged") != NULL, "pem: END line cut short refused");
	n = pem_decode("-----BEGIN A-----\nA*ID\n-----END A-----\n", 38, NULL, o, 4, out,
	    sizeof out, &why);
	CHECK(n == -1 && strstr(why, "damaged") != NULL, "pem: bad base64 refused");
	n = pem_decode("no PEM here\n", 12, NULL, o, 4, out, sizeof out, &why);
	CHECK_INT(n, 0, "pem: text without objects: none");
	n = pem_decode("", 0, NULL, o, 4, out, sizeof out, &why);
	CHECK_INT(n, 0, "pem: empty text: none");
}

/* ---- pairs --------------------------------------------------------------------------- */

static void
good_pairs(void)
{
	static const struct {
		const struct x509_server *s;
		int pkcs8;
		const char *name;
		unsigned bits;
	} v[] = {
		{ &ec_srv, 0, "EC P-256, SEC1", 256 },
		{ &ec_srv, 1, "EC P-256, PKCS#8", 256 },
		{ &rsa_srv, 0, "RSA 2048, PKCS#1", 2048 },
		{ &rsa_srv, 1, "RSA 2048, PKCS#8", 2048 },
	};
	char name[96];
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		chain_of(v[i].s->cert, v[i].s->cert_len, ca.cert, ca.cert_len);
		key_for(v[i].s, v[i].pkcs8);
		snprintf(name, sizeof name, "pair: %s accepted", v[i].name);
		CHECK_INT(parse(), ERR_OK, name);
		if (err[0])
			printf("     %s\n", err);
		snprintf(name, sizeof name, "pair: %s: chain, key, leaf read", v[i].name);
		CHECK(pair.chain_len == 2 && pair.key_type == v[i].s->key_type &&
		    pair.key_bits == v[i].bits && pair.not_after == v[i].s->not_after &&
		    strcmp(pair.subject, "relay.test") == 0 &&
		    pair.issuer_key_type == BR_KEYTYPE_RSA &&
		    pair.chain[0].data_len == v[i].s->cert_len &&
		    memcmp(pair.chain[0].data, v[i].s->cert, v[i].s->cert_len) == 0 &&
		    memcmp(pair.chain[1].data, ca.cert, ca.cert_len) == 0, name);
	}

	/* the leaf alone; one file holding chain and key; CRLF line ends */
	chain_of(ec_srv.cert, ec_srv.cert_len, NULL, 0);
	key_for(&ec_srv, 0);
	CHECK(parse() == ERR_OK && pair.chain_len == 1, "pair: leaf alone accepted");
	chain_of(ec_srv.cert, ec_srv.cert_len, ca.cert, ca.cert_len);
	memcpy(both, key_pem, key_len);
	memcpy(both + key_len, cert_pem, cert_len);
	CHECK_INT(certfile_parse(&pair, both, key_len + cert_len, "both.pem", both,
	    key_len + cert_len, "both.pem", err, sizeof err), ERR_OK,
	    "pair: one file with key and chain, as certFile and keyFile");
	CHECK_INT(pair.chain_len, 2, "pair: the key in certFile is not a certificate");
	{
		size_t i2, o = 0;
		for (i2 = 0; i2 < cert_len && o + 2 < sizeof both; i2++) {
			if (cert_pem[i2] == '\n')
				both[o++] = '\r';
			both[o++] = cert_pem[i2];
		}
		CHECK_INT(certfile_parse(&pair, both, o, "crlf.pem", key_pem, key_len, "key.pem", err,
		    sizeof err), ERR_OK, "pair: chain with CRLF line ends accepted");
	}
}

static void
bad_chains(void)
{
	size_t i;

	key_for(&ec_srv, 0);
	chain_of(ca.cert, ca.cert_len, ec_srv.cert, ec_srv.cert_len);
	CHECK_INT(parse(), ERR_INVAL, "chain: reversed refused");
	CHECK(has("cert.pem: chain out of order") && has("the wrong way round"),
	    "chain: reversed: cert.pem named, order explained");
	chain_of(ec_srv.cert, ec_srv.cert_len, ca_other.cert, ca_other.cert_len);
	CHECK_INT(parse(), ERR_INVAL, "chain: followed by an unrelated CA refused");
	CHECK(has("cert.pem: chain out of order") && has("not issued by certificate 2"),
	    "chain: unrelated CA: reason");
	chain_of(ec_srv.cert, ec_srv.cert_len, ca_same_name.cert, ca_same_name.cert_len);
	CHECK_INT(parse(), ERR_INVAL, "chain: issuer of the same name but another key refused");
	CHECK(has("does not verify"), "chain: same name, other key: the signature is the reason");
	chain_of(ec_srv.cert, ec_srv.cert_len, ec_srv.cert, ec_srv.cert_len);
	CHECK_INT(parse(), ERR_INVAL, "chain: the leaf twice refused");

	cert_len = 0;
	pem_text(cert_pem, sizeof cert_pem, &cert_len, "nothing here\n");
	CHECK(parse() == ERR_INVAL && has("cert.pem: no certificate"), "chain: no certificate");
	cert_len = 0;
	pem_add(cert_pem, sizeof cert_pem, &cert_len, ec_srv.cert, ec_srv.cert_len, "TRUSTED CERTIFICATE");
	CHECK(parse() == ERR_INVAL && has("TRUSTED CERTIFICATE"), "chain: OpenSSL trusted form named");
	cert_len = 0;
	pem_add(cert_pem, sizeof cert_pem, &cert_len, "\x30\x03\x02\x01\x01", 5, "CERTIFICATE");
	CHECK(parse() == ERR_INVAL && has("certificate 1 is malformed"), "chain: not X.509");
	cert_len = 0;
	for (i = 0; i < CERTFILE_CHAIN_MAX + 1; i++)
		pem_add(cert_pem, sizeof cert_pem, &cert_len, ec_srv.cert, ec_srv.cert_len, "CERTIFICATE");
	CHECK(parse() == ERR_INVAL && (has("more than 8") || has("larger than")),
	    "chain: more certificates than kept refused");
	chain_of(ec_srv.cert, ec_srv.cert_len, ca.cert, ca.cert_len);
	CHECK(certfile_parse(&pair, cert_pem, cert_len - strlen("-----END CERTIFICATE-----\n"), "cut.pem", key_pem, key_len, "key.pem",
	    err, sizeof err) == ERR_INVAL && strstr(err, "cut.pem: truncated") != NULL,
	    "chain: cut short refused");
}

static void
bad_keys(void)
{
	/* PKCS#8 Ed25519 (RFC 8410 10.3's example key; a test key) */
	static const unsigned char ed25519[] = {
		0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
		0x04, 0x20, 0xd4, 0xee, 0x72, 0xdb, 0xf9, 0x13, 0x58, 0x4a, 0xd5, 0xb6, 0xd8, 0xf1,
		0xf7, 0x69, 0xf8, 0xad, 0x3a, 0xfe, 0x7c, 0x28, 0xcb, 0xf1, 0xd4, 0xfb, 0xe0, 0x97,
		0xa8, 0x8f, 0x44, 0x75, 0x58, 0x42 };
	/* PKCS#8 with the DSA algorithm identifier (toy parameters: refused before use) */
	static const unsigned char dsa[] = {
		0x30, 0x1e, 0x02, 0x01, 0x00, 0x30, 0x14, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38,
		0x04, 0x01, 0x30, 0x09, 0x02, 0x01, 0x17, 0x02, 0x01, 0x0b, 0x02, 0x01, 0x02, 0x04,
		0x03, 0x02, 0x01, 0x05 };
	br_rsa_private_key rsk;
	br_rsa_public_key rpk;
	br_ec_private_key esk;
	unsigned char rbuf[BR_RSA_KBUF_PRIV_SIZE(1024)], rpub[BR_RSA_KBUF_PUB_SIZE(1024)];
	unsigned char ebuf[BR_EC_KBUF_PRIV_MAX_SIZE], der[2048];
	size_t n;

	chain_of(ec_srv.cert, ec_srv.cert_len, ca.cert, ca.cert_len);

	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, ed25519, sizeof ed25519, "PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("key.pem: unsupported key type Ed25519"),
	    "key: Ed25519 (PKCS#8) refused by name");
	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, dsa, sizeof dsa, "PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("key.pem: unsupported key type DSA"),
	    "key: DSA (PKCS#8) refused by name");
	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, dsa, sizeof dsa, "DSA PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("unsupported key format (BEGIN DSA PRIVATE KEY)"),
	    "key: DSA (traditional) refused by name");
	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, "\x30\x00", 2, "ENCRYPTED PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("key.pem: the private key is encrypted"),
	    "key: encrypted PKCS#8 refused");
	key_len = 0;
	pem_text(key_pem, sizeof key_pem, &key_len, "-----BEGIN RSA PRIVATE KEY-----\n"
	    "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n"
	    "AAAA\n-----END RSA PRIVATE KEY-----\n");
	CHECK(parse() == ERR_INVAL && has("encrypted (Proc-Type"), "key: encrypted PKCS#1 refused");

	CHECK(br_rsa_keygen_get_default()(rand_prng(), &rsk, rbuf, &rpk, rpub, 1024, 65537),
	    "key: RSA-1024 generated");
	n = rsa_der(&rsk, 0, der);
	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, der, n, "RSA PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("key.pem: the RSA key has 1024 bits"), "key: RSA-1024 refused");

	CHECK(br_ec_keygen(rand_prng(), br_ec_get_default(), &esk, ebuf, BR_EC_secp521r1) > 0,
	    "key: P-521 generated");
	n = ec_der(&esk, 1, der);
	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, der, n, "PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("on P-521; P-256 or P-384"), "key: P-521 refused");

	key_len = 0;
	pem_add(key_pem, sizeof key_pem, &key_len, "\x30\x03\x02\x01\x00", 5, "EC PRIVATE KEY");
	CHECK(parse() == ERR_INVAL && has("key.pem: the private key (BEGIN EC PRIVATE KEY) is malformed"),
	    "key: malformed SEC1 refused");
	key_len = 0;
	pem_text(key_pem, sizeof key_pem, &key_len, "# no key\n");
	CHECK(parse() == ERR_INVAL && has("key.pem: no private key"), "key: none refused");
	key_for(&ec_srv, 0);
	memcpy(key_pem + key_len, key_pem, key_len);
	key_len *= 2;
	CHECK(parse() == ERR_INVAL && has("more than one private key"), "key: two keys refused");

	/* the key of another certificate */
	key_for(&other_srv, 1);
	CHECK_INT(parse(), ERR_INVAL, "key: another certificate's key refused");
	CHECK(has("key.pem: the private key does not match the leaf certificate (the first in cert.pem)"),
	    "key: mismatch names both files");
	key_for(&rsa_srv, 0);
	CHECK(parse() == ERR_INVAL && has("does not match"), "key: RSA key for an EC leaf refused");
	CHECK(strstr(err, "MII") == NULL && strstr(err, "BEGIN RSA") == NULL,
	    "key: the error holds no key text");
	CHECK(pair.chain_len == 0 && pair.key_type == 0, "key: a refused pair is wiped");
	memset(der, 0, sizeof der);
}

/* ---- files --------------------------------------------------------------------------- */

static void
write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	/* 0600: a key others can read gets a file.mode warning (tested in test_opcert) */
	CHECK(f != NULL && fchmod(fileno(f), 0600) == 0 && fwrite(data, 1, n, f) == n &&
	    fclose(f) == 0, "test file written");
}

static void
files(void)
{
	char dir[] = "/tmp/relaypro-t-certfile-XXXXXX", cp[96], kp[96], missing[96];
	struct certfile_stamp st[2], s1, s2;

	CHECK(mkdtemp(dir) != NULL, "files: temporary folder");
	snprintf(cp, sizeof cp, "%s/chain.pem", dir);
	snprintf(kp, sizeof kp, "%s/key.pem", dir);
	snprintf(missing, sizeof missing, "%s/missing.pem", dir);
	chain_of(ec_srv.cert, ec_srv.cert_len, ca.cert, ca.cert_len);
	key_for(&ec_srv, 1);
	write_file(cp, cert_pem, cert_len);
	write_file(kp, key_pem, key_len);
	CHECK_INT(certfile_load(&pair, cp, kp, st, err, sizeof err), ERR_OK, "files: pair loaded");
	certfile_stat(cp, &s1);
	CHECK(certfile_stamp_eq(&s1, &st[0]), "files: stat matches the stamp taken at load");
	CHECK_INT(certfile_check(cp, kp, err, sizeof err), ERR_OK, "files: check-config's check");
	write_file(cp, cert_pem, cert_len - 1);
	certfile_stat(cp, &s2);
	CHECK(!certfile_stamp_eq(&s1, &s2), "files: a rewritten file has another stamp");
	CHECK(certfile_load(&pair, missing, kp, NULL, err, sizeof err) == ERR_IO &&
	    strstr(err, missing) != NULL && strstr(err, "cannot open") != NULL,
	    "files: a missing certFile is named");
	certfile_stat(missing, &s1);
	CHECK(s1.err != 0, "files: a missing file's stamp has its errno");
	CHECK(certfile_load(&pair, cp, dir, NULL, err, sizeof err) == ERR_INVAL &&
	    strstr(err, "not a regular file") != NULL, "files: a folder as keyFile is refused");
	unlink(cp);
	unlink(kp);
	rmdir(dir);
}

/* ---- serving (tls.c's slots) --------------------------------------------------------- */

/* A counter or gauge of the /metrics text, or -1. */
static long long
metric(const char *series)
{
	static char text[METRICS_RENDER_MAX + 1];
	size_t n = metrics_render(text, METRICS_RENDER_MAX);
	const char *p;
	long long v = -1;

	text[n] = 0;
	p = strstr(text, series);
	if (p != NULL && p[strlen(series)] == ' ')
		sscanf(p + strlen(series) + 1, "%lld", &v);
	return v;
}

/* Write a fresh EC server certificate (valid from `now`) and its key as the pair. */
static int64_t
write_pair(const char *cp, const char *kp, time_t now)
{
	static struct x509_server s;
	int64_t na;

	CHECK_INT(x509_mint_server(&s, &ca, "relay.test", NULL, 0, BR_KEYTYPE_EC, now), ERR_OK,
	    "serving: certificate minted");
	chain_of(s.cert, s.cert_len, ca.cert, ca.cert_len);
	key_for(&s, 1);
	write_file(cp, cert_pem, cert_len);
	write_file(kp, key_pem, key_len);
	na = s.not_after;
	x509_server_free(&s);
	return na;
}

#define OK_RELOADS "relaypro_certificate_reloads_total{result=\"ok\"}"
#define FAILED_RELOADS "relaypro_certificate_reloads_total{result=\"failed\"}"
#define NOT_AFTER "relaypro_certificate_not_after_seconds{source=\"operator\"}"

static void
serving(void)
{
	static br_ssl_server_context sc[4];
	static unsigned char ibuf[4][TLS_IBUF], obuf[4][TLS_OBUF];
	char dir[] = "/tmp/relaypro-t-certfile-XXXXXX", cp[96], kp[96];
	static char logged[16384];
	char logpath[96], keyline[41] = "";
	time_t now = time(NULL);
	int64_t na[6];
	int i, lfd;
	ssize_t ln;

	CHECK(mkdtemp(dir) != NULL, "serving: temporary folder");
	snprintf(cp, sizeof cp, "%s/chain.pem", dir);
	snprintf(kp, sizeof kp, "%s/key.pem", dir);
	snprintf(logpath, sizeof logpath, "%s/log", dir);
	lfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(lfd >= 0, "serving: log file");
	log_use_fd(lfd);
	metrics_reset();
	na[0] = write_pair(cp, kp, now - 10);
	CHECK_INT(tls_setup(&ca, "relay.test", NULL, 0, 0, cp, kp, err, sizeof err), ERR_OK,
	    "serving: started with the pair");
	CHECK_INT(metric(NOT_AFTER), na[0], "serving: its not-after exported");
	CHECK(!tls_cert_expired(now), "serving: not expired");
	/* sc[i] is set up (as at accept) with pair i, then pair i+1 is loaded by SIGHUP */
	for (i = 0; i < 3; i++) {
		CHECK_INT(tls_server_init(&sc[i], ibuf[i], TLS_IBUF, obuf[i], TLS_OBUF), ERR_OK,
		    "serving: a connection set up");
		na[i + 1] = write_pair(cp, kp, now - 20 - i);
		tls_certfile_reload(cp, kp);
		CHECK_INT(metric(OK_RELOADS), i + 1, "serving: reload applied");
		CHECK_INT(metric(NOT_AFTER), na[i + 1], "serving: the new not-after exported");
	}
	/* four slots: three held by unfinished handshakes, one served; a fifth pair waits */
	na[4] = write_pair(cp, kp, now - 30);
	tls_certfile_reload(cp, kp);
	CHECK_INT(metric(OK_RELOADS), 3, "serving: every slot held: the reload waits");
	CHECK_INT(metric(NOT_AFTER), na[3], "serving: the running pair still served");
	CHECK_INT(metric(FAILED_RELOADS), 0, "serving: waiting is not a failure");
	tls_maintain(now);
	CHECK_INT(metric(OK_RELOADS), 3, "serving: still waiting while the slots are held");
	tls_conn_release(&sc[1]);
	tls_conn_release(&sc[1]); /* a second release is a no-op */
	tls_maintain(now);
	CHECK_INT(metric(OK_RELOADS), 4, "serving: a released slot takes the waiting pair");
	CHECK_INT(metric(NOT_AFTER), na[4], "serving: the waiting pair is served");
	/* the handshakes still held keep their pair intact */
	CHECK(sc[0].chain_handler.single_ec.chain != NULL &&
	    sc[0].chain_handler.single_ec.chain[0].data_len > 0 &&
	    sc[2].chain_handler.single_ec.chain != NULL, "serving: held pairs untouched");
	tls_conn_release(&sc[0]);
	tls_conn_release(&sc[2]);
	CHECK(sc[0].chain_handler.single_ec.chain == NULL, "serving: a released context forgets its pair");

	/* an already expired pair is refused on reload; a bad one too; the running one stays */
	na[5] = write_pair(cp, kp, now - 100 * 86400);
	memcpy(keyline, key_pem + 28, 40); /* base64 from the key's first line */
	tls_certfile_reload(cp, kp);
	CHECK_INT(metric(FAILED_RELOADS), 1, "serving: expired pair refused");
	CHECK_INT(metric(NOT_AFTER), na[4], "serving: the running pair kept");
	write_file(kp, "garbage\n", 8);
	tls_certfile_reload(cp, kp);
	CHECK_INT(metric(FAILED_RELOADS), 2, "serving: bad key refused");
	CHECK(!tls_cert_expired(now) && tls_cert_expired((time_t)na[4] + 1),
	    "serving: expiry is the served leaf's");
	tls_certfile_reload("", "");
	CHECK(metric("relaypro_certificate_not_after_seconds{source=\"minted\"}") > now,
	    "serving: certFile unset: the minted certificate");
	for (i = 0; i < 4; i++)
		secret_wipe(&sc[i], sizeof sc[i]);
	metrics_reset();
	log_use_fd(2);
	ln = pread(lfd, logged, sizeof logged - 1, 0);
	logged[ln > 0 ? ln : 0] = 0;
	close(lfd);
	CHECK(strstr(logged, "\"event\":\"cert.loaded\",\"trigger\":\"start\"") != NULL,
	    "serving: log: cert.loaded at start");
	CHECK(strstr(logged, "\"event\":\"cert.reload_deferred\"") != NULL,
	    "serving: log: cert.reload_deferred while every slot is held");
	CHECK(strstr(logged, "\"event\":\"cert.reload_fail\",\"trigger\":\"sighup\",\"reason\":\"") != NULL &&
	    strstr(logged, "expired at") != NULL && strstr(logged, "key.pem: no private key") != NULL,
	    "serving: log: cert.reload_fail with the reasons");
	CHECK(strstr(logged, "PRIVATE KEY") == NULL || strstr(logged, "-----") == NULL,
	    "serving: log: no PEM");
	CHECK(strstr(logged, keyline) == NULL, "serving: log: no key text");
	unlink(logpath);
	unlink(cp);
	unlink(kp);
	rmdir(dir);
}

void
t_certfile(void)
{
	CHECK_INT(ca_generate(&ca, 2048, "t-certfile", T0), ERR_OK, "CA generated");
	CHECK_INT(ca_generate(&ca_same_name, 2048, "t-certfile", T0), ERR_OK, "second CA, same name");
	CHECK_INT(ca_generate(&ca_other, 2048, "t-certfile-other", T0), ERR_OK, "third CA");
	CHECK_INT(x509_mint_server(&ec_srv, &ca, "relay.test", NULL, 0, BR_KEYTYPE_EC, T0), ERR_OK,
	    "EC server certificate minted");
	CHECK_INT(x509_mint_server(&rsa_srv, &ca, "relay.test", NULL, 0, BR_KEYTYPE_RSA, T0), ERR_OK,
	    "RSA server certificate minted");
	CHECK_INT(x509_mint_server(&other_srv, &ca, "relay.test", NULL, 0, BR_KEYTYPE_EC, T0), ERR_OK,
	    "another EC server certificate minted");
	times();
	pem();
	good_pairs();
	bad_chains();
	bad_keys();
	files();
	serving();
	certfile_wipe(&pair);
	x509_server_free(&ec_srv);
	x509_server_free(&rsa_srv);
	x509_server_free(&other_srv);
	ca_free(&ca);
	ca_free(&ca_same_name);
	ca_free(&ca_other);
}

/*
 * certfile.c — the operator's certificate chain and key. See certfile.h.
 *
 * Each certificate is read twice: by BearSSL's decoder (it must decode there, since that
 * is what the server's peers will see decoded; it gives the public key) and by a small
 * DER walk over the outer structure (TBSCertificate bytes, issuer, validity, subject,
 * signature algorithm and value), which is what the chain checks need and the decoder
 * does not expose. The key goes through br_skey_decoder; when that refuses a PKCS#8 key,
 * the key's algorithm identifier is read to say what it is (Ed25519, DSA, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bearssl.h>

#include "certfile.h"
#include "der.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "pem.h"
#include "secret.h"
#include "x509read.h"

#define PEM_OBJS_MAX 32      /* PEM objects listed per file */
#define KEY_DER_MAX 8192     /* the private key objects of keyFile, DER (RSA-4096: ~2.4 KB) */
#define SIG_MAX 512          /* RSA-4096 signature; ECDSA P-384 ASN.1 is ~104 */

/* Put "name: message" into err; returns ERR_INVAL. */
__attribute__((format(printf, 4, 5))) static int
say(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (errlen == 0)
		return ERR_INVAL;
	n = snprintf(err, errlen, "%s: ", name);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return ERR_INVAL;
}

/* ---- the chain ----------------------------------------------------------------------- */

static int
keep_cert(const char *name)
{
	return strcmp(name, "CERTIFICATE") == 0;
}

static int
keep_key(const char *name)
{
	return strstr(name, "PRIVATE KEY") != NULL;
}

/* Read the chain of certFile into p; the leaf's key into *leaf. */
static int
parse_chain(struct certfile_pair *p, const unsigned char *text, size_t n, const char *name,
    struct x509read_pubkey *leaf, char *err, size_t errlen)
{
	static struct pem_obj objs[PEM_OBJS_MAX];
	static struct x509read_cert v[CERTFILE_CHAIN_MAX];
	static struct x509read_pubkey next;
	char a[CERTFILE_SUBJECT_MAX + 24], b[CERTFILE_SUBJECT_MAX + 24];
	const char *why;
	int nobj, i, e, trusted = 0;

	nobj = pem_decode(text, n, keep_cert, objs, PEM_OBJS_MAX, p->der, sizeof p->der, &why);
	if (nobj < 0 && strcmp(why, "too large") == 0)
		return say(err, errlen, name, "the certificates are larger than %d bytes together",
		    CERTFILE_DER_MAX);
	if (nobj < 0)
		return say(err, errlen, name, "%s", why);
	p->chain_len = 0;
	for (i = 0; i < nobj; i++) {
		trusted |= strcmp(objs[i].name, "TRUSTED CERTIFICATE") == 0;
		if (!objs[i].kept)
			continue;
		if (p->chain_len == CERTFILE_CHAIN_MAX)
			return say(err, errlen, name, "more than %d certificates", CERTFILE_CHAIN_MAX);
		p->chain[p->chain_len].data = p->der + objs[i].off;
		p->chain[p->chain_len].data_len = objs[i].len;
		p->chain_len++;
	}
	if (p->chain_len == 0 && trusted)
		return say(err, errlen, name, "holds OpenSSL's \"TRUSTED CERTIFICATE\" form; write "
		    "plain certificates: openssl x509 -in FILE -out FILE");
	if (p->chain_len == 0)
		return say(err, errlen, name, "no certificate (-----BEGIN CERTIFICATE-----)");

	for (i = 0; i < (int)p->chain_len; i++) {
		e = x509read_cert(p->chain[i].data, p->chain[i].data_len, &v[i]);
		if (e == ERR_OK)
			e = x509read_pubkey(p->chain[i].data, p->chain[i].data_len, i == 0 ? leaf : &next);
		if (e == BR_ERR_X509_UNSUPPORTED || e == BR_ERR_X509_LIMIT_EXCEEDED)
			return say(err, errlen, name, "certificate %d: its public key is neither RSA "
			    "(up to %d bits) nor EC", i + 1, CERTFILE_RSA_BITS_MAX);
		if (e != ERR_OK)
			return say(err, errlen, name, "certificate %d is malformed (not DER X.509)", i + 1);
		if (i == 0)
			continue;
		x509read_name(v[i - 1].subject, v[i - 1].subject_len, a, sizeof a);
		x509read_name(v[i].subject, v[i].subject_len, b, sizeof b);
		if (v[i - 1].issuer_len != v[i].subject_len ||
		    memcmp(v[i - 1].issuer, v[i].subject, v[i].subject_len) != 0) {
			int reversed = v[i].issuer_len == v[i - 1].subject_len &&
			    memcmp(v[i].issuer, v[i - 1].subject, v[i].issuer_len) == 0;
			return say(err, errlen, name, "chain out of order: certificate %d (%s) was "
			    "not issued by certificate %d (%s)%s; put the leaf first, then each "
			    "certificate's issuer", i, a, i + 1, b,
			    reversed ? " but issued it (the two are the wrong way round)" : "");
		}
		if (x509read_signed_by(&v[i - 1], &next.pk) == 0)
			return say(err, errlen, name, "chain out of order: the signature on "
			    "certificate %d (%s) does not verify with the key of certificate %d (%s), "
			    "its issuer by name", i, a, i + 1, b);
	}
	p->not_before = v[0].not_before;
	p->not_after = v[0].not_after;
	p->issuer_key_type = leaf->signer_key_type;
	x509read_name(v[0].subject, v[0].subject_len, a, sizeof a);
	snprintf(p->subject, sizeof p->subject, "%.*s", CERTFILE_SUBJECT_MAX,
	    strncmp(a, "CN=", 3) == 0 ? a + 3 : "");
	return ERR_OK;
}

/* ---- the key ------------------------------------------------------------------------- */

/* The algorithm of a PKCS#8 PrivateKeyInfo (RFC 5208) BearSSL refused, by name. */
static const char *
pkcs8_alg(const unsigned char *der, size_t len)
{
	static const struct {
		const char *name;
		unsigned char oid[9];
		size_t len;
	} algs[] = {
		{ "Ed25519", { 0x2B, 0x65, 0x70 }, 3 },
		{ "Ed448", { 0x2B, 0x65, 0x71 }, 3 },
		{ "X25519", { 0x2B, 0x65, 0x6E }, 3 },
		{ "X448", { 0x2B, 0x65, 0x6F }, 3 },
		{ "DSA", { 0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01 }, 7 },
		{ "RSASSA-PSS", { 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A }, 9 },
		{ "Diffie-Hellman", { 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x03, 0x01 }, 9 },
	};
	struct der_tlv seq, ver, alg, oid;
	size_t p = 0, q = 0, r = 0, i;

	if (der_read(der, len, &p, &seq) != ERR_OK || seq.tag != DER_SEQUENCE ||
	    der_read(seq.val, seq.len, &q, &ver) != ERR_OK || ver.tag != DER_INTEGER ||
	    der_read(seq.val, seq.len, &q, &alg) != ERR_OK || alg.tag != DER_SEQUENCE ||
	    der_read(alg.val, alg.len, &r, &oid) != ERR_OK || oid.tag != DER_OID)
		return NULL;
	for (i = 0; i < sizeof algs / sizeof algs[0]; i++)
		if (oid.len == algs[i].len && memcmp(oid.val, algs[i].oid, oid.len) == 0)
			return algs[i].name;
	return NULL;
}

static const char *
curve_name(int curve)
{
	switch (curve) {
	case BR_EC_secp256r1: return "P-256";
	case BR_EC_secp384r1: return "P-384";
	case BR_EC_secp521r1: return "P-521";
	}
	return "an unnamed curve";
}

#define KEY_HINT "an RSA key of 2048 to 4096 bits or an EC key on P-256 or P-384 is needed, " \
	"in PEM as PKCS#1, SEC1 or unencrypted PKCS#8"

/* Copy one big-endian integer into the key buffer. */
static unsigned char *
take(unsigned char **at, size_t *left, const unsigned char *v, size_t n)
{
	unsigned char *r = *at;

	if (n > *left)
		return NULL;
	memcpy(r, v, n);
	*at += n;
	*left -= n;
	return r;
}

/* Read the one private key of keyFile into p. */
static int
parse_key(struct certfile_pair *p, const unsigned char *text, size_t n, const char *name,
    char *err, size_t errlen)
{
	static struct pem_obj objs[PEM_OBJS_MAX];
	static unsigned char der[KEY_DER_MAX];
	static br_skey_decoder_context kc;
	const struct pem_obj *k = NULL;
	const char *why, *alg;
	int nobj, i, e, r = ERR_OK;

	if (n >= 22 && memmem(text, n, "Proc-Type: 4,ENCRYPTED", 22) != NULL)
		return say(err, errlen, name, "the private key is encrypted (Proc-Type: 4,ENCRYPTED); "
		    "write it without a passphrase: openssl pkey -in KEY -out KEY.new");
	nobj = pem_decode(text, n, keep_key, objs, PEM_OBJS_MAX, der, sizeof der, &why);
	if (nobj < 0) {
		secret_wipe(der, sizeof der);
		return say(err, errlen, name, "%s", strcmp(why, "too large") == 0 ?
		    "the private key is too large; " KEY_HINT : why);
	}
	for (i = 0; i < nobj && r == ERR_OK; i++) {
		const char *on = objs[i].name;
		if (!objs[i].kept)
			continue;
		if (strcmp(on, "ENCRYPTED PRIVATE KEY") == 0)
			r = say(err, errlen, name, "the private key is encrypted (BEGIN ENCRYPTED "
			    "PRIVATE KEY); write it without a passphrase: openssl pkey -in KEY -out KEY.new");
		else if (strcmp(on, "RSA PRIVATE KEY") != 0 && strcmp(on, "EC PRIVATE KEY") != 0 &&
		    strcmp(on, "PRIVATE KEY") != 0)
			r = say(err, errlen, name, "unsupported key format (BEGIN %s); " KEY_HINT, on);
		else if (k != NULL)
			r = say(err, errlen, name, "more than one private key");
		else
			k = &objs[i];
	}
	if (r == ERR_OK && k == NULL)
		r = say(err, errlen, name, "no private key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE "
		    "KEY or BEGIN EC PRIVATE KEY)");
	if (r != ERR_OK) {
		secret_wipe(der, sizeof der);
		return r;
	}

	br_skey_decoder_init(&kc);
	br_skey_decoder_push(&kc, der + k->off, k->len);
	e = br_skey_decoder_last_error(&kc);
	alg = e != 0 && strcmp(k->name, "PRIVATE KEY") == 0 ? pkcs8_alg(der + k->off, k->len) : NULL;
	if (alg != NULL) {
		r = say(err, errlen, name, "unsupported key type %s; " KEY_HINT, alg);
	} else if (e == BR_ERR_X509_LIMIT_EXCEEDED) {
		r = say(err, errlen, name, "the key is too large; " KEY_HINT);
	} else if (e == BR_ERR_X509_UNSUPPORTED) {
		r = say(err, errlen, name, "unsupported key type or curve; " KEY_HINT);
	} else if (e != 0) {
		r = say(err, errlen, name, "the private key (BEGIN %s) is malformed", k->name);
	} else if (br_skey_decoder_key_type(&kc) == BR_KEYTYPE_RSA) {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&kc);
		unsigned char *at = p->key_buf;
		size_t left = sizeof p->key_buf;

		if (sk->n_bitlen < CERTFILE_RSA_BITS_MIN || sk->n_bitlen > CERTFILE_RSA_BITS_MAX) {
			r = say(err, errlen, name, "the RSA key has %u bits; %d to %d are needed",
			    (unsigned)sk->n_bitlen, CERTFILE_RSA_BITS_MIN, CERTFILE_RSA_BITS_MAX);
		} else {
			p->key_type = BR_KEYTYPE_RSA;
			p->key_bits = sk->n_bitlen;
			p->rsa.n_bitlen = sk->n_bitlen;
			p->rsa.p = take(&at, &left, sk->p, sk->plen);
			p->rsa.plen = sk->plen;
			p->rsa.q = take(&at, &left, sk->q, sk->qlen);
			p->rsa.qlen = sk->qlen;
			p->rsa.dp = take(&at, &left, sk->dp, sk->dplen);
			p->rsa.dplen = sk->dplen;
			p->rsa.dq = take(&at, &left, sk->dq, sk->dqlen);
			p->rsa.dqlen = sk->dqlen;
			p->rsa.iq = take(&at, &left, sk->iq, sk->iqlen);
			p->rsa.iqlen = sk->iqlen;
			if (!p->rsa.p || !p->rsa.q || !p->rsa.dp || !p->rsa.dq || !p->rsa.iq)
				r = say(err, errlen, name, "the RSA key is malformed (oversized parts)");
		}
	} else {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(&kc);

		if (sk->curve != BR_EC_secp256r1 && sk->curve != BR_EC_secp384r1) {
			r = say(err, errlen, name, "the EC key is on %s; P-256 or P-384 is needed",
			    curve_name(sk->curve));
		} else if (sk->xlen > sizeof p->key_buf) {
			r = say(err, errlen, name, "the EC key is malformed");
		} else {
			p->key_type = BR_KEYTYPE_EC;
			p->key_bits = sk->curve == BR_EC_secp256r1 ? 256 : 384;
			memcpy(p->key_buf, sk->x, sk->xlen);
			p->ec.curve = sk->curve;
			p->ec.x = p->key_buf;
			p->ec.xlen = sk->xlen;
		}
	}
	secret_wipe(&kc, sizeof kc);
	secret_wipe(der, sizeof der);
	return r;
}

/* A signature made with the key verifies with the leaf's public key. */
static int
key_matches(const struct certfile_pair *p, const br_x509_pkey *leaf)
{
	static const unsigned char h[32] = "relaypro operator key check....";
	unsigned char sig[SIG_MAX], out[32];
	size_t n;

	if (p->key_type != leaf->key_type)
		return 0;
	if (p->key_type == BR_KEYTYPE_EC) {
		if (leaf->key.ec.curve != p->ec.curve)
			return 0;
		n = br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), &br_sha256_vtable, h,
		    &p->ec, sig);
		return n > 0 && br_ecdsa_vrfy_asn1_get_default()(br_ec_get_default(), h, sizeof h,
		    &leaf->key.ec, sig, n) == 1;
	}
	/* RSA: the signature has the key's length; a modulus of another size fails to verify */
	n = (p->rsa.n_bitlen + 7) / 8;
	return br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, h, sizeof h, &p->rsa, sig) &&
	    br_rsa_pkcs1_vrfy_get_default()(sig, n, BR_HASH_OID_SHA256, sizeof out, &leaf->key.rsa,
	    out) && memcmp(out, h, sizeof h) == 0;
}

/* see certfile.h */
int
certfile_parse(struct certfile_pair *p, const unsigned char *cert, size_t cert_len,
    const char *cert_name, const unsigned char *key, size_t key_len, const char *key_name,
    char *err, size_t errlen)
{
	static struct x509read_pubkey leaf;
	int r;

	memset(p, 0, sizeof *p);
	r = parse_chain(p, cert, cert_len, cert_name, &leaf, err, errlen);
	if (r == ERR_OK)
		r = parse_key(p, key, key_len, key_name, err, errlen);
	if (r == ERR_OK && !key_matches(p, &leaf.pk))
		r = say(err, errlen, key_name, "the private key does not match the leaf certificate "
		    "(the first in %s)", cert_name);
	if (r != ERR_OK)
		certfile_wipe(p);
	return r;
}

/* Read a whole file of at most CERTFILE_TEXT_MAX bytes into buf. */
static int
read_text(const char *path, unsigned char *buf, size_t *n, struct certfile_stamp *s,
    char *err, size_t errlen)
{
	struct stat st;
	ssize_t k = 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*n = 0;
	if (fd < 0) {
		say(err, errlen, path, "cannot open: %s", strerror(errno));
		return ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CERTFILE_TEXT_MAX) {
		close(fd);
		return say(err, errlen, path, "not a regular file of at most %d bytes",
		    CERTFILE_TEXT_MAX);
	}
	if (s != NULL) {
		memset(s, 0, sizeof *s);
		s->dev = st.st_dev;
		s->ino = st.st_ino;
		s->size = st.st_size;
		s->mtime_sec = (int64_t)st.st_mtim.tv_sec;
		s->mtime_nsec = st.st_mtim.tv_nsec;
	}
	while (*n < CERTFILE_TEXT_MAX && k != 0) {
		k = read(fd, buf + *n, CERTFILE_TEXT_MAX - *n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		*n += (size_t)k;
	}
	close(fd);
	if (k < 0) {
		say(err, errlen, path, "cannot read: %s", strerror(errno));
		return ERR_IO;
	}
	return ERR_OK;
}

/* see certfile.h */
int
certfile_load(struct certfile_pair *p, const char *cert_path, const char *key_path,
    struct certfile_stamp stamps[2], char *err, size_t errlen)
{
	static unsigned char cert[CERTFILE_TEXT_MAX], key[CERTFILE_TEXT_MAX];
	size_t cn = 0, kn = 0;
	int r;

	r = read_text(cert_path, cert, &cn, stamps ? &stamps[0] : NULL, err, errlen);
	if (r == ERR_OK)
		r = read_text(key_path, key, &kn, stamps ? &stamps[1] : NULL, err, errlen);
	if (r == ERR_OK)
		r = certfile_parse(p, cert, cn, cert_path, key, kn, key_path, err, errlen);
	secret_wipe(key, kn);
	secret_wipe(cert, cn); /* certFile may hold the key too */
	if (r == ERR_OK) { /* the key file, like the CA bundle, is a secret (file.mode) */
		struct stat st;
		if (stat(key_path, &st) == 0)
			log_warn_exposed("key file", key_path, &st);
	}
	return r;
}

/* see certfile.h */
int
certfile_check(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	static struct certfile_pair scratch;
	int r = certfile_load(&scratch, cert_path, key_path, NULL, err, errlen);

	certfile_wipe(&scratch);
	return r;
}

/* see certfile.h */
void
certfile_stat(const char *path, struct certfile_stamp *s)
{
	struct stat st;

	memset(s, 0, sizeof *s);
	if (stat(path, &st) != 0) {
		s->err = errno ? errno : EIO;
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime_sec = (int64_t)st.st_mtim.tv_sec;
	s->mtime_nsec = st.st_mtim.tv_nsec;
}

/* see certfile.h */
int
certfile_stamp_eq(const struct certfile_stamp *a, const struct certfile_stamp *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

/* see certfile.h */
void
certfile_wipe(struct certfile_pair *p)
{
	secret_wipe(p->key_buf, sizeof p->key_buf);
	secret_wipe(p, sizeof *p);
}

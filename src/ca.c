/*
 * ca.c — the CA bundle: load, generate, write atomically, show. See ca.h.
 *
 * Loading splits the PEM text into its objects (an RSA key, a certificate; any other
 * private key format is refused by name), reads the PKCS#1 key with the DER reader and the
 * certificate with BearSSL's decoder, and accepts the pair only when the key's modulus and
 * exponent equal the certificate's and a signature made with the private half verifies
 * with the public half. The issuer Name and subjectKeyIdentifier that minted certificates
 * need are read from the certificate itself, so they match it byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bearssl.h>

#include "ca.h"
#include "der.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "rand.h"
#include "secret.h"
#include "x509.h"

/* Put "path: message" into errbuf; returns err. */
__attribute__((format(printf, 5, 6))) static int
say(char *errbuf, size_t errlen, int err, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (errlen == 0)
		return err;
	n = snprintf(errbuf, errlen, "%s: ", path);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Where the bytes of one decoded PEM object go. */
struct sink {
	unsigned char *buf;
	size_t cap, len;
	int over; /* the object did not fit */
};

static void
sink_add(void *ctx, const void *p, size_t n)
{
	struct sink *s = ctx;

	if (s->over || n > s->cap - s->len) {
		s->over = 1;
		return;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

/* What the PEM pass found. */
struct found {
	struct sink key, cert;
	int nkey, ncert;
	int inside; /* an object has begun and not ended */
};

/* Feed n bytes of PEM text; returns NULL, or why the bundle cannot be used. */
static const char *
pem_split(br_pem_decoder_context *pc, struct found *f, const void *data, size_t n)
{
	const unsigned char *p = data;

	while (n > 0) {
		size_t k = br_pem_decoder_push(pc, p, n);
		int ev = br_pem_decoder_event(pc);
		const char *name;
		struct sink *s = NULL;

		p += k;
		n -= k;
		if (ev == BR_PEM_ERROR)
			return "damaged or truncated PEM (bad base64, or an object cut short)";
		if (ev == BR_PEM_END_OBJ)
			f->inside = 0;
		if (ev != BR_PEM_BEGIN_OBJ) {
			if (k == 0 && ev == 0)
				return "PEM decoder stalled";
			continue;
		}
		name = br_pem_decoder_name(pc);
		if (strcmp(name, "RSA PRIVATE KEY") == 0) {
			s = &f->key;
			f->nkey++;
		} else if (strcmp(name, "CERTIFICATE") == 0) {
			s = &f->cert;
			f->ncert++;
		} else if (strcmp(name, "PRIVATE KEY") == 0) {
			return "the private key is PKCS#8 (BEGIN PRIVATE KEY); a PKCS#1 RSA key "
			    "(BEGIN RSA PRIVATE KEY) is needed: openssl rsa -in KEY -traditional";
		} else if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
			return "the private key is encrypted; an unencrypted PKCS#1 RSA key "
			    "(BEGIN RSA PRIVATE KEY) is needed";
		} else if (strcmp(name, "EC PRIVATE KEY") == 0) {
			return "the private key is an EC key; the CA key must be RSA "
			    "(BEGIN RSA PRIVATE KEY)";
		} else if (strstr(name, "PRIVATE KEY") != NULL) {
			return "the private key is not a PKCS#1 RSA key (BEGIN RSA PRIVATE KEY)";
		}
		if (f->nkey > 1 || f->ncert > 1)
			return "more than one private key or certificate";
		br_pem_decoder_setdest(pc, s != NULL ? sink_add : NULL, s);
		f->inside = 1;
	}
	return NULL;
}

/* pem_split over text with CRLF line ends read as LF: BearSSL 0.6's PEM decoder skips a
 * CR in a BEGIN line but leaves a hole for it in the name, so the trailing dashes stay
 * ("RSA PRIVATE KEY-----") and a bundle saved with CRLF line ends was refused as "not a
 * PKCS#1 RSA key" (found with tests/fuzz/fuzz_ca.c). Other CRs are passed on as they are. */
static const char *
pem_split_text(br_pem_decoder_context *pc, struct found *f, const unsigned char *p, size_t n)
{
	const char *why = NULL;
	size_t i, start = 0;

	for (i = 0; i + 1 < n && why == NULL; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n') {
			why = pem_split(pc, f, p + start, i - start);
			start = i + 1;
		}
	}
	return why != NULL ? why : pem_split(pc, f, p + start, n - start);
}

/* Copy n bytes to *at and advance it; NULL when fewer than n bytes are left. */
static unsigned char *
take(unsigned char **at, size_t *left, const struct der_tlv *v)
{
	unsigned char *r = *at;

	if (v->len > *left)
		return NULL;
	memcpy(r, v->val, v->len);
	*at += v->len;
	*left -= v->len;
	return r;
}

/* Take the key from its PKCS#1 DER (RFC 8017 A.1.2: version 0, n, e, d, p, q, dp, dq, iq):
 * n and e into ca->pk, the CRT parts into ca->sk, the DER itself into ca->key_der. Read
 * here rather than recomputed, because BearSSL recomputes e only for keys whose primes are
 * 3 mod 4 (its own) and its i31 modulus code stops short of 4096 bits. ERR_INVAL: not
 * PKCS#1; ERR_RANGE: size outside CA_KEY_BITS_MIN..CA_KEY_BITS_MAX. */
static int
parse_key(struct ca *ca, const unsigned char *der, size_t len)
{
	struct der_tlv seq, v[9];
	unsigned char *at = ca->sk_buf;
	size_t left = sizeof ca->sk_buf, p = 0, q = 0, i;
	br_rsa_private_key *k = &ca->sk;
	uint32_t bits;
	unsigned top;

	if (len > sizeof ca->key_der || der_read(der, len, &p, &seq) != ERR_OK ||
	    seq.tag != DER_SEQUENCE || p != len)
		return ERR_INVAL;
	for (i = 0; i < 9; i++) {
		if (der_read(seq.val, seq.len, &q, &v[i]) != ERR_OK || v[i].tag != DER_INTEGER ||
		    v[i].len == 0 || (v[i].val[0] & 0x80))
			return ERR_INVAL;
		while (v[i].len > 1 && v[i].val[0] == 0) {
			v[i].val++;
			v[i].len--;
		}
	}
	if (q != seq.len || v[0].len != 1 || v[0].val[0] != 0)
		return ERR_INVAL;
	for (bits = (uint32_t)(v[1].len - 1) * 8, top = v[1].val[0]; top > 0; top >>= 1)
		bits++;
	if (bits < CA_KEY_BITS_MIN || bits > CA_KEY_BITS_MAX || v[2].len > 4)
		return ERR_RANGE;
	memcpy(ca->pk_buf, v[1].val, v[1].len);
	memcpy(ca->pk_buf + v[1].len, v[2].val, v[2].len);
	ca->pk.n = ca->pk_buf;
	ca->pk.nlen = v[1].len;
	ca->pk.e = ca->pk_buf + v[1].len;
	ca->pk.elen = v[2].len;
	k->n_bitlen = bits;
	k->p = take(&at, &left, &v[4]);
	k->plen = v[4].len;
	k->q = take(&at, &left, &v[5]);
	k->qlen = v[5].len;
	k->dp = take(&at, &left, &v[6]);
	k->dplen = v[6].len;
	k->dq = take(&at, &left, &v[7]);
	k->dqlen = v[7].len;
	k->iq = take(&at, &left, &v[8]);
	k->iqlen = v[8].len;
	if (!k->p || !k->q || !k->dp || !k->dq || !k->iq)
		return ERR_RANGE;
	memcpy(ca->key_der, der, len);
	ca->key_der_len = len;
	return ERR_OK;
}

/* The private half matches the public half: a signature made with sk verifies with pk. */
static int
pair_ok(const struct ca *ca)
{
	static const unsigned char h[32] = "relaypro CA bundle key check";
	unsigned char sig[X509_SIG_MAX], out[32];
	size_t n = (ca->sk.n_bitlen + 7) / 8;

	return n == ca->pk.nlen &&
	    br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, h, sizeof h, &ca->sk, sig) &&
	    br_rsa_pkcs1_vrfy_get_default()(sig, n, BR_HASH_OID_SHA256, sizeof out, &ca->pk,
	    out) && memcmp(out, h, sizeof h) == 0;
}

/* Two unsigned big-endian numbers are equal (public values: plain comparison). */
static int
same_uint(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	while (alen > 0 && *a == 0) {
		a++;
		alen--;
	}
	while (blen > 0 && *b == 0) {
		b++;
		blen--;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Find the subjectKeyIdentifier in extensions ([3] content) v[0..n). */
static int
find_ski(struct ca *ca, const unsigned char *v, size_t n)
{
	struct der_tlv seq, ext, f, k;
	size_t p = 0, q, r;

	if (der_read(v, n, &p, &seq) != ERR_OK || seq.tag != DER_SEQUENCE)
		return ERR_INVAL;
	for (q = 0; q < seq.len;) {
		r = 0;
		if (der_read(seq.val, seq.len, &q, &ext) != ERR_OK || ext.tag != DER_SEQUENCE ||
		    der_read(ext.val, ext.len, &r, &f) != ERR_OK || f.tag != DER_OID)
			return ERR_INVAL;
		if (f.len != 3 || memcmp(f.val, "\x55\x1d\x0e", 3) != 0) /* 2.5.29.14 */
			continue;
		do {
			if (der_read(ext.val, ext.len, &r, &f) != ERR_OK)
				return ERR_INVAL;
		} while (f.tag == DER_BOOLEAN);
		r = 0;
		if (f.tag != DER_OCTET_STRING || der_read(f.val, f.len, &r, &k) != ERR_OK ||
		    k.tag != DER_OCTET_STRING || k.len == 0 || k.len > sizeof ca->ski)
			return ERR_INVAL;
		memcpy(ca->ski, k.val, k.len);
		ca->ski_len = k.len;
	}
	return ERR_OK;
}

/* Read the subject Name and the subjectKeyIdentifier out of ca->cert. */
static int
cert_info(struct ca *ca)
{
	struct der_tlv c, tbs, x;
	size_t p = 0, start, i = 0;

	if (der_read(ca->cert, ca->cert_len, &p, &c) != ERR_OK || c.tag != DER_SEQUENCE)
		return ERR_INVAL;
	p = 0;
	if (der_read(c.val, c.len, &p, &tbs) != ERR_OK || tbs.tag != DER_SEQUENCE)
		return ERR_INVAL;
	/* [0] version, then serial (0), signature (1), issuer (2), validity (3), subject (4),
	 * subjectPublicKeyInfo (5), and the optional [1], [2], [3] */
	for (p = 0; p < tbs.len;) {
		start = p;
		if (der_read(tbs.val, tbs.len, &p, &x) != ERR_OK)
			return ERR_INVAL;
		if (i == 0 && x.tag == DER_CTX(0))
			continue;
		if (i == 4) {
			if (x.tag != DER_SEQUENCE || p - start > sizeof ca->name)
				return ERR_INVAL;
			memcpy(ca->name, tbs.val + start, p - start);
			ca->name_len = p - start;
		}
		if (x.tag == DER_CTX(3) && find_ski(ca, x.val, x.len) != ERR_OK)
			return ERR_INVAL;
		i++;
	}
	if (ca->name_len == 0 || ca->ski_len == 0)
		return ERR_INVAL;
	ca->issuer.name = ca->name;
	ca->issuer.name_len = ca->name_len;
	ca->issuer.ski = ca->ski;
	ca->issuer.ski_len = ca->ski_len;
	ca->issuer.sk = &ca->sk;
	return ERR_OK;
}

/* With the key and the certificate in place: fill cert_sha256, name and ski. */
static int
finish(struct ca *ca)
{
	br_sha256_context h;

	br_sha256_init(&h);
	br_sha256_update(&h, ca->cert, ca->cert_len);
	br_sha256_out(&h, ca->cert_sha256);
	return cert_info(ca);
}

/* Parse the bundle text; fills ca or says why not. */
static int
load(struct ca *ca, const char *path, const unsigned char *text, size_t n, char *errbuf,
    size_t errlen)
{
	br_pem_decoder_context pc;
	br_x509_decoder_context xc;
	const br_x509_pkey *pub;
	unsigned char key[CA_KEY_DER_MAX];
	struct found f;
	const char *why;
	int r;

	memset(ca, 0, sizeof *ca);
	memset(&f, 0, sizeof f);
	f.key.buf = key;
	f.key.cap = sizeof key;
	f.cert.buf = ca->cert;
	f.cert.cap = sizeof ca->cert;
	br_pem_decoder_init(&pc);
	why = pem_split_text(&pc, &f, text, n);
	if (why == NULL)
		why = pem_split(&pc, &f, "\n", 1); /* ends a last line that has no newline */
	secret_wipe(&pc, sizeof pc);
	if (why == NULL && f.inside)
		why = "truncated: a PEM object has no END line";
	else if (why == NULL && f.nkey == 0)
		why = "no private key (BEGIN RSA PRIVATE KEY)";
	else if (why == NULL && f.ncert == 0)
		why = "no certificate (BEGIN CERTIFICATE)";
	else if (why == NULL && (f.key.over || f.cert.over))
		why = "the private key or the certificate is too large";

	if (why == NULL) {
		r = parse_key(ca, key, f.key.len);
		if (r == ERR_RANGE)
			why = "the RSA key must have 2048 to 4096 bits";
		else if (r != ERR_OK)
			why = "the private key is not a PKCS#1 RSA key, or is malformed";
	}
	secret_wipe(key, sizeof key);

	if (why == NULL) {
		ca->cert_len = f.cert.len;
		br_x509_decoder_init(&xc, NULL, NULL);
		br_x509_decoder_push(&xc, ca->cert, ca->cert_len);
		pub = br_x509_decoder_get_pkey(&xc);
		if (pub == NULL)
			why = "the certificate is malformed";
		else if (!br_x509_decoder_isCA(&xc))
			why = "the certificate is not a CA certificate";
		else if (pub->key_type != BR_KEYTYPE_RSA ||
		    !same_uint(pub->key.rsa.n, pub->key.rsa.nlen, ca->pk.n, ca->pk.nlen) ||
		    !same_uint(pub->key.rsa.e, pub->key.rsa.elen, ca->pk.e, ca->pk.elen) ||
		    !pair_ok(ca))
			why = "the private key does not match the certificate";
		else if (finish(ca) != ERR_OK)
			why = "the certificate has no subject name or no subjectKeyIdentifier";
	}
	if (why != NULL) {
		ca_free(ca);
		return say(errbuf, errlen, ERR_INVAL, path, "%s", why);
	}
	return ERR_OK;
}

/* Write data to path atomically with mode 0600 (see ca.h). */
static int
write_atomic(const char *path, const void *data, size_t len, char *errbuf, size_t errlen)
{
	char dir[PATH_MAX], why[PATH_MAX + 64];
	const char *slash = strrchr(path, '/');
	size_t dl = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);

	if (strlen(path) + sizeof ".tmp.XXXXXX" > sizeof dir)
		return say(errbuf, errlen, ERR_RANGE, path, "path too long");
	if (dl == 0) {
		strcpy(dir, ".");
	} else {
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return say(errbuf, errlen, ERR_IO, path, "cannot create folder %s: %s", dir,
		    strerror(errno));
	if (fileio_replace(path, data, len, NULL, why, sizeof why) != ERR_OK)
		return say(errbuf, errlen, ERR_IO, path, "%s", why);
	return ERR_OK;
}

/* Generate a CA and write its bundle to path. */
static int
create(struct ca *ca, const char *path, int key_bits, const char *relay_pro_id,
    char *errbuf, size_t errlen)
{
	char pem[CA_FILE_MAX];
	size_t n, m;
	int r;

	if (key_bits != 2048 && key_bits != 3072 && key_bits != 4096)
		return say(errbuf, errlen, ERR_RANGE, path,
		    "cannot create: caKeyBits must be 2048, 3072 or 4096, not %d", key_bits);
	r = ca_generate(ca, key_bits, relay_pro_id, time(NULL));
	if (r == ERR_RANGE)
		return say(errbuf, errlen, r, path, "cannot create: the CA name "
		    "(relaypro CA <relayProId>) is longer than %d bytes", X509_CN_MAX);
	if (r != ERR_OK)
		return say(errbuf, errlen, r, path, "cannot generate the CA: %s", err_str(r));
	n = br_pem_encode(NULL, ca->key_der, ca->key_der_len, "RSA PRIVATE KEY", BR_PEM_LINE64);
	m = br_pem_encode(NULL, ca->cert, ca->cert_len, "CERTIFICATE", BR_PEM_LINE64);
	if (n + m + 1 > sizeof pem) {
		r = say(errbuf, errlen, ERR_NOSPACE, path, "bundle larger than %d bytes",
		    CA_FILE_MAX);
	} else {
		br_pem_encode(pem, ca->key_der, ca->key_der_len, "RSA PRIVATE KEY", BR_PEM_LINE64);
		br_pem_encode(pem + n, ca->cert, ca->cert_len, "CERTIFICATE", BR_PEM_LINE64);
		r = write_atomic(path, pem, n + m, errbuf, errlen);
		secret_wipe(pem, n);
	}
	if (r != ERR_OK) {
		ca_free(ca);
		return r;
	}
	ca->created = 1;
	return ERR_OK;
}

/* see ca.h */
int
ca_load_or_create(struct ca *ca, const char *path, int key_bits, const char *relay_pro_id,
    char *errbuf, size_t errlen)
{
	unsigned char text[CA_FILE_MAX];
	struct stat st;
	size_t n = 0;
	ssize_t k = 1;
	int fd, r, have_st;

	memset(ca, 0, sizeof *ca);
	(void)fileio_sweep(path); /* a bundle write killed mid-way left its key beside it */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return create(ca, path, key_bits, relay_pro_id, errbuf, errlen);
	if (fd < 0)
		return say(errbuf, errlen, ERR_IO, path, "cannot open: %s", strerror(errno));
	while (n < sizeof text && k != 0) {
		k = read(fd, text + n, sizeof text - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		n += (size_t)k;
	}
	if (k > 0) { /* full buffer: is there more? */
		unsigned char c;
		k = read(fd, &c, 1);
	}
	have_st = fstat(fd, &st) == 0;
	close(fd);
	if (k < 0)
		r = say(errbuf, errlen, ERR_IO, path, "cannot read: %s", strerror(errno));
	else if (k > 0)
		r = say(errbuf, errlen, ERR_RANGE, path, "larger than %d bytes", CA_FILE_MAX);
	else
		r = load(ca, path, text, n, errbuf, errlen);
	secret_wipe(text, n);
	if (r == ERR_OK && have_st)
		log_warn_exposed("CA bundle", path, &st);
	return r;
}

/* see ca.h */
void
ca_warn_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		log_warn_exposed("CA bundle", path, &st);
}

/* see ca.h */
int
ca_generate(struct ca *ca, int key_bits, const char *relay_pro_id, time_t now)
{
	unsigned char d[CA_KEY_BITS_MAX / 8];
	size_t dlen, n;
	int r;

	memset(ca, 0, sizeof *ca);
	if (key_bits != 2048 && key_bits != 3072 && key_bits != 4096)
		return ERR_RANGE;
	if (!br_rsa_keygen_get_default()(rand_prng(), &ca->sk, ca->sk_buf, &ca->pk, ca->pk_buf,
	    (unsigned)key_bits, 65537))
		return ERR_CRYPTO;
	/* d, for the PKCS#1 encoding only; BearSSL's keygen primes make this exact */
	dlen = br_rsa_compute_privexp_get_default()(d, &ca->sk, 65537);
	n = dlen ? br_encode_rsa_raw_der(NULL, &ca->sk, &ca->pk, d, dlen) : 0;
	if (n == 0 || n > sizeof ca->key_der) {
		r = ERR_CRYPTO;
	} else {
		ca->key_der_len = br_encode_rsa_raw_der(ca->key_der, &ca->sk, &ca->pk, d, dlen);
		r = x509_mint_ca(ca->cert, sizeof ca->cert, &ca->cert_len, &ca->sk, &ca->pk,
		    relay_pro_id, now);
	}
	secret_wipe(d, sizeof d);
	if (r == ERR_OK)
		r = finish(ca);
	if (r != ERR_OK)
		ca_free(ca);
	return r;
}

/* see ca.h */
int
ca_show(const struct ca *ca, int fd)
{
	static const char hex[] = "0123456789ABCDEF";
	char pem[X509_CERT_MAX * 2], line[sizeof "SHA256 Fingerprint=" + 3 * 32];
	size_t n = br_pem_encode(NULL, ca->cert, ca->cert_len, "CERTIFICATE", BR_PEM_LINE64);
	size_t i, o = sizeof "SHA256 Fingerprint=" - 1;

	if (n + 1 > sizeof pem)
		return ERR_NOSPACE;
	br_pem_encode(pem, ca->cert, ca->cert_len, "CERTIFICATE", BR_PEM_LINE64);
	memcpy(line, "SHA256 Fingerprint=", o);
	for (i = 0; i < 32; i++) {
		line[o++] = hex[ca->cert_sha256[i] >> 4];
		line[o++] = hex[ca->cert_sha256[i] & 15];
		line[o++] = ':';
	}
	line[o - 1] = '\n';
	if (fileio_write_all(fd, pem, n) != ERR_OK || fileio_write_all(fd, line, o) != ERR_OK)
		return ERR_IO;
	return ERR_OK;
}

/* see ca.h */
void
ca_free(struct ca *ca)
{
	secret_wipe(ca, sizeof *ca);
}

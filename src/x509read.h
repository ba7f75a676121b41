/*
 * x509read.h — reading X.509 certificates (RFC 5280) far enough to check an operator's
 * chain (certfile.c): the parts of one certificate (to-be-signed bytes, names, validity,
 * signature), a Name's common name for messages, whether a signature verifies with an
 * issuer's key (RSA PKCS#1 v1.5 and ECDSA, SHA-1 to SHA-512), and the public key as
 * BearSSL decodes it. Parsers take (der, len) and check before every read (der.h); they
 * point into the caller's DER and allocate nothing. Minting is x509.c, not this.
 */
#ifndef RELAYPRO_X509READ_H
#define RELAYPRO_X509READ_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

/* What the chain checks need of one certificate, pointing into its DER. */
struct x509read_cert {
	const unsigned char *tbs, *issuer, *subject, *alg, *sig;
	size_t tbs_len, issuer_len, subject_len, alg_len, sig_len;
	int64_t not_before, not_after;
};

/* A certificate's public key, copied out of the decoder. */
struct x509read_pubkey {
	br_x509_pkey pk;
	unsigned char buf[BR_X509_BUFSIZE_KEY];
	int signer_key_type;
};

/* Read an X.509 Time (RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ, GeneralizedTime
 * YYYYMMDDHHMMSSZ) with DER tag `tag` from s[0..n). ERR_OK with *t in seconds since the
 * epoch, or ERR_INVAL. */
int x509read_time(unsigned tag, const unsigned char *s, size_t n, int64_t *t);

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }, with
 * tbsCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
 * validity, subject, subjectPublicKeyInfo, ... } (RFC 5280 4.1): v points into der.
 * ERR_OK or ERR_INVAL. */
int x509read_cert(const unsigned char *der, size_t len, struct x509read_cert *v);

/* "CN=<common name>" of a Name (a SEQUENCE TLV), printable ASCII only; "no common name"
 * when there is none. Always NUL-terminates out (cap > 0). */
void x509read_name(const unsigned char *name, size_t len, char *out, size_t cap);

/* Does child's signature verify with the issuer's key? 1 yes, 0 no, -1 not checked
 * (an algorithm BearSSL has no verifier for: RSA-PSS, EdDSA). */
int x509read_signed_by(const struct x509read_cert *child, const br_x509_pkey *issuer);

/* Decode one certificate with BearSSL and copy its public key into k. ERR_OK, or a
 * BearSSL error code (positive) / ERR_INVAL. Not thread-safe (a static decoder). */
int x509read_pubkey(const unsigned char *der, size_t len, struct x509read_pubkey *k);

#endif

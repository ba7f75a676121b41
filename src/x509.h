/*
 * x509.h — minting X.509 v3 certificates (RFC 5280): the self-signed CA certificate and
 * the server certificate the relay presents, both signed sha256WithRSAEncryption by the
 * CA's RSA key.
 *
 * Output goes to fixed, caller-owned storage of X509_CERT_MAX bytes; nothing is
 * allocated. `now` is a parameter so tests can fix the clock. Serial numbers are 128-bit,
 * random and positive; validity starts an hour before `now` to absorb clock skew.
 * Subject key identifiers are RFC 5280 §4.2.1.2 method 1 (SHA-1 of the subjectPublicKey
 * bits).
 */
#ifndef RELAYPRO_X509_H
#define RELAYPRO_X509_H

#include <stddef.h>
#include <time.h>

#include <bearssl.h>

#define X509_CERT_MAX 4096     /* DER certificate; a 4096-bit signature is 512 of it */
#define X509_CN_MAX 64         /* ub-common-name (RFC 5280 Appendix A) */
#define X509_ALT_MAX 16        /* serverAltNames entries */
#define X509_DNS_MAX 253       /* one DNS name */
#define X509_SIG_MAX 512       /* RSA-4096 signature */
#define X509_CA_DAYS 3653      /* CA validity: ten years */
#define X509_SERVER_DAYS 90    /* server certificate validity */

/* The issuer of a minted server certificate: the CA's subject Name (DER), its
 * subjectKeyIdentifier (the minted certificate's authorityKeyIdentifier) and its RSA key.
 * It points into the caller's storage (a loaded CA: struct ca's issuer, ca.h). */
struct x509_issuer {
	const unsigned char *name;
	size_t name_len;
	const unsigned char *ski;
	size_t ski_len;
	const br_rsa_private_key *sk;
};

/* A minted server certificate and its private key. The key fields point into key_buf, so
 * the structure must not be copied: mint into a second one and switch pointers. */
struct x509_server {
	unsigned char cert[X509_CERT_MAX]; /* DER */
	size_t cert_len;
	int key_type;                      /* BR_KEYTYPE_EC or BR_KEYTYPE_RSA */
	br_ec_private_key ec;              /* valid when key_type is BR_KEYTYPE_EC */
	br_rsa_private_key rsa;            /* valid when key_type is BR_KEYTYPE_RSA */
	unsigned char key_buf[BR_RSA_KBUF_PRIV_SIZE(2048)];
	time_t not_after;                  /* remint when less than 30 days remain */
};

/* Mint the self-signed CA certificate for key (sk, pk): CN=relaypro CA <relay_pro_id>,
 * basicConstraints critical CA:TRUE pathlen 0, keyUsage critical keyCertSign+cRLSign,
 * subjectKeyIdentifier, valid from now-1h for X509_CA_DAYS. Writes the DER into
 * dest[0..cap) and its length to *len. Returns ERR_OK, ERR_RANGE (CN longer than
 * X509_CN_MAX), ERR_NOSPACE or ERR_CRYPTO (signing failed). */
int x509_mint_ca(unsigned char *dest, size_t cap, size_t *len, const br_rsa_private_key *sk,
    const br_rsa_public_key *pk, const char *relay_pro_id, time_t now);

/* Generate a key (key_type BR_KEYTYPE_EC: P-256; BR_KEYTYPE_RSA: 2048 bits) and mint its
 * certificate into *out, issued by iss: CN=server_name, subjectAltName with server_name and
 * the n_alt names of alt (DNS names, or IPv4/IPv6 literals as iPAddress; duplicates of
 * server_name skipped), extendedKeyUsage serverAuth, keyUsage digitalSignature
 * (+keyEncipherment for RSA), basicConstraints CA:FALSE, subject and authority key
 * identifiers, valid from now-1h for X509_SERVER_DAYS. rand_init() must have succeeded.
 * Returns ERR_OK; ERR_INVAL (a name that is neither a DNS name nor an IP address, or an
 * unknown key type); ERR_RANGE (CN over X509_CN_MAX, more than X509_ALT_MAX names);
 * ERR_NOSPACE (the certificate outgrows X509_CERT_MAX); ERR_CRYPTO. */
int x509_mint_server(struct x509_server *out, const struct x509_issuer *iss, const char *server_name,
    const char *const *alt, size_t n_alt, int key_type, time_t now);

/* Wipe the private key and the certificate. */
void x509_server_free(struct x509_server *s);

#endif

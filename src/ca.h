/*
 * ca.h — the CA bundle: one PEM file holding the CA's RSA private key (PKCS#1,
 * "BEGIN RSA PRIVATE KEY") and its self-signed certificate.
 *
 * At start the bundle is loaded, or, when the file does not exist, generated and written
 * atomically (temporary file in the same folder, mode 0600, fsync, rename, fsync of the
 * folder; a missing parent folder is created with mode 0700). An existing file is never
 * overwritten: any problem with it is an error whose text names the file.
 *
 * struct ca owns all its storage (the key structures point into its own buffers), so it
 * must not be copied; ca_free wipes it.
 */
#ifndef RELAYPRO_CA_H
#define RELAYPRO_CA_H

#include <stddef.h>
#include <time.h>

#include <bearssl.h>

#include "x509.h"

#define CA_KEY_BITS_MIN 2048
#define CA_KEY_BITS_MAX 4096
#define CA_KEY_DER_MAX 2560  /* PKCS#1 RSAPrivateKey of a 4096-bit key (about 2350) */
#define CA_NAME_MAX 256      /* the certificate's subject Name, DER */
#define CA_SKI_MAX 64        /* its subjectKeyIdentifier */
#define CA_FILE_MAX 16384    /* the bundle file */

struct ca {
	br_rsa_private_key sk;   /* points into sk_buf */
	br_rsa_public_key pk;    /* points into pk_buf */
	unsigned char sk_buf[BR_RSA_KBUF_PRIV_SIZE(CA_KEY_BITS_MAX)];
	unsigned char pk_buf[BR_RSA_KBUF_PUB_SIZE(CA_KEY_BITS_MAX)];
	unsigned char cert[X509_CERT_MAX];  /* the CA certificate, DER */
	size_t cert_len;
	unsigned char cert_sha256[32];      /* its fingerprint; token kid = first 8 bytes, hex */
	unsigned char key_der[CA_KEY_DER_MAX]; /* the key's PKCS#1 DER, as in the file (secret;
	                                        * the token keys are HKDF'ed from it) */
	size_t key_der_len;
	unsigned char name[CA_NAME_MAX];    /* subject Name DER: the issuer of minted certs */
	size_t name_len;
	unsigned char ski[CA_SKI_MAX];      /* subjectKeyIdentifier: minted certs' AKI */
	size_t ski_len;
	struct x509_issuer issuer;          /* name, ski and sk above, for x509_mint_server */
	int created;                        /* 1 when ca_load_or_create wrote the file */
};

/* Load the bundle at path, or generate one (key_bits 2048, 3072 or 4096; CN
 * "relaypro CA <relay_pro_id>") and write it there when the file does not exist. On
 * failure returns a negative ERR_ code and puts one line naming the file into
 * errbuf[0..errlen): a key that is PKCS#8, EC, encrypted or missing, no certificate, a key
 * that does not match the certificate, a certificate that is not a CA, damaged PEM... */
int ca_load_or_create(struct ca *ca, const char *path, int key_bits, const char *relay_pro_id,
    char *errbuf, size_t errlen);

/* Log a "file.mode" warning when the bundle at path can be read or written by others
 * or by a group other than the relay's own (log_warn_exposed; never its content).
 * ca_load_or_create does the same for a bundle it loads (not one it creates: 0600); this
 * is for every reload, when the bundle is not read again. Silent when path cannot be
 * stat'ed. */
void ca_warn_mode(const char *path);

/* Generate a CA in memory only (no file): key of key_bits, certificate valid from now.
 * Returns ERR_OK, ERR_RANGE (key_bits) or ERR_CRYPTO. */
int ca_generate(struct ca *ca, int key_bits, const char *relay_pro_id, time_t now);

/* Write the CA certificate as PEM to fd, then "SHA256 Fingerprint=AA:BB:..." (as openssl
 * x509 -fingerprint -sha256 prints it) and a newline. ERR_OK or ERR_IO. */
int ca_show(const struct ca *ca, int fd);

/* Wipe everything, the key first. */
void ca_free(struct ca *ca);

#endif

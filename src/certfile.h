/*
 * certfile.h — the operator's certificate and key (certFile / keyFile): read, checked,
 * and held in a form BearSSL's server can serve.
 *
 * certFile is PEM holding the chain, leaf first, each certificate followed by the one
 * that issued it (a self-signed root at the end is allowed, not needed); other PEM objects
 * in it are ignored, so one file may hold both chain and key. keyFile is PEM holding one
 * private key: RSA of CERTFILE_RSA_BITS_MIN..CERTFILE_RSA_BITS_MAX bits or EC on P-256
 * or P-384, as PKCS#1 ("RSA PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or unencrypted PKCS#8
 * ("PRIVATE KEY"). A pair is accepted only when
 *   - every certificate decodes and the leaf's key is RSA or EC;
 *   - for each neighbouring pair, the first's issuer Name equals the second's subject Name
 *     byte for byte (BearSSL's own rule) and the first's signature verifies with the
 *     second's key — RSA PKCS#1 v1.5 and ECDSA with SHA-1/224/256/384/512; other signature
 *     algorithms (RSA-PSS, EdDSA) are checked by name only;
 *   - the key is of a supported type and size, and a signature made with it verifies with
 *     the leaf's public key (so the two match and the key is sound).
 * An expired leaf is not refused here: the caller decides (tls.h).
 *
 * Errors are one line naming the file at fault ("PATH: what is wrong"), with a hint when
 * one helps; key bytes never appear in them. The certificate subject names quoted in them
 * come from the file, reduced to printable ASCII.
 *
 * struct certfile_pair owns all its storage (the chain and the key point into it), so it
 * is never copied; certfile_wipe clears it. Not thread-safe: the loader uses static
 * scratch space (the loop thread and the command line are its only callers).
 */
#ifndef RELAYPRO_CERTFILE_H
#define RELAYPRO_CERTFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bearssl.h>

#define CERTFILE_CHAIN_MAX 8        /* certificates in certFile */
#define CERTFILE_DER_MAX 16384      /* their DER, together */
#define CERTFILE_TEXT_MAX 65536     /* bytes of either file */
#define CERTFILE_SUBJECT_MAX 64     /* the leaf's CN kept for logs (ub-common-name) */
#define CERTFILE_RSA_BITS_MIN 2048
#define CERTFILE_RSA_BITS_MAX 4096  /* BearSSL's largest RSA key */

struct certfile_pair {
	br_x509_certificate chain[CERTFILE_CHAIN_MAX]; /* point into der */
	size_t chain_len;
	unsigned char der[CERTFILE_DER_MAX];
	int key_type;                   /* BR_KEYTYPE_EC or BR_KEYTYPE_RSA */
	br_ec_private_key ec;           /* key_type EC: points into key_buf */
	br_rsa_private_key rsa;         /* key_type RSA: points into key_buf */
	unsigned char key_buf[BR_RSA_KBUF_PRIV_SIZE(CERTFILE_RSA_BITS_MAX)];
	unsigned key_bits;              /* RSA modulus bits; 256 or 384 for EC */
	int issuer_key_type;            /* the key type that signed the leaf */
	int64_t not_before, not_after;  /* the leaf's validity, seconds since the epoch */
	char subject[CERTFILE_SUBJECT_MAX + 1]; /* the leaf's CN ("" without one) */
};

/* What a file looked like when read: a change of any field is a change of the file. */
struct certfile_stamp {
	int err;                        /* errno of a failed stat, else 0 */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_sec;
	long mtime_nsec;
};

/* Check and take the pair from PEM texts cert[0..cert_len) and key[0..key_len), named
 * cert_name and key_name in errors. ERR_OK, or ERR_INVAL with the reason in err. */
int certfile_parse(struct certfile_pair *p, const unsigned char *cert, size_t cert_len,
    const char *cert_name, const unsigned char *key, size_t key_len, const char *key_name,
    char *err, size_t errlen);

/* Read both files (regular files of at most CERTFILE_TEXT_MAX bytes) and certfile_parse
 * them. stamps (may be NULL) get what the two files looked like when opened.
 * ERR_OK; ERR_IO (cannot open or read) or ERR_INVAL, with the reason in err. */
int certfile_load(struct certfile_pair *p, const char *cert_path, const char *key_path,
    struct certfile_stamp stamps[2], char *err, size_t errlen);

/* certfile_load into scratch storage, then wipe it: the check of `check-config`. */
int certfile_check(const char *cert_path, const char *key_path, char *err, size_t errlen);

/* stat() path into *s (a missing file is a stamp too, with err set). */
void certfile_stat(const char *path, struct certfile_stamp *s);

/* 1 when the two stamps are the same. */
int certfile_stamp_eq(const struct certfile_stamp *a, const struct certfile_stamp *b);

/* Wipe the pair, the key first. */
void certfile_wipe(struct certfile_pair *p);

#endif

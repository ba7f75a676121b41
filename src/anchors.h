/*
 * anchors.h — trust anchors decoded from PEM certificates, for BearSSL's X.509 validator.
 *
 * A struct anchors is a fixed-size store the caller owns (it is large: put it on the heap):
 * up to ANCHORS_MAX certificates whose names and keys live in a ANCHORS_ARENA-byte arena
 * that never moves, so ta[] can be handed to br_x509_minimal_init_full and stays valid for
 * as long as the store is neither reset nor wiped. Sources are added one after another:
 * a file, or inline PEM text. A damaged PEM object, a certificate that does not decode, a
 * key type other than RSA/EC, or a certificate that does not fit is skipped; decoding
 * goes on with the next object.
 */
#ifndef RELAYPRO_ANCHORS_H
#define RELAYPRO_ANCHORS_H

#include <stddef.h>

#include <bearssl.h>

#define ANCHORS_MAX 512               /* certificates kept */
#define ANCHORS_ARENA (256 * 1024)    /* their names and keys (the system bundle needs ~80 KiB) */
#define ANCHORS_READ_MAX (4 << 20)    /* bytes read from one file */
#define ANCHORS_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

struct anchors {
	br_x509_trust_anchor ta[ANCHORS_MAX];
	size_t n;                     /* anchors in ta[] */
	size_t used, mark;            /* arena fill; start of the object being decoded */
	int over, in_cert;
	int cr;                     /* the last byte pushed was a CR, held back (see push) */
	unsigned char arena[ANCHORS_ARENA];
	br_pem_decoder_context pc;
	br_x509_decoder_context xc;
};

/* Empty the store (keeps nothing from before). */
void anchors_reset(struct anchors *a);

/* Add the certificates of a PEM file. ERR_OK (even when it held none), or ERR_IO with a
 * reason naming the file in why. */
int anchors_add_file(struct anchors *a, const char *path, char *why, size_t whylen);

/* Add the certificates of inline PEM text; a literal backslash-n (one-line environment
 * values) counts as a newline. */
void anchors_add_pem(struct anchors *a, const char *text);

/* A consoleCACert-style value: inline PEM when it contains "-----BEGIN", else a file path.
 * As anchors_add_file / anchors_add_pem. */
int anchors_add_value(struct anchors *a, const char *value, char *why, size_t whylen);

/* Wipe the store (before freeing it). */
void anchors_wipe(struct anchors *a);

#endif

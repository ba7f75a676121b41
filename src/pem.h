/*
 * pem.h — PEM text (RFC 7468) to DER, whole files at a time, over BearSSL's decoder.
 *
 * pem_decode() walks every "-----BEGIN NAME-----" ... "-----END NAME-----" object of a
 * text in order and lists it (name, where its DER went); text outside the objects is
 * ignored (OpenSSL's "Bag Attributes" lines, `openssl x509 -text` dumps). The caller
 * chooses which objects are kept: only their DER is written, one after another, into the
 * caller's buffer; the others are listed with kept = 0 and never stored. Nothing is
 * allocated. Lines may end in LF or CRLF (BearSSL 0.6 reads a CR at the end of a BEGIN
 * line into the name, so CRs before LFs are dropped first).
 *
 * The caller's output buffer may receive private keys: the caller wipes it.
 */
#ifndef RELAYPRO_PEM_H
#define RELAYPRO_PEM_H

#include <stddef.h>

#define PEM_NAME_MAX 40 /* longer names are cut (and then match no known one) */

struct pem_obj {
	char name[PEM_NAME_MAX]; /* "CERTIFICATE", "PRIVATE KEY", ... */
	int kept;                /* 1 when keep() wanted it: its DER is out[off..off+len) */
	size_t off, len;
};

/* Decode text[0..n). keep(name) says whether an object's DER is stored (NULL: all are).
 * Returns the number of objects listed in objs[0..max), or -1 with *why set: damaged
 * base64 or a broken BEGIN/END line, an object without its END line, more than max
 * objects, or kept objects larger than cap together. */
int pem_decode(const void *text, size_t n, int (*keep)(const char *name), struct pem_obj *objs,
    int max, unsigned char *out, size_t cap, const char **why);

#endif

/*
 * anchors.c — PEM certificates to BearSSL trust anchors. See anchors.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "anchors.h"
#include "err.h"
#include "secret.h"

static void
dn_append(void *ctx, const void *buf, size_t len)
{
	struct anchors *a = ctx;

	if (a->over || len > ANCHORS_ARENA - a->used) {
		a->over = 1;
		return;
	}
	memcpy(a->arena + a->used, buf, len);
	a->used += len;
}

static unsigned char *
arena_copy(struct anchors *a, const unsigned char *p, size_t len)
{
	unsigned char *r = a->arena + a->used;

	dn_append(a, p, len);
	return a->over ? NULL : r;
}

static void
to_x509(void *ctx, const void *buf, size_t len)
{
	br_x509_decoder_push(ctx, buf, len);
}

/* A CERTIFICATE object ended: keep it when it decoded and fits, else roll back. */
static void
anchor_end(struct anchors *a)
{
	const br_x509_pkey *pk = br_x509_decoder_get_pkey(&a->xc);
	br_x509_trust_anchor *ta = &a->ta[a->n];
	int ok = pk != NULL && !a->over && a->n < ANCHORS_MAX;

	if (ok) {
		ta->dn.data = a->arena + a->mark;
		ta->dn.len = a->used - a->mark;
		ta->flags = br_x509_decoder_isCA(&a->xc) ? BR_X509_TA_CA : 0;
		ta->pkey = *pk;
		if (pk->key_type == BR_KEYTYPE_RSA) {
			ta->pkey.key.rsa.n = arena_copy(a, pk->key.rsa.n, pk->key.rsa.nlen);
			ta->pkey.key.rsa.e = arena_copy(a, pk->key.rsa.e, pk->key.rsa.elen);
		} else if (pk->key_type == BR_KEYTYPE_EC) {
			ta->pkey.key.ec.q = arena_copy(a, pk->key.ec.q, pk->key.ec.qlen);
		} else {
			a->over = 1;
		}
		ok = !a->over;
	}
	if (ok)
		a->n++;
	else
		a->used = a->mark;
	a->over = 0;
}

/* Feed PEM text; a damaged object is dropped and decoding goes on. */
static void
push_raw(struct anchors *a, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = br_pem_decoder_push(&a->pc, p, n);

		p += k;
		n -= k;
		switch (br_pem_decoder_event(&a->pc)) {
		case BR_PEM_BEGIN_OBJ:
			a->in_cert = strcmp(br_pem_decoder_name(&a->pc), "CERTIFICATE") == 0;
			a->mark = a->used;
			br_x509_decoder_init(&a->xc, dn_append, a);
			br_pem_decoder_setdest(&a->pc, a->in_cert ? to_x509 : NULL, &a->xc);
			break;
		case BR_PEM_END_OBJ:
			if (a->in_cert)
				anchor_end(a);
			a->in_cert = 0;
			break;
		case BR_PEM_ERROR:
			a->used = a->mark;
			a->in_cert = a->over = 0;
			break;
		}
	}
}

/* push_raw over text with CRLF line ends read as LF: BearSSL 0.6's PEM decoder leaves the
 * dashes in a BEGIN line's name when the line ends in CRLF (as ca.c found for bundles), so
 * a CA file saved on Windows would give no anchor. A CR before an LF is dropped, also when
 * the two arrive in different pushes; any other CR is passed on. */
static void
push(struct anchors *a, const char *p, size_t n)
{
	size_t i, start = 0;

	if (a->cr && n > 0) {
		a->cr = 0;
		if (p[0] != '\n')
			push_raw(a, "\r", 1);
	}
	for (i = 0; i < n; i++) {
		if (p[i] != '\r')
			continue;
		if (i + 1 == n) { /* decided by the next push */
			push_raw(a, p + start, i - start);
			a->cr = 1;
			return;
		}
		if (p[i + 1] == '\n') {
			push_raw(a, p + start, i - start);
			start = i + 1;
		}
	}
	push_raw(a, p + start, n - start);
}

/* Each source starts with a fresh PEM decoder and ends a last line without a newline. */
static void
begin(struct anchors *a)
{
	a->over = a->in_cert = a->cr = 0;
	a->mark = a->used;
	br_pem_decoder_init(&a->pc);
}

/* see anchors.h */
void
anchors_reset(struct anchors *a)
{
	a->n = a->used = a->mark = 0;
	begin(a);
}

/* see anchors.h */
void
anchors_add_pem(struct anchors *a, const char *text)
{
	const char *p = text, *bs;

	begin(a);
	while ((bs = strstr(p, "\\n")) != NULL) {
		push(a, p, (size_t)(bs - p));
		push(a, "\n", 1);
		p = bs + 2;
	}
	push(a, p, strlen(p));
	push(a, "\n", 1);
}

/* see anchors.h */
int
anchors_add_file(struct anchors *a, const char *path, char *why, size_t whylen)
{
	char chunk[4096];
	size_t total = 0;
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, whylen, "cannot read CA file %.1024s: %s", path, strerror(errno));
		return ERR_IO;
	}
	begin(a);
	while (total < ANCHORS_READ_MAX && (k = read(fd, chunk, sizeof chunk)) > 0) {
		push(a, chunk, (size_t)k);
		total += (size_t)k;
	}
	close(fd);
	push(a, "\n", 1);
	return ERR_OK;
}

/* see anchors.h */
int
anchors_add_value(struct anchors *a, const char *value, char *why, size_t whylen)
{
	if (strstr(value, "-----BEGIN") != NULL) {
		anchors_add_pem(a, value);
		return ERR_OK;
	}
	return anchors_add_file(a, value, why, whylen);
}

/* see anchors.h */
void
anchors_wipe(struct anchors *a)
{
	secret_wipe(a, sizeof *a);
}

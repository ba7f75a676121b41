/*
 * secret.h — handling secrets: constant-time comparison and wiping.
 *
 * Secrets (tokens, passwords, keys) are compared only with secret_eq, whose running time
 * depends on the lengths alone, never on where the inputs differ, and are wiped with
 * secret_wipe (explicit_bzero: the compiler may not drop it) before their storage is
 * reused or released.
 */
#ifndef RELAYPRO_SECRET_H
#define RELAYPRO_SECRET_H

#include <stddef.h>

/* 1 if a[0..alen) equals b[0..blen), else 0. Time depends on alen and blen only. */
int secret_eq(const void *a, size_t alen, const void *b, size_t blen);

/* Overwrite n bytes at p with zeros, in a way the optimizer keeps. */
void secret_wipe(void *p, size_t n);

#endif

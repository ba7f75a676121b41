/*
 * rand.h — the process's random bytes: BearSSL's HMAC_DRBG (SHA-256) seeded from the
 * kernel with getrandom(2), so the binary needs no /dev (scratch images, chroots).
 *
 * rand_init() must succeed before any other call; it is called again in a child after
 * fork() so parent and child never share a stream.
 */
#ifndef RELAYPRO_RAND_H
#define RELAYPRO_RAND_H

#include <stddef.h>

/* Seed (or reseed) from getrandom(). 0 on success, ERR_IO if the kernel refuses. */
int rand_init(void);

/* Fill out[0..len) with random bytes. rand_init() must have succeeded. */
void rand_bytes(void *out, size_t len);

/* A random UUID (version 4, RFC 4122 variant) as 36 characters and a NUL into out
 * (cap >= 37; less: cut). */
void rand_uuid4(char *out, size_t cap);

/* The DRBG as a BearSSL PRNG context (for br_rsa_keygen and friends). */
struct br_prng_class_;
const struct br_prng_class_ **rand_prng(void);

#endif

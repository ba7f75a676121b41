/*
 * rand.c — HMAC_DRBG seeded from getrandom(). See rand.h.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

#include <bearssl.h>

#include "err.h"
#include "rand.h"
#include "secret.h"

static br_hmac_drbg_context drbg;
static int seeded;

/* Read exactly len bytes from the kernel's pool; getrandom blocks only until the
 * pool is first initialised at boot. */
static int
kernel_bytes(unsigned char *out, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = getrandom(out + off, len - off, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ERR_IO;
		}
		off += (size_t)n;
	}
	return ERR_OK;
}

/* see rand.h */
int
rand_init(void)
{
	unsigned char seed[48];

	if (kernel_bytes(seed, sizeof seed) != ERR_OK)
		return ERR_IO;
	if (!seeded) {
		br_hmac_drbg_init(&drbg, &br_sha256_vtable, seed, sizeof seed);
		seeded = 1;
	} else {
		br_hmac_drbg_update(&drbg, seed, sizeof seed);
	}
	secret_wipe(seed, sizeof seed);
	return ERR_OK;
}

/* see rand.h */
void
rand_bytes(void *out, size_t len)
{
	br_hmac_drbg_generate(&drbg, out, len);
}

/* see rand.h */
const br_prng_class **
rand_prng(void)
{
	return &drbg.vtable;
}

/* see rand.h */
void
rand_uuid4(char *out, size_t cap)
{
	unsigned char u[16];

	rand_bytes(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, cap,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
	    u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

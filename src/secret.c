/*
 * secret.c — constant-time comparison and wiping. See secret.h.
 */
#include <string.h>

#include "secret.h"

/* see secret.h */
int
secret_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	size_t i, n = alen < blen ? alen : blen;
	unsigned d = (alen != blen); /* lengths are not secret */

	/* Walk the shorter length in full; a length mismatch is folded into d. */
	for (i = 0; i < n; i++)
		d |= (unsigned)(x[i] ^ y[i]);
	return d == 0;
}

/* see secret.h */
void
secret_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

/*
 * t_secret.c — secret_eq and secret_wipe: the answers (timing cannot be measured reliably
 * in a unit test; docs/security.md lists every secret comparison and shows it goes
 * through secret_eq).
 */
#include <string.h>

#include "secret.h"
#include "test.h"

void
t_secret(void)
{
	static const struct {
		const char *a, *b;
		size_t alen, blen;
		int want;
		const char *name;
	} cases[] = {
		{ "password1", "password1", 9, 9, 1, "equal" },
		{ "password1", "Password1", 9, 9, 0, "first byte differs" },
		{ "password1", "password2", 9, 9, 0, "last byte differs" },
		{ "password1", "password", 9, 8, 0, "b is a prefix of a" },
		{ "password", "password1", 8, 9, 0, "a is a prefix of b" },
		{ "", "", 0, 0, 1, "both empty" },
		{ "", "x", 0, 1, 0, "empty against one byte" },
		{ "a\0b", "a\0c", 3, 3, 0, "differs after a NUL" },
		{ "a\0b", "a\0b", 3, 3, 1, "equal with a NUL inside" },
		{ "\x80", "\x00", 1, 1, 0, "high bit only" },
		{ "\x01", "\x00", 1, 1, 0, "low bit only" },
	};
	unsigned char buf[64];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK_INT(secret_eq(cases[i].a, cases[i].alen, cases[i].b, cases[i].blen), cases[i].want,
		    cases[i].name);
	/* Every single-bit difference anywhere in 32 bytes is seen. */
	{
		unsigned char x[32], y[32];
		int all = 1;
		size_t bit;
		memset(x, 0x5a, sizeof x);
		for (bit = 0; bit < 8 * sizeof x; bit++) {
			memcpy(y, x, sizeof y);
			y[bit / 8] ^= (unsigned char)(1u << (bit % 8));
			all &= !secret_eq(x, sizeof x, y, sizeof y);
		}
		CHECK(all, "each of 256 one-bit differences in 32 bytes is unequal");
		CHECK(secret_eq(x, sizeof x, x, sizeof x), "a buffer equals itself");
	}
	memset(buf, 0xa5, sizeof buf);
	secret_wipe(buf + 8, 32);
	CHECK(buf[7] == 0xa5 && buf[8] == 0 && buf[39] == 0 && buf[40] == 0xa5,
	    "secret_wipe zeroes exactly the given range");
}

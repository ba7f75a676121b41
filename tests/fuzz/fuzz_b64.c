/*
 * fuzz_b64.c — base64url and standard base64 (b64.c).
 *
 * The input is decoded as base64url and as padded standard base64; whatever decodes
 * must encode back to exactly the input (b64.h: every byte string has exactly one
 * accepted text). The input is also encoded as raw bytes and decoded back.
 */
#include <string.h>

#include "b64.h"
#include "err.h"
#include "fuzz.h"

static unsigned char dec[8192];
static char enc[12000];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t n, e, i;
	int rc;

	if (size > 6000)
		return 0;
	rc = b64url_decode(dec, sizeof dec, &n, s, size);
	FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVAL || rc == ERR_NOSPACE);
	if (rc == ERR_OK) {
		FUZZ_ASSERT(n <= sizeof dec);
		e = b64url_encode(enc, sizeof enc, dec, n);
		FUZZ_ASSERT(e == size && memcmp(enc, s, size) == 0);
		/* Too small by one byte: no space, never a partial write counted as success. */
		if (n > 0)
			FUZZ_ASSERT(b64url_decode(dec, n - 1, &e, s, size) == ERR_NOSPACE);
	}
	rc = b64std_decode(dec, sizeof dec, &n, s, size);
	FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVAL || rc == ERR_NOSPACE);
	if (rc == ERR_OK) {
		e = b64url_encode(enc, sizeof enc, dec, n);
		for (i = 0; i < e; i++)
			enc[i] = enc[i] == '-' ? '+' : enc[i] == '_' ? '/' : enc[i];
		while (e % 4)
			enc[e++] = '=';
		FUZZ_ASSERT(e == size && memcmp(enc, s, size) == 0);
	}
	/* Raw bytes in, text out, bytes back. */
	e = b64url_encode(NULL, 0, data, size);
	FUZZ_ASSERT(e == b64url_enc_len(size));
	FUZZ_ASSERT(b64url_encode(enc, sizeof enc, data, size) == e);
	if (size > 0)
		FUZZ_ASSERT(b64url_encode(enc, e - 1, data, size) == 0);
	FUZZ_ASSERT(b64url_decode(dec, sizeof dec, &n, enc, e) == ERR_OK);
	FUZZ_ASSERT(n == size && memcmp(dec, data, size) == 0);
	return 0;
}

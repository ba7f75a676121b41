/* t_b64.c — base64url: RFC 4648 §10 vectors (url alphabet, no padding), canonical-only
 * decoding, buffer limits. */
#include "b64.h"
#include "err.h"
#include "test.h"

void
t_b64(void)
{
	static const struct { const char *in, *out; } vec[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
		{ "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	};
	static const char *bad[] = {
		"Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v\n", " Zm9v", "Zm 9v",
		"Zm9v=", "Zm9\x80", "Zg\0",
	};
	char buf[64];
	unsigned char raw[64];
	size_t i, n;

	for (i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		n = b64url_encode(buf, sizeof buf, vec[i].in, strlen(vec[i].in));
		buf[n] = 0;
		CHECK_STR(buf, vec[i].out, "encode RFC 4648 vector");
		CHECK_INT(b64url_encode(NULL, 0, vec[i].in, strlen(vec[i].in)), strlen(vec[i].out),
		    "encode length pass");
		CHECK_INT(b64url_decode(raw, sizeof raw, &n, vec[i].out, strlen(vec[i].out)), ERR_OK,
		    "decode RFC 4648 vector");
		CHECK(n == strlen(vec[i].in) && memcmp(raw, vec[i].in, n) == 0, "decode round trip");
	}
	/* url alphabet: 0xfb 0xff -> "-_8" */
	n = b64url_encode(buf, sizeof buf, "\xfb\xff", 2);
	buf[n] = 0;
	CHECK_STR(buf, "-_8", "url alphabet - and _");
	CHECK_INT(b64url_decode(raw, sizeof raw, &n, "-_8", 3), ERR_OK, "decode - and _");
	CHECK(n == 2 && raw[0] == 0xfb && raw[1] == 0xff, "decode - and _ value");

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(b64url_decode(raw, sizeof raw, &n, bad[i], strlen(bad[i]) + (i == 13)),
		    ERR_INVAL, bad[i]);

	CHECK_INT(b64url_decode(raw, 2, &n, "Zm9v", 4), ERR_NOSPACE, "decode: output too small");
	CHECK_INT(b64url_encode(buf, 3, "foo", 3), 0, "encode: output too small writes nothing");

	/* Every byte value round-trips, at every length 0..40. */
	{
		unsigned char all[40];
		int ok = 1;
		for (i = 0; i < sizeof all; i++)
			all[i] = (unsigned char)(i * 37 + 11);
		for (i = 0; i <= sizeof all; i++) {
			n = b64url_encode(buf, sizeof buf, all, i);
			if (b64url_decode(raw, sizeof raw, &n, buf, n) != ERR_OK || n != i ||
			    memcmp(raw, all, i) != 0)
				ok = 0;
		}
		CHECK(ok, "round trip lengths 0..40");
	}
}

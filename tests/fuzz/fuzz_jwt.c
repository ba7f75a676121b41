/*
 * fuzz_jwt.c — compact JWS (jwt.c, and b64.c and json.c under it).
 *
 * Input byte 0, bit 0 clear: the rest is a token: jwt_parse, then with a fixed key
 * jwt_verify_sig and jwt_check_time. Bit 0 set: the rest is "header JSON NUL claims
 * JSON"; it is signed with jwt_sign and parsed back: whenever jwt_parse accepts what
 * jwt_sign made, the signature must verify with the same key and fail with another.
 * Either way a parsed kid equals exactly its own bytes (an escaped NUL in it included),
 * never a prefix of them.
 */
#include <string.h>

#include "fuzz.h"
#include "jwt.h"

static const char key[] = "fuzz-key-0123456789abcdef";

static int
sub_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

static void
check_parsed(const struct jwt_token *t, const char *tok, size_t len)
{
	size_t i;

	FUZZ_ASSERT(t->signing_input == tok && t->signing_len < len);
	FUZZ_ASSERT(t->has & JWT_HAS_EXP);
	if (t->has & JWT_HAS_SUB) {
		size_t n = strlen(t->sub);
		FUZZ_ASSERT(n >= 1 && n <= JWT_SUB_MAX);
		for (i = 0; i < n; i++)
			FUZZ_ASSERT(sub_char_ok(t->sub[i]));
	}
	FUZZ_ASSERT(strlen(t->kid) <= JWT_STR_MAX && strlen(t->aud) <= JWT_STR_MAX);
	/* kid: its bytes and length, a NUL among them included, equal only themselves */
	if (t->has & JWT_HAS_KID) {
		FUZZ_ASSERT(t->kid_len <= JWT_STR_MAX && t->kid[t->kid_len] == 0);
		FUZZ_ASSERT(jwt_kid_eq(t, t->kid, t->kid_len));
		if (t->kid_len > 0)
			FUZZ_ASSERT(!jwt_kid_eq(t, t->kid, t->kid_len - 1));
		if (strlen(t->kid) != t->kid_len)
			FUZZ_ASSERT(!jwt_kid_eq(t, t->kid, strlen(t->kid)));
	} else {
		FUZZ_ASSERT(!jwt_kid_eq(t, "", 0) && t->kid_len == 0);
	}
	FUZZ_ASSERT(strlen(t->iss) <= JWT_STR_MAX && strlen(t->jti) <= JWT_STR_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jwt_token t;
	static char tok[JWT_MAX + 64];

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		const char *s = (const char *)data + 1;
		size_t len = size - 1;
		int rc = jwt_parse(s, len, &t);
		FUZZ_ASSERT(rc >= JWT_OK && rc <= JWT_BAD_SUB);
		FUZZ_ASSERT(jwt_status_str(rc) != NULL);
		if (rc != JWT_OK)
			return 0;
		check_parsed(&t, s, len);
		rc = jwt_verify_sig(&t, key, sizeof key - 1);
		FUZZ_ASSERT(rc == JWT_OK || rc == JWT_BAD_SIG);
		rc = jwt_check_time(&t, 1800000000LL, 60);
		FUZZ_ASSERT(rc == JWT_OK || rc == JWT_EXPIRED || rc == JWT_NOT_YET_VALID);
		(void)jwt_check_time(&t, INT64_MAX - 1000, 60);
		(void)jwt_check_time(&t, INT64_MIN + 1000, 60);
	} else {
		char hdr[1024], claims[2048];
		const uint8_t *nul = memchr(data + 1, 0, size - 1);
		size_t hl, cl, n;
		if (nul == NULL)
			return 0;
		hl = (size_t)(nul - (data + 1));
		cl = size - 1 - hl - 1;
		if (hl >= sizeof hdr || cl >= sizeof claims || memchr(nul + 1, 0, cl))
			return 0;
		memcpy(hdr, data + 1, hl);
		hdr[hl] = 0;
		memcpy(claims, nul + 1, cl);
		claims[cl] = 0;
		n = jwt_sign(tok, sizeof tok, hdr, claims, key, sizeof key - 1);
		if (n == 0)
			return 0;
		FUZZ_ASSERT(n < sizeof tok && tok[n] == 0 && strlen(tok) == n);
		if (jwt_parse(tok, n, &t) != JWT_OK)
			return 0;
		check_parsed(&t, tok, n);
		FUZZ_ASSERT(jwt_verify_sig(&t, key, sizeof key - 1) == JWT_OK);
		FUZZ_ASSERT(jwt_verify_sig(&t, key, sizeof key - 2) == JWT_BAD_SIG);
	}
	return 0;
}

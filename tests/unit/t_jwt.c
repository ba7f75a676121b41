/* t_jwt.c — HS256 JWS: RFC 7515 appendix A.1, and a table of hostile tokens, each its
 * own assertion. Hostile tokens are signed with the right key so that only the rule under
 * test can reject them. */
#include <stdio.h>

#include "b64.h"
#include "jwt.h"
#include "test.h"

#define NOW 1800000000LL
static const char key[] = "test-security-token";

static int
verify(const char *tok, int64_t now)
{
	struct jwt_token t;
	int rc = jwt_parse(tok, strlen(tok), &t);

	if (rc != JWT_OK)
		return rc;
	if ((rc = jwt_verify_sig(&t, key, sizeof key - 1)) != JWT_OK)
		return rc;
	return jwt_check_time(&t, now, 60);
}

static const char *
signed_tok(char *buf, size_t cap, const char *hdr, const char *claims)
{
	if (jwt_sign(buf, cap, hdr, claims, key, sizeof key - 1) == 0)
		snprintf(buf, cap, "(did not fit)");
	return buf;
}

/* header.payload with a raw signature part (not computed). */
static const char *
raw_tok(char *buf, size_t cap, const char *hdr, const char *claims, const char *sig)
{
	size_t o = b64url_encode(buf, cap, hdr, strlen(hdr));
	buf[o++] = '.';
	o += b64url_encode(buf + o, cap - o, claims, strlen(claims));
	snprintf(buf + o, cap - o, ".%s", sig);
	return buf;
}

void
t_jwt(void)
{
	static const char rfc_tok[] =
	    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
	    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	static const char rfc_k[] =
	    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	static const char H[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char C[] = "{\"sub\":\"r-1\",\"org\":7,\"aud\":\"relaypro:3\",\"exp\":1800000100}";
	static const struct { const char *hdr, *claims; int want; const char *name; } table[] = {
		{ H, C, JWT_OK, "good token" },
		{ "{\"alg\":\"HS256\"}", C, JWT_OK, "typ optional" },
		{ "{\"alg\":\"HS256\",\"kid\":\"abc\",\"jku\":\"http://x\",\"jwk\":{}}", C, JWT_OK,
		  "jwk/jku ignored" },
		{ "{\"alg\":\"none\",\"typ\":\"JWT\"}", C, JWT_BAD_ALG, "alg none" },
		{ "{\"alg\":\"RS256\"}", C, JWT_BAD_ALG, "alg RS256" },
		{ "{\"alg\":\"HS512\"}", C, JWT_BAD_ALG, "alg HS512" },
		{ "{\"alg\":\"hs256\"}", C, JWT_BAD_ALG, "alg lower case" },
		{ "{\"typ\":\"JWT\"}", C, JWT_BAD_ALG, "alg missing" },
		{ "{\"alg\":[\"HS256\"]}", C, JWT_BAD_ALG, "alg not a string" },
		{ "{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", C, JWT_BAD_ALG, "typ not JWT" },
		{ "{\"alg\":\"HS256\",\"alg\":\"none\"}", C, JWT_MALFORMED, "duplicate alg" },
		{ "[\"HS256\"]", C, JWT_MALFORMED, "header not an object" },
		{ H, "{\"sub\":\"r-1\",\"sub\":\"r-2\",\"exp\":1800000100}", JWT_MALFORMED, "duplicate claim" },
		{ H, "{\"sub\":\"r-1\"}", JWT_MALFORMED, "exp missing" },
		{ H, "{\"exp\":\"1800000100\"}", JWT_MALFORMED, "exp a string" },
		{ H, "{\"exp\":1800000100.5}", JWT_MALFORMED, "exp fractional" },
		{ H, "{\"org\":\"7\",\"exp\":1800000100}", JWT_MALFORMED, "org a string" },
		{ H, "{\"aud\":[\"relaypro:3\"],\"exp\":1800000100}", JWT_MALFORMED, "aud an array" },
		{ H, "{\"sub\":\"a b\",\"exp\":1800000100}", JWT_BAD_SUB, "sub with a space" },
		{ H, "{\"sub\":\"\",\"exp\":1800000100}", JWT_BAD_SUB, "sub empty" },
		{ H, "{\"sub\":\"x/../y\",\"exp\":1800000100}", JWT_BAD_SUB, "sub with a slash" },
		{ H, "{\"sub\":\"a\\u0000b\",\"exp\":1800000100}", JWT_MALFORMED, "sub with NUL" },
		{ H, "{\"exp\":1799999900}", JWT_EXPIRED, "expired beyond skew" },
		{ H, "{\"exp\":1799999950}", JWT_OK, "expired within skew" },
		{ H, "{\"exp\":1800000000}", JWT_OK, "exp == now" },
		{ H, "{\"exp\":1800000100,\"nbf\":1800000100}", JWT_NOT_YET_VALID, "nbf beyond skew" },
		{ H, "{\"exp\":1800000100,\"nbf\":1800000050}", JWT_OK, "nbf within skew" },
		{ H, "{\"exp\":1800000100,\"iat\":1800000500}", JWT_NOT_YET_VALID, "iat in the future" },
		{ H, "{\"exp\":-9223372036854775808}", JWT_EXPIRED, "exp at INT64_MIN" },
		{ H, "{\"exp\":9223372036854775807,\"nbf\":9223372036854775807}", JWT_NOT_YET_VALID,
		  "nbf at INT64_MAX" },
	};
	char buf[JWT_MAX + 64], tmp[JWT_MAX * 2];
	unsigned char rk[128];
	struct jwt_token t;
	size_t i, n;

	/* RFC 7515 A.1: parses, verifies with the published key, and is expired today. */
	CHECK_INT(b64url_decode(rk, sizeof rk, &n, rfc_k, strlen(rfc_k)), 0, "A.1 key decodes");
	CHECK_INT(jwt_parse(rfc_tok, strlen(rfc_tok), &t), JWT_OK, "A.1 parses");
	CHECK_INT(jwt_verify_sig(&t, rk, n), JWT_OK, "A.1 signature verifies");
	CHECK_INT(t.exp, 1300819380, "A.1 exp read");
	CHECK_STR(t.iss, "joe", "A.1 iss read");
	CHECK_INT(jwt_check_time(&t, 1300819380, 0), JWT_OK, "A.1 valid at its exp");
	CHECK_INT(jwt_check_time(&t, NOW, 60), JWT_EXPIRED, "A.1 expired now");
	rk[0] ^= 1;
	CHECK_INT(jwt_verify_sig(&t, rk, n), JWT_BAD_SIG, "A.1 with a wrong key");

	for (i = 0; i < sizeof table / sizeof table[0]; i++)
		CHECK_INT(verify(signed_tok(buf, sizeof buf, table[i].hdr, table[i].claims), NOW),
		    table[i].want, table[i].name);

	/* Claims read back from a good token. */
	signed_tok(buf, sizeof buf, "{\"alg\":\"HS256\",\"kid\":\"0123456789abcdef\"}", C);
	CHECK_INT(jwt_parse(buf, strlen(buf), &t), JWT_OK, "good token parses");
	CHECK(strcmp(t.sub, "r-1") == 0 && t.org == 7 && strcmp(t.aud, "relaypro:3") == 0 &&
	    t.exp == 1800000100 && (t.has & JWT_HAS_KID) && strcmp(t.kid, "0123456789abcdef") == 0,
	    "claims and kid read back");

	/* kid kept and compared as exact bytes: a JSON \u0000 is a byte of it, not its end. */
	{
		static const struct {
			const char *hdr_kid; /* JSON text between the quotes */
			const char *bytes;
			size_t len;
			const char *name;
		} kids[] = {
			{ "0123456789abcdef", "0123456789abcdef", 16, "kid exact" },
			{ "0123456789abcdef\\u0000", "0123456789abcdef\0", 17, "kid with a NUL appended" },
			{ "0123456789abcdef\\u0000x", "0123456789abcdef\0x", 18, "kid with a NUL and more" },
			{ "\\u0000", "\0", 1, "kid of one NUL" },
			{ "", "", 0, "empty kid" },
			{ "01234567\\u0030", "012345670", 9, "escaped digit decoded" },
		};
		char hdr[160];

		for (i = 0; i < sizeof kids / sizeof kids[0]; i++) {
			snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kids[i].hdr_kid);
			signed_tok(buf, sizeof buf, hdr, C);
			CHECK(jwt_parse(buf, strlen(buf), &t) == JWT_OK && (t.has & JWT_HAS_KID) &&
			    t.kid_len == kids[i].len && memcmp(t.kid, kids[i].bytes, kids[i].len) == 0,
			    kids[i].name);
			CHECK(jwt_kid_eq(&t, kids[i].bytes, kids[i].len), kids[i].name);
		}
		signed_tok(buf, sizeof buf, "{\"alg\":\"HS256\",\"kid\":\"0123456789abcdef\\u0000\"}", C);
		CHECK(jwt_parse(buf, strlen(buf), &t) == JWT_OK &&
		    !jwt_kid_eq(&t, "0123456789abcdef", 16),
		    "kid with a NUL appended does not equal the kid without it");
		signed_tok(buf, sizeof buf, "{\"alg\":\"HS256\",\"kid\":\"0123456789abcdef\"}", C);
		CHECK(jwt_parse(buf, strlen(buf), &t) == JWT_OK &&
		    !jwt_kid_eq(&t, "0123456789abcde", 15) && !jwt_kid_eq(&t, "0123456789abcdef0", 17) &&
		    !jwt_kid_eq(&t, "0123456789ABCDEF", 16), "kid: prefix, longer, other case differ");
		signed_tok(buf, sizeof buf, H, C);
		CHECK(jwt_parse(buf, strlen(buf), &t) == JWT_OK && !jwt_kid_eq(&t, "", 0),
		    "no kid equals nothing, not even the empty kid");
		snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"kid\":\"%0129d\"}", 0);
		signed_tok(buf, sizeof buf, hdr, C);
		CHECK(jwt_parse(buf, strlen(buf), &t) == JWT_OK && !(t.has & JWT_HAS_KID) &&
		    !jwt_kid_eq(&t, "", 0), "a kid over 128 bytes is no kid");
		signed_tok(buf, sizeof buf, "{\"alg\":\"HS256\",\"kid\":16}", C);
		CHECK(jwt_parse(buf, strlen(buf), &t) == JWT_OK && !(t.has & JWT_HAS_KID),
		    "a kid that is not a string is no kid");
	}

	/* Shape. */
	signed_tok(buf, sizeof buf, H, C);
	n = strlen(buf);
	buf[n - 1] = buf[n - 1] == 'A' ? 'B' : 'A';
	CHECK(verify(buf, NOW) != JWT_OK, "signature last char changed");
	signed_tok(buf, sizeof buf, H, C);
	snprintf(tmp, sizeof tmp, "%s.", buf);
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "extra dot at the end");
	snprintf(tmp, sizeof tmp, "%s.xyz", buf);
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "four parts");
	CHECK_INT(verify("abc.def", NOW), JWT_MALFORMED, "two parts");
	CHECK_INT(verify("", NOW), JWT_MALFORMED, "empty");
	CHECK_INT(verify("..", NOW), JWT_MALFORMED, "only dots");
	snprintf(tmp, sizeof tmp, "%s=", buf);
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "padding on the signature");
	snprintf(tmp, sizeof tmp, " %s", buf);
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "leading space");
	raw_tok(tmp, sizeof tmp, "{\"alg\":\"none\"}", C, "");
	CHECK_INT(verify(tmp, NOW), JWT_BAD_ALG, "alg none with empty signature");
	raw_tok(tmp, sizeof tmp, H, C, "");
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "HS256 with empty signature");
	raw_tok(tmp, sizeof tmp, H, C, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "signature of the wrong length");
	raw_tok(tmp, sizeof tmp, H, C, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB");
	CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "non-canonical signature (trailing bits)");
	raw_tok(tmp, sizeof tmp, H, C, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	CHECK_INT(verify(tmp, NOW), JWT_BAD_SIG, "all-zero signature");

	/* Non-canonical base64url in the header: 'J9' vs 'J8'-style trailing bits. */
	{
		char hb[128];
		size_t hl = b64url_encode(hb, sizeof hb, "{\"alg\":\"HS256\"}", 15);
		hb[hl] = 0;
		/* 15 bytes -> 20 chars, no leftover bits: append a char that makes length 21 (1 mod 4). */
		snprintf(tmp, sizeof tmp, "%sA.%s", hb, strchr(buf, '.') + 1);
		CHECK_INT(verify(tmp, NOW), JWT_MALFORMED, "header length 1 mod 4");
	}

	/* Length limit. */
	{
		char claims[JWT_MAX];
		memset(claims, 0, sizeof claims);
		snprintf(claims, sizeof claims, "{\"exp\":1800000100,\"pad\":\"");
		memset(claims + strlen(claims), 'x', 3000);
		strcat(claims, "\"}");
		signed_tok(buf, sizeof buf, H, claims);
		CHECK(strlen(buf) > JWT_MAX, "long token is long");
		CHECK_INT(verify(buf, NOW), JWT_TOO_LONG, "over 4096 bytes");
	}
}

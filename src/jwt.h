/*
 * jwt.h — compact JWS with HS256 only (RFC 7515, RFC 7519), as docs/protocol.md describes.
 *
 * A token is checked in two steps because the access-token key depends on the token's
 * own claims (docs/protocol.md): jwt_parse() checks the shape, the header and the claim types
 * and fills a jwt_token; the caller then picks the key and calls jwt_verify_sig(), and
 * finally jwt_check_time(). Nothing in a jwt_token may be trusted before jwt_verify_sig
 * has returned ERR_OK.
 *
 * Shape rules: at most JWT_MAX bytes; exactly two dots; each part strict base64url
 * (b64.h); the header a JSON object whose `alg` is exactly "HS256" (anything else,
 * "none" included, is JWT_BAD_ALG) and whose `typ`, if present, is "JWT"; other header
 * members are ignored (never used to find a key); duplicate keys anywhere are rejected.
 * `exp` is required; `sub`, when present, is 1..128 characters of [A-Za-z0-9._:@-].
 */
#ifndef RELAYPRO_JWT_H
#define RELAYPRO_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JWT_MAX 4096
#define JWT_SUB_MAX 128
#define JWT_STR_MAX 128
#define JWT_SIG_LEN 32

enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED,     /* not a well-formed compact JWS / claims of the wrong type */
	JWT_TOO_LONG,      /* over JWT_MAX bytes */
	JWT_BAD_ALG,       /* alg is not HS256 (or typ is not JWT) */
	JWT_BAD_SIG,       /* signature does not verify */
	JWT_EXPIRED,       /* now > exp + skew */
	JWT_NOT_YET_VALID, /* nbf or iat later than now + skew */
	JWT_BAD_SUB        /* sub outside the allowed alphabet or length */
};

enum {
	JWT_HAS_SUB = 1 << 0, JWT_HAS_ORG = 1 << 1, JWT_HAS_AUD = 1 << 2, JWT_HAS_EXP = 1 << 3,
	JWT_HAS_NBF = 1 << 4, JWT_HAS_IAT = 1 << 5, JWT_HAS_ISS = 1 << 6, JWT_HAS_EP = 1 << 7,
	JWT_HAS_JTI = 1 << 8, JWT_HAS_KID = 1 << 9
};

struct jwt_token {
	const char *signing_input; /* header.payload, inside the caller's token text */
	size_t signing_len;
	unsigned char sig[JWT_SIG_LEN];
	unsigned has;              /* JWT_HAS_* bits */
	char kid[JWT_STR_MAX + 1]; /* header: kid_len bytes, which may include a NUL (JSON
	                            * \u0000): compare with jwt_kid_eq, never as a C string */
	size_t kid_len;
	char sub[JWT_SUB_MAX + 1], aud[JWT_STR_MAX + 1], iss[JWT_STR_MAX + 1];
	char jti[JWT_STR_MAX + 1];
	int64_t org, exp, nbf, iat, ep;
};

/* Check shape, header and claim types of tok[0..len). Returns a jwt_status. */
int jwt_parse(const char *tok, size_t len, struct jwt_token *t);

/* 1 when the token has a kid of exactly want[0..len) (every byte, the length included);
 * 0 when it differs or the token has none. kid is a public value: not constant-time. */
int jwt_kid_eq(const struct jwt_token *t, const char *want, size_t len);

/* Verify the HS256 signature with key[0..keylen), in constant time. JWT_OK or JWT_BAD_SIG. */
int jwt_verify_sig(const struct jwt_token *t, const void *key, size_t keylen);

/* Check exp (required), nbf and iat against now with skew seconds of tolerance. */
int jwt_check_time(const struct jwt_token *t, int64_t now, int64_t skew);

/* Sign: writes base64url(header).base64url(claims).base64url(HMAC) into out (cap bytes,
 * NUL-terminated). Returns the length, or 0 when it does not fit. */
size_t jwt_sign(char *out, size_t cap, const char *header_json, const char *claims_json,
    const void *key, size_t keylen);

/* 1 when s[0..n) is a `sub` the relay accepts: 1..JWT_SUB_MAX characters of
 * [A-Za-z0-9._:@-]. The one rule: jwt_parse applies it to every token, and `relaypro
 * token grant` to the --sub it is asked to sign. */
int jwt_sub_ok(const char *s, size_t n);

/* A short reason for a jwt_status, for logs. */
const char *jwt_status_str(int status);

#endif

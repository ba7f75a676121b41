/*
 * fuzz_token.c — token verification (token.c) with a fixed key: a stand-in CA (fixed key
 * bytes and fingerprint; no RSA needed, token.c only hashes them) and a fixed config.
 *
 * Byte 0 selects:
 *   0: the rest is a token, checked as a console grant and as an access token;
 *   1: the rest is a claims object, signed as a valid grant with the securityToken, then
 *      verified (so the claim checks behind the signature are reached);
 *   2: the rest is a claims object, signed as an access token under the key derived from
 *      its own sub, org and ep, then verified; with bit 0x40 set the rest is a kid
 *      suffix, '|', claims (see kid_suffix: only the exact kid is accepted);
 *   3: the rest is a sub: when token_issue accepts it, the token it makes must verify
 *      and give the same sub back.
 */
#include <string.h>

#include "ca.h"
#include "config.h"
#include "fuzz.h"
#include "jwt.h"
#include "kdf.h"
#include "rand.h"
#include "token.h"

#define NOW 1800000000LL

static struct ca ca;
static struct config cfg;
static struct kdf_master master;

static void
setup(void)
{
	static int done;
	size_t i;

	if (done)
		return;
	done = 1;
	FUZZ_ASSERT(rand_init() == 0); /* token_issue draws its jti */
	for (i = 0; i < 64; i++)
		ca.key_der[i] = (unsigned char)(i * 7 + 1);
	ca.key_der_len = 64;
	for (i = 0; i < 32; i++)
		ca.cert_sha256[i] = (unsigned char)(0xA0 + i);
	token_init(&ca);
	kdf_master_init(&master, ca.key_der, ca.key_der_len);
	strcpy(cfg.security_token, "fuzz-security-token");
	cfg.relay_id = 42;
	cfg.organization_id = 7;
	cfg.clock_skew = 60;
	cfg.token_duration = 3600;
	cfg.token_epoch = 3;
}

static void
verify_both(const char *tok, size_t len)
{
	char sub[JWT_SUB_MAX + 1], why[TOKEN_WHY_MAX];
	const char *code = NULL;
	int rc;

	why[0] = 'x';
	rc = token_verify_grant(&cfg, tok, len, NOW, sub, sizeof sub, &code, why, sizeof why);
	FUZZ_ASSERT(code != NULL);
	FUZZ_ASSERT(memchr(why, 0, sizeof why) != NULL);
	if (rc == 0)
		FUZZ_ASSERT(strlen(sub) >= 1 && strlen(sub) <= JWT_SUB_MAX && why[0] == 0);
	else
		FUZZ_ASSERT(why[0] != 0);
	code = NULL;
	rc = token_verify_access(&cfg, tok, len, NOW, sub, sizeof sub, &code, why, sizeof why);
	FUZZ_ASSERT(code != NULL);
	FUZZ_ASSERT(memchr(why, 0, sizeof why) != NULL);
	if (rc == 0)
		FUZZ_ASSERT(strlen(sub) >= 1 && strlen(sub) <= JWT_SUB_MAX && why[0] == 0);
	else
		FUZZ_ASSERT(why[0] != 0);
}

/* Mode 2 with bit 0x40: in[0..len) is "SUFFIX NUL-free, then '|', then claims": an
 * access token whose header kid is this relay's kid followed by SUFFIX (JSON string
 * text: \u0000 and other escapes allowed), signed with the key its claims derive. It
 * may be accepted only when the kid it carries is exactly this relay's, byte for byte;
 * any other kid that parses is refused as ca_changed. */
static void
kid_suffix(const char *in, size_t len)
{
	static char tok[JWT_MAX + 64], hdr[512];
	static struct jwt_token t;
	const char *bar = memchr(in, '|', len), *code = NULL;
	unsigned char key[KDF_KEY_LEN];
	char sub[JWT_SUB_MAX + 1], why[TOKEN_WHY_MAX];
	size_t n;
	int rc;

	if (bar == NULL || (size_t)(bar - in) > 200)
		return;
	snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"kid\":\"%s%.*s\"}", token_kid(),
	    (int)(bar - in), in);
	n = jwt_sign(tok, sizeof tok, hdr, bar + 1, "x", 1);
	if (n == 0 || jwt_parse(tok, n, &t) != JWT_OK)
		return;
	if (kdf_access_key(&master, t.sub, strlen(t.sub), t.org, (uint64_t)t.ep, key) != 0)
		return;
	n = jwt_sign(tok, sizeof tok, hdr, bar + 1, key, sizeof key);
	if (n == 0 || jwt_parse(tok, n, &t) != JWT_OK)
		return;
	rc = token_verify_access(&cfg, tok, n, NOW, sub, sizeof sub, &code, why, sizeof why);
	FUZZ_ASSERT(memchr(why, 0, sizeof why) != NULL);
	if (rc == 0)
		FUZZ_ASSERT(jwt_kid_eq(&t, token_kid(), strlen(token_kid())));
	if ((t.has & JWT_HAS_KID) && !jwt_kid_eq(&t, token_kid(), strlen(token_kid())))
		FUZZ_ASSERT(rc != 0 && strcmp(code, "ca_changed") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char tok[JWT_MAX + 64], claims[2048];
	static struct jwt_token t;
	size_t n;

	setup();
	if (size < 1)
		return 0;
	if (data[0] % 4 == 0) {
		verify_both((const char *)data + 1, size - 1);
		return 0;
	}
	if (size - 1 >= sizeof claims || memchr(data + 1, 0, size - 1))
		return 0;
	memcpy(claims, data + 1, size - 1);
	claims[size - 1] = 0;
	if (data[0] % 4 == 1) {
		n = jwt_sign(tok, sizeof tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims,
		    cfg.security_token, strlen(cfg.security_token));
		if (n)
			verify_both(tok, n);
	} else if (data[0] % 4 == 2 && (data[0] & 0x40)) {
		kid_suffix(claims, size - 1);
	} else if (data[0] % 4 == 2) {
		char hdr[80];
		unsigned char key[KDF_KEY_LEN];
		snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", token_kid());
		n = jwt_sign(tok, sizeof tok, hdr, claims, "x", 1);
		if (n == 0 || jwt_parse(tok, n, &t) != JWT_OK)
			return 0;
		if (kdf_access_key(&master, t.sub, strlen(t.sub), t.org, (uint64_t)t.ep, key) != 0)
			return 0;
		n = jwt_sign(tok, sizeof tok, hdr, claims, key, sizeof key);
		if (n)
			verify_both(tok, n);
	} else {
		char sub[JWT_SUB_MAX + 1];
		const char *code = NULL;
		size_t i, sl = size - 1;
		/* token_issue's contract: sub already passed the grant check (jwt.h's alphabet). */
		if (sl < 1 || sl > JWT_SUB_MAX)
			return 0;
		for (i = 0; i < sl; i++)
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-",
			    claims[i]))
				return 0;
		n = token_issue(&cfg, claims, NOW, tok, TOKEN_ACCESS_MAX);
		if (n == 0)
			return 0;
		FUZZ_ASSERT(n < TOKEN_ACCESS_MAX && strlen(tok) == n);
		FUZZ_ASSERT(token_verify_access(&cfg, tok, n, NOW, sub, sizeof sub, &code, NULL, 0) == 0);
		FUZZ_ASSERT(strcmp(sub, claims) == 0);
	}
	return 0;
}

/* t_token.c — grants and access tokens (SPEC §3.2, §3.3) with a generated CA: issue,
 * verify, and every rejection, each its own assertion. */
#include <stdio.h>
#include <time.h>

#include "b64.h"
#include "ca.h"
#include "config.h"
#include "jwt.h"
#include "kdf.h"
#include "token.h"
#include "test.h"

#define NOW 1800000000LL

static struct config cfg;
static struct ca ca;

static const char *
verify_access(const char *tok, int64_t now)
{
	char sub[200];
	const char *code = "?";

	if (token_verify_access(&cfg, tok, strlen(tok), now, sub, sizeof sub, &code) == 0)
		return "ok";
	return code;
}

static const char *
verify_grant(const char *tok, int64_t now)
{
	char sub[200];
	const char *code = "?";

	if (token_verify_grant(&cfg, tok, strlen(tok), now, sub, sizeof sub, &code) == 0)
		return "ok";
	return code;
}

static const char *
grant(char *buf, size_t cap, const char *claims)
{
	jwt_sign(buf, cap, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, cfg.security_token,
	    strlen(cfg.security_token));
	return buf;
}

void
t_token(void)
{
	char tok[2048], other[2048], buf[2048];
	struct jwt_token t;
	size_t n;

	memset(&cfg, 0, sizeof cfg);
	strcpy(cfg.security_token, "unit-test-security-token");
	cfg.organization_id = 42;
	cfg.relay_id = 7;
	cfg.token_duration = 3600;
	cfg.clock_skew = 60;
	CHECK_INT(ca_generate(&ca, 2048, "123e4567-e89b-12d3-a456-426614174000", (time_t)NOW), 0,
	    "CA generated");
	token_init(&ca);
	CHECK_INT(strlen(token_kid()), 16, "kid is 16 hex digits");

	/* Grants. */
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW), "ok",
	    "good grant");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":43,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW),
	    "token_invalid", "grant for another org");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:8\",\"exp\":1800000600}"), NOW),
	    "token_invalid", "grant for another relay");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW), "token_invalid",
	    "grant without sub");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1799999000}"), NOW),
	    "token_expired", "expired grant");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r 1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW),
	    "token_invalid", "grant with a bad sub");
	CHECK_STR(verify_grant("", NOW), "auth_required", "empty grant");
	jwt_sign(buf, sizeof buf, "{\"alg\":\"HS256\"}",
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}", "other-key", 9);
	CHECK_STR(verify_grant(buf, NOW), "token_invalid", "grant signed with another key");

	/* Access tokens. */
	n = token_issue(&cfg, "r-1", NOW, tok, sizeof tok);
	CHECK(n > 0 && n < TOKEN_ACCESS_MAX, "access token issued");
	CHECK_STR(verify_access(tok, NOW), "ok", "fresh access token verifies");
	CHECK_STR(verify_access(tok, NOW + 3600 + 60), "ok", "valid at exp + skew");
	CHECK_STR(verify_access(tok, NOW + 3600 + 61), "token_expired", "expired after exp + skew");
	CHECK_INT(jwt_parse(tok, n, &t), JWT_OK, "access token parses");
	CHECK(strcmp(t.kid, token_kid()) == 0 && strcmp(t.iss, "relaypro") == 0 && t.org == 42 &&
	    t.ep == 0 && t.exp == NOW + 3600 && t.iat == NOW && strlen(t.jti) == 32,
	    "access token claims");
	CHECK_STR(verify_access(tok + 1, NOW), "token_invalid", "truncated access token");
	memcpy(other, tok, n + 1);
	other[n - 2] = other[n - 2] == 'A' ? 'B' : 'A';
	CHECK_STR(verify_access(other, NOW), "token_invalid", "tampered signature");
	/* The same claims signed with the security token instead of the derived key. */
	{
		char *dot = strchr(tok, '.'), *dot2 = strchr(dot + 1, '.');
		unsigned char hdr[256], cl[512];
		size_t hl, cll;
		b64url_decode(hdr, sizeof hdr - 1, &hl, tok, (size_t)(dot - tok));
		hdr[hl] = 0;
		b64url_decode(cl, sizeof cl - 1, &cll, dot + 1, (size_t)(dot2 - dot - 1));
		cl[cll] = 0;
		jwt_sign(other, sizeof other, (char *)hdr, (char *)cl, cfg.security_token,
		    strlen(cfg.security_token));
		CHECK_STR(verify_access(other, NOW), "token_invalid", "signed with the security token");
	}
	/* Revocation by epoch. */
	cfg.token_epoch = 1;
	CHECK_STR(verify_access(tok, NOW), "token_revoked", "older epoch revoked");
	n = token_issue(&cfg, "r-1", NOW, other, sizeof other);
	CHECK_STR(verify_access(other, NOW), "ok", "new epoch token verifies");
	cfg.token_epoch = 0;
	CHECK_STR(verify_access(other, NOW), "token_invalid", "token from a future epoch");
	/* Another organisation configured: the token no longer fits. */
	cfg.organization_id = 43;
	CHECK_STR(verify_access(tok, NOW), "token_invalid", "org changed");
	cfg.organization_id = 42;
	/* A new CA: the kid changes, old tokens say ca_changed. */
	{
		static struct ca ca2;
		CHECK_INT(ca_generate(&ca2, 2048, "123e4567-e89b-12d3-a456-426614174000", (time_t)NOW), 0,
		    "second CA generated");
		token_init(&ca2);
		CHECK_STR(verify_access(tok, NOW), "ca_changed", "token from the old CA");
		ca_free(&ca2);
		token_init(&ca);
		CHECK_STR(verify_access(tok, NOW), "ok", "back on the first CA");
	}
	/* alg none with our kid. */
	{
		char h[128], c[256], e1[256], e2[512];
		size_t l1, l2;
		snprintf(h, sizeof h, "{\"alg\":\"none\",\"kid\":\"%s\"}", token_kid());
		snprintf(c, sizeof c, "{\"iss\":\"relaypro\",\"sub\":\"r-1\",\"org\":42,\"ep\":0,\"exp\":%lld}",
		    NOW + 100);
		l1 = b64url_encode(e1, sizeof e1, h, strlen(h));
		e1[l1] = 0;
		l2 = b64url_encode(e2, sizeof e2, c, strlen(c));
		e2[l2] = 0;
		snprintf(other, sizeof other, "%s.%s.", e1, e2);
		CHECK_STR(verify_access(other, NOW), "token_invalid", "alg none");
	}
	/* kid compared as exact bytes: the right kid with a NUL after it (JSON \u0000), on a
	 * token signed with the right derived key, is another kid (before issue 17, strcmp
	 * stopped at the NUL and accepted it). */
	{
		static const struct { const char *suffix, *want, *name; } kids[] = {
			{ "", "ok", "re-signed with the derived key and the exact kid" },
			{ "\\u0000", "ca_changed", "kid with a NUL appended" },
			{ "\\u0000junk", "ca_changed", "kid with a NUL and more" },
			{ "0", "ca_changed", "kid with a digit appended" },
		};
		struct kdf_master m;
		unsigned char key[KDF_KEY_LEN];
		char h[128], c[256];
		size_t i;

		kdf_master_init(&m, ca.key_der, ca.key_der_len);
		CHECK_INT(kdf_access_key(&m, "r-1", 3, 42, 0, key), 0, "derived key for r-1");
		snprintf(c, sizeof c, "{\"iss\":\"relaypro\",\"sub\":\"r-1\",\"org\":42,\"ep\":0,"
		    "\"iat\":%lld,\"exp\":%lld}", NOW, NOW + 100);
		for (i = 0; i < sizeof kids / sizeof kids[0]; i++) {
			snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s%s\"}",
			    token_kid(), kids[i].suffix);
			jwt_sign(other, sizeof other, h, c, key, sizeof key);
			CHECK_STR(verify_access(other, NOW), kids[i].want, kids[i].name);
		}
		kdf_master_wipe(&m);
	}
	CHECK_STR(verify_access("", NOW), "auth_required", "empty access token");
	/* Clock jumps (the relay reads the wall clock for every check; `now` is injected here):
	 * a token issued at NOW, then the clock is stepped. Forward past exp + skew expires
	 * it at once; backward within the skew keeps it; further back, its iat lies in the
	 * future and it is refused rather than trusted; back to NOW it is good again. */
	{
		static const struct { int64_t jump; const char *want; } jumps[] = {
			{ 0, "ok" }, { 3600 + 60, "ok" }, { 3600 + 61, "token_expired" },
			{ 86400 * 365, "token_expired" }, { -60, "ok" }, { -61, "token_invalid" },
			{ -86400 * 365, "token_invalid" }, { 0, "ok" },
		};
		char name[80];
		size_t k;
		cfg.token_epoch = 0;
		n = token_issue(&cfg, "r-1", NOW, tok, sizeof tok);
		for (k = 0; k < sizeof jumps / sizeof jumps[0]; k++) {
			snprintf(name, sizeof name, "clock jump %+lld s: %s", (long long)jumps[k].jump,
			    jumps[k].want);
			CHECK_STR(verify_access(tok, NOW + jumps[k].jump), jumps[k].want, name);
		}
		cfg.clock_skew = 5;
		CHECK_STR(verify_access(tok, NOW + 3600 + 6), "token_expired",
		    "clock jump: a smaller clockSkew expires sooner");
		CHECK_STR(verify_access(tok, NOW - 6), "token_invalid",
		    "clock jump: a smaller clockSkew refuses a future iat sooner");
		cfg.clock_skew = 60;
	}
	token_wipe();
	ca_free(&ca);
}

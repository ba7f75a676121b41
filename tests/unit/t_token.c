/* t_token.c — grants and access tokens (docs/protocol.md) with a generated CA: issue,
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
static char why[TOKEN_WHY_MAX]; /* the last refusal's reason (token.h) */

static const char *
verify_access(const char *tok, int64_t now)
{
	char sub[200];
	const char *code = "?";

	why[0] = '?';
	if (token_verify_access(&cfg, tok, strlen(tok), now, sub, sizeof sub, &code, why, sizeof why) == 0)
		return "ok";
	return code;
}

static const char *
verify_grant(const char *tok, int64_t now)
{
	char sub[200];
	const char *code = "?";

	why[0] = '?';
	if (token_verify_grant(&cfg, tok, strlen(tok), now, sub, sizeof sub, &code, why, sizeof why) == 0)
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
	CHECK_STR(why, "", "good grant: no reason");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":43,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW),
	    "token_invalid", "grant for another org");
	CHECK_STR(why, "org is 43, expected 42 (organizationId)", "reason: another org");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:8\",\"exp\":1800000600}"), NOW),
	    "token_invalid", "grant for another relay");
	CHECK_STR(why, "aud is relaypro:8, expected relaypro:7 (relayId)", "reason: another relay");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"exp\":1800000600}"), NOW), "token_invalid",
	    "grant without aud");
	CHECK_STR(why, "no aud claim, expected relaypro:7", "reason: no aud");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW), "token_invalid",
	    "grant without sub");
	CHECK_STR(why, "no sub claim", "reason: no sub");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1799999000}"), NOW),
	    "token_expired", "expired grant");
	CHECK_STR(why, "expired 16m40s ago (exp 2027-01-15T07:43:20Z, clockSkew 60s)",
	    "reason: expired by how long");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600,"
	    "\"nbf\":1800007200}"), NOW), "token_invalid", "grant not valid yet");
	CHECK_STR(why, "not valid yet: nbf 2027-01-15T10:00:00Z is 2h ahead (clockSkew 60s)",
	    "reason: nbf ahead");
	CHECK_STR(verify_grant(grant(buf, sizeof buf,
	    "{\"sub\":\"r 1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}"), NOW),
	    "token_invalid", "grant with a bad sub");
	CHECK_STR(why, "sub is not 1-128 characters of A-Z a-z 0-9 . _ : @ -", "reason: bad sub");
	CHECK_STR(verify_grant("", NOW), "auth_required", "empty grant");
	CHECK_STR(why, "no grant", "reason: empty grant");
	CHECK_STR(verify_grant("a.b", NOW), "token_invalid", "grant with one dot");
	CHECK(strncmp(why, "malformed", 9) == 0, "reason: malformed");
	jwt_sign(buf, sizeof buf, "{\"alg\":\"HS256\"}",
	    "{\"sub\":\"r-1\",\"org\":42,\"aud\":\"relaypro:7\",\"exp\":1800000600}", "other-key", 9);
	CHECK_STR(verify_grant(buf, NOW), "token_invalid", "grant signed with another key");
	CHECK_STR(why, "bad signature: not signed with this relay's securityToken",
	    "reason: bad signature");
	CHECK(strstr(why, cfg.security_token) == NULL, "reason holds no security token");
	{
		char saved[sizeof cfg.security_token];
		memcpy(saved, cfg.security_token, sizeof saved);
		cfg.security_token[0] = 0;
		CHECK_STR(verify_grant(buf, NOW), "token_invalid", "grant with no securityToken");
		CHECK_STR(why, "this relay has no securityToken yet (not registered)",
		    "reason: not registered");
		memcpy(cfg.security_token, saved, sizeof saved);
	}
	jwt_sign(buf, sizeof buf, "{\"alg\":\"HS384\"}", "{\"exp\":1800000600}", "k", 1);
	CHECK_STR(verify_grant(buf, NOW), "token_invalid", "grant with alg HS384");
	CHECK_STR(why, "header alg is not HS256 (or typ is not JWT)", "reason: alg");

	/* Access tokens. */
	n = token_issue(&cfg, "r-1", NOW, tok, sizeof tok);
	CHECK(n > 0 && n < TOKEN_ACCESS_MAX, "access token issued");
	CHECK_STR(verify_access(tok, NOW), "ok", "fresh access token verifies");
	CHECK_STR(verify_access(tok, NOW + 3600 + 60), "ok", "valid at exp + skew");
	CHECK_STR(verify_access(tok, NOW + 3600 + 61), "token_expired", "expired after exp + skew");
	CHECK_STR(why, "expired 1m1s ago (exp 2027-01-15T09:00:00Z, clockSkew 60s)",
	    "reason: access token expired by how long");
	CHECK_STR(verify_access(tok, NOW + 3600 + 2 * 86400 + 7), "token_expired", "expired 2 days");
	CHECK_STR(why, "expired 2d7s ago (exp 2027-01-15T09:00:00Z, clockSkew 60s)",
	    "reason: days in the span");
	CHECK_INT(jwt_parse(tok, n, &t), JWT_OK, "access token parses");
	CHECK(strcmp(t.kid, token_kid()) == 0 && strcmp(t.iss, "relaypro") == 0 && t.org == 42 &&
	    t.ep == 0 && t.exp == NOW + 3600 && t.iat == NOW && strlen(t.jti) == 32,
	    "access token claims");
	CHECK_STR(verify_access(tok + 1, NOW), "token_invalid", "truncated access token");
	memcpy(other, tok, n + 1);
	other[n - 2] = other[n - 2] == 'A' ? 'B' : 'A';
	CHECK_STR(verify_access(other, NOW), "token_invalid", "tampered signature");
	CHECK_STR(why, "bad signature: not issued by a relay holding this CA bundle",
	    "reason: tampered signature");
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
	CHECK_STR(why, "revoked: ep is 0, the epoch is now 1", "reason: revoked");
	n = token_issue(&cfg, "r-1", NOW, other, sizeof other);
	CHECK_STR(verify_access(other, NOW), "ok", "new epoch token verifies");
	cfg.token_epoch = 0;
	CHECK_STR(verify_access(other, NOW), "token_invalid", "token from a future epoch");
	CHECK_STR(why, "ep is 1, ahead of the epoch 0", "reason: future epoch");
	/* Another organisation configured: the token no longer fits. */
	cfg.organization_id = 43;
	CHECK_STR(verify_access(tok, NOW), "token_invalid", "org changed");
	CHECK_STR(why, "org is 42, expected 43 (organizationId)", "reason: org changed");
	cfg.organization_id = 42;
	/* A new CA: the kid changes, old tokens say ca_changed. */
	{
		static struct ca ca2;
		char old_kid[17], want[TOKEN_WHY_MAX];
		CHECK_INT(ca_generate(&ca2, 2048, "123e4567-e89b-12d3-a456-426614174000", (time_t)NOW), 0,
		    "second CA generated");
		snprintf(old_kid, sizeof old_kid, "%s", token_kid());
		token_init(&ca2);
		CHECK_STR(verify_access(tok, NOW), "ca_changed", "token from the old CA");
		snprintf(want, sizeof want, "unknown kid %s, expected %s: issued under another CA bundle",
		    old_kid, token_kid());
		CHECK_STR(why, want, "reason: unknown kid names both");
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
	CHECK_STR(why, "no access token", "reason: empty access token");
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

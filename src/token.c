/*
 * token.c — grants in, access tokens out, access tokens verified. See token.h.
 *
 * Every refusal fills the caller's `why` with what failed and what was expected, from the
 * token's claims and header (never its signature, never a key): claim values are only
 * quoted after they passed jwt_parse, which bounds them to JWT_STR_MAX characters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "kdf.h"
#include "rand.h"
#include "secret.h"
#include "token.h"

static struct kdf_master master;
static char kid[17];

/* see token.h */
void
token_init(const struct ca *ca)
{
	static const char hex[] = "0123456789abcdef";
	int i;

	kdf_master_init(&master, ca->key_der, ca->key_der_len);
	for (i = 0; i < 8; i++) {
		kid[2 * i] = hex[ca->cert_sha256[i] >> 4];
		kid[2 * i + 1] = hex[ca->cert_sha256[i] & 15];
	}
	kid[16] = 0;
}

/* see token.h */
const char *
token_kid(void)
{
	return kid;
}

/* see token.h */
void
token_wipe(void)
{
	kdf_master_wipe(&master);
}

/* printf into why (may be NULL); always returns rc. */
static int
say(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return rc;
}

/* "1h2m3s" for a positive number of seconds (days for long spans). */
static void
span(char *out, size_t cap, int64_t s)
{
	int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, x = s % 60;
	size_t o = 0;

	out[0] = 0;
	if (d)
		o += (size_t)snprintf(out + o, cap - o, "%lldd", (long long)d);
	if (h && o < cap)
		o += (size_t)snprintf(out + o, cap - o, "%lldh", (long long)h);
	if (m && o < cap)
		o += (size_t)snprintf(out + o, cap - o, "%lldm", (long long)m);
	if ((x || o == 0) && o < cap)
		snprintf(out + o, cap - o, "%llds", (long long)x);
}

/* A claim time as RFC 3339 when it is a plausible date, else as the number it is. */
static void
when(char *out, size_t cap, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < 0 || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, cap, "%lld", (long long)t);
}

/* The time checks with the reason: expired by how long, or valid only from when. */
static int
check_time(const struct jwt_token *t, int64_t now, int64_t skew, const char **code, char *why,
    size_t whylen)
{
	char a[40], b[40];
	int rc = jwt_check_time(t, now, skew);

	if (rc == JWT_OK)
		return ERR_OK;
	if (rc == JWT_EXPIRED) {
		*code = "token_expired";
		span(a, sizeof a, now - t->exp);
		when(b, sizeof b, t->exp);
		return say(why, whylen, ERR_RANGE, "expired %s ago (exp %s, clockSkew %llds)", a, b,
		    (long long)skew);
	}
	*code = "token_invalid";
	if ((t->has & JWT_HAS_NBF) && t->nbf > now + skew) {
		span(a, sizeof a, t->nbf - now);
		when(b, sizeof b, t->nbf);
		return say(why, whylen, ERR_RANGE, "not valid yet: nbf %s is %s ahead (clockSkew %llds)",
		    b, a, (long long)skew);
	}
	span(a, sizeof a, t->iat - now);
	when(b, sizeof b, t->iat);
	return say(why, whylen, ERR_RANGE, "issued in the future: iat %s is %s ahead (clockSkew %llds)",
	    b, a, (long long)skew);
}

/* Why jwt_parse refused the token. */
static int
parse_why(int jrc, char *why, size_t whylen)
{
	switch (jrc) {
	case JWT_TOO_LONG:
		return say(why, whylen, ERR_INVAL, "token longer than %d bytes", JWT_MAX);
	case JWT_BAD_ALG:
		return say(why, whylen, ERR_INVAL, "header alg is not HS256 (or typ is not JWT)");
	case JWT_BAD_SUB:
		return say(why, whylen, ERR_INVAL,
		    "sub is not 1-128 characters of A-Z a-z 0-9 . _ : @ -");
	}
	return say(why, whylen, ERR_INVAL, "malformed: not a compact JWS with a JSON header and "
	    "claims of the right types, or no exp claim");
}

/* The org claim is there and names this relay's organization. ERR_OK or ERR_INVAL. */
static int
check_org(const struct config *cfg, const struct jwt_token *t, char *why, size_t whylen)
{
	if (!(t->has & JWT_HAS_ORG))
		return say(why, whylen, ERR_INVAL, "no org claim, expected %lld",
		    (long long)cfg->organization_id);
	if (t->org != cfg->organization_id)
		return say(why, whylen, ERR_INVAL, "org is %lld, expected %lld (organizationId)",
		    (long long)t->org, (long long)cfg->organization_id);
	return ERR_OK;
}

/* The start of every verification: why cleared, *code "auth_required" for an empty token
 * ("no <what>"), else "token_invalid" until the caller says otherwise; the token parsed
 * into t. ERR_OK, or the error with why said. */
static int
parse(const char *tok, size_t len, struct jwt_token *t, const char *what, const char **code,
    char *why, size_t whylen)
{
	int rc;

	say(why, whylen, 0, "%s", "");
	*code = "token_invalid";
	if (len == 0) {
		*code = "auth_required";
		return say(why, whylen, ERR_INVAL, "no %s", what);
	}
	if ((rc = jwt_parse(tok, len, t)) != JWT_OK)
		return parse_why(rc, why, whylen);
	return ERR_OK;
}

/* see token.h */
int
token_verify_grant(const struct config *cfg, const char *tok, size_t len, int64_t now,
    char *sub, size_t subcap, const char **code, char *why, size_t whylen)
{
	static struct jwt_token t;
	char aud[64];
	int rc;

	if ((rc = parse(tok, len, &t, "grant", code, why, whylen)) != ERR_OK)
		return rc;
	if (!cfg->security_token[0])
		return say(why, whylen, ERR_CRYPTO, "this relay has no securityToken yet (not registered)");
	if (jwt_verify_sig(&t, cfg->security_token, strlen(cfg->security_token)) != JWT_OK)
		return say(why, whylen, ERR_CRYPTO,
		    "bad signature: not signed with this relay's securityToken");
	if (check_time(&t, now, (int64_t)cfg->clock_skew, code, why, whylen) != ERR_OK)
		return ERR_RANGE;
	snprintf(aud, sizeof aud, "relaypro:%lld", (long long)cfg->relay_id);
	if (!(t.has & JWT_HAS_SUB))
		return say(why, whylen, ERR_INVAL, "no sub claim");
	if (check_org(cfg, &t, why, whylen) != ERR_OK)
		return ERR_INVAL;
	if (!(t.has & JWT_HAS_AUD))
		return say(why, whylen, ERR_INVAL, "no aud claim, expected %s", aud);
	if (strcmp(t.aud, aud) != 0)
		return say(why, whylen, ERR_INVAL, "aud is %s, expected %s (relayId)", t.aud, aud);
	snprintf(sub, subcap, "%s", t.sub);
	return ERR_OK;
}

/* see token.h */
size_t
token_issue(const struct config *cfg, const char *sub, int64_t now, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char key[KDF_KEY_LEN], jti[16];
	char header[80], claims[400], jtihex[33];
	size_t n;
	int i;

	if (kdf_access_key(&master, sub, strlen(sub), cfg->organization_id,
	    (uint64_t)cfg->token_epoch, key) != ERR_OK)
		return 0;
	rand_bytes(jti, sizeof jti);
	for (i = 0; i < 16; i++) {
		jtihex[2 * i] = hex[jti[i] >> 4];
		jtihex[2 * i + 1] = hex[jti[i] & 15];
	}
	jtihex[32] = 0;
	snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	/* sub is of [A-Za-z0-9._:@-] (checked by jwt_parse on the grant): no escaping needed. */
	snprintf(claims, sizeof claims,
	    "{\"iss\":\"relaypro\",\"sub\":\"%s\",\"org\":%lld,\"ep\":%lld,\"iat\":%lld,\"exp\":%lld,"
	    "\"jti\":\"%s\"}",
	    sub, (long long)cfg->organization_id, (long long)cfg->token_epoch, (long long)now,
	    (long long)(now + (int64_t)cfg->token_duration), jtihex);
	n = jwt_sign(out, cap, header, claims, key, sizeof key);
	secret_wipe(key, sizeof key);
	return n;
}

/* see token.h */
int
token_verify_access(const struct config *cfg, const char *tok, size_t len, int64_t now,
    char *sub, size_t subcap, const char **code, char *why, size_t whylen)
{
	static struct jwt_token t;
	unsigned char key[KDF_KEY_LEN];
	int rc;

	if ((rc = parse(tok, len, &t, "access token", code, why, whylen)) != ERR_OK)
		return rc;
	if (!(t.has & JWT_HAS_KID))
		return say(why, whylen, ERR_INVAL, "no kid in the header, expected %s", kid);
	if (!jwt_kid_eq(&t, kid, sizeof kid - 1)) { /* exact bytes: a NUL appended is another kid */
		*code = "ca_changed";
		return say(why, whylen, ERR_INVAL, "unknown kid %.32s, expected %s: issued under "
		    "another CA bundle", t.kid, kid);
	}
	if (!(t.has & JWT_HAS_ISS) || strcmp(t.iss, "relaypro") != 0)
		return say(why, whylen, ERR_INVAL, "iss is %s, expected relaypro",
		    (t.has & JWT_HAS_ISS) ? t.iss : "missing");
	if (!(t.has & JWT_HAS_SUB))
		return say(why, whylen, ERR_INVAL, "no sub claim");
	if (!(t.has & JWT_HAS_EP) || t.ep < 0)
		return say(why, whylen, ERR_INVAL, "no ep claim (or a negative one)");
	if (check_org(cfg, &t, why, whylen) != ERR_OK)
		return ERR_INVAL;
	/* The key is derived from the token's own sub and epoch; only the signature makes
	 * any of them trustworthy. */
	if (kdf_access_key(&master, t.sub, strlen(t.sub), t.org, (uint64_t)t.ep, key) != ERR_OK)
		return say(why, whylen, ERR_INVAL, "no key can be derived for this sub");
	rc = jwt_verify_sig(&t, key, sizeof key);
	secret_wipe(key, sizeof key);
	if (rc != JWT_OK)
		return say(why, whylen, ERR_CRYPTO,
		    "bad signature: not issued by a relay holding this CA bundle");
	if (t.ep != cfg->token_epoch) {
		*code = t.ep < cfg->token_epoch ? "token_revoked" : "token_invalid";
		return say(why, whylen, ERR_INVAL, t.ep < cfg->token_epoch ?
		    "revoked: ep is %lld, the epoch is now %lld" :
		    "ep is %lld, ahead of the epoch %lld", (long long)t.ep, (long long)cfg->token_epoch);
	}
	if (check_time(&t, now, (int64_t)cfg->clock_skew, code, why, whylen) != ERR_OK)
		return ERR_RANGE;
	snprintf(sub, subcap, "%s", t.sub);
	return ERR_OK;
}

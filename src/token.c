/*
 * token.c — grants in, access tokens out, access tokens verified. See token.h.
 */
#include <stdio.h>
#include <string.h>

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

static const char *
time_code(int jrc)
{
	return jrc == JWT_EXPIRED ? "token_expired" : "token_invalid";
}

/* see token.h */
int
token_verify_grant(const struct config *cfg, const char *tok, size_t len, int64_t now,
    char *sub, size_t subcap, const char **code)
{
	static struct jwt_token t;
	char aud[64];
	int rc;

	*code = "token_invalid";
	if (len == 0) {
		*code = "auth_required";
		return ERR_INVAL;
	}
	if (jwt_parse(tok, len, &t) != JWT_OK)
		return ERR_INVAL;
	if (!cfg->security_token[0] ||
	    jwt_verify_sig(&t, cfg->security_token, strlen(cfg->security_token)) != JWT_OK)
		return ERR_CRYPTO;
	if ((rc = jwt_check_time(&t, now, (int64_t)cfg->clock_skew)) != JWT_OK) {
		*code = time_code(rc);
		return ERR_RANGE;
	}
	snprintf(aud, sizeof aud, "relaypro:%lld", (long long)cfg->relay_id);
	if (!(t.has & JWT_HAS_SUB) || !(t.has & JWT_HAS_ORG) || t.org != cfg->organization_id ||
	    !(t.has & JWT_HAS_AUD) || strcmp(t.aud, aud) != 0)
		return ERR_INVAL;
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
    char *sub, size_t subcap, const char **code)
{
	static struct jwt_token t;
	unsigned char key[KDF_KEY_LEN];
	int rc;

	*code = "token_invalid";
	if (len == 0) {
		*code = "auth_required";
		return ERR_INVAL;
	}
	if (jwt_parse(tok, len, &t) != JWT_OK)
		return ERR_INVAL;
	if ((t.has & JWT_HAS_KID) && !jwt_kid_eq(&t, kid, sizeof kid - 1)) { /* exact bytes */
		*code = "ca_changed";
		return ERR_INVAL;
	}
	if (!(t.has & JWT_HAS_KID) || !(t.has & JWT_HAS_SUB) || !(t.has & JWT_HAS_ORG) ||
	    !(t.has & JWT_HAS_EP) || t.ep < 0 || !(t.has & JWT_HAS_ISS) ||
	    strcmp(t.iss, "relaypro") != 0 || t.org != cfg->organization_id)
		return ERR_INVAL;
	/* The key is derived from the token's own sub and epoch; only the signature makes
	 * any of them trustworthy. */
	if (kdf_access_key(&master, t.sub, strlen(t.sub), t.org, (uint64_t)t.ep, key) != ERR_OK)
		return ERR_INVAL;
	rc = jwt_verify_sig(&t, key, sizeof key);
	secret_wipe(key, sizeof key);
	if (rc != JWT_OK)
		return ERR_CRYPTO;
	if (t.ep != cfg->token_epoch) {
		*code = t.ep < cfg->token_epoch ? "token_revoked" : "token_invalid";
		return ERR_INVAL;
	}
	if ((rc = jwt_check_time(&t, now, (int64_t)cfg->clock_skew)) != JWT_OK) {
		*code = time_code(rc);
		return ERR_RANGE;
	}
	snprintf(sub, subcap, "%s", t.sub);
	return ERR_OK;
}

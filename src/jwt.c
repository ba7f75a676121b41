/*
 * jwt.c — HS256 compact JWS parse, verify and sign. See jwt.h.
 */
#include <string.h>

#include <bearssl.h>

#include "b64.h"
#include "err.h"
#include "json.h"
#include "jwt.h"
#include "secret.h"

/* Largest decoded header or claim set: a JWT_MAX token holds at most 3/4 of it. */
#define PART_MAX (JWT_MAX / 4 * 3)

/* see jwt.h */
int
jwt_sub_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > JWT_SUB_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return 0;
	}
	return 1;
}

struct hdr_state {
	int alg_ok, typ_bad, has_alg;
	struct jwt_token *t;
};

static int
header_member(void *user, const char *key, size_t keylen, struct json *j)
{
	struct hdr_state *h = user;
	char v[JWT_STR_MAX + 1];
	size_t n;
	int rc;

	if (keylen == 3 && memcmp(key, "alg", 3) == 0) {
		h->has_alg = 1;
		if (json_peek(j) != JSON_STRING)
			return json_skip(j);
		rc = json_read_string(j, v, sizeof v, &n);
		if (rc == ERR_NOSPACE)
			return ERR_OK; /* consumed; an over-long alg is simply not HS256 */
		if (rc != ERR_OK)
			return rc;
		h->alg_ok = n == 5 && memcmp(v, "HS256", 5) == 0;
		return ERR_OK;
	}
	if (keylen == 3 && memcmp(key, "typ", 3) == 0) {
		if (json_peek(j) != JSON_STRING ||
		    json_read_string(j, v, sizeof v, &n) != ERR_OK || n != 3 || memcmp(v, "JWT", 3) != 0)
			h->typ_bad = 1;
		return ERR_OK;
	}
	if (keylen == 3 && memcmp(key, "kid", 3) == 0 && json_peek(j) == JSON_STRING) {
		rc = json_read_string(j, h->t->kid, sizeof h->t->kid, &n);
		if (rc == ERR_OK)
			h->t->has |= JWT_HAS_KID;
		return rc == ERR_NOSPACE ? ERR_OK : rc; /* an over-long kid matches nothing */
	}
	return json_skip(j); /* jwk, jku, x5u, ...: never used */
}

static int
claim_str(struct json *j, char *out, size_t cap, struct jwt_token *t, unsigned bit)
{
	size_t n;

	if (json_peek(j) != JSON_STRING || json_read_string(j, out, cap, &n) != ERR_OK ||
	    memchr(out, 0, n) != NULL)
		return ERR_INVAL; /* an embedded NUL would make C see another string */
	t->has |= bit;
	return ERR_OK;
}

static int
claim_int(struct json *j, int64_t *out, struct jwt_token *t, unsigned bit)
{
	if (json_peek(j) != JSON_NUMBER || json_read_int(j, out) != ERR_OK)
		return ERR_INVAL;
	t->has |= bit;
	return ERR_OK;
}

static int
claims_member(void *user, const char *key, size_t keylen, struct json *j)
{
	struct jwt_token *t = user;

#define IS(name) (keylen == sizeof(name) - 1 && memcmp(key, name, keylen) == 0)
	if (IS("sub"))
		return claim_str(j, t->sub, sizeof t->sub, t, JWT_HAS_SUB);
	if (IS("aud"))
		return claim_str(j, t->aud, sizeof t->aud, t, JWT_HAS_AUD);
	if (IS("iss"))
		return claim_str(j, t->iss, sizeof t->iss, t, JWT_HAS_ISS);
	if (IS("jti"))
		return claim_str(j, t->jti, sizeof t->jti, t, JWT_HAS_JTI);
	if (IS("org"))
		return claim_int(j, &t->org, t, JWT_HAS_ORG);
	if (IS("exp"))
		return claim_int(j, &t->exp, t, JWT_HAS_EXP);
	if (IS("nbf"))
		return claim_int(j, &t->nbf, t, JWT_HAS_NBF);
	if (IS("iat"))
		return claim_int(j, &t->iat, t, JWT_HAS_IAT);
	if (IS("ep"))
		return claim_int(j, &t->ep, t, JWT_HAS_EP);
#undef IS
	return json_skip(j);
}

/* see jwt.h */
int
jwt_parse(const char *tok, size_t len, struct jwt_token *t)
{
	char part[PART_MAX];
	const char *d1, *d2;
	size_t n;
	struct json j;
	struct hdr_state h;

	memset(t, 0, sizeof *t);
	if (len > JWT_MAX)
		return JWT_TOO_LONG;
	d1 = memchr(tok, '.', len);
	if (d1 == NULL)
		return JWT_MALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
		return JWT_MALFORMED;

	/* Header. */
	if (b64url_decode(part, sizeof part, &n, tok, (size_t)(d1 - tok)) != ERR_OK)
		return JWT_MALFORMED;
	memset(&h, 0, sizeof h);
	h.t = t;
	json_init(&j, part, n);
	if (json_walk_object(&j, header_member, &h) != ERR_OK || json_end(&j) != ERR_OK)
		return JWT_MALFORMED;
	if (!h.has_alg || !h.alg_ok || h.typ_bad)
		return JWT_BAD_ALG;

	/* Signature: exactly 32 bytes. */
	if (b64url_decode(t->sig, sizeof t->sig, &n, d2 + 1, len - (size_t)(d2 + 1 - tok)) != ERR_OK ||
	    n != JWT_SIG_LEN)
		return JWT_MALFORMED;

	/* Claims. */
	if (b64url_decode(part, sizeof part, &n, d1 + 1, (size_t)(d2 - d1 - 1)) != ERR_OK)
		return JWT_MALFORMED;
	json_init(&j, part, n);
	if (json_walk_object(&j, claims_member, t) != ERR_OK || json_end(&j) != ERR_OK)
		return JWT_MALFORMED;
	if (!(t->has & JWT_HAS_EXP))
		return JWT_MALFORMED;
	if ((t->has & JWT_HAS_SUB) && !jwt_sub_ok(t->sub, strlen(t->sub)))
		return JWT_BAD_SUB;
	t->signing_input = tok;
	t->signing_len = (size_t)(d2 - tok);
	return JWT_OK;
}

static void
hs256(unsigned char out[JWT_SIG_LEN], const void *key, size_t keylen, const void *data, size_t n)
{
	br_hmac_key_context kc;
	br_hmac_context hc;

	br_hmac_key_init(&kc, &br_sha256_vtable, key, keylen);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, data, n);
	br_hmac_out(&hc, out);
	secret_wipe(&kc, sizeof kc);
	secret_wipe(&hc, sizeof hc);
}

/* see jwt.h */
int
jwt_verify_sig(const struct jwt_token *t, const void *key, size_t keylen)
{
	unsigned char mac[JWT_SIG_LEN];
	int ok;

	if (t->signing_input == NULL)
		return JWT_MALFORMED;
	hs256(mac, key, keylen, t->signing_input, t->signing_len);
	ok = secret_eq(mac, sizeof mac, t->sig, sizeof t->sig);
	secret_wipe(mac, sizeof mac);
	return ok ? JWT_OK : JWT_BAD_SIG;
}

/* see jwt.h */
int
jwt_check_time(const struct jwt_token *t, int64_t now, int64_t skew)
{
	if (!(t->has & JWT_HAS_EXP))
		return JWT_MALFORMED;
	/* The claims are hostile values: only now +- skew is computed (both small), never
	 * claim +- skew, so nothing overflows. */
	if (t->exp < now - skew)
		return JWT_EXPIRED;
	if ((t->has & JWT_HAS_NBF) && t->nbf > now + skew)
		return JWT_NOT_YET_VALID;
	if ((t->has & JWT_HAS_IAT) && t->iat > now + skew)
		return JWT_NOT_YET_VALID;
	return JWT_OK;
}

/* see jwt.h */
size_t
jwt_sign(char *out, size_t cap, const char *header_json, const char *claims_json,
    const void *key, size_t keylen)
{
	unsigned char mac[JWT_SIG_LEN];
	size_t hl = strlen(header_json), cl = strlen(claims_json);
	size_t need = b64url_enc_len(hl) + 1 + b64url_enc_len(cl) + 1 + b64url_enc_len(JWT_SIG_LEN);
	size_t o;

	if (need + 1 > cap)
		return 0;
	o = b64url_encode(out, cap, header_json, hl);
	out[o++] = '.';
	o += b64url_encode(out + o, cap - o, claims_json, cl);
	hs256(mac, key, keylen, out, o);
	out[o++] = '.';
	o += b64url_encode(out + o, cap - o, mac, sizeof mac);
	out[o] = 0;
	secret_wipe(mac, sizeof mac);
	return o;
}

/* see jwt.h */
const char *
jwt_status_str(int status)
{
	switch (status) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed";
	case JWT_TOO_LONG: return "too long";
	case JWT_BAD_ALG: return "algorithm not allowed";
	case JWT_BAD_SIG: return "bad signature";
	case JWT_EXPIRED: return "expired";
	case JWT_NOT_YET_VALID: return "not yet valid";
	case JWT_BAD_SUB: return "bad subject";
	}
	return "invalid";
}

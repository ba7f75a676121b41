/*
 * cred.c — credentials checked, failures logged and counted. See cred.h.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cred.h"
#include "err.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"
#include "rand.h"
#include "secret.h"
#include "token.h"

_Static_assert(ADMIT_WHY_MAX >= TOKEN_WHY_MAX, "admit_cred.why_text holds a token refusal reason");

/* see cred.h */
void
cred_check(struct conn *c, enum admit_kind kind, struct admit_cred *cr)
{
	const struct relay *rl = c->rl;
	const struct http_request *r = &c->req;
	int id = admit_cred_header(kind), scheme, rc;
	unsigned ok = admit_schemes(kind, rl->users != NULL);
	const char *cred;
	size_t credlen;

	memset(cr, 0, sizeof *cr);
	c->who[0] = 0;
	c->req_kind = (uint8_t)kind;
	c->cred_kind = ADMIT_CRED_KIND_NONE;
	if (id < 0 || !(r->have & (1u << id)))
		return; /* ADMIT_CRED_NONE */
	scheme = auth_scheme(c->head + r->val[id].off, r->val[id].len, &cred, &credlen);
	if (scheme == AUTH_BEARER && (ok & ADMIT_SCHEME_BEARER)) {
		if (admit_wants_grant(kind)) {
			if (credlen == 0)
				return; /* an empty grant is no grant */
			rc = token_verify_grant(rl->cfg, cred, credlen, (int64_t)rl->now, c->who,
			    sizeof c->who, &cr->code, cr->why_text, sizeof cr->why_text);
		} else {
			rc = token_verify_access(rl->cfg, cred, credlen, (int64_t)rl->now, c->who,
			    sizeof c->who, &cr->code, cr->why_text, sizeof cr->why_text);
		}
		cr->state = rc == ERR_OK ? ADMIT_CRED_OK : ADMIT_CRED_BAD;
		if (rc != ERR_OK) {
			c->who[0] = 0;
			cr->why = cr->why_text[0] ? cr->why_text : NULL; /* never a token or key */
		} else {
			/* An accepted access token's ep is the epoch now (token_verify_access). */
			c->cred_kind = ADMIT_CRED_KIND_BEARER;
			c->cred_epoch = rl->cfg->token_epoch;
		}
		return;
	}
	if (scheme == AUTH_BASIC && (ok & ADMIT_SCHEME_BASIC)) {
		/* Decoded once: the check and the fingerprint read the same bytes (a secret,
		 * wiped below whatever the outcome). */
		unsigned char dec[AUTH_BASIC_MAX];
		size_t n;
		cr->basic = 1;
		if (auth_basic_decode(cred, credlen, dec, sizeof dec, &n) == ERR_OK &&
		    auth_check_basic(rl->users, dec, n, c->who, sizeof c->who) == ERR_OK) {
			cr->state = ADMIT_CRED_OK;
			c->cred_kind = ADMIT_CRED_KIND_BASIC;
			c->cred_fp = cred_fingerprint(dec, n); /* "user:password" */
		} else {
			cr->state = ADMIT_CRED_BAD; /* c->who keeps the user name for the log */
			cr->code = "auth_failed";
			cr->reason = "bad password";
		}
		secret_wipe(dec, sizeof dec);
		return;
	}
	cr->state = ADMIT_CRED_SCHEME;
}

/* The fingerprints' key: drawn once per process (rand.h), so a fingerprint is worthless
 * outside it and says nothing about the password to whoever reads memory dumps of
 * another process. The loop's own state. */
static unsigned char fp_key[16];
static int fp_keyed;

/* see cred.h */
uint64_t
cred_fingerprint(const void *userpass, size_t len)
{
	if (!fp_keyed) {
		rand_bytes(fp_key, sizeof fp_key);
		fp_keyed = 1;
	}
	return limit_siphash24(fp_key, userpass, len);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* see cred.h */
size_t
cred_user_fps(const struct auth_users *u, uint64_t *out, size_t max)
{
	unsigned char up[AUTH_USER_MAX + AUTH_PASS_MAX + 2];
	size_t n = 0;
	int i;

	for (i = 0; u != NULL && i < u->n && n < max; i++) {
		memcpy(up, u->u[i].user, u->u[i].ulen);
		up[u->u[i].ulen] = ':';
		memcpy(up + u->u[i].ulen + 1, u->u[i].pass, u->u[i].plen);
		out[n++] = cred_fingerprint(up, (size_t)u->u[i].ulen + 1 + u->u[i].plen);
	}
	secret_wipe(up, sizeof up);
	qsort(out, n, sizeof *out, cmp_u64);
	return n;
}

/* see cred.h */
void
cred_log_fail(struct conn *c, const char *reason, const char *why)
{
	struct log_rec r;

	metrics_auth_fail(reason);
	if (log_begin(&r, LOG_WARN, "auth.fail")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "reason", why && why[0] ? why : reason);
		if (why && why[0])
			log_str(&r, "code", reason);
		if (c->who[0])
			log_str(&r, "user", c->who);
		log_end(&r);
	}
}

/* see cred.h */
void
cred_count_failure(struct conn *c)
{
	const struct config *cfg = c->rl->cfg;
	struct log_rec r;

	if (!limit_fail(&c->peer_addr, c->rl->now_ms, cfg->auth_fail_limit,
	    (int64_t)cfg->auth_fail_ban))
		return;
	metrics_ban();
	if (log_begin(&r, LOG_WARN, "auth.ban")) {
		log_str(&r, "client", c->peer);
		log_int(&r, "seconds", (int64_t)cfg->auth_fail_ban);
		log_end(&r);
	}
}

/* see cred.h */
int
cred_banned(const struct conn *c)
{
	return limit_banned(&c->peer_addr, c->rl->now_ms);
}

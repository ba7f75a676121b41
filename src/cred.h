/*
 * cred.h — the credential step of the walk: finding and checking the credential a request
 * carries, and what an authentication failure costs.
 *
 * Owns: which verifier runs for a credential (token.c for Bearer access tokens and grants,
 * auth.c for Basic against the password file), the auth.fail and auth.ban lines, the
 * counting of failures against the client's address (limit.c). Must not touch: what a
 * failure means for the request — admission (admit.c) decides that, from the result here —
 * nor the response. Tokens and passwords are never logged.
 */
#ifndef RELAYPRO_CRED_H
#define RELAYPRO_CRED_H

#include "admit.h"
#include "conn.h"

/* Find the credential of this kind of request (admit_cred_header) and check it when its
 * scheme is one the kind accepts (admit_schemes): the result in *cr, the user in c->who
 * (the token's sub when accepted; a Basic user even when refused, for the log). Nothing is
 * logged or counted here. What an accepted credential was stays on the connection for a
 * revocation check at a reload (admit_recheck): c->req_kind, c->cred_kind, the token's
 * epoch (c->cred_epoch) or the fingerprint of the Basic user:password (c->cred_fp). */
void cred_check(struct conn *c, enum admit_kind kind, struct admit_cred *cr);

/* A fingerprint of "user:password" bytes: SipHash-2-4 under a key drawn at random by this
 * process, so equal credentials give equal fingerprints here and nothing outside. Never
 * logged. */
uint64_t cred_fingerprint(const void *userpass, size_t len);

/* The fingerprints of a password file's entries into out (at most max), sorted ascending
 * (admit_recheck_policy.user_fps); how many. NULL u: none. */
size_t cred_user_fps(const struct auth_users *u, uint64_t *out, size_t max);

/* auth.fail: reason is the short cause metrics count by (a token code, "missing",
 * "unsupported scheme", "bad password"); why, when set, the precise cause for the operator
 * (then logged as the reason, with the short one as code). */
void cred_log_fail(struct conn *c, const char *reason, const char *why);

/* A counted failure: the brute-force limiter may ban the client's address now (auth.ban). */
void cred_count_failure(struct conn *c);

/* 1 when the client's address is banned. */
int cred_banned(const struct conn *c);

#endif

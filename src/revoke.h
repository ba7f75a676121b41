/*
 * revoke.h — revocation: an admitted connection judged again against the relay's state
 * now (after a reload, or when the migration window ends), docs/configuration.md.
 *
 * Owns: which connections are judged (admitted ones: out of the pending queue, on a proxy
 * listener, of a tunnel's kind — resolving, connecting or relaying), the facts taken from
 * them (cred.h kept them: the token's epoch, the Basic fingerprint, the target) and the
 * policy taken from struct relay (the epoch, the password file's fingerprints, the target
 * policy, the clock). The rules themselves are admit_recheck's (admit.h). Must not touch:
 * the table, closing (the loop closes what this names), logging.
 */
#ifndef RELAYPRO_REVOKE_H
#define RELAYPRO_REVOKE_H

#include <stdint.h>

#include "admit.h"
#include "auth.h"
#include "conn.h"
#include "relay.h"

struct revoke {
	struct admit_recheck_policy pol;
	uint64_t fps[AUTH_USERS_MAX];   /* the password file's fingerprints, sorted */
};

/* Take the policy from rl now. */
void revoke_prepare(struct revoke *r, const struct relay *rl);

/* NULL when c stands (or was never admitted), else why it is revoked (static text). */
const char *revoke_judge(const struct revoke *r, const struct conn *c);

/* Wipe what revoke_prepare took (the fingerprints). */
void revoke_done(struct revoke *r);

#endif

/*
 * token.h — the Responder token flow (docs/protocol.md).
 *
 * Grants are signed by the console with the relay's securityToken; access tokens are
 * signed by the relay with a per-Responder key derived from the CA key (kdf.h), so every
 * instance sharing the CA bundle accepts them and they survive restarts. The `kid` of an
 * access token is the first 16 hex digits of SHA-256 of the CA certificate: a token with
 * another kid was issued under another CA (ca_changed).
 *
 * Failure codes are the JSON error codes the client sees: "auth_required", "token_invalid",
 * "token_expired", "token_revoked", "ca_changed". Alongside, `why` (caller-owned, whylen
 * bytes, NUL-terminated; may be NULL) gets the precise cause for the operator's log: which
 * claim failed and what was expected ("aud is relaypro:7, expected relaypro:12 (relayId)",
 * "unknown kid ..., expected ...", "bad signature: ...", "expired 2h5m ago (exp ...)").
 * It never holds a token, a signature or a key. TOKEN_WHY_MAX is enough for every reason.
 */
#ifndef RELAYPRO_TOKEN_H
#define RELAYPRO_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "config.h"
#include "jwt.h"

#define TOKEN_ACCESS_MAX 1024 /* an access token we issue */
#define TOKEN_WHY_MAX 384     /* a refusal reason, with room for two quoted claims */

/* Derive the master key and kid from the loaded CA. */
void token_init(const struct ca *ca);

/* The kid of this relay's access tokens (16 hex digits). */
const char *token_kid(void);

/* Verify a console grant. ERR_OK with sub copied out, or an error with *code set. */
int token_verify_grant(const struct config *cfg, const char *tok, size_t len, int64_t now,
    char *sub, size_t subcap, const char **code, char *why, size_t whylen);

/* Issue an access token for sub. Returns its length (0 when it does not fit). */
size_t token_issue(const struct config *cfg, const char *sub, int64_t now, char *out, size_t cap);

/* Verify an access token. ERR_OK with sub copied out, or an error with *code set. */
int token_verify_access(const struct config *cfg, const char *tok, size_t len, int64_t now,
    char *sub, size_t subcap, const char **code, char *why, size_t whylen);

void token_wipe(void);

#endif

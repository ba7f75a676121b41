/*
 * auth.h — who may open a tunnel. This issue: the password file (docs/configuration.md, testing only).
 *
 * The file has lines "user:password"; '#' starts a comment line; blank lines are ignored.
 * The user name is everything before the first ':' (1..AUTH_USER_MAX bytes, no control
 * characters); the password is the rest of the line (1..AUTH_PASS_MAX bytes).
 * Credentials are checked against every entry with constant-time comparisons, so the
 * time taken depends on the number of entries, not on what matched.
 */
#ifndef RELAYPRO_AUTH_H
#define RELAYPRO_AUTH_H

#include <stddef.h>

#define AUTH_USERS_MAX 256
#define AUTH_USER_MAX 128
#define AUTH_PASS_MAX 256
#define AUTH_FILE_MAX (128 * 1024)

struct auth_users {
	int n;
	struct {
		char user[AUTH_USER_MAX];
		char pass[AUTH_PASS_MAX];
		unsigned short ulen, plen;
	} u[AUTH_USERS_MAX];
};

/* Load path into a. ERR_OK, or an error with a message naming the file and line. A file
 * that loads but can be read or written by others (or by a group other than the relay's
 * own) is named in a "file.mode" warning (log_warn_exposed), at every load. */
int auth_load_passwords(struct auth_users *a, const char *path, char *err, size_t errlen);

void auth_wipe(struct auth_users *a);

enum { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER, AUTH_OTHER };

/* The scheme of an Authorization / Proxy-Authorization value, and where its credentials
 * start (*cred, *credlen). */
int auth_scheme(const char *v, size_t len, const char **cred, size_t *credlen);

/* Room for decoded Basic credentials: the longest "user:password" an entry can match. */
#define AUTH_BASIC_MAX (AUTH_USER_MAX + AUTH_PASS_MAX + 2)

/* Decode Basic credentials (base64 "user:password") into dec (cap bytes; AUTH_BASIC_MAX
 * holds any an entry can match), once per request: the check (auth_check_basic) and the
 * revocation fingerprint (cred.h) both read these bytes. ERR_OK with *n, or ERR_INVAL (not
 * base64, longer than cap, no ':'). dec then holds a secret: the caller wipes all of it
 * (secret_wipe) when done, after a failure too. */
int auth_basic_decode(const char *cred, size_t len, unsigned char *dec, size_t cap, size_t *n);

/* Check decoded "user:password" bytes (auth_basic_decode: n bytes, a ':' among them)
 * against every entry. ERR_OK when they match one, else ERR_CRYPTO (ERR_INVAL: no ':');
 * the user name (the bytes before the first ':') is copied to user, for logs, either way. */
int auth_check_basic(const struct auth_users *a, const unsigned char *up, size_t n,
    char *user, size_t usercap);

#endif

/*
 * fuzz_auth.c — the password file and Basic credentials (auth.c).
 *
 * Byte 0, bit 0 clear: the rest is a password file (written to a temporary file, as
 * auth_load_passwords reads files); each loaded entry must then be accepted by
 * its own credentials (auth_basic_decode, then auth_check_basic). Bit 0 set: the rest is
 * an Authorization value for auth_scheme and, when Basic, auth_basic_decode and
 * auth_check_basic against a fixed file.
 */
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "b64.h"
#include "err.h"
#include "fuzz.h"

static struct auth_users users, fixed;

static void
entry_ok(const struct auth_users *a, int i)
{
	unsigned char raw[AUTH_USER_MAX + AUTH_PASS_MAX + 1];
	unsigned char dec[AUTH_BASIC_MAX];
	char cred[(sizeof raw / 3 + 1) * 4 + 4], user[AUTH_USER_MAX + 1];
	size_t n = 0, e, k, d;

	memcpy(raw, a->u[i].user, a->u[i].ulen);
	n = a->u[i].ulen;
	raw[n++] = ':';
	memcpy(raw + n, a->u[i].pass, a->u[i].plen);
	n += a->u[i].plen;
	e = b64url_encode(cred, sizeof cred, raw, n);
	for (k = 0; k < e; k++)
		cred[k] = cred[k] == '-' ? '+' : cred[k] == '_' ? '/' : cred[k];
	while (e % 4)
		cred[e++] = '=';
	FUZZ_ASSERT(auth_basic_decode(cred, e, dec, sizeof dec, &d) == ERR_OK);
	FUZZ_ASSERT(d == n && memcmp(dec, raw, n) == 0);
	FUZZ_ASSERT(auth_check_basic(a, dec, d, user, sizeof user) == ERR_OK);
	FUZZ_ASSERT(strlen(user) == a->u[i].ulen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], user[64];
	int rc, i;

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		const char *path = fuzz_tmpfile(data + 1, size - 1);
		if (path == NULL)
			return 0;
		err[0] = 0;
		rc = auth_load_passwords(&users, path, err, sizeof err);
		unlink(path);
		if (rc != ERR_OK) {
			FUZZ_ASSERT(err[0] != 0 && users.n == 0);
			return 0;
		}
		FUZZ_ASSERT(users.n >= 0 && users.n <= AUTH_USERS_MAX);
		for (i = 0; i < users.n; i++) {
			FUZZ_ASSERT(users.u[i].ulen >= 1 && users.u[i].ulen <= AUTH_USER_MAX);
			FUZZ_ASSERT(users.u[i].plen >= 1 && users.u[i].plen <= AUTH_PASS_MAX);
			FUZZ_ASSERT(memchr(users.u[i].user, ':', users.u[i].ulen) == NULL);
			entry_ok(&users, i);
		}
		auth_wipe(&users);
	} else {
		const char *cred = NULL;
		size_t credlen = 0;
		if (fixed.n == 0) {
			static const uint8_t file[] = "# users\nalice:secret\nbob:b:o:b\n";
			const char *path = fuzz_tmpfile(file, sizeof file - 1);
			FUZZ_ASSERT(path != NULL);
			FUZZ_ASSERT(auth_load_passwords(&fixed, path, err, sizeof err) == ERR_OK);
			unlink(path);
		}
		rc = auth_scheme((const char *)data + 1, size - 1, &cred, &credlen);
		FUZZ_ASSERT(rc >= AUTH_NONE && rc <= AUTH_OTHER);
		if (rc == AUTH_BASIC || rc == AUTH_BEARER)
			FUZZ_ASSERT(cred >= (const char *)data + 1 && credlen <= size - 1 &&
			    cred + credlen == (const char *)data + size);
		if (rc == AUTH_BASIC) {
			unsigned char dec[AUTH_BASIC_MAX];
			size_t d;
			user[0] = 0;
			rc = auth_basic_decode(cred, credlen, dec, sizeof dec, &d);
			FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVAL);
			FUZZ_ASSERT(rc != ERR_OK || (d <= sizeof dec && memchr(dec, ':', d) != NULL));
			if (rc == ERR_OK) {
				rc = auth_check_basic(&fixed, dec, d, user, sizeof user);
				FUZZ_ASSERT(rc == ERR_OK || rc == ERR_CRYPTO);
			}
			FUZZ_ASSERT(memchr(user, 0, sizeof user) != NULL);
		}
	}
	return 0;
}

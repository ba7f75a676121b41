/*
 * t_auth.c — Basic credentials (auth.h): decoded once (auth_basic_decode) into the
 * caller's buffer, checked from those bytes (auth_check_basic), and the same bytes give
 * the fingerprint a reload's revocation check matches against the password file
 * (cred_fingerprint, cred_user_fps). Refusals: not base64, no ':', longer than the buffer,
 * a wrong password or user; the user name is kept for the log, cut to its buffer.
 */
#include <string.h>

#include "auth.h"
#include "cred.h"
#include "err.h"
#include "test.h"

static struct auth_users users;

static void
add_user(const char *u, const char *p)
{
	int i = users.n++;

	users.u[i].ulen = (unsigned short)strlen(u);
	users.u[i].plen = (unsigned short)strlen(p);
	memcpy(users.u[i].user, u, users.u[i].ulen);
	memcpy(users.u[i].pass, p, users.u[i].plen);
}

/* Decode then check, as cred.c does; the user name in user. */
static int
check(const char *b64, char *user, size_t usercap)
{
	unsigned char dec[AUTH_BASIC_MAX];
	size_t n;
	int rc;

	if (usercap)
		user[0] = 0;
	rc = auth_basic_decode(b64, strlen(b64), dec, sizeof dec, &n);
	if (rc == ERR_OK)
		rc = auth_check_basic(&users, dec, n, user, usercap);
	return rc;
}

void
t_auth(void)
{
	unsigned char dec[AUTH_BASIC_MAX], small[4];
	uint64_t fps[4];
	char user[AUTH_USER_MAX + 1], tiny[3];
	size_t n = 99, nfp, i;
	int found = 0;

	memset(&users, 0, sizeof users);
	add_user("alice", "secret");
	add_user("bob", "b:o:b");

	/* decode: "alice:secret" */
	CHECK_INT(auth_basic_decode("YWxpY2U6c2VjcmV0", 16, dec, sizeof dec, &n), ERR_OK,
	    "decode: alice:secret");
	CHECK_INT(n, 12, "decode: 12 bytes");
	CHECK_MEM(dec, "alice:secret", 12, "decode: the bytes");
	CHECK_INT(auth_check_basic(&users, dec, n, user, sizeof user), ERR_OK,
	    "check: the decoded bytes match alice");
	CHECK_STR(user, "alice", "check: user for the log");

	/* the fingerprint of the same decoded bytes is the file entry's (revocation) */
	nfp = cred_user_fps(&users, fps, 4);
	CHECK_INT(nfp, 2, "fingerprints: one per entry");
	for (i = 0; i < nfp; i++)
		found += fps[i] == cred_fingerprint(dec, n);
	CHECK_INT(found, 1, "fingerprint of the decoded request bytes is alice's entry's");

	/* the password may hold ':' (the user name ends at the first) */
	CHECK_INT(check("Ym9iOmI6bzpi", user, sizeof user), ERR_OK, "bob:b:o:b accepted");
	CHECK_STR(user, "bob", "bob: user name up to the first ':'");

	/* refusals */
	CHECK_INT(check("YWxpY2U6d3Jvbmc=", user, sizeof user), ERR_CRYPTO, "alice:wrong refused");
	CHECK_STR(user, "alice", "refused: the user name is kept for the log");
	CHECK_INT(check("bWFsbG9yeTpzZWNyZXQ=", user, sizeof user), ERR_CRYPTO,
	    "mallory:secret (another user's password) refused");
	CHECK_INT(check("YWxpY2U6", user, sizeof user), ERR_CRYPTO, "alice: (empty password) refused");
	CHECK_INT(check("YWxpY2VzZWNyZXQ=", user, sizeof user), ERR_INVAL, "no ':' refused");
	CHECK_STR(user, "", "no ':': no user");
	CHECK_INT(check("YWxpY2U6c2VjcmV0!", user, sizeof user), ERR_INVAL, "not base64 refused");
	CHECK_INT(check("YWxpY2U6c2VjcmV0==", user, sizeof user), ERR_INVAL, "bad padding refused");
	CHECK_INT(check("", user, sizeof user), ERR_INVAL, "empty credentials refused");
	n = 99;
	CHECK_INT(auth_basic_decode("YWxpY2U6c2VjcmV0", 16, small, sizeof small, &n), ERR_INVAL,
	    "decode: longer than the buffer refused");
	CHECK_INT(n, 0, "decode: refused, nothing counted");
	CHECK_INT(auth_check_basic(&users, (const unsigned char *)"alice", 5, user, sizeof user),
	    ERR_INVAL, "check: bytes without ':' refused");
	CHECK_INT(check("YWxpY2U6c2VjcmV0", tiny, sizeof tiny), ERR_OK, "user buffer of 3 bytes");
	CHECK_STR(tiny, "al", "user name cut to its buffer");
	auth_wipe(&users);
	CHECK_INT(users.n, 0, "auth_wipe: no entry left");
}

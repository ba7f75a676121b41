/*
 * auth.c — password-file Basic authentication. See auth.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "b64.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "secret.h"

/* see auth.h */
int
auth_load_passwords(struct auth_users *a, const char *path, char *err, size_t errlen)
{
	static char buf[AUTH_FILE_MAX + 1];
	struct stat st;
	ssize_t got;
	size_t len = 0, i, start = 0;
	int fd, line = 0, rc = ERR_OK;

	memset(a, 0, sizeof *a);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > AUTH_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path, AUTH_FILE_MAX);
		return ERR_INVAL;
	}
	while (len < (size_t)st.st_size && (got = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)got;
	close(fd);
	for (i = 0; i <= len && rc == ERR_OK; i++) {
		const char *l, *colon;
		size_t n, ul, pl, k;

		if (i < len && buf[i] != '\n')
			continue;
		line++;
		l = buf + start;
		n = i - start;
		start = i + 1;
		if (n && l[n - 1] == '\r')
			n--;
		if (n == 0 || l[0] == '#')
			continue;
		for (k = 0; k < n; k++)
			if ((unsigned char)l[k] < 0x20 || l[k] == 0x7f)
				break;
		colon = memchr(l, ':', n);
		ul = colon ? (size_t)(colon - l) : 0;
		pl = colon ? n - ul - 1 : 0;
		if (k < n || !colon || ul == 0 || ul > AUTH_USER_MAX || pl == 0 || pl > AUTH_PASS_MAX) {
			snprintf(err, errlen, "%s:%d: expected user:password (user 1-%d, password 1-%d bytes)",
			    path, line, AUTH_USER_MAX, AUTH_PASS_MAX);
			rc = ERR_INVAL;
		} else if (a->n == AUTH_USERS_MAX) {
			snprintf(err, errlen, "%s:%d: more than %d users", path, line, AUTH_USERS_MAX);
			rc = ERR_RANGE;
		} else {
			memcpy(a->u[a->n].user, l, ul);
			a->u[a->n].ulen = (unsigned short)ul;
			memcpy(a->u[a->n].pass, colon + 1, pl);
			a->u[a->n].plen = (unsigned short)pl;
			a->n++;
		}
	}
	secret_wipe(buf, len);
	if (rc != ERR_OK)
		auth_wipe(a);
	else
		log_warn_exposed("password file", path, &st); /* at start and every reload */
	return rc;
}

/* see auth.h */
void
auth_wipe(struct auth_users *a)
{
	secret_wipe(a, sizeof *a);
}

/* see auth.h */
int
auth_scheme(const char *v, size_t len, const char **cred, size_t *credlen)
{
	size_t sp = 0;
	int scheme;

	while (sp < len && v[sp] != ' ')
		sp++;
	if (sp == 5 && strncasecmp(v, "Basic", 5) == 0)
		scheme = AUTH_BASIC;
	else if (sp == 6 && strncasecmp(v, "Bearer", 6) == 0)
		scheme = AUTH_BEARER;
	else
		return sp == 0 ? AUTH_NONE : AUTH_OTHER;
	while (sp < len && v[sp] == ' ')
		sp++;
	*cred = v + sp;
	*credlen = len - sp;
	return scheme;
}

/* see auth.h */
int
auth_basic_decode(const char *cred, size_t len, unsigned char *dec, size_t cap, size_t *n)
{
	*n = 0;
	if (b64std_decode(dec, cap, n, cred, len) != ERR_OK || memchr(dec, ':', *n) == NULL) {
		*n = 0;
		return ERR_INVAL;
	}
	return ERR_OK;
}

/* see auth.h */
int
auth_check_basic(const struct auth_users *a, const unsigned char *up, size_t n,
    char *user, size_t usercap)
{
	const unsigned char *colon = memchr(up, ':', n);
	size_t ul, pl;
	int i, ok = 0;

	if (usercap)
		user[0] = 0;
	if (colon == NULL)
		return ERR_INVAL;
	ul = (size_t)(colon - up);
	pl = n - ul - 1;
	if (usercap) {
		size_t c = ul < usercap - 1 ? ul : usercap - 1;
		memcpy(user, up, c);
		user[c] = 0;
	}
	for (i = 0; i < a->n; i++) {
		ok |= secret_eq(up, ul, a->u[i].user, a->u[i].ulen) &
		    secret_eq(colon + 1, pl, a->u[i].pass, a->u[i].plen);
	}
	return ok ? ERR_OK : ERR_CRYPTO;
}

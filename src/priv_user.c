/*
 * priv_user.c — the `user` syntax and the /etc/passwd and /etc/group parsers. See
 * priv_user.h.
 */
#include <string.h>

#include "err.h"
#include "priv_user.h"

/* Decimal 0..PRIV_ID_MAX from s[0..n): digits only, no sign, no leading zero. */
static int
parse_id(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return ERR_INVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return ERR_INVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > PRIV_ID_MAX)
		return ERR_RANGE;
	*out = (uint32_t)v;
	return ERR_OK;
}

static int
name_ok(const char *s, size_t n)
{
	size_t i, digits = 0;

	if (n == 0 || n > PRIV_NAME_MAX)
		return 0;
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '.' || c == '-'))
			return 0;
		digits += c >= '0' && c <= '9';
	}
	return digits < n;
}

/* see priv_user.h */
int
priv_parse(const char *v, struct priv_user *u, const char **why)
{
	const char *colon = strchr(v, ':');
	size_t n = strlen(v);

	memset(u, 0, sizeof *u);
	if (strcmp(v, "root") == 0) {
		strcpy(u->name, "root");
		return PRIV_SPEC_ROOT;
	}
	if (colon) {
		size_t a = (size_t)(colon - v);
		if (parse_id(v, a, &u->uid) != ERR_OK || parse_id(colon + 1, n - a - 1, &u->gid) != ERR_OK) {
			*why = "must be NAME, UID:GID (decimal, at most 4294967294) or root";
			return ERR_INVAL;
		}
		if (u->uid == 0) {
			*why = "UID 0 is root: write user = root to keep root";
			return ERR_INVAL;
		}
		return PRIV_SPEC_IDS;
	}
	if (!name_ok(v, n)) {
		*why = "must be NAME (letters, digits, _ . -, at most 32, not all digits), "
		    "UID:GID or root";
		return ERR_INVAL;
	}
	memcpy(u->name, v, n + 1);
	return PRIV_SPEC_NAME;
}

/* The next line of buf from *pos: [*s, *s + *n), without its LF. 0 at the end. */
static int
next_line(const char *buf, size_t len, size_t *pos, const char **s, size_t *n)
{
	const char *nl;

	if (*pos >= len)
		return 0;
	*s = buf + *pos;
	nl = memchr(*s, '\n', len - *pos);
	*n = nl ? (size_t)(nl - *s) : len - *pos;
	*pos += *n + (nl != NULL);
	return 1;
}

/* Split line [s, s+n) at ':' into at most max fields; returns the count (more than max
 * fields: max + 1). */
static int
split(const char *s, size_t n, const char **f, size_t *fl, int max)
{
	int k = 0;
	size_t start = 0, i;

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != ':')
			continue;
		if (k == max)
			return max + 1;
		f[k] = s + start;
		fl[k++] = i - start;
		start = i + 1;
	}
	return k;
}

static int
field_is(const char *f, size_t fl, const char *name)
{
	return fl == strlen(name) && memcmp(f, name, fl) == 0;
}

/* The 7 fields of name's line in /etc/passwd text. ERR_OK, ERR_NOTFOUND, or ERR_INVAL
 * when the user's own line does not have 7 fields. */
static int
passwd_line(const char *buf, size_t len, const char *name, const char **f, size_t *fl)
{
	size_t pos = 0, n;
	const char *s;

	while (next_line(buf, len, &pos, &s, &n)) {
		int k;

		if (n && s[n - 1] == '\r')
			n--;
		if (n == 0 || s[0] == '#' || s[0] == '+' || s[0] == '-')
			continue;
		k = split(s, n, f, fl, 7);
		if (k < 1 || !field_is(f[0], fl[0], name))
			continue;
		return k == 7 ? ERR_OK : ERR_INVAL;
	}
	return ERR_NOTFOUND;
}

/* see priv_user.h */
int
priv_passwd_find(const char *buf, size_t len, const char *name, uint32_t *uid, uint32_t *gid)
{
	const char *f[7];
	size_t fl[7];
	int rc = passwd_line(buf, len, name, f, fl);

	if (rc != ERR_OK)
		return rc;
	if (parse_id(f[2], fl[2], uid) != ERR_OK || parse_id(f[3], fl[3], gid) != ERR_OK)
		return ERR_INVAL;
	return ERR_OK;
}

/* see priv_user.h */
int
priv_passwd_home(const char *buf, size_t len, const char *name, char *home, size_t cap)
{
	const char *f[7];
	size_t fl[7];
	int rc = passwd_line(buf, len, name, f, fl);

	if (rc != ERR_OK)
		return rc;
	if (cap == 0 || fl[5] >= cap)
		return ERR_NOSPACE;
	memcpy(home, f[5], fl[5]);
	home[fl[5]] = 0;
	return ERR_OK;
}

/* see priv_user.h */
int
priv_group_list(const char *buf, size_t len, const char *name, uint32_t primary,
    uint32_t *out, int cap)
{
	size_t pos = 0, n, nl = strlen(name);
	const char *s;
	int count = 0, i;

	if (cap < 1)
		return 0;
	out[count++] = primary;
	while (count < cap && next_line(buf, len, &pos, &s, &n)) {
		const char *f[4], *m, *end;
		size_t fl[4];
		uint32_t gid;

		if (n && s[n - 1] == '\r')
			n--;
		if (n == 0 || s[0] == '#' || s[0] == '+' || s[0] == '-')
			continue;
		if (split(s, n, f, fl, 4) != 4 || parse_id(f[2], fl[2], &gid) != ERR_OK)
			continue;
		for (m = f[3], end = f[3] + fl[3]; m < end;) {
			const char *c = memchr(m, ',', (size_t)(end - m));
			size_t ml = c ? (size_t)(c - m) : (size_t)(end - m);
			if (ml == nl && memcmp(m, name, nl) == 0) {
				int dup = 0;
				for (i = 0; i < count; i++)
					dup |= out[i] == gid;
				if (!dup)
					out[count++] = gid;
				break;
			}
			m += ml + (c != NULL);
		}
	}
	return count;
}

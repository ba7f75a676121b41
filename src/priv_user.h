/*
 * priv_user.h — who the relay runs as: the syntax of a `user` value and our own parsers
 * of /etc/passwd and /etc/group text (a static musl binary has no NSS). Pure: the
 * parsers take (buf, len), check before every read and never write past their outputs; a
 * malformed line is skipped unless it is the line of the user asked for, which is an
 * error (a broken entry must not resolve to something else). config.c checks `user` with
 * priv_parse; priv.c resolves and drops (priv.h).
 */
#ifndef RELAYPRO_PRIV_USER_H
#define RELAYPRO_PRIV_USER_H

#include <stddef.h>
#include <stdint.h>

#define PRIV_NAME_MAX 32          /* user and group names, as useradd allows */
#define PRIV_GROUPS_MAX 32        /* supplementary groups kept; further ones are dropped */
#define PRIV_FILE_MAX (1 << 20)   /* /etc/passwd and /etc/group read at most this much */
#define PRIV_ID_MAX 4294967294u   /* (uid_t)-1 means "unchanged" to the kernel */
#define PRIV_DEFAULT_USER "relaypro"
#define PRIV_HOME_MAX 256         /* a longer home folder is treated as none */

enum { PRIV_SPEC_NAME = 1, PRIV_SPEC_IDS = 2, PRIV_SPEC_ROOT = 3 };

struct priv_user {
	char name[PRIV_NAME_MAX + 1];  /* "" for UID:GID */
	uint32_t uid, gid;
	int ngroups;                   /* supplementary groups, the primary one included */
	uint32_t groups[PRIV_GROUPS_MAX];
	char home[PRIV_HOME_MAX];      /* passwd's home folder for a NAME, "" otherwise */
};

/* The syntax of a `user` value: NAME ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 characters,
 * not all digits), UID:GID (decimal, 1..4294967294 for the UID, 0..4294967294 for the
 * GID; UID 0 is spelled `root`) or `root`. Fills u->name or u->uid/gid and returns a
 * PRIV_SPEC_* kind, or ERR_INVAL with *why set. */
int priv_parse(const char *v, struct priv_user *u, const char **why);

/* Find name in /etc/passwd text. ERR_OK with *uid, *gid; ERR_NOTFOUND; ERR_INVAL when the
 * user's own line is malformed. The first matching line wins, as getpwnam does. */
int priv_passwd_find(const char *buf, size_t len, const char *name, uint32_t *uid,
    uint32_t *gid);

/* The home folder (sixth field) of name's line, into home (cap bytes, NUL-terminated).
 * ERR_OK; ERR_NOTFOUND; ERR_INVAL for a malformed line; ERR_NOSPACE when it is too long. */
int priv_passwd_home(const char *buf, size_t len, const char *name, char *home, size_t cap);

/* The groups of /etc/group text that list name as a member, after primary (always first).
 * Writes at most cap ids to out, without duplicates; returns how many. */
int priv_group_list(const char *buf, size_t len, const char *name, uint32_t primary,
    uint32_t *out, int cap);

#endif

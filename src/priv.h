/*
 * priv.h — running as a non-root user (key `user`, issue 9).
 *
 * relaypro started as root binds its listeners, creates its CA bundle and opens its log as
 * root, then becomes the configured user for good: setgroups (the user's groups from
 * /etc/group, none for UID:GID), setgid, setuid, PR_SET_NO_NEW_PRIVS, and a check that
 * setuid(0) and setgid(0) now fail. Started as any other user it changes nothing.
 *
 * `user` is NAME, UID:GID or `root` (keep root, logged as a warning); unset means
 * `relaypro`. A NAME is looked up in /etc/passwd and /etc/group with our own parser (a
 * static musl binary has no NSS); UID:GID needs no file at all (FROM scratch images).
 * A NAME that cannot be found is a configuration error (exit 2), never a silent root.
 *
 * The parsers take (buf, len), check before every read and never write past their
 * outputs; a malformed line is skipped unless it is the line of the user asked for, which
 * is an error (a broken entry must not resolve to something else).
 */
#ifndef RELAYPRO_PRIV_H
#define RELAYPRO_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

/* Does the user u have want (R_OK, W_OK, X_OK, or'ed) on path by its mode bits, and search
 * permission on every folder above it? 1 yes, 0 no (or path missing). */
int priv_can(const char *path, const struct priv_user *u, int want);

/* Become u for good (see above). ERR_OK, or ERR_IO with a reason in err. */
int priv_drop(const struct priv_user *u, char *err, size_t errlen);

/* At start, after the listeners are bound and the CA bundle and log are open: when running
 * as root, resolve cfg->user (passwd and group files at the paths given, NULL for the
 * /etc ones), give the target user what relaypro created (privateFolder, the CA bundle,
 * the log file) and, when the config file or the log file sits in the user's own home
 * folder (passwd), that folder and the config file (registration replaces the config
 * atomically, rotation renames the log: both need the folder), warn about files it will
 * need but cannot use, and drop. A NAME that does not exist is a configuration error whose
 * one line gives both fixes: the useradd command that creates it, or the `user` key. ca_created: the
 * bundle was written by this start. Returns 0, 2 (configuration: message in err naming the
 * key) or 1 (system failure: message in err). Not root: returns 0 and changes nothing. */
int priv_start(const struct config *cfg, int ca_created, const char *passwd_path,
    const char *group_path, char *err, size_t errlen);

#endif

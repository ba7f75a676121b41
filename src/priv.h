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
 * The `user` syntax and the passwd/group parsers are priv_user.h (pure; config.c checks
 * the key with them).
 */
#ifndef RELAYPRO_PRIV_H
#define RELAYPRO_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "priv_user.h"

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

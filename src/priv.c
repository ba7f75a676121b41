/*
 * priv.c — dropping root for the configured user. See priv.h.
 *
 * Only the start-up path runs here, once, before any thread exists (setgroups applies
 * to the calling thread only in musl 1.2.3, and PR_SET_NO_NEW_PRIVS is per thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "priv.h"
#include "priv_user.h"

/* Read a whole small file into buf (NUL-terminated). Returns its length, or -1. */
static long
read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -1;
	while (got + 1 < cap) {
		ssize_t r = read(fd, buf + got, cap - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got + 1 >= cap) {
		errno = EFBIG;
		return -1;
	}
	buf[got] = 0;
	return (long)got;
}

/* ---- permissions by mode bits ------------------------------------------------------- */

static int
in_groups(const struct priv_user *u, uint32_t gid)
{
	int i;

	if (gid == u->gid)
		return 1;
	for (i = 0; i < u->ngroups; i++)
		if (u->groups[i] == gid)
			return 1;
	return 0;
}

static int
mode_allows(const struct stat *st, const struct priv_user *u, int want)
{
	unsigned bits = (unsigned)(want & 7), have;

	if (st->st_uid == u->uid)
		have = (st->st_mode >> 6) & 7;
	else if (in_groups(u, st->st_gid))
		have = (st->st_mode >> 3) & 7;
	else
		have = st->st_mode & 7;
	return (have & bits) == bits;
}

/* see priv.h */
int
priv_can(const char *path, const struct priv_user *u, int want)
{
	char dir[PATH_MAX];
	struct stat st;
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof dir || stat(path, &st) != 0 || !mode_allows(&st, u, want))
		return 0;
	memcpy(dir, path, n + 1);
	for (i = n; i-- > 1;) { /* every folder above path: search permission */
		if (dir[i] != '/')
			continue;
		dir[i] = 0;
		if (stat(dir, &st) != 0 || !mode_allows(&st, u, X_OK))
			return 0;
	}
	if (path[0] == '/' && (stat("/", &st) != 0 || !mode_allows(&st, u, X_OK)))
		return 0;
	return 1;
}

/* ---- the drop ----------------------------------------------------------------------- */

/* see priv.h */
int
priv_drop(const struct priv_user *u, char *err, size_t errlen)
{
	gid_t g[PRIV_GROUPS_MAX];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int i;

	for (i = 0; i < u->ngroups && i < PRIV_GROUPS_MAX; i++)
		g[i] = (gid_t)u->groups[i];
	if (setgroups((size_t)i, i ? g : NULL) != 0) {
		snprintf(err, errlen, "setgroups: %s", strerror(errno));
		return ERR_IO;
	}
	if (setgid((gid_t)u->gid) != 0) {
		snprintf(err, errlen, "setgid(%lu): %s", (unsigned long)u->gid, strerror(errno));
		return ERR_IO;
	}
	if (setuid((uid_t)u->uid) != 0) {
		snprintf(err, errlen, "setuid(%lu): %s", (unsigned long)u->uid, strerror(errno));
		return ERR_IO;
	}
	/* Nothing this process executes later (workers, an upgrade) can gain privileges. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return ERR_IO;
	}
	/* Verify: every id is the target's, and root cannot be taken back. */
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	    ru != u->uid || eu != u->uid || su != u->uid ||
	    rg != u->gid || eg != u->gid || sg != u->gid) {
		snprintf(err, errlen, "the user and group ids did not all change");
		return ERR_IO;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		snprintf(err, errlen, "root could be regained after the drop");
		return ERR_IO;
	}
	return ERR_OK;
}

/* ---- start-up ----------------------------------------------------------------------- */

/* The folder holding path, into dir. */
static void
folder_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, cap, ".");
	else if (slash == path)
		snprintf(dir, cap, "/");
	else
		snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* Resolve the `user` value (or the default) into u. 0, or 2 with err naming the key. */
static int
resolve_user(const struct config *cfg, const char *passwd_path, const char *group_path,
    struct priv_user *u, char *err, size_t errlen)
{
	static char text[PRIV_FILE_MAX];
	const char *spec = cfg->user[0] ? cfg->user : PRIV_DEFAULT_USER, *why = "";
	const char *unset = cfg->user[0] ? "" : " (not set: the default when started as root)";
	long n;
	int kind = priv_parse(spec, u, &why), rc;

	if (kind < 0) {
		snprintf(err, errlen, "user (RELAYPRO_USER) = %s: %s", spec, why);
		return 2;
	}
	if (kind != PRIV_SPEC_NAME)
		return kind == PRIV_SPEC_ROOT ? -1 : 0;
	n = read_small(passwd_path, text, sizeof text);
	if (n < 0) {
		snprintf(err, errlen, "user (RELAYPRO_USER) = %s%s: cannot read %s (%s); use UID:GID "
		    "where there is no passwd file, or user = root to keep root", spec, unset,
		    passwd_path, strerror(errno));
		return 2;
	}
	rc = priv_passwd_find(text, (size_t)n, u->name, &u->uid, &u->gid);
	if (rc == ERR_NOTFOUND) {
		/* One line, both fixes, the first one ready to paste. */
		char dir[CFG_PATH];
		if (cfg->file[0])
			folder_of(cfg->file, dir, sizeof dir);
		else
			snprintf(dir, sizeof dir, "/nonexistent");
		snprintf(err, errlen, "user (RELAYPRO_USER) = %s%s: no such user in %s; create it "
		    "(useradd --system --user-group --home-dir %s --no-create-home --shell "
		    "/usr/sbin/nologin %s) or set user = NAME or UID:GID of an existing user", spec,
		    unset, passwd_path, dir, u->name);
		return 2;
	}
	if (rc != ERR_OK) {
		snprintf(err, errlen, "user (RELAYPRO_USER) = %s%s: a malformed entry in %s; repair "
		    "it, or set user = NAME or UID:GID of another user", spec, unset, passwd_path);
		return 2;
	}
	if (priv_passwd_home(text, (size_t)n, u->name, u->home, sizeof u->home) != ERR_OK)
		u->home[0] = 0;
	if (u->uid == 0) {
		snprintf(err, errlen, "user (RELAYPRO_USER) = %s: has UID 0 in %s; write user = root "
		    "to keep root", spec, passwd_path);
		return 2;
	}
	n = read_small(group_path, text, sizeof text);
	u->ngroups = n < 0 ? 1 : priv_group_list(text, (size_t)n, u->name, u->gid, u->groups,
	    PRIV_GROUPS_MAX);
	if (n < 0)
		u->groups[0] = u->gid;
	return 0;
}

/* Give path to u when it is a regular file with one link, or a folder, owned by root
 * (never following a symbolic link; a second link would hand over a file that also lives
 * elsewhere). Returns 1 when changed. */
static int
give(const char *path, const struct priv_user *u, int want_dir)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
	    (want_dir ? O_DIRECTORY : 0));
	int changed = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && st.st_uid == 0 &&
	    (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && st.st_nlink == 1) &&
	    fchown(fd, (uid_t)u->uid, (gid_t)u->gid) == 0)
		changed = 1;
	close(fd);
	return changed;
}

static void
warn_cannot(const char *what, const char *path, const char *needs, const char *consequence)
{
	struct log_rec r;

	if (log_begin(&r, LOG_WARN, "priv.access")) {
		log_str(&r, "what", what);
		log_str(&r, "path", path);
		log_str(&r, "needs", needs);
		log_str(&r, "msg", consequence);
		log_end(&r);
	}
}

/* Is dir the user's home folder (the same folder, by device and inode), and not "/"? The
 * home is where the operator said the user lives (useradd --home-dir, the packages'
 * /opt/relaypro): relaypro's own state may be handed over there, and only there, so a
 * config in /etc never makes /etc the user's. */
static int
is_home(const char *dir, const struct priv_user *u)
{
	struct stat a, b, r;

	if (!u->home[0] || lstat(dir, &a) != 0 || lstat(u->home, &b) != 0 || stat("/", &r) != 0 ||
	    !S_ISDIR(a.st_mode) || !S_ISDIR(b.st_mode))
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino &&
	    !(a.st_dev == r.st_dev && a.st_ino == r.st_ino);
}

/* setgroups() changes the calling thread only (musl 1.2.3): the drop must happen while
 * this is the only thread. A finished log housekeeper may take a moment to go away.
 * Returns 0, or -1 when another thread stays; without /proc (a bare chroot) 0. */
static int
wait_single_thread(void)
{
	char buf[2048];
	int tries;

	for (tries = 0; tries < 100; tries++) {
		long n = read_small("/proc/self/status", buf, sizeof buf);
		const char *t = n > 0 ? strstr(buf, "\nThreads:") : NULL;
		if (t == NULL)
			return 0;
		t += 9;
		while (*t == ' ' || *t == '\t')
			t++;
		if (t[0] == '1' && t[1] == '\n')
			return 0;
		usleep(10000);
	}
	return -1;
}

/* see priv.h */
int
priv_start(const struct config *cfg, int ca_created, const char *passwd_path,
    const char *group_path, char *err, size_t errlen)
{
	static const char renewal[] = "a renewed certificate will not load (cert.reload_fail); "
	    "workers and a SIGUSR2 upgrade read it again as the dropped user and will fail";
	struct priv_user u;
	struct log_rec r;
	char dir[CFG_PATH], def_bundle[CFG_PATH + 16], gl[PRIV_GROUPS_MAX * 11 + 1];
	int rc, i, o = 0, default_bundle;

	if (geteuid() != 0)
		return 0;
	rc = resolve_user(cfg, passwd_path ? passwd_path : "/etc/passwd",
	    group_path ? group_path : "/etc/group", &u, err, errlen);
	if (rc == -1) {
		log_msg(LOG_WARN, "priv.keep_root",
		    "user = root: relaypro keeps running as root (not recommended)");
		return 0;
	}
	if (rc != 0)
		return rc;

	/* What relaypro itself owns: its private folder and the CA bundle in it (or one it
	 * wrote this start), and its log file. Nothing else is changed. */
	snprintf(def_bundle, sizeof def_bundle, "%s/ca-bundle.pem", cfg->private_folder);
	default_bundle = strcmp(def_bundle, cfg->ca_bundle_file) == 0;
	if (default_bundle && strcmp(cfg->private_folder, "/") != 0)
		give(cfg->private_folder, &u, 1);
	if (default_bundle || ca_created)
		give(cfg->ca_bundle_file, &u, 0);
	if (strcmp(cfg->log_file, "-") != 0)
		(void)log_give(u.uid, u.gid);
	/* The registration write-back replaces the config (a new file renamed over it) and
	 * rotation renames the log: both need their folder, when it is the user's home. */
	if (cfg->file[0]) {
		folder_of(cfg->file, dir, sizeof dir);
		if (is_home(dir, &u)) {
			give(dir, &u, 1);
			give(cfg->file, &u, 0);
		}
	}
	if (strcmp(cfg->log_file, "-") != 0) {
		folder_of(cfg->log_file, dir, sizeof dir);
		if (is_home(dir, &u))
			give(dir, &u, 1);
	}

	/* What it will still need after the drop but cannot have: said once, here. */
	if (!priv_can(cfg->ca_bundle_file, &u, R_OK))
		warn_cannot("CA bundle", cfg->ca_bundle_file, "read",
		    "workers and a SIGUSR2 upgrade read it again as the dropped user and will fail");
	if (cfg->file[0] && !priv_can(cfg->file, &u, R_OK))
		warn_cannot("config file", cfg->file, "read", "a reload (SIGHUP) will fail");
	if (cfg->file[0] && cfg->deployment_token[0] && !cfg->security_token[0]) {
		folder_of(cfg->file, dir, sizeof dir);
		if (!priv_can(dir, &u, W_OK | X_OK))
			warn_cannot("config folder", dir, "write",
			    "the registration cannot be saved; it is logged with what to set instead");
	}
	if (cfg->password_file[0] && !priv_can(cfg->password_file, &u, R_OK))
		warn_cannot("passwordFile", cfg->password_file, "read", "a reload (SIGHUP) will fail");
	if (cfg->cert_file[0] && !priv_can(cfg->cert_file, &u, R_OK))
		warn_cannot("certFile", cfg->cert_file, "read", renewal);
	if (cfg->key_file[0] && !priv_can(cfg->key_file, &u, R_OK))
		warn_cannot("keyFile", cfg->key_file, "read", renewal);
	if (strcmp(cfg->log_file, "-") != 0) {
		folder_of(cfg->log_file, dir, sizeof dir);
		if (!priv_can(dir, &u, W_OK | X_OK))
			warn_cannot("log folder", dir, "write",
			    "log rotation will fail (relaying goes on; the log keeps growing)");
	}

	log_rotation_wait(); /* no thread may be left behind with root's groups */
	if (wait_single_thread() != 0) {
		snprintf(err, errlen, "a thread is running: the drop must happen before any starts");
		return 1;
	}
	if (priv_drop(&u, err, errlen) != ERR_OK)
		return 1;
	gl[0] = 0;
	for (i = 0; i < u.ngroups; i++)
		o += snprintf(gl + o, sizeof gl - (size_t)o, "%s%lu", i ? "," : "",
		    (unsigned long)u.groups[i]);
	if (log_begin(&r, LOG_INFO, "priv.drop")) {
		log_str(&r, "user", u.name[0] ? u.name : "(numeric)");
		log_int(&r, "uid", u.uid);
		log_int(&r, "gid", u.gid);
		log_str(&r, "groups", gl);
		log_end(&r);
	}
	return 0;
}

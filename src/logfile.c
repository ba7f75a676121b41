/*
 * logfile.c — the log file: size, rotation, following the name, housekeeping. See
 * logfile.h.
 *
 * The file state (path, size, settings, retry) is touched only with log.c's mutex held.
 * The housekeeping job and its results sit under hk_mu; the thread works on its own copy
 * of the path and settings, never on the descriptor, and one housekeeping run
 * (logkeep.c) goes at a time (hk_busy).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "logfile.h"
#include "logkeep.h"
#include "units.h"

#define RETRY_MS 60000           /* a failed rename or reopen is tried again after this */
#define TS_LEN 20                /* "20261123T100000.123Z" */
#define ROT_NAME_MAX (LOGFILE_PATH_MAX + 1 + TS_LEN + 4)
/* O_NOFOLLOW: a symbolic link planted at the log's name (by whoever may write its folder)
 * is refused, never followed into a file relaypro was not meant to write (docs/configuration.md). */
#define OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW)

/* The file (log.c's mutex held). */
static char path[LOGFILE_PATH_MAX];   /* the file logfile_open opened; "" = no rotation */
static int is_file;                   /* path is a regular file: rotation applies */
static struct logkeep_cfg rot;
static uint64_t size;                 /* the file's bytes as last seen + ours since */
static int shared;                    /* another process may write it: check every record */
static int64_t last_rot_ms;           /* rotated names strictly increase */
static int64_t retry_at_ms;           /* no rename or reopen before this */

/* Housekeeping (hk_mu). */
static pthread_mutex_t hk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_idle = PTHREAD_COND_INITIALIZER;
static char hk_path[LOGFILE_PATH_MAX];
static struct logkeep_cfg hk_cfg;
static int64_t hk_now_ms;             /* the rotation's time: maxAge counts from it */
static int hk_busy, hk_again, hk_errno;
static unsigned hk_failed, hk_failed_told;

static void housekeep_start(int64_t now);

/* see logfile.h */
int
logfile_open(const char *p)
{
	struct stat st;
	size_t n = strlen(p);
	int fd = open(p, OPEN_FLAGS, 0640);

	if (fd < 0)
		return -1;
	if (n < sizeof path)
		memcpy(path, p, n + 1);
	else
		path[0] = 0;
	is_file = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	size = is_file ? (uint64_t)st.st_size : 0;
	return fd;
}

/* see logfile.h */
void
logfile_none(void)
{
	path[0] = 0;
	is_file = 0;
}

/* see logfile.h */
const char *
logfile_path(void)
{
	return path;
}

/* see logfile.h */
void
logfile_set_rotation(uint64_t max_size, uint64_t max_age_s, int max_backups, int compress)
{
	rot.max_size = max_size;
	rot.max_age_ms = max_age_s > (uint64_t)INT64_MAX / 1000 ? INT64_MAX : (int64_t)max_age_s * 1000;
	rot.max_backups = max_backups > 0 ? max_backups : 0;
	rot.compress = compress != 0;
}

/* see logfile.h */
void
logfile_share(void)
{
	shared = 1;
}

/* ---- rotation ----------------------------------------------------------------------- */

/* "<path>.20261123T100000.123Z" for ms. */
static void
rotated_name(char out[ROT_NAME_MAX], int64_t ms)
{
	char ts[25], *o;
	size_t n = strlen(path), i;

	units_format_time(ts, ms);
	memcpy(out, path, n);
	o = out + n;
	*o++ = '.';
	for (i = 0; ts[i]; i++)
		if (ts[i] != '-' && ts[i] != ':')
			*o++ = ts[i];
	*o = 0;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

/* Open path afresh and make it *fd; 0, or -1 (errno set, *fd kept). */
static int
reopen(int *fd)
{
	struct stat st;
	int nfd = open(path, OPEN_FLAGS, 0640);

	if (nfd < 0)
		return -1;
	if (*fd > 2)
		close(*fd);
	*fd = nfd;
	size = fstat(nfd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

/* No rename or reopen is tried before retry_at_ms after a failure. */
static int
waiting(int64_t now)
{
	return now < retry_at_ms && now >= retry_at_ms - RETRY_MS;
}

/* Rename the full file aside and open a fresh one (fs = our file's stat). NULL or the
 * step that failed. */
static const char *
rotate(int *fd, const struct stat *fs, int64_t now)
{
	struct flock fl;
	struct stat ps;
	char dst[ROT_NAME_MAX + 3];
	int64_t ms = now > last_rot_ms ? now : last_rot_ms + 1;
	size_t n;
	int nfd, old, i, err;

	/* Other workers: one rotation at a time, and not twice for the same file. */
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(*fd, F_SETLKW, &fl) != 0 && errno == EINTR)
		;
	if (stat(path, &ps) != 0 || !same_file(&ps, fs)) {
		old = *fd;
		if (reopen(fd) == 0 || old != *fd) /* rotated by another process while we waited */
			return NULL;
		goto unlock;
	}
	for (i = 0;; i++, ms++) {
		rotated_name(dst, ms);
		n = strlen(dst);
		memcpy(dst + n, ".gz", 4);
		if (lstat(dst, &ps) != 0 && errno == ENOENT) {
			dst[n] = 0;
			if (lstat(dst, &ps) != 0 && errno == ENOENT)
				break;
		}
		if (i == 1000) {
			errno = EEXIST;
			goto fail;
		}
	}
	if (rename(path, dst) != 0)
		goto fail;
	nfd = open(path, OPEN_FLAGS, 0640);
	if (nfd < 0) {
		err = errno;
		(void)rename(dst, path); /* put it back: better too big than lost */
		errno = err;
		goto fail;
	}
	last_rot_ms = ms;
	old = *fd;
	*fd = nfd;
	size = 0;
	if (old > 2)
		close(old); /* releases the lock */
	housekeep_start(now);
	return NULL;
fail:
	err = errno;
	retry_at_ms = now + RETRY_MS;
	fl.l_type = F_UNLCK;
	(void)fcntl(*fd, F_SETLK, &fl);
	errno = err;
	return "rename";
unlock:
	err = errno;
	fl.l_type = F_UNLCK;
	(void)fcntl(*fd, F_SETLK, &fl);
	errno = err;
	return NULL;
}

/* The file's truth: follow the name, learn the size, rotate when len more bytes would
 * pass maxSize. */
static const char *
check(int *fd, size_t len, int64_t now)
{
	struct stat fs, ps;

	if (fstat(*fd, &fs) != 0 || !S_ISREG(fs.st_mode))
		return NULL;
	if ((uint64_t)fs.st_size > size)
		shared = 1; /* bytes this process did not write: someone else writes here */
	size = (uint64_t)fs.st_size;
	if (stat(path, &ps) != 0 || !same_file(&ps, &fs)) {
		/* Rotated by another process, or moved or removed by an operator. */
		shared = 1;
		if (waiting(now))
			return NULL;
		if (reopen(fd) != 0 || fstat(*fd, &fs) != 0) {
			retry_at_ms = now + RETRY_MS;
			return "reopen";
		}
		size = (uint64_t)fs.st_size;
	}
	if (size == 0 || size + len <= rot.max_size || waiting(now))
		return NULL;
	return rotate(fd, &fs, now);
}

/* see logfile.h */
const char *
logfile_before(int *fd, size_t len, int64_t now)
{
	if (!path[0] || !is_file || !rot.max_size)
		return NULL;
	if (!shared && (size == 0 || size + len <= rot.max_size))
		return NULL; /* alone, and not full by our own count: nothing to look at */
	return check(fd, len, now);
}

/* see logfile.h */
void
logfile_wrote(size_t len)
{
	size += len;
}

/* see logfile.h */
const char *
logfile_follow(int *fd, int64_t now)
{
	struct stat fs, ps;

	if (!path[0] || !is_file || fstat(*fd, &fs) != 0)
		return NULL;
	if (stat(path, &ps) == 0 && same_file(&ps, &fs))
		return NULL;
	if (reopen(fd) != 0) {
		retry_at_ms = now + RETRY_MS;
		return "reopen";
	}
	return NULL;
}

/* ---- housekeeping --------------------------------------------------------------------
 * Runs in the housekeeping thread (or, without one, in the caller): only file names,
 * never the log descriptor or the file state. */

static void *housekeeper(void *arg);

/* After a rotation at `now` (or at start): prune and compress in the background. */
static void
housekeep_start(int64_t now)
{
	pthread_attr_t at;
	pthread_t t;
	sigset_t all, old;
	int rc;

	if (!rot.compress && !rot.max_backups && !rot.max_age_ms)
		return;
	pthread_mutex_lock(&hk_mu);
	memcpy(hk_path, path, sizeof hk_path);
	hk_cfg = rot;
	hk_now_ms = now;
	if (hk_busy) {
		hk_again = 1;
		pthread_mutex_unlock(&hk_mu);
		return;
	}
	hk_busy = 1;
	/* The thread blocks every signal: they stay with the loop's self-pipe handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_attr_init(&at);
	if (rc == 0) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &at, housekeeper, NULL);
		pthread_attr_destroy(&at);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		/* No thread: do it here (bounded: at most max_backups files of max_size). */
		if (logkeep_run(hk_path, &hk_cfg, hk_now_ms) != 0) {
			__atomic_add_fetch(&hk_failed, 1, __ATOMIC_RELEASE);
			hk_errno = errno;
		}
		hk_busy = 0;
		pthread_cond_broadcast(&hk_idle);
	}
	pthread_mutex_unlock(&hk_mu);
}

/* see logfile.h */
void
logfile_housekeep_at_start(int64_t now)
{
	if (path[0] && is_file && rot.max_size)
		housekeep_start(now);
}

/* see logfile.h */
void
logfile_wait(void)
{
	pthread_mutex_lock(&hk_mu);
	while (hk_busy)
		pthread_cond_wait(&hk_idle, &hk_mu);
	pthread_mutex_unlock(&hk_mu);
}

/* see logfile.h */
unsigned
logfile_failures(int *err, const char **what)
{
	unsigned n;

	/* Called after every record: nothing new (the usual case) is one load, no lock. */
	if (__atomic_load_n(&hk_failed, __ATOMIC_ACQUIRE) == hk_failed_told)
		return 0;
	pthread_mutex_lock(&hk_mu);
	n = hk_failed - hk_failed_told;
	hk_failed_told = hk_failed;
	*err = hk_errno;
	pthread_mutex_unlock(&hk_mu);
	*what = rot.compress ? "compress or prune" : "prune";
	return n;
}

/* see logfile.h */
void
logfile_fork_prepare(void)
{
	pthread_mutex_lock(&hk_mu);
}

/* see logfile.h */
void
logfile_fork_parent(void)
{
	pthread_mutex_unlock(&hk_mu);
}

/* see logfile.h */
void
logfile_fork_child(void)
{
	hk_busy = hk_again = 0; /* the thread stayed in the parent */
	pthread_mutex_unlock(&hk_mu);
}

static void *
housekeeper(void *arg)
{
	char p[LOGFILE_PATH_MAX];
	struct logkeep_cfg cfg;
	int64_t now;
	int rc, err;

	(void)arg;
	/* Behind the loop: lower this thread's priority (Linux: per thread). */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&hk_mu);
	for (;;) {
		memcpy(p, hk_path, sizeof p);
		cfg = hk_cfg;
		now = hk_now_ms;
		hk_again = 0;
		pthread_mutex_unlock(&hk_mu);
		rc = logkeep_run(p, &cfg, now);
		err = errno;
		pthread_mutex_lock(&hk_mu);
		if (rc != 0) {
			__atomic_add_fetch(&hk_failed, 1, __ATOMIC_RELEASE);
			hk_errno = err;
		}
		if (!hk_again)
			break;
	}
	hk_busy = 0;
	pthread_cond_broadcast(&hk_idle);
	pthread_mutex_unlock(&hk_mu);
	return NULL;
}

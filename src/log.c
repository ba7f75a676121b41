/*
 * log.c — JSON-lines records, one write(2) each; rotation by size with pruning and
 * compression in a background thread. See log.h.
 *
 * Threads: the loop and the registration thread both log, and the housekeeping thread
 * reports back, so the descriptor, the rotation state and every write sit under `mu`.
 * The housekeeping thread never touches the descriptor; it works on its own copy of the
 * path and settings (hk_*), and deflate_gzip_file's static context is used by one
 * housekeeping run at a time (hk_busy).
 */
#include <dirent.h>
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

#include "deflate.h"
#include "err.h"
#include "fileio.h"
#include "json.h"
#include "log.h"

#define WARN_EVERY_MS 60000      /* at most one warning a minute per subject */
#define RETRY_MS 60000           /* a failed rename or reopen is tried again after this */
#define STALE_TMP_S 600          /* a compression temporary untouched this long is left over */
#define TS_LEN 20                /* "20261123T100000.123Z" */
#define ROT_NAME_MAX (LOG_PATH_MAX + 1 + TS_LEN + 4)
/* O_NOFOLLOW: a symbolic link planted at the log's name (by whoever may write its folder)
 * is refused, never followed into a file relaypro was not meant to write (SPEC §8). */
#define OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW)

struct rot_cfg {
	uint64_t max_size;
	int64_t max_age_ms;
	int max_backups, compress;
};

static int log_fd = 2;
static int debug_on;
static uint64_t dropped;
static int64_t (*clock_fn)(void);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_idle = PTHREAD_COND_INITIALIZER;
static char log_path[LOG_PATH_MAX];   /* the file log_open opened; "" = no rotation */
static int log_is_file;               /* log_path is a regular file: rotation applies */
static struct rot_cfg rot;
static int64_t last_rot_ms;           /* rotated names strictly increase */
static int64_t retry_at_ms;           /* no rename or reopen before this */
static uint64_t dropped_told;         /* drops already reported into the log */
static int64_t drop_warned_ms, rot_warned_ms;
static int drop_warned, rot_warned;
static char hk_path[LOG_PATH_MAX];    /* the housekeeping thread's job */
static struct rot_cfg hk_cfg;
static int64_t hk_now_ms;             /* the rotation's time: maxAge counts from it */
static int hk_busy, hk_again, hk_errno;
static unsigned hk_failed, hk_failed_told;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int64_t
real_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
now_ms(void)
{
	return clock_fn ? clock_fn() : real_now_ms();
}

static void housekeep_start(int64_t now);

/* fork() (workers, binary upgrade) must not copy mu while another thread holds it; the
 * child has no housekeeping thread, whatever hk_busy said. */
static void
fork_prepare(void)
{
	pthread_mutex_lock(&mu);
}

static void
fork_parent(void)
{
	pthread_mutex_unlock(&mu);
}

static void
fork_child(void)
{
	hk_busy = hk_again = 0;
	pthread_mutex_unlock(&mu);
}

static void
register_atfork(void)
{
	(void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void
atfork_once(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, register_atfork);
}

/* With a file and rotation both set (mu held): housekeep once, to finish what an earlier
 * run left behind (files past maxAge or maxBackups, files not yet compressed). */
static void
housekeep_at_start(void)
{
	if (log_path[0] && log_is_file && rot.max_size)
		housekeep_start(now_ms());
}

/* see log.h */
int
log_open(const char *path)
{
	struct stat st;
	int fd, saved;
	size_t n = strlen(path);

	atfork_once();
	if (strcmp(path, "-") == 0) {
		pthread_mutex_lock(&mu);
		saved = log_fd;
		log_fd = 1;
		log_path[0] = 0;
		pthread_mutex_unlock(&mu);
		if (saved > 2)
			close(saved);
		return ERR_OK;
	}
	fd = open(path, OPEN_FLAGS, 0640);
	if (fd < 0)
		return ERR_IO;
	pthread_mutex_lock(&mu);
	saved = log_fd;
	log_fd = fd;
	if (n < sizeof log_path)
		memcpy(log_path, path, n + 1);
	else
		log_path[0] = 0;
	log_is_file = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	housekeep_at_start();
	pthread_mutex_unlock(&mu);
	if (saved > 2)
		close(saved);
	return ERR_OK;
}

/* see log.h */
void
log_use_fd(int fd)
{
	atfork_once();
	pthread_mutex_lock(&mu);
	log_fd = fd;
	log_path[0] = 0;
	pthread_mutex_unlock(&mu);
}

/* see log.h */
void
log_set_debug(int on)
{
	debug_on = on;
}

/* see log.h */
int
log_debug_enabled(void)
{
	return debug_on;
}

/* see log.h */
void
log_set_clock(int64_t (*now)(void))
{
	clock_fn = now;
}

/* see log.h */
uint64_t
log_dropped(void)
{
	return dropped;
}

/* see log.h */
void
log_set_rotation(uint64_t max_size, uint64_t max_age_s, int max_backups, int compress)
{
	atfork_once();
	pthread_mutex_lock(&mu);
	rot.max_size = max_size;
	rot.max_age_ms = max_age_s > (uint64_t)INT64_MAX / 1000 ? INT64_MAX : (int64_t)max_age_s * 1000;
	rot.max_backups = max_backups > 0 ? max_backups : 0;
	rot.compress = compress != 0;
	housekeep_at_start();
	pthread_mutex_unlock(&mu);
}

/* see log.h */
int
log_is_stdio(void)
{
	int fd;

	pthread_mutex_lock(&mu);
	fd = log_fd;
	pthread_mutex_unlock(&mu);
	return fd == 1 || fd == 2;
}

/* see log.h */
int
log_give(uint32_t uid, uint32_t gid)
{
	struct stat st;
	int rc = 0;

	pthread_mutex_lock(&mu);
	/* The descriptor, not the name: what was opened is what is handed over. A second
	 * link would hand the user a file that also lives elsewhere (a hard link to
	 * /etc/shadow planted before the start), so only a lone regular file is given. */
	if (log_path[0] && fstat(log_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    st.st_uid == 0 && fchown(log_fd, (uid_t)uid, (gid_t)gid) == 0)
		rc = 1;
	pthread_mutex_unlock(&mu);
	return rc;
}

/* see log.h */
void
log_rotation_wait(void)
{
	pthread_mutex_lock(&mu);
	while (hk_busy)
		pthread_cond_wait(&hk_idle, &mu);
	pthread_mutex_unlock(&mu);
}

/* Write v as exactly n decimal digits. */
static void
put_digits(char *out, unsigned v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* see log.h */
void
log_format_time(char out[25], int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	memcpy(out, "0000-00-00T00:00:00.000Z", 25);
	put_digits(out, (unsigned)(tm.tm_year + 1900) % 10000, 4);
	put_digits(out + 5, (unsigned)tm.tm_mon + 1, 2);
	put_digits(out + 8, (unsigned)tm.tm_mday, 2);
	put_digits(out + 11, (unsigned)tm.tm_hour, 2);
	put_digits(out + 14, (unsigned)tm.tm_min, 2);
	put_digits(out + 17, (unsigned)tm.tm_sec, 2);
	put_digits(out + 20, (unsigned)(ms % 1000), 3);
}

/* Room kept free for the closing `,"truncated":true}\n`. */
#define TAIL_RESERVE 20

/* Append raw bytes if they fit within the record's limit, else mark it truncated. */
static int
append(struct log_rec *r, const char *s, size_t n)
{
	if (r->truncated || n > LOG_REC_MAX - TAIL_RESERVE - r->len) {
		r->truncated = 1;
		return 0;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	return 1;
}

/* Append `,"key":"escaped value"`, all or nothing. */
static void
field_str(struct log_rec *r, const char *key, const void *val, size_t n)
{
	size_t start = r->len, room;

	if (!r->on)
		return;
	if (!append(r, ",\"", 2) || !append(r, key, strlen(key)) || !append(r, "\":\"", 3))
		goto undo;
	room = LOG_REC_MAX - TAIL_RESERVE - r->len;
	if (json_escape(NULL, 0, val, n) > room - 1 || room < 1) {
		r->truncated = 1;
		goto undo;
	}
	r->len += json_escape(r->buf + r->len, room, val, n);
	if (!append(r, "\"", 1))
		goto undo;
	return;
undo:
	r->len = start;
}

/* see log.h */
int
log_begin(struct log_rec *r, enum log_level level, const char *event)
{
	char ts[25];
	int saved = errno;

	r->len = 0;
	r->truncated = 0;
	r->on = level != LOG_DEBUG || debug_on;
	if (!r->on)
		return 0;
	log_format_time(ts, clock_fn ? clock_fn() : real_now_ms());
	append(r, "{\"ts\":\"", 7);
	append(r, ts, strlen(ts));
	append(r, "\",\"level\":\"", 11);
	append(r, level_names[level], strlen(level_names[level]));
	append(r, "\"", 1);
	field_str(r, "event", event, strlen(event));
	errno = saved;
	return 1;
}

/* see log.h */
void
log_str(struct log_rec *r, const char *key, const char *val)
{
	int saved = errno;

	field_str(r, key, val ? val : "", val ? strlen(val) : 0);
	errno = saved;
}

/* see log.h */
void
log_strn(struct log_rec *r, const char *key, const void *val, size_t len)
{
	int saved = errno;

	field_str(r, key, val, len);
	errno = saved;
}

/* see log.h */
void
log_int(struct log_rec *r, const char *key, int64_t val)
{
	char num[24];
	size_t start = r->len;
	int saved = errno, n;

	if (!r->on)
		return;
	n = snprintf(num, sizeof num, "%lld", (long long)val);
	if (!append(r, ",\"", 2) || !append(r, key, strlen(key)) || !append(r, "\":", 2) ||
	    !append(r, num, (size_t)n))
		r->len = start;
	errno = saved;
}

/* see log.h */
void
log_bool(struct log_rec *r, const char *key, int val)
{
	size_t start = r->len;
	int saved = errno;

	if (!r->on)
		return;
	if (!append(r, ",\"", 2) || !append(r, key, strlen(key)) || !append(r, "\":", 2) ||
	    !append(r, val ? "true" : "false", val ? 4 : 5))
		r->len = start;
	errno = saved;
}

/* ------------------------------------------------------------ writing */

/* Close a record built with log_begin and write it to fd, bypassing everything else:
 * for the warnings about the log itself, written with mu held. */
static int
emit(struct log_rec *r, int fd)
{
	r->buf[r->len++] = '}';
	r->buf[r->len++] = '\n';
	r->on = 0;
	return fileio_write_all(fd, r->buf, r->len);
}

/* One warning a minute per subject: 1 when this one may go out (and is now counted). */
static int
may_warn(int *warned, int64_t *at, int64_t now)
{
	if (*warned && now - *at < WARN_EVERY_MS && now >= *at)
		return 0;
	*warned = 1;
	*at = now;
	return 1;
}

/* A record was dropped: tell standard error, unless that is where the log goes. */
static void
warn_dropped(int err)
{
	struct log_rec r;

	if (log_fd == 2 || !may_warn(&drop_warned, &drop_warned_ms, now_ms()))
		return;
	log_begin(&r, LOG_WARN, "log.dropped");
	log_int(&r, "dropped", (int64_t)dropped);
	log_str(&r, "error", strerror(err));
	log_str(&r, "file", log_path[0] ? log_path : log_fd == 1 ? "-" : "(descriptor)");
	log_str(&r, "msg", "log records could not be written; relaying goes on");
	(void)emit(&r, 2);
}

/* A rotation step failed: say so in the log (its writes still work) or on stderr. */
static void
warn_rotate(const char *what, int err)
{
	struct log_rec r;

	if (!may_warn(&rot_warned, &rot_warned_ms, now_ms()))
		return;
	log_begin(&r, LOG_WARN, "log.rotate");
	log_bool(&r, "ok", 0);
	log_str(&r, "step", what);
	log_str(&r, "error", strerror(err));
	log_str(&r, "file", log_path);
	if (emit(&r, log_fd) != 0 && log_fd != 2)
		(void)fileio_write_all(2, r.buf, r.len);
}

/* After a successful write: report drops and failed housekeeping not yet in the log. */
static void
report_backlog(void)
{
	struct log_rec r;

	if (dropped > dropped_told && may_warn(&drop_warned, &drop_warned_ms, now_ms())) {
		log_begin(&r, LOG_WARN, "log.dropped");
		log_int(&r, "dropped", (int64_t)dropped);
		log_int(&r, "since_last_report", (int64_t)(dropped - dropped_told));
		log_str(&r, "msg", "log records were lost before this one");
		if (emit(&r, log_fd) == 0)
			dropped_told = dropped;
	}
	if (hk_failed != hk_failed_told) {
		hk_failed_told = hk_failed;
		warn_rotate(rot.compress ? "compress or prune" : "prune", hk_errno);
	}
}

/* ------------------------------------------------------------ rotation */

/* "2026-11-23T10:00:00.123Z" → "20261123T100000.123Z" after "<path>.". */
static void
rotated_name(char out[ROT_NAME_MAX], const char *path, int64_t ms)
{
	char ts[25], *o;
	size_t n = strlen(path), i;

	log_format_time(ts, ms);
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

/* Open log_path afresh and make it the log; 0, or -1 (errno set, old log kept). */
static int
reopen(void)
{
	int fd = open(log_path, OPEN_FLAGS, 0640), old = log_fd;

	if (fd < 0)
		return -1;
	log_fd = fd;
	if (old > 2)
		close(old);
	return 0;
}

static void *housekeeper(void *arg);
static int housekeep(const char *path, const struct rot_cfg *cfg, int64_t now);

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
	memcpy(hk_path, log_path, sizeof hk_path);
	hk_cfg = rot;
	hk_now_ms = now;
	if (hk_busy) {
		hk_again = 1;
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
		if (housekeep(hk_path, &hk_cfg, hk_now_ms) != 0) {
			hk_failed++;
			hk_errno = errno;
		}
		hk_busy = 0;
		pthread_cond_broadcast(&hk_idle);
	}
}

/* Rename the full file aside and open a fresh one (mu held; fs = our file's stat). */
static void
rotate(const struct stat *fs, int64_t now)
{
	struct flock fl;
	struct stat ps;
	char dst[ROT_NAME_MAX + 3];
	int64_t ms = now > last_rot_ms ? now : last_rot_ms + 1;
	size_t n;
	int fd, old, i, err;

	/* Other workers: one rotation at a time, and not twice for the same file. */
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(log_fd, F_SETLKW, &fl) != 0 && errno == EINTR)
		;
	if (stat(log_path, &ps) != 0 || !same_file(&ps, fs)) {
		(void)reopen(); /* rotated by another process while we waited */
		goto unlock;
	}
	for (i = 0;; i++, ms++) {
		rotated_name(dst, log_path, ms);
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
	if (rename(log_path, dst) != 0)
		goto fail;
	fd = open(log_path, OPEN_FLAGS, 0640);
	if (fd < 0) {
		err = errno;
		(void)rename(dst, log_path); /* put it back: better too big than lost */
		errno = err;
		goto fail;
	}
	last_rot_ms = ms;
	old = log_fd;
	log_fd = fd;
	if (old > 2)
		close(old); /* releases the lock */
	housekeep_start(now);
	return;
fail:
	err = errno;
	retry_at_ms = now + RETRY_MS;
	warn_rotate("rename", err);
unlock:
	fl.l_type = F_UNLCK;
	(void)fcntl(log_fd, F_SETLK, &fl);
}

/* Before writing len bytes (mu held): follow the name, rotate when the file is full. */
static void
rotate_check(size_t len)
{
	struct stat fs, ps;
	int64_t now;

	if (fstat(log_fd, &fs) != 0 || !S_ISREG(fs.st_mode))
		return;
	if (stat(log_path, &ps) != 0 || !same_file(&ps, &fs)) {
		/* Rotated by another worker, or moved or removed by an operator. */
		now = now_ms();
		if (now < retry_at_ms && now >= retry_at_ms - RETRY_MS)
			return;
		if (reopen() != 0 || fstat(log_fd, &fs) != 0) {
			int err = errno;
			retry_at_ms = now + RETRY_MS;
			warn_rotate("reopen", err);
			return;
		}
	}
	if (fs.st_size == 0 || (uint64_t)fs.st_size + len <= rot.max_size)
		return;
	now = now_ms();
	if (now < retry_at_ms && now >= retry_at_ms - RETRY_MS)
		return;
	rotate(&fs, now);
}

/* One record, in one write() when the disk allows. A full disk can cut a record short
 * (the file's last page had room for part of it): the file then ends inside a line, and
 * the first record written after space comes back starts with a newline, so it is not
 * glued to the fragment (a reader skips one bad line instead of losing a good one).
 * mu held. 0, or -1 with errno set. */
static int torn_fd = -1; /* log_fd whose file may end inside a record */

static int
write_record(const char *buf, size_t len)
{
	size_t done = 0;

	if (torn_fd == log_fd && log_fd >= 0) {
		if (write(log_fd, "\n", 1) != 1)
			return -1;
		torn_fd = -1;
	}
	while (done < len) {
		ssize_t n = write(log_fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			if (done > 0)
				torn_fd = log_fd;
			errno = e;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* see log.h */
void
log_end(struct log_rec *r)
{
	static const char mark[] = ",\"truncated\":true";
	int saved = errno;

	if (!r->on)
		return;
	/* TAIL_RESERVE guarantees room for the mark and the closing "}\n". */
	if (r->truncated) {
		memcpy(r->buf + r->len, mark, sizeof mark - 1);
		r->len += sizeof mark - 1;
	}
	r->buf[r->len++] = '}';
	r->buf[r->len++] = '\n';
	r->on = 0;
	pthread_mutex_lock(&mu);
	if (log_path[0] && log_is_file && rot.max_size)
		rotate_check(r->len);
	if (write_record(r->buf, r->len) != 0) {
		dropped++;
		warn_dropped(errno);
	} else if (dropped > dropped_told || hk_failed != hk_failed_told) {
		report_backlog();
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
}

/* ------------------------------------------------------------ housekeeping
 * Runs in the housekeeping thread (or, without one, in the caller): only file names,
 * never the log descriptor or the shared state, which it reads and writes under mu. */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
digits(const char *s, int n, unsigned *v)
{
	*v = 0;
	while (n-- > 0) {
		if (*s < '0' || *s > '9')
			return 0;
		*v = *v * 10 + (unsigned)(*s++ - '0');
	}
	return 1;
}

enum { ROT_NONE, ROT_PLAIN, ROT_GZ, ROT_TMP };

/* Is name "<base>.<YYYYMMDDTHHMMSS.mmmZ>" (ROT_PLAIN), that + ".gz" (ROT_GZ) or a
 * compression temporary "….gz.tmp.<pid>" (ROT_TMP)? *ms gets the time in the name. */
static int
rotated_kind(const char *name, const char *base, size_t blen, int64_t *ms)
{
	const char *t = name + blen + 1;
	unsigned y, mo, d, h, mi, s, f;

	if (strncmp(name, base, blen) != 0 || name[blen] != '.' || strlen(t) < TS_LEN)
		return ROT_NONE;
	if (!digits(t, 4, &y) || !digits(t + 4, 2, &mo) || !digits(t + 6, 2, &d) || t[8] != 'T' ||
	    !digits(t + 9, 2, &h) || !digits(t + 11, 2, &mi) || !digits(t + 13, 2, &s) ||
	    t[15] != '.' || !digits(t + 16, 3, &f) || t[19] != 'Z' || mo < 1 || mo > 12 ||
	    d < 1 || d > 31)
		return ROT_NONE;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + f;
	t += TS_LEN;
	if (*t == 0)
		return ROT_PLAIN;
	if (strcmp(t, ".gz") == 0)
		return ROT_GZ;
	return strncmp(t, ".gz.tmp.", 8) == 0 ? ROT_TMP : ROT_NONE;
}

/* "dir/name" into out; 0, or -1 when it does not fit. */
static int
join(char *out, size_t cap, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	if (a + 1 + b + 1 > cap)
		return -1;
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
	return 0;
}

/* Delete rotated files older than max_age and beyond max_backups, oldest first; also
 * compression temporaries nobody has written for STALE_TMP_S. 0 or -1 (errno). */
static int
prune(const char *dir, const char *base, const struct rot_cfg *cfg, int64_t now)
{
	char oldest[256];
	size_t blen = strlen(base);
	int pass;

	for (pass = 0; pass < 10000; pass++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		struct stat st;
		int64_t ms, oldest_ms = INT64_MAX;
		int count = 0, kind, rc;

		if (!d)
			return -1;
		oldest[0] = 0;
		while ((e = readdir(d)) != NULL) {
			kind = rotated_kind(e->d_name, base, blen, &ms);
			if (kind == ROT_NONE)
				continue;
			if (kind == ROT_TMP) {
				if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    st.st_mtime < time(NULL) - STALE_TMP_S)
					(void)unlinkat(dirfd(d), e->d_name, 0);
				continue;
			}
			if (cfg->max_age_ms && ms < now - cfg->max_age_ms) {
				(void)unlinkat(dirfd(d), e->d_name, 0);
				continue;
			}
			count++;
			if (ms < oldest_ms || (ms == oldest_ms && strcmp(e->d_name, oldest) < 0)) {
				oldest_ms = ms;
				snprintf(oldest, sizeof oldest, "%s", e->d_name);
			}
		}
		rc = 0;
		if (cfg->max_backups && count > cfg->max_backups) {
			rc = 1;
			/* ENOENT: another worker's housekeeping deleted it first. */
			if (unlinkat(dirfd(d), oldest, 0) != 0 && errno != ENOENT)
				rc = -1;
		}
		closedir(d);
		if (rc <= 0)
			return rc;
	}
	return 0;
}

/* gzip every rotated file not yet compressed, oldest first; 0 or -1 (errno of the last
 * failure; the others are still tried). A file that grew while it was read (a late
 * write by another worker) is compressed again. */
static int
compress_all(const char *dir, const char *base)
{
	char name[256], src[PATH_MAX], dst[PATH_MAX];
	size_t blen = strlen(base);
	int64_t after = INT64_MIN;
	int rc = 0, err = 0, round, tries;

	for (round = 0; round < 10000; round++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		int64_t ms, best = INT64_MAX;

		if (!d)
			return -1;
		name[0] = 0;
		while ((e = readdir(d)) != NULL)
			if (rotated_kind(e->d_name, base, blen, &ms) == ROT_PLAIN && ms > after &&
			    ms < best) {
				best = ms;
				snprintf(name, sizeof name, "%s", e->d_name);
			}
		closedir(d);
		if (!name[0])
			break;
		after = best;
		if (join(src, sizeof src, dir, name) != 0 || strlen(src) + 4 > sizeof dst)
			continue;
		memcpy(dst, src, strlen(src));
		memcpy(dst + strlen(src), ".gz", 4);
		for (tries = 0; tries < 3; tries++) {
			struct stat a, b;
			if (stat(src, &a) != 0)
				break; /* gone: another worker's housekeeping took it */
			if (deflate_gzip_file(src, dst) != ERR_OK) {
				if (errno == ENOENT && stat(src, &a) != 0)
					break; /* another worker's housekeeping took it meanwhile */
				rc = -1;
				err = errno;
				break;
			}
			if (stat(src, &b) != 0 || (b.st_size == a.st_size &&
			    b.st_mtim.tv_sec == a.st_mtim.tv_sec && b.st_mtim.tv_nsec == a.st_mtim.tv_nsec)) {
				(void)unlink(src);
				break;
			}
		}
	}
	errno = err;
	return rc;
}

/* Prune as of `now`, then compress what is left. 0 or -1 (errno). */
static int
housekeep(const char *path, const struct rot_cfg *cfg, int64_t now)
{
	char dir[LOG_PATH_MAX];
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	size_t n = slash ? (size_t)(slash - path) : 0;
	int rc, err = 0;

	if (!slash)
		memcpy(dir, ".", 2);
	else if (n == 0)
		memcpy(dir, "/", 2);
	else {
		memcpy(dir, path, n);
		dir[n] = 0;
	}
	rc = prune(dir, base, cfg, now);
	if (rc != 0)
		err = errno;
	if (cfg->compress && compress_all(dir, base) != 0) {
		rc = -1;
		err = errno;
	}
	errno = err;
	return rc;
}

static void *
housekeeper(void *arg)
{
	char path[LOG_PATH_MAX];
	struct rot_cfg cfg;
	int64_t now;
	int rc, err;

	(void)arg;
	/* Behind the loop: lower this thread's priority (Linux: per thread). */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&mu);
	for (;;) {
		memcpy(path, hk_path, sizeof path);
		cfg = hk_cfg;
		now = hk_now_ms;
		hk_again = 0;
		pthread_mutex_unlock(&mu);
		rc = housekeep(path, &cfg, now);
		err = errno;
		pthread_mutex_lock(&mu);
		if (rc != 0) {
			hk_failed++;
			hk_errno = err;
		}
		if (!hk_again)
			break;
	}
	hk_busy = 0;
	pthread_cond_broadcast(&hk_idle);
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* see log.h */
void
log_msg(enum log_level level, const char *event, const char *msg)
{
	struct log_rec r;

	if (log_begin(&r, level, event)) {
		log_str(&r, "msg", msg);
		log_end(&r);
	}
}

/* see log.h */
void
log_warn_exposed(const char *what, const char *path, const struct stat *st)
{
	char why[96], mode[8];
	struct log_rec r;

	if (!fileio_exposed(st, why, sizeof why))
		return;
	snprintf(mode, sizeof mode, "%04o", (unsigned)(st->st_mode & 07777));
	if (log_begin(&r, LOG_WARN, "file.mode")) {
		log_str(&r, "what", what);
		log_str(&r, "file", path);
		log_str(&r, "mode", mode);
		log_int(&r, "uid", (int64_t)st->st_uid);
		log_int(&r, "gid", (int64_t)st->st_gid);
		log_str(&r, "reason", why);
		log_str(&r, "msg", "it holds secrets: chmod 600 it (or 640 in the relay's own group)");
		log_end(&r);
	}
}

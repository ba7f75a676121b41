/*
 * log.c — JSON-lines records, one write(2) each. See log.h; the file under them (its size,
 * rotation, housekeeping) is logfile.c's.
 *
 * Threads: the loop and the registration thread both log, so the descriptor, the file
 * state (logfile.c) and every write sit under `mu`. Formatting happens in the caller's
 * record, outside the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"
#include "json.h"
#include "log.h"
#include "logfile.h"
#include "units.h"

#define WARN_EVERY_MS 60000      /* at most one warning a minute per subject */

static int log_fd = 2;
static int debug_on;
static uint64_t dropped;
static int64_t (*clock_fn)(void);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t dropped_told;         /* drops already reported into the log */
static int64_t drop_warned_ms, rot_warned_ms;
static int drop_warned, rot_warned;

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

/* fork() (workers, binary upgrade) must not copy mu, or logfile.c's lock, while another
 * thread holds it: both are taken, in the one order used everywhere (mu first). */
static void
fork_prepare(void)
{
	pthread_mutex_lock(&mu);
	logfile_fork_prepare();
}

static void
fork_parent(void)
{
	logfile_fork_parent();
	pthread_mutex_unlock(&mu);
}

static void
fork_child(void)
{
	logfile_fork_child();
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

/* see log.h */
int
log_open(const char *path)
{
	int fd, saved;

	atfork_once();
	pthread_mutex_lock(&mu);
	if (strcmp(path, "-") == 0) {
		fd = 1;
		logfile_none();
	} else if ((fd = logfile_open(path)) < 0) {
		saved = errno;
		pthread_mutex_unlock(&mu);
		errno = saved;
		return ERR_IO;
	}
	saved = log_fd;
	log_fd = fd;
	logfile_housekeep_at_start(now_ms());
	pthread_mutex_unlock(&mu);
	if (saved > 2 && saved != fd)
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
	logfile_none();
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
	logfile_set_rotation(max_size, max_age_s, max_backups, compress);
	logfile_housekeep_at_start(now_ms());
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
	if (logfile_path()[0] && fstat(log_fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_nlink == 1 && st.st_uid == 0 && fchown(log_fd, (uid_t)uid, (gid_t)gid) == 0)
		rc = 1;
	pthread_mutex_unlock(&mu);
	return rc;
}

/* see log.h */
void
log_rotation_wait(void)
{
	logfile_wait();
}

static void warn_rotate(const char *what, int err);

/* see log.h */
void
log_share(void)
{
	pthread_mutex_lock(&mu);
	logfile_share();
	pthread_mutex_unlock(&mu);
}

/* see log.h */
void
log_follow(void)
{
	const char *failed;
	int saved = errno;

	pthread_mutex_lock(&mu);
	failed = logfile_follow(&log_fd, now_ms());
	if (failed)
		warn_rotate(failed, errno);
	pthread_mutex_unlock(&mu);
	errno = saved;
}

/* see log.h */
void
log_format_time(char out[25], int64_t ms)
{
	units_format_time(out, ms);
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
	const unsigned char *p = val;
	size_t start = r->len, room, i;

	if (!r->on)
		return;
	if (!append(r, ",\"", 2) || !append(r, key, strlen(key)) || !append(r, "\":\"", 3))
		goto undo;
	/* Most values (addresses, names, targets, reasons) need no escape: copied in one
	 * pass; the others through json_escape (two passes: measure, then write). */
	for (i = 0; i < n && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\'; i++)
		;
	if (i == n) {
		if (!append(r, val, n) || !append(r, "\"", 1))
			goto undo;
		return;
	}
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
	char num[24], *p = num + sizeof num;
	uint64_t u = val < 0 ? 0 - (uint64_t)val : (uint64_t)val;
	size_t start = r->len;
	int saved = errno;

	if (!r->on)
		return;
	do { /* digits backwards: no printf per number */
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (val < 0)
		*--p = '-';
	if (!append(r, ",\"", 2) || !append(r, key, strlen(key)) || !append(r, "\":", 2) ||
	    !append(r, p, (size_t)(num + sizeof num - p)))
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
	log_str(&r, "file", logfile_path()[0] ? logfile_path() : log_fd == 1 ? "-" : "(descriptor)");
	log_str(&r, "msg", "log records could not be written; relaying goes on");
	(void)emit(&r, 2);
}

/* A rotation step failed (logfile.c): say so in the log (its writes still work) or on stderr. */
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
	log_str(&r, "file", logfile_path());
	if (emit(&r, log_fd) != 0 && log_fd != 2)
		(void)fileio_write_all(2, r.buf, r.len);
}

/* After a successful write: report drops and failed housekeeping not yet in the log. */
static void
report_backlog(void)
{
	struct log_rec r;
	const char *what;
	int err;

	if (dropped > dropped_told && may_warn(&drop_warned, &drop_warned_ms, now_ms())) {
		log_begin(&r, LOG_WARN, "log.dropped");
		log_int(&r, "dropped", (int64_t)dropped);
		log_int(&r, "since_last_report", (int64_t)(dropped - dropped_told));
		log_str(&r, "msg", "log records were lost before this one");
		if (emit(&r, log_fd) == 0)
			dropped_told = dropped;
	}
	if (logfile_failures(&err, &what))
		warn_rotate(what, err);
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
	const char *failed;
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
	failed = logfile_before(&log_fd, r->len, now_ms());
	if (failed)
		warn_rotate(failed, errno);
	if (write_record(r->buf, r->len) != 0) {
		dropped++;
		warn_dropped(errno);
	} else {
		logfile_wrote(r->len);
		report_backlog();
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
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

/*
 * log.h — JSON-lines logging (docs/configuration.md), the only module that writes log records.
 *
 * A record is built in a fixed buffer on the caller's stack and written with one
 * write(2), so records from several processes sharing a file never interleave:
 *
 *   struct log_rec r;
 *   if (log_begin(&r, LOG_INFO, "tunnel.close")) {
 *       log_str(&r, "sub", sub);
 *       log_int(&r, "bytes_up", n);
 *       log_end(&r);
 *   }
 *
 * log_begin returns 0 when the level is filtered out (debug without debugLogging); the
 * other calls are then no-ops, so the guard is an optimisation, not a requirement.
 * Values are escaped by json_escape: any byte string yields valid JSON. A record longer
 * than LOG_REC_MAX is cut at a field boundary and marked "truncated":true.
 * Write errors (full disk, closed stdout) are counted and otherwise ignored: logging never
 * stops relaying. At most once a minute a "log.dropped" warning with the running count
 * goes to standard error (when the log is elsewhere), and once the log takes records
 * again the count is written into it, at most once a minute as well.
 * errno is preserved across every call. The calls may come from several threads: the
 * descriptor, the rotation state and each write are guarded by one mutex.
 * Secrets must never be passed to these functions (docs/configuration.md).
 *
 * Rotation (docs/configuration.md), only when logging to a regular file opened with log_open
 * (logfile.h has the details):
 * - before a record that would take the file past max_size (and the file is not empty),
 *   the file is renamed to "<name>.<UTC YYYYMMDDTHHMMSS.mmmZ>" (the log clock, strictly
 *   increasing, so names sort by time; never over an existing name) and a fresh file is
 *   opened under the old name; the record goes to the fresh file. A record larger than
 *   max_size still goes whole into an empty file.
 * - housekeeping then runs in a detached thread (signals blocked, lower priority), never
 *   in the caller: rotated files beyond max_backups (oldest first) or older than max_age
 *   (by the time in their name) are deleted, and the remaining uncompressed ones are
 *   gzip'ed (logkeep.h). One run at a time; a rotation meanwhile makes it run once more.
 *   It also runs once when log_open and log_set_rotation have both been called, to
 *   finish what an earlier run left (a stop during compression leaves the plain file).
 * - fork() is safe at any time (pthread_atfork): the child gets free locks and no
 *   housekeeping in progress; its next rotation starts its own.
 * - the size is counted, not asked for: a record costs no stat. The file's name and size
 *   are looked at when the count says the file is full, at log_follow, and before every
 *   record once the file is shared with other processes (log_share, or found so at a
 *   check): several processes rotate one file without losing a line (an fcntl write lock,
 *   the name re-checked), and an operator who moves or removes the file has the name
 *   reopened at the next of those.
 * - a failed rename or reopen leaves logging on the current file and is retried a minute
 *   later; failures are reported by "log.rotate" warnings, at most one a minute.
 * Cost with rotation on: nothing per record besides the write while the file is this
 * process's alone; an fstat and a stat per record while it is shared.
 */
#ifndef RELAYPRO_LOG_H
#define RELAYPRO_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define LOG_REC_MAX 2048

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log_rec {
	char buf[LOG_REC_MAX];
	size_t len;
	int on;
	int truncated;
};

/* Log to path ("-" = standard output), appending; created with mode 0640. A symbolic link
 * at path is never followed (O_NOFOLLOW: ERR_IO with errno ELOOP), here or when rotation
 * opens the name again. ERR_IO (errno set) when it cannot be opened; logging then stays
 * where it was (standard error at start). */
int log_open(const char *path);

/* Log to an already open descriptor (tests, inherited stdout). */
void log_use_fd(int fd);

/* 1 when records go to standard output or standard error (a terminal, the journal, a
 * container's log), 0 for a file. */
int log_is_stdio(void);

/* Hand the log file opened by log_open to uid:gid (before a privilege drop), only when it
 * is a regular file owned by root with exactly one link; 1 when handed over. */
int log_give(uint32_t uid, uint32_t gid);

void log_set_debug(int on);
int log_debug_enabled(void);

/* Replace the clock (milliseconds since the epoch) — for golden-output tests. */
void log_set_clock(int64_t (*now_ms)(void));

/* Number of records that could not be written in full. */
uint64_t log_dropped(void);

/* Rotate the file given to log_open at max_size bytes (0 = never); delete rotated files
 * older than max_age_s seconds (0 = no age limit) and beyond the newest max_backups
 * (0 = no count limit); gzip rotated files when compress is nonzero. May be called
 * before or after log_open; has no effect when logging to "-" or a descriptor. */
void log_set_rotation(uint64_t max_size, uint64_t max_age_s, int max_backups, int compress);

/* Wait until background housekeeping (pruning, compression) has finished: for tests,
 * and for a clean stop. Returns at once when none is running. */
void log_rotation_wait(void);

/* Other processes write the log file too from now on (workers, a binary upgrade): follow
 * its name and size before every record, as the rotation above needs. Sticky. */
void log_share(void);

/* Look at the log file's name now and reopen it when it no longer holds the file being
 * written (moved or removed from outside: logrotate without copytruncate, an operator).
 * The loop calls it at SIGHUP. */
void log_follow(void);

int log_begin(struct log_rec *r, enum log_level level, const char *event);
void log_str(struct log_rec *r, const char *key, const char *val);
void log_strn(struct log_rec *r, const char *key, const void *val, size_t len);
void log_int(struct log_rec *r, const char *key, int64_t val);
void log_bool(struct log_rec *r, const char *key, int val);
void log_end(struct log_rec *r);

/* One-line shortcut: {"ts":..,"level":..,"event":event,"msg":msg}. */
void log_msg(enum log_level level, const char *event, const char *msg);

/* Format ms since the epoch as "2026-11-23T10:00:00.123Z" into out[25]. */
void log_format_time(char out[25], int64_t ms);

/* When fileio_exposed(st) (fileio.h): a "file.mode" warning naming what ("CA bundle"),
 * path, the mode in octal, owner and reason. Never reads the file: no content is logged. */
void log_warn_exposed(const char *what, const char *path, const struct stat *st);

#endif

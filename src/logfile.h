/*
 * logfile.h — the log file under log.c: opening it, knowing its size, rotation by size,
 * following its name, and the housekeeping of rotated files (pruning, compression) in a
 * background thread (docs/configuration.md).
 *
 * Owns: the file's name and state (what was opened, bytes written, rotation settings,
 * the next retry), rotated names, the housekeeping thread and its job. Must not touch:
 * records and their format, the log's descriptor for stdout or an inherited one, the
 * warnings (log.c writes them from what these functions return). It never logs: log.c
 * sits above it.
 *
 * Threads: every logfile_* call but the housekeeping thread's own work is made by log.c
 * with its mutex held, so the file state needs no lock of its own; the housekeeping job
 * and its results sit under this module's own mutex, which is only ever taken after
 * log.c's (log.c's fork handlers take both in that order: logfile_fork_*).
 *
 * Size without a system call per record. A record that would take the file past maxSize
 * rotates it first; the size is known from the bytes this process wrote since it last
 * looked (fstat at open, at each check), so a record costs no stat. The file's truth is
 * looked at (fstat of the descriptor, stat of the name) only:
 *   - when the bytes counted say the next record would pass maxSize (the rotation
 *     check): another writer's bytes, a rotation by another process, an operator who
 *     moved or removed the file are all seen there;
 *   - on logfile_follow (log_follow: the loop calls it at SIGHUP, as logrotate's
 *     postrotate expects of a daemon);
 *   - before every record while the file is shared (logfile_share: workers, an upgrade
 *     in progress), as every record did before: then the other writers' bytes count and
 *     their rotations are followed at once, so no record lands in a file being
 *     compressed. A check that finds bytes this process did not write turns sharing on
 *     for good.
 * Rotation itself is unchanged: under an fcntl write lock, re-checking that the name
 * still holds the file, renamed to "<name>.<UTC YYYYMMDDTHHMMSS.mmmZ>" (strictly
 * increasing, never over an existing name), a fresh file opened (O_NOFOLLOW); a failed
 * rename or reopen is retried RETRY_MS later.
 */
#ifndef RELAYPRO_LOGFILE_H
#define RELAYPRO_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

#define LOGFILE_PATH_MAX 1024   /* longer log paths are logged to without rotation */

/* Open path for appending (mode 0640 when created, O_NOFOLLOW: ELOOP for a symbolic link)
 * and make it the file this module watches. The descriptor, or -1 with errno set (the
 * watched file, if any, is left as it was). */
int logfile_open(const char *path);

/* Logging goes elsewhere (standard output, a descriptor): nothing to rotate. */
void logfile_none(void);

/* The name logfile_open was given ("" when none), for warnings. */
const char *logfile_path(void);

/* The rotation settings (log_set_rotation). */
void logfile_set_rotation(uint64_t max_size, uint64_t max_age_s, int max_backups, int compress);

/* Another process may write the same file from now on (see above). Sticky. */
void logfile_share(void);

/* Before writing len bytes to *fd at now (ms since the epoch): follow the name and rotate
 * when due; *fd may be replaced (the old one closed). NULL, or the step that failed
 * ("reopen", "rename") with errno set — the caller warns; logging goes on where it was. */
const char *logfile_before(int *fd, size_t len, int64_t now);

/* After len bytes were written. */
void logfile_wrote(size_t len);

/* Look at the name now: reopen it when it no longer holds the file *fd (moved, removed).
 * NULL, or "reopen" with errno set. */
const char *logfile_follow(int *fd, int64_t now);

/* Housekeeping once (at start: what an earlier run left), when a file and rotation are
 * both set. now: ms since the epoch. */
void logfile_housekeep_at_start(int64_t now);

/* Wait until housekeeping has finished (log_rotation_wait). */
void logfile_wait(void);

/* Housekeeping runs that failed since the last call: how many (0: none), *err the last
 * errno, *what "compress or prune" or "prune". */
unsigned logfile_failures(int *err, const char **what);

/* fork() handlers, called by log.c's with its own mutex held (prepare after taking it,
 * parent and child before releasing it): the child has no housekeeping in progress. */
void logfile_fork_prepare(void);
void logfile_fork_parent(void);
void logfile_fork_child(void);

#endif

/*
 * logkeep.h — housekeeping of rotated log files (docs/configuration.md): rotated files beyond
 * maxBackups (oldest first) or older than maxAge (by the time in their name) deleted, the
 * remaining uncompressed ones gzip'ed (deflate.c) to "<rotated>.gz", written atomically,
 * the plain file removed after; compression temporaries left over by a stop deleted.
 *
 * Owns: the names of rotated files ("<base>.<UTC YYYYMMDDTHHMMSS.mmmZ>", ".gz",
 * ".gz.tmp.<pid>") and what is done to them. Must not touch: the log's descriptor, the
 * current file, records. Works on names only, so it runs in logfile.c's background thread
 * (or in its caller when no thread could be made) while logging goes on; several workers'
 * housekeeping on one folder tolerate each other (a file another one took is skipped).
 * deflate_gzip_file's static context: one run at a time (logfile.c sees to it).
 */
#ifndef RELAYPRO_LOGKEEP_H
#define RELAYPRO_LOGKEEP_H

#include <stdint.h>

/* The rotation settings (the log file's [log] keys), declared once for both sides:
 * max_size is logfile.c's (rotate when a record would pass it; 0: never), the other three
 * are what logkeep_run applies. */
struct logkeep_cfg {
	uint64_t max_size;
	int64_t max_age_ms;     /* 0: no age limit */
	int max_backups;        /* 0: no count limit */
	int compress;           /* 1: gzip the rotated files that are kept */
};

/* Prune the rotated files of the log file `path` as of now (ms since the epoch) by
 * cfg->max_age_ms and cfg->max_backups, then compress what is left when cfg->compress is
 * set (cfg->max_size is not read). 0, or -1 with errno of the last failure (the others are
 * still tried). */
int logkeep_run(const char *path, const struct logkeep_cfg *cfg, int64_t now);

#endif

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

/* Prune the rotated files of the log file `path` as of now (ms since the epoch), then
 * compress what is left when compress is set. max_age_ms 0: no age limit; max_backups 0:
 * no count limit. 0, or -1 with errno of the last failure (the others are still tried). */
int logkeep_run(const char *path, int64_t max_age_ms, int max_backups, int compress,
    int64_t now);

#endif

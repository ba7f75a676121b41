/*
 * log.h — JSON-lines logging (SPEC §8), the only module that writes log records.
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
 * stops relaying. errno is preserved across every call.
 * Secrets must never be passed to these functions (SPEC §8).
 */
#ifndef RELAYPRO_LOG_H
#define RELAYPRO_LOG_H

#include <stddef.h>
#include <stdint.h>

#define LOG_REC_MAX 2048

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log_rec {
	char buf[LOG_REC_MAX];
	size_t len;
	int on;
	int truncated;
};

/* Log to path ("-" = standard output), appending; created with mode 0640.
 * ERR_IO (errno set) when it cannot be opened; logging then stays on standard error. */
int log_open(const char *path);

/* Log to an already open descriptor (tests, inherited stdout). */
void log_use_fd(int fd);

void log_set_debug(int on);
int log_debug_enabled(void);

/* Replace the clock (milliseconds since the epoch) — for golden-output tests. */
void log_set_clock(int64_t (*now_ms)(void));

/* Number of records that could not be written in full. */
uint64_t log_dropped(void);

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

#endif

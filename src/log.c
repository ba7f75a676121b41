/*
 * log.c — JSON-lines records, one write(2) each. See log.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "json.h"
#include "log.h"

static int log_fd = 2;
static int debug_on;
static uint64_t dropped;
static int64_t (*clock_fn)(void);

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int64_t
real_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* see log.h */
int
log_open(const char *path)
{
	int fd, saved;

	if (strcmp(path, "-") == 0) {
		log_fd = 1;
		return ERR_OK;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return ERR_IO;
	saved = log_fd;
	log_fd = fd;
	if (saved > 2)
		close(saved);
	return ERR_OK;
}

/* see log.h */
void
log_use_fd(int fd)
{
	log_fd = fd;
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
log_set_clock(int64_t (*now_ms)(void))
{
	clock_fn = now_ms;
}

/* see log.h */
uint64_t
log_dropped(void)
{
	return dropped;
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

/* see log.h */
void
log_end(struct log_rec *r)
{
	static const char mark[] = ",\"truncated\":true";
	size_t off = 0;
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
	while (off < r->len) {
		ssize_t n = write(log_fd, r->buf + off, r->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			dropped++;
			break;
		}
		off += (size_t)n;
	}
	r->on = 0;
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

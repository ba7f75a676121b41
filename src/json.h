/*
 * json.h — a small, strict JSON reader and a string escaper.
 *
 * Reader: RFC 8259 values over a caller's (buf, len); a cursor that is checked before
 * every read; no allocation. Objects are walked member by member with a callback that
 * must consume the value (read it or skip it). Strict limits, each an error when
 * exceeded: nesting depth JSON_MAX_DEPTH, JSON_MAX_MEMBERS members per walked object,
 * keys of at most JSON_MAX_KEY bytes. Duplicate keys (after unescaping) are an error.
 * Strings must be valid UTF-8 with no raw control characters; numbers read as integers
 * must be integers (no fraction or exponent) within int64.
 *
 * Escaper: any byte string to the body of a JSON string; invalid UTF-8 and control bytes
 * come out as \u00XX escapes so the output is always valid JSON.
 */
#ifndef RELAYPRO_JSON_H
#define RELAYPRO_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16
#define JSON_MAX_MEMBERS 32
#define JSON_MAX_KEY 64

struct json {
	const char *buf;
	size_t len, pos;
	int depth;
};

enum json_type { JSON_NONE, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER, JSON_BOOL, JSON_NULL };

void json_init(struct json *j, const char *buf, size_t len);

/* Type of the next value (after skipping white space), JSON_NONE at the end or on junk. */
enum json_type json_peek(struct json *j);

/* Read a string value, unescaped, into out (cap bytes, NUL-terminated: at most cap-1
 * bytes of content). ERR_NOSPACE when it does not fit, ERR_INVAL when malformed. */
int json_read_string(struct json *j, char *out, size_t cap, size_t *outlen);

/* Read an integer value (int64, no fraction, no exponent, no leading zeros). */
int json_read_int(struct json *j, int64_t *out);

/* Read true or false. */
int json_read_bool(struct json *j, int *out);

/* Skip one value of any type, checking its syntax. */
int json_skip(struct json *j);

/* Walk the object that comes next: cb gets each member's unescaped key and must consume
 * the value; a non-zero return from cb stops the walk and is returned. */
int json_walk_object(struct json *j,
    int (*cb)(void *user, const char *key, size_t keylen, struct json *j), void *user);

/* ERR_OK when only white space remains. */
int json_end(struct json *j);

/* Escape src[0..n) for use inside a JSON string (no quotes added). With dst == NULL only
 * returns the length; otherwise writes at most cap bytes and returns the length written,
 * stopping before a character that would not fit whole. */
size_t json_escape(char *dst, size_t cap, const void *src, size_t n);

#endif

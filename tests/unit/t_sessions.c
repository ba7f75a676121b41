/*
 * t_sessions.c — the session table (sessions.c): rows opened, updated and closed; the
 * JSON rendered whole, and rendered piecewise through buffers of every size from the
 * smallest that takes a row, the pieces joining into exactly the whole; escaping; a full
 * table; rows freed and taken again; without a shared region, nothing listed. Each part
 * makes a region of one worker (shm.h) and takes it down after.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "sessions.h"
#include "shm.h"
#include "test.h"

/* The whole body at once (a large buffer), NUL-terminated; its length. */
static size_t
render_all(char *out, size_t cap, int64_t now_ms)
{
	struct sessions_cursor cur;
	size_t n = 0, k;

	memset(&cur, 0, sizeof cur);
	while (!cur.done && (k = sessions_render(out + n, cap - 1 - n, &cur, now_ms)) > 0)
		n += k;
	out[n] = 0;
	return n;
}

/* Rendered in pieces of at most cap bytes each. */
static size_t
render_pieces(char *out, size_t total, size_t cap, int64_t now_ms, int *pieces)
{
	struct sessions_cursor cur;
	char *piece = malloc(cap);
	size_t n = 0, k;
	int guard = 0;

	memset(&cur, 0, sizeof cur);
	*pieces = 0;
	while (!cur.done && guard++ < 100000 && piece) {
		k = sessions_render(piece, cap, &cur, now_ms);
		if (k == 0 || n + k >= total)
			break;
		memcpy(out + n, piece, k);
		n += k;
		(*pieces)++;
	}
	out[n] = 0;
	free(piece);
	return cur.done ? n : 0;
}

/* The body parses as JSON: an array of objects (json.c walks only objects, so the rows
 * are checked one by one, each on its own line). Returns the number of rows, -1 if bad. */
static int
rows_ok(const char *body)
{
	const char *p = body, *nl;
	int rows = 0;

	if (strncmp(p, "[\n", 2) != 0)
		return -1;
	for (p += 2; *p == '{'; p = nl + 1) {
		struct json j;
		size_t len;
		nl = strchr(p, '\n');
		if (nl == NULL)
			return -1;
		len = (size_t)(nl - p);
		if (len && p[len - 1] == ',')
			len--;
		json_init(&j, p, len);
		if (json_peek(&j) != JSON_OBJECT || json_skip(&j) != ERR_OK || json_end(&j) != ERR_OK)
			return -1;
		rows++;
	}
	return strcmp(p, "]\n") == 0 ? rows : -1;
}

void
t_sessions(void)
{
	static char whole[1 << 20], pieces[1 << 20];
	struct target_addr t = t_mktarget("console.example", TARGET_NAME, 443);
	struct target_addr t6 = t_mktarget("2001:db8::1", TARGET_IPV6, 8096);
	unsigned h1, h2, h3, hs[64];
	char sub[AUTH_USER_MAX + 1];
	size_t n, m, cap;
	int i, np, ok;

	sessions_reset();
	CHECK_INT(sessions_open(SESSIONS_WS, "c", "u", &t, 0, 0), 0, "no region: no row");
	sessions_reset();
	sessions_plan(8);
	CHECK_INT(shm_create(1, 0, whole, 200), ERR_OK, "a region with room for 8 rows");
	CHECK_STR(sessions_transport_str(SESSIONS_CONNECT), "connect", "transport name: connect");
	CHECK_STR(sessions_transport_str(SESSIONS_ABSOLUTE), "absolute", "transport name: absolute");
	CHECK_STR(sessions_transport_str(SESSIONS_WS), "ws", "transport name: ws");
	CHECK_STR(sessions_transport_str(SESSIONS_UDP), "udp", "transport name: udp");

	render_all(whole, sizeof whole, 0);
	CHECK_STR(whole, "[\n]\n", "no table yet: an empty array");

	h1 = sessions_open(SESSIONS_WS, "192.0.2.1:50000", "responder-1", &t, 1795428000, 1000);
	h2 = sessions_open(SESSIONS_UDP, "[2001:db8::9]:4000", "hip", &t6, 1795428001, 1000);
	CHECK(h1 && h2 && h1 != h2, "two rows opened");
	CHECK(sessions_id(h1) == 1 && sessions_id(h2) == 2, "ids in order, from 1");
	sessions_update(h1, 12, 34, 3000);
	n = render_all(whole, sizeof whole, 8500);
	CHECK_STR(whole, "[\n"
	    "{\"id\":1,\"transport\":\"ws\",\"client\":\"192.0.2.1:50000\",\"sub\":\"responder-1\","
	    "\"target\":\"console.example:443\",\"opened\":\"2026-11-23T10:00:00Z\",\"bytesUp\":12,"
	    "\"bytesDown\":34,\"idleSeconds\":5},\n"
	    "{\"id\":2,\"transport\":\"udp\",\"client\":\"[2001:db8::9]:4000\",\"sub\":\"hip\","
	    "\"target\":\"[2001:db8::1]:8096\",\"opened\":\"2026-11-23T10:00:01Z\",\"bytesUp\":0,"
	    "\"bytesDown\":0,\"idleSeconds\":7}\n]\n", "two rows, the documented fields");
	CHECK_INT(rows_ok(whole), 2, "the body is JSON: two objects");
	render_all(whole, sizeof whole, 500);
	CHECK(strstr(whole, "\"idleSeconds\":0}") != NULL, "a clock behind last_io: idle 0, never negative");

	/* a sub with quotes, backslashes and control bytes, escaped */
	h3 = sessions_open(SESSIONS_CONNECT, "10.0.0.1:1", "a\"b\\c\n\x01", &t, 0, 0);
	render_all(whole, sizeof whole, 0);
	CHECK(strstr(whole, "\"sub\":\"a\\\"b\\\\c\\n\\u0001\"") != NULL, "sub escaped");
	CHECK_INT(rows_ok(whole), 3, "still JSON with the escaped sub");

	/* closing frees the row; its handle is taken again first */
	sessions_close(h2);
	render_all(whole, sizeof whole, 0);
	CHECK(strstr(whole, "\"id\":2,") == NULL && rows_ok(whole) == 2, "a closed tunnel leaves the table");
	sessions_close(0); /* ignored */
	CHECK_INT(sessions_open(SESSIONS_ABSOLUTE, "c", "u", &t, 0, 0), h2, "the freed row is reused");
	CHECK_INT(sessions_id(h2), 4, "... with a new id");
	sessions_close(h3);

	/* the table is full at its size: the next tunnel is not listed (handle 0) */
	for (i = 0; i < 6; i++)
		hs[i] = sessions_open(SESSIONS_CONNECT, "c", "u", &t, 0, 0);
	CHECK(hs[5] != 0, "eight rows fit a table of eight");
	CHECK_INT(sessions_open(SESSIONS_CONNECT, "c", "u", &t, 0, 0), 0, "a ninth: no row");
	sessions_update(0, 1, 1, 1); /* handle 0: nothing happens */
	for (i = 0; i < 6; i++)
		sessions_close(hs[i]);
	sessions_close(h1);
	sessions_close(h2);
	render_all(whole, sizeof whole, 0);
	CHECK_STR(whole, "[\n]\n", "all closed: an empty array again");

	/* many rows: the longest sub, escaped 6 to 1, rendered in pieces of every size from
	 * the smallest that takes a row; the pieces join into exactly the whole */
	sessions_reset();
	shm_reset();
	sessions_plan(64);
	CHECK_INT(shm_create(1, 0, whole, 200), ERR_OK, "a region with room for 64 rows");
	memset(sub, 1, AUTH_USER_MAX); /* each byte becomes \u0001 */
	sub[AUTH_USER_MAX] = 0;
	{
		char host[TARGET_HOST_MAX + 1];
		struct target_addr tl;
		memset(host, 'h', TARGET_HOST_MAX);
		host[TARGET_HOST_MAX] = 0;
		tl = t_mktarget(host, TARGET_NAME, 65535);
		for (i = 0; i < 60; i++) {
			hs[0] = sessions_open(i % 4,
			    "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", sub, &tl,
			    4102444800LL, 0);
			sessions_update(hs[0], UINT64_MAX, UINT64_MAX, 0);
		}
	}
	n = render_all(whole, sizeof whole, INT64_MAX);
	CHECK_INT(rows_ok(whole), 60, "60 longest rows: valid JSON");
	ok = 1;
	{
		const char *p = whole, *nl;
		size_t longest = 0;
		for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
			if ((size_t)(nl - p) + 1 > longest)
				longest = (size_t)(nl - p) + 1;
		CHECK(longest + 2 <= SESSIONS_ROW_MAX, "the longest row (with its separator) fits SESSIONS_ROW_MAX");
		printf("     sessions: longest row %zu bytes <= %d\n", longest + 2, SESSIONS_ROW_MAX);
	}
	for (cap = SESSIONS_ROW_MAX; cap < SESSIONS_ROW_MAX * 3 + 50; cap += 97) {
		m = render_pieces(pieces, sizeof pieces, cap, INT64_MAX, &np);
		if (m != n || memcmp(pieces, whole, n) != 0 || np < 2)
			ok = 0;
	}
	CHECK(ok, "rendered in pieces of any size >= SESSIONS_ROW_MAX: the same bytes");
	{
		struct sessions_cursor cur;
		memset(&cur, 0, sizeof cur);
		CHECK_INT(sessions_render(pieces, SESSIONS_ROW_MAX - 1, &cur, 0), 0,
		    "a buffer smaller than a row: nothing written");
	}
	sessions_reset();
	shm_reset();
}

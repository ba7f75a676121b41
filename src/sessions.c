/*
 * sessions.c — the table of open tunnels and its JSON. See sessions.h.
 *
 * Storage sits behind five small functions (rec_*) shaped like the per-worker records of
 * a region the workers share: a row is written only by its owner (whole, or its counters
 * in place) and read as a copy, any worker's row by index. Today they are this process's
 * own array, allocated once at the first tunnel for maxConnections rows (calloc: a row's
 * page becomes resident only when a tunnel uses it) with a stack of free indices, so the
 * rows in use stay at the low indices and a reader scans [0, used) only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sessions.h"

static const char *const transport_names[] = { "connect", "absolute", "ws", "udp" };

static struct sessions_row *rows; /* nrows of them; NULL until the first tunnel */
static unsigned nrows;
static unsigned used;             /* one past the highest row ever taken */
static unsigned *free_rows;       /* indices given back, taken again first */
static unsigned nfree;
static uint64_t next_id = 1;

/* ---- storage ------------------------------------------------------------------------- */

static int
rec_workers(void)
{
	return 1;
}

static unsigned
rec_used(int w)
{
	(void)w;
	return used;
}

/* Worker w's row i copied into out: 1, or 0 when it is free. */
static int
rec_get(int w, unsigned i, struct sessions_row *out)
{
	(void)w;
	if (i >= used || rows[i].id == 0)
		return 0;
	*out = rows[i];
	return 1;
}

/* This process's row i, to be written in place. */
static struct sessions_row *
rec_mine(unsigned i)
{
	return &rows[i];
}

static void
rec_clear(unsigned i)
{
	memset(&rows[i], 0, sizeof rows[i]);
}

/* The table for n rows, made once. 0 on success. */
static int
table_make(size_t n)
{
	if (rows != NULL)
		return 0;
	if (n == 0 || n > UINT32_MAX / 2)
		return -1;
	rows = calloc(n, sizeof *rows);
	free_rows = calloc(n, sizeof *free_rows);
	if (rows == NULL || free_rows == NULL) {
		free(rows);
		free(free_rows);
		rows = NULL;
		free_rows = NULL;
		return -1;
	}
	nrows = (unsigned)n;
	return 0;
}

/* ---- the rows ------------------------------------------------------------------------ */

/* see sessions.h */
const char *
sessions_transport_str(int transport)
{
	return transport >= 0 && transport <= SESSIONS_UDP ? transport_names[transport] : "?";
}

static void
copy_text(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

/* see sessions.h */
unsigned
sessions_open(size_t nmax, int transport, const char *client, const char *sub,
    const struct target_addr *target, time_t opened, int64_t now_ms)
{
	struct sessions_row *r;
	unsigned i;

	if (table_make(nmax) != 0)
		return 0;
	if (nfree > 0)
		i = free_rows[--nfree];
	else if (used < nrows)
		i = used++;
	else
		return 0;
	r = rec_mine(i);
	memset(r, 0, sizeof *r);
	r->opened = (int64_t)opened;
	r->last_io_ms = now_ms;
	r->transport = (uint8_t)transport;
	r->port = (uint16_t)target->port;
	copy_text(r->client, sizeof r->client, client);
	copy_text(r->sub, sizeof r->sub, sub);
	copy_text(r->host, sizeof r->host, target->host.name);
	if (target->host.kind == TARGET_IPV6) /* written as in a URL: [::1]:443 */
		snprintf(r->host, sizeof r->host, "[%.*s]", (int)(sizeof r->host - 3),
		    target->host.name);
	r->id = next_id++; /* last: a row with an id is whole */
	return i + 1;
}

/* see sessions.h */
uint64_t
sessions_id(unsigned h)
{
	return h > 0 && h <= used ? rec_mine(h - 1)->id : 0;
}

/* see sessions.h */
void
sessions_update(unsigned h, uint64_t bytes_up, uint64_t bytes_down, int64_t last_io_ms)
{
	struct sessions_row *r;

	if (h == 0 || h > used)
		return;
	r = rec_mine(h - 1);
	r->bytes_up = bytes_up;
	r->bytes_down = bytes_down;
	r->last_io_ms = last_io_ms;
}

/* see sessions.h */
void
sessions_close(unsigned h)
{
	if (h == 0 || h > used)
		return;
	rec_clear(h - 1);
	free_rows[nfree++] = h - 1;
}

/* see sessions.h */
void
sessions_reset(void)
{
	free(rows);
	free(free_rows);
	rows = NULL;
	free_rows = NULL;
	nrows = used = nfree = 0;
	next_id = 1;
}

/* ---- rendering ----------------------------------------------------------------------- */

/* One row as a JSON object after sep, into out (cap >= SESSIONS_ROW_MAX). Its length. */
static size_t
render_row(char *out, size_t cap, const struct sessions_row *r, const char *sep, int64_t now_ms)
{
	char opened[24];
	time_t t = (time_t)r->opened;
	struct tm tm;
	int64_t idle = (now_ms - r->last_io_ms) / 1000;
	size_t o = 0;
	int n;

	gmtime_r(&t, &tm);
	strftime(opened, sizeof opened, "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(out, cap, "%s{\"id\":%" PRIu64 ",\"transport\":\"%s\",\"client\":\"", sep, r->id,
	    sessions_transport_str(r->transport));
	o += (size_t)n;
	o += json_escape(out + o, cap - o, r->client, strlen(r->client));
	o += (size_t)snprintf(out + o, cap - o, "\",\"sub\":\"");
	o += json_escape(out + o, cap - o, r->sub, strlen(r->sub));
	o += (size_t)snprintf(out + o, cap - o, "\",\"target\":\"");
	o += json_escape(out + o, cap - o, r->host, strlen(r->host));
	n = snprintf(out + o, cap - o, ":%u\",\"opened\":\"%s\",\"bytesUp\":%" PRIu64
	    ",\"bytesDown\":%" PRIu64 ",\"idleSeconds\":%" PRId64 "}", (unsigned)r->port, opened,
	    r->bytes_up, r->bytes_down, idle > 0 ? idle : 0);
	o += (size_t)n;
	return o < cap ? o : cap; /* cannot be cut: cap holds the longest row */
}

/* see sessions.h */
size_t
sessions_render(char *out, size_t cap, struct sessions_cursor *cur, int64_t now_ms)
{
	struct sessions_row r;
	size_t o = 0;

	if (cur->done)
		return 0;
	if (!cur->begun) {
		if (cap < SESSIONS_ROW_MAX)
			return 0;
		out[o++] = '[';
		cur->begun = 1;
	}
	while ((int)cur->worker < rec_workers()) {
		if (cur->row >= rec_used((int)cur->worker)) {
			cur->worker++;
			cur->row = 0;
			continue;
		}
		if (cap - o < SESSIONS_ROW_MAX)
			return o;
		if (rows != NULL && rec_get((int)cur->worker, cur->row, &r) == 1) {
			o += render_row(out + o, cap - o, &r, cur->rows ? ",\n" : "\n", now_ms);
			cur->rows = 1;
		}
		cur->row++;
	}
	if (cap - o < 3)
		return o;
	memcpy(out + o, "\n]\n", 3);
	cur->done = 1;
	return o + 3;
}

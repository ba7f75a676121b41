/*
 * sessions.c — the table of open tunnels and its JSON. See sessions.h.
 *
 * Storage: the shared region's per-worker records (shm.h, part SHM_SESSIONS), one record
 * per row, maxConnections of them in each worker's row of the region, planned at start
 * (sessions_plan). This process writes only its own records — whole when a tunnel opens,
 * its counters in place after it moved bytes, withdrawn when it ends — and reads any
 * worker's as a copy (a record being written is skipped that time). Which of its records
 * are free is this process's own knowledge: a stack of indices given back, taken again
 * first, so the records in use stay at the low indices and a reader scans
 * [0, shm_rec_used) of each worker only. Without a region (unit tests before they make
 * one, the one-shot commands) nothing is stored and the table is empty.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sessions.h"
#include "shm.h"

static const char *const transport_names[] = { "connect", "absolute", "ws", "udp" };

static unsigned nrows;            /* this process's records; 0 until the first tunnel */
static unsigned used;             /* one past the highest of them ever taken */
static unsigned *free_rows;       /* indices given back, taken again first */
static uint64_t *ids;             /* each of our rows' id (0: free), so that the owner never
                                   * copies a record back to learn it (sessions_id) */
static unsigned nfree;
static uint64_t next_id = 1;

/* ---- storage ------------------------------------------------------------------------- */

/* see sessions.h */
void
sessions_plan(unsigned rows)
{
	shm_plan_records(SHM_SESSIONS, sizeof(struct sessions_row), rows);
}

/* Worker w's row i copied into out: 1, or 0 when it is free (or being written). */
static int
rec_get(int w, unsigned i, struct sessions_row *out)
{
	return shm_rec_get(SHM_SESSIONS, w, i, out) == 1 && out->id != 0;
}

/* This process's records, known once: as many as the region holds, when they are ours
 * (the layout says their size). 0 on success. */
static int
table_make(void)
{
	unsigned n = shm_rec_count(SHM_SESSIONS);

	if (free_rows != NULL)
		return 0;
	if (n == 0 || shm_rec_size(SHM_SESSIONS) != sizeof(struct sessions_row))
		return -1;
	free_rows = calloc(n, sizeof *free_rows);
	ids = calloc(n, sizeof *ids);
	if (free_rows == NULL || ids == NULL) {
		free(free_rows);
		free(ids);
		free_rows = NULL;
		ids = NULL;
		return -1;
	}
	nrows = n;
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
sessions_open(int transport, const char *client, const char *sub,
    const struct target_addr *target, time_t opened, int64_t now_ms)
{
	struct sessions_row *r;
	unsigned i;

	if (table_make() != 0)
		return 0;
	if (nfree > 0)
		i = free_rows[--nfree];
	else if (used < nrows)
		i = used++;
	else
		return 0;
	r = shm_rec_begin(SHM_SESSIONS, i);
	memset(r, 0, sizeof *r);
	/* unique across workers: the worker in the high bits */
	r->id = ids[i] = (uint64_t)shm_self() << 32 | (next_id++ & 0xffffffffu);
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
	shm_rec_end(SHM_SESSIONS, i);
	return i + 1;
}

/* see sessions.h */
uint64_t
sessions_id(unsigned h)
{
	return h > 0 && h <= used ? ids[h - 1] : 0;
}

/* see sessions.h */
void
sessions_update(unsigned h, uint64_t bytes_up, uint64_t bytes_down, int64_t last_io_ms)
{
	struct sessions_row *r;

	if (h == 0 || h > used || (r = shm_rec_begin(SHM_SESSIONS, h - 1)) == NULL)
		return;
	r->bytes_up = bytes_up;
	r->bytes_down = bytes_down;
	r->last_io_ms = last_io_ms;
	shm_rec_end(SHM_SESSIONS, h - 1);
}

/* see sessions.h */
void
sessions_close(unsigned h)
{
	if (h == 0 || h > used)
		return;
	shm_rec_clear(SHM_SESSIONS, h - 1);
	ids[h - 1] = 0;
	free_rows[nfree++] = h - 1;
}

/* see sessions.h */
void
sessions_reset(void)
{
	free(free_rows);
	free(ids);
	free_rows = NULL;
	ids = NULL;
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
	while ((int)cur->worker < shm_workers()) {
		if (cur->row >= shm_rec_used(SHM_SESSIONS, (int)cur->worker)) {
			cur->worker++;
			cur->row = 0;
			continue;
		}
		if (cap - o < SESSIONS_ROW_MAX)
			return o;
		if (rec_get((int)cur->worker, cur->row, &r)) {
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

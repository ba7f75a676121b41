/*
 * pending.c — the pending connections' queue and per-address counts. See pending.h.
 *
 * The table, the queue, the key and the log pacing are the loop's own state (one loop per
 * process).
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "limit.h"
#include "log.h"
#include "pending.h"
#include "rand.h"

#define LOG_EVERY_MS 1000 /* limit.pending: at most one line a second per cause */

static struct pending_entry **heads; /* the chains, nbuckets of them */
static uint32_t mask;                 /* nbuckets - 1 */
static struct pending_entry *oldest, *newest;
static int total;
static unsigned char key[16];
static struct {
	int64_t at;
	uint64_t held;                /* lines held back since the last one */
	int logged;
} pace[2];

/* see pending.h */
int
pending_init(int nslots)
{
	uint32_t n = 64;

	while (n < (uint32_t)nslots && n < (1u << 30))
		n <<= 1;
	heads = calloc(n, sizeof *heads);
	if (heads == NULL)
		return ERR_IO;
	mask = n - 1;
	rand_bytes(key, sizeof key);
	return ERR_OK;
}

/* see pending.h */
void
pending_add(struct pending_entry *e, void *owner)
{
	e->owner = owner;
	e->prev = newest;
	e->next = NULL;
	if (newest)
		newest->next = e;
	else
		oldest = e;
	newest = e;
	e->queued = 1;
	total++;
}

/* see pending.h */
int
pending_count_addr(struct pending_entry *e, const struct net_addr *a)
{
	const struct pending_entry *p;
	int n = 0;

	if (!e->counted && heads != NULL) {
		limit_addr_key(a, e->ip);
		e->bucket = (uint32_t)limit_siphash24(key, e->ip, 16) & mask;
		e->aprev = NULL;
		e->anext = heads[e->bucket];
		if (e->anext)
			e->anext->aprev = e;
		heads[e->bucket] = e;
		e->counted = 1;
	}
	if (!e->counted)
		return 1;
	for (p = heads[e->bucket]; p != NULL; p = p->anext)
		if (memcmp(p->ip, e->ip, 16) == 0)
			n++;
	return n;
}

/* see pending.h */
void
pending_remove(struct pending_entry *e)
{
	if (e->queued) {
		if (e->prev)
			e->prev->next = e->next;
		else
			oldest = e->next;
		if (e->next)
			e->next->prev = e->prev;
		else
			newest = e->prev;
		e->prev = e->next = NULL;
		e->queued = 0;
		total--;
	}
	if (e->counted) {
		if (e->aprev)
			e->aprev->anext = e->anext;
		else
			heads[e->bucket] = e->anext;
		if (e->anext)
			e->anext->aprev = e->aprev;
		e->aprev = e->anext = NULL;
		e->counted = 0;
	}
}

/* see pending.h */
void *
pending_oldest(void)
{
	return oldest ? oldest->owner : NULL;
}

/* see pending.h */
int
pending_total(void)
{
	return total;
}

/* see pending.h */
void
pending_log(int why, const char *client, int count, int64_t cap, int64_t now_ms)
{
	struct log_rec r;

	if (pace[why].logged && now_ms - pace[why].at < LOG_EVERY_MS && now_ms >= pace[why].at) {
		pace[why].held++;
		return;
	}
	if (log_begin(&r, LOG_WARN, "limit.pending")) {
		log_str(&r, "client", client);
		if (why == PENDING_PER_ADDRESS) {
			log_str(&r, "reason", "too many connections from this address without a "
			    "request admitted yet (maxPendingPerAddress): the new one is closed");
			log_int(&r, "pending_from_address", count);
		} else {
			log_str(&r, "reason", "too many connections without a request admitted yet "
			    "(half of maxConnections): the oldest one is closed to make room");
			log_int(&r, "pending", count);
		}
		log_int(&r, "limit", cap);
		if (pace[why].held)
			log_int(&r, "suppressed", (int64_t)pace[why].held);
		log_end(&r);
	}
	pace[why].logged = 1;
	pace[why].at = now_ms;
	pace[why].held = 0;
}

/*
 * pollset.c — the poll() backend of the loop's readiness. See pollset.h.
 *
 * pfds[0, nfixed) are the fixed keys, in key order (fd -1 while unset: poll() skips
 * them). The connections' entries follow, compact: pfds[nfixed, nfixed + npent), the busy
 * ones first (nbusy of them). An entry is updated in place, appended, or removed by moving
 * the last one into the gap, so a put costs O(1) and the array never has holes.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pollset.h"

#define SETTLE_MS 250 /* how often busy pairs without events are turned quiet */

struct pollset {
	int nfixed, npairs;
	struct pollfd *pfds;          /* nfixed + 2 * npairs */
	int *pkey;                    /* pfds[i]'s key */
	int *ppos;                    /* per connection key: 1 + its entry's index; 0: none */
	int64_t *slast;               /* per pair: when it last had events (or a new entry) */
	struct pollset_event *ready;  /* what the last wait found */
	int npent, nbusy;
	int64_t now, next_full, next_settle;
};

/* see pollset.h */
struct pollset *
pollset_new(int nfixed, int npairs)
{
	size_t nent = (size_t)nfixed + 2 * (size_t)npairs;
	struct pollset *ps = calloc(1, sizeof *ps);
	int k;

	if (ps == NULL)
		return NULL;
	ps->nfixed = nfixed;
	ps->npairs = npairs;
	ps->pfds = calloc(nent, sizeof *ps->pfds);
	/* The per-key and per-pair arrays in one zero-filled block: large enough to be a fresh
	 * mapping, so the pages of slots never used stay untouched (idle RSS at start). */
	ps->slast = calloc(nent, sizeof *ps->pkey + sizeof *ps->ppos + sizeof *ps->ready +
	    sizeof *ps->slast);
	if (ps->pfds == NULL || ps->slast == NULL) {
		free(ps->pfds);
		free(ps->slast);
		free(ps);
		return NULL;
	}
	ps->ready = (struct pollset_event *)(void *)(ps->slast + nent);
	ps->pkey = (int *)(void *)(ps->ready + nent);
	ps->ppos = ps->pkey + nent;
	for (k = 0; k < nfixed; k++) {
		ps->pfds[k].fd = -1;
		ps->pkey[k] = k;
	}
	return ps;
}

/* see pollset.h */
void
pollset_free(struct pollset *ps)
{
	if (ps == NULL)
		return;
	free(ps->pfds);
	free(ps->slast);
	free(ps);
}

/* Entry `from` to place `to` (whatever was there is overwritten). */
static void
move(struct pollset *ps, int from, int to)
{
	ps->pfds[to] = ps->pfds[from];
	ps->pkey[to] = ps->pkey[from];
	ps->ppos[ps->pkey[to] - ps->nfixed] = to + 1;
}

static void
swap(struct pollset *ps, int a, int b)
{
	struct pollfd f = ps->pfds[a];
	int k = ps->pkey[a];

	move(ps, b, a);
	ps->pfds[b] = f;
	ps->pkey[b] = k;
	ps->ppos[k - ps->nfixed] = b + 1;
}

/* Entry i joins the busy part (polled every wait) / the quiet part. */
static void
busy(struct pollset *ps, int i)
{
	int end = ps->nfixed + ps->nbusy;

	if (i >= end) {
		swap(ps, i, end);
		ps->nbusy++;
	}
}

static void
quiet(struct pollset *ps, int i)
{
	int last = ps->nfixed + ps->nbusy - 1;

	if (i <= last) {
		swap(ps, i, last);
		ps->nbusy--;
	}
}

/* Remove entry i, keeping both parts without holes. */
static void
drop(struct pollset *ps, int i)
{
	int lastbusy = ps->nfixed + ps->nbusy - 1, last = ps->nfixed + ps->npent - 1;

	ps->ppos[ps->pkey[i] - ps->nfixed] = 0;
	if (i <= lastbusy) {
		if (i != lastbusy)
			move(ps, lastbusy, i);
		if (lastbusy != last)
			move(ps, last, lastbusy);
		ps->nbusy--;
	} else if (i != last) {
		move(ps, last, i);
	}
	ps->npent--;
}

/* see pollset.h */
void
pollset_put(struct pollset *ps, int key, int fd, short events)
{
	int *p, i;

	if (key < ps->nfixed) {
		ps->pfds[key].fd = fd < 0 || events == 0 ? -1 : fd;
		ps->pfds[key].events = events;
		return;
	}
	p = &ps->ppos[key - ps->nfixed];
	if (fd < 0 || events == 0) {
		if (*p)
			drop(ps, *p - 1);
		return;
	}
	if (*p == 0) {
		i = ps->nfixed + ps->npent++;
		ps->pkey[i] = key;
		*p = i + 1;
		ps->slast[(key - ps->nfixed) / 2] = ps->now;
	} else if (ps->pfds[*p - 1].fd == fd && ps->pfds[*p - 1].events == events) {
		return;
	}
	i = *p - 1;
	ps->pfds[i].fd = fd;
	ps->pfds[i].events = events;
	ps->pfds[i].revents = 0;
	busy(ps, i); /* new or changed interest is watched at once */
}

/* Busy entries of pairs without events for POLLSET_QUIET_MS turn quiet. */
static void
settle(struct pollset *ps, int64_t now)
{
	int i;

	for (i = ps->nfixed + ps->nbusy - 1; i >= ps->nfixed; i--)
		if (now - ps->slast[(ps->pkey[i] - ps->nfixed) / 2] >= POLLSET_QUIET_MS)
			quiet(ps, i);
}

/* see pollset.h */
int
pollset_wait(struct pollset *ps, int timeout_ms, int64_t now,
    const struct pollset_event **ready)
{
	int n, nready = 0, left, i, j;

	ps->now = now;
	*ready = ps->ready;
	if (now >= ps->next_settle) {
		settle(ps, now);
		ps->next_settle = now + SETTLE_MS;
	}
	if (ps->nbusy > 0 && ps->npent > ps->nbusy && now < ps->next_full) {
		n = ps->nfixed + ps->nbusy; /* the quiet entries wait for the next full poll */
		if (timeout_ms > ps->next_full - now)
			timeout_ms = (int)(ps->next_full - now);
	} else {
		n = ps->nfixed + ps->npent;
		ps->next_full = now + POLLSET_QUIET_POLL_MS;
	}
	left = poll(ps->pfds, (nfds_t)n, timeout_ms);
	if (left < 0)
		return -1;
	for (i = 0; i < n && left > 0; i++) {
		if (!ps->pfds[i].revents)
			continue;
		left--;
		ps->ready[nready].key = ps->pkey[i];
		ps->ready[nready++].revents = ps->pfds[i].revents;
		ps->pfds[i].revents = 0;
	}
	/* A pair with events turns busy, both its sockets (after the scan: this moves
	 * entries). */
	for (i = 0; i < nready; i++) {
		int k = ps->ready[i].key - ps->nfixed;
		if (k < 0)
			continue;
		ps->slast[k / 2] = now;
		for (j = k & ~1; j <= (k | 1); j++)
			if (ps->ppos[j])
				busy(ps, ps->ppos[j] - 1);
	}
	return nready;
}

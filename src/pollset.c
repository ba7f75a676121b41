/*
 * pollset.c — the loop's readiness: the poll() and epoll backends. See pollset.h.
 *
 * poll(): pfds[0, nfixed) are the fixed keys, in key order (fd -1 while unset: poll()
 * skips them). The connections' entries follow, compact: pfds[nfixed, nfixed + npent). An
 * entry is updated in place, appended, or removed by moving the last one into the gap, so
 * a put costs O(1), the array never has holes, and a wait polls every watched socket.
 *
 * epoll: one registration per watched key; what is registered is kept per key (the fd + 1,
 * 0 for none, and the events), so a put that changes nothing makes no system call and a
 * change is one epoll_ctl. Level-triggered (pollset.h says why). A registration's data is
 * its key and a serial the key takes at each registration; an event whose serial is not
 * the key's current one belongs to a socket the key no longer watches and is dropped. That
 * covers the one case where the kernel keeps a closed socket's registration: another
 * process still holds the socket (a child between fork() and exec(): sockets are
 * close-on-exec), whose stale readiness must not reach the slot's next connection.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "pollset.h"

struct pollset {
	int backend, nfixed, nent;
	struct pollset_event *ready;  /* what the last wait found */
	/* poll() */
	struct pollfd *pfds;          /* nent */
	int *pkey;                    /* pfds[i]'s key */
	int *ppos;                    /* per connection key: 1 + its entry's index; 0: none */
	int npent;
	/* epoll */
	int epfd;
	int *kfd;                     /* per key: the registered fd + 1; 0: none */
	uint32_t *kser;               /* per key: the serial of its current registration */
	short *kev;                   /* per key: the registered events; -1: refused, reported */
	int *errq, nerr;              /* keys the kernel refused to watch, not yet reported */
	unsigned char *kq;            /* per key: 1 while it is in errq (so at most once) */
	void *evbuf;                  /* struct epoll_event[POLLSET_EPOLL_BATCH] */
};

/* see pollset.h */
int
pollset_backend(const char *name)
{
	if (name == NULL || name[0] == 0) {
#ifdef __linux__
		return POLLSET_EPOLL;
#else
		return POLLSET_POLL;
#endif
	}
	if (strcmp(name, "poll") == 0)
		return POLLSET_POLL;
#ifdef __linux__
	if (strcmp(name, "epoll") == 0)
		return POLLSET_EPOLL;
#endif
	return -1;
}

/* see pollset.h */
const char *
pollset_backend_name(int backend)
{
	return backend == POLLSET_EPOLL ? "epoll" : "poll";
}

/* One zero-filled block for n bytes, large enough to be a fresh mapping for big tables,
 * so the pages of slots never used stay untouched (idle RSS at start). */
static void *
block(size_t n)
{
	return calloc(1, n ? n : 1);
}

/* see pollset.h */
struct pollset *
pollset_new(int backend, int nfixed, int npairs)
{
	size_t nent = (size_t)nfixed + 2 * (size_t)npairs;
	struct pollset *ps = calloc(1, sizeof *ps);
	int k;

	if (ps == NULL)
		return NULL;
	ps->backend = backend;
	ps->nfixed = nfixed;
	ps->nent = (int)nent;
	ps->epfd = -1;
	if (backend == POLLSET_POLL) {
		ps->pfds = block(nent * sizeof *ps->pfds);
		ps->pkey = block(nent * (2 * sizeof(int) + sizeof *ps->ready));
		if (ps->pfds == NULL || ps->pkey == NULL) {
			pollset_free(ps);
			return NULL;
		}
		ps->ready = (struct pollset_event *)(void *)(ps->pkey + nent);
		ps->ppos = (int *)(void *)(ps->ready + nent);
		for (k = 0; k < nfixed; k++) {
			ps->pfds[k].fd = -1;
			ps->pkey[k] = k;
		}
		return ps;
	}
#ifdef __linux__
	if (backend == POLLSET_EPOLL) {
		ps->epfd = epoll_create1(EPOLL_CLOEXEC);
		ps->kfd = block(nent * (3 * sizeof(int) + sizeof(short) + 1));
		ps->ready = block(2 * POLLSET_EPOLL_BATCH * sizeof *ps->ready);
		ps->evbuf = block(POLLSET_EPOLL_BATCH * sizeof(struct epoll_event));
		if (ps->epfd < 0 || ps->kfd == NULL || ps->ready == NULL || ps->evbuf == NULL) {
			int e = errno;
			pollset_free(ps);
			errno = e;
			return NULL;
		}
		ps->errq = ps->kfd + nent;
		ps->kser = (uint32_t *)(void *)(ps->errq + nent);
		ps->kev = (short *)(void *)(ps->kser + nent);
		ps->kq = (unsigned char *)(ps->kev + nent);
		return ps;
	}
#endif
	free(ps);
	errno = ENOSYS;
	return NULL;
}

/* see pollset.h */
struct pollset *
pollset_open(int backend, int nfixed, int npairs, int *why)
{
	struct pollset *ps = pollset_new(backend, nfixed, npairs);

	*why = 0;
	if (ps != NULL || backend != POLLSET_EPOLL)
		return ps;
	*why = errno ? errno : ENOSYS;
	return pollset_new(POLLSET_POLL, nfixed, npairs);
}

/* see pollset.h */
int
pollset_backend_of(const struct pollset *ps)
{
	return ps->backend;
}

/* see pollset.h */
void
pollset_free(struct pollset *ps)
{
	if (ps == NULL)
		return;
	if (ps->epfd >= 0)
		close(ps->epfd);
	free(ps->pfds);
	free(ps->pkey);
	if (ps->backend == POLLSET_EPOLL)
		free(ps->ready);
	free(ps->kfd);
	free(ps->evbuf);
	free(ps);
}

/* ---- poll() ------------------------------------------------------------------------- */

/* Entry `from` to place `to` (whatever was there is overwritten). */
static void
move(struct pollset *ps, int from, int to)
{
	ps->pfds[to] = ps->pfds[from];
	ps->pkey[to] = ps->pkey[from];
	ps->ppos[ps->pkey[to] - ps->nfixed] = to + 1;
}

static void
poll_put(struct pollset *ps, int key, int fd, short events)
{
	int *p, i, last;

	if (key < ps->nfixed) {
		ps->pfds[key].fd = fd < 0 || events == 0 ? -1 : fd;
		ps->pfds[key].events = events;
		return;
	}
	p = &ps->ppos[key - ps->nfixed];
	if (fd < 0 || events == 0) {
		if (*p) { /* remove: the last entry fills the gap */
			i = *p - 1;
			last = ps->nfixed + ps->npent - 1;
			*p = 0;
			if (i != last)
				move(ps, last, i);
			ps->npent--;
		}
		return;
	}
	if (*p == 0) {
		i = ps->nfixed + ps->npent++;
		ps->pkey[i] = key;
		*p = i + 1;
	}
	i = *p - 1;
	ps->pfds[i].fd = fd;
	ps->pfds[i].events = events;
	ps->pfds[i].revents = 0;
}

static int
poll_wait(struct pollset *ps, int timeout_ms)
{
	int n = ps->nfixed + ps->npent, left, nready = 0, i;

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
	return nready;
}

/* ---- epoll -------------------------------------------------------------------------- */

#ifdef __linux__
_Static_assert(EPOLLIN == POLLIN && EPOLLOUT == POLLOUT && EPOLLERR == POLLERR &&
    EPOLLHUP == POLLHUP && EPOLLPRI == POLLPRI, "epoll and poll event bits agree");

/* The kernel refused to watch key: report it once as POLLERR at the next wait. */
static void
ep_refused(struct pollset *ps, int key)
{
	ps->kfd[key] = 0;
	if (ps->kev[key] != -1) {
		ps->kev[key] = -1;
		/* A key is queued once however often it is refused, accepted and refused again
		 * before a wait: the queue (nent) can hold every key. */
		if (!ps->kq[key]) {
			ps->kq[key] = 1;
			ps->errq[ps->nerr++] = key;
		}
	}
}

static void
ep_put(struct pollset *ps, int key, int fd, short events)
{
	struct epoll_event ev;
	int *kf = &ps->kfd[key], op, rc;

	if (fd < 0 || events == 0) {
		if (*kf) /* still open (pollset.h): take it out of the kernel's set */
			(void)epoll_ctl(ps->epfd, EPOLL_CTL_DEL, *kf - 1, NULL);
		*kf = 0;
		return;
	}
	if (*kf == fd + 1 && ps->kev[key] == events)
		return;
	if (*kf && *kf != fd + 1) { /* another socket under the key: the old one is still open */
		(void)epoll_ctl(ps->epfd, EPOLL_CTL_DEL, *kf - 1, NULL);
		*kf = 0;
	}
	op = *kf ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (op == EPOLL_CTL_ADD)
		ps->kser[key]++; /* a new registration: events of any earlier one are stale */
	memset(&ev, 0, sizeof ev);
	ev.events = (uint32_t)(unsigned short)events;
	ev.data.u64 = (uint64_t)ps->kser[key] << 32 | (uint32_t)key;
	rc = epoll_ctl(ps->epfd, op, fd, &ev);
	if (rc != 0 && op == EPOLL_CTL_ADD && errno == EEXIST) /* forgotten, yet still open */
		rc = epoll_ctl(ps->epfd, EPOLL_CTL_MOD, fd, &ev);
	else if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
		rc = epoll_ctl(ps->epfd, EPOLL_CTL_ADD, fd, &ev);
	if (rc != 0) {
		ep_refused(ps, key);
		return;
	}
	*kf = fd + 1;
	ps->kev[key] = events;
}

static int
ep_wait(struct pollset *ps, int timeout_ms)
{
	struct epoll_event *evs = ps->evbuf;
	int n = 0, m, i;

	/* Keys the kernel refused: POLLERR, once (at most a batch a wait; the rest next). */
	while (ps->nerr > 0 && n < POLLSET_EPOLL_BATCH) {
		int key = ps->errq[--ps->nerr];
		ps->kq[key] = 0;
		if (ps->kev[key] != -1)
			continue; /* watched after all by a later put */
		ps->kev[key] = 0;
		ps->ready[n].key = key;
		ps->ready[n++].revents = POLLERR;
	}
	m = epoll_wait(ps->epfd, evs, POLLSET_EPOLL_BATCH, n ? 0 : timeout_ms);
	if (m < 0)
		return n ? n : -1;
	for (i = 0; i < m; i++) {
		uint32_t key = (uint32_t)evs[i].data.u64, ser = (uint32_t)(evs[i].data.u64 >> 32);
		if (key >= (uint32_t)ps->nent || !ps->kfd[key] || ps->kser[key] != ser)
			continue; /* a socket the key no longer watches (see the top) */
		ps->ready[n].key = (int)key;
		ps->ready[n++].revents = (short)(evs[i].events & 0xffff);
	}
	return n;
}
#endif

/* ---- the interface ------------------------------------------------------------------ */

/* see pollset.h */
void
pollset_put(struct pollset *ps, int key, int fd, short events)
{
	if (key < 0 || key >= ps->nent)
		return;
#ifdef __linux__
	if (ps->backend == POLLSET_EPOLL) {
		ep_put(ps, key, fd, events);
		return;
	}
#endif
	poll_put(ps, key, fd, events);
}

/* see pollset.h */
void
pollset_closed(struct pollset *ps, int key)
{
	if (key < 0 || key >= ps->nent)
		return;
	if (ps->backend == POLLSET_EPOLL) {
		ps->kfd[key] = 0; /* the kernel dropped it with the socket */
		return;
	}
	poll_put(ps, key, -1, 0);
}

/* see pollset.h */
int
pollset_wait(struct pollset *ps, int timeout_ms, const struct pollset_event **ready)
{
	*ready = ps->ready;
#ifdef __linux__
	if (ps->backend == POLLSET_EPOLL)
		return ep_wait(ps, timeout_ms);
#endif
	return poll_wait(ps, timeout_ms);
}

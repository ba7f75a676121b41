/*
 * pollset.h — the sockets the loop waits on, and which of them are ready.
 *
 * Owns: the readiness backend — today poll() over a compact pollfd array kept between
 * passes. Must not touch: connections, the table, what an event means (server.c). The
 * interface is the whole contract, so another backend (epoll on Linux) can stand behind it
 * without the loop changing: the loop names each socket by a key and says what it wants;
 * pollset_wait reports the keys that are ready.
 *
 * Keys: [0, nfixed) are the loop's own sockets (signal pipe, resolver, watches, listeners),
 * always watched when set; then one pair per connection slot, POLLSET_KEY(ps, slot, side)
 * (side 0: the client socket, 1: the upstream one). Interest is derived by the caller and
 * put again whenever it may have changed; putting what is already there costs nothing.
 * Only sockets something is wanted from are watched: a peer that hung up would otherwise
 * report POLLHUP on every pass while the other side is waited on, and poll() refuses more
 * entries than RLIMIT_NOFILE allows.
 *
 * The poll() backend, because poll() costs the kernel O(entries) per call (with 9,000 idle
 * tunnels, 18,000 sockets, about half the relay's CPU went there: docs/performance.md):
 * connection entries are split into busy ones (events, or new or changed interest, within
 * POLLSET_QUIET_MS; a pair turns busy together) and quiet ones. Most waits poll the fixed
 * and busy entries only; every POLLSET_QUIET_POLL_MS a wait polls everything, and whenever
 * nothing is busy every wait does. An event on a quiet socket is therefore seen at most
 * POLLSET_QUIET_POLL_MS late, once, after two seconds of silence.
 */
#ifndef RELAYPRO_POLLSET_H
#define RELAYPRO_POLLSET_H

#include <stdint.h>

#define POLLSET_QUIET_MS 2000      /* a pair without events this long is quiet */
#define POLLSET_QUIET_POLL_MS 100  /* quiet entries are polled at least this often */

struct pollset;

struct pollset_event {
	int key;
	short revents;              /* POLLIN, POLLOUT, POLLHUP, POLLERR ... */
};

#define POLLSET_KEY(nfixed, slot, side) ((nfixed) + 2 * (slot) + (side))

/* A set for nfixed fixed keys and npairs connection slots, empty. NULL when out of
 * memory. Memory: a few bytes per slot, in one fresh zero-filled block whose pages stay
 * untouched until a slot is used. */
struct pollset *pollset_new(int nfixed, int npairs);

/* Release the set (its sockets are the caller's). */
void pollset_free(struct pollset *ps);

/* Watch fd for events under key; fd < 0 or events == 0 stops watching it. */
void pollset_put(struct pollset *ps, int key, int fd, short events);

/* Wait at most timeout_ms (now: the monotonic time, ms) and return the number of ready
 * keys, *ready pointing at them (fixed keys first; each key once), valid until the next
 * pollset_put or pollset_wait. -1 with errno on failure (EINTR: nothing is ready). */
int pollset_wait(struct pollset *ps, int timeout_ms, int64_t now,
    const struct pollset_event **ready);

#endif

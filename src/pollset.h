/*
 * pollset.h — the sockets the loop waits on, and which of them are ready.
 *
 * Owns: the readiness backends — poll() over a compact pollfd array kept between passes
 * (portable, the reference), and epoll on Linux (the default there). Must not touch:
 * connections, the table, what an event means (server.c). The interface is the whole
 * contract, so the loop does not know which backend stands behind it: the loop names each
 * socket by a key and says what it wants; pollset_wait reports the keys that are ready.
 * Neither backend has a timer or a polling interval: a socket is reported as soon as the
 * kernel says it is ready, and a wait costs in proportion to the ready sockets with epoll
 * (poll() itself costs the kernel O(watched sockets) per call).
 *
 * Keys: [0, nfixed) are the loop's own sockets (signal pipe, resolver, watches, listeners);
 * then one pair per connection slot, POLLSET_KEY(nfixed, slot, side) (side 0: the client
 * socket, 1: the upstream one). Interest is derived by the caller and put again whenever
 * it may have changed; putting what is already there costs nothing (no system call).
 * Only sockets something is wanted from are watched: a peer that hung up would otherwise
 * report POLLHUP on every pass while the other side is waited on.
 *
 * Readiness is level-triggered with both backends, as poll() is: a socket with unread
 * bytes (or room to write) is reported at every wait while its interest says so. The
 * loop relies on it: bytes a TLS engine holds decrypted are not on the socket, so after a
 * callback the caller derives interest from the engine and the buffers again, and a read
 * stopped early (hop.h, "Reads") is resumed at the next report of the same socket.
 *
 * Sockets and closing — what the epoll backend needs, the poll() backend tolerates: the
 * kernel keeps an epoll registration per open socket and drops it when the socket is
 * closed, and a new socket may get a closed one's number. So a key whose socket is closed
 * (or replaced by a new socket that may carry the same number) is told with
 * pollset_closed(), before or after the close but before the key is put again, and
 * nothing is told to the kernel about the old socket (taking it out by number could hit
 * whichever socket has that number now). pollset_put with fd < 0 takes out a socket that
 * stays open. Should another process still hold a closed socket (a child between fork()
 * and exec()), the kernel keeps its registration: its events are dropped here, never
 * reported under the key. A set must not be shared across fork(): the child would share
 * the epoll instance; a process creates its own set after it forks.
 */
#ifndef RELAYPRO_POLLSET_H
#define RELAYPRO_POLLSET_H

#include <stdint.h>

/* Backends. */
enum { POLLSET_POLL = 0, POLLSET_EPOLL = 1 };

/* The environment variable that picks the backend at start: "poll" or "epoll". */
#define POLLSET_ENV "RELAYPRO_POLL_BACKEND"
#define POLLSET_EPOLL_BATCH 1024 /* ready sockets taken per epoll wait (the rest: next wait) */

struct pollset;

struct pollset_event {
	int key;
	short revents;              /* POLLIN, POLLOUT, POLLHUP, POLLERR ... */
};

#define POLLSET_KEY(nfixed, slot, side) ((nfixed) + 2 * (slot) + (side))

/* The backend a name asks for: "poll" → POLLSET_POLL, "epoll" → POLLSET_EPOLL; NULL or
 * "" → the default (epoll on Linux, else poll); -1 for anything else or a backend this
 * build does not have. */
int pollset_backend(const char *name);

/* "poll" or "epoll". */
const char *pollset_backend_name(int backend);

/* A set for nfixed fixed keys and npairs connection slots, empty, with this backend.
 * NULL with errno set when out of memory (or epoll cannot be created). Memory: a few
 * bytes per slot, in one fresh zero-filled block whose pages stay untouched until a slot
 * is used. */
struct pollset *pollset_new(int backend, int nfixed, int npairs);

/* The set the loop starts with: pollset_new(backend, ...), except that when the epoll set
 * cannot be had (epoll_create1 failed: a descriptor limit, a kernel or sandbox without
 * epoll, or memory) the poll() backend stands in, as the same interface. *why: 0 when the
 * set runs on `backend`, else the errno of the epoll failure (for the caller's warning).
 * NULL with errno only when the set cannot be had at all: poll()'s own setup failed too
 * (out of memory). */
struct pollset *pollset_open(int backend, int nfixed, int npairs, int *why);

/* The backend the set runs on (POLLSET_POLL or POLLSET_EPOLL). */
int pollset_backend_of(const struct pollset *ps);

/* Release the set (its sockets are the caller's). */
void pollset_free(struct pollset *ps);

/* Watch fd for events under key; fd < 0 or events == 0 stops watching it (with epoll, a
 * system call: the socket must still be open, see above; a closed one: pollset_closed). */
void pollset_put(struct pollset *ps, int key, int fd, short events);

/* The socket under key was closed, or replaced by a new one that may carry its number:
 * forget it without telling the kernel. A key with nothing watched: nothing happens. */
void pollset_closed(struct pollset *ps, int key);

/* Wait at most timeout_ms and return the number of ready keys, *ready pointing at them
 * (each key once, in no particular order), valid until the next pollset_put or
 * pollset_wait. -1 with errno on failure (EINTR: nothing is ready). A socket the kernel
 * refused to watch (epoll_ctl failed: out of memory, a limit) is reported once as ready
 * with POLLERR, so its owner meets the error instead of waiting for ever. */
int pollset_wait(struct pollset *ps, int timeout_ms, const struct pollset_event **ready);

#endif

/*
 * t_pollset.c — the loop's readiness set (pollset.h) over pipes and socket pairs, for both
 * backends (poll() and epoll): keys in, ready keys out, each key once; interest changed
 * and removed; level-triggered (a socket with unread bytes is reported at every wait);
 * a socket closed by its owner and a new one with the same number under the same key
 * (pollset_closed); a closed socket another descriptor still holds (no stale event); a
 * key moved to another socket; a key the kernel refuses (a regular
 * file under epoll) reported once with POLLERR; no polling interval: a byte written to a
 * socket silent for a long time is seen by the very next wait; backend names; the start
 * set (pollset_open) on poll() when epoll_create1 really fails (a descriptor limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pollset.h"
#include "test.h"

#define NF 3 /* fixed keys in this test */

/* The ready keys of one wait. */
static int
wait_keys(struct pollset *ps, int timeout, int *keys, short *rev, int max)
{
	const struct pollset_event *ev;
	int n = pollset_wait(ps, timeout, &ev), i;

	for (i = 0; i < n && i < max; i++) {
		keys[i] = ev[i].key;
		rev[i] = ev[i].revents;
	}
	return n;
}

static int
has(const int *keys, int n, int key)
{
	int i, count = 0;

	for (i = 0; i < n; i++)
		if (keys[i] == key)
			count++;
	return count == 1;
}

static short
rev_of(const int *keys, const short *rev, int n, int key)
{
	int i;

	for (i = 0; i < n; i++)
		if (keys[i] == key)
			return rev[i];
	return 0;
}

static void
one_backend(int backend)
{
	const char *bn = pollset_backend_name(backend);
	struct pollset *ps = pollset_new(backend, NF, 4);
	int fx[2], a[2], b[2], sp[2], dups[8], keys[16], n, fd, i;
	short rev[16];
	char c, name[96], path[] = "/tmp/t_pollset.XXXXXX";

#define NAME(s) (snprintf(name, sizeof name, "%s: %s", bn, (s)), name)
	CHECK(ps != NULL, NAME("pollset_new"));
	if (ps == NULL || pipe(fx) != 0 || pipe(a) != 0 || pipe(b) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) {
		pollset_free(ps);
		return;
	}

	/* fixed key: readable pipe reported with POLLIN */
	pollset_put(ps, 1, fx[0], POLLIN);
	CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, NAME("nothing ready"));
	CHECK_INT(write(fx[1], "x", 1), 1, NAME("write fixed"));
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == 1 && (rev[0] & POLLIN), NAME("fixed key ready"));
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == 1, NAME("level-triggered: unread, so reported again"));
	CHECK_INT(read(fx[0], &c, 1), 1, NAME("drain fixed"));
	pollset_put(ps, 1, -1, POLLIN);
	CHECK_INT(write(fx[1], "x", 1), 1, NAME("write fixed again"));
	CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, NAME("fixed key removed: not reported"));
	CHECK_INT(read(fx[0], &c, 1), 1, NAME("drain fixed again"));

	/* connection keys: slot 2's upstream side, slot 0's client side */
	pollset_put(ps, POLLSET_KEY(NF, 2, 1), a[0], POLLIN);
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN);
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN); /* the same again: no change */
	CHECK_INT(write(a[1], "y", 1), 1, NAME("write a"));
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), NAME("slot 2 upstream ready"));
	CHECK_INT(write(b[1], "z", 1), 1, NAME("write b"));
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 2 && has(keys, n, POLLSET_KEY(NF, 2, 1)) && has(keys, n, POLLSET_KEY(NF, 0, 0)),
	    NAME("both ready, each once"));
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), -1, 0);
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), NAME("slot 0 removed: only slot 2"));
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLOUT); /* changed interest */
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), NAME("a pipe's read end is never POLLOUT"));
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN); /* and back */
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 2 && has(keys, n, POLLSET_KEY(NF, 0, 0)), NAME("interest back to POLLIN"));
	CHECK_INT(read(a[0], &c, 1), 1, NAME("drain a"));
	CHECK_INT(read(b[0], &c, 1), 1, NAME("drain b"));
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), -1, 0);

	/* A socket pair: POLLOUT while there is room, POLLIN | POLLOUT with bytes waiting. */
	pollset_put(ps, POLLSET_KEY(NF, 3, 0), sp[0], POLLIN | POLLOUT);
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && rev[0] == POLLOUT, NAME("socket with room: POLLOUT only"));
	CHECK_INT(write(sp[1], "q", 1), 1, NAME("write socket"));
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && rev[0] == (POLLIN | POLLOUT), NAME("socket: POLLIN | POLLOUT"));
	close(sp[1]);
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && (rev[0] & POLLIN) && (rev[0] & POLLHUP), NAME("peer gone: POLLIN | POLLHUP"));

	/* Closed by its owner, a new socket with the same number under the same key: only
	 * pollset_closed is said about the old one; the new one is watched. */
	fd = sp[0];
	close(sp[0]);
	pollset_closed(ps, POLLSET_KEY(NF, 3, 0));
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0, NAME("second socket pair"));
	if (sp[0] != fd) { /* the lowest free number: normally the closed one's */
		int d = dup2(sp[0], fd);
		close(sp[0]);
		sp[0] = d;
	}
	/* the same interest as the closed one had: without pollset_closed this would look
	 * like "nothing changed" and the new socket would never be watched */
	pollset_put(ps, POLLSET_KEY(NF, 3, 0), sp[0], POLLIN | POLLOUT);
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 3, 0) && rev[0] == POLLOUT,
	    NAME("a new socket with a closed one's number is watched"));
	pollset_put(ps, POLLSET_KEY(NF, 3, 0), sp[0], POLLIN);

	/* no polling interval: after a silence the next wait sees a byte at once */
	CHECK_INT(wait_keys(ps, 50, keys, rev, 16), 0, NAME("silence"));
	CHECK_INT(write(sp[1], "r", 1), 1, NAME("write to the new socket"));
	n = wait_keys(ps, 5000, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 3, 0) && (rev[0] & POLLIN),
	    NAME("the byte after the silence: the next wait"));
	CHECK_INT(read(sp[0], &c, 1), 1, NAME("drain the new socket"));

	/* Closed while another descriptor still holds the socket (a child between fork and
	 * exec): the kernel keeps its registration; its readiness never reaches the key. */
	{
		int q[2], held;
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0, NAME("third socket pair"));
		pollset_put(ps, POLLSET_KEY(NF, 1, 1), q[0], POLLIN);
		held = dup(q[0]);
		pollset_closed(ps, POLLSET_KEY(NF, 1, 1));
		close(q[0]);
		CHECK_INT(write(q[1], "v", 1), 1, NAME("write to the socket another holds"));
		CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, NAME("a closed socket's stale readiness is dropped"));
		pollset_put(ps, POLLSET_KEY(NF, 1, 1), b[0], POLLIN); /* the key's next socket */
		CHECK_INT(write(b[1], "w", 1), 1, NAME("write to the key's next socket"));
		n = wait_keys(ps, 0, keys, rev, 16);
		CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 1, 1), NAME("only the key's next socket is reported"));
		CHECK_INT(read(b[0], &c, 1), 1, NAME("drain b"));
		pollset_put(ps, POLLSET_KEY(NF, 1, 1), -1, 0);
		close(held);
		close(q[1]);
	}

	/* the same key moved to another socket (the old one still open): only the new one */
	pollset_put(ps, POLLSET_KEY(NF, 3, 0), b[0], POLLIN);
	CHECK_INT(write(sp[1], "s", 1), 1, NAME("write to the old socket"));
	CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, NAME("the old socket is no longer watched"));
	CHECK_INT(write(b[1], "t", 1), 1, NAME("write to the new one"));
	CHECK_INT(write(a[1], "u", 1), 1, NAME("write to slot 2's"));
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 2 && has(keys, n, POLLSET_KEY(NF, 3, 0)) && has(keys, n, POLLSET_KEY(NF, 2, 1)),
	    NAME("the moved key reports its new socket"));
	pollset_put(ps, POLLSET_KEY(NF, 3, 0), -1, 0);
	pollset_put(ps, POLLSET_KEY(NF, 2, 1), -1, 0);
	CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, NAME("everything taken out"));
	CHECK_INT(read(a[0], &c, 1), 1, NAME("drain a"));
	CHECK_INT(read(b[0], &c, 1), 1, NAME("drain b"));

	/* A descriptor the kernel will not watch: epoll refuses regular files (EPERM); the
	 * key is reported once with POLLERR. poll() reports a file as always ready. */
	fd = mkstemp(path);
	CHECK(fd >= 0, NAME("temporary file"));
	if (fd >= 0) {
		unlink(path);
		pollset_put(ps, POLLSET_KEY(NF, 1, 0), fd, POLLIN);
		n = wait_keys(ps, 0, keys, rev, 16);
		if (backend == POLLSET_EPOLL) {
			CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 1, 0) && rev[0] == POLLERR,
			    NAME("refused by the kernel: POLLERR once"));
			CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, NAME("... and only once"));
			/* One key refused, watched and refused again many times before a wait is
			 * queued once, so the report of another refused key is never crowded out. */
			for (i = 0; i < 4 * (NF + 8); i++) {
				pollset_put(ps, POLLSET_KEY(NF, 1, 0), fd, POLLIN);
				pollset_put(ps, POLLSET_KEY(NF, 1, 0), fx[1], POLLOUT);
			}
			pollset_put(ps, POLLSET_KEY(NF, 1, 0), fd, POLLIN);
			pollset_put(ps, POLLSET_KEY(NF, 2, 0), fd, POLLIN);
			n = wait_keys(ps, 0, keys, rev, 16);
			CHECK(n == 2 && rev_of(keys, rev, n, POLLSET_KEY(NF, 1, 0)) == POLLERR &&
			    rev_of(keys, rev, n, POLLSET_KEY(NF, 2, 0)) == POLLERR,
			    NAME("a key refused again and again is queued once; another's refusal is reported"));
			pollset_closed(ps, POLLSET_KEY(NF, 2, 0));
		} else {
			CHECK(n == 1 && (rev_of(keys, rev, n, POLLSET_KEY(NF, 1, 0)) & POLLIN),
			    NAME("a file is always readable"));
		}
		pollset_closed(ps, POLLSET_KEY(NF, 1, 0));
		close(fd);
	}

	/* every key of the set at once, each on its own descriptor of one writable pipe */
	for (i = 0; i < 8; i++) {
		dups[i] = dup(fx[1]);
		pollset_put(ps, POLLSET_KEY(NF, i / 2, i % 2), dups[i], POLLOUT);
	}
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK_INT(n, 8, NAME("eight keys ready: eight reports"));
	for (i = 0; i < 8; i++) {
		pollset_put(ps, POLLSET_KEY(NF, i / 2, i % 2), -1, 0);
		close(dups[i]);
	}

	pollset_free(ps);
	close(fx[0]);
	close(fx[1]);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(sp[0]);
	close(sp[1]);
#undef NAME
}

/* pollset_open: epoll when it can be had; poll() standing in, with the reason, when
 * epoll_create1 fails. The failure is real, not simulated: the soft descriptor limit is
 * lowered to the lowest free number, so the next descriptor (the epoll instance) is EMFILE. */
static void
open_fallback(void)
{
	struct pollset *ps;
	struct rlimit old, low;
	int why = -1, sp[2], keys[4], fd;
	short rev[4];

	ps = pollset_open(POLLSET_EPOLL, NF, 4, &why);
	CHECK(ps != NULL && why == 0 && pollset_backend_of(ps) == POLLSET_EPOLL,
	    "open: epoll when it can be had, no reason");
	pollset_free(ps);
	ps = pollset_open(POLLSET_POLL, NF, 4, &why);
	CHECK(ps != NULL && why == 0 && pollset_backend_of(ps) == POLLSET_POLL,
	    "open: poll when asked");
	pollset_free(ps);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0 || getrlimit(RLIMIT_NOFILE, &old) != 0 ||
	    (fd = dup(0)) < 0) {
		CHECK(0, "open: fixture");
		return;
	}
	close(fd); /* fd: the lowest free number; a limit of fd leaves no descriptor to open */
	low = old;
	low.rlim_cur = (rlim_t)fd;
	why = 0;
	ps = NULL;
	if (setrlimit(RLIMIT_NOFILE, &low) == 0) {
		CHECK(dup(0) < 0 && errno == EMFILE, "open: no descriptor left (fixture)");
		ps = pollset_open(POLLSET_EPOLL, NF, 4, &why);
		(void)setrlimit(RLIMIT_NOFILE, &old);
	}
	CHECK_INT(why, EMFILE, "open: epoll_create1 failed, its errno is the reason");
	CHECK(ps != NULL && pollset_backend_of(ps) == POLLSET_POLL,
	    "open: poll() stands in for epoll");
	if (ps != NULL) { /* and it works: a socket with a byte is reported */
		pollset_put(ps, POLLSET_KEY(NF, 1, 0), sp[0], POLLIN);
		CHECK_INT(write(sp[1], "x", 1), 1, "open: write");
		CHECK_INT(wait_keys(ps, 1000, keys, rev, 4), 1, "open: the stand-in waits");
		CHECK_INT(keys[0], POLLSET_KEY(NF, 1, 0), "open: the stand-in reports the key");
	}
	pollset_free(ps);
	close(sp[0]);
	close(sp[1]);
}

void
t_pollset(void)
{
	CHECK_INT(pollset_backend("poll"), POLLSET_POLL, "backend name poll");
	CHECK_INT(pollset_backend("epoll"), POLLSET_EPOLL, "backend name epoll");
	CHECK_INT(pollset_backend(NULL), POLLSET_EPOLL, "default on Linux: epoll");
	CHECK_INT(pollset_backend(""), POLLSET_EPOLL, "empty: the default");
	CHECK_INT(pollset_backend("select"), -1, "unknown backend name");
	CHECK_STR(pollset_backend_name(POLLSET_POLL), "poll", "name of poll");
	CHECK_STR(pollset_backend_name(POLLSET_EPOLL), "epoll", "name of epoll");
	one_backend(POLLSET_POLL);
	one_backend(POLLSET_EPOLL);
	open_fallback();
}

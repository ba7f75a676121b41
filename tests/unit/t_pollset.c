/*
 * t_pollset.c — the loop's readiness set (pollset.h) over pipes, with a fake clock: keys in,
 * ready keys out, interest removed, the busy/quiet split of the poll() backend (a quiet
 * pair is polled at the next full poll, POLLSET_QUIET_POLL_MS after the last, never lost).
 */
#include <poll.h>
#include <unistd.h>

#include "pollset.h"
#include "test.h"

#define NF 3 /* fixed keys in this test */

/* The ready keys of one wait (timeout 0: the pipes already hold what they hold). */
static int
wait_keys(struct pollset *ps, int64_t now, int *keys, short *rev, int max)
{
	const struct pollset_event *ev;
	int n = pollset_wait(ps, 0, now, &ev), i;

	for (i = 0; i < n && i < max; i++) {
		keys[i] = ev[i].key;
		rev[i] = ev[i].revents;
	}
	return n;
}

static int
has(const int *keys, int n, int key)
{
	int i;

	for (i = 0; i < n; i++)
		if (keys[i] == key)
			return 1;
	return 0;
}

void
t_pollset(void)
{
	struct pollset *ps = pollset_new(NF, 4);
	int fx[2], a[2], b[2], keys[16], n;
	short rev[16];
	char c;

	CHECK(ps != NULL, "pollset_new");
	if (ps == NULL || pipe(fx) != 0 || pipe(a) != 0 || pipe(b) != 0) {
		pollset_free(ps);
		return;
	}

	/* fixed key: readable pipe reported with POLLIN */
	pollset_put(ps, 1, fx[0], POLLIN);
	CHECK_INT(wait_keys(ps, 0, keys, rev, 16), 0, "nothing ready");
	CHECK_INT(write(fx[1], "x", 1), 1, "write fixed");
	n = wait_keys(ps, 0, keys, rev, 16);
	CHECK(n == 1 && keys[0] == 1 && (rev[0] & POLLIN), "fixed key ready");
	CHECK_INT(read(fx[0], &c, 1), 1, "drain fixed");
	pollset_put(ps, 1, -1, POLLIN);
	CHECK_INT(write(fx[1], "x", 1), 1, "write fixed again");
	CHECK_INT(wait_keys(ps, 10, keys, rev, 16), 0, "fixed key removed: not reported");

	/* connection keys: slot 2's upstream side, slot 0's client side */
	pollset_put(ps, POLLSET_KEY(NF, 2, 1), a[0], POLLIN);
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN);
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN); /* the same again: no change */
	CHECK_INT(write(a[1], "y", 1), 1, "write a");
	n = wait_keys(ps, 20, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), "slot 2 upstream ready");
	CHECK_INT(write(b[1], "z", 1), 1, "write b");
	n = wait_keys(ps, 30, keys, rev, 16);
	CHECK(n == 2 && has(keys, n, POLLSET_KEY(NF, 2, 1)) && has(keys, n, POLLSET_KEY(NF, 0, 0)),
	    "both ready, each once");
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), -1, 0);
	n = wait_keys(ps, 40, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), "slot 0 removed: only slot 2");
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLOUT); /* changed interest */
	n = wait_keys(ps, 50, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), "a pipe's read end never POLLOUT");

	/* busy and quiet: at 5000 both pairs have been silent for over 2 s and turn quiet;
	 * an event on slot 2 makes it busy; then slot 0 (quiet) is polled only at the next
	 * full poll, POLLSET_QUIET_POLL_MS after the last. */
	CHECK_INT(read(a[0], &c, 1), 1, "drain a");
	CHECK_INT(read(b[0], &c, 1), 1, "drain b");
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN);
	CHECK_INT(write(a[1], "y", 1), 1, "write a (slot 2)");
	n = wait_keys(ps, 5000, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 2, 1), "5000: full poll, slot 2 ready");
	CHECK_INT(read(a[0], &c, 1), 1, "drain a again");
	pollset_put(ps, POLLSET_KEY(NF, 0, 0), b[0], POLLIN); /* unchanged: stays quiet */
	n = wait_keys(ps, 5260, keys, rev, 16); /* settles: slot 0 silent since 40 */
	CHECK_INT(n, 0, "5260: nothing ready");
	CHECK_INT(write(b[1], "z", 1), 1, "write b (slot 0, quiet)");
	n = wait_keys(ps, 5270, keys, rev, 16);
	CHECK_INT(n, 0, "5270: a quiet pair waits for the full poll");
	n = wait_keys(ps, 5370, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 0, 0), "5370: the full poll sees it");
	n = wait_keys(ps, 5371, keys, rev, 16);
	CHECK(n == 1 && keys[0] == POLLSET_KEY(NF, 0, 0), "5371: now busy, polled every wait");

	pollset_free(ps);
	close(fx[0]);
	close(fx[1]);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

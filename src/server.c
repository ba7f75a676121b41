/*
 * server.c — the process's loop: the connection table, one pass after another. See
 * server.h.
 *
 * Owns: the table of connections (slots and their generations), the order of a pass,
 * dispatching events by slot, freeing connections that closed, the deadline tick, watches,
 * signals and the drain. Must not touch: what a connection does (walk.c), how readiness
 * is found (pollset.c), how listeners accept (listen.c).
 *
 * Each pass: bring the poll set up to date, wait with a timeout of at most one tick, then
 * handle signals, the resolver's wake-ups, watches, new connections and connection events,
 * in that order. Deadlines are checked once per tick by walking the table (O(connections)
 * per tick, never per byte; a deadline delays nothing: it is when a connection is given
 * up). A connection closed by a callback is freed right after that callback returns
 * (reap(): conn.h, "Closing") and is not looked at again: events are dispatched by slot
 * and the slot's generation, so a slot an accept reused in the same pass never gets its
 * predecessor's events.
 *
 * Interest is derived, never remembered: a connection's two entries are derived again
 * from walk_interest() only when it was touched (it handled events, it is new, its
 * deadline passed at a tick, or the pass ran something that may touch every connection:
 * resolver news, a signal, a watch) and put into the poll set, which ignores what did not
 * change. So a pass costs O(events) besides the wait itself, and with the epoll backend the
 * wait too (pollset.h). A closed socket is only forgotten by the poll set (release_end,
 * put_end), never taken out by a number that may be someone else's by then: pollset.h,
 * "Sockets and closing".
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "err.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "pending.h"
#include "pollset.h"
#include "relay.h"
#include "resolve.h"
#include "revoke.h"
#include "server.h"
#include "tls.h"
#include "walk.h"

static struct relay *srv;      /* the process's shared state (server_run's) */
static struct server_hooks hooks;
static int nconns;             /* connections in the table */
static int stopping;           /* listeners closed: the loop ends once connections are gone */

/* The loop's fixed poll keys; connection slot s uses POLLSET_KEY(K_FIXED, s, side). */
enum { K_SIGNAL, K_RESOLVER, K_WATCH, K_LISTEN = K_WATCH + SERVER_WATCH_MAX,
	K_FIXED = K_LISTEN + LISTEN_MAX };

static struct pollset *ps;
static struct conn **table;   /* slots; NULL = free */
static int table_size, table_hint;
static struct {
	int fd;
	void (*cb)(void *arg);
	void *arg;
} watches[SERVER_WATCH_MAX];
static int64_t drain_deadline;
static time_t window_judged;   /* the migration window end the tunnels were judged at */
/* Per slot, in one zero-filled block (untouched pages of unused slots stay so). */
static unsigned char *touched;
static int *touch_list, ntouch, touch_all;
static unsigned *sgen;        /* bumped each time a connection takes the slot */
static short *srev;           /* per slot and side: events gathered after this pass's wait */
static int *ev_slot;          /* slots with events this pass, and their generation then */
static unsigned *ev_gen;
static int nev;

/* see server.h */
int
server_watch(int fd, void (*cb)(void *arg), void *arg)
{
	int k;

	for (k = 0; k < SERVER_WATCH_MAX; k++) {
		if (watches[k].cb == NULL) {
			watches[k].fd = fd;
			watches[k].cb = cb;
			watches[k].arg = arg;
			if (ps != NULL) /* else server_run puts it */
				pollset_put(ps, K_WATCH + k, fd, POLLIN);
			return ERR_OK;
		}
	}
	return ERR_NOSPACE;
}

/* see server.h */
void
server_unwatch(int fd)
{
	int k;

	for (k = 0; k < SERVER_WATCH_MAX; k++) {
		if (watches[k].cb && watches[k].fd == fd) {
			watches[k].cb = NULL;
			if (ps != NULL)
				pollset_put(ps, K_WATCH + k, -1, 0);
		}
	}
}

/* ---- the table ----------------------------------------------------------------------- */

/* This slot's interest must be derived again before the next wait. */
static void
touch(int slot)
{
	if (!touched[slot]) {
		touched[slot] = 1;
		touch_list[ntouch++] = slot;
	}
}

/* One end's socket into the poll set (pollset.h, "Sockets and closing"): an end without
 * a socket, or set up again since it was put (a new socket, which may carry the number of
 * the one closed before it), had its earlier socket closed by its owner: forgotten first,
 * never taken out of a kernel set by a number that may belong to someone else now. */
static void
put_end(int key, struct hop_end *e, int fd, short ev)
{
	if (fd < 0 || !e->polled)
		pollset_closed(ps, key);
	if (fd >= 0) {
		pollset_put(ps, key, fd, ev);
		e->polled = 1;
	}
}

static void
derive(int slot)
{
	struct conn *c = table[slot];
	int cfd, ufd;
	short cev, uev;

	walk_interest(c, &cfd, &cev, &ufd, &uev);
	put_end(POLLSET_KEY(K_FIXED, slot, 0), &c->hop.front, cfd, cev);
	put_end(POLLSET_KEY(K_FIXED, slot, 1), &c->hop.up, ufd, uev);
}

/* Before conn_free closes an end's socket: forgotten, since closing it drops it from the
 * kernel's set (pollset.h, "Sockets and closing": the epoll backend drops a stale event
 * should another process still hold the socket), which saves two epoll_ctl a tunnel. */
static void
release_end(int key)
{
	pollset_closed(ps, key);
}

/* Before the wait: derive the touched connections' interest again. */
static void
refresh(void)
{
	int k;

	if (touch_all) {
		for (k = 0; k < table_size; k++)
			if (table[k])
				derive(k);
		touch_all = 0;
	} else {
		for (k = 0; k < ntouch; k++)
			if (table[touch_list[k]])
				derive(touch_list[k]);
	}
	for (k = 0; k < ntouch; k++)
		touched[touch_list[k]] = 0;
	ntouch = 0;
}

/* Put a new connection into a free slot (a new generation of it). The slot, or
 * ERR_NOSPACE. */
static int
table_add(struct conn *c)
{
	int i;

	for (i = 0; i < table_size; i++) {
		int s = (table_hint + i) % table_size;
		if (table[s] == NULL) {
			table[s] = c;
			c->slot = s;
			table_hint = s + 1;
			nconns++;
			sgen[s]++;
			touch(s);
			return s;
		}
	}
	return ERR_NOSPACE;
}

/* After a callback into the connection in slot s: if it closed the connection, free it
 * now and give the slot back (conn.h, "Closing"). */
static void
reap(int s)
{
	struct conn *c = table[s];

	if (c == NULL || !conn_dead(c))
		return;
	table[s] = NULL;
	nconns--;
	release_end(POLLSET_KEY(K_FIXED, s, 0));
	release_end(POLLSET_KEY(K_FIXED, s, 1));
	conn_free(c);
}

/* Pending connections all together at most half of maxConnections (docs/configuration.md): over it the
 * oldest pending connection is closed to make room (pending.h). */
static void
cap_pending(void)
{
	int64_t cap = srv->cfg->max_connections / 2 > 0 ? srv->cfg->max_connections / 2 : 1;
	struct conn *o;

	while (pending_total() > cap && (o = pending_oldest()) != NULL) {
		pending_log(PENDING_OLDEST, o->peer, pending_total(), cap, srv->now_ms);
		conn_close(o, "too many pending connections: the oldest is closed");
		reap(o->slot);
	}
}

/* A new connection for an accepted socket, into the table; the socket is closed when
 * there is no memory (or, which accept_some prevents, no slot). A connection over
 * maxPendingPerAddress is closed at once, before a byte is read (with proxyProtocol the
 * address is known only from the header: front.c checks it then). */
static void
add_conn(const struct listen_conn *lc, int over)
{
	struct conn *c = conn_new(srv, lc->fd, &lc->peer, lc->kind, over, lc->pp);
	int s;

	if (c == NULL) {
		close(lc->fd);
		return;
	}
	s = table_add(c);
	if (s < 0) {
		conn_close(c, "no slot");
		conn_free(c);
		return;
	}
	if (!c->pend.queued) /* admin, or over maxConnections: not pending (conn_new) */
		return;
	if (!lc->pp && conn_pending_over_address(c)) { /* with PROXY: once the header is read */
		reap(s);
		return;
	}
	cap_pending();
}

/* Accept a burst from listener i. Capacity is decided here: admin connections do not
 * count against maxConnections, so metrics and probes stay readable when the relay is
 * full — they have their own cap and their own room in the table; past maxConnections a
 * client is still accepted (up to SERVER_RESERVE more) to be told 503; past that, closed. */
static void
accept_some(int i)
{
	struct listen_conn lc;
	int k, relay, over;

	for (k = 0; k < SERVER_ACCEPT_BURST && listen_accept(i, srv->now_ms, nconns, &lc); k++) {
		if (lc.fd < 0)
			continue; /* refused by the listener (an untrusted PROXY source) */
		if (lc.kind == CONN_ADMIN) {
			if (metrics_conns_open(METRICS_ADMIN) >= SERVER_ADMIN_MAX)
				close(lc.fd);
			else
				add_conn(&lc, 0);
			continue;
		}
		relay = nconns - (int)metrics_conns_open(METRICS_ADMIN);
		over = relay >= srv->cfg->max_connections ||
		    relay >= table_size - SERVER_ADMIN_MAX - SERVER_RESERVE;
		if (over)
			metrics_conn_refused();
		if (relay >= table_size - SERVER_ADMIN_MAX)
			close(lc.fd); /* beyond even the 503 reserve: refused outright */
		else
			add_conn(&lc, over);
	}
}

/* Close the listeners and start the clock of the drain (both hand-off and stop). */
static void
stop_accepting(const char *why)
{
	struct log_rec r;
	int i;

	if (stopping)
		return;
	stopping = 1;
	drain_deadline = srv->now_ms + (int64_t)srv->cfg->shutdown_timeout * 1000;
	/* Out of the poll set while still open: after a hand-off another process holds these
	 * sockets, and an epoll set would keep reporting them (pollset.h). */
	for (i = 0; ps != NULL && i < LISTEN_MAX; i++)
		pollset_put(ps, K_LISTEN + i, -1, 0);
	listen_close_all();
	srv->listening = 0;
	if (log_begin(&r, LOG_INFO, "stopping")) {
		log_str(&r, "why", why);
		log_int(&r, "pid", srv->pid);
		log_int(&r, "connections", nconns);
		log_int(&r, "timeout_s", (int64_t)srv->cfg->shutdown_timeout);
		log_end(&r);
	}
}

/* see server.h */
void
server_handover(const char *why)
{
	stop_accepting(why);
}

/* see server.h */
void
server_revalidate(void)
{
	static struct revoke rv; /* the password file's fingerprints: not on the stack */
	const char *why;
	int i;

	if (table == NULL)
		return;
	revoke_prepare(&rv, srv);
	for (i = 0; i < table_size; i++) {
		if (table[i] == NULL || (why = revoke_judge(&rv, table[i])) == NULL)
			continue;
		table[i]->close_detail = why;
		conn_close(table[i], "revoked");
		reap(i);
		touch_all = 1;
	}
	revoke_done(&rv);
}

/* see server.h */
void
server_begin_drain(const char *why)
{
	int i;

	if (srv->draining)
		return;
	stop_accepting(why);
	srv->draining = 1;
	notify_send("STOPPING=1\nSTATUS=draining");
	for (i = 0; i < table_size; i++) {
		if (table[i]) {
			walk_shutdown(table[i]);
			reap(i);
		}
	}
}

static void
tick(void)
{
	int i;

	for (i = 0; i < table_size; i++) {
		if (table[i] && walk_tick(table[i], srv->now_ms)) {
			touch(i);
			reap(i);
		}
	}
	conn_trim(srv->now_ms);
	tls_maintain(srv->now); /* remint the server certificate when < 30 days remain */
	/* The migration window ends by time, without a reload: its tunnels are revoked. */
	if (srv->policy.migration.kind != TARGET_NONE && srv->now >= srv->policy.migration_until &&
	    window_judged != srv->policy.migration_until) {
		window_judged = srv->policy.migration_until;
		server_revalidate();
	}
}

/* The table and the poll set, sized once: a reload may lower maxConnections; raising it
 * past the value at start takes a restart (the extra connections get 503). */
static int
setup(void)
{
	int backend = pollset_backend(getenv(POLLSET_ENV)), why; /* the configuration checked it */
	struct log_rec r;
	size_t n;

	if (backend < 0)
		backend = pollset_backend(NULL);
	table_size = (int)srv->cfg->max_connections + SERVER_RESERVE + SERVER_ADMIN_MAX;
	n = (size_t)table_size;
	table = calloc(n, sizeof *table);
	/* Without epoll (a descriptor limit, a sandbox) the loop runs on poll(), with a warning:
	 * only a poll() set that cannot be had either stops the start. */
	ps = pollset_open(backend, K_FIXED, table_size, &why);
	if (pending_init(table_size) != ERR_OK)
		return ERR_IO;
	if (ps != NULL && why != 0 && log_begin(&r, LOG_WARN, "loop.backend_fallback")) {
		log_str(&r, "wanted", pollset_backend_name(backend));
		log_str(&r, "backend", pollset_backend_name(pollset_backend_of(ps)));
		log_str(&r, "reason", strerror(why));
		log_end(&r);
	}
	if (ps != NULL && log_begin(&r, LOG_INFO, "loop.start")) {
		log_str(&r, "backend", pollset_backend_name(pollset_backend_of(ps)));
		log_int(&r, "slots", table_size);
		log_end(&r);
	}
	touch_list = calloc(n, sizeof *touch_list + sizeof *ev_slot + sizeof *sgen + sizeof *ev_gen +
	    2 * sizeof *srev + sizeof *touched);
	if (table == NULL || ps == NULL || touch_list == NULL)
		return ERR_IO;
	ev_slot = touch_list + n;
	sgen = (unsigned *)(void *)(ev_slot + n);
	ev_gen = sgen + n;
	srev = (short *)(void *)(ev_gen + n);
	touched = (unsigned char *)(void *)(srev + 2 * n);
	return ERR_OK;
}

/* The fixed entries that may change between passes: the listeners are watched only while
 * accepting (not draining, not paused after EMFILE). Put only when that changes. */
static void
put_listeners(void)
{
	static int was = -1;
	int i, on = !stopping && !listen_paused(srv->now_ms) ? listen_count() : 0;

	if (on == was)
		return;
	was = on;
	for (i = 0; i < LISTEN_MAX; i++)
		pollset_put(ps, K_LISTEN + i, i < on ? listen_fd(i) : -1, POLLIN);
}

/* see server.h */
int
server_run(struct relay *rl, const struct server_hooks *h)
{
	const struct pollset_event *ready;
	unsigned fixed[K_FIXED];
	int64_t next_tick, t;
	int i, k, n, timeout;

	srv = rl;
	if (h != NULL)
		hooks = *h;
	if (setup() != ERR_OK) {
		log_msg(LOG_ERROR, "start.fail", "out of memory for the connection table");
		return 1;
	}
	srv->now_ms = loop_now_ms();
	srv->now = time(NULL);
	srv->pid = (long)getpid();
	next_tick = srv->now_ms + SERVER_TICK_MS;
	pollset_put(ps, K_SIGNAL, loop_signal_fd(), POLLIN);
	pollset_put(ps, K_RESOLVER, resolve_wake_fd(), POLLIN);
	for (i = 0; i < SERVER_WATCH_MAX; i++)
		if (watches[i].cb)
			pollset_put(ps, K_WATCH + i, watches[i].fd, POLLIN);

	for (;;) {
		put_listeners();
		refresh();
		t = loop_now_ms();
		timeout = (int)(next_tick - t);
		n = pollset_wait(ps, timeout < 0 ? 0 : timeout, &ready);
		if (n < 0 && errno != EINTR) {
			/* ENOMEM is transient: wait a little and go on. Anything else is a bug. */
			log_msg(LOG_ERROR, "loop.poll_fail", strerror(errno));
			if (errno != ENOMEM)
				return 1;
			poll(NULL, 0, 50);
		}
		srv->now_ms = loop_now_ms();
		srv->now = time(NULL);

		/* Gather before handling anything (handling changes the poll set): the fixed
		 * keys' events, and each connection's by slot with the slot's generation. */
		memset(fixed, 0, sizeof fixed);
		nev = 0;
		for (i = 0; i < n; i++) {
			int key = ready[i].key, s = (key - K_FIXED) / 2;
			if (key < K_FIXED) {
				fixed[key] = 1;
				continue;
			}
			if (!srev[2 * s] && !srev[2 * s + 1]) {
				ev_slot[nev] = s;
				ev_gen[nev++] = sgen[s];
			}
			srev[2 * s + (key - K_FIXED) % 2] |= ready[i].revents;
		}

		if (fixed[K_SIGNAL]) {
			unsigned sig = loop_take_signals();
			if (sig & LOOP_SIG_HUP)
				log_follow(); /* a log file moved aside (logrotate): its name again */
			if ((sig & LOOP_SIG_HUP) && hooks.reload && !stopping)
				hooks.reload(hooks.ctx);
			if (sig & LOOP_SIG_TERM) {
				if (hooks.stop && !srv->draining)
					hooks.stop(hooks.ctx);
				server_begin_drain("signal");
			}
			if ((sig & LOOP_SIG_USR2) && hooks.upgrade && !stopping) {
				log_share(); /* the new binary writes the same log file */
				hooks.upgrade(hooks.ctx);
			}
			if ((sig & LOOP_SIG_CHLD) && hooks.child)
				hooks.child(hooks.ctx);
			touch_all = 1; /* a reload or a drain may have touched any connection */
		}
		if (fixed[K_RESOLVER]) {
			resolve_drain();
			for (i = 0; i < table_size; i++) {
				if (table[i] && table[i]->state == CS_RESOLVE) {
					touch(i);
					walk_resolved(table[i]);
					reap(i);
				}
			}
		}
		for (i = 0; i < SERVER_WATCH_MAX; i++) {
			if (fixed[K_WATCH + i] && watches[i].cb) {
				watches[i].cb(watches[i].arg);
				touch_all = 1;
			}
		}
		for (i = 0; i < LISTEN_MAX; i++)
			if (fixed[K_LISTEN + i] && !stopping)
				accept_some(i);
		for (k = 0; k < nev; k++) {
			int s = ev_slot[k];
			short crev = srev[2 * s], urev = srev[2 * s + 1];
			srev[2 * s] = srev[2 * s + 1] = 0;
			/* A connection handled earlier in this pass may have closed, and an accept
			 * in this pass may have given its slot to a new one (another generation). */
			if (table[s] == NULL || sgen[s] != ev_gen[k])
				continue;
			touch(s);
			walk_events(table[s], crev, urev);
			reap(s);
		}
		if (srv->now_ms >= next_tick) {
			tick(); /* touches the connections whose deadline passed */
			if (hooks.tick)
				hooks.tick(hooks.ctx);
			next_tick = srv->now_ms + SERVER_TICK_MS;
		}
		if (stopping && srv->now_ms >= drain_deadline) {
			for (i = 0; i < table_size; i++) {
				if (table[i]) {
					conn_close(table[i], "shutdown timeout");
					reap(i);
				}
			}
		}
		if (stopping && nconns == 0 && !(hooks.busy && hooks.busy(hooks.ctx)))
			return 0;
	}
}

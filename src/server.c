/*
 * server.c — listeners, the connection table and the poll() loop. See server.h.
 *
 * Each pass: bring the poll set up to date, poll with a timeout of at most one tick, then
 * handle signals, the resolver's wake-ups, new connections and connection events, in that
 * order. Deadlines are checked once per tick by walking the table (O(connections) per
 * tick, never per byte). A connection closed by a callback is freed right after that
 * callback returns (reap(): conn.h, "Closing"), and is not looked at again: events are
 * dispatched by slot and the slot's generation.
 *
 * The poll set is compact and kept, not rebuilt: after a few fixed entries (signals,
 * resolver, watches, listeners) come only the connection sockets that want something, no
 * holes. A connection's entries are derived again from walk_interest() only when it was
 * touched (it handled events, it is new, or the pass ran something that may touch every
 * connection: a tick, resolver news, a signal, a watch) and are then updated in place,
 * appended, or removed by moving the last entry into the gap. So a pass costs O(events)
 * besides poll() itself; interest is still derived, never remembered beyond what
 * walk_interest() would say again.
 *
 * poll() itself costs the kernel O(entries) per call: with 9,000 idle tunnels (18,000
 * sockets) about half the CPU went there (perf, docs/performance.md). So the connections'
 * entries are split: busy ones first, then quiet ones (no events for SERVER_QUIET_MS).
 * Most passes poll the fixed and busy entries only; every SERVER_QUIET_POLL_MS a pass
 * polls everything, and whenever no entry is busy every pass does. An event on a quiet
 * socket is therefore seen at most SERVER_QUIET_POLL_MS late (the first byte after two
 * seconds of silence), and the cost of idle tunnels is bounded by ten full polls a second
 * instead of one per pass (a full poll of 18,000 sockets took about 8 ms here).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "relay.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "notify.h"
#include "proxyproto.h"
#include "resolve.h"
#include "server.h"
#include "tls.h"
#include "walk.h"

struct relay srv;

struct listener {
	int fd;
	int tls;                 /* conn_new's kind: CONN_PLAIN, CONN_TLS or CONN_ADMIN */
	int pp;             /* proxyProtocol: trusted peers only, a PROXY header first */
	const char *name;
	char addr[NET_ADDR_TEXT];
};

static struct listener listeners[3];
static int nlisteners;
static struct pp_cidr trusted[CFG_LIST_MAX]; /* trustedProxies, read once at start */
static int ntrusted;
static int64_t accept_paused_until;

static struct conn **table;   /* slots; NULL = free */
static int table_size, table_hint;
static struct pollfd *pfds;
static int *pslot;            /* pfds[i] belongs to table[pslot[i]] (< 0: not a conn) */
#define PSET_HEAD_MAX 16      /* fixed entries before the connections' (signals ... listeners) */
#define SERVER_QUIET_MS 2000      /* a connection without events this long is quiet */
#define SERVER_QUIET_POLL_MS 100  /* quiet sockets are polled at least this often */
static struct {
	int fd;
	void (*cb)(void);
} watches[SERVER_WATCH_MAX];
static int64_t drain_deadline;
static unsigned char *pside;  /* 0: the client socket, 1: the upstream socket */

/* The connections' part of the poll set: pfds[pbase .. pbase + npent), the busy entries
 * first (nbusy of them), the quiet ones after. */
static int pbase, npent, nbusy;
static int64_t *slast;        /* per slot: when it last had events (or was accepted) */
static int64_t next_full;     /* the next pass that polls the quiet entries too */
static int *ppos;             /* ppos[2 * slot + side]: 1 + its entry's index in pfds; 0: none */
static unsigned char *touched;
static int *touch_list, ntouch, touch_all;
static unsigned *sgen;        /* per slot: bumped each time a connection takes the slot */
static short *srev;           /* per slot and side: events gathered after this pass's poll */
static int *ev_slot;          /* slots with events this pass, and their generation then */
static unsigned *ev_gen;
static int nev;

/* A listening socket handed over by the binary we replace (or by systemd socket
 * activation): LISTEN_PID is us, LISTEN_FDS sockets from fd 3 on, LISTEN_FDNAMES their
 * names ("https:http"). -1 when there is none for name. */
static int
inherited(const char *name)
{
	const char *pid = getenv("LISTEN_PID"), *nfd = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	int n, i;

	if (!pid || !nfd || atol(pid) != (long)getpid())
		return -1;
	n = atoi(nfd);
	for (i = 0; i < n && i < 8 && names; i++) {
		size_t len = strcspn(names, ":");
		if (len == strlen(name) && strncmp(names, name, len) == 0) {
			int fd = 3 + i;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			return fd;
		}
		names += len + (names[len] == ':');
	}
	return -1;
}

/* see server.h */
int
server_listeners(int *fds, const char **names, int max)
{
	int i;

	for (i = 0; i < nlisteners && i < max; i++) {
		fds[i] = listeners[i].fd;
		names[i] = listeners[i].name;
	}
	return i;
}

/* see server.h */
int
server_watch(int fd, void (*cb)(void))
{
	int k;

	for (k = 0; k < SERVER_WATCH_MAX; k++) {
		if (watches[k].cb == NULL) {
			watches[k].fd = fd;
			watches[k].cb = cb;
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

	for (k = 0; k < SERVER_WATCH_MAX; k++)
		if (watches[k].cb && watches[k].fd == fd)
			watches[k].cb = NULL;
}

static void table_remove(int slot);

/* After a callback into the connection in slot s: if it closed the connection, free it
 * now and give the slot back (conn.h, "Closing"). */
static void
reap(int s)
{
	struct conn *c = table[s];

	if (c != NULL && conn_dead(c)) {
		table_remove(s);
		conn_free(c);
	}
}

/* see server.h */
void
server_begin_drain(const char *why)
{
	struct log_rec r;
	int i;

	if (srv.draining)
		return;
	srv.draining = 1;
	notify_send("STOPPING=1\nSTATUS=draining");
	drain_deadline = srv.now_ms + (int64_t)srv.cfg->shutdown_timeout * 1000;
	for (i = 0; i < nlisteners; i++)
		close(listeners[i].fd);
	nlisteners = 0;
	srv.listening = 0;
	if (log_begin(&r, LOG_INFO, "stopping")) {
		log_str(&r, "why", why);
		log_int(&r, "connections", srv.nconns);
		log_int(&r, "timeout_s", (int64_t)srv.cfg->shutdown_timeout);
		log_end(&r);
	}
	for (i = 0; i < table_size; i++) {
		if (table[i]) {
			walk_shutdown(table[i]);
			reap(i);
		}
	}
}

/* trustedProxies as CIDRs. Like proxyProtocol, read at start only (a restart-only key). */
static int
load_trusted(const struct config *cfg, char *err, size_t errlen)
{
	int i;

	for (ntrusted = 0, i = 0; i < cfg->trusted_proxies.n && i < CFG_LIST_MAX; i++) {
		if (pp_cidr_parse(cfg->trusted_proxies.item[i], &trusted[ntrusted]) != ERR_OK) {
			snprintf(err, errlen, "trustedProxies: %s: not an address or CIDR",
			    cfg->trusted_proxies.item[i]);
			return ERR_INVAL;
		}
		ntrusted++;
	}
	return ERR_OK;
}

/* proxyProtocol is on and the peer is not a trusted proxy: closed at once (SPEC §2.1). */
static void
refuse_untrusted(const struct listener *l, int fd, const struct net_addr *peer)
{
	struct log_rec r;
	char addr[NET_ADDR_TEXT];

	close(fd);
	if (log_begin(&r, LOG_WARN, "proxyproto.untrusted")) {
		net_addr_text(peer, addr, 1);
		log_str(&r, "client", addr);
		log_str(&r, "listener", l->name);
		log_end(&r);
	}
}

/* see server.h */
int
server_listen(const struct config *cfg, char *err, size_t errlen)
{
	const struct {
		const char *text, *name;
		int tls;
	} want[] = { { cfg->https_listen, "https", CONN_TLS }, { cfg->http_listen, "http", CONN_PLAIN },
		{ cfg->admin_listen, "admin", CONN_ADMIN } };
	size_t i;

	if (cfg->proxy_protocol && load_trusted(cfg, err, errlen) != ERR_OK)
		return ERR_INVAL;
	for (i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct net_addr a;
		int fd;

		if (!want[i].text[0])
			continue;
		if (net_parse_listen(want[i].text, &a) != ERR_OK) {
			snprintf(err, errlen, "%s listener: cannot parse %s", want[i].name, want[i].text);
			return ERR_INVAL;
		}
		fd = inherited(want[i].name);
		if (fd < 0)
			fd = net_listen(&a, cfg->workers != 1);
		if (fd < 0) {
			snprintf(err, errlen, "%s listener: cannot listen on %s: %s", want[i].name,
			    want[i].text, strerror(errno));
			return ERR_IO;
		}
		listeners[nlisteners].fd = fd;
		listeners[nlisteners].tls = want[i].tls;
		listeners[nlisteners].pp = cfg->proxy_protocol && want[i].tls != CONN_ADMIN; /* both proxy listeners */
		listeners[nlisteners].name = want[i].name;
		snprintf(listeners[nlisteners].addr, NET_ADDR_TEXT, "%s", want[i].text);
		nlisteners++;
	}
	srv.listening = nlisteners;
	return ERR_OK;
}

/* see server.h */
int
server_set_policy(const struct config *cfg, char *err, size_t errlen)
{
	return relay_set_policy(&srv, cfg, err, errlen);
}

/* ---- the poll set ---------------------------------------------------------------------- */

/* This slot's interest must be derived again before the next poll. */
static void
pset_touch(int slot)
{
	if (!touched[slot]) {
		touched[slot] = 1;
		touch_list[ntouch++] = slot;
	}
}

/* Entry `from` to place `to` (whatever was there is overwritten). */
static void
pset_move(int from, int to)
{
	pfds[to] = pfds[from];
	pslot[to] = pslot[from];
	pside[to] = pside[from];
	ppos[2 * pslot[to] + pside[to]] = to + 1;
}

static void
pset_swap(int a, int b)
{
	struct pollfd f = pfds[a];
	int s = pslot[a];
	unsigned char d = pside[a];

	pset_move(b, a);
	pfds[b] = f;
	pslot[b] = s;
	pside[b] = d;
	ppos[2 * s + d] = b + 1;
}

/* Entry i joins the busy part (polled every pass) / the quiet part. */
static void
pset_busy(int i)
{
	if (i >= pbase + nbusy) {
		pset_swap(i, pbase + nbusy);
		nbusy++;
	}
}

static void
pset_quiet(int i)
{
	if (i < pbase + nbusy) {
		pset_swap(i, pbase + nbusy - 1);
		nbusy--;
	}
}

/* Remove entry i, keeping both parts without holes. */
static void
pset_drop(int i)
{
	int lastbusy = pbase + nbusy - 1, last = pbase + npent - 1;

	ppos[2 * pslot[i] + pside[i]] = 0;
	if (i <= lastbusy) {
		if (i != lastbusy)
			pset_move(lastbusy, i);
		if (lastbusy != last)
			pset_move(last, lastbusy);
		nbusy--;
	} else if (i != last) {
		pset_move(last, i);
	}
	npent--;
}

/* One socket of a connection wants ev on fd (none: fd < 0 or ev 0). Only sockets we want
 * something from are polled: a peer that hung up would otherwise report POLLHUP on every
 * pass while we wait on the other side, and poll() refuses more entries than
 * RLIMIT_NOFILE allows. */
static void
pset_put(int slot, int side, int fd, short ev)
{
	int *p = &ppos[2 * slot + side], i;

	if (fd < 0 || ev == 0) {
		if (*p)
			pset_drop(*p - 1);
		return;
	}
	if (*p == 0) {
		i = pbase + npent++;
		pslot[i] = slot;
		pside[i] = (unsigned char)side;
		*p = i + 1;
	} else if (pfds[*p - 1].fd == fd && pfds[*p - 1].events == ev) {
		return;
	}
	i = *p - 1;
	pfds[i].fd = fd;
	pfds[i].events = ev;
	pset_busy(i); /* new or changed interest is watched at once */
}

/* At each tick: entries of connections without events for SERVER_QUIET_MS turn quiet. */
static void
pset_settle(int64_t now)
{
	int i;

	for (i = pbase + nbusy - 1; i >= pbase; i--)
		if (now - slast[pslot[i]] >= SERVER_QUIET_MS)
			pset_quiet(i);
}

static void
pset_derive(int slot)
{
	int cfd, ufd;
	short cev, uev;

	walk_interest(table[slot], &cfd, &cev, &ufd, &uev);
	pset_put(slot, 0, cfd, cev);
	pset_put(slot, 1, ufd, uev);
}

/* Before poll: the fixed entries took head places; bring the connections' up to date. */
static void
pset_refresh(int head)
{
	int k;

	if (head != pbase) {
		/* The fixed part changed size (listeners closed at drain): start the connections'
		 * part again after it. Rare. */
		for (k = 0; k < table_size; k++)
			if (table[k]) /* free slots have no entries (and untouched pages stay so) */
				ppos[2 * k] = ppos[2 * k + 1] = 0;
		pbase = head;
		npent = nbusy = 0;
		touch_all = 1;
	}
	if (touch_all) {
		for (k = 0; k < table_size; k++)
			if (table[k])
				pset_derive(k);
		touch_all = 0;
	} else {
		for (k = 0; k < ntouch; k++)
			if (table[touch_list[k]])
				pset_derive(touch_list[k]);
	}
	for (k = 0; k < ntouch; k++)
		touched[touch_list[k]] = 0;
	ntouch = 0;
}

/* After poll, before anything is handled (handling may close connections, which moves
 * entries): collect each connection's events by slot. end: the entries polled; left:
 * those with events. */
static void
pset_gather(int end, int left)
{
	int i;

	nev = 0;
	for (i = pbase; i < end && left > 0; i++) {
		int s = pslot[i];
		if (!pfds[i].revents)
			continue;
		left--;
		if (!srev[2 * s] && !srev[2 * s + 1]) {
			ev_slot[nev] = s;
			ev_gen[nev++] = sgen[s];
		}
		srev[2 * s + pside[i]] |= pfds[i].revents;
	}
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
			table_hint = s + 1;
			srv.nconns++;
			sgen[s]++;
			slast[s] = srv.now_ms;
			pset_touch(s);
			return s;
		}
	}
	return ERR_NOSPACE;
}

static void
table_remove(int slot)
{
	if (slot >= 0 && slot < table_size && table[slot]) {
		table[slot] = NULL;
		srv.nconns--;
		pset_put(slot, 0, -1, 0);
		pset_put(slot, 1, -1, 0);
	}
}

/* A new connection for an accepted socket, into the table; the socket is closed when
 * there is no memory (or, which accept_some prevents, no slot). */
static void
add_conn(int fd, const struct net_addr *peer, int kind, int over, int pp)
{
	struct conn *c = conn_new(&srv, fd, peer, kind, over, pp);

	if (c == NULL) {
		close(fd);
	} else if (table_add(c) < 0) {
		conn_close(c, "no slot");
		conn_free(c);
	}
}

static void
accept_some(struct listener *l)
{
	int i;

	for (i = 0; i < SERVER_ACCEPT_BURST; i++) {
		struct net_addr peer;
		int fd = net_accept(l->fd, &peer);
		int over, relay;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: the pending connection stays in the backlog and
				 * keeps the listener readable, so polling it again would spin. Pause
				 * accepting for a moment; closing connections free descriptors. */
				struct log_rec r;
				accept_paused_until = srv.now_ms + SERVER_EMFILE_PAUSE_MS;
				if (log_begin(&r, LOG_WARN, "accept.pause")) {
					log_str(&r, "reason", strerror(errno));
					log_int(&r, "connections", srv.nconns);
					log_end(&r);
				}
			}
			return;
		}
		if (l->tls == CONN_ADMIN) {
			/* Admin connections do not count against maxConnections, so metrics and
			 * probes stay readable when the relay is full; they have their own cap and
			 * their own room in the table. */
			if (metrics_conns_open(METRICS_ADMIN) >= SERVER_ADMIN_MAX)
				close(fd);
			else
				add_conn(fd, &peer, CONN_ADMIN, 0, 0);
			continue;
		}
		if (l->pp && !pp_cidr_match(trusted, ntrusted, &peer)) {
			refuse_untrusted(l, fd, &peer);
			continue;
		}
		relay = srv.nconns - (int)metrics_conns_open(METRICS_ADMIN);
		over = relay >= srv.cfg->max_connections || relay >= table_size - SERVER_ADMIN_MAX - SERVER_RESERVE;
		if (over)
			metrics_conn_refused();
		if (relay >= table_size - SERVER_ADMIN_MAX)
			close(fd); /* beyond even the 503 reserve: refused outright */
		else
			add_conn(fd, &peer, l->tls, over, l->pp);
	}
}

static void
tick(void)
{
	int i;

	for (i = 0; i < table_size; i++) {
		if (table[i]) {
			walk_tick(table[i], srv.now_ms);
			reap(i);
		}
	}
	conn_trim(srv.now_ms);
	tls_maintain(srv.now); /* remint the server certificate when < 30 days remain */
}

/* see server.h */
int
server_run(void)
{
	int64_t next_tick;
	int i, k, n, npfd;
	size_t per_slot;
	int64_t t;

	/* Sized once: a reload may lower maxConnections; raising it past the value at start
	 * takes a restart (the extra connections get 503). */
	table_size = (int)srv.cfg->max_connections + SERVER_RESERVE + SERVER_ADMIN_MAX;
	table = calloc((size_t)table_size, sizeof *table);
	pfds = calloc((size_t)table_size * 2 + PSET_HEAD_MAX, sizeof *pfds);
	pslot = calloc((size_t)table_size * 2 + PSET_HEAD_MAX, sizeof *pslot);
	pside = calloc((size_t)table_size * 2 + PSET_HEAD_MAX, sizeof *pside);
	/* The poll set's per-slot arrays in one zero-filled block: large enough to be a fresh
	 * mapping, so the pages of slots never used stay untouched (idle RSS at start). */
	per_slot = (size_t)table_size;
	slast = calloc(per_slot, sizeof *slast + 2 * sizeof *ppos + sizeof *touch_list +
	    sizeof *sgen + sizeof *ev_slot + sizeof *ev_gen + 2 * sizeof *srev + 1);
	if (slast) {
		ppos = (int *)(void *)(slast + per_slot);
		touch_list = ppos + 2 * per_slot;
		ev_slot = touch_list + per_slot;
		sgen = (unsigned *)(void *)(ev_slot + per_slot);
		ev_gen = sgen + per_slot;
		srev = (short *)(void *)(ev_gen + per_slot);
		touched = (unsigned char *)(void *)(srev + 2 * per_slot);
	}
	if (!table || !pfds || !pslot || !pside || !slast) {
		log_msg(LOG_ERROR, "start.fail", "out of memory for the connection table");
		return 1;
	}
	srv.now_ms = loop_now_ms();
	srv.now = time(NULL);
	srv.pid = (long)getpid();
	next_tick = srv.now_ms + SERVER_TICK_MS;

	for (;;) {
		unsigned sig;
		int timeout;

		/* The poll set: signals, resolver, watches, listeners, then the connections'. */
		npfd = 0;
		pfds[npfd] = (struct pollfd){ .fd = loop_signal_fd(), .events = POLLIN };
		pslot[npfd++] = -1;
		pfds[npfd] = (struct pollfd){ .fd = resolve_wake_fd(), .events = POLLIN };
		pslot[npfd++] = -2;
		for (i = 0; i < SERVER_WATCH_MAX; i++) {
			pfds[npfd] = (struct pollfd){ .fd = watches[i].cb ? watches[i].fd : -1, .events = POLLIN };
			pslot[npfd++] = -100 - i;
		}
		for (i = 0; i < nlisteners; i++) {
			int on = !srv.draining && srv.now_ms >= accept_paused_until;
			pfds[npfd] = (struct pollfd){ .fd = on ? listeners[i].fd : -1, .events = POLLIN };
			pslot[npfd++] = -3 - i;
		}
		pset_refresh(npfd);
		t = loop_now_ms();
		timeout = (int)(next_tick - t);
		if (timeout < 0)
			timeout = 0;
		if (nbusy > 0 && npent > nbusy && t < next_full) {
			npfd = pbase + nbusy; /* the quiet entries wait for the next full poll */
			if (timeout > next_full - t)
				timeout = (int)(next_full - t);
		} else {
			npfd = pbase + npent;
			next_full = t + SERVER_QUIET_POLL_MS;
		}
		n = poll(pfds, (nfds_t)npfd, timeout);
		if (n < 0 && errno != EINTR) {
			/* ENOMEM is transient: wait a little and go on. Anything else is a bug. */
			log_msg(LOG_ERROR, "loop.poll_fail", strerror(errno));
			if (errno != ENOMEM)
				return 1;
			poll(NULL, 0, 50);
		}
		srv.now_ms = loop_now_ms();
		srv.now = time(NULL);
		nev = 0;
		if (n > 0) {
			for (i = 0; i < pbase; i++)
				n -= pfds[i].revents != 0;
			pset_gather(npfd, n);
		}

		if (pfds[0].revents) {
			sig = loop_take_signals();
			if ((sig & LOOP_SIG_HUP) && srv.on_reload && !srv.draining)
				srv.on_reload();
			if (sig & LOOP_SIG_TERM)
				server_begin_drain("signal");
			if ((sig & LOOP_SIG_USR2) && srv.on_upgrade && !srv.draining)
				srv.on_upgrade();
			if ((sig & LOOP_SIG_CHLD) && srv.on_child)
				srv.on_child();
			touch_all = 1; /* a reload or a drain may have touched any connection */
		}
		if (pfds[1].revents) {
			resolve_drain();
			for (i = 0; i < table_size; i++)
				if (table[i] && table[i]->state == CS_RESOLVE) {
					pset_touch(i);
					walk_resolved(table[i]);
					reap(i);
				}
		}
		for (i = 2; i < 2 + SERVER_WATCH_MAX; i++)
			if (pfds[i].revents && watches[-100 - pslot[i]].cb) {
				watches[-100 - pslot[i]].cb();
				touch_all = 1;
			}
		for (; i < npfd && pslot[i] <= -3 && pslot[i] > -100; i++)
			if (pfds[i].revents && !srv.draining)
				accept_some(&listeners[-3 - pslot[i]]);
		for (k = 0; k < nev; k++) {
			int s = ev_slot[k];
			short crev = srev[2 * s], urev = srev[2 * s + 1];
			srev[2 * s] = srev[2 * s + 1] = 0;
			/* A connection handled earlier in this pass may have closed, and an accept
			 * in this pass may have given its slot to a new one (another generation). */
			if (table[s] == NULL || sgen[s] != ev_gen[k])
				continue;
			pset_touch(s);
			slast[s] = srv.now_ms;
			if (ppos[2 * s])
				pset_busy(ppos[2 * s] - 1);
			if (ppos[2 * s + 1])
				pset_busy(ppos[2 * s + 1] - 1);
			walk_events(table[s], crev, urev);
			reap(s);
		}
		if (srv.now_ms >= next_tick) {
			touch_all = 1; /* walk_tick visits every connection */
			tick();
			pset_settle(srv.now_ms);
			if (srv.on_tick)
				srv.on_tick();
			next_tick = srv.now_ms + SERVER_TICK_MS;
		}
		if (srv.draining && (srv.nconns == 0 || srv.now_ms >= drain_deadline)) {
			for (i = 0; i < table_size; i++) {
				if (table[i]) {
					conn_close(table[i], "shutdown timeout");
					reap(i);
				}
			}
			return 0;
		}
	}
}

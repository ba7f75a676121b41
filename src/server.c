/*
 * server.c — listeners, the connection table and the poll() loop. See server.h.
 *
 * Each pass: rebuild the pollfd array from each connection's derived interest
 * (conn_interest), poll with a timeout of at most one tick, then handle signals, the
 * resolver's wake-ups, new connections and connection events, in that order. Deadlines
 * are checked once per tick by walking the table (O(connections) per tick, never per
 * byte). A connection closed while the pass is handled is not looked at again: its slot
 * is cleared by server_remove_conn and events are dispatched by slot.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
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

struct server srv;

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
static struct {
	int fd;
	void (*cb)(void);
} watches[SERVER_WATCH_MAX];
static int64_t drain_deadline;
static unsigned char *pside;  /* 0: the client socket, 1: the upstream socket */

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
	if (log_begin(&r, LOG_INFO, "stopping")) {
		log_str(&r, "why", why);
		log_int(&r, "connections", srv.nconns);
		log_int(&r, "timeout_s", (int64_t)srv.cfg->shutdown_timeout);
		log_end(&r);
	}
	for (i = 0; i < table_size; i++)
		if (table[i])
			conn_shutdown(table[i]);
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
	return ERR_OK;
}

/* see server.h */
int
server_set_policy(const struct config *cfg, char *err, size_t errlen)
{
	struct target_policy *p = &srv.policy;
	const char *names[RESOLVE_MAX_HOSTS];
	int n = 0, i;

	memset(p, 0, sizeof *p);
	if (cfg->console_address[0] &&
	    target_policy_set_console(p, cfg->console_address, strlen(cfg->console_address)) != ERR_OK) {
		snprintf(err, errlen, "consoleAddress: not a valid host");
		return ERR_INVAL;
	}
	if (cfg->migration_console_address[0] &&
	    target_policy_set_migration(p, cfg->migration_console_address,
	    strlen(cfg->migration_console_address), (time_t)cfg->migration_valid_until) != ERR_OK) {
		snprintf(err, errlen, "migration.consoleAddress: not a valid host");
		return ERR_INVAL;
	}
	for (i = 0; i < cfg->allowed_hosts.n; i++) {
		if (target_policy_add_host(p, cfg->allowed_hosts.item[i],
		    strlen(cfg->allowed_hosts.item[i])) != ERR_OK) {
			snprintf(err, errlen, "allowedHosts: %s: not a valid host", cfg->allowed_hosts.item[i]);
			return ERR_INVAL;
		}
	}
	for (i = 0; i < cfg->n_allowed_ports; i++)
		target_policy_add_port(p, cfg->allowed_ports[i]);
	/* The routes come from the environment, which cannot change in a running process:
	 * they are parsed once, at start, and a reload only switches proxyEnabled. Connections
	 * point into srv.routes (c->via) for their whole life, so it is never rewritten. */
	{
		static int routes_loaded;
		static char routes_err[160];
		if (!routes_loaded) {
			if (upstream_load(&srv.routes, 1, routes_err, sizeof routes_err) != ERR_OK)
				upstream_wipe(&srv.routes);
			else
				routes_err[0] = 0;
			routes_loaded = 1;
		}
		if (cfg->proxy_enabled && routes_err[0]) {
			snprintf(err, errlen, "%s", routes_err);
			return ERR_INVAL;
		}
		srv.routes.enabled = cfg->proxy_enabled;
	}

	/* Names (not IP literals) the resolver keeps fresh. */
	if (p->console.kind == TARGET_NAME)
		names[n++] = p->console.name;
	if (p->migration.kind == TARGET_NAME)
		names[n++] = p->migration.name;
	for (i = 0; i < (int)p->nhosts && n < RESOLVE_MAX_HOSTS; i++)
		if (p->hosts[i].kind == TARGET_NAME)
			names[n++] = p->hosts[i].name;
	if (srv.routes.https.set && srv.routes.https.host.kind == TARGET_NAME && n < RESOLVE_MAX_HOSTS)
		names[n++] = srv.routes.https.host.name;
	if (srv.routes.http.set && srv.routes.http.host.kind == TARGET_NAME && n < RESOLVE_MAX_HOSTS)
		names[n++] = srv.routes.http.host.name;
	resolve_set_hosts(names, n);
	return ERR_OK;
}

/* see server.h */
int
server_ready(const char **reason)
{
	if (!srv.ca_loaded) {
		*reason = "ca_not_loaded";
		return 0;
	}
	if (nlisteners == 0) {
		*reason = "no_listener";
		return 0;
	}
	if (!srv.cfg->security_token[0] && srv.users == NULL) {
		*reason = "no_security_token";
		return 0;
	}
	if (srv.draining) {
		*reason = "shutting_down";
		return 0;
	}
	return 1;
}

/* see server.h */
int
server_add_conn(struct conn *c)
{
	int i;

	for (i = 0; i < table_size; i++) {
		int s = (table_hint + i) % table_size;
		if (table[s] == NULL) {
			table[s] = c;
			table_hint = s + 1;
			srv.nconns++;
			return s;
		}
	}
	return ERR_NOSPACE;
}

/* see server.h */
void
server_remove_conn(int slot)
{
	if (slot >= 0 && slot < table_size && table[slot]) {
		table[slot] = NULL;
		srv.nconns--;
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
			if (metrics_conns_open(METRICS_ADMIN) >= SERVER_ADMIN_MAX ||
			    conn_new(fd, &peer, CONN_ADMIN, 0, 0) == NULL)
				close(fd);
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
		if (relay >= table_size - SERVER_ADMIN_MAX || conn_new(fd, &peer, l->tls, over, l->pp) == NULL)
			close(fd); /* beyond even the 503 reserve: refused outright */
	}
}

static void
tick(void)
{
	int i;

	for (i = 0; i < table_size; i++)
		if (table[i])
			conn_tick(table[i], srv.now_ms);
	tls_maintain(srv.now); /* remint the server certificate when < 30 days remain */
}

/* see server.h */
int
server_run(void)
{
	int64_t next_tick;
	int i, n, npfd;

	/* Sized once: a reload may lower maxConnections; raising it past the value at start
	 * takes a restart (the extra connections get 503). */
	table_size = (int)srv.cfg->max_connections + SERVER_RESERVE + SERVER_ADMIN_MAX;
	table = calloc((size_t)table_size, sizeof *table);
	pfds = calloc((size_t)table_size * 2 + 8, sizeof *pfds);
	pslot = calloc((size_t)table_size * 2 + 8, sizeof *pslot);
	pside = calloc((size_t)table_size * 2 + 8, sizeof *pside);
	if (!table || !pfds || !pslot || !pside) {
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

		/* Build the poll set: signals, resolver, listeners, connections. */
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
		for (i = 0; i < table_size; i++) {
			int cfd, ufd;
			short cev, uev;
			if (!table[i])
				continue;
			conn_interest(table[i], &cfd, &cev, &ufd, &uev);
			/* Only sockets we want something from: a peer that hung up would otherwise
			 * report POLLHUP on every pass while we wait on the other side, and poll()
			 * refuses more entries than RLIMIT_NOFILE allows. */
			if (cev) {
				pfds[npfd] = (struct pollfd){ .fd = cfd, .events = cev };
				pslot[npfd] = i;
				pside[npfd++] = 0;
			}
			if (uev && ufd >= 0) {
				pfds[npfd] = (struct pollfd){ .fd = ufd, .events = uev };
				pslot[npfd] = i;
				pside[npfd++] = 1;
			}
		}
		timeout = (int)(next_tick - loop_now_ms());
		if (timeout < 0)
			timeout = 0;
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
		}
		if (pfds[1].revents) {
			resolve_drain();
			for (i = 0; i < table_size; i++)
				if (table[i] && conn_state(table[i]) == CS_RESOLVE)
					conn_resolved(table[i]);
		}
		for (i = 2; i < 2 + SERVER_WATCH_MAX; i++)
			if (pfds[i].revents && watches[-100 - pslot[i]].cb)
				watches[-100 - pslot[i]].cb();
		for (; i < npfd && pslot[i] <= -3 && pslot[i] > -100; i++)
			if (pfds[i].revents && !srv.draining)
				accept_some(&listeners[-3 - pslot[i]]);
		while (i < npfd) {
			/* A connection's entries are adjacent: gather both sides' events. */
			int slot = pslot[i];
			short rev[2] = { 0, 0 };
			struct conn *c = table[slot];
			for (; i < npfd && pslot[i] == slot; i++)
				rev[pside[i]] |= pfds[i].revents;
			/* A connection handled earlier in this pass may have closed; an accept in
			 * this pass may have reused its slot (then it has no events here). */
			if (c == NULL || (!rev[0] && !rev[1]))
				continue;
			conn_events(c, rev[0], rev[1]);
		}
		if (srv.now_ms >= next_tick) {
			tick();
			if (srv.on_tick)
				srv.on_tick();
			next_tick = srv.now_ms + SERVER_TICK_MS;
		}
		if (srv.draining && (srv.nconns == 0 || srv.now_ms >= drain_deadline)) {
			for (i = 0; i < table_size; i++)
				if (table[i])
					conn_close(table[i], "shutdown timeout");
			return 0;
		}
	}
}

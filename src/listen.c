/*
 * listen.c — listeners, trusted proxies, accepting. See listen.h.
 *
 * The listeners and the accept pause are the loop's own state (one loop per process).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "err.h"
#include "listen.h"
#include "log.h"
#include "proxyproto.h"

struct listener {
	int fd;
	int tls;                 /* conn_new's kind: CONN_PLAIN, CONN_TLS or CONN_ADMIN */
	int pp;                  /* proxyProtocol: trusted peers only, a PROXY header first */
	const char *name;
	char addr[NET_ADDR_TEXT];
};

static struct listener listeners[LISTEN_MAX];
static int nlisteners;
static struct pp_cidr trusted[CFG_LIST_MAX]; /* trustedProxies, read once at start */
static int ntrusted;
static int64_t accept_paused_until;

/* The listeners in the order of fds[] everywhere: listen_bind_set, the hand-off names. */
static const struct {
	const char *name;
	int tls;
} kinds[LISTEN_MAX] = { { "https", CONN_TLS }, { "http", CONN_PLAIN }, { "admin", CONN_ADMIN } };

/* The address cfg gives listener k ("" = off). */
static const char *
kind_addr(const struct config *cfg, int k)
{
	return k == 0 ? cfg->https_listen : k == 1 ? cfg->http_listen : cfg->admin_listen;
}

/* The listening sockets handed over by the binary we replace, by a supervisor, or by
 * systemd socket activation: LISTEN_PID is us, LISTEN_FDS sockets from fd 3 on,
 * LISTEN_FDNAMES their names ("https:http:admin"); a supervisor hands its successor one
 * set per worker, the names repeated ("https:http:https:http"). Read once, at the first
 * use (run_main, before this process starts anyone: a worker or successor is a new
 * program that reads its own environment), into this table, which inherited(),
 * listen_inherited_sets() and listen_close_unadopted() read. */
static struct {
	int read;                                /* the environment was read */
	int ours;                                /* LISTEN_PID named this process */
	int n;                                   /* sockets handed over: fd 3 .. 3 + n - 1 */
	signed char kind[LISTEN_INHERIT_MAX];    /* fd 3 + i's name: index in kinds[], or -1 */
	unsigned char adopted[LISTEN_INHERIT_MAX]; /* fd 3 + i taken by a listener */
} handed;

/* Fill `handed` from the environment (once). No LISTEN_PID, or another process's: none. */
static void
read_handed(void)
{
	const char *pid = getenv("LISTEN_PID"), *nfd = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	int n, i, k;

	if (handed.read)
		return;
	handed.read = 1;
	if (!pid || !nfd || atol(pid) != (long)getpid())
		return;
	handed.ours = 1;
	n = atoi(nfd);
	handed.n = n < 0 ? 0 : n > LISTEN_INHERIT_MAX ? LISTEN_INHERIT_MAX : n;
	for (i = 0; i < handed.n; i++) {
		size_t len = names ? strcspn(names, ":") : 0;
		handed.kind[i] = -1;
		for (k = 0; names && k < LISTEN_MAX; k++)
			if (len == strlen(kinds[k].name) && strncmp(names, kinds[k].name, len) == 0)
				handed.kind[i] = (signed char)k;
		if (names)
			names += len + (names[len] == ':');
	}
}

/* The fd of the nth socket handed over for listener kind k, made close-on-exec and
 * non-blocking, or -1. */
static int
inherited(int k, int nth)
{
	int i;

	read_handed();
	for (i = 0; i < handed.n; i++) {
		if (handed.kind[i] == k && nth-- == 0) {
			int fd = 3 + i;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			handed.adopted[i] = 1;
			return fd;
		}
	}
	return -1;
}

/* see listen.h */
int
listen_inherited_sets(void)
{
	int i, sets[LISTEN_MAX] = { 0 }, most = 0;

	read_handed();
	for (i = 0; i < handed.n; i++)
		if (handed.kind[i] >= 0 && ++sets[handed.kind[i]] > most)
			most = sets[handed.kind[i]];
	return most;
}

/* see listen.h */
void
listen_close_unadopted(void)
{
	int i;

	read_handed();
	if (!handed.ours)
		return;
	for (i = 0; i < handed.n; i++)
		if (!handed.adopted[i])
			close(3 + i);
	handed.ours = 0; /* handed over no more, as the environment below says */
	handed.n = 0;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
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

/* proxyProtocol is on and the peer is not a trusted proxy: closed at once (docs/configuration.md). */
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

/* see listen.h */
int
listen_bind_set(const struct config *cfg, int nth, int reuseport, int fds[LISTEN_MAX], char *err,
    size_t errlen)
{
	int k;

	for (k = 0; k < LISTEN_MAX; k++)
		fds[k] = -1;
	for (k = 0; k < LISTEN_MAX; k++) {
		const char *text = kind_addr(cfg, k);
		struct net_addr a;

		if (!text[0])
			continue;
		if (net_parse_listen(text, &a) != ERR_OK) {
			snprintf(err, errlen, "%s listener: cannot parse %s", kinds[k].name, text);
			return ERR_INVAL;
		}
		fds[k] = inherited(k, nth);
		if (fds[k] < 0)
			fds[k] = net_listen(&a, reuseport);
		if (fds[k] < 0) {
			snprintf(err, errlen, "%s listener: cannot listen on %s: %s", kinds[k].name, text,
			    strerror(errno));
			while (k-- > 0)
				if (fds[k] >= 0)
					close(fds[k]);
			return ERR_IO;
		}
	}
	return ERR_OK;
}

/* see listen.h */
const char *
listen_kind_name(int k)
{
	return k >= 0 && k < LISTEN_MAX ? kinds[k].name : "";
}

/* see listen.h */
int
listen_open(const struct config *cfg, char *err, size_t errlen)
{
	int fds[LISTEN_MAX], k, rc;

	if (cfg->proxy_protocol && load_trusted(cfg, err, errlen) != ERR_OK)
		return ERR_INVAL;
	if ((rc = listen_bind_set(cfg, 0, cfg->workers != 1, fds, err, errlen)) != ERR_OK)
		return rc;
	for (k = 0; k < LISTEN_MAX; k++) {
		if (fds[k] < 0)
			continue;
		listeners[nlisteners].fd = fds[k];
		listeners[nlisteners].tls = kinds[k].tls;
		listeners[nlisteners].pp = cfg->proxy_protocol && kinds[k].tls != CONN_ADMIN; /* both proxy listeners */
		listeners[nlisteners].name = kinds[k].name;
		snprintf(listeners[nlisteners].addr, NET_ADDR_TEXT, "%.*s", NET_ADDR_TEXT - 1,
		    kind_addr(cfg, k));
		nlisteners++;
	}
	return ERR_OK;
}

/* see listen.h */
int
listen_count(void)
{
	return nlisteners;
}

/* see listen.h */
int
listen_fd(int i)
{
	return i >= 0 && i < nlisteners ? listeners[i].fd : -1;
}

/* see listen.h */
int
listen_paused(int64_t now)
{
	return now < accept_paused_until;
}

/* see listen.h */
int
listen_accept(int i, int64_t now, int nconns, struct listen_conn *out)
{
	struct listener *l = &listeners[i];

	out->fd = net_accept(l->fd, &out->peer);
	if (out->fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Out of descriptors: the pending connection stays in the backlog and keeps
			 * the listener readable, so polling it again would spin. Pause accepting
			 * for a moment; closing connections free descriptors. */
			struct log_rec r;
			accept_paused_until = now + LISTEN_EMFILE_PAUSE_MS;
			if (log_begin(&r, LOG_WARN, "accept.pause")) {
				log_str(&r, "reason", strerror(errno));
				log_int(&r, "connections", nconns);
				log_end(&r);
			}
		}
		return 0;
	}
	if (l->pp && !pp_cidr_match(trusted, ntrusted, &out->peer)) {
		refuse_untrusted(l, out->fd, &out->peer);
		out->fd = -1;
		return 1;
	}
	out->kind = l->tls;
	out->pp = l->pp;
	return 1;
}

/* see listen.h */
void
listen_close_all(void)
{
	int i;

	for (i = 0; i < nlisteners; i++)
		close(listeners[i].fd);
	nlisteners = 0;
}

/* see listen.h */
int
listen_fds(int *fds, const char **names, int max)
{
	int i;

	for (i = 0; i < nlisteners && i < max; i++) {
		fds[i] = listeners[i].fd;
		names[i] = listeners[i].name;
	}
	return i;
}

/*
 * listen.h — the listening sockets and accepting from them: the https, http and admin
 * listeners (bound here, or inherited from the binary we replace or from systemd), the
 * PROXY protocol's trustedProxies, and the EMFILE pause.
 *
 * Owns: the listeners (open, close, hand-off), who may connect at all (with proxyProtocol
 * a source outside trustedProxies is closed at accept, before a byte is read: docs/configuration.md),
 * accepting in bursts without spinning when descriptors run out. Must not touch:
 * connections (the loop creates them from what listen_accept returns), capacity
 * (maxConnections and the admin cap are the loop's).
 */
#ifndef RELAYPRO_LISTEN_H
#define RELAYPRO_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

#define LISTEN_MAX 3               /* https, http, admin */
#define LISTEN_EMFILE_PAUSE_MS 500 /* accepting pauses this long when descriptors run out */
#define LISTEN_INHERIT_MAX 200     /* handed-over sockets looked at (64 workers x 3) */

/* One accepted connection. */
struct listen_conn {
	int fd;
	struct net_addr peer;
	int kind;                  /* conn_new's: CONN_TLS, CONN_PLAIN or CONN_ADMIN */
	int pp;                    /* a PROXY protocol header comes first (peer is trusted) */
};

/* Bind (or inherit) the listeners cfg names, accept from them from now on, and read
 * trustedProxies. ERR_OK or an error with a message naming the listener. */
int listen_open(const struct config *cfg, char *err, size_t errlen);

/* One set of the listeners cfg names, opened but not accepted from (a supervisor's, one
 * per worker): fds[k] for listener k (0 https, 1 http, 2 admin; -1 when cfg names none) —
 * the nth set handed over to this process if there is one, else bound now (SO_REUSEPORT
 * when reuseport, so that each worker's set shares the ports with the others). On an
 * error nothing stays open; ERR_OK or an error with a message naming the listener. */
int listen_bind_set(const struct config *cfg, int nth, int reuseport, int fds[LISTEN_MAX],
    char *err, size_t errlen);

/* The name of listener k in hand-offs ("https", "http", "admin"). */
const char *listen_kind_name(int k);

/* How many sets of listening sockets were handed to this process (the most times one name
 * occurs in LISTEN_FDNAMES; 0 when none were). */
int listen_inherited_sets(void);

/* Once the listeners are open: close the handed-over descriptors no listener took (a
 * listener the configuration no longer names), and forget LISTEN_* so nothing this
 * process starts sees them. */
void listen_close_unadopted(void);

/* How many listeners are open; the fd of listener i (-1 once closed). */
int listen_count(void);
int listen_fd(int i);

/* 1 while accepting is paused after EMFILE and the like. */
int listen_paused(int64_t now);

/* Take one connection from listener i's backlog: 1 with *out filled — out->fd < 0 when it
 * was refused here (with proxyProtocol, a source outside trustedProxies: closed and logged
 * as proxyproto.untrusted) — or 0 when none is waiting or descriptors ran out (accepting
 * then pauses for LISTEN_EMFILE_PAUSE_MS, logged as accept.pause). nconns: for the log. */
int listen_accept(int i, int64_t now, int nconns, struct listen_conn *out);

/* Close every listener (a drain: the kernel stops queueing new clients). */
void listen_close_all(void);

/* The listening sockets and their names ("https", "http", "admin"), to hand to a new
 * binary or to workers. Returns how many (at most max). */
int listen_fds(int *fds, const char **names, int max);

#endif

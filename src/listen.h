/*
 * listen.h — the listening sockets and accepting from them: the https, http and admin
 * listeners (bound here, or inherited from the binary we replace or from systemd), the
 * PROXY protocol's trustedProxies, and the EMFILE pause.
 *
 * Owns: the listeners (open, close, hand-off), who may connect at all (with proxyProtocol
 * a source outside trustedProxies is closed at accept, before a byte is read: SPEC §2.1),
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

/* One accepted connection. */
struct listen_conn {
	int fd;
	struct net_addr peer;
	int kind;                  /* conn_new's: CONN_TLS, CONN_PLAIN or CONN_ADMIN */
	int pp;                    /* a PROXY protocol header comes first (peer is trusted) */
};

/* Bind (or inherit) the listeners cfg names and read trustedProxies. ERR_OK or an error
 * with a message naming the listener. */
int listen_open(const struct config *cfg, char *err, size_t errlen);

/* How many listeners listen_open inherited (from the binary it replaces, or systemd). */
int listen_inherited(void);

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

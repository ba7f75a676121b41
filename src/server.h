/*
 * server.h — the process's loop: the connection table, the passes (wait, signals, watches,
 * accepts, connection events, the deadline tick), graceful stop; the listeners (listen.h)
 * and the poll set (pollset.h) behind it. The process side (run.c) owns the struct relay
 * and hands it to server_run; the loop keeps its clock current and gives each connection
 * a const pointer to it at accept.
 */
#ifndef RELAYPRO_SERVER_H
#define RELAYPRO_SERVER_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "relay.h"

#define SERVER_TICK_MS 250     /* deadlines are checked this often */
#define SERVER_RESERVE 64      /* connections accepted past maxConnections to say 503 */
#define SERVER_ACCEPT_BURST 64 /* accepts per listener per loop pass */
#define SERVER_ADMIN_MAX 8     /* admin connections at once (outside maxConnections) */
#define SERVER_WATCH_MAX 4     /* fds watched for the process side (registration, the
                                * upgrade hand-off, a supervisor's workers) */

/* What the process side gives the loop (run.c, workers.c). Every hook is called between
 * two passes' connection work, never while a connection's callback runs, with ctx; any
 * may be NULL. */
struct server_hooks {
	void *ctx;
	void (*reload)(void *ctx);   /* SIGHUP (not once stopping) */
	void (*upgrade)(void *ctx);  /* SIGUSR2 (not once stopping) */
	void (*child)(void *ctx);    /* SIGCHLD */
	void (*stop)(void *ctx);     /* SIGTERM/SIGINT, just before the loop drains */
	void (*tick)(void *ctx);     /* every SERVER_TICK_MS */
	int (*busy)(void *ctx);      /* once stopping: nonzero keeps the loop running after its
	                              * last connection has gone (a supervisor's workers) */
};

/* Poll fd for POLLIN and call cb(arg) when it is readable (registration results, the
 * upgrade handshake, workers' readiness). ERR_NOSPACE when SERVER_WATCH_MAX are watched.
 * server_unwatch before closing fd: the epoll backend takes a socket out of its set by
 * its number (pollset.h, "Sockets and closing"). */
int server_watch(int fd, void (*cb)(void *arg), void *arg);
void server_unwatch(int fd);

/* Graceful stop (SIGTERM): close the listeners at once (a late client is refused), refuse
 * new tunnels, close the connections that have not sent a byte of a request; the rest
 * drain. Connections still open after shutdownTimeout are closed; the loop ends once none
 * is left and hooks->busy is 0. After server_handover it turns the hand-off into a stop. */
void server_begin_drain(const char *why);

/* The hand-off of an upgrade (or, in a worker, of its supervisor's upgrade): another
 * process accepts from now on. Close the listeners at once — the sockets stay open in the
 * process that took them, so nothing waiting in their queues is lost — and serve every
 * connection this process accepted to its end: handshakes finish, heads are read, tunnels
 * open and run. Connections still open after shutdownTimeout are closed; the loop ends
 * once none is left and hooks->busy is 0. No STOPPING=1: the service goes on. */
void server_handover(const char *why);

/* Revocation (docs/configuration.md, "Reload"): judge every admitted connection again
 * against the configuration, policy and password file of the loop's relay now
 * (admit_recheck) and close those no longer accepted — tunnel.close reason "revoked",
 * with the cause as "detail". Call after a successful reload has put the new
 * configuration in place; the loop also calls it when the migration window ends by time. */
void server_revalidate(void);

/* Run the loop over rl (the process's shared state, given to every connection as a const
 * pointer; the loop keeps its clock, pid, listening and draining current) until a stop or
 * a hand-off has drained. Returns the exit code. */
int server_run(struct relay *rl, const struct server_hooks *hooks);

#endif

/*
 * server.h — the process's loop: the connection table, the passes (wait, signals, watches,
 * accepts, connection events, the deadline tick), graceful stop; the listeners (listen.h)
 * and the poll set (pollset.h) behind it. It owns the process's struct relay (`srv`,
 * relay.h), which main fills and the loop keeps current; connections get a const pointer
 * to it at accept and never name `srv`.
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
#define SERVER_WATCH_MAX 4     /* fds watched for main (registration, upgrade hand-off) */

/* Poll fd for POLLIN and call cb when it is readable (registration results, the upgrade
 * handshake). ERR_NOSPACE when SERVER_WATCH_MAX are watched already. server_unwatch
 * before closing fd: the epoll backend takes a socket out of its set by its number
 * (pollset.h, "Sockets and closing"). */
int server_watch(int fd, void (*cb)(void));
void server_unwatch(int fd);

/* Stop accepting (close the listeners), close connections still waiting for a head, and
 * end the loop once the rest have closed or shutdownTimeout has passed. */
void server_begin_drain(const char *why);

/* The listening sockets and their names ("https", "http", "admin"), to hand to a new
 * binary or to workers. */
int server_listeners(int *fds, const char **names, int max);

extern struct relay srv;

/* Bind the listeners of cfg. ERR_OK or a message in err. */
int server_listen(const struct config *cfg, char *err, size_t errlen);

/* Build srv's target policy from cfg; start the resolver for its names (relay_set_policy). */
int server_set_policy(const struct config *cfg, char *err, size_t errlen);

/* Revocation (docs/configuration.md, "Reload"): judge every admitted connection again
 * against the configuration, policy and password file in srv now (admit_recheck) and
 * close those no longer accepted — tunnel.close reason "revoked", with the cause as
 * "detail". Call after a successful reload has put the new configuration in place; the
 * loop also calls it when the migration window ends by time. */
void server_revalidate(void);

/* Run until SIGTERM/SIGINT and the drain that follows. Returns the exit code. */
int server_run(void);

#endif

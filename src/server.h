/*
 * server.h — the process's relay: listeners, the connection table, the poll() loop,
 * timers, signals and graceful stop; plus the shared state connections read (config,
 * target policy, credentials, clock).
 */
#ifndef RELAYPRO_SERVER_H
#define RELAYPRO_SERVER_H

#include <stdint.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "target.h"
#include "upstream.h"

#define SERVER_TICK_MS 250     /* deadlines are checked this often */
#define SERVER_RESERVE 64      /* connections accepted past maxConnections to say 503 */
#define SERVER_ACCEPT_BURST 64 /* accepts per listener per loop pass */
#define SERVER_EMFILE_PAUSE_MS 500
#define SERVER_ADMIN_MAX 8     /* admin connections at once (outside maxConnections) */

struct server {
	const struct config *cfg;
	struct target_policy policy;
	struct upstream_routes routes;    /* proxyEnabled: HTTPS_PROXY / HTTP_PROXY / NO_PROXY */
	const struct auth_users *users;   /* NULL without a password file */
	int ca_loaded;
	int64_t now_ms;                   /* monotonic, updated once per loop pass */
	time_t now;                       /* wall clock, same pass */
	int nconns;
	int draining;
	long pid;                         /* this process (a worker, with workers > 1) */
	void (*on_reload)(void);          /* SIGHUP: set by main */
	void (*on_upgrade)(void);         /* SIGUSR2: set by main */
	void (*on_child)(void);           /* SIGCHLD: set by main */
	void (*on_tick)(void);            /* every tick: set by main */
};

#define SERVER_WATCH_MAX 4

/* Poll fd for POLLIN and call cb when it is readable (registration results, the upgrade
 * handshake). ERR_NOSPACE when SERVER_WATCH_MAX are watched already. */
int server_watch(int fd, void (*cb)(void));
void server_unwatch(int fd);

/* Stop accepting (close the listeners), close connections still waiting for a head, and
 * end the loop once the rest have closed or shutdownTimeout has passed. */
void server_begin_drain(const char *why);

/* The listening sockets and their names ("https", "http", "admin"), to hand to a new
 * binary or to workers. */
int server_listeners(int *fds, const char **names, int max);

extern struct server srv;

/* Bind the listeners of cfg. ERR_OK or a message in err. */
int server_listen(const struct config *cfg, char *err, size_t errlen);

/* Build the target policy from cfg; start the resolver for its names. */
int server_set_policy(const struct config *cfg, char *err, size_t errlen);

/* Run until SIGTERM/SIGINT and the drain that follows. Returns the exit code. */
int server_run(void);

/* Connections register and unregister themselves: add returns the slot (or ERR_NOSPACE),
 * which the connection passes back to remove. */
int server_add_conn(struct conn *c);
void server_remove_conn(int slot);

/* 1 when /readyz should answer 200; reason set otherwise. */
int server_ready(const char **reason);

#endif

/*
 * relay.h — the relay's shared state: what every connection reads and never writes.
 *
 * Owns: the struct that carries the configuration, the target policy, the upstream-proxy
 * routes, the password file's users, this loop pass's clock and whether the relay is
 * stopping; building the policy from a configuration (relay_set_policy); readiness
 * (relay_ready: also 503 once the served certificate has expired, tls.h). Must not touch: sockets, connections, the poll set.
 *
 * One instance per process, in the process side's struct proc (proc.h), handed to the
 * loop explicitly (server_run). Connection code is given a const pointer to
 * it at accept (conn_new) and reaches the shared state only through that pointer — never
 * through a global. The loop updates now_ms/now once per pass, listening when it stops
 * accepting and draining at SIGTERM; a reload (reload.c) replaces cfg, policy and users
 * between passes, never while a connection's callback runs.
 */
#ifndef RELAYPRO_RELAY_H
#define RELAYPRO_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "target.h"
#include "upstream.h"

struct relay {
	const struct config *cfg;
	struct target_policy policy;
	struct upstream_routes routes;    /* proxyEnabled: HTTPS_PROXY / HTTP_PROXY / NO_PROXY */
	const struct auth_users *users;   /* NULL without a password file */
	int ca_loaded;
	int listening;                    /* listening sockets open (readiness) */
	int64_t now_ms;                   /* monotonic, updated once per loop pass */
	time_t now;                       /* wall clock, same pass */
	int draining;                     /* stopping: no new tunnels */
	long pid;                         /* this process (a worker, with workers > 1) */
};

/* Build rl->policy from cfg and give the resolver its names; the upstream routes are read
 * from the environment the first time (they cannot change in a running process) and only
 * switched on or off by proxyEnabled afterwards. ERR_OK or ERR_INVAL with a message. */
int relay_set_policy(struct relay *rl, const struct config *cfg, char *err, size_t errlen);

/* 1 when /readyz should answer 200; *reason set (static text) otherwise. */
int relay_ready(const struct relay *rl, const char **reason);

#endif

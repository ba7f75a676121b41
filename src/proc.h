/*
 * proc.h — the process side's state and the steps its parts share.
 *
 * Owns: struct proc — the running configuration and the next one a reload reads, the CA
 * bundle, the password file's users, the struct relay that connections read, the
 * registration hand-off, this binary's path, an upgrade under way — and the steps of the
 * start that the one-shot commands share: reading the configuration, relayProId, the CA
 * bundle, start-up failures, the open-files limit, registering in the background. Must
 * not touch: connections, the loop's table, sockets' bytes.
 *
 * One struct proc per process, made by main() (static storage: it is large) and handed
 * explicitly to the start order (run.c), the reload (reload.c) and the supervisor of
 * workers (workers.c); nothing reaches it through a global. Connections see only
 * `rl`, through a const pointer the loop gives them.
 *
 * Registration (docs/configuration.md) runs on its own thread (register.h); its result comes back
 * through a pipe the loop watches, and is applied on the loop (proc_register_start).
 */
#ifndef RELAYPRO_PROC_H
#define RELAYPRO_PROC_H

#include "auth.h"
#include "ca.h"
#include "config.h"
#include "relay.h"
#include "spawn.h"
#include "upgrade.h"

#define PROC_EXIT_USAGE 2 /* bad usage or configuration */

struct proc {
	struct config cfg;             /* the running configuration (rl.cfg points here) */
	struct config next;            /* a reload reads the file into this first */
	struct ca ca;
	struct auth_users users[2];    /* running and next: swapped by a reload */
	int cur_users;
	struct relay rl;               /* what connections read, through a const pointer */
	int reg_pipe[2];               /* registration thread -> loop */
	void (*registered)(void *ctx); /* after a registration was applied (a supervisor tells
	                                * its workers), or NULL; with registered_ctx */
	void *registered_ctx;
	struct spawn_self self;        /* this binary, to start it again (spawn.h) */
	struct spawn_child child;      /* what the process that started this one handed over:
	                                * child.worker >= 0 in a supervisor's worker */
	struct upgrade up;             /* a SIGUSR2 upgrade under way (upgrade.h) */
};

/* Read the configuration (-c path, $RELAYPRO_CONFIG, ...) into p->cfg. 0, or
 * PROC_EXIT_USAGE with the one line naming file, line and key on stderr. */
int proc_load_config(struct proc *p, const char *cli_path);

/* relayProId generated and saved into the config file when missing (docs/configuration.md). */
void proc_ensure_id(struct proc *p);

/* Load (or create) the CA bundle the configuration names. 0, or 1 with the reason on
 * stderr. */
int proc_load_ca(struct proc *p);

/* A start-up failure: one line on stderr (and start.fail in the log when it is a file).
 * Returns 1. */
int proc_fail(const char *what, const char *detail);

/* Raise the open-files soft limit to the hard one; warn when it holds fewer tunnels than
 * maxConnections (docs/design.md). */
void proc_raise_nofile(const struct config *cfg);

/* Register in the background when a deployment token is set and no security token is
 * (docs/configuration.md); the result is saved and applied on the loop, then p->registered runs. 0, or
 * -1 when registration could not start. */
int proc_register_start(struct proc *p);

/* Wipe and free everything p holds (at exit). */
void proc_wipe(struct proc *p);

#endif

/*
 * workers.h — `workers = N|auto` (docs/design.md): the supervisor process.
 *
 * Owns: the listening sockets of every worker — one set each (https, http, admin), bound
 * here with SO_REUSEPORT before the privilege drop, or taken over from the supervisor this
 * one replaces — starting the workers (spawn.h: each gets its own set and the shared
 * region), restarting one that dies (logged; at most once a second per worker) and
 * clearing what it left in the shared region, forwarding SIGHUP and a registration,
 * reporting ready once every worker is, stopping them (SIGTERM), and the supervisor's
 * upgrade. Must not touch: connections (the supervisor accepts none) and the workers'
 * configuration (each reads its own).
 *
 * The supervisor keeps every worker's sockets open for its whole life, and that is what
 * keeps every accepted-by-the-kernel connection: a SO_REUSEPORT socket closed with
 * connections in its accept queue resets them, so a worker that dies leaves its socket
 * (and its queue) to the replacement it is handed to; on an upgrade the new supervisor
 * takes every set (LISTEN_FDNAMES names them once per set) and hands set i to its worker
 * i, while the old workers are told to hand over (SIGUSR2: stop accepting, serve what
 * they accepted to its end). Only a stop closes the sockets, all at once.
 *
 * The supervisor runs on the same loop as a worker (server.c) with no listener of its own:
 * signals are the loop's, the workers' readiness pipe (one for all: each report names its
 * worker) and the registration pipe its watches, restarts and deadlines its ticks.
 */
#ifndef RELAYPRO_WORKERS_H
#define RELAYPRO_WORKERS_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "listen.h"
#include "proc.h"
#include "shm.h"

#define WORKERS_MAX SHM_WORKERS_MAX
#define WORKERS_RESTART_MS 1000  /* a worker is restarted at most this often */

struct worker {
	pid_t pid;                          /* 0: not running */
	int ready;                          /* it reported ready since it was started */
	int64_t started, restart_at;        /* monotonic ms */
};

struct workers {
	struct proc *p;
	int n;                              /* workers */
	int nsets;                          /* listener sets: worker i takes set i % nsets */
	int sets[WORKERS_MAX][LISTEN_MAX];  /* -1: not configured, or closed */
	struct worker w[WORKERS_MAX];
	int ready_pipe[2];                  /* every worker reports ready on it ('R', index) */
	int stopping, reported;
	int64_t deadline;                   /* stopping: SIGKILL what is left by then */
};

/* How many workers cfg asks for: `workers`, or the CPUs for auto (0); 1 .. WORKERS_MAX. */
int workers_count(const struct config *cfg);

/* Before the privilege drop: n workers' listening sockets — the sets handed over to this
 * process (then max(n, their number) workers), else n sets bound now. ERR_OK or an error
 * with a message naming the listener. */
int workers_listen(struct workers *ws, const struct config *cfg, int n, char *err,
    size_t errlen);

/* Supervise ws->n workers on the loop until a stop or an upgrade has drained them.
 * Returns the exit code. */
int workers_run(struct workers *ws, struct proc *p);

#endif

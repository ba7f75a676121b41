/*
 * upgrade.h — the binary upgrade (SIGUSR2, docs/design.md), the old process's side.
 *
 * Owns: starting the binary found at the path this one was started from (spawn.h) with
 * the listening sockets, waiting for it to report ready (its pipe, watched by the loop),
 * giving up after UPGRADE_READY_MS or when it exits first (the old process keeps serving:
 * upgrade.fail), and telling systemd the new main PID. Must not touch: what handing over
 * means for the connections (the loop's server_handover) or for workers (workers.c):
 * that is the `ready` callback's.
 *
 * One upgrade at a time. The new process reports ready once it serves (spawn_report_ready);
 * until then both processes hold the same listening sockets and the old one still
 * accepts, so no connection is refused; after it, the old one stops accepting and serves
 * what it accepted to its end (server_handover), while the sockets stay open in the new
 * one with whatever waits in their queues.
 */
#ifndef RELAYPRO_UPGRADE_H
#define RELAYPRO_UPGRADE_H

#include <stdint.h>
#include <sys/types.h>

#include "spawn.h"

#define UPGRADE_READY_MS 10000  /* the new binary's time to report ready */

struct upgrade {
	pid_t pid;                 /* the new binary while it starts (0: none) */
	int fd;                    /* its readiness pipe (read end), -1 when none */
	int64_t deadline;          /* monotonic ms */
	void (*ready)(void *ctx);  /* the new binary serves: hand over */
	void *ctx;
};

/* Before anything else: no upgrade under way; ready(ctx) is what handing over does. */
void upgrade_init(struct upgrade *u, void (*ready)(void *ctx), void *ctx);

/* SIGUSR2: start self with the listening sockets fds[0..n) named names[] (every set, for
 * a supervisor). Logs upgrade.start, or upgrade.fail when it cannot start it. */
void upgrade_start(struct upgrade *u, const struct spawn_self *self, const int *fds,
    const char *const *names, int n, int64_t now);

/* Every tick: give up on a new binary that is not ready by its deadline. */
void upgrade_tick(struct upgrade *u, int64_t now);

#endif

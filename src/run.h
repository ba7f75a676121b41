/*
 * run.h — `relaypro run`: the start order of the relay, its run, its stop.
 *
 * Owns: the order in which the relay comes up (configuration, log, limits, signals,
 * password file, CA bundle, TLS, targets, listeners, the shared region, the privilege
 * drop, the resolver, registration, readiness), whether this process serves (the relay,
 * or a supervisor's worker) or supervises workers (workers.h), the loop's hooks for a
 * process that serves (SIGHUP: reload.h; SIGUSR2: upgrade.h, or in a worker the hand-off
 * its supervisor asks for), and the orderly stop. Must not touch: connections (the loop's)
 * or the command line (main.c).
 *
 * Root is needed up to the privilege drop (listeners, CA bundle, log file); the drop comes
 * before any thread starts (priv.h). Readiness (systemd's READY=1, an upgrading parent's
 * pipe) is reported once the loop is about to serve.
 */
#ifndef RELAYPRO_RUN_H
#define RELAYPRO_RUN_H

#include "proc.h"

/* Run the relay with the configuration -c cli_path (or the default places) until a
 * graceful stop or a hand-off has drained. Returns the exit code: 0, 1 (a runtime
 * failure at start) or PROC_EXIT_USAGE (bad configuration). */
int run_main(struct proc *p, const char *cli_path);

#endif

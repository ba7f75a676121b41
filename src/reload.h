/*
 * reload.h — SIGHUP (docs/configuration.md): the configuration read again and applied between two passes
 * of the loop.
 *
 * Owns: which keys a reload applies and which need a restart (logged as such), refusing a
 * bad configuration or password file while keeping the running one, the switch of
 * configuration, target policy and users in struct proc, systemd's RELOADING=1 / READY=1
 * around it, config.reload. Must not touch: open connections — they read the new state
 * through their const struct relay from the next pass on.
 */
#ifndef RELAYPRO_RELOAD_H
#define RELAYPRO_RELOAD_H

#include "proc.h"

/* SIGHUP in a process that serves (the relay, or a worker). */
void reload_run(struct proc *p);

#endif

/*
 * probe.h — `relaypro health [-c FILE] [--ready]`: the container health check a FROM
 * scratch image can run (it has no curl): GET /healthz, or /readyz with --ready, on the
 * configured admin listener, from inside the container.
 *
 * The address is [admin] listen (RELAYPRO_ADMIN_LISTEN) with a wildcard address
 * (0.0.0.0, [::]) replaced by the loopback address of its family. One blocking exchange,
 * at most PROBE_TIMEOUT_MS in all; the answer's status line decides. Exit 0 on 200, 1 on
 * any other answer or none (the reason on stderr, e.g. `503 {"status":"not_ready",...}`),
 * 2 when the configuration is bad or has no admin listener.
 */
#ifndef RELAYPRO_PROBE_H
#define RELAYPRO_PROBE_H

#include <stdint.h>

#include "net.h"

#define PROBE_TIMEOUT_MS 3000
#define PROBE_NOT_MINE (-1)

/* main's argv: the command word (past -c FILE), or NULL. */
const char *probe_command(int argc, char **argv);

/* 1 when -h, --help or --version is given: main prints the usage from its table (or the
 * version), so a command that asks the admin listener leaves it to main. */
int probe_asks_usage(int argc, char **argv);

/* For the commands that ask the admin listener (health, sessions): load the configuration
 * (cli: -c FILE or NULL) and give its admin address in *a, a wildcard address replaced by
 * the loopback address of its family. 0, or 2 after one line on stderr (a bad
 * configuration, or no admin listener; cmd names the command). */
int probe_admin_addr(const char *cli, const char *cmd, struct net_addr *a);

/* A blocking connect to a, waiting at most until deadline (loop_now_ms clock): the socket
 * (non-blocking), or -1 with why. */
int probe_connect(const struct net_addr *a, int64_t deadline, char *why, size_t cap);

/* Wait for fd to be ready for events until deadline (loop_now_ms clock): 1 ready, 0 not. */
int probe_wait(int fd, short events, int64_t deadline);

/* Given main's whole argv: PROBE_NOT_MINE when the command word is not "health", or -h,
 * --help or --version is given (main goes on: it prints the usage from its table), else
 * the exit status above. */
int probe_main(int argc, char **argv);

#endif

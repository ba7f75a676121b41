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

#define PROBE_TIMEOUT_MS 3000
#define PROBE_NOT_MINE (-1)

/* Given main's whole argv: PROBE_NOT_MINE when the command word is not "health", or -h,
 * --help or --version is given (main goes on: it prints the usage from its table), else
 * the exit status above. */
int probe_main(int argc, char **argv);

#endif

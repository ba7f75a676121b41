/*
 * metrics.h — the relay's counters and gauges, and their rendering in the Prometheus text
 * exposition format 0.0.4, served by the admin listener as GET /metrics (SPEC §2.1).
 *
 * Storage is static and fixed: one integer per series, the per-target series in a table
 * of METRICS_TARGETS_MAX entries plus one `other`; nothing is allocated per event.
 * Updates are one-line hooks where things happen (conn.c, server.c, main.c, register.c).
 *
 * Threads: every function runs on the loop thread, except metrics_registration() and
 * metrics_registration_failed(), which the registration thread calls; those two use
 * atomic operations, and the renderer reads their values atomically.
 *
 * Labels carry no secrets and nothing a client chose freely: listener names, a fixed set
 * of auth-failure reasons and registration states, and targets that passed the allow-list
 * (so they are configured hosts and ports, in target.c's normal form). Values are
 * escaped anyway (backslash, double quote, newline), as the format requires.
 *
 * With workers > 1 every worker process has its own counters; a scrape of the shared
 * admin socket reaches one worker (relaypro_worker_info says which), and every sample
 * then carries a worker="N" label so that different workers' counters never mix in one
 * series (which Prometheus would read as counter resets).
 */
#ifndef RELAYPRO_METRICS_H
#define RELAYPRO_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "target.h"

#define METRICS_TARGETS_MAX 16        /* target series; later targets count as "other" */
#define METRICS_RENDER_MAX (25 * 1024) /* the longest /metrics body (all series at their
                                        * longest; checked by the unit tests) */

enum metrics_listener { METRICS_HTTPS, METRICS_HTTP, METRICS_ADMIN, METRICS_LISTENERS };

enum metrics_reg {
	METRICS_REG_UNCONFIGURED, /* neither securityToken nor deploymentToken */
	METRICS_REG_REGISTERING,  /* deploymentToken set, no answer yet */
	METRICS_REG_RETRYING,     /* an attempt failed; backing off and trying again */
	METRICS_REG_REGISTERED,   /* a securityToken is in use */
	METRICS_REG_STATES
};

/* Who this process is: start time (wall clock), pid, worker index (0 without workers) and
 * the number of worker processes sharing the listeners (1 without workers). */
void metrics_start(time_t started, long pid, int worker, int workers);

/* A connection accepted on / ended on a listener. */
void metrics_conn_open(enum metrics_listener l);
void metrics_conn_close(enum metrics_listener l);
/* Connections open now on a listener (the server caps admin connections with it). */
uint64_t metrics_conns_open(enum metrics_listener l);
/* A connection refused for maxConnections (answered 503, or closed when past even that). */
void metrics_conn_refused(void);

/* A tunnel to an allowed target opened: returns its series, to pass to
 * metrics_tunnel_close when it ends. */
int metrics_tunnel_open(const struct target_addr *t);
void metrics_tunnel_close(int series);
/* Bytes relayed client -> console (up) and back (down). */
void metrics_bytes(uint64_t up, uint64_t down);
/* UDP associations: datagrams relayed, and dropped (udptunnel.h says which), each way. */
void metrics_udp(uint64_t up, uint64_t down);
void metrics_udp_dropped(uint64_t up, uint64_t down);

void metrics_tls_fail(void);
/* reason: the auth.fail log reason or token code; mapped onto a fixed set ("other"). */
void metrics_auth_fail(const char *reason);
void metrics_token_issued(void);
void metrics_ban(void);
void metrics_reload(int ok);
/* The certificate the HTTPS listener serves now: its leaf's notAfter (seconds since the
 * epoch) and whether it is the operator's (certFile) or the minted one. */
void metrics_certificate(int64_t not_after, int operator_pair);
/* A reload of the operator's certificate (SIGHUP or changed files) applied or refused. */
void metrics_cert_reload(int ok);

/* Any thread. */
void metrics_registration(enum metrics_reg state);
void metrics_registration_failed(void);

/* Write the exposition into out (no NUL). Returns its length, or 0 (nothing usable)
 * when cap is too small; cap >= METRICS_RENDER_MAX always suffices. */
size_t metrics_render(char *out, size_t cap);

/* Back to zero (unit tests). */
void metrics_reset(void);

#endif

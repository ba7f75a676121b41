/*
 * metrics.h — the relay's counters and gauges, and their rendering in the Prometheus text
 * exposition format 0.0.4, served by the admin listener as GET /metrics (docs/configuration.md).
 *
 * Storage is fixed: one integer per series, the per-target series in a table of
 * METRICS_TARGETS_MAX entries plus one `other`; nothing is allocated per event. Updates
 * are one-line hooks where things happen (conn.c, server.c, reload.c, register.c, ...).
 *
 * Workers (docs/design.md: /metrics reports the sum over all workers): each process that serves
 * keeps its numbers in its own row of the shared region (shm.h, part SHM_METRICS) and
 * writes only there; a scrape, whichever worker answers it, renders the sum of every
 * row. A worker that replaces a dead one takes over its row: the counters go on from
 * where they were (sums never go back), the gauges start at 0 (metrics_forget when the
 * supervisor sees the death, metrics_start in the replacement). Without a region (unit
 * tests, before the start) the numbers are this process's own.
 *
 * Threads: every function runs on the loop thread, except metrics_registration() and
 * metrics_registration_failed(), which the registration thread (in the supervisor, with
 * workers) calls; all values are stored and loaded with atomic operations, since other
 * processes read them.
 *
 * Labels carry no secrets and nothing a client chose freely: listener names, a fixed set
 * of auth-failure reasons and registration states, and targets that passed the allow-list
 * (so they are configured hosts and ports, in target.c's normal form). Values are
 * escaped anyway (backslash, double quote, newline), as the format requires.

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

/* Plan the metrics' part of the shared region (before shm_create). */
void metrics_plan(void);

/* This process serves from now on: its row is the shared region's row shm_self() (its
 * own storage without a region), its gauges start at 0, pid is shown in
 * relaypro_worker_info; started (wall clock) is the relay's start time when none was set
 * yet (the first worker's: the same for all of them). */
void metrics_start(time_t started, long pid);

/* The supervisor: worker w has exited; its gauges are 0 from now on, its counters stay
 * in the sums. */
void metrics_forget(int worker);

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

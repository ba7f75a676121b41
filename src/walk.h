/*
 * walk.h — the driver of a connection's walk: the loop calls it when a connection's
 * socket is ready, when a deadline tick comes, when the resolver has news or the relay
 * stops; it runs the step the state calls for, as far as it can go without blocking.
 *
 * Owns: which module acts in which state, the order of a round (the client's I/O first,
 * then the state's step), the poll interest derived from the state and the ends, the
 * deadlines per state. Must not touch: the steps themselves (front, request, dial,
 * tunnel, wstunnel, respond) or the table of connections (server.c). Any of these may
 * close the connection: the loop then frees it (conn.h, "Closing").
 */
#ifndef RELAYPRO_WALK_H
#define RELAYPRO_WALK_H

#include <stdint.h>

#include "conn.h"

/* Poll interest for the client and upstream sockets (0 = none; *ufd < 0 when none). Never
 * called for a DEAD connection. */
void walk_interest(const struct conn *c, int *cfd, short *cev, int *ufd, short *uev);

/* Poll results for the client (crev) and upstream (urev) sockets. */
void walk_events(struct conn *c, short crev, short urev);

/* Deadlines: once per tick with the current monotonic time. 1 when a deadline passed (the
 * connection closed or moved on: its interest must be derived again), 0 when nothing
 * happened to it. */
int walk_tick(struct conn *c, int64_t now);

/* The resolver has news: a connection in RESOLVE retries its lookup. */
void walk_resolved(struct conn *c);

/* Graceful stop: a connection that has not sent a byte of a head is closed. */
void walk_shutdown(struct conn *c);

#endif

/*
 * sessions.h — the table of open tunnels: GET /sessions on the admin listener (and
 * `relaypro sessions`, which asks for it), AirProxy's `table websocket_proxy_connections`.
 *
 * Owns: one fixed-size row per open tunnel (id, transport, client, user, target, when it
 * opened, bytes each way, when bytes last moved), its id, and the JSON the admin listener
 * sends, rendered a piece at a time. Must not touch: connections (it knows no struct
 * conn: tunnel.c opens a row, tunnel.c keeps its bytes current, conn.c closes it),
 * sockets, HTTP framing (respond.c wraps the pieces).
 *
 * Rows are plain data of a fixed layout, with no pointers, written by the process that
 * owns the tunnel only: they live in the region the workers share (shm.h: maxConnections
 * records in each worker's row, planned at start by sessions_plan), so whichever worker
 * answers /sessions lists the tunnels of every worker (docs/architecture.md, "The session
 * table").
 *
 * Rendering (sessions_render) is resumable: a cursor says which row comes next, each call
 * writes as many whole rows as fit, so an answer of any length goes out through a fixed
 * send buffer as it drains. The body is a JSON array, one object per line:
 *   [
 *   {"id":1,"transport":"ws","client":"192.0.2.1:50000","sub":"responder-1",
 *    "target":"console.example:443","opened":"2026-11-23T10:00:00Z","bytesUp":12,
 *    "bytesDown":34,"idleSeconds":5},
 *   ...
 *   ]
 * Each row is read once, as it is at that moment: a tunnel that opens or closes while an
 * answer is being sent may or may not be in it, and is never in it twice.
 */
#ifndef RELAYPRO_SESSIONS_H
#define RELAYPRO_SESSIONS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth.h"
#include "net.h"
#include "target.h"

enum sessions_transport { SESSIONS_CONNECT, SESSIONS_ABSOLUTE, SESSIONS_WS, SESSIONS_UDP };

#define SESSIONS_ROW_MAX 1600 /* the longest rendered row, with its separator (a sub of
                               * 128 bytes escaped 6 to 1, a 253-byte host...) */

/* One tunnel. Plain data, no pointers (see above). */
struct sessions_row {
	uint64_t id;                   /* 0: a free row */
	int64_t opened;                /* wall clock, seconds */
	int64_t last_io_ms;            /* monotonic clock (the same in every process) */
	uint64_t bytes_up, bytes_down; /* payload, client -> target and back */
	uint16_t port;
	uint8_t transport;             /* enum sessions_transport */
	char client[NET_ADDR_TEXT];
	char sub[AUTH_USER_MAX + 1];
	char host[TARGET_HOST_MAX + 1];
};

/* Where an answer is: the next row to read, and whether the opening "[" and the closing
 * "]" are out. Zeroed, it is at the start. */
struct sessions_cursor {
	uint32_t worker, row;
	uint8_t begun, done, rows;     /* rows: at least one row written (comma before the next) */
};

/* "connect", "absolute", "ws" or "udp". */
const char *sessions_transport_str(int transport);

/* At start, before the shared region is made (run.c): room for `rows` tunnels
 * (maxConnections) in each worker's part of it. */
void sessions_plan(unsigned rows);

/* A tunnel opened: its row, filled from these (texts cut to their field), bytes 0, its id
 * unique among the workers. Returns a handle for the calls below, or 0 when there is no
 * room or no region (the tunnel is then not listed). */
unsigned sessions_open(int transport, const char *client, const char *sub,
    const struct target_addr *target, time_t opened, int64_t now_ms);

/* The id of the row behind handle h (0 for none): what tunnel.open and tunnel.close log. */
uint64_t sessions_id(unsigned h);

/* Bytes moved on the tunnel: the totals so far and when they last moved. */
void sessions_update(unsigned h, uint64_t bytes_up, uint64_t bytes_down, int64_t last_io_ms);

/* The tunnel ended: its row is free again. h 0 is ignored. */
void sessions_close(unsigned h);

/* Render the body from *cur on into out: as many whole rows as fit in cap, the opening
 * "[" first and the closing "]" (cur->done set) once every row was read. Returns the
 * bytes written (0 when cap cannot take the next piece: give it at least
 * SESSIONS_ROW_MAX). now_ms: the monotonic clock, for idleSeconds. */
size_t sessions_render(char *out, size_t cap, struct sessions_cursor *cur, int64_t now_ms);

/* Back to no table (unit tests). */
void sessions_reset(void);

#endif

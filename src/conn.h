/*
 * conn.h — one client connection: an explicit state machine from accept to close.
 *
 *  [PPHDR] ──> HEAD ──> RESOLVE ──> CONNECT ──> [PROXY] ──> TUNNEL ──┐
 *     │          │         │           │                 ├──> (conn_close)
 *     │          └────────>┴──────────>┴──> RESPOND ──> CLOSING (linger) ──┘
 *     └──> (conn_close: no valid PROXY header)
 *
 * PPHDR    (proxyProtocol, https and http listeners) reading the load balancer's PROXY
 *          protocol header from the raw socket, before TLS, never a byte past its end;
 *          its source address then replaces the peer address;
 * HEAD     reading the request head (the TLS handshake happens underneath);
 * RESOLVE  waiting for the resolver's first answer for the target's name;
 * CONNECT  non-blocking connect to the resolved addresses, one after another;
 * PROXY    (proxyEnabled) CONNECT sent to the upstream proxy, its answer read;
 * TUNNEL   relaying bytes both ways (CONNECT tunnel, absolute-form forward, or a WebSocket
 *          tunnel from GET /v1/tunnel: client bytes in RFC 6455 frames, see ws.h);
 * RESPOND  sending a response the relay wrote itself (errors, /healthz, ...);
 * CLOSING  close_notify sent / write side shut, discarding input until EOF or a short
 *          linger, so the client reads the response before the connection goes.
 *
 * DEAD     closed: conn_close() was called; nothing more happens to the connection.
 *
 * Memory is decided at accept: one allocation holds the struct, the BearSSL context (TLS
 * listener), the client-side buffers and the head buffer (which also holds the PROXY
 * header while PPHDR reads it: PP_MAX fits in it); nothing grows with traffic.
 * Bytes move between BearSSL's record buffers (or the plain buffers) and the upstream
 * socket directly.
 *
 * Closing — one convention, used everywhere: conn_close(c, reason) is the only way a
 * connection ends, and it only marks it: the state becomes DEAD (final: no later
 * set_state leaves it, responses and I/O are no longer started) and the reason is kept.
 * Nothing is freed while a callback runs, so no function ever tells its caller "I closed
 * it" and c stays valid memory until that callback has returned: code that may have closed
 * the connection and wants to go on simply asks conn_dead(c) (the state machine's driver
 * does, after every step). The loop, once the callback it made (conn_events, conn_tick,
 * conn_resolved, conn_shutdown) has returned, sees conn_dead(c), takes the slot back and
 * calls conn_free(c): the one teardown path — both sockets closed, TLS state and
 * credentials wiped, tunnel.close logged once, the block released.
 */
#ifndef RELAYPRO_CONN_H
#define RELAYPRO_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

#include "config.h"
#include "metrics.h"
#include "net.h"

#define CONN_PLAIN_BUF 16384   /* plain listener: each direction's buffer */
#define CONN_HEAD_SLACK 512    /* room to rewrite an absolute-form head (Host, Connection) */
#define CONN_LINGER_MS 2000    /* CLOSING: discard input at most this long */
#define CONN_RESPOND_MS 5000   /* RESPOND/CLOSING: give up on a client that reads nothing */
#define CONN_UP_IBUF BR_SSL_BUFSIZE_INPUT /* TLS to an https:// proxy: a full incoming record */
#define CONN_UP_OBUF (4096 + 85)          /* ... outgoing records carry up to 4 KiB */
#define CONN_ADMIN_IBUF 4096   /* admin listener: request bytes read at a time */
#define CONN_ADMIN_OBUF (METRICS_RENDER_MAX + 256) /* admin listener: a whole /metrics answer */

/* Listener kinds (conn_new's kind). The admin listener is plain HTTP that answers only
 * GET /metrics, /healthz and /readyz; its send buffer holds a whole /metrics answer. */
enum { CONN_PLAIN = 0, CONN_TLS = 1, CONN_ADMIN = 2 };

enum conn_state { CS_HEAD, CS_RESOLVE, CS_CONNECT, CS_PROXY, CS_TUNNEL, CS_RESPOND, CS_CLOSING,
	CS_PPHDR, CS_DEAD };

struct conn;

/* Create a connection for an accepted socket (listener kind: CONN_PLAIN, CONN_TLS or
 * CONN_ADMIN). over_limit: beyond maxConnections, answer 503 to the request and close.
 * proxy_hdr: the listener wants a PROXY protocol header first (the caller has checked the
 * peer is a trusted proxy). NULL when out of memory (the caller closes fd). */
struct conn *conn_new(int fd, const struct net_addr *peer, int tls, int over_limit,
    int proxy_hdr);

/* End the connection (see "Closing" above): it becomes DEAD with this reason (static
 * text; a second call keeps the first reason). Freed later by the loop (conn_free). */
void conn_close(struct conn *c, const char *reason);

/* 1 once conn_close was called. */
int conn_dead(const struct conn *c);

/* The loop only, for a DEAD connection after its callback returned (or at exit): close
 * both sockets, wipe TLS state and credentials, log tunnel.close (or conn.close) once with
 * the reason, release the memory. */
void conn_free(struct conn *c);

/* Poll interest for the client and upstream sockets (0 = none; ufd < 0 when none). Never
 * called for a DEAD connection. */
void conn_interest(const struct conn *c, int *cfd, short *cev, int *ufd, short *uev);

/* Handle poll results for this connection. May close it (conn_dead afterwards). */
void conn_events(struct conn *c, short crev, short urev);

/* Deadlines: called once per tick with the current monotonic time. May close it. */
void conn_tick(struct conn *c, int64_t now);

/* The resolver has news: a connection in RESOLVE retries its lookup. May close it. */
void conn_resolved(struct conn *c);

/* Graceful stop: a connection still reading its head is closed. */
void conn_shutdown(struct conn *c);

enum conn_state conn_state(const struct conn *c);

/* At start, after the routes are known: when the environment names an https:// proxy
 * (whatever proxyEnabled says now, as a reload may turn it on), load the anchors its
 * certificate is checked against (upstream_trust_load) and give every connection from
 * now on the memory for a TLS hop to it. ERR_OK, or an error with a message in err when
 * proxyEnabled is on and the anchors cannot be loaded (with it off, that hop is left
 * unavailable: such a route then answers 502). */
int conn_proxy_setup(const struct config *cfg, char *err, size_t errlen);

/* Once per tick: connection blocks kept for reuse are freed when no connection was
 * accepted for a few seconds. */
void conn_trim(int64_t now);

/* Bytes allocated per connection for a listener kind (CONN_*; for docs and the start log). */
size_t conn_footprint(int tls);

#endif

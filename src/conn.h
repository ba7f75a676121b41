/*
 * conn.h — one client connection: its state, its memory, its life from accept to close.
 *
 * Owns: struct conn (every field names the module that owns it), the states and the one
 * function that changes them (conn_set_state), the memory decided at accept (conn_new,
 * conn_footprint), the end (conn_close) and the one teardown (conn_free). Must not touch:
 * sockets' bytes, HTTP, admission, the poll set — the modules of the walk do those.
 *
 * The walk of a connection, one module per step (docs/architecture.md):
 *
 *   accept (listen.c) → [PROXY header, TLS, head] (front.c) → auth (cred.c) →
 *   admit (admit.c, via request.c) → dial (dial.c) → tunnel (tunnel.c, wstunnel.c,
 *   bytes by hop.c) → close (conn.c); answers of the relay's own: respond.c;
 *   the driver that runs each step when its socket is ready: walk.c.
 *
 *  [PPHDR] ──> HEAD ──> RESOLVE ──> CONNECT ──> [PROXY] ──> TUNNEL ──┐
 *     │          │         │           │                 ├──> (conn_close) ──> DEAD
 *     │          └────────>┴──────────>┴──> RESPOND ──> CLOSING (linger) ──┘
 *     └──> (conn_close: no valid PROXY header)
 *
 * PPHDR    (proxyProtocol, https and http listeners) reading the load balancer's PROXY
 *          protocol header from the raw socket, before TLS, never a byte past its end;
 *          its source address then replaces the peer address;
 * HEAD     reading the request head (the TLS handshake happens underneath);
 * RESOLVE  waiting for the resolver's first answer for the target's name;
 * CONNECT  non-blocking connect to the resolved addresses, one after another;
 * PROXY    (proxyEnabled) CONNECT sent to the upstream proxy and its answer read, or the
 *          SOCKS5 exchange with a socks5:// / socks5h:// proxy;
 * TUNNEL   relaying bytes both ways (CONNECT tunnel, absolute-form forward, or a WebSocket
 *          tunnel from GET /v1/tunnel: client bytes in RFC 6455 frames, see ws.h; or a UDP
 *          association from GET /v1/udp: messages as datagrams, see udptunnel.h);
 * RESPOND  sending a response the relay wrote itself (errors, /healthz, ...);
 * CLOSING  close_notify sent / write side shut, discarding input until EOF or a short
 *          linger, so the client reads the response before the connection goes;
 * DEAD     closed: conn_close() was called; nothing more happens to the connection.
 *
 * Memory is decided at accept: one allocation holds the struct, the BearSSL context (TLS
 * listener), the client-side buffers and the head buffer (which also holds the PROXY
 * header while PPHDR reads it: PP_MAX fits in it); nothing grows with traffic.
 * Bytes move between BearSSL's record buffers (or the plain buffers) and the upstream
 * socket directly (hop.h).
 *
 * Closing — one convention, used everywhere: conn_close(c, reason) is the only way a
 * connection ends, and it only marks it: the state becomes DEAD (final: no later
 * conn_set_state leaves it, responses and I/O are no longer started) and the reason is
 * kept. Nothing is freed while a callback runs, so no function ever tells its caller "I
 * closed it" and c stays valid memory until that callback has returned: code that may have
 * closed the connection and wants to go on simply asks conn_dead(c) (the driver, walk.c,
 * does after every step). The loop, once the callback it made (walk_events, walk_tick,
 * walk_resolved, walk_shutdown) has returned, sees conn_dead(c), takes the slot back and
 * calls conn_free(c): the one teardown path — both sockets closed, TLS state and
 * credentials wiped, tunnel.close logged once, the block released.
 */
#ifndef RELAYPRO_CONN_H
#define RELAYPRO_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

#include "auth.h"
#include "body.h"
#include "config.h"
#include "hop.h"
#include "http.h"
#include "metrics.h"
#include "net.h"
#include "pending.h"
#include "relay.h"
#include "resolve.h"
#include "sessions.h"
#include "target.h"
#include "upstream.h"
#include "ws.h"

#define CONN_PLAIN_BUF 16384   /* plain listener: each direction's buffer */
#define CONN_HEAD_SLACK 512    /* room to rewrite an absolute-form head (Host, Connection) */
#define CONN_LINGER_MS 2000    /* CLOSING: discard input at most this long */
#define CONN_RESPOND_MS 5000   /* RESPOND/CLOSING: give up on a client that reads nothing */
#define CONN_UP_IBUF BR_SSL_BUFSIZE_INPUT /* TLS to an https:// proxy: a full incoming record */
#define CONN_UP_OBUF (4096 + 85)          /* ... outgoing records carry up to 4 KiB */
#define CONN_ADMIN_IBUF 4096   /* admin listener: request bytes read at a time */
#define CONN_ADMIN_OBUF (METRICS_RENDER_MAX + 256) /* admin listener: a whole /metrics answer */
#define CONN_PRESP_MAX 256     /* the upstream proxy's answer head */

/* Listener kinds (conn_new's kind). The admin listener is plain HTTP that answers only
 * GET /metrics, /healthz, /readyz and /sessions; its send buffer holds a whole /metrics
 * answer (/sessions is streamed through it, respond.h). */
enum { CONN_PLAIN = 0, CONN_TLS = 1, CONN_ADMIN = 2 };

enum conn_state { CS_HEAD, CS_RESOLVE, CS_CONNECT, CS_PROXY, CS_TUNNEL, CS_RESPOND, CS_CLOSING,
	CS_PPHDR, CS_DEAD };

/* One connection. Fields are grouped by the module that owns them (writes them); others
 * only read. Fixed size: part of the one allocation made at accept. */
struct conn {
	/* conn.c — lifecycle */
	const struct relay *rl;      /* the shared state, read only (relay.h) */
	enum conn_state state;       /* conn_set_state only */
	int kind;                    /* CONN_PLAIN, CONN_TLS or CONN_ADMIN */
	int64_t t_start;             /* accept time (tunnel.close duration) */
	int64_t deadline;            /* the current state's; set by whoever enters the state */
	const char *close_reason;    /* DEAD: why (static text), logged by conn_free */
	const char *close_detail;    /* NULL, or more about why (static text: "revoked") */
	/* hop.c — the two ends and the pump; set up by conn (front end), dial (upstream end),
	 * tunnel and wstunnel (prefix, frame adapter) */
	struct hop hop;
	br_ssl_server_context *sc;   /* conn: the TLS listener's engine, NULL on plain */
	/* front.c — the client: its address, the head and what follows it */
	struct net_addr peer_addr;   /* the client (a PROXY header's source replaces it) */
	char *head;                  /* request head (and what was pipelined after it) */
	size_t head_max;             /* maxHeaderBytes when accepted (a reload may change it) */
	size_t head_cap, head_len;
	size_t pp_len;               /* PPHDR: PROXY header bytes taken into head[] so far */
	size_t body_len;             /* a local request's body, skipped before the next head */
	struct http_request req;
	/* request.c — what the request became */
	struct target_addr target;   /* the admitted target */
	/* dial.c — reaching the target */
	const struct upstream_proxy *via; /* the HTTP proxy in between, or NULL */
	struct net_addr addrs[RESOLVE_MAX_ADDRS];
	int naddr, addr_i, last_errno;
	uint32_t preq_off;           /* PROXY: bytes of our CONNECT request already sent */
	uint32_t presp_len;          /* PROXY: bytes of the proxy's answer head read */
	br_ssl_client_context *ucc;  /* conn: TLS to an https:// proxy (memory when such a */
	br_x509_minimal_context *uxc; /* route existed at start); hop.up.eng points into it */
	unsigned char *uibuf, *uobuf; /* while the hop uses it */
	/* tunnel.c — the tunnel's bookkeeping */
	int64_t last_io;             /* bytes moved either way (idle timeout) */
	int mlistener, mseries;      /* conn: metrics listener; tunnel: the target's series */
	/* tunnel.c — absolute-form: one request, then nothing (the forward adapter on the pump) */
	struct body_state body;      /* where the request's body ends (body.h) */
	uint32_t fwd_ready;          /* bytes at the input's start judged part of the request */
	/* wstunnel.c — WebSocket mode: the same TUNNEL state, client bytes in frames */
	struct ws_rx ws_rx;          /* client frame decoder */
	uint32_t ws_ready;           /* unmasked payload at the input's start, not yet upstream */
	/* udptunnel.c — a UDP association (GET /v1/udp): a WebSocket tunnel (the wstunnel
	 * fields above) whose upstream end is a connected UDP socket; its datagram buffers
	 * are allocated once, at the 101 (conn_free frees them) */
	struct udpt *udpt;
	uint64_t udp_up, udp_down;   /* datagrams sent to / received from the target */
	uint32_t udp_drop_up;        /* client datagrams the socket refused (dropped) */
	/* sessions.c (through tunnel.c) — this tunnel's row in the session table, 0: none */
	unsigned session;
	/* respond.c — an answer rendered as the send buffer drains (GET /sessions) */
	struct sessions_cursor scur;
	/* dial.c — the SOCKS5 exchange with a socks5:// or socks5h:// proxy (PROXY state) */
	struct socks5 socks;
	struct net_addr socks_addr;  /* socks5://: the target's address the proxy is asked for */
	uint8_t socks_try;           /* ... which of the resolver's answer it is */
	/* respond.c */
	int status;                  /* HTTP status answered (logs) */
	/* flags: owner in the comment */
	unsigned over_limit : 1,     /* conn: accepted beyond maxConnections (503) */
	    keep_alive : 1,          /* respond: read the next request once this answer is out */
	    forward : 1,             /* request: absolute-form (else CONNECT) */
	    websocket : 1,           /* request: a WebSocket tunnel */
	    preq_done : 1,           /* dial: the CONNECT to the proxy is sent */
	    tunnel_open : 1,         /* tunnel: tunnel.open logged, tunnel.close owed */
	    ws_pong_due : 1, ws_close_due : 1, ws_close_sent : 1, ws_close_rcvd : 1,
	    ws_up_dead : 1,          /* wstunnel */
	    udp : 1,                 /* request: a UDP association (GET /v1/udp) */
	    streaming : 1,           /* respond: the answer is still being rendered (scur) */
	    chunked : 1;             /* respond: ... in chunks (HTTP/1.1) */
	/* server.c, pending.c — the loop's bookkeeping (issue 17: caps on pending connections) */
	int slot;                    /* server: this connection's slot in the table */
	struct pending_entry pend;   /* pending: queued from accept until a tunnel is admitted
	                              * (conn_set_state leaves it), counted per address */
	/* cred.c — what admitted the request, kept to judge it again at a reload (revocation,
	 * server_revalidate + admit_recheck): fixed size, never the credential itself */
	int64_t cred_epoch;          /* Bearer: the access token's ep (the epoch then) */
	uint64_t cred_fp;            /* Basic: keyed fingerprint of "user:password" (cred.h) */
	uint8_t cred_kind;           /* ADMIT_CRED_KIND_*: which credential (admit.h) */
	uint8_t req_kind;            /* the request's enum admit_kind */
	/* byte arrays last, together: no padding between them */
	char presp[CONN_PRESP_MAX];  /* dial: the proxy's answer head (then the up prefix) */
	char peer[NET_ADDR_TEXT];    /* front: peer_addr as text, for logs */
	char who[AUTH_USER_MAX + 1]; /* cred: the user (token sub or Basic user), for logs */
	unsigned char ws_ctl[WS_CTL_MAX]; /* wstunnel: control frame payload being received */
	unsigned char ws_pong[WS_CTL_MAX]; /* wstunnel: payload of the pong to send */
	uint8_t ws_ctl_len, ws_pong_len;   /* wstunnel */
	uint16_t ws_code;            /* wstunnel: close status to send (0: an empty close frame) */
};

/* Create a connection for an accepted socket (listener kind: CONN_PLAIN, CONN_TLS or
 * CONN_ADMIN). over_limit: beyond maxConnections, answer 503 to the request and close.
 * proxy_hdr: the listener wants a PROXY protocol header first (the caller has checked the
 * peer is a trusted proxy). NULL when out of memory (the caller closes fd). */
struct conn *conn_new(const struct relay *rl, int fd, const struct net_addr *peer, int kind,
    int over_limit, int proxy_hdr);

/* The one place a state changes; logged at debug level. DEAD is final. */
void conn_set_state(struct conn *c, enum conn_state s);

/* End the connection (see "Closing" above): it becomes DEAD with this reason (static
 * text; a second call keeps the first reason). Freed later by the loop (conn_free). */
void conn_close(struct conn *c, const char *reason);

/* 1 once conn_close was called. */
int conn_dead(const struct conn *c);

/* What the tunnel is, as the session table and the tunnel lines name it (enum
 * sessions_transport: CONNECT, absolute-form, WebSocket, UDP). */
int conn_transport(const struct conn *c);

/* maxPendingPerAddress for a pending connection whose client address is known (at accept,
 * or once a PROXY header named it): counted from now on; over the cap it is closed
 * (limit.pending logged) and 1 is returned. 0 when it stands or is not pending. */
int conn_pending_over_address(struct conn *c);

/* The fields tunnel.open and tunnel.close share, into r: session, transport, client, user,
 * target, port (one copy, so the two lines always name a tunnel alike). */
struct log_rec;
void conn_log_tunnel(struct log_rec *r, const struct conn *c);

/* The loop only, for a DEAD connection after its callback returned (or at exit): close
 * both sockets, wipe TLS state and credentials, log tunnel.close (or conn.close) once with
 * the reason, release the memory. */
void conn_free(struct conn *c);

/* At start, after the routes are known: when the environment names an https:// proxy
 * (whatever proxyEnabled says now, as a reload may turn it on), load the anchors its
 * certificate is checked against (upstream_trust_load) and give every connection from
 * now on the memory for a TLS hop to it. ERR_OK, or an error with a message in err when
 * proxyEnabled is on and the anchors cannot be loaded (with it off, that hop is left
 * unavailable: such a route then answers 502). */
int conn_proxy_setup(const struct config *cfg, char *err, size_t errlen);

/* The anchors conn_proxy_setup loaded for an https:// proxy, or NULL. */
const struct anchors *conn_proxy_anchors(void);

/* Once per tick: connection blocks kept for reuse are freed when no connection was
 * accepted for a few seconds. */
void conn_trim(int64_t now);

/* Bytes allocated per connection for a listener kind (CONN_*), with maxHeaderBytes as
 * configured at start (conn_proxy_setup), for docs and the start log. */
size_t conn_footprint(int kind);

#endif

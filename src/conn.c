/*
 * conn.c — a connection's life: its memory at accept, its state, its one end. See conn.h.
 *
 * Owns: the allocation (one block per connection, kept for reuse a short while), the state
 * changes, conn_close and conn_free (the one teardown, the one tunnel.close line), the
 * https:// proxy hop's memory decision and trust anchors (set once at start). Must not
 * touch: bytes, HTTP, the poll set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bearssl.h>

#include "anchors.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"
#include "sessions.h"
#include "tls.h"
#include "upstream.h"

static const char *const state_names[] = { "head", "resolve", "connect", "proxy", "tunnel",
	"respond", "closing", "pphdr", "dead" };

/* Set once at start (conn_proxy_setup), read-only afterwards: whether every connection
 * also holds the memory for TLS to an https:// proxy, the anchors that proxy is checked
 * against, and maxHeaderBytes then (for conn_footprint's start-log figure). */
static int up_tls_mem;
static struct anchors *proxy_ta;
static size_t start_head_max = HTTP_DEFAULT_MAX_HEAD;

#define UP_TLS_BYTES (sizeof(br_ssl_client_context) + sizeof(br_x509_minimal_context) + \
	CONN_UP_IBUF + CONN_UP_OBUF + 16) /* 16: alignment */

static size_t
footprint(int kind, size_t head_max)
{
	size_t n = sizeof(struct conn) + head_max + CONN_HEAD_SLACK;

	if (kind == CONN_ADMIN) /* never tunnels: no upstream TLS state */
		return n + CONN_ADMIN_IBUF + CONN_ADMIN_OBUF;
	if (up_tls_mem)
		n += UP_TLS_BYTES;
	return n + (kind == CONN_TLS ? sizeof(br_ssl_server_context) + TLS_IBUF + TLS_OBUF :
	    2 * CONN_PLAIN_BUF);
}

/* see conn.h */
size_t
conn_footprint(int kind)
{
	return footprint(kind, start_head_max);
}

/* see conn.h */
int
conn_proxy_setup(const struct config *cfg, char *err, size_t errlen)
{
	struct upstream_routes probe;
	int any;

	start_head_max = cfg->max_header_bytes;
	/* The environment is read whatever proxyEnabled says now: a reload may turn it on. */
	any = upstream_load_with(&probe, 1, UPSTREAM_WITH_SOCKS5, err, errlen) == ERR_OK &&
	    upstream_any_tls(&probe);
	upstream_wipe(&probe);
	err[0] = 0;
	if (!any)
		return ERR_OK;
	proxy_ta = malloc(sizeof *proxy_ta);
	if (proxy_ta == NULL) {
		snprintf(err, errlen, "out of memory for the https:// proxy's trust anchors");
		return ERR_IO;
	}
	if (upstream_trust_load(proxy_ta, cfg, err, errlen) != ERR_OK) {
		anchors_wipe(proxy_ta);
		free(proxy_ta);
		proxy_ta = NULL;
		return cfg->proxy_enabled ? ERR_INVAL : ERR_OK;
	}
	up_tls_mem = 1;
	return ERR_OK;
}

/* see conn.h */
const struct anchors *
conn_proxy_anchors(void)
{
	return proxy_ta;
}

/* see conn.h */
void
conn_set_state(struct conn *c, enum conn_state s)
{
	struct log_rec r;

	if (c->state == CS_DEAD)
		return;
	if (s == CS_RESOLVE || s == CS_CONNECT || s == CS_PROXY || s == CS_TUNNEL)
		pending_remove(&c->pend); /* a tunnel was admitted: no longer pending */
	if (log_begin(&r, LOG_DEBUG, "conn.state")) {
		log_str(&r, "client", c->peer);
		log_str(&r, "from", state_names[c->state]);
		log_str(&r, "to", state_names[s]);
		log_end(&r);
	}
	c->state = s;
}

/* Connection blocks freed recently, kept for the next accepts. musl returns a freed block
 * of this size to the kernel (munmap), and on these VMs each of those costs a TLB
 * shoot-down on the other CPU: 8-12% of the relay's CPU under a new-connection load
 * (docs/performance.md). A block is reused only for a connection of exactly the same
 * footprint (listener kind and maxHeaderBytes), so memory per connection is still decided
 * at accept; at most CONN_SPARE_MAX blocks wait here, and none once accepts have paused
 * for CONN_SPARE_IDLE_MS (so a burst does not leave its memory resident). Under
 * AddressSanitizer none are kept, so a use after conn_free() is still caught. This cache
 * is the loop's own state (one loop per process). */
#define CONN_SPARE_MAX 32
#define CONN_SPARE_IDLE_MS 5000 /* no accept for this long: the spares go back (conn_trim) */
#ifdef __SANITIZE_ADDRESS__
#define CONN_SPARE_KEEP 0
#else
#define CONN_SPARE_KEEP CONN_SPARE_MAX
#endif
static struct {
	void *p;
	size_t size;
} spare[CONN_SPARE_MAX];
static int nspare;
static int64_t spare_used_ms; /* when a spare block last served an accept */

/* see conn.h */
void
conn_trim(int64_t now)
{
	if (nspare == 0 || now - spare_used_ms < CONN_SPARE_IDLE_MS)
		return;
	while (nspare > 0)
		free(spare[--nspare].p);
}

static void *
block_get(size_t size, int64_t now)
{
	int i;

	spare_used_ms = now;
	for (i = nspare - 1; i >= 0; i--) {
		if (spare[i].size == size) {
			void *p = spare[i].p;
			spare[i] = spare[--nspare];
			return p;
		}
	}
	return malloc(size);
}

static void
block_put(void *p, size_t size)
{
	if (nspare < CONN_SPARE_KEEP) {
		spare[nspare].p = p;
		spare[nspare++].size = size;
	} else {
		free(p);
	}
}

/* see conn.h */
struct conn *
conn_new(const struct relay *rl, int fd, const struct net_addr *peer, int kind, int over_limit,
    int proxy_hdr)
{
	size_t head_max = rl->cfg->max_header_bytes, head_cap = head_max + CONN_HEAD_SLACK;
	size_t total = footprint(kind, head_max);
	unsigned char *block = block_get(total, rl->now_ms), *p;
	struct conn *c = (struct conn *)(void *)block;

	if (block == NULL)
		return NULL;
	memset(c, 0, sizeof *c);
	c->rl = rl;
	c->block_size = total;
	p = block + sizeof *c;
	c->state = proxy_hdr ? CS_PPHDR : CS_HEAD;
	c->over_limit = over_limit ? 1 : 0;
	c->t_start = rl->now_ms;
	c->deadline = rl->now_ms + (int64_t)rl->cfg->header_timeout * 1000;
	c->peer_addr = *peer;
	net_addr_text(peer, c->peer, 1);
	c->head = (char *)p;
	c->head_max = head_max;
	c->head_cap = head_cap;
	p += head_cap;
	c->kind = kind;
	c->mlistener = kind == CONN_ADMIN ? METRICS_ADMIN : kind == CONN_TLS ? METRICS_HTTPS :
	    METRICS_HTTP;
	if (kind == CONN_ADMIN) {
		hop_end_plain(&c->hop.front, fd, p, CONN_ADMIN_IBUF, p + CONN_ADMIN_IBUF,
		    CONN_ADMIN_OBUF);
	} else if (kind == CONN_TLS) {
		c->sc = (br_ssl_server_context *)(void *)p;
		p += sizeof(br_ssl_server_context);
		if (tls_server_init(c->sc, p, TLS_IBUF, p + TLS_IBUF, TLS_OBUF) != ERR_OK) {
			block_put(block, total);
			return NULL;
		}
		hop_end_tls(&c->hop.front, fd, &c->sc->eng);
		p += TLS_IBUF + TLS_OBUF;
	} else {
		hop_end_plain(&c->hop.front, fd, p, CONN_PLAIN_BUF, p + CONN_PLAIN_BUF, CONN_PLAIN_BUF);
		p += 2 * CONN_PLAIN_BUF;
	}
	hop_end_plain(&c->hop.up, -1, NULL, 0, NULL, 0);
	if (up_tls_mem && kind != CONN_ADMIN) { /* after the client-side buffers (footprint) */
		p = block + ((size_t)(p - block) + 15) / 16 * 16;
		c->ucc = (br_ssl_client_context *)(void *)p;
		p += sizeof(br_ssl_client_context);
		c->uxc = (br_x509_minimal_context *)(void *)p;
		p += sizeof(br_x509_minimal_context);
		c->uibuf = p;
		c->uobuf = p + CONN_UP_IBUF;
	}
	http_init(&c->req);
	if (kind != CONN_ADMIN && !over_limit) /* an over-limit one only gets its 503 */
		pending_add(&c->pend, c); /* the loop counts it per address (pending.h) */
	metrics_conn_open((enum metrics_listener)c->mlistener);
	return c;
}

/* see conn.h */
void
conn_close(struct conn *c, const char *reason)
{
	if (c->state == CS_DEAD)
		return; /* the first reason stays */
	c->close_reason = reason;
	conn_set_state(c, CS_DEAD);
}

/* see conn.h */
int
conn_dead(const struct conn *c)
{
	return c->state == CS_DEAD;
}

/* see conn.h */
int
conn_transport(const struct conn *c)
{
	return c->udp ? SESSIONS_UDP : c->websocket ? SESSIONS_WS : c->forward ? SESSIONS_ABSOLUTE :
	    SESSIONS_CONNECT;
}

/* see conn.h */
int
conn_pending_over_address(struct conn *c)
{
	int n, max = (int)c->rl->cfg->max_pending_per_address;

	if (!c->pend.queued)
		return 0;
	n = pending_count_addr(&c->pend, &c->peer_addr);
	if (n <= max)
		return 0;
	pending_log(PENDING_PER_ADDRESS, c->peer, n, max, c->rl->now_ms);
	conn_close(c, "too many pending connections from this address");
	return 1;
}

/* see conn.h */
void
conn_log_tunnel(struct log_rec *r, const struct conn *c)
{
	log_int(r, "session", (int64_t)sessions_id(c->session));
	log_str(r, "transport", sessions_transport_str(conn_transport(c)));
	log_str(r, "client", c->peer);
	log_str(r, "user", c->who);
	log_str(r, "target", c->target.host.name);
	log_int(r, "port", c->target.port);
}

/* see conn.h */
void
conn_free(struct conn *c)
{
	const char *reason = c->close_reason ? c->close_reason : "closed";
	struct log_rec r;

	if (c->tunnel_open && log_begin(&r, LOG_INFO, "tunnel.close")) {
		conn_log_tunnel(&r, c);
		log_int(&r, "bytes_up", (int64_t)c->hop.up_bytes);
		log_int(&r, "bytes_down", (int64_t)c->hop.down_bytes);
		if (c->udp) { /* udptunnel.h: what was sent, received and dropped */
			log_int(&r, "datagrams_up", (int64_t)c->udp_up);
			log_int(&r, "datagrams_down", (int64_t)c->udp_down);
			log_int(&r, "dropped_up", c->udp_drop_up);
			log_int(&r, "dropped_down", c->hop.up.drops);
		}
		if (c->websocket)
			log_int(&r, "ws_close", c->ws_close_sent ? c->ws_code : 0);
		log_int(&r, "duration_ms", c->rl->now_ms - c->t_start);
		log_str(&r, "reason", reason);
		if (c->close_detail)
			log_str(&r, "detail", c->close_detail);
		log_end(&r);
	} else if (log_begin(&r, LOG_DEBUG, "conn.close")) {
		log_str(&r, "client", c->peer);
		log_int(&r, "status", c->status);
		log_str(&r, "reason", reason);
		log_end(&r);
	}
	pending_remove(&c->pend);
	if (c->tunnel_open)
		metrics_tunnel_close(c->mseries);
	sessions_close(c->session);
	free(c->udpt); /* a UDP association's buffers (udptunnel.c) */
	metrics_conn_close((enum metrics_listener)c->mlistener);
	if (c->hop.up.fd >= 0)
		close(c->hop.up.fd);
	close(c->hop.front.fd);
	if (c->sc) {
		tls_conn_release(c->sc); /* a handshake cut short: its certificate is free */
		secret_wipe(c->sc, sizeof *c->sc); /* session keys */
	}
	if (c->hop.up.eng) {
		secret_wipe(c->ucc, sizeof *c->ucc); /* the proxy hop's keys */
		secret_wipe(c->uobuf, CONN_UP_OBUF); /* may have held Proxy-Authorization */
		secret_wipe(c->uibuf, CONN_UP_IBUF);
	}
	secret_wipe(c->head, c->head_cap);   /* credentials */
	block_put(c, c->block_size);
}

/*
 * conn.c — a connection's life: its memory at accept, its state, its one end. See conn.h.
 *
 * Owns: the layout of a connection's one block (taken from connmem.h at accept), the state
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
#include "connmem.h"
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
	CONN_UP_IBUF + CONN_UP_OBUF)

/* Where each part of a connection's block lies, as offsets from the block's start (which
 * connmem puts CONNMEM_OFFSET bytes into a page). What an idle TLS tunnel has touched is
 * the struct, the BearSSL context, the start of the head buffer (its request), the start
 * of the input buffer (the largest record it received) and of the output buffer (the
 * largest it sent, the server's first flight); the parts written whole come first, the
 * head right after them (its request shares their last page), and each record buffer
 * starts on a page of its own, so such a tunnel keeps four pages resident, not the six
 * that arbitrary offsets cost (docs/design.md, "Memory per connection"). The padding is
 * address space only: a page nobody writes is never resident. */
struct layout {
	size_t sc;                   /* br_ssl_server_context (TLS listener) */
	size_t head;                 /* head buffer, head_max + CONN_HEAD_SLACK */
	size_t ibuf, obuf;           /* the client side's input and output buffers */
	size_t up;                   /* TLS to an https:// proxy (up_tls_mem), 0 when none */
	size_t total;
};

static size_t
align16(size_t off)
{
	return (off + 15) / 16 * 16;
}

/* The first offset at or after off that lies on a page boundary. */
static size_t
page_start(size_t off)
{
	return (off + CONNMEM_OFFSET + CONNMEM_PAGE - 1) / CONNMEM_PAGE * CONNMEM_PAGE -
	    CONNMEM_OFFSET;
}

static void
layout(int kind, size_t head_max, struct layout *l)
{
	size_t off = align16(sizeof(struct conn));

	memset(l, 0, sizeof *l);
	if (kind == CONN_TLS) {
		l->sc = off;
		off = align16(off + sizeof(br_ssl_server_context));
	}
	l->head = off;
	off += head_max + CONN_HEAD_SLACK;
	if (kind == CONN_ADMIN) { /* never tunnels: no upstream TLS state, rare: packed */
		l->ibuf = off;
		l->obuf = off + CONN_ADMIN_IBUF;
		l->total = l->obuf + CONN_ADMIN_OBUF;
		return;
	}
	l->ibuf = page_start(off);
	off = l->ibuf + (kind == CONN_TLS ? TLS_IBUF : CONN_PLAIN_BUF);
	l->obuf = page_start(off);
	off = l->obuf + (kind == CONN_TLS ? TLS_OBUF : CONN_PLAIN_BUF);
	if (up_tls_mem) {
		l->up = align16(off);
		off = l->up + UP_TLS_BYTES;
	}
	l->total = off;
}

/* see conn.h */
size_t
conn_footprint(int kind)
{
	struct layout l;

	layout(kind, start_head_max, &l);
	return l.total;
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

/* see conn.h */
void
conn_trim(int64_t now)
{
	connmem_trim(now);
}

/* see conn.h */
struct conn *
conn_new(const struct relay *rl, int fd, const struct net_addr *peer, int kind, int over_limit,
    int proxy_hdr)
{
	size_t head_max = rl->cfg->max_header_bytes, head_cap = head_max + CONN_HEAD_SLACK;
	struct layout l;
	unsigned char *block;
	struct conn *c;

	layout(kind, head_max, &l);
	block = connmem_get(l.total, rl->now_ms);
	if (block == NULL)
		return NULL;
	c = (struct conn *)(void *)block;
	memset(c, 0, sizeof *c);
	c->rl = rl;
	c->state = proxy_hdr ? CS_PPHDR : CS_HEAD;
	c->over_limit = over_limit ? 1 : 0;
	c->t_start = rl->now_ms;
	c->deadline = rl->now_ms + (int64_t)rl->cfg->header_timeout * 1000;
	c->peer_addr = *peer;
	net_addr_text(peer, c->peer, 1);
	c->head = (char *)block + l.head;
	c->head_max = head_max;
	c->head_cap = head_cap;
	c->kind = kind;
	c->mlistener = kind == CONN_ADMIN ? METRICS_ADMIN : kind == CONN_TLS ? METRICS_HTTPS :
	    METRICS_HTTP;
	if (kind == CONN_ADMIN) {
		hop_end_plain(&c->hop.front, fd, block + l.ibuf, CONN_ADMIN_IBUF, block + l.obuf,
		    CONN_ADMIN_OBUF);
	} else if (kind == CONN_TLS) {
		c->sc = (br_ssl_server_context *)(void *)(block + l.sc);
		if (tls_server_init(c->sc, block + l.ibuf, TLS_IBUF, block + l.obuf, TLS_OBUF) !=
		    ERR_OK) {
			connmem_put(block);
			return NULL;
		}
		hop_end_tls(&c->hop.front, fd, &c->sc->eng);
	} else {
		hop_end_plain(&c->hop.front, fd, block + l.ibuf, CONN_PLAIN_BUF, block + l.obuf,
		    CONN_PLAIN_BUF);
	}
	hop_end_plain(&c->hop.up, -1, NULL, 0, NULL, 0);
	if (l.up) {
		c->ucc = (br_ssl_client_context *)(void *)(block + l.up);
		c->uxc = (br_x509_minimal_context *)(void *)(block + l.up +
		    sizeof(br_ssl_client_context));
		c->uibuf = block + l.up + sizeof(br_ssl_client_context) +
		    sizeof(br_x509_minimal_context);
		c->uobuf = c->uibuf + CONN_UP_IBUF;
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
	connmem_put(c);
}

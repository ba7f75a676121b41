/*
 * dial.h — reaching an admitted target: the route (directly, or through the upstream proxy
 * of HTTPS_PROXY / HTTP_PROXY), the address (resolver cache; an IP literal as written),
 * the non-blocking connect to each address in turn, and through a proxy the CONNECT
 * exchange — inside TLS to an https:// proxy (tls_client_init). Once through, the tunnel
 * starts (tunnel.c).
 *
 * Owns: the RESOLVE, CONNECT and PROXY states, the upstream end's socket and TLS set-up,
 * the upstream.fail / upstream.proxy_tls_fail / upstream.proxy_refused lines and their
 * 502/504 answers. Must not touch: admission (already done), the client's bytes. The relay
 * connects only to addresses it resolved itself for an allowed name (no DNS rebinding).
 */
#ifndef RELAYPRO_DIAL_H
#define RELAYPRO_DIAL_H

#include "conn.h"

/* c->target is admitted: pick the route, look the address up (or wait in RESOLVE) and
 * start connecting (CONNECT). */
void dial_start(struct conn *c);

/* The resolver has news: a connection in RESOLVE tries its lookup again. */
void dial_resolved(struct conn *c);

/* The upstream socket reported an event in CONNECT or PROXY: the connect's outcome (the
 * next address on failure), then the CONNECT exchange with a proxy, or the tunnel. */
void dial_event(struct conn *c);

/* The deadline of RESOLVE, CONNECT or PROXY passed: the next address, or 504. */
void dial_timeout(struct conn *c);

#endif

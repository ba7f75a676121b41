/*
 * upstream.h — reaching the console through an HTTP proxy (SPEC §2.4).
 *
 * With proxyEnabled, targets on port 80 go through HTTP_PROXY (or http_proxy) and all
 * others through HTTPS_PROXY (or https_proxy), unless NO_PROXY (or no_proxy) names the
 * host: a comma list of "*" (everything), host names matched as suffixes on a label
 * boundary ("example.com" and ".example.com" both match "example.com" and
 * "a.example.com"), and IP literals matched exactly. The relay speaks CONNECT to the
 * proxy, with Proxy-Authorization: Basic when the proxy URL has user:password.
 * Proxy URLs are "http://[user:password@]host[:port][/]" (port 80 by default) or
 * "https://[user:password@]host[:port][/]" (port 443 by default): then the hop to the
 * proxy is TLS under the relay's one client policy (tls_client_init, tls.h) and the
 * CONNECT exchange and the tunnel run inside it. The proxy's certificate chain is verified against upstream_trust_load()'s anchors
 * and its DNS name against the URL's host; BearSSL matches DNS names only, so an https://
 * proxy given by IP address is refused at start-up.
 */
#ifndef RELAYPRO_UPSTREAM_H
#define RELAYPRO_UPSTREAM_H

#include <stddef.h>

#include <bearssl.h>

#include "anchors.h"
#include "config.h"
#include "target.h"

#define UPSTREAM_AUTH_MAX 400   /* "Basic " + base64 of user:password */
#define UPSTREAM_NO_PROXY_MAX 32
#define UPSTREAM_REQ_MAX 768    /* the CONNECT request sent to a proxy */

struct upstream_proxy {
	int set;
	struct target_host host;
	unsigned port;
	int tls;                      /* https:// proxy: the hop to it is TLS */
	char auth[UPSTREAM_AUTH_MAX]; /* "" or the Proxy-Authorization value (a secret) */
};

struct upstream_routes {
	int enabled;
	struct upstream_proxy https, http;
	int no_proxy_all;
	int n_no_proxy;
	char no_proxy[UPSTREAM_NO_PROXY_MAX][TARGET_HOST_MAX + 1];
};

/* Read HTTPS_PROXY, HTTP_PROXY, NO_PROXY (and lower case) when enabled. ERR_OK, or an
 * error with a message naming the variable (never the password). */
int upstream_load(struct upstream_routes *r, int enabled, char *err, size_t errlen);

/* The proxy for a target, or NULL to connect directly. */
const struct upstream_proxy *upstream_route(const struct upstream_routes *r,
    const struct target_host *host, unsigned port);

/* The CONNECT request for target through p into out; returns its length (0: too long). */
size_t upstream_connect_request(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, char *out, size_t cap);

/* Parse a proxy's answer head in buf[0..len): ERR_TRUNC until the blank line; then
 * ERR_OK with *status and *head_len (bytes of the head), or ERR_INVAL. */
int upstream_parse_answer(const char *buf, size_t len, int *status, size_t *head_len);

void upstream_wipe(struct upstream_routes *r);

/* 1 when a route goes through an https:// proxy (decides the per-connection memory). */
int upstream_any_tls(const struct upstream_routes *r);

/* The anchors an https:// proxy's certificate is checked against, into a (reset first):
 * the system bundle ANCHORS_SYSTEM_BUNDLE when readable, consoleCACert (inline PEM or a
 * file) or else RELAYPRO_CONSOLE_CA_FILE, and RELAYPRO_PROXY_CA_FILE. Files that are
 * named explicitly must be readable. ERR_OK with at least one anchor, or a reason. */
int upstream_trust_load(struct anchors *a, const struct config *cfg, char *err, size_t errlen);

/* A short name for the reason a TLS session to a proxy failed (BearSSL error code). */
const char *upstream_tls_error(int err);

#endif

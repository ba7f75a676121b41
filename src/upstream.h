/*
 * upstream.h — reaching the console through an upstream proxy (docs/configuration.md).
 *
 * Routes. With proxyEnabled, targets on port 80 take the "http" route and all others the
 * "https" route. Each route's proxy URL is read from the environment the way curl reads
 * it: the lower-case variable first, then the upper-case one, and when neither is set
 * (an empty value counts as unset) all_proxy, then ALL_PROXY:
 *     https route: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY
 *     http route:  http_proxy,  HTTP_PROXY,  all_proxy, ALL_PROXY
 * (curl reads no upper-case HTTP_PROXY, a guard for CGI programs whose environment a
 * request header can set; the relay is no CGI program and the spec names HTTP_PROXY.)
 * Hosts named by no_proxy (or else NO_PROXY) go direct: a comma list of "*"
 * (everything), host names matched as suffixes on a label boundary ("example.com" and
 * ".example.com" both match "example.com" and "a.example.com"), and IP literals matched
 * exactly.
 *
 * Proxy URLs, "scheme://[user:password@]host[:port][/]" (no scheme: http://):
 *   http://    CONNECT over TCP (port 80), Proxy-Authorization: Basic with user:password;
 *   https://   the same inside TLS to the proxy (port 443; the relay's one client policy,
 *              tls_client_init in tls.h): its chain is verified against
 *              upstream_trust_load()'s anchors and its DNS name against the URL's host;
 *              BearSSL matches DNS names only, so an https:// proxy given by IP address
 *              is refused at start-up;
 *   socks5://  SOCKS5 (RFC 1928, port 1080): the relay resolves the target itself (the
 *              allowed-target rules: only an allowed name, resolved by the relay) and
 *              sends the address; user:password (1..255 bytes each) for RFC 1929;
 *   socks5h:// SOCKS5 with the target's host name sent for the proxy to resolve.
 * Any other scheme, a path, %-escapes or a user without password are refused naming the
 * variable (never the password). The SOCKS5 exchange itself is socks5.h's.
 */
#ifndef RELAYPRO_UPSTREAM_H
#define RELAYPRO_UPSTREAM_H

#include <stddef.h>

#include <bearssl.h>

#include "anchors.h"
#include "config.h"
#include "net.h"
#include "socks5.h"
#include "target.h"

#define UPSTREAM_AUTH_MAX 400   /* "Basic " + base64 of user:password */
#define UPSTREAM_NO_PROXY_MAX 32
#define UPSTREAM_REQ_MAX 768    /* the CONNECT request sent to a proxy */

enum { UPSTREAM_SOCKS5 = 1, UPSTREAM_SOCKS5H = 2 };

struct upstream_proxy {
	int set;
	struct target_host host;
	unsigned port;
	int tls;                      /* https:// proxy: the hop to it is TLS */
	int socks;                    /* 0: HTTP CONNECT; UPSTREAM_SOCKS5 or UPSTREAM_SOCKS5H */
	const char *var;              /* the variable the URL came from ("https_proxy", ...) */
	char auth[UPSTREAM_AUTH_MAX]; /* "" or the Proxy-Authorization value (a secret) */
	unsigned char user[SOCKS5_NAME_MAX], pass[SOCKS5_NAME_MAX]; /* SOCKS5 credentials (secrets) */
	size_t ulen, plen;            /* 0: no SOCKS5 credentials */
};

struct upstream_routes {
	int enabled;
	struct upstream_proxy https, http;
	int no_proxy_all;
	int n_no_proxy;
	char no_proxy[UPSTREAM_NO_PROXY_MAX][TARGET_HOST_MAX + 1];
};

/* What the caller can drive, for upstream_load_with. */
#define UPSTREAM_WITH_SOCKS5 1u

/* Read the routes from the environment (see above) when enabled. ERR_OK, or ERR_INVAL
 * with a message naming the variable (never the password). A socks5:// or socks5h://
 * route is refused unless with has UPSTREAM_WITH_SOCKS5: a caller that cannot run the
 * SOCKS5 exchange must not send CONNECT to a SOCKS5 proxy. */
int upstream_load_with(struct upstream_routes *r, int enabled, unsigned with, char *err,
    size_t errlen);

/* upstream_load_with(r, enabled, 0, err, errlen): the routes of a caller that speaks only
 * HTTP CONNECT. (The connection core and registration both run the SOCKS5 exchange and
 * load with UPSTREAM_WITH_SOCKS5.) */
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

/* The SOCKS5 request for target host:port through proxy p (p->socks set) into req,
 * pointing into p, host and addr (they must outlive the exchange). An IP literal is sent
 * as its address; a name as the name through a socks5h:// proxy, else as addr, the
 * relay's own resolution of that (allowed) name: addr may be NULL only when no address
 * is needed. Credentials from p when it has them. ERR_OK, or ERR_INVAL (a name through
 * socks5:// without addr, or addr of another family). */
int upstream_socks5_req(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, const struct net_addr *addr, struct socks5_req *req);

/* For a thread that may block: the whole SOCKS5 exchange for host:port over fd, a
 * connected blocking socket whose SO_SNDTIMEO/SO_RCVTIMEO bound each step; addr as for
 * upstream_socks5_req. Reads the proxy's answers exactly, never a byte of the tunnel
 * after them; wipes the message that carried the password. ERR_OK (the tunnel is open on
 * fd), or ERR_IO with why: the proxy and the reason (the reply's meaning for a refusal),
 * never a credential; *rep is the proxy's REP when it refused the CONNECT, else 0. */
int upstream_socks5_connect_fd(int fd, const struct upstream_proxy *p,
    const struct target_host *host, unsigned port, const struct net_addr *addr,
    unsigned *rep, char *why, size_t whylen);

/* Why the SOCKS5 exchange s (failed) for host:port through p did not open the tunnel, in
 * words for the log: the proxy, and the meaning of its reply code for a refusal (with
 * the code), or what it did ("closed the connection during the greeting", ...). Never a
 * credential. */
void upstream_socks5_why(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, const struct socks5 *s, char *why, size_t whylen);

#define UPSTREAM_SOCKS5_TRIES 4 /* a socks5:// target's addresses tried, at most */

/* For a thread that may block (registration): a socket with a SOCKS5 tunnel to host:port
 * through p, or -1 with why. Connects to the proxy (each of its addresses in turn, each
 * step bounded by timeout_ms) and runs upstream_socks5_connect_fd. Through socks5:// a
 * name is resolved here (getaddrinfo) and its addresses asked for in turn, on a new
 * connection each, while the proxy answers that one cannot be reached (REP X'03',
 * X'04', X'05'); at most UPSTREAM_SOCKS5_TRIES. */
int upstream_socks5_dial(const struct upstream_proxy *p, const struct target_host *host,
    unsigned port, int timeout_ms, char *why, size_t whylen);

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

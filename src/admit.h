/*
 * admit.h — admission: every rule that decides whether a request on the proxy listeners
 * is answered as asked, in one pure function (no I/O, no globals, no allocation).
 *
 * Owns: the request rules of the relay's contract for CONNECT, absolute-form requests,
 * GET /v1/tunnel and GET /v1/udp (WebSocket), POST /v1/token and the relay's own paths —
 * which checks apply, in which order, and the refusal each one gives (status, JSON error
 * code and message, extra header lines, what is logged and whether the brute-force limiter
 * counts it), and judging an open tunnel again after a reload (admit_recheck). Must not
 * touch: sockets, logs, the limiter's table, the clock, the
 * configuration — the caller brings every fact (the parsed head, the verified credential,
 * the policy, the time) and carries the verdict out.
 *
 * The rules, in the order they are applied (the first that fails decides):
 *   1. over maxConnections: 503 too_many_connections (every kind);
 *   2. the request target's syntax: https:// absolute-form 400 ("use CONNECT"); a numeric
 *      host that is not canonical dotted IPv4 403 forbidden_target (target.forbidden
 *      logged: other spellings of an address never match a configured one); any other
 *      bad target 400; a target form that does not fit the method 400; an absolute-form
 *      request whose Transfer-Encoding does not end in chunked 400 (its body has no
 *      reliable end, and the relay forwards one request and its body, nothing after:
 *      body.h);
 *   3. WebSocket handshakes (/v1/tunnel, /v1/udp): GET with HTTP/1.1, Upgrade: websocket
 *      and Connection: Upgrade, Sec-WebSocket-Version present (400) and 13 (426 with
 *      Sec-WebSocket-Version: 13), a valid Sec-WebSocket-Key, no body, one ?target=
 *      host:port (400; a numeric host 403 as in 2);
 *   4. stopping (SIGTERM): 503 shutting_down (tunnels only);
 *   5. the client's address is banned by the brute-force limiter: 429 rate_limited;
 *   6. the credential: CONNECT and absolute-form take Proxy-Authorization: Bearer (an
 *      access token) or, with a password file, Basic; the WebSocket paths Authorization:
 *      Bearer; POST /v1/token Authorization: Bearer (a grant). Missing: 407 (or 401)
 *      auth_required, logged as auth.fail "missing", not counted (every client's first
 *      try). Another scheme: auth_required, counted "unsupported scheme" (POST /v1/token:
 *      as missing). Not accepted: 407/401 with the verifier's code (token_expired ...;
 *      auth_failed for a wrong password), counted. 407 carries Proxy-Authenticate: Bearer
 *      (and Basic with a password file), 401 WWW-Authenticate: Bearer;
 *   7. the target against the policy: host (console, migration console while its window
 *      lasts, allowedHosts) and port (allowedPorts; allowedUdpPorts for /v1/udp, empty by
 *      default): 403 forbidden_target, target.forbidden logged.
 * The relay's own paths (/healthz, /readyz, anything else: 404/405) meet rule 1 only.
 */
#ifndef RELAYPRO_ADMIT_H
#define RELAYPRO_ADMIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http.h"
#include "target.h"

/* What the request asks for (the caller routes; admit judges). */
enum admit_kind {
	ADMIT_LOCAL = 0,  /* the relay's own paths: /healthz, /readyz, 404, 405 */
	ADMIT_CONNECT,    /* CONNECT host:port */
	ADMIT_FORWARD,    /* absolute-form (or any other target that is not origin-form) */
	ADMIT_TUNNEL,     /* GET /v1/tunnel?target=host:port, WebSocket */
	ADMIT_UDP,        /* GET /v1/udp?target=host:port, WebSocket, datagrams */
	ADMIT_TOKEN       /* POST /v1/token: a grant for an access token */
};

/* Credential schemes a kind accepts (admit_schemes). */
enum { ADMIT_SCHEME_BEARER = 1, ADMIT_SCHEME_BASIC = 2 };

#define ADMIT_WHY_MAX 384 /* room for a token refusal's reason (TOKEN_WHY_MAX) */

/* The credential as found and checked by the caller (cred.h). */
enum admit_cred_state {
	ADMIT_CRED_NONE = 0,  /* no credential header */
	ADMIT_CRED_SCHEME,    /* a scheme this kind does not accept (never checked) */
	ADMIT_CRED_OK,        /* accepted */
	ADMIT_CRED_BAD        /* checked and refused: code, reason */
};

struct admit_cred {
	enum admit_cred_state state;
	int basic;            /* the credential was Basic (user and password) */
	const char *code;     /* BAD: the error code the client gets (static text) */
	const char *reason;   /* BAD: the short cause logs and metrics use (NULL: the code) */
	const char *why;      /* BAD: NULL or the precise cause for the operator's log */
	char why_text[ADMIT_WHY_MAX]; /* storage for why (the token verifier's reason) */
};

/* The request and what the caller knows about the relay and the client. */
struct admit_req {
	enum admit_kind kind;
	const char *buf;                  /* the head (spans of req point into it) */
	const struct http_request *req;   /* parsed (http_parse returned HTTP_OK) */
	int split_rc;                     /* http_target_split's result for req */
	const struct http_target *t;      /* ... and its output */
	size_t body_len;                  /* bytes of the request's body (Content-Length) */
	int over_limit;                   /* accepted beyond maxConnections */
	int draining;                     /* the relay is stopping */
	int banned;                       /* the client's address is banned (limit.h) */
};

struct admit_policy {
	const struct target_policy *targets;
	const uint16_t *udp_ports;        /* allowedUdpPorts (may be NULL with n_udp_ports 0) */
	size_t n_udp_ports;
	int basic;                        /* a password file is set: Basic is accepted */
	time_t now;                       /* wall clock (the migration window) */
};

enum { ADMIT_LOG_NONE = 0, ADMIT_LOG_AUTH, ADMIT_LOG_TARGET };

#define ADMIT_TEXT_MAX (TARGET_HOST_MAX + 16)

struct admit_verdict {
	int status;               /* 0: admitted; else the refusal's HTTP status */
	const char *code;         /* the JSON error code */
	const char *message;      /* the JSON message */
	const char *extra;        /* NULL or whole header lines for the refusal (challenges) */
	int log;                  /* ADMIT_LOG_*: auth.fail or target.forbidden */
	int counted;              /* an authentication failure the brute-force limiter counts */
	int authed;               /* the credential was accepted (the user is known) */
	const char *reason;       /* the log's short reason (auth.fail: what metrics count by) */
	const char *why;          /* auth.fail: NULL or the precise cause (admit_cred.why) */
	struct target_addr target; /* admitted tunnels: where to; 403 by policy: what was asked */
	char text[ADMIT_TEXT_MAX]; /* a target refused for its syntax, as sent (NUL-terminated) */
};

/* Which header carries this kind's credential: HTTP_H_PROXY_AUTHORIZATION (CONNECT,
 * absolute-form), HTTP_H_AUTHORIZATION (WebSocket paths, POST /v1/token), or -1. */
int admit_cred_header(enum admit_kind kind);

/* ADMIT_SCHEME_* bits this kind accepts; basic: a password file is set. */
unsigned admit_schemes(enum admit_kind kind, int basic);

/* 1 when this kind's credential is a grant (POST /v1/token), 0 for an access token. */
int admit_wants_grant(enum admit_kind kind);

/* Apply the rules above; the verdict is always filled. Returns v->status (0: admitted). */
int admit_check(const struct admit_req *rq, const struct admit_cred *cr,
    const struct admit_policy *pol, struct admit_verdict *v);

/* ---- judging an open tunnel again (revocation at a reload) ---------------------------
 * A reload never drops an open tunnel except one whose credential or target the new
 * configuration no longer accepts. What admitted a tunnel is kept on its connection as a
 * few fixed facts (never the credential): which credential, the access token's epoch, a
 * keyed fingerprint of the Basic user:password (cred.h). Judged again here:
 *   - Bearer: the token's epoch must still be the epoch (raised: revoked; lowered: its
 *     tokens are not accepted either);
 *   - Basic: a password file must still be set and hold that user with that password;
 *   - the target: rule 7 with the new policy and the time now (allowedHosts, allowedPorts,
 *     consoleAddress, the migration window — also when it ended by time alone,
 *     allowedUdpPorts for /v1/udp).
 * A token's exp is not a fact: its passing never cuts an open tunnel. */
enum { ADMIT_CRED_KIND_NONE = 0, ADMIT_CRED_KIND_BEARER, ADMIT_CRED_KIND_BASIC };

struct admit_tunnel {
	enum admit_kind kind;             /* ADMIT_CONNECT, _FORWARD, _TUNNEL or _UDP */
	int cred_kind;                    /* ADMIT_CRED_KIND_* */
	int64_t epoch;                    /* Bearer: the token's ep */
	uint64_t user_fp;                 /* Basic: fingerprint of user:password */
	const struct target_addr *target;
};

struct admit_recheck_policy {
	const struct target_policy *targets;
	const uint16_t *udp_ports;        /* allowedUdpPorts */
	size_t n_udp_ports;
	int64_t epoch;                    /* [clientAuthToken] epoch now */
	int basic;                        /* a password file is set */
	const uint64_t *user_fps;         /* its entries' fingerprints, sorted ascending */
	size_t n_user_fps;
	time_t now;                       /* wall clock */
};

/* NULL when the tunnel stands, else why it is revoked (static text, for the log). */
const char *admit_recheck(const struct admit_tunnel *t, const struct admit_recheck_policy *p);

#endif

/*
 * t_admit.c — admission (admit.h): one table, one row per rule and per kind of request —
 * CONNECT, absolute-form, GET /v1/tunnel and GET /v1/udp alike, POST /v1/token and the
 * relay's own paths — each a real head (parsed by http_parse, split by http_target_split)
 * with the facts the caller would bring, and the verdict expected: status, error code,
 * what is logged, whether the limiter counts it, the challenge, the target admitted.
 * Then admit_recheck (revocation at a reload): one row per rule, each a tunnel's facts
 * against a new configuration, stands or revoked. A token's exp is not among the facts:
 * its passing never cuts a tunnel.
 */
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "test.h"

#define T0 1800000000 /* "now" in the table; the migration window ends at T0 + 100 */

/* A valid WebSocket handshake's header lines (RFC 6455 §1.3's sample key). */
#define WSH "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define TUN(q) "GET /v1/tunnel?" q " HTTP/1.1\r\nHost: r\r\n" WSH "\r\n"
#define UDP(q) "GET /v1/udp?" q " HTTP/1.1\r\nHost: r\r\n" WSH "\r\n"
#define CON(t) "CONNECT " t " HTTP/1.1\r\nHost: " t "\r\n\r\n"
#define FWD(u) "GET " u " HTTP/1.1\r\nHost: x\r\n\r\n"
#define TOK "POST /v1/token HTTP/1.1\r\nHost: r\r\n\r\n"

/* facts */
enum { F_OVER = 1, F_DRAIN = 2, F_BAN = 4, F_BASIC = 8, F_LATE = 16, F_BODY = 32, F_UDP0 = 64 };
/* credential states as the table writes them */
enum { C_OK, C_NONE, C_SCHEME, C_BAD, C_BADBASIC };
/* challenges expected */
enum { X_NONE, X_PROXY, X_PROXY_BASIC, X_WWW, X_WSVER };

static const struct row {
	const char *name;
	enum admit_kind kind;
	const char *head;
	unsigned facts;
	int cred;
	int status;          /* 0: admitted */
	const char *code;
	int log, counted, extra;
	const char *host;    /* admitted (or 403 by policy): the target */
	unsigned port;
} rows[] = {
	/* ---- admitted, each kind ---- */
	{ "connect ok", ADMIT_CONNECT, CON("console.example:443"), 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 443 },
	{ "forward ok", ADMIT_FORWARD, FWD("http://console.example/x"), 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 80 },
	{ "tunnel ok", ADMIT_TUNNEL, TUN("target=console.example:443"), 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 443 },
	{ "udp ok", ADMIT_UDP, UDP("target=console.example:10500"), 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 10500 },
	{ "token ok", ADMIT_TOKEN, TOK, 0, C_OK, 0, NULL, 0, 0, 0, NULL, 0 },
	{ "local ok", ADMIT_LOCAL, FWD("/healthz"), 0, C_NONE, 0, NULL, 0, 0, 0, NULL, 0 },
	{ "local ok while stopping and banned", ADMIT_LOCAL, FWD("/readyz"), F_DRAIN | F_BAN, C_NONE, 0, NULL, 0, 0, 0, NULL, 0 },
	{ "connect basic ok", ADMIT_CONNECT, CON("console.example:4222"), F_BASIC, C_OK, 0, NULL, 0, 0, 0, "console.example", 4222 },
	{ "tunnel ?target= among others, %3A decoded", ADMIT_TUNNEL, TUN("a=1&target=console.example%3A443&b=2"), 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 443 },

	/* ---- rule 1: maxConnections, every kind ---- */
	{ "connect over limit", ADMIT_CONNECT, CON("console.example:443"), F_OVER, C_OK, 503, "too_many_connections", 0, 0, 0, NULL, 0 },
	{ "forward over limit", ADMIT_FORWARD, FWD("http://console.example/"), F_OVER, C_OK, 503, "too_many_connections", 0, 0, 0, NULL, 0 },
	{ "tunnel over limit", ADMIT_TUNNEL, TUN("target=console.example:443"), F_OVER, C_OK, 503, "too_many_connections", 0, 0, 0, NULL, 0 },
	{ "udp over limit", ADMIT_UDP, UDP("target=console.example:10500"), F_OVER, C_OK, 503, "too_many_connections", 0, 0, 0, NULL, 0 },
	{ "token over limit", ADMIT_TOKEN, TOK, F_OVER, C_OK, 503, "too_many_connections", 0, 0, 0, NULL, 0 },
	{ "local over limit", ADMIT_LOCAL, FWD("/healthz"), F_OVER, C_NONE, 503, "too_many_connections", 0, 0, 0, NULL, 0 },
	{ "over limit before a bad target", ADMIT_CONNECT, CON("a@b:443"), F_OVER, C_NONE, 503, "too_many_connections", 0, 0, 0, NULL, 0 },

	/* ---- rule 2: the target's syntax ---- */
	{ "https absolute-form", ADMIT_FORWARD, FWD("https://console.example/"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "ftp absolute-form", ADMIT_FORWARD, FWD("ftp://console.example/"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "asterisk-form", ADMIT_FORWARD, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "fragment", ADMIT_FORWARD, FWD("http://console.example/#x"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect userinfo", ADMIT_CONNECT, CON("u@console.example:443"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect percent", ADMIT_CONNECT, CON("console%2eexample:443"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect no port", ADMIT_CONNECT, CON("console.example"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect port 0", ADMIT_CONNECT, CON("console.example:0"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect port 65536", ADMIT_CONNECT, CON("console.example:65536"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect port 0443", ADMIT_CONNECT, CON("console.example:0443"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect empty host", ADMIT_CONNECT, CON(":443"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect origin-form", ADMIT_CONNECT, CON("/x"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward userinfo", ADMIT_FORWARD, FWD("http://u:p@console.example/"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward port 0", ADMIT_FORWARD, FWD("http://console.example:0/"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel userinfo", ADMIT_TUNNEL, TUN("target=u@console.example:443"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "udp no port", ADMIT_UDP, UDP("target=console.example"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "connect numeric", ADMIT_CONNECT, CON("167772165:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, NULL, 0 },
	{ "connect octal", ADMIT_CONNECT, CON("012.0.0.5:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, NULL, 0 },
	{ "forward hex", ADMIT_FORWARD, FWD("http://0x0a.0.0.5/"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, NULL, 0 },
	{ "tunnel short form", ADMIT_TUNNEL, TUN("target=10.5:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, NULL, 0 },
	{ "udp numeric", ADMIT_UDP, UDP("target=167772165:10500"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, NULL, 0 },
	{ "numeric before auth", ADMIT_CONNECT, CON("167772165:443"), 0, C_NONE, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, NULL, 0 },
	{ "syntax before stopping", ADMIT_CONNECT, CON("a@b:443"), F_DRAIN, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward chunked", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 80 },
	{ "forward gzip, chunked", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: gzip , Chunked\r\n\r\n", 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 80 },
	{ "forward chunked, gzip", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward gzip only", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward chunked twice", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward empty Transfer-Encoding", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "forward framing before auth", ADMIT_FORWARD, "POST http://console.example/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 0, C_NONE, 400, "bad_request", 0, 0, 0, NULL, 0 },

	/* ---- rule 3: the WebSocket handshake (both paths) ---- */
	{ "tunnel POST", ADMIT_TUNNEL, "POST /v1/tunnel?target=console.example:443 HTTP/1.1\r\nHost: r\r\n" WSH "\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "udp HTTP/1.0", ADMIT_UDP, "GET /v1/udp?target=console.example:10500 HTTP/1.0\r\nHost: r\r\n" WSH "\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel no Upgrade", ADMIT_TUNNEL, "GET /v1/tunnel?target=console.example:443 HTTP/1.1\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "udp no Connection: Upgrade", ADMIT_UDP, "GET /v1/udp?target=console.example:10500 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel Connection list", ADMIT_TUNNEL, "GET /v1/tunnel?target=console.example:443 HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 443 },
	{ "tunnel no version", ADMIT_TUNNEL, "GET /v1/tunnel?target=console.example:443 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel version 8", ADMIT_TUNNEL, "GET /v1/tunnel?target=console.example:443 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, C_OK, 426, "bad_request", 0, 0, X_WSVER, NULL, 0 },
	{ "udp version 14", ADMIT_UDP, "GET /v1/udp?target=console.example:10500 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 14\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0, C_OK, 426, "bad_request", 0, 0, X_WSVER, NULL, 0 },
	{ "tunnel no key", ADMIT_TUNNEL, "GET /v1/tunnel?target=console.example:443 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "udp short key", ADMIT_UDP, "GET /v1/udp?target=console.example:10500 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel with a body", ADMIT_TUNNEL, TUN("target=console.example:443"), F_BODY, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel no query", ADMIT_TUNNEL, "GET /v1/tunnel HTTP/1.1\r\nHost: r\r\n" WSH "\r\n", 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "udp no target", ADMIT_UDP, UDP("host=console.example:10500"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel empty target", ADMIT_TUNNEL, TUN("target="), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "tunnel two targets", ADMIT_TUNNEL, TUN("target=console.example:443&target=evil:443"), 0, C_OK, 400, "bad_request", 0, 0, 0, NULL, 0 },
	{ "handshake before auth", ADMIT_TUNNEL, "GET /v1/tunnel?target=console.example:443 HTTP/1.1\r\n\r\n", 0, C_NONE, 400, "bad_request", 0, 0, 0, NULL, 0 },

	/* ---- rule 4: stopping (tunnels only) ---- */
	{ "connect stopping", ADMIT_CONNECT, CON("console.example:443"), F_DRAIN, C_OK, 503, "shutting_down", 0, 0, 0, NULL, 0 },
	{ "forward stopping", ADMIT_FORWARD, FWD("http://console.example/"), F_DRAIN, C_OK, 503, "shutting_down", 0, 0, 0, NULL, 0 },
	{ "tunnel stopping", ADMIT_TUNNEL, TUN("target=console.example:443"), F_DRAIN, C_OK, 503, "shutting_down", 0, 0, 0, NULL, 0 },
	{ "udp stopping", ADMIT_UDP, UDP("target=console.example:10500"), F_DRAIN, C_OK, 503, "shutting_down", 0, 0, 0, NULL, 0 },
	{ "token while stopping", ADMIT_TOKEN, TOK, F_DRAIN, C_OK, 0, NULL, 0, 0, 0, NULL, 0 },
	{ "stopping before banned", ADMIT_CONNECT, CON("console.example:443"), F_DRAIN | F_BAN, C_NONE, 503, "shutting_down", 0, 0, 0, NULL, 0 },

	/* ---- rule 5: banned ---- */
	{ "connect banned", ADMIT_CONNECT, CON("console.example:443"), F_BAN, C_OK, 429, "rate_limited", 0, 0, 0, NULL, 0 },
	{ "forward banned", ADMIT_FORWARD, FWD("http://console.example/"), F_BAN, C_OK, 429, "rate_limited", 0, 0, 0, NULL, 0 },
	{ "tunnel banned", ADMIT_TUNNEL, TUN("target=console.example:443"), F_BAN, C_OK, 429, "rate_limited", 0, 0, 0, NULL, 0 },
	{ "udp banned", ADMIT_UDP, UDP("target=console.example:10500"), F_BAN, C_OK, 429, "rate_limited", 0, 0, 0, NULL, 0 },
	{ "token banned", ADMIT_TOKEN, TOK, F_BAN, C_OK, 429, "rate_limited", 0, 0, 0, NULL, 0 },
	{ "banned before a bad credential", ADMIT_CONNECT, CON("console.example:443"), F_BAN, C_BAD, 429, "rate_limited", 0, 0, 0, NULL, 0 },

	/* ---- rule 6: the credential ---- */
	{ "connect missing", ADMIT_CONNECT, CON("console.example:443"), 0, C_NONE, 407, "auth_required", ADMIT_LOG_AUTH, 0, X_PROXY, NULL, 0 },
	{ "connect missing, Basic offered", ADMIT_CONNECT, CON("console.example:443"), F_BASIC, C_NONE, 407, "auth_required", ADMIT_LOG_AUTH, 0, X_PROXY_BASIC, NULL, 0 },
	{ "connect other scheme", ADMIT_CONNECT, CON("console.example:443"), 0, C_SCHEME, 407, "auth_required", ADMIT_LOG_AUTH, 1, X_PROXY, NULL, 0 },
	{ "connect bad token", ADMIT_CONNECT, CON("console.example:443"), 0, C_BAD, 407, "token_expired", ADMIT_LOG_AUTH, 1, X_PROXY, NULL, 0 },
	{ "connect bad password", ADMIT_CONNECT, CON("console.example:443"), F_BASIC, C_BADBASIC, 407, "auth_failed", ADMIT_LOG_AUTH, 1, X_PROXY_BASIC, NULL, 0 },
	{ "forward missing", ADMIT_FORWARD, FWD("http://console.example/"), 0, C_NONE, 407, "auth_required", ADMIT_LOG_AUTH, 0, X_PROXY, NULL, 0 },
	{ "forward other scheme", ADMIT_FORWARD, FWD("http://console.example/"), F_BASIC, C_SCHEME, 407, "auth_required", ADMIT_LOG_AUTH, 1, X_PROXY_BASIC, NULL, 0 },
	{ "forward bad token", ADMIT_FORWARD, FWD("http://console.example/"), 0, C_BAD, 407, "token_expired", ADMIT_LOG_AUTH, 1, X_PROXY, NULL, 0 },
	{ "forward bad password", ADMIT_FORWARD, FWD("http://console.example/"), F_BASIC, C_BADBASIC, 407, "auth_failed", ADMIT_LOG_AUTH, 1, X_PROXY_BASIC, NULL, 0 },
	{ "tunnel missing", ADMIT_TUNNEL, TUN("target=console.example:443"), 0, C_NONE, 401, "auth_required", ADMIT_LOG_AUTH, 0, X_WWW, NULL, 0 },
	{ "tunnel other scheme", ADMIT_TUNNEL, TUN("target=console.example:443"), F_BASIC, C_SCHEME, 401, "auth_required", ADMIT_LOG_AUTH, 1, X_WWW, NULL, 0 },
	{ "tunnel bad token", ADMIT_TUNNEL, TUN("target=console.example:443"), 0, C_BAD, 401, "token_expired", ADMIT_LOG_AUTH, 1, X_WWW, NULL, 0 },
	{ "udp missing", ADMIT_UDP, UDP("target=console.example:10500"), 0, C_NONE, 401, "auth_required", ADMIT_LOG_AUTH, 0, X_WWW, NULL, 0 },
	{ "udp other scheme", ADMIT_UDP, UDP("target=console.example:10500"), 0, C_SCHEME, 401, "auth_required", ADMIT_LOG_AUTH, 1, X_WWW, NULL, 0 },
	{ "udp bad token", ADMIT_UDP, UDP("target=console.example:10500"), 0, C_BAD, 401, "token_expired", ADMIT_LOG_AUTH, 1, X_WWW, NULL, 0 },
	{ "token missing", ADMIT_TOKEN, TOK, 0, C_NONE, 401, "auth_required", ADMIT_LOG_AUTH, 0, X_WWW, NULL, 0 },
	{ "token other scheme (as missing)", ADMIT_TOKEN, TOK, 0, C_SCHEME, 401, "auth_required", ADMIT_LOG_AUTH, 0, X_WWW, NULL, 0 },
	{ "token bad grant", ADMIT_TOKEN, TOK, 0, C_BAD, 401, "token_expired", ADMIT_LOG_AUTH, 1, X_WWW, NULL, 0 },
	{ "credential before the target", ADMIT_CONNECT, CON("evil.example:443"), 0, C_NONE, 407, "auth_required", ADMIT_LOG_AUTH, 0, X_PROXY, NULL, 0 },

	/* ---- rule 7: the target against the policy ---- */
	{ "connect host not allowed", ADMIT_CONNECT, CON("evil.example:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "evil.example", 443 },
	{ "connect port not allowed", ADMIT_CONNECT, CON("console.example:22"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "console.example", 22 },
	{ "connect allowedHosts entry", ADMIT_CONNECT, CON("cdn.example:443"), 0, C_OK, 0, NULL, 0, 0, 0, "cdn.example", 443 },
	{ "connect case and trailing dot", ADMIT_CONNECT, CON("CONSOLE.Example.:443"), 0, C_OK, 0, NULL, 0, 0, 0, "console.example", 443 },
	{ "connect configured IP literal", ADMIT_CONNECT, CON("10.0.0.5:443"), 0, C_OK, 0, NULL, 0, 0, 0, "10.0.0.5", 443 },
	{ "connect IPv4-mapped IPv6 of it", ADMIT_CONNECT, CON("[::ffff:10.0.0.5]:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "::ffff:10.0.0.5", 443 },
	{ "connect subdomain", ADMIT_CONNECT, CON("a.console.example:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "a.console.example", 443 },
	{ "connect migration in window", ADMIT_CONNECT, CON("old.example:443"), 0, C_OK, 0, NULL, 0, 0, 0, "old.example", 443 },
	{ "connect migration after window", ADMIT_CONNECT, CON("old.example:443"), F_LATE, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "old.example", 443 },
	{ "forward host not allowed", ADMIT_FORWARD, FWD("http://evil.example/"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "evil.example", 80 },
	{ "forward port not allowed", ADMIT_FORWARD, FWD("http://console.example:8080/"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "console.example", 8080 },
	{ "tunnel host not allowed", ADMIT_TUNNEL, TUN("target=evil.example:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "evil.example", 443 },
	{ "tunnel port not allowed", ADMIT_TUNNEL, TUN("target=console.example:22"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "console.example", 22 },
	{ "tunnel migration after window", ADMIT_TUNNEL, TUN("target=old.example:443"), F_LATE, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "old.example", 443 },
	{ "udp host not allowed", ADMIT_UDP, UDP("target=evil.example:10500"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "evil.example", 10500 },
	{ "udp port in allowedPorts only", ADMIT_UDP, UDP("target=console.example:443"), 0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "console.example", 443 },
	{ "udp allowedUdpPorts empty", ADMIT_UDP, UDP("target=console.example:10500"), F_UDP0, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "console.example", 10500 },
	{ "udp allowedHosts entry", ADMIT_UDP, UDP("target=cdn.example:10500"), 0, C_OK, 0, NULL, 0, 0, 0, "cdn.example", 10500 },
	{ "udp migration after window", ADMIT_UDP, UDP("target=old.example:10500"), F_LATE, C_OK, 403, "forbidden_target", ADMIT_LOG_TARGET, 0, 0, "old.example", 10500 },
};

static void
one(const struct row *w, const struct target_policy *tp)
{
	static const uint16_t udp[] = { 10500 };
	struct http_request req;
	struct http_target t;
	struct admit_req rq;
	struct admit_cred cr;
	struct admit_policy pol;
	struct admit_verdict v;
	char name[160];
	int rc;

	http_init(&req);
	rc = http_parse(&req, w->head, strlen(w->head), 8192);
	snprintf(name, sizeof name, "%s: head parses", w->name);
	CHECK_INT(rc, HTTP_OK, name);
	memset(&rq, 0, sizeof rq);
	rq.kind = w->kind;
	rq.buf = w->head;
	rq.req = &req;
	rq.split_rc = http_target_split(w->head, &req, &t);
	rq.t = &t;
	rq.body_len = (w->facts & F_BODY) ? 5 : 0;
	rq.over_limit = (w->facts & F_OVER) != 0;
	rq.draining = (w->facts & F_DRAIN) != 0;
	rq.banned = (w->facts & F_BAN) != 0;
	memset(&cr, 0, sizeof cr);
	cr.state = w->cred == C_OK ? ADMIT_CRED_OK : w->cred == C_NONE ? ADMIT_CRED_NONE :
	    w->cred == C_SCHEME ? ADMIT_CRED_SCHEME : ADMIT_CRED_BAD;
	if (w->cred == C_BAD)
		cr.code = "token_expired";
	if (w->cred == C_BADBASIC) {
		cr.basic = 1;
		cr.code = "auth_failed";
		cr.reason = "bad password";
	}
	memset(&pol, 0, sizeof pol);
	pol.targets = tp;
	pol.udp_ports = (w->facts & F_UDP0) ? NULL : udp;
	pol.n_udp_ports = (w->facts & F_UDP0) ? 0 : 1;
	pol.basic = (w->facts & F_BASIC) != 0;
	pol.now = (w->facts & F_LATE) ? T0 + 100 : T0;

	rc = admit_check(&rq, &cr, &pol, &v);
	snprintf(name, sizeof name, "%s: status", w->name);
	CHECK_INT(v.status, w->status, name);
	CHECK_INT(rc, w->status, name);
	snprintf(name, sizeof name, "%s: code", w->name);
	if (w->code)
		CHECK_STR(v.code, w->code, name);
	else
		CHECK(v.code == NULL, name);
	snprintf(name, sizeof name, "%s: logged", w->name);
	CHECK_INT(v.log, w->log, name);
	snprintf(name, sizeof name, "%s: counted", w->name);
	CHECK_INT(v.counted, w->counted, name);
	snprintf(name, sizeof name, "%s: message and reason", w->name);
	CHECK(w->status == 0 || (v.message && v.message[0]), name);
	CHECK(!v.log || (v.reason && v.reason[0]), name);
	snprintf(name, sizeof name, "%s: challenge", w->name);
	switch (w->extra) {
	case X_NONE:
		CHECK(v.extra == NULL, name);
		break;
	case X_PROXY:
		CHECK_STR(v.extra, "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n", name);
		break;
	case X_PROXY_BASIC:
		CHECK_STR(v.extra, "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n"
		    "Proxy-Authenticate: Basic realm=\"relaypro\"\r\n", name);
		break;
	case X_WWW:
		CHECK_STR(v.extra, "WWW-Authenticate: Bearer realm=\"relaypro\"\r\n", name);
		break;
	case X_WSVER:
		CHECK_STR(v.extra, "Sec-WebSocket-Version: 13\r\n", name);
		break;
	}
	if (w->host) {
		snprintf(name, sizeof name, "%s: target", w->name);
		CHECK_STR(v.target.host.name, w->host, name);
		CHECK_INT(v.target.port, w->port, name);
	}
	if (w->log == ADMIT_LOG_TARGET && w->host == NULL) {
		snprintf(name, sizeof name, "%s: the refused text is kept for the log", w->name);
		CHECK(v.text[0] != 0, name);
	}
	snprintf(name, sizeof name, "%s: authed", w->name);
	CHECK_INT(v.authed, w->status == 0 ? (w->kind != ADMIT_LOCAL) :
	    (w->log == ADMIT_LOG_TARGET && w->host != NULL), name);
}

/* ---- admit_recheck: an open tunnel judged again after a reload ----------------------
 * The "new configuration" is the policy above (at T0, or T0 + 100 once the migration
 * window ended), epoch 7, a password file whose entries have fingerprints 10, 20, 30. */
enum { R_EPOCH = 7 };
static const uint64_t user_fps[] = { 10, 20, 30 };

static const struct rrow {
	const char *name;
	enum admit_kind kind;
	int cred;              /* ADMIT_CRED_KIND_* */
	int64_t epoch;
	uint64_t fp;
	const char *host;
	unsigned port;
	unsigned facts;        /* F_LATE: the window ended; F_BASIC: cleared = no password file;
	                        * F_UDP0: no allowedUdpPorts */
	int revoked;
} rrows[] = {
	{ "bearer, same epoch: stands", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 443, F_BASIC, 0 },
	{ "bearer, epoch raised: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH - 1, 0, "console.example", 443, F_BASIC, 1 },
	{ "bearer, epoch lowered: revoked", ADMIT_TUNNEL, ADMIT_CRED_KIND_BEARER, R_EPOCH + 1, 0, "console.example", 443, F_BASIC, 1 },
	{ "websocket bearer, same epoch: stands", ADMIT_TUNNEL, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 443, F_BASIC, 0 },
	{ "bearer ignores the password file", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 443, 0, 0 },
	{ "basic, user and password kept: stands", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, 0, 20, "console.example", 443, F_BASIC, 0 },
	{ "basic, first entry: stands", ADMIT_FORWARD, ADMIT_CRED_KIND_BASIC, 0, 10, "console.example", 80, F_BASIC, 0 },
	{ "basic, last entry: stands", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, 0, 30, "console.example", 443, F_BASIC, 0 },
	{ "basic, removed or password changed: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, 0, 25, "console.example", 443, F_BASIC, 1 },
	{ "basic, below every entry: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, 0, 1, "console.example", 443, F_BASIC, 1 },
	{ "basic, above every entry: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, 0, 99, "console.example", 443, F_BASIC, 1 },
	{ "basic, no password file any more: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, 0, 20, "console.example", 443, 0, 1 },
	{ "basic ignores the epoch", ADMIT_CONNECT, ADMIT_CRED_KIND_BASIC, R_EPOCH - 3, 20, "console.example", 443, F_BASIC, 0 },
	{ "no credential: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_NONE, R_EPOCH, 0, "console.example", 443, F_BASIC, 1 },
	{ "host no longer allowed: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "gone.example", 443, F_BASIC, 1 },
	{ "port no longer allowed: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 8443, F_BASIC, 1 },
	{ "allowedHosts entry kept: stands", ADMIT_FORWARD, ADMIT_CRED_KIND_BASIC, 0, 10, "cdn.example", 80, F_BASIC, 0 },
	{ "IP literal kept: stands", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "10.0.0.5", 4222, F_BASIC, 0 },
	{ "migration console in its window: stands", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "old.example", 443, F_BASIC, 0 },
	{ "migration window ended: revoked", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "old.example", 443, F_BASIC | F_LATE, 1 },
	{ "console after the window: stands", ADMIT_CONNECT, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 443, F_BASIC | F_LATE, 0 },
	{ "udp port kept: stands", ADMIT_UDP, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 10500, F_BASIC, 0 },
	{ "udp port not in allowedUdpPorts: revoked", ADMIT_UDP, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 10501, F_BASIC, 1 },
	{ "udp, allowedUdpPorts emptied: revoked", ADMIT_UDP, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "console.example", 10500, F_BASIC | F_UDP0, 1 },
	{ "udp host gone: revoked", ADMIT_UDP, ADMIT_CRED_KIND_BEARER, R_EPOCH, 0, "gone.example", 10500, F_BASIC, 1 },
};

static void
recheck_rows(const struct target_policy *tp)
{
	static const uint16_t udp[] = { 10500 };
	struct admit_recheck_policy pol;
	struct admit_tunnel t;
	struct target_addr a;
	const char *why;
	char name[160];
	size_t i;

	for (i = 0; i < sizeof rrows / sizeof rrows[0]; i++) {
		const struct rrow *w = &rrows[i];
		memset(&a, 0, sizeof a);
		CHECK_INT(target_parse_host(w->host, strlen(w->host), &a.host), TARGET_OK, w->name);
		a.port = w->port;
		memset(&t, 0, sizeof t);
		t.kind = w->kind;
		t.cred_kind = w->cred;
		t.epoch = w->epoch;
		t.user_fp = w->fp;
		t.target = &a;
		memset(&pol, 0, sizeof pol);
		pol.targets = tp;
		pol.udp_ports = (w->facts & F_UDP0) ? NULL : udp;
		pol.n_udp_ports = (w->facts & F_UDP0) ? 0 : 1;
		pol.epoch = R_EPOCH;
		pol.basic = (w->facts & F_BASIC) != 0;
		pol.user_fps = pol.basic ? user_fps : NULL;
		pol.n_user_fps = pol.basic ? 3 : 0;
		pol.now = (w->facts & F_LATE) ? T0 + 100 : T0;
		why = admit_recheck(&t, &pol);
		snprintf(name, sizeof name, "recheck %s", w->name);
		CHECK(w->revoked ? why != NULL && why[0] : why == NULL, name);
	}
}

void
t_admit(void)
{
	struct target_policy tp;
	size_t i;

	memset(&tp, 0, sizeof tp);
	CHECK_INT(target_policy_set_console(&tp, "console.example", 15), TARGET_OK, "policy: console");
	CHECK_INT(target_policy_set_migration(&tp, "old.example", 11, T0 + 100), TARGET_OK,
	    "policy: migration");
	CHECK_INT(target_policy_add_host(&tp, "cdn.example", 11), TARGET_OK, "policy: cdn");
	CHECK_INT(target_policy_add_host(&tp, "10.0.0.5", 8), TARGET_OK, "policy: literal");
	target_policy_add_port(&tp, 443);
	target_policy_add_port(&tp, 80);
	target_policy_add_port(&tp, 4222);
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		one(&rows[i], &tp);
	recheck_rows(&tp);

	/* Which header carries the credential, which schemes, which token. */
	CHECK_INT(admit_cred_header(ADMIT_CONNECT), HTTP_H_PROXY_AUTHORIZATION, "header: CONNECT");
	CHECK_INT(admit_cred_header(ADMIT_FORWARD), HTTP_H_PROXY_AUTHORIZATION, "header: absolute-form");
	CHECK_INT(admit_cred_header(ADMIT_TUNNEL), HTTP_H_AUTHORIZATION, "header: /v1/tunnel");
	CHECK_INT(admit_cred_header(ADMIT_UDP), HTTP_H_AUTHORIZATION, "header: /v1/udp");
	CHECK_INT(admit_cred_header(ADMIT_TOKEN), HTTP_H_AUTHORIZATION, "header: /v1/token");
	CHECK_INT(admit_cred_header(ADMIT_LOCAL), -1, "header: own paths take none");
	CHECK_INT(admit_schemes(ADMIT_CONNECT, 0), ADMIT_SCHEME_BEARER, "schemes: CONNECT");
	CHECK_INT(admit_schemes(ADMIT_CONNECT, 1), ADMIT_SCHEME_BEARER | ADMIT_SCHEME_BASIC,
	    "schemes: CONNECT with a password file");
	CHECK_INT(admit_schemes(ADMIT_FORWARD, 1), ADMIT_SCHEME_BEARER | ADMIT_SCHEME_BASIC,
	    "schemes: absolute-form with a password file");
	CHECK_INT(admit_schemes(ADMIT_TUNNEL, 1), ADMIT_SCHEME_BEARER, "schemes: /v1/tunnel: Bearer only");
	CHECK_INT(admit_schemes(ADMIT_UDP, 1), ADMIT_SCHEME_BEARER, "schemes: /v1/udp: Bearer only");
	CHECK_INT(admit_schemes(ADMIT_TOKEN, 1), ADMIT_SCHEME_BEARER, "schemes: /v1/token: Bearer only");
	CHECK_INT(admit_schemes(ADMIT_LOCAL, 1), 0, "schemes: own paths");
	CHECK(admit_wants_grant(ADMIT_TOKEN) && !admit_wants_grant(ADMIT_CONNECT) &&
	    !admit_wants_grant(ADMIT_TUNNEL), "a grant only for /v1/token");
}

/*
 * t_upstream.c — proxy URLs (docs/configuration.md): a table of HTTPS_PROXY values, good and hostile,
 * one assertion per field; socks5:// and socks5h:// URLs with RFC 1929 credentials; which
 * variable a route comes from (proxy_env_table.h, the table curl is checked against by
 * tests/integration/test_socks5.py); NO_PROXY routing; the CONNECT request and answer;
 * the SOCKS5 request built from a route and the blocking SOCKS5 exchange over a socket
 * pair; the TLS failure names; and the shared trust-anchor loader (anchors.c) fed a CA
 * minted here.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "anchors.h"
#include "ca.h"
#include "err.h"
#include "test.h"
#include "upstream.h"

static const struct {
	const char *url;
	int rc, tls;
	const char *host;
	unsigned port;
	const char *auth;
} urls[] = {
	{ "http://proxy.example:3128", ERR_OK, 0, "proxy.example", 3128, "" },
	{ "http://proxy.example", ERR_OK, 0, "proxy.example", 80, "" },
	{ "http://proxy.example/", ERR_OK, 0, "proxy.example", 80, "" },
	{ "proxy.example:3128", ERR_OK, 0, "proxy.example", 3128, "" },
	{ "http://10.0.0.1:3128", ERR_OK, 0, "10.0.0.1", 3128, "" },
	{ "https://proxy.example", ERR_OK, 1, "proxy.example", 443, "" },
	{ "https://proxy.example/", ERR_OK, 1, "proxy.example", 443, "" },
	{ "HTTPS://Proxy.Example:8443", ERR_OK, 1, "proxy.example", 8443, "" },
	{ "https://u:p@proxy.example", ERR_OK, 1, "proxy.example", 443, "Basic dTpw" },
	{ "https://user:pass@proxy.example:3129/", ERR_OK, 1, "proxy.example", 3129, "Basic dXNlcjpwYXNz" },
	/* hostile or unsupported */
	{ "https://10.0.0.1:443", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://[::1]:443", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://u:secretpw@10.0.0.1", ERR_INVAL, 0, NULL, 0, NULL },
	{ "socks5://proxy.example:1080", ERR_INVAL, 0, NULL, 0, NULL }, /* upstream_load: no SOCKS5 */
	{ "socks4://proxy.example:1080", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example/path", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example:0", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example:99999", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://proxy.example:", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://user@proxy.example", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://u:p%41@proxy.example", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://:443", ERR_INVAL, 0, NULL, 0, NULL },
	{ "https://", ERR_INVAL, 0, NULL, 0, NULL },
};

static void
clear_env(void)
{
	static const char *const v[] = { "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
		"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy" };
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		unsetenv(v[i]);
}

static void
url_table(void)
{
	struct upstream_routes r;
	char err[200], name[160];
	size_t i;

	for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		int rc;

		clear_env();
		setenv("HTTPS_PROXY", urls[i].url, 1);
		err[0] = 0;
		rc = upstream_load(&r, 1, err, sizeof err);
		snprintf(name, sizeof name, "%s: result", urls[i].url);
		CHECK_INT(rc, urls[i].rc, name);
		if (rc != ERR_OK) {
			snprintf(name, sizeof name, "%s: error names HTTPS_PROXY, not the password", urls[i].url);
			CHECK(strstr(err, "HTTPS_PROXY") != NULL && strstr(err, "secretpw") == NULL, name);
			continue;
		}
		snprintf(name, sizeof name, "%s: tls", urls[i].url);
		CHECK_INT(r.https.tls, urls[i].tls, name);
		snprintf(name, sizeof name, "%s: host", urls[i].url);
		CHECK_STR(r.https.host.name, urls[i].host, name);
		snprintf(name, sizeof name, "%s: port", urls[i].url);
		CHECK_INT(r.https.port, urls[i].port, name);
		snprintf(name, sizeof name, "%s: Proxy-Authorization", urls[i].url);
		CHECK_STR(r.https.auth, urls[i].auth, name);
		snprintf(name, sizeof name, "%s: any_tls", urls[i].url);
		CHECK_INT(upstream_any_tls(&r), urls[i].tls, name);
		upstream_wipe(&r);
	}
	clear_env();
}

/* socks5:// and socks5h:// URLs, loaded by a caller that runs the SOCKS5 exchange. */
static const struct {
	const char *url;
	int rc, socks;
	const char *host;
	unsigned port;
	const char *user, *pass;
} socks_urls[] = {
	{ "socks5://127.0.0.1:1080", ERR_OK, UPSTREAM_SOCKS5, "127.0.0.1", 1080, "", "" },
	{ "socks5://proxy.example", ERR_OK, UPSTREAM_SOCKS5, "proxy.example", 1080, "", "" },
	{ "socks5h://proxy.example/", ERR_OK, UPSTREAM_SOCKS5H, "proxy.example", 1080, "", "" },
	{ "SOCKS5H://Proxy.Example:9050", ERR_OK, UPSTREAM_SOCKS5H, "proxy.example", 9050, "", "" },
	{ "socks5h://[::1]:1081", ERR_OK, UPSTREAM_SOCKS5H, "::1", 1081, "", "" },
	{ "socks5://alice:s3cret@proxy.example:1080", ERR_OK, UPSTREAM_SOCKS5, "proxy.example", 1080,
	  "alice", "s3cret" },
	{ "socks5h://u:p:q@10.0.0.1", ERR_OK, UPSTREAM_SOCKS5H, "10.0.0.1", 1080, "u", "p:q" },
	/* hostile or unsupported */
	{ "socks5://alice@proxy.example", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks5://:secretpw@proxy.example", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks5://alice:@proxy.example", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks5://alice:secretpw%41@proxy.example", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks5://proxy.example:0", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks5://proxy.example/path", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks4a://proxy.example", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks://proxy.example", ERR_INVAL, 0, NULL, 0, NULL, NULL },
	{ "socks5://", ERR_INVAL, 0, NULL, 0, NULL, NULL },
};

static void
socks_url_table(void)
{
	struct upstream_routes r;
	char err[200], name[200], pw[600];
	size_t i;

	for (i = 0; i < sizeof socks_urls / sizeof socks_urls[0]; i++) {
		int rc;

		clear_env();
		setenv("https_proxy", socks_urls[i].url, 1);
		err[0] = 0;
		rc = upstream_load_with(&r, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err);
		snprintf(name, sizeof name, "%s: result", socks_urls[i].url);
		CHECK_INT(rc, socks_urls[i].rc, name);
		if (rc != ERR_OK) {
			snprintf(name, sizeof name, "%s: error names https_proxy, not the password", socks_urls[i].url);
			CHECK(strstr(err, "https_proxy") != NULL && strstr(err, "secretpw") == NULL, name);
			continue;
		}
		snprintf(name, sizeof name, "%s: kind", socks_urls[i].url);
		CHECK_INT(r.https.socks, socks_urls[i].socks, name);
		snprintf(name, sizeof name, "%s: host", socks_urls[i].url);
		CHECK_STR(r.https.host.name, socks_urls[i].host, name);
		snprintf(name, sizeof name, "%s: port", socks_urls[i].url);
		CHECK_INT(r.https.port, socks_urls[i].port, name);
		snprintf(name, sizeof name, "%s: user", socks_urls[i].url);
		CHECK(r.https.ulen == strlen(socks_urls[i].user) &&
		    memcmp(r.https.user, socks_urls[i].user, r.https.ulen) == 0, name);
		snprintf(name, sizeof name, "%s: password", socks_urls[i].url);
		CHECK(r.https.plen == strlen(socks_urls[i].pass) &&
		    memcmp(r.https.pass, socks_urls[i].pass, r.https.plen) == 0, name);
		snprintf(name, sizeof name, "%s: no Basic header, no TLS", socks_urls[i].url);
		CHECK(r.https.auth[0] == 0 && !r.https.tls && !upstream_any_tls(&r), name);
		snprintf(name, sizeof name, "%s: from https_proxy", socks_urls[i].url);
		CHECK_STR(r.https.var, "https_proxy", name);
		upstream_wipe(&r);
	}
	/* RFC 1929 limits: 255 bytes each */
	memcpy(pw, "socks5://", 9);
	memset(pw + 9, 'u', 255);
	pw[264] = ':';
	memset(pw + 265, 'p', 255);
	strcpy(pw + 520, "@proxy.example");
	clear_env();
	setenv("HTTPS_PROXY", pw, 1);
	CHECK_INT(upstream_load_with(&r, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err), ERR_OK,
	    "socks5: user and password of 255 bytes each");
	CHECK(r.https.ulen == 255 && r.https.plen == 255, "socks5: 255-byte credentials kept whole");
	memset(pw + 9, 'u', 256);
	pw[265] = ':';
	memset(pw + 266, 'p', 10);
	strcpy(pw + 276, "@proxy.example");
	setenv("HTTPS_PROXY", pw, 1);
	CHECK_INT(upstream_load_with(&r, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err), ERR_INVAL,
	    "socks5: a user name of 256 bytes refused");
	CHECK(strstr(err, "1 to 255 bytes") != NULL, "socks5: the error says the limit");
	/* a caller that speaks only HTTP CONNECT refuses SOCKS5 routes, naming the variable */
	clear_env();
	setenv("ALL_PROXY", "socks5h://u:secretpw@proxy.example", 1);
	CHECK_INT(upstream_load(&r, 1, err, sizeof err), ERR_INVAL, "upstream_load: a SOCKS5 route refused");
	CHECK(strstr(err, "ALL_PROXY") != NULL && strstr(err, "SOCKS5") != NULL &&
	    strstr(err, "secretpw") == NULL, "upstream_load: the refusal names ALL_PROXY, not the password");
	CHECK(!r.enabled && !r.https.set && r.https.plen == 0, "upstream_load: a refused load leaves nothing");
	CHECK_INT(upstream_load(&r, 0, err, sizeof err), ERR_OK, "upstream_load: disabled reads nothing");
	upstream_wipe(&r);
	clear_env();
}

/* The rows of proxy_env_table.h: A..D are proxies on ports 1001..1004. */
struct env_row {
	const char *scheme, *env, *relay, *curl;
};

static const struct env_row env_rows[] = {
#define PROXY_ENV(scheme, env, relay, curl) { scheme, env, relay, curl },
#include "proxy_env_table.h"
#undef PROXY_ENV
};

static void
env_table(void)
{
	struct upstream_routes r;
	struct target_host h;
	char err[200], name[300], words[200];
	size_t i;

	target_parse_host("console.example", 15, &h);
	for (i = 0; i < sizeof env_rows / sizeof env_rows[0]; i++) {
		const struct env_row *row = &env_rows[i];
		const struct upstream_proxy *p;
		int want_socks = 0;
		char *w, *save = NULL;

		clear_env();
		snprintf(words, sizeof words, "%s", row->env);
		for (w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(w, '='), url[64], *v;
			int socks = 0;
			if (eq == NULL)
				continue;
			*eq = 0;
			v = eq + 1;
			if (strncmp(v, "socks5h:", 8) == 0) {
				socks = UPSTREAM_SOCKS5H;
				v += 8;
			} else if (strncmp(v, "socks5:", 7) == 0) {
				socks = UPSTREAM_SOCKS5;
				v += 7;
			}
			if (strlen(v) == 1 && v[0] >= 'A' && v[0] <= 'D') {
				snprintf(url, sizeof url, "%s://127.0.0.1:%d",
				    socks == UPSTREAM_SOCKS5H ? "socks5h" : socks ? "socks5" : "http",
				    1001 + (v[0] - 'A'));
				if (strcmp(v, row->relay) == 0)
					want_socks = socks;
				setenv(w, url, 1);
			} else {
				setenv(w, v, 1); /* a NO_PROXY list, or empty */
			}
		}
		snprintf(name, sizeof name, "[%s] %s: loads", row->scheme, row->env);
		CHECK_INT(upstream_load_with(&r, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err), ERR_OK, name);
		p = upstream_route(&r, &h, strcmp(row->scheme, "http") == 0 ? 80 : 443);
		snprintf(name, sizeof name, "[%s] %s: the relay takes %s", row->scheme, row->env, row->relay);
		if (strcmp(row->relay, "DIRECT") == 0)
			CHECK(p == NULL, name);
		else
			CHECK(p != NULL && p->port == (unsigned)(1001 + (row->relay[0] - 'A')), name);
		if (p != NULL) {
			snprintf(name, sizeof name, "[%s] %s: of the scheme given", row->scheme, row->env);
			CHECK_INT(p->socks, want_socks, name);
		}
		upstream_wipe(&r);
	}
	clear_env();
}

/* The SOCKS5 request a route makes for a target: address or name, credentials. */
static void
socks_requests(void)
{
	struct upstream_proxy p;
	struct target_host name, v4, v6;
	struct net_addr a4, a6;
	struct socks5_req req;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a4.ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a6.ss;

	memset(&p, 0, sizeof p);
	memset(&a4, 0, sizeof a4);
	memset(&a6, 0, sizeof a6);
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &s4->sin_addr);
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::7", &s6->sin6_addr);
	target_parse_host("console.example", 15, &name);
	target_parse_host("10.1.2.3", 8, &v4);
	target_parse_host("[2001:db8::1]", 13, &v6);
	p.set = 1;
	p.socks = UPSTREAM_SOCKS5H;
	CHECK_INT(upstream_socks5_req(&p, &name, 443, NULL, &req), ERR_OK, "socks5h: a name needs no address");
	CHECK(req.atyp == SOCKS5_ATYP_NAME && req.alen == 15 && memcmp(req.addr, "console.example", 15) == 0 &&
	    req.port == 443, "socks5h: the name is sent");
	CHECK(req.user == NULL && req.ulen == 0, "socks5h: no credentials offered when the URL has none");
	CHECK_INT(upstream_socks5_req(&p, &v4, 80, NULL, &req), ERR_OK, "socks5h: an IPv4 literal");
	CHECK(req.atyp == SOCKS5_ATYP_IPV4 && req.alen == 4 && memcmp(req.addr, "\x0a\x01\x02\x03", 4) == 0,
	    "socks5h: an IPv4 literal is sent as an address");
	CHECK_INT(upstream_socks5_req(&p, &v6, 80, NULL, &req), ERR_OK, "socks5h: an IPv6 literal");
	CHECK(req.atyp == SOCKS5_ATYP_IPV6 && req.alen == 16 && memcmp(req.addr, v6.ip, 16) == 0,
	    "socks5h: an IPv6 literal is sent as an address");
	p.socks = UPSTREAM_SOCKS5;
	memcpy(p.user, "alice", 5);
	p.ulen = 5;
	memcpy(p.pass, "s3cret", 6);
	p.plen = 6;
	CHECK_INT(upstream_socks5_req(&p, &name, 443, NULL, &req), ERR_INVAL,
	    "socks5: a name without the relay's own address is refused");
	CHECK_INT(upstream_socks5_req(&p, &name, 443, &a4, &req), ERR_OK, "socks5: a name with its IPv4 address");
	CHECK(req.atyp == SOCKS5_ATYP_IPV4 && memcmp(req.addr, &s4->sin_addr, 4) == 0,
	    "socks5: the relay's address is sent, never the name");
	CHECK(req.ulen == 5 && req.plen == 6 && memcmp(req.user, "alice", 5) == 0,
	    "socks5: the route's credentials are offered");
	CHECK_INT(upstream_socks5_req(&p, &name, 443, &a6, &req), ERR_OK, "socks5: a name with its IPv6 address");
	CHECK(req.atyp == SOCKS5_ATYP_IPV6 && memcmp(req.addr, &s6->sin6_addr, 16) == 0,
	    "socks5: the IPv6 address is sent");
	a4.ss.ss_family = AF_UNIX;
	CHECK_INT(upstream_socks5_req(&p, &name, 443, &a4, &req), ERR_INVAL, "socks5: an address of another family");
}

/* The blocking driver (registration's) over a socket pair: the proxy's whole side is
 * written in advance, followed by tunnel bytes that must stay unread. */
static int
blocking_case(const struct upstream_proxy *p, const struct target_host *h, const void *srv,
    size_t srvlen, int close_after, unsigned char *sent, size_t *nsent, char *why, size_t whylen,
    char *left, size_t *nleft)
{
	int sv[2], rc;
	unsigned rep;
	ssize_t k;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -100;
	if (write(sv[1], srv, srvlen) != (ssize_t)srvlen)
		return -101;
	if (close_after)
		shutdown(sv[1], SHUT_WR);
	why[0] = 0;
	rc = upstream_socks5_connect_fd(sv[0], p, h, 443, NULL, &rep, why, whylen);
	if (rc == ERR_OK && rep != 0)
		rc = -102;
	shutdown(sv[0], SHUT_WR);
	k = read(sv[1], sent, 1024);
	*nsent = k > 0 ? (size_t)k : 0;
	*nleft = 0;
	if (!close_after) {
		shutdown(sv[1], SHUT_WR);
		k = read(sv[0], left, 64);
		*nleft = k > 0 ? (size_t)k : 0;
	}
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static void
blocking_driver(void)
{
	struct upstream_proxy p;
	struct target_host h;
	unsigned char sent[1024];
	char why[300], left[64];
	size_t ns, nl;
	static const unsigned char ok[] = "\x05\x02" "\x01\x00" "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
	    "\x16\x03\x01TLS";
	static const unsigned char want[] = "\x05\x02\x00\x02" "\x01\x05" "alice" "\x09" "s3cret-pw"
	    "\x05\x01\x00\x03\x0f" "console.example" "\x01\xbb";
	static const unsigned char refused[] = "\x05\x00" "\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00";

	memset(&p, 0, sizeof p);
	p.set = 1;
	p.socks = UPSTREAM_SOCKS5H;
	target_parse_host("127.0.0.1", 9, &p.host);
	p.port = 1080;
	memcpy(p.user, "alice", 5);
	p.ulen = 5;
	memcpy(p.pass, "s3cret-pw", 9);
	p.plen = 9;
	target_parse_host("console.example", 15, &h);
	CHECK_INT(blocking_case(&p, &h, ok, sizeof ok - 1, 0, sent, &ns, why, sizeof why, left, &nl),
	    ERR_OK, "blocking: user/password, CONNECT by name: open");
	CHECK(ns == sizeof want - 1 && memcmp(sent, want, ns) == 0,
	    "blocking: greeting, RFC 1929 request and CONNECT as sent");
	CHECK(nl == 6 && memcmp(left, "\x16\x03\x01TLS", 6) == 0,
	    "blocking: the tunnel's first bytes are left unread on the socket");
	CHECK_INT(blocking_case(&p, &h, "\x05\x02\x01\x01", 4, 1, sent, &ns, why, sizeof why, left, &nl),
	    ERR_IO, "blocking: credentials refused");
	CHECK(strstr(why, "refused the user name or password") != NULL && strstr(why, "s3cret") == NULL &&
	    strstr(why, "alice") == NULL && strstr(why, "127.0.0.1:1080") != NULL,
	    "blocking: the reason names the proxy and the refusal, not the credentials");
	p.ulen = p.plen = 0;
	CHECK_INT(blocking_case(&p, &h, refused, sizeof refused - 1, 1, sent, &ns, why, sizeof why, left, &nl),
	    ERR_IO, "blocking: CONNECT refused by ruleset");
	CHECK(strstr(why, "connection not allowed by ruleset (reply 2)") != NULL &&
	    strstr(why, "console.example:443") != NULL, "blocking: the refusal's meaning and code in the reason");
	CHECK_INT(blocking_case(&p, &h, "\x05\x00\x05\x00\x00", 5, 1, sent, &ns, why, sizeof why, left, &nl),
	    ERR_IO, "blocking: the proxy closes mid-reply");
	CHECK(strstr(why, "closed the connection in the middle of its CONNECT reply") != NULL,
	    "blocking: closed mid-reply is said so");
	CHECK_INT(blocking_case(&p, &h, "", 0, 1, sent, &ns, why, sizeof why, left, &nl),
	    ERR_IO, "blocking: the proxy closes at once");
	CHECK(strstr(why, "during the greeting") != NULL, "blocking: closed during the greeting is said so");
	p.socks = UPSTREAM_SOCKS5;
	CHECK_INT(blocking_case(&p, &h, ok, sizeof ok - 1, 0, sent, &ns, why, sizeof why, left, &nl),
	    ERR_IO, "blocking socks5://: a name without the relay's address is never sent");
	CHECK(ns == 0 && strstr(why, "cannot ask for console.example") != NULL,
	    "blocking socks5://: nothing sent, the reason says so");
	/* the dialer: resolution and connection failures are reasons, not crashes */
	target_parse_host("name.invalid", 12, &h);
	CHECK_INT(upstream_socks5_dial(&p, &h, 443, 2000, why, sizeof why), -1,
	    "dial socks5://: a name that does not resolve");
	CHECK(strstr(why, "cannot resolve name.invalid") != NULL, "dial socks5://: the reason names it");
	{
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa;
		socklen_t sl = sizeof sa;
		memset(&sa, 0, sizeof sa);
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* a port bound but not listening: connection refused, never anyone else's */
		bind(fd, (struct sockaddr *)&sa, sizeof sa);
		getsockname(fd, (struct sockaddr *)&sa, &sl);
		p.port = ntohs(sa.sin_port);
		p.socks = UPSTREAM_SOCKS5H;
		target_parse_host("console.example", 15, &h);
		CHECK_INT(upstream_socks5_dial(&p, &h, 443, 2000, why, sizeof why), -1,
		    "dial: a proxy that is down");
		CHECK(strstr(why, "cannot connect to the socks5h proxy 127.0.0.1:") != NULL &&
		    strstr(why, "refused") != NULL, "dial: the reason names the proxy and the refusal");
		close(fd);
	}
}

static void
routing(void)
{
	struct upstream_routes r;
	struct target_host h;
	const struct upstream_proxy *p;
	char err[200], req[UPSTREAM_REQ_MAX];
	size_t n;
	int status = 0;
	size_t hl = 0;
	const char ans[] = "HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n\x16\x03\x03";

	clear_env();
	setenv("https_proxy", "https://a:b@proxy.example:8443", 1);
	setenv("HTTP_PROXY", "http://plain.example:3128", 1);
	setenv("NO_PROXY", "internal.example, .Skip.Example", 1);
	CHECK_INT(upstream_load(&r, 1, err, sizeof err), ERR_OK, "routes: load");
	CHECK(upstream_any_tls(&r), "routes: an https:// route exists");
	target_parse_host("console.example", 15, &h);
	p = upstream_route(&r, &h, 443);
	CHECK(p != NULL && p->tls && p->port == 8443, "routes: 443 goes through the https:// proxy");
	p = upstream_route(&r, &h, 80);
	CHECK(p != NULL && !p->tls && p->port == 3128, "routes: 80 goes through HTTP_PROXY (plain)");
	target_parse_host("a.skip.example", 14, &h);
	CHECK(upstream_route(&r, &h, 443) == NULL, "routes: NO_PROXY suffix bypasses the https proxy");
	target_parse_host("console.example", 15, &h);
	n = upstream_connect_request(upstream_route(&r, &h, 443), &h, 443, req, sizeof req);
	CHECK(n > 0 && strncmp(req, "CONNECT console.example:443 HTTP/1.1\r\nHost: console.example:443\r\n", 65) == 0,
	    "CONNECT request line and Host");
	CHECK(n > 0 && strstr(req, "Proxy-Authorization: Basic YTpi\r\n\r\n") != NULL,
	    "CONNECT request carries Basic credentials");
	CHECK_INT(upstream_load(&r, 0, err, sizeof err), ERR_OK, "routes: disabled");
	CHECK(!upstream_any_tls(&r), "routes: disabled means no https:// route");
	/* the answer head ends at the blank line; what follows is the tunnel's */
	CHECK_INT(upstream_parse_answer(ans, 20, &status, &hl), ERR_TRUNC, "answer: truncated");
	CHECK_INT(upstream_parse_answer(ans, sizeof ans - 1, &status, &hl), ERR_OK, "answer: complete");
	CHECK_INT(status, 200, "answer: status");
	CHECK_INT(hl, sizeof ans - 1 - 3, "answer: head length leaves the 3 tunnel bytes");
	CHECK_INT(upstream_parse_answer("HTTP/2 200 OK\r\n\r\n", 17, &status, &hl), ERR_INVAL,
	    "answer: not HTTP/1.x");
	upstream_wipe(&r);
	clear_env();
}

static void
tls_names(void)
{
	CHECK_STR(upstream_tls_error(BR_ERR_X509_NOT_TRUSTED), "certificate_not_trusted", "tls: not trusted");
	CHECK_STR(upstream_tls_error(BR_ERR_X509_BAD_SERVER_NAME), "certificate_name_mismatch", "tls: name");
	CHECK_STR(upstream_tls_error(BR_ERR_X509_EXPIRED), "certificate_expired", "tls: expired");
	CHECK_STR(upstream_tls_error(BR_ERR_BAD_CIPHER_SUITE), "no_common_cipher_suite", "tls: suites");
	CHECK_STR(upstream_tls_error(BR_ERR_RECV_FATAL_ALERT + 40), "proxy_sent_alert", "tls: alert");
}

/* A CA minted here, written as PEM, loaded back as an anchor (file, inline, one-line). */
static void
anchors_load(void)
{
	static struct ca ca;
	static struct anchors a;
	char pem[8192], oneline[9000], path[] = "/tmp/t_upstream-XXXXXX", why[256];
	size_t n, i, o = 0;
	int fd;

	CHECK_INT(ca_generate(&ca, 2048, "t-upstream", time(NULL)), ERR_OK, "anchors: CA minted");
	n = br_pem_encode(pem, ca.cert, ca.cert_len, "CERTIFICATE", BR_PEM_LINE64);
	CHECK(n > 0 && n < sizeof pem, "anchors: PEM encoded");
	fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, "junk\n", 5) == 5 && write(fd, pem, n) == (ssize_t)n, "anchors: file written");
	close(fd);
	anchors_reset(&a);
	CHECK_INT(anchors_add_file(&a, path, why, sizeof why), ERR_OK, "anchors: file read");
	CHECK_INT(a.n, 1, "anchors: one anchor from the file");
	CHECK(a.n == 1 && (a.ta[0].flags & BR_X509_TA_CA) && a.ta[0].pkey.key_type == BR_KEYTYPE_RSA,
	    "anchors: a CA with an RSA key");
	anchors_add_pem(&a, pem);
	CHECK_INT(a.n, 2, "anchors: inline PEM adds one more");
	for (i = 0; i < n && o + 2 < sizeof oneline; i++) {
		if (pem[i] == '\n') {
			oneline[o++] = '\\';
			oneline[o++] = 'n';
		} else {
			oneline[o++] = pem[i];
		}
	}
	oneline[o] = 0;
	CHECK_INT(anchors_add_value(&a, oneline, why, sizeof why), ERR_OK, "anchors: one-line value");
	CHECK_INT(a.n, 3, "anchors: one-line PEM (literal \\n) adds one more");
	anchors_add_pem(&a, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	CHECK_INT(a.n, 3, "anchors: a damaged certificate is skipped");
	/* CRLF line ends (a CA file saved on Windows): BearSSL's PEM decoder needs them read
	 * as LF. The junk line puts the BEGIN line's CR as the last byte of the first 4 KiB
	 * read, so the CR and its LF arrive in different pushes. */
	{
		static char crlf[4096 + 10000];
		size_t c = 0, j;
		for (j = 0; j < 4067; j++)
			crlf[c++] = 'x';
		crlf[c++] = '\n';
		for (j = 0; j < n; j++) {
			if (pem[j] == '\n')
				crlf[c++] = '\r';
			crlf[c++] = pem[j];
		}
		CHECK(crlf[4095] == '\r' && crlf[4096] == '\n', "anchors: CRLF file splits a CR from its LF at 4 KiB");
		fd = open(path, O_WRONLY | O_TRUNC);
		CHECK(fd >= 0 && write(fd, crlf, c) == (ssize_t)c, "anchors: CRLF file written");
		close(fd);
		CHECK_INT(anchors_add_file(&a, path, why, sizeof why), ERR_OK, "anchors: CRLF file read");
		CHECK_INT(a.n, 4, "anchors: a CA file with CRLF line ends adds one more");
	}
	unlink(path);
	CHECK_INT(anchors_add_value(&a, path, why, sizeof why), ERR_IO, "anchors: missing file");
	CHECK(strstr(why, path) != NULL, "anchors: the reason names the file");
	anchors_reset(&a);
	CHECK_INT(a.n, 0, "anchors: reset empties");
	anchors_wipe(&a);
	ca_free(&ca);
}

void
t_upstream(void)
{
	url_table();
	socks_url_table();
	env_table();
	socks_requests();
	blocking_driver();
	routing();
	tls_names();
	anchors_load();
}

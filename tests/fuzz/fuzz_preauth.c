/*
 * fuzz_preauth.c — the whole connection before a tunnel, like dropbear's fuzzer-preauth:
 * arbitrary client bytes through accept, the PROXY header, the head (the plain listener:
 * no TLS), the credential, admission, the relay's own answers and dialing, with a
 * socketpair standing in for the client's socket and a fake clock in the struct relay the
 * connection is given (the real code reaches the clock and the policy only through it).
 *
 * Input: byte 0 = flags, byte 1 = pacing, the rest = what the client sends.
 *   flags: 0x01 the admin listener (else the plain proxy listener); 0x02 accepted beyond
 *          maxConnections; 0x04 the relay is stopping; 0x08 the listener wants a PROXY
 *          header first; 0x10 the client's address is already banned by the brute-force
 *          limiter; 0x20 no password file; 0x40 an IPv6 client.
 *   pacing: bits 0-4 the chunk size the bytes are written in (0: all at once); bits 5-7
 *          how far the fake clock moves after each chunk, in half seconds (header and
 *          response timeouts are reached).
 *   In the client's bytes "@A" becomes a valid access token, "@G" a valid grant and "@B"
 *   the valid Basic credentials, so the fuzzer reaches what lies behind authentication.
 * After the bytes: the client's EOF, then the clock runs on until the connection is gone.
 *
 * Properties (FUZZ_ASSERT): everything the relay writes back starts with an HTTP/1.1
 * status line; no tunnel, connect or proxy exchange ever starts (the policy allows only
 * names the resolver was never given, so dialing fails with 502 — no network is touched);
 * the connection always ends; a password, token or grant the client sent only in a
 * credential header (Authorization, Proxy-Authorization) never appears in what the relay
 * writes to the client or to its log (the log goes to a pipe the harness reads). The
 * tokens are made deterministically (fixed jti), so a finding replays in another process;
 * the searches are written here, not memmem, so the fuzzer does not learn the secrets from
 * the checks themselves.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "ca.h"
#include "conn.h"
#include "fuzz.h"
#include "jwt.h"
#include "kdf.h"
#include "limit.h"
#include "log.h"
#include "rand.h"
#include "relay.h"
#include "token.h"
#include "walk.h"

#define NOW 1800000000LL
#define PASSWORD "fuzz-pass-4711"

static struct ca ca;
static struct config cfg;
static struct auth_users users;
static struct relay rl;
static int logp[2];
static char access_tok[TOKEN_ACCESS_MAX], grant[JWT_MAX], basic[64];
static unsigned char out[1 << 16];
static size_t outlen;
static const char *secrets[4];  /* what must not leak (NULL: the client exposed it itself) */

static void
setup(void)
{
	static int done;
	char claims[256];
	size_t i;

	if (done)
		return;
	done = 1;
	FUZZ_ASSERT(rand_init() == 0);
	for (i = 0; i < 64; i++) /* a stand-in CA: token.c only hashes these bytes */
		ca.key_der[i] = (unsigned char)(i * 7 + 1);
	ca.key_der_len = 64;
	for (i = 0; i < 32; i++)
		ca.cert_sha256[i] = (unsigned char)(0xA0 + i);
	token_init(&ca);
	strcpy(cfg.security_token, "fuzz-security-token");
	cfg.relay_id = 42;
	cfg.organization_id = 7;
	cfg.clock_skew = 60;
	cfg.token_duration = 3600;
	cfg.token_epoch = 3;
	cfg.max_header_bytes = 8192;
	cfg.header_timeout = 3;
	cfg.connect_timeout = 2;
	cfg.idle_timeout = 60;
	cfg.auth_fail_limit = 20;
	cfg.auth_fail_ban = 60;
	cfg.max_connections = 100;
	users.n = 1;
	strcpy(users.u[0].user, "fuzz");
	strcpy(users.u[0].pass, PASSWORD);
	users.u[0].ulen = 4;
	users.u[0].plen = (unsigned short)strlen(PASSWORD);
	rl.cfg = &cfg;
	rl.ca_loaded = 1;
	rl.listening = 1;
	/* Only names, never given to the resolver: an admitted tunnel fails to dial (502). */
	FUZZ_ASSERT(target_policy_set_console(&rl.policy, "console.fuzz", 12) == 0);
	FUZZ_ASSERT(target_policy_add_host(&rl.policy, "cdn.fuzz", 8) == 0);
	target_policy_add_port(&rl.policy, 443);
	target_policy_add_port(&rl.policy, 80);
	{	/* an access token as token_issue makes them, with a fixed jti */
		static struct kdf_master master;
		unsigned char key[KDF_KEY_LEN];
		char hdr[96];
		kdf_master_init(&master, ca.key_der, ca.key_der_len);
		FUZZ_ASSERT(kdf_access_key(&master, "fuzz-sub", 8, 7, 3, key) == 0);
		snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
		    token_kid());
		snprintf(claims, sizeof claims, "{\"iss\":\"relaypro\",\"sub\":\"fuzz-sub\",\"org\":7,"
		    "\"ep\":3,\"iat\":%lld,\"exp\":%lld,\"jti\":\"00112233445566778899aabbccddeeff\"}",
		    NOW, NOW + 3600);
		FUZZ_ASSERT(jwt_sign(access_tok, sizeof access_tok, hdr, claims, key, sizeof key) > 0);
	}
	snprintf(claims, sizeof claims, "{\"sub\":\"fuzz-sub\",\"org\":7,\"aud\":\"relaypro:42\","
	    "\"exp\":%lld}", NOW + 3600);
	FUZZ_ASSERT(jwt_sign(grant, sizeof grant, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims,
	    cfg.security_token, strlen(cfg.security_token)) > 0);
	strcpy(basic, "Basic ZnV6ejpmdXp6LXBhc3MtNDcxMQ=="); /* fuzz:fuzz-pass-4711 */
	/* The log goes to a pipe read after every step; debug lines too. */
	FUZZ_ASSERT(pipe2(logp, O_NONBLOCK | O_CLOEXEC) == 0);
	log_use_fd(logp[1]);
	log_set_debug(1);
}

/* The first place needle occurs in h[0..n), or -1 (a plain loop: see the top). */
static long
find(const char *h, size_t n, size_t from, const char *needle)
{
	size_t k = strlen(needle), i, j;

	for (i = from; k && i + k <= n; i++) {
		for (j = 0; j < k && h[i + j] == needle[j]; j++)
			;
		if (j == k)
			return (long)i;
	}
	return -1;
}

static int
holds(const void *h, size_t n, const char *needle)
{
	return needle != NULL && find(h, n, 0, needle) >= 0;
}

/* needle (when the stream holds it) appears only in credential header values: the line
 * it is on starts with Authorization: or Proxy-Authorization: (any case). */
static int
only_in_credentials(const char *st, size_t n, const char *needle)
{
	long at = -1;

	while ((at = find(st, n, (size_t)(at + 1), needle)) >= 0) {
		size_t b = (size_t)at;
		while (b > 0 && st[b - 1] != '\n')
			b--;
		if (strncasecmp(st + b, "Authorization:", 14) != 0 &&
		    strncasecmp(st + b, "Proxy-Authorization:", 20) != 0)
			return 0;
	}
	return 1;
}

/* No secret in the log written so far. */
static void
check_log(void)
{
	static char buf[65536];
	ssize_t n;

	int i;

	while ((n = read(logp[0], buf, sizeof buf)) > 0)
		for (i = 0; i < 4; i++)
			FUZZ_ASSERT(!holds(buf, (size_t)n, secrets[i]));
}

/* Read what the relay wrote to the client. */
static void
take_output(int fd)
{
	ssize_t n;

	while (outlen < sizeof out && (n = read(fd, out + outlen, sizeof out - outlen)) > 0)
		outlen += (size_t)n;
}

/* After each step: the walk's invariants. */
static void
check(const struct conn *c)
{
	FUZZ_ASSERT(c->state != CS_TUNNEL && c->state != CS_CONNECT && c->state != CS_PROXY);
	FUZZ_ASSERT(outlen < 9 || memcmp(out, "HTTP/1.1 ", 9) == 0);
	FUZZ_ASSERT(!holds(out, outlen, secrets[0]) && !holds(out, outlen, secrets[1]));
	check_log();
}

/* The client's bytes with @A, @G and @B expanded, into buf. Returns the length. */
static size_t
expand(const uint8_t *in, size_t n, char *buf, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n && o < cap; i++) {
		const char *rep = NULL;
		if (in[i] == '@' && i + 1 < n)
			rep = in[i + 1] == 'A' ? access_tok : in[i + 1] == 'G' ? grant :
			    in[i + 1] == 'B' ? basic : NULL;
		if (rep != NULL && o + strlen(rep) <= cap) {
			memcpy(buf + o, rep, strlen(rep));
			o += strlen(rep);
			i++;
			continue;
		}
		buf[o++] = (char)in[i];
	}
	return o;
}

/* Let the connection run: its events until nothing more happens (bounded). */
static void
run(struct conn *c, int fd)
{
	int i, cfd, ufd;
	short cev, uev;

	for (i = 0; i < 8 && !conn_dead(c); i++) {
		walk_events(c, POLLIN | POLLOUT, 0);
		take_output(fd);
		if (conn_dead(c))
			break;
		check(c);
		walk_interest(c, &cfd, &cev, &ufd, &uev);
		if (!(cev & POLLOUT))
			break;
	}
	check_log();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char stream[70000];
	struct net_addr peer;
	struct conn *c;
	unsigned flags, chunk, step;
	size_t n, off;
	int sv[2], i;

	setup();
	if (size < 2)
		return 0;
	flags = data[0];
	chunk = data[1] & 31;
	step = (unsigned)(data[1] >> 5) * 500;
	n = expand(data + 2, size - 2, stream, sizeof stream);
	secrets[0] = PASSWORD;
	secrets[1] = basic + 6;                 /* its base64 */
	secrets[2] = strrchr(access_tok, '.');  /* the signatures */
	secrets[3] = strrchr(grant, '.');
	for (i = 0; i < 4; i++)
		if (!only_in_credentials(stream, n, secrets[i]))
			secrets[i] = NULL;

	limit_reset();
	rl.now_ms = 1000000;
	rl.now = (time_t)NOW;
	rl.draining = (flags & 0x04) != 0;
	rl.users = (flags & 0x20) ? NULL : &users;
	memset(&peer, 0, sizeof peer);
	if (flags & 0x40) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&peer.ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr.s6_addr[15] = 1;
		s6->sin6_port = htons(40000);
		peer.len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&peer.ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x7f000001);
		s4->sin_port = htons(40000);
		peer.len = sizeof *s4;
	}
	if (flags & 0x10)
		for (i = 0; i < 25; i++)
			limit_fail(&peer, rl.now_ms, cfg.auth_fail_limit, (int64_t)cfg.auth_fail_ban);
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	c = conn_new(&rl, sv[0], &peer, (flags & 0x01) ? CONN_ADMIN : CONN_PLAIN,
	    (flags & 0x02) != 0, (flags & 0x08) != 0 && !(flags & 0x01));
	FUZZ_ASSERT(c != NULL);
	outlen = 0;

	for (off = 0; off < n && !conn_dead(c);) {
		size_t len = chunk ? (n - off < chunk ? n - off : chunk) : n - off;
		ssize_t w = write(sv[1], stream + off, len);
		if (w <= 0) { /* the relay stopped reading (a full socket buffer): let it run */
			run(c, sv[1]);
			if (write(sv[1], stream + off, 1) <= 0)
				break;
			w = 1;
		}
		off += (size_t)w;
		run(c, sv[1]);
		if (step && !conn_dead(c)) {
			rl.now_ms += step;
			rl.now += (time_t)(step / 1000);
			walk_tick(c, rl.now_ms);
			run(c, sv[1]);
		}
	}
	/* The client's EOF, then time runs on: every state has a deadline. */
	shutdown(sv[1], SHUT_WR);
	run(c, sv[1]);
	for (i = 0; i < 6 && !conn_dead(c); i++) {
		rl.now_ms += 30000;
		rl.now += 30;
		walk_tick(c, rl.now_ms);
		run(c, sv[1]);
	}
	FUZZ_ASSERT(conn_dead(c));
	take_output(sv[1]);
	check(c);
	if (getenv("FUZZ_PREAUTH_TRACE")) /* the status lines answered, to check seeds by eye */
		for (off = 0; off + 12 <= outlen; off++)
			if (memcmp(out + off, "HTTP/1.1 ", 9) == 0)
				fprintf(stderr, "preauth: %.12s (%s)\n", out + off, c->close_reason);
	conn_free(c);
	check_log();
	close(sv[1]);
	return 0;
}

/*
 * t_socks5.c — the SOCKS5 client exchange (socks5.c; RFC 1928, RFC 1929): the encoders
 * byte for byte (the RFCs' layouts), whole exchanges with each address type and with and
 * without credentials, every server message split at every byte boundary and fed a byte
 * at a time, every reply code, and hostile or broken proxies: wrong versions, bad address
 * types, truncated and oversized messages, a method that was not offered, X'FF', a proxy
 * that closes at each step. One assertion per case.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "socks5.h"
#include "test.h"

#define MAXMSG 8

/* A scripted proxy: its messages in order, each sent only once the client has sent what
 * comes before it (a real proxy cannot answer earlier). */
struct script {
	const unsigned char *msg[MAXMSG];
	size_t len[MAXMSG];
	size_t n;
};

struct outcome {
	int rc;
	unsigned char sent[2048]; /* everything the client sent */
	size_t nsent;
	size_t tunnel_at;         /* offset of the first unconsumed byte of the last message */
	size_t last_msg;          /* which message that was */
	struct socks5 s;
	int pass_in_state;        /* the password was ever seen inside struct socks5 */
};

static size_t
unhex(const char *hex, unsigned char *out, size_t cap)
{
	return t_unhex(hex, out, cap);
}

/* Run req against script. split: 0 = each message whole; k > 0 = message `which` split
 * after k bytes (others whole); bytewise = every message a byte at a time. wchunk: the
 * client's writes are cut to this size (0: whole). A script that runs out while the client
 * reads is the proxy closing the connection. */
static void
drive(const struct socks5_req *req, const struct script *sc, size_t which, size_t split,
    int bytewise, size_t wchunk, struct outcome *o)
{
	unsigned char msg[SOCKS5_MSG_MAX];
	size_t m = 0, off = 0;
	int guard;

	memset(o, 0, sizeof *o);
	o->rc = socks5_init(&o->s, req);
	if (o->rc != ERR_OK)
		return;
	for (guard = 0; guard < 5000; guard++) {
		int w = socks5_want(&o->s);
		if (w == SOCKS5_WRITE) {
			size_t n = socks5_output(&o->s, req, msg, sizeof msg);
			if (n == 0)
				continue;
			if (wchunk && n > wchunk)
				n = wchunk;
			if (o->nsent + n <= sizeof o->sent)
				memcpy(o->sent + o->nsent, msg, n);
			o->nsent += n;
			socks5_sent(&o->s, n);
		} else if (w == SOCKS5_READ) {
			size_t feed, used;
			if (m >= sc->n) {
				socks5_closed(&o->s);
				continue;
			}
			feed = sc->len[m] - off;
			if (bytewise)
				feed = 1;
			else if (split && m == which && off < split)
				feed = split - off;
			if (feed > sc->len[m] - off)
				feed = sc->len[m] - off;
			socks5_input(&o->s, sc->msg[m] + off, feed, &used);
			off += used;
			o->tunnel_at = off;
			o->last_msg = m;
			/* A message said in full: the proxy waits. Bytes of it not taken yet stay
			 * on the wire and are read as the next answer, as on a real socket. */
			if (off == sc->len[m] && socks5_want(&o->s) > 0) {
				m++;
				off = 0;
			}
		} else {
			break;
		}
		if (req->pass && memmem(&o->s, sizeof o->s, req->pass, req->plen))
			o->pass_in_state = 1;
	}
	o->rc = socks5_want(&o->s);
}

static const unsigned char ip4[4] = { 192, 0, 2, 1 };
static const unsigned char ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

static void
req_ip4(struct socks5_req *r)
{
	memset(r, 0, sizeof *r);
	r->atyp = SOCKS5_ATYP_IPV4;
	r->addr = ip4;
	r->alen = 4;
	r->port = 443;
}

static void
req_name_auth(struct socks5_req *r)
{
	memset(r, 0, sizeof *r);
	r->atyp = SOCKS5_ATYP_NAME;
	r->addr = (const unsigned char *)"console.example";
	r->alen = 15;
	r->port = 4222;
	r->user = (const unsigned char *)"alice";
	r->ulen = 5;
	r->pass = (const unsigned char *)"s3cret-pw";
	r->plen = 9;
}

static void
encoders(void)
{
	unsigned char b[600], want[600], name[256];
	size_t n, w;

	n = socks5_greeting(b, sizeof b, 0);
	CHECK(n == 3 && memcmp(b, "\x05\x01\x00", 3) == 0, "greeting: VER 5, one method, X'00'");
	n = socks5_greeting(b, sizeof b, 1);
	CHECK(n == 4 && memcmp(b, "\x05\x02\x00\x02", 4) == 0, "greeting with credentials: X'00' and X'02'");
	CHECK_INT(socks5_greeting(NULL, 0, 1), 4, "greeting: length pass");
	CHECK_INT(socks5_greeting(b, 3, 1), 0, "greeting: no room");

	n = socks5_auth_request(b, sizeof b, (const unsigned char *)"alice", 5,
	    (const unsigned char *)"s3cret", 6);
	w = unhex("01" "05" "616c696365" "06" "733363726574", want, sizeof want);
	CHECK(n == w && memcmp(b, want, n) == 0, "RFC 1929 request: VER 1, ULEN, UNAME, PLEN, PASSWD");
	CHECK_INT(socks5_auth_request(NULL, 0, (const unsigned char *)"a", 1, (const unsigned char *)"b", 1),
	    5, "RFC 1929 request: length pass");
	memset(name, 'x', sizeof name);
	CHECK_INT(socks5_auth_request(NULL, 0, name, 255, name, 255), 513, "RFC 1929 request: 255 + 255 is the longest");
	CHECK_INT(socks5_auth_request(NULL, 0, name, 256, name, 1), 0, "RFC 1929 request: user of 256 refused");
	CHECK_INT(socks5_auth_request(NULL, 0, name, 1, name, 256), 0, "RFC 1929 request: password of 256 refused");
	CHECK_INT(socks5_auth_request(NULL, 0, name, 0, name, 1), 0, "RFC 1929 request: empty user refused");
	CHECK_INT(socks5_auth_request(NULL, 0, name, 1, name, 0), 0, "RFC 1929 request: empty password refused");
	CHECK_INT(socks5_auth_request(b, 4, name, 1, name, 1), 0, "RFC 1929 request: no room");

	n = socks5_connect_request(b, sizeof b, SOCKS5_ATYP_IPV4, ip4, 4, 443);
	w = unhex("05010001" "c0000201" "01bb", want, sizeof want);
	CHECK(n == w && memcmp(b, want, n) == 0, "CONNECT IPv4: 05 01 00 01 addr port");
	n = socks5_connect_request(b, sizeof b, SOCKS5_ATYP_IPV6, ip6, 16, 80);
	w = unhex("05010004" "20010db8000000000000000000000001" "0050", want, sizeof want);
	CHECK(n == w && memcmp(b, want, n) == 0, "CONNECT IPv6: 05 01 00 04 addr port");
	n = socks5_connect_request(b, sizeof b, SOCKS5_ATYP_NAME, (const unsigned char *)"console.example", 15, 65535);
	w = unhex("05010003" "0f" "636f6e736f6c652e6578616d706c65" "ffff", want, sizeof want);
	CHECK(n == w && memcmp(b, want, n) == 0, "CONNECT name: 05 01 00 03 len name port");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_NAME, name, 255, 1), 262, "CONNECT: a name of 255");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_NAME, name, 256, 1), 0, "CONNECT: a name of 256 refused");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_NAME, name, 0, 1), 0, "CONNECT: an empty name refused");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_IPV4, ip4, 4, 0), 0, "CONNECT: port 0 refused");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_IPV4, ip4, 4, 65536), 0, "CONNECT: port 65536 refused");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_IPV4, ip6, 16, 1), 0, "CONNECT: IPv4 of 16 bytes refused");
	CHECK_INT(socks5_connect_request(NULL, 0, SOCKS5_ATYP_IPV6, ip4, 4, 1), 0, "CONNECT: IPv6 of 4 bytes refused");
	CHECK_INT(socks5_connect_request(NULL, 0, 2, ip4, 4, 1), 0, "CONNECT: address type 2 refused");
	CHECK_INT(socks5_connect_request(b, 9, SOCKS5_ATYP_IPV4, ip4, 4, 1), 0, "CONNECT: no room");
}

/* The three happy exchanges: (script, expected client bytes, expected tunnel offset). */
struct happy {
	const char *name;
	int auth;
	const char *srv[3];   /* hex of the proxy's messages (the last one ends with tunnel bytes) */
	const char *client;   /* hex of everything the client sends */
	size_t tunnel;        /* bytes of the last message that belong to the tunnel */
	unsigned bnd_port;
	const char *bnd;      /* hex of BND.ADDR when an IP address */
};

static const struct happy happies[] = {
	{ "no auth, IPv4 target, IPv4 BND", 0,
	  { "0500", "05000001" "0a000001" "0438" "48454c4c4f", NULL },
	  "050100" "05010001c000020101bb", 5, 1080, "0a000001" },
	{ "user/password, name target, IPv6 BND", 1,
	  { "0502", "0100", "05000004" "fe800000000000000000000000000001" "1f90" "16030300" },
	  "05020002" "0105616c696365" "09" "7333637265742d7077" "050100030f636f6e736f6c652e6578616d706c65107e",
	  4, 8080, "fe800000000000000000000000000001" },
	{ "credentials offered, proxy picks no auth, name BND", 1,
	  { "0500", "05000003" "0470726f78" "0438", NULL },
	  "05020002" "050100030f636f6e736f6c652e6578616d706c65107e", 0, 1080, NULL },
};

static void
script_from(const struct happy *h, struct script *sc, unsigned char bufs[3][600])
{
	size_t i;

	memset(sc, 0, sizeof *sc);
	for (i = 0; i < 3 && h->srv[i]; i++) {
		sc->len[i] = unhex(h->srv[i], bufs[i], 600);
		sc->msg[i] = bufs[i];
		sc->n++;
	}
}

static void
happy_paths(void)
{
	unsigned char bufs[3][600], want[1200], bnd[16];
	struct script sc;
	struct socks5_req req;
	struct outcome o, o2;
	char name[200];
	size_t i, wl, m, k;

	for (i = 0; i < sizeof happies / sizeof happies[0]; i++) {
		const struct happy *h = &happies[i];
		if (h->auth)
			req_name_auth(&req);
		else
			req_ip4(&req);
		script_from(h, &sc, bufs);
		wl = unhex(h->client, want, sizeof want);
		drive(&req, &sc, 0, 0, 0, 0, &o);
		snprintf(name, sizeof name, "%s: done", h->name);
		CHECK_INT(o.rc, SOCKS5_DONE, name);
		snprintf(name, sizeof name, "%s: the client's bytes", h->name);
		CHECK(o.nsent == wl && memcmp(o.sent, want, wl) == 0, name);
		snprintf(name, sizeof name, "%s: the tunnel's bytes are left", h->name);
		CHECK_INT(sc.len[o.last_msg] - o.tunnel_at, h->tunnel, name);
		snprintf(name, sizeof name, "%s: BND.PORT", h->name);
		CHECK_INT(o.s.bnd_port, h->bnd_port, name);
		if (h->bnd) {
			size_t bl = unhex(h->bnd, bnd, sizeof bnd);
			snprintf(name, sizeof name, "%s: BND.ADDR", h->name);
			CHECK_MEM(o.s.bnd, bnd, bl, name);
		}
		snprintf(name, sizeof name, "%s: the password never enters the state", h->name);
		CHECK(!o.pass_in_state, name);
		/* the same outcome whatever the split of each message, and a byte at a time */
		drive(&req, &sc, 0, 0, 1, 0, &o2);
		snprintf(name, sizeof name, "%s: byte at a time", h->name);
		CHECK(o2.rc == SOCKS5_DONE && o2.nsent == wl && memcmp(o2.sent, want, wl) == 0 &&
		    o2.tunnel_at == o.tunnel_at && o2.s.bnd_port == o.s.bnd_port, name);
		drive(&req, &sc, 0, 0, 0, 1, &o2);
		snprintf(name, sizeof name, "%s: client writes of one byte", h->name);
		CHECK(o2.rc == SOCKS5_DONE && o2.nsent == wl && memcmp(o2.sent, want, wl) == 0, name);
		for (m = 0; m < sc.n; m++) {
			int same = 1;
			for (k = 1; k < sc.len[m]; k++) {
				drive(&req, &sc, m, k, 0, 0, &o2);
				same &= o2.rc == SOCKS5_DONE && o2.nsent == wl &&
				    memcmp(o2.sent, want, wl) == 0 && o2.tunnel_at == o.tunnel_at &&
				    o2.s.bnd_port == o.s.bnd_port && memcmp(o2.s.bnd, o.s.bnd, 16) == 0;
			}
			snprintf(name, sizeof name, "%s: message %zu split at each of its %zu boundaries",
			    h->name, m + 1, sc.len[m] - 1);
			CHECK(same, name);
		}
	}
}

/* A reply carrying BND.ADDR as a name of every length 0..255: always consumed exactly. */
static void
name_bnd_lengths(void)
{
	unsigned char reply[300], tail[] = "TUNNEL";
	struct socks5 s;
	struct socks5_req req;
	size_t used, len, bad = 0, need_ok = 1;
	unsigned char out[SOCKS5_MSG_MAX];

	req_ip4(&req);
	for (len = 0; len <= 255; len++) {
		size_t n = 0, r;
		reply[n++] = 5;
		reply[n++] = 0;
		reply[n++] = 0;
		reply[n++] = 3;
		reply[n++] = (unsigned char)len;
		memset(reply + n, 'n', len);
		n += len;
		reply[n++] = 0x12;
		reply[n++] = 0x34;
		memcpy(reply + n, tail, 6);
		socks5_init(&s, &req);
		socks5_sent(&s, socks5_output(&s, &req, out, sizeof out));
		socks5_input(&s, (const unsigned char *)"\x05\x00", 2, &used);
		socks5_sent(&s, socks5_output(&s, &req, out, sizeof out));
		/* read as a blocking caller would: exactly what socks5_need asks for */
		for (r = 0; socks5_want(&s) == SOCKS5_READ && r < n + 6;) {
			size_t want = socks5_need(&s);
			if (want == 0 || r + want > n)
				need_ok = 0;
			socks5_input(&s, reply + r, want, &used);
			r += used;
		}
		if (socks5_want(&s) != SOCKS5_DONE || r != n || s.bnd_port != 0x1234)
			bad++;
	}
	CHECK_INT(bad, 0, "reply with a name BND.ADDR of each length 0..255: done at its exact end");
	CHECK(need_ok, "socks5_need never asks for a byte past the reply");
}

static const char *const rep_text[] = {
	"succeeded", "general failure", "connection not allowed by ruleset", "network unreachable",
	"host unreachable", "connection refused", "TTL expired", "command not supported",
	"address type not supported",
};

static void
reply_codes(void)
{
	unsigned char reply[10];
	struct script sc;
	struct socks5_req req;
	struct outcome o;
	char name[160];
	unsigned rep;

	req_ip4(&req);
	for (rep = 1; rep <= 9; rep++) {
		memcpy(reply, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
		reply[1] = (unsigned char)rep;
		memset(&sc, 0, sizeof sc);
		sc.msg[0] = (const unsigned char *)"\x05\x00";
		sc.len[0] = 2;
		sc.msg[1] = reply;
		sc.len[1] = 10;
		sc.n = 2;
		drive(&req, &sc, 0, 0, 0, 0, &o);
		snprintf(name, sizeof name, "REP %u: refused", rep);
		CHECK_INT(o.rc, SOCKS5_E_REFUSED, name);
		snprintf(name, sizeof name, "REP %u: code kept", rep);
		CHECK_INT(o.s.rep, rep, name);
		snprintf(name, sizeof name, "REP %u: reason", rep);
		CHECK_STR(socks5_reason(&o.s), rep <= 8 ? rep_text[rep] : "unassigned reply code", name);
		/* a proxy that sends only VER and REP and closes: still its refusal, not "closed" */
		sc.len[1] = 2;
		drive(&req, &sc, 0, 0, 0, 0, &o);
		snprintf(name, sizeof name, "REP %u: refusal read from 2 bytes", rep);
		CHECK(o.rc == SOCKS5_E_REFUSED && o.s.rep == rep, name);
	}
	for (rep = 0; rep <= 8; rep++) {
		snprintf(name, sizeof name, "rep_str(%u)", rep);
		CHECK_STR(socks5_rep_str(rep), rep_text[rep], name);
	}
	CHECK_STR(socks5_rep_str(255), "unassigned reply code", "rep_str(255)");
}

/* Hostile and broken proxies: (credentials?, messages, expected code, expected reason). */
struct bad {
	const char *name;
	int auth;
	const char *srv[3];
	int rc;
	const char *reason; /* NULL: not checked */
};

static const struct bad bads[] = {
	{ "method: version 4", 0, { "0400" }, SOCKS5_E_VERSION,
	  "not a SOCKS5 proxy (its answer does not start with version 5)" },
	{ "method: an HTTP proxy answers", 0, { "485454502f312e31" }, SOCKS5_E_VERSION, NULL },
	{ "method: X'FF' without credentials", 0, { "05ff" }, SOCKS5_E_NO_METHOD,
	  "the proxy requires authentication and the proxy URL has no user:password" },
	{ "method: X'FF' with credentials", 1, { "05ff" }, SOCKS5_E_NO_METHOD,
	  "the proxy accepts neither no authentication nor username/password" },
	{ "method: X'02' not offered (no credentials)", 0, { "0502" }, SOCKS5_E_METHOD, NULL },
	{ "method: X'01' GSSAPI not offered", 1, { "0501" }, SOCKS5_E_METHOD, NULL },
	{ "method: X'80' private, not offered", 1, { "0580" }, SOCKS5_E_METHOD, NULL },
	{ "method: oversized (a third byte)", 0, { "050000" }, SOCKS5_E_EXTRA,
	  "the proxy sent data out of turn" },
	{ "method: truncated, then closed", 0, { "05" }, SOCKS5_E_CLOSED,
	  "the proxy closed the connection during the greeting" },
	{ "closed before any answer", 0, { NULL }, SOCKS5_E_CLOSED,
	  "the proxy closed the connection during the greeting" },
	{ "auth: status 1 (refused)", 1, { "0502", "0101" }, SOCKS5_E_AUTH,
	  "the proxy refused the user name or password" },
	{ "auth: status X'FF'", 1, { "0502", "01ff" }, SOCKS5_E_AUTH, NULL },
	{ "auth: version 5 in the status", 1, { "0502", "0500" }, SOCKS5_E_VERSION,
	  "bad version byte in the proxy's username/password answer" },
	{ "auth: oversized status", 1, { "0502", "010000" }, SOCKS5_E_EXTRA, NULL },
	{ "auth: closed before the status", 1, { "0502" }, SOCKS5_E_CLOSED,
	  "the proxy closed the connection during authentication" },
	{ "auth: truncated status", 1, { "0502", "01" }, SOCKS5_E_CLOSED,
	  "the proxy closed the connection during authentication" },
	{ "reply: version 4", 0, { "0500", "045a000000000000" }, SOCKS5_E_VERSION, NULL },
	{ "reply: address type 0", 0, { "0500", "0500000000" }, SOCKS5_E_ATYP,
	  "bad address type in the proxy's reply" },
	{ "reply: address type 2", 0, { "0500", "05000002" }, SOCKS5_E_ATYP, NULL },
	{ "reply: address type 5", 0, { "0500", "05000005" }, SOCKS5_E_ATYP, NULL },
	{ "reply: closed before it", 0, { "0500" }, SOCKS5_E_CLOSED,
	  "the proxy closed the connection before answering the CONNECT" },
	{ "reply: truncated IPv4 BND", 0, { "0500", "0500000101020304" }, SOCKS5_E_CLOSED,
	  "the proxy closed the connection in the middle of its CONNECT reply" },
	{ "reply: truncated IPv6 BND", 0, { "0500", "050000040102" }, SOCKS5_E_CLOSED, NULL },
	{ "reply: truncated name BND", 0, { "0500", "0500000310616263" }, SOCKS5_E_CLOSED, NULL },
	{ "reply: port cut in half", 0, { "0500", "05000001010203040b" }, SOCKS5_E_CLOSED, NULL },
};

static void
hostile(void)
{
	unsigned char bufs[3][600];
	struct script sc;
	struct socks5_req req;
	struct outcome o;
	char name[200];
	size_t i, j;

	for (i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		const struct bad *b = &bads[i];
		if (b->auth)
			req_name_auth(&req);
		else
			req_ip4(&req);
		memset(&sc, 0, sizeof sc);
		for (j = 0; j < 3 && b->srv[j]; j++) {
			sc.len[j] = unhex(b->srv[j], bufs[j], sizeof bufs[j]);
			sc.msg[j] = bufs[j];
			sc.n++;
		}
		drive(&req, &sc, 0, 0, 0, 0, &o);
		snprintf(name, sizeof name, "%s: %s", b->name, socks5_str(b->rc));
		CHECK_INT(o.rc, b->rc, name);
		if (b->reason) {
			snprintf(name, sizeof name, "%s: reason", b->name);
			CHECK_STR(socks5_reason(&o.s), b->reason, name);
		}
		drive(&req, &sc, 0, 0, 1, 0, &o);
		snprintf(name, sizeof name, "%s: same a byte at a time", b->name);
		/* a byte at a time, an oversized answer's extra byte is read as the start of the
		 * next answer, after the client spoke: there it is a wrong version */
		CHECK_INT(o.rc, b->rc == SOCKS5_E_EXTRA ? SOCKS5_E_VERSION : b->rc, name);
	}
}

static void
misuse_and_sticky(void)
{
	struct socks5 s;
	struct socks5_req req, bad;
	unsigned char out[SOCKS5_MSG_MAX], big[256];
	size_t used, n;

	req_ip4(&req);
	socks5_init(&s, &req);
	CHECK_INT(socks5_want(&s), SOCKS5_WRITE, "a new exchange starts by writing");
	CHECK_INT(socks5_need(&s), 0, "nothing to read while writing");
	CHECK_INT(socks5_input(&s, (const unsigned char *)"\x05\x00", 2, &used), SOCKS5_E_STATE,
	    "input while it is the client's turn: out of turn");
	CHECK_INT(socks5_want(&s), SOCKS5_E_STATE, "a failure is sticky");
	CHECK_INT(socks5_output(&s, &req, out, sizeof out), 0, "a failed exchange sends nothing");
	CHECK_INT(socks5_sent(&s, 1), SOCKS5_E_STATE, "sent after failure: the same code");
	CHECK_INT(socks5_closed(&s), SOCKS5_E_STATE, "closed after failure: the first code stays");

	socks5_init(&s, &req);
	n = socks5_output(&s, &req, out, sizeof out);
	CHECK_INT(n, 3, "greeting pending");
	CHECK_INT(socks5_sent(&s, 4), SOCKS5_E_STATE, "more sent than was pending: out of turn");
	socks5_init(&s, &req);
	CHECK_INT(socks5_output(&s, &req, out, 2), 0, "output buffer too small: nothing");
	CHECK_INT(socks5_want(&s), SOCKS5_E_REQUEST, "output buffer too small: request error");
	/* a partial write, then the rest: the rest starts where the write stopped */
	socks5_init(&s, &req);
	socks5_output(&s, &req, out, sizeof out);
	socks5_sent(&s, 1);
	n = socks5_output(&s, &req, out, sizeof out);
	CHECK(n == 2 && out[0] == 0x01 && out[1] == 0x00, "after 1 byte written, 2 remain: NMETHODS, METHODS");
	socks5_sent(&s, 2);
	CHECK_INT(socks5_need(&s), 2, "the method choice is 2 bytes");
	socks5_input(&s, (const unsigned char *)"\x05", 1, &used);
	CHECK_INT(socks5_need(&s), 1, "then 1 more");
	socks5_input(&s, (const unsigned char *)"\x00", 1, &used);
	n = socks5_output(&s, &req, out, sizeof out);
	CHECK_INT(n, 10, "CONNECT pending");
	socks5_sent(&s, 3);
	bad = req;
	bad.atyp = SOCKS5_ATYP_NAME;
	bad.addr = (const unsigned char *)"console.example";
	bad.alen = 15;
	CHECK_INT(socks5_output(&s, &bad, out, sizeof out), 0, "req changed mid-message: nothing sent");
	CHECK_INT(socks5_want(&s), SOCKS5_E_REQUEST, "req changed mid-message: request error");
	/* DONE: further input is left alone (it is the tunnel's) */
	socks5_init(&s, &req);
	socks5_sent(&s, socks5_output(&s, &req, out, sizeof out));
	socks5_input(&s, (const unsigned char *)"\x05\x00", 2, &used);
	socks5_sent(&s, socks5_output(&s, &req, out, sizeof out));
	CHECK_INT(socks5_need(&s), 4, "the reply's head is 4 bytes");
	socks5_input(&s, (const unsigned char *)"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50GET", 13, &used);
	CHECK_INT(used, 10, "the reply is 10 bytes, the 3 after it are the tunnel's");
	CHECK_INT(socks5_input(&s, (const unsigned char *)"x", 1, &used), SOCKS5_DONE, "input after done: still done");
	CHECK_INT(used, 0, "input after done: nothing consumed");
	CHECK_INT(socks5_closed(&s), SOCKS5_DONE, "EOF after done is the tunnel's, not a failure");

	/* init refuses what cannot be encoded, before any byte is sent */
	memset(big, 'x', sizeof big);
	bad = req;
	bad.atyp = SOCKS5_ATYP_NAME;
	bad.addr = big;
	bad.alen = 256;
	CHECK_INT(socks5_init(&s, &bad), SOCKS5_E_REQUEST, "init: a name of 256 bytes");
	bad.alen = 0;
	CHECK_INT(socks5_init(&s, &bad), SOCKS5_E_REQUEST, "init: an empty name");
	bad = req;
	bad.port = 0;
	CHECK_INT(socks5_init(&s, &bad), SOCKS5_E_REQUEST, "init: port 0");
	bad = req;
	bad.user = big;
	bad.ulen = 256;
	bad.pass = big;
	bad.plen = 1;
	CHECK_INT(socks5_init(&s, &bad), SOCKS5_E_REQUEST, "init: a user name of 256 bytes");
	bad.ulen = 1;
	bad.plen = 0;
	CHECK_INT(socks5_init(&s, &bad), SOCKS5_E_REQUEST, "init: an empty password");
	CHECK_INT(socks5_want(&s), SOCKS5_E_REQUEST, "init failure leaves the exchange failed");
}

static void
strings(void)
{
	static const int codes[] = { SOCKS5_DONE, SOCKS5_WRITE, SOCKS5_READ, SOCKS5_E_REQUEST,
		SOCKS5_E_VERSION, SOCKS5_E_NO_METHOD, SOCKS5_E_METHOD, SOCKS5_E_AUTH,
		SOCKS5_E_REFUSED, SOCKS5_E_ATYP, SOCKS5_E_EXTRA, SOCKS5_E_CLOSED, SOCKS5_E_STATE };
	size_t i, j, distinct = 1;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
		for (j = 0; j < i; j++)
			if (strcmp(socks5_str(codes[i]), socks5_str(codes[j])) == 0)
				distinct = 0;
	CHECK(distinct, "socks5_str: a distinct text per code");
	CHECK_STR(socks5_str(-1000), "unknown SOCKS5 code", "socks5_str: unknown code");
	{
		struct socks5 s;
		memset(&s, 0, sizeof s);
		CHECK_STR(socks5_reason(&s), "", "socks5_reason: nothing failed");
	}
}

void
t_socks5(void)
{
	encoders();
	happy_paths();
	name_bnd_lengths();
	reply_codes();
	hostile();
	misuse_and_sticky();
	strings();
}

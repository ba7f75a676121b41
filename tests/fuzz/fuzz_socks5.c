/*
 * fuzz_socks5.c — the SOCKS5 client exchange (socks5.c) against any proxy.
 *
 * Byte 0: bit 0 = the relay has credentials (user/password offered); bits 1-2 = the
 * target (0 IPv4, 1 IPv6, 2 a name, 3 a name of 255 bytes); bits 3-7 = a chunk size
 * 1..32. The rest is everything the proxy sends, in order; its end is the proxy closing.
 * The exchange is run three ways: reading exactly socks5_need() bytes (a blocking
 * caller), a byte at a time, and in chunks of the chosen size (a non-blocking caller).
 * Properties: the first two end alike (code, bytes consumed, REP, BND); the chunked run
 * ends alike or with SOCKS5_E_EXTRA (a chunk crossed into the next answer before the
 * relay spoke); an exchange that is done consumed exactly one well-formed reply, never
 * a byte after it; socks5_need stays within 1..SOCKS5_REPLY_MAX while reading; the
 * client's messages fit SOCKS5_MSG_MAX; the state never depends on the password (the
 * same run with another password of the same length ends in the same bytes); every
 * failure has a reason.
 */
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "socks5.h"

struct run {
	int rc;
	size_t consumed;   /* proxy bytes consumed in all */
	size_t reply_at;   /* where the last server message started */
	struct socks5 s;
};

static const unsigned char ip4[4] = { 10, 0, 0, 5 };
static const unsigned char ip6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 };
static unsigned char longname[255];

/* mode 0: socks5_need bytes, 1: a byte at a time, 2: chunks of `chunk` bytes. */
static void
run(const struct socks5_req *req, const uint8_t *in, size_t n, int mode, size_t chunk,
    struct run *r)
{
	unsigned char msg[SOCKS5_MSG_MAX];
	size_t off = 0, guard;

	memset(r, 0, sizeof *r);
	FUZZ_ASSERT(socks5_init(&r->s, req) == ERR_OK);
	for (guard = 0; guard < 4 * n + 64; guard++) {
		int w = socks5_want(&r->s);
		if (w == SOCKS5_WRITE) {
			size_t k = socks5_output(&r->s, req, msg, sizeof msg);
			FUZZ_ASSERT(k > 0 && k <= SOCKS5_MSG_MAX);
			FUZZ_ASSERT(socks5_sent(&r->s, k) != SOCKS5_E_STATE);
			memset(msg, 0, sizeof msg);
			continue;
		}
		if (w != SOCKS5_READ)
			break;
		{
			size_t need = socks5_need(&r->s), feed, used;
			FUZZ_ASSERT(need >= 1 && need <= SOCKS5_REPLY_MAX);
			if (off == n) {
				FUZZ_ASSERT(socks5_closed(&r->s) == SOCKS5_E_CLOSED);
				break;
			}
			feed = mode == 0 ? need : mode == 1 ? 1 : chunk;
			if (feed > n - off)
				feed = n - off;
			if (r->s.pos == 0)
				r->reply_at = off;
			socks5_input(&r->s, in + off, feed, &used);
			FUZZ_ASSERT(used <= feed);
			if (mode == 0 && socks5_want(&r->s) >= 0)
				FUZZ_ASSERT(used == feed); /* need never asks past the message */
			off += used;
		}
	}
	r->rc = socks5_want(&r->s);
	r->consumed = off;
	FUZZ_ASSERT(r->rc == SOCKS5_DONE || (r->rc < 0 && socks5_reason(&r->s)[0] != 0));
}

/* A reply that ends the exchange: its length from its own header. */
static size_t
reply_len(const uint8_t *p, size_t n)
{
	FUZZ_ASSERT(n >= 4 && p[0] == 5 && p[1] == 0);
	if (p[3] == SOCKS5_ATYP_IPV4)
		return 10;
	if (p[3] == SOCKS5_ATYP_IPV6)
		return 22;
	FUZZ_ASSERT(p[3] == SOCKS5_ATYP_NAME && n >= 5);
	return 7u + p[4];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks5_req req;
	struct run a, b, c;
	size_t chunk;

	if (size < 1)
		return 0;
	memset(longname, 'n', sizeof longname);
	memset(&req, 0, sizeof req);
	if (data[0] & 1) {
		req.user = (const unsigned char *)"fuzz-user";
		req.ulen = 9;
		req.pass = (const unsigned char *)"fuzz-secret-pw";
		req.plen = 14;
	}
	switch ((data[0] >> 1) & 3) {
	case 0: req.atyp = SOCKS5_ATYP_IPV4; req.addr = ip4; req.alen = 4; break;
	case 1: req.atyp = SOCKS5_ATYP_IPV6; req.addr = ip6; req.alen = 16; break;
	case 2: req.atyp = SOCKS5_ATYP_NAME; req.addr = (const unsigned char *)"console.example"; req.alen = 15; break;
	default: req.atyp = SOCKS5_ATYP_NAME; req.addr = longname; req.alen = 255; break;
	}
	req.port = 443;
	chunk = (size_t)(data[0] >> 3) + 1;
	data++;
	size--;

	run(&req, data, size, 0, 0, &a);
	if (req.pass) {
		struct socks5_req other = req;
		other.pass = (const unsigned char *)"OTHER-PASSWORD";
		run(&other, data, size, 0, 0, &b);
		FUZZ_ASSERT(memcmp(&a.s, &b.s, sizeof a.s) == 0 && a.consumed == b.consumed);
	}
	run(&req, data, size, 1, 0, &b);
	run(&req, data, size, 2, chunk, &c);
	FUZZ_ASSERT(a.rc == b.rc && a.consumed == b.consumed && a.s.rep == b.s.rep &&
	    a.s.bnd_port == b.s.bnd_port && memcmp(a.s.bnd, b.s.bnd, sizeof a.s.bnd) == 0);
	FUZZ_ASSERT(c.rc == a.rc || c.rc == SOCKS5_E_EXTRA);
	if (c.rc == SOCKS5_DONE)
		FUZZ_ASSERT(c.consumed == a.consumed);
	if (a.rc == SOCKS5_DONE)
		FUZZ_ASSERT(a.consumed - a.reply_at == reply_len(data + a.reply_at, a.consumed - a.reply_at));
	return 0;
}

/*
 * crypto_bench.c — what BearSSL 0.6's cryptography costs the relay per new tunnel
 * (issue 18). A test tool run by `make bench`, never part of the relay binary.
 *
 * Part 1 times, one by one, the primitives a server-side TLS 1.2 handshake and a tunnel
 * use, for every implementation BearSSL 0.6 has on this CPU: ECDHE (X25519, P-256, P-384,
 * P-521: the server's key pair plus the shared secret), ECDSA and RSA signatures, the
 * TLS 1.2 PRF, the transcript hash, the record protection of a 64-byte and a 16 KiB record.
 *
 * Part 2 runs whole connections in memory: a BearSSL server set up the way src/tls.c sets
 * up the relay's (TLS 1.2, the relay's six ECDHE+AEAD suites, the same implementations,
 * hashes, PRFs and session cache) and a BearSSL client, records copied between them, no
 * sockets. Each connection: full (or resumed) handshake, a CONNECT request and a 200
 * answer, one 64-byte echo each way, close_notify both ways. Only the server's calls are
 * timed. That is the floor BearSSL sets under the relay's CPU per new tunnel, for each
 * choice the relay could make: curve, suite, key type, server or client suite order,
 * transcript hashes.
 *
 * Times are wall clock around CPU-bound code, one thread. A primitive's figure is its
 * fastest batch of 21 (the work is the same in each; a slower batch is one another process
 * interrupted on a shared machine); a connection's figures are the 10th percentile and the
 * median of 400. Output: tables, then one JSON line per figure.
 *
 *   crypto-bench [--quick] [--primitives | --connections]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <bearssl.h>

#include "tls.h"

static int quick;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "crypto-bench: %s\n", what);
	exit(2);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t
median(int64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_i64);
	return v[n / 2];
}

static br_hmac_drbg_context rng;

/* The JSON lines, printed after the tables. */
static char json[64 * 1024];
static size_t json_len;

static void json_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
json_add(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(json + json_len, sizeof json - json_len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof json - json_len)
		die("too many results");
	json_len += (size_t)n;
}

static void
rng_init(void)
{
	unsigned char seed[32];

	if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		die("getrandom");
	br_hmac_drbg_init(&rng, &br_sha256_vtable, seed, sizeof seed);
}

/* ---- part 1: primitives ----------------------------------------------------------- */

/* One timed operation: fn(arg) run `per` times per batch, BATCHES batches; the fastest
 * batch divided by per, in nanoseconds. `per` grows until a batch takes about 5 ms. */
#define BATCHES 21

typedef void (*op_fn)(void *arg);

static double
time_op(op_fn fn, void *arg)
{
	int64_t t[BATCHES];
	long per = 1;
	int i;

	for (;;) {
		int64_t t0 = now_ns();
		long k;
		for (k = 0; k < per; k++)
			fn(arg);
		if (now_ns() - t0 >= (quick ? 1000000 : 5000000) || per >= (1L << 24))
			break;
		per *= 2;
	}
	for (i = 0; i < BATCHES; i++) {
		int64_t t0 = now_ns();
		long k;
		for (k = 0; k < per; k++)
			fn(arg);
		t[i] = now_ns() - t0;
	}
	qsort(t, BATCHES, sizeof t[0], cmp_i64);
	return (double)t[0] / (double)per;
}

static void
report(const char *group, const char *what, const char *impl, double ns, const char *unit_note)
{
	printf("  %-22s %-34s %-16s %10.1f us%s\n", group, what, impl, ns / 1000.0, unit_note);
	json_add("{\"bench\":\"crypto\",\"group\":\"%s\",\"op\":\"%s\",\"impl\":\"%s\",\"us\":%.2f}\n",
	    group, what, impl, ns / 1000.0);
}

/* ECDHE on the server: a fresh private scalar's public point (mulgen) and the shared
 * secret from the client's point (mul). */
struct ecdhe_arg {
	const br_ec_impl *impl;
	int curve;
	unsigned char x[66];         /* private scalar */
	size_t xlen;
	unsigned char peer[133];     /* the client's public point */
	size_t plen;
};

static void
op_ecdhe(void *a)
{
	struct ecdhe_arg *e = a;
	unsigned char pub[133], g[133];

	if (e->impl->mulgen(pub, e->x, e->xlen, e->curve) == 0)
		die("mulgen");
	memcpy(g, e->peer, e->plen);
	if (e->impl->mul(g, e->plen, e->x, e->xlen, e->curve) != 1)
		die("mul");
}

static void
ecdhe_setup(struct ecdhe_arg *e, const br_ec_impl *impl, int curve)
{
	br_ec_private_key sk, csk;
	br_ec_public_key pk;
	unsigned char kb[BR_EC_KBUF_PRIV_MAX_SIZE], ckb[BR_EC_KBUF_PRIV_MAX_SIZE];
	unsigned char pkb[BR_EC_KBUF_PUB_MAX_SIZE];

	e->impl = impl;
	e->curve = curve;
	if (br_ec_keygen(&rng.vtable, impl, &sk, kb, curve) == 0 ||
	    br_ec_keygen(&rng.vtable, impl, &csk, ckb, curve) == 0 ||
	    br_ec_compute_pub(impl, &pk, pkb, &csk) == 0)
		die("ec keygen");
	memcpy(e->x, sk.x, sk.xlen);
	e->xlen = sk.xlen;
	memcpy(e->peer, pk.q, pk.qlen);
	e->plen = pk.qlen;
}

struct sign_arg {
	br_ecdsa_sign sign;
	const br_ec_impl *impl;
	br_ec_private_key sk;
	unsigned char kb[BR_EC_KBUF_PRIV_MAX_SIZE];
	br_rsa_pkcs1_sign rsign;
	br_rsa_private_key rsk;
	unsigned char rkb[BR_RSA_KBUF_PRIV_SIZE(2048)];
	unsigned char hash[64];
	size_t hlen;
};

static void
op_ecdsa(void *a)
{
	struct sign_arg *s = a;
	unsigned char sig[150];

	if (s->sign(s->impl, &br_sha256_vtable, s->hash, &s->sk, sig) == 0)
		die("ecdsa sign");
}

static void
op_rsa(void *a)
{
	struct sign_arg *s = a;
	unsigned char sig[256];

	if (!s->rsign(BR_HASH_OID_SHA256, s->hash, 32, &s->rsk, sig))
		die("rsa sign");
}

/* The TLS 1.2 PRF work of one full handshake: master secret (48 bytes), key block (40
 * bytes for AES-128-GCM, 72 for AES-256-GCM, 88 for ChaCha20-Poly1305) and the two
 * Finished messages (12 bytes each). */
struct prf_arg {
	br_tls_prf_impl prf;
	size_t keyblock, hlen;
};

static void
op_prf(void *a)
{
	struct prf_arg *p = a;
	unsigned char pms[32] = { 1 }, ms[48], kb[88], fin[12], seed[64] = { 2 }, th[48] = { 3 };
	br_tls_prf_seed_chunk ch[2] = { { seed, 32 }, { seed + 32, 32 } }, thc = { th, 0 };

	thc.len = p->hlen;
	p->prf(ms, 48, pms, sizeof pms, "master secret", 2, ch);
	p->prf(kb, p->keyblock, ms, 48, "key expansion", 2, ch);
	p->prf(fin, 12, ms, 48, "client finished", 1, &thc);
	p->prf(fin, 12, ms, 48, "server finished", 1, &thc);
}

/* The transcript: every handshake message goes through each configured hash. */
struct mh_arg {
	br_multihash_context mh;
	int all;                     /* the relay's six hashes, or SHA-256 and SHA-384 only */
	unsigned char msg[2200];     /* about a full handshake with a P-256 certificate */
};

static void
op_multihash(void *a)
{
	struct mh_arg *m = a;
	static const br_hash_class *const six[] = { &br_md5_vtable, &br_sha1_vtable,
		&br_sha224_vtable, &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable };
	unsigned char out[64];
	int i;

	br_multihash_zero(&m->mh);
	for (i = 0; i < 6; i++)
		if (m->all || i == 3 || i == 4)
			br_multihash_setimpl(&m->mh, i + 1, six[i]);
	br_multihash_init(&m->mh);
	br_multihash_update(&m->mh, m->msg, sizeof m->msg);
	br_multihash_out(&m->mh, br_sha256_ID, out);
}

/* One record sealed the way the relay seals its output (header, AEAD, tag). */
struct rec_arg {
	int chapol;
	size_t len;
	br_sslrec_gcm_context gcm;
	br_sslrec_chapol_context cp;
	unsigned char buf[5 + 16384 + 64];
};

static void
op_record(void *a)
{
	struct rec_arg *r = a;
	size_t len = r->len;

	/* 23: application data */
	const br_sslrec_out_class **ctx = r->chapol ? (const br_sslrec_out_class **)(void *)&r->cp.vtable.gen :
	    (const br_sslrec_out_class **)(void *)&r->gcm.vtable.gen;

	(*ctx)->encrypt(ctx, 23, 0x0303, r->buf + 5, &len);
}

static void
primitives(void)
{
	static const struct { const char *name; const br_ec_impl *impl; int curve; } ecs[] = {
		{ "c25519_m31", &br_ec_c25519_m31, BR_EC_curve25519 },
		{ "c25519_m15", &br_ec_c25519_m15, BR_EC_curve25519 },
		{ "c25519_i31", &br_ec_c25519_i31, BR_EC_curve25519 },
		{ "c25519_i15", &br_ec_c25519_i15, BR_EC_curve25519 },
		{ "p256_m31", &br_ec_p256_m31, BR_EC_secp256r1 },
		{ "p256_m15", &br_ec_p256_m15, BR_EC_secp256r1 },
		{ "prime_i31", &br_ec_prime_i31, BR_EC_secp256r1 },
		{ "prime_i15", &br_ec_prime_i15, BR_EC_secp256r1 },
		{ "prime_i31", &br_ec_prime_i31, BR_EC_secp384r1 },
		{ "prime_i31", &br_ec_prime_i31, BR_EC_secp521r1 },
	};
	static struct ecdhe_arg e;
	static struct sign_arg s;
	static struct prf_arg p;
	static struct mh_arg m;
	static struct rec_arg r;
	const br_block_ctr_class *ctr = br_aes_x86ni_ctr_get_vtable();
	br_ghash gh = br_ghash_pclmul_get();
	br_chacha20_run cc = br_chacha20_sse2_get();
	br_poly1305_run poly = br_poly1305_ctmulq_get();
	unsigned char key[32] = { 7 }, iv[12] = { 9 };
	size_t i;

	printf("== BearSSL 0.6 primitives, server side, this CPU (fastest of %d batches)\n", BATCHES);
	for (i = 0; i < sizeof ecs / sizeof ecs[0]; i++) {
		const char *cn = ecs[i].curve == BR_EC_curve25519 ? "X25519" :
		    ecs[i].curve == BR_EC_secp256r1 ? "P-256" : ecs[i].curve == BR_EC_secp384r1 ? "P-384" : "P-521";
		char what[64];
		ecdhe_setup(&e, ecs[i].impl, ecs[i].curve);
		snprintf(what, sizeof what, "ECDHE %s keygen+derive", cn);
		report("key exchange", what, ecs[i].name, time_op(op_ecdhe, &e), "");
	}
	/* ECDSA P-256 as the relay signs (the i31 code over the m31 curve code), and the
	 * alternatives; P-384 for an operator's certificate. */
	{
		static const struct { const char *name; br_ecdsa_sign sign; const br_ec_impl *impl; int curve; } sg[] = {
			{ "i31 + all_m31", &br_ecdsa_i31_sign_asn1, &br_ec_all_m31, BR_EC_secp256r1 },
			{ "i15 + all_m15", &br_ecdsa_i15_sign_asn1, &br_ec_all_m15, BR_EC_secp256r1 },
			{ "i31 + prime_i31", &br_ecdsa_i31_sign_asn1, &br_ec_prime_i31, BR_EC_secp256r1 },
			{ "i31 + all_m31", &br_ecdsa_i31_sign_asn1, &br_ec_all_m31, BR_EC_secp384r1 },
		};
		for (i = 0; i < sizeof sg / sizeof sg[0]; i++) {
			s.sign = sg[i].sign;
			s.impl = sg[i].impl;
			if (br_ec_keygen(&rng.vtable, s.impl, &s.sk, s.kb, sg[i].curve) == 0)
				die("ec keygen");
			memset(s.hash, 5, sizeof s.hash);
			report("signature", sg[i].curve == BR_EC_secp256r1 ? "ECDSA P-256 sign (SHA-256)" :
			    "ECDSA P-384 sign (SHA-256)", sg[i].name, time_op(op_ecdsa, &s), "");
		}
	}
	{
		static unsigned char pkb[BR_RSA_KBUF_PUB_SIZE(2048)];
		br_rsa_public_key pk;
		static const struct { const char *name; br_rsa_pkcs1_sign sign; } rs[] = {
			{ "i62 (default)", NULL }, { "i31", &br_rsa_i31_pkcs1_sign }, { "i15", &br_rsa_i15_pkcs1_sign },
		};
		br_rsa_keygen kg = br_rsa_keygen_get_default();
		if (!kg(&rng.vtable, &s.rsk, s.rkb, &pk, pkb, 2048, 65537))
			die("rsa keygen");
		for (i = 0; i < sizeof rs / sizeof rs[0]; i++) {
			s.rsign = rs[i].sign ? rs[i].sign : br_rsa_pkcs1_sign_get_default();
			report("signature", "RSA-2048 sign (PKCS#1, SHA-256)", rs[i].name, time_op(op_rsa, &s), "");
		}
	}
	p.prf = br_tls12_sha256_prf;
	p.keyblock = 40;
	p.hlen = 32;
	report("PRF", "TLS 1.2 PRF of a handshake, AES-128-GCM", "SHA-256", time_op(op_prf, &p), "");
	p.keyblock = 88;
	report("PRF", "TLS 1.2 PRF of a handshake, ChaCha20", "SHA-256", time_op(op_prf, &p), "");
	p.prf = br_tls12_sha384_prf;
	p.keyblock = 72;
	p.hlen = 48;
	report("PRF", "TLS 1.2 PRF of a handshake, AES-256-GCM", "SHA-384", time_op(op_prf, &p), "");
	m.all = 1;
	report("transcript", "2,200 bytes through the hashes", "six (relay)", time_op(op_multihash, &m), "");
	m.all = 0;
	report("transcript", "2,200 bytes through the hashes", "SHA-256+384", time_op(op_multihash, &m), "");
	if (!ctr || !gh)
		printf("  (no AES-NI/PCLMULQDQ here: the portable ct64 AES and ctmul64 GHASH are used)\n");
	if (!ctr)
		ctr = &br_aes_ct64_ctr_vtable;
	if (!gh)
		gh = &br_ghash_ctmul64;
	if (!cc)
		cc = &br_chacha20_ct_run;
	if (!poly)
		poly = &br_poly1305_ctmul_run;
	for (i = 0; i < 2; i++) {
		size_t len = i ? 16384 : 64;
		char what[64];
		r.len = len;
		r.chapol = 0;
		br_sslrec_out_gcm_vtable.init(&r.gcm.vtable.out, ctr, key, 16, gh, iv);
		snprintf(what, sizeof what, "seal one %zu-byte record", len);
		report("record", what, "AES-128-GCM", time_op(op_record, &r), "");
		br_sslrec_out_gcm_vtable.init(&r.gcm.vtable.out, ctr, key, 32, gh, iv);
		report("record", what, "AES-256-GCM", time_op(op_record, &r), "");
		r.chapol = 1;
		br_sslrec_out_chapol_vtable.init(&r.cp.vtable.out, cc, poly, key, iv);
		report("record", what, "ChaCha20-Poly1305", time_op(op_record, &r), "");
	}
}

/* ---- part 2: whole connections in memory ----------------------------------------- */

static const char *alpn[] = { "http/1.1" };  /* BearSSL takes it non-const */
static const uint16_t relay_suites[] = TLS_POLICY_SUITES; /* the relay's own list (tls.h) */

/* What a client offers, in its order. */
struct offer {
	const char *name;
	uint32_t curves;             /* bit per curve id offered */
	uint16_t suites[6];
	size_t nsuites;
};

#define X25519_BIT ((uint32_t)1 << BR_EC_curve25519)
#define P256_BIT ((uint32_t)1 << BR_EC_secp256r1)
#define P384_BIT ((uint32_t)1 << BR_EC_secp384r1)

/* Server choices. */
struct choice {
	const char *name;
	int rsa;                     /* RSA-2048 certificate instead of ECDSA P-256 */
	int two_hashes;              /* SHA-256 and SHA-384 only, instead of the six */
	int server_order;            /* BR_OPT_ENFORCE_SERVER_PREFERENCES */
	uint32_t curves;             /* curves the server admits (0: every one its code has) */
};

static br_ec_private_key srv_ec_sk;
static unsigned char srv_ec_kb[BR_EC_KBUF_PRIV_MAX_SIZE];
static br_ec_public_key srv_ec_pk;
static unsigned char srv_ec_pkb[BR_EC_KBUF_PUB_MAX_SIZE];
static br_rsa_private_key srv_rsa_sk;
static unsigned char srv_rsa_kb[BR_RSA_KBUF_PRIV_SIZE(2048)];
static br_rsa_public_key srv_rsa_pk;
static unsigned char srv_rsa_pkb[BR_RSA_KBUF_PUB_SIZE(2048)];
/* The client checks the server's key with a "known key" engine, so the chain's bytes are
 * sent but never parsed: a stand-in of a minted certificate's size. */
static unsigned char cert_bytes[560];
static br_x509_certificate chain = { cert_bytes, sizeof cert_bytes };

static br_ec_impl srv_iec, cli_iec;
static br_ssl_session_cache_lru cache;
static unsigned char cache_store[256 * 1024];

/* The client verifies ECDSA with the full curve code whatever curves it offers. */
static uint32_t
cli_ecdsa_vrfy(const br_ec_impl *impl, const void *hash, size_t hash_len,
    const br_ec_public_key *pk, const void *sig, size_t sig_len)
{
	(void)impl;
	return br_ecdsa_i31_vrfy_asn1(&br_ec_all_m31, hash, hash_len, pk, sig, sig_len);
}

struct conn {
	br_ssl_server_context sc;
	br_ssl_client_context cc;
	br_x509_minimal_context xm;
	br_x509_knownkey_context kk;
	unsigned char sib[BR_SSL_BUFSIZE_INPUT], sob[BR_SSL_BUFSIZE_OUTPUT];
	unsigned char cb[BR_SSL_BUFSIZE_BIDI];
	br_ssl_session_parameters sess;
	int have_sess;
	int64_t srv_ns;
};

static void
server_init(struct conn *c, const struct choice *ch)
{
	static const br_hash_class *const hashes[] = { &br_md5_vtable, &br_sha1_vtable,
		&br_sha224_vtable, &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable };
	br_ssl_server_context *sc = &c->sc;
	const br_block_ctr_class *ctr = br_aes_x86ni_ctr_get_vtable();
	br_ghash gh = br_ghash_pclmul_get();
	br_chacha20_run cc = br_chacha20_sse2_get();
	br_poly1305_run poly = br_poly1305_ctmulq_get();
	unsigned char seed[32];
	int id;

	br_ssl_server_zero(sc);
	br_ssl_engine_set_versions(&sc->eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_add_flags(&sc->eng, BR_OPT_NO_RENEGOTIATION |
	    (ch->server_order ? BR_OPT_ENFORCE_SERVER_PREFERENCES : 0));
	br_ssl_engine_set_suites(&sc->eng, relay_suites, sizeof relay_suites / sizeof relay_suites[0]);
	srv_iec = br_ec_all_m31;
	if (ch->curves)
		srv_iec.supported_curves &= ch->curves;
	br_ssl_engine_set_ec(&sc->eng, &srv_iec);
	if (ch->rsa)
		br_ssl_server_set_single_rsa(sc, &chain, 1, &srv_rsa_sk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
		    br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
	else
		br_ssl_server_set_single_ec(sc, &chain, 1, &srv_ec_sk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
		    BR_KEYTYPE_RSA, &br_ec_all_m31, &br_ecdsa_i31_sign_asn1);
	for (id = br_md5_ID; id <= br_sha512_ID; id++)
		if (!ch->two_hashes || id == br_sha256_ID || id == br_sha384_ID)
			br_ssl_engine_set_hash(&sc->eng, id, hashes[id - 1]);
	br_ssl_engine_set_prf10(&sc->eng, &br_tls10_prf);
	br_ssl_engine_set_prf_sha256(&sc->eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(&sc->eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_gcm(&sc->eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
	br_ssl_engine_set_aes_ctr(&sc->eng, ctr ? ctr : &br_aes_ct64_ctr_vtable);
	br_ssl_engine_set_ghash(&sc->eng, gh ? gh : &br_ghash_ctmul64);
	br_ssl_engine_set_chapol(&sc->eng, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
	br_ssl_engine_set_chacha20(&sc->eng, cc ? cc : &br_chacha20_ct_run);
	br_ssl_engine_set_poly1305(&sc->eng, poly ? poly : &br_poly1305_ctmul_run);
	br_hmac_drbg_generate(&rng, seed, sizeof seed);
	br_ssl_engine_inject_entropy(&sc->eng, seed, sizeof seed);
	sc->eng.rng_os_rand_done = 1;
	br_ssl_engine_set_protocol_names(&sc->eng, alpn, 1);
	br_ssl_engine_set_buffers_bidi(&sc->eng, c->sib, sizeof c->sib, c->sob, sizeof c->sob);
	br_ssl_server_set_cache(sc, &cache.vtable);
}

static void
client_init(struct conn *c, const struct offer *of, int rsa)
{
	unsigned char seed[32];

	br_ssl_client_init_full(&c->cc, &c->xm, NULL, 0);
	if (rsa)
		br_x509_knownkey_init_rsa(&c->kk, &srv_rsa_pk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
	else
		br_x509_knownkey_init_ec(&c->kk, &srv_ec_pk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
	br_ssl_engine_set_x509(&c->cc.eng, &c->kk.vtable);
	br_ssl_engine_set_versions(&c->cc.eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(&c->cc.eng, of->suites, of->nsuites);
	cli_iec = br_ec_all_m31;
	cli_iec.supported_curves &= of->curves;
	br_ssl_engine_set_ec(&c->cc.eng, &cli_iec);
	br_ssl_engine_set_ecdsa(&c->cc.eng, cli_ecdsa_vrfy);
	br_hmac_drbg_generate(&rng, seed, sizeof seed);
	br_ssl_engine_inject_entropy(&c->cc.eng, seed, sizeof seed);
	br_ssl_engine_set_buffer(&c->cc.eng, c->cb, sizeof c->cb, 1);
}

/* Copy what one engine has to send into the other; server calls are timed. */
static int
move(struct conn *c, br_ssl_engine_context *from, br_ssl_engine_context *to)
{
	br_ssl_engine_context *srv = &c->sc.eng;
	size_t len, dlen;
	unsigned char *b = br_ssl_engine_sendrec_buf(from, &len), *d;
	int64_t t0;

	if (!b || !len)
		return 0;
	d = br_ssl_engine_recvrec_buf(to, &dlen);
	if (!d || !dlen)
		return 0;
	if (dlen < len)
		len = dlen;
	memcpy(d, b, len);
	t0 = now_ns();
	if (from == srv)
		br_ssl_engine_sendrec_ack(from, len);
	else
		br_ssl_engine_recvrec_ack(to, len);
	c->srv_ns += now_ns() - t0;
	if (from == srv)
		br_ssl_engine_recvrec_ack(to, len);
	else
		br_ssl_engine_sendrec_ack(from, len);
	return 1;
}

/* Application data: write it on one side (flushed), move records until the other side
 * has it all; the server's sendapp/recvapp calls are timed too. */
static int
app(struct conn *c, int from_server, const char *data, size_t n)
{
	br_ssl_engine_context *srv = &c->sc.eng, *cli = &c->cc.eng;
	br_ssl_engine_context *f = from_server ? srv : cli, *t = from_server ? cli : srv;
	size_t got = 0, len;
	unsigned char *b;
	int64_t t0 = now_ns();
	int rounds;

	b = br_ssl_engine_sendapp_buf(f, &len);
	if (!b || len < n)
		return -1;
	memcpy(b, data, n);
	br_ssl_engine_sendapp_ack(f, n);
	br_ssl_engine_flush(f, 0);
	if (from_server)
		c->srv_ns += now_ns() - t0;
	for (rounds = 0; rounds < 64 && got < n; rounds++) {
		move(c, srv, cli);
		move(c, cli, srv);
		t0 = now_ns();
		b = br_ssl_engine_recvapp_buf(t, &len);
		if (b && len) {
			got += len;
			br_ssl_engine_recvapp_ack(t, len);
		}
		if (!from_server)
			c->srv_ns += now_ns() - t0;
	}
	return got == n ? 0 : -1;
}

/* One connection; returns the server's nanoseconds, or -1. *resumed says what happened. */
static int64_t
one_conn(struct conn *c, const struct offer *of, const struct choice *ch, int resume, int *resumed,
    uint16_t *suite, int *curve)
{
	static const char req[] = "CONNECT console.example:443 HTTP/1.1\r\nHost: console.example:443\r\n"
	    "Proxy-Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZXNwb25kZXIt"
	    "MSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2ln\r\n\r\n";
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	char echo[64];
	int64_t t0;
	int rounds;

	memset(echo, 'e', sizeof echo);
	c->srv_ns = 0;
	server_init(c, ch);
	client_init(c, of, ch->rsa);
	t0 = now_ns();
	if (!br_ssl_server_reset(&c->sc))
		return -1;
	c->srv_ns += now_ns() - t0;
	if (resume && c->have_sess)
		br_ssl_engine_set_session_parameters(&c->cc.eng, &c->sess);
	if (!br_ssl_client_reset(&c->cc, "localhost", resume && c->have_sess))
		return -1;
	for (rounds = 0; rounds < 200; rounds++) {
		unsigned sst = br_ssl_engine_current_state(&c->sc.eng);
		unsigned cst = br_ssl_engine_current_state(&c->cc.eng);
		if ((sst | cst) & BR_SSL_CLOSED)
			return -1;
		if ((sst & BR_SSL_SENDAPP) && (cst & BR_SSL_SENDAPP))
			break;
		if (!move(c, &c->cc.eng, &c->sc.eng) && !move(c, &c->sc.eng, &c->cc.eng))
			return -1;
	}
	{
		br_ssl_session_parameters now;
		br_ssl_engine_get_session_parameters(&c->cc.eng, &now);
		*resumed = c->have_sess && now.session_id_len == c->sess.session_id_len &&
		    memcmp(now.session_id, c->sess.session_id, now.session_id_len) == 0;
		*suite = now.cipher_suite;
		c->sess = now;
		c->have_sess = 1;
		*curve = *resumed ? 0 : c->sc.eng.ecdhe_curve;
	}
	if (app(c, 0, req, sizeof req - 1) < 0 || app(c, 1, ok, sizeof ok - 1) < 0 ||
	    app(c, 0, echo, sizeof echo) < 0 || app(c, 1, echo, sizeof echo) < 0)
		return -1;
	/* close_notify from the client, answered by the server's */
	br_ssl_engine_close(&c->cc.eng);
	for (rounds = 0; rounds < 16; rounds++) {
		int a = move(c, &c->cc.eng, &c->sc.eng), b = move(c, &c->sc.eng, &c->cc.eng);
		if (!a && !b)
			break;
	}
	if (br_ssl_engine_current_state(&c->sc.eng) != BR_SSL_CLOSED)
		return -1;
	return c->srv_ns;
}

static const char *
suite_name(uint16_t s)
{
	switch (s) {
	case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: return "ECDHE-ECDSA-AES128-GCM-SHA256";
	case BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: return "ECDHE-RSA-AES128-GCM-SHA256";
	case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: return "ECDHE-ECDSA-AES256-GCM-SHA384";
	case BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: return "ECDHE-RSA-AES256-GCM-SHA384";
	case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: return "ECDHE-ECDSA-CHACHA20-POLY1305";
	case BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: return "ECDHE-RSA-CHACHA20-POLY1305";
	default: return "?";
	}
}

static const char *
curve_name(int c)
{
	return c == BR_EC_curve25519 ? "X25519" : c == BR_EC_secp256r1 ? "P-256" :
	    c == BR_EC_secp384r1 ? "P-384" : c == 0 ? "-" : "?";
}

static void
connections(void)
{
	/* Clients: what OpenSSL 3 (curl, Python's ssl, squid's clients) offers for TLS 1.2
	 * (X25519 then P-256, ..., AES-256-GCM first), what Go offers on AES-NI hardware
	 * (AES-128-GCM first), the benchmark's own load generator, and narrowed offers. */
	static const struct offer offers[] = {
		{ "OpenSSL 3 default", X25519_BIT | P256_BIT | P384_BIT,
		  { BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 }, 6 },
		{ "Go / loadgen (AES-128 first)", X25519_BIT | P256_BIT | P384_BIT,
		  { BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 }, 6 },
		{ "P-256 only, AES-128-GCM", P256_BIT,
		  { BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 }, 2 },
		{ "X25519 only, ChaCha20", X25519_BIT,
		  { BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 }, 2 },
	};
	static const struct choice relay = { "relay today", 0, 0, 0, 0 };
	static const struct choice server_order = { "server suite order", 0, 0, 1, 0 };
	static const struct choice p256_first = { "P-256 only (no X25519)", 0, 0, 1, P256_BIT | P384_BIT };
	static const struct choice two_hashes = { "SHA-256+384 transcript", 0, 1, 1, 0 };
	static const struct choice rsa = { "RSA-2048 certificate", 1, 0, 1, 0 };
	static const struct { const struct offer *of; const struct choice *ch; int resume; } runs[] = {
		{ &offers[0], &relay, 0 }, { &offers[1], &relay, 0 }, { &offers[0], &server_order, 0 },
		{ &offers[0], &p256_first, 0 }, { &offers[2], &relay, 0 }, { &offers[3], &relay, 0 },
		{ &offers[0], &two_hashes, 0 }, { &offers[0], &rsa, 0 },
		{ &offers[0], &relay, 1 }, { &offers[0], &server_order, 1 },
	};
	static struct conn c;
	int n = quick ? 40 : 400;
	size_t i;

	if (br_ec_keygen(&rng.vtable, &br_ec_all_m31, &srv_ec_sk, srv_ec_kb, BR_EC_secp256r1) == 0 ||
	    br_ec_compute_pub(&br_ec_all_m31, &srv_ec_pk, srv_ec_pkb, &srv_ec_sk) == 0 ||
	    !br_rsa_keygen_get_default()(&rng.vtable, &srv_rsa_sk, srv_rsa_kb, &srv_rsa_pk, srv_rsa_pkb,
		2048, 65537))
		die("server keys");
	memset(cert_bytes, 0x30, sizeof cert_bytes);
	br_ssl_session_cache_lru_init(&cache, cache_store, sizeof cache_store);
	printf("\n== whole connections in memory, server side only: handshake + CONNECT + 200 + one "
	    "64-byte echo + close_notify (%d each)\n", n);
	printf("  %-30s %-24s %-8s %-7s %-30s %9s %9s\n", "client offers", "server", "resumed", "curve",
	    "suite", "p10 us", "median us");
	for (i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		int64_t *t = malloc((size_t)n * sizeof *t), sum = 0, med;
		int k, resumed = 0, curve = 0, nres = 0;
		uint16_t suite = 0;
		if (!t)
			die("out of memory");
		c.have_sess = 0;
		if (runs[i].resume && one_conn(&c, runs[i].of, runs[i].ch, 0, &resumed, &suite, &curve) < 0)
			die("first connection failed");
		for (k = 0; k < n; k++) {
			t[k] = one_conn(&c, runs[i].of, runs[i].ch, runs[i].resume, &resumed, &suite, &curve);
			if (t[k] < 0)
				die("a connection failed");
			sum += t[k];
			nres += resumed;
		}
		if (runs[i].resume && nres != n)
			die("sessions were not resumed");
		med = median(t, (size_t)n);      /* sorts t */
		printf("  %-30s %-24s %-8s %-7s %-30s %9.1f %9.1f\n", runs[i].of->name, runs[i].ch->name,
		    runs[i].resume ? "yes" : "no", curve_name(curve), suite_name(suite),
		    (double)t[n / 10] / 1000.0, (double)med / 1000.0);
		json_add("{\"bench\":\"crypto_conn\",\"client\":\"%s\",\"server\":\"%s\",\"resumed\":%d,"
		    "\"curve\":\"%s\",\"suite\":\"%s\",\"p10_us\":%.1f,\"median_us\":%.1f,\"mean_us\":%.1f,"
		    "\"n\":%d}\n", runs[i].of->name, runs[i].ch->name, runs[i].resume, curve_name(curve),
		    suite_name(suite), (double)t[n / 10] / 1000.0, (double)med / 1000.0,
		    (double)sum / n / 1000.0, n);
		free(t);
	}
}

int
main(int argc, char **argv)
{
	int i, prim = 1, conn = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else if (strcmp(argv[i], "--connections") == 0) {
			prim = 0;
		} else if (strcmp(argv[i], "--primitives") == 0) {
			conn = 0;
		} else {
			fprintf(stderr, "usage: crypto-bench [--quick] [--primitives | --connections]\n");
			return 2;
		}
	}
	rng_init();
	if (prim)
		primitives();
	if (conn)
		connections();
	printf("\n%s", json);
	return 0;
}

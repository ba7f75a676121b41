/*
 * tls.c — BearSSL set-up: the listener's certificate, the one TLS policy, the server and
 * client engines. See tls.h.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "certfile.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "rand.h"
#include "secret.h"
#include "tls.h"
#include "tlscache.h"
#include "x509.h"

/* The policy's suites, for the server and every client (tls.h). */
static const uint16_t suites[] = TLS_POLICY_SUITES;
static const char *alpn[] = { "http/1.1" }; /* BearSSL takes it non-const */

/* Current and previous certificate: a remint must not pull the chain out from under a
 * handshake in progress, so the old one stays valid until the next remint (>= 60 days). */
static struct x509_server certs[2];
static int cur;
static br_x509_certificate chain[2];

/* The symmetric implementations, chosen once. BearSSL's "full" initialisers choose them on
 * every call with CPUID, which traps to the hypervisor on virtual machines: 105 us per
 * connection measured on the benchmark machine (docs/performance.md). */
static br_ssl_server_context tmpl;

static const struct ca *the_ca;
static char name[256];
static const char *const *alts;
static int nalts, want_rsa;

/* The operator's pair (certFile/keyFile), when configured. BearSSL's server context keeps
 * pointers to the chain and the key from tls_server_init until its handshake has sent the
 * Certificate message and signed the ServerKeyExchange, which may take until
 * headerTimeout; so a reload must not overwrite a pair that an unfinished handshake was
 * set up with. Pairs live in TLS_PAIRS slots, each with a reference count of the
 * connections whose handshake may still read it: tls_server_init takes a reference,
 * tls_conn_release gives it back (front.c when the handshake is done, conn.c when the
 * connection ends). A reload loads into a slot no one references and switches to it; the
 * old slot is wiped when its count reaches 0. A finished handshake never reads the pair again:
 * renegotiation is refused (BR_OPT_NO_RENEGOTIATION) and resumption sends no certificate. */
#define TLS_PAIRS 4
static struct {
	struct certfile_pair pair;
	int refs;
} pairs[TLS_PAIRS];
static int op_cur = -1;                  /* the slot served; -1: the minted certificate */
static char op_cert[PATH_MAX], op_key[PATH_MAX]; /* the configured files; "" = none */
static struct certfile_stamp op_loaded[2]; /* the files as read for the pair served */
static struct certfile_stamp op_seen[2];   /* as seen at the last check */
static struct certfile_stamp op_failed[2]; /* as seen when a load last failed */
static int op_failed_set;
static const char *op_pending;           /* a reload waiting to run: its trigger */
static int op_deferred;                  /* ... for a free slot (logged once) */
static time_t op_checked;                /* wall-clock second of the last file check */
static int expired_logged;

static int
mint(time_t now, char *err, size_t errlen)
{
	int next = cur ^ 1;
	int rc;

	x509_server_free(&certs[next]);
	rc = x509_mint_server(&certs[next], &the_ca->issuer, name, alts, (size_t)nalts,
	    want_rsa ? BR_KEYTYPE_RSA : BR_KEYTYPE_EC, now);
	if (rc != ERR_OK) {
		snprintf(err, errlen, "cannot mint the server certificate for %s", name);
		return rc;
	}
	chain[next].data = certs[next].cert;
	chain[next].data_len = certs[next].cert_len;
	cur = next;
	if (op_cur < 0)
		metrics_certificate(certs[cur].not_after, 0);
	return ERR_OK;
}

/* ---- the operator's pair ------------------------------------------------------------ */

/* "ec-256", "rsa-3072": the key of a pair, for logs. */
static void
key_text(const struct certfile_pair *p, char *out, size_t cap)
{
	snprintf(out, cap, "%s-%u", p->key_type == BR_KEYTYPE_EC ? "ec" : "rsa", p->key_bits);
}

/* The pair in slot i is served from now on (new handshakes); the previous one is wiped
 * now, or by tls_conn_release when its last handshake is done. */
static void
op_switch(int i, const struct certfile_stamp stamps[2], const char *trigger)
{
	const struct certfile_pair *p = &pairs[i].pair;
	char when[25], key[16];
	struct log_rec r;
	int old = op_cur;

	op_cur = i;
	memcpy(op_loaded, stamps, sizeof op_loaded);
	op_failed_set = 0;
	expired_logged = 0;
	if (old >= 0 && pairs[old].refs == 0)
		certfile_wipe(&pairs[old].pair);
	metrics_certificate(p->not_after, 1);
	log_format_time(when, p->not_after * 1000);
	key_text(p, key, sizeof key);
	if (log_begin(&r, LOG_INFO, strcmp(trigger, "start") == 0 ? "cert.loaded" : "cert.reload")) {
		log_str(&r, "trigger", trigger);
		log_str(&r, "cert_file", op_cert);
		log_str(&r, "key_file", op_key);
		log_str(&r, "subject", p->subject);
		log_str(&r, "key", key);
		log_int(&r, "chain", (int64_t)p->chain_len);
		log_str(&r, "not_after", when);
		log_end(&r);
	}
}

static void
op_fail(const char *trigger, const char *why)
{
	struct log_rec r;

	metrics_cert_reload(0);
	if (log_begin(&r, LOG_ERROR, "cert.reload_fail")) {
		log_str(&r, "trigger", trigger);
		log_str(&r, "reason", why);
		log_str(&r, "msg", op_cur >= 0 ? "the running certificate keeps serving" :
		    "the minted certificate keeps serving");
		log_end(&r);
	}
}

/* Load the configured files into a free slot and serve them. At start (trigger "start")
 * an expired leaf is served (and /readyz says so); later it is refused, since the pair
 * serving now can only be as good. ERR_OK; ERR_NOSPACE when every other slot is still in
 * handshakes; ERR_INVAL / ERR_IO with the reason in err. */
static int
op_load(const char *trigger, time_t now, char *err, size_t errlen)
{
	struct certfile_stamp st[2];
	int i, r;

	for (i = 0; i < TLS_PAIRS && (i == op_cur || pairs[i].refs > 0); i++)
		;
	if (i == TLS_PAIRS) {
		snprintf(err, errlen, "the %d previous certificates are still in handshakes", TLS_PAIRS - 1);
		return ERR_NOSPACE;
	}
	memset(st, 0, sizeof st);
	r = certfile_load(&pairs[i].pair, op_cert, op_key, st, err, errlen);
	if (r == ERR_OK && strcmp(trigger, "start") != 0 && pairs[i].pair.not_after < now) {
		char when[25];
		log_format_time(when, pairs[i].pair.not_after * 1000);
		snprintf(err, errlen, "%s: the leaf certificate expired at %s", op_cert, when);
		certfile_wipe(&pairs[i].pair);
		r = ERR_INVAL;
	}
	if (r != ERR_OK)
		return r;
	op_switch(i, st, trigger);
	return ERR_OK;
}

/* Run the pending reload, if any. */
static void
op_try(time_t now)
{
	char err[PATH_MAX + 256];
	const char *trigger = op_pending;
	struct log_rec lr;
	int r;

	if (trigger == NULL)
		return;
	r = op_load(trigger, now, err, sizeof err);
	if (r == ERR_NOSPACE) {
		/* tried again every tick: handshakes end within headerTimeout */
		if (!op_deferred && log_begin(&lr, LOG_INFO, "cert.reload_deferred")) {
			log_str(&lr, "trigger", trigger);
			log_str(&lr, "reason", err);
			log_end(&lr);
		}
		op_deferred = 1;
		return;
	}
	op_pending = NULL;
	op_deferred = 0;
	if (r == ERR_OK) {
		metrics_cert_reload(1);
		return;
	}
	certfile_stat(op_cert, &op_failed[0]);
	certfile_stat(op_key, &op_failed[1]);
	op_failed_set = 1;
	op_fail(trigger, err);
}

/* see tls.h */
void
tls_certfile_reload(const char *cert_file, const char *key_file)
{
	char err[160];
	struct log_rec r;

	snprintf(op_cert, sizeof op_cert, "%s", cert_file);
	snprintf(op_key, sizeof op_key, "%s", key_file);
	if (op_cert[0]) {
		op_pending = "sighup";
		op_try(time(NULL));
		return;
	}
	op_pending = NULL;
	if (op_cur < 0)
		return;
	/* certFile removed: back to the minted certificate (minted now if never before) */
	if (certs[cur].cert_len == 0 && mint(time(NULL), err, sizeof err) != ERR_OK) {
		op_fail("sighup", err);
		return;
	}
	if (pairs[op_cur].refs == 0)
		certfile_wipe(&pairs[op_cur].pair);
	op_cur = -1;
	expired_logged = 0;
	metrics_certificate(certs[cur].not_after, 0);
	metrics_cert_reload(1);
	if (log_begin(&r, LOG_INFO, "cert.reload")) {
		log_str(&r, "trigger", "sighup");
		log_str(&r, "msg", "certFile unset: serving the minted certificate");
		log_end(&r);
	}
}

/* Every second: a changed certFile or keyFile is loaded once it has stayed the same for
 * one check (so a writer replacing the two files one after the other is seen once, when
 * done); a pair that failed is not tried again until the files change once more. */
static void
op_watch(time_t now)
{
	struct certfile_stamp s[2];

	if (!op_cert[0] || now == op_checked)
		return;
	op_checked = now;
	certfile_stat(op_cert, &s[0]);
	certfile_stat(op_key, &s[1]);
	if (op_pending == NULL &&
	    !(certfile_stamp_eq(&s[0], &op_loaded[0]) && certfile_stamp_eq(&s[1], &op_loaded[1])) &&
	    certfile_stamp_eq(&s[0], &op_seen[0]) && certfile_stamp_eq(&s[1], &op_seen[1]) &&
	    !(op_failed_set && certfile_stamp_eq(&s[0], &op_failed[0]) &&
	    certfile_stamp_eq(&s[1], &op_failed[1])))
		op_pending = "file_change";
	memcpy(op_seen, s, sizeof op_seen);
}

/* see tls.h */
int
tls_cert_expired(time_t now)
{
	return op_cur >= 0 ? pairs[op_cur].pair.not_after < now :
	    certs[cur].cert_len > 0 && certs[cur].not_after < now;
}

/* see tls.h */
void
tls_conn_release(br_ssl_server_context *sc)
{
	int i;

	/* The pair is found by the chain pointer the policy holds: the first two members of
	 * BearSSL's single-chain RSA and EC policy contexts are the same (vtable, chain), so
	 * either view of the union reads it. Clearing it makes a second call a no-op. */
	for (i = 0; i < TLS_PAIRS; i++) {
		if (pairs[i].refs == 0 || sc->chain_handler.single_ec.chain != pairs[i].pair.chain)
			continue;
		sc->chain_handler.single_ec.chain = NULL;
		sc->chain_handler.single_ec.chain_len = 0;
		if (--pairs[i].refs == 0 && i != op_cur)
			certfile_wipe(&pairs[i].pair);
		return;
	}
}

/* Install the certificate served now into a connection's context. */
static void
set_cert(br_ssl_server_context *sc)
{
	const struct x509_server *c = &certs[cur];
	struct certfile_pair *p;

	if (op_cur >= 0) {
		p = &pairs[op_cur].pair;
		pairs[op_cur].refs++;
		if (p->key_type == BR_KEYTYPE_EC)
			br_ssl_server_set_single_ec(sc, p->chain, p->chain_len, &p->ec,
			    BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN, (unsigned)p->issuer_key_type,
			    tmpl.eng.iec, br_ecdsa_sign_asn1_get_default());
		else
			br_ssl_server_set_single_rsa(sc, p->chain, p->chain_len, &p->rsa,
			    BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN, br_rsa_private_get_default(),
			    br_rsa_pkcs1_sign_get_default());
		return;
	}
	if (c->key_type == BR_KEYTYPE_EC)
		br_ssl_server_set_single_ec(sc, &chain[cur], 1, &c->ec, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
		    BR_KEYTYPE_RSA, tmpl.eng.iec, br_ecdsa_sign_asn1_get_default());
	else
		br_ssl_server_set_single_rsa(sc, &chain[cur], 1, &c->rsa, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
		    br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
}

/* ---- set-up and upkeep ---------------------------------------------------------------- */

/* see tls.h */
int
tls_setup(const struct ca *ca, const char *server_name, const char *const *alt, int nalt,
    int rsa, const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	int r;

	the_ca = ca;
	snprintf(name, sizeof name, "%s", server_name);
	alts = alt;
	nalts = nalt;
	want_rsa = rsa;
	/* The implementations tls_server_init copies (chain and key here are not used). */
	br_ssl_server_init_full_ec(&tmpl, &chain[cur], 1, BR_KEYTYPE_RSA, &certs[cur].ec);
	snprintf(op_cert, sizeof op_cert, "%s", cert_file);
	snprintf(op_key, sizeof op_key, "%s", key_file);
	if (op_cert[0]) {
		r = op_load("start", time(NULL), err, errlen);
		if (r == ERR_OK) {
			memcpy(op_seen, op_loaded, sizeof op_seen);
			tls_maintain(time(NULL)); /* logs an expired leaf at once */
		}
		return r == ERR_OK ? ERR_OK : ERR_INVAL;
	}
	return mint(time(NULL), err, errlen) == ERR_OK ? ERR_OK : ERR_CRYPTO;
}

/* see tls.h */
void
tls_maintain(time_t now)
{
	char err[128], when[25];
	struct log_rec r;

	/* Remint when the minted certificate is served and has less than 30 days left. */
	if (op_cur < 0 && certs[cur].not_after - now < 30 * 86400 && mint(now, err, sizeof err) != ERR_OK)
		log_msg(LOG_ERROR, "tls.remint_fail", err); /* the current certificate stays in use */
	op_watch(now);
	op_try(now);
	if (!expired_logged && tls_cert_expired(now)) {
		expired_logged = 1;
		log_format_time(when, (op_cur >= 0 ? pairs[op_cur].pair.not_after : certs[cur].not_after) * 1000);
		if (log_begin(&r, LOG_ERROR, "cert.expired")) {
			log_str(&r, "cert_file", op_cur >= 0 ? op_cert : "(minted)");
			log_str(&r, "not_after", when);
			log_str(&r, "msg", "the served certificate has expired: /readyz answers 503 "
			    "until a valid one is loaded");
			log_end(&r);
		}
	}
}

/* see tls.h */
int
tls_server_init(br_ssl_server_context *sc, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen)
{
	static const br_hash_class *const hashes[] = { &br_md5_vtable, &br_sha1_vtable,
		&br_sha224_vtable, &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable };
	unsigned char seed[32];
	int id;

	/* What br_ssl_server_init_full_ec/_rsa set, for the suites we allow (ECDHE with
	 * AES-GCM or ChaCha20-Poly1305), with the implementations looked up once. */
	br_ssl_server_zero(sc);
	br_ssl_engine_set_versions(&sc->eng, BR_TLS12, BR_TLS12);
	/* A client-initiated renegotiation is a full handshake (ECDHE and a signature) the
	 * client can ask for at will, before and during a tunnel: refused (docs/security.md). */
	br_ssl_engine_add_flags(&sc->eng, BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_suites(&sc->eng, suites, sizeof suites / sizeof suites[0]);
	br_ssl_engine_set_ec(&sc->eng, tmpl.eng.iec);
	set_cert(sc); /* takes a reference to an operator pair: see tls_conn_release */
	for (id = br_md5_ID; id <= br_sha512_ID; id++)
		br_ssl_engine_set_hash(&sc->eng, id, hashes[id - 1]);
	br_ssl_engine_set_prf10(&sc->eng, &br_tls10_prf);
	br_ssl_engine_set_prf_sha256(&sc->eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(&sc->eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_gcm(&sc->eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
	br_ssl_engine_set_aes_ctr(&sc->eng, tmpl.eng.iaes_ctr);
	br_ssl_engine_set_ghash(&sc->eng, tmpl.eng.ighash);
	br_ssl_engine_set_chapol(&sc->eng, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
	br_ssl_engine_set_chacha20(&sc->eng, tmpl.eng.ichacha);
	br_ssl_engine_set_poly1305(&sc->eng, tmpl.eng.ipoly);
	/* The engine's DRBG is seeded from ours; BearSSL's system seeder would probe CPUID
	 * and RDRAND again for every connection (about 23 us here). */
	rand_bytes(seed, sizeof seed);
	br_ssl_engine_inject_entropy(&sc->eng, seed, sizeof seed);
	sc->eng.rng_os_rand_done = 1;
	secret_wipe(seed, sizeof seed);
	br_ssl_engine_set_protocol_names(&sc->eng, alpn, 1);
	br_ssl_engine_set_buffers_bidi(&sc->eng, ibuf, ilen, obuf, olen);
	br_ssl_server_set_cache(sc, tlscache()); /* shared by the workers (tlscache.h) */
	if (br_ssl_server_reset(sc))
		return ERR_OK;
	tls_conn_release(sc);
	return ERR_CRYPTO;
}

/* see tls.h */
int
tls_client_init(br_ssl_client_context *cc, br_x509_minimal_context *xc,
    const br_x509_trust_anchor *ta, size_t nta, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen, const char *server_name, const void *seed,
    size_t seedlen)
{
	/* BearSSL's full client (every hash for the chain and signatures, X.509 minimal
	 * engine), then narrowed to the policy: TLS 1.2 and our suites only. */
	br_ssl_client_init_full(cc, xc, ta, nta);
	br_ssl_engine_set_versions(&cc->eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(&cc->eng, suites, sizeof suites / sizeof suites[0]);
	br_ssl_engine_set_buffers_bidi(&cc->eng, ibuf, ilen, obuf, olen);
	if (seed != NULL)
		br_ssl_engine_inject_entropy(&cc->eng, seed, seedlen);
	return br_ssl_client_reset(cc, server_name, 0) ? ERR_OK : ERR_CRYPTO;
}

/* see tls.h */
const char *
tls_error_str(int err)
{
	switch (err) {
	case BR_ERR_OK: return "closed";
	case BR_ERR_BAD_PARAM: return "bad_param";
	case BR_ERR_BAD_STATE: return "bad_state";
	case BR_ERR_UNSUPPORTED_VERSION: return "unsupported_version";
	case BR_ERR_BAD_VERSION: return "bad_version";
	case BR_ERR_BAD_LENGTH: return "bad_length";
	case BR_ERR_TOO_LARGE: return "too_large";
	case BR_ERR_BAD_MAC: return "bad_mac";
	case BR_ERR_NO_RANDOM: return "no_random";
	case BR_ERR_UNKNOWN_TYPE: return "unknown_record_type";
	case BR_ERR_UNEXPECTED: return "unexpected_message";
	case BR_ERR_BAD_CCS: return "bad_ccs";
	case BR_ERR_BAD_ALERT: return "bad_alert";
	case BR_ERR_BAD_HANDSHAKE: return "bad_handshake";
	case BR_ERR_OVERSIZED_ID: return "oversized_id";
	case BR_ERR_BAD_CIPHER_SUITE: return "bad_cipher_suite";
	case BR_ERR_BAD_COMPRESSION: return "bad_compression";
	case BR_ERR_BAD_FRAGLEN: return "bad_fragment_length";
	case BR_ERR_BAD_SECRENEG: return "bad_renegotiation";
	case BR_ERR_EXTRA_EXTENSION: return "extra_extension";
	case BR_ERR_BAD_SNI: return "bad_sni";
	case BR_ERR_BAD_HELLO_DONE: return "bad_hello_done";
	case BR_ERR_LIMIT_EXCEEDED: return "limit_exceeded";
	case BR_ERR_BAD_FINISHED: return "bad_finished";
	case BR_ERR_RESUME_MISMATCH: return "resume_mismatch";
	case BR_ERR_INVALID_ALGORITHM: return "invalid_algorithm";
	case BR_ERR_BAD_SIGNATURE: return "bad_signature";
	case BR_ERR_WRONG_KEY_USAGE: return "wrong_key_usage";
	case BR_ERR_NO_CLIENT_AUTH: return "no_client_auth";
	case BR_ERR_IO: return "io";
	}
	if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT)
		return "peer_sent_alert";
	if (err >= BR_ERR_SEND_FATAL_ALERT)
		return "sent_alert";
	return "error";
}

/*
 * tls.c — BearSSL set-up: the listener's certificate, the one TLS policy, the server and
 * client engines. See tls.h.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "rand.h"
#include "secret.h"
#include "tls.h"
#include "x509.h"

/* The policy's suites, for the server and every client (tls.h). */
static const uint16_t suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const char *alpn[] = { "http/1.1" }; /* BearSSL takes it non-const */

/* Current and previous certificate: a remint must not pull the chain out from under a
 * handshake in progress, so the old one stays valid until the next remint (>= 60 days). */
static struct x509_server certs[2];
static int cur;
static br_x509_certificate chain[2];
static br_ssl_session_cache_lru cache;
static unsigned char cache_store[TLS_CACHE_BYTES];

/* The symmetric implementations, chosen once. BearSSL's "full" initialisers choose them on
 * every call with CPUID, which traps to the hypervisor on virtual machines: 105 us per
 * connection measured on the benchmark machine (docs/performance.md). */
static br_ssl_server_context tmpl;

static const struct ca *the_ca;
static char name[256];
static const char *const *alts;
static int nalts, want_rsa;

static int
mint(time_t now, char *err, size_t errlen)
{
	int next = cur ^ 1;
	int rc;

	x509_server_free(&certs[next]);
	rc = x509_mint_server(&certs[next], the_ca, name, alts, (size_t)nalts,
	    want_rsa ? BR_KEYTYPE_RSA : BR_KEYTYPE_EC, now);
	if (rc != ERR_OK) {
		snprintf(err, errlen, "cannot mint the server certificate for %s", name);
		return rc;
	}
	chain[next].data = certs[next].cert;
	chain[next].data_len = certs[next].cert_len;
	cur = next;
	return ERR_OK;
}

/* see tls.h */
int
tls_setup(const struct ca *ca, const char *server_name, const char *const *alt, int nalt,
    int rsa, char *err, size_t errlen)
{
	the_ca = ca;
	snprintf(name, sizeof name, "%s", server_name);
	alts = alt;
	nalts = nalt;
	want_rsa = rsa;
	br_ssl_session_cache_lru_init(&cache, cache_store, sizeof cache_store);
	if (mint(time(NULL), err, errlen) != ERR_OK)
		return ERR_CRYPTO;
	br_ssl_server_init_full_ec(&tmpl, &chain[cur], 1, BR_KEYTYPE_RSA, &certs[cur].ec);
	return ERR_OK;
}

/* see tls.h */
void
tls_maintain(time_t now)
{
	char err[128];

	if (certs[cur].not_after - now < 30 * 86400 && mint(now, err, sizeof err) != ERR_OK)
		log_msg(LOG_ERROR, "tls.remint_fail", err); /* the current certificate stays in use */
}

/* see tls.h */
int
tls_server_init(br_ssl_server_context *sc, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen)
{
	static const br_hash_class *const hashes[] = { &br_md5_vtable, &br_sha1_vtable,
		&br_sha224_vtable, &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable };
	const struct x509_server *c = &certs[cur];
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
	if (c->key_type == BR_KEYTYPE_EC)
		br_ssl_server_set_single_ec(sc, &chain[cur], 1, &c->ec, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
		    BR_KEYTYPE_RSA, tmpl.eng.iec, br_ecdsa_sign_asn1_get_default());
	else
		br_ssl_server_set_single_rsa(sc, &chain[cur], 1, &c->rsa, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
		    br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
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
	br_ssl_server_set_cache(sc, &cache.vtable);
	return br_ssl_server_reset(sc) ? ERR_OK : ERR_CRYPTO;
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

/*
 * tls.c — BearSSL server set-up. See tls.h.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "tls.h"
#include "x509.h"

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
	return mint(time(NULL), err, errlen);
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
tls_conn_init(br_ssl_server_context *sc, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen)
{
	const struct x509_server *c = &certs[cur];

	if (c->key_type == BR_KEYTYPE_EC)
		br_ssl_server_init_full_ec(sc, &chain[cur], 1, BR_KEYTYPE_RSA, &c->ec);
	else
		br_ssl_server_init_full_rsa(sc, &chain[cur], 1, &c->rsa);
	br_ssl_engine_set_versions(&sc->eng, BR_TLS12, BR_TLS12);
	/* A client-initiated renegotiation is a full handshake (ECDHE and a signature) the
	 * client can ask for at will, before and during a tunnel: refused (docs/security.md). */
	br_ssl_engine_add_flags(&sc->eng, BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_suites(&sc->eng, suites, sizeof suites / sizeof suites[0]);
	br_ssl_engine_set_protocol_names(&sc->eng, alpn, 1);
	br_ssl_engine_set_buffers_bidi(&sc->eng, ibuf, ilen, obuf, olen);
	br_ssl_server_set_cache(sc, &cache.vtable);
	return br_ssl_server_reset(sc) ? ERR_OK : ERR_CRYPTO;
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

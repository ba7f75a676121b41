/*
 * tls.h — BearSSL glue: the relay's certificate and key, the one TLS policy, and the
 * engine set-up for the listener (tls_server_init) and for every client (tls_client_init).
 *
 * Policy, one for the listener and for every TLS client of the relay (the registration
 * client, the hop to an https:// upstream proxy): TLS 1.2 only (BearSSL's maximum), ECDHE
 * with AES-GCM or ChaCha20-Poly1305 only — a peer offering anything else (CBC, RC4, 3DES,
 * static RSA key exchange, TLS 1.0/1.1) gets no handshake, never a downgrade. The server
 * side adds ALPN "http/1.1" when the client offers it and refuses renegotiation; the
 * session cache (tlscache.h: shared by all connections of every worker) lets returning
 * clients resume.
 * The certificate is minted in memory at start (x509.h) and reminted by tls_maintain()
 * when less than 30 days remain; connections keep the chain they started with.
 *
 * With certFile/keyFile (certfile.h) the operator's chain and key are served instead:
 * loaded at start (a bad pair is a configuration error), loaded again by
 * tls_certfile_reload() on SIGHUP and by tls_maintain() when either file has changed
 * (checked every second). A new pair serves new handshakes; one that fails to load (or
 * whose leaf has already expired) is refused with `cert.reload_fail` and the running one
 * keeps serving. A pair stays in memory while any handshake set up with it is unfinished
 * (reference counts; front.c calls tls_conn_release when a handshake is done, conn.c when
 * its connection ends).
 */
#ifndef RELAYPRO_TLS_H
#define RELAYPRO_TLS_H

#include <stddef.h>
#include <time.h>

#include <bearssl.h>

#include "ca.h"

/* The policy's cipher suites, in preference order (ECDHE with AES-GCM or ChaCha20-Poly1305
 * only): the listener and every client; tests/bench/crypto_bench.c measures the same list. */
#define TLS_POLICY_SUITES { \
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, \
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, \
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, \
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, \
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, \
}

#define TLS_IBUF BR_SSL_BUFSIZE_INPUT  /* a full incoming record: 16384 + 325 */
#define TLS_OBUF BR_SSL_BUFSIZE_OUTPUT /* full 16 KiB records out: bulk MB/s (docs/performance.md) */

/* Serve the operator's pair when cert_file is not "" (a bad pair: ERR_INVAL, a
 * configuration error naming the file in err), else mint the server certificate for
 * server_name + alt names with key type "ec" / "rsa" (failure: ERR_CRYPTO with a message). */
int tls_setup(const struct ca *ca, const char *server_name, const char *const *alt, int nalt,
    int rsa, const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Every tick: remint when the minted certificate has less than 30 days left; load the
 * operator's files again when they changed (at most once a second); log `cert.expired`
 * once when the served leaf expires. */
void tls_maintain(time_t now);

/* SIGHUP: load the operator's pair again at once from these files (the reloaded
 * configuration's; "" = none: serve the minted certificate again). A bad pair is logged
 * (`cert.reload_fail`) and the running one kept. */
void tls_certfile_reload(const char *cert_file, const char *key_file);

/* 1 once the served leaf certificate's notAfter has passed (/readyz). */
int tls_cert_expired(time_t now);

/* The connection's handshake is done, or the connection ends: the operator's pair it was
 * set up with may be released. Idempotent; a no-op for the minted certificate. */
void tls_conn_release(br_ssl_server_context *sc);

/* Initialise a connection's server context over its buffers and reset it for a handshake. */
int tls_server_init(br_ssl_server_context *sc, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen);

/* Set cc up as a TLS client under the policy above, over the given engine buffers (ibuf
 * must hold BR_SSL_BUFSIZE_INPUT bytes; obuf may be smaller, at least 512 + 85), with the
 * server's chain checked by xc against ta[0..nta) and its name against server_name (also
 * sent as SNI), and reset it for a handshake. seed (may be NULL: BearSSL then seeds from
 * the system) is injected as extra entropy. ERR_OK or ERR_CRYPTO. */
int tls_client_init(br_ssl_client_context *cc, br_x509_minimal_context *xc,
    const br_x509_trust_anchor *ta, size_t nta, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen, const char *server_name, const void *seed,
    size_t seedlen);

/* Name of a BearSSL error code, for tls.fail logs. */
const char *tls_error_str(int err);

#endif

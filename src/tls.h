/*
 * tls.h — BearSSL server glue: the relay's certificate and key, the TLS policy, and the
 * per-connection engine set-up.
 *
 * Policy (SPEC §2.1): TLS 1.2 only (BearSSL's maximum), ECDHE with AES-GCM or
 * ChaCha20-Poly1305 only, ALPN "http/1.1" when the client offers it. A session cache
 * (TLS_CACHE_BYTES, shared by all connections) lets returning clients resume.
 * The certificate is minted in memory at start (x509.h) and reminted by tls_maintain()
 * when less than 30 days remain; connections keep the chain they started with.
 */
#ifndef RELAYPRO_TLS_H
#define RELAYPRO_TLS_H

#include <stddef.h>
#include <time.h>

#include <bearssl.h>

#include "ca.h"

#define TLS_IBUF BR_SSL_BUFSIZE_INPUT  /* a full incoming record: 16384 + 325 */
#define TLS_OBUF BR_SSL_BUFSIZE_OUTPUT /* full 16 KiB records out: bulk MB/s (docs/performance.md) */
#define TLS_CACHE_BYTES (256 * 1024)   /* about 2,600 resumable sessions */

/* Mint the server certificate for server_name + alt names with key type "ec" / "rsa".
 * ERR_OK or an error with a message. */
int tls_setup(const struct ca *ca, const char *server_name, const char *const *alt, int nalt,
    int rsa, char *err, size_t errlen);

/* Remint when the certificate has less than 30 days left. */
void tls_maintain(time_t now);

/* Initialise a connection's server context over its buffers and reset it for a handshake. */
int tls_conn_init(br_ssl_server_context *sc, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen);

/* Name of a BearSSL error code, for tls.fail logs. */
const char *tls_error_str(int err);

#endif

/*
 * register.h — console registration (docs/configuration.md), on a thread of its own so the relay's poll
 * loop never waits for DNS, a TCP connect or a TLS handshake.
 *
 * register_start() copies what it needs from the config (console address, organizationId,
 * deploymentToken, relayProId, the console CA choice) and starts a detached thread that
 *   1. resolves the console host (getaddrinfo) and connects to each address in turn,
 *      with SO_SNDTIMEO/SO_RCVTIMEO of REG_IO_TIMEOUT_MS and REG_ATTEMPT_MS per attempt;
 *      with proxyEnabled and a proxy route (upstream.h) it connects to the proxy instead
 *      and sends CONNECT (a SOCKS5 route: upstream_socks5_dial connects and runs the
 *      SOCKS5 exchange); for an https:// proxy that happens inside a TLS session to the
 *      proxy (the relay's one client policy, tls_client_init; anchors from
 *      upstream_trust_load read once by register_start), and step 2's session runs
 *      inside it (TLS in TLS);
 *   2. speaks TLS with BearSSL under the relay's one policy (tls_client_init: TLS 1.2,
 *      ECDHE with AES-GCM or ChaCha20-Poly1305 only; a console offering less gets no
 *      handshake and the failure is logged at level error), SNI and certificate name =
 *      the console host, trust anchors from consoleCACert (inline PEM — real newlines or
 *      literal "\n" — or a file path), else RELAYPRO_CONSOLE_CA_FILE, else the system
 *      bundle REG_SYSTEM_BUNDLE; BearSSL matches the name against DNS names only, so an
 *      IP-literal consoleAddress cannot be verified and always fails;
 *   3. POSTs /api/relaypro/register with the JSON of register_body() and reads the answer
 *      into a REG_RESP_MAX buffer (register_parse_response, register_parse_answer);
 *   4. on a 200 with a valid answer calls done() once and ends; otherwise logs
 *      register.fail and retries: network, TLS, 5xx, 429 and malformed answers after
 *      register_backoff_ms() (base doubling to cap, ±20 % jitter); 401, 403 and other
 *      4xx/3xx answers at the cap (±20 %), logged at level error.
 * Logged: register.ok (relay_id, attempt, console), register.fail (status, attempt,
 * retry_ms, reason, console). Tokens are never logged; the thread wipes every copy of
 * the deployment and security tokens it made before it ends.
 *
 * Threads: done() runs ON THE REGISTRATION THREAD, while a lock is held that
 * register_stop() also takes: keep it short (write the result to a pipe the loop polls)
 * and never call register_* from it. security_token is valid only during the call.
 * The thread blocks every signal, uses its own DRBG (seeded from rand_bytes() by
 * register_start, so rand.c is never touched from two threads) and logs through log.h
 * (one write(2) per record). Start it in the process that owns the config file, after
 * any fork(): a child forked later would not have the thread.
 */
#ifndef RELAYPRO_REGISTER_H
#define RELAYPRO_REGISTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "register_wire.h"

#define REG_IO_TIMEOUT_MS 10000      /* each connect, send and receive */
#define REG_ATTEMPT_MS 30000         /* one whole attempt, after DNS */
#define REG_BACKOFF_BASE_MS 1000
#define REG_BACKOFF_CAP_MS (5 * 60 * 1000)
#define REG_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

typedef void (*register_done_fn)(void *user, int64_t relay_id, const char *security_token);

/* Start registering with cfg (consoleAddress and deploymentToken must be set; rand_init()
 * must have succeeded). Cancels any registration already running. ERR_OK, ERR_INVAL when
 * consoleAddress or deploymentToken is empty, ERR_IO when the thread cannot start. */
int register_start(const struct config *cfg, register_done_fn done, void *user);

/* Register once in the foreground (`relaypro register`): attempts as the thread makes
 * them, retried after register_backoff_ms() until timeout_ms after the call (the last
 * wait cut to what is left; no attempt runs past it either); a refusal (401, 403, any other
 * 4xx but 408 and 429, a 3xx) is final. Logs register.ok / register.fail like the thread.
 * ERR_OK with *relay_id and token (cap > REG_TOKEN_MAX; the caller wipes it); ERR_CRYPTO
 * when the console refused; ERR_IO when it was not reached in time; ERR_NOTFOUND when
 * consoleAddress or deploymentToken is missing or the address is bad. */
int register_once(const struct config *cfg, uint32_t timeout_ms, int64_t *relay_id, char *token,
    size_t cap);

/* `relaypro register [-c FILE] [--env] [--timeout DURATION]` (docs/configuration.md), given main's
 * whole argv: REGISTER_NOT_MINE when the command word is not "register", or -h, --help or
 * --version is given (main goes on: it prints the usage from its table),
 * else the exit status: 0 registered (with --env: RELAYPRO_RELAY_ID= and
 * RELAYPRO_SECURITY_TOKEN= lines on stdout and nothing else, nothing changed; without:
 * saved by cfgwrite_save), 1 refused by the console or not saved, 2 bad usage or
 * configuration, 3 the console not reached within --timeout (default 60 s). Log lines go
 * to stderr. */
#define REGISTER_NOT_MINE (-1)
int register_main(int argc, char **argv);

/* Cancel: once this returns, done() is not running and will not be called. The thread
 * ends by itself within its I/O timeouts. Safe to call when nothing runs. */
void register_stop(void);

/* Backoff for registrations started afterwards (tests); 0 keeps the default. */
void register_set_backoff(uint32_t base_ms, uint32_t cap_ms);

#endif

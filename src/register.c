/*
 * register.c — console registration on a thread of its own (register.h): start, stop,
 * the thread's retry loop, one attempt (TLS under the relay's one client policy, the
 * request, the answer) and register_once for the command. Reaching the console is
 * register_dial.c; the wire format (body, HTTP answer, JSON answer, backoff) is
 * register_wire.c; the command line is register_cmd.c. It owns struct reg (register_int.h):
 * one heap block per registration holding every buffer, wiped in one place (reg_free).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#include "err.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "rand.h"
#include "register.h"
#include "secret.h"
#include "tls.h"

#ifndef RELAYPRO_VERSION
#define RELAYPRO_VERSION "dev"
#endif

#include "register_int.h"

/* gen changes on every start and stop; a thread whose gen is stale is cancelled. mu
 * orders done() against register_stop(). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned gen;
static uint32_t set_base_ms, set_cap_ms;

/* see register_int.h */
int
reg_cancelled(const struct reg *r)
{
	return __atomic_load_n(&gen, __ATOMIC_ACQUIRE) != r->gen;
}

/* ---------------------------------------------------------------- trust anchors */

/* Load the anchors for this attempt (the operator may fix a CA file between attempts).
 * ERR_OK with at least one anchor, or a reason in why. */
static int
load_anchors(struct reg *r, char *why, size_t whylen)
{
	struct anchors *a = &r->an;
	const char *src = r->ca[0] ? r->ca : r->ca_file[0] ? r->ca_file : REG_SYSTEM_BUNDLE;

	anchors_reset(a);
	if (anchors_add_value(a, src, why, whylen) != ERR_OK)
		return ERR_IO;
	if (a->n == 0) {
		snprintf(why, whylen, "no usable CA certificate in %.1024s",
		    strstr(src, "-----BEGIN") ? "inline consoleCACert" : src);
		return ERR_INVAL;
	}
	return ERR_OK;
}

/* ---------------------------------------------------------------- the attempt */
/* Why the TLS session failed. *level becomes error for certificate problems. */
static void
tls_why(struct reg *r, char *why, size_t whylen, int *level)
{
	int err = br_ssl_engine_last_error(&r->cc.eng);
	const char *s = NULL;

	switch (err) {
	case BR_ERR_X509_NOT_TRUSTED:
		s = "console certificate not trusted (check consoleCACert or RELAYPRO_CONSOLE_CA_FILE)";
		break;
	case BR_ERR_X509_BAD_SERVER_NAME:
		s = "console certificate does not name the console host";
		break;
	case BR_ERR_X509_EXPIRED:
		s = "console certificate expired or not yet valid";
		break;
	case BR_ERR_OK: case BR_ERR_IO:
		snprintf(why, whylen, "connection %s", r->io_errno ? strerror(r->io_errno) :
		    "closed by the console without an answer");
		return;
	case BR_ERR_RECV_FATAL_ALERT + 40: /* handshake_failure */
	case BR_ERR_RECV_FATAL_ALERT + 70: /* protocol_version */
	case BR_ERR_RECV_FATAL_ALERT + 71: /* insufficient_security */
	case BR_ERR_BAD_CIPHER_SUITE: case BR_ERR_UNSUPPORTED_VERSION:
		*level = LOG_ERROR;
		snprintf(why, whylen, "tls: the console offers none of the relay's TLS 1.2 ECDHE "
		    "suites with AES-GCM or ChaCha20-Poly1305 (BearSSL error %d); a weaker "
		    "handshake is never accepted", err);
		return;
	}
	if (err >= BR_ERR_X509_OK && err < BR_ERR_X509_OK + 32)
		*level = LOG_ERROR;
	if (s)
		snprintf(why, whylen, "tls: %s", s);
	else if (err >= BR_ERR_SEND_FATAL_ALERT)
		snprintf(why, whylen, "tls: alert %d", err & 255);
	else
		snprintf(why, whylen, "tls: BearSSL error %d", err);
}

/* One registration attempt. A_DONE with *id and r->token, else A_RETRY or A_SLOW with a
 * reason in why, the HTTP status (0 when there was none) and the log level. */
static int
attempt(struct reg *r, int64_t *id, int *status, int *level, char *why, size_t whylen)
{
	br_sslio_context io;
	unsigned char seed[32];
	size_t len = 0, bodylen = 0;
	char *body = NULL;
	int rc = ERR_INVAL, k;

	*status = 0;
	*level = LOG_WARN;
	if (load_anchors(r, why, whylen) != ERR_OK) {
		*level = LOG_ERROR;
		return A_RETRY;
	}
	if (reg_dial(r, why, whylen) != ERR_OK)
		return A_RETRY;
	r->deadline = reg_attempt_deadline(r);
	r->io_errno = 0;
	/* The relay's one TLS policy (tls.h): a console that offers less than TLS 1.2 with
	 * ECDHE and an AEAD suite gets no handshake (a failed reset shows as the TLS error
	 * of the first write). */
	br_hmac_drbg_generate(&r->rng, seed, sizeof seed);
	(void)tls_client_init(&r->cc, &r->xc, r->an.ta, r->an.n, r->iobuf, BR_SSL_BUFSIZE_INPUT,
	    r->iobuf + BR_SSL_BUFSIZE_INPUT, sizeof r->iobuf - BR_SSL_BUFSIZE_INPUT, r->host, seed,
	    sizeof seed);
	secret_wipe(seed, sizeof seed);
	br_sslio_init(&io, &r->cc.eng, reg_sock_read, r, reg_sock_write, r);
	if (br_sslio_write_all(&io, r->req, r->reqlen) != 0 || br_sslio_flush(&io) != 0) {
		close(r->fd);
		tls_why(r, why, whylen, level);
		return A_RETRY;
	}
	for (;;) {
		rc = register_parse_response(r->resp, len, 0, status, &body, &bodylen);
		if (rc != ERR_TRUNC || len == sizeof r->resp)
			break;
		k = br_sslio_read(&io, r->resp + len, sizeof r->resp - len);
		if (k < 0) {
			/* EOF counts only after close_notify: a cut connection is not an answer. */
			if (len > 0)
				rc = register_parse_response(r->resp, len,
				    br_ssl_engine_last_error(&r->cc.eng) == BR_ERR_OK, status, &body,
				    &bodylen);
			break;
		}
		len += (size_t)k;
	}
	close(r->fd);
	if (rc != ERR_OK) {
		if (len == 0)
			tls_why(r, why, whylen, level);
		else
			snprintf(why, whylen, "%s HTTP answer", rc == ERR_TRUNC ?
			    len == sizeof r->resp ? "oversized" : "truncated" : "malformed");
		*status = 0;
		return A_RETRY;
	}
	if (*status == 200) {
		if (register_parse_answer(body, bodylen, id, r->token, sizeof r->token) == ERR_OK)
			return A_DONE;
		*level = LOG_ERROR;
		snprintf(why, whylen, "malformed registration answer");
		return A_RETRY;
	}
	snprintf(why, whylen, "console answered %d", *status);
	if (*status >= 500 || *status == 429 || *status == 408)
		return A_RETRY;
	*level = LOG_ERROR; /* 401/403: wrong deploymentToken or organizationId */
	return A_SLOW;
}

/* Sleep ms, waking early when cancelled. Returns 0 when cancelled. */
static int
nap(const struct reg *r, uint32_t ms)
{
	int64_t end = loop_now_ms() + ms;

	while (!reg_cancelled(r)) {
		int64_t left = end - loop_now_ms();
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (left <= 0)
			return 1;
		if (left < 50)
			ts.tv_nsec = (long)left * 1000 * 1000;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void
reg_free(struct reg *r)
{
	secret_wipe(r->req, r->reqlen);
	free(r->req);
	if (r->pt) {
		secret_wipe(r->pt, sizeof *r->pt);
		free(r->pt);
	}
	secret_wipe(r, sizeof *r);
	free(r);
}

static void *
reg_main(void *arg)
{
	struct reg *r = arg;
	struct log_rec lr;
	unsigned failures = 0;

	while (!reg_cancelled(r)) {
		char why[CFG_PATH + 256];
		int64_t id = 0;
		int status, level, c;
		uint32_t rnd, wait;

		c = attempt(r, &id, &status, &level, why, sizeof why);
		secret_wipe(r->resp, sizeof r->resp);
		secret_wipe(r->iobuf, sizeof r->iobuf);
		if (r->pt) {
			secret_wipe(r->pt->iobuf, sizeof r->pt->iobuf);
			secret_wipe(&r->pt->cc, sizeof r->pt->cc);
		}
		if (c == A_DONE) {
			pthread_mutex_lock(&mu);
			if (!reg_cancelled(r)) {
				if (log_begin(&lr, LOG_INFO, "register.ok")) {
					log_int(&lr, "relay_id", id);
					log_int(&lr, "attempt", failures + 1);
					log_str(&lr, "console", r->console);
					log_end(&lr);
				}
				metrics_registration(METRICS_REG_REGISTERED);
				r->done(r->user, id, r->token);
			}
			pthread_mutex_unlock(&mu);
			break;
		}
		failures++;
		metrics_registration_failed();
		br_hmac_drbg_generate(&r->rng, &rnd, sizeof rnd);
		wait = register_backoff_ms(c == A_SLOW ? 64 : failures, r->base_ms, r->cap_ms, rnd);
		if (reg_cancelled(r))
			break;
		if (log_begin(&lr, (enum log_level)level, "register.fail")) {
			log_int(&lr, "status", status);
			log_int(&lr, "attempt", failures);
			log_int(&lr, "retry_ms", wait);
			log_str(&lr, "reason", why);
			log_str(&lr, "console", r->console);
			log_end(&lr);
		}
		if (!nap(r, wait))
			break;
	}
	reg_free(r);
	return NULL;
}

#define REQ_HEAD "POST /api/relaypro/register HTTP/1.1\r\nHost: %s%s%s%s%s\r\n" \
	"User-Agent: relaypro/%s\r\nContent-Type: application/json\r\n" \
	"Accept: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"

/* Everything one registration needs, copied from cfg (see register_start). NULL with
 * *rc set (ERR_INVAL: no consoleAddress or deploymentToken, or a bad address; ERR_IO). */
static struct reg *
reg_new(const struct config *cfg, int *rc)
{
	char hostname[CFG_STR] = "", seed[32];
	struct reg *r;
	size_t blen;
	int hl, v6;

	*rc = ERR_INVAL;
	if (!cfg->console_address[0] || !cfg->deployment_token[0])
		return NULL;
	*rc = ERR_IO;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	if (register_split_address(cfg->console_address, r->host, sizeof r->host, r->port,
	    sizeof r->port) != ERR_OK) {
		free(r);
		*rc = ERR_INVAL;
		return NULL;
	}
	v6 = strchr(r->host, ':') != NULL;
	snprintf(r->console, sizeof r->console, "%s%s%s:%s", v6 ? "[" : "", r->host,
	    v6 ? "]" : "", r->port);
	if (cfg->proxy_enabled) {
		/* Registration takes the same route as the tunnels (docs/configuration.md). */
		static struct upstream_routes routes;
		const struct upstream_proxy *p;
		char err[CFG_PATH + 160];
		unsigned port = (unsigned)atoi(r->port);
		if (upstream_load_with(&routes, 1, UPSTREAM_WITH_SOCKS5, err, sizeof err) == ERR_OK &&
		    target_parse_host(r->host, strlen(r->host), &r->target) == TARGET_OK &&
		    (p = upstream_route(&routes, &r->target, port)) != NULL) {
			r->proxy = *p;
			r->via_proxy = 1;
		}
		upstream_wipe(&routes);
		if (r->via_proxy && r->proxy.tls) {
			r->pt = calloc(1, sizeof *r->pt);
			if (r->pt == NULL) {
				reg_free(r);
				return NULL;
			}
			if (upstream_trust_load(&r->pt->an, cfg, err, sizeof err) != ERR_OK)
				snprintf(r->pt->trust_err, sizeof r->pt->trust_err, "%s", err);
		}
	}
	memcpy(r->ca, cfg->console_ca_cert, sizeof r->ca);
	memcpy(r->ca_file, cfg->console_ca_file, sizeof r->ca_file);
	r->ca[sizeof r->ca - 1] = r->ca_file[sizeof r->ca_file - 1] = 0;
	gethostname(hostname, sizeof hostname - 1);
	blen = register_body(NULL, 0, cfg->organization_id, cfg->deployment_token,
	    cfg->relay_pro_id, hostname, RELAYPRO_VERSION);
	hl = snprintf(NULL, 0, REQ_HEAD, v6 ? "[" : "", r->host, v6 ? "]" : "",
	    strcmp(r->port, "443") ? ":" : "", strcmp(r->port, "443") ? r->port : "",
	    RELAYPRO_VERSION, blen);
	r->reqlen = (size_t)hl + blen;
	r->req = malloc(r->reqlen + 1);
	if (hl < 0 || r->req == NULL) {
		reg_free(r);
		return NULL;
	}
	snprintf(r->req, (size_t)hl + 1, REQ_HEAD, v6 ? "[" : "", r->host, v6 ? "]" : "",
	    strcmp(r->port, "443") ? ":" : "", strcmp(r->port, "443") ? r->port : "",
	    RELAYPRO_VERSION, blen);
	register_body(r->req + hl, blen + 1, cfg->organization_id, cfg->deployment_token,
	    cfg->relay_pro_id, hostname, RELAYPRO_VERSION);
	rand_bytes(seed, sizeof seed);
	br_hmac_drbg_init(&r->rng, &br_sha256_vtable, seed, sizeof seed);
	secret_wipe(seed, sizeof seed);
	r->fd = -1;
	*rc = ERR_OK;
	return r;
}

/* see register.h */
int
register_start(const struct config *cfg, register_done_fn done, void *user)
{
	struct reg *r;
	pthread_attr_t at;
	pthread_t t;
	sigset_t all, old;
	int rc;

	if ((r = reg_new(cfg, &rc)) == NULL)
		return rc;
	r->done = done;
	r->user = user;

	pthread_mutex_lock(&mu);
	r->base_ms = set_base_ms ? set_base_ms : REG_BACKOFF_BASE_MS;
	r->cap_ms = set_cap_ms ? set_cap_ms : REG_BACKOFF_CAP_MS;
	r->gen = gen + 1;
	__atomic_store_n(&gen, r->gen, __ATOMIC_RELEASE); /* cancels any earlier thread */
	pthread_mutex_unlock(&mu);

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: signals stay with the loop */
	rc = pthread_create(&t, &at, reg_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		reg_free(r);
		return ERR_IO;
	}
	return ERR_OK;
}

/* see register.h */
void
register_stop(void)
{
	pthread_mutex_lock(&mu);
	__atomic_store_n(&gen, gen + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mu);
}

/* see register.h */
void
register_set_backoff(uint32_t base_ms, uint32_t cap_ms)
{
	pthread_mutex_lock(&mu);
	set_base_ms = base_ms;
	set_cap_ms = cap_ms;
	pthread_mutex_unlock(&mu);
}

/* see register.h */
int
register_once(const struct config *cfg, uint32_t timeout_ms, int64_t *relay_id, char *token,
    size_t cap)
{
	struct reg *r;
	struct log_rec lr;
	unsigned failures = 0;
	int rc;

	if ((r = reg_new(cfg, &rc)) == NULL)
		return rc == ERR_INVAL ? ERR_NOTFOUND : rc;
	pthread_mutex_lock(&mu);
	r->base_ms = set_base_ms ? set_base_ms : REG_BACKOFF_BASE_MS;
	r->cap_ms = set_cap_ms ? set_cap_ms : REG_BACKOFF_CAP_MS;
	r->gen = gen; /* not cancelled: nothing else runs in this process */
	pthread_mutex_unlock(&mu);
	r->limit = loop_now_ms() + (int64_t)timeout_ms;
	for (;;) {
		char why[CFG_PATH + 256];
		int64_t id = 0, left;
		int status, level, c;
		uint32_t rnd, wait;

		c = attempt(r, &id, &status, &level, why, sizeof why);
		secret_wipe(r->resp, sizeof r->resp);
		secret_wipe(r->iobuf, sizeof r->iobuf);
		if (c == A_DONE) {
			if (log_begin(&lr, LOG_INFO, "register.ok")) {
				log_int(&lr, "relay_id", id);
				log_int(&lr, "attempt", failures + 1);
				log_str(&lr, "console", r->console);
				log_end(&lr);
			}
			*relay_id = id;
			snprintf(token, cap, "%s", r->token);
			rc = strlen(r->token) < cap ? ERR_OK : ERR_NOSPACE;
			break;
		}
		failures++;
		br_hmac_drbg_generate(&r->rng, &rnd, sizeof rnd);
		wait = register_backoff_ms(failures, r->base_ms, r->cap_ms, rnd);
		/* A refusal is final here; anything else is retried until the time is up (the
		 * last wait cut to what is left, the last attempt bounded by the limit). */
		left = r->limit - loop_now_ms();
		rc = c == A_SLOW ? ERR_CRYPTO : left <= 0 ? ERR_IO : ERR_OK;
		if (rc == ERR_OK && (int64_t)wait > left)
			wait = (uint32_t)left;
		if (log_begin(&lr, rc == ERR_OK ? LOG_WARN : LOG_ERROR, "register.fail")) {
			log_int(&lr, "status", status);
			log_int(&lr, "attempt", failures);
			if (rc == ERR_OK)
				log_int(&lr, "retry_ms", wait);
			log_str(&lr, "reason", why);
			log_str(&lr, "console", r->console);
			if (rc != ERR_OK)
				log_str(&lr, "msg", rc == ERR_CRYPTO ? "the console refused: not retried" :
				    "giving up: the console was not reached in time (--timeout)");
			log_end(&lr);
		}
		(void)level;
		if (rc != ERR_OK)
			break;
		nap(r, wait);
	}
	reg_free(r);
	return rc;
}

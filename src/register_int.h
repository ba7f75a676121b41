/*
 * register_int.h — the registration thread's own state, shared by register.c (the thread,
 * the attempt, register_start/stop/once) and register_dial.c (reaching the console:
 * directly, through an HTTP or https:// proxy's CONNECT, or SOCKS5). Not an interface for
 * anyone else: include register.h instead.
 *
 * One struct reg is one registration's heap block: every buffer it needs (trust anchors,
 * BearSSL contexts and I/O buffer, the answer) so the thread's stack stays small and its
 * secrets are wiped in one place (register.c: reg_free) before the block is freed.
 */
#ifndef RELAYPRO_REGISTER_INT_H
#define RELAYPRO_REGISTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

#include "anchors.h"
#include "config.h"
#include "register_wire.h"
#include "target.h"
#include "upstream.h"

enum { A_DONE, A_RETRY, A_SLOW };

/* Everything one registration thread owns; wiped and freed when it ends. */
struct reg {
	unsigned gen;
	void (*done)(void *user, int64_t relay_id, const char *security_token); /* register_done_fn */
	void *user;
	uint32_t base_ms, cap_ms;
	char host[CFG_STR], port[8], console[CFG_STR + 16];
	char ca[CFG_PEM], ca_file[CFG_PATH];
	char *req;                 /* request head and body: holds the deployment token */
	size_t reqlen;
	int fd, io_errno;
	int64_t deadline;
	int64_t limit;             /* register_once: no attempt runs past it (0 = none) */
	br_hmac_drbg_context rng;  /* this thread's own: rand.c is not thread-safe */
	struct anchors an;
	br_ssl_client_context cc;
	br_x509_minimal_context xc;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
	char resp[REG_RESP_MAX];
	char token[REG_TOKEN_MAX + 1];
	int via_proxy;             /* proxyEnabled and HTTPS_PROXY applies (docs/configuration.md) */
	struct upstream_proxy proxy;
	struct target_host target;
	struct reg_ptls *pt;       /* https:// proxy: the TLS session to it, else NULL */
};

/* An https:// proxy: the console's TLS session runs inside a TLS session to the proxy
 * (docs/configuration.md). Allocated only then; its anchors are read once, by register_start. */
struct reg_ptls {
	struct anchors an;
	char trust_err[CFG_PATH + 160]; /* why the anchors could not be loaded ("" when they were) */
	br_ssl_client_context cc;
	br_x509_minimal_context xc;
	br_sslio_context io;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
};

/* 1 once register_stop() (or a newer register_start) cancelled this registration. */
int reg_cancelled(const struct reg *r);

/* The deadline of what starts now: REG_ATTEMPT_MS, cut short by register_once's limit. */
int64_t reg_attempt_deadline(const struct reg *r);

/* Connect r->fd to the console: each resolved address in turn, or through the proxy route
 * (HTTP CONNECT, inside TLS for an https:// proxy, or SOCKS5), with r->deadline set. ERR_OK,
 * or an error with the reason in why (never a credential). */
int reg_dial(struct reg *r, char *why, size_t whylen);

/* br_sslio callbacks for the console's TLS session: on the socket, or inside the TLS
 * session to an https:// proxy (r->pt). */
int reg_sock_read(void *ctx, unsigned char *buf, size_t len);
int reg_sock_write(void *ctx, const unsigned char *buf, size_t len);

#endif

/*
 * run.c — the relay's start order, its run and its stop. See run.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "err.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "priv.h"
#include "register.h"
#include "reload.h"
#include "resolve.h"
#include "run.h"
#include "server.h"
#include "sessions.h"
#include "shm.h"
#include "tls.h"
#include "tlscache.h"
#include "token.h"
#include "workers.h"

/* SIGHUP. */
static void
on_reload(void *ctx)
{
	reload_run(ctx);
}

/* The new binary of our upgrade serves, or (in a worker) the supervisor's did: another
 * process accepts from now on; this one serves what it accepted to its end. */
static void
on_handed_over(void *ctx)
{
	(void)ctx;
	server_handover("upgrade");
}

/* SIGUSR2. The relay starts the binary again with its listeners; a worker is told so by
 * its supervisor once the new supervisor serves, and hands over. */
static void
on_upgrade(void *ctx)
{
	struct proc *p = ctx;
	const char *names[LISTEN_MAX];
	int fds[LISTEN_MAX], n;

	if (p->child.worker >= 0) {
		on_handed_over(p);
		return;
	}
	n = listen_fds(fds, names, LISTEN_MAX);
	upgrade_start(&p->up, &p->self, fds, names, n, p->rl.now_ms);
}

/* SIGCHLD: a new binary that failed (its pipe says so; this only reaps it). */
static void
on_child(void *ctx)
{
	(void)ctx;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void
on_tick(void *ctx)
{
	struct proc *p = ctx;

	upgrade_tick(&p->up, p->rl.now_ms);
}

/* The shared region (shm.h): made here for `workers` rows, or, in a worker, the
 * supervisor's one mapped. Every part is planned first, in the same order everywhere. */
static int
share(struct proc *p, int workers, char *err, size_t errlen)
{
	metrics_plan();
	tlscache_plan();
	sessions_plan((unsigned)p->cfg.max_connections); /* the open tunnels (GET /sessions) */
	if (p->child.worker >= 0) {
		if (p->child.shared_fd >= 0)
			return shm_attach(p->child.shared_fd, p->child.worker, err, errlen);
		log_msg(LOG_WARN, "workers.unshared", "no shared region was handed to this worker: "
		    "its sessions and metrics are its own");
	}
	return shm_create(workers, workers > 1, err, errlen);
}

/* The log as configured; 0, or the exit code of a start that cannot go on. */
static int
open_log(const struct config *cfg)
{
	if (log_open(cfg->log_file) != ERR_OK) {
		if (errno == ELOOP) {
			fprintf(stderr, "relaypro: config error: logger.fileName = %s: is a symbolic "
			    "link, which relaypro does not follow; name the file itself, or - for "
			    "standard output\n", cfg->log_file);
			return PROC_EXIT_USAGE;
		}
		fprintf(stderr, "relaypro: cannot open log file %s: %s (logging to stderr)\n",
		    cfg->log_file, strerror(errno));
	}
	log_set_debug(cfg->debug_logging);
	log_set_rotation(cfg->log_max_size, cfg->log_max_age, (int)cfg->log_max_backups,
	    !cfg->log_no_compress);
	return 0;
}

/* Up to the listeners: everything that may need root or may refuse the configuration. */
static int
prepare(struct proc *p)
{
	struct config *cfg = &p->cfg;
	char err[CFG_PATH + 512];
	const char *alts[CFG_LIST_MAX];
	int rc, i;

	proc_raise_nofile(cfg);
	proc_ensure_id(p);
	if (loop_signals_init() != ERR_OK)
		return proc_fail("signals", strerror(errno));
	if (cfg->password_file[0]) {
		if (auth_load_passwords(&p->users[0], cfg->password_file, err, sizeof err) != ERR_OK)
			return proc_fail("passwordFile", err);
		p->rl.users = &p->users[0];
		log_msg(LOG_WARN, "auth.password_file",
		    "a password file is set: Basic authentication is for testing only");
	}
	/* proc_load_ca printed the one line naming the file and the cause (a folder relaypro
	 * cannot write, a key that does not match): the operator's to fix, exit 2. */
	if (proc_load_ca(p) != 0)
		return PROC_EXIT_USAGE;
	p->rl.ca_loaded = 1;
	token_init(&p->ca);
	for (i = 0; i < cfg->server_alt_names.n; i++)
		alts[i] = cfg->server_alt_names.item[i];
	rc = tls_setup(&p->ca, cfg->server_name, alts, cfg->server_alt_names.n,
	    strcmp(cfg->server_key_type, "rsa") == 0, cfg->cert_file, cfg->key_file, err, sizeof err);
	if (rc != ERR_OK) {
		proc_fail(rc == ERR_INVAL ? "config error" : "certificate", err);
		return rc == ERR_INVAL ? PROC_EXIT_USAGE : 1; /* a bad certFile/keyFile: config */
	}
	p->rl.cfg = cfg;
	if (relay_set_policy(&p->rl, cfg, err, sizeof err) != ERR_OK)
		return proc_fail("targets", err);
	if (conn_proxy_setup(cfg, err, sizeof err) != ERR_OK)
		return proc_fail("https proxy", err);
	if (err[0])
		log_msg(LOG_WARN, "upstream.proxy_trust", err); /* proxyEnabled off: not fatal */
	return 0;
}

static void
log_start(const struct proc *p, int workers)
{
	const struct config *cfg = &p->cfg;
	struct log_rec r;

	if (log_begin(&r, LOG_INFO, "start")) {
		log_str(&r, "version", RELAYPRO_VERSION);
		log_int(&r, "pid", getpid());
		if (workers > 0)
			log_int(&r, "workers", workers);
		if (p->child.worker >= 0)
			log_int(&r, "worker", p->child.worker);
		log_str(&r, "config", cfg->file[0] ? cfg->file : "(environment)");
		log_str(&r, "https_listen", cfg->https_listen);
		log_str(&r, "http_listen", cfg->http_listen);
		log_str(&r, "admin_listen", cfg->admin_listen);
		log_str(&r, "console", cfg->console_address);
		log_str(&r, "ca_bundle", cfg->ca_bundle_file);
		log_bool(&r, "ca_created", p->ca.created);
		log_int(&r, "conn_bytes_tls", (int64_t)conn_footprint(1));
		log_end(&r);
	}
}

/* see run.h */
int
run_main(struct proc *p, const char *cli_path)
{
	struct server_hooks h = { p, on_reload, on_upgrade, on_child, NULL, on_tick, NULL };
	struct config *cfg = &p->cfg;
	struct workers ws;
	char err[CFG_PATH + 512];
	struct log_rec r;
	int rc, supervise, n = 1;

	spawn_child(&p->child);
	if ((rc = proc_load_config(p, cli_path)) != 0 || (rc = open_log(cfg)) != 0 ||
	    (rc = prepare(p)) != 0)
		return rc;
	/* Workers: this process binds one set of listeners per worker and supervises; a
	 * supervisor's successor does too even if `workers` changed meanwhile (it was handed
	 * more than one set, and every set must keep a worker accepting from it). */
	supervise = p->child.worker < 0 && (cfg->workers != 1 || listen_inherited_sets() > 1);
	if (supervise) {
		rc = workers_listen(&ws, cfg, workers_count(cfg), err, sizeof err);
		n = ws.n;
	} else {
		rc = listen_open(cfg, err, sizeof err);
		p->rl.listening = listen_count();
	}
	if (rc != ERR_OK)
		return proc_fail("listen", err);
	/* Workers and their supervisor write one log file, and so do the binary we replace and
	 * we while it drains: the log follows the file's name and size before every record. */
	if (supervise || p->child.worker >= 0 || listen_inherited_sets() > 0)
		log_share();
	listen_close_unadopted();
	if (share(p, n, err, sizeof err) != ERR_OK)
		return proc_fail("shared memory", err);
	if ((rc = priv_start(cfg, p->ca.created, NULL, NULL, err, sizeof err)) != 0) {
		proc_fail(rc == PROC_EXIT_USAGE ? "config error" : "privilege drop", err);
		return rc;
	}
	if (!supervise && resolve_start() != ERR_OK)
		return proc_fail("resolver", strerror(errno));
	if (p->child.worker < 0 && proc_register_start(p) != 0)
		return proc_fail("registration", "consoleAddress and deploymentToken are needed");
	log_start(p, supervise ? n : 0);
	if (p->child.worker < 0) /* with workers the supervisor's state is everyone's */
		metrics_registration(cfg->security_token[0] ? METRICS_REG_REGISTERED :
		    cfg->deployment_token[0] ? METRICS_REG_REGISTERING : METRICS_REG_UNCONFIGURED);
	if (supervise) {
		rc = workers_run(&ws, p);
	} else {
		upgrade_init(&p->up, on_handed_over, p);
		if (p->child.worker < 0) {
			char ready[96];
			snprintf(ready, sizeof ready, "READY=1\nSTATUS=relaying\nMAINPID=%ld",
			    (long)getpid());
			notify_send(ready);
		}
		metrics_start(time(NULL), (long)getpid());
		spawn_report_ready(&p->child);
		rc = server_run(&p->rl, &h);
	}
	register_stop();
	if (log_begin(&r, LOG_INFO, "stop")) {
		log_int(&r, "pid", getpid());
		log_end(&r);
	}
	log_rotation_wait(); /* a compression under way finishes (at most one file) */
	token_wipe();
	proc_wipe(p);
	return rc;
}

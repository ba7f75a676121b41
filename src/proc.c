/*
 * proc.c — the process side's shared steps: configuration, relayProId, CA bundle,
 * start-up failures, the open-files limit, the registration hand-off. See proc.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cfgwrite.h"
#include "err.h"
#include "log.h"
#include "proc.h"
#include "rand.h"
#include "register.h"
#include "secret.h"
#include "server.h"

/* What the registration thread hands the loop, in one atomic pipe write. */
struct reg_result {
	int64_t relay_id;
	char token[REG_TOKEN_MAX + 1];
};

/* see proc.h */
int
proc_load_config(struct proc *p, const char *cli_path)
{
	char err[CFG_PATH + 512];

	if (config_load(&p->cfg, config_pick_file(cli_path), err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return PROC_EXIT_USAGE;
	}
	return 0;
}

/* see proc.h */
void
proc_ensure_id(struct proc *p)
{
	struct config *cfg = &p->cfg;
	char err[CFG_PATH + 128];
	struct log_rec lr;
	int saved;

	if (cfg->relay_pro_id[0])
		return;
	rand_uuid4(cfg->relay_pro_id, sizeof cfg->relay_pro_id);
	saved = cfg->file[0] &&
	    cfgwrite_set_relay_pro_id(cfg->file, cfg->relay_pro_id, err, sizeof err) == ERR_OK;
	if (log_begin(&lr, saved ? LOG_INFO : LOG_WARN, "config.relay_pro_id")) {
		log_str(&lr, "generated", cfg->relay_pro_id);
		log_bool(&lr, "saved", saved);
		if (!saved) {
			log_str(&lr, "error", cfg->file[0] ? err : "no config file (environment only)");
			log_str(&lr, "msg", "set relayProId (RELAYPRO_RELAY_PRO_ID) to keep it");
		}
		log_end(&lr);
	}
}

/* see proc.h */
int
proc_load_ca(struct proc *p)
{
	char err[CFG_PATH + 256];

	proc_ensure_id(p);
	if (ca_load_or_create(&p->ca, p->cfg.ca_bundle_file, (int)p->cfg.ca_key_bits,
	    p->cfg.relay_pro_id, err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: CA bundle: %s\n", err);
		return 1;
	}
	return 0;
}

/* see proc.h */
int
proc_fail(const char *what, const char *detail)
{
	struct log_rec r;

	/* on stdout the record would say the same thing as the line on stderr */
	if (!log_is_stdio() && log_begin(&r, LOG_ERROR, "start.fail")) {
		log_str(&r, "what", what);
		log_str(&r, "error", detail);
		log_end(&r);
	}
	fprintf(stderr, "relaypro: %s: %s\n", what, detail);
	return 1;
}

/* see proc.h. 1024 descriptors by default would cap the relay near 480 tunnels. Each
 * tunnel holds two; 64 more cover the listeners, the log, the resolver and the loop. A
 * hard limit below that is a warning naming how many tunnels fit: the relay still starts
 * (an accept that meets EMFILE pauses instead of spinning). */
void
proc_raise_nofile(const struct config *cfg)
{
	struct rlimit rl;
	struct log_rec r;
	uint64_t need = 2 * (uint64_t)cfg->max_connections + 64, have;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	have = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	if (have >= need)
		return;
	if (log_begin(&r, LOG_WARN, "limits.nofile")) {
		log_int(&r, "limit", (int64_t)have);
		log_int(&r, "needed", (int64_t)need);
		log_int(&r, "max_connections", (int64_t)cfg->max_connections);
		log_int(&r, "tunnels", have > 64 ? (int64_t)((have - 64) / 2) : 0);
		log_str(&r, "msg", "the open-files limit holds fewer tunnels than maxConnections; "
		    "raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower maxConnections");
		log_end(&r);
	}
}

/* Runs on the registration thread: hand the result to the loop. */
static void
on_registered(void *user, int64_t relay_id, const char *token)
{
	const struct proc *p = user;
	struct reg_result r;

	memset(&r, 0, sizeof r);
	r.relay_id = relay_id;
	snprintf(r.token, sizeof r.token, "%s", token);
	(void)!write(p->reg_pipe[1], &r, sizeof r); /* < PIPE_BUF: atomic */
	secret_wipe(&r, sizeof r);
}

/* On the loop: apply the registration (docs/configuration.md) and save it. */
static void
apply_registration(void *arg)
{
	struct proc *p = arg;
	struct config *cfg = &p->cfg;
	struct reg_result res;
	struct log_rec r;
	char err[2 * CFG_PATH + 512], where[CFG_PATH];
	int saved;

	if (read(p->reg_pipe[0], &res, sizeof res) != (ssize_t)sizeof res)
		return;
	res.token[REG_TOKEN_MAX] = 0;
	/* the config file, else <privateFolder>/registration.ini (docs/configuration.md) */
	saved = cfgwrite_save(cfg, res.relay_id, res.token, where, sizeof where, err,
	    sizeof err) == ERR_OK;
	cfg->relay_id = res.relay_id;
	snprintf(cfg->security_token, sizeof cfg->security_token, "%s", res.token);
	snprintf(cfg->registered_to, sizeof cfg->registered_to, "%s", cfg->console_address);
	secret_wipe(cfg->deployment_token, sizeof cfg->deployment_token);
	secret_wipe(&res, sizeof res);
	if (log_begin(&r, saved ? LOG_INFO : LOG_WARN, "register.saved")) {
		log_bool(&r, "saved", saved);
		log_int(&r, "relay_id", cfg->relay_id);
		if (saved)
			log_str(&r, "file", where);
		if (saved && err[0])
			log_str(&r, "config_file", err);
		if (!saved) {
			log_str(&r, "error", err);
			log_str(&r, "msg", "running with the new values; to keep them set "
			    "RELAYPRO_RELAY_ID, RELAYPRO_SECURITY_TOKEN and RELAYPRO_REGISTERED_TO");
		}
		log_end(&r);
	}
	if (p->registered)
		p->registered(p->registered_ctx);
}

/* see proc.h */
int
proc_register_start(struct proc *p)
{
	if (!p->cfg.deployment_token[0] || p->cfg.security_token[0])
		return 0;
	if (pipe2(p->reg_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	server_watch(p->reg_pipe[0], apply_registration, p);
	return register_start(&p->cfg, on_registered, p) == ERR_OK ? 0 : -1;
}

/* see proc.h */
void
proc_wipe(struct proc *p)
{
	ca_free(&p->ca);
	auth_wipe(&p->users[0]);
	auth_wipe(&p->users[1]);
	config_wipe(&p->cfg);
	config_wipe(&p->next);
}

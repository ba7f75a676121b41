/*
 * reload.c — SIGHUP: read, check, switch. See reload.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "ca.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "server.h"
#include "tls.h"

/* A reload refused: counted, logged with why, and nothing of the running state changed. */
static void
refuse(const char *err)
{
	struct log_rec r;

	metrics_reload(0);
	if (log_begin(&r, LOG_ERROR, "config.reload")) {
		log_bool(&r, "ok", 0);
		log_str(&r, "error", err);
		log_str(&r, "msg", "keeping the running configuration");
		log_end(&r);
	}
}

/* Load the configuration again; apply the reloadable keys, report the restart-only ones
 * that changed, and keep everything as it was when the new configuration (or its password
 * file, or its targets) is bad. */
static void
apply(struct proc *p)
{
	static const struct {
		const char *name;
		size_t off, len;
	} restart_only[] = {
#define R(n, f) { n, offsetof(struct config, f), sizeof(((struct config *)0)->f) }
		R("privateFolder", private_folder), R("serverName", server_name),
		R("serverAltNames", server_alt_names), R("serverKeyType", server_key_type),
		R("caKeyBits", ca_key_bits), R("httpsProxy.listen", https_listen),
		R("httpProxy.listen", http_listen), R("admin.listen", admin_listen),
		R("logger.fileName", log_file), R("logger.maxSize", log_max_size),
		R("logger.maxAge", log_max_age), R("logger.maxBackups", log_max_backups),
		R("logger.noCompress", log_no_compress), R("workers", workers),
		R("proxyProtocol", proxy_protocol), R("trustedProxies", trusted_proxies),
		R("caBundle", ca_bundle_file), R("user", user),
#undef R
	};
	struct config *cfg = &p->cfg, *next = &p->next;
	char err[CFG_PATH + 512], changed[512];
	struct log_rec r;
	size_t i, o = 0;
	int next_users = p->cur_users ^ 1;

	if (config_load(next, cfg->file, err, sizeof err) != ERR_OK) {
		refuse(err);
		return;
	}
	if (next->password_file[0] &&
	    auth_load_passwords(&p->users[next_users], next->password_file, err, sizeof err) != ERR_OK) {
		refuse(err);
		config_wipe(next);
		return;
	}
	changed[0] = 0;
	for (i = 0; i < sizeof restart_only / sizeof restart_only[0]; i++) {
		char *now = (char *)cfg + restart_only[i].off, *want = (char *)next + restart_only[i].off;
		if (memcmp(now, want, restart_only[i].len) != 0 && o + 40 < sizeof changed)
			o += (size_t)snprintf(changed + o, sizeof changed - o, "%s%s", o ? "," : "",
			    restart_only[i].name);
		memcpy(want, now, restart_only[i].len); /* keep the running value */
	}
	if (!next->relay_pro_id[0])
		memcpy(next->relay_pro_id, cfg->relay_pro_id, sizeof cfg->relay_pro_id);
	if (relay_set_policy(&p->rl, next, err, sizeof err) != ERR_OK) {
		refuse(err);
		relay_set_policy(&p->rl, cfg, err, sizeof err); /* the running policy again */
		config_wipe(next); /* the refused file's secrets do not stay in memory */
		if (next->password_file[0])
			auth_wipe(&p->users[next_users]);
		return;
	}
	memcpy(cfg, next, sizeof *cfg);
	config_wipe(next);
	if (cfg->password_file[0]) {
		p->rl.users = &p->users[next_users];
		auth_wipe(&p->users[p->cur_users]);
		p->cur_users = next_users;
		log_msg(LOG_WARN, "auth.password_file",
		    "a password file is set: Basic authentication is for testing only");
	} else {
		p->rl.users = NULL;
		auth_wipe(&p->users[p->cur_users]);
	}
	log_set_debug(cfg->debug_logging);
	tls_certfile_reload(cfg->cert_file, cfg->key_file); /* refused alone: cert.reload_fail */
	metrics_reload(1);
	if (cfg->security_token[0]) /* a worker reads the token its supervisor registered */
		metrics_registration(METRICS_REG_REGISTERED);
	if (log_begin(&r, LOG_INFO, "config.reload")) {
		log_bool(&r, "ok", 1);
		if (changed[0]) {
			log_str(&r, "restart_required", changed);
			log_str(&r, "msg", "these keys changed but take effect only after a restart");
		}
		log_end(&r);
	}
	server_revalidate(); /* tunnels the new configuration no longer accepts: revoked */
}

/* see reload.h */
void
reload_run(struct proc *p)
{
	notify_reloading();
	ca_warn_mode(p->cfg.ca_bundle_file); /* a bundle others can read: warned at every reload */
	apply(p);
	notify_send("READY=1\nSTATUS=relaying");
}

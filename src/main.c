/*
 * main.c — the command line (SPEC §7): run, check-config, version, ca show, token grant,
 * register (register.c's register_main), health (probe.c's probe_main), help. Every
 * subcommand takes -c FILE. Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad
 * configuration.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "ca.h"
#include "certfile.h"
#include "cfgwrite.h"
#include "config.h"
#include "conn.h"
#include "err.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "priv.h"
#include "probe.h"
#include "sessioncli.h"
#include "loop.h"
#include "rand.h"
#include "register.h"
#include "resolve.h"
#include "secret.h"
#include "server.h"
#include "tls.h"
#include "token.h"
#include "units.h"

#define EXIT_USAGE 2

static struct config cfg; /* large: kept out of the stack */
static struct config next_cfg; /* a reload is loaded here first */
static struct ca ca;
static struct auth_users users[2]; /* running and next: swapped on reload */
static int cur_users;
static int reg_pipe[2] = { -1, -1 }; /* registration thread -> loop */

/* Binary upgrade (SIGUSR2, SPEC §7). */
#define UPGRADE_READY_MS 10000
static char self_path[PATH_MAX];     /* resolved at start, not /proc/self/exe */
static char **saved_argv;
static pid_t upgrade_pid;            /* the new binary while it starts */
static int upgrade_fd = -1;          /* its readiness pipe (read end) */
static int64_t upgrade_deadline;
static void (*handover)(const char *why) = server_begin_drain; /* after an upgrade is ready */
static int worker_index = -1;        /* RELAYPRO_WORKER: this process is worker N */

/* What the registration thread hands the loop, in one atomic pipe write. */
struct reg_result {
	int64_t relay_id;
	char token[REG_TOKEN_MAX + 1];
};

/* The usage of every subcommand, in one table: `relaypro help` lists them, `relaypro CMD
 * --help` prints one, and packaging/manpage.sh builds the relaypro(8) man page from
 * those two outputs, so the man page cannot drift from the binary. A new subcommand is
 * one entry here and one dispatch line in main(). */
struct usage {
	const char *name;     /* "ca show": the words that select it */
	const char *synopsis; /* after "usage: " */
	const char *summary;  /* one line for `relaypro help` */
	const char *text;     /* the rest of `relaypro CMD --help` */
};

static const struct usage usages[] = {
	{ "run", "relaypro [run] [-c FILE]",
	    "run the relay in the foreground (the default command)",
	    "Binds the listeners, loads or creates the CA bundle and serves until SIGTERM or\n"
	    "SIGINT (graceful stop). SIGHUP reloads the configuration, SIGUSR2 starts the binary\n"
	    "again and hands it the listening sockets. Started as root, relaypro drops to `user`\n"
	    "(default relaypro) after binding. JSON log lines go to standard output unless\n"
	    "[logger] fileName names a file.\n" },
	{ "check-config", "relaypro check-config [-c FILE]",
	    "validate the configuration, print it (secrets shown as <set>)",
	    "Exit 0 when the configuration loads; otherwise one line naming the file, line and\n"
	    "key, and exit 2.\n" },
	{ "version", "relaypro version",
	    "print the version (also: relaypro --version)", "" },
	{ "ca show", "relaypro ca show [-c FILE]",
	    "print the CA certificate (PEM) and its SHA-256 fingerprint",
	    "Creates the CA bundle first when there is none. Responders pin this certificate.\n" },
	{ "token grant", "relaypro token grant --sub ID [--ttl DURATION] [-c FILE]",
	    "print a grant signed with the security token (tests, integrators)",
	    "Signs a grant as the console would, with the configured securityToken, for the\n"
	    "Responder ID: 1-128 characters of A-Z a-z 0-9 . _ : @ - (a sub the relay accepts;\n"
	    "any other is refused here too). --ttl: 1s to 24h, default 10m.\n" },
	{ "register", "relaypro register [-c FILE] [--env] [--timeout DURATION]",
	    "register with the console once, in the foreground",
	    "Registers with consoleAddress, organizationId and deploymentToken from the\n"
	    "configuration (the relay's own TLS policy, console CA and proxy), retrying network\n"
	    "errors until --timeout (1s to 24h, default 60s); a refusal (401, 403, another 4xx)\n"
	    "is not retried. Without --env the result is saved as the relay saves it: into the\n"
	    "config file, else <privateFolder>/registration.ini. With --env nothing is changed\n"
	    "and standard output holds only RELAYPRO_RELAY_ID=... and RELAYPRO_SECURITY_TOKEN=...\n"
	    "lines, the format of kubectl create secret generic --from-env-file. Log lines go to\n"
	    "standard error. Exit 0 registered, 1 refused by the console (or not saved), 2 bad\n"
	    "usage or configuration, 3 the console not reached in time.\n" },
	{ "health", "relaypro health [-c FILE] [--ready]",
	    "GET /healthz (or /readyz) on the admin listener: a container health check",
	    "Asks [admin] listen (RELAYPRO_ADMIN_LISTEN; a wildcard address means loopback), at\n"
	    "most 3 s. Exit 0 on 200, 1 on another answer or none (the reason on standard\n"
	    "error), 2 without an admin listener or on a bad configuration. The image has no\n"
	    "curl: compose's health check runs this.\n" },
	{ "sessions", "relaypro sessions [-c FILE]",
	    "the open tunnels, as a table (GET /sessions on the admin listener)",
	    "Asks [admin] listen as health does and prints one line per open tunnel: id,\n"
	    "transport (connect, absolute, ws, udp), client, sub (or the password user), target,\n"
	    "opened (UTC), bytes up and down, seconds idle. Exit 0 once the whole table is\n"
	    "printed, 1 when the relay does not answer, 2 without an admin listener or on a bad\n"
	    "configuration.\n" },
	{ "help", "relaypro help [COMMAND]",
	    "this list, or the usage of one command", "" },
};
#define NUSAGES (sizeof usages / sizeof usages[0])

static const char usage_tail[] =
    "\n"
    "Every command takes -c FILE and -h/--help (its usage); --version prints the version.\n"
    "Configuration: -c FILE, else $RELAYPRO_CONFIG, else /opt/relaypro/config.ini if it\n"
    "exists, else the environment alone (RELAYPRO_<KEY>). Exit status: 0 success,\n"
    "1 runtime failure, 2 bad usage or bad configuration. See relaypro(8).\n";

/* `relaypro help`: every command, one line each. */
static void
print_usage(FILE *f)
{
	size_t i;

	fputs("usage: relaypro [COMMAND] [-c FILE]\n\ncommands:\n", f);
	for (i = 0; i < NUSAGES; i++)
		fprintf(f, "  %-14s%s\n", usages[i].name, usages[i].summary);
	fputs(usage_tail, f);
}

/* The entry for cmd [sub], or NULL. */
static const struct usage *
find_usage(const char *cmd, const char *sub)
{
	char name[64];
	size_t i;

	snprintf(name, sizeof name, "%s%s%s", cmd, sub ? " " : "", sub ? sub : "");
	for (i = 0; i < NUSAGES; i++)
		if (strcmp(usages[i].name, name) == 0)
			return &usages[i];
	if (sub == NULL) /* "ca": the first command that starts with it */
		for (i = 0; i < NUSAGES; i++)
			if (strncmp(usages[i].name, name, strlen(name)) == 0 &&
			    usages[i].name[strlen(name)] == ' ')
				return &usages[i];
	return NULL;
}

/* `relaypro CMD --help`: that command's usage. */
static void
print_command_usage(const struct usage *u)
{
	printf("usage: %s\n\n%c%s.\n%s", u->synopsis, toupper((unsigned char)u->summary[0]),
	    u->summary + 1, u->text[0] ? "\n" : "");
	fputs(u->text, stdout);
}

static int
load_config(const char *cli_path)
{
	char err[CFG_PATH + 512];

	if (config_load(&cfg, config_pick_file(cli_path), err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int
cmd_version(void)
{
	printf("relaypro %s linux/%s (BearSSL 0.6, inih 55, musl)\n", RELAYPRO_VERSION, RELAYPRO_ARCH);
	return 0;
}

static int
cmd_check_config(const char *cli_path)
{
	char err[CFG_PATH * 2 + 256];
	int rc = load_config(cli_path);

	if (rc)
		return rc;
	if (cfg.cert_file[0] && certfile_check(cfg.cert_file, cfg.key_file, err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return EXIT_USAGE;
	}
	config_dump(&cfg, 1);
	printf("config ok\n");
	config_wipe(&cfg);
	return 0;
}

static int
cmd_token_grant(const char *cli_path, const char *sub, const char *ttl_text)
{
	char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char claims[1024], esc[JWT_SUB_MAX * 6 + 1], token[JWT_MAX + 1];
	uint64_t ttl = 600;
	int64_t now = (int64_t)time(NULL);
	size_t n;
	int rc;

	if (sub == NULL) {
		fprintf(stderr, "relaypro: token grant needs --sub ID (see relaypro token grant --help)\n");
		return EXIT_USAGE;
	}
	/* The relay's own rule (jwt_sub_ok): a grant it would refuse is never signed. */
	if (!jwt_sub_ok(sub, strlen(sub))) {
		fprintf(stderr, "relaypro: token grant: --sub must be 1-128 characters of "
		    "A-Z a-z 0-9 . _ : @ - (the relay refuses any other sub)\n");
		return EXIT_USAGE;
	}
	if (ttl_text && (units_duration(ttl_text, &ttl) != ERR_OK || ttl < 1 || ttl > 86400)) {
		fprintf(stderr, "relaypro: --ttl: not a duration between 1s and 24h\n");
		return EXIT_USAGE;
	}
	if ((rc = load_config(cli_path)) != 0)
		return rc;
	if (!cfg.security_token[0]) {
		fprintf(stderr, "relaypro: no securityToken configured (register first)\n");
		return 1;
	}
	n = json_escape(esc, sizeof esc - 1, sub, strlen(sub));
	esc[n] = 0;
	snprintf(claims, sizeof claims,
	    "{\"sub\":\"%s\",\"org\":%lld,\"aud\":\"relaypro:%lld\",\"iat\":%lld,\"exp\":%lld}", esc,
	    (long long)cfg.organization_id, (long long)cfg.relay_id, (long long)now,
	    (long long)(now + (int64_t)ttl));
	n = jwt_sign(token, sizeof token, header, claims, cfg.security_token,
	    strlen(cfg.security_token));
	config_wipe(&cfg);
	if (n == 0) {
		fprintf(stderr, "relaypro: token too long\n");
		return 1;
	}
	printf("%s\n", token);
	secret_wipe(token, sizeof token);
	return 0;
}

/* SPEC §6: relayProId is generated when missing and saved into the config file (the one
 * key changed; everything else kept). Without a writable file it is logged, so an operator
 * can set it. */
static void
ensure_relay_pro_id(void)
{
	unsigned char u[16];
	char err[CFG_PATH + 128];
	struct log_rec lr;
	int saved;

	if (cfg.relay_pro_id[0])
		return;
	rand_bytes(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(cfg.relay_pro_id, sizeof cfg.relay_pro_id,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
	    u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	saved = cfg.file[0] &&
	    cfgwrite_set_relay_pro_id(cfg.file, cfg.relay_pro_id, err, sizeof err) == ERR_OK;
	if (log_begin(&lr, saved ? LOG_INFO : LOG_WARN, "config.relay_pro_id")) {
		log_str(&lr, "generated", cfg.relay_pro_id);
		log_bool(&lr, "saved", saved);
		if (!saved) {
			log_str(&lr, "error", cfg.file[0] ? err : "no config file (environment only)");
			log_str(&lr, "msg", "set relayProId (RELAYPRO_RELAY_PRO_ID) to keep it");
		}
		log_end(&lr);
	}
}

/* Load (or create) the CA bundle named by the configuration. */
static int
load_ca(void)
{
	char err[CFG_PATH + 256];

	ensure_relay_pro_id();
	if (ca_load_or_create(&ca, cfg.ca_bundle_file, (int)cfg.ca_key_bits, cfg.relay_pro_id, err,
	    sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: CA bundle: %s\n", err);
		return 1;
	}
	return 0;
}

static int
cmd_ca_show(const char *cli_path)
{
	int rc = load_config(cli_path);

	if (rc)
		return rc;
	if ((rc = load_ca()) != 0)
		return rc;
	rc = ca_show(&ca, 1) == ERR_OK ? 0 : 1;
	ca_free(&ca);
	config_wipe(&cfg);
	return rc;
}

/* Start-up failures after the config was read: one line on stderr, and a start.fail
 * record when the log is a file (on stdout it would say the same thing twice). */
static int
start_fail(const char *what, const char *detail)
{
	struct log_rec r;

	if (!log_is_stdio() && log_begin(&r, LOG_ERROR, "start.fail")) {
		log_str(&r, "what", what);
		log_str(&r, "error", detail);
		log_end(&r);
	}
	fprintf(stderr, "relaypro: %s: %s\n", what, detail);
	return 1;
}

/* SIGHUP (SPEC §6): load the configuration again; apply the reloadable keys, report the
 * restart-only ones that changed, and keep everything as it was when the new
 * configuration (or its password file) is bad. Open tunnels are not touched. */
static void
reload_apply(void)
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
	char err[CFG_PATH + 512], changed[512];
	struct log_rec r;
	size_t i, o = 0;
	int next_users = cur_users ^ 1;

	if (config_load(&next_cfg, cfg.file, err, sizeof err) != ERR_OK) {
		metrics_reload(0);
		if (log_begin(&r, LOG_ERROR, "config.reload")) {
			log_bool(&r, "ok", 0);
			log_str(&r, "error", err);
			log_str(&r, "msg", "keeping the running configuration");
			log_end(&r);
		}
		return;
	}
	if (next_cfg.password_file[0] &&
	    auth_load_passwords(&users[next_users], next_cfg.password_file, err, sizeof err) != ERR_OK) {
		metrics_reload(0);
		if (log_begin(&r, LOG_ERROR, "config.reload")) {
			log_bool(&r, "ok", 0);
			log_str(&r, "error", err);
			log_str(&r, "msg", "keeping the running configuration");
			log_end(&r);
		}
		config_wipe(&next_cfg);
		return;
	}
	changed[0] = 0;
	for (i = 0; i < sizeof restart_only / sizeof restart_only[0]; i++) {
		char *now = (char *)&cfg + restart_only[i].off, *want = (char *)&next_cfg + restart_only[i].off;
		if (memcmp(now, want, restart_only[i].len) != 0 && o + 40 < sizeof changed)
			o += (size_t)snprintf(changed + o, sizeof changed - o, "%s%s", o ? "," : "",
			    restart_only[i].name);
		memcpy(want, now, restart_only[i].len); /* keep the running value */
	}
	if (!next_cfg.relay_pro_id[0])
		memcpy(next_cfg.relay_pro_id, cfg.relay_pro_id, sizeof cfg.relay_pro_id);
	if (server_set_policy(&next_cfg, err, sizeof err) != ERR_OK) {
		server_set_policy(&cfg, err, sizeof err);
		metrics_reload(0);
		log_msg(LOG_ERROR, "config.reload", "bad targets; keeping the running configuration");
		return;
	}
	memcpy(&cfg, &next_cfg, sizeof cfg);
	config_wipe(&next_cfg);
	if (cfg.password_file[0]) {
		srv.users = &users[next_users];
		auth_wipe(&users[cur_users]);
		cur_users = next_users;
		log_msg(LOG_WARN, "auth.password_file",
		    "a password file is set: Basic authentication is for testing only");
	} else {
		srv.users = NULL;
		auth_wipe(&users[cur_users]);
	}
	log_set_debug(cfg.debug_logging);
	tls_certfile_reload(cfg.cert_file, cfg.key_file); /* refused alone: cert.reload_fail */
	metrics_reload(1);
	if (cfg.security_token[0]) /* a worker reads the token its supervisor registered */
		metrics_registration(METRICS_REG_REGISTERED);
	if (log_begin(&r, LOG_INFO, "config.reload")) {
		log_bool(&r, "ok", 1);
		if (changed[0]) {
			log_str(&r, "restart_required", changed);
			log_str(&r, "msg", "these keys changed but take effect only after a restart");
		}
		log_end(&r);
	}
}

/* SIGHUP, with systemd told (RELOADING=1 ... READY=1) either way. */
static void
reload(void)
{
	notify_reloading();
	ca_warn_mode(cfg.ca_bundle_file); /* a bundle others can read: warned at every reload */
	reload_apply();
	notify_send("READY=1\nSTATUS=relaying");
}

/* Runs on the registration thread: hand the result to the loop. */
static void
on_registered(void *user, int64_t relay_id, const char *token)
{
	struct reg_result r;

	(void)user;
	memset(&r, 0, sizeof r);
	r.relay_id = relay_id;
	snprintf(r.token, sizeof r.token, "%s", token);
	(void)!write(reg_pipe[1], &r, sizeof r); /* < PIPE_BUF: atomic */
	secret_wipe(&r, sizeof r);
}

/* On the loop: apply the registration (SPEC §5) and save it in the config file. */
static void
apply_registration(void)
{
	struct reg_result res;
	struct log_rec r;
	char err[2 * CFG_PATH + 512], where[CFG_PATH];
	int saved;

	if (read(reg_pipe[0], &res, sizeof res) != (ssize_t)sizeof res)
		return;
	res.token[REG_TOKEN_MAX] = 0;
	/* the config file, else <privateFolder>/registration.ini (SPEC §5) */
	saved = cfgwrite_save(&cfg, res.relay_id, res.token, where, sizeof where, err,
	    sizeof err) == ERR_OK;
	cfg.relay_id = res.relay_id;
	snprintf(cfg.security_token, sizeof cfg.security_token, "%s", res.token);
	snprintf(cfg.registered_to, sizeof cfg.registered_to, "%s", cfg.console_address);
	secret_wipe(cfg.deployment_token, sizeof cfg.deployment_token);
	secret_wipe(&res, sizeof res);
	if (log_begin(&r, saved ? LOG_INFO : LOG_WARN, "register.saved")) {
		log_bool(&r, "saved", saved);
		log_int(&r, "relay_id", cfg.relay_id);
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
}

/* Register when a deployment token is set and no security token is (SPEC §5). */
static int
start_registration(void)
{
	if (!cfg.deployment_token[0] || cfg.security_token[0])
		return 0;
	if (pipe2(reg_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	server_watch(reg_pipe[0], apply_registration);
	return register_start(&cfg, on_registered, NULL) == ERR_OK ? 0 : -1;
}

/* Where this binary was started from, resolved once at start (SPEC §7: an upgrade starts
 * the file found there then, which is the new one after a package upgrade). */
static void
resolve_self(const char *argv0)
{
	char cand[PATH_MAX];
	const char *path = getenv("PATH");

	self_path[0] = 0;
	if (strchr(argv0, '/')) {
		if (realpath(argv0, self_path) == NULL)
			self_path[0] = 0;
		return;
	}
	while (path && *path) {
		size_t n = strcspn(path, ":");
		if (n && n + strlen(argv0) + 2 < sizeof cand) {
			snprintf(cand, sizeof cand, "%.*s/%s", (int)n, path, argv0);
			if (access(cand, X_OK) == 0 && realpath(cand, self_path) != NULL)
				return;
		}
		path += n + (path[n] == ':');
	}
	self_path[0] = 0;
}

static void
upgrade_end(const char *event, const char *why, int kill_child)
{
	struct log_rec r;

	if (log_begin(&r, kill_child ? LOG_ERROR : LOG_INFO, event)) {
		log_int(&r, "new_pid", upgrade_pid);
		if (why)
			log_str(&r, "error", why);
		log_end(&r);
	}
	if (kill_child && upgrade_pid > 0)
		kill(upgrade_pid, SIGTERM); /* by PID: the process we started */
	if (upgrade_fd >= 0) {
		server_unwatch(upgrade_fd);
		close(upgrade_fd);
		upgrade_fd = -1;
	}
	if (kill_child)
		upgrade_pid = 0;
}

/* The new binary wrote to its readiness pipe (or closed it by exiting). */
static void
upgrade_readable(void)
{
	char b;
	ssize_t n = read(upgrade_fd, &b, 1);
	pid_t child = upgrade_pid;

	if (n == 1 && b == 'R') {
		char msg[64];
		upgrade_end("upgrade.ready", NULL, 0);
		snprintf(msg, sizeof msg, "MAINPID=%ld", (long)child);
		notify_send(msg); /* systemd: the new process is the service now */
		upgrade_pid = 0;
		handover("upgrade");
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	upgrade_end("upgrade.fail", "the new binary exited before it was ready; still serving", 1);
}

/* Every tick: give up on a new binary that is not ready in time. */
static void
upgrade_tick(void)
{
	if (upgrade_fd >= 0 && srv.now_ms >= upgrade_deadline)
		upgrade_end("upgrade.fail", "the new binary was not ready within 10 s; still serving", 1);
}

/* Reap children (a failed new binary). */
static void
reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Start the binary at self_path with our listening sockets at fd 3, 4, ... (LISTEN_FDS,
 * LISTEN_FDNAMES) and a readiness pipe after them (RELAYPRO_UPGRADE_READY_FD); extra, when
 * not NULL, is one more "NAME=value" for its environment (a worker's index). Returns the
 * child's pid with *ready_fd the pipe's read end (non-blocking), or -1. */
static pid_t
spawn_self(const char *extra, int *ready_fd)
{
	static char nfd[32], npid[40], fdnames[64], fdnames_env[96], rfd[48], extra_env[64];
	static char *envp[512];
	extern char **environ;
	int fds[4], pipefd[2], n, k, m = 0, o = 0;
	const char *names[4];
	pid_t pid;

	n = server_listeners(fds, names, 4);
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return -1;
	/* Everything the child needs is prepared here: after fork() in a process with
	 * threads only async-signal-safe calls are allowed (no malloc, no stdio). */
	fdnames[0] = 0;
	for (k = 0; k < n; k++)
		o += snprintf(fdnames + o, sizeof fdnames - (size_t)o, "%s%s", k ? ":" : "", names[k]);
	snprintf(fdnames_env, sizeof fdnames_env, "LISTEN_FDNAMES=%s", fdnames);
	snprintf(nfd, sizeof nfd, "LISTEN_FDS=%d", n);
	snprintf(rfd, sizeof rfd, "RELAYPRO_UPGRADE_READY_FD=%d", 3 + n);
	snprintf(extra_env, sizeof extra_env, "%s", extra ? extra : "");
	memcpy(npid, "LISTEN_PID=", 12);
	for (k = 0; environ[k] && m < 500; k++)
		if (strncmp(environ[k], "LISTEN_", 7) != 0 &&
		    strncmp(environ[k], "RELAYPRO_UPGRADE_READY_FD=", 26) != 0 &&
		    strncmp(environ[k], "RELAYPRO_WORKER=", 16) != 0)
			envp[m++] = environ[k];
	envp[m++] = nfd;
	envp[m++] = npid;
	envp[m++] = fdnames_env;
	envp[m++] = rfd;
	if (extra)
		envp[m++] = extra_env;
	envp[m] = NULL;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		/* Child: listeners at 3, 4, ...; the readiness pipe after them. Copied up out of
		 * the way first so that no descriptor is overwritten before it is copied. */
		int tmp[5];
		long v = (long)getpid(), d = 1;
		char *p = npid + 11;
		sigset_t none;
		for (k = 0; k < n; k++)
			tmp[k] = fcntl(fds[k], F_DUPFD, 10);
		tmp[n] = fcntl(pipefd[1], F_DUPFD, 10);
		for (k = 0; k <= n; k++)
			dup2(tmp[k], 3 + k); /* dup2 clears close-on-exec */
		while (v / d >= 10)
			d *= 10;
		for (; d > 0; d /= 10)
			*p++ = (char)('0' + (v / d) % 10);
		*p = 0;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(self_path, saved_argv, envp);
		_exit(127);
	}
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	*ready_fd = pipefd[0];
	return pid;
}

/* SIGUSR2: start the binary at self_path with our listening sockets; switch over when it
 * reports ready (upgrade_readable), keep serving otherwise. No connection is refused:
 * both processes hold the same listening sockets until the old one stops accepting. */
static void
upgrade(void)
{
	struct log_rec r;
	pid_t pid;
	int fd;

	if (upgrade_fd >= 0)
		return; /* one at a time */
	if (!self_path[0]) {
		log_msg(LOG_ERROR, "upgrade.fail", "the binary's path could not be resolved at start");
		return;
	}
	pid = spawn_self(NULL, &fd);
	if (pid < 0) {
		log_msg(LOG_ERROR, "upgrade.fail", strerror(errno));
		return;
	}
	upgrade_fd = fd;
	upgrade_pid = pid;
	upgrade_deadline = srv.now_ms + UPGRADE_READY_MS;
	server_watch(upgrade_fd, upgrade_readable);
	if (log_begin(&r, LOG_INFO, "upgrade.start")) {
		log_str(&r, "binary", self_path);
		log_int(&r, "new_pid", pid);
		log_end(&r);
	}
}

/* The new process of an upgrade: tell the old one we are serving. */
static void
upgrade_report_ready(void)
{
	const char *v = getenv("RELAYPRO_UPGRADE_READY_FD");
	int fd;

	if (v == NULL)
		return;
	fd = atoi(v);
	unsetenv("RELAYPRO_UPGRADE_READY_FD");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (fd > 2) {
		(void)!write(fd, "R", 1);
		close(fd);
	}
}

/* ---- workers (SPEC §7: workers = N|auto) --------------------------------------------
 * The first process binds the listeners and becomes a supervisor: it starts N copies of
 * the binary (spawn_self, like an upgrade) that inherit the listening sockets and run the
 * relay, restarts a worker that dies (at most once a second per slot), forwards SIGHUP,
 * and on SIGTERM stops them all and waits for them to drain. SIGUSR2 upgrades the
 * supervisor itself: the new one starts its own workers and reports ready once they all
 * are; then the old supervisor stops its workers, which drain. */
#define WORKERS_MAX 64

static struct {
	pid_t pid;
	int ready_fd;
	int64_t respawn_at;
} workers[WORKERS_MAX];
static int nworkers, sup_stopping, sup_reported;
static int64_t sup_deadline;

static void
sup_stop(const char *why)
{
	struct log_rec r;
	int i;

	if (sup_stopping)
		return;
	sup_stopping = 1;
	notify_send("STOPPING=1\nSTATUS=draining");
	sup_deadline = srv.now_ms + (int64_t)cfg.shutdown_timeout * 1000 + 5000;
	if (log_begin(&r, LOG_INFO, "stopping")) {
		log_str(&r, "why", why);
		log_int(&r, "workers", nworkers);
		log_end(&r);
	}
	for (i = 0; i < nworkers; i++)
		if (workers[i].pid > 0)
			kill(workers[i].pid, SIGTERM);
}

static void
sup_spawn(int i)
{
	char extra[32];
	struct log_rec r;
	int fd;

	snprintf(extra, sizeof extra, "RELAYPRO_WORKER=%d", i);
	workers[i].pid = spawn_self(extra, &fd);
	workers[i].ready_fd = workers[i].pid > 0 ? fd : -1;
	if (workers[i].pid < 0) {
		workers[i].pid = 0;
		workers[i].respawn_at = srv.now_ms + 1000;
	}
	if (log_begin(&r, workers[i].pid > 0 ? LOG_INFO : LOG_ERROR, "worker.start")) {
		log_int(&r, "index", i);
		log_int(&r, "pid", workers[i].pid);
		log_end(&r);
	}
}

static void
sup_reap(void)
{
	int st, i;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < nworkers; i++) {
			struct log_rec r;
			if (workers[i].pid != pid)
				continue;
			workers[i].pid = 0;
			if (workers[i].ready_fd >= 0) {
				close(workers[i].ready_fd);
				workers[i].ready_fd = -1;
			}
			workers[i].respawn_at = srv.now_ms + 1000;
			if (!sup_stopping && log_begin(&r, LOG_WARN, "worker.exit")) {
				log_int(&r, "index", i);
				log_int(&r, "pid", pid);
				log_int(&r, "status", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
				log_str(&r, "msg", "restarting it");
				log_end(&r);
			}
		}
	}
}

static int
supervise(int n)
{
	struct pollfd p[WORKERS_MAX + 4];
	int who[WORKERS_MAX + 4];
	char ready[96];
	int i;

	nworkers = n < WORKERS_MAX ? n : WORKERS_MAX;
	handover = sup_stop;
	setenv("RELAYPRO_RELAY_PRO_ID", cfg.relay_pro_id, 1); /* one id for all workers */
	srv.now_ms = loop_now_ms();
	for (i = 0; i < nworkers; i++)
		sup_spawn(i);
	for (;;) {
		int np = 0, alive = 0;

		p[np] = (struct pollfd){ .fd = loop_signal_fd(), .events = POLLIN };
		who[np++] = -1;
		p[np] = (struct pollfd){ .fd = reg_pipe[0], .events = POLLIN };
		who[np++] = -2;
		p[np] = (struct pollfd){ .fd = upgrade_fd, .events = POLLIN };
		who[np++] = -3;
		for (i = 0; i < nworkers; i++) {
			if (workers[i].ready_fd < 0)
				continue;
			p[np] = (struct pollfd){ .fd = workers[i].ready_fd, .events = POLLIN };
			who[np++] = i;
		}
		if (poll(p, (nfds_t)np, SERVER_TICK_MS) < 0 && errno != EINTR)
			poll(NULL, 0, 50);
		srv.now_ms = loop_now_ms();
		srv.now = time(NULL);
		for (i = 0; i < np; i++) {
			if (!p[i].revents)
				continue;
			if (who[i] == -1) {
				unsigned sig = loop_take_signals();
				int k;
				if (sig & LOOP_SIG_CHLD)
					sup_reap();
				if (sig & LOOP_SIG_TERM)
					sup_stop("signal");
				if ((sig & LOOP_SIG_HUP) && !sup_stopping)
					for (k = 0; k < nworkers; k++)
						if (workers[k].pid > 0)
							kill(workers[k].pid, SIGHUP);
				if ((sig & LOOP_SIG_USR2) && !sup_stopping)
					upgrade();
			} else if (who[i] == -2) {
				int k;
				apply_registration();
				for (k = 0; k < nworkers; k++) /* they read the saved file again */
					if (workers[k].pid > 0)
						kill(workers[k].pid, SIGHUP);
			} else if (who[i] == -3) {
				if (upgrade_fd >= 0)
					upgrade_readable();
			} else {
				char b = 0;
				int w = who[i];
				if (read(workers[w].ready_fd, &b, 1) != 0 && b != 'R')
					continue;
				close(workers[w].ready_fd);
				workers[w].ready_fd = -1;
			}
		}
		upgrade_tick();
		if (!sup_reported) {
			int all = 1;
			for (i = 0; i < nworkers; i++)
				all &= workers[i].pid > 0 && workers[i].ready_fd < 0;
			if (all) {
				sup_reported = 1;
				snprintf(ready, sizeof ready, "READY=1\nSTATUS=%d workers\nMAINPID=%ld",
				    nworkers, (long)getpid());
				notify_send(ready);
				upgrade_report_ready();
			}
		}
		for (i = 0; i < nworkers; i++) {
			alive += workers[i].pid > 0;
			if (!sup_stopping && workers[i].pid == 0 && srv.now_ms >= workers[i].respawn_at)
				sup_spawn(i);
		}
		if (sup_stopping && (alive == 0 || srv.now_ms >= sup_deadline)) {
			for (i = 0; i < nworkers; i++)
				if (workers[i].pid > 0)
					kill(workers[i].pid, SIGKILL);
			return 0;
		}
	}
}

/* How many workers the supervisor runs (for a worker's metrics). */
static int
worker_count(void)
{
	long n = cfg.workers ? (long)cfg.workers : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

/* SPEC §7: the open-files soft limit goes up to the hard limit (1024 by default would cap
 * the relay near 480 tunnels). Each tunnel holds two descriptors; 64 more cover the
 * listeners, the log, the resolver and the loop. A hard limit below that for
 * maxConnections is a warning naming how many tunnels fit; the relay still starts (an
 * accept that meets EMFILE pauses instead of spinning). */
static void
raise_nofile(void)
{
	struct rlimit rl;
	struct log_rec r;
	uint64_t need = 2 * (uint64_t)cfg.max_connections + 64, have;

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
		log_int(&r, "max_connections", (int64_t)cfg.max_connections);
		log_int(&r, "tunnels", have > 64 ? (int64_t)((have - 64) / 2) : 0);
		log_str(&r, "msg", "the open-files limit holds fewer tunnels than maxConnections; "
		    "raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower maxConnections");
		log_end(&r);
	}
}

static int
cmd_run(const char *cli_path)
{
	char err[CFG_PATH + 512];
	const char *alts[CFG_LIST_MAX];
	struct log_rec r;
	int rc = load_config(cli_path), i;

	if (rc)
		return rc;
	if (log_open(cfg.log_file) != ERR_OK) {
		if (errno == ELOOP) {
			fprintf(stderr, "relaypro: config error: logger.fileName = %s: is a symbolic "
			    "link, which relaypro does not follow; name the file itself, or - for "
			    "standard output\n", cfg.log_file);
			return EXIT_USAGE;
		}
		fprintf(stderr, "relaypro: cannot open log file %s: %s (logging to stderr)\n",
		    cfg.log_file, strerror(errno));
	}
	log_set_debug(cfg.debug_logging);
	log_set_rotation(cfg.log_max_size, cfg.log_max_age, (int)cfg.log_max_backups,
	    !cfg.log_no_compress);
	raise_nofile();
	ensure_relay_pro_id();
	if (loop_signals_init() != ERR_OK)
		return start_fail("signals", strerror(errno));
	if (cfg.password_file[0]) {
		if (auth_load_passwords(&users[0], cfg.password_file, err, sizeof err) != ERR_OK)
			return start_fail("passwordFile", err);
		srv.users = &users[0];
		log_msg(LOG_WARN, "auth.password_file",
		    "a password file is set: Basic authentication is for testing only");
	}
	/* load_ca printed the one line naming the file and the cause (a folder relaypro
	 * cannot write, a key that does not match): the operator's to fix, exit 2. */
	if (load_ca() != 0)
		return EXIT_USAGE;
	srv.ca_loaded = 1;
	token_init(&ca);
	for (i = 0; i < cfg.server_alt_names.n; i++)
		alts[i] = cfg.server_alt_names.item[i];
	rc = tls_setup(&ca, cfg.server_name, alts, cfg.server_alt_names.n,
	    strcmp(cfg.server_key_type, "rsa") == 0, cfg.cert_file, cfg.key_file, err, sizeof err);
	if (rc != ERR_OK) {
		start_fail(rc == ERR_INVAL ? "config error" : "certificate", err);
		return rc == ERR_INVAL ? EXIT_USAGE : 1; /* a bad certFile/keyFile is a config error */
	}
	srv.cfg = &cfg;
	srv.on_reload = reload;
	srv.on_upgrade = upgrade;
	srv.on_child = reap;
	srv.on_tick = upgrade_tick;
	if (server_set_policy(&cfg, err, sizeof err) != ERR_OK)
		return start_fail("targets", err);
	if (conn_proxy_setup(&cfg, err, sizeof err) != ERR_OK)
		return start_fail("https proxy", err);
	if (err[0])
		log_msg(LOG_WARN, "upstream.proxy_trust", err); /* proxyEnabled off: not fatal */
	if (server_listen(&cfg, err, sizeof err) != ERR_OK)
		return start_fail("listen", err);
	/* Root is needed up to here (listeners, CA bundle, log file); the drop comes before
	 * any thread starts (priv.h). */
	if ((rc = priv_start(&cfg, ca.created, NULL, NULL, err, sizeof err)) != 0) {
		start_fail(rc == EXIT_USAGE ? "config error" : "privilege drop", err);
		return rc;
	}
	if (resolve_start() != ERR_OK)
		return start_fail("resolver", strerror(errno));
	if (getenv("RELAYPRO_WORKER"))
		worker_index = atoi(getenv("RELAYPRO_WORKER"));
	if (worker_index < 0 && start_registration() != 0)
		return start_fail("registration", "consoleAddress and deploymentToken are needed");
	if (log_begin(&r, LOG_INFO, "start")) {
		log_str(&r, "version", RELAYPRO_VERSION);
		log_int(&r, "pid", getpid());
		log_str(&r, "config", cfg.file[0] ? cfg.file : "(environment)");
		log_str(&r, "https_listen", cfg.https_listen);
		log_str(&r, "http_listen", cfg.http_listen);
		log_str(&r, "admin_listen", cfg.admin_listen);
		log_str(&r, "console", cfg.console_address);
		log_str(&r, "ca_bundle", cfg.ca_bundle_file);
		log_bool(&r, "ca_created", ca.created);
		log_int(&r, "conn_bytes_tls", (int64_t)conn_footprint(1));
		log_end(&r);
	}
	if (worker_index < 0 && cfg.workers != 1) {
		long n = cfg.workers ? (long)cfg.workers : sysconf(_SC_NPROCESSORS_ONLN);
		rc = supervise(n > 0 ? (int)n : 1);
		goto stopped;
	}
	if (worker_index < 0) {
		char ready[96];
		snprintf(ready, sizeof ready, "READY=1\nSTATUS=relaying\nMAINPID=%ld", (long)getpid());
		notify_send(ready);
	} else {
		srv.on_upgrade = NULL; /* the supervisor upgrades */
	}
	metrics_start(time(NULL), (long)getpid(), worker_index < 0 ? 0 : worker_index,
	    worker_index < 0 ? 1 : worker_count());
	metrics_registration(cfg.security_token[0] ? METRICS_REG_REGISTERED :
	    cfg.deployment_token[0] ? METRICS_REG_REGISTERING : METRICS_REG_UNCONFIGURED);
	upgrade_report_ready();
	rc = server_run();
stopped:
	register_stop();
	if (log_begin(&r, LOG_INFO, "stop")) {
		log_int(&r, "pid", getpid());
		log_end(&r);
	}
	log_rotation_wait(); /* a compression under way finishes (at most one file) */
	token_wipe();
	ca_free(&ca);
	auth_wipe(&users[0]);
	auth_wipe(&users[1]);
	config_wipe(&cfg);
	config_wipe(&next_cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cli_path = NULL, *sub = NULL, *ttl = NULL, *pos[3] = { NULL, NULL, NULL };
	const char *cmd, *sub2;
	int i, npos = 0, want_help = 0, want_version = 0;

	saved_argv = argv;
	resolve_self(argv[0]);
	/* These two parse their own options (--env, --timeout, --ready); -h, --help and
	 * --version are left to the table below. */
	if ((i = register_main(argc, argv)) != REGISTER_NOT_MINE)
		return i;
	if ((i = probe_main(argc, argv)) != PROBE_NOT_MINE)
		return i;
	if ((i = sessioncli_main(argc, argv)) != SESSIONCLI_NOT_MINE)
		return i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i == argc) {
				fprintf(stderr, "relaypro: %s needs a file\n", a);
				return EXIT_USAGE;
			}
			cli_path = argv[i];
		} else if (strcmp(a, "--sub") == 0 && i + 1 < argc) {
			sub = argv[++i];
		} else if (strcmp(a, "--ttl") == 0 && i + 1 < argc) {
			ttl = argv[++i];
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			want_help = 1;
		} else if (strcmp(a, "--version") == 0) {
			want_version = 1;
		} else if (a[0] == '-') {
			fprintf(stderr, "relaypro: unknown option %s (relaypro help lists the commands)\n", a);
			return EXIT_USAGE;
		} else if (npos < 3) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "relaypro: unexpected argument %s\n", a);
			return EXIT_USAGE;
		}
	}
	cmd = pos[0] ? pos[0] : "run";
	sub2 = pos[1];
	if (want_version)
		return cmd_version();
	/* -h/--help after a command, or `relaypro help COMMAND`: that command's usage. */
	if (want_help || strcmp(cmd, "help") == 0) {
		const struct usage *u = NULL;
		const char *c = cmd, *c2 = sub2;
		if (strcmp(cmd, "help") == 0 && sub2) { /* relaypro help COMMAND */
			c = sub2;
			c2 = pos[2];
		}
		if (pos[0] && (want_help || c != cmd))
			u = find_usage(c, c2);
		if (u) {
			print_command_usage(u);
			return 0;
		}
		if (pos[0] && (want_help || c != cmd)) {
			fprintf(stderr, "relaypro: unknown command '%s%s%s' (relaypro help lists them)\n",
			    c, c2 ? " " : "", c2 ? c2 : "");
			return EXIT_USAGE;
		}
		print_usage(stdout);
		return 0;
	}
	if (pos[2]) {
		fprintf(stderr, "relaypro: unexpected argument %s\n", pos[2]);
		return EXIT_USAGE;
	}
	if (rand_init() != ERR_OK) {
		fprintf(stderr, "relaypro: getrandom() failed: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(cmd, "version") == 0 && sub2 == NULL)
		return cmd_version();
	if (strcmp(cmd, "check-config") == 0 && sub2 == NULL)
		return cmd_check_config(cli_path);
	if (strcmp(cmd, "run") == 0 && sub2 == NULL)
		return cmd_run(cli_path);
	if (strcmp(cmd, "ca") == 0 && sub2 && strcmp(sub2, "show") == 0)
		return cmd_ca_show(cli_path);
	if (strcmp(cmd, "token") == 0 && sub2 && strcmp(sub2, "grant") == 0)
		return cmd_token_grant(cli_path, sub, ttl);
	fprintf(stderr, "relaypro: unknown command '%s%s%s'\n", cmd, sub2 ? " " : "",
	    sub2 ? sub2 : "");
	print_usage(stderr);
	return EXIT_USAGE;
}

/*
 * main.c — the command line (docs/design.md): which command runs, with which options, and the
 * one-shot commands — check-config, version, ca show, token grant, help and each
 * command's usage. `run` is the relay (run.c); `register` and `health` parse their own
 * options (register.c's register_main, probe.c's probe_main). Every subcommand takes -c
 * FILE. Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
 *
 * Owns: argv, the usage texts (relaypro help, CMD --help, and through them the man page).
 * Must not touch: the relay's start order (run.c) or its running state (proc.h): it only
 * hands a struct proc, made here once, to what it runs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certfile.h"
#include "config.h"
#include "err.h"
#include "json.h"
#include "jwt.h"
#include "probe.h"
#include "proc.h"
#include "rand.h"
#include "register.h"
#include "run.h"
#include "secret.h"
#include "sessioncli.h"
#include "units.h"

#define EXIT_USAGE PROC_EXIT_USAGE

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
cmd_version(void)
{
	printf("relaypro %s linux/%s (BearSSL 0.6, inih 55, musl)\n", RELAYPRO_VERSION, RELAYPRO_ARCH);
	return 0;
}

static int
cmd_check_config(struct proc *p, const char *cli_path)
{
	char err[CFG_PATH * 2 + 256];
	int rc = proc_load_config(p, cli_path);

	if (rc)
		return rc;
	if (p->cfg.cert_file[0] && certfile_check(p->cfg.cert_file, p->cfg.key_file, err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return EXIT_USAGE;
	}
	config_dump(&p->cfg, 1);
	printf("config ok\n");
	config_wipe(&p->cfg);
	return 0;
}

static int
cmd_token_grant(struct proc *p, const char *cli_path, const char *sub, const char *ttl_text)
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
	if ((rc = proc_load_config(p, cli_path)) != 0)
		return rc;
	if (!p->cfg.security_token[0]) {
		fprintf(stderr, "relaypro: no securityToken configured (register first)\n");
		return 1;
	}
	n = json_escape(esc, sizeof esc - 1, sub, strlen(sub));
	esc[n] = 0;
	snprintf(claims, sizeof claims,
	    "{\"sub\":\"%s\",\"org\":%lld,\"aud\":\"relaypro:%lld\",\"iat\":%lld,\"exp\":%lld}", esc,
	    (long long)p->cfg.organization_id, (long long)p->cfg.relay_id, (long long)now,
	    (long long)(now + (int64_t)ttl));
	n = jwt_sign(token, sizeof token, header, claims, p->cfg.security_token,
	    strlen(p->cfg.security_token));
	config_wipe(&p->cfg);
	if (n == 0) {
		fprintf(stderr, "relaypro: token too long\n");
		return 1;
	}
	printf("%s\n", token);
	secret_wipe(token, sizeof token);
	return 0;
}

static int
cmd_ca_show(struct proc *p, const char *cli_path)
{
	int rc = proc_load_config(p, cli_path);

	if (rc)
		return rc;
	if ((rc = proc_load_ca(p)) != 0)
		return rc;
	rc = ca_show(&p->ca, 1) == ERR_OK ? 0 : 1;
	ca_free(&p->ca);
	config_wipe(&p->cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cli_path = NULL, *sub = NULL, *ttl = NULL, *pos[3] = { NULL, NULL, NULL };
	const char *cmd, *sub2;
	int i, npos = 0, want_help = 0, want_version = 0;

	static struct proc p; /* large: kept out of the stack; handed to what runs */

	spawn_resolve(&p.self, argv);
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
		return cmd_check_config(&p, cli_path);
	if (strcmp(cmd, "run") == 0 && sub2 == NULL)
		return run_main(&p, cli_path);
	if (strcmp(cmd, "ca") == 0 && sub2 && strcmp(sub2, "show") == 0)
		return cmd_ca_show(&p, cli_path);
	if (strcmp(cmd, "token") == 0 && sub2 && strcmp(sub2, "grant") == 0)
		return cmd_token_grant(&p, cli_path, sub, ttl);
	fprintf(stderr, "relaypro: unknown command '%s%s%s'\n", cmd, sub2 ? " " : "",
	    sub2 ? sub2 : "");
	print_usage(stderr);
	return EXIT_USAGE;
}

/* t_cfgwrite.c — config write-back (docs/configuration.md): whole files compared byte for byte against
 * the expected text (comments, blank lines, other keys and sections kept; values replaced
 * in place; missing keys added at the end of the top level; deploymentToken removed;
 * CRLF, BOM, ':' delimiters, case-insensitive keys, a last line without newline), refused
 * values leave the file untouched, the mode is kept, symbolic links are followed, an
 * unwritable folder or temporary name is an error with the old file intact, and the
 * result loads with config_load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfgwrite.h"
#include "config.h"
#include "err.h"
#include "fileio.h"
#include "test.h"

static char dir[64], path[128], err[512];

static void
put_file(const char *p, const char *text, mode_t mode)
{
	FILE *f;

	unlink(p);
	f = fopen(p, "wb");
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
}

/* The file's whole text (at most 8 KiB) in a static buffer. */
static const char *
get_file(const char *p)
{
	static char buf[8192];
	FILE *f = fopen(p, "rb");
	size_t n = 0;

	buf[0] = 0;
	if (f) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	return buf;
}

/* Write in, update with the standard values, compare with want. */
static void
rewrite_case(const char *in, const char *pro_id, const char *want, const char *name)
{
	int rc;

	put_file(path, in, 0600);
	rc = cfgwrite_update(path, 77, "console.test:8443", "tok-ABC", pro_id, err, sizeof err);
	CHECK_INT(rc, ERR_OK, name);
	if (rc != ERR_OK)
		printf("     error: %s\n", err);
	CHECK_STR(get_file(path), want, name);
}

/* An update that must fail with rc and leave the file as it was. */
static void
refused(const char *token, const char *registered_to, int want_rc, const char *name)
{
	static const char in[] = "consoleAddress = a.example\ndeploymentToken = d\n";

	put_file(path, in, 0600);
	CHECK_INT(cfgwrite_update(path, 7, registered_to, token, NULL, err, sizeof err), want_rc,
	    name);
	CHECK_STR(get_file(path), in, name);
	CHECK(strstr(err, "tok") == NULL, name); /* no value in the message */
}

static int
leftovers(void)
{
	char tmp[160];

	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	return access(tmp, F_OK) == 0;
}

/* dir/prefix, followed by pid unless it is 0. */
static void
name_of(char *out, size_t cap, const char *prefix, long pid)
{
	if (pid)
		snprintf(out, cap, "%s/%s%ld", dir, prefix, pid);
	else
		snprintf(out, cap, "%s/%s", dir, prefix);
}

void
t_cfgwrite(void)
{
	static struct config cfg;
	struct stat st;
	char cerr[512], big[256], link[160], sub[128];
	int rc;

	snprintf(dir, sizeof dir, "/tmp/t_cfgwrite.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/config.ini", dir);

	/* relayProId alone: added, deploymentToken and everything else kept. */
	put_file(path, "# c\ndeploymentToken = dep\n[limits]\nidleTimeout = 1m\n", 0640);
	CHECK_INT(cfgwrite_set_relay_pro_id(path, "123e4567-e89b-12d3-a456-426614174000", err,
	    sizeof err), 0, "set relayProId only");
	CHECK_STR(get_file(path), "# c\ndeploymentToken = dep\nrelayProId = "
	    "123e4567-e89b-12d3-a456-426614174000\n[limits]\nidleTimeout = 1m\n",
	    "relayProId added, deploymentToken kept");

	rewrite_case(
	    "; relaypro configuration\n"
	    "# written by the installer\n"
	    "consoleAddress = console.test:8443\n"
	    "organizationId=42\n"
	    "\n"
	    "deploymentToken = dep-secret\n"
	    "serverName = relay.example\n"
	    "\n"
	    "# listeners\n"
	    "[httpsProxy]\n"
	    "listen = 127.0.0.1:9443\n"
	    "[limits]\n"
	    "idleTimeout = 15m\n",
	    NULL,
	    "; relaypro configuration\n"
	    "# written by the installer\n"
	    "consoleAddress = console.test:8443\n"
	    "organizationId=42\n"
	    "\n"
	    "serverName = relay.example\n"
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n"
	    "\n"
	    "# listeners\n"
	    "[httpsProxy]\n"
	    "listen = 127.0.0.1:9443\n"
	    "[limits]\n"
	    "idleTimeout = 15m\n",
	    "added after the last top-level key, token removed, the rest kept");
	CHECK_INT(config_load(&cfg, path, cerr, sizeof cerr), ERR_OK, "result loads");
	CHECK_INT(cfg.relay_id, 77, "loaded relayId");
	CHECK_STR(cfg.security_token, "tok-ABC", "loaded securityToken");
	CHECK_STR(cfg.registered_to, "console.test:8443", "loaded registeredTo");
	CHECK_STR(cfg.deployment_token, "", "loaded: no deploymentToken");
	CHECK(!leftovers(), "no temporary file left");

	rewrite_case(
	    "  relayId = 5\n"
	    "SecurityToken=old-token\n"
	    "registeredTo: old.example \n"
	    "DEPLOYMENTTOKEN = x\n"
	    "; relayId = 1 (a comment)\n"
	    "[other]\n"
	    "relayId = 5\n"
	    "securityToken = in-a-section\n",
	    NULL,
	    "  relayId = 77\n"
	    "SecurityToken=tok-ABC\n"
	    "registeredTo: console.test:8443\n"
	    "; relayId = 1 (a comment)\n"
	    "[other]\n"
	    "relayId = 5\n"
	    "securityToken = in-a-section\n",
	    "replaced in place, any case, ':' delimiter, sections and comments untouched");

	rewrite_case(
	    "# crlf\r\n"
	    "consoleAddress = console.test:8443\r\n"
	    "securityToken = old\r\n"
	    "deploymentToken = d\r\n"
	    "\r\n"
	    "[admin]\r\n"
	    "listen = 127.0.0.1:9000\r\n",
	    NULL,
	    "# crlf\r\n"
	    "consoleAddress = console.test:8443\r\n"
	    "securityToken = tok-ABC\r\n"
	    "relayId = 77\r\n"
	    "registeredTo = console.test:8443\r\n"
	    "\r\n"
	    "[admin]\r\n"
	    "listen = 127.0.0.1:9000\r\n",
	    "CRLF kept and used for added lines");

	rewrite_case(
	    "deploymentToken = d\n",
	    "12345678-1234-4abc-8def-123456789abc",
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n"
	    "relayProId = 12345678-1234-4abc-8def-123456789abc\n",
	    "relayProId added when given");

	rewrite_case(
	    "relayProId = 00000000-0000-4000-8000-000000000000\n",
	    "12345678-1234-4abc-8def-123456789abc",
	    "relayProId = 12345678-1234-4abc-8def-123456789abc\n"
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n",
	    "relayProId replaced in place");

	rewrite_case(
	    "relayProId = 00000000-0000-4000-8000-000000000000\n",
	    NULL,
	    "relayProId = 00000000-0000-4000-8000-000000000000\n"
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n",
	    "relayProId kept when not given");

	rewrite_case(
	    "consoleAddress = a.example\n# end",
	    NULL,
	    "consoleAddress = a.example\n"
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n"
	    "# end",
	    "a last line without newline stays last");

	rewrite_case(
	    "consoleAddress = a.example",
	    NULL,
	    "consoleAddress = a.example\n"
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n",
	    "a last key line without newline gets one");

	rewrite_case(
	    "# only comments at the top\n"
	    "[httpsProxy]\n"
	    "listen = 127.0.0.1:9443\n",
	    NULL,
	    "# only comments at the top\n"
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n"
	    "[httpsProxy]\n"
	    "listen = 127.0.0.1:9443\n",
	    "no top-level key: added before the first section");

	rewrite_case(
	    "",
	    NULL,
	    "relayId = 77\n"
	    "registeredTo = console.test:8443\n"
	    "securityToken = tok-ABC\n",
	    "empty file");

	rewrite_case(
	    "\xef\xbb\xbfrelayId = 1\n"
	    "securityToken = a\n"
	    "securityToken = b\n",
	    NULL,
	    "\xef\xbb\xbfrelayId = 77\n"
	    "securityToken = tok-ABC\n"
	    "registeredTo = console.test:8443\n",
	    "BOM kept, first key still found; a duplicate dropped");

	rewrite_case(
	    "relayId =\n"
	    "\tregisteredTo\t=\t\n",
	    NULL,
	    "relayId =77\n"
	    "\tregisteredTo\t=\tconsole.test:8443\n"
	    "securityToken = tok-ABC\n",
	    "empty values replaced, white space before them kept");

	/* Refused values: nothing written, no secret in the message. */
	refused("tok\nrelayId = 1", "r", ERR_INVAL, "LF in the token");
	refused("tok\r", "r", ERR_INVAL, "CR in the token");
	refused("tok\tx", "r", ERR_INVAL, "TAB in the token");
	refused(" tok", "r", ERR_INVAL, "leading space");
	refused("tok ", "r", ERR_INVAL, "trailing space");
	refused("", "r", ERR_INVAL, "empty token");
	refused("tok", "console\r\n[x]", ERR_INVAL, "CRLF in registeredTo");
	memset(big, 'a', 190);
	big[190] = 0;
	refused(big, "r", ERR_RANGE, "a line longer than inih reads");
	CHECK(!leftovers(), "refused: no temporary file");

	/* The mode is kept. */
	put_file(path, "relayId = 1\n", 0640);
	CHECK_INT(cfgwrite_update(path, 2, "r", "t", NULL, err, sizeof err), ERR_OK, "0640 update");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640, "mode 0640 kept");
	put_file(path, "relayId = 1\n", 0600);
	CHECK_INT(cfgwrite_update(path, 2, "r", "t", NULL, err, sizeof err), ERR_OK, "0600 update");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "mode 0600 kept");

	/* A symbolic link: the target is replaced, the link stays. */
	snprintf(link, sizeof link, "%s/link.ini", dir);
	put_file(path, "relayId = 1\n", 0600);
	unlink(link);
	CHECK(symlink("config.ini", link) == 0, "symlink");
	CHECK_INT(cfgwrite_update(link, 3, "r", "t", NULL, err, sizeof err), ERR_OK, "via link");
	CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "link kept");
	CHECK_STR(get_file(path), "relayId = 3\nregisteredTo = r\nsecurityToken = t\n",
	    "target rewritten");
	unlink(link);

	/* The temporary name is taken (by a folder): error, old file untouched. */
	{
		char tmp[160];
		snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
		put_file(path, "relayId = 1\n", 0600);
		mkdir(tmp, 0700);
		rc = cfgwrite_update(path, 2, "r", "t", NULL, err, sizeof err);
		CHECK_INT(rc, ERR_IO, "temporary file cannot be created");
		CHECK(strstr(err, "cannot create") != NULL, "error names the step");
		CHECK_STR(get_file(path), "relayId = 1\n", "old file untouched");
		rmdir(tmp);
	}

	/* A read-only folder (root ignores the mode, so only as another user). */
	snprintf(sub, sizeof sub, "%s/ro", dir);
	mkdir(sub, 0700);
	snprintf(link, sizeof link, "%s/config.ini", sub);
	put_file(link, "deploymentToken = d\n", 0600);
	chmod(sub, 0500);
	if (geteuid() != 0) {
		rc = cfgwrite_update(link, 2, "r", "t", NULL, err, sizeof err);
		CHECK_INT(rc, ERR_IO, "read-only folder");
		CHECK_STR(get_file(link), "deploymentToken = d\n", "read-only folder: file untouched");
	}
	chmod(sub, 0700);
	/* A read-only file (as another user: not writable). */
	chmod(link, 0400);
	if (geteuid() != 0) {
		rc = cfgwrite_update(link, 2, "r", "t", NULL, err, sizeof err);
		CHECK_INT(rc, ERR_IO, "read-only file");
		CHECK_STR(get_file(link), "deploymentToken = d\n", "read-only file: untouched");
	}
	unlink(link);
	rmdir(sub);

	CHECK_INT(cfgwrite_update("/nonexistent/relaypro.ini", 2, "r", "t", NULL, err, sizeof err),
	    ERR_IO, "missing file");

	/* fileio_sweep: temporary files of writers killed before their rename are removed
	 * (they may hold the CA key); a live writer's, ours, other names and other files'
	 * temporaries stay. A dead pid: a child that has exited and been reaped. */
	{
		/* name prefix after dir, and the pid to append (0: none) */
		static const char *const keep[] = { "b.ini.tmp.", "b.ini.tmp.1", "b.ini.tmp.x",
			"other.ini.tmp.", "b.ini.tmpx." };
		char f[192], dead[192];
		pid_t child = fork();
		long gone;
		size_t i;

		if (child == 0)
			_exit(0);
		waitpid(child, NULL, 0);
		gone = (long)child;
		snprintf(dead, sizeof dead, "%s/b.ini.tmp.%ld", dir, gone);
		put_file(dead, "-----BEGIN RSA PRIVATE KEY-----\n", 0600);
		for (i = 0; i < sizeof keep / sizeof keep[0]; i++) {
			name_of(f, sizeof f, keep[i], i == 0 ? (long)getpid() : i == 1 ? 0 : gone);
			put_file(f, "x", 0600);
		}
		snprintf(f, sizeof f, "%s/b.ini", dir);
		CHECK_INT(fileio_sweep(f), 1, "sweep: one stale temporary removed");
		CHECK(access(dead, F_OK) != 0, "sweep: the dead writer's temporary is gone");
		for (i = 0; i < sizeof keep / sizeof keep[0]; i++) {
			name_of(f, sizeof f, keep[i], i == 0 ? (long)getpid() : i == 1 ? 0 : gone);
			CHECK(access(f, F_OK) == 0, "sweep: kept (ours, pid 1 alive, not a pid, other file, other suffix)");
			unlink(f);
		}
	}

	/* registration.ini (docs/configuration.md): ours alone, written whole, 0600, its folder made 0700;
	 * read by config_load above the file; cfgwrite_save picks the file when it can. */
	{
		char regdir[96], reg[128], where[128];
		const char *t;

		snprintf(regdir, sizeof regdir, "%s/private", dir);
		snprintf(reg, sizeof reg, "%s/registration.ini", regdir);
		CHECK_INT(cfgwrite_registration(reg, 42, "console.test", "tok-REG",
		    "123e4567-e89b-12d3-a456-426614174000", err, sizeof err), 0, "registration.ini written");
		CHECK(stat(regdir, &st) == 0 && (st.st_mode & 0777) == 0700, "registration.ini: folder made 0700");
		CHECK(stat(reg, &st) == 0 && (st.st_mode & 0777) == 0600, "registration.ini: mode 0600");
		t = get_file(reg);
		CHECK(t[0] == '#' && strstr(t, "\nrelayId = 42\nregisteredTo = console.test\n"
		    "securityToken = tok-REG\nrelayProId = 123e4567-e89b-12d3-a456-426614174000\n") != NULL,
		    "registration.ini: a comment, then the four keys");
		CHECK_INT(cfgwrite_registration(reg, 43, "console2.test", "tok-2", NULL, err, sizeof err), 0,
		    "registration.ini rewritten");
		t = get_file(reg);
		CHECK(strstr(t, "relayId = 43\n") && strstr(t, "securityToken = tok-2\n") &&
		    !strstr(t, "tok-REG") && !strstr(t, "relayProId"),
		    "registration.ini: rewritten whole (no relayProId when none is given)");
		memset(big, 'x', 190);
		big[190] = 0;
		CHECK_INT(cfgwrite_registration(reg, 1, "c", big, NULL, err, sizeof err), ERR_RANGE,
		    "registration.ini: a token too long for an INI line refused");
		CHECK(strstr(err, big) == NULL, "registration.ini: the refused token is not in the error");
		CHECK_INT(cfgwrite_registration(reg, 1, "c", "a\nb", NULL, err, sizeof err), ERR_INVAL,
		    "registration.ini: a newline refused");
		CHECK_INT(cfgwrite_registration(reg, 1, "c", "", NULL, err, sizeof err), ERR_INVAL,
		    "registration.ini: an empty token refused");
		CHECK(strstr(get_file(reg), "tok-2") != NULL, "registration.ini: intact after refusals");
		put_file(path, "consoleAddress = console.test\nrelayId = 5\nsecurityToken = file\n", 0600);
		CHECK_INT(config_load(&cfg, path, cerr, sizeof cerr), 0, "config with registration.ini loads");
		CHECK(cfg.relay_id == 43 && strcmp(cfg.security_token, "tok-2") == 0 &&
		    strcmp(cfg.registered_to, "console2.test") == 0, "registration.ini over the config file");
		CHECK_STR(cfg.reg_file, reg, "reg_file is <privateFolder>/registration.ini");
		CHECK_INT(cfgwrite_save(&cfg, 9, "tok-9", where, sizeof where, err, sizeof err), 0,
		    "save: into the writable config file");
		CHECK(strcmp(where, path) == 0 && err[0] == 0 && strstr(get_file(path), "securityToken = tok-9\n"),
		    "save: where = the config file");
		cfg.file[0] = 0;
		CHECK_INT(cfgwrite_save(&cfg, 10, "tok-10", where, sizeof where, err, sizeof err), 0,
		    "save: environment only");
		CHECK(strcmp(where, reg) == 0 && strstr(err, "no config file") != NULL &&
		    strstr(get_file(reg), "securityToken = tok-10\n"), "save: environment only -> registration.ini, saying why");
		put_file(reg, "relayId = 1\ndeploymentToken = x\n", 0600);
		CHECK(config_load(&cfg, path, cerr, sizeof cerr) != 0 && strstr(cerr, "registration.ini:2: "
		    "deploymentToken: not a registration key") != NULL, "registration.ini: another key is a config error");
		config_wipe(&cfg);
		unlink(reg);
		rmdir(regdir);
	}

	unlink(path);
	rmdir(dir);
}

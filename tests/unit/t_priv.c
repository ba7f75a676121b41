/* t_priv.c — the `user` value syntax, the /etc/passwd and /etc/group parsers (good and
 * hostile tables, whole and cut at every length), and the mode-bit access check. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "priv.h"
#include "test.h"

static const char passwd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment:x:1:1::/:\n"
    "\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "+nisuser:x:7:7::/:\n"
    "broken:x:12:\n"                        /* too few fields */
    "badid:x:12a:12::/:\n"                  /* uid not a number */
    "neg:x:-5:5::/:\n"
    "big:x:4294967295:5::/:\n"              /* (uid_t)-1 */
    "lead:x:0100:5::/:\n"                   /* leading zero */
    "extra:x:5:5::/:/bin/sh:more\n"         /* eight fields */
    "relaypro:x:998:997:relaypro:/opt/relaypro:/usr/sbin/nologin\r\n"
    "relaypro:x:1:1:second entry ignored:/:\n"
    "relay:x:1001:1001::/:\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"; /* no final LF */

static const char group[] =
    "root:x:0:\n"
    "adm:x:4:syslog,relaypro\n"
    "relaypro:x:997:\n"
    "ssl-cert:x:110:postgres,relaypro,other\n"
    "decoy:x:111:relaypro2,xrelaypro,relayprox\n"
    "bad:x:abc:relaypro\n"                  /* skipped: gid not a number */
    "short:x:112\n"                         /* skipped: three fields */
    "dup:x:4:relaypro\n"                    /* gid 4 again: kept once */
    "# relaypro:x:113:relaypro\n"
    "last:x:114:relay,relaypro";

void
t_priv(void)
{
	static const struct { const char *in; int kind; uint32_t uid, gid; } specs[] = {
		{ "relaypro", PRIV_SPEC_NAME, 0, 0 }, { "_svc", PRIV_SPEC_NAME, 0, 0 },
		{ "a.b-c_9", PRIV_SPEC_NAME, 0, 0 }, { "root", PRIV_SPEC_ROOT, 0, 0 },
		{ "abcdefghijklmnopqrstuvwxyz012345", PRIV_SPEC_NAME, 0, 0 },   /* 32 */
		{ "65534:65534", PRIV_SPEC_IDS, 65534, 65534 }, { "1:0", PRIV_SPEC_IDS, 1, 0 },
		{ "4294967294:4294967294", PRIV_SPEC_IDS, 4294967294u, 4294967294u },
		{ "", ERR_INVAL, 0, 0 }, { "abcdefghijklmnopqrstuvwxyz0123456", ERR_INVAL, 0, 0 },
		{ "1234", ERR_INVAL, 0, 0 }, { "9user", ERR_INVAL, 0, 0 }, { "-user", ERR_INVAL, 0, 0 },
		{ "us er", ERR_INVAL, 0, 0 }, { "user$", ERR_INVAL, 0, 0 }, { "ü", ERR_INVAL, 0, 0 },
		{ "0:0", ERR_INVAL, 0, 0 }, { "0:1", ERR_INVAL, 0, 0 }, { ":1", ERR_INVAL, 0, 0 },
		{ "1:", ERR_INVAL, 0, 0 }, { "1", ERR_INVAL, 0, 0 }, { "1:2:3", ERR_INVAL, 0, 0 },
		{ "-1:1", ERR_INVAL, 0, 0 }, { "+1:1", ERR_INVAL, 0, 0 }, { "01:1", ERR_INVAL, 0, 0 },
		{ "4294967295:1", ERR_INVAL, 0, 0 }, { "1:4294967295", ERR_INVAL, 0, 0 },
		{ "99999999999:1", ERR_INVAL, 0, 0 }, { "1 :1", ERR_INVAL, 0, 0 },
		{ "name:1", ERR_INVAL, 0, 0 }, { "Root", PRIV_SPEC_NAME, 0, 0 },
	};
	static const struct { const char *name; int rc; uint32_t uid, gid; } finds[] = {
		{ "root", ERR_OK, 0, 0 }, { "daemon", ERR_OK, 1, 1 },
		{ "relaypro", ERR_OK, 998, 997 },       /* first entry wins; CRLF tolerated */
		{ "relay", ERR_OK, 1001, 1001 }, { "nobody", ERR_OK, 65534, 65534 },
		{ "broken", ERR_INVAL, 0, 0 }, { "badid", ERR_INVAL, 0, 0 }, { "neg", ERR_INVAL, 0, 0 },
		{ "big", ERR_INVAL, 0, 0 }, { "lead", ERR_INVAL, 0, 0 }, { "extra", ERR_INVAL, 0, 0 },
		{ "nisuser", ERR_NOTFOUND, 0, 0 }, { "+nisuser", ERR_NOTFOUND, 0, 0 },
		{ "# a comment", ERR_NOTFOUND, 0, 0 }, { "relaypr", ERR_NOTFOUND, 0, 0 },
		{ "relayprox", ERR_NOTFOUND, 0, 0 }, { "nosuch", ERR_NOTFOUND, 0, 0 },
	};
	struct priv_user u;
	uint32_t g[PRIV_GROUPS_MAX], uid, gid;
	const char *why;
	char name[96], path[96], dirp[80];
	size_t i, cut;
	int n, rc;

	for (i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		why = NULL;
		rc = priv_parse(specs[i].in, &u, &why);
		snprintf(name, sizeof name, "user = \"%s\"", specs[i].in);
		CHECK_INT(rc, specs[i].kind, name);
		if (rc < 0)
			CHECK(why != NULL && *why, name);
		if (rc == PRIV_SPEC_IDS)
			CHECK(u.uid == specs[i].uid && u.gid == specs[i].gid && !u.name[0], name);
		if (rc == PRIV_SPEC_NAME)
			CHECK_STR(u.name, specs[i].in, name);
	}

	for (i = 0; i < sizeof finds / sizeof finds[0]; i++) {
		uid = gid = 12345;
		rc = priv_passwd_find(passwd, sizeof passwd - 1, finds[i].name, &uid, &gid);
		snprintf(name, sizeof name, "passwd: %s", finds[i].name);
		CHECK_INT(rc, finds[i].rc, name);
		if (rc == ERR_OK)
			CHECK(uid == finds[i].uid && gid == finds[i].gid, name);
	}
	/* Cut at every length: never a read past len, and a cut id never parses as another. */
	for (cut = 0; cut < sizeof passwd; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, passwd, cut);
		rc = priv_passwd_find(copy, cut, "nobody", &uid, &gid);
		if (rc == ERR_OK && !(uid == 65534 && gid == 65534))
			CHECK(0, "passwd cut: nobody resolves to the true ids or not at all");
		free(copy);
	}
	CHECK_INT(priv_passwd_find("", 0, "root", &uid, &gid), ERR_NOTFOUND, "passwd: empty text");
	{
		char home[16];
		CHECK_INT(priv_passwd_home(passwd, sizeof passwd - 1, "relaypro", home, sizeof home),
		    ERR_OK, "passwd home: found");
		CHECK_STR(home, "/opt/relaypro", "passwd home: the sixth field");
		CHECK_INT(priv_passwd_home(passwd, sizeof passwd - 1, "relaypro", home, 13),
		    ERR_NOSPACE, "passwd home: too long for the buffer");
		CHECK_INT(priv_passwd_home(passwd, sizeof passwd - 1, "broken", home, sizeof home),
		    ERR_INVAL, "passwd home: a malformed line");
		CHECK_INT(priv_passwd_home(passwd, sizeof passwd - 1, "nosuch", home, sizeof home),
		    ERR_NOTFOUND, "passwd home: no such user");
	}
	CHECK_INT(priv_passwd_find("root:x:0:0::/:\0nobody:x:1:1::/:\n", 31, "nobody", &uid, &gid),
	    ERR_NOTFOUND, "passwd: NUL inside a line does not start a new one");

	n = priv_group_list(group, sizeof group - 1, "relaypro", 997, g, PRIV_GROUPS_MAX);
	CHECK_INT(n, 4, "group: relaypro is in adm, ssl-cert and last besides 997");
	if (n == 4)
		CHECK(g[0] == 997 && g[1] == 4 && g[2] == 110 && g[3] == 114,
		    "group: primary first, then in file order, gid 4 once");
	n = priv_group_list(group, sizeof group - 1, "relaypro", 997, g, 2);
	CHECK_INT(n, 2, "group: at most cap ids");
	n = priv_group_list(group, sizeof group - 1, "nobody", 65534, g, PRIV_GROUPS_MAX);
	CHECK(n == 1 && g[0] == 65534, "group: a user in no group keeps its primary only");
	n = priv_group_list(group, sizeof group - 1, "relay", 1001, g, PRIV_GROUPS_MAX);
	CHECK(n == 2 && g[1] == 114, "group: member names match whole, not by prefix");
	for (cut = 0; cut < sizeof group; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, group, cut);
		n = priv_group_list(copy, cut, "relaypro", 997, g, PRIV_GROUPS_MAX);
		if (n < 1 || n > 4)
			CHECK(0, "group cut: 1 to 4 groups at any length");
		free(copy);
	}

	/* Mode bits, as the target user would see them (the test runs as anyone). */
	snprintf(dirp, sizeof dirp, "/tmp/t_priv.%ld", (long)getpid());
	snprintf(path, sizeof path, "%s/f", dirp);
	if (mkdir(dirp, 0700) == 0) {
		FILE *f = fopen(path, "w");
		struct priv_user other = { "", 4242, 4242, 0, { 0 }, "" };
		struct priv_user me = { "", (uint32_t)geteuid(), (uint32_t)getegid(), 0, { 0 }, "" };
		if (f)
			fclose(f);
		chmod(path, 0600);
		CHECK(priv_can(path, &me, R_OK | W_OK), "access: owner reads and writes 0600");
		CHECK(!priv_can(path, &other, R_OK), "access: another user cannot read 0600");
		chmod(path, 0644);
		CHECK(!priv_can(path, &other, R_OK), "access: 0644 in a 0700 folder is out of reach");
		chmod(dirp, 0711);
		CHECK(priv_can(path, &other, R_OK), "access: 0644 in a 0711 folder is readable");
		CHECK(!priv_can(path, &other, W_OK), "access: 0644 is not writable by others");
		CHECK(!priv_can(dirp, &other, W_OK | X_OK), "access: 0711 folder not writable by others");
		other.ngroups = 1;
		other.groups[0] = (uint32_t)getegid();
		chmod(path, 0660);
		CHECK(priv_can(path, &other, W_OK), "access: a supplementary group's bits count");
		CHECK(!priv_can("/nonexistent/x", &me, R_OK), "access: a missing path is no");
		unlink(path);
		rmdir(dirp);
	} else {
		CHECK(0, "access: mkdir in /tmp");
	}
}

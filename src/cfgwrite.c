/*
 * cfgwrite.c — registration result into the INI file, atomically. See cfgwrite.h.
 *
 * Two passes over the lines of the old text: the first finds which of our keys exist at
 * top level and where missing ones go; the second copies every line, replacing values in
 * place and dropping deploymentToken. The new text is built in one buffer whose size is
 * bounded up front (old length + five lines of at most CFG_LINE_MAX).
 *
 * registration.ini is ours alone: it is written whole each time (a comment saying what it
 * is, then the keys), never merged.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgwrite.h"
#include "config.h"
#include "err.h"
#include "fileio.h"
#include "secret.h"

enum { K_RELAY_ID, K_REGISTERED_TO, K_SECURITY_TOKEN, K_RELAY_PRO_ID, K_DEPLOYMENT_TOKEN, NK };
static const char *const names[NK] = {
	"relayId", "registeredTo", "securityToken", "relayProId", "deploymentToken"
};
#define L_OTHER (-1)    /* blank, comment, not a key */
#define L_SECTION (-2)
#define L_KEY (-3)      /* a key that is not ours */

static int
say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* What line [s, e) is to inih; for one of our keys, *vs = where its value starts. */
static int
classify(const char *s, const char *e, size_t *vs)
{
	const char *p = s, *d, *ne;
	int k;

	while (p < e && isspace((unsigned char)*p))
		p++;
	if (p == e || *p == ';' || *p == '#')
		return L_OTHER;
	if (*p == '[')
		return L_SECTION;
	for (d = p; d < e && *d != '=' && *d != ':'; d++)
		;
	if (d == e)
		return L_OTHER;
	for (ne = d; ne > p && isspace((unsigned char)ne[-1]); ne--)
		;
	for (k = 0; k < NK; k++) {
		if (strlen(names[k]) == (size_t)(ne - p) && strncasecmp(p, names[k], (size_t)(ne - p)) == 0) {
			for (d++; d < e && isspace((unsigned char)*d); d++)
				;
			*vs = (size_t)(d - s);
			return k;
		}
	}
	return L_KEY;
}

/* A value inih gives back unchanged: no control bytes, no white space at either end. */
static int
value_ok(const char *v)
{
	size_t n = strlen(v), i;

	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return n == 0 || (!isspace((unsigned char)v[0]) && !isspace((unsigned char)v[n - 1]));
}

struct line {
	size_t s, e, next;   /* content [s, e), line ending [e, next) */
};

/* The line starting at p. */
static struct line
line_at(const char *t, size_t len, size_t p)
{
	struct line l = { p, p, p };
	const char *nl = memchr(t + p, '\n', len - p);

	l.next = nl ? (size_t)(nl - t) + 1 : len;
	l.e = nl ? (size_t)(nl - t) : len;
	if (nl && l.e > p && t[l.e - 1] == '\r')
		l.e--;
	return l;
}

static void
emit(char *out, size_t *o, const void *p, size_t n)
{
	memcpy(out + *o, p, n);
	*o += n;
}

/* Build the new text into out (cap bytes). ERR_OK, or ERR_RANGE for an over-long line. */
static int
rewrite(const char *in, size_t len, const char *const val[NK], int drop_deploy, char *out,
    size_t *outlen)
{
	int have[NK] = { 0 }, done[NK] = { 0 }, top = 1, k, added = 0;
	const char *eol = "\n";
	size_t p, ins = len, o = 0, vs, skip0;
	struct line l;

	/* Pass 1: which keys exist, where missing ones go, the file's line ending. */
	skip0 = len >= 3 && memcmp(in, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	for (p = 0; p < len && top; p = l.next) {
		l = line_at(in, len, p);
		if (p == 0 && l.next > l.e + 1)
			eol = "\r\n";
		k = classify(in + l.s + (p ? 0 : skip0), in + l.e, &vs);
		if (k == L_SECTION) {
			top = 0;
			if (ins == len)
				ins = p; /* no top-level key: before the first section */
		} else if (k != L_OTHER) {
			ins = l.next;
			if (k >= 0)
				have[k] = 1;
		}
	}
	for (k = 0; k < K_DEPLOYMENT_TOKEN; k++)
		if (val[k] && !have[k] && strlen(names[k]) + 3 + strlen(val[k]) > CFG_LINE_MAX)
			return ERR_RANGE;

	/* Pass 2: copy, replace, drop, insert. */
	top = 1;
	for (p = 0;; p = l.next) {
		if (p == ins && !added) {
			if (p > 0 && in[p - 1] != '\n')
				emit(out, &o, eol, strlen(eol)); /* the last line had no ending */
			for (k = 0; k < K_DEPLOYMENT_TOKEN; k++) {
				if (!val[k] || have[k])
					continue;
				emit(out, &o, names[k], strlen(names[k]));
				emit(out, &o, " = ", 3);
				emit(out, &o, val[k], strlen(val[k]));
				emit(out, &o, eol, strlen(eol));
			}
			added = 1;
		}
		if (p >= len)
			break;
		l = line_at(in, len, p);
		k = L_OTHER;
		if (top) {
			k = classify(in + l.s + (p ? 0 : skip0), in + l.e, &vs);
			vs += p ? 0 : skip0;
			top = k != L_SECTION;
		}
		if (k < 0 || (k != K_DEPLOYMENT_TOKEN && !val[k]) || (k == K_DEPLOYMENT_TOKEN && !drop_deploy)) {
			emit(out, &o, in + l.s, l.next - l.s);
			continue;
		}
		if (k == K_DEPLOYMENT_TOKEN || done[k])
			continue; /* removed; a duplicate (which config.c refuses) goes too */
		if (vs + strlen(val[k]) > CFG_LINE_MAX)
			return ERR_RANGE;
		emit(out, &o, in + l.s, vs);
		emit(out, &o, val[k], strlen(val[k]));
		emit(out, &o, in + l.e, l.next - l.e);
		done[k] = 1;
	}
	*outlen = o;
	return ERR_OK;
}

/* Replace the file at path with val[] applied (NULL: leave that key alone); drop the
 * deploymentToken line when drop_deploy. */
static int
update(const char *path, const char *const val[NK], int drop_deploy, char *err, size_t errlen)
{
	char real[PATH_MAX], why[PATH_MAX + 64], *in = NULL, *out = NULL;
	struct stat st;
	size_t len = 0, cap = 0, outlen = 0;
	ssize_t k = 0;
	int fd = -1, rc = ERR_IO, i;

	for (i = 0; i < K_DEPLOYMENT_TOKEN; i++)
		if (val[i] && !value_ok(val[i]))
			return say(err, errlen, ERR_INVAL, "%s: %s has control characters or "
			    "surrounding white space", path, names[i]);

	if (realpath(path, real) == NULL)
		return say(err, errlen, ERR_IO, "%s: %s", path, strerror(errno));
	fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = say(err, errlen, ERR_IO, "%s: cannot read: %s", real, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CFG_FILE_MAX) {
		rc = say(err, errlen, ERR_INVAL, "%s: not a regular file of at most 1 MiB", real);
		goto out;
	}
	if (access(real, W_OK) != 0) {
		rc = say(err, errlen, ERR_IO, "%s: not writable: %s", real, strerror(errno));
		goto out;
	}
	cap = (size_t)st.st_size + NK * (CFG_LINE_MAX + 3);
	in = malloc((size_t)st.st_size + 1);
	out = malloc(cap);
	if (in == NULL || out == NULL) {
		rc = say(err, errlen, ERR_IO, "%s: out of memory", real);
		goto out;
	}
	while (len < (size_t)st.st_size &&
	    ((k = read(fd, in + len, (size_t)st.st_size - len)) > 0 || (k < 0 && errno == EINTR)))
		len += k > 0 ? (size_t)k : 0;
	if (len != (size_t)st.st_size) {
		rc = say(err, errlen, ERR_IO, "%s: short read: %s", real, k < 0 ? strerror(errno) :
		    "the file changed while being read");
		goto out;
	}
	close(fd);
	fd = -1;
	if (rewrite(in, len, val, drop_deploy, out, &outlen) != ERR_OK) {
		rc = say(err, errlen, ERR_RANGE, "%s: a line would exceed %d characters", real,
		    CFG_LINE_MAX);
		goto out;
	}

	if (fileio_replace(real, out, outlen, &st, why, sizeof why) != ERR_OK)
		rc = say(err, errlen, ERR_IO, "%s: %s", real, why);
	else
		rc = ERR_OK;
out:
	if (fd >= 0)
		close(fd);
	if (in) {
		secret_wipe(in, len);
		free(in);
	}
	if (out) {
		secret_wipe(out, cap);
		free(out);
	}
	return rc;
}

/* see cfgwrite.h */
int
cfgwrite_update(const char *path, int64_t relay_id, const char *registered_to,
    const char *security_token, const char *relay_pro_id_or_null, char *err, size_t errlen)
{
	char num[24];
	const char *val[NK];

	if (!security_token[0] || relay_id < 0)
		return say(err, errlen, ERR_INVAL, "%s: no securityToken or relayId", path);
	snprintf(num, sizeof num, "%lld", (long long)relay_id);
	val[K_RELAY_ID] = num;
	val[K_REGISTERED_TO] = registered_to;
	val[K_SECURITY_TOKEN] = security_token;
	val[K_RELAY_PRO_ID] = relay_pro_id_or_null;
	val[K_DEPLOYMENT_TOKEN] = NULL;
	return update(path, val, 1, err, errlen);
}

/* see cfgwrite.h */
int
cfgwrite_set_relay_pro_id(const char *path, const char *relay_pro_id, char *err, size_t errlen)
{
	const char *val[NK] = { NULL };

	val[K_RELAY_PRO_ID] = relay_pro_id;
	return update(path, val, 0, err, errlen);
}

/* see cfgwrite.h */
int
cfgwrite_registration(const char *path, int64_t relay_id, const char *registered_to,
    const char *security_token, const char *relay_pro_id_or_null, char *err, size_t errlen)
{
	static const char head[] =
	    "# Written by relaypro when it registered with the console, because its config\n"
	    "# file could not take the result (none, or read-only). Read at every start and\n"
	    "# reload: above the config file, below RELAYPRO_* variables. Remove this file\n"
	    "# (with a deploymentToken set) to register again.\n";
	char dir[PATH_MAX], text[sizeof head + 4 * (CFG_LINE_MAX + 2)], why[PATH_MAX + 64];
	const char *val[4] = { NULL, registered_to, security_token, relay_pro_id_or_null };
	const char *slash = strrchr(path, '/');
	char num[24];
	size_t o = 0, dl = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
	int i, rc;

	if (!security_token[0] || relay_id < 0)
		return say(err, errlen, ERR_INVAL, "%s: no securityToken or relayId", path);
	snprintf(num, sizeof num, "%lld", (long long)relay_id);
	val[0] = num;
	memcpy(text, head, sizeof head - 1);
	o = sizeof head - 1;
	for (i = 0; i < 4; i++) {
		if (val[i] == NULL || (i == 3 && !val[i][0]))
			continue;
		if (!value_ok(val[i]))
			return say(err, errlen, ERR_INVAL, "%s: %s has control characters or surrounding "
			    "white space", path, names[i]);
		if (strlen(names[i]) + 3 + strlen(val[i]) > CFG_LINE_MAX) {
			secret_wipe(text, sizeof text);
			return say(err, errlen, ERR_RANGE, "%s: the %s line would exceed %d characters",
			    path, names[i], CFG_LINE_MAX);
		}
		o += (size_t)snprintf(text + o, sizeof text - o, "%s = %s\n", names[i], val[i]);
	}
	if (dl >= sizeof dir) {
		secret_wipe(text, sizeof text);
		return say(err, errlen, ERR_RANGE, "%s: path too long", path);
	}
	memcpy(dir, dl ? path : ".", dl ? dl : 1);
	dir[dl ? dl : 1] = 0;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		secret_wipe(text, sizeof text);
		return say(err, errlen, ERR_IO, "cannot create folder %s: %s", dir, strerror(errno));
	}
	rc = fileio_replace(path, text, o, NULL, why, sizeof why); /* mode 0600 */
	secret_wipe(text, sizeof text);
	if (rc != ERR_OK)
		return say(err, errlen, ERR_IO, "%s: %s", path, why);
	return ERR_OK;
}

/* see cfgwrite.h */
int
cfgwrite_save(const struct config *cfg, int64_t relay_id, const char *security_token,
    char *where, size_t wherelen, char *err, size_t errlen)
{
	char first[CFG_PATH + 256];
	int rc;

	first[0] = 0;
	if (errlen)
		err[0] = 0;
	if (cfg->file[0]) {
		if (cfgwrite_update(cfg->file, relay_id, cfg->console_address, security_token,
		    cfg->relay_pro_id, first, sizeof first) == ERR_OK) {
			snprintf(where, wherelen, "%s", cfg->file);
			return ERR_OK;
		}
	} else {
		snprintf(first, sizeof first, "no config file (environment only)");
	}
	rc = cfgwrite_registration(cfg->reg_file, relay_id, cfg->console_address, security_token,
	    cfg->relay_pro_id, err, errlen);
	if (rc == ERR_OK) {
		snprintf(where, wherelen, "%s", cfg->reg_file);
		snprintf(err, errlen, "%s", first); /* why the config file was not used */
		return ERR_OK;
	}
	{
		char second[CFG_PATH + 256];
		snprintf(second, sizeof second, "%s", err);
		snprintf(err, errlen, "%.600s; %.600s", first, second);
	}
	where[0] = 0;
	return rc;
}

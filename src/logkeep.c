/*
 * logkeep.c — housekeeping of rotated log files: pruning and compression. See logkeep.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deflate.h"
#include "err.h"
#include "logkeep.h"
#include "units.h"

#define STALE_TMP_S 600          /* a compression temporary untouched this long is left over */
#define TS_LEN 20                /* "20261123T100000.123Z" */

static int
digits(const char *s, int n, unsigned *v)
{
	*v = 0;
	while (n-- > 0) {
		if (*s < '0' || *s > '9')
			return 0;
		*v = *v * 10 + (unsigned)(*s++ - '0');
	}
	return 1;
}

enum { ROT_NONE, ROT_PLAIN, ROT_GZ, ROT_TMP };

/* Is name "<base>.<YYYYMMDDTHHMMSS.mmmZ>" (ROT_PLAIN), that + ".gz" (ROT_GZ) or a
 * compression temporary "….gz.tmp.<pid>" (ROT_TMP)? *ms gets the time in the name. */
static int
rotated_kind(const char *name, const char *base, size_t blen, int64_t *ms)
{
	const char *t = name + blen + 1;
	unsigned y, mo, d, h, mi, s, f;

	if (strncmp(name, base, blen) != 0 || name[blen] != '.' || strlen(t) < TS_LEN)
		return ROT_NONE;
	if (!digits(t, 4, &y) || !digits(t + 4, 2, &mo) || !digits(t + 6, 2, &d) || t[8] != 'T' ||
	    !digits(t + 9, 2, &h) || !digits(t + 11, 2, &mi) || !digits(t + 13, 2, &s) ||
	    t[15] != '.' || !digits(t + 16, 3, &f) || t[19] != 'Z' || mo < 1 || mo > 12 ||
	    d < 1 || d > 31)
		return ROT_NONE;
	*ms = ((units_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + f;
	t += TS_LEN;
	if (*t == 0)
		return ROT_PLAIN;
	if (strcmp(t, ".gz") == 0)
		return ROT_GZ;
	return strncmp(t, ".gz.tmp.", 8) == 0 ? ROT_TMP : ROT_NONE;
}

/* "dir/name" into out; 0, or -1 when it does not fit. */
static int
join(char *out, size_t cap, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	if (a + 1 + b + 1 > cap)
		return -1;
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
	return 0;
}

/* Delete rotated files older than max_age and beyond max_backups, oldest first; also
 * compression temporaries nobody has written for STALE_TMP_S. 0 or -1 (errno). */
static int
prune(const char *dir, const char *base, const struct logkeep_cfg *cfg, int64_t now)
{
	char oldest[256];
	size_t blen = strlen(base);
	int pass;

	for (pass = 0; pass < 10000; pass++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		struct stat st;
		int64_t ms, oldest_ms = INT64_MAX;
		int count = 0, kind, rc;

		if (!d)
			return -1;
		oldest[0] = 0;
		while ((e = readdir(d)) != NULL) {
			kind = rotated_kind(e->d_name, base, blen, &ms);
			if (kind == ROT_NONE)
				continue;
			if (kind == ROT_TMP) {
				if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    st.st_mtime < time(NULL) - STALE_TMP_S)
					(void)unlinkat(dirfd(d), e->d_name, 0);
				continue;
			}
			if (cfg->max_age_ms && ms < now - cfg->max_age_ms) {
				(void)unlinkat(dirfd(d), e->d_name, 0);
				continue;
			}
			count++;
			if (ms < oldest_ms || (ms == oldest_ms && strcmp(e->d_name, oldest) < 0)) {
				oldest_ms = ms;
				snprintf(oldest, sizeof oldest, "%s", e->d_name);
			}
		}
		rc = 0;
		if (cfg->max_backups && count > cfg->max_backups) {
			rc = 1;
			/* ENOENT: another worker's housekeeping deleted it first. */
			if (unlinkat(dirfd(d), oldest, 0) != 0 && errno != ENOENT)
				rc = -1;
		}
		closedir(d);
		if (rc <= 0)
			return rc;
	}
	return 0;
}

/* gzip every rotated file not yet compressed, oldest first; 0 or -1 (errno of the last
 * failure; the others are still tried). A file that grew while it was read (a late
 * write by another worker) is compressed again. */
static int
compress_all(const char *dir, const char *base)
{
	char name[256], src[PATH_MAX], dst[PATH_MAX];
	size_t blen = strlen(base);
	int64_t after = INT64_MIN;
	int rc = 0, err = 0, round, tries;

	for (round = 0; round < 10000; round++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		int64_t ms, best = INT64_MAX;

		if (!d)
			return -1;
		name[0] = 0;
		while ((e = readdir(d)) != NULL)
			if (rotated_kind(e->d_name, base, blen, &ms) == ROT_PLAIN && ms > after &&
			    ms < best) {
				best = ms;
				snprintf(name, sizeof name, "%s", e->d_name);
			}
		closedir(d);
		if (!name[0])
			break;
		after = best;
		if (join(src, sizeof src, dir, name) != 0 || strlen(src) + 4 > sizeof dst)
			continue;
		memcpy(dst, src, strlen(src));
		memcpy(dst + strlen(src), ".gz", 4);
		for (tries = 0; tries < 3; tries++) {
			struct stat a, b;
			if (stat(src, &a) != 0)
				break; /* gone: another worker's housekeeping took it */
			if (deflate_gzip_file(src, dst) != ERR_OK) {
				if (errno == ENOENT && stat(src, &a) != 0)
					break; /* another worker's housekeeping took it meanwhile */
				rc = -1;
				err = errno;
				break;
			}
			if (stat(src, &b) != 0 || (b.st_size == a.st_size &&
			    b.st_mtim.tv_sec == a.st_mtim.tv_sec && b.st_mtim.tv_nsec == a.st_mtim.tv_nsec)) {
				(void)unlink(src);
				break;
			}
		}
	}
	errno = err;
	return rc;
}

/* see logkeep.h */
int
logkeep_run(const char *p, const struct logkeep_cfg *cfg, int64_t now)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(p, '/'), *base = slash ? slash + 1 : p;
	size_t n = slash ? (size_t)(slash - p) : 0;
	int rc, err = 0;

	if (!slash)
		memcpy(dir, ".", 2);
	else if (n == 0)
		memcpy(dir, "/", 2);
	else {
		memcpy(dir, p, n);
		dir[n] = 0;
	}
	rc = prune(dir, base, cfg, now);
	if (rc != 0)
		err = errno;
	if (cfg->compress && compress_all(dir, base) != 0) {
		rc = -1;
		err = errno;
	}
	errno = err;
	return rc;
}

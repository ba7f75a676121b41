/*
 * fileio.c — whole writes, atomic replacement, exposed secret files. See fileio.h.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"

/* see fileio.h */
int
fileio_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return ERR_OK;
}

/* see fileio.h */
int
fileio_sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	int fd, rc;

	if (!slash)
		strcpy(dir, ".");
	else if (n == 0)
		strcpy(dir, "/");
	else if (n < sizeof dir) {
		memcpy(dir, path, n);
		dir[n] = 0;
	} else {
		errno = ENAMETOOLONG;
		return ERR_IO;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ERR_IO;
	rc = fsync(fd) == 0 ? ERR_OK : ERR_IO;
	close(fd);
	return rc;
}

/* see fileio.h */
int
fileio_sweep(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	size_t dl = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path), bl = strlen(base);
	struct dirent *e;
	DIR *d;
	int fd, removed = 0;

	if (dl >= sizeof dir || bl == 0)
		return 0;
	if (dl == 0) {
		dir[0] = '.';
		dir[1] = '\0';
	} else {
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	}
	d = opendir(dir);
	if (d == NULL)
		return 0;
	fd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		const char *s = e->d_name, *p;
		long pid = 0;

		if (strncmp(s, base, bl) != 0 || strncmp(s + bl, ".tmp.", 5) != 0)
			continue;
		for (p = s + bl + 5; *p >= '0' && *p <= '9' && pid < 100000000; p++)
			pid = pid * 10 + (*p - '0');
		if (*p != '\0' || p == s + bl + 5 || pid <= 0)
			continue;
		if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* ours, or a live writer's (or one we may not signal: leave it) */
		if (unlinkat(fd, s, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* see fileio.h */
int
fileio_replace(const char *path, const void *data, size_t len, const struct stat *like,
    char *why, size_t whylen)
{
	char tmp[PATH_MAX];
	int fd, e;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
		snprintf(why, whylen, "path too long");
		return ERR_RANGE;
	}
	unlink(tmp); /* a leftover of an earlier process that had this pid */
	(void)fileio_sweep(path); /* and those of writers killed before they renamed */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
		return ERR_IO;
	}
	if (like && fchown(fd, like->st_uid, like->st_gid) != 0) {
		/* only root may give a file away: it stays ours, as the original was */
	}
	if (fchmod(fd, like ? like->st_mode & 07777 : 0600) != 0 ||
	    fileio_write_all(fd, data, len) != ERR_OK || fsync(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(e));
		return ERR_IO;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		snprintf(why, whylen, "cannot replace the file: %s", strerror(e));
		return ERR_IO;
	}
	if (fileio_sync_dir(path) != ERR_OK) {
		snprintf(why, whylen, "replaced, but syncing its folder failed: %s", strerror(errno));
		return ERR_IO;
	}
	return ERR_OK;
}

/* see fileio.h */
int
fileio_exposed(const struct stat *st, char *why, size_t cap)
{
	mode_t m = st->st_mode;
	int group = st->st_gid != getegid() && (m & (S_IRGRP | S_IWGRP)) != 0;
	int others = (m & (S_IROTH | S_IWOTH)) != 0;
	int r = (others && (m & S_IROTH)) || (group && (m & S_IRGRP));
	int w = (others && (m & S_IWOTH)) || (group && (m & S_IWGRP));
	char who[48];

	if (!group && !others)
		return 0;
	if (group)
		snprintf(who, sizeof who, "group %lu%s", (unsigned long)st->st_gid,
		    others ? " and others" : "");
	else
		snprintf(who, sizeof who, "others");
	snprintf(why, cap, "%s%s%s by %s", r ? "readable" : "", r && w ? " and " : "",
	    w ? "writable" : "", who);
	return 1;
}

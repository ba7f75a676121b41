/*
 * spawn.c — this binary started again with its descriptors handed over. See spawn.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"

#define SPAWN_ENV_MAX 500

/* see spawn.h */
void
spawn_resolve(struct spawn_self *s, char **argv)
{
	char cand[PATH_MAX];
	const char *path = getenv("PATH"), *argv0 = argv[0] ? argv[0] : "";

	s->argv = argv;
	s->path[0] = 0;
	if (strchr(argv0, '/')) {
		if (realpath(argv0, s->path) == NULL)
			s->path[0] = 0;
		return;
	}
	while (path && *path) {
		size_t n = strcspn(path, ":");
		if (n && n + strlen(argv0) + 2 < sizeof cand) {
			snprintf(cand, sizeof cand, "%.*s/%s", (int)n, path, argv0);
			if (access(cand, X_OK) == 0 && realpath(cand, s->path) != NULL)
				return;
		}
		path += n + (path[n] == ':');
	}
	s->path[0] = 0;
}

/* The variables spawn_self sets: never passed on from this process's environment. */
static int
ours(const char *e)
{
	return strncmp(e, "LISTEN_", 7) == 0 || strncmp(e, "RELAYPRO_UPGRADE_READY_FD=", 26) == 0 ||
	    strncmp(e, "RELAYPRO_WORKER=", 16) == 0 || strncmp(e, "RELAYPRO_SHARED_FD=", 19) == 0;
}

/* see spawn.h */
pid_t
spawn_self(const struct spawn_self *s, const int *fds, const char *const *names, int n,
    int shared_fd, const char *extra, int ready_wfd, int *ready_fd)
{
	char nfd[32], npid[40], fdnames[SPAWN_FDS_MAX * 6 + 32], rfd[48], sfd[48], extra_env[64];
	char *envp[SPAWN_ENV_MAX + 8];
	extern char **environ;
	int pipefd[2], k, m = 0, o, total;
	pid_t pid;

	if (n < 0 || n > SPAWN_FDS_MAX || !s->path[0]) {
		errno = EINVAL;
		return -1;
	}
	pipefd[0] = -1;
	pipefd[1] = ready_wfd;
	if (ready_wfd < 0 && pipe2(pipefd, O_CLOEXEC) != 0)
		return -1;
	/* Everything the child needs is prepared here: after fork() in a process with threads
	 * only async-signal-safe calls are allowed (no malloc, no stdio). */
	o = snprintf(fdnames, sizeof fdnames, "LISTEN_FDNAMES=");
	for (k = 0; k < n; k++)
		o += snprintf(fdnames + o, sizeof fdnames - (size_t)o, "%s%s", k ? ":" : "", names[k]);
	snprintf(nfd, sizeof nfd, "LISTEN_FDS=%d", n);
	snprintf(rfd, sizeof rfd, "RELAYPRO_UPGRADE_READY_FD=%d", 3 + n);
	snprintf(sfd, sizeof sfd, "RELAYPRO_SHARED_FD=%d", 3 + n + 1);
	snprintf(extra_env, sizeof extra_env, "%s", extra ? extra : "");
	memcpy(npid, "LISTEN_PID=", 12);
	for (k = 0; environ[k] && m < SPAWN_ENV_MAX; k++)
		if (!ours(environ[k]))
			envp[m++] = environ[k];
	envp[m++] = nfd;
	envp[m++] = npid;
	envp[m++] = fdnames;
	envp[m++] = rfd;
	if (shared_fd >= 0)
		envp[m++] = sfd;
	if (extra)
		envp[m++] = extra_env;
	envp[m] = NULL;
	total = n + 1 + (shared_fd >= 0);
	pid = fork();
	if (pid < 0) {
		if (ready_wfd < 0) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return -1;
	}
	if (pid == 0) {
		/* The child: the handed descriptors are first copied above the range they go to
		 * (close-on-exec copies: they vanish at exec), then put at 3, 4, ... by dup2,
		 * which clears close-on-exec on exactly those. */
		int tmp[SPAWN_FDS_MAX + 2];
		long v = (long)getpid(), d = 1;
		char *q = npid + 11;
		sigset_t none;
		for (k = 0; k < n; k++)
			tmp[k] = fcntl(fds[k], F_DUPFD_CLOEXEC, 3 + total);
		tmp[n] = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 3 + total);
		if (shared_fd >= 0)
			tmp[n + 1] = fcntl(shared_fd, F_DUPFD_CLOEXEC, 3 + total);
		for (k = 0; k < total; k++)
			if (tmp[k] < 0 || dup2(tmp[k], 3 + k) < 0)
				_exit(127);
		while (v / d >= 10)
			d *= 10;
		for (; d > 0; d /= 10)
			*q++ = (char)('0' + (v / d) % 10);
		*q = 0;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(s->path, s->argv, envp);
		_exit(127);
	}
	if (ready_wfd < 0) {
		close(pipefd[1]);
		fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
		*ready_fd = pipefd[0];
	}
	return pid;
}

/* A descriptor number (or index) from the environment variable name, removed from it;
 * -1 if unset. */
static int
take_env_int(const char *name)
{
	const char *v = getenv(name);
	int n;

	if (v == NULL)
		return -1;
	n = atoi(v);
	unsetenv(name);
	return n;
}

/* see spawn.h */
void
spawn_child(struct spawn_child *c)
{
	c->ready_fd = take_env_int("RELAYPRO_UPGRADE_READY_FD");
	c->shared_fd = take_env_int("RELAYPRO_SHARED_FD");
	c->worker = take_env_int("RELAYPRO_WORKER");
	if (c->ready_fd <= 2 || fcntl(c->ready_fd, F_SETFD, FD_CLOEXEC) != 0)
		c->ready_fd = -1;
	if (c->shared_fd <= 2 || fcntl(c->shared_fd, F_SETFD, FD_CLOEXEC) != 0)
		c->shared_fd = -1;
}

/* see spawn.h */
void
spawn_report_ready(struct spawn_child *c)
{
	char msg[2] = { 'R', (char)(c->worker > 0 ? c->worker : 0) };

	if (c->ready_fd >= 0) {
		(void)!write(c->ready_fd, msg, 2);
		close(c->ready_fd);
		c->ready_fd = -1;
	}
}

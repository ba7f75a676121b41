/*
 * upgrade.c — SIGUSR2: the new binary started, watched, handed over to or given up on.
 * See upgrade.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "server.h"
#include "upgrade.h"

/* see upgrade.h */
void
upgrade_init(struct upgrade *u, void (*ready)(void *ctx), void *ctx)
{
	u->pid = 0;
	u->fd = -1;
	u->deadline = 0;
	u->ready = ready;
	u->ctx = ctx;
}

static void
end(struct upgrade *u, const char *event, const char *why, int kill_child)
{
	struct log_rec r;

	if (log_begin(&r, kill_child ? LOG_ERROR : LOG_INFO, event)) {
		log_int(&r, "new_pid", u->pid);
		if (why)
			log_str(&r, "error", why);
		log_end(&r);
	}
	if (kill_child && u->pid > 0)
		kill(u->pid, SIGTERM); /* by PID: the process we started */
	if (u->fd >= 0) {
		server_unwatch(u->fd);
		close(u->fd);
		u->fd = -1;
	}
	u->pid = 0;
}

/* The new binary wrote to its readiness pipe (or closed it by exiting). */
static void
readable(void *arg)
{
	struct upgrade *u = arg;
	char b, msg[64];
	ssize_t n = read(u->fd, &b, 1); /* 'R' (and the index byte, never read: we are done) */
	pid_t child = u->pid;

	if (n == 1 && b == 'R') {
		end(u, "upgrade.ready", NULL, 0);
		snprintf(msg, sizeof msg, "MAINPID=%ld", (long)child);
		notify_send(msg); /* systemd: the new process is the service now */
		u->ready(u->ctx);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	end(u, "upgrade.fail", "the new binary exited before it was ready; still serving", 1);
}

/* see upgrade.h */
void
upgrade_tick(struct upgrade *u, int64_t now)
{
	if (u->fd >= 0 && now >= u->deadline)
		end(u, "upgrade.fail", "the new binary was not ready within 10 s; still serving", 1);
}

/* see upgrade.h */
void
upgrade_start(struct upgrade *u, const struct spawn_self *self, const int *fds,
    const char *const *names, int n, int64_t now)
{
	struct log_rec r;
	pid_t pid;
	int fd;

	if (u->fd >= 0)
		return; /* one at a time */
	if (!self->path[0]) {
		log_msg(LOG_ERROR, "upgrade.fail", "the binary's path could not be resolved at start");
		return;
	}
	pid = spawn_self(self, fds, names, n, -1, NULL, -1, &fd);
	if (pid < 0) {
		log_msg(LOG_ERROR, "upgrade.fail", strerror(errno));
		return;
	}
	u->fd = fd;
	u->pid = pid;
	u->deadline = now + UPGRADE_READY_MS;
	server_watch(u->fd, readable, u);
	if (log_begin(&r, LOG_INFO, "upgrade.start")) {
		log_str(&r, "binary", self->path);
		log_int(&r, "new_pid", pid);
		log_end(&r);
	}
}

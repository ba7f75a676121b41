/*
 * workers.c — the supervisor: sockets per worker, starts, restarts, stop, upgrade. See
 * workers.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "shm.h"
#include "workers.h"

#define WORKERS_KILL_MS 5000  /* after shutdownTimeout, workers still there are killed */

/* see workers.h */
int
workers_count(const struct config *cfg)
{
	long n = cfg->workers ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

/* see workers.h */
int
workers_listen(struct workers *ws, const struct config *cfg, int n, char *err, size_t errlen)
{
	int inherited = listen_inherited_sets(), i, rc;

	memset(ws, 0, sizeof *ws);
	memset(ws->sets, 0xff, sizeof ws->sets); /* -1 */
	ws->nsets = inherited > 0 ? (inherited < WORKERS_MAX ? inherited : WORKERS_MAX) : n;
	ws->n = n > ws->nsets ? n : ws->nsets;
	for (i = 0; i < ws->nsets; i++)
		if ((rc = listen_bind_set(cfg, i, 1, ws->sets[i], err, errlen)) != ERR_OK)
			return rc;
	if (ws->n != n) {
		struct log_rec r;
		if (log_begin(&r, LOG_WARN, "workers.kept")) {
			log_int(&r, "workers", ws->n);
			log_int(&r, "configured", n);
			log_str(&r, "msg", "as many workers as socket sets were handed over; "
			    "a change of workers takes a restart");
			log_end(&r);
		}
	}
	return ERR_OK;
}

/* Set `set`'s sockets and their names (for spawn_self), appended at fds + n. */
static int
set_of(const struct workers *ws, int set, int *fds, const char **names, int n)
{
	int k;

	for (k = 0; k < LISTEN_MAX; k++) {
		if (ws->sets[set][k] >= 0) {
			fds[n] = ws->sets[set][k];
			names[n++] = listen_kind_name(k);
		}
	}
	return n;
}

/* Close the supervisor's copies of every socket (a stop, or once handed over). */
static void
close_sets(struct workers *ws)
{
	int i, k;

	for (i = 0; i < ws->nsets; i++) {
		for (k = 0; k < LISTEN_MAX; k++) {
			if (ws->sets[i][k] >= 0) {
				close(ws->sets[i][k]);
				ws->sets[i][k] = -1;
			}
		}
	}
}

static void
signal_all(struct workers *ws, int sig)
{
	int i;

	for (i = 0; i < ws->n; i++)
		if (ws->w[i].pid > 0)
			kill(ws->w[i].pid, sig);
}

/* The workers' readiness pipe: 'R' and the index of each worker that serves. */
static void
on_ready(void *arg)
{
	struct workers *ws = arg;
	unsigned char b[128]; /* reports are 2 bytes, written whole: never split */
	ssize_t n, k;

	while ((n = read(ws->ready_pipe[0], b, sizeof b)) >= 2)
		for (k = 0; k + 1 < n; k += 2)
			if (b[k] == 'R' && b[k + 1] < ws->n && ws->w[b[k + 1]].pid > 0)
				ws->w[b[k + 1]].ready = 1;
}

static void
start(struct workers *ws, int i)
{
	struct worker *w = &ws->w[i];
	const char *names[LISTEN_MAX];
	int fds[LISTEN_MAX], n = set_of(ws, i % ws->nsets, fds, names, 0);
	char extra[32];
	struct log_rec r;

	snprintf(extra, sizeof extra, "RELAYPRO_WORKER=%d", i);
	w->ready = 0;
	w->pid = spawn_self(&ws->p->self, fds, names, n, shm_fd(), extra, ws->ready_pipe[1], NULL);
	w->started = ws->p->rl.now_ms;
	if (w->pid <= 0) {
		w->pid = 0;
		w->restart_at = w->started + WORKERS_RESTART_MS;
	}
	if (log_begin(&r, w->pid > 0 ? LOG_INFO : LOG_ERROR, "worker.start")) {
		log_int(&r, "index", i);
		log_int(&r, "pid", w->pid);
		if (w->pid == 0)
			log_str(&r, "error", strerror(errno));
		log_end(&r);
	}
}

/* SIGCHLD: a worker that exited is logged and its shared state cleared; it is started
 * again on a tick (at most once a second), unless the supervisor is stopping. Other
 * children (a new binary that failed) are reaped too. */
static void
on_child(void *ctx)
{
	struct workers *ws = ctx;
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < ws->n; i++) {
			struct worker *w = &ws->w[i];
			struct log_rec r;
			if (w->pid != pid)
				continue;
			w->pid = 0;
			w->ready = 0;
			metrics_forget(i);   /* its open connections are gone: gauges to 0 */
			shm_rec_forget(i);   /* and what it published about them */
			w->restart_at = w->started + WORKERS_RESTART_MS;
			if (!ws->stopping && log_begin(&r, LOG_WARN, "worker.exit")) {
				log_int(&r, "index", i);
				log_int(&r, "pid", pid);
				log_int(&r, "status", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
				log_str(&r, "msg", "restarting it");
				log_end(&r);
			}
		}
	}
}

/* Stop (SIGTERM, or handed over to a new supervisor): no more restarts; sig tells the
 * workers which (SIGTERM: stop; SIGUSR2: hand over). */
static void
stop_workers(struct workers *ws, int sig)
{
	ws->stopping = 1;
	ws->deadline = ws->p->rl.now_ms + (int64_t)ws->p->cfg.shutdown_timeout * 1000 +
	    WORKERS_KILL_MS;
	close_sets(ws);
	signal_all(ws, sig);
}

/* SIGTERM: the loop drains after this (and waits for the workers: busy). */
static void
on_stop(void *ctx)
{
	stop_workers(ctx, SIGTERM);
}

/* The new supervisor of an upgrade serves: the old workers hand over and drain. */
static void
on_handed_over(void *ctx)
{
	struct workers *ws = ctx;

	stop_workers(ws, SIGUSR2);
	server_handover("upgrade");
}

/* SIGUSR2: start the new binary with every set (names repeated once per set). */
static void
on_upgrade(void *ctx)
{
	struct workers *ws = ctx;
	const char *names[WORKERS_MAX * LISTEN_MAX];
	int fds[WORKERS_MAX * LISTEN_MAX], n = 0, i;

	for (i = 0; i < ws->nsets; i++)
		n = set_of(ws, i, fds, names, n);
	upgrade_start(&ws->p->up, &ws->p->self, fds, names, n, ws->p->rl.now_ms);
}

/* SIGHUP, and a registration the supervisor saved: the workers read the file again. */
static void
on_reload(void *ctx)
{
	signal_all(ctx, SIGHUP);
}

/* Every tick: restarts that are due, the upgrade's deadline, readiness, the stop's end. */
static void
on_tick(void *ctx)
{
	struct workers *ws = ctx;
	int64_t now = ws->p->rl.now_ms;
	int i, all = 1;

	upgrade_tick(&ws->p->up, now);
	for (i = 0; i < ws->n; i++) {
		if (!ws->stopping && ws->w[i].pid == 0 && now >= ws->w[i].restart_at)
			start(ws, i);
		all &= ws->w[i].pid > 0 && ws->w[i].ready;
	}
	if (!ws->reported && all && !ws->stopping) {
		char ready[96];
		ws->reported = 1;
		snprintf(ready, sizeof ready, "READY=1\nSTATUS=%d workers\nMAINPID=%ld", ws->n,
		    (long)getpid());
		notify_send(ready);
		spawn_report_ready(&ws->p->child);
	}
	if (ws->stopping && now >= ws->deadline)
		signal_all(ws, SIGKILL);
}

/* Once stopping: the loop runs while a worker is left (until the deadline's SIGKILL). */
static int
busy(void *ctx)
{
	struct workers *ws = ctx;
	int i, alive = 0;

	for (i = 0; i < ws->n; i++)
		alive += ws->w[i].pid > 0;
	return alive && ws->p->rl.now_ms < ws->deadline + WORKERS_KILL_MS;
}

/* see workers.h */
int
workers_run(struct workers *ws, struct proc *p)
{
	struct server_hooks h = { ws, on_reload, on_upgrade, on_child, on_stop, on_tick, busy };
	int i;

	ws->p = p;
	p->registered = on_reload; /* the workers read the saved token from the file */
	p->registered_ctx = ws;
	upgrade_init(&p->up, on_handed_over, ws);
	if (pipe2(ws->ready_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    server_watch(ws->ready_pipe[0], on_ready, ws) != ERR_OK) {
		log_msg(LOG_ERROR, "start.fail", strerror(errno));
		return 1;
	}
	/* a relayProId generated at this start (and perhaps not saved) is the same in all */
	setenv("RELAYPRO_RELAY_PRO_ID", p->cfg.relay_pro_id, 1);
	p->rl.now_ms = loop_now_ms();
	for (i = 0; i < ws->n; i++)
		start(ws, i);
	return server_run(&p->rl, &h);
}

/*
 * spawn.h — starting this binary again with descriptors handed over: the new binary of an
 * upgrade (docs/design.md) and a supervisor's workers.
 *
 * Owns: where this binary lives (resolved once at start from argv[0] and $PATH, not
 * /proc/self/exe: after a package upgrade the file there is the new binary), the child's
 * descriptors and environment, and the child's side of the readiness pipe. Must not touch:
 * what the child is for (upgrade.c, workers.c), the listeners themselves (listen.c).
 *
 * Descriptors: the child gets exactly the listening sockets it is handed, at 3, 4, ...
 * (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID: systemd's convention), the write end of a
 * readiness pipe right after them (RELAYPRO_UPGRADE_READY_FD) and, for a worker, the
 * shared region after that (RELAYPRO_SHARED_FD). Every other descriptor of the parent is
 * close-on-exec, and so are the copies made to move the handed ones into place: nothing
 * else crosses the exec. The child makes the pipe and the region close-on-exec at once
 * (spawn_child: a new supervisor starts workers before it is ready, and they must not hold
 * its pipe), closes the pipe once it has reported ready (spawn_report_ready), the region
 * once mapped (shm_attach), and the handed sockets it does not use
 * (listen_close_unadopted).
 */
#ifndef RELAYPRO_SPAWN_H
#define RELAYPRO_SPAWN_H

#include <limits.h>
#include <sys/types.h>

struct spawn_self {
	char path[PATH_MAX];   /* "" when argv[0] could not be resolved */
	char **argv;           /* the arguments this process was started with */
};

/* Resolve this binary's path from argv[0] (with $PATH when it has no slash). */
void spawn_resolve(struct spawn_self *s, char **argv);

/* Start s->path with s->argv: fds[0..n) at 3 .. 3+n-1 named names[], the write end of a
 * readiness pipe after them, shared_fd (>= 0) after that, and extra ("NAME=value", or
 * NULL) added to the environment. The pipe is ready_wfd when >= 0 (one pipe for many
 * children: a supervisor's workers), else a new one whose read end (non-blocking,
 * close-on-exec) is returned in *ready_fd. Returns the child's pid, or -1 with errno.
 * n <= SPAWN_FDS_MAX. */
#define SPAWN_FDS_MAX 192
pid_t spawn_self(const struct spawn_self *s, const int *fds, const char *const *names, int n,
    int shared_fd, const char *extra, int ready_wfd, int *ready_fd);

/* What the process that started this one handed over: -1 each when nothing was. */
struct spawn_child {
	int ready_fd;   /* the readiness pipe's write end (RELAYPRO_UPGRADE_READY_FD) */
	int shared_fd;  /* the shared region (RELAYPRO_SHARED_FD) */
	int worker;     /* this process is worker N (RELAYPRO_WORKER) */
};

/* At start, before anything is started from this process: read what was handed over,
 * remove the variables from the environment and make the descriptors close-on-exec, so
 * that no process this one starts (a supervisor's workers) holds them. */
void spawn_child(struct spawn_child *c);

/* Once serving: report ready to the process that started this one and close the pipe.
 * The report is two bytes, 'R' and the worker index (0 when not a worker), written at
 * once: on a pipe shared by many children the reports never mix. */
void spawn_report_ready(struct spawn_child *c);

#endif

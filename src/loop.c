/*
 * loop.c — self-pipe signals and the monotonic clock. See loop.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "loop.h"

static int sig_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	/* Non-blocking: if the pipe is full a wake-up is already pending. */
	(void)!write(sig_pipe[1], &b, 1);
	errno = saved;
}

/* see loop.h */
int
loop_signals_init(void)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR2, SIGCHLD };
	struct sigaction sa;
	size_t i;

	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return ERR_IO;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			return ERR_IO;
	return ERR_OK;
}

/* see loop.h */
int
loop_signal_fd(void)
{
	return sig_pipe[0];
}

/* see loop.h */
unsigned
loop_take_signals(void)
{
	unsigned char buf[64];
	unsigned bits = 0;
	ssize_t n, i;

	while ((n = read(sig_pipe[0], buf, sizeof buf)) > 0) {
		for (i = 0; i < n; i++) {
			switch (buf[i]) {
			case SIGHUP: bits |= LOOP_SIG_HUP; break;
			case SIGTERM: case SIGINT: bits |= LOOP_SIG_TERM; break;
			case SIGUSR2: bits |= LOOP_SIG_USR2; break;
			case SIGCHLD: bits |= LOOP_SIG_CHLD; break;
			}
		}
	}
	return bits;
}

/* see loop.h */
int64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

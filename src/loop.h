/*
 * loop.h — the process's event loop plumbing: signals through a self-pipe, a monotonic
 * clock, and (in the relay) the poll() set.
 *
 * Signal handlers only write the signal number into a non-blocking pipe; the loop polls
 * the pipe's read end and handles the signal in normal context. SIGPIPE is ignored so a
 * peer that went away shows up as EPIPE on the write, for that connection only.
 */
#ifndef RELAYPRO_LOOP_H
#define RELAYPRO_LOOP_H

#include <stdint.h>

enum {
	LOOP_SIG_HUP = 1 << 0,
	LOOP_SIG_TERM = 1 << 1, /* SIGTERM or SIGINT */
	LOOP_SIG_USR2 = 1 << 2,
	LOOP_SIG_CHLD = 1 << 3
};

/* Create the self-pipe and install the handlers. ERR_IO on failure. */
int loop_signals_init(void);

/* The pipe's read end, to poll for POLLIN. */
int loop_signal_fd(void);

/* Drain the pipe; returns the LOOP_SIG_* bits of the signals received since last call. */
unsigned loop_take_signals(void);

/* Milliseconds from an arbitrary start, never going backwards (CLOCK_MONOTONIC). */
int64_t loop_now_ms(void);

#endif

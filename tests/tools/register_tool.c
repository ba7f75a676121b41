/*
 * register_tool.c — drives register.c (and cfgwrite.c) the way the relay will, for
 * tests/integration/test_register.py, until the relay itself wires registration in.
 *
 *   register_tool CONFIG [--backoff BASE_MS CAP_MS] [--timeout S] [--inline-ca FILE]
 *                 [--write] [--stop-on-signal]
 *
 * Loads CONFIG with config_load (so the environment applies), starts register_start()
 * and waits on a pipe that done() writes from the registration thread. Logs (JSON lines)
 * go to standard error; standard output gets one line per result, never a token:
 *   registered relayId=N token_sha256=<first 16 hex digits of SHA-256(token)>
 *   written | write failed: <error>          (--write: cfgwrite_update on CONFIG)
 *   reloaded relayId=N token_sha256=.. deploymentToken=set|empty   (after --write)
 *   stop_at_ms=N                             (--stop-on-signal: SIGUSR1 came, register_stop
 *                                             returned at N, milliseconds of CLOCK_REALTIME)
 *   stopped                                  (... and done was not called within 1.5 s)
 * --inline-ca puts FILE's text into consoleCACert as an inline PEM would arrive.
 * Exit: 0 registered (or stopped), 2 bad config or usage, 3 timed out (default 60 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#include "cfgwrite.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "rand.h"
#include "register.h"
#include "secret.h"

static struct config cfg;
static int pipefd[2];
static int sigfd[2];           /* --stop-on-signal: SIGUSR1's handler writes a byte here */

static void
on_usr1(int sig)
{
	char b = 1;

	(void)sig;
	if (write(sigfd[1], &b, 1) < 0)
		_exit(4);
}

/* --stop-on-signal: wait (up to timeout_s) for SIGUSR1, stop the registration, and say
 * when; then done must not come within 1.5 s. The test sends the signal once the console
 * has seen the attempts it wants, so what happens before the stop is counted, not timed. */
static int
stop_on_signal(long timeout_s)
{
	struct pollfd p[2];
	struct timespec ts;

	p[0].fd = pipefd[0];
	p[0].events = POLLIN;
	p[1].fd = sigfd[0];
	p[1].events = POLLIN;
	int64_t end = loop_now_ms() + timeout_s * 1000, left;
	int n;

	do { /* the signal itself interrupts poll (EINTR) before its byte is seen */
		left = end - loop_now_ms();
		n = left > 0 ? poll(p, 2, (int)left) : 0;
	} while (n < 0 && errno == EINTR);
	if (n <= 0 || !(p[1].revents & POLLIN) || (p[0].revents & POLLIN)) {
		printf("done called or no signal before register_stop\n");
		return 1;
	}
	register_stop();
	clock_gettime(CLOCK_REALTIME, &ts);
	printf("stop_at_ms=%lld\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	fflush(stdout);
	if (poll(p, 1, 1500) == 0) {
		printf("stopped\n");
		return 0;
	}
	printf("done called after register_stop\n");
	return 1;
}

struct result {
	int64_t relay_id;
	char token[REG_TOKEN_MAX + 1];
};

/* Runs on the registration thread: hand the result to the main thread. */
static void
done(void *user, int64_t relay_id, const char *token)
{
	static struct result r;

	(void)user;
	r.relay_id = relay_id;
	snprintf(r.token, sizeof r.token, "%s", token);
	if (write(pipefd[1], &r, sizeof r) != (ssize_t)sizeof r)
		_exit(4);
	secret_wipe(&r, sizeof r);
}

static void
sha_prefix(const char *token, char out[17])
{
	br_sha256_context c;
	unsigned char h[32];
	int i;

	br_sha256_init(&c);
	br_sha256_update(&c, token, strlen(token));
	br_sha256_out(&c, h);
	for (i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

int
main(int argc, char **argv)
{
	char err[2048], sha[17];
	struct result r;
	struct pollfd pfd;
	long timeout_s = 60;
	int i, write_back = 0, stop_signal = 0;
	size_t got = 0;
	ssize_t k;
	int64_t end;

	if (argc < 2) {
		fprintf(stderr, "usage: register_tool CONFIG [options]\n");
		return 2;
	}
	if (rand_init() != ERR_OK || config_load(&cfg, argv[1], err, sizeof err) != ERR_OK) {
		fprintf(stderr, "register_tool: %s\n", err);
		return 2;
	}
	log_use_fd(2);
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--backoff") == 0 && i + 2 < argc) {
			register_set_backoff((uint32_t)atol(argv[i + 1]), (uint32_t)atol(argv[i + 2]));
			i += 2;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			timeout_s = atol(argv[++i]);
		} else if (strcmp(argv[i], "--stop-on-signal") == 0) {
			stop_signal = 1;
		} else if (strcmp(argv[i], "--write") == 0) {
			write_back = 1;
		} else if (strcmp(argv[i], "--inline-ca") == 0 && i + 1 < argc) {
			int fd = open(argv[++i], O_RDONLY);
			ssize_t n = fd < 0 ? -1 : read(fd, cfg.console_ca_cert, sizeof cfg.console_ca_cert - 1);
			if (n <= 0) {
				fprintf(stderr, "register_tool: cannot read %s\n", argv[i]);
				return 2;
			}
			cfg.console_ca_cert[n] = 0;
			close(fd);
		} else {
			fprintf(stderr, "register_tool: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (stop_signal && (pipe(sigfd) != 0 || signal(SIGUSR1, on_usr1) == SIG_ERR)) {
		fprintf(stderr, "register_tool: cannot wait for SIGUSR1\n");
		return 2;
	}
	if (pipe(pipefd) != 0 || register_start(&cfg, done, NULL) != ERR_OK) {
		fprintf(stderr, "register_tool: cannot start\n");
		return 2;
	}
	pfd.fd = pipefd[0];
	pfd.events = POLLIN;
	if (stop_signal)
		return stop_on_signal(timeout_s);
	end = loop_now_ms() + timeout_s * 1000;
	while (got < sizeof r) {
		int64_t left = end - loop_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			printf("timed out\n");
			return 3;
		}
		k = read(pipefd[0], (char *)&r + got, sizeof r - got);
		if (k <= 0)
			return 4;
		got += (size_t)k;
	}
	sha_prefix(r.token, sha);
	printf("registered relayId=%lld token_sha256=%s\n", (long long)r.relay_id, sha);
	if (write_back) {
		if (cfgwrite_update(argv[1], r.relay_id, cfg.console_address, r.token,
		    cfg.relay_pro_id[0] ? cfg.relay_pro_id : NULL, err, sizeof err) != ERR_OK) {
			printf("write failed: %s\n", err);
		} else {
			printf("written\n");
			if (config_load(&cfg, argv[1], err, sizeof err) != ERR_OK) {
				printf("reload failed: %s\n", err);
			} else {
				sha_prefix(cfg.security_token, sha);
				printf("reloaded relayId=%lld token_sha256=%s deploymentToken=%s\n",
				    (long long)cfg.relay_id, sha, cfg.deployment_token[0] ? "set" : "empty");
			}
		}
	}
	secret_wipe(&r, sizeof r);
	config_wipe(&cfg);
	return 0;
}

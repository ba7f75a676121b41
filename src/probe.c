/*
 * probe.c — `relaypro health`: the image's own health check. See probe.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "loop.h"
#include "net.h"
#include "probe.h"

/* see probe.h */
int
probe_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int n;

	do {
		left = deadline - loop_now_ms();
		if (left <= 0)
			return 0;
		n = poll(&p, 1, (int)left);
	} while (n < 0 && errno == EINTR);
	return n > 0;
}

/* see probe.h */
int
probe_connect(const struct net_addr *a, int64_t deadline, char *why, size_t cap)
{
	int fd = net_connect_start(a), e = 0;

	if (fd < 0) {
		snprintf(why, cap, "connect: %s", strerror(errno));
		return -1;
	}
	if (!probe_wait(fd, POLLOUT, deadline) || (e = net_connect_result(fd)) != 0) {
		snprintf(why, cap, "connect: %s", strerror(e ? e : ETIMEDOUT));
		close(fd);
		return -1;
	}
	return fd;
}

/* see probe.h */
int
probe_admin_addr(const char *cli, const char *cmd, struct net_addr *a)
{
	static struct config c; /* large: kept off the stack */
	char err[CFG_PATH + 512];

	if (config_load(&c, config_pick_file(cli), err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return 2;
	}
	config_wipe(&c);
	if (!c.admin_listen[0] || net_parse_listen(c.admin_listen, a) != ERR_OK) {
		fprintf(stderr, "relaypro %s: no admin listener ([admin] listen, RELAYPRO_ADMIN_LISTEN)\n",
		    cmd);
		return 2;
	}
	if (a->ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&a->ss;
		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&a->ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			s6->sin6_addr = in6addr_loopback;
	}
	return 0;
}

/* One GET on a; the answer's first line (up to cap - 1 bytes) and body start into out.
 * Returns the status code, or 0 with out holding why. */
static int
get(const struct net_addr *a, const char *path, char *out, size_t cap)
{
	char req[128], buf[1024];
	int64_t deadline = loop_now_ms() + PROBE_TIMEOUT_MS;
	size_t len = 0, sent = 0, reqlen;
	int fd, status = 0;
	ssize_t n;
	char *eol;

	reqlen = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: relaypro\r\n"
	    "User-Agent: relaypro-health\r\nConnection: close\r\n\r\n", path);
	if ((fd = probe_connect(a, deadline, out, cap)) < 0)
		return 0;
	while (sent < reqlen) {
		if (!probe_wait(fd, POLLOUT, deadline) ||
		    (n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL)) <= 0) {
			snprintf(out, cap, "send: %s", strerror(errno ? errno : ETIMEDOUT));
			close(fd);
			return 0;
		}
		sent += (size_t)n;
	}
	/* The status line and a little of the body (the reason of a 503) are enough. */
	while (len < sizeof buf - 1 && probe_wait(fd, POLLIN, deadline)) {
		n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	if (len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0 && buf[8] == ' ' &&
	    buf[9] >= '1' && buf[9] <= '5' && buf[10] >= '0' && buf[10] <= '9' &&
	    buf[11] >= '0' && buf[11] <= '9')
		status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (status == 0) {
		snprintf(out, cap, "%s", len ? "not an HTTP answer" : "no answer");
		return 0;
	}
	eol = strstr(buf, "\r\n\r\n");
	snprintf(out, cap, "%d %.200s", status, eol ? eol + 4 : "");
	if ((eol = strchr(out, '\n')) != NULL)
		*eol = 0;
	return status;
}

/* see probe.h */
const char *
probe_command(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) { /* past -c FILE */
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
			i++;
		else if (argv[i][0] != '-')
			return argv[i];
	}
	return NULL;
}

/* see probe.h */
int
probe_asks_usage(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "--version") == 0)
			return 1;
	return 0;
}

/* see probe.h */
int
probe_main(int argc, char **argv)
{
	char why[256];
	const char *cli = NULL, *cmd = NULL;
	struct net_addr a;
	int i, ready = 0;

	cmd = probe_command(argc, argv);
	if (cmd == NULL || strcmp(cmd, "health") != 0 || probe_asks_usage(argc, argv))
		return PROBE_NOT_MINE;
	for (i = 1; i < argc; i++) {
		if (argv[i] == cmd)
			continue;
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			cli = argv[++i];
		} else if (strcmp(argv[i], "--ready") == 0) {
			ready = 1;
		} else {
			fprintf(stderr, "relaypro health: unexpected argument %s (relaypro health --help)\n",
			    argv[i]);
			return 2;
		}
	}
	if ((i = probe_admin_addr(cli, "health", &a)) != 0)
		return i;
	if (get(&a, ready ? "/readyz" : "/healthz", why, sizeof why) == 200)
		return 0;
	fprintf(stderr, "relaypro health: %s: %s\n", ready ? "/readyz" : "/healthz", why);
	return 1;
}

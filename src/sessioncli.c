/*
 * sessioncli.c — `relaypro sessions [-c FILE]`: a running relay's open tunnels as a table.
 * See sessioncli.h.
 *
 * The answer is read as it comes, in a 16 KiB buffer (HTTP/1.0: never chunked), one row (one line
 * of the JSON array) at a time: thousands of tunnels cost no more memory than one.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "json.h"
#include "loop.h"
#include "probe.h"
#include "sessioncli.h"
#include "sessions.h"

#define CLI_TOTAL_MS 120000 /* the whole answer, at most */
#define CLI_LINE_MAX (SESSIONS_ROW_MAX + 16)

/* One row, as read back. */
struct row {
	int64_t id, up, down, idle;
	char transport[16], client[NET_ADDR_TEXT], sub[AUTH_USER_MAX + 1];
	char target[TARGET_HOST_MAX + 16], opened[32];
};

/* The reader: the head, then the body (HTTP/1.0: it ends at the close, never chunked),
 * cut into lines. */
struct reader {
	int status, in_body, end_seen, rows;
	char head[2048];
	size_t hlen;
	char line[CLI_LINE_MAX];
	size_t llen;
	int too_long;
};

static int
row_member(void *user, const char *key, size_t keylen, struct json *j)
{
	struct row *r = user;
	size_t n;
	static const struct {
		const char *key;
		size_t off, cap;
	} texts[] = {
#define T(k, f) { k, offsetof(struct row, f), sizeof(((struct row *)0)->f) }
		T("transport", transport), T("client", client), T("sub", sub), T("target", target),
		T("opened", opened),
#undef T
	};
	static const struct {
		const char *key;
		size_t off;
	} ints[] = {
		{ "id", offsetof(struct row, id) }, { "bytesUp", offsetof(struct row, up) },
		{ "bytesDown", offsetof(struct row, down) },
		{ "idleSeconds", offsetof(struct row, idle) },
	};
	size_t i;

	for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (strlen(texts[i].key) == keylen && memcmp(texts[i].key, key, keylen) == 0)
			return json_read_string(j, (char *)r + texts[i].off, texts[i].cap, &n);
	for (i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if (strlen(ints[i].key) == keylen && memcmp(ints[i].key, key, keylen) == 0)
			return json_read_int(j, (int64_t *)(void *)((char *)r + ints[i].off));
	return json_skip(j);
}

/* Print a text field: what a terminal could misread (space, control bytes) as '?'. */
static void
field(const char *s, int width)
{
	char out[AUTH_USER_MAX + TARGET_HOST_MAX + 32];
	size_t i, n = strlen(s);

	if (n == 0)
		s = "-", n = 1;
	if (n >= sizeof out)
		n = sizeof out - 1;
	for (i = 0; i < n; i++)
		out[i] = (unsigned char)s[i] <= ' ' || s[i] == 0x7f ? '?' : s[i];
	out[n] = 0;
	printf("%-*s ", width, out);
}

/* One line of the body: "[", "]", or a row ("{...}" with a trailing comma). */
static int
body_line(struct reader *rd, char *l, size_t n)
{
	struct row r;
	struct json j;

	while (n && (l[n - 1] == '\r' || l[n - 1] == ','))
		n--;
	if (n == 1 && (l[0] == '[' || l[0] == ']')) {
		rd->end_seen = l[0] == ']';
		return ERR_OK;
	}
	if (n == 0)
		return ERR_OK;
	memset(&r, 0, sizeof r);
	json_init(&j, l, n);
	if (json_walk_object(&j, row_member, &r) != ERR_OK || json_end(&j) != ERR_OK)
		return ERR_INVAL;
	printf("%-10lld ", (long long)r.id);
	field(r.transport, 9);
	field(r.client, 21);
	field(r.sub, 20);
	field(r.target, 28);
	field(r.opened, 20);
	printf("%12lld %12lld %6lld\n", (long long)r.up, (long long)r.down, (long long)r.idle);
	rd->rows++;
	return ERR_OK;
}

/* A byte of the body. */
static int
body_byte(struct reader *rd, char c)
{
	size_t n;

	if (c != '\n') {
		if (rd->llen < sizeof rd->line)
			rd->line[rd->llen++] = c;
		else
			rd->too_long = 1;
		return ERR_OK;
	}
	n = rd->llen;
	rd->llen = 0;
	if (rd->too_long)
		return ERR_INVAL;
	return body_line(rd, rd->line, n);
}

/* Bytes as read: the head first (its status line), then the body. */
static int
take(struct reader *rd, const char *b, size_t n)
{
	size_t i = 0;

	while (!rd->in_body && i < n) {
		if (rd->hlen + 1 >= sizeof rd->head)
			return ERR_INVAL;
		rd->head[rd->hlen++] = b[i++];
		rd->head[rd->hlen] = 0;
		if (strstr(rd->head, "\r\n\r\n") == NULL)
			continue;
		if (strncmp(rd->head, "HTTP/1.", 7) != 0 || rd->head[8] != ' ' ||
		    rd->head[9] < '1' || rd->head[9] > '5' || rd->head[10] < '0' || rd->head[10] > '9' ||
		    rd->head[11] < '0' || rd->head[11] > '9')
			return ERR_INVAL;
		rd->status = (rd->head[9] - '0') * 100 + (rd->head[10] - '0') * 10 + (rd->head[11] - '0');
		rd->in_body = 1;
	}
	for (; i < n; i++)
		if (body_byte(rd, b[i]) != ERR_OK)
			return ERR_INVAL;
	return ERR_OK;
}

/* see sessioncli.h */
int
sessioncli_main(int argc, char **argv)
{
	/* HTTP/1.0: the answer is not chunked, its body ends when the relay closes */
	static const char req[] = "GET /sessions HTTP/1.0\r\nHost: relaypro\r\n"
	    "User-Agent: relaypro-sessions\r\n\r\n";
	static struct reader rd;
	const char *cli = NULL, *cmd = probe_command(argc, argv), *why = NULL;
	char buf[16384], err[256];
	struct net_addr a;
	int64_t end = loop_now_ms() + CLI_TOTAL_MS;
	size_t sent = 0;
	ssize_t n;
	int i, fd;

	if (cmd == NULL || strcmp(cmd, "sessions") != 0 || probe_asks_usage(argc, argv))
		return SESSIONCLI_NOT_MINE;
	for (i = 1; i < argc; i++) {
		if (argv[i] == cmd)
			continue;
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			cli = argv[++i];
		} else {
			fprintf(stderr, "relaypro sessions: unexpected argument %s (relaypro sessions --help)\n",
			    argv[i]);
			return 2;
		}
	}
	if ((i = probe_admin_addr(cli, "sessions", &a)) != 0)
		return i;
	if ((fd = probe_connect(&a, loop_now_ms() + PROBE_TIMEOUT_MS, err, sizeof err)) < 0) {
		fprintf(stderr, "relaypro sessions: %s\n", err);
		return 1;
	}
	while (sent < sizeof req - 1 && why == NULL) {
		if (!probe_wait(fd, POLLOUT, loop_now_ms() + PROBE_TIMEOUT_MS) ||
		    (n = send(fd, req + sent, sizeof req - 1 - sent, MSG_NOSIGNAL)) <= 0)
			why = "cannot send the request";
		else
			sent += (size_t)n;
	}
	printf("%-10s %-9s %-21s %-20s %-28s %-20s %12s %12s %6s\n", "ID", "TRANSPORT", "CLIENT",
	    "SUB", "TARGET", "OPENED", "UP", "DOWN", "IDLE");
	/* no answer for PROBE_TIMEOUT_MS, or not all of it in CLI_TOTAL_MS: given up */
	while (why == NULL) {
		int64_t until = loop_now_ms() + PROBE_TIMEOUT_MS;
		if (!probe_wait(fd, POLLIN, until < end ? until : end)) {
			why = "no answer in time";
			break;
		}
		n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (take(&rd, buf, (size_t)n) != ERR_OK)
			why = "not an answer this command understands";
	}
	close(fd);
	fflush(stdout);
	if (why == NULL && rd.status != 200)
		why = rd.status ? "the admin listener did not answer 200" : "no answer";
	if (why == NULL && !rd.end_seen)
		why = "the answer ended early";
	if (why != NULL) {
		if (rd.status && rd.status != 200)
			fprintf(stderr, "relaypro sessions: %s (%d)\n", why, rd.status);
		else
			fprintf(stderr, "relaypro sessions: %s\n", why);
		return 1;
	}
	return 0;
}

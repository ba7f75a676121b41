/*
 * net.c — socket helpers. See net.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "net.h"

/* see net.h */
int
net_parse_listen(const char *text, struct net_addr *out)
{
	char host[64];
	const char *port;
	size_t hl;
	unsigned long p;
	char *end;

	memset(out, 0, sizeof *out);
	if (text[0] == '[') {
		const char *rb = strchr(text, ']');
		if (rb == NULL || rb[1] != ':')
			return ERR_INVAL;
		hl = (size_t)(rb - text - 1);
		if (hl >= sizeof host)
			return ERR_INVAL;
		memcpy(host, text + 1, hl);
		port = rb + 2;
	} else {
		const char *c = strrchr(text, ':');
		if (c == NULL)
			return ERR_INVAL;
		hl = (size_t)(c - text);
		if (hl >= sizeof host)
			return ERR_INVAL;
		memcpy(host, text, hl);
		port = c + 1;
	}
	host[hl] = 0;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	/* Digits only: strtoul alone also took " 9090", "+9090" (found by fuzz_units). */
	if (*port < '1' || *port > '9')
		return ERR_INVAL;
	p = strtoul(port, &end, 10);
	if (*end != 0 || p == 0 || p > 65535)
		return ERR_INVAL;
	if (text[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return ERR_INVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		out->len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return ERR_INVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		out->len = sizeof *s4;
	}
	return ERR_OK;
}

/* see net.h */
int
net_listen(const struct net_addr *a, int reuseport)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ERR_IO;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (a->ss.ss_family == AF_INET6) /* "[::]" serves IPv4 too, whatever the sysctl says */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 0 }, sizeof(int));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 1024) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return ERR_IO;
	}
	return fd;
}

/* see net.h */
int
net_accept(int lfd, struct net_addr *peer)
{
	int fd, one = 1;

	peer->len = sizeof peer->ss;
	fd = accept4(lfd, (struct sockaddr *)&peer->ss, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* A non-blocking socket of type for a's family with option (level, name) set to 1, and
 * connect() started (a stream socket may be still connecting: EINPROGRESS). The fd, or -1
 * with errno. */
static int
connected(const struct net_addr *a, int type, int level, int name)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, level, name, &one, sizeof one);
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 &&
	    !(type == SOCK_STREAM && errno == EINPROGRESS)) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* see net.h */
int
net_connect_start(const struct net_addr *a)
{
	return connected(a, SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY);
}

/* see net.h */
int
net_udp_connect(const struct net_addr *a)
{
	return connected(a, SOCK_DGRAM, SOL_SOCKET, SO_RXQ_OVFL); /* drop counts only */
}

/* see net.h */
int
net_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

/* see net.h */
void
net_addr_text(const struct net_addr *a, char out[NET_ADDR_TEXT], int with_port)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		if (with_port)
			snprintf(out, NET_ADDR_TEXT, "[%s]:%u", ip, ntohs(s6->sin6_port));
		else
			snprintf(out, NET_ADDR_TEXT, "%s", ip);
	} else if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		if (with_port)
			snprintf(out, NET_ADDR_TEXT, "%s:%u", ip, ntohs(s4->sin_port));
		else
			snprintf(out, NET_ADDR_TEXT, "%s", ip);
	} else {
		snprintf(out, NET_ADDR_TEXT, "?");
	}
}

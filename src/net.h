/*
 * net.h — sockets: listeners, non-blocking connects, address text. (anet.c's role.)
 *
 * Every socket relaypro creates is non-blocking and close-on-exec. Addresses are IPv4 or
 * IPv6 only, kept as the larger of the two sockaddrs plus length (struct net_addr: 32
 * bytes, where a struct sockaddr_storage would take 132; a connection holds ten of them);
 * text forms are "1.2.3.4:443" / "[::1]:443".
 */
#ifndef RELAYPRO_NET_H
#define RELAYPRO_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define NET_ADDR_TEXT 64 /* "[" + INET6_ADDRSTRLEN + "]:65535" + NUL fits */

/* ss.ss_family is the family (AF_INET or AF_INET6: it shares its place with sin_family
 * and sin6_family); sizeof ss is the room a system call may fill. */
struct net_addr {
	union {
		sa_family_t ss_family;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} ss;
	socklen_t len;
};

/* Parse "IP:port" / "[IPv6]:port" (numeric only; "localhost" means 127.0.0.1). */
int net_parse_listen(const char *text, struct net_addr *out);

/* Bind and listen (SO_REUSEADDR; SO_REUSEPORT when reuseport). Returns fd or ERR_IO. */
int net_listen(const struct net_addr *a, int reuseport);

/* accept4 non-blocking + close-on-exec, TCP_NODELAY set. Returns fd or -1 (errno set). */
int net_accept(int lfd, struct net_addr *peer);

/* Start a non-blocking connect. Returns fd (connect pending or done) or -1 (errno set). */
int net_connect_start(const struct net_addr *a);

/* A UDP socket connected to a (so it sends only there and receives only from there),
 * asking the kernel to report its drops (SO_RXQ_OVFL, where supported). Returns fd or -1
 * (errno set: no route, no memory...). */
int net_udp_connect(const struct net_addr *a);

/* After POLLOUT on a pending connect: 0 when connected, else the errno of the failure. */
int net_connect_result(int fd);

/* "1.2.3.4:443" or "[::1]:443" (with_port) or the bare address. */
void net_addr_text(const struct net_addr *a, char out[NET_ADDR_TEXT], int with_port);

#endif

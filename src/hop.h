/*
 * hop.h — the one byte pump: a connection's two ends and the bytes moved between them.
 *
 * Owns: how bytes move — between a socket and its buffers (BearSSL's record buffers, or
 * the plain listener's two buffers), and from one end to the other. Must not touch:
 * connection state, HTTP, WebSocket rules, logging; it knows nothing of struct conn.
 *
 * An end (struct hop_end) is one socket seen in one of four ways, its adapter:
 *   TLS       eng != NULL: BearSSL's engine over fd; bytes are read from and written into
 *             the engine's application buffers, hop_io moves records;
 *   buffered  plain, ibuf/obuf set: the plain listener's two buffers, hop_io moves bytes;
 *   direct    plain, no buffers: the upstream socket, read()/write() straight from and
 *             into the other end's buffers;
 *   datagram  direct, over a connected UDP socket (GET /v1/udp): one hop_write is one
 *             datagram sent, one hop_read one datagram received (recvmsg, which also
 *             brings the kernel's count of datagrams it dropped for this socket, kept in
 *             drops); 0 bytes is an empty datagram, never an end of stream. Only under a
 *             frame adapter that keeps message boundaries (udptunnel.c).
 * Whatever the adapter, an end offers two views: in place (hop_rbuf/hop_rack: received
 * bytes; hop_wbuf/hop_wack: room for bytes to send; a direct end has none) and stream
 * (hop_read/hop_write, read()/write() contracts: >0 bytes moved, 0 at EOF (read), -1 with
 * errno EAGAIN when it would block, EPROTO when a TLS session failed (err says why), EPIPE
 * after a clean TLS close (write), another errno on a socket error). An end may carry a
 * prefix (pre, pre_len): bytes that count as received before the socket's (what the client
 * sent after its request head; what a proxy sent after its answer head); both views give
 * them first.
 *
 * Reads: a read that returns fewer bytes than asked (or EAGAIN) has emptied the socket, so
 * the end is marked rdry and its socket is not read again — BearSSL asks for exactly one
 * record's header or body at a time, and without this every round would end in a failed
 * read — until the loop reports the socket readable again and clears the mark
 * (hop_readable). Safe because readiness is level-triggered (pollset.h): bytes that arrive
 * after the last read are reported at the next wait, and the interest (hop_interest) still
 * asks for them. The first read after a report is always made.
 *
 * The pump (hop_pump) moves client → upstream from the front's in-place view into
 * hop_write(up), and upstream → client with hop_read(up) into the front's in-place view:
 * no copy when the upstream end is direct (bytes go from BearSSL's decrypted input to
 * write(), from read() into BearSSL's output buffer), one copy through an https:// proxy's
 * engine. A framing adapter (struct hop_frame: WebSocket, or WebSocket messages as UDP
 * datagrams) may stand between the pump and the front; without one the bytes pass as they
 * are. Back-pressure: the upstream is read only while the front has room, written only
 * while the front holds bytes (hop_wants).
 */
#ifndef RELAYPRO_HOP_H
#define RELAYPRO_HOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bearssl.h>

struct hop_end {
	int fd;                      /* the socket; -1 when there is none (yet) */
	int err;                     /* TLS: the BearSSL error that closed the engine */
	br_ssl_engine_context *eng;  /* TLS: the engine over fd; NULL: plain */
	unsigned char *ibuf, *obuf;  /* buffered: bytes read, bytes to write; NULL: direct */
	unsigned char *pre;          /* prefix: received before the socket's bytes */
	uint32_t ilen, olen;         /* (32 bits: every buffer is far below 4 GiB) */
	uint32_t in_off, in_end;     /* buffered: ibuf[in_off..in_end) not taken yet */
	uint32_t out_off, out_end;   /* buffered: obuf[out_off..out_end) not written yet */
	uint32_t pre_len;
	uint32_t drops;              /* datagram: the kernel's drops for the socket, as last told */
	unsigned eof : 1;            /* the socket read EOF */
	unsigned closed : 1;         /* TLS: the engine is closed (err: why, 0 = cleanly) */
	unsigned ready : 1;          /* TLS: handshake done, application data flows */
	unsigned shut : 1;           /* hop_shutdown was called */
	unsigned rdry : 1;           /* the socket was read empty: see "Reads" above */
	unsigned polled : 1;         /* the loop's (server.c): this end's socket is in its poll
	                              * set; cleared when the end is set up again (a new
	                              * socket, which may carry a closed one's number),
	                              * kept by hop_end_tls_same (the same socket) */
	unsigned dgram : 1;          /* a datagram end (hop_end_dgram) */
};

/* A framing adapter between the pump and the front end (the WebSocket tunnel). The pump
 * calls in/in_ack for payload the client sent (the adapter decodes frames from the front's
 * in-place view underneath), out/out_ack for room to put payload for the client (the
 * adapter writes frame headers around it); NULL means none now. in and out set *progress
 * when they consumed or produced bytes of their own (headers, control frames). in may give
 * an empty payload (len 0) only over a datagram end: an empty datagram. up_fail is told of
 * an upstream read or write error (writing: which one; the adapter ends the upstream side
 * itself, or over a datagram end drops the datagram); wants says whether the upstream
 * socket should be read / written. */
struct hop_frame {
	unsigned char *(*in)(void *ctx, size_t *len, int *progress);
	void (*in_ack)(void *ctx, size_t n);
	unsigned char *(*out)(void *ctx, size_t *room, int *progress);
	void (*out_ack)(void *ctx, size_t n);
	void (*up_fail)(void *ctx, int writing, const char *why);
	void (*wants)(const void *ctx, int *read_up, int *write_up);
};

/* A connection's data path: the client's end, the upstream end, and the pump's state. */
struct hop {
	struct hop_end front, up;
	const struct hop_frame *frame; /* NULL: raw bytes both ways */
	void *ctx;                     /* the frame adapter's (the connection) */
	uint64_t up_bytes, down_bytes; /* payload moved each way */
	unsigned up_eof : 1;           /* the upstream stream ended (EOF or close_notify) */
};

enum { HOP_E_WRITE = -1, HOP_E_READ = -2 }; /* hop_pump without a frame adapter */

/* Set e up as a plain end: buffered over ibuf/obuf, or direct with both NULL. */
void hop_end_plain(struct hop_end *e, int fd, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen);

/* Set e up as a datagram end over a connected UDP socket (see above). */
void hop_end_dgram(struct hop_end *e, int fd);

/* Set e up as a TLS end over an engine the caller initialised. */
void hop_end_tls(struct hop_end *e, int fd, br_ssl_engine_context *eng);

/* Turn e, as it stands, into a TLS end over eng on the same socket (TLS started on a
 * socket already connected: an https:// upstream proxy). Unlike hop_end_tls, the loop's
 * registration (polled) stays: the socket is the one already in the poll set, and
 * forgetting it would make the next put a failing epoll_ctl ADD (EEXIST) and a MOD. */
void hop_end_tls_same(struct hop_end *e, br_ssl_engine_context *eng);

/* In-place views (see above). hop_rbuf gives the prefix first; NULL when nothing is there.
 * hop_wack flushes a TLS engine (a record goes out as soon as the socket allows). */
unsigned char *hop_rbuf(struct hop_end *e, size_t *len);
void hop_rack(struct hop_end *e, size_t n);
unsigned char *hop_wbuf(struct hop_end *e, size_t *room);
void hop_wack(struct hop_end *e, size_t n);

/* Room hop_wbuf would give now (0: none), without touching anything. */
size_t hop_wroom(const struct hop_end *e);

/* 1 when received bytes wait to be taken (what hop_rbuf would give), without touching
 * anything. */
int hop_rpending(const struct hop_end *e);

/* 1 when nothing written into e waits to reach its socket. */
int hop_wempty(const struct hop_end *e);

/* Stream views, read()/write() contracts (see above). */
ssize_t hop_read(struct hop_end *e, void *buf, size_t len);
ssize_t hop_write(struct hop_end *e, const void *buf, size_t len);

/* Move bytes or records between e's socket and its buffers until the socket would block
 * (a buffered end reads while ibuf has room). 1 when anything moved, 0 when nothing did,
 * -1 on a socket error (errno set). A direct end: 0. TLS: sets ready, closed and err as
 * the engine goes. */
int hop_io(struct hop_end *e);

/* The loop reported e's socket readable (or hung up, or in error): read it again. */
void hop_readable(struct hop_end *e);

/* Poll events for e's socket: want_in / want_out are what the caller would read / write;
 * a TLS engine decides by itself what it must send, and reads only what it asks for. */
short hop_interest(const struct hop_end *e, int want_in, int want_out);

/* End our sending side: shutdown(SHUT_WR) (plain) or close_notify (TLS, sent at once if
 * the socket takes it). Once only. */
void hop_shutdown(struct hop_end *e);

/* The tunnel pump: client → upstream, then upstream → client, until neither moves or the
 * front must flush a TLS record first. Returns 1 when anything moved, 0 when nothing did;
 * without a frame adapter HOP_E_WRITE / HOP_E_READ on an upstream error (errno set), with
 * one the adapter's up_fail is called instead. Upstream EOF sets h->up_eof. */
int hop_pump(struct hop *h);

/* Poll interest of the tunnel's upstream socket (see back-pressure above). */
short hop_up_interest(const struct hop *h);

#endif

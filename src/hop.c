/*
 * hop.c — the one byte pump and its three end adapters (TLS, buffered, direct). See hop.h.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hop.h"
#include "metrics.h"

/* see hop.h */
void
hop_end_plain(struct hop_end *e, int fd, unsigned char *ibuf, size_t ilen,
    unsigned char *obuf, size_t olen)
{
	memset(e, 0, sizeof *e);
	e->fd = fd;
	e->ibuf = ibuf;
	e->ilen = ilen;
	e->obuf = obuf;
	e->olen = olen;
}

/* see hop.h */
void
hop_end_dgram(struct hop_end *e, int fd)
{
	hop_end_plain(e, fd, NULL, 0, NULL, 0);
	e->dgram = 1;
}

/* A datagram end's read: one datagram, and the kernel's drop count when it comes along
 * (SO_RXQ_OVFL, asked for by net_udp_connect; absent while nothing was dropped). */
static ssize_t
dgram_read(struct hop_end *e, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		unsigned char b[CMSG_SPACE(sizeof(uint32_t))];
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr m;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl.b;
	m.msg_controllen = sizeof ctl.b;
	n = recvmsg(e->fd, &m, 0);
	if (n < 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&m); cm != NULL; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t)))
			memcpy(&e->drops, CMSG_DATA(cm), sizeof(uint32_t));
	return n;
}

/* see hop.h */
void
hop_end_tls(struct hop_end *e, int fd, br_ssl_engine_context *eng)
{
	memset(e, 0, sizeof *e);
	e->fd = fd;
	e->eng = eng;
}

/* see hop.h */
void
hop_end_tls_same(struct hop_end *e, br_ssl_engine_context *eng)
{
	unsigned polled = e->polled;

	hop_end_tls(e, e->fd, eng);
	e->polled = polled;
}

/* ---- in-place views ------------------------------------------------------------------ */

/* see hop.h */
unsigned char *
hop_rbuf(struct hop_end *e, size_t *len)
{
	if (e->pre_len) {
		*len = e->pre_len;
		return e->pre;
	}
	if (e->eng)
		return br_ssl_engine_recvapp_buf(e->eng, len);
	*len = e->in_end - e->in_off;
	return *len ? e->ibuf + e->in_off : NULL;
}

/* see hop.h */
void
hop_rack(struct hop_end *e, size_t n)
{
	if (e->pre_len) {
		e->pre += n;
		e->pre_len -= n;
	} else if (e->eng) {
		br_ssl_engine_recvapp_ack(e->eng, n);
	} else {
		e->in_off += n;
		if (e->in_off == e->in_end)
			e->in_off = e->in_end = 0;
	}
}

/* see hop.h */
int
hop_rpending(const struct hop_end *e)
{
	if (e->pre_len)
		return 1;
	if (e->eng)
		return (br_ssl_engine_current_state(e->eng) & BR_SSL_RECVAPP) != 0;
	return e->in_off < e->in_end;
}

/* see hop.h */
unsigned char *
hop_wbuf(struct hop_end *e, size_t *room)
{
	if (e->eng)
		return br_ssl_engine_sendapp_buf(e->eng, room);
	if (e->obuf == NULL) {
		*room = 0;
		return NULL;
	}
	if (e->out_off == e->out_end)
		e->out_off = e->out_end = 0;
	*room = e->olen - e->out_end;
	return *room ? e->obuf + e->out_end : NULL;
}

/* see hop.h */
void
hop_wack(struct hop_end *e, size_t n)
{
	if (e->eng) {
		br_ssl_engine_sendapp_ack(e->eng, n);
		br_ssl_engine_flush(e->eng, 0);
		return;
	}
	e->out_end += n;
}

/* see hop.h */
size_t
hop_wroom(const struct hop_end *e)
{
	size_t room = 0;

	if (e->eng) {
		if (br_ssl_engine_current_state(e->eng) & BR_SSL_SENDAPP)
			br_ssl_engine_sendapp_buf(e->eng, &room);
		return room;
	}
	if (e->obuf == NULL)
		return 0;
	return e->out_off == e->out_end ? e->olen : e->olen - e->out_end;
}

/* see hop.h */
int
hop_wempty(const struct hop_end *e)
{
	if (e->eng)
		return !(br_ssl_engine_current_state(e->eng) & BR_SSL_SENDREC);
	return e->out_off == e->out_end;
}

/* ---- socket I/O ------------------------------------------------------------------------ */

/* read() from e's socket into buf (at most len), under the "Reads" rule (hop.h): nothing
 * is read while e is marked rdry (-1, errno EAGAIN); a short read or EAGAIN marks it. */
static ssize_t
sock_read(struct hop_end *e, void *buf, size_t len)
{
	ssize_t n;

	if (e->rdry) {
		errno = EAGAIN;
		return -1;
	}
	n = read(e->fd, buf, len);
	if ((n > 0 && (size_t)n < len) || (n < 0 && errno == EAGAIN))
		e->rdry = 1;
	return n;
}

/* see hop.h */
void
hop_readable(struct hop_end *e)
{
	e->rdry = 0;
}

/* One round of record I/O between e's BearSSL engine (in state st) and its socket: write
 * the records it has to send, read what it asks for unless at EOF (which sets eof).
 * Returns 1 when anything moved, 0 when the socket would block, -1 on a socket error. */
static int
engine_sock_io(struct hop_end *e, unsigned st)
{
	br_ssl_engine_context *eng = e->eng;
	unsigned char *b;
	size_t len;
	ssize_t n;
	int moved = 0;

	if (st & BR_SSL_SENDREC) {
		b = br_ssl_engine_sendrec_buf(eng, &len);
		n = write(e->fd, b, len);
		if (n > 0) {
			br_ssl_engine_sendrec_ack(eng, (size_t)n);
			moved = 1;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	if ((st & BR_SSL_RECVREC) && !e->eof) {
		b = br_ssl_engine_recvrec_buf(eng, &len);
		n = sock_read(e, b, len);
		if (n > 0) {
			br_ssl_engine_recvrec_ack(eng, (size_t)n);
			moved = 1;
		} else if (n == 0) {
			e->eof = 1;
			moved = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	return moved;
}

/* see hop.h */
int
hop_io(struct hop_end *e)
{
	int progress = 0;
	ssize_t n;

	if (e->eng) {
		for (;;) {
			unsigned st = br_ssl_engine_current_state(e->eng);
			int moved;

			if (st & BR_SSL_CLOSED) {
				if (!e->closed) {
					e->closed = 1;
					e->err = br_ssl_engine_last_error(e->eng);
				}
				return progress;
			}
			if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))
				e->ready = 1;
			moved = engine_sock_io(e, st);
			if (moved < 0)
				return -1;
			if (!moved)
				return progress;
			progress = 1;
		}
	}
	if (e->ibuf == NULL)
		return 0; /* direct: the pump reads and writes the socket itself */
	while (e->out_off < e->out_end) {
		n = write(e->fd, e->obuf + e->out_off, e->out_end - e->out_off);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return -1;
			break;
		}
		e->out_off += (size_t)n;
		progress = 1;
	}
	if (e->out_off == e->out_end)
		e->out_off = e->out_end = 0;
	if (!e->eof && e->in_end < e->ilen) {
		n = sock_read(e, e->ibuf + e->in_end, e->ilen - e->in_end);
		if (n > 0) {
			e->in_end += (size_t)n;
			progress = 1;
		} else if (n == 0) {
			e->eof = 1;
			progress = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -1;
		}
	}
	return progress;
}

/* TLS: the session can carry no more application data. 0 while it can; else -1 with errno
 * (EPROTO and e->err for a failure, EPIPE after a clean close). */
static int
tls_dead(struct hop_end *e)
{
	if (br_ssl_engine_current_state(e->eng) & BR_SSL_CLOSED) {
		e->closed = 1;
		e->err = br_ssl_engine_last_error(e->eng);
		errno = e->err == BR_ERR_OK ? EPIPE : EPROTO;
		return -1;
	}
	if (e->eof && !e->ready) {
		e->err = BR_ERR_IO; /* the peer hung up during the handshake */
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* see hop.h */
ssize_t
hop_read(struct hop_end *e, void *buf, size_t len)
{
	unsigned char *b;
	size_t avail;

	if (e->dgram)
		return dgram_read(e, buf, len);
	if (e->pre_len == 0 && e->eng == NULL && e->ibuf == NULL)
		return sock_read(e, buf, len);
	if (e->pre_len == 0 && e->eng && hop_io(e) < 0)
		return -1;
	b = hop_rbuf(e, &avail);
	if (b != NULL) {
		if (avail > len)
			avail = len;
		memcpy(buf, b, avail);
		hop_rack(e, avail);
		if (e->eng)
			(void)hop_io(e); /* the engine may want the next record now */
		return (ssize_t)avail;
	}
	if (e->eng && tls_dead(e) < 0)
		return errno == EPIPE ? 0 : -1; /* close_notify: EOF */
	if (e->eof)
		return 0; /* TCP EOF (after the handshake) */
	errno = EAGAIN;
	return -1;
}

/* see hop.h */
ssize_t
hop_write(struct hop_end *e, const void *buf, size_t len)
{
	unsigned char *b;
	size_t room;

	if (e->eng == NULL && e->obuf == NULL)
		return write(e->fd, buf, len);
	if (e->eng && (hop_io(e) < 0 || tls_dead(e) < 0))
		return -1;
	b = hop_wbuf(e, &room);
	if (b == NULL) {
		errno = EAGAIN;
		return -1;
	}
	if (room > len)
		room = len;
	memcpy(b, buf, room);
	hop_wack(e, room);
	if (e->eng)
		(void)hop_io(e); /* a socket error shows on the next call */
	return (ssize_t)room;
}

/* see hop.h */
short
hop_interest(const struct hop_end *e, int want_in, int want_out)
{
	short ev = 0;

	if (e->eng) {
		unsigned st = br_ssl_engine_current_state(e->eng);
		if (st & BR_SSL_SENDREC)
			ev |= POLLOUT;
		if ((st & BR_SSL_RECVREC) && !e->eof && want_in)
			ev |= POLLIN;
		return ev;
	}
	if (e->ibuf == NULL)
		return (short)((want_in ? POLLIN : 0) | (want_out ? POLLOUT : 0));
	if (e->out_off < e->out_end)
		ev |= POLLOUT;
	if (!e->eof && want_in && e->in_end < e->ilen)
		ev |= POLLIN;
	return ev;
}

/* see hop.h */
void
hop_shutdown(struct hop_end *e)
{
	if (e->shut)
		return;
	e->shut = 1;
	if (e->eng == NULL) {
		shutdown(e->fd, SHUT_WR);
		return;
	}
	if (!(br_ssl_engine_current_state(e->eng) & BR_SSL_CLOSED))
		br_ssl_engine_close(e->eng);
	(void)hop_io(e); /* send the close_notify; errors show on the next read */
}

/* ---- the pump -------------------------------------------------------------------------- */

/* see hop.h */
int
hop_pump(struct hop *h)
{
	const struct hop_frame *f = h->frame;
	int progress = 0;
	unsigned char *b;
	size_t len;
	ssize_t n;

	/* Client -> upstream: from the front's bytes (or the adapter's payload) into the
	 * upstream socket or its engine. */
	for (;;) {
		b = f ? f->in(h->ctx, &len, &progress) : hop_rbuf(&h->front, &len);
		if (b == NULL)
			break;
		n = hop_write(&h->up, b, len);
		if (n < 0 || (n == 0 && len > 0)) { /* len 0: an empty datagram, sent */
			if (n == 0 || errno == EAGAIN || errno == EINTR)
				break;
			if (f == NULL)
				return HOP_E_WRITE;
			f->up_fail(h->ctx, 1, "upstream write error");
			continue; /* the adapter dropped it, or now drops what the client sends */
		}
		if (f)
			f->in_ack(h->ctx, (size_t)n);
		else
			hop_rack(&h->front, (size_t)n);
		h->up_bytes += (size_t)n;
		metrics_bytes((size_t)n, 0);
		progress = 1;
	}
	/* Upstream -> client: read straight into the front's send buffer. */
	for (;;) {
		if (f)
			b = f->out(h->ctx, &len, &progress); /* frames a close on up_eof itself */
		else
			b = h->up_eof ? NULL : hop_wbuf(&h->front, &len);
		if (b == NULL)
			break;
		n = hop_read(&h->up, b, len);
		if (n > 0 || (n == 0 && h->up.dgram)) { /* a datagram may be empty */
			if (f)
				f->out_ack(h->ctx, (size_t)n);
			else
				hop_wack(&h->front, (size_t)n);
			h->down_bytes += (size_t)n;
			metrics_bytes(0, (size_t)n);
			progress = 1;
			if (h->front.eng)
				break; /* let the front push the record out first */
			continue;
		}
		if (n == 0) {
			h->up_eof = 1;
			progress = 1;
			continue;
		}
		if (errno == EAGAIN || errno == EINTR)
			break;
		if (f == NULL)
			return HOP_E_READ;
		f->up_fail(h->ctx, 0, "upstream read error");
		progress = 1;
	}
	return progress;
}

/* see hop.h */
short
hop_up_interest(const struct hop *h)
{
	int want_in, want_out;

	if (h->frame) {
		h->frame->wants(h->ctx, &want_in, &want_out);
	} else {
		want_in = !h->up_eof && hop_wroom(&h->front) > 0;
		want_out = hop_rpending(&h->front);
	}
	/* An https:// proxy's engine reads what it asks for (at most one record ahead), so
	 * back-pressure holds without asking. */
	if (h->up.eng)
		want_in = 1;
	return hop_interest(&h->up, want_in, want_out);
}

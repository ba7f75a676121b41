/*
 * loadgen.c — the benchmark's load generator and echo backend (issue 8). A test tool run
 * by tests/bench/run.py, never part of the relay binary.
 *
 *   loadgen echo    --listen 127.0.0.1:0                   echo server (epoll), prints its port
 *   loadgen rate    --proxy A --target T [--conc C] [--threads N] [--duration D] [--count M]
 *                   [--resume] [--target-host NAME]
 *                                    new TLS connection + CONNECT + one echo + close, C at once
 *   loadgen bulk    --proxy A --target T [--duration D]   MB/s through one tunnel, both ways
 *   loadgen latency --proxy A --target T [--rounds R]     echo round trips, tunnel vs direct
 *   loadgen ping    --proxy A --target T [--steps 100,1000,9000] [--period S] [--seconds S]
 *                   [--conc C] [--hold S] [--wait-go] [--direct]
 *                   N idle tunnels, each sends one echo every period: round-trip p50/p99/max
 *                   at each step, then the tunnels are held (--seconds 0: open and hold)
 *   loadgen udpecho --listen 127.0.0.1:0                   UDP echo server, prints its port
 *   loadgen udp     --proxy A --target T [--payload B] [--rounds R] [--duration D] [--conc W]
 *                   a WSS GET /v1/udp association to T: datagram round trips through it and
 *                   direct to T (p50/p99, added p50), then datagrams/s with W in flight,
 *                   through it and direct (a datagram lost counts after 300 ms of silence)
 *
 * The proxy is spoken to over TLS 1.2 with BearSSL; the credentials are the whole
 * Proxy-Authorization value taken from the environment variable LOADGEN_AUTH ("Basic ..."
 * or "Bearer ..."), so they never appear on a command line. The proxy's certificate is NOT
 * verified (a benchmark, not a client): the chain is decoded for its public key, which
 * still authenticates the key exchange, but no trust anchor is checked. Every peer gets
 * the same client: TLS 1.2, ECDHE (X25519 offered first) with AES-128-GCM, SHA-256.
 *
 * Results are JSON lines on stdout, one per measurement. Every loop is bounded by a
 * duration and by a count; every address must be loopback (127.0.0.0/8). Every mode waits
 * on readiness (poll for the few sockets of rate/bulk/latency, epoll for ping's thousands),
 * never on a timer, so the generator adds no polling delay to what it measures.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#define MAX_SAMPLES (1u << 21)   /* latency samples kept per thread (beyond: counted only) */
#define MAX_CLIENTS 20000
#define PAYLOAD_MAX 4096
#define HEAD_MAX 2048

static const uint16_t suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
};

struct opts {
	const char *mode, *label;
	struct sockaddr_in proxy, target, listen;
	char target_text[64];
	const char *auth, *steps;
	int conc, threads, resume, payload, rounds, direct, wait_go, udp;
	long count;
	double duration, hold, warmup, period, seconds;
};
static struct opts o;
static volatile sig_atomic_t stop_flag;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die(const char *what)
{
	fprintf(stderr, "loadgen: %s\n", what);
	exit(2);
}

static void
on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* "127.x.y.z:port" only: the benchmark never leaves loopback. */
static int
parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;
	char *end;

	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1 || (ntohl(a->sin_addr.s_addr) >> 24) != 127)
		return -1;
	return 0;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t
pct(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	    ru.ru_stime.tv_usec / 1e6;
}

/* ---- certificate handling: decode, do not verify ------------------------------------ */

/* An X.509 "validator" that runs BearSSL's minimal engine with no trust anchors and
 * accepts its NOT_TRUSTED verdict: the server's public key is still extracted (and used
 * to check the ServerKeyExchange signature), but nobody vouches for it. Benchmark only. */
struct noverify {
	const br_x509_class *vtable;
	br_x509_minimal_context inner;
};

static void
nv_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct noverify *nv = (struct noverify *)(void *)ctx;
	nv->inner.vtable->start_chain(&nv->inner.vtable, server_name);
}

static void
nv_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct noverify *nv = (struct noverify *)(void *)ctx;
	nv->inner.vtable->start_cert(&nv->inner.vtable, length);
}

static void
nv_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct noverify *nv = (struct noverify *)(void *)ctx;
	nv->inner.vtable->append(&nv->inner.vtable, buf, len);
}

static void
nv_end_cert(const br_x509_class **ctx)
{
	struct noverify *nv = (struct noverify *)(void *)ctx;
	nv->inner.vtable->end_cert(&nv->inner.vtable);
}

static unsigned
nv_end_chain(const br_x509_class **ctx)
{
	struct noverify *nv = (struct noverify *)(void *)ctx;
	unsigned r = nv->inner.vtable->end_chain(&nv->inner.vtable);
	return r == BR_ERR_X509_NOT_TRUSTED ? 0 : r;
}

static const br_x509_pkey *
nv_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct noverify *nv = (const struct noverify *)(const void *)ctx;
	return nv->inner.vtable->get_pkey(&nv->inner.vtable, usages);
}

static const br_x509_class noverify_vtable = {
	sizeof(struct noverify), nv_start_chain, nv_start_cert, nv_append, nv_end_cert,
	nv_end_chain, nv_get_pkey
};

/* ---- one client connection through the proxy ---------------------------------------- */

enum phase { P_FREE, P_CONNECTING, P_TLS, P_HEAD, P_ECHO, P_OPEN };

struct client {
	int fd;
	enum phase ph;
	br_ssl_client_context cc;
	struct noverify xc;
	br_ssl_session_parameters sess;
	int have_sess, resumed;
	unsigned char *iobuf;
	size_t iolen;
	const unsigned char *out;    /* application bytes still to send */
	size_t out_len, out_off;
	char head[HEAD_MAX];
	size_t head_len;
	unsigned char echo[PAYLOAD_MAX];
	size_t echo_len, echo_got;
	int64_t t0;
	uint64_t rx;                 /* bulk: application bytes received */
};

static char connect_req[1024];
static size_t connect_req_len;
static unsigned char payload[PAYLOAD_MAX];

static void
build_request(void)
{
	int n = o.udp ? snprintf(connect_req, sizeof connect_req,
	    "GET /v1/udp?target=%s HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n", o.target_text,
	    o.auth ? "Authorization: " : "", o.auth ? o.auth : "", o.auth ? "\r\n" : "") :
	    snprintf(connect_req, sizeof connect_req,
	    "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", o.target_text, o.target_text,
	    o.auth ? "Proxy-Authorization: " : "", o.auth ? o.auth : "", o.auth ? "\r\n" : "");
	size_t i;

	if (n <= 0 || (size_t)n >= sizeof connect_req)
		die("credentials too long");
	connect_req_len = (size_t)n;
	for (i = 0; i < sizeof payload; i++)
		payload[i] = (unsigned char)('a' + i % 26);
}

static int
client_init(struct client *cl, int bidi)
{
	memset(cl, 0, sizeof *cl);
	cl->fd = -1;
	cl->iolen = bidi ? BR_SSL_BUFSIZE_BIDI : BR_SSL_BUFSIZE_MONO;
	cl->iobuf = malloc(cl->iolen);
	if (!cl->iobuf)
		return -1;
	br_ssl_client_init_full(&cl->cc, &cl->xc.inner, NULL, 0);
	cl->xc.vtable = &noverify_vtable;
	br_ssl_engine_set_x509(&cl->cc.eng, &cl->xc.vtable);
	br_ssl_engine_set_versions(&cl->cc.eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(&cl->cc.eng, suites, sizeof suites / sizeof suites[0]);
	br_ssl_engine_set_buffer(&cl->cc.eng, cl->iobuf, cl->iolen, bidi);
	return 0;
}

static void
client_drop(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	cl->ph = P_FREE;
}

/* Start a new connection: TCP connect (non-blocking) and a TLS client reset, offering
 * the saved session when resume is on. */
static int
client_start(struct client *cl, int resume)
{
	int one = 1;

	cl->t0 = now_us();
	cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cl->fd < 0)
		return -1;
	setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(cl->fd, (const struct sockaddr *)&o.proxy, sizeof o.proxy) < 0 &&
	    errno != EINPROGRESS) {
		client_drop(cl);
		return -1;
	}
	if (resume && cl->have_sess)
		br_ssl_engine_set_session_parameters(&cl->cc.eng, &cl->sess);
	if (!br_ssl_client_reset(&cl->cc, NULL, resume && cl->have_sess)) {
		client_drop(cl);
		return -1;
	}
	cl->ph = P_CONNECTING;
	cl->out = NULL;
	cl->out_len = cl->out_off = 0;
	cl->head_len = cl->echo_got = 0;
	cl->resumed = 0;
	return 0;
}

/* Move records between the engine and the socket until both ways would block.
 * -1: the connection failed or closed. */
static int
engine_io(struct client *cl)
{
	br_ssl_engine_context *eng = &cl->cc.eng;
	int rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		unsigned st = br_ssl_engine_current_state(eng);
		int moved = 0;
		size_t len;
		unsigned char *b;
		ssize_t n;

		if (st & BR_SSL_CLOSED)
			return -1;
		if (st & BR_SSL_SENDREC) {
			b = br_ssl_engine_sendrec_buf(eng, &len);
			n = send(cl->fd, b, len, MSG_NOSIGNAL);
			if (n > 0) {
				br_ssl_engine_sendrec_ack(eng, (size_t)n);
				moved = 1;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return -1;
			}
		}
		if (st & BR_SSL_RECVREC) {
			b = br_ssl_engine_recvrec_buf(eng, &len);
			n = recv(cl->fd, b, len, 0);
			if (n > 0) {
				br_ssl_engine_recvrec_ack(eng, (size_t)n);
				moved = 1;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				return -1;
			}
		}
		if (!moved)
			return 0;
	}
	return 0;
}

static short
client_events(const struct client *cl)
{
	unsigned st;
	short ev = 0;

	if (cl->ph == P_CONNECTING)
		return POLLOUT;
	st = br_ssl_engine_current_state(&cl->cc.eng);
	if (st & BR_SSL_SENDREC)
		ev |= POLLOUT;
	if (st & BR_SSL_RECVREC)
		ev |= POLLIN;
	return ev;
}

/* udp mode: the relay's frames, decoded as they come; each whole binary message is one
 * datagram back (msgs). */
static struct {
	unsigned char hdr[10];
	size_t hlen;
	uint64_t left, msgs;
	int in_frame, op;
} wsr;

static int
ws_feed(const unsigned char *b, size_t len)
{
	size_t need, n;

	while (len > 0) {
		if (!wsr.in_frame) {
			wsr.hdr[wsr.hlen++] = *b++;
			len--;
			need = wsr.hlen < 2 ? 2 : (wsr.hdr[1] & 0x7f) == 126 ? 4 : (wsr.hdr[1] & 0x7f) == 127 ? 10 : 2;
			if (wsr.hlen < need)
				continue;
			wsr.op = wsr.hdr[0] & 0x0f;
			if (wsr.op == 8)
				return -1; /* the relay closed the association */
			wsr.left = need == 2 ? (uint64_t)(wsr.hdr[1] & 0x7f) : need == 4 ?
			    (uint64_t)wsr.hdr[2] << 8 | wsr.hdr[3] : 0x10000; /* no 64-bit lengths here */
			wsr.hlen = 0;
			wsr.in_frame = 1;
		}
		n = wsr.left < len ? (size_t)wsr.left : len;
		wsr.left -= n;
		b += n;
		len -= n;
		if (wsr.left == 0) {
			wsr.in_frame = 0;
			if (wsr.op == 2)
				wsr.msgs++;
		}
	}
	return 0;
}

/* Application data arrived; returns -1 on a protocol failure. P_HEAD: collect the
 * proxy's answer head (must be 200; 101 in udp mode); P_ECHO: collect the echo; P_OPEN:
 * count (bulk), or decode frames (udp). */
static int
on_app_data(struct client *cl, const unsigned char *b, size_t len)
{
	size_t i;

	if (cl->ph == P_HEAD) {
		for (i = 0; i < len; i++) {
			if (cl->head_len >= sizeof cl->head - 1)
				return -1;
			cl->head[cl->head_len++] = (char)b[i];
			if (cl->head_len >= 4 && memcmp(cl->head + cl->head_len - 4, "\r\n\r\n", 4) == 0) {
				cl->head[cl->head_len] = 0;
				if (strncmp(cl->head, "HTTP/1.", 7) != 0 ||
				    strncmp(cl->head + 8, o.udp ? " 101" : " 200", 4) != 0)
					return -1;
				if (o.udp) {
					cl->ph = P_OPEN;
					cl->out_len = cl->out_off = 0;
					return ws_feed(b + i + 1, len - i - 1);
				}
				cl->ph = P_ECHO;
				cl->echo_got = 0;
				cl->out = payload;
				cl->out_len = (size_t)o.payload;
				cl->out_off = 0;
				return on_app_data(cl, b + i + 1, len - i - 1);
			}
		}
		return 0;
	}
	if (cl->ph == P_ECHO) {
		if (cl->echo_got + len > (size_t)o.payload)
			return -1;
		memcpy(cl->echo + cl->echo_got, b, len);
		cl->echo_got += len;
		return 0;
	}
	if (o.udp)
		return ws_feed(b, len);
	cl->rx += len;
	return 0;
}

/* Do what can be done now. Returns 1 when the echo came back (P_ECHO done), 0 to wait,
 * -1 on failure. With feed set (bulk), application bytes are produced endlessly. */
static int
client_drive(struct client *cl, int feed)
{
	br_ssl_engine_context *eng = &cl->cc.eng;
	int rounds;

	if (cl->ph == P_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0)
			return -1;
		cl->ph = P_TLS;
	}
	for (rounds = 0; rounds < 64; rounds++) {
		unsigned st;
		int progress = 0;
		size_t len;
		unsigned char *b;

		if (engine_io(cl) < 0)
			return -1;
		st = br_ssl_engine_current_state(eng);
		if (cl->ph == P_TLS && (st & BR_SSL_SENDAPP)) {
			/* Handshake done: was our session resumed? */
			br_ssl_session_parameters now;
			br_ssl_engine_get_session_parameters(eng, &now);
			cl->resumed = cl->have_sess && now.session_id_len > 0 &&
			    now.session_id_len == cl->sess.session_id_len &&
			    memcmp(now.session_id, cl->sess.session_id, now.session_id_len) == 0;
			cl->sess = now;
			cl->have_sess = now.session_id_len > 0;
			cl->ph = P_HEAD;
			cl->out = (const unsigned char *)connect_req;
			cl->out_len = connect_req_len;
			cl->out_off = 0;
			progress = 1;
		}
		if ((st & BR_SSL_SENDAPP) && cl->ph != P_TLS) {
			if (cl->out_off < cl->out_len) {
				b = br_ssl_engine_sendapp_buf(eng, &len);
				if (len > cl->out_len - cl->out_off)
					len = cl->out_len - cl->out_off;
				memcpy(b, cl->out + cl->out_off, len);
				br_ssl_engine_sendapp_ack(eng, len);
				cl->out_off += len;
				if (cl->out_off == cl->out_len)
					br_ssl_engine_flush(eng, 0);
				progress = 1;
			} else if (feed && cl->ph == P_OPEN) {
				b = br_ssl_engine_sendapp_buf(eng, &len);
				memset(b, 'x', len);
				br_ssl_engine_sendapp_ack(eng, len);
				progress = 1;
			}
		}
		if (st & BR_SSL_RECVAPP) {
			b = br_ssl_engine_recvapp_buf(eng, &len);
			if (on_app_data(cl, b, len) < 0)
				return -1;
			br_ssl_engine_recvapp_ack(eng, len);
			progress = 1;
		}
		if (cl->ph == P_ECHO && cl->echo_got == (size_t)o.payload && cl->out_off == cl->out_len) {
			if (memcmp(cl->echo, payload, (size_t)o.payload) != 0)
				return -1;
			return 1;
		}
		if (!progress)
			return 0;
	}
	return 0;
}

/* close_notify, best effort, then the socket. */
static void
client_close(struct client *cl)
{
	br_ssl_engine_close(&cl->cc.eng);
	(void)engine_io(cl);
	client_drop(cl);
}

/* Drive one client until it reaches the open tunnel (echo verified) or fails; blocking
 * through poll, bounded by timeout_us. 0 when open. */
static int
client_open_blocking(struct client *cl, int64_t timeout_us)
{
	int64_t end = now_us() + timeout_us;

	if (client_start(cl, o.resume) < 0)
		return -1;
	for (;;) {
		struct pollfd p = { .fd = cl->fd, .events = client_events(cl) };
		int64_t left = end - now_us();
		int rc;
		if (left <= 0 || stop_flag)
			return -1;
		if (poll(&p, 1, (int)(left / 1000) + 1) < 0 && errno != EINTR)
			return -1;
		rc = client_drive(cl, 0);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			cl->ph = P_OPEN;
			cl->out_len = cl->out_off = 0;
			return 0;
		}
	}
}

/* ---- rate: many clients, one poll loop per thread (a handful of sockets each) ---------- */

struct worker {
	pthread_t th;
	int nclients;
	int64_t end_us;
	long budget;                 /* connections this thread may start (count bound) */
	long done, full, resumed, failed, started;
	uint32_t *samples;
	size_t nsamples;
	struct client *cl;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct pollfd *pfd = calloc((size_t)w->nclients, sizeof *pfd);
	int *idx = calloc((size_t)w->nclients, sizeof *idx);
	int i, live;

	if (!pfd || !idx)
		die("out of memory");
	for (i = 0; i < w->nclients; i++) {
		if (w->started < w->budget && client_start(&w->cl[i], o.resume) == 0)
			w->started++;
		else if (w->started < w->budget)
			w->failed++, w->started++;
	}
	for (;;) {
		int n = 0, k;
		int64_t t = now_us();

		live = 0;
		for (i = 0; i < w->nclients; i++) {
			if (w->cl[i].ph == P_FREE)
				continue;
			live++;
			pfd[n].fd = w->cl[i].fd;
			pfd[n].events = client_events(&w->cl[i]);
			pfd[n].revents = 0;
			idx[n++] = i;
		}
		if (live == 0 || stop_flag || t >= w->end_us)
			break;
		k = poll(pfd, (nfds_t)n, (int)((w->end_us - t) / 1000) + 1);
		if (k < 0 && errno != EINTR)
			break;
		for (i = 0; i < n && k > 0; i++) {
			struct client *cl = &w->cl[idx[i]];
			int rc;
			if (!pfd[i].revents)
				continue;
			rc = client_drive(cl, 0);
			if (rc == 0)
				continue;
			if (rc < 0) {
				w->failed++;
				client_drop(cl);
			} else {
				uint32_t us = (uint32_t)(now_us() - cl->t0);
				w->done++;
				if (cl->resumed)
					w->resumed++;
				else
					w->full++;
				if (w->nsamples < MAX_SAMPLES)
					w->samples[w->nsamples++] = us;
				client_close(cl);
			}
			if (w->started < w->budget && now_us() < w->end_us && !stop_flag) {
				w->started++;
				if (client_start(cl, o.resume) < 0)
					w->failed++;
			}
		}
	}
	/* Connections still in flight at the end are neither done nor failed. */
	for (i = 0; i < w->nclients; i++)
		if (w->cl[i].ph != P_FREE)
			client_drop(&w->cl[i]);
	free(pfd);
	free(idx);
	return NULL;
}

static void
summary(const char *mode, struct worker *ws, int nw, double elapsed, double cpu)
{
	long done = 0, full = 0, resumed = 0, failed = 0;
	size_t ns = 0, k;
	uint32_t *all;
	int i;

	for (i = 0; i < nw; i++) {
		done += ws[i].done;
		full += ws[i].full;
		resumed += ws[i].resumed;
		failed += ws[i].failed;
		ns += ws[i].nsamples;
	}
	all = malloc((ns + 1) * sizeof *all);
	if (!all)
		die("out of memory");
	for (i = 0, k = 0; i < nw; i++) {
		memcpy(all + k, ws[i].samples, ws[i].nsamples * sizeof *all);
		k += ws[i].nsamples;
	}
	qsort(all, ns, sizeof *all, cmp_u32);
	printf("{\"mode\":\"%s\",\"label\":\"%s\",\"conc\":%d,\"threads\":%d,\"resume\":%d,"
	    "\"conns\":%ld,\"full\":%ld,\"resumed\":%ld,\"failed\":%ld,\"elapsed_s\":%.3f,"
	    "\"per_s\":%.1f,\"p50_us\":%u,\"p99_us\":%u,\"loadgen_cpu_s\":%.3f}\n",
	    mode, o.label, o.conc, nw, o.resume, done, full, resumed, failed, elapsed,
	    elapsed > 0 ? (double)done / elapsed : 0.0, pct(all, ns, 0.50), pct(all, ns, 0.99), cpu);
	fflush(stdout);
	free(all);
}

static struct worker *
make_workers(int nw, int conc, long budget, int64_t end_us)
{
	struct worker *ws = calloc((size_t)nw, sizeof *ws);
	int i, j;

	if (!ws)
		die("out of memory");
	for (i = 0; i < nw; i++) {
		struct worker *w = &ws[i];
		w->nclients = conc / nw + (i < conc % nw);
		w->budget = budget / nw + (i < budget % nw);
		w->end_us = end_us;
		w->cl = calloc((size_t)w->nclients, sizeof *w->cl);
		w->samples = malloc(MAX_SAMPLES * sizeof *w->samples);
		if (!w->cl || !w->samples)
			die("out of memory");
		for (j = 0; j < w->nclients; j++)
			if (client_init(&w->cl[j], 0) < 0)
				die("out of memory");
	}
	return ws;
}

static void
free_workers(struct worker *ws, int nw)
{
	int i, j;

	for (i = 0; i < nw; i++) {
		for (j = 0; j < ws[i].nclients; j++)
			free(ws[i].cl[j].iobuf);
		free(ws[i].cl);
		free(ws[i].samples);
	}
	free(ws);
}

static int
run_rate(void)
{
	int nw = o.threads < 1 ? 1 : o.threads, i;
	struct worker *ws;
	int64_t t0, end;
	double c0;

	if (nw > o.conc)
		nw = o.conc;
	/* Warm-up: the same load for a short while, not counted (the session caches fill,
	 * the proxy's first-connection costs are paid). */
	if (o.warmup > 0) {
		end = now_us() + (int64_t)(o.warmup * 1e6);
		ws = make_workers(nw, o.conc, o.count, end);
		for (i = 0; i < nw; i++)
			pthread_create(&ws[i].th, NULL, worker_run, &ws[i]);
		for (i = 0; i < nw; i++)
			pthread_join(ws[i].th, NULL);
		summary("rate_warmup", ws, nw, o.warmup, 0);
		free_workers(ws, nw);
	}
	t0 = now_us();
	c0 = cpu_s();
	end = t0 + (int64_t)(o.duration * 1e6);
	ws = make_workers(nw, o.conc, o.count, end);
	for (i = 0; i < nw; i++)
		pthread_create(&ws[i].th, NULL, worker_run, &ws[i]);
	for (i = 0; i < nw; i++)
		pthread_join(ws[i].th, NULL);
	summary("rate", ws, nw, (double)(now_us() - t0) / 1e6, cpu_s() - c0);
	free_workers(ws, nw);
	return 0;
}

/* ---- latency and bulk: one tunnel ---------------------------------------------------- */

static void
sort_report(const char *what, uint32_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u32);
	printf("\"%s_p50_us\":%u,\"%s_p99_us\":%u,\"%s_n\":%zu", what, pct(v, n, 0.5), what,
	    pct(v, n, 0.99), what, n);
}

/* One round trip on a plain socket: write payload, read it back. */
static int
plain_rtt(int fd, uint32_t *us)
{
	unsigned char buf[PAYLOAD_MAX];
	size_t got = 0;
	int64_t t0 = now_us();

	if (send(fd, payload, (size_t)o.payload, MSG_NOSIGNAL) != o.payload)
		return -1;
	while (got < (size_t)o.payload) {
		ssize_t n = recv(fd, buf + got, (size_t)o.payload - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	*us = (uint32_t)(now_us() - t0);
	return memcmp(buf, payload, (size_t)o.payload) == 0 ? 0 : -1;
}

/* One round trip through the tunnel. */
static int
tunnel_rtt(struct client *cl, uint32_t *us)
{
	int64_t t0 = now_us(), end = t0 + 5000000;

	cl->ph = P_ECHO;
	cl->echo_got = 0;
	cl->out = payload;
	cl->out_len = (size_t)o.payload;
	cl->out_off = 0;
	for (;;) {
		int rc = client_drive(cl, 0);
		struct pollfd p;
		if (rc < 0)
			return -1;
		if (rc == 1)
			break;
		if (now_us() > end)
			return -1;
		p.fd = cl->fd;
		p.events = client_events(cl);
		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			return -1;
	}
	*us = (uint32_t)(now_us() - t0);
	cl->ph = P_OPEN;
	return 0;
}

static int
run_latency(void)
{
	struct client cl;
	uint32_t *tv = malloc((size_t)o.rounds * sizeof *tv), *dv = malloc((size_t)o.rounds * sizeof *dv);
	int fd, i, one = 1, warm = o.rounds / 10 + 10;

	if (!tv || !dv || client_init(&cl, 1) < 0)
		die("out of memory");
	if (client_open_blocking(&cl, 10000000) < 0)
		die("latency: cannot open a tunnel through the proxy");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&o.target, sizeof o.target) < 0)
		die("latency: cannot reach the echo server directly");
	/* Interleaved, so both paths see the same machine state; warm-up rounds first. */
	for (i = 0; i < warm && !stop_flag; i++) {
		uint32_t us;
		if (tunnel_rtt(&cl, &us) < 0 || plain_rtt(fd, &us) < 0)
			die("latency: echo failed during warm-up");
	}
	for (i = 0; i < o.rounds && !stop_flag; i++) {
		if (tunnel_rtt(&cl, &tv[i]) < 0 || plain_rtt(fd, &dv[i]) < 0)
			die("latency: echo failed");
	}
	printf("{\"mode\":\"latency\",\"label\":\"%s\",\"payload\":%d,", o.label, o.payload);
	sort_report("tunnel", tv, (size_t)i);
	printf(",");
	sort_report("direct", dv, (size_t)i);
	printf(",\"added_p50_us\":%d}\n", (int)pct(tv, (size_t)i, 0.5) - (int)pct(dv, (size_t)i, 0.5));
	fflush(stdout);
	close(fd);
	client_close(&cl);
	free(cl.iobuf);
	free(tv);
	free(dv);
	return 0;
}

/* Bulk: write without pause through one tunnel to the echo server and read everything
 * back; the echoed bytes per second is what crossed the proxy in each direction. */
static int
run_bulk(void)
{
	struct client cl;
	int64_t t0, tw, end;
	uint64_t rx0 = 0;
	double c0 = 0;
	int measuring = 0;

	if (client_init(&cl, 1) < 0)
		die("out of memory");
	if (client_open_blocking(&cl, 10000000) < 0)
		die("bulk: cannot open a tunnel through the proxy");
	t0 = now_us();
	tw = t0 + (int64_t)(o.warmup * 1e6);
	end = tw + (int64_t)(o.duration * 1e6);
	for (;;) {
		struct pollfd p = { .fd = cl.fd, .events = client_events(&cl) };
		int64_t t = now_us();
		if (!measuring && t >= tw) {
			measuring = 1;
			rx0 = cl.rx;
			tw = t;
			c0 = cpu_s();
		}
		if (t >= end || stop_flag)
			break;
		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		if (client_drive(&cl, 1) < 0)
			die("bulk: the tunnel failed");
	}
	{
		double el = (double)(now_us() - tw) / 1e6;
		double mb = (double)(cl.rx - rx0) / 1e6;
		printf("{\"mode\":\"bulk\",\"label\":\"%s\",\"bytes_each_way\":%llu,\"elapsed_s\":%.3f,"
		    "\"mb_per_s\":%.1f,\"loadgen_cpu_s\":%.3f}\n", o.label,
		    (unsigned long long)(cl.rx - rx0), el, el > 0 ? mb / el : 0.0, cpu_s() - c0);
	}
	fflush(stdout);
	client_drop(&cl);
	free(cl.iobuf);
	return 0;
}

/* ---- ping: idle tunnels with a trickle of echoes, one epoll loop ---------------------- */

/* Issue 18's figure: N tunnels held open and idle, each sending one echo every --period
 * seconds, the sends spread evenly over the period (tunnel i at i*period/N), so the proxy
 * sees a steady trickle of bytes on connections that were quiet for seconds. Everything
 * runs in one thread on epoll: a reply wakes the generator at once whatever the number of
 * sockets (no poll set rebuilt, no timer tick between a reply and its reading), and the
 * round trip is timed from just before the request record is written to the moment the
 * whole echo has been decrypted. Steps grow the same set of tunnels (100, then up to 1,000,
 * ...): each step opens what is missing (full handshakes, --conc at a time), prints a
 * "ping_open" line, waits for SIGUSR1 when --wait-go is given (the harness measures the
 * proxy's memory first), pings for one period not counted (every tunnel then has been
 * quiet for a whole period before its first counted echo) and --seconds counted, and
 * prints a "ping" line. --direct does the same on plain TCP to the echo server: the floor
 * of the generator, the echo server and the kernel, with no proxy. */

#define PING_MAX 20000           /* tunnels per run (each needs one fd here) */
#define PING_OPEN_S 300          /* opening one step is bounded by this */
#define PING_DRAIN_S 10          /* replies still awaited after the window, at most */

struct ptun {
	struct client cl;            /* the TLS client (only fd/echo fields when direct) */
	int64_t t_send;              /* when the outstanding ping was written; 0: none */
	int64_t due;                 /* when it was scheduled */
	uint32_t ev;                 /* events registered with epoll */
	int reg, dead;
};

static struct ptun *pt;
static int pt_ep = -1;
static long pt_died;             /* tunnels the proxy closed while held */

static uint32_t
pt_want(const struct ptun *t)
{
	short ev;

	if (o.direct)
		return EPOLLIN;
	ev = client_events(&t->cl);
	return (ev & POLLIN ? EPOLLIN : 0) | (ev & POLLOUT ? EPOLLOUT : 0);
}

static void
pt_kill(struct ptun *t)
{
	if (t->reg)
		epoll_ctl(pt_ep, EPOLL_CTL_DEL, t->cl.fd, NULL);
	t->reg = 0;
	client_drop(&t->cl);
	t->dead = 1;
	t->t_send = 0;
}

/* Register or update the tunnel's interest (one epoll_ctl only when it changed). */
static int
pt_arm(struct ptun *t)
{
	struct epoll_event ev;

	ev.events = pt_want(t);
	ev.data.u64 = (uint64_t)(t - pt);
	if (t->reg && ev.events == t->ev)
		return 0;
	if (epoll_ctl(pt_ep, t->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->cl.fd, &ev) < 0)
		return -1;
	t->reg = 1;
	t->ev = ev.events;
	return 0;
}

/* Direct: read what the echo server sent back. 1 when the whole echo is in. */
static int
direct_drive(struct ptun *t)
{
	struct client *cl = &t->cl;

	for (;;) {
		ssize_t n = recv(cl->fd, cl->echo + cl->echo_got, sizeof cl->echo - cl->echo_got, 0);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (cl->ph != P_ECHO || cl->echo_got + (size_t)n > (size_t)o.payload)
			return -1;
		cl->echo_got += (size_t)n;
		if (cl->echo_got == (size_t)o.payload)
			return memcmp(cl->echo, payload, (size_t)o.payload) == 0 ? 1 : -1;
	}
}

/* After driving tunnel t's client (rc from client_drive/direct_drive): a completed echo
 * puts it back to open and idle, a failure (or no poll registration) kills it. Returns rc,
 * or -1 when the tunnel is dead. */
static int
pt_settle(struct ptun *t, int rc)
{
	if (rc == 1) {
		t->cl.ph = P_OPEN;
		t->cl.out_len = t->cl.out_off = 0;
	}
	if (rc < 0 || pt_arm(t) < 0) {
		pt_kill(t);
		return -1;
	}
	return rc;
}

/* An event on tunnel t: 1 when its echo (the opening check or a ping) completed, 0 to
 * wait, -1 when the tunnel failed (it is then dead). */
static int
pt_event(struct ptun *t)
{
	int rc = o.direct ? direct_drive(t) : client_drive(&t->cl, 0);

	return pt_settle(t, rc);
}

/* Write one 64-byte (--payload) echo request on an open tunnel. 0: sent, the echo is
 * awaited; 1: the echo is already back (a fast proxy answers while the request is being
 * flushed); -1: the tunnel failed (it is then dead). */
static int
pt_ping(struct ptun *t)
{
	struct client *cl = &t->cl;
	int rc;

	cl->ph = P_ECHO;
	cl->echo_got = 0;
	cl->out = payload;
	cl->out_len = (size_t)o.payload;
	cl->out_off = 0;
	t->t_send = now_us();
	if (o.direct) {
		/* a small send on an idle socket goes whole */
		if (send(cl->fd, payload, (size_t)o.payload, MSG_NOSIGNAL) != o.payload) {
			pt_kill(t);
			return -1;
		}
		return 0;
	}
	rc = client_drive(cl, 0);
	return pt_settle(t, rc);
}

/* Direct: a plain connection to the echo server, checked with one echo. */
static int
pt_open_direct(struct ptun *t)
{
	int one = 1;
	uint32_t us;

	t->cl.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->cl.fd < 0)
		return -1;
	setsockopt(t->cl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(t->cl.fd, (const struct sockaddr *)&o.target, sizeof o.target) < 0 ||
	    plain_rtt(t->cl.fd, &us) < 0 ||
	    fcntl(t->cl.fd, F_SETFL, fcntl(t->cl.fd, F_GETFL) | O_NONBLOCK) < 0) {
		client_drop(&t->cl);
		return -1;
	}
	t->cl.ph = P_OPEN;
	return pt_arm(t);
}

/* Open tunnels from..want-1 (each: TCP + full handshake + CONNECT + one echo), at most
 * o.conc at once; a failed attempt is retried on the same slot, up to a bound. Returns
 * the failed attempts; slots that could not be opened are left dead. */
static long
ping_open(long from, long want)
{
	int64_t end = now_us() + PING_OPEN_S * 1000000LL;
	long next = from, inflight = 0, failed = 0, limit = (want - from) / 10 + 100, i;
	struct epoll_event evs[256];

	for (i = from; i < want; i++)
		pt[i].cl.fd = -1;
	if (o.direct) {
		for (i = from; i < want && !stop_flag; i++)
			while (pt_open_direct(&pt[i]) < 0)
				if (++failed > limit) {
					pt[i].dead = 1;
					break;
				}
		return failed;
	}
	for (;;) {
		int n, k;
		int64_t t = now_us();

		while (inflight < o.conc && next < want) {
			struct ptun *p = &pt[next++];
			if (client_init(&p->cl, 0) < 0)
				die("out of memory");
			if (client_start(&p->cl, 0) < 0 || pt_arm(p) < 0) {
				pt_kill(p);
				failed++;
				continue;
			}
			inflight++;
		}
		if (inflight == 0 || stop_flag || t >= end)
			break;
		n = epoll_wait(pt_ep, evs, 256, (int)((end - t) / 1000) + 1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (k = 0; k < n; k++) {
			struct ptun *p = &pt[evs[k].data.u64];
			int opening = p->cl.ph != P_OPEN, rc;
			if (p->dead)
				continue;
			rc = pt_event(p);
			if (!opening) {
				if (rc < 0)
					pt_died++;    /* an open tunnel closed by the proxy */
				continue;
			}
			if (rc == 0)
				continue;
			if (rc == 1) {
				inflight--;
				continue;
			}
			/* failed: retry the same slot while the bound allows */
			failed++;
			p->dead = 0;
			if (failed <= limit && client_start(&p->cl, 0) == 0 && pt_arm(p) == 0)
				continue;
			pt_kill(p);
			inflight--;
		}
	}
	/* Attempts still in flight at the deadline are given up. */
	for (i = from; i < want; i++)
		if (!pt[i].dead && pt[i].cl.ph != P_OPEN)
			pt_kill(&pt[i]);
	return failed;
}

/* epoll_wait with a timeout in microseconds (epoll_pwait2, Linux 5.11) so a ping is sent
 * when it is due, not up to a millisecond later; epoll_wait's milliseconds otherwise. */
static int
pt_wait(struct epoll_event *evs, int max, int64_t timeout_us)
{
	static int no_pwait2;

	if (timeout_us < 0)
		timeout_us = 0;
#ifdef SYS_epoll_pwait2
	if (!no_pwait2) {
		struct timespec ts = { (time_t)(timeout_us / 1000000), (long)(timeout_us % 1000000) * 1000 };
		long r = syscall(SYS_epoll_pwait2, pt_ep, evs, max, &ts, NULL, (size_t)8);
		if (r >= 0 || errno != ENOSYS)
			return (int)r;
		no_pwait2 = 1;
	}
#endif
	return epoll_wait(pt_ep, evs, max, (int)((timeout_us + 999) / 1000));
}

/* Tunnels among 0..n-1 still open. */
static long
ping_alive(long n)
{
	long i, a = 0;

	for (i = 0; i < n; i++)
		a += !pt[i].dead && pt[i].cl.fd >= 0;
	return a;
}

static void
pct_report(const char *what, uint32_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u32);
	printf("\"%s_p50_us\":%u,\"%s_p90_us\":%u,\"%s_p99_us\":%u,\"%s_p999_us\":%u,"
	    "\"%s_max_us\":%u", what, pct(v, n, 0.5), what, pct(v, n, 0.9), what, pct(v, n, 0.99),
	    what, pct(v, n, 0.999), what, n ? v[n - 1] : 0);
}

/* One measured step over tunnels 0..n-1 (dead ones are skipped). */
static void
ping_step(long n)
{
	int64_t period = (int64_t)(o.period * 1e6);
	int64_t base = now_us(), win0 = base + period, win1 = win0 + (int64_t)(o.seconds * 1e6);
	size_t cap = (size_t)((double)n * (o.seconds / o.period + 2.0)) + 16, nrtt = 0, nlag = 0;
	uint32_t *rtt = malloc(cap * sizeof *rtt), *lag = malloc(cap * sizeof *lag);
	long skipped = 0, lost = 0, outstanding = 0, unanswered = 0, i;
	uint64_t j = 0;
	double c0 = cpu_s();
	struct epoll_event evs[512];

	if (!rtt || !lag)
		die("out of memory");
	for (;;) {
		int64_t t = now_us(), due;
		int k, m, rc;

		/* Start every ping now due; tunnel j % n is due at base + j * period / n. */
		for (;;) {
			struct ptun *p;
			due = base + (int64_t)(j * (uint64_t)period / (uint64_t)n);
			if (due > t || due >= win1)
				break;
			p = &pt[j++ % (uint64_t)n];
			if (p->dead)
				continue;
			if (p->t_send) {         /* the previous echo is still out: a whole period */
				skipped += due >= win0;
				continue;
			}
			rc = pt_ping(p);
			if (rc < 0) {
				lost += due >= win0;
				pt_died++;
				continue;
			}
			p->due = due;
			if (due >= win0 && nlag < cap)
				lag[nlag++] = (uint32_t)(p->t_send - due);
			if (rc == 1) {
				if (due >= win0 && nrtt < cap)
					rtt[nrtt++] = (uint32_t)(now_us() - p->t_send);
				p->t_send = 0;
			} else {
				outstanding++;
			}
		}
		if (due >= win1 && outstanding == 0)
			break;
		if (stop_flag || t >= win1 + PING_DRAIN_S * 1000000LL)
			break;
		/* Sleep until the next ping is due, or until a reply comes. */
		m = pt_wait(evs, 512, due < win1 ? due - t : win1 + PING_DRAIN_S * 1000000LL - t);
		if (m < 0 && errno != EINTR)
			die("epoll_wait");
		for (k = 0; k < m; k++) {
			struct ptun *p = &pt[evs[k].data.u64];
			int64_t sent;
			if (p->dead)
				continue;
			sent = p->t_send;
			rc = pt_event(p);
			if (rc == 1 && sent) {
				uint32_t us = (uint32_t)(now_us() - sent);
				if (p->due >= win0 && nrtt < cap)
					rtt[nrtt++] = us;
				p->t_send = 0;
				outstanding--;
			} else if (rc < 0) {
				pt_died++;
				if (sent) {        /* the echo was lost with the tunnel */
					outstanding--;
					lost += p->due >= win0;
				}
			}
		}
	}
	/* Echoes never answered: those tunnels are given up (their reply would arrive in the
	 * middle of the next step's echo). */
	for (i = 0; i < n; i++) {
		if (!pt[i].dead && pt[i].t_send) {
			unanswered += pt[i].due >= win0;
			pt_kill(&pt[i]);
		}
	}
	printf("{\"mode\":\"ping\",\"label\":\"%s\",\"direct\":%d,\"tunnels\":%ld,\"alive\":%ld,"
	    "\"period_s\":%.3f,\"seconds\":%.3f,\"samples\":%zu,", o.label, o.direct, n,
	    ping_alive(n), o.period, o.seconds, nrtt);
	pct_report("rtt", rtt, nrtt);
	printf(",");
	pct_report("lag", lag, nlag);
	printf(",\"skipped\":%ld,\"lost\":%ld,\"unanswered\":%ld,\"loadgen_cpu_s\":%.3f}\n",
	    skipped, lost, unanswered, cpu_s() - c0);
	fflush(stdout);
	free(rtt);
	free(lag);
}

static int
run_ping(void)
{
	long steps[16], nsteps = 0, have = 0, i;
	const char *s = o.steps;
	sigset_t go;

	while (*s && nsteps < 16) {
		char *e;
		long v = strtol(s, &e, 10);
		if (e == s || v < 1 || v > PING_MAX || (nsteps && v <= steps[nsteps - 1]) ||
		    (*e && *e != ','))
			die("--steps: increasing counts, comma-separated, each at most 20000");
		steps[nsteps++] = v;
		s = *e ? e + 1 : e;
	}
	if (nsteps == 0 || *s)
		die("--steps: at most 16 counts");
	/* The kernel may defer a timer by its slack (50 us by default); pings are timed tighter. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	pt = calloc((size_t)steps[nsteps - 1], sizeof *pt);
	pt_ep = epoll_create1(EPOLL_CLOEXEC);
	if (!pt || pt_ep < 0)
		die("out of memory");
	sigemptyset(&go);
	sigaddset(&go, SIGUSR1);
	if (o.wait_go)
		sigprocmask(SIG_BLOCK, &go, NULL);
	for (i = 0; i < nsteps && !stop_flag; i++) {
		int64_t t0 = now_us();
		long failed = ping_open(have, steps[i]);
		double el = (double)(now_us() - t0) / 1e6;

		printf("{\"mode\":\"ping_open\",\"label\":\"%s\",\"direct\":%d,\"tunnels\":%ld,"
		    "\"alive\":%ld,\"opened\":%ld,\"failed\":%ld,\"died\":%ld,\"elapsed_s\":%.3f,"
		    "\"per_s\":%.1f}\n", o.label, o.direct, steps[i], ping_alive(steps[i]),
		    steps[i] - have, failed, pt_died, el, el > 0 ? (double)(steps[i] - have) / el : 0.0);
		fflush(stdout);
		have = steps[i];
		if (o.wait_go) {
			struct timespec ts = { 600, 0 };
			if (sigtimedwait(&go, NULL, &ts) < 0)
				die("no SIGUSR1 from the harness within 600 s");
		}
		if (o.seconds > 0)
			ping_step(have);
	}
	printf("{\"mode\":\"ping_hold\",\"label\":\"%s\",\"held\":%ld,\"ready\":1}\n", o.label,
	    ping_alive(have));
	fflush(stdout);
	{
		int64_t end = now_us() + (int64_t)(o.hold * 1e6);
		while (!stop_flag && now_us() < end)
			poll(NULL, 0, 50);
	}
	for (i = 0; i < have; i++) {
		if (!pt[i].dead)
			client_drop(&pt[i].cl);
		free(pt[i].cl.iobuf);
	}
	free(pt);
	close(pt_ep);
	return 0;
}

/* ---- echo server ---------------------------------------------------------------------- */

#define ECHO_BUF 65536

struct echo_conn {
	int fd;
	size_t off, len;             /* bytes of buf still to write back */
	unsigned char *buf;          /* allocated at the first byte (idle tunnels stay small) */
};

static void
echo_close(int ep, struct echo_conn *e)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	free(e->buf);
	free(e);
}

static int
run_echo(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	struct epoll_event ev, evs[256];
	int64_t end = now_us() + (int64_t)(o.duration * 1e6);

	if (lfd < 0 || ep < 0)
		die("echo: socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (const struct sockaddr *)&o.listen, sizeof o.listen) < 0 || listen(lfd, 4096) < 0)
		die("echo: cannot listen");
	getsockname(lfd, (struct sockaddr *)&a, &al);
	printf("{\"echo_port\":%d}\n", ntohs(a.sin_port));
	fflush(stdout);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (!stop_flag && now_us() < end) {
		int n = epoll_wait(ep, evs, 256, 200), i;
		for (i = 0; i < n; i++) {
			struct echo_conn *e = evs[i].data.ptr;
			if (e == NULL) {
				int k;
				for (k = 0; k < 256; k++) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					e = calloc(1, sizeof *e);
					if (!e) {
						close(fd);
						continue;
					}
					e->fd = fd;
					ev.events = EPOLLIN;
					ev.data.ptr = e;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r;
				if (e->off < e->len) {
					r = send(e->fd, e->buf + e->off, e->len - e->off, MSG_NOSIGNAL);
					if (r < 0 && errno == EAGAIN) {
						ev.events = EPOLLOUT;  /* stop reading until written back */
						ev.data.ptr = e;
						epoll_ctl(ep, EPOLL_CTL_MOD, e->fd, &ev);
						break;
					}
					if (r <= 0) {
						echo_close(ep, e);
						break;
					}
					e->off += (size_t)r;
					continue;
				}
				if (evs[i].events & EPOLLOUT) {
					ev.events = EPOLLIN;
					ev.data.ptr = e;
					epoll_ctl(ep, EPOLL_CTL_MOD, e->fd, &ev);
					evs[i].events = EPOLLIN;
				}
				if (!e->buf && !(e->buf = malloc(ECHO_BUF))) {
					echo_close(ep, e);
					break;
				}
				r = recv(e->fd, e->buf, ECHO_BUF, 0);
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				if (r <= 0) {
					echo_close(ep, e);
					break;
				}
				e->off = 0;
				e->len = (size_t)r;
			}
		}
	}
	close(lfd);
	return 0;
}

/* ---- udp: datagrams over a WSS /v1/udp association, and direct ----------------------- */

#define UDP_WINDOW_MAX 64
#define UDP_LOST_US 300000       /* silence after which what is in flight counts as lost */

static unsigned char wsframes[UDP_WINDOW_MAX * (PAYLOAD_MAX + 8)];
static size_t wsframe_len;      /* one masked binary frame of o.payload bytes */

static void
build_frames(void)
{
	static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	unsigned char *f = wsframes;
	size_t i, k;

	f[0] = 0x82; /* FIN, binary */
	if (o.payload < 126) {
		f[1] = (unsigned char)(0x80 | o.payload);
		k = 2;
	} else {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(o.payload >> 8);
		f[3] = (unsigned char)o.payload;
		k = 4;
	}
	memcpy(f + k, key, 4);
	for (i = 0; i < (size_t)o.payload; i++)
		f[k + 4 + i] = payload[i] ^ key[i & 3];
	wsframe_len = k + 4 + (size_t)o.payload;
	for (i = 1; i < UDP_WINDOW_MAX; i++)
		memcpy(wsframes + i * wsframe_len, wsframes, wsframe_len);
}

/* Queue n frames (at most UDP_WINDOW_MAX) when the previous ones are all in the engine. */
static int
udp_queue(struct client *cl, int n)
{
	if (cl->out_off < cl->out_len || n <= 0)
		return 0;
	if (n > UDP_WINDOW_MAX)
		n = UDP_WINDOW_MAX;
	cl->out = wsframes;
	cl->out_len = (size_t)n * wsframe_len;
	cl->out_off = 0;
	return n;
}

/* Drive the association and wait for the socket at most ms. -1 when it failed. */
static int
udp_drive(struct client *cl, int ms)
{
	struct pollfd p;

	if (client_drive(cl, 0) < 0)
		return -1;
	p.fd = cl->fd;
	p.events = client_events(cl);
	if (poll(&p, 1, ms) < 0 && errno != EINTR)
		return -1;
	return client_drive(cl, 0) < 0 ? -1 : 0;
}

static int
direct_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), big = 4 << 20;

	if (fd < 0 || connect(fd, (const struct sockaddr *)&o.target, sizeof o.target) < 0)
		die("udp: cannot reach the echo server directly");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	return fd;
}

/* Datagrams/s with w in flight, for o.duration after o.warmup: through the association
 * (cl) or, with cl NULL, directly on fd. *lost: datagrams given up on. */
static double
udp_rate(struct client *cl, int fd, int w, long *lost)
{
	unsigned char buf[PAYLOAD_MAX + 64];
	int64_t t0 = now_us(), tw = t0 + (int64_t)(o.warmup * 1e6), end, last;
	uint64_t got = 0, seen = wsr.msgs, count = 0;
	int inflight = 0, credits = w, measuring = 0, k;

	end = tw + (int64_t)(o.duration * 1e6);
	last = t0;
	*lost = 0;
	while (!stop_flag) {
		int64_t t = now_us();
		if (!measuring && t >= tw) {
			measuring = 1;
			count = 0;
			tw = t;
		}
		if (t >= end)
			break;
		if (cl) {
			k = udp_queue(cl, credits);
			credits -= k;
			inflight += k;
			if (udp_drive(cl, 50) < 0)
				die("udp: the association failed");
			got = wsr.msgs - seen;
			seen = wsr.msgs;
		} else {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			for (; credits > 0; credits--, inflight++)
				if (send(fd, payload, (size_t)o.payload, MSG_DONTWAIT) < 0)
					break;
			got = 0;
			if (poll(&p, 1, 50) > 0)
				while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
					got++;
		}
		if (got) {
			inflight -= (int)got;
			credits += (int)got;
			count += got;
			last = now_us();
		} else if (inflight > 0 && now_us() - last > UDP_LOST_US) {
			*lost += inflight;
			credits += inflight;
			inflight = 0;
			last = now_us();
		}
	}
	return (double)count / ((double)(now_us() - tw) / 1e6);
}

static int
run_udp(void)
{
	struct client cl;
	unsigned char buf[PAYLOAD_MAX + 64];
	uint32_t *tv = malloc((size_t)o.rounds * sizeof *tv), *dv = malloc((size_t)o.rounds * sizeof *dv);
	int64_t end, t0;
	int fd, i, n = 0, w = o.conc > UDP_WINDOW_MAX ? UDP_WINDOW_MAX : o.conc;
	long lost_t, lost_d, lost_rtt = 0;
	double rt, rd;

	if (!tv || !dv || client_init(&cl, 1) < 0)
		die("out of memory");
	build_frames();
	if (client_start(&cl, 0) < 0)
		die("udp: cannot connect to the relay");
	for (end = now_us() + 10000000; cl.ph != P_OPEN; ) {
		struct pollfd p = { .fd = cl.fd, .events = client_events(&cl) };
		if (now_us() > end || stop_flag || (poll(&p, 1, 100) < 0 && errno != EINTR) ||
		    client_drive(&cl, 0) < 0)
			die("udp: cannot open the association (101)");
	}
	fd = direct_socket();
	/* Round trips, one datagram at a time, interleaved with the direct path. */
	for (i = 0; i < o.rounds + o.rounds / 10 && !stop_flag; i++) {
		uint64_t want = wsr.msgs + 1;
		uint32_t ut, ud;
		udp_queue(&cl, 1);
		t0 = now_us();
		while (wsr.msgs < want && now_us() - t0 < 2000000)
			if (udp_drive(&cl, 100) < 0)
				die("udp: the association failed");
		ut = (uint32_t)(now_us() - t0);
		t0 = now_us();
		if (send(fd, payload, (size_t)o.payload, 0) != o.payload)
			die("udp: direct send failed");
		{
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ud = poll(&p, 1, 2000) > 0 && recv(fd, buf, sizeof buf, 0) == o.payload ?
			    (uint32_t)(now_us() - t0) : 0;
		}
		if (wsr.msgs < want || ud == 0) {
			lost_rtt++;
			wsr.msgs = want; /* a late echo then counts for the next round */
			continue;
		}
		if (i >= o.rounds / 10) { /* the first tenth warms up */
			tv[n] = ut;
			dv[n++] = ud;
		}
	}
	rt = udp_rate(&cl, -1, w, &lost_t);
	rd = udp_rate(NULL, fd, w, &lost_d);
	printf("{\"mode\":\"udp\",\"label\":\"%s\",\"payload\":%d,\"window\":%d,", o.label,
	    o.payload, w);
	sort_report("tunnel", tv, (size_t)n);
	printf(",");
	sort_report("direct", dv, (size_t)n);
	printf(",\"added_p50_us\":%d,\"rtt_lost\":%ld,\"tunnel_dgrams_per_s\":%.0f,"
	    "\"direct_dgrams_per_s\":%.0f,\"tunnel_lost\":%ld,\"direct_lost\":%ld}\n",
	    (int)pct(tv, (size_t)n, 0.5) - (int)pct(dv, (size_t)n, 0.5), lost_rtt, rt, rd, lost_t,
	    lost_d);
	fflush(stdout);
	close(fd);
	client_close(&cl);
	free(cl.iobuf);
	free(tv);
	free(dv);
	return 0;
}

/* A UDP echo: every datagram back to its sender, until SIGTERM or --duration. */
static int
run_udpecho(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), big = 8 << 20;
	struct sockaddr_in a, peer;
	socklen_t al = sizeof a, pl;
	unsigned char buf[65536];
	int64_t end = now_us() + (int64_t)(o.duration * 1e6);

	if (fd < 0 || bind(fd, (const struct sockaddr *)&o.listen, sizeof o.listen) < 0)
		die("udpecho: cannot bind");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	getsockname(fd, (struct sockaddr *)&a, &al);
	printf("{\"echo_port\":%d}\n", ntohs(a.sin_port));
	fflush(stdout);
	while (!stop_flag && now_us() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;
		if (poll(&p, 1, 200) <= 0)
			continue;
		pl = sizeof peer;
		r = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&peer, &pl);
		if (r >= 0)
			sendto(fd, buf, (size_t)r, MSG_DONTWAIT, (const struct sockaddr *)&peer, pl);
	}
	close(fd);
	return 0;
}

/* ---- command line --------------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen echo|rate|bulk|latency|ping|udpecho|udp [--proxy 127.0.0.1:P]\n"
	    "       [--target 127.0.0.1:P]\n"
	    "       [--listen 127.0.0.1:P] [--conc C] [--threads N] [--duration S] [--warmup S]\n"
	    "       [--count N] [--rounds R] [--hold S] [--payload BYTES] [--resume] [--label X]\n"
	    "       [--steps N1,N2,..] [--period S] [--seconds S] [--wait-go] [--direct]\n"
	    "       [--target-host NAME]\n"
	    "       credentials: LOADGEN_AUTH='Basic ...' or 'Bearer ...' in the environment\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int i;
	struct sigaction sa;
	const char *target_host = NULL;

	if (argc < 2)
		usage();
	o.mode = argv[1];
	o.label = "";
	o.conc = 32;
	o.threads = 1;
	o.duration = 10;
	o.warmup = 1;
	o.count = 100000000;
	o.rounds = 2000;
	o.hold = 120;
	o.payload = 64;
	o.steps = "100,1000,9000";
	o.period = 5;
	o.seconds = 30;
	parse_addr("127.0.0.1:0", &o.listen);
	for (i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(k, "--resume") == 0 || strcmp(k, "--wait-go") == 0 ||
		    strcmp(k, "--direct") == 0) {
			if (k[2] == 'r')
				o.resume = 1;
			else if (k[2] == 'w')
				o.wait_go = 1;
			else
				o.direct = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(k, "--proxy") == 0) {
			if (parse_addr(v, &o.proxy) < 0)
				die("--proxy: a 127.x.y.z:port address");
		} else if (strcmp(k, "--target") == 0) {
			if (parse_addr(v, &o.target) < 0 || strlen(v) >= sizeof o.target_text)
				die("--target: a 127.x.y.z:port address");
			snprintf(o.target_text, sizeof o.target_text, "%s", v);
		} else if (strcmp(k, "--target-host") == 0) {
			target_host = v;
		} else if (strcmp(k, "--listen") == 0) {
			if (parse_addr(v, &o.listen) < 0)
				die("--listen: a 127.x.y.z:port address");
		} else if (strcmp(k, "--conc") == 0) {
			o.conc = atoi(v);
		} else if (strcmp(k, "--threads") == 0) {
			o.threads = atoi(v);
		} else if (strcmp(k, "--duration") == 0) {
			o.duration = atof(v);
		} else if (strcmp(k, "--warmup") == 0) {
			o.warmup = atof(v);
		} else if (strcmp(k, "--count") == 0) {
			o.count = atol(v);
		} else if (strcmp(k, "--rounds") == 0) {
			o.rounds = atoi(v);
		} else if (strcmp(k, "--hold") == 0) {
			o.hold = atof(v);
		} else if (strcmp(k, "--payload") == 0) {
			o.payload = atoi(v);
		} else if (strcmp(k, "--steps") == 0) {
			o.steps = v;
		} else if (strcmp(k, "--period") == 0) {
			o.period = atof(v);
		} else if (strcmp(k, "--seconds") == 0) {
			o.seconds = atof(v);
		} else if (strcmp(k, "--label") == 0) {
			o.label = v;
		} else {
			usage();
		}
	}
	if (o.conc < 1 || o.conc > MAX_CLIENTS || o.payload < 1 || o.payload > PAYLOAD_MAX ||
	    o.rounds < 1 || o.rounds > 10000000 || o.duration <= 0 || o.duration > 3600 ||
	    o.hold < 0 || o.hold > 3600 || o.period < 0.01 || o.period > 600 || o.seconds < 0 ||
	    o.seconds > 3600 || o.warmup < 0 || o.warmup > 600 || o.count < 1 ||
	    strchr(o.label, '"') || strchr(o.label, '\\'))
		die("an option is out of range");
	/* --target-host: the CONNECT request names the target by this host name (the proxy
	 * resolves it; it must resolve to --target's address) instead of the address. */
	if (target_host && (strlen(target_host) > 40 || strpbrk(target_host, " :\r\n\"\\") ||
	    snprintf(o.target_text, sizeof o.target_text, "%s:%d", target_host,
		ntohs(o.target.sin_port)) >= (int)sizeof o.target_text))
		die("--target-host: a host name of at most 40 characters");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (strcmp(o.mode, "echo") == 0)
		return run_echo();
	if (strcmp(o.mode, "udpecho") == 0)
		return run_udpecho();
	o.udp = strcmp(o.mode, "udp") == 0;
	if ((!o.proxy.sin_port && !(o.direct && strcmp(o.mode, "ping") == 0)) || !o.target.sin_port)
		die("--proxy and --target are required");
	o.auth = getenv("LOADGEN_AUTH");
	if (o.auth && (strchr(o.auth, '\r') || strchr(o.auth, '\n')))
		die("LOADGEN_AUTH: one line");
	build_request();
	if (strcmp(o.mode, "rate") == 0)
		return run_rate();
	if (strcmp(o.mode, "ping") == 0)
		return run_ping();
	if (strcmp(o.mode, "latency") == 0)
		return run_latency();
	if (strcmp(o.mode, "bulk") == 0)
		return run_bulk();
	if (o.udp)
		return run_udp();
	usage();
	return 2;
}

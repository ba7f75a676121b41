/*
 * metrics.c — counters, gauges and the Prometheus text renderer. See metrics.h.
 *
 * Everything lives in one static struct updated by the loop thread, plus two atomics
 * written by the registration thread. The renderer writes one family after another into
 * the caller's buffer and gives up (returns 0) rather than emit a cut exposition.
 */
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "shm.h"

#define LABEL_MAX (TARGET_HOST_MAX + 9) /* "[" host "]:" 65535 NUL */
#define STR_(x) #x
#define STR(x) STR_(x)

enum {
	AUTH_MISSING, AUTH_UNSUPPORTED, AUTH_BAD_PASSWORD, AUTH_TOKEN_INVALID, AUTH_TOKEN_EXPIRED,
	AUTH_TOKEN_REVOKED, AUTH_CA_CHANGED, AUTH_OTHER, AUTH_REASONS
};

/* The reason label for each AUTH_*, in order. */
static const char *const auth_names[AUTH_REASONS] = { "missing", "unsupported_scheme",
	"bad_password", "token_invalid", "token_expired", "token_revoked", "ca_changed", "other" };

/* What conn.c passes (auth.fail log reasons and token codes) -> AUTH_*. */
static const struct {
	const char *reason;
	int id;
} auth_map[] = {
	{ "missing", AUTH_MISSING }, { "auth_required", AUTH_MISSING },
	{ "unsupported scheme", AUTH_UNSUPPORTED }, { "bad password", AUTH_BAD_PASSWORD },
	{ "token_invalid", AUTH_TOKEN_INVALID }, { "token_expired", AUTH_TOKEN_EXPIRED },
	{ "token_revoked", AUTH_TOKEN_REVOKED }, { "ca_changed", AUTH_CA_CHANGED },
};

static const char *const listener_names[METRICS_LISTENERS] = { "https", "http", "admin" };
static const char *const reg_names[METRICS_REG_STATES] = { "unconfigured", "registering",
	"retrying", "registered" };

struct series {
	char label[LABEL_MAX]; /* "host:port" / "[v6]:port" */
	uint64_t open, total;
};

/* One worker's counters and gauges: its row of the shared region (shm.h), written by that
 * worker only, read by any worker that renders a scrape. Words are stored and loaded with
 * relaxed atomics (SET/GET): a scrape sees each value whole (counters only grow). A target
 * series is published by writing its label first and then ntargets (release): a reader
 * looks only at labels below ntargets (acquire), which never change again. */
struct slot {
	uint64_t pid;
	uint64_t conn_open[METRICS_LISTENERS], conn_total[METRICS_LISTENERS], refused;
	uint64_t ntargets;                             /* series in use (later ones: "other") */
	struct series target[METRICS_TARGETS_MAX + 1]; /* [METRICS_TARGETS_MAX] = "other" */
	uint64_t bytes_up, bytes_down, tls_fail, auth_fail[AUTH_REASONS], tokens, bans;
	uint64_t reload_ok, reload_failed;
	int64_t cert_not_after;          /* 0: no certificate yet */
	uint64_t cert_operator;
	uint64_t cert_reload_ok, cert_reload_failed;
	uint64_t udp_datagrams[2], udp_dropped[2]; /* UDP associations: [0] up, [1] down */
};

/* Once for the relay: its start, and the registration (with workers, registration runs
 * in the supervisor, whose thread writes it). */
struct common {
	int64_t started;
	int reg_state;          /* enum metrics_reg */
	uint64_t reg_failures;
};

#define SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define ADD(field, n) SET(field, GET(field) + (n))

static struct slot local;          /* without a shared region: this process's only row */
static struct common local_common;
static struct slot *m = &local;    /* this process's row */

/* The shared part's common block when the region has one of our size, else ours. */
static struct common *
common(void)
{
	struct common *c = shm_shared(SHM_METRICS);

	return c && shm_shared_size(SHM_METRICS) >= sizeof *c ? c : &local_common;
}

/* Row w of the region (NULL when there is no region of our layout). */
static struct slot *
row(int w)
{
	return shm_row_size(SHM_METRICS) >= sizeof(struct slot) ? shm_row(SHM_METRICS, w) : NULL;
}

/* see metrics.h */
void
metrics_plan(void)
{
	shm_plan(SHM_METRICS, sizeof(struct slot), sizeof(struct common));
}

/* see metrics.h */
void
metrics_reset(void)
{
	memset(&local, 0, sizeof local);
	memset(&local_common, 0, sizeof local_common);
	m = &local;
}

/* Gauges of a row to 0: what its worker held is gone (counters stay). */
static void
zero_gauges(struct slot *s)
{
	int i;

	for (i = 0; i < METRICS_LISTENERS; i++)
		SET(s->conn_open[i], 0);
	for (i = 0; i <= METRICS_TARGETS_MAX; i++)
		SET(s->target[i].open, 0);
}

/* see metrics.h */
void
metrics_start(time_t started, long pid)
{
	struct common *c = common();
	int64_t zero = 0;

	m = row(shm_self());
	if (m == NULL)
		m = &local;
	if (m != &local) { /* set up before the start (tls.c): this process's own */
		SET(m->cert_operator, local.cert_operator);
		SET(m->cert_not_after, local.cert_not_after);
	}
	zero_gauges(m); /* a worker that replaces one keeps its counters */
	SET(m->pid, (uint64_t)pid);
	__atomic_compare_exchange_n(&c->started, &zero, (int64_t)started, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED);
}

/* see metrics.h */
void
metrics_forget(int worker)
{
	struct slot *w = row(worker);

	if (w != NULL) {
		zero_gauges(w);
		SET(w->pid, 0);
	}
}

/* see metrics.h */
void
metrics_conn_open(enum metrics_listener l)
{
	ADD(m->conn_open[l], 1);
	ADD(m->conn_total[l], 1);
}

/* see metrics.h */
void
metrics_conn_close(enum metrics_listener l)
{
	if (GET(m->conn_open[l]))
		ADD(m->conn_open[l], -1);
}

/* see metrics.h */
uint64_t
metrics_conns_open(enum metrics_listener l)
{
	return GET(m->conn_open[l]);
}

/* see metrics.h */
void
metrics_conn_refused(void)
{
	ADD(m->refused, 1);
}

/* The index of label among the first n series of t, or -1. */
static int
find_series(const struct series *t, int n, const char *label)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].label, label) == 0)
			return i;
	return -1;
}

/* see metrics.h */
int
metrics_tunnel_open(const struct target_addr *t)
{
	char label[LABEL_MAX];
	int i, n = (int)GET(m->ntargets), v6 = t->host.kind == TARGET_IPV6;

	snprintf(label, sizeof label, "%s%s%s:%u", v6 ? "[" : "", t->host.name, v6 ? "]" : "",
	    t->port);
	i = find_series(m->target, n, label);
	if (i < 0 && n < METRICS_TARGETS_MAX) {
		memcpy(m->target[n].label, label, sizeof label);
		__atomic_store_n(&m->ntargets, (uint64_t)n + 1, __ATOMIC_RELEASE);
		i = n;
	}
	if (i < 0)
		i = METRICS_TARGETS_MAX;
	ADD(m->target[i].open, 1);
	ADD(m->target[i].total, 1);
	return i;
}

/* see metrics.h */
void
metrics_tunnel_close(int series)
{
	if (series >= 0 && series <= METRICS_TARGETS_MAX && GET(m->target[series].open))
		ADD(m->target[series].open, -1);
}

/* see metrics.h */
void
metrics_udp(uint64_t up, uint64_t down)
{
	ADD(m->udp_datagrams[0], up);
	ADD(m->udp_datagrams[1], down);
}

/* see metrics.h */
void
metrics_udp_dropped(uint64_t up, uint64_t down)
{
	ADD(m->udp_dropped[0], up);
	ADD(m->udp_dropped[1], down);
}

/* see metrics.h */
void
metrics_bytes(uint64_t up, uint64_t down)
{
	ADD(m->bytes_up, up);
	ADD(m->bytes_down, down);
}

/* see metrics.h */
void
metrics_tls_fail(void)
{
	ADD(m->tls_fail, 1);
}

/* see metrics.h */
void
metrics_auth_fail(const char *reason)
{
	size_t i;
	int id = AUTH_OTHER;

	for (i = 0; reason && i < sizeof auth_map / sizeof auth_map[0]; i++) {
		if (strcmp(reason, auth_map[i].reason) == 0) {
			id = auth_map[i].id;
			break;
		}
	}
	ADD(m->auth_fail[id], 1);
}

/* see metrics.h */
void
metrics_token_issued(void)
{
	ADD(m->tokens, 1);
}

/* see metrics.h */
void
metrics_ban(void)
{
	ADD(m->bans, 1);
}

/* see metrics.h */
void
metrics_reload(int ok)
{
	if (ok)
		ADD(m->reload_ok, 1);
	else
		ADD(m->reload_failed, 1);
}

/* see metrics.h */
void
metrics_certificate(int64_t not_after, int operator_pair)
{
	SET(m->cert_operator, (uint64_t)operator_pair);
	SET(m->cert_not_after, not_after);
}

/* see metrics.h */
void
metrics_cert_reload(int ok)
{
	if (ok)
		ADD(m->cert_reload_ok, 1);
	else
		ADD(m->cert_reload_failed, 1);
}

/* see metrics.h */
void
metrics_registration(enum metrics_reg state)
{
	__atomic_store_n(&common()->reg_state, (int)state, __ATOMIC_RELAXED);
}

/* see metrics.h */
void
metrics_registration_failed(void)
{
	struct common *c = common();

	__atomic_add_fetch(&c->reg_failures, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->reg_state, (int)METRICS_REG_RETRYING, __ATOMIC_RELAXED);
}

/* ---- rendering ------------------------------------------------------------------ */

struct out {
	char *p;
	size_t cap, len;
	int full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
put_u64(struct out *o, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);

	put(o, b, (size_t)n);
}

/* A label value: backslash, double quote and line feed escaped (format 0.0.4). */
static void
put_label_value(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(o, "\\\\", 2);
		else if (*s == '"')
			put(o, "\\\"", 2);
		else if (*s == '\n')
			put(o, "\\n", 2);
		else
			put(o, s, 1);
	}
}

/* "# HELP name help" and "# TYPE name type" (help texts are ours: no escapes needed). */
static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put_str(o, "# HELP ");
	put_str(o, name);
	put_str(o, " ");
	put_str(o, help);
	put_str(o, "\n# TYPE ");
	put_str(o, name);
	put_str(o, " ");
	put_str(o, type);
	put_str(o, "\n");
}

static void
label(struct out *o, int first, const char *k, const char *v)
{
	put_str(o, first ? "{" : ",");
	put_str(o, k);
	put_str(o, "=\"");
	put_label_value(o, v);
	put_str(o, "\"");
}

/* One sample: name, up to two labels (key NULL = none), value. */
static void
sample(struct out *o, const char *name, const char *k1, const char *v1, const char *k2,
    const char *v2, uint64_t value)
{
	int n = 0;

	put_str(o, name);
	if (k1)
		label(o, n++ == 0, k1, v1);
	if (k1 && k2)
		label(o, n++ == 0, k2, v2);
	if (n)
		put_str(o, "}");
	put_str(o, " ");
	put_u64(o, value);
	put_str(o, "\n");
}

/* The relay's numbers in one snapshot: every worker's row summed (a single row without
 * workers); target series merged by label, the first METRICS_TARGETS_MAX distinct labels
 * keeping a series and the rest counted as other; reloads counted once each (every worker
 * reloads on a SIGHUP: the largest count of any worker); the certificate the one that
 * expires first. */
static void
snapshot(struct slot *sum)
{
	int n = shm_workers(), w, j, k;

	memset(sum, 0, sizeof *sum);
	for (w = 0; w < n; w++) {
		const struct slot *s = row(w);
		int nt;
		if (s == NULL && w > 0)
			break;
		if (s == NULL)
			s = m; /* no region: this process is the relay */
		for (j = 0; j < METRICS_LISTENERS; j++) {
			sum->conn_open[j] += GET(s->conn_open[j]);
			sum->conn_total[j] += GET(s->conn_total[j]);
		}
		sum->refused += GET(s->refused);
		nt = (int)__atomic_load_n(&s->ntargets, __ATOMIC_ACQUIRE);
		for (j = 0; j <= METRICS_TARGETS_MAX; j++) {
			if (j < METRICS_TARGETS_MAX && j >= nt)
				continue;
			k = j == METRICS_TARGETS_MAX ? -1 :
			    find_series(sum->target, (int)sum->ntargets, s->target[j].label);
			if (j < METRICS_TARGETS_MAX && k < 0 && sum->ntargets < METRICS_TARGETS_MAX) {
				k = (int)sum->ntargets++;
				memcpy(sum->target[k].label, s->target[j].label, LABEL_MAX);
			}
			if (k < 0)
				k = METRICS_TARGETS_MAX;
			sum->target[k].open += GET(s->target[j].open);
			sum->target[k].total += GET(s->target[j].total);
		}
		sum->bytes_up += GET(s->bytes_up);
		sum->bytes_down += GET(s->bytes_down);
		sum->tls_fail += GET(s->tls_fail);
		for (j = 0; j < AUTH_REASONS; j++)
			sum->auth_fail[j] += GET(s->auth_fail[j]);
		sum->tokens += GET(s->tokens);
		sum->bans += GET(s->bans);
		for (j = 0; j < 2; j++) {
			sum->udp_datagrams[j] += GET(s->udp_datagrams[j]);
			sum->udp_dropped[j] += GET(s->udp_dropped[j]);
		}
#define MAX(f) if (GET(s->f) > sum->f) sum->f = GET(s->f)
		MAX(reload_ok);
		MAX(reload_failed);
		MAX(cert_reload_ok);
		MAX(cert_reload_failed);
#undef MAX
		if (GET(s->cert_not_after) != 0 &&
		    (sum->cert_not_after == 0 || GET(s->cert_not_after) < sum->cert_not_after)) {
			sum->cert_not_after = GET(s->cert_not_after);
			sum->cert_operator = GET(s->cert_operator);
		}
	}
}

/* see metrics.h */
size_t
metrics_render(char *out, size_t cap)
{
	static struct slot sum; /* the loop thread's scratch: large for a stack */
	const struct common *c = common();
	struct out o = { out, cap, 0, 0 };
	char pid[24], worker[16];
	int i, state = __atomic_load_n(&c->reg_state, __ATOMIC_RELAXED);

	snapshot(&sum);
	snprintf(pid, sizeof pid, "%llu", (unsigned long long)GET(m->pid));
	snprintf(worker, sizeof worker, "%d", shm_self());

	family(&o, "relaypro_build_info", "gauge", "Version and architecture of this binary.");
	sample(&o, "relaypro_build_info", "version", RELAYPRO_VERSION, "arch", RELAYPRO_ARCH, 1);
	family(&o, "process_start_time_seconds", "gauge",
	    "Start time of the process since the Unix epoch in seconds.");
	sample(&o, "process_start_time_seconds", NULL, NULL, NULL, NULL, (uint64_t)GET(c->started));
	family(&o, "relaypro_workers", "gauge",
	    "Worker processes; every other sample is the sum over all of them.");
	sample(&o, "relaypro_workers", NULL, NULL, NULL, NULL, (uint64_t)shm_workers());
	family(&o, "relaypro_worker_info", "gauge", "The process that answered this scrape.");
	sample(&o, "relaypro_worker_info", "worker", worker, "pid", pid, 1);

	family(&o, "relaypro_connections_open", "gauge", "Client connections open, by listener.");
	for (i = 0; i < METRICS_LISTENERS; i++)
		sample(&o, "relaypro_connections_open", "listener", listener_names[i], NULL, NULL,
		    sum.conn_open[i]);
	family(&o, "relaypro_connections_total", "counter", "Client connections accepted, by listener.");
	for (i = 0; i < METRICS_LISTENERS; i++)
		sample(&o, "relaypro_connections_total", "listener", listener_names[i], NULL, NULL,
		    sum.conn_total[i]);
	family(&o, "relaypro_connections_refused_total", "counter",
	    "Connections refused at maxConnections (503 or closed).");
	sample(&o, "relaypro_connections_refused_total", NULL, NULL, NULL, NULL, sum.refused);

	family(&o, "relaypro_tunnels_open", "gauge",
	    "Tunnels open, by allowed target (the first " STR(METRICS_TARGETS_MAX)
	    " targets seen; the rest as other).");
	for (i = 0; i <= METRICS_TARGETS_MAX; i++)
		if (i == METRICS_TARGETS_MAX || (unsigned)i < sum.ntargets)
			sample(&o, "relaypro_tunnels_open", "target",
			    i == METRICS_TARGETS_MAX ? "other" : sum.target[i].label, NULL, NULL,
			    sum.target[i].open);
	family(&o, "relaypro_tunnels_total", "counter", "Tunnels opened, by allowed target.");
	for (i = 0; i <= METRICS_TARGETS_MAX; i++)
		if (i == METRICS_TARGETS_MAX || (unsigned)i < sum.ntargets)
			sample(&o, "relaypro_tunnels_total", "target",
			    i == METRICS_TARGETS_MAX ? "other" : sum.target[i].label, NULL, NULL,
			    sum.target[i].total);
	family(&o, "relaypro_tunnel_bytes_total", "counter",
	    "Bytes relayed through tunnels: up = client to console, down = console to client.");
	sample(&o, "relaypro_tunnel_bytes_total", "direction", "up", NULL, NULL, sum.bytes_up);
	sample(&o, "relaypro_tunnel_bytes_total", "direction", "down", NULL, NULL, sum.bytes_down);
	family(&o, "relaypro_udp_datagrams_total", "counter",
	    "Datagrams relayed by UDP associations: up = client to target, down = target to client.");
	sample(&o, "relaypro_udp_datagrams_total", "direction", "up", NULL, NULL, sum.udp_datagrams[0]);
	sample(&o, "relaypro_udp_datagrams_total", "direction", "down", NULL, NULL,
	    sum.udp_datagrams[1]);
	family(&o, "relaypro_udp_dropped_total", "counter",
	    "Datagrams dropped: up = refused by the socket (ICMP error, no buffer), down = dropped "
	    "by the kernel while the client was slow.");
	sample(&o, "relaypro_udp_dropped_total", "direction", "up", NULL, NULL, sum.udp_dropped[0]);
	sample(&o, "relaypro_udp_dropped_total", "direction", "down", NULL, NULL, sum.udp_dropped[1]);

	family(&o, "relaypro_tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed with a protocol error.");
	sample(&o, "relaypro_tls_handshake_failures_total", NULL, NULL, NULL, NULL, sum.tls_fail);
	family(&o, "relaypro_auth_failures_total", "counter",
	    "Refused authentications (proxy credentials and grants), by reason.");
	for (i = 0; i < AUTH_REASONS; i++)
		sample(&o, "relaypro_auth_failures_total", "reason", auth_names[i], NULL, NULL,
		    sum.auth_fail[i]);
	family(&o, "relaypro_tokens_issued_total", "counter", "Access tokens issued for grants.");
	sample(&o, "relaypro_tokens_issued_total", NULL, NULL, NULL, NULL, sum.tokens);
	family(&o, "relaypro_rate_limit_bans_total", "counter",
	    "Client addresses banned for too many failed authentications.");
	sample(&o, "relaypro_rate_limit_bans_total", NULL, NULL, NULL, NULL, sum.bans);

	family(&o, "relaypro_registration_state", "gauge",
	    "Console registration state: 1 for the current state, 0 for the others.");
	for (i = 0; i < METRICS_REG_STATES; i++)
		sample(&o, "relaypro_registration_state", "state", reg_names[i], NULL, NULL, i == state);
	family(&o, "relaypro_registration_failures_total", "counter",
	    "Failed console registration attempts.");
	sample(&o, "relaypro_registration_failures_total", NULL, NULL, NULL, NULL,
	    __atomic_load_n(&c->reg_failures, __ATOMIC_RELAXED));
	family(&o, "relaypro_config_reloads_total", "counter", "Configuration reloads, by result.");
	sample(&o, "relaypro_config_reloads_total", "result", "ok", NULL, NULL, sum.reload_ok);
	sample(&o, "relaypro_config_reloads_total", "result", "failed", NULL, NULL, sum.reload_failed);
	if (sum.cert_not_after != 0) {
		family(&o, "relaypro_certificate_not_after_seconds", "gauge",
		    "Expiry (notAfter) of the leaf certificate the HTTPS listener serves, seconds "
		    "since the Unix epoch; source operator = certFile, minted = made by the relay.");
		sample(&o, "relaypro_certificate_not_after_seconds", "source",
		    sum.cert_operator ? "operator" : "minted", NULL, NULL,
		    sum.cert_not_after > 0 ? (uint64_t)sum.cert_not_after : 0);
	}
	family(&o, "relaypro_certificate_reloads_total", "counter",
	    "Reloads of the operator's certificate (SIGHUP or changed files), by result.");
	sample(&o, "relaypro_certificate_reloads_total", "result", "ok", NULL, NULL, sum.cert_reload_ok);
	sample(&o, "relaypro_certificate_reloads_total", "result", "failed", NULL, NULL,
	    sum.cert_reload_failed);
	return o.full ? 0 : o.len;
}

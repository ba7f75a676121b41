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
	char label[LABEL_MAX]; /* "host:port" / "[v6]:port"; "" = free */
	uint64_t open, total;
};

static struct {
	time_t started;
	long pid;
	int worker, workers;
	uint64_t conn_open[METRICS_LISTENERS], conn_total[METRICS_LISTENERS], refused;
	struct series target[METRICS_TARGETS_MAX + 1]; /* [METRICS_TARGETS_MAX] = "other" */
	uint64_t bytes_up, bytes_down, tls_fail, auth_fail[AUTH_REASONS], tokens, bans;
	uint64_t reload_ok, reload_failed;
	int64_t cert_not_after;          /* 0: no certificate yet */
	int cert_operator;
	uint64_t cert_reload_ok, cert_reload_failed;
} m;

/* UDP associations (udptunnel.c): datagrams and drops each way; [0] up, [1] down. Kept
 * apart from m so the worker sums can take them over as a block. */
static struct {
	uint64_t datagrams[2], dropped[2];
} udp;

static int reg_state;          /* enum metrics_reg; atomic */
static uint64_t reg_failures;  /* atomic */

/* see metrics.h */
void
metrics_reset(void)
{
	memset(&m, 0, sizeof m);
	memset(&udp, 0, sizeof udp);
	__atomic_store_n(&reg_state, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&reg_failures, 0, __ATOMIC_RELAXED);
}

/* see metrics.h */
void
metrics_start(time_t started, long pid, int worker, int workers)
{
	m.started = started;
	m.pid = pid;
	m.worker = worker;
	m.workers = workers;
}

/* see metrics.h */
void
metrics_conn_open(enum metrics_listener l)
{
	m.conn_open[l]++;
	m.conn_total[l]++;
}

/* see metrics.h */
void
metrics_conn_close(enum metrics_listener l)
{
	if (m.conn_open[l])
		m.conn_open[l]--;
}

/* see metrics.h */
uint64_t
metrics_conns_open(enum metrics_listener l)
{
	return m.conn_open[l];
}

/* see metrics.h */
void
metrics_conn_refused(void)
{
	m.refused++;
}

/* see metrics.h */
int
metrics_tunnel_open(const struct target_addr *t)
{
	char label[LABEL_MAX];
	int i, v6 = t->host.kind == TARGET_IPV6;

	snprintf(label, sizeof label, "%s%s%s:%u", v6 ? "[" : "", t->host.name, v6 ? "]" : "",
	    t->port);
	for (i = 0; i < METRICS_TARGETS_MAX && m.target[i].label[0]; i++)
		if (strcmp(m.target[i].label, label) == 0)
			break;
	if (i < METRICS_TARGETS_MAX && !m.target[i].label[0])
		memcpy(m.target[i].label, label, sizeof label);
	m.target[i].open++;
	m.target[i].total++;
	return i;
}

/* see metrics.h */
void
metrics_tunnel_close(int series)
{
	if (series >= 0 && series <= METRICS_TARGETS_MAX && m.target[series].open)
		m.target[series].open--;
}

/* see metrics.h */
void
metrics_udp(uint64_t up, uint64_t down)
{
	udp.datagrams[0] += up;
	udp.datagrams[1] += down;
}

/* see metrics.h */
void
metrics_udp_dropped(uint64_t up, uint64_t down)
{
	udp.dropped[0] += up;
	udp.dropped[1] += down;
}

/* see metrics.h */
void
metrics_bytes(uint64_t up, uint64_t down)
{
	m.bytes_up += up;
	m.bytes_down += down;
}

/* see metrics.h */
void
metrics_tls_fail(void)
{
	m.tls_fail++;
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
	m.auth_fail[id]++;
}

/* see metrics.h */
void
metrics_token_issued(void)
{
	m.tokens++;
}

/* see metrics.h */
void
metrics_ban(void)
{
	m.bans++;
}

/* see metrics.h */
void
metrics_reload(int ok)
{
	if (ok)
		m.reload_ok++;
	else
		m.reload_failed++;
}

/* see metrics.h */
void
metrics_certificate(int64_t not_after, int operator_pair)
{
	m.cert_not_after = not_after;
	m.cert_operator = operator_pair;
}

/* see metrics.h */
void
metrics_cert_reload(int ok)
{
	if (ok)
		m.cert_reload_ok++;
	else
		m.cert_reload_failed++;
}

/* see metrics.h */
void
metrics_registration(enum metrics_reg state)
{
	__atomic_store_n(&reg_state, (int)state, __ATOMIC_RELAXED);
}

/* see metrics.h */
void
metrics_registration_failed(void)
{
	__atomic_add_fetch(&reg_failures, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&reg_state, (int)METRICS_REG_RETRYING, __ATOMIC_RELAXED);
}

/* ---- rendering ------------------------------------------------------------------ */

struct out {
	char *p;
	size_t cap, len;
	int full;
	const char *worker; /* with workers > 1: every sample gets worker="N" */
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

/* One sample: name, up to two labels (key NULL = none), the worker label when workers
 * share the admin socket, value. */
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
	if (o->worker && !(k1 && strcmp(k1, "worker") == 0))
		label(o, n++ == 0, "worker", o->worker);
	if (n)
		put_str(o, "}");
	put_str(o, " ");
	put_u64(o, value);
	put_str(o, "\n");
}

/* see metrics.h */
size_t
metrics_render(char *out, size_t cap)
{
	struct out o = { out, cap, 0, 0, NULL };
	char pid[24], worker[16];
	int i, state = __atomic_load_n(&reg_state, __ATOMIC_RELAXED);

	snprintf(pid, sizeof pid, "%ld", m.pid);
	snprintf(worker, sizeof worker, "%d", m.worker);
	if (m.workers > 1)
		o.worker = worker; /* each worker's series stay apart (metrics.h) */

	family(&o, "relaypro_build_info", "gauge", "Version and architecture of this binary.");
	sample(&o, "relaypro_build_info", "version", RELAYPRO_VERSION, "arch", RELAYPRO_ARCH, 1);
	family(&o, "process_start_time_seconds", "gauge",
	    "Start time of the process since the Unix epoch in seconds.");
	sample(&o, "process_start_time_seconds", NULL, NULL, NULL, NULL, (uint64_t)m.started);
	family(&o, "relaypro_workers", "gauge",
	    "Worker processes sharing the listeners; each counts alone and a scrape reaches one.");
	sample(&o, "relaypro_workers", NULL, NULL, NULL, NULL, (uint64_t)m.workers);
	family(&o, "relaypro_worker_info", "gauge", "The process that answered this scrape.");
	sample(&o, "relaypro_worker_info", "worker", worker, "pid", pid, 1);

	family(&o, "relaypro_connections_open", "gauge", "Client connections open, by listener.");
	for (i = 0; i < METRICS_LISTENERS; i++)
		sample(&o, "relaypro_connections_open", "listener", listener_names[i], NULL, NULL,
		    m.conn_open[i]);
	family(&o, "relaypro_connections_total", "counter", "Client connections accepted, by listener.");
	for (i = 0; i < METRICS_LISTENERS; i++)
		sample(&o, "relaypro_connections_total", "listener", listener_names[i], NULL, NULL,
		    m.conn_total[i]);
	family(&o, "relaypro_connections_refused_total", "counter",
	    "Connections refused at maxConnections (503 or closed).");
	sample(&o, "relaypro_connections_refused_total", NULL, NULL, NULL, NULL, m.refused);

	family(&o, "relaypro_tunnels_open", "gauge",
	    "Tunnels open, by allowed target (the first " STR(METRICS_TARGETS_MAX)
	    " targets seen; the rest as other).");
	for (i = 0; i <= METRICS_TARGETS_MAX; i++)
		if (i == METRICS_TARGETS_MAX || m.target[i].label[0])
			sample(&o, "relaypro_tunnels_open", "target",
			    i == METRICS_TARGETS_MAX ? "other" : m.target[i].label, NULL, NULL,
			    m.target[i].open);
	family(&o, "relaypro_tunnels_total", "counter", "Tunnels opened, by allowed target.");
	for (i = 0; i <= METRICS_TARGETS_MAX; i++)
		if (i == METRICS_TARGETS_MAX || m.target[i].label[0])
			sample(&o, "relaypro_tunnels_total", "target",
			    i == METRICS_TARGETS_MAX ? "other" : m.target[i].label, NULL, NULL,
			    m.target[i].total);
	family(&o, "relaypro_tunnel_bytes_total", "counter",
	    "Bytes relayed through tunnels: up = client to console, down = console to client.");
	sample(&o, "relaypro_tunnel_bytes_total", "direction", "up", NULL, NULL, m.bytes_up);
	sample(&o, "relaypro_tunnel_bytes_total", "direction", "down", NULL, NULL, m.bytes_down);
	family(&o, "relaypro_udp_datagrams_total", "counter",
	    "Datagrams relayed by UDP associations: up = client to target, down = target to client.");
	sample(&o, "relaypro_udp_datagrams_total", "direction", "up", NULL, NULL, udp.datagrams[0]);
	sample(&o, "relaypro_udp_datagrams_total", "direction", "down", NULL, NULL, udp.datagrams[1]);
	family(&o, "relaypro_udp_dropped_total", "counter",
	    "Datagrams dropped: up = refused by the socket (ICMP error, no buffer), down = dropped "
	    "by the kernel while the client was slow.");
	sample(&o, "relaypro_udp_dropped_total", "direction", "up", NULL, NULL, udp.dropped[0]);
	sample(&o, "relaypro_udp_dropped_total", "direction", "down", NULL, NULL, udp.dropped[1]);

	family(&o, "relaypro_tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed with a protocol error.");
	sample(&o, "relaypro_tls_handshake_failures_total", NULL, NULL, NULL, NULL, m.tls_fail);
	family(&o, "relaypro_auth_failures_total", "counter",
	    "Refused authentications (proxy credentials and grants), by reason.");
	for (i = 0; i < AUTH_REASONS; i++)
		sample(&o, "relaypro_auth_failures_total", "reason", auth_names[i], NULL, NULL,
		    m.auth_fail[i]);
	family(&o, "relaypro_tokens_issued_total", "counter", "Access tokens issued for grants.");
	sample(&o, "relaypro_tokens_issued_total", NULL, NULL, NULL, NULL, m.tokens);
	family(&o, "relaypro_rate_limit_bans_total", "counter",
	    "Client addresses banned for too many failed authentications.");
	sample(&o, "relaypro_rate_limit_bans_total", NULL, NULL, NULL, NULL, m.bans);

	family(&o, "relaypro_registration_state", "gauge",
	    "Console registration state: 1 for the current state, 0 for the others.");
	for (i = 0; i < METRICS_REG_STATES; i++)
		sample(&o, "relaypro_registration_state", "state", reg_names[i], NULL, NULL, i == state);
	family(&o, "relaypro_registration_failures_total", "counter",
	    "Failed console registration attempts.");
	sample(&o, "relaypro_registration_failures_total", NULL, NULL, NULL, NULL,
	    __atomic_load_n(&reg_failures, __ATOMIC_RELAXED));
	family(&o, "relaypro_config_reloads_total", "counter", "Configuration reloads, by result.");
	sample(&o, "relaypro_config_reloads_total", "result", "ok", NULL, NULL, m.reload_ok);
	sample(&o, "relaypro_config_reloads_total", "result", "failed", NULL, NULL, m.reload_failed);
	if (m.cert_not_after != 0) {
		family(&o, "relaypro_certificate_not_after_seconds", "gauge",
		    "Expiry (notAfter) of the leaf certificate the HTTPS listener serves, seconds "
		    "since the Unix epoch; source operator = certFile, minted = made by the relay.");
		sample(&o, "relaypro_certificate_not_after_seconds", "source",
		    m.cert_operator ? "operator" : "minted", NULL, NULL,
		    m.cert_not_after > 0 ? (uint64_t)m.cert_not_after : 0);
	}
	family(&o, "relaypro_certificate_reloads_total", "counter",
	    "Reloads of the operator's certificate (SIGHUP or changed files), by result.");
	sample(&o, "relaypro_certificate_reloads_total", "result", "ok", NULL, NULL, m.cert_reload_ok);
	sample(&o, "relaypro_certificate_reloads_total", "result", "failed", NULL, NULL,
	    m.cert_reload_failed);
	return o.full ? 0 : o.len;
}

/* t_metrics.c — the counters and the Prometheus text renderer: families and samples as
 * events happen, target series capped with the rest in "other", label values escaped,
 * auth reasons mapped onto the fixed set, one registration state at a time, the longest
 * possible exposition within METRICS_RENDER_MAX, a too-small buffer refused whole. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "metrics.h"
#include "shm.h"
#include "test.h"

static char buf[METRICS_RENDER_MAX + 1];

/* Render into buf (NUL-terminated); 0 when it did not fit. */
static size_t
render(void)
{
	size_t n = metrics_render(buf, METRICS_RENDER_MAX);

	buf[n] = 0;
	return n;
}

/* The value of the sample line that starts with "series " (name and labels), or -1. */
static long long
value(const char *series)
{
	size_t n = strlen(series);
	const char *p = buf;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == buf || p[-1] == '\n') && p[n] == ' ') {
			long long v = -1;
			sscanf(p + n + 1, "%lld", &v);
			return v;
		}
		p += n;
	}
	return -1;
}

/* Every line: "# HELP name ...", "# TYPE name type" (before that family's samples), or
 * "name{labels} value"; returns the number of sample lines, -1 when a line is wrong. */
static int
well_formed(void)
{
	char typed[64] = "";
	int samples = 0;
	const char *p = buf;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t len;
		if (e == NULL)
			return -1;
		len = (size_t)(e - p);
		if (strncmp(p, "# HELP ", 7) == 0) {
			/* fine */
		} else if (strncmp(p, "# TYPE ", 7) == 0) {
			size_t k = strcspn(p + 7, " ");
			if (k >= sizeof typed)
				return -1;
			memcpy(typed, p + 7, k);
			typed[k] = 0;
		} else {
			size_t k = strcspn(p, "{ ");
			if (k != strlen(typed) || strncmp(p, typed, k) != 0)
				return -1; /* a sample outside its TYPE'd family */
			if (p[len - 1] < '0' || p[len - 1] > '9')
				return -1;
			samples++;
		}
		p = e + 1;
	}
	return samples;
}

/* In the process of worker w (a child): attach to the region, count fn's events, exit. */
static void
as_worker(int w, void (*fn)(void))
{
	char err[128];
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (shm_attach(fcntl(shm_fd(), F_DUPFD_CLOEXEC, 3), w, err, sizeof err) != ERR_OK)
			_exit(1);
		metrics_start(1800000000, 5000 + w);
		fn();
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "a worker process counted");
}

static void
worker1_events(void)
{
	struct target_addr t = t_mktarget("console.test", TARGET_NAME, 443), t2;

	t2 = t_mktarget("other.test", TARGET_NAME, 443);
	metrics_tunnel_open(&t);
	metrics_tunnel_open(&t2);
	metrics_bytes(1, 2);
	metrics_reload(1);
	metrics_conn_open(METRICS_HTTPS);
	metrics_auth_fail("bad password");
}

static void
replacement_events(void)
{
	struct target_addr t = t_mktarget("console.test", TARGET_NAME, 443);

	metrics_tunnel_open(&t);
}

/* Workers: each counts in its row of the shared region; any scrape renders the sum. */
static void
workers(void)
{
	struct target_addr t = t_mktarget("console.test", TARGET_NAME, 443);
	char err[128];

	metrics_plan();
	CHECK_INT(shm_create(2, 1, err, sizeof err), ERR_OK, "a region for 2 workers");
	metrics_start(1700000000, 4242); /* this process: row 0 */
	metrics_tunnel_open(&t);
	metrics_bytes(10, 20);
	metrics_reload(1);
	metrics_conn_open(METRICS_HTTPS);
	as_worker(1, worker1_events);
	render();
	CHECK(well_formed() > 0, "workers: well formed");
	CHECK_INT(value("relaypro_tunnels_total{target=\"console.test:443\"}"), 2,
	    "workers: a target's tunnels summed");
	CHECK_INT(value("relaypro_tunnels_total{target=\"other.test:443\"}"), 1,
	    "workers: a target only the other worker saw");
	CHECK_INT(value("relaypro_tunnel_bytes_total{direction=\"up\"}"), 11, "workers: bytes up summed");
	CHECK_INT(value("relaypro_tunnel_bytes_total{direction=\"down\"}"), 22, "workers: bytes down summed");
	CHECK_INT(value("relaypro_connections_open{listener=\"https\"}"), 2, "workers: gauges summed");
	CHECK_INT(value("relaypro_auth_failures_total{reason=\"bad_password\"}"), 1,
	    "workers: the other worker's failures");
	CHECK_INT(value("relaypro_config_reloads_total{result=\"ok\"}"), 1,
	    "workers: one SIGHUP reloads every worker, counted once");
	CHECK_INT(value("relaypro_workers"), 2, "workers gauge");
	CHECK_INT(value("relaypro_worker_info{worker=\"0\",pid=\"4242\"}"), 1,
	    "worker_info: the worker that answered");
	CHECK_INT(value("process_start_time_seconds"), 1700000000, "the relay's start, the first set");
	CHECK(strstr(buf, "worker=") == strstr(buf, "relaypro_worker_info{worker=") + 21 &&
	    strstr(strstr(buf, "worker=") + 1, "worker=") == NULL,
	    "no sample but worker_info names a worker");
	metrics_forget(1);
	render();
	CHECK_INT(value("relaypro_connections_open{listener=\"https\"}"), 1,
	    "a dead worker's gauges leave the sum");
	CHECK_INT(value("relaypro_tunnels_open{target=\"console.test:443\"}"), 1, "... its tunnels too");
	CHECK_INT(value("relaypro_tunnels_total{target=\"console.test:443\"}"), 2,
	    "... its counters stay");
	as_worker(1, replacement_events);
	render();
	CHECK_INT(value("relaypro_tunnels_total{target=\"console.test:443\"}"), 3,
	    "its replacement counts on from there");
	CHECK_INT(value("relaypro_tunnels_open{target=\"other.test:443\"}"), 0,
	    "... with its own gauges only");
	shm_reset();
	metrics_reset();
}

void
t_metrics(void)
{
	struct target_addr t;
	char name[TARGET_HOST_MAX + 1];
	size_t n, n2;
	int i, s, samples;

	metrics_reset();
	metrics_start(1700000000, 4242);
	n = render();
	CHECK(n > 0, "renders");
	CHECK(well_formed() > 0, "fresh: every line HELP, TYPE or a sample of the TYPE'd family");
	CHECK(strstr(buf, "# TYPE relaypro_tunnels_total counter\n") != NULL, "TYPE line of a counter");
	CHECK_INT(value("process_start_time_seconds"), 1700000000, "start time");
	CHECK_INT(value("relaypro_worker_info{worker=\"0\",pid=\"4242\"}"), 1, "worker info");
	CHECK_INT(value("relaypro_tunnels_total{target=\"other\"}"), 0, "other series always there");
	CHECK_INT(value("relaypro_connections_open{listener=\"admin\"}"), 0, "admin gauge at 0");
	CHECK_INT(value("relaypro_registration_state{state=\"unconfigured\"}"), 1, "unconfigured at first");
	CHECK(strstr(buf, "relaypro_certificate_not_after_seconds") == NULL,
	    "no certificate yet: no not-after sample");
	CHECK_INT(value("relaypro_certificate_reloads_total{result=\"failed\"}"), 0, "cert reloads at 0");

	metrics_conn_open(METRICS_HTTPS);
	metrics_conn_open(METRICS_HTTPS);
	metrics_conn_close(METRICS_HTTPS);
	metrics_conn_close(METRICS_HTTP); /* never below zero */
	metrics_conn_open(METRICS_ADMIN);
	CHECK_INT(metrics_conns_open(METRICS_ADMIN), 1, "admin connections open");
	t = t_mktarget("console.test", TARGET_NAME, 443);
	s = metrics_tunnel_open(&t);
	metrics_tunnel_open(&t);
	metrics_tunnel_close(s);
	t = t_mktarget("2001:db8::1", TARGET_IPV6, 4222);
	metrics_tunnel_open(&t);
	metrics_bytes(100, 7);
	metrics_bytes(1, 0);
	metrics_tls_fail();
	metrics_auth_fail("bad password");
	metrics_auth_fail("token_expired");
	metrics_auth_fail("auth_required");
	metrics_auth_fail("some text a client chose");
	metrics_token_issued();
	metrics_ban();
	metrics_reload(1);
	metrics_reload(0);
	metrics_reload(1);
	metrics_conn_refused();
	metrics_registration(METRICS_REG_REGISTERING);
	metrics_registration_failed();
	metrics_certificate(1700000000 + 90 * 86400, 0);
	metrics_certificate(1893456000, 1);
	metrics_cert_reload(1);
	metrics_cert_reload(0);
	metrics_cert_reload(0);
	render();
	CHECK(well_formed() > 0, "after events: well formed");
	CHECK_INT(value("relaypro_connections_open{listener=\"https\"}"), 1, "https open");
	CHECK_INT(value("relaypro_connections_total{listener=\"https\"}"), 2, "https total");
	CHECK_INT(value("relaypro_connections_open{listener=\"http\"}"), 0, "http open not below 0");
	CHECK_INT(value("relaypro_tunnels_open{target=\"console.test:443\"}"), 1, "tunnels open by target");
	CHECK_INT(value("relaypro_tunnels_total{target=\"console.test:443\"}"), 2, "tunnels total by target");
	CHECK_INT(value("relaypro_tunnels_total{target=\"[2001:db8::1]:4222\"}"), 1, "IPv6 target bracketed");
	CHECK_INT(value("relaypro_tunnel_bytes_total{direction=\"up\"}"), 101, "bytes up");
	CHECK_INT(value("relaypro_tunnel_bytes_total{direction=\"down\"}"), 7, "bytes down");
	CHECK_INT(value("relaypro_tls_handshake_failures_total"), 1, "tls failures");
	CHECK_INT(value("relaypro_auth_failures_total{reason=\"bad_password\"}"), 1, "auth: bad_password");
	CHECK_INT(value("relaypro_auth_failures_total{reason=\"token_expired\"}"), 1, "auth: token_expired");
	CHECK_INT(value("relaypro_auth_failures_total{reason=\"missing\"}"), 1, "auth_required counts as missing");
	CHECK_INT(value("relaypro_auth_failures_total{reason=\"other\"}"), 1, "unknown reason: other");
	CHECK(strstr(buf, "client chose") == NULL, "free text never becomes a label");
	CHECK_INT(value("relaypro_tokens_issued_total"), 1, "tokens issued");
	CHECK_INT(value("relaypro_rate_limit_bans_total"), 1, "bans");
	CHECK_INT(value("relaypro_config_reloads_total{result=\"ok\"}"), 2, "reloads ok");
	CHECK_INT(value("relaypro_config_reloads_total{result=\"failed\"}"), 1, "reloads failed");
	CHECK_INT(value("relaypro_connections_refused_total"), 1, "refused");
	CHECK_INT(value("relaypro_registration_state{state=\"retrying\"}"), 1, "retrying after a failure");
	CHECK_INT(value("relaypro_registration_state{state=\"registering\"}"), 0, "one state at a time");
	CHECK_INT(value("relaypro_registration_failures_total"), 1, "registration failures");
	CHECK_INT(value("relaypro_certificate_not_after_seconds{source=\"operator\"}"), 1893456000,
	    "certificate not-after, operator's");
	CHECK(strstr(buf, "source=\"minted\"") == NULL, "one certificate series: the served one");
	CHECK_INT(value("relaypro_certificate_reloads_total{result=\"ok\"}"), 1, "cert reloads ok");
	CHECK_INT(value("relaypro_certificate_reloads_total{result=\"failed\"}"), 2, "cert reloads failed");

	/* Escaping (target.c never lets these through; the renderer escapes regardless). */
	t = t_mktarget("a\"b\\c\nd", TARGET_NAME, 1);
	metrics_tunnel_open(&t);
	render();
	CHECK(strstr(buf, "{target=\"a\\\"b\\\\c\\nd:1\"} 1\n") != NULL, "label value escaped");
	CHECK(well_formed() > 0, "escaped label: still one sample per line");

	/* The cap: 16 series, then "other". */
	metrics_reset();
	for (i = 0; i < METRICS_TARGETS_MAX + 5; i++) {
		char host[32];
		snprintf(host, sizeof host, "h%d.test", i);
		t = t_mktarget(host, TARGET_NAME, 443);
		metrics_tunnel_open(&t);
	}
	render();
	CHECK_INT(value("relaypro_tunnels_total{target=\"h15.test:443\"}"), 1, "16th target has its series");
	CHECK_INT(value("relaypro_tunnels_total{target=\"h16.test:443\"}"), -1, "17th target has none");
	CHECK_INT(value("relaypro_tunnels_total{target=\"other\"}"), 5, "the rest count as other");
	t = t_mktarget("h3.test", TARGET_NAME, 443);
	metrics_tunnel_open(&t);
	render();
	CHECK_INT(value("relaypro_tunnels_total{target=\"h3.test:443\"}"), 2, "a known target keeps its series when full");

	/* The longest exposition: every target series at the longest host, each character
	 * escaped into two, every sample's value at 20 digits. */
	metrics_reset();
	metrics_start(1700000000, 2147483647);
	for (i = 0; i < METRICS_TARGETS_MAX; i++) {
		memset(name, '"', TARGET_HOST_MAX);
		name[TARGET_HOST_MAX] = 0;
		name[0] = (char)('a' + i); /* distinct series */
		t = t_mktarget(name, TARGET_NAME, 65535);
		metrics_tunnel_open(&t);
	}
	metrics_bytes(UINT64_MAX, UINT64_MAX);
	metrics_certificate(INT64_MAX, 1); /* "operator" is the longer source label */
	n = render();
	samples = well_formed();
	CHECK(n > 0 && samples > 0, "longest exposition renders");
	CHECK(n + (size_t)samples * 20 <= METRICS_RENDER_MAX,
	    "longest exposition, every value at 20 digits, fits METRICS_RENDER_MAX");
	printf("     metrics: longest exposition %zu bytes + %d samples x 20 digits <= %d\n", n,
	    samples, METRICS_RENDER_MAX);
	n2 = metrics_render(buf, n - 1);
	CHECK_INT(n2, 0, "one byte short: refused whole");
	CHECK_INT(metrics_render(buf, n), n, "exact size: fits");
	metrics_reset();
	workers();
}

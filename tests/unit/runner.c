/*
 * runner.c — runs every unit test suite and ends with "N passed, N failed".
 * Exit status 0 only when nothing failed. `unit-tests SUITE` runs one suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "target.h"
#include "test.h"

void t_admit(void);
void t_auth(void);
void t_b64(void);
void t_body(void);
void t_ca(void);
void t_certfile(void);
void t_cfgwrite(void);
void t_config(void);
void t_deflate(void);
void t_der(void);
void t_http(void);
void t_json(void);
void t_jwt(void);
void t_kdf(void);
void t_limit(void);
void t_log(void);
void t_logrotate(void);
void t_metrics(void);
void t_connmem(void);
void t_pending(void);
void t_pollset(void);
void t_priv(void);
void t_proxyproto(void);
void t_register(void);
void t_target(void);
void t_token(void);
void t_units(void);
void t_upstream(void);
void t_upstream_creds(void);
void t_x509(void);
void t_ws(void);
void t_secret(void);
void t_sessions(void);
void t_shm(void);
void t_socks5(void);

static const struct {
	const char *name;
	void (*fn)(void);
} suites[] = {
	{ "admit", t_admit },
	{ "auth", t_auth },
	{ "b64", t_b64 },
	{ "body", t_body },
	{ "ca", t_ca },
	{ "certfile", t_certfile },
	{ "cfgwrite", t_cfgwrite },
	{ "config", t_config },
	{ "deflate", t_deflate },
	{ "der", t_der },
	{ "http", t_http },
	{ "json", t_json },
	{ "jwt", t_jwt },
	{ "kdf", t_kdf },
	{ "limit", t_limit },
	{ "log", t_log },
	{ "logrotate", t_logrotate },
	{ "metrics", t_metrics },
	{ "connmem", t_connmem },
	{ "pending", t_pending },
	{ "pollset", t_pollset },
	{ "priv", t_priv },
	{ "proxyproto", t_proxyproto },
	{ "register", t_register },
	{ "socks5", t_socks5 },
	{ "target", t_target },
	{ "token", t_token },
	{ "units", t_units },
	{ "upstream", t_upstream },
	{ "upstream_creds", t_upstream_creds },
	{ "x509", t_x509 },
	{ "ws", t_ws },
	{ "secret", t_secret },
	{ "sessions", t_sessions },
	{ "shm", t_shm },
};

static int passed, failed;
static const char *current;

void
t_check(int ok, const char *file, int line, const char *name)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL %s: %s (%s:%d)\n", current, name, file, line);
}

void
t_check_int(long long a, long long b, const char *file, int line, const char *name)
{
	t_check(a == b, file, line, name);
	if (a != b)
		printf("     got %lld, want %lld\n", a, b);
}

void
t_check_str(const char *a, const char *b, const char *file, int line, const char *name)
{
	int ok = a && b && strcmp(a, b) == 0;

	t_check(ok, file, line, name);
	if (!ok)
		printf("     got \"%s\"\n     want \"%s\"\n", a ? a : "(null)", b ? b : "(null)");
}

void
t_check_mem(const void *a, const void *b, size_t n, const char *file, int line, const char *name)
{
	t_check(memcmp(a, b, n) == 0, file, line, name);
}

size_t
t_unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (hex[0] && hex[1] && n < cap) {
		if (sscanf(hex, "%2x", &v) != 1)
			break;
		out[n++] = (unsigned char)v;
		hex += 2;
	}
	return n;
}

struct target_addr
t_mktarget(const char *name, int kind, unsigned port)
{
	struct target_addr t;

	memset(&t, 0, sizeof t);
	snprintf(t.host.name, sizeof t.host.name, "%s", name);
	t.host.len = strlen(t.host.name);
	t.host.kind = kind;
	t.port = port;
	return t;
}

/* see test.h */
const char *t_emulated;
static char emulated_buf[64];

/* The suites load configurations, which read RELAYPRO_* and AIR_* (and refuse unknown
 * RELAYPRO_* names): what the developer's shell exports (RELAYPRO_BIN for the integration
 * tests, say) must not change their results. The suites set what they test themselves. */
static void
scrub_environment(void)
{
	extern char **environ;
	char name[128];
	size_t i = 0;

	while (environ[i] != NULL) {
		const char *e = environ[i], *eq = strchr(e, '=');
		size_t n = eq ? (size_t)(eq - e) : strlen(e);
		if ((strncmp(e, "RELAYPRO_", 9) == 0 || strncmp(e, "AIR_", 4) == 0) && n < sizeof name) {
			memcpy(name, e, n);
			name[n] = '\0';
			unsetenv(name); /* environ shifts down: look at index i again */
			continue;
		}
		i++;
	}
}

int
main(int argc, char **argv)
{
	size_t i;
	int ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("RELAYPRO_EMULATED") != NULL) { /* kept: the scrub below removes it */
		snprintf(emulated_buf, sizeof emulated_buf, "%s", getenv("RELAYPRO_EMULATED"));
		t_emulated = emulated_buf;
	}
	scrub_environment();
	if (rand_init() != 0) {
		printf("cannot seed the DRBG\n");
		return 1;
	}
	for (i = 0; i < sizeof suites / sizeof suites[0]; i++) {
		if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
			continue;
		current = suites[i].name;
		suites[i].fn();
		ran++;
	}
	if (argc > 1 && ran == 0) {
		printf("no suite named %s\n", argv[1]);
		return 2;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

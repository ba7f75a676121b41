/*
 * token_bench.c — what one access-token verification costs (docs/protocol.md: derive the
 * per-Responder key with HKDF, then verify HS256), measured against a peer in the same
 * run: verifying the same token with a fixed key (no derivation). Prints both rates and
 * the ratio. Not part of `make test` (no timing is ever asserted).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "config.h"
#include "jwt.h"
#include "rand.h"
#include "token.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct config cfg;
static struct ca ca;

int
main(void)
{
	char tok[1024], sub[200], fixed[1024];
	const char *code;
	struct jwt_token t;
	double t0, el_derive, el_plain;
	long i, n = 0, m = 0, rounds = 20000;
	time_t now = time(NULL);

	if (rand_init() != 0 || ca_generate(&ca, 2048, "00000000-0000-4000-8000-000000000000", now) != 0)
		return 1;
	token_init(&ca);
	strcpy(cfg.security_token, "bench");
	cfg.organization_id = 42;
	cfg.token_duration = 3600;
	cfg.clock_skew = 60;
	if (token_issue(&cfg, "responder-1", (int64_t)now, tok, sizeof tok) == 0)
		return 1;
	jwt_sign(fixed, sizeof fixed, "{\"alg\":\"HS256\"}", "{\"sub\":\"responder-1\",\"exp\":9999999999}",
	    "0123456789abcdef0123456789abcdef", 32);

	t0 = now_s();
	for (i = 0; i < rounds; i++)
		n += token_verify_access(&cfg, tok, strlen(tok), (int64_t)now, sub, sizeof sub, &code, NULL, 0) == 0;
	el_derive = now_s() - t0;
	t0 = now_s();
	for (i = 0; i < rounds; i++)
		m += jwt_parse(fixed, strlen(fixed), &t) == JWT_OK &&
		    jwt_verify_sig(&t, "0123456789abcdef0123456789abcdef", 32) == JWT_OK;
	el_plain = now_s() - t0;
	if (n != rounds || m != rounds) {
		printf("verification failed (%ld/%ld, %ld/%ld)\n", n, rounds, m, rounds);
		return 1;
	}
	printf("token verify (parse + HKDF derive + HS256): %8.0f /s per core\n", rounds / el_derive);
	printf("peer: HS256 verify with a fixed key:        %8.0f /s per core\n", rounds / el_plain);
	printf("ratio derive+verify / plain verify: %.2f of the peer's rate\n", el_plain / el_derive);
	printf("{\"bench\":\"token_verify\",\"per_s\":%.0f,\"peer_per_s\":%.0f}\n", rounds / el_derive,
	    rounds / el_plain);
	return 0;
}

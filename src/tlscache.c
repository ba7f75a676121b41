/*
 * tlscache.c — the shared TLS session cache. See tlscache.h.
 *
 * An entry is 16 words: the sequence count, the time of the full handshake (monotonic
 * seconds, the same clock in every process), the ID (4 words), the master secret (6
 * words), version and cipher suite (1 word), 3 words of padding to 128 bytes. Writers
 * store and readers load the words with relaxed atomics; the sequence count orders them.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "secret.h"
#include "shm.h"
#include "tlscache.h"

#define WORDS 16
#define SETS (TLSCACHE_SESSIONS / TLSCACHE_WAYS)

struct entry {
	uint64_t w[WORDS];  /* [0] seq, [1] time, [2..5] id, [6..11] master, [12] version|suite */
};

static void save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
    const br_ssl_session_parameters *params);
static int load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
    br_ssl_session_parameters *params);

static const br_ssl_session_cache_class vtable = {
	sizeof(const br_ssl_session_cache_class *), save, load
};
static const br_ssl_session_cache_class *cache = &vtable;

/* see tlscache.h */
void
tlscache_plan(void)
{
	shm_plan(SHM_TLSCACHE, 0, sizeof(struct entry) * TLSCACHE_SESSIONS);
}

/* see tlscache.h */
const br_ssl_session_cache_class **
tlscache(void)
{
	return &cache;
}

static uint64_t
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec + 1; /* never 0: 0 marks an entry never written */
}

/* The set an ID belongs to: its first bytes (random, made by BearSSL). */
static struct entry *
set_of(const unsigned char *id)
{
	struct entry *t = shm_shared(SHM_TLSCACHE);
	uint32_t h;

	if (t == NULL || shm_shared_size(SHM_TLSCACHE) < sizeof *t * TLSCACHE_SESSIONS)
		return NULL;
	memcpy(&h, id, sizeof h);
	return t + (size_t)(h % SETS) * TLSCACHE_WAYS;
}

/* A whole copy of e into out, or 0 when a writer held it meanwhile. */
static int
read_entry(struct entry *e, struct entry *out)
{
	uint64_t s1 = __atomic_load_n(&e->w[0], __ATOMIC_ACQUIRE), s2;
	int k;

	if (s1 & 1)
		return 0;
	for (k = 1; k < WORDS; k++)
		out->w[k] = __atomic_load_n(&e->w[k], __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	s2 = __atomic_load_n(&e->w[0], __ATOMIC_RELAXED);
	return s1 == s2;
}

static void
save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
    const br_ssl_session_parameters *params)
{
	struct entry *set = set_of(params->session_id), *e = NULL, copy;
	uint64_t oldest = UINT64_MAX, s, words[WORDS];
	int i, k;

	(void)ctx;
	(void)sc;
	if (set == NULL || params->session_id_len != 32)
		return;
	for (i = 0; i < TLSCACHE_WAYS; i++) {
		if (!read_entry(&set[i], &copy))
			continue;
		if (memcmp(&copy.w[2], params->session_id, 32) == 0) {
			e = &set[i];
			break;
		}
		if (copy.w[1] < oldest) {
			oldest = copy.w[1];
			e = &set[i];
		}
	}
	if (e == NULL)
		return; /* every entry of the set is being written: skip this one */
	s = __atomic_load_n(&e->w[0], __ATOMIC_RELAXED);
	if ((s & 1) || !__atomic_compare_exchange_n(&e->w[0], &s, s + 1, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED))
		return; /* another worker took it first */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memset(words, 0, sizeof words);
	words[1] = now_s();
	memcpy(&words[2], params->session_id, 32);
	memcpy(&words[6], params->master_secret, 48);
	words[12] = (uint64_t)params->version << 16 | params->cipher_suite;
	for (k = 1; k < WORDS; k++)
		__atomic_store_n(&e->w[k], words[k], __ATOMIC_RELAXED);
	__atomic_store_n(&e->w[0], s + 2, __ATOMIC_RELEASE);
	secret_wipe(words, sizeof words);
}

static int
load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
    br_ssl_session_parameters *params)
{
	struct entry *set = set_of(params->session_id), copy;
	uint64_t now = now_s();
	int i, found = 0;

	(void)ctx;
	(void)sc;
	if (set == NULL || params->session_id_len != 32)
		return 0;
	for (i = 0; i < TLSCACHE_WAYS && !found; i++) {
		if (!read_entry(&set[i], &copy) || copy.w[1] == 0 ||
		    now - copy.w[1] >= TLSCACHE_LIFETIME_S ||
		    memcmp(&copy.w[2], params->session_id, 32) != 0)
			continue;
		memcpy(params->master_secret, &copy.w[6], 48);
		params->version = (uint16_t)(copy.w[12] >> 16);
		params->cipher_suite = (uint16_t)copy.w[12];
		found = 1;
	}
	secret_wipe(&copy, sizeof copy);
	return found;
}

/*
 * resolve.c — the resolver thread and its cache. See resolve.h.
 *
 * Shared state (entries[]) is guarded by mu; the thread never holds mu while it calls
 * getaddrinfo(). The loop side only copies out of entries[] under mu.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "loop.h"
#include "resolve.h"

enum { RS_PENDING, RS_OK, RS_FAILED };

struct entry {
	char name[256];
	int state;
	int n;
	struct net_addr addr[RESOLVE_MAX_ADDRS];
	int64_t next_ms; /* when to (re)resolve */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static struct entry entries[RESOLVE_MAX_HOSTS];
static int nentries;
static int wake[2] = { -1, -1 };

static void
timespec_at(struct timespec *ts, int64_t ms)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
}

static void
resolve_one(const char *name, struct entry *result)
{
	struct addrinfo hints, *res = NULL, *ai;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	result->n = 0;
	if (getaddrinfo(name, NULL, &hints, &res) != 0) {
		result->state = RS_FAILED;
		return;
	}
	for (ai = res; ai && result->n < RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof result->addr[0].ss)
			continue;
		memcpy(&result->addr[result->n].ss, ai->ai_addr, ai->ai_addrlen);
		result->addr[result->n].len = ai->ai_addrlen;
		result->n++;
	}
	freeaddrinfo(res);
	result->state = result->n ? RS_OK : RS_FAILED;
}

static void *
thread_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		int64_t now = loop_now_ms(), soonest = now + RESOLVE_TTL_MS;
		int i, due = -1;
		struct timespec ts;

		for (i = 0; i < nentries; i++) {
			if (entries[i].next_ms <= now) {
				due = i;
				break;
			}
			if (entries[i].next_ms < soonest)
				soonest = entries[i].next_ms;
		}
		if (due >= 0) {
			char name[256];
			static struct entry result;
			memcpy(name, entries[due].name, sizeof name);
			pthread_mutex_unlock(&mu);
			resolve_one(name, &result);
			pthread_mutex_lock(&mu);
			/* The set may have changed meanwhile: find the name again. */
			for (i = 0; i < nentries; i++) {
				struct entry *e = &entries[i];
				if (strcmp(e->name, name) != 0)
					continue;
				if (result.state == RS_OK) {
					e->n = result.n;
					memcpy(e->addr, result.addr, sizeof e->addr);
					e->state = RS_OK;
					e->next_ms = loop_now_ms() + RESOLVE_TTL_MS;
				} else {
					/* Keep the last good answer; retry sooner when there is none. */
					if (e->state != RS_OK)
						e->state = RS_FAILED;
					e->next_ms = loop_now_ms() +
					    (e->state == RS_OK ? RESOLVE_TTL_MS : RESOLVE_RETRY_MS);
				}
			}
			(void)!write(wake[1], "r", 1);
			continue;
		}
		timespec_at(&ts, soonest);
		pthread_cond_timedwait(&cv, &mu, &ts);
	}
	return NULL;
}

/* see resolve.h */
int
resolve_start(void)
{
	pthread_condattr_t ca;
	pthread_attr_t at;
	pthread_t t;
	sigset_t all, old;
	int rc;

	if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0)
		return ERR_IO;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 128 * 1024);
	/* Signals are the loop's business: the thread starts with all of them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &at, thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? ERR_OK : ERR_IO;
}

/* see resolve.h */
void
resolve_set_hosts(const char *const *names, int n)
{
	static struct entry next[RESOLVE_MAX_HOSTS];
	int i, j, m = 0;

	pthread_mutex_lock(&mu);
	for (i = 0; i < n && m < RESOLVE_MAX_HOSTS; i++) {
		int dup = 0;
		for (j = 0; j < m; j++)
			dup |= strcmp(next[j].name, names[i]) == 0;
		if (dup || strlen(names[i]) >= sizeof next[m].name)
			continue;
		memset(&next[m], 0, sizeof next[m]);
		strcpy(next[m].name, names[i]);
		for (j = 0; j < nentries; j++)
			if (strcmp(entries[j].name, names[i]) == 0)
				next[m] = entries[j];
		m++;
	}
	memcpy(entries, next, sizeof entries);
	nentries = m;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* see resolve.h */
int
resolve_wake_fd(void)
{
	return wake[0];
}

/* see resolve.h */
void
resolve_drain(void)
{
	char buf[64];

	while (read(wake[0], buf, sizeof buf) > 0)
		;
}

/* see resolve.h */
int
resolve_lookup(const char *name, unsigned port, struct net_addr *out, int max, int *n)
{
	int i, k, rc = ERR_NOTFOUND;

	*n = 0;
	pthread_mutex_lock(&mu);
	for (i = 0; i < nentries; i++) {
		struct entry *e = &entries[i];
		if (strcmp(e->name, name) != 0)
			continue;
		if (e->state == RS_PENDING) {
			rc = ERR_TRUNC;
			break;
		}
		if (e->state == RS_FAILED && e->n == 0)
			break;
		for (k = 0; k < e->n && k < max; k++) {
			out[k] = e->addr[k];
			if (out[k].ss.ss_family == AF_INET)
				((struct sockaddr_in *)&out[k].ss)->sin_port = htons((uint16_t)port);
			else
				((struct sockaddr_in6 *)&out[k].ss)->sin6_port = htons((uint16_t)port);
		}
		*n = k;
		rc = k ? ERR_OK : ERR_NOTFOUND;
		break;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/*
 * test.h — the unit test harness: one assertion is one counted case.
 *
 * CHECK(cond, name)    passes when cond is true; prints the case name and place on failure.
 * CHECK_INT(a, b, name), CHECK_STR(a, b, name), CHECK_MEM(a, b, n, name) compare values.
 * Each suite is a function `void t_<suite>(void)` listed in runner.c.
 * Fixtures shared by several suites live in runner.c too (t_unhex, t_mktarget).
 */
#ifndef RELAYPRO_TEST_H
#define RELAYPRO_TEST_H

#include <stddef.h>
#include <string.h>

void t_check(int ok, const char *file, int line, const char *name);
void t_check_int(long long a, long long b, const char *file, int line, const char *name);
void t_check_str(const char *a, const char *b, const char *file, int line, const char *name);
void t_check_mem(const void *a, const void *b, size_t n, const char *file, int line,
    const char *name);
/* Decode a hex string into out (at most cap bytes); returns the byte count. */
size_t t_unhex(const char *hex, unsigned char *out, size_t cap);
/* A target as the request parser would leave it, built by hand: host `name` (at most
 * TARGET_HOST_MAX bytes kept), `kind` (TARGET_NAME, TARGET_IPV4, TARGET_IPV6; ip left
 * zero), `port`. The caller includes target.h. */
struct target_addr;
struct target_addr t_mktarget(const char *name, int kind, unsigned port);
/* RELAYPRO_EMULATED as it was at start (the environment is scrubbed of RELAYPRO_* before
 * the suites run): the emulator running the tests (tests/run.py sets it for qemu-user), or
 * NULL. A case the emulator cannot show prints "SKIP suite: name: why" instead of checking
 * (tests/run.py counts those lines as skipped). */
extern const char *t_emulated;

#define CHECK(c, name) t_check(!!(c), __FILE__, __LINE__, (name))
#define CHECK_INT(a, b, name) t_check_int((long long)(a), (long long)(b), __FILE__, __LINE__, (name))
#define CHECK_STR(a, b, name) t_check_str((a), (b), __FILE__, __LINE__, (name))
#define CHECK_MEM(a, b, n, name) t_check_mem((a), (b), (n), __FILE__, __LINE__, (name))

#endif

/*
 * fuzz.h — what every fuzz target shares (docs/fuzzing.md).
 *
 * A target is tests/fuzz/fuzz_<name>.c and defines LLVMFuzzerTestOneInput only: anything
 * else in it is static, so the replay driver can link every target into one program
 * (the Makefile renames each entry point to fuzz_<name>_one there). A target must not
 * keep state between inputs that changes its outcome, must read only data[0..size), and
 * calls FUZZ_ASSERT for properties the parser promises (abort() is a finding).
 */
#ifndef RELAYPRO_FUZZ_H
#define RELAYPRO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #c); \
		abort(); \
	} \
} while (0)

/* Write data[0..size) to a private temporary file (mode 0600) and return its path (static
 * storage, the same path on every call; the file is replaced). NULL on failure. */
static inline const char *
fuzz_tmpfile(const uint8_t *data, size_t size)
{
	static char path[64];
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof path, "/tmp/relaypro-fuzz-%ld", (long)getpid());
	f = fopen(path, "wb");
	if (f == NULL)
		return NULL;
	/* 0600 as the real secret files are: the loaders warn about files others can read */
	(void)fchmod(fileno(f), 0600);
	if (size && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return NULL;
	}
	if (fclose(f) != 0)
		return NULL;
	return path;
}

#endif

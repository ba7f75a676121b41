/*
 * replay.c — the plain driver of `make test`: feeds every file of each target's corpus
 * folder (tests/fuzz/corpus/<name>/) to that target, twice (hidden state between calls
 * shows up as a sanitizer report or a failed FUZZ_ASSERT, as in dropbear's fuzz replay).
 *
 *   fuzz-replay [-l LABEL] CORPUS_ROOT [NAME...]
 *
 * Each input is copied into a buffer of exactly its size, so a read past the end is
 * caught by ASan. A crash ends the program (non-zero); otherwise the last line is
 * "LABEL: N passed, N failed" with one pass per input; a target without a corpus
 * folder, or an unreadable file, is a failure. The targets come from FUZZ_LIST, which
 * the Makefile builds from FUZZ_TARGETS: T(http) T(jwt) ...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#ifndef FUZZ_LIST
#error "FUZZ_LIST must name the targets: -DFUZZ_LIST='T(http) T(jwt)'"
#endif

#define T(n) int fuzz_##n##_one(const uint8_t *data, size_t size);
FUZZ_LIST
#undef T

static const struct {
	const char *name;
	int (*fn)(const uint8_t *, size_t);
} targets[] = {
#define T(n) { #n, fuzz_##n##_one },
	FUZZ_LIST
#undef T
};

static int
wanted(const char *name, int argc, char **argv, int first)
{
	int i;

	if (first >= argc)
		return 1;
	for (i = first; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

/* Read path whole into a fresh buffer of exactly its size. NULL on failure. */
static uint8_t *
slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(n ? (size_t)n : 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*size = (size_t)n;
	}
	fclose(f);
	return buf;
}

static int
only_files(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int
main(int argc, char **argv)
{
	const char *label = "fuzz-replay";
	int first = 1, pass = 0, fail = 0;
	size_t t;

	if (argc > 2 && strcmp(argv[1], "-l") == 0) {
		label = argv[2];
		first = 3;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: %s [-l LABEL] CORPUS_ROOT [NAME...]\n", argv[0]);
		return 2;
	}
	for (t = 0; t < sizeof targets / sizeof targets[0]; t++) {
		char dir[4096];
		struct dirent **ents;
		int n, i, tp = 0;

		if (!wanted(targets[t].name, argc, argv, first + 1))
			continue;
		snprintf(dir, sizeof dir, "%s/%s", argv[first], targets[t].name);
		n = scandir(dir, &ents, only_files, alphasort);
		if (n <= 0) {
			printf("%s %s: no corpus in %s\n", label, targets[t].name, dir);
			fail++;
			if (n == 0)
				free(ents);
			continue;
		}
		for (i = 0; i < n; i++) {
			char path[8192];
			uint8_t *buf;
			size_t size = 0;

			snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
			free(ents[i]);
			buf = slurp(path, &size);
			if (buf == NULL) {
				printf("%s %s: cannot read %s\n", label, targets[t].name, path);
				fail++;
				continue;
			}
			targets[t].fn(buf, size);
			targets[t].fn(buf, size);
			free(buf);
			pass++;
			tp++;
		}
		free(ents);
		printf("%s %s: %d inputs\n", label, targets[t].name, tp);
		fflush(stdout);
	}
	printf("%s: %d passed, %d failed\n", label, pass, fail);
	return fail ? 1 : 0;
}

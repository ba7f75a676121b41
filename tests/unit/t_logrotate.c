/* t_logrotate.c — log rotation (docs/configuration.md) on real files in a temporary folder, with the
 * clock injected through log_set_clock: rotation exactly when the next record would pass
 * maxSize, rotated names from the clock that sort by time (and stay unique within one
 * millisecond), maxBackups (oldest deleted first), maxAge (by the time in the name), gzip
 * (gzip magic, CRC-32 and length trailer of the expected bytes), following a log file
 * moved or removed from outside (at log_follow while alone; at the next record once shared,
 * by log_share or found so at the rotation check, where another writer's bytes count),
 * two processes rotating one file without losing a line,
 * and write errors: counted, one warning a minute on stderr, the count reported into the
 * log once it works again. The .gz contents are inflated in t_deflate (encoder) and by
 * gunzip in tests/integration/test_logrotate.py (files of the real binary). */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deflate.h"
#include "err.h"
#include "log.h"
#include "test.h"

#define T0 1795428000123LL /* 2026-11-23T10:00:00.123Z */
#define MAXN 64

static int64_t fake_ms;
static char dir[] = "/tmp/t_logrotate.XXXXXX";
static char path[128];

static int64_t
fake_clock(void)
{
	return fake_ms;
}

static long
fsize(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Rotated files of relay.log in dir, sorted by name; returns how many. */
static int
list_rotated(char names[MAXN][80])
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL && n < MAXN)
		if (strncmp(e->d_name, "relay.log.", 10) == 0 && strlen(e->d_name) < 80)
			memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
	closedir(d);
	qsort(names, (size_t)n, 80, cmp_names);
	return n;
}

/* "<dir>/<name>" into out[256]. */
static void
in_dir(char out[256], const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	if (a + 1 + b + 1 > 256)
		b = 0;
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b);
	out[a + 1 + b] = 0;
}

static void
clear_dir(void)
{
	char names[MAXN][80], p[256];
	int n = list_rotated(names), i;

	for (i = 0; i < n; i++) {
		in_dir(p, names[i]);
		unlink(p);
	}
	unlink(path);
}

static void
put(int n)
{
	while (n-- > 0)
		log_msg(LOG_INFO, "t", "0123456789abcdefghijklmnopqrstuvwxyz");
}

/* Size of one record: the clock is fixed, so every record of put() has the same. */
static long rec_len;

static void
trigger_cases(void)
{
	char names[MAXN][80], p[256];
	int n;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "open the log file");
	put(1);
	rec_len = fsize(path);
	CHECK(rec_len > 50 && rec_len < 200, "one record written");
	log_set_rotation((uint64_t)(rec_len * 10 + rec_len / 2), 0, 0, 0);
	put(9);
	CHECK_INT(fsize(path), rec_len * 10, "ten records, no rotation yet");
	CHECK_INT(list_rotated(names), 0, "nothing rotated below maxSize");
	put(1);
	n = list_rotated(names);
	CHECK_INT(n, 1, "the record that would pass maxSize rotates the file");
	CHECK_STR(n ? names[0] : "", "relay.log.20261123T100000.123Z", "rotated name: UTC clock time");
	in_dir(p, n ? names[0] : "");
	CHECK_INT(fsize(p), rec_len * 10, "the rotated file holds the ten records before");
	CHECK_INT(fsize(path), rec_len, "the new record starts a fresh file");
	CHECK(fsize(p) <= rec_len * 10 + rec_len / 2, "rotated file within maxSize");
}

static void
naming_cases(void)
{
	char names[MAXN][80], prev[80] = "";
	int i, n, ok = 1;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	fake_ms = T0 + 100000;   /* each case starts later than the last rotated name */
	/* Rotate every 2 records; the clock stands still for three rotations, then moves. */
	log_set_rotation((uint64_t)(rec_len * 2), 0, 0, 0);
	for (i = 0; i < 8; i++) {
		char newest[80];
		put(2);
		if (i >= 3)
			fake_ms += 1500;
		n = list_rotated(names);
		snprintf(newest, sizeof newest, "%s", n ? names[n - 1] : "");
		if (i > 0 && (n != i || strcmp(newest, prev) <= 0))
			ok = 0;
		snprintf(prev, sizeof prev, "%s", newest);
	}
	n = list_rotated(names);
	CHECK_INT(n, 7, "one rotation every two records");
	CHECK(ok, "each new rotated name sorts after every earlier one");
	CHECK_STR(names[0], "relay.log.20261123T100140.123Z", "first name");
	CHECK_STR(names[1], "relay.log.20261123T100140.124Z", "same millisecond: next name +1 ms");
	CHECK_STR(names[2], "relay.log.20261123T100140.125Z", "and +2 ms");
	CHECK_STR(names[3], "relay.log.20261123T100141.623Z", "then the clock again");
}

static void
backups_cases(void)
{
	char names[MAXN][80], all[MAXN][80];
	int i, n, total = 0;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_set_rotation((uint64_t)(rec_len * 2), 0, 3, 0);
	fake_ms = T0 + 200000;
	for (i = 0; i < 6; i++) {
		fake_ms += 1000;
		put(2);
		log_rotation_wait();
		n = list_rotated(names);
		if (n > 0)
			snprintf(all[total++], 80, "%s", names[n - 1]);
	}
	n = list_rotated(names);
	CHECK_INT(n, 3, "maxBackups = 3 keeps three rotated files");
	CHECK(total >= 3 && n == 3 && strcmp(names[0], all[total - 3]) == 0 &&
	    strcmp(names[2], all[total - 1]) == 0, "the three newest are kept");
	CHECK(fsize(path) > 0, "the live file is not counted");
}

static void
age_cases(void)
{
	char names[MAXN][80];
	int n;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_set_rotation((uint64_t)(rec_len * 2), 60, 0, 0);
	fake_ms = T0 + 300000;   /* 10:05:00.123 */
	put(2);
	put(2);                  /* rotations at t and t + 1 ms */
	put(1);
	fake_ms = T0 + 330000;
	put(2);                  /* t + 30 s */
	log_rotation_wait();
	CHECK_INT(list_rotated(names), 3, "nothing older than maxAge yet");
	fake_ms = T0 + 390000;
	put(2);                  /* t + 90 s: the two at t are now over 60 s old, not t + 30 s */
	log_rotation_wait();
	n = list_rotated(names);
	CHECK_INT(n, 2, "maxAge = 60 s deletes the rotated files older than 60 s");
	CHECK(n == 2 && strcmp(names[0], "relay.log.20261123T100530.123Z") == 0,
	    "the file 60 s old is kept");
}

static uint32_t
le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
compress_cases(void)
{
	char names[MAXN][80], p[256], rec[256], want[2560];
	unsigned char gz[4096];
	int n, i, fd, ok = 1;
	ssize_t got;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	fake_ms = T0 + 400000;
	put(1);
	fd = open(path, O_RDONLY);
	got = fd >= 0 ? read(fd, rec, sizeof rec) : -1;
	if (fd >= 0)
		close(fd);
	CHECK_INT(got, rec_len, "read one record");
	for (i = 0; i < 10 && got == rec_len; i++)
		memcpy(want + i * rec_len, rec, (size_t)rec_len);
	log_set_rotation((uint64_t)(rec_len * 10), 0, 2, 1);
	put(9);                  /* 10 records: full */
	put(10);                 /* rotation, then 10 more */
	put(10);                 /* rotation, then 10 more */
	put(1);                  /* a third rotation: one is pruned */
	log_rotation_wait();
	n = list_rotated(names);
	CHECK_INT(n, 2, "two compressed files kept (maxBackups = 2)");
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		in_dir(p, names[i]);
		fd = open(p, O_RDONLY);
		got = fd >= 0 ? read(fd, gz, sizeof gz) : -1;
		if (fd >= 0)
			close(fd);
		if (len < 3 || strcmp(names[i] + len - 3, ".gz") != 0 || got < 18 || gz[0] != 0x1f ||
		    gz[1] != 0x8b || le32(gz + got - 4) != (uint32_t)(rec_len * 10) ||
		    le32(gz + got - 8) != deflate_crc32(0, want, (size_t)(rec_len * 10)))
			ok = 0;
		if (got > 0 && got > rec_len * 10 / 2)
			ok = 0; /* ten equal records must compress well */
	}
	CHECK(ok, "rotated files are gzip with the CRC-32 and length of their records");
	CHECK_INT(fsize(path), rec_len, "the live file is not compressed");
}

static void
startup_cases(void)
{
	char names[MAXN][80], p[256];
	int fd, n;

	/* A stop during compression leaves a plain rotated file: the next start finishes. */
	clear_dir();
	log_set_rotation(0, 0, 0, 0);
	in_dir(p, "relay.log.20261123T095959.999Z");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	CHECK(fd >= 0 && write(fd, "{\"x\":1}\n", 8) == 8, "a leftover rotated file");
	if (fd >= 0)
		close(fd);
	CHECK_INT(log_open(path), ERR_OK, "open at start");
	log_rotation_wait();
	CHECK_INT(list_rotated(names), 1, "nothing done before rotation is set");
	log_set_rotation(1 << 20, 0, 3, 1);
	log_rotation_wait();
	n = list_rotated(names);
	CHECK(n == 1 && strcmp(names[0], "relay.log.20261123T095959.999Z.gz") == 0,
	    "housekeeping at start compresses what the last run left");
}

static void
follow_cases(void)
{
	char p[256];
	int fd;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_set_rotation(1 << 20, 0, 0, 0);
	put(3);
	unlink(path);
	put(1);
	CHECK_INT(fsize(path), -1, "alone, the name is not looked at for every record");
	log_follow();
	put(1);
	CHECK_INT(fsize(path), rec_len, "log_follow (SIGHUP): a removed log file is created again");
	snprintf(p, sizeof p, "%s/moved.log", dir);
	CHECK(rename(path, p) == 0, "move the log away");
	put(1);
	log_follow();
	put(2);
	CHECK_INT(fsize(path), rec_len * 2, "after a move and log_follow, records go to the name");
	CHECK_INT(fsize(p), rec_len * 2, "the moved file is left alone");
	unlink(p);

	/* The rotation check looks at the truth: bytes another writer appended count, and
	 * from then on every record follows the name (shared). */
	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_set_rotation((uint64_t)(rec_len * 4 + rec_len / 2), 0, 0, 0);
	put(2);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, p, (size_t)rec_len) == rec_len && write(fd, p, (size_t)rec_len) ==
	    rec_len, "another writer appends two records' worth");
	if (fd >= 0)
		close(fd);
	put(2);
	CHECK_INT(fsize(path), rec_len * 6, "by its own count (4 of 4.5) the file is not full: no look yet");
	put(1);
	CHECK(fsize(path) == rec_len, "the check before the next record sees the truth and rotates");
	unlink(path);
	put(1);
	CHECK_INT(fsize(path), rec_len, "found shared: the next record follows a removed name");

	/* log_share: from the first record on. */
	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_share();
	put(1);
	unlink(path);
	put(1);
	CHECK_INT(fsize(path), rec_len, "log_share: the next record follows a removed name");
	snprintf(p, sizeof p, "%s/moved.log", dir);
	CHECK(rename(path, p) == 0, "move the log away");
	put(2);
	CHECK_INT(fsize(path), rec_len * 2, "log_share: after a move, records go to the name again");
	CHECK_INT(fsize(p), rec_len, "the moved file is left alone");
	unlink(p);
}

static void
two_process_cases(void)
{
	char names[MAXN][80], p[256];
	long total = 0, biggest = 0, sz;
	int n, i, st = 0;
	pid_t pid;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_set_rotation((uint64_t)(rec_len * 20), 0, 0, 0);
	log_rotation_wait();
	log_share(); /* workers share the file (the loop says so for workers > 1) */
	pid = fork();
	if (pid == 0) {
		/* A second worker with its own descriptor on the same file. */
		log_open(path);
		put(200);
		_exit(0);
	}
	put(200);
	if (pid > 0)
		waitpid(pid, &st, 0);
	CHECK(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "second process ran");
	n = list_rotated(names);
	for (i = 0; i < n; i++) {
		in_dir(p, names[i]);
		sz = fsize(p);
		total += sz;
		if (sz > biggest)
			biggest = sz;
	}
	total += fsize(path);
	CHECK_INT(total, rec_len * 400, "two processes rotating one file lose no record");
	CHECK(n >= 18 && n <= 21, "about one rotation per 20 records");
	CHECK(biggest <= rec_len * 21, "rotated files stay near maxSize");
}

static void *
second_thread(void *arg)
{
	(void)arg;
	put(300);
	return NULL;
}

static void
two_thread_cases(void)
{
	char names[MAXN][80], p[256];
	long total = 0;
	pthread_t t;
	int n, i, started;

	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "reopen");
	log_set_rotation((uint64_t)(rec_len * 30), 0, 0, 0);
	started = pthread_create(&t, NULL, second_thread, NULL) == 0;
	put(300);
	if (started)
		pthread_join(t, NULL);
	CHECK(started, "second thread");
	n = list_rotated(names);
	for (i = 0; i < n; i++) {
		in_dir(p, names[i]);
		total += fsize(p);
	}
	total += fsize(path);
	CHECK_INT(total, rec_len * 600, "two threads logging through rotations lose no record");
	CHECK_INT(n, 19, "600 records, 30 per file: 19 rotations");
}

static void
error_cases(void)
{
	char buf[4096], p[256];
	uint64_t before;
	ssize_t got;
	int pipefd[2], saved_err, fd, count;
	const char *q;

	CHECK_INT(log_open(dir), ERR_IO, "a folder cannot be the log file");
	if (access("/dev/full", W_OK) != 0 || pipe2(pipefd, O_NONBLOCK) != 0) {
		CHECK(0, "/dev/full and a pipe are needed");
		return;
	}
	saved_err = dup(2);
	dup2(pipefd[1], 2);
	CHECK_INT(log_open("/dev/full"), ERR_OK, "open /dev/full");
	log_set_rotation((uint64_t)(rec_len * 2), 60, 3, 1);
	before = log_dropped();
	fake_ms = T0 + 1000000;
	put(5);
	CHECK_INT(log_dropped() - before, 5, "every failed record is counted");
	got = read(pipefd[0], buf, sizeof buf - 1);
	buf[got > 0 ? got : 0] = 0;
	for (count = 0, q = buf; (q = strstr(q, "\"event\":\"log.dropped\"")) != NULL; q++)
		count++;
	CHECK_INT(count, 1, "one warning on stderr for five drops");
	CHECK(strstr(buf, "\"dropped\":") && strstr(buf, "No space left on device"),
	    "the warning names the count and the error");
	fake_ms += 30000;
	put(3);
	got = read(pipefd[0], buf, sizeof buf - 1);
	CHECK(got <= 0, "no second warning within the minute");
	fake_ms += 31000;
	put(1);
	got = read(pipefd[0], buf, sizeof buf - 1);
	buf[got > 0 ? got : 0] = 0;
	CHECK(got > 0 && strstr(buf, "log.dropped") != NULL, "another warning a minute later");
	dup2(saved_err, 2);
	close(saved_err);
	close(pipefd[0]);
	close(pipefd[1]);

	/* The log works again: the count is reported into it, once the minute has passed. */
	clear_dir();
	CHECK_INT(log_open(path), ERR_OK, "back to a writable file");
	put(1);
	CHECK_INT(fsize(path), rec_len, "within the minute: only the record");
	fake_ms += 61000;
	put(1);
	fd = open(path, O_RDONLY);
	got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[got > 0 ? got : 0] = 0;
	snprintf(p, sizeof p, "\"dropped\":%llu", (unsigned long long)log_dropped());
	CHECK(strstr(buf, "\"event\":\"log.dropped\"") != NULL && strstr(buf, p) != NULL,
	    "the log itself learns how many records were lost");
}

void
t_logrotate(void)
{
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/relay.log", dir);
	fake_ms = T0;
	log_set_clock(fake_clock);

	trigger_cases();
	naming_cases();
	backups_cases();
	age_cases();
	compress_cases();
	startup_cases();
	follow_cases();
	two_process_cases();
	two_thread_cases();
	error_cases();

	log_rotation_wait();
	log_set_rotation(0, 0, 0, 0);
	log_open("-");
	log_use_fd(2);
	log_set_clock(NULL);
	clear_dir();
	rmdir(dir);
}

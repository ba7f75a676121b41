/* t_log.c — JSON-lines records: golden output with a fixed clock, escaping of any bytes,
 * truncation, level filtering. Records go through a pipe and are compared byte for byte. */
#include <fcntl.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

static int64_t
fixed_clock(void)
{
	return 1795428000123LL; /* 2026-11-23T10:00:00.123Z */
}

static size_t
drain(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);

	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

void
t_log(void)
{
	struct log_rec r;
	char buf[8192], ts[25];
	int p[2];
	size_t n;

	CHECK(pipe2(p, O_NONBLOCK) == 0, "pipe");
	log_use_fd(p[1]);
	log_set_clock(fixed_clock);

	log_format_time(ts, 0);
	CHECK_STR(ts, "1970-01-01T00:00:00.000Z", "epoch formats");

	CHECK(log_begin(&r, LOG_INFO, "tunnel.close"), "info is on");
	log_str(&r, "sub", "responder-1");
	log_int(&r, "bytes_up", 1234);
	log_int(&r, "neg", -5);
	log_bool(&r, "tls", 1);
	log_end(&r);
	drain(p[0], buf, sizeof buf);
	CHECK_STR(buf, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\",\"event\":\"tunnel.close\","
	    "\"sub\":\"responder-1\",\"bytes_up\":1234,\"neg\":-5,\"tls\":true}\n", "golden record");

	log_begin(&r, LOG_WARN, "auth.fail");
	log_strn(&r, "reason", "a\"b\\\n\r\t\x01\xff\xc3\xa9", 11);
	log_end(&r);
	drain(p[0], buf, sizeof buf);
	CHECK_STR(buf, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"warn\",\"event\":\"auth.fail\","
	    "\"reason\":\"a\\\"b\\\\\\n\\r\\t\\u0001\\u00ff\xc3\xa9\"}\n", "escaping of hostile bytes");

	log_set_debug(0);
	CHECK(!log_begin(&r, LOG_DEBUG, "conn.state"), "debug filtered");
	log_str(&r, "x", "y");
	log_end(&r);
	n = drain(p[0], buf, sizeof buf);
	CHECK_INT(n, 0, "nothing written for a filtered record");
	log_set_debug(1);
	CHECK(log_begin(&r, LOG_DEBUG, "conn.state"), "debug on");
	log_end(&r);
	drain(p[0], buf, sizeof buf);
	CHECK(strstr(buf, "\"level\":\"debug\"") != NULL, "debug written when enabled");
	log_set_debug(0);

	{
		char big[3000];
		memset(big, 'x', sizeof big);
		log_begin(&r, LOG_ERROR, "big");
		log_str(&r, "a", "kept");
		log_strn(&r, "b", big, sizeof big);
		log_str(&r, "c", "after");
		log_end(&r);
		n = drain(p[0], buf, sizeof buf);
		CHECK(n <= LOG_REC_MAX, "record within LOG_REC_MAX");
		CHECK(strstr(buf, "\"a\":\"kept\"") != NULL, "fields before the overflow kept");
		CHECK(strstr(buf, "\"b\":") == NULL, "overflowing field dropped whole");
		CHECK(strstr(buf, ",\"truncated\":true}\n") != NULL, "truncation marked");
	}
	log_set_clock(NULL);
	log_use_fd(2);
	close(p[0]);
	close(p[1]);
}

/* t_json.c — the strict JSON reader and the escaper: good and hostile inputs. */
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "json.h"
#include "test.h"

struct seen {
	int64_t n;
	char s[64];
	int count;
};

static int
member(void *user, const char *key, size_t keylen, struct json *j)
{
	struct seen *s = user;

	s->count++;
	if (keylen == 1 && key[0] == 'n')
		return json_read_int(j, &s->n);
	if (keylen == 1 && key[0] == 's')
		return json_read_string(j, s->s, sizeof s->s, NULL);
	return json_skip(j);
}

static int
walk(const char *text, struct seen *s)
{
	struct json j;
	int rc;

	memset(s, 0, sizeof *s);
	json_init(&j, text, strlen(text));
	rc = json_walk_object(&j, member, s);
	return rc != ERR_OK ? rc : json_end(&j);
}

void
t_json(void)
{
	static const char *good[] = {
		"{}", " { } ", "{\"n\":1}", "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":-1.5e3}",
		"{\"a\":\"\\u00e9\\ud83d\\ude00\"}", "{\"x\":{\"y\":{\"z\":[]}}}", "{\"a\":\"caf\xc3\xa9\"}",
		"{\"e\":0.0,\"f\":1E+2,\"g\":-0}",
	};
	static const struct { const char *in; int rc; } bad[] = {
		{ "", ERR_INVAL }, { "[]", ERR_INVAL }, { "{", ERR_INVAL }, { "{\"a\"}", ERR_INVAL },
		{ "{\"a\":}", ERR_INVAL }, { "{\"a\":1,}", ERR_INVAL }, { "{a:1}", ERR_INVAL },
		{ "{\"a\":1}x", ERR_INVAL }, { "{\"a\":01}", ERR_INVAL }, { "{\"a\":1.}", ERR_INVAL },
		{ "{\"a\":tru}", ERR_INVAL }, { "{\"a\":\"\x01\"}", ERR_INVAL }, { "{\"a\":\"\\x\"}", ERR_INVAL },
		{ "{\"a\":\"\\ud800\"}", ERR_INVAL }, { "{\"a\":\"\\udc00\"}", ERR_INVAL },
		{ "{\"a\":\"\xc0\xaf\"}", ERR_INVAL }, { "{\"a\":\"\xed\xa0\x80\"}", ERR_INVAL },
		{ "{\"a\":\"\xff\"}", ERR_INVAL }, { "{\"a\":1,\"a\":2}", ERR_DUP },
		{ "{\"a\":1,\"\\u0061\":2}", ERR_DUP }, { "{\"a\":'x'}", ERR_INVAL },
		{ "{\"a\":[1 2]}", ERR_INVAL }, { "{\"n\":1.5}", ERR_INVAL },
		{ "{\"n\":99999999999999999999}", ERR_RANGE }, { "{\"n\":\"1\"}", ERR_INVAL },
		{ "{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}", ERR_RANGE },
		{ "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}", ERR_RANGE },
	};
	struct seen s;
	char many[600], out[64];
	size_t i, o;

	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		CHECK_INT(walk(good[i], &s), ERR_OK, good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(walk(bad[i].in, &s), bad[i].rc, bad[i].in);

	CHECK(walk("{\"n\":-9223372036854775808,\"s\":\"a\\\"b\\\\c\\n\"}", &s) == ERR_OK &&
	    s.n == INT64_MIN && strcmp(s.s, "a\"b\\c\n") == 0 && s.count == 2, "values read back");
	CHECK(walk("{\"s\":\"\\u00e9\"}", &s) == ERR_OK && strcmp(s.s, "\xc3\xa9") == 0,
	    "\\u escape to UTF-8");
	CHECK(walk("{\"s\":\"\\ud83d\\ude00\"}", &s) == ERR_OK && strcmp(s.s, "\xf0\x9f\x98\x80") == 0,
	    "surrogate pair to UTF-8");
	CHECK_INT(walk("{\"s\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}", &s),
	    ERR_NOSPACE, "string longer than the caller's buffer");

	/* 33 members: over JSON_MAX_MEMBERS. */
	o = (size_t)snprintf(many, sizeof many, "{");
	for (i = 0; i < 33; i++)
		o += (size_t)snprintf(many + o, sizeof many - o, "%s\"k%zu\":1", i ? "," : "", i);
	snprintf(many + o, sizeof many - o, "}");
	CHECK_INT(walk(many, &s), ERR_RANGE, "too many members");

	/* Escaper. */
	o = json_escape(out, sizeof out, "a\"b\\c\n\x01\x7f\xc3\xa9\xff", 11);
	out[o] = 0;
	CHECK_STR(out, "a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9\\u00ff", "escape controls, quotes, bad UTF-8");
	CHECK_INT(json_escape(NULL, 0, "\"\"", 2), 4, "escape length pass");
	o = json_escape(out, 3, "ab\"cd", 5);
	CHECK_INT(o, 2, "escape stops before a piece that does not fit");
}

/*
 * fuzz_json.c — the JSON reader and escaper (json.c).
 *
 * The input is read as one JSON value with a generic walker (objects member by member,
 * arrays with json_skip after reading what can be read), then skipped as a whole.
 * Escaper: any input escaped and put in quotes must read back as a JSON string, equal to
 * the input when the input is printable ASCII.
 */
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "json.h"

static int value(struct json *j);

static int
member(void *user, const char *key, size_t keylen, struct json *j)
{
	(void)user;
	FUZZ_ASSERT(keylen <= JSON_MAX_KEY && strlen(key) <= keylen);
	return value(j);
}

static int
value(struct json *j)
{
	char s[256];
	size_t n;
	int64_t i;
	int b, rc;

	switch (json_peek(j)) {
	case JSON_OBJECT:
		return json_walk_object(j, member, NULL);
	case JSON_STRING:
		rc = json_read_string(j, s, sizeof s, &n);
		if (rc == ERR_OK)
			FUZZ_ASSERT(n < sizeof s && s[n] == 0);
		return rc == ERR_NOSPACE ? json_skip(j) : rc;
	case JSON_NUMBER: {
		size_t at = j->pos;
		rc = json_read_int(j, &i);
		if (rc != ERR_OK) {
			j->pos = at; /* a fraction or exponent: still a number to skip */
			return json_skip(j);
		}
		return rc;
	}
	case JSON_BOOL:
		rc = json_read_bool(j, &b);
		if (rc == ERR_OK)
			FUZZ_ASSERT(b == 0 || b == 1);
		return rc;
	case JSON_NONE:
		return ERR_INVAL;
	default:
		return json_skip(j);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char esc[6 * 4096 + 3], back[4096 + 1];
	struct json j;
	size_t n, e, i;
	int rc, ascii = 1;

	json_init(&j, (const char *)data, size);
	if (value(&j) == ERR_OK) {
		FUZZ_ASSERT(j.pos <= size);
		(void)json_end(&j);
	}
	FUZZ_ASSERT(j.pos <= size && j.depth >= 0);
	json_init(&j, (const char *)data, size);
	if (json_skip(&j) == ERR_OK)
		FUZZ_ASSERT(j.pos <= size);

	if (size > 4096)
		return 0;
	e = json_escape(NULL, 0, data, size);
	FUZZ_ASSERT(e + 2 <= sizeof esc);
	if (e > 0)
		FUZZ_ASSERT(json_escape(esc + 1, e - 1, data, size) < e);
	esc[0] = '"';
	FUZZ_ASSERT(json_escape(esc + 1, e, data, size) == e);
	esc[e + 1] = '"';
	json_init(&j, esc, e + 2);
	rc = json_read_string(&j, back, sizeof back, &n);
	for (i = 0; i < size; i++)
		ascii &= data[i] >= 0x20 && data[i] < 0x7f;
	if (ascii) {
		FUZZ_ASSERT(rc == ERR_OK);
		FUZZ_ASSERT(n == size && memcmp(back, data, size) == 0);
	} else {
		FUZZ_ASSERT(rc == ERR_OK || rc == ERR_NOSPACE);
	}
	FUZZ_ASSERT(json_end(&j) == ERR_OK || rc != ERR_OK);
	return 0;
}

/*
 * fuzz_ca.c — the CA bundle loader (ca.c): PEM splitting, the PKCS#1 RSA key parser,
 * BearSSL's X.509 decoder on the certificate, the key/certificate match, subject and
 * key identifier extraction. The input is written to a temporary file (an existing
 * file is only ever read, never replaced) and loaded.
 */
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "err.h"
#include "fuzz.h"

static struct ca ca;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	const char *path;
	int rc;

	if (size > CA_FILE_MAX + 1)
		return 0;
	path = fuzz_tmpfile(data, size);
	if (path == NULL)
		return 0;
	err[0] = 0;
	rc = ca_load_or_create(&ca, path, 2048, "fuzz", err, sizeof err);
	unlink(path);
	FUZZ_ASSERT(ca.created == 0);
	if (rc != ERR_OK) {
		FUZZ_ASSERT(err[0] != 0 && memchr(err, 0, sizeof err) != NULL);
		return 0;
	}
	FUZZ_ASSERT(ca.cert_len > 0 && ca.cert_len <= sizeof ca.cert);
	FUZZ_ASSERT(ca.name_len > 0 && ca.name_len <= sizeof ca.name);
	FUZZ_ASSERT(ca.ski_len > 0 && ca.ski_len <= sizeof ca.ski);
	FUZZ_ASSERT(ca.key_der_len > 0 && ca.key_der_len <= sizeof ca.key_der);
	ca_free(&ca);
	return 0;
}

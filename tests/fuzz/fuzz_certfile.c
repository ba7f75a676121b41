/*
 * fuzz_certfile.c — the operator's certificate pair (certfile.c, pem.c): PEM objects,
 * the DER walk of each certificate (issuer, validity, subject, signature), BearSSL's
 * X.509 and private-key decoders, the chain order and signature checks, the key type and
 * size rules, the key/leaf match. Input: two bytes (big-endian) giving the length of the
 * certFile text, that text, then the keyFile text.
 */
#include <string.h>

#include "certfile.h"
#include "err.h"
#include "fuzz.h"

static struct certfile_pair pair;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	size_t n, i;
	int rc;

	if (size < 2 || size > 2 * CERTFILE_TEXT_MAX)
		return 0;
	n = (size_t)data[0] << 8 | data[1];
	if (n > size - 2)
		n = size - 2;
	err[0] = 0;
	rc = certfile_parse(&pair, data + 2, n, "cert", data + 2 + n, size - 2 - n, "key", err,
	    sizeof err);
	if (rc != ERR_OK) {
		FUZZ_ASSERT(rc == ERR_INVAL && err[0] != 0 && memchr(err, 0, sizeof err) != NULL);
		FUZZ_ASSERT(pair.chain_len == 0 && pair.key_type == 0); /* wiped */
		return 0;
	}
	FUZZ_ASSERT(pair.chain_len >= 1 && pair.chain_len <= CERTFILE_CHAIN_MAX);
	for (i = 0; i < pair.chain_len; i++)
		FUZZ_ASSERT(pair.chain[i].data >= pair.der &&
		    pair.chain[i].data + pair.chain[i].data_len <= pair.der + sizeof pair.der);
	FUZZ_ASSERT(pair.key_type == BR_KEYTYPE_EC || pair.key_type == BR_KEYTYPE_RSA);
	FUZZ_ASSERT(pair.key_type != BR_KEYTYPE_RSA || (pair.key_bits >= CERTFILE_RSA_BITS_MIN &&
	    pair.key_bits <= CERTFILE_RSA_BITS_MAX));
	FUZZ_ASSERT(pair.key_type != BR_KEYTYPE_EC || pair.key_bits == 256 || pair.key_bits == 384);
	FUZZ_ASSERT(memchr(pair.subject, 0, sizeof pair.subject) != NULL);
	certfile_wipe(&pair);
	return 0;
}

/*
 * kdf.c — HKDF-SHA256 key derivation on top of BearSSL's br_hkdf. See kdf.h.
 */
#include <stdio.h>
#include <string.h>

#include <bearssl.h>

#include "err.h"
#include "kdf.h"
#include "secret.h"

/* see kdf.h */
void
kdf_hkdf_sha256(void *out, size_t outlen, const void *salt, size_t saltlen,
    const void *ikm, size_t ikmlen, const void *info, size_t infolen)
{
	br_hkdf_context hc;

	br_hkdf_init(&hc, &br_sha256_vtable, salt, saltlen);
	br_hkdf_inject(&hc, ikm, ikmlen);
	br_hkdf_flip(&hc);
	br_hkdf_produce(&hc, info, infolen, out, outlen);
	secret_wipe(&hc, sizeof hc);
}

/* see kdf.h */
void
kdf_master_init(struct kdf_master *m, const void *ca_key_der, size_t len)
{
	br_hmac_key_context kc;
	br_hmac_context hc;

	/* HKDF-Extract is HMAC(salt, IKM): done here directly so the PRK can be kept and
	 * each Expand started from it (br_hkdf keeps its PRK inside a non-reusable context). */
	br_hmac_key_init(&kc, &br_sha256_vtable, KDF_SALT, sizeof KDF_SALT - 1);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, ca_key_der, len);
	br_hmac_out(&hc, m->prk);
	secret_wipe(&kc, sizeof kc);
	secret_wipe(&hc, sizeof hc);
}

/* see kdf.h */
int
kdf_access_key(const struct kdf_master *m, const char *sub, size_t sublen, int64_t org,
    uint64_t epoch, unsigned char out[KDF_KEY_LEN])
{
	unsigned char info[200], t[32];
	br_hmac_key_context kc;
	br_hmac_context hc;
	int n;

	if (sublen > 128)
		return ERR_RANGE;
	n = snprintf((char *)info, sizeof info, "access-token%c%lld%c%llu%c", 0, (long long)org, 0,
	    (unsigned long long)epoch, 0);
	if (n < 0 || (size_t)n + sublen > sizeof info)
		return ERR_RANGE;
	memcpy(info + n, sub, sublen);

	/* HKDF-Expand for L = 32 is one block: T(1) = HMAC(PRK, info || 0x01). */
	br_hmac_key_init(&kc, &br_sha256_vtable, m->prk, sizeof m->prk);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, info, (size_t)n + sublen);
	br_hmac_update(&hc, "\x01", 1);
	br_hmac_out(&hc, t);
	memcpy(out, t, KDF_KEY_LEN);
	secret_wipe(t, sizeof t);
	secret_wipe(&kc, sizeof kc);
	secret_wipe(&hc, sizeof hc);
	return ERR_OK;
}

/* see kdf.h */
void
kdf_master_wipe(struct kdf_master *m)
{
	secret_wipe(m->prk, sizeof m->prk);
}

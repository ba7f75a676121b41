/*
 * kdf.h — per-Responder access-token keys (docs/protocol.md), HKDF-SHA256 (RFC 5869).
 *
 *   master   = HKDF-Extract(salt = "relaypro access-token v1", IKM = DER of the CA RSA key)
 *   key(sub, org, epoch) = HKDF-Expand(master, "access-token" 0x00 dec(org) 0x00
 *                                      dec(epoch) 0x00 sub, 32)
 *
 * The master is computed once when the CA is loaded and kept in a kdf_master, which
 * the owner wipes with kdf_master_wipe(). Derived keys are never stored on disk.
 */
#ifndef RELAYPRO_KDF_H
#define RELAYPRO_KDF_H

#include <stddef.h>
#include <stdint.h>

#define KDF_KEY_LEN 32
#define KDF_SALT "relaypro access-token v1"

struct kdf_master {
	unsigned char prk[32];
};

/* HKDF-SHA256 in one call (for tests and other callers): out[0..outlen). */
void kdf_hkdf_sha256(void *out, size_t outlen, const void *salt, size_t saltlen,
    const void *ikm, size_t ikmlen, const void *info, size_t infolen);

/* master = HKDF-Extract(KDF_SALT, ca_key_der). */
void kdf_master_init(struct kdf_master *m, const void *ca_key_der, size_t len);

/* Derive the access-token key for (sub, org, epoch) into out[KDF_KEY_LEN].
 * ERR_RANGE when sub is longer than 128 bytes. */
int kdf_access_key(const struct kdf_master *m, const char *sub, size_t sublen, int64_t org,
    uint64_t epoch, unsigned char out[KDF_KEY_LEN]);

void kdf_master_wipe(struct kdf_master *m);

#endif

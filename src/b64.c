/*
 * b64.c — strict base64url. See b64.h.
 */
#include <stdint.h>

#include "b64.h"
#include "err.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of one base64url character, or -1. Branches depend on the character, which in
 * a token is public (the signature is checked on the encoded text, not on this). */
static int
value_of(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* see b64.h */
size_t
b64url_enc_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* see b64.h */
size_t
b64url_encode(char *dst, size_t cap, const void *src, size_t n)
{
	const unsigned char *s = src;
	size_t len = b64url_enc_len(n), i, o = 0;

	if (dst == NULL)
		return len;
	if (cap < len)
		return 0;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		dst[o++] = alphabet[v >> 18];
		dst[o++] = alphabet[(v >> 12) & 63];
		dst[o++] = alphabet[(v >> 6) & 63];
		dst[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		dst[o++] = alphabet[v >> 18];
		dst[o++] = alphabet[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		dst[o++] = alphabet[v >> 18];
		dst[o++] = alphabet[(v >> 12) & 63];
		dst[o++] = alphabet[(v >> 6) & 63];
	}
	return o;
}

/* see b64.h */
int
b64url_decode(void *dst, size_t cap, size_t *outlen, const char *src, size_t n)
{
	unsigned char *d = dst;
	size_t i, o = 0, need;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1)
		return ERR_INVAL;
	need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > cap)
		return ERR_NOSPACE;
	for (i = 0; i < n; i++) {
		int v = value_of((unsigned char)src[i]);
		if (v < 0)
			return ERR_INVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Canonical: the bits left over after the last whole byte must be zero. */
	if (acc != 0)
		return ERR_INVAL;
	*outlen = o;
	return ERR_OK;
}

/* see b64.h */
int
b64std_decode(void *dst, size_t cap, size_t *outlen, const char *src, size_t n)
{
	char tmp[1024];
	size_t i, pad = 0;

	/* Map to the url alphabet and drop the padding, then decode strictly. */
	if (n % 4 != 0 || n > sizeof tmp)
		return n > sizeof tmp ? ERR_NOSPACE : ERR_INVAL;
	while (pad < 2 && pad < n && src[n - 1 - pad] == '=')
		pad++;
	for (i = 0; i < n - pad; i++) {
		char c = src[i];
		if (c == '-' || c == '_' || c == '=')
			return ERR_INVAL;
		tmp[i] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	return b64url_decode(dst, cap, outlen, tmp, n - pad);
}

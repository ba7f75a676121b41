/*
 * b64.h — base64url without padding (RFC 4648 §5), strict and canonical, as JWS wants.
 *
 * Encoding never fails given room; decoding accepts only the canonical form: alphabet
 * A-Z a-z 0-9 - _, no '=' padding, no whitespace, a length that is not 1 mod 4, and zero
 * unused bits in the last character. So every byte string has exactly one accepted text.
 */
#ifndef RELAYPRO_B64_H
#define RELAYPRO_B64_H

#include <stddef.h>

/* Length of the encoding of n bytes. */
size_t b64url_enc_len(size_t n);

/* Encode src[0..n) into dst (no NUL written). With dst == NULL only returns the length.
 * Returns the length, or 0 with nothing written when cap is too small (and n > 0). */
size_t b64url_encode(char *dst, size_t cap, const void *src, size_t n);

/* Decode src[0..n) into dst (at most cap bytes). Returns ERR_OK and sets *outlen, or
 * ERR_INVAL (not canonical base64url) or ERR_NOSPACE (cap too small). */
int b64url_decode(void *dst, size_t cap, size_t *outlen, const char *src, size_t n);

/* Decode standard base64 with padding (RFC 4648 §4), as HTTP Basic credentials use it:
 * alphabet A-Z a-z 0-9 + /, length a multiple of 4, '=' only as final padding, zero
 * unused bits. Same returns as b64url_decode. */
int b64std_decode(void *dst, size_t cap, size_t *outlen, const char *src, size_t n);

#endif

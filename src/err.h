/*
 * err.h — relaypro's error codes, in one place.
 *
 * Every function that can fail returns an int: 0 (ERR_OK) on success, or one of the
 * negative codes below. Peer-caused errors end that peer's connection only; startup
 * errors (config, bind) are reported by main and end the process.
 */
#ifndef RELAYPRO_ERR_H
#define RELAYPRO_ERR_H

enum {
	ERR_OK = 0,
	ERR_INVAL = -1,     /* malformed input */
	ERR_RANGE = -2,     /* a value out of its allowed range */
	ERR_NOSPACE = -3,   /* the caller's buffer is too small */
	ERR_IO = -4,        /* a system call failed; errno says why */
	ERR_TRUNC = -5,     /* input ended early (need more bytes) */
	ERR_CRYPTO = -6,    /* a cryptographic check failed */
	ERR_NOTFOUND = -7,  /* a lookup found nothing */
	ERR_DUP = -8        /* something present twice that may appear once */
};

/* A short English name for an error code, for logs ("malformed", "out of range"...). */
const char *err_str(int err);

#endif

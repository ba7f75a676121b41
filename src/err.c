/*
 * err.c — names for the error codes of err.h.
 */
#include "err.h"

/* see err.h */
const char *
err_str(int err)
{
	switch (err) {
	case ERR_OK: return "ok";
	case ERR_INVAL: return "malformed";
	case ERR_RANGE: return "out of range";
	case ERR_NOSPACE: return "too long";
	case ERR_IO: return "i/o error";
	case ERR_TRUNC: return "truncated";
	case ERR_CRYPTO: return "verification failed";
	case ERR_NOTFOUND: return "not found";
	case ERR_DUP: return "duplicate";
	}
	return "error";
}

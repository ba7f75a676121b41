/*
 * socks5.c — the client side of a SOCKS5 CONNECT (RFC 1928, RFC 1929). See socks5.h.
 *
 * A failure keeps the state it happened in (so socks5_reason can say where) and sets err;
 * err is what makes it sticky.
 */
#include <string.h>

#include "err.h"
#include "socks5.h"

enum { S_GREET, S_METHOD, S_AUTH, S_AUTH_REPLY, S_CONNECT, S_REPLY, S_DONE };

#define VER5 0x05    /* RFC 1928 version */
#define VER_UP 0x01  /* RFC 1929 subnegotiation version */
#define M_NONE 0x00  /* NO AUTHENTICATION REQUIRED */
#define M_USER 0x02  /* USERNAME/PASSWORD */
#define M_NO 0xFF    /* NO ACCEPTABLE METHODS */
#define CMD_CONNECT 0x01

static int
writing(int state)
{
	return state == S_GREET || state == S_AUTH || state == S_CONNECT;
}

static int
fail(struct socks5 *s, int code)
{
	if (s->err == 0)
		s->err = code;
	return s->err;
}

/* see socks5.h */
size_t
socks5_greeting(unsigned char *dest, size_t cap, int creds)
{
	size_t n = creds ? 4 : 3;

	if (dest == NULL)
		return n;
	if (cap < n)
		return 0;
	dest[0] = VER5;
	dest[1] = creds ? 2 : 1;
	dest[2] = M_NONE;
	if (creds)
		dest[3] = M_USER;
	return n;
}

/* see socks5.h */
size_t
socks5_auth_request(unsigned char *dest, size_t cap, const unsigned char *user, size_t ulen,
    const unsigned char *pass, size_t plen)
{
	size_t n = 3 + ulen + plen;

	if (user == NULL || pass == NULL || ulen < 1 || ulen > SOCKS5_NAME_MAX || plen < 1 ||
	    plen > SOCKS5_NAME_MAX)
		return 0;
	if (dest == NULL)
		return n;
	if (cap < n)
		return 0;
	dest[0] = VER_UP;
	dest[1] = (unsigned char)ulen;
	memcpy(dest + 2, user, ulen);
	dest[2 + ulen] = (unsigned char)plen;
	memcpy(dest + 3 + ulen, pass, plen);
	return n;
}

/* see socks5.h */
size_t
socks5_connect_request(unsigned char *dest, size_t cap, int atyp, const unsigned char *addr,
    size_t alen, unsigned port)
{
	size_t n, o = 0;

	if (addr == NULL || port < 1 || port > 65535)
		return 0;
	if (atyp == SOCKS5_ATYP_IPV4 && alen == 4)
		n = 4 + 4 + 2;
	else if (atyp == SOCKS5_ATYP_IPV6 && alen == 16)
		n = 4 + 16 + 2;
	else if (atyp == SOCKS5_ATYP_NAME && alen >= 1 && alen <= SOCKS5_NAME_MAX)
		n = 4 + 1 + alen + 2;
	else
		return 0;
	if (dest == NULL)
		return n;
	if (cap < n)
		return 0;
	dest[o++] = VER5;
	dest[o++] = CMD_CONNECT;
	dest[o++] = 0x00; /* RSV */
	dest[o++] = (unsigned char)atyp;
	if (atyp == SOCKS5_ATYP_NAME)
		dest[o++] = (unsigned char)alen;
	memcpy(dest + o, addr, alen);
	o += alen;
	dest[o++] = (unsigned char)(port >> 8);
	dest[o++] = (unsigned char)(port & 0xff);
	return o;
}

/* The whole message of a writing state into out; its length, or 0. */
static size_t
message(const struct socks5 *s, const struct socks5_req *req, unsigned char *out, size_t cap)
{
	switch (s->state) {
	case S_GREET:
		return socks5_greeting(out, cap, s->creds);
	case S_AUTH:
		return socks5_auth_request(out, cap, req->user, req->ulen, req->pass, req->plen);
	case S_CONNECT:
		return socks5_connect_request(out, cap, req->atyp, req->addr, req->alen, req->port);
	}
	return 0;
}

/* see socks5.h */
int
socks5_init(struct socks5 *s, const struct socks5_req *req)
{
	memset(s, 0, sizeof *s);
	s->creds = req->user != NULL;
	if ((s->creds && socks5_auth_request(NULL, 0, req->user, req->ulen, req->pass,
	    req->plen) == 0) ||
	    socks5_connect_request(NULL, 0, req->atyp, req->addr, req->alen, req->port) == 0)
		return fail(s, SOCKS5_E_REQUEST);
	return ERR_OK;
}

/* see socks5.h */
int
socks5_want(const struct socks5 *s)
{
	if (s->err)
		return s->err;
	if (s->state == S_DONE)
		return SOCKS5_DONE;
	return writing(s->state) ? SOCKS5_WRITE : SOCKS5_READ;
}

/* see socks5.h */
size_t
socks5_output(struct socks5 *s, const struct socks5_req *req, unsigned char *out, size_t cap)
{
	size_t n;

	if (s->err || !writing(s->state))
		return 0;
	n = message(s, req, out, cap);
	if (n == 0 || n < s->pos || (s->len && n != s->len)) {
		/* req changed under a running exchange, or out is too small */
		if (n)
			memset(out, 0, n);
		fail(s, SOCKS5_E_REQUEST);
		return 0;
	}
	s->len = (uint16_t)n;
	if (s->pos)
		memmove(out, out + s->pos, n - s->pos);
	return n - s->pos;
}

/* Enter state st with a fresh message position. */
static void
enter(struct socks5 *s, int st)
{
	s->state = (uint8_t)st;
	s->pos = 0;
	s->len = 0;
}

/* see socks5.h */
int
socks5_sent(struct socks5 *s, size_t n)
{
	if (s->err)
		return s->err;
	if (!writing(s->state) || s->len == 0 || n > (size_t)(s->len - s->pos))
		return fail(s, SOCKS5_E_STATE);
	s->pos = (uint16_t)(s->pos + n);
	if (s->pos == s->len)
		enter(s, s->state == S_GREET ? S_METHOD : s->state == S_AUTH ? S_AUTH_REPLY : S_REPLY);
	return socks5_want(s);
}

/* One byte b of the server message being read. Returns socks5_want(s) afterwards. */
static int
take(struct socks5 *s, unsigned char b)
{
	unsigned p = s->pos;

	switch (s->state) {
	case S_METHOD:
		if (p == 0) {
			s->ver = b;
			if (b != VER5)
				return fail(s, SOCKS5_E_VERSION);
			break;
		}
		s->method = b;
		if (b == M_NO)
			return fail(s, SOCKS5_E_NO_METHOD);
		if (b == M_NONE)
			enter(s, S_CONNECT);
		else if (b == M_USER && s->creds)
			enter(s, S_AUTH);
		else
			return fail(s, SOCKS5_E_METHOD);
		return socks5_want(s);
	case S_AUTH_REPLY:
		if (p == 0) {
			s->ver = b;
			if (b != VER_UP)
				return fail(s, SOCKS5_E_VERSION);
			break;
		}
		s->rep = b;
		if (b != 0)
			return fail(s, SOCKS5_E_AUTH);
		enter(s, S_CONNECT);
		return socks5_want(s);
	case S_REPLY:
		if (p == 0) {
			s->ver = b;
			if (b != VER5)
				return fail(s, SOCKS5_E_VERSION);
		} else if (p == 1) {
			s->rep = b;
			if (b != 0) /* the proxy closes after a failure reply: no need to read on */
				return fail(s, SOCKS5_E_REFUSED);
		} else if (p == 3) {
			/* p == 2 is RSV, not checked: it means nothing to a client */
			s->atyp = b;
			if (b == SOCKS5_ATYP_IPV4)
				s->len = 4 + 4 + 2;
			else if (b == SOCKS5_ATYP_IPV6)
				s->len = 4 + 16 + 2;
			else if (b != SOCKS5_ATYP_NAME) /* its length comes next */
				return fail(s, SOCKS5_E_ATYP);
		} else if (p == 4 && s->atyp == SOCKS5_ATYP_NAME) {
			s->len = (uint16_t)(4 + 1 + b + 2);
		} else if (p >= 4 && p + 2 < s->len) {
			if (s->atyp != SOCKS5_ATYP_NAME && p - 4 < sizeof s->bnd)
				s->bnd[p - 4] = b;
		} else if (p >= 4 && p + 2 == s->len) {
			s->bnd_port = (uint16_t)(b << 8);
		} else if (p >= 4 && p + 1 == s->len) {
			s->bnd_port = (uint16_t)(s->bnd_port | b);
			enter(s, S_DONE);
			return SOCKS5_DONE;
		}
		break;
	default:
		return fail(s, SOCKS5_E_STATE);
	}
	s->pos++;
	return SOCKS5_READ;
}

/* see socks5.h */
int
socks5_input(struct socks5 *s, const unsigned char *buf, size_t len, size_t *used)
{
	size_t i = 0;
	int rc;

	*used = 0;
	if (s->err || s->state == S_DONE)
		return socks5_want(s);
	if (writing(s->state))
		return fail(s, SOCKS5_E_STATE);
	rc = SOCKS5_READ;
	while (i < len && rc == SOCKS5_READ) {
		rc = take(s, buf[i++]);
		if (rc == SOCKS5_WRITE && i < len)
			rc = fail(s, SOCKS5_E_EXTRA); /* the proxy spoke when it was our turn */
	}
	*used = i;
	return rc;
}

/* see socks5.h */
size_t
socks5_need(const struct socks5 *s)
{
	if (s->err)
		return 0;
	switch (s->state) {
	case S_METHOD:
	case S_AUTH_REPLY:
		return 2u - s->pos;
	case S_REPLY:
		if (s->pos < 4)
			return 4u - s->pos;
		if (s->pos == 4 && s->atyp == SOCKS5_ATYP_NAME)
			return 1;
		return (size_t)(s->len - s->pos);
	}
	return 0;
}

/* see socks5.h */
int
socks5_closed(struct socks5 *s)
{
	if (s->state == S_DONE && s->err == 0)
		return SOCKS5_DONE;
	return fail(s, SOCKS5_E_CLOSED);
}

/* see socks5.h */
const char *
socks5_str(int code)
{
	switch (code) {
	case SOCKS5_DONE: return "connected";
	case SOCKS5_WRITE: return "sending";
	case SOCKS5_READ: return "waiting for the proxy";
	case SOCKS5_E_REQUEST: return "the SOCKS5 request cannot be encoded";
	case SOCKS5_E_VERSION: return "not a SOCKS5 proxy (wrong version byte)";
	case SOCKS5_E_NO_METHOD: return "no acceptable authentication method";
	case SOCKS5_E_METHOD: return "the proxy chose an authentication method that was not offered";
	case SOCKS5_E_AUTH: return "the proxy refused the user name or password";
	case SOCKS5_E_REFUSED: return "the proxy refused the CONNECT";
	case SOCKS5_E_ATYP: return "bad address type in the proxy's reply";
	case SOCKS5_E_EXTRA: return "the proxy sent data out of turn";
	case SOCKS5_E_CLOSED: return "the proxy closed the connection mid-handshake";
	case SOCKS5_E_STATE: return "SOCKS5 exchange driven out of turn";
	}
	return "unknown SOCKS5 code";
}

/* see socks5.h */
const char *
socks5_rep_str(unsigned rep)
{
	static const char *const text[] = {
		"succeeded",
		"general failure",
		"connection not allowed by ruleset",
		"network unreachable",
		"host unreachable",
		"connection refused",
		"TTL expired",
		"command not supported",
		"address type not supported",
	};

	return rep < sizeof text / sizeof text[0] ? text[rep] : "unassigned reply code";
}

/* see socks5.h */
const char *
socks5_reason(const struct socks5 *s)
{
	switch (s->err) {
	case 0:
		return "";
	case SOCKS5_E_NO_METHOD:
		return s->creds ? "the proxy accepts neither no authentication nor username/password" :
		    "the proxy requires authentication and the proxy URL has no user:password";
	case SOCKS5_E_VERSION:
		return s->state == S_AUTH_REPLY ?
		    "bad version byte in the proxy's username/password answer" :
		    "not a SOCKS5 proxy (its answer does not start with version 5)";
	case SOCKS5_E_REFUSED:
		return socks5_rep_str(s->rep);
	case SOCKS5_E_CLOSED:
		switch (s->state) {
		case S_GREET:
		case S_METHOD:
			return "the proxy closed the connection during the greeting";
		case S_AUTH:
		case S_AUTH_REPLY:
			return "the proxy closed the connection during authentication";
		case S_REPLY:
			if (s->pos > 0)
				return "the proxy closed the connection in the middle of its CONNECT reply";
			/* fall through */
		default:
			return "the proxy closed the connection before answering the CONNECT";
		}
	}
	return socks5_str(s->err);
}

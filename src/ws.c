/*
 * ws.c — WebSocket handshake key, frame-header decoder and encoder. See ws.h.
 *
 * The decoder keeps the header bytes it has seen in rx->hdr and judges each rule at the
 * first byte that decides it, so a hostile header is refused before the rest of it is
 * read, and the same stream split differently gives the same outcome.
 */
#include <string.h>

#include <bearssl.h>

#include "b64.h"
#include "ws.h"

/* see ws.h */
int
ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN])
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[18], sum[br_sha1_SIZE + 1];
	br_sha1_context h;
	size_t n, i, o = 0;

	if (len != WS_KEY_LEN || b64std_decode(raw, sizeof raw, &n, key, len) != ERR_OK || n != 16)
		return ERR_INVAL;
	br_sha1_init(&h);
	br_sha1_update(&h, key, len);
	br_sha1_update(&h, WS_GUID, sizeof WS_GUID - 1);
	br_sha1_out(&h, sum);
	sum[br_sha1_SIZE] = 0;
	/* 20 bytes: six whole groups of 3 and a last group of 2 ("=" pads it). */
	for (i = 0; i < br_sha1_SIZE; i += 3) {
		unsigned v = (unsigned)sum[i] << 16 | (unsigned)sum[i + 1] << 8 |
		    (i + 2 < br_sha1_SIZE ? sum[i + 2] : 0);
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = i + 2 < br_sha1_SIZE ? alpha[v & 63] : '=';
	}
	return ERR_OK;
}

/* see ws.h */
int
ws_query_target(const char *q, size_t len, char *out, size_t cap, size_t *outlen)
{
	size_t i = 0, found = 0;

	while (i <= len) {
		size_t a = i, b, j, o = 0;

		while (i < len && q[i] != '&')
			i++;
		b = i++; /* parameter q[a..b); i now past the '&' */
		if (b - a < 7 || memcmp(q + a, "target=", 7) != 0)
			continue;
		if (found++)
			return ERR_DUP;
		for (j = a + 7; j < b; j++) {
			char ch = q[j];
			if (ch == '%' && j + 2 < b && q[j + 1] == '3' && (q[j + 2] == 'A' || q[j + 2] == 'a')) {
				ch = ':';
				j += 2;
			}
			if (o == cap)
				return ERR_NOSPACE;
			out[o++] = ch;
		}
		*outlen = o;
	}
	return found && *outlen ? ERR_OK : ERR_NOTFOUND;
}

/* see ws.h */
void
ws_rx_init(struct ws_rx *rx)
{
	memset(rx, 0, sizeof *rx);
}

/* Judge the header once its byte number n (0-based) has arrived; WS_OK while it is fine
 * so far, 1 when the header is complete. */
static int
judge(struct ws_rx *rx, size_t n)
{
	const unsigned char *h = rx->hdr;
	unsigned op = h[0] & 0x0f, len7;
	size_t ext, i;
	uint64_t v;

	if (n == 0) {
		if (h[0] & 0x70)
			return WS_E_RSV;
		if (op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
		    op != WS_OP_PING && op != WS_OP_PONG)
			return WS_E_OPCODE;
		if ((op & 8) && !(h[0] & 0x80))
			return WS_E_CTL_FRAG;
		if (op == WS_OP_TEXT)
			return WS_E_TEXT;
		if (op == WS_OP_CONT && !rx->in_msg)
			return WS_E_CONT;
		if (op == WS_OP_BINARY && rx->in_msg)
			return WS_E_NOT_CONT;
		return WS_OK;
	}
	len7 = h[1] & 0x7f;
	ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	if (n == 1) {
		if (!(h[1] & 0x80))
			return WS_E_UNMASKED;
		if ((op & 8) && len7 > WS_CTL_MAX)
			return WS_E_CTL_LONG;
		return WS_OK;
	}
	if (n == 1 + ext) {
		for (v = 0, i = 0; i < ext; i++)
			v = v << 8 | h[2 + i];
		if (ext == 8 && (h[2] & 0x80))
			return WS_E_LEN_MSB;
		if ((ext == 2 && v < 126) || (ext == 8 && v <= 0xffff))
			return WS_E_LEN_FORM;
		if (v > WS_FRAME_MAX)
			return WS_E_TOO_BIG;
	}
	if (n < 1 + ext + 4)
		return WS_OK;
	/* Complete: length, mask, and the message bookkeeping. */
	v = len7;
	if (ext)
		for (v = 0, i = 0; i < ext; i++)
			v = v << 8 | h[2 + i];
	rx->left = v;
	memcpy(rx->mask, h + 2 + ext, 4);
	rx->mpos = 0;
	rx->opcode = (uint8_t)op;
	rx->fin = (h[0] & 0x80) != 0;
	if (!(op & 8))
		rx->in_msg = !rx->fin;
	return 1;
}

/* see ws.h */
int
ws_rx_header(struct ws_rx *rx, const unsigned char *buf, size_t len, size_t *used)
{
	size_t i;
	int rc;

	for (i = 0; i < len; i++) {
		if (rx->hlen >= WS_HDR_MAX) /* cannot happen: judge completes by 14 bytes */
			return WS_E_LEN_FORM;
		rx->hdr[rx->hlen] = buf[i];
		rc = judge(rx, rx->hlen);
		rx->hlen++;
		if (rc < 0) {
			*used = i + 1;
			return rc;
		}
		if (rc == 1) {
			rx->hlen = 0;
			*used = i + 1;
			return WS_OK;
		}
	}
	*used = len;
	return WS_MORE;
}

/* see ws.h */
size_t
ws_rx_unmask(struct ws_rx *rx, unsigned char *buf, size_t len)
{
	size_t n = len < rx->left ? len : (size_t)rx->left, i;
	unsigned m = rx->mpos;

	for (i = 0; i < n; i++)
		buf[i] ^= rx->mask[(m + i) & 3];
	rx->mpos = (uint8_t)((m + n) & 3);
	rx->left -= n;
	return n;
}

/* see ws.h */
size_t
ws_frame_header(unsigned char *out, size_t cap, unsigned opcode, uint64_t len)
{
	size_t n = len < 126 ? 2 : len <= 0xffff ? 4 : 10, i;

	if (out == NULL)
		return n;
	if (cap < n)
		return 0;
	out[0] = (unsigned char)(0x80 | (opcode & 0x0f));
	if (n == 2) {
		out[1] = (unsigned char)len;
	} else if (n == 4) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
	} else {
		out[1] = 127;
		for (i = 0; i < 8; i++)
			out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	}
	return n;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int
utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0, k, more;
	uint32_t cp, min;

	while (i < n) {
		unsigned char b = p[i++];
		if (b < 0x80)
			continue;
		if (b >= 0xc2 && b <= 0xdf) {
			more = 1, cp = b & 0x1f, min = 0x80;
		} else if (b >= 0xe0 && b <= 0xef) {
			more = 2, cp = b & 0x0f, min = 0x800;
		} else if (b >= 0xf0 && b <= 0xf4) {
			more = 3, cp = b & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < more)
			return 0;
		for (k = 0; k < more; k++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i++] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

/* see ws.h */
int
ws_close_check(const unsigned char *p, size_t n, unsigned *code)
{
	unsigned c;

	if (n == 0) {
		*code = WS_CLOSE_NO_STATUS;
		return WS_OK;
	}
	if (n == 1)
		return WS_E_CLOSE_LEN;
	c = (unsigned)p[0] << 8 | p[1];
	if (!((c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)))
		return WS_E_CLOSE_CODE;
	if (!utf8_valid(p + 2, n - 2))
		return WS_E_CLOSE_UTF8;
	*code = c;
	return WS_OK;
}

/* see ws.h */
unsigned
ws_close_code(int err)
{
	switch (err) {
	case WS_E_TEXT: return WS_CLOSE_UNSUPPORTED;
	case WS_E_TOO_BIG: return WS_CLOSE_TOO_BIG;
	case WS_E_CLOSE_UTF8: return WS_CLOSE_BAD_DATA;
	default: return WS_CLOSE_PROTOCOL;
	}
}

/* see ws.h */
const char *
ws_str(int err)
{
	switch (err) {
	case WS_OK: return "ok";
	case WS_MORE: return "incomplete frame header";
	case WS_E_RSV: return "reserved bits set";
	case WS_E_OPCODE: return "reserved opcode";
	case WS_E_UNMASKED: return "unmasked client frame";
	case WS_E_CTL_LONG: return "control frame over 125 bytes";
	case WS_E_CTL_FRAG: return "fragmented control frame";
	case WS_E_LEN_FORM: return "length not minimally encoded";
	case WS_E_LEN_MSB: return "64-bit length with the top bit set";
	case WS_E_CONT: return "continuation without a message";
	case WS_E_NOT_CONT: return "new message inside a fragmented one";
	case WS_E_TEXT: return "text frame";
	case WS_E_TOO_BIG: return "frame too large";
	case WS_E_CLOSE_LEN: return "close payload of one byte";
	case WS_E_CLOSE_CODE: return "invalid close status";
	case WS_E_CLOSE_UTF8: return "close reason not UTF-8";
	default: return "websocket error";
	}
}

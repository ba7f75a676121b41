"""wsclient -- a raw RFC 6455 client for the integration tests (frames built by hand,
stdlib only): `frame()` builds a client frame (hostile ones too: any length, rsv bits,
unmasked), `WS` reads server frames off any socket-like object, `handshake()` sends the
`GET /v1/tunnel` upgrade on a connection and returns the 101 with a WS, or the refusal.
Every read is bounded by a timeout; nothing here connects anywhere by itself.
"""
import base64
import hashlib
import secrets
import socket
import struct
import time

import relaytest as rt

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(op, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """A client frame; `length` overrides the encoded length (hostile frames)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    mbit = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, mbit | n])
    elif n <= 0xffff:
        h = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return h + payload
    key = secrets.token_bytes(4)
    return h + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload)) \
        if len(payload) < 4096 else h + key + xor_mask(payload, key)


def xor_mask(payload, key):
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


class WS:
    def __init__(self, sock, rest=b""):
        self.s = sock
        self.rbuf = bytearray(rest)
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def _fill(self, end):
        left = end - time.monotonic()
        if left <= 0:
            raise socket.timeout("no frame in time")
        self.s.settimeout(left)
        try:
            d = rt._recv(self.s, 65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
        self.rbuf += d

    def recv_frame(self, timeout=10):
        """(fin, opcode, payload, masked) or None at EOF."""
        end = time.monotonic() + timeout
        while True:
            b = self.rbuf
            if len(b) >= 2:
                n, off = b[1] & 0x7f, 2
                if n == 126 and len(b) >= 4:
                    n, off = struct.unpack(">H", bytes(b[2:4]))[0], 4
                elif n == 127 and len(b) >= 10:
                    n, off = struct.unpack(">Q", bytes(b[2:10]))[0], 10
                elif n >= 126:
                    n = None
                if n is not None and len(b) >= off + n:
                    f = (bool(b[0] & 0x80), b[0] & 0x0f, bytes(b[off:off + n]), bool(b[1] & 0x80),
                         bytes(b[:off]))
                    del self.rbuf[:off + n]
                    return f
            if self.eof:
                return None
            self._fill(end)

    def read_data(self, want, timeout=20):
        """Data frames until `want` bytes; returns (data, control frames seen, headers ok)."""
        data, ctl, ok = bytearray(), [], True
        end = time.monotonic() + timeout
        while len(data) < want:
            f = self.recv_frame(max(0.01, end - time.monotonic()))
            if f is None:
                break
            fin, op, p, masked, hdr = f
            if masked or not fin or op not in (2, 9, 10) or not minimal(hdr):
                ok = False
            if op == 2:
                data += p
            else:
                ctl.append((op, p))
        return bytes(data), ctl, ok

    def wait_eof(self, timeout=5):
        end = time.monotonic() + timeout
        while not self.eof and time.monotonic() < end:
            try:
                self._fill(end)
            except socket.timeout:
                break
        return self.eof

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def minimal(hdr):
    n = hdr[1] & 0x7f
    if n == 126:
        return struct.unpack(">H", hdr[2:4])[0] >= 126
    if n == 127:
        return struct.unpack(">Q", hdr[2:10])[0] > 0xffff
    return True


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def handshake_on(s, query, token, headers=None, method="GET", key=None, version="13", drop=(),
                 pipelined=b"", host="localhost"):
    """Send the upgrade request `method /v1/tunnel?query` on connection s (token: an access
    token, or a whole Authorization value when it holds a space; None: no header).
    Returns (status, Headers, WS or body bytes, key); s is closed unless the answer is 101."""
    key = key if key is not None else base64.b64encode(secrets.token_bytes(16)).decode()
    pairs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
             ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    if token is not None:
        pairs.append(("Authorization", token if " " in token else "Bearer " + token))
    pairs = [(k, v) for k, v in pairs if k not in drop] + list(headers or [])
    s.sendall(rt.build_request(method, "/v1/tunnel?" + query, pairs) + pipelined)
    version_, status, reason, h, raw = rt.read_response_head(s, timeout=10)
    if status == 101:
        return status, h, WS(s), key
    body = b""
    cl = h.get("content-length")
    if cl and cl.isdigit():
        body = rt.read_until_close(s, 5, int(cl))
    s.close()
    return status, h, body, key

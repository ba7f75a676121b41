"""wsclient -- the one raw RFC 6455 client of the integration tests (frames built by hand,
stdlib only; relaytest holds no WebSocket code).

Contract
--------
* `frame(op, payload, fin, mask, rsv, length)` builds one client frame, hostile ones too:
  any opcode, fragments (fin=False), rsv bits, unmasked, an encoded length that lies.
  `xor_mask(payload, key)` is the RFC 6455 §5.3 masking.
* `WS` is the client side of an open WebSocket over any socket-like object (TLS or plain):
  `recv_frame()` -> (fin, opcode, payload, masked, raw header) or None at EOF;
  `recv_message()` joins fragments and keeps control frames met between them;
  `read_data()` collects binary data and checks the server's framing; `close_status()`
  waits for a close frame; `wait_eof()` for the end of the connection.
* `handshake(s, path, token, ...)` sends the upgrade request on connection s and returns
  (status, Headers, WS or refusal body, key); `handshake_on(s, query, ...)` does it for
  `/v1/tunnel?query`; `ws_open(host, port, path, ...)` connects first and checks the
  Sec-WebSocket-Accept value.
* Every wait is bounded by its timeout and every loop by a count; only ws_open connects, and
  through relaytest (loopback only).
"""
import base64
import hashlib
import os
import socket
import struct
import time

import relaytest as rt

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_STEPS = 100000  # bound on the reads and frames one call handles


def xor_mask(payload, key):
    """payload XOR the 4-byte key, repeated (RFC 6455 §5.3)."""
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(op, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One client frame (masked unless mask=False); `length` overrides the encoded length
    (hostile frames), `rsv` sets the three reserved bits."""
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
    key = os.urandom(4)
    return h + key + xor_mask(payload, key)


def minimal(hdr):
    """True when a frame header encodes its length in the fewest bytes (RFC 6455 §5.2)."""
    n = hdr[1] & 0x7f
    if n == 126:
        return struct.unpack(">H", hdr[2:4])[0] >= 126
    if n == 127:
        return struct.unpack(">Q", hdr[2:10])[0] > 0xffff
    return True


def accept_of(key):
    """The Sec-WebSocket-Accept value the server owes for `key`."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class WS:
    """The client side of an open WebSocket (after the 101) over a socket (TLS or plain).
    Control frames met by recv_message are kept in self.control; the payload of the close
    frame it met in self.closed."""

    def __init__(self, sock, rest=b""):
        self.s = sock
        self.rbuf = bytearray(rest)
        self.eof = False
        self.control = []
        self.closed = None

    def send(self, data):
        self.s.sendall(data)

    def send_binary(self, payload):
        self.s.sendall(frame(2, payload))

    def _fill(self, end):
        left = end - time.monotonic()
        if left <= 0:
            raise socket.timeout("nothing from the relay in time")
        self.s.settimeout(left)
        try:
            d = rt._recv(self.s, 262144)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
        self.rbuf += d

    def recv_frame(self, timeout=10):
        """(fin, opcode, payload, masked, raw header), or None at EOF; socket.timeout when
        no whole frame comes in time."""
        end = time.monotonic() + timeout
        for _ in range(MAX_STEPS):
            b = self.rbuf
            if len(b) >= 2:
                n, off = b[1] & 0x7f, 2
                if n == 126:
                    n, off = (struct.unpack(">H", bytes(b[2:4]))[0], 4) if len(b) >= 4 else (None, 0)
                elif n == 127:
                    n, off = (struct.unpack(">Q", bytes(b[2:10]))[0], 10) if len(b) >= 10 else (None, 0)
                if n is not None and len(b) >= off + n:
                    f = (bool(b[0] & 0x80), b[0] & 0x0f, bytes(b[off:off + n]), bool(b[1] & 0x80),
                         bytes(b[:off]))
                    del self.rbuf[:off + n]
                    return f
            if self.eof:
                return None
            self._fill(end)
        raise socket.timeout("no whole frame")

    def recv_message(self, timeout=10):
        """The next data message, its fragments joined: (opcode, payload); control frames
        met on the way go to self.control; None at EOF or after a close frame (its payload
        then in self.closed)."""
        end = time.monotonic() + timeout
        data, op = bytearray(), None
        for _ in range(MAX_STEPS):
            f = self.recv_frame(max(0.01, end - time.monotonic()))
            if f is None:
                return None
            fin, fop, p = f[:3]
            if fop == 8:
                self.closed = p
                return None
            if fop & 8:
                self.control.append((fop, p))
                continue
            op = fop if op is None else op
            data += p
            if fin:
                return op, bytes(data)
        return None

    def read_data(self, want, timeout=20):
        """Data frames until `want` bytes; returns (data, control frames seen, framing ok):
        framing is ok when every frame is unmasked, final, binary or ping/pong, and its
        length minimally encoded."""
        data, ctl, ok = bytearray(), [], True
        end = time.monotonic() + timeout
        for _ in range(MAX_STEPS):
            if len(data) >= want:
                break
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

    def close_status(self, timeout=10):
        """Frames until a close frame: its status (None for an empty close; -1 at EOF
        without one)."""
        end = time.monotonic() + timeout
        for _ in range(MAX_STEPS):
            f = self.recv_frame(max(0.01, end - time.monotonic()))
            if f is None:
                return -1
            if f[1] == 8:
                return struct.unpack(">H", f[2][:2])[0] if len(f[2]) >= 2 else None
        return -1

    def wait_eof(self, timeout=5):
        """True once the peer ended the connection (what it sent meanwhile is dropped)."""
        end = time.monotonic() + timeout
        for _ in range(MAX_STEPS):
            if self.eof or time.monotonic() >= end:
                break
            try:
                self._fill(end)
            except socket.timeout:
                break
            del self.rbuf[:]
        return self.eof

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def handshake(s, path, token, headers=None, method="GET", key=None, version="13", drop=(),
              pipelined=b"", host="localhost", timeout=10):
    """Send the upgrade request `method path` on connection s (token: an access token, or a
    whole Authorization value when it holds a space; None: no header; `drop` names headers
    to leave out, `headers` adds some). Returns (status, Headers, WS or body bytes, key);
    s is closed unless the answer is 101."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    pairs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
             ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    if token is not None:
        pairs.append(("Authorization", token if " " in token else "Bearer " + token))
    pairs = [(k, v) for k, v in pairs if k not in drop] + list(headers or [])
    try:
        s.settimeout(timeout)
        s.sendall(rt.build_request(method, path, pairs) + pipelined)
        version_, status, reason, h, raw = rt.read_response_head(s, timeout=timeout)
    except BaseException:
        s.close()
        raise
    if status == 101:
        return status, h, WS(s), key
    body = b""
    cl = h.get("content-length")
    if cl and cl.isdigit():
        body = rt.read_until_close(s, 5, int(cl))
    s.close()
    return status, h, body, key


def handshake_on(s, query, token, **kw):
    """handshake() for `/v1/tunnel?query`."""
    return handshake(s, "/v1/tunnel?" + query, token, **kw)


def ws_open(host, port, path, token=None, tls=True, cafile=None, server_hostname="localhost",
            verify=None, headers=(), timeout=10, pipelined=b""):
    """Connect (TLS unless tls=False) and open the WebSocket at `path` (e.g.
    "/v1/udp?target=localhost:10500") with Authorization: Bearer token. Returns
    (status, Headers, WS) on 101 (the accept value checked: a wrong one raises), else
    (status, Headers, body bytes)."""
    if tls:
        s = rt.tls_connect(host, port, cafile, server_hostname,
                           verify if verify is not None else cafile is not None, timeout)
    else:
        s = rt.connect(host, port, timeout)
    status, h, ws, key = handshake(s, path, token, headers=headers, pipelined=pipelined,
                                   host=server_hostname or host, timeout=timeout)
    if status == 101 and h.get("Sec-WebSocket-Accept") != accept_of(key):
        ws.close()
        raise RuntimeError("bad Sec-WebSocket-Accept")
    return status, h, ws

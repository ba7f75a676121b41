#!/usr/bin/env python3
"""test_websocket.py -- WebSocket tunnels, `GET /v1/tunnel?target=host:port` (docs/protocol.md,
RFC 6455), against the real binary on its TLS and its plain listener.

A raw client written here from the standard library (frames built by hand) gets an access
token from `POST /v1/token`, checks the 101 and Sec-WebSocket-Accept, and echoes payloads
of 0, 125, 126, 65535, 65536 and 200000 bytes byte for byte through the test console's echo
port; fragmented messages with a ping in the middle (pong with the same payload); the close
handshake from the client (echoed status, upstream closed) and from the console (upstream
EOF -> close 1000); a table of hostile frames, each answered with its close status while
another tunnel keeps working; handshake refusals (400, 426), missing or bad tokens (401
with WWW-Authenticate), a forbidden target (403), `%3A` in the query, the brute-force
limiter counting WebSocket auth failures (429); the tunnel.open/close log lines (kind,
bytes each way) and no token in the log. Then a client nobody here wrote, Node's `ws`
package (Debian's node-ws, installed when missing, else npm into build/npm-ws), drives a
real echo through the relay; if it cannot be installed that case fails.
Last line: `websocket: N passed, N failed`.
"""
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402
import wsclient  # noqa: E402

BIN = rt.relay_bin()
SECRET = "sec-" + secrets.token_hex(16)
ORG, RELAY_ID = 42, 7

rt.init("websocket", deadline=400)
TMP = rt.make_tmpdir("relaytest-ws-")
rt.secret(SECRET)
JWT_RE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
rt.secret_pattern(JWT_RE, "<jwt>")
redact = rt.redact
ck, ck_eq = rt.check, rt.check_eq


try:
    CON = rt.start_console(TMP, tls_echo=False)
except Exception as e:
    rt.check(False, "console starts", e)
    rt.finish()


class Relay(relays.Relay):
    """A relay with a TLS and a plain listener in <TMP>/<name>/, started at once."""

    def __init__(self, name, limits=None, top=(), env=None):
        port, plain_port = rt.free_port(), rt.free_port()
        super().__init__(os.path.join(TMP, name), relays.relay_config(
            security_token=SECRET, org=ORG, relay_id=RELAY_ID,
            allowed_ports=[CON.echo_port, CON.http_port], top=top, https=port, http=plain_port,
            limits=limits or {"authFailLimit": "1000"}), https=port, http=plain_port, env=env)
        self.port, self.plain_port = port, plain_port
        self.start(timeout=10)

    def grant(self, sub="responder-ws"):
        return super().grant(sub)

    def token(self, sub="responder-ws"):
        return self.access_token(sub)


# ================================================================= a raw RFC 6455 client

frame, xor_mask, WS, minimal, accept_of = (wsclient.frame, wsclient.xor_mask, wsclient.WS,
                                           wsclient.minimal, wsclient.accept_of)


def handshake(relay, tls, token, target=None, query=None, headers=None, method="GET",
              key=None, version="13", drop=(), pipelined=b""):
    """Send the upgrade request. Returns (status, Headers, WS or body bytes, key)."""
    if query is None:
        query = "target=localhost:%d" % (target or CON.echo_port)
    return wsclient.handshake_on(relay.sock(tls), query, token, headers=headers, method=method,
                                 key=key, version=version, drop=drop, pipelined=pipelined)


def open_ws(relay, tls, token, target=None):
    st, h, ws, key = handshake(relay, tls, token, target=target)
    if st != 101:
        raise RuntimeError("handshake answered %d" % st)
    return ws


# ================================================================= setup

try:
    RELAY = Relay("main")
    TOKEN = RELAY.token()
except Exception as e:
    rt.check(False, "relay starts and issues a token", redact(str(e)))
    rt.finish()

LISTENERS = (("tls", True), ("plain", False))


def echo_lines(since=0):
    """The console's echo.close records (JSON lines on its stderr)."""
    out = []
    for ln in rt._read_text(CON.proc.stderr_path)[since:].splitlines():
        if '"echo.close"' in ln:
            try:
                out.append(json.loads(ln))
            except ValueError:
                pass
    return out


# ================================================================= cases

@rt.case(timeout=60)
def handshake_101():
    for lname, tls in LISTENERS:
        st, h, ws, key = handshake(RELAY, tls, TOKEN)
        ck_eq(st, 101, "%s: 101 Switching Protocols" % lname)
        if st != 101:
            continue
        ck_eq(h.get("Sec-WebSocket-Accept"), accept_of(key), "%s: Sec-WebSocket-Accept" % lname)
        ck(h.get("Upgrade", "").lower() == "websocket" and
           h.get("Connection", "").lower() == "upgrade", "%s: Upgrade/Connection headers" % lname)
        ck(h.get("Sec-WebSocket-Extensions") is None, "%s: no extension negotiated" % lname)
        ws.close()
    # The RFC 6455 §1.3 key gives the RFC's accept value on the wire too.
    st, h, ws, key = handshake(RELAY, True, TOKEN, key="dGhlIHNhbXBsZSBub25jZQ==")
    ck_eq(h.get("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
          "RFC 6455 §1.3 example key on the wire")
    if st == 101:
        ws.close()


@rt.case(timeout=120)
def echo_sizes():
    for lname, tls in LISTENERS:
        ws = open_ws(RELAY, tls, TOKEN)
        # 0 bytes: nothing goes upstream; the next byte proves the tunnel went on.
        ws.send(frame(2, b"") + frame(2, b"!"))
        data, ctl, ok = ws.read_data(1)
        ck(data == b"!" and ok, "%s: empty frame, then 1 byte echoed" % lname, data)
        for n in (125, 126, 65535, 65536, 200000):
            payload = secrets.token_bytes(n)
            got, _ = rt.pump(ws.s, frame(2, payload), timeout=30, expect=n)
            ws.rbuf += got
            data, ctl, ok = ws.read_data(n, timeout=30)
            ck(data == payload, "%s: %d bytes echoed byte for byte" % (lname, n),
               "got %d bytes" % len(data))
            ck(ok and not ctl, "%s: %d bytes came back in minimal unmasked binary frames" % (lname, n))
        ws.close()


@rt.case(timeout=60)
def frames_sent_with_the_handshake():
    for lname, tls in LISTENERS:
        early = secrets.token_bytes(300)
        st, h, ws, key = handshake(RELAY, tls, TOKEN,
                                   pipelined=frame(2, early[:100], fin=False) + frame(9, b"early") +
                                   frame(0, early[100:]))
        ck_eq(st, 101, "%s: 101 with frames sent right behind the head" % lname)
        if st != 101:
            continue
        data, ctl, ok = ws.read_data(300)
        if not ctl:
            f = ws.recv_frame(5)
            ctl = [(f[1], f[2])] if f else []
        ck(data == early and ctl == [(10, b"early")],
           "%s: frames sent before the 101 are decoded once the tunnel starts" % lname, ctl)
        ws.close()


@rt.case(timeout=60)
def token_then_upgrade_on_one_connection():
    s = RELAY.sock(True)
    r = rt.http_request("127.0.0.1", RELAY.port, "POST", "/v1/token", conn=s, keep_open=True,
                        headers=[("Authorization", "Bearer " + RELAY.grant())])
    tok = r.json().get("access_token") if r.status == 200 else None
    rt.secret(tok)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    s.sendall(rt.build_request("GET", "/v1/tunnel?target=localhost:%d" % CON.echo_port, [
        ("Host", "localhost"), ("Upgrade", "websocket"), ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
        ("Authorization", "Bearer %s" % tok)]))
    _, st, _, h, _ = rt.read_response_head(s, timeout=10)
    ck(st == 101 and h.get("Sec-WebSocket-Accept") == accept_of(key),
       "POST /v1/token then the upgrade on the same TLS connection: 101", st)
    if st == 101:
        ws = WS(s)
        ws.send(frame(2, b"same-conn"))
        ck_eq(ws.read_data(9)[0], b"same-conn", "... and the tunnel echoes")
        ws.close()


@rt.case(timeout=60)
def fragments_and_ping():
    for lname, tls in LISTENERS:
        ws = open_ws(RELAY, tls, TOKEN)
        a, b, c = secrets.token_bytes(1000), secrets.token_bytes(3000), secrets.token_bytes(7)
        ping = b"ping-" + secrets.token_hex(8).encode()
        ws.send(frame(2, a, fin=False) + frame(9, ping) + frame(0, b, fin=False) +
                frame(10, b"unsolicited pong") + frame(0, c, fin=True))
        data, ctl, ok = ws.read_data(len(a) + len(b) + len(c))
        ck_eq(data, a + b + c, "%s: fragmented message echoed whole" % lname)
        pongs = [p for op, p in ctl if op == 10]
        if not pongs:  # the pong may come after the data
            f = ws.recv_frame(5)
            if f and f[1] == 10:
                pongs.append(f[2])
        ck_eq(pongs, [ping], "%s: ping mid-message answered by one pong with its payload" % lname)
        # A 125-byte ping (the longest).
        big = secrets.token_bytes(125)
        ws.send(frame(9, big))
        f = ws.recv_frame(5)
        ck(f is not None and f[1] == 10 and f[2] == big, "%s: 125-byte ping -> same pong" % lname)
        ws.close()


@rt.case(timeout=60)
def close_from_client():
    for lname, tls in LISTENERS:
        since = len(rt._read_text(CON.proc.stderr_path))
        ws = open_ws(RELAY, tls, TOKEN)
        ws.send(frame(2, b"x" * 10))
        ws.read_data(10)
        ws.send(frame(8, struct.pack(">H", 1000) + b"bye"))
        f = ws.recv_frame(5)
        ck(f is not None and f[1] == 8 and f[2][:2] == struct.pack(">H", 1000),
           "%s: client close 1000 echoed" % lname, f)
        ck(ws.wait_eof(5), "%s: relay closes the connection after the close handshake" % lname)
        ws.close()
        rec = rt.wait_until(lambda: [r for r in echo_lines(since) if r.get("bytes") == 10], 5)
        ck(rec, "%s: the console's connection was closed (echo.close, 10 bytes)" % lname)
        # Status 3000 with a UTF-8 reason is echoed too.
        ws = open_ws(RELAY, tls, TOKEN)
        ws.send(frame(8, struct.pack(">H", 3000) + "fin \u00e9".encode()))
        f = ws.recv_frame(5)
        ck(f is not None and f[1] == 8 and f[2][:2] == struct.pack(">H", 3000),
           "%s: close 3000 echoed" % lname)
        ws.close()
        if not tls:
            # Close frame and FIN in one go: the echo still comes back.
            ws = open_ws(RELAY, tls, TOKEN)
            ws.send(frame(8, struct.pack(">H", 1001)))
            ws.s.shutdown(socket.SHUT_WR)
            f = ws.recv_frame(5)
            ck(f is not None and f[1] == 8 and f[2][:2] == struct.pack(">H", 1001) and ws.wait_eof(5),
               "plain: close then half-close: close 1001 echoed, then EOF")
            ws.close()
        # A close without status: an empty close comes back.
        ws = open_ws(RELAY, tls, TOKEN)
        ws.send(frame(8, b""))
        f = ws.recv_frame(5)
        ck(f is not None and f[1] == 8 and f[2] == b"", "%s: empty close echoed empty" % lname)
        ws.close()


@rt.case(timeout=60)
def close_from_upstream():
    req = b"GET /api/app/check HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    for lname, tls in LISTENERS:
        ws = open_ws(RELAY, tls, TOKEN, target=CON.http_port)
        ws.send(frame(2, req))
        data, frames = bytearray(), []
        for _ in range(100):
            f = ws.recv_frame(10)
            if f is None:
                break
            frames.append(f[1])
            if f[1] == 2:
                data += f[2]
            if f[1] == 8:
                ck_eq(f[2], struct.pack(">H", 1000), "%s: upstream EOF -> close 1000" % lname)
                break
        ck(data.startswith(b"HTTP/1.1 200") and b"test-console" in data,
           "%s: the console's answer arrived before the close" % lname, bytes(data[:200]))
        ck(frames and frames[-1] == 8, "%s: a close frame ended the stream" % lname, frames)
        ws.send(frame(8, struct.pack(">H", 1000)))
        ck(ws.wait_eof(5), "%s: then the relay closes the connection" % lname)
        ws.close()


HOSTILE = [
    ("unmasked binary frame", frame(2, b"hello", mask=False), 1002),
    ("RSV1 set", frame(2, b"hello", rsv=4), 1002),
    ("RSV3 set", frame(2, b"hello", rsv=1), 1002),
    ("reserved opcode 3", frame(3, b"hello"), 1002),
    ("reserved control opcode 0xb", frame(11, b""), 1002),
    ("ping of 126 bytes", frame(9, b"p" * 126), 1002),
    ("fragmented ping", frame(9, b"p", fin=False), 1002),
    ("continuation without a message", frame(0, b"c"), 1002),
    ("new binary frame inside a fragmented message", frame(2, b"a", fin=False) + frame(2, b"b"), 1002),
    ("16-bit length for 5 bytes", bytes([0x82, 0xfe, 0, 5]) + b"\0\0\0\0" + b"hello", 1002),
    ("64-bit length with the MSB set", bytes([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1]) + b"\0" * 4, 1002),
    ("64-bit length for 200 bytes", bytes([0x82, 0xff]) + struct.pack(">Q", 200) + b"\0" * 4, 1002),
    ("close with a 1-byte payload", frame(8, b"\x03"), 1002),
    ("close status 1005", frame(8, struct.pack(">H", 1005)), 1002),
    ("close status 999", frame(8, struct.pack(">H", 999)), 1002),
    ("close reason not UTF-8", frame(8, struct.pack(">H", 1000) + b"\xc0\x80"), 1007),
    ("text frame", frame(1, b"hello"), 1003),
    ("frame over the 1 MiB cap", bytes([0x82, 0xff]) + struct.pack(">Q", (1 << 20) + 1) + b"\0" * 4, 1009),
]


@rt.case(timeout=120)
def hostile_frames():
    keeper = open_ws(RELAY, True, TOKEN)  # must keep working throughout
    for lname, tls in LISTENERS:
        for name, data, code in HOSTILE:
            ws = open_ws(RELAY, tls, TOKEN)
            ws.send(frame(2, b"ok"))
            ws.read_data(2)
            ws.send(data)
            f = None
            for _ in range(5):
                f = ws.recv_frame(5)
                if f is None or f[1] == 8:
                    break
            ck(f is not None and f[1] == 8 and f[2][:2] == struct.pack(">H", code) and ws.wait_eof(5),
               "%s: %s -> close %d and the connection ends" % (lname, name, code),
               f and (f[1], f[2][:2].hex()))
            ws.close()
        payload = secrets.token_bytes(5000)
        keeper.send(frame(2, payload))
        data, _, _ = keeper.read_data(len(payload))
        ck(data == payload, "%s: another tunnel kept working through the hostile frames" % lname)
    keeper.close()
    ck(RELAY.proc.alive(), "the relay is still running")


@rt.case(timeout=60)
def handshake_refusals():
    cases = [
        ("no token", dict(token=None), 401, "auth_required"),
        ("bad token", dict(token="not.a.token"), 401, "token_invalid"),
        ("Basic scheme", dict(token="Basic dTpw"), 401, "auth_required"),
        ("forbidden port", dict(token=TOKEN, query="target=localhost:1"), 403, "forbidden_target"),
        ("forbidden host", dict(token=TOKEN, query="target=example.com:%d" % CON.echo_port), 403,
         "forbidden_target"),
        ("numeric host spelling", dict(token=TOKEN, query="target=2130706433:%d" % CON.echo_port), 403,
         "forbidden_target"),
        ("no target", dict(token=TOKEN, query="x=1"), 400, "bad_request"),
        ("two targets", dict(token=TOKEN, query="target=localhost:%d&target=localhost:%d"
                             % (CON.echo_port, CON.echo_port)), 400, "bad_request"),
        ("userinfo", dict(token=TOKEN, query="target=u@localhost:%d" % CON.echo_port), 400, "bad_request"),
        ("percent-escape other than %3A", dict(token=TOKEN, query="target=local%%68ost:%d" % CON.echo_port),
         400, "bad_request"),
        ("port with leading zero", dict(token=TOKEN, query="target=localhost:0%d" % CON.echo_port), 400,
         "bad_request"),
        ("no Sec-WebSocket-Key", dict(token=TOKEN, drop=("Sec-WebSocket-Key",)), 400, "bad_request"),
        ("short Sec-WebSocket-Key", dict(token=TOKEN, key="c2hvcnQ="), 400, "bad_request"),
        ("no Upgrade", dict(token=TOKEN, drop=("Upgrade",)), 400, "bad_request"),
        ("no Connection: Upgrade", dict(token=TOKEN, drop=("Connection",)), 400, "bad_request"),
        ("no version", dict(token=TOKEN, drop=("Sec-WebSocket-Version",)), 400, "bad_request"),
        ("POST", dict(token=TOKEN, method="POST"), 400, "bad_request"),
        ("version 8", dict(token=TOKEN, version="8"), 426, "bad_request"),
    ]
    for lname, tls in LISTENERS:
        for name, kw, status, code in cases:
            st, h, body, _ = handshake(RELAY, tls, **kw)
            try:
                err = json.loads(body.decode()).get("error")
            except ValueError:
                err = None
            ck(st == status and err == code, "%s: %s -> %d %s" % (lname, name, status, code),
               "got %d %r" % (st, body[:200]))
            if status == 401:
                ck_eq(h.get("WWW-Authenticate"), 'Bearer realm="relaypro"',
                      "%s: %s -> WWW-Authenticate" % (lname, name))
            if status == 426:
                ck_eq(h.get("Sec-WebSocket-Version"), "13", "%s: 426 names version 13" % lname)
        st, h, ws, _ = handshake(RELAY, tls, TOKEN, query="target=localhost%%3A%d" % CON.echo_port)
        ck_eq(st, 101, "%s: %%3A in the target is a ':'" % lname)
        if st == 101:
            ws.send(frame(2, b"pct"))
            ck_eq(ws.read_data(3)[0], b"pct", "%s: ... and the tunnel echoes" % lname)
            ws.close()


@rt.case(timeout=60)
def limiter_counts_ws_failures():
    r = Relay("limited", limits={"authFailLimit": "2", "authFailBan": "60s"})
    good = r.token()
    sts = [handshake(r, True, "bad.token.x")[0] for _ in range(3)]
    ck_eq(sts, [401, 401, 401], "three bad WebSocket tokens: 401 each")
    st, h, body, _ = handshake(r, True, good)
    ck_eq(st, 429, "then the address is banned: 429 even with a good token")
    r.proc.stop()


@rt.case(timeout=60)
def log_lines():
    since = rt.log_offset(RELAY.log)
    ws = open_ws(RELAY, True, TOKEN)
    up = secrets.token_bytes(3333)
    ws.send(frame(2, up))
    data, _, _ = ws.read_data(len(up))
    ws.send(frame(8, struct.pack(">H", 1000)))
    ws.recv_frame(5)
    ws.wait_eof(5)
    ws.close()
    op = rt.wait_for_log(RELAY.log, lambda r: r.get("event") == "tunnel.open" and
                         r.get("kind") == "websocket", timeout=5, since=since)
    ck(op and op.get("user") == "responder-ws" and op.get("target") == "localhost" and
       op.get("port") == CON.echo_port, "tunnel.open: kind websocket, user, target, port", op)
    cl = rt.wait_for_log(RELAY.log, "tunnel.close", timeout=5, since=since)
    ck(cl and cl.get("bytes_up") == 3333 and cl.get("bytes_down") == 3333 and
       cl.get("ws_close") == 1000, "tunnel.close: payload bytes each way and the close status", cl)
    text = rt._read_text(RELAY.log)
    ck(not any(s in text for s in rt.secrets()), "no token or secret in the log")


@rt.case(timeout=60)
def through_upstream_proxy():
    """proxyEnabled: the WebSocket tunnel reaches the console through HTTPS_PROXY, a real
    proxy nobody here wrote (Debian's tinyproxy, from build.sh deps)."""
    tinyproxy = rt.TINYPROXY
    if not ck(os.access(tinyproxy, os.X_OK), "tinyproxy installed (build.sh deps)"):
        return
    d = os.path.join(TMP, "tinyproxy")
    os.makedirs(d, exist_ok=True)
    tp, port, log = rt.start_tinyproxy(d, "tp", (CON.echo_port,), max_clients=20)
    r = Relay("via-proxy", top=["proxyEnabled = true"],
              env={"HTTPS_PROXY": "http://127.0.0.1:%d" % port})
    ws = open_ws(r, True, r.token())
    payload = secrets.token_bytes(32768)
    got, _ = rt.pump(ws.s, frame(2, payload), timeout=20, expect=len(payload))
    ws.rbuf += got
    ck(ws.read_data(len(payload))[0] == payload, "WebSocket tunnel through tinyproxy echoes 32 KiB")
    ws.close()
    ck("localhost:%d" % CON.echo_port in rt._read_text(log), "tinyproxy logged the CONNECT to the console")
    r.proc.stop()
    tp.stop()


@rt.case(timeout=40)
def eager_upstream_proxy():
    """An upstream proxy that sends the tunnel's first bytes in the same write as its 200
    (rt.EagerProxy): they are the console's, so the WebSocket client gets them first, in
    a data frame, then its own bytes echoed."""
    eager = b"first-bytes-from-upstream-" * 5
    fake = rt.EagerProxy(eager)
    r = Relay("eager-proxy", top=["proxyEnabled = true"],
              env={"HTTPS_PROXY": "http://127.0.0.1:%d" % fake.port})
    ws = open_ws(r, False, r.token())
    ws.send(frame(2, b"from-the-client"))
    got = ws.read_data(len(eager) + len(b"from-the-client"))[0]
    ck_eq(got, eager + b"from-the-client", "bytes after the proxy's answer head reach the "
          "WebSocket client first, then its own come back")
    ws.close()
    r.proc.stop()
    fake.stop()


# ================================================================= Node's ws package

NODE_CLIENT = r"""
const fs = require('fs');
const WebSocket = require('ws');
const [url, token, ca, n] = process.argv.slice(2);
const opts = { headers: { Authorization: 'Bearer ' + token } };
if (ca) { opts.ca = fs.readFileSync(ca); opts.servername = 'localhost'; }
const payload = require('crypto').randomBytes(Number(n));
const ws = new WebSocket(url, opts);
let got = [], len = 0, pong = false;
const out = (o) => { process.stdout.write(JSON.stringify(o) + '\n'); };
const timer = setTimeout(() => { out({ error: 'timeout', len }); process.exit(3); }, 20000);
ws.on('open', () => {
  ws.ping(Buffer.from('node-ping'));
  for (let i = 0; i < payload.length; i += 40000) ws.send(payload.subarray(i, i + 40000));
});
ws.on('pong', (d) => { pong = d.toString() === 'node-ping'; });
ws.on('message', (d, isBinary) => {
  got.push(d); len += d.length;
  if (len >= payload.length) ws.close(1000, 'done');
});
ws.on('close', (code) => {
  clearTimeout(timer);
  const all = Buffer.concat(got);
  out({ same: all.equals(payload), len: all.length, code, pong,
        ext: ws.extensions, proto: ws.protocol });
});
ws.on('error', (e) => { clearTimeout(timer); out({ error: String(e) }); process.exit(2); });
"""


def node_ws_path():
    """A NODE_PATH under which require('ws') works, installing node-ws (Debian) or, failing
    that, ws from npm into build/npm-ws; None when neither works."""
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nodejs"],
                           capture_output=True, timeout=300,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            return None, None
    npm_dir = os.path.join(rt.REPO_DIR, "build", "npm-ws")
    path = os.pathsep.join(["/usr/share/nodejs", "/usr/lib/nodejs",
                            os.path.join(npm_dir, "node_modules")])

    def works():
        r = subprocess.run([node, "-e", "require('ws')"], capture_output=True, timeout=30,
                           env=dict(os.environ, NODE_PATH=path))
        return r.returncode == 0
    if works():
        return node, path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "node-ws"]
        if subprocess.run(cmd, capture_output=True, timeout=300, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
            subprocess.run(cmd, capture_output=True, timeout=300, env=env)
        if works():
            return node, path
    if shutil.which("npm"):
        os.makedirs(npm_dir, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-audit", "--no-fund", "ws@8"],
                       capture_output=True, timeout=300)
        if works():
            return node, path
    return None, None


@rt.case(timeout=400)
def node_ws_client():
    node, path = node_ws_path()
    if not ck(node, "Node's ws package is available (node-ws or npm ws)",
              "install node-ws (apt-get install node-ws) or let npm reach its registry"):
        return
    script = os.path.join(TMP, "wsclient.js")
    with open(script, "w") as f:
        f.write(NODE_CLIENT)
    ca = RELAY.ca_pem()
    for lname, url, cafile in (
            ("tls", "wss://localhost:%d/v1/tunnel?target=localhost:%d" % (RELAY.port, CON.echo_port), ca),
            ("plain", "ws://127.0.0.1:%d/v1/tunnel?target=localhost%%3A%d" % (RELAY.plain_port, CON.echo_port),
             "")):
        r = subprocess.run([node, script, url, TOKEN, cafile, "300000"], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, NODE_PATH=path))
        try:
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"error": "no output", "stderr": r.stderr[-400:]}
        ck(res.get("same") is True and res.get("len") == 300000,
           "node ws %s: 300000 bytes echoed through the relay byte for byte" % lname, res)
        ck(res.get("code") == 1000, "node ws %s: closed with 1000" % lname, res)
        ck(res.get("pong") is True, "node ws %s: its ping got the pong" % lname, res)
        ck(res.get("ext") == "", "node ws %s: no extension negotiated (permessage-deflate declined)"
           % lname, res)
    # And it sees a refusal as one.
    r = subprocess.run([node, script, "ws://127.0.0.1:%d/v1/tunnel?target=localhost:%d"
                        % (RELAY.plain_port, CON.echo_port), "bad.token.here", "", "10"],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, NODE_PATH=path))
    ck(r.returncode == 2 and "401" in r.stdout, "node ws: a bad token is refused with 401", r.stdout)


rt.finish()

#!/usr/bin/env python3
"""test_security.py -- the threats of docs/security.md that no other script covers.

Drives the real binary from outside. Behind the relay sit two recorders started by this
script (threads in this process): one on 127.0.0.1:P, the address `localhost` resolves to
(the configured consoleAddress), and one on 127.0.0.2:P, an address the relay must never
reach. Each recorder keeps every byte that arrives and answers with its own name, so a
case can say exactly what was forwarded, and where.

Cases:
  forwarded_head        absolute-form: what reaches the console, byte for byte (origin-form
                        request line, no Proxy-Authorization, one Host, `Connection: close`),
                        a pipelined second request stays on the same upstream connection,
                        a Host that disagrees with the absolute URI is replaced.
  hop_by_hop_any_length a field named in `Connection:` is not forwarded whatever its
                        name's length (10 .. 1800 bytes); names one byte longer or shorter
                        are.
  injection_refused     CR / LF / NUL / obs-fold / TE+CL anywhere in a head or a CONNECT
                        target: 400, and nothing at all reaches either recorder.
  no_steering           the client cannot choose the address: Host header, IP literal of
                        what the name resolves to, other spellings -- 403 or to the
                        resolved address only; bytes pipelined after a 403 never reach a
                        recorder.
  jwt_confusion         alg RS256 signed with the CA certificate as an HMAC key, alg
                        HS256 with a trailing space, `alg` twice, a token of another org /
                        relay / sub, a grant used as an access token on /v1/tunnel:
                        refused, through POST /v1/token, CONNECT and GET /v1/tunnel.
  limiter_flood         a banned address stays banned while 3 x the brute-force table's
                        size of other 127/8 addresses fail (some aimed at its old bucket);
                        fresh addresses are judged normally.
  file_mode_warnings    a CA bundle or password file readable or writable by others (or a
                        group other than the relay's) is named with its mode in a file.mode
                        warning at start and at every reload.
  file_modes            a relay started with no private folder creates it 0700 and the CA
                        bundle 0600 (umask 022 and 000).
  secrets_not_logged    no security token, password, grant or access token in the relay's
                        log, stdout or stderr after all of the above.

Everything runs on loopback with ephemeral ports; processes are stopped by PID
(tests/lib/relaytest.py). Secrets never appear in the output (relaytest.secret()).
Last line: `security: N passed, N failed`.
"""
import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

REPO = rt.REPO_DIR


BIN = rt.relay_bin()
ORG, RELAY_ID = 5, 11
SECRET = "sec-test-security-token-" + os.urandom(8).hex()
USER, PASSWORD = "secuser", "pw-" + os.urandom(8).hex()
BASIC = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
for _s in (SECRET, PASSWORD, BASIC.split(" ", 1)[1]):
    rt.secret(_s)  # never in a check line (relaytest redacts them); looked for in the logs
RELAY_PRO_ID = "0b5e3c1a-7d2f-4e6a-9c8b-1a2b3c4d5e6f"
remember, redact = rt.secret, rt.redact
ck, ck_eq = rt.check, rt.check_eq


# ================================================================= recorders

class Recorder:
    """A TCP listener on host:port that stores what each connection sends (until EOF, 0.6 s
    of quiet, 64 KiB or 5 s) and then answers a small HTTP response naming itself."""

    def __init__(self, name, host, port):
        self.name = name
        self.host, self.port = host, port
        self.got = []           # bytes of each finished connection
        self.accepted = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stop_flag = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        rt.at_cleanup(self.close)

    def _accept_loop(self):
        end = time.monotonic() + 900  # bounded: the script's deadline is shorter
        while not self.stop_flag and time.monotonic() < end:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = bytearray()
        end = time.monotonic() + 5
        try:
            while len(buf) < 65536 and time.monotonic() < end:
                c.settimeout(0.6)
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    break
                if not d:
                    break
                buf += d
            body = self.name.encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            with self.lock:
                self.got.append(bytes(buf))
            try:
                c.close()
            except OSError:
                pass

    def mark(self):
        with self.lock:
            return self.accepted, len(self.got)

    def since(self, mark, want=1, timeout=8):
        """The payloads of connections accepted after `mark`, waiting (bounded) until
        `want` of them have finished."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.got) - mark[1] >= want:
                    break
            time.sleep(0.05)
        with self.lock:
            return list(self.got[mark[1]:])

    def accepted_since(self, mark):
        with self.lock:
            return self.accepted - mark[0]

    def close(self):
        self.stop_flag = True
        try:
            self.sock.close()
        except OSError:
            pass


def recorder_pair():
    """(resolved, other): same port on 127.0.0.1 and 127.0.0.2 (bounded retries)."""
    last = None
    for _ in range(20):
        port = rt.free_port()
        try:
            a = Recorder("resolved", "127.0.0.1", port)
        except OSError as e:
            last = e
            continue
        try:
            b = Recorder("other", "127.0.0.2", port)
        except OSError as e:
            a.close()
            last = e
            continue
        return a, b
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2: %s" % last)


# ================================================================= the relay

class Relay(relays.Relay):
    def __init__(self, name, port, umask=None, limits=None):
        super().__init__(rt.make_tmpdir("relaytest-security-%s-" % name), https=True, http=True,
                         name="relaypro")
        self.private = os.path.join(self.dir, "private")
        self.bundle = os.path.join(self.private, "ca-bundle.pem")
        self.port = port
        self.umask = umask
        self.limits = limits or {"authFailLimit": "100000", "headerTimeout": "5s"}
        relays.write_users(self.dir, USER, PASSWORD)

    https_port = property(lambda self: self.https)
    http_port = property(lambda self: self.http)

    def config(self):
        return relays.relay_config(
            security_token=SECRET, org=ORG, relay_id=RELAY_ID, allowed_ports=[self.port],
            top=["relayProId = " + RELAY_PRO_ID, "passwordFile = users.txt"],
            https=self.https, http=self.http, limits=self.limits)

    def start(self):
        prefix = ()
        if self.umask is not None:  # the relay inherits the umask of its parent
            prefix = ("/bin/sh", "-c", "umask %03o && exec \"$@\"" % self.umask, "sh")
        return super().start(argv_prefix=prefix, fresh_ports=True)

    def conn(self, tls):
        if tls:
            raw = rt.connect("127.0.0.1", self.https_port, 5)
            ctx = rt.client_context(None, verify=False)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.settimeout(5)
            return s
        return rt.connect("127.0.0.1", self.http_port, 5)

    def exchange(self, tls, data, timeout=8):
        """Send data, read until the relay closes; (raw bytes, Response)."""
        s = self.conn(tls)
        try:
            try:
                s.sendall(data)
            except (OSError, ssl.SSLError):
                pass
            raw = read_all(s, timeout)
        finally:
            s.close()
        return raw, rt.parse_response(raw)

    def post_token(self, authorization):
        return rt.http_request("127.0.0.1", self.https_port, "POST", "/v1/token",
                               headers=[("Authorization", authorization)], tls=True,
                               verify=False, server_hostname="localhost", timeout=5)


def read_all(s, timeout=8):
    return rt.read_all(s, timeout)[0]


body_json = rt.body_json


def head_lines(data):
    """The lines of the first head in data (CRLF split), and the bytes after it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data.split(b"\r\n"), b""
    return data[:end].split(b"\r\n"), data[end + 4:]


_state = {}


def setup():
    if "relay" not in _state:
        res, other = recorder_pair()
        _state["res"], _state["other"] = res, other
        _state["relay"] = Relay("main", res.port).start()
    return _state["relay"], _state["res"], _state["other"]


LISTENERS = (("tls", True), ("plain", False))


# ================================================================= absolute-form

@rt.case(timeout=120)
def forwarded_head():
    r, res, other = setup()
    p = res.port
    auth = b"Proxy-Authorization: " + BASIC.encode() + b"\r\n"
    for lname, tls in LISTENERS:
        # 1. What the console receives, byte for byte, and a pipelined second request that
        #    names another host: it is the client's own bytes on the same upstream
        #    connection (as in a CONNECT tunnel), never parsed by the relay as a target.
        second = (b"GET http://127.0.0.2:%d/evil HTTP/1.1\r\nHost: 127.0.0.2:%d\r\n" % (p, p) +
                  auth + b"\r\n")
        req = (b"GET http://localhost:%d/a?b=1 HTTP/1.1\r\nHost: localhost:%d\r\n" % (p, p) +
               auth + b"X-Trace: one\r\nProxy-Connection: keep-alive\r\n\r\n" + second)
        m_res, m_oth = res.mark(), other.mark()
        raw, resp = r.exchange(tls, req)
        got = res.since(m_res)
        ck(resp.status == 200 and resp.body == b"resolved",
           "%s: absolute-form to localhost reaches the resolved address" % lname, raw[:200])
        fwd = got[0] if got else b""
        lines, rest = head_lines(fwd)
        ck_eq(lines[0] if lines else b"", b"GET /a?b=1 HTTP/1.1",
              "%s: forwarded in origin-form" % lname)
        names = [ln.split(b":", 1)[0].lower() for ln in lines[1:]]
        fhead = fwd.split(b"\r\n\r\n", 1)[0]
        ck(fwd and b"proxy-authorization" not in names and
           BASIC.split(" ", 1)[1].encode() not in fhead,
           "%s: the relay's Proxy-Authorization is not in the forwarded head" % lname,
           lines)
        ck(b"proxy-connection" not in names and names.count(b"host") == 1 and
           lines[-1:] == [b"Connection: close"] and b"X-Trace: one" in lines,
           "%s: forwarded head: one Host, Proxy-Connection gone, X-Trace kept, Connection: close "
           "last" % lname, lines)
        # Today the pipelined bytes follow on the same upstream connection (docs/protocol.md:
        # "relayed until either side closes"); a relay that dropped them would pass too.
        ck(rest in (b"", second), "%s: what follows the forwarded head is the client's own "
           "pipelined bytes, unchanged, on the same upstream connection" % lname, rest[:200])
        ck_eq(raw.count(b"HTTP/1.1 "), 1, "%s: one response: the pipelined absolute-form "
              "request is not answered by the relay" % lname)
        ck_eq(other.accepted_since(m_oth), 0,
              "%s: the address named in the pipelined request got no connection" % lname)

        # 2. A Host that disagrees with the absolute URI: the relay connects to the URI's
        #    (allowed) host, and the forwarded Host must name that host too (RFC 9112
        #    §3.2.2: a proxy MUST replace a received Host with the request-target's).
        req = (b"GET http://localhost:%d/h HTTP/1.1\r\nHost: 127.0.0.2:%d\r\n" % (p, p) + auth +
               b"\r\n")
        m_res, m_oth = res.mark(), other.mark()
        raw, resp = r.exchange(tls, req)
        got = res.since(m_res)
        ck(resp.status == 200 and resp.body == b"resolved" and other.accepted_since(m_oth) == 0,
           "%s: Host: 127.0.0.2 does not steer the connection (URI host wins)" % lname, raw[:200])
        lines, _ = head_lines(got[0] if got else b"")
        hosts = [ln for ln in lines[1:] if ln.split(b":", 1)[0].lower() == b"host"]
        ck_eq(hosts, [b"Host: localhost:%d" % p],
              "%s: the forwarded Host is the absolute URI's authority, not the client's Host "
              "(RFC 9112 §3.2.2)" % lname)

        # 3. A body framed by Transfer-Encoding: forwarded with its framing, on a connection
        #    of its own that ends after the exchange (Connection: close).
        req = (b"POST http://localhost:%d/te HTTP/1.1\r\nHost: localhost:%d\r\n" % (p, p) + auth +
               b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        m_res = res.mark()
        raw, resp = r.exchange(tls, req)
        got = res.since(m_res)
        lines, rest = head_lines(got[0] if got else b"")
        ck(resp.status == 200 and b"Transfer-Encoding: chunked" in lines and
           rest == b"5\r\nhello\r\n0\r\n\r\n" and lines[-1:] == [b"Connection: close"],
           "%s: chunked body forwarded with its own framing" % lname, lines)

        # 4. Percent-encoded CR LF in the path stays encoded: nothing is decoded into a
        #    header line.
        req = (b"GET http://localhost:%d/x%%0d%%0aX-Injected:%%201 HTTP/1.1\r\n" % p + auth + b"\r\n")
        m_res = res.mark()
        raw, resp = r.exchange(tls, req)
        got = res.since(m_res)
        lines, _ = head_lines(got[0] if got else b"")
        ck(resp.status == 200 and lines[:1] == [b"GET /x%0d%0aX-Injected:%201 HTTP/1.1"] and
           not any(ln.lower().startswith(b"x-injected") for ln in lines),
           "%s: %%0d%%0a in the path is forwarded encoded, no injected header" % lname, lines)


@rt.case(timeout=120)
def hop_by_hop_any_length():
    """A field named in `Connection:` is hop-by-hop (RFC 9110 §7.6.1) and never forwarded,
    whatever the length of its name; a field whose name only starts like a listed one is
    end-to-end and is forwarded. (Before issue 17 names were cut to 63 bytes first, so a
    listed name of 64+ bytes was forwarded, and a shorter listed prefix removed it.)"""
    r, res, _ = setup()
    p = res.port
    auth = b"Proxy-Authorization: " + BASIC.encode() + b"\r\n"
    for lname, tls in LISTENERS:
        for n in (10, 63, 64, 65, 200, 1800):  # 4 x 1800 fits maxHeaderBytes (8192)
            name = b"X-Hop-" + b"h" * (n - 6)
            req = (b"GET http://localhost:%d/hop HTTP/1.1\r\nHost: localhost:%d\r\n" % (p, p) +
                   auth + b"Connection: keep-alive, " + name.upper() + b"\r\n" +
                   name + b": hop\r\n" + name + b"x: end-to-end\r\n" +
                   name[:-1] + b": end-to-end\r\nX-Keep: yes\r\n\r\n")
            m_res = res.mark()
            raw, resp = r.exchange(tls, req)
            got = res.since(m_res)
            lines, _ = head_lines(got[0] if got else b"")
            names = [ln.split(b":", 1)[0].lower() for ln in lines[1:]]
            ck(resp.status == 200 and name.lower() not in names,
               "%s: a %d-byte name listed in Connection (other case) is not forwarded" %
               (lname, n), (resp.status, [x[:20] + b"..%d" % len(x) for x in names]))
            ck(names.count(name.lower() + b"x") == 1 and names.count(name[:-1].lower()) == 1 and
               b"x-keep" in names and b"connection" in names and lines[-1:] == [b"Connection: close"],
               "%s: %d bytes: the names one byte longer and one byte shorter are forwarded, "
               "the relay's own Connection: close ends the head" % (lname, n),
               [x[:20] + b"..%d" % len(x) for x in names])


# ================================================================= injection

def hostile_heads(p):
    auth = b"Proxy-Authorization: " + BASIC.encode() + b"\r\n"
    t = b"localhost:%d" % p
    ab = b"GET http://" + t + b"/ HTTP/1.1\r\n"
    cn = b"CONNECT " + t + b" HTTP/1.1\r\n"
    return [
        ("CONNECT target with CR", b"CONNECT localhost\r:%d HTTP/1.1\r\n" % p + auth + b"\r\n"),
        ("CONNECT target with LF (line split)", b"CONNECT localhost\n:%d HTTP/1.1\r\n" % p + auth +
         b"\r\n"),
        ("CONNECT target with NUL", b"CONNECT localhost\x00:%d HTTP/1.1\r\n" % p + auth + b"\r\n"),
        ("CONNECT target with a space", b"CONNECT localhost :%d HTTP/1.1\r\n" % p + auth + b"\r\n"),
        ("CONNECT target with TAB", b"CONNECT localhost\t:%d HTTP/1.1\r\n" % p + auth + b"\r\n"),
        ("absolute-form URI with LF + a header", b"GET http://" + t + b"/a\nX-Injected: 1 HTTP/1.1\r\n" +
         auth + b"\r\n"),
        ("absolute-form URI with bare CR", b"GET http://" + t + b"/a\rX: 1 HTTP/1.1\r\n" + auth + b"\r\n"),
        ("absolute-form URI with NUL", b"GET http://" + t + b"/a\x00b HTTP/1.1\r\n" + auth + b"\r\n"),
        ("absolute-form URI with a fragment", b"GET http://" + t + b"/a#f HTTP/1.1\r\n" + auth + b"\r\n"),
        ("absolute-form: bare CR inside a value", ab + auth + b"X-A: a\rX-Injected: 1\r\n\r\n"),
        ("absolute-form: NUL inside a value", ab + auth + b"X-A: a\x00b\r\n\r\n"),
        ("absolute-form: obs-fold", ab + auth + b"X-A: a\r\n X-Injected: 1\r\n\r\n"),
        ("absolute-form: DEL in a value", ab + auth + b"X-A: a\x7fb\r\n\r\n"),
        ("absolute-form: space before the colon", ab + auth + b"Transfer-Encoding : chunked\r\n\r\n"),
        ("absolute-form: Content-Length + Transfer-Encoding", ab + auth +
         b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("absolute-form: two Content-Length", ab + auth + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\n"),
        ("absolute-form: Content-Length with a sign", ab + auth + b"Content-Length: +5\r\n\r\nhello"),
        ("absolute-form: Content-Length list", ab + auth + b"Content-Length: 5, 5\r\n\r\nhello"),
        ("absolute-form: two Host", ab + b"Host: " + t + b"\r\nHost: 127.0.0.2\r\n" + auth + b"\r\n"),
        ("absolute-form: userinfo", b"GET http://x@" + t + b"/ HTTP/1.1\r\n" + auth + b"\r\n"),
        ("absolute-form: percent-escaped host", b"GET http://%6cocalhost:" + str(p).encode() +
         b"/ HTTP/1.1\r\n" + auth + b"\r\n"),
        ("CONNECT: bare CR inside a value", cn + auth + b"X-A: a\rb\r\n\r\n"),
        ("CONNECT: obs-fold after Proxy-Authorization", cn + auth + b" continued\r\n\r\n"),
    ]


@rt.case(timeout=150)
def injection_refused():
    r, res, other = setup()
    trailer = b"CONNECT localhost:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\nafter" % (
        res.port, BASIC.encode())
    for lname, tls in LISTENERS:
        for what, data in hostile_heads(res.port):
            m_res, m_oth = res.mark(), other.mark()
            raw, resp = r.exchange(tls, data + trailer)
            n_resp = raw.count(b"HTTP/1.1 ")
            ck(resp.status == 400 and body_json(resp).get("error") == "bad_request" and n_resp == 1,
               "%s: %s -> one 400 bad_request, the valid CONNECT pipelined after it never "
               "answered" % (lname, what), raw[:240])
            time.sleep(0.05)
            ck(res.accepted_since(m_res) == 0 and other.accepted_since(m_oth) == 0,
               "%s: %s -> nothing reached the console" % (lname, what))


# ================================================================= steering

@rt.case(timeout=120)
def no_steering():
    r, res, other = setup()
    p = res.port
    auth = [("Proxy-Authorization", BASIC)]
    for lname, tls in LISTENERS:
        port = r.https_port if tls else r.http_port
        # CONNECT to the allowed name with a Host header naming another address.
        m_res, m_oth = res.mark(), other.mark()
        st, h, c = rt.connect_tunnel("127.0.0.1", port, "localhost:%d" % p, tls=tls, verify=False,
                                     headers=[("Host", "127.0.0.2:%d" % p)] + auth)
        ok = False
        if st == 200:
            c.sendall(b"ping")
            try:
                c.shutdown(socket.SHUT_WR) if not tls else None
            except OSError:
                pass
            data = read_all(c, 6)
            c.close()
            ok = data.endswith(b"resolved")
        ck(st == 200 and ok and other.accepted_since(m_oth) == 0,
           "%s: CONNECT localhost with Host: 127.0.0.2 goes to the resolved address only" % lname,
           st)
        # IP literals and other spellings of an address: 403 (only written hosts match).
        for target, what in [("127.0.0.1:%d" % p, "127.0.0.1, what localhost resolves to"),
                             ("127.0.0.2:%d" % p, "127.0.0.2"),
                             ("[::ffff:127.0.0.2]:%d" % p, "IPv4-mapped 127.0.0.2"),
                             ("[::ffff:7f00:2]:%d" % p, "IPv4-mapped, hex words"),
                             ("2130706434:%d" % p, "decimal 2130706434"),
                             ("0x7f.0.0.2:%d" % p, "hex first part 0x7f.0.0.2"),
                             ("0177.0.0.2:%d" % p, "octal 0177.0.0.2"),
                             ("127.2:%d" % p, "short form 127.2"),
                             ("127.0.0.2.:%d" % p, "127.0.0.2 with a trailing dot"),
                             ("localhost..:%d" % p, "two trailing dots"),
                             ("localhost%%00:%d" % p, "percent-escaped NUL"),
                             ("LOCALHOST.example:%d" % p, "a suffix of the allowed name")]:
            m_res, m_oth = res.mark(), other.mark()
            st, h, body = rt.connect_tunnel("127.0.0.1", port, target, headers=auth, tls=tls,
                                            verify=False)
            if st == 200:
                body.close()
            time.sleep(0.05)
            ck(st in (400, 403) and res.accepted_since(m_res) == 0 and
               other.accepted_since(m_oth) == 0,
               "%s: CONNECT %s -> %s, no connection made" % (lname, what, st))
        # Bytes pipelined after a 403 are never parsed: the second CONNECT (allowed) is not
        # answered and opens nothing.
        m_res, m_oth = res.mark(), other.mark()
        raw, resp = r.exchange(tls, b"CONNECT 127.0.0.2:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\n"
                               b"CONNECT localhost:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\nhi" %
                               (p, BASIC.encode(), p, BASIC.encode()))
        time.sleep(0.1)
        ck(resp.status == 403 and raw.count(b"HTTP/1.1 ") == 1 and res.accepted_since(m_res) == 0
           and other.accepted_since(m_oth) == 0,
           "%s: 403 then close: the pipelined allowed CONNECT is never answered or opened" % lname,
           raw[:200])
        # The WebSocket tunnel's ?target= goes through the same checks.
        tok = access_token(r, "resp-ws")
        for target, want in [("127.0.0.2:%d" % p, 403), ("2130706434:%d" % p, 403),
                             ("x%%40localhost:%d" % p, 400)]:
            m_oth = other.mark()
            raw, resp = r.exchange(tls, b"GET /v1/tunnel?target=%s HTTP/1.1\r\nHost: relay\r\n"
                                   b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                   b"Sec-WebSocket-Version: 13\r\n"
                                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   b"Authorization: Bearer %s\r\n\r\n" % (target.encode(), tok.encode()))
            ck(resp.status == want and other.accepted_since(m_oth) == 0,
               "%s: GET /v1/tunnel?target=%s -> %d, no connection" % (lname, target, want),
               raw[:200])


# ================================================================= JWT

b64u = rt.b64url


def grant_claims(**over):
    now = int(time.time())
    c = {"sub": "resp-1", "org": ORG, "aud": "relaypro:%d" % RELAY_ID, "iat": now, "exp": now + 600}
    c.update(over)
    return c


def access_token(r, sub):
    resp = r.post_token("Bearer " + remember(rt.jwt_hs256(grant_claims(sub=sub), SECRET)))
    if resp.status != 200:
        raise RuntimeError("POST /v1/token -> %d" % resp.status)
    return remember(resp.json()["access_token"])


def hmac_token(header_raw, claims, key):
    """A token with a verbatim header (str) and an HMAC-SHA256 signature with key."""
    return remember(rt.jwt_hs256(claims, key, header=header_raw))


@rt.case(timeout=120)
def jwt_confusion():
    r, res, other = setup()
    # The CA certificate (public) as the HMAC key: the classic RS256 -> HS256 confusion;
    # here the relay has no RSA verification at all, so both spellings must fail.
    shown = subprocess.run([BIN, "ca", "show", "-c", r.cfg], capture_output=True, timeout=20,
                           env=rt.clean_environ())
    ca_pem = shown.stdout.split(b"SHA256 Fingerprint")[0].strip() + b"\n"
    ck(shown.returncode == 0 and ca_pem.startswith(b"-----BEGIN CERTIFICATE-----"),
       "relaypro ca show prints the CA certificate")
    g = grant_claims()
    base = r.post_token("Bearer " + remember(rt.jwt_hs256(g, SECRET)))
    ck_eq(base.status, 200, "grant: a well-formed grant is accepted (baseline)")
    grants = [
        ('{"alg":"RS256","typ":"JWT"}', SECRET, "alg RS256, HMAC with the security token"),
        ('{"alg":"RS256","typ":"JWT"}', ca_pem, "alg RS256, HMAC with the CA certificate PEM"),
        ('{"alg":"HS256","typ":"JWT"}', ca_pem, "alg HS256, HMAC with the CA certificate PEM"),
        ('{"alg":"HS256 ","typ":"JWT"}', SECRET, "alg 'HS256 ' (trailing space)"),
        ('{"alg":"HS256","alg":"HS256"}', SECRET, "alg given twice"),
        ('{"alg":"HS256","typ":"jwt+x"}', SECRET, "typ other than JWT"),
        ('{"alg":"ES256"}', SECRET, "alg ES256"),
        ('{"alg":"NONE"}', SECRET, "alg NONE (upper case)"),
    ]
    for hdr, key, what in grants:
        resp = r.post_token("Bearer " + hmac_token(hdr, g, key))
        ck(resp.status == 401 and body_json(resp).get("error") == "token_invalid",
           "grant: %s -> 401 token_invalid" % what, (resp.status, body_json(resp)))
    for claims, what in [(grant_claims(org=ORG + 1), "org of another organisation"),
                         (grant_claims(aud="relaypro:%d" % (RELAY_ID + 1)), "aud of another relay"),
                         (grant_claims(org=str(ORG)), "org as a string"),
                         ('{"sub":"resp-1","org":%d,"aud":"relaypro:%d","exp":%d,"org":%d}' %
                          (ORG + 1, RELAY_ID, int(time.time()) + 600, ORG), "org twice")]:
        resp = r.post_token("Bearer " + remember(rt.jwt_hs256(claims, SECRET)))
        ck(resp.status == 401 and body_json(resp).get("error") == "token_invalid",
           "grant: %s -> 401 token_invalid" % what, (resp.status, body_json(resp)))

    # Access tokens: A's token re-labelled as B, and the same on every entry point.
    tok_a = access_token(r, "resp-a")
    h64, c64, s64 = tok_a.split(".")
    claims = json.loads(base64.urlsafe_b64decode(c64 + "=" * (-len(c64) % 4)))
    hdr = json.loads(base64.urlsafe_b64decode(h64 + "=" * (-len(h64) % 4)))
    as_b = remember(h64 + "." + b64u(json.dumps(dict(claims, sub="resp-b"),
                                                separators=(",", ":")).encode()) + "." + s64)
    other_org = remember(h64 + "." + b64u(json.dumps(dict(claims, org=ORG + 1),
                                                     separators=(",", ":")).encode()) + "." + s64)
    rs = remember(b64u(json.dumps(dict(hdr, alg="RS256")).encode()) + "." + c64 + "." + s64)
    crafted = hmac_token(json.dumps(hdr), claims, ca_pem)
    grant_as_access = remember(rt.jwt_hs256(grant_claims(sub="resp-a"), SECRET))
    cases = [(tok_a, 200, "A's own token (baseline)"),
             (as_b, None, "A's token with sub changed to B"),
             (other_org, None, "A's token with org changed"),
             (rs, None, "A's token with alg RS256"),
             (crafted, None, "claims signed with the CA certificate as HMAC key"),
             (grant_as_access, None, "a grant used as an access token")]
    p = res.port
    for tok, want, what in cases:
        for lname, tls in LISTENERS:
            port = r.https_port if tls else r.http_port
            st, h, body = rt.connect_tunnel("127.0.0.1", port, "localhost:%d" % p, tls=tls,
                                            verify=False,
                                            headers=[("Proxy-Authorization", "Bearer " + tok)])
            if st == 200:
                body.close()
            ck(st == (want or 407), "%s: CONNECT with %s -> %d" % (lname, what, want or 407), st)
        raw, resp = r.exchange(True, b"GET /v1/tunnel?target=localhost:%d HTTP/1.1\r\nHost: relay\r\n"
                               b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               b"Authorization: Bearer %s\r\n\r\n" % (p, tok.encode()), timeout=3)
        ck(resp.status == (101 if want else 401),
           "tls: GET /v1/tunnel with %s -> %d" % (what, 101 if want else 401), resp.status)


# ================================================================= brute force

def limiter_slots():
    """LIMIT_BUCKETS x LIMIT_WAYS from src/limit.h: how many addresses the table holds."""
    with open(os.path.join(REPO, "src", "limit.h")) as f:
        text = f.read()
    num = lambda name: int(re.search(r"#define %s (\d+)" % name, text).group(1))  # noqa: E731
    return num("LIMIT_BUCKETS") * num("LIMIT_WAYS")


def fnv1a_bucket(ip, buckets=1024):
    """The bucket the limiter before issue 17 chose for an IPv4 address: FNV-1a, no key,
    over the address as 16 bytes (IPv4-mapped). An attacker could compute it, as here."""
    h = 2166136261
    for b in bytes(10) + b"\xff\xff" + socket.inet_aton(ip):
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h % buckets


def status_of(raw):
    """The status code of the first response line in raw, or None."""
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw or b"")
    return int(m.group(1)) if m else None


@rt.case(timeout=400)
def limiter_flood():
    """docs/security.md: a ban is never evicted to make room for an address that is not banned,
    and the table is keyed, so no choice of addresses can aim at one bucket. The victim
    127.1.0.1 is banned (authFailLimit 20), then failed logins come from 3 x the table's
    size of other 127/8 addresses (256 of them chosen to collide with the victim under the
    old unkeyed hash first); between every 512 of them the victim guesses again."""
    _, res, _ = setup()
    r = Relay("limit", res.port, limits={"authFailLimit": "20", "authFailBan": "1h",
                                         "headerTimeout": "5s"}).start()
    p = res.port
    bad = b"CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\nProxy-Authorization: " \
          b"Basic %s\r\n\r\n" % (p, p, base64.b64encode(b"%s:wrong" % USER.encode()))
    good = b"CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\nProxy-Authorization: %s" \
           b"\r\n\r\n" % (p, p, BASIC.encode())

    def one(src, data):
        got = rt.exchange_from_many([src], "127.0.0.1", r.http_port, data, 1, 10)
        return status_of(got[src])

    victim = "127.1.0.1"
    first = [one(victim, bad) for _ in range(21)]
    ck_eq(first, [407] * 21, "limiter: 21 failed logins from the victim are answered 407")
    ck_eq((one(victim, bad), one(victim, good)), (429, 429),
          "limiter: then the victim is banned (429, even with the right password)")

    slots = limiter_slots()
    target = fnv1a_bucket(victim)
    colliding = []
    for i in range(1, 1 << 20):  # bounded: about 1 in 1024 collides
        ip = "127.%d.%d.%d" % (32 + (i >> 16), i >> 8 & 255, i & 255)
        if i & 255 not in (0, 255) and fnv1a_bucket(ip) == target:
            colliding.append(ip)
            if len(colliding) == 256:
                break
    spread = ["127.%d.%d.%d" % (16 + (i >> 16), i >> 8 & 255, i & 255)
              for i in range(1 << 20) if i & 255 not in (0, 255)][:3 * slots]
    flood = colliding + spread
    leaks, answers, t0 = [], {}, time.monotonic()
    for k in range(0, len(flood), 512):
        answers.update(rt.exchange_from_many(flood[k:k + 512], "127.0.0.1", r.http_port, bad,
                                             concurrency=64, timeout=60))
        st = one(victim, bad)
        if st != 429:
            leaks.append((k + 512, st))
    took = time.monotonic() - t0
    sts = [status_of(v) for v in answers.values()]
    ck(len(colliding) == 256 and len(answers) == len(flood) and sts.count(407) == len(flood),
       "limiter: %d addresses (%d x the %d-slot table, 256 aimed at the victim's old bucket) "
       "each failed once and got 407 (%.1f s)" % (len(flood), len(flood) // slots, slots, took),
       "answers: %r" % {x: sts.count(x) for x in set(sts)})
    ck(not leaks, "limiter: every guess of the banned victim during the flood got 429 "
       "(%d guesses)" % (len(flood) // 512 + 1), "guesses that got through: %r" % leaks[:20])
    ck_eq(one(victim, good), 429, "limiter: after the flood the victim is still banned")
    ck_eq(one("127.3.0.1", good), 200,
          "limiter: a fresh address with the right password is let through")
    ck_eq(one(spread[-1], good), 200,
          "limiter: a flooding address with one failure is not banned (right password: 200)")
    fresh = [one("127.3.0.2", bad) for _ in range(21)]
    ck_eq((fresh, one("127.3.0.2", bad)), ([407] * 21, 429),
          "limiter: a fresh address is judged normally after the flood: 21 x 407, then 429")
    bans = [e.get("client", "") for e in rt.read_json_lines(r.log) if e.get("event") == "auth.ban"]
    ck(sum(1 for c in bans if c.startswith(victim + ":")) == 1 and
       sum(1 for c in bans if c.startswith("127.3.0.2:")) == 1,
       "limiter: one auth.ban for the victim (never lifted and banned again), one for the "
       "fresh address", bans[:10])
    ck_eq(r.proc.stop(timeout=10), 0, "limiter: relay stops cleanly")


# ================================================================= TLS

def s_client_renegotiate(port):
    """openssl s_client: handshake, ask for a renegotiation ('R'), then GET /healthz.
    Returns the client's combined output."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2",
            "-servername", "localhost"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=rt.clean_environ())
    out = b""
    try:
        time.sleep(1.0)
        p.stdin.write(b"R\n")
        p.stdin.flush()
        time.sleep(1.0)
        p.stdin.write(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        p.stdin.flush()
        time.sleep(1.0)
    except (BrokenPipeError, OSError):
        pass
    try:
        out, _ = p.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        p.kill()  # our own child, by its handle
        out, _ = p.communicate(timeout=5)
    return out


@rt.case(timeout=60)
def tls_renegotiation_refused():
    r, _, _ = setup()
    out = s_client_renegotiate(r.https_port)
    ck(b"RENEGOTIATING" in out and b"Cipher is ECDHE" in out,
       "tls: the client handshook, then asked for a renegotiation", out[-400:])
    ck(b"HTTP/1.1 200" not in out and b"no renegotiation" in out,
       "tls: the relay refuses a client-initiated renegotiation (alert no_renegotiation)",
       out[-400:])
    resp = rt.http_request("127.0.0.1", r.https_port, "GET", "/healthz", tls=True, verify=False,
                           server_hostname="localhost")
    ck_eq(resp.status, 200, "tls: the relay serves the next client normally")


# ================================================================= files

@rt.case(timeout=90)
def file_modes():
    for um in (0o022, 0o000):
        rl = Relay("modes-%03o" % um, rt.free_port(), umask=um)
        ck(not os.path.exists(rl.private), "umask %03o: no private folder before the start" % um)
        rl.start()
        ck_eq(oct(os.stat(rl.private).st_mode & 0o7777), oct(0o700),
              "umask %03o: private folder created 0700" % um)
        ck_eq(oct(os.stat(rl.bundle).st_mode & 0o7777), oct(0o600),
              "umask %03o: CA bundle created 0600" % um)
        leftovers = [n for n in os.listdir(rl.private) if n != "ca-bundle.pem"]
        ck_eq(leftovers, [], "umask %03o: no temporary file left next to the bundle" % um)
        ck_eq(rl.proc.stop(timeout=10), 0, "umask %03o: relay stops cleanly" % um)


def mode_events(r, since):
    """{basename: event} of the file.mode warnings logged since the offset."""
    return {os.path.basename(str(e.get("file", ""))): e for e in rt.read_json_lines(r.log, since)
            if e.get("event") == "file.mode"}


def reload_and_wait(r):
    """SIGHUP, then wait for the config.reload line; returns the log offset before it."""
    rec, since = r.reload()
    ck(rec is not None, "modes: the relay reloaded")
    return since


@rt.case(timeout=120)
def file_mode_warnings():
    """A CA bundle or password file that others (or a group other than the relay's own)
    can read or write is named in a file.mode warning, with its mode, at start and at every
    reload; never its content."""
    _, res, _ = setup()
    r = Relay("modewarn", res.port)
    users = os.path.join(r.dir, "users.txt")
    since = rt.log_offset(r.log)
    r.start()
    ck_eq(mode_events(r, since), {}, "modes: 0600 bundle and password file: no warning at start")
    since = reload_and_wait(r)
    ck_eq(mode_events(r, since), {}, "modes: 0600: no warning at reload")

    os.chmod(r.bundle, 0o644)
    os.chmod(users, 0o604)
    for n in (1, 2):
        since = reload_and_wait(r)
        ev = mode_events(r, since)
        b, u = ev.get("ca-bundle.pem", {}), ev.get("users.txt", {})
        ck(b.get("file") == os.path.realpath(r.bundle) and b.get("mode") == "0644" and
           b.get("level") == "warn" and "others" in str(b.get("reason")),
           "modes: reload %d: a CA bundle of mode 0644 is named with its mode" % n, ev)
        ck(u.get("file", "").endswith("/users.txt") and u.get("mode") == "0604" and
           "others" in str(u.get("reason")),
           "modes: reload %d: a password file of mode 0604 is named with its mode" % n, ev)

    # The group bits: a group other than the relay's own counts, its own group does not
    # (Kubernetes' fsGroup, Debian's user-private groups).
    os.chmod(r.bundle, 0o600)
    other = [g for g in ([65534] if os.geteuid() == 0 else os.getgroups()) if g != os.getegid()]
    if other:
        os.chown(users, -1, other[0])
        os.chmod(users, 0o660)
        since = reload_and_wait(r)
        ev = mode_events(r, since)
        ck(list(ev) == ["users.txt"] and ev["users.txt"].get("mode") == "0660" and
           "group %d" % other[0] in str(ev["users.txt"].get("reason")),
           "modes: a password file of mode 0660 in group %d (not the relay's) is named" %
           other[0], ev)
    else:
        rt.skip("modes: group other than the relay's", "no second group available to chown to")
    os.chown(users, -1, os.getegid())
    os.chmod(users, 0o640)
    since = reload_and_wait(r)
    ck_eq(mode_events(r, since), {}, "modes: 0640 in the relay's own group: no warning")

    # At start, before the start line.
    ck_eq(r.proc.stop(timeout=10), 0, "modes: relay stops cleanly")
    os.chmod(r.bundle, 0o640)
    os.chown(r.bundle, -1, other[0] if other else os.getegid())
    os.chmod(users, 0o666)
    since = rt.log_offset(r.log)
    r.start()
    ev = mode_events(r, since)
    if other:
        ck(sorted(ev) == ["ca-bundle.pem", "users.txt"] and ev["ca-bundle.pem"].get("mode") ==
           "0640" and ev["users.txt"].get("mode") == "0666" and
           "writable" in ev["users.txt"].get("reason", ""),
           "modes: at start: a 0640 bundle (other group) and a 0666 password file are named", ev)
    with open(r.log, "rb") as f:
        log = f.read()
    ck(PASSWORD.encode() not in log and b"PRIVATE KEY" not in log and b"BEGIN" not in log,
       "modes: the warnings carry no content of either file")
    ck_eq(r.proc.stop(timeout=10), 0, "modes: relay stops cleanly after the start warnings")


# ================================================================= logs

@rt.case(timeout=30)
def secrets_not_logged():
    r, _, _ = setup()
    rt.wait_for_log(r.log, "auth.fail", timeout=3)
    hits, size = [], 0
    for fn in ("relay.log", "relaypro.stdout", "relaypro.stderr"):
        p = os.path.join(r.dir, fn)
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            data = f.read().decode("utf-8", "replace")
        size += len(data)
        for i, s in enumerate(sorted(rt.secrets())):
            if s and s in data:
                hits.append("%s: secret #%d (%d chars)" % (fn, i, len(s)))
    recs = rt.read_json_lines(r.log)
    fails = sum(1 for x in recs if x.get("event") == "auth.fail")
    ck(size > 0 and fails >= 10, "the relay logged (%d bytes, %d auth.fail)" % (size, fails))
    ck(not hits, "no security token, password, Basic credential, grant or access token "
       "(%d strings) in the relay's log or output" % len(rt.secrets()), "; ".join(hits))


if __name__ == "__main__":
    rt.main("security", deadline=900)

#!/usr/bin/env python3
"""test_forward_once.py -- an absolute-form connection serves exactly one request
(docs/security.md, "One request per absolute-form connection").

`GET|POST http://host:port/path` is forwarded in origin-form with its body, framed by
Content-Length or chunked; whatever the client sends after that request and its body --
a second request pipelined in the same write, or sent once the answer came -- never
reaches the upstream: the relay reads it and drops it. An origin server written here
records every byte it receives on every connection it accepts, until the relay closes
it. After each exchange (once the relay has logged the client connection's
tunnel.close, and the origin has accepted a marker connection of the test's own, so that
every upstream connection the relay opened before is accepted too) exactly one upstream
connection must have been opened for it, and its record must be the first request and
its body, byte for byte, and nothing more: a second forward, on the same upstream
connection or on a new one, fails. Run on the TLS and the plain listener.
Last line: `forward-once: N passed, N failed`.
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
USER, PW = "fwd", "fwd-pass"

rt.init("forward-once", deadline=240)
TMP = rt.make_tmpdir("relaytest-fwd-")


class Origin:
    """Records the bytes of every connection it accepts: answers once the first request
    (head and body, Content-Length or chunked) is in, shuts its write side, and reads on
    until EOF. `accepted` lists the peers in accept order; `records` maps a peer to its
    bytes once its connection ended."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.cond = threading.Condition()
        self.accepted = []
        self.records = {}
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, peer = self.lsock.accept()
            except OSError:
                return
            peer = "%s:%d" % peer[:2]
            with self.cond:
                self.accepted.append(peer)
                self.cond.notify_all()
            threading.Thread(target=self.handle, args=(c, peer), daemon=True).start()

    def mark(self):
        """Where the next exchange's connections start in `accepted`."""
        with self.cond:
            return len(self.accepted)

    def since(self, start, timeout=30):
        """The records of the connections accepted from index `start` on, in accept order
        (None for one still open after `timeout` s). A marker connection of our own is
        accepted first: the listen queue is first in, first out, so every connection the
        relay completed before it is accepted by then."""
        marker = rt.connect("127.0.0.1", self.port, timeout=timeout)
        me = "%s:%d" % marker.getsockname()[:2]
        marker.close()
        end = time.monotonic() + timeout
        with self.cond:
            while me not in self.accepted and time.monotonic() < end:
                self.cond.wait(max(0.0, end - time.monotonic()))
            if me not in self.accepted:
                return ["the origin never accepted the marker connection"]
            peers = self.accepted[start:self.accepted.index(me)]
            while any(p not in self.records for p in peers) and time.monotonic() < end:
                self.cond.wait(max(0.0, end - time.monotonic()))
            return [self.records.get(p) for p in peers]

    @staticmethod
    def first_request_end(buf):
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head, body_at = buf[:end].decode("latin-1").lower(), end + 4
        if "transfer-encoding: chunked" in head:
            return Origin.chunked_end(buf, body_at)
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                n = int(line.split(":", 1)[1])
                return body_at + n if len(buf) >= body_at + n else None
        return body_at

    @staticmethod
    def chunked_end(buf, at):
        """Where a chunked body starting at `at` ends (after its trailers), or None."""
        while True:
            eol = buf.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(buf[at:eol].split(b";")[0], 16)
            at = eol + 2
            if size == 0:
                break
            if len(buf) < at + size + 2:
                return None
            at += size + 2
        while True:  # trailer lines, then the empty line
            eol = buf.find(b"\r\n", at)
            if eol < 0:
                return None
            if eol == at:
                return at + 2
            at = eol + 2

    def handle(self, c, peer):
        c.settimeout(30)
        buf, answered = bytearray(), False
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
                if not answered and self.first_request_end(bytes(buf)) is not None:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    c.shutdown(socket.SHUT_WR)
                    answered = True
        except OSError:
            pass
        c.close()
        with self.cond:
            self.records[peer] = bytes(buf)
            self.cond.notify_all()


ORIGIN = Origin()
PORT, PLAIN = rt.free_port(), rt.free_port()
LOG = os.path.join(TMP, "relay.log")
with open(os.path.join(TMP, "users.txt"), "w") as f:
    f.write("%s:%s\n" % (USER, PW))
os.chmod(os.path.join(TMP, "users.txt"), 0o600)
with open(os.path.join(TMP, "config.ini"), "w") as f:
    f.write("\n".join([
        "consoleAddress = 127.0.0.1", "serverName = localhost", "passwordFile = users.txt",
        "allowedPorts = %d" % ORIGIN.port,
        "[httpsProxy]", "listen = 127.0.0.1:%d" % PORT,
        "[httpProxy]", "listen = 127.0.0.1:%d" % PLAIN,
        "[logger]", "fileName = relay.log", ""]))
RELAY = rt.start_process([BIN, "run", "-c", os.path.join(TMP, "config.ini")], tmpdir=TMP,
                         name="relay", cwd=TMP)
if not (rt.wait_for_log(LOG, "start", timeout=15) and rt.wait_for_port("127.0.0.1", PORT)):
    rt.check(False, "relay starts", RELAY.stderr()[-1000:])
    rt.finish()

AUTH = rt.basic(USER, PW)["Proxy-Authorization"]
SECOND = (b"GET http://127.0.0.1:%d/second HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Proxy-Authorization: %s\r\n\r\n" % (ORIGIN.port, AUTH.encode()))


def request(method, body_headers, body):
    return (b"%s http://127.0.0.1:%d/first HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Proxy-Authorization: %s\r\n%s\r\n" %
            (method, ORIGIN.port, ORIGIN.port, AUTH.encode(), body_headers) + body)


def client(tls):
    if tls:
        return rt.tls_connect("127.0.0.1", PORT, server_hostname="localhost", timeout=10)
    return rt.connect("127.0.0.1", PLAIN, timeout=10)


def check_records(start, client_addr, body, what):
    """After the exchange of the client connection from `client_addr`: the relay logged its
    tunnel.close, the origin saw exactly one connection since `start`, and that one
    carried the first request and its body, nothing more."""
    closed = rt.wait_for_log(LOG, lambda r: r.get("event") == "tunnel.close" and
                             r.get("client") == client_addr, timeout=15)
    rt.check(closed is not None, "%s: the relay logs tunnel.close for the client connection" % what)
    recs = ORIGIN.since(start)
    if not rt.check(len(recs) == 1, "%s: exactly one upstream connection for the exchange" % what,
                    "%d connections: %r" % (len(recs), [(r or b"")[:80] for r in recs])):
        if not recs:
            return
    check_record(recs[0], body, what)
    for rec in recs[1:]:
        rt.check(False, "%s: a second upstream connection" % what, (rec or b"")[:200])


def check_record(rec, body, what):
    if not isinstance(rec, bytes):
        rt.check(False, "%s: the origin recorded the connection" % what, rec)
        return
    end = rec.find(b"\r\n\r\n")
    head, rest = rec[:end + 4], rec[end + 4:]
    rt.check(head.startswith(b"POST /first HTTP/1.1\r\n") or head.startswith(b"GET /first HTTP/1.1\r\n"),
             "%s: the first request reaches the origin in origin-form" % what, rec[:120])
    rt.check(rest == body, "%s: its body arrives byte for byte and nothing after it" % what,
             "got %d bytes after the head (want %d); 'second' present: %s" %
             (len(rest), len(body), b"second" in rec))
    rt.check(b"/second" not in rec, "%s: the bytes that followed the request never reach the origin" % what)


def addr(sock):
    return "%s:%d" % sock.getsockname()[:2]


@rt.case
def pipelined_after_content_length():
    for tls in (True, False):
        what = "tls" if tls else "plain"
        body = os.urandom(3000)
        start = ORIGIN.mark()
        s = client(tls)
        me = addr(s)
        s.sendall(request(b"POST", b"Content-Length: %d\r\n" % len(body), body) + SECOND + b"tail-bytes")
        resp = rt.read_until_close(s, timeout=15)
        s.close()
        rt.check(resp.startswith(b"HTTP/1.1 200 OK") and resp.endswith(b"ok") and
                 resp.count(b"HTTP/1.1") == 1, "%s: one answer, the origin's" % what, resp[:200])
        check_records(start, me, body, "%s, Content-Length" % what)


@rt.case
def pipelined_after_chunked():
    for tls in (True, False):
        what = "tls" if tls else "plain"
        body = b"5;ext=1\r\nhello\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
        start = ORIGIN.mark()
        s = client(tls)
        me = addr(s)
        s.sendall(request(b"POST", b"Transfer-Encoding: chunked\r\n", body) + SECOND)
        resp = rt.read_until_close(s, timeout=15)
        s.close()
        rt.check(resp.startswith(b"HTTP/1.1 200 OK") and resp.count(b"HTTP/1.1") == 1,
                 "%s: one answer to a chunked request" % what, resp[:200])
        check_records(start, me, body, "%s, chunked" % what)


@rt.case
def chunked_split_over_writes():
    """The chunked framing is followed across reads: the body in odd pieces."""
    body = b"3\r\nabc\r\n10\r\n" + b"0123456789abcdef" + b"\r\n0\r\n\r\n"
    data = request(b"POST", b"Transfer-Encoding: chunked\r\n", body) + SECOND
    start = ORIGIN.mark()
    s = client(False)
    me = addr(s)
    head_end = data.find(b"\r\n\r\n") + 4
    s.sendall(data[:head_end])
    rest = data[head_end:]
    for i in range(0, len(rest), 3):
        s.sendall(rest[i:i + 3])
    resp = rt.read_until_close(s, timeout=15)
    s.close()
    rt.check(resp.startswith(b"HTTP/1.1 200 OK"), "plain: answered", resp[:100])
    check_records(start, me, body, "plain, chunked in 3-byte writes")


@rt.case
def sent_after_the_answer():
    """Plain listener: the relay half-closes after the origin's answer; a second request
    the client sends then is read and dropped, never forwarded."""
    start = ORIGIN.mark()
    s = client(False)
    me = addr(s)
    s.sendall(request(b"GET", b"", b""))
    resp = rt.read_until_close(s, timeout=15)
    rt.check(resp.startswith(b"HTTP/1.1 200 OK"), "plain: the first request is answered", resp[:100])
    try:
        s.sendall(SECOND)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    rt.read_until_close(s, timeout=10)
    s.close()
    check_records(start, me, b"", "plain, a request sent after the answer")


rt.finish()

"""proctest.py — helpers for the process-side tests (test_upgrade.py, test_workers.py), on
top of relaytest: clients parked in the middle of a TLS handshake or before their request,
a steady stream of new connections at a set rate, and views of a process's descriptors and
of the kernel's listening sockets (/proc). Loopback only, every wait bounded."""
import os
import re
import socket
import ssl
import threading
import time

import relaytest as rt


# ================================================================= parked clients

class Parked:
    """A client connection accepted by the relay and then left waiting:

    kind "handshake": TLS, the ClientHello sent and the server's first flight received
    (so the relay has accepted it and is waiting for the client's key exchange);
    kind "tls": TLS handshake complete, no request sent;
    kind "plain": plain TCP, not a byte sent.

    finish() completes what is missing and returns a socket-like object (an ssl.SSLSocket,
    a relaytest.TLSOver or a plain socket) ready for a request."""

    def __init__(self, port, kind, timeout=15):
        self.kind = kind
        self.timeout = timeout
        self.sock = rt.connect("127.0.0.1", port, timeout)
        self.local_port = self.sock.getsockname()[1]
        self.conn = None
        if kind == "plain":
            self.conn = self.sock
        elif kind == "tls":
            ctx = rt.client_context(verify=False)
            self.conn = ctx.wrap_socket(self.sock, server_hostname="localhost")
            self.conn.settimeout(timeout)
        elif kind == "handshake":
            ctx = rt.client_context(verify=False)
            self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
            self._obj = ctx.wrap_bio(self._in, self._out, server_hostname="localhost")
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            self.sock.sendall(self._out.read())
            first = self.sock.recv(65536)  # the server's flight: it accepted and answered
            if not first:
                raise ConnectionError("the relay closed a handshake it had just started")
            self._in.write(first)
        else:
            raise ValueError(kind)

    def finish(self):
        if self.conn is not None:
            return self.conn
        t = rt.TLSOver.__new__(rt.TLSOver)  # relaytest's TLS-over-anything, mid-handshake
        t.conn, t.timeout, t._in, t._out, t.obj = self.sock, self.timeout, self._in, self._out, self._obj
        t._do(t.obj.do_handshake)
        self.conn = t
        return t

    def close(self):
        try:
            (self.conn or self.sock).close()
        except OSError:
            pass


def park(port, kind, n, timeout=15):
    return [Parked(port, kind, timeout) for _ in range(n)]


def tunnel_through(parked, target, headers, payload):
    """Finish a parked client, CONNECT target over it and echo payload. Returns (status,
    echoed bytes, the open connection or None)."""
    conn = parked.finish()
    st, _, s = rt.connect_tunnel("127.0.0.1", 0, target, headers=headers, conn=conn,
                                 timeout=parked.timeout)
    if st != 200:
        return st, b"", None
    return st, rt.echo_roundtrip(s, payload, timeout=parked.timeout), s


# ================================================================= steady load

class Load:
    """New plain connections at `rate` per second (GET /healthz on 127.0.0.1:port, each
    its own connection), from `threads` threads, until stop() or `limit` seconds. Counts
    answers that are 200 (ok) and everything else (fail: refused, reset, timed out, another
    status) with the first errors kept. The rate is a target: on a slow machine the
    connections run back to back and `rate_achieved()` says what was reached."""

    def __init__(self, port, rate=200, threads=8, limit=120, timeout=15):
        self.port, self.rate, self.limit, self.timeout = port, rate, limit, timeout
        self.ok = self.fail = 0
        self.errors = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self.t0 = self.t1 = None

    def start(self):
        self.t0 = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def _one(self):
        s = rt.connect("127.0.0.1", self.port, self.timeout)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return rt.read_until_close(s, timeout=self.timeout).startswith(b"HTTP/1.1 200")
        finally:
            s.close()

    def _run(self):
        end = self.t0 + self.limit
        while not self._stop.is_set() and time.monotonic() < end:
            with self._lock:
                k = self._next
                self._next += 1
            due = self.t0 + k / float(self.rate)
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            try:
                good = self._one()
                err = None if good else "answer was not 200"
            except OSError as e:
                good, err = False, "%s: %s" % (type(e).__name__, e)
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.fail += 1
                    if len(self.errors) < 5:
                        self.errors.append(err)

    def wait_ok(self, n, timeout=30):
        return rt.wait_until(lambda: self.ok >= n, timeout=timeout)

    def check_more(self, n, what, timeout=30):
        """rt.check that n more connections are answered from now on: the load's progress
        counted in connections (the timeout only bounds the wait)."""
        at = self.ok
        return rt.check(self.wait_ok(at + n, timeout=timeout), what,
                        (self.ok - at, self.fail, self.errors[:3]))

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        self.t1 = time.monotonic()

    def rate_achieved(self):
        span = (self.t1 or time.monotonic()) - self.t0
        return (self.ok + self.fail) / span if span > 0 else 0.0


# ================================================================= /proc views

def fds(pid):
    """{fd: readlink target} of a process ({} once it is gone)."""
    out = {}
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def inode(target):
    """'socket:[123]' / 'pipe:[123]' -> ('socket', 123); anything else -> (target, None)."""
    m = re.match(r"^(socket|pipe):\[(\d+)\]$", target)
    return (m.group(1), int(m.group(2))) if m else (target, None)


def tcp_sockets():
    """{inode: (state, local port, accept-queue length)} of every TCP socket (IPv4 and
    IPv6). state '0A' = LISTEN; for a listening socket rx_queue is its accept queue."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            p = ln.split()
            if len(p) < 10:
                continue
            port = int(p[1].rsplit(":", 1)[1], 16)
            rxq = int(p[4].split(":")[1], 16)
            out[int(p[9])] = (p[3], port, rxq)
    return out


def listeners_of(pid, ports=None):
    """{fd: (port, inode, accept queue)} of the listening TCP sockets pid holds (on `ports`
    only, when given)."""
    socks = tcp_sockets()
    out = {}
    for fd, target in fds(pid).items():
        kind, ino = inode(target)
        if kind == "socket" and ino in socks and socks[ino][0] == "0A":
            port = socks[ino][1]
            if ports is None or port in ports:
                out[fd] = (port, ino, socks[ino][2])
    return out


def fd_listing(pid):
    """A readable listing of pid's descriptors: 'fd -> target [LISTEN :port]'."""
    socks = tcp_sockets()
    lines = []
    for fd, target in sorted(fds(pid).items()):
        kind, ino = inode(target)
        extra = ""
        if kind == "socket" and ino in socks:
            st, port, _ = socks[ino]
            extra = "  [%s :%d]" % ("LISTEN" if st == "0A" else "tcp state " + st, port)
        lines.append("%4d -> %s%s" % (fd, target, extra))
    return lines


def fd_problems(pid, ports, other_pid=None):
    """What is wrong with pid's descriptors for a process that should hold exactly one
    listening socket per port in `ports`, its own pipes (both ends of each), at most one
    descriptor per file, and nothing shared with other_pid (the process it replaced)
    except those listening sockets. Descriptors 0-2 are the caller's. Returns a list of
    findings (empty: clean)."""
    mine = fds(pid)
    socks = tcp_sockets()
    other = {inode(t) for t in fds(other_pid).values()} if other_pid else set()
    problems = []
    seen_ports = {}
    pipes = {}
    files = {}
    for fd, target in sorted(mine.items()):
        if fd <= 2:
            continue
        kind, ino = inode(target)
        if kind == "socket" and ino in socks and socks[ino][0] == "0A":
            port = socks[ino][1]
            seen_ports.setdefault(port, []).append(fd)
            if port not in ports:
                problems.append("fd %d listens on %d, not one of %s" % (fd, port, sorted(ports)))
        elif kind in ("socket", "pipe") and (kind, ino) in other:
            problems.append("fd %d (%s) is shared with pid %d" % (fd, target, other_pid))
        if kind == "pipe":
            pipes.setdefault(ino, []).append(fd)
        if target.startswith("/"):
            files.setdefault(target, []).append(fd)
    for port in ports:
        n = len(seen_ports.get(port, []))
        if n != 1:
            problems.append("%d descriptors listen on port %d (fds %s), want 1" %
                            (n, port, seen_ports.get(port, [])))
    for ino, where in pipes.items():
        if len(where) != 2:
            problems.append("pipe:[%d] held by fds %s: one end of a pipe this process does "
                            "not own (a hand-off pipe not closed)" % (ino, where))
    for path, where in files.items():
        if len(where) > 1:
            problems.append("%s open %d times (fds %s)" % (path, len(where), where))
    return problems


def refused(port, host="127.0.0.1"):
    """True when a TCP connect to port is refused at once (nothing listening)."""
    try:
        s = socket.create_connection((host, port), timeout=5)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def scrape(port, timeout=5):
    """GET /metrics on the admin listener 127.0.0.1:port: [(name, {labels}, value)], or
    None when the answer is not 200."""
    r = rt.http_request("127.0.0.1", port, "GET", "/metrics", timeout=timeout)
    if r.status != 200:
        return None
    out = []
    for ln in r.body.decode("utf-8", "replace").splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', ln)
        if m:
            labels = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out.append((m.group(1), labels, float(m.group(4))))
    return out


def sample(samples, name, labels=None):
    """The value of the first sample named `name` whose labels include `labels`, or None."""
    want = labels or {}
    for n, got, v in samples or ():
        if n == name and all(got.get(k) == x for k, x in want.items()):
            return v
    return None


def scrape_value(port, name, labels=None, timeout=5):
    """One sample of a fresh scrape (None if absent)."""
    return sample(scrape(port, timeout), name, labels)

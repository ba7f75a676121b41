#!/usr/bin/env python3
"""test_abuse.py — abuse against the real binary, loopback only (issue 9).

* brute force: a flood of bad tokens from 127.0.0.3 is answered 407 until authFailLimit,
  then 429 rate_limited (good credentials from there too); 127.0.0.2 is unaffected
  (200 with good credentials, 407 not 429 for a bad token);
* slowloris: 1,000 clients spread over 100 addresses (127.1.0.0/24; one address would be
  stopped at maxPendingPerAddress, test_pending.py) send a partial request head one byte
  at a time; normal tunnels opened meanwhile all succeed (their latency is printed, never asserted: see
  tests/bench/slowloris_p99.py), and headerTimeout (5 s, counted from accept) closes every
  slowloris connection although each keeps sending;
* 10,000 idle tunnels (as many as RLIMIT_NOFILE allows: the relay needs two descriptors
  per tunnel; the count used is printed), then SIGHUP: the reload applies, no tunnel is
  closed, and every tunnel still echoes its own bytes.
The echo side of the idle tunnels is a small selectors-based process of its own (so the
test's descriptors hold only the client ends).
"""
import json
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
S = {}
WANT_TUNNELS = 10000
SLOWLORIS = 1000

ECHO_SERVER = r'''
import selectors, socket, sys
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(4096); ls.setblocking(False)
sel = selectors.DefaultSelector(); sel.register(ls, selectors.EVENT_READ)
print(ls.getsockname()[1], flush=True)
while True:
    for key, _ in sel.select(1.0):
        s = key.fileobj
        if s is ls:
            for _ in range(256):
                try:
                    c, _ = ls.accept()
                except (BlockingIOError, OSError):
                    break
                c.setblocking(False); sel.register(c, selectors.EVENT_READ)
            continue
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if not data:
            sel.unregister(s); s.close(); continue
        try:
            s.sendall(data)   # small echoes: fits the socket buffer
        except OSError:
            sel.unregister(s); s.close()
'''


def events(name, since=0):
    return rt.events(S["log"], name, since)


err_code = rt.err_code


def conn_from(src, timeout=5):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", S["port"]))
    return s


def tunnel(headers, src="127.0.0.1"):
    return rt.connect_tunnel("127.0.0.1", S["port"], "127.0.0.1:%d" % S["echo"], headers=headers,
                             tls=False, conn=conn_from(src))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


@rt.case(timeout=30)
def setup():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by children
    S["nofile"] = hard
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    es = os.path.join(tmp, "echo_server.py")
    with open(es, "w") as f:
        f.write(ECHO_SERVER)
    S["echo_proc"] = e = rt.start_process([sys.executable, es], tmpdir=tmp, name="echo")
    rt.wait_until(lambda: e.stdout().strip() != "" or not e.alive(), timeout=10)
    S["echo"] = int(e.stdout().split()[0])
    S["port"] = rt.free_port()
    with open(os.path.join(tmp, "users.txt"), "w") as f:
        f.write("u:p\n")
    S["cfg"] = os.path.join(tmp, "config.ini")
    S["cfg_text"] = ("consoleAddress = 127.0.0.1\nallowedPorts = %d\npasswordFile = users.txt\n"
                     "relayProId = 123e4567-e89b-12d3-a456-426614174000\n"
                     "[httpsProxy]\nlisten =\n[httpProxy]\nlisten = 127.0.0.1:%d\n"
                     "[logger]\nfileName = relay.log\n"
                     "[limits]\nmaxConnections = 12000\nheaderTimeout = 5s\nauthFailLimit = 5\n"
                     "maxPendingPerAddress = 600\n"
                     "authFailBan = 60s\nshutdownTimeout = 2s\n" % (S["echo"], S["port"]))
    with open(S["cfg"], "w") as f:
        f.write(S["cfg_text"])
    S["log"] = os.path.join(tmp, "relay.log")
    S["relay"] = rt.start_process([BIN, "run", "-c", S["cfg"]], tmpdir=tmp, name="relay", cwd=tmp)
    rt.check(rt.wait_for_port("127.0.0.1", S["port"], 10), "relay listens", S["relay"].stderr())


@rt.case(timeout=30)
def bad_token_flood_is_banned_per_address():
    answers = []
    for _ in range(12):  # limit 5: the ban must come well within 12
        st, _, body = tunnel(rt.bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad-signature"),
                             src="127.0.0.3")
        answers.append((st, err_code(body)))
        if st == 429:
            break
    rt.check(answers[:5] == [(407, "token_invalid")] * 5,
             "the first 5 bad tokens from 127.0.0.3: 407 token_invalid", answers)
    rt.check(answers[-1] == (429, "rate_limited") and len(answers) <= 7,
             "then 429 rate_limited (%d attempts)" % len(answers), answers)
    st, _, body = tunnel(rt.basic("u", "p"), src="127.0.0.3")
    rt.check_eq((st, err_code(body)), (429, "rate_limited"),
                "127.0.0.3 is banned even with good credentials")
    ev = [e for e in events("auth.fail") if e.get("client", "").startswith("127.0.0.3")]
    rt.check(len(ev) >= 5, "auth.fail logged with the client address", len(ev))
    rt.check("bad-signature" not in open(S["log"]).read(), "the bad token is not logged")
    st, _, s = tunnel(rt.basic("u", "p"), src="127.0.0.2")
    if rt.check_eq(st, 200, "127.0.0.2 is unaffected: good credentials tunnel"):
        rt.check_eq(rt.echo_roundtrip(s, b"x" * 4096), b"x" * 4096, "127.0.0.2 tunnel echoes")
        s.close()
    st, _, body = tunnel(rt.bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad-signature"),
                         src="127.0.0.2")
    rt.check_eq((st, err_code(body)), (407, "token_invalid"),
                "127.0.0.2 bad token: 407, not 429 (its own count)")


def normal_ops(n, name):
    """n tunnels opened, echoing 1 KiB, closed; returns (ok count, latencies in ms)."""
    lat, ok = [], 0
    for _ in range(n):
        t0 = time.monotonic()
        try:
            st, _, s = tunnel(rt.basic("u", "p"))
            if st == 200:
                if rt.echo_roundtrip(s, b"n" * 1024, timeout=10) == b"n" * 1024:
                    ok += 1
                s.close()
        except OSError:
            pass
        lat.append((time.monotonic() - t0) * 1000)
    return ok, lat


@rt.case(timeout=150)
def slowloris_does_not_starve_others():
    n_ops = 100
    ok0, base = normal_ops(n_ops, "unloaded")
    rt.check_eq(ok0, n_ops, "unloaded: %d normal tunnels succeed" % n_ops)
    head = b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % (S["echo"], S["echo"])
    slow = []
    t_open = time.monotonic()
    for i in range(SLOWLORIS):
        s = socket.socket()
        s.settimeout(5)
        s.bind(("127.1.0.%d" % (1 + i % 100), 0))
        s.connect(("127.0.0.1", S["port"]))
        s.send(head[:10])
        s.setblocking(False)
        slow.append(s)
    opened = time.monotonic()
    stop = threading.Event()
    closed = {}

    def trickle():
        # one more byte per connection every 0.5 s until the relay closes it (bounded: the
        # wait below sets `stop`; the 120 s only guards against that wait never ending)
        pos = 10
        end = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < end:
            b = head[pos:pos + 1] if pos < len(head) else b"a"
            pos += 1
            for i, s in enumerate(slow):
                if i in closed:
                    continue
                try:
                    s.send(b)
                except BlockingIOError:
                    pass
                except OSError:
                    closed[i] = time.monotonic()
            stop.wait(0.5)

    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    ok1, loaded = normal_ops(n_ops, "loaded")
    rt.check_eq(ok1, n_ops, "with %d slowloris clients: %d normal tunnels succeed"
                % (SLOWLORIS, n_ops))
    print("measure: normal tunnel (connect+auth+1 KiB echo) ms unloaded p50 %.1f p99 %.1f; "
          "with %d slowloris p50 %.1f p99 %.1f; p99 ratio %.2f (not asserted; the slowloris "
          "clients run in this process and slow it too: tests/bench/slowloris_p99.py measures "
          "with them in a process of their own)" % (pct(base, .5), pct(base, .99), SLOWLORIS,
                                             pct(loaded, .5), pct(loaded, .99),
                                             pct(loaded, .99) / max(0.001, pct(base, .99))))
    # headerTimeout 5 s from accept: every slowloris connection is closed by the relay.
    # Wait for the event (each socket's EOF or reset); the 60 s is only a bound on the wait,
    # generous for a loaded machine, and nothing below asserts how long it took: the pass
    # condition is that all of them were closed.
    sel = selectors.DefaultSelector()
    for i, s in enumerate(slow):
        sel.register(s, selectors.EVENT_READ, i)
    end = time.monotonic() + 60
    while len(closed) < SLOWLORIS and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            i = key.data
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed.setdefault(i, time.monotonic())
                sel.unregister(key.fileobj)
    stop.set()
    th.join(5)
    sel.close()
    for s in slow:
        s.close()
    rt.check_eq(len(closed), SLOWLORIS, "headerTimeout closed every slowloris connection")
    if closed:
        first = min(closed.values()) - t_open
        last = max(closed.values()) - opened
        print("measure: slowloris closed between %.1f s (first) and %.1f s (last) after "
              "opening (headerTimeout 5 s)" % (first, last))
    ok2, _ = normal_ops(10, "after")
    rt.check_eq(ok2, 10, "normal tunnels still work afterwards")


def open_tunnels(n):
    """n idle tunnels through the relay, opened in batches; returns the sockets."""
    req = rt.build_request("CONNECT", "127.0.0.1:%d" % S["echo"],
                           [("Host", "127.0.0.1:%d" % S["echo"])] +
                           list(rt.basic("u", "p").items()))
    socks = []
    end = time.monotonic() + 90
    while len(socks) < n and time.monotonic() < end:
        batch = []
        for _ in range(min(500, n - len(socks))):
            s = socket.socket()
            s.settimeout(10)
            s.connect(("127.0.0.1", S["port"]))
            s.sendall(req)
            batch.append(s)
        for s in batch:
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 4096:
                piece = s.recv(4096)  # nothing else arrives before our first byte
                if not piece:
                    break
                buf += piece
            if buf.startswith(b"HTTP/1.1 200"):
                socks.append(s)
            else:
                s.close()
                return socks
    return socks


def echo_all(socks, timeout=60):
    """Send each tunnel its own 8 bytes, read them back; returns how many matched."""
    sel = selectors.DefaultSelector()
    want = {}
    for i, s in enumerate(socks):
        s.setblocking(False)
        msg = b"%08d" % i
        s.send(msg)
        want[s] = [msg, b""]
        sel.register(s, selectors.EVENT_READ)
    good, end = 0, time.monotonic() + timeout
    while want and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                data = s.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            w = want[s]
            w[1] += data
            if not data or len(w[1]) >= len(w[0]):
                good += w[1] == w[0]
                sel.unregister(s)
                del want[s]
    sel.close()
    for s in socks:
        s.setblocking(True)
    return good


@rt.case(timeout=150)
def ten_thousand_idle_tunnels_then_reload():
    # The relay holds two descriptors per tunnel, plus listeners, log, pipes: what fits.
    fit = (S["nofile"] - 64) // 2
    n = min(WANT_TUNNELS, fit)
    print("measure: RLIMIT_NOFILE %d -> %d idle tunnels%s" % (
        S["nofile"], n, "" if n == WANT_TUNNELS else
        " (10,000 do not fit: the relay needs 2 per tunnel and the hard limit cannot be "
        "raised here)"))
    t0 = time.monotonic()
    socks = open_tunnels(n)
    print("measure: %d tunnels opened in %.1f s" % (len(socks), time.monotonic() - t0))
    rt.check_eq(len(socks), n, "%d idle tunnels open" % n)
    since = rt.log_offset(S["log"])
    with open(S["cfg"], "w") as f:
        f.write(S["cfg_text"].replace("authFailLimit = 5", "authFailLimit = 6"))
    os.kill(S["relay"].pid, signal.SIGHUP)
    ev = rt.wait_for_log(S["log"], "config.reload", timeout=30, since=since)
    rt.check(ev is not None and ev.get("ok") is True, "SIGHUP with %d tunnels: reload ok" % n, ev)
    t1 = time.monotonic()
    good = echo_all(socks)
    print("measure: %d tunnels echoed after the reload in %.1f s" % (good, time.monotonic() - t1))
    rt.check_eq(good, len(socks), "every tunnel still echoes after the reload")
    rt.check_eq(len(events("tunnel.close", since)), 0, "no tunnel closed by the reload")
    rt.check(rt.plain_healthz(S["port"]), "the relay answers /healthz")
    for s in socks:
        s.close()


if __name__ == "__main__":
    rt.main("abuse", deadline=360)

#!/usr/bin/env python3
"""test_sessions.py -- the live session table: `GET /sessions` on the admin listener and
`relaypro sessions [-c FILE]`, against the real binary.

One tunnel of each transport is opened — CONNECT (TLS, Bearer), absolute-form (plain, a
password-file user), a WebSocket tunnel and a UDP association — and /sessions must list each
with its id, transport, client address:port (as the client's own socket says), sub or user,
target, opened (RFC 3339), bytesUp/bytesDown (equal to what was echoed) and idleSeconds;
closed tunnels leave the table; the proxy listeners do not serve it (404). Then 400 tunnels at
once: the answer is several times the admin listener's send buffer, sent in chunks
(Transfer-Encoding: chunked on HTTP/1.1, read by curl too, and close-delimited on HTTP/1.0),
every session exactly once. `relaypro sessions` prints the same as a table, exits 2 without
an admin listener and 1 when nothing answers. With workers = 2, every answer lists the
tunnels of both workers, whichever takes the admin connection. Last line:
`sessions: N passed, N failed`.
"""
import calendar
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402
import relays  # noqa: E402
import wsclient  # noqa: E402

rt.init("sessions", deadline=600)
TMP = rt.make_tmpdir("relaytest-sessions-")
BIN = rt.relay_bin()
S = {}
FIELDS = ("id", "transport", "client", "sub", "target", "opened", "bytesUp", "bytesDown",
          "idleSeconds")


def sessions(relay, version="1.1"):
    """GET /sessions on the admin listener: (status, headers, parsed array or None, raw body)."""
    s = rt.connect("127.0.0.1", relay.admin_port, timeout=10)
    try:
        s.sendall(("GET /sessions HTTP/%s\r\nHost: admin\r\nConnection: close\r\n\r\n" % version).encode())
        raw = rt.read_until_close(s, timeout=20)
    finally:
        s.close()
    r = rt.parse_response(raw)
    try:
        arr = json.loads(r.body.decode())
    except ValueError:
        arr = None
    return r.status, r.headers, arr, raw


def rows_for(relay, pred):
    st, h, arr, raw = sessions(relay)
    return [x for x in (arr or []) if pred(x)]


def wait_row(relay, pred, timeout=10):
    """The first row matching pred, polled until it shows (bounded)."""
    found = []

    def look():
        found[:] = rows_for(relay, pred)
        return bool(found)
    rt.wait_until(look, timeout=timeout, interval=0.1)
    return found[0] if found else None


def rfc3339(text):
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z", text or "")
    if not m:
        return None
    return calendar.timegm(tuple(int(x) for x in m.groups()) + (0, 0, 0))


@rt.case(timeout=120)
def setup():
    S["con"] = rt.start_console(TMP, tls_echo=False)
    S["udp"] = rt.UdpEcho()
    d = os.path.join(TMP, "main")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write("alice:pw-alice-123\n")
    os.chmod(os.path.join(d, "users.txt"), 0o600)
    S["relay"] = relays.start_relay(
        TMP, "main", admin=True,
        top=["allowedPorts = %d" % S["con"].echo_port, "allowedUdpPorts = %d" % S["udp"].port,
             "passwordFile = users.txt"],
        sections=["[limits]", "maxConnections = 2000"])
    S["t0"] = time.time()
    r = rt.http_request("127.0.0.1", S["relay"].admin_port, "GET", "/healthz")
    rt.check_eq(r.status, 200, "console, UDP echo and relay ready (/healthz)")


@rt.case(timeout=120)
def one_of_each_transport():
    relay, echo = S["relay"], S["con"].echo_port
    target = "localhost:%d" % echo
    # CONNECT over TLS with an access token
    st, h, ct = rt.connect_tunnel("127.0.0.1", relay.port, target,
                                  headers=rt.bearer(relay.token("sub-connect")), verify=False)
    rt.check_eq(st, 200, "CONNECT tunnel open")
    rt.echo_roundtrip(ct, b"c" * 1000)
    # absolute-form on the plain listener, a password-file user; the echo service sends the
    # forwarded request back, and the connection stays open
    ab = rt.connect("127.0.0.1", relay.plain_port)
    ab.sendall(rt.build_request("GET", "http://%s/x" % target,
                                dict(rt.basic("alice", "pw-alice-123"), Host=target)))
    first = ab.recv(4096)
    rt.check(first.startswith(b"GET /x HTTP/1.1"), "absolute-form forwarded (echoed back)", first[:60])
    # a WebSocket tunnel and a UDP association
    st, h, ws = wsclient.ws_open("127.0.0.1", relay.port, "/v1/tunnel?target=" + target,
                           relay.token("sub-ws"), verify=False)
    rt.check_eq(st, 101, "WebSocket tunnel open")
    ws.send_binary(b"w" * 300)
    got = b""
    for _ in range(10):
        if len(got) >= 300:
            break
        m = ws.recv_message(timeout=10)
        if m is None:
            break
        got += m[1]
    st, h, us = wsclient.ws_open("127.0.0.1", relay.port, "/v1/udp?target=localhost:%d" % S["udp"].port,
                           relay.token("sub-udp"), verify=False)
    rt.check_eq(st, 101, "UDP association open")
    us.send_binary(b"u" * 1400)
    us.recv_message(timeout=10)

    def me(sock):
        a = sock.getsockname()
        return "%s:%d" % (a[0], a[1])
    want = {
        "connect": ("sub-connect", me(ct), target, 1000, 1000),
        "absolute": ("alice", me(ab), target, None, None),
        "ws": ("sub-ws", me(ws.s), target, 300, 300),
        "udp": ("sub-udp", me(us.s), "localhost:%d" % S["udp"].port, 1400, 1400),
    }
    for tr, (sub, client, tgt, up, down) in want.items():
        row = wait_row(relay, lambda x: x.get("transport") == tr and x.get("client") == client and
                       (up is None or (x.get("bytesUp") == up and x.get("bytesDown") == down)))
        rt.check(row is not None, "%s: listed with its client %s and its bytes" % (tr, client),
                 rows_for(relay, lambda x: True))
        if row is None:
            continue
        rt.check_eq(sorted(row), sorted(FIELDS), "%s: exactly the documented fields" % tr)
        rt.check_eq(row.get("sub"), sub, "%s: sub (or the password user)" % tr)
        rt.check_eq(row.get("target"), tgt, "%s: target host:port" % tr)
        t = rfc3339(row.get("opened"))
        rt.check(t is not None and S["t0"] - 2 <= t <= time.time() + 2,
                 "%s: opened is RFC 3339 UTC, when it opened" % tr, row.get("opened"))
        rt.check(isinstance(row.get("idleSeconds"), int) and row["idleSeconds"] >= 0,
                 "%s: idleSeconds is a whole number" % tr, row.get("idleSeconds"))
        rt.check(isinstance(row.get("id"), int) and row["id"] > 0, "%s: id is a positive number" % tr)
    if "absolute" in want:
        row = wait_row(relay, lambda x: x.get("transport") == "absolute")
        rt.check(row is not None and row.get("bytesUp", 0) > 0 and row["bytesUp"] == row["bytesDown"],
                 "absolute: the forwarded head counted each way (the echo sent it back)", row)
    ids = [x["id"] for x in rows_for(relay, lambda x: True)]
    rt.check_eq(len(ids), len(set(ids)), "ids are unique")
    # the idle time grows while nothing moves; bytes move it back to 0
    row = wait_row(relay, lambda x: x.get("transport") == "udp" and x.get("idleSeconds", 0) >= 1,
                   timeout=10)
    rt.check(row is not None, "idleSeconds counts up on a silent tunnel")
    us.send_binary(b"again")
    us.recv_message(timeout=10)
    row = wait_row(relay, lambda x: x.get("transport") == "udp" and x.get("bytesUp") == 1405)
    rt.check(row is not None and row.get("bytesDown") == 1405, "the next datagram shows in the row", row)
    # closed tunnels leave the table
    for s in (ct, ab):
        s.close()
    ws.close()
    us.close()
    ok = rt.wait_until(lambda: not rows_for(relay, lambda x: True), timeout=15, interval=0.1)
    rt.check(ok, "closed tunnels leave the table", rows_for(relay, lambda x: True))


@rt.case(timeout=60)
def only_on_the_admin_listener():
    relay = S["relay"]
    r = rt.http_request("127.0.0.1", relay.plain_port, "GET", "/sessions")
    rt.check_eq(r.status, 404, "GET /sessions on the plain proxy listener: 404")
    r = rt.http_request("127.0.0.1", relay.port, "GET", "/sessions", tls=True, verify=False,
                        server_hostname="localhost")
    rt.check_eq(r.status, 404, "GET /sessions on the TLS proxy listener: 404")
    r = rt.http_request("127.0.0.1", relay.admin_port, "POST", "/sessions")
    rt.check_eq(r.status, 405, "POST /sessions on the admin listener: 405")
    st, h, arr, raw = sessions(relay)
    rt.check(st == 200 and arr == [] and "json" in (h.get("Content-Type") or ""),
             "no tunnel: 200 with an empty JSON array", raw[:300])


@rt.case(timeout=300)
def many_sessions_in_chunks():
    relay, target = S["relay"], "localhost:%d" % S["con"].echo_port
    n = 400
    socks = []
    try:
        for i in range(n):
            st, h, s = rt.connect_tunnel("127.0.0.1", relay.plain_port, target, tls=False,
                                         headers=rt.basic("alice", "pw-alice-123"), timeout=10)
            if st != 200:
                break
            socks.append(s)
        rt.check_eq(len(socks), n, "%d tunnels open" % n)
        st, h, arr, raw = sessions(relay)
        rt.check_eq(st, 200, "HTTP/1.1: 200")
        rt.check_eq((h.get("Transfer-Encoding") or "").lower(), "chunked", "HTTP/1.1: chunked")
        rt.check(len(raw) > 2 * 25856, "the answer is more than twice the admin send buffer (%d bytes)"
                 % len(raw))
        rt.check(arr is not None and len(arr) == n and len({x["id"] for x in arr}) == n,
                 "every session exactly once", None if arr is None else len(arr))
        clients = {"%s:%d" % s.getsockname() for s in socks}
        rt.check(arr is not None and {x["client"] for x in arr} == clients,
                 "the rows are the tunnels just opened")
        st, h, arr10, raw10 = sessions(relay, "1.0")
        rt.check(st == 200 and "Transfer-Encoding" not in h and arr10 is not None and len(arr10) == n,
                 "HTTP/1.0: not chunked, the body ends at the close, every session",
                 (st, dict(h.items()) if h else None))
        r = subprocess.run(["curl", "-q", "-sS", "--max-time", "30",
                            "http://127.0.0.1:%d/sessions" % relay.admin_port],
                           capture_output=True, timeout=60, env=rt.clean_environ())
        try:
            carr = json.loads(r.stdout)
        except ValueError:
            carr = None
        rt.check(r.returncode == 0 and carr is not None and len(carr) == n,
                 "curl reads the chunked answer as the same array", r.stderr[-300:])
        p = subprocess.run([BIN, "sessions", "-c", relay.cfg], capture_output=True, text=True,
                           timeout=60, env=rt.clean_environ(), cwd=relay.dir)
        lines = p.stdout.splitlines()
        rt.check(p.returncode == 0 and len(lines) == n + 1, "relaypro sessions: a header and %d rows" % n,
                 (p.returncode, len(lines), p.stderr[-300:]))
    finally:
        for s in socks:
            s.close()


@rt.case(timeout=120)
def cli_table():
    relay = S["relay"]
    target = "localhost:%d" % S["con"].echo_port
    st, h, ct = rt.connect_tunnel("127.0.0.1", relay.port, target,
                                  headers=rt.bearer(relay.token("cli-sub")), verify=False)
    rt.echo_roundtrip(ct, b"z" * 2048)
    wait_row(relay, lambda x: x.get("sub") == "cli-sub" and x.get("bytesDown") == 2048)
    p = subprocess.run([BIN, "sessions", "-c", relay.cfg], capture_output=True, text=True, timeout=30,
                       env=rt.clean_environ(), cwd=relay.dir)
    lines = p.stdout.splitlines()
    rt.check(p.returncode == 0 and len(lines) >= 2, "relaypro sessions: exit 0, a header and rows",
             (p.returncode, p.stdout[-500:], p.stderr[-300:]))
    head = lines[0].split() if lines else []
    rt.check_eq(head, ["ID", "TRANSPORT", "CLIENT", "SUB", "TARGET", "OPENED", "UP", "DOWN", "IDLE"],
                "the header names the columns")
    row = [ln for ln in lines[1:] if "cli-sub" in ln]
    cols = row[0].split() if row else []
    rt.check(len(cols) == 9 and cols[1] == "connect" and cols[2] == "%s:%d" % ct.getsockname() and
             cols[4] == target and cols[6] == "2048" and cols[7] == "2048",
             "the tunnel's row: transport, client, target, bytes", row)
    ct.close()
    # RELAYPRO_ADMIN_LISTEN is read like the file; no admin listener: exit 2
    cfg2 = os.path.join(relay.dir, "noadmin.ini")
    with open(cfg2, "w") as f:
        f.write("consoleAddress = localhost\n")
    p = subprocess.run([BIN, "sessions", "-c", cfg2], capture_output=True, text=True, timeout=30,
                       env=rt.clean_environ())
    rt.check(p.returncode == 2 and "admin" in p.stderr, "no admin listener: exit 2, says so", p.stderr)
    p = subprocess.run([BIN, "sessions", "-c", cfg2], capture_output=True, text=True, timeout=30,
                       env=dict(rt.clean_environ(), RELAYPRO_ADMIN_LISTEN="127.0.0.1:%d" % rt.free_port()))
    rt.check(p.returncode == 1 and p.stderr.strip(), "nothing listening: exit 1 with the reason", p.stderr)
    p = subprocess.run([BIN, "sessions", "--help"], capture_output=True, text=True, timeout=30,
                       env=rt.clean_environ())
    rt.check(p.returncode == 0 and "relaypro sessions" in p.stdout, "relaypro sessions --help", p.stdout)


@rt.case(timeout=180)
def every_worker_listed():
    """workers = 2: whichever worker takes the admin connection lists both workers' tunnels
    (the rows live in the region the workers share)."""
    d = os.path.join(TMP, "workers")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write("bob:pw-bob-456\n")
    os.chmod(os.path.join(d, "users.txt"), 0o600)
    relay = relays.start_relay(TMP, "workers", admin=True, top=[
        "allowedPorts = %d" % S["con"].echo_port, "passwordFile = users.txt", "workers = 2"])
    ok = rt.wait_until(lambda: len({r.get("pid") for r in relay.records("worker.start")
                                     if r.get("pid", 0) > 0}) == 2 and
                       len(relay.records("start")) >= 3, timeout=20)
    rt.check(ok, "two workers started")
    target = "localhost:%d" % S["con"].echo_port
    socks, per = [], {}
    try:
        # tunnels until each worker carries at least 2 (the kernel picks the worker by a
        # hash of the client's port; 64 tries leave no doubt)
        for i in range(64):
            if len(per) == 2 and min(per.values()) >= 2:
                break
            since = rt.log_offset(relay.log)
            st, h, s = rt.connect_tunnel("127.0.0.1", relay.plain_port, target, tls=False,
                                         headers=rt.basic("bob", "pw-bob-456"), timeout=10)
            if st != 200:
                continue
            socks.append(s)
            port = s.getsockname()[1]
            rec = relay.wait_record("tunnel.open", lambda r, port=port: r.get("client", "").endswith(
                ":%d" % port), since=since)
            if rec:
                per[rec["pid"]] = per.get(rec["pid"], 0) + 1
        rt.check(len(per) == 2 and min(per.values()) >= 2, "both workers carry tunnels", per)
        clients = {"%s:%d" % s.getsockname() for s in socks}
        answers = []
        for _ in range(8):  # separate connections: the kernel spreads them over the workers
            st, h, arr, raw = sessions(relay)
            answers.append({x["client"] for x in (arr or []) if x.get("sub") == "bob"})
            ids = [x["id"] for x in (arr or [])]
            rt.check(len(ids) == len(set(ids)), "ids unique across workers", ids)
        rt.check(all(a == clients for a in answers),
                 "every answer lists the tunnels of both workers (%d)" % len(clients),
                 [len(a) for a in answers])
        p = subprocess.run([BIN, "sessions", "-c", relay.cfg], capture_output=True, text=True,
                           timeout=60, env=rt.clean_environ(), cwd=relay.dir)
        rt.check(p.returncode == 0 and len(p.stdout.splitlines()) == len(socks) + 1,
                 "relaypro sessions: a row per tunnel of either worker", p.stdout[-400:])
    finally:
        for s in socks:
            s.close()
        relay.stop()


if __name__ == "__main__":
    try:
        rt.run_cases()
    finally:
        if "udp" in S:
            S["udp"].stop()
    rt.finish()

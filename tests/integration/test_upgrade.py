#!/usr/bin/env python3
"""test_upgrade.py — SIGUSR2 binary upgrade (docs/design.md): the binary at the path the relay
was started from is started with the listening sockets; once it reports ready the old
process stops accepting and serves what it accepted to its end. Under a new connection
every 20 ms for the whole upgrade no connection fails; the PID changes; a tunnel opened
before keeps working until it closes, then the old process exits 0.

Loses nothing: under 200 new connections/s, with 50 clients parked in the middle of their
TLS handshake and 50 accepted but with no request yet (25 TLS, 25 plain), the upgrade
refuses or drops none: every parked client then finishes its handshake and its request
with the old process and gets its tunnel. The new process holds exactly the listening
sockets (one descriptor each, the very sockets the old one had) and its own pipes, and
nothing else of the old process's; after an upgrade SIGTERM closes the listening
sockets at once, so a late client is refused, never accepted and reset.

A new binary that fails, or is not ready within 10 s, is rolled back: the old process
keeps serving."""
import json
import os
import shutil
import signal
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402
import proctest as pt  # noqa: E402
import relays  # noqa: E402

BIN = rt.relay_bin()
S = {}
RELAY_PRO_ID = "relayProId = 123e4567-e89b-12d3-a456-426614174000"



def starts(log):
    return [r for r in rt.read_json_lines(log) if r.get("event") == "start"]


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    os.makedirs(os.path.join(tmp, "bin"))
    S["bin"] = os.path.join(tmp, "bin", "relaypro")
    shutil.copy2(BIN, S["bin"])
    S["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    S["port"] = rt.free_port()
    S["log"] = os.path.join(tmp, "relay.log")
    # not relays.write_users: "p" registered as a secret would redact every p printed
    rt.write_file(os.path.join(tmp, "users.txt"), "u:p\n")
    relay = relays.Relay(tmp, relays.plain_config(S["port"], [S["con"].echo_port],
                                                  top=[RELAY_PRO_ID, "serverName = localhost"],
                                                  limits={"shutdownTimeout": "20s"}),
                         http=S["port"], bin=S["bin"]).start()
    S["relay"] = relay.proc
    S["tmp"] = tmp


@rt.case(timeout=90)
def upgrade_under_load():
    old_pid = S["relay"].pid
    st, _, tunnel = rt.connect_tunnel("127.0.0.1", S["port"], "localhost:%d" % S["con"].echo_port,
                                      headers=rt.basic("u", "p"), tls=False)
    rt.check_eq(st, 200, "tunnel opened before the upgrade")
    # A new connection every 20 ms from before SIGUSR2 to well after upgrade.ready: counted
    # connections, not a time window -- 10 answered before the signal, 50 more after the
    # new process reported ready (the old one no longer accepts then).
    load = pt.Load(S["port"], rate=50, threads=1, limit=3600, timeout=10).start()
    try:
        load.check_more(10, "the connections run before the upgrade", timeout=20)
        os.kill(old_pid, signal.SIGUSR2)
        ev = rt.wait_for_log(S["log"], "upgrade.ready", timeout=15)
        rt.check(ev is not None, "upgrade.ready logged", ev)
        new = [r for r in starts(S["log"]) if r.get("pid") != old_pid]
        new_pid = new[-1]["pid"] if new else None
        rt.check(new_pid is not None and new_pid != old_pid, "a new process with a new PID started")
        if new_pid:
            rt.track_pid(new_pid, "upgraded relay")
        load.check_more(50, "50 more connections answered after upgrade.ready")
    finally:
        load.stop()
    print("measure: connections during upgrade ok=%d fail=%d" % (load.ok, load.fail))
    rt.check(load.fail == 0, "no connection failed across the upgrade (%d ok)" % load.ok,
             load.errors[:3])
    payload = os.urandom(65536)
    rt.check(rt.echo_roundtrip(tunnel, payload) == payload,
             "the tunnel opened before the upgrade still echoes")
    rt.check(rt.pid_alive(old_pid), "the old process stays while its tunnel is open")
    tunnel.close()
    rc = S["relay"].wait(15)
    rt.check_eq(rc, 0, "the old process exits 0 once its tunnel closed")
    rt.check(rt.plain_healthz(S["port"]), "the new process serves")
    S["new_pid"] = new_pid


@rt.case(timeout=60)
def failed_binary_rolls_back():
    pid = S.get("new_pid")
    if not pid:
        rt.check(False, "no upgraded relay to test rollback on")
        return
    with open(S["bin"] + ".new", "w") as f:
        f.write("#!/bin/sh\nexit 3\n")
    os.chmod(S["bin"] + ".new", 0o755)
    os.replace(S["bin"] + ".new", S["bin"])
    since = rt.log_offset(S["log"])
    os.kill(pid, signal.SIGUSR2)
    ev = rt.wait_for_log(S["log"], "upgrade.fail", timeout=15, since=since)
    rt.check(ev is not None, "a binary that exits is rolled back (upgrade.fail)", ev)
    rt.check(rt.pid_alive(pid) and rt.plain_healthz(S["port"]), "the running relay keeps serving")
    with open(S["bin"] + ".new", "w") as f:
        f.write("#!/bin/sh\nexec sleep 30\n")
    os.chmod(S["bin"] + ".new", 0o755)
    os.replace(S["bin"] + ".new", S["bin"])
    since = rt.log_offset(S["log"])
    t0 = time.monotonic()
    os.kill(pid, signal.SIGUSR2)
    ev = rt.wait_for_log(S["log"], "upgrade.fail", timeout=20, since=since)
    took = time.monotonic() - t0
    # Which of upgrade.c's two ends this is comes from the record itself; the time is only
    # bounded from below (the relay's own 10 s deadline, counted from a loop clock read
    # after the signal, in whole milliseconds: no load makes it come sooner).
    rt.check(ev is not None and "not ready within 10 s" in (ev.get("error") or ""),
             "a binary never ready is given up at its readiness deadline (upgrade.fail: not ready within 10 s)", ev)
    rt.check(took >= 9.999, "... and not before the 10 s deadline (%.1f s)" % took)
    rt.check(rt.pid_alive(pid) and rt.plain_healthz(S["port"]), "the relay still serves after the rollback")
    os.kill(pid, signal.SIGTERM)
    rt.check(rt.wait_until(lambda: not rt.pid_alive(pid), timeout=15),
             "the upgraded relay stops on SIGTERM")


# ---- loses nothing (a relay of its own: TLS, plain and admin listeners) ------------------

L = {}
PARKED_HANDSHAKE, PARKED_TLS, PARKED_PLAIN = 50, 25, 25


@rt.case(timeout=60)
def lose_nothing_setup():
    tmp = rt.make_tmpdir()
    os.makedirs(os.path.join(tmp, "bin"))
    L["bin"] = os.path.join(tmp, "bin", "relaypro")
    shutil.copy2(BIN, L["bin"])
    L["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    L["https"], L["http"], L["admin"] = rt.free_port(), rt.free_port(), rt.free_port()
    L["log"] = os.path.join(tmp, "relay.log")
    rt.write_file(os.path.join(tmp, "users.txt"), "u:p\n")
    # headerTimeout and shutdownTimeout far above anything this case waits for: it is about
    # the hand-off, not about timeouts. The 100 parked clients and the load all come from
    # 127.0.0.1 and are pending until their tunnels open: maxPendingPerAddress (default 64)
    # raised above them, or the cap itself would close the oldest (test_pending.py).
    relay = relays.Relay(
        tmp, relays.relay_config(allowed_ports=[L["con"].echo_port],
                                 top=["passwordFile = users.txt", RELAY_PRO_ID],
                                 https=L["https"], http=L["http"], admin=L["admin"],
                                 limits={"headerTimeout": "300s", "shutdownTimeout": "300s",
                                         "maxPendingPerAddress": "1000"}),
        https=L["https"], http=L["http"], admin=L["admin"], bin=L["bin"]).start()
    L["relay"] = relay.proc
    L["ports"] = {L["https"], L["http"], L["admin"]}


def open_http_connections():
    return pt.scrape_value(L["admin"], "relaypro_connections_open", {"listener": "http"})


@rt.case(timeout=240)
def upgrade_loses_nothing():
    old = L["relay"].pid
    target = "localhost:%d" % L["con"].echo_port
    # Park first, with nothing else running, so that "accepted by the old process" is
    # seen exactly: a handshake's first flight came back; the plain ones are counted by
    # the old process's own gauge.
    parked = (pt.park(L["https"], "handshake", PARKED_HANDSHAKE) +
              pt.park(L["https"], "tls", PARKED_TLS) + pt.park(L["http"], "plain", PARKED_PLAIN))
    rt.check_eq(len(parked), 100, "100 clients parked")
    got = rt.wait_until(lambda: open_http_connections() == PARKED_PLAIN, timeout=15)
    rt.check(got, "the old process accepted the %d plain ones (relaypro_connections_open)"
             % PARKED_PLAIN, open_http_connections())
    L["old_listeners"] = pt.listeners_of(old, L["ports"])

    load = pt.Load(L["http"], rate=200).start()
    load.check_more(50, "the load runs before the upgrade")
    since = rt.log_offset(L["log"])
    os.kill(old, signal.SIGUSR2)
    ev = rt.wait_for_log(L["log"], "upgrade.ready", timeout=30, since=since)
    rt.check(ev is not None, "upgrade.ready logged", ev)
    new = ev.get("new_pid") if ev else None
    if new:
        rt.track_pid(new, "upgraded relay")
    L["new"] = new
    stop = rt.wait_for_log(L["log"], {"event": "stopping", "why": "upgrade"}, timeout=30, since=since)
    rt.check(stop is not None, "the old process stopped accepting", stop)
    at_handover = load.ok + load.fail

    # The old process now accepts nothing; what it accepted, it serves to the end.
    ok = 0
    tunnels = []
    bad = []
    for i, p in enumerate(parked):
        payload = os.urandom(1024)
        try:
            st, echoed, s = pt.tunnel_through(p, target, rt.basic("u", "p"), payload)
        except (OSError, ssl.SSLError) as e:
            st, echoed, s = "%s: %s" % (type(e).__name__, e), b"", None
        if st == 200 and echoed == payload:
            ok += 1
            tunnels.append(s)
        elif len(bad) < 5:
            bad.append((p.kind, i, st))
    rt.check_eq(ok, 100, "every parked client finished its handshake or request and got its "
                "tunnel (%s)" % bad)
    opened = {}
    for r in rt.read_json_lines(L["log"], since):
        if r.get("event") == "tunnel.open":
            opened[r.get("client", "").rsplit(":", 1)[-1]] = r.get("pid")
    pids = {opened.get(str(p.local_port)) for p in parked}
    rt.check_eq(pids, {old}, "every parked client was served by the old process")

    # The new process: the listeners (the very sockets the old one had), its own pipes and
    # files, nothing else of the old process's.
    if new:
        listing = pt.fd_listing(new)
        print("measure: /proc/%d/fd after the upgrade (old pid %d alive: %s)\n  %s"
              % (new, old, rt.pid_alive(old), "\n  ".join(listing)))
        problems = pt.fd_problems(new, L["ports"], other_pid=old)
        rt.check(not problems, "the new process holds the listeners once each, its own pipes, "
                 "nothing else of the old process's", problems)
        handed = {v[1] for v in pt.listeners_of(new, L["ports"]).values()}
        rt.check_eq(handed, {v[1] for v in L["old_listeners"].values()},
                    "the listening sockets are the old process's own (handed over, not bound again)")

    rt.check(load.wait_ok(at_handover + 200), "the load goes on after the hand-off",
             (load.ok, load.fail))
    load.stop()
    print("measure: load during the upgrade: ok=%d fail=%d, %.0f connections/s"
          % (load.ok, load.fail, load.rate_achieved()))
    rt.check(load.fail == 0, "no new connection refused or dropped across the upgrade "
             "(%d ok)" % load.ok, load.errors)
    rt.check(rt.pid_alive(old), "the old process stays while its tunnels are open")
    for s in tunnels:
        s.close()
    rt.check_eq(L["relay"].wait(60), 0, "the old process exits 0 once its tunnels closed")


@rt.case(timeout=90)
def sigterm_after_upgrade_refuses_late_clients():
    new = L.get("new")
    if not new:
        rt.check(False, "no upgraded relay")
        return
    st, _, tunnel = rt.connect_tunnel("127.0.0.1", L["http"], "localhost:%d" % L["con"].echo_port,
                                      headers=rt.basic("u", "p"), tls=False)
    rt.check_eq(st, 200, "a tunnel keeps the upgraded process draining")
    since = rt.log_offset(L["log"])
    os.kill(new, signal.SIGTERM)
    ev = rt.wait_for_log(L["log"], {"event": "stopping", "why": "signal"}, timeout=15, since=since)
    rt.check(ev is not None, "the upgraded process is stopping", ev)
    for name in ("https", "http", "admin"):
        rt.check(pt.refused(L[name]), "after SIGTERM a late client on the %s port is refused, "
                 "not accepted and reset" % name)
    rt.check(rt.pid_alive(new), "the process still drains its tunnel")
    payload = os.urandom(4096)
    if st == 200:
        rt.check(rt.echo_roundtrip(tunnel, payload) == payload, "the open tunnel still echoes")
        tunnel.close()
    rt.check(rt.wait_until(lambda: not rt.pid_alive(new), timeout=30), "then it exits")


if __name__ == "__main__":
    rt.main("upgrade", deadline=600)

#!/usr/bin/env python3
"""test_workers.py — workers = 2 (SPEC §7): a supervisor starts two worker processes that
share the listening sockets; both accept connections (by PID in the tunnel.open lines);
a worker killed with SIGKILL is restarted and logged; SIGHUP reaches every worker;
SIGUSR2 upgrades the supervisor with its workers while clients keep connecting; SIGTERM
stops everything with exit 0."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
S = {}


def events(name, since=0):
    return [r for r in rt.read_json_lines(S["log"], since=since) if r.get("event") == name]





def wait_workers(n, since=0, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        starts = [e for e in events("worker.start", since) if e.get("pid", 0) > 0]
        if len(starts) >= n and len(events("start", since)) >= n + (1 if since == 0 else 0):
            return starts
        time.sleep(0.1)
    return [e for e in events("worker.start", since) if e.get("pid", 0) > 0]


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    S["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    S["port"] = rt.free_port()
    S["log"] = os.path.join(tmp, "relay.log")
    with open(os.path.join(tmp, "users.txt"), "w") as f:
        f.write("u:p\n")
    cfg = os.path.join(tmp, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = localhost\nallowedPorts = %d\npasswordFile = users.txt\n"
                "relayProId = 123e4567-e89b-12d3-a456-426614174000\nworkers = 2\n"
                "[httpsProxy]\nlisten =\n[httpProxy]\nlisten = 127.0.0.1:%d\n"
                "[logger]\nfileName = relay.log\n[limits]\nshutdownTimeout = 5s\n"
                % (S["con"].echo_port, S["port"]))
    S["relay"] = rt.start_process([BIN, "run", "-c", cfg], tmpdir=tmp, name="relay", cwd=tmp)
    starts = wait_workers(2)
    rt.check_eq(len(starts), 2, "two workers started")
    S["pids"] = [e["pid"] for e in starts]
    rt.check(all(p != S["relay"].pid for p in S["pids"]), "workers are processes of their own")


@rt.case
def both_workers_accept():
    socks = []
    for _ in range(24):
        st, _, s = rt.connect_tunnel("127.0.0.1", S["port"], "localhost:%d" % S["con"].echo_port,
                                     headers=rt.basic("u", "p"), tls=False)
        if st == 200:
            socks.append(s)
    rt.check_eq(len(socks), 24, "24 tunnels opened")
    pids = {e.get("pid") for e in events("tunnel.open")}
    rt.check(pids == set(S["pids"]), "both workers accepted tunnels (pids %s)" % sorted(pids))
    for s in socks:
        s.close()


@rt.case
def killed_worker_restarts():
    since = rt.log_offset(S["log"])
    victim = S["pids"][0]
    os.kill(victim, signal.SIGKILL)
    ev = rt.wait_for_log(S["log"], "worker.exit", timeout=10, since=since)
    rt.check(ev is not None and ev.get("pid") == victim, "worker.exit logged for the killed worker", ev)
    new = wait_workers(1, since=since)
    rt.check(len(new) == 1 and new[0]["pid"] != victim, "a new worker replaced it")
    time.sleep(0.5)
    rt.check(rt.plain_healthz(S["port"]), "still serving")
    if new:
        S["pids"] = [S["pids"][1], new[0]["pid"]]


@rt.case
def sighup_reaches_workers():
    since = rt.log_offset(S["log"])
    os.kill(S["relay"].pid, signal.SIGHUP)
    end = time.monotonic() + 10
    while time.monotonic() < end and len(events("config.reload", since)) < 2:
        time.sleep(0.1)
    rt.check_eq(len(events("config.reload", since)), 2, "both workers reloaded on SIGHUP")


@rt.case(timeout=60)
def supervisor_upgrade():
    since = rt.log_offset(S["log"])
    stats = {"ok": 0, "fail": 0}
    stop = threading.Event()

    def loop():
        end = time.monotonic() + 40
        while not stop.is_set() and time.monotonic() < end:
            try:
                stats["ok" if rt.plain_healthz(S["port"]) else "fail"] += 1
            except OSError:
                stats["fail"] += 1
            time.sleep(0.02)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    time.sleep(0.3)
    os.kill(S["relay"].pid, signal.SIGUSR2)
    ev = rt.wait_for_log(S["log"], "upgrade.ready", timeout=20, since=since)
    rt.check(ev is not None, "the supervisor's upgrade became ready", ev)
    new_sup = ev.get("new_pid") if ev else None
    if new_sup:
        rt.track_pid(new_sup, "new supervisor")
    rc = S["relay"].wait(20)
    rt.check_eq(rc, 0, "the old supervisor exits 0 after its workers drained")
    time.sleep(0.5)
    stop.set()
    t.join(10)
    print("measure: connections during supervisor upgrade ok=%d fail=%d" % (stats["ok"], stats["fail"]))
    rt.check(stats["ok"] > 20 and stats["fail"] == 0, "no connection failed across the upgrade")
    new_workers = [e["pid"] for e in events("worker.start", since) if e.get("pid", 0) > 0]
    rt.check_eq(len(new_workers), 2, "the new supervisor started two workers")
    S["new_sup"] = new_sup
    S["new_workers"] = new_workers
    for p in new_workers:
        rt.track_pid(p, "new worker")


@rt.case
def sigterm_stops_all():
    sup = S.get("new_sup")
    if not sup:
        rt.check(False, "no supervisor to stop")
        return
    os.kill(sup, signal.SIGTERM)
    end = time.monotonic() + 20
    procs = [sup] + S.get("new_workers", [])
    while time.monotonic() < end and any(rt.pid_alive(p) for p in procs):
        time.sleep(0.1)
    rt.check(not any(rt.pid_alive(p) for p in procs), "SIGTERM stops the supervisor and its workers")


if __name__ == "__main__":
    rt.main("workers", deadline=150)

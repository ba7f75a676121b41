#!/usr/bin/env python3
"""test_upgrade.py — SIGUSR2 binary upgrade (SPEC §7): the binary at the path the relay
was started from is started with the listening sockets; once it reports ready the old
process stops accepting and drains. Under a new connection every 20 ms for the whole
upgrade no connection fails; the PID changes; a tunnel opened before keeps working until
it closes, then the old process exits 0. A new binary that fails, or is not ready within
10 s, is rolled back: the old process keeps serving."""
import json
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
S = {}



def starts(log):
    return [r for r in rt.read_json_lines(log) if r.get("event") == "start"]


    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    os.makedirs(os.path.join(tmp, "bin"))
    S["bin"] = os.path.join(tmp, "bin", "relaypro")
    shutil.copy2(BIN, S["bin"])
    S["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    S["port"] = rt.free_port()
    S["log"] = os.path.join(tmp, "relay.log")
    with open(os.path.join(tmp, "users.txt"), "w") as f:
        f.write("u:p\n")
    cfg = os.path.join(tmp, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = localhost\nallowedPorts = %d\npasswordFile = users.txt\n"
                "relayProId = 123e4567-e89b-12d3-a456-426614174000\nserverName = localhost\n"
                "[httpsProxy]\nlisten =\n[httpProxy]\nlisten = 127.0.0.1:%d\n"
                "[logger]\nfileName = relay.log\n[limits]\nshutdownTimeout = 20s\n"
                % (S["con"].echo_port, S["port"]))
    S["relay"] = rt.start_process([S["bin"], "run", "-c", cfg], tmpdir=tmp, name="relay", cwd=tmp)
    rt.check(rt.wait_for_log(S["log"], "start", timeout=15) is not None, "relay started")
    S["tmp"] = tmp


@rt.case(timeout=90)
def upgrade_under_load():
    old_pid = S["relay"].pid
    st, _, tunnel = rt.connect_tunnel("127.0.0.1", S["port"], "localhost:%d" % S["con"].echo_port,
                                      headers=rt.basic("u", "p"), tls=False)
    rt.check_eq(st, 200, "tunnel opened before the upgrade")
    stats = {"ok": 0, "fail": 0, "errors": []}
    stop = threading.Event()

    def client_loop():
        end = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < end:
            try:
                if rt.plain_healthz(S["port"]):
                    stats["ok"] += 1
                else:
                    stats["fail"] += 1
            except OSError as e:
                stats["fail"] += 1
                stats["errors"].append(str(e))
            time.sleep(0.02)

    t = threading.Thread(target=client_loop, daemon=True)
    t.start()
    time.sleep(0.5)
    os.kill(old_pid, signal.SIGUSR2)
    ev = rt.wait_for_log(S["log"], "upgrade.ready", timeout=15)
    rt.check(ev is not None, "upgrade.ready logged", ev)
    new = [r for r in starts(S["log"]) if r.get("pid") != old_pid]
    new_pid = new[-1]["pid"] if new else None
    rt.check(new_pid is not None and new_pid != old_pid, "a new process with a new PID started")
    if new_pid:
        rt.track_pid(new_pid, "upgraded relay")
    time.sleep(1.0)
    stop.set()
    t.join(10)
    print("measure: connections during upgrade ok=%d fail=%d" % (stats["ok"], stats["fail"]))
    rt.check(stats["ok"] > 20 and stats["fail"] == 0,
             "no connection failed across the upgrade (%d ok)" % stats["ok"], stats["errors"][:3])
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
    rt.check(ev is not None and 9 <= took <= 16, "a binary never ready is given up after about 10 s (%.1f s)" % took, ev)
    rt.check(rt.pid_alive(pid) and rt.plain_healthz(S["port"]), "the relay still serves after the rollback")
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 15
    while rt.pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    rt.check(not rt.pid_alive(pid), "the upgraded relay stops on SIGTERM")


if __name__ == "__main__":
    rt.main("upgrade", deadline=170)

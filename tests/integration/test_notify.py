#!/usr/bin/env python3
"""test_notify.py — systemd's notification protocol, written by hand in the relay (no
libsystemd): READY=1 (with MAINPID) once the listeners are up, RELOADING=1 with
MONOTONIC_USEC then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM; both a path
socket and an abstract one ("@name"); without NOTIFY_SOCKET nothing breaks. A SIGUSR2
upgrade: the new process says READY=1 with its own MAINPID, the old one MAINPID= of the
new one and never STOPPING=1 (systemd, which accepts every process's messages with
NotifyAccess=all, would stop the service); SIGTERM to the new one then says STOPPING=1."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()


def recv_until(sock, want, timeout=10):
    """Datagrams until one contains `want` (bounded); returns them all."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg:
            break
    return got


def one_run(addr_text, bind_addr, name):
    tmp = rt.make_tmpdir()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(bind_addr)
    cfg = os.path.join(tmp, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = localhost\nrelayProId = 123e4567-e89b-12d3-a456-426614174000\n"
                "[httpsProxy]\nlisten = 127.0.0.1:%d\n[logger]\nfileName = relay.log\n" % rt.free_port())
    p = rt.start_process([BIN, "run", "-c", cfg], env={"NOTIFY_SOCKET": addr_text}, tmpdir=tmp, name="relay")
    msgs = recv_until(s, "READY=1")
    rt.check(any("READY=1" in m and "MAINPID=%d" % p.pid in m for m in msgs),
             name + ": READY=1 with MAINPID after start", msgs)
    os.kill(p.pid, signal.SIGHUP)
    msgs = recv_until(s, "READY=1")
    rt.check(len(msgs) >= 2 and "RELOADING=1" in msgs[0] and "MONOTONIC_USEC=" in msgs[0]
             and "READY=1" in msgs[-1], name + ": RELOADING=1 then READY=1 around a reload", msgs)
    os.kill(p.pid, signal.SIGTERM)
    msgs = recv_until(s, "STOPPING=1")
    rt.check(any("STOPPING=1" in m for m in msgs), name + ": STOPPING=1 on SIGTERM", msgs)
    rt.check_eq(p.wait(15), 0, name + ": exits 0")
    s.close()


@rt.case
def path_socket():
    tmp = rt.make_tmpdir()
    path = os.path.join(tmp, "notify.sock")
    one_run(path, path, "path socket")


@rt.case
def abstract_socket():
    name = "relaypro-test-notify-%d" % os.getpid()
    one_run("@" + name, "\0" + name, "abstract socket")


@rt.case
def no_socket_is_fine():
    tmp = rt.make_tmpdir()
    cfg = os.path.join(tmp, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = localhost\n[httpsProxy]\nlisten = 127.0.0.1:%d\n"
                "[logger]\nfileName = relay.log\n" % rt.free_port())
    p = rt.start_process([BIN, "run", "-c", cfg], env={"NOTIFY_SOCKET": "/nonexistent/sock"},
                         tmpdir=tmp, name="relay")
    rt.check(rt.wait_for_log(os.path.join(tmp, "relay.log"), "start", timeout=15) is not None,
             "a NOTIFY_SOCKET nobody listens on does not stop the start")
    rt.check_eq(p.stop(), 0, "exits 0")


def drain(sock):
    """Every datagram already queued (the senders are done)."""
    got = []
    sock.setblocking(False)
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return got


@rt.case(timeout=60)
def upgrade_notifications():
    tmp = rt.make_tmpdir()
    path = os.path.join(tmp, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    log = os.path.join(tmp, "relay.log")
    cfg = os.path.join(tmp, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = localhost\nrelayProId = 123e4567-e89b-12d3-a456-426614174000\n"
                "[httpsProxy]\nlisten =\n[httpProxy]\nlisten = 127.0.0.1:%d\n"
                "[logger]\nfileName = relay.log\n" % rt.free_port())
    p = rt.start_process([BIN, "run", "-c", cfg], env={"NOTIFY_SOCKET": path}, tmpdir=tmp, name="relay")
    msgs = recv_until(s, "READY=1")
    rt.check(any("READY=1" in m for m in msgs), "READY=1 before the upgrade", msgs)
    since = rt.log_offset(log)
    os.kill(p.pid, signal.SIGUSR2)
    ev = rt.wait_for_log(log, "upgrade.ready", timeout=20, since=since)
    rt.check(ev is not None, "upgrade.ready logged", ev)
    new = ev.get("new_pid") if ev else None
    if new:
        rt.track_pid(new, "upgraded relay")
    rt.check_eq(p.wait(20), 0, "the old process (no connection left) exits 0")
    msgs = drain(s)
    print("measure: datagrams during the upgrade: %r" % msgs)
    rt.check(any("READY=1" in m and "MAINPID=%s" % new in m for m in msgs),
             "the new process: READY=1 with its MAINPID", msgs)
    rt.check(any(m.strip() == "MAINPID=%s" % new for m in msgs),
             "the old process: MAINPID= of the new one", msgs)
    rt.check(not any("STOPPING=1" in m for m in msgs),
             "no STOPPING=1 from the process that handed over", msgs)
    if new:
        os.kill(new, signal.SIGTERM)
        msgs = recv_until(s, "STOPPING=1")
        rt.check(any("STOPPING=1" in m for m in msgs), "SIGTERM to the new one: STOPPING=1", msgs)
        rt.check(rt.wait_until(lambda: not rt.pid_alive(new), timeout=15), "the new one exits")
    s.close()


if __name__ == "__main__":
    rt.main("notify", deadline=120)

#!/usr/bin/env python3
"""test_notify.py — systemd's notification protocol, written by hand in the relay (no
libsystemd): READY=1 (with MAINPID) once the listeners are up, RELOADING=1 with
MONOTONIC_USEC then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM; both a path
socket and an abstract one ("@name"); without NOTIFY_SOCKET nothing breaks."""
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


if __name__ == "__main__":
    rt.main("notify", deadline=60)

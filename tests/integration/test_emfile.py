#!/usr/bin/env python3
"""test_emfile.py — out of file descriptors (docs/configuration.md): with a low RLIMIT_NOFILE the relay
pauses accepting (accept.pause in the log) instead of spinning, keeps serving the
connections it has, and accepts again once descriptors are free."""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
LIMIT = 48


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@rt.case
def emfile_pause_and_recover():
    tmp = rt.make_tmpdir()
    port = rt.free_port()
    with open(os.path.join(tmp, "config.ini"), "w") as f:
        f.write("consoleAddress = localhost\nserverName = localhost\n[httpProxy]\n"
                "listen = 127.0.0.1:%d\n[httpsProxy]\nlisten =\n[logger]\nfileName = relay.log\n"
                "[limits]\nheaderTimeout = 30s\n" % port)
    log = os.path.join(tmp, "relay.log")
    # start_process has no preexec hook: run the relay through prlimit.
    relay = rt.start_process(["prlimit", "--nofile=%d:%d" % (LIMIT, LIMIT), BIN, "run", "-c",
                              os.path.join(tmp, "config.ini")], tmpdir=tmp, name="relay")
    rt.check(rt.wait_for_log(log, "start", timeout=15), "relay started with nofile=%d" % LIMIT)
    held = []
    for _ in range(LIMIT + 20):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break
    ev = rt.wait_for_log(log, "accept.pause", timeout=10)
    rt.check(ev is not None and ("open files" in ev.get("reason", "").lower() or
                                 "descriptor" in ev.get("reason", "").lower()),
             "accept.pause logged when descriptors run out", ev)
    c0 = cpu_seconds(relay.pid)
    time.sleep(2)
    used = cpu_seconds(relay.pid) - c0
    print("measure: cpu_seconds_while_out_of_fds=%.2f over 2 s" % used)
    rt.check(used < 1.0, "no busy loop while out of descriptors (%.2f s CPU in 2 s)" % used)
    # An accepted connection is still served.
    held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    held[0].settimeout(5)
    rt.check(held[0].recv(4096).startswith(b"HTTP/1.1 200"), "an accepted connection is served")
    for s in held:
        s.close()
    ok = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ok:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(3)
            ok = s.recv(4096).startswith(b"HTTP/1.1 200")
            s.close()
        except OSError:
            time.sleep(0.2)
    rt.check(ok, "accepting again once descriptors are free")
    rt.check_eq(relay.stop(), 0, "relay exits 0")


if __name__ == "__main__":
    rt.main("emfile", deadline=90)

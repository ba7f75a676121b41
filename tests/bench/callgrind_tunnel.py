#!/usr/bin/env python3
"""callgrind_tunnel.py -- instructions the relay spends per new tunnel, counted by
valgrind's callgrind (deterministic, unlike timings on a shared machine).

    python3 tests/bench/callgrind_tunnel.py [--bin RELAY] [--loadgen LOADGEN] [--small N] [--big N]

The workload, one client at a time: a full TLS 1.2 handshake (no resumption), CONNECT with
Basic credentials, one 64-byte echo through the tunnel, close (`loadgen rate --conc 1`).
The relay runs under callgrind twice, with --small and --big tunnels; the difference of
the two totals divided by the difference of the counts is the cost of one tunnel, start-up
and shutdown cancelled out. With a binary that has symbols (`make callgrind-bin` builds
build/callgrind/relaypro) the per-tunnel figure is also split by where the code lives:
the relay's own src/ and the rest (BearSSL, the C library). Never part of `make test`; used to check that
a change to the connection core does not make a tunnel dearer (docs/performance.md).
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def run_once(args, echo_port, count, tag):
    d = rt.make_tmpdir("callgrind-%s-" % tag)
    port = rt.free_port()
    write(os.path.join(d, "users.txt"), "%s:%s\n" % (USER, PASSWORD), 0o600)
    write(os.path.join(d, "config.ini"), "\n".join([
        "consoleAddress = 127.0.0.1", "relayProId = 3f1d3b9e-5c1a-4e55-9a43-6f4d2b8f0c11",
        "allowedPorts = %d" % echo_port, "passwordFile = users.txt", "serverName = localhost",
        "[httpsProxy]", "listen = 127.0.0.1:%d" % port, "[logger]", "fileName = relay.log",
        # A small table: the 250 ms tick walks all of it, and that cost depends on how long
        # the run takes (a loaded machine), not on the tunnels.
        "[limits]", "maxConnections = 16", ""]))
    cfg = os.path.join(d, "config.ini")
    # The CA bundle first, outside valgrind (an RSA key generation is slow under it).
    subprocess.run([args.bin, "ca", "show", "-c", cfg], cwd=d, capture_output=True, check=True,
                   env=rt.clean_environ())
    out = os.path.join(d, "callgrind.out")
    p = rt.start_process(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                          args.bin, "run", "-c", cfg], tmpdir=d, name="relay", cwd=d)
    log = os.path.join(d, "relay.log")
    if not rt.wait_for_log(log, "start", timeout=120) or not rt.wait_for_port("127.0.0.1", port, 60):
        raise RuntimeError("relay did not start: %s" % p.stderr()[-800:])
    env = dict(rt.clean_environ(), LOADGEN_AUTH="Basic " + base64.b64encode(
        ("%s:%s" % (USER, PASSWORD)).encode()).decode())
    r = subprocess.run([args.loadgen, "rate", "--proxy", "127.0.0.1:%d" % port, "--target",
                        "127.0.0.1:%d" % echo_port, "--conc", "1", "--threads", "1", "--count",
                        str(count), "--duration", "600", "--warmup", "0", "--payload", "64"],
                       capture_output=True, text=True, timeout=900, env=env)
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    p.stop(timeout=120)
    if r.returncode != 0 or not recs or recs[-1].get("conns") != count or recs[-1].get("failed"):
        raise RuntimeError("loadgen: %s %s" % (r.stdout[-400:], r.stderr[-400:]))
    return out


def split(out):
    """Total Ir, and Ir by where the code lives (needs symbols)."""
    a = subprocess.run(["callgrind_annotate", "--threshold=100", out], capture_output=True,
                       text=True, check=True).stdout
    total = None
    parts = {"relay": 0, "rest": 0}
    for line in a.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S+?):(\S+)", line)
        if not m or total is None:
            continue
        ir, where = int(m.group(1).replace(",", "")), m.group(2)
        parts["relay" if where.startswith("src/") else "rest"] += ir
    return total, parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(rt.REPO_DIR, "build", "callgrind", "relaypro"))
    ap.add_argument("--loadgen", default=os.path.join(rt.REPO_DIR, "build", "amd64", "loadgen"))
    ap.add_argument("--small", type=int, default=20)
    ap.add_argument("--big", type=int, default=120)
    ap.add_argument("--keep", help="copy the two callgrind.out files into this folder")
    args = ap.parse_args()
    args.bin, args.loadgen = os.path.abspath(args.bin), os.path.abspath(args.loadgen)
    rt.init("callgrind")
    tmp = rt.make_tmpdir("callgrind-echo-")
    echo = rt.start_process([args.loadgen, "echo", "--duration", "3600"], tmpdir=tmp, name="echo")
    echo.wait_for_output("echo_port", timeout=10)
    echo_port = [json.loads(x)["echo_port"] for x in echo.stdout().splitlines() if "echo_port" in x][0]
    outs = [run_once(args, echo_port, args.small, "small"), run_once(args, echo_port, args.big, "big")]
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        for tag, o in zip(("small", "big"), outs):
            shutil.copy(o, os.path.join(args.keep, "callgrind.%s.out" % tag))
    a, b = split(outs[0]), split(outs[1])
    n = args.big - args.small
    print("callgrind: %d vs %d tunnels (full handshake, CONNECT, 64 B echo, close)" % (args.small, args.big))
    print("callgrind: Ir per tunnel %d" % ((b[0] - a[0]) // n))
    for k in ("relay", "rest"):
        print("callgrind:   %-8s %d" % (k, (b[1][k] - a[1][k]) // n))
    rt.check(b[0] > a[0], "more tunnels cost more instructions")
    rt.finish()


if __name__ == "__main__":
    main()

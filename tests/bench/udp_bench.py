#!/usr/bin/env python3
"""udp_bench.py -- UDP associations (GET /v1/udp) measured: the latency the relay adds to a
datagram round trip and the datagrams per second it carries, with 1,400-byte payloads (a
HIP-sized packet), through a WSS association and directly to the same UDP echo.

Run by `make bench` after run.py (never by `make test`); run it alone with

    python3 tests/bench/udp_bench.py [--bin PATH] [--quick]

Everything runs on 127.0.0.1: tests/bench/loadgen's UDP echo (`loadgen udpecho`), one relay
(TLS listener, allowedUdpPorts = the echo's port, a Bearer token from `relaypro token
grant` and POST /v1/token) and `loadgen udp`, which opens one association over TLS 1.2
(the client of the other modes) and measures, interleaved with the direct path:
round trips one datagram at a time (p50/p99 each way, the added p50), then datagrams/s with
a window of datagrams in flight (a datagram not echoed within 300 ms counts as lost; on
loopback with large socket buffers none should be). One row per window is printed and one
JSON line per measurement is written to build/bench/udp.jsonl.

Environment (optional): UDP_BENCH_ROUNDS (round trips, 3000), UDP_BENCH_DURATION (s per
rate figure, 5), UDP_BENCH_WINDOWS (datagrams in flight, "1,8,32"), LOADGEN_BIN.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import relaytest as rt  # noqa: E402
import relays  # noqa: E402

ap = argparse.ArgumentParser(description="UDP associations: relay vs direct")
ap.add_argument("--bin", help="relaypro binary (default RELAYPRO_BIN, else build/amd64/relaypro)")
ap.add_argument("--quick", action="store_true", help="a short smoke run")
ARGS = ap.parse_args()
if ARGS.bin:
    os.environ["RELAYPRO_BIN"] = os.path.abspath(ARGS.bin)
LOADGEN = os.environ.get("LOADGEN_BIN") or os.path.join(REPO, "build", "amd64", "loadgen")
ROUNDS = int(os.environ.get("UDP_BENCH_ROUNDS", "300" if ARGS.quick else "3000"))
DURATION = float(os.environ.get("UDP_BENCH_DURATION", "1" if ARGS.quick else "5"))
WINDOWS = [int(w) for w in os.environ.get("UDP_BENCH_WINDOWS", "1,8,32").split(",")]
PAYLOAD = 1400


def main():
    if not os.access(LOADGEN, os.X_OK):
        sys.exit("udp_bench: %s missing (make build/amd64/loadgen)" % LOADGEN)
    tmp = rt.make_tmpdir("relaytest-udpbench-")
    echo = subprocess.Popen([LOADGEN, "udpecho", "--listen", "127.0.0.1:0", "--duration", "3600"],
                            stdout=subprocess.PIPE, text=True)
    rt.track_pid(echo.pid, "udpecho")
    port = json.loads(echo.stdout.readline())["echo_port"]
    relay = relays.start_relay(tmp, "bench", plain=False,
                           top=["allowedPorts = 443", "allowedUdpPorts = %d" % port])
    env = dict(rt.clean_environ(), LOADGEN_AUTH="Bearer " + relay.token("bench-udp"))
    out = []
    try:
        for i, w in enumerate(WINDOWS):
            r = subprocess.run([LOADGEN, "udp", "--proxy", "127.0.0.1:%d" % relay.port,
                                "--target", "127.0.0.1:%d" % port, "--target-host", "localhost",
                                "--payload", str(PAYLOAD),
                                "--rounds", str(ROUNDS if i == 0 else max(ROUNDS // 10, 50)),
                                "--duration", str(DURATION), "--warmup", "0.5", "--conc", str(w),
                                "--label", "relaypro"],
                               env=env, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                sys.exit("udp_bench: loadgen udp failed: %s\nrelay log: %s" % (
                    r.stderr.strip()[-500:], rt._read_text(relay.log)[-1500:]))
            rec = json.loads(r.stdout.strip().splitlines()[-1])
            rec.update(bench="udp", ts=int(time.time()))
            out.append(rec)
    finally:
        relay.stop()
        echo.terminate()
        echo.wait(timeout=10)
    first = out[0]
    print("UDP associations, %d-byte datagrams, 127.0.0.1" % PAYLOAD)
    print("round trips (%d, one datagram at a time): relay p50 %d us p99 %d us, direct p50 %d us "
          "p99 %d us: the relay adds %d us (p50)" % (
              first["tunnel_n"], first["tunnel_p50_us"], first["tunnel_p99_us"],
              first["direct_p50_us"], first["direct_p99_us"], first["added_p50_us"]))
    print("%-8s %16s %16s %8s %12s" % ("window", "relay dgram/s", "direct dgram/s", "ratio",
                                      "lost r/d"))
    for rec in out:
        ratio = rec["tunnel_dgrams_per_s"] / rec["direct_dgrams_per_s"] if rec["direct_dgrams_per_s"] else 0
        print("%-8d %16.0f %16.0f %7.2fx %12s" % (
            rec["window"], rec["tunnel_dgrams_per_s"], rec["direct_dgrams_per_s"], ratio,
            "%d/%d" % (rec["tunnel_lost"], rec["direct_lost"])))
    os.makedirs(os.path.join(REPO, "build", "bench"), exist_ok=True)
    with open(os.path.join(REPO, "build", "bench", "udp.jsonl"), "w") as f:
        for rec in out:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            print(json.dumps(rec, sort_keys=True))


if __name__ == "__main__":
    main()

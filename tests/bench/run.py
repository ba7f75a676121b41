#!/usr/bin/env python3
"""run.py -- relaypro against squid and stunnel+tinyproxy, measured in the same run (issues 8, 18).

Run by `make bench` (never by `make test`). Installs the peers with apt when they are
missing, writes their configurations into a temporary folder, starts everything on
127.0.0.1 with free ports, runs tests/bench/loadgen in each mode against each peer, stops
every process by PID, and prints one table per mode with relaypro's ratio to each peer,
then issue 18's targets next to the figures (met / missed), then one JSON line per
measurement (also written to build/bench/results.jsonl).

Equivalent configurations: TLS 1.2 on the listener with an ECDSA P-256 certificate (the
kind relaypro mints; the peers get one from a throw-away test CA), the client offers
X25519 first and only AES-128-GCM suites, so every peer negotiates the same suite; Basic
authentication (squid: basic_ncsa_auth with an htpasswd file; tinyproxy: BasicAuth;
relaypro: passwordFile), and also Bearer tokens for relaypro; CONNECT allowed only to the
echo backend's port on 127.0.0.1. Each peer keeps its default logging of connections.
The load generator does not verify the proxy's certificate (it is a benchmark; it says so).

    python3 tests/bench/run.py [--bin PATH] [--quick]

--bin (or RELAYPRO_BIN) is the relaypro binary measured, build/amd64/relaypro by default.

Environment (all optional): BENCH_DURATION (s per rate run, default 8), BENCH_CONC
(concurrent clients, 32), BENCH_THREADS (load generator threads, 2), BENCH_BULK (s, 5),
BENCH_ROUNDS (latency round trips, 3000), BENCH_IDLE (idle tunnels held, 9000),
BENCH_PING_STEPS (tunnel counts of the ping figure, "100,1000,<BENCH_IDLE>"),
BENCH_PING_PERIOD (s between two echoes on one tunnel, 5), BENCH_PING_SECONDS (s counted
per step, 30), BENCH_IDLE_THREADED (idle tunnels for the thread-per-connection peer
stunnel+tinyproxy, 2000: 9,000 would need 18,000 threads on a machine whose pid_max is
32,768), BENCH_PEERS (relaypro,squid,stunnel,direct), BENCH_MODES
(rate,bulk,latency,idle,ping), BENCH_BEFORE_BIN (another relaypro binary, measured in the
same run for latency, bulk, idle, ping and rate while idle tunnels are held; the "no
worse than before" targets then compare with it), BENCH_BASELINE (JSON of a recorded run
the "no worse" targets compare with otherwise, tests/bench/baseline-round2.jsonl),
LOADGEN_BIN. `--quick` shortens everything (a smoke run).
"""
import argparse
import base64
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import relaytest as rt  # noqa: E402

_ap = argparse.ArgumentParser(description="relaypro against squid and stunnel+tinyproxy")
_ap.add_argument("--bin", help="the relaypro binary to measure (default: RELAYPRO_BIN, "
                 "else build/amd64/relaypro)")
_ap.add_argument("--quick", action="store_true", help="a short smoke run")
_ap.add_argument("--profile", choices=("perf", "callgrind", "strace"),
                 help="instead of the comparison: where one relay's time (perf), instructions "
                 "(callgrind) or system calls (strace) go while it serves --tunnels new tunnels; "
                 "perf and callgrind want a build with symbols")
_ap.add_argument("--tunnels", type=int, default=0, help="--profile: new tunnels served "
                 "(default 3000; 400 under callgrind)")
ARGS = _ap.parse_args()
QUICK = ARGS.quick


def env_num(name, default, quick):
    v = os.environ.get(name)
    if v:
        return float(v) if "." in v else int(v)
    return quick if QUICK else default


DURATION = env_num("BENCH_DURATION", 8, 2)
CONC = env_num("BENCH_CONC", 32, 16)
THREADS = env_num("BENCH_THREADS", 2, 2)
BULK = env_num("BENCH_BULK", 5, 2)
ROUNDS = env_num("BENCH_ROUNDS", 3000, 500)
IDLE = env_num("BENCH_IDLE", 9000, 500)
IDLE_THREADED = env_num("BENCH_IDLE_THREADED", 2000, 300)
PING_STEPS = sorted({int(x) for x in os.environ.get("BENCH_PING_STEPS", "").split(",") if x.strip()}
                    or {n for n in (100, 1000) if n < IDLE} | {IDLE})
PING_PERIOD = env_num("BENCH_PING_PERIOD", 5, 5)
PING_SECONDS = env_num("BENCH_PING_SECONDS", 30, 10)
PEERS = os.environ.get("BENCH_PEERS", "relaypro,squid,stunnel,direct").split(",")
MODES = os.environ.get("BENCH_MODES", "rate,bulk,latency,idle,ping").split(",")
BEFORE_BIN = os.path.abspath(os.environ["BENCH_BEFORE_BIN"]) if os.environ.get("BENCH_BEFORE_BIN") else ""
BASELINE = os.environ.get("BENCH_BASELINE") or os.path.join(HERE, "baseline-round2.jsonl")
RELAYPRO_BIN = os.path.abspath(ARGS.bin or os.environ.get("RELAYPRO_BIN") or
                               os.path.join(REPO, "build", "amd64", "relaypro"))
LOADGEN = os.path.abspath(os.environ.get("LOADGEN_BIN") or os.path.join(REPO, "build", "amd64", "loadgen"))
OUT_DIR = os.path.join(REPO, "build", "bench")
NCPU = os.cpu_count() or 1
CLK = os.sysconf("SC_CLK_TCK")
DEADLINE_S = 60 * 60          # the whole run, whatever happens
OPEN_CONC = 48                # tunnels opened at once by the ping holder (the relay's
                              # maxPendingPerAddress is 64: every client here is 127.0.0.1)
USER = "bench"
PASSWORD = secrets.token_hex(12)   # never printed
RESULTS = []                       # one dict per measurement


def say(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


# ================================================================= process tree figures

def _stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rfind(")") + 2:].split()


def tree(root):
    """root and every descendant (live)."""
    kids = {}
    for n in os.listdir("/proc"):
        if n.isdigit():
            st = _stat(int(n))
            if st:
                kids.setdefault(int(st[1]), []).append(int(n))
    out, todo = [], [root]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_rss_kib(roots):
    total = 0
    for r in roots:
        for p in tree(r):
            try:
                with open("/proc/%d/status" % p) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def tree_cpu_s(roots):
    """CPU seconds (user+system) of every live process of the trees, threads included."""
    total = 0
    for r in roots:
        for p in tree(r):
            st = _stat(p)
            if st:
                total += int(st[11]) + int(st[12])
    return total / CLK


# ================================================================= peers

def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 60), **kw)


def ensure_packages():
    want = {"squid": "squid-openssl", "stunnel4": "stunnel4", "tinyproxy": "tinyproxy"}
    missing = [pkg for exe, pkg in want.items() if shutil.which(exe) is None]
    if not missing:
        return
    say("installing %s (apt)" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q"] + missing, env=env, capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q"] + missing, env=env, capture_output=True,
                       text=True, timeout=600)


def make_certs(d):
    """A throw-away CA and an ECDSA P-256 server certificate for the peers."""
    def ossl(*a):
        r = sh(["openssl"] + list(a), cwd=d)
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (a[0], r.stderr[-300:]))
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=relaypro bench CA", "-days", "2")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "peer.key", "-out", "peer.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "peer.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "peer.crt", "-days", "2", "-extfile", "ext.cnf")


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def basic_auth():
    return "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()


class Peer:
    """One proxy set-up: start() → port, roots (PIDs whose trees are the proxy), stop()."""
    key = name = ""
    auth = None

    def __init__(self, base, echo_port):
        self.base = base
        self.echo_port = echo_port
        self.procs = []
        self.port = None

    @property
    def roots(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in reversed(self.procs):
            p.stop(timeout=10)
        self.procs = []

    def wait_up(self, timeout=20):
        if not rt.wait_for_port("127.0.0.1", self.port, timeout=timeout):
            raise RuntimeError("%s did not start listening; stderr: %s" % (
                self.name, " | ".join(p.stderr()[-400:] for p in self.procs)))


class Relaypro(Peer):
    def __init__(self, base, echo_port, workers="1", bearer=False, binary=None, label=None,
                 console="127.0.0.1"):
        super().__init__(base, echo_port)
        self.console = console
        self.workers = workers
        self.bearer = bearer
        self.bin = binary or RELAYPRO_BIN
        w = "auto(%d)" % NCPU if workers == "auto" else workers
        self.key = "relaypro-%s-w%s" % ("bearer" if bearer else "basic", workers)
        self.name = label or "relaypro %s w=%s" % ("Bearer" if bearer else "Basic", w)
        self.token = secrets.token_hex(16)
        self.wrap = []          # e.g. valgrind's command line, for --profile callgrind
        self.up_timeout = 20
        self.dir = None

    def start(self):
        d = self.dir or rt.make_tmpdir("bench-relaypro-")
        self.dir = d
        self.port = rt.free_port()
        write(os.path.join(d, "users.txt"), "%s:%s\n" % (USER, PASSWORD), 0o600)
        cfg = os.path.join(d, "config.ini")
        write(cfg, "\n".join([
            "consoleAddress = " + self.console,
            "organizationId = 42",
            "relayId = 7",
            "securityToken = " + self.token,
            "relayProId = 5f0c6a1e-3b7d-4c2a-9e8f-0a1b2c3d4e5f",
            "allowedPorts = %d" % self.echo_port,
            "passwordFile = users.txt",
            "serverName = localhost",
            "workers = %s" % self.workers,
            "[httpsProxy]", "listen = 127.0.0.1:%d" % self.port,
            "[logger]", "fileName = relay.log",
            "[limits]", "maxConnections = 10000", "authFailLimit = 100000", ""]), 0o600)
        self.cfg = cfg
        self.procs = [rt.start_process(self.wrap + [self.bin, "run", "-c", cfg], tmpdir=d, name="relaypro",
                                       cwd=d)]
        self.wait_up(self.up_timeout)
        if self.bearer:
            self.auth = "Bearer " + self.access_token()
        else:
            self.auth = basic_auth()

    def access_token(self):
        r = sh([self.bin, "token", "grant", "-c", self.cfg, "--sub", "bench-responder-1", "--ttl", "2h"],
               env=rt.clean_environ())
        if r.returncode != 0:
            raise RuntimeError("relaypro token grant failed (exit %d)" % r.returncode)
        grant = r.stdout.strip()
        resp = rt.http_request("127.0.0.1", self.port, "POST", "/v1/token",
                               headers=[("Authorization", "Bearer " + grant)], tls=True,
                               verify=False, server_hostname="localhost", timeout=10)
        if resp.status != 200:
            raise RuntimeError("POST /v1/token answered %d" % resp.status)
        return resp.json()["access_token"]


class Squid(Peer):
    def __init__(self, base, echo_port, workers=1):
        super().__init__(base, echo_port)
        self.workers = workers
        self.key = "squid-w%d" % workers
        self.name = "squid w=%d" % workers

    def start(self):
        d = rt.make_tmpdir("bench-squid-")
        os.chmod(d, 0o777)   # squid drops to its own user; its logs live here
        for f in ("peer.crt", "peer.key"):
            shutil.copy(os.path.join(self.base, f), d)
        r = sh(["openssl", "passwd", "-apr1", "-stdin"], input=PASSWORD)
        write(os.path.join(d, "htpasswd"), "%s:%s\n" % (USER, r.stdout.strip()), 0o600)
        for f in ("peer.key", "htpasswd"):
            shutil.chown(os.path.join(d, f), user="proxy")
        self.port = rt.free_port()
        conf = os.path.join(d, "squid.conf")
        write(conf, "\n".join([
            "https_port 127.0.0.1:%d tls-cert=%s/peer.crt tls-key=%s/peer.key" % (self.port, d, d),
            "workers %d" % self.workers,
            "pid_filename %s/squid.pid" % d,
            "cache_log %s/cache.log" % d,
            "access_log stdio:%s/access.log" % d,
            "coredump_dir %s" % d,
            "cache deny all",
            "cache_mem 0 MB",
            "pinger_enable off",
            "client_db off",
            "shutdown_lifetime 1 seconds",
            "max_filedescriptors 20000",
            "auth_param basic program /usr/lib/squid/basic_ncsa_auth %s/htpasswd" % d,
            "auth_param basic children 5 startup=5 idle=1",
            "auth_param basic realm bench",
            "acl authed proxy_auth REQUIRED",
            "acl echo_port port %d" % self.echo_port,
            "acl echo_dst dst 127.0.0.1",
            "http_access deny !echo_port",
            "http_access deny !echo_dst",
            "http_access allow CONNECT authed",
            "http_access deny all", ""]))
        self.procs = [rt.start_process(["squid", "--foreground", "-f", conf], tmpdir=d, name="squid", cwd=d)]
        self.wait_up(30)
        self.auth = basic_auth()


class StunnelTinyproxy(Peer):
    key = "stunnel-tinyproxy"
    name = "stunnel+tinyproxy"

    def start(self):
        d = rt.make_tmpdir("bench-stunnel-")
        os.chmod(d, 0o777)
        for f in ("peer.crt", "peer.key"):
            shutil.copy(os.path.join(self.base, f), d)
        os.chmod(os.path.join(d, "peer.key"), 0o600)
        self.port = rt.free_port()
        tport = rt.free_port()
        write(os.path.join(d, "filter"), "^127\\.0\\.0\\.1$\n")
        write(os.path.join(d, "tinyproxy.conf"), "\n".join([
            "User nobody", "Group nogroup",
            "Port %d" % tport, "Listen 127.0.0.1",
            "Timeout 600",
            'LogFile "%s/tinyproxy.log"' % d, "LogLevel Info",
            'PidFile "%s/tinyproxy.pid"' % d,
            "MaxClients 10000",
            "Allow 127.0.0.1",
            "BasicAuth %s %s" % (USER, PASSWORD),
            "ConnectPort %d" % self.echo_port,
            'Filter "%s/filter"' % d, "FilterType ere", "FilterDefaultDeny Yes",
            "DisableViaHeader Yes", ""]), 0o644)
        write(os.path.join(d, "stunnel.conf"), "\n".join([
            "foreground = yes",
            "pid = %s/stunnel.pid" % d,
            "output = %s/stunnel.log" % d,
            "[proxy]",
            "accept = 127.0.0.1:%d" % self.port,
            "connect = 127.0.0.1:%d" % tport,
            "cert = %s/peer.crt" % d,
            "key = %s/peer.key" % d,
            "sslVersionMax = TLSv1.2", ""]))
        self.procs = [
            rt.start_process(["tinyproxy", "-d", "-c", os.path.join(d, "tinyproxy.conf")], tmpdir=d,
                             name="tinyproxy", cwd=d),
            rt.start_process(["stunnel4", os.path.join(d, "stunnel.conf")], tmpdir=d, name="stunnel",
                             cwd=d)]
        if not rt.wait_for_port("127.0.0.1", tport, timeout=20):
            raise RuntimeError("tinyproxy did not start: %s" % self.procs[0].stderr()[-400:])
        self.wait_up()
        self.auth = basic_auth()


# ================================================================= load generator

def loadgen(peer, mode, args, timeout, every=False):
    argv = [LOADGEN, mode, "--proxy", "127.0.0.1:%d" % peer.port,
            "--target", "127.0.0.1:%d" % peer.echo_port, "--label", peer.key] + [str(a) for a in args]
    env = dict(rt.clean_environ(), LOADGEN_AUTH=peer.auth)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode != 0 or not recs:
        raise RuntimeError("loadgen %s against %s failed (exit %d): %s" % (
            mode, peer.name, r.returncode, r.stderr.strip()[-300:]))
    return recs if every else recs[-1]


def record(bench, peer, data):
    rec = {"bench": bench, "peer": peer.key, "name": peer.name}
    rec.update(data)
    RESULTS.append(rec)
    return rec


def measure_rate(peer, resume, tag="rate"):
    cpu0 = tree_cpu_s(peer.roots)
    args = ["--conc", CONC, "--threads", THREADS, "--duration", DURATION, "--warmup", 1]
    if resume:
        args.append("--resume")
    recs = loadgen(peer, "rate", args, timeout=DURATION + 60, every=True)
    cpu = tree_cpu_s(peer.roots) - cpu0
    r = recs[-1]
    # The proxy's CPU covers the warm-up second too: divide by every connection made.
    all_conns = sum(x["conns"] for x in recs)
    rec = record(tag + ("_resume" if resume else "_full"), peer, {
        "per_s": r["per_s"], "conns": r["conns"], "full": r["full"], "resumed": r["resumed"],
        "failed": r["failed"], "p50_ms": r["p50_us"] / 1000.0, "p99_ms": r["p99_us"] / 1000.0,
        "conc": CONC, "duration_s": DURATION,
        "proxy_cpu_us_per_conn": round(cpu * 1e6 / all_conns, 1) if all_conns else None,
        "loadgen_cpu_s": r["loadgen_cpu_s"]})
    say("  %-26s %-12s %8.0f conn/s  p50 %6.1f ms  p99 %6.1f ms  full %d resumed %d failed %d  "
        "proxy CPU %s us/conn" % (peer.name, "resume" if resume else "full", rec["per_s"],
                                  rec["p50_ms"], rec["p99_ms"], rec["full"], rec["resumed"],
                                  rec["failed"], rec["proxy_cpu_us_per_conn"]))
    return rec


def measure_bulk(peer):
    cpu0 = tree_cpu_s(peer.roots)
    r = loadgen(peer, "bulk", ["--duration", BULK, "--warmup", 1], timeout=BULK + 60)
    cpu = tree_cpu_s(peer.roots) - cpu0
    rec = record("bulk", peer, {"mb_per_s": r["mb_per_s"], "bytes_each_way": r["bytes_each_way"],
                                "proxy_cpu_s": round(cpu, 2), "seconds": BULK + 1})
    say("  %-26s %8.1f MB/s each way  (proxy CPU %.2f s over %d s)" % (
        peer.name, rec["mb_per_s"], cpu, BULK + 1))
    return rec


def measure_latency(peer):
    r = loadgen(peer, "latency", ["--rounds", ROUNDS], timeout=120)
    rec = record("latency", peer, {k: r[k] for k in (
        "tunnel_p50_us", "tunnel_p99_us", "direct_p50_us", "direct_p99_us", "added_p50_us")})
    rec["rounds"] = ROUNDS
    say("  %-26s tunnel p50 %d us p99 %d us; direct p50 %d us; added p50 %d us" % (
        peer.name, rec["tunnel_p50_us"], rec["tunnel_p99_us"], rec["direct_p50_us"],
        rec["added_p50_us"]))
    return rec


class Direct(Peer):
    """No proxy: the ping holder talks plain TCP to the echo server. The floor of the
    generator, the echo server and the kernel, measured the same way."""
    key = "direct"
    name = "direct (no proxy)"

    def start(self):
        self.port = self.echo_port


def _json_lines(proc):
    out = []
    for line in proc.stdout().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def wait_json(proc, pred, timeout):
    """The first JSON line of proc's stdout matching pred, waiting for it to be written
    (None when proc exits or `timeout` s pass first)."""
    end = time.monotonic() + timeout
    while True:
        for r in _json_lines(proc):
            if pred(r):
                return r
        if not proc.alive() or time.monotonic() >= end:
            return None
        time.sleep(0.1)


def measure_idle(peer, steps, ping, with_rate):
    """Fresh instance. RSS at start; then one ping holder (loadgen ping) opens steps[0]
    tunnels, then up to steps[1], ...; at each step the proxy's RSS is read while the
    tunnels are quiet, then (ping) every tunnel sends one echo per PING_PERIOD for
    PING_SECONDS. At the last step the tunnels stay open and idle: with_rate measures
    `rate` while they are held, and again after they closed."""
    direct = isinstance(peer, Direct)
    holder = None
    peer.start()
    try:
        rss0 = None
        if not direct:
            time.sleep(1.0)
            rss0 = tree_rss_kib(peer.roots)
        d = rt.make_tmpdir("bench-ping-")
        argv = [LOADGEN, "ping", "--target", "127.0.0.1:%d" % peer.echo_port, "--label", peer.key,
                "--steps", ",".join(str(n) for n in steps), "--period", PING_PERIOD,
                "--seconds", PING_SECONDS if ping else 0, "--conc", OPEN_CONC, "--hold", 900,
                "--wait-go"]
        argv += ["--direct"] if direct else ["--proxy", "127.0.0.1:%d" % peer.port]
        holder = rt.start_process(argv, env={"LOADGEN_AUTH": peer.auth or ""}, tmpdir=d, name="ping")
        last = None
        for n in steps:
            opened = wait_json(holder, lambda r, n=n: r.get("mode") == "ping_open" and r["tunnels"] == n,
                               timeout=320)
            if not opened:
                raise RuntimeError("ping holder for %s did not open %d tunnels: %s" % (
                    peer.name, n, holder.stderr()[-300:]))
            rss = None
            if not direct:
                time.sleep(1.0)     # the relay's bookkeeping of the last accepts settles
                rss = tree_rss_kib(peer.roots)
            holder.signal(signal.SIGUSR1)
            last = (opened, rss)
            if not ping:
                continue
            r = wait_json(holder, lambda r, n=n: r.get("mode") == "ping" and r["tunnels"] == n,
                          timeout=PING_PERIOD + PING_SECONDS + 120)
            if not r:
                raise RuntimeError("ping holder for %s gave no figure at %d tunnels: %s" % (
                    peer.name, n, holder.stderr()[-300:]))
            rec = record("ping", peer, {k: r[k] for k in (
                "tunnels", "alive", "samples", "rtt_p50_us", "rtt_p90_us", "rtt_p99_us",
                "rtt_p999_us", "rtt_max_us", "lag_p99_us", "skipped", "lost", "unanswered",
                "loadgen_cpu_s")})
            rec.update({"period_s": PING_PERIOD, "seconds": PING_SECONDS, "rss_kib": rss,
                        "open_per_s": opened["per_s"], "open_failed": opened["failed"]})
            say("  %-26s %5d tunnels: echo p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%d samples, "
                "lost %d, unanswered %d; generator lag p99 %d us)" % (
                    peer.name, n, r["rtt_p50_us"] / 1000.0, r["rtt_p99_us"] / 1000.0,
                    r["rtt_max_us"] / 1000.0, r["samples"], r["lost"], r["unanswered"], r["lag_p99_us"]))
        ready = wait_json(holder, lambda r: r.get("mode") == "ping_hold", timeout=60)
        if not ready:
            raise RuntimeError("ping holder for %s did not report the tunnels held" % peer.name)
        if direct:
            return None
        opened, rss1 = last
        held = opened["alive"]
        per = (rss1 - rss0) / held if held else None
        rec = record("idle", peer, {"tunnels": held, "wanted": steps[-1], "rss_start_kib": rss0,
                                    "rss_held_kib": rss1,
                                    "kib_per_tunnel": round(per, 2) if per is not None else None,
                                    "open_per_s": opened["per_s"]})
        say("  %-26s RSS at start %d KiB; with %d idle tunnels %d KiB: %.1f KiB per tunnel" % (
            peer.name, rss0, held, rss1, per or 0))
        if with_rate:
            held_now = ready["held"]
            loaded = measure_rate(peer, False, tag="rate_loaded")
            loaded["idle_tunnels"] = held_now
            holder.stop(timeout=10)
            holder = None
            time.sleep(3.0)     # the proxy closes the 2 x N sockets
            unloaded = measure_rate(peer, False, tag="rate_unloaded")
            rec2 = record("idle_rate", peer, {
                "idle_tunnels": held_now, "loaded_per_s": loaded["per_s"], "unloaded_per_s": unloaded["per_s"],
                "ratio": round(loaded["per_s"] / unloaded["per_s"], 3) if unloaded["per_s"] else None,
                "loaded_cpu_us_per_conn": loaded["proxy_cpu_us_per_conn"],
                "unloaded_cpu_us_per_conn": unloaded["proxy_cpu_us_per_conn"]})
            say("  %-26s rate with %d idle tunnels held: %.0f/s = %.2f of the %.0f/s without" % (
                peer.name, held_now, rec2["loaded_per_s"], rec2["ratio"] or 0, rec2["unloaded_per_s"]))
        return rec
    finally:
        if holder is not None:
            holder.stop(timeout=10)
        peer.stop()


# ================================================================= tables

def find(bench, key, **match):
    for r in RESULTS:
        if r["bench"] == bench and r["peer"] == key and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def ratio(a, b, lower_is_better=False):
    if a is None or b is None or not a or not b:
        return "-"
    return "%.2f" % ((b / a) if lower_is_better else (a / b))


def table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    say("")
    say("== " + title)
    for r in [header] + rows:
        say("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))


def ms(us):
    return "-" if us is None else "%.2f" % (us / 1000.0)


def print_tables(ours, theirs):
    names = {r["peer"]: r["name"] for r in RESULTS}
    everyone = ours + theirs + ["direct"]
    for kind in ("full", "resume"):
        rows = []
        for k in ours + theirs:
            r = find("rate_" + kind, k)
            if r:
                rows.append([names[k], "%.0f" % r["per_s"], "%.1f" % r["p50_ms"], "%.1f" % r["p99_ms"],
                             r["full"], r["resumed"], r["failed"], r["proxy_cpu_us_per_conn"]])
        if rows:
            table("rate (%s handshakes): new TLS connection + CONNECT + 64-byte echo + close, "
                  "%d clients, %d s" % ("full" if kind == "full" else "resumed where the proxy agrees",
                                        CONC, DURATION),
                  ["peer", "conn/s", "p50 ms", "p99 ms", "full", "resumed", "failed",
                   "proxy CPU us/conn"], rows)
    rows = []
    for k in ours + theirs:
        r = find("bulk", k)
        if r:
            rows.append([names[k], "%.1f" % r["mb_per_s"], "%.2f" % r["proxy_cpu_s"]])
    if rows:
        table("bulk: one tunnel, echo both ways, %d s" % BULK, ["peer", "MB/s each way", "proxy CPU s"], rows)
    rows = []
    for k in ours + theirs:
        r = find("latency", k)
        if r:
            rows.append([names[k], r["tunnel_p50_us"], r["tunnel_p99_us"], r["direct_p50_us"],
                         r["added_p50_us"]])
    if rows:
        table("latency: %d-byte echo round trips, %d rounds" % (64, ROUNDS),
              ["peer", "tunnel p50 us", "tunnel p99 us", "direct p50 us", "added p50 us"], rows)
    rows = []
    for k in everyone:
        for n in PING_STEPS:
            r = find("ping", k, tunnels=n)
            if r:
                rows.append([names[k], n, r["samples"], ms(r["rtt_p50_us"]), ms(r["rtt_p90_us"]),
                             ms(r["rtt_p99_us"]), ms(r["rtt_p999_us"]), ms(r["rtt_max_us"]),
                             r["lost"] + r["unanswered"] + r["skipped"], ms(r["lag_p99_us"]),
                             "-" if r["rss_kib"] is None else r["rss_kib"]])
    if rows:
        # "sent late p99": how late the generator wrote its echoes against their schedule, a
        # sign of the generator itself waiting for a CPU (a busy machine), not of the proxy.
        table("ping on idle tunnels: each tunnel sends one 64-byte echo every %g s (spread evenly), "
              "%g s counted per step" % (PING_PERIOD, PING_SECONDS),
              ["peer", "tunnels", "echoes", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
               "lost", "sent late p99 ms", "RSS KiB"], rows)
        rows = []
        for k in everyone:
            lo, hi = find("ping", k, tunnels=PING_STEPS[0]), find("ping", k, tunnels=PING_STEPS[-1])
            if lo and hi and len(PING_STEPS) > 1:
                rows.append([names[k], ms(lo["rtt_p99_us"]), ms(hi["rtt_p99_us"]),
                             ratio(hi["rtt_p99_us"], lo["rtt_p99_us"])])
        if rows:
            table("ping p99 at %d tunnels against %d" % (PING_STEPS[-1], PING_STEPS[0]),
                  ["peer", "p99 ms at %d" % PING_STEPS[0], "p99 ms at %d" % PING_STEPS[-1], "ratio"], rows)
    rows = []
    for k in everyone:
        r = find("idle", k)
        if r:
            rows.append([names[k], r["tunnels"], r["rss_start_kib"], r["rss_held_kib"], r["kib_per_tunnel"]])
    if rows:
        table("idle: RSS of the proxy's processes", ["peer", "idle tunnels", "RSS start KiB",
                                                     "RSS held KiB", "KiB per tunnel"], rows)
    rows = []
    for k in everyone:
        r = find("idle_rate", k)
        if r:
            rows.append([names[k], r["idle_tunnels"], "%.0f" % r["loaded_per_s"], "%.0f" % r["unloaded_per_s"],
                         r["ratio"], r["loaded_cpu_us_per_conn"], r["unloaded_cpu_us_per_conn"]])
    if rows:
        table("rate while idle tunnels are held (full handshakes)",
              ["peer", "idle tunnels", "conn/s held", "conn/s after", "ratio", "CPU us/conn held",
               "CPU us/conn after"], rows)

    # Ratios: each relaypro variant against each peer, per figure.
    rows = []
    top = PING_STEPS[-1]
    for o in ours:
        for t in theirs:
            def get(bench, field, **m):
                a, b = find(bench, o, **m), find(bench, t, **m)
                return (a[field] if a else None), (b[field] if b else None)
            rf = get("rate_full", "per_s")
            rr = get("rate_resume", "per_s")
            rrf = (rr[0], rf[1])      # our resumed rate against the peer's full-handshake rate
            cf = get("rate_full", "proxy_cpu_us_per_conn")
            bk = get("bulk", "mb_per_s")
            lt = get("latency", "added_p50_us")
            im = get("idle", "kib_per_tunnel")
            pg = get("ping", "rtt_p99_us", tunnels=top)
            rows.append([names.get(o, o), names.get(t, t), ratio(*rf), ratio(*rr), ratio(*rrf),
                         ratio(*cf, True), ratio(*bk), ratio(*lt, True), ratio(*im, True),
                         ratio(*pg, True)])
    if rows:
        table("relaypro's ratio to each peer (above 1.00: relaypro better; CPU, latency and "
              "memory as peer/relaypro)",
              ["relaypro", "peer", "rate full", "rate resumed", "resumed/peer full", "CPU/conn",
               "bulk", "added latency", "RSS/tunnel", "ping p99 @%d" % top], rows)


# ================================================================= issue 18's targets

NOISE = 0.10   # "no worse than before": run-to-run spread of bulk and added latency on this VM
               # (and at least 5 us for the added latency, a figure of 10-20 us)


def _baseline():
    """The figures a "no worse than before" target compares with: relaypro (before) and squid
    from this run when BENCH_BEFORE_BIN is set, else the recorded run in BASELINE."""
    if find("bulk", "relaypro-before") or find("latency", "relaypro-before"):
        return RESULTS, "relaypro-before", "this run's BENCH_BEFORE_BIN"
    try:
        with open(BASELINE) as f:
            return [json.loads(x) for x in f if x.strip()], "relaypro-basic-w1", os.path.basename(BASELINE)
    except (OSError, ValueError):
        return [], None, None


def _from(recs, bench, key):
    for r in recs:
        if r["bench"] == bench and r["peer"] == key:
            return r
    return None


def targets():
    """Issue 18's targets, each with the figure it is judged on and met / missed."""
    out = []
    me, sq, top = "relaypro-basic-w1", "squid-w1", PING_STEPS[-1]
    low = PING_STEPS[0]

    def add(name, figure, goal, ok, note=""):
        verdict = "-" if ok is None else ("met" if ok is True else ("missed" if ok is False else ok))
        out.append({"target": name, "figure": figure, "goal": goal, "verdict": verdict, "note": note})

    def val(bench, key, field, **m):
        r = find(bench, key, **m)
        return r.get(field) if r else None

    p_hi, p_lo = val("ping", me, "rtt_p99_us", tunnels=top), val("ping", me, "rtt_p99_us", tunnels=low)
    sq_hi = val("ping", sq, "rtt_p99_us", tunnels=top)
    bad = (val("ping", me, "lost", tunnels=top) or 0) + (val("ping", me, "unanswered", tunnels=top) or 0)
    floor = val("ping", "direct", "rtt_p99_us", tunnels=top)
    add("idle-tunnel ping p99 at %d held" % top,
        "%s ms (squid %s ms; no proxy %s ms)" % (ms(p_hi), ms(sq_hi), ms(floor)), "<= 2 ms",
        None if p_hi is None else (p_hi <= 2000 and bad == 0),
        "%d echoes lost or unanswered" % bad if bad else "")
    add("ping p99 at %d against %d held" % (top, low),
        "%s ms / %s ms = %s" % (ms(p_hi), ms(p_lo), ratio(p_hi, p_lo)), "<= 1.5x",
        None if not (p_hi and p_lo) else p_hi <= 1.5 * p_lo)
    ir = find("idle_rate", me)
    add("new tunnels/s with %d idle held vs none" % top,
        "%.0f / %.0f = %.2f" % (ir["loaded_per_s"], ir["unloaded_per_s"], ir["ratio"]) if ir else "-",
        ">= 0.9x", None if not ir or ir["ratio"] is None else ir["ratio"] >= 0.9)
    cpu = val("rate_full", me, "proxy_cpu_us_per_conn")
    cpu_b = val("rate_full", "relaypro-bearer-w1", "proxy_cpu_us_per_conn")
    add("CPU per new tunnel, full handshake, one worker",
        "%s us (Bearer %s us; squid %s us)" % (cpu, cpu_b, val("rate_full", sq, "proxy_cpu_us_per_conn")),
        "<= 1000 us", None if cpu is None else cpu <= 1000)
    wa, s1, s2 = (val("rate_full", "relaypro-basic-wauto", "per_s"), val("rate_full", sq, "per_s"),
                  val("rate_full", "squid-w%d" % NCPU, "per_s"))
    add("new tunnels/s, workers = auto, against squid",
        "%s/s vs squid w=1 %s/s = %s (squid w=%d: %s)" % (
            "-" if wa is None else "%.0f" % wa, "-" if s1 is None else "%.0f" % s1, ratio(wa, s1),
            NCPU, ratio(wa, s2)),
        ">= 1.3x", None if not (wa and s1) else wa >= 1.3 * s1)
    for key, label in ((me, "workers = 1"), ("relaypro-basic-wauto", "workers = auto")):
        rr = val("rate_resume", key, "per_s")
        add("resumed handshakes/s, %s, against squid's full" % label,
            "%s/s vs %s/s = %s" % ("-" if rr is None else "%.0f" % rr, "-" if s1 is None else "%.0f" % s1,
                                   ratio(rr, s1)),
            ">= 2x", None if not (rr and s1) else rr >= 2 * s1)
    # "No worse than before": same-run before binary, else the recorded baseline's ratios to squid.
    recs, bkey, src = _baseline()

    def no_worse(now, before, lower_is_better=False, slack_abs=0.0):
        if now is None or before is None:
            return None
        if (now <= before) if lower_is_better else (now >= before):
            return True
        slack = max(abs(before) * NOISE, slack_abs)
        return "within noise" if abs(now - before) <= slack else False

    def vs_squid(rs, key, bench, field):
        a, b = _from(rs, bench, key), _from(rs, bench, sq)
        if not a or not b or not a[field] or not b[field]:
            return None
        return a[field] / b[field]

    now_l = val("latency", me, "added_p50_us")
    if bkey == "relaypro-before":
        now_b, was_b = val("bulk", me, "mb_per_s"), val("bulk", bkey, "mb_per_s")
        was_l = val("latency", bkey, "added_p50_us")
        fb = "%s MB/s vs %s MB/s before" % (now_b, was_b)
        fl = "%s us vs %s us before" % (now_l, was_l)
    else:
        # The recorded run's ratio to squid, applied to this run's squid.
        now_b, was_b = vs_squid(RESULTS, me, "bulk", "mb_per_s"), vs_squid(recs, bkey, "bulk", "mb_per_s")
        r_was, sq_now = vs_squid(recs, bkey, "latency", "added_p50_us"), val("latency", sq, "added_p50_us")
        was_l = r_was * sq_now if r_was is not None and sq_now is not None else None
        fb = "%s x squid vs %s x in %s" % (_f2(now_b), _f2(was_b), src or "-")
        fl = "%s us vs %s us (%s's ratio to squid x this run's squid %s us)" % (
            now_l, _f2(was_l), src or "-", sq_now)
    add("bulk MB/s through one tunnel, no worse than before", fb, ">= before",
        no_worse(now_b, was_b), "" if src else "no baseline")
    # Added latency is tens of microseconds: a few of them are noise whatever the ratio.
    add("added round-trip latency p50, no worse than before", fl, "<= before",
        no_worse(now_l, was_l, lower_is_better=True, slack_abs=5.0), "" if src else "no baseline")
    kib = val("idle", me, "kib_per_tunnel")
    add("memory per idle tunnel (%d held)" % (val("idle", me, "tunnels") or top),
        "%s KiB (squid %s KiB)" % (_f2(kib), _f2(val("idle", sq, "kib_per_tunnel"))), "<= 24 KiB",
        None if kib is None else kib <= 24)
    size = os.path.getsize(RELAYPRO_BIN)
    add("binary size (the binary measured)", "%d bytes = %.0f KiB" % (size, size / 1024.0), "< 512 KiB",
        size < 512 * 1024)
    return out


def _f2(x):
    return "-" if x is None else "%.2f" % x


def print_targets():
    ts = targets()
    rows = [[t["target"], t["figure"], t["goal"], t["verdict"] + (" (%s)" % t["note"] if t["note"] else "")]
            for t in ts]
    table("issue 18's targets (relaypro Basic w=1 unless named; squid = squid w=1, same run)",
          ["target", "figure", "goal", "verdict"], rows)
    for t in ts:
        RESULTS.append(dict(t, bench="target", peer="relaypro-basic-w1", name="relaypro Basic w=1"))


# ================================================================= --profile

# BearSSL's objects (members of libbearssl.a) by what they do; the first prefix that
# matches the member's name wins.
BEARSSL_GROUPS = (
    ("BearSSL crypto: X25519 (ECDHE)", ("ec_c25519_", "ec_curve25519")),
    ("BearSSL crypto: P-256 and ECDSA (signature; ECDHE on P-256)",
     ("ec_p256_", "ec_prime_", "ec_all_", "ec_secp", "ec_default", "ec_keygen", "ec_pubkey", "ecdsa_",
      "i31_", "i15_", "i32_", "i62_")),
    ("BearSSL crypto: RSA", ("rsa_",)),
    ("BearSSL crypto: AES-GCM, ChaCha20-Poly1305 (records)",
     ("aes_", "ghash_", "gcm", "chacha20_", "poly1305_", "ssl_rec_")),
    ("BearSSL crypto: hashes, HMAC, PRF, DRBG (transcript, keys, Finished)",
     ("sha1", "sha2", "md5", "multihash", "hmac", "prf", "hkdf", "dig_", "sysrng", "aesctr_drbg")),
    ("BearSSL crypto: byte codecs, constant-time copy", ("dec", "enc", "ccopy")),
    ("BearSSL TLS engine: handshake interpreter, record framing, session cache", ("ssl_",)),
    ("BearSSL other (X.509, PEM, keys)", ("",)),
)


def _nm(paths):
    """{symbol: member or object file name} for the functions defined in `paths`. A static
    name defined in several members (BearSSL's T0 functions t0_parse7E_* are in each T0
    interpreter) goes to the one a relay runs per connection, the TLS server's."""
    out = {}
    r = sh(["nm", "-A", "--defined-only"] + paths, timeout=60)
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[1] not in "tTwW":
            continue
        where = parts[0].split(":")      # file:address or archive:member:address
        member = os.path.basename(where[-2])
        if parts[2] not in out or member.startswith("ssl_hs_server"):
            out[parts[2]] = member
    return out


def symbol_groups(binary):
    """A function that names the group of a symbol of the relay's binary: a BearSSL group,
    "relay: <module>" (from the objects next to the binary), or musl libc."""
    arch = os.uname().machine.replace("x86_64", "amd64").replace("aarch64", "arm64")
    lib = os.path.join(REPO, ".deps", arch, "lib", "libbearssl.a")
    bear = _nm([lib]) if os.path.exists(lib) else {}
    objs = [os.path.join(os.path.dirname(binary), f) for f in sorted(os.listdir(os.path.dirname(binary)))
            if f.endswith(".o")]
    mine = _nm(objs) if objs else {}

    def group(sym):
        base = sym.split(".")[0]          # gcc's .part/.constprop/.isra clones
        if base in mine:
            return "relay: " + mine[base][:-2]
        if base in bear:
            member = bear[base]
            for name, prefixes in BEARSSL_GROUPS:
                if any(member.startswith(p) for p in prefixes):
                    return name
        return "musl libc (malloc, memcpy, syscall wrappers...)" if objs else "relay or libc (no objects found)"
    return group


def _start_profiled_relay(tool, echo_port):
    relay = Relaypro(None, echo_port, "1", console="localhost")
    # The CA bundle is made by a first native start (an RSA key: minutes under valgrind);
    # the profiled start reuses it from the same folder.
    relay.dir = rt.make_tmpdir("bench-profile-")
    relay.start()
    relay.stop()
    out = os.path.join(relay.dir, "callgrind.out")
    if tool == "callgrind":
        relay.wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out]
        relay.up_timeout = 300
    relay.start()
    return relay, out


def profile(tool, tunnels):
    """One relay (Basic, one worker, console `localhost` so the CONNECT target goes through
    the relay's DNS cache) serves `tunnels` new tunnels from the load generator, 8 at once,
    each: TCP + full TLS 1.2 handshake (X25519, ECDSA P-256, AES-128-GCM) + CONNECT + one
    64-byte echo + close. perf: CPU samples of the relay only, kernel included; callgrind:
    the relay's user-space instructions, exact and repeatable. Prints the groups."""
    exe, pkg = {"perf": ("perf", "linux-perf"), "callgrind": ("valgrind", "valgrind"),
                "strace": ("strace", "strace")}[tool]
    if shutil.which(exe) is None:
        say("installing %s (apt)" % pkg)
        sh(["apt-get", "-o", "DPkg::Lock::Timeout=900", "install", "-y", "-q", pkg], timeout=900,
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    base = rt.make_tmpdir("bench-")
    echo = rt.start_process([LOADGEN, "echo", "--duration", DEADLINE_S], tmpdir=base, name="echo")
    if not echo.wait_for_output("echo_port", timeout=10):
        raise RuntimeError("echo backend did not start")
    echo_port = json.loads(echo.stdout().splitlines()[0])["echo_port"]
    relay, cg_out = _start_profiled_relay(tool, echo_port)
    pid = relay.procs[0].pid
    perf_out = os.path.join(relay.dir, "perf.data")
    rec = None
    strace_out = os.path.join(relay.dir, "strace.txt")
    if tool == "strace":
        rec = rt.start_process(["strace", "-c", "-f", "-o", strace_out, "-p", str(pid)], tmpdir=relay.dir,
                               name="strace")
        if not rec.wait_for_output("attached", timeout=20, stream="stderr"):
            raise RuntimeError("strace did not attach: %s" % rec.stderr()[-300:])
    elif tool == "perf":
        rec = rt.start_process(["perf", "record", "-e", "cpu-clock", "-F", "4999", "-g", "-p", str(pid),
                                "-o", perf_out], tmpdir=relay.dir, name="perf")
        if not rt.wait_until(lambda: os.path.exists(perf_out), timeout=20):
            raise RuntimeError("perf record did not start: %s" % rec.stderr()[-300:])
    else:
        r = sh(["callgrind_control", "-i", "on", str(pid)], timeout=60)
        if r.returncode != 0:
            raise RuntimeError("callgrind_control: %s" % (r.stdout + r.stderr)[-300:])
    cpu0 = tree_cpu_s([pid])
    t0 = time.monotonic()
    argv = [LOADGEN, "rate", "--proxy", "127.0.0.1:%d" % relay.port, "--target", "127.0.0.1:%d" % echo_port,
            "--target-host", "localhost", "--label", "profile", "--conc", 8, "--threads", 1,
            "--count", tunnels, "--warmup", 0, "--duration", 3000]
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=3600,
                       env=dict(rt.clean_environ(), LOADGEN_AUTH=relay.auth))
    wall = time.monotonic() - t0
    cpu = tree_cpu_s([pid]) - cpu0
    res = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not res or res[-1]["conns"] != tunnels:
        raise RuntimeError("loadgen: %s %s" % (res[-1:] if res else "", r.stderr[-300:]))
    group = symbol_groups(RELAYPRO_BIN)
    totals, tops = {}, {}
    if tool == "strace":
        rec.signal(signal.SIGINT)
        rec.wait(60)
        unit, total, scale = "calls/tunnel", 0, 1.0 / tunnels
        with open(strace_out) as f:
            for line in f:
                parts = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and parts[-1] != "total":
                    calls, name = int(parts[3]), parts[-1]
                    totals[name] = calls
                    tops[name] = [(calls, "%s errors" % parts[4] if len(parts) == 6 else "")]
                    total += calls
    elif tool == "perf":
        rec.signal(signal.SIGINT)
        rec.wait(60)
        # One sample per block of `perf script`: the leaf frame first, then its callers. A
        # kernel sample is put under the system call found among its callers (the cost of
        # that call, TCP/IP included), else under interrupts.
        rep = sh(["perf", "script", "-i", perf_out, "-F", "ip,sym,dso"], timeout=600)
        unit, total = "us/tunnel", 0
        frames = []
        for line in rep.stdout.splitlines() + [""]:
            if line.strip():
                frames.append(line.strip())
                continue
            if not frames:
                continue
            leaf = frames[0].split(None, 1)[1] if " " in frames[0] else frames[0]
            sym = leaf.rsplit(" (", 1)[0]
            if "[kernel.kallsyms]" in frames[0]:
                g = "kernel: interrupts, other"
                for fr in frames:
                    m = re.search(r"(?:__x64_sys_|__do_sys_|ksys_)(\w+)", fr)
                    if m:
                        g = "kernel: " + m.group(1) + " system calls"
                        break
            else:
                g = group(sym)
            totals[g] = totals.get(g, 0) + 1
            tops.setdefault(g, {}).setdefault(sym, 0)
            tops[g][sym] += 1
            total += 1
            frames = []
        tops = {g: [(n, sym) for sym, n in d.items()] for g, d in tops.items()}
        scale = 1e6 / 4999.0 / tunnels     # one sample = 1/4999 s of CPU
    else:
        sh(["callgrind_control", "-i", "off", str(pid)], timeout=60)
        sh(["callgrind_control", "-d", str(pid)], timeout=120)
        # the dump made while collecting was on: callgrind.out.1 (the file written at exit
        # holds nothing, collection being off by then)
        dump = os.path.join(relay.dir, os.path.basename(cg_out) + ".1")
        ann = sh(["callgrind_annotate", "--inclusive=no", "--threshold=100", dump], timeout=600)
        unit, total = "instructions/tunnel", 0
        for line in ann.stdout.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[0].replace(",", "").isdigit() or ":" not in line:
                continue
            n = int(parts[0].replace(",", ""))
            fn = line.split(":", 1)[1].split()[0] if " " in line.split(":", 1)[1] else line.split(":", 1)[1]
            g = group(fn)
            totals[g] = totals.get(g, 0) + n
            tops.setdefault(g, []).append((n, fn))
            total += n
        scale = 1.0 / tunnels
    relay.stop()
    echo.stop()
    say("")
    say("== profile (%s): %d new tunnels (TCP + full TLS handshake + CONNECT localhost + 64-byte "
        "echo + close), 8 at once, %s" % (tool, tunnels, os.path.basename(RELAYPRO_BIN)))
    say("   relay CPU %.0f us per tunnel from /proc (%.2f s over %.1f s)%s" % (
        cpu * 1e6 / tunnels, cpu, wall, {"callgrind": "; under valgrind", "strace": "; under strace"}.get(
            tool, "")))
    rows = []
    for g, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        top = ", ".join("%s %.0f%%" % (sym, 100.0 * k / total)
                        for k, sym in sorted(tops[g], reverse=True)[:4]) if tool != "strace" else tops[g][0][1]
        rows.append([g, "%.1f%%" % (100.0 * n / total), "%.2f" % (n * scale) if tool == "strace"
                     else "%.0f" % (n * scale), top])
        RESULTS.append({"bench": "profile", "tool": tool, "group": g, "share": round(n / total, 4),
                        unit.replace("/", "_per_"): round(n * scale, 1), "tunnels": tunnels})
    what = {"perf": "CPU samples", "callgrind": "instructions", "strace": "system calls"}[tool]
    table("where the relay's %s go, grouped (%s)" % (what, unit),
          ["group" if tool != "strace" else "system call", "share", unit,
           "largest functions (share of all)" if tool != "strace" else ""], rows)
    for r2 in RESULTS:
        say(json.dumps(r2, sort_keys=True))
    return 0


# ================================================================= main

def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def git_rev():
    r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                       text=True, timeout=10)
    return r.stdout.strip() or "?"


def main():
    t_start = time.monotonic()
    rt.init("bench", deadline=DEADLINE_S)
    for b in (RELAYPRO_BIN, LOADGEN):
        if not os.access(b, os.X_OK):
            say("missing %s: build it first (make bench builds both)" % b)
            return 2
    if ARGS.profile:
        return profile(ARGS.profile, ARGS.tunnels or (400 if ARGS.profile == "callgrind" else 3000))
    # 9,000 tunnels need about 18,000 descriptors in the proxy and 9,000 in the generator and
    # in the echo server: raise the soft limit (inherited by every process started here).
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000) if hard != resource.RLIM_INFINITY
                                                    else 20000, hard))
    except (ValueError, OSError):
        pass
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    if 2 * PING_STEPS[-1] + 200 > nofile[0]:
        say("RLIMIT_NOFILE is %d (hard %d): too small for %d tunnels (2 fds each in the proxy); "
            "set BENCH_IDLE lower or raise the hard limit" % (nofile[0], nofile[1], PING_STEPS[-1]))
        return 2
    if "squid" in PEERS or "stunnel" in PEERS:
        ensure_packages()
    base = rt.make_tmpdir("bench-")
    make_certs(base)
    echo = rt.start_process([LOADGEN, "echo", "--duration", DEADLINE_S], tmpdir=base, name="echo")
    line = echo.wait_for_output("echo_port", timeout=10)
    echo_port = None
    for ln in echo.stdout().splitlines():
        if "echo_port" in ln:
            echo_port = json.loads(ln)["echo_port"]
    if not echo_port:
        say("echo backend did not start")
        return 1
    del line

    machine = {"bench": "machine", "peer": "-", "name": "-", "cpus": NCPU, "cpu": cpu_model(),
               "kernel": os.uname().release, "nofile_soft": nofile[0], "nofile_hard": nofile[1],
               "loadavg_before": loadavg(), "relaypro_bin": RELAYPRO_BIN,
               "relaypro_bytes": os.path.getsize(RELAYPRO_BIN), "git": git_rev(),
               "before_bin": BEFORE_BIN or None}
    RESULTS.append(machine)
    say("relaypro benchmark: %d CPUs (%s), kernel %s, RLIMIT_NOFILE %d (hard %d), loadavg %s" % (
        NCPU, cpu_model(), os.uname().release, nofile[0], nofile[1], machine["loadavg_before"]))
    say("binary %s (%d bytes), tree %s" % (RELAYPRO_BIN, machine["relaypro_bytes"], machine["git"]))
    say("load: %d clients on %d loadgen threads, rate runs %d s (+1 s warm-up), bulk %d s, "
        "latency %d rounds, ping at %s tunnels (%g s counted each, one echo per tunnel every %g s), "
        "%d held idle" % (CONC, THREADS, DURATION, BULK, ROUNDS, ",".join(map(str, PING_STEPS)),
                          PING_SECONDS, PING_PERIOD, PING_STEPS[-1]))
    say("the load generator does not verify the proxy's certificate (benchmark)")

    ours, theirs = [], []
    setups = []
    if "relaypro" in PEERS:
        setups += [(Relaypro(base, echo_port, "1"), True), (Relaypro(base, echo_port, "1", bearer=True), False),
                   (Relaypro(base, echo_port, "auto"), False)]
        if BEFORE_BIN:
            before = Relaypro(base, echo_port, "1", binary=BEFORE_BIN, label="relaypro (before) w=1")
            before.key = "relaypro-before"
            setups.append((before, True))
    if "squid" in PEERS and shutil.which("squid"):
        setups += [(Squid(base, echo_port, 1), True)]
        if NCPU > 1:
            setups += [(Squid(base, echo_port, NCPU), False)]
    if "stunnel" in PEERS and shutil.which("stunnel4") and shutil.which("tinyproxy"):
        setups += [(StunnelTinyproxy(base, echo_port), True)]
    if not any(m in MODES for m in ("rate", "bulk", "latency")):
        setups = []
    for peer, full_set in setups:
        (ours if isinstance(peer, Relaypro) else theirs).append(peer.key)
        say("")
        say("-- %s" % peer.name)
        try:
            peer.start()
            if "latency" in MODES and full_set:
                measure_latency(peer)
            if "rate" in MODES:
                measure_rate(peer, False)
                measure_rate(peer, True)
            if "bulk" in MODES and full_set:
                measure_bulk(peer)
        except Exception as e:  # one peer failing must not hide the others' figures
            say("  %s: %s" % (peer.name, e))
            record("error", peer, {"error": str(e)[:300]})
        finally:
            peer.stop()

    ping = "ping" in MODES
    with_rate = "idle" in MODES
    if ping or with_rate:
        say("")
        say("-- idle tunnels (fresh instances): ping at %s tunnels, memory, rate while held" %
            ",".join(map(str, PING_STEPS)))
        idle_setups = []
        if "relaypro" in PEERS:
            idle_setups.append((Relaypro(base, echo_port, "1"), PING_STEPS, True))
            if BEFORE_BIN:
                before = Relaypro(base, echo_port, "1", binary=BEFORE_BIN, label="relaypro (before) w=1")
                before.key = "relaypro-before"
                idle_setups.append((before, PING_STEPS, True))
        if "squid" in PEERS and shutil.which("squid"):
            idle_setups.append((Squid(base, echo_port, 1), PING_STEPS, True))
        if with_rate and "stunnel" in PEERS and shutil.which("stunnel4"):
            # memory only: thread per connection, see IDLE_THREADED
            idle_setups.append((StunnelTinyproxy(base, echo_port), [min(IDLE, IDLE_THREADED)], None))
        if ping and "direct" in PEERS:
            idle_setups.append((Direct(base, echo_port), PING_STEPS, False))
        for peer, steps, rate_too in idle_setups:
            if peer.key not in ours + theirs + ["direct"]:
                (ours if isinstance(peer, Relaypro) else theirs).append(peer.key)
            try:
                measure_idle(peer, steps, ping and rate_too is not None, with_rate and bool(rate_too))
            except Exception as e:
                say("  %s: %s" % (peer.name, e))
                record("error", peer, {"error": str(e)[:300]})

    machine["loadavg_after"] = loadavg()
    machine["seconds"] = round(time.monotonic() - t_start, 1)
    order = ("relaypro-basic-w1", "relaypro-bearer-w1", "relaypro-basic-wauto", "relaypro-before")
    print_tables([k for k in order if k in ours], [k for k in theirs if k != "direct"])
    if "relaypro" in PEERS:
        print_targets()
    say("")
    say("loadavg before %s, after %s; the run took %.0f s" % (
        machine["loadavg_before"], machine["loadavg_after"], machine["seconds"]))
    os.makedirs(OUT_DIR, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(OUT_DIR, "results.jsonl"), "w") as f:
        say("")
        for r in RESULTS:
            r["ts"] = stamp
            line = json.dumps(r, sort_keys=True)
            f.write(line + "\n")
            say(line)
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    code = 1
    try:
        code = main()
    finally:
        rt.cleanup_all()
    sys.exit(code)

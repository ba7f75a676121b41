#!/usr/bin/env python3
"""run.py -- relaypro against squid and stunnel+tinyproxy, measured in the same run (issue 8).

Run by `make bench` (never by `make test`). Installs the peers with apt when they are
missing, writes their configurations into a temporary folder, starts everything on
127.0.0.1 with free ports, runs tests/bench/loadgen in each mode against each peer, stops
every process by PID, and prints one table per mode with relaypro's ratio to each peer,
followed by one JSON line per measurement (also written to build/bench/results.jsonl).

Equivalent configurations: TLS 1.2 on the listener with an ECDSA P-256 certificate (the
kind relaypro mints; the peers get one from a throw-away test CA), the client offers
X25519 first and only AES-128-GCM suites, so every peer negotiates the same suite; Basic
authentication (squid: basic_ncsa_auth with an htpasswd file; tinyproxy: BasicAuth;
relaypro: passwordFile), and also Bearer tokens for relaypro; CONNECT allowed only to the
echo backend's port on 127.0.0.1. Each peer keeps its default logging of connections.
The load generator does not verify the proxy's certificate (it is a benchmark; it says so).

Environment (all optional): BENCH_DURATION (s per rate run, default 8), BENCH_CONC
(concurrent clients, 32), BENCH_THREADS (load generator threads, 2), BENCH_BULK (s, 5),
BENCH_ROUNDS (latency round trips, 3000), BENCH_IDLE (idle tunnels, 9000),
BENCH_IDLE_THREADED (idle tunnels for the thread-per-connection peer stunnel+tinyproxy,
2000: 9,000 would need 18,000 threads on a machine whose pid_max is 32,768),
BENCH_PEERS (relaypro,squid,stunnel), BENCH_MODES (rate,bulk,latency,idle),
BENCH_BEFORE_BIN (another relaypro binary: its idle+rate figures are printed beside the
current one's), RELAYPRO_BIN, LOADGEN_BIN. `--quick` shortens everything (a smoke run).
"""
import base64
import json
import os
import resource
import secrets
import shutil
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

QUICK = "--quick" in sys.argv[1:]


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
PEERS = os.environ.get("BENCH_PEERS", "relaypro,squid,stunnel").split(",")
MODES = os.environ.get("BENCH_MODES", "rate,bulk,latency,idle").split(",")
BEFORE_BIN = os.path.abspath(os.environ["BENCH_BEFORE_BIN"]) if os.environ.get("BENCH_BEFORE_BIN") else ""
RELAYPRO_BIN = os.path.abspath(os.environ.get("RELAYPRO_BIN") or os.path.join(REPO, "build", "amd64", "relaypro"))
LOADGEN = os.path.abspath(os.environ.get("LOADGEN_BIN") or os.path.join(REPO, "build", "amd64", "loadgen"))
OUT_DIR = os.path.join(REPO, "build", "bench")
NCPU = os.cpu_count() or 1
CLK = os.sysconf("SC_CLK_TCK")
DEADLINE_S = 40 * 60          # the whole run, whatever happens
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
    def __init__(self, base, echo_port, workers="1", bearer=False, binary=None, label=None):
        super().__init__(base, echo_port)
        self.workers = workers
        self.bearer = bearer
        self.bin = binary or RELAYPRO_BIN
        w = "auto(%d)" % NCPU if workers == "auto" else workers
        self.key = "relaypro-%s-w%s" % ("bearer" if bearer else "basic", workers)
        self.name = label or "relaypro %s w=%s" % ("Bearer" if bearer else "Basic", w)
        self.token = secrets.token_hex(16)

    def start(self):
        d = rt.make_tmpdir("bench-relaypro-")
        self.dir = d
        self.port = rt.free_port()
        write(os.path.join(d, "users.txt"), "%s:%s\n" % (USER, PASSWORD), 0o600)
        cfg = os.path.join(d, "config.ini")
        write(cfg, "\n".join([
            "consoleAddress = 127.0.0.1",
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
        self.procs = [rt.start_process([self.bin, "run", "-c", cfg], tmpdir=d, name="relaypro", cwd=d)]
        self.wait_up()
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


def measure_idle(peer, count, with_rate):
    """Fresh instance: RSS at start, RSS with `count` idle tunnels, then (with_rate) the
    rate figure while they are held and again after they closed."""
    peer.start()
    try:
        time.sleep(1.0)
        rss0 = tree_rss_kib(peer.roots)
        d = rt.make_tmpdir("bench-idle-")
        argv = [LOADGEN, "idle", "--proxy", "127.0.0.1:%d" % peer.port,
                "--target", "127.0.0.1:%d" % peer.echo_port, "--label", peer.key,
                "--count", count, "--conc", 64, "--hold", 600]
        holder = rt.start_process(argv, env={"LOADGEN_AUTH": peer.auth}, tmpdir=d, name="idle")
        t0 = time.monotonic()
        ready = None
        while time.monotonic() - t0 < 200 and holder.alive():
            for line in holder.stdout().splitlines():
                if '"ready":1' in line:
                    ready = json.loads(line)
            if ready:
                break
            time.sleep(0.2)
        if not ready:
            raise RuntimeError("idle holder for %s did not get ready: %s" % (peer.name, holder.stderr()[-300:]))
        opened = [json.loads(x) for x in holder.stdout().splitlines() if '"idle_open"' in x]
        time.sleep(1.0)
        held = ready["held"]
        rss1 = tree_rss_kib(peer.roots)
        per = (rss1 - rss0) / held if held else None
        rec = record("idle", peer, {"tunnels": held, "wanted": count, "rss_start_kib": rss0,
                                    "rss_held_kib": rss1,
                                    "kib_per_tunnel": round(per, 2) if per is not None else None,
                                    "open_per_s": opened[0]["per_s"] if opened else None})
        say("  %-26s RSS at start %d KiB; with %d idle tunnels %d KiB: %.1f KiB per tunnel" % (
            peer.name, rss0, held, rss1, per or 0))
        if with_rate:
            loaded = measure_rate(peer, False, tag="rate_loaded")
            loaded["idle_tunnels"] = held
            holder.stop(timeout=10)
            time.sleep(3.0)
            unloaded = measure_rate(peer, False, tag="rate_unloaded")
            rec2 = record("idle_rate", peer, {
                "idle_tunnels": held, "loaded_per_s": loaded["per_s"], "unloaded_per_s": unloaded["per_s"],
                "ratio": round(loaded["per_s"] / unloaded["per_s"], 3) if unloaded["per_s"] else None,
                "loaded_cpu_us_per_conn": loaded["proxy_cpu_us_per_conn"],
                "unloaded_cpu_us_per_conn": unloaded["proxy_cpu_us_per_conn"]})
            say("  %-26s rate with %d idle tunnels held: %.0f/s = %.2f of the %.0f/s without" % (
                peer.name, held, rec2["loaded_per_s"], rec2["ratio"] or 0, rec2["unloaded_per_s"]))
        else:
            holder.stop(timeout=10)
        return rec
    finally:
        peer.stop()


# ================================================================= tables

def find(bench, key):
    for r in RESULTS:
        if r["bench"] == bench and r["peer"] == key:
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


def print_tables(ours, theirs):
    names = {r["peer"]: r["name"] for r in RESULTS}
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
    for k in ours + theirs + ["relaypro-before"]:
        r = find("idle", k)
        if r:
            rows.append([names[k], r["tunnels"], r["rss_start_kib"], r["rss_held_kib"], r["kib_per_tunnel"]])
    if rows:
        table("idle: RSS of the proxy's processes", ["peer", "idle tunnels", "RSS start KiB",
                                                     "RSS held KiB", "KiB per tunnel"], rows)
    rows = []
    for k in ours + theirs + ["relaypro-before"]:
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
    for o in ours:
        for t in theirs:
            def get(bench, field):
                a, b = find(bench, o), find(bench, t)
                return (a[field] if a else None), (b[field] if b else None)
            rf = get("rate_full", "per_s")
            rr = get("rate_resume", "per_s")
            cf = get("rate_full", "proxy_cpu_us_per_conn")
            bk = get("bulk", "mb_per_s")
            lt = get("latency", "added_p50_us")
            im = get("idle", "kib_per_tunnel")
            rows.append([names.get(o, o), names.get(t, t), ratio(*rf), ratio(*rr), ratio(*cf, True),
                         ratio(*bk), ratio(*lt, True), ratio(*im, True)])
    if rows:
        table("relaypro's ratio to each peer (above 1.00: relaypro better; CPU, latency and "
              "memory as peer/relaypro)",
              ["relaypro", "peer", "rate full", "rate resumed", "CPU/conn", "bulk", "added latency",
               "RSS/tunnel"], rows)


# ================================================================= main

def main():
    rt.init("bench", deadline=DEADLINE_S)
    for b in (RELAYPRO_BIN, LOADGEN):
        if not os.access(b, os.X_OK):
            say("missing %s: build it first (make bench builds both)" % b)
            return 2
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000) if hard != resource.RLIM_INFINITY
                                                    else 20000, hard))
    except (ValueError, OSError):
        pass
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
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

    say("relaypro benchmark: %d CPUs (%s), kernel %s, RLIMIT_NOFILE %d" % (
        NCPU, cpu_model(), os.uname().release, nofile))
    say("load: %d clients on %d loadgen threads, rate runs %d s (+1 s warm-up), bulk %d s, "
        "latency %d rounds, idle %d tunnels" % (CONC, THREADS, DURATION, BULK, ROUNDS, IDLE))
    say("the load generator does not verify the proxy's certificate (benchmark)")

    ours, theirs = [], []
    setups = []
    if "relaypro" in PEERS:
        setups += [(Relaypro(base, echo_port, "1"), True), (Relaypro(base, echo_port, "1", bearer=True), False),
                   (Relaypro(base, echo_port, "auto"), False)]
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

    if "idle" in MODES:
        say("")
        say("-- idle tunnels (fresh instances)")
        idle_setups = []
        if "relaypro" in PEERS:
            idle_setups.append((Relaypro(base, echo_port, "1"), IDLE, True))
            if BEFORE_BIN:
                idle_setups.append((Relaypro(base, echo_port, "1", binary=BEFORE_BIN,
                                             label="relaypro (before) w=1"), IDLE, True))
                idle_setups[-1][0].key = "relaypro-before"
        if "squid" in PEERS and shutil.which("squid"):
            idle_setups.append((Squid(base, echo_port, 1), IDLE, True))
        if "stunnel" in PEERS and shutil.which("stunnel4"):
            idle_setups.append((StunnelTinyproxy(base, echo_port), min(IDLE, IDLE_THREADED), False))
        for peer, n, with_rate in idle_setups:
            try:
                measure_idle(peer, n, with_rate)
            except Exception as e:
                say("  %s: %s" % (peer.name, e))
                record("error", peer, {"error": str(e)[:300]})

    print_tables([k for k in ours if k in ("relaypro-basic-w1", "relaypro-bearer-w1", "relaypro-basic-wauto")],
                 theirs)
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

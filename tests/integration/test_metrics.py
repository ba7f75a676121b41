#!/usr/bin/env python3
"""test_metrics.py -- the admin listener (docs/configuration.md): off by default; on, it serves
GET /metrics (Prometheus text format 0.0.4), /healthz and /readyz and nothing else.

The scrape is checked twice: by a strict parser written here (every line a HELP/TYPE
comment or `name{labels} value`, TYPE before a family's samples, families contiguous,
valid names, escaped label values, no duplicate series, counters numbers >= 0) and by
`promtool check metrics` from Debian's `prometheus` package (installed when missing; when
it cannot be installed that check fails). Counters are checked to move with real traffic:
a tunnel to the test console's echo (tunnels_total +1, bytes +N each way), auth failures
by reason, a token issued, a rate-limit ban, a bad TLS handshake, reloads (ok and failed),
connections refused at maxConnections while the admin port still answers. CONNECT and the
relay's own paths are refused on the admin port; no secret, user name, client address or
refused target appears in any scrape. With workers = 2 a scrape reaches one worker, says which,
and holds the sums over both (test_workers.py checks the sums); after a SIGUSR2 upgrade the new process answers on the handed-over admin port.

Everything runs on loopback with ephemeral ports; processes are stopped by PID.
Last line: `metrics: N passed, N failed`.
"""
import base64
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402
import wsclient  # noqa: E402


BIN = rt.relay_bin()
ORG, RELAY_ID = 42, 7
SECRET = "sec-" + secrets.token_hex(16)
USER, PASSWORD, WRONG = "metrics-user", "pw-" + secrets.token_hex(8), "wrong-" + secrets.token_hex(8)
AUTH_FAIL_LIMIT = 5
MAX_CONNS = 8

rt.init("metrics", deadline=240)
TMP = rt.make_tmpdir("relaytest-metrics-")
S = {}          # shared state of the cases
SCRAPES = []    # every /metrics body seen, for the no-secrets check
for _s in (SECRET, PASSWORD, WRONG, base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode(),
           base64.b64encode(("%s:%s" % (USER, WRONG)).encode()).decode()):
    rt.secret(_s)  # never in a check line (relaytest redacts them), nor in a scrape
redact = rt.redact
ck, ck_eq = rt.check, rt.check_eq


# ================================================================= strict exposition parser

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(Exception):
    pass


def _labels(text, pos, lineno):
    """Parse `{a="x",b="y"}` from text[pos] == '{'. Returns (dict, position after '}')."""
    out = {}
    i = pos + 1
    if i < len(text) and text[i] == "}":
        return out, i + 1
    for _ in range(len(text)):
        j = i
        while j < len(text) and text[j] not in "=}, ":
            j += 1
        name = text[i:j]
        if not LABEL_RE.match(name) or name.startswith("__"):
            raise ParseError("line %d: bad label name %r" % (lineno, name))
        if text[j:j + 2] != '="':
            raise ParseError("line %d: label %s: expected =\"" % (lineno, name))
        j += 2
        val = []
        while True:
            if j >= len(text):
                raise ParseError("line %d: unterminated label value" % lineno)
            c = text[j]
            if c == "\\":
                nxt = text[j + 1:j + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError("line %d: bad escape \\%s" % (lineno, nxt))
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                j += 2
            elif c == '"':
                j += 1
                break
            elif c == "\n":
                raise ParseError("line %d: raw newline in a label value" % lineno)
            else:
                val.append(c)
                j += 1
        if name in out:
            raise ParseError("line %d: label %s twice" % (lineno, name))
        out[name] = "".join(val)
        if j < len(text) and text[j] == ",":
            i = j + 1
            continue
        if j < len(text) and text[j] == "}":
            return out, j + 1
        raise ParseError("line %d: expected , or } after label %s" % (lineno, name))
    raise ParseError("line %d: label list too long" % lineno)


def _family_of(name, types):
    """The TYPE'd family a sample name belongs to (histogram/summary suffixes allowed)."""
    if name in types:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        base = name[:-len(suf)] if name.endswith(suf) else None
        if base and types.get(base) in ("histogram", "summary"):
            return base
    return None


def parse_exposition(text):
    """Strict reading of the text format 0.0.4. Returns {(name, frozenset(labels)): value}
    and {family: type}; raises ParseError on the first problem."""
    if not text.endswith("\n"):
        raise ParseError("the exposition does not end with a newline")
    types, helps, samples, done = {}, set(), {}, set()
    current = None
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        if line == "":
            raise ParseError("line %d: empty line" % lineno)
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (\S+) (.*)\Z", line)
            if not m:
                raise ParseError("line %d: a comment that is not HELP or TYPE: %r" % (lineno, line))
            kind, name, rest = m.groups()
            if not NAME_RE.match(name):
                raise ParseError("line %d: bad metric name %r" % (lineno, name))
            if name in done or (name in samples_names(samples)):
                raise ParseError("line %d: %s %s after its samples" % (lineno, kind, name))
            if kind == "TYPE":
                if rest not in TYPES:
                    raise ParseError("line %d: bad type %r" % (lineno, rest))
                if name in types:
                    raise ParseError("line %d: TYPE %s twice" % (lineno, name))
                types[name] = rest
            else:
                if name in helps:
                    raise ParseError("line %d: HELP %s twice" % (lineno, name))
                if re.search(r"\\[^\\n]", rest):
                    raise ParseError("line %d: bad escape in HELP" % lineno)
                helps.add(name)
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if not m:
            raise ParseError("line %d: no metric name: %r" % (lineno, line))
        name = m.group(1)
        pos = m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _labels(line, pos, lineno)
        rest = line[pos:]
        if not rest.startswith(" "):
            raise ParseError("line %d: expected a space before the value" % lineno)
        parts = rest[1:].split(" ")
        if len(parts) not in (1, 2) or parts[0] == "":
            raise ParseError("line %d: expected `value [timestamp]`: %r" % (lineno, rest))
        try:
            value = float(parts[0])
        except ValueError:
            raise ParseError("line %d: value %r is not a number" % (lineno, parts[0]))
        if len(parts) == 2 and not re.match(r"-?[0-9]+\Z", parts[1]):
            raise ParseError("line %d: bad timestamp" % lineno)
        fam = _family_of(name, types)
        if fam is None:
            raise ParseError("line %d: sample %s before (or without) its TYPE" % (lineno, name))
        if fam != current:
            raise ParseError("line %d: sample %s outside its family's block" % (lineno, name))
        if fam in done:
            raise ParseError("line %d: family %s appears twice" % (lineno, fam))
        if types[fam] == "counter" and not (math.isfinite(value) and value >= 0):
            raise ParseError("line %d: counter %s = %r" % (lineno, name, value))
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ParseError("line %d: duplicate series %s%r" % (lineno, name, labels))
        samples[key] = value
    return samples, types


def samples_names(samples):
    return {k[0] for k in samples}


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


# ================================================================= relays and clients

def listening_ports(pid):
    """TCP ports in LISTEN state held by pid's descriptors (/proc)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            p = row.split()
            if len(p) > 9 and p[3] == "0A" and p[9] in inodes:
                ports.append(int(p[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def proc_start_time(pid):
    """Wall-clock start time of pid from /proc (boot time + start ticks)."""
    with open("/proc/stat") as f:
        btime = next(int(ln.split()[1]) for ln in f if ln.startswith("btime "))
    with open("/proc/%d/stat" % pid) as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    return btime + ticks / os.sysconf("SC_CLK_TCK")


write_config = relays.write_config


def start_relay(name, https, http=None, admin=None, extra=()):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    relays.write_users(d, USER, PASSWORD, mode=None)
    r = relays.Relay(d, relays.relay_config(
        security_token=SECRET, org=ORG, relay_id=RELAY_ID,
        allowed_ports="443,%d" % S["con"].echo_port, top=["passwordFile = users.txt"] + list(extra),
        https=https, http=http, admin=admin,
        limits=[("authFailLimit", AUTH_FAIL_LIMIT), ("maxConnections", MAX_CONNS)]),
        https=https, http=http, admin=admin).start()
    return dict(dir=d, cfg=r.cfg, log=r.log, proc=r.proc, https=https, http=http, admin=admin)


def admin_get(path, port=None, method="GET", headers=None):
    r = rt.http_request("127.0.0.1", port or S["admin"], method, path, headers=headers, timeout=5)
    if path.startswith("/metrics") and r.status == 200:
        SCRAPES.append(r.text())
    return r


def scrape(port=None):
    """(samples, types, text) of one GET /metrics; raises on a non-200 or a parse error."""
    r = admin_get("/metrics", port)
    if r.status != 200:
        raise RuntimeError("GET /metrics answered %d" % r.status)
    samples, types = parse_exposition(r.text())
    return samples, types, r.text()


def metric(name, **labels):
    v = val(scrape()[0], name, **labels)
    return 0 if v is None else v


def wait_metric(name, want, **labels):
    """The metric's value once it equals want (bounded wait), else its last value."""
    got = rt.wait_until(lambda: metric(name, **labels) == want or None, timeout=5)
    return want if got else metric(name, **labels)


def tunnel(auth=None, target=None, source=None, via_http=False):
    """CONNECT through the TLS listener, or the plain one (via_http), optionally from
    another loopback source address (plain only)."""
    if target is None:
        target = "localhost:%d" % S["con"].echo_port
    if via_http:
        s = socket.create_connection(("127.0.0.1", S["http"]), timeout=5,
                                     source_address=(source, 0) if source else None)
        return rt.connect_tunnel("127.0.0.1", S["http"], target, headers=auth, conn=s)
    return rt.connect_tunnel("127.0.0.1", S["https"], target, headers=auth, tls=True)


def grant(sub="resp-metrics"):
    now = int(time.time())
    g = rt.jwt_hs256({"sub": sub, "org": ORG, "aud": "relaypro:%d" % RELAY_ID, "iat": now,
                      "exp": now + 600}, SECRET)
    rt.secret(g)
    return g


def ensure_promtool():
    """promtool, installed from Debian's prometheus package when missing. None when it
    cannot be had (then the promtool check fails)."""
    p = shutil.which("promtool")
    if p or os.geteuid() != 0:
        return p
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    for attempt in range(2):
        try:
            if attempt:
                subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True,
                               timeout=300)
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        except subprocess.TimeoutExpired:
            pass
        p = shutil.which("promtool")
        if p:
            return p
    return None


# ================================================================= cases

@rt.case
def setup():
    S["con"] = rt.start_console(TMP, https=False, http=False, tls_echo=False)
    S["https"], S["http"], S["admin"] = rt.free_port(), rt.free_port(), rt.free_port()
    S["relay"] = start_relay("main", S["https"], S["http"], S["admin"])
    ck(True, "relay with the admin listener started")


@rt.case
def off_by_default():
    d = os.path.join(TMP, "off")
    os.makedirs(d, exist_ok=True)
    port = rt.free_port()
    cfg = os.path.join(d, "config.ini")
    write_config(cfg, ["consoleAddress = localhost", "serverName = localhost",
                       "securityToken = " + SECRET, "[httpsProxy]", "listen = 127.0.0.1:%d" % port,
                       "[logger]", "fileName = relay.log"])
    r = subprocess.run([BIN, "check-config", "-c", cfg], capture_output=True, text=True,
                       timeout=20, env=rt.clean_environ())
    ck_eq(r.returncode, 0, "off: check-config accepts a config without [admin]")
    ck("\nadmin.listen = \n" in r.stdout, "off: check-config shows admin.listen empty",
       r.stdout[-600:])
    proc = rt.start_process([BIN, "run", "-c", cfg], tmpdir=d, name="relay-off", cwd=d)
    ev = rt.wait_for_log(os.path.join(d, "relay.log"), "start", timeout=15)
    ck(ev is not None and ev.get("admin_listen") == "", "off: start log names no admin listener", ev)
    ok = rt.wait_for_port("127.0.0.1", port, 10)
    ck(ok, "off: the proxy listener is up")
    ck_eq(listening_ports(proc.pid), [port], "off: the process listens on the proxy port only")
    proc.stop(timeout=10)


@rt.case
def listeners_and_probes():
    ck_eq(listening_ports(S["relay"]["proc"].pid), sorted([S["https"], S["http"], S["admin"]]),
          "on: https, http and admin ports listen")
    r = admin_get("/healthz")
    ck_eq((r.status, r.text().strip()), (200, '{"status":"ok"}'), "admin /healthz")
    r = admin_get("/readyz")
    ck_eq((r.status, r.text().strip()), (200, '{"status":"ready"}'), "admin /readyz")
    r = admin_get("/metrics?name=x")
    ck_eq(r.status, 200, "admin /metrics with a query string")
    ck(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
       "Content-Type names the text format 0.0.4", r.headers.get("content-type"))
    ck_eq(int(r.headers.get("content-length", "-1")), len(r.body), "Content-Length is the body's")
    # keep-alive: two requests on one connection
    r1 = rt.http_request("127.0.0.1", S["admin"], "GET", "/metrics", keep_open=True)
    r2 = rt.http_request("127.0.0.1", S["admin"], "GET", "/healthz", conn=r1.conn) \
        if r1.conn else None
    ck(r1.status == 200 and r2 is not None and r2.status == 200,
       "keep-alive: /metrics then /healthz on one connection", (r1.status, r2))
    SCRAPES.append(r1.text())


@rt.case
def admin_refuses_the_rest():
    st, h, body = rt.connect_tunnel("127.0.0.1", S["admin"], "localhost:%d" % S["con"].echo_port,
                                    headers=rt.basic(USER, PASSWORD), tls=False)
    ck_eq(st, 405, "CONNECT on the admin port: 405")
    ck(b"method_not_allowed" in body, "CONNECT refusal carries the JSON code", body)
    r = admin_get("/v1/token", method="POST", headers=[("Authorization", "Bearer " + grant())])
    ck_eq(r.status, 405, "POST /v1/token on the admin port: 405")
    r = admin_get("/v1/tunnel?target=localhost:%d" % S["con"].echo_port)
    ck_eq(r.status, 404, "GET /v1/tunnel on the admin port: 404")
    r = admin_get("/")
    ck_eq(r.status, 404, "GET / on the admin port: 404")
    r = admin_get("http://localhost:%d/" % S["con"].echo_port)
    ck_eq(r.status, 404, "absolute-form forward on the admin port: 404 (no forwarding)")
    r = admin_get("/metrics", method="HEAD")
    ck_eq(r.status, 405, "HEAD /metrics: 405 (GET only)")
    samples = scrape()[0]
    ck_eq(sum(v for (n, _), v in samples.items() if n == "relaypro_tunnels_total"), 0,
          "no tunnel was opened by the admin port")
    ck_eq(metric("relaypro_tokens_issued_total"), 0, "no token was issued by the admin port")


@rt.case
def strict_parse_and_promtool():
    samples, types, text = scrape()
    ck(len(samples) >= 30, "strict parser: the scrape parses (%d series)" % len(samples))
    for fam, typ in (("relaypro_build_info", "gauge"), ("process_start_time_seconds", "gauge"),
                     ("relaypro_connections_open", "gauge"),
                     ("relaypro_connections_total", "counter"),
                     ("relaypro_tunnels_open", "gauge"), ("relaypro_tunnels_total", "counter"),
                     ("relaypro_tunnel_bytes_total", "counter"),
                     ("relaypro_tls_handshake_failures_total", "counter"),
                     ("relaypro_auth_failures_total", "counter"),
                     ("relaypro_tokens_issued_total", "counter"),
                     ("relaypro_rate_limit_bans_total", "counter"),
                     ("relaypro_registration_state", "gauge"),
                     ("relaypro_config_reloads_total", "counter"), ("relaypro_workers", "gauge")):
        ck_eq(types.get(fam), typ, "family %s is a %s" % (fam, typ))
    ver = subprocess.run([BIN, "version"], capture_output=True, text=True, timeout=10).stdout.split()
    ck_eq(val(samples, "relaypro_build_info", version=ver[1], arch=ver[2].split("/")[1]), 1,
          "build_info names the version and arch of `relaypro version`")
    start = val(samples, "process_start_time_seconds")
    ck(start is not None and abs(start - proc_start_time(S["relay"]["proc"].pid)) <= 2,
       "process_start_time_seconds is the process's start time in /proc (to the second)",
       (start, proc_start_time(S["relay"]["proc"].pid)))
    ck_eq(val(samples, "relaypro_registration_state", state="registered"), 1,
          "registration state: registered (securityToken set)")
    ck_eq(sum(v for (n, _), v in samples.items() if n == "relaypro_registration_state"), 1,
          "exactly one registration state is 1")
    ck_eq(val(samples, "relaypro_worker_info", worker="0", pid=str(S["relay"]["proc"].pid)), 1,
          "worker_info names this process")
    ck_eq(wait_metric("relaypro_connections_open", 1, listener="admin"), 1,
          "the scrape's own connection is the one admin connection")
    # the parser itself refuses what it should (it is a test of the test)
    for bad, why in (("x 1", "no newline at the end"), ("x 1\n", "sample without TYPE"),
                     ("# TYPE x counter\nx -1\n", "negative counter"),
                     ('# TYPE x gauge\nx{a="b\\q"} 1\n', "bad escape"),
                     ('# TYPE x gauge\nx{a="b} 1\n', "unterminated label"),
                     ("# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n", "family split"),
                     ("# TYPE 1x gauge\n", "bad name"), ("# note\n", "stray comment")):
        try:
            parse_exposition(bad)
            ck(False, "strict parser refuses: " + why)
        except ParseError:
            ck(True, "strict parser refuses: " + why)
    promtool = ensure_promtool()
    ck(promtool is not None, "promtool is installed (Debian package prometheus)")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        ck(r.returncode == 0, "promtool check metrics accepts the scrape",
           (r.stdout + r.stderr)[-800:])


@rt.case
def tunnel_moves_counters():
    target = "localhost:%d" % S["con"].echo_port
    before, _, _ = scrape()
    n = 100000
    st, _, sock = tunnel(rt.basic(USER, PASSWORD))
    ck_eq(st, 200, "tunnel to the echo opens")
    if st != 200:
        return
    ck_eq(wait_metric("relaypro_tunnels_open", 1, target=target), 1, "tunnels_open{target} is 1 while open")
    payload = os.urandom(n)
    back = rt.echo_roundtrip(sock, payload)
    ck(back == payload, "echo returns the %d bytes" % n)
    sock.close()
    ck_eq(wait_metric("relaypro_tunnels_open", 0, target=target), 0, "tunnels_open back to 0 after close")
    after, _, _ = scrape()

    def d(name, **labels):
        return (val(after, name, **labels) or 0) - (val(before, name, **labels) or 0)
    ck_eq(d("relaypro_tunnels_total", target=target), 1, "tunnels_total{target} +1")
    ck_eq(d("relaypro_tunnel_bytes_total", direction="up"), n, "bytes up +N")
    ck_eq(d("relaypro_tunnel_bytes_total", direction="down"), n, "bytes down +N")
    ck_eq(d("relaypro_connections_total", listener="https"), 1, "connections_total{https} +1")
    ck_eq(d("relaypro_tunnels_total", target="other"), 0, "other unchanged")

    # the plain listener too
    st, _, sock = tunnel(rt.basic(USER, PASSWORD), via_http=True)
    ck_eq(st, 200, "tunnel through the plain listener")
    if st == 200:
        ck(rt.echo_roundtrip(sock, b"x" * 10) == b"x" * 10, "plain tunnel echoes")
        sock.close()
    ck_eq(wait_metric("relaypro_tunnels_open", 0, target=target), 0, "plain tunnel closed")
    again, _, _ = scrape()
    ck_eq((val(again, "relaypro_connections_total", listener="http") or 0) -
          (val(after, "relaypro_connections_total", listener="http") or 0), 1,
          "connections_total{http} +1")
    ck_eq(val(again, "relaypro_tunnels_total", target=target), 2, "tunnels_total{target} is 2")


@rt.case
def websocket_tunnel_moves_counters():
    """A WebSocket tunnel (GET /v1/tunnel) counts like a CONNECT tunnel: one masked binary
    frame of N bytes up, the echo's frames down, payload bytes only."""
    target = "localhost:%d" % S["con"].echo_port
    r = rt.http_request("127.0.0.1", S["http"], "POST", "/v1/token",
                        headers=[("Authorization", "Bearer " + grant())])
    tok = r.json().get("access_token") if r.status == 200 else None
    ck(tok is not None, "access token for the WebSocket tunnel")
    if not tok:
        return
    rt.secret(tok)
    before, _, _ = scrape()
    n = 100
    status, _, ws, _ = wsclient.handshake_on(rt.connect("127.0.0.1", S["http"]), "target=" + target, tok)
    ck_eq(status, 101, "WebSocket upgrade: 101")
    if status != 101:
        return
    try:
        payload = os.urandom(n)
        ws.send(wsclient.frame(2, payload))
        got, _, _ = ws.read_data(n, timeout=10)
        ck(got == payload, "WebSocket echo returns the %d bytes" % n)
    finally:
        ws.close()
    ck_eq(wait_metric("relaypro_tunnels_open", 0, target=target), 0, "WebSocket tunnel closed")
    after, _, _ = scrape()

    def d(name, **labels):
        return (val(after, name, **labels) or 0) - (val(before, name, **labels) or 0)
    ck_eq(d("relaypro_tunnels_total", target=target), 1, "WebSocket: tunnels_total{target} +1")
    ck_eq(d("relaypro_tunnel_bytes_total", direction="up"), n, "WebSocket: bytes up +N (payload)")
    ck_eq(d("relaypro_tunnel_bytes_total", direction="down"), n, "WebSocket: bytes down +N (payload)")


@rt.case
def refused_targets_are_not_labels():
    for tgt in ("evil.test:443", "localhost:1", "127.0.0.1:%d" % S["con"].echo_port):
        st, _, _ = tunnel(rt.basic(USER, PASSWORD), target=tgt)
        ck_eq(st, 403, "CONNECT %s: 403" % tgt)
    _, _, text = scrape()
    ck("evil.test" not in text, "a refused host never becomes a label")
    ck('localhost:1"' not in text, "a refused port never becomes a label")
    ck("127.0.0." not in text, "no client or refused address in the scrape")


@rt.case
def auth_failures_by_reason():
    base, _, _ = scrape()

    def d(now, reason):
        return (val(now, "relaypro_auth_failures_total", reason=reason) or 0) - \
            (val(base, "relaypro_auth_failures_total", reason=reason) or 0)
    st, _, _ = tunnel(rt.basic(USER, WRONG))
    ck_eq(st, 407, "wrong password: 407")
    st, _, _ = tunnel({"Proxy-Authorization": "Bearer abc.def.ghi"})
    ck_eq(st, 407, "bad bearer token: 407")
    st, _, _ = tunnel(None)
    ck_eq(st, 407, "no credentials: 407")
    now, _, _ = scrape()
    ck_eq(d(now, "bad_password"), 1, "auth_failures{bad_password} +1")
    ck_eq(d(now, "token_invalid"), 1, "auth_failures{token_invalid} +1")
    ck_eq(d(now, "missing"), 1, "auth_failures{missing} +1")
    ck_eq(d(now, "other"), 0, "auth_failures{other} unchanged")

    # a token issued for a grant, and a tunnel with it
    r = rt.http_request("127.0.0.1", S["https"], "POST", "/v1/token", tls=True, verify=False,
                        server_hostname="localhost",
                        headers=[("Authorization", "Bearer " + grant())])
    ck_eq(r.status, 200, "POST /v1/token with a grant: 200")
    tok = r.json().get("access_token") if r.status == 200 else None
    if tok:
        rt.secret(tok)
    ck_eq(metric("relaypro_tokens_issued_total") - (val(base, "relaypro_tokens_issued_total") or 0), 1,
          "tokens_issued +1")
    if tok:
        st, _, sock = tunnel(rt.bearer(tok))
        ck_eq(st, 200, "tunnel with the issued access token")
        if st == 200:
            sock.close()


@rt.case
def rate_limit_ban():
    before = metric("relaypro_rate_limit_bans_total")
    statuses = []
    for _ in range(AUTH_FAIL_LIMIT + 2):
        st, _, _ = tunnel(rt.basic(USER, WRONG), source="127.0.0.2", via_http=True)
        statuses.append(st)
    ck(statuses[:AUTH_FAIL_LIMIT + 1] == [407] * (AUTH_FAIL_LIMIT + 1) and statuses[-1] == 429,
       "from 127.0.0.2: %d refusals, then 429" % (AUTH_FAIL_LIMIT + 1), statuses)
    ck_eq(metric("relaypro_rate_limit_bans_total") - before, 1, "rate_limit_bans +1")


@rt.case
def tls_handshake_failure():
    before = metric("relaypro_tls_handshake_failures_total")
    since = rt.log_offset(S["relay"]["log"])
    s = rt.connect("127.0.0.1", S["https"])
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP to the TLS port
    rt.read_until_close(s, timeout=5)
    s.close()
    ck(rt.wait_for_log(S["relay"]["log"], "tls.fail", timeout=5, since=since) is not None,
       "tls.fail logged")
    ck_eq(wait_metric("relaypro_tls_handshake_failures_total", before + 1), before + 1,
          "tls_handshake_failures +1")


@rt.case
def reloads_counted():
    ok0 = metric("relaypro_config_reloads_total", result="ok")
    bad0 = metric("relaypro_config_reloads_total", result="failed")
    log, cfg, pid = S["relay"]["log"], S["relay"]["cfg"], S["relay"]["proc"].pid
    ev, _ = relays.reload(pid, log)
    ck(ev is not None and ev.get("ok") is True, "reload logged ok", ev)
    ck_eq(metric("relaypro_config_reloads_total", result="ok") - ok0, 1, "reloads{ok} +1")
    good = open(cfg).read()
    with open(cfg + ".new", "w") as f:
        f.write(good + "noSuchKey = 1\n")
    os.replace(cfg + ".new", cfg)
    ev, _ = relays.reload(pid, log)
    ck(ev is not None and ev.get("ok") is False, "bad reload logged", ev)
    ck_eq(metric("relaypro_config_reloads_total", result="failed") - bad0, 1, "reloads{failed} +1")
    with open(cfg + ".new", "w") as f:
        f.write(good)
    os.replace(cfg + ".new", cfg)


@rt.case
def admin_outside_max_connections():
    held = []
    try:
        for _ in range(MAX_CONNS):
            # Tunnels, not idle sockets: at most half of maxConnections may be pending
            # (no tunnel admitted yet), the oldest is closed past that (test_pending.py).
            st, _, s = tunnel(rt.basic(USER, PASSWORD))
            if st == 200:
                held.append(s)
        got = wait_metric("relaypro_connections_open", MAX_CONNS, listener="https")
        ck_eq(got, MAX_CONNS, "the admin port answers with maxConnections (%d) held" % MAX_CONNS)
        before = metric("relaypro_connections_refused_total")
        r = rt.http_request("127.0.0.1", S["http"], "GET", "/healthz")
        ck_eq(r.status, 503, "one more relay connection: 503")
        ck_eq(metric("relaypro_connections_refused_total") - before, 1, "connections_refused +1")
        r = admin_get("/healthz")
        ck_eq(r.status, 200, "admin /healthz still answers at the limit")
    finally:
        for s in held:
            s.close()


@rt.case
def no_secrets_in_scrapes():
    scrape()
    ck(len(SCRAPES) >= 10, "scrapes collected (%d)" % len(SCRAPES))
    joined = "\n".join(SCRAPES)
    leaked = [t for t in rt.secrets() if t and t in joined]
    ck(not leaked, "no secret (security token, passwords, grants, tokens) in any scrape",
       "%d leaked" % len(leaked))
    ck(USER not in joined, "no user name in any scrape")
    ck("resp-metrics" not in joined, "no Responder id (sub) in any scrape")


@rt.case(timeout=90)
def workers_share_the_admin_port():
    https, admin = rt.free_port(), rt.free_port()
    w = start_relay("workers", https, admin=admin, extra=["workers = 2"])
    sup = w["proc"].pid
    samples = rt.wait_until(lambda: _try_scrape(admin), timeout=15)
    ck(samples is not None, "workers: the admin port answers")
    if samples is None:
        return
    infos = [dict(k[1]) for k in samples if k[0] == "relaypro_worker_info"]
    pids = [i.get("pid") for i in infos]
    wlabel = infos[0].get("worker") if len(infos) == 1 else None
    ck(wlabel in ("0", "1"), "worker_info names worker 0 or 1", infos)
    ck_eq(val(samples, "relaypro_workers"), 2, "workers gauge: 2")
    labelled = [k[0] for k in samples if "worker" in dict(k[1]) and k[0] != "relaypro_worker_info"]
    ck_eq(labelled, [], "with workers the samples are the sums (no worker label but on worker_info)")
    ck(len(pids) == 1 and pids[0] != str(sup) and rt.pid_alive(int(pids[0])),
       "the scrape names one worker process, not the supervisor", pids)
    if pids:
        try:
            with open("/proc/%s/stat" % pids[0]) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            ppid = -1
        ck_eq(ppid, sup, "that worker is the supervisor's child")
    w["proc"].stop(timeout=20)


@rt.case(timeout=60)
def admin_takes_no_proxy_header():
    """proxyProtocol applies to the proxy listeners only: with it on, the admin port still
    answers a scrape that starts with no PROXY header, from a trusted address."""
    https, admin = rt.free_port(), rt.free_port()
    p = start_relay("pp", https, admin=admin,
                    extra=["proxyProtocol = true", "trustedProxies = 127.0.0.0/8"])
    samples = _try_scrape(admin)
    ck(samples is not None, "proxyProtocol on: the admin port answers a plain scrape")
    p["proc"].stop(timeout=10)


def _try_scrape(port):
    try:
        return scrape(port)[0]
    except Exception:
        return None


@rt.case(timeout=90)
def upgrade_hands_over_the_admin_port():
    log, old = S["relay"]["log"], S["relay"]["proc"].pid
    since = rt.log_offset(log)
    os.kill(old, signal.SIGUSR2)
    ev = rt.wait_for_log(log, "upgrade.ready", timeout=20, since=since)
    ck(ev is not None, "upgrade.ready logged", ev)
    if not ev:
        return
    new = int(ev["new_pid"])
    rt.track_pid(new, "upgraded relay")
    rt.wait_until(lambda: not rt.pid_alive(old), timeout=20)

    def new_answers():
        s = _try_scrape(S["admin"])
        return s if s and val(s, "relaypro_worker_info", worker="0", pid=str(new)) == 1 else None
    samples = rt.wait_until(new_answers, timeout=10)
    ck(samples is not None, "after SIGUSR2 the new process answers on the admin port")
    ck(S["admin"] in listening_ports(new), "the new process holds the admin socket it was handed")


rt.finish()

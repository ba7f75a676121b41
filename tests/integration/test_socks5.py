#!/usr/bin/env python3
"""test_socks5.py — SOCKS5 upstream proxies (RFC 1928, RFC 1929), docs/configuration.md.

1. Which proxy a target takes for a given environment, checked against real curl: the rows
   of tests/unit/proxy_env_table.h (t_upstream checks the relay's routes against the same
   rows) are run through curl with those variables, against loopback proxies that record
   who was asked and how (HTTP, SOCKS5 with an address, SOCKS5 with a name).
2. The test proxies themselves, proven with curl (--socks5, --socks5-hostname,
   -x socks5h://user:password@): Debian's microsocks (with and without RFC 1929) and
   dante-server, and the project's own tests/lib/socks5server.py, which also misbehaves on
   request (closing at each step of the handshake, refusing with each reply code, X'FF',
   wrong versions, bytes right after its reply).
3. Registration through a SOCKS5 route (register.c with upstream_socks5_dial, driven by
   tests/tools/register_tool.c as the relay drives it): through microsocks with
   credentials (socks5h://), dante (socks5://: the relay resolves the console's name and
   sends the address) and the own proxy; the proxy's refusal (dante's ruleset, a wrong
   password, each close mid-handshake) is a register.fail line whose reason says what the
   proxy did, and the proxy's password is in no output.
4. The relay starts with a socks5h:// route (its tunnels through it: test_socks5_tunnel.py)
   and refuses socks4:// naming the supported schemes."""
import os
import re
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
TABLE = os.path.join(rt.TESTS_DIR, "unit", "proxy_env_table.h")
ORG = 77
DEP_TOKEN = "dep-socks5-token-91c"
SEC_TOKEN = "sec-socks5-token-4d7"
PROXY_PW = "proxy-pw-s0cks"
S = {}


def curl(args, env=None, timeout=30):
    """Run curl (no ~/.curlrc) with a scrubbed environment plus env; (rc, stdout, stderr)."""
    e = rt.clean_environ()
    e.update(env or {})
    r = subprocess.run(["curl", "-q", "-sS", "--max-time", "20"] + args, env=e,
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------- recorders (part 1)

class Recorder:
    """A loopback listener that records who connected and what they spoke: "http" (the
    first line) or "socks5" (with the CONNECT's address type and host), then closes."""

    def __init__(self, label):
        self.label = label
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = []
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def _read(self, c, n):
        buf = b""
        while len(buf) < n:
            b = c.recv(n - len(buf))
            if not b:
                raise OSError("closed")
            buf += b
        return buf

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                hit = {"kind": "?"}
                try:
                    c.settimeout(10)
                    first = self._read(c, 1)
                    if first == b"\x05":
                        n = self._read(c, 1)[0]
                        self._read(c, n)
                        c.sendall(b"\x05\x00")
                        req = self._read(c, 4)
                        if req[3] == 1:
                            host = socket.inet_ntop(socket.AF_INET, self._read(c, 4))
                        elif req[3] == 4:
                            host = socket.inet_ntop(socket.AF_INET6, self._read(c, 16))
                        else:
                            host = self._read(c, self._read(c, 1)[0]).decode()
                        self._read(c, 2)
                        self._record({"kind": "socks5", "atyp": req[3], "host": host})
                        c.sendall(b"\x05\x01\x00\x01" + bytes(6))  # general failure
                    else:
                        rest = c.recv(4096)
                        self._record({"kind": "http" if (first + rest)[:1].isalpha() else "tls",
                                      "line": (first + rest).split(b"\r\n")[0][:200]})
                except OSError:
                    self._record(hit)

    def _record(self, hit):
        """Kept before the client gets its answer (or the close): when curl has ended,
        every hit it caused is here."""
        with self.lock:
            self.hits.append(hit)

    def take(self):
        with self.lock:
            h, self.hits = self.hits, []
        return h


def table_rows():
    rows = []
    with open(TABLE) as f:
        for ln in f:
            m = re.match(r'^PROXY_ENV\("(\w+)", "([^"]*)", "(\w+)", "(\w+)"\)\s*$', ln)
            if m:
                rows.append(m.groups())
    return rows


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    S["con"] = rt.start_console(tmp, https=True, http=True, echo=False, tls_echo=False, org=ORG,
                                deployment_token=DEP_TOKEN, security_token=SEC_TOKEN, relay_id=31)
    for exe in ("curl", rt.MICROSOCKS, rt.DANTED):
        rt.check(os.access(exe if "/" in exe else "/usr/bin/" + exe, os.X_OK),
                 "%s installed (build.sh deps)" % exe)
    S["tool"], why = rt.build_tool("register_tool")
    rt.check(S["tool"] is not None, "register_tool built", why)


@rt.case(timeout=240)
def curl_picks_the_table_proxy():
    rows = table_rows()
    rt.check(len(rows) >= 25, "the table has its rows (%d)" % len(rows))
    rec = {k: Recorder(k) for k in ("A", "B", "C", "D", "DIRECT")}
    direct = rec["DIRECT"].port
    for scheme, env_words, relay_pick, curl_pick in rows:
        env = {}
        scheme_of = {}
        for w in env_words.split():
            name, _, v = w.partition("=")
            kind = "http"
            for pfx in ("socks5h:", "socks5:"):
                if v.startswith(pfx):
                    kind, v = pfx[:-1], v[len(pfx):]
            if v in rec and v != "DIRECT":
                env[name] = "%s://127.0.0.1:%d" % (kind, rec[v].port)
                scheme_of[v] = kind
            else:
                env[name] = v
        for r in rec.values():
            r.take()
        rc, _, err = curl(["--resolve", "console.example:%d:127.0.0.1" % direct, "-o", os.devnull,
                           "%s://console.example:%d/" % (scheme, direct)], env=env)
        hits = {k: r.take() for k, r in rec.items()}
        asked = [k for k, h in hits.items() if h]
        label = "curl [%s] %s" % (scheme, env_words or "(nothing set)")
        rt.check_eq(asked, [curl_pick], label + ": takes " + curl_pick)
        if curl_pick != "DIRECT" and asked == [curl_pick]:
            h = hits[curl_pick][0]
            kind = scheme_of.get(curl_pick, "http")
            if kind == "http":
                ok = h["kind"] == "http" and h["line"].startswith(
                    b"CONNECT console.example:" if scheme == "https" else b"GET http://console.example:")
            elif kind == "socks5":
                ok = h["kind"] == "socks5" and h["atyp"] == 1 and h["host"] == "127.0.0.1"
            else:
                ok = h["kind"] == "socks5" and h["atyp"] == 3 and h["host"] == "console.example"
            rt.check(ok, label + ": spoken to as " + kind, h)
        if relay_pick != curl_pick:
            # the deliberate differences (upper-case HTTP_PROXY) must still be what curl does
            rt.check("HTTP_PROXY=" in env_words and scheme == "http",
                     label + ": a documented difference (HTTP_PROXY)")


# ---------------------------------------------------------------- proxies, with curl (part 2)

@rt.case(timeout=120)
def proxies_work_with_curl():
    tmp = S["tmp"]
    servers = [
        ("own", rt.start_socks5_server(tmp, "own", name="own-open"), None),
        ("own+auth", rt.start_socks5_server(tmp, "own", name="own-auth", user="alice",
                                            password=PROXY_PW), ("alice", PROXY_PW)),
        ("microsocks", rt.start_socks5_server(tmp, "microsocks", name="ms-open"), None),
        ("microsocks+auth", rt.start_socks5_server(tmp, "microsocks", name="ms-auth", user="bob",
                                                   password=PROXY_PW), ("bob", PROXY_PW)),
        ("dante", rt.start_socks5_server(tmp, "dante", name="dante-open"), None),
    ]
    S["servers"] = {k: h for k, h, _ in servers}
    for label, h, cred in servers:
        u, p = cred if cred else (None, None)
        flag_cred = ["--proxy-user", "%s:%s" % cred] if cred else []
        rc, body, err = curl(["--socks5", "127.0.0.1:%d" % h.port] + flag_cred +
                             ["http://localhost:%d/api/app/check" % S["con"].http_port])
        rt.check(rc == 0 and b"test-console" in body, "%s: curl --socks5" % label, (rc, err))
        rc, body, err = curl(["--socks5-hostname", "127.0.0.1:%d" % h.port] + flag_cred +
                             ["http://localhost:%d/api/app/check" % S["con"].http_port])
        rt.check(rc == 0 and b"test-console" in body, "%s: curl --socks5-hostname" % label, (rc, err))
        rc, body, err = curl(["-x", h.url("socks5h", u, p), "--cacert", S["con"].ca,
                              "https://localhost:%d/api/app/check" % S["con"].https_port])
        rt.check(rc == 0 and b"test-console" in body,
                 "%s: curl -x socks5h://...: TLS to the console through it" % label, (rc, err))
        if cred:
            rc, _, err = curl(["-x", h.url("socks5h", u, "wrong-pw"),
                               "http://localhost:%d/" % S["con"].http_port])
            rt.check(rc == 97, "%s: a wrong password is refused (curl exit 97)" % label, (rc, err))
            rc, _, err = curl(["-x", h.url("socks5h"), "http://localhost:%d/" % S["con"].http_port])
            rt.check(rc == 97, "%s: no credentials: no acceptable method (curl exit 97)" % label,
                     (rc, err))
    own = S["servers"]["own"]
    reqs = own.events("request")
    rt.check(any(r["atyp"] == "ipv4" and r["host"] == "127.0.0.1" for r in reqs) and
             any(r["atyp"] == "name" and r["host"] == "localhost" for r in reqs),
             "own proxy: logged curl's address (--socks5) and name (--socks5-hostname) requests",
             reqs)
    auth = S["servers"]["own+auth"].events("auth")
    rt.check(any(a["ok"] for a in auth) and any(not a["ok"] for a in auth),
             "own proxy: logged a good and a refused RFC 1929 login", auth)
    rt.check(PROXY_PW not in S["servers"]["own+auth"].log_text(), "own proxy: never logs the password")
    rt.check("connected to localhost:%d" % S["con"].http_port in S["servers"]["microsocks"].log_text(),
             "microsocks: logged the connection")
    rt.check("127.0.0.1.%d" % S["con"].http_port in S["servers"]["dante"].log_text(),
             "dante: logged the connection")


# What curl sees from each misbehaving mode of the own proxy, and what the proxy logs.
MODES = [
    ("close-after-greeting", {}, "closed", "after greeting"),
    ("close-mid-method", {}, "closed", "mid method"),
    ("close-after-method", {}, "closed", "after method"),
    ("close-after-auth", {"user": "alice", "password": PROXY_PW}, "closed", "after auth request"),
    ("close-after-request", {}, "closed", "after request"),
    ("close-mid-reply", {}, "closed", "mid reply"),
    ("no-acceptable", {}, "closed", "no acceptable method"),
    ("wrong-method", {}, "closed", "chose a method not offered"),
    ("bad-version", {}, "closed", "bad version"),
    ("bad-atyp", {}, "closed", "bad reply address type"),
]


@rt.case(timeout=120)
def own_proxy_misbehaves_on_request():
    tmp = S["tmp"]
    url = "http://localhost:%d/api/app/check" % S["con"].http_port
    for mode, opts, ev, stage in MODES:
        h = rt.start_socks5_server(tmp, "own", name="own-" + mode, mode=mode, **opts)
        rc, body, err = curl(["-x", h.url("socks5h", opts.get("user"), opts.get("password")), url])
        rt.check(rc != 0 and b"test-console" not in body, "%s: curl fails" % mode, (rc, err))
        logged = [r.get("stage") for r in h.events(ev)]
        rt.check(stage in logged, "%s: the proxy did what it was told (%s)" % (mode, stage), logged)
        h.stop()
    for rep in range(1, 10):
        h = rt.start_socks5_server(tmp, "own", name="own-refuse-%d" % rep, mode="refuse", rep=rep)
        rc, _, err = curl(["-x", h.url("socks5h"), url])
        rt.check(rc == 97 and [r["rep"] for r in h.events("reply")] == [rep],
                 "refuse %d: curl exit 97, the proxy answered REP %d" % (rep, rep), (rc, err))
        h.stop()
    # bytes sent right after the reply belong to the tunnel: curl reads them as the answer
    extra = b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nextra!"
    h = rt.start_socks5_server(tmp, "own", name="own-reply-extra", mode="reply-extra", extra=extra)
    rc, body, err = curl(["-x", h.url("socks5h"), url])
    rt.check(rc == 0 and body == b"extra!", "reply-extra: bytes after the reply reach the client",
             (rc, body[:100], err))
    h.stop()


# ---------------------------------------------------------------- registration (part 3)

def write_config(name, proxy_enabled=True):
    path = os.path.join(S["tmp"], name + ".ini")
    with open(path, "w") as f:
        f.write("consoleAddress = %s\norganizationId = %d\n"
                "relayProId = 12345678-1234-4abc-8def-1234567890ab\ndeploymentToken = %s\n"
                "consoleCACert = %s\nproxyEnabled = %s\nserverName = relay.test\n"
                % (S["con"].address("https"), ORG, DEP_TOKEN, S["con"].ca,
                   "true" if proxy_enabled else "false"))
    return path


def register(name, env, timeout=30, args=()):
    """register_tool to its end: (exit code, stdout, log records, all output)."""
    p = rt.start_process([S["tool"], write_config(name)] + list(args), env=env, tmpdir=S["tmp"],
                         name=name)
    rc = p.wait(timeout)
    if rc is None:
        p.kill()
    return rc, p.stdout(), rt.read_json_lines(p.stderr_path), p.stdout() + p.stderr()


def first_fail(recs):
    for r in recs:
        if r.get("event") == "register.fail":
            return r
    return None


def no_secrets(label, text):
    rt.check(PROXY_PW not in text and DEP_TOKEN not in text and SEC_TOKEN not in text,
             label + ": no password or token in any output")


@rt.case(timeout=180)
def registration_through_socks5():
    con = S["con"]
    sv = S["servers"]
    hp = con.https_port
    cases = [
        ("microsocks, socks5h:// with credentials", sv["microsocks+auth"],
         {"ALL_PROXY": sv["microsocks+auth"].url("socks5h", "bob", PROXY_PW)},
         lambda h: "connected to localhost:%d" % hp in h.log_text()),
        ("dante, socks5:// (the relay resolves)", sv["dante"],
         {"https_proxy": sv["dante"].url("socks5")},
         lambda h: "127.0.0.1.%d" % hp in h.log_text()),
        ("own, socks5h:// with credentials", sv["own+auth"],
         {"HTTPS_PROXY": sv["own+auth"].url("socks5h", "alice", PROXY_PW)},
         lambda h: any(r["atyp"] == "name" and r["host"] == "localhost" and r["port"] == hp
                       for r in h.events("request"))),
        ("own, socks5:// (an address is sent, never the name)", sv["own"],
         {"all_proxy": sv["own"].url("socks5")},
         lambda h: any(r["atyp"] == "ipv4" and r["host"] == "127.0.0.1" and r["port"] == hp
                       for r in h.events("request"))),
    ]
    for i, (label, h, env, seen) in enumerate(cases):
        before = len(con.register_attempts())
        rc, out, recs, text = register("reg-ok-%d" % i, env)
        rt.check(rc == 0 and "registered relayId=31" in out, label + ": registered", (rc, out, text[-800:]))
        rt.check(seen(h), label + ": the proxy carried it")
        rt.check(len(con.register_attempts()) == before + 1, label + ": the console saw one attempt")
        no_secrets(label, text)


# (proxy, environment, the reason register.fail must give)
def refusal_cases():
    tmp = S["tmp"]
    hp = S["con"].https_port
    blocked = rt.start_socks5_server(tmp, "dante", name="dante-blocked", block_ports=[hp])
    out = [("dante refuses by its ruleset", {"ALL_PROXY": blocked.url("socks5h")},
            "refused the connection to localhost:%d: connection not allowed by ruleset (reply 2)" % hp)]
    ms = S["servers"]["microsocks+auth"]
    out.append(("microsocks, wrong password", {"ALL_PROXY": ms.url("socks5h", "bob", "wrong-" + PROXY_PW)},
                "the proxy refused the user name or password"))
    out.append(("microsocks, no credentials", {"ALL_PROXY": ms.url("socks5h")},
                "the proxy requires authentication and the proxy URL has no user:password"))
    for mode, opts, reason in (
            ("close-after-greeting", {}, "closed the connection during the greeting"),
            ("close-mid-method", {}, "closed the connection during the greeting"),
            ("close-after-auth", {"user": "alice", "password": PROXY_PW},
             "closed the connection during authentication"),
            ("close-after-request", {}, "closed the connection before answering the CONNECT"),
            ("close-mid-reply", {}, "closed the connection in the middle of its CONNECT reply"),
            ("bad-version", {}, "not a SOCKS5 proxy"),
            ("wrong-method", {}, "chose an authentication method that was not offered"),
            ("bad-atyp", {}, "bad address type in the proxy's reply")):
        h = rt.start_socks5_server(tmp, "own", name="reg-own-" + mode, mode=mode, **opts)
        out.append(("own proxy " + mode, {"ALL_PROXY": h.url("socks5h", opts.get("user"), opts.get("password"))},
                    reason))
    h = rt.start_socks5_server(tmp, "own", name="reg-own-refuse5", mode="refuse", rep=5)
    out.append(("own proxy refuses with REP 5", {"ALL_PROXY": h.url("socks5")},
                "refused the connection to localhost:%d: connection refused (reply 5)" % hp))
    return out


@rt.case(timeout=300)
def registration_refusals_are_logged():
    for i, (label, env, reason) in enumerate(refusal_cases()):
        rc, out, recs, text = register("reg-fail-%d" % i, env, timeout=30,
                                       args=["--backoff", "50", "100", "--timeout", "2"])
        ev = first_fail(recs)
        rt.check(rc == 3 and "registered" not in out, label + ": not registered (timed out, exit 3)",
                 (rc, out))
        rt.check(ev is not None and reason in ev.get("reason", ""), label + ": register.fail says why",
                 ev)
        no_secrets(label, text)


# ---------------------------------------------------------------- the relay (part 4)

@rt.case
def relay_takes_a_socks5_route():
    path = os.path.join(S["tmp"], "relay-socks.ini")
    with open(path, "w") as f:
        f.write("consoleAddress = localhost\npasswordFile = users.txt\nproxyEnabled = true\n"
                "serverName = localhost\n[httpsProxy]\nlisten =\n[httpProxy]\nlisten = 127.0.0.1:%d\n"
                "[logger]\nfileName = relay-socks.log\n" % rt.free_port())
    with open(os.path.join(S["tmp"], "users.txt"), "w") as f:
        f.write("u:p\n")
    env = dict(rt.clean_environ(), ALL_PROXY="socks5h://u:%s@127.0.0.1:1080" % PROXY_PW)
    if os.geteuid() == 0:
        env["RELAYPRO_USER"] = "root"
    # tunnels through SOCKS5 are test_socks5_tunnel.py's; here: such a route starts
    p = rt.start_process([BIN, "run", "-c", path], env=env, tmpdir=S["tmp"], name="relay-socks",
                         cwd=S["tmp"])
    log = os.path.join(S["tmp"], "relay-socks.log")
    rt.check(rt.wait_for_log(log, "start", timeout=15) is not None,
             "a socks5h:// tunnel route: the relay starts")
    p.stop()
    rt.check(PROXY_PW not in rt._read_text(log) + p.stderr(), "the log does not show the password")
    r = subprocess.run([BIN, "run", "-c", path], env=dict(env, ALL_PROXY="socks4://127.0.0.1:1080"),
                       capture_output=True, text=True, timeout=30, cwd=S["tmp"])
    rt.check(r.returncode != 0 and "ALL_PROXY: only http://, https://, socks5:// and socks5h://" in r.stderr,
             "socks4://: refused at start, naming the supported schemes", r.stderr[-500:])


if __name__ == "__main__":
    rt.main("socks5", deadline=900)

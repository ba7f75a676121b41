#!/usr/bin/env python3
"""test_https_proxy.py — reaching the console through an https:// upstream proxy (docs/configuration.md)
with a real TLS proxy nobody here wrote: Debian's stunnel4 terminating TLS in front of
Debian's tinyproxy, both on loopback. The proxy's certificates are minted here with the
openssl command-line tool from a test CA (plus a second, untrusted CA).

Cases: CONNECT tunnel through the https proxy echoes 200 KiB byte-exact both ways (plain
and TLS listener); a client's half-close ends the tunnel; Basic credentials from the proxy URL (right and wrong, never logged);
proxy certificate from an untrusted CA -> 502 and a warn line naming the proxy and the
reason; certificate for another name -> 502; proxy down -> 502; NO_PROXY bypass stays
direct; absolute-form http:// forwarded through it; bytes a proxy sends right after its
200 (a small proxy written here, plain and TLS) and pipelined client bytes are not lost; registration through it (TLS to the
proxy, the console's TLS inside); start-up refusals (https proxy given by IP address, an
unreadable RELAYPRO_PROXY_CA_FILE); TLS started on the socket to the proxy keeps its epoll
registration (the relay under strace: no epoll_ctl fails)."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
TINYPROXY = rt.TINYPROXY
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "/usr/bin/stunnel4"
PROXY_SECRET = "proxy-secret-https-7"
S = {}


def openssl(*argv):
    r = subprocess.run(["openssl"] + list(argv), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (argv[0], r.stderr[-500:]))


def make_ca(d, name):
    key, pem = os.path.join(d, name + "-key.pem"), os.path.join(d, name + ".pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=relaypro test %s" % name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pem, key


def make_leaf(d, name, ca, dns):
    key, csr, pem = (os.path.join(d, name + s) for s in ("-key.pem", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % dns)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=%s" % dns)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
            "0x%s" % os.urandom(8).hex(), "-days", "2", "-sha256", "-extfile", ext, "-out", pem)
    return pem, key


def start_tinyproxy(name, connect_ports, auth=None):
    return rt.start_tinyproxy(S["tmp"], name, connect_ports, auth)


def start_stunnel(name, backend_port, leaf):
    """stunnel4 as the TLS front of a proxy: accepts TLS on 127.0.0.1:<port>, forwards the
    plaintext to tinyproxy."""
    port = rt.free_port()
    conf = os.path.join(S["tmp"], name + ".conf")
    log = os.path.join(S["tmp"], name + ".log")
    with open(conf, "w") as f:
        f.write("foreground = yes\npid =\noutput = %s\ndebug = 5\n[https-proxy]\n"
                "accept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
                % (log, port, backend_port, leaf[0], leaf[1]))
    p = rt.start_process([STUNNEL, conf], tmpdir=S["tmp"], name=name)
    rt.check(rt.wait_for_port("127.0.0.1", port, timeout=10), name + " listening")
    return p, port, log


def start_relay(name, env, tls_listener=False, extra="", wrap=()):
    port = rt.free_port()
    cfg = os.path.join(S["tmp"], name + ".ini")
    relays.write_config(cfg, relays.chaining_config(
        port, (S["con"].echo_port, S["con"].http_port), name + ".log", tls=tls_listener,
        top=extra.splitlines()), atomic=False)
    full = {"RELAYPRO_PROXY_CA_FILE": S["ca"][0]}
    full.update(env)
    p = rt.start_process(list(wrap) + [BIN, "run", "-c", cfg], env=full, tmpdir=S["tmp"],
                         name=name)
    log = os.path.join(S["tmp"], name + ".log")
    rt.check(rt.wait_for_log(log, "start", timeout=15), name + " started")
    return p, port, log


def text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tunnel(relay_port, tls=False, size=200 * 1024):
    st, _, sock = rt.connect_tunnel("127.0.0.1", relay_port, "localhost:%d" % S["con"].echo_port,
                                    headers=rt.basic("u", "p"), tls=tls)
    if st != 200:
        return st, None
    payload = os.urandom(size)
    got = rt.echo_roundtrip(sock, payload, timeout=20)
    sock.close()
    return st, got == payload


def https_proxy_url(port, cred=""):
    return "https://%slocalhost:%d" % (cred, port)


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    with open(os.path.join(tmp, "users.txt"), "w") as f:
        f.write("u:p\n")
    rt.check(os.access(TINYPROXY, os.X_OK), "tinyproxy installed (build.sh deps)")
    rt.check(os.access(STUNNEL, os.X_OK), "stunnel4 installed (build.sh deps)")
    S["con"] = rt.start_console(tmp, https=False, tls_echo=False)
    S["ca"] = make_ca(tmp, "proxy-ca")
    S["other_ca"] = make_ca(tmp, "other-ca")
    S["leaf"] = make_leaf(tmp, "proxy-leaf", S["ca"], "localhost")
    S["untrusted_leaf"] = make_leaf(tmp, "untrusted-leaf", S["other_ca"], "localhost")
    S["wrong_name_leaf"] = make_leaf(tmp, "wrong-name-leaf", S["ca"], "proxy.invalid")
    S["tp"], S["tp_port"], S["tp_log"] = start_tinyproxy(
        "tp", [S["con"].echo_port, S["con"].http_port])
    S["st"], S["st_port"], S["st_log"] = start_stunnel("stunnel", S["tp_port"], S["leaf"])


@rt.case
def tunnel_through_https_proxy():
    relay, port, log = start_relay("relay-https", {"HTTPS_PROXY": https_proxy_url(S["st_port"]),
                                                   "NO_PROXY": "example.invalid"})
    before = text(S["tp_log"]).count("localhost:%d" % S["con"].echo_port)
    st, ok = tunnel(port)
    rt.check_eq(st, 200, "CONNECT through the https proxy: 200")
    rt.check(ok, "200 KiB echoed byte-exact through TLS to the proxy (plain listener)")
    rt.check(text(S["tp_log"]).count("localhost:%d" % S["con"].echo_port) > before,
             "tinyproxy (behind stunnel) logged the CONNECT to the console")
    rt.check("accepted connection" in text(S["st_log"]).lower() or
             "service [https-proxy] accepted" in text(S["st_log"]).lower(),
             "stunnel accepted the relay's TLS connection")
    ev = rt.wait_for_log(log, lambda e: e.get("event") == "tunnel.close", timeout=10)
    rt.check(ev is not None and ev.get("bytes_up") == 200 * 1024 and
             ev.get("bytes_down") == 200 * 1024, "tunnel.close counts every byte each way", ev)
    relay.stop()
    # The TLS listener: two TLS engines in one connection (client side and proxy hop).
    relay, port, log = start_relay("relay-https-tls", {"HTTPS_PROXY": https_proxy_url(S["st_port"])},
                                   tls_listener=True)
    st, ok = tunnel(port, tls=True)
    rt.check(st == 200 and ok, "200 KiB echoed byte-exact, TLS listener and TLS proxy hop", st)
    relay.stop()


@rt.case
def tls_to_the_proxy_keeps_the_poll_registration():
    # TLS starts on the socket already in the loop's epoll set: it must stay registered, not
    # be forgotten and added again (a failing EPOLL_CTL_ADD, EEXIST, then a MOD). Every
    # epoll_ctl of the relay is traced; none may fail. Counted, not timed.
    if os.environ.get("RELAYPRO_POLL_BACKEND") == "poll":
        rt.skip("epoll_ctl trace", "the relay runs on poll() here")
        return
    trace = os.path.join(S["tmp"], "epoll_ctl.trace")
    wrap, why = rt.strace_argv("-o", trace, "-e", "trace=epoll_ctl")
    if wrap is None:
        rt.skip("epoll_ctl trace", why)
        return
    relay, port, log = start_relay("relay-https-traced",
                                   {"HTTPS_PROXY": https_proxy_url(S["st_port"])}, wrap=wrap)
    st, ok = tunnel(port, size=16 * 1024)
    rt.check(st == 200 and ok, "a tunnel through the https proxy (traced relay)", st)
    relay.stop()  # strace ends with the relay's group: the trace is complete
    # "epoll_ctl(" and, when another traced thread cut a call in two, its
    # "<... epoll_ctl resumed>" line with the result
    calls = [ln for ln in text(trace).splitlines() if "epoll_ctl" in ln]
    rt.check(any("EPOLL_CTL_ADD" in ln for ln in calls), "the relay's epoll_ctl calls were traced",
             len(calls))
    failed = [ln for ln in calls if "= -1" in ln]
    rt.check(not failed, "no epoll_ctl failed (%d calls)" % len(calls), failed[:5])


EAGER = b"first-bytes-from-upstream-" * 5


@rt.case
def bytes_after_the_proxy_answer():
    for kind in ("http", "https"):
        fake = rt.EagerProxy(EAGER, S["leaf"] if kind == "https" else None)
        url = "%s://localhost:%d" % (kind, fake.port)
        relay, port, log = start_relay("relay-eager-" + kind, {"HTTPS_PROXY": url})
        st, _, sock = rt.connect_tunnel("127.0.0.1", port, "localhost:%d" % S["con"].echo_port,
                                        headers=rt.basic("u", "p"), tls=False,
                                        pipelined=b"pipelined-from-client")
        rt.check_eq(st, 200, "%s proxy that sends tunnel bytes with its 200: tunnel open" % kind)
        if st == 200:
            want = EAGER + b"pipelined-from-client"
            got = b""
            sock.settimeout(10)
            for _ in range(100):
                if len(got) >= len(want):
                    break
                d = sock.recv(4096)
                if not d:
                    break
                got += d
            rt.check_eq(got, want, "%s proxy: bytes after its answer head reach the client first, "
                        "then the pipelined bytes come back" % kind)
            sock.close()
        relay.stop()
        fake.stop()


@rt.case
def half_close_through_https_proxy():
    # The TLS hop cannot carry a half-close (docs/design.md): the client's EOF becomes
    # close_notify to the proxy, which passes it on; the console (echo: on EOF it closes)
    # then ends, and so does the tunnel -- nothing stays open after the client has gone.
    relay, port, log = start_relay("relay-https-hc", {"HTTPS_PROXY": https_proxy_url(S["st_port"])})
    st, _, sock = rt.connect_tunnel("127.0.0.1", port, "localhost:%d" % S["con"].echo_port,
                                    headers=rt.basic("u", "p"), tls=False)
    rt.check_eq(st, 200, "half-close: tunnel open")
    if st == 200:
        payload = os.urandom(3000)
        got = rt.echo_roundtrip(sock, payload)
        rt.check(got == payload, "half-close: echoed before the EOF", len(got))
        sock.shutdown(socket.SHUT_WR)
        rest = rt.read_until_close(sock, timeout=10)
        rt.check_eq(rest, b"", "half-close: the tunnel ends after the client's EOF (EOF seen)")
        ev = rt.wait_for_log(log, "tunnel.close", timeout=10)
        rt.check(ev is not None and ev.get("bytes_up") == 3000, "half-close: tunnel.close logged", ev)
        sock.close()
    relay.stop()


@rt.case
def https_proxy_with_credentials():
    tp, tport, tlog = start_tinyproxy("tp-auth", [S["con"].echo_port], auth=("proxyuser", PROXY_SECRET))
    st_p, st_port, _ = start_stunnel("stunnel-auth", tport, S["leaf"])
    relay, port, log = start_relay("relay-https-auth",
                                   {"HTTPS_PROXY": https_proxy_url(st_port, "proxyuser:%s@" % PROXY_SECRET)})
    st, ok = tunnel(port, size=40000)
    rt.check(st == 200 and ok, "Basic credentials through the https proxy: tunnel works", st)
    relay.stop()
    relay, port, log2 = start_relay("relay-https-badauth",
                                    {"HTTPS_PROXY": https_proxy_url(st_port, "proxyuser:nope-bad-9@")})
    st, _ = tunnel(port)
    rt.check_eq(st, 502, "wrong credentials through the https proxy -> 502")
    ev = rt.wait_for_log(log2, "upstream.proxy_refused", timeout=5)
    rt.check(ev is not None and ev.get("status") in (401, 407) and ev.get("proxy") == "localhost",
             "refusal logged with the proxy's status", ev)
    logs = text(log) + text(log2) + relay.stdout() + relay.stderr()
    rt.check(PROXY_SECRET not in logs and "nope-bad-9" not in logs, "proxy credentials never logged")
    relay.stop()
    st_p.stop()
    tp.stop()


def refused_tls(name, leaf, want_reason):
    st_p, st_port, _ = start_stunnel("stunnel-" + name, S["tp_port"], leaf)
    relay, port, log = start_relay("relay-" + name, {"HTTPS_PROXY": https_proxy_url(st_port)})
    before = text(S["tp_log"]).count("CONNECT")
    st, body = rt.connect_tunnel("127.0.0.1", port, "localhost:%d" % S["con"].echo_port,
                                 headers=rt.basic("u", "p"), tls=False)[0::2]
    rt.check_eq(st, 502, "%s: 502 to the client" % name)
    rt.check(isinstance(body, bytes) and b"upstream_unreachable" in body,
             "%s: error code upstream_unreachable" % name, body)
    ev = rt.wait_for_log(log, "upstream.proxy_tls_fail", timeout=5)
    rt.check(ev is not None and ev.get("level") == "warn" and ev.get("proxy") == "localhost" and
             ev.get("reason") == want_reason, "%s: warn line names the proxy and %s" % (name, want_reason), ev)
    rt.check_eq(text(S["tp_log"]).count("CONNECT"), before,
                "%s: no CONNECT reached the proxy behind the TLS" % name)
    relay.stop()
    st_p.stop()


@rt.case
def untrusted_and_wrong_name():
    refused_tls("untrusted", S["untrusted_leaf"], "certificate_not_trusted")
    refused_tls("wrong-name", S["wrong_name_leaf"], "certificate_name_mismatch")
    # Without RELAYPRO_PROXY_CA_FILE the test CA is trusted by nobody: refused as well.
    relay, port, log = start_relay("relay-no-ca", {"HTTPS_PROXY": https_proxy_url(S["st_port"]),
                                                   "RELAYPRO_PROXY_CA_FILE": ""})
    st, _ = tunnel(port)
    rt.check_eq(st, 502, "the proxy's CA not configured -> 502 (never unverified)")
    relay.stop()
    # The console CA (consoleCACert) is an anchor for the proxy too.
    relay, port, log = start_relay("relay-console-ca", {"HTTPS_PROXY": https_proxy_url(S["st_port"]),
                                                        "RELAYPRO_PROXY_CA_FILE": ""},
                                   extra="consoleCACert = %s\n" % S["ca"][0])
    st, ok = tunnel(port, size=20000)
    rt.check(st == 200 and ok, "the proxy's CA given as consoleCACert is trusted", st)
    relay.stop()


@rt.case
def proxy_down_and_no_proxy():
    relay, port, log = start_relay("relay-https-dead", {"HTTPS_PROXY": https_proxy_url(rt.free_port())})
    st, _ = tunnel(port)
    rt.check_eq(st, 502, "https proxy down -> 502")
    relay.stop()
    before = text(S["tp_log"]).count("CONNECT")
    relay, port, log = start_relay("relay-https-noproxy", {"HTTPS_PROXY": https_proxy_url(S["st_port"]),
                                                           "NO_PROXY": "other.example,localhost"})
    st, ok = tunnel(port, size=20000)
    rt.check(st == 200 and ok, "NO_PROXY: tunnel works directly", st)
    rt.check_eq(text(S["tp_log"]).count("CONNECT"), before, "NO_PROXY: the proxy saw no CONNECT")
    relay.stop()


@rt.case
def absolute_form_through_https_proxy():
    relay, port, log = start_relay("relay-https-abs", {"HTTPS_PROXY": https_proxy_url(S["st_port"]),
                                                       "HTTP_PROXY": https_proxy_url(S["st_port"])})
    before = text(S["tp_log"]).count("localhost:%d" % S["con"].http_port)
    body = rt.absolute_get(port, "localhost", S["con"].http_port, "/api/app/check",
                           rt.basic("u", "p"))
    rt.check(body.startswith(b"HTTP/1.1 200") and b"test-console" in body,
             "absolute-form forwarded through the https proxy", body[:200])
    rt.check(text(S["tp_log"]).count("localhost:%d" % S["con"].http_port) > before,
             "the proxy carried it")
    relay.stop()


@rt.case
def registration_through_https_proxy():
    con = rt.start_console(S["tmp"], **rt.HTTPS_ONLY, org=5,
                           deployment_token="dep-via-https-proxy", security_token="sec-via-https-proxy",
                           relay_id=12, name="console-reg")
    tp, tport, tlog = start_tinyproxy("tp-reg", [con.https_port], auth=("reguser", PROXY_SECRET))
    st_p, st_port, st_log = start_stunnel("stunnel-reg", tport, S["leaf"])
    cfg = os.path.join(S["tmp"], "relay-reg.ini")
    relays.write_config(cfg, relays.registration_config(con, "relay-reg.log", top=["proxyEnabled = true"]),
                        atomic=False)
    relay = rt.start_process([BIN, "run", "-c", cfg], tmpdir=S["tmp"], name="relay-reg",
                             env={"HTTPS_PROXY": https_proxy_url(st_port, "reguser:%s@" % PROXY_SECRET),
                                  "RELAYPRO_PROXY_CA_FILE": S["ca"][0]})
    log = os.path.join(S["tmp"], "relay-reg.log")
    ev = rt.wait_for_log(log, "register.saved", timeout=30)
    rt.check(ev is not None and ev.get("relay_id") == 12,
             "registration through the https proxy succeeded (TLS in TLS)", ev)
    rt.check("localhost:%d" % con.https_port in text(tlog), "the registration went through tinyproxy")
    saved = text(cfg)
    rt.check("securityToken = sec-via-https-proxy" in saved, "the security token was saved")
    logs = text(log) + relay.stdout() + relay.stderr()
    rt.check(PROXY_SECRET not in logs and "sec-via-https-proxy" not in logs, "no secret logged")
    relay.stop()
    # A proxy whose certificate is not trusted: registration fails and says why.
    st_bad, bad_port, _ = start_stunnel("stunnel-reg-bad", tport, S["untrusted_leaf"])
    relays.write_config(cfg, relays.registration_config(con, "relay-reg-bad.log", top=["proxyEnabled = true"]),
                        atomic=False)
    relay = rt.start_process([BIN, "run", "-c", cfg], tmpdir=S["tmp"], name="relay-reg-bad",
                             env={"HTTPS_PROXY": https_proxy_url(bad_port),
                                  "RELAYPRO_PROXY_CA_FILE": S["ca"][0]})
    ev = rt.wait_for_log(os.path.join(S["tmp"], "relay-reg-bad.log"), "register.fail", timeout=30)
    rt.check(ev is not None and "certificate_not_trusted" in ev.get("reason", "") and
             "localhost" in ev.get("reason", ""), "registration through an untrusted proxy fails, reason logged", ev)
    relay.stop()
    st_bad.stop()
    st_p.stop()
    tp.stop()
    con.stop()


@rt.case
def startup_refusals():
    cfg = os.path.join(S["tmp"], "relay-https.ini")
    env = dict(rt.clean_environ(), HTTPS_PROXY="https://127.0.0.1:%d" % S["st_port"])
    r = subprocess.run([BIN, "run", "-c", cfg], env=env, capture_output=True, text=True,
                       timeout=20, cwd=S["tmp"])
    rt.check(r.returncode != 0 and "must be named by its DNS name" in r.stderr,
             "an https:// proxy given by IP address is refused at start", r.stderr)
    env = dict(rt.clean_environ(), HTTPS_PROXY=https_proxy_url(S["st_port"]),
               RELAYPRO_PROXY_CA_FILE=os.path.join(S["tmp"], "missing-ca.pem"))
    r = subprocess.run([BIN, "run", "-c", cfg], env=env, capture_output=True, text=True,
                       timeout=20, cwd=S["tmp"])
    rt.check(r.returncode != 0 and "RELAYPRO_PROXY_CA_FILE" in r.stderr and "missing-ca.pem" in r.stderr,
             "an unreadable RELAYPRO_PROXY_CA_FILE stops the start with a clear error", r.stderr)
    env = dict(rt.clean_environ(), HTTPS_PROXY="ftp://localhost:21")
    r = subprocess.run([BIN, "run", "-c", cfg], env=env, capture_output=True, text=True,
                       timeout=20, cwd=S["tmp"])
    rt.check(r.returncode != 0 and "only http://, https://, socks5:// and socks5h://" in r.stderr,
             "another scheme is refused at start", r.stderr)


if __name__ == "__main__":
    rt.main("https-proxy", deadline=240)

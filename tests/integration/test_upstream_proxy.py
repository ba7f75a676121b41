#!/usr/bin/env python3
"""test_upstream_proxy.py — reaching the console through an HTTP proxy (docs/configuration.md), with a
real proxy nobody here wrote: Debian's tinyproxy on loopback. Covers CONNECT through the
proxy (HTTPS_PROXY), Basic credentials from the proxy URL (right and wrong), NO_PROXY
bypass (checked by the proxy's own log), absolute-form through HTTP_PROXY, proxy down ->
502, a proxy URL of another scheme refused at start with a clear error. https:// proxies:
test_https_proxy.py."""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
TINYPROXY = rt.TINYPROXY
S = {}


def start_tinyproxy(tmp, name, auth=None):
    return rt.start_tinyproxy(tmp, name, (S["con"].echo_port, S["con"].http_port), auth)


def start_relay(tmp, name, env):
    port = rt.free_port()
    cfg = os.path.join(tmp, name + ".ini")
    relays.write_config(cfg, relays.chaining_config(
        port, (S["con"].echo_port, S["con"].http_port), name + ".log"), atomic=False)
    p = rt.start_process([BIN, "run", "-c", cfg], env=env, tmpdir=tmp, name=name)
    return p, port, os.path.join(tmp, name + ".log")


def echo_through(relay_port, target_host="localhost"):
    st, _, sock = rt.connect_tunnel("127.0.0.1", relay_port, "%s:%d" % (target_host, S["con"].echo_port),
                                    headers=rt.basic("u", "p"), tls=False)
    if st != 200:
        return st, False
    payload = os.urandom(32768)
    ok = rt.echo_roundtrip(sock, payload) == payload
    sock.close()
    return st, ok


def proxy_log(path):
    try:
        return open(path).read()
    except OSError:
        return ""


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    with open(os.path.join(tmp, "users.txt"), "w") as f:
        f.write("u:p\n")
    S["con"] = rt.start_console(tmp, https=False, tls_echo=False)
    rt.check(os.access(TINYPROXY, os.X_OK), "tinyproxy installed (build.sh deps)")


@rt.case
def connect_through_proxy():
    tp, tport, tlog = start_tinyproxy(S["tmp"], "tp-open")
    relay, port, rlog = start_relay(S["tmp"], "relay-open",
                                    {"HTTPS_PROXY": "http://127.0.0.1:%d" % tport,
                                     "NO_PROXY": "example.invalid"})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "relay started with HTTPS_PROXY")
    st, ok = echo_through(port)
    rt.check(st == 200 and ok, "tunnel through tinyproxy echoes 32 KiB", st)
    rt.check("localhost:%d" % S["con"].echo_port in proxy_log(tlog),
             "tinyproxy logged the CONNECT to the console")
    # absolute-form to port 80 goes through HTTP_PROXY only: not set here -> direct.
    relay.stop()
    # NO_PROXY: the console host is bypassed (the proxy sees nothing new).
    before = proxy_log(tlog).count("CONNECT")
    relay, port, rlog = start_relay(S["tmp"], "relay-noproxy",
                                    {"https_proxy": "http://127.0.0.1:%d" % tport,
                                     "no_proxy": "other.example, .LOCALHOST"})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "relay started with no_proxy")
    st, ok = echo_through(port)
    rt.check(st == 200 and ok, "NO_PROXY: tunnel works directly")
    rt.check_eq(proxy_log(tlog).count("CONNECT"), before, "NO_PROXY: the proxy saw no CONNECT")
    relay.stop()
    tp.stop()


@rt.case
def proxy_with_credentials():
    tp, tport, tlog = start_tinyproxy(S["tmp"], "tp-auth", auth=("proxyuser", "proxy-secret-9"))
    relay, port, rlog = start_relay(S["tmp"], "relay-auth",
                                    {"HTTPS_PROXY": "http://proxyuser:proxy-secret-9@127.0.0.1:%d/" % tport})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "relay started with proxy credentials")
    st, ok = echo_through(port)
    rt.check(st == 200 and ok, "tunnel through a proxy with Basic credentials", st)
    relay.stop()
    relay, port, rlog = start_relay(S["tmp"], "relay-badauth",
                                    {"HTTPS_PROXY": "http://proxyuser:wrong@127.0.0.1:%d" % tport})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "relay started with wrong proxy credentials")
    st, _ = echo_through(port)
    rt.check_eq(st, 502, "wrong proxy credentials -> 502 to the client")
    ev = rt.wait_for_log(rlog, "upstream.proxy_refused", timeout=5)
    # tinyproxy 1.11 answers a bad Proxy-Authorization with 401 (RFC 9110 would say 407).
    rt.check(ev is not None and ev.get("status") in (401, 407), "proxy refusal logged with its status", ev)
    logs = proxy_log(rlog) + relay.stdout() + relay.stderr()
    rt.check("proxy-secret-9" not in logs and "wrong" not in proxy_log(rlog).replace("wrong user", ""),
             "proxy credentials never logged")
    relay.stop()
    tp.stop()


@rt.case
def reload_switches_proxy_enabled():
    """proxyEnabled is reloadable (docs/configuration.md): off -> tunnels go direct, on again -> through
    the proxy; the routes themselves come from the environment and are parsed once."""
    tp, tport, tlog = start_tinyproxy(S["tmp"], "tp-reload")
    relay, port, rlog = start_relay(S["tmp"], "relay-reload", {"HTTPS_PROXY": "http://127.0.0.1:%d" % tport})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "reload: relay started with proxyEnabled = true")
    st, ok = echo_through(port)
    rt.check(st == 200 and ok, "reload: tunnel through the proxy", st)
    cfg = os.path.join(S["tmp"], "relay-reload.ini")
    for enabled, via_proxy in (("false", False), ("true", True)):
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("proxyEnabled = %s" % ("true" if enabled == "false" else "false"),
                                 "proxyEnabled = %s" % enabled))
        since = rt.log_offset(rlog)
        relay.signal(signal.SIGHUP)
        ev = rt.wait_for_log(rlog, "config.reload", timeout=10, since=since)
        rt.check(ev is not None and ev.get("level") == "info", "reload: proxyEnabled = %s applied" % enabled, ev)
        before = proxy_log(tlog).count("CONNECT")
        st, ok = echo_through(port)
        rt.check(st == 200 and ok, "reload: proxyEnabled = %s, tunnel echoes" % enabled, st)
        after = proxy_log(tlog).count("CONNECT")
        rt.check(after > before if via_proxy else after == before,
                 "reload: proxyEnabled = %s -> %s" % (enabled, "through the proxy" if via_proxy else "direct"),
                 (before, after))
    relay.stop()
    tp.stop()


@rt.case
def proxy_down_and_other_scheme_refused():
    dead = rt.free_port()
    relay, port, rlog = start_relay(S["tmp"], "relay-dead", {"HTTPS_PROXY": "http://127.0.0.1:%d" % dead})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "relay started with a dead proxy")
    st, _ = echo_through(port)
    rt.check_eq(st, 502, "proxy down -> 502 to the client")
    relay.stop()
    r = subprocess.run([BIN, "run", "-c", os.path.join(S["tmp"], "relay-dead.ini")],
                       env=dict(rt.clean_environ(), HTTPS_PROXY="socks4://127.0.0.1:1080"),
                       capture_output=True, text=True, timeout=20, cwd=S["tmp"])
    rt.check(r.returncode != 0 and "only http://, https://, socks5:// and socks5h:// proxies" in r.stderr,
             "a socks4:// proxy URL is refused at start with a clear error", r.stderr)


@rt.case
def absolute_form_through_http_proxy():
    tp, tport, tlog = start_tinyproxy(S["tmp"], "tp-http")
    relay, port, rlog = start_relay(S["tmp"], "relay-http",
                                    {"HTTP_PROXY": "http://127.0.0.1:%d" % tport,
                                     "HTTPS_PROXY": "http://127.0.0.1:%d" % tport})
    rt.check(rt.wait_for_log(rlog, "start", timeout=15), "relay started with HTTP_PROXY")
    # Port 80 is the HTTP_PROXY route; the console's HTTP port is not 80, so this goes
    # through HTTPS_PROXY with CONNECT, and the origin-form request inside it.
    body = rt.absolute_get(port, "localhost", S["con"].http_port, "/api/app/check",
                           rt.basic("u", "p"))
    rt.check(body.startswith(b"HTTP/1.1 200") and b"test-console" in body,
             "absolute-form forwarded through the proxy", body[:200])
    rt.check("localhost:%d" % S["con"].http_port in proxy_log(tlog), "the proxy carried it")
    relay.stop()
    tp.stop()


@rt.case
def registration_through_proxy():
    con = rt.start_console(S["tmp"], **rt.HTTPS_ONLY, org=5,
                           deployment_token="dep-via-proxy", security_token="sec-via-proxy",
                           relay_id=11, name="console-reg")
    S["con_reg"] = con
    tp, port, tlog = rt.start_tinyproxy(S["tmp"], "tp-reg", (con.https_port,))
    cfg = os.path.join(S["tmp"], "relay-reg.ini")
    relays.write_config(cfg, relays.registration_config(con, "relay-reg.log", top=["proxyEnabled = true"]),
                        atomic=False)
    relay = rt.start_process([BIN, "run", "-c", cfg], tmpdir=S["tmp"], name="relay-reg",
                             env={"HTTPS_PROXY": "http://127.0.0.1:%d" % port})
    ev = rt.wait_for_log(os.path.join(S["tmp"], "relay-reg.log"), "register.saved", timeout=20)
    rt.check(ev is not None and ev.get("relay_id") == 11, "registration through the proxy succeeded", ev)
    rt.check("localhost:%d" % con.https_port in proxy_log(tlog), "the registration went through tinyproxy")
    relay.stop()
    tp.stop()


if __name__ == "__main__":
    rt.main("upstream", deadline=120)

#!/usr/bin/env python3
"""test_socks5_tunnel.py -- tunnels through a SOCKS5 upstream proxy (RFC 1928, RFC 1929),
the relay's connection core running the exchange (docs/configuration.md).

With proxyEnabled and a socks5:// or socks5h:// URL in ALL_PROXY / HTTPS_PROXY, CONNECT
tunnels, WebSocket tunnels and absolute-form requests reach the console's echo service
through: Debian's microsocks (RFC 1929 user:password, socks5h://: the proxy gets the name),
Debian's dante-server (socks5://: the relay resolves the allowed name and sends the
address) and the project's own proxy (which logs the address type it was asked for). Bytes
the proxy sends right after its reply reach the client first. Every way a proxy can fail
is a 502 upstream_unreachable whose log line (upstream.proxy_refused) says what the proxy
did: each close in the middle of the handshake, each refusal code 1-8 and an unassigned
one, dante's ruleset, a wrong password, no credentials, a proxy that is not SOCKS5, a
proxy that is not there. The proxy's password is in no log. Last line:
`socks5-tunnel: N passed, N failed`.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402
import relays  # noqa: E402
import wsclient  # noqa: E402

rt.init("socks5-tunnel", deadline=900)
TMP = rt.make_tmpdir("relaytest-s5t-")
PROXY_PW = "s5-pw-" + rt.secrets_hex(6)
S = {"n": 0}


def relay_via(url, var="ALL_PROXY", udp=False):
    """A relay whose tunnels take the SOCKS5 route `url`; Basic users for cheap tunnels."""
    S["n"] += 1
    name = "relay-%d" % S["n"]
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write("u:pw-u-1\n")
    os.chmod(os.path.join(d, "users.txt"), 0o600)
    env = dict(rt.clean_environ(), **{var: url})
    return relays.start_relay(TMP, name, env=env, top=[
        "proxyEnabled = true", "passwordFile = users.txt",
        "allowedPorts = %d,%d" % (S["con"].echo_port, S["con"].http_port)])


def tunnel(relay, payload=b"hello through socks5"):
    """CONNECT to the console's echo port on the plain listener: (status, echoed bytes)."""
    st, h, s = rt.connect_tunnel("127.0.0.1", relay.plain_port, "localhost:%d" % S["con"].echo_port,
                                 tls=False, headers=rt.basic("u", "pw-u-1"), timeout=15)
    if st != 200:
        return st, s
    got = rt.echo_roundtrip(s, payload, timeout=15)
    s.close()
    return st, got


def no_password(relay, label):
    text = rt._read_text(relay.log) + relay.proc.stderr() + relay.proc.stdout()
    rt.check(PROXY_PW not in text, label + ": the proxy's password is in no output")


@rt.case(timeout=120)
def setup():
    S["con"] = rt.start_console(TMP, tls_echo=False)
    S["micro"] = rt.start_socks5_server(TMP, "microsocks", user="bob", password=PROXY_PW)
    S["dante"] = rt.start_socks5_server(TMP, "dante")
    rt.check(all(rt.wait_for_port("127.0.0.1", h.port, timeout=5) for h in (S["micro"], S["dante"])),
             "console, microsocks and dante ready (both accept)")


@rt.case(timeout=180)
def through_real_proxies():
    big = os.urandom(200000)
    r = relay_via(S["micro"].url("socks5h", "bob", PROXY_PW))
    st, got = tunnel(r, big)
    rt.check(st == 200 and got == big, "microsocks (socks5h://, user:password): 200 KB echoed")
    rt.check("localhost" in S["micro"].log_text(), "microsocks was asked for the name", S["micro"].log_text()[-300:])
    no_password(r, "microsocks")
    r.stop()
    r = relay_via(S["dante"].url("socks5"), var="HTTPS_PROXY")
    st, got = tunnel(r, big)
    rt.check(st == 200 and got == big, "dante (socks5:// in HTTPS_PROXY): 200 KB echoed")
    rt.check(("127.0.0.1.%d" % S["con"].echo_port) in S["dante"].log_text(),
             "dante connected to the address the relay resolved", S["dante"].log_text()[-400:])
    r.stop()


@rt.case(timeout=120)
def own_proxy_sees_name_or_address():
    for scheme, atyp, host in (("socks5", "ipv4", "127.0.0.1"), ("socks5h", "name", "localhost")):
        p = rt.start_socks5_server(TMP, "own", name="own-" + scheme)
        r = relay_via(p.url(scheme))
        st, got = tunnel(r)
        rt.check(st == 200 and got == b"hello through socks5", "%s://: tunnel works" % scheme)
        req = p.events("request")
        rt.check(req and req[-1].get("atyp") == atyp and req[-1].get("host") == host and
                 req[-1].get("port") == S["con"].echo_port,
                 "%s://: the proxy was asked for %s %s" % (scheme, atyp, host), req)
        # a WebSocket tunnel and an absolute-form request take the same route
        tok = r.token("s5-ws")
        st, h, ws = wsclient.ws_open("127.0.0.1", r.port, "/v1/tunnel?target=localhost:%d" % S["con"].echo_port,
                               tok, verify=False)
        ok = False
        if st == 101:
            ws.send_binary(b"ws-bytes")
            m = ws.recv_message(timeout=10)
            ok = m is not None and m[1] == b"ws-bytes"
            ws.close()
        rt.check(ok, "%s://: a WebSocket tunnel through the proxy" % scheme)
        resp = rt.http_request("127.0.0.1", r.plain_port, "GET",
                               "http://localhost:%d/api/app/check" % S["con"].http_port,
                               headers=dict(rt.basic("u", "pw-u-1"), Host="localhost"), timeout=10)
        req = p.events("request")
        rt.check(resp.status == 200 and len(req) == 3 and req[-1].get("port") == S["con"].http_port,
                 "%s://: absolute-form through the proxy (its third request, to the console's "
                 "HTTP port)" % scheme, (resp.status, req))
        r.stop()
        p.stop()


@rt.case(timeout=60)
def bytes_after_the_reply_belong_to_the_tunnel():
    p = rt.start_socks5_server(TMP, "own", name="own-extra", mode="reply-extra", extra=b"EARLY")
    r = relay_via(p.url("socks5h"))
    st, h, s = rt.connect_tunnel("127.0.0.1", r.plain_port, "localhost:%d" % S["con"].echo_port,
                                 tls=False, headers=rt.basic("u", "pw-u-1"), timeout=15)
    first = b""
    if st == 200:
        s.settimeout(10)
        for _ in range(10):
            if len(first) >= 5:
                break
            d = rt._recv(s, 5 - len(first))
            if not d:
                break
            first += d
    rt.check(st == 200 and first == b"EARLY", "the proxy's bytes right after its reply come first",
             (st, first))
    if st == 200:
        rt.check_eq(rt.echo_roundtrip(s, b"abc"), b"abc", "then the tunnel's own bytes")
        s.close()
    r.stop()
    p.stop()


def failure_cases():
    hp = S["con"].echo_port
    out = []
    for mode, reason in (
            ("close-after-greeting", "closed the connection during the greeting"),
            ("close-mid-method", "closed the connection during the greeting"),
            ("close-after-method", "closed the connection"),
            ("close-after-request", "closed the connection before answering the CONNECT"),
            ("close-mid-reply", "closed the connection in the middle of its CONNECT reply"),
            ("bad-version", "not a SOCKS5 proxy"),
            ("wrong-method", "chose an authentication method that was not offered"),
            ("no-acceptable", "the proxy requires authentication and the proxy URL has no user:password"),
            ("bad-atyp", "bad address type in the proxy's reply")):
        out.append(("own proxy " + mode, dict(mode=mode), "socks5h", reason))
    out.append(("own proxy close-after-auth", dict(mode="close-after-auth", user="al", password=PROXY_PW),
                "socks5h", "closed the connection during authentication"))
    meanings = {1: "general failure", 2: "connection not allowed by ruleset", 3: "network unreachable",
                4: "host unreachable", 5: "connection refused", 6: "TTL expired",
                7: "command not supported", 8: "address type not supported", 9: "unassigned reply code"}
    for rep, text in meanings.items():
        out.append(("own proxy refuses with reply %d" % rep, dict(mode="refuse", rep=rep), "socks5",
                    "refused the connection to localhost:%d: %s (reply %d)" % (hp, text, rep)))
    return out


@rt.case(timeout=600)
def every_failure_is_502_with_the_reason():
    for i, (label, opts, scheme, reason) in enumerate(failure_cases()):
        p = rt.start_socks5_server(TMP, "own", name="own-f%d" % i, **opts)
        r = relay_via(p.url(scheme, opts.get("user"), opts.get("password")))
        since = rt.log_offset(r.log)
        st, body = tunnel(r)
        rt.check(st == 502 and b"upstream_unreachable" in body, label + ": 502 upstream_unreachable",
                 (st, body[:200]))
        rec = r.wait_record("upstream.proxy_refused", since=since)
        rt.check(rec is not None and reason in rec.get("reason", ""), label + ": the log says why", rec)
        no_password(r, label)
        r.stop()
        p.stop()


@rt.case(timeout=300)
def real_proxies_refuse():
    hp = S["con"].echo_port
    blocked = rt.start_socks5_server(TMP, "dante", name="dante-blocked", block_ports=[hp])
    cases = [
        ("dante's ruleset", blocked.url("socks5h"),
         "refused the connection to localhost:%d: connection not allowed by ruleset (reply 2)" % hp),
        ("microsocks, wrong password", S["micro"].url("socks5h", "bob", "wrong-" + PROXY_PW),
         "the proxy refused the user name or password"),
        ("microsocks, no credentials", S["micro"].url("socks5h"),
         "the proxy requires authentication and the proxy URL has no user:password"),
        ("no proxy listening", "socks5h://127.0.0.1:%d" % rt.free_port(), "Connection refused"),
    ]
    for label, url, reason in cases:
        r = relay_via(url)
        since = rt.log_offset(r.log)
        st, body = tunnel(r)
        rt.check_eq(st, 502, label + ": 502")
        rec = rt.wait_for_log(r.log, lambda x: x.get("event") in ("upstream.proxy_refused", "upstream.fail")
                              and reason in x.get("reason", ""), since=since)
        rt.check(rec is not None, label + ": the log says why", rt._read_text(r.log)[-600:])
        no_password(r, label)
        r.stop()


if __name__ == "__main__":
    rt.main("socks5-tunnel", deadline=900)

#!/usr/bin/env python3
"""test_airwall.py -- an Airwall-shaped client end to end (AirProxy's two planes over WSS).

The relay serves an operator-signed chain (certFile/keyFile: root -> intermediate -> leaf,
made with the openssl CLI) and the client trusts only its own root. The client takes an
access token, then opens both planes at once: a WSS `/v1/tunnel` to a TCP service standing
in for MAP2 (the Conductor's port) and a WSS `/v1/udp` to a UDP echo standing in for the HIP
daemon, and moves bytes and HIP-sized datagrams (1,400 bytes) on both at the same time.
Then the same through a SOCKS5 proxy (Debian's microsocks, socks5h:// with a password) to
the console, with `/sessions` on the admin listener showing both tunnels. Bad input: a client
trusting another root refuses the relay; a datagram of 65,508 bytes (close 1009); a SOCKS5
proxy that closes mid-handshake (502, the reason logged); a port in allowedPorts but not in
allowedUdpPorts (403). (The certificate refusals — a chain out of order, a key in an
unsupported format — are test_opcert.py's bad_pairs_exit_2.)
Last line: `airwall: N passed, N failed`.
"""
import json
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402
import relays  # noqa: E402
import wsclient  # noqa: E402

rt.init("airwall", deadline=600)
TMP = rt.make_tmpdir("relaytest-airwall-")
PROXY_PW = "aw-pw-" + rt.secrets_hex(6)
S = {}


def airwall_relay(name, env=None, extra=()):
    return relays.start_relay(TMP, name, env=env, admin=True, plain=False, cafile=S["pki"].root, top=[
        "certFile = " + S["chain"], "keyFile = " + S["key"],
        "allowedPorts = %d,%d" % (S["map2"].echo_port, S["hip"].port),
        "allowedUdpPorts = %d" % S["hip"].port] + list(extra))


def both_planes(relay, label, check_sessions=False):
    """Token, then WSS /v1/tunnel (MAP2) and WSS /v1/udp (HIP) open together, verified
    against the operator's root only; traffic on both at once. Returns the two clients."""
    tok = relay.token("airwall-01")
    st1, h1, map2 = wsclient.ws_open("127.0.0.1", relay.port, "/v1/tunnel?target=localhost:%d" % S["map2"].echo_port,
                               tok, cafile=S["pki"].root, verify=True, server_hostname="localhost")
    st2, h2, hip = wsclient.ws_open("127.0.0.1", relay.port, "/v1/udp?target=localhost:%d" % S["hip"].port,
                              tok, cafile=S["pki"].root, verify=True, server_hostname="localhost")
    rt.check(st1 == 101 and st2 == 101, "%s: both planes upgraded over TLS verified by the root" % label,
             (st1, st2))
    if st1 != 101 or st2 != 101:
        return None, None
    cn = map2.s.getpeercert()["subject"]
    rt.check(("commonName", "relay.operator.example") in [x for t in cn for x in t],
             "%s: the served leaf is the operator's" % label, cn)
    # interleave: MAP2 bytes and HIP datagrams, both answered
    stream = os.urandom(48000)
    dgrams = [os.urandom(1400) for _ in range(50)]
    got_stream, got_dgrams = bytearray(), []
    for i, d in enumerate(dgrams):
        hip.send_binary(d)
        map2.send_binary(stream[i * 960:(i + 1) * 960])
        m = hip.recv_message(timeout=10)
        got_dgrams.append(m[1] if m else None)
    for _ in range(200):
        if len(got_stream) >= len(stream):
            break
        m = map2.recv_message(timeout=10)
        if m is None:
            break
        got_stream += m[1]
    rt.check(bytes(got_stream) == stream, "%s: MAP2 plane: 48,000 bytes echoed in order" % label)
    rt.check(got_dgrams == dgrams, "%s: HIP plane: 50 datagrams of 1,400 bytes, each back whole" % label)
    return map2, hip


@rt.case(timeout=300)
def setup():
    S["pki"] = rt.OpensslPKI(os.path.join(TMP, "pki"), name="Operator")
    S["chain"], S["key"], _ = S["pki"].leaf("relay", "ec:P-256", cn="relay.operator.example")
    # MAP2 stands in as the test console's TCP echo
    S["map2"] = rt.start_console(TMP, https=False, http=False, tls_echo=False, name="map2")
    S["hip"] = rt.UdpEcho()
    S["relay"] = airwall_relay("direct")
    r = rt.http_request("127.0.0.1", S["relay"].admin_port, "GET", "/healthz")
    rt.check_eq(r.status, 200, "operator PKI, MAP2 and HIP stand-ins, relay ready (/healthz)")


@rt.case(timeout=120)
def direct():
    relay = S["relay"]
    map2, hip = both_planes(relay, "direct")
    if map2:
        r = rt.http_request("127.0.0.1", relay.admin_port, "GET", "/sessions")
        arr = json.loads(r.body.decode()) if r.status == 200 else []
        tr = sorted(x["transport"] for x in arr if x.get("sub") == "airwall-01")
        rt.check_eq(tr, ["udp", "ws"], "direct: /sessions lists the two planes")
        map2.close()
        hip.close()


@rt.case(timeout=60)
def another_root_is_refused():
    other = rt.OpensslPKI(os.path.join(TMP, "other"), name="Elsewhere")
    try:
        rt.tls_connect("127.0.0.1", S["relay"].port, other.root, "localhost", True, 10).close()
        ok = False
    except ssl.SSLCertVerificationError:
        ok = True
    rt.check(ok, "a client trusting another root refuses the relay's chain")


@rt.case(timeout=180)
def through_socks5_to_the_console():
    micro = rt.start_socks5_server(TMP, "microsocks", name="aw-micro", user="aw", password=PROXY_PW)
    env = dict(rt.clean_environ(), ALL_PROXY=micro.url("socks5h", "aw", PROXY_PW))
    relay = airwall_relay("via-socks5", env=env, extra=["proxyEnabled = true"])
    map2, hip = both_planes(relay, "socks5")
    rt.check(("localhost:%d" % S["map2"].echo_port) in micro.log_text(),
             "socks5: the MAP2 plane went through the proxy", micro.log_text()[-300:])
    if map2:
        r = rt.http_request("127.0.0.1", relay.admin_port, "GET", "/sessions")
        arr = json.loads(r.body.decode()) if r.status == 200 else []
        rows = {x["transport"]: x for x in arr if x.get("sub") == "airwall-01"}
        rt.check(sorted(rows) == ["udp", "ws"] and
                 rows["ws"]["target"] == "localhost:%d" % S["map2"].echo_port and
                 rows["udp"]["target"] == "localhost:%d" % S["hip"].port and
                 rows["ws"]["bytesUp"] == 48000 and rows["udp"]["bytesUp"] == 70000,
                 "socks5: /sessions shows both tunnels with their targets and bytes", arr)
        map2.close()
        hip.close()
    text = rt._read_text(relay.log)
    rt.check(PROXY_PW not in text, "socks5: the proxy's password is not in the log")
    relay.stop()


@rt.case(timeout=120)
def bad_input():
    relay = S["relay"]
    tok = relay.token("airwall-02")
    # a datagram of 65,508 bytes
    st, h, hip = wsclient.ws_open("127.0.0.1", relay.port, "/v1/udp?target=localhost:%d" % S["hip"].port,
                            tok, cafile=S["pki"].root, verify=True)
    if st == 101:
        hip.send_binary(b"\0" * 65508)
        rt.check_eq(hip.close_status(timeout=10), 1009, "a datagram of 65,508 bytes: close 1009")
        hip.close()
    else:
        rt.check(False, "UDP plane opens", st)
    # a port in allowedPorts but not allowedUdpPorts
    st, h, body = wsclient.ws_open("127.0.0.1", relay.port, "/v1/udp?target=localhost:%d" % S["map2"].echo_port,
                             tok, cafile=S["pki"].root, verify=True)
    rt.check_eq(st, 403, "MAP2's TCP port asked for as UDP: 403")
    # a SOCKS5 proxy that closes mid-handshake
    p = rt.start_socks5_server(TMP, "own", name="aw-closing", mode="close-after-greeting")
    r2 = airwall_relay("closing-proxy", env=dict(rt.clean_environ(), ALL_PROXY=p.url("socks5h")),
                       extra=["proxyEnabled = true"])
    since = rt.log_offset(r2.log)
    st, h, body = wsclient.ws_open("127.0.0.1", r2.port, "/v1/tunnel?target=localhost:%d" % S["map2"].echo_port,
                             r2.token("airwall-03"), cafile=S["pki"].root, verify=True)
    rt.check(st == 502 and b"upstream_unreachable" in body, "a proxy closing mid-handshake: 502", (st, body))
    rec = r2.wait_record("upstream.proxy_refused", since=since)
    rt.check(rec is not None and "closed the connection during the greeting" in rec.get("reason", ""),
             "... and the log says where it closed", rec)
    r2.stop()
    p.stop()


if __name__ == "__main__":
    try:
        rt.run_cases()
    finally:
        for k in ("map2", "hip"):
            if k in S:
                S[k].stop()
    rt.finish()

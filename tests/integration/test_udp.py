#!/usr/bin/env python3
"""test_udp.py -- UDP associations, `GET /v1/udp?target=host:port` (WebSocket, RFC 6455),
against the real binary on its TLS and its plain listener.

A UDP echo service on loopback stands in for a datagram daemon (AirProxy's HIP daemon). Each
WebSocket binary message is one datagram and each datagram from the target comes back as one
binary message: sizes 0, 1, 1,400, 16,385 (more than one TLS record) and 65,507 echoed byte
for byte, a fragmented message (with a ping between the fragments) sent as ONE datagram, a
burst of 64 messages in one write as 64 datagrams, unsolicited datagrams from the target
delivered; a message of 65,508 bytes (whole, or in fragments) closes with 1009 and nothing of
it reaches the target; a port in allowedPorts but not in allowedUdpPorts is 403 (and
target.forbidden says why), as are an unlisted host and an empty allowedUdpPorts; no token
is 401; allowedUdpPorts is reloaded on SIGHUP; tunnel.open/tunnel.close carry transport udp
and the datagram counts each way; the idle timeout closes a silent association; a target
that answers with ICMP (nothing listening) does not end the association; the metrics count
datagrams. Last line: `udp: N passed, N failed`.
"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import proctest as pt  # noqa: E402
import relaytest as rt  # noqa: E402
import relays  # noqa: E402
import wsclient  # noqa: E402

rt.init("udp", deadline=600)
TMP = rt.make_tmpdir("relaytest-udp-")
S = {}


def payload(n, seed=0):
    return bytes((i * 7 + seed) & 0xff for i in range(n))


def open_udp(relay, tls=True, port=None, host="localhost", token=None):
    return wsclient.ws_open("127.0.0.1", relay.port if tls else relay.plain_port,
                      "/v1/udp?target=%s:%d" % (host, port or S["echo"].port),
                      token or S["token"], tls=tls, cafile=relay.cafile, verify=False)


def no_secret(text):
    return S["relay"].secret not in text and S["token"] not in text


@rt.case(timeout=120)
def setup():
    S["echo"] = rt.UdpEcho()
    S["tcp"] = socket.socket()
    S["tcp"].bind(("127.0.0.1", 0))
    S["tcp"].listen(4)
    S["tcp_port"] = S["tcp"].getsockname()[1]
    S["closed_udp"] = rt.free_port()  # nothing listens there (UDP)
    S["relay"] = relays.start_relay(
        TMP, "main", admin=True,
        top=["allowedPorts = %d,%d" % (S["tcp_port"], S["echo"].port),
             "allowedUdpPorts = %d,%d" % (S["echo"].port, S["closed_udp"])])
    S["token"] = S["relay"].token("hip-responder")
    r = rt.http_request("127.0.0.1", S["relay"].admin_port, "GET", "/healthz")
    rt.check(r.status == 200 and len(S["token"]) > 0, "relay, UDP echo and token ready (/healthz)")


@rt.case(timeout=120)
def echo_sizes():
    for lname, tls in (("tls", True), ("plain", False)):
        st, h, ws = open_udp(S["relay"], tls)
        rt.check_eq(st, 101, "%s: 101 Switching Protocols" % lname)
        if st != 101:
            continue
        before = len(S["echo"].lengths())
        for n in (1, 1400, 0, 16385, 65507):
            data = payload(n, n)
            ws.send_binary(data)
            m = ws.recv_message(timeout=20)
            rt.check(m is not None and m[0] == 2 and m[1] == data,
                     "%s: %d bytes out, the same %d bytes back as one binary message" % (lname, n, n),
                     "got %r" % ((None if m is None else (m[0], len(m[1]))),))
        rt.check_eq(S["echo"].lengths()[before:], [1, 1400, 0, 16385, 65507],
                    "%s: the target saw exactly one datagram per message" % lname)
        ws.close()


@rt.case(timeout=60)
def fragments_are_one_datagram():
    st, h, ws = open_udp(S["relay"])
    before = len(S["echo"].lengths())
    a, b, c = payload(1000, 1), payload(3000, 2), payload(5, 3)
    ws.send(wsclient.frame(2, a, fin=False) + wsclient.frame(9, b"pg") + wsclient.frame(0, b, fin=False) +
            wsclient.frame(0, c, fin=True))
    m = ws.recv_message(timeout=10)
    rt.check(m is not None and m[1] == a + b + c, "three fragments come back as one message")
    rt.check((10, b"pg") in ws.control, "the ping between fragments is answered with its payload")
    rt.check_eq(S["echo"].lengths()[before:], [4005], "the target got one datagram of 4,005 bytes")
    ws.close()


@rt.case(timeout=60)
def burst_keeps_boundaries():
    st, h, ws = open_udp(S["relay"], tls=False)
    before = len(S["echo"].lengths())
    msgs = [payload(10 + i * 37, i) for i in range(64)]
    ws.send(b"".join(wsclient.frame(2, m) for m in msgs))  # one write
    got = []
    for _ in range(64):
        m = ws.recv_message(timeout=10)
        if m is None:
            break
        got.append(m[1])
    # UDP on loopback with a 4 MiB receive buffer: nothing is lost here
    rt.check_eq(sorted(got, key=len), msgs, "64 messages in one write: 64 messages back")
    rt.check_eq(sorted(S["echo"].lengths()[before:]), [len(m) for m in msgs],
                "... as 64 datagrams of their own sizes")
    ws.close()


@rt.case(timeout=60)
def unsolicited_datagrams_reach_the_client():
    daemon = rt.UdpEcho(extra=3, extra_size=700)
    try:
        relay = S["relay"]
        # an association open across the reload: the port it uses stays allowed, so it stays
        st0, _, kept = open_udp(relay)
        rt.check_eq(st0, 101, "an association opened before the reload")
        # the daemon's port is not allowed yet: allow it by a reload (allowedUdpPorts reloads)
        with open(relay.cfg) as f:
            text = f.read()
        with open(relay.cfg, "w") as f:
            f.write(text.replace("allowedUdpPorts = %d,%d" % (S["echo"].port, S["closed_udp"]),
                                 "allowedUdpPorts = %d,%d,%d" % (S["echo"].port, S["closed_udp"],
                                                                 daemon.port)))
        rec = relay.reload()
        rt.check(rec is not None and rec.get("ok") is True, "reload with a new allowedUdpPorts: ok")
        if st0 == 101:
            kept.send_binary(b"still here")
            rt.check(kept.recv_message(timeout=10) == (2, b"still here"),
                     "the association opened before the reload still echoes (not revoked)")
            kept.close()
        st, h, ws = open_udp(relay, port=daemon.port)
        rt.check_eq(st, 101, "the port added by the reload is allowed")
        if st != 101:
            return
        ws.send_binary(b"hello")
        got = [ws.recv_message(timeout=10) for _ in range(4)]
        rt.check(got[0] == (2, b"hello") and all(m == (2, bytes([i]) * 700) for i, m in enumerate(got[1:])),
                 "the echo and three datagrams the target sent on its own, one message each",
                 [None if m is None else len(m[1]) for m in got])
        ws.close()
    finally:
        daemon.stop()


@rt.case(timeout=60)
def oversize_datagram_is_1009():
    relay = S["relay"]
    for label, frames in (
            ("one frame of 65,508 bytes", [wsclient.frame(2, payload(65508))]),
            ("fragments adding up to 65,508 bytes", [wsclient.frame(2, payload(65000), fin=False),
                                                      wsclient.frame(0, payload(508), fin=True)])):
        since = rt.log_offset(relay.log)
        st, h, ws = open_udp(relay)
        before = len(S["echo"].lengths())
        ws.send_binary(b"fine")
        ok = ws.recv_message(timeout=10)
        ws.send(b"".join(frames))
        code = ws.close_status(timeout=10)
        rt.check_eq(code, 1009, "%s: close 1009" % label)
        rt.check(ws.wait_eof(5), "%s: then the relay closes the connection" % label)
        rt.check(ok == (2, b"fine") and S["echo"].lengths()[before:] == [4],
                 "%s: the target never got any of it (only the 4-byte datagram before)" % label,
                 S["echo"].lengths()[before:])
        rec = relay.wait_record("ws.error", lambda r: r.get("close") == 1009, since=since)
        rt.check(rec is not None and "65507" in rec.get("reason", ""),
                 "%s: ws.error with close 1009 names the limit" % label, rec)
        ws.close()
    # 65,507 still passes on the same relay (the limit is exact)
    st, h, ws = open_udp(relay, tls=False)
    ws.send_binary(payload(65507, 9))
    m = ws.recv_message(timeout=20)
    rt.check(m is not None and len(m[1]) == 65507, "65,507 bytes: still one datagram")
    ws.close()


@rt.case(timeout=60)
def refusals():
    relay = S["relay"]
    since = rt.log_offset(relay.log)
    st, h, body = open_udp(relay, port=S["tcp_port"])
    rt.check_eq(st, 403, "a port in allowedPorts but not in allowedUdpPorts: 403")
    rt.check(b"forbidden_target" in body, "... forbidden_target", body)
    rec = relay.wait_record("target.forbidden", lambda r: r.get("port") == S["tcp_port"], since=since)
    rt.check(rec is not None and "allowedUdpPorts" in rec.get("reason", ""),
             "target.forbidden says the port is not in allowedUdpPorts", rec)
    st, h, body = open_udp(relay, host="evil.example")
    rt.check_eq(st, 403, "a host that is not allowed: 403")
    st, h, body = wsclient.ws_open("127.0.0.1", relay.port, "/v1/udp?target=localhost:%d" % S["echo"].port,
                             None, verify=False)
    rt.check(st == 401 and "Bearer" in (h.get("WWW-Authenticate") or ""),
             "no token: 401 with WWW-Authenticate: Bearer")
    st, h, body = wsclient.ws_open("127.0.0.1", relay.port, "/v1/udp?target=localhost", S["token"],
                             verify=False)
    rt.check_eq(st, 400, "a target without a port: 400")
    r = rt.http_request("127.0.0.1", relay.port, "GET", "/v1/udp?target=localhost:%d" % S["echo"].port,
                        headers=[("Authorization", "Bearer " + S["token"])], tls=True, verify=False,
                        server_hostname="localhost")
    rt.check_eq(r.status, 400, "GET /v1/udp without the WebSocket upgrade: 400")
    rt.check(no_secret(rt._read_text(relay.log)), "no token or security token in the log")


@rt.case(timeout=60)
def empty_allowed_udp_ports_refuses_all():
    r2 = relays.start_relay(TMP, "noudp", plain=False, top=["allowedPorts = %d" % S["echo"].port])
    try:
        tok = r2.token("hip-2")
        st, h, body = wsclient.ws_open("127.0.0.1", r2.port, "/v1/udp?target=localhost:%d" % S["echo"].port,
                                 tok, verify=False)
        rt.check_eq(st, 403, "allowedUdpPorts unset (default empty): every UDP target is 403")
    finally:
        r2.stop()


@rt.case(timeout=60)
def log_lines_count_datagrams():
    relay = S["relay"]
    since = rt.log_offset(relay.log)
    st, h, ws = open_udp(relay)
    for i in range(5):
        ws.send_binary(payload(100 + i))
        ws.recv_message(timeout=10)
    ws.send(wsclient.frame(8, (1000).to_bytes(2, "big")))
    code = ws.close_status(timeout=10)
    rt.check_eq(code, 1000, "the client's close is echoed")
    opened = relay.wait_record("tunnel.open", lambda r: r.get("transport") == "udp", since=since)
    closed = relay.wait_record("tunnel.close", lambda r: r.get("transport") == "udp", since=since)
    rt.check(opened is not None and opened.get("target") == "localhost" and
             opened.get("port") == S["echo"].port and opened.get("user") == "hip-responder",
             "tunnel.open: transport udp, target, port, user", opened)
    rt.check(closed is not None and closed.get("datagrams_up") == 5 and
             closed.get("datagrams_down") == 5 and closed.get("bytes_up") == 510 and
             closed.get("bytes_down") == 510, "tunnel.close: 5 datagrams and 510 bytes each way",
             closed)
    rt.check(closed is not None and closed.get("dropped_up") == 0 and closed.get("dropped_down") == 0,
             "tunnel.close: nothing dropped", closed)
    ws.close()


@rt.case(timeout=60)
def icmp_unreachable_does_not_end_the_association():
    relay = S["relay"]
    since = rt.log_offset(relay.log)
    st, h, ws = open_udp(relay, port=S["closed_udp"])
    rt.check_eq(st, 101, "an allowed UDP port where nothing listens: 101 (UDP has no connect)")
    if st != 101:
        return
    for i in range(4):
        ws.send_binary(b"x" * 10)
    ws.send(wsclient.frame(9, b"alive?"))
    f = ws.recv_frame(timeout=10)
    rt.check(f is not None and f[1] == 10 and f[2] == b"alive?",
             "after datagrams to a closed port (ICMP port unreachable) the association still answers")
    ws.send(wsclient.frame(8, (1000).to_bytes(2, "big")))
    ws.close_status(timeout=10)
    rec = relay.wait_record("tunnel.close", lambda r: r.get("port") == S["closed_udp"], since=since)
    rt.check(rec is not None and rec.get("datagrams_up", 0) + rec.get("dropped_up", 0) == 4,
             "every datagram is counted, sent or dropped (ICMP errors drop the next send)", rec)
    ws.close()


@rt.case(timeout=60)
def idle_timeout_closes():
    r3 = relays.start_relay(TMP, "idle", plain=False,
                        top=["allowedPorts = 443", "allowedUdpPorts = %d" % S["echo"].port],
                        sections=["[limits]", "idleTimeout = 1s"])
    try:
        tok = r3.token("hip-idle")
        st, h, ws = wsclient.ws_open("127.0.0.1", r3.port, "/v1/udp?target=localhost:%d" % S["echo"].port,
                               tok, verify=False)
        ws.send_binary(b"one")
        m = ws.recv_message(timeout=10)
        rt.check(m == (2, b"one"), "the association works")
        rec = r3.wait_record("tunnel.close", lambda r: r.get("transport") == "udp", timeout=15)
        rt.check(rec is not None and rec.get("reason") == "idle timeout",
                 "no datagram for idleTimeout: closed with reason idle timeout", rec)
        rt.check(ws.wait_eof(10), "the client sees the connection end")
        ws.close()
    finally:
        r3.stop()


@rt.case(timeout=60)
def metrics_count_datagrams():
    relay = S["relay"]

    def scrape():
        """(samples, up, down): one scrape of /metrics (proctest's parser)."""
        samples = pt.scrape(relay.admin_port) or []
        count = lambda d: int(pt.sample(samples, "relaypro_udp_datagrams_total", {"direction": d}) or 0)
        return samples, count("up"), count("down")

    _, up0, down0 = scrape()
    st, h, ws = open_udp(relay)
    for i in range(3):
        ws.send_binary(b"m" * 50)
        ws.recv_message(timeout=10)
    ws.close()
    got = rt.wait_until(lambda: scrape()[1:] == (up0 + 3, down0 + 3), timeout=10)
    samples, up, down = scrape()
    rt.check(got, "relaypro_udp_datagrams_total counts the 3 datagrams each way",
             "up %d -> %d, down %d -> %d" % (up0, up, down0, down))
    rt.check(any(n == "relaypro_udp_dropped_total" for n, _, _ in samples),
             "relaypro_udp_dropped_total is exported")
    ws.close()


if __name__ == "__main__":
    try:
        rt.run_cases()
    finally:
        if "echo" in S:
            S["echo"].stop()
    rt.finish()

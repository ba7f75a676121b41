#!/usr/bin/env python3
"""test_smoke.py -- the integration smoke of `make check` (and a script of `make test`):
one relay started from a config file beside the test console, then, through it:

* GET /healthz on the TLS and the plain listener: 200;
* a CONNECT tunnel with an access token (a grant from `relaypro token grant`, exchanged
  at POST /v1/token), echoing bytes through the console's echo port;
* a CONNECT tunnel with a password (Basic, from the password file), echoing too; a wrong
  password gets 407;
* a WebSocket tunnel (GET /v1/tunnel?target=..., RFC 6455 frames) echoing a binary
  message;
* SIGTERM: exit 0, and no secret in the relay's log or output.

Small on purpose (a few seconds): the full behaviour of each of these is in the other
scripts. Last line: `smoke: N passed, N failed`.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402
import wsclient  # noqa: E402

rt.init("smoke", deadline=90)
TMP = rt.make_tmpdir("relaytest-smoke-")
SECRET = rt.secret("sec-smoke-" + os.urandom(8).hex())
USER, PASSWORD = "smokeuser", rt.secret("pw-" + os.urandom(8).hex())
S = {}


@rt.case(timeout=40)
def relay_starts():
    con = rt.start_console(TMP, tls_echo=False)
    d = os.path.join(TMP, "relay")
    os.makedirs(d)
    relays.write_users(d, USER, PASSWORD)
    https, http = rt.free_port(), rt.free_port()
    r = relays.Relay(d, relays.relay_config(
        security_token=SECRET, org=1, relay_id=7, allowed_ports=[con.echo_port],
        https=https, http=http, top=["passwordFile = users.txt"]), https=https, http=http)
    r.start()
    rt.check(rt.plain_healthz(http), "relay starts (start logged, /healthz 200 on the plain listener)")
    S.update(con=con, relay=r)


@rt.case(timeout=20)
def healthz():
    r = S["relay"]
    for tls in (True, False):
        resp = rt.http_request("127.0.0.1", r.https if tls else r.http, "GET", "/healthz",
                               tls=tls, verify=False, server_hostname="localhost")
        rt.check_eq(resp.status, 200, "GET /healthz on the %s listener" % ("TLS" if tls else "plain"))


def echo_through(headers, name):
    r, con = S["relay"], S["con"]
    st, h, tun = rt.connect_tunnel("127.0.0.1", r.https, "localhost:%d" % con.echo_port,
                                   headers=headers, verify=False)
    if not rt.check_eq(st, 200, name + ": CONNECT answered 200"):
        return
    payload = os.urandom(50000)
    try:
        rt.check(rt.echo_roundtrip(tun, payload) == payload, name + ": 50,000 bytes echoed")
    finally:
        tun.close()


@rt.case(timeout=30)
def connect_with_token():
    token = S["relay"].access_token("smoke-responder")
    echo_through(rt.bearer(token), "token")


@rt.case(timeout=30)
def connect_with_password():
    echo_through(rt.basic(USER, PASSWORD), "password")
    st, h, body = rt.connect_tunnel("127.0.0.1", S["relay"].https,
                                    "localhost:%d" % S["con"].echo_port,
                                    headers=rt.basic(USER, rt.secret(PASSWORD + "x")), verify=False)
    rt.check_eq(st, 407, "a wrong password: 407")


@rt.case(timeout=30)
def websocket_tunnel():
    r = S["relay"]
    token = r.access_token("smoke-ws")
    st, h, ws, key = wsclient.handshake_on(r.sock(True), "target=localhost:%d" % S["con"].echo_port,
                                           token)
    if not rt.check_eq(st, 101, "WebSocket upgrade: 101"):
        return
    try:
        rt.check_eq(h.get("Sec-WebSocket-Accept"), wsclient.accept_of(key), "Sec-WebSocket-Accept")
        payload = os.urandom(70000)
        ws.send(wsclient.frame(2, payload))
        data, ctl, ok = ws.read_data(len(payload))
        rt.check(data == payload and ok, "WebSocket: a 70,000-byte binary message echoed "
                 "(server frames unmasked, minimal lengths)", (len(data), ok))
    finally:
        ws.close()


@rt.case(timeout=30)
def stops_clean():
    r = S["relay"]
    rt.check_eq(r.stop(), 0, "SIGTERM: exit 0")
    text = rt.read_file(r.log) + r.proc.stdout() + r.proc.stderr()
    rt.check(rt.redact(text) == text, "no secret in the relay's log, stdout or stderr")
    rt.check(any(e.get("event") == "tunnel.open" for e in r.events()), "tunnels logged")


if __name__ == "__main__":
    rt.finish()

#!/usr/bin/env python3
"""test_revoke.py -- revocation reaches open tunnels (docs/configuration.md, "Reload").

A reload never drops an open tunnel except one whose credential or target the new
configuration no longer accepts; those close with `tunnel.close` reason `revoked`:
- password file: a user removed, and a user whose password changed, lose their tunnels;
  a user left as it was keeps its tunnel echoing;
- `[clientAuthToken] epoch` raised: tunnels opened with access tokens of the older epoch
  close (CONNECT and a WebSocket tunnel); a tunnel opened at the new epoch stays;
- allow-list: a port removed from allowedPorts, a host removed from allowedHosts close the
  tunnels to them; the others stay;
- the migration window ending by time, without a reload, closes the tunnels to the
  migration console (the console's stay);
- a token whose exp has passed (new requests with it are refused) does not cut its open
  tunnel, not even at a reload.
Each closed tunnel is seen by its client (EOF) and in the log; each kept one echoes.
Last line: `revoke: N passed, N failed`.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402
import wsclient  # noqa: E402

SECRET = "sec-" + rt.secrets_hex(16)
ORG, RELAY_ID = 5, 11
SECRETS = {SECRET}  # the security token and every access token; grants: rt.secrets()

rt.init("revoke", deadline=300)
TMP = rt.make_tmpdir("relaytest-revoke-")
RELAY = relays.Relay(os.path.join(TMP, "relay"), https=rt.free_port())
state = {}


def config(ports, hosts="", epoch=0, migration=None, duration=None, limits=()):
    """The relay's lines: the password file, allowedPorts `ports`, allowedHosts `hosts`
    (when given), [clientAuthToken] epoch (and duration), [migration] (console, until)
    when given, [limits] authFailLimit = 1000 and `limits`."""
    token = ["epoch = %d" % epoch] + (["duration = " + duration] if duration else [])
    sections = [("clientAuthToken", token)]
    if migration:
        sections.append(("migration", ["consoleAddress = %s" % migration[0],
                                       "validUntilAt = %s" % migration[1]]))
    return relays.relay_config(security_token=SECRET, org=ORG, relay_id=RELAY_ID,
                               allowed_ports=ports, https=RELAY.https,
                               top=["passwordFile = users.txt"] +
                               (["allowedHosts = " + hosts] if hosts else []),
                               sections=sections,
                               limits=[("authFailLimit", "1000")] + list(limits))


def reload_and_wait():
    rec, _ = RELAY.reload()
    return rec is not None and rec.get("ok") is True


def basic_tunnel(user, pw, port, host="localhost"):
    st, _, s = rt.connect_tunnel("127.0.0.1", RELAY.https, "%s:%d" % (host, port),
                                 headers=rt.basic(user, pw))
    return s if st == 200 else None


def token(sub):
    """An access token for `sub`: a grant from `relaypro token grant`, then POST /v1/token
    (relays.Relay.access_token)."""
    tok = RELAY.access_token(sub)
    SECRETS.add(tok)
    return tok


def token_tunnel(tok, port, host="localhost"):
    st, _, s = rt.connect_tunnel("127.0.0.1", RELAY.https, "%s:%d" % (host, port),
                                 headers=rt.bearer(tok))
    return s if st == 200 else None


def ws_tunnel(tok, port):
    """A WebSocket tunnel (GET /v1/tunnel) with a bearer token: the wsclient.WS after the
    101, or None."""
    st, _, ws, _ = wsclient.handshake_on(RELAY.sock(True, timeout=10),
                                         "target=localhost:%d" % port, tok)
    return ws if st == 101 else None


def ws_echo(ws, payload):
    """One binary message out, the echoed message's payload back (None at EOF, on a close
    frame or when nothing whole came in time)."""
    if ws is None:
        return None
    try:
        ws.send_binary(payload)
        m = ws.recv_message(timeout=10)
    except OSError:
        return None
    return m[1] if m is not None and m[0] == 2 else None


def echoes(s):
    if s is None:
        return False
    p = os.urandom(2048)
    try:
        return rt.echo_roundtrip(s, p, timeout=10) == p
    except OSError:
        return False


def closed_by_relay(s, timeout=10):
    """True once the relay ends the tunnel: EOF (or a reset) within `timeout` s; nothing
    is sent on it first, so a byte arriving would be an echo of nothing. A WebSocket
    tunnel (wsclient.WS): its connection ends."""
    if s is None:
        return False
    if isinstance(s, wsclient.WS):
        return s.wait_eof(timeout)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = rt._recv(s, 4096)
        except socket.timeout:
            return False
        except (ConnectionResetError, OSError):
            return True
        if not d:
            return True
    return False


def revoked_lines(since, port=None, user=None):
    out = []
    for r in RELAY.events(None, since):
        if r.get("event") != "tunnel.close" or r.get("reason") != "revoked":
            continue
        if port is not None and r.get("port") != port:
            continue
        if user is not None and r.get("user") != user:
            continue
        out.append(r)
    return out


@rt.case
def setup():
    # The echo servers never end an idle tunnel themselves (only the relay may).
    con = rt.start_console(TMP, https=False, http=False, tls_echo=False,
                           extra_args=("--io-timeout", "600"))
    con2 = rt.start_console(TMP, https=False, http=False, tls_echo=False, name="console2",
                            extra_args=("--io-timeout", "600"))
    state.update(con=con, echo=con.echo_port, echo2=con2.echo_port)
    relays.write_users(RELAY.dir, [("alice", "alice-pass"), ("bob", "bob-pass"),
                                   ("carol", "carol-pass")])
    RELAY.write(config([state["echo"], state["echo2"]], hosts="127.0.0.1"))
    try:
        RELAY.start()
    except RuntimeError as e:
        rt.check(False, "relay started", str(e))
    else:
        rt.check(RELAY.start_rec is not None, "relay started")


@rt.case
def password_file():
    a = basic_tunnel("alice", "alice-pass", state["echo"])
    b = basic_tunnel("bob", "bob-pass", state["echo"])
    c = basic_tunnel("carol", "carol-pass", state["echo"])
    rt.check(echoes(a) and echoes(b) and echoes(c), "three Basic tunnels open and echo")
    since = RELAY.offset()
    # alice removed, bob's password changed, carol as she was
    relays.write_users(RELAY.dir, [("bob", "bob-new-pass"), ("carol", "carol-pass")])
    rt.check(reload_and_wait(), "reload with the new password file")
    rt.check(closed_by_relay(a), "a user removed from the password file loses her tunnel")
    rt.check(closed_by_relay(b), "a user whose password changed loses his tunnel")
    rt.check(echoes(c), "a user left as she was keeps her tunnel echoing")
    rt.check(RELAY.wait_event({"event": "tunnel.close", "reason": "revoked",
                                            "user": "alice"}, since=since) is not None,
             "tunnel.close reason revoked for alice")
    rt.check(RELAY.wait_event({"event": "tunnel.close", "reason": "revoked",
                                            "user": "bob"}, since=since) is not None,
             "tunnel.close reason revoked for bob")
    rt.check(not revoked_lines(since, user="carol"), "no revoked line for carol")
    b2 = basic_tunnel("bob", "bob-new-pass", state["echo"])
    rt.check(echoes(b2), "bob's new password opens a tunnel")
    for s in (a, b, c, b2):
        if s:
            s.close()


@rt.case
def epoch():
    tok0 = token("resp-old")
    t0 = token_tunnel(tok0, state["echo"])
    w0 = ws_tunnel(tok0, state["echo"])
    rt.check(echoes(t0), "a CONNECT tunnel with an epoch-0 token echoes")
    rt.check(ws_echo(w0, b"ping-before") == b"ping-before", "a WebSocket tunnel with it echoes")
    since = RELAY.offset()
    RELAY.write(config([state["echo"], state["echo2"]], hosts="127.0.0.1", epoch=1))
    rt.check(reload_and_wait(), "reload raising the epoch to 1")
    rt.check(closed_by_relay(t0), "the CONNECT tunnel of the older epoch is closed")
    rt.check(closed_by_relay(w0), "the WebSocket tunnel of the older epoch is closed")
    rt.check(len(revoked_lines(since, user="resp-old")) == 2 or
             rt.wait_until(lambda: len(revoked_lines(since, user="resp-old")) == 2, 10),
             "two tunnel.close lines with reason revoked")
    tok1 = token("resp-new")
    t1 = token_tunnel(tok1, state["echo"])
    rt.check(echoes(t1), "a token of the new epoch opens a tunnel")
    since = RELAY.offset()
    rt.check(reload_and_wait(), "a reload that keeps the epoch")
    rt.check(echoes(t1), "the tunnel of the current epoch keeps echoing")
    rt.check(not revoked_lines(since), "nothing revoked by a reload that changes nothing")
    for s in (t0, w0, t1):
        if s:
            s.close()


@rt.case
def allow_list():
    p1 = basic_tunnel("carol", "carol-pass", state["echo"])
    p2 = basic_tunnel("carol", "carol-pass", state["echo2"])
    h = basic_tunnel("carol", "carol-pass", state["echo"], host="127.0.0.1")
    rt.check(echoes(p1) and echoes(p2) and echoes(h), "tunnels to two ports and to an allowedHosts entry")
    since = RELAY.offset()
    RELAY.write(config([state["echo"]], epoch=1))
    rt.check(reload_and_wait(), "reload without the second port and without allowedHosts")
    rt.check(closed_by_relay(p2), "the tunnel to a port no longer allowed is closed")
    rt.check(closed_by_relay(h), "the tunnel to a host no longer allowed is closed")
    rt.check(echoes(p1), "the tunnel to the console's allowed port keeps echoing")
    rt.check(RELAY.wait_event({"event": "tunnel.close", "reason": "revoked",
                                            "port": state["echo2"]}, since=since) is not None,
             "tunnel.close reason revoked for the removed port")
    rt.check(RELAY.wait_event({"event": "tunnel.close", "reason": "revoked",
                                            "target": "127.0.0.1"}, since=since) is not None,
             "tunnel.close reason revoked for the removed host")
    for s in (p1, p2, h):
        if s:
            s.close()


@rt.case(timeout=90)
def migration_window_ends_by_time():
    until = time.time() + 6
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
    RELAY.write(config([state["echo"]], epoch=1, migration=("127.0.0.1", stamp)))
    rt.check(reload_and_wait(), "reload with a migration window of a few seconds")
    m = basic_tunnel("carol", "carol-pass", state["echo"], host="127.0.0.1")
    c = basic_tunnel("carol", "carol-pass", state["echo"])
    rt.check(echoes(m), "a tunnel to the migration console inside its window")
    rt.check(echoes(c), "a tunnel to the console")
    since = RELAY.offset()
    ev = RELAY.wait_event({"event": "tunnel.close", "reason": "revoked",
                                        "target": "127.0.0.1"}, since=since, timeout=40)
    rt.check(ev is not None, "the window ended by time (no reload): its tunnel closed, revoked")
    rt.check(closed_by_relay(m), "the migration tunnel's client sees the end")
    rt.check(echoes(c), "the console tunnel keeps echoing")
    for s in (m, c):
        if s:
            s.close()


@rt.case(timeout=90)
def expired_token_keeps_its_tunnel():
    RELAY.write(config([state["echo"]], epoch=1, duration="1s", limits=[("clockSkew", "1s")]))
    rt.check(reload_and_wait(), "reload with one-second tokens")
    tok = token("resp-short")
    t = token_tunnel(tok, state["echo"])
    rt.check(echoes(t), "a tunnel with a one-second token")

    def refused():
        st, _, _ = rt.connect_tunnel("127.0.0.1", RELAY.https, "localhost:%d" % state["echo"],
                                     headers=rt.bearer(tok))
        return st == 407
    rt.check(rt.wait_until(refused, timeout=30, interval=0.5), "the token is refused once expired")
    rt.check(echoes(t), "its open tunnel keeps echoing")
    rt.check(reload_and_wait(), "a reload after the token expired")
    rt.check(echoes(t), "the expired token's tunnel survives the reload")
    if t:
        t.close()


@rt.case
def no_secret_in_log():
    text = RELAY.tail_log()
    rt.check(not any(s in text for s in SECRETS | rt.secrets()),
             "no token, grant or security token in the log")
    rt.check("alice-pass" not in text and "bob-new-pass" not in text, "no password in the log")


rt.finish()

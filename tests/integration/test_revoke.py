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
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import base64

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
SECRET = "sec-" + secrets.token_hex(16)
ORG, RELAY_ID = 5, 11
SECRETS = {SECRET}
JWT_RE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

rt.init("revoke", deadline=300)
TMP = rt.make_tmpdir("relaytest-revoke-")
state = {}


def redact(v):
    s = v if isinstance(v, str) else repr(v)
    for t in sorted(SECRETS, key=len, reverse=True):
        s = s.replace(t, "<secret>")
    return JWT_RE.sub("<jwt>", s)[:600]


def write(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def config(ports, hosts="", epoch=0, top="", migration=None, extra_limits=""):
    lines = ["consoleAddress = localhost", "organizationId = %d" % ORG, "relayId = %d" % RELAY_ID,
             "securityToken = " + SECRET, "serverName = localhost", "passwordFile = users.txt",
             "allowedPorts = %s" % ",".join(str(p) for p in ports)]
    if hosts:
        lines.append("allowedHosts = %s" % hosts)
    lines += [top, "[httpsProxy]", "listen = 127.0.0.1:%d" % state["port"],
              "[logger]", "fileName = relay.log",
              "[clientAuthToken]", "epoch = %d" % epoch,
              "[limits]", "authFailLimit = 1000", extra_limits]
    if migration:
        lines += ["[migration]", "consoleAddress = %s" % migration[0],
                  "validUntilAt = %s" % migration[1]]
    return "\n".join(lines) + "\n"


def reload_and_wait():
    since = rt.log_offset(state["log"])
    os.kill(state["relay"].pid, signal.SIGHUP)
    ev = rt.wait_for_log(state["log"], "config.reload", timeout=10, since=since)
    return ev and ev.get("ok") is True


def basic_tunnel(user, pw, port, host="localhost"):
    st, _, s = rt.connect_tunnel("127.0.0.1", state["port"], "%s:%d" % (host, port),
                                 headers=rt.basic(user, pw))
    return s if st == 200 else None


def token(sub):
    r = subprocess.run([BIN, "token", "grant", "-c", state["cfg"], "--sub", sub, "--ttl", "10m"],
                       capture_output=True, text=True, timeout=20, env=rt.clean_environ())
    grant = r.stdout.strip()
    SECRETS.add(grant)
    resp = rt.http_request("127.0.0.1", state["port"], "POST", "/v1/token", tls=True,
                           headers=[("Authorization", "Bearer " + grant)])
    if resp.status != 200:
        raise RuntimeError("POST /v1/token: %d" % resp.status)
    tok = json.loads(resp.body)["access_token"]
    SECRETS.add(tok)
    return tok


def token_tunnel(tok, port, host="localhost"):
    st, _, s = rt.connect_tunnel("127.0.0.1", state["port"], "%s:%d" % (host, port),
                                 headers=rt.bearer(tok))
    return s if st == 200 else None


def ws_tunnel(tok, port):
    """A WebSocket tunnel (GET /v1/tunnel) with a bearer token; the socket after the 101."""
    s = rt.tls_connect("127.0.0.1", state["port"], server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(rt.build_request("GET", "/v1/tunnel?target=localhost:%d" % port, [
        ("Host", "localhost"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
        ("Authorization", "Bearer " + tok)]))
    _, status, _, _, _ = rt.read_response_head(s, timeout=10)
    if status != 101:
        s.close()
        return None
    return s


def ws_echo(s, payload):
    """One masked binary frame out (payload < 126 bytes), the echoed frame's payload back."""
    mask = os.urandom(4)
    s.sendall(bytes([0x82, 0x80 | len(payload)]) + mask +
              bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    got = bytearray()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if len(got) >= 2 and len(got) >= 2 + (got[1] & 0x7f):
            return bytes(got[2:2 + (got[1] & 0x7f)])
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = rt._recv(s, 4096)
        except (socket.timeout, ConnectionResetError):
            return None
        if not d:
            return None
        got += d
    return None


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
    is sent on it first, so a byte arriving would be an echo of nothing."""
    if s is None:
        return False
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
    for r in rt.read_json_lines(state["log"], since):
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
    state.update(con=con, echo=con.echo_port, echo2=con2.echo_port, port=rt.free_port(),
                 log=os.path.join(TMP, "relay.log"), cfg=os.path.join(TMP, "config.ini"))
    write(os.path.join(TMP, "users.txt"), "alice:alice-pass\nbob:bob-pass\ncarol:carol-pass\n")
    write(state["cfg"], config([state["echo"], state["echo2"]], hosts="127.0.0.1"))
    state["relay"] = rt.start_process([BIN, "run", "-c", state["cfg"]], tmpdir=TMP, name="relay",
                                      cwd=TMP)
    rt.check(rt.wait_for_log(state["log"], "start", timeout=15), "relay started")


@rt.case
def password_file():
    a = basic_tunnel("alice", "alice-pass", state["echo"])
    b = basic_tunnel("bob", "bob-pass", state["echo"])
    c = basic_tunnel("carol", "carol-pass", state["echo"])
    rt.check(echoes(a) and echoes(b) and echoes(c), "three Basic tunnels open and echo")
    since = rt.log_offset(state["log"])
    # alice removed, bob's password changed, carol as she was
    write(os.path.join(TMP, "users.txt"), "bob:bob-new-pass\ncarol:carol-pass\n")
    rt.check(reload_and_wait(), "reload with the new password file")
    rt.check(closed_by_relay(a), "a user removed from the password file loses her tunnel")
    rt.check(closed_by_relay(b), "a user whose password changed loses his tunnel")
    rt.check(echoes(c), "a user left as she was keeps her tunnel echoing")
    rt.check(rt.wait_for_log(state["log"], {"event": "tunnel.close", "reason": "revoked",
                                            "user": "alice"}, since=since) is not None,
             "tunnel.close reason revoked for alice")
    rt.check(rt.wait_for_log(state["log"], {"event": "tunnel.close", "reason": "revoked",
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
    since = rt.log_offset(state["log"])
    write(state["cfg"], config([state["echo"], state["echo2"]], hosts="127.0.0.1", epoch=1))
    rt.check(reload_and_wait(), "reload raising the epoch to 1")
    rt.check(closed_by_relay(t0), "the CONNECT tunnel of the older epoch is closed")
    rt.check(closed_by_relay(w0), "the WebSocket tunnel of the older epoch is closed")
    rt.check(len(revoked_lines(since, user="resp-old")) == 2 or
             rt.wait_until(lambda: len(revoked_lines(since, user="resp-old")) == 2, 10),
             "two tunnel.close lines with reason revoked")
    tok1 = token("resp-new")
    t1 = token_tunnel(tok1, state["echo"])
    rt.check(echoes(t1), "a token of the new epoch opens a tunnel")
    since = rt.log_offset(state["log"])
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
    since = rt.log_offset(state["log"])
    write(state["cfg"], config([state["echo"]], epoch=1))
    rt.check(reload_and_wait(), "reload without the second port and without allowedHosts")
    rt.check(closed_by_relay(p2), "the tunnel to a port no longer allowed is closed")
    rt.check(closed_by_relay(h), "the tunnel to a host no longer allowed is closed")
    rt.check(echoes(p1), "the tunnel to the console's allowed port keeps echoing")
    rt.check(rt.wait_for_log(state["log"], {"event": "tunnel.close", "reason": "revoked",
                                            "port": state["echo2"]}, since=since) is not None,
             "tunnel.close reason revoked for the removed port")
    rt.check(rt.wait_for_log(state["log"], {"event": "tunnel.close", "reason": "revoked",
                                            "target": "127.0.0.1"}, since=since) is not None,
             "tunnel.close reason revoked for the removed host")
    for s in (p1, p2, h):
        if s:
            s.close()


@rt.case(timeout=90)
def migration_window_ends_by_time():
    until = time.time() + 6
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
    write(state["cfg"], config([state["echo"]], epoch=1, migration=("127.0.0.1", stamp)))
    rt.check(reload_and_wait(), "reload with a migration window of a few seconds")
    m = basic_tunnel("carol", "carol-pass", state["echo"], host="127.0.0.1")
    c = basic_tunnel("carol", "carol-pass", state["echo"])
    rt.check(echoes(m), "a tunnel to the migration console inside its window")
    rt.check(echoes(c), "a tunnel to the console")
    since = rt.log_offset(state["log"])
    ev = rt.wait_for_log(state["log"], {"event": "tunnel.close", "reason": "revoked",
                                        "target": "127.0.0.1"}, since=since, timeout=40)
    rt.check(ev is not None, "the window ended by time (no reload): its tunnel closed, revoked")
    rt.check(closed_by_relay(m), "the migration tunnel's client sees the end")
    rt.check(echoes(c), "the console tunnel keeps echoing")
    for s in (m, c):
        if s:
            s.close()


@rt.case(timeout=90)
def expired_token_keeps_its_tunnel():
    text = config([state["echo"]], epoch=1, extra_limits="clockSkew = 1s")
    write(state["cfg"], text.replace("[clientAuthToken]\n", "[clientAuthToken]\nduration = 1s\n"))
    rt.check(reload_and_wait(), "reload with one-second tokens")
    tok = token("resp-short")
    t = token_tunnel(tok, state["echo"])
    rt.check(echoes(t), "a tunnel with a one-second token")

    def refused():
        st, _, _ = rt.connect_tunnel("127.0.0.1", state["port"], "localhost:%d" % state["echo"],
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
    with open(state["log"], errors="replace") as f:
        text = f.read()
    rt.check(not any(s in text for s in SECRETS), "no token or security token in the log")
    rt.check("alice-pass" not in text and "bob-new-pass" not in text, "no password in the log")


rt.finish()

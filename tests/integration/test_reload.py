#!/usr/bin/env python3
"""test_reload.py — SIGHUP reload (docs/configuration.md): a password-file change takes effect, an
allowedPorts change takes effect, a tunnel open across reloads keeps echoing while its user
and target stay accepted (and is closed, revoked, once its target is not: test_revoke.py
has the other revocations), a broken configuration is refused and the old one keeps
serving, restart-only keys are reported."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()

state = {}


def write(path, text):
    rt.write_file(path, text, atomic=True)


def config(ports, listen, extra=""):
    return ("consoleAddress = localhost\nallowedPorts = %s\npasswordFile = users.txt\n"
            "serverName = localhost\n%s[httpsProxy]\nlisten = 127.0.0.1:%d\n"
            "[logger]\nfileName = relay.log\n" % (ports, extra, listen))


def tunnel(user, pw):
    return rt.connect_tunnel("127.0.0.1", state["port"], "localhost:%d" % state["echo"],
                             headers=rt.basic(user, pw))


def reload_and_wait():
    return relays.reload(state["relay"].pid, state["log"])[0]


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    con = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    state.update(tmp=tmp, con=con, echo=con.echo_port, port=rt.free_port(),
                 log=os.path.join(tmp, "relay.log"), cfg=os.path.join(tmp, "config.ini"))
    write(os.path.join(tmp, "users.txt"), "alice:first-pass\ncarol:stays\n")
    write(state["cfg"], config(con.echo_port, state["port"]))
    state["relay"] = rt.start_process([BIN, "run", "-c", state["cfg"]], tmpdir=tmp, name="relay")
    rt.check(rt.wait_for_log(state["log"], "start", timeout=15), "relay started")


@rt.case
def password_change_and_open_tunnel():
    st, _, sock = tunnel("carol", "stays")
    rt.check_eq(st, 200, "carol opens a tunnel before the reload")
    state["open"] = sock
    write(os.path.join(state["tmp"], "users.txt"), "bob:second-pass\ncarol:stays\n")
    ev = reload_and_wait()
    rt.check(ev and ev.get("ok") is True, "reload logged ok", ev)
    st, _, _ = tunnel("alice", "first-pass")
    rt.check_eq(st, 407, "alice refused after her line was removed")
    st, _, s2 = tunnel("bob", "second-pass")
    rt.check_eq(st, 200, "bob accepted after the reload")
    if st == 200:
        s2.close()
    payload = os.urandom(65536)
    rt.check(rt.echo_roundtrip(sock, payload) == payload, "tunnel opened before the reload still echoes")


@rt.case
def broken_config_keeps_running():
    good = open(state["cfg"]).read()
    write(state["cfg"], good + "noSuchKey = 1\n")
    ev = reload_and_wait()
    rt.check(ev and ev.get("ok") is False and "noSuchKey" in ev.get("error", ""),
             "bad config: reload refused with the reason", ev)
    st, _, s = tunnel("bob", "second-pass")
    rt.check_eq(st, 200, "old configuration keeps serving after a bad reload")
    if st == 200:
        s.close()
    write(os.path.join(state["tmp"], "users.txt"), "broken line without colon\n")
    write(state["cfg"], good)
    ev = reload_and_wait()
    rt.check(ev and ev.get("ok") is False, "bad password file: reload refused", ev)
    st, _, s = tunnel("bob", "second-pass")
    rt.check_eq(st, 200, "old password file keeps serving")
    if st == 200:
        s.close()
    write(os.path.join(state["tmp"], "users.txt"), "bob:second-pass\ncarol:stays\n")


@rt.case
def migration_window():
    import time as _t
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    future = _t.strftime(fmt, _t.gmtime(_t.time() + 3600))
    past = _t.strftime(fmt, _t.gmtime(_t.time() - 60))
    base = config(state["echo"], state["port"])
    write(state["cfg"], base + "[migration]\nconsoleAddress = 127.0.0.1\nvalidUntilAt = %s\n" % future)
    ev = reload_and_wait()
    rt.check(ev and ev.get("ok") is True, "reload with a migration window", ev)
    st, _, s = rt.connect_tunnel("127.0.0.1", state["port"], "127.0.0.1:%d" % state["echo"],
                                 headers=rt.basic("bob", "second-pass"))
    rt.check_eq(st, 200, "migration console allowed inside its window")
    if st == 200:
        s.close()
    write(state["cfg"], base + "[migration]\nconsoleAddress = 127.0.0.1\nvalidUntilAt = %s\n" % past)
    ev = reload_and_wait()
    rt.check(ev and ev.get("ok") is True, "reload with the window over", ev)
    st, _, _ = rt.connect_tunnel("127.0.0.1", state["port"], "127.0.0.1:%d" % state["echo"],
                                 headers=rt.basic("bob", "second-pass"))
    rt.check_eq(st, 403, "migration console refused after validUntilAt")
    write(state["cfg"], base)
    reload_and_wait()


@rt.case
def epoch_raise_revokes_tokens():
    """[clientAuthToken] epoch raised by a reload: older access tokens get token_revoked."""
    sec = "reload-test-security-token"
    base = config(state["echo"], state["port"],
                  "organizationId = 9\nrelayId = 3\nsecurityToken = %s\n" % sec)
    write(state["cfg"], base)
    rt.check(reload_and_wait() is not None, "reload with a security token")
    grant = rt.jwt_hs256({"sub": "resp-9", "org": 9, "aud": "relaypro:3",
                          "exp": int(__import__("time").time()) + 300}, sec)
    r = rt.http_request("127.0.0.1", state["port"], "POST", "/v1/token", tls=True,
                        headers={"Authorization": "Bearer " + grant})
    rt.check_eq(r.status, 200, "access token issued")
    tok = __import__("json").loads(r.body).get("access_token", "") if r.status == 200 else ""
    st, _, s = rt.connect_tunnel("127.0.0.1", state["port"], "localhost:%d" % state["echo"],
                                 headers={"Proxy-Authorization": "Bearer " + tok})
    rt.check_eq(st, 200, "token opens a tunnel at epoch 0")
    if st == 200:
        s.close()
    write(state["cfg"], base + "[clientAuthToken]\nepoch = 1\n")
    rt.check(reload_and_wait() is not None, "reload with epoch 1")
    st, _, body = rt.connect_tunnel("127.0.0.1", state["port"], "localhost:%d" % state["echo"],
                                    headers={"Proxy-Authorization": "Bearer " + tok})
    rt.check(st == 407 and b"token_revoked" in (body or b""), "older token revoked after the reload",
             st)
    write(state["cfg"], config(state["echo"], state["port"]))
    reload_and_wait()


@rt.case
def targets_and_restart_only_keys():
    other = rt.free_port()
    write(state["cfg"], config("443", other))
    ev = reload_and_wait()
    rt.check(ev and ev.get("ok") is True and "httpsProxy.listen" in ev.get("restart_required", ""),
             "a listen change is reported as needing a restart", ev)
    st, _, _ = tunnel("bob", "second-pass")
    rt.check_eq(st, 403, "echo port no longer allowed after allowedPorts changed")
    # Its target is no longer allowed: the tunnel opened before is revoked (docs/configuration.md).
    rt.check(rt.read_until_close(state["open"], timeout=10) == b"",
             "the old tunnel to a port no longer allowed is closed")
    rt.check(rt.wait_for_log(state["log"], {"event": "tunnel.close", "reason": "revoked",
                                            "user": "carol"}) is not None,
             "... with tunnel.close reason revoked")
    state["open"].close()
    rc = state["relay"].stop()
    rt.check_eq(rc, 0, "relay exits 0 on SIGTERM")


if __name__ == "__main__":
    rt.main("reload", deadline=120)

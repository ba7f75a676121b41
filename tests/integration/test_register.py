#!/usr/bin/env python3
"""Console registration (docs/configuration.md) against tests/console.py, through two small drivers in
tests/tools/ built by the Makefile (register_tool: register.c + cfgwrite.c as the relay will use
them; cfgwrite_tool: cfgwrite_update in a loop for the crash test).

Cases: success with write-back (file compared whole, reloads, no token in any output);
CA from RELAYPRO_CONSOLE_CA_FILE, inline PEM (real newlines and one-line "\\n" form);
503 retried with growing backoff; wrong deployment token -> 401 logged as error and
retried slowly while the process keeps running; unreachable console -> attempt gaps grow;
a console certificate from another CA, an IP-literal address (name check) and the system
bundle -> refused, logged, no token; a console weaker than the relay's TLS policy (CBC,
static RSA, 3DES only) -> refused, logged as error, no token; register_stop cancels; kill -9 during write-back
30 times -> the file is always the old or the new text, never torn.
Containers (the real binary): an environment-only relay with a persistent private folder
registers once across two starts (<privateFolder>/registration.ini, 0600; a reload reads
it again); a read-only config file falls back to registration.ini; registration.ini sits
below the environment and above the config file; `relaypro register --env` prints exactly
RELAYPRO_RELAY_ID= and RELAYPRO_SECURITY_TOKEN= lines that `kubectl create secret generic
--from-env-file` takes unchanged (kubectl's client-side dry run), changes nothing and
exits 0; `relaypro register` writes back; a refusal exits 1 after one attempt, an
unreachable console exits 3 once --timeout has passed.
Last line: `register: N passed, N failed`.
"""

import base64
import calendar
import glob
import hashlib
import json
import os
import re
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

rt.init("register", deadline=200)
TMP = rt.make_tmpdir("relaytest-register-")
REPO = rt.REPO_DIR
VERSION = rt.project_version()  # what the Makefile builds the drivers with
ORG = 42
DEP_TOKEN = "dep-good-token-5f2a"
SEC_TOKEN = "sec-token-XYZ-9c1e"
RELAY_ID = 4242
PRO_ID = "12345678-1234-4abc-8def-123456789abc"
SECRETS = (DEP_TOKEN, SEC_TOKEN, "wrong-token-77")
TOOLS = {}


def sha16(s):
    return hashlib.sha256(s.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- build the drivers

def build_tools():
    """The two drivers, linked by the Makefile against the relay's modules. Raises with the
    compiler output."""
    for tool in ("register_tool", "cfgwrite_tool"):
        path, why = rt.build_tool(tool)
        if path is None:
            raise RuntimeError("cannot build %s:\n%s" % (tool, why))
        TOOLS[tool] = path


# ---------------------------------------------------------------- helpers

def write_config(name, address, token=DEP_TOKEN, ca="console/console-ca.pem", extra=""):
    path = os.path.join(TMP, name + ".ini")
    text = ("# relaypro test configuration\n"
            "consoleAddress = %s\n"
            "organizationId = %d\n"
            "relayProId = %s\n"
            "; the deployment token goes away after registration\n"
            "deploymentToken = %s\n" % (address, ORG, PRO_ID, token))
    if ca:
        text += "consoleCACert = %s\n" % ca
    text += "serverName = relay.test\n%s\n[limits]\nidleTimeout = 15m\n" % extra
    with open(path, "w") as f:
        f.write(text)
    return path, text


def run_tool(name, config, args=(), env=None, timeout=30):
    """Run register_tool to its end; returns (exit code, stdout, log records, raw stderr)."""
    p = rt.start_process([TOOLS["register_tool"], config] + list(args), env=env,
                         tmpdir=TMP, name=name)
    rc = p.wait(timeout)
    if rc is None:
        p.kill()
    return rc, p.stdout(), rt.read_json_lines(p.stderr_path), p.stderr()


def events(recs, name):
    return [r for r in recs if r.get("event") == name]


def no_secrets(name, *texts):
    joined = "\n".join(texts)
    rt.check(not any(s in joined for s in SECRETS), name + ": no token in any output")


def attempts(con):
    return con.register_attempts()


def ms(ts):
    """Milliseconds of a log timestamp "2026-11-23T10:00:00.123Z"."""
    t = time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(ts[20:23])


# ---------------------------------------------------------------- cases

CON = None


@rt.case(timeout=60)
def setup():
    global CON
    build_tools()
    rt.check(os.access(TOOLS["register_tool"], os.X_OK), "drivers built")
    CON = rt.start_console(TMP, **rt.HTTPS_ONLY, org=ORG,
                           deployment_token=DEP_TOKEN, security_token=SEC_TOKEN,
                           relay_id=RELAY_ID)


@rt.case(timeout=30)
def success_and_write_back():
    cfg, text = write_config("ok", CON.address())
    before = len(attempts(CON))
    os.chmod(cfg, 0o640)
    rc, out, recs, err = run_tool("ok", cfg, ["--write", "--timeout", "20"])
    rt.check_eq(rc, 0, "success: exit 0")
    rt.check("registered relayId=%d token_sha256=%s\n" % (RELAY_ID, sha16(SEC_TOKEN)) in out,
             "success: done() got relayId and the token", out)
    rt.check("written\n" in out, "success: config written", out)
    rt.check("reloaded relayId=%d token_sha256=%s deploymentToken=empty\n"
             % (RELAY_ID, sha16(SEC_TOKEN)) in out, "success: rewritten config loads", out)
    want = text.replace("; the deployment token goes away after registration\n"
                        "deploymentToken = %s\n" % DEP_TOKEN,
                        "; the deployment token goes away after registration\n")
    want = want.replace("serverName = relay.test\n",
                        "serverName = relay.test\nrelayId = %d\nregisteredTo = %s\n"
                        "securityToken = %s\n" % (RELAY_ID, CON.address(), SEC_TOKEN))
    with open(cfg) as f:
        rt.check_eq(f.read(), want, "success: file = old text with the keys changed, byte for byte")
    rt.check_eq(oct(os.stat(cfg).st_mode & 0o7777), oct(0o640), "success: file mode kept")
    rt.check(not glob.glob(cfg + ".tmp.*"), "success: no temporary file left")
    new = attempts(CON)[before:]
    rt.check_eq(len(new), 1, "success: one attempt")
    if new:
        a = new[-1]
        rt.check_eq((a.get("status"), a.get("organizationId"), a.get("relayProId"),
                     a.get("version"), a.get("contentType")),
                    (200, ORG, PRO_ID, VERSION, "application/json"), "success: request fields")
        rt.check_eq(a.get("hostname"), socket.gethostname(), "success: hostname sent")
        rt.check(a.get("deploymentTokenMatch") is True, "success: deployment token sent intact")
    ok = events(recs, "register.ok")
    rt.check(len(ok) == 1 and ok[0].get("relay_id") == RELAY_ID and ok[0].get("attempt") == 1
             and ok[0].get("level") == "info", "success: register.ok logged", recs)
    no_secrets("success", out, err, open(CON.register_log).read())


@rt.case(timeout=30)
def ca_sources():
    cfg, _ = write_config("envca", CON.address(), ca=None)
    rc, out, _, err = run_tool("envca", cfg, ["--timeout", "10"],
                               env={"RELAYPRO_CONSOLE_CA_FILE": CON.ca})
    rt.check(rc == 0 and "registered relayId=%d" % RELAY_ID in out,
             "CA from RELAYPRO_CONSOLE_CA_FILE", out + err[-500:])
    with open(CON.ca) as f:
        pem = f.read()
    rc, out, _, err = run_tool("inlineca", cfg, ["--timeout", "10"],
                               env={"RELAYPRO_CONSOLE_CA_CERT": pem.replace("\n", "\\n")})
    rt.check(rc == 0 and "registered" in out, "inline consoleCACert, one line with \\n",
             out + err[-500:])
    rc, out, _, err = run_tool("inlineca2", cfg, ["--timeout", "10", "--inline-ca", CON.ca])
    rt.check(rc == 0 and "registered" in out, "inline consoleCACert with real newlines",
             out + err[-500:])
    cfg, _ = write_config("missingca", CON.address(), ca="nowhere/ca.pem")
    rc, out, recs, _ = run_tool("missingca", cfg, ["--timeout", "1", "--backoff", "100", "400"])
    fails = events(recs, "register.fail")
    rt.check(rc == 3 and fails and "cannot read CA file" in fails[0].get("reason", "")
             and fails[0].get("level") == "error", "missing CA file: logged, retried", recs[:2])


@rt.case(timeout=30)
def retry_on_503():
    con = rt.start_console(TMP, **rt.HTTPS_ONLY, org=ORG,
                           deployment_token=DEP_TOKEN, security_token=SEC_TOKEN,
                           relay_id=RELAY_ID, fail_register=2, name="console503")
    cfg, _ = write_config("r503", con.address(), ca=con.ca)
    rc, out, recs, err = run_tool("r503", cfg, ["--timeout", "20", "--backoff", "200", "5000"])
    rt.check(rc == 0 and "registered relayId=%d" % RELAY_ID in out, "503: registered in the end",
             out)
    fails = events(recs, "register.fail")
    rt.check_eq([(f.get("status"), f.get("level"), f.get("attempt")) for f in fails],
                [(503, "warn", 1), (503, "warn", 2)], "503: two failures logged as warnings")
    if len(fails) == 2:
        r1, r2 = fails[0]["retry_ms"], fails[1]["retry_ms"]
        rt.check(160 <= r1 <= 240 and 320 <= r2 <= 480, "503: backoff 200 then 400 (±20%)",
                 (r1, r2))
    ok = events(recs, "register.ok")
    rt.check(len(ok) == 1 and ok[0].get("attempt") == 3, "503: register.ok on attempt 3", ok)
    rt.check_eq([a.get("status") for a in attempts(con)], [503, 503, 200],
                "503: console saw three attempts")
    no_secrets("503", out, err)
    con.stop()


@rt.case(timeout=30)
def wrong_token_401():
    cfg, _ = write_config("r401", CON.address(), token="wrong-token-77")
    before = len(attempts(CON))
    t0 = time.monotonic()
    rc, out, recs, err = run_tool("r401", cfg, ["--timeout", "3", "--backoff", "100", "600"])
    took = time.monotonic() - t0
    rt.check(rc == 3 and took >= 2.9, "401: process keeps running until its own timeout",
             (rc, took))
    rt.check("registered" not in out, "401: no registration", out)
    new = attempts(CON)[before:]
    rt.check(len(new) >= 4, "401: retried (console saw %d attempts in 3 s)" % len(new))
    rt.check(all(a.get("status") == 401 and a.get("deploymentTokenMatch") is False for a in new),
             "401: every attempt refused", new)
    fails = events(recs, "register.fail")
    rt.check(fails and all(f.get("level") == "error" and f.get("status") == 401 for f in fails),
             "401: logged as error with the status", fails[:2])
    rt.check(fails and all(480 <= f.get("retry_ms", 0) <= 720 for f in fails),
             "401: retried slowly, at the cap (600 ms ±20%)", [f.get("retry_ms") for f in fails])
    no_secrets("401", out, err)


@rt.case(timeout=30)
def unreachable_backoff():
    port = rt.free_port()
    cfg, _ = write_config("down", "localhost:%d" % port)
    rc, out, recs, err = run_tool("down", cfg, ["--timeout", "4", "--backoff", "100", "1600"])
    rt.check(rc == 3 and "registered" not in out, "unreachable: still trying at the timeout")
    fails = events(recs, "register.fail")
    rt.check(len(fails) >= 5, "unreachable: %d attempts in 4 s" % len(fails))
    rt.check(all("cannot connect" in f.get("reason", "") and f.get("level") == "warn"
                 for f in fails), "unreachable: reason and level", fails[:1])
    waits = [f.get("retry_ms") for f in fails]
    rt.check(waits[:5] == sorted(waits[:5]) and len(set(waits[:5])) == len(waits[:5]),
             "unreachable: retry delays grow", waits)
    gaps = [ms(b["ts"]) - ms(a["ts"]) for a, b in zip(fails, fails[1:])]
    rt.check(len(gaps) >= 4 and all(gaps[i] < gaps[i + 1] for i in range(3))
             and gaps[0] >= 70, "unreachable: attempt times spread out", gaps)
    no_secrets("unreachable", out, err)


@rt.case(timeout=30)
def certificate_refused():
    other = rt.start_console(TMP, **rt.HTTPS_ONLY, org=ORG,
                             deployment_token=DEP_TOKEN, security_token=SEC_TOKEN,
                             relay_id=RELAY_ID, name="otherca", extra_args=["--new-ca"])
    cfg, _ = write_config("otherca", other.address(), ca=CON.ca)
    rc, out, recs, err = run_tool("otherca", cfg, ["--timeout", "2", "--backoff", "100", "400"])
    fails = events(recs, "register.fail")
    rt.check(rc == 3 and "registered" not in out, "other CA: no registration", out)
    rt.check(fails and all("not trusted" in f.get("reason", "") and f.get("level") == "error"
                           for f in fails), "other CA: refused and logged as error", fails[:1])
    rt.check_eq(attempts(other), [], "other CA: no request reached the console")
    no_secrets("other CA", out, err)
    other.stop()

    cfg, _ = write_config("iplit", CON.address(host="127.0.0.1"))
    before = len(attempts(CON))
    rc, out, recs, _ = run_tool("iplit", cfg, ["--timeout", "1", "--backoff", "100", "400"])
    fails = events(recs, "register.fail")
    rt.check(rc == 3 and fails and "does not name" in fails[0].get("reason", ""),
             "IP-literal address: BearSSL name check refuses", fails[:1])
    rt.check_eq(len(attempts(CON)), before, "IP-literal address: nothing sent")

    cfg, _ = write_config("sysca", CON.address(), ca=None)
    rc, out, recs, _ = run_tool("sysca", cfg, ["--timeout", "1", "--backoff", "100", "400"])
    fails = events(recs, "register.fail")
    rt.check(rc == 3 and fails and ("not trusted" in fails[0].get("reason", "") or
                                    "cannot read CA file" in fails[0].get("reason", "")),
             "no CA configured: system bundle used, test CA not in it", fails[:1])


@rt.case(timeout=30)
def weak_tls_refused():
    """The registration client holds the listener's TLS policy (TLS 1.2, ECDHE with an AEAD
    suite): a console offering only CBC suites, static RSA key exchange (even with GCM) or
    3DES gets no handshake, so the deployment token is never sent to it."""
    weak = "AES128-SHA:AES256-SHA256:AES128-GCM-SHA256:DES-CBC3-SHA:ECDHE-RSA-AES128-SHA:" \
           "ECDHE-RSA-AES256-SHA384:@SECLEVEL=0"
    for tag, ciphers, ok in (("weak", weak, False),
                             ("weak+aead", weak + ":ECDHE-RSA-AES128-GCM-SHA256", True)):
        con = rt.start_console(TMP, **rt.HTTPS_ONLY, org=ORG, deployment_token=DEP_TOKEN,
                               security_token=SEC_TOKEN, relay_id=RELAY_ID, name="console-" + tag,
                               extra_args=["--tls-ciphers", ciphers])
        cfg, _ = write_config(tag, con.address(), ca=con.ca)
        rc, out, recs, err = run_tool(tag, cfg, ["--timeout", "2", "--backoff", "100", "400"])
        fails = events(recs, "register.fail")
        if ok:
            rt.check(rc == 0 and "registered" in out and len(attempts(con)) == 1,
                     "%s: one ECDHE+AEAD suite offered: registered" % tag, out + err[-300:])
        else:
            rt.check(rc == 3 and "registered" not in out, "%s: no registration" % tag, out)
            rt.check(fails and all("none of the relay's TLS 1.2 ECDHE suites" in f.get("reason", "")
                                   and f.get("level") == "error" for f in fails),
                     "%s: refused, logged as error with the reason" % tag, fails[:1])
            rt.check_eq(attempts(con), [], "%s: no request (no token) reached the console" % tag)
        no_secrets(tag, out, err)
        con.stop()


@rt.case(timeout=60)
def stop_cancels():
    """register_stop ends the retries: the tool stops once the console has refused two
    attempts (counted, not timed); after the stop at most the attempt already under way
    may still reach the console, where a registration that kept retrying (backoff 100-200
    ms) would make several in the 1.5 s the tool waits after it."""
    cfg, _ = write_config("stop", CON.address(), token="wrong-token-77")
    before = len(attempts(CON))
    p = rt.start_process([TOOLS["register_tool"], cfg, "--stop-on-signal", "--timeout", "30",
                          "--backoff", "100", "200"], tmpdir=TMP, name="stop")
    retried = rt.wait_until(lambda: len(attempts(CON)) - before >= 2, timeout=30)
    rt.check(retried, "stop: the registration retries (two attempts refused before the stop)",
             len(attempts(CON)) - before)
    p.signal(signal.SIGUSR1)
    rc = p.wait(30)
    if rc is None:
        p.kill()
    out = p.stdout()
    m = re.search(r"^stop_at_ms=([0-9]+)$", out, re.M)
    rt.check(rc == 0 and m and "stopped" in out, "stop: done not called, tool ends", out)
    if not m:
        return
    after = [a for a in attempts(CON)[before:] if ms(a["ts"]) > int(m.group(1))]
    rt.check(len(after) <= 1, "stop: no attempt begun after register_stop (%d reached the "
             "console after it; one may have been under way)" % len(after), after[:3])
    n = len(events(rt.read_json_lines(p.stderr_path), "register.fail"))
    rt.check(n >= 2, "stop: each refused attempt before the stop logged (%d failures)" % n)


@rt.case(timeout=40)
def relay_end_to_end():
    """The real binary registers at start, saves the result, and uses it at once."""
    relay_bin = rt.relay_bin()
    d = os.path.join(TMP, "relay-e2e")
    os.makedirs(d, exist_ok=True)
    port = rt.free_port()
    cfg = os.path.join(d, "config.ini")
    text = ("# relay registered by the test\n"
            "consoleAddress = %s\n"
            "organizationId = %d\n"
            "deploymentToken = %s\n"
            "consoleCACert = %s\n"
            "serverName = localhost\n"
            "[httpsProxy]\nlisten = 127.0.0.1:%d\n"
            "[logger]\nfileName = relay.log\n" % (CON.address(), ORG, DEP_TOKEN, CON.ca, port))
    with open(cfg, "w") as f:
        f.write(text)
    before = len(attempts(CON))
    relay = rt.start_process([relay_bin, "run", "-c", cfg], tmpdir=d, name="relay")
    log = os.path.join(d, "relay.log")
    ev = rt.wait_for_log(log, "register.saved", timeout=20)
    rt.check(ev is not None and ev.get("saved") is True and ev.get("relay_id") == RELAY_ID,
             "relay: registered and saved", ev)
    with open(cfg) as f:
        new = f.read()
    rt.check("deploymentToken" not in new and ("relayId = %d\n" % RELAY_ID) in new
             and ("securityToken = %s\n" % SEC_TOKEN) in new
             and new.startswith("# relay registered by the test\n")
             and "relayProId = " in new, "relay: config rewritten (comment kept, generated relayProId saved)")
    r = rt.http_request("127.0.0.1", port, "GET", "/readyz", tls=True)
    rt.check_eq(r.status, 200, "relay: ready once registered")
    grant = rt.jwt_hs256({"sub": "r-1", "org": ORG, "aud": "relaypro:%d" % RELAY_ID,
                          "exp": int(time.time()) + 300}, SEC_TOKEN)
    r = rt.http_request("127.0.0.1", port, "POST", "/v1/token", tls=True,
                        headers={"Authorization": "Bearer " + grant})
    rt.check_eq(r.status, 200, "relay: the received security token verifies grants at once")
    rt.check_eq(relay.stop(), 0, "relay: exits 0")
    relay = rt.start_process([relay_bin, "run", "-c", cfg], tmpdir=d, name="relay2")
    rt.check(rt.wait_for_log(log, "start", timeout=15, since=0) is not None, "relay: restarted")
    time.sleep(1)
    rt.check_eq(len(attempts(CON)) - before, 1, "relay: no second registration after the restart")
    rt.check_eq(relay.stop(), 0, "relay: second run exits 0")
    no_secrets("relay", open(log).read(), relay.stdout(), relay.stderr())


# ---------------------------------------------------------------- containers (docs/configuration.md)

def env_only_argv(argv):
    """argv run with no config file at all, as in a container: -c is not given, and (as
    root) /opt is an empty tmpfs in a private mount namespace, so a package's
    /opt/relaypro/config.ini on this machine cannot be picked up."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs tmpfs /opt && exec "$@"', "sh"] + list(argv)
    return list(argv)


def container_env(d, port, **extra):
    env = {"RELAYPRO_CONSOLE_ADDRESS": CON.address(), "RELAYPRO_ORGANIZATION_ID": str(ORG),
           "RELAYPRO_DEPLOYMENT_TOKEN": DEP_TOKEN, "RELAYPRO_CONSOLE_CA_FILE": CON.ca,
           "RELAYPRO_PRIVATE_FOLDER": os.path.join(d, "state"),
           "RELAYPRO_HTTPS_PROXY_LISTEN": "127.0.0.1:%d" % port,
           "RELAYPRO_SERVER_NAME": "localhost",
           "RELAYPRO_LOGGER_FILE_NAME": os.path.join(d, "relay.log")}
    env.update(extra)
    return env


def grant_ok(port, relay_id=RELAY_ID, token=SEC_TOKEN):
    grant = rt.jwt_hs256({"sub": "r-1", "org": ORG, "aud": "relaypro:%d" % relay_id,
                          "exp": int(time.time()) + 300}, token)
    r = rt.http_request("127.0.0.1", port, "POST", "/v1/token", tls=True,
                        headers={"Authorization": "Bearer " + grant})
    return r.status


def ini_values(path):
    out = {}
    with open(path) as f:
        for ln in f:
            if ln.strip() and not ln.lstrip().startswith(("#", ";")):
                k, _, v = ln.partition("=")
                out[k.strip()] = v.strip()
    return out


@rt.case(timeout=60)
def env_only_registers_once():
    """No config file, a persistent private folder: the first start registers and writes
    <privateFolder>/registration.ini; the second start is ready at once and the console
    sees no second registration; SIGHUP reads the file again."""
    relay_bin = rt.relay_bin()
    d = os.path.join(TMP, "envonly")
    os.makedirs(d, exist_ok=True)
    port = rt.free_port()
    env = container_env(d, port)
    log = env["RELAYPRO_LOGGER_FILE_NAME"]
    reg = os.path.join(d, "state", "registration.ini")
    before = len(attempts(CON))
    p = rt.start_process(env_only_argv([relay_bin]), env=env, tmpdir=d, name="first", cwd=d)
    ev = rt.wait_for_log(log, "register.saved", timeout=20)
    rt.check(ev is not None and ev.get("saved") is True and ev.get("file") == reg,
             "env-only: registered and saved to <privateFolder>/registration.ini", ev)
    start = rt.wait_for_log(log, "start", timeout=5)
    rt.check((start or {}).get("config") == "(environment)", "env-only: no config file", start)
    if not os.path.exists(reg):
        rt.check(False, "env-only: registration.ini exists", os.listdir(d))
        p.stop()
        return
    rt.check_eq(oct(os.stat(reg).st_mode & 0o7777), oct(0o600), "env-only: registration.ini is 0600")
    vals = ini_values(reg)
    rt.check_eq((vals.get("relayId"), vals.get("registeredTo"), vals.get("securityToken")),
                (str(RELAY_ID), CON.address(), SEC_TOKEN),
                "env-only: registration.ini holds relayId, registeredTo, securityToken")
    rt.check("deploymentToken" not in vals and len(vals.get("relayProId", "")) == 36,
             "env-only: no deployment token in it; the generated relayProId kept", sorted(vals))
    rt.check_eq(grant_ok(port), 200, "env-only: the new security token verifies grants at once")
    rt.check_eq(p.stop(), 0, "env-only: first run exits 0")
    rt.check_eq(len(attempts(CON)) - before, 1, "env-only: one registration")

    since = rt.log_offset(log)
    p = rt.start_process(env_only_argv([relay_bin]), env=env, tmpdir=d, name="second", cwd=d)
    rt.check(rt.wait_for_log(log, "start", timeout=15, since=since) is not None and
             rt.wait_for_port("127.0.0.1", port, timeout=10), "env-only: second start")
    r = rt.http_request("127.0.0.1", port, "GET", "/readyz", tls=True)
    rt.check_eq(r.status, 200, "env-only: ready at once after the restart (registration.ini read)")
    rt.check_eq(grant_ok(port), 200, "env-only: the saved security token verifies grants")
    rt.check_eq(len(attempts(CON)) - before, 1,
                "env-only: the restart did not register again (deployment token still set)")
    # A reload reads registration.ini again: a changed token is used after SIGHUP.
    with open(reg) as f:
        text = f.read()
    with open(reg, "w") as f:
        f.write(text.replace("securityToken = " + SEC_TOKEN, "securityToken = rotated-" + SEC_TOKEN))
    since = rt.log_offset(log)
    os.kill(p.pid, 1)
    rec = rt.wait_for_log(log, "config.reload", timeout=10, since=since)
    rt.check(rec is not None and rec.get("ok") is True, "env-only: SIGHUP reload ok", rec)
    rt.check_eq(grant_ok(port, token="rotated-" + SEC_TOKEN), 200,
                "env-only: a reload reads registration.ini again")
    rt.check_eq(p.stop(), 0, "env-only: second run exits 0")
    no_secrets("env-only", open(log).read(), p.stdout(), p.stderr())


@rt.case(timeout=40)
def read_only_config_falls_back():
    """A config file the relay cannot write (as a ConfigMap mount is): the registration
    goes to <privateFolder>/registration.ini and the config file is untouched."""
    if os.geteuid() != 0:
        rt.check(False, "read-only config: needs root to drop to an unprivileged user")
        return
    relay_bin = rt.relay_bin()
    d = rt.make_tmpdir("relaytest-rocfg-")   # a folder 65532 may enter (TMP is 0700)
    os.chmod(d, 0o755)
    port = rt.free_port()
    ca = os.path.join(d, "console-ca.pem")
    shutil.copyfile(CON.ca, ca)
    os.chmod(ca, 0o644)
    cfg = os.path.join(d, "config.ini")
    text = ("consoleAddress = %s\norganizationId = %d\ndeploymentToken = %s\n"
            "relayProId = %s\nconsoleCACert = console-ca.pem\nserverName = localhost\n"
            "user = 65532:65532\n[httpsProxy]\nlisten = 127.0.0.1:%d\n"
            "[logger]\nfileName = -\n" % (CON.address(), ORG, DEP_TOKEN, PRO_ID, port))
    with open(cfg, "w") as f:
        f.write(text)
    os.chmod(cfg, 0o644)   # root's; the relay runs as 65532 after the drop
    p = rt.start_process([relay_bin, "run", "-c", cfg], tmpdir=d, name="relay", keep_root=False,
                         env={"RELAYPRO_USER": "65532:65532"})
    log = p.stdout_path
    reg = os.path.join(d, "private", "registration.ini")
    ev = rt.wait_for_log(log, "register.saved", timeout=20)
    rt.check(ev is not None and ev.get("saved") is True and ev.get("file") == reg and
             "not writable" in ev.get("config_file", ""),
             "read-only config: saved to registration.ini instead, saying why", ev)
    with open(cfg) as f:
        rt.check_eq(f.read(), text, "read-only config: the config file is unchanged")
    rt.check(os.path.exists(reg) and os.stat(reg).st_uid == 65532,
             "read-only config: registration.ini written by the relay's user")
    rt.check_eq(grant_ok(port), 200, "read-only config: the token is in use")
    rt.check_eq(p.stop(), 0, "read-only config: exits 0")


@rt.case(timeout=30)
def registration_ini_precedence():
    """registration.ini: below RELAYPRO_*, above the config file; a bad line in it is a
    config error naming the file and line."""
    relay_bin = rt.relay_bin()
    d = os.path.join(TMP, "prec")
    os.makedirs(os.path.join(d, "private"), exist_ok=True)
    cfg = os.path.join(d, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = console.test\nrelayId = 1\nsecurityToken = from-file\n")
    reg = os.path.join(d, "private", "registration.ini")
    with open(reg, "w") as f:
        f.write("# written by relaypro\nrelayId = 2\nregisteredTo = console.test\n"
                "securityToken = from-registration\n")

    def effective(env=None):
        e = rt.clean_environ()
        e.update(env or {})
        r = subprocess.run([relay_bin, "check-config", "-c", cfg], capture_output=True,
                           text=True, timeout=20, env=e)
        return r.returncode, r.stdout, r.stderr
    rc, out, err = effective()
    rt.check(rc == 0 and "\nrelayId = 2\n" in out, "registration.ini beats the config file", out + err)
    rc, out, err = effective({"RELAYPRO_RELAY_ID": "3"})
    rt.check(rc == 0 and "\nrelayId = 3\n" in out, "the environment beats registration.ini", out + err)
    rc, out, err = effective({"RELAYPRO_PRIVATE_FOLDER": os.path.join(d, "elsewhere")})
    rt.check(rc == 0 and "\nrelayId = 1\n" in out,
             "registration.ini is looked for in the privateFolder in force (env)", out + err)
    with open(reg, "a") as f:
        f.write("consoleAddress = evil.example\n")
    rc, out, err = effective()
    rt.check(rc == 2 and "%s:5: consoleAddress" % reg in err,
             "a key registration.ini may not hold: exit 2 naming file, line and key", (rc, err))


def run_register(args, env, cwd, timeout=40, no_file=True):
    argv = [rt.relay_bin(), "register"] + list(args)
    e = rt.clean_environ()
    e.update(env)
    t0 = time.monotonic()
    r = subprocess.run(env_only_argv(argv) if no_file else argv, capture_output=True, text=True,
                       timeout=timeout, env=e, cwd=cwd)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


@rt.case(timeout=60)
def register_env_for_kubectl():
    """`relaypro register --env` registers once in the foreground and prints the two
    lines `kubectl create secret generic --from-env-file` reads, and nothing else."""
    d = os.path.join(TMP, "regenv")
    os.makedirs(d, exist_ok=True)
    env = container_env(d, rt.free_port())
    before = len(attempts(CON))
    rc, out, err, _ = run_register(["--env"], env, d)
    rt.check_eq(rc, 0, "register --env: exit 0")
    rt.check_eq(out, "RELAYPRO_RELAY_ID=%d\nRELAYPRO_SECURITY_TOKEN=%s\n" % (RELAY_ID, SEC_TOKEN),
                "register --env: stdout is exactly the two lines")
    recs = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{")]
    rt.check(any(r.get("event") == "register.ok" for r in recs), "register --env: log lines on stderr")
    rt.check(SEC_TOKEN not in err and DEP_TOKEN not in err, "register --env: no token on stderr")
    rt.check(not os.path.exists(os.path.join(d, "state", "registration.ini")),
             "register --env: changes nothing (no registration.ini)")
    rt.check_eq(len(attempts(CON)) - before, 1, "register --env: one registration")
    envfile = os.path.join(d, "relaypro.env")
    with open(envfile, "w") as f:
        f.write(out)
    kubectl = shutil.which("kubectl")
    if not rt.check(kubectl is not None, "kubectl present",
                    "install Debian's kubernetes-client (apt-get install kubernetes-client)"):
        return
    r = subprocess.run([kubectl, "create", "secret", "generic", "relaypro-registration",
                        "--from-env-file=" + envfile, "--dry-run=client", "-o", "json"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(rt.clean_environ(), KUBECONFIG=os.path.join(d, "no-kubeconfig"),
                                HOME=d))
    try:
        sec = json.loads(r.stdout)
        data = {k: base64.b64decode(v).decode() for k, v in sec.get("data", {}).items()}
    except (ValueError, AttributeError):
        data = None
    rt.check_eq(data, {"RELAYPRO_RELAY_ID": str(RELAY_ID), "RELAYPRO_SECURITY_TOKEN": SEC_TOKEN},
                "kubectl create secret --from-env-file takes the output unchanged")


@rt.case(timeout=60)
def register_write_back_and_exit_codes():
    d = os.path.join(TMP, "regcli")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "config.ini")
    text = ("consoleAddress = %s\norganizationId = %d\ndeploymentToken = %s\n"
            "consoleCACert = %s\n" % (CON.address(), ORG, DEP_TOKEN, CON.ca))
    with open(cfg, "w") as f:
        f.write(text)
    rc, out, err, _ = run_register(["-c", cfg], {}, d, no_file=False)
    rt.check_eq(rc, 0, "register -c FILE: exit 0")
    vals = ini_values(cfg)
    rt.check(vals.get("relayId") == str(RELAY_ID) and vals.get("securityToken") == SEC_TOKEN
             and "deploymentToken" not in vals, "register -c FILE: written back into the file", vals)
    rt.check(SEC_TOKEN not in out + err, "register -c FILE: no token printed")
    # Refused (401): exit 1 after one attempt.
    d2 = os.path.join(TMP, "regrefused")
    os.makedirs(d2, exist_ok=True)
    before = len(attempts(CON))
    rc, out, err, took = run_register(["--env", "--timeout", "30s"],
                                      container_env(d2, 1, RELAYPRO_DEPLOYMENT_TOKEN="wrong-token-77"), d2)
    rt.check_eq(rc, 1, "register: a refusal exits 1")
    rt.check_eq(out, "", "register: nothing on stdout when refused")
    rt.check_eq(len(attempts(CON)) - before, 1, "register: a refusal is not retried")
    # Unreachable: exit 3 once --timeout has passed.
    dead = rt.free_port()
    rc, out, err, took = run_register(["--env", "--timeout", "3s"],
                                      container_env(d2, 1, RELAYPRO_CONSOLE_ADDRESS="localhost:%d" % dead), d2)
    rt.check(rc == 3 and out == "" and took >= 2.5, "register: unreachable console exits 3 after --timeout",
             (rc, out, round(took, 1), err[-300:]))
    rc, out, err, _ = run_register(["--timeout", "soon"], container_env(d2, 1), d2)
    rt.check(rc == 2 and "--timeout" in err, "register --timeout soon: exit 2", (rc, err))
    rc, out, err, _ = run_register(["--env"], container_env(d2, 1, RELAYPRO_DEPLOYMENT_TOKEN=""), d2)
    rt.check(rc == 2 and "deploymentToken" in err, "register without a deployment token: exit 2", (rc, err))


@rt.case(timeout=40)
def write_back_crash():
    path, orig = write_config("crash", "console.test")
    states = {}
    for i, (rid, tok) in enumerate(((1, "token-one"), (2, "token-two"))):
        r = subprocess.run([TOOLS["cfgwrite_tool"], "once", path, str(rid), tok],
                           capture_output=True, text=True, timeout=10)
        rt.check(r.returncode == 0, "crash: reference update %d" % rid, r.stderr)
        with open(path) as f:
            states[f.read()] = "relayId=%d" % rid
    states[orig] = "relayId=0"
    rt.check_eq(len(states), 3, "crash: three distinct texts")
    with open(path, "w") as f:
        f.write(orig)
    seen, torn, leftovers = {}, 0, 0
    for i in range(30):
        p = rt.start_process([TOOLS["cfgwrite_tool"], "loop", path], tmpdir=TMP, name="cfgloop")
        time.sleep(random.uniform(0.003, 0.06))
        p.kill()
        with open(path) as f:
            text = f.read()
        if text not in states:
            torn += 1
            continue
        seen[states[text]] = seen.get(states[text], 0) + 1
        r = subprocess.run([TOOLS["cfgwrite_tool"], "check", path], capture_output=True,
                           text=True, timeout=10, env=rt.clean_environ())
        if r.returncode != 0 or r.stdout.strip() != states[text]:
            torn += 1
        for t in glob.glob(path + ".tmp.*"):
            leftovers += 1
            os.unlink(t)
    rt.check_eq(torn, 0, "crash: 30 kill -9 during rewrites, file always old or new and loads")
    rt.check(seen.get("relayId=1", 0) + seen.get("relayId=2", 0) >= 1,
             "crash: the rewrites ran (%s, %d temporary files left by kills)" % (seen, leftovers))


rt.finish()

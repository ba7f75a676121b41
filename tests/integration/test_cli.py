#!/usr/bin/env python3
"""test_cli.py — the real binary's command line: version, help, check-config (golden
output, errors naming file/line/key with exit 2, secrets hidden), token grant (verified
with Python's hmac), run (JSON log lines, SIGTERM exit 0), and run inside an empty chroot
holding only the binary, as a FROM scratch image would."""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

REPO = rt.REPO_DIR
BIN = rt.relay_bin()
BIN_ARM64 = os.path.join(REPO, "dist", "relaypro-linux-arm64")
SECRET = "sEcReT-t0ken-value-1234"


def env_clean(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RELAYPRO_") and not k.startswith("AIR_")}
    env.update(extra)
    return env


def run(args, env=None, timeout=20, cwd=None):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else env_clean(), cwd=cwd)


write = rt.write_file


b64d = rt.b64url_decode


@rt.case
def version_and_help():
    r = run(["version"])
    rt.check(r.returncode == 0 and re.match(r"^relaypro \d+\.\d+\.\d+ linux/amd64 ", r.stdout),
             "version", r.stdout + r.stderr)
    r = run(["help"])
    rt.check(r.returncode == 0 and "check-config" in r.stdout, "help")
    r = run(["frobnicate"])
    rt.check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command exits 2")
    r = run(["--bogus"])
    rt.check(r.returncode == 2, "unknown option exits 2")


@rt.case
def check_config_golden():
    tmp = rt.make_tmpdir()
    cfg = os.path.join(tmp, "config.ini")
    write(cfg, "\n".join([
        "# relaypro test configuration",
        "consoleAddress = console.test:8443",
        "organizationId = 42",
        "relayProId = 123e4567-e89b-12d3-a456-426614174000",
        "relayId = 7",
        "securityToken = " + SECRET,
        "deploymentToken = dep-" + SECRET,
        "serverName = relay.test",
        "allowedHosts = cdn.test",
        "allowedPorts = 443,4222",
        "[httpsProxy]", "listen = 127.0.0.1:19443",
        "[limits]", "idleTimeout = 20m", ""]))
    r = run(["check-config", "-c", cfg])
    rt.check_eq(r.returncode, 0, "check-config good file exits 0")
    with open(os.path.join(REPO, "tests", "golden", "check-config.txt")) as f:
        want = f.read().replace("@DIR@", tmp)
    rt.check_eq(r.stdout, want, "check-config output matches the golden file")
    rt.check(SECRET not in r.stdout + r.stderr, "secrets never printed by check-config")


@rt.case
def check_config_errors():
    tmp = rt.make_tmpdir()
    cfg = os.path.join(tmp, "bad.ini")
    cases = [
        ("consoleAddress = a\nnoSuchKey = 1\n", 2, "noSuchKey: unknown key"),
        ("[limits]\nidleTimeout = forever\n", 2, "limits.idleTimeout: not a duration"),
        ("allowedPorts = 443,0\n", 1, "allowedPorts: ports must be 1-65535"),
        ("securityToken = " + SECRET + "x" * 190 + "\n", 1, "line longer than 197 characters"),
        ("relayId = 1\nrelayId = 2\n", 2, "relayId: set twice"),
    ]
    for text, line, want in cases:
        write(cfg, text)
        r = run(["check-config", "-c", cfg])
        msg = r.stderr.strip()
        rt.check(r.returncode == 2 and msg.startswith("relaypro: config error: %s:%d: " % (cfg, line))
                 and want in msg and msg.count("\n") == 0,
                 "bad config: " + want, "rc=%d stderr=%r" % (r.returncode, msg))
        rt.check(SECRET not in r.stdout + r.stderr, "no secret in error: " + want)
    r = run(["check-config"], env=env_clean(RELAYPRO_LIMITS_IDLE_TIMEOUT="soon"))
    rt.check(r.returncode == 2 and "environment RELAYPRO_LIMITS_IDLE_TIMEOUT" in r.stderr,
             "bad environment value names the variable", r.stderr)
    r = run(["check-config"], env=env_clean(RELAYPRO_CONSOLE_ADRESS="typo.test"))
    rt.check(r.returncode == 2 and "RELAYPRO_CONSOLE_ADRESS: unknown variable" in r.stderr,
             "unknown RELAYPRO_ variable refused", r.stderr)
    r = run(["check-config", "-c", os.path.join(tmp, "missing.ini")])
    rt.check(r.returncode == 2 and "cannot open" in r.stderr, "missing -c file exits 2")
    # RELAYPRO_CONFIG picks the file when -c is absent.
    write(cfg, "relayId = nope\n")
    r = run(["check-config"], env=env_clean(RELAYPRO_CONFIG=cfg))
    rt.check(r.returncode == 2 and (cfg + ":1:") in r.stderr, "RELAYPRO_CONFIG is read")


@rt.case
def token_grant_verifies():
    env = env_clean(RELAYPRO_SECURITY_TOKEN=SECRET, RELAYPRO_ORGANIZATION_ID="42",
                    RELAYPRO_RELAY_ID="7")
    r = run(["token", "grant", "--sub", "responder-1", "--ttl", "10m"], env=env)
    rt.check_eq(r.returncode, 0, "token grant exits 0")
    tok = r.stdout.strip()
    parts = tok.split(".")
    rt.check_eq(len(parts), 3, "three parts")
    if len(parts) != 3:
        return
    hdr, claims = json.loads(b64d(parts[0])), json.loads(b64d(parts[1]))
    rt.check_eq(hdr.get("alg"), "HS256", "alg HS256")
    mac = hmac.new(SECRET.encode(), (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    rt.check(hmac.compare_digest(mac, b64d(parts[2])), "signature verifies with Python's hmac")
    rt.check(claims.get("sub") == "responder-1" and claims.get("org") == 42 and
             claims.get("aud") == "relaypro:7", "grant claims", claims)
    rt.check_eq(claims.get("exp", 0) - claims.get("iat", 0), 600, "ttl 10m")
    rt.check(all("=" not in p for p in parts), "no base64 padding")
    r = run(["token", "grant"], env=env)
    rt.check_eq(r.returncode, 2, "token grant without --sub exits 2")
    r = run(["token", "grant", "--sub", "x"], env=env_clean())
    rt.check(r.returncode == 1 and "securityToken" in r.stderr, "no security token: clear error")


def start_and_stop(argv, env, name, cwd=None):
    """Start argv, wait for the JSON 'start' line on stdout, SIGTERM, expect exit 0 and
    a 'stop' line. Returns the parsed lines."""
    tmp = rt.make_tmpdir()
    p = rt.start_process(argv, env=env, tmpdir=tmp, name=name, cwd=cwd)
    lines = []

    def started():
        lines[:] = [json.loads(l) for l in p.stdout().splitlines() if l.strip()]
        return any(l.get("event") == "start" for l in lines)
    ok = rt.wait_until(started, timeout=15)
    rt.check(ok, name + ": logs a start event", p.stderr())
    os.kill(p.pid, signal.SIGTERM)
    rc = p.wait(timeout=15)
    rt.check_eq(rc, 0, name + ": SIGTERM exits 0")
    lines[:] = [json.loads(l) for l in p.stdout().splitlines() if l.strip()]
    rt.check(any(l.get("event") == "stop" for l in lines), name + ": logs a stop event")
    ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    rt.check(all(ts.match(l.get("ts", "")) and l.get("level") in ("debug", "info", "warn", "error")
                 for l in lines), name + ": every line has ts and level")
    return lines


@rt.case
def run_logs_and_stops():
    env = env_clean(RELAYPRO_LOGGER_FILE_NAME="-", RELAYPRO_SECURITY_TOKEN=SECRET,
                    RELAYPRO_HTTPS_LISTEN="127.0.0.1:%d" % rt.free_port())
    lines = start_and_stop([BIN, "run"], env, "run")
    rt.check(SECRET not in json.dumps(lines), "run: secret not logged")


@rt.case
def relay_pro_id_generated_and_saved():
    tmp = rt.make_tmpdir()
    cfg = os.path.join(tmp, "config.ini")
    text = "# operator comment\nconsoleAddress = console.test\n[httpsProxy]\nlisten = 127.0.0.1:%d\n" \
        "[logger]\nfileName = -\n" % rt.free_port()
    write(cfg, text)
    start_and_stop([BIN, "run", "-c", cfg], env_clean(), "relayProId run")
    new = open(cfg).read()
    m = re.search(r"^relayProId = ([0-9a-f-]{36})$", new, re.M)
    rt.check(m is not None and new.startswith("# operator comment\nconsoleAddress = console.test\n"),
             "relayProId generated and saved; other lines kept", new)
    start_and_stop([BIN, "run", "-c", cfg], env_clean(), "relayProId second run")
    rt.check_eq(open(cfg).read(), new, "a saved relayProId is kept on the next start")


@rt.case
def run_in_empty_chroot():
    if os.geteuid() != 0:
        rt.check(False, "chroot needs root (the tests run as root on CI)")
        return
    root = rt.make_tmpdir()
    shutil.copy2(BIN, os.path.join(root, "relaypro"))
    rt.check_eq(sorted(os.listdir(root)), ["relaypro"], "chroot holds only the binary")
    r = subprocess.run(["chroot", root, "/relaypro", "version"], capture_output=True, text=True,
                       timeout=20, env=env_clean())
    rt.check(r.returncode == 0 and r.stdout.startswith("relaypro "), "version in an empty chroot",
             r.stderr)
    env = env_clean(RELAYPRO_LOGGER_FILE_NAME="-",
                    RELAYPRO_HTTPS_LISTEN="127.0.0.1:%d" % rt.free_port())
    start_and_stop(["chroot", root, "/relaypro", "run"], env, "chroot run")


@rt.case
def protocol_doc_example():
    """docs/protocol.md's worked example, recomputed from its own inputs."""
    with open(os.path.join(REPO, "docs", "protocol.md")) as f:
        text = f.read()
    block = text[text.index("## 5. Worked example"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    v = {}
    for line in block.strip().splitlines():
        k, _, val = line.partition(":")
        v[k.strip()] = val.strip()

    rt.check_eq(rt.jwt_hs256(v["grant claims"], v["securityToken"], header=v["grant header"]),
                v["grant"], "doc: grant")
    master = hmac.new(b"relaypro access-token v1", bytes.fromhex(v["ca key der"]),
                      hashlib.sha256).digest()
    rt.check_eq(master.hex(), v["master"], "doc: master")
    info = b"access-token\0" + v["organizationId"].encode() + b"\0" + v["epoch"].encode() + \
        b"\0" + json.loads(v["grant claims"])["sub"].encode()
    rt.check_eq(info.hex(), v["info"], "doc: info")
    key = hmac.new(master, info + b"\x01", hashlib.sha256).digest()
    rt.check_eq(key.hex(), v["key"], "doc: key")
    rt.check_eq(rt.jwt_hs256(v["access claims"], key, header=v["access header"]), v["access token"],
                "doc: access token")
    # The relay's own grant signer produces the documented grant for the same claims.
    env = env_clean(RELAYPRO_SECURITY_TOKEN=v["securityToken"], RELAYPRO_ORGANIZATION_ID="42",
                    RELAYPRO_RELAY_ID="7")
    r = run(["token", "grant", "--sub", "responder-1"], env=env)
    parts = r.stdout.strip().split(".")
    claims = json.loads(b64d(parts[1])) if len(parts) == 3 else {}
    rt.check(set(claims) == {"sub", "org", "aud", "iat", "exp"} and claims.get("aud") == "relaypro:7",
             "doc: token grant makes the documented claim set", claims)


@rt.case
def static_binaries():
    for b in (BIN, BIN_ARM64):
        out = subprocess.run(["file", "-b", b], capture_output=True, text=True).stdout
        rt.check("statically linked" in out, os.path.basename(b) + " is statically linked", out)
        size = os.path.getsize(b)
        rt.check(size < 1024 * 1024, "%s under 1 MiB (%d bytes)" % (os.path.basename(b), size))
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    rt.check(qemu is not None, "qemu-aarch64 available for the arm64 binary")
    if qemu:
        r = subprocess.run([qemu, BIN_ARM64, "version"], capture_output=True, text=True, timeout=30)
        rt.check(r.returncode == 0 and "linux/arm64" in r.stdout, "arm64 binary runs under qemu",
                 r.stdout + r.stderr)



@rt.case
def version_flag_and_command_help():
    r = run(["--version"])
    rt.check(r.returncode == 0 and re.match(r"^relaypro \d+\.\d+\.\d+ linux/amd64 ", r.stdout),
             "--version prints the version, exit 0", r.stdout + r.stderr)
    for words, syn in ((["run"], "relaypro [run] [-c FILE]"),
                       (["check-config"], "relaypro check-config [-c FILE]"),
                       (["version"], "relaypro version"),
                       (["ca", "show"], "relaypro ca show [-c FILE]"),
                       (["token", "grant"], "relaypro token grant --sub ID [--ttl DURATION] [-c FILE]"),
                       (["help"], "relaypro help [COMMAND]")):
        for flag in ("-h", "--help"):
            r = run(words + [flag])
            rt.check(r.returncode == 0 and r.stdout.startswith("usage: %s\n" % syn) and not r.stderr,
                     "%s %s prints that command's usage, exit 0" % (" ".join(words), flag),
                     r.stdout[:200] + r.stderr)
        r = run(["help"] + words)
        rt.check(r.returncode == 0 and r.stdout.startswith("usage: %s\n" % syn),
                 "help %s prints the same usage" % " ".join(words))
    r = run(["frobnicate", "--help"])
    rt.check(r.returncode == 2 and "unknown command" in r.stderr, "--help after an unknown command exits 2")
    r = run(["--help"])
    rt.check(r.returncode == 0 and "commands:" in r.stdout and "token grant" in r.stdout,
             "--help alone lists every command")


@rt.case
def token_grant_refuses_what_the_relay_refuses():
    env = env_clean(RELAYPRO_SECURITY_TOKEN=SECRET, RELAYPRO_ORGANIZATION_ID="42", RELAYPRO_RELAY_ID="7")
    for sub in ("bad sub", "x" * 129, "", "é", "a/b", "a\"b"):
        r = run(["token", "grant", "--sub", sub], env=env)
        rt.check(r.returncode == 2 and "--sub must be 1-128 characters of A-Z a-z 0-9 . _ : @ -" in r.stderr
                 and r.stderr.count("\n") == 1 and not r.stdout,
                 "token grant --sub %r: one line, exit 2, nothing signed" % sub[:20], r.stderr)
    r = run(["token", "grant", "--sub", "A.z_0:9@-" + "x" * 119], env=env)
    rt.check(r.returncode == 0 and r.stdout.count(".") == 2, "every allowed character, 128 long: signed")


def _start_cfg(tmp, extra=""):
    cfg = os.path.join(tmp, "config.ini")
    write(cfg, "consoleAddress = localhost\nrelayProId = 123e4567-e89b-12d3-a456-426614174000\n"
               "[httpsProxy]\nlisten = 127.0.0.1:%d\n%s" % (rt.free_port(), extra))
    return cfg


@rt.case
def default_log_is_stdout():
    tmp = rt.make_tmpdir()
    cfg = _start_cfg(tmp)
    lines = start_and_stop([BIN, "run", "-c", cfg], env_clean(), "no logger.fileName")
    rt.check(any(l.get("event") == "start" for l in lines), "without logger.fileName the JSON lines go to stdout")
    rt.check(not os.path.exists(os.path.join(tmp, "relaypro.log.txt")), "and no log file is made")


@rt.case
def log_symlink_refused():
    tmp = rt.make_tmpdir()
    target = os.path.join(tmp, "victim")
    write(target, "")
    os.symlink(target, os.path.join(tmp, "relay.log"))
    cfg = _start_cfg(tmp, "[logger]\nfileName = relay.log\n")
    r = subprocess.run([BIN, "run", "-c", cfg], capture_output=True, text=True, timeout=20,
                       env=dict(env_clean(), RELAYPRO_USER="root"))
    rt.check(r.returncode == 2 and r.stderr.count("\n") == 1 and "logger.fileName" in r.stderr and
             "symbolic link" in r.stderr, "a log path that is a symlink: one line, exit 2", r.stderr)
    rt.check_eq(os.path.getsize(target), 0, "the link's target was not written")


def _as_nobody():
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@rt.case
def unwritable_private_folder():
    if os.geteuid() != 0:
        rt.check(False, "needs root to start the relay as 65534")
        return
    tmp = rt.make_tmpdir()
    os.chmod(tmp, 0o755)
    cfg = _start_cfg(tmp)
    os.chmod(cfg, 0o644)
    r = subprocess.run(_as_nobody() + [BIN, "run", "-c", cfg], capture_output=True, text=True,
                       timeout=20, env=env_clean())
    rt.check(r.returncode == 2 and r.stderr.count("\n") == 1 and "private" in r.stderr and
             "Permission denied" in r.stderr, "an unwritable private folder: one line naming it, exit 2",
             r.stderr)


@rt.case
def open_files_limit():
    if shutil.which("prlimit") is None:
        rt.check(False, "prlimit (util-linux) is needed")
        return
    tmp = rt.make_tmpdir()
    cfg = _start_cfg(tmp, "[limits]\nmaxConnections = 5000\n")
    p = rt.start_process(["prlimit", "--nofile=1024:4096", BIN, "run", "-c", cfg], tmpdir=tmp,
                         name="nofile", env={})
    ok = p.wait_for_output('"event":"start"', timeout=15)
    rt.check(ok, "starts with a low open-files limit (a warning, not an exit)", p.stderr())
    if ok:
        with open("/proc/%d/limits" % p.pid) as f:
            lim = [l for l in f if l.startswith("Max open files")][0].split()
        rt.check_eq(lim[3:5], ["4096", "4096"], "soft limit raised to the hard limit")
    w = [json.loads(l) for l in p.stdout().splitlines() if '"limits.nofile"' in l]
    rt.check(len(w) == 1 and w[0].get("level") == "warn" and w[0].get("limit") == 4096 and
             w[0].get("needed") == 10064 and w[0].get("tunnels") == 2016,
             "limits.nofile warning names the limit, the need and the tunnels that fit", w)
    p.stop()
    cfg2 = _start_cfg(rt.make_tmpdir(), "[limits]\nmaxConnections = 100\n")
    p = rt.start_process(["prlimit", "--nofile=1024:4096", BIN, "run", "-c", cfg2], tmpdir=tmp,
                         name="nofile-ok", env={})
    rt.check(p.wait_for_output('"event":"start"', timeout=15) and '"limits.nofile"' not in p.stdout(),
             "no warning when the hard limit holds maxConnections")
    p.stop()


if __name__ == "__main__":
    rt.main("cli", deadline=300)

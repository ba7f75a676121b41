#!/usr/bin/env python3
"""test_privdrop.py — started as root, relaypro drops to `user` after binding (issue 9).

As root (the tests run as root; otherwise every case FAILS with a clear message, since the
drop cannot be shown): with user = 65534:65534 the relay's /proc status shows no root id
and no root group, NoNewPrivs is set, it serves a tunnel, privateFolder and the CA bundle
it created belong to 65534, a SIGHUP reload still applies, a SIGUSR2 upgrade starts the
binary again as 65534 (no second drop, sockets inherited) and workers = 2 run as 65534.
A NAME is resolved from /etc/passwd and /etc/group (a private mount namespace lays test
files over them: a user with supplementary groups); a name that does not exist, and the
default `relaypro` where no such user exists, exit 2 naming the key. In an empty chroot
(no /etc at all, like FROM scratch) UID:GID works.
"""
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
# The empty chroot holds only the shipped static binary, whatever RELAYPRO_BIN names (a
# sanitizer build for `make check` is dynamically linked and cannot run there).
STATIC_BIN = os.path.join(rt.REPO_DIR, "dist", "relaypro-linux-amd64")
S = {}


def need_root(name):
    if os.geteuid() != 0:
        rt.check(False, name, "needs root: the privilege drop can only be shown by a process "
                 "started as root (run the tests as root)")
        return False
    return True


status = rt.proc_status


events = rt.events


def open_dir(tmp):
    """A test folder the dropped user can reach: 0755, with the binary copied in (0755) so
    an upgrade or a worker can execute it as that user."""
    os.chmod(tmp, 0o755)
    b = os.path.join(tmp, "relaypro")
    shutil.copy(BIN, b)
    os.chmod(b, 0o755)
    return b


def write(path, text, mode=0o644):
    rt.write_file(path, text, mode)


def relay_config(tmp, port, extra=""):
    write(os.path.join(tmp, "users.txt"), "u:p\n")
    cfg = os.path.join(tmp, "config.ini")
    relays.write_config(cfg, relays.plain_config(
        port, [S["con"].echo_port], top=["relayProId = 123e4567-e89b-12d3-a456-426614174000"] +
        extra.splitlines(), limits={"shutdownTimeout": "3s"}), atomic=False)
    os.chmod(cfg, 0o644)
    return cfg


def echo_ok(port, name):
    return relays.tunnel_echoes(port, "localhost:%d" % S["con"].echo_port, name,
                                b"privdrop-" * 1000)


def not_root(pid, name, uid=65534, gid=65534, groups=()):
    st = status(pid)
    rt.check_eq(st.get("Uid"), [uid] * 4, name + ": Uid (real, effective, saved, fs)")
    rt.check_eq(st.get("Gid"), [gid] * 4, name + ": Gid (real, effective, saved, fs)")
    rt.check_eq(sorted(st.get("Groups", [])), sorted(groups), name + ": supplementary groups")
    rt.check(0 not in st.get("Groups", [0]), name + ": no root group",
             st.get("Groups"))
    rt.check_eq(st.get("NoNewPrivs"), "1", name + ": NoNewPrivs")


@rt.case
def setup():
    if not need_root("setup"):
        return
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    S["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)


@rt.case(timeout=60)
def numeric_user_drop_serve_reload_upgrade():
    if not need_root("numeric user") or "con" not in S:
        return
    tmp = rt.make_tmpdir()
    b = open_dir(tmp)
    port = rt.free_port()
    cfg = relay_config(tmp, port)
    log = os.path.join(tmp, "relay.log")
    p = rt.start_process([b, "run", "-c", cfg], tmpdir=tmp, name="relay", cwd=tmp,
                         env={"RELAYPRO_USER": "65534:65534"})
    if not rt.check(rt.wait_for_port("127.0.0.1", port, 10), "relay listens", p.stderr()):
        return
    drop = rt.wait_for_log(log, "priv.drop", timeout=5)
    rt.check(drop is not None and drop.get("uid") == 65534 and drop.get("gid") == 65534,
             "priv.drop logged with uid and gid 65534", drop)
    not_root(p.pid, "after the drop")
    echo_ok(port, "tunnel as 65534")
    priv = os.path.join(tmp, "private")
    for path in (priv, os.path.join(priv, "ca-bundle.pem")):
        st = os.lstat(path)
        rt.check((st.st_uid, st.st_gid) == (65534, 65534),
                 "%s owned by 65534:65534" % os.path.basename(path), (st.st_uid, st.st_gid))
    st = os.stat(os.path.join(priv, "ca-bundle.pem"))
    rt.check_eq(stat.S_IMODE(st.st_mode), 0o600, "CA bundle still mode 0600")
    st = os.stat(log)
    rt.check_eq(st.st_uid, 65534, "the log file belongs to 65534")
    warns = [e for e in events(log, "priv.access") if e.get("what") == "log folder"]
    rt.check(len(warns) == 1 and "rotation" in warns[0].get("msg", ""),
             "a root-owned log folder is reported once (rotation needs it)", warns)
    rt.check(not [e for e in events(log, "priv.access") if e.get("what") != "log folder"],
             "no other file reported (config, passwords, bundle readable)",
             events(log, "priv.access"))

    # SIGHUP: the config is read again as 65534 and applied.
    since = rt.log_offset(log)
    with open(cfg) as f:
        text = f.read()
    write(cfg, text.replace("allowedPorts = %d" % S["con"].echo_port,
                            "allowedPorts = %d,4222" % S["con"].echo_port))
    os.kill(p.pid, signal.SIGHUP)
    ev = rt.wait_for_log(log, "config.reload", timeout=10, since=since)
    rt.check(ev is not None and ev.get("ok") is True, "SIGHUP reload as 65534: ok", ev)
    echo_ok(port, "tunnel after the reload")

    # SIGUSR2: the binary again, as 65534, with the listening socket inherited.
    since = rt.log_offset(log)
    os.kill(p.pid, signal.SIGUSR2)
    ev = rt.wait_for_log(log, "upgrade.ready", timeout=15, since=since)
    rt.check(ev is not None, "SIGUSR2 upgrade as 65534 becomes ready", ev)
    if ev is None:
        return
    new = ev["new_pid"]
    rt.track_pid(new, "upgraded relay")
    rt.check_eq(p.wait(15), 0, "the old process drains and exits 0")
    not_root(new, "the upgraded process")
    rt.check(not events(log, "priv.drop", since) and not events(log, "start.fail", since),
             "the new binary does not try to drop again and does not fail")
    echo_ok(port, "tunnel after the upgrade")
    os.kill(new, signal.SIGTERM)
    rt.wait_until(lambda: not rt.pid_alive(new), timeout=10)


@rt.case(timeout=60)
def workers_run_dropped():
    if not need_root("workers") or "con" not in S:
        return
    tmp = rt.make_tmpdir()
    b = open_dir(tmp)
    port = rt.free_port()
    cfg = relay_config(tmp, port, "workers = 2\n")
    log = os.path.join(tmp, "relay.log")
    p = rt.start_process([b, "run", "-c", cfg], tmpdir=tmp, name="relay", cwd=tmp,
                         env={"RELAYPRO_USER": "65534:65534"})
    ok = rt.wait_until(lambda: len([e for e in events(log, "worker.start")
                                    if e.get("pid", 0) > 0]) >= 2
                       and len(events(log, "start")) >= 3, timeout=15)
    if not rt.check(ok, "supervisor and two workers started", p.stderr()):
        return
    not_root(p.pid, "the supervisor")
    for e in events(log, "worker.start")[:2]:
        not_root(e["pid"], "worker %d" % e["index"])
    for i in range(4):
        echo_ok(port, "tunnel %d through the workers" % i)
    since = rt.log_offset(log)
    os.kill(p.pid, signal.SIGHUP)
    rt.wait_until(lambda: len(events(log, "config.reload", since)) >= 2, timeout=10)
    rl = events(log, "config.reload", since)
    rt.check(len(rl) == 2 and all(e.get("ok") for e in rl), "both workers reload as 65534", rl)
    rt.check_eq(p.stop(timeout=15), 0, "SIGTERM: the supervisor exits 0")


def fake_etc(tmp, home="/nonexistent"):
    pw = os.path.join(tmp, "passwd")
    gr = os.path.join(tmp, "group")
    write(pw, "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken\n"
              "relaytest:x:4242:4243:test:%s:/usr/sbin/nologin\n" % home +
              "zero:x:0:5::/:\n")
    write(gr, "root:x:0:\nrelaytest:x:4243:\nextra1:x:4244:someone,relaytest\n"
              "extra2:x:4245:relaytest\nother:x:4246:relaytestx\n")
    return pw, gr


def in_namespace(tmp, argv, env, name, home="/nonexistent"):
    """argv in a private mount namespace with test files laid over /etc/passwd and
    /etc/group (the machine's files are untouched)."""
    pw, gr = fake_etc(os.path.join(tmp, "etc") if home != "/nonexistent" else tmp, home)
    sh = ('mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && '
          'exec "$@"')
    return rt.start_process(["unshare", "-m", "sh", "-c", sh, "sh", pw, gr] + argv,
                            tmpdir=tmp, name=name, cwd=tmp, env=env)


@rt.case(timeout=40)
def named_user_with_groups():
    if not need_root("named user") or "con" not in S:
        return
    if shutil.which("unshare") is None:
        rt.check(False, "named user: unshare(1) is needed (util-linux)")
        return
    tmp = rt.make_tmpdir()
    b = open_dir(tmp)
    port = rt.free_port()
    cfg = relay_config(tmp, port)
    log = os.path.join(tmp, "relay.log")
    p = in_namespace(tmp, [b, "run", "-c", cfg], {"RELAYPRO_USER": "relaytest"}, "relay-named")
    if not rt.check(rt.wait_for_port("127.0.0.1", port, 10), "named user: relay listens",
                    p.stderr()):
        return
    drop = rt.wait_for_log(log, "priv.drop", timeout=5)
    rt.check(drop is not None and drop.get("user") == "relaytest" and
             drop.get("groups") == "4243,4244,4245", "priv.drop names the user and groups", drop)
    not_root(p.pid, "user relaytest", uid=4242, gid=4243, groups=(4243, 4244, 4245))
    echo_ok(port, "tunnel as relaytest")
    p.stop(timeout=10)

    # A user whose passwd line has UID 0 is not a way to keep root silently.
    tmp2 = rt.make_tmpdir()
    cfg2 = relay_config(tmp2, rt.free_port())
    p2 = in_namespace(tmp2, [BIN, "run", "-c", cfg2], {"RELAYPRO_USER": "zero"}, "relay-zero")
    rt.check_eq(p2.wait(10), 2, "a user with UID 0 in passwd: exit 2")
    rt.check("user (RELAYPRO_USER) = zero" in p2.stderr() and "UID 0" in p2.stderr(),
             "UID 0 user: the message names the key and why", p2.stderr())


@rt.case(timeout=40)
def home_folder_handed_over():
    """A root-owned config folder that is the user's home (as `mkdir /opt/relaypro` leaves
    it) is handed to the user with the config, so registration can replace the config and
    rotation rename the log; a log file with a second link is never given away."""
    if not need_root("home folder") or "con" not in S:
        return
    tmp = rt.make_tmpdir()
    b = open_dir(tmp)
    os.makedirs(os.path.join(tmp, "etc"))
    port = rt.free_port()
    cfg = relay_config(tmp, port)
    os.chmod(cfg, 0o600)
    p = in_namespace(tmp, [b, "run", "-c", cfg], {"RELAYPRO_USER": "relaytest"}, "relay-home", home=tmp)
    if not rt.check(rt.wait_for_port("127.0.0.1", port, 10), "home: relay listens", p.stderr()):
        return
    for path in (tmp, cfg, os.path.join(tmp, "relay.log")):
        st = os.lstat(path)
        rt.check((st.st_uid, st.st_gid) == (4242, 4243), "home: %s handed to the user"
                 % os.path.basename(path), (st.st_uid, st.st_gid))
    log = os.path.join(tmp, "relay.log")
    rt.check(not events(log, "priv.access"), "home: nothing reported out of reach",
             events(log, "priv.access"))
    p.stop(timeout=10)

    # A log file with a second link (planted before the start) stays root's.
    tmp2 = rt.make_tmpdir()
    open_dir(tmp2)
    cfg2 = relay_config(tmp2, rt.free_port())
    other = os.path.join(tmp2, "elsewhere")
    write(other, "")
    os.link(other, os.path.join(tmp2, "relay.log"))
    p2 = rt.start_process([BIN, "run", "-c", cfg2], tmpdir=tmp2, name="relay-link", cwd=tmp2,
                          env={"RELAYPRO_USER": "65534:65534"})
    rt.check(rt.wait_for_log(os.path.join(tmp2, "relay.log"), "priv.drop", timeout=10) is not None,
             "two links: the relay starts and drops")
    rt.check_eq(os.stat(other).st_uid, 0, "a log file with two links is not handed over")
    p2.stop(timeout=10)


@rt.case(timeout=30)
def unknown_user_exits_2():
    if not need_root("unknown user") or "con" not in S:
        return
    tmp = rt.make_tmpdir()
    port = rt.free_port()
    cfg = relay_config(tmp, port)
    with open(cfg) as f:
        text = f.read()
    write(cfg, "user = nosuchuser-relaytest\n" + text)
    p = rt.start_process([BIN, "run", "-c", cfg], tmpdir=tmp, name="relay-unknown", cwd=tmp,
                         env={"RELAYPRO_USER": "nosuchuser-relaytest"})
    rc = p.wait(10)
    rt.check_eq(rc, 2, "user = a name not in /etc/passwd: exit 2")
    err = p.stderr()
    rt.check("config error: user (RELAYPRO_USER) = nosuchuser-relaytest" in err and
             "no such user" in err, "the message names the key and the user", err)
    try:
        rt.connect("127.0.0.1", port, 2).close()
        listening = True
    except OSError:
        listening = False
    rt.check(not listening, "nothing was left listening")

    # The default (user not set) is `relaypro`: dropped to when it exists, else exit 2.
    tmp = rt.make_tmpdir()
    b = open_dir(tmp)
    cfg = relay_config(tmp, port)
    p = rt.start_process([b, "run", "-c", cfg], tmpdir=tmp, name="relay-default", cwd=tmp,
                         env={"RELAYPRO_USER": ""})
    try:
        pw = pwd.getpwnam("relaypro")
    except KeyError:
        pw = None
    if pw is None:
        rt.check_eq(p.wait(10), 2, "user not set, no relaypro user here: exit 2")
        err = p.stderr()
        rt.check("user (RELAYPRO_USER) = relaypro (not set" in err,
                 "the message says the default was used", err)
        rt.check(err.count("\n") == 1 and "useradd --system --user-group --home-dir %s " % tmp in err
                 and err.rstrip().endswith("or set user = NAME or UID:GID of an existing user"),
                 "one line naming both fixes: the useradd command, or the user key", err)
    else:
        rt.check(rt.wait_for_port("127.0.0.1", port, 10), "user not set: relaypro exists, runs")
        not_root(p.pid, "default user relaypro", uid=pw.pw_uid, gid=pw.pw_gid,
                 groups=status(p.pid).get("Groups", []))
        p.stop(timeout=10)

    # user = root keeps root, loudly.
    tmp = rt.make_tmpdir()
    cfg = relay_config(tmp, port)
    log = os.path.join(tmp, "relay.log")
    p = rt.start_process([BIN, "run", "-c", cfg], tmpdir=tmp, name="relay-root", cwd=tmp,
                         env={"RELAYPRO_USER": "root"})
    rt.check(rt.wait_for_port("127.0.0.1", port, 10), "user = root: runs")
    ev = rt.wait_for_log(log, "priv.keep_root", timeout=5)
    rt.check(ev is not None and ev.get("level") == "warn", "user = root: a warning at start", ev)
    rt.check_eq(status(p.pid).get("Uid"), [0, 0, 0, 0], "user = root: still uid 0")
    p.stop(timeout=10)


@rt.case
def bad_user_values_exit_2():
    for v, why in (("0:0", "UID 0"), ("1234", "not all digits"), ("bob smith", "NAME"),
                   ("65534:", "UID:GID"), ("4294967295:1", "4294967294")):
        r = subprocess.run([BIN, "check-config"], capture_output=True, text=True, timeout=10,
                           env=dict(rt.clean_environ(), RELAYPRO_USER=v,
                                    RELAYPRO_CONSOLE_ADDRESS="localhost"))
        rt.check(r.returncode == 2 and "RELAYPRO_USER: user:" in r.stderr and why in r.stderr,
                 "check-config user = %r: exit 2 naming the key" % v, r.stderr)


@rt.case(timeout=40)
def empty_chroot_numeric_user():
    """No /etc at all (a FROM scratch image): UID:GID works, a NAME cannot."""
    if not need_root("empty chroot"):
        return
    tmp = rt.make_tmpdir()
    root = os.path.join(tmp, "root")
    os.mkdir(root, 0o755)
    shutil.copy(STATIC_BIN, os.path.join(root, "relaypro"))
    os.chmod(os.path.join(root, "relaypro"), 0o755)
    port = rt.free_port()
    env = {"RELAYPRO_CONSOLE_ADDRESS": "localhost", "RELAYPRO_ALLOWED_PORTS": "443",
           "RELAYPRO_HTTPS_PROXY_LISTEN": "", "RELAYPRO_HTTP_PROXY_LISTEN": "127.0.0.1:%d" % port,
           "RELAYPRO_LOGGER_FILE_NAME": "-", "RELAYPRO_PRIVATE_FOLDER": "/private",
           "RELAYPRO_RELAY_PRO_ID": "123e4567-e89b-12d3-a456-426614174000",
           "RELAYPRO_USER": "65534:65534"}
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    rt.check(not os.path.exists(os.path.join(root, "etc")), "the chroot has no /etc")
    p = rt.start_process([chroot, root, "/relaypro", "run"], tmpdir=tmp, name="chroot-run",
                         env=env, cwd="/")
    if not rt.check(rt.wait_for_port("127.0.0.1", port, 10), "chroot run listens", p.stderr()):
        return
    rt.check(rt.plain_healthz(port), "chroot run as 65534: /healthz")
    not_root(p.pid, "chroot run")
    st = os.stat(os.path.join(root, "private", "ca-bundle.pem"))
    rt.check((st.st_uid, st.st_gid) == (65534, 65534), "chroot: the CA bundle it made is 65534's")
    rt.check('"event":"priv.drop"' in p.stdout(), "chroot: priv.drop logged")
    rt.check_eq(p.stop(timeout=10), 0, "chroot run: SIGTERM exits 0")

    env["RELAYPRO_USER"] = "nobody"
    p = rt.start_process([chroot, root, "/relaypro", "run"], tmpdir=tmp, name="chroot-named",
                         env=env, cwd="/")
    rt.check_eq(p.wait(10), 2, "chroot, user = nobody, no /etc/passwd: exit 2")
    rt.check("user (RELAYPRO_USER) = nobody" in p.stderr() and "cannot read /etc/passwd" in
             p.stderr(), "the message names the key and the missing file", p.stderr())


if __name__ == "__main__":
    rt.main("privdrop", deadline=240)

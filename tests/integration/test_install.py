#!/usr/bin/env python3
"""test_install.py — the README's two install walks, run as written on a clean system.

A fresh Debian bookworm container (relaytest.testroot_image: debootstrap once, cached;
podman with runc, systemd as PID 1 with journald, no network but its loopback) stands for
the operator's host. Inside it a test console (tests/console.py) answers for
console.example.com on port 443: the name is in the container's /etc/hosts and the
console's CA in its system trust store, as a real console's would be. So the README's
blocks run unchanged; the only replacement is the deployment token placeholder, by the
token this console accepts.

* "Copy one binary onto a host": ./build.sh on this machine; in the container, install +
  useradd + config + check-config; `relaypro run` in the foreground (JSON lines on stdout,
  root-owned /opt/relaypro handed to the relaypro user, registration written back);
  the README's check block (CA, grant, access token, curl through the relay with the
  token); then a password file and SIGHUP, and curl with the password; SIGTERM stops it.
* "Install the .deb or .rpm (systemd)": ./build.sh package; in one container the .deb
  with AIR_* (the service starts under systemd; `journalctl -u relaypro` shows its JSON
  lines), the check block, a password after `systemctl reload relaypro`, then
  `dpkg --purge relaypro` keeps the CA bundle and says so, and RELAYPRO_PURGE_CA=yes
  removes it; in another, the .rpm the same way (rpm's database on a Debian root does not
  know the base system's files, so the test adds --nodeps and says so).

Without podman (or runc, debootstrap, a working container) every walk is reported as
SKIP with the reason, never as a pass.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import readme  # noqa: E402
import relaytest as rt  # noqa: E402

H_BIN = "Copy one binary onto a host"
H_PKG = "Install the .deb or .rpm (systemd)"
README_BLOCKS = [(H_BIN, 0), (H_BIN, 1), (H_BIN, 2), (H_BIN, 3),
                 (H_PKG, 0), (H_PKG, 1), (H_PKG, 2), (H_PKG, 3), (H_PKG, 4)]

REPO = rt.REPO_DIR
DTOKEN = "dt-" + os.urandom(8).hex()
STOKEN = "st-" + os.urandom(12).hex()
PLACEHOLDERS = {"PASTE-YOUR-DEPLOYMENT-TOKEN": DTOKEN}
S = {}


def image():
    if "image" not in S:
        S["image"], S["why"] = rt.testroot_image()
    return S["image"]


def container():
    return rt.Container(image(), binds={os.path.join(REPO, "dist"): "/mnt/dist",
                                        os.path.join(REPO, "tests"): "/mnt/tests"})


def ok_sh(c, script, name, **kw):
    r = c.sh(script, **kw)
    rt.check(r.returncode == 0, name, "rc %d\n%s\n%s" % (r.returncode, r.stdout[-1500:],
                                                         r.stderr[-1500:]))
    return r


def console_up(c, tmp):
    """The test console inside the container as https://console.example.com (port 443)."""
    ok_sh(c, "echo '127.0.0.1 console.example.com' >> /etc/hosts && mkdir -p /root/console",
          "console.example.com names this host")
    c.start("exec python3 /mnt/tests/console.py --dir /root/console --https-port 443 "
            "--port-file /root/console/ports.json --org 42 --relay-id 7 --deployment-token %s "
            "--security-token %s --san console.example.com --quiet" % (DTOKEN, STOKEN),
            tmp, "console")
    up = rt.wait_until(lambda: c.sh("test -s /root/console/ports.json").returncode == 0, 60)
    rt.check(up, "test console up inside the container")
    ok_sh(c, "cp /root/console/console-ca.pem /usr/local/share/ca-certificates/console.crt && "
             "update-ca-certificates >/dev/null", "the console's CA is in the system store")


def host_block(heading, i):
    r = readme.run(readme.block(heading, i), cwd=REPO, env=rt.clean_environ(), timeout=600)
    rt.check(r.returncode == 0, "README %r #%d on the build machine" % (heading, i),
             (r.stdout + r.stderr)[-1500:])


def json_lines(text):
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unparsed": line})
    return out


def events(text, name):
    return [r for r in json_lines(text) if r.get("event") == name]


def check_walk(c, name):
    """The README's check block, as written: CA, grant, access token, curl with it."""
    r = c.sh(readme.block(H_BIN, 3), cwd="/root/in", timeout=60)
    rt.check(r.returncode == 0 and '"service":"test-console"' in r.stdout,
             "%s: the README's check reaches the console through the relay with a token" % name,
             "rc %d\n%s\n%s" % (r.returncode, r.stdout[-800:], r.stderr[-800:]))


def password_curl(c, name):
    r = c.sh("curl -sS --proxy \"https://$(hostname):9443\" --proxy-cacert relaypro-ca.pem "
             "--proxy-user tester:pw-secret-1 https://console.example.com/api/app/check",
             cwd="/root/in", timeout=60)
    rt.check(r.returncode == 0 and '"service":"test-console"' in r.stdout,
             "%s: curl through the relay with a password" % name,
             "rc %d\n%s\n%s" % (r.returncode, r.stdout[-800:], r.stderr[-800:]))


ADD_PASSWORD = ("printf 'tester:pw-secret-1\\n' > /opt/relaypro/users.txt && "
                "chown relaypro:relaypro /opt/relaypro/users.txt && "
                "chmod 0600 /opt/relaypro/users.txt && "
                "echo 'passwordFile = /opt/relaypro/users.txt' >> /opt/relaypro/config.ini")


def check_registered(c, name):
    r = c.sh("cat /opt/relaypro/config.ini; stat -c '%U %a' /opt/relaypro")
    rt.check(re.search(r"^securityToken = %s$" % STOKEN, r.stdout, re.M) and
             "deploymentToken" not in r.stdout, "%s: registration written back into "
             "config.ini by the dropped user" % name, r.stdout.replace(STOKEN, "<st>")[-600:])
    rt.check(r.stdout.strip().endswith("relaypro 750"),
             "%s: /opt/relaypro belongs to relaypro" % name, r.stdout[-100:])


@rt.case(timeout=1500)
def clean_root():
    if image() is None:
        rt.skip("clean root", S["why"])
        return
    r = subprocess.run(["podman", "image", "exists", S["image"]], capture_output=True, timeout=60)
    rt.check(r.returncode == 0, "clean root image ready: " + S["image"])


@rt.case(timeout=400)
def copy_one_binary():
    if image() is None:
        rt.skip("copy one binary", S["why"])
        return
    name = "single binary"
    tmp = rt.make_tmpdir()
    host_block(H_BIN, 0)
    c = container()
    console_up(c, tmp)
    ok_sh(c, "mkdir -p /root/in && cp /mnt/dist/relaypro-linux-amd64 /root/in/",
          "the binary copied onto the host")
    r = c.sh(readme.block(H_BIN, 1, PLACEHOLDERS), cwd="/root/in")
    rt.check(r.returncode == 0 and "config ok" in r.stdout,
             "%s: install, useradd, config, check-config as written" % name,
             (r.stdout + r.stderr)[-1500:])
    run = c.start(readme.block(H_BIN, 2), tmp, "relay", cwd="/root/in")
    saved = rt.wait_until(lambda: events(run.stdout(), "register.saved"), 60)
    rt.check(saved and saved[0].get("saved") is True, "%s: registered and saved" % name,
             run.stdout()[-1500:] + run.stderr()[-500:])
    lines = run.stdout().splitlines()
    rt.check(lines and all(l.startswith("{") and "unparsed" not in json_lines(l)[0]
                           for l in lines), "%s: the foreground run writes JSON lines on "
             "stdout" % name, lines[:5])
    drop = events(run.stdout(), "priv.drop")
    rt.check(drop and drop[0].get("user") == "relaypro", "%s: dropped to relaypro" % name,
             drop)
    rt.check(not events(run.stdout(), "priv.access"), "%s: nothing it needs is out of "
             "reach after the drop" % name, events(run.stdout(), "priv.access"))
    check_registered(c, name)
    check_walk(c, name)
    start = events(run.stdout(), "start")
    pid = start[0]["pid"] if start else 0
    since = len(run.stdout())
    ok_sh(c, ADD_PASSWORD + " && kill -HUP %d" % pid, "%s: password file added, SIGHUP" % name)
    rl = rt.wait_until(lambda: events(run.stdout()[since:], "config.reload"), 20)
    rt.check(rl and rl[0].get("ok") is True, "%s: reload ok" % name, rl)
    password_curl(c, name)
    ok_sh(c, "kill -TERM %d" % pid, "%s: SIGTERM" % name)
    rt.check(run.wait(40) == 0 and events(run.stdout(), "stop"),
             "%s: stops gracefully, exit 0" % name, run.stdout()[-300:])
    c.remove()


def package_walk(kind, block, subst, pkg):
    name = kind
    tmp = rt.make_tmpdir()
    c = container()
    console_up(c, tmp)
    ok_sh(c, "mkdir -p /root/in && cp /mnt/dist/%s /root/in/" % pkg, "%s copied" % pkg)
    r = c.sh(readme.block(H_PKG, block, subst), cwd="/root/in", timeout=180)
    rt.check(r.returncode == 0 and "active (running)" in r.stdout,
             "%s: install as written; systemctl status: active (running)" % name,
             (r.stdout + r.stderr)[-2000:])
    journal = lambda: c.sh("journalctl -u relaypro -o cat --no-pager").stdout  # noqa: E731
    saved = rt.wait_until(lambda: events(journal(), "register.saved"), 60)
    rt.check(saved and saved[0].get("saved") is True,
             "%s: journalctl -u relaypro shows the JSON lines (start, register.saved)" % name,
             journal()[-1500:])
    rt.check(events(journal(), "start"), "%s: start in the journal" % name)
    check_registered(c, name)
    check_walk(c, name)
    since = len(journal())
    ok_sh(c, ADD_PASSWORD, "%s: password file added" % name)
    ok_sh(c, readme.block(H_PKG, 3), "%s: systemctl reload relaypro as written" % name)
    rl = rt.wait_until(lambda: events(journal()[since:], "config.reload"), 20)
    rt.check(rl and rl[0].get("ok") is True, "%s: reload ok" % name, rl)
    password_curl(c, name)
    return c


@rt.case(timeout=600)
def deb_with_systemd():
    if image() is None:
        rt.skip(".deb with systemd", S["why"])
        return
    host_block(H_PKG, 0)
    c = package_walk(".deb", 1, PLACEHOLDERS, "relaypro_%s_amd64.deb" % version())
    r = c.sh(readme.block(H_PKG, 4))
    rt.check(r.returncode == 0 and "kept /opt/relaypro/private/ca-bundle.pem" in r.stdout,
             ".deb: dpkg --purge as written; says it keeps the CA bundle", r.stdout[-800:])
    r = c.sh("test -s /opt/relaypro/private/ca-bundle.pem && test ! -e /opt/relaypro/config.ini"
             " && getent passwd relaypro >/dev/null && test ! -e /usr/bin/relaypro")
    rt.check(r.returncode == 0, ".deb purge: CA bundle and user kept, config and binary gone")
    r = c.sh("cd /root/in && dpkg -i relaypro_%s_amd64.deb >/dev/null && "
             "RELAYPRO_PURGE_CA=yes dpkg --purge relaypro >/dev/null && test ! -e /opt/relaypro "
             "&& ! getent passwd relaypro" % version())
    rt.check(r.returncode == 0, ".deb: RELAYPRO_PURGE_CA=yes dpkg --purge removes the CA "
             "and the user", r.stdout[-500:] + r.stderr[-500:])
    c.remove()


@rt.case(timeout=600)
def rpm_with_systemd():
    if image() is None:
        rt.skip(".rpm with systemd", S["why"])
        return
    print("     note: Debian root: rpm's own database lists none of the base system's files, so "
          "`rpm -i` runs with --nodeps here (the scripts' needs, useradd and getent, are present)")
    subst = dict(PLACEHOLDERS)
    subst["rpm -i "] = "rpm -i --nodeps "
    c = package_walk(".rpm", 2, subst, "relaypro-%s-1.x86_64.rpm" % version())
    r = c.sh("rpm -e relaypro && test -s /opt/relaypro/private/ca-bundle.pem && "
             "test ! -e /usr/bin/relaypro")
    rt.check(r.returncode == 0 and "kept /opt/relaypro" in r.stdout,
             ".rpm: rpm -e keeps /opt/relaypro (CA bundle) and says so", r.stdout + r.stderr)
    c.remove()


version = rt.project_version  # VERSION from the Makefile


if __name__ == "__main__":
    rt.main("install", deadline=2400)

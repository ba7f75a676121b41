#!/usr/bin/env python3
"""test_demo.py — `make run` (tests/demo.sh), the first command README gives, run as the
README writes it, works as printed: it installs only the build toolchain, curl, python3 and
openssl, starts the test console and the relay, and the curl commands it prints (password
and token flow) are run exactly as printed, by bash, and reach the console; so is the
README's own example curl line (its ports and folder are the demo's placeholders).
Started as root, the demo relay drops to 65534:65534 after binding (its /proc status says
so). Ports and folder come from DEMO_PORT, DEMO_CONSOLE_PORT and DEMO_DIR so the test does
not touch a developer's build/demo."""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import readme  # noqa: E402
import relaytest as rt  # noqa: E402

README_BLOCKS = [("relaypro", 0), ("Try it in one command", 0)]
S = {}


def printed_commands(text):
    """The shell commands the demo printed: the lines after 'Try, in another terminal:'
    up to 'Ctrl-C', as blocks separated by blank lines or 'or the token flow:'."""
    m = re.search(r"Try, in another terminal:\n(.*?)\nCtrl-C stops the demo\.", text, re.S)
    if not m:
        return []
    blocks, cur = [], []
    for line in m.group(1).splitlines():
        if not line.strip() or line.strip().startswith("or the"):
            if cur:
                blocks.append("\n".join(cur))
            cur = []
            continue
        cur.append(line)
    if cur:
        blocks.append("\n".join(cur))
    return blocks


def relay_pid(top_pid):
    """The relay: the descendant of `make run` (bash, make, demo.sh) running relaypro."""
    parent, cmds = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmds[int(d)] = f.read().split(b"\0")
        except OSError:
            continue
        parent[int(d)] = int(st.rsplit(")", 1)[1].split()[1])
    for pid, cmd in cmds.items():
        if not (cmd and cmd[0].endswith(b"relaypro")):
            continue
        p, hops = pid, 0
        while p in parent and p != top_pid and hops < 10:
            p, hops = parent[p], hops + 1
        if p == top_pid:
            return pid
    return None


@rt.case(timeout=120)
def demo_runs_as_printed():
    tmp = rt.make_tmpdir()
    demo = os.path.join(tmp, "demo")
    port, cport = rt.free_port(), rt.free_port()
    env = {"DEMO_DIR": demo, "DEMO_PORT": str(port), "DEMO_CONSOLE_PORT": str(cport)}
    # The README's block, as written (`make run`); DEMO_* keep this run off the defaults.
    p = rt.start_process(["bash", "-euo", "pipefail", "-c", readme.block("relaypro", 0)],
                         env=env, tmpdir=tmp, name="demo", cwd=rt.REPO_DIR, keep_root=False)
    S["proc"] = p
    rt.check(rt.wait_for_port("127.0.0.1", port, timeout=60), "make run: the relay listens", p.stderr())
    rt.check(rt.wait_until(lambda: '"event":"start"' in p.stdout(), timeout=10),
             "make run: the relay logged start (JSON on stdout)", p.stdout()[-2000:])
    blocks = printed_commands(p.stdout())
    rt.check_eq(len(blocks), 2, "make run: printed two ways to try it (password, token flow)")
    names = ("password flow", "token flow")
    for name, block in zip(names, blocks):
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=rt.REPO_DIR,
                           env=rt.clean_environ(), capture_output=True, text=True, timeout=30)
        rt.check(r.returncode == 0 and '"service":"test-console"' in r.stdout,
                 "make run: the printed %s reaches the console" % name,
                 "rc %d, out %r, err %r" % (r.returncode, r.stdout[-300:], r.stderr[-300:]))
    # The README's example line, with the demo's ports and folder for its placeholders.
    block = readme.block("Try it in one command", 0,
                         {"127.0.0.1:9443": "127.0.0.1:%d" % port, "localhost:8443": "localhost:%d" % cport,
                          "build/demo/": demo + "/"})
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=rt.REPO_DIR,
                       env=rt.clean_environ(), capture_output=True, text=True, timeout=30)
    rt.check(r.returncode == 0 and '"service":"test-console"' in r.stdout,
             "README: the example curl line reaches the demo console", r.stderr[-300:])
    if os.geteuid() == 0:
        pid = relay_pid(p.pid)
        rt.check(pid is not None, "make run: found the relay process under the demo shell")
        if pid:
            ids = rt.proc_status(pid)
            rt.check(ids.get("Uid") == [65534] * 4 and ids.get("Gid") == [65534] * 4,
                     "make run as root: the relay runs as 65534:65534 after binding", ids)
    since = len(p.stdout())
    if p.popen.poll() is None:  # Ctrl-C reaches the whole group (ours: its own session)
        os.killpg(p.pid, signal.SIGINT)
    rt.check(p.wait(20) is not None, "make run: Ctrl-C stops the demo")
    rt.check('"event":"stop"' in p.stdout()[since:], "make run: the relay logged stop",
             p.stdout()[since:][-500:])


if __name__ == "__main__":
    rt.main("demo", deadline=150)

#!/usr/bin/env python3
"""test_poll_backend.py -- the loop's two readiness backends (docs/design.md, "The loop").

`make test` runs every integration script with the default backend (epoll on Linux). This
script checks that RELAYPRO_POLL_BACKEND picks the backend (the relay's `loop.start` line
names it; a value that is neither poll nor epoll is a configuration error, exit 2), that a
relay whose epoll_create1 fails (injected by strace: a real failed system call, not a test
hook in the binary) runs on poll() with one `loop.backend_fallback` warning, then
runs the core scripts -- test_relay, test_websocket, test_abuse, test_emfile,
test_upstream_proxy, test_pending, test_forward_once, test_revoke -- again with the other
backend, poll(), the portable reference: one check per script, its own summary line in the
detail, its failures echoed.
Last line: `poll-backend: N passed, N failed`.
"""
import errno
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
HERE = os.path.dirname(os.path.abspath(__file__))
CORE = ["test_relay.py", "test_websocket.py", "test_abuse.py", "test_emfile.py",
        "test_upstream_proxy.py", "test_pending.py", "test_forward_once.py", "test_revoke.py"]
OTHER = "poll"
# strerror(EMFILE): musl's words (the release binary), glibc's (the ASan + UBSan relay)
EMFILE_TEXT = ("No file descriptors available", os.strerror(errno.EMFILE))

rt.init("poll-backend", deadline=3000)


def start_relay(backend, wrap=()):
    d = rt.make_tmpdir("relaytest-backend-")
    port = rt.free_port()
    cfg = os.path.join(d, "config.ini")
    with open(cfg, "w") as f:
        f.write("consoleAddress = localhost\nserverName = localhost\n[httpsProxy]\n"
                "listen = 127.0.0.1:%d\n[logger]\nfileName = relay.log\n" % port)
    env = {"RELAYPRO_POLL_BACKEND": backend} if backend is not None else {}
    p = rt.start_process(list(wrap) + [BIN, "run", "-c", cfg], env=env, tmpdir=d, name="relay",
                         cwd=d)
    return p, os.path.join(d, "relay.log"), cfg


@rt.case
def backend_chosen():
    for backend, want in ((None, "epoll"), ("epoll", "epoll"), ("poll", "poll")):
        p, log, _ = start_relay(backend)
        ev = rt.wait_for_log(log, "loop.start", timeout=15)
        rt.check(ev is not None and ev.get("backend") == want,
                 "RELAYPRO_POLL_BACKEND=%s: the loop runs on %s" % (backend or "(unset)", want), ev)
        p.stop()
    p, log, cfg = start_relay("select")
    rc = p.wait(15)
    rt.check(rc == 2 and "RELAYPRO_POLL_BACKEND" in p.stderr(),
             "an unknown backend is a configuration error (exit 2) naming the variable",
             "%s %s" % (rc, p.stderr()[-300:]))
    r = subprocess.run([BIN, "check-config", "-c", cfg], capture_output=True, text=True, timeout=20,
                       env=dict(rt.clean_environ(), RELAYPRO_POLL_BACKEND="select"))
    rt.check(r.returncode == 2 and "expected poll or epoll" in r.stderr,
             "check-config names the bad value", r.stderr[-300:])


@rt.case
def epoll_fails_poll_stands_in():
    wrap, why = rt.strace_argv("-o", "/dev/null", "-e", "trace=epoll_create1",
                               "-e", "inject=epoll_create1:error=EMFILE")
    if wrap is None:
        rt.skip("epoll_create1 failure", why)
        return
    p, log, cfg = start_relay(None, wrap)
    ev = rt.wait_for_log(log, lambda r: r.get("event") in ("loop.start", "start.fail"), timeout=30)
    rt.check(ev is not None and ev.get("event") == "loop.start" and ev.get("backend") == "poll",
             "epoll_create1 failed: the loop starts on poll()", ev)
    recs = rt.read_json_lines(log)
    fb = [r for r in recs if r.get("event") == "loop.backend_fallback"]
    rt.check(len(fb) == 1 and fb[0].get("level") == "warn" and fb[0].get("wanted") == "epoll" and
             fb[0].get("backend") == "poll" and fb[0].get("reason") in EMFILE_TEXT,
             "one loop.backend_fallback warning with the errno text", fb)
    rt.check(not [r for r in recs if r.get("event") == "start.fail"], "no start.fail", recs[-3:])
    with open(cfg) as f:
        port = int(re.search(r"listen = 127\.0\.0\.1:(\d+)", f.read()).group(1))
    resp = rt.http_request("127.0.0.1", port, "GET", "/", tls=True, server_hostname="localhost",
                           verify=False, timeout=10)
    rt.check(resp.status > 0, "the relay on poll() answers a request over TLS", resp.status)
    p.stop()


def run_script(name):
    env = dict(os.environ, RELAYPRO_POLL_BACKEND=OTHER)
    env.pop("RELAYTEST_ONLY", None)  # the script runs all its cases
    try:
        r = subprocess.run([sys.executable, os.path.join(HERE, name)], capture_output=True,
                           text=True, timeout=900, env=env)
        out, rc = r.stdout, r.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or ""), "timeout"
    summary = [ln for ln in out.splitlines() if re.match(r"^[\w-]+: \d+ passed, \d+ failed", ln)]
    m = re.match(r"^[\w-]+: (\d+) passed, (\d+) failed", summary[-1]) if summary else None
    fails = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    ok = m is not None and int(m.group(1)) > 0 and int(m.group(2)) == 0 and rc == 0
    rt.check(ok, "%s with RELAYPRO_POLL_BACKEND=%s: %s" % (name, OTHER, summary[-1] if summary
                                                             else "no summary (exit %s)" % rc),
             "\n".join(fails[:20]))


for _name in CORE:
    rt.case(lambda n=_name: run_script(n), name=_name, timeout=960)

rt.finish()

#!/usr/bin/env python3
"""tests/run.py MODE [-j N] -- the one test runner: `make test`, `make check` and
`make sanitize` are its three modes.

  test      the full gate: build both architectures, the source layout, unit tests (amd64,
            arm64 under qemu, glibc ASan + UBSan), the fuzz corpora replayed, the
            pre-authentication connection fuzzed for 60 s, every
            tests/integration/test_*.py, then every one of them again against the glibc
            ASan + UBSan relay (build/asan/relaypro) but the scripts in NO_ASAN.
  check     the quick tier for the edit loop (well under 90 s on 2 cores): the native
            build, the source layout, the amd64 unit tests, the configuration checks
            (check-config golden output and errors, from test_cli.py) and one integration
            smoke (test_smoke.py: a relay, CONNECT tunnels with a token and a password, a
            WebSocket tunnel, /healthz).
  sanitize  the ASan + UBSan integration pass alone, then VALGRIND_SET under
            `valgrind --leak-check=full` (the static binary through a wrapper that execs
            valgrind, so the PID a test stops is valgrind's). Slow.

Every step is a runner whose output ends with `N passed, N failed` (one word and a colon
may stand before it). Steps run as separate processes, up to N at once (-j, or
RELAYTEST_JOBS; default 3 -- most integration time is spent waiting on sockets, not on
the 2 cores); each step's output is kept in a file and printed whole, with its time, when
it ends, so two steps never interleave. The tally is one function (tally() below): a step
whose output has no summary line counts as one failure, and so does a step that exited
non-zero while reporting no failure. A check that cannot run here is reported by its runner
as a line `SKIP name: reason` (relaytest.skip()); tally() counts those lines too, as
neither pass nor failure. The LAST line is always
`total: N passed, N failed, N skipped`; the exit status is 0 only when that says 0 failed
(skips do not fail the run; they are counted so that they are seen).

What may run beside what (declared here, one table, GROUPS): a step holds the groups it
names while it runs, and no two steps holding one group run at once --
  alone    nothing else at all (test_abuse: ~10,000 tunnels and their descriptors, and
           test_poll_backend, which runs it again with poll();
           test_install: rewrites dist/ with ./build.sh while relays run from it, and
           boots podman containers)
  make     a step that runs make or a compiler into build/ (two makes on one tree race)
  dist     writes dist/ (packages, OCI layouts): one at a time
  podman   boots containers under podman: one at a time
A new test script runs in parallel with the rest unless it is named here.
Timings of the last run are kept in build/test-times.json and order the next run
(longest first); without it, HINT_SECONDS does.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
INTEGRATION = os.path.join(TESTS, "integration")
TIMES = os.path.join(REPO, "build", "test-times.json")

# Exclusivity, by script (the same in the plain and in the ASan pass).
GROUPS = {
    "test_abuse.py": {"alone"},
    "test_poll_backend.py": {"alone"},  # runs test_abuse.py (and the other core scripts) again
    "test_install.py": {"alone"},
    "test_container.py": {"dist", "podman"},
    "test_image.py": {"dist"},
    "test_packages.py": {"dist"},
    "test_demo.py": {"make"},      # make run: `make -s all`, fixed ports 8443/9443
    "test_socks5.py": {"make"},    # relaytest.build_tool: make build/<arch>/tools/...
    "test_register.py": {"make"},  # relaytest.build_tool
}
# Scripts that test the shipped static artefact itself (static linking, the empty chroot,
# the OCI image, the packages, the README walks) or only the test console: a glibc
# sanitizer build cannot stand in for it, so they are left out of the ASan pass.
NO_ASAN = {"test_cli.py", "test_image.py", "test_packages.py", "test_console.py",
           "test_demo.py", "test_install.py", "test_readme.py", "test_container.py"}
VALGRIND_SET = ("test_tokens.py", "test_reload.py", "test_upstream_proxy.py")
# Seconds the longer steps took on 2 shared cores (run one at a time, merge16); they order
# the first run of a fresh clone, longest first (an unlisted step counts as 5 s).
HINT_SECONDS = {
    "tests/integration/test_container.py": 97, "tests/integration/test_faults.py": 78,
    "asan: tests/integration/test_faults.py": 80, "tests/integration/test_tokens.py": 62,
    "asan: tests/integration/test_tokens.py": 62,
    "the pre-authentication connection fuzzed for 60 s (ASan + UBSan)": 62,
    "tests/integration/test_register.py": 30, "asan: tests/integration/test_register.py": 30,
    "tests/integration/test_socks5.py": 28, "asan: tests/integration/test_socks5.py": 28,
    "tests/integration/test_relay.py": 28, "asan: tests/integration/test_relay.py": 28,
    "tests/integration/test_security.py": 25, "asan: tests/integration/test_security.py": 24,
    "tests/integration/test_install.py": 22, "tests/integration/test_opcert.py": 20,
    "asan: tests/integration/test_opcert.py": 20, "tests/integration/test_upgrade.py": 14,
    "asan: tests/integration/test_upgrade.py": 14, "tests/integration/test_https_proxy.py": 14,
    "asan: tests/integration/test_https_proxy.py": 14,
}

SUMMARY = re.compile(r"^(?:[A-Za-z0-9_-]+: )?([0-9]+) passed, ([0-9]+) failed")
SKIP_LINE = re.compile(r"^SKIP \S")  # relaytest.skip(): "SKIP name: reason"


def tally(text):
    """(passed, failed, skipped) of a runner's output: passed and failed from its LAST
    summary line, skipped the number of its `SKIP ...` lines; None when it printed no
    summary line."""
    found = None
    skipped = 0
    for line in text.splitlines():
        m = SUMMARY.match(line)
        if m:
            found = (int(m.group(1)), int(m.group(2)))
        elif SKIP_LINE.match(line):
            skipped += 1
    return None if found is None else found + (skipped,)


class Step:
    """One runner. argv runs as its own process group; fn (instead of argv) is called in
    this process and returns (text, passed, failed). counts=False: a build step, whose
    output has no summary (a non-zero exit is one failure, success counts nothing)."""

    def __init__(self, name, argv=None, fn=None, env=None, groups=(), after=(), timeout=900,
                 counts=True):
        self.name, self.argv, self.fn, self.env = name, argv, fn, env or {}
        self.groups, self.after = set(groups), set(after)
        self.timeout, self.counts = timeout, counts
        self.seconds = 0.0
        self.passed = self.failed = self.skipped = 0
        self.ok = False

    def run(self):
        t0 = time.monotonic()
        if self.fn:
            try:
                text, self.passed, self.failed = self.fn()
            except Exception as e:  # a broken report step is a failure, never a pass
                text, self.passed, self.failed = "%s: %s\n" % (type(e).__name__, e), 0, 1
        else:
            text = self._run_argv()
        self.seconds = time.monotonic() - t0
        self.ok = self.failed == 0
        return text

    def _run_argv(self):
        env = dict(os.environ)
        env.update(self.env)
        with tempfile.TemporaryFile() as out:
            p = subprocess.Popen(self.argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            note = ""
            try:
                rc = p.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                rc = stop_group(p)
                note = "run.py: %s ran longer than %d s and was stopped\n" % (
                    self.name, self.timeout)
            out.seek(0)
            text = out.read().decode("utf-8", "replace") + note
        counted = tally(text) if self.counts else (0, 0, 0)
        if counted is None:
            self.passed, self.failed = 0, 1
            text += "run.py: %s printed no summary (exit %s)\n" % (self.name, rc)
        else:
            self.passed, self.failed, self.skipped = counted
            if rc != 0 and self.failed == 0:
                self.failed = 1
                text += "run.py: %s exited %s\n" % (self.name, rc)
        return text


def stop_group(p):
    """SIGTERM to the step's own process group (it was started as a session leader, so the
    group id is its PID), a bounded wait, then SIGKILL. Returns the exit status."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(p.pid, sig)
        except OSError:
            pass
        try:
            return p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return p.poll()


class Pool:
    """Runs steps up to `jobs` at once, in list order among those whose `after` steps have
    finished and whose groups are free; `alone` waits for an empty pool and holds it."""

    def __init__(self, jobs):
        self.jobs = max(1, jobs)
        self.lock = threading.Condition()
        self.out_lock = threading.Lock()
        self.running = []
        self.done = {}

    def _startable(self, s):
        if any(a not in self.done for a in s.after):
            return False
        if "alone" in s.groups:
            return not self.running
        if any("alone" in r.groups for r in self.running):
            return False
        held = set().union(*(r.groups for r in self.running)) if self.running else set()
        return not (s.groups & held)

    def run(self, steps):
        todo = list(steps)
        names = {s.name for s in steps}
        for s in steps:
            s.after &= names
        with self.lock:
            while todo or self.running:
                started = False
                if len(self.running) < self.jobs:
                    for s in todo:
                        if self._startable(s):
                            todo.remove(s)
                            self.running.append(s)
                            threading.Thread(target=self._one, args=(s,), daemon=True).start()
                            started = True
                            break
                        if "alone" in s.groups and all(a in self.done for a in s.after):
                            break  # nothing overtakes a step waiting to run alone
                if not started:
                    if not self.running and todo:
                        # unreachable steps (a cycle in `after`): fail them, never hang
                        for s in todo:
                            s.failed = 1
                            self._print(s, "run.py: %s never became runnable\n" % s.name)
                            self.done[s.name] = s
                        todo = []
                        continue
                    self.lock.wait()

    def _one(self, s):
        text = s.run()
        self._print(s, text)
        with self.lock:
            self.running.remove(s)
            self.done[s.name] = s
            self.lock.notify_all()

    def _print(self, s, text):
        with self.out_lock:
            sys.stdout.write("== %s (%.0f s)\n%s" % (s.name, s.seconds, text))
            if text and not text.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()


# ================================================================= steps

def scripts():
    return sorted(f for f in os.listdir(INTEGRATION) if re.match(r"^test_.*\.py$", f))


def integration(name, env=None, prefix="", timeout=900, after=()):
    return Step(prefix + "tests/integration/" + name,
                ["timeout", "-k", "30", str(timeout), sys.executable,
                 os.path.join("tests", "integration", name)],
                env=env, groups=GROUPS.get(name, ()), after=after, timeout=timeout + 60)


def reports(folder, label, empty_is_clean=False):
    """A step counting sanitizer or valgrind report files below `folder` (one subfolder per
    script, so a report names the script that made it): each one a failure. valgrind -q
    writes a log only when it has something to say, so an empty valgrind log is a clean
    run; an empty sanitizer log still counts (a sanitized process opened it and died
    before it could say why)."""
    def fn():
        text, n = "", 0
        for root, _, files in sorted(os.walk(folder)):
            for f in sorted(files):
                path = os.path.join(root, f)
                size = os.path.getsize(path)
                if empty_is_clean and size == 0:
                    continue
                with open(path, errors="replace") as fh:
                    head = "".join(fh.readlines()[:60])
                text += "---- %s report: %s (%d bytes; %s)\n%s" % (
                    label, path, size, "modified %s" % time.strftime(
                        "%H:%M:%S", time.localtime(os.path.getmtime(path))), head)
                n += 1
        text += "%s-reports: %d passed, %d failed\n" % (label, 0 if n else 1, n)
        return text, 0 if n else 1, n
    return fn


def asan_steps(after):
    logs = os.path.join(REPO, "build", "asan", "logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs, exist_ok=True)
    steps = [Step("build asan relay", ["make", "-s", "asan-relay"], groups={"make"},
                  after=after, counts=False, timeout=1200)]
    for t in scripts():
        if t in NO_ASAN:
            continue
        d = os.path.join(logs, t[:-3])  # reports name the script that made them
        os.makedirs(d, exist_ok=True)
        env = {"RELAYPRO_BIN": os.path.join(REPO, "build", "asan", "relaypro"),
               "ASAN_OPTIONS": "log_path=%s/asan:detect_leaks=1:abort_on_error=0" % d,
               "UBSAN_OPTIONS": "log_path=%s/ubsan:print_stacktrace=1:halt_on_error=1" % d}
        steps.append(integration(t, env, "asan: ", 1200, after=["build asan relay"]))
    steps.append(Step("sanitizer reports", fn=reports(logs, "sanitizer"),
                      after=[s.name for s in steps]))
    return steps


def valgrind_steps(after):
    vdir = os.path.join(REPO, "build", "valgrind")
    vlogs = os.path.join(vdir, "logs")
    shutil.rmtree(vlogs, ignore_errors=True)
    os.makedirs(vlogs, exist_ok=True)
    wrapper = os.path.join(vdir, "relaypro")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind -q --leak-check=full --errors-for-leak-kinds=definite "
                "--error-exitcode=99 --trace-children=no --log-file=%s/vg.%%p.log %s \"$@\"\n"
                % (vlogs, os.path.join(REPO, "dist", "relaypro-linux-amd64")))
    os.chmod(wrapper, 0o755)
    steps = [Step("install valgrind", ["sh", "-c", "command -v valgrind >/dev/null || "
                                       "apt-get -o DPkg::Lock::Timeout=900 install -y -qq valgrind"
                                       " >/dev/null"], after=after, counts=False)]
    steps += [integration(t, {"RELAYPRO_BIN": wrapper}, "valgrind: ", 1800,
                          after=["install valgrind"]) for t in VALGRIND_SET]
    steps.append(Step("valgrind reports", fn=reports(vlogs, "valgrind", empty_is_clean=True),
                      after=[s.name for s in steps]))
    return steps


def full_steps():
    make = {"make"}
    steps = [
        Step("source layout", [sys.executable, "tests/lint/test_layout.py"]),
        Step("unit tests (amd64)", ["sh", "-c", "make -s ARCH=amd64 build/amd64/unit-tests && "
                                    "exec build/amd64/unit-tests"], groups=make),
        Step("build unit tests (arm64)", ["make", "-s", "ARCH=arm64", "build/arm64/unit-tests"],
             groups=make, counts=False),
        Step("unit tests (arm64 under qemu)", ["qemu-aarch64-static", "build/arm64/unit-tests"],
             env={"RELAYPRO_EMULATED": "qemu-user"}, after=["build unit tests (arm64)"]),
        Step("unit tests (glibc, ASan + UBSan)", ["make", "-s", "asan"], groups=make),
        Step("fuzz corpora replayed (musl, then glibc ASan + UBSan)",
             ["make", "-s", "fuzz-replay"], groups=make),
        Step("build the pre-authentication fuzzer (clang, libFuzzer)",
             ["make", "-s", "fuzz-smoke-build"], groups=make, counts=False),
        Step("the pre-authentication connection fuzzed for 60 s (ASan + UBSan)",
             ["make", "-s", "fuzz-smoke-run"],
             after=["build the pre-authentication fuzzer (clang, libFuzzer)"]),
    ]
    steps += [integration(t) for t in scripts()]
    return steps + asan_steps(after=())


def check_steps():
    native = os.path.join(REPO, "build", "amd64", "relaypro")
    env = {"RELAYPRO_BIN": native}
    return [
        Step("build (amd64) and unit tests", ["make", "-s", "ARCH=amd64", "build/amd64/relaypro",
                                              "build/amd64/unit-tests"], groups={"make"},
             counts=False),
        Step("source layout", [sys.executable, "tests/lint/test_layout.py"]),
        Step("unit tests (amd64)", ["build/amd64/unit-tests"],
             after=["build (amd64) and unit tests"]),
        Step("configuration checks (check-config golden and errors)",
             [sys.executable, "tests/integration/test_cli.py"],
             env=dict(env, RELAYTEST_ONLY="check_config_golden,check_config_errors"),
             after=["build (amd64) and unit tests"], timeout=60),
        Step("integration smoke", [sys.executable, "tests/integration/test_smoke.py"], env=env,
             after=["build (amd64) and unit tests"], timeout=120),
    ]


def order(steps):
    """Alone steps first (they hold the whole machine anyway), then by critical path: a
    step's own time (last run's, else HINT_SECONDS) plus the longest chain of steps waiting
    for it, longest first -- so the builds that the ASan pass waits for start early."""
    try:
        with open(TIMES) as f:
            seen = json.load(f)
    except (OSError, ValueError):
        seen = {}
    secs = {s.name: seen.get(s.name, HINT_SECONDS.get(s.name, 5)) for s in steps}
    waiting = {s.name: [t for t in steps if s.name in t.after] for s in steps}
    memo = {}

    def path(s, depth=0):
        if s.name not in memo:
            memo[s.name] = secs[s.name] + max(
                [path(t, depth + 1) for t in waiting[s.name]] if depth < 50 else [0], default=0)
        return memo[s.name]

    def key(ix):
        i, s = ix
        return (0 if "alone" in s.groups else 1, -path(s), i)
    return [s for _, s in sorted(enumerate(steps), key=key)]


def save_times(steps):
    try:
        with open(TIMES) as f:
            seen = json.load(f)
    except (OSError, ValueError):
        seen = {}
    seen.update({s.name: round(s.seconds, 1) for s in steps})
    os.makedirs(os.path.dirname(TIMES), exist_ok=True)
    with open(TIMES + ".new", "w") as f:
        json.dump(seen, f, indent=1, sort_keys=True)
    os.replace(TIMES + ".new", TIMES)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("test", "check", "sanitize"))
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("RELAYTEST_JOBS", "3")))
    a = ap.parse_args()
    os.chdir(REPO)
    t0 = time.monotonic()
    sys.stdout.write("run.py %s: %d jobs at once\n" % (a.mode, a.jobs))
    sys.stdout.flush()
    first = []
    if a.mode in ("test", "sanitize"):
        build = Step("build (both architectures)", ["./build.sh"], counts=False, timeout=1800)
        Pool(1).run([build])
        if build.failed:
            sys.stdout.write("build failed\ntotal: 0 passed, 1 failed, 0 skipped\n")
            return 1
        first = [build]
    if a.mode == "test":
        steps = full_steps()
    elif a.mode == "check":
        steps = check_steps()
    else:
        steps = asan_steps(after=())
        steps += valgrind_steps(after=[s.name for s in steps])
    steps = order(steps)
    Pool(a.jobs).run(steps)
    steps = first + steps
    save_times(steps)
    passed = sum(s.passed for s in steps)
    failed = sum(s.failed for s in steps)
    skipped = sum(s.skipped for s in steps)
    slow = sorted(steps, key=lambda s: -s.seconds)[:8]
    sys.stdout.write("run.py %s: %.0f s wall; longest steps: %s\n" % (
        a.mode, time.monotonic() - t0,
        ", ".join("%s %.0f s" % (s.name.replace("tests/integration/", ""), s.seconds)
                  for s in slow)))
    bad = [s.name for s in steps if s.failed]
    if bad:
        sys.stdout.write("run.py: failed steps: %s\n" % ", ".join(bad))
    skipping = ["%s %d" % (s.name.replace("tests/integration/", ""), s.skipped)
                for s in steps if s.skipped]
    if skipping:
        sys.stdout.write("run.py: steps with skipped checks: %s\n" % ", ".join(skipping))
    sys.stdout.write("total: %d passed, %d failed, %d skipped\n" % (passed, failed, skipped))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

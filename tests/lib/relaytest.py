"""relaytest -- helpers for relaypro's integration tests (plain Python 3 scripts, stdlib only).

Contract
--------
* Runner: `check(cond, name, detail="")` counts one pass or failure and prints one line;
  `skip(name, reason)` prints one line and counts as neither;
  `@case` registers a function run by `run_cases()`/`finish()`; an exception in a case is
  one failure. `finish()` stops every process this module started, then prints
  `<prefix>: N passed, N failed` as the LAST line of stdout and exits 1 on any failure.
* Processes: everything started through `start_process()`/`start_console()` runs in its own
  session, is stopped by PID (SIGTERM, bounded wait, SIGKILL; leftovers of its process
  group likewise, by group id), and is stopped at exit even when a test fails, raises, or
  the script receives SIGTERM/SIGINT/SIGHUP. Nothing is ever signalled by name.
* Privileges: run as root, every process gets RELAYPRO_USER=root unless `env` sets it, so
  relays keep root as before the `user` key; test_privdrop.py tests the drop itself.
* Network: every helper connects only to loopback (127.0.0.0/8, ::1, "localhost"); anything
  else raises ValueError. Every loop is bounded in iterations and in time.

Usage sketch:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    import relaytest as rt
    rt.init("integration", deadline=300)
    tmp = rt.make_tmpdir()
    con = rt.start_console(tmp)
    r = rt.http_request("127.0.0.1", con.https_port, "GET", "/api/app/check",
                        tls=True, cafile=con.ca, server_hostname="localhost")
    rt.check(r.status == 200, "console answers")
    rt.finish()
"""

import atexit
import base64
import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)
REPO_DIR = os.path.dirname(TESTS_DIR)
CONSOLE_PY = os.path.join(TESTS_DIR, "console.py")

MAX_HEAD = 64 * 1024           # response heads we are willing to read
MAX_READ = 64 * 1024 * 1024    # bytes any single read-until-close helper keeps

# ================================================================= runner

_state = {
    "prefix": "integration",
    "passed": 0,
    "failed": 0,
    "failures": [],
    "skipped": 0,
    "cases": [],        # [(name, fn, timeout)]
    "cases_ran": False,
    "finished": False,
}
_out_lock = threading.RLock()


def _say(line):
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def init(prefix="integration", deadline=None):
    """Set the summary prefix (one word) and an optional whole-script deadline in seconds.

    When the deadline passes, the run is recorded as failed, processes are stopped, the
    summary is printed and the script exits 1, whatever the main thread is doing.
    """
    if not prefix or any(c.isspace() for c in prefix) or ":" in prefix:
        raise ValueError("prefix must be one word without a colon")
    _state["prefix"] = prefix
    _install_handlers()
    if deadline:
        def watchdog():
            time.sleep(deadline)
            if _state["finished"]:
                return
            _record(False, "deadline", "the script ran longer than %ss" % deadline)
            _final_exit()
        threading.Thread(target=watchdog, name="relaytest-deadline", daemon=True).start()


def _record(ok, name, detail=""):
    with _out_lock:
        if ok:
            _state["passed"] += 1
            _say("ok   %s" % redact(name))
        else:
            _state["failed"] += 1
            _state["failures"].append(name)
            _say("FAIL %s%s" % (redact(name), (": " + redact(detail)) if detail != "" else ""))
    return ok


# ================================================================= secrets in output

_secrets = set()
_secret_patterns = []   # [(compiled regex, replacement)]
REDACTED = "<redacted>"


def secret(value):
    """Register a test secret (a password, a token, a key, a Basic credential): no line
    this module prints shows it (check/skip names and details are passed through redact()).
    Returns value, so `TOKEN = rt.secret(...)` reads naturally. Empty values are ignored."""
    if value:
        with _out_lock:
            _secrets.add(str(value))
    return value


def secrets():
    """Every secret registered so far (a copy): what a test looks for in logs and output."""
    with _out_lock:
        return set(_secrets)


def secret_pattern(regex, replacement=REDACTED):
    """Also hide whatever matches `regex` (e.g. anything shaped like a JWT)."""
    import re as _re
    with _out_lock:
        _secret_patterns.append((_re.compile(regex), replacement))


def redact(v, limit=None):
    """str(v) (repr for non-strings) with every registered secret replaced by <redacted>
    (longest first, so a secret inside another is hidden whole); cut to `limit` chars."""
    s = v if isinstance(v, str) else repr(v)
    with _out_lock:
        secs = sorted(_secrets, key=len, reverse=True)
        pats = list(_secret_patterns)
    for sec in secs:
        s = s.replace(sec, REDACTED)
    for rx, rep in pats:
        s = rx.sub(rep, s)
    return s if limit is None else s[:limit]


def check(cond, name, detail=""):
    """Count one assertion; return bool(cond). `detail` is printed only on failure."""
    return _record(bool(cond), name, detail)


def check_eq(got, want, name):
    """check(got == want) with both values in the failure line (secrets redacted)."""
    return _record(got == want, name, "got %r, want %r" % (_short(got), _short(want)))


def _short(v, n=300):
    r = repr(v)
    return v if len(r) <= n else r[:n] + "..."


def skip(name, reason):
    """Report a check that cannot run here; not counted as pass or failure (and a case
    that only skipped is not counted as a pass either)."""
    _state["skipped"] += 1
    _say("SKIP %s: %s" % (name, reason))


def failed():
    return _state["failed"]


class CaseTimeout(BaseException):
    """Raised inside a case whose own time limit passed (BaseException: `except Exception`
    in test code does not swallow it)."""


def case(fn=None, *, name=None, timeout=60):
    """Decorator registering a test case; `@case` or `@case(name=..., timeout=...)`.

    A case counts its own check() calls; an exception (or its timeout) is one failure; a
    case that returns having made no check and no skip() at all counts as one pass.
    """
    def register(f):
        _state["cases"].append((name or f.__name__, f, timeout))
        return f
    if fn is not None:
        return register(fn)
    return register


def run_cases(only=None):
    """Run the registered cases in order (those named in `only`, when given). Once."""
    if _state["cases_ran"]:
        return
    _state["cases_ran"] = True
    for cname, fn, timeout in _state["cases"]:
        if only and cname not in only:
            continue
        before = _state["passed"] + _state["failed"] + _state["skipped"]
        use_timer = threading.current_thread() is threading.main_thread() and timeout
        if use_timer:
            def on_alarm(signum, frame, _n=cname, _t=timeout):
                raise CaseTimeout("case %s exceeded %ss" % (_n, _t))
            old = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            fn()
        except CaseTimeout as e:
            _record(False, cname, str(e))
        except Exception as e:
            tb = traceback.format_exc().rstrip().splitlines()
            _record(False, cname, "%s: %s" % (type(e).__name__, e))
            with _out_lock:
                for ln in tb[-12:]:
                    _say("     " + ln)
        else:
            if _state["passed"] + _state["failed"] + _state["skipped"] == before:
                _record(True, cname)
        finally:
            if use_timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)


def finish(prefix=None):
    """Run pending cases (only those named in RELAYTEST_ONLY=a,b when set), stop every
    process, print the summary line last, exit 1 on any failure (0 otherwise)."""
    if prefix:
        _state["prefix"] = prefix
    try:
        only = [n for n in os.environ.get("RELAYTEST_ONLY", "").split(",") if n]
        run_cases(only=only or None)
    except BaseException as e:  # KeyboardInterrupt and the like: still summarise
        _record(False, "run", "%s: %s" % (type(e).__name__, e))
    _final_exit()


def main(prefix="integration", deadline=None):
    init(prefix, deadline)
    finish()


_final_lock = threading.Lock()
_final_owner = [None]


def _final_exit(code=None):
    """Cleanup, summary line, exit. Safe to reach from the watchdog or a signal handler."""
    if not _final_lock.acquire(blocking=False):
        if _final_owner[0] is threading.current_thread():
            return  # a signal arrived while this thread was already finishing
        time.sleep(60)  # another thread is finishing and will exit the process
        os._exit(1)
    _final_owner[0] = threading.current_thread()
    _state["finished"] = True
    try:
        cleanup_all()
    except BaseException:
        pass
    with _out_lock:
        sys.stdout.write("%s: %d passed, %d failed\n"
                         % (_state["prefix"], _state["passed"], _state["failed"]))
        sys.stdout.flush()
        try:
            sys.stderr.flush()
        except Exception:
            pass
    if code is None:
        code = 1 if _state["failed"] else 0
    os._exit(code)


# ================================================================= cleanup registry

_procs = []          # Proc objects, in start order
_cleanups = []       # callables, run after processes are stopped (LIFO)
_tmpdirs = []
_reg_lock = threading.RLock()
_cleaned = [False]
_handlers_installed = [False]


def at_cleanup(fn):
    """Run fn() at cleanup (exit, signal, finish), after every process has been stopped."""
    with _reg_lock:
        _cleanups.append(fn)
    return fn


def cleanup_all():
    """Stop every tracked process (newest first), run cleanups, drop temp dirs. Idempotent."""
    with _reg_lock:
        if _cleaned[0]:
            return
        _cleaned[0] = True
        procs = list(reversed(_procs))
        fns = list(reversed(_cleanups))
    for p in procs:
        try:
            p.stop(timeout=5)
        except Exception:
            pass
    for fn in fns:
        try:
            fn()
        except Exception:
            pass
    keep = os.environ.get("RELAYTEST_KEEP") == "1" or _state["failed"] > 0
    for d in _tmpdirs:
        if keep:
            sys.stderr.write("relaytest: kept %s\n" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


def _on_signal(signum, frame):
    _record(False, "interrupted", "signal %s" % signal.Signals(signum).name)
    _final_exit(1)


def _install_handlers():
    if _handlers_installed[0]:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed[0] = True
    atexit.register(cleanup_all)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            signal.signal(s, _on_signal)
        except (ValueError, OSError):
            pass


def make_tmpdir(prefix="relaytest-"):
    """A fresh directory, removed at cleanup unless a check failed or RELAYTEST_KEEP=1."""
    _install_handlers()
    base = os.environ.get("RELAYTEST_TMP") or None
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    with _reg_lock:
        _tmpdirs.append(d)
    return d


def write_file(path, data, mode=None, atomic=False):
    """Write str or bytes to path; chmod to `mode` when given. atomic: write path.tmp and
    rename it over path (a reader -- a relay reloading -- never sees half a file)."""
    target = path + ".tmp" if atomic else path
    with open(target, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    if mode is not None:
        os.chmod(target, mode)
    if atomic:
        os.replace(target, path)
    return path


def read_file(path, binary=False):
    with open(path, "rb" if binary else "r") as f:
        return f.read()


def project_version():
    """VERSION from the Makefile (what the binary, the packages and the image carry)."""
    import re as _re
    m = _re.search(r"^VERSION\s*:=\s*(\S+)", read_file(os.path.join(REPO_DIR, "Makefile")), _re.M)
    if not m:
        raise RuntimeError("no VERSION in Makefile")
    return m.group(1)


# ================================================================= processes

_SCRUB_PREFIXES = ("RELAYPRO_", "AIR_")
_SCRUB_NAMES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
# Kept: the loop's readiness backend, so a whole script runs against poll() or epoll
# (tests/integration/test_poll_backend.py runs the core scripts with the other one).
_KEEP_NAMES = {"RELAYPRO_POLL_BACKEND"}


def clean_environ():
    """os.environ without RELAYPRO_*, AIR_* and proxy variables (so the developer's shell
    cannot change what a test sees), except RELAYPRO_POLL_BACKEND."""
    return {k: v for k, v in os.environ.items()
            if k in _KEEP_NAMES or
            (not k.startswith(_SCRUB_PREFIXES) and k.lower() not in _SCRUB_NAMES)}


def _group_members(pgid):
    """Live (non-zombie) PIDs whose process group is pgid; None if /proc is unreadable."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    out = []
    for n in names:
        if not n.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % n) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        # rest[0] = state, rest[1] = ppid, rest[2] = pgrp
        if len(rest) > 2 and rest[2] == str(pgid) and rest[0] != "Z":
            out.append(int(n))
    return out


class Proc:
    """A process started by start_process(). Attributes: name, argv, pid, popen,
    stdout_path, stderr_path."""

    def __init__(self, argv, popen, name, stdout_path, stderr_path, own_group):
        self.argv = argv
        self.popen = popen
        self.pid = popen.pid
        self.name = name
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.own_group = own_group
        self._lock = threading.Lock()

    def __repr__(self):
        return "<Proc %s pid=%d>" % (self.name, self.pid)

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.poll()

    def wait(self, timeout):
        """Exit status, or None if still running after `timeout` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        """Send sig to this PID if it is still our running child."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=10, sig=None):
        """sig (default SIGTERM), wait up to `timeout` s, then SIGKILL; then the same for
        anything left in its process group (workers, an upgraded binary).
        Returns the exit status."""
        if sig is None:
            sig = signal.SIGTERM
        with self._lock:
            if self.popen.poll() is None:
                self.signal(sig)
                if self.wait(timeout) is None:
                    self.signal(signal.SIGKILL)
                    self.wait(5)
            if self.own_group:
                self._stop_group(timeout)
            return self.popen.poll()

    def _stop_group(self, timeout):
        members = _group_members(self.pid)
        if members is None:
            try:
                os.killpg(self.pid, 0)
                members = [self.pid]
            except OSError:
                members = []
        if not members:
            return
        for s, wait in ((signal.SIGTERM, min(timeout, 3.0)), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(self.pid, s)
            except OSError:
                return
            end = time.monotonic() + wait
            while time.monotonic() < end:
                m = _group_members(self.pid)
                if not m:
                    return
                time.sleep(0.05)

    def kill(self):
        return self.stop(timeout=0, sig=signal.SIGKILL)

    def stdout(self):
        return _read_text(self.stdout_path)

    def stderr(self):
        return _read_text(self.stderr_path)

    def wait_for_output(self, needle, timeout=10, stream="stdout"):
        """True once `needle` (str) appears in the stream's file; False on timeout or exit."""
        path = self.stdout_path if stream == "stdout" else self.stderr_path
        end = time.monotonic() + timeout
        while True:
            if needle in _read_text(path):
                return True
            if self.popen.poll() is not None:
                return needle in _read_text(path)
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)


def _read_text(path, limit=MAX_READ):
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def start_process(argv, env=None, tmpdir=None, name=None, cwd=None, stdin=None,
                  clean_env=True, own_group=True, keep_root=True):
    """Start argv with stdout/stderr in files `<tmpdir>/<name>.stdout|.stderr`.

    env: extra variables laid over the environment (scrubbed of RELAYPRO_*, AIR_* and proxy
    variables unless clean_env=False). stdin: None (=/dev/null), "pipe", or a file object.
    The process gets its own session (so a Ctrl-C in the terminal reaches only us and we
    stop it deliberately) and is stopped at cleanup. keep_root=False: as root, do not add
    RELAYPRO_USER=root (the process drops privileges as configured). Returns a Proc.
    """
    _install_handlers()
    if tmpdir is None:
        tmpdir = make_tmpdir()
    name = name or os.path.basename(str(argv[0]))
    base = clean_environ() if clean_env else dict(os.environ)
    if keep_root and os.geteuid() == 0 and "RELAYPRO_USER" not in base:
        # As root a relay drops to `user` (default relaypro, not a user here): relays
        # started by tests keep root unless the test sets RELAYPRO_USER itself
        # (test_privdrop.py does; the environment beats a file's `user`).
        base["RELAYPRO_USER"] = "root"
    if env:
        base.update({k: str(v) for k, v in env.items()})
    out_path = os.path.join(tmpdir, name + ".stdout")
    err_path = os.path.join(tmpdir, name + ".stderr")
    if stdin is None:
        stdin = subprocess.DEVNULL
    elif stdin == "pipe":
        stdin = subprocess.PIPE
    with open(out_path, "ab") as out, open(err_path, "ab") as err:
        with _reg_lock:
            popen = subprocess.Popen([str(a) for a in argv], env=base, cwd=cwd, stdin=stdin,
                                     stdout=out, stderr=err, close_fds=True,
                                     start_new_session=own_group)
            p = Proc(list(argv), popen, name, out_path, err_path, own_group)
            _procs.append(p)
    return p


def track_pid(pid, name="pid"):
    """Have cleanup stop a process we did not start ourselves but are responsible for
    (e.g. a PID a relay reports after a binary upgrade). Stopped by PID only."""
    class _Ext:
        def __init__(self):
            self.pid, self.name = pid, name

        def stop(self, timeout=5):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                return
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    os.kill(pid, 0)
                except OSError:
                    return
                time.sleep(0.05)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    with _reg_lock:
        _procs.append(_Ext())


# ================================================================= the test console

class ConsoleHandle:
    """A running tests/console.py. Attributes: proc, dir, ports (dict), https_port,
    http_port, echo_port, tls_echo_port (None when disabled), ca, cert, key,
    register_log, org, deployment_token, security_token, relay_id, ipv6 (list)."""

    def __init__(self, proc, d, info, opts):
        self.proc = proc
        self.pid = proc.pid
        self.dir = d
        self.info = info
        self.ports = {k: info[k] for k in ("https", "http", "echo", "tls_echo") if k in info}
        self.https_port = info.get("https")
        self.http_port = info.get("http")
        self.echo_port = info.get("echo")
        self.tls_echo_port = info.get("tls_echo")
        self.ca = info.get("ca")
        self.cert = info.get("cert")
        self.key = info.get("key")
        self.register_log = os.path.join(d, "register.log")
        self.ipv6 = info.get("ipv6", [])
        self.org = opts["org"]
        self.deployment_token = opts["deployment_token"]
        self.security_token = opts["security_token"]
        self.relay_id = opts["relay_id"]

    def stop(self, timeout=10):
        return self.proc.stop(timeout=timeout)

    def register_attempts(self):
        """Registration attempts so far, one dict per attempt (see console.py)."""
        return read_json_lines(self.register_log)

    def address(self, port_kind="https", host="localhost"):
        """"host:port" of one listener, e.g. for consoleAddress."""
        return "%s:%d" % (host, self.ports[port_kind])


def start_console(tmpdir, https=True, http=True, echo=True, tls_echo=True, org=1,
                  deployment_token="test-deployment-token",
                  security_token="test-security-token", relay_id=7, fail_register=0,
                  ipv6=False, sans=(), key_type="rsa", ports=None, extra_args=(),
                  timeout=20, name="console"):
    """Start tests/console.py with ephemeral ports (or `ports={"https": 8443, ...}`) in
    `<tmpdir>/<name>/` and wait (at most `timeout` s) for READY. Returns a ConsoleHandle;
    raises RuntimeError (with the console's stderr) if it does not come up."""
    d = os.path.join(tmpdir, name)
    os.makedirs(d, exist_ok=True)
    port_file = os.path.join(d, "ports.json")
    try:
        os.unlink(port_file)
    except FileNotFoundError:
        pass
    ports = ports or {}
    argv = [sys.executable, CONSOLE_PY, "--dir", d, "--port-file", port_file,
            "--org", str(org), "--deployment-token", deployment_token,
            "--security-token", security_token, "--relay-id", str(relay_id),
            "--fail-register", str(fail_register), "--key-type", key_type,
            "--exit-with-parent"]
    for kind, on in (("https", https), ("http", http), ("echo", echo),
                     ("tls-echo", tls_echo)):
        if on:
            argv += ["--%s-port" % kind, str(ports.get(kind.replace("-", "_"), 0))]
    if ipv6:
        argv.append("--ipv6")
    for s in sans:
        argv += ["--san", s]
    argv += list(extra_args)
    proc = start_process(argv, tmpdir=tmpdir, name=name)
    if not proc.wait_for_output("READY\n", timeout=timeout):
        proc.stop(timeout=2)
        raise RuntimeError("console did not become ready in %ss; stderr:\n%s"
                           % (timeout, proc.stderr()[-3000:]))
    with open(port_file) as f:
        info = json.load(f)
    return ConsoleHandle(proc, d, info, dict(org=org, deployment_token=deployment_token,
                                             security_token=security_token,
                                             relay_id=relay_id))


# A console that only answers the registration API (no plain HTTP, no echo ports).
HTTPS_ONLY = dict(https=True, http=False, echo=False, tls_echo=False)
_consoles = {}


def console_once(tmpdir, name="console", **opts):
    """The script's console `name`: started with start_console(tmpdir, name=name, **opts)
    on first use, the same ConsoleHandle after that (cases that share one console)."""
    with _reg_lock:
        if name not in _consoles:
            _consoles[name] = start_console(tmpdir, name=name, **opts)
        return _consoles[name]


# ================================================================= SOCKS5 proxies

SOCKS5_SERVER_PY = os.path.join(HERE, "socks5server.py")
MICROSOCKS = "/usr/bin/microsocks"   # Debian microsocks (build.sh installs it)
DANTED = "/usr/sbin/danted"          # Debian dante-server


class Socks5Handle:
    """A SOCKS5 proxy started by start_socks5_server(). Attributes: kind ("own",
    "microsocks", "dante"), proc, port, log (the file it logs to), url(scheme, user,
    password) builds "socks5h://user:password@127.0.0.1:port"."""

    def __init__(self, kind, proc, port, log):
        self.kind, self.proc, self.pid, self.port, self.log = kind, proc, proc.pid, port, log

    def url(self, scheme="socks5h", user=None, password=None):
        cred = "%s:%s@" % (user, password) if user is not None else ""
        return "%s://%s127.0.0.1:%d" % (scheme, cred, self.port)

    def log_text(self):
        """What the proxy logged so far (own: JSON lines; microsocks: its standard error;
        dante: its logoutput file)."""
        return _read_text(self.log)

    def events(self, name=None):
        """own kind only: its JSON log records (of one event name, when given)."""
        return [r for r in read_json_lines(self.log) if name is None or r.get("event") == name]

    def stop(self, timeout=10):
        return self.proc.stop(timeout=timeout)


def start_socks5_server(tmpdir, kind="own", name=None, user=None, password=None, mode="ok",
                        rep=1, extra=b"", block_ports=(), timeout=15):
    """Start a SOCKS5 proxy listening on 127.0.0.1 (an unprivileged port) and wait until it
    accepts connections. kind:
      "own"        tests/lib/socks5server.py (any `mode`, `rep`, `extra`; user/password)
      "microsocks" Debian's microsocks (no auth, or RFC 1929 with user/password)
      "dante"      Debian's dante-server, run from a config in tmpdir (no auth; as root it
                   drops to nobody itself); block_ports: target ports its rules refuse
                   (REP X'02'); it may connect to loopback targets only
    Returns a Socks5Handle; raises RuntimeError (with the proxy's output) when it does not
    come up, or when the program is missing (build.sh installs both packages)."""
    name = name or "socks5-" + kind
    if kind == "own":
        log = os.path.join(tmpdir, name + ".jsonl")
        argv = [sys.executable, SOCKS5_SERVER_PY, "--port", "0", "--log", log, "--mode", mode,
                "--rep", str(rep)]
        if extra:
            argv += ["--extra", extra.decode("latin-1")]
        if user is not None:
            argv += ["--user", user, "--password", password]
        proc = start_process(argv, tmpdir=tmpdir, name=name)
        rec = wait_for_log(log, "listening", timeout=timeout)
        if rec is None:
            proc.stop(timeout=2)
            raise RuntimeError("%s did not start: %s" % (name, proc.stderr()[-2000:]))
        return Socks5Handle(kind, proc, rec["port"], log)
    port = free_port()
    if kind == "microsocks":
        if not os.access(MICROSOCKS, os.X_OK):
            raise RuntimeError("%s missing (Debian package microsocks; build.sh deps)" % MICROSOCKS)
        argv = [MICROSOCKS, "-i", "127.0.0.1", "-p", str(port)]
        if user is not None:
            argv += ["-u", user, "-P", password]
        proc = start_process(argv, tmpdir=tmpdir, name=name)
        log = proc.stderr_path  # its "client[N] ...: connected to host:port" lines
    elif kind == "dante":
        if not os.access(DANTED, os.X_OK):
            raise RuntimeError("%s missing (Debian package dante-server; build.sh deps)" % DANTED)
        if user is not None:
            raise ValueError("dante checks user/password against the system's accounts: "
                             "use microsocks or the own proxy for RFC 1929")
        log = os.path.join(tmpdir, name + ".log")
        conf = os.path.join(tmpdir, name + ".conf")
        rules = "".join("socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = %d log: connect error }\n"
                        % p for p in block_ports)
        with open(conf, "w") as f:
            f.write("logoutput: %s\ninternal: 127.0.0.1 port = %d\nexternal: 127.0.0.1\n"
                    "socksmethod: none\nclientmethod: none\n%s"
                    "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: error }\n%s"
                    "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 log: connect disconnect error }\n"
                    "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 log: connect error }\n"
                    % (log, port, "user.unprivileged: nobody\n" if os.geteuid() == 0 else "", rules))
        proc = start_process([DANTED, "-f", conf, "-p", os.path.join(tmpdir, name + ".pid")],
                             tmpdir=tmpdir, name=name)
    else:
        raise ValueError("unknown SOCKS5 proxy kind %r" % kind)
    if not wait_for_port("127.0.0.1", port, timeout=timeout):
        out = proc.stdout() + proc.stderr() + _read_text(log)
        proc.stop(timeout=2)
        raise RuntimeError("%s did not listen on %d: %s" % (name, port, out[-2000:]))
    return Socks5Handle(kind, proc, port, log)


# ================================================================= HTTP proxies (tinyproxy)

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"   # Debian tinyproxy (build.sh)


def start_tinyproxy(tmpdir, name, connect_ports, auth=None, max_clients=50, timeout=10):
    """Debian's tinyproxy on 127.0.0.1 (an unused port) allowing CONNECT to connect_ports
    only, logging connects to <tmpdir>/<name>.log; auth (user, password): BasicAuth.
    Returns (Proc, port, log path) once it accepts connections (the wait is one check,
    `<name> listening`)."""
    port = free_port()
    log = os.path.join(tmpdir, name + ".log")
    conf = os.path.join(tmpdir, name + ".conf")
    lines = ["Port %d" % port, "Listen 127.0.0.1", "Timeout 30", "LogFile \"%s\"" % log,
             "LogLevel Connect", "MaxClients %d" % max_clients, "Allow 127.0.0.1"]
    lines += ["ConnectPort %d" % p for p in connect_ports]
    if auth:
        lines.append("BasicAuth %s %s" % auth)
    write_file(conf, "\n".join(lines) + "\n")
    p = start_process([TINYPROXY, "-d", "-c", conf], tmpdir=tmpdir, name=name)
    check(wait_for_port("127.0.0.1", port, timeout=timeout), name + " listening")
    return p, port, log


# ================================================================= waiting

_ports_given = set()


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind to 0, read, close), and never one this
    process was given before: the kernel may hand the same ephemeral port to two binds in
    a row once the first socket is closed, and two listeners of one relay must differ."""
    _check_local(host)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(64):
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            break
    _ports_given.add(port)
    return port


def relay_bin():
    """The relay binary under test, as an absolute path: RELAYPRO_BIN when set (the ASan pass
    points it at the sanitizer build), else dist/relaypro-linux-amd64 (what ./build.sh and
    `make test` make), else build/amd64/relaypro."""
    b = os.environ.get("RELAYPRO_BIN")
    if b:
        return os.path.abspath(b)
    for cand in (os.path.join(REPO_DIR, "dist", "relaypro-linux-amd64"),
                 os.path.join(REPO_DIR, "build", "amd64", "relaypro")):
        if os.path.exists(cand):
            return cand
    return os.path.join(REPO_DIR, "dist", "relaypro-linux-amd64")


def build_tool(name, timeout=600):
    """A test driver tests/tools/<name>.c linked against the relay's modules, built by the
    Makefile (`make build/<arch>/tools/<name>`, native arch). Returns (path, None), or
    (None, the compiler's output). Scripts that call it run in the runner's `make` group
    (tests/run.py): two makes on one tree must not run at once."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    rel = os.path.join("build", arch, "tools", name)
    r = subprocess.run(["make", "-s", "ARCH=" + arch, rel], cwd=REPO_DIR, capture_output=True,
                       text=True, timeout=timeout, env=clean_environ())
    path = os.path.join(REPO_DIR, rel)
    if r.returncode != 0 or not os.access(path, os.X_OK):
        return None, (r.stdout + r.stderr)[-3000:] or "make exited %d" % r.returncode
    return path, None


def pid_alive(pid):
    """True while pid exists and is not a zombie (Linux /proc)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def proc_status(pid):
    """{'Uid': [...], 'Gid': [...], 'Groups': [...] (ints), 'NoNewPrivs': '1'} of a live
    pid, from /proc/<pid>/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = [int(x) for x in v.split()]
            elif k == "NoNewPrivs":
                out[k] = v.strip()
    return out


def plain_healthz(port, timeout=3):
    """GET /healthz over plain HTTP to 127.0.0.1:port; True on a 200 answer."""
    s = connect("127.0.0.1", port, timeout)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return read_until_close(s, timeout=timeout).startswith(b"HTTP/1.1 200")
    finally:
        s.close()


def wait_until(fn, timeout=10, interval=0.05):
    """Call fn() until it returns something truthy (returned) or `timeout` passes (None)."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


def wait_for_port(host, port, timeout=10):
    """True once a TCP connect to host:port succeeds within `timeout` s."""
    _check_local(host)

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return bool(wait_until(attempt, timeout))


def wait_for_file(path, timeout=10):
    return bool(wait_until(lambda: os.path.exists(path), timeout))


def log_offset(path):
    """Current size of a log file (0 if missing): pass as `since` to read only newer lines."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_json_lines(path, since=0, limit=MAX_READ):
    """JSON objects from the complete lines of `path` from byte `since`; other lines (text,
    a half-written last line) are skipped."""
    try:
        with open(path, "rb") as f:
            f.seek(since)
            data = f.read(limit)
    except OSError:
        return []
    out = []
    for ln in data.split(b"\n")[:-1]:  # the part after the last newline is incomplete
        ln = ln.strip()
        if not ln.startswith(b"{"):
            continue
        try:
            v = json.loads(ln.decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


def wait_for_log(path, predicate, timeout=10, since=0):
    """First JSON line (dict) of `path` after byte `since` for which predicate(rec) is true,
    or None after `timeout` s. `predicate` may also be a dict of required key/values, or an
    event name string."""
    if isinstance(predicate, str):
        ev = predicate
        predicate = lambda r: r.get("event") == ev  # noqa: E731
    elif isinstance(predicate, dict):
        want = predicate
        predicate = lambda r: all(r.get(k) == v for k, v in want.items())  # noqa: E731

    def look():
        for rec in read_json_lines(path, since):
            try:
                if predicate(rec):
                    return rec
            except Exception:
                continue
        return None
    return wait_until(look, timeout)


def events(path, name=None, since=0):
    """The JSON log records of `path` after byte `since` (of one event name, when given)."""
    return [r for r in read_json_lines(path, since) if name is None or r.get("event") == name]


def body_json(resp):
    """A Response's body as a JSON object, or {} when it is not one."""
    try:
        v = json.loads(resp.body.decode("utf-8"))
        return v if isinstance(v, dict) else {}
    except (ValueError, UnicodeDecodeError, AttributeError):
        return {}


def err_code(body):
    """The `error` field of a JSON error body (bytes or str), or None."""
    try:
        if isinstance(body, bytes):
            body = body.decode()
        return json.loads(body).get("error")
    except Exception:
        return None


# ================================================================= sockets

def _check_local(host):
    """Only loopback: 127.0.0.0/8, ::1, 'localhost'. Anything else is a test bug."""
    if host == "localhost":
        return
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError("relaytest only talks to loopback, not %r" % host)
    if not ip.is_loopback:
        raise ValueError("relaytest only talks to loopback, not %r" % host)


def connect(host, port, timeout=5, src=None):
    """Plain TCP connection to a loopback host:port, with `timeout` on every operation;
    from the loopback source address `src` (e.g. "127.3.0.1") when given."""
    _check_local(host)
    if src is not None:
        _check_local(src)
    s = socket.create_connection((host.strip("[]"), port), timeout=timeout,
                                 source_address=(src, 0) if src else None)
    s.settimeout(timeout)
    return s


def exchange_from_many(sources, host, port, data, concurrency=64, timeout=60):
    """One plain TCP connection per source address in `sources` (distinct loopback
    addresses, each bound as the client's address) to host:port: send `data` (a small
    request: it must fit the socket buffer in one send), read until the peer closes
    (at most 64 KiB each). At most `concurrency` connections are open at once; the whole
    run is bounded by `timeout` seconds. Returns {source: bytes received}; a source whose
    connection failed or did not finish in time maps to None. Order of completion is not
    the order of `sources`."""
    _check_local(host)
    sources = list(sources)
    for src in sources:
        _check_local(src)
    sel = selectors.DefaultSelector()
    out, todo = {}, list(reversed(sources))
    end = time.monotonic() + timeout

    def start(src):
        s = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setblocking(False)
            s.bind((src, 0))
            s.connect_ex((host.strip("[]"), port))
            sel.register(s, selectors.EVENT_WRITE, [src, bytearray(), False])
        except OSError:
            s.close()
            out[src] = None

    try:
        while (todo or sel.get_map()) and time.monotonic() < end:
            while todo and len(sel.get_map()) < concurrency:
                start(todo.pop())
            for key, ev in sel.select(max(0.0, min(1.0, end - time.monotonic()))):
                s, st = key.fileobj, key.data
                src, buf, sent = st
                try:
                    if not sent:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            raise OSError("connect failed")
                        s.sendall(data)  # small requests: fit the socket buffer
                        st[2] = True
                        sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = None
                if d and len(buf) + len(d) <= 65536:
                    buf += d
                    continue
                out[src] = bytes(buf) if d is not None or buf else None
                sel.unregister(s)
                s.close()
    finally:
        for key in list(sel.get_map().values()):
            out.setdefault(key.data[0], None)
            key.fileobj.close()
        sel.close()
    for src in todo:
        out[src] = None
    return out


def client_context(cafile=None, verify=None, alpn=None, min_version=None, max_version=None,
                   certfile=None, keyfile=None):
    """An ssl client context: verified against cafile (system store if cafile is None and
    verify is True), or unverified when verify is False (default: verify iff cafile)."""
    if verify is None:
        verify = cafile is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if cafile:
            ctx.load_verify_locations(cafile)
        else:
            ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


def tls_connect(host, port, cafile=None, server_hostname=None, verify=None, timeout=5,
                alpn=None, min_version=None, max_version=None, context=None):
    """TLS connection to a loopback host:port; returns a handshaken ssl.SSLSocket.

    server_hostname (SNI and the name checked) defaults to `host`; verify defaults to
    `cafile is not None`. Raises ssl.SSLError / OSError on failure.
    """
    ctx = context or client_context(cafile, verify, alpn, min_version, max_version)
    raw = connect(host, port, timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=server_hostname or host.strip("[]"))
    except BaseException:
        raw.close()
        raise
    s.settimeout(timeout)
    return s


class TLSOver:
    """TLS spoken over any object with sendall()/recv() -- typically a tunnel that is itself
    an SSLSocket (TLS inside TLS, which ssl.wrap_socket cannot do). Offers sendall, send,
    recv, unwrap, close, settimeout, version(), getpeercert(), selected_alpn_protocol()."""

    def __init__(self, conn, context, server_hostname, timeout=5):
        self.conn = conn
        self.timeout = timeout
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._do(self.obj.do_handshake)

    def _flush(self):
        data = self._out.read()
        if data:
            self.conn.sendall(data)

    def _do(self, fn, *args):
        end = time.monotonic() + self.timeout
        for _ in range(1000000):
            try:
                r = fn(*args)
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                left = end - time.monotonic()
                if left <= 0:
                    raise socket.timeout("TLSOver: timed out")
                if hasattr(self.conn, "settimeout"):
                    self.conn.settimeout(left)
                data = _recv(self.conn, 65536)
                if data:
                    self._in.write(data)
                else:
                    self._in.write_eof()
        raise socket.timeout("TLSOver: too many rounds")

    def settimeout(self, t):
        self.timeout = t if t is not None else 3600

    def sendall(self, data):
        view = memoryview(data)
        while len(view):
            n = self._do(self.obj.write, view[:16384])
            view = view[n:]

    def send(self, data):
        return self._do(self.obj.write, data[:16384])

    def recv(self, n):
        try:
            return self._do(self.obj.read, n)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def unwrap(self):
        try:
            self._do(self.obj.unwrap)
        except (ssl.SSLError, OSError):
            pass
        return self.conn

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass

    def version(self):
        return self.obj.version()

    def getpeercert(self, binary_form=False):
        return self.obj.getpeercert(binary_form)

    def selected_alpn_protocol(self):
        return self.obj.selected_alpn_protocol()


def tls_wrap(conn, cafile=None, server_hostname="localhost", verify=None, timeout=5,
             alpn=None, context=None):
    """Start TLS over an existing connection (e.g. a CONNECT tunnel) and handshake.

    A plain socket gives an ssl.SSLSocket; an SSLSocket (TLS inside TLS) or another
    socket-like object gives a TLSOver."""
    ctx = context or client_context(cafile, verify, alpn)
    if isinstance(conn, socket.socket) and not isinstance(conn, ssl.SSLSocket):
        conn.settimeout(timeout)
        s = ctx.wrap_socket(conn, server_hostname=server_hostname)
        s.settimeout(timeout)
        return s
    return TLSOver(conn, ctx, server_hostname, timeout)


def _recv(sock, n):
    """recv that maps a TLS EOF (clean or ragged) to b''."""
    try:
        return sock.recv(n)
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        return b""


def read_until_close(sock, timeout=5, max_bytes=MAX_READ):
    """Everything the peer sends until it closes, `timeout` s pass, or max_bytes arrive.
    A reset after data counts as the end (bytes so far are returned)."""
    end = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < max_bytes:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = _recv(sock, min(65536, max_bytes - len(buf)))
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        buf += data
    return bytes(buf)


def read_all(sock, timeout=5.0, limit=4 << 20, ragged="ragged"):
    """Read until the peer ends the stream. Returns (data, how): how is "eof" (FIN or
    close_notify), `ragged` (TLS ended without close_notify: "ragged" by default; pass
    "eof" where the difference does not matter), "reset", "sslerror", "timeout" or
    "limit"."""
    end = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < limit:
        left = end - time.monotonic()
        if left <= 0:
            return bytes(buf), "timeout"
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return bytes(buf), "timeout"
        except ssl.SSLEOFError:
            return bytes(buf), ragged
        except ssl.SSLZeroReturnError:
            return bytes(buf), "eof"
        except (ConnectionResetError, BrokenPipeError):
            return bytes(buf), "reset"
        except ssl.SSLError:
            return bytes(buf), "sslerror"
        if not d:
            return bytes(buf), "eof"
        buf += d
    return bytes(buf), "limit"


def read_exact(sock, n, timeout=5.0):
    """Up to n bytes: fewer when the peer closes, resets, a TLS error comes or `timeout`
    seconds pass."""
    end = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(n - len(buf))
        except (socket.timeout, ssl.SSLError, ConnectionResetError):
            break
        if not d:
            break
        buf += d
    return bytes(buf)


def recv_head(conn, limit=8192):
    """Bytes until a blank line ends a head (the rest of that read included), at most
    about `limit`; None when the peer closes first. The socket's own timeout applies."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < limit:
        d = conn.recv(4096)
        if not d:
            return None
        head += d
    return head


def send_quiet(sock, data):
    """sendall; False instead of an exception when the peer already closed or reset (it
    may have answered first: read what it sent), True when everything was sent."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        return False


def http_exchange(sock, data, timeout=5, max_bytes=MAX_READ):
    """Send `data` (bytes) and return every byte received until close or `timeout` s."""
    sock.settimeout(timeout)
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the peer may have answered and closed early; read what it sent
    return read_until_close(sock, timeout, max_bytes)


def _pending(sock):
    try:
        return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
    except (OSError, ValueError):
        return 0


def pump(sock, payload, timeout=10, half_close=False, expect=None, max_bytes=MAX_READ):
    """Send `payload` while reading whatever comes back, without deadlock (for echo).

    Stops when `expect` bytes have arrived (if given) after everything was sent, at EOF, or
    at `timeout`. half_close: shutdown(SHUT_WR) once everything is sent (plain sockets only;
    TLS cannot half-close). Returns (received_bytes, eof_seen). Works on socket.socket and
    ssl.SSLSocket (not TLSOver -- use echo_roundtrip there).
    """
    end = time.monotonic() + timeout
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    view = memoryview(payload)
    got = bytearray()
    eof = False
    shut = False
    try:
        sel.register(sock, selectors.EVENT_READ)
        while time.monotonic() < end and len(got) < max_bytes:
            if not len(view) and half_close and not shut:
                sock.shutdown(socket.SHUT_WR)
                shut = True
            if not len(view) and expect is not None and len(got) >= expect:
                break
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if len(view) else 0)
            sel.modify(sock, events)
            if _pending(sock):
                ready = [(None, selectors.EVENT_READ)]
            else:
                ready = sel.select(timeout=max(0.0, min(0.2, end - time.monotonic())))
            for _, ev in ready:
                if ev & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                        if not data:
                            eof = True
                        got += data
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        pass
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        eof = True
                if ev & selectors.EVENT_WRITE and len(view):
                    try:
                        n = sock.send(view[:65536])
                        view = view[n:]
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        pass
            if eof:
                break
    finally:
        sel.close()
        try:
            sock.setblocking(True)
            sock.settimeout(timeout)
        except OSError:
            pass
    return bytes(got), eof


def echo_roundtrip(sock, payload, chunk=16384, timeout=10):
    """Send payload in chunks, reading each chunk's echo before the next (any socket-like
    object, TLSOver included). Returns what came back (shorter on EOF/timeout)."""
    end = time.monotonic() + timeout
    got = bytearray()
    for off in range(0, len(payload), chunk):
        piece = payload[off:off + chunk]
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        sock.sendall(piece)
        want = off + len(piece)
        while len(got) < want:
            left = end - time.monotonic()
            if left <= 0:
                return bytes(got)
            sock.settimeout(left)
            try:
                data = _recv(sock, want - len(got))
            except socket.timeout:
                return bytes(got)
            if not data:
                return bytes(got)
            got += data
    return bytes(got)


# ================================================================= HTTP

class Headers:
    """Response headers in order, with case-insensitive lookup."""

    def __init__(self, pairs=()):
        self.pairs = list(pairs)

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self.pairs:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.pairs if k.lower() == n]

    def __contains__(self, name):
        return self.get(name) is not None

    def __getitem__(self, name):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def items(self):
        return list(self.pairs)

    def __repr__(self):
        return "Headers(%r)" % self.pairs


class Response:
    """status (int, 0 if unparseable), reason, version, headers (Headers), body (bytes),
    raw (all bytes received), status_line."""

    def __init__(self, status, reason, version, headers, body, raw):
        self.status, self.reason, self.version = status, reason, version
        self.headers, self.body, self.raw = headers, body, raw
        self.status_line = ("%s %d %s" % (version, status, reason)).strip()

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.reason, self.body[:200])


def _parse_head(head):
    """(version, status, reason, Headers) from a response head (bytes, without the blank
    line); status 0 when the status line is malformed."""
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    version, status, reason = "", 0, lines[0]
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
    pairs = []
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            pairs.append((k.strip(), v.strip()))
    return version, status, reason, Headers(pairs)


def _split_head(data):
    i, j = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    cands = [(i, 4), (j, 2)]
    cands = [c for c in cands if c[0] >= 0]
    if not cands:
        return None, data
    pos, n = min(cands)
    return data[:pos], data[pos + n:]


def parse_response(data):
    """Parse bytes read until close (e.g. from http_exchange) into a Response; the body is
    everything after the head (cut to Content-Length when present; chunked is decoded)."""
    head, rest = _split_head(data)
    if head is None:
        return Response(0, "", "", Headers(), b"", data)
    version, status, reason, headers = _parse_head(head)
    body = rest
    cl = headers.get("content-length")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(rest)
    elif cl is not None and cl.isdigit():
        body = rest[:int(cl)]
    return Response(status, reason, version, headers, body, data)


def _dechunk(data):
    out = bytearray()
    pos = 0
    for _ in range(1000000):
        i = data.find(b"\r\n", pos)
        if i < 0:
            break
        try:
            size = int(data[pos:i].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += data[i + 2:i + 2 + size]
        pos = i + 2 + size + 2
    return bytes(out)


def read_response_head(sock, timeout=5, max_head=MAX_HEAD):
    """Read exactly one response head (one byte per recv, so no byte of what follows is
    consumed). Returns (version, status, reason, Headers, raw_head) -- status 0 and a
    partial raw_head if the peer closed or `timeout` passed first."""
    end = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < max_head:
        if buf.endswith(b"\r\n\r\n") or buf.endswith(b"\n\n"):
            break
        left = end - time.monotonic()
        if left <= 0:
            return "", 0, "", Headers(), bytes(buf)
        sock.settimeout(left)
        try:
            b = _recv(sock, 1)
        except (socket.timeout, ConnectionResetError):
            return "", 0, "", Headers(), bytes(buf)
        if not b:
            return "", 0, "", Headers(), bytes(buf)
        buf += b
    head, _ = _split_head(bytes(buf))
    if head is None:
        return "", 0, "", Headers(), bytes(buf)
    version, status, reason, headers = _parse_head(head)
    return version, status, reason, headers, bytes(buf)


def read_response(sock, timeout=5, max_body=MAX_READ, method="GET"):
    """Read one response; leaves the connection open when the length is known
    (Content-Length, chunked, 1xx/204/304, HEAD), else reads until close."""
    end = time.monotonic() + timeout
    version, status, reason, headers, raw = read_response_head(sock, timeout)
    if status == 0:
        return Response(0, "", "", headers, b"", raw)
    body = bytearray()
    cl = headers.get("content-length")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        data = bytearray()
        while not data.endswith(b"0\r\n\r\n") and len(data) < max_body:
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                piece = _recv(sock, 65536)
            except socket.timeout:
                break
            if not piece:
                break
            data += piece
        body = bytearray(_dechunk(bytes(data)))
    elif cl is not None and cl.isdigit():
        n = min(int(cl), max_body)
        while len(body) < n:
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                piece = _recv(sock, min(65536, n - len(body)))
            except socket.timeout:
                break
            if not piece:
                break
            body += piece
    else:
        body = bytearray(read_until_close(sock, max(0.0, end - time.monotonic()), max_body))
    return Response(status, reason, version, headers, bytes(body), raw + bytes(body))


def build_request(method, target, headers=None, body=b"", host=None):
    """Request bytes. headers: dict or list of pairs, sent as given (add Host yourself or
    pass host=); Content-Length is added for a non-empty body unless present."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in pairs}
    if host is not None and "host" not in names:
        pairs.insert(0, ("Host", host))
    if isinstance(body, str):
        body = body.encode()
    if body and "content-length" not in names and "transfer-encoding" not in names:
        pairs.append(("Content-Length", str(len(body))))
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in pairs)
    return head.encode("latin-1") + b"\r\n" + body


def http_request(host, port, method, path, headers=None, body=b"", tls=False, cafile=None,
                 server_hostname=None, verify=None, timeout=5, conn=None, keep_open=False):
    """One HTTP/1.1 request to a loopback host:port (or over `conn`), returning a Response.

    Host defaults to server_hostname or host (with the port); `Connection: close` is sent
    unless keep_open or the caller set Connection. With keep_open the response is read by
    its length and the connection is left in `response.conn` for the next request.
    """
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in pairs}
    if not keep_open and "connection" not in names:
        pairs.append(("Connection", "close"))
    hostname = server_hostname or host.strip("[]")
    if "host" not in names:
        h = "[%s]" % hostname if ":" in hostname else hostname
        pairs.insert(0, ("Host", "%s:%d" % (h, port)))
    sock = conn
    if sock is None:
        sock = (tls_connect(host, port, cafile, hostname, verify, timeout) if tls
                else connect(host, port, timeout))
    try:
        sock.settimeout(timeout)
        sock.sendall(build_request(method, path, pairs, body))
        r = read_response(sock, timeout, method=method)
    except BaseException:
        sock.close()
        raise
    r.conn = sock if keep_open else None
    if not keep_open:
        sock.close()
    return r


def connect_tunnel(proxy_host, proxy_port, target, headers=None, tls=True, cafile=None,
                   server_hostname="localhost", verify=None, timeout=5, conn=None,
                   pipelined=b"", body_timeout=2):
    """CONNECT `target` through the relay at proxy_host:proxy_port.

    TLS (tls=True, verified against cafile; unverified when cafile is None unless verify)
    or plain to the proxy, or over an existing `conn`. Sends
    `CONNECT target HTTP/1.1` + Host + `headers` (dict or pairs), then `pipelined` bytes.
    Returns (status, headers, body_or_socket): on 2xx the open connection (TLS or plain
    socket, positioned exactly after the response head); otherwise the response body
    (bytes, by Content-Length or until close) and the connection is closed.
    headers.status_line / headers.raw hold the raw status line and head.
    """
    if conn is None:
        if tls:
            conn = tls_connect(proxy_host, proxy_port, cafile, server_hostname,
                               verify if verify is not None else cafile is not None, timeout)
        else:
            conn = connect(proxy_host, proxy_port, timeout)
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(k.lower() == "host" for k, _ in pairs):
        pairs.insert(0, ("Host", target))
    try:
        conn.settimeout(timeout)
        conn.sendall(build_request("CONNECT", target, pairs) + pipelined)
        version, status, reason, h, raw = read_response_head(conn, timeout)
    except BaseException:
        conn.close()
        raise
    h.status_line = ("%s %d %s" % (version, status, reason)).strip()
    h.raw = raw
    if 200 <= status < 300:
        return status, h, conn
    body = b""
    try:
        cl = h.get("content-length")
        if cl is not None and cl.isdigit():
            want = int(cl)
            end = time.monotonic() + body_timeout
            buf = bytearray()
            while len(buf) < want and time.monotonic() < end:
                conn.settimeout(max(0.01, end - time.monotonic()))
                try:
                    piece = _recv(conn, want - len(buf))
                except (socket.timeout, ConnectionResetError):
                    break
                if not piece:
                    break
                buf += piece
            body = bytes(buf)
        elif status:
            body = read_until_close(conn, body_timeout)
    finally:
        conn.close()
    return status, h, body


def absolute_get(proxy_port, host, port, path="/", headers=None, timeout=10):
    """GET http://host:port/path in absolute form through the plain listener at
    127.0.0.1:proxy_port, with Host and `headers` (dict or pairs, e.g. basic(u, p));
    the raw answer, read until the relay closes (at most `timeout` s)."""
    pairs = [("Host", "%s:%d" % (host, port))]
    pairs += list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    s = connect("127.0.0.1", proxy_port)
    try:
        s.sendall(build_request("GET", "http://%s:%d%s" % (host, port, path), pairs))
        return read_until_close(s, timeout=timeout)
    finally:
        s.close()


def bearer(token):
    return {"Proxy-Authorization": "Bearer " + token}


def basic(user, password):
    cred = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Proxy-Authorization": "Basic " + cred}


# ================================================================= JWT (for crafting grants)

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def jwt_hs256(claims, key, header=None):
    """Compact HS256 JWS of `claims` (dict, or str/bytes used verbatim) with `key`
    (str/bytes). header defaults to {"alg":"HS256","typ":"JWT"}; pass a dict or raw
    str/bytes to craft hostile tokens."""
    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    enc = lambda v: b64url(v if isinstance(v, (str, bytes))  # noqa: E731
                           else json.dumps(v, separators=(",", ":")))
    signing_input = enc(header) + "." + enc(claims)
    if isinstance(key, str):
        key = key.encode()
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def jwt_decode_unverified(token):
    """(header, claims) of a compact JWS, without checking the signature."""
    h, c, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c))


# ================================================================= clean roots (podman)
#
# A fresh Debian bookworm system for the tests that install relaypro as a user would (the
# README's walks): a root file system made once with debootstrap from Debian's mirror,
# kept as an image in podman's storage and as a tarball in .cache/testroot/ (ignored by
# git), then one throwaway container per walk, booted with systemd as PID 1 (journald
# included) and no network but its own loopback. What was found on the project's machines
# (Debian 12, cgroup v1 "hybrid", no CAP_SYS_RESOURCE): crun refuses hybrid cgroups, so
# podman runs with runc; podman's default rlimits cannot be granted, so the container gets
# the caller's own limits, lowered (raising needs CAP_SYS_RESOURCE). Whatever cannot be had
# is returned as a reason: the caller reports it as a skip, never as a pass.

TESTROOT_PACKAGES = ("systemd", "systemd-sysv", "dbus", "curl", "ca-certificates", "openssl",
                     "python3", "procps", "passwd", "rpm")
TESTROOT_SUITE = "bookworm"
TESTROOT_MIRROR = "http://deb.debian.org/debian"
_PODMAN = ["podman", "--runtime", "runc"]


def _testroot_key():
    h = hashlib.sha256(("%s %s" % (TESTROOT_SUITE, ",".join(TESTROOT_PACKAGES))).encode())
    return h.hexdigest()[:12]


def testroot_image(log=print):
    """The podman image of the clean root, built (debootstrap, a few minutes) the first
    time. Returns (image, None), or (None, reason) when podman, runc or debootstrap is
    missing or a step fails."""
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            return None, "%s is not installed (apt-get install podman runc debootstrap)" % tool
    key = _testroot_key()
    image = "localhost/relaypro-testroot:%s" % key
    if subprocess.run(_PODMAN + ["image", "exists", image], capture_output=True,
                      timeout=60).returncode == 0:
        return image, None
    cache = os.path.join(REPO_DIR, ".cache", "testroot")
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, "%s-%s.tar" % (TESTROOT_SUITE, key))
    if not os.path.exists(tarball):
        work = tempfile.mkdtemp(prefix="root-", dir=cache)
        log("     building the clean root once: debootstrap %s (%s) into %s"
            % (TESTROOT_SUITE, ",".join(TESTROOT_PACKAGES), cache))
        try:
            r = subprocess.run(["debootstrap", "--variant=minbase",
                                "--include=" + ",".join(TESTROOT_PACKAGES), TESTROOT_SUITE,
                                os.path.join(work, "root"), TESTROOT_MIRROR],
                               capture_output=True, text=True, timeout=1500)
            if r.returncode != 0:
                return None, "debootstrap failed: %s" % (r.stdout + r.stderr)[-600:]
            r = subprocess.run(["tar", "-C", os.path.join(work, "root"), "-cf",
                                tarball + ".tmp", "."], capture_output=True, text=True,
                               timeout=600)
            if r.returncode != 0:
                return None, "tar failed: %s" % r.stderr[-300:]
            os.rename(tarball + ".tmp", tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    r = subprocess.run(_PODMAN + ["import", tarball, image], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        return None, "podman import failed: %s" % r.stderr[-400:]
    return image, None


class Container:
    """One booted throwaway container of the clean root (systemd as PID 1, journald, no
    network but loopback). binds: {host_path: container_path}, mounted read-only.
    Removed (podman rm -f, by its name) at cleanup."""

    def __init__(self, image, binds=None, name=None):
        self.name = name or "relaytest-%d-%s" % (os.getpid(), secrets_hex(4))
        argv = _PODMAN + ["run", "-d", "--rm", "--name", self.name, "--network", "none",
                          "--systemd", "always", "--hostname", "relayhost"]
        # podman's default limits are above what this process may grant; the container
        # gets the caller's open-files hard limit (lowered by one: lowering is always
        # allowed, setting it equal was refused here) and 4096 processes.
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        lim = min(hard if hard > 0 else 1 << 20, 1 << 20) - 1
        argv += ["--ulimit", "nofile=%d:%d" % (lim, lim), "--ulimit", "nproc=4096:4096"]
        for host, inside in (binds or {}).items():
            argv += ["-v", "%s:%s:ro" % (host, inside)]
        argv += [image, "/sbin/init"]
        with _reg_lock:
            _cleanups.append(self.remove)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("podman run failed: %s" % (r.stdout + r.stderr)[-600:])
        # systemd up: the walk may use systemctl at once
        w = self.sh("systemctl is-system-running --wait", timeout=120)
        self.state = w.stdout.strip()

    def sh(self, script, env=None, timeout=120, input=None, cwd=None):
        """bash -euo pipefail -c script inside, as root, in cwd (default /root); env:
        variables for it only. Returns the CompletedProcess (text)."""
        if cwd:
            script = "cd %s\n%s" % (cwd, script)
        argv = _PODMAN + ["exec", "-i" if input is not None else "-t=false"]
        for k, v in (env or {}).items():
            argv += ["-e", "%s=%s" % (k, v)]
        argv += [self.name, "bash", "-euo", "pipefail", "-c", script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input)

    def start(self, script, tmpdir, name, env=None, cwd=None):
        """script in the background inside (its output in tmpdir/name.stdout|stderr)."""
        if cwd:
            script = "cd %s\n%s" % (cwd, script)
        argv = _PODMAN + ["exec"]
        for k, v in (env or {}).items():
            argv += ["-e", "%s=%s" % (k, v)]
        argv += [self.name, "bash", "-euo", "pipefail", "-c", script]
        return start_process(argv, tmpdir=tmpdir, name=name, keep_root=False)

    def copy_in(self, host_path, inside):
        r = subprocess.run(_PODMAN + ["cp", host_path, "%s:%s" % (self.name, inside)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("podman cp failed: %s" % r.stderr[-300:])

    def remove(self):
        subprocess.run(_PODMAN + ["rm", "-f", "-t", "5", self.name], capture_output=True,
                       timeout=120)


def secrets_hex(n):
    return os.urandom(n).hex()
# ================================================================= Debian packages

def apt_install(package, binary, timeout=900):
    """The path of `binary`, installing Debian's `package` when it is missing (as root only;
    other jobs may hold the dpkg lock, which is waited for). Returns (path, None), or
    (None, why) when it cannot be had -- for the caller to report as a skip."""
    p = shutil.which(binary)
    if p:
        return p, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "%s not found and not root: apt-get install %s" % (binary, package)
    env = dict(clean_environ(), DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=%d" % timeout]
    why = "apt-get install %s failed" % package
    for attempt in range(2):
        try:
            if attempt:
                subprocess.run(["apt-get"] + lock + ["update", "-qq"], env=env,
                               capture_output=True, timeout=timeout)
            r = subprocess.run(["apt-get"] + lock + ["install", "-y", "-qq",
                                "--no-install-recommends", package],
                               env=env, capture_output=True, timeout=timeout)
            if r.returncode != 0:
                why = "apt-get install %s: %s" % (package, _short(
                    r.stderr.decode("utf-8", "replace").strip().splitlines()[-1:], 200))
        except subprocess.TimeoutExpired:
            why = "apt-get install %s timed out" % package
        p = shutil.which(binary)
        if p:
            return p, None
    return None, why


def strace_argv(*opts):
    """The argv prefix that runs a command under strace (`strace -f -qq <opts>`: every
    process it starts too), installing Debian's strace when missing. (prefix, None), or
    (None, why) when strace cannot be had or cannot trace here (no ptrace: a sandbox), for
    the caller to report as a skip."""
    strace, why = apt_install("strace", "strace")
    if strace is None:
        return None, why
    argv = [strace, "-f", "-qq"] + list(opts)
    r = subprocess.run([strace, "-f", "-qq", "-o", "/dev/null", "true"], capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        return None, "strace cannot trace here: %s" % r.stderr.strip()[-200:]
    return argv, None


# ================================================================= certificates (openssl CLI)

class OpensslPKI:
    """A root CA and an intermediate CA made with the openssl CLI in folder `d`, issuing
    server certificates ("leaves") -- the operator's PKI of certFile/keyFile tests.

    Key specs: "ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048", "rsa:1024", "ed25519",
    "dsa". Key forms: "pkcs8" (BEGIN PRIVATE KEY), "sec1" (BEGIN EC PRIVATE KEY), "pkcs1"
    (BEGIN RSA PRIVATE KEY), "traditional" (BEGIN DSA PRIVATE KEY), "pkcs8-encrypted"
    (BEGIN ENCRYPTED PRIVATE KEY), "pem-encrypted" (Proc-Type: 4,ENCRYPTED).
    `self.root` is the root certificate's path: what clients trust, and all they trust."""

    def __init__(self, d, root_key="rsa:2048", inter_key="ec:P-256", name="Test"):
        self.d = d
        self.n = 0
        os.makedirs(d, exist_ok=True)
        self.root_key = self.key("root", root_key)
        self.root = os.path.join(d, "root.pem")
        self._ossl("req", "-x509", "-new", "-key", self.root_key, "-subj", "/CN=%s Root CA" % name,
                   "-days", "30", "-out", self.root,
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.inter_key = self.key("inter", inter_key)
        self.inter = os.path.join(d, "inter.pem")
        ext = self._write("inter.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                          "keyUsage=critical,keyCertSign,cRLSign\n"
                          "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        csr = os.path.join(d, "inter.csr")
        self._ossl("req", "-new", "-key", self.inter_key, "-subj",
                   "/CN=%s Intermediate CA" % name, "-out", csr)
        self._ossl("x509", "-req", "-in", csr, "-CA", self.root, "-CAkey", self.root_key,
                   "-set_serial", "2", "-days", "30", "-extfile", ext, "-out", self.inter)

    def _write(self, name, text):
        p = os.path.join(self.d, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def _ossl(self, *args):
        r = subprocess.run(("openssl",) + args, capture_output=True, timeout=120,
                           cwd=self.d, env=clean_environ())
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0], r.stderr.decode("utf-8", "replace")))
        return r.stdout

    def key(self, name, spec, form="pkcs8"):
        """Generate a key by spec into <name>.key in `form`; returns its path. The plain
        PKCS#8 copy stays beside it as <name>.pk8 (openssl signs with that one)."""
        pk8 = os.path.join(self.d, name + ".pk8")
        kind, _, arg = spec.partition(":")
        if kind == "ec":
            self._ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + arg,
                       "-out", pk8)
        elif kind == "rsa":
            self._ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + arg,
                       "-out", pk8)
        elif kind == "ed25519":
            self._ossl("genpkey", "-algorithm", "ED25519", "-out", pk8)
        elif kind == "dsa":
            params = os.path.join(self.d, name + ".dsaparam")
            self._ossl("genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt",
                       "dsa_paramgen_bits:2048", "-out", params)
            self._ossl("genpkey", "-paramfile", params, "-out", pk8)
        else:
            raise ValueError("key spec " + spec)
        out = os.path.join(self.d, name + ".key")
        if form == "pkcs8":
            shutil.copyfile(pk8, out)
        elif form == "sec1":
            self._ossl("ec", "-in", pk8, "-out", out)
        elif form == "pkcs1":
            self._ossl("rsa", "-in", pk8, "-traditional", "-out", out)
        elif form == "traditional":
            self._ossl("dsa", "-in", pk8, "-out", out)
        elif form == "pkcs8-encrypted":
            self._ossl("pkcs8", "-topk8", "-in", pk8, "-v2", "aes-256-cbc", "-passout",
                       "pass:test", "-out", out)
        elif form == "pem-encrypted":
            self._ossl("rsa", "-in", pk8, "-traditional", "-aes256", "-passout", "pass:test",
                       "-out", out)
        else:
            raise ValueError("key form " + form)
        return out

    def leaf(self, name, key="ec:P-256", form="pkcs8", cn=None, start=None, end=None,
             order=("leaf", "inter")):
        """A server certificate for localhost and 127.0.0.1 (CN `cn`, default `name`),
        signed by the intermediate; valid 30 days, or from `start` to `end` (openssl ca
        dates, YYYYMMDDHHMMSSZ). Writes <name>.chain (the certificates named by `order`:
        "leaf", "inter", "root") and <name>.key; returns (chain, key, leaf_pem)."""
        k = self.key(name, key, form)
        pk8 = os.path.join(self.d, name + ".pk8")
        csr = os.path.join(self.d, name + ".csr")
        pem = os.path.join(self.d, name + ".pem")
        ku = "digitalSignature,keyEncipherment" if key.startswith("rsa") else "digitalSignature"
        ext = self._write(name + ".ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                          "extendedKeyUsage=serverAuth\nkeyUsage=critical,%s\n"
                          "basicConstraints=CA:FALSE\n" % ku)
        self._ossl("req", "-new", "-key", pk8, "-subj", "/CN=%s" % (cn or name), "-out", csr)
        self.n += 1
        if start is None:
            self._ossl("x509", "-req", "-in", csr, "-CA", self.inter, "-CAkey", self.inter_key,
                       "-set_serial", str(100 + self.n), "-days", "30", "-extfile", ext,
                       "-out", pem)
        else:
            db = os.path.join(self.d, "cadb-%d" % self.n)
            os.makedirs(db)
            open(os.path.join(db, "index.txt"), "w").close()
            self._write(os.path.join(db, "serial"), "%04X\n" % (100 + self.n))
            cnf = self._write(name + ".ca.cnf",
                              "[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\n"
                              "new_certs_dir = %s\nserial = %s/serial\ndefault_md = sha256\n"
                              "policy = p\nunique_subject = no\n[p]\ncommonName = supplied\n"
                              % (db, db, db))
            self._ossl("ca", "-batch", "-config", cnf, "-cert", self.inter, "-keyfile",
                       self.inter_key, "-in", csr, "-out", pem, "-notext", "-extfile", ext,
                       "-startdate", start, "-enddate", end)
        parts = {"leaf": pem, "inter": self.inter, "root": self.root}
        chain = os.path.join(self.d, name + ".chain")
        with open(chain, "w") as out:
            for p in order:
                with open(parts[p]) as f:
                    out.write(f.read())
        return chain, k, pem


# ================================================================= an eager CONNECT proxy

class EagerProxy:
    """A minimal CONNECT proxy for one edge no real proxy shows on demand: it answers the
    first CONNECT with 200 and, in the same write, the first bytes of the tunnel (`eager`),
    then echoes what it receives. TLS with the (cert, key) pair `leaf` when given. Listens on
    127.0.0.1 (`port`); one connection, every wait bounded (20 s accept, 10 s per read,
    1000 reads)."""

    def __init__(self, eager, leaf=None):
        self.eager = eager
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if leaf:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(leaf[0], leaf[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        try:
            conn.settimeout(10)
            if self.ctx:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            head = recv_head(conn, 4096)
            if head is None:
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + self.eager)
            for _ in range(1000):
                d = conn.recv(65536)
                if not d:
                    break
                conn.sendall(d)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.sock.close()
        self.thread.join(timeout=5)


# ================================================================= Kubernetes schemas

K8S_LOCK_DIR = os.path.join(REPO_DIR, "tests", "kubernetes")
K8S_VALIDATOR_DIR = os.path.join(REPO_DIR, "build", "k8s-validate")


def k8s_validator():
    """The offline Kubernetes/cert-manager schema validator (tests/kubernetes/validate.mjs
    with the npm packages pinned by version and integrity in its package-lock.json),
    installed by `npm ci` into build/k8s-validate once per lock. Every test that needs it
    calls this (whichever runs first installs; a file lock keeps two runners from
    installing at once). Returns (dir, None), or (None, reason) when node/npm are missing
    or npm ci fails: the caller reports that as a failure or a skip, never as a pass."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        return None, "node and npm are not installed (apt-get install -y nodejs npm)"
    os.makedirs(K8S_VALIDATOR_DIR, exist_ok=True)
    with open(os.path.join(K8S_VALIDATOR_DIR, ".install-lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        stamp = os.path.join(K8S_VALIDATOR_DIR, ".installed-lock")
        with open(os.path.join(K8S_LOCK_DIR, "package-lock.json"), "rb") as f:
            lock = f.read()
        for name in ("package.json", "package-lock.json", "validate.mjs"):
            shutil.copyfile(os.path.join(K8S_LOCK_DIR, name), os.path.join(K8S_VALIDATOR_DIR, name))
        try:
            with open(stamp, "rb") as f:
                done = f.read() == lock
        except OSError:
            done = False
        if not done or not os.path.isdir(os.path.join(K8S_VALIDATOR_DIR, "node_modules",
                                                      "kubernetes-models")):
            r = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                                "--loglevel=error"], cwd=K8S_VALIDATOR_DIR, capture_output=True,
                               text=True, timeout=300)
            if r.returncode != 0:
                return None, "npm ci of the pinned schema packages failed: " + r.stderr[-1500:]
            with open(stamp, "wb") as f:
                f.write(lock)
    return K8S_VALIDATOR_DIR, None


# ================================================================= a UDP echo

class UdpEcho:
    """A UDP echo service on 127.0.0.1 (a thread): every datagram comes back to its sender,
    then `extra` more datagrams of `extra_size` bytes each (unsolicited ones, as a daemon
    sends). Records each datagram's (sender, length) in self.got. stop() closes it."""

    def __init__(self, extra=0, extra_size=100, echo=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = self.sock.getsockname()[1]
        self.extra, self.extra_size, self.echo = extra, extra_size, echo
        self.got = []
        self.lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.sock.settimeout(0.5)
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.got.append((peer, len(data)))
            try:
                if self.echo:
                    self.sock.sendto(data, peer)
                for i in range(self.extra):
                    self.sock.sendto(bytes([i & 0xff]) * self.extra_size, peer)
            except OSError:
                pass

    def lengths(self):
        with self.lock:
            return [n for _, n in self.got]

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass

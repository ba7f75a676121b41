"""relays -- a relaypro under test: its configuration file, its start, its log, its CLI.

Contract
--------
* `config_lines(top, sections)` builds the lines of a config.ini: `top` and each section's
  items are "key = value" strings or (key, value) pairs (a dict works too), in order.
  `relay_config(...)` is the common shape of the integration tests' relays: console
  address, organization, relay id, security token, server name, allowed ports, listeners
  (`https`, `http`, `admin` ports on 127.0.0.1), a log file, [limits], and any other
  section.
* `Relay(dir, lines, ...)` writes <dir>/config.ini, `start()` runs `relaypro run -c` in
  that folder (relaytest.start_process: stopped by PID at exit) and returns once the log
  holds the `start` record and every listener accepts connections -- never on time; a
  relay that does not come up raises RuntimeError with its standard error (secrets
  redacted). `stop()` is SIGTERM by PID and returns the exit status.
* The relay's CLI on the same file: `cli(args)`, `ca_pem()` (the CA certificate of `ca
  show`, written to <dir>/ca.pem), `grant(sub)` (`token grant`), `access_token(sub)`
  (POST /v1/token with a fresh grant). Every grant and token is registered with
  relaytest.secret(), so no check line prints it.
* `write_users(d, user, password)` or `write_users(d, [(user, password), ...])`: the
  password file, written atomically (a reload never reads half), passwords registered
  as secrets. `reload(pid, log)` / `Relay.reload()`: SIGHUP and the config.reload record.
* Only loopback; every wait is bounded (relaytest's helpers).
"""
import os
import re
import signal
import subprocess

import relaytest as rt

LOCALHOST = "127.0.0.1"


def _items(items):
    if isinstance(items, dict):
        items = list(items.items())
    out = []
    for it in items or ():
        out.append(it if isinstance(it, str) else "%s = %s" % it)
    return out


def config_lines(top=(), sections=()):
    """Lines of a config.ini: top-level items, then `[name]` and its items per section
    (sections: a list of (name, items) or a dict name -> items)."""
    lines = _items(top)
    if isinstance(sections, dict):
        sections = list(sections.items())
    for name, items in sections:
        lines.append("[%s]" % name)
        lines += _items(items)
    return lines


def relay_config(security_token=None, org=None, relay_id=None, allowed_ports=None,
                 https=None, http=None, admin=None, log="relay.log", limits=None,
                 top=(), sections=(), console="localhost", server_name="localhost"):
    """The usual test relay's lines. Top level: consoleAddress, organizationId, relayId,
    securityToken, serverName, allowedPorts (a list or a string), then `top`; then
    [httpsProxy]/[httpProxy]/[admin] on 127.0.0.1 for each port given, [logger] fileName
    (None: no [logger]), `sections` and [limits] (a dict or pairs) when given."""
    t = []
    if console is not None:
        t.append("consoleAddress = %s" % console)
    if org is not None:
        t.append("organizationId = %d" % org)
    if relay_id is not None:
        t.append("relayId = %d" % relay_id)
    if security_token is not None:
        t.append("securityToken = " + rt.secret(security_token))
    if server_name is not None:
        t.append("serverName = " + server_name)
    if allowed_ports is not None:
        if not isinstance(allowed_ports, str):
            allowed_ports = ",".join(str(p) for p in allowed_ports)
        t.append("allowedPorts = " + allowed_ports)
    t += _items(top)
    secs = []
    for name, port in (("httpsProxy", https), ("httpProxy", http), ("admin", admin)):
        if port:
            secs.append((name, ["listen = %s:%d" % (LOCALHOST, port)]))
    if log:
        secs.append(("logger", ["fileName = " + log]))
    secs += list(sections.items()) if isinstance(sections, dict) else list(sections)
    if limits:
        secs.append(("limits", limits))
    return config_lines(t, secs)


def plain_config(port, allowed_ports, console="localhost", top=(), log="relay.log",
                 limits=None):
    """A relay with only its plain listener on `port` (the TLS one switched off), the
    password file users.txt, no console credentials: what tests of the process side
    (faults, privileges, reloads) start. top/limits as in relay_config; log None: no
    [logger] (records on standard output)."""
    return relay_config(console=console, server_name=None, allowed_ports=allowed_ports,
                        top=["passwordFile = users.txt"] + _items(top), log=log,
                        sections=[("httpsProxy", ["listen ="]),
                                  ("httpProxy", ["listen = %s:%d" % (LOCALHOST, port)])],
                        limits=limits)


def tunnel_echoes(port, target, name, payload=b"relaytest-" * 1000, headers=None, tls=False):
    """CONNECT `target` through the relay at 127.0.0.1:port (Basic u:p unless headers) and
    echo `payload` back: two checks, "<name>: CONNECT answered 200" and "<name>: bytes
    echoed". True when both passed."""
    st, _, s = rt.connect_tunnel(LOCALHOST, port, target, tls=tls, verify=False,
                                 headers=rt.basic("u", "p") if headers is None else headers)
    if not rt.check_eq(st, 200, name + ": CONNECT answered 200"):
        return False
    got = rt.echo_roundtrip(s, payload)
    s.close()
    return rt.check(got == payload, name + ": bytes echoed", "%d of %d" % (len(got), len(payload)))


def registration_config(con, log, https=None, top=()):
    """A relay that registers with the test console `con` (relaytest.ConsoleHandle): its
    address, organization and deployment token, its CA as consoleCACert; one TLS listener
    (a free port unless given), [logger] fileName = log."""
    return relay_config(console=con.address(), org=con.org,
                        top=["deploymentToken = " + rt.secret(con.deployment_token),
                             "consoleCACert = " + con.ca] + _items(top),
                        https=https or rt.free_port(), log=log)


def chaining_config(port, allowed_ports, log, tls=False, top=()):
    """A relay that reaches its targets through an upstream proxy (proxyEnabled = true;
    HTTPS_PROXY comes from its environment), password file users.txt, targets on
    127.0.0.1 and `allowed_ports` only, one listener on `port` (TLS when tls, else plain;
    the other one switched off)."""
    on, off = ("httpsProxy", "httpProxy") if tls else ("httpProxy", "httpsProxy")
    return relay_config(allowed_ports=allowed_ports, log=log,
                        top=["allowedHosts = 127.0.0.1", "passwordFile = users.txt",
                             "proxyEnabled = true"] + _items(top),
                        sections=[(on, ["listen = %s:%d" % (LOCALHOST, port)]),
                                  (off, ["listen ="])])


def write_config(path, lines, atomic=True):
    """config.ini from lines (or text); atomic by default, so a reload never reads half."""
    text = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    return rt.write_file(path, text, atomic=atomic)


def write_users(d, user, password=None, name="users.txt", mode=0o600, header=""):
    """A password file in d: one line `user:password`, or, when `user` is a list of
    (user, password) pairs (and password None), one line each, in order; after `header`
    (e.g. a comment line). Every password is registered as a secret; chmod `mode` unless
    None; written atomically (a relay reloading never reads half of it)."""
    pairs = [(user, password)] if password is not None else list(user)
    text = header
    for u, pw in pairs:
        rt.secret(pw)
        text += "%s:%s\n" % (u, pw)
    return rt.write_file(os.path.join(d, name), text, mode, atomic=True)


def reload(pid, log, timeout=10):
    """SIGHUP to the relay `pid` (a PID this test started), then wait for the
    `config.reload` record it logs after reading its files again. Returns (record or
    None, the log offset before the signal)."""
    since = rt.log_offset(log)
    os.kill(pid, signal.SIGHUP)
    return rt.wait_for_log(log, "config.reload", timeout=timeout, since=since), since


class Relay:
    """One relaypro in folder `dir`: config.ini there, run with that folder as cwd.
    Attributes: dir, cfg, log (path of its log file, or None), https/http/admin (ports;
    True: a port picked at start(fresh_ports=True)), proc (relaytest.Proc while running),
    env."""

    def __init__(self, d, lines=None, https=None, http=None, admin=None, log="relay.log",
                 env=None, name="relay", bin=None):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.cfg = os.path.join(d, "config.ini")
        self.log = os.path.join(d, log) if log else None
        self.https, self.http, self.admin = https, http, admin
        self.env = dict(env or {})
        self.name = name
        self.bin = bin or rt.relay_bin()
        self.proc = None
        self.start_rec = None
        self._lines = lines
        if lines is not None:
            self.write(lines)

    def write(self, lines=None):
        """Write config.ini: `lines`, or what config() builds from the current ports."""
        self._lines = lines if lines is not None else self.config()
        write_config(self.cfg, self._lines)

    def config(self):
        """The configuration's lines. A subclass builds them from self.https/http/admin
        (so start(fresh_ports=True) can move the listeners); by default, what was given."""
        return self._lines

    def listen_ports(self):
        return [p for p in (self.https, self.http, self.admin) if p]

    def start(self, timeout=15, argv_prefix=(), wait_start=True, fresh_ports=False):
        """Run the relay; wait for the `start` log record (when it logs to a file and
        wait_start; kept in self.start_rec) and for every listener; a relay that exits
        first fails at once. Returns self; raises RuntimeError with the relay's standard
        error and log. fresh_ports: a listener given as True gets a port from free_port()
        now (config() rebuilds the file); another process on this machine may bind that
        port first, so a relay that fails with "in use" is started again on fresh ports
        (at most 3 times)."""
        err = ""
        for attempt in range(3 if fresh_ports else 1):
            if fresh_ports:
                for attr in ("https", "http", "admin"):
                    v = getattr(self, attr)
                    if v is True or (v and attempt > 0):
                        setattr(self, attr, rt.free_port())
                self.write()
            since = rt.log_offset(self.log) if self.log and wait_start else 0
            if self._start_once(timeout, argv_prefix, wait_start, since):
                return self
            err = self.proc.stderr() + (self.tail_log(since) if self.log and wait_start else "")
            if "in use" not in err:
                break
        raise RuntimeError("relay %s did not start: %s" % (self.name, rt.redact(err[-1500:])))

    def _start_once(self, timeout, argv_prefix, wait_start, since):
        self.proc = rt.start_process(list(argv_prefix) + [self.bin, "run", "-c", self.cfg],
                                     env=self.env, tmpdir=self.dir, name=self.name, cwd=self.dir)
        self.start_rec = None

        def started():
            if self.log and wait_start:
                for rec in rt.read_json_lines(self.log, since):
                    if rec.get("event") == "start":
                        self.start_rec = rec
                        return True
            elif self.proc.alive():
                return True
            return "exited" if not self.proc.alive() else None
        ok = rt.wait_until(started, timeout=timeout) is True
        # The start record is written once the listeners listen (run.c): nothing to probe
        # then. A probe would be a connection of its own that the relay counts as pending
        # until it has read its end, and with a small maxConnections (at most half of it
        # may be pending) a tunnel opened next could be the one the cap closes: accepted
        # in the same pass before the probe (test_relay max_connections, loaded machine).
        if self.start_rec is None:
            for p in self.listen_ports():
                ok = ok and rt.wait_for_port(LOCALHOST, p, timeout=timeout)
        if not ok:
            self.proc.stop(timeout=5)
        return ok

    def tail_log(self, since=0):
        """The log's text from byte `since` (at most 1 MiB)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                return f.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=15):
        """SIGTERM by PID (then SIGKILL after timeout); the exit status."""
        rc = self.proc.stop(timeout=timeout) if self.proc else None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def events(self, name=None, since=0):
        return rt.events(self.log, name, since)

    def reload(self, timeout=10):
        """SIGHUP and the config.reload record (see reload()); (record, offset before)."""
        return reload(self.proc.pid, self.log, timeout)

    def wait_event(self, predicate, timeout=10, since=0):
        return rt.wait_for_log(self.log, predicate, timeout=timeout, since=since)

    def offset(self):
        return rt.log_offset(self.log)

    def cli(self, args, timeout=20, env=None):
        """`relaypro ARGS -c config.ini` (text); the CompletedProcess."""
        e = rt.clean_environ()
        e.update(self.env)  # what the relay itself is given (e.g. RELAYPRO_CA_BUNDLE_FILE)
        e.update(env or {})
        return subprocess.run([self.bin] + list(args) + ["-c", self.cfg], capture_output=True,
                              text=True, timeout=timeout, env=e, cwd=self.dir)

    def ca_pem(self, path=None):
        """The CA certificate `ca show` prints, written to `path` (default <dir>/ca.pem)."""
        r = self.cli(["ca", "show"])
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", r.stdout, re.S)
        if not m:
            raise RuntimeError("ca show failed: %s" % rt.redact(r.stderr[-500:]))
        path = path or os.path.join(self.dir, "ca.pem")
        rt.write_file(path, m.group(0))
        return path

    def grant(self, sub, ttl="10m"):
        """A grant from `relaypro token grant` (the console's job, done by the CLI)."""
        r = self.cli(["token", "grant", "--sub", sub, "--ttl", ttl])
        if r.returncode != 0:
            raise RuntimeError("token grant failed: %s" % rt.redact(r.stderr[-500:]))
        return rt.secret(r.stdout.strip())

    def access_token(self, sub="responder", grant=None, port=None, cafile=None):
        """POST /v1/token with a grant (a fresh one for `sub` unless given) on the TLS
        listener, its certificate verified against `cafile` when given; the access token."""
        grant = grant or self.grant(sub)
        r = rt.http_request(LOCALHOST, port or self.https, "POST", "/v1/token",
                            headers=[("Authorization", "Bearer " + grant)], tls=True,
                            cafile=cafile, verify=cafile is not None,
                            server_hostname="localhost", timeout=10)
        if r.status != 200:
            raise RuntimeError("POST /v1/token: %d %s" % (r.status, rt.redact(r.body[:200])))
        return rt.secret(r.json()["access_token"])

    def sock(self, tls, timeout=5):
        """A client connection to the TLS listener (unverified) or the plain one."""
        if tls:
            return rt.tls_connect(LOCALHOST, self.https, verify=False,
                                  server_hostname="localhost", timeout=timeout)
        return rt.connect(LOCALHOST, self.http, timeout)


class TlsRelay(Relay):
    """A relay as start_relay() starts it: a TLS listener (`port`), a plain one
    (`plain_port`, or None) and an admin one (`admin_port`, or None); `secret` its
    securityToken; `cafile` what clients verify it with (None until ca_pem() fetched the
    minted CA)."""

    def __init__(self, d, lines, port, plain_port, admin_port, secret, cafile, env=None):
        Relay.__init__(self, d, lines, https=port, http=plain_port, admin=admin_port, env=env)
        self.port, self.plain_port, self.admin_port = port, plain_port, admin_port
        self.secret, self.cafile = secret, cafile

    @property
    def pid(self):
        return self.proc.pid

    def ca_pem(self, path=None):
        self.cafile = Relay.ca_pem(self, path)
        return self.cafile

    def token(self, sub):
        """An access token for `sub` (access_token, verified against `cafile` if any)."""
        return self.access_token(sub, cafile=self.cafile)

    def records(self, event=None, since=0):
        return self.events(event, since)

    def wait_record(self, event, pred=lambda r: True, timeout=10, since=0):
        return self.wait_event(lambda r: r.get("event") == event and pred(r), timeout, since)

    def reload(self, timeout=10):
        """SIGHUP and the config.reload record (None when none came)."""
        return Relay.reload(self, timeout)[0]


def start_relay(tmpdir, name, top=(), sections=(), env=None, plain=True, admin=False,
                secret=None, cafile=None, timeout=15):
    """Start `relaypro run` in <tmpdir>/<name>/: organization 42, relay id 7, a fresh
    securityToken (or `secret`), serverName localhost, a TLS listener, a plain one when
    `plain`, an admin one when `admin`, logging to relay.log there. top: more top-level
    lines; sections: more lines after them (with their own [section] headers). Returns the
    started TlsRelay (Relay.start: the start record, never time)."""
    secret = secret or "sec-" + rt.secrets_hex(16)
    port = rt.free_port()
    plain_port = rt.free_port() if plain else None
    admin_port = rt.free_port() if admin else None
    lines = relay_config(security_token=secret, org=42, relay_id=7, https=port,
                         http=plain_port, admin=admin_port, top=top) + list(sections)
    return TlsRelay(os.path.join(tmpdir, name), lines, port, plain_port, admin_port, secret,
                    cafile, env=env).start(timeout=timeout)

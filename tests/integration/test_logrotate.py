#!/usr/bin/env python3
"""test_logrotate.py -- log rotation by the real binary (docs/configuration.md), checked with gunzip.

Each case starts `relaypro run -c config.ini` with `[logger] fileName = relay.log`,
`maxSize = 2KiB` and makes the relay log: `debugLogging = true` writes conn.state and
conn.close lines for every connection, and proxy requests with a wrong password (a
password file is configured) write auth.fail warnings. Then it reads the folder:

* rotation_and_gzip: maxBackups = 3 -> exactly 3 rotated files named
  relay.log.YYYYMMDDTHHMMSS.mmmZ.gz, each passing `gunzip -t`, each `gunzip -c` giving
  complete JSON lines (at most maxSize bytes), Python's gzip agreeing; the names sort in
  the order of the records they hold, and the live file holds the newest; no temporary
  files are left; the relay keeps answering and stops with exit 0.
* no_compress: noCompress = true -> plain rotated files, maxBackups respected.
* max_age: maxAge = 2s -> rotated files from a first burst are deleted by the rotation
  of a second burst 2.5 s later.
* full_disk: fileName = /dev/full -> every write fails (ENOSPC), the relay still
  answers, and stderr gets one "log.dropped" warning (at most one a minute).

Environment: RELAYPRO_BIN (default dist/relaypro-linux-amd64, else build/amd64/relaypro).
Every process is started through relaytest and stopped by PID. Runs in about 10 s.
"""
import base64
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

REPO = rt.REPO_DIR


BIN = rt.relay_bin()
MAX_SIZE = 2048
ROTATED = re.compile(r"^relay\.log\.(\d{8}T\d{6}\.\d{3}Z)(\.gz)?$")
USER, PASSWORD = "username1", "password1"
WRONG = base64.b64encode(("%s:not-the-password" % USER).encode()).decode()


class Relay(relays.Relay):
    """One relaypro in its own folder, logging to relay.log (or `log_file`); `port` is its
    plain listener."""

    def __init__(self, name, logger, log_file="relay.log"):
        d = rt.make_tmpdir("relaytest-logrotate-%s-" % name)
        # The log may be /dev/full: the start is seen on the listeners, not in the log.
        super().__init__(d, https=True, http=True, log=log_file, name="relaypro")
        self.log_file = log_file
        self.logger = logger
        relays.write_users(self.dir, USER, PASSWORD)

    def config(self):
        return relays.relay_config(
            top=["relayProId = 5f0c6a1e-3b7d-4c2a-9e8f-0a1b2c3d4e5f", "passwordFile = users.txt",
                 "debugLogging = true"],
            https=self.https, http=self.http, log=None,
            sections=[("logger", ["fileName = " + self.log_file] + list(self.logger))],
            limits={"authFailLimit": "1000000"})

    @property
    def port(self):
        return self.http

    def start(self, timeout=20):
        try:
            super().start(timeout=timeout, wait_start=False, fresh_ports=True)
            return True
        except RuntimeError as e:
            sys.stdout.write("     %s\n" % e)
            return False

    def stop(self):
        return self.proc.stop(timeout=10)

    def request(self, bad_auth=False):
        """One connection: GET /healthz, or a proxy request with a wrong password.
        Returns the status code (0 when there was no answer)."""
        s = rt.connect("127.0.0.1", self.port, timeout=5)
        try:
            if bad_auth:
                s.sendall(("GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n"
                           "Proxy-Authorization: Basic %s\r\n\r\n" % WRONG).encode())
            else:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            _, status, _, _, _ = rt.read_response_head(s, timeout=5)
            return status
        finally:
            s.close()

    def traffic(self, n):
        """n connections, every third with a wrong password; returns the statuses."""
        return [self.request(bad_auth=(i % 3 == 0)) for i in range(n)]

    def rotated(self):
        """Sorted names of rotated files (plain and .gz) in the folder."""
        return sorted(n for n in os.listdir(self.dir) if ROTATED.match(n))

    def temporaries(self):
        return [n for n in os.listdir(self.dir) if n.startswith("relay.log.") and ".tmp." in n]

    def settled(self, max_files, compressed):
        """Housekeeping finished: at most max_files rotated files (0 = any), all of the
        expected kind, no temporary file."""
        names = self.rotated()
        if self.temporaries() or (max_files and len(names) > max_files):
            return None
        if compressed and any(not n.endswith(".gz") for n in names):
            return None
        return names or None


def json_lines(data, name):
    """Parse every line; returns the records, or None (after a failed check) if any line
    is not a complete JSON object with ts/level/event."""
    text = data.decode("utf-8", "replace")
    if not text.endswith("\n"):
        rt.check(False, name + ": ends with a complete line", repr(text[-80:]))
        return None
    recs = []
    for ln in text.splitlines():
        try:
            r = json.loads(ln)
        except ValueError:
            rt.check(False, name + ": every line is JSON", repr(ln[:120]))
            return None
        if not (isinstance(r, dict) and "ts" in r and "level" in r and "event" in r):
            rt.check(False, name + ": every line is a log record", repr(ln[:120]))
            return None
        recs.append(r)
    return recs


def name_ts(name):
    """relay.log.20261123T100000.123Z[.gz] -> 2026-11-23T10:00:00.123Z (the records' format)."""
    t = ROTATED.match(name).group(1)
    return "%s-%s-%sT%s:%s:%s" % (t[0:4], t[4:6], t[6:8], t[9:11], t[11:13], t[13:])


@rt.case(timeout=40)
def rotation_and_gzip():
    gunzip = shutil.which("gunzip")
    rt.check(gunzip is not None, "gunzip is installed")
    if not gunzip:
        return
    r = Relay("gzip", [("maxSize", "2KiB"), ("maxBackups", "3")])
    if not rt.check(r.start(), "relay starts with maxSize = 2KiB, maxBackups = 3"):
        return
    statuses = r.traffic(120)
    rt.check(statuses.count(200) == 80 and statuses.count(407) == 40,
             "relay answers while rotating (80 x 200, 40 x 407)", statuses[:12])
    rt.check(r.request() == 200, "relay still answers after the rotations")
    # The folder is read once the relay has exited: it logs after the last answer (the
    # connection's close), and each rotation prunes and compresses in the background, so
    # a listing taken while it runs can lose a file before it is opened. At exit the relay
    # waits for that housekeeping (log_rotation_wait), so after exit nothing moves.
    rt.check_eq(r.stop(), 0, "relay stops with exit 0")
    names = r.settled(3, True)
    rt.check(names is not None and len(names) == 3,
             "exactly maxBackups = 3 rotated files remain, all compressed", r.rotated())
    names = names or r.rotated()
    rt.check(all(n.endswith(".gz") for n in names), "rotated files are named <name>.<UTC time>.gz",
             names)
    rt.check(not r.temporaries(), "no temporary file left behind", r.temporaries())
    rt.check(os.path.getsize(r.log) <= MAX_SIZE, "live file within maxSize",
             os.path.getsize(r.log))
    contents = []
    for n in names:
        p = os.path.join(r.dir, n)
        t = subprocess.run([gunzip, "-t", p], capture_output=True, timeout=10)
        rt.check(t.returncode == 0, "gunzip -t %s" % n, t.stderr.decode(errors="replace"))
        c = subprocess.run([gunzip, "-c", p], capture_output=True, timeout=10)
        rt.check(c.returncode == 0 and 0 < len(c.stdout) <= MAX_SIZE,
                 "gunzip -c %s: 1..%d bytes" % (n, MAX_SIZE), len(c.stdout))
        with open(p, "rb") as f:
            rt.check(gzip.decompress(f.read()) == c.stdout, "Python's gzip agrees on " + n)
        rt.check(os.stat(p).st_mode & 0o777 == 0o640, n + " has mode 0640",
                 oct(os.stat(p).st_mode & 0o777))
        recs = json_lines(c.stdout, n)  # checks the lines are complete JSON
        if recs:
            contents.append((n, recs))
    with open(r.log, "rb") as f:
        live = json_lines(f.read(), "relay.log")
    # Names sort like the records: each file's records are older than the next file's,
    # no record is newer than its file's name, and the live file holds the newest.
    ordered = len(names) == 3 and len(contents) == len(names) and live is not None
    for i, (n, recs) in enumerate(contents):
        if recs[-1]["ts"] > name_ts(n):
            ordered = False
        if i + 1 < len(contents) and recs[-1]["ts"] > contents[i + 1][1][0]["ts"]:
            ordered = False
    if ordered and contents and live:
        ordered = contents[-1][1][-1]["ts"] <= live[0]["ts"]
    rt.check(ordered, "rotated names sort by time, in the order of the records")
    events = {x["event"] for _, recs in contents for x in recs}
    rt.check("auth.fail" in events and "conn.state" in events,
             "rotated files hold the relay's records", sorted(events))
    rt.check("log.dropped" not in r.proc.stderr(), "no record dropped", r.proc.stderr()[-300:])


@rt.case(timeout=30)
def no_compress():
    r = Relay("plain", [("maxSize", "2KiB"), ("maxBackups", "2"), ("noCompress", "true")])
    if not rt.check(r.start(), "relay starts with noCompress = true"):
        return
    r.traffic(60)
    stopped = r.stop()  # read the folder after exit (see rotation_and_gzip)
    names = r.settled(2, False)
    rt.check(names is not None and len(names) == 2, "maxBackups = 2: two rotated files",
             r.rotated())
    names = names or []
    rt.check(all(not n.endswith(".gz") for n in names), "noCompress: plain rotated files", names)
    for n in names:
        p = os.path.join(r.dir, n)
        with open(p, "rb") as f:
            data = f.read()
        rt.check(len(data) <= MAX_SIZE and json_lines(data, n) is not None,
                 "%s: JSON lines within maxSize (%d bytes)" % (n, len(data)))
    rt.check_eq(stopped, 0, "relay stops with exit 0")


@rt.case(timeout=30)
def max_age():
    r = Relay("age", [("maxSize", "2KiB"), ("maxAge", "2s"), ("maxBackups", "0")])
    if not rt.check(r.start(), "relay starts with maxAge = 2s, maxBackups = 0"):
        return
    r.traffic(40)
    first = rt.wait_until(lambda: r.settled(0, True), timeout=10) or []
    rt.check(len(first) >= 4, "a first burst rotates several times", first)
    time.sleep(2.5)
    r.traffic(15)

    def aged():
        names = r.settled(0, True)
        return names if names and not set(first) & set(names) else None
    names = rt.wait_until(aged, timeout=10)
    rt.check(names is not None, "rotated files older than maxAge are deleted at the next rotation",
             "first %s, now %s" % (first, r.rotated()))
    rt.check(bool(names), "the newer rotated files are kept", r.rotated())
    rt.check_eq(r.stop(), 0, "relay stops with exit 0")


@rt.case(timeout=30)
def full_disk():
    if not os.access("/dev/full", os.W_OK):
        rt.skip("full_disk", "no writable /dev/full")
        return
    r = Relay("full", [("maxSize", "2KiB"), ("maxBackups", "3")], log_file="/dev/full")
    if not rt.check(r.start(), "relay starts logging to /dev/full"):
        return
    statuses = r.traffic(30)
    rt.check(statuses.count(200) == 20 and statuses.count(407) == 10,
             "a full disk never stops relaying (20 x 200, 10 x 407)", statuses[:12])
    rt.check_eq(r.stop(), 0, "relay stops with exit 0")
    warnings = [x for x in rt.read_json_lines(r.proc.stderr_path) if x.get("event") == "log.dropped"]
    rt.check_eq(len(warnings), 1, "one log.dropped warning on stderr (at most one a minute)")
    w = warnings[0] if warnings else {}
    rt.check(w.get("level") == "warn" and w.get("dropped", 0) >= 1 and
             "No space left" in w.get("error", ""), "the warning counts drops and names the error",
             w)
    rt.check(not os.path.exists(os.path.join(r.dir, "relay.log")), "nothing else was written")


if __name__ == "__main__":
    rt.main("logrotate", deadline=58)

#!/usr/bin/env python3
"""socks5server.py -- the project's own SOCKS5 test proxy (RFC 1928, RFC 1929), stdlib only.

It can be a working proxy or a broken one, on purpose. Start it as a process (relaytest's
start_socks5_server does, and waits for it) or use Socks5Server in a thread:

    socks5server.py --port 0 --log FILE [--user U --password P] [--mode MODE] [--rep N]

Modes (what every connection gets):
  ok                    a working proxy: greeting, RFC 1929 when --user is set (then the
                        client must offer X'02' and give the right pair), CONNECT to the
                        target, then bytes relayed both ways until either side closes
  refuse                the CONNECT is answered with REP = --rep (1..255), then closed
  close-after-greeting  the greeting is read, then the connection closed, no answer
  close-mid-method      one byte of the method choice (X'05'), then closed
  close-after-method    the method choice, then closed before reading anything more
  close-after-auth      the RFC 1929 request is read, then closed (needs --user)
  close-after-request   the CONNECT request is read, then closed without a reply
  close-mid-reply       the first 5 bytes of a success reply, then closed
  no-acceptable         the method choice is X'FF'
  wrong-method          the method choice is X'01' (GSSAPI), which no client here offers
  bad-version           the method choice starts with version 4
  bad-atyp              a success reply with address type 2
  reply-extra           a success reply with BND.ADDR as the name "bound.test", followed at
                        once by --extra bytes of its own (they must reach the client as
                        the tunnel's first bytes)

Targets: only loopback addresses are ever connected to (127.0.0.0/8, ::1; a name must
resolve to one); anything else is refused with REP X'02' (not allowed by ruleset).

Log (--log, JSON lines, one write each, each written before the proxy acts on it, so a
client that saw the effect finds the line; never a password):
  {"event":"listening","port":N}
  {"event":"greeting","methods":[0,2]}
  {"event":"auth","user":"...","ok":true}
  {"event":"request","cmd":1,"atyp":"ipv4"|"ipv6"|"name","host":"...","port":N}
  {"event":"reply","rep":N}
  {"event":"closed","stage":"..."}           (what a close-* mode did)
Exit: SIGTERM/SIGINT stop it; it never exits by itself.
"""

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import sys
import threading

MODES = ("ok", "refuse", "close-after-greeting", "close-mid-method", "close-after-method",
         "close-after-auth", "close-after-request", "close-mid-reply", "no-acceptable",
         "wrong-method", "bad-version", "bad-atyp", "reply-extra")
IO_TIMEOUT = 30       # seconds any single read may wait
RELAY_LIMIT = 1 << 30  # bytes relayed per connection, at most


class Socks5Server:
    """A listening test proxy; serve_forever() in a thread, close() to stop."""

    def __init__(self, host="127.0.0.1", port=0, mode="ok", rep=1, user=None, password=None,
                 log=None, extra=b""):
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        if mode == "close-after-auth" and not user:
            raise ValueError("close-after-auth needs --user")
        self.mode, self.rep, self.user, self.password = mode, rep, user, password
        self.extra = extra
        self.log_path = log
        self._log_lock = threading.Lock()
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False

    # -------------------------------------------------------------- plumbing
    def log(self, **rec):
        if not self.log_path:
            return
        line = (json.dumps(rec, sort_keys=True) + "\n").encode()
        with self._log_lock:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def serve_forever(self):
        self.log(event="listening", port=self.port)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def close(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def _read(c, n):
        """Exactly n bytes, or None when the peer closed first."""
        buf = b""
        while len(buf) < n:
            b = c.recv(n - len(buf))
            if not b:
                return None
            buf += b
        return buf

    def _closed(self, c, stage, last=b""):
        """Log the stage, then send its last bytes (if any) and close: a client that saw
        them finds the log line."""
        self.log(event="closed", stage=stage)
        if last:
            c.sendall(last)
        c.close()

    # -------------------------------------------------------------- one client
    def _session(self, c):
        c.settimeout(IO_TIMEOUT)
        try:
            self._handshake(c)
        except (OSError, ValueError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _handshake(self, c):
        head = self._read(c, 2)
        if head is None or head[0] != 5:
            return self._closed(c, "not socks5")
        methods = self._read(c, head[1]) if head[1] else b""
        if methods is None:
            return self._closed(c, "truncated greeting")
        self.log(event="greeting", methods=list(methods))
        m = self.mode
        if m == "close-after-greeting":
            return self._closed(c, "after greeting")
        if m == "close-mid-method":
            return self._closed(c, "mid method", b"\x05")
        if m == "no-acceptable":
            return self._closed(c, "no acceptable method", b"\x05\xff")
        if m == "wrong-method":
            return self._closed(c, "chose a method not offered", b"\x05\x01")
        if m == "bad-version":
            return self._closed(c, "bad version", b"\x04\x00")
        want = 2 if self.user else 0
        if want not in methods:
            return self._closed(c, "no acceptable method", b"\x05\xff")
        c.sendall(bytes([5, want]))
        if m == "close-after-method":
            return self._closed(c, "after method")
        if want == 2:
            ver = self._read(c, 2)
            if ver is None:
                return self._closed(c, "truncated auth")
            user = self._read(c, ver[1])
            plen = self._read(c, 1)
            pw = self._read(c, plen[0]) if plen else None
            if user is None or pw is None:
                return self._closed(c, "truncated auth")
            if m == "close-after-auth":
                return self._closed(c, "after auth request")
            ok = ver[0] == 1 and user == self.user.encode() and pw == self.password.encode()
            self.log(event="auth", user=user.decode("utf-8", "replace"), ok=ok)  # before the answer
            c.sendall(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return self._closed(c, "auth refused")
        req = self._read(c, 4)
        if req is None:
            return self._closed(c, "truncated request")
        atyp = req[3]
        if atyp == 1:
            raw = self._read(c, 4)
            host = socket.inet_ntop(socket.AF_INET, raw) if raw else None
            kind = "ipv4"
        elif atyp == 4:
            raw = self._read(c, 16)
            host = socket.inet_ntop(socket.AF_INET6, raw) if raw else None
            kind = "ipv6"
        elif atyp == 3:
            ln = self._read(c, 1)
            raw = self._read(c, ln[0]) if ln else None
            host = raw.decode("ascii", "replace") if raw is not None else None
            kind = "name"
        else:
            return self._closed(c, "bad address type", b"\x05\x08\x00\x01" + bytes(6))
        pb = self._read(c, 2)
        if host is None or pb is None:
            return self._closed(c, "truncated request")
        port = pb[0] << 8 | pb[1]
        self.log(event="request", cmd=req[1], atyp=kind, host=host, port=port)
        if m == "close-after-request":
            return self._closed(c, "after request")
        if m == "close-mid-reply":
            return self._closed(c, "mid reply", b"\x05\x00\x00\x01\x7f")
        if m == "bad-atyp":
            return self._closed(c, "bad reply address type", b"\x05\x00\x00\x02" + bytes(6))
        if m == "refuse":
            return self._reply(c, self.rep)
        if req[1] != 1:
            return self._reply(c, 7)
        up = self._connect(host, port)
        if isinstance(up, int):
            return self._reply(c, up)
        with up:
            bound = up.getsockname()
            self.log(event="reply", rep=0)
            if m == "reply-extra":
                c.sendall(b"\x05\x00\x00\x03\x0abound.test\x04\x38" + self.extra)
            else:
                fam = 1 if up.family == socket.AF_INET else 4
                c.sendall(bytes([5, 0, 0, fam]) + socket.inet_pton(up.family, bound[0])
                          + bound[1].to_bytes(2, "big"))
            self._relay(c, up)

    def _reply(self, c, rep):
        self.log(event="reply", rep=rep)
        c.sendall(bytes([5, rep, 0, 1]) + bytes(6))
        c.close()

    @staticmethod
    def _connect(host, port):
        """A socket to a loopback host:port, or a REP code."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return 4  # host unreachable
        for fam, typ, proto, _, addr in infos:
            if not ipaddress.ip_address(addr[0].split("%")[0]).is_loopback:
                return 2  # not allowed by ruleset: tests never leave loopback
            s = socket.socket(fam, typ, proto)
            s.settimeout(10)
            try:
                s.connect(addr)
                s.settimeout(None)
                return s
            except ConnectionRefusedError:
                s.close()
                return 5
            except OSError:
                s.close()
                return 1
        return 4

    @staticmethod
    def _relay(a, b):
        a.settimeout(None)
        moved = 0
        socks = [a, b]
        open_ = {a: True, b: True}
        while open_[a] or open_[b]:
            r, _, _ = select.select([s for s in socks if open_[s]], [], [], IO_TIMEOUT)
            if not r:
                return
            for s in r:
                other = b if s is a else a
                data = s.recv(65536)
                if not data:
                    open_[s] = False
                    try:
                        other.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                other.sendall(data)
                moved += len(data)
                if moved > RELAY_LIMIT:
                    return


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", default="ok", choices=MODES)
    ap.add_argument("--rep", type=int, default=1)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--extra", default="", help="reply-extra: bytes sent after the reply")
    ap.add_argument("--log")
    a = ap.parse_args()
    if ipaddress.ip_address(a.host).is_loopback is False:
        sys.exit("socks5server.py: listens on loopback only")
    if (a.user is None) != (a.password is None):
        sys.exit("socks5server.py: --user and --password go together")
    srv = Socks5Server(a.host, a.port, a.mode, a.rep, a.user, a.password, a.log,
                       a.extra.encode())
    signal.signal(signal.SIGTERM, lambda *_: (srv.close(), os._exit(0)))
    signal.signal(signal.SIGINT, lambda *_: (srv.close(), os._exit(0)))
    print("listening %d" % srv.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

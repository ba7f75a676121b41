#!/usr/bin/env python3
"""test_proxyproto.py -- PROXY protocol v1/v2 on the proxy listeners (docs/configuration.md).

With `proxyProtocol = true` a connection from an address in `trustedProxies` must start
with a PROXY header (read before TLS), whose source address then replaces the peer
address in the log (`client` of tunnel.open/close, auth.fail) and in the brute-force
limiter; anyone else is closed at once. Driven with raw sockets from 127.0.0.1 (the
"balancer") sending hand-made v1 and v2 headers -- whole, split in odd pieces, glued to
the first TLS/HTTP bytes, truncated, hostile -- and with a real sender nobody here wrote:
Debian's haproxy in TCP mode with `send-proxy` and `send-proxy-v2` (installed by
build.sh deps; the case fails when it is missing), its clients bound to 127.0.0.3.

Four relays: A trusts 127.0.0.1/32, B trusts only 127.0.0.2/32, C has proxyProtocol
off, H (behind haproxy, debugLogging on) trusts 127.0.0.1/32. All on loopback with
ephemeral ports; every process is started here and stopped by PID. The test password is
never printed. Last line: `proxyproto: N passed, N failed`.

Environment: RELAYPRO_BIN (default dist/relaypro-linux-amd64, else build/amd64/relaypro),
RELAYTEST_ONLY=case,case, RELAYTEST_KEEP=1.
"""
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

REPO = rt.REPO_DIR


BIN = rt.relay_bin()
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
USER, PASSWORD, WRONG = "ppuser", "pp-password-3", "pp-wrong-password-4"
GOOD, BAD = rt.basic(USER, PASSWORD), rt.basic(USER, WRONG)
for _s in (PASSWORD, WRONG, GOOD["Proxy-Authorization"].split(" ", 1)[1],
           BAD["Proxy-Authorization"].split(" ", 1)[1]):
    rt.secret(_s)  # never in a check line (relaytest redacts them), nor in a relay log
HEADER_TIMEOUT = 5          # seconds, [limits] headerTimeout of every relay here
AUTH_FAIL_LIMIT = 3
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"
S = {}


redact = rt.redact
chk = rt.check


# ================================================================= headers

def v1(proto, src="", dst="", sport=0, dport=0):
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(cmd="PROXY", src=None, dst=None, sport=0, dport=0, tlvs=b"", fam=None):
    """A v2 header; fam defaults to TCP over the addresses' family (UNSPEC without them)."""
    ver_cmd = 0x21 if cmd == "PROXY" else 0x20
    body = b""
    if src is not None:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        body = s.packed + d.packed + struct.pack("!HH", sport, dport)
        if fam is None:
            fam = 0x11 if s.version == 4 else 0x21
    if fam is None:
        fam = 0x00
    body += tlvs
    return V2SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


# ================================================================= sockets

def raw_from(src, port, timeout=5):
    """TCP connection from loopback address src to 127.0.0.1:port."""
    for h in (src, "127.0.0.1"):
        if not ipaddress.ip_address(h).is_loopback:
            raise ValueError("loopback only, not %r" % h)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def local_addr(sock):
    h, p = sock.getsockname()[:2]
    return "%s:%d" % (h, p)


def read_all(sock, timeout=5.0, limit=1 << 20):
    """(data, how) until the peer ends the stream: how is eof, reset, sslerror, timeout."""
    return rt.read_all(sock, timeout, limit, ragged="eof")


send_quiet = rt.send_quiet


def closed_silently(sock, timeout=5.0):
    """The relay closed the connection without sending a byte: (ok, detail)."""
    data, how = read_all(sock, timeout)
    sock.close()
    return data == b"" and how in ("eof", "reset"), "%s, %r" % (how, data[:80])


def send_split(sock, data, pieces):
    """Send data in pieces of the given sizes (cycled), each its own segment."""
    off, k = 0, 0
    while off < len(data):
        n = pieces[k % len(pieces)]
        sock.sendall(data[off:off + n])
        off += n
        k += 1
        time.sleep(0.01)  # let each piece leave as its own segment


class Prefixed:
    """A socket whose first sendall() carries `prefix` in the same write: the PROXY header
    and the ClientHello leave together, so the relay must not read past the header."""

    def __init__(self, sock, prefix):
        self.sock, self.prefix = sock, prefix

    def sendall(self, data):
        if self.prefix:
            data, self.prefix = self.prefix + data, b""
        self.sock.sendall(data)

    def recv(self, n):
        return self.sock.recv(n)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        self.sock.close()


def tls_over(sock, timeout=5):
    ctx = rt.client_context(verify=False)
    s = ctx.wrap_socket(sock, server_hostname="localhost")
    s.settimeout(timeout)
    return s


def connect_echo(conn, tls_conn=True, auth=None):
    """CONNECT to the echo port over conn (already past the PROXY header and TLS), echo
    8 KiB. Returns (status, echoed_ok)."""
    st, h, body = rt.connect_tunnel("127.0.0.1", 0, "localhost:%d" % S["con"].echo_port,
                                    headers=GOOD if auth is None else auth, conn=conn,
                                    tls=tls_conn)
    if st != 200:
        return st, False
    payload = os.urandom(8192)
    got = rt.echo_roundtrip(body, payload)
    body.close()
    return st, got == payload


# ================================================================= relays

class Relay(relays.Relay):
    def __init__(self, name, trusted=None, debug=False):
        super().__init__(rt.make_tmpdir("relaytest-pp-%s-" % name), https=True, http=True,
                         name="relaypro")
        self.label = name
        self.trusted = trusted
        self.debug = debug
        self._pp = (None, None)
        relays.write_users(self.dir, USER, PASSWORD)

    https_port = property(lambda self: self.https)
    http_port = property(lambda self: self.http)

    def start(self):
        try:
            super().start(timeout=30, fresh_ports=True)
            return True
        except RuntimeError as e:
            sys.stdout.write("     %s: %s\n" % (self.label, e))
            return False

    def write_config(self, proxy_protocol=None, trusted=None):
        """config.ini; proxy_protocol/trusted override the relay's own (for a reload)."""
        self._pp = (proxy_protocol, trusted)
        self.write()
        self._pp = (None, None)

    def config(self):
        proxy_protocol, trusted = self._pp
        trusted = trusted or self.trusted
        if proxy_protocol is None:
            proxy_protocol = bool(trusted)
        top = ["passwordFile = users.txt"]
        if trusted:
            top += ["proxyProtocol = %s" % ("true" if proxy_protocol else "false"),
                    "trustedProxies = " + trusted]
        if self.debug:
            top.append("debugLogging = true")
        return relays.relay_config(allowed_ports=[S["con"].echo_port], top=top,
                                   https=self.https, http=self.http,
                                   limits=[("headerTimeout", "%ds" % HEADER_TIMEOUT),
                                           ("authFailLimit", AUTH_FAIL_LIMIT),
                                           ("authFailBan", "60s")])

    def find(self, event, since=0, **want):
        """First log record of `event` with the wanted fields, waiting up to 10 s."""
        def pred(r):
            return r.get("event") == event and all(r.get(k) == v for k, v in want.items())
        return rt.wait_for_log(self.log, pred, timeout=10, since=since)

    def records(self, event, since=0):
        return [r for r in rt.read_json_lines(self.log, since) if r.get("event") == event]


def setup():
    if "con" in S:
        return
    tmp = rt.make_tmpdir("relaytest-pp-con-")
    S["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    for key, trusted, debug in (("A", "127.0.0.1/32", False), ("B", "127.0.0.2/32", False),
                                ("C", None, False), ("H", "127.0.0.1/32", True)):
        r = Relay(key, trusted, debug)
        if not r.start():
            raise RuntimeError("relay %s did not start" % key)
        S[key] = r


def through_a(header, tls, src="127.0.0.1", glue=False, pieces=None, auth=None):
    """Header then TLS (or plain) then CONNECT + echo on relay A. Returns (status, echoed,
    the balancer-side address of our socket)."""
    r = S["A"]
    sock = raw_from(src, r.https_port if tls else r.http_port)
    me = local_addr(sock)
    try:
        if glue and tls:
            conn = rt.TLSOver(Prefixed(sock, header), rt.client_context(verify=False), "localhost")
        elif glue:
            conn = Prefixed(sock, header)
        else:
            if pieces:
                send_split(sock, header, pieces)
            else:
                sock.sendall(header)
            conn = tls_over(sock) if tls else sock
        st, ok = connect_echo(conn, tls_conn=tls, auth=auth)
    finally:
        sock.close()
    return st, ok, me


# ================================================================= cases

@rt.case(timeout=120)
def start_relays():
    setup()
    chk(all(k in S for k in "ABCH"), "four relays started (A, B trusted; C off; H for haproxy)")


def addressed(name, header, tls, want_client, **kw):
    """One header through relay A; tunnel.open and tunnel.close carry want_client (or the
    balancer's own address when want_client is None)."""
    r = S["A"]
    since = rt.log_offset(r.log)
    st, ok, me = through_a(header, tls, **kw)
    want = want_client or me
    chk(st == 200 and ok, "%s: CONNECT 200 and 8 KiB echoed" % name, st)
    o = r.find("tunnel.open", since, client=want)
    c = r.find("tunnel.close", since, client=want)
    chk(o is not None and c is not None, "%s: tunnel.open/close name client %s" % (name, want),
        [x.get("client") for x in r.records("tunnel.open", since)])


@rt.case(timeout=60)
def v1_headers():
    setup()
    addressed("v1 TCP4 + TLS", v1("TCP4", "203.0.113.7", "127.0.0.1", 40001, 443), True,
              "203.0.113.7:40001")
    addressed("v1 TCP6 + plain", v1("TCP6", "2001:db8::7", "::1", 40002, 8080), False,
              "[2001:db8::7]:40002")
    addressed("v1 TCP4 + plain", v1("TCP4", "198.51.100.4", "127.0.0.1", 40004, 8080), False,
              "198.51.100.4:40004")
    addressed("v1 UNKNOWN + TLS keeps the balancer address", v1("UNKNOWN"), True, None)


@rt.case(timeout=60)
def v2_headers():
    setup()
    addressed("v2 TCP4 + TLS", v2("PROXY", "203.0.113.8", "127.0.0.1", 40011, 443), True,
              "203.0.113.8:40011")
    addressed("v2 TCP6 + plain", v2("PROXY", "2001:db8::8", "::1", 40012, 8080), False,
              "[2001:db8::8]:40012")
    addressed("v2 TCP4 with TLVs + TLS",
              v2("PROXY", "203.0.113.9", "127.0.0.1", 40013, 443,
                 tlvs=tlv(0x04, b"\0" * 7) + tlv(0xEA, b"\x01vpce-0123456789") + tlv(0x02, b"")),
              True, "203.0.113.9:40013")
    addressed("v2 LOCAL + TLS keeps the balancer address", v2("LOCAL"), True, None)
    addressed("v2 PROXY UNSPEC + plain keeps the balancer address", v2("PROXY"), False, None)
    addressed("v2 PROXY UNIX + TLS keeps the balancer address",
              v2("PROXY", fam=0x31, tlvs=b"/run/a.sock".ljust(108, b"\0") * 2), True, None)


@rt.case(timeout=60)
def split_and_glued_headers():
    setup()
    addressed("v1 byte by byte + TLS", v1("TCP4", "192.0.2.31", "127.0.0.1", 40021, 443), True,
              "192.0.2.31:40021", pieces=[1])
    addressed("v2 in odd pieces + TLS", v2("PROXY", "192.0.2.32", "127.0.0.1", 40022, 443),
              True, "192.0.2.32:40022", pieces=[3, 1, 7, 2, 11, 5])
    addressed("v1 glued to the ClientHello", v1("TCP4", "192.0.2.33", "127.0.0.1", 40023, 443),
              True, "192.0.2.33:40023", glue=True)
    addressed("v2 glued to the ClientHello", v2("PROXY", "192.0.2.34", "127.0.0.1", 40024, 443,
                                                tlvs=tlv(0x04, b"xyz")),
              True, "192.0.2.34:40024", glue=True)
    addressed("v1 glued to the CONNECT head (plain)",
              v1("TCP4", "192.0.2.35", "127.0.0.1", 40025, 80), False, "192.0.2.35:40025", glue=True)
    addressed("v2 glued to the CONNECT head (plain)",
              v2("PROXY", "2001:db8::35", "::1", 40026, 80), False, "[2001:db8::35]:40026", glue=True)


@rt.case(timeout=90)
def hostile_headers_closed():
    setup()
    r = S["A"]
    hello = None
    # A real ClientHello: the first bytes Python's TLS client sends.
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = rt.client_context(verify=False).wrap_bio(bio_in, bio_out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        hello = bio_out.read()
    hostile = [
        ("an HTTP request", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "https"),
        ("a TLS ClientHello", hello, "https"),
        ("a CONNECT head", b"CONNECT localhost:1 HTTP/1.1\r\nHost: x\r\n\r\n", "http"),
        ("v1 with port 080", b"PROXY TCP4 192.0.2.1 127.0.0.1 080 443\r\n", "https"),
        ("v1 with port 65536", b"PROXY TCP4 192.0.2.1 127.0.0.1 1 65536\r\n", "http"),
        ("v1 with octet 010", b"PROXY TCP4 192.0.2.010 127.0.0.1 1 2\r\n", "http"),
        ("v1 TCP4 with an IPv6 address", b"PROXY TCP4 ::1 127.0.0.1 1 2\r\n", "http"),
        ("v1 with a bare LF", b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\n", "https"),
        ("v1 without CRLF in 200 bytes", b"PROXY UNKNOWN " + b"x" * 200, "https"),
        ("v2 with a bad signature", b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\0" * 12, "https"),
        ("v2 version 1", V2SIG + b"\x11\x11\x00\x0c" + b"\0" * 12, "http"),
        ("v2 length 65535", V2SIG + b"\x21\x11\xff\xff" + b"\0" * 64, "https"),
        ("v2 UDP", v2("PROXY", "192.0.2.1", "127.0.0.1", 1, 2, fam=0x12), "http"),
        # a TLV whose length (9) runs past the end of the header (2 bytes follow)
        ("v2 TLV past the end", v2("PROXY", "192.0.2.1", "127.0.0.1", 1, 2, tlvs=b"\x04\x00\x09ab"),
         "https"),
    ]
    chk(hello and hello[0] == 0x16, "built a real ClientHello", hello[:8] if hello else None)
    for name, data, lst in hostile:
        since = rt.log_offset(r.log)
        sock = raw_from("127.0.0.1", r.https_port if lst == "https" else r.http_port)
        me = local_addr(sock)
        send_quiet(sock, data)
        ok, detail = closed_silently(sock)
        chk(ok, "%s: closed without an answer" % name, detail)
        rec = r.find("proxyproto.fail", since, client=me)
        chk(rec is not None and rec.get("level") == "warn" and rec.get("reason"),
            "%s: proxyproto.fail (warn, with a reason) for %s" % (name, me),
            r.records("proxyproto.fail", since))

    # Truncated: part of a header, then the sender ends its side.
    for name, data in (("truncated v1", v1("TCP4", "192.0.2.1", "127.0.0.1", 1, 2)[:20]),
                       ("truncated v2", v2("PROXY", "192.0.2.1", "127.0.0.1", 1, 2)[:20])):
        since = rt.log_offset(r.log)
        sock = raw_from("127.0.0.1", r.https_port)
        me = local_addr(sock)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        ok, detail = closed_silently(sock)
        chk(ok, "%s then EOF: closed" % name, detail)
        rec = r.find("proxyproto.fail", since, client=me)
        chk(rec is not None and "middle" in rec.get("reason", ""),
            "%s then EOF: logged as closed in the middle of the header" % name,
            r.records("proxyproto.fail", since))

    # Truncated and then silent: closed when headerTimeout (counted from accept) ends.
    since = rt.log_offset(r.log)
    sock = raw_from("127.0.0.1", r.https_port, timeout=HEADER_TIMEOUT * 4)
    me = local_addr(sock)
    sock.sendall(v2("PROXY", "192.0.2.1", "127.0.0.1", 1, 2)[:17])
    ok, detail = closed_silently(sock, timeout=HEADER_TIMEOUT * 4)
    chk(ok, "truncated v2 then silence: closed by headerTimeout", detail)
    rec = r.find("proxyproto.fail", since, client=me)
    chk(rec is not None and "headerTimeout" in rec.get("reason", ""),
        "truncated v2 then silence: logged with the timeout reason",
        r.records("proxyproto.fail", since))

    # Still serving, and still alive.
    st, ok, _ = through_a(v1("TCP4", "192.0.2.99", "127.0.0.1", 40099, 443), True)
    chk(r.proc.alive() and st == 200 and ok, "relay A still serves after the hostile headers", st)


@rt.case(timeout=60)
def untrusted_sources_closed():
    setup()
    a, b = S["A"], S["B"]
    hdr = v1("TCP4", "203.0.113.50", "127.0.0.1", 40050, 443)
    for relay, src, lst in ((b, "127.0.0.1", "https"), (b, "127.0.0.1", "http"),
                            (a, "127.0.0.2", "https"), (a, "127.0.0.2", "http")):
        since = rt.log_offset(relay.log)
        sock = raw_from(src, relay.https_port if lst == "https" else relay.http_port)
        me = local_addr(sock)
        send_quiet(sock, hdr)
        ok, detail = closed_silently(sock)
        chk(ok, "relay %s: %s (not trusted) closed on the %s listener" % (relay.label, src, lst),
            detail)
        rec = relay.find("proxyproto.untrusted", since, client=me)
        chk(rec is not None and rec.get("level") == "warn" and rec.get("listener") == lst,
            "relay %s: proxyproto.untrusted (warn) names %s" % (relay.label, me),
            relay.records("proxyproto.untrusted", since))
    # The trusted one on relay B: 127.0.0.2.
    since = rt.log_offset(b.log)
    sock = raw_from("127.0.0.2", b.https_port)
    try:
        sock.sendall(v2("PROXY", "203.0.113.51", "127.0.0.1", 40051, 443))
        st, ok = connect_echo(tls_over(sock))
    finally:
        sock.close()
    chk(st == 200 and ok, "relay B: 127.0.0.2 (trusted) with a v2 header tunnels", st)
    chk(b.find("tunnel.close", since, client="203.0.113.51:40051") is not None,
        "relay B: tunnel.close names the header's client",
        [x.get("client") for x in b.records("tunnel.close", since)])


@rt.case(timeout=60)
def proxy_protocol_off():
    setup()
    c = S["C"]
    hdr = v1("TCP4", "203.0.113.60", "127.0.0.1", 40060, 443)
    sock = raw_from("127.0.0.1", c.http_port)
    data, how = b"", ""
    try:
        send_quiet(sock, hdr + b"CONNECT localhost:%d HTTP/1.1\r\nHost: x\r\n\r\n" % S["con"].echo_port)
        data, how = read_all(sock)
    finally:
        sock.close()
    chk(data.startswith(b"HTTP/1.1 400 "), "off: a PROXY header on the plain listener is a 400",
        data[:100])
    since = rt.log_offset(c.log)
    sock = raw_from("127.0.0.1", c.https_port)
    me = local_addr(sock)
    err = None
    try:
        sock.sendall(hdr)
        tls_over(sock).close()
    except (ssl.SSLError, OSError) as e:
        err = e
    finally:
        sock.close()
    chk(err is not None, "off: a PROXY header before TLS fails the handshake", err)
    chk(c.find("tls.fail", since, client=me) is not None,
        "off: tls.fail names the real peer %s" % me, c.records("tls.fail", since))
    sock = raw_from("127.0.0.1", c.https_port)
    try:
        st, ok = connect_echo(tls_over(sock))
    finally:
        sock.close()
    chk(st == 200 and ok, "off: a plain TLS client still tunnels", st)


@rt.case(timeout=90)
def limiter_bans_the_header_address():
    setup()
    r = S["A"]
    since = rt.log_offset(r.log)
    banned = v1("TCP4", "198.51.100.66", "127.0.0.1", 40066, 8080)
    statuses = []
    for i in range(AUTH_FAIL_LIMIT + 1):  # one more than the limit starts the ban
        st, _, _ = through_a(banned, False, auth=BAD)
        statuses.append(st)
    chk(statuses == [407] * (AUTH_FAIL_LIMIT + 1), "wrong password x%d: 407 each"
        % (AUTH_FAIL_LIMIT + 1), statuses)
    rec = r.find("auth.ban", since)
    chk(rec is not None and rec.get("client", "").startswith("198.51.100.66:"),
        "auth.ban names the header's address", rec)
    fails = [x.get("client") for x in r.records("auth.fail", since)]
    chk(len(fails) == AUTH_FAIL_LIMIT + 1 and all(f == "198.51.100.66:40066" for f in fails),
        "auth.fail names the header's address", fails)
    st, _, _ = through_a(banned, False)
    chk(st == 429, "the header's address is banned: 429 even with the right password", st)
    st, _, _ = through_a(v1("TCP4", "198.51.100.66", "127.0.0.1", 40067, 443), True)
    chk(st == 429, "banned on the TLS listener too (another source port)", st)
    st, ok, _ = through_a(v1("TCP4", "198.51.100.67", "127.0.0.1", 40068, 8080), False)
    chk(st == 200 and ok, "another forwarded address from the same balancer still tunnels", st)
    st, ok, _ = through_a(v2("LOCAL"), True)
    chk(st == 200 and ok, "the balancer's own address (v2 LOCAL) is not banned", st)


@rt.case(timeout=60)
def reload_keeps_proxy_protocol_settings():
    """Both keys are restart-only: a SIGHUP that changes them names them and changes
    nothing until a restart."""
    setup()
    b = S["B"]
    since = rt.log_offset(b.log)
    b.write_config(trusted="127.0.0.0/8")
    b.proc.signal(signal.SIGHUP)
    rec = b.find("config.reload", since)
    chk(rec is not None and rec.get("ok") is True
        and "trustedProxies" in rec.get("restart_required", ""),
        "reload: trustedProxies named in restart_required", rec)
    sock = raw_from("127.0.0.1", b.https_port)
    me = local_addr(sock)
    send_quiet(sock, v1("TCP4", "203.0.113.70", "127.0.0.1", 40070, 443))
    ok, detail = closed_silently(sock)
    chk(ok and b.find("proxyproto.untrusted", since, client=me) is not None,
        "reload: 127.0.0.1 still untrusted on relay B until a restart", detail)
    since = rt.log_offset(b.log)
    b.write_config(proxy_protocol=False)
    b.proc.signal(signal.SIGHUP)
    rec = b.find("config.reload", since)
    chk(rec is not None and "proxyProtocol" in rec.get("restart_required", ""),
        "reload: proxyProtocol named in restart_required", rec)
    sock = raw_from("127.0.0.2", b.https_port)
    try:
        sock.sendall(v1("TCP4", "203.0.113.71", "127.0.0.1", 40071, 443))
        st, ok = connect_echo(tls_over(sock))
    finally:
        sock.close()
    chk(st == 200 and ok and b.find("tunnel.close", since, client="203.0.113.71:40071"),
        "reload: PROXY headers still read from 127.0.0.2 until a restart", st)
    b.write_config()


# ================================================================= haproxy

@rt.case(timeout=120)
def haproxy_send_proxy():
    setup()
    h = S["H"]
    if not chk(os.access(HAPROXY, os.X_OK), "haproxy installed (build.sh deps)", HAPROXY):
        return
    tmp = h.dir
    ports = {k: rt.free_port() for k in ("v1tls", "v2tls", "v2plain")}
    backends = {"v1tls": (h.https_port, "send-proxy"), "v2tls": (h.https_port, "send-proxy-v2"),
                "v2plain": (h.http_port, "send-proxy-v2")}
    lines = ["global", "    maxconn 200",
             "defaults", "    mode tcp", "    timeout connect 5s", "    timeout client 30s",
             "    timeout server 30s"]
    for name, port in ports.items():
        rport, opt = backends[name]
        lines += ["frontend f_%s" % name, "    bind 127.0.0.1:%d" % port,
                  "    default_backend b_%s" % name,
                  "backend b_%s" % name,
                  # health checks carry the PROXY header too (v2: LOCAL)
                  "    server relay 127.0.0.1:%d %s check inter 300ms" % (rport, opt)]
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    since0 = rt.log_offset(h.log)
    hp = rt.start_process([HAPROXY, "-db", "-f", cfg], tmpdir=tmp, name="haproxy")
    up = all(rt.wait_for_port("127.0.0.1", p, timeout=15) for p in ports.values())
    if not chk(up, "haproxy listening on its three frontends", hp.stderr()[-500:]):
        return
    for name, tls in (("v1tls", True), ("v2tls", True), ("v2plain", False)):
        since = rt.log_offset(h.log)
        sock = raw_from("127.0.0.3", ports[name])
        me = local_addr(sock)
        try:
            st, ok = connect_echo(tls_over(sock) if tls else sock, tls_conn=tls)
        finally:
            sock.close()
        chk(st == 200 and ok, "haproxy %s: CONNECT 200 and echo through haproxy" % name, st)
        chk(h.find("tunnel.close", since, client=me) is not None,
            "haproxy %s: the relay logs the real client %s" % (name, me),
            [x.get("client") for x in h.records("tunnel.close", since)])
    # haproxy's own health checks: v1 checks send a header, v2 checks send LOCAL.
    loc = rt.wait_for_log(h.log, lambda x: x.get("event") == "proxyproto.header"
                          and x.get("version") == 2 and x.get("local") is True, timeout=10,
                          since=since0)
    chk(loc is not None and loc.get("balancer", "").startswith("127.0.0.1:"),
        "haproxy's v2 health check: a LOCAL header, balancer address kept", loc)
    chk(h.records("proxyproto.fail", since0) == [] and h.records("proxyproto.untrusted", since0) == [],
        "no PROXY header from haproxy was refused", h.records("proxyproto.fail", since0)[:3])
    hp.stop(timeout=5)


@rt.case(timeout=30)
def no_secrets_logged():
    setup()
    text = ""
    for k in "ABCH":
        try:
            with open(S[k].log, encoding="utf-8", errors="replace") as f:
                text += f.read()
        except OSError:
            pass
    chk(text and all(s not in text for s in rt.secrets()), "no password in any relay log")


if __name__ == "__main__":
    rt.main("proxyproto", deadline=600)

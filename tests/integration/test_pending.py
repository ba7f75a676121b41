#!/usr/bin/env python3
"""test_pending.py -- caps on connections that have not authenticated yet
(docs/configuration.md `[limits] maxPendingPerAddress`, docs/security.md).

A connection is pending from accept until a tunnel request on it is admitted (its TLS
handshake and its head are pending). Against the real binary, with idle sockets that
never send a byte:
- per address: with maxPendingPerAddress = 4, the fifth pending connection from one
  address is closed at once and `limit.pending` is logged with the address and a reason;
  the first four stay open, and a client from another address still opens a tunnel;
- authenticated tunnels have no per-address cap: six tunnels from one address, then four
  more idle sockets from it, all stay; the fifth idle one is closed;
- all pending together at most half of maxConnections: the eleventh idle socket (from
  eleven addresses, maxConnections = 20) closes the OLDEST pending connection, and a
  Responder from yet another address still opens its tunnel;
- with proxyProtocol the cap counts the client address of the PROXY header, not the
  balancer's: five clients behind one balancer address are not refused for it, the fifth
  pending connection of one header address is.
Last line: `pending: N passed, N failed`.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

USER, PW = "resp", "resp-pass"

rt.init("pending", deadline=300)
TMP = rt.make_tmpdir("relaytest-pending-")
CON = rt.start_console(TMP, https=False, http=False, tls_echo=False,
                       extra_args=("--io-timeout", "600"))


class Relay(relays.Relay):
    """A relay of these cases (relays.Relay: its start waits on the `start` record, which
    is logged once the listeners are bound, and opens no probe connection -- a probe would
    be a pending connection of its own, and the oldest), with the client sockets opened to
    it, closed at stop()."""

    def __init__(self, name, limits, top=()):
        d = os.path.join(TMP, name)
        relays.Relay.__init__(self, d, https=rt.free_port())
        relays.write_users(d, USER, PW)
        # idle sockets must be ended by the caps only, never by the head's deadline
        self.write(relays.relay_config(allowed_ports=[CON.echo_port], https=self.https,
                                       top=["passwordFile = users.txt"] + list(top),
                                       limits=[("headerTimeout", "120s")] + list(limits.items())))
        self.socks = []
        self.start()

    def idle(self, src):
        """A TCP connection from src that never sends a byte."""
        s = rt.connect("127.0.0.1", self.https, timeout=10, src=src)
        self.socks.append(s)
        return s

    def tunnel(self, src):
        """An authenticated CONNECT tunnel from src (TLS), echo checked; the socket or None."""
        raw = rt.connect("127.0.0.1", self.https, timeout=10, src=src)
        try:
            tls = rt.tls_wrap(raw, server_hostname="localhost", verify=False, timeout=10)
        except OSError:
            raw.close()
            return None
        st, _, s = rt.connect_tunnel(None, None, "localhost:%d" % CON.echo_port,
                                     headers=rt.basic(USER, PW), conn=tls, timeout=10)
        if st != 200:
            return None
        self.socks.append(s)
        p = os.urandom(512)
        return s if rt.echo_roundtrip(s, p) == p else None

    def stop(self, timeout=15):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        return relays.Relay.stop(self, timeout)


def closed(s, timeout=10):
    """True when the relay ended s (EOF or reset) within timeout s; False if still open."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def still_open(s):
    """True when s is neither closed nor reset and has nothing to read (non-blocking)."""
    s.setblocking(False)
    try:
        s.recv(1)  # EOF or an unexpected byte: not an idle open connection
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def pending_lines(log, since=0, client=None):
    return [r for r in rt.read_json_lines(log, since)
            if r.get("event") == "limit.pending" and (client is None or r.get("client", "").startswith(client + ":"))]


@rt.case
def per_address():
    r = Relay("per-address", {"maxConnections": 100, "maxPendingPerAddress": 4})
    try:
        first = [r.idle("127.0.0.2") for _ in range(4)]
        fifth = r.idle("127.0.0.2")
        rt.check(closed(fifth), "the fifth pending connection from one address is closed at once")
        ev = rt.wait_for_log(r.log, lambda x: x.get("event") == "limit.pending" and
                             x.get("client", "").startswith("127.0.0.2"))
        rt.check(ev is not None and "maxPendingPerAddress" in ev.get("reason", ""),
                 "limit.pending logged with the address and a reason", ev)
        rt.check(all(still_open(s) for s in first), "the first four stay open")
        rt.check(r.tunnel("127.0.0.3") is not None, "a client from another address opens a tunnel")
    finally:
        r.stop()


@rt.case
def authenticated_uncapped():
    r = Relay("authed", {"maxConnections": 100, "maxPendingPerAddress": 4})
    try:
        tunnels = [r.tunnel("127.0.0.4") for _ in range(6)]
        rt.check(all(t is not None for t in tunnels), "six authenticated tunnels from one address")
        idle = [r.idle("127.0.0.4") for _ in range(4)]
        extra = r.idle("127.0.0.4")
        rt.check(closed(extra), "with six tunnels open, the fifth pending one is still the one closed")
        rt.check(all(still_open(s) for s in idle), "four pending connections beside six tunnels stay")
        p = os.urandom(256)
        rt.check(all(rt.echo_roundtrip(t, p) == p for t in tunnels if t), "the six tunnels still echo")
    finally:
        r.stop()


@rt.case
def oldest_closed_over_half():
    r = Relay("oldest", {"maxConnections": 20, "maxPendingPerAddress": 4})
    try:
        since = rt.log_offset(r.log)
        socks = [r.idle("127.0.1.%d" % i) for i in range(10, 20)]
        newest = r.idle("127.0.1.20")
        rt.check(closed(socks[0]), "the eleventh pending connection closes the oldest one")
        ev = rt.wait_for_log(r.log, lambda x: x.get("event") == "limit.pending" and
                             x.get("client", "").startswith("127.0.1.10"), since=since)
        rt.check(ev is not None and "oldest" in ev.get("reason", ""),
                 "limit.pending names the oldest pending connection's address and why", ev)
        rt.check(all(still_open(s) for s in socks[1:]) and still_open(newest),
                 "the other pending connections and the newest stay")
        rt.check(r.tunnel("127.0.1.30") is not None,
                 "a Responder from another address still opens its tunnel")
        rt.check(closed(socks[1]), "...which made room by closing the next oldest")
    finally:
        r.stop()


def pp_conn(r, client):
    s = rt.connect("127.0.0.1", r.https, timeout=10)
    s.sendall(b"PROXY TCP4 %s 127.0.0.1 40000 443\r\n" % client.encode())
    r.socks.append(s)
    return s


@rt.case
def proxy_protocol_address():
    r = Relay("pp", {"maxConnections": 100, "maxPendingPerAddress": 4},
              top=("proxyProtocol = true", "trustedProxies = 127.0.0.1/32"))
    try:
        since = rt.log_offset(r.log)
        others = [pp_conn(r, "192.0.2.%d" % i) for i in range(20, 26)]
        same = [pp_conn(r, "192.0.2.7") for _ in range(4)]
        fifth = pp_conn(r, "192.0.2.7")
        rt.check(closed(fifth), "the fifth pending connection of one PROXY client address is closed")
        ev = rt.wait_for_log(r.log, lambda x: x.get("event") == "limit.pending" and
                             x.get("client", "").startswith("192.0.2.7"), since=since)
        rt.check(ev is not None, "limit.pending names the PROXY header's client address", ev)
        rt.check(all(still_open(s) for s in others + same),
                 "ten other pending connections through the same balancer address stay")
        rt.check(not pending_lines(r.log, since, client="127.0.0.1"),
                 "the balancer's own address is never the one capped")
    finally:
        r.stop()


rt.finish()

#!/usr/bin/env python3
"""test_workers.py — workers = 2 (docs/design.md): a supervisor starts two worker processes; each
worker accepts from a listening socket of its own (SO_REUSEPORT, bound by the supervisor
and handed over: two distinct sockets on one port); both accept connections (by PID in the
tunnel.open lines); a TLS session made with one worker resumes on the other (one session
cache in shared memory); /metrics answers the sum over both workers whichever one a scrape
reaches; a worker killed while connections wait in its accept queue is restarted with the
same socket and those connections are served (the supervisor keeps every socket), its
loss logged and its counters kept; SIGHUP reaches every worker; SIGUSR2 upgrades the
supervisor with its workers while clients keep connecting, and the connections the old
workers accepted — parked mid-handshake or before their request — are served by them to
the end; after that, SIGTERM closes every listening socket at once (a late client is
refused) and stops everything with exit 0."""
import os
import signal
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402
import proctest as pt  # noqa: E402
import relays  # noqa: E402

S = {}


def events(name, since=0):
    return [r for r in rt.read_json_lines(S["log"], since=since) if r.get("event") == name]


def wait_workers(n, since=0, timeout=15):
    """The worker.start records after `since` once n of them (and their start records)
    are logged; what there is after `timeout` s otherwise."""
    def started():
        starts = [e for e in events("worker.start", since) if e.get("pid", 0) > 0]
        if len(starts) >= n and len(events("start", since)) >= n + (1 if since == 0 else 0):
            return starts
        return None
    return rt.wait_until(started, timeout=timeout) or \
        [e for e in events("worker.start", since) if e.get("pid", 0) > 0]


def tunnel_pid(local_port, since, timeout=10):
    """The pid in the tunnel.open line of the client at local_port."""
    ev = rt.wait_for_log(S["log"], lambda r: r.get("event") == "tunnel.open" and
                         r.get("client", "").rsplit(":", 1)[-1] == str(local_port),
                         timeout=timeout, since=since)
    return ev.get("pid") if ev else None


def echo_target():
    return "localhost:%d" % S["con"].echo_port


@rt.case
def setup():
    tmp = rt.make_tmpdir()
    S["tmp"] = tmp
    S["con"] = rt.start_console(tmp, https=False, http=False, tls_echo=False)
    S["port"], S["https"], S["admin"] = rt.free_port(), rt.free_port(), rt.free_port()
    S["ports"] = {S["port"], S["https"], S["admin"]}
    S["log"] = os.path.join(tmp, "relay.log")
    # not relays.write_users: "p" registered as a secret would redact every p printed
    rt.write_file(os.path.join(tmp, "users.txt"), "u:p\n")
    lines = relays.relay_config(allowed_ports=[S["con"].echo_port],
                                top=["passwordFile = users.txt",
                                     "relayProId = 123e4567-e89b-12d3-a456-426614174000",
                                     "workers = 2"],
                                https=S["https"], http=S["port"], admin=S["admin"],
                                limits={"shutdownTimeout": "60s", "headerTimeout": "300s"})
    S["relay"] = relays.Relay(tmp, lines, https=S["https"], http=S["port"],
                              admin=S["admin"]).start().proc
    starts = wait_workers(2)
    rt.check_eq(len(starts), 2, "two workers started")
    S["pids"] = [e["pid"] for e in starts]
    rt.check(all(p != S["relay"].pid for p in S["pids"]), "workers are processes of their own")
    ready = rt.wait_until(lambda: all(pt.listeners_of(p, S["ports"]) for p in S["pids"]), timeout=15)
    rt.check(ready, "both workers hold their listeners")


@rt.case
def both_workers_accept():
    socks = []
    since = rt.log_offset(S["log"])
    for _ in range(24):
        st, _, s = rt.connect_tunnel("127.0.0.1", S["port"], echo_target(),
                                     headers=rt.basic("u", "p"), tls=False)
        if st == 200:
            socks.append(s)
    rt.check_eq(len(socks), 24, "24 tunnels opened")
    pids = {tunnel_pid(s.getsockname()[1], since) for s in socks}
    rt.check(pids == set(S["pids"]), "both workers accepted tunnels (pids %s)" % sorted(pids))
    for s in socks:
        s.close()


@rt.case
def each_worker_its_own_socket():
    sup = S["relay"].pid
    for port in sorted(S["ports"]):
        per = {p: [v[1] for v in pt.listeners_of(p, {port}).values()] for p in S["pids"]}
        rt.check(all(len(v) == 1 for v in per.values()),
                 "port %d: each worker holds one listening socket" % port, per)
        inodes = {v[0] for v in per.values() if v}
        rt.check_eq(len(inodes), 2, "port %d: two distinct sockets (SO_REUSEPORT), one per worker"
                    % port)
        held = sorted(v[1] for v in pt.listeners_of(sup, {port}).values())
        rt.check_eq(held, sorted(inodes), "port %d: the supervisor keeps both (it bound them, "
                    "and a restarted worker is handed the same one)" % port)
    for p in S["pids"]:
        listing = pt.fd_listing(p)
        print("measure: /proc/%d/fd (worker)\n  %s" % (p, "\n  ".join(listing)))
        problems = pt.fd_problems(p, S["ports"])
        rt.check(not problems, "worker %d: its listeners once each, its own pipes" % p, problems)
        rt.check(not [t for t in pt.fds(p).values() if "memfd" in t],
                 "worker %d: the shared-memory descriptor was closed once mapped" % p)
    print("measure: /proc/%d/fd (supervisor)\n  %s" % (sup, "\n  ".join(pt.fd_listing(sup))))


@rt.case(timeout=120)
def session_resumes_on_any_worker():
    ctx = rt.client_context(verify=False, max_version=ssl.TLSVersion.TLSv1_2)
    since = rt.log_offset(S["log"])
    first = ctx.wrap_socket(rt.connect("127.0.0.1", S["https"]), server_hostname="localhost")
    sess = first.session
    st, _, t = rt.connect_tunnel("127.0.0.1", 0, echo_target(), headers=rt.basic("u", "p"),
                                 conn=first)
    rt.check_eq(st, 200, "a tunnel over a full handshake")
    home = tunnel_pid(first.getsockname()[1], since)
    rt.check(home in S["pids"], "a worker answered the full handshake", home)
    if st == 200:
        t.close()
    resumed, tries, other = 0, 0, None
    for tries in range(1, 65):
        c = ctx.wrap_socket(rt.connect("127.0.0.1", S["https"]), server_hostname="localhost",
                            session=sess)
        resumed += 1 if c.session_reused else 0
        st, _, t = rt.connect_tunnel("127.0.0.1", 0, echo_target(), headers=rt.basic("u", "p"),
                                     conn=c)
        pid = tunnel_pid(c.getsockname()[1], since) if st == 200 else None
        if st == 200:
            t.close()
        if pid is not None and pid != home:
            other = pid
            break
    print("measure: %d reconnections until one reached the other worker, %d resumed" % (tries, resumed))
    rt.check(other in S["pids"], "a reconnection reached the other worker (within 64)", other)
    rt.check_eq(resumed, tries, "every reconnection resumed the session, on either worker")


def totals(samples):
    target = {"target": echo_target()}
    return {
        "tunnels": pt.sample(samples, "relaypro_tunnels_total", target) or 0,
        "open": pt.sample(samples, "relaypro_tunnels_open", target) or 0,
        "up": pt.sample(samples, "relaypro_tunnel_bytes_total", {"direction": "up"}),
        "down": pt.sample(samples, "relaypro_tunnel_bytes_total", {"direction": "down"}),
        "http": pt.sample(samples, "relaypro_connections_total", {"listener": "http"}),
    }


@rt.case(timeout=120)
def metrics_are_summed():
    base = totals(pt.scrape(S["admin"]))
    since = rt.log_offset(S["log"])
    socks, sent, per = [], 0, {p: 0 for p in S["pids"]}
    # Tunnels until each worker carries at least 3 (the kernel picks the worker by the
    # hash of the client's port; 64 tries leave no doubt).
    for i in range(64):
        if min(per.values()) >= 3:
            break
        st, _, s = rt.connect_tunnel("127.0.0.1", S["port"], echo_target(),
                                     headers=rt.basic("u", "p"), tls=False)
        if st != 200:
            continue
        payload = os.urandom(1000 + 37 * i)
        if rt.echo_roundtrip(s, payload) == payload:
            sent += len(payload)
        socks.append(s)
        pid = tunnel_pid(s.getsockname()[1], since)
        per[pid] = per.get(pid, 0) + 1
    n = len(socks)
    print("measure: %d tunnels, per worker %s" % (n, per))
    rt.check(min(per.values()) >= 3 and len(per) == 2, "both workers carry tunnels", per)
    scrapes = [pt.scrape(S["admin"]) for _ in range(8)]
    answered = {lb.get("pid") for x in scrapes for n, lb, _ in x or ()
                if n == "relaypro_worker_info"}
    print("measure: 8 scrapes answered by worker pids %s" % sorted(str(a) for a in answered))
    opens = [totals(x)["open"] for x in scrapes]
    rt.check_eq(opens, [base["open"] + n] * 8, "tunnels open: the sum over both workers in "
                "every scrape, whichever worker answers")
    labelled = sorted({n for x in scrapes for n, lb, _ in x
                       if "worker" in lb and n != "relaypro_worker_info"})
    rt.check_eq(labelled, [], "no sample is one worker's alone (no worker label)")
    for s in socks:
        s.close()
    closed = rt.wait_until(lambda: len(events("tunnel.close", since)) >= n, timeout=15)
    rt.check(closed, "the %d tunnels closed" % n)
    for k in range(8):
        t = totals(pt.scrape(S["admin"]))
        got = {key: (t[key] or 0) - (base[key] or 0) for key in ("tunnels", "up", "down", "http")}
        got["open"] = t["open"]
        rt.check_eq(got, {"tunnels": n, "up": sent, "down": sent, "http": n,
                          "open": base["open"]},
                    "scrape %d: counters are the sums of the traffic sent through both workers" % k)
    S["tunnels_total"] = base["tunnels"] + n


@rt.case(timeout=90)
def killed_worker_restarts_with_its_queue():
    since = rt.log_offset(S["log"])
    victim, other = S["pids"]
    sockets = pt.listeners_of(victim, {S["port"]})
    ino = next(iter(sockets.values()))[1] if sockets else None
    rt.check(ino is not None, "the victim's listening socket found")
    os.kill(victim, signal.SIGSTOP)
    conns = []
    try:
        for _ in range(32):
            c = rt.connect("127.0.0.1", S["port"], timeout=30)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            conns.append(c)
        queued = rt.wait_until(lambda: pt.tcp_sockets().get(ino, (0, 0, 0))[2], timeout=10)
    finally:
        os.kill(victim, signal.SIGKILL)
    print("measure: %s of 32 connections waited in the stopped worker's accept queue" % queued)
    rt.check(queued, "connections wait in the stopped worker's own accept queue")
    ev = rt.wait_for_log(S["log"], "worker.exit", timeout=10, since=since)
    rt.check(ev is not None and ev.get("pid") == victim, "worker.exit logged for the killed worker", ev)
    new = wait_workers(1, since=since)
    rt.check(len(new) == 1 and new[0]["pid"] != victim, "a new worker replaced it")
    answers = [rt.read_until_close(c, timeout=30) for c in conns]
    for c in conns:
        c.close()
    good = sum(1 for a in answers if a.startswith(b"HTTP/1.1 200"))
    rt.check_eq(good, 32, "every connection answered, those from the dead worker's queue by "
                "its replacement (none reset)")
    if new:
        S["pids"] = [other, new[0]["pid"]]
        mine = [v[1] for v in pt.listeners_of(new[0]["pid"], {S["port"]}).values()]
        rt.check_eq(mine, [ino], "the replacement accepts from the same socket")
    t = totals(pt.scrape(S["admin"]))
    rt.check(S.get("tunnels_total") and t["tunnels"] == S["tunnels_total"],
             "counters are kept across a worker's restart, exactly (%s == %s)"
             % (t["tunnels"], S.get("tunnels_total")))


@rt.case
def sighup_reaches_workers():
    since = rt.log_offset(S["log"])
    os.kill(S["relay"].pid, signal.SIGHUP)
    rt.wait_until(lambda: len(events("config.reload", since)) >= 2, timeout=10)
    rt.check_eq(len(events("config.reload", since)), 2, "both workers reloaded on SIGHUP")


@rt.case(timeout=120)
def supervisor_upgrade():
    since = rt.log_offset(S["log"])
    old_workers = set(S["pids"])
    parked = pt.park(S["https"], "handshake", 10) + pt.park(S["port"], "plain", 10)
    got = rt.wait_until(lambda: pt.scrape_value(S["admin"], "relaypro_connections_open",
                                                {"listener": "http"}) == 10, timeout=15)
    rt.check(got, "the old workers accepted the parked plain clients")
    # A new connection every 20 ms from before SIGUSR2 until the new workers have served
    # 50 after the old supervisor exited: counted connections, not time windows.
    load = pt.Load(S["port"], rate=50, threads=1, limit=3600, timeout=10).start()
    load.check_more(10, "the connections run before the upgrade", timeout=20)
    try:
        os.kill(S["relay"].pid, signal.SIGUSR2)
        ev = rt.wait_for_log(S["log"], "upgrade.ready", timeout=20, since=since)
        rt.check(ev is not None, "the supervisor's upgrade became ready", ev)
        new_sup = ev.get("new_pid") if ev else None
        if new_sup:
            rt.track_pid(new_sup, "new supervisor")
        ok, tunnels = 0, []
        for p in parked:
            payload = os.urandom(512)
            try:
                st, echoed, s = pt.tunnel_through(p, echo_target(), rt.basic("u", "p"), payload)
            except (OSError, ssl.SSLError):
                st, echoed, s = None, b"", None
            if st == 200 and echoed == payload:
                ok += 1
                tunnels.append(s)
        rt.check_eq(ok, 20, "every client parked before the upgrade got its tunnel")
        pids = {tunnel_pid(p.local_port, since) for p in parked}
        rt.check(pids <= old_workers, "... from the old workers (%s)" % sorted(str(x) for x in pids))
        for s in tunnels:
            s.close()
        rc = S["relay"].wait(30)
        rt.check_eq(rc, 0, "the old supervisor exits 0 after its workers drained")
        load.check_more(50, "50 more connections answered once the old supervisor exited "
                        "(by the new workers)")
    finally:
        load.stop()
    print("measure: connections during supervisor upgrade ok=%d fail=%d" % (load.ok, load.fail))
    rt.check(load.fail == 0, "no connection failed across the upgrade (%d ok)" % load.ok,
             load.errors[:3])
    new_workers = [e["pid"] for e in events("worker.start", since) if e.get("pid", 0) > 0]
    rt.check_eq(len(new_workers), 2, "the new supervisor started two workers")
    S["new_sup"] = new_sup
    S["new_workers"] = new_workers
    for p in new_workers:
        rt.track_pid(p, "new worker")


@rt.case(timeout=60)
def sigterm_stops_all():
    sup = S.get("new_sup")
    if not sup:
        rt.check(False, "no supervisor to stop")
        return
    st, _, tunnel = rt.connect_tunnel("127.0.0.1", S["port"], echo_target(),
                                      headers=rt.basic("u", "p"), tls=False)
    rt.check_eq(st, 200, "a tunnel keeps a worker draining")
    since = rt.log_offset(S["log"])
    os.kill(sup, signal.SIGTERM)
    stopping = rt.wait_until(lambda: len(events("stopping", since)) >= 3, timeout=15)
    rt.check(stopping, "the supervisor and both workers are stopping")
    for port in sorted(S["ports"]):
        rt.check(pt.refused(port), "port %d: a late client is refused at once" % port)
    if st == 200:
        payload = os.urandom(2048)
        rt.check(rt.echo_roundtrip(tunnel, payload) == payload, "the open tunnel still echoes")
        tunnel.close()
    procs = [sup] + S.get("new_workers", [])
    rt.check(rt.wait_until(lambda: not any(rt.pid_alive(p) for p in procs), timeout=30),
             "SIGTERM stops the supervisor and its workers")


if __name__ == "__main__":
    rt.main("workers", deadline=600)

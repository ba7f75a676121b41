#!/usr/bin/env python3
"""Self-test of tests/console.py and tests/lib/relaytest.py (no relay involved).

Every route, the echo listeners (byte-exact, 1 MiB, half-close, TLS, openssl s_client),
registration success/401/400/injected 503 and its log, SIGTERM, and the process helpers.
Last line: `console: N passed, N failed`; exit status 1 on any failure.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

rt.init("console", deadline=120)
TMP = rt.make_tmpdir("relaytest-console-")
con = rt.start_console(TMP, ipv6=True)
PAYLOAD = os.urandom(1 << 20)


def get(path, tls=True, host="127.0.0.1", sni="localhost", **kw):
    port = con.https_port if tls else con.http_port
    return rt.http_request(host, port, kw.pop("method", "GET"), path, tls=tls,
                           cafile=con.ca if tls else None, server_hostname=sni, **kw)


@rt.case
def port_file_and_ready():
    for k in ("https", "http", "echo", "tls_echo"):
        rt.check(isinstance(con.ports.get(k), int) and con.ports[k] > 0, "port file: " + k)
    rt.check(os.path.exists(con.ca), "CA file written")
    rt.check_eq(sorted(con.ipv6), ["echo", "http", "https", "tls_echo"], "::1 listeners")
    rt.check(con.proc.alive(), "console running")


@rt.case
def certificate():
    r = subprocess.run(["openssl", "verify", "-CAfile", con.ca, con.cert],
                       capture_output=True, text=True, timeout=10)
    rt.check(r.returncode == 0, "openssl verify leaf against CA", r.stderr)
    r = subprocess.run(["openssl", "x509", "-in", con.cert, "-noout", "-ext",
                        "subjectAltName"], capture_output=True, text=True, timeout=10)
    for want in ("DNS:localhost", "DNS:console.test", "IP Address:127.0.0.1"):
        rt.check(want in r.stdout, "leaf SAN " + want, r.stdout)


@rt.case
def app_check():
    want = {"status": "ok", "service": "test-console"}
    for sni in ("localhost", "console.test", "127.0.0.1"):
        r = get("/api/app/check", sni=sni)
        rt.check(r.status == 200 and r.json() == want, "https check, verified as " + sni, r)
    rt.check_eq(get("/api/app/check").body, b'{"status":"ok","service":"test-console"}\n',
                "check body is compact JSON")
    r = get("/api/app/check", host="::1")
    rt.check(r.status == 200 and r.json() == want, "https check over ::1", r)
    r = get("/api/app/check", tls=False)
    rt.check(r.status == 200 and r.json() == want, "http check", r)
    rt.check_eq(r.headers.get("connection"), "close", "Connection: close")
    rt.check_eq(int(r.headers.get("content-length")), len(r.body), "Content-Length")
    s = rt.tls_connect("127.0.0.1", con.https_port, con.ca, "localhost", alpn=["http/1.1"])
    rt.check_eq(s.selected_alpn_protocol(), "http/1.1", "ALPN http/1.1")
    s.close()
    if shutil.which("curl"):
        r = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", con.ca,
                            "https://localhost:%d/api/app/check" % con.https_port],
                           capture_output=True, text=True, timeout=10)
        rt.check(r.returncode == 0 and json.loads(r.stdout or "{}") == want,
                 "curl --cacert https check", r.stderr)
    else:
        rt.skip("curl https check", "curl not installed")
    try:
        rt.tls_connect("127.0.0.1", con.https_port, con.ca, "wrong.example").close()
        rt.check(False, "wrong name is refused")
    except Exception as e:
        rt.check("match" in str(e) or "certificate" in str(e), "wrong name is refused", e)


@rt.case
def not_found_and_bad_requests():
    rt.check_eq(get("/nothing").status, 404, "unknown path 404")
    rt.check_eq(get("/api/relaypro/register").status, 404, "GET register 404")
    rt.check_eq(get("/api/app/check", tls=False, method="POST").status, 404,
                "POST check 404")
    s = rt.connect("127.0.0.1", con.http_port)
    r = rt.parse_response(rt.http_exchange(s, b"GARBAGE\r\n\r\n"))
    s.close()
    rt.check_eq(r.status, 400, "malformed request line 400")
    s = rt.connect("127.0.0.1", con.http_port)
    big = b"GET / HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n"
    r = rt.parse_response(rt.http_exchange(s, big))
    s.close()
    rt.check_eq(r.status, 431, "oversized head 431")


def register_body(**over):
    doc = {"organizationId": con.org, "deploymentToken": con.deployment_token,
           "relayProId": "5f0c8a1e-0000-4000-8000-000000000001", "hostname": "relay-1",
           "version": "0.1.0"}
    doc.update(over)
    return doc


@rt.case
def register():
    off = rt.log_offset(con.register_log)
    before = len(con.register_attempts())
    r = get("/api/relaypro/register", method="POST", body=register_body())
    rt.check_eq(r.status, 200, "register ok 200")
    rt.check_eq(r.json(), {"relayId": 7, "securityToken": "test-security-token"},
                "register ok body")
    cases = [("wrong token", register_body(deploymentToken="nope"), 401),
             ("wrong org", register_body(organizationId=2), 401),
             ("org as string", register_body(organizationId=str(con.org)), 401),
             ("no token", {"organizationId": con.org}, 401),
             ("not JSON", b"{not json", 400)]
    for name, body, want in cases:
        r = get("/api/relaypro/register", method="POST", body=body, tls=False,
                headers={"Content-Type": "application/json"} if isinstance(body, bytes)
                else None)
        rt.check_eq(r.status, want, "register %s -> %d" % (name, want))
        if want == 401:
            rt.check_eq(r.json(), {"error": "unauthorized"}, "register %s body" % name)
    rec = rt.wait_for_log(con.register_log, {"status": 200, "result": "ok"}, 5, since=off)
    rt.check(rec is not None, "wait_for_log finds the 200 attempt")
    if rec:
        rt.check_eq(rec.get("relayProId"), "5f0c8a1e-0000-4000-8000-000000000001",
                    "log has relayProId")
        rt.check_eq(rec.get("contentType"), "application/json", "log has content type")
        rt.check(rec.get("deploymentTokenMatch") is True, "log says token matched")
    attempts = con.register_attempts()
    rt.check_eq(len(attempts) - before, 1 + len(cases), "one log line per attempt")
    with open(con.register_log) as f:
        text = f.read()
    rt.check(con.deployment_token not in text and con.security_token not in text
             and "nope" not in text, "no token values in register.log")


@rt.case
def echo_headers():
    s = rt.connect("127.0.0.1", con.http_port)
    req = (b"POST http://localhost/echo-headers?x=1 HTTP/1.1\r\nHost: localhost\r\n"
           b"X-Dup: a\r\nx-dup: b\r\nContent-Length: 5\r\n\r\nhello")
    r = rt.parse_response(rt.http_exchange(s, req))
    s.close()
    rt.check_eq(r.status, 200, "echo-headers 200")
    doc = r.json()
    rt.check_eq(doc["request_line"], "POST http://localhost/echo-headers?x=1 HTTP/1.1",
                "request line as received")
    rt.check_eq(doc["headers"], [["Host", "localhost"], ["X-Dup", "a"], ["x-dup", "b"],
                                 ["Content-Length", "5"]], "headers in order, as written")
    rt.check_eq(doc["body_sha256"], hashlib.sha256(b"hello").hexdigest(), "body hash")
    rt.check_eq(doc["tls"], False, "echo-headers over http says tls=false")
    r = get("/echo-headers", headers=[("Proxy-Authorization", "Bearer x")])
    rt.check(r.status == 200 and ["Proxy-Authorization", "Bearer x"] in r.json()["headers"]
             and r.json()["tls"] is True, "echo-headers over https", r)
    chunked = (b"POST /echo-headers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    s = rt.connect("127.0.0.1", con.http_port)
    r = rt.parse_response(rt.http_exchange(s, chunked))
    s.close()
    rt.check_eq(r.json().get("body_length"), 5, "chunked body decoded")


@rt.case
def bytes_and_slow():
    r = get("/bytes?n=1000000", tls=False, timeout=10)
    want = bytes(i % 251 for i in range(1000000))
    rt.check(r.status == 200 and r.body == want, "/bytes 1e6 pattern", r.status)
    # What proves the route is the answer it gives and the console's own record of it; the
    # time is bounded from below only (the sleep happens before the answer, and no load makes
    # it come sooner). The client's 30 s timeout bounds the test, not the behaviour.
    off = rt.log_offset(con.proc.stderr_path)
    t0 = time.monotonic()
    r = get("/slow?ms=300", timeout=30)
    dt = time.monotonic() - t0
    rt.check(r.status == 200 and r.json() == {"slept_ms": 300}, "/slow?ms=300 -> 200 {\"slept_ms\":300}",
             r)
    rt.check(dt >= 0.3, "/slow?ms=300 answers not before its 300 ms", "%.2fs" % dt)
    rec = rt.wait_for_log(con.proc.stderr_path, {"event": "http.request", "path": "/slow",
                                                 "status": 200}, timeout=30, since=off)
    rt.check(rec is not None, "/slow logged as one http.request with status 200", rec)


@rt.case
def echo_plain():
    for host in ("127.0.0.1", "::1"):
        s = rt.connect(host, con.echo_port)
        got, eof = rt.pump(s, PAYLOAD, timeout=10, expect=len(PAYLOAD))
        rt.check(got == PAYLOAD, "echo 1 MiB byte-exact over %s" % host, len(got))
        s.close()
    s = rt.connect("127.0.0.1", con.echo_port)
    got, eof = rt.pump(s, PAYLOAD, timeout=10, half_close=True)
    rt.check(got == PAYLOAD and eof, "half-close: all echoed, then EOF",
             "%d bytes, eof=%s" % (len(got), eof))
    s.close()
    s = rt.connect("127.0.0.1", con.echo_port)
    rt.check(rt.echo_roundtrip(s, PAYLOAD[:200000]) == PAYLOAD[:200000], "echo_roundtrip")
    s.shutdown(socket.SHUT_WR)
    rt.check_eq(rt.read_until_close(s, 3), b"", "EOF after half-close, nothing extra")
    s.close()
    # A client that half-closes right away gets EOF back at once.
    # "At once" is proven by the cause: the client sees a FIN (not its own 30 s timeout) and
    # the console records that the connection ended on the client's EOF with 0 bytes, not on
    # its idle limit (which would say end "timeout").
    off = rt.log_offset(con.proc.stderr_path)
    s = rt.connect("127.0.0.1", con.echo_port)
    port = s.getsockname()[1]
    s.shutdown(socket.SHUT_WR)
    data, how = rt.read_all(s, timeout=30)
    rt.check(data == b"" and how == "eof", "immediate half-close -> EOF back, nothing sent",
             (data, how))
    s.close()
    rec = rt.wait_for_log(con.proc.stderr_path, {"event": "echo.close", "listener": "echo",
                                                 "bytes": 0}, timeout=30, since=off)
    rt.check(rec is not None and rec.get("end") == "eof",
             "immediate half-close: the console ended it on the client's EOF", rec)


@rt.case
def echo_concurrent():
    results = []

    def one(i):
        data = os.urandom(65536 + i)
        try:
            s = rt.connect("127.0.0.1", con.echo_port)
            got, _ = rt.pump(s, data, timeout=10, half_close=True)
            s.close()
            results.append(got == data)
        except Exception:
            results.append(False)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    rt.check(len(results) == 32 and all(results), "32 concurrent echo clients",
             "%d/%d ok" % (sum(results), len(results)))


@rt.case
def echo_tls():
    s = rt.tls_connect("127.0.0.1", con.tls_echo_port, con.ca, "localhost")
    got, _ = rt.pump(s, PAYLOAD, timeout=10, expect=len(PAYLOAD))
    rt.check(got == PAYLOAD, "TLS echo 1 MiB byte-exact (pump)", len(got))
    rt.check_eq(rt.echo_roundtrip(s, b"x" * 50000), b"x" * 50000, "TLS echo_roundtrip")
    s.close()
    s = rt.tls_connect("::1", con.tls_echo_port, con.ca, "localhost",
                       max_version=ssl.TLSVersion.TLSv1_2)
    rt.check_eq(s.version(), "TLSv1.2", "TLS 1.2 offered and accepted")
    rt.check_eq(rt.echo_roundtrip(s, b"abc"), b"abc", "TLS 1.2 echo over ::1")
    s.close()
    # openssl s_client: feed the payload, read it all back, then close stdin.
    data = PAYLOAD[:300000]
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % con.tls_echo_port,
                          "-CAfile", con.ca, "-verify_return_error", "-servername", "localhost",
                          "-quiet", "-nocommands", "-no_ign_eof"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    got = bytearray()
    try:
        w = threading.Thread(target=lambda: (p.stdin.write(data), p.stdin.flush()))
        w.start()
        end = time.monotonic() + 10
        fd = p.stdout.fileno()
        while len(got) < len(data) and time.monotonic() < end:
            piece = os.read(fd, 65536)
            if not piece:
                break
            got += piece
        w.join(5)
        p.stdin.close()
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stdout.close()
    rt.check(bytes(got) == data and rc == 0, "openssl s_client TLS echo byte-exact",
             "%d bytes, rc=%s" % (len(got), rc))


@rt.case
def tls_over_and_tls_wrap():
    # TLSOver speaks TLS over any sendall/recv object; here a plain socket to HTTPS.
    raw = rt.connect("127.0.0.1", con.https_port)
    t = rt.TLSOver(raw, rt.client_context(con.ca), "localhost")
    t.sendall(rt.build_request("GET", "/api/app/check", {"Connection": "close"},
                               host="localhost"))
    r = rt.parse_response(rt.read_until_close(t, 5))
    rt.check(r.status == 200 and r.json()["status"] == "ok", "TLSOver request", r)
    t.close()
    # TLS inside TLS: outer TLS to the TLS echo port reflects the inner ClientHello, so
    # the inner handshake must fail cleanly (not hang).
    # The failure must be the TLS layer's (our own ClientHello came back where a ServerHello
    # belongs), not our 30 s timeout: a hang ends in socket.timeout and fails the check.
    outer = rt.tls_connect("127.0.0.1", con.tls_echo_port, con.ca, "localhost")
    try:
        rt.tls_wrap(outer, con.ca, "localhost", timeout=30)
        rt.check(False, "inner TLS against an echo fails")
    except Exception as e:
        rt.check(isinstance(e, ssl.SSLError) and not isinstance(e, socket.timeout),
                 "inner TLS against an echo fails with a TLS error, not a timeout",
                 "%s: %s" % (type(e).__name__, e))
    outer.close()


def fake_proxy(target_port, status_line=b"HTTP/1.1 200 Connection established"):
    """A one-shot plain CONNECT proxy to the console's echo port, for connect_tunnel."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(10)

    def run():
        try:
            c, _ = ls.accept()
        except OSError:
            return
        finally:
            ls.close()
        c.settimeout(10)
        head = rt.recv_head(c, 8192)
        if head is None:
            return
        rest = head.split(b"\r\n\r\n", 1)[1]
        if not status_line.startswith(b"HTTP/1.1 200"):
            body = b'{"error":"forbidden_target"}\n'
            c.sendall(status_line + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % len(body) + body)
            c.close()
            return
        up = socket.create_connection(("127.0.0.1", target_port), timeout=10)
        c.sendall(status_line + b"\r\n\r\n")
        up.sendall(rest)

        def back():
            while True:
                try:
                    d = up.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    try:
                        c.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                c.sendall(d)
        bt = threading.Thread(target=back, daemon=True)
        bt.start()
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            if not d:
                up.shutdown(socket.SHUT_WR)
                break
            up.sendall(d)
        bt.join(10)
        c.close()
        up.close()
    threading.Thread(target=run, daemon=True).start()
    return ls.getsockname()[1]


@rt.case
def connect_tunnel_helper():
    port = fake_proxy(con.echo_port)
    status, h, sock = rt.connect_tunnel("127.0.0.1", port, "localhost:%d" % con.echo_port,
                                        rt.bearer("tok"), tls=False, pipelined=b"early")
    rt.check_eq(status, 200, "connect_tunnel 200")
    rt.check_eq(h.status_line, "HTTP/1.1 200 Connection established", "status line kept")
    got, eof = rt.pump(sock, PAYLOAD[:100000], timeout=10, half_close=True)
    rt.check(got == b"early" + PAYLOAD[:100000] and eof,
             "tunnel: pipelined bytes first, then byte-exact, half-close", len(got))
    sock.close()
    port = fake_proxy(con.echo_port, b"HTTP/1.1 403 Forbidden")
    status, h, body = rt.connect_tunnel("127.0.0.1", port, "evil:443", tls=False)
    rt.check(status == 403 and json.loads(body)["error"] == "forbidden_target",
             "connect_tunnel refusal: status and body", (status, body))


@rt.case
def jwt_helper():
    tok = rt.jwt_hs256({"sub": "1234567890", "name": "John Doe", "iat": 1516239022},
                       "your-256-bit-secret")
    rt.check_eq(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFt"
                     "ZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36P"
                     "Ok6yJV_adQssw5c", "jwt_hs256 known answer (jwt.io)")
    h, c = rt.jwt_decode_unverified(tok)
    rt.check_eq((h["alg"], c["sub"]), ("HS256", "1234567890"), "jwt_decode_unverified")


@rt.case
def register_injected_failures():
    c2 = rt.start_console(TMP, name="console2", https=False, echo=False, tls_echo=False,
                          fail_register=2, org=42, relay_id=99, security_token="s2")
    rt.check(c2.https_port is None and c2.ca is None, "http-only console has no TLS")
    codes = [rt.http_request("127.0.0.1", c2.http_port, "POST", "/api/relaypro/register",
                             body={"organizationId": 42,
                                   "deploymentToken": "test-deployment-token"}).status
             for _ in range(3)]
    rt.check_eq(codes, [503, 503, 200], "--fail-register 2")
    rt.check_eq([a["result"] for a in c2.register_attempts()],
                ["injected_failure", "injected_failure", "ok"], "injected failures logged")
    # Exit 0 means the console left on its own (stop() escalates to SIGKILL, -9, after its
    # generous 30 s); its stop record says it left through the SIGTERM path.
    rc = c2.stop(timeout=30)
    rt.check_eq(rc, 0, "SIGTERM: exit 0 (on its own, not killed)")
    rt.check(rt.wait_for_log(c2.proc.stderr_path, "stop", timeout=5) is not None,
             "SIGTERM: the console logged its stop record")
    rt.check(not rt.wait_for_port("127.0.0.1", c2.http_port, 0.3), "port closed after stop")


@rt.case
def process_helpers():
    p = rt.start_process(["sleep", "30"], tmpdir=TMP, name="sleeper")
    rt.check_eq(p.stop(timeout=5), -signal.SIGTERM, "stop: SIGTERM by PID")
    p = rt.start_process([sys.executable, "-c",
                          "import signal,time,sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                          "print('up', flush=True); time.sleep(30)"],
                         tmpdir=TMP, name="stubborn")
    rt.check(p.wait_for_output("up", 10), "wait_for_output")
    # stop() gives SIGTERM its grace period (a lower bound no load can break), then kills:
    # the exit status and the empty process group prove the kill, not a stopwatch.
    t0 = time.monotonic()
    rt.check_eq(p.stop(timeout=0.5), -signal.SIGKILL, "stop: SIGKILL after bounded wait")
    took = time.monotonic() - t0
    rt.check(took >= 0.5, "stop: SIGTERM given its 0.5 s before SIGKILL", "%.2fs" % took)
    rt.check(not p.alive() and rt._group_members(p.pid) == [],
             "stop: nothing of the stubborn process is left (pid and group)")
    # A leader that exits and leaves a child behind: the child is stopped through the group.
    p = rt.start_process(["sh", "-c", "sleep 60 & echo $!; exit 0"], tmpdir=TMP, name="orphan")
    rt.check(p.wait_for_output("\n", 5), "orphan pid printed")
    child = int(p.stdout().split()[0])
    p.stop(timeout=2)

    def gone():
        try:
            with open("/proc/%d/stat" % child) as f:
                return f.read().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True
    rt.check(rt.wait_until(gone, 3), "group leftover stopped")
    p = rt.start_process([sys.executable, "-c", "import os; print(os.environ.get('RELAYPRO_X'),"
                          " os.environ.get('Y'))"], env={"Y": "1"}, tmpdir=TMP, name="envp")
    p.wait(5)
    rt.check_eq(p.stdout().strip(), "None 1", "environment scrubbed and extended")
    rt.check(rt.free_port() > 0, "free_port")
    try:
        rt.connect("192.0.2.1", 80)
        rt.check(False, "non-loopback refused")
    except ValueError:
        rt.check(True, "non-loopback refused")


@rt.case
def sigterm_main_console():
    rc = con.stop()
    rt.check_eq(rc, 0, "console exits 0 on SIGTERM")
    err = con.proc.stderr()
    rt.check('"event": "stop"' in err, "console logged stop")


if __name__ == "__main__":
    os.environ["RELAYPRO_X"] = "leak"
    rt.finish()

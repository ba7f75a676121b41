#!/usr/bin/env python3
"""Test console for relaypro's integration tests and the local demo (`make run`).

Contract
--------
One process, Python 3 standard library only, listening on loopback only
(127.0.0.1, plus ::1 with --ipv6). Each listener is enabled by its port flag; port 0
picks an ephemeral port, and the ports actually bound are written to --port-file (JSON)
before the single line `READY` is printed to stdout. Everything else (one JSON line per
connection or request) goes to stderr.

  --https-port P     HTTPS (TLS 1.2/1.3, ALPN http/1.1) with the routes below
  --http-port P      the same routes over plain HTTP
  --echo-port P      raw TCP echo, byte-exact; on client EOF: echo the rest,
                     shutdown(SHUT_WR), close
  --tls-echo-port P  TLS echo with the same certificate; on close_notify/EOF: close_notify, close
  --tls-ciphers L    TLS 1.2 at most, with only the OpenSSL cipher list L (e.g. CBC or static
                     RSA suites, "@SECLEVEL=0" to allow SHA-1 ones): a console weaker than
                     the relay's TLS policy, which the relay must refuse

Routes (HTTP/1.1, one request per connection, every answer has Content-Length and
`Connection: close`; bodies are JSON unless noted):
  GET  /api/app/check          200 {"status":"ok","service":"test-console"}
  POST /api/relaypro/register  200 {"relayId":N,"securityToken":"..."} when deploymentToken
                               and organizationId (a JSON integer) match --deployment-token
                               and --org; 401 {"error":"unauthorized"} otherwise; 400
                               {"error":"bad_request"} when the body is not a JSON object;
                               503 for the first --fail-register N attempts. Every attempt is
                               appended to DIR/register.log as one JSON line, never with a
                               token value.
  ANY  /echo-headers           200 {"request_line","method","target","version",
                               "headers":[[name,value],...],"body_length","body_sha256",
                               "tls","peer"} -- headers exactly as received, in order.
  GET  /bytes?n=N              200, N bytes (N <= 64 MiB) of application/octet-stream,
                               byte i = i % 251, for throughput tests.
  GET  /slow?ms=N              200 {"slept_ms":N} after N ms (N <= 60000), for timeout tests.
  anything else                404 {"error":"not_found"}

Certificates: at start `openssl` (the command-line tool) writes into --dir:
  console-ca.pem / console-ca-key.pem   test CA (reused when both exist, unless --new-ca)
  console-cert.pem / console-key.pem    leaf for localhost, console.test, 127.0.0.1, ::1
                                        (+ every --san), signed by the CA, minted every start
so clients verify with `--cacert DIR/console-ca.pem`.

Bounds: at most --max-conns concurrent connections (extra ones are closed at once);
every socket operation has a timeout (--io-timeout, TLS handshake and request heads
10 s); request heads <= 32 KiB, bodies <= 1 MiB. SIGTERM/SIGINT: listeners close and the
process exits 0 at once. --exit-with-parent makes it exit when its parent goes away, so
a crashed test never leaves it behind.
"""

import argparse
import errno
import hashlib
import ipaddress
import json
import os
import secrets
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

MAX_HEAD = 32 * 1024
MAX_BODY = 1024 * 1024
MAX_BYTES_ROUTE = 64 * 1024 * 1024
MAX_SLOW_MS = 60000
HEAD_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0

STOP = threading.Event()
_log_lock = threading.Lock()
_quiet = False


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def log(event, **fields):
    """One JSON line on stderr per event; never raises."""
    if _quiet:
        return
    rec = {"ts": now_iso(), "event": event}
    rec.update(fields)
    line = json.dumps(rec, sort_keys=False) + "\n"
    with _log_lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except Exception:
            pass


# ---------------------------------------------------------------- certificates

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[v3_ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,{leaf_ku}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = @alt
[alt]
{alt}
"""


def _openssl(argv, what):
    try:
        r = subprocess.run(["openssl"] + argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except FileNotFoundError:
        sys.exit("console: the openssl command-line tool is required")
    except subprocess.TimeoutExpired:
        sys.exit("console: openssl timed out while %s" % what)
    if r.returncode != 0:
        sys.exit("console: openssl failed while %s: %s"
                 % (what, r.stderr.decode("utf-8", "replace").strip()))


def _newkey_args(key_type):
    if key_type == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    return ["-newkey", "rsa:2048"]


def _write_cnf(path, cn, key_type, sans):
    dns, ips = [], []
    for s in sans:
        try:
            ips.append(str(ipaddress.ip_address(s)))
        except ValueError:
            dns.append(s)
    alt = ["DNS.%d = %s" % (i + 1, d) for i, d in enumerate(dns)]
    alt += ["IP.%d = %s" % (i + 1, a) for i, a in enumerate(ips)]
    leaf_ku = "digitalSignature" if key_type == "ec" else "digitalSignature,keyEncipherment"
    with open(path, "w") as f:
        f.write(OPENSSL_CNF.format(cn=cn, alt="\n".join(alt), leaf_ku=leaf_ku))


def make_certs(d, key_type, extra_sans, new_ca):
    """Create (or reuse) the test CA and mint a fresh leaf; return (cert, key, ca) paths.

    Files are written under temporary names and renamed, so a reader never sees half a file.
    """
    os.makedirs(d, exist_ok=True)
    ca, ca_key = os.path.join(d, "console-ca.pem"), os.path.join(d, "console-ca-key.pem")
    cert, key = os.path.join(d, "console-cert.pem"), os.path.join(d, "console-key.pem")
    tag = ".tmp-%d" % os.getpid()
    sans = []
    for s in ["localhost", "console.test", "127.0.0.1", "::1"] + list(extra_sans):
        if s and s not in sans:
            sans.append(s)
    cnf = os.path.join(d, "console-openssl.cnf" + tag)
    try:
        if new_ca or not (os.path.exists(ca) and os.path.exists(ca_key)):
            _write_cnf(cnf, "relaypro test console CA", key_type, sans)
            _openssl(["req", "-x509", "-config", cnf, "-extensions", "v3_ca", "-nodes"]
                     + _newkey_args(key_type)
                     + ["-keyout", ca_key + tag, "-out", ca + tag, "-days", "3650", "-sha256",
                        "-set_serial", "0x" + secrets.token_hex(15)], "creating the test CA")
            os.chmod(ca_key + tag, 0o600)
            os.replace(ca_key + tag, ca_key)
            os.replace(ca + tag, ca)
        _write_cnf(cnf, "localhost", key_type, sans)
        csr = os.path.join(d, "console.csr" + tag)
        _openssl(["req", "-new", "-config", cnf, "-nodes"] + _newkey_args(key_type)
                 + ["-keyout", key + tag, "-out", csr], "creating the leaf key")
        _openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                  "-set_serial", "0x" + secrets.token_hex(15), "-days", "90", "-sha256",
                  "-extfile", cnf, "-extensions", "v3_leaf", "-out", cert + tag],
                 "signing the leaf certificate")
        os.chmod(key + tag, 0o600)
        os.replace(key + tag, key)
        os.replace(cert + tag, cert)
    finally:
        for p in (cnf, os.path.join(d, "console.csr" + tag), ca + tag, ca_key + tag,
                  cert + tag, key + tag):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    return cert, key, ca


def server_context(cert, key, alpn, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites ignore set_ciphers
        ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# ---------------------------------------------------------------- connection plumbing

class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        t = self.end - time.monotonic()
        if t <= 0:
            raise socket.timeout("deadline passed")
        return t


def recv_some(sock, n, deadline=None, io_timeout=None):
    """One recv with the tighter of the two limits; b'' on EOF (ragged TLS EOF included)."""
    t = io_timeout
    if deadline is not None:
        left = deadline.left()
        t = left if t is None else min(t, left)
    sock.settimeout(t)
    try:
        return sock.recv(n)
    except ssl.SSLEOFError:
        return b""
    except ssl.SSLZeroReturnError:
        return b""


def finish_conn(sock, tls, linger=False):
    """End a connection politely: TLS close_notify or TCP FIN, then close. Never raises.

    linger: after the FIN, read and drop what the peer still sends (at most 1 s / 1 MiB),
    so that unread request bytes do not turn our close() into a RST that could destroy the
    response before the client has read it.
    """
    try:
        sock.settimeout(2.0)
        if tls:
            try:
                sock.unwrap()  # sends close_notify (and reads the peer's if it comes)
            except (OSError, ValueError, ssl.SSLError):
                pass
        else:
            sock.shutdown(socket.SHUT_WR)
            if linger:
                dl, n = Deadline(1.0), 0
                while n < MAX_BODY:
                    data = recv_some(sock, 65536, deadline=dl)
                    if not data:
                        break
                    n += len(data)
    except (OSError, ValueError):
        pass
    try:
        sock.close()
    except OSError:
        pass


class Console:
    def __init__(self, args):
        self.args = args
        self.conn_slots = threading.BoundedSemaphore(args.max_conns)
        self.reg_lock = threading.Lock()
        self.reg_attempts = 0
        self.ssl_http = None
        self.ssl_echo = None
        self.listeners = []  # (socket, kind)
        self.ports = {}
        self.ipv6 = []

    # -- listeners

    def _bind_one(self, family, host, port):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
            s.listen(128)
            s.setblocking(False)
            return s
        except OSError:
            s.close()
            raise

    def bind(self, kind, port):
        """127.0.0.1:port, and ::1 on the same port with --ipv6 (best effort for port 0)."""
        last = None
        for _ in range(20):
            s4 = self._bind_one(socket.AF_INET, "127.0.0.1", port)
            real = s4.getsockname()[1]
            if not self.args.ipv6:
                self.listeners.append((s4, kind))
                self.ports[kind] = real
                return
            try:
                s6 = self._bind_one(socket.AF_INET6, "::1", real)
            except OSError as e:
                last = e
                if e.errno == errno.EADDRINUSE and port == 0:
                    s4.close()
                    continue  # the v6 twin of our ephemeral port is taken: pick another
                log("ipv6.unavailable", listener=kind, error=str(e))
                self.listeners.append((s4, kind))
                self.ports[kind] = real
                return
            self.listeners.append((s4, kind))
            self.listeners.append((s6, kind))
            self.ports[kind] = real
            self.ipv6.append(kind)
            return
        sys.exit("console: cannot bind %s on 127.0.0.1 and ::1: %s" % (kind, last))

    # -- accept loop

    def serve(self):
        sel = selectors.DefaultSelector()
        for s, kind in self.listeners:
            sel.register(s, selectors.EVENT_READ, kind)
        rfd, wfd = socket.socketpair()
        rfd.setblocking(False)
        wfd.setblocking(False)
        signal.set_wakeup_fd(wfd.fileno(), warn_on_full_buffer=False)
        sel.register(rfd, selectors.EVENT_READ, None)
        parent = os.getppid()
        started = time.monotonic()
        while not STOP.is_set():
            if self.args.exit_with_parent and os.getppid() != parent:
                log("parent.gone")
                break
            if self.args.lifetime and time.monotonic() - started > self.args.lifetime:
                log("lifetime.over")
                break
            for key, _ in sel.select(timeout=0.5):
                if key.data is None:
                    try:
                        rfd.recv(512)
                    except OSError:
                        pass
                    continue
                self._accept(key.fileobj, key.data)
        signal.set_wakeup_fd(-1)
        sel.close()
        rfd.close()
        wfd.close()
        for s, _ in self.listeners:
            s.close()

    def _accept(self, lsock, kind):
        for _ in range(64):  # bounded batch per wake-up
            try:
                conn, peer = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # EMFILE/ENFILE and friends: back off instead of spinning on the listener.
                log("accept.error", listener=kind, error=str(e))
                time.sleep(0.1)
                return
            if not self.conn_slots.acquire(blocking=False):
                log("conn.refused", listener=kind, peer=peer[0], reason="max-conns")
                conn.close()
                continue
            conn.setblocking(True)
            t = threading.Thread(target=self._run, args=(conn, peer, kind), daemon=True)
            try:
                t.start()
            except RuntimeError:
                self.conn_slots.release()
                conn.close()

    def _run(self, conn, peer, kind):
        try:
            if kind == "https":
                self._tls_then(conn, peer, self.ssl_http, self.handle_http, kind)
            elif kind == "http":
                self.handle_http(conn, peer, False, kind)
            elif kind == "echo":
                self.handle_echo(conn, peer, False, kind)
            elif kind == "tls_echo":
                self._tls_then(conn, peer, self.ssl_echo, self.handle_echo, kind)
        except Exception as e:  # one bad peer never takes the process down
            log("conn.error", listener=kind, peer=peer[0], error="%s: %s" % (type(e).__name__, e))
            try:
                conn.close()
            except OSError:
                pass
        finally:
            self.conn_slots.release()

    def _tls_then(self, conn, peer, ctx, handler, kind):
        conn.settimeout(HANDSHAKE_TIMEOUT)
        tconn = None
        try:
            tconn = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            tconn.do_handshake()
        except (OSError, ssl.SSLError) as e:
            log("tls.fail", listener=kind, peer=peer[0], error=str(e))
            (tconn or conn).close()  # wrap_socket moved the descriptor into tconn
            return
        handler(tconn, peer, True, kind)

    # -- echo

    def handle_echo(self, sock, peer, tls, kind):
        total = 0
        how = "eof"
        try:
            while not STOP.is_set():
                data = recv_some(sock, 65536, io_timeout=self.args.io_timeout)
                if not data:
                    break
                sock.settimeout(self.args.io_timeout)
                sock.sendall(data)
                total += len(data)
        except socket.timeout:
            how = "timeout"
        except (OSError, ssl.SSLError) as e:
            how = "error: %s" % e
        finish_conn(sock, tls)
        log("echo.close", listener=kind, peer=peer[0], bytes=total, end=how)

    # -- HTTP

    def read_request(self, sock):
        """Return (request_line, headers, body) or an int status for a bad request."""
        dl = Deadline(HEAD_TIMEOUT)
        buf = b""
        while True:
            for sep in (b"\r\n\r\n", b"\n\n"):
                i = buf.find(sep)
                if i >= 0:
                    head, rest = buf[:i], buf[i + len(sep):]
                    break
            else:
                if len(buf) > MAX_HEAD:
                    return 431
                data = recv_some(sock, 16384, deadline=dl)
                if not data:
                    return None
                buf += data
                continue
            break
        if len(head) > MAX_HEAD:
            return 431
        lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
        reqline = lines[0]
        parts = reqline.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400
        headers = []
        for ln in lines[1:]:
            if ":" not in ln:
                return 400
            name, value = ln.split(":", 1)
            headers.append([name, value.strip(" \t")])
        hmap = {}
        for n, v in headers:
            hmap.setdefault(n.lower(), v)
        body = rest
        te = hmap.get("transfer-encoding", "").lower()
        if te:
            if te != "chunked":
                return 400
            body = self._read_chunked(sock, body, dl)
            if body is None:
                return 400
        elif "content-length" in hmap:
            try:
                n = int(hmap["content-length"])
            except ValueError:
                return 400
            if n < 0 or n > MAX_BODY:
                return 413
            while len(body) < n:
                data = recv_some(sock, min(65536, n - len(body)), deadline=dl)
                if not data:
                    return 400
                body += data
            body = body[:n]
        else:
            body = b""
        return reqline, parts, headers, hmap, body

    def _read_chunked(self, sock, buf, dl):
        out = b""
        for _ in range(100000):
            i = buf.find(b"\r\n")
            if i < 0:
                if len(buf) > 1024:
                    return None
                data = recv_some(sock, 65536, deadline=dl)
                if not data:
                    return None
                buf += data
                continue
            try:
                size = int(buf[:i].split(b";")[0].strip(), 16)
            except ValueError:
                return None
            if size < 0 or len(out) + size > MAX_BODY:
                return None
            need = i + 2 + size + 2
            while len(buf) < need:
                data = recv_some(sock, 65536, deadline=dl)
                if not data:
                    return None
                buf += data
            if size == 0:
                # Trailers are not expected from our clients; the final CRLF ends the body.
                return out
            out += buf[i + 2:i + 2 + size]
            buf = buf[need:]
        return None

    def send_response(self, sock, status, body, ctype="application/json", extra=()):
        reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                   413: "Payload Too Large", 431: "Request Header Fields Too Large",
                   503: "Service Unavailable"}
        if isinstance(body, (dict, list)):
            body = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        head = ["HTTP/1.1 %d %s" % (status, reasons.get(status, "Status")),
                "Content-Type: %s" % ctype, "Content-Length: %d" % len(body),
                "Connection: close"] + list(extra)
        sock.settimeout(self.args.io_timeout)
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def handle_http(self, sock, peer, tls, kind):
        status, path, method = None, None, None
        try:
            req = self.read_request(sock)
            if req is None:
                finish_conn(sock, tls)
                log("http.close", listener=kind, peer=peer[0], end="no request")
                return
            if isinstance(req, int):
                status = req
                self.send_response(sock, status, {"error": "bad_request"})
            else:
                reqline, parts, headers, hmap, body = req
                method, target = parts[0], parts[1]
                if "://" in target:  # absolute-form straight to the console
                    target = urllib.parse.urlsplit(target).path or "/"
                    if urllib.parse.urlsplit(parts[1]).query:
                        target += "?" + urllib.parse.urlsplit(parts[1]).query
                u = urllib.parse.urlsplit(target)
                path = u.path
                status = self.route(sock, peer, tls, kind, method, path,
                                    urllib.parse.parse_qs(u.query), reqline, parts,
                                    headers, hmap, body)
        except socket.timeout:
            log("http.close", listener=kind, peer=peer[0], end="timeout")
            finish_conn(sock, tls)
            return
        except (OSError, ssl.SSLError) as e:
            log("http.close", listener=kind, peer=peer[0], end="error: %s" % e)
            finish_conn(sock, tls)
            return
        finish_conn(sock, tls, linger=True)
        log("http.request", listener=kind, peer=peer[0], method=method, path=path, status=status)

    def route(self, sock, peer, tls, kind, method, path, query, reqline, parts, headers,
              hmap, body):
        if path == "/api/app/check" and method == "GET":
            self.send_response(sock, 200, {"status": "ok", "service": "test-console"})
            return 200
        if path == "/api/relaypro/register" and method == "POST":
            status, answer = self.register(peer, kind, hmap, body)
            self.send_response(sock, status, answer)
            return status
        if path == "/echo-headers":
            self.send_response(sock, 200, {
                "request_line": reqline, "method": parts[0], "target": parts[1],
                "version": parts[2], "headers": headers, "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(), "tls": tls,
                "peer": peer[0]})
            return 200
        if path == "/bytes" and method == "GET":
            try:
                n = int(query.get("n", ["0"])[0])
            except ValueError:
                n = -1
            if n < 0 or n > MAX_BYTES_ROUTE:
                self.send_response(sock, 400, {"error": "bad_request"})
                return 400
            pattern = bytes(i % 251 for i in range(251 * 256))  # a multiple of 251
            head = ("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n\r\n" % n).encode()
            sock.settimeout(self.args.io_timeout)
            sock.sendall(head)
            sent = 0
            while sent < n and not STOP.is_set():
                chunk = pattern[:min(len(pattern), n - sent)]
                sock.sendall(chunk)
                sent += len(chunk)
            return 200
        if path == "/slow" and method == "GET":
            try:
                ms = int(query.get("ms", ["0"])[0])
            except ValueError:
                ms = -1
            if ms < 0 or ms > MAX_SLOW_MS:
                self.send_response(sock, 400, {"error": "bad_request"})
                return 400
            STOP.wait(ms / 1000.0)
            self.send_response(sock, 200, {"slept_ms": ms})
            return 200
        self.send_response(sock, 404, {"error": "not_found"})
        return 404

    def register(self, peer, kind, hmap, body):
        """Decide a registration attempt and append it (tokens left out) to register.log."""
        a = self.args
        rec = {"ts": now_iso(), "listener": kind, "peer": peer[0],
               "contentType": hmap.get("content-type"), "userAgent": hmap.get("user-agent")}
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
        with self.reg_lock:
            self.reg_attempts += 1
            rec["attempt"] = self.reg_attempts
            if not isinstance(doc, dict):
                status, answer, result = 400, {"error": "bad_request"}, "bad_request"
            else:
                for k in ("organizationId", "relayProId", "hostname", "version"):
                    rec[k] = doc.get(k)
                tok = doc.get("deploymentToken")
                rec["deploymentTokenPresent"] = isinstance(tok, str) and tok != ""
                org = doc.get("organizationId")
                org_ok = type(org) is int and org == a.org
                tok_ok = isinstance(tok, str) and secrets.compare_digest(
                    tok.encode(), a.deployment_token.encode())
                rec["organizationIdMatch"] = org_ok
                rec["deploymentTokenMatch"] = tok_ok
                if self.reg_attempts <= a.fail_register:
                    status, answer, result = 503, {"error": "unavailable"}, "injected_failure"
                elif org_ok and tok_ok:
                    status, result = 200, "ok"
                    answer = {"relayId": a.relay_id, "securityToken": a.security_token}
                else:
                    status, answer, result = 401, {"error": "unauthorized"}, "unauthorized"
            rec["status"] = status
            rec["result"] = result
            line = (json.dumps(rec) + "\n").encode()
            fd = os.open(os.path.join(a.dir, "register.log"),
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)  # one write per record
            finally:
                os.close(fd)
        return status, answer


def parse_args(argv):
    p = argparse.ArgumentParser(description="relaypro test console (loopback only)")
    p.add_argument("--dir", required=True, help="work dir: certificates, register.log")
    p.add_argument("--https-port", type=int, help="HTTPS routes (0 = ephemeral)")
    p.add_argument("--http-port", type=int, help="plain HTTP routes (0 = ephemeral)")
    p.add_argument("--echo-port", type=int, help="raw TCP echo (0 = ephemeral)")
    p.add_argument("--tls-echo-port", type=int, help="TLS echo (0 = ephemeral)")
    p.add_argument("--port-file", help="write the bound ports as JSON here before READY")
    p.add_argument("--org", type=int, default=1, help="organizationId accepted (default 1)")
    p.add_argument("--deployment-token", default="test-deployment-token")
    p.add_argument("--security-token", default="test-security-token")
    p.add_argument("--relay-id", type=int, default=7)
    p.add_argument("--fail-register", type=int, default=0, metavar="N",
                   help="answer the first N registration attempts with 503")
    p.add_argument("--san", action="append", default=[],
                   help="extra DNS name or IP for the leaf certificate (repeatable)")
    p.add_argument("--key-type", choices=["rsa", "ec"], default="rsa",
                   help="key type of CA and leaf (default rsa 2048; ec = P-256)")
    p.add_argument("--new-ca", action="store_true", help="regenerate the CA even if present")
    p.add_argument("--tls-ciphers", metavar="LIST",
                   help="TLS 1.2 at most, only these OpenSSL ciphers (a weak console)")
    p.add_argument("--ipv6", action="store_true", help="also listen on ::1 (same ports)")
    p.add_argument("--io-timeout", type=float, default=30.0,
                   help="idle limit per socket operation, seconds (default 30)")
    p.add_argument("--max-conns", type=int, default=256)
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit when the parent process goes away")
    p.add_argument("--lifetime", type=float, default=0.0,
                   help="exit after this many seconds (0 = never)")
    p.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")
    a = p.parse_args(argv)
    ports = [a.https_port, a.http_port, a.echo_port, a.tls_echo_port]
    if all(x is None for x in ports):
        p.error("give at least one of --https-port, --http-port, --echo-port, --tls-echo-port")
    for x in ports:
        if x is not None and not 0 <= x <= 65535:
            p.error("port out of range: %d" % x)
    if a.max_conns < 1 or a.io_timeout <= 0:
        p.error("--max-conns and --io-timeout must be positive")
    return a


def main(argv):
    global _quiet
    a = parse_args(argv)
    _quiet = a.quiet
    a.dir = os.path.abspath(a.dir)

    def on_signal(signum, frame):
        STOP.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    c = Console(a)
    info = {}
    if a.https_port is not None or a.tls_echo_port is not None:
        cert, key, ca = make_certs(a.dir, a.key_type, a.san, a.new_ca)
        c.ssl_http = server_context(cert, key, alpn=True, ciphers=a.tls_ciphers)
        c.ssl_echo = server_context(cert, key, alpn=False, ciphers=a.tls_ciphers)
        info.update(ca=ca, cert=cert, key=key)
    else:
        os.makedirs(a.dir, exist_ok=True)
    for kind, port in (("https", a.https_port), ("http", a.http_port),
                       ("echo", a.echo_port), ("tls_echo", a.tls_echo_port)):
        if port is not None:
            c.bind(kind, port)
    if a.port_file:
        doc = dict(c.ports)
        doc.update(info, pid=os.getpid(), ipv6=c.ipv6, dir=a.dir,
                   register_log=os.path.join(a.dir, "register.log"))
        tmp = a.port_file + ".tmp-%d" % os.getpid()
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.write("\n")
        os.replace(tmp, a.port_file)
    log("start", ports=c.ports, ipv6=c.ipv6, pid=os.getpid())
    if STOP.is_set():
        return 0
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    c.serve()
    log("stop")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    # Handler threads are daemons blocked in socket calls; leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

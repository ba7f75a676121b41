#!/usr/bin/env python3
"""test_tokens.py — the Responder token flow end to end against the real binary
(docs/protocol.md: POST /v1/token, the tokens and per-Responder keys; docs/security.md: brute force).

Grant -> access token with curl and through a CONNECT tunnel to the test console; keep-alive
(token request and CONNECT on one TLS connection); the access token's header and claims, and
its signature recomputed in Python from the CA key (HKDF-SHA256 byte for byte); grant and
access-token rejections with their codes and challenges; tokens surviving a restart; two
instances sharing one CA bundle; a new CA bundle (ca_changed); epoch revocation; expiry;
the per-IP brute-force ban, including failures that straddle the limiter's 60 s window
(this one needs a minute of wall time: its first failure is sent at start-up and the rest
at the end, so the whole script takes about 65 s); and no secret or token in any log.

Every relay runs in its own temp dir on 127.0.0.1 with ephemeral ports and is stopped by
PID. Token values are never printed: failure details are redacted.
Last line: `tokens: N passed, N failed`; exit status 1 on any failure.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
ORG = 42
RELAY_ID = 7
SECRET = "sec-" + secrets.token_hex(16)   # the relay's securityToken
CONSOLE_CHECK = {"status": "ok", "service": "test-console"}

rt.init("tokens", deadline=170)
TMP = rt.make_tmpdir("relaytest-tokens-")

# Everything that must never show up in output or logs (relaytest redacts check lines).
rt.secret(SECRET)
JWT_RE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
rt.secret_pattern(JWT_RE, "<jwt>")
RELAYS = []
redact = rt.redact
ck, ck_eq = rt.check, rt.check_eq


def remember(tok):
    if tok:
        rt.secret(tok)
        sig = tok.rsplit(".", 1)[-1]
        if len(sig) >= 20:
            rt.secret(sig)
    return tok


# ================================================================= console and relays

try:
    CON = rt.start_console(TMP, tls_echo=False)
except Exception as e:  # no console: nothing below can run
    rt.check(False, "console starts", e)
    rt.finish()


class Relay(relays.Relay):
    """One relaypro instance: <TMP>/<name>/config.ini, log relay.log, CA in private/."""

    def __init__(self, name, token_section=None, limits=None, env=None, top=None):
        super().__init__(os.path.join(TMP, name), https=rt.free_port(), env=env)
        self.name = name
        self.bundle = (env or {}).get("RELAYPRO_CA_BUNDLE_FILE") or \
            os.path.join(self.dir, "private", "ca-bundle.pem")
        self.token_section = dict(token_section or {})
        self.limits = dict(limits or {"authFailLimit": "1000"})
        self.top = dict(top or {})
        self.write_config()
        RELAYS.append(self)

    port = property(lambda self: self.https)

    def write_config(self):
        self.write()

    def config(self):
        return relays.relay_config(
            security_token=SECRET, org=ORG, relay_id=RELAY_ID,
            allowed_ports=[CON.https_port, CON.echo_port], top=self.top, https=self.https,
            sections=[("clientAuthToken", self.token_section)] if self.token_section else (),
            limits=self.limits)

    def start(self):
        return super().start(timeout=10)

    def stop(self):
        """SIGTERM by PID; returns the exit status."""
        rc = super().stop()
        self.proc = None
        return rc

    def grant(self, sub, ttl="10m"):
        """A grant from `relaypro token grant` (the console's job, done by the CLI)."""
        return remember(super().grant(sub, ttl))

    def ca_show(self):
        """(certificate DER, printed fingerprint hex) from `relaypro ca show`."""
        r = self.cli(["ca", "show"])
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", r.stdout,
                      re.S)
        fp = re.search(r"SHA256 Fingerprint=([0-9A-F:]+)", r.stdout)
        if r.returncode != 0 or not m or not fp:
            raise RuntimeError("ca show failed: %s" % r.stderr[-500:])
        return ssl.PEM_cert_to_DER_cert(m.group(0)), fp.group(1).replace(":", "").lower()

    def ca_key_der(self):
        with open(self.bundle) as f:
            pem = f.read()
        m = re.search(r"-----BEGIN RSA PRIVATE KEY-----(.*?)-----END RSA PRIVATE KEY-----", pem,
                      re.S)
        if not m:
            raise RuntimeError("no RSA PRIVATE KEY block in the CA bundle")
        der = base64.b64decode("".join(m.group(1).split()))
        rt.secret("".join(m.group(1).split())[:64])
        return der

    # -- requests

    def post_token(self, authorization=None, conn=None, keep_open=False, headers=None, body=b""):
        """POST /v1/token; `authorization` is the whole header value (None: no header)."""
        hdrs = list(headers or [])
        if authorization is not None:
            hdrs.append(("Authorization", authorization))
        return rt.http_request("127.0.0.1", self.port, "POST", "/v1/token", headers=hdrs,
                               body=body, tls=True, verify=False, server_hostname="localhost",
                               conn=conn, keep_open=keep_open, timeout=5)

    def access(self, sub):
        """(response, access token) for a fresh CLI grant for sub."""
        r = self.post_token("Bearer " + self.grant(sub))
        tok = None
        if r.status == 200:
            try:
                tok = remember(r.json().get("access_token"))
            except ValueError:
                pass
        return r, tok

    def tunnel(self, token=None, port=None, headers=None, conn=None, src=None):
        """CONNECT localhost:<echo port> with Proxy-Authorization: Bearer token.
        Returns (status, headers, socket or body)."""
        h = list(headers or [])
        if token is not None:
            h.append(("Proxy-Authorization", "Bearer " + token))
        if conn is None and src is not None:
            conn = tls_from(src, self.port)
        return rt.connect_tunnel("127.0.0.1", self.port, "localhost:%d" % (port or CON.echo_port),
                                 headers=h, tls=True, verify=False, conn=conn, timeout=5)

    def tunnel_ok(self, token, src=None):
        """(True, "") when a CONNECT with token is answered 200 and echoes bytes."""
        st, h, body = self.tunnel(token, src=src)
        if st != 200:
            return False, "status %d %s" % (st, err_code(body))
        try:
            payload = b"tok-" + os.urandom(16).hex().encode()
            got, _ = rt.pump(body, payload, timeout=5, expect=len(payload))
            return got == payload, "echo %r" % got[:40]
        finally:
            body.close()


def tls_from(src_ip, port):
    """A TLS connection to the relay from a chosen loopback source address."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(5)
    try:
        raw.bind((src_ip, 0))
        raw.connect(("127.0.0.1", port))
        ctx = rt.client_context(verify=False)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise
    s.settimeout(5)
    return s


err_code = rt.err_code


def b64d(s):
    return rt.b64url_decode(s)


def claims_of(tok):
    return rt.jwt_decode_unverified(tok)


def kid_of_der(der):
    return hashlib.sha256(der).hexdigest()[:16]


def derive_key(ca_key_der, sub, org=ORG, ep=0):
    """docs/protocol.md: HKDF-SHA256 Extract then Expand (one block), written out with hmac."""
    master = hmac.new(b"relaypro access-token v1", ca_key_der, hashlib.sha256).digest()
    info = b"access-token\0" + str(org).encode() + b"\0" + str(ep).encode() + b"\0" + sub.encode()
    return hmac.new(master, info + b"\x01", hashlib.sha256).digest()


def forge(claims, key, kid, header=None):
    return remember(rt.jwt_hs256(claims, key, header or {"alg": "HS256", "typ": "JWT", "kid": kid}))


def py_grant(**over):
    now = int(time.time())
    claims = {"sub": "resp-py", "org": ORG, "aud": "relaypro:%d" % RELAY_ID, "iat": now,
              "exp": now + 600}
    claims.update(over)
    return claims


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def noncanonical_sig(tok):
    """tok with the signature's last character changed in its unused low bits only: the
    decoded bytes are the same, the text is not canonical base64url (docs/protocol.md)."""
    h, c, sig = tok.split(".")
    last = B64URL[B64URL.index(sig[-1]) | 1]
    alt = sig[:-1] + last
    assert rt.b64url_decode(alt) == rt.b64url_decode(sig) and alt != sig
    return remember(h + "." + c + "." + alt)


def unsigned(header, claims):
    enc = lambda v: rt.b64url(json.dumps(v, separators=(",", ":")))  # noqa: E731
    return enc(header) + "." + enc(claims) + "."


def expect_401(r, code, name):
    """A /v1/token rejection: 401, the JSON code, the Bearer challenge."""
    got = err_code(r.body)
    chal = r.headers.get_all("WWW-Authenticate")
    ck(r.status == 401 and got == code and 'Bearer realm="relaypro"' in chal, name,
       "status %d code %r challenge %r" % (r.status, got, chal))


def expect_407(relay, token, code, name, headers=None):
    """A CONNECT rejection: 407, the JSON code, the Bearer proxy challenge."""
    st, h, body = relay.tunnel(token, headers=headers)
    if st == 200:
        body.close()
        body = b""
    got = err_code(body)
    chal = h.get_all("Proxy-Authenticate")
    ck(st == 407 and got == code and 'Bearer realm="relaypro"' in chal, name,
       "status %d code %r challenge %r" % (st, got, chal))


MAIN = Relay("main", token_section={"duration": "10m"},
             limits={"clockSkew": "5s", "authFailLimit": "1000"},
             top={"debugLogging": "true"})  # debug lines too must hold no secret
try:
    MAIN.start()
except Exception as e:
    rt.check(False, "main relay starts", e)
    rt.finish()


# The limiter's "in 60 s" (docs/security.md) needs a minute of wall time: the first failure is
# sent now, the rest by the brute_force_window case near the end, while the others run.
WINDOW = Relay("window", token_section={"duration": "10m"},
               limits={"authFailLimit": "3", "authFailBan": "3s"})
WINDOW_T0 = WINDOW_TOK = None
try:
    WINDOW.start()
    _, WINDOW_TOK = WINDOW.access("resp-window")
    if WINDOW_TOK and WINDOW.tunnel("bad-token-window-0")[0] == 407:
        WINDOW_T0 = time.monotonic()
except Exception as e:
    rt.check(False, "window relay starts", e)


def sleep_until(t):
    time.sleep(max(0.0, min(90.0, t - time.monotonic())))


# ================================================================= cases

@rt.case
def curl_end_to_end():
    if not shutil.which("curl"):
        rt.check(False, "curl is installed")
        return
    grant = MAIN.grant("resp-curl")
    env = rt.clean_environ()
    url = "https://127.0.0.1:%d/v1/token" % MAIN.port
    r = subprocess.run(["curl", "-sk", "--max-time", "10", "-X", "POST",
                        "-H", "Authorization: Bearer " + grant, url],
                       capture_output=True, text=True, timeout=20, env=env)
    access = None
    try:
        doc = json.loads(r.stdout)
        access = remember(doc.get("access_token"))
    except ValueError:
        doc = {}
    ck(r.returncode == 0 and isinstance(access, str) and doc.get("token_type") == "Bearer",
       "curl: POST /v1/token returns an access token",
       "rc=%d keys=%r stderr=%r" % (r.returncode, sorted(doc), r.stderr[-300:]))
    if not access:
        return
    env["https_proxy"] = "https://127.0.0.1:%d" % MAIN.port
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--proxy-insecure",
                        "--proxy-header", "Proxy-Authorization: Bearer " + access,
                        "--cacert", CON.ca,
                        "https://localhost:%d/api/app/check" % CON.https_port],
                       capture_output=True, text=True, timeout=20, env=env)
    try:
        got = json.loads(r.stdout)
    except ValueError:
        got = r.stdout[:200]
    ck(r.returncode == 0 and got == CONSOLE_CHECK,
       "curl: https_proxy with the Bearer access token reaches the console's /api/app/check",
       "rc=%d out=%r stderr=%r" % (r.returncode, got, r.stderr[-300:]))


@rt.case
def keep_alive_token_then_connect():
    grant = MAIN.grant("resp-keepalive")
    s = rt.tls_connect("127.0.0.1", MAIN.port, verify=False, server_hostname="localhost")
    try:
        r = MAIN.post_token("Bearer " + grant, conn=s, keep_open=True)
        tok = None
        if r.status == 200:
            tok = remember(r.json().get("access_token"))
        ck(r.status == 200 and tok and (r.headers.get("Connection") or "").lower() != "close",
           "keep-alive: POST /v1/token answers 200 and keeps the connection",
           "status %d connection %r" % (r.status, r.headers.get("Connection")))
        if not tok:
            return
        st, h, sock = MAIN.tunnel(tok, conn=s)
        ck_eq(st, 200, "keep-alive: CONNECT with the new token on the same TLS connection")
        if st != 200:
            return
        payload = os.urandom(64 * 1024)
        got, _ = rt.pump(sock, payload, timeout=10, expect=len(payload))
        ck(got == payload, "keep-alive: 64 KiB echoed through the tunnel byte for byte",
           "got %d bytes" % len(got))
    finally:
        s.close()
    # A client that sends a small JSON body with its token request, then CONNECTs.
    s = rt.tls_connect("127.0.0.1", MAIN.port, verify=False, server_hostname="localhost")
    try:
        r = MAIN.post_token("Bearer " + grant, conn=s, keep_open=True, body=b'{"x":1}',
                            headers=[("Content-Type", "application/json")])
        tok = remember(r.json().get("access_token")) if r.status == 200 else None
        ok, why = (False, "token request: status %d" % r.status)
        if tok:
            st, h, sock = MAIN.tunnel(tok, conn=s)
            ok, why = st == 200, "CONNECT status %d" % st
            if ok:
                got, _ = rt.pump(sock, b"after-body", timeout=5, expect=10)
                ok, why = got == b"after-body", "echo %r" % got
        ck(ok, "keep-alive: POST with a JSON body, then CONNECT on the same connection", why)
    finally:
        s.close()


@rt.case
def access_token_structure():
    t0 = int(time.time())
    r, tok = MAIN.access("resp-struct")
    t1 = int(time.time())
    ck(r.status == 200 and tok, "structure: token issued", "status %d" % r.status)
    if not tok:
        return
    doc = r.json()
    ck(doc.get("token_type") == "Bearer" and doc.get("expires_in") == 600 and
       sorted(doc) == ["access_token", "expires_in", "token_type"],
       "structure: response {access_token, token_type Bearer, expires_in 600}",
       {k: v for k, v in doc.items() if k != "access_token"})
    ck((r.headers.get("Content-Type") or "").startswith("application/json") and
       "no-store" in (r.headers.get("Cache-Control") or ""),
       "structure: JSON answer with Cache-Control: no-store", r.headers)

    cert_der, fp = MAIN.ca_show()
    ck_eq(fp, hashlib.sha256(cert_der).hexdigest(), "structure: ca show fingerprint = SHA-256(DER)")
    parts = tok.split(".")
    hdr, claims = claims_of(tok)
    ck_eq(hdr, {"alg": "HS256", "typ": "JWT", "kid": kid_of_der(cert_der)},
          "structure: header alg HS256, typ JWT, kid = first 16 hex of SHA-256(CA cert DER)")
    shape = {k: claims.get(k) for k in ("iss", "sub", "org", "ep")}
    ck_eq(shape, {"iss": "relaypro", "sub": "resp-struct", "org": ORG, "ep": 0},
          "structure: iss relaypro, sub, org 42, ep 0")
    ck_eq(sorted(claims), sorted(["iss", "sub", "org", "ep", "iat", "exp", "jti"]),
          "structure: exactly the claims iss sub org ep iat exp jti")
    iat, exp = claims.get("iat"), claims.get("exp")
    ck(isinstance(iat, int) and t0 - 1 <= iat <= t1 + 1 and exp == iat + 600,
       "structure: iat is now and exp = iat + duration (= expires_in)", (t0, iat, exp))
    jti = claims.get("jti", "")
    ck(isinstance(jti, str) and re.fullmatch(r"[0-9a-f]{32}", jti) is not None,
       "structure: jti is 32 hex digits (16 random bytes)")
    _, tok2 = MAIN.access("resp-struct")
    ck(tok2 and claims_of(tok2)[1].get("jti") != jti, "structure: every token gets a new jti")
    ck(all("=" not in p for p in parts), "structure: base64url without padding")

    # The signature recomputed from the CA key: docs/protocol.md byte for byte.
    key = derive_key(MAIN.ca_key_der(), "resp-struct")
    mac = hmac.new(key, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    ck(hmac.compare_digest(mac, b64d(parts[2])),
       "structure: HMAC-SHA256(HKDF key(sub, org 42, ep 0), header.payload) = signature")
    wrong = derive_key(MAIN.ca_key_der(), "resp-struct", ep=1)
    ck(not hmac.compare_digest(hmac.new(wrong, (parts[0] + "." + parts[1]).encode(),
                                        hashlib.sha256).digest(), b64d(parts[2])),
       "structure: the key depends on the epoch (ep 1 key does not verify)")
    # And the other way round: a token made in Python with the derived key is accepted.
    now = int(time.time())
    mine = forge({"iss": "relaypro", "sub": "resp-py", "org": ORG, "ep": 0, "iat": now,
                  "exp": now + 300, "jti": secrets.token_hex(16)},
                 derive_key(MAIN.ca_key_der(), "resp-py"), kid_of_der(cert_der))
    ok, why = MAIN.tunnel_ok(mine)
    ck(ok, "structure: a token signed in Python with the derived key opens a tunnel", why)


@rt.case
def grant_rejections():
    now = int(time.time())
    ok = MAIN.post_token("Bearer " + remember(rt.jwt_hs256(py_grant(), SECRET)))
    ck_eq(ok.status, 200, "grant: a Python-made grant is accepted (baseline)")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(py_grant(), SECRET + "x"))),
               "token_invalid", "grant: wrong signature key -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(
        unsigned({"alg": "none", "typ": "JWT"}, py_grant()))),
        "token_invalid", "grant: alg none -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(
        py_grant(), SECRET, header={"alg": "HS512", "typ": "JWT"}))),
        "token_invalid", "grant: alg HS512 (HS256 signature) -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(py_grant(org=43), SECRET))),
               "token_invalid", "grant: org 43 -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(
        py_grant(aud="relaypro:8"), SECRET))), "token_invalid",
        "grant: aud relaypro:8 -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(
        py_grant(iat=now - 600, exp=now - 60), SECRET))), "token_expired",
        "grant: exp 60 s ago (skew 5 s) -> 401 token_expired")
    r = MAIN.post_token("Bearer " + remember(rt.jwt_hs256(py_grant(iat=now - 600, exp=now - 1),
                                                          SECRET)))
    ck_eq(r.status, 200, "grant: exp 1 s ago is within clockSkew 5 s -> accepted")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(
        py_grant(nbf=now + 300), SECRET))), "token_invalid",
        "grant: nbf 5 min ahead -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(
        py_grant(sub="resp one"), SECRET))), "token_invalid",
        "grant: sub with a space -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(
        py_grant(sub="a" * 129), SECRET))), "token_invalid",
        "grant: sub of 129 characters -> 401 token_invalid")
    c = py_grant()
    del c["exp"]
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(c, SECRET))),
               "token_invalid", "grant: no exp -> 401 token_invalid")
    dup = '{"sub":"resp-a","sub":"resp-b","org":%d,"aud":"relaypro:%d","exp":%d}' % (
        ORG, RELAY_ID, now + 600)
    expect_401(MAIN.post_token("Bearer " + remember(rt.jwt_hs256(dup, SECRET))),
               "token_invalid", "grant: duplicate claim key -> 401 token_invalid")
    expect_401(MAIN.post_token(None), "auth_required",
               "grant: no Authorization header -> 401 auth_required")
    good = remember(rt.jwt_hs256(py_grant(), SECRET))
    expect_401(MAIN.post_token("Bearer " + noncanonical_sig(good)), "token_invalid",
               "grant: non-canonical base64url signature (same bytes) -> 401 token_invalid")
    expect_401(MAIN.post_token("Bearer " + good + "="), "token_invalid",
               "grant: base64 padding -> 401 token_invalid")
    r = MAIN.post_token("bearer " + good)
    ck_eq(r.status, 200, "grant: the auth scheme is case-insensitive (bearer)")

    # Size: a validly signed grant of exactly 4096 bytes passes, 4097 and more do not.
    def sized(n):
        """A validly signed grant of exactly n bytes (None if base64 cannot hit n)."""
        base = len(rt.jwt_hs256(py_grant(pad=""), SECRET))
        est = max(0, (n - base) * 3 // 4 - 6)
        for pad in range(est, est + 16):
            t = rt.jwt_hs256(py_grant(pad="p" * pad), SECRET)
            if len(t) == n:
                return remember(t)
            if len(t) > n:
                break
        return None
    t4096 = sized(4096) or sized(4095)
    r = MAIN.post_token("Bearer " + t4096)
    ck(r.status == 200, "grant: a %d-byte grant is accepted" % len(t4096), "status %d" % r.status)
    big = None
    for n in (4097, 4098, 4099):
        big = sized(n)
        if big:
            break
    expect_401(MAIN.post_token("Bearer " + big), "token_invalid",
               "grant: a %d-byte grant (over 4096) -> 401 token_invalid" % len(big))

    # An access token is not a grant.
    _, acc = MAIN.access("resp-grant")
    expect_401(MAIN.post_token("Bearer " + acc), "token_invalid",
               "grant: an access token presented as a grant -> 401 token_invalid")


@rt.case
def access_token_rejections():
    _, tok = MAIN.access("resp-reject")
    hdr, claims = claims_of(tok)
    h64, c64, s64 = tok.split(".")
    expect_407(MAIN, None, "auth_required",
               "access: CONNECT without Proxy-Authorization -> 407 auth_required")
    expect_407(MAIN, "garbage-not-a-jwt", "token_invalid", "access: garbage -> 407 token_invalid")
    # Flip one character in the middle of the signature (keeps base64url canonical).
    mid = len(s64) // 2
    tampered = h64 + "." + c64 + "." + s64[:mid] + ("A" if s64[mid] != "A" else "B") + s64[mid + 1:]
    expect_407(MAIN, remember(tampered), "token_invalid",
               "access: signature tampered -> 407 token_invalid")
    other = dict(claims, sub="resp-someone-else")
    moved = h64 + "." + rt.b64url(json.dumps(other, separators=(",", ":"))) + "." + s64
    expect_407(MAIN, remember(moved), "token_invalid",
               "access: sub changed, signature kept -> 407 token_invalid")
    expect_407(MAIN, forge(claims, SECRET, hdr["kid"]), "token_invalid",
               "access: right claims signed with the security token -> 407 token_invalid")
    expect_407(MAIN, remember(unsigned({"alg": "none", "typ": "JWT", "kid": hdr["kid"]}, claims)),
               "token_invalid", "access: alg none -> 407 token_invalid")
    other_kid = ("0" if hdr["kid"][0] != "0" else "1") + hdr["kid"][1:]
    expect_407(MAIN, forge(claims, SECRET, other_kid), "ca_changed",
               "access: another kid -> 407 ca_changed")
    # kid compared as exact bytes: the right kid with a NUL (JSON \u0000) after it, on a
    # token whose signature is right (the derived key): before issue 17 C's strcmp saw
    # the kid end at the NUL and accepted it. The same token with the exact kid works.
    key = derive_key(MAIN.ca_key_der(), claims["sub"])
    ok, why = MAIN.tunnel_ok(forge(claims, key, hdr["kid"]))
    ck(ok, "access: re-signed in Python with the derived key and the exact kid: accepted", why)
    for extra, what in ((r"\u0000", "a NUL appended"), (r"\u0000ignored", "a NUL and more"),
                        (" ", "a space appended")):
        h = '{"alg":"HS256","typ":"JWT","kid":"%s%s"}' % (hdr["kid"], extra)
        expect_407(MAIN, remember(rt.jwt_hs256(claims, key, header=h)), "ca_changed",
                   "access: kid with %s (right signature) -> 407 ca_changed" % what)
    expect_407(MAIN, MAIN.grant("resp-reject"), "token_invalid",
               "access: a grant presented as an access token -> 407 token_invalid")
    expect_407(MAIN, None, "auth_required",
               "access: Basic without a password file -> 407 auth_required",
               headers=[("Proxy-Authorization", "Basic " + base64.b64encode(b"u:p").decode())])
    expect_407(MAIN, noncanonical_sig(tok), "token_invalid",
               "access: non-canonical base64url signature (same bytes) -> 407 token_invalid")
    padded = forge(dict(claims, pad="p" * 3200), SECRET, hdr["kid"])
    expect_407(MAIN, padded, "token_invalid",
               "access: a %d-byte token (over 4096) -> 407 token_invalid" % len(padded))
    # Requests that carry a valid token but fail elsewhere (their logs are scanned too).
    st, h, body = MAIN.tunnel(headers=[("Proxy-Authorization", "Bearer " + tok),
                                       ("Proxy-Authorization", "Bearer " + tok)])
    ck_eq(st, 400, "access: two Proxy-Authorization headers -> 400")
    st, h, body = MAIN.tunnel(tok, port=CON.http_port)
    ck(st == 403 and err_code(body) == "forbidden_target",
       "access: a valid token to a port outside allowedPorts -> 403 forbidden_target",
       (st, err_code(body)))
    ok, why = MAIN.tunnel_ok(tok)
    ck(ok, "access: the untouched token still works", why)


def refusal(relay, send, want_code, want_reason, name):
    """send() makes one refused request; the client sees only want_code, the relay's
    auth.fail line says want_reason (docs/configuration.md: the precise cause, never the token)."""
    since = rt.log_offset(relay.log)
    status, body = send()
    code = err_code(body)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    ck(code == want_code and "expected" not in text and "reason" not in text,
       "%s: the client sees only %s" % (name, want_code), (status, body))
    rec = rt.wait_for_log(relay.log, "auth.fail", timeout=5, since=since)
    reason = (rec or {}).get("reason", "")
    ck(want_reason.match(reason) if hasattr(want_reason, "match") else reason == want_reason,
       "%s: auth.fail reason %r" % (name, getattr(want_reason, "pattern", want_reason)),
       rec)
    ck((rec or {}).get("code") == want_code, "%s: auth.fail code %s" % (name, want_code), rec)
    ck(not any(t in json.dumps(rec) for t in rt.secrets()) and not JWT_RE.search(reason),
       "%s: no token or secret in the log line" % name)
    return rec


def grant_refused(relay, claims, key=SECRET):
    def send():
        r = relay.post_token("Bearer " + remember(rt.jwt_hs256(claims, key)))
        return r.status, r.body
    return send


def access_refused(relay, token):
    def send():
        st, h, body = relay.tunnel(token)
        if st == 200:
            body.close()
            body = b""
        return st, body
    return send


@rt.case
def refusal_reasons():
    """Every refusal is explained in the log (docs/configuration.md), the client sees the code only."""
    now = int(time.time())
    # A relay whose RELAYPRO_RELAY_ID is not the one the console signs for.
    wrong = Relay("wrongid", token_section={"duration": "10m"},
                  env={"RELAYPRO_RELAY_ID": "12"}).start()
    try:
        refusal(wrong, grant_refused(wrong, py_grant()), "token_invalid",
                "aud is relaypro:%d, expected relaypro:12 (relayId)" % RELAY_ID,
                "wrong RELAYPRO_RELAY_ID")
    finally:
        wrong.stop()
    refusal(MAIN, grant_refused(MAIN, py_grant(org=43)), "token_invalid",
            "org is 43, expected %d (organizationId)" % ORG, "grant for another org")
    refusal(MAIN, grant_refused(MAIN, py_grant(), key=SECRET + "x"), "token_invalid",
            "bad signature: not signed with this relay's securityToken", "grant: bad signature")
    refusal(MAIN, grant_refused(MAIN, py_grant(iat=now - 7200, exp=now - 3725)), "token_expired",
            re.compile(r"expired 1h2m\d+s ago \(exp \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, "
                       r"clockSkew 5s\)$"), "grant expired by how long")
    _, tok = MAIN.access("resp-reasons")
    hdr, claims = claims_of(tok)
    other_kid = ("0" if hdr["kid"][0] != "0" else "1") + hdr["kid"][1:]
    refusal(MAIN, access_refused(MAIN, forge(claims, SECRET, other_kid)), "ca_changed",
            "unknown kid %s, expected %s: issued under another CA bundle" % (other_kid, hdr["kid"]),
            "access token with an unknown kid")
    h64, c64, s64 = tok.split(".")
    mid = len(s64) // 2
    tampered = h64 + "." + c64 + "." + s64[:mid] + ("A" if s64[mid] != "A" else "B") + s64[mid + 1:]
    refusal(MAIN, access_refused(MAIN, remember(tampered)), "token_invalid",
            "bad signature: not issued by a relay holding this CA bundle",
            "access token with a bad signature")
    refusal(MAIN, access_refused(MAIN, remember(unsigned({"alg": "none", "kid": hdr["kid"]}, claims))),
            "token_invalid", "header alg is not HS256 (or typ is not JWT)", "access token alg none")


@rt.case
def restart_keeps_tokens():
    _, tok = MAIN.access("resp-restart")
    ok, why = MAIN.tunnel_ok(tok)
    ck(ok, "restart: token works before", why)
    rc = MAIN.stop()
    ck_eq(rc, 0, "restart: SIGTERM exits 0")
    MAIN.start()
    ok, why = MAIN.tunnel_ok(tok)
    ck(ok, "restart: the same access token opens a tunnel after a restart", why)


@rt.case
def shared_ca_bundle():
    other = Relay("shared", token_section={"duration": "10m"},
                  env={"RELAYPRO_CA_BUNDLE_FILE": MAIN.bundle}).start()
    try:
        ck(not os.path.exists(os.path.join(other.dir, "private", "ca-bundle.pem")),
           "shared: instance B created no bundle of its own")
        _, tok_a = MAIN.access("resp-shared-a")
        _, tok_b = other.access("resp-shared-b")
        ck(tok_a and tok_b and claims_of(tok_a)[0].get("kid") == claims_of(tok_b)[0].get("kid"),
           "shared: both instances issue the same kid")
        ok, why = other.tunnel_ok(tok_a)
        ck(ok, "shared: a token from instance A opens a tunnel on instance B", why)
        ok, why = MAIN.tunnel_ok(tok_b)
        ck(ok, "shared: a token from instance B opens a tunnel on instance A", why)
    finally:
        other.stop()


@rt.case
def new_ca_bundle():
    r = Relay("newca", token_section={"duration": "10m"}).start()
    try:
        _, old = r.access("resp-ca")
        ok, why = r.tunnel_ok(old)
        ck(ok, "new CA: token works under the first CA", why)
        der1, _ = r.ca_show()
        r.stop()
        os.unlink(r.bundle)
        r.start()
        der2, _ = r.ca_show()
        ck(os.path.exists(r.bundle) and der1 != der2, "new CA: a new bundle was generated")
        expect_407(r, old, "ca_changed", "new CA: the old token -> 407 ca_changed")
        _, new = r.access("resp-ca")
        ck(new and claims_of(new)[0].get("kid") == kid_of_der(der2),
           "new CA: new tokens carry the new kid")
        ok, why = r.tunnel_ok(new)
        ck(ok, "new CA: a new token works", why)
    finally:
        r.stop()


@rt.case
def epoch_revokes():
    r = Relay("epoch", token_section={"duration": "10m"}).start()
    try:
        _, old = r.access("resp-epoch")
        ck(old and claims_of(old)[1].get("ep") == 0, "epoch: default tokens carry ep 0")
        r.stop()
        r.token_section["epoch"] = "1"
        r.write_config()
        r.start()
        expect_407(r, old, "token_revoked", "epoch: an ep 0 token after epoch = 1 -> 407 token_revoked")
        _, new = r.access("resp-epoch")
        ck(new and claims_of(new)[1].get("ep") == 1, "epoch: new tokens carry ep 1")
        ok, why = r.tunnel_ok(new)
        ck(ok, "epoch: a new ep 1 token works", why)
        # A token from a later epoch (signed with the right derived key) is not accepted.
        hdr, claims = claims_of(new)
        fut = forge(dict(claims, ep=2), derive_key(r.ca_key_der(), "resp-epoch", ep=2), hdr["kid"])
        expect_407(r, fut, "token_invalid", "epoch: a validly signed ep 2 token -> 407 token_invalid")
    finally:
        r.stop()


@rt.case
def expiry():
    r = Relay("expiry", token_section={"duration": "2s"},
              limits={"clockSkew": "1s", "authFailLimit": "1000"}).start()
    try:
        resp, tok = r.access("resp-expiry")
        issued = time.monotonic()
        ck(tok and resp.json().get("expires_in") == 2 and
           claims_of(tok)[1]["exp"] - claims_of(tok)[1]["iat"] == 2,
           "expiry: duration 2s -> expires_in 2, exp = iat + 2")
        if not tok:
            return
        ok, why = r.tunnel_ok(tok)
        ck(ok, "expiry: a fresh token works", why)
        status, code, when = None, None, None
        since = rt.log_offset(r.log)
        for _ in range(150):  # bounded in count: 150 x 0.2 s plus request time (the test's bound)
            st, h, body = r.tunnel(tok)
            if st == 200:
                body.close()
            else:
                status, code, when = st, err_code(body), time.monotonic() - issued
                break
            time.sleep(0.2)
        # The cause is the answer's code and the relay's auth.fail record; the time is bounded
        # from below only: expired once now > exp + skew = iat + 3 (whole seconds), never
        # sooner than 2 s after the token was issued, whatever the load.
        ck(status == 407 and code == "token_expired",
           "expiry: the token later gets 407 token_expired", (status, code))
        rec = rt.wait_for_log(r.log, lambda x: x.get("event") == "auth.fail" and
                              "token_expired" in (x.get("code"), x.get("reason")),
                              timeout=30, since=since)
        ck(rec is not None, "expiry: the relay logs auth.fail for the expired token", rec)
        ck(when is not None and when >= 2.0,
           "expiry: it expires not before duration + clockSkew (%.1f s)" % (when or -1))
    finally:
        r.stop()


@rt.case
def brute_force():
    r = Relay("brute", token_section={"duration": "10m"},
              limits={"authFailLimit": "3", "authFailBan": "3s"}).start()
    try:
        _, tok = r.access("resp-brute")
        grant = r.grant("resp-brute")
        bad = [r.tunnel("bad-token-%d" % i)[0] for i in range(3)]
        ck_eq(bad, [407, 407, 407], "brute: 3 bad tokens -> 407 each")
        ok, why = r.tunnel_ok(tok)
        ck(ok, "brute: exactly authFailLimit (3) failures do not ban", why)
        since = rt.log_offset(r.log)
        before_ban = time.monotonic()  # the ban starts after this, at the 4th bad token
        st4 = r.tunnel("bad-token-4")[0]
        st, h, body = r.tunnel(tok)
        if st == 200:
            body.close()
        ck(st4 == 407 and st == 429 and err_code(body) == "rate_limited",
           "brute: after a 4th bad token even a valid token gets 429 rate_limited",
           (st4, st, err_code(body) if st != 200 else None))
        rp = r.post_token("Bearer " + grant)
        ck(rp.status == 429 and err_code(rp.body) == "rate_limited",
           "brute: POST /v1/token from the banned address -> 429 rate_limited", rp.status)
        ok, why = r.tunnel_ok(tok, src="127.0.0.2")
        ck(ok, "brute: another client address (127.0.0.2) is not banned", why)
        ban = rt.wait_for_log(r.log, "auth.ban", timeout=5, since=since)
        ck(ban is not None and str(ban.get("client", "")).startswith("127.0.0.1") and
           ban.get("seconds") == 3, "brute: an auth.ban log line names the client and 3 s", ban)
        # The lift is proven by the valid token working again (after the 429s above); the
        # time is bounded from below only, counted from before the ban began. The loop is
        # bounded in count (150 x 0.2 s plus request time), the test's bound, not the relay's.
        lifted, last = None, None
        for _ in range(150):
            st, h, body = r.tunnel(tok)
            last = st
            if st == 200:
                body.close()
                lifted = time.monotonic() - before_ban
                break
            time.sleep(0.2)
        ck(lifted is not None, "brute: the ban lifts (the valid token works again)", last)
        ck(lifted is not None and lifted >= 1.5,
           "brute: ... not before authFailBan 3s (after %.1f s)" % (lifted or -1))
        # Failed grants count as well.
        bad_grants = [r.post_token("Bearer " + remember(
            rt.jwt_hs256(py_grant(sub="resp-brute"), "not-the-key"))).status for _ in range(4)]
        rp = r.post_token("Bearer " + grant)
        ck(bad_grants == [401] * 4 and rp.status == 429,
           "brute: 4 bad grants ban too (then a good grant gets 429)", (bad_grants, rp.status))
    finally:
        r.stop()


@rt.case(timeout=100)
def brute_force_window():
    """Failures 1 at T0, 2-3 at T0+57.5 s, 4-5 at T0+61.5 s: failures 2-5 lie within 4 s,
    so "more than 3 failed authentications in 60 s" has happened and the address must be
    banned, whatever window bookkeeping the relay uses."""
    if WINDOW_T0 is None:
        ck(False, "window: setup (first failure) succeeded")
        return
    sleep_until(WINDOW_T0 + 57.5)
    first = time.monotonic()
    sts = [WINDOW.tunnel("bad-token-window-%d" % i)[0] for i in (1, 2)]
    ok, why = WINDOW.tunnel_ok(WINDOW_TOK)
    ck(sts == [407, 407] and ok, "window: 3 failures in 60 s do not ban", (sts, why))
    sleep_until(WINDOW_T0 + 61.5)
    sts += [WINDOW.tunnel("bad-token-window-%d" % i)[0] for i in (3, 4)]
    span = time.monotonic() - first
    st, h, body = WINDOW.tunnel(WINDOW_TOK)
    if st == 200:
        body.close()
    ck(sts == [407] * 4 and st == 429,
       "window: 4 failures within %.1f s (straddling the first failure's 60 s) ban the "
       "address -> 429" % span, "bad-token answers %r, then the valid token got %d" % (sts, st))
    WINDOW.stop()


@rt.case
def secrets_never_logged():
    files, hits, fails, issues = 0, [], 0, 0
    for r in RELAYS:
        for fn in ("relay.log", "relay.stdout", "relay.stderr"):
            p = os.path.join(r.dir, fn)
            if not os.path.exists(p):
                continue
            files += 1
            with open(p, "rb") as f:
                data = f.read().decode("utf-8", "replace")
            for i, s in enumerate(sorted(rt.secrets())):
                if s and s in data:
                    hits.append("%s/%s: secret #%d (%d chars)" % (r.name, fn, i, len(s)))
            if fn == "relay.log":
                recs = rt.read_json_lines(p)
                fails += sum(1 for x in recs if x.get("event") == "auth.fail")
                issues += sum(1 for x in recs if x.get("event") == "token.issue")
    ck(files >= len(RELAYS) and fails > 10 and issues > 10,
       "secrets: logs were written (%d files, %d auth.fail, %d token.issue)" % (files, fails, issues))
    ck(not hits, "secrets: no security token, grant, access token, signature or CA key in "
       "%d log files (%d strings checked)" % (files, len(rt.secrets())), "; ".join(hits))


if __name__ == "__main__":
    rt.finish()

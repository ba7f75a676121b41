#!/usr/bin/env python3
"""seeds.py — writes the hand-made seed inputs of tests/fuzz/corpus/<name>/ (seed-*).

Each target's first byte selects a mode (see the comment at the top of fuzz_<name>.c);
the seeds cover every mode with valid inputs and known-hostile ones. Inputs found by
fuzzing are kept next to them under their SHA-1 names (libFuzzer -merge=1).
Usage: tests/fuzz/seeds.py [CA_BUNDLE.pem]   (the bundle seeds the ca target)
"""
import base64, hashlib, hmac, json, os, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws(header, claims, key):
    si = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    return si + "." + b64u(hmac.new(key, si.encode(), hashlib.sha256).digest())


# http: byte 0 = chunk size (low 5 bits) | 0x80 for max = input length.
H = {
    "connect": "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n",
    "connect-v6": "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n",
    "absolute": "GET http://example.com/a?b=c HTTP/1.1\nHost: example.com\nContent-Length: 0042\nConnection: keep-alive, Upgrade\nUpgrade: websocket\n\nbody",
    "origin-ws": "GET /ws?target=db.internal:5432 HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer a.b.c\r\n\r\n",
    "https-abs": "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "te-and-cl": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "dup-host": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "obs-fold": "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
    "bare-cr": "GET / HTTP/1.1\rHost: a\r\n\r\n",
    "nul": "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
    "userinfo": "CONNECT user@host:443 HTTP/1.1\r\n\r\n",
    "percent": "CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\n\r\n",
    "port-zeros": "CONNECT host:0443 HTTP/1.1\r\n\r\n",
    "asterisk": "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "cl-huge": "POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
    "leading-empty": "\r\n\n\r\nGET / HTTP/1.0\r\n\r\n",
    "version": "GET / HTTP/1.2\r\n\r\n",
    "space-colon": "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
}
for i, (k, v) in enumerate(H.items()):
    put("http", k, bytes([(i * 5) % 32 | (0x80 if i % 3 == 0 else 0)]) + v.encode("latin-1"))
# Field names listed in Connection, around the old 63-byte copy and far beyond it.
for n in (63, 64, 200, 1500):
    name = "X-" + "n" * (n - 2)
    put("http", "hop-%d" % n, b"\x87" + ("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
        "Connection: close, ,\t%s\t, x\r\n%s: 1\r\n%sx: 2\r\n%s: 3\r\nconnection: Y\r\n\r\n"
        % (name.upper(), name, name, name[:-1])).encode())
put("http", "many-headers", b"\x03GET / HTTP/1.1\r\n" + b"X: y\r\n" * 70 + b"\r\n")
put("http", "too-long", b"\x9fGET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n")

# jwt: byte 0 even = token; odd = header NUL claims (signed by the target).
key = b"fuzz-key-0123456789abcdef"
good = jws({"alg": "HS256", "typ": "JWT"}, {"sub": "alice@example", "org": 7, "aud": "relaypro:42", "exp": 1900000000, "iat": 1700000000}, key)
put("jwt", "valid", "\x00" + good)
put("jwt", "alg-none", "\x00" + b64u(b'{"alg":"none"}') + "." + b64u(b'{"exp":1}') + ".")
put("jwt", "dup-key", "\x00" + b64u(b'{"alg":"HS256","alg":"HS256"}') + "." + b64u(b'{"exp":1}') + "." + b64u(b"\x00" * 32))
put("jwt", "padded", "\x00" + good + "=")
put("jwt", "bad-sub", "\x00" + jws({"alg": "HS256"}, {"sub": "a b", "exp": 1}, key))
put("jwt", "big-int", "\x00" + jws({"alg": "HS256"}, {"exp": 99999999999999999999}, key))
# kid with an escaped NUL (compared as exact bytes), as a token and signed by the target.
put("jwt", "kid-nul", "\x00" + b64u(b'{"alg":"HS256","kid":"0123456789abcdef\\u0000"}') + "." +
    b64u(b'{"exp":1900000000}') + "." + b64u(hmac.new(key, (b64u(b'{"alg":"HS256","kid":"0123456789abcdef\\u0000"}') + "." + b64u(b'{"exp":1900000000}')).encode(), hashlib.sha256).digest()))
put("jwt", "sign-kid-nul", b"\x01" + b'{"alg":"HS256","kid":"\\u0000k\\u0000"}' + b"\x00" + b'{"exp":1900000000}')
put("jwt", "sign-kid-empty", b"\x01" + b'{"alg":"HS256","kid":""}' + b"\x00" + b'{"exp":1900000000}')
put("jwt", "sign-claims", b"\x01" + b'{"alg":"HS256","kid":"k1"}' + b"\x00" + b'{"sub":"bob","exp":1900000000,"nbf":1,"ep":3,"jti":"x","iss":"relaypro"}')
put("jwt", "sign-nested", b"\x01" + b'{"alg":"HS256","x":{"a":[1,2,{"b":null}]}}' + b"\x00" + b'{"exp":-9223372036854775808,"sub":"\\u0041"}')

# b64
for name, v in {"url": "SGVsbG8td29ybGRf", "url-2": "QQ", "url-bad-bits": "QR", "std": "YWxpY2U6c2VjcmV0",
                "std-pad": "QQ==", "std-bad-pad": "Q===", "mixed": "a+b_", "empty": ""}.items():
    put("b64", name, v)

# token: byte 0 % 4: 0 token, 1 grant claims, 2 access claims, 3 sub for token_issue.
gkey = b"fuzz-security-token"
put("token", "grant", "\x00" + jws({"alg": "HS256", "typ": "JWT"}, {"sub": "alice", "org": 7, "aud": "relaypro:42", "exp": 1800000100}, gkey))
put("token", "grant-claims", '\x01{"sub":"alice","org":7,"aud":"relaypro:42","exp":1800000100,"nbf":1700000000}')
put("token", "grant-expired", '\x01{"sub":"alice","org":7,"aud":"relaypro:42","exp":1700000000}')
put("token", "grant-wrong-aud", '\x01{"sub":"alice","org":7,"aud":"relaypro:43","exp":1800000100}')
put("token", "access-claims", '\x02{"iss":"relaypro","sub":"alice","org":7,"ep":3,"iat":1800000000,"exp":1800003600,"jti":"00"}')
put("token", "access-neg-ep", '\x02{"iss":"relaypro","sub":"alice","org":7,"ep":-1,"exp":1800003600}')
# 0x42: kid suffix '|' access claims (only the exact kid is accepted).
AC = '{"iss":"relaypro","sub":"alice","org":7,"ep":3,"iat":1800000000,"exp":1800003600}'
for name, suffix in (("exact", ""), ("nul", "\\u0000"), ("nul-more", "\\u0000junk"),
                     ("digit", "0"), ("escaped-digit", "\\u0030")):
    put("token", "kid-" + name, "\x42" + suffix + "|" + AC)
put("token", "issue", "\x03alice@example.com")
put("token", "issue-long", "\x03" + "a" * 128)

# config: byte 0 < 128 file; 128.. one RELAYPRO_ key; 254 RELAYPRO_LOGGER_CONF.
put("config", "full", "\x00" + """# comment
consoleAddress = Console.Example:8443
organizationId = 42
relayProId = 123e4567-e89b-12d3-a456-426614174000
relayId = 7
securityToken = s3cr;t
proxyEnabled = yes\r
allowedHosts = cdn.example, 10.0.0.5 ,[::1]
allowedPorts = 443,8443
serverAltNames = relay.example,127.0.0.1
caKeyBits = 3072
workers = auto
passwordFile = users.txt
proxyProtocol = true
trustedProxies = 10.0.0.0/8, ::1/128
[httpsProxy]
listen = [::]:9443
[admin]
listen = 127.0.0.1:9090
[clientAuthToken]
duration = 2h
epoch = 3
[migration]
consoleAddress = new.example
validUntilAt = 2027-01-01T00:00:00+01:30
[logger]
fileName = -
maxSize = 5MiB
maxBackups = 2
[limits]
idleTimeout = 1week
maxHeaderBytes = 16KiB
""")
put("config", "dup-key", "\x00organizationId = 1\norganizationId = 2\n")
put("config", "unknown", "\x00[nosuch]\nkey = 1\n")
put("config", "long-line", "\x00serverName = " + "a" * 250 + "\n")
put("config", "nul", b"\x00serverName = a\x00b\n")
put("config", "bad-cidr", "\x00trustedProxies = 10.0.0.0/33,::/129,1.2.3.4/-1\n")
put("config", "bad-list", "\x00allowedHosts = a,,b\nallowedPorts = 0,65536\n")
put("config", "pem-inline", "\x00consoleCACert = -----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\n")
for i, v in [(0, "console.example:443"), (17, "4096"), (18, "auto"), (20, "10.0.0.0/8,fd00::/8"),
             (21, "[::1]:9443"), (24, "25h"), (27, "2026-02-29T00:00:00Z"), (29, "1TiB"), (16, "1,2,65535")]:
    put("config", "env-%d" % i, bytes([128 + i]) + v.encode())
put("config", "logger-conf", "\xfefileName=-,maxSize=1MB,maxAge=3d,maxBackups=1,noCompress=on")

# units: byte 0 % 8 picks: size duration bool int rfc3339 listen split-address days.
U = [(0, "64KiB"), (0, "18446744073709551615"), (0, "17179869184GiB"), (0, "1 MB"), (1, "2weeks"),
     (1, "99999999999999999w"), (1, "0"), (2, "Yes"), (2, "of"), (3, "-9223372036854775808"),
     (3, "9223372036854775808"), (3, "007"), (3, "-0"), (4, "2026-12-01T00:00:00.123456Z"),
     (4, "9999-12-31T23:59:60-23:59"), (4, "2025-02-29T00:00:00Z"), (5, "[::1]:443"),
     (5, "localhost:80"), (5, "127.0.0.1:+9090"), (5, "[::1]: 443"), (5, "0.0.0.0:08080"), (5, "1.2.3.4:0"), (5, "[fe80::1%eth0]:1"), (6, "[2001:db8::1]:8443"),
     (6, "console.example"), (6, "[::1"), (7, "\xff\xff\xff\xff\xff\xff\xff\x7f\x0b\x1e")]
for i, (m, v) in enumerate(U):
    put("units", "%02d" % i, bytes([m]) + v.encode("latin-1"))

# target: byte 0 % 6: host port authority(required) authority(80) console policy-list.
T = [(0, "Example.COM."), (0, "::ffff:1.2.3.4"), (0, "[2001:DB8::0:1]"), (0, "01.2.3.4"), (0, "a..b"),
     (0, "a" * 64 + ".com"), (0, "1.2.3"), (0, "0x7f.1"), (1, "65535"), (1, "65536"), (1, "0443"),
     (2, "example.com:443"), (2, "[::1]:22"), (2, "user@host:443"), (2, "host:"), (2, "[fe80::1%eth0]:80"),
     (3, "example.com"), (3, "127.0.0.1"), (4, "console.example:8443"), (4, "[::1]"),
     (5, "a.example,10.0.0.1,[::1],bad host,b.example")]
for i, (m, v) in enumerate(T):
    put("target", "%02d" % i, bytes([m]) + v.encode())

# upstream: byte 0 even = proxy answer; odd = HTTPS_PROXY NUL HTTP_PROXY NUL NO_PROXY NUL host.
put("upstream", "answer-200", "\x00HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n")
put("upstream", "answer-407", "\x00HTTP/1.0 407 Proxy Authentication Required\r\n\r\n")
put("upstream", "answer-short", "\x00HTTP/1.1 20\r\n\r\n")
put("upstream", "answer-trunc", "\x00HTTP/1.1 200 OK\r\n")
put("upstream", "env", b"\x01http://user:p%40ss@proxy.example:3128\x00http://[::1]:8080/\x00localhost, .internal,10.0.0.1\x00db.internal")
put("upstream", "env-long-creds", b"\x01http://" + b"u" * 150 + b":" + b"p" * 148 + b"@proxy:3128\x00\x00\x00console.example")
put("upstream", "env-bad", b"\x01https://proxy:443\x00socks5://x\x00*\x00a")
put("upstream", "env-path", b"\x01http://proxy/path\x00http://proxy:0\x00,,\x00a")
# bit 1: SOCKS5 routes allowed; the fifth field is ALL_PROXY
put("upstream", "env-socks5h-all", b"\x03\x00\x00\x00console.example\x00socks5h://alice:s3cret@proxy.example:1080")
put("upstream", "env-socks5-ip", b"\x03socks5://u:p@127.0.0.1\x00socks5h://[::1]:1081/\x00other\x00[2001:db8::1]\x00")
put("upstream", "env-socks5-refused", b"\x01socks5h://proxy.example\x00\x00\x00console.example\x00socks4://x")

# socks5: byte 0 = bit 0 credentials, bits 1-2 target (IPv4, IPv6, name, 255-byte name),
# bits 3-7 chunk size - 1; then the proxy's bytes in order (their end = the proxy closes).
S5_OK4 = b"\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38"
put("socks5", "noauth-ipv4", b"\x00\x05\x00" + S5_OK4 + b"tunnel")
put("socks5", "auth-name-ipv6bnd", b"\x15\x05\x02\x01\x00\x05\x00\x00\x04" + bytes(15) + b"\x01\x1f\x90")
put("socks5", "offered-auth-picked-none", b"\x05\x05\x00\x05\x00\x00\x03\x04prox\x04\x38")
put("socks5", "name-bnd-255", b"\x06\x05\x00\x05\x00\x00\x03\xff" + b"n" * 255 + b"\x00\x50")
put("socks5", "long-name-target", b"\x3e\x05\x00" + S5_OK4)
for rep in range(1, 10):
    put("socks5", "rep-%d" % rep, b"\x00\x05\x00\x05" + bytes([rep]) + b"\x00\x01" + bytes(6))
put("socks5", "no-acceptable", b"\x01\x05\xff")
put("socks5", "method-not-offered", b"\x00\x05\x02")
put("socks5", "auth-refused", b"\x01\x05\x02\x01\x01")
put("socks5", "auth-bad-version", b"\x01\x05\x02\x05\x00")
put("socks5", "bad-version", b"\x00\x04\x00")
put("socks5", "http-answer", b"\x00HTTP/1.1 400 Bad Request\r\n\r\n")
put("socks5", "bad-atyp", b"\x00\x05\x00\x05\x00\x00\x02\x00\x00")
put("socks5", "extra-after-method", b"\xf8\x05\x00\x05\x00\x00\x01" + bytes(6))
put("socks5", "closed-mid-reply", b"\x00\x05\x00\x05\x00\x00\x01\x7f")

# auth: byte 0 even = password file; odd = an Authorization value.
put("auth", "file", "\x00# users\nalice:secret\r\nbob:b:o:b\n\n" + "c" * 128 + ":" + "p" * 256 + "\n")
put("auth", "file-bad", "\x00alice\n")
put("auth", "file-ctl", "\x00al\x01ice:x\n")
put("auth", "file-long", "\x00" + "c" * 129 + ":x\n")
put("auth", "basic", "\x01Basic YWxpY2U6c2VjcmV0")
put("auth", "basic-bad", "\x01basic   YWxpY2U6c2VjcmV")
put("auth", "bearer", "\x01Bearer a.b.c")
put("auth", "other", "\x01Digest x")

# json
for name, v in {"object": '{"a":1,"b":[true,false,null,"x\\u00e9\\ud83d\\ude00"],"c":{"d":-0.5e3}}',
                "deep": "[" * 20 + "]" * 20, "dup": '{"a":1,"a":2}', "bad-surrogate": '"\\ud800"',
                "control": '"a\x01b"', "utf8-bad": b'"\xc0\xaf"', "int-max": "9223372036854775807",
                "int-over": "-9223372036854775809", "leading-zero": "012", "many": "{" + ",".join('"k%d":%d' % (i, i) for i in range(40)) + "}",
                "long-key": '{"' + "k" * 70 + '":1}', "trailing": '{"a":1} x'}.items():
    put("json", name, v)

# der: byte 0 even = writer program (op, arg, ...); odd = raw DER for der_read.
put("der", "prog-cert-like", bytes([0, 0, 0, 2, 3, 1, 0xff, 4, 20]) + b"1.2.840.113549.1.1.11" + bytes([8, 0]) +
    bytes([0, 1, 6, 30]) + b"relaypro CA abcdefghij" + bytes([1, 0, 7, 0]) + b"\x00\x90\xd0\x6a\x00\x00\x00\x00" +
    bytes([5, 0x83]) + b"\xff" * 16 + bytes([1, 0, 1, 0]))
put("der", "prog-bad-oid", bytes([0, 4, 8]) + b"1.2.3.x.")
put("der", "prog-big-arc", bytes([0, 4, 16]) + b"2.999.4294967296")
put("der", "prog-printable", bytes([0, 6, 30]) + b"not*printable")
put("der", "prog-long", bytes([0, 0, 2, 255]) + b"x" * 255 + bytes([2, 255]) + b"y" * 255)
put("der", "raw-seq", b"\x01\x30\x06\x02\x01\x05\x04\x01\x00")
put("der", "raw-long-len", b"\x01\x04\x82\x01\x00" + b"z" * 256)
put("der", "raw-nonminimal", b"\x01\x04\x81\x05hello")
put("der", "raw-trunc", b"\x01\x30\x84\xff\xff\xff\xff")

# register: byte 0 bit 0 = eof, bit 1 = body only.
body = b'{"relayId":12,"securityToken":"tok-abc-123"}\n'
put("register", "cl", b"\x00HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
put("register", "chunked", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
    b'1a\r\n{"relayId":1,"securityTok\r\n11;ext=1\r\nen":"zz","x":[]}\r\n0\r\n\r\n')
put("register", "eof", b'\x01HTTP/1.0 200 OK\r\n\r\n{"relayId":9223372036854775807,"securityToken":"a"}')
put("register", "dup-cl", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
put("register", "both", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}")
put("register", "503", b"\x01HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
put("register", "chunk-huge", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n")
put("register", "body", b'\x02{"relayId":5,"securityToken":" padded "}')
put("register", "body-ok", b'\x02{"securityToken":"t","relayId":1,"other":{"a":[1]}}')
put("register", "body-zero", b'\x02{"relayId":0,"securityToken":"t"}')

# preauth: byte 0 = flags (0x01 admin listener, 0x02 over maxConnections, 0x04 stopping,
# 0x08 PROXY header first, 0x10 banned, 0x20 no password file, 0x40 IPv6 client), byte 1 =
# pacing (chunk size | half seconds per chunk << 5); "@A" access token, "@G" grant,
# "@B" Basic credentials (expanded by the target).
P = [
    ("connect-basic", 0, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nHost: console.fuzz:443\r\nProxy-Authorization: @B\r\n\r\n"),
    ("connect-bearer", 0, 7, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: Bearer @A\r\n\r\npipelined"),
    ("connect-missing", 0, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\n\r\nCONNECT console.fuzz:443 HTTP/1.1\r\n\r\n"),
    ("connect-bad-password", 0, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: Basic ZnV6ejp3cm9uZw==\r\n\r\n"),
    ("connect-bad-token", 0, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: Bearer a.b.c\r\n\r\n"),
    ("connect-other-scheme", 0x20, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("connect-forbidden", 0, 0, "CONNECT evil.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("connect-port", 0, 0, "CONNECT console.fuzz:22 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("connect-numeric", 0, 0, "CONNECT 167772165:443 HTTP/1.1\r\n\r\n"),
    ("connect-over-limit", 0x02, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("connect-stopping", 0x04, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("connect-banned", 0x10, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("absolute", 0x40, 5, "GET http://cdn.fuzz/x?y=1 HTTP/1.1\r\nHost: other\r\nProxy-Authorization: Bearer @A\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
    ("absolute-https", 0, 0, "GET https://console.fuzz/ HTTP/1.1\r\n\r\n"),
    ("ws", 0, 9, "GET /v1/tunnel?target=console.fuzz:443 HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer @A\r\n\r\n\x82\x85\x01\x02\x03\x04iiiii"),
    ("ws-version", 0, 0, "GET /v1/tunnel?target=console.fuzz:443 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
    ("ws-no-auth", 0, 0, "GET /v1/tunnel?target=console.fuzz%3A443 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
    ("ws-basic", 0, 0, "GET /v1/tunnel?target=console.fuzz:443 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: @B\r\n\r\n"),
    ("token-keepalive", 0, 3, "POST /v1/token HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer @G\r\nContent-Length: 2\r\n\r\n{}CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: Bearer @A\r\n\r\n"),
    ("token-bad", 0, 0, "POST /v1/token HTTP/1.1\r\nAuthorization: Bearer x.y.z\r\n\r\n"),
    ("token-chunked", 0, 0, "POST /v1/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("healthz", 0, 0, "GET /healthz HTTP/1.1\r\n\r\n"),
    ("readyz-404-405", 0, 0, "GET /readyz HTTP/1.1\r\n\r\n"),
    ("unknown", 0, 0, "DELETE /x HTTP/1.1\r\n\r\n"),
    ("udp-not-served", 0, 0, "GET /v1/udp?target=console.fuzz:10500 HTTP/1.1\r\n\r\n"),
    ("admin", 0x01, 4, "GET /metrics HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET /readyz?x HTTP/1.1\r\n\r\nPOST /metrics HTTP/1.1\r\n\r\n"),
    ("admin-close", 0x01, 0, "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ("proxy-v1", 0x08, 6, "PROXY TCP4 192.0.2.1 198.51.100.2 12345 443\r\nCONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\n\r\n"),
    ("proxy-v2", 0x08, 0, "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x02\x30\x39\x01\xbb" + "GET /healthz HTTP/1.1\r\n\r\n"),
    ("proxy-bad", 0x08, 0, "PROXY TCP9 x\r\nGET / HTTP/1.1\r\n\r\n"),
    ("bad-heads", 0, 0, "GET / HTTP/1.1\rHost: a\r\n\r\n"),
    ("dup-auth", 0, 0, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Authorization: @B\r\nProxy-Authorization: @B\r\n\r\n"),
    ("too-large", 0, 0, "GET /" + "a" * 9000 + " HTTP/1.1\r\n\r\n"),
    ("slow-head", 0, 0xe1, "CONNECT console.fuzz:443 HTTP/1.1\r\nProxy-Auth"),
    ("half-head-eof", 0, 0, "CONNECT console.fuzz:4"),
]
for name, flags, pace, text in P:
    put("preauth", name, bytes([flags, pace]) + text.encode("latin-1"))

# ca: the bundle the relay writes (argument), then hostile variants of it.
if len(sys.argv) > 1:
    pem = open(sys.argv[1], "rb").read()
    put("ca", "bundle", pem)
    blocks = pem.split(b"-----END")
    put("ca", "key-only", pem[:pem.index(b"-----BEGIN CERTIFICATE")])
    put("ca", "cert-only", pem[pem.index(b"-----BEGIN CERTIFICATE"):])
    put("ca", "no-end", pem[:pem.rindex(b"-----END")])
    put("ca", "crlf", pem.replace(b"\n", b"\r\n"))
    put("ca", "flipped-b64", pem.replace(b"MII", b"MIJ", 1))
    put("ca", "pkcs8-label", pem.replace(b"RSA PRIVATE KEY", b"PRIVATE KEY"))
    put("ca", "swapped", pem[pem.index(b"-----BEGIN CERTIFICATE"):] + pem[:pem.index(b"-----BEGIN CERTIFICATE")])
put("ca", "empty", b"")
put("ca", "garbage", b"-----BEGIN RSA PRIVATE KEY-----\nMA==\n-----END RSA PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")


# certfile: two bytes (big-endian) = length of the certFile text, that text, then keyFile.
# Made with the openssl CLI when it is installed: root (RSA) -> intermediate (EC) -> leaves.
def certfile_seeds():
    import shutil, subprocess, tempfile
    if not shutil.which("openssl"):
        return
    d = tempfile.mkdtemp(prefix="seeds-certfile-")

    def ossl(*a):
        subprocess.run(("openssl",) + a, cwd=d, check=True, capture_output=True)

    def rd(name):
        return open(os.path.join(d, name), "rb").read()

    ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "root.key")
    ossl("req", "-x509", "-new", "-key", "root.key", "-subj", "/CN=Seed Root", "-days", "3650",
         "-out", "root.pem", "-addext", "basicConstraints=critical,CA:TRUE")
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "inter.key")
    ossl("req", "-new", "-key", "inter.key", "-subj", "/CN=Seed Inter", "-out", "inter.csr")
    with open(os.path.join(d, "ca.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\n")
    ossl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key",
         "-set_serial", "2", "-days", "3650", "-extfile", "ca.ext", "-out", "inter.pem")
    for name, alg, opt in (("ec", "EC", "ec_paramgen_curve:P-384"), ("rsa", "RSA", "rsa_keygen_bits:2048")):
        ossl("genpkey", "-algorithm", alg, "-pkeyopt", opt, "-out", name + ".key")
        ossl("req", "-new", "-key", name + ".key", "-subj", "/CN=localhost", "-out", name + ".csr")
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "inter.pem", "-CAkey", "inter.key",
             "-set_serial", "3", "-days", "3650", "-out", name + ".pem")
    ossl("ec", "-in", "ec.key", "-out", "ec.sec1")
    ossl("rsa", "-in", "rsa.key", "-traditional", "-out", "rsa.pkcs1")

    def pair(cert, key):
        return len(cert).to_bytes(2, "big") + cert + key

    ec_chain = rd("ec.pem") + rd("inter.pem")
    put("certfile", "ec-pkcs8", pair(ec_chain, rd("ec.key")))
    put("certfile", "ec-sec1-root", pair(ec_chain + rd("root.pem"), rd("ec.sec1")))
    put("certfile", "rsa-pkcs1", pair(rd("rsa.pem") + rd("inter.pem"), rd("rsa.pkcs1")))
    put("certfile", "rsa-pkcs8-crlf", pair((rd("rsa.pem") + rd("inter.pem")).replace(b"\n", b"\r\n"),
                                           rd("rsa.key")))
    put("certfile", "reversed", pair(rd("inter.pem") + rd("ec.pem"), rd("ec.key")))
    put("certfile", "mismatch", pair(ec_chain, rd("rsa.key")))
    put("certfile", "combined", pair(ec_chain + rd("ec.key"), ec_chain + rd("ec.key")))
    shutil.rmtree(d)


certfile_seeds()
put("certfile", "empty", b"\x00\x00")
put("certfile", "garbage", b"\x00\x3b-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
    b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")

# body: byte 0 even = chunked, odd = Content-Length from bytes 1-2; then the bytes after
# the head (fuzz_body.c).
for name, v in {
        "chunked": b"\x00\x00\x00" + b"5;a=b\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nT: 1\r\n\r\nGET /next",
        "chunked-bare-lf": b"\x00\x00\x00" + b"5\nhello\r\n0\r\n\r\n",
        "chunked-open": b"\x00\x00\x00" + b"ffff\r\n" + b"x" * 100,
        "length": b"\x01\x00\x0aGET / 0123456789 then the next request",
        "length-short": b"\x01\x10\x00short"}.items():
    put("body", name, v)


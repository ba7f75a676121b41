#!/usr/bin/env python3
"""test_opcert.py -- the operator's certificate (certFile/keyFile).

Chains made with the openssl CLI (root -> intermediate -> leaf; leaves with EC P-256,
P-384 and RSA 2048 keys, each in its PKCS#1 / SEC1 / PKCS#8 forms) are served by the real
binary and verified by curl, Python's ssl and a small Go client, each trusting the
operator's root only (and refusing with another root). Hot reload: files replaced
atomically and in place are picked up without SIGHUP (waiting on the cert.reload log line),
with SIGHUP at once; a bad replacement gives cert.reload_fail and the old leaf keeps
serving; a connection accepted before reloads completes its handshake with the leaf of its
time even when later reloads had to wait for its slot. An expired leaf (made with
`openssl ca` and past dates) makes /readyz 503. Bad input at start (chain out of order,
forged link, encrypted / Ed25519 / DSA keys, RSA-1024, P-521, key and leaf that do not
match, certFile without keyFile) exits 2 naming the file, with no key text in the error.
"""
import calendar
import json
import os
import re
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relays  # noqa: E402
import relaytest as rt  # noqa: E402

BIN = rt.relay_bin()
TOKEN = "opcert-security-token-0123456789"
S = {}

GO_CLIENT = r'''package main

// A TLS client that trusts only the CA file given: prints the leaf's CN, the verified
// chain's length and the status line of GET /healthz.
import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

func main() {
	addr, name, caFile := os.Args[1], os.Args[2], os.Args[3]
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fmt.Println("ERR no certificate in", caFile)
		os.Exit(1)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: name})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	defer c.Close()
	st := c.ConnectionState()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name)
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Printf("OK %s %d %s\n", st.PeerCertificates[0].Subject.CommonName,
		len(st.VerifiedChains[0]), line)
}
'''


def write(path, data, atomic=True):
    """atomic: a rename over the file; else truncated and rewritten in place."""
    rt.write_file(path, data, atomic=atomic)


read = rt.read_file


def config(d, port, admin, cert=None, key=None, extra=""):
    top = ["privateFolder = " + os.path.join(S["tmp"], "private")]
    if cert:
        top.append("certFile = " + cert)
    if key:
        top.append("keyFile = " + key)
    top.append(extra)
    lines = relays.relay_config(security_token=TOKEN, top=top, https=port, admin=admin,
                                limits={"headerTimeout": "120s"})
    path = os.path.join(d, "config.ini")
    write(path, "\n".join(lines) + "\n")
    return path


def start_relay(name, cert=None, key=None, admin=True, extra=""):
    d = os.path.join(S["tmp"], name)
    os.makedirs(d, exist_ok=True)
    r = {"dir": d, "port": rt.free_port(), "admin": rt.free_port() if admin else 0,
         "log": os.path.join(d, "relay.log")}
    r["cfg"] = config(d, r["port"], r["admin"], cert, key, extra)
    r["proc"] = rt.start_process([BIN, "run", "-c", r["cfg"]], tmpdir=d, name="relay")
    r["started"] = bool(rt.wait_for_log(r["log"], "start", timeout=30))
    return r


def cn_of(sock):
    for rdn in sock.getpeercert().get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def served_cn(r, cafile=None):
    """The CN of the leaf a new handshake gets, verified against the operator's root."""
    s = rt.tls_connect("127.0.0.1", r["port"], cafile=cafile or S["pki"].root,
                       server_hostname="localhost")
    try:
        return cn_of(s)
    finally:
        s.close()


def hup_and_wait(r):
    rec, since = relays.reload(r["proc"].pid, r["log"], timeout=20)
    return since, rec


def metrics(r):
    resp = rt.http_request("127.0.0.1", r["admin"], "GET", "/metrics")
    return resp.body.decode() if resp.status == 200 else ""


def metric(r, series):
    m = re.search("^" + re.escape(series) + r" (\d+)$", metrics(r), re.M)
    return int(m.group(1)) if m else None


def not_after(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-enddate"],
                         capture_output=True, text=True, timeout=30).stdout
    return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def install(cert, key):
    """Make the relay's configured files (pair.chain / pair.key in S['live']) hold this pair."""
    write(S["live_cert"], read(cert))
    write(S["live_key"], read(key))


def https_accepted(r):
    """HTTPS connections accepted so far (a counter: other connections closing cannot
    hide a new one)."""
    return metric(r, 'relaypro_connections_total{listener="https"}') or 0


# ================================================================= cases

@rt.case(timeout=300)
def setup():
    S["tmp"] = rt.make_tmpdir()
    pki = S["pki"] = rt.OpensslPKI(os.path.join(S["tmp"], "pki"), root_key="rsa:2048",
                                   inter_key="ec:P-256")
    S["other"] = rt.OpensslPKI(os.path.join(S["tmp"], "other"), name="Other")
    S["forms"] = []
    for name, spec, form, label in [
            ("ec256-sec1", "ec:P-256", "sec1", "ec-256"),
            ("ec256-pkcs8", "ec:P-256", "pkcs8", "ec-256"),
            ("ec384-sec1", "ec:P-384", "sec1", "ec-384"),
            ("ec384-pkcs8", "ec:P-384", "pkcs8", "ec-384"),
            ("rsa2048-pkcs1", "rsa:2048", "pkcs1", "rsa-2048"),
            ("rsa2048-pkcs8", "rsa:2048", "pkcs8", "rsa-2048")]:
        chain, key, pem = pki.leaf(name, spec, form)
        S["forms"].append((name, chain, key, pem, label))
    rt.check(len(S["forms"]) == 6, "six operator pairs made with openssl")
    for name, _, key, _, _ in S["forms"]:
        head = read(key).splitlines()[0]
        want = {"sec1": "EC PRIVATE KEY", "pkcs1": "RSA PRIVATE KEY", "pkcs8": "PRIVATE KEY"}
        rt.check(head == "-----BEGIN %s-----" % want[name.split("-")[1]],
                 "%s: key file is %s" % (name, head))


@rt.case(timeout=900)
def go_client():
    """Go from Debian (golang-go), installed when missing; the client built in our folder."""
    go, why = rt.apt_install("golang-go", "go")
    if go is None:
        S["go_skip"] = why
        rt.skip("Go client", why)
        return
    d = os.path.join(S["tmp"], "goclient")
    os.makedirs(d)
    write(os.path.join(d, "main.go"), GO_CLIENT)
    write(os.path.join(d, "go.mod"), "module opcertclient\n\ngo 1.19\n")
    env = dict(rt.clean_environ(), GOCACHE=os.path.join(d, "cache"), GOPATH=os.path.join(d, "gopath"),
               GOPROXY="off", GOFLAGS="-mod=mod", CGO_ENABLED="0", GOTOOLCHAIN="local",
               HOME=d)
    r = subprocess.run([go, "build", "-o", "client", "."], cwd=d, env=env, capture_output=True,
                       text=True, timeout=600)
    ok = r.returncode == 0 and os.path.exists(os.path.join(d, "client"))
    rt.check(ok, "Go client builds", r.stderr[-500:])
    S["go"] = os.path.join(d, "client") if ok else None


def go_connect(r, cafile):
    out = subprocess.run([S["go"], "127.0.0.1:%d" % r["port"], "localhost", cafile],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


@rt.case(timeout=600)
def clients_verify_every_key_form():
    pki, other = S["pki"], S["other"]
    for name, chain, key, pem, label in S["forms"]:
        r = start_relay("form-" + name, chain, key)
        rt.check(r["started"], "%s: relay started with the operator's pair" % name,
                 r["proc"].stderr())
        if not r["started"]:
            continue
        ev = rt.wait_for_log(r["log"], "cert.loaded", timeout=5)
        rt.check(ev and ev.get("subject") == name and ev.get("key") == label
                 and ev.get("chain") == 2, "%s: cert.loaded names the leaf and key" % name, ev)
        c = subprocess.run(["curl", "-sS", "--cacert", pki.root, "--resolve",
                            "localhost:%d:127.0.0.1" % r["port"], "-w", " verify=%{ssl_verify_result}",
                            "https://localhost:%d/healthz" % r["port"]],
                           capture_output=True, text=True, timeout=30)
        rt.check(c.returncode == 0 and c.stdout == '{"status":"ok"}\n verify=0',
                 "%s: curl verifies against the root only" % name, c.stdout + c.stderr)
        c = subprocess.run(["curl", "-sS", "--cacert", other.root, "--resolve",
                            "localhost:%d:127.0.0.1" % r["port"],
                            "https://localhost:%d/healthz" % r["port"]],
                           capture_output=True, text=True, timeout=30)
        rt.check(c.returncode == 60, "%s: curl with another root refuses" % name, c.returncode)
        s = rt.tls_connect("127.0.0.1", r["port"], cafile=pki.root, server_hostname="localhost")
        rt.check_eq(cn_of(s), name, "%s: Python ssl verifies, leaf CN" % name)
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        resp = rt.read_response(s)
        rt.check_eq(resp.status, 200, "%s: ready over the operator's certificate" % name)
        s.close()
        try:
            rt.tls_connect("127.0.0.1", r["port"], cafile=other.root, server_hostname="localhost")
            refused = False
        except ssl.SSLCertVerificationError:
            refused = True
        rt.check(refused, "%s: Python ssl with another root refuses" % name)
        if S.get("go"):
            out = go_connect(r, pki.root)
            rt.check_eq(out, "OK %s 3 HTTP/1.1 200 OK" % name,
                        "%s: Go verifies (chain leaf, intermediate, root)" % name)
            out = go_connect(r, other.root)
            rt.check(out.startswith("ERR") and "unknown authority" in out,
                     "%s: Go with another root refuses" % name, out)
        else:
            rt.skip("%s: Go client" % name, S.get("go_skip", "the Go client did not build"))
        rt.check_eq(metric(r, 'relaypro_certificate_not_after_seconds{source="operator"}'),
                    not_after(pem), "%s: /metrics exports the leaf's not-after" % name)
        r["proc"].stop()


@rt.case(timeout=300)
def hot_reload():
    pki = S["pki"]
    d = os.path.join(S["tmp"], "live")
    os.makedirs(d)
    S["live_cert"], S["live_key"] = os.path.join(d, "pair.chain"), os.path.join(d, "pair.key")
    S["gen"] = {}
    for g, spec in [("gen-a", "ec:P-256"), ("gen-b", "rsa:2048"), ("gen-c", "ec:P-384"),
                    ("gen-d", "ec:P-256"), ("gen-e", "ec:P-256")]:
        S["gen"][g] = pki.leaf(g, spec)
    install(*S["gen"]["gen-a"][:2])
    r = S["live"] = start_relay("live", S["live_cert"], S["live_key"])
    rt.check(r["started"], "relay started with gen-a", r["proc"].stderr())
    rt.check_eq(served_cn(r), "gen-a", "gen-a served")

    # replaced atomically (rename), no SIGHUP
    since = rt.log_offset(r["log"])
    install(*S["gen"]["gen-b"][:2])
    ev = rt.wait_for_log(r["log"], {"event": "cert.reload", "trigger": "file_change"},
                         timeout=30, since=since)
    rt.check(ev and ev.get("subject") == "gen-b" and ev.get("key") == "rsa-2048",
             "atomic replace: cert.reload without SIGHUP", ev)
    rt.check_eq(served_cn(r), "gen-b", "atomic replace: new handshakes get gen-b")

    # rewritten in place (truncate + write), no SIGHUP
    write(S["live_cert"], read(S["gen"]["gen-c"][0]), atomic=False)
    write(S["live_key"], read(S["gen"]["gen-c"][1]), atomic=False)
    ev = rt.wait_for_log(r["log"], lambda e: e.get("event") == "cert.reload"
                         and e.get("subject") == "gen-c", timeout=30, since=since)
    rt.check(ev and ev.get("trigger") == "file_change", "in-place rewrite: cert.reload", ev)
    rt.check_eq(served_cn(r), "gen-c", "in-place rewrite: new handshakes get gen-c")
    fails = [e for e in rt.read_json_lines(r["log"], since) if e.get("event") == "cert.reload_fail"]
    rt.check(not fails, "two files replaced one after the other: never loaded half-done", fails)

    # SIGHUP: at once
    install(*S["gen"]["gen-d"][:2])
    since, ev = hup_and_wait(r)
    rt.check(ev and ev.get("ok") is True, "SIGHUP: config.reload ok", ev)
    rt.check_eq(served_cn(r), "gen-d", "SIGHUP: the very next handshake gets gen-d")
    rt.check(rt.wait_for_log(r["log"], {"event": "cert.reload", "trigger": "sighup",
                                        "subject": "gen-d"}, timeout=5, since=since),
             "SIGHUP: cert.reload with trigger sighup")

    # a bad replacement: gen-d's chain with gen-e's key
    failed0 = metric(r, 'relaypro_certificate_reloads_total{result="failed"}')
    since = rt.log_offset(r["log"])
    write(S["live_key"], read(S["gen"]["gen-e"][1]))
    ev = rt.wait_for_log(r["log"], "cert.reload_fail", timeout=30, since=since)
    rt.check(ev and ev.get("trigger") == "file_change" and S["live_key"] in ev.get("reason", "")
             and "does not match" in ev.get("reason", ""),
             "mismatched key: cert.reload_fail naming keyFile", ev)
    rt.check_eq(served_cn(r), "gen-d", "mismatched key: gen-d keeps serving")
    since, _ = hup_and_wait(r)
    ev = rt.wait_for_log(r["log"], "cert.reload_fail", timeout=5, since=since)
    rt.check(ev and ev.get("trigger") == "sighup", "mismatched key, SIGHUP: cert.reload_fail", ev)
    rt.check_eq(served_cn(r), "gen-d", "mismatched key, SIGHUP: gen-d keeps serving")
    since = rt.log_offset(r["log"])
    write(S["live_cert"], "not a certificate\n", atomic=False)
    ev = rt.wait_for_log(r["log"], "cert.reload_fail", timeout=30, since=since)
    rt.check(ev and "no certificate" in ev.get("reason", ""), "garbage chain: cert.reload_fail", ev)
    rt.check_eq(served_cn(r), "gen-d", "garbage chain: gen-d keeps serving")
    rt.check_eq(metric(r, 'relaypro_certificate_reloads_total{result="failed"}'), failed0 + 3,
                "/metrics counts the refused reloads")
    key_text = read(S["gen"]["gen-e"][1]).splitlines()[1]
    rt.check(key_text not in open(r["log"]).read(), "no key text in the log")

    since = rt.log_offset(r["log"])
    install(*S["gen"]["gen-e"][:2])
    rt.check(rt.wait_for_log(r["log"], {"event": "cert.reload", "subject": "gen-e"}, timeout=30,
                             since=since), "a good pair again: cert.reload")
    rt.check_eq(served_cn(r), "gen-e", "a good pair again: gen-e served")
    rt.check_eq(metric(r, 'relaypro_certificate_not_after_seconds{source="operator"}'),
                not_after(S["gen"]["gen-e"][2]), "/metrics: the new leaf's not-after")


@rt.case(timeout=300)
def handshake_set_up_before_reloads_keeps_its_certificate():
    """Accepted connections hold the pair of their time until their handshake is done; with
    all four slots held the next reload waits (cert.reload_deferred) and runs as soon as a
    handshake finishes."""
    pki, r = S["pki"], S["live"]
    for g in ("gen-f", "gen-g", "gen-h", "gen-i", "gen-j"):
        S["gen"][g] = pki.leaf(g, "ec:P-256")
    install(*S["gen"]["gen-f"][:2])
    hup_and_wait(r)
    rt.check_eq(served_cn(r), "gen-f", "gen-f served")
    held = []
    for g, nxt in [("gen-f", "gen-g"), ("gen-g", "gen-h"), ("gen-h", "gen-i")]:
        before = https_accepted(r)
        sock = rt.connect("127.0.0.1", r["port"])
        held.append((g, sock))
        rt.check(rt.wait_until(lambda: https_accepted(r) > before, timeout=10),
                 "connection accepted while %s is served" % g)
        install(*S["gen"][nxt][:2])
        since, ev = hup_and_wait(r)
        rt.check(rt.wait_for_log(r["log"], {"event": "cert.reload", "subject": nxt}, timeout=5,
                                 since=since), "%s loaded while a handshake holds %s" % (nxt, g))
    install(*S["gen"]["gen-j"][:2])
    since, _ = hup_and_wait(r)
    ev = rt.wait_for_log(r["log"], "cert.reload_deferred", timeout=5, since=since)
    rt.check(ev is not None, "every slot held: the next reload waits", ev)
    rt.check_eq(served_cn(r), "gen-i", "while it waits, gen-i serves")
    g, sock = held.pop(0)
    tls = rt.tls_wrap(sock, cafile=pki.root, server_hostname="localhost")
    rt.check_eq(cn_of(tls), "gen-f", "the first held connection gets gen-f, intact after 3 reloads")
    tls.close()
    ev = rt.wait_for_log(r["log"], {"event": "cert.reload", "subject": "gen-j"}, timeout=10,
                         since=since)
    rt.check(ev is not None, "its slot freed: the waiting reload runs", ev)
    rt.check_eq(served_cn(r), "gen-j", "gen-j served")
    for g, sock in held:
        tls = rt.tls_wrap(sock, cafile=pki.root, server_hostname="localhost")
        rt.check_eq(cn_of(tls), g, "held connection completes with %s" % g)
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rt.check_eq(rt.read_response(tls).status, 200, "and is served over it")
        tls.close()


@rt.case(timeout=300)
def expired_leaf_makes_readyz_503():
    pki = S["pki"]
    chain, key, pem = pki.leaf("expired", "ec:P-256", start="20200101000000Z",
                               end="20200102000000Z")
    d = os.path.join(S["tmp"], "exp-files")
    os.makedirs(d)
    cert_path, key_path = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
    write(cert_path, read(chain))
    write(key_path, read(key))
    r = start_relay("expired", cert_path, key_path)
    rt.check(r["started"], "relay starts with an expired leaf (so it can say why it is not ready)",
             r["proc"].stderr())
    ev = rt.wait_for_log(r["log"], "cert.expired", timeout=10)
    rt.check(ev and ev.get("not_after", "").startswith("2020-01-02T00:00:00"),
             "cert.expired logged with the not-after", ev)
    resp = rt.http_request("127.0.0.1", r["admin"], "GET", "/readyz")
    rt.check(resp.status == 503 and resp.json().get("reason") == "certificate_expired",
             "admin /readyz: 503 certificate_expired", resp)
    s = rt.tls_connect("127.0.0.1", r["port"], verify=False)
    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    resp = rt.read_response(s)
    s.close()
    rt.check(resp.status == 503 and b"certificate_expired" in resp.body,
             "HTTPS /readyz: 503 certificate_expired", resp)
    rt.check_eq(metric(r, 'relaypro_certificate_not_after_seconds{source="operator"}'),
                calendar.timegm((2020, 1, 2, 0, 0, 0)), "/metrics: the expired not-after")
    try:
        served_cn(r)
        refused = False
    except ssl.SSLCertVerificationError as e:
        refused = "expired" in str(e)
    rt.check(refused, "Python ssl refuses the expired leaf")

    good = pki.leaf("renewed", "ec:P-256")
    since = rt.log_offset(r["log"])
    write(cert_path, read(good[0]))
    write(key_path, read(good[1]))
    rt.check(rt.wait_for_log(r["log"], {"event": "cert.reload", "subject": "renewed"}, timeout=30,
                             since=since), "renewed pair loaded")
    resp = rt.http_request("127.0.0.1", r["admin"], "GET", "/readyz")
    rt.check_eq(resp.status, 200, "after the renewal /readyz is 200")
    since = rt.log_offset(r["log"])
    write(cert_path, read(chain))
    write(key_path, read(key))
    ev = rt.wait_for_log(r["log"], "cert.reload_fail", timeout=30, since=since)
    rt.check(ev and "expired" in ev.get("reason", ""), "a reload to an expired leaf is refused", ev)
    rt.check_eq(served_cn(r), "renewed", "the valid leaf keeps serving")
    rt.check_eq(rt.http_request("127.0.0.1", r["admin"], "GET", "/readyz").status, 200,
                "and /readyz stays 200")
    r["proc"].stop()


def run_bad(name, cert, key, *needles):
    """Start the relay (and check-config) with this pair: exit 2, the file named, the
    needles in the error, no key text."""
    d = os.path.join(S["tmp"], "bad-" + name)
    os.makedirs(d)
    cfg = config(d, rt.free_port(), 0, cert, key)
    env = dict(rt.clean_environ(), RELAYPRO_USER="root")
    for cmd in ("run", "check-config"):
        p = subprocess.run([BIN, cmd, "-c", cfg], capture_output=True, text=True, timeout=60,
                           env=env, cwd=d)
        ok = p.returncode == 2 and all(n in p.stderr for n in needles)
        rt.check(ok, "%s: %s exits 2 naming the file" % (name, cmd),
                 "exit %s: %s" % (p.returncode, p.stderr.strip()[-600:]))
        if key and os.path.exists(key):
            lines = [ln for ln in read(key).splitlines() if ln and not ln.startswith("-----")
                     and ":" not in ln]
            rt.check(lines and lines[0] not in p.stderr and "PRIVATE KEY-----" not in p.stderr,
                     "%s: %s: no key text in the error" % (name, cmd))


@rt.case(timeout=600)
def bad_pairs_exit_2():
    pki = S["pki"]
    good_chain, good_key, _ = S["forms"][0][1:4]
    c, k, _ = pki.leaf("reversed", "ec:P-256", order=("inter", "leaf"))
    run_bad("chain reversed", c, k, c, "chain out of order", "wrong way round")
    c, k, _ = pki.leaf("noinner", "ec:P-256", order=("leaf", "root"))
    run_bad("intermediate missing", c, k, c, "chain out of order")
    c, k, _ = pki.leaf("full", "ec:P-256", order=("leaf", "inter", "root"))
    d = os.path.join(S["tmp"], "ok-full")
    os.makedirs(d)
    p = subprocess.run([BIN, "check-config", "-c", config(d, rt.free_port(), 0, c, k)],
                       capture_output=True, text=True, timeout=60, env=rt.clean_environ())
    rt.check(p.returncode == 0, "leaf, intermediate and root: accepted", p.stderr)

    # the intermediate of another PKI with the same name: names match, the signature does not
    twin = rt.OpensslPKI(os.path.join(S["tmp"], "twin"), name="Test")
    c, k, leaf_pem = pki.leaf("forged", "ec:P-256", order=("leaf",))
    forged = os.path.join(S["tmp"], "forged.chain")
    write(forged, read(leaf_pem) + read(twin.inter))
    run_bad("forged link", forged, k, forged, "does not verify")

    _, enc, _ = pki.leaf("enc8", "rsa:2048", "pkcs8-encrypted")
    run_bad("encrypted PKCS#8 key", good_chain, enc, enc, "encrypted")
    _, enc, _ = pki.leaf("encpem", "rsa:2048", "pem-encrypted")
    run_bad("encrypted PKCS#1 key", good_chain, enc, enc, "encrypted")
    ed = pki.key("ed25519", "ed25519")
    run_bad("Ed25519 key", good_chain, ed, ed, "Ed25519")
    dsa = pki.key("dsa8", "dsa")
    run_bad("DSA key (PKCS#8)", good_chain, dsa, dsa, "DSA")
    dsa = pki.key("dsatrad", "dsa", "traditional")
    run_bad("DSA key (traditional)", good_chain, dsa, dsa, "DSA PRIVATE KEY")
    c, k, _ = pki.leaf("rsa1024", "rsa:1024", "pkcs1")
    run_bad("RSA 1024", c, k, k, "1024 bits")
    c, k, _ = pki.leaf("p521", "ec:P-521", "sec1")
    run_bad("EC P-521", c, k, k, "P-521")
    other_key = S["forms"][2][2]
    run_bad("key of another leaf", good_chain, other_key, other_key, good_chain, "does not match")
    run_bad("certFile without keyFile", good_chain, None, "certFile", "keyFile")
    missing = os.path.join(S["tmp"], "missing.pem")
    run_bad("missing certFile", missing, good_key, missing, "cannot open")


@rt.case(timeout=300)
def minted_certificate_when_unset():
    """Without certFile the minted certificate serves; certFile set and unset by SIGHUP."""
    pki = S["pki"]
    r = start_relay("minted")
    rt.check(r["started"], "relay started without certFile")

    def issuer():
        s = rt.tls_connect("127.0.0.1", r["port"], verify=False)
        der = s.getpeercert(binary_form=True)
        s.close()
        out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-issuer"],
                             input=der, capture_output=True, timeout=30).stdout.decode()
        return out.strip()
    rt.check("relaypro CA" in issuer(), "minted certificate served", issuer())
    rt.check(metric(r, 'relaypro_certificate_not_after_seconds{source="minted"}') > time.time(),
             "/metrics: the minted certificate's not-after")
    chain, key = S["forms"][1][1:3]
    write(r["cfg"], read(r["cfg"]).replace("serverName = localhost",
                                           "serverName = localhost\ncertFile = %s\nkeyFile = %s"
                                           % (chain, key)))
    hup_and_wait(r)
    rt.check_eq(served_cn(r), S["forms"][1][0], "certFile set by SIGHUP: the operator's leaf")
    write(r["cfg"], re.sub(r"(certFile|keyFile) = .*\n", "", read(r["cfg"])))
    since, _ = hup_and_wait(r)
    rt.check("relaypro CA" in issuer(), "certFile removed by SIGHUP: the minted certificate again")
    rt.check(metric(r, 'relaypro_certificate_not_after_seconds{source="minted"}') is not None,
             "/metrics: source minted again")
    r["proc"].stop()


@rt.case(timeout=120)
def key_file_readable_by_others_is_warned():
    """keyFile holds a private key: readable by others, a file.mode warning names it (path
    and mode, never its content), at start and at every reload; 0600 gives none."""
    chain, key = S["forms"][0][1:3]
    d = os.path.join(S["tmp"], "keymode")
    os.makedirs(d)
    k = os.path.join(d, "open.key")
    write(k, read(key))
    os.chmod(k, 0o600)
    r = start_relay("keymode", chain, k)
    rt.check(r["started"], "relay with a 0600 keyFile starts")
    early = [e for e in rt.read_json_lines(r["log"]) if e.get("event") == "file.mode"]
    rt.check(not early, "0600 keyFile: no file.mode warning up to the start line", early)
    os.chmod(k, 0o644)
    since, _ = hup_and_wait(r)
    ev = rt.wait_for_log(r["log"], lambda e: e.get("event") == "file.mode"
                         and e.get("file") == k, timeout=10, since=since)
    rt.check(ev and ev.get("what") == "key file" and "BEGIN" not in json.dumps(ev),
             "chmod 0644 and SIGHUP: file.mode names the keyFile, without its content", ev)
    r["proc"].stop()


@rt.case(timeout=120)
def unreadable_key_after_the_drop_is_named():
    """Started as root with a `user` that cannot read keyFile: priv.access names it (a
    renewal could not be loaded after the drop)."""
    if os.geteuid() != 0:
        rt.skip("priv.access for keyFile", "needs root")
        return
    with open("/etc/passwd") as f:
        if not any(ln.startswith("nobody:") for ln in f):
            rt.skip("priv.access for keyFile", "no user nobody in /etc/passwd")
            return
    chain, key = S["forms"][0][1:3]
    d = os.path.join(S["tmp"], "drop")
    os.makedirs(d)
    k = os.path.join(d, "root-only.key")
    write(k, read(key))
    os.chmod(k, 0o600)
    port = rt.free_port()
    cfg = config(d, port, 0, chain, k)
    p = rt.start_process([BIN, "run", "-c", cfg], tmpdir=d, name="relay",
                         env={"RELAYPRO_USER": "nobody"}, keep_root=False)
    log = os.path.join(d, "relay.log")
    ev = rt.wait_for_log(log, lambda e: e.get("event") == "priv.access"
                         and e.get("what") == "keyFile", timeout=30)
    rt.check(ev and ev.get("path") == k and "renewed certificate" in ev.get("msg", ""),
             "priv.access warns that keyFile is unreadable after the drop", ev)
    rt.check(rt.wait_for_log(log, "priv.drop", timeout=10), "and the relay drops as configured")
    p.stop()


if __name__ == "__main__":
    rt.main("opcert", deadline=2400)

#!/usr/bin/env python3
"""test_kubernetes.py — the Kubernetes deployment as written in docker/kubernetes/, and the
probes it relies on (docs/protocol.md; docs/configuration.md; docs/design.md).

1. Every manifest is validated offline, strictly, against the object schemas of Kubernetes
   and cert-manager: tests/kubernetes/validate.mjs, with the npm packages pinned (version
   and integrity) in tests/kubernetes/package-lock.json, installed by `npm ci` into
   build/k8s-validate/ (see that script for what is checked). Broken copies of the
   manifests (an unknown field, a wrong type, a duplicate key, a missing required member)
   must fail it: the validator is not vacuous.
2. What the manifests say is what an operator needs: 2+ replicas sharing the CA bundle
   Secret and the registration Secret, probes on the admin listener, a pinned image (the
   Makefile's VERSION), non-root, read-only, no capabilities, seccomp RuntimeDefault,
   resources from the table in docker/README.md for the configured maxConnections,
   terminationGracePeriodSeconds >= preStop + shutdownTimeout + 10 s, a PDB, a
   NetworkPolicy (9443 in; console and DNS out), serverName/serverAltNames naming the
   Service, externalTrafficPolicy Local, and the PROXY-protocol variant.
3. The pod's environment is the relay's: the ConfigMap (and the PROXY-protocol one) with
   the registration Secret made by `relaypro register --env` | `kubectl create secret
   --from-env-file` (kubectl's client-side dry run) pass `relaypro check-config`, and the
   relay run with exactly that environment (listen addresses moved to loopback ports)
   answers the Deployment's probes on the admin port: /readyz 200 — also with
   proxyProtocol on, where the proxy port accepts a plain probe from an untrusted address
   and closes it without an answer (not refused, not left hanging) — and accepts a grant the
   console signed for the registered relay id.
4. The admin probes at maxConnections: the proxy port answers 503 too_many_connections,
   the admin /healthz and /readyz still 200.
Last line: `kubernetes: N passed, N failed`.
"""
import base64
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import relaytest as rt  # noqa: E402

rt.init("kubernetes", deadline=600)
REPO = rt.REPO_DIR
K8S = os.path.join(REPO, "docker", "kubernetes")
MANIFESTS = sorted(glob.glob(os.path.join(K8S, "*.yaml")))
NPM_DIR = rt.K8S_VALIDATOR_DIR
TMP = rt.make_tmpdir("relaytest-k8s-")
ORG = 42
DEP_TOKEN = "dep-k8s-token-77aa"
SEC_TOKEN = "sec-k8s-token-31bb"
RELAY_ID = 5150
state = {}


version = rt.project_version  # VERSION from the Makefile


def load_yaml(path):
    import yaml
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def objects():
    out = {}
    for path in MANIFESTS:
        for d in load_yaml(path):
            out[(os.path.basename(path), d["kind"], d["metadata"]["name"])] = d
    return out


def one(objs, fname, kind):
    found = [d for (f, k, _), d in objs.items() if f == fname and k == kind]
    return found[0] if len(found) == 1 else None


# ------------------------------------------------------------------ 1. schema validation

def npm_install():
    """The pinned validator (relaytest.k8s_validator: npm ci into build/k8s-validate)."""
    d, why = rt.k8s_validator()
    return rt.check(d is not None, "the pinned schema validator is installed (npm ci)", why)


def validate(paths):
    r = subprocess.run(["node", "validate.mjs"] + list(paths), cwd=NPM_DIR, capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


@rt.case(timeout=400)
def manifests_validate_strictly():
    rt.check(len(MANIFESTS) >= 4, "docker/kubernetes holds the manifests",
             [os.path.basename(m) for m in MANIFESTS])
    if not npm_install():
        return
    state["npm"] = True
    rc, out = validate(MANIFESTS)
    ndocs = sum(len(load_yaml(p)) for p in MANIFESTS)
    oks = [ln for ln in out.splitlines() if ln.startswith("ok ")]
    rt.check(rc == 0 and len(oks) == ndocs,
             "every manifest document passes the Kubernetes / cert-manager schemas (%d)" % ndocs, out)
    with open(os.path.join(K8S, "relaypro.yaml")) as f:
        good = f.read()
    broken = [
        ("an unknown field (readOnlyRootFileSystem)",
         good.replace("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"), "readOnlyRootFileSystem"),
        ("a wrong type (replicas: \"2\")", good.replace("replicas: 2", 'replicas: "2"'), "replicas"),
        ("a misspelt preStop member", good.replace("                seconds: 5", "                secs: 5"), "seconds"),
        ("a duplicate key", good.replace("  name: relaypro-config\n", "  name: relaypro-config\n  name: x\n", 1),
         "unique"),
        ("a number in a ConfigMap", good.replace('RELAYPRO_ORGANIZATION_ID: "42"', "RELAYPRO_ORGANIZATION_ID: 42"),
         "must be string"),
    ]
    for name, text, want in broken:
        path = os.path.join(TMP, "broken.yaml")
        with open(path, "w") as f:
            f.write(text)
        rc, out = validate([path])
        rt.check(text != good and rc != 0 and want in out, "the validator refuses %s" % name, out[-600:])


# ------------------------------------------------------------------ 2. what they say

def mem_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", q)
    return int(m.group(1)) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[m.group(2)]


def seconds(v):
    m = re.fullmatch(r"(\d+)(s|m)?", v)
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


@rt.case
def manifests_say_what_operators_need():
    try:
        import yaml  # noqa: F401
    except ImportError:
        rt.check(False, "python3 yaml module", "apt-get install -y python3-yaml")
        return
    objs = objects()
    dep = one(objs, "relaypro.yaml", "Deployment")
    cm = one(objs, "relaypro.yaml", "ConfigMap")
    svc = one(objs, "relaypro.yaml", "Service")
    if not rt.check(dep and cm and svc, "relaypro.yaml: a Deployment, a ConfigMap, a Service"):
        return
    env = dict(cm["data"])
    spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    rt.check(spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0,
             "Deployment: 2+ replicas, rolling update without losing one")
    rt.check_eq(c["image"].rsplit(":", 1)[-1], version(), "Deployment: the image is pinned to VERSION")
    refs = c.get("envFrom", [])
    rt.check({"configMapRef": {"name": "relaypro-config"}} in refs and
             {"secretRef": {"name": "relaypro-registration"}} in refs and
             {"configMapRef": {"name": "relaypro-proxy-protocol", "optional": True}} in refs,
             "Deployment: env from the ConfigMap, the registration Secret, the optional PROXY ConfigMap", refs)
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    bundle = [e["value"] for e in c.get("env", []) if e["name"] == "RELAYPRO_CA_BUNDLE_FILE"]
    ca = vols.get("ca-bundle", {}).get("secret", {})
    rt.check(bundle == ["/secrets/ca-bundle.pem"] and ca.get("secretName") == "relaypro-ca-bundle" and
             mounts.get("ca-bundle", {}).get("mountPath") == "/secrets" and mounts["ca-bundle"].get("readOnly")
             and ca.get("defaultMode") == 0o440 and pod["securityContext"].get("fsGroup") == 65532,
             "Deployment: every replica reads the one CA bundle Secret (0440, group 65532)")
    admin_port = int(env["RELAYPRO_ADMIN_LISTEN"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = c[probe]["httpGet"]
        rt.check(g["path"] == path and ports.get(g["port"], g["port"]) == admin_port and
                 g.get("scheme", "HTTP") == "HTTP",
                 "Deployment: %s GET %s on the admin listener (%d)" % (probe, path, admin_port), g)
    rt.check_eq(ports.get("https"), int(env["RELAYPRO_HTTPS_PROXY_LISTEN"].rsplit(":", 1)[1]),
                "Deployment: the https port is the relay's listener")
    psc, csc = pod["securityContext"], c["securityContext"]
    rt.check(psc.get("runAsNonRoot") and psc.get("runAsUser") == 65532 and
             psc.get("seccompProfile") == {"type": "RuntimeDefault"} and
             csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
             and csc.get("capabilities") == {"drop": ["ALL"]} and pod.get("automountServiceAccountToken") is False,
             "Deployment: non-root, seccomp RuntimeDefault, read-only, no capabilities, no token")
    # Resources from the table: request 16 MiB + 24 KiB per tunnel, limit 16 MiB + 61 KiB.
    n = int(env["RELAYPRO_LIMITS_MAX_CONNECTIONS"])
    req, lim = mem_bytes(c["resources"]["requests"]["memory"]), mem_bytes(c["resources"]["limits"]["memory"])
    rt.check(req >= (16 << 20) + n * 24 * 1024 and lim >= (16 << 20) + n * 61 * 1024 and lim <= 2 * req + (512 << 20),
             "Deployment: memory %s/%s fits maxConnections %d (docker/README.md table)"
             % (c["resources"]["requests"]["memory"], c["resources"]["limits"]["memory"], n))
    with open(os.path.join(REPO, "docker", "README.md")) as f:
        readme = f.read()
    rt.check("| %s |" % format(n, ",") in readme and c["resources"]["limits"]["memory"] in readme,
             "docker/README.md: the resources table has the manifest's row")
    pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    rt.check(pod["terminationGracePeriodSeconds"] >= pre + seconds(env["RELAYPRO_LIMITS_SHUTDOWN_TIMEOUT"]) + 10,
             "Deployment: terminationGracePeriodSeconds >= preStop + shutdownTimeout + 10 s")
    names = [env["RELAYPRO_SERVER_NAME"]] + env["RELAYPRO_SERVER_ALT_NAMES"].split(",")
    ns = dep["metadata"]["namespace"]
    rt.check("%s.%s.svc" % (svc["metadata"]["name"], ns) in names and
             "%s.%s.svc.cluster.local" % (svc["metadata"]["name"], ns) in names,
             "ConfigMap: serverName/serverAltNames name the Service", names)
    rt.check(svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["externalTrafficPolicy"] == "Local" and
             all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()) and
             svc["spec"]["ports"][0]["targetPort"] == "https",
             "Service: LoadBalancer keeping client addresses (externalTrafficPolicy Local) to the pods' https")
    pdb = one(objs, "relaypro.yaml", "PodDisruptionBudget")
    rt.check(pdb and pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"],
             "PodDisruptionBudget: one pod always up")
    np_ = one(objs, "relaypro.yaml", "NetworkPolicy")
    ok = False
    if np_:
        s = np_["spec"]
        ins = [p["port"] for r in s["ingress"] for p in r["ports"] if "from" not in r]
        outs = sorted((p["port"], p["protocol"]) for r in s["egress"] for p in r["ports"])
        ok = s["policyTypes"] == ["Ingress", "Egress"] and ins == [ports["https"]] and \
            (53, "UDP") in outs and (53, "TCP") in outs and (443, "TCP") in outs and \
            all("ipBlock" in t or "namespaceSelector" in t for r in s["egress"] for t in r["to"])
    rt.check(ok, "NetworkPolicy: 9443 in from anywhere; out only to the console's ports and DNS")
    ppc = one(objs, "proxy-protocol.yaml", "ConfigMap")
    pps = one(objs, "proxy-protocol.yaml", "Service")
    rt.check(ppc and ppc["metadata"]["name"] == "relaypro-proxy-protocol" and
             ppc["data"].get("RELAYPRO_PROXY_PROTOCOL") == "true" and ppc["data"].get("RELAYPRO_TRUSTED_PROXIES")
             and pps and pps["metadata"]["name"] == svc["metadata"]["name"] and
             pps["spec"]["externalTrafficPolicy"] == "Cluster",
             "proxy-protocol.yaml: the ConfigMap the Deployment reads, and the Service for it")
    ss = one(objs, "single-pv.yaml", "StatefulSet")
    rt.check(ss and ss["spec"]["replicas"] == 1 and ss["spec"]["volumeClaimTemplates"] and
             any(m["mountPath"] == "/var/lib/relaypro" for m in ss["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]),
             "single-pv.yaml: one replica whose private folder is a PersistentVolume")
    cert = one(objs, "certificate.yaml", "Certificate")
    rt.check(cert and set(names) <= set(cert["spec"]["dnsNames"]) and cert["spec"]["secretName"],
             "certificate.yaml: cert-manager Certificate for the same names")
    state["cm"], state["ppc"], state["dep"] = env, dict(ppc["data"]) if ppc else {}, dep


# ------------------------------------------------------------------ 3. the pod's environment

def console():
    return rt.console_once(TMP, org=ORG, deployment_token=DEP_TOKEN, security_token=SEC_TOKEN,
                           relay_id=RELAY_ID, **rt.HTTPS_ONLY)


def kubectl_secret(envfile, name):
    """kubectl create secret generic NAME --from-env-file (client-side dry run) -> data."""
    kubectl, _ = rt.apt_install("kubernetes-client", "kubectl", timeout=600)
    if not rt.check(kubectl, "kubectl present", "apt-get install -y kubernetes-client"):
        return None
    home = os.path.join(TMP, "kube-home")
    os.makedirs(home, exist_ok=True)
    r = subprocess.run([kubectl, "create", "secret", "generic", name, "--from-env-file=" + envfile,
                        "--dry-run=client", "-o", "json"], capture_output=True, text=True, timeout=60,
                       env=dict(rt.clean_environ(), HOME=home, KUBECONFIG=os.path.join(home, "none")))
    if not rt.check(r.returncode == 0, "kubectl create secret --from-env-file (dry run)", r.stderr[-500:]):
        return None
    return {k: base64.b64decode(v).decode() for k, v in json.loads(r.stdout)["data"].items()}


def pod_env(cm, secret, extra=None):
    """The container's environment: ConfigMap, Secret, env; listeners on loopback ports."""
    env = dict(cm)
    env.update(secret)
    env.update(extra or {})
    ports = {}
    for key in ("RELAYPRO_HTTPS_PROXY_LISTEN", "RELAYPRO_ADMIN_LISTEN"):
        ports[key] = rt.free_port()
        env[key] = "127.0.0.1:%d" % ports[key]
    return env, ports


@rt.case(timeout=120)
def pod_environment_runs():
    if "cm" not in state:
        rt.check(False, "pod environment", "the manifests were not read")
        return
    con = console()
    d = os.path.join(TMP, "pod")
    os.makedirs(d, exist_ok=True)
    relay = rt.relay_bin()
    # Flow (a): register once, make the Secret from what `register --env` printed.
    reg_env = dict(rt.clean_environ(), RELAYPRO_CONSOLE_ADDRESS=con.address(),
                   RELAYPRO_ORGANIZATION_ID=str(ORG), RELAYPRO_DEPLOYMENT_TOKEN=DEP_TOKEN,
                   RELAYPRO_CONSOLE_CA_FILE=con.ca, RELAYPRO_PRIVATE_FOLDER=os.path.join(d, "none"))
    r = subprocess.run([relay, "register", "-c", "", "--env"], capture_output=True, text=True,
                       timeout=60, env=reg_env, cwd=d)
    rt.check_eq(r.returncode, 0, "relaypro register --env: exit 0")
    envfile = os.path.join(d, "relaypro.env")
    with open(envfile, "w") as f:
        f.write(r.stdout)
    secret = kubectl_secret(envfile, "relaypro-registration")
    if not rt.check(secret == {"RELAYPRO_RELAY_ID": str(RELAY_ID), "RELAYPRO_SECURITY_TOKEN": SEC_TOKEN},
                    "the registration Secret holds the two variables the Deployment reads"):
        return
    bundle = os.path.join(d, "secrets", "ca-bundle.pem")
    os.makedirs(os.path.dirname(bundle))
    r = subprocess.run([relay, "ca", "show", "-c", ""], capture_output=True, text=True, timeout=30,
                       env=dict(rt.clean_environ(), RELAYPRO_CA_BUNDLE_FILE=bundle))
    rt.check(r.returncode == 0 and os.path.exists(bundle), "the CA bundle for the Secret", r.stderr)
    cm = dict(state["cm"])
    cm["RELAYPRO_CONSOLE_ADDRESS"] = cm["RELAYPRO_REGISTERED_TO"] = con.address()
    for name, layers in (("plain", {}), ("proxy protocol", state["ppc"])):
        env, ports = pod_env(cm, secret, dict(layers, RELAYPRO_CA_BUNDLE_FILE=bundle,
                                              RELAYPRO_PRIVATE_FOLDER=os.path.join(d, "ro")))
        e = dict(rt.clean_environ(), **env)
        r = subprocess.run([relay, "check-config", "-c", ""], capture_output=True, text=True,
                           timeout=30, env=e)
        rt.check(r.returncode == 0, "%s: the pod's environment passes check-config" % name, r.stderr[-400:])
        p = rt.start_process([relay, "run", "-c", ""], env=env, tmpdir=d, name="pod-" + name.replace(" ", "-"))
        admin = ports["RELAYPRO_ADMIN_LISTEN"]
        if not rt.check(rt.wait_for_port("127.0.0.1", admin, timeout=15),
                        "%s: the relay starts with the pod's environment" % name, p.stderr()[-500:]):
            continue
        for path in ("/healthz", "/readyz"):
            resp = rt.http_request("127.0.0.1", admin, "GET", path)
            rt.check_eq(resp.status, 200, "%s: the Deployment's probe GET %s on the admin port" % (name, path))
        https = ports["RELAYPRO_HTTPS_PROXY_LISTEN"]
        if layers:
            # The probe on the proxy port would fail: a plain request from an untrusted
            # address is closed without an answer. 127.0.0.1 is outside the variant's
            # trustedProxies, so the relay accepts the connection (not refused), closes it
            # at once without sending a byte (not left hanging until a timeout) and logs
            # proxyproto.untrusted for it.
            since = rt.log_offset(p.stdout_path)
            try:
                sock = rt.connect("127.0.0.1", https, timeout=5)
            except OSError as ex:
                rt.check(False, "proxy protocol: the proxy port accepts the probe's connection",
                         "%s: %s" % (type(ex).__name__, ex))
            else:
                me = "%s:%d" % sock.getsockname()[:2]
                rt.send_quiet(sock, b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                data, how = rt.read_all(sock, timeout=10)
                sock.close()
                rt.check(data == b"" and how in ("eof", "reset"),
                         "proxy protocol: a probe on the proxy port is accepted, then closed "
                         "without an answer", "%s, %d bytes: %r" % (how, len(data), data[:80]))
                rec = rt.wait_for_log(p.stdout_path, lambda r: r.get("event") == "proxyproto.untrusted"
                                      and r.get("client") == me, timeout=10, since=since)
                rt.check(rec is not None and rec.get("listener") == "https",
                         "proxy protocol: the relay logs proxyproto.untrusted for the probe's "
                         "address on the https listener", rec)
        else:
            grant = rt.jwt_hs256({"sub": "r-1", "org": ORG, "aud": "relaypro:%d" % RELAY_ID,
                                  "exp": int(time.time()) + 300}, SEC_TOKEN)
            resp = rt.http_request("127.0.0.1", https, "POST", "/v1/token", tls=True, verify=False,
                                   headers={"Authorization": "Bearer " + grant})
            rt.check_eq(resp.status, 200, "plain: a grant for the registered relay id is accepted")
        rt.check_eq(p.stop(), 0, "%s: SIGTERM exits 0" % name)
        log = p.stdout()
        rt.check(SEC_TOKEN not in log and DEP_TOKEN not in log, "%s: no token in the log" % name)
        rt.check(not os.path.exists(os.path.join(d, "ro")), "%s: nothing written (read-only root)" % name)


# ------------------------------------------------------------------ 4. probes when full

@rt.case(timeout=60)
def admin_probes_at_max_connections():
    d = os.path.join(TMP, "full")
    os.makedirs(d, exist_ok=True)
    https, admin = rt.free_port(), rt.free_port()
    # maxConnections is held with two tunnels (idle sockets would be pending, and at most
    # half of maxConnections may be: the oldest would be closed; test_pending.py).
    echo = rt.start_console(d, https=False, http=False, tls_echo=False, name="echo")
    env = {"RELAYPRO_HTTPS_PROXY_LISTEN": "127.0.0.1:%d" % https,
           "RELAYPRO_ADMIN_LISTEN": "127.0.0.1:%d" % admin,
           "RELAYPRO_LIMITS_MAX_CONNECTIONS": "2", "RELAYPRO_SECURITY_TOKEN": SEC_TOKEN,
           "RELAYPRO_CONSOLE_ADDRESS": "127.0.0.1", "RELAYPRO_ALLOWED_PORTS": str(echo.echo_port),
           "RELAYPRO_ORGANIZATION_ID": str(ORG), "RELAYPRO_RELAY_ID": str(RELAY_ID),
           "RELAYPRO_PRIVATE_FOLDER": os.path.join(d, "private"), "RELAYPRO_LOGGER_FILE_NAME": "-"}
    p = rt.start_process([rt.relay_bin(), "run", "-c", ""], env=env, tmpdir=d, name="full")
    if not rt.check(rt.wait_for_port("127.0.0.1", admin, timeout=15), "full: relay up", p.stderr()[-400:]):
        return
    grant = rt.jwt_hs256({"sub": "r-full", "org": ORG, "aud": "relaypro:%d" % RELAY_ID,
                          "exp": int(time.time()) + 300}, SEC_TOKEN)
    resp = rt.http_request("127.0.0.1", https, "POST", "/v1/token", tls=True, verify=False,
                           headers={"Authorization": "Bearer " + grant})
    tok = json.loads(resp.body)["access_token"] if resp.status == 200 else ""
    held = []
    for _ in range(2):
        st, _, s = rt.connect_tunnel("127.0.0.1", https, "127.0.0.1:%d" % echo.echo_port,
                                     headers=rt.bearer(tok))
        if st == 200:
            held.append(s)
    try:
        def open_https():
            r = rt.http_request("127.0.0.1", admin, "GET", "/metrics")
            m = re.search(r'relaypro_connections_open\{listener="https"\} (\d+)', r.body.decode())
            return m and int(m.group(1)) == 2
        rt.check(rt.wait_until(open_https, timeout=10), "full: two connections hold maxConnections = 2")
        r = rt.http_request("127.0.0.1", https, "GET", "/healthz", tls=True, verify=False)
        rt.check(r.status == 503 and b"too_many_connections" in r.body,
                 "full: a probe on the proxy port would get 503 too_many_connections", r.status)
        for path in ("/healthz", "/readyz"):
            r = rt.http_request("127.0.0.1", admin, "GET", path)
            rt.check_eq(r.status, 200, "full: admin GET %s is 200 at maxConnections" % path)
        # `relaypro health` (the compose health check) asks the same listener.
        e = dict(rt.clean_environ(), **env)
        e["RELAYPRO_ADMIN_LISTEN"] = "0.0.0.0:%d" % admin   # as configured in a container
        for args in ([], ["--ready"]):
            r = subprocess.run([rt.relay_bin(), "health", "-c", ""] + args, capture_output=True,
                               text=True, timeout=20, env=e)
            rt.check(r.returncode == 0 and r.stdout == "",
                     "full: relaypro health %s exits 0 at maxConnections" % " ".join(args), r.stderr)
    finally:
        for s in held:
            s.close()
    rt.check_eq(p.stop(), 0, "full: exits 0")


@rt.case(timeout=60)
def health_subcommand_not_ready():
    """`relaypro health --ready` fails (exit 1, the reason on stderr) while /readyz is 503,
    `relaypro health` passes; without an admin listener: exit 2."""
    d = os.path.join(TMP, "health")
    os.makedirs(d, exist_ok=True)
    https, admin = rt.free_port(), rt.free_port()
    env = {"RELAYPRO_HTTPS_PROXY_LISTEN": "127.0.0.1:%d" % https,
           "RELAYPRO_ADMIN_LISTEN": "127.0.0.1:%d" % admin,
           "RELAYPRO_PRIVATE_FOLDER": os.path.join(d, "private"), "RELAYPRO_LOGGER_FILE_NAME": "-"}
    p = rt.start_process([rt.relay_bin(), "run", "-c", ""], env=env, tmpdir=d, name="notready")
    if not rt.check(rt.wait_for_port("127.0.0.1", admin, timeout=15), "health: relay up", p.stderr()[-400:]):
        return
    e = dict(rt.clean_environ(), **env)
    r = subprocess.run([rt.relay_bin(), "health", "-c", ""], capture_output=True, text=True,
                       timeout=20, env=e)
    rt.check_eq(r.returncode, 0, "health: /healthz 200 -> exit 0")
    r = subprocess.run([rt.relay_bin(), "health", "-c", "", "--ready"], capture_output=True,
                       text=True, timeout=20, env=e)
    rt.check(r.returncode == 1 and "503" in r.stderr and "no_security_token" in r.stderr,
             "health --ready: /readyz 503 -> exit 1 with the reason", (r.returncode, r.stderr))
    rt.check_eq(p.stop(), 0, "health: relay exits 0")
    r = subprocess.run([rt.relay_bin(), "health", "-c", ""], capture_output=True, text=True,
                       timeout=20, env=e)
    rt.check(r.returncode == 1 and "refused" in r.stderr, "health: nothing listening -> exit 1", r.stderr)
    e.pop("RELAYPRO_ADMIN_LISTEN")
    r = subprocess.run([rt.relay_bin(), "health", "-c", ""], capture_output=True, text=True,
                       timeout=20, env=e)
    rt.check(r.returncode == 2 and "admin" in r.stderr, "health: no admin listener -> exit 2", r.stderr)


if __name__ == "__main__":
    rt.finish()

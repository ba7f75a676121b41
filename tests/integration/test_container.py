#!/usr/bin/env python3
"""test_container.py — the image run for real under podman, the README's container and
Kubernetes blocks run as written, the compose file, and the Containerfile built without a
registry (docs/configuration.md; docs/design.md).

podman here: Debian's podman with runc (crun refuses this machine's hybrid cgroups) and
ulimits no higher than this process's own (the sandbox cannot raise them); both are set
through a containers.conf of the test's (CONTAINERS_CONF), so the README's commands run
unchanged. When podman cannot run a container at all, every case that needs it is
reported SKIP with the reason (never counted as passed).

- README "Run the image": ./build.sh image, podman load (localhost/relaypro:VERSION with
  the standard labels); a volume, the CA bundle made in a throwaway container, the relay
  started with a deployment token and host networking (console address, token, ports and
  names replaced by the test's through declared substitutions): it registers once into
  registration.ini in the volume; `podman exec ... health --ready` passes; after
  `podman restart` it is ready again and the console saw one registration only.
- An environment-only container with the CA bundle mounted read-only (as a Secret is, 0440
  group 65532), read-only root, no capabilities: curl gets an access token for a grant and
  then reaches the test console through the relay with it; arm64: the arm64 image's binary
  under qemu-aarch64-static (podman's --entrypoint) serves /healthz and /readyz.
- README "Kubernetes": register --env in a container, the CA bundle, the Secrets and the
  manifests. No cluster here: `kubectl` in that block is a wrapper (written by this test,
  first on PATH) that runs the real kubectl with --dry-run=client -o json for `create` and
  tests/kubernetes/validate.mjs (the schema validation of test_kubernetes.py) for `apply`;
  the Secrets it produced are then checked against what the Deployment reads.
- Compose: docker/compose.yaml's environment, with the .env values, runs the relay, whose
  health check command (`relaypro health --ready`) passes once it registered; no compose
  engine runs here (no Docker daemon; podman-compose would need bridge networking to reach
  the test console).
- Containerfile: a Debian bookworm base made with debootstrap from Debian's mirror,
  `podman import`ed (kept in podman's storage for later runs), then `podman build
  --build-arg BUILD_BASE=...` for linux/amd64 and linux/arm64: each image's /relaypro is
  byte for byte dist/relaypro-linux-<arch>.
Last line: `container: N passed, N failed`.
"""
import base64
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import readme  # noqa: E402
import relaytest as rt  # noqa: E402

README_BLOCKS = [("Run the image (podman or docker)", 0), ("Run the image (podman or docker)", 1),
                 ("Run the image (podman or docker)", 2), ("Kubernetes", 0)]

rt.init("container", deadline=1800)
REPO = rt.REPO_DIR
TMP = rt.make_tmpdir("relaytest-container-")
os.chmod(TMP, 0o755)   # the image's user reads mounted files below it
TAG = "%x" % (os.getpid() & 0xffffff)   # names of our containers, volumes, images
ORG = 42
DEP_TOKEN = "dep-ctr-token-4d1f"
SEC_TOKEN = "sec-ctr-token-8e2c"
RELAY_ID = 7070
SECRETS = (DEP_TOKEN, SEC_TOKEN)
state = {}
CREATED = {"containers": [], "volumes": [], "images": []}


version = rt.project_version  # VERSION from the Makefile


VERSION = version()
IMAGE = "localhost/relaypro:%s" % VERSION


def podman_env():
    return dict(rt.clean_environ(), CONTAINERS_CONF=state["conf"])


def podman(*args, timeout=120, check_name=None, **kw):
    r = subprocess.run(["podman"] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=podman_env(), **kw)
    if check_name:
        rt.check(r.returncode == 0, check_name, (r.stdout + r.stderr)[-800:])
    return r


def cleanup():
    """Remove what this test created in podman's storage, by name."""
    if "conf" not in state:
        return
    for c in CREATED["containers"]:
        podman("rm", "-f", "-t", "2", c, timeout=60)
    for v in CREATED["volumes"]:
        podman("volume", "rm", "-f", v, timeout=60)
    for i in CREATED["images"]:
        podman("rmi", "-f", i, timeout=60)


rt.at_cleanup(cleanup)


def need_podman(name):
    if state.get("podman") is True:
        return True
    rt.skip(name, state.get("podman") or "podman was not set up")
    return False


def no_secrets(name, text):
    rt.check(not any(s in text for s in SECRETS), name + ": no token in the output")


def wait_logs(container, pattern, timeout=30):
    def look():
        r = podman("logs", container, timeout=30)
        return r.returncode == 0 and re.search(pattern, r.stdout + r.stderr)
    return rt.wait_until(look, timeout=timeout, interval=0.2)


# ------------------------------------------------------------------ podman itself

@rt.case(timeout=600)
def podman_setup():
    missing = [p for p, tool in (("podman", "podman"), ("runc", "runc")) if not shutil.which(tool)]
    if missing:
        r = subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=900", "install", "-y", "-qq",
                            "--no-install-recommends"] + missing, capture_output=True, text=True,
                           timeout=580, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if r.returncode != 0:
            state["podman"] = "cannot install %s: %s" % (" ".join(missing), r.stderr[-300:])
            rt.skip("podman", state["podman"])
            return
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 4096 if nproc == resource.RLIM_INFINITY else min(4096, nproc)
    if nofile == resource.RLIM_INFINITY:
        nofile = 1048576
    state["conf"] = os.path.join(TMP, "containers.conf")
    with open(state["conf"], "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]\n'
                '[engine]\nruntime = "runc"\n' % (nofile, nofile, nproc, nproc))
    state["podman"] = True


@rt.case(timeout=300)
def readme_build_and_load():
    if not need_podman("README: build and load the image"):
        return
    text = readme.block("Run the image (podman or docker)", 0)
    r = readme.run(text, env=podman_env(), cwd=REPO, timeout=280)
    rt.check(r.returncode == 0 and "Loaded image: %s" % IMAGE in r.stdout + r.stderr,
             "README: ./build.sh image && podman load -> %s" % IMAGE, (r.stdout + r.stderr)[-800:])
    r = podman("image", "inspect", IMAGE, "--format", "{{json .Config}}")
    cfg = json.loads(r.stdout) if r.returncode == 0 else {}
    labels = cfg.get("Labels") or {}
    rt.check(labels.get("org.opencontainers.image.version") == VERSION and
             all(labels.get("org.opencontainers.image." + k) for k in ("revision", "created", "source", "licenses")),
             "podman: the loaded image carries the standard labels", labels)
    r = podman("run", "--rm", IMAGE, "version", timeout=60)
    # 125-127: podman (or the runtime) could not run a container here; any other status is
    # the image's own and fails below (128 + N too: the binary killed by signal N).
    if 125 <= r.returncode <= 127:
        state["podman"] = "podman cannot run a container here: " + (r.stderr.strip()[-400:] or "exit %d" % r.returncode)
        rt.skip("podman run", state["podman"])
        return
    rt.check(r.stdout.startswith("relaypro %s linux/amd64" % VERSION), "podman run IMAGE version", r.stdout)
    for a in ("amd64", "arm64"):
        r = podman("load", "-i", os.path.join(REPO, "dist", "relaypro-%s-%s-oci.tar" % (VERSION, a)))
        rt.check(r.returncode == 0 and "Loaded image: %s" % IMAGE in r.stdout + r.stderr,
                 "podman load of the %s archive" % a, (r.stdout + r.stderr)[-400:])
        r = podman("image", "inspect", IMAGE, "--format", "{{.Architecture}} {{.Id}}")
        arch, _, iid = r.stdout.strip().partition(" ")
        rt.check_eq(arch, a, "podman: the %s archive is the %s image" % (a, a))
        # A tag of this run's own: the image ID is the same for every run of one commit
        # (the image is reproducible), and another run's cleanup must not take it away.
        mine = "localhost/relaypro-test:%s-%s" % (a, TAG)
        if iid and podman("tag", iid, mine).returncode == 0:
            CREATED["images"].append(mine)
            state["image_" + a] = mine
    # Back to the multi-arch archive's pick for this host (amd64).
    podman("load", "-i", os.path.join(REPO, "dist", "relaypro-%s-oci.tar" % VERSION))


# ------------------------------------------------------------------ the README recipe

def console():
    con = rt.console_once(TMP, org=ORG, deployment_token=DEP_TOKEN, security_token=SEC_TOKEN,
                          relay_id=RELAY_ID, **rt.HTTPS_ONLY)
    if not os.path.exists(os.path.join(TMP, "console-ca.pem")):
        shutil.copyfile(con.ca, os.path.join(TMP, "console-ca.pem"))
        os.chmod(os.path.join(TMP, "console-ca.pem"), 0o644)
    return con


@rt.case(timeout=180)
def readme_run_registers_once():
    if not need_podman("README: run the image"):
        return
    con = console()
    d = os.path.join(TMP, "recipe")
    os.makedirs(d)
    os.chmod(d, 0o755)
    shutil.copyfile(os.path.join(TMP, "console-ca.pem"), os.path.join(d, "console-ca.pem"))
    name, vol = "relaypro-test-" + TAG, "relaypro-state-test-" + TAG
    https, admin = rt.free_port(), rt.free_port()
    CREATED["containers"].append(name)
    CREATED["volumes"].append(vol)
    before = len(con.register_attempts())
    text = readme.block("Run the image (podman or docker)", 1, subst={
        "relaypro-state": vol, "--name relaypro ": "--name %s " % name,
        "console.example.com": con.address(), "YOUR-DEPLOYMENT-TOKEN": DEP_TOKEN,
        "0.0.0.0:9443": "127.0.0.1:%d" % https, "127.0.0.1:9100": "127.0.0.1:%d" % admin})
    r = readme.run(text, env=podman_env(), cwd=d, timeout=120)
    if not rt.check(r.returncode == 0, "README: volume, CA bundle, podman run -d", r.stderr[-800:]):
        return
    with open(os.path.join(d, "relaypro-ca.pem")) as f:
        pem = f.read()
    rt.check("-----BEGIN CERTIFICATE-----" in pem and "Fingerprint" in pem,
             "README: the throwaway container printed the CA certificate to pin")
    rt.check(wait_logs(name, r'"event":"register\.saved","saved":true[^\n]*'
                       r'"file":"/var/lib/relaypro/registration\.ini"', timeout=30),
             "container: registered and saved registration.ini in the volume",
             podman("logs", name).stdout[-800:])
    rt.check(rt.wait_for_port("127.0.0.1", admin, timeout=10), "container: admin listener up")
    rt.check_eq(rt.http_request("127.0.0.1", admin, "GET", "/readyz").status, 200, "container: /readyz 200")
    r = podman("volume", "inspect", vol, "--format", "{{.Mountpoint}}")
    mp = r.stdout.strip()
    st = os.stat(os.path.join(mp, "registration.ini")) if mp and os.path.exists(os.path.join(mp, "registration.ini")) else None
    rt.check(st and st.st_uid == 65532 and st.st_mode & 0o777 == 0o600 and
             os.path.exists(os.path.join(mp, "ca-bundle.pem")),
             "the volume holds the CA bundle and registration.ini (0600, the image's user)")
    # README block 2: the health check, then a restart that does not register again.
    text = readme.block("Run the image (podman or docker)", 2, subst={
        "podman exec relaypro ": "podman exec %s " % name,
        "podman restart relaypro": "podman restart %s" % name})
    r = readme.run(text, env=podman_env(), cwd=d, timeout=120)
    rt.check(r.returncode == 0, "README: podman exec ... health --ready, podman restart", r.stderr[-500:])
    rt.check(rt.wait_until(lambda: _status(admin, "/readyz") == 200, timeout=20, interval=0.2),
             "container: ready again after the restart")
    rt.check_eq(len(con.register_attempts()) - before, 1,
                "container: one registration across the restart (environment only, persistent folder)")
    logs = podman("logs", name)
    rt.check(len(re.findall(r'"event":"start"', logs.stdout + logs.stderr)) == 2,
             "container: two starts in its log")
    no_secrets("container", logs.stdout + logs.stderr + r.stdout + r.stderr)
    podman("rm", "-f", "-t", "5", name, timeout=60)


def _status(port, path):
    try:
        return rt.http_request("127.0.0.1", port, "GET", path, timeout=3).status
    except OSError:
        return None


# ------------------------------------------------------------------ env-only + curl

def own_image():
    """The amd64 image under this run's own tag: IMAGE is a name every run on this machine
    loads (another run's `podman load` of its arm64 archive moves it for a moment), so the
    containers this script starts itself -- not the README's, which name IMAGE as written --
    use the tag readme_build_and_load gave it."""
    return state.get("image_amd64", IMAGE)


def make_bundle(d):
    """The CA bundle as a Secret would hold it: made in a throwaway container, then root's,
    group 65532, 0440 (defaultMode 0440, fsGroup 65532)."""
    r = podman("run", "--rm", "--user", "0:0", "-v", "%s:/out" % d, "-e",
               "RELAYPRO_CA_BUNDLE_FILE=/out/ca-bundle.pem", own_image(), "ca", "show", timeout=60)
    ok = r.returncode == 0 and os.path.exists(os.path.join(d, "ca-bundle.pem"))
    if ok:
        os.chown(os.path.join(d, "ca-bundle.pem"), 0, 65532)
        os.chmod(os.path.join(d, "ca-bundle.pem"), 0o440)
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", r.stdout, re.S)
        with open(os.path.join(d, "relaypro-ca.pem"), "w") as f:
            f.write(m.group(0) if m else "")
    return ok


@rt.case(timeout=180)
def env_only_container_curl():
    if not need_podman("environment-only container"):
        return
    con = console()
    d = os.path.join(TMP, "envonly")
    os.makedirs(d)
    os.chmod(d, 0o755)
    if not rt.check(make_bundle(d), "the CA bundle made in a throwaway container"):
        return
    https = rt.free_port()
    name = "relaypro-envonly-" + TAG
    CREATED["containers"].append(name)
    r = podman("run", "-d", "--name", name, "--network", "host", "--read-only", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges",
               "-v", "%s:/secrets/ca-bundle.pem:ro" % os.path.join(d, "ca-bundle.pem"),
               "-e", "RELAYPRO_CA_BUNDLE_FILE=/secrets/ca-bundle.pem",
               "-e", "RELAYPRO_CONSOLE_ADDRESS=localhost", "-e", "RELAYPRO_ORGANIZATION_ID=%d" % ORG,
               "-e", "RELAYPRO_RELAY_ID=%d" % RELAY_ID, "-e", "RELAYPRO_SECURITY_TOKEN=" + SEC_TOKEN,
               "-e", "RELAYPRO_ALLOWED_PORTS=%d" % con.https_port, "-e", "RELAYPRO_SERVER_NAME=localhost",
               "-e", "RELAYPRO_HTTPS_PROXY_LISTEN=127.0.0.1:%d" % https, own_image(), timeout=60)
    if not rt.check(r.returncode == 0 and rt.wait_for_port("127.0.0.1", https, timeout=15),
                    "env-only container with the CA bundle mounted read-only listens",
                    r.stderr[-500:] + podman("logs", name).stderr[-500:]):
        return
    ca = os.path.join(d, "relaypro-ca.pem")
    grant = rt.jwt_hs256({"sub": "responder-1", "org": ORG, "aud": "relaypro:%d" % RELAY_ID,
                          "exp": int(time.time()) + 300}, SEC_TOKEN)
    hdr = os.path.join(d, "auth-header")
    with open(hdr, "w") as f:   # curl reads the header from a file: no token on a command line
        f.write("Authorization: Bearer %s\n" % grant)
    r = subprocess.run(["curl", "-sS", "--cacert", ca, "-H", "@" + hdr, "-X", "POST",
                        "https://localhost:%d/v1/token" % https], capture_output=True, text=True, timeout=30)
    try:
        tok = json.loads(r.stdout)["access_token"]
    except (ValueError, KeyError):
        tok = None
    if not rt.check(tok, "curl: POST /v1/token with a grant -> access token (relay's certificate "
                         "verified against the pinned CA)", r.stderr[-300:]):
        return
    with open(hdr, "w") as f:
        f.write("Proxy-Authorization: Bearer %s\n" % tok)
    r = subprocess.run(["curl", "-sS", "-x", "https://localhost:%d" % https, "--proxy-cacert", ca,
                        "--proxy-header", "@" + hdr, "--cacert", con.ca,
                        "https://localhost:%d/api/app/check" % con.https_port],
                       capture_output=True, text=True, timeout=30)
    rt.check(r.returncode == 0 and '"test-console"' in r.stdout,
             "curl through the container with the access token reaches the console", r.stdout + r.stderr[-300:])
    logs = podman("logs", name)
    rt.check('"event":"tunnel.open"' in logs.stdout and '"event":"token.issue"' in logs.stdout,
             "container: token.issue and tunnel.open on stdout")
    no_secrets("env-only container", logs.stdout + logs.stderr)
    r = podman("stop", "-t", "10", name, timeout=60)
    r = podman("inspect", name, "--format", "{{.State.ExitCode}}")
    rt.check_eq(r.stdout.strip(), "0", "container: SIGTERM from podman stop exits 0")


@rt.case(timeout=180)
def arm64_image_under_qemu():
    if not need_podman("arm64 image under qemu"):
        return
    qemu = shutil.which("qemu-aarch64-static")
    if not qemu or "image_arm64" not in state:
        rt.skip("arm64 image under qemu", "qemu-aarch64-static not installed" if not qemu
                else "the arm64 image was not loaded")
        return
    d = os.path.join(TMP, "arm64")
    os.makedirs(d)
    os.chmod(d, 0o755)
    if not rt.check(make_bundle(d), "arm64: a CA bundle to mount (made by the amd64 image)"):
        return
    https, admin = rt.free_port(), rt.free_port()
    name = "relaypro-arm64-" + TAG
    CREATED["containers"].append(name)
    base = ["-v", "%s:/qemu-aarch64-static:ro" % qemu, "--entrypoint", "/qemu-aarch64-static"]
    r = podman("run", "--rm", *base, state["image_arm64"], "/relaypro", "version", timeout=60)
    rt.check(r.returncode == 0 and "linux/arm64" in r.stdout, "arm64 image: version under qemu",
             r.stdout + r.stderr[-300:])
    r = podman("run", "-d", "--name", name, "--network", "host", "--read-only", *base,
               "-v", "%s:/secrets/ca-bundle.pem:ro" % os.path.join(d, "ca-bundle.pem"),
               "-e", "RELAYPRO_CA_BUNDLE_FILE=/secrets/ca-bundle.pem",
               "-e", "RELAYPRO_SECURITY_TOKEN=" + SEC_TOKEN,
               "-e", "RELAYPRO_HTTPS_PROXY_LISTEN=127.0.0.1:%d" % https,
               "-e", "RELAYPRO_ADMIN_LISTEN=127.0.0.1:%d" % admin,
               state["image_arm64"], "/relaypro", "run", timeout=60)
    ok = r.returncode == 0 and rt.wait_for_port("127.0.0.1", admin, timeout=60)
    if rt.check(ok, "arm64 image: the relay runs (qemu)", r.stderr[-300:] + podman("logs", name).stderr[-300:]):
        for path in ("/healthz", "/readyz"):
            rt.check_eq(_status(admin, path), 200, "arm64 image: admin GET %s" % path)
    podman("rm", "-f", "-t", "5", name, timeout=60)


# ------------------------------------------------------------------ README: Kubernetes

KUBECTL_WRAPPER = r'''#!/usr/bin/env python3
# kubectl for test_container.py: no cluster here. `create` runs the real kubectl as a
# client-side dry run and keeps the object; `apply -f FILE` validates FILE with
# tests/kubernetes/validate.mjs. Everything it did goes to $KUBECTL_RECORD (JSON lines).
import json, os, subprocess, sys
args = sys.argv[1:]
rec = open(os.environ["KUBECTL_RECORD"], "a")
if "create" in args:
    r = subprocess.run([os.environ["REAL_KUBECTL"]] + args + ["--dry-run=client", "-o", "json"],
                       capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode == 0:
        rec.write(json.dumps({"create": json.loads(r.stdout)}) + "\n")
    sys.exit(r.returncode)
if args[:1] == ["apply"] and "-f" in args:
    f = os.path.abspath(args[args.index("-f") + 1])
    r = subprocess.run(["node", "validate.mjs", f], cwd=os.environ["VALIDATOR_DIR"],
                       capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    rec.write(json.dumps({"apply": f, "rc": r.returncode}) + "\n")
    sys.exit(r.returncode)
sys.stderr.write("kubectl (test wrapper): not supported here: %s\n" % " ".join(args))
sys.exit(2)
'''


@rt.case(timeout=300)
def readme_kubernetes():
    if not need_podman("README: Kubernetes"):
        return
    con = console()
    real, _ = rt.apt_install("kubernetes-client", "kubectl", timeout=280)
    if not rt.check(real, "kubectl present", "apt-get install -y kubernetes-client"):
        return
    validator, why = rt.k8s_validator()
    if not rt.check(validator is not None, "the pinned schema validator is installed (npm ci)", why):
        return
    d = os.path.join(TMP, "k8s")
    os.makedirs(os.path.join(d, "bin"))
    os.chmod(d, 0o777)   # the image's user writes nothing here, `ca show` runs as us
    shutil.copyfile(os.path.join(TMP, "console-ca.pem"), os.path.join(d, "console-ca.pem"))
    os.symlink(os.path.join(REPO, "docker"), os.path.join(d, "docker"))
    wrapper = os.path.join(d, "bin", "kubectl")
    with open(wrapper, "w") as f:
        f.write(KUBECTL_WRAPPER)
    os.chmod(wrapper, 0o755)
    record = os.path.join(d, "kubectl.jsonl")
    env = dict(podman_env(), PATH=os.path.join(d, "bin") + ":" + os.environ["PATH"],
               REAL_KUBECTL=real, KUBECTL_RECORD=record, VALIDATOR_DIR=validator,
               HOME=d, KUBECONFIG=os.path.join(d, "no-kubeconfig"))
    before = len(con.register_attempts())
    text = readme.block("Kubernetes", 0, subst={
        "console.example.com": con.address(), "YOUR-DEPLOYMENT-TOKEN": DEP_TOKEN})
    r = readme.run(text, env=env, cwd=d, timeout=280)
    rt.check(r.returncode == 0, "README Kubernetes block runs (register --env, CA bundle, Secrets, apply)",
             (r.stdout + r.stderr)[-1000:])
    rt.check_eq(len(con.register_attempts()) - before, 1, "README Kubernetes: one registration")
    with open(os.path.join(d, "relaypro.env")) as f:
        rt.check_eq(f.read(), "RELAYPRO_RELAY_ID=%d\nRELAYPRO_SECURITY_TOKEN=%s\n" % (RELAY_ID, SEC_TOKEN),
                    "register --env in the container: the two lines, nothing else")
    recs = []
    if os.path.exists(record):
        with open(record) as f:
            recs = [json.loads(ln) for ln in f if ln.strip()]
    made = {x["create"]["metadata"]["name"]: x["create"] for x in recs if "create" in x}
    reg = made.get("relaypro-registration", {})
    data = {k: base64.b64decode(v).decode() for k, v in reg.get("data", {}).items()}
    rt.check_eq(data, {"RELAYPRO_RELAY_ID": str(RELAY_ID), "RELAYPRO_SECURITY_TOKEN": SEC_TOKEN},
                "Secret relaypro-registration: what the Deployment's envFrom reads")
    bundle = made.get("relaypro-ca-bundle", {}).get("data", {})
    rt.check(list(bundle) == ["ca-bundle.pem"] and
             b"BEGIN RSA PRIVATE KEY" in base64.b64decode(bundle["ca-bundle.pem"]),
             "Secret relaypro-ca-bundle: key ca-bundle.pem, the CA bundle the Deployment mounts")
    applied = [x for x in recs if "apply" in x]
    rt.check(applied and all(x["rc"] == 0 for x in applied) and
             applied[0]["apply"].endswith("docker/kubernetes/relaypro.yaml"),
             "kubectl apply: relaypro.yaml passes the schema validation", applied)
    no_secrets("README Kubernetes", r.stdout + r.stderr)


# ------------------------------------------------------------------ compose

@rt.case(timeout=120)
def compose_environment_runs():
    try:
        import yaml
    except ImportError:
        rt.check(False, "python3 yaml module", "apt-get install -y python3-yaml")
        return
    with open(os.path.join(REPO, "docker", "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    s = doc["services"]["relaypro"]
    rt.check_eq(s["image"], "relaypro:%s" % VERSION, "compose: the pinned image")
    rt.check(s.get("user") == "65532:65532" and s.get("read_only") is True and s.get("cap_drop") == ["ALL"],
             "compose: non-root, read-only, no capabilities")
    rt.check_eq(s["healthcheck"]["test"], ["CMD", "/relaypro", "health", "--ready"],
                "compose: the health check asks the admin listener")
    vols = s.get("volumes", [])
    rt.check("relaypro-state:/var/lib/relaypro" in vols and "relaypro-state" in doc.get("volumes", {}),
             "compose: the private folder is a named volume")
    env = s["environment"]
    rt.check(all(k in env for k in ("RELAYPRO_CONSOLE_ADDRESS", "RELAYPRO_ORGANIZATION_ID",
                                     "RELAYPRO_DEPLOYMENT_TOKEN", "RELAYPRO_CONSOLE_CA_FILE",
                                     "RELAYPRO_ADMIN_LISTEN")),
             "compose: console, organization, deployment token (relay id), console CA, admin listener")
    ca_mount = [v for v in vols if v.endswith(":" + env["RELAYPRO_CONSOLE_CA_FILE"] + ":ro")]
    rt.check(len(ca_mount) == 1, "compose: the console CA mounted read-only where RELAYPRO_CONSOLE_CA_FILE says")
    # The service's environment, with .env values, runs the relay; its health check passes
    # once registered.
    con = console()
    d = os.path.join(TMP, "compose")
    os.makedirs(d)
    values = {"RELAYPRO_CONSOLE_ADDRESS": con.address(), "RELAYPRO_ORGANIZATION_ID": str(ORG),
              "RELAYPRO_DEPLOYMENT_TOKEN": DEP_TOKEN, "RELAYPRO_SERVER_NAME": "localhost"}
    run_env = {}
    for k, v in env.items():
        m = re.fullmatch(r"\$\{(\w+):\?[^}]*\}", str(v))
        run_env[k] = values[m.group(1)] if m else str(v)
    admin = rt.free_port()
    run_env.update(RELAYPRO_CONSOLE_CA_FILE=con.ca, RELAYPRO_PRIVATE_FOLDER=os.path.join(d, "state"),
                   RELAYPRO_HTTPS_PROXY_LISTEN="127.0.0.1:%d" % rt.free_port(),
                   RELAYPRO_ADMIN_LISTEN="127.0.0.1:%d" % admin)
    p = rt.start_process([rt.relay_bin(), "run", "-c", ""], env=run_env, tmpdir=d, name="compose")
    health = s["healthcheck"]["test"][1:]
    e = dict(rt.clean_environ(), **run_env)

    def healthy():
        return subprocess.run([rt.relay_bin()] + health[1:] + ["-c", ""], capture_output=True,
                              timeout=20, env=e).returncode == 0
    rt.check(rt.wait_until(healthy, timeout=30, interval=0.2),
             "compose: the health check command passes once the relay registered")
    rt.check(os.path.exists(os.path.join(d, "state", "registration.ini")),
             "compose: the registration kept in the private folder (the volume)")
    rt.check_eq(p.stop(), 0, "compose: exits 0")


# ------------------------------------------------------------------ Containerfile

@rt.case(timeout=900)
def containerfile_without_registry():
    if not need_podman("Containerfile build"):
        return
    base = "localhost/relaypro-build-base:bookworm-debootstrap"
    if podman("image", "exists", base).returncode != 0:
        if not shutil.which("debootstrap"):
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=900", "install", "-y", "-qq",
                            "--no-install-recommends", "debootstrap"], capture_output=True, timeout=300,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        root = os.path.join(TMP, "rootfs")
        r = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root,
                            "http://deb.debian.org/debian"], capture_output=True, text=True, timeout=600)
        if not rt.check(r.returncode == 0, "debootstrap a bookworm base from Debian's mirror", r.stderr[-500:]):
            return
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        r = subprocess.run(["podman", "import", "-", base], stdin=tar.stdout, capture_output=True,
                           text=True, timeout=300, env=podman_env())
        tar.wait()
        if not rt.check(r.returncode == 0, "podman import of the base", r.stderr[-300:]):
            return
        shutil.rmtree(root, ignore_errors=True)
    for arch in ("amd64", "arm64"):
        img = "localhost/relaypro-containerfile-test:%s-%s" % (TAG, arch)
        CREATED["images"].append(img)
        # --layers=false: no intermediate images are kept (the build stage is 2 GB).
        # --pull=never and BUILDPLATFORM: podman 4.3 would otherwise look for a base of the
        # target platform (and ask a registry); the build stage runs natively either way.
        r = podman("build", "--layers=false", "--pull=never", "--platform", "linux/" + arch,
                   "--build-arg", "BUILDPLATFORM=linux/amd64", "--build-arg", "BUILD_BASE=" + base,
                   "--build-arg", "VERSION=" + VERSION, "-f", "Containerfile", "-t", img, ".",
                   cwd=REPO, timeout=850)
        if not rt.check(r.returncode == 0, "podman build of the Containerfile without a registry (%s)" % arch,
                        (r.stdout + r.stderr)[-1500:]):
            continue
        cid = podman("create", img).stdout.strip()
        out = os.path.join(TMP, "containerfile-root-%s.tar" % arch)
        podman("export", "-o", out, cid, timeout=120)
        podman("rm", cid)
        with tarfile.open(out) as tf:
            members = {m.name.strip("./").rstrip("/"): m for m in tf.getmembers()}
            data = tf.extractfile(members["relaypro"]).read() if "relaypro" in members else b""
            priv = members.get("var/lib/relaypro") or tarfile.TarInfo("missing")
        os.unlink(out)
        with open(os.path.join(REPO, "dist", "relaypro-linux-" + arch), "rb") as f:
            rt.check(data == f.read(),
                     "the Containerfile's %s /relaypro is dist/relaypro-linux-%s, byte for byte" % (arch, arch))
        rt.check((priv.uid, priv.gid, priv.mode & 0o777) == (65532, 65532, 0o700),
                 "the Containerfile's /var/lib/relaypro: 0700, 65532 (%s)" % arch, (priv.uid, oct(priv.mode)))
        r = podman("image", "inspect", img, "--format",
                   "{{.Architecture}} {{.Config.User}} {{json .Config.Entrypoint}}")
        rt.check_eq(r.stdout.strip(), '%s 65532:65532 ["/relaypro"]' % arch,
                    "the Containerfile image (%s): platform, user, entrypoint" % arch)
        podman("rmi", "-f", img, timeout=60)


if __name__ == "__main__":
    rt.finish()

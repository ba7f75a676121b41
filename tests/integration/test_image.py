#!/usr/bin/env python3
"""test_image.py — the container deliverables, checked with tools nobody here wrote.

packaging/oci-image.sh (run on the dist/ binaries that ./build.sh made) must give an OCI
image layout that skopeo reads (the multi-arch index, each platform, its config and its
standard labels: version, revision, created, source, licenses) and umoci unpacks: a rootfs
of `relaypro` (0755, byte-identical to dist/) and the empty private folder
/var/lib/relaypro (0700, 65532), with the runtime config the image declares (entrypoint,
user 65532, env, exposed 9443/tcp). The three OCI archives (multi-arch, amd64, arm64) each
hold one reference, relaypro:VERSION: skopeo copies them with digest verification, umoci
unpacks the single-platform ones (`podman load` of them: test_container.py). The unpacked
binary runs, also in a chroot of that rootfs (like a FROM scratch image), and as UID 65532
serves /healthz and /readyz with the CA bundle read-only. Two runs give the same digests.
The Containerfile's instructions are checked here; building it, the compose file and
running the image under podman are test_container.py's, the Kubernetes manifests
test_kubernetes.py's. A missing tool is a FAILURE naming the Debian package to install."""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import relaytest as rt  # noqa: E402

REPO = rt.REPO_DIR
DIST = os.path.join(REPO, "dist")
LAYOUT = os.path.join(DIST, "relaypro-oci")
SCRIPT = os.path.join(REPO, "packaging", "oci-image.sh")
CONTAINERFILE = os.path.join(REPO, "Containerfile")
ARCHS = ("amd64", "arm64")
BIN = {a: os.path.join(DIST, "relaypro-linux-" + a) for a in ARCHS}
PORT = 9443
TOKEN = "sEcReT-t0ken-value-1234"

_version = rt.project_version  # VERSION from the Makefile


VERSION = _version()
TAG = "relaypro:%s" % VERSION
ARCHIVE = os.path.join(DIST, "relaypro-%s-oci.tar" % VERSION)
ARCH_ARCHIVE = {a: os.path.join(DIST, "relaypro-%s-%s-oci.tar" % (VERSION, a)) for a in ARCHS}
LABELS = ("org.opencontainers.image.version", "org.opencontainers.image.revision",
          "org.opencontainers.image.created", "org.opencontainers.image.source",
          "org.opencontainers.image.licenses")
state = {}   # filled by build_layout: index digest, manifests by arch, unpacked rootfs


def have_tool(cmd, package):
    ok = shutil.which(cmd) is not None
    rt.check(ok, "tool %s present" % cmd,
             "%s not found: install the Debian package %s (apt-get install -y %s)"
             % (cmd, package, package))
    return ok


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=rt.clean_environ(), **kw)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def blob(digest):
    return os.path.join(LAYOUT, "blobs", "sha256", digest.split(":", 1)[1])


def load_blob(digest):
    with open(blob(digest), "rb") as f:
        return json.loads(f.read())


def build():
    r = run([SCRIPT], timeout=60)
    ok = rt.check(r.returncode == 0, "oci-image.sh exits 0", r.stdout + r.stderr)
    with open(os.path.join(LAYOUT, "index.json"), "rb") as f:
        index_json = f.read()
    sums = tuple(sha256_file(p) for p in [ARCHIVE] + [ARCH_ARCHIVE[a] for a in ARCHS])
    return ok, hashlib.sha256(index_json).hexdigest(), sums


# ------------------------------------------------------------------ the layout itself

@rt.case(timeout=60)
def build_layout():
    for a in ARCHS:
        if not rt.check(os.path.isfile(BIN[a]), "dist/relaypro-linux-%s exists" % a,
                        "run ./build.sh first"):
            return
    ok, idx, tar_sum = build()
    if not ok:
        return
    state["index_json_sha"], state["tar_sha"] = idx, tar_sum
    with open(os.path.join(LAYOUT, "oci-layout")) as f:
        rt.check_eq(json.load(f), {"imageLayoutVersion": "1.0.0"}, "oci-layout file")
    bad = []
    blobs = os.listdir(os.path.join(LAYOUT, "blobs", "sha256"))
    for name in blobs:
        if sha256_file(os.path.join(LAYOUT, "blobs", "sha256", name)) != name:
            bad.append(name)
    rt.check(blobs and not bad, "every blob is named by its sha256", bad)
    with open(os.path.join(LAYOUT, "index.json")) as f:
        top = json.load(f)
    refs = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m
            for m in top["manifests"]}
    rt.check_eq(sorted(refs), sorted([TAG] + ["%s-%s" % (TAG, a) for a in ARCHS]),
                "index.json references")
    rt.check_eq(refs[TAG]["mediaType"], "application/vnd.oci.image.index.v1+json",
                "ref %s is a multi-arch image index" % TAG)
    state["index_digest"] = refs[TAG]["digest"]
    state["manifest"] = {a: refs["%s-%s" % (TAG, a)]["digest"] for a in ARCHS}
    # The layer: `relaypro` (0755, 0:0) and the private folder (0700, 65532), fixed mtime.
    for a in ARCHS:
        man = load_blob(state["manifest"][a])
        rt.check_eq(len(man["layers"]), 1, "%s: one layer" % a)
        layer = man["layers"][0]
        rt.check_eq(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
                    "%s: layer is tar+gzip" % a)
        with tarfile.open(blob(layer["digest"]), "r:gz") as tf:
            members = tf.getmembers()
            data = tf.extractfile("relaypro").read()
        rt.check_eq([(x.name.rstrip("/"), x.type, oct(x.mode), x.uid, x.gid) for x in members],
                    [("relaypro", tarfile.REGTYPE, "0o755", 0, 0),
                     ("var", tarfile.DIRTYPE, "0o755", 0, 0),
                     ("var/lib", tarfile.DIRTYPE, "0o755", 0, 0),
                     ("var/lib/relaypro", tarfile.DIRTYPE, "0o700", 65532, 65532)],
                    "%s: layer holds relaypro (0755, 0:0) and var/lib/relaypro (0700, 65532)" % a)
        with open(BIN[a], "rb") as f:
            rt.check(data == f.read(), "%s: layer file equals dist/relaypro-linux-%s" % (a, a))
        with open(blob(layer["digest"]), "rb") as f:
            import gzip
            diff_id = "sha256:" + hashlib.sha256(gzip.decompress(f.read())).hexdigest()
        cfg = load_blob(man["config"]["digest"])
        rt.check_eq(cfg["rootfs"], {"type": "layers", "diff_ids": [diff_id]},
                    "%s: config diff_id is the sha256 of the uncompressed layer" % a)
        labels = cfg["config"].get("Labels", {})
        rt.check(all(labels.get(k) for k in LABELS) and
                 labels["org.opencontainers.image.version"] == VERSION and
                 labels["org.opencontainers.image.created"] == cfg.get("created"),
                 "%s: standard labels (version %s, revision, created, source, licenses)" % (a, VERSION),
                 labels)
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        rt.check(rev and labels.get("org.opencontainers.image.revision", "").startswith(rev),
                 "%s: revision label is the commit" % a, (labels.get("org.opencontainers.image.revision"), rev))
    # The archives: one reference each, relaypro:VERSION.
    for path in [ARCHIVE] + [ARCH_ARCHIVE[a] for a in ARCHS]:
        with tarfile.open(path) as tf:
            idx = json.load(tf.extractfile("index.json"))
            names = tf.getnames()
        refs = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in idx["manifests"]]
        rt.check_eq(refs, [TAG], "%s: one reference %s" % (os.path.basename(path), TAG))
        want = state["index_digest"] if path == ARCHIVE else \
            state["manifest"][[a for a in ARCHS if ARCH_ARCHIVE[a] == path][0]]
        rt.check_eq(idx["manifests"][0]["digest"], want,
                    "%s: it is the %s" % (os.path.basename(path),
                                          "image index" if path == ARCHIVE else "platform's manifest"))
        if path != ARCHIVE:
            other = [a for a in ARCHS if ARCH_ARCHIVE[a] != path][0]
            rt.check("blobs/sha256/" + state["manifest"][other][7:] not in names,
                     "%s: only its own platform's blobs" % os.path.basename(path))


@rt.case(timeout=60)
def reproducible():
    if "index_json_sha" not in state:
        rt.check(False, "reproducible", "no layout was built")
        return
    ok, idx, tar_sum = build()
    if not ok:
        return
    rt.check_eq(idx, state["index_json_sha"], "second run: same index.json")
    rt.check_eq(tar_sum, state["tar_sha"], "second run: the same three archives, byte for byte")
    with open(os.path.join(LAYOUT, "index.json")) as f:
        top = json.load(f)
    rt.check(any(m["digest"] == state["index_digest"] for m in top["manifests"]),
             "second run: same image index digest")


# ------------------------------------------------------------------ skopeo

@rt.case(timeout=60)
def skopeo_reads_it():
    if not have_tool("skopeo", "skopeo") or "index_digest" not in state:
        return
    r = run(["skopeo", "inspect", "--raw", "oci:%s:%s" % (LAYOUT, TAG)])
    if not rt.check(r.returncode == 0, "skopeo inspect --raw the index", r.stderr):
        return
    raw = r.stdout.encode()
    rt.check_eq("sha256:" + hashlib.sha256(raw).hexdigest(), state["index_digest"],
                "skopeo: index bytes match the index digest")
    idx = json.loads(raw)
    rt.check_eq(idx.get("mediaType"), "application/vnd.oci.image.index.v1+json",
                "skopeo: an OCI image index")
    plats = sorted((m["platform"]["os"], m["platform"]["architecture"]) for m in idx["manifests"])
    rt.check_eq(plats, [("linux", "amd64"), ("linux", "arm64")], "skopeo: both platforms")
    for a in ARCHS:
        r = run(["skopeo", "inspect", "oci:%s:%s-%s" % (LAYOUT, TAG, a)])
        if not rt.check(r.returncode == 0, "skopeo inspect %s" % a, r.stderr):
            continue
        info = json.loads(r.stdout)
        rt.check_eq((info.get("Os"), info.get("Architecture"), info.get("Digest"), len(info["Layers"])),
                    ("linux", a, state["manifest"][a], 1), "skopeo %s: os, arch, digest, 1 layer" % a)
        # Platform selection from the multi-arch index picks the same manifest.
        r = run(["skopeo", "inspect", "--override-os", "linux", "--override-arch", a,
                 "oci:%s:%s" % (LAYOUT, TAG)])
        want_layers = [l["digest"] for l in load_blob(state["manifest"][a])["layers"]]
        got = json.loads(r.stdout) if r.returncode == 0 else {}
        rt.check(got.get("Architecture") == a and got.get("Layers") == want_layers,
                 "skopeo picks the %s image from the index" % a, r.stdout[:300] + r.stderr)
        r = run(["skopeo", "inspect", "--config", "oci:%s:%s-%s" % (LAYOUT, TAG, a)])
        if not rt.check(r.returncode == 0, "skopeo inspect --config %s" % a, r.stderr):
            continue
        cfg = json.loads(r.stdout)
        c = cfg.get("config", {})
        rt.check_eq((cfg.get("os"), cfg.get("architecture")), ("linux", a), "config %s: platform" % a)
        rt.check_eq((c.get("User"), c.get("Entrypoint"), c.get("Cmd")),
                    ("65532:65532", ["/relaypro"], ["run"]), "config %s: user, entrypoint, cmd" % a)
        rt.check_eq(list(c.get("ExposedPorts", {})), ["%d/tcp" % PORT], "config %s: exposes 9443/tcp" % a)
        env = c.get("Env", [])
        rt.check("RELAYPRO_LOGGER_FILE_NAME=-" in env and any(e.startswith("PATH=") for e in env)
                 and "RELAYPRO_PRIVATE_FOLDER=/var/lib/relaypro" in env,
                 "config %s: env logs to stdout, sets PATH and the private folder" % a, env)
    # The archives: skopeo copies them, verifying every blob digest on the way.
    tmp = rt.make_tmpdir()
    r = run(["skopeo", "copy", "--quiet", "--all", "oci-archive:" + ARCHIVE,
             "oci:%s:%s" % (os.path.join(tmp, "copy-all"), TAG)], timeout=60)
    rt.check(r.returncode == 0, "skopeo copy --all from %s" % os.path.basename(ARCHIVE), r.stderr)
    for a in ARCHS:
        dst = os.path.join(tmp, "copy-" + a)
        r = run(["skopeo", "copy", "--quiet", "oci-archive:" + ARCH_ARCHIVE[a], "dir:" + dst],
                timeout=60)
        rt.check(r.returncode == 0, "skopeo copy from %s" % os.path.basename(ARCH_ARCHIVE[a]), r.stderr)
        r = run(["skopeo", "inspect", "oci-archive:" + ARCH_ARCHIVE[a]])
        info = json.loads(r.stdout) if r.returncode == 0 else {}
        rt.check(info.get("Architecture") == a and info.get("Labels", {}).get(
            "org.opencontainers.image.version") == VERSION,
            "skopeo inspect %s: %s, labels" % (os.path.basename(ARCH_ARCHIVE[a]), a), r.stderr)


# ------------------------------------------------------------------ umoci + running it

@rt.case(timeout=60)
def umoci_unpack_and_run():
    if not have_tool("umoci", "umoci") or "index_digest" not in state:
        return
    tmp = rt.make_tmpdir()
    for a in ARCHS:
        bundle = os.path.join(tmp, "bundle-" + a)
        # umoci works on a layout: the single-platform archive, unpacked as it is.
        lay = os.path.join(tmp, "layout-" + a)
        os.makedirs(lay)
        with tarfile.open(ARCH_ARCHIVE[a]) as tf:
            tf.extractall(lay)
        r = run(["umoci", "unpack", "--image", "%s:%s" % (lay, TAG), bundle], timeout=60)
        if not rt.check(r.returncode == 0, "umoci unpack %s (from its archive)" % a, r.stdout + r.stderr):
            continue
        rootfs = os.path.join(bundle, "rootfs")
        rt.check_eq(sorted(os.listdir(rootfs)), ["relaypro", "var"], "%s rootfs: relaypro and var" % a)
        st = os.stat(os.path.join(rootfs, "var", "lib", "relaypro"))
        rt.check((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65532, 65532, 0o700),
                 "%s rootfs: /var/lib/relaypro is 0700 and 65532's" % a, (st.st_uid, oct(st.st_mode)))
        f = os.path.join(rootfs, "relaypro")
        st = os.lstat(f)
        rt.check(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755,
                 "%s rootfs: relaypro is a regular 0755 file" % a, oct(st.st_mode))
        rt.check_eq(sha256_file(f), sha256_file(BIN[a]), "%s rootfs: byte-identical to dist/" % a)
        with open(os.path.join(bundle, "config.json")) as fh:
            spec = json.load(fh)
        p = spec.get("process", {})
        rt.check_eq(p.get("args"), ["/relaypro", "run"], "%s runtime: args entrypoint + cmd" % a)
        rt.check_eq((p.get("user", {}).get("uid"), p.get("user", {}).get("gid")), (65532, 65532),
                    "%s runtime: user 65532:65532" % a)
        rt.check("RELAYPRO_LOGGER_FILE_NAME=-" in p.get("env", []), "%s runtime: env" % a, p.get("env"))
        rt.check_eq(spec.get("annotations", {}).get("org.opencontainers.image.exposedPorts"),
                    "%d/tcp" % PORT, "%s runtime: exposed port" % a)
        state["rootfs_" + a] = rootfs
        state["env_" + a] = p.get("env", [])
    rootfs = state.get("rootfs_amd64")
    if not rootfs:
        return
    r = run([os.path.join(rootfs, "relaypro"), "version"])
    rt.check(r.returncode == 0 and r.stdout.startswith("relaypro ") and "linux/amd64" in r.stdout,
             "unpacked binary runs: version", r.stdout + r.stderr)
    if os.geteuid() != 0:
        rt.check(False, "chroot needs root (the tests run as root on CI)")
        return
    r = run(["chroot", rootfs, "/relaypro", "version"])
    rt.check(r.returncode == 0 and r.stdout.startswith("relaypro "), "version in a chroot of the rootfs",
             r.stdout + r.stderr)


@rt.case(timeout=40)
def chroot_serves_as_65532():
    """The unpacked rootfs as the pod runs it: UID 65532, nothing writable, the CA bundle
    read-only under /secrets, the image's env; /healthz 200 and /readyz 200."""
    rootfs = state.get("rootfs_amd64")
    if not rootfs:
        rt.check(False, "chroot run", "no unpacked rootfs")
        return
    if os.geteuid() != 0:
        rt.check(False, "chroot needs root (the tests run as root on CI)")
        return
    root = os.path.join(rt.make_tmpdir(), "root")
    shutil.copytree(rootfs, root, symlinks=True)
    os.chmod(root, 0o755)
    os.chown(os.path.join(root, "var", "lib", "relaypro"), 65532, 65532)  # as in the image
    os.mkdir(os.path.join(root, "secrets"), 0o755)
    bundle = os.path.join(root, "secrets", "ca-bundle.pem")
    r = subprocess.run(
        [BIN["amd64"], "ca", "show"], capture_output=True, text=True, timeout=30,
        env=dict(rt.clean_environ(), RELAYPRO_CA_BUNDLE_FILE=bundle))
    if not rt.check(r.returncode == 0 and os.path.isfile(bundle),
                    "relaypro ca show creates the CA bundle", r.stderr):
        return
    os.chown(bundle, 0, 65532)     # as a Secret volume with defaultMode 0440, fsGroup 65532
    os.chmod(bundle, 0o440)
    port = rt.free_port()
    env = dict(e.split("=", 1) for e in state.get("env_amd64", []))
    env.update(RELAYPRO_HTTPS_PROXY_LISTEN="127.0.0.1:%d" % port,
               RELAYPRO_CA_BUNDLE_FILE="/secrets/ca-bundle.pem",
               RELAYPRO_SECURITY_TOKEN=TOKEN)
    p = rt.start_process([shutil.which("chroot") or "/usr/sbin/chroot", "--userspec=65532:65532", root, "/relaypro", "run"],
                         env=env, name="chroot-run")
    if not rt.check(rt.wait_for_port("127.0.0.1", port, timeout=10), "chroot run as 65532 listens",
                    rt._read_text(p.stdout_path)[-500:] + rt._read_text(p.stderr_path)[-500:]):
        return
    for path in ("/healthz", "/readyz"):
        resp = rt.http_request("127.0.0.1", port, "GET", path, tls=True, verify=False)
        rt.check_eq(resp.status, 200, "chroot run as 65532: GET %s" % path)
    rc = p.stop(timeout=10)
    rt.check_eq(rc, 0, "chroot run: SIGTERM exits 0")
    lines = [ln for ln in rt._read_text(p.stdout_path).splitlines() if ln.strip()]
    try:
        events = [json.loads(ln).get("event") for ln in lines]
    except ValueError:
        events = None
    rt.check(events and "start" in events and "stop" in events,
             "chroot run: JSON log lines on stdout (start, stop)", lines[:5])
    rt.check(TOKEN not in "\n".join(lines), "chroot run: token not logged")
    rt.check_eq(sorted(os.listdir(root)), ["relaypro", "secrets", "var"], "chroot run wrote nothing to /")
    rt.check_eq(os.listdir(os.path.join(root, "var", "lib", "relaypro")), [],
                "chroot run: nothing in the private folder (CA bundle mounted, token given)")


# ------------------------------------------------------------------ Containerfile

def containerfile_instructions():
    with open(CONTAINERFILE) as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            word, _, rest = ln.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@rt.case
def containerfile():
    ins = containerfile_instructions()
    froms = [r for w, r in ins if w == "FROM"]
    args = [r for w, r in ins[:[w for w, _ in ins].index("FROM")] if w == "ARG"]
    rt.check(len(froms) == 2 and "${BUILD_BASE}" in froms[0] and froms[0].endswith(" AS build")
             and froms[1] == "scratch" and "BUILD_BASE=debian:bookworm" in args,
             "Containerfile: build stage FROM ${BUILD_BASE} (default debian:bookworm), then FROM scratch",
             (froms, args))
    runs = [r for w, r in ins if w == "RUN"]
    rt.check(any("./build.sh deps && ./build.sh" in r for r in runs) and
             sum(r.count("./build.sh") for r in runs) == 2,
             "Containerfile: builds once with ./build.sh deps && ./build.sh", runs)
    last = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][1]:] if len(froms) == 2 else []
    copies = [r for w, r in last if w == "COPY"]
    rt.check(len(copies) == 2 and "relaypro-linux-${TARGETARCH}" in copies[0]
             and copies[0].endswith(" /relaypro") and copies[1] == "--from=build /rootfs/ /",
             "Containerfile: final stage copies the TARGETARCH binary to /relaypro and the private folder", copies)
    rt.check(any(w == "ARG" and r.startswith("TARGETARCH") for w, r in last),
             "Containerfile: ARG TARGETARCH in the final stage")
    rt.check(("ARG", "VERSION=%s" % VERSION) in last, "Containerfile: ARG VERSION defaults to the Makefile's")
    rt.check_eq([r for w, r in last if w == "USER"], ["65532:65532"], "Containerfile: USER 65532")
    rt.check_eq([r for w, r in last if w == "EXPOSE"], [str(PORT)], "Containerfile: EXPOSE 9443")
    rt.check_eq([r for w, r in last if w == "ENV"],
                ["RELAYPRO_LOGGER_FILE_NAME=- RELAYPRO_PRIVATE_FOLDER=/var/lib/relaypro"],
                "Containerfile: logs to stdout, private folder /var/lib/relaypro")
    labels = " ".join(r for w, r in last if w == "LABEL")
    rt.check(all(k in labels for k in LABELS), "Containerfile: the standard labels", labels)
    rt.check_eq([json.loads(r) for w, r in last if w == "ENTRYPOINT"], [["/relaypro"]],
                "Containerfile: ENTRYPOINT")
    rt.check_eq([json.loads(r) for w, r in last if w == "CMD"], [["run"]], "Containerfile: CMD")
    rt.check(not any(w == "HEALTHCHECK" for w, _ in ins), "Containerfile: no HEALTHCHECK")


if __name__ == "__main__":
    rt.main("image", deadline=120)

#!/usr/bin/env bash
# packaging/oci-image.sh — build the relaypro container image without a daemon or a registry.
#
# From dist/relaypro-linux-{amd64,arm64} (made by ./build.sh) it writes, for VERSION from the
# Makefile:
#   dist/relaypro-oci/                     OCI image layout (oci-layout, index.json, blobs/)
#   dist/relaypro-VERSION-oci.tar          the multi-arch image as one OCI archive: one
#                                          reference, relaypro:VERSION, an image index of both
#                                          platforms (`podman load` takes the host's)
#   dist/relaypro-VERSION-ARCH-oci.tar     one platform each (amd64, arm64): one reference,
#                                          relaypro:VERSION, one image manifest (what umoci
#                                          unpacks, and `podman load` of another architecture)
# References in the layout (org.opencontainers.image.ref.name): relaypro:VERSION (the
# index), relaypro:VERSION-amd64 and relaypro:VERSION-arm64 (the manifests), e.g.
#   podman load -i dist/relaypro-0.1.0-oci.tar            -> localhost/relaypro:0.1.0
#   skopeo inspect oci:dist/relaypro-oci:relaypro:0.1.0-amd64
#   umoci unpack --image dist/relaypro-oci:relaypro:0.1.0-amd64 bundle
#   skopeo copy --all oci-archive:dist/relaypro-0.1.0-oci.tar docker://registry.example.com/relaypro:0.1.0
#
# Per platform: one gzip'ed tar layer holding `relaypro` (0755, 0:0) and the empty folder
# `var/lib/relaypro/` (0700, 65532:65532: the private folder; a named volume mounted there
# starts out owned by the image's user), and a config: User 65532:65532, Entrypoint
# ["/relaypro"], Cmd ["run"], RELAYPRO_LOGGER_FILE_NAME=- (logs on stdout),
# RELAYPRO_PRIVATE_FOLDER=/var/lib/relaypro, 9443/tcp, and the standard labels
# org.opencontainers.image.{title,version,revision,created,source,licenses} (also as
# annotations of the manifests and the index). Like the Containerfile's FROM scratch stage.
#
# created = SOURCE_DATE_EPOCH, else the time of the last commit; revision = the commit
# (with -dirty when tracked files differ from it); source = RELAYPRO_IMAGE_SOURCE, else the
# git remote "origin", else "unknown". Same binaries and inputs give the same digests.
# Needs only coreutils, GNU tar, gzip, git (optional) and python3 (stdlib).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' Makefile)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	revision="$revision-dirty"
fi
source_url=${RELAYPRO_IMAGE_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || echo unknown)}
archs=(amd64 arm64)
out=dist/relaypro-oci

[ -n "$version" ] || { echo "oci-image.sh: no VERSION in the Makefile" >&2; exit 1; }
for a in "${archs[@]}"; do
	[ -f "dist/relaypro-linux-$a" ] || { echo "oci-image.sh: dist/relaypro-linux-$a missing (run ./build.sh)" >&2; exit 1; }
done
for t in tar gzip python3 sha256sum; do
	command -v "$t" >/dev/null || { echo "oci-image.sh: $t not found" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022

# One layer per architecture: uncompressed tar (its sha256 is the diff_id) and tar.gz.
for a in "${archs[@]}"; do
	mkdir -p "$work/$a/root/var/lib/relaypro"
	cp "dist/relaypro-linux-$a" "$work/$a/root/relaypro"
	chmod 0755 "$work/$a/root/relaypro" "$work/$a/root/var" "$work/$a/root/var/lib"
	chmod 0700 "$work/$a/root/var/lib/relaypro"
	tar -C "$work/$a/root" --format=ustar --sort=name --numeric-owner --owner=0 --group=0 \
		--mtime="@$epoch" --no-recursion -cf "$work/$a/var.tar" relaypro var/ var/lib/
	tar -C "$work/$a/root" --format=ustar --numeric-owner --owner=65532 --group=65532 \
		--mtime="@$epoch" --no-recursion -cf "$work/$a/state.tar" var/lib/relaypro/
	# one archive: the root-owned entries, then the private folder owned by 65532
	tar --concatenate -f "$work/$a/var.tar" "$work/$a/state.tar"
	mv "$work/$a/var.tar" "$work/$a/layer.tar"
	gzip -9 -n -c "$work/$a/layer.tar" >"$work/$a/layer.tar.gz"
done

rm -rf "$out" "$out.tar" dist/relaypro-*-oci.tar
mkdir -p "$out/blobs/sha256"

python3 - "$work" "$out" "$version" "$epoch" "$revision" "$source_url" "${archs[@]}" <<'PY'
import datetime, hashlib, json, os, shutil, sys

work, out, version, epoch, revision, source = sys.argv[1:7]
archs = sys.argv[7:]
epoch = int(epoch)
blobs = os.path.join(out, "blobs", "sha256")
created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
REF = "org.opencontainers.image.ref.name"
LABELS = {
    "org.opencontainers.image.title": "relaypro",
    "org.opencontainers.image.description": "relaypro: authenticated HTTPS relay (FROM scratch, one static binary)",
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.revision": revision,
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.source": source,
    # the package's copyright file: relaypro proprietary; BearSSL and musl MIT; inih BSD-3-Clause
    "org.opencontainers.image.licenses": "LicenseRef-relaypro-proprietary AND MIT AND BSD-3-Clause",
}

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()

def put_file(path, media_type):
    d = sha256_file(path)
    dst = os.path.join(blobs, d.split(":", 1)[1])
    shutil.copyfile(path, dst)
    os.chmod(dst, 0o644)
    return {"mediaType": media_type, "digest": d, "size": os.path.getsize(dst)}

def put_json(obj, media_type):
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    dst = os.path.join(blobs, d.split(":", 1)[1])
    with open(dst, "wb") as f:
        f.write(data)
    os.chmod(dst, 0o644)
    return {"mediaType": media_type, "digest": d, "size": len(data)}

def platform(arch):
    p = {"architecture": arch, "os": "linux"}
    if arch == "arm64":
        p["variant"] = "v8"
    return p

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

manifests = []
for arch in archs:
    layer = put_file(os.path.join(work, arch, "layer.tar.gz"), MT_LAYER)
    diff_id = sha256_file(os.path.join(work, arch, "layer.tar"))
    config = dict(platform(arch))
    config.update({
        "created": created,
        "config": {
            "User": "65532:65532",
            "Entrypoint": ["/relaypro"],
            "Cmd": ["run"],
            "Env": ["PATH=/", "RELAYPRO_LOGGER_FILE_NAME=-",
                    "RELAYPRO_PRIVATE_FOLDER=/var/lib/relaypro"],
            "ExposedPorts": {"9443/tcp": {}},
            "WorkingDir": "/",
            "Labels": LABELS,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "packaging/oci-image.sh: relaypro %s" % version}],
    })
    cfg = put_json(config, MT_CONFIG)
    man = put_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cfg,
                    "layers": [layer], "annotations": LABELS}, MT_MANIFEST)
    man["platform"] = platform(arch)
    manifests.append((arch, man))

index_blob = put_json({"schemaVersion": 2, "mediaType": MT_INDEX, "annotations": LABELS,
                       "manifests": [m for _, m in manifests]}, MT_INDEX)

def write_index(path, entries):
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}, f,
                  separators=(",", ":"), sort_keys=True)

name = "relaypro:" + version
top = [dict(index_blob, annotations={REF: name})]
for arch, m in manifests:
    top.append(dict(m, annotations={REF: "%s-%s" % (name, arch)}))
write_index(out, top)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f, separators=(",", ":"))
# The single-reference index.json files of the archives (same blobs).
os.makedirs(os.path.join(work, "idx", "all"))
write_index(os.path.join(work, "idx", "all"), [dict(index_blob, annotations={REF: name})])
for arch, m in manifests:
    os.makedirs(os.path.join(work, "idx", arch))
    write_index(os.path.join(work, "idx", arch), [dict(m, annotations={REF: name})])
print("%s  %s (index, ref %s)" % (index_blob["digest"], out, name))
for arch, m in manifests:
    print("%s  linux/%s (ref %s-%s)" % (m["digest"], arch, name, arch))
PY

chmod 0644 "$out/index.json" "$out/oci-layout"

# An OCI archive: oci-layout, one index.json, the blobs it reaches (the tar of a layout).
archive() { # archive FILE INDEX-FOLDER
	local f=$1 idx=$2 blobs
	cp "$out/oci-layout" "$idx/oci-layout"
	chmod 0644 "$idx/index.json" "$idx/oci-layout"
	blobs=$(python3 - "$out" "$idx/index.json" <<'PY'
import json, os, sys
out, index = sys.argv[1], sys.argv[2]
seen, todo = set(), [m["digest"] for m in json.load(open(index))["manifests"]]
while todo:  # image indexes and manifests: what they reach
    d = todo.pop()
    if d in seen:
        continue
    seen.add(d)
    with open(os.path.join(out, "blobs", "sha256", d.split(":")[1]), "rb") as f:
        doc = json.load(f)
    todo += [m["digest"] for m in doc.get("manifests", [])]
    seen.update(m["digest"] for m in doc.get("layers", []))
    if "config" in doc:
        seen.add(doc["config"]["digest"])
print("\n".join("blobs/sha256/" + d.split(":")[1] for d in sorted(seen)))
PY
)
	# shellcheck disable=SC2086
	tar --format=ustar --sort=name --numeric-owner --owner=0 --group=0 --mtime="@$epoch" \
		-cf "$f" -C "$idx" oci-layout index.json -C "$PWD/$out" --no-recursion blobs/ blobs/sha256/ $blobs
}
archive "dist/relaypro-$version-oci.tar" "$work/idx/all"
for a in "${archs[@]}"; do
	archive "dist/relaypro-$version-$a-oci.tar" "$work/idx/$a"
done
for f in "dist/relaypro-$version-oci.tar" "dist/relaypro-$version"-*-oci.tar; do
	printf '%-34s %8d bytes  sha256:%s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done

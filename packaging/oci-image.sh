#!/usr/bin/env bash
# packaging/oci-image.sh — build the relaypro container image without a daemon.
#
# From dist/relaypro-linux-{amd64,arm64} (made by ./build.sh) it writes an OCI image layout
#   dist/relaypro-oci/       oci-layout, index.json, blobs/sha256/<digest>
#   dist/relaypro-oci.tar    the same layout as one tar (skopeo's/podman's "oci-archive:")
# Per architecture: one gzip'ed tar layer holding only `relaypro` (0755, 0:0), a config
# (User 65532:65532, Entrypoint ["/relaypro"], Cmd ["run"], logs to stdout, 9443/tcp) and a
# manifest; plus a multi-arch image index. Like the Containerfile's FROM scratch stage.
#
# References in index.json (org.opencontainers.image.ref.name):
#   <tag>          the multi-arch image index (tag: $RELAYPRO_IMAGE_TAG, default "latest")
#   <tag>-amd64    the linux/amd64 manifest
#   <tag>-arm64    the linux/arm64 manifest
# e.g. skopeo inspect oci:dist/relaypro-oci:latest-amd64
#      skopeo copy --all oci-archive:dist/relaypro-oci.tar:latest docker://registry/relaypro:0.1.0
#
# Reproducible: same binaries (and SOURCE_DATE_EPOCH, default 0) give the same digests.
# Needs only coreutils, GNU tar, gzip and python3 (stdlib).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${RELAYPRO_IMAGE_TAG:-latest}
epoch=${SOURCE_DATE_EPOCH:-0}
archs=(amd64 arm64)
out=dist/relaypro-oci

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
	mkdir -p "$work/$a/root"
	cp "dist/relaypro-linux-$a" "$work/$a/root/relaypro"
	chmod 0755 "$work/$a/root/relaypro"
	tar -C "$work/$a/root" --format=ustar --sort=name --numeric-owner --owner=0 --group=0 \
		--mode=0755 --mtime="@$epoch" -cf "$work/$a/layer.tar" relaypro
	gzip -9 -n -c "$work/$a/layer.tar" >"$work/$a/layer.tar.gz"
done

rm -rf "$out" "$out.tar"
mkdir -p "$out/blobs/sha256"

python3 - "$work" "$out" "$tag" "$epoch" "${archs[@]}" <<'PY'
import datetime, hashlib, json, os, shutil, sys

work, out, tag, epoch, archs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
blobs = os.path.join(out, "blobs", "sha256")
created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

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
            "Env": ["PATH=/", "RELAYPRO_LOGGER_FILE_NAME=-"],
            "ExposedPorts": {"9443/tcp": {}},
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.title": "relaypro"},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "packaging/oci-image.sh: relaypro"}],
    })
    cfg = put_json(config, MT_CONFIG)
    man = put_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cfg,
                    "layers": [layer]}, MT_MANIFEST)
    man["platform"] = platform(arch)
    manifests.append((arch, man))

index_blob = put_json({"schemaVersion": 2, "mediaType": MT_INDEX,
                       "manifests": [m for _, m in manifests]}, MT_INDEX)

top = [dict(index_blob, annotations={"org.opencontainers.image.ref.name": tag})]
for arch, m in manifests:
    top.append(dict(m, annotations={"org.opencontainers.image.ref.name": "%s-%s" % (tag, arch)}))

with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": top}, f,
              separators=(",", ":"), sort_keys=True)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f, separators=(",", ":"))
print("%s  %s (index, ref %s)" % (index_blob["digest"], out, tag))
for arch, m in manifests:
    print("%s  linux/%s (ref %s-%s)" % (m["digest"], arch, tag, arch))
PY

chmod 0644 "$out/index.json" "$out/oci-layout"
tar -C "$out" --format=ustar --sort=name --numeric-owner --owner=0 --group=0 \
	--mtime="@$epoch" -cf "$out.tar" oci-layout index.json blobs
printf '%-28s %8d bytes  sha256:%s\n' "$out.tar" "$(stat -c %s "$out.tar")" \
	"$(sha256sum "$out.tar" | cut -d' ' -f1)"

#!/usr/bin/env bash
# build.sh — the one way relaypro is built (the Makefile and the Containerfile call it).
#
#   ./build.sh deps    install the toolchains from Debian's packages (needs root) and fetch,
#                      verify and build the pinned third-party inputs (vendor/deps.lock)
#   ./build.sh run-deps  only what `make run` needs: the native toolchain, curl, python3 and
#                      openssl (the demo's test console), the native third-party inputs
#   ./build.sh test-deps deps, plus every tool the tests use (make test)
#   ./build.sh         build dist/relaypro-linux-amd64 and dist/relaypro-linux-arm64
#                      (static, stripped) and print their sizes
#   ./build.sh amd64   one architecture only
#   ./build.sh package dist/*.deb and dist/*.rpm for amd64/x86_64 and arm64/aarch64
#   ./build.sh image   dist/relaypro-oci/ and dist/relaypro-oci.tar: the FROM scratch image
#                      for both architectures as an OCI layout, built without a daemon
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages, in the sets that need them. Checked with dpkg-query first so a machine
# that has them needs no network. `make run` installs run_pkgs only; the cross toolchain
# (and the arm64 architecture) comes with a full build; the tests' tools with make test.
run_pkgs=(make gcc musl-tools musl-dev dpkg-dev xz-utils file curl python3 openssl)
cross_pkgs=(gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu musl-dev:arm64)
package_pkgs=(rpm bzip2)
test_pkgs=(qemu-user-static procps util-linux tinyproxy microsocks dante-server stunnel4 haproxy skopeo umoci python3-yaml
	rpmlint lintian cpio prometheus man-db podman runc debootstrap)

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
	done
}

install_pkgs() {
	local need
	need=$(missing_pkgs "$@")
	[ -n "$need" ] || return 0
	if [ "$(id -u)" != 0 ]; then
		echo "build.sh: missing Debian packages (run as root to install):" $need >&2
		exit 1
	fi
	case " $need " in
	*:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
	esac
	echo "build.sh: installing" $need
	apt-get -o DPkg::Lock::Timeout=900 -qq update
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $need >/dev/null
}

native_arch() {
	uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/'
}

deps() {
	install_pkgs "${run_pkgs[@]}" "${cross_pkgs[@]}"
	vendor/fetch.sh
}

build_arch() {
	local a=$1
	vendor/fetch.sh "$a" >/dev/null
	make -s ARCH="$a" dist
}

case "${1:-all}" in
deps) deps ;;
run-deps)
	install_pkgs "${run_pkgs[@]}"
	vendor/fetch.sh "$(native_arch)"
	;;
test-deps)
	deps
	install_pkgs "${package_pkgs[@]}" "${test_pkgs[@]}"
	;;
all)
	deps >/dev/null
	build_arch amd64
	build_arch arm64
	for b in dist/relaypro-linux-amd64 dist/relaypro-linux-arm64; do
		printf '%-28s %8d bytes  %s\n' "$b" "$(stat -c %s "$b")" "$(file -b "$b" | cut -d, -f1-2)"
	done
	;;
amd64 | arm64)
	deps >/dev/null
	build_arch "$1"
	b=dist/relaypro-linux-$1
	printf '%-28s %8d bytes\n' "$b" "$(stat -c %s "$b")"
	;;
package)
	# relaypro_<version>_<arch>.deb and relaypro-<version>-1.<arch>.rpm for both architectures
	deps >/dev/null
	install_pkgs "${package_pkgs[@]}" >/dev/null
	build_arch amd64
	build_arch arm64
	packaging/package.sh
	;;
image)
	# OCI image layout + archive for both architectures, no daemon (packaging/oci-image.sh)
	[ -f dist/relaypro-linux-amd64 ] && [ -f dist/relaypro-linux-arm64 ] || "$0"
	packaging/oci-image.sh
	;;
*)
	echo "usage: ./build.sh [deps|run-deps|test-deps|amd64|arm64|package|image]" >&2
	exit 2
	;;
esac

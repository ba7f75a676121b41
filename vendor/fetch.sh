#!/usr/bin/env bash
# vendor/fetch.sh — fetch, verify and build relaypro's third-party inputs.
#
# Contract: reads vendor/deps.lock; downloads each file from Debian's archive with apt
# (never a hard-coded host), checks its SHA-256 against the lock and stops with a clear
# message on a mismatch; then builds, per architecture, into .deps/<arch>/:
#   lib/libbearssl.a  include/bearssl*.h   (BearSSL built from source with the musl compiler)
#   lib/libinih.a     include/ini.h        (from Debian's libinih-dev, symbols checked)
# Everything it writes lives under .deps/ (git-ignored). Idempotent: a second run with
# everything in place does no network access and rebuilds nothing.
#
# Usage: vendor/fetch.sh [amd64|arm64]...   (default: both)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
lock="$top/vendor/deps.lock"
deps="$top/.deps"
dl="$deps/dl"
mkdir -p "$dl"

die() { echo "vendor/fetch.sh: $*" >&2; exit 1; }

archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64)

cc_for() {
	case "$1" in
	amd64) echo musl-gcc ;;
	arm64) echo aarch64-linux-musl-gcc ;;
	*) die "unknown architecture '$1' (amd64 or arm64)" ;;
	esac
}
libc_for() {
	case "$1" in
	amd64) echo /usr/lib/x86_64-linux-musl/libc.a ;;
	arm64) echo /usr/lib/aarch64-linux-musl/libc.a ;;
	esac
}
nm_for() {
	case "$1" in
	amd64) echo nm ;;
	arm64) echo aarch64-linux-gnu-nm ;;
	esac
}
ar_for() {
	case "$1" in
	amd64) echo ar ;;
	arm64) echo aarch64-linux-gnu-ar ;;
	esac
}

# A private apt configuration that adds deb-src entries derived from the machine's own
# apt sources, without touching /etc. Only built when a source package must be fetched.
aptsrc="$deps/apt-src"
apt_src_opts() {
	echo "-o Dir::Etc::SourceList=$aptsrc/sources.list -o Dir::Etc::SourceParts=$aptsrc/sources.d -o Dir::State::Lists=$aptsrc/lists"
}
prepare_apt_src() {
	[ -f "$aptsrc/ready" ] && return 0
	rm -rf "$aptsrc"
	mkdir -p "$aptsrc/sources.d" "$aptsrc/lists/partial"
	: >"$aptsrc/sources.list"
	local f n=0
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		sed '/^Types:/s/^Types:.*/Types: deb-src/' "$f" >"$aptsrc/sources.d/$(basename "$f")"
		n=$((n + 1))
	done
	if [ -f /etc/apt/sources.list ]; then
		sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >>"$aptsrc/sources.list"
		[ -s "$aptsrc/sources.list" ] && n=$((n + 1))
	fi
	[ "$n" -gt 0 ] || die "no apt sources found to derive deb-src entries from"
	# shellcheck disable=SC2046
	apt-get $(apt_src_opts) -qq update || die "apt-get update (deb-src) failed"
	touch "$aptsrc/ready"
}

verify() { # file sha256 -> 0 when it matches
	local got
	got=$(sha256sum "$1" | cut -d' ' -f1)
	[ "$got" = "$2" ] && return 0
	echo "vendor/fetch.sh: checksum mismatch for $(basename "$1"): expected $2, got $got" >&2
	return 1
}

fetch() { # how package version arch file sha
	local how=$1 pkg=$2 ver=$3 arch=$4 file=$5 sha=$6
	if [ -f "$dl/$file" ]; then
		verify "$dl/$file" "$sha" || { rm -f "$dl/$file"; die "refusing $file (see above)"; }
		return 0
	fi
	echo "fetch: $pkg $ver ($how${arch:+, $arch})"
	case "$how" in
	source)
		prepare_apt_src
		# shellcheck disable=SC2046
		(cd "$dl" && apt-get $(apt_src_opts) -qq source --download-only "$pkg=$ver" >/dev/null 2>&1) ||
			die "apt-get source $pkg=$ver failed"
		;;
	deb)
		(cd "$dl" && apt-get -qq download "$pkg:$arch=$ver" >/dev/null 2>&1) ||
			die "apt-get download $pkg:$arch=$ver failed (run 'apt-get update' first?)"
		;;
	*) die "lock: unknown kind '$how'" ;;
	esac
	[ -f "$dl/$file" ] || die "$pkg $ver: expected file $file not found after download"
	verify "$dl/$file" "$sha" || { rm -f "$dl/$file"; die "refusing $file (see above)"; }
}

bearssl_tar=""
declare -A inih_deb=()
while read -r name how pkg ver arch file sha; do
	case "$name" in '' | '#'*) continue ;; esac
	[ -n "$sha" ] || die "lock: malformed line for $name"
	case "$name/$arch" in
	bearssl/any) fetch "$how" "$pkg" "$ver" "" "$file" "$sha"; bearssl_tar=$file ;;
	inih/*)
		for a in "${archs[@]}"; do
			[ "$a" = "$arch" ] && { fetch "$how" "$pkg" "$ver" "$arch" "$file" "$sha"; inih_deb[$arch]=$file; }
		done
		;;
	*) die "lock: unexpected entry $name/$arch" ;;
	esac
done <"$lock"
[ -n "$bearssl_tar" ] || die "lock: no bearssl entry"

# --- BearSSL source tree -------------------------------------------------------------
srcdir="$deps/src/bearssl"
stamp="$srcdir/.extracted-$(sha256sum "$dl/$bearssl_tar" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
	rm -rf "$srcdir"
	mkdir -p "$srcdir"
	tar -xJf "$dl/$bearssl_tar" -C "$srcdir" --strip-components=1 || die "cannot extract $bearssl_tar"
	touch "$stamp"
fi

jobs=$(nproc 2>/dev/null || echo 2)
for a in "${archs[@]}"; do
	cc=$(cc_for "$a")
	command -v "$cc" >/dev/null || die "$cc not found: run './build.sh deps' first"
	out="$deps/$a"
	mkdir -p "$out/lib" "$out/include"
	# BearSSL: compiled with the same musl compiler and size flags as relaypro itself.
	make -s -j"$jobs" -f "$top/vendor/bearssl.mk" SRC="$srcdir" OUT="$out/bearssl-obj" \
		CC="$cc" AR="$(ar_for "$a")" LIB="$out/lib/libbearssl.a" ||
		die "BearSSL build failed for $a"
	cp -p "$srcdir"/inc/*.h "$out/include/"

	# inih: the static archive and header from Debian's libinih-dev.
	deb=${inih_deb[$a]:-}
	[ -n "$deb" ] || die "lock: no inih entry for $a"
	if [ ! -f "$out/lib/libinih.a" ] || [ "$dl/$deb" -nt "$out/lib/libinih.a" ]; then
		x="$deps/tmp-inih-$a"
		rm -rf "$x"
		mkdir -p "$x"
		dpkg-deb -x "$dl/$deb" "$x" || die "cannot unpack $deb"
		lib=$(find "$x" -name libinih.a | head -n1)
		[ -n "$lib" ] || die "$deb holds no libinih.a"
		# The archive was built against glibc: every symbol it needs must exist in musl.
		libc=$(libc_for "$a")
		[ -f "$libc" ] || die "musl libc.a for $a not found at $libc: run './build.sh deps'"
		provided=$($(nm_for "$a") "$libc" 2>/dev/null | awk '$2 ~ /^[TWDBRV]$/ {print $3}' | sort -u)
		missing=""
		for s in $($(nm_for "$a") "$lib" | awk '$1 == "U" {print $2}' | sort -u); do
			case "$s" in _GLOBAL_OFFSET_TABLE_) continue ;; esac
			grep -qx "$s" <<<"$provided" || missing="$missing $s"
		done
		[ -z "$missing" ] || die "libinih.a ($a) needs symbols musl does not provide:$missing"
		cp "$lib" "$out/lib/libinih.a"
		cp "$(find "$x" -name ini.h | head -n1)" "$out/include/ini.h"
		rm -rf "$x"
	fi
done
echo "vendor: ready (${archs[*]})"

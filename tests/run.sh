#!/usr/bin/env bash
# tests/run.sh — what `make test` runs: build both architectures, unit tests (amd64
# natively, arm64 under qemu), then every integration script. Each runner ends with
# "N passed, N failed"; this script adds them up and prints the total as its last line.
# Exit status: 0 only when every runner passed and none failed to run.
set -uo pipefail
cd "$(dirname "$0")/.."

total_pass=0
total_fail=0
broken=0

# Run one runner, echo its output, add its closing counts to the totals.
tally() {
	local name=$1
	shift
	local out rc line
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "run.sh: $name printed no summary (exit $rc)"
		broken=$((broken + 1))
		return
	fi
	p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run.sh: $name exited $rc"
		broken=$((broken + 1))
	fi
}

echo "== build (both architectures)"
./build.sh || { echo "build failed"; echo "total: 0 passed, 1 failed"; exit 1; }

echo "== source layout (include cycles, contract comments, file lengths)"
tally layout python3 tests/lint/test_layout.py

echo "== unit tests (amd64)"
make -s ARCH=amd64 build/amd64/unit-tests || broken=$((broken + 1))
tally unit-amd64 build/amd64/unit-tests

echo "== unit tests (arm64 under qemu)"
make -s ARCH=arm64 build/arm64/unit-tests || broken=$((broken + 1))
tally unit-arm64 qemu-aarch64-static build/arm64/unit-tests

echo "== unit tests (glibc, ASan + UBSan)"
tally unit-asan make -s asan

echo "== fuzz corpora replayed (musl, then glibc ASan + UBSan; no clang needed)"
tally fuzz-replay make -s fuzz-replay

echo "== the pre-authentication connection fuzzed for 60 s (clang, libFuzzer, ASan + UBSan)"
tally fuzz-smoke make -s fuzz-smoke

for t in tests/integration/test_*.py; do
	echo "== $t"
	tally "$t" timeout 900 python3 "$t"
done

# The integration suite again, against the glibc ASan + UBSan build of the relay (issue 9:
# CI runs the sanitizer build); `make check` adds the valgrind subset.
echo "== integration tests against the ASan + UBSan relay (tests/check.sh asan)"
tally asan-integration tests/check.sh asan

total_fail=$((total_fail + broken))
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

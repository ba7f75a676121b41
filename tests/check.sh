#!/usr/bin/env bash
# tests/check.sh [all|asan|valgrind] — what `make check` runs (all); `make test` runs the
# `asan` part (tests/run.sh):
#
#  1. the integration suite against a glibc build of relaypro with AddressSanitizer and
#     UndefinedBehaviorSanitizer (build/asan/relaypro). Sanitizer reports go to files under
#     build/asan/logs/; any report fails the run even when the script's own checks passed.
#  2. a representative subset under valgrind --leak-check=full (the static musl binary,
#     through a small wrapper that execs valgrind so the PID the tests stop is valgrind's).
#     Any valgrind error or definitely-lost block fails the run.
#
# Scripts that test the shipped artefact itself are left out of the sanitizer run: they
# check static linking, the empty chroot, the OCI image and the packages, which a glibc
# sanitizer build cannot be (test_cli, test_image, test_packages; test_console tests only
# the test console). Each runner ends with "N passed, N failed"; the last line is the total.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SKIP_ASAN="test_cli.py test_image.py test_packages.py test_console.py test_demo.py test_install.py test_readme.py"
VALGRIND_SET="${VALGRIND_SET:-test_tokens.py test_reload.py test_upstream_proxy.py}"

what=${1:-all}
case $what in all | asan | valgrind) ;; *) echo "usage: $0 [all|asan|valgrind]" >&2; exit 2 ;; esac

total_pass=0
total_fail=0

# Add one runner's closing "N passed, N failed" line to the totals (a runner that printed
# none counts as one failure).
tally_out() {
	local name=$1 out=$2 rc=$3 line p f
	line=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
	if [ -z "$line" ]; then
		echo "check.sh: $name printed no summary (exit $rc)"
		total_fail=$((total_fail + 1))
		return
	fi
	p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "check.sh: $name exited $rc"
		total_fail=$((total_fail + 1))
	fi
}

# Count sanitizer/valgrind reports that appeared in a folder; each report file is a failure.
reports() {
	local dir=$1 label=$2 n=0 fpath
	for fpath in "$dir"/*; do
		[ -e "$fpath" ] || continue
		# valgrind -q writes a log only when it has something to say (an error or a
		# definitely lost block): an empty log is a clean run.
		if [ "$label" = valgrind ]; then
			[ -s "$fpath" ] || continue
		fi
		echo "---- $label report: $fpath"
		head -n 60 "$fpath"
		n=$((n + 1))
	done
	echo "$label-reports: $((n == 0 ? 1 : 0)) passed, $n failed"
	[ "$n" -eq 0 ] && total_pass=$((total_pass + 1))
	total_fail=$((total_fail + n))
}

echo "== build: dist (static) and build/asan/relaypro (glibc, ASan + UBSan)"
./build.sh >/dev/null || { echo "build failed"; echo "total: 0 passed, 1 failed"; exit 1; }
make -s asan-relay || { echo "asan build failed"; echo "total: 0 passed, 1 failed"; exit 1; }

logs=$REPO/build/asan/logs
rm -rf "$logs"
mkdir -p "$logs"
[ "$what" = valgrind ] || for t in tests/integration/test_*.py; do
	case " $SKIP_ASAN " in *" $(basename "$t") "*) continue ;; esac
	echo "== asan: $t"
	out=$(mktemp)
	RELAYPRO_BIN=$REPO/build/asan/relaypro \
	ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:abort_on_error=0" \
	UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1" \
		timeout 1200 python3 "$t" 2>&1 | tee "$out"
	tally_out "asan $t" "$out" "${PIPESTATUS[0]}"
	rm -f "$out"
done
[ "$what" = valgrind ] || reports "$logs" sanitizer

if [ "$what" = asan ]; then
	echo "total: $total_pass passed, $total_fail failed"
	[ "$total_fail" -eq 0 ]
	exit
fi

command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
vlogs=$REPO/build/valgrind/logs
rm -rf "$vlogs"
mkdir -p "$vlogs"
wrapper=$REPO/build/valgrind/relaypro
cat >"$wrapper" <<EOF
#!/bin/sh
exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \\
    --trace-children=no --log-file=$vlogs/vg.%p.log $REPO/dist/relaypro-linux-amd64 "\$@"
EOF
chmod 755 "$wrapper"
for name in $VALGRIND_SET; do
	t=tests/integration/$name
	echo "== valgrind: $t"
	out=$(mktemp)
	RELAYPRO_BIN=$wrapper timeout 1800 python3 "$t" 2>&1 | tee "$out"
	tally_out "valgrind $t" "$out" "${PIPESTATUS[0]}"
	rm -f "$out"
done
reports "$vlogs" valgrind

echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

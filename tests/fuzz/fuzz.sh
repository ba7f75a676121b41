#!/usr/bin/env bash
# tests/fuzz/fuzz.sh SECONDS TARGET... — what `make fuzz` runs after building
# build/fuzz/fuzz-<target>: each target for SECONDS (libFuzzer -max_total_time), one at a
# time in one process, starting from the committed seeds tests/fuzz/corpus/<target>/.
# New inputs go to build/fuzz/work/<target>/ (never into the repository), crashes to
# build/fuzz/artifacts/<target>/, the whole log to build/fuzz/log/<target>.log.
# Prints one line per target and, last, "fuzz: N passed, N failed" (one per target); exits 1
# when any target failed.
# Extra libFuzzer flags: FUZZ_FLAGS="-max_len=8192 ..." in the environment.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:?usage: fuzz.sh SECONDS TARGET...}
shift
failed=0
for t in "$@"; do
	bin=build/fuzz/fuzz-$t
	work=build/fuzz/work/$t
	art=build/fuzz/artifacts/$t
	log=build/fuzz/log/$t.log
	mkdir -p "$work" "$art" "$(dirname "$log")"
	start=$(date +%s)
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$art/" \
	    ${FUZZ_FLAGS:-} "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)
	rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n1)
	if [ "$rc" -eq 0 ]; then
		res=ok
	else
		res="FAILED (exit $rc; $(ls "$art" | head -n3 | tr '\n' ' ')see $log)"
		failed=$((failed + 1))
	fi
	echo "fuzz $t: ${took}s, ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-no coverage line}, $res"
done
echo "fuzz: $(($# - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

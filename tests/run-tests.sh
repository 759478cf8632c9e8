#!/bin/bash
# Runs every test of `make check` and prints a closing "N passed, N failed" line.
#
#   unit tests          build/tests/test-*   and build/san/tests/test-* (ASan+UBSan)
#   integration tests   tests/integration/*.sh (each starts the services it needs)
#   fuzzers             build/fuzz/fuzz-* for FUZZ_SECONDS each, on tests/fuzz/corpus/NAME
#
# Exit status of a test: 0 pass, 77 skip (with a reason on stdout/stderr), other fail.
# (libFuzzer's own default error exit code is 77: fuzzers get -error_exitcode=1.)
# Logs go to build/test-logs/.  ONLY=regex restricts the run to matching names.
set -u
BUILD=${BUILD:-build}
SHARED=${SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
ONLY=${ONLY:-}
export BUILD SHARED
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

logdir=$BUILD/test-logs
rm -rf "$logdir"; mkdir -p "$logdir"
passed=0 failed=0 skipped=0 failures=()

run_one() { # name, command...
	local name=$1; shift
	[ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]] && return
	local log="$logdir/${name//\//_}.log" t0 t1 rc
	t0=$(date +%s%N)
	timeout -k 10 "$TEST_TIMEOUT" "$@" >"$log" 2>&1
	rc=$?
	t1=$(date +%s%N)
	local ms=$(((t1 - t0) / 1000000)) secs
	secs=$((ms / 1000)).$(((ms % 1000) / 100))
	case $rc in
	0) passed=$((passed + 1)); printf 'PASS  %-44s %6ss\n' "$name" "$secs" ;;
	77) skipped=$((skipped + 1)); printf 'SKIP  %-44s %s\n' "$name" "$(tail -n 1 "$log")" ;;
	*) failed=$((failed + 1)); failures+=("$name")
	   printf 'FAIL  %-44s %6ss (exit %d, log %s)\n' "$name" "$secs" "$rc" "$log"
	   tail -n 25 "$log" | sed 's/^/      | /' ;;
	esac
}

for t in "$BUILD"/tests/test-*; do
	[ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
done
for t in "$BUILD"/san/tests/test-*; do
	[ -x "$t" ] && run_one "asan/$(basename "$t")" "$t"
done
# Tests that change the machine itself (install packages or polkit files,
# add users) say "# sotto-test: system-wide" and take a lock, so that two
# checkouts tested at once on one machine do not trip over each other.
SYSTEM_LOCK=${SYSTEM_LOCK:-/tmp/sotto-system-tests.lock}
for t in tests/integration/*.sh; do
	[ -x "$t" ] || continue
	if grep -q '^# sotto-test: system-wide' "$t"; then
		run_one "integration/$(basename "$t" .sh)" flock "$SYSTEM_LOCK" "$t"
	else
		run_one "integration/$(basename "$t" .sh)" "$t"
	fi
done
for f in "$BUILD"/fuzz/fuzz-*; do
	[ -x "$f" ] || continue
	n=${f##*/fuzz-}
	corpus=tests/fuzz/corpus/$n
	work=$BUILD/fuzz-work/$n
	rm -rf "$work"; mkdir -p "$work"
	run_one "fuzz/$n" "$f" -error_exitcode=1 -timeout_exitcode=1 -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
		-timeout=10 -artifact_prefix="$work/" "$work" "$corpus"
done

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/bin/bash
# The service scenarios again with sottod built with ASan+UBSan (and
# LeakSanitizer at exit): basic use, cancellation and dying callers, worker
# crashes and the crash loop, hostile calls, reload, context exhaustion.
. "$(dirname "$0")/lib/common.sh"
[ -x "$BUILD/san/sottod" ] || skip "no ASan build of sottod"
export SOTTOD_UNDER_TEST="$BUILD/san/sottod"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}:abort_on_error=0
if [ "$(id -u)" = 0 ]; then
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	export SOTTOD_AS_USER=1
fi
here=$(dirname "$0")
failed=""
for t in service-basic cancel worker-crash hostile reload context-full sigterm config-reload fairness explain-hostile; do
	if "$here/$t.sh" > "$BUILD/test-work/asan-$t.log" 2>&1; then
		echo "ok   $t"
	else
		echo "FAIL $t"; tail -n 30 "$BUILD/test-work/asan-$t.log"; failed="$failed $t"
	fi
	grep -l "AddressSanitizer\|LeakSanitizer\|runtime error" "$BUILD"/test-work/$t/sottod.log 2>/dev/null &&
		{ grep -A20 "Sanitizer\|runtime error" "$BUILD"/test-work/$t/sottod.log | head -40; failed="$failed $t(sanitizer)"; }
done
[ -z "$failed" ] || fail "under ASan:$failed"
echo PASS

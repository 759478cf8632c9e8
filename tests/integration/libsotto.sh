#!/bin/bash
# libsotto's public API: blocking ask (statistics, repeatability, stop
# strings, named errors), chats, status, the sd-event form with a cancel
# from the text callback; exported symbols match the version script.
. "$(dirname "$0")/lib/common.sh"
svc_setup libsotto
svc_bus session
svc_start_sottod $(svc_model_args 2000)
"$BUILD/tests/sotto-test-lib" "$BUS_ADDRESS" || fail "libsotto API checks"
# Only the versioned sotto_* functions are exported, under soname libsotto.so.1.
objdump -p "$BUILD/libsotto.so.1" | grep -q 'SONAME *libsotto.so.1' || fail "soname"
exported=$(nm -D --defined-only "$BUILD/libsotto.so.1" | awk '$2 == "T" { print $3 }' | sort)
listed=$(grep -o 'sotto_[a-z_]*' "$ROOT/client-lib/libsotto.sym" | sort)
[ "$(echo "$exported" | sed 's/@.*//')" = "$listed" ] || fail "exports differ from libsotto.sym: $exported"
nm -D --defined-only "$BUILD/libsotto.so.1" | grep -q 'sotto_ask@@LIBSOTTO_1' || fail "no LIBSOTTO_1 version"
svc_stop_sottod
echo PASS

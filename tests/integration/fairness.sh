#!/bin/bash
# Fair scheduling: one caller with 12 requests queued does not make another
# caller wait behind all of them.  With one generation slot, the second
# caller's single request waits for at most about one of the first caller's
# (admission goes round robin over callers, not first come first served).
. "$(dirname "$0")/lib/common.sh"
svc_setup fairness
svc_bus session
svc_start_sottod --model "$(svc_fake_model 4000 4096 0)" --worker "$BUILD/tests/sotto-worker-fake" --max-active 1
TC="$BUILD/tests/sotto-test-client"
t0=$(date +%s%N)
"$TC" "$BUS_ADDRESS" burst 12 25 > "$SVC_DIR/burst" 2>&1 &
burst=$!
sleep 0.15
json=$("$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens 25 --temperature 0 me too) || fail "second caller"
t1=$(date +%s%N)
wait $burst || fail "burst: $(cat "$SVC_DIR/burst")"
t2=$(date +%s%N)
q=$(echo "$json" | grep -o '"queue-usec":[0-9]*' | cut -d: -f2)
total=$(echo "$json" | grep -o '"total-usec":[0-9]*' | cut -d: -f2)
one=$(( total - q ))
note "second caller queued $q us behind a 12-request burst (one request takes about $one us; the burst took $(( (t2 - t0) / 1000 )) us)"
[ "$q" -lt $(( 3 * one )) ] || fail "the second caller waited $q us, more than 3 requests' time ($one us each)"
svc_stop_sottod
echo PASS

#!/bin/bash
# sd_notify and SIGTERM.  Under a notify socket sottod reports READY=1 once
# the worker has loaded the model, and STATUS= lines.  On SIGTERM, a queued
# request and any new call fail at once with ShuttingDown, a short running
# answer completes, a long one is cancelled with ShuttingDown after the
# 5-second drain; sottod exits 0 and nothing hangs.
. "$(dirname "$0")/lib/common.sh"
svc_setup sigterm
svc_bus session
TC="$BUILD/tests/sotto-test-client"
"$TC" x notify-listen "$SVC_DIR/notify" > "$SVC_DIR/notify.log" &
PIDS="$PIDS $!"
i=0; while ! [ -S "$SVC_DIR/notify" ]; do i=$((i+1)); [ $i -gt 100 ] && fail "no notify socket"; sleep 0.02; done
export NOTIFY_SOCKET="$SVC_DIR/notify"
svc_start_sottod --model "$(svc_fake_model 20000 4096 0)" --worker "$BUILD/tests/sotto-worker-fake" --max-active 2
unset NOTIFY_SOCKET
i=0; while ! grep -q 'READY=1' "$SVC_DIR/notify.log"; do i=$((i+1)); [ $i -gt 100 ] && fail "no READY=1: $(cat "$SVC_DIR/notify.log")"; sleep 0.02; done
note "notify: $(tr '\n' '|' < "$SVC_DIR/notify.log")"

A() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 1000 long one > "$SVC_DIR/long" 2> "$SVC_DIR/long.err" &
long=$!
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 60 short one > "$SVC_DIR/short" 2> "$SVC_DIR/short.err" &
short=$!
sleep 0.3
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 10 queued one > /dev/null 2> "$SVC_DIR/queued.err" &
queued=$!
sleep 0.2
t0=$(date +%s%N)
kill -TERM "$SOTTOD_PID"
rc=0; wait $queued || rc=$?
grep -q ShuttingDown "$SVC_DIR/queued.err" || fail "queued request: exit $rc, $(cat "$SVC_DIR/queued.err")"
rc=0; A ask hello > /dev/null 2> "$SVC_DIR/new.err" || rc=$?
grep -q ShuttingDown "$SVC_DIR/new.err" || fail "new call after SIGTERM: $(cat "$SVC_DIR/new.err")"
wait $short || fail "the short answer did not complete: $(cat "$SVC_DIR/short.err")"
rc=0; wait $long || rc=$?
t1=$(date +%s%N)
grep -q ShuttingDown "$SVC_DIR/long.err" || fail "long answer: exit $rc, $(cat "$SVC_DIR/long.err")"
ms=$(( (t1 - t0) / 1000000 ))
note "long answer cancelled $ms ms after SIGTERM (drain 5 s)"
[ $ms -ge 4500 ] && [ $ms -lt 8000 ] || fail "drain took $ms ms"
i=0; while kill -0 "$SOTTOD_PID" 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && fail "sottod still running"; sleep 0.05; done
wait "$SOTTOD_PID" || fail "sottod exit status"
grep -q 'STOPPING=1' "$SVC_DIR/notify.log" || fail "no STOPPING=1"
echo PASS

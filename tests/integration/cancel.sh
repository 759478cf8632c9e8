#!/bin/bash
# Cancellation: Ctrl-C in `sotto ask` (the library closes its pipe) and a
# caller SIGKILLed mid-stream.  Generation stops within one decoding step,
# measured by sottod ("cancel-max-extra-tokens": tokens the worker finished
# after the cancel was decided), and another caller is unaffected.
. "$(dirname "$0")/lib/common.sh"
svc_setup cancel
svc_bus session
svc_start_sottod --model "$(svc_fake_model 20000 4096 0)" --worker "$BUILD/tests/sotto-worker-fake"
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }

# A bystander with a long answer running the whole time.
S ask --max-tokens 150 --temperature 0 I am the bystander > "$SVC_DIR/by" 2> "$SVC_DIR/by.err" &
by=$!

wait_text() { local i=0; while ! [ -s "$1" ]; do i=$((i+1)); [ $i -gt 300 ] && fail "no text in $1"; sleep 0.01; done; }

# 1. Ctrl-C.
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 1000 Tell me a long story > "$SVC_DIR/c1" 2> "$SVC_DIR/c1.err" &
c1=$!
wait_text "$SVC_DIR/c1"
sleep 0.1
kill -INT $c1
rc=0; wait $c1 || rc=$?
[ $rc = 130 ] || fail "Ctrl-C: exit $rc, want 130 ($(cat "$SVC_DIR/c1.err"))"
sleep 0.1
extra=$(svc_stat cancel-max-extra-tokens); usec=$(svc_stat cancel-max-usec)
note "Ctrl-C: stopped $extra token(s) and $usec us after the cancel"
[ "$extra" -le 1 ] || fail "generation went on for $extra tokens after Ctrl-C"

# 2. The caller killed outright.
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 1000 Another long story > "$SVC_DIR/c2" 2>/dev/null &
c2=$!
wait_text "$SVC_DIR/c2"
sleep 0.1
cancelled0=$(svc_stat cancelled)
kill -9 $c2; wait $c2 2>/dev/null || true
i=0; while [ "$(svc_stat cancelled)" = "$cancelled0" ]; do i=$((i+1)); [ $i -gt 100 ] && fail "the killed caller's request was not cancelled"; sleep 0.01; done
extra=$(svc_stat cancel-max-extra-tokens); usec=$(svc_stat cancel-max-usec)
note "killed caller: cancelled within $i polls; worst case so far $extra token(s), $usec us"
[ "$extra" -le 1 ] || fail "generation went on for $extra tokens after the caller died"
[ "$(svc_stat completed)" -ge 0 ]
active=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service ActiveRequests)
[ "$active" = "u 1" ] || fail "active requests $active, want only the bystander"

# 3. A chat held by a client that dies is closed.
"$BUILD/tests/sotto-test-client" "$BUS_ADDRESS" hold-chat > "$SVC_DIR/chat" &
hc=$!
wait_text "$SVC_DIR/chat"
[ "$(svc_stat chats-open)" = 1 ] || fail "chat not open"
kill -9 $hc; wait $hc 2>/dev/null || true
i=0; while [ "$(svc_stat chats-open)" != 0 ]; do i=$((i+1)); [ $i -gt 100 ] && fail "chat not closed after its owner died"; sleep 0.01; done

rc=0; wait $by || rc=$?
[ $rc = 0 ] || fail "the bystander failed: $(cat "$SVC_DIR/by.err")"
[ "$(wc -c < "$SVC_DIR/by")" -gt 100 ] || fail "the bystander's answer is short: $(cat "$SVC_DIR/by")"
svc_stop_sottod
echo PASS

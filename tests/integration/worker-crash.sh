#!/bin/bash
# The worker SIGKILLed mid-request: that request fails with WorkerFailed
# within 1 s, sottod stays up, a new worker serves the next request.  Five
# crashes within a minute: no more restarts, State "failed" with the reason,
# requests get ModelUnavailable at once.
. "$(dirname "$0")/lib/common.sh"
svc_setup worker-crash
svc_bus session
# The test double: 20 ms per token, so a request is surely in flight.
svc_start_sottod --model "$(svc_fake_model 20000 4096 0)" --worker "$BUILD/tests/sotto-worker-fake"
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }

wp=$(worker_pid); [ -n "$wp" ] || fail "no worker pid"
# A chat whose context lives in that worker.
mkfifo "$SVC_DIR/go"
"$BUILD/tests/sotto-test-client" "$BUS_ADDRESS" chat-probe < "$SVC_DIR/go" > "$SVC_DIR/chat" 2>&1 &
probe=$!
exec 7>"$SVC_DIR/go"
i=0; while ! grep -q ready "$SVC_DIR/chat"; do i=$((i+1)); [ $i -gt 200 ] && fail "chat: $(cat "$SVC_DIR/chat")"; sleep 0.05; done
S ask --max-tokens 400 Once upon a time > "$SVC_DIR/out1" 2> "$SVC_DIR/err1" &
cli=$!
# Wait for text to flow, then kill the worker.
i=0; while ! [ -s "$SVC_DIR/out1" ]; do i=$((i+1)); [ $i -gt 200 ] && fail "no text"; sleep 0.01; done
t0=$(date +%s%N)
kill -9 "$wp"
rc=0; wait $cli || rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
grep -q "org.sotto.Sotto1.Error.WorkerFailed" "$SVC_DIR/err1" || fail "want WorkerFailed, got: $(cat "$SVC_DIR/err1")"
[ $rc = 6 ] || fail "sotto exit $rc, want 6"
[ $ms -lt 1000 ] || fail "WorkerFailed after $ms ms (limit 1000)"
note "WorkerFailed $ms ms after SIGKILL: $(cat "$SVC_DIR/err1")"
kill -0 "$SOTTOD_PID" || fail "sottod died with its worker"
svc_wait_ready 10
out=$(S ask --max-tokens 5 --temperature 0 again) || fail "the next request failed"
[ -n "$out" ] || fail "empty answer after restart"
new=$(worker_pid); [ "$new" != "$wp" ] || fail "same worker pid"
note "restarted worker $new answered"
# The chat's context died with the worker: its next turn says so.
echo go >&7
wait $probe || true
grep -q "org.sotto.Sotto1.Error.WorkerFailed" "$SVC_DIR/chat" || fail "chat after the crash: $(cat "$SVC_DIR/chat")"
note "chat after the crash: $(tail -n 1 "$SVC_DIR/chat")"

# Crash loop: 1 crash so far; four more within the minute stop the restarts.
for n in 2 3 4 5; do
	svc_wait_ready 10
	kill -9 "$(worker_pid)"
	sleep 0.1
done
i=0
while :; do
	st=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service State)
	[ "$st" = 's "failed"' ] && break
	i=$((i+1)); [ $i -gt 100 ] && fail "state after 5 crashes: $st"
	sleep 0.05
done
reason=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service StateReason)
echo "$reason" | grep -q "crashed 5 times" || fail "reason: $reason"
note "state failed: $reason"
t0=$(date +%s%N)
rc=0; S ask hello > /dev/null 2> "$SVC_DIR/err2" || rc=$?
t1=$(date +%s%N)
grep -q ModelUnavailable "$SVC_DIR/err2" || fail "want ModelUnavailable: $(cat "$SVC_DIR/err2")"
note "ModelUnavailable after $(( (t1 - t0) / 1000000 )) ms (exit $rc)"
sleep 0.5
[ "$(svc_stat worker-starts)" = 5 ] || fail "worker-starts $(svc_stat worker-starts), want 5 (no 6th start)"
kill -0 "$SOTTOD_PID" || fail "sottod died"
svc_stop_sottod
echo PASS

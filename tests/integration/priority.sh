#!/bin/bash
# sotto-test: system-wide
# Priorities: a background application's long generation does not delay an
# interactive application's first token by more than one decoding step.
# The engine test double takes exactly STEP us per decoding step; times come
# from the daemon's statistics (time-to-first-token-usec), compared with the
# same request made when the service is idle.  Medians of 3.
# Then, with MaxActive = 2 and two background requests waiting, the
# interactive request takes the slot kept for interactive work at once
# (queue-usec under one step) and the background requests still finish.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/cgroup.sh"
svc_setup priority
trap 'svc_cleanup; cg_cleanup' EXIT
svc_bus session
cg_setup
STEP=40000
BG=app-test-org.example.Batch-1.scope
FG=app-test-org.example.Editor-1.scope
printf '[Daemon]\nMaxActive = 2\n[App org.example.Batch]\nPriority = background\n' > "$SVC_DIR/sotto.conf"
svc_start_sottod --config "$SVC_DIR/sotto.conf" --model "$(svc_fake_model $STEP 4096 0)" \
	--worker "$BUILD/tests/sotto-worker-fake"
ask() { # scope max-tokens
	cg_run "$1" "$SOTTO" --address "$BUS_ADDRESS" --json ask --temperature 0 --max-tokens "$2" "hello there"
}
jnum() { grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }
median() { sort -n | sed -n 2p; }

alone=$(for i in 1 2 3; do ask $FG 3 | jnum time-to-first-token-usec; done | median)
with=$(for i in 1 2 3; do
	ask $BG 120 > /dev/null &
	bg=$!
	sleep 0.4 # the background request is generating
	ask $FG 3 | jnum time-to-first-token-usec
	wait $bg
done | median)
delay=$(( with - alone ))
note "interactive first token: $alone us idle, $with us beside a background generation: +$delay us (one step: $STEP us)"
[ "$delay" -le $(( STEP + STEP / 4 )) ] || fail "the background generation delayed the first token by $delay us, more than one step ($STEP us)"

# Two background requests fill what they may (one slot); the interactive
# request takes the other at once, although it came last.
ask $BG 60 > "$SVC_DIR/bg1" &
b1=$!
ask $BG 60 > "$SVC_DIR/bg2" &
b2=$!
sleep 0.4
json=$(ask $FG 3)
q=$(echo "$json" | jnum queue-usec)
note "interactive request queued $q us behind two background requests"
[ "$q" -lt "$STEP" ] || fail "the interactive request waited $q us for a slot"
wait $b1 || fail "background 1"
wait $b2 || fail "background 2"
q2=$(jnum queue-usec < "$SVC_DIR/bg2"); q1=$(jnum queue-usec < "$SVC_DIR/bg1")
note "background requests queued $q1 and $q2 us (one waits for the other's slot)"
svc_stop_sottod
echo PASS

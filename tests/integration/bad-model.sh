#!/bin/bash
# A model file the worker cannot load: sottod does not die or spin; after
# five failed starts it reports "failed" with the reason, and callers get
# ModelUnavailable at once.
. "$(dirname "$0")/lib/common.sh"
svc_setup bad-model
svc_bus session
svc_user
echo "this is not a GGUF file" > "$SVC_DIR/bad.gguf"
chmod 644 "$SVC_DIR/bad.gguf"
worker=$BUILD/sotto-worker; [ -x "$worker" ] || worker=$BUILD/tests/sotto-worker-fake
"$SOTTOD" --address "$BUS_ADDRESS" --user "$SVC_USER" --model "$SVC_DIR/bad.gguf" --worker "$worker" >> "$SVC_DIR/sottod.log" 2>&1 &
SOTTOD_PID=$!
PIDS="$SOTTOD_PID $PIDS"
i=0
until [ "$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service State 2>/dev/null)" = 's "failed"' ]; do
	i=$((i+1)); [ $i -gt 200 ] && fail "not failed after 10 s"
	kill -0 "$SOTTOD_PID" || fail "sottod died"
	sleep 0.05
done
reason=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service StateReason)
echo "$reason" | grep -q "before it had loaded the model" || fail "reason: $reason"
rc=0; "$SOTTO" --address "$BUS_ADDRESS" ask hello 2> "$SVC_DIR/err" || rc=$?
[ $rc = 6 ] && grep -q ModelUnavailable "$SVC_DIR/err" || fail "ask: exit $rc $(cat "$SVC_DIR/err")"
grep -q "cannot load the model" "$SVC_DIR/sottod.log" || fail "the worker's message is not in the log"
note "$reason"
svc_stop_sottod
echo PASS

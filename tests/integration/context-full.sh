#!/bin/bash
# Context exhaustion under parallel load: prompts that do not fit get
# ContextFull at once, answers that reach the end of the context stop with
# stop-reason "context-full", a chat that fills up refuses the next turn with
# ContextFull and keeps working for shorter turns; nothing hangs or crashes.
. "$(dirname "$0")/lib/common.sh"
svc_setup context-full
svc_bus session
svc_start_sottod --model "$(svc_fake_model 1000 64 0)" --worker "$BUILD/tests/sotto-worker-fake" --max-active 4
long=$(printf 'x%.0s' $(seq 100))
pids=""
for i in 1 2 3 4 5 6; do
	"$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens 500 "$long" > "$SVC_DIR/full.$i" 2>/dev/null &
	pids="$pids $!"
	"$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens 500 "short prompt $i" > "$SVC_DIR/end.$i" 2>/dev/null &
	pids="$pids $!"
done
for p in $pids; do wait $p || true; done
for i in 1 2 3 4 5 6; do
	grep -q '"error":"org.sotto.Sotto1.Error.ContextFull"' "$SVC_DIR/full.$i" || fail "long prompt $i: $(cat "$SVC_DIR/full.$i")"
	grep -q '"stop-reason":"context-full"' "$SVC_DIR/end.$i" || fail "short prompt $i: $(cat "$SVC_DIR/end.$i")"
done
note "$(head -c 300 "$SVC_DIR/full.1")"
# A chat: turns until the context is full, then ContextFull, then a short turn still works.
printf '%s\n' "first turn here" "second turn here" "$long" "ok" | "$SOTTO" --address "$BUS_ADDRESS" --json chat \
	--max-tokens 8 > "$SVC_DIR/chat" 2>/dev/null || true
[ "$(grep -c '"text"' "$SVC_DIR/chat")" = 3 ] || fail "chat turns: $(cat "$SVC_DIR/chat")"
sed -n 3p "$SVC_DIR/chat" | grep -q ContextFull || fail "third turn: $(cat "$SVC_DIR/chat")"
sed -n 4p "$SVC_DIR/chat" | grep -q '"text"' || fail "the turn after ContextFull: $(cat "$SVC_DIR/chat")"
kill -0 "$SOTTOD_PID" || fail "sottod died"
svc_stop_sottod
echo PASS

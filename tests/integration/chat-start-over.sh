#!/bin/bash
# A chat turn that fails or is cancelled leaves no trace: the worker takes
# the session back to where the turn began.  On a sliding-window model
# (gemma3n) the ring cache keeps only window + 512 positions of the local
# layers, so after a turn of more than that the start is gone
# (engine_session_rewind: -ESTALE) and the chat starts over instead:
# ContextUsed 0, and the next turn is answered as in a new chat.  A short
# cancelled turn must still be rewound exactly.
. "$(dirname "$0")/lib/common.sh"
svc_setup chat-start-over
E="$BUILD/sotto-engine"
TC="$BUILD/tests/sotto-test-client"
[ -x "$BUILD/sotto-mkmodel" ] && [ -x "$E" ] && [ -x "$BUILD/sotto-worker" ] && [ -x "$TC" ] ||
	skip "sotto-mkmodel, sotto-engine, sotto-worker or the test client not built"
command -v jq >/dev/null || skip "jq is not installed"

M="$SVC_DIR/gemma3n-tiny.gguf"
svc_tiny_gemma3n 3
svc_bus session
svc_start_sottod --model "$M" --worker "$BUILD/sotto-worker" --threads 1 --context 2048
wpid=$(worker_pid)

A="Hello there, who are you?"
C="Tell me about the sea"
N=6
# A prompt past window + 512 positions of the ring (the generator writes a
# 512-token window): ~1300 tokens, checked with the model's own tokenizer.
LONG=$(for i in $(seq 1 190); do printf 'w%d ' "$i"; done)
n_long=$("$E" tokenize "$M" "$LONG" | wc -w)
note "long turn: $n_long tokens"
[ "$n_long" -gt 1100 ] && [ "$n_long" -lt 1900 ] || fail "the long turn has $n_long tokens, want 1100..1900"

field() { sed -n "s/^$1 //p" "$2"; }

# 1. A short cancelled turn: rewound to the end of turn A.
"$TC" "$BUS_ADDRESS" chat-cancel "$A" "Tell me a long story" "$C" $N > "$SVC_DIR/short" ||
	fail "chat-cancel (short): exit $?: $(cat "$SVC_DIR/short")"
note "short: $(tr '\n' ' ' < "$SVC_DIR/short")"
[ "$(field turn-b "$SVC_DIR/short")" = org.sotto.Sotto1.Error.Cancelled ] || fail "the short turn B was not cancelled"
ua=$(field used-after-a "$SVC_DIR/short")
[ "$ua" -gt 0 ] && [ "$(field used-after-b "$SVC_DIR/short")" = "$ua" ] ||
	fail "a cancelled short turn was not rewound to the end of turn A ($ua)"

# 2. A long cancelled turn: the chat starts over.
"$TC" "$BUS_ADDRESS" chat-cancel "$A" "$LONG" "$C" $N > "$SVC_DIR/long" ||
	fail "chat-cancel (long): exit $?: $(cat "$SVC_DIR/long")"
note "long: $(tr '\n' ' ' < "$SVC_DIR/long" | cut -c1-300)"
[ "$(field turn-b "$SVC_DIR/long")" = org.sotto.Sotto1.Error.Cancelled ] || fail "the long turn B was not cancelled"
[ "$(field used-after-b "$SVC_DIR/long")" = 0 ] || fail "after the long cancelled turn the chat did not start over"
[ "$(field turn-c "$SVC_DIR/long")" = ok ] || fail "turn C after the start-over failed"

# Turn C is then the first turn of a chat: as in a new chat, token for token.
printf '%s\n' "$C" | "$SOTTO" --address "$BUS_ADDRESS" --json chat --max-tokens $N --temperature 0 > "$SVC_DIR/fresh.json" ||
	fail "sotto chat: exit $?"
fresh=$(jq -j '.text' "$SVC_DIR/fresh.json" | tr '\n' ' ')
fresh_used=$(jq -r '.statistics["prompt-tokens"] + .statistics["generated-tokens"]' "$SVC_DIR/fresh.json")
[ "$(field answer-c "$SVC_DIR/long")" = "$fresh" ] ||
	fail "turn C after the start-over '$(field answer-c "$SVC_DIR/long")' differs from a new chat's '$fresh'"
[ "$(field used-after-c "$SVC_DIR/long")" = "$fresh_used" ] ||
	fail "turn C after the start-over used $(field used-after-c "$SVC_DIR/long") positions, a new chat $fresh_used"
# and in the short case turn C followed turn A
[ "$(field used-after-c "$SVC_DIR/short")" -gt "$fresh_used" ] || fail "turn C of the short case lost turn A"

[ "$(worker_pid)" = "$wpid" ] || fail "the worker was restarted"
kill -0 "$SOTTOD_PID" || fail "sottod died"
svc_stop_sottod
echo PASS

#!/bin/bash
# Continuous batching seen from the bus: 4 concurrent Asks that overlap
# (300 tokens each on stories260K) show batched steps in GetStatistics
# (decode-steps, batched-steps, batched-tokens, max-batch); with
# SOTTO_WORKER_BATCH=0 in the worker's environment they show none.  The
# temperature-0 answers are the same in both cases and equal the lone ones.
. "$(dirname "$0")/lib/common.sh"
svc_setup batching-stats
svc_bus session
MODEL="$SHARED/models/stories260K.gguf"
[ -f "$MODEL" ] || skip "no $MODEL (set SHARED to the golden data)"
[ -x "$BUILD/sotto-worker" ] || skip "no sotto-worker"
prompts=("Once upon a time" "The little dog" "Lily and Tom went" "One day, a cat")
N=300

run() { # tag: 4 concurrent asks, then the counters
	local tag=$1 pids="" i
	for i in 0 1 2 3; do
		"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens $N --temperature 0 "${prompts[$i]}" \
			> "$SVC_DIR/$tag.$i" 2> "$SVC_DIR/$tag.$i.err" &
		pids="$pids $!"
	done
	i=0
	for p in $pids; do wait $p || fail "$tag: client $i failed: $(cat "$SVC_DIR/$tag.$i.err")"; i=$((i+1)); done
	for k in decode-steps batched-steps batched-tokens max-batch tokens-generated; do
		eval "${tag}_${k//-/_}=$(svc_stat $k)"
	done
}

# ---- batching on (the default) ----
svc_start_sottod --model "$MODEL" --worker "$BUILD/sotto-worker" --threads 1 --max-active 8
for i in 0 1 2 3; do
	"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens $N --temperature 0 "${prompts[$i]}" > "$SVC_DIR/alone.$i" ||
		fail "alone $i"
done
[ "$(svc_stat batched-steps)" = 0 ] || fail "batched steps with one request at a time: $(svc_stat batched-steps)"
alone_steps=$(svc_stat decode-steps)
[ "${alone_steps:-0}" -gt 0 ] || fail "no decode steps counted for 4 lone requests"
run on
svc_stop_sottod
on_batched=$((on_batched_steps))
[ "$on_batched" -gt 0 ] || fail "4 overlapping requests, no batched step (decode steps $on_decode_steps)"
[ "$on_max_batch" -ge 2 ] && [ "$on_max_batch" -le 4 ] || fail "max-batch $on_max_batch with 4 requests"
[ "$on_batched_tokens" -ge $((2 * on_batched)) ] || fail "batched-tokens $on_batched_tokens for $on_batched steps"
# Batched passes decode several tokens each: fewer passes than alone.
together_steps=$((on_decode_steps - alone_steps))
[ "$together_steps" -lt "$alone_steps" ] ||
	fail "together $together_steps decoding passes, alone $alone_steps: batching saved none"
note "batching on: $together_steps decoding passes for 4 requests (alone: $alone_steps), $on_batched batched," \
	"mean batch $(awk "BEGIN {printf \"%.2f\", $on_batched_tokens / $on_batched}"), max $on_max_batch"

# ---- batching off ----
SOTTO_WORKER_BATCH=0 svc_start_sottod --model "$MODEL" --worker "$BUILD/sotto-worker" --threads 1 --max-active 8
run off
svc_stop_sottod
[ "$off_batched_steps" = 0 ] || fail "SOTTO_WORKER_BATCH=0 and still $off_batched_steps batched steps"
[ "$off_max_batch" = 0 ] || fail "SOTTO_WORKER_BATCH=0, max-batch $off_max_batch"
[ "$off_decode_steps" -gt 0 ] || fail "no decode steps counted without batching"
note "batching off: $off_decode_steps decoding passes, none batched"

for i in 0 1 2 3; do
	cmp -s "$SVC_DIR/alone.$i" "$SVC_DIR/on.$i" || fail "client $i: batched answer differs from the lone one"
	cmp -s "$SVC_DIR/on.$i" "$SVC_DIR/off.$i" || fail "client $i: answers differ with and without batching"
done
note "the 4 answers are the same alone, batched and unbatched"
echo PASS

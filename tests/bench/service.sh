#!/bin/bash
# `make bench`, the service part, on the Llama-3.2-1B-shaped Q4_0 model that
# sotto-mkmodel writes (random weights, real size):
# - sottod ready (name owned, model mapped, worker ready) with the model in
#   the page cache: bound 1 s;
# - PSS of sottod + worker with 4 chat sessions that have each answered a
#   turn: bound model size + their KV caches + 150 MiB;
# - time to the first token inside the daemon vs the worker's prefill.
# (The first-token bound on stories260K is checked by
# tests/integration/service-figures.sh.)
. "$(dirname "$0")/../integration/lib/common.sh"
svc_setup bench-service
model=$BUILD/models/llama-1b-q4_0.gguf
if [ ! -f "$model" ]; then
	mkdir -p "$BUILD/models"
	"$BUILD/sotto-mkmodel" --preset llama-1b --type Q4_0 "$model" >&2 || fail "sotto-mkmodel"
fi
[ -x "$BUILD/sotto-worker" ] || skip "the engine worker is not built"
CTX=1024
svc_bus session
cat "$model" > /dev/null
svc_user
t0=$(date +%s%N)
"$SOTTOD" --address "$BUS_ADDRESS" --user "$SVC_USER" --model "$model" --context $CTX --threads 2 >>"$SVC_DIR/sottod.log" 2>&1 &
SOTTOD_PID=$!
PIDS="$SOTTOD_PID $PIDS"
while :; do
	st=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service State 2>/dev/null || true)
	[ "$st" = 's "ready"' ] && break
	kill -0 "$SOTTOD_PID" 2>/dev/null || fail "sottod exited"
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 30000 ] || fail "not ready after 30 s"
	sleep 0.01
done
t1=$(date +%s%N)
ready_ms=$(( (t1 - t0) / 1000000 ))
echo "bench: sottod ready in $ready_ms ms with $(basename "$model") ($(( $(stat -c %s "$model") / 1048576 )) MiB) in the page cache"

for i in 1 2 3 4; do
	"$BUILD/tests/sotto-test-client" "$BUS_ADDRESS" hold-chat "Chat number $i says hello" 4 > "$SVC_DIR/chat.$i" 2> "$SVC_DIR/chat.$i.err" &
	PIDS="$PIDS $!"
done
for i in 1 2 3 4; do
	n=0; while ! [ -s "$SVC_DIR/chat.$i" ]; do n=$((n+1)); [ $n -gt 6000 ] && fail "chat $i: $(cat "$SVC_DIR/chat.$i.err")"; sleep 0.05; done
done
pss() { awk '/^Pss:/ { print $2 }' /proc/$1/smaps_rollup; }
wp=$(worker_pid)
p_d=$(pss "$SOTTOD_PID"); p_w=$(pss "$wp")
size_kb=$(( $(stat -c %s "$model") / 1024 ))
# KV cache of one session, as the engine stores it (f32 K and V): layers x
# 2 x context x kv heads x head size x 4 bytes.
kv_kb=$(( 16 * 2 * CTX * 8 * 64 * 4 / 1024 ))
bound=$(( size_kb + 4 * kv_kb + 150 * 1024 ))
echo "bench: PSS with 4 chats: sottod $(( p_d / 1024 )) MiB + worker $(( p_w / 1024 )) MiB = $(( (p_d + p_w) / 1024 )) MiB;" \
	"bound: model $(( size_kb / 1024 )) MiB + 4 x KV $(( kv_kb / 1024 )) MiB + 150 MiB = $(( bound / 1024 )) MiB"
json=$("$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens 4 --temperature 0 Once upon a time)
echo "bench: one ask: $(echo "$json" | grep -o '"statistics".*')"
svc_stop_sottod
[ $ready_ms -lt 1000 ] || fail "ready after $ready_ms ms (bound 1000)"
[ $(( p_d + p_w )) -le $bound ] || fail "PSS above the bound"
echo "bench: service bounds hold"

# Continuous batching (daemon/worker/worker-batch.c): aggregate tokens/s of
# 1, 2 and 4 concurrent Asks (32 tokens each, temperature 0), batching on
# and off (SOTTO_WORKER_BATCH=0 in the worker's environment); medians of 3,
# ratios from this one run (the machine may be busy).
NTOK=32
asks() { # n -> aggregate generated tokens/s of n concurrent asks
	local n=$1 i t0 t1 tok=0 g pids=""
	t0=$(date +%s%N)
	for i in $(seq 1 "$n"); do
		"$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens $NTOK --temperature 0 \
			"Story number $i: once upon a time" > "$SVC_DIR/ask.$i" 2>&1 &
		pids="$pids $!"
	done
	for i in $pids; do wait "$i" || true; done
	t1=$(date +%s%N)
	for i in $(seq 1 "$n"); do
		g=$(grep -o '"generated-tokens":[0-9]*' "$SVC_DIR/ask.$i" | cut -d: -f2)
		[ -n "$g" ] || fail "ask $i of $n: $(cat "$SVC_DIR/ask.$i")"
		tok=$((tok + g))
	done
	echo $(( tok * 1000000000000 / (t1 - t0) )) # milli-tokens/s
}
# On and off alternate, sottod restarted for each sample (ready in well
# under a second), so that the load of a busy machine falls on both alike.
declare -A tps
for k in 1 2 3; do
	for n in 1 2 4; do
		for b in 1 0; do
			SOTTO_WORKER_BATCH=$b svc_start_sottod --model "$model" --context $CTX --threads 2
			tps[$b.$n]="${tps[$b.$n]:-} $(asks $n)"
			svc_stop_sottod
		done
	done
done
med() { printf '%s\n' $1 | sort -n | sed -n 2p; }
for n in 1 2 4; do
	on=$(med "${tps[1.$n]}"); off=$(med "${tps[0.$n]}")
	echo "bench: $n concurrent asks: $(awk -v a="$on" 'BEGIN { printf "%.1f", a / 1000 }') tokens/s batched," \
		"$(awk -v a="$off" 'BEGIN { printf "%.1f", a / 1000 }') one by one" \
		"(x$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.2f", b ? a / b : 0 }'))"
done
echo "bench: $(grep 'continuous batching' "$SVC_DIR/sottod.log" | tail -n1)"

#!/bin/bash
# Figures of the service, printed and held to the issue's bounds:
# - ready time: sottod started -> name owned and the worker has mapped the
#   model (State "ready"); under 1 s with the model in the page cache;
# - first token: `sotto ask` started -> first byte on its stdout, against
#   `sotto-engine generate ... 1` run whole (load, prefill, one token), both
#   on one thread; best of 5 each (the machine is shared: the best run is the
#   one without interference); within 50 ms (real engine only);
# - memory: PSS of sottod + worker with 4 chat sessions open, against the
#   model's size + 150 MiB.
. "$(dirname "$0")/lib/common.sh"
svc_setup service-figures
svc_bus session
args=$(svc_model_args 2000)
model=$(echo "$args" | sed 's/^--model \([^ ]*\).*/\1/')
cat "$model" > /dev/null # into the page cache
t0=$(date +%s%N)
svc_start_sottod $args
t1=$(date +%s%N)
ready_ms=$(( (t1 - t0) / 1000000 ))
note "ready in $ready_ms ms (includes polling every 50 ms)"
[ $ready_ms -lt 1000 ] || fail "ready after $ready_ms ms"

# First token, seen by a caller: median of 5.
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
S ask --max-tokens 2 --temperature 0 warm up > /dev/null
firsts=""
for i in 1 2 3 4 5; do
	a=$(date +%s%N)
	S ask --max-tokens 64 --temperature 0 Once upon a time | head -c 1 > /dev/null
	b=$(date +%s%N)
	firsts="$firsts $(( (b - a) / 1000 ))"
done
first_us=$(echo $firsts | tr ' ' '\n' | sort -n | sed -n 1p)
first_med=$(echo $firsts | tr ' ' '\n' | sort -n | sed -n 3p)
stats=$(S --json ask --max-tokens 8 --temperature 0 Once upon a time)
ttft=$(echo "$stats" | grep -o '"time-to-first-token-usec":[0-9]*' | cut -d: -f2)
prompt=$(echo "$stats" | grep -o '"prompt-usec":[0-9]*' | cut -d: -f2)
note "first byte on a caller's stdout: best of 5 $first_us us, median $first_med us (process start, bus connection, call, prefill, first token)"
note "inside the daemon: time to first token $ttft us, of which prefill in the worker $prompt us"
if echo "$args" | grep -q stories260K && [ -x "$BUILD/sotto-engine" ]; then
	engs=""
	for i in 1 2 3 4 5; do
		a=$(date +%s%N)
		"$BUILD/sotto-engine" -t 1 generate "$model" "Once upon a time" 1 > /dev/null 2>&1
		b=$(date +%s%N)
		engs="$engs $(( (b - a) / 1000 ))"
	done
	eng_us=$(echo $engs | tr ' ' '\n' | sort -n | sed -n 1p)
	note "sotto-engine (1 thread) from its start to the end of prefill and one token: best of 5 $eng_us us"
	[ $(( first_us - eng_us )) -lt 50000 ] || fail "first token $first_us us is more than 50 ms over the engine's prefill ($eng_us us)"
fi

# PSS with 4 chats open.
TC="$BUILD/tests/sotto-test-client"
for i in 1 2 3 4; do
	"$TC" "$BUS_ADDRESS" hold-chat > "$SVC_DIR/chat.$i" &
	PIDS="$PIDS $!"
done
i=0; while [ "$(svc_stat chats-open)" != 4 ]; do i=$((i+1)); [ $i -gt 100 ] && fail "chats not open"; sleep 0.05; done
# A turn in each would need the holders to talk; one Ask per chat-sized context instead:
S ask --max-tokens 32 --temperature 0 fill > /dev/null
pss() { awk '/^Pss:/ { print $2 }' /proc/$1/smaps_rollup; }
wp=$(worker_pid)
p_d=$(pss "$SOTTOD_PID"); p_w=$(pss "$wp")
size_kb=$(( $(stat -c %s "$model") / 1024 ))
note "PSS: sottod $p_d KiB + worker $p_w KiB = $(( p_d + p_w )) KiB; model file $size_kb KiB"
[ $(( p_d + p_w )) -lt $(( size_kb + 150 * 1024 )) ] || fail "PSS above the model size + 150 MiB"
svc_stop_sottod
echo PASS

#!/bin/bash
# The derived weights (Whisper's legacy tensors copied aligned, the vision
# tower's F16 matrices in F32) live in one sealed memfd that the first
# worker builds and sottod hands to every later worker of the same files:
# - the worker restarted after SIGKILL maps the very same memfd (same inode
#   in /proc/PID/maps, "mapped the shared arena" in the log, sottod's
#   weights-handed counter) and answers the same: text, speech (the Whisper
#   tensors are in the memfd) and an image (the projector's input projection);
# - during a reload two workers run at once and the sum of PSS of sottod
#   and both workers holds the derived weights once: about one copy less
#   than with private copies (SOTTO_WORKER_SHARED_WEIGHTS=0);
# - every mapping of the memfd is read-only and shared.
. "$(dirname "$0")/lib/common.sh"
svc_setup weights-shared
svc_bus session
MODEL="$SHARED/golden/gemma3-f32.gguf"
[ -f "$MODEL" ] || skip "no $MODEL (set SHARED to the golden data)"
[ -x "$BUILD/sotto-worker" ] || skip "no sotto-worker"
W="$SVC_DIR"
A="--address $BUS_ADDRESS"
"$BUILD/sotto-mkwhisper" --shape tiny --type f16 --seed 1 -o "$W/tiny.bin" > /dev/null || fail "sotto-mkwhisper"
"$BUILD/sotto-mkmmproj" --preset gemma3-siglip --type F16 --layers 1 --proj-dim 64 "$W/siglip1.gguf" > /dev/null ||
	fail "sotto-mkmmproj"
chmod 644 "$W/tiny.bin" "$W/siglip1.gguf"
command -v espeak-ng > /dev/null && espeak-ng -w "$W/speech.wav" "the quick brown fox" 2> /dev/null || true

svc_start_sottod --model "$MODEL" --mmproj "$W/siglip1.gguf" --whisper-model "$W/tiny.bin" \
	--worker "$BUILD/sotto-worker" --threads 2 --context 512

# The inode of the memfd a worker maps, and the MiB of it.
memfd_of() { grep 'memfd:sotto-weights' "/proc/$1/maps" | awk '{print $5}' | sort -u; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
memfd_pss_kb() { # PSS of the memfd's mappings in process $1
	awk '/^[0-9a-f]+-[0-9a-f]+ / {m = ($0 ~ /memfd:sotto-weights/)} m && /^Pss:/ {s += $2} END {print s + 0}' \
		"/proc/$1/smaps"
}

w1=$(worker_pid); [ -n "$w1" ] || fail "no worker pid"
grep -q "built a shared arena" "$W/sottod.log" || fail "the first worker built no shared arena"
ino1=$(memfd_of "$w1")
[ -n "$ino1" ] || fail "worker $w1 maps no sotto-weights memfd: $(grep -c . /proc/$w1/maps) mappings"
# Read-only and shared in the worker: no writable mapping of it.
grep 'memfd:sotto-weights' "/proc/$w1/maps" | awk '{print $2}' | grep -qv '^r--s' &&
	fail "a mapping of the memfd is not read-only shared: $(grep 'memfd:sotto-weights' /proc/$w1/maps)"
size=$(svc_stat weights-shared-bytes)
[ "${size:-0}" -gt $((70 << 20)) ] || fail "sottod holds ${size:-0} bytes of derived weights, want > 70 MiB (Whisper tiny F16)"
note "worker $w1 built the derived weights: memfd inode $ino1, $((size >> 20)) MiB"

ask() { "$SOTTO" $A ask --temperature 0 --max-tokens 12 "Once upon a time"; }
ref=$(ask) || fail "ask"
if [ -s "$W/speech.wav" ]; then
	"$SOTTO" $A transcribe "$W/speech.wav" > "$W/t1" 2> "$W/t1.err" || fail "transcribe: $(cat "$W/t1.err")"
fi
# The vision tower's converted input projection is in the memfd too.
if command -v convert > /dev/null; then
	convert -size 64x48 xc:'#f0f0f0' -fill '#3060c0' -draw 'rectangle 0,0 64,8' "$W/img.png" || fail "convert"
	"$SOTTO" $A explain --temperature 0 --max-tokens 8 "$W/img.png" "what is it?" > "$W/x1" 2> "$W/x1.err" ||
		fail "explain: $(cat "$W/x1.err")"
fi

# ---- a restart after SIGKILL maps the same memfd ----
kill -9 "$w1"
i=0; while w2=$(worker_pid); [ -z "$w2" ] || [ "$w2" = "$w1" ] || [ "$w2" = 0 ]; do
	i=$((i+1)); [ $i -gt 200 ] && fail "no new worker"; sleep 0.05
done
svc_wait_ready 20
ino2=$(memfd_of "$w2")
[ "$ino2" = "$ino1" ] || fail "the restarted worker maps memfd '$ino2', the first one mapped '$ino1'"
grep -q "mapped the shared arena" "$W/sottod.log" || fail "the restarted worker did not map the shared arena"
[ "$(svc_stat weights-handed)" = 1 ] || fail "weights-handed: $(svc_stat weights-handed)"
[ "$(svc_stat weights-builds)" = 1 ] || fail "weights-builds: $(svc_stat weights-builds) (rebuilt?)"
[ "$(ask)" = "$ref" ] || fail "the restarted worker answers differently"
if [ -s "$W/speech.wav" ]; then
	"$SOTTO" $A transcribe "$W/speech.wav" > "$W/t2" || fail "transcribe after the restart"
	cmp -s "$W/t1" "$W/t2" || fail "transcription differs after the restart: '$(cat "$W/t1")' vs '$(cat "$W/t2")'"
	note "the same transcription from the mapped Whisper weights"
fi
if [ -s "$W/x1" ]; then
	"$SOTTO" $A explain --temperature 0 --max-tokens 8 "$W/img.png" "what is it?" > "$W/x2" || fail "explain after the restart"
	cmp -s "$W/x1" "$W/x2" || fail "image answer differs after the restart: '$(cat "$W/x1")' vs '$(cat "$W/x2")'"
	note "the same image answer from the mapped vision weights"
fi
note "restarted worker $w2 maps the same memfd (inode $ino2) and answers the same"

# ---- two workers at once (a reload while a chat holds the old one) ----
# The sum of PSS of sottod and both workers, the memfd counted at its full
# size once (its pages are in no PSS while no worker has touched them), with
# the shared arena and then with private copies (SOTTO_WORKER_SHARED_WEIGHTS=0).
two_workers() { # -> "total_kB memfd_kB"
	local old new probe
	old=$(worker_pid)
	rm -f "$W/go" "$W/chat"; mkfifo "$W/go"
	"$BUILD/tests/sotto-test-client" "$BUS_ADDRESS" chat-probe < "$W/go" > "$W/chat" 2>&1 &
	probe=$!
	exec 7>"$W/go"
	i=0; while ! grep -q ready "$W/chat"; do i=$((i+1)); [ $i -gt 400 ] && fail "chat: $(cat "$W/chat")"; sleep 0.05; done
	kill -HUP "$SOTTOD_PID"
	i=0; while new=$(worker_pid); [ -z "$new" ] || [ "$new" = "$old" ] || [ "$new" = 0 ]; do
		i=$((i+1)); [ $i -gt 400 ] && fail "no new worker after SIGHUP"; sleep 0.05
	done
	svc_wait_ready 30
	kill -0 "$old" 2>/dev/null || fail "the old worker left while its chat was open"
	local total=0 memfd=0 size
	for p in "$SOTTOD_PID" "$old" "$new"; do
		total=$((total + $(pss_kb "$p") - $(memfd_pss_kb "$p")))
	done
	size=$(svc_stat weights-shared-bytes)
	memfd=$(( ${size:-0} >> 10 ))
	if [ "$memfd" -gt 0 ]; then
		[ "$(memfd_of "$new")" = "$(memfd_of "$old")" ] || fail "the two workers map different memfds"
	fi
	echo go >&7
	exec 7>&-
	wait $probe || true
	echo "$((total + memfd)) $memfd"
}
# Both measured from a fresh sottod with the same work done (encoder and
# decoder scratch of the requests above would weigh in otherwise).
svc_stop_sottod
svc_start_sottod --model "$MODEL" --mmproj "$W/siglip1.gguf" --whisper-model "$W/tiny.bin" \
	--worker "$BUILD/sotto-worker" --threads 2 --context 512
set -- $(two_workers)
shared_total=$1 arena_kb=$2
[ "$arena_kb" -gt 0 ] || fail "no shared memfd during the reload"
svc_stop_sottod
SOTTO_WORKER_SHARED_WEIGHTS=0 svc_start_sottod --model "$MODEL" --mmproj "$W/siglip1.gguf" \
	--whisper-model "$W/tiny.bin" --worker "$BUILD/sotto-worker" --threads 2 --context 512
[ -z "$(memfd_of "$(worker_pid)")" ] || fail "SOTTO_WORKER_SHARED_WEIGHTS=0 still maps the memfd"
set -- $(two_workers)
private_total=$1
note "PSS of sottod + 2 workers (reload in flight): private copies $((private_total >> 10)) MiB," \
	"shared memfd $((shared_total >> 10)) MiB (the memfd, $((arena_kb >> 10)) MiB, counted once)"
# One copy less: the difference is about the size of the derived weights.
saved=$((private_total - shared_total))
[ "$saved" -gt $((arena_kb * 3 / 4)) ] ||
	fail "sharing saved $saved kB with two workers, expected about one copy ($arena_kb kB)"
svc_stop_sottod
echo PASS

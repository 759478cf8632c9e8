#!/bin/bash
# `make bench`, speech (tests/bench/WHISPER.md explains the figures):
#  1. engine: real-time factor of a 30 s window with 100 decoded tokens,
#     (encode + 100 x per-token decode) / 30 s, at 2 threads, for random
#     Whisper models at the tiny, base and small shapes: sotto-whisper
#     --bench against whisper.cpp's whisper-bench -w 0 on the same file
#     (WHISPER_BENCH, default /work/ref/whisper.cpp-build/bin/whisper-bench;
#     skipped when absent);
#  2. service: `sotto transcribe` of a 10 s recording (compute of its
#     utterances over the audio length), and a live dictation through a
#     headless PipeWire: from the moment the audio that ends an utterance
#     reaches the recognizer to the Final signal (latency-usec) against the
#     recognition compute time (compute-usec); target: compute + <= 100 ms.
#
#   SPEECH_SHAPES ("tiny base small")  SPEECH_THREADS (2)  SPEECH_LIVE_SHAPES ("tiny base")
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHAPES=${SPEECH_SHAPES:-"tiny base small"}
LIVE=${SPEECH_LIVE_SHAPES:-"tiny base"}
T=${SPEECH_THREADS:-2}
REF=${WHISPER_BENCH:-/work/ref/whisper.cpp-build/bin/whisper-bench}
MODELS=$BUILD/models
mkdir -p "$MODELS"
command -v espeak-ng >/dev/null && command -v sox >/dev/null || { echo "speech bench: needs espeak-ng and sox" >&2; exit 0; }

W=$(mktemp -d /tmp/sotto-speech-bench.XXXXXX)
chmod 755 "$W"
espeak-ng -w "$W/a.wav" "Dictation turns speech into text while the user is still talking." >/dev/null
espeak-ng -w "$W/b.wav" "Each pause ends an utterance, and its final text arrives at once." >/dev/null
sox "$W/a.wav" "$W/b.wav" -r 16000 -c 1 -b 16 "$W/talk.wav" pad 0.3 1.0
sox "$W/a.wav" -r 16000 -c 1 -b 16 "$W/one.wav" pad 0.3 1.0
chmod 644 "$W"/*.wav
audio=$(soxi -D "$W/talk.wav")

model() { # shape
	local f=$MODELS/whisper-$1-f16.bin
	[ -s "$f" ] || "$BUILD/sotto-mkwhisper" --shape "$1" --type f16 --seed 1 -o "$f" >/dev/null || return 1
	chmod 644 "$f"
	echo "$f"
}

echo
echo "Whisper engine, $T threads: RTF of a 30 s window + 100 tokens (lower is faster)"
printf "%-6s %10s %12s %8s %12s %14s %8s\n" shape "sotto enc" "sotto dec" "RTF" "w.cpp enc" "w.cpp dec" "RTF"
for s in $SHAPES; do
	f=$(model "$s") || { echo "speech bench: sotto-mkwhisper failed" >&2; continue; }
	o=$("$BUILD/sotto-whisper" -t "$T" --bench "$f" "$W/one.wav" 2>&1 | tail -n1)
	enc=$(echo "$o" | sed -n 's/.*encode \([0-9.]*\) s.*/\1/p')
	dec=$(echo "$o" | sed -n 's/.*decode \([0-9.]*\) ms.*/\1/p')
	renc=-; rdec=-; rrtf=-
	if [ -x "$REF" ]; then
		ro=$("$REF" -m "$f" -t "$T" -w 0 2>&1)
		renc=$(echo "$ro" | sed -n 's/.*encode time = *\([0-9.]*\) ms.*/\1/p' | head -n1)
		rdec=$(echo "$ro" | sed -n 's/.*decode time = *[0-9.]* ms \/ *[0-9]* runs *( *\([0-9.]*\) ms per run).*/\1/p' | head -n1)
		[ -n "$renc" ] && [ -n "$rdec" ] && rrtf=$(awk -v e="$renc" -v d="$rdec" 'BEGIN { printf "%.3f", (e / 1000 + 100 * d / 1000) / 30 }')
		[ -n "$renc" ] && renc=$(awk -v e="$renc" 'BEGIN { printf "%.2f s", e / 1000 }')
		[ -n "$rdec" ] && rdec="$rdec ms/tok"
	fi
	rtf=$(awk -v e="$enc" -v d="$dec" 'BEGIN { printf "%.3f", (e + 100 * d / 1000) / 30 }')
	printf "%-6s %8s s %7s ms/tok %8s %12s %14s %8s\n" "$s" "$enc" "$dec" "$rtf" "${renc:--}" "${rdec:--}" "$rrtf"
done

# ---- the service ----
. "$ROOT/tests/integration/lib/common.sh"
. "$ROOT/tests/integration/lib/pipewire.sh"
set +e # common.sh sets -e; a bench reports what it can
fail() { echo "speech bench: $*" >&2; [ -n "${SVC_DIR:-}" ] && tail -n 5 "$SVC_DIR/sottod.log" >&2; exit 1; }
skip() { echo "speech bench: skipped: $*" >&2; exit 0; }
svc_setup bench-speech
trap 'kill $(jobs -p) 2>/dev/null; pw_stop "$W/pw"; svc_cleanup; rm -rf "$W"' EXIT
svc_bus session
pw=0
if command -v pipewire >/dev/null && [ -x "$BUILD/sotto-capture" ] && pw_start "$W/pw"; then pw=1; fi
echo
echo "Service, $T threads: transcribe of ${audio} s; dictation latency from the end of an utterance to Final"
printf "%-6s %10s %10s %12s %12s %12s\n" shape "RTF" "wall s" "Final comp" "Final lat" "overhead"
for s in $SHAPES; do
	f=$(model "$s") || continue
	svc_start_sottod $(svc_model_args 2000) --whisper-model "$f" --threads "$T" >/dev/null
	t0=$(date +%s%N)
	"$SOTTO" --address "$BUS_ADDRESS" --json transcribe "$W/talk.wav" > "$SVC_DIR/t-$s.json" || fail "transcribe ($s)"
	t1=$(date +%s%N)
	rtf=$(awk -v a="$audio" '/"type":"final"/ { match($0, /"compute-ms":[0-9.]+/); c += substr($0, RSTART + 13, RLENGTH - 13) } END { printf "%.3f", c / 1000 / a }' "$SVC_DIR/t-$s.json")
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	comp=-; lat=-; over=-
	if [ $pw = 1 ] && [[ " $LIVE " == *" $s "* ]]; then
		(pw__exec=exec pw_run "$W/pw" "$SOTTO" --address "$BUS_ADDRESS" --json dictate --once > "$SVC_DIR/d-$s.json" 2>&1) &
		D=$!
		pw__wait 15 bash -c "$(declare -f pw_run); pw_run '$W/pw' pw-link -l | grep -q sotto-capture" || fail "not linked"
		sleep 0.5
		pw_feed "$W/pw" "$W/one.wav" || echo "speech bench: pw-play reported an error" >&2
		i=0; while kill -0 $D 2>/dev/null && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.1; done
		kill $D 2>/dev/null
		line=$(grep '"type":"final"' "$SVC_DIR/d-$s.json" | head -n1)
		comp=$(echo "$line" | sed -n 's/.*"compute-ms":\([0-9.]*\).*/\1/p')
		lat=$(echo "$line" | sed -n 's/.*"latency-ms":\([0-9.]*\).*/\1/p')
		[ -n "$comp" ] && [ -n "$lat" ] && over=$(awk -v c="$comp" -v l="$lat" 'BEGIN { printf "%.1f ms", l - c }')
		[ -n "$comp" ] && comp=$(printf "%.0f ms" "$comp") && lat=$(printf "%.0f ms" "$lat")
	fi
	printf "%-6s %10s %10s %12s %12s %12s\n" "$s" "$rtf" "$wall" "${comp:--}" "${lat:--}" "$over"
	svc_stop_sottod
done
echo "(RTF: recognition compute of the utterances / audio length; overhead: latency - compute, target <= 100 ms)"

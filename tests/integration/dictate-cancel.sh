#!/bin/bash
# A transcription cancelled, or left by its caller, while the worker
# decodes a long utterance stops that decode instead of waiting for it:
#   the recording is a short sentence, a pause, then 27 s of noise the
#   voice-activity detector takes for one long utterance (a random model
#   decodes it to its token cap: seconds of compute, C2 below);
#   - run whole once: two Finals, the second's compute time is C2;
#   - cancelled at the first Final (the worker then starts on the long
#     utterance at once): Ended("cancelled", Cancelled) with no second
#     Final, less than C2/3 after the Cancel call;
#   - its caller leaves the bus at the first Final: a short transcription
#     started right after gets its Final in less than C2/2 (it would wait
#     the rest of the long decode otherwise);
#   - the daemon serves on: the same tokens as before, no worker crash.
. "$(dirname "$0")/lib/common.sh"
for t in espeak-ng sox; do command -v $t >/dev/null || skip "$t is not installed"; done
[ -x "$BUILD/sotto-worker" ] || skip "sotto-worker is not built"
[ -x "$BUILD/tests/dictate-cancel" ] || skip "tests/dictate-cancel is not built"
svc_setup dictate-cancel
W=$(mktemp -d /tmp/sotto-dictate-cancel.XXXXXX)
chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; svc_cleanup; rm -rf "$W"' EXIT

svc_tiny_whisper
svc_bus session
svc_start_sottod $(svc_model_args 2000) --whisper-model "$SVC_DIR/tiny.bin" --threads 2
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
C() { "$BUILD/tests/dictate-cancel" "$BUS_ADDRESS" "$@"; }
tokens() { sed -n 's/.*"type":"final".*"tokens":\[\([0-9,]*\)\].*/\1/p' "$1" | head -n1; }
field() { sed -n "s/.* $1 \([-0-9.]*\).*/\1/p"; }

espeak-ng -w "$W/s22.wav" "Please open the window."
sox "$W/s22.wav" -r 16000 -c 1 -b 16 "$W/short.wav" pad 0.3 1.0
sox -n -r 16000 -c 1 -b 16 "$W/noise.wav" synth 27 pinknoise vol 0.4
sox "$W/short.wav" "$W/noise.wav" "$W/long.wav" pad 0 1.0
chmod 644 "$W"/*.wav
S --json transcribe "$W/short.wav" > "$SVC_DIR/short.json" || fail "transcribe: $(cat "$SVC_DIR/short.json")"
good=$(tokens "$SVC_DIR/short.json")
[ -n "$good" ] || fail "no tokens: $(cat "$SVC_DIR/short.json")"

# ---- whole ----
C "$W/long.wav" none 0 > "$SVC_DIR/whole.txt" || fail "whole run: $(cat "$SVC_DIR/whole.txt")"
cat "$SVC_DIR/whole.txt"
[ "$(grep -c '^final' "$SVC_DIR/whole.txt")" = 2 ] || fail "want 2 Finals (sentence, noise): $(cat "$SVC_DIR/whole.txt")"
grep -q '^ended finished - ' "$SVC_DIR/whole.txt" || grep -q '^ended stopped - ' "$SVC_DIR/whole.txt" ||
	fail "whole run did not end cleanly"
c2=$(grep '^final 2 ' "$SVC_DIR/whole.txt" | field compute-ms)
note "the long utterance's decode: $c2 ms"
awk -v c="$c2" 'BEGIN { exit !(c >= 400) }' || fail "the long decode took only $c2 ms: too short to cancel midway"

# ---- cancelled during the long decode ----
C "$W/long.wav" cancel 1 > "$SVC_DIR/cancel.txt" || fail "cancelled run: $(cat "$SVC_DIR/cancel.txt")"
cat "$SVC_DIR/cancel.txt"
grep -q '^ended cancelled org.sotto.Sotto1.Error.Cancelled ' "$SVC_DIR/cancel.txt" ||
	fail "no Ended(cancelled, Cancelled): $(cat "$SVC_DIR/cancel.txt")"
! grep -q '^final 2 ' "$SVC_DIR/cancel.txt" || fail "a Final came after the Cancel"
d=$(grep '^ended ' "$SVC_DIR/cancel.txt" | field after-cancel-ms)
note "Cancel -> Ended: $d ms (the decode it stopped takes $c2 ms)"
awk -v d="$d" -v c="$c2" 'BEGIN { exit !(d >= 0 && d < c / 3) }' ||
	fail "Ended came $d ms after the Cancel: the decode ($c2 ms) was not stopped"
kill -0 "$SOTTOD_PID" 2>/dev/null || fail "sottod died"

# ---- the caller leaves during the long decode ----
C "$W/long.wav" leave 1 > "$SVC_DIR/leave.txt" || fail "leaving run: $(cat "$SVC_DIR/leave.txt")"
grep -q '^leaving' "$SVC_DIR/leave.txt" || fail "the caller did not get its first Final: $(cat "$SVC_DIR/leave.txt")"
t0=$(date +%s%N)
S --json transcribe "$W/short.wav" > "$SVC_DIR/after-leave.json" || fail "transcribe after the caller left"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(tokens "$SVC_DIR/after-leave.json")" = "$good" ] || fail "other tokens after the caller left"
note "a transcription right after the caller left: $ms ms"
awk -v d="$ms" -v c="$c2" 'BEGIN { exit !(d < c / 2) }' ||
	fail "the next transcription took $ms ms: it waited for the abandoned decode ($c2 ms)"

S --json transcribe "$W/short.wav" > "$SVC_DIR/again.json" || fail "transcribe at the end"
[ "$(tokens "$SVC_DIR/again.json")" = "$good" ] || fail "tokens changed"
stats=$(busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service GetStatistics)
echo "$stats" | grep -q '"worker-crashes" t 0' || fail "the worker crashed: $stats"
note "cancel and caller-left stop the running decode; the daemon serves on"

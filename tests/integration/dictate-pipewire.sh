#!/bin/bash
# Dictation end to end with a real headless PipeWire: a sentence spoken by
# espeak-ng is played into the virtual source test-mic while `sotto dictate
# --once --json` listens (sottod starts sotto-capture on the client's own
# PipeWire connection, the worker cuts and recognizes).  With a random-weight
# Whisper at the tiny shape the "text" is tokens of a random model, so token
# ids are compared, not English:
#   - `sotto transcribe` of the same WAV gives the same tokens as the
#     dictation's final (same utterance cut, same samples through PipeWire);
#   - partial hypotheses arrive while the speech is fed, each covering at
#     most 500 ms (+ one 100 ms chunk) more audio than the last, and the
#     gaps between them in wall-clock time are reported;
#   - the dictation ends by itself after the first utterance (--once).
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/pipewire.sh"
for t in pipewire wireplumber pw-play pw-cli espeak-ng sox setpriv; do
	command -v $t >/dev/null || skip "$t is not installed"
done
[ -x "$BUILD/sotto-capture" ] || skip "sotto-capture is not built (no libpipewire-0.3)"
[ -x "$BUILD/sotto-worker" ] || skip "sotto-worker is not built"
svc_setup dictate-pipewire
# PipeWire's runtime files live outside build/ (see capture-speech.sh).
W=$(mktemp -d /tmp/sotto-dictate.XXXXXX)
chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; pw_stop "$W/pw"; svc_cleanup; rm -rf "$W"' EXIT

svc_tiny_whisper
svc_bus session
svc_start_sottod $(svc_model_args 2000) --whisper-model "$SVC_DIR/tiny.bin" --threads 2
pw_start "$W/pw" || fail "headless PipeWire did not start"

espeak-ng -w "$W/speech-22k.wav" "The quick brown fox jumps over the lazy dog, then dictates a letter."
# Silence after the speech, so that the pause ends the utterance.
sox "$W/speech-22k.wav" -r 16000 -c 1 -b 16 "$W/speech.wav" pad 0.3 1.0
chmod 644 "$W"/*.wav

S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
S status | grep -q 'Capabilities: text audio' || fail "status: $(S status)"

S --json transcribe "$W/speech.wav" > "$SVC_DIR/transcribe.json" || fail "transcribe: exit $?"
grep -q '"type":"final"' "$SVC_DIR/transcribe.json" || fail "no final: $(cat "$SVC_DIR/transcribe.json")"
[ "$(grep -c '"type":"final"' "$SVC_DIR/transcribe.json")" = 1 ] || fail "one utterance expected: $(cat "$SVC_DIR/transcribe.json")"
tokens() { sed -n 's/.*"type":"final".*"tokens":\[\([0-9,]*\)\].*/\1/p' "$1" | head -n1; }
t_tokens=$(tokens "$SVC_DIR/transcribe.json")
[ -n "$t_tokens" ] || fail "transcription has no tokens: $(cat "$SVC_DIR/transcribe.json")"
note "transcribe: $(wc -l < "$SVC_DIR/transcribe.json") events, tokens $t_tokens"

# Each event line gets the wall-clock time it arrived (ms).
stamp() { while IFS= read -r l; do echo "$(date +%s%3N) $l"; done; }
(pw__exec=exec pw_run "$W/pw" "$SOTTO" --address "$BUS_ADDRESS" --json dictate --once 2>"$SVC_DIR/dictate.err" |
	stamp > "$SVC_DIR/dictate.json") &
DICT=$!
pw__wait 15 bash -c "$(declare -f pw_run); pw_run '$W/pw' pw-link -l | grep -q sotto-capture" ||
	fail "sotto-capture was not linked: $(cat "$SVC_DIR/dictate.err")"
sleep 0.5
feed_start=$(date +%s%3N)
pw_feed "$W/pw" "$W/speech.wav" || fail "could not play into test-mic"
feed_end=$(date +%s%3N)
i=0
while kill -0 $DICT 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 300 ] && fail "dictate --once did not end: $(cat "$SVC_DIR/dictate.json")"
	sleep 0.1
done
wait $DICT || fail "dictate: exit $? $(cat "$SVC_DIR/dictate.err")"
cat "$SVC_DIR/dictate.json" | cut -c1-200 | sed 's/^/# /'
grep -q '"type":"ended","reason":"finished"' "$SVC_DIR/dictate.json" || fail "no clean end"
[ "$(grep -c '"type":"final"' "$SVC_DIR/dictate.json")" = 1 ] || fail "one final expected"
d_tokens=$(sed 's/^[0-9]* //' "$SVC_DIR/dictate.json" > "$SVC_DIR/d.json"; tokens "$SVC_DIR/d.json")
[ "$d_tokens" = "$t_tokens" ] || fail "dictation tokens differ from transcription: $d_tokens vs $t_tokens"
note "dictate --once: the same $(echo "$t_tokens" | tr , '\n' | wc -l) tokens as transcribe"

# Partials: audio covered grows by at most 500 ms (+ one 100 ms chunk of
# the capture) each time; wall-clock gaps between them reported.
awk -v fs="$feed_start" -v fe="$feed_end" '
	/"type":"partial"/ {
		match($0, /"end":[0-9.]+/); e = substr($0, RSTART + 6, RLENGTH - 6) + 0
		n++; if (n > 1) { d = e - last; if (d > maxd) maxd = d; g = $1 - lastt; if (g > maxg) maxg = g }
		last = e; lastt = $1; if (n == 1) first = $1
	}
	/"type":"final"/ { fin = $1; match($0, /"compute-ms":[0-9.]+/); comp = substr($0, RSTART + 13, RLENGTH - 13) }
	END {
		printf "partials %d, largest audio step %.3f s, largest wall gap %d ms, first partial %d ms after the feed started, final %d ms after the feed ended (its compute %.0f ms)\n", n, maxd, maxg, first - fs, fin - fe, comp
		exit !(n >= 3 && maxd <= 0.6)
	}' "$SVC_DIR/dictate.json" > "$SVC_DIR/partials" && ok=1 || ok=0
note "$(cat "$SVC_DIR/partials")"
[ $ok = 1 ] || fail "partials: $(cat "$SVC_DIR/partials")"
kill -0 "$SOTTOD_PID" || fail "sottod died"
echo PASS

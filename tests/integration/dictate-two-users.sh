#!/bin/bash
# sotto-test: system-wide
# Dictation at the bus level with two users (made with useradd), each with
# their own PipeWire.  User A runs `sotto dictate --once --json` against
# sottod; libsotto opens A's own PipeWire and sottod's sotto-capture listens
# on that connection.  While a sentence plays into B's microphone, A's
# dictation hears nothing (no partial, no final); the same sentence played
# into A's microphone then gives one final whose tokens equal `sotto
# transcribe` of the WAV.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/pipewire.sh"
[ "$(id -u)" = 0 ] || skip "needs root to create two users"
for t in pipewire wireplumber pw-play pw-cli espeak-ng sox setpriv useradd; do
	command -v $t >/dev/null || skip "$t is not installed"
done
[ -x "$BUILD/sotto-capture" ] || skip "sotto-capture is not built (no libpipewire-0.3)"
[ -x "$BUILD/sotto-worker" ] || skip "sotto-worker is not built"
for u in sotto-cap-a sotto-cap-b; do
	id "$u" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$u" ||
		fail "useradd $u"
done
svc_setup dictate-two-users
W=$(mktemp -d /tmp/sotto-dictate-users.XXXXXX)
chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; pw_stop "$W/a"; pw_stop "$W/b"; svc_cleanup; rm -rf "$W"' EXIT

svc_tiny_whisper
svc_bus session
svc_start_sottod $(svc_model_args 2000) --whisper-model "$SVC_DIR/tiny.bin" --threads 2
pw_start "$W/a" sotto-cap-a || fail "user A's PipeWire did not start"
pw_start "$W/b" sotto-cap-b || fail "user B's PipeWire did not start"

espeak-ng -w "$W/speech-22k.wav" "Only the first user should hear this sentence."
sox "$W/speech-22k.wav" -r 16000 -c 1 -b 16 "$W/speech.wav" pad 0.3 1.0
chmod 644 "$W"/*.wav

"$SOTTO" --address "$BUS_ADDRESS" --json transcribe "$W/speech.wav" > "$SVC_DIR/transcribe.json" ||
	fail "transcribe: exit $?"
tokens() { sed -n 's/.*"type":"final".*"tokens":\[\([0-9,]*\)\].*/\1/p' "$1" | head -n1; }
t_tokens=$(tokens "$SVC_DIR/transcribe.json")
[ -n "$t_tokens" ] || fail "transcription has no tokens: $(cat "$SVC_DIR/transcribe.json")"

# A's client, as user A, in A's session (A's PipeWire runtime directory).
stamp() { while IFS= read -r l; do echo "$(date +%s%3N) $l"; done; }
(pw__exec=exec pw_run "$W/a" "$SOTTO" --address "$BUS_ADDRESS" --json dictate --once 2>"$SVC_DIR/dictate.err" |
	stamp > "$SVC_DIR/dictate.json") &
DICT=$!
pw__wait 15 bash -c "$(declare -f pw_run); pw_run '$W/a' pw-link -l | grep -q sotto-capture" ||
	fail "sotto-capture was not linked in A's PipeWire: $(cat "$SVC_DIR/dictate.err")"
if pw_run "$W/b" pw-link -l | grep -q sotto-capture; then
	fail "sotto-capture appeared in B's PipeWire"
fi
sleep 0.3
pw_feed "$W/b" "$W/speech.wav" || fail "could not play into B's test-mic"
sleep 1.0 # longer than the VAD's end-of-utterance silence
a_start=$(date +%s%3N)
heard_b=$(grep -c '"type":"\(partial\|final\)"' "$SVC_DIR/dictate.json" || true)
[ "$heard_b" = 0 ] || fail "A's dictation heard B's microphone: $(cat "$SVC_DIR/dictate.json")"
kill -0 $DICT 2>/dev/null || fail "A's dictation ended while B spoke: $(cat "$SVC_DIR/dictate.json" "$SVC_DIR/dictate.err")"
note "nothing reached A's dictation while B's microphone played"
pw_feed "$W/a" "$W/speech.wav" || fail "could not play into A's test-mic"
i=0
while kill -0 $DICT 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 300 ] && fail "dictate --once did not end: $(cat "$SVC_DIR/dictate.json")"
	sleep 0.1
done
wait $DICT || fail "dictate: exit $? $(cat "$SVC_DIR/dictate.err")"
awk -v s="$a_start" '/"type":"(partial|final)"/ && $1 < s { bad = 1 } END { exit bad }' "$SVC_DIR/dictate.json" ||
	fail "events before A's microphone played: $(cat "$SVC_DIR/dictate.json")"
[ "$(grep -c '"type":"final"' "$SVC_DIR/dictate.json")" = 1 ] || fail "one final expected: $(cat "$SVC_DIR/dictate.json")"
sed 's/^[0-9]* //' "$SVC_DIR/dictate.json" > "$SVC_DIR/d.json"
d_tokens=$(tokens "$SVC_DIR/d.json")
[ "$d_tokens" = "$t_tokens" ] || fail "A's dictation tokens differ from transcribe: $d_tokens vs $t_tokens"
note "A's own microphone: the same $(echo "$t_tokens" | tr , '\n' | wc -l) tokens as transcribe"
kill -0 "$SOTTOD_PID" || fail "sottod died"
echo PASS

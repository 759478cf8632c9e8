#!/bin/bash
# Speech requests that go wrong end with named errors or clean stops, and
# the daemon keeps serving:
#   - malformed WAV files (random bytes, truncated header, inconsistent
#     fields, a data chunk larger than the file, an unsupported encoding,
#     empty) and raw PCM that is not whole frames: Transcribe ends with
#     org.sotto.Sotto1.Error.InvalidInput (exit 5), a bad option is refused
#     at the call; a pipe on stdin gives the same tokens as the file;
#   - the source vanishes mid-utterance (test-mic destroyed while speech is
#     fed through PipeWire): Ended("source-vanished", SourceVanished), the
#     speech heard so far still gets its Final, sotto-capture is gone;
#   - the caller disconnects mid-utterance (killed): sottod ends the
#     dictation ("caller-left"), kills its sotto-capture, and serves on.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/pipewire.sh"
for t in espeak-ng sox; do command -v $t >/dev/null || skip "$t is not installed"; done
[ -x "$BUILD/sotto-worker" ] || skip "sotto-worker is not built"
svc_setup dictate-errors
W=$(mktemp -d /tmp/sotto-dictate-errors.XXXXXX)
chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; pw_stop "$W/pw"; svc_cleanup; rm -rf "$W"' EXIT

svc_tiny_whisper
svc_bus session
svc_start_sottod $(svc_model_args 2000) --whisper-model "$SVC_DIR/tiny.bin" --threads 2
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
tokens() { sed -n 's/.*"type":"final".*"tokens":\[\([0-9,]*\)\].*/\1/p' "$1" | head -n1; }
alive() { kill -0 "$SOTTOD_PID" 2>/dev/null || fail "sottod died ($1)"; }

espeak-ng -w "$W/s22.wav" "Please open the window and close the door."
sox "$W/s22.wav" -r 16000 -c 1 -b 16 "$W/speech.wav" pad 0.3 1.0
chmod 644 "$W"/*.wav
S --json transcribe "$W/speech.wav" > "$SVC_DIR/good.json" || fail "transcribe: $(cat "$SVC_DIR/good.json")"
good=$(tokens "$SVC_DIR/good.json")
[ -n "$good" ] || fail "no tokens: $(cat "$SVC_DIR/good.json")"

# ---- malformed recordings ----
head -c 4000 /dev/urandom > "$W/random.wav"
head -c 30 "$W/speech.wav" > "$W/truncated.wav"
: > "$W/empty.wav"
# block align (bytes 32-33) that does not match 1 channel of 16 bits
cp "$W/speech.wav" "$W/blockalign.wav"
printf '\x07\x00' | dd of="$W/blockalign.wav" bs=1 seek=32 conv=notrunc 2>/dev/null
# a data chunk claiming 1 GiB (sox writes "data" at offset 36, size at 40)
cp "$W/speech.wav" "$W/bigdata.wav"
printf '\x00\x00\x00\x40' | dd of="$W/bigdata.wav" bs=1 seek=40 conv=notrunc 2>/dev/null
sox "$W/speech.wav" -b 8 -e unsigned-integer "$W/u8.wav"
for f in random truncated empty blockalign bigdata u8; do
	rc=0
	S --json transcribe "$W/$f.wav" > "$SVC_DIR/$f.json" 2>&1 || rc=$?
	grep -q '"error":"org.sotto.Sotto1.Error.InvalidInput"' "$SVC_DIR/$f.json" ||
		fail "$f.wav: no InvalidInput: $(cat "$SVC_DIR/$f.json")"
	[ $rc = 5 ] || fail "$f.wav: exit $rc, want 5"
	note "$f.wav: $(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$SVC_DIR/$f.json")"
	alive "$f.wav"
done
# Raw PCM: an odd number of bytes is not whole s16 frames.
head -c 16001 "$W/speech.wav" > "$W/odd.raw"
rc=0; S --json --format s16le --rate 16000 transcribe "$W/odd.raw" > "$SVC_DIR/odd.json" 2>&1 || rc=$?
grep -q 'InvalidInput' "$SVC_DIR/odd.json" && [ $rc = 5 ] || fail "odd raw: exit $rc $(cat "$SVC_DIR/odd.json")"
rc=0; S --format mp3 transcribe "$W/speech.wav" 2> "$SVC_DIR/fmt.err" || rc=$?
[ $rc = 5 ] && grep -q "format" "$SVC_DIR/fmt.err" || fail "bad format option: exit $rc $(cat "$SVC_DIR/fmt.err")"
# Raw s16le of the same samples, and the file through a pipe: same tokens.
sox "$W/speech.wav" -t s16 "$W/speech.raw"
S --json --format s16le --rate 16000 transcribe "$W/speech.raw" > "$SVC_DIR/raw.json" || fail "raw transcribe"
[ "$(tokens "$SVC_DIR/raw.json")" = "$good" ] || fail "raw s16le gives other tokens"
cat "$W/speech.wav" | S --json transcribe - > "$SVC_DIR/pipe.json" || fail "transcribe -"
[ "$(tokens "$SVC_DIR/pipe.json")" = "$good" ] || fail "stdin gives other tokens"
S --json transcribe "$W/speech.wav" > "$SVC_DIR/again.json" || fail "transcribe after the errors"
[ "$(tokens "$SVC_DIR/again.json")" = "$good" ] || fail "tokens changed after the errors"
stats=$(busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service GetStatistics)
echo "$stats" | grep -q '"worker-crashes" t 0' || fail "the worker crashed: $stats"
note "malformed recordings: named errors, same tokens from a file, raw PCM and a pipe, no worker crash"

# ---- PipeWire: the source vanishes, the caller leaves ----
for t in pipewire wireplumber pw-play pw-cli setpriv; do command -v $t >/dev/null || skip "$t is not installed"; done
[ -x "$BUILD/sotto-capture" ] || skip "sotto-capture is not built"
pw_start "$W/pw" || fail "headless PipeWire did not start"
captures() { pgrep -P "$SOTTOD_PID" -x sotto-capture | wc -l; }
linked() { pw__wait 15 bash -c "$(declare -f pw_run); pw_run '$W/pw' pw-link -l | grep -q sotto-capture"; }

(pw__exec=exec pw_run "$W/pw" "$SOTTO" --address "$BUS_ADDRESS" --json dictate > "$SVC_DIR/vanish.json" 2>&1) &
DICT=$!
linked || fail "sotto-capture was not linked"
pw_feed "$W/pw" "$W/speech.wav" &
FEED=$!
sleep 1.5
pw_destroy_mic "$W/pw" || fail "could not destroy test-mic"
# pw-play waits for a graph that no longer drives it: end it.
sleep 0.5
pkill -P $FEED 2>/dev/null || true
kill $FEED 2>/dev/null || true
i=0; while kill -0 $DICT 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && fail "dictate did not end: $(cat "$SVC_DIR/vanish.json")"; sleep 0.1; done
rc=0; wait $DICT || rc=$?
sed 's/^/# /' "$SVC_DIR/vanish.json" | cut -c1-160
grep -q '"type":"ended","reason":"source-vanished","error":"org.sotto.Sotto1.Error.SourceVanished"' "$SVC_DIR/vanish.json" ||
	fail "no source-vanished end: $(cat "$SVC_DIR/vanish.json")"
grep -q '"type":"final"' "$SVC_DIR/vanish.json" || fail "the speech heard before the source vanished got no final"
[ $rc = 1 ] || fail "dictate: exit $rc after the source vanished, want 1"
[ "$(captures)" = 0 ] || fail "sotto-capture still running"
alive "source vanished"
wait $FEED 2>/dev/null || true

# A new test-mic for the next case.
pw_run "$W/pw" pw-cli create-node adapter '{ factory.name=support.null-audio-sink node.name=test-mic node.description="Test Mic" media.class=Audio/Source/Virtual audio.position=[MONO] object.linger=true monitor.channel-volumes=true }' >/dev/null
pw__wait 10 bash -c "$(declare -f pw_run); pw_run '$W/pw' wpctl inspect @DEFAULT_AUDIO_SOURCE@ | grep -q 'node.name = \"test-mic\"'" ||
	fail "test-mic is not the default source again"

(pw__exec=exec pw_run "$W/pw" "$SOTTO" --address "$BUS_ADDRESS" --json dictate > "$SVC_DIR/leave.json" 2>&1) &
DICT=$!
linked || fail "sotto-capture was not linked (second dictation)"
[ "$(captures)" = 1 ] || fail "$(captures) sotto-capture processes"
pw_feed "$W/pw" "$W/speech.wav" &
FEED=$!
sleep 1.2
kill -9 $DICT
wait $DICT 2>/dev/null || true
wait $FEED 2>/dev/null || true
i=0; while [ "$(captures)" != 0 ]; do i=$((i+1)); [ $i -gt 100 ] && fail "sotto-capture outlived its caller"; sleep 0.1; done
grep -q "ended: caller-left" "$SVC_DIR/sottod.log" || fail "no caller-left end in the log"
alive "caller left"
S --json transcribe "$W/speech.wav" > "$SVC_DIR/after.json" || fail "transcribe after the dictations"
[ "$(tokens "$SVC_DIR/after.json")" = "$good" ] || fail "tokens changed after the dictations"
stats=$(busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service GetStatistics)
echo "$stats" | grep -q '"worker-crashes" t 0' || fail "the worker crashed: $stats"
note "source vanished: SourceVanished with the final of what was heard; caller killed: its capture ended; sottod serves on"
echo PASS

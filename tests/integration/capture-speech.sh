#!/bin/bash
# A sentence spoken by espeak-ng, played into the virtual source test-mic of
# a private headless PipeWire, comes out of sotto-capture's output pipe with
# its samples intact: correlation with the 16 kHz file >= 0.99 after
# alignment, no dropouts.  Also reports the latency from the start of the
# feed to the first sound in the pipe.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/pipewire.sh"
for t in pipewire wireplumber pw-play pw-cli espeak-ng sox setpriv; do
	command -v $t >/dev/null || skip "$t is not installed"
done
[ -x "$BUILD/sotto-capture" ] || skip "sotto-capture is not built (no libpipewire-0.3)"
# Outside build/: the Makefile includes every *.d under build/, and
# PipeWire needs a pipewire.conf.d directory.
W=$(mktemp -d /tmp/sotto-capture-speech.XXXXXX)
chmod 755 "$W"
CAP=""
trap 'kill $(jobs -p) 2>/dev/null; [ -n "$CAP" ] && kill $CAP 2>/dev/null; pw_stop "$W/pw"; rm -rf "$W"' EXIT
pw_start "$W/pw" || fail "headless PipeWire did not start"

espeak-ng -w "$W/speech-22k.wav" "The quick brown fox jumps over the lazy dog, then dictates a letter."
sox "$W/speech-22k.wav" -r 16000 -c 1 -b 16 "$W/speech.wav"
sox "$W/speech.wav" -t f32 -e floating-point "$W/ref.f32"

mkfifo "$W/out"
pw__exec=exec pw_run "$W/pw" "$BUILD/tests/capture-run" "" "$BUILD/sotto-capture" --output-fd 3 --user nobody \
	3>"$W/out" 2>"$W/status" &
CAP=$!
# The reader keeps everything; the speech is found in it afterwards.
cat "$W/out" > "$W/cap.f32" &
READER=$!
# Wait until the stream is linked to test-mic (our node appears in a link).
pw__wait 10 bash -c "$(declare -f pw_run); pw_run '$W/pw' pw-link -l | grep -q sotto-capture" ||
	fail "sotto-capture was not linked: $(cat "$W/status")"
sleep 0.3
before=$(stat -c %s "$W/cap.f32")
pw_feed "$W/pw" "$W/speech.wav" || fail "could not play into test-mic"
sleep 0.5
kill -TERM $CAP
wait $CAP && rc=0 || rc=$?
CAP=""
wait $READER || true
grep -q "sotto-capture: stop: stopped" "$W/status" || fail "no clean stop: rc=$rc $(cat "$W/status")"
[ $rc -eq 0 ] || fail "exit code $rc after SIGTERM"
res=$("$BUILD/tests/capture-compare" "$W/ref.f32" "$W/cap.f32") && ok=1 || ok=0
echo "# $res"
[ $ok = 1 ] || fail "captured speech differs: $res"
# The graph's clock runs at 16 kHz, so sample positions are times: the
# speech starts "lag" samples into the capture, which held "before" bytes
# when the feed started (pw-play's own start-up included).
lag=${res#lag=}
lag=${lag%% *}
echo "# feed start to speech in the pipe: $(( (lag - before / 4) * 1000 / 16000 )) ms"
echo PASS

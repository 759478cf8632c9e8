#!/bin/bash
# sotto-test: system-wide
# Two users, each with their own PipeWire (as root: made with useradd).  A
# capture on user A's connection fd hears A's test-mic and never user B's:
# while speech plays into B's mic, A's pipe stays silent; then the same
# speech played into A's mic reaches it (correlation >= 0.99).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/pipewire.sh"
[ "$(id -u)" = 0 ] || skip "needs root to create two users"
for t in pipewire wireplumber pw-play pw-cli espeak-ng sox setpriv useradd; do
	command -v $t >/dev/null || skip "$t is not installed"
done
[ -x "$BUILD/sotto-capture" ] || skip "sotto-capture is not built (no libpipewire-0.3)"
for u in sotto-cap-a sotto-cap-b; do
	id "$u" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$u" ||
		fail "useradd $u"
done
# Outside build/ (see capture-speech.sh); each user must reach its own dir.
W=$(mktemp -d /tmp/sotto-capture-users.XXXXXX)
chmod 755 "$W"
CAP=""
trap 'kill $(jobs -p) 2>/dev/null; [ -n "$CAP" ] && kill -9 $CAP 2>/dev/null; pw_stop "$W/a"; pw_stop "$W/b"; rm -rf "$W"' EXIT
pw_start "$W/a" sotto-cap-a || fail "user A's PipeWire did not start"
pw_start "$W/b" sotto-cap-b || fail "user B's PipeWire did not start"

espeak-ng -w "$W/speech-22k.wav" "Only the first user should hear this sentence."
sox "$W/speech-22k.wav" -r 16000 -c 1 -b 16 "$W/speech.wav"
sox "$W/speech.wav" -t f32 -e floating-point "$W/ref.f32"
chmod 644 "$W"/*.wav

mkfifo "$W/out"
# User A opens the connection (as libsotto will in A's session) and hands
# the fd to sotto-capture.
pw__exec=exec pw_run "$W/a" "$BUILD/tests/capture-run" "" "$BUILD/sotto-capture" --output-fd 3 \
	3>"$W/out" 2>"$W/status" &
CAP=$!
cat "$W/out" > "$W/cap.f32" &
READER=$!
pw__wait 10 bash -c "$(declare -f pw_run); pw_run '$W/a' pw-link -l | grep -q sotto-capture" ||
	fail "sotto-capture was not linked in A's PipeWire: $(cat "$W/status")"
pw_feed "$W/b" "$W/speech.wav" || fail "could not play into B's test-mic"
sleep 0.3
during_b=$(stat -c %s "$W/cap.f32")
pw_feed "$W/a" "$W/speech.wav" || fail "could not play into A's test-mic"
sleep 0.5
kill -TERM $CAP
wait $CAP && rc=0 || rc=$?
CAP=""
wait $READER || true
[ $rc -eq 0 ] || fail "capture ended with $rc: $(cat "$W/status")"
[ "$during_b" -gt 32000 ] || fail "the capture produced only $during_b bytes while B's mic played"
head -c "$during_b" "$W/cap.f32" > "$W/during-b.f32"
peak=$(sox -t f32 -r 16000 -c 1 "$W/during-b.f32" -n stat 2>&1 | awk '/^Maximum amplitude/ { print $3 }')
note "peak in A's capture while B's mic played: $peak ($((during_b / 4)) samples)"
awk -v p="$peak" 'BEGIN { exit !(p < 0.0001) }' || fail "A's capture heard B's source (peak $peak)"
tail -c +"$((during_b + 1))" "$W/cap.f32" > "$W/during-a.f32"
res=$("$BUILD/tests/capture-compare" "$W/ref.f32" "$W/during-a.f32") && ok=1 || ok=0
note "A's own mic: $res"
[ $ok = 1 ] || fail "A's capture did not hear A's source intact: $res"
echo PASS

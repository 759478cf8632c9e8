#!/bin/bash
# sotto-capture ends with a named reason, never a hang: the reader closing
# the output pipe gives reader-closed (exit 10); the source node destroyed
# mid-capture gives source-vanished (exit 11); PipeWire dying gives
# disconnected (exit 12); a stop byte on the control fd a clean stop (0).
# While it runs, its seccomp
# filter is in place (Seccomp: 2) and, started as root, it runs as nobody.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/pipewire.sh"
for t in pipewire wireplumber pw-cli setpriv; do
	command -v $t >/dev/null || skip "$t is not installed"
done
[ -x "$BUILD/sotto-capture" ] || skip "sotto-capture is not built (no libpipewire-0.3)"
# Outside build/ (see capture-speech.sh).
W=$(mktemp -d /tmp/sotto-capture-stops.XXXXXX)
chmod 755 "$W"
CAP=""
trap 'kill $(jobs -p) 2>/dev/null; [ -n "$CAP" ] && kill -9 $CAP 2>/dev/null; pw_stop "$W/pw"; rm -rf "$W"' EXIT
pw_start "$W/pw" || fail "headless PipeWire did not start"

# Waits up to 10 s for the capture to end; its exit code in $rc.
wait_capture() {
	local i
	for i in $(seq 200); do
		kill -0 $CAP 2>/dev/null || break
		sleep 0.05
	done
	kill -0 $CAP 2>/dev/null && fail "$1: sotto-capture still runs after 10 s (status: $(cat "$W/status"))"
	wait $CAP && rc=0 || rc=$?
	CAP=""
}

# 1. The reader takes 1 s of audio and leaves.
rm -f "$W/out" && mkfifo "$W/out"
pw__exec=exec pw_run "$W/pw" "$BUILD/tests/capture-run" "" "$BUILD/sotto-capture" --output-fd 3 --user nobody \
	3>"$W/out" 2>"$W/status" &
CAP=$!
head -c 64000 "$W/out" > /dev/null
wait_capture "reader closed"
grep -q "sotto-capture: stop: reader-closed" "$W/status" || fail "reader closed: $(cat "$W/status")"
[ $rc -eq 10 ] || fail "reader closed: exit code $rc, not 10"
note "reader closed: $(cat "$W/status")"

# 1b. A stop byte on the control fd: a clean stop (exit 0).
rm -f "$W/out" "$W/ctl" && mkfifo "$W/out" "$W/ctl"
exec 5<>"$W/ctl"
pw__exec=exec pw_run "$W/pw" "$BUILD/tests/capture-run" "" "$BUILD/sotto-capture" --output-fd 3 --control-fd 4 \
	--user nobody 3>"$W/out" 4<&5 2>"$W/status" &
CAP=$!
cat "$W/out" > /dev/null &
pw__wait 5 grep -q "^Seccomp:[[:space:]]*2" /proc/$CAP/status || fail "stop byte: capture did not start"
echo x >&5
wait_capture "stop byte"
exec 5>&-
grep -q "sotto-capture: stop: stopped" "$W/status" || fail "stop byte: rc=$rc $(cat "$W/status")"
[ $rc -eq 0 ] || fail "stop byte: exit code $rc, not 0"
note "stop byte: $(cat "$W/status")"

# 2. Sandbox while capturing, then the source goes away.
rm -f "$W/out" && mkfifo "$W/out"
pw__exec=exec pw_run "$W/pw" "$BUILD/tests/capture-run" "" "$BUILD/sotto-capture" --output-fd 3 --user nobody \
	3>"$W/out" 2>"$W/status" &
CAP=$!
cat "$W/out" > /dev/null &
pw__wait 10 bash -c "$(declare -f pw_run); pw_run '$W/pw' pw-link -l | grep -q sotto-capture" ||
	fail "sotto-capture was not linked: $(cat "$W/status")"
pw__wait 5 grep -q '^Seccomp:[[:space:]]*2' /proc/$CAP/status || fail "no seccomp filter: $(grep Seccomp /proc/$CAP/status)"
grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$CAP/status || fail "no_new_privs is not set"
if [ "$(id -u)" = 0 ]; then
	uid=$(awk '/^Uid:/ { print $2 }' /proc/$CAP/status)
	[ "$uid" = "$(id -u nobody)" ] || fail "sotto-capture still runs as uid $uid"
fi
note "sandbox: $(grep -E '^(Seccomp|NoNewPrivs|Uid):' /proc/$CAP/status | tr -s '\t\n' ' ')"
sleep 0.3
pw_destroy_mic "$W/pw" || fail "could not destroy test-mic"
wait_capture "source vanished"
grep -q "sotto-capture: stop: source-vanished" "$W/status" || fail "source vanished: rc=$rc $(cat "$W/status")"
[ $rc -eq 11 ] || fail "source vanished: exit code $rc, not 11"
note "source vanished: $(cat "$W/status")"

# 3. PipeWire itself dies under a running capture (no source is left, so
#    the stream waits unlinked).
rm -f "$W/out" && mkfifo "$W/out"
pw__exec=exec pw_run "$W/pw" "$BUILD/tests/capture-run" "" "$BUILD/sotto-capture" --output-fd 3 --user nobody \
	3>"$W/out" 2>"$W/status" &
CAP=$!
cat "$W/out" > /dev/null &
pw__wait 5 grep -q '^Seccomp:[[:space:]]*2' /proc/$CAP/status || fail "no seccomp filter before the disconnect"
kill -9 "$(sed -n 2p "$W/pw/pids")"
wait_capture "disconnected"
grep -q "sotto-capture: stop: disconnected" "$W/status" || fail "disconnected: rc=$rc $(cat "$W/status")"
[ $rc -eq 12 ] || fail "disconnected: exit code $rc, not 12"
note "disconnected: $(cat "$W/status")"
echo PASS

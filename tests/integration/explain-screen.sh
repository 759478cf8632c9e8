#!/bin/bash
# sotto explain --screen: where the screenshot comes from, in order.
# 1. No portal on the session bus and no tool in PATH: a clear message that
#    names the portal and every tool, exit status 1, nothing sent.
# 2. A tool that fails: its name and message in the error.
# 3. ImageMagick's import on a real (virtual) X display (Xvfb): the
#    1920 x 1080 screenshot reaches the worker, which decodes it.
# 4. A portal: a real xdg-desktop-portal cannot take screenshots headless
#    (it needs a GNOME, KDE or wlroots backend), so a test double of its
#    documented Screenshot protocol (tests/integration/mock-portal.c) runs on
#    a private session bus: Request/Response by handle_token, a
#    percent-encoded file:// URI; and a declined request is reported as such.
. "$(dirname "$0")/lib/common.sh"
svc_setup explain-screen
svc_bus session
command -v convert >/dev/null || skip "ImageMagick (convert) is not installed"
W="$SVC_DIR"
A="--address $BUS_ADDRESS"
convert -size 1920x1080 xc:'#204080' -fill white -draw 'rectangle 100,100 900,300' "$W/shot.png" || fail "convert"
# A random-weight Gemma 3 projector (SigLIP at 224, 16 soft tokens of 64).
"$BUILD/sotto-mkmmproj" --preset gemma3-tiny --type F32 --proj-dim 64 "$W/mmproj.gguf" > /dev/null || fail "sotto-mkmmproj"
svc_start_sottod $(svc_model_args 2000) --mmproj "$W/mmproj.gguf"

# What a successful screenshot ends in, until the vision encoder is there:
# the worker decoded the screenshot (its size proves which image it was).
reached_worker() { # output, WxH
	if echo "$1" | grep -q 'org\.sotto\.Sotto1\.Error\.'; then
		echo "$1" | grep -q "ModelUnavailable" && echo "$1" | grep -q "the $2 image"
	else
		[ -n "$1" ] # an answer
	fi
}

# ---- 1. nothing to take a screenshot with ----
mkdir -p "$W/empty-bin"
out=$(env -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR -u DISPLAY -u WAYLAND_DISPLAY PATH="$W/empty-bin" \
	"$SOTTO" $A explain --screen "what is this?" 2>&1) && fail "no portal and no tool, yet it succeeded: $out"
rc=0; env -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR PATH="$W/empty-bin" "$SOTTO" $A explain --screen >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] || fail "exit status $rc, want 1"
for word in org.freedesktop.portal.Screenshot grim gnome-screenshot spectacle import; do
	echo "$out" | grep -q "$word" || fail "the message does not name $word: $out"
done
n=$(svc_stat failed)$(svc_stat completed); [ "$n" = 00 ] || fail "a request reached the service (failed, completed: $n)"
note "no portal, no tool: $out"

# ---- 2. a tool that is there but fails ----
mkdir -p "$W/bad-bin"
printf '#!/bin/sh\necho "compositor does not support wlr-screencopy" >&2\nexit 1\n' > "$W/bad-bin/grim"
chmod +x "$W/bad-bin/grim"
out=$(env -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR WAYLAND_DISPLAY=wayland-test PATH="$W/bad-bin" \
	"$SOTTO" $A explain --screen 2>&1) && fail "a failing tool, yet it succeeded: $out"
echo "$out" | grep -q 'grim failed (exit 1: compositor does not support wlr-screencopy)' || fail "failing grim: $out"
note "failing tool: $out"

# ---- 3. import (ImageMagick) on a virtual X display ----
if command -v Xvfb >/dev/null && command -v import >/dev/null; then
	for d in $(seq 99 -1 90); do [ -e "/tmp/.X11-unix/X$d" ] || break; done
	Xvfb ":$d" -screen 0 1920x1080x24 -nolisten tcp > "$W/xvfb.log" 2>&1 &
	PIDS="$PIDS $!"
	i=0; until [ -e "/tmp/.X11-unix/X$d" ]; do i=$((i+1)); [ $i -gt 100 ] && fail "Xvfb did not start"; sleep 0.05; done
	mkdir -p "$W/x-bin"; ln -sf "$(command -v import)" "$W/x-bin/import"
	out=$(env -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR DISPLAY=":$d" PATH="$W/x-bin:/usr/bin:/bin" \
		"$SOTTO" $A explain --screen "what is on screen?" 2>&1) || true
	reached_worker "$out" 1920x1080 || fail "import on Xvfb: $out"
	note "import on Xvfb :$d: $out"
	ls /tmp/sotto-screen-* 2>/dev/null && fail "the temporary screenshot was left behind"
else
	note "Xvfb or import missing: the X11 tool path is not exercised"
fi

# ---- 4. the portal (test double, private session bus) ----
svc_dir_main=$SVC_DIR
SVC_DIR="$W/portal"; mkdir -p "$SVC_DIR"
OLD_BUS=$BUS_ADDRESS
svc_bus session
PORTAL_BUS=$BUS_ADDRESS
BUS_ADDRESS=$OLD_BUS
SVC_DIR=$svc_dir_main
"$BUILD/tests/mock-portal" "$PORTAL_BUS" "$W/shot.png" ok > "$W/portal.out" 2>&1 &
MP=$!
PIDS="$PIDS $MP"
i=0; until grep -q ready "$W/portal.out"; do i=$((i+1)); [ $i -gt 100 ] && fail "mock portal: $(cat "$W/portal.out")"; sleep 0.05; done
# grim in PATH would fail: the portal must be used first.
out=$(DBUS_SESSION_BUS_ADDRESS="$PORTAL_BUS" WAYLAND_DISPLAY=w PATH="$W/bad-bin" \
	"$SOTTO" $A explain --screen "what is on screen?" 2>&1) || true
reached_worker "$out" 1920x1080 || fail "through the portal: $out"
grep -q '^call sotto[0-9a-f]* interactive=0$' "$W/portal.out" || fail "the portal was not called with a handle_token: $(cat "$W/portal.out")"
note "portal: $out"
kill "$MP"; wait "$MP" 2>/dev/null || true
"$BUILD/tests/mock-portal" "$PORTAL_BUS" "$W/shot.png" declined > "$W/portal2.out" 2>&1 &
PIDS="$PIDS $!"
i=0; until grep -q ready "$W/portal2.out"; do i=$((i+1)); [ $i -gt 100 ] && fail "mock portal 2: $(cat "$W/portal2.out")"; sleep 0.05; done
out=$(DBUS_SESSION_BUS_ADDRESS="$PORTAL_BUS" PATH="$W/empty-bin" "$SOTTO" $A explain --screen 2>&1) &&
	fail "a declined screenshot succeeded: $out"
echo "$out" | grep -q 'the screenshot was cancelled (declined)' || fail "declined: $out"
note "declined: $out"

kill -0 "$SOTTOD_PID" || fail "sottod died"
svc_stop_sottod
echo PASS

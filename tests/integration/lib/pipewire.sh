# A private headless PipeWire for the capture tests (sourced, bash).  Each
# instance has its own session bus, runtime directory, pipewire and
# wireplumber, a virtual microphone "test-mic" (Audio/Source/Virtual, mono,
# the default source) and a null sink; the graph runs at 16 kHz.  Follows
# the recipe of ../shared/testenv/pipewire-headless.sh.
#
#   pw_start DIR [USER]     start one (as USER when given, for the two-user test)
#   pw_env DIR              the environment for a client of that PipeWire
#   pw_feed DIR FILE.wav    play FILE into test-mic (links by hand: WirePlumber
#                           will not target a virtual source itself); blocks
#   pw_destroy_mic DIR      remove the test-mic node
#   pw_stop DIR             stop what pw_start started, by PID
#
# pw_start records PIDs in DIR/pids; callers stop every DIR in their trap.

pw__wait() { # SECONDS command...
	local n=$(( $1 * 20 )) i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge $n ] && return 1
		sleep 0.05
	done
}

# Runs a command inside DIR's session (as its user).
pw_run() {
	local dir=$1
	shift
	local u
	u=$(cat "$dir/user")
	local envs=(XDG_RUNTIME_DIR="$dir/xdg" PIPEWIRE_RUNTIME_DIR="$dir/xdg" XDG_STATE_HOME="$dir/state"
		XDG_CONFIG_HOME="$dir/config" HOME="$dir/home" DBUS_SESSION_BUS_ADDRESS="unix:path=$dir/bus.sock"
		PATH="$PATH")
	if [ "$u" = "$(id -un)" ]; then
		${pw__exec:-} env -i "${envs[@]}" "$@"
	else
		${pw__exec:-} setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups --reset-env -- env -i "${envs[@]}" "$@"
	fi
}

pw_start() {
	local dir=$1 user=${2:-$(id -un)}
	mkdir -p "$dir/xdg" "$dir/state" "$dir/config/pipewire/pipewire.conf.d" "$dir/home"
	chmod 700 "$dir/xdg"
	echo "$user" > "$dir/user"
	: > "$dir/pids"
	cat > "$dir/config/pipewire/pipewire.conf.d/10-test.conf" <<-EOC
	context.properties = { default.clock.rate = 16000  default.clock.allowed-rates = [ 16000 ] }
	EOC
	cat > "$dir/bus.conf" <<-EOC
	<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
	 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
	<busconfig><type>session</type><listen>unix:path=$dir/bus.sock</listen>
	<auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
	</busconfig>
	EOC
	[ "$user" != "$(id -un)" ] && chown -R "$user" "$dir"
	(pw__exec=exec pw_run "$dir" setsid dbus-daemon --nofork --config-file="$dir/bus.conf" </dev/null >"$dir/dbus.log" 2>&1) &
	echo $! >> "$dir/pids"
	pw__wait 10 test -S "$dir/bus.sock" || { cat "$dir/dbus.log" >&2; return 1; }
	(pw__exec=exec pw_run "$dir" setsid pipewire </dev/null >"$dir/pipewire.log" 2>&1) &
	echo $! >> "$dir/pids"
	pw__wait 10 test -S "$dir/xdg/pipewire-0" || { cat "$dir/pipewire.log" >&2; return 1; }
	(pw__exec=exec pw_run "$dir" setsid wireplumber </dev/null >"$dir/wireplumber.log" 2>&1) &
	echo $! >> "$dir/pids"
	pw__wait 15 bash -c "$(declare -f pw_run); pw_run '$dir' pw-cli ls Client | grep -q 'application.name = \"WirePlumber\"'" ||
		{ cat "$dir/wireplumber.log" >&2; return 1; }
	pw_run "$dir" pw-cli create-node adapter '{ factory.name=support.null-audio-sink node.name=test-mic node.description="Test Mic" media.class=Audio/Source/Virtual audio.position=[MONO] object.linger=true monitor.channel-volumes=true }' >/dev/null
	pw_run "$dir" pw-cli create-node adapter '{ factory.name=support.null-audio-sink node.name=test-sink node.description="Test Sink" media.class=Audio/Sink audio.position=[MONO] object.linger=true monitor.channel-volumes=true }' >/dev/null
	pw__wait 10 bash -c "$(declare -f pw_run); pw_run '$dir' wpctl inspect @DEFAULT_AUDIO_SOURCE@ | grep -q 'node.name = \"test-mic\"'" ||
		{ cat "$dir/wireplumber.log" >&2; return 1; }
}

pw_feed() {
	local dir=$1 file=$2 feeder="test-feeder-$$-$RANDOM"
	pw_run "$dir" pw-play -P "{ node.autoconnect=false node.name=$feeder media.role=Test }" "$file" &
	local pp=$! i=0
	while [ $i -lt 100 ]; do
		pw_run "$dir" pw-link "$feeder:output_MONO" test-mic:input_MONO 2>/dev/null && break
		kill -0 $pp 2>/dev/null || break
		i=$((i + 1))
		sleep 0.02
	done
	[ $i -lt 100 ] || { kill $pp 2>/dev/null; echo "could not link $feeder to test-mic" >&2; return 1; }
	wait $pp
}

pw_destroy_mic() {
	local dir=$1 id
	id=$(pw_run "$dir" pw-cli ls Node | awk '/^[[:space:]]*id [0-9]+/ { gsub(",", "", $2); id = $2 }
		/node.name = "test-mic"/ { print id; exit }')
	[ -n "$id" ] || return 1
	pw_run "$dir" pw-cli destroy "$id" >/dev/null
}

pw_stop() {
	local dir=$1 pid
	[ -f "$dir/pids" ] || return 0
	for pid in $(tac "$dir/pids"); do
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -f "$dir/pids"
}

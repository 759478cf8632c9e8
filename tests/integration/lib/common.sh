# Shared by the service tests (sourced).  Starts a private dbus-daemon and
# sottod on it, and stops exactly what it started when the test exits.
#
#   svc_setup NAME                 work directory build/test-work/NAME, cleanup trap
#   svc_bus session|system         private bus; system type reads dbus/org.sotto.Sotto1.conf
#   svc_fake_model [step_usec] [n_ctx]   a model file for the engine test double
#   svc_start_sottod ARGS...       sottod in the background, waits until State is ready
#   svc_stop_sottod                SIGTERM, wait
#
# The bus recipe follows ../shared/testenv/dbus-private.sh (a project recipe):
# dbus-daemon --nofork on a socket in the work directory, its PID recorded.
set -eu
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}

BUILD=$(cd "$ROOT" && cd "$BUILD" && pwd)
SOTTO="$BUILD/sotto"
# asan-sottod.sh runs the scenarios with an ASan build, started directly as
# the service user (LeakSanitizer cannot inspect a process that switched uid).
SOTTOD=${SOTTOD_UNDER_TEST:-$BUILD/sottod}
PIDS=""

fail() {
	echo "FAIL: $*" >&2
	[ -n "${SVC_DIR:-}" ] && [ -f "$SVC_DIR/sottod.log" ] && { echo "--- sottod log:" >&2; tail -n 40 "$SVC_DIR/sottod.log" >&2; }
	exit 1
}
skip() { echo "skipped: $*"; exit 77; }
note() { echo "# $*"; }

svc_cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do
		i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.05; i=$((i+1)); done
		kill -9 "$p" 2>/dev/null || true
	done
}

svc_setup() {
	SVC_DIR="$BUILD/test-work/$1"
	rm -rf "$SVC_DIR"; mkdir -p "$SVC_DIR"
	chmod 755 "$SVC_DIR"
	trap svc_cleanup EXIT
	command -v dbus-daemon >/dev/null || skip "dbus-daemon is not installed"
}

# The service user: real privilege dropping needs it when we are root.
svc_user() {
	SVC_USER=sotto
	if [ "$(id -u)" = 0 ] && ! getent passwd sotto >/dev/null; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sotto 2>/dev/null ||
			SVC_USER=nobody
	fi
}

svc_bus() { # session|system
	local type=$1 dir="$SVC_DIR/bus"
	mkdir -p "$dir/policies" "$dir/services"
	if [ "$type" = session ]; then
		# Any local user may connect: the daemon drops to its own user.
		policy='<policy context="default"><allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>'
	else
		# As the stock system.conf: deny owning and calling by default;
		# our installed policy file opens exactly what sotto needs.
		policy='<policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>'
		cp "$ROOT/dbus/org.sotto.Sotto1.conf" "$dir/policies/"
		# More bus policies (e.g. polkitd's, for tests/integration/lib/polkit.sh).
		for f in ${SVC_BUS_POLICIES:-}; do cp "$f" "$dir/policies/"; done
	fi
	cat > "$dir/bus.conf" <<EOB
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>$type</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$dir/services</servicedir>
  $policy
  <includedir>$dir/policies</includedir>
</busconfig>
EOB
	dbus-daemon --config-file="$dir/bus.conf" --nofork --nosyslog --print-address=3 \
		3>"$dir/address" </dev/null >>"$dir/daemon.log" 2>&1 &
	local pid=$!
	PIDS="$PIDS $pid"
	local i=0
	while ! [ -s "$dir/address" ] || ! [ -S "$dir/bus.sock" ]; do
		i=$((i+1))
		[ $i -gt 100 ] && fail "dbus-daemon did not start: $(cat "$dir/daemon.log")"
		sleep 0.05
	done
	BUS_ADDRESS=$(head -n1 "$dir/address")
	chmod 755 "$dir"
	export BUS_ADDRESS
}

svc_fake_model() { # [step_usec] [n_ctx] [eos_every]
	printf 'SOTTO-FAKE-MODEL\nn_ctx=%s\nstep_usec=%s\neos_every=%s\nname=fake-test\n' "${2:-256}" "${1:-2000}" "${3:-97}" > "$SVC_DIR/fake.model"
	chmod 644 "$SVC_DIR/fake.model"
	echo "$SVC_DIR/fake.model"
}

# Waits until the daemon's State is "ready" (or fails after $2 seconds).
svc_wait_ready() {
	local i=0 max=$(( ${1:-20} * 20 ))
	while :; do
		st=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 \
			org.sotto.Sotto1.Service State 2>/dev/null || true)
		[ "$st" = 's "ready"' ] && return 0
		i=$((i+1))
		[ $i -gt $max ] && fail "sottod not ready (state: $st)"
		kill -0 "$SOTTOD_PID" 2>/dev/null || fail "sottod exited"
		sleep 0.05
	done
}

svc_start_sottod() { # extra args
	svc_user
	if [ -n "${SOTTOD_AS_USER:-}" ] && [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$SVC_USER" --regid="$SVC_USER" --init-groups \
			"$SOTTOD" --address "$BUS_ADDRESS" --user "$SVC_USER" "$@" >>"$SVC_DIR/sottod.log" 2>&1 &
	else
		"$SOTTOD" --address "$BUS_ADDRESS" --user "$SVC_USER" "$@" >>"$SVC_DIR/sottod.log" 2>&1 &
	fi
	SOTTOD_PID=$!
	PIDS="$SOTTOD_PID $PIDS"
	svc_wait_ready 30
}

svc_stop_sottod() {
	kill -TERM "$SOTTOD_PID"
	local i=0
	while kill -0 "$SOTTOD_PID" 2>/dev/null; do
		i=$((i+1)); [ $i -gt 200 ] && fail "sottod did not stop within 10 s of SIGTERM"
		sleep 0.05
	done
	wait "$SOTTOD_PID" || fail "sottod exited with an error after SIGTERM"
}

svc_stat() { # key -> value of GetStatistics
	busctl --address="$BUS_ADDRESS" --json=short call org.sotto.Sotto1 /org/sotto/Sotto1 \
		org.sotto.Sotto1.Service GetStatistics | tr ',' '\n' | grep -A1 "\"$1\"" | grep -o '"data":[0-9]*' | head -n1 | cut -d: -f2
}

worker_pid() {
	busctl --address="$BUS_ADDRESS" --json=short call org.sotto.Sotto1 /org/sotto/Sotto1 \
		org.sotto.Sotto1.Service GetStatistics | grep -o '"worker-pid":{"type":"u","data":[0-9]*' | grep -o '[0-9]*$'
}

# The model and worker to test with: the real engine on stories260K when it
# is built, else the engine test double.
# A random-weight Whisper model at the tiny shape, readable by the sotto
# user: $SVC_DIR/tiny.bin (the speech tests' model).
svc_tiny_whisper() {
	"$BUILD/sotto-mkwhisper" --shape tiny --type f16 --seed 1 -o "$SVC_DIR/tiny.bin" >/dev/null ||
		fail "sotto-mkwhisper"
	chmod 644 "$SVC_DIR/tiny.bin"
}

# A small random-weight gemma3n model (Q8_0, seed $1), readable by the
# sotto user: $SVC_DIR/gemma3n-tiny.gguf.
svc_tiny_gemma3n() {
	"$BUILD/sotto-mkmodel" --preset gemma3n-tiny --type Q8_0 --seed "$1" "$SVC_DIR/gemma3n-tiny.gguf" >/dev/null ||
		fail "sotto-mkmodel: exit $?"
	chmod 644 "$SVC_DIR/gemma3n-tiny.gguf"
}

svc_model_args() {
	if [ -x "$BUILD/sotto-worker" ] && [ -f "$SHARED/models/stories260K.gguf" ]; then
		# One thread: on a small shared CI machine the engine's thread
		# hand-offs cost more than they give on a 260K-parameter model.
		echo "--model $SHARED/models/stories260K.gguf --worker $BUILD/sotto-worker --threads 1"
	else
		echo "--model $(svc_fake_model "$@") --worker $BUILD/tests/sotto-worker-fake"
	fi
}

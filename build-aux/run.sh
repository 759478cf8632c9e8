#!/bin/bash
# `make run`: a private D-Bus, sottod on it with the default model, one
# `sotto ask` streaming its answer, then sottod in the foreground until
# Ctrl-C, with the command to reach it from another terminal.
#
# The default model: ../shared/models/stories260K.gguf when present, else
# the first GGUF in ~/.local/share/sotto/models/ or /var/lib/sotto/models/.
set -eu
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
BUILD=$(cd "$BUILD" && pwd)

model=""
for m in "$SHARED/models/stories260K.gguf" "$HOME"/.local/share/sotto/models/*.gguf /var/lib/sotto/models/*.gguf; do
	if [ -f "$m" ]; then model=$(cd "$(dirname "$m")" && pwd)/$(basename "$m"); break; fi
done
if [ -z "$model" ]; then
	echo "sotto: no model found. Put a GGUF file (for example a Gemma 3n E2B Q4_K_M download)" >&2
	echo "       into ~/.local/share/sotto/models/ or /var/lib/sotto/models/." >&2
	exit 1
fi
if [ ! -x "$BUILD/sotto-worker" ]; then
	echo "sotto: $BUILD/sotto-worker is not built: the engine (daemon/engine/) does not implement engine.h yet." >&2
	exit 1
fi
command -v dbus-daemon >/dev/null || { echo "sotto: dbus-daemon is missing (apt-get install dbus-daemon)" >&2; exit 1; }

user=sotto
if [ "$(id -u)" = 0 ] && ! getent passwd sotto >/dev/null; then
	echo "sotto: creating the system user 'sotto' that sottod switches to when started as root" >&2
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sotto
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/sotto-run.XXXXXX")
chmod 755 "$dir"
pids=""
cleanup() {
	trap - EXIT INT TERM
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	[ -n "${SOTTO_RUN_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'echo; echo "sotto: stopping" >&2; exit 0' INT TERM

# A session-type bus that any local user may join (sottod drops to its own user).
cat > "$dir/bus.conf" <<EOB
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/>
  </policy>
</busconfig>
EOB
dbus-daemon --config-file="$dir/bus.conf" --nofork --nosyslog --print-address=3 3>"$dir/address" </dev/null 2>"$dir/bus.log" &
pids="$!"
for _ in $(seq 100); do [ -s "$dir/address" ] && break; sleep 0.05; done
address=$(head -n1 "$dir/address")
[ -n "$address" ] || { echo "sotto: dbus-daemon did not start: $(cat "$dir/bus.log")" >&2; exit 1; }

echo "sotto: model $model" >&2
"$BUILD/sottod" --address "$address" --model "$model" --user "$user" &
sottod=$!
pids="$sottod $pids"
for _ in $(seq 200); do
	st=$(busctl --address="$address" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service State 2>/dev/null || true)
	[ "$st" = 's "ready"' ] && break
	kill -0 "$sottod" 2>/dev/null || { echo "sotto: sottod exited" >&2; exit 1; }
	sleep 0.05
done

echo >&2
echo '$ sotto ask "Once upon a time"    (the model continues the text)' >&2
printf 'Once upon a time'
"$BUILD/sotto" --address "$address" ask --max-tokens 200 "Once upon a time" || true
echo >&2
echo "sottod is serving $(basename "$model") on a private bus.  From another terminal:" >&2
echo "  $BUILD/sotto --address '$address' chat" >&2
echo "  $BUILD/sotto --address '$address' status" >&2
echo "Ctrl-C stops it." >&2
wait "$sottod"

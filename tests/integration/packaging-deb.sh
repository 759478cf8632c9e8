#!/bin/bash
# sotto-test: system-wide
# Builds the Debian packages from packaging/debian (dpkg-buildpackage -us -uc
# -b in a copy of the tracked files), checks them with lintian (no errors or
# warnings), installs them, and lets an ordinary user created for the test use
# sotto through bus activation on a private system-type bus that reads the
# installed policy (/usr/share/dbus-1/system.d).
#
# Activation: the packaged system activation file says Exec=/bin/false and
# SystemdService=sottod.service (systemd starts the unit on real systems).
# There is no systemd here, so the private bus's service directory holds a
# test file whose Exec= is the installed /usr/libexec/sotto/sottod; the bus
# (root) starts it and sottod switches to user sotto itself.
# The packages are purged again at the end.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SHARED=${SHARED:-$ROOT/../shared}
skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; [ -n "${work:-}" ] && tail -n 30 "$work"/bus/daemon.log >&2 2>/dev/null; exit 1; }
note() { echo "# $*"; }
[ "$(id -u)" = 0 ] || skip "needs root (installs the packages and creates a user)"
for c in dpkg-buildpackage dh lintian dbus-daemon setpriv useradd; do
	command -v $c >/dev/null || skip "$c is not installed (build-aux/debian-packages.txt lists it)"
done
model=$SHARED/models/stories260K.gguf
[ -f "$model" ] || skip "no $model (set SHARED)"
for p in sotto libsotto1 libsotto-dev; do
	dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q installed && skip "$p is already installed on this machine"
done

work=$(mktemp -d /tmp/sotto-deb.XXXXXX)
chmod 755 "$work"
CALLER=sotto-test-caller
PIDS=""
cleanup() {
	for p in $PIDS; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
	sleep 0.3
	dpkg --purge libsotto-dev sotto libsotto1 > /dev/null 2>&1 || true
	userdel "$CALLER" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# --- build
src=$work/src
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -t "$src"
cp -r packaging/debian "$src/debian"
t0=$(date +%s)
(cd "$src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "dpkg-buildpackage"; }
note "dpkg-buildpackage took $(( $(date +%s) - t0 )) s"
debs=$(ls "$work"/sotto_*.deb "$work"/libsotto1_*.deb "$work"/libsotto-dev_*.deb 2>/dev/null | wc -l)
[ "$debs" = 3 ] || fail "expected sotto, libsotto1 and libsotto-dev, got: $(ls "$work")"

# --- lintian
lintian --tag-display-limit 0 -I "$work"/sotto_*.changes > "$work/lintian.log" 2>&1 || true
grep -v 'running with root privileges' "$work/lintian.log" | sed 's/^/# lintian: /'
if grep -q '^[EW]: ' "$work/lintian.log"; then fail "lintian errors or warnings"; fi

# --- install
dpkg -i "$work"/libsotto1_*.deb "$work"/sotto_*.deb "$work"/libsotto-dev_*.deb > "$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log"; fail "dpkg -i"; }
getent passwd sotto > /dev/null || fail "installing sotto did not create user sotto"
[ -d /var/lib/sotto/models ] || fail "no /var/lib/sotto/models after install"
grep -q '^SystemdService=sottod.service$' /usr/share/dbus-1/system-services/org.sotto.Sotto1.service ||
	fail "installed activation file without SystemdService="
pkg-config --exists libsotto || fail "pkg-config does not find the installed libsotto"
# polkit's actions where polkitd reads them; the example rule only as documentation.
[ -f /usr/share/polkit-1/actions/org.sotto.policy ] || fail "the package does not install org.sotto.policy"
[ -f /usr/share/doc/sotto/examples/50-sotto-example.rules ] || fail "the package lacks the example polkit rule"

# --- a private system-type bus reading the installed policy
dir=$work/bus
mkdir -p "$dir/services"
cat > "$dir/services/org.sotto.Sotto1.service" <<EOS
[D-BUS Service]
Name=org.sotto.Sotto1
Exec=/usr/libexec/sotto/sottod --model $model --threads 1
EOS
cat > "$dir/bus.conf" <<EOB
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$dir/services</servicedir>
  <policy context="default">
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
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
</busconfig>
EOB
dbus-daemon --config-file="$dir/bus.conf" --nofork --nosyslog --print-address=3 \
	3>"$dir/address" </dev/null >>"$dir/daemon.log" 2>&1 &
PIDS="$PIDS $!"
i=0
while ! [ -s "$dir/address" ] || ! [ -S "$dir/bus.sock" ]; do
	i=$((i+1)); [ $i -gt 100 ] && fail "dbus-daemon did not start"; sleep 0.05
done
chmod 755 "$dir"
addr=$(head -n1 "$dir/address")

# --- an ordinary user
userdel "$CALLER" 2>/dev/null || true
useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$CALLER"
uid=$(id -u "$CALLER")
as_caller() { setpriv --reuid="$uid" --regid="$(id -g "$CALLER")" --init-groups env HOME=/nonexistent "$@"; }

# The first call activates sottod; status says "starting" (and exits non-zero)
# until the worker has loaded the model.
i=0
until as_caller /usr/bin/sotto --address "$addr" status > "$work/status" 2>&1; do
	i=$((i+1)); [ $i -gt 120 ] && { cat "$work/status"; fail "sotto status as $CALLER"; }
	sleep 0.25
done
sed 's/^/# status: /' "$work/status"
spid=$(dbus-send --bus="$addr" --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
	org.freedesktop.DBus.GetConnectionUnixProcessID string:org.sotto.Sotto1 2>/dev/null | awk '{ print $2 }')
[ -n "$spid" ] && PIDS="$spid $PIDS"
[ -n "$spid" ] || fail "sottod was not started by the bus"
suid=$(awk '/^Uid:/ { print $2 }' /proc/$spid/status)
[ "$suid" = "$(id -u sotto)" ] || fail "activated sottod runs as uid $suid, not sotto"
out=$(as_caller /usr/bin/sotto --address "$addr" ask --max-tokens 8 --temperature 0 "Once upon a time") ||
	fail "sotto ask as $CALLER"
[ -n "$out" ] || fail "empty answer"
note "answer: $out"
# Others may not own the name.
if as_caller dbus-send --bus="$addr" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
	org.freedesktop.DBus.RequestName string:org.sotto.Sotto1 uint32:0 > "$work/own" 2>&1; then
	fail "$CALLER could ask for the name"
fi
echo PASS

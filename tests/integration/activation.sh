#!/bin/bash
# Bus activation: with only an activation file in the bus's service
# directory, the first `sotto` call starts sottod, which serves on the bus
# that started it.  Also checks the shipped activation files' form.
. "$(dirname "$0")/lib/common.sh"
svc_setup activation
for f in "$ROOT/dbus/org.sotto.Sotto1.service.system" "$ROOT/dbus/org.sotto.Sotto1.service.session"; do
	grep -q '^Name=org.sotto.Sotto1$' "$f" || fail "$f: Name"
	grep -q '^SystemdService=sottod.service$' "$f" || fail "$f: SystemdService"
done
grep -q '^User=sotto$' "$ROOT/dbus/org.sotto.Sotto1.service.system" || fail "system activation file: User"
svc_user
mkdir -p "$SVC_DIR/bus/services"
model=$(svc_fake_model 1000)
cat > "$SVC_DIR/bus/services/org.sotto.Sotto1.service" <<EOS
[D-BUS Service]
Name=org.sotto.Sotto1
Exec=$SOTTOD --model $model --worker $BUILD/tests/sotto-worker-fake --user $SVC_USER
EOS
svc_bus session
busctl --address="$BUS_ADDRESS" list --activatable 2>/dev/null | grep -q org.sotto.Sotto1 || fail "not activatable"
# The first call activates; the answer may need the worker to come up.
t0=$(date +%s%N)
i=0
until out=$("$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 5 --temperature 0 hello 2>"$SVC_DIR/err"); do
	i=$((i+1)); [ $i -gt 100 ] && fail "no answer through activation: $(cat "$SVC_DIR/err")"
	sleep 0.05
done
t1=$(date +%s%N)
[ -n "$out" ] || fail "empty answer"
note "activated and answered in $(( (t1 - t0) / 1000000 )) ms"
# Stop the activated daemon by its pid (the bus tells us who owns the name).
pid=$(busctl --address="$BUS_ADDRESS" status org.sotto.Sotto1 2>/dev/null | sed -n 's/^PID=//p')
[ -n "$pid" ] || fail "no owner pid"
kill -TERM "$pid"
i=0; while kill -0 "$pid" 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && fail "activated sottod did not stop"; sleep 0.05; done
echo PASS

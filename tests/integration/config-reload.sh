#!/bin/bash
# --config FILE and SIGHUP: Model= and MaxActive= are read at start and again
# on SIGHUP; a file with an error is refused with file:line and the last good
# settings stay; --model on the command line wins over Model=.
. "$(dirname "$0")/lib/common.sh"
svc_setup config-reload
svc_bus session
mk() { printf 'SOTTO-FAKE-MODEL\nn_ctx=256\nstep_usec=1000\nsalt=%s\nname=%s\n' "$1" "$2" > "$SVC_DIR/$2.model"; chmod 644 "$SVC_DIR/$2.model"; }
mk 1 first; mk 2 second
prop() { busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service "$1"; }
wait_prop() { local i=0; while [ "$(prop "$1")" != "$2" ]; do i=$((i+1)); [ $i -gt 100 ] && fail "$1 is $(prop "$1"), want $2"; sleep 0.05; done; }

printf '# sotto test\n[Daemon]\nModel = %s\nMaxActive = 2\n' "$SVC_DIR/first.model" > "$SVC_DIR/sotto.conf"
svc_start_sottod --config "$SVC_DIR/sotto.conf" --worker "$BUILD/tests/sotto-worker-fake"
wait_prop ModelFile 's "first.model"'

printf 'Model = %s\n' "$SVC_DIR/second.model" > "$SVC_DIR/sotto.conf"
kill -HUP "$SOTTOD_PID"
wait_prop ModelFile 's "second.model"'
svc_wait_ready 10
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 3 hi > /dev/null || fail "ask after reload"

printf 'Model = %s\nthis line is broken\n' "$SVC_DIR/first.model" > "$SVC_DIR/sotto.conf"
kill -HUP "$SOTTOD_PID"
i=0; while ! grep -q "sotto.conf:2: expected key = value" "$SVC_DIR/sottod.log"; do i=$((i+1)); [ $i -gt 100 ] && fail "no file:line error"; sleep 0.05; done
svc_wait_ready 10
[ "$(prop ModelFile)" = 's "second.model"' ] || fail "a broken file changed the model"
"$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 3 hi > /dev/null || fail "ask after a broken reload"
svc_stop_sottod

# --model wins.
printf 'Model = %s\n' "$SVC_DIR/first.model" > "$SVC_DIR/sotto.conf"
svc_start_sottod --config "$SVC_DIR/sotto.conf" --model "$SVC_DIR/second.model" --worker "$BUILD/tests/sotto-worker-fake"
wait_prop ModelFile 's "second.model"'
kill -HUP "$SOTTOD_PID"
sleep 0.3
svc_wait_ready 10
[ "$(prop ModelFile)" = 's "second.model"' ] || fail "Model= overrode --model on reload"
svc_stop_sottod
echo PASS

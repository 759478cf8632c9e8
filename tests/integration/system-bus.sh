#!/bin/bash
# sotto-test: system-wide
# A private system-type bus that reads the installed policy
# (dbus/org.sotto.Sotto1.conf).  Started by root, sottod switches to user
# sotto itself, owns the name, and serves root and an unprivileged user;
# neither root nor nobody may take the name; only the sotto interfaces are
# open to callers.
. "$(dirname "$0")/lib/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root (to start sottod as root and test other users)"
command -v setpriv >/dev/null || skip "setpriv is not installed"
svc_setup system-bus
svc_bus system
svc_start_sottod $(svc_model_args 2000)
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }

uid=$(awk '/^Uid:/ { print $2 }' /proc/$SOTTOD_PID/status)
[ "$uid" = "$(id -u "$SVC_USER")" ] || fail "sottod runs as uid $uid, want $SVC_USER"
wp=$(worker_pid)
wuid=$(awk '/^Uid:/ { print $2 }' /proc/$wp/status)
[ "$wuid" != 0 ] || fail "worker runs as root"
grep -q '^Seccomp:[[:space:]]*2' /proc/$wp/status || fail "worker without seccomp"
grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$wp/status || fail "sottod without no_new_privs"
note "sottod uid $uid, worker $wp uid $wuid with seccomp"

out=$(S ask --max-tokens 8 --temperature 0 hello) || fail "root caller"
chmod 755 "$BUILD" "$BUILD/tests" 2>/dev/null || true
out2=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 8 \
	--temperature 0 hello) || fail "an unprivileged caller was not served"
[ "$out" = "$out2" ] || fail "root and nobody got different greedy answers"
setpriv --reuid=65534 --regid=65534 --clear-groups "$SOTTO" --address "$BUS_ADDRESS" status > /dev/null ||
	fail "status as nobody"

# Nobody else may own the name.
for who in root nobody; do
	cmd=(dbus-send --bus="$BUS_ADDRESS" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus
		org.freedesktop.DBus.RequestName string:org.sotto.Sotto1 uint32:2)
	[ $who = nobody ] && cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups "${cmd[@]}")
	if "${cmd[@]}" > "$SVC_DIR/own.$who" 2>&1; then fail "$who could ask for the name: $(cat "$SVC_DIR/own.$who")"; fi
	grep -q AccessDenied "$SVC_DIR/own.$who" || fail "$who: $(cat "$SVC_DIR/own.$who")"
done
# Interfaces outside org.sotto.Sotto1.* are closed (Properties.Set is not allowed).
if setpriv --reuid=65534 --regid=65534 --clear-groups busctl --address="$BUS_ADDRESS" set-property \
	org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service State s x > "$SVC_DIR/set" 2>&1; then
	fail "Properties.Set went through"
fi
grep -qi "access denied\|AccessDenied" "$SVC_DIR/set" || fail "Properties.Set: $(cat "$SVC_DIR/set")"

# A second sottod cannot take over.
rc=0; timeout 10 "$SOTTOD" --address "$BUS_ADDRESS" $(svc_model_args 2000) > "$SVC_DIR/second.log" 2>&1 || rc=$?
[ $rc = 1 ] || fail "second sottod: exit $rc"
grep -q "cannot own the name" "$SVC_DIR/second.log" || fail "second sottod: $(cat "$SVC_DIR/second.log")"
svc_stop_sottod
echo PASS

#!/bin/bash
# sottod's side of the polkit protocol, without root: a stand-in polkitd
# (polkit-mock.c) on a private bus answers from a table and prints each
# request, and sottod --polkit must
# - send CheckAuthorization with the subject ("system-bus-name", {name: the
#   caller's unique name}), the action, flags 1 exactly when the call allows
#   interactive authorization, and no cancellation id;
# - map yes / no / challenge to success / NotAuthorized /
#   InteractiveAuthorizationRequired (NotAuthorized when interaction was
#   allowed); an error, an answer of the wrong type, or no polkit at all to
#   AuthorizationUnavailable;
# - keep a plain yes for the connection, and a yes after interaction only
#   when polkit retains it;
# - queue the calls of one connection behind one check.
# (tests/integration/polkit-authorize.sh does the same against the real
# polkitd, as root.)
. "$(dirname "$0")/lib/common.sh"
svc_setup polkit-mock
svc_bus session
MOCK=$BUILD/tests/polkit-mock
C() { "$BUILD/tests/polkit-client" "$BUS_ADDRESS" "$@"; }
mock_start() {
	"$MOCK" "$BUS_ADDRESS" "$@" > "$SVC_DIR/mock.out" 2>&1 &
	MOCK_PID=$!
	PIDS="$MOCK_PID $PIDS"
	local i=0
	until grep -q '^ready$' "$SVC_DIR/mock.out" 2>/dev/null; do
		i=$((i+1)); [ $i -gt 100 ] && fail "polkit-mock: $(cat "$SVC_DIR/mock.out")"; sleep 0.05
	done
}
mock_stop() { kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true; }
checks() { grep -c "^check system-bus-name $1 $2 " "$SVC_DIR/mock.out" || true; }
result() { grep -v '^pid\|^name\|^done\|^end' "$1" | cut -d' ' -f1 | tr '\n' ' '; }
want() { # file expected-results what
	[ "$(result "$1")" = "$2" ] || fail "$3: got [$(result "$1")], want [$2]"
}

mock_start org.sotto.generate=yes org.sotto.dictate=no org.sotto.configure=challenge org.sotto.manage-models=garbage
svc_start_sottod $(svc_model_args 2000) --polkit
E=org.freedesktop.DBus.Error
S=org.sotto.Sotto1.Error

C authorize org.sotto.generate no 3 > "$SVC_DIR/a"
want "$SVC_DIR/a" "ok ok ok " "generate=yes, 3 calls"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/a")
grep -qx "check system-bus-name $name org.sotto.generate 0 ''" "$SVC_DIR/mock.out" ||
	fail "the request: $(cat "$SVC_DIR/mock.out"), caller $name"
[ "$(checks "$name" org.sotto.generate)" = 1 ] || fail "3 calls of one connection: $(checks "$name" org.sotto.generate) checks"
C authorize org.sotto.dictate no 2 > "$SVC_DIR/b"
want "$SVC_DIR/b" "$S.NotAuthorized $S.NotAuthorized " "dictate=no"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/b")
[ "$(checks "$name" org.sotto.dictate)" = 1 ] || fail "a no is kept for the connection"
C authorize org.sotto.configure no 2 > "$SVC_DIR/c"
want "$SVC_DIR/c" "$E.InteractiveAuthorizationRequired $E.InteractiveAuthorizationRequired " "configure=challenge"
C authorize org.sotto.configure interactive 1 > "$SVC_DIR/d"
want "$SVC_DIR/d" "$S.NotAuthorized " "configure=challenge, interactive"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/d")
grep -qx "check system-bus-name $name org.sotto.configure 1 ''" "$SVC_DIR/mock.out" ||
	fail "an interactive call must send flags 1: $(grep configure "$SVC_DIR/mock.out")"
C authorize org.sotto.manage-models no 2 > "$SVC_DIR/e"
want "$SVC_DIR/e" "$S.AuthorizationUnavailable $S.AuthorizationUnavailable " "an answer of the wrong type"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/e")
[ "$(checks "$name" org.sotto.manage-models)" = 2 ] || fail "a failed check must not be cached"
out=$("$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 4 --temperature 0 "Once upon a time") || fail "Ask with generate=yes"
note "yes/no/challenge/garbage as documented; the request names the caller; Ask streams"

mock_stop
mock_start org.sotto.generate=slow org.sotto.manage-models=error org.sotto.configure=keep org.sotto.dictate=yes
C burst org.sotto.generate 4 > "$SVC_DIR/f"
want "$SVC_DIR/f" "ok ok ok ok " "4 calls behind one slow check"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/f")
[ "$(checks "$name" org.sotto.generate)" = 1 ] || fail "4 waiting calls: $(checks "$name" org.sotto.generate) checks"
C authorize org.sotto.manage-models > "$SVC_DIR/g"
want "$SVC_DIR/g" "$S.AuthorizationUnavailable " "polkit error"
grep -q "The mock was told to fail" "$SVC_DIR/g" || fail "polkit's message is not passed on: $(cat "$SVC_DIR/g")"
C authorize org.sotto.configure interactive 3 > "$SVC_DIR/h"
want "$SVC_DIR/h" "ok ok ok " "retained yes"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/h")
[ "$(checks "$name" org.sotto.configure)" = 1 ] || fail "a retained yes: $(checks "$name" org.sotto.configure) checks, want 1"
C authorize org.sotto.dictate interactive 3 > "$SVC_DIR/i"
want "$SVC_DIR/i" "ok ok ok " "one-shot yes"
name=$(awk '/^name/ { print $2 }' "$SVC_DIR/i")
[ "$(checks "$name" org.sotto.dictate)" = 3 ] || fail "a yes after interaction that polkit does not keep: $(checks "$name" org.sotto.dictate) checks, want 3"
note "slow check queues calls; errors pass polkit's message; interactive yes kept only when retained"

mock_stop
C authorize org.sotto.generate > "$SVC_DIR/j"
want "$SVC_DIR/j" "$S.AuthorizationUnavailable " "no polkit on the bus"
grep -q "not running" "$SVC_DIR/j" || fail "without polkit: $(cat "$SVC_DIR/j")"
rc=0; "$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 4 hello > /dev/null 2>&1 || rc=$?
[ $rc = 7 ] || fail "sotto ask without polkit: exit $rc, want 7"
note "no polkit: AuthorizationUnavailable, sotto exits 7"
svc_stop_sottod
echo PASS

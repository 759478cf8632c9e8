#!/bin/bash
# sotto-test: system-wide
# Interactive authorization with the real polkitd and a real agent
# (pkttyagent on a pty, answering with the test user's password, checked by
# PAM through polkit-agent-helper-1).  Rules make the test user authenticate
# as itself: auth_self for manage-models, auth_self_keep for configure.  On
# one connection:
# - without the ALLOW_INTERACTIVE_AUTHORIZATION flag: InteractiveAuthorizationRequired,
#   and no agent is asked;
# - with it: the agent asks, the password is typed, the call goes through;
# - auth_self (one-shot): the next call asks again (not cached);
# - auth_self_keep: the next call, even without the flag, goes through from
#   the cache with no new check and no new password.
# polkit-agent-helper-1 is setuid root and clears its environment, so it
# reaches polkitd only on the default system bus socket: the test links
# /run/dbus/system_bus_socket to its private bus when no system bus is there.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/polkit.sh"
for c in pkttyagent script chpasswd mkfifo; do command -v $c >/dev/null || skip "$c is not installed"; done
[ -u /usr/lib/polkit-1/polkit-agent-helper-1 ] || skip "polkit-agent-helper-1 is missing or not setuid"
SYSBUS=/run/dbus/system_bus_socket
[ -e "$SYSBUS" ] || [ -L "$SYSBUS" ] && skip "a system bus runs here ($SYSBUS): the agent helper would talk to it"
pk_setup polkit-interactive
pk_bus
trap 'pk_cleanup; [ -L "$SYSBUS" ] && [ "$(readlink "$SYSBUS")" = "$SVC_DIR/bus/bus.sock" ] && rm -f "$SYSBUS"' EXIT
mkdir -p /run/dbus
ln -s "$SVC_DIR/bus/bus.sock" "$SYSBUS"
pk_install_policy
pk_log_rules
cat > "$SVC_DIR/20-sotto-test-self.rules" <<'EOR'
polkit.addRule(function(action, subject) {
        if (subject.user != "sotto-pk-ia")
                return polkit.Result.NOT_HANDLED;
        if (action.id == "org.sotto.manage-models")
                return polkit.Result.AUTH_SELF;
        if (action.id == "org.sotto.configure")
                return polkit.Result.AUTH_SELF_KEEP;
});
EOR
pk_install_rules "$SVC_DIR/20-sotto-test-self.rules" 20-sotto-test-self.rules
pk_start_polkitd
pk_user sotto-pk-ia
PW="Sotto-test-$$-pw"
echo "sotto-pk-ia:$PW" | chpasswd || fail "chpasswd"
svc_start_sottod $(svc_model_args 2000) --polkit

rm -f "$SVC_DIR/go"
pk_client sotto-pk-ia interactive-seq "$SVC_DIR/go" > "$SVC_DIR/calls" 2>&1 &
CL=$!
PIDS="$PIDS $CL"
i=0; until grep -q '^pid' "$SVC_DIR/calls" 2>/dev/null; do
	i=$((i+1)); [ $i -gt 200 ] && fail "client: $(cat "$SVC_DIR/calls")"; sleep 0.05
done
P=$(awk '/^pid/ { print $2 }' "$SVC_DIR/calls")

# The agent, for the client's process, on a pty; a feeder types the
# password at each prompt.  (Run as root: root may register an agent for
# any process, and the helper it starts then keeps no setuid transition.)
mkfifo "$SVC_DIR/agent.in"
script -qfec "pkttyagent --process $P" /dev/null < "$SVC_DIR/agent.in" > "$SVC_DIR/agent.out" 2>&1 &
AG=$!
PIDS="$PIDS $AG"
exec 7> "$SVC_DIR/agent.in"
(
	n=0
	while :; do
		c=$(grep -c "Password:" "$SVC_DIR/agent.out" 2>/dev/null || true)
		if [ "$c" -gt "$n" ]; then echo "$PW" >&7; n=$c; fi
		sleep 0.05
	done
) &
FEED=$!
PIDS="$PIDS $FEED"
i=0; until grep -q "Registered Authentication Agent for unix-process:$P:" "$SVC_DIR/polkitd.log"; do
	i=$((i+1)); [ $i -gt 200 ] && fail "pkttyagent did not register: $(cat "$SVC_DIR/agent.out")"; sleep 0.05
done
touch "$SVC_DIR/go"
i=0; while kill -0 $CL 2>/dev/null; do
	i=$((i+1)); [ $i -gt 600 ] && fail "the calls did not finish: $(cat "$SVC_DIR/calls"); agent: $(cat "$SVC_DIR/agent.out")"
	sleep 0.05
done
kill $FEED 2>/dev/null || true
exec 7>&-

got=$(grep -v '^pid\|^name' "$SVC_DIR/calls" | cut -d' ' -f1 | tr '\n' ' ')
want="org.freedesktop.DBus.Error.InteractiveAuthorizationRequired ok ok ok ok "
[ "$got" = "$want" ] || fail "calls: got [$got], want [$want]; agent: $(cat "$SVC_DIR/agent.out")"
prompts=$(grep -c "Password:" "$SVC_DIR/agent.out" || true)
[ "$prompts" = 3 ] || fail "$prompts password prompts, want 3 (manage-models twice, configure once)"
n_mm=$(pk_checks | grep -c "org.sotto.manage-models sotto-pk-ia $P\$" || true)
n_cf=$(pk_checks | grep -c "org.sotto.configure sotto-pk-ia $P\$" || true)
[ "$n_mm" = 3 ] || fail "manage-models: $n_mm polkit checks, want 3 (one-shot answers are not kept)"
[ "$n_cf" = 1 ] || fail "configure: $n_cf polkit checks, want 1 (auth_self_keep is kept for the connection)"
grep -q "successfully authenticated as unix-user:sotto-pk-ia to gain ONE-SHOT authorization for action org.sotto.manage-models" \
	"$SVC_DIR/polkitd.log" || fail "polkitd did not log the one-shot authentication"
note "interactive: 3 prompts; auth_self asked each time (3 checks), auth_self_keep once then cached (1 check)"
svc_stop_sottod
echo PASS

#!/bin/bash
# sotto-test: system-wide
# sottod on a private system-type bus with the real polkitd: the actions of
# polkit/org.sotto.policy decide, for test users made with useradd (uid 0 is
# always authorized by polkit, so root proves nothing):
# - generate is allowed in any session (Ask streams), dictate is refused to
#   a session polkit sees as not local and active (every session here: there
#   is no logind), configure (Admin.GetAllUsage, ReloadConfig, SetQuota;
#   sotto usage --all) and manage-models need an administrator;
# - the example rules file (polkit/50-sotto-example.rules) lets a member of
#   group sotto-admin configure (Admin.GetAllUsage, Admin.SetQuota), and
#   only a member;
# - one check per connection and action: later calls use the cached answer,
#   a new connection is checked afresh, also when it gets the pid of an
#   authorized caller that has exited; a change of polkit's rules empties
#   the cache; Text.Ask, Text.OpenChat and Chat.Send all ask for generate;
# - without polkitd, or when polkitd does not know the actions, sottod
#   refuses with AuthorizationUnavailable.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/polkit.sh"
pk_setup polkit-authorize
pk_bus
pk_install_policy
pk_log_rules
pk_start_polkitd
pk_user sotto-pk-user
pk_user sotto-pk-adm sotto-admin
svc_start_sottod $(svc_model_args 2000) --polkit
grep -q "authorization: asking polkit" "$SVC_DIR/sottod.log" || fail "sottod does not say it asks polkit"
uid=$(awk '/^Uid:/ { print $2 }' /proc/$SOTTOD_PID/status)
[ "$uid" != 0 ] || fail "sottod runs as root: the owner annotation would not be tested"

expect() { # what output-file regex
	grep -qE "$3" "$2" || fail "$1: want /$3/, got: $(grep -v '^pid\|^name\|^done\|^end' "$2")"
}

# --- the defaults
pk_client sotto-pk-user authorize org.sotto.generate > "$SVC_DIR/gen" || fail "client"
expect "generate" "$SVC_DIR/gen" '^ok$'
pk_client sotto-pk-user authorize org.sotto.dictate > "$SVC_DIR/dict" || fail "client"
expect "dictate from a non-local session" "$SVC_DIR/dict" '^org\.sotto\.Sotto1\.Error\.NotAuthorized .*dictate'
pk_client sotto-pk-user authorize org.sotto.configure > "$SVC_DIR/conf" || fail "client"
expect "configure, not interactive" "$SVC_DIR/conf" \
	'^org\.freedesktop\.DBus\.Error\.InteractiveAuthorizationRequired '
pk_client sotto-pk-user authorize org.sotto.configure interactive > "$SVC_DIR/conf-i" || fail "client"
expect "configure, interactive, no agent" "$SVC_DIR/conf-i" '^org\.sotto\.Sotto1\.Error\.NotAuthorized '
pk_client sotto-pk-user authorize org.sotto.manage-models > "$SVC_DIR/mm" || fail "client"
expect "manage-models" "$SVC_DIR/mm" '^org\.freedesktop\.DBus\.Error\.InteractiveAuthorizationRequired '
pk_client sotto-pk-user authorize org.example.nothing > "$SVC_DIR/unknown" || fail "client"
expect "unknown action" "$SVC_DIR/unknown" '^org\.sotto\.Sotto1\.Error\.InvalidInput '
note "defaults: generate yes, dictate no, configure/manage-models need an administrator"

# The real dictation method: refused before anything starts (no dictation
# object, no sotto-capture).
pk_client sotto-pk-user dictate > "$SVC_DIR/sd" || fail "client"
expect "Speech.StartDictation from a non-local session" "$SVC_DIR/sd" '^org\.sotto\.Sotto1\.Error\.NotAuthorized .*dictate'
grep -q "dictation [0-9]* started" "$SVC_DIR/sottod.log" && fail "a refused dictation was started"
pgrep -u sotto -x sotto-capture > /dev/null && fail "sotto-capture runs after a refused dictation"
note "Speech.StartDictation refused to a session polkit does not see as local and active"

# A real Ask through the check, as the user, with the CLI.
out=$(setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups "$SOTTO" --address "$BUS_ADDRESS" ask \
	--max-tokens 8 --temperature 0 "Once upon a time" 2>"$SVC_DIR/ask.err") || fail "Ask as a user: $(cat "$SVC_DIR/ask.err")"
[ -n "$out" ] || fail "Ask as a user: empty answer"

# The Admin methods that need org.sotto.configure refuse the user; its own
# usage needs nothing.
A() { # user member...
	local u=$1; shift
	setpriv --reuid="$u" --regid="$u" --init-groups busctl --address="$BUS_ADDRESS" \
		--allow-interactive-authorization=no call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Admin "$@"
}
for call in GetAllUsage ReloadConfig "SetQuota sss '' MaxConcurrentRequests 4"; do
	eval A sotto-pk-user $call > "$SVC_DIR/admin" 2>&1 && fail "Admin.$call went through for a user: $(cat "$SVC_DIR/admin")"
	grep -qi "authentication is required" "$SVC_DIR/admin" || fail "Admin.$call: $(cat "$SVC_DIR/admin")"
done
A sotto-pk-user GetUsage > "$SVC_DIR/own-usage" 2>&1 || fail "Admin.GetUsage (one's own): $(cat "$SVC_DIR/own-usage")"
rc=0; setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups "$SOTTO" --address "$BUS_ADDRESS" usage --all \
	> /dev/null 2>&1 < /dev/null || rc=$?
[ $rc = 7 ] || fail "sotto usage --all as a user: exit $rc, want 7"
note "Admin.GetAllUsage, ReloadConfig, SetQuota refused to a user (sotto usage --all exit 7); GetUsage allowed"

# --- the example rules file: group sotto-admin may configure
# A connection of the member asks before the rule exists and again after:
# polkit's Changed signal empties the cache, so the new rule applies to it.
pk_client sotto-pk-adm twice org.sotto.configure "$SVC_DIR/go-adm" > "$SVC_DIR/adm0" 2>&1 &
ADM=$!
PIDS="$PIDS $ADM"
i=0; until grep -q '^first$' "$SVC_DIR/adm0" 2>/dev/null; do
	i=$((i+1)); [ $i -gt 200 ] && fail "client: $(cat "$SVC_DIR/adm0")"; sleep 0.05
done
pk_add_rules "$ROOT/polkit/50-sotto-example.rules" 50-sotto-example.rules
touch "$SVC_DIR/go-adm"
wait $ADM || fail "client"
[ "$(grep -v '^pid\|^name\|^first' "$SVC_DIR/adm0" | cut -d' ' -f1 | tr '\n' ' ')" = \
	"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired ok " ] ||
	fail "one connection before and after the rule: $(cat "$SVC_DIR/adm0")"
pk_client sotto-pk-adm authorize org.sotto.configure > "$SVC_DIR/adm1" || fail "client"
expect "sotto-admin member with the rule" "$SVC_DIR/adm1" '^ok$'
A sotto-pk-adm GetAllUsage > "$SVC_DIR/adm-all" 2>&1 || fail "Admin.GetAllUsage as a sotto-admin member: $(cat "$SVC_DIR/adm-all")"
A sotto-pk-adm SetQuota sss '' MaxConcurrentRequests 4 > "$SVC_DIR/adm-set" 2>&1 ||
	fail "Admin.SetQuota as a sotto-admin member: $(cat "$SVC_DIR/adm-set")"
grep -q "quota set at run time" "$SVC_DIR/sottod.log" || fail "SetQuota did not reach the quota code"
pk_client sotto-pk-adm authorize org.sotto.manage-models > "$SVC_DIR/adm2" || fail "client"
expect "sotto-admin member, manage-models" "$SVC_DIR/adm2" '^ok$'
pk_client sotto-pk-adm authorize org.sotto.dictate > "$SVC_DIR/adm3" || fail "client"
expect "sotto-admin member, dictate (the rule does not grant it)" "$SVC_DIR/adm3" 'NotAuthorized'
# What an active local session gets from the defaults, granted by a rule:
# the dictation call then gets past authorization.
cat > "$SVC_DIR/40-sotto-test-dictate.rules" <<'EOR'
polkit.addRule(function(action, subject) {
        if (action.id == "org.sotto.dictate" && subject.user == "sotto-pk-adm")
                return polkit.Result.YES;
});
EOR
pk_add_rules "$SVC_DIR/40-sotto-test-dictate.rules" 40-sotto-test-dictate.rules
pk_client sotto-pk-adm dictate > "$SVC_DIR/sd2" || fail "client"
grep -q "NotAuthorized\|InteractiveAuthorizationRequired\|AuthorizationUnavailable" "$SVC_DIR/sd2" &&
	fail "dictate granted by a rule, still refused: $(cat "$SVC_DIR/sd2")"
note "dictate granted by a rule: StartDictation gets past authorization ($(grep -v '^pid\|^name' "$SVC_DIR/sd2" | cut -c1-60))"
pk_client sotto-pk-user authorize org.sotto.configure > "$SVC_DIR/conf2" || fail "client"
expect "a non-member with the rule" "$SVC_DIR/conf2" 'InteractiveAuthorizationRequired'
note "the example rule lets sotto-admin members configure, nobody else"

# --- caching: four calls on one connection are one check
before=$(pk_checks | grep -c "org.sotto.generate sotto-pk-user" || true)
pk_client sotto-pk-user authorize org.sotto.generate no 4 > "$SVC_DIR/cache" || fail "client"
[ "$(grep -c '^ok$' "$SVC_DIR/cache")" = 4 ] || fail "cached calls: $(cat "$SVC_DIR/cache")"
pid=$(awk '/^pid/ { print $2 }' "$SVC_DIR/cache")
n=$(pk_checks | grep -c "org.sotto.generate sotto-pk-user $pid\$" || true)
[ "$n" = 1 ] || fail "4 calls of one connection made $n polkit checks, want 1"
# and a new connection is a new check
pk_client sotto-pk-user authorize org.sotto.generate > /dev/null || fail "client"
after=$(pk_checks | grep -c "org.sotto.generate sotto-pk-user" || true)
[ "$after" = $((before + 2)) ] || fail "two connections made $((after - before)) checks, want 2"
note "one polkit check per connection and action"

# --- pid reuse: an authorized caller exits; a process of another user that
# gets its pid is checked afresh and refused.
pk_client sotto-pk-adm authorize org.sotto.configure > "$SVC_DIR/reuse-a" || fail "client"
expect "first caller" "$SVC_DIR/reuse-a" '^ok$'
P=$(awk '/^pid/ { print $2 }' "$SVC_DIR/reuse-a")
got=""
if [ -w /proc/sys/kernel/ns_last_pid ]; then
	for try in $(seq 1 30); do
		echo $((P - 1)) > /proc/sys/kernel/ns_last_pid 2>/dev/null || break
		# A simple command in the background: one fork, then exec (the pid stays).
		setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups "$BUILD/tests/polkit-client" \
			"$BUS_ADDRESS" authorize org.sotto.configure > "$SVC_DIR/reuse-b" &
		wait $! || fail "client"
		got=$(awk '/^pid/ { print $2 }' "$SVC_DIR/reuse-b")
		[ "$got" = "$P" ] && break
	done
fi
if [ "$got" = "$P" ]; then
	expect "a new caller with the pid of an authorized one" "$SVC_DIR/reuse-b" 'InteractiveAuthorizationRequired'
	pk_checks | grep -q "org.sotto.configure sotto-pk-user $P\$" || fail "no fresh polkit check for the reused pid"
	note "pid $P reused by another user's process: checked afresh and refused"
else
	note "could not get pid $P again (ns_last_pid not writable or raced): pid reuse not exercised"
fi

# --- every generating method asks: a rule that refuses generate to the
# user reaches an open chat (Chat.Send), Ask and OpenChat.
pk_client sotto-pk-user chat-send "$SVC_DIR/go-chat" > "$SVC_DIR/chat" 2>&1 &
CH=$!
PIDS="$PIDS $CH"
i=0; until grep -q '^opened$' "$SVC_DIR/chat" 2>/dev/null; do
	i=$((i+1)); [ $i -gt 200 ] && fail "chat client: $(cat "$SVC_DIR/chat")"; sleep 0.05
done
cat > "$SVC_DIR/30-sotto-test-nogen.rules" <<'EOR'
polkit.addRule(function(action, subject) {
        if (action.id == "org.sotto.generate" && subject.user == "sotto-pk-user")
                return polkit.Result.NO;
});
EOR
pk_add_rules "$SVC_DIR/30-sotto-test-nogen.rules" 30-sotto-test-nogen.rules
touch "$SVC_DIR/go-chat"
wait $CH || fail "chat client"
expect "Chat.Send after generate was withdrawn" "$SVC_DIR/chat" '^org\.sotto\.Sotto1\.Error\.NotAuthorized$'
rc=0; setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups "$SOTTO" --address "$BUS_ADDRESS" ask \
	--max-tokens 4 hello > /dev/null 2>"$SVC_DIR/nogen-ask" || rc=$?
[ $rc = 7 ] || fail "sotto ask refused generate: exit $rc, want 7 ($(cat "$SVC_DIR/nogen-ask"))"
rc=0; setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups "$SOTTO" --address "$BUS_ADDRESS" explain \
	/dev/null "what is this?" > /dev/null 2>"$SVC_DIR/nogen-explain" || rc=$?
[ $rc = 7 ] || fail "sotto explain refused generate: exit $rc, want 7 ($(cat "$SVC_DIR/nogen-explain"))"
setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups busctl --address="$BUS_ADDRESS" \
	--allow-interactive-authorization=no call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Text OpenChat \
	a{sv} 0 > "$SVC_DIR/nogen-open" 2>&1 && fail "OpenChat went through: $(cat "$SVC_DIR/nogen-open")"
grep -q "not authorized" "$SVC_DIR/nogen-open" || fail "OpenChat: $(cat "$SVC_DIR/nogen-open")"
pk_client sotto-pk-adm authorize org.sotto.generate > "$SVC_DIR/gen-other" || fail "client"
expect "another user keeps generate" "$SVC_DIR/gen-other" '^ok$'
note "generate withdrawn by a rule: Chat.Send, Ask, Explain (exit 7) and OpenChat refused; others unaffected"

# --- polkitd without sotto's actions (the policy file removed): polkit
# fails the check (for a non-root sottod: it is no longer the action owner);
# sottod refuses, naming polkit's reason.
rm -f /usr/share/polkit-1/actions/org.sotto.policy
i=0; while :; do
	pk_client sotto-pk-adm authorize org.sotto.generate > "$SVC_DIR/noact" || fail "client"
	grep -q 'AuthorizationUnavailable' "$SVC_DIR/noact" && break
	i=$((i+1)); [ $i -gt 100 ] && fail "without the actions: $(cat "$SVC_DIR/noact")"
	sleep 0.05
done
expect "without the actions" "$SVC_DIR/noact" 'AuthorizationUnavailable .*polkit failed: .*(not registered|trusted callers)'
note "actions not installed: AuthorizationUnavailable ($(grep -o 'polkit failed: [^;]*' "$SVC_DIR/noact"))"

# --- without polkitd: fail closed, with a named error
kill "$POLKITD_PID"; wait "$POLKITD_PID" 2>/dev/null || true
pk_client sotto-pk-user authorize org.sotto.generate > "$SVC_DIR/nopk" || fail "client"
expect "without polkitd" "$SVC_DIR/nopk" '^org\.sotto\.Sotto1\.Error\.AuthorizationUnavailable .*polkit'
rc=0; setpriv --reuid=sotto-pk-user --regid=sotto-pk-user --init-groups "$SOTTO" --address "$BUS_ADDRESS" ask \
	--max-tokens 4 hello > /dev/null 2>"$SVC_DIR/nopk-ask" || rc=$?
[ $rc = 7 ] || fail "sotto ask without polkitd: exit $rc, want 7"
grep -qi "polkit" "$SVC_DIR/nopk-ask" || fail "Ask without polkitd: $(cat "$SVC_DIR/nopk-ask")"
note "without polkitd: AuthorizationUnavailable (sotto ask exit $rc)"
svc_stop_sottod
echo PASS

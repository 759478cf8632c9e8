#!/bin/bash
# sotto-test: system-wide
# A polkit check is asynchronous: while polkitd takes 2 s over one user's
# check (a rule that runs sleep 2), sottod keeps serving another user, whose
# Ask streams and completes before the slow check returns; the slow check
# then succeeds.  Calls of one connection waiting for the same check all get
# its answer from a single polkit check.  sottod is the sanitizer build.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/polkit.sh"
pk_setup polkit-nonblocking
# The ASan+UBSan sottod, started directly as the service user (LeakSanitizer
# cannot follow a uid switch): the waiting queue and the re-dispatch run
# under the sanitizers, and a leak fails the stop at the end.
if [ -x "$BUILD/san/sottod" ]; then SOTTOD=$BUILD/san/sottod; SOTTOD_AS_USER=1; fi
pk_bus
pk_install_policy
pk_log_rules
cat > "$SVC_DIR/20-sotto-test-slow.rules" <<'EOR'
polkit.addRule(function(action, subject) {
        if (action.id == "org.sotto.manage-models" && subject.user == "sotto-pk-slow") {
                polkit.spawn(["/bin/sleep", "2"]);
                return polkit.Result.YES;
        }
});
EOR
pk_install_rules "$SVC_DIR/20-sotto-test-slow.rules" 20-sotto-test-slow.rules
pk_start_polkitd
pk_user sotto-pk-slow
pk_user sotto-pk-user
svc_start_sottod $(svc_model_args 2000) --polkit

# The fast user authorizes generate first (cached for its connection) and
# then waits for the go.
rm -f "$SVC_DIR/go"
pk_client sotto-pk-user hold-ask "$SVC_DIR/go" > "$SVC_DIR/fast" 2>&1 &
FAST=$!
PIDS="$PIDS $FAST"
i=0; until grep -q '^authorized$' "$SVC_DIR/fast" 2>/dev/null; do
	i=$((i+1)); [ $i -gt 200 ] && fail "fast client: $(cat "$SVC_DIR/fast")"; sleep 0.05
done

# The slow check.
pk_client sotto-pk-slow authorize org.sotto.manage-models no 1 > "$SVC_DIR/slow" 2>&1 &
SLOW=$!
PIDS="$PIDS $SLOW"
i=0; until pk_checks | grep -q "org.sotto.manage-models sotto-pk-slow"; do
	i=$((i+1)); [ $i -gt 200 ] && fail "the slow check did not reach polkitd"; sleep 0.02
done
# polkitd is now inside the 2 s rule: the fast user's Ask goes ahead.
touch "$SVC_DIR/go"
wait $FAST || fail "fast client failed"
wait $SLOW || fail "slow client failed"
grep -q '^ok$' "$SVC_DIR/fast" || fail "fast Ask: $(cat "$SVC_DIR/fast")"
grep -q '^ok$' "$SVC_DIR/slow" || fail "slow check: $(cat "$SVC_DIR/slow")"
fast_end=$(awk '/^end/ { print $2 }' "$SVC_DIR/fast")
slow_end=$(awk '/^end/ { print $2 }' "$SVC_DIR/slow")
first=$(awk '/^first-byte-ms/ { print $2 }' "$SVC_DIR/fast")
slow_s=$(awk '/^done/ { print $2 }' "$SVC_DIR/slow")
note "slow check took ${slow_s} s; the other user's Ask: first byte after ${first} ms, done $((slow_end - fast_end)) ms before the slow check"
awk -v s="$slow_s" 'BEGIN { exit !(s >= 1.8) }' || fail "the slow check took $slow_s s: the rule did not run?"
[ "$fast_end" -lt "$slow_end" ] || fail "the Ask ended after the slow check: sottod waited for polkit"
[ "$first" -lt 1500 ] || fail "first byte after $first ms while a check was pending"

# Calls of one connection waiting on one check: one polkit check answers
# all of them (the 2 s rule makes sure they all arrive while it runs).
pk_client sotto-pk-slow burst org.sotto.manage-models 5 > "$SVC_DIR/burst" || fail "burst client"
[ "$(grep -c '^ok$' "$SVC_DIR/burst")" = 5 ] || fail "burst: $(cat "$SVC_DIR/burst")"
bp=$(awk '/^pid/ { print $2 }' "$SVC_DIR/burst")
n=$(pk_checks | grep -c "org.sotto.manage-models sotto-pk-slow $bp\$" || true)
[ "$n" = 1 ] || fail "5 waiting calls made $n polkit checks, want 1"
note "5 calls waiting on one check: 1 polkit check, $(awk '/^done/ { print $2 }' "$SVC_DIR/burst") s"
svc_stop_sottod
echo PASS

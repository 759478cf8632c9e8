#!/bin/bash
# sotto-test: system-wide
# Who the caller is, and what survives:
# - a process that rewrites its argv[0] and comm (started through a symlink
#   named like another application, with exec -a) keeps its real identity:
#   its scope's AppID in a scope, its executable's real path when
#   unconfined (run as sottod's own user, so sottod may read /proc/PID/exe);
#   another user's unconfined process is "unconfined";
# - a pid reused after the original caller exited (forced with
#   /proc/sys/kernel/ns_last_pid) is a new caller: it gets its own
#   application's usage, not the exited caller's;
# - usage survives kill -9 of sottod (written within a second);
# - a broken drop-in gives file:line on ReloadConfig and on SIGHUP, and the
#   last good configuration stays; a fixed one applies.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/cgroup.sh"
svc_setup identity-usage
trap 'svc_cleanup; cg_cleanup' EXIT
svc_bus session
cg_setup
A=app-test-org.example.A-1.scope
B=app-test-org.example.B-1.scope
mkdir -p "$SVC_DIR/sotto.conf.d"
printf '[App org.example.A]\nGeneratedTokensPerMinute = 6000\n' > "$SVC_DIR/sotto.conf"
start() {
	svc_start_sottod --config "$SVC_DIR/sotto.conf" --state-dir "$SVC_DIR/state" \
		--model "$(svc_fake_model 1000 4096 0)" --worker "$BUILD/tests/sotto-worker-fake"
}
start
jfield() { grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4; }
jnum() { grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }

# ---- argv and comm are not the identity ----
mkdir -p "$SVC_DIR/bin"
ln -sf "$SOTTO" "$SVC_DIR/bin/org.evil.Spoof"
chmod 755 "$SVC_DIR/bin"
spoof() { (exec -a org.evil.Spoof "$SVC_DIR/bin/org.evil.Spoof" "$@"); }
u=$(cg_run $A bash -c "exec -a org.evil.Spoof '$SVC_DIR/bin/org.evil.Spoof' --address '$BUS_ADDRESS' --json usage")
[ "$(echo "$u" | jfield application)" = org.example.A ] || fail "in scope A with a spoofed argv/comm: $u"
# Unconfined, as sottod's own user: the executable's real path.
svc_user
real=$(readlink -f "$SOTTO")
u=$(setpriv --reuid="$SVC_USER" --regid="$SVC_USER" --clear-groups \
	bash -c "exec -a org.evil.Spoof '$SVC_DIR/bin/org.evil.Spoof' --address '$BUS_ADDRESS' --json usage") ||
	fail "usage as $SVC_USER"
[ "$(echo "$u" | jfield kind)" = executable ] || fail "unconfined as $SVC_USER: $u"
[ "$(echo "$u" | jfield application)" = "$real" ] || fail "executable $(echo "$u" | jfield application), want $real"
note "argv[0]/comm org.evil.Spoof: identified as $(echo "$u" | jfield application)"
# A process of another user (root): sottod may not read its executable.
u=$(spoof --address "$BUS_ADDRESS" --json usage)
[ "$(echo "$u" | jfield kind)" = unconfined ] && [ "$(echo "$u" | jfield application)" = unconfined ] ||
	fail "root's unconfined process: $u"

# ---- a reused pid does not inherit usage ----
cg_run $A "$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 7 hello > /dev/null || fail "A's request"
reused=no
for try in $(seq 1 40); do
	cg_run $A sh -c 'echo $$ > "$0"; exec "$@"' "$SVC_DIR/pid1" "$SOTTO" --address "$BUS_ADDRESS" \
		--json usage > "$SVC_DIR/u1" || fail "usage in A"
	p=$(cat "$SVC_DIR/pid1")
	[ "$(jfield application < "$SVC_DIR/u1")" = org.example.A ] || fail "first caller: $(cat "$SVC_DIR/u1")"
	# The next fork gets pid p, unless another process on the machine forks first.
	echo $((p - 1)) > /proc/sys/kernel/ns_last_pid 2>/dev/null || skip "ns_last_pid is not writable"
	cg_run $B sh -c 'echo $$ > "$0"; exec "$@"' "$SVC_DIR/pid2" "$SOTTO" --address "$BUS_ADDRESS" \
		--json usage > "$SVC_DIR/u2" || fail "usage in B"
	if [ "$(cat "$SVC_DIR/pid2")" = "$p" ]; then reused=yes; break; fi
done
[ $reused = yes ] || skip "could not get a pid reused in 40 tries (a busy machine)"
note "pid $p reused after $try tries: first $(jfield application < "$SVC_DIR/u1") with $(jnum requests < "$SVC_DIR/u1") requests, then $(jfield application < "$SVC_DIR/u2") with $(jnum requests < "$SVC_DIR/u2")"
[ "$(jfield application < "$SVC_DIR/u2")" = org.example.B ] || fail "the reused pid is $(cat "$SVC_DIR/u2")"
[ "$(jnum requests < "$SVC_DIR/u2")" = 0 ] || fail "the reused pid inherited usage: $(cat "$SVC_DIR/u2")"
[ "$(jnum requests < "$SVC_DIR/u1")" = 1 ] || fail "A's usage: $(cat "$SVC_DIR/u1")"

# ---- usage survives kill -9 ----
cg_run $B "$SOTTO" --address "$BUS_ADDRESS" ask --max-tokens 11 hi > /dev/null || fail "B's request"
sleep 1.1 # the promise: at most the last second is lost
before=$("$SOTTO" --address "$BUS_ADDRESS" --json usage --all | tr '}' '\n' | sed 's/^[][,]*//' | grep -v '"unconfined"\|"executable"\|^$' | sort)
kill -9 "$SOTTOD_PID"
wait "$SOTTOD_PID" 2>/dev/null || true
start
after=$("$SOTTO" --address "$BUS_ADDRESS" --json usage --all | tr '}' '\n' | sed 's/^[][,]*//' | grep -v '"unconfined"\|"executable"\|^$' | sort)
note "after kill -9: $(echo "$after" | grep -o '"application":"[^"]*","requests":[0-9]*,"prompt-tokens":[0-9]*,"generated-tokens":[0-9]*' | tr '\n' ' ')"
[ "$before" = "$after" ] || fail "usage changed across kill -9: before $before after $after"
echo "$after" | grep -q '"application":"org.example.B","requests":1,"prompt-tokens":[0-9]*,"generated-tokens":11' ||
	fail "B's usage lost: $after"

# ---- a broken drop-in keeps the last good configuration ----
state() { cg_run $A "$SOTTO" --address "$BUS_ADDRESS" --json quota | grep -o '"GeneratedTokensPerMinute":{"value":[0-9]*' | grep -o '[0-9]*$'; }
[ "$(state)" = 6000 ] || fail "A's limit at start: $(state)"
printf '[App org.example.A]\n# a typo\nGeneratedTokensPerMinute = lots\n' > "$SVC_DIR/sotto.conf.d/50-broken.conf"
set +e
err=$(busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Admin ReloadConfig 2>&1)
set -e
echo "$err" | grep -q "sotto.conf.d/50-broken.conf:3: GeneratedTokensPerMinute must be a whole number" ||
	fail "ReloadConfig on a broken file: $err"
kill -HUP "$SOTTOD_PID"
i=0; while ! grep -q "50-broken.conf:3: GeneratedTokensPerMinute" "$SVC_DIR/sottod.log" ||
	! grep -q "keeping the last good configuration" "$SVC_DIR/sottod.log"; do
	i=$((i+1)); [ $i -gt 100 ] && fail "no file:line error on SIGHUP"; sleep 0.05
done
svc_wait_ready 10
[ "$(state)" = 6000 ] || fail "a broken file changed A's limit to $(state)"
printf '[App org.example.A]\nGeneratedTokensPerMinute = 120\n' > "$SVC_DIR/sotto.conf.d/50-broken.conf"
busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Admin ReloadConfig ||
	fail "ReloadConfig of a good file"
[ "$(state)" = 120 ] || fail "the drop-in did not apply: $(state)"
svc_stop_sottod
echo PASS

#!/bin/bash
# sotto-test: system-wide
# Quotas per application, with test applications in their own cgroup scopes
# (directories in the cgroup2 file system, as systemd makes them):
# - org.example.A (GeneratedTokensPerMinute = 60, one token a second) runs
#   5 tokens into debt: its next call is refused with QuotaExceeded whose
#   message says "limit=GeneratedTokensPerMinute retry-after=N" with N the
#   debt at one token a second; one second before N it is still refused, at
#   N it is admitted: correct to the second;
# - meanwhile org.example.B, with no limit, is served at its normal speed;
# - MaxConcurrentRequests refuses the request over the limit;
# - SetQuota (sotto quota APP KEY=VALUE) applies at once;
# - usage is per application, GetAllUsage lists them, and the usage file
#   holds counts only, never prompt text.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/cgroup.sh"
svc_setup quota
trap 'svc_cleanup; cg_cleanup' EXIT
svc_bus session
cg_setup
A=app-test-org.example.A-1.scope
B=app-test-org.example.B-1.scope
C=app-test-org.example.C-1.scope
D=app-test-org.example.D-1.scope
cat > "$SVC_DIR/sotto.conf" <<EOF
[Daemon]
MaxActive = 4
[App org.example.A]
GeneratedTokensPerMinute = 60
[App org.example.C]
MaxConcurrentRequests = 1
[App org.example.D]
MaxPromptTokens = 6
MaxAnswerTokens = 4
EOF
# 5 ms per token (long enough that a busy machine's wake-up jitter does not
# decide the speed comparison); the text never ends on its own (eos_every 0).
svc_start_sottod --config "$SVC_DIR/sotto.conf" --state-dir "$SVC_DIR/state" \
	--model "$(svc_fake_model 5000 4096 0)" --worker "$BUILD/tests/sotto-worker-fake"
ask() { # scope max-tokens -> JSON statistics on stdout, error on stderr, exit code
	cg_run "$1" "$SOTTO" --address "$BUS_ADDRESS" --json ask --temperature 0 --max-tokens "$2" "the secret prompt text"
}
jnum() { grep -o "\"$1\":[-0-9.e]*" | head -n1 | cut -d: -f2; }

# Identity: the scope names the application.
u=$(cg_run $A "$SOTTO" --address "$BUS_ADDRESS" --json usage)
echo "$u" | grep -q '"application":"org.example.A"' || fail "A is not org.example.A: $u"
echo "$u" | grep -q '"kind":"app"' || fail "A's kind: $u"

# B's normal speed, alone.
base=$(ask $B 100 | jnum tokens-per-second) || fail "B alone"

# A: 65 tokens against 60 a minute; the bucket refills during the 0.33 s of
# generation, so the debt is 4.7 tokens or a little less: 5 s.
ask $A 65 > /dev/null || fail "A's first request"
set +e
err=$(ask $A 10 2>&1 >/dev/null); code=$?
set -e
[ $code = 4 ] || fail "A over its limit exited $code (want 4, over quota): $err"
echo "$err" | grep -q 'org.sotto.Sotto1.Error.QuotaExceeded' || fail "not QuotaExceeded: $err"
retry=$(echo "$err" | sed -n 's/.*limit=GeneratedTokensPerMinute retry-after=\([0-9]*\):.*/\1/p')
[ -n "$retry" ] || fail "no parsable limit=... retry-after=... in: $err"
note "A refused: $(echo "$err" | sed 's/^sotto: the request failed: //')"
[ "$retry" -ge 4 ] && [ "$retry" -le 5 ] || fail "retry-after=$retry, want 5 (4.7 tokens of debt at 1 token/s)"
t_refused=$(date +%s%N)
# Limits are per user: another user's org.example.A has its own bucket.
U=sotto-quota-test
id "$U" >/dev/null 2>&1 || useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$U" ||
	fail "useradd $U"
json=$(cg_run $A setpriv --reuid="$U" --regid="$U" --clear-groups "$SOTTO" --address "$BUS_ADDRESS" --json \
	ask --temperature 0 --max-tokens 10 hi) || fail "another user's org.example.A was refused"
u=$(cg_run $A setpriv --reuid="$U" --regid="$U" --clear-groups "$SOTTO" --address "$BUS_ADDRESS" --json usage)
echo "$u" | grep -q "\"uid\":$(id -u "$U"),\"kind\":\"app\",\"application\":\"org.example.A\",\"requests\":1," ||
	fail "the other user's usage: $u"
# The quota state says the same, without failing a call.
qs=$(cg_run $A "$SOTTO" --address "$BUS_ADDRESS" --json quota)
echo "$qs" | grep -q '"GeneratedTokensPerMinute":{"value":60,"available":-[0-9]\.[0-9]*,"retry-after":[1-5]}' ||
	fail "GetQuotaState: $qs"

# B keeps its speed while A is refused over and over.
( for i in $(seq 1 20); do ask $A 10 > /dev/null 2>&1 || true; done ) &
hammer=$!
during=$(ask $B 100 | jnum tokens-per-second) || fail "B while A is refused"
wait $hammer
note "B: $base tokens/s alone, $during while A is being refused"
awk -v a="$base" -v b="$during" 'BEGIN { exit !(b >= 0.7 * a) }' || fail "B slowed from $base to $during tokens/s"

# One second before the time given: still refused; at it: admitted.
sleep_until() { local ns=$(( t_refused + $1 * 1000000000 - $(date +%s%N) )); [ $ns -gt 0 ] && sleep "$(awk -v n=$ns 'BEGIN { printf "%.3f", n / 1e9 }')"; true; }
sleep_until $(( retry - 1 ))
set +e
err=$(ask $A 1 2>&1 >/dev/null); code=$?
set -e
[ $code = 4 ] || fail "A admitted a second before retry-after=$retry"
sleep_until "$retry"
sleep 0.05
ask $A 1 > /dev/null || fail "A still refused at retry-after=$retry"

# MaxConcurrentRequests = 1: a second request while one runs is refused.
ask $C 200 > "$SVC_DIR/c1" 2>&1 &
c1=$!
sleep 0.2
set +e
err=$(ask $C 5 2>&1 >/dev/null); code=$?
set -e
wait $c1 || fail "C's first request: $(cat "$SVC_DIR/c1")"
[ $code = 4 ] && echo "$err" | grep -q 'limit=MaxConcurrentRequests retry-after=1:' || fail "C's second request: $code $err"

# Size limits: the worker counts the prompt (BOS + one token a byte here,
# --raw), a longer one is refused for good (retry-after=0); answers are cut.
json=$(cg_run $D "$SOTTO" --address "$BUS_ADDRESS" --json ask --raw --max-tokens 50 abcde) || fail "D's short prompt"
[ "$(echo "$json" | jnum prompt-tokens)" = 6 ] || fail "D's prompt tokens: $json"
[ "$(echo "$json" | jnum generated-tokens)" = 4 ] && echo "$json" | grep -q '"stop-reason":"max-tokens"' ||
	fail "MaxAnswerTokens = 4 did not cut the answer: $json"
set +e
err=$(cg_run $D "$SOTTO" --address "$BUS_ADDRESS" ask --raw abcdef 2>&1 >/dev/null); code=$?
set -e
[ $code = 4 ] && echo "$err" | grep -q 'limit=MaxPromptTokens retry-after=0: .*the prompt is 7 tokens and this application may send at most 6' ||
	fail "D's long prompt: $code $err"

# SetQuota at run time (root, no polkit on this private bus).
"$SOTTO" --address "$BUS_ADDRESS" quota org.example.B GeneratedTokensPerMinute=6 > /dev/null || fail "sotto quota"
ask $B 20 > /dev/null || fail "B's request after SetQuota"
set +e
err=$(ask $B 1 2>&1 >/dev/null); code=$?
set -e
[ $code = 4 ] && echo "$err" | grep -q 'limit=GeneratedTokensPerMinute retry-after=' || fail "SetQuota did not apply: $err"
set +e
err=$("$SOTTO" --address "$BUS_ADDRESS" quota org.example.B Bogus=1 2>&1); code=$?
set -e
[ $code = 5 ] && echo "$err" | grep -q "unknown key 'Bogus'" || fail "SetQuota with a bogus key: $code $err"

# Usage per application (refused calls are not requests); counts only.
all=$("$SOTTO" --address "$BUS_ADDRESS" --json usage --all)
echo "$all" | grep -q '"kind":"app","application":"org.example.A","requests":2,' || fail "A's usage: $all"
echo "$all" | grep -q '"application":"org.example.B","requests":3,' || fail "B's usage: $all"
sleep 1.2
grep -q ' org.example.A$' "$SVC_DIR/state/usage" || fail "no usage file: $(ls -la "$SVC_DIR/state")"
! grep -q secret "$SVC_DIR/state/usage" "$SVC_DIR/sottod.log" || fail "prompt text stored or logged"
svc_stop_sottod
echo PASS

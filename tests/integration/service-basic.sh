#!/bin/bash
# The vertical slice on a private session-type bus: sottod owns the name,
# the worker serves, `sotto ask` streams (arguments and standard input),
# `--json` reports statistics, `sotto chat` keeps its context, `sotto
# status` tells the state, SIGTERM ends sottod cleanly.
. "$(dirname "$0")/lib/common.sh"
svc_setup service-basic
svc_bus session
t0=$(date +%s%N)
svc_start_sottod $(svc_model_args 2000)
t1=$(date +%s%N)
note "sottod ready $(( (t1 - t0) / 1000000 )) ms after start (name owned, model mapped, worker ready)"

S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }

S status > "$SVC_DIR/status" || fail "sotto status: exit $?"
grep -q '^State: ready' "$SVC_DIR/status" || fail "status: $(cat "$SVC_DIR/status")"
S --json status | grep -q '"capabilities":\["text"\]' || fail "status --json"

out=$(S ask --max-tokens 20 --temperature 0 Once upon a time) || fail "sotto ask: exit $?"
[ -n "$out" ] || fail "empty answer"
out2=$(S ask --max-tokens 20 --temperature 0 Once upon a time)
[ "$out" = "$out2" ] || fail "greedy answers differ: '$out' vs '$out2'"
note "answer: $out"

json=$(S --json ask --max-tokens 12 --temperature 0 Once upon a time) || fail "ask --json"
echo "$json" | grep -q '"generated-tokens":[0-9]' || fail "no statistics in $json"
echo "$json" | grep -q '"stop-reason":"\(max-tokens\|end-of-text\)"' || fail "stop reason in $json"
note "json: $json"

# Standard input joins the prompt when it is not a terminal.
a=$(echo "some piped text" | S ask --max-tokens 8 --temperature 0 summarize) || fail "ask with stdin"
b=$(S ask --max-tokens 8 --temperature 0 "summarize

some piped text
") || fail "ask"
[ "$a" = "$b" ] || fail "stdin was not appended to the prompt: '$a' vs '$b'"

# Seeds: same seed same answer.
s1=$(S ask --max-tokens 30 --temperature 1 --seed 7 Tell me)
s2=$(S ask --max-tokens 30 --temperature 1 --seed 7 Tell me)
[ "$s1" = "$s2" ] || fail "same seed, different answers"

# Chat: two turns in one context.
printf 'Hello there\nAnd then\n' | S chat --max-tokens 5 --temperature 0 > "$SVC_DIR/chat" || fail "sotto chat: exit $?"
[ -s "$SVC_DIR/chat" ] || fail "chat printed nothing"

# Usage errors and exit codes.
rc=0; S ask >/dev/null 2>&1 < /dev/null || rc=$?
[ $rc = 2 ] || fail "ask without prompt: exit $rc, want 2"
rc=0; S --max-tokens 0 ask x >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "--max-tokens 0: exit $rc, want 2"
rc=0; "$SOTTO" --address "unix:path=$SVC_DIR/nonexistent" status >/dev/null 2>&1 || rc=$?
[ $rc = 3 ] || fail "no bus: exit $rc, want 3"

svc_stop_sottod
grep -q "stopped" "$SVC_DIR/sottod.log" || fail "no clean stop in the log"
echo PASS

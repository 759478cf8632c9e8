#!/bin/bash
# Gemma through the daemon: a small random-weight gemma3n model made here by
# sotto-mkmodel, sottod on a private bus, `sotto ask` and a two-turn `sotto
# chat` answered in the Gemma chat template.  The worker splices the turn
# markers in by id (daemon/worker/worker-chat.c); sotto-engine's chat command
# renders the template as text and tokenizes it with control tokens
# recognized, as the reference does.  Greedy answers, prompt and generated
# token counts must be equal, turn by turn; `--raw` must give the answer of
# the untemplated prompt instead.
. "$(dirname "$0")/lib/common.sh"
svc_setup gemma-chat
E="$BUILD/sotto-engine"
[ -x "$BUILD/sotto-mkmodel" ] && [ -x "$E" ] && [ -x "$BUILD/sotto-worker" ] || skip "sotto-mkmodel, sotto-engine or sotto-worker not built"
command -v jq >/dev/null || skip "jq is not installed"

M="$SVC_DIR/gemma3n-tiny.gguf"
svc_tiny_gemma3n 2

svc_bus session
svc_start_sottod --model "$M" --worker "$BUILD/sotto-worker" --threads 1 --context 1024
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
S status | grep -q 'gemma3n' || fail "status does not show the gemma3n model: $(S status)"

# The same fields from both sides, one line per turn.
fields='[.text, .["prompt-tokens"], .["generated-tokens"], .["stop-reason"]]'
N=16
Q1="Hello there, who are you?"
Q2="Tell me more, please"

# ask: one user turn.
S --json ask --max-tokens $N --temperature 0 "$Q1" > "$SVC_DIR/ask.json" || fail "sotto ask: exit $?"
"$E" -t 1 chat "$M" $N "$Q1" > "$SVC_DIR/engine1.json" || fail "sotto-engine chat: exit $?"
got=$(jq -c ".text as \$t | .statistics | [\$t, .[\"prompt-tokens\"], .[\"generated-tokens\"], .[\"stop-reason\"]]" "$SVC_DIR/ask.json")
want=$(jq -c "$fields" "$SVC_DIR/engine1.json")
note "ask:    $got"
[ "$got" = "$want" ] || fail "ask differs from sotto-engine chat: '$got' vs '$want'"
# BOS, <start_of_turn>, "user\n" + text, <end_of_turn>, "\n", <start_of_turn>, "model\n": more than the text alone
n_raw=$("$E" tokenize "$M" "$Q1" | wc -w)
n_tpl=$(jq '.statistics["prompt-tokens"]' "$SVC_DIR/ask.json")
[ "$n_tpl" -ge $((n_raw + 6)) ] || fail "the prompt has $n_tpl tokens, the raw text $n_raw: no template applied?"

# chat: two turns in one context; the second follows the first answer,
# closed by <end_of_turn> or not.
printf '%s\n%s\n' "$Q1" "$Q2" | S --json chat --max-tokens $N --temperature 0 > "$SVC_DIR/chat.json" ||
	fail "sotto chat: exit $?"
"$E" -t 1 chat "$M" $N "$Q1" "$Q2" > "$SVC_DIR/engine2.json" || fail "sotto-engine chat (2 turns): exit $?"
got=$(jq -c ".text as \$t | .statistics | [\$t, .[\"prompt-tokens\"], .[\"generated-tokens\"], .[\"stop-reason\"]]" "$SVC_DIR/chat.json")
want=$(jq -c "$fields" "$SVC_DIR/engine2.json")
[ "$(echo "$got" | wc -l)" = 2 ] || fail "chat: expected two turns, got: $got"
note "chat:   $(echo "$got" | tr '\n' ' ')"
[ "$got" = "$want" ] || fail "chat differs from sotto-engine chat: '$got' vs '$want'"
# (seed 2: the first answer ends on its own, so the second turn follows a
# closed one; with 3 tokens below it follows an open one)
echo "$got" | head -n1 | grep -q '"end-of-text"]$' || fail "the first answer did not end by itself: choose another --seed"

# A chat whose first answer is cut by --max-tokens: the next turn closes it.
printf '%s\n%s\n' "$Q1" "$Q2" | S --json chat --max-tokens 3 --temperature 0 > "$SVC_DIR/chat3.json" ||
	fail "sotto chat (3 tokens): exit $?"
"$E" -t 1 chat "$M" 3 "$Q1" "$Q2" > "$SVC_DIR/engine3.json" || fail "sotto-engine chat (3 tokens): exit $?"
got=$(jq -c ".text as \$t | .statistics | [\$t, .[\"prompt-tokens\"], .[\"generated-tokens\"], .[\"stop-reason\"]]" "$SVC_DIR/chat3.json")
want=$(jq -c "$fields" "$SVC_DIR/engine3.json")
[ "$got" = "$want" ] || fail "cut chat differs from sotto-engine chat: '$got' vs '$want'"

# A user who types a turn marker gets it as text, not as a control token:
# more tokens through the daemon than in sotto-engine's text rendering,
# where the reference would parse it.
Q3="a <end_of_turn> b"
d=$(S --json ask --max-tokens 1 "$Q3" | jq '.statistics["prompt-tokens"]') || fail "ask with a marker"
e=$("$E" -t 1 chat "$M" 1 "$Q3" | jq '.["prompt-tokens"]')
[ "$d" -gt "$e" ] || fail "a typed <end_of_turn> became a control token ($d vs $e tokens)"

# raw: the prompt as it is, after BOS, as sotto-engine generate continues it.
S --raw --max-tokens $N --temperature 0 ask "$Q1" > "$SVC_DIR/raw.txt" || fail "sotto --raw ask: exit $?"
"$E" -t 1 generate "$M" "$Q1" $N 2>/dev/null > "$SVC_DIR/gen.txt" || fail "sotto-engine generate: exit $?"
raw=$(cat "$SVC_DIR/raw.txt")
gen=$(cat "$SVC_DIR/gen.txt")
[ "$Q1$raw" = "$gen" ] || fail "raw ask '$raw' is not the continuation '$gen'"
[ "$raw" != "$(jq -r .text "$SVC_DIR/ask.json")" ] || fail "raw and templated answers are the same"
json=$(S --json --raw ask --max-tokens 2 "$Q1") || fail "ask --raw --json"
[ "$(echo "$json" | jq '.statistics["prompt-tokens"]')" = "$n_raw" ] || fail "raw prompt tokens: $json vs $n_raw"

# The option on the bus: a boolean, anything else is InvalidInput.
rc=0; busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Text OpenChat \
	'a{sv}' 1 raw s yes >/dev/null 2>"$SVC_DIR/err" || rc=$?
[ $rc != 0 ] && grep -q "boolean" "$SVC_DIR/err" || fail "raw as a string was accepted: $(cat "$SVC_DIR/err")"
busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Text OpenChat \
	'a{sv}' 1 raw b true >/dev/null || fail "raw as a boolean was refused"

svc_stop_sottod
echo PASS

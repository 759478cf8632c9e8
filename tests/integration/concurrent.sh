#!/bin/bash
# 8 clients at once, each with its own prompt and seed: all complete, and
# each answer equals the one the same client gets alone (at temperature 0
# and, with a seed, at temperature 0.8).  With the real engine, the
# temperature-0 answers also equal `sotto-engine greedy` on the same tokens.
. "$(dirname "$0")/lib/common.sh"
svc_setup concurrent
svc_bus session
args=$(svc_model_args 3000)
svc_start_sottod $args --max-active 8
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
prompts=("Once upon a time" "The little dog" "Lily and Tom went" "One day, a cat" "The sun was" \
	"A big red ball" "There was a girl" "The bird sang")
N=24

for t in 0 0.8; do
	for i in 0 1 2 3 4 5 6 7; do
		S ask --max-tokens $N --temperature $t --seed $((100 + i)) "${prompts[$i]}" > "$SVC_DIR/alone.$t.$i" ||
			fail "alone $i failed"
	done
	pids=""
	t0=$(date +%s%N)
	for i in 0 1 2 3 4 5 6 7; do
		"$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens $N --temperature $t --seed $((100 + i)) \
			"${prompts[$i]}" > "$SVC_DIR/conc.$t.$i" 2> "$SVC_DIR/conc.$t.$i.err" &
		pids="$pids $!"
	done
	i=0
	for p in $pids; do wait $p || fail "concurrent client $i failed: $(cat "$SVC_DIR/conc.$t.$i.err")"; i=$((i+1)); done
	t1=$(date +%s%N)
	for i in 0 1 2 3 4 5 6 7; do
		# The JSON text field, unescaped by the same tool that wrote it.
		want=$(cat "$SVC_DIR/alone.$t.$i")
		got=$(sed -n 's/^{"text":"\(.*\)","statistics".*/\1/p' "$SVC_DIR/conc.$t.$i" | sed 's/\\\//\//g; s/\\"/"/g; s/\\n/\n/g; s/\\\\/\\/g')
		[ "$want" = "$got" ] || fail "temperature $t, client $i: alone '$want', together '$got'"
		grep -q '"generated-tokens":'"$N" "$SVC_DIR/conc.$t.$i" || grep -q '"stop-reason":"end-of-text"' "$SVC_DIR/conc.$t.$i" ||
			fail "client $i incomplete: $(cat "$SVC_DIR/conc.$t.$i")"
	done
	note "temperature $t: 8 concurrent answers equal the lone ones ($(( (t1 - t0) / 1000000 )) ms for all 8)"
done

# Against the engine's own greedy decoding (real engine only): the same
# tokens (sotto-engine tokenize), the same ids (sotto-engine greedy, whose
# count must match the service's), the same text (sotto-engine generate,
# greedy by default, which prints the prompt and then the continuation).
if [ -x "$BUILD/sotto-engine" ] && echo "$args" | grep -q stories260K; then
	model="$SHARED/models/stories260K.gguf"
	for i in 0 1 2 3 4 5 6 7; do
		p=${prompts[$i]}
		ids=$("$BUILD/sotto-engine" tokenize "$model" "$p") || fail "sotto-engine tokenize"
		perl -e 'print pack("l<*", @ARGV)' $ids > "$SVC_DIR/tokens.$i.i32"
		greedy=$("$BUILD/sotto-engine" greedy "$model" "$SVC_DIR/tokens.$i.i32" $N 2>/dev/null) || fail "sotto-engine greedy"
		[ "$(echo $greedy | wc -w)" = $N ] || fail "sotto-engine greedy gave $(echo $greedy | wc -w) ids"
		text=$("$BUILD/sotto-engine" generate "$model" "$p" $N 2>/dev/null) || fail "sotto-engine generate"
		want=${text#"$p"}
		got=$(cat "$SVC_DIR/alone.0.$i")
		[ "$want" = "$got" ] || fail "prompt '$p': service '$got', engine '$want'"
		grep -q '"generated-tokens":'"$N" "$SVC_DIR/conc.0.$i" || fail "token count differs from the engine's $N"
	done
	note "temperature 0: all 8 answers equal sotto-engine's greedy continuation ($N tokens each)"
	golden="$SHARED/golden/stories260K.greedy.txt"
	if [ -f "$golden" ]; then
		case "$(cat "$golden")" in
		"$(cat "$SVC_DIR/alone.0.0")"*) note "and \"Once upon a time\" matches the reference peer's golden text" ;;
		*) fail "the answer to 'Once upon a time' differs from $golden" ;;
		esac
	fi
else
	note "the engine comparison needs the real engine (build/sotto-engine, stories260K): not run"
fi
svc_stop_sottod
echo PASS

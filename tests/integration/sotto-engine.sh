#!/bin/bash
# sotto-engine, the developer command line other checks rely on: its four
# commands on the real stories260K model against the golden data, and its
# errors (a message on stderr and a nonzero exit status).
set -u
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
E=$BUILD/sotto-engine
M=$SHARED/models/stories260K.gguf
G=$SHARED/golden
[ -x "$E" ] || { echo "skipped: $E not built"; exit 77; }
[ -f "$M" ] && [ -f "$G/stories260K.greedy.i32" ] || { echo "skipped: no shared golden data at $SHARED"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ids() { od -An -v -td4 -w4 "$1" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; }

# tokenize: run.c's encoding of the prompt, with and without BOS
want=$(ids "$G/stories260K.prompt.i32")
got=$("$E" tokenize "$M" "Once upon a time") || fail "tokenize exited $?"
[ "$got" = "$want" ] || fail "tokenize: '$got', expected '$want'"
got=$("$E" tokenize "$M" "Once upon a time" --no-bos) || fail "tokenize --no-bos exited $?"
[ "$got" = "${want#1 }" ] || fail "tokenize --no-bos: '$got'"
# vocabulary-only files tokenize too (LLaMA 2's "Hello world")
got=$("$E" tokenize "$SHARED/models/llama-spm-vocab.gguf" "Hello world") || fail "tokenize vocab-only exited $?"
[ "$got" = "1 15043 3186" ] || fail "tokenize vocab-only: '$got'"

# greedy: 64 ids equal to the reference's, on one line
want=$(ids "$G/stories260K.greedy.i32")
got=$("$E" greedy "$M" "$G/stories260K.prompt.i32" 64) || fail "greedy exited $?"
[ "$got" = "$want" ] || fail "greedy: '$got', expected '$want'"
[ "$(printf '%s\n' "$got" | wc -l)" = 1 ] || fail "greedy: not one line"
got=$("$E" -t 1 greedy "$M" "$G/stories260K.prompt.i32" 64) || fail "greedy -t 1 exited $?"
[ "$got" = "$want" ] || fail "greedy -t 1 differs"

# logits: float32 [5][512], close to the reference's
"$E" logits "$M" "$G/stories260K.prompt.i32" "$tmp/l.f32" || fail "logits exited $?"
[ "$(stat -c %s "$tmp/l.f32")" = $((5 * 512 * 4)) ] || fail "logits: wrong size"
if command -v python3 >/dev/null; then
	python3 - "$tmp/l.f32" "$G/stories260K.logits.f32" <<'PY' || fail "logits differ from the reference"
import array, sys
a = array.array('f', open(sys.argv[1], 'rb').read())
b = array.array('f', open(sys.argv[2], 'rb').read())
d = max(abs(x - y) for x, y in zip(a, b))
print("logits max|diff| %.3g" % d)
sys.exit(0 if len(a) == len(b) and d <= 1e-3 else 1)
PY
fi

# generate: the prompt, then the golden text (greedy by default), streamed
out=$("$E" generate "$M" "Once upon a time" 64 2>"$tmp/err") || fail "generate exited $?: $(cat "$tmp/err")"
golden=$(head -c 60 "$G/stories260K.greedy.txt")
case $out in
"Once upon a time$golden"*) ;;
*) fail "generate: '$out'" ;;
esac
grep -q "generated" "$tmp/err" || fail "generate: no statistics on stderr"
# sampling with a seed is reproducible
a=$("$E" generate "$M" "Once upon a time" 40 --temp 0.9 --top-k 20 --seed 7 2>/dev/null)
b=$("$E" generate "$M" "Once upon a time" 40 --temp 0.9 --top-k 20 --seed 7 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "seeded sampling not reproducible"

# errors: a message and a nonzero status
expect_error() { # description, command...
	local what=$1; shift
	if "$@" >"$tmp/out" 2>"$tmp/err"; then fail "$what: exit 0"; fi
	[ -s "$tmp/err" ] || fail "$what: no message"
}
expect_error "missing model" "$E" greedy /nonexistent.gguf "$G/stories260K.prompt.i32" 4
expect_error "vocabulary-only model" "$E" greedy "$SHARED/models/llama-spm-vocab.gguf" "$G/stories260K.prompt.i32" 4
expect_error "missing tokens" "$E" greedy "$M" "$tmp/none.i32" 4
printf 'abc' >"$tmp/odd.i32"
expect_error "odd token file" "$E" logits "$M" "$tmp/odd.i32" "$tmp/o.f32"
printf '\377\377\377\177' >"$tmp/big.i32"
expect_error "token out of range" "$E" logits "$M" "$tmp/big.i32" "$tmp/o.f32"
expect_error "bad count" "$E" greedy "$M" "$G/stories260K.prompt.i32" x
expect_error "unknown command" "$E" frobnicate
expect_error "missing argument" "$E" greedy "$M"
echo "sotto-engine: all commands behave"

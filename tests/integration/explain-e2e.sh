#!/bin/bash
# End to end through the daemon: a gemma3 text model (../shared/golden,
# random weights, n_embd 64) with a random-weight Gemma 3 projector made
# here (sotto-mkmmproj gemma3-tiny, rows of 64), sottod --mmproj, and
# `sotto explain` on a 1920 x 1080 screenshot PNG: the service reports the
# image capability, the answer is non-empty valid UTF-8, and it equals byte
# for byte the greedy answer of the same worker code and engine run outside
# the daemon (sotto-bench-explain) -- the image crossed the bus, sottod and
# the sandbox intact and the soft tokens landed where they belong.  Also a
# tall page (pan-and-scan: the whole page and its crops), the JPEG path,
# and an image question from a pipe.
. "$(dirname "$0")/lib/common.sh"
svc_setup explain-e2e
svc_bus session
MODEL="$SHARED/golden/gemma3-f32.gguf"
[ -f "$MODEL" ] || skip "no $MODEL (set SHARED to the golden data)"
command -v convert >/dev/null || skip "ImageMagick (convert) is not installed"
[ -x "$BUILD/sotto-worker" ] || skip "no sotto-worker"
W="$SVC_DIR"
A="--address $BUS_ADDRESS"
"$BUILD/sotto-mkmmproj" --preset gemma3-tiny --type F32 --proj-dim 64 "$W/mmproj.gguf" > /dev/null || fail "sotto-mkmmproj"
convert -size 1920x1080 xc:'#f0f0f0' -fill '#3060c0' -draw 'rectangle 0,0 1920,40' \
	-fill white -draw 'rectangle 560,340 1360,740' -fill '#c03030' -draw 'circle 640,420 670,420' \
	-fill black -draw 'rectangle 700,400 1300,420' -draw 'rectangle 700,440 1200,460' "$W/shot.png" || fail "convert"
convert -size 1000x3000 gradient:white-navy "$W/page.png" || fail "convert page"
convert "$W/shot.png" -quality 90 "$W/shot.jpg" || fail "convert jpeg"

svc_start_sottod --model "$MODEL" --mmproj "$W/mmproj.gguf" --worker "$BUILD/sotto-worker" --threads 2
caps=$(busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service Capabilities)
[ "$caps" = 'as 2 "text" "image"' ] || fail "capabilities: $caps"

utf8() { iconv -f UTF-8 -t UTF-8 "$1" > /dev/null 2>&1; }

# check NAME IMAGE QUESTION: the daemon's answer against the tool's.
check() {
	local name=$1 image=$2 q=$3
	"$SOTTO" $A explain --temperature 0 --max-tokens 24 "$image" "$q" > "$W/$name.daemon" 2> "$W/$name.err" ||
		fail "$name: $(cat "$W/$name.err")"
	[ -s "$W/$name.daemon" ] || fail "$name: empty answer"
	utf8 "$W/$name.daemon" || fail "$name: not valid UTF-8"
	"$BUILD/sotto-bench-explain" -t 2 -r 1 -n 24 --text "$MODEL" "$W/mmproj.gguf" "$image" "$q" > "$W/$name.tool" ||
		fail "$name: sotto-bench-explain"
	cmp -s "$W/$name.daemon" "$W/$name.tool" ||
		fail "$name: the daemon answered '$(cat "$W/$name.daemon")', the engine outside it '$(cat "$W/$name.tool")'"
	note "$name: $(wc -c < "$W/$name.daemon") bytes, same as outside the daemon: $(head -c 80 "$W/$name.daemon")"
}
check screenshot "$W/shot.png" "what does this dialog say?"
check page "$W/page.png" "summarize this page"
check jpeg "$W/shot.jpg" ""
# Another question gives another prompt, hence (almost surely) another answer.
"$SOTTO" $A explain --temperature 0 --max-tokens 24 "$W/shot.png" "what colour is the bar?" > "$W/other.daemon" || fail "other question"
cmp -s "$W/other.daemon" "$W/screenshot.daemon" && note "another question gave the same answer (random weights)"
# From a pipe, with statistics.
"$SOTTO" $A --json explain --temperature 0 --max-tokens 24 - "what does this dialog say?" < "$W/shot.png" > "$W/pipe.json" ||
	fail "from a pipe"
grep -q '"prompt-tokens":' "$W/pipe.json" || fail "no statistics: $(cat "$W/pipe.json")"
note "from a pipe: $(cat "$W/pipe.json")"
# A chat: the image turn (Chat.SendImage, libsotto) is the same prompt as
# Explain's, hence the same greedy answer; a text turn follows in its context.
"$BUILD/tests/explain-chat" "$BUS_ADDRESS" "$W/shot.png" "what does this dialog say?" "and the red dot?" \
	> "$W/chat.out" 2> "$W/chat.err" || fail "chat with an image: $(cat "$W/chat.err")"
[ "$(sed -n 's/^image: //p' "$W/chat.out")" = "$(cat "$W/screenshot.daemon")" ] ||
	fail "the chat's image turn differs from Explain's answer: $(cat "$W/chat.out")"
[ -n "$(sed -n 's/^text: //p' "$W/chat.out")" ] || fail "no answer to the text turn: $(cat "$W/chat.out")"
set -- $(sed -n 's/^used: //p' "$W/chat.out")
[ "$1" -gt 16 ] && [ "$2" -gt "$1" ] || fail "context used after the turns: $1 then $2"
note "chat: image turn = Explain's answer; context $1 then $2 tokens after a text turn"
kill -0 "$SOTTOD_PID" || fail "sottod died"
svc_stop_sottod

# ---- the encoder at the real SigLIP width (896 pixels, 4096 patches, one
# layer) runs on its own thread: Asks keep being answered meanwhile ----
"$BUILD/sotto-mkmmproj" --preset gemma3-siglip --type F16 --layers 1 --proj-dim 64 "$W/siglip1.gguf" > /dev/null ||
	fail "sotto-mkmmproj siglip"
# 256 soft tokens and the question: more than the model's 256 positions.
svc_start_sottod --model "$MODEL" --mmproj "$W/siglip1.gguf" --worker "$BUILD/sotto-worker" --threads 2 --context 1024
t0=$(date +%s%N)
( "$SOTTO" $A explain --temperature 0 --max-tokens 8 "$W/shot.png" "what is this?" > "$W/big.out" 2> "$W/big.err";
  echo $? > "$W/big.rc"; date +%s%N > "$W/big.end" ) &
PIDS="$PIDS $!"
sleep 0.3
n=0
while [ ! -e "$W/big.end" ]; do
	"$SOTTO" $A ask --max-tokens 16 --temperature 0 "Once upon a time" > "$W/ask.out" || fail "Ask during the encoding"
	[ -s "$W/ask.out" ] || fail "an Ask during the encoding streamed nothing"
	[ -e "$W/big.end" ] || n=$((n+1))
done
[ "$(cat "$W/big.rc")" = 0 ] || fail "the real-width explain: $(cat "$W/big.err")"
[ -s "$W/big.out" ] || fail "the real-width explain gave no text"
ms=$(( ($(cat "$W/big.end") - t0) / 1000000 ))
[ $n -ge 2 ] || fail "only $n Asks were answered during the $ms ms of the image's encoding"
note "real-width encoder ($ms ms for the explain): $n Asks answered meanwhile"
svc_stop_sottod
echo PASS

#!/bin/sh
# Screenshot explanation at real size, 2 threads: a 1920 x 1080 screenshot
# PNG through the worker's own code (sotto-bench-explain: decode,
# preprocess to 896 x 896, the SigLIP-So400m encoder, the Gemma 3 prompt
# with 256 soft tokens, prefill, first token).  Random weights:
# sotto-mkmodel gemma3-1b Q4_0 (n_embd 1152) and sotto-mkmmproj gemma3-siglip
# F16 projected to 1152 (the encoder is the real SigLIP shape; only the
# projector's output width is the 1B's instead of the 4B's 2560).
#
#   EXPLAIN_MODELS (build/models)  where the files are, generated when absent
#                                  (text 0.6 GB, projector 0.85 GB)
#   BENCH_THREADS (2)  EXPLAIN_REPS (1: one encoder pass is minutes on a busy
#   2-core machine)  EXPLAIN_SKIP=1 skips it
set -eu
BUILD=${BUILD:-build}
MODELS=${EXPLAIN_MODELS:-$BUILD/models}
THREADS=${BENCH_THREADS:-2}
REPS=${EXPLAIN_REPS:-1}
[ "${EXPLAIN_SKIP:-0}" = 1 ] && exit 0
command -v convert >/dev/null || { echo "bench: explain: ImageMagick (convert) missing, skipped" >&2; exit 0; }

mkdir -p "$MODELS"
text=$MODELS/gemma3-1b-q4_0.gguf
mmproj=$MODELS/gemma3-siglip-f16-1152.gguf
shot=$MODELS/shot-1920x1080.png
[ -s "$text" ] || "$BUILD/sotto-mkmodel" --preset gemma3-1b --type Q4_0 --threads "$THREADS" "$text"
[ -s "$mmproj" ] || "$BUILD/sotto-mkmmproj" --preset gemma3-siglip --type F16 --proj-dim 1152 "$mmproj"
[ -s "$shot" ] || convert -size 1920x1080 xc:'#f0f0f0' -fill '#3060c0' -draw 'rectangle 0,0 1920,40' \
	-fill white -draw 'rectangle 560,340 1360,740' -fill black -draw 'rectangle 700,400 1300,420' "$shot"

echo "bench: sotto-bench-explain -t $THREADS -r $REPS $text $mmproj $shot" >&2
"$BUILD/sotto-bench-explain" -t "$THREADS" -r "$REPS" --json "$text" "$mmproj" "$shot" \
	"what does this dialog say?" > "$BUILD/bench-explain.json"
awk '
function val(key,   m) {
	if (match($0, "\"" key "\":(\"[^\"]*\"|[^,}]*)")) {
		m = substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
		gsub(/"/, "", m)
		return m
	}
	return "-"
}
{
	printf "\nexplain %s screenshot, %s threads: decode %.1f ms, preprocess %.1f ms, encode %.1f ms (%s soft tokens), prefill %.1f ms (%s tokens), first token %.1f ms\n",
	       val("image"), val("threads"), val("decode_ms"), val("preprocess_ms"), val("encode_ms"), val("soft_tokens"),
	       val("prefill_ms"), val("prompt_tokens"), val("first_token_ms")
}' "$BUILD/bench-explain.json"

#!/bin/sh
# Vision encoder time for one 896 x 896 image at the real Gemma 3 shape
# (SigLIP-So400m, 27 layers of 1152, projection to 2560): generates
# build/models/gemma3-siglip-f16.gguf with sotto-mkmmproj (850 MB, cached)
# and times sotto-bench-vision on the fixed test image.  With REF_CLIP set to
# a build of llama.cpp's clip driver (tests/bench/VISION.md says how it was
# made; nothing of it is in this repository) the reference runs on the same
# file and pixels, and the ratio is printed.
#
#   BENCH_THREADS (2)  VISION_REPS (3)  VISION_LAYERS (27; fewer for a quick run)
#   REF_CLIP (unset)   REF_CLIP_FA (-1: llama.cpp's default, flash attention on)
set -eu
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
REPS=${VISION_REPS:-3}
LAYERS=${VISION_LAYERS:-27}
FA=${REF_CLIP_FA:--1}
MODELS=$BUILD/models
mkdir -p "$MODELS"
f=$MODELS/gemma3-siglip-f16.gguf
[ "$LAYERS" = 27 ] || f=$MODELS/gemma3-siglip-${LAYERS}l-f16.gguf
if [ ! -s "$f" ]; then
	echo "bench: generating $f" >&2
	"$BUILD/sotto-mkmmproj" --preset gemma3-siglip --type F16 --layers "$LAYERS" "$f"
fi
img=$BUILD/models/vision-pattern-896.f32

echo "bench: sotto-bench-vision -t $THREADS -r $REPS $f" >&2
ours=$("$BUILD/sotto-bench-vision" -t "$THREADS" -r "$REPS" --image-out "$img" "$f")
echo "$ours"
ours_ms=$(echo "$ours" | sed -n 's/.*encode ms median \([0-9.]*\).*/\1/p')

if [ -n "${REF_CLIP:-}" ]; then
	echo "bench: $REF_CLIP $f (flash attention $FA) x $REPS" >&2
	ref=$("$REF_CLIP" "$f" "$img" 896 "$BUILD/models/vision-ref.emb.f32" "$THREADS" "$FA" "$REPS" 2>/dev/null)
	echo "$ref"
	ref_ms=$(echo "$ref" | sed -n 's/.*encode ms median \([0-9.]*\).*/\1/p')
	awk -v o="$ours_ms" -v r="$ref_ms" 'BEGIN { printf "vision encoder: sotto %.1f s, llama.cpp %.1f s, ratio %.2f (lower is better for sotto)\n", o / 1000, r / 1000, o / r }'
	"$BUILD/sotto-bench-vision" -t "$THREADS" -r 1 --compare "$BUILD/models/vision-ref.emb.f32" "$f" | tail -1
fi

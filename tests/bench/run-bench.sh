#!/bin/sh
# `make bench`: generates models at real sizes with sotto-mkmodel into
# build/models/ (cached: delete the directory to draw them again) and runs
# sotto-bench on each, then prints one table.  The llama.cpp figures for the
# same files and machine are in tests/bench/REFERENCE.md.
#
#   BENCH_THREADS (2)  BENCH_PROMPT (512)  BENCH_GEN (128)  BENCH_REPS (3)
#   BENCH_TYPES ("Q8_0 Q4_0 Q4_K_M")  BENCH_PRESET (llama-1b)
set -eu
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
PROMPT=${BENCH_PROMPT:-512}
GEN=${BENCH_GEN:-128}
REPS=${BENCH_REPS:-3}
TYPES=${BENCH_TYPES:-"Q8_0 Q4_0 Q4_K_M"}
PRESET=${BENCH_PRESET:-llama-1b}
MODELS=$BUILD/models
RESULTS=$BUILD/bench-results.jsonl

# file names in lower case (llama-1b-q4_0.gguf), as tests/bench/service.sh
# expects them
model_file() { echo "$MODELS/$PRESET-$(echo "$1" | tr 'A-Z' 'a-z').gguf"; }

mkdir -p "$MODELS"
for t in $TYPES; do
	f=$(model_file "$t")
	if [ ! -s "$f" ]; then
		echo "bench: generating $f" >&2
		"$BUILD/sotto-mkmodel" --preset "$PRESET" --type "$t" "$f"
	fi
done

: >"$RESULTS"
status=0
for t in $TYPES; do
	f=$(model_file "$t")
	echo "bench: sotto-bench -t $THREADS -p $PROMPT -n $GEN -r $REPS $f" >&2
	if ! "$BUILD/sotto-bench" -t "$THREADS" -p "$PROMPT" -n "$GEN" -r "$REPS" --json "$f" >>"$RESULTS"; then
		echo "bench: sotto-bench failed on $f" >&2
		status=1
	fi
done

# One JSON object per line with flat keys: pick values with awk.
awk -v p="$PROMPT" -v n="$GEN" -v t="$THREADS" -v out="$RESULTS" '
function val(key,   m) {
	if (match($0, "\"" key "\":(\"[^\"]*\"|[^,}]*)")) {
		m = substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
		gsub(/"/, "", m)
		return m
	}
	return "-"
}
BEGIN {
	printf "\n%-24s %8s %8s %9s %10s %9s %9s  %s\n", "model", "pp" p, "tg" n, "bw GB/s", "MiB/token", "tg/bound", "RSS MiB", "pp matmul path"
}
{
	printf "%-24s %8.2f %8.2f %9.2f %10.1f %9.3f %9.1f  %s\n", val("model"), val("pp_tps"), val("tg_tps"),
	       val("bandwidth_gbs"), val("bytes_per_token") / 1048576, val("tg_bound_fraction"), val("peak_rss_mib"),
	       val("pp_matmul_path")
}
END { printf "(tok/s: median of the repetitions, %d threads; JSON lines in %s)\n", t, out }
' "$RESULTS"

# The service: sottod ready time and PSS with 4 chats on the 1B Q4_0 model.
BUILD=$BUILD tests/bench/service.sh || status=1

# Gemma 3n E2B / E4B in Q4_K_M: speed and peak RSS at a 4096-token context
# (tests/bench/gemma.sh; GEMMA_PRESETS="" skips it).
BUILD=$BUILD tests/bench/gemma.sh || status=1

# Speech: Whisper RTF at tiny/base/small against whisper.cpp, transcribe
# RTF and dictation latency to Final (tests/bench/speech.sh).
BUILD=$BUILD tests/bench/speech.sh || status=1

# A 1920x1080 screenshot through decode, preprocess, the SigLIP encoder,
# prefill and the first token (tests/bench/explain.sh; EXPLAIN_SKIP=1 skips it).
BUILD=$BUILD tests/bench/explain.sh || status=1

# The Gemma 3 vision encoder at 896 x 896 (tests/bench/vision.sh;
# VISION_REPS=0 skips it, REF_CLIP=path compares with llama.cpp's clip).
[ "${VISION_REPS:-3}" = 0 ] || BUILD=$BUILD tests/bench/vision.sh || status=1
exit $status

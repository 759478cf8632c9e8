#!/bin/sh
# Gemma 3n at the published E2B and E4B shapes, Q4_K_M (sotto-mkmodel's
# random weights; llama.cpp's Q4_K_M tensor mix), 2 threads:
#   - sotto-bench: pp512 and tg128 tokens/s, bytes read per token and the
#     fraction of the bandwidth bound that generation reaches;
#   - sotto-bench-mem: peak RSS (VmHWM) with a 4096-token context filled,
#     split into anonymous memory (KV cache, activations, and the weights:
#     the engine copies them at load, weights-copy.h) and file pages of the
#     mapped model (only what is read in place: the per-layer-embedding
#     rows; every weight with SOTTO_WEIGHTS=map), and how much of the
#     per-layer-embedding table is mapped (the sliding-window layers' KV is
#     a ring of window + 512 positions, kv-cache.h).
# Targets (issue 5): peak RSS at most 2.0 GiB (E2B) and 3.5 GiB (E4B).
# The llama.cpp figures for the same files are in tests/bench/REFERENCE.md.
#
#   GEMMA_MODELS (build/models)  where the files are, generated when absent
#                                (E2B 2.6 GB, E4B 4.0 GB)
#   GEMMA_PRESETS ("gemma3n-e2b gemma3n-e4b")  BENCH_THREADS (2)  BENCH_REPS (3)
#   GEMMA_CTX (4096)
set -eu
BUILD=${BUILD:-build}
MODELS=${GEMMA_MODELS:-$BUILD/models}
PRESETS=${GEMMA_PRESETS-"gemma3n-e2b gemma3n-e4b"}
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-3}
CTX=${GEMMA_CTX:-4096}
RESULTS=$BUILD/bench-gemma.jsonl

mkdir -p "$MODELS"
: >"$RESULTS"
status=0
for p in $PRESETS; do
	f=$MODELS/$p-q4_k_m.gguf
	if [ ! -s "$f" ]; then
		echo "bench: generating $f" >&2
		"$BUILD/sotto-mkmodel" --preset "$p" --type Q4_K_M "$f.tmp" && mv "$f.tmp" "$f" || { status=1; continue; }
	fi
	echo "bench: sotto-bench -t $THREADS -p 512 -n 128 -r $REPS $f" >&2
	speed=$("$BUILD/sotto-bench" -t "$THREADS" -p 512 -n 128 -r "$REPS" --json "$f") || { status=1; continue; }
	echo "bench: sotto-bench-mem -t $THREADS -c $CTX $f" >&2
	mem=$("$BUILD/sotto-bench-mem" -t "$THREADS" -c "$CTX" --json "$f") || { status=1; continue; }
	echo "{\"preset\":\"$p\",\"speed\":$speed,\"memory\":$mem}" >>"$RESULTS"
done

awk -v out="$RESULTS" -v ctx="$CTX" '
function val(obj, key,   m) {
	if (match(obj, "\"" key "\":(\"[^\"]*\"|[^,}]*)")) {
		m = substr(obj, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
		gsub(/"/, "", m)
		return m
	}
	return "-"
}
BEGIN {
	printf "\n%-12s %8s %8s %9s %9s %10s %10s %9s %9s %7s\n", "gemma", "pp512", "tg128", "MiB/tok", "tg/bound",
	       "RSS@" ctx, "anon", "file", "PLE map", "target"
}
{
	s = substr($0, index($0, "\"speed\":")); m = substr($0, index($0, "\"memory\":"))
	p = val($0, "preset"); target = p ~ /e2b/ ? 2048 : p ~ /e4b/ ? 3584 : 0
	rss = val(m, "peak_rss_mib")
	printf "%-12s %8.2f %8.2f %9.1f %9.3f %10.1f %10.1f %9.1f %9.2f %7s\n", p, val(s, "pp_tps"), val(s, "tg_tps"),
	       val(s, "bytes_per_token") / 1048576, val(s, "tg_bound_fraction"), rss, val(m, "anon_mib"),
	       val(m, "file_mib"), val(m, "ple_resident_mib"), target ? (rss <= target ? "ok" : "OVER") : "-"
}
END { printf "(tok/s median of the repetitions; RSS MiB: VmHWM, anon + file pages now; targets E2B 2048, E4B 3584 MiB; JSON in %s)\n", out }
' "$RESULTS"
exit $status

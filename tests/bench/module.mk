# Benchmarks (`make bench`, tests/bench/run-bench.sh).
# sotto-bench: pp/tg speed of a model on the engine API against the memory
# bandwidth.
$(eval $(call add_program,sotto-bench,tests/bench/sotto-bench.c tests/bench/sotto-bench-bw.c))

# Kernel micro-benchmark: build/bench-kernels (run by hand or from make bench).
$(eval $(call add_program,bench-kernels,tests/bench/bench-kernels.c tests/bench/sotto-bench-bw.c,))

# sotto-bench-mem: resident memory at a full context (Gemma 3n: the
# per-layer-embedding table must stay in the mapped file).
$(eval $(call add_program,sotto-bench-mem,tests/bench/sotto-bench-mem.c))

# sotto-bench-vision: vision encoder time on an mmproj file (and the
# embeddings, for comparisons with the reference's).
$(eval $(call add_program,sotto-bench-vision,tests/bench/sotto-bench-vision.c))

# sotto-bench-explain: an image question through the worker's own code
# (worker-image.c) and the engine, timed step by step (decode, preprocess,
# encode, prefill, first token); its --generate answer is the daemon's.
$(eval $(call add_program,sotto-bench-explain,tests/bench/sotto-bench-explain.c daemon/worker/worker-image.c daemon/worker/worker-chat.c,$(BUILD)/libsotto-daemon.a $(BUILD)/libsotto-media.a $(MEDIA_LIBS) $(DAEMON_LIBS)))
$(BUILD)/sotto-bench-explain: $(BUILD)/libsotto-daemon.a $(BUILD)/libsotto-media.a

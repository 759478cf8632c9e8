# libFuzzer harnesses: tests/fuzz/fuzz-NAME.c -> build/fuzz/fuzz-NAME, with a
# seed corpus in tests/fuzz/corpus/NAME/.  tests/run-tests.sh runs each one
# for FUZZ_SECONDS.  Harnesses for code outside the engine append archives
# to FUZZ_ARCHIVES and libraries to FUZZ_LIBS.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZERS += $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

$(BUILD)/fuzz/fuzz-%: $(BUILD)/fuzz/tests/fuzz/fuzz-%.o $$(FUZZ_ARCHIVES) $(BUILD)/fuzz/libsotto-engine.a
	@mkdir -p $(@D)
	$(SAN_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS) $(ENGINE_LIBS)

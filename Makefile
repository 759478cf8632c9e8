# sotto — top-level build (GNU make).  Every output goes to build/.
#
#   make          build everything (programs, libraries, tests)
#   make check    install missing build dependencies (as root), build, run all tests
#   make run      install missing build dependencies (as root), build, run the main job
#   make bench    build and run the benchmarks
#
# Each part of the tree adds itself through a small module.mk fragment
# (daemon/engine/module.mk, tests/unit/module.mk, ...), so that work in one
# room does not touch the others.

.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDEXPANSION:

BUILD      := build
SHARED     ?= $(abspath $(CURDIR)/../shared)
CC         := gcc
SAN_CC     := clang
PKG_CONFIG ?= pkg-config
AR         := ar

pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

WARN := -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers \
        -Werror=implicit-function-declaration -Werror=return-type -Werror=incompatible-pointer-types \
        -Werror=int-conversion
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread -g -fno-strict-aliasing -fPIC $(WARN) \
               -I. -Idaemon/engine $(call pc_cflags,openblas) $(CPPFLAGS)
OPT_CFLAGS  ?= -O2
REL_CFLAGS  := $(BASE_CFLAGS) $(OPT_CFLAGS) $(CFLAGS)
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CFLAGS  := $(BASE_CFLAGS) -O1 $(SAN_FLAGS)
FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DSOTTO_FUZZING=1

# Kernel variants are compiled per file, selected at run time from cpuid.
AVX2_FLAGS   := -mavx2 -mfma -mf16c -mbmi2
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16


# --- object rules: build/obj (gcc -O2), build/san (clang ASan+UBSan), build/fuzz
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/san/%.o: %.c
	@mkdir -p $(@D)
	$(SAN_CC) $(SAN_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/%.o: %.c
	@mkdir -p $(@D)
	$(SAN_CC) $(FUZZ_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

%-avx2.o:   EXTRA_CFLAGS += $(AVX2_FLAGS)
%-avx512.o: EXTRA_CFLAGS += $(AVX512_FLAGS)

obj  = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
san  = $(patsubst %.c,$(BUILD)/san/%.o,$(1))
fuzz = $(patsubst %.c,$(BUILD)/fuzz/%.o,$(1))

# $(call add_program,NAME,SOURCES,EXTRA_LIBS): build/NAME, linked with the engine.
define add_program
PROGRAMS += $(BUILD)/$(1)
$(BUILD)/$(1): $(call obj,$(2)) $(BUILD)/libsotto-engine.a
	$$(CC) $$(REL_CFLAGS) -o $$@ $$^ $(3) $$(ENGINE_LIBS)
endef

# Filled by the module fragments.
PROGRAMS   :=
UNIT_TESTS :=
FUZZERS    :=
ALL_OBJS   :=

include $(sort $(wildcard */module.mk */*/module.mk))

all: $(BUILD)/libsotto-engine.a $(PROGRAMS) $(UNIT_TESTS)
tests: $(UNIT_TESTS) $(FUZZERS)

deps:
	@build-aux/deps.sh

# `check` and `run` first make sure the dependencies are there, then re-enter
# make so that pkg-config sees the installed packages.
check: deps
	@$(MAKE) --no-print-directory all tests
	@BUILD=$(BUILD) SHARED=$(SHARED) tests/run-tests.sh

run: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) SHARED=$(SHARED) build-aux/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) SHARED=$(SHARED) tests/bench/run-bench.sh

clean:
	rm -rf $(BUILD)

.PHONY: all tests deps check run bench clean

-include $(shell find $(BUILD) -type f -name '*.d' 2>/dev/null)

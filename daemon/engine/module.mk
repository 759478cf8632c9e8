# The inference engine: a static library with no bus code in it.
ENGINE_SRCS := $(sort $(wildcard daemon/engine/*.c daemon/engine/*/*.c))
ENGINE_LIBS := $(call pc_libs,openblas) -lm -lpthread

# The forward passes' element-wise loops mostly work in place, and gcc's
# -O2 cost model will not vectorize a loop behind an aliasing check: these
# files get the full cost model (SSE2, or whatever CFLAGS allow).  No
# floating-point sum is reordered without -ffast-math, and no product and
# sum are contracted into one FMA (the AVX-512 clones, _vector_clones_ in
# macro.h, could), so the results stay bit for bit the same.
ENGINE_VEC_SRCS := daemon/engine/model-ops.c daemon/engine/gemma-ops.c daemon/engine/arch-gemma3n.c \
                   daemon/engine/arch-gemma3.c daemon/engine/arch-llama.c
$(call obj,$(ENGINE_VEC_SRCS)): EXTRA_CFLAGS += -fvect-cost-model=dynamic -ffp-contract=off

$(BUILD)/libsotto-engine.a: $(call obj,$(ENGINE_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/san/libsotto-engine.a: $(call san,$(ENGINE_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/libsotto-engine.a: $(call fuzz,$(ENGINE_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

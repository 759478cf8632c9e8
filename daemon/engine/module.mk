# The inference engine: a static library with no bus code in it.
ENGINE_SRCS := $(sort $(wildcard daemon/engine/*.c daemon/engine/*/*.c))
ENGINE_LIBS := $(call pc_libs,openblas) -lm -lpthread

$(BUILD)/libsotto-engine.a: $(call obj,$(ENGINE_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/san/libsotto-engine.a: $(call san,$(ENGINE_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/libsotto-engine.a: $(call fuzz,$(ENGINE_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

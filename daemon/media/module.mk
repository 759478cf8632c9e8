# Image decoding and preprocessing for the vision towers: a static library
# used only by the sandboxed worker (never by sottod), with plain, ASan+UBSan
# and fuzzing builds like the engine's.
MEDIA_SRCS := $(sort $(wildcard daemon/media/*.c))
MEDIA_LIBS := $(call pc_libs,libpng libturbojpeg) -lm

$(BUILD)/obj/daemon/media/%.o $(BUILD)/san/daemon/media/%.o $(BUILD)/fuzz/daemon/media/%.o: \
        EXTRA_CFLAGS += -Idaemon/media $(call pc_cflags,libpng libturbojpeg)

$(BUILD)/libsotto-media.a: $(call obj,$(MEDIA_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/san/libsotto-media.a: $(call san,$(MEDIA_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/libsotto-media.a: $(call fuzz,$(MEDIA_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

UNIT_ARCHIVES      += $(BUILD)/libsotto-media.a
UNIT_SAN_ARCHIVES  += $(BUILD)/san/libsotto-media.a
FUZZ_ARCHIVES      += $(BUILD)/fuzz/libsotto-media.a
UNIT_LIBS          += $(MEDIA_LIBS)
FUZZ_LIBS          += $(MEDIA_LIBS)

# Tests and fuzzers include "image.h".
$(BUILD)/obj/tests/unit/test-image%.o $(BUILD)/san/tests/unit/test-image%.o: EXTRA_CFLAGS += -Idaemon/media
$(BUILD)/fuzz/tests/fuzz/fuzz-%.o: EXTRA_CFLAGS += -Idaemon/media

# Built by `make` even before a program links it.
all: $(BUILD)/libsotto-media.a

# build/sotto-imgdecode: decode to PAM, show the preprocessed squares, time both.
$(eval $(call add_program,sotto-imgdecode,daemon/media/tools/sotto-imgdecode.c,$(BUILD)/libsotto-media.a $(BUILD)/libsotto-engine.a $(MEDIA_LIBS)))
$(BUILD)/sotto-imgdecode: $(BUILD)/libsotto-media.a

# test-image-limits writes its bombs with zlib and the libjpeg API.
$(BUILD)/tests/test-image-limits $(BUILD)/san/tests/test-image-limits: UNIT_LIBS += -ljpeg -lz

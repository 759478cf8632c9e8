# sotto-mkmodel: random-weight GGUF models of known shapes (tests, benchmarks).
# Everything but main() also goes into an archive for tests/unit/test-mkmodel
# (appended to UNIT_ARCHIVES: a test that references none of it pulls nothing).
MKMODEL_SRCS := tests/tools/gguf-writer.c tests/tools/mkmodel-quant.c tests/tools/mkmodel-model.c \
                tests/tools/mkmodel-llama.c tests/tools/mkmodel-gemma.c tests/tools/mkmodel-write.c \
                tests/tools/mkmmproj.c

$(eval $(call add_program,sotto-mkmodel,tests/tools/sotto-mkmodel.c $(MKMODEL_SRCS)))

$(BUILD)/libmkmodel.a: $(call obj,$(MKMODEL_SRCS))
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/san/libmkmodel.a: $(call san,$(MKMODEL_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
UNIT_ARCHIVES += $(BUILD)/libmkmodel.a
UNIT_SAN_ARCHIVES += $(BUILD)/san/libmkmodel.a

# Whisper developer tools: a random-weight model generator in whisper.cpp's
# ggml-*.bin layout, and a transcriber for trying models on WAV files.
$(eval $(call add_program,sotto-mkwhisper,tests/tools/mkwhisper.c))
$(eval $(call add_program,sotto-whisper,tests/tools/sotto-whisper.c))

# sotto-mkmmproj: random-weight Gemma 3 vision projector (mmproj) files.
$(eval $(call add_program,sotto-mkmmproj,tests/tools/sotto-mkmmproj.c tests/tools/mkmmproj.c tests/tools/gguf-writer.c tests/tools/mkmodel-quant.c))

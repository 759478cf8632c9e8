# Unit tests: tests/unit/test-NAME.c, one per module, each built twice:
# build/tests/test-NAME (gcc -O2) and build/san/tests/test-NAME (ASan+UBSan).
# Other modules may append archives to UNIT_ARCHIVES / UNIT_SAN_ARCHIVES and
# libraries to UNIT_LIBS.
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_SRCS))
UNIT_TESTS += $(addprefix $(BUILD)/tests/,$(UNIT_NAMES)) $(addprefix $(BUILD)/san/tests/,$(UNIT_NAMES))


$(BUILD)/tests/test-%: $(BUILD)/obj/tests/unit/test-%.o $$(UNIT_ARCHIVES) $(BUILD)/libsotto-engine.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(UNIT_LIBS) $(ENGINE_LIBS)
$(BUILD)/san/tests/test-%: $(BUILD)/san/tests/unit/test-%.o $$(UNIT_SAN_ARCHIVES) $(BUILD)/san/libsotto-engine.a
	@mkdir -p $(@D)
	$(SAN_CC) $(SAN_CFLAGS) -o $@ $^ $(UNIT_LIBS) $(ENGINE_LIBS)

# Helpers of the service tests (tests/integration/*.sh).
PROGRAMS += $(BUILD)/tests/sotto-test-client
$(BUILD)/tests/sotto-test-client: $(call obj,tests/integration/sotto-test-client.c)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(call pc_libs,libsystemd) -lm

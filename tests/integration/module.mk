# Helpers of the service tests (tests/integration/*.sh).
PROGRAMS += $(BUILD)/tests/sotto-test-client
$(BUILD)/tests/sotto-test-client: $(call obj,tests/integration/sotto-test-client.c)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(call pc_libs,libsystemd) -lm
PROGRAMS += $(BUILD)/tests/sotto-test-worker
$(BUILD)/tests/sotto-test-worker: $(call obj,tests/integration/sotto-test-worker.c) $(BUILD)/libsotto-daemon.a \
		$(BUILD)/libsotto-engine.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(DAEMON_LIBS)

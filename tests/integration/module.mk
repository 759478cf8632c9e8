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
# Linked against the built libsotto.so.1, as a program using the library would be.
PROGRAMS += $(BUILD)/tests/sotto-test-lib
$(BUILD)/tests/sotto-test-lib: $(call obj,tests/integration/sotto-test-lib.c) $(BUILD)/libsotto.so.1
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $(call obj,tests/integration/sotto-test-lib.c) -L$(BUILD) -l:libsotto.so.1 \
		-Wl,-rpath,'$$ORIGIN/..' $(call pc_libs,libsystemd)
# The caller of the polkit tests (polkit-*.sh).
PROGRAMS += $(BUILD)/tests/polkit-client
$(BUILD)/tests/polkit-client: $(call obj,tests/integration/polkit-client.c)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(call pc_libs,libsystemd)
PROGRAMS += $(BUILD)/tests/polkit-mock
$(BUILD)/tests/polkit-mock: $(call obj,tests/integration/polkit-mock.c)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(call pc_libs,libsystemd)
# A test double of the xdg-desktop-portal Screenshot interface (explain-screen.sh).
PROGRAMS += $(BUILD)/tests/mock-portal
$(BUILD)/tests/mock-portal: $(call obj,tests/integration/mock-portal.c)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(call pc_libs,libsystemd)
# Chat.SendImage through libsotto (explain-e2e.sh).
PROGRAMS += $(BUILD)/tests/explain-chat
$(BUILD)/tests/explain-chat: $(call obj,tests/integration/explain-chat.c) $(BUILD)/libsotto.so.1
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $(call obj,tests/integration/explain-chat.c) -L$(BUILD) -l:libsotto.so.1 \
		-Wl,-rpath,'$$ORIGIN/..' $(call pc_libs,libsystemd)
# The caller of dictate-cancel.sh: cancels or leaves at the Nth Final.
PROGRAMS += $(BUILD)/tests/dictate-cancel
$(BUILD)/tests/dictate-cancel: $(call obj,tests/integration/dictate-cancel.c) $(BUILD)/libsotto.so.1
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $(call obj,tests/integration/dictate-cancel.c) -L$(BUILD) -l:libsotto.so.1 \
		-Wl,-rpath,'$$ORIGIN/..' $(call pc_libs,libsystemd)

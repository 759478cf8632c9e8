# The service: sottod (the monitor) and sotto-worker (the sandboxed engine
# host), plus the framed protocol they share.  daemon/engine/ has its own
# fragment.
DAEMON_COMMON_SRCS := daemon/common/wire.c daemon/common/privs.c
SOTTOD_LIB_SRCS := $(filter-out daemon/sottod/main.c,$(sort $(wildcard daemon/sottod/*.c)))
WORKER_LIB_SRCS := daemon/worker/stop.c daemon/worker/sandbox.c daemon/worker/worker-chat.c daemon/worker/worker-image-prompt.c
DAEMON_LIBS := $(call pc_libs,libsystemd) $(call pc_libs,libseccomp) $(call pc_libs,libcap)

# Everything but the mains, for unit tests and fuzzers.
DAEMON_LIB_SRCS := $(DAEMON_COMMON_SRCS) $(SOTTOD_LIB_SRCS) $(WORKER_LIB_SRCS)
$(BUILD)/libsotto-daemon.a: $(call obj,$(DAEMON_LIB_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/san/libsotto-daemon.a: $(call san,$(DAEMON_LIB_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/libsotto-daemon.a: $(call fuzz,$(DAEMON_LIB_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

UNIT_ARCHIVES += $(BUILD)/libsotto-daemon.a
UNIT_SAN_ARCHIVES += $(BUILD)/san/libsotto-daemon.a
UNIT_LIBS += $(DAEMON_LIBS)
FUZZ_ARCHIVES += $(BUILD)/fuzz/libsotto-daemon.a
FUZZ_LIBS += $(DAEMON_LIBS)

PROGRAMS += $(BUILD)/sottod
# Only set_error() comes from the engine archive: sottod parses no model data.
$(BUILD)/sottod: $(call obj,daemon/sottod/main.c) $(BUILD)/libsotto-daemon.a $(BUILD)/libsotto-engine.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(DAEMON_LIBS)

# The worker hosts the engine.  A second build with test hooks lets a test
# ask the sandboxed worker to try what the sandbox forbids.
WORKER_SRCS := daemon/worker/main.c daemon/worker/worker.c daemon/worker/worker-image.c daemon/worker/worker-audio.c daemon/worker/worker-batch.c
# Images are decoded in the worker only (daemon/media), never in sottod.
WORKER_MEDIA := $(BUILD)/libsotto-media.a
# Until the engine implements its API (engine.h) on main, only the build on
# the test double links; this test goes once the engine is there.
ENGINE_IMPLEMENTED := $(shell grep -ls '^int engine_model_load_fd' daemon/engine/*.c daemon/engine/*/*.c 2>/dev/null)
ifneq ($(ENGINE_IMPLEMENTED),)
PROGRAMS += $(BUILD)/sotto-worker $(BUILD)/tests/sotto-worker-testhooks
endif
$(BUILD)/sotto-worker: $(call obj,$(WORKER_SRCS)) $(BUILD)/libsotto-daemon.a $(WORKER_MEDIA) $(BUILD)/libsotto-engine.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(DAEMON_LIBS) $(MEDIA_LIBS) $(ENGINE_LIBS)
$(BUILD)/obj/testhooks/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -DSOTTO_TEST_HOOKS=1 -MMD -MP -c $< -o $@
$(BUILD)/tests/sotto-worker-testhooks: $(patsubst %.c,$(BUILD)/obj/testhooks/%.o,$(WORKER_SRCS)) \
		$(BUILD)/libsotto-daemon.a $(WORKER_MEDIA) $(BUILD)/libsotto-engine.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(DAEMON_LIBS) $(MEDIA_LIBS) $(ENGINE_LIBS)

# The same worker on a test double of the engine (tests/integration/
# fake-engine.c), for service tests that need exact timing and no weights.
PROGRAMS += $(BUILD)/tests/sotto-worker-fake
$(BUILD)/tests/sotto-worker-fake: $(patsubst %.c,$(BUILD)/obj/testhooks/%.o,$(WORKER_SRCS)) \
		$(call obj,tests/integration/fake-engine.c) $(BUILD)/libsotto-daemon.a $(WORKER_MEDIA) \
		$(BUILD)/libsotto-engine.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(DAEMON_LIBS) $(MEDIA_LIBS) $(ENGINE_LIBS)

# sottod under ASan+UBSan, for tests/integration/asan-sottod.sh.
PROGRAMS += $(BUILD)/san/sottod
$(BUILD)/san/sottod: $(call san,daemon/sottod/main.c) $(BUILD)/san/libsotto-daemon.a $(BUILD)/san/libsotto-engine.a
	@mkdir -p $(@D)
	$(SAN_CC) $(SAN_CFLAGS) -o $@ $^ $(DAEMON_LIBS)

# sotto-capture: the sandboxed PipeWire client of dictation (one per
# dictation), and capture-connect.c, which libsotto links to open the
# caller's own PipeWire socket.  The sandbox is the worker's (libsotto-daemon.a).
CAPTURE_LIB_SRCS := daemon/capture/ring.c daemon/capture/capture.c daemon/capture/capture-connect.c
PIPEWIRE_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpipewire-0.3 2>/dev/null)
PIPEWIRE_LIBS := $(call pc_libs,libpipewire-0.3)

$(BUILD)/libsotto-capture.a: $(call obj,$(CAPTURE_LIB_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/san/libsotto-capture.a: $(call san,$(CAPTURE_LIB_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
UNIT_ARCHIVES += $(BUILD)/libsotto-capture.a
UNIT_SAN_ARCHIVES += $(BUILD)/san/libsotto-capture.a

ifneq ($(PIPEWIRE_LIBS),)
$(call obj,daemon/capture/main.c): EXTRA_CFLAGS += $(PIPEWIRE_CFLAGS)
PROGRAMS += $(BUILD)/sotto-capture
$(BUILD)/sotto-capture: $(call obj,daemon/capture/main.c) $(BUILD)/libsotto-capture.a $(BUILD)/libsotto-daemon.a \
		$(BUILD)/libsotto-engine.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(PIPEWIRE_LIBS) $(DAEMON_LIBS)
endif

# Test helpers: the correlation check of the capture tests and a client
# that opens a PipeWire connection the way libsotto will.
PROGRAMS += $(BUILD)/tests/capture-compare $(BUILD)/tests/capture-run
$(BUILD)/tests/capture-compare: $(call obj,tests/integration/capture-compare.c)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ -lm
$(BUILD)/tests/capture-run: $(call obj,tests/integration/capture-run.c) $(BUILD)/libsotto-capture.a \
		$(BUILD)/libsotto-engine.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(ENGINE_LIBS)

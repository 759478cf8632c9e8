# libsotto (the client library) and the sotto command line.
LIBSOTTO_VERSION := 1.0.0
CLIENT_LIBS := $(call pc_libs,libsystemd)

PROGRAMS += $(BUILD)/libsotto.so.1 $(BUILD)/libsotto.so $(BUILD)/libsotto.pc $(BUILD)/sotto
# libsotto-speech.c opens the caller's PipeWire with daemon/capture/capture-connect.c.
LIBSOTTO_SRCS := client-lib/libsotto.c client-lib/bus-name.c client-lib/libsotto-speech.c daemon/capture/capture-connect.c \
	daemon/engine/error.c
$(BUILD)/libsotto.so.1: $(call obj,$(LIBSOTTO_SRCS)) client-lib/libsotto.sym
	$(CC) $(REL_CFLAGS) -shared -Wl,-soname,libsotto.so.1 -Wl,--version-script=client-lib/libsotto.sym \
		-Wl,--no-undefined -o $@ $(call obj,$(LIBSOTTO_SRCS)) $(CLIENT_LIBS)
$(BUILD)/libsotto.so: $(BUILD)/libsotto.so.1
	ln -sf libsotto.so.1 $@
$(BUILD)/libsotto.pc: client-lib/libsotto.pc.in
	sed -e 's|@prefix@|/usr/local|; s|@libdir@|$${prefix}/lib|; s|@includedir@|$${prefix}/include|' \
	    -e 's|@version@|$(LIBSOTTO_VERSION)|' $< > $@

# The CLI finds the library next to itself in the build tree.
SOTTO_CLI_SRCS := client-lib/sotto-cli.c client-lib/bus-name.c client-lib/sotto-cli-admin.c client-lib/screenshot.c client-lib/sotto-cli-speech.c
$(BUILD)/sotto: $(call obj,$(SOTTO_CLI_SRCS)) $(BUILD)/libsotto.so.1
	$(CC) $(REL_CFLAGS) -o $@ $(call obj,$(SOTTO_CLI_SRCS)) -L$(BUILD) -l:libsotto.so.1 \
		-Wl,-rpath,'$$ORIGIN' $(CLIENT_LIBS) $(call pc_libs,json-c) $(call pc_libs,libedit) -lm

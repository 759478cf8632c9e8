# make install / make uninstall.  The usual directory variables can be given
# on the command line: make install PREFIX=/usr DESTDIR=/tmp/stage
#
# sottod, sotto-worker and sotto-capture go to $(LIBEXECDIR)/sotto/ (sottod
# finds the worker and the capture program next to itself).  packaging/install-manifest.txt lists what PREFIX=/usr
# installs; tests/integration/install-manifest.sh keeps the two equal.
PREFIX       ?= /usr/local
EXEC_PREFIX  ?= $(PREFIX)
BINDIR       ?= $(EXEC_PREFIX)/bin
LIBDIR       ?= $(EXEC_PREFIX)/lib
LIBEXECDIR   ?= $(EXEC_PREFIX)/libexec
INCLUDEDIR   ?= $(PREFIX)/include
DATADIR      ?= $(PREFIX)/share
MANDIR       ?= $(DATADIR)/man
SYSCONFDIR   ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DBUSDIR      ?= $(DATADIR)/dbus-1
POLKITDIR    ?= $(DATADIR)/polkit-1/actions
DOCDIR       ?= $(DATADIR)/doc/sotto
SYSTEMDSYSTEMUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSTEMDUSERUNITDIR   ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR  ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR  ?= $(PREFIX)/lib/tmpfiles.d
INSTALL      ?= install

PKG_BUILD := $(BUILD)/packaging
PKG_LIBEXEC := $(LIBEXECDIR)/sotto

# The CLI without the build tree's $$ORIGIN run path.
# The CLI's sources are SOTTO_CLI_SRCS (client-lib/module.mk).
$(PKG_BUILD)/sotto: $(call obj,$(SOTTO_CLI_SRCS)) $(BUILD)/libsotto.so.1
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $(LDFLAGS) -o $@ $(call obj,$(SOTTO_CLI_SRCS)) -L$(BUILD) -l:libsotto.so.1 \
		$(CLIENT_LIBS) $(call pc_libs,json-c) $(call pc_libs,libedit) -lm

# Installed paths in the text files follow the directory variables.
PKG_SED := sed -e 's|/usr/libexec/sotto|$(PKG_LIBEXEC)|g' -e 's|/etc/sotto|$(SYSCONFDIR)/sotto|g'

# mode source destination (one word each).
PKG_FILES := \
	0755:$(BUILD)/sottod:$(PKG_LIBEXEC)/sottod \
	0755:$(BUILD)/sotto-worker:$(PKG_LIBEXEC)/sotto-worker \
	0755:$(BUILD)/sotto-capture:$(PKG_LIBEXEC)/sotto-capture \
	0755:$(PKG_BUILD)/sotto:$(BINDIR)/sotto \
	0644:$(BUILD)/libsotto.so.1:$(LIBDIR)/libsotto.so.1 \
	0644:client-lib/sotto.h:$(INCLUDEDIR)/sotto.h \
	0644:$(PKG_BUILD)/libsotto.pc:$(PKGCONFIGDIR)/libsotto.pc \
	0644:dbus/org.sotto.Sotto1.xml:$(DBUSDIR)/interfaces/org.sotto.Sotto1.xml \
	0644:dbus/org.sotto.Sotto1.conf:$(DBUSDIR)/system.d/org.sotto.Sotto1.conf \
	0644:$(PKG_BUILD)/org.sotto.Sotto1.service.system:$(DBUSDIR)/system-services/org.sotto.Sotto1.service \
	0644:$(PKG_BUILD)/org.sotto.Sotto1.service.session:$(DBUSDIR)/services/org.sotto.Sotto1.service \
	0644:$(PKG_BUILD)/sottod.service:$(SYSTEMDSYSTEMUNITDIR)/sottod.service \
	0644:$(PKG_BUILD)/sottod-user.service:$(SYSTEMDUSERUNITDIR)/sottod.service \
	0644:packaging/sotto.sysusers:$(SYSUSERSDIR)/sotto.conf \
	0644:packaging/sotto.tmpfiles:$(TMPFILESDIR)/sotto.conf \
	0644:packaging/sotto.conf:$(SYSCONFDIR)/sotto/sotto.conf \
	$(foreach p,$(wildcard polkit/*.policy),0644:$(p):$(POLKITDIR)/$(notdir $(p))) \
	$(foreach p,$(wildcard polkit/*.rules),0644:$(p):$(DOCDIR)/examples/$(notdir $(p))) \
	$(foreach m,$(sort $(wildcard man/*.[1-8] packaging/*.[1-8])),0644:$(m):$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
# symlink target
PKG_LINKS := $(LIBDIR)/libsotto.so:libsotto.so.1

PKG_SOURCES := $(foreach f,$(PKG_FILES),$(word 2,$(subst :, ,$(f))))

$(PKG_BUILD)/libsotto.pc: client-lib/libsotto.pc.in FORCE
	@mkdir -p $(@D)
	sed -e 's|@prefix@|$(PREFIX)|; s|@libdir@|$(LIBDIR)|; s|@includedir@|$(INCLUDEDIR)|' \
	    -e 's|@version@|$(LIBSOTTO_VERSION)|' $< > $@
$(PKG_BUILD)/org.sotto.Sotto1.service.%: dbus/org.sotto.Sotto1.service.% FORCE
	@mkdir -p $(@D)
	$(PKG_SED) $< > $@
$(PKG_BUILD)/%.service: packaging/%.service FORCE
	@mkdir -p $(@D)
	$(PKG_SED) $< > $@

install: $(PKG_SOURCES)
	@set -e; for f in $(PKG_FILES); do \
		IFS=: read -r mode src dst <<< "$$f"; \
		echo "  INSTALL $(DESTDIR)$$dst"; \
		$(INSTALL) -D -m "$$mode" "$$src" "$(DESTDIR)$$dst"; \
	done; \
	for l in $(PKG_LINKS); do \
		IFS=: read -r dst target <<< "$$l"; \
		echo "  LINK    $(DESTDIR)$$dst"; \
		ln -sfn "$$target" "$(DESTDIR)$$dst"; \
	done

# Removes the files and links, then the directories of sotto's own that are
# left empty (never shared ones such as $(BINDIR)).
uninstall:
	@for f in $(PKG_FILES) $(PKG_LINKS); do \
		IFS=: read -r a b c <<< "$$f"; dst=$${c:-$$a}; \
		echo "  RM      $(DESTDIR)$$dst"; rm -f "$(DESTDIR)$$dst"; \
	done; \
	rmdir "$(DESTDIR)$(PKG_LIBEXEC)" "$(DESTDIR)$(SYSCONFDIR)/sotto" "$(DESTDIR)$(DOCDIR)/examples" "$(DESTDIR)$(DOCDIR)" \
		2>/dev/null || true

install uninstall: SHELL := /bin/bash
FORCE:
.PHONY: install uninstall FORCE

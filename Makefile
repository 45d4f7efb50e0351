# ipiv: build, test and install everything from one place.
# Quiet by default; `make V=1` prints full commands. Outputs live in .output/.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(PREFIX)/bin
LIBEXECDIR := $(PREFIX)/libexec/ipiv
SYSTEMDDIR ?= /lib/systemd/system

OUT := .output
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := x86

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# the commit's date, so that a build of one commit prints the same everywhere
BUILD_DATE := $(shell git log -1 --format=%cd --date=format:%Y%m%d-%H:%M:%S 2>/dev/null || echo unknown)
# As Prometheus' builds stamp them; `make BRANCH=... BUILD_USER=...` for a reproducible build
BRANCH ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell echo "$$(id -un 2>/dev/null || echo unknown)@$$(hostname 2>/dev/null || echo unknown)")
VERSION_DEFS := -DIPIV_VERSION='"$(VERSION)"' -DIPIV_REVISION='"$(REVISION)"' \
		-DIPIV_BUILD_DATE='"$(BUILD_DATE)"' -DIPIV_BRANCH='"$(BRANCH)"' \
		-DIPIV_BUILD_USER='"$(BUILD_USER)"'
# `make CFLAGS=...` (e.g. -O0 -fsanitize=address,undefined) adds to the project's flags
# instead of replacing them; every object is rebuilt when the flags change.
CFLAGS ?= -O2 -g
override CFLAGS += -Wall -Wextra -Wno-unused-parameter -std=gnu11 -D_GNU_SOURCE \
	  -Iinclude -I$(OUT) -Idaemon -Idaemon/lib -Ibench
LDLIBS_BPF := -lbpf -lelf -lz
LDLIBS_DAEMON := $(LDLIBS_BPF) -lmicrohttpd -ljansson -lsystemd -lprotobuf-c -lyaml -lgnutls -lcrypt -lpthread -lm
LDLIBS_TOP := $(LDLIBS_DAEMON) -lncursesw -ltinfo

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
# Keep intermediate files (BPF objects, test objects): the next make rebuilds nothing.
.SECONDARY:
.DEFAULT_GOAL := all

BINARIES :=
UNIT_TESTS :=

# Each part of the tree describes its own outputs.
include bench/build.mk
include bpf/build.mk
include daemon/build.mk
include tests/build.mk
-include kernel-patches/build.mk

# Prometheus' protobuf exposition (daemon/lib/expo_proto.c): C generated from our subset of
# its schema, daemon/lib/metrics.proto, and archived with the rest of daemon/lib.
PROTOC_C ?= protoc-c
$(OUT)/metrics.pb-c.c $(OUT)/metrics.pb-c.h &: daemon/lib/metrics.proto | $(OUT)
	$(call msg,PROTOC,$<)
	$(Q)$(PROTOC_C) --proto_path=daemon/lib --c_out=$(OUT) $<
$(OUT)/metrics.pb-c.o: $(OUT)/metrics.pb-c.c $(OUT)/flags.stamp
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(OUT)/daemon/lib/expo_proto.o $(OUT)/tests/unit/test_expo_proto.o \
	$(OUT)/tests/unit/test_metrics.o: $(OUT)/metrics.pb-c.h
$(OUT)/libipiv.a: $(OUT)/metrics.pb-c.o

all: $(BINARIES)

# Objects that print the version are rebuilt when it changes (a new commit).
VERSION_USERS := $(patsubst %.c,$(OUT)/%.o,$(shell grep -l IPIV_VERSION daemon/*/*.c bench/*.c 2>/dev/null))
$(OUT)/version.stamp: FORCE | $(OUT)
	$(Q)echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(VERSION_USERS): $(OUT)/version.stamp
$(OUT)/flags.stamp: FORCE | $(OUT)
	$(Q)echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
FORCE:
.PHONY: FORCE

$(OUT):
	$(Q)mkdir -p $@

$(OUT)/%.o: %.c $(OUT)/flags.stamp | $(OUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(VERSION_DEFS) -MMD -MP -c $< -o $@

install: all
	$(call msg,INSTALL,$(DESTDIR)$(BINDIR))
	$(Q)install -d $(DESTDIR)$(BINDIR)
	$(Q)install -m 0755 $(BINARIES) $(DESTDIR)$(BINDIR)/
	$(Q)if [ -f systemd/ipivd.service ]; then \
		install -d $(DESTDIR)$(SYSTEMDDIR); \
		sed 's|@BINDIR@|$(BINDIR)|g' systemd/ipivd.service > $(DESTDIR)$(SYSTEMDDIR)/ipivd.service; \
	fi
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX)/share/man)
	$(Q)for p in docs/man/*.[1-8]; do \
		d=$(DESTDIR)$(PREFIX)/share/man/man$${p##*.}; \
		install -d $$d && gzip -9n < $$p > $$d/$${p##*/}.gz && chmod 0644 $$d/$${p##*/}.gz || exit 1; \
	done

uninstall:
	$(Q)for b in $(notdir $(BINARIES)); do rm -f $(DESTDIR)$(BINDIR)/$$b; done
	$(Q)rm -f $(DESTDIR)$(SYSTEMDDIR)/ipivd.service
	$(Q)for p in docs/man/*.[1-8]; do rm -f $(DESTDIR)$(PREFIX)/share/man/man$${p##*.}/$${p##*/}.gz; done

clean:
	$(call msg,CLEAN,$(OUT))
	$(Q)rm -rf $(OUT)

.PHONY: all install uninstall clean

-include $(shell find $(OUT)/bench $(OUT)/daemon $(OUT)/tests -name '*.d' -type f 2>/dev/null)

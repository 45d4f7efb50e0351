# BPF objects: bpf/<name>.bpf.c -> .output/bpf/<name>.bpf.o -> .output/<name>.skel.h
# vmlinux.h holds core kernel types only, dumped from the build host's BTF; KVM types
# are reached through ___flavor shadow structs, so the object does not depend on it.

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(OUT)/bpf/%.bpf.o)
BPF_SKELS := $(BPF_SRCS:bpf/%.bpf.c=$(OUT)/%.skel.h)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
# -mcpu=v3: atomic compare-and-swap and exchange (Linux 5.12+) for the per-thread counter cache
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I$(OUT) -Iinclude -Wall \
	      -Wno-unused-function -Wno-compare-distinct-pointer-types

$(OUT)/vmlinux.h: | $(OUT)
	$(call msg,GEN,$@)
	$(Q)test -r $(VMLINUX_BTF) || { echo "error: $(VMLINUX_BTF) missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y (or set VMLINUX_BTF=)" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(OUT)/vmlinux.h $(wildcard include/*.h bpf/*.h) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

bpf: $(BPF_SKELS)
.PHONY: bpf

# Each BPF header stands on its own: compiled alone, nothing included before it, with the
# objects' flags and warnings as errors (`make check-bpf-headers`; `make` runs it too).
BPF_HEADERS := $(wildcard bpf/*.bpf.h)
BPF_HEADER_CHECKS := $(BPF_HEADERS:bpf/%.bpf.h=$(OUT)/bpf/%.bpf.h.alone)

$(OUT)/bpf/%.bpf.h.alone: bpf/%.bpf.h $(OUT)/vmlinux.h $(wildcard include/*.h bpf/*.h) | $(OUT)
	$(call msg,HEADER,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)printf '#include "%s"\n' $(notdir $<) | \
		$(CLANG) $(BPF_CFLAGS) -Ibpf -Werror -x c -fsyntax-only -
	$(Q)touch $@

all: $(BPF_HEADER_CHECKS)
check-bpf-headers: $(BPF_HEADER_CHECKS)
.PHONY: check-bpf-headers

# ipivbench: a self-contained IPI microbenchmark VMM.
# Guest code is assembled from bench/guest/*.S into flat binaries and embedded.

BENCH_LIB_SRCS := $(filter-out bench/ipivbench.c bench/vmm.c bench/ipiv-empty-probes.c \
			       bench/ipiv-line-cost.c,\
			    $(wildcard bench/*.c))
BENCH_LIB_OBJS := $(BENCH_LIB_SRCS:%.c=$(OUT)/%.o)
GUEST_BINS := $(OUT)/bench/guest/guest16.bin $(OUT)/bench/guest/guest64.bin

$(OUT)/libbench.a: $(BENCH_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/bench/guest/guest16.o: bench/guest/guest16.S bench/guest/layout.h | $(OUT)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -m32 -c -Ibench/guest $< -o $@

$(OUT)/bench/guest/guest64.o: bench/guest/guest64.S bench/guest/layout.h | $(OUT)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -m64 -c -Ibench/guest $< -o $@

$(OUT)/bench/guest/guest16.bin: $(OUT)/bench/guest/guest16.o bench/guest/guest16.ld
	$(call msg,LD,$@)
	$(Q)ld -m elf_i386 -T bench/guest/guest16.ld --oformat binary $< -o $@

$(OUT)/bench/guest/guest64.bin: $(OUT)/bench/guest/guest64.o bench/guest/guest64.ld
	$(call msg,LD,$@)
	$(Q)ld -m elf_x86_64 -T bench/guest/guest64.ld --oformat binary $< -o $@

$(OUT)/bench/guest_blobs.o: bench/guest_blobs.S $(GUEST_BINS)
	$(call msg,AS,$@)
	$(Q)$(CC) -c -I$(OUT)/bench/guest $< -o $@

ifneq ($(wildcard bench/ipivbench.c),)
BINARIES += $(OUT)/ipivbench
$(OUT)/ipivbench: $(OUT)/bench/ipivbench.o $(OUT)/bench/vmm.o $(OUT)/bench/guest_blobs.o \
		  $(OUT)/libbench.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -ljansson -lpthread -lm -o $@
endif

# The empty-program loader of bench/overhead.sh: built with everything, not installed.
ifneq ($(wildcard bench/ipiv-empty-probes.c),)
all: $(OUT)/ipiv-empty-probes
$(OUT)/bench/ipiv-empty-probes.o: $(OUT)/empty.skel.h
$(OUT)/ipiv-empty-probes: $(OUT)/bench/ipiv-empty-probes.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_BPF) -o $@
endif

# What a collector snapshot costs as the latency map fills (docs/overhead.md): built with
# everything, not installed.
ifneq ($(wildcard bench/ipiv-snapshot-bench.c),)
all: $(OUT)/ipiv-snapshot-bench
$(OUT)/bench/ipiv-snapshot-bench.o: $(OUT)/ipiv.skel.h
$(OUT)/ipiv-snapshot-bench: $(OUT)/bench/ipiv-snapshot-bench.o $(OUT)/libipiv.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_DAEMON) -o $@
endif

# The map filler of bench/scale.sh: fills a running ipivd's maps with more vCPUs of the VMs it
# watches (docs/overhead.md, "Scale"); built with everything, not installed. Needs only
# include/ and libbpf, none of the daemon's code.
ifneq ($(wildcard bench/ipiv-scale-fill.c),)
all: $(OUT)/ipiv-scale-fill
$(OUT)/ipiv-scale-fill: $(OUT)/bench/ipiv-scale-fill.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_BPF) -o $@
endif

# What a cache line handed between two CPUs, a clock read and a locked add cost on this host:
# the parts of an IPI's latency tracking no design avoids (docs/overhead.md). Not installed.
ifneq ($(wildcard bench/ipiv-line-cost.c),)
all: $(OUT)/ipiv-line-cost
$(OUT)/ipiv-line-cost: $(OUT)/bench/ipiv-line-cost.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lpthread -o $@
endif

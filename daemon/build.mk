# The core shared by ipivd and ipivtop (daemon/lib: collector, snapshot queries, naming,
# acceleration state, diagnosis, exposition format) and one folder per program.

DAEMON_LIB_SRCS := $(wildcard daemon/lib/*.c)
DAEMON_LIB_OBJS := $(DAEMON_LIB_SRCS:%.c=$(OUT)/%.o)
IPIVD_SRCS := $(filter-out daemon/ipivd/main.c,$(wildcard daemon/ipivd/*.c))
IPIVD_OBJS := $(IPIVD_SRCS:%.c=$(OUT)/%.o)
IPIVTOP_SRCS := $(filter-out daemon/ipivtop/main.c,$(wildcard daemon/ipivtop/*.c))
IPIVTOP_OBJS := $(IPIVTOP_SRCS:%.c=$(OUT)/%.o)

# Sources include generated skeletons; build them first.
$(DAEMON_LIB_OBJS) $(IPIVD_OBJS) $(IPIVTOP_OBJS) $(OUT)/daemon/ipivd/main.o \
	$(OUT)/daemon/ipivtop/main.o: $(BPF_SKELS)

$(OUT)/libipiv.a: $(DAEMON_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/libipivd.a: $(IPIVD_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/libipivtop.a: $(IPIVTOP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

BINARIES += $(OUT)/ipivd
$(OUT)/ipivd: $(OUT)/daemon/ipivd/main.o $(OUT)/libipivd.a $(OUT)/libipiv.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_DAEMON) -o $@

BINARIES += $(OUT)/ipivtop
$(OUT)/ipivtop: $(OUT)/daemon/ipivtop/main.o $(OUT)/libipivtop.a $(OUT)/libipiv.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_TOP) -o $@

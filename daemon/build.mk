# The collector library (daemon/lib/*.c, shared by ipivd and ipivtop) and the daemons.

DAEMON_LIB_SRCS := $(wildcard daemon/lib/*.c)
DAEMON_LIB_OBJS := $(DAEMON_LIB_SRCS:%.c=$(OUT)/%.o)

# Sources include generated skeletons; build them first.
$(DAEMON_LIB_OBJS) $(OUT)/daemon/ipivd.o $(OUT)/daemon/ipivtop.o: $(BPF_SKELS)

$(OUT)/libipiv.a: $(DAEMON_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

ifneq ($(wildcard daemon/ipivd.c),)
BINARIES += $(OUT)/ipivd
$(OUT)/ipivd: $(OUT)/daemon/ipivd.o $(OUT)/libipiv.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_DAEMON) -o $@
endif

ifneq ($(wildcard daemon/ipivtop.c),)
BINARIES += $(OUT)/ipivtop
$(OUT)/ipivtop: $(OUT)/daemon/ipivtop.o $(OUT)/libipiv.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS_TOP) -o $@
endif

# libFuzzer harnesses (tests/fuzz/fuzz_<name>.c), one per parser of untrusted input, with a
# seed corpus each in tests/fuzz/corpus/<name>/. They build in a tree of their own,
# FUZZ_OUT, where the daemon's sources get the same instrumentation (coverage, ASan, UBSan
# with every finding fatal) from clang.
# make fuzz: builds them. make check-fuzz: runs each for FUZZ_SECONDS (default 20) over its
# corpus, new inputs into a temp dir; a crash fails it and leaves the reproducer in
# FUZZ_OUT/artifacts/<name>/ (tests/fuzz/check-fuzz). Part of make check.

FUZZ_OUT ?= .output-fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS ?= -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	       -fno-sanitize-recover=undefined
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(FUZZ_SRCS:%.c=$(OUT)/%)

# libFuzzer's main comes in at the link; the libraries carry its instrumentation already.
$(OUT)/tests/fuzz/fuzz_%: $(OUT)/tests/fuzz/fuzz_%.o $(OUT)/libipivd.a $(OUT)/libipivtop.a \
			  $(OUT)/libipiv.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer $^ $(LDLIBS_DAEMON) -o $@

fuzz:
	$(Q)$(MAKE) --no-print-directory OUT=$(FUZZ_OUT) CC=$(FUZZ_CC) CFLAGS='$(FUZZ_CFLAGS)' \
		fuzzers

fuzzers: $(FUZZERS)

check-fuzz:
	$(Q)tests/fuzz/check-fuzz

FUZZ_CHECKS := tests/fuzz/check-fuzz

.PHONY: fuzz fuzzers check-fuzz

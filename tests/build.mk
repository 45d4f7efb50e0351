# Tests. Unit tests (tests/unit/test_*.c, cmocka) need nothing but a compiler.
# BPF tests (tests/bpf/test_*.c) load the real programs: root and BPF required.
# End-to-end tests (tests/e2e/test_*.sh) drive real guests: root, KVM and BPF required.
# A test that cannot run says so and exits 77 (skip); under CI=true a skip is a failure.

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:%.c=$(OUT)/%)
BPF_TEST_SRCS := $(wildcard tests/bpf/test_*.c)
BPF_TESTS := $(BPF_TEST_SRCS:%.c=$(OUT)/%)
E2E_TESTS := $(sort $(wildcard tests/e2e/test_*.sh))
TEST_LIBS := $(OUT)/libipivd.a $(OUT)/libipivtop.a $(OUT)/libipiv.a $(OUT)/libbench.a

$(OUT)/tests/unit/%: $(OUT)/tests/unit/%.o $(TEST_LIBS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS_DAEMON) -lcmocka -o $@

$(OUT)/tests/bpf/%: $(OUT)/tests/bpf/%.o $(TEST_LIBS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS_DAEMON) -lcmocka -o $@

# BPF tests include the generated skeletons (a static rule: a pattern rule without a
# recipe would cancel the compile rule instead of adding a prerequisite).
$(BPF_TEST_SRCS:%.c=$(OUT)/%.o): $(BPF_SKELS)

tests: $(UNIT_TESTS) $(BPF_TESTS)

check-unit: $(UNIT_TESTS)
	$(Q)tests/run-tests unit $(UNIT_TESTS)

check-bpf: $(BPF_TESTS)
	$(Q)tests/run-tests bpf $(BPF_TESTS)

check-e2e: all
	$(Q)tests/run-tests e2e $(E2E_TESTS)

# The end-to-end tests that boot a nested SVM host (tests/nested/), also part of check-e2e.
check-nested: all
	$(Q)tests/run-tests nested $(filter tests/e2e/test_nested_%,$(E2E_TESTS))

# Layout: every C file as .clang-format says (`make format` applies it); pure modules
# need no libbpf (check-pure-modules); deploy/'s rules and dashboard are the monitoring
# mixin's rendering (check-mixin; `make mixin` renders them).
LINT_CHECKS := tests/lint/check-format tests/lint/check-pure-modules tests/lint/check-mixin

format:
	$(Q)git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^kernel-patches/' | \
		xargs clang-format -i

mixin:
	$(Q)deploy/mixin/render deploy

# check-pure-modules reads the daemon's objects as make builds them.
check-format: $(DAEMON_LIB_OBJS) $(IPIVD_OBJS) $(IPIVTOP_OBJS) $(OUT)/daemon/ipivd/main.o \
	$(OUT)/daemon/ipivtop/main.o
	$(Q)tests/run-tests lint $(LINT_CHECKS)

# Sanitizer build and fuzzing: each builds a tree of its own (.output-san, .output-fuzz).
include tests/sanitize/build.mk
include tests/fuzz/build.mk

check: all tests
	$(Q)tests/run-tests all $(LINT_CHECKS) -- $(UNIT_TESTS) -- $(BPF_TESTS) -- $(E2E_TESTS) -- \
		$(KERNEL_CHECKS) -- $(SANITIZE_CHECKS) $(FUZZ_CHECKS)

.PHONY: tests check check-unit check-bpf check-e2e check-nested format mixin check-format

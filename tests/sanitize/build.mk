# The whole tree built with AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer
# (every finding fatal) into a tree of its own, SAN_OUT.
# make sanitize: builds it. make check-sanitize: runs every unit and BPF test and ipivd's
# end-to-end scenario on that build; any sanitizer report fails it
# (tests/sanitize/check-sanitize). Part of make check.

SAN_OUT ?= .output-san
SAN_CC ?= clang
SAN_CFLAGS ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	      -fno-sanitize-recover=undefined

sanitize:
	$(Q)$(MAKE) --no-print-directory OUT=$(SAN_OUT) CC=$(SAN_CC) CFLAGS='$(SAN_CFLAGS)' \
		all tests

check-sanitize:
	$(Q)tests/sanitize/check-sanitize

.PHONY: sanitize check-sanitize

SANITIZE_CHECKS := tests/sanitize/check-sanitize

# Shared helpers of the end-to-end tests: preconditions (exit 77 = cannot run here),
# failure reporting, and the paths of the built binaries.
set -u
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$E2E_ROOT/.output
IPIVBENCH=$OUT/ipivbench
IPIVD=$OUT/ipivd

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

require_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }
require_kvm() { [ -c /dev/kvm ] || skip "needs /dev/kvm"; }
require_cmd() { for c in "$@"; do command -v "$c" >/dev/null || skip "needs $c"; done; }
require_bin() { for b in "$@"; do [ -x "$b" ] || fail "$b not built (run make)"; done; }

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

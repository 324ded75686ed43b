#!/usr/bin/env bash
# The one test command (README): installs what the tests need, builds every
# binary, then runs every test — unit, parser, simulator, generator, and the
# end-to-end tests under real runc, crun and podman. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup-runtimes.sh
cargo build --workspace --all-targets --locked
# The README's first command, so it stays true.
examples/demo.sh a100x8 >/dev/null
echo "README demo (examples/demo.sh a100x8): ok"
cargo test --workspace --locked "$@"

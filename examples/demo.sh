#!/usr/bin/env bash
# Run mig-cdi-gen on a simulated machine, with no GPU: the NVML simulator
# (libnvml_sim.so, loaded through the same nvml-wrapper code path as the real
# libnvidia-ml.so.1) plus a fake driver root with real char nodes.
#
#   examples/demo.sh [MACHINE] [mig-cdi-gen ARGS...]
#
# MACHINE is a file in examples/machines (default a100x8); ARGS default to
# `list` then `list --profiles`. Needs root (the fake root's device nodes are
# made with mknod).
set -euo pipefail
cd "$(dirname "$0")/.."
machine=${1:-a100x8}
shift || true
cargo build --quiet --workspace --bins --lib
target=${CARGO_TARGET_DIR:-target}/debug
desc=examples/machines/$machine.json
[ -f "$desc" ] || { echo "demo: no machine $desc (have: $(ls examples/machines | sed 's/\.json//' | tr '\n' ' '))" >&2; exit 2; }
root=$(mktemp -d /tmp/mig-cdi-demo.XXXXXX)
trap 'rm -rf "$root"' EXIT
"$target/mig-cdi-sim" make-root "$desc" "$root/root"
gen() {
    echo "\$ mig-cdi-gen $*" >&2
    NVML_SIM_MACHINE=$desc "$target/mig-cdi-gen" --root "$root/root" --nvml-lib "$target/libnvml_sim.so" "$@"
}
if [ $# -gt 0 ]; then
    gen "$@"
else
    gen list
    echo
    gen list --profiles
fi

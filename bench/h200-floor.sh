#!/usr/bin/env bash
# mig-cdi-gen generate against its NVML floor, on a real node (written for
# the H200; works on any): hyperfine times
#   - nvml_floor: load NVML, init, each GPU's UUID, minor number and MIG
#     mode, shutdown (cdi-gen/examples/nvml_floor.rs) - the least any tool
#     naming the GPUs must do;
#   - mig-cdi-gen generate to stdout (with the driver's files, and with
#     --no-driver-files), and to a file (atomic write, fsync);
#   - mig-cdi-gen list --json, and nvidia-smi -L where it is installed;
# in one run, so every figure has its same-run floor. hyperfine's JSON
# goes to OUT_DIR, with each command's output once (a sanity check) and
# a summary (median, and the difference to the floor).
#
#   bench/h200-floor.sh GEN FLOOR OUT_DIR
#
# GEN: the mig-cdi-gen binary (target/release/mig-cdi-gen); FLOOR: the
# floor (cargo build --release -p mig-cdi-gen --example nvml_floor, then
# target/release/examples/nvml_floor). Environment: RUNS (default 100),
# WARMUP (10), NVML_LIB (libnvidia-ml.so.1, given to both as --nvml-lib),
# ROOT (/, mig-cdi-gen --root), HYPERFINE (hyperfine). Against the
# simulator, as the demo loads it (examples/demo.sh):
#   NVML_SIM_MACHINE=examples/machines/h200.json NVML_LIB=target/release/libnvml_sim.so \
#     ROOT=<fake root from mig-cdi-sim make-root> bench/h200-floor.sh GEN FLOOR OUT_DIR
set -euo pipefail

if [ $# -ne 3 ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
fi
gen=$1 floor=$2 out=$3
for bin in "$gen" "$floor"; do
    [ -x "$bin" ] || { echo "h200-floor: $bin is not an executable" >&2; exit 2; }
done
hyperfine=${HYPERFINE:-hyperfine}
command -v "$hyperfine" >/dev/null || { echo "h200-floor: no $hyperfine (set HYPERFINE)" >&2; exit 2; }
RUNS=${RUNS:-100} WARMUP=${WARMUP:-10}
nvml=(--nvml-lib "${NVML_LIB:-libnvidia-ml.so.1}")
host=(--root "${ROOT:-/}" "${nvml[@]}")
mkdir -p "$out"
tmp=$(mktemp -d /tmp/mig-cdi-floor.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
spec=$tmp/cdi/nvidia.com-gpu.json

# Each command once, outside the timing: it must work, and its output is kept.
"$floor" "${nvml[@]}" >"$out/floor.txt"
"$gen" "${host[@]}" generate >"$out/generate.json"
"$gen" "${host[@]}" generate --output "$spec" 2>"$out/generate-output.txt"
"$gen" "${host[@]}" list --json >"$out/list.json"

# hyperfine -N splits a command line like a shell: quote every word.
line() { printf '%q ' "$@"; }
cmds=(
    -n "nvml_floor" "$(line "$floor" "${nvml[@]}")"
    -n "mig-cdi-gen generate" "$(line "$gen" "${host[@]}" generate)"
    -n "mig-cdi-gen generate --no-driver-files" "$(line "$gen" "${host[@]}" generate --no-driver-files)"
    -n "mig-cdi-gen generate --output" "$(line "$gen" "${host[@]}" generate --output "$spec")"
    -n "mig-cdi-gen list --json" "$(line "$gen" "${host[@]}" list --json)"
)
if command -v nvidia-smi >/dev/null; then
    cmds+=(-n "nvidia-smi -L" "$(line "$(command -v nvidia-smi)" -L)")
fi
"$hyperfine" -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$out/hyperfine-floor.json" \
    "${cmds[@]}" | tee "$out/hyperfine.txt"

if command -v python3 >/dev/null; then
    python3 - "$out/hyperfine-floor.json" <<'PY' | tee "$out/summary.txt"
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
floor = statistics.median(next(r for r in results if r["command"] == "nvml_floor")["times"])
print(f"{'command':42} {'median':>10} {'vs floor':>12} {'ratio':>7}")
for r in results:
    median = statistics.median(r["times"])
    print(f"{r['command']:42} {median * 1e3:7.2f} ms {(median - floor) * 1e3:+9.2f} ms "
          f"x{median / floor:5.2f}")
PY
fi
echo "h200-floor: results in $out"

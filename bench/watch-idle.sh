#!/usr/bin/env bash
# Idle cost of `mig-cdi-gen watch`: on the simulated 8 x A100 machine with
# 7 MIG devices each (bench/machines/bench-8x7.json), with the default
# --interval 1 and --full-every 60, nothing changing, the CPU time (user +
# system, /proc/<pid>/stat) watch uses over DURATION seconds after its
# first write, as a percentage of one core. Goal: < 0.5 %.
#
#   bench/watch-idle.sh, as root   (DURATION=60 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
cargo build --quiet --release -p mig-cdi-gen -p nvml-sim
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
work=$(mktemp -d /tmp/mig-cdi-watch-idle.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

m=bench/machines/bench-8x7.json
"$T/mig-cdi-sim" make-root "$m" "$work/root" >/dev/null
NVML_SIM_MACHINE=$PWD/$m "$T/mig-cdi-gen" --root "$work/root" --nvml-lib "$T/libnvml_sim.so" \
    watch --output "$work/cdi/nvidia.com-gpu.json" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q 'wrote' "$work/log" && break; sleep 0.1; done
grep -q 'wrote' "$work/log" || { cat "$work/log"; echo "watch wrote nothing" >&2; exit 1; }
# utime + stime, fields 14 and 15 of /proc/<pid>/stat (after the "(comm)").
ticks() { sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)
t0=$(ticks) s0=$(date +%s.%N)
sleep "$DURATION"
t1=$(ticks) s1=$(date +%s.%N)
kill -TERM "$pid"; wait "$pid" || true; pid=
python3 - "$t0" "$t1" "$s0" "$s1" "$hz" <<'PY'
import sys
t0, t1, s0, s1, hz = map(float, sys.argv[1:])
cpu = (t1 - t0) / hz
print(f"watch idle, 8 GPUs x 7 MIG devices: {cpu:.2f} s CPU in {s1 - s0:.1f} s = {100 * cpu / (s1 - s0):.3f} % of one core")
PY
echo "its log:"; cat "$work/log"

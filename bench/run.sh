#!/usr/bin/env bash
# Whole-process benchmarks with public tools (hyperfine, /usr/bin/time),
# each figure next to a baseline measured in the same run:
#   - mig-cdi-gen generate on simulated machines of 1, 8 and 32 A100s with
#     7 MIG devices each (simulator included): median time, peak RSS;
#   - the mig-cdi-hook process on the 8-GPU spec vs /bin/true;
#   - `runc run` and `crun run` of a /bin/true container with our hook
#     injecting a MIG device vs /bin/true as the hook;
#   - `runc run` through mig-cdi-runtime writing a MIG device into
#     config.json vs `runc run` with the edits already there.
# Prints a table (bench/report.py); raw hyperfine JSON is kept in $OUT_DIR.
#
#   bench/run.sh, as root   (RUNS=200 by default; OUT_DIR=a temp dir; KEEP_WORK=1 keeps
#                        the fake roots, specs and bundles for profiling)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
tests/setup-runtimes.sh >/dev/null
cargo build --quiet --release --workspace --bins --lib
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/mig-cdi-bench.XXXXXX)}
mkdir -p "$OUT_DIR"
work=$(mktemp -d /tmp/mig-cdi-bench-work.XXXXXX)
# Lease state on a tmpfs, as /run is on a node (on this VM's ext4 the fsync
# of each lease change would be measured instead).
state=$(mktemp -d /dev/shm/mig-cdi-bench-state.XXXXXX)
sleeper=
cleanup() {
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
    rm -rf "$state"
    if [ -n "${KEEP_WORK:-}" ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

GEN=$T/mig-cdi-gen HOOK=$T/mig-cdi-hook SIM=$T/libnvml_sim.so
rss() { # median peak RSS (KiB) of 21 runs of "$@"
    for _ in $(seq 21); do /usr/bin/time -f %M "$@" 2>&1 >/dev/null </dev/null | tail -1; done |
        sort -n | sed -n 11p
}

# 1. generate, 1 / 8 / 32 GPUs x 7 MIG devices.
for n in 1 8 32; do
    m=bench/machines/bench-${n}x7.json
    "$T/mig-cdi-sim" make-root "$m" "$work/root-$n" >/dev/null
    export NVML_SIM_MACHINE=$m
    gen=("$GEN" --root "$work/root-$n" --nvml-lib "$SIM" generate)
    "${gen[@]}" >"$work/spec-$n.json"
    hyperfine -N --style none --warmup 10 --runs "$RUNS" --export-json "$OUT_DIR/generate-$n.json" \
        -n "generate ${n}x7" "${gen[*]}" -n "/bin/true" /bin/true >/dev/null
    echo "generate ${n}x7 $(rss "${gen[@]}")" >>"$OUT_DIR/rss.txt"
done
# The hook and runtime rows use the device-only spec: the hook makes nodes
# only (it refuses a spec with mounts), and the stand-in driver files of the
# simulated root are not on this host to mount.
NVML_SIM_MACHINE=bench/machines/bench-8x7.json \
    "$GEN" --root "$work/root-8" --nvml-lib "$SIM" generate --no-driver-files >"$work/spec-8-nodes.json"
unset NVML_SIM_MACHINE
echo "/bin/true $(rss /bin/true)" >>"$OUT_DIR/rss.txt"

# 2. The hook process on the 8-GPU spec, against a stand-in container: a
#    process with its own mount namespace and a tmpfs /dev under a root
#    folder. The device rules allow the nodes, so every run goes the whole
#    decision path (state, config, spec lookup, checks, freshness against
#    the driver tables) and then finds the nodes already injected.
mkdir -p "$work/cdi" "$work/ctr/rootfs/dev" "$work/ctr/bundle"
cp "$work/spec-8-nodes.json" "$work/cdi/nvidia.com-gpu.json"
unshare -m --propagation private sleep 3600 &
sleeper=$!
sleep 0.3
nsenter -t "$sleeper" -m mount -t tmpfs tmpfs "$work/ctr/rootfs/dev"
rules=$(python3 - "$work/spec-8-nodes.json" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
dev = next(d for d in spec["devices"] if d["name"] == "3:1")
nodes = dev["containerEdits"]["deviceNodes"] + spec["containerEdits"]["deviceNodes"]
rules = [{"allow": False, "access": "rwm"}] + [
    {"allow": True, "type": "c", "major": n["major"], "minor": n["minor"], "access": n.get("permissions", "rw")}
    for n in nodes]
print(json.dumps(rules))
PY
)
cat >"$work/ctr/bundle/config.json" <<JSON
{"ociVersion":"1.0.2","root":{"path":"$work/ctr/rootfs"},
 "process":{"args":["/bin/true"],"env":["PATH=/bin","NVIDIA_VISIBLE_DEVICES=3:1"]},
 "linux":{"resources":{"devices":$rules}}}
JSON
printf '{"ociVersion":"1.0.2","id":"bench","status":"creating","pid":%s,"bundle":"%s"}' \
    "$sleeper" "$work/ctr/bundle" >"$work/state.json"
hook=("$HOOK" --root "$work/root-8" --spec-dir "$work/cdi" --state-dir "$state/hook" createRuntime)
"${hook[@]}" <"$work/state.json"   # first run injects; the benchmark reruns keep
hyperfine -S sh --style none --warmup 20 --runs "$RUNS" --export-json "$OUT_DIR/hook.json" \
    -n "mig-cdi-hook (8x7 spec)" "${hook[*]} < $work/state.json" \
    -n "/bin/true" "/bin/true < $work/state.json" >/dev/null
echo "mig-cdi-hook $(rss sh -c "${hook[*]} < $work/state.json")" >>"$OUT_DIR/rss.txt"
echo "sh+/bin/true $(rss sh -c "/bin/true < $work/state.json")" >>"$OUT_DIR/rss.txt"

# 3. runc run / crun run of a /bin/true container: our hook injecting MIG
#    device 3:1 vs /bin/true as the createRuntime hook. Same bundle otherwise.
for which in hook true; do
    b=$work/run-$which
    mkdir -p "$b"
    if [ "$which" = hook ]; then
        entry="{\"path\":\"$HOOK\",\"args\":[\"mig-cdi-hook\",\"--root\",\"$work/root-8\",\"--spec-dir\",\"$work/cdi\",\"--state-dir\",\"$state/run\",\"createRuntime\"]}"
    else
        entry='{"path":"/bin/true","args":["true"]}'
    fi
    python3 - "$b/config.json" "$entry" "$rules" /var/lib/mig-cdi-tests/rootfs <<'PY'
import json, subprocess, sys, tempfile, os
out, entry, rules, rootfs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
with tempfile.TemporaryDirectory() as d:
    subprocess.run(["runc", "spec", "-b", d], check=True)
    spec = json.load(open(os.path.join(d, "config.json")))
spec["root"] = {"path": rootfs, "readonly": True}
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
spec["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=3:1")
spec["hooks"] = {"createRuntime": [entry]}
spec["linux"]["resources"]["devices"] = rules
json.dump(spec, open(out, "w"))
PY
done
# Container starts are noisy (tens of ms, a few ms of spread): measure in
# ROUNDS short rounds that alternate which variant goes first, so a drift of
# the machine during the run falls on both alike.
ROUNDS=${ROUNDS:-6}
# alternate PREFIX NAME_A CMD_A NAME_B CMD_B: ROUNDS hyperfine runs of the
# two, the first of them swapped each round, into $OUT_DIR/PREFIX-N.json.
alternate() {
    local prefix=$1 a=(-n "$2" "$3") b=(-n "$4" "$5") order round
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 0 ]; then order=("${a[@]}" "${b[@]}"); else order=("${b[@]}" "${a[@]}"); fi
        hyperfine -N --style none --warmup 3 --runs "$((RUNS / ROUNDS + 1))" \
            --export-json "$OUT_DIR/$prefix-$round.json" "${order[@]}" >/dev/null
    done
}
for rt in runc crun; do
    alternate "$rt" \
        "$rt run + mig-cdi-hook" "$rt run -b $work/run-hook bench-mig-cdi-hook" \
        "$rt run + /bin/true hook" "$rt run -b $work/run-true bench-mig-cdi-true"
done

# 4. runc run through mig-cdi-runtime writing MIG device 3:1 into
#    config.json vs runc run of the same container with those edits already
#    there. The wrapper re-reads, re-checks and rewrites config.json on
#    every run (its edits are idempotent), as it does for a new container.
ln -sf "$HOOK" "$work/mig-cdi-runtime"
printf 'runtime = %s\nroot = %s\nspec-dir = %s\nstate-dir = %s\n' "$(command -v runc)" "$work/root-8" \
    "$work/cdi" "$state/rt" >"$work/mig-cdi-runtime.conf"
mkdir -p "$work/rt-wrap" "$work/rt-plain"
python3 - "$work/rt-wrap/config.json" /var/lib/mig-cdi-tests/rootfs <<'PY'
import json, subprocess, sys, tempfile, os
out, rootfs = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as d:
    subprocess.run(["runc", "spec", "-b", d], check=True)
    spec = json.load(open(os.path.join(d, "config.json")))
spec["root"] = {"path": rootfs, "readonly": True}
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
spec["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=3:1")
spec["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
json.dump(spec, open(out, "w"))
PY
"$work/mig-cdi-runtime" run -b "$work/rt-wrap" bench-mig-cdi-rt-prep >/dev/null
cp "$work/rt-wrap/config.json" "$work/rt-plain/config.json"
alternate runtime \
    "runc run via mig-cdi-runtime" "$work/mig-cdi-runtime run -b $work/rt-wrap bench-mig-cdi-rt" \
    "runc run, edits in config.json" "runc run -b $work/rt-plain bench-mig-cdi-plain"

# 5. One allocation under 32-way contention: 32 hook processes at once,
#    all asking `any`, against 32 at once each naming its own device, the
#    same lease state; p50 and p99 per process.
STATE_DIR=$state/contention python3 bench/contention.py "$HOOK" "$work/root-8" "$work/cdi" "$work" "$sleeper" \
    "$work/ctr/rootfs" "$OUT_DIR/contention.json" "${CONTENTION_ROUNDS:-30}"

python3 bench/report.py "$OUT_DIR"
echo "raw results: $OUT_DIR"

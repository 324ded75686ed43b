#!/bin/bash
# mig-cdi-gen doctor on a real NVIDIA host — made for the H200 machine,
# where MIG is disabled and must stay so. Prints the text report, keeps the
# JSON one, and shows that doctor only read: the MIG mode (current and
# pending), every /dev/nvidia* node and the spec folders are the same
# before and after, and `doctor --create-device-nodes` is refused. Runs
# nothing that changes the GPU: nvidia-smi is used only for queries.
#
#   cdi-gen/scripts/doctor-h200.sh GEN [OUTDIR]     (as root: processes' fds, all nodes)
#
# Exit 0 when doctor ran (it exits 1 on this machine: MIG disabled, no
# spec) and every read-only check held; 1 otherwise.
set -u
GEN=$1 OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
state() {
    nvidia-smi --query-gpu=index,name,mig.mode.current,mig.mode.pending --format=csv,noheader
    ls -lnR --time-style=+ /dev/nvidia* 2>/dev/null
    ls -ln --time-style=+ /etc/cdi /var/run/cdi 2>/dev/null
}
fail=0
check() { if [ "$1" = "$2" ]; then echo "ok: $3"; else echo "FAIL: $3 ($1, want $2)"; fail=1; fi; }

echo "== host"
grep -H . /proc/driver/nvidia/version /sys/module/nvidia/parameters/nv_cap_enable_devfs 2>&1
grep -H -E "Model|Video BIOS|Bus Location|Device Minor" /proc/driver/nvidia/gpus/*/information
nvidia-smi -q | grep -i -E "VBIOS Version|^ *MIG Mode| Current  | Pending  " | head -8
before=$(state)

echo "== mig-cdi-gen doctor"
"$GEN" doctor | tee "$OUT/doctor.txt"
text_rc=${PIPESTATUS[0]}
"$GEN" doctor --json >"$OUT/doctor.json"
json_rc=$?
echo "== mig-cdi-gen doctor --create-device-nodes (must be refused)"
"$GEN" doctor --create-device-nodes
refuse_rc=$?
after=$(state)

echo "== checks"
check "$text_rc" "$json_rc" "text and JSON runs agree on the exit status ($text_rc)"
case $text_rc in 0 | 1) echo "ok: doctor ran (exit $text_rc)" ;; *) echo "FAIL: doctor could not run (exit $text_rc)"; fail=1 ;; esac
check "$refuse_rc" 2 "--create-device-nodes refused"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("ok: JSON report,", len(r["findings"]), "findings, ids:", " ".join(f["id"] for f in r["findings"] if f["severity"] in ("warning","error")))' "$OUT/doctor.json" || fail=1
if grep -q "mig.disabled" "$OUT/doctor.txt" && grep -q -- "-mig 1" "$OUT/doctor.txt"; then
    echo "ok: doctor says MIG is disabled and how to enable it"
elif grep -q "mig.enabled" "$OUT/doctor.txt"; then
    echo "note: MIG is enabled on this machine"
else
    echo "FAIL: no MIG mode finding"; fail=1
fi
if [ "$before" = "$after" ]; then
    echo "ok: MIG mode, /dev/nvidia* and the spec folders unchanged"
else
    echo "FAIL: the host changed:"; diff <(echo "$before") <(echo "$after"); fail=1
fi
echo "$before" | head -1
exit $fail

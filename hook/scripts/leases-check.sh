#!/bin/bash
# Leases, allocation and the CDI verify hook against a real driver, read
# only (nothing is created on the GPU, no NVML setter; verify reads /proc).
# Usage: hook/scripts/leases-check.sh DIR, DIR holding mig-cdi-hook,
# mig-cdi-gen, runc and hyperfine (and lib/ for their libraries).
D=$(cd "${1:?usage: leases-check.sh DIR}" && pwd)
export LD_LIBRARY_PATH=$D/lib

H=$D/mig-cdi-hook
W=$(mktemp -d); S=$W/state; mkdir -p $W/cdi $W/b
echo "== mig mode"; nvidia-smi --query-gpu=mig.mode.current --format=csv,noheader
echo "== generate --hook-path --hook-state-dir | validate"
$D/mig-cdi-gen generate --no-driver-files --hook-path $H --hook-state-dir $S --output $W/cdi/nvidia.com-gpu.json && $D/mig-cdi-gen validate $W/cdi/nvidia.com-gpu.json
python3 -c "import json; s=json.load(open('$W/cdi/nvidia.com-gpu.json')); print(s['cdiVersion'], [(d['name'], sorted(d['containerEdits'].keys())) for d in s['devices']])"
caps=$(awk '$2=="nvidia-caps"{print $1}' /proc/devices); nv=$(awk '$2=="nvidia"{print $1}' /proc/devices)
mon=$(awk '/DeviceFileMinor/{print $2}' /proc/driver/nvidia/capabilities/mig/monitor)
echo "nvidia-caps major $caps, nvidia major $nv, monitor minor $mon"
verify() { # BOUNDING DEVICES-JSON
  printf '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"env":["PATH=/bin"],"capabilities":{"bounding":%s}},"linux":{"devices":%s,"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":%s,"minor":0,"access":"rw"}]}}}' "$1" "$2" "$nv" > $W/b/config.json
  printf '{"ociVersion":"1.0.2","id":"dev-check","status":"created","pid":%s,"bundle":"%s"}' $$ $W/b | $H --state-dir $S verify; echo "exit $?"
}
echo "== verify: the whole GPU only (no MIG device: passes, no lease)"
verify '[]' "[{\"path\":\"/dev/nvidia0\",\"type\":\"c\",\"major\":$nv,\"minor\":0}]"
echo "== verify: + the MIG monitor node, no CAP_SYS_ADMIN (refused)"
verify '["CAP_CHOWN"]' "[{\"path\":\"/dev/nvidia0\",\"type\":\"c\",\"major\":$nv,\"minor\":0},{\"path\":\"/dev/nvidia-caps/nvidia-cap$mon\",\"type\":\"c\",\"major\":$caps,\"minor\":$mon}]"
echo "== verify: + the monitor node, with CAP_SYS_ADMIN (passes)"
verify '["CAP_SYS_ADMIN"]' "[{\"path\":\"/dev/nvidia0\",\"type\":\"c\",\"major\":$nv,\"minor\":0},{\"path\":\"/dev/nvidia-caps/nvidia-cap$mon\",\"type\":\"c\",\"major\":$caps,\"minor\":$mon}]"
echo "== verify: a capability minor the driver does not know (refused)"
verify '[]' "[{\"path\":\"/dev/nvidia0\",\"type\":\"c\",\"major\":$nv,\"minor\":0},{\"path\":\"/dev/nvidia-caps/nvidia-cap66\",\"type\":\"c\",\"major\":$caps,\"minor\":66}]"
echo "== mig-cdi-runtime create with NVIDIA_VISIBLE_DEVICES=any (refused: no MIG device; runc never runs)"
printf '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["true"],"env":["NVIDIA_VISIBLE_DEVICES=any"]}}' > $W/b/config.json
cp $W/b/config.json $W/before.json
$H runtime --mig-cdi-runtime $D/runc --mig-cdi-spec-dir $W/cdi --mig-cdi-state-dir $S create --bundle $W/b dev-any; echo "exit $?"
cmp -s $W/before.json $W/b/config.json && echo "config.json untouched"
echo "== the same, any:1g.18gb"
sed -i 's/=any"/=any:1g.18gb"/' $W/b/config.json
$H runtime --mig-cdi-runtime $D/runc --mig-cdi-spec-dir $W/cdi --mig-cdi-state-dir $S create --bundle $W/b dev-any2; echo "exit $?"
echo "== leases"; $H --state-dir $S leases; $H --state-dir $S leases --json
echo "== verify hook cost on the real driver (whole GPU config), 200 runs"
printf '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"env":["PATH=/bin"],"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"linux":{"devices":[{"path":"/dev/nvidia0","type":"c","major":%s,"minor":0},{"path":"/dev/nvidia-caps/nvidia-cap%s","type":"c","major":%s,"minor":%s}]}}' $nv $mon $caps $mon > $W/b/config.json
printf '{"ociVersion":"1.0.2","id":"dev-check","status":"created","pid":%s,"bundle":"%s"}' $$ $W/b > $W/state.json
$D/hyperfine --warmup 20 --runs 200 "$H --state-dir $S verify < $W/state.json" "true < $W/state.json" 2>&1 | grep -E "Benchmark|Time|Range" || true
rm -rf $W

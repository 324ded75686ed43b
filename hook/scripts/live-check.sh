#!/bin/bash
# Check mig-cdi-hook against a real NVIDIA driver, on a host without a
# container runtime: a process in its own mount namespace, with a tmpfs on
# <root>/dev, stands for the container. Generates the spec with mig-cdi-gen
# (real NVML), then: the hook must refuse on cgroup v2 while config.json's
# device rules do not allow the nodes (printing the --device-cgroup-rule
# values), inject them once they do, keep them on a second run, and refuse
# an unknown second name.
#
#   hook/scripts/live-check.sh HOOK GEN [DEVICE]     (as root; DEVICE default 0)
set -u
hook=$1 gen=$2 device=${3:-0}
work=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/cdi" "$work/r/dev" "$work/b"
"$gen" generate --output "$work/cdi/nvidia.com-gpu.json" || exit 1
unshare -m --propagation private sleep 600 & pid=$!; sleep 0.5
nsenter -t $pid -m mount -t tmpfs tmpfs "$work/r/dev"
config() {
    printf '{"root":{"path":"%s/r"},"process":{"env":["NVIDIA_VISIBLE_DEVICES=%s"]},"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}%s]}}}' \
        "$work" "$1" "$2" >"$work/b/config.json"
}
hook() { printf '{"ociVersion":"1.0.2","id":"live","status":"creating","pid":%s,"bundle":"%s/b"}' $pid "$work" |
    "$hook" --spec-dir "$work/cdi" --log "$work/log"; }
fail=0
check() { if [ "$1" = "$2" ]; then echo "ok: $3"; else echo "FAIL: $3 (exit $1)"; fail=1; fi; }

config "$device" ""
hook; check $? 1 "refused without device rules"
rules=$(grep -o '"path": "[^"]*"' "$work/cdi/nvidia.com-gpu.json" | sort -u | cut -d'"' -f4 | while read -r p; do
    [ -c "$p" ] && printf ',{"allow":true,"type":"c","major":%d,"minor":%d,"access":"rw"}' 0x"$(stat -c %t "$p")" 0x"$(stat -c %T "$p")"
done)
config "$device" "$rules"
hook; check $? 0 "injected with the rules"
nsenter -t $pid -m ls -ln "$work/r/dev"
hook; check $? 0 "second run keeps the nodes"
config "$device,no-such-device" "$rules"
hook; check $? 1 "unknown name refused"
tail -5 "$work/log"
exit $fail

#!/bin/bash
# mig-cdi-runtime over a real runc on a host with a real NVIDIA driver (made
# for the cgroup v2 H200 machine): the container asks for device 0 and its
# config.json has no device rule for it, the user adds no
# --device-cgroup-rule; mig-cdi-runtime writes linux.devices and the allow
# rules, and runc's eBPF filter then lets the container open the nodes
# through the real driver. Also: by UUID, no request (config.json byte for
# byte), an unknown name (refused, config.json untouched). Read-only on the
# GPU: it opens /dev/nvidia0 and /dev/nvidiactl and changes nothing.
#
#   hook/scripts/runtime-check.sh RUNC HOOK GEN BUSYBOX     (as root; python3 needed)
set -u
RUNC=$1 HOOK=$2 GEN=$3 BUSYBOX=$4
W=$(mktemp -d); trap 'rm -rf $W' EXIT
echo "cgroup fs: $(stat -fc %T /sys/fs/cgroup); runc: $($RUNC --version | head -1)"
mkdir -p $W/cdi $W/bin $W/rootfs/bin $W/rootfs/dev $W/rootfs/proc $W/rootfs/sys $W/rootfs/tmp
cp $BUSYBOX $W/rootfs/bin/busybox
for a in sh ls stat dd cat echo grep true; do ln -s busybox $W/rootfs/bin/$a; done
$GEN generate --output $W/cdi/nvidia.com-gpu.json || exit 1
ln -s "$(readlink -f "$HOOK")" $W/bin/mig-cdi-runtime
printf 'runtime = %s\nspec-dir = %s\nlog = %s\n' "$(readlink -f "$RUNC")" $W/cdi $W/runtime.log >$W/bin/mig-cdi-runtime.conf
(cd $W && $RUNC spec && cp config.json base.json) || exit 1
mk() { # $1 = env request ("" for none)
python3 - "$W/base.json" "$W/b/config.json" "$1" "$W" <<'PY'
import json, os, sys
base, path, request, w = sys.argv[1:]
os.makedirs(os.path.dirname(path), exist_ok=True)
c = json.load(open(base))
c["root"] = {"path": w + "/rootfs", "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "for n in /dev/nvidia*; do [ -c $n ] && stat -c '%n %t:%T %a' $n; done; ls /dev | grep -q nvidia || echo 'no nvidia nodes'; dd if=/dev/nvidia0 of=/dev/null count=0 2>&1 && echo 'open /dev/nvidia0: ok'; dd if=/dev/nvidiactl of=/dev/null count=0 2>&1 && echo 'open /dev/nvidiactl: ok'; true"]
if request:
    c["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=" + request)
c["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
json.dump(c, open(path, "w"))
PY
}
run() { (cd $W/b && $W/bin/mig-cdi-runtime run "$1" 2>&1); echo "exit $?"; }
echo "== A: request 0, no device rule for it in config.json, no --device-cgroup-rule (expect nodes, opens ok)"
mk 0; run rt-a
echo "   linux.devices written: $(python3 -c "import json; print([d['path'] for d in json.load(open('$W/b/config.json'))['linux']['devices']])")"
echo "== B: request by UUID"
uuid=$(grep -o '"GPU-[^"]*"' $W/cdi/nvidia.com-gpu.json | head -1 | tr -d '"')
mk "$uuid"; run rt-b
echo "== C: no request (expect no nvidia nodes, config.json byte for byte)"
mk ""; sum=$(sha256sum <$W/b/config.json); run rt-c
[ "$sum" = "$(sha256sum <$W/b/config.json)" ] && echo "   config.json unchanged"
echo "== D: unknown name 7 (expect refusal, config.json unchanged)"
mk 7; sum=$(sha256sum <$W/b/config.json); run rt-d
[ "$sum" = "$(sha256sum <$W/b/config.json)" ] && echo "   config.json unchanged"
echo "== runtime log tail"; tail -3 $W/runtime.log | cut -c1-200

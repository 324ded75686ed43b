#!/bin/bash
# mig-cdi-hook under real runc on a host with a real NVIDIA driver (made for
# the cgroup v2 H200 machine, where the runtime's eBPF device filter comes
# from config.json alone): device 0 requested without device rules (refused,
# with the --device-cgroup-rule values to add), with them (nodes inside,
# opened through the real driver), by UUID, not at all, and with an
# `a *:* rwm` rule (refused as a MIG leak). Read-only on the GPU: it opens
# /dev/nvidia0 and /dev/nvidiactl and changes nothing.
#
#   hook/scripts/runc-check.sh RUNC HOOK GEN BUSYBOX     (as root; python3 needed)
set -u
RUNC=$1 HOOK=$2 GEN=$3 BUSYBOX=$4
W=$(mktemp -d); trap 'rm -rf $W' EXIT
echo "cgroup fs: $(stat -fc %T /sys/fs/cgroup); runc: $($RUNC --version | head -1)"
mkdir -p $W/cdi $W/rootfs/bin $W/rootfs/dev $W/rootfs/proc $W/rootfs/sys $W/rootfs/tmp
cp $BUSYBOX $W/rootfs/bin/busybox
for a in sh ls stat dd cat echo; do ln -s busybox $W/rootfs/bin/$a; done
$GEN generate --output $W/cdi/nvidia.com-gpu.json || exit 1
(cd $W && $RUNC spec && cp config.json base.json) || exit 1
mk() { # $1 = env request ("" for none), $2 = "rules" or "norules"
cp $W/base.json $W/config.json
python3 - "$W/config.json" "$1" "$2" "$HOOK" "$W" <<'PY'
import json, sys
path, request, rules, hook, w = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": w + "/rootfs", "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "ls -l /dev | grep -i nvidia || echo 'no nvidia nodes'; for n in /dev/nvidia*; do [ -c $n ] && stat -c '%n %t:%T %a' $n; done; dd if=/dev/nvidia0 of=/dev/null count=0 2>&1 && echo 'open /dev/nvidia0: ok'; dd if=/dev/nvidiactl of=/dev/null count=0 2>&1 && echo 'open /dev/nvidiactl: ok'; true"]
if request:
    c["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=" + request)
c["hooks"] = {"createRuntime": [{"path": hook, "args": ["mig-cdi-hook", "--spec-dir", w + "/cdi", "--log", w + "/hook.log", "createRuntime"]}]}
devs = [{"allow": False, "access": "rwm"}]
if rules == "rules":
    for mj, mn in [(195, 0), (195, 255), (238, 0), (238, 1)]:
        devs.append({"allow": True, "type": "c", "major": mj, "minor": mn, "access": "rw"})
c["linux"]["resources"]["devices"] = devs
json.dump(c, open(path, "w"))
PY
}
echo "== E: request 0, rules allow all devices a *:* rwm"
mk 0 rules; python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['linux']['resources']['devices']=[{'allow':True,'access':'rwm'}]; json.dump(c,open(p,'w'))" $W/config.json; (cd $W && $RUNC run v2e 2>&1 | tail -3); echo "exit $?"
echo "== A: request 0, config.json device rules do not allow the nodes (expect refusal with --device-cgroup-rule values)"
mk 0 norules; (cd $W && $RUNC run v2a 2>&1); echo "exit $?"
echo "== B: request 0, rules allow the nodes (expect nodes inside, opens succeed: real driver)"
mk 0 rules; (cd $W && $RUNC run v2b 2>&1); echo "exit $?"
echo "== C: request by UUID"
uuid=$(grep -o '"GPU-[^"]*"' $W/cdi/nvidia.com-gpu.json | head -1 | tr -d '"')
mk "$uuid" rules; (cd $W && $RUNC run v2c 2>&1); echo "exit $?"
echo "== D: no request (expect no nvidia nodes)"
mk "" rules; (cd $W && $RUNC run v2d 2>&1); echo "exit $?"
echo "== hook log tail"; tail -4 $W/hook.log | cut -c1-200

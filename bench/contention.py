#!/usr/bin/env python3
"""One allocation under 32-way contention, against a named injection.

usage: contention.py HOOK ROOT CDI_DIR WORK PID ROOTFS OUT_JSON [ROUNDS]

Each round starts 32 mig-cdi-hook processes at once against one lease
state: either all asking NVIDIA_VISIBLE_DEVICES=any (each must get its own
device: 32 claims serialised on the lease lock, each scanning the catalog
for a free one) or each naming its own device (32 claims of different
devices, the same lock). Every process is a whole hook run for a stand-in
container (pid PID, a private mount namespace with a tmpfs at ROOTFS/dev)
whose device rules allow every NVIDIA node (it holds CAP_SYS_ADMIN, so
that is allowed): the hook checks the device against the driver tables and
finds its nodes already there after the first round. The lease state is
emptied between rounds, and the two variants alternate which goes first.
Latency is per process, from spawn to exit; p50 and p99 over all rounds.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

hook, root, cdi, work, pid, rootfs, out = sys.argv[1:8]
ROUNDS = int(sys.argv[8]) if len(sys.argv) > 8 else 30
N = 32

spec = json.load(open(os.path.join(cdi, "nvidia.com-gpu.json")))
names = [d["name"] for d in spec["devices"]
         if ":" in d["name"] and not d["name"].startswith("mig")
         and any("nvidia-caps" in n["path"] for n in d["containerEdits"]["deviceNodes"])]
assert len(names) >= N, f"need {N} MIG devices, the spec has {len(names)}"
state_dir = os.environ.get("STATE_DIR") or os.path.join(work, "contention-state")

rules = [{"allow": False, "access": "rwm"}] + [
    {"allow": True, "type": "c", "major": major, "access": access}
    for major, access in ((195, "rw"), (241, "r"), (238, "rw"))]


def bundle(tag, i, request):
    b = os.path.join(work, "contention", f"{tag}-{i}")
    os.makedirs(b, exist_ok=True)
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump({"ociVersion": "1.0.2", "root": {"path": rootfs},
                   "process": {"args": ["/bin/true"],
                               "env": ["PATH=/bin", f"NVIDIA_VISIBLE_DEVICES={request}"],
                               "capabilities": {"bounding": ["CAP_SYS_ADMIN"]}},
                   "linux": {"resources": {"devices": rules}}}, f)
    state = os.path.join(b, "state.json")
    with open(state, "w") as f:
        json.dump({"ociVersion": "1.0.2", "id": f"bench-{tag}-{i}", "status": "creating",
                   "pid": int(pid), "bundle": b}, f)
    return state


variants = {
    "any": [bundle("any", i, "any") for i in range(N)],
    "named": [bundle("named", i, names[i]) for i in range(N)],
}
args = [hook, "--root", root, "--spec-dir", cdi, "--state-dir", state_dir, "createRuntime"]


def one_round(states):
    shutil.rmtree(state_dir, ignore_errors=True)
    times = [None] * len(states)
    failures = []
    start = threading.Barrier(len(states))

    def run(i):
        with open(states[i]) as stdin:
            start.wait()
            t0 = time.perf_counter()
            p = subprocess.run(args, stdin=stdin, capture_output=True)
            times[i] = time.perf_counter() - t0
        if p.returncode != 0:
            failures.append(p.stderr.decode(errors="replace"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(states))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"hook failed: {failures[0]}")
    leases = json.load(open(os.path.join(state_dir, "leases.json")))["leases"]
    devices = {json.dumps(l["device"], sort_keys=True) for l in leases}
    assert len(leases) == len(states) == len(devices), "every process leased its own device"
    return times


one_round(variants["any"])  # first round: the nodes are made; not measured
one_round(variants["named"])
samples = {"any": [], "named": []}
for r in range(ROUNDS):
    order = ["any", "named"] if r % 2 == 0 else ["named", "any"]
    for v in order:
        samples[v].extend(one_round(variants[v]))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


result = {v: {"p50_ms": pct(s, 0.50), "p99_ms": pct(s, 0.99),
              "mean_ms": statistics.mean(s) * 1000, "n": len(s)}
          for v, s in samples.items()}
json.dump(result, open(out, "w"), indent=1)
for v, r in result.items():
    print(f"{v:6} p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  (n={r['n']})")

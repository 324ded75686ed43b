#!/usr/bin/env python3
"""Print the benchmark table of bench/run.sh from hyperfine's JSON exports.

Every figure is set against a baseline measured in the same run: /bin/true
for the generator and the hook process, a /bin/true hook for container
starts. Targets (from the benchmarks issue) are checked and marked.
"""
import json
import os
import statistics
import sys

out = sys.argv[1]


def medians(*names):
    """Median per command (ms) over every run in the given exports."""
    times = {}
    for name in names:
        with open(os.path.join(out, name)) as f:
            for r in json.load(f)["results"]:
                times.setdefault(r["command"], []).extend(r["times"])
    return {cmd: statistics.median(t) * 1000 for cmd, t in times.items()}


def rounds(prefix):
    return sorted(f for f in os.listdir(out) if f.startswith(prefix + "-") and f.endswith(".json"))


rss = {}
with open(os.path.join(out, "rss.txt")) as f:
    for line in f:
        label, kib = line.rsplit(" ", 1)
        rss[label] = int(kib)

rows = []
ok_all = True


def row(what, median_ms, baseline, compare, target, ok, peak):
    global ok_all
    ok_all &= ok is not False
    mark = "" if ok is None else ("ok" if ok else "MISSED")
    rows.append((what, f"{median_ms:.2f} ms", baseline, compare, target, mark, peak))


gen = {}
for n in (1, 8, 32):
    m = medians(f"generate-{n}.json")
    gen[n] = m[f"generate {n}x7"]
    true = m["/bin/true"]
    target = {8: 10.0, 32: 25.0}.get(n)
    row(
        f"mig-cdi-gen generate, {n} GPU x 7 MIG",
        gen[n],
        f"/bin/true {true:.2f} ms",
        f"x{gen[n] / true:.1f}",
        f"< {target:.0f} ms" if target else "",
        gen[n] < target if target else None,
        f"{rss[f'generate {n}x7'] / 1024:.1f} MiB",
    )
per_8 = (gen[8] - gen[1]) / (8 * 7 - 7) * 1000
per_32 = (gen[32] - gen[1]) / (32 * 7 - 7) * 1000
linear = per_32 <= 1.5 * max(per_8, 1e-9)
rows.append(
    (
        "  cost per extra MIG device",
        f"{per_32:.1f} us (32x7)",
        f"{per_8:.1f} us (8x7)",
        f"x{per_32 / per_8:.2f}" if per_8 > 0 else "",
        "linear (x <= 1.5)",
        "ok" if linear else "MISSED",
        "",
    )
)
ok_all &= linear

h = medians("hook.json")
hook, true = h["mig-cdi-hook (8x7 spec)"], h["/bin/true"]
hook_rss = rss["mig-cdi-hook"]
row(
    "mig-cdi-hook process, 8x7 spec",
    hook,
    f"/bin/true {true:.2f} ms",
    f"+{hook - true:.2f} ms",
    "<= +1 ms, RSS < 4 MiB",
    hook - true <= 1.0 and hook_rss < 4096,
    f"{hook_rss / 1024:.1f} MiB",
)

for rt in ("runc", "crun"):
    r = medians(*rounds(rt))
    with_hook, with_true = r[f"{rt} run + mig-cdi-hook"], r[f"{rt} run + /bin/true hook"]
    ratio = with_hook / with_true
    target = 1.05 if rt == "runc" else None
    row(
        f"{rt} run /bin/true container + mig-cdi-hook",
        with_hook,
        f"/bin/true hook {with_true:.2f} ms",
        f"x{ratio:.3f}",
        f"<= x{target}" if target else "",
        ratio <= target if target else None,
        "",
    )

r = medians(*rounds("runtime"))
via, plain = r["runc run via mig-cdi-runtime"], r["runc run, edits in config.json"]
row(
    "runc run via mig-cdi-runtime (3:1 into config)",
    via,
    f"edits already in config {plain:.2f} ms",
    f"{via - plain:+.2f} ms",
    "<= +1 ms",
    via - plain <= 1.0,
    "",
)

with open(os.path.join(out, "contention.json")) as f:
    c = json.load(f)
for q in ("p50", "p99"):
    a, n = c["any"][f"{q}_ms"], c["named"][f"{q}_ms"]
    rows.append(
        (
            f"mig-cdi-hook `any` under 32-way contention, {q}",
            f"{a:.2f} ms",
            f"named, 32-way, {q} {n:.2f} ms",
            f"x{a / n:.2f}",
            "",
            "",
            "",
        )
    )

head = ("what", "median", "baseline (same run)", "vs baseline", "target", "", "peak RSS")
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
print()
print("all targets met" if ok_all else "SOME TARGETS MISSED")

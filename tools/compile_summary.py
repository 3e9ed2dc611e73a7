"""Summarize compile_profile.py JSON files: python tools/compile_summary.py A.json [B.json ...]"""
import collections
import json
import sys

for path in sys.argv[1:]:
    r = json.load(open(path))
    ev = r["events"]
    print(f"== {path}: {' '.join(r['argv'])}: run {r['run_s']:.1f} s, compiling {r['compile_s']:.1f} s (cpu {r.get('compile_cpu_s', 0):.1f} s), "
          f"{len(ev)} compiles ({sum(e['name'].startswith('minnet') for e in ev)} of minnet functions), "
          f"{r['n_specializations']} minnet specializations in memory")
    by = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for e in ev:
        b = by[e["name"]]
        b[0] += 1
        b[1] += e.get("cpu_exclusive", e["exclusive"])
        b[2] = max(b[2], e.get("cpu_inclusive", e["inclusive"]))
    print("cpu exclusive s by function (compiles, max inclusive):")
    for name, (n, ex, inc) in sorted(by.items(), key=lambda kv: -kv[1][1])[:40]:
        print(f"  {ex:6.2f}  x{n}  incl {inc:6.2f}  {name}")
    nonminnet = sum(b[1] for k, b in by.items() if not k.startswith("minnet"))
    print(f"  non-minnet (numba-internal jitted helpers): {nonminnet:.2f} s exclusive in "
          f"{sum(b[0] for k, b in by.items() if not k.startswith('minnet'))} compiles")
    print("top-level compiles (a call from Python), cpu inclusive s:")
    for e in sorted([e for e in ev if e["depth"] == 0], key=lambda e: -e.get("cpu_inclusive", e["inclusive"])):
        print(f"  {e.get('cpu_inclusive', e['inclusive']):6.2f}  t={e['start']:5.1f}  {e['name']}")
    print("minnet functions with more than one signature:")
    for name, d in r["dispatchers"].items():
        if len(d["signatures"]) > 1:
            print(f"  {name}:")
            for s in d["signatures"]:
                print(f"      ({s})")

"""Profile Numba compiling of one minnet CLI run: python tools/compile_profile.py OUT.json -- demo --epochs 5000

Run with an empty NUMBA_CACHE_DIR to see every compile. Records each "numba:compile" event (only real
compiles trigger it; loads from the cache do not) with inclusive and exclusive seconds (exclusive: less
the nested compiles of callees), then lists every minnet dispatcher's signatures and cache hits.
"""
import contextlib
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this worktree's minnet
t_start = time.perf_counter()
import numba  # noqa: E402
from numba.core import event  # noqa: E402
from numba.core.registry import CPUDispatcher  # noqa: E402

events, stack = [], []


class Recorder(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"]
        stack.append({"name": f"{d.py_func.__module__}.{d.py_func.__qualname__}",
                      "args": ", ".join(map(str, ev.data["args"])), "start": time.perf_counter(), "children": 0.0,
                      "cpu_start": time.thread_time(), "cpu_children": 0.0,
                      "depth": len(stack), "parent": stack[-1]["name"] if stack else None, "parallel": bool(d.targetoptions.get("parallel"))})

    def on_end(self, ev):
        rec = stack.pop()
        rec["inclusive"] = time.perf_counter() - rec["start"]
        rec["exclusive"] = rec["inclusive"] - rec.pop("children")
        rec["start"] -= t_start
        rec["cpu_inclusive"] = time.thread_time() - rec.pop("cpu_start")
        rec["cpu_exclusive"] = rec["cpu_inclusive"] - rec.pop("cpu_children")
        if stack:
            stack[-1]["children"] += rec["inclusive"]
            stack[-1]["cpu_children"] += rec["cpu_inclusive"]
        events.append(rec)


frames, passes, llvm = [], {}, [0.0, 0]
loads = [0.0, 0, 0]  # seconds in Cache.load_overload, calls, hits

from numba.core import caching  # noqa: E402
_load_overload = caching.Cache.load_overload


def _timed_load(self, sig, target_context):
    t0 = time.perf_counter()
    try:
        result = _load_overload(self, sig, target_context)
    finally:
        loads[0] += time.perf_counter() - t0
        loads[1] += 1
    loads[2] += result is not None
    return result


caching.Cache.load_overload = _timed_load


class Frames(event.Listener):
    """Exclusive cpu seconds per compiler pass (less nested compiles and LLVM calls) and LLVM's total."""

    def __init__(self, kind):
        self.kind = kind

    def on_start(self, ev):
        if self.kind == "llvm" and frames and frames[-1][0] == "llvm":
            frames[-1][3] += 1  # a nested acquisition of the LLVM lock
            return
        name = ev.data["name"].split(" [")[0] if self.kind == "pass" else self.kind
        frames.append([self.kind, name, time.thread_time(), 0, 0.0])

    def on_end(self, ev):
        if self.kind == "llvm" and frames and frames[-1][0] == "llvm" and frames[-1][3] > 0:
            frames[-1][3] -= 1
            return
        kind, name, start, _, children = frames.pop()
        inclusive = time.thread_time() - start
        if frames:
            frames[-1][4] += inclusive
        if kind == "pass":
            passes[name] = passes.get(name, 0.0) + inclusive - children
        elif kind == "llvm":
            llvm[0] += inclusive
            llvm[1] += 1


def main():
    out_path = sys.argv[1]
    argv = sys.argv[sys.argv.index("--") + 1:]
    event.register("numba:compile", Recorder())
    event.register("numba:compile", Frames("compile"))
    if os.environ.get("MINNET_PROFILE_PASSES"):
        event.register("numba:run_pass", Frames("pass"))
        event.register("numba:llvm_lock", Frames("llvm"))
    t0 = time.perf_counter()
    import minnet.cli
    pre = os.environ.get("MINNET_PROFILE_PRE")
    if pre:  # an experiment, e.g. "import minnet.check.api as a; a._PARALLEL['allowed'] = False"
        exec(pre, {})
    t_import = time.perf_counter() - t0
    print(f"minnet from {minnet.cli.__file__}", file=sys.stderr)
    buf = io.StringIO()
    t0 = time.perf_counter()
    c0 = time.process_time()
    with contextlib.redirect_stdout(buf):
        if argv[0] == "exec":  # a script of one's own instead of the command line: exec FILE.py ARGS
            sys.argv = argv[1:]
            namespace = {"__name__": "__main__"}
            exec(compile(open(argv[1]).read(), argv[1], "exec"), namespace)
            status = namespace.get("status", 0)
        else:
            status = minnet.cli.main(argv)
    t_run = time.perf_counter() - t0
    cpu_run = time.process_time() - c0
    dispatchers = {}
    for name, mod in list(sys.modules.items()):
        if not name.startswith("minnet"):
            continue
        for attr, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher):
                key = f"{obj.py_func.__module__}.{obj.py_func.__qualname__}"
                dispatchers[key] = {"signatures": [", ".join(map(str, s)) for s in obj.signatures],
                                    "cache_hits": sum(obj._cache_hits.values()),
                                    "cache_misses": sum(obj._cache_misses.values()),
                                    "parallel": bool(obj.targetoptions.get("parallel"))}
    top = [e for e in events if e["depth"] == 0]
    result = {"argv": argv, "status": status, "import_s": t_import, "run_s": t_run, "run_cpu_s": cpu_run,
              "compile_cpu_s": sum(e["cpu_inclusive"] for e in top),
              "compile_s": sum(e["inclusive"] for e in top), "n_compiles": len(events),
              "n_minnet_dispatchers": len(dispatchers),
              "n_specializations": sum(len(d["signatures"]) for d in dispatchers.values()),
              "cache_load_s": loads[0], "cache_loads": loads[1], "cache_hits": loads[2],
              "events": events, "passes": passes, "llvm_cpu_s": llvm[0], "dispatchers": dispatchers, "stdout": buf.getvalue()}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{' '.join(argv)}: status {status}, import {t_import:.2f} s, run {t_run:.2f} s, "
          f"compiling {result['compile_s']:.2f} s (cpu {result['compile_cpu_s']:.2f} s; run cpu {cpu_run:.2f} s) in {len(events)} compiles; "
          f"{result['n_specializations']} specializations of {len(dispatchers)} minnet dispatchers; "
          f"cache: {loads[2]} of {loads[1]} loads hit, {loads[0]:.2f} s", file=sys.stderr)


main()

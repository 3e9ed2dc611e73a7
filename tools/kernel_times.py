"""Where a check's time goes on 1 and N threads: each kernel, the Python between them, the kernel thread's hand-offs.

    python tools/kernel_times.py                     # the mnist check, 1 and 2 threads, 25 rounds
    python tools/kernel_times.py --threads 1 4 16 --rounds 40 --dims 784 128 64 10 --m 64 --output softmax

Thread counts run interleaved, round by round, in one process (a shared
machine's load then falls on all of them alike); medians per check. Rows:
each parallel kernel (summed over its calls in one check); "python on the
kernel thread" (the planning between kernels); "hand-off to the kernel
thread" (from queueing the work to its first line) and "hand-off back" (from
its last line to the calling thread running again), both the time a
sleeping thread takes to wake; "calling thread" (validation, the judge and
the report); and the whole check.
"""
import argparse
import collections
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this worktree's minnet
import minnet  # noqa: E402
from minnet.check import _parallel  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--dims", type=int, nargs="+", default=[784, 128, 64, 10])
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--hidden", default="relu")
    parser.add_argument("--output", default="softmax")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    net = minnet.Network(args.dims, hidden=args.hidden, output=args.output, lambd=0.7, seed=0)
    X = rng.standard_normal((args.dims[0], args.m))
    labels = rng.integers(0, args.dims[-1], args.m) if args.output == "softmax" else rng.random((args.dims[-1], args.m))
    now = {"threads": args.threads[0], "job": {}}
    times = {t: collections.defaultdict(float) for t in args.threads}  # this check's seconds, by row

    kernel_call, run, submit, job_start = (_parallel.Kernel.__call__, _parallel.run, _parallel._KernelThread.submit,
                                           _parallel._Job.start)

    def timed_kernel(self, *a):
        start = time.perf_counter()
        try:
            return kernel_call(self, *a)
        finally:
            times[now["threads"]][self.__name__] += time.perf_counter() - start

    def timed_run(work, **kwargs):
        marks = now["job"]

        def timed_work():
            marks["first"] = time.perf_counter()
            work()
            marks["last"] = time.perf_counter()

        result = run(timed_work, **kwargs)
        back = time.perf_counter()
        row = times[now["threads"]]
        row["hand-off to the kernel thread"] += marks["started"] - marks["queued"]
        row["hand-off back"] += back - marks["last"]
        row["<in the kernel thread>"] += marks["last"] - marks["first"]
        return result

    def timed_submit(self, call):
        now["job"]["queued"] = time.perf_counter()
        return submit(self, call)

    def timed_start(self):
        now["job"]["started"] = time.perf_counter()
        return job_start(self)

    _parallel.Kernel.__call__, _parallel.run = timed_kernel, timed_run
    _parallel._KernelThread.submit, _parallel._Job.start = timed_submit, timed_start

    rows = {t: [] for t in args.threads}
    for t in args.threads:  # compile or load, and start the kernel thread
        minnet.gradient_check(net, X, labels, threads=t)
    for _ in range(args.rounds):
        for t in args.threads:
            now["threads"] = t
            times[t].clear()
            start = time.perf_counter()
            minnet.gradient_check(net, X, labels, threads=t)
            times[t]["<whole check>"] = time.perf_counter() - start
            rows[t].append(dict(times[t]))

    names = [n for n in rows[args.threads[0]][0] if not n.startswith("<") and not n.startswith("hand-off")]
    table = {}
    for t in args.threads:
        median = {n: np.median([r.get(n, 0.0) for r in rows[t]]) for n in rows[t][0]}
        median["python on the kernel thread"] = float(np.median(
            [r["<in the kernel thread>"] - sum(r.get(n, 0.0) for n in names) for r in rows[t]]))
        median["calling thread"] = float(np.median(
            [r["<whole check>"] - r["<in the kernel thread>"] - r["hand-off to the kernel thread"] - r["hand-off back"]
             for r in rows[t]]))
        del median["<in the kernel thread>"]
        table[t] = median
    order = names + ["python on the kernel thread", "hand-off to the kernel thread", "hand-off back", "calling thread",
                     "<whole check>"]
    base = args.threads[0]
    print(f"{net.layer_dims} m={args.m} {args.hidden}: {net.theta.size:,} entries, medians of {args.rounds} "
          f"interleaved rounds (ms per check; x: {base} thread(s) / n)")
    print(f"{'':32}" + "".join(f"{f'{t} thr':>10}{'x':>7}" for t in args.threads))
    for name in order:
        cells = "".join(f"{table[t][name] * 1e3:10.2f}{table[base][name] / table[t][name] if table[t][name] else 0:7.2f}"
                        for t in args.threads)
        print(f"{name.strip('<>'):32}{cells}")


if __name__ == "__main__":
    main()

"""Time the same gradient checks and training runs on two revisions of minnet, in the same run.

    python tools/compare_revisions.py OLD NEW [--rounds 5] [--repeat 3] [--only SUBSTRING]

OLD and NEW are git revisions (a commit, a branch, or WORKTREE for the files as they are now). Each is
checked out into a temporary folder, its Numba cache warmed, and then the workloads run in fresh
processes, alternating OLD and NEW round after round, so that the machine's load falls on both alike.
Every workload keeps its best of --repeat timings per process; the table shows the median over the rounds
and NEW / OLD. Meant for "did this change slow anything down": the ratios, not the seconds, are the result.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What one process times: a workload name -> the code run (after ``setup``) as one timed call.
WORKLOADS = r'''
import json, sys, time
import numpy as np
import minnet

def data(dims, m, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    return X, Y

def check(dims, m, hidden, method):
    net = minnet.Network(dims, hidden=hidden, output="softmax", lambd=0.7, seed=0)
    X, Y = data(dims, m)
    return lambda: minnet.gradient_check(net, X, Y, method=method, progress=False)

def fit(dims, m, epochs, batch):
    X, Y = data(dims, m)
    def run():
        net = minnet.Network(dims, hidden="relu", output="softmax", seed=0)
        net.fit(X, Y, optimizer="adam", learning_rate=1e-3, epochs=epochs, batch_size=batch, progress=False)
    return run

cases = {
    "check digits relu auto": check([64, 32, 16, 10], 256, "relu", "auto"),
    "check digits relu segment": check([64, 32, 16, 10], 256, "relu", "segment"),
    "check digits relu incremental": check([64, 32, 16, 10], 256, "relu", "incremental"),
    "check digits tanh incremental": check([64, 32, 16, 10], 256, "tanh", "incremental"),
    "check digits tanh full": check([64, 32, 16, 10], 256, "tanh", "full"),  # 20 s or more
    "check medium relu auto": check([256, 64, 32, 10], 128, "relu", "auto"),
    "check mnist relu auto": check([784, 128, 64, 10], 64, "relu", "auto"),
    "check mnist tanh incremental": check([784, 128, 64, 10], 64, "tanh", "incremental"),
    "train [64,64,32,10] m=1797 b=64 x30": fit([64, 64, 32, 10], 1797, 30, 64),
    "train [784,256,10] m=4096 b=256 x3": fit([784, 256, 10], 4096, 3, 256),
}
out = {}
repeat, only = int(sys.argv[1]), sys.argv[2]
for name, call in cases.items():
    if only not in name:
        continue
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t)
    out[name] = best
print(json.dumps(out))
'''


def checkout(revision, folder):
    """The package of ``revision`` (or the working tree for WORKTREE) copied into folder; returns folder."""
    if revision == "WORKTREE":
        shutil.copytree(os.path.join(ROOT, "minnet"), os.path.join(folder, "minnet"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "-C", ROOT, "archive", revision, "minnet"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def one_process(folder, repeat, only):
    env = dict(os.environ, PYTHONPATH=folder)
    done = subprocess.run([sys.executable, "-c", WORKLOADS, str(repeat), only], env=env, cwd=folder, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="timings per process; the best counts")
    parser.add_argument("--only", default="", help="the workloads whose name holds this (default: all)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for label, revision in (("old", args.old), ("new", args.new)):
            os.makedirs(os.path.join(tmp, label))
            folders[label] = checkout(revision, os.path.join(tmp, label))
            one_process(folders[label], 1, args.only)  # compiles and fills the cache
        times = {"old": [], "new": []}
        for r in range(args.rounds):
            for label in (("old", "new") if r % 2 == 0 else ("new", "old")):
                times[label].append(one_process(folders[label], args.repeat, args.only))
            print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    print(f"{'workload':<40} {'old s':>9} {'new s':>9} {'new/old':>8}   (median of {args.rounds} rounds, "
          f"best of {args.repeat} each)")
    for name in times["old"][0]:
        old = statistics.median(t[name] for t in times["old"])
        new = statistics.median(t[name] for t in times["new"])
        print(f"{name:<40} {old:>9.4f} {new:>9.4f} {new / old:>8.3f}")


if __name__ == "__main__":
    main()

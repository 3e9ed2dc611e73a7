"""Time minnet's gradient check against the plain NumPy loop on the digits workload.

The workload: a [64, 32, 16, 10] network (relu hidden, softmax output,
lambd 0.7) on 256 standard-normal examples: 2,778 parameters, every one
checked with centered differences.  The NumPy loop perturbs one entry of
theta in place and runs two full forward passes per entry
(``minnet.baselines.numpy_loop_check``, on one BLAS thread: the matrices
are small, and on a busy machine more threads make its timing erratic).

    python examples/check_speed.py [--fast]

--fast (or MINNET_EXAMPLE_FAST=1) uses 32 examples.  ``minnet bench``
prints the full table (more workloads, PyTorch).
"""
import os
import sys
import time

import numpy as np

import minnet
from minnet import baselines


def timed(fn, repeat=1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    fast = "--fast" in sys.argv[1:] or os.environ.get("MINNET_EXAMPLE_FAST") == "1"
    m = 32 if fast else 256
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, m))
    Y = rng.integers(0, 10, size=m)
    net = minnet.Network([64, 32, 16, 10], hidden="relu", output="softmax", lambd=0.7, seed=0)
    n = net.layout.size
    print(f"digits workload: {net.layer_dims}, m = {m}, {n:,} parameters")

    minnet.gradient_check(net, X[:, :4], Y[:4])                   # compile / load the kernels first
    minnet.gradient_check(net, X[:, :4], Y[:4], method="full")

    t_numpy, approx = timed(lambda: baselines.numpy_loop_check(net, X, Y, blas_threads=1))
    t_full, full = timed(lambda: minnet.gradient_check(net, X, Y, method="full"), repeat=3)
    t_inc, inc = timed(lambda: minnet.gradient_check(net, X, Y, method="incremental"), repeat=3)

    print(f"\n{'method':<22}{'seconds':>10}{'entries/s':>12}{'speed-up':>10}")
    for name, seconds in (("NumPy loop", t_numpy), ("minnet full", t_full), ("minnet incremental", t_inc)):
        print(f"{name:<22}{seconds:>10.4f}{n / seconds:>12,.0f}{t_numpy / seconds:>9.1f}x")

    agree = minnet.difference(approx, inc.approx)
    print(f"\nverdicts: full {full.verdict}, incremental {inc.verdict}; "
          f"NumPy loop vs incremental numerical gradients differ by {agree:.1e}")
    return 0 if inc.verdict == "correct" and full.verdict == "correct" and agree < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())

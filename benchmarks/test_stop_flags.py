"""What reading the stop flag costs (Ctrl-C within a second): at most 3 %, measured in the same run.

The training epoch and the forward pass read a flag array before every mini-batch and layer; given
``stop=None`` instead, Numba compiles them without those reads. Both specializations run here in turns, on
the same inputs, and the ratio of their best times is the flags' cost. The check's kernels have no flagless
twin; ``python tools/compare_revisions.py OLD NEW`` compares them with a revision from before the flags.

Run with ``python -m pytest benchmarks/test_stop_flags.py -s``.
"""
import time

import numpy as np
import pytest

import minnet
from minnet import _kernels as K

ROUNDS = 15
LIMIT = 1.03


def interleaved_best(with_flags, without_flags, rounds=ROUNDS):
    """Best seconds of each, run in turns (ABAB...), so that the machine's load falls on both alike."""
    best = {"flags": float("inf"), "none": float("inf")}
    for _ in range(rounds):
        for name, call in (("flags", with_flags), ("none", without_flags)):
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def epoch_call(dims, m, batch, stop):
    rng = np.random.default_rng(0)
    net = minnet.Network(dims, output="softmax", seed=0)
    X, labels = rng.random((dims[0], m)), rng.integers(0, dims[-1], m)
    Xv, Y = net._check_XY(X, labels)
    XT = np.ascontiguousarray(Xv.T)
    theta = net.theta.copy()
    size = theta.size

    def call():
        state = K.Optimizer(2, 1e-3, 0.9, 0.9, 0.999, 1e-8, np.zeros(size), np.zeros(size), theta.copy())
        model = K.Model(net._dims, net._hidden, net._output, 0.0, net._keep_prob, False)
        plan = K.Plan(np.arange(m, dtype=np.int64), batch, 0)
        K.train_epoch(theta.copy(), XT, Y, model, state, plan, 0, np.int64(K.BLAS_FROM),
                      None if stop is None else stop.copy())
    return call


@pytest.mark.parametrize("dims, m, batch", [([64, 32, 16, 10], 1797, 64), ([784, 256, 10], 4096, 256)])
def test_the_training_epochs_flag_costs_at_most_3_percent(dims, m, batch):
    with_flags = epoch_call(dims, m, batch, np.zeros(2, np.int64))
    without = epoch_call(dims, m, batch, None)
    with_flags(), without()  # compiled (or loaded) before any timing
    best = interleaved_best(with_flags, without)
    ratio = best["flags"] / best["none"]
    print(f"\ntrain_epoch {dims} m={m} batch={batch}: {best['flags'] * 1e3:.2f} ms with the flag, "
          f"{best['none'] * 1e3:.2f} ms without: {ratio:.3f}")
    assert ratio <= LIMIT


def test_the_forward_passs_flag_costs_at_most_3_percent():
    dims, m = [784, 512, 256, 10], 256
    rng = np.random.default_rng(0)
    net = minnet.Network(dims, output="softmax", seed=0)
    X = rng.random((dims[0], m))
    Z, A = net._buffers(m)
    args = (net.theta, net._dims, X, net._hidden, net._output, np.empty(0), False, Z, A, np.int64(K.BLAS_FROM))
    flags = np.zeros(1, np.int64)
    with_flags = lambda: K.forward_with(*args, flags)  # noqa: E731
    without = lambda: K.forward_with(*args, None)  # noqa: E731
    with_flags(), without()
    best = interleaved_best(with_flags, without, rounds=3 * ROUNDS)
    ratio = best["flags"] / best["none"]
    print(f"\nforward_with {dims} m={m}: {best['flags'] * 1e3:.3f} ms with the flag, "
          f"{best['none'] * 1e3:.3f} ms without: {ratio:.3f}")
    assert ratio <= LIMIT

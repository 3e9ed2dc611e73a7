"""Speed of the gradient check against the plain NumPy loop, torch.autograd.gradcheck and JAX.

Run with ``python -m pytest benchmarks/test_gradcheck.py`` (about 3 minutes on 2
cores with torch installed; ``pip install torch==2.13.0`` for the torch column,
``pip install jax`` for the JAX column: jit plus vmap finite differences, in float64).
Every figure in the printed table is measured in this run; the speed targets
are asserted as ratios of timings from the same run.
"""
import json
import os
import subprocess
import sys
import time
from functools import partial

import numba
import numpy as np
import pytest

import minnet

from .conftest import RESULTS, record

WORKLOADS = {  # name: (layer_dims, m) -- relu hidden, softmax output, lambd = 0.7
    "digits": ([64, 32, 16, 10], 256),
    "medium": ([256, 64, 32, 10], 128),
    "mnist": ([784, 128, 64, 10], 64),
}
TORCH_FITS = ("digits", "medium")  # torch's gradcheck builds a dense Jacobian: mnist ran out of 24 GB


def workload(name):
    dims, m = WORKLOADS[name]
    rng = np.random.default_rng(0)
    net = minnet.Network(dims, hidden="relu", output="softmax", lambd=0.7, seed=0)
    X = rng.standard_normal((dims[0], m))
    labels = rng.integers(0, dims[-1], m)
    return net, X, labels


def timed(benchmark, fn, rounds):
    """Run fn through pytest-benchmark and return the fastest round in seconds."""
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: time one call ourselves
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start, result
    return stats.stats.min, result


@pytest.mark.parametrize("name", list(WORKLOADS))
@pytest.mark.parametrize("method", ["incremental", "full"])
def test_minnet(benchmark, name, method):
    if method == "full" and name == "mnist":
        pytest.skip("the full method needs ~2e5 whole forward passes of the mnist net: minutes")
    net, X, labels = workload(name)
    minnet.gradient_check(net, X, labels, method=method, sample=2)  # compile / load from cache
    seconds, report = timed(benchmark, lambda: minnet.gradient_check(net, X, labels, method=method),
                            rounds=5 if method == "incremental" else 1)
    assert report.verdict == "correct"
    record(name, f"minnet {method}", seconds, net.theta.size)


BASELINE = r"""
import json, sys, time
import numpy as np
import minnet
from minnet import baselines
name, which = sys.argv[1], sys.argv[2]
dims, m = json.loads(sys.argv[3])
rng = np.random.default_rng(0)
net = minnet.Network(dims, hidden="relu", output="softmax", lambd=0.7, seed=0)
X, labels = rng.standard_normal((dims[0], m)), rng.integers(0, dims[-1], m)
if which == "torch":
    import torch
    torch.set_num_threads(2)
if which == "jax":  # compile before timing: one chunk of directions
    chunk = baselines.jax_chunk(dims, m)
    baselines.jax_fd_check(net, X, labels, indices=np.arange(chunk), chunk=chunk)
start = time.perf_counter()
if which in ("numpy", "jax"):
    if which == "numpy":
        result = baselines.numpy_loop_check(net, X, labels)
    else:
        result = baselines.jax_fd_check(net, X, labels, chunk=chunk)
    seconds = time.perf_counter() - start
    ok = minnet.difference(result, minnet.flatten_gradients(net.gradients(X, labels), net.layout)) < 1e-6
else:
    ok = baselines.torch_gradcheck(net, X, labels)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "ok": bool(ok)}))
"""


def run_baseline(name, which):
    """Time a baseline in its own process, so no Numba thread pool competes with its threads.

    Only the check itself is timed (inside that process), not the start-up.
    """
    out = subprocess.run([sys.executable, "-c", BASELINE, name, which, json.dumps(WORKLOADS[name])],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_numpy_loop(benchmark, name):
    result = benchmark.pedantic(run_baseline, args=(name, "numpy"), rounds=1, iterations=1)
    assert result["ok"]
    record(name, "numpy loop", result["seconds"], workload(name)[0].theta.size)


@pytest.mark.parametrize("name", TORCH_FITS)
def test_torch_gradcheck(benchmark, name):
    pytest.importorskip("torch")
    result = benchmark.pedantic(run_baseline, args=(name, "torch"), rounds=1, iterations=1)
    assert result["ok"]
    record(name, "torch gradcheck", result["seconds"], workload(name)[0].theta.size)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_jax_fd(benchmark, name):
    """The optional JAX peer: the NumPy loop's differences, jit-compiled and vmap-ed over chunks of directions."""
    pytest.importorskip("jax")
    result = benchmark.pedantic(run_baseline, args=(name, "jax"), rounds=1, iterations=1)
    assert result["ok"]
    record(name, "jax vmap fd", result["seconds"], workload(name)[0].theta.size)


def test_threads_and_the_work_outside_the_kernels(benchmark):
    """The default mnist check on 1 and 2 threads, interleaved, median of 9 each.

    Every call the check makes on its kernel thread is timed; the rest of
    the check (validation, grouping, judging and the report, in the calling
    thread) is the work outside the kernels, which no thread count speeds
    up. The issue's target: under 5 % of the 2-thread check.
    """
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 cores")
    from minnet.check import _parallel
    net, X, labels = workload("mnist")
    inside = [0.0]
    run_kernel = _parallel.run

    def timed_kernel(*args, **kwargs):
        start = time.perf_counter()
        try:
            return run_kernel(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start

    reports = {}
    runs = {1: [], 2: []}
    _parallel.run = timed_kernel
    try:
        for threads in (1, 2):
            reports[threads] = minnet.gradient_check(net, X, labels, threads=threads)
        for _ in range(9):
            for threads in (1, 2):
                inside[0] = 0.0
                total = _time(lambda: minnet.gradient_check(net, X, labels, threads=threads))
                runs[threads].append((total, inside[0]))
    finally:
        _parallel.run = run_kernel
    benchmark.pedantic(lambda: minnet.gradient_check(net, X, labels, threads=2), rounds=1, iterations=1)
    (one, one_in), (two, two_in) = (np.median(np.array(runs[t]), axis=0) for t in (1, 2))
    outside = (two - two_in) / two
    record("mnist", "minnet 1 thread", one, net.theta.size, "median of 9")
    record("mnist", "minnet 2 threads", two, net.theta.size, f"median of 9; {outside:.1%} outside the kernels")
    print(f"\nmnist: 1 thread {one * 1e3:.1f} ms ({(one - one_in) * 1e3:.2f} ms outside the kernels), "
          f"2 threads {two * 1e3:.1f} ms ({(two - two_in) * 1e3:.2f} ms, {outside:.1%}): {one / two:.2f}x; "
          f"kernels alone {one_in / two_in:.2f}x")
    assert np.array_equal(reports[1].approx, reports[2].approx)  # the same numbers on any thread count
    assert reports[1].verdict == reports[2].verdict == "correct"
    assert outside < 0.05


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


MEMORY_PROBE = r"""
import json, sys
import numpy as np, minnet


def status(field):  # kB, from Linux's /proc/self/status
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


dims, m = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
net = minnet.Network(dims, hidden="relu", output="softmax", lambd=0.7)
X, labels = rng.standard_normal((dims[0], m)), rng.integers(0, dims[-1], m)
minnet.gradient_check(net, X, labels, sample=1)  # load every kernel from Numba's cache
grads = net.gradients(X, labels)  # the network, its gradient and a forward cache exist
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident size (VmHWM) to the current one
before = status("VmRSS")
report = minnet.gradient_check(net, X, labels)
print(json.dumps({"extra_mb": (status("VmHWM") - before) / 1024, "verdict": report.verdict}))
"""


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_peak_memory_of_the_check(name):
    """Peak resident memory the check adds above the net and its cached activations."""
    dims, m = WORKLOADS[name]
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, json.dumps([dims, m])], capture_output=True,
                         text=True, check=True, env={**os.environ, "NUMBA_NUM_THREADS": "2"})
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{name}: the check added {probe['extra_mb']:.1f} MB to the peak resident memory")
    assert probe["verdict"] == "correct"
    assert probe["extra_mb"] <= 50


def test_speed_targets():
    """The issue's targets, as ratios of timings taken above in this run."""
    needed = [("mnist", "minnet incremental"), ("mnist", "numpy loop")]
    if any(key not in RESULTS for key in needed):
        pytest.skip("run the whole file: the targets compare timings measured by the other benchmarks")
    seconds = {key: r["seconds"] for key, r in RESULTS.items()}
    assert seconds[("mnist", "numpy loop")] / seconds[("mnist", "minnet incremental")] >= 150
    if ("medium", "torch gradcheck") in seconds:
        assert seconds[("medium", "torch gradcheck")] / seconds[("medium", "minnet incremental")] >= 100


def test_progress_bar_costs_under_3_percent(benchmark):
    """The incremental check of mnist (long enough for the bar to show and move) with a bar and without."""
    pytest.importorskip("tqdm")
    net, X, labels = workload("mnist")
    check = partial(minnet.gradient_check, net, X, labels, method="incremental")
    check(sample=2)
    quiet = []
    for _ in range(5):  # interleaved, so a slow moment of the machine hits both
        quiet.append(_time(lambda: check(progress=False)))
        quiet_best = min(quiet)
    shown, _ = timed(benchmark, lambda: check(progress=True), rounds=5)
    quiet_best = min(quiet_best, *(_time(lambda: check(progress=False)) for _ in range(3)))
    print(f"\nmnist: with progress {shown:.3f} s, without {quiet_best:.3f} s: {shown / quiet_best - 1:+.1%}")
    record("mnist", "incremental, progress", shown, net.theta.size)
    assert shown <= 1.03 * quiet_best

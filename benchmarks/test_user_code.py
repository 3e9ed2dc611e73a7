"""Speed of checking a learner's own backprop: ``check_gradients`` on 1 and 2 worker processes, and the course's loop.

The workload is the course's L-layer network as its learners write it
(``minnet.course``: plain NumPy, dicts of parameters) at [1024, 20, 7, 5, 1]
on 209 examples, checked in full (every entry). Run with
``python -m pytest benchmarks/test_user_code.py -q -s`` (a few minutes on 2
cores). Every figure is measured in this run; the speed target is asserted as
a ratio of timings from the same run, interleaved so that a slow moment of a
shared machine hits both.
"""
import time

import joblib
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minnet
from minnet import course

from .conftest import record

WORKLOAD = "course"
DIMS, M = [1024, 20, 7, 5, 1], 209
ROUNDS = 2  # full checks per n_jobs, interleaved; the fastest counts
LOOP_SAMPLE = 2000  # entries the course's loop is timed on (the whole loop takes minutes)


def problem():
    """(cost_fn, grads_fn, parameters) of the course's L-layer network on cat-like data."""
    parameters = course.initialize_parameters_deep(DIMS)
    cost_fn, grads_fn = course.functions(*course.cat_like_data(DIMS, M))
    return cost_fn, grads_fn, parameters


def course_loop(cost_fn, parameters, entries, epsilon=1e-7):
    """The course's ``gradient_check_n`` loop over theta's ``entries``: copy theta, perturb one entry, two costs.

    Parameters
    ----------
    cost_fn : callable
        ``cost_fn(parameters) -> J``.
    parameters : dict of str -> ndarray
        W1, b1, ..., WL, bL.
    entries : ndarray of int
        The entries of theta (the blocks flattened in W1, b1, ... order) to evaluate.

    Returns
    -------
    ndarray
        ``gradapprox`` at those entries.
    """
    keys = [f"{p}{l}" for l in range(1, len(parameters) // 2 + 1) for p in "Wb"]
    shapes = [parameters[k].shape for k in keys]
    parameters_values = np.concatenate([np.reshape(parameters[k], (-1, 1)) for k in keys])
    offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])

    def vector_to_dictionary(theta):
        return {k: theta[offsets[j]:offsets[j + 1]].reshape(shapes[j]) for j, k in enumerate(keys)}

    gradapprox = np.zeros(len(entries))
    for q, i in enumerate(entries):
        thetaplus = np.copy(parameters_values)
        thetaplus[i][0] = thetaplus[i][0] + epsilon
        J_plus = cost_fn(vector_to_dictionary(thetaplus))
        thetaminus = np.copy(parameters_values)
        thetaminus[i][0] = thetaminus[i][0] - epsilon
        J_minus = cost_fn(vector_to_dictionary(thetaminus))
        gradapprox[q] = (J_plus - J_minus) / (2 * epsilon)
    return gradapprox


def comparable(report):
    """A report's JSON summary without its seconds and its worker count."""
    summary = report.to_dict()
    del summary["seconds"], summary["workers"]
    return summary


def _time(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def test_learner_code_on_one_and_two_worker_processes(benchmark):
    cost_fn, grads_fn, parameters = problem()
    n = sum(v.size for v in parameters.values())
    calls = [0]

    def counted(p):
        calls[0] += 1
        return cost_fn(p)

    def check(n_jobs):
        return minnet.check_gradients(cost_fn if n_jobs != 1 else counted, grads_fn, parameters, n_jobs=n_jobs)

    for n_jobs in (1, 2):  # warm: the workers started, NumPy's and minnet's first calls made
        minnet.check_gradients(cost_fn, grads_fn, parameters, n_jobs=n_jobs, sample=1)
    seconds, reports = {1: [], 2: []}, {}
    for k in range(ROUNDS):
        for n_jobs in (1, 2):
            calls[0] = 0
            if n_jobs == 2 and k == ROUNDS - 1:  # the last one through pytest-benchmark
                elapsed, reports[n_jobs] = _time(lambda: benchmark.pedantic(check, args=(2,), rounds=1,
                                                                             iterations=1))
            else:
                elapsed, reports[n_jobs] = _time(lambda: check(n_jobs))
            seconds[n_jobs].append(elapsed)
            if n_jobs == 1:
                cost_calls = calls[0]
    one, two = min(seconds[1]), min(seconds[2])

    # the same numbers and verdicts, bitwise
    assert np.array_equal(reports[1].approx, reports[2].approx, equal_nan=True)
    assert reports[1].verdict == reports[2].verdict == "correct"
    assert reports[1].difference == reports[2].difference
    assert comparable(reports[1]) == comparable(reports[2])
    assert reports[1].workers is None and reports[2].workers == 2

    # the course's loop, as the learner runs it (NumPy's default BLAS threads), and with BLAS on one thread as
    # minnet runs the cost: timed on evenly spread entries, scaled to all of theta
    entries = np.unique(np.linspace(0, n - 1, min(LOOP_SAMPLE, n)).astype(np.int64))
    loop, gradapprox = _time(lambda: course_loop(cost_fn, parameters, entries))
    with threadpool_limits(limits=1):
        loop_one, _ = _time(lambda: course_loop(cost_fn, parameters, entries))
    scale = n / entries.size
    # the loop computed what minnet's first pass did (at the same epsilon): they agree as "correct" entries do
    assert minnet.difference(gradapprox, reports[1].approx[entries]) < reports[1].thresholds[0]

    sample_note = "" if entries.size == n else f"estimated from {entries.size:,} of {n:,} entries, x{scale:.2f}"
    record(WORKLOAD, "minnet n_jobs=1", one, n, f"best of {ROUNDS}; {cost_calls / n:.1f} costs per entry")
    record(WORKLOAD, "minnet n_jobs=2", two, n, f"best of {ROUNDS}; {one / two:.2f}x n_jobs=1")
    record(WORKLOAD, "numpy loop", loop * scale, n, "the course's loop, 2 costs per entry; " + sample_note)
    record(WORKLOAD, "numpy loop, 1 BLAS th", loop_one * scale, n, "as above, BLAS on 1 thread; " + sample_note)
    print(f"\n{WORKLOAD} {DIMS}, m = {M}, {n:,} parameters: n_jobs=1 {one:.2f} s ({cost_calls:,} costs), "
          f"n_jobs=2 {two:.2f} s ({one / two:.2f}x); the course's loop {loop * scale:.2f} s "
          f"({loop * scale / two:.2f}x n_jobs=2), with BLAS on 1 thread {loop_one * scale:.2f} s "
          f"({loop_one * scale / two:.2f}x n_jobs=2); rounds {seconds}")
    if joblib.cpu_count() < 2:
        pytest.skip("one core: n_jobs=2 cannot be faster")
    assert one / two >= 1.8

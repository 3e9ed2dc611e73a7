"""``minnet bench --user-code``: a learner's own NumPy backprop (``minnet.course``) checked by ``check_gradients``
at several ``--jobs`` counts, beside the course's plain ``gradient_check_n`` loop over the same cost.
Yields the timings as each finishes; their rows, table, JSON and plot are ``bench``'s (which imports this
module, never the reverse). Imports ``_common`` only, of the CLI; no command module."""
import argparse
import time

import numpy as np

from ._common import jobs_count

LAYERS = [1024, 20, 7, 5, 1]  # the course's L-layer network, with 1,024 inputs (its pictures have 12,288)
EXAMPLES = 209                # the course's cat training set
WORKLOAD = "course"           # the rows' workload
LOOP = "course loop"          # the rows' method of the serial loop
EPSILON = 1e-7                # the course's


def jobs_list(text):
    """An argument type: '1,2,-1' -> [1, 2, -1], the ``--jobs`` counts (as joblib counts them), repeats dropped."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated process counts like 1,2,4, got {text!r}")
    return list(dict.fromkeys(jobs_count(part) for part in parts))


def default_jobs():
    """1, 2 and every core when there are more: the counts timed without ``--jobs``."""
    import joblib
    return sorted({1, 2, joblib.cpu_count()})


def job_counts(jobs):
    """The distinct process counts that ``jobs`` (joblib n_jobs, -1 every core) come to here, in order."""
    import joblib
    return list(dict.fromkeys(joblib.effective_n_jobs(j) for j in jobs))


def course_problem(layer_dims, m):
    """(cost_fn, grads_fn, parameters) of the course's network (``minnet.course``) on cat-like data (n_0, m)."""
    from .. import course
    X, Y = course.cat_like_data(layer_dims, m, seed=0)
    cost_fn, grads_fn = course.functions(X, Y)
    return cost_fn, grads_fn, course.initialize_parameters_deep(layer_dims, seed=1)


def course_loop(cost_fn, parameters, *, indices=None, epsilon=EPSILON):
    """The course's ``gradient_check_n``: for each entry, a fresh copy of theta moved by +-epsilon, two costs.

    Parameters
    ----------
    cost_fn : callable
        ``cost_fn(parameters) -> J``.
    parameters : dict of str -> ndarray
    indices : sequence of int, optional
        The entries of theta to difference (default every one).
    epsilon : float

    Returns
    -------
    ndarray, shape (len(indices),)
        The centered differences, in the order of ``indices``.
    """
    from .. import dictionary_to_vector, vector_to_dictionary
    parameters_values, _ = dictionary_to_vector(parameters)
    entries = range(parameters_values.shape[0]) if indices is None else indices
    gradapprox = np.zeros(len(entries))
    for k, i in enumerate(entries):
        thetaplus = np.copy(parameters_values)
        thetaplus[i][0] += epsilon
        J_plus = cost_fn(vector_to_dictionary(thetaplus, parameters))
        thetaminus = np.copy(parameters_values)
        thetaminus[i][0] -= epsilon
        J_minus = cost_fn(vector_to_dictionary(thetaminus, parameters))
        gradapprox[k] = (J_plus - J_minus) / (2 * epsilon)
    return gradapprox


def timings(layer_dims, m, *, jobs, repeat, full, sample, slow_above, best_time, status):
    """What ``minnet bench --user-code`` measures, yielded as each finishes: the course loop, then
    ``check_gradients`` at each jobs count.

    layer_dims, m : the course network's sizes and examples; jobs : list of joblib n_jobs;
    repeat : best of this many runs of each check; full : run the loop over every entry even above
    ``slow_above`` parameters (else it is timed on ``sample`` random entries and scaled up);
    best_time : ``best_time(run, repeat) -> (seconds, result)``; status : ``status(text)`` shows progress.
    Yields dicts with the rows' method, threads, jobs, seconds, estimated and verdict; the checks run
    with BLAS on one thread (``check_gradients`` pins it), and so does the loop.
    """
    from threadpoolctl import threadpool_limits

    from .. import check_gradients, difference, gradients_to_vector
    from ..check.judge import THRESHOLDS
    cost_fn, grads_fn, parameters = course_problem(layer_dims, m)
    n = sum(p.size for p in parameters.values())
    with threadpool_limits(limits=1):
        if full or n <= slow_above:
            status(f"{WORKLOAD}: {LOOP} over {n:,} entries ...")
            seconds, approx = best_time(lambda: course_loop(cost_fn, parameters), 1)
            diff = difference(approx, gradients_to_vector(grads_fn(parameters)).ravel())
            verdict = "correct" if diff < THRESHOLDS[0] else "suspicious" if diff < THRESHOLDS[1] else "bug"
            loop = _timing(LOOP, None, seconds, verdict=verdict)
        else:  # every entry costs the same two forward passes: time a sample and scale up
            chosen = np.random.default_rng(0).choice(n, size=min(sample, n), replace=False)
            status(f"{WORKLOAD}: {LOOP} on {chosen.size:,} of {n:,} entries ...")
            started = time.perf_counter()
            course_loop(cost_fn, parameters, indices=chosen)
            loop = _timing(LOOP, None, (time.perf_counter() - started) * n / chosen.size, estimated=True)
    yield loop
    tiny = course_problem([3, 4, 1], 5)
    for count in job_counts(jobs):
        check_gradients(*tiny, n_jobs=count, progress=False)  # start the workers before the clock
        status(f"{WORKLOAD}: minnet check_gradients in {count} process(es) over {n:,} entries ...")
        seconds, report = best_time(lambda: check_gradients(cost_fn, grads_fn, parameters, n_jobs=count,
                                                            progress=False), repeat)
        yield _timing(f"minnet n_jobs={count}", count, seconds, verdict=report.verdict)


def _timing(method, jobs, seconds, *, estimated=False, verdict=None):
    return {"method": method, "threads": 1, "jobs": jobs, "seconds": seconds, "estimated": estimated,
            "verdict": verdict}

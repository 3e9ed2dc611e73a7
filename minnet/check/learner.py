"""Evaluate a check of a learner's own functions: their cost at theta +- eps, one Python call at a time.

``evaluate_functions`` returns the same ``Evaluation`` as a network's check,
so the judge and the report cannot tell the two apart. Every call gets its
own copy of the parameters (``Calls``). Imports no judge verdicts and no report.
"""
import time
import warnings
from collections.abc import Mapping

import numpy as np

from .. import _validation as v
from .._layout import flatten, flatten_gradients
from . import _parallel, _workers
from ._workers import nondeterministic_message, scalar_cost
from .evaluate import Evaluation
from .judge import UNIT_ROUNDOFF, Estimates, rounding_error
from .upstream import locate


def evaluate_functions(cost_fn, grads_fn, layout, *, original, epsilon, sample, progress, calls, n_jobs=None,
                       X=None):
    """J, the learner's gradient and an evaluator of centered differences, at the flat parameters ``original``.

    layout : ``Layout`` of the parameters; original : (n,) their values;
    calls : ``Calls`` of this check (shared with its nearby point's check);
    n_jobs : joblib's n_jobs for the evaluations (None: 1 unless a ``joblib.parallel_config`` says otherwise);
    X : (n0, m) the data of the course's pair, or None (the upstream test's A0 and m).
    Returns an ``Evaluation``; raises for a cost that is not a finite,
    deterministic real number or a gradient with NaN or inf, and (before any
    work) for a cost that cannot be sent to worker processes.
    """
    cost_of = calls.wrap(cost_fn, "cost_fn")
    grads_of = calls.wrap(grads_fn, "grads_fn")
    pool = _workers.Pool(n_jobs)
    payload = None if pool.in_process else _workers.Payload(cost_fn, layout.blocks, original)

    def cost_at(vector):
        return scalar_cost(cost_of(vector))

    with _workers.one_blas_thread():
        started = time.perf_counter()
        unit = precision(cost_of(original))
        cost = deterministic_cost(lambda: scalar_cost(cost_of(original)))
        seconds_per_call = (time.perf_counter() - started) / 3
        returned = grads_of(original)
        grad, shapes = flatten_gradients(returned, layout, shapes=True)
    if not np.all(np.isfinite(grad)):
        raise ValueError("grads_fn returned NaN or inf")
    n_entries = layout.size if sample is None else sample * len(layout.blocks)
    show = _parallel.show_progress(progress, 20 * n_entries)  # Python calls: slow, so show sooner

    def evaluate(indices, steps):
        indices = np.arange(original.size, dtype=np.int64) if indices is None else indices  # None: every entry
        steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), indices.shape)
        values, errors = np.full(indices.size, np.nan), np.full(indices.size, np.inf)
        second = np.full(indices.size, np.nan)
        w = original[indices]
        taken = (w + steps) - (w - steps)  # the step really taken: 0 where h cannot move w
        moves = np.flatnonzero(taken != 0)  # the others stay unresolved
        bar = _parallel.Progress(moves.size, show and np.all(steps == epsilon))
        try:
            if payload is None:
                J_plus, J_minus = _workers.serial_pairs(cost_at, original, indices[moves], steps[moves], bar)
            else:
                J_plus, J_minus = pool.pairs(payload, indices[moves], np.ascontiguousarray(steps[moves]),
                                             center=cost, bar=bar, seconds_per_call=seconds_per_call)
        finally:
            bar.close()
        h = taken[moves]
        values[moves] = (J_plus - J_minus) / h
        second[moves] = J_plus - 2 * cost + J_minus
        errors[moves] = rounding_error(np.abs(J_plus) + np.abs(J_minus), h, "python", unit=unit)
        return Estimates(values, errors, np.zeros(indices.size, bool), second)

    def upstream(verdicts, numerical, thresholds):  # the learner's dZ and dA entries, where they returned them
        return locate(returned, layout.views(original), X=X, verdicts=verdicts, numerical=numerical,
                      thresholds=thresholds)

    examples = None if X is None or np.ndim(X) != 2 else int(np.shape(X)[1])
    return Evaluation(layout, original, grad, cost, "python loop", unit, 1, evaluate, cost_at, None, None, None,
                      shapes, pool.workers if payload is not None else None, examples,
                      upstream if isinstance(returned, Mapping) else None)


def deterministic_cost(cost_fn):
    first, second = cost_fn(), cost_fn()
    if first != second and not (np.isnan(first) and np.isnan(second)):
        raise ValueError(nondeterministic_message(first, second))
    if not np.isfinite(first):
        raise ValueError(f"the cost at theta is {first}; a gradient check needs a finite J")
    return first


class Calls:
    """A learner's functions, each call on a fresh copy of the parameters; a write into them is warned about once.

    ``wrap(fn, name)(vector)`` calls ``fn`` with a new dict of new arrays
    copied out of the flat vector, then checks that the dict still holds
    those arrays with those values. The dicts are kept alive, emptied,
    until the check ends, so that no two calls get a dict with the same id
    (a cost that memoizes on ``id(parameters)`` is then right too).
    """

    def __init__(self, layout):
        self.layout, self.warned, self.given = layout, set(), []

    def wrap(self, fn, role):
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or role

        def call(vector):
            parameters = {b.name: vector[b.offset:b.offset + b.size].reshape(b.shape).copy()
                          for b in self.layout.blocks}
            arrays = dict(parameters)
            try:
                return _workers.users_call(fn, parameters, name=name)
            finally:
                self._inspect(parameters, arrays, vector, name, role)
                parameters.clear()
                self.given.append(parameters)

        return call

    def _inspect(self, parameters, arrays, vector, name, role):
        if (name, role) in self.warned:
            return
        rebound = [k for k, a in arrays.items() if parameters.get(k) is not a]
        written = [k for k, a in arrays.items() if k not in rebound and not np.array_equal(
            a.ravel(), vector[self.layout[k].offset:self.layout[k].offset + a.size])]
        if rebound or written:
            self.warned.add((name, role))
            what = (f"writes into {', '.join(written)}" if written else "") + (" and " if written and rebound else "") \
                + (f"rebinds {', '.join(rebound)} (rebinding keys)" if rebound else "")
            warnings.warn(f"{role} {name} {what} of the parameters it is given. minnet gives every call a fresh "
                          f"copy, so the check is not affected, but code that reuses the dict (a training loop, "
                          f"the course's gradient_check_n) will be.", UserWarning, stacklevel=4)


def flat_parameters(parameters):
    """(theta (n,), its ``Layout``) of a learner's dict of str -> ndarray, validated: string keys, finite numbers."""
    if parameters is None:
        raise TypeError("parameters is required: a dict of str -> ndarray ('W1', 'b1', ...)")
    if isinstance(parameters, Mapping):
        for key, value in parameters.items():
            if not isinstance(key, str):
                raise TypeError(f"parameters keys must be strings such as 'W1' and 'b1', got {key!r}")
            v.float_array(value, f"parameters[{key!r}]")  # numeric, finite; warns about float32
    return flatten(parameters)


def course_functions(cost_fn, grads_fn, *, forward, backward, X, Y):
    """cost_fn and grads_fn, from themselves or from the course's forward/backward pair."""
    course = (forward, backward, X, Y)
    if any(x is not None for x in course):
        if cost_fn is not None or grads_fn is not None:
            raise TypeError("give either cost_fn and grads_fn, or forward, backward, X and Y; not both")
        for name, value in zip(("forward", "backward", "X", "Y"), course):
            if value is None:
                raise TypeError(f"{name} is required with the course's functions (forward, backward, X, Y)")
        if not callable(forward):
            raise TypeError(f"forward must be callable, got {type(forward).__name__}")
        if not callable(backward):
            raise TypeError(f"backward must be callable, got {type(backward).__name__}")

        def forward_pass(parameters):
            result = forward(X, Y, parameters)
            if not isinstance(result, tuple) or len(result) != 2:
                raise TypeError("forward must return (cost, cache) as the course's forward_propagation_n does, "
                                f"got {type(result).__name__}")
            return result

        def cost(parameters):
            return forward_pass(parameters)[0]

        def grads(parameters):
            return backward(X, Y, forward_pass(parameters)[1])

        forward_name = getattr(forward, "__qualname__", "forward")
        cost.__qualname__ = forward_name
        grads.__qualname__ = f"{forward_name} with {getattr(backward, '__qualname__', 'backward')}"
        return cost, grads
    if not callable(cost_fn):
        raise TypeError(f"cost_fn must be callable, got {type(cost_fn).__name__}")
    if not callable(grads_fn):
        raise TypeError(f"grads_fn must be callable, got {type(grads_fn).__name__}")
    return cost_fn, grads_fn


def precision(value):
    """The unit roundoff of the type a cost came in: float32 resolves far less than float64."""
    dtype = getattr(value, "dtype", None)
    if dtype is None and isinstance(value, np.ndarray):
        dtype = value.dtype
    if dtype is not None and np.issubdtype(dtype, np.floating) and np.finfo(dtype).eps > UNIT_ROUNDOFF:
        warnings.warn(f"cost_fn returns {dtype}: its rounding (about {np.finfo(dtype).eps:.1e} relative) limits "
                      f"what the check can resolve; compute the cost in float64", stacklevel=3)
        return float(np.finfo(dtype).eps)
    return UNIT_ROUNDOFF



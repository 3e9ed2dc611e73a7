"""Evaluate a minnet network's check: J, backprop and every entry's centered difference, on the kernels' threads.
Imports the kernels, ``plan``, ``_parallel`` and the judge's constants; must not import ``api``, ``referee`` or the report.

``evaluate_network`` returns an ``Evaluation``, what the judge reads: the
point, backprop, the values at the user's epsilon and an evaluator for other
steps. One module per method holds the kernels (``_full``, ``_incremental``,
``_segment``); this one plans their work (``plan``) and runs them (``_parallel``).
It imports no judge and no report.
"""
from collections import namedtuple

import numpy as np

from .. import _kernels as _base
from ..ops.losses import N_SUMS
from . import _full, _incremental, _parallel, _point, _segment, _tally, plan
from .judge import N_WORST, ROUNDING, UNIT_ROUNDOFF, Estimates

Evaluation = namedtuple("Evaluation", ["layout", "theta", "grad", "cost", "method", "unit", "threads", "evaluate",
                                       "cost_at", "grad_error", "first", "first_sums", "shapes", "workers",
                                       "examples", "upstream"], defaults=(None, None, None))
Evaluation.__doc__ = """The numbers of a check, from evaluate to judge.

layout : ``Layout`` of theta; theta, grad : (n,) the point and backprop's gradient there; cost : J(theta);
method : str, the evaluator's name; unit : the unit roundoff J was computed with; threads : int;
evaluate : ``evaluate(indices, steps) -> Estimates`` of those entries (indices None: every entry,
    in theta order; steps a float or one per entry);
cost_at : ``cost_at(vector) -> J`` at another theta;
grad_error : ``grad_error() -> (n,)`` backprop's own rounding error, or None where it is not known;
first : ``Estimates`` of every entry at epsilon when the evaluator made them with J and backprop, else None;
first_sums : (sums, worst) of ``first`` as ``_tally.block_tally`` makes them by blocks, every entry counted
    and no backprop error (made on the kernel thread with ``first``), or None;
shapes : dict of gradient blocks whose shape is not their parameter's (``flatten_gradients``), or None;
workers : set of the worker processes that evaluated a learner's cost (filled as it runs), or None: this process;
examples : m, the number of examples J averages over, where known (the diagnosis names m and 1/m), else None;
upstream : ``upstream(verdicts, numerical, thresholds) -> (finding, notes)``: ``upstream.locate`` on a learner's
    own gradients dict (its dZ and dA entries), or None.
"""


Start = namedtuple("Start", ["point", "largest", "cost", "grad", "prepared", "first", "first_sums"])
Start.__doc__ = """What ``start`` reads and computes in one call of the kernels: the ``_point.Point`` (theta copied),
max |theta|, J, backprop's gradient, ``_point.prepare`` of the cache (or None), and the first evaluation with
its tally when it was made there (else None)."""


def by_step(evaluate_at):
    """An evaluator of one step per entry, from one that takes a single step for all (the kernels)."""
    def evaluate(indices, steps):
        if np.ndim(steps) == 0:
            return evaluate_at(indices, float(steps))
        steps = np.asarray(steps, dtype=np.float64)
        distinct = np.unique(steps)
        if distinct.size == 1:
            return evaluate_at(indices, float(distinct[0]))
        values, errors = np.empty(indices.size), np.empty(indices.size)
        kinks = np.empty(indices.size, bool)
        for step in distinct:
            at = np.flatnonzero(steps == step)
            part = evaluate_at(indices[at], float(step))
            values[at], errors[at], kinks[at] = part.value, part.error, part.kink
        return Estimates(values, errors, kinks, None)

    return evaluate


def evaluate_network(net, X, Y, *, drop, use_drop, epsilon, method, threads, serial, show, everything):
    """J, backprop and the check's evaluator for a network, at its theta as read now.

    X, Y : validated float64 (n_0, m), (n_L, m); drop, use_drop : the fixed
    dropout multipliers (``Network._dropout``); method : "segment",
    "incremental" or "full"; threads : int; serial : the kernels run as their
    serial twins (a small check on one thread); show : a progress bar for the
    first evaluation; everything : every entry will be checked at epsilon,
    so the segment kernel evaluates them in the same call as J and backprop.
    Returns an ``Evaluation``; raises ValueError for a non-finite theta or J.
    """
    factor = ROUNDING[method] * UNIT_ROUNDOFF  # of the rounding errors, computed beside the values
    ahead = SegmentEntries(net, X, Y, drop=drop, use_drop=use_drop, epsilon=epsilon, indices=None, n_threads=threads,
                           serial=serial,
                           factor=factor) \
        if method == "segment" and everything else None
    started = start(net, X, Y, drop=drop, use_drop=use_drop, threads=threads, serial=serial, prepare=method != "full",
                    ahead=ahead, show=show)
    point, cost = started.point, started.cost
    if not np.isfinite(cost):
        raise ValueError(f"the cost at theta is {cost}; a gradient check needs a finite J")
    if not _tally.steps_all_move(started.largest, epsilon):  # some entries stay put: is any moved at all?
        plan.require_a_step_that_moves(point.theta, epsilon)
    evaluator = _NetworkEvaluator(net, point, use_drop, started.prepared, started.largest, method, threads, serial,
                                  factor, show and epsilon)
    return Evaluation(net.layout, point.theta, started.grad, cost, method, UNIT_ROUNDOFF, threads, by_step(evaluator),
                      cost_at(net, X, Y, drop=drop, use_drop=use_drop, threads=threads, serial=serial),
                      lambda: backprop_error(net, point, drop=drop, use_drop=use_drop, threads=threads, serial=serial),
                      started.first,
                      started.first_sums, None, examples=X.shape[1])


class _NetworkEvaluator:
    """``evaluate_at(indices, step)``: Estimates of those entries (None: every entry) at one step, by the kernels."""

    def __init__(self, net, point, use_drop, prepared, largest, method, threads, serial, factor, shown_step):
        self.net, self.point, self.use_drop, self.prepared, self.largest = net, point, use_drop, prepared, largest
        self.method, self.threads, self.serial = method, threads, serial
        self.factor, self.shown_step = factor, shown_step
        m = point.X.shape[1]
        self.group_size = plan.group_size(method, m)
        self.active = None  # units off for an example skip it: how many examples each one is on for (balance)
        if method == "incremental" and plan.off_units_are_flat(net.hidden):
            self.active = np.sum(point.Z.reshape(-1, m) > 0, axis=1)
        self.work = []  # the incremental kernel's work arrays, allocated once per check

    def __call__(self, indices, step):
        theta = self.point.theta
        stuck = 0  # entries the step cannot move: they give no difference at all
        if not _tally.steps_all_move(self.largest, step):
            indices = np.arange(theta.size, dtype=np.int64) if indices is None else indices
            taken, stuck = _tally.taken(theta, indices, step)
            moved = taken != 0
        part = indices if not stuck else indices[moved]
        n_part = theta.size if part is None else part.size
        show = bool(self.shown_step) and step == self.shown_step
        if n_part and self.method == "segment":
            approx, flags, _, part_errors, _ = segment_entries(
                self.net, theta, self.point.X, Y=self.point.Y, drop=self.point.drop, use_drop=self.use_drop,
                Z=self.point.Z, A=self.point.A, prepared=self.prepared, epsilon=step, indices=part,
                n_threads=self.threads, serial=self.serial, factor=self.factor, show=show)
        elif n_part:
            part = np.arange(theta.size, dtype=np.int64) if part is None else part
            approx, flags, part_errors = self._kernels(part, step, show)
        if stuck or not n_part:  # no difference, and no bound on its error, where the step is lost
            values, kinks = np.full(indices.size, np.nan), np.zeros(indices.size, bool)
            errors = np.full(indices.size, np.inf)
            if n_part:
                values[moved], kinks[moved], errors[moved] = approx, flags, part_errors
        else:
            values, kinks, errors = approx, flags, part_errors
        return Estimates(values, errors, kinks, None)

    def _kernels(self, part, step, show):
        """The incremental or full kernel over the entries ``part``, with their rounding errors."""
        net, point, m, group_size = self.net, self.point, self.point.X.shape[1], self.group_size
        approx, flags, sizes = np.empty(part.size), np.zeros(part.size, np.bool_), np.empty(part.size)
        errors = np.empty(part.size)
        order, groups, rows, runs = plan.row_groups(net.layer_dims, part, group_size, fill=False)
        chunks = plan.balanced_chunks(groups, rows, *plan.kernel_row_costs(net.layer_dims, m, self.method,
                                                                           active=self.active),
                                      self.threads)  # one chunk per thread: each holds a work row
        counters = _parallel.Counters(chunks.size - 1)  # one chunk per thread, balanced by cost
        use_drop = self.use_drop

        def kernels():  # each kernel reads the stop flag; between them, so does this
            if runs is not None:
                plan.fill_rows(*runs, order, counters.buffer, plan.chunks_for(self.threads))
            if counters.stop:
                return
            if self.method == "incremental":
                size = _incremental.work_size(_incremental.work_width(net._dims), m, group_size)
                if not self.work or self.work[0].shape[0] < chunks.size - 1:
                    self.work[:] = [np.empty((chunks.size - 1, size))]
                _incremental.incremental(point, net._hidden, net._output, net.lambd, step, use_drop,
                                         _point.Plan(part, order, groups, chunks), group_size, self.work[0],
                                         _point.Results(approx, flags, sizes, counters.buffer))
            else:  # groups of one entry: chunk bounds are positions in order
                out = _point.Results(np.empty(part.size), np.zeros(part.size, np.bool_), np.empty(part.size),
                                     counters.buffer)
                _full.full(point, net._hidden, net._output, net.lambd, step, use_drop, part[order], chunks, out)
                if counters.stop:
                    return
                approx[order], flags[order], sizes[order] = out.approx, out.kinks, out.scales
            if not counters.stop:
                _tally.rounding_errors_into(point.theta, part, step, sizes, self.factor, errors)

        _parallel.run(kernels, threads=self.threads, serial=self.serial, counters=counters, total=part.size,
                      show=show)
        return approx, flags, errors


def start(net, X, Y, *, drop, use_drop, threads, serial=False, prepare, ahead=None, show=False):
    """Read theta once, then J, backprop and the forward cache the kernels start from, in one call of the kernels.

    theta is copied (a network trained meanwhile in another thread changes
    nothing here) and checked finite before anything computes with it. J,
    backprop's flat gradient and the cache (Z, A) are ``Network._cost_and_gradient``'s
    numbers, bit for bit, computed on ``threads`` threads; prepare: also
    ``_point.prepare`` of them, else None.

    ahead : ``SegmentEntries`` of every entry, or None. Run in the same call
    when its step moves every entry, and, where no entry needs the
    incremental kernel and none kinked, tallied there too: one wait for the
    whole first evaluation. show : its progress bar.

    Returns a ``Start``.
    """
    m = X.shape[1]
    Z, A = net._buffers(m)
    grad = np.empty(net.layout.size)
    dims = net.layer_dims
    width = max(dims) * m
    scratch = np.empty(max(width, max(dims[l] * dims[l + 1] for l in range(len(dims) - 1))))
    found = {}
    counters, total = (ahead.counters, ahead.n) if ahead is not None else (_parallel.Counters(0), 0)

    def kernels():  # each kernel reads the stop flag; between them, so does this
        if serial:  # the same numbers from NumPy and training's own compiled passes: nothing more to compile
            theta = net.theta.copy()
            largest = float(np.max(np.abs(theta), initial=0.0))  # NaN or inf where theta holds one
        else:
            theta, largest = _tally.copy_and_largest(net.theta)
        found.update(theta=theta, largest=largest)
        if not np.isfinite(largest) or counters.stop:
            return  # nothing computes with a NaN or inf
        args = (theta, net._dims, X, Y, net._hidden, net._output, net.lambd, drop, use_drop, Z, A, grad,
                np.empty(width), np.empty(width), scratch)
        found["cost"] = _base.cost_and_backward(*args) if serial else _point.cost_and_gradient(*args, threads,
                                                                                              counters.buffer)
        if counters.stop:
            return
        found["prepared"] = _point.prepare(net._dims, X, Y, Z, A, net._hidden) if prepare else None
        if ahead is not None and np.isfinite(found["cost"]) and _tally.steps_all_move(largest, ahead.epsilon):
            ahead.run(theta, Z=Z, A=A, prepared=found["prepared"])
            found["ahead"] = True
            if not (ahead.counters.stop or ahead.any_unsafe or ahead.kinks.any()):
                found["sums"] = _tally.block_tally(ahead.approx, ahead.approx, grad, ahead.errors, np.empty(0),
                                                   np.empty(0, np.bool_), net.layout.starts, N_WORST)

    _parallel.run(kernels, threads=threads, serial=serial, counters=counters, total=total,
                  show=show and ahead is not None)
    if not np.isfinite(found["largest"]):
        net._require_finite()  # names the first NaN or inf
        raise ValueError("the network's parameters must be finite; theta held a NaN or inf when the check read it")
    first = None
    if found.get("ahead"):
        approx, kinks, _, errors, _ = ahead.finish()
        first = Estimates(approx, errors, kinks, None)
    G, colmax, out_act, resid = found["prepared"] if found["prepared"] is not None else (
        np.empty(0), np.empty(0), np.empty((0, 0)), np.empty((0, 0)))
    point = _point.Point(found["theta"], net._dims, X, Y, drop, Z, A, G, colmax, out_act, resid)
    return Start(point, found["largest"], float(found["cost"]), grad, found["prepared"], first, found.get("sums"))


def backprop_error(net, point, *, drop, use_drop, threads=1, serial=True):
    """Backprop's own rounding error per entry of theta, shape (n_parameters,).

    Backprop with absolute values everywhere: |A_L| + |Y| for A_L - Y (the
    subtraction that cancels in a confident network), |W|, |X|, |A|, and the
    slopes g' and dropout multipliers (never negative), times the unit
    roundoff. The backward kernel itself computes it, from the cache with
    A_L replaced by |A_L| + |Y| and Y by 0: training's pass in this thread
    for a small check (serial), else the check's parallel one on the kernel
    thread, where Ctrl-C stops it (the same numbers).
    """
    X, Y, Z, A = point.X, point.Y, point.Z, point.A
    m = X.shape[1]
    dims = net.layer_dims
    magnitudes = np.abs(A)
    magnitudes[-dims[-1] * m:] += np.abs(Y).ravel()
    out = np.empty(net.layout.size)
    width = max(dims) * m
    args = (np.abs(point.theta), net._dims, np.abs(X), np.zeros_like(Y), net._hidden, net._output, net.lambd,
            drop, use_drop, Z, magnitudes, out, np.empty(width), np.empty(width))
    if serial:
        _base.backward(*args, np.empty(width))
    else:
        scratch = np.empty(max(width, max(dims[l] * dims[l + 1] for l in range(len(dims) - 1))))
        counters = _parallel.Counters(0)
        _parallel.run(lambda: _point.backprop(*args, scratch, threads, counters.buffer), threads=threads,
                      counters=counters)
    return ROUNDING["backprop"] * UNIT_ROUNDOFF * out


def cost_at(net, X, Y, *, drop, use_drop, threads=1, serial=True):
    """``cost_at(vector) -> J`` of the network at another theta: training's pass in this thread for a small
    check (serial), else the check's parallel one on the kernel thread, where Ctrl-C stops it (the same numbers)."""
    if serial:
        return lambda shifted: net._cost(X, Y, drop, use_drop, shifted)

    def at(shifted):
        Z, A = net._buffers(X.shape[1])
        counters, found = _parallel.Counters(0), []
        _parallel.run(lambda: found.append(_point.forward_cost(shifted, net._dims, X, Y, net._hidden, net._output,
                                                               net.lambd, drop, use_drop, Z, A, threads,
                                                               counters.buffer)),
                      threads=threads, counters=counters)
        return float(found[0])

    return at


# ------------------------------------------------------------ the segment method
class SegmentEntries:
    """The segment kernel's evaluation of some entries: ``run`` on the check's kernel thread, then ``finish``.

    Made before the forward cache exists, so that a check can run it in the
    same call of the kernels as the forward pass (``start``). ``run``
    plans the groups and threads (from the cache: relu units off
    for an example skip it) and runs the kernels; ``finish``, in the calling
    thread, hands the entries a step could take across a later kink to the
    incremental kernel.

    Parameters
    ----------
    net : Network with piecewise-linear hidden layers (``plan.method_for`` sends no other here: the kernel
        knows their linear pieces only)
    X, Y : validated float64 (n_0, m), (n_L, m)
    drop, use_drop : the fixed dropout multipliers (``Network._dropout``)
    epsilon : float, a step that moves every listed entry
    indices : int64 (n,), or None for every entry of theta in order (n = theta.size)
    n_threads : int
    factor : float, the rounding errors' factor (``_tally.rounding_errors``)

    Attributes
    ----------
    approx (n,), kinks (n,) bool, scales (n,), errors (n,) the rounding error of each value,
    unsafe (n,) bool: the entries the incremental kernel evaluated, any_unsafe whether there are
    any; counters: ``_parallel.Counters`` of the kernels (at most one chunk per thread).
    """

    def __init__(self, net, X, Y, *, drop, use_drop, epsilon, indices, n_threads, factor, serial=False):
        self.net, self.X, self.Y, self.drop, self.use_drop = net, X, Y, drop, use_drop
        self.epsilon, self.indices, self.n_threads, self.factor = epsilon, indices, n_threads, factor
        self.serial = serial
        self.n = n = net.layout.size if indices is None else indices.size
        self.approx, self.kinks = np.empty(n), np.empty(n, dtype=np.bool_)  # the kernels write every entry
        self.scales, self.unsafe = np.empty(n), np.empty(n, dtype=np.bool_)
        self.errors = np.empty(0)  # made by ``run`` once the kernels' own arrays are freed
        self.any_unsafe = False
        self.counters = _parallel.Counters(plan.chunks_for(n_threads))  # at most that many chunks

    def run(self, theta, *, Z, A, prepared):
        """Plan and evaluate, on the kernel thread. theta : (n_parameters,) the point of the check (a copy
        the caller keeps unchanged); Z, A : its forward cache; prepared : ``_point.prepare`` of it."""
        if self.n == 0:
            return
        net, X, m = self.net, self.X, self.X.shape[1]
        self.theta, self.Z, self.A, self.prepared = theta, Z, A, prepared
        n_hidden = int(sum(net.layer_dims[1:-1]))
        _, colmax, out_act, resid = prepared
        cache = _segment.Cache(theta, net._dims, Z, self.drop, A, X, self.Y, colmax, out_act, resid,
                      np.empty(n_hidden * m * net.layer_dims[-1]), np.empty(n_hidden * m),
                      np.empty((n_hidden * m, N_SUMS)))
        group_size = max(1, min(64, 65536 // m))  # a chunk's columns: m * 2 * group_size <= 131072
        units = Z.reshape(-1, m)[:n_hidden]
        active = np.sum(units > 0, axis=1) if plan.off_units_are_flat(net.hidden) else np.full(n_hidden, m)
        order, groups, rows, runs = plan.row_groups(net.layer_dims, self.indices, group_size, fill=False)
        chunks = plan.balanced_chunks(groups, rows, plan.segment_row_costs(net.layer_dims, active, m), 20.0,
                                      plan.chunks_for(self.n_threads))
        n_chunks = plan.chunks_for(self.n_threads)
        if self.indices is None:  # every entry: the list is 0 .. n - 1, written in parallel
            self.indices = np.empty(self.n, np.int64)
            plan.fill_range(self.indices, self.counters.buffer, n_chunks)
        if runs is not None:
            plan.fill_rows(*runs, order, self.counters.buffer, n_chunks)
        if self.counters.stop:
            return
        with _parallel.dynamic():  # a few chunks per thread, taken as threads come free
            if n_hidden:
                bounds = plan.balanced_bounds(np.ones(m), plan.chunks_for(self.n_threads))
                _segment.directions(cache, net._hidden, net._output, self.use_drop, bounds, self.counters.buffer)
            if self.counters.stop:
                return
            _segment.segment(cache, net._hidden, net._output, net.lambd, self.epsilon, self.use_drop,
                             _point.Plan(self.indices, order, groups, chunks), group_size,
                             _point.Results(self.approx, self.kinks, self.scales, self.counters.buffer), self.unsafe)
        if self.counters.stop:
            return
        del cache, order  # the directions and the row order: the peak memory stays one array of theta's size lower
        self.errors = np.empty(self.n)
        _tally.rounding_errors_into(theta, self.indices, self.epsilon, self.scales, self.factor, self.errors)
        self.any_unsafe = bool(self.unsafe.any())  # here, while the kernel thread's caches hold it

    def finish(self):
        """In the calling thread, after ``run``: the entries that may cross a later kink, evaluated by the
        general incremental kernel. Returns (approx, kinks, scales, errors, unsafe)."""
        if self.any_unsafe:
            net, m, epsilon, factor = self.net, self.X.shape[1], self.epsilon, self.factor
            rest = np.flatnonzero(self.unsafe)
            sub = self.indices[rest]
            group_size = max(1, min(64, 4096 // m))  # as gradient_check sizes the incremental kernel's groups
            s_order, s_groups, s_rows, _ = plan.row_groups(net.layer_dims, sub, group_size)
            s_chunks = plan.balanced_chunks(s_groups, s_rows, *plan.kernel_row_costs(net.layer_dims, m, "incremental"),
                                            self.n_threads)
            s_counters = _parallel.Counters(s_chunks.size - 1)
            values, flags, sizes = np.empty(sub.size), np.zeros(sub.size, dtype=np.bool_), np.empty(sub.size)
            point = _point.Point(self.theta, net._dims, self.X, self.Y, self.drop, self.Z, self.A, *self.prepared)
            todo = _point.Plan(sub, s_order, s_groups, s_chunks)

            def fallback():
                work = np.empty((s_chunks.size - 1, _incremental.work_size(_incremental.work_width(net._dims), m,
                                                                            group_size)))
                _incremental.incremental(point, net._hidden, net._output, net.lambd, epsilon, self.use_drop, todo,
                                         group_size, work, _point.Results(values, flags, sizes, s_counters.buffer))

            _parallel.run(fallback, threads=self.n_threads, serial=self.serial, counters=s_counters, total=sub.size)
            self.approx[rest], self.kinks[rest], self.scales[rest] = values, flags, sizes
            self.errors[rest] = _tally.rounding_errors(self.theta, sub, epsilon, sizes, factor)
        return self.approx, self.kinks, self.scales, self.errors, self.unsafe


def segment_entries(net, theta, X, *, Y, drop, use_drop, Z, A, prepared, epsilon, indices, n_threads, factor,
                    serial=False, show=False):
    """Evaluate entries with the linear-segment kernel, the others' fallback with the incremental one.

    Parameters
    ----------
    theta : ndarray (n_parameters,), the point of the check (a copy the caller keeps unchanged)
    Z, A : the forward cache at theta, as ``Network._gradient`` returns it
    prepared : ``_point.prepare(...)`` of that cache (G, colmax, out_act, resid)
    show : bool, a progress bar
    the others as in ``SegmentEntries``.

    Returns
    -------
    approx (n,), kinks (n,) bool, scales (n,), errors (n,) the rounding error of each value,
    fallback (n,) bool: the entries the incremental kernel evaluated.
    """
    entries = SegmentEntries(net, X, Y, drop=drop, use_drop=use_drop, epsilon=epsilon, indices=indices,
                             n_threads=n_threads, factor=factor, serial=serial)
    _parallel.run(lambda: entries.run(theta, Z=Z, A=A, prepared=prepared), threads=n_threads, serial=serial,
                  counters=entries.counters, total=entries.n, show=show)
    return entries.finish()

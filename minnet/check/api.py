"""Gradient check: validate, evaluate, judge, report.

``gradient_check`` checks a minnet ``Network`` with the parallel kernels of
``_kernels``; ``check_gradients`` checks a learner's own ``cost_fn`` and
``grads_fn`` (or the course's ``forward_propagation_n`` and
``backward_propagation_n``). Both evaluate every checked entry at the
user's epsilon, hand the values with their own rounding errors to
``judge.referee``, which evaluates doubtful entries again at other steps,
and return a ``GradCheckReport``.
"""
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Mapping

import numba
import numpy as np

from .. import _kernels as _base_kernels
from .. import _validation as v
from .._layout import flatten, flatten_gradients
from ..ops.activations import PIECEWISE_LINEAR  # the hidden activations the linear-segment kernel applies to
from . import _kernels, _linear, _tally, judge
from .judge import Estimates
from .report import GradCheckReport

THRESHOLDS = (1e-7, 1e-3)
METHODS = ("auto", "segment", "incremental", "full")
MODES = ("full", "directional")


# ------------------------------------------------------------ the driver
NEARBY_MOVE = 1e-2  # the nearby point where kinks are judged: theta moved by this fraction of its blocks' scale


def _run(layout, theta, grad, cost, evaluate, cost_at, epsilon, mode, sample, thresholds, include_kinks,
         method, seed, unit, grad_error=None, threads=1, entries=None, nearby=None, shapes=None):
    """Pick entries, evaluate them at epsilon, referee the doubtful ones, judge kinks, build the report.

    evaluate(indices, steps) -> Estimates for those entries of theta (indices None: every entry, in theta
        order; steps a float, or one per entry);
    cost_at(vector) -> J at another theta (the directional mode);
    grad_error : callable () -> (n,) backprop's own rounding error where known, else None;
        computed only when something is doubtful.
    threads : Numba threads for the judge's and the report's tallies.
    entries : int64 array, optional: check these entries only (the nearby point's check of kinks).
    nearby : callable (indices, moved theta, epsilon) -> GradCheckReport of those entries at the moved
        theta, or None: kinks the rule for kinks cannot settle are then left unresolved.
    shapes : dict, gradient blocks whose shape is not their parameter's (see ``flatten_gradients``).
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed) if sample is not None or mode == "directional" else None
    n = layout.size
    if entries is not None:
        todo = entries
    else:
        todo = None if mode == "full" and sample is None else _selection(layout, mode, sample, rng)  # None: all
    directional = None
    if mode == "directional":
        todo, directional = _directional(layout, theta, grad, cost_at, epsilon, thresholds, rng, unit)
    everything = todo is None or todo.size == n  # every entry, in theta order: no copies of theta's size
    referee, tallied, pending = None, None, None
    bound = judge.step_bounds(theta, layout)
    if everything:
        first = evaluate(todo, epsilon)
        starts = ("starts", layout.starts)
        verdict = judge.referee(first, grad, epsilon, evaluate, thresholds, include_kinks, starts, grad_error,
                                threads, bound)
        approx, refereed, error, kink_mask = first.value, verdict.value, verdict.error, verdict.kink
        grad_error, tallied = verdict.grad_error, verdict.tally
        checked = np.ones(n, dtype=bool)
        if verdict.pending.any():
            pending = np.flatnonzero(verdict.pending)
    else:
        approx, refereed, error = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.inf)
        kink_mask, checked = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if not everything and todo.size:
        first = evaluate(todo, epsilon)
        blocks = np.searchsorted([b.offset for b in layout.blocks], todo, side="right") - 1
        full_error = grad_error() if grad_error is not None else None  # a subset: not worth deferring
        verdict = judge.referee(first, grad[todo], epsilon, lambda positions, step: evaluate(todo[positions], step),
                                thresholds, include_kinks, blocks, None if full_error is None else full_error[todo],
                                threads, lambda positions: bound(todo[positions]))
        grad_error = full_error
        approx[todo], refereed[todo], error[todo] = first.value, verdict.value, verdict.error
        kink_mask[todo], checked[todo] = verdict.kink, True
        if verdict.pending.any():
            pending = todo[verdict.pending]
    if (todo is not None and not todo.size) or callable(grad_error):
        grad_error = None
    if (todo is None or todo.size) and verdict.summary is not None:
        example = verdict.summary["example"]
        referee = dict(verdict.summary, example_index=int(example if todo is None else todo[example]))
    coarse = None  # entries that agree within their error, an error too coarse for a verdict
    if referee is not None and nearby is not None:
        coarse = judge.too_coarse(refereed, grad, error, thresholds, layout.starts,
                                  0.0 if grad_error is None else grad_error, checked)
        if include_kinks:  # counted as they are: not judged elsewhere
            coarse = coarse[~kink_mask[coarse]]
    kinks, coarse_record = _judge_nearby(layout, theta, grad, refereed, error, kink_mask, pending, coarse, nearby,
                                         epsilon, include_kinks, seed)
    if referee is not None and coarse_record and coarse_record["n_entries"]:
        referee["nearby"] = coarse_record
    if not kink_mask.any():
        kinks = None
    return GradCheckReport(layout, approx, grad, checked, kink_mask, refereed, error, cost, epsilon, thresholds,
                           include_kinks, method, mode, time.perf_counter() - start, referee, directional,
                           grad_error, tallied, threads, kinks=kinks, shapes=shapes)


def _judge_nearby(layout, theta, grad, refereed, error, kink_mask, pending, coarse, nearby, epsilon, include_kinks,
                  seed):
    """Judge at a nearby point, where the code is smooth, what could not be judged here.

    pending : theta indices of kinks the rule for kinks left open (error inf);
    coarse : theta indices that agree with backprop within an error too coarse for a verdict.
    The point is theta moved by ``NEARBY_MOVE`` of its blocks' scale in a
    random direction: far larger than any step the check takes there, far
    smaller than theta. There those entries are checked as any other,
    against backprop at that point, and where that resolves them better
    their disagreement (value - backprop there) is carried back onto
    backprop's value here, in ``refereed`` and ``error`` (in place). A kink
    still at a kink there, or with no nearby check, stays unresolved (error
    inf): never correct.

    Returns the records for the report: how the kinks were judged, and how
    many coarse entries the nearby point resolved better (None: none was tried).
    """
    record = {"n_kinks": int(np.count_nonzero(kink_mask)), "counted_as_they_are": bool(include_kinks),
              "n_between": 0, "n_nearby": 0, "n_unresolved": 0, "move": None, "nearby_epsilon": None}
    coarse_record = None
    pending = np.empty(0, np.int64) if pending is None or include_kinks else pending
    record["n_between"] = 0 if include_kinks else record["n_kinks"] - pending.size
    coarse = np.empty(0, np.int64) if coarse is None else np.setdiff1d(coarse, pending)
    if nearby is not None and (pending.size or coarse.size):
        both = np.union1d(pending, coarse)
        rng = np.random.default_rng(seed)
        scales = judge.block_scales(theta, layout)
        moved = theta + NEARBY_MOVE * scales * rng.standard_normal(theta.size)
        there_epsilon = min(epsilon, NEARBY_MOVE * float(np.min(scales[both])) / 100)
        there = nearby(both, moved, there_epsilon)
        there_error = there.error[both] + (there.grad_error[both] if np.ndim(there.grad_error) else
                                           there.grad_error)
        judged = np.isfinite(there_error) & ~there.kink_mask[both]
        finer = judged & (there_error < error[both])  # the block's norms are about the same at both points
        taken = finer | (judged & np.isin(both, pending))
        take = both[taken]
        refereed[take] = there.refereed[take] - there.grad[take] + grad[take]
        error[take] = there_error[taken]
        record.update(n_nearby=int(np.intersect1d(take, pending).size), move=NEARBY_MOVE,
                      nearby_epsilon=there_epsilon)
        coarse_record = {"n_entries": int(np.setdiff1d(take, pending).size), "n_tried": int(coarse.size),
                         "move": NEARBY_MOVE, "epsilon": there_epsilon}
        pending = np.setdiff1d(pending, take)
    record["n_unresolved"] = int(pending.size)
    return record, coarse_record


def _directional(layout, theta, grad, cost_at, epsilon, thresholds, rng, unit):
    """One random unit direction u per block: (J(theta + h u) - J(theta - h u)) / 2h against u . grad.

    The directions are judged and refereed like entries; a block whose
    direction is not judged correct is checked entry by entry.
    Returns (entries to check one by one, {block: directional record}).
    """
    blocks = layout.blocks
    directions = []
    for block in blocks:
        u = rng.standard_normal(block.size)
        directions.append(u / np.sqrt(np.sum(u * u)))
    backprop = np.array([float(u @ grad[b.offset:b.offset + b.size]) for b, u in zip(blocks, directions)])

    def along(positions, steps):
        values, errors = np.full(positions.size, np.nan), np.full(positions.size, np.inf)
        steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), positions.shape)
        for q, k in enumerate(positions):
            step = float(steps[q])
            part = slice(blocks[k].offset, blocks[k].offset + blocks[k].size)
            shifted = theta.copy()
            shifted[part] = theta[part] + step * directions[k]
            J_plus = cost_at(shifted)
            shifted[part] = theta[part] - step * directions[k]
            J_minus = cost_at(shifted)
            taken = 2.0 * step if np.any(theta[part] + step * directions[k] != theta[part]) else 0.0
            if taken:
                values[q] = (J_plus - J_minus) / taken
                errors[q] = judge.rounding_error(abs(J_plus) + abs(J_minus), taken, "full", unit)
        return Estimates(values, errors, np.zeros(positions.size, bool), None)

    everything = np.arange(len(blocks))
    first = along(everything, epsilon)
    verdict = judge.referee(first, backprop, epsilon, along, thresholds, True, everything)
    record, escalate = {}, []
    for k, block in enumerate(blocks):
        record[block.name] = {"numerical": float(verdict.value[k]), "numerical_at_epsilon": float(first.value[k]),
                              "backprop": float(backprop[k]), "error": float(verdict.error[k])}
        one = judge.measure(verdict.value[k:k + 1], backprop[k:k + 1], verdict.error[k:k + 1], thresholds)
        if one.verdict != judge.CORRECT:
            escalate.append(np.arange(block.offset, block.offset + block.size, dtype=np.int64))
    return (np.concatenate(escalate) if escalate else np.empty(0, np.int64)), record


def _thresholds(thresholds):
    if not isinstance(thresholds, (tuple, list)) or len(thresholds) != 2:
        raise TypeError(f"thresholds must be a pair (correct_below, bug_from), got {thresholds!r}")
    low = v.real(thresholds[0], "thresholds[0]", low=0.0, low_open=True)
    high = v.real(thresholds[1], "thresholds[1]", low=0.0, low_open=True)
    if low > high:
        raise ValueError(f"thresholds must be increasing, got {thresholds!r}")
    return low, high


def _selection(layout, mode, sample, rng):
    """Which entries to check one by one: all, k per block, or none (directional), in theta order."""
    if mode == "directional":
        return np.empty(0, np.int64)
    if sample is None:
        return np.arange(layout.size, dtype=np.int64)
    picks = [b.offset + np.sort(rng.choice(b.size, size=min(sample, b.size), replace=False))
             for b in layout.blocks]
    return np.concatenate(picks).astype(np.int64)


def _show_progress(progress, n_entries):
    if progress is None:
        return n_entries >= 20000 and sys.stderr.isatty()
    return bool(progress)


class _Progress:
    def __init__(self, total, enabled, unit="entry"):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, unit=unit, unit_scale=total >= 10000, leave=False,
                                desc="gradient check")
            except ImportError:
                pass

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _common_args(epsilon, method, mode, sample, threads, thresholds, seed):
    epsilon = v.real(epsilon, "epsilon", low=0.0, high=1.0, low_open=True)
    v.choice(method, "method", METHODS)
    v.choice(mode, "mode", MODES)
    if sample is not None:
        sample = v.integer(sample, "sample", minimum=1)
        if mode == "directional":
            raise ValueError("sample cannot be combined with mode='directional'; use one or the other")
    if threads is not None:
        threads = v.integer(threads, "threads", minimum=1)
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"threads must be <= {numba.config.NUMBA_NUM_THREADS} "
                             f"(Numba's thread pool on this machine), got {threads}")
    return epsilon, sample, threads, _thresholds(thresholds), v.seed(seed)

# ------------------------------------------------------------ minnet networks
def gradient_check(net, X, Y, epsilon=1e-7, method="auto", mode="full", sample=None, dropout_seed=0,
                   threads=None, include_kinks=False, thresholds=THRESHOLDS, seed=0, progress=None, *,
                   _entries=None, _nearby=True):
    """Compare a network's backprop with centered differences of its cost.

    Parameters
    ----------
    net : Network
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m); for softmax also integer labels (m,)
    epsilon : float
        The perturbation: ``(J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)``.
        Doubtful entries are evaluated again at other steps (see ``judge``).
    method : {"auto", "segment", "incremental", "full"}
        "full" runs the whole forward pass for every perturbation (the notes'
        algorithm); "incremental" starts from the cached forward pass at the
        perturbed layer and carries only the examples whose values change;
        "segment" (relu and leaky_relu nets) moves the logits along each
        unit's direction while no later unit can cross its kink, at a cost
        per entry independent of the hidden widths (see ``_linear``), and
        hands the other entries to "incremental". "auto", the default, is
        the fastest exact path: "segment" where it applies, else "incremental".
    mode : {"full", "directional"}
        "directional" checks one random direction per block (2 cost evaluations)
        and checks a block that is not judged correct entry by entry.
    sample : int, optional
        Check only this many random entries of every block.
    dropout_seed : int or None
        With keep_prob < 1: the seed of the fixed masks used for every J and for
        backprop (the deterministic check mode). None draws fresh masks, which
        makes J random, and is refused.
    threads : int, optional
        Numba threads for this call (restored afterwards).
    include_kinks : bool
        Count entries whose perturbation crosses a relu kink with their
        centered difference, as any other entry. By default such an entry is
        judged at a nearby point where the network is smooth (theta moved by
        ``NEARBY_MOVE`` of its scale in a random direction, said in the
        report); one that cannot be judged there leaves its block "inconclusive".
    thresholds : (float, float)
        Verdict bands: correct below the first, bug from the second.
    seed : int
        Seeds the sampled entries and the random directions.
    progress : bool or None
        Show a progress bar (None: on a terminal, for long checks).

    Returns
    -------
    GradCheckReport
        Its verdict is "correct", "suspicious", "bug" or "inconclusive".

    Notes
    -----
    theta is read once, at the start. Ctrl-C stops the kernels within a group
    of entries and raises KeyboardInterrupt.

    Examples
    --------
    >>> from minnet import Network, datasets, gradient_check
    >>> X, Y = datasets.flower(m=64)
    >>> gradient_check(Network([2, 5, 1], lambd=0.7), X, Y).verdict
    'correct'
    """
    from ..network import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minnet.Network, got {type(net).__name__}; "
                        f"for your own functions use minnet.check_gradients")
    epsilon, sample, threads, thresholds, seed = _common_args(epsilon, method, mode, sample, threads,
                                                              thresholds, seed)
    include_kinks = v.boolean(include_kinks, "include_kinks")
    if method == "segment" and net.hidden not in PIECEWISE_LINEAR:
        raise ValueError(f"method='segment' needs piecewise-linear hidden layers (hidden one of "
                         f"{', '.join(map(repr, PIECEWISE_LINEAR))}), got hidden={net.hidden!r}; "
                         f"use method='auto' or 'incremental'")
    X, Y = net._check_XY(X, Y)
    m = X.shape[1]
    if net.uses_dropout and dropout_seed is None:
        _refuse_random_dropout(net, X, Y)
    drop, use_drop = net._dropout(m, dropout_seed)
    if method == "auto":  # the fastest exact path
        method = "segment" if net.hidden in PIECEWISE_LINEAR else "incremental"
    n_threads = threads or numba.get_num_threads()
    show = _show_progress(progress, net.layout.size if sample is None else sample * len(net.layout.blocks))
    factor = judge.ROUNDING[method] * judge.UNIT_ROUNDOFF  # of the rounding errors, computed beside the values
    ahead = None  # every entry's first evaluation, in the same call of the kernels as J and backprop
    if method == "segment" and mode == "full" and sample is None and _entries is None:
        ahead = _linear.LinearEntries(net, X, Y, drop, use_drop, epsilon, None, n_threads, factor)
    theta, largest, cost, grad, Z, A, prepared, first = _start(net, X, Y, drop, use_drop, n_threads,
                                                               method != "full", ahead, show)
    if not np.isfinite(cost):
        raise ValueError(f"the cost at theta is {cost}; a gradient check needs a finite J")
    if not _tally.steps_all_move(largest, epsilon):  # some entries stay put: is any moved at all?
        _require_a_step_that_moves(theta, epsilon)
    group_size = max(1, min(64, 4096 // m)) if method != "full" else 1  # 2 * group_size * m <= 8192 columns
    active = None  # relu units: how many examples each one is on for (balances the incremental kernel's threads)
    if method == "incremental" and net.hidden == "relu":
        active = np.sum(Z.reshape(-1, m) > 0, axis=1)
    work = []  # the incremental kernel's work arrays, allocated once per check
    G, colmax, out_act, resid = prepared if prepared is not None else (np.empty(0), np.empty(0), np.empty((0, 0)),
                                                                       np.empty((0, 0)))
    point = _kernels.Point(theta, net._dims, X, Y, drop, Z, A, G, colmax, out_act, resid)

    def evaluate_at(indices, step):  # indices None: every entry, in theta order
        if first and indices is None and step == epsilon:  # evaluated ahead
            return first.pop()
        stuck = 0  # entries the step cannot move: they give no difference at all
        if not _tally.steps_all_move(largest, step):
            indices = np.arange(theta.size, dtype=np.int64) if indices is None else indices
            taken, stuck = _tally.taken(theta, indices, step)
            moved = taken != 0
        part = indices if not stuck else indices[moved]
        n_part = theta.size if part is None else part.size
        if n_part and method == "segment":
            approx, flags, _, part_errors, _ = _linear.linear_entries(net, theta, X, Y, drop, use_drop, Z, A, prepared,
                                                                      step, part, n_threads, factor,
                                                                      show and step == epsilon)
        elif n_part:
            part = np.arange(theta.size, dtype=np.int64) if part is None else part
            approx, flags, sizes = np.empty(part.size), np.zeros(part.size, np.bool_), np.empty(part.size)
            part_errors = np.empty(part.size)
            order, groups, rows, runs = _linear.row_groups(net.layer_dims, part, group_size, fill=False)
            # one chunk per thread, balanced by cost
            chunks = _linear.balanced_chunks(groups, rows, *_row_costs(net.layer_dims, m, method, active), n_threads)
            done = np.zeros(chunks.size, np.int64)  # entries finished in each chunk, then the stop flag

            def kernel():
                if runs is not None:
                    _kernel("fill_rows", "minnet.check._linear")(*runs, order)
                if method == "incremental":
                    size = _kernels.work_size(_kernels.work_width(net._dims), m, group_size)
                    if not work or work[0].shape[0] < chunks.size - 1:
                        work[:] = [np.empty((chunks.size - 1, size))]
                    _kernel("incremental")(point, net._hidden, net._output, net.lambd, step, use_drop,
                                           _kernels.Plan(part, order, groups, chunks), group_size, work[0],
                                           _kernels.Results(approx, flags, sizes, done))
                else:  # groups of one entry: chunk bounds are positions in order
                    out = _kernels.Results(np.empty(part.size), np.zeros(part.size, np.bool_), np.empty(part.size),
                                           done)
                    _kernel("full")(point, net._hidden, net._output, net.lambd, step, use_drop, part[order], chunks,
                                    out)
                    approx[order], flags[order], sizes[order] = out.approx, out.kinks, out.scales
                _kernel("rounding_errors_into", _tally.__name__)(theta, part, step, sizes, factor, part_errors)

            _run_kernel(kernel, n_threads, done, part.size, show and step == epsilon)
        if stuck or not n_part:  # no difference, and no bound on its error, where the step is lost
            values, kinks = np.full(indices.size, np.nan), np.zeros(indices.size, bool)
            errors = np.full(indices.size, np.inf)
            if n_part:
                values[moved], kinks[moved], errors[moved] = approx, flags, part_errors
        else:
            values, kinks, errors = approx, flags, part_errors
        return Estimates(values, errors, kinks, None)

    def cost_at(shifted):
        return net._cost(X, Y, drop, use_drop, shifted)

    def nearby(indices, moved, there_epsilon):  # the same check of those entries at a nearby theta
        there = net.copy()
        there.theta[:] = moved
        return gradient_check(there, X, Y, there_epsilon, method, dropout_seed=dropout_seed, threads=threads,
                              thresholds=thresholds, seed=seed, progress=False, _entries=indices, _nearby=False)

    return _run(net.layout, theta, grad, cost, _by_step(evaluate_at), cost_at, epsilon, mode, sample, thresholds,
                include_kinks, method, seed, judge.UNIT_ROUNDOFF,
                lambda: _backprop_error(net, theta, X, Y, drop, use_drop, Z, A), n_threads, _entries,
                nearby if _nearby else None)


def _by_step(evaluate_at):
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


def _start(net, X, Y, drop, use_drop, n_threads, prepare, ahead=None, show=False):
    """Read theta once, then J, backprop and the forward cache the kernels start from, in one call of the kernels.

    theta is copied (a network trained meanwhile in another thread changes
    nothing here) and checked finite before anything computes with it. J,
    backprop's flat gradient and the cache (Z, A) are ``Network._cost_and_gradient``'s
    numbers, bit for bit, computed on n_threads threads; prepare: also
    ``_kernels.prepare`` of them, else None.

    ahead : ``_linear.LinearEntries`` of every entry, or None. Run in the same
    call when its step moves every entry, and, where no entry needs the
    incremental kernel and none kinked, tallied there too (``Estimates.blocks``):
    one wait for the whole first evaluation. show : its progress bar.

    Returns (theta, max |theta|, J, grad, Z, A, prepared, first): first is
    [Estimates] of ahead, or [] where it did not run.
    """
    m = X.shape[1]
    Z, A = net._buffers(m)
    grad = np.empty(net.layout.size)
    dims = net.layer_dims
    width = max(dims) * m
    scratch = np.empty(max(width, max(dims[l] * dims[l + 1] for l in range(len(dims) - 1))))
    out = []

    def kernel():
        theta, largest = _kernel("copy_and_largest", _tally.__name__)(net.theta)
        out.extend((theta, largest))
        if not np.isfinite(largest):
            return  # nothing computes with a NaN or inf
        out.append(_kernel("cost_and_gradient")(theta, net._dims, X, Y, net._hidden, net._output, net.lambd, drop,
                                                use_drop, Z, A, grad, np.empty(width), np.empty(width), scratch))
        out.append(_kernel("prepare")(net._dims, X, Y, Z, A, net._hidden) if prepare else None)
        blocks = None
        if ahead is not None and np.isfinite(out[2]) and _tally.steps_all_move(largest, ahead.epsilon):
            ahead.run(theta, Z, A, out[3])
            if not (ahead.done[-1] or ahead.any_unsafe or ahead.kinks.any()):  # done[-1]: stopped by Ctrl-C
                starts = net.layout.starts
                blocks = (grad, starts) + _kernel("block_tally", _tally.__name__)(
                    ahead.approx, ahead.approx, grad, ahead.errors, np.empty(0), np.empty(0, np.bool_), starts,
                    judge.N_WORST)
            out.append(blocks)

    done, total = (ahead.done, ahead.n) if ahead is not None else (np.zeros(1, np.int64), 0)
    _run_kernel(kernel, n_threads, done, total, show and ahead is not None)
    theta, largest = out[:2]
    if not np.isfinite(largest):
        net._require_finite()  # names the first NaN or inf
        raise ValueError("the network's parameters must be finite; theta held a NaN or inf when the check read it")
    first = []
    if len(out) == 5:  # ahead ran
        approx, kinks, _, errors, _ = ahead.finish()
        first.append(Estimates(approx, errors, kinks, None, out[4]))
    return theta, largest, float(out[2]), grad, Z, A, out[3], first


def _backprop_error(net, theta, X, Y, drop, use_drop, Z, A):
    """Backprop's own rounding error per entry of theta, shape (n_parameters,).

    Backprop with absolute values everywhere: |A_L| + |Y| for A_L - Y (the
    subtraction that cancels in a confident network), |W|, |X|, |A|, and the
    slopes g' and dropout multipliers (never negative), times the unit
    roundoff. The backward kernel itself computes it, from the cache with
    A_L replaced by |A_L| + |Y| and Y by 0.
    """
    m = X.shape[1]
    n_out = net.layer_dims[-1]
    magnitudes = np.abs(A)
    magnitudes[-n_out * m:] += np.abs(Y).ravel()
    out = np.empty(net.layout.size)
    width = max(net.layer_dims) * m
    _base_kernels.backward(np.abs(theta), net._dims, np.abs(X), np.zeros_like(Y), net._hidden, net._output, net.lambd, drop,
                           use_drop, Z, magnitudes, out, np.empty(width), np.empty(width), np.empty(width))
    return judge.ROUNDING["backprop"] * judge.UNIT_ROUNDOFF * out


class _KernelThread:
    """The one long-lived thread that runs the parallel kernels.

    Numba's OpenMP threads belong to the thread that calls a parallel kernel,
    and two such teams (one idle but still spinning) would compete for the
    cores, so every kernel runs here. A daemon thread fed by a queue: it
    works from any thread, also one that outlives the main script, and a
    forked child makes its own (``os.register_at_fork``).
    """

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="minnet-check", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            call, finished, outcome = self.jobs.get()
            try:
                call()
            except BaseException as exc:  # handed to the caller
                outcome.append(exc)
            finished.set()

    def submit(self, call):
        finished, outcome = threading.Event(), []
        self.jobs.put((call, finished, outcome))
        return finished, outcome


_KERNEL_THREAD = []
_KERNEL_LOCK = threading.Lock()
_PARALLEL = {"used": False, "allowed": True}  # GNU OpenMP cannot be used again in a forked child


def _forget_kernel_thread():  # in a forked child: the parent's thread does not exist here
    global _KERNEL_LOCK
    _KERNEL_THREAD.clear()
    _KERNEL_LOCK = threading.Lock()
    if _PARALLEL["used"]:
        _PARALLEL["allowed"] = False


def _kernel(name, module=None):
    """The parallel kernel, or its serial twin in a forked child of a process that ran the parallel one."""
    source = _kernels if module is None else sys.modules[module]
    if _PARALLEL["allowed"]:
        _PARALLEL["used"] = True
        return getattr(source, name)
    return getattr(source, name + "_serial")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_kernel_thread)


def _run_kernel(kernel, n_threads, done, total, show):
    """Run ``kernel()`` on n_threads Numba threads in the kernel thread, with a progress bar when asked.

    The kernel releases the GIL, so meanwhile this thread can read ``done``,
    where each chunk counts its finished entries, and move the bar. On Ctrl-C
    it sets ``done[-1]``, the stop flag the kernels look at between groups,
    waits for them to leave, and raises KeyboardInterrupt: the next call
    starts at once.
    """
    def call():
        previous = numba.get_num_threads()  # Numba's thread count belongs to the calling thread
        numba.set_num_threads(n_threads)
        try:
            kernel()
        finally:
            numba.set_num_threads(previous)

    with _KERNEL_LOCK:
        if not _KERNEL_THREAD or not _KERNEL_THREAD[0].thread.is_alive():
            _KERNEL_THREAD[:] = [_KernelThread()]
        worker = _KERNEL_THREAD[0]
    finished, outcome = worker.submit(call)
    bar = None  # made at the first tick: a check done within 0.1 s shows no bar at all
    shown = 0
    try:
        while not finished.wait(0.1 if show else 0.5):
            if show:
                bar = bar or _Progress(total, True)
                count = int(done[:-1].sum())
                bar.update(count - shown)
                shown = count
        if bar is not None:
            bar.update(int(done[:-1].sum()) - shown)
    except KeyboardInterrupt:
        done[-1] = 1
        while not finished.is_set():  # the kernels leave at their next group
            try:
                finished.wait(0.05)
            except KeyboardInterrupt:
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
    if outcome:
        raise outcome[0]


def _row_costs(dims, m, method, active=None):
    """The incremental or full kernel's relative work per entry of every row, and per group.

    Returns (row_cost (n_rows,), group_cost) for ``_linear.balanced_chunks``,
    which balances threads (and progress steps) by them. active : (sum n_l,)
    optional, the number of examples for which each unit's activation can
    change (relu units that are off for an example skip it).
    """
    L = len(dims) - 1
    if method == "full":
        return np.ones(int(sum(dims[1:]))), 0.0
    per_column = np.empty(L)
    for l in range(L):
        work = 4.0 * dims[L]
        if l < L - 1:
            work += 2.0 * dims[l + 1] + dims[l + 2] + sum(dims[k + 1] * (2 + dims[k + 2]) for k in range(l + 1, L - 1))
        per_column[l] = work
    examples = float(m) if active is None else active.astype(float)
    return 2.0 * examples * np.repeat(per_column, dims[1:]) + 20.0, 0.0


def _refuse_random_dropout(net, X, Y):
    """J with fresh dropout masks per call is not a function of theta: say so."""
    m = X.shape[1]
    entropy = np.random.SeedSequence().generate_state(2)
    costs = [net._cost(X, Y, *net._dropout(m, int(s) % (2**31))) for s in entropy]
    raise ValueError(_nondeterministic_message(costs[0], costs[1]) if costs[0] != costs[1] else
                     "dropout_seed=None draws fresh dropout masks for every evaluation of J, so J is random "
                     "and no gradient check can be trusted. Use the deterministic check mode: pass an integer "
                     "dropout_seed (the default, 0) to fix the masks, or set keep_prob=1 while checking.")


def _nondeterministic_message(J1, J2):
    return (f"the cost is not deterministic: J evaluated twice at the same theta gave {J1!r} and {J2!r}. "
            "A gradient check needs one consistent J(theta); with dropout every call drops different units. "
            "Use the deterministic check mode: fix the dropout masks (gradient_check(..., dropout_seed=0), or "
            "draw the masks once and reuse them in your cost and gradients), or set keep_prob=1 while checking.")


def _deterministic_cost(cost_fn):
    first, second = cost_fn(), cost_fn()
    if first != second and not (np.isnan(first) and np.isnan(second)):
        raise ValueError(_nondeterministic_message(first, second))
    if not np.isfinite(first):
        raise ValueError(f"the cost at theta is {first}; a gradient check needs a finite J")
    return first


def _scalar_cost(value):
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"cost_fn must return the cost J as a real number, got {type(value).__name__}"
                        + (" (is a `return` missing?)" if value is None else ""))
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"cost_fn must return the cost J as a real number, got {type(value).__name__}") from None
    if array.size != 1:
        raise ValueError(f"cost_fn must return a scalar cost, got an array of shape {array.shape}")
    return float(array.reshape(()))

# ------------------------------------------------------------ a learner's code
def check_gradients(cost_fn=None, grads_fn=None, parameters=None, epsilon=1e-7, mode="full", sample=None,
                    thresholds=THRESHOLDS, seed=0, progress=None, include_kinks=False, *, forward=None,
                    backward=None, X=None, Y=None, _entries=None, _nearby=True, _calls=None):
    """Gradient-check your own cost and backprop, written in course notation.

    Give either ``cost_fn`` and ``grads_fn``, or the course's own pair
    ``forward`` and ``backward`` with ``X`` and ``Y``.

    Parameters
    ----------
    cost_fn : callable
        ``cost_fn(parameters) -> float``: J at the given parameters.
    grads_fn : callable
        ``grads_fn(parameters) -> dict`` with "dW1", "db1", ... (or "W1", "b1", ...),
        each shaped like its parameter; other keys ("dZ1", "dA1", ...) are ignored.
        A block of another shape is a bug (the report names both shapes, and
        what ``p - lr * g`` turns into); a missing block is a ValueError.
    parameters : dict of str -> ndarray
        "W1" (n_1, n_0), "b1" (n_1, 1), ... for any depth, or any block names.
        Not modified: every call of ``cost_fn`` and ``grads_fn`` gets a fresh
        copy, so a function that writes into its argument cannot move the
        point the next call is evaluated at (it is warned about, once).
    epsilon, mode, sample, thresholds, seed, progress
        As in ``gradient_check``. An epsilon that cannot move any entry of
        theta is a ValueError.
    include_kinks : bool
        Count kinks with their centered difference. By default a kink (shown
        by one-sided differences, J(theta) being known, whose asymmetry does
        not shrink with the step as it would for a smooth J) is judged by the
        rule for kinks: backprop's value between the two one-sided slopes is
        right; otherwise it is judged at a nearby point where the code is
        smooth (the report says where).
    forward : callable, optional
        The course's ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``.
    backward : callable, optional
        The course's ``backward_propagation_n(X, Y, cache) -> gradients``.
    X, Y : ndarray, optional
        The data both are called with.

    Returns
    -------
    GradCheckReport

    Examples
    --------
    >>> import numpy as np
    >>> params = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}
    >>> cost = lambda p: float(np.sum(p["W1"] ** 2) + p["b1"][0, 0] ** 2)
    >>> grads = lambda p: {"dW1": 2 * p["W1"], "db1": 2 * p["b1"]}
    >>> check_gradients(cost, grads, params).verdict
    'correct'
    """
    cost_fn, grads_fn = _course_functions(cost_fn, grads_fn, forward, backward, X, Y)
    epsilon, sample, _, thresholds, seed = _common_args(epsilon, "full", mode, sample, None, thresholds, seed)
    include_kinks = v.boolean(include_kinks, "include_kinks")
    if parameters is None:
        raise TypeError("parameters is required: a dict of str -> ndarray ('W1', 'b1', ...)")
    if isinstance(parameters, Mapping):
        for key, value in parameters.items():
            if not isinstance(key, str):
                raise TypeError(f"parameters keys must be strings such as 'W1' and 'b1', got {key!r}")
            v.float_array(value, f"parameters[{key!r}]")  # numeric, finite; warns about float32
    original, layout = flatten(parameters)
    _require_a_step_that_moves(original, epsilon)
    calls = _calls if _calls is not None else _Calls(layout)
    cost_of = calls.wrap(cost_fn, "cost_fn")
    grads_of = calls.wrap(grads_fn, "grads_fn")
    work = original.copy()  # the point of every evaluation; each call copies its blocks out of it

    def cost_at(vector):
        return _scalar_cost(cost_of(vector))

    first_cost = cost_of(original)
    unit = _precision(first_cost)
    cost = _deterministic_cost(lambda: _scalar_cost(cost_of(original)))
    grad, shapes = flatten_gradients(grads_of(original), layout, shapes=True)
    if not np.all(np.isfinite(grad)):
        raise ValueError("grads_fn returned NaN or inf")
    n_entries = layout.size if sample is None else sample * len(layout.blocks)
    show = _show_progress(progress, 20 * n_entries)  # Python calls: slow, so show sooner

    def evaluate(indices, steps):
        indices = np.arange(original.size, dtype=np.int64) if indices is None else indices  # None: every entry
        steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), indices.shape)
        values, errors = np.full(indices.size, np.nan), np.full(indices.size, np.inf)
        second = np.full(indices.size, np.nan)
        w = original[indices]
        taken = (w + steps) - (w - steps)  # the step really taken: 0 where h cannot move w
        bar = _Progress(indices.size, show and np.all(steps == epsilon))
        try:
            for q, p in enumerate(indices.tolist()):
                if taken[q] == 0:  # the step cannot move this parameter
                    continue
                work[p] = w[q] + steps[q]
                J_plus = cost_at(work)
                work[p] = w[q] - steps[q]
                J_minus = cost_at(work)
                work[p] = w[q]
                values[q] = (J_plus - J_minus) / taken[q]
                second[q] = J_plus - 2 * cost + J_minus
                errors[q] = judge.rounding_error(abs(J_plus) + abs(J_minus), taken[q], "python", unit)
                bar.update(1)
        finally:
            work[...] = original
            bar.close()
        return Estimates(values, errors, np.zeros(indices.size, bool), second)

    def nearby(indices, moved, there_epsilon):  # the same check of those entries at a nearby theta
        return check_gradients(cost_fn, grads_fn, layout.views(moved), there_epsilon, thresholds=thresholds,
                               seed=seed, progress=False, _entries=indices, _nearby=False, _calls=calls)

    return _run(layout, original, grad, cost, evaluate, cost_at, epsilon, mode, sample, thresholds, include_kinks,
                "python loop", seed, unit, entries=_entries, nearby=nearby if _nearby else None, shapes=shapes)


def _require_a_step_that_moves(theta, epsilon):
    """An epsilon that moves no entry of theta gives no difference at all: say so, before any call."""
    if not np.any((theta + epsilon) - (theta - epsilon)):
        smallest = float(np.min(np.abs(theta))) * judge.UNIT_ROUNDOFF
        raise ValueError(f"epsilon={epsilon!r} cannot move any entry of theta: theta + epsilon == theta for all "
                         f"of them (the smallest step that moves one is about {smallest:.1e}); use an epsilon "
                         f"near 1e-7 times theta's scale")


class _Calls:
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
                return fn(parameters)
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


def _course_functions(cost_fn, grads_fn, forward, backward, X, Y):
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


def _precision(value):
    """The unit roundoff of the type a cost came in: float32 resolves far less than float64."""
    dtype = getattr(value, "dtype", None)
    if dtype is None and isinstance(value, np.ndarray):
        dtype = value.dtype
    if dtype is not None and np.issubdtype(dtype, np.floating) and np.finfo(dtype).eps > judge.UNIT_ROUNDOFF:
        warnings.warn(f"cost_fn returns {dtype}: its rounding (about {np.finfo(dtype).eps:.1e} relative) limits "
                      f"what the check can resolve; compute the cost in float64", stacklevel=3)
        return float(np.finfo(dtype).eps)
    return judge.UNIT_ROUNDOFF



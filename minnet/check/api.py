"""The gradient check's public entry points: validate, plan, evaluate, judge, report.
Imports every part of the check; none of them imports this module.

``gradient_check`` checks a minnet ``Network`` with the parallel kernels
(``evaluate``); ``check_gradients`` checks a learner's own ``cost_fn`` and
``grads_fn`` (or the course's ``forward_propagation_n`` and
``backward_propagation_n``, ``learner``). Both hand an ``Evaluation`` to
``_check``, which refers the doubtful entries (``referee``), judges kinks at a
nearby point, takes the verdicts from ``judge`` and builds the report.
Imports every part of the check; none of them imports this module.
"""
import time

import numpy as np

from .. import _memory
from .. import _validation as v
from . import _steps, _workers, diagnose, judge, learner, plan, referee
from ._parallel import show_progress
from .evaluate import evaluate_network
from .judge import THRESHOLDS
from .plan import METHODS, MODES
from .report import Entries, Findings, GradCheckReport, Run

__all__ = ["gradient_check", "check_gradients", "THRESHOLDS", "METHODS", "MODES"]

NEARBY_MOVE = 1e-2  # the nearby point where kinks are judged: theta moved by this fraction of its blocks' scale


# ------------------------------------------------------------ minnet networks
def gradient_check(net, X, Y, *, epsilon=1e-7, method="auto", mode="full", sample=None, dropout_seed=0,
                   threads=None, include_kinks=False, thresholds=THRESHOLDS, seed=0, progress=None,
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
        "full": the whole forward pass for every perturbation (the notes' algorithm);
        "incremental": from the cached forward pass, only the examples whose values change;
        "segment" (piecewise-linear hidden layers): along each unit's direction while no later
        unit crosses its kink (see ``_segment``). "auto": "segment" where it applies, else "incremental".
    mode : {"full", "directional"}
        "directional": one random direction per block, entry by entry where not judged correct.
    sample : int, optional
        Check only this many random entries of every block.
    dropout_seed : int or None
        With keep_prob < 1: the seed of the fixed masks of every J and of backprop (the
        deterministic check mode). None (fresh masks: a random J) is refused.
    threads : int, optional
        Numba threads for this call; default Numba's, or 1 below ``plan.SERIAL_BELOW`` entries x examples.
    include_kinks : bool
        Count entries whose perturbation crosses a kink with their centered difference. By
        default they are judged at a nearby point where the network is smooth (theta moved by
        ``NEARBY_MOVE`` of its scale); one not judged there leaves its block "inconclusive".
    thresholds : (float, float)
        Verdict bands: correct below the first, bug from the second.
    seed : int
        Seeds the sampled entries and the random directions.
    progress : bool or None
        Show a progress bar (None: on a terminal, for long checks).

    Returns
    -------
    GradCheckReport
        Its verdict is "correct", "suspicious", "bug" or "inconclusive". theta is read once, at the
        start; Ctrl-C stops the kernels within a group of entries and raises KeyboardInterrupt.

    Examples
    --------
    >>> from minnet import Network, datasets, gradient_check
    >>> X, Y = datasets.flower(m=64)
    >>> gradient_check(Network([2, 5, 1], lambd=0.7), X, Y).verdict
    'correct'
    """
    started = time.perf_counter()
    _require_network(net)
    epsilon, sample, threads, thresholds, seed = plan.check_options(epsilon=epsilon, method=method, mode=mode,
                                                                    sample=sample, threads=threads,
                                                                    thresholds=thresholds, seed=seed)
    include_kinks = v.boolean(include_kinks, "include_kinks")
    method = plan.method_for(net.hidden, method)
    X, Y = net._check_XY(X, Y)
    _memory.require_network_check(net, X.shape[1], method=method, threads=threads, nested=not _nearby)
    if net.uses_dropout and dropout_seed is None:
        _refuse_random_dropout(net, X, Y)
    drop, use_drop = net._dropout(X.shape[1], dropout_seed)
    n_entries = net.layout.size if sample is None else sample * len(net.layout.blocks)
    n_threads, serial = plan.threads_for(threads, n_entries, X.shape[1])
    show = show_progress(progress, n_entries)
    everything = mode == "full" and sample is None and _entries is None
    evaluation = evaluate_network(net, X, Y, drop=drop, use_drop=use_drop, epsilon=epsilon, method=method,
                                  threads=n_threads, serial=serial, show=show, everything=everything)

    def nearby(indices, moved, there_epsilon):  # the same check of those entries at a nearby theta
        there = net.copy()
        there.theta[:] = moved
        return gradient_check(there, X, Y, epsilon=there_epsilon, method=method, dropout_seed=dropout_seed,
                              threads=threads, thresholds=thresholds, seed=seed, progress=False, _entries=indices,
                              _nearby=False)

    return _check(evaluation, epsilon=epsilon, mode=mode, sample=sample, thresholds=thresholds,
                  include_kinks=include_kinks, seed=seed, entries=_entries, nearby=nearby if _nearby else None,
                  started=started)


# ------------------------------------------------------------ a learner's code
def check_gradients(cost_fn=None, grads_fn=None, parameters=None, *, epsilon=1e-7, mode="full", sample=None,
                    thresholds=THRESHOLDS, seed=0, progress=None, include_kinks=False, forward=None,
                    backward=None, X=None, Y=None, n_jobs=None, fail_fast=False, _entries=None, _nearby=True,
                    _calls=None):
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
        As in ``gradient_check``.
    include_kinks : bool
        Count kinks with their centered difference. By default a proven kink
        (its one-sided slopes differ at every step) is judged by the rule for
        kinks, or at a nearby point where the code is smooth.
    forward : callable, optional
        The course's ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``.
    backward : callable, optional
        The course's ``backward_propagation_n(X, Y, cache) -> gradients``.
    X, Y : ndarray, optional
        The data both are called with.
    n_jobs : int, optional
        Worker processes for J(theta +- eps), as joblib counts them (-1: every
        core; None: 1 unless a ``joblib.parallel_config`` says otherwise, such
        as ``backend="dask"``). The report is the same for every n_jobs.
    fail_fast : bool
        Stop after the first block (in theta order) with a confirmed bug; the
        report says how many entries were checked. Needs mode "full".

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
    started = time.perf_counter()
    cost_fn, grads_fn = learner.course_functions(cost_fn, grads_fn, forward=forward, backward=backward, X=X, Y=Y)
    epsilon, sample, _, thresholds, seed = plan.check_options(epsilon=epsilon, method="full", mode=mode,
                                                              sample=sample, threads=None, thresholds=thresholds,
                                                              seed=seed)
    include_kinks = v.boolean(include_kinks, "include_kinks")
    n_jobs, fail_fast = _workers.n_jobs_value(n_jobs), _fail_fast_value(fail_fast, mode=mode, sample=sample)
    original, layout = learner.flat_parameters(parameters)
    plan.require_a_step_that_moves(original, epsilon)
    calls = _calls if _calls is not None else learner.Calls(layout)
    evaluation = learner.evaluate_functions(cost_fn, grads_fn, layout, original=original, epsilon=epsilon,
                                            sample=sample, progress=progress, calls=calls, n_jobs=n_jobs, X=X)

    def nearby(indices, moved, there_epsilon):  # the same check of those entries at a nearby theta
        return check_gradients(cost_fn, grads_fn, layout.views(moved), epsilon=there_epsilon, thresholds=thresholds,
                               seed=seed, progress=False, n_jobs=n_jobs, _entries=indices, _nearby=False,
                               _calls=calls)

    options = dict(epsilon=epsilon, thresholds=thresholds, include_kinks=include_kinks, seed=seed,
                   nearby=nearby if _nearby else None, started=started)
    if fail_fast and _entries is None:
        return _fail_fast(evaluation, **options)
    return _check(evaluation, mode=mode, sample=sample, entries=_entries, **options)


def _fail_fast_value(fail_fast, *, mode, sample):
    fail_fast = v.boolean(fail_fast, "fail_fast")
    if fail_fast and (mode != "full" or sample is not None):
        raise ValueError("fail_fast checks every entry, block by block: it needs mode='full' and sample=None")
    return fail_fast


def _fail_fast(evaluation, **options):
    """The check block by block in theta order, stopped after the first block with a confirmed bug.

    One report of the blocks checked; the blocks after the stop are unchecked
    (their verdict says nothing was judged). options : as ``_check`` takes them.
    """
    start = options.pop("started")
    e, n = evaluation, evaluation.layout.size
    approx, refereed, error = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.inf)
    kink_mask, checked, grad_error = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n)
    stopped, part = None, None
    for block in e.layout.blocks:
        part = _check(e, mode="full", sample=None, entries=np.arange(block.offset, block.offset + block.size),
                      started=time.perf_counter(), **options)
        at = part.checked
        approx[at], refereed[at], error[at], kink_mask[at] = (part.approx[at], part.refereed[at], part.error[at],
                                                              part.kink_mask[at])
        grad_error[at] = np.broadcast_to(part.grad_error, n)[at]
        checked |= at
        if part.blocks[block.name].verdict == judge.BUG:
            stopped = {"block": block.name, "n_checked": int(checked.sum())}
            break
    found = judge.verdicts(e.layout, approx, e.grad, checked=checked, refereed=refereed, error=error,
                           thresholds=options["thresholds"], grad_error=grad_error, shapes=e.shapes, threads=e.threads)
    run = Run(e.cost, options["epsilon"], options["thresholds"], options["include_kinks"], e.method, "full",
              time.perf_counter() - start, part.referee, None, part.kink_record, e.shapes,
              None if e.workers is None else len(e.workers), stopped)
    return GradCheckReport(e.layout, Entries(approx, e.grad, refereed, error, grad_error, kink_mask), found, run=run,
                           findings=_findings(e, found, refereed, error, options["thresholds"]))


# ------------------------------------------------------------ judge and report
def _check(evaluation, *, epsilon, mode, sample, thresholds, include_kinks, seed, entries=None, nearby=None,
           started=None):
    """Pick entries, referee them from the evaluation, judge kinks nearby, take the verdicts, build the report.

    evaluation : ``evaluate.Evaluation``; entries : int64 array, optional: check
    these entries only (the nearby point's check of kinks); nearby : callable
    (indices, moved theta, epsilon) -> GradCheckReport of those entries at the
    moved theta, or None: kinks the rule for kinks cannot settle are then left unresolved.
    """
    start = time.perf_counter() if started is None else started  # the wall time of the whole check
    e = evaluation
    layout, theta, grad = e.layout, e.theta, e.grad
    rng = np.random.default_rng(seed) if sample is not None or mode == "directional" else None
    todo = entries if entries is not None else plan.selection(layout, mode=mode, sample=sample,
                                                              rng=rng)  # None: every entry
    directional = None
    if mode == "directional":
        todo, directional = _directional(layout, theta, grad, e.cost_at, epsilon, thresholds, rng, e.unit)
    found = _referee_entries(e, todo, epsilon, thresholds, include_kinks)
    approx, refereed, error, kink_mask, checked, grad_error, judged, pending = found
    summary = None
    if judged is not None and judged.summary is not None:
        example = judged.summary["example"]
        summary = dict(judged.summary, example_index=int(example if todo is None else todo[example]))
    coarse = None  # entries that agree within their error, an error too coarse for a verdict
    if summary is not None and nearby is not None:
        coarse = referee.too_coarse(refereed, grad, error, thresholds=thresholds, starts=layout.starts,
                                    grad_error=0.0 if grad_error is None else grad_error, checked=checked)
        if include_kinks:  # counted as they are: not judged elsewhere
            coarse = coarse[~kink_mask[coarse]]
    kinks, coarse_record = _judge_nearby(layout, theta, grad, refereed, error, kink_mask, pending, coarse, nearby,
                                         epsilon, include_kinks, seed)
    if summary is not None and coarse_record and coarse_record["n_entries"]:
        summary["nearby"] = coarse_record
    everything = todo is None or todo.size == layout.size
    found = judge.verdicts(layout, approx, grad, checked=checked, refereed=refereed, error=error, thresholds=thresholds,
                           grad_error=0.0 if grad_error is None else grad_error, directional=directional,
                           shapes=e.shapes, tallied=judged.tally if everything and judged is not None else None,
                           threads=e.threads)
    run = Run(e.cost, epsilon, thresholds, include_kinks, e.method, mode, time.perf_counter() - start, summary,
              directional, kinks if kink_mask.any() else None, e.shapes,
              None if e.workers is None else len(e.workers))
    return GradCheckReport(layout, Entries(approx, grad, refereed, error, grad_error, kink_mask), found, run=run,
                           findings=_findings(e, found, refereed, error, thresholds))


def _findings(evaluation, found, refereed, error, thresholds):
    """What the numbers say about each block that is not correct: ``diagnose.explain`` of it, and the
    learner's upstream line (``upstream.locate``, where their gradients dict has dZ or dA entries).

    Costs nothing on a correct check: only suspicious and bug blocks are looked at.
    """
    e = evaluation
    wrong = [name for name, b in found.blocks.items() if b.verdict in (judge.SUSPICIOUS, judge.BUG)]
    diagnosis = dict.fromkeys(found.blocks)
    if not wrong:
        return Findings(diagnosis, None, [])
    parts = {b.name: slice(b.offset, b.offset + b.size) for b in e.layout.blocks}
    for name in wrong:
        if found.blocks[name].shape_error is None:  # a wrong shape is its own explanation
            at = parts[name]
            diagnosis[name] = diagnose.explain(e.layout[name].shape, code=e.grad[at], numerical=refereed[at],
                                               error=error[at], name=name, W=e.theta[at], m=e.examples,
                                               thresholds=thresholds)
    finding, notes = None, []
    if e.upstream is not None:
        finding, notes = e.upstream({name: b.verdict for name, b in found.blocks.items()},
                                    {name: (refereed[at], error[at]) for name, at in parts.items()}, thresholds)
    return Findings(diagnosis, finding, notes)


def _referee_entries(evaluation, todo, epsilon, thresholds, include_kinks):
    """Evaluate the entries ``todo`` (None: every entry, in theta order) at epsilon and referee them.

    Returns theta-sized (approx, refereed, error, kink_mask, checked), backprop's
    rounding error where it was needed (else None), the ``referee.Judgement`` (None
    when nothing was checked) and the theta indices of kinks left pending.
    """
    e = evaluation
    n = e.layout.size
    bound = _steps.step_bounds(e.theta, e.layout)
    if todo is None or todo.size == n:  # every entry, in theta order: no copies of theta's size
        first = e.first if e.first is not None else e.evaluate(todo, epsilon)
        judged = referee.referee(first, e.grad, epsilon=epsilon, evaluate=e.evaluate, thresholds=thresholds,
                                 include_kinks=include_kinks, groups=("starts", e.layout.starts),
                                 grad_error=e.grad_error, threads=e.threads, bound=bound, first_sums=e.first_sums)
        pending = np.flatnonzero(judged.pending) if judged.pending.any() else None
        return (first.value, judged.value, judged.error, judged.kink, np.ones(n, dtype=bool),
                judged.grad_error, judged, pending)
    approx, refereed, error = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.inf)
    kink_mask, checked = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if not todo.size:
        return approx, refereed, error, kink_mask, checked, None, None, None
    first = e.evaluate(todo, epsilon)
    blocks = np.searchsorted(e.layout.starts, todo, side="right") - 1
    grad_error = e.grad_error() if e.grad_error is not None else None  # a subset: not worth deferring
    judged = referee.referee(first, e.grad[todo], epsilon=epsilon, evaluate=lambda positions,
                             step: e.evaluate(todo[positions], step),
                             thresholds=thresholds, include_kinks=include_kinks, groups=blocks,
                             grad_error=None if grad_error is None else grad_error[todo], threads=e.threads,
                             bound=lambda positions: bound(todo[positions]))
    approx[todo], refereed[todo], error[todo] = first.value, judged.value, judged.error
    kink_mask[todo], checked[todo] = judged.kink, True
    pending = todo[judged.pending] if judged.pending.any() else None
    return approx, refereed, error, kink_mask, checked, grad_error, judged, pending


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
        scales = _steps.block_scales(theta, layout)
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
                errors[q] = judge.rounding_error(abs(J_plus) + abs(J_minus), taken, "full", unit=unit)
        return judge.Estimates(values, errors, np.zeros(positions.size, bool), None)

    everything = np.arange(len(blocks))
    first = along(everything, epsilon)
    verdict = referee.referee(first, backprop, epsilon=epsilon, evaluate=along, thresholds=thresholds,
                              include_kinks=True,
                              groups=everything)
    record, escalate = {}, []
    for k, block in enumerate(blocks):
        record[block.name] = {"numerical": float(verdict.value[k]), "numerical_at_epsilon": float(first.value[k]),
                              "backprop": float(backprop[k]), "error": float(verdict.error[k])}
        one = judge.measure(verdict.value[k:k + 1], backprop[k:k + 1], verdict.error[k:k + 1], thresholds=thresholds)
        if one.verdict != judge.CORRECT:
            escalate.append(np.arange(block.offset, block.offset + block.size, dtype=np.int64))
    return (np.concatenate(escalate) if escalate else np.empty(0, np.int64)), record


def _require_network(net):
    from ..network import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minnet.Network, got {type(net).__name__}; "
                        f"for your own functions use minnet.check_gradients")


def _refuse_random_dropout(net, X, Y):
    """J with fresh dropout masks per call is not a function of theta: say so."""
    m = X.shape[1]
    entropy = np.random.SeedSequence().generate_state(2)
    costs = [net._cost(X, Y, *net._dropout(m, int(s) % (2**31))) for s in entropy]
    raise ValueError(learner.nondeterministic_message(costs[0], costs[1]) if costs[0] != costs[1] else
                     "dropout_seed=None draws fresh dropout masks for every evaluation of J, so J is random "
                     "and no gradient check can be trusted. Use the deterministic check mode: pass an integer "
                     "dropout_seed (the default, 0) to fix the masks, or set keep_prob=1 while checking.")



"""Judge: each numerical derivative's own error, a referee for doubtful entries, the verdict.

NumPy, with the passes over every entry compiled in ``_tally``: the
evaluators (``api``) hand in centered differences with their rounding
errors, and a callable that evaluates more steps for the entries the
referee wants to look at again.

The error model
---------------
A centered difference ``D(h) = (J(theta + h e_p) - J(theta - h e_p)) / (2h)``
misses the derivative by

* rounding: J(+) - J(-) is a difference of two computed numbers, each off by
  a few units in the last place of what was subtracted. For two whole passes
  (the ``full`` kernel, a learner's ``cost_fn``) that is the size of J; for
  the incremental kernel it is the size of the per-example *changes* of the
  loss, which is why it resolves far smaller differences. The evaluators
  report ``ROUNDING[path] * u * size / (2h)`` per entry (u = 2**-52);
* truncation: ``h**2 J'''(theta) / 6 + O(h**4)``, unknown from one step, so
  it is estimated, where it matters, from how D moves with the step.

An entry's disagreement ``|D - g|`` counts only beyond its own error.

The referee
-----------
Entries that would make the verdict anything but "correct" are evaluated
again at ``epsilon * REFEREE_STEPS``. Every value is a candidate with an
error bound: a step's D with ``rounding + |D(h) - D(4h)|`` (the next step
up tells how D moves; conservative, as it carries that step's truncation
too), and the Richardson value ``R(h) = (16 D(h) - D(4h)) / 15``, whose h**2
term cancels, with its rounding and ``|R(h) - R(4h)|``. The candidate with
the smallest error bound wins. The choice looks only at error bounds, never
at agreement with backprop, so the referee cannot pick the step that happens
to agree. A disagreement that vanishes at the better-conditioned step was
numerical; one that persists is a bug.

Kinks in a learner's code show in the one-sided differences: with J(theta)
known, ``(J(+) - 2 J(theta) + J(-)) / h`` is ``h J''`` for a smooth J, so it
shrinks with the step; across a kink it stays the jump of the slope. An
entry whose asymmetry does not shrink with the step (more than smooth
curvature allows) and stands above its rounding is a kink.

The verdict
-----------
Over the counted entries: the refereed difference
``||excess|| / (||approx|| + ||grad||)`` with ``excess = max(|D - g| - error, 0)``
and the resolution ``||error|| / (||approx|| + ||grad||)``, the smallest
difference the check could have seen. Bands as in the notes: "bug" from
thresholds[1], "suspicious" from thresholds[0]; below that "correct" only if
the resolution is below thresholds[0] too, and otherwise "inconclusive": J
could not resolve the gradient at any step tried. A block whose own
refereed difference proves suspicious or bug makes the whole check so.
"""
import math
from collections import namedtuple

import numpy as np

from . import _tally

CORRECT, SUSPICIOUS, BUG, INCONCLUSIVE = "correct", "suspicious", "bug", "inconclusive"
VERDICTS = (CORRECT, SUSPICIOUS, BUG, INCONCLUSIVE)
SEVERITY = {CORRECT: 0, INCONCLUSIVE: 1, SUSPICIOUS: 2, BUG: 3}
UNIT_ROUNDOFF = np.finfo(np.float64).eps
# Rounding error of one centered difference, in units of u * size / (2h), per path.
ROUNDING = {"segment": 4.0, "incremental": 4.0, "full": 4.0, "python": 4.0, "backprop": 4.0}
REFEREE_STEPS = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0)  # multiples of epsilon; 1.0 is the user's own
N_WORST = 5  # worst entries the report lists per block
MAX_REFEREED = 1 << 16  # entries re-evaluated in one check at most (largest contributions first)

Estimates = namedtuple("Estimates", ["value", "error", "kink", "second", "blocks"], defaults=(None,))
Estimates.__doc__ = """Centered differences of some entries at one step.

value : (k,) D(h), NaN where the step could not move the parameter.
error : (k,) its rounding error bound.
kink : (k,) bool, a kink flagged by the evaluator itself (relu kernels).
second : (k,) or None, the second difference ``J(+) - 2 J(theta) + J(-)``
    (a learner's functions: kinks and J's own noise are read from it).
blocks : None, or (grad, starts, sums, worst) where an evaluator of every
    entry tallied them right away on its kernel thread: ``_tally.block_tally(value,
    value, grad, error, (), (), starts, n_worst)``, every entry counted and no
    backprop error; ``tally`` takes them instead of a pass of its own.
"""


def rounding_error(size, step, path, unit=UNIT_ROUNDOFF):
    """Rounding error bound of (a - b) / step where |a| + |b| = size.

    size, step : arrays of the same shape (or floats); step is the step
    actually taken ``(w + h) - (w - h)``. unit : the unit roundoff of the
    type J was computed in (float64's unless a learner's cost is narrower).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        error = ROUNDING[path] * unit * np.asarray(size, float) / np.abs(step)
    return np.where(np.asarray(step) == 0, np.inf, error)


def _norm(x):
    """Euclidean norm in one pass without BLAS (its threads would compete with Numba's), scaled on overflow."""
    x = np.asarray(x, dtype=np.float64).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        squares = float(np.einsum("i,i->", x, x))
    if np.isfinite(squares) and (squares > 1e-290 or squares == 0.0):
        return float(np.sqrt(squares))
    scale = float(np.max(np.abs(x)))
    if scale == 0.0 or not np.isfinite(scale):
        return scale
    y = x / scale
    return scale * float(np.sqrt(np.einsum("i,i->", y, y)))


def difference(approx, grad):
    """The notes' ||approx - grad|| / (||approx|| + ||grad||); 0 when both are 0."""
    approx, grad = np.asarray(approx, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    denominator = _norm(approx) + _norm(grad)
    return 0.0 if denominator == 0.0 else _norm(approx - grad) / denominator


Measure = namedtuple("Measure", ["difference", "refereed_difference", "resolution", "verdict"])


def measure(approx, grad, error, thresholds, grad_error=0.0):
    """Verdict of some entries from their values and own errors.

    Parameters
    ----------
    approx, grad, error : ndarray, shape (k,)
        Numerical and backprop values and the numerical value's error bound
        (inf where nothing could be resolved; approx is then ignored).
    thresholds : (float, float)
    grad_error : ndarray, shape (k,), or float
        Backprop's own rounding error, where known: a disagreement within it
        is not counted, but it does not coarsen the resolution (which is the
        numerical side's: backprop's rounding is no bug in its formulas).

    Returns
    -------
    Measure
        difference: the notes' difference of the finite entries;
        refereed_difference: the same over the disagreement beyond each entry's error;
        resolution: ||error|| / (||approx|| + ||grad||); verdict.
    """
    approx, grad, error = (np.asarray(a, dtype=np.float64) for a in (approx, grad, error))
    resolved = np.isfinite(error) & np.isfinite(approx)
    everywhere = bool(resolved.all())
    a = approx if everywhere else np.where(resolved, approx, 0.0)
    gap = np.abs(a - grad)
    excess = np.maximum(gap - error - grad_error, 0.0)
    if not everywhere:
        excess[~resolved] = 0.0
        gap[~resolved] = 0.0
    denominator = _norm(a) + _norm(grad)
    if denominator == 0.0:
        refereed = 0.0
        resolution = 0.0 if everywhere and not np.any(error > 0) else np.inf
        plain = 0.0
    else:
        refereed = _norm(excess) / denominator
        resolution = _norm(error) / denominator if everywhere else np.inf
        plain = _norm(gap) / denominator
    low, high = thresholds
    if refereed >= high:
        verdict = BUG
    elif refereed >= low:
        verdict = SUSPICIOUS
    elif resolution >= low:
        verdict = INCONCLUSIVE
    else:
        verdict = CORRECT
    return Measure(plain, refereed, resolution, verdict)


def _group_of_every_entry(groups, k):
    """(k,) the group of every entry, from ("starts", starts) or from itself."""
    if isinstance(groups, tuple):
        starts = np.asarray(groups[1], dtype=np.int64)
        return np.repeat(np.arange(starts.size), np.diff(np.append(starts, k)))
    return np.asarray(groups)


Tally = namedtuple("Tally", ["blocks", "whole", "notes", "notes_whole", "off_norms", "worst"])
Tally.__doc__ = """Verdicts of every group of entries and of all of them.

blocks : list of Measure, one per group; whole : Measure of all entries.
notes : list of float, every group's notes' difference of the values at
    the user's epsilon; notes_whole : the same over all entries.
off_norms : (n_groups,) ||value - grad|| over the entries where it is finite.
worst : (n_groups, n_worst) int64, every group's worst entries (positions into
    the arrays given), worst first, -1 where a group has fewer; see ``_tally.block_tally``.
"""


def tally(approx, value, grad, error, thresholds, groups, n_groups, grad_error=0.0, counted=None, n_worst=N_WORST,
          threads=1, blocks=None):
    """``measure`` of every group of entries and of all of them, in one compiled pass.

    Parameters
    ----------
    approx : ndarray, shape (k,)
        The values at the user's epsilon (for the notes' difference).
    value : ndarray, shape (k,)
        The values the verdict uses (may be ``approx`` itself).
    grad : ndarray, shape (k,)
    error : ndarray, shape (k,), or None for no error at all
    thresholds : (float, float)
    groups : ndarray of int, shape (k,), values in [0, n_groups); or ("starts", starts)
        for groups in order, starts (n_groups,) the first position of each.
    n_groups : int
    grad_error : ndarray, shape (k,), or float
    counted : ndarray of bool, shape (k,), optional
        Only these entries count (default: all).
    n_worst : int
        How many worst entries of every group to find.
    threads : int
        Numba threads for the pass (the result does not depend on them).
    blocks : (grad, starts, sums, worst), optional
        ``Estimates.blocks`` of these values: used when they answer exactly
        this tally (approx is value, the same grad, groups by those starts,
        no error of backprop, every entry counted, n_worst ranked), else ignored.

    Returns
    -------
    Tally
    """
    ready = (blocks is not None and approx is value and grad is blocks[0] and counted is None
             and np.ndim(grad_error) == 0 and grad_error == 0.0 and isinstance(groups, tuple)
             and np.array_equal(groups[1], blocks[1]) and blocks[3].shape[1] == n_worst)
    approx, value, grad = (np.ascontiguousarray(x, dtype=np.float64) for x in (approx, value, grad))
    k = value.size
    none = np.empty(0)
    error = none if error is None else np.ascontiguousarray(error, dtype=np.float64)
    grad_error = np.asarray(grad_error, dtype=np.float64)
    if grad_error.ndim == 0:
        grad_error = none if grad_error == 0.0 else np.full(k, float(grad_error))
    counted = np.empty(0, np.bool_) if counted is None else np.ascontiguousarray(counted, dtype=np.bool_)
    order = None
    if isinstance(groups, tuple):
        starts = np.asarray(groups[1], dtype=np.int64)
    else:
        groups = np.asarray(groups, dtype=np.int64)
        if np.any(groups[1:] < groups[:-1]):  # put the entries in group order first
            order = np.argsort(groups, kind="stable")
            groups, approx, value, grad = groups[order], approx[order], value[order], grad[order]
            error, grad_error, counted = (x[order] if x.size else x for x in (error, grad_error, counted))
        starts = np.searchsorted(groups, np.arange(n_groups)).astype(np.int64)
    if ready:  # summed already, where the values were made
        sums, worst = blocks[2], blocks[3]
    else:
        sums, worst = _tally.tally_blocks(approx, value, grad, error, grad_error, counted, starts, n_worst, threads)
    if order is not None:  # positions into the arrays as given
        worst = np.where(worst >= 0, order[worst], -1)
    if not np.all(np.isfinite(sums)):  # squares overflowed: measure group by group, scaled
        return _tally_scaled(approx, value, grad, error, thresholds, starts, grad_error, counted)._replace(
            worst=worst)
    low, high = thresholds
    sqrt = math.sqrt  # on Python floats: the same IEEE square root as NumPy's, without its per-call cost

    def one(column):
        s_v, s_g, s_x, s_e, s_p = (column[c] for c in (_tally.SUM_VALUE, _tally.SUM_GRAD, _tally.SUM_EXCESS,
                                                          _tally.SUM_ERROR, _tally.SUM_GAP))
        open_ = column[_tally.N_UNRESOLVED] > 0
        denominator = sqrt(s_v) + sqrt(s_g)
        if denominator == 0.0:
            refereed, resolution, plain = 0.0, (math.inf if open_ or s_e > 0 else 0.0), 0.0
        else:
            refereed, plain = sqrt(s_x) / denominator, sqrt(s_p) / denominator
            resolution = math.inf if open_ else sqrt(s_e) / denominator
        verdict = (BUG if refereed >= high else SUSPICIOUS if refereed >= low else
                   INCONCLUSIVE if resolution >= low else CORRECT)
        return Measure(plain, refereed, resolution, verdict)

    def notes(column):
        denominator = sqrt(column[_tally.SUM_APPROX]) + sqrt(column[_tally.SUM_GRAD])
        return 0.0 if denominator == 0.0 else sqrt(column[_tally.SUM_APPROX_GAP]) / denominator

    rows, total = sums.tolist(), sums.sum(axis=0).tolist()
    return Tally([one(row) for row in rows], one(total), [notes(row) for row in rows], notes(total),
                 np.sqrt(sums[:, _tally.SUM_OFF]), worst)


def _tally_scaled(approx, value, grad, error, thresholds, starts, grad_error, counted):
    """``tally`` through ``measure``, whose norms are scaled: for values whose squares overflow."""
    k = value.size
    every = _group_of_every_entry(("starts", starts), k)
    keep = np.ones(k, bool) if counted.size == 0 else counted
    error = np.zeros(k) if error.size == 0 else error
    grad_error = np.zeros(k) if grad_error.size == 0 else grad_error
    parts = [keep & (every == b) for b in range(starts.size)] + [keep]
    found = [measure(value[p], grad[p], error[p], thresholds, grad_error[p]) for p in parts]
    notes = [measure(approx[p], grad[p], np.zeros(int(p.sum())), thresholds).difference for p in parts]
    with np.errstate(over="ignore", invalid="ignore"):
        off = np.where(keep, value - grad, 0.0)
        off[~np.isfinite(off)] = 0.0
        off_norms = np.array([_norm(off[every == b]) for b in range(starts.size)])
    return Tally(found[:-1], found[-1], notes[:-1], notes[-1], off_norms, None)


Judgement = namedtuple("Judgement", ["value", "error", "step", "richardson", "refereed", "kink", "summary",
                                     "grad_error", "tally"])
Judgement.__doc__ = """What the referee made of every checked entry.

value, error : (k,) the value the verdict uses and its error bound.
step : (k,) the step that value came from (the smaller one for Richardson).
richardson : (k,) bool, the value is a Richardson extrapolation.
refereed : (k,) bool, the entry was evaluated again.
kink : (k,) bool, kinks (the evaluator's, and those the referee found).
summary : dict or None, a record of the referee's work for the report.
grad_error : (k,) backprop's own rounding error, or None where it was not needed.
tally : the ``Tally`` of these values when nothing was refereed (the report's own sums), else None.
"""


def _doubtful(first, grad, counted, thresholds, groups, grad_error, threads=1):
    """Positions to referee: the fewest entries whose excess (then error) keeps a verdict from "correct".

    Returns (positions, the ``Tally`` of the entries as they stand).

    For the whole check and for every block whose verdict is not "correct",
    the entries are taken largest contribution first until what remains
    would be correct with a margin of 4: the excess beyond each entry's own
    error, and where the resolution is too coarse, the errors themselves.
    """
    if isinstance(groups, tuple):
        n_groups = len(groups[1])
    else:
        n_groups = int(groups.max()) + 1 if groups.size else 1
    tallied = tally(first.value, first.value, grad, first.error, thresholds, groups, n_groups, grad_error,
                    None if counted is True else counted, threads=threads, blocks=first.blocks)
    if tallied.whole.verdict == CORRECT and all(b.verdict == CORRECT for b in tallied.blocks):
        return np.empty(0, np.int64), tallied  # the usual case: nothing to referee
    if counted is True:
        counted = np.ones(grad.size, bool)
    groups = _group_of_every_entry(groups, grad.size)  # the slow path below wants every entry's group
    resolved = np.isfinite(first.error) & np.isfinite(first.value)
    a = np.where(resolved, first.value, 0.0)
    excess = np.where(resolved, np.maximum(np.abs(a - grad) - first.error - grad_error, 0.0), np.inf)
    error = np.where(resolved, first.error, np.inf)
    big = max(float(np.max(np.where(np.isfinite(error), error, 0.0), initial=0.0)),
              float(np.max(np.where(np.isfinite(excess), excess, 0.0), initial=0.0)), 1e-300)
    excess, error = excess / big, error / big  # ranks and ratios only: scaled so that squares stay finite
    members = [np.flatnonzero(counted)] + [np.flatnonzero(counted & (groups == b)) for b in np.unique(groups)]
    chosen = []
    for part in members:
        if part.size == 0:
            continue
        found = measure(first.value[part], grad[part], first.error[part], thresholds,
                        np.broadcast_to(grad_error, grad.shape)[part])
        if found.verdict == CORRECT:
            continue
        with np.errstate(over="ignore"):
            budget = np.square(thresholds[0] / 4 * (_norm(a[part]) + _norm(grad[part])) / big)
        for weight in (excess[part] ** 2, error[part] ** 2):
            order = np.argsort(-weight, kind="stable")
            left = np.cumsum(weight[order][::-1])[::-1]  # what remains from each rank on
            take = ((left > budget) | np.isinf(weight[order])) & (weight[order] > 0)
            chosen.append(part[order[take]])
    if not chosen:
        return np.empty(0, np.int64), tallied
    chosen = np.unique(np.concatenate(chosen))
    if chosen.size > MAX_REFEREED:  # keep the largest contributions
        contribution = excess[chosen] ** 2 + error[chosen] ** 2
        chosen = np.sort(chosen[np.argsort(-contribution, kind="stable")[:MAX_REFEREED]])
    return chosen, tallied


def _constant(value, k):
    """A read-only array (k,) of one value, without k copies of it (``np.broadcast_to``, without its checks)."""
    array = np.ndarray((k,), dtype=np.result_type(value), buffer=np.array([value]), strides=(0,))
    array.flags.writeable = False
    return array


def referee(first, grad, epsilon, evaluate, thresholds, include_kinks, groups=None, grad_error=None, threads=1):
    """Judge the entries of one check, re-evaluating the doubtful ones.

    Parameters
    ----------
    first : Estimates
        The evaluation at the user's epsilon, shape (k,) each.
    grad : ndarray, shape (k,)
        Backprop's values of the same entries.
    epsilon : float
    evaluate : callable
        ``evaluate(positions, step) -> Estimates`` for positions into the k entries.
    thresholds : (float, float)
    include_kinks : bool
    groups : ndarray of int, shape (k,), or ("starts", starts), optional
        The block of every entry (or, for entries in block order, where each
        block starts): a block whose own verdict is not "correct" gets its
        doubtful entries refereed too (default: one block).
    grad_error : ndarray, shape (k,), or callable returning one, optional
        Backprop's own rounding error (see ``measure``); default 0. A callable
        is called only when something is doubtful without it.
    threads : int
        Numba threads for the tallies (the result does not depend on them).

    Returns
    -------
    Judgement
    """
    k = first.value.size
    if groups is None:
        groups = ("starts", np.zeros(1, np.int64))
    elif not isinstance(groups, tuple):
        groups = np.asarray(groups)
    kink = np.asarray(first.kink, dtype=bool)
    counted = True if include_kinks or not kink.any() else ~kink
    if callable(grad_error):  # backprop's rounding only matters if something is doubtful without it
        todo, tallied = _doubtful(first, grad, counted, thresholds, groups, 0.0, threads)
        grad_error = grad_error() if todo.size else None
        if grad_error is not None:
            grad_error = np.asarray(grad_error, dtype=np.float64)
            todo, tallied = _doubtful(first, grad, counted, thresholds, groups, grad_error, threads)
    elif grad_error is not None:
        grad_error = np.asarray(grad_error, dtype=np.float64)
        todo, tallied = _doubtful(first, grad, counted, thresholds, groups, grad_error, threads)
    else:
        todo, tallied = _doubtful(first, grad, counted, thresholds, groups, 0.0, threads)
    if todo.size == 0:  # the usual case: the first values stand (read-only views, no copies of theta's size)
        return Judgement(first.value, first.error, _constant(float(epsilon), k), _constant(False, k),
                         _constant(False, k), kink, None, grad_error,
                         tallied)
    if grad_error is None:
        grad_error = np.zeros(k)
    value, error, kink = first.value.astype(float), first.error.astype(float), kink.copy()
    step = np.full(k, float(epsilon))
    richardson = np.zeros(k, bool)
    refereed = np.zeros(k, bool)
    steps = [epsilon * s for s in REFEREE_STEPS]
    levels = []
    for s in steps:
        if s == epsilon:
            levels.append(Estimates(first.value[todo], first.error[todo], first.kink[todo],
                                    None if first.second is None else first.second[todo]))
        else:
            levels.append(evaluate(todo, s))
    D = np.array([lv.value for lv in levels])  # (steps, entries)
    R = np.array([lv.error for lv in levels])
    found_kinks = np.zeros(todo.size, bool)
    if levels[0].second is not None:  # a learner's J: its own noise and kinks, from the second differences
        second = np.array([lv.second for lv in levels])
        found_kinks = _kinks(second, np.array(steps))
        noise = np.fmax(np.abs(second[0]), np.abs(second[1]))  # at the two smallest steps: J's rounding, if it shows
        R = np.maximum(R, 2 * noise / (2 * np.array(steps))[:, None])
    bad = np.array([lv.kink for lv in levels]) | ~np.isfinite(D) | ~np.isfinite(R)
    with np.errstate(invalid="ignore"):
        moves = np.abs(np.diff(D, axis=0))  # |D(4h) - D(h)|
        cand_value, cand_error, cand_step, cand_rich = [], [], [], []
        n = len(steps)
        for i in range(n):
            trunc = moves[i] if i < n - 1 else moves[i - 1]
            nearby = bad[i] | (bad[i + 1] if i < n - 1 else bad[i - 1])
            cand_value.append(D[i])
            cand_error.append(np.where(nearby, np.inf, R[i] + trunc + 4 * UNIT_ROUNDOFF * np.abs(D[i])))
            cand_step.append(np.full(todo.size, steps[i]))
            cand_rich.append(np.zeros(todo.size, bool))
        for i in range(n - 2):
            r_i = (16 * D[i] - D[i + 1]) / 15
            r_next = (16 * D[i + 1] - D[i + 2]) / 15
            err = (16 * R[i] + R[i + 1]) / 15 + np.abs(r_i - r_next) + 4 * UNIT_ROUNDOFF * np.abs(r_i)
            cand_value.append(r_i)
            cand_error.append(np.where(bad[i] | bad[i + 1] | bad[i + 2], np.inf, err))
            cand_step.append(np.full(todo.size, steps[i]))
            cand_rich.append(np.ones(todo.size, bool))
    cand_error = np.array(cand_error)
    cand_error[~np.isfinite(np.array(cand_value))] = np.inf
    best = np.argmin(cand_error, axis=0)
    pick = (best, np.arange(todo.size))
    usable = np.isfinite(cand_error[pick])
    value[todo] = np.where(usable, np.array(cand_value)[pick], value[todo])
    error[todo] = np.where(usable, cand_error[pick], np.inf)
    step[todo] = np.where(usable, np.array(cand_step)[pick], epsilon)
    richardson[todo] = np.array(cand_rich)[pick] & usable
    refereed[todo] = True
    kink[todo] |= found_kinks
    summary = _summary(first, grad, value, error + grad_error, step, richardson, todo, kink, include_kinks, steps)
    return Judgement(value, error, step, richardson, refereed, kink, summary, grad_error, None)


def _kinks(second, steps):
    """Kinks of a learner's J from its second differences at steps h, 4h, 16h, ...

    second : (steps, entries) ``J(+) - 2 J(theta) + J(-)``. For a smooth J it
    is ``h**2 J''``: the slope asymmetry ``second / h`` shrinks with h. For
    rounding noise it grows as h shrinks. Across a kink it stays the jump of
    the slope: the same sign and about the same size at the three smallest
    steps, and well above the noise the smallest step shows.
    """
    asym = second[:3] / steps[:3, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = asym[0] / asym[1], asym[1] / asym[2]
        steady = (r1 > 0.5) & (r1 < 2) & (r2 > 0.5) & (r2 < 2)
        return steady & (np.abs(second[2]) > 4 * np.abs(second[0]) + 0) & np.isfinite(r1) & np.isfinite(r2)


def _summary(first, grad, value, error, step, richardson, todo, kink, include_kinks, steps):
    """What the referee did, for the report's one line."""
    counted_todo = todo[include_kinks | ~kink[todo]]
    persistent = counted_todo[np.isfinite(error[counted_todo]) &
                              (np.abs(value[counted_todo] - grad[counted_todo]) > error[counted_todo])]
    unresolved = counted_todo[~np.isfinite(error[counted_todo])]
    show = persistent if persistent.size else (counted_todo if counted_todo.size else todo)
    gap = np.abs(first.value[show] - grad[show])
    gap = np.where(np.isfinite(gap), gap, np.inf)
    example = int(show[np.argmax(gap)])
    return {"n_refereed": int(todo.size), "n_persistent": int(persistent.size),
            "n_unresolved": int(unresolved.size), "n_kinks_found": int(np.sum(kink[todo] & ~first.kink[todo])),
            "steps": [float(s) for s in steps], "example": example,
            "example_step": float(step[example]), "example_richardson": bool(richardson[example]),
            "example_value": float(value[example]), "example_first": float(first.value[example]),
            "example_grad": float(grad[example]), "example_error": float(error[example])}

"""Judge: the only place that turns numbers into verdicts, their severity order and the worst block.
Imports ``_tally`` only; the referee, the report, the CLI and the exit status read it.

NumPy, with the passes over every entry compiled in ``_tally``. The
evaluators (``evaluate``, ``learner``) hand in centered differences with their
rounding errors; ``referee`` settles the doubtful entries with more steps;
the rules here turn what they found into verdicts, which the report, the
CLI, the JSON and the exit status read. Imports ``_tally`` only.

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
THRESHOLDS = (1e-7, 1e-3)  # the notes' bands: correct below the first, bug from the second
SEVERITY = {CORRECT: 0, INCONCLUSIVE: 1, SUSPICIOUS: 2, BUG: 3}
UNIT_ROUNDOFF = np.finfo(np.float64).eps
# Rounding error of one centered difference, in units of u * size / (2h), per path.
ROUNDING = {"segment": 4.0, "incremental": 4.0, "full": 4.0, "python": 4.0, "backprop": 4.0}
TINY_SQUARES = 1e-200  # sums of squares below this are summed again with scaling (their terms may underflow)
N_WORST = 5  # worst entries the report lists per block

Estimates = namedtuple("Estimates", ["value", "error", "kink", "second"])
Estimates.__doc__ = """Centered differences of some entries at one step.

value : (k,) D(h), NaN where the step could not move the parameter.
error : (k,) its rounding error bound.
kink : (k,) bool, a kink flagged by the evaluator itself (relu kernels).
second : (k,) or None, the second difference ``J(+) - 2 J(theta) + J(-)``
    (a learner's functions: kinks and J's own noise are read from it).
"""


def rounding_error(size, step, path, *, unit=UNIT_ROUNDOFF):
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
    if np.isfinite(squares) and squares > 1e-290:
        return float(np.sqrt(squares))
    scale = float(np.max(np.abs(x), initial=0.0))
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


def measure(approx, grad, error, *, thresholds, grad_error=0.0):
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
    if approx.size == 0:  # nothing could be judged
        return Measure(0.0, 0.0, np.inf, INCONCLUSIVE)
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
    return Measure(plain, refereed, resolution, _band(refereed, resolution, thresholds))


def group_of_every_entry(groups, k):
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


def tally(approx, value, grad, *, error, thresholds, groups, n_groups, grad_error=0.0, counted=None, n_worst=N_WORST,
          threads=1, sums=None):
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
    sums : (sums, worst), optional
        This very tally already summed by ``_tally.block_tally`` (an evaluator
        makes it with the values, on its kernel thread): given only for
        groups as starts, approx that is value, every entry counted and no
        backprop error.

    Returns
    -------
    Tally
    """
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
    if sums is not None:  # summed already, where the values were made
        sums, worst = sums
    else:
        sums, worst = _tally.tally_blocks(approx, value, grad, error, grad_error, counted, starts, n_worst, threads)
    if order is not None:  # positions into the arrays as given
        worst = np.where(worst >= 0, order[worst], -1)
    if isinstance(groups, tuple) and counted.size == 0:
        sizes = np.diff(np.append(starts, k))
    else:
        members = np.ones(k, bool) if counted.size == 0 else counted
        sizes = np.bincount(np.repeat(np.arange(starts.size), np.diff(np.append(starts, k))), weights=members,
                            minlength=starts.size) if k else np.zeros(starts.size)
    # squares that overflowed, or values so small that theirs underflow: measure group by group, scaled
    if not np.all(np.isfinite(sums)) or np.any((sums[:, _tally.SUM_VALUE] + sums[:, _tally.SUM_GRAD] < TINY_SQUARES)
                                               & (sizes > 0)):
        return _tally_scaled(approx, value, grad, error, thresholds, starts, grad_error, counted)._replace(
            worst=worst)
    rows, total = sums.tolist(), sums.sum(axis=0).tolist()
    return Tally([_measure_sums(row, n, thresholds) for row, n in zip(rows, sizes.tolist())],
                 _measure_sums(total, int(sizes.sum()), thresholds), [_notes(row) for row in rows], _notes(total),
                 np.sqrt(sums[:, _tally.SUM_OFF]), worst)


def _measure_sums(column, size, thresholds):
    """``Measure`` of one group from its sums (a row of ``_tally.block_tally``'s) and its size."""
    if size == 0:  # nothing could be judged
        return Measure(0.0, 0.0, math.inf, INCONCLUSIVE)
    sqrt = math.sqrt  # on Python floats: the same IEEE square root as NumPy's, without its per-call cost
    s_v, s_g, s_x, s_e, s_p = (column[c] for c in (_tally.SUM_VALUE, _tally.SUM_GRAD, _tally.SUM_EXCESS,
                                                      _tally.SUM_ERROR, _tally.SUM_GAP))
    open_ = column[_tally.N_UNRESOLVED] > 0
    denominator = sqrt(s_v) + sqrt(s_g)
    if denominator == 0.0:
        refereed, resolution, plain = 0.0, (math.inf if open_ or s_e > 0 else 0.0), 0.0
    else:
        refereed, plain = sqrt(s_x) / denominator, sqrt(s_p) / denominator
        resolution = math.inf if open_ else sqrt(s_e) / denominator
    return Measure(plain, refereed, resolution, _band(refereed, resolution, thresholds))


def _band(refereed, resolution, thresholds):
    """The verdict of a refereed difference and its resolution: the notes' bands, "inconclusive" where
    a correct-looking difference could not be resolved below thresholds[0]."""
    low, high = thresholds
    return BUG if refereed >= high else SUSPICIOUS if refereed >= low else \
        INCONCLUSIVE if resolution >= low else CORRECT


def _notes(column):
    """The notes' difference at the user's epsilon, from one group's sums."""
    denominator = math.sqrt(column[_tally.SUM_APPROX]) + math.sqrt(column[_tally.SUM_GRAD])
    return 0.0 if denominator == 0.0 else math.sqrt(column[_tally.SUM_APPROX_GAP]) / denominator


def _tally_scaled(approx, value, grad, error, thresholds, starts, grad_error, counted):
    """``tally`` through ``measure``, whose norms are scaled: for values whose squares overflow."""
    k = value.size
    every = group_of_every_entry(("starts", starts), k)
    keep = np.ones(k, bool) if counted.size == 0 else counted
    error = np.zeros(k) if error.size == 0 else error
    grad_error = np.zeros(k) if grad_error.size == 0 else grad_error
    parts = [keep & (every == b) for b in range(starts.size)] + [keep]
    found = [measure(value[p], grad[p], error[p], thresholds=thresholds, grad_error=grad_error[p]) for p in parts]
    notes = [measure(approx[p], grad[p], np.zeros(int(p.sum())), thresholds=thresholds).difference for p in parts]
    with np.errstate(over="ignore", invalid="ignore"):
        off = np.where(keep, value - grad, 0.0)
        off[~np.isfinite(off)] = 0.0
        off_norms = np.array([_norm(off[every == b]) for b in range(starts.size)])
    return Tally(found[:-1], found[-1], notes[:-1], notes[-1], off_norms, None)


# ------------------------------------------------------------ the check's verdicts
BlockVerdict = namedtuple("BlockVerdict", ["n_checked", "difference", "refereed_difference", "resolution",
                                           "verdict", "error_norm", "worst", "shape_error"])
BlockVerdict.__doc__ = """One block's verdict: entries compared one by one, the notes' difference at epsilon,
the refereed difference, the resolution, the verdict, ||refereed - grad||, the theta positions of its worst
entries (worst first) and, for a gradient of another shape, ``flatten_gradients``' record of it (a bug)."""
Verdicts = namedtuple("Verdicts", ["verdict", "worst_block", "blocks", "difference", "refereed_difference",
                                   "resolution", "error_norm", "n_compared", "checked"])
Verdicts.__doc__ = """The check's verdicts: the verdict, the block to look at first (None when correct),
{block: BlockVerdict}, the whole check's differences, resolution and error norm, the number of values
compared, and the entries that counted (n,) bool."""


def verdicts(layout, approx, grad, *, checked, refereed, error, thresholds, grad_error=0.0, directional=None,
             shapes=None, tallied=None, threads=1):
    """Every block's verdict and the check's, from the refereed values.

    Parameters
    ----------
    layout : ``Layout`` of theta
    approx, grad, refereed, error : ndarray, shape (n,)
        The values at epsilon, backprop's, the refereed values and their errors.
    checked : ndarray of bool, shape (n,)
        The entries checked one by one.
    grad_error : (n,) or float, backprop's own rounding error.
    directional : {block: record}, blocks checked along a random direction (``api``'s directional mode).
    shapes : {block: record}, gradients of another shape than their parameter: bugs whatever their values;
        one of another size that does not broadcast was not compared at all.
    tallied : the referee's ``Tally`` of exactly these arrays by blocks, when it made one.
    threads : Numba threads for the tallies.

    Returns
    -------
    Verdicts
    """
    shapes, directional = shapes or {}, directional or {}
    uncompared = [name for name, found in shapes.items() if not found["compared"]]
    if uncompared:  # a gradient of another size that does not broadcast: its entries mean nothing
        checked = checked.copy()
        for name in uncompared:
            block = layout[name]
            checked[block.offset:block.offset + block.size] = False
    every = bool(checked.all())
    n_checked = [block.size if every else int(checked[block.offset:block.offset + block.size].sum())
                 for block in layout.blocks]
    entrywise = all(n > 0 for block, n in zip(layout.blocks, n_checked) if block.name in directional)
    a, g, r, e, ge, groups = _compared(layout, approx, grad, refereed, error, checked, grad_error, directional,
                                       n_checked, entrywise and every)
    if tallied is None or not (entrywise and every):  # else the referee's tally of these very arrays
        tallied = tally(a, r, g, error=e, thresholds=thresholds, groups=groups, n_groups=len(layout.blocks),
                        grad_error=ge, n_worst=0, threads=threads)
        none = np.empty(0)
        worst = _tally.tally_blocks(approx, refereed, grad, error, none if np.ndim(grad_error) == 0 else grad_error,
                                    np.empty(0, np.bool_) if every else checked, layout.starts, N_WORST,
                                    threads)[1]
    else:
        worst = tallied.worst
    blocks = {}
    for block, n, notes, found, norm, top in zip(layout.blocks, n_checked, tallied.notes, tallied.blocks,
                                                 tallied.off_norms, worst):
        shape_error = shapes.get(block.name)
        blocks[block.name] = BlockVerdict(n, notes, found.refereed_difference, found.resolution,
                                          BUG if shape_error else found.verdict, float(norm), top[top >= 0],
                                          shape_error)
    proven = [b.verdict for b in blocks.values() if b.verdict in (SUSPICIOUS, BUG)]
    verdict = max([tallied.whole.verdict] + proven, key=SEVERITY.get)
    worst_name = max(blocks, key=lambda name: (SEVERITY[blocks[name].verdict], blocks[name].shape_error is not None,
                                               blocks[name].refereed_difference, blocks[name].difference))
    return Verdicts(verdict, None if verdict == CORRECT else worst_name, blocks, tallied.notes_whole,
                    tallied.whole.refereed_difference, tallied.whole.resolution,
                    float(np.sqrt(np.sum(tallied.off_norms ** 2))), int(a.size), checked)


def _compared(layout, approx, grad, refereed, error, counted, grad_error, directional, n_checked, entrywise):
    """The compared values (approx, grad, refereed, error, grad_error) block after block, and their groups.

    Every entry checked and counted: theta's own arrays, no copies. Otherwise the
    counted entries, and one value per block checked only along a direction.
    """
    if entrywise:
        return approx, grad, refereed, error, grad_error, ("starts", layout.starts)
    columns, sizes = [[], [], [], [], []], []
    for block, n in zip(layout.blocks, n_checked):
        if block.name in directional and n == 0:
            d = directional[block.name]
            values = ([d["numerical_at_epsilon"]], [d["backprop"]], [d["numerical"]], [d["error"]], [0.0])
        else:
            part = slice(block.offset, block.offset + block.size)
            keep = np.flatnonzero(counted[part]) + block.offset
            values = (approx[keep], grad[keep], refereed[keep], error[keep],
                      np.broadcast_to(grad_error, grad.shape)[keep])
        for column, value in zip(columns, values):
            column.append(np.asarray(value, dtype=np.float64))
        sizes.append(len(values[0]))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    return tuple(np.concatenate(c) for c in columns) + (("starts", starts),)

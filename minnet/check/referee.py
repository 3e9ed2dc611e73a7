"""The referee: doubtful entries evaluated again on a ladder of steps, kinks proven before they are set aside.

Reads the verdict rules of ``judge`` (which entries keep a verdict from
"correct") and the evaluator's callable for more steps; never decides a
verdict itself. Imports ``judge`` and ``_steps`` only.

The referee
-----------
Entries that would make the verdict anything but "correct" are evaluated
again on a ladder of steps (``_steps.ladder``): ``epsilon * 4**k``, kept between
``STEP_FLOOR`` and 1 times the entry's largest step, ``STEP_BOUND`` of its
scale (below, J's rounding swamps every difference; above, the difference
model does not hold). Every value is a candidate with an error bound: a
step's D with its rounding plus the larger of its moves to the neighbouring
steps (``level_errors``: it needs a step above), and the Richardson value
``(16 D(h) - D(4h)) / 15``, whose h**2 term cancels (the 4-point stencil),
bounded the same way among the Richardson values. The candidate with the
smallest error bound wins. The choice looks only at error bounds, never at
agreement with backprop, so the referee cannot pick the step that happens
to agree. A disagreement that vanishes at the better-conditioned step was
numerical; one that persists is a bug.

Kinks in a learner's code show in the one-sided differences: with J(theta)
known, ``(J(+) - 2 J(theta) + J(-)) / h`` is ``h J''`` for a smooth J, so it
shrinks with the step; across a kink at theta it stays the jump of the
slope. A kink is proven only where that holds at four steps in a row, well
above rounding (``_kinks``); a kink is then judged by the rule for kinks
(backprop's value between the one-sided slopes is right) or left
``pending`` for the caller to judge at a nearby point. A kink near theta,
crossed only by the larger steps, makes the curvature ``Q / h**2`` jump:
those steps are set aside (``_crossed``). A disagreement that backprop's
value explains as one of the one-sided slopes (a kink too faint to prove),
or that fewer than two steps show beyond their own errors, is never
counted: it becomes that entry's error (``_unproven``), so the check can
only be inconclusive there.
"""
from collections import namedtuple

import numpy as np

from ._steps import ladder, level_errors, one_step, remembered
from .judge import CORRECT, Estimates, _norm, group_of_every_entry, measure, tally

KINK_MARGIN = 8.0  # a kink's slope jump must stand this many times above its rounding
MAX_REFEREED = 1 << 16  # entries re-evaluated in one check at most (largest contributions first)


Judgement = namedtuple("Judgement", ["value", "error", "step", "richardson", "refereed", "kink", "summary",
                                     "grad_error", "tally", "pending"])
Judgement.__doc__ = """What the referee made of every checked entry.

value, error : (k,) the value the verdict uses and its error bound.
step : (k,) the step that value came from (the smaller one for Richardson).
richardson : (k,) bool, the value is a Richardson extrapolation.
refereed : (k,) bool, the entry was evaluated again.
kink : (k,) bool, kinks (the evaluator's, and those the referee found).
summary : dict or None, a record of the referee's work for the report.
grad_error : (k,) backprop's own rounding error, or None where it was not needed.
tally : the ``Tally`` of these values when nothing was refereed (the report's own sums), else None.
pending : (k,) bool, kinks not judged here (error inf): the evaluator's own, and a learner's where
    backprop's value lies outside the one-sided slopes. The caller judges them at a nearby point.
"""


def _doubtful(first, grad, counted, thresholds, groups, grad_error, threads=1, sums=None):
    """Positions to referee: the fewest entries whose excess (then error) keeps a verdict from "correct".

    Returns (positions, the ``Tally`` of the entries as they stand). sums : as in ``tally``.

    For the whole check and for every block whose verdict is not "correct",
    the entries are taken largest contribution first until what remains
    would be correct with a margin of 4: the excess beyond each entry's own
    error, and where the resolution is too coarse, the errors themselves.
    """
    if isinstance(groups, tuple):
        n_groups = len(groups[1])
    else:
        n_groups = int(groups.max()) + 1 if groups.size else 1
    tallied = tally(first.value, first.value, grad, error=first.error, thresholds=thresholds, groups=groups,
                    n_groups=n_groups, grad_error=grad_error,
                    counted=None if counted is True else counted, threads=threads, sums=sums)
    if tallied.whole.verdict == CORRECT and all(b.verdict == CORRECT for b in tallied.blocks):
        return np.empty(0, np.int64), tallied  # the usual case: nothing to referee
    if counted is True:
        counted = np.ones(grad.size, bool)
    groups = group_of_every_entry(groups, grad.size)  # the slow path below wants every entry's group
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
        found = measure(first.value[part], grad[part], first.error[part], thresholds=thresholds,
                        grad_error=np.broadcast_to(grad_error, grad.shape)[part])
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


def too_coarse(value, grad, error, *, thresholds, starts, grad_error, checked):
    """Theta indices that agree with backprop within their error, where that error keeps a verdict from "correct".

    value, grad, error, checked : (n,) the refereed values of a check; starts : the blocks' first indices;
    grad_error : (n,) or float. The entries ``_doubtful`` would referee again, less those whose
    disagreement exceeds their error (a persistent disagreement is a verdict, not a matter of resolution).
    """
    value = np.where(checked, value, 0.0)
    error_here = np.where(checked, error, 0.0)
    positions, _ = _doubtful(Estimates(value, error_here, np.zeros(value.size, bool), None), grad, True, thresholds,
                             ("starts", np.asarray(starts)), grad_error)
    gap = np.abs(value[positions] - grad[positions])
    allowed = error_here[positions] + (np.asarray(grad_error)[positions] if np.ndim(grad_error) else grad_error)
    with np.errstate(invalid="ignore"):
        return positions[~(gap > allowed)]  # NaN (unresolved) included


def _constant(value, k):
    """A read-only array (k,) of one value, without k copies of it (``np.broadcast_to``, without its checks)."""
    array = np.ndarray((k,), dtype=np.result_type(value), buffer=np.array([value]), strides=(0,))
    array.flags.writeable = False
    return array


def _compact(valid, *arrays):
    """Every column's valid levels moved to the top, in order: (valid, arrays...) of the same shapes."""
    order = np.argsort(~valid, axis=0, kind="stable")
    return tuple(np.take_along_axis(a, order, axis=0) for a in (valid,) + arrays)


def referee(first, grad, *, epsilon, evaluate, thresholds, include_kinks, groups=None, grad_error=None, threads=1,
            bound=None, first_sums=None):
    """Judge the entries of one check, re-evaluating the doubtful ones.

    Parameters
    ----------
    first : Estimates
        The evaluation at the user's epsilon, shape (k,) each.
    grad : ndarray, shape (k,)
        Backprop's values of the same entries.
    epsilon : float
    evaluate : callable
        ``evaluate(positions, steps) -> Estimates`` for positions into the k
        entries, steps an array of the same shape (one step per entry).
    thresholds : (float, float)
    include_kinks : bool
        Count kinks with their centered difference. By default a proven kink is judged by the
        rule for kinks (``_rule_for_kinks``), or left ``pending`` for a nearby point.
    groups : ndarray of int, shape (k,), or ("starts", starts), optional
        The block of every entry (or, for entries in block order, where each
        block starts): a block whose own verdict is not "correct" gets its
        doubtful entries refereed too (default: one block).
    grad_error : ndarray, shape (k,), or callable returning one, optional
        Backprop's own rounding error (see ``measure``); default 0. A callable
        is called only when something is doubtful without it.
    threads : int
        Numba threads for the tallies (the result does not depend on them).
    bound : callable, optional
        ``bound(positions) -> (n,)`` the largest step for those entries (see ``step_bounds``).
    first_sums : (sums, worst), optional
        ``Evaluation.first_sums``: the first tally of ``first`` (groups as starts, every
        entry counted, no backprop error), made by the evaluator.

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
    any_kink = bool(kink.any())
    counted = True if include_kinks or not any_kink else ~kink
    todo, tallied, grad_error = _first_look(first, grad, counted, thresholds, groups, grad_error, threads,
                                            first_sums)
    pending = kink & (not include_kinks) if any_kink else _constant(False, k)  # the evaluator's own kinks
    if todo.size == 0:  # the usual case: the first values stand
        return _as_they_stand(first, epsilon, kink, pending, any_kink and not include_kinks, grad_error, tallied)
    if grad_error is None:
        grad_error = np.zeros(k)
    value, error, kink = first.value.astype(float), first.error.astype(float), kink.copy()
    pending = np.array(pending, dtype=bool)
    error[pending] = np.inf
    step, richardson, refereed = np.full(k, float(epsilon)), np.zeros(k, bool), np.zeros(k, bool)
    arrays = (value, error, kink, step, richardson, refereed, pending)
    if first.second is not None:  # a learner's J, where every call costs: one better-conditioned step first
        evaluate = remembered(evaluate)  # the ladder reuses that step and the one above it
        cleared, found, S1 = one_step(first, grad, todo, epsilon=epsilon, evaluate=evaluate, bound=bound,
                                      grad_error=grad_error, thresholds=thresholds)
        value[cleared], error[cleared], step[cleared] = found
        refereed[cleared] = True
        if cleared.size:
            done = todo
            todo, _ = _doubtful(Estimates(value, error, kink, None), grad, counted, thresholds, groups, grad_error,
                                threads)
            if todo.size == 0:  # settled at that step: no ladder
                summary = _summary(first, grad, value, error + grad_error, step, richardson, done, kink, pending,
                                   S1, epsilon)
                summary.update(n_straddled=0, n_lonely=0, n_one_step=int(cleared.size))
                return Judgement(*arrays[:2], step, richardson, refereed, kink, summary, grad_error, None, pending)
    summary = _up_the_ladder(first, grad, todo, arrays, epsilon=epsilon, evaluate=evaluate, bound=bound,
                             include_kinks=include_kinks, thresholds=thresholds, grad_error=grad_error)
    return Judgement(value, error, step, richardson, refereed, kink, summary, grad_error, None, pending)


def _up_the_ladder(first, grad, todo, arrays, *, epsilon, evaluate, bound, include_kinks, thresholds, grad_error):
    """The entries ``todo`` judged on the whole ladder; ``arrays`` (value, error, kink, step, richardson,
    refereed, pending), each (k,), updated in place. Returns the referee's record for the report."""
    value, error, kink, step, richardson, refereed, pending = arrays
    valid, S, D, R, Q = _on_the_ladder(first, todo, epsilon, evaluate, bound, include_kinks)
    found_kinks = np.zeros(todo.size, bool)
    if first.second is not None:  # a learner's J: kinks and J's own noise, from the second differences
        found_kinks, low, high, kink_error = _kinks(Q, S, D, R, valid)
        valid &= ~(_crossed(Q, S, R, valid) & ~found_kinks)  # a kink at theta has its own rule (or is counted)
        R = np.maximum(R, _noise(Q, S, valid)[None, :] / S)
    value[todo], error[todo], step[todo], richardson[todo], best, usable, cand_error = _best(
        D, R, S, valid, value[todo], epsilon)
    refereed[todo] = True
    kink[todo] |= found_kinks
    straddled, lonely = _unproven(value[todo], error[todo], grad[todo], best, D, Q, R, S, valid, cand_error,
                                  usable & ~found_kinks, first.second is not None)
    error[todo[straddled | lonely]] = np.abs(value[todo] - grad[todo])[straddled | lonely]
    if found_kinks.any() and not include_kinks:  # the rule for kinks: between the one-sided slopes is right
        at = todo[found_kinks]
        value[at], error[at], between = _rule_for_kinks(grad[at], low[found_kinks], high[found_kinks],
                                                        kink_error[found_kinks], thresholds)
        step[at] = S[0, found_kinks]
        richardson[at] = False
        pending[at] = ~between
    summary = _summary(first, grad, value, error + grad_error, step, richardson, todo, kink, pending, S, epsilon)
    summary["n_straddled"] = int(np.count_nonzero(straddled))
    summary["n_lonely"] = int(np.count_nonzero(lonely))
    summary["n_refereed"] = int(np.count_nonzero(refereed))
    return summary


def _best(D, R, S, valid, value, epsilon):
    """Every entry's candidate with the smallest error bound (``_candidates``), never chosen by agreement.

    D, R, S, valid : (levels, t); value : (t,) the values so far, kept where no candidate is usable.
    Returns (value, error, step, richardson, best, usable) each (t,), and every candidate's error.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        cand_value, cand_error, cand_step, cand_rich = _candidates(D, R, S, valid)
    best = np.argmin(cand_error, axis=0)
    pick = (best, np.arange(D.shape[1]))
    usable = np.isfinite(cand_error[pick])
    return (np.where(usable, cand_value[pick], value), np.where(usable, cand_error[pick], np.inf),
            np.where(usable, cand_step[pick], epsilon), cand_rich[pick] & usable, best, usable, cand_error)


def _first_look(first, grad, counted, thresholds, groups, grad_error, threads, first_sums):
    """The doubtful entries of the first evaluation: (todo, tally, grad_error), as ``_doubtful`` finds them.

    A callable grad_error (backprop's rounding) is called only when something
    is doubtful without it; then its array is returned, else None.
    """
    if callable(grad_error):
        todo, tallied = _doubtful(first, grad, counted, thresholds, groups, 0.0, threads, first_sums)
        grad_error = grad_error() if todo.size else None
        if grad_error is None:
            return todo, tallied, None
    elif grad_error is None:
        return _doubtful(first, grad, counted, thresholds, groups, 0.0, threads, first_sums) + (None,)
    grad_error = np.asarray(grad_error, dtype=np.float64)
    return _doubtful(first, grad, counted, thresholds, groups, grad_error, threads) + (grad_error,)


def _as_they_stand(first, epsilon, kink, pending, judged_elsewhere, grad_error, tallied):
    """The ``Judgement`` of a first evaluation that nothing needs to referee (read-only views, no copies of
    theta's size); kinks judged elsewhere (or not at all) get error inf, never their centered difference."""
    k = first.value.size
    if judged_elsewhere:
        value, error = first.value.astype(float), first.error.astype(float)
        error[pending] = np.inf
        return Judgement(value, error, _constant(float(epsilon), k), _constant(False, k), _constant(False, k),
                         kink, None, grad_error, None, pending)
    return Judgement(first.value, first.error, _constant(float(epsilon), k), _constant(False, k),
                     _constant(False, k), kink, None, grad_error, tallied, pending)


def _on_the_ladder(first, todo, epsilon, evaluate, bound, include_kinks):
    """The entries ``todo`` evaluated at every step of their ladder: (valid, S, D, R, Q), each (levels, t).

    S the steps, D the values, R their rounding errors, Q the second differences (NaN where the
    evaluator gives none); the user's epsilon is taken from ``first``. Valid levels first in every
    column (``_compact``); a kink the evaluator flagged is valid only when kinks are counted.
    """
    S = ladder(epsilon, np.full(todo.size, np.inf) if bound is None else bound(todo))
    levels, t = S.shape
    D, Q = np.full((levels, t), np.nan), np.full((levels, t), np.nan)
    R, K = np.full((levels, t), np.inf), np.zeros((levels, t), bool)
    for i in range(levels):
        own = S[i] == epsilon
        if own.any():
            p = todo[own]
            D[i, own], R[i, own], K[i, own] = first.value[p], first.error[p], first.kink[p]
            if first.second is not None:
                Q[i, own] = first.second[p]
        rest = np.flatnonzero(np.isfinite(S[i]) & ~own)
        if rest.size:
            found = evaluate(todo[rest], S[i, rest])
            D[i, rest], R[i, rest], K[i, rest] = found.value, found.error, found.kink
            if found.second is not None:
                Q[i, rest] = found.second
    valid = np.isfinite(S) & np.isfinite(D) & np.isfinite(R) & (include_kinks | ~K)  # counted: crossings too
    return _compact(valid, S, D, R, Q)


def _rule_for_kinks(g, low, high, kink_error, thresholds):
    """Proven kinks judged by the rule for kinks: (value, error, between), each (k,).

    Backprop's value g between the one-sided slopes low and high (known to
    ``kink_error``, finely enough for thresholds[0]) is right: its error is 0.
    Otherwise the value is the nearer slope and the error inf: ``pending``, for
    the caller to judge at a nearby point.
    """
    sharp = kink_error <= thresholds[0] * (np.abs(low) + np.abs(high) + np.abs(g))  # the slopes are known
    between = sharp & (g >= low - kink_error) & (g <= high + kink_error)
    return np.where(between, g, np.clip(g, low, high)), np.where(between, 0.0, np.inf), between


def _unproven(value, error, grad, best, D, Q, R, S, valid, cand_error, judged, have_second):
    """Entries whose disagreement is not proven, (t,) bool each: (straddled, lonely).

    value, error, grad : (t,) the chosen values, their error bounds and backprop's; best : (t,) the chosen
    candidate; D, Q, R, S, valid : (levels, t), valid levels first; cand_error : the candidates' errors;
    judged : (t,) the entries to look at; have_second : Q holds a learner's second differences.

    straddled: backprop's value is one of the one-sided slopes ``D -+ (D+ - D-) / 2``
    at a step no larger than the chosen one, where their asymmetry is steady
    with a neighbouring step (a kink's is; a smooth J's changes 4x) and the
    rounding is below the disagreement: a kink too faint to prove.
    lonely: fewer than two steps show the disagreement beyond their own errors.
    Either way the disagreement becomes the entry's error, never a verdict.
    """
    levels, t = D.shape
    gap = value - grad
    disagree = judged & (np.abs(gap) > error)
    straddled = np.zeros(t, bool)
    if have_second:
        level = np.where(best < levels, best, best - levels)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            asym = Q / S  # D+ - D-: h J'' for a smooth J (4x from step to step), the jump at a kink (steady)
            ratio = asym[:-1] / asym[1:]
            steady = valid[:-1] & valid[1:] & (ratio > 0.6) & (ratio < 1.67)
            none = np.zeros((1, t), bool)
            steady = np.vstack([steady, none]) | np.vstack([none, steady])  # with a neighbouring step
            spread = np.abs(asym) / 2 + 2 * R  # |D+ - D-| / 2 and their rounding
            within = (np.abs(grad[None, :] - D) <= spread) & (2 * R < np.abs(gap)[None, :]) & steady
        below = np.arange(levels)[:, None] <= level[None, :]  # steps up to the one the value came from
        straddled = disagree & np.any(valid & below & within, axis=0)
    with np.errstate(invalid="ignore"):
        shown = valid & ((D - grad[None, :]) * np.sign(gap)[None, :] > cand_error[:levels])
    lonely = disagree & ~straddled & (np.sum(shown, axis=0) < 2)
    return straddled, lonely


def _candidates(D, R, S, valid, order=2):
    """Every level's value and Richardson's, each with its error bound: (values, errors, steps, richardson).

    D, R, S, valid : (levels, t), valid levels first in every column (``_compact``).
    order : 2 for centered differences; 1 for one-sided ones, whose
    truncation is of order h.

    A step's error is its rounding plus its truncation, bounded by how far D
    moves to the neighbouring steps (``level_errors``). Richardson from
    steps h < r h, ``(r**order D(h) - D(r h)) / (r**order - 1)``, cancels the
    leading term; its error is bounded the same way among the Richardson
    values of the neighbouring pairs.
    """
    levels, t = D.shape
    values, errors, steps, rich = [D], [level_errors(D, R, S, valid, order)], [S], [np.zeros_like(valid)]
    if levels > 1:
        rk = (S[1:] / S[:-1]) ** order
        ok = valid[:-1] & valid[1:]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            E = np.where(ok, (rk * D[:-1] - D[1:]) / (rk - 1), np.nan)
            E_round = (rk * R[:-1] + R[1:]) / (rk - 1)
        ok &= np.isfinite(E)
        values.append(E)
        errors.append(level_errors(E, E_round, S[:-1], ok, order + (2 if order == 2 else 1)))
        steps.append(S[:-1])
        rich.append(np.ones_like(ok))
    values, errors = np.vstack(values), np.vstack(errors)
    errors[~np.isfinite(values)] = np.inf
    return values, errors, np.vstack(steps), np.vstack(rich)


def _crossed(Q, S, R, valid):
    """Steps at and above the first one whose perturbation crossed a kink near theta, (levels, t) bool.

    For a smooth J the curvature ``Q / h**2`` is J'' at every small step.
    A kink at distance d from theta adds ``jump / h`` to it at the first
    step beyond d, and every larger step carries the jump too (a plateau:
    there the centered differences agree with each other, and with nothing
    true). A step whose curvature moves from the step below by more than
    half their size, and by more than ``KINK_MARGIN`` times their rounding,
    is such a step. Q, S, R, valid : (levels, t), valid levels first.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        curvature = Q / S ** 2
        noise = 4 * R / S  # the rounding of Q (about 4 h R) over h**2
        change = np.abs(np.diff(curvature, axis=0))
        size = np.fmax(np.abs(curvature[1:]), np.abs(curvature[:-1]))
        jump = (valid[1:] & valid[:-1] & (change > 0.5 * size)
                & (change > KINK_MARGIN * (noise[1:] + noise[:-1])))
    crossed = np.vstack([np.zeros((1, Q.shape[1]), bool), jump])
    return np.logical_or.accumulate(crossed, axis=0)


def _noise(Q, S, valid):
    """J's own rounding beyond the model's, (t,), from the second differences at the two smallest valid steps.

    A smooth J has ``Q = h**2 J''``, so ``Q(h) - Q(r h) / r**2`` cancels J'' and leaves the noise.
    """
    both = valid[0] & valid[1] if Q.shape[0] > 1 else np.zeros(Q.shape[1], bool)
    with np.errstate(invalid="ignore"):
        noise = np.abs(Q[0] - Q[1] * (S[0] / S[1]) ** 2) if Q.shape[0] > 1 else np.abs(Q[0])
    return np.where(both & np.isfinite(noise), noise, np.where(valid[0] & np.isfinite(Q[0]), np.abs(Q[0]), 0.0))


def _kinks(Q, S, D, R, valid):
    """Proven kinks of a learner's J, and the one-sided slopes there.

    Q, S, D, R, valid : (levels, t), valid levels first (``_compact``); Q the
    second differences ``J(+) - 2 J(theta) + J(-)``. The asymmetry of the
    one-sided slopes, ``D+ - D- = Q / h``, is ``h J''`` for a smooth J: it
    shrinks with the step. Across a kink it stays the jump of the slope. A
    kink is proven where, at four steps in a row, the asymmetry has one
    sign, changes by less than 1.67x from step to step (a smooth J's changes
    4x), and stands ``KINK_MARGIN`` times above its rounding.

    Returns (kink (t,), low (t,), high (t,), error (t,)): the two one-sided
    slopes, ordered, and their error bound. Each is chosen as a centered
    difference is (``_candidates``, first order): at every step, and
    extrapolated from pairs of steps, the one with the smallest error bound.
    """
    t = Q.shape[1]
    if Q.shape[0] < 4:
        return (np.zeros(t, bool),) + (np.full(t, np.nan),) * 3
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        asym = Q / S
        ratio = asym[:-1] / asym[1:]
        steady = valid[:-1] & valid[1:] & np.isfinite(ratio) & (ratio > 0.6) & (ratio < 1.67)  # (levels - 1, t)
        above = valid & np.isfinite(asym) & (np.abs(asym) > KINK_MARGIN * 4 * R)  # (levels, t)
        proven = np.zeros(t, bool)
        for i in range(Q.shape[0] - 3):  # four steps in a row, 64x apart from first to last
            proven |= np.all(steady[i:i + 3], axis=0) & np.all(above[i:i + 4], axis=0)
        sides = []
        for side in (D + asym / 2, D - asym / 2):  # (J(+) - J) / h and (J - J(-)) / h
            ok = valid & np.isfinite(side)
            values, errors, _, _ = _candidates(side, 2 * R, S, ok, order=1)
            best = np.argmin(errors, axis=0)
            sides.append((values[best, np.arange(t)], errors[best, np.arange(t)]))
    (plus, plus_error), (minus, minus_error) = sides
    return proven, np.fmin(plus, minus), np.fmax(plus, minus), np.fmax(plus_error, minus_error)


def _summary(first, grad, value, error, step, richardson, todo, kink, pending, S, epsilon):
    """What the referee did, for the report's one line."""
    judged = todo[~pending[todo]]
    persistent = judged[np.isfinite(error[judged]) & (np.abs(value[judged] - grad[judged]) > error[judged])]
    unresolved = judged[~np.isfinite(error[judged])]
    show = persistent if persistent.size else (judged if judged.size else todo)
    gap = np.abs(first.value[show] - grad[show])
    gap = np.where(np.isfinite(gap), gap, np.inf)
    example = int(show[np.argmax(gap)])
    finite = S[np.isfinite(S)]
    largest = np.max(np.where(np.isnan(S), -np.inf, S), axis=0)  # every entry's largest step
    return {"n_refereed": int(todo.size), "n_unmoved": int(np.count_nonzero(~np.isfinite(first.value[todo]))),
            "n_beyond": int(np.count_nonzero(largest < epsilon)), "n_persistent": int(persistent.size),
            "n_unresolved": int(unresolved.size), "n_kinks_found": int(np.sum(kink[todo] & ~first.kink[todo])),
            "n_steps": int(np.max(np.sum(np.isfinite(S), axis=0), initial=0)),
            "steps": [float(finite.min()), float(finite.max())] if finite.size else [],
            "example": example, "example_step": float(step[example]),
            "example_richardson": bool(richardson[example]), "example_value": float(value[example]),
            "example_first": float(first.value[example]), "example_grad": float(grad[example]),
            "example_error": float(error[example])}

"""The referee's steps: the ladder of steps an entry may be evaluated at, and the one better-conditioned step
a learner's doubtful entries are tried at first, with the error bound of a step from its neighbours.

Imports ``judge`` only; the referee imports this module, never the reverse.
"""
import math

import numpy as np

from .judge import UNIT_ROUNDOFF, Estimates, _norm

REFEREE_LEVELS = 12  # the referee's steps: a ladder of this many, each 4 times the one before (see ``ladder``)
REFEREE_ABOVE = 7  # its largest step is epsilon * 4**REFEREE_ABOVE, within the bound
STEP_BOUND = 0.1  # the largest step, as a fraction of an entry's scale (see ``step_bounds``)
STEP_FLOOR = 1e-8  # the smallest, as a fraction of the largest: 1e-9 of the scale, where J's rounding takes over


def block_scales(theta, layout):
    """Every entry's block scale, shape (n,): the block's root mean square, else theta's, else 1."""
    theta = np.asarray(theta, dtype=np.float64)
    overall = _norm(theta) / math.sqrt(max(theta.size, 1))
    scales = np.empty(theta.size)
    for block in layout.blocks:
        part = theta[block.offset:block.offset + block.size]
        rms = _norm(part) / math.sqrt(max(part.size, 1))
        scales[block.offset:block.offset + block.size] = rms if rms > 0 else (overall if overall > 0 else 1.0)
    return scales


def step_bounds(theta, layout):
    """``bound(positions) -> (n,)``: the largest step the referee takes for those entries of theta.

    ``STEP_BOUND`` times the entry's scale, ``max(|theta_p|, block_scales)``:
    the difference model (rounding plus a truncation that shrinks with the
    step) holds only for steps well inside the scale theta varies on.
    Computed when first asked for (most checks referee nothing).
    """
    scales = []

    def bound(positions):
        if not scales:
            scales.append(block_scales(theta, layout))
        positions = np.asarray(positions, dtype=np.int64)
        return STEP_BOUND * np.maximum(np.abs(theta[positions]), scales[0][positions])

    return bound


def ladder(epsilon, bound):
    """The referee's steps for entries whose steps may not exceed ``bound``.

    Parameters
    ----------
    epsilon : float
    bound : ndarray, shape (k,)
        Every entry's largest step (inf: no bound).

    Returns
    -------
    ndarray, shape (REFEREE_LEVELS, k)
        Every entry's steps, ascending, NaN where a level is unused: the
        largest ``epsilon * 4**REFEREE_ABOVE``, brought within the bound
        (and above the floor, ``STEP_FLOOR`` of it, times the ladder's
        span), and each step 4 times the one before. Below the floor J's
        rounding swamps any difference, above the bound truncation does;
        the largest steps resolve the gradients that J's rounding hides at
        small ones, and the smallest ones stay below a kink near theta that
        an epsilon too large for theta's scale would cross. One ratio
        between all steps, so that every comparison of two steps means the
        same.
    """
    bound = np.asarray(bound, dtype=np.float64)
    floor = np.where(np.isfinite(bound), bound * STEP_FLOOR, 0.0)
    powers = 4.0 ** np.arange(REFEREE_LEVELS, dtype=np.float64)[::-1]
    top = np.clip(epsilon * 4.0 ** REFEREE_ABOVE, floor * powers[0], bound)
    steps = top[None, :] / powers[:, None]
    return np.where(steps >= floor[None, :], steps, np.nan)  # ascending, NaN first where cut


def level_errors(D, R, S, valid, order):
    """Error bounds of the values D at steps S (levels, t): rounding R plus truncation (see ``_candidates``).

    The truncation is bounded by the whole move to the neighbouring steps,
    the larger of the two, and a value with no valid step above it has no
    bound at all: in D's asymptotic range the move is ``r**order - 1`` times
    the truncation itself, and where the steps are not in that range (a
    kink crossed between them, a step too large for the model) the move to
    the larger step exposes it; the smaller step, less polluted, confirms.
    Dividing by ``r**order - 1`` would resolve more, but trusts the model
    exactly where a crossed kink can fake it.
    """
    levels, t = D.shape
    none = np.full((1, t), np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        move = np.abs(np.diff(D, axis=0))  # |D[i+1] - D[i]|, NaN where either is invalid
        up, down = np.vstack([move, none]), np.vstack([none, move])
        truncation = np.where(np.isnan(down), up, np.maximum(up, down))  # NaN: no step above
        error = R + truncation + 4 * UNIT_ROUNDOFF * np.abs(D)
    return np.where(valid & np.isfinite(error), error, np.inf)


def remembered(evaluate):
    """``evaluate`` that keeps every (position, step) it computed and never asks for one twice."""
    kept = {}

    def remembered(positions, steps):
        positions = np.asarray(positions, dtype=np.int64)
        steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), positions.shape)
        keys = list(zip(positions.tolist(), steps.tolist()))
        new = np.array([key not in kept for key in keys], dtype=bool)
        if new.any():
            found = evaluate(positions[new], steps[new])
            second = found.second if found.second is not None else np.full(found.value.size, np.nan)
            for q, key in enumerate(k for k, fresh in zip(keys, new) if fresh):
                kept[key] = (found.value[q], found.error[q], found.kink[q], second[q])
        value, error, kink, second = (np.array(column) for column in zip(*(kept[key] for key in keys))) \
            if keys else (np.empty(0),) * 4
        return Estimates(value.astype(float), error.astype(float), kink.astype(bool), second.astype(float))

    return remembered


def one_step(first, grad, todo, *, epsilon, evaluate, bound, grad_error, thresholds):
    """The doubtful entries of a learner's check at one better-conditioned step h: those it clears.

    h is the smallest step of the ladder at or above ``epsilon * 4**k``, k the
    fewest powers of 4 by which the first pass's rounding must shrink to
    resolve an eighth of thresholds[0]; the step 4h above it bounds h's
    truncation by the move between them (``level_errors``: 15 times the
    truncation in the asymptotic range). An entry is cleared only where
    backprop's value lies within that error of D(h), D(h) is consistent with
    the first pass within both errors and neither step flags a kink: this
    step can clear an entry, never convict one. The rest go up the ladder.

    Returns (theta positions cleared, (value, error, step) of those, S (2, t) the steps of ``todo``).
    """
    S = ladder(epsilon, np.full(todo.size, np.inf) if bound is None else bound(todo))
    levels = S.shape[0]
    counted = np.isfinite(first.error[todo])
    scale = _norm(np.where(np.isfinite(first.value), first.value, 0.0)) + _norm(grad)
    need = _norm(first.error[todo][counted]) / max(scale * thresholds[0] / 8, 1e-300)  # rounding / budget
    k = int(np.clip(np.ceil(np.log(need) / np.log(4.0)) if np.isfinite(need) and need > 1 else 1, 1,
                    REFEREE_ABOVE - 1))
    with np.errstate(invalid="ignore"):
        above = S >= epsilon * 4.0 ** k * (1 - 1e-12)
    level = np.where(above.any(axis=0), np.argmax(above, axis=0), levels - 2)
    level = np.minimum(level, levels - 2)
    columns = np.arange(todo.size)
    pair = np.vstack([S[level, columns], S[level + 1, columns]])
    usable = np.flatnonzero(np.all(np.isfinite(pair), axis=0))
    cleared = np.zeros(todo.size, bool)
    value, error = np.full(todo.size, np.nan), np.full(todo.size, np.inf)
    if usable.size:
        low, high = evaluate(todo[usable], pair[0, usable]), evaluate(todo[usable], pair[1, usable])
        D = np.vstack([low.value, high.value])
        R = np.vstack([low.error, high.error])
        valid = np.isfinite(D) & np.isfinite(R) & ~np.vstack([low.kink, high.kink])
        error[usable] = level_errors(D, R, pair[:, usable], valid, 2)[0]
        value[usable] = low.value
        at = todo[usable]
        g_error = np.broadcast_to(grad_error, grad.shape)[at]
        with np.errstate(invalid="ignore"):
            agrees = np.abs(low.value - grad[at]) <= error[usable] + g_error
            consistent = np.abs(low.value - first.value[at]) <= error[usable] + first.error[at]
        cleared[usable] = agrees & consistent & np.isfinite(error[usable])
    return todo[cleared], (value[cleared], error[cleared], pair[0, cleared]), pair

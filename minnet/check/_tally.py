"""Tallies over every checked entry, one compiled pass each: the judge's and the report's sums.

A check of a wide network compares millions of entries; the NumPy
expressions these replace made a dozen passes and as many temporaries of
theta's size, which cost as much as the parallel kernels themselves. Each
function here reads its arrays once. Serial loops in a fixed order: the
sums are the same for any thread count.
"""
import numpy as np
from numba import njit

# columns of ``block_sums``
(SUM_VALUE, SUM_GRAD, SUM_EXCESS, SUM_ERROR, SUM_GAP, SUM_OFF, N_UNRESOLVED, SUM_APPROX,
 SUM_APPROX_GAP) = range(9)
N_COLUMNS = 9
LANES = 4  # independent partial sums: a float sum cannot be reordered by the compiler, so it is done here


@njit(cache=True)
def block_sums(approx, value, grad, error, grad_error, counted, starts):
    """Sums of squares the verdicts are made of, block by block, in one pass.

    Parameters
    ----------
    approx : ndarray, shape (k,)
        Numerical values at the user's epsilon (NaN where not evaluated): the notes' difference.
    value : ndarray, shape (k,)
        The values the verdict uses (the referee's; may be ``approx`` itself).
    grad : ndarray, shape (k,)
        Backprop's values.
    error : ndarray, shape (k,) or (0,)
        Each value's error bound (inf where nothing was resolved); (0,) for none.
    grad_error : ndarray, shape (k,) or (0,)
        Backprop's own rounding error; (0,) for none.
    counted : ndarray of bool, shape (k,) or (0,)
        The entries that count; (0,) for all of them.
    starts : ndarray of int64, shape (n_blocks,)
        First position of every block, nondecreasing; a block ends where the next starts.

    Returns
    -------
    ndarray, shape (n_blocks, 9)
        Per block, over its counted entries: sum v**2, sum g**2, sum excess**2,
        sum error**2, sum gap**2, sum off**2, the number of unresolved
        entries, sum approx**2 and sum (approx - g)**2 over finite approx.
        An entry is resolved when value and error are finite; v is value
        there (else 0), gap = |v - g| and excess = max(gap - error -
        grad_error, 0) (both 0 where unresolved); off = value - g wherever
        that is finite (the report's ||refereed - grad||).
    """
    k = value.shape[0]
    n_blocks = starts.shape[0]
    out = np.zeros((n_blocks, N_COLUMNS))
    with_error, with_grad_error, all_counted = error.shape[0] > 0, grad_error.shape[0] > 0, counted.shape[0] == 0
    lanes = np.zeros((LANES, N_COLUMNS))
    for b in range(n_blocks):
        stop = starts[b + 1] if b + 1 < n_blocks else k
        lanes[:, :] = 0.0
        for q in range(starts[b], stop):
            if not (all_counted or counted[q]):
                continue
            lane = q & (LANES - 1)
            v, g, a = value[q], grad[q], approx[q]
            e = error[q] if with_error else 0.0
            off = v - g
            resolved = v - v == 0.0 and e - e == 0.0  # x - x is 0 exactly for finite x
            gap = abs(off) if resolved else 0.0
            e = e if resolved else 0.0
            v = v if resolved else 0.0
            excess = max(gap - e - (grad_error[q] if with_grad_error else 0.0), 0.0) if resolved else 0.0
            d = a - g
            finite = a - a == 0.0
            lanes[lane, SUM_VALUE] += v * v
            lanes[lane, SUM_GRAD] += g * g
            lanes[lane, SUM_EXCESS] += excess * excess
            lanes[lane, SUM_ERROR] += e * e
            lanes[lane, SUM_GAP] += gap * gap
            lanes[lane, SUM_OFF] += off * off if off - off == 0.0 else 0.0
            lanes[lane, N_UNRESOLVED] += 0.0 if resolved else 1.0
            lanes[lane, SUM_APPROX] += a * a if finite else 0.0
            lanes[lane, SUM_APPROX_GAP] += d * d if finite else 0.0
        for c in range(N_COLUMNS):
            out[b, c] = (lanes[0, c] + lanes[1, c]) + (lanes[2, c] + lanes[3, c])
    return out


@njit(cache=True)
def worst_entries(value, grad, allowed, counted, start, stop, n):
    """The n counted entries of [start, stop) with the largest disagreement beyond their own error.

    Ranked by excess max(|value - grad| - allowed, 0) (inf where value is
    not finite), then by |value - grad|, then by position.

    Parameters
    ----------
    value, grad, allowed : ndarray, shape (k,)
    counted : ndarray of bool, shape (k,) or (0,) for all
    start, stop, n : int

    Returns
    -------
    ndarray of int64, shape (<= n,): positions, worst first.
    """
    top_score, top_gap = np.empty(n), np.empty(n)
    top = np.empty(n, np.int64)
    filled = 0
    if n <= 0:
        return top
    all_counted = counted.shape[0] == 0
    for q in range(start, stop):
        if not all_counted and not counted[q]:
            continue
        gap = abs(value[q] - grad[q])
        if np.isfinite(gap):
            score = max(gap - allowed[q], 0.0)
        else:
            score, gap = np.inf, np.inf
        if filled == n and not (score > top_score[n - 1] or (score == top_score[n - 1] and gap > top_gap[n - 1])):
            continue  # ranks no higher than the last kept one
        slot = min(filled, n - 1)  # when full, the last kept entry drops out
        while slot > 0 and (score > top_score[slot - 1] or (score == top_score[slot - 1] and gap > top_gap[slot - 1])):
            top_score[slot], top_gap[slot], top[slot] = top_score[slot - 1], top_gap[slot - 1], top[slot - 1]
            slot -= 1
        top_score[slot], top_gap[slot], top[slot] = score, gap, q
        filled = min(filled + 1, n)
    return top[:filled]


@njit(cache=True)
def taken(theta, indices, step):
    """The step each listed entry really takes, (w + h) - (w - h): 0 where h cannot move w.

    theta : (n,); indices : int64 (k,); returns (k,).
    """
    out = np.empty(indices.shape[0])
    for q in range(indices.shape[0]):
        w = theta[indices[q]]
        out[q] = (w + step) - (w - step)
    return out


@njit(cache=True)
def rounding_errors(size, steps, factor):
    """``factor * size / |step|`` per entry, inf where the step is 0 (see ``judge.rounding_error``).

    size, steps : (k,); factor : ROUNDING[path] times the unit roundoff. Returns (k,).
    """
    out = np.empty(size.shape[0])
    for q in range(size.shape[0]):
        out[q] = factor * size[q] / abs(steps[q]) if steps[q] != 0.0 else np.inf
    return out

"""Tallies over every checked entry, one compiled pass each: the judge's and the report's sums.
Imports only the parallel runner; ``judge`` and the report read it, never the reverse.

A check of a wide network compares millions of entries; the NumPy
expressions these replace made a dozen passes and as many temporaries of
theta's size, which cost as much as the parallel kernels themselves.
``block_tally`` reads its arrays once for every block's sums and worst
entries. It splits every block into units of ``UNIT`` entries, a size
fixed in advance, sums each unit on its own (in parallel) and adds the
units of a block in order: the sums are the same for any thread count.
"""
import numpy as np
from numba import njit, prange

from . import _parallel
from ._parallel import parallel_kernel

# columns of ``block_tally``'s sums
(SUM_VALUE, SUM_GRAD, SUM_EXCESS, SUM_ERROR, SUM_GAP, SUM_OFF, N_UNRESOLVED, SUM_APPROX,
 SUM_APPROX_GAP) = range(9)
N_COLUMNS = 9
UNIT = 8192  # entries summed on their own: fixed, so that no sum depends on the thread count
PARALLEL_FROM = 4 * UNIT  # fewer entries are tallied in the calling thread


@njit(cache=True, inline="always")  # one caller, block_tally: optimized once, inside it
def units_of(starts, k):
    """Cut every block [starts[b], starts[b + 1]) (the last one ends at k) into units of at most UNIT entries.

    Returns (first (n_units,), stop (n_units,), block (n_units,)), in position order.
    """
    n_blocks = starts.shape[0]
    n_units = 0
    for b in range(n_blocks):
        stop = starts[b + 1] if b + 1 < n_blocks else k
        n_units += (stop - starts[b] + UNIT - 1) // UNIT
    first, last, block = np.empty(n_units, np.int64), np.empty(n_units, np.int64), np.empty(n_units, np.int64)
    u = 0
    for b in range(n_blocks):
        stop = starts[b + 1] if b + 1 < n_blocks else k
        for s in range(starts[b], stop, UNIT):
            first[u], last[u], block[u] = s, min(s + UNIT, stop), b
            u += 1
    return first, last, block


@njit(cache=True, inline="always")
def _ranks_above(score, gap, other_score, other_gap):
    """Whether (score, gap) ranks strictly above (other_score, other_gap): larger excess, then larger gap."""
    return score > other_score or (score == other_score and gap > other_gap)


@njit(cache=True, inline="always")
def _keep(top, top_score, top_gap, filled, q, score, gap):
    """Insert entry q into the ranked list (filled long, at most top.shape[0]); returns the new length.

    An entry goes ahead only of those it ranks strictly above, so among
    equals the one seen first (the earlier position) stays ahead.
    """
    n = top.shape[0]
    if filled == n and not _ranks_above(score, gap, top_score[n - 1], top_gap[n - 1]):
        return filled
    slot = min(filled, n - 1)  # when full, the last kept entry drops out
    while slot > 0 and _ranks_above(score, gap, top_score[slot - 1], top_gap[slot - 1]):
        top_score[slot], top_gap[slot], top[slot] = top_score[slot - 1], top_gap[slot - 1], top[slot - 1]
        slot -= 1
    top_score[slot], top_gap[slot], top[slot] = score, gap, q
    return min(filled + 1, n)


@njit(cache=True, error_model="numpy", inline="always")  # one caller, block_tally: optimized once, inside it
def unit_tally(approx, value, grad, error, grad_error, counted, start, stop, sums, top, top_score, top_gap):
    """The sums and the ranked worst entries of positions [start, stop), written into sums (9,) and top (n,).

    Arguments as in ``block_tally``; top_score, top_gap (n,) are scratch.
    Unfilled places of top stay -1.
    """
    with_error, with_grad_error, all_counted = error.shape[0] > 0, grad_error.shape[0] > 0, counted.shape[0] == 0
    s_value = s_grad = s_excess = s_error = s_gap = s_off = n_open = s_approx = s_approx_gap = 0.0
    n_worst = top.shape[0]
    filled = 0
    floor_score = floor_gap = 0.0  # the last kept entry's rank, once the list is full
    for q in range(start, stop):
        if not (all_counted or counted[q]):
            continue
        v, g, a = value[q], grad[q], approx[q]
        e = error[q] if with_error else 0.0
        ge = grad_error[q] if with_grad_error else 0.0
        off = v - g
        gap = abs(off)
        if v - v == 0.0 and e - e == 0.0:  # resolved (x - x is 0 exactly for finite x)
            excess = max(gap - e - ge, 0.0)
            s_value += v * v
            s_excess += excess * excess
            s_error += e * e
            s_gap += gap * gap
        else:
            n_open += 1.0
        s_grad += g * g
        if off - off == 0.0:
            s_off += off * off
        if a - a == 0.0:
            d = a - g
            s_approx += a * a
            s_approx_gap += d * d
        if n_worst:
            score = max(gap - (e + ge), 0.0) if gap - gap == 0.0 else np.inf
            gap = gap if gap - gap == 0.0 else np.inf
            if filled < n_worst or _ranks_above(score, gap, floor_score, floor_gap):  # most entries stop here
                filled = _keep(top, top_score, top_gap, filled, q, score, gap)
                if filled == n_worst:
                    floor_score, floor_gap = top_score[n_worst - 1], top_gap[n_worst - 1]
    sums[SUM_VALUE], sums[SUM_GRAD], sums[SUM_EXCESS], sums[SUM_ERROR] = s_value, s_grad, s_excess, s_error
    sums[SUM_GAP], sums[SUM_OFF], sums[N_UNRESOLVED] = s_gap, s_off, n_open
    sums[SUM_APPROX], sums[SUM_APPROX_GAP] = s_approx, s_approx_gap


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def block_tally(approx, value, grad, error, grad_error, counted, starts, n_worst):
    """Every block's sums of squares and its worst entries, in one pass over the entries.

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
    n_worst : int
        How many worst entries to rank per block.

    Returns
    -------
    sums : ndarray, shape (n_blocks, 9)
        Per block, over its counted entries: sum v**2, sum g**2, sum excess**2,
        sum error**2, sum gap**2, sum off**2, the number of unresolved
        entries, sum approx**2 and sum (approx - g)**2 over finite approx.
        An entry is resolved when value and error are finite; v is value
        there, gap = |v - g| and excess = max(gap - error - grad_error, 0)
        (resolved entries only); off = value - g wherever that is finite
        (the report's ||refereed - grad||).
    worst : ndarray of int64, shape (n_blocks, n_worst)
        Per block, the positions of its counted entries with the largest
        disagreement beyond their own error, worst first: ranked by
        max(|value - grad| - (error + grad_error), 0) (inf where value is not
        finite), then by |value - grad|, then by position; -1 pads a block
        with fewer entries.
    """
    first, stop, block = units_of(starts, value.shape[0])
    n_units = first.shape[0]
    partial = np.zeros((n_units, N_COLUMNS))
    width = max(n_worst, 1)
    tops = np.full((n_units, n_worst), -1, np.int64)
    scores, gaps = np.empty((n_units, width)), np.empty((n_units, width))
    for u in prange(n_units):
        unit_tally(approx, value, grad, error, grad_error, counted, first[u], stop[u], partial[u], tops[u],
                   scores[u], gaps[u])
    return combine(partial, tops, scores, gaps, block, starts.shape[0])


@njit(cache=True, inline="always")  # one caller, block_tally: optimized once, inside it
def combine(partial, tops, scores, gaps, block, n_blocks):
    """Add the units' sums block by block in position order, and merge their ranked lists the same way."""
    n_worst = tops.shape[1]
    sums = np.zeros((n_blocks, N_COLUMNS))
    worst = np.full((n_blocks, n_worst), -1, np.int64)
    top_score, top_gap = np.empty(max(n_worst, 1)), np.empty(max(n_worst, 1))
    filled, current = 0, -1
    for u in range(block.shape[0]):
        b = block[u]
        for c in range(N_COLUMNS):
            sums[b, c] += partial[u, c]
        if b != current:
            filled, current = 0, b
        for j in range(n_worst):  # a unit's list is ranked, and earlier units hold earlier positions
            if tops[u, j] < 0:
                break
            filled = _keep(worst[b], top_score, top_gap, filled, tops[u, j], scores[u, j], gaps[u, j])
    return sums, worst


def tally_blocks(approx, value, grad, error, grad_error, counted, starts, n_worst, threads=1):
    """``block_tally`` on the check's kernel thread with ``threads`` threads, or here for small inputs.

    The result is the same either way, bit for bit.
    """
    if threads > 1 and value.shape[0] >= PARALLEL_FROM:
        out = []
        _parallel.run(lambda: out.append(block_tally(approx, value, grad, error, grad_error, counted, starts,
                                                     n_worst)), threads=threads)
        return out[0]
    return block_tally.serial(approx, value, grad, error, grad_error, counted, starts, n_worst)


@njit(cache=True)
def taken(theta, indices, step):
    """The step each listed entry really takes, (w + h) - (w - h): 0 where h cannot move w.

    theta : (n,); indices : int64 (k,). Returns (steps (k,), how many of them are 0).
    """
    out = np.empty(indices.shape[0])
    stuck = 0
    for q in range(indices.shape[0]):
        w = theta[indices[q]]
        out[q] = (w + step) - (w - step)
        stuck += out[q] == 0.0
    return out, stuck


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def copy_and_largest(theta):
    """A copy of theta (n,) and max |theta| (0.0 for no entries), in one parallel pass: NaN or inf where theta
    holds one.

    For IEEE doubles, |w| orders as its bits without the sign do, as
    integers, and every NaN or inf lies above every finite number: an
    integer maximum, exact in any order (the same for any thread count),
    which the compiler vectorizes where a float maximum would have to stop
    at NaN.
    """
    k = theta.shape[0]
    out = np.empty_like(theta)
    bits = theta.view(np.int64)
    n_units = (k + UNIT - 1) // UNIT
    tops = np.zeros(n_units + 1, np.int64)
    for u in prange(n_units):
        top = 0
        for q in range(u * UNIT, min((u + 1) * UNIT, k)):
            out[q] = theta[q]
            top = max(top, bits[q] & 0x7FFFFFFFFFFFFFFF)
        tops[u] = top
    return out, np.array([tops.max()]).view(np.float64)[0]


def steps_all_move(largest, step):
    """Whether step moves every w with |w| <= largest: then (w + h) - (w - h) != 0 for all of them.

    With |w| < 2**50 h, w + h and w - h are each rounded by at most
    ulp(2 |w|) / 2 <= h / 4, so they stay more than h apart.
    """
    return largest < step * 2.0 ** 50


@njit(cache=True, inline="always", error_model="numpy")
def _rounding_bound(w, step, size, factor):
    """``factor * size / |(w + h) - (w - h)|``, inf where the step does not move w."""
    h = abs((w + step) - (w - step))
    bound = factor * size / h  # IEEE division (error_model="numpy"): no check per entry
    return bound if h != 0.0 else np.inf


@njit(cache=True, error_model="numpy")
def rounding_errors(theta, indices, step, size, factor):
    """``factor * size / |(w + h) - (w - h)|`` for w = theta[indices], inf where the step is 0 (``judge.rounding_error``).

    theta : (n,); indices : int64 (k,); size : (k,) the evaluations' scale;
    factor : ROUNDING[path] times the unit roundoff. Returns (k,).
    """
    out = np.empty(indices.shape[0])
    for q in range(indices.shape[0]):
        out[q] = _rounding_bound(theta[indices[q]], step, size[q], factor)
    return out


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def rounding_errors_into(theta, indices, step, size, factor, out):
    """``rounding_errors`` written into out (k,), in parallel over units of entries (on the kernel thread)."""
    k = indices.shape[0]
    for u in prange((k + UNIT - 1) // UNIT):
        for q in range(u * UNIT, min((u + 1) * UNIT, k)):
            out[q] = _rounding_bound(theta[indices[q]], step, size[q], factor)

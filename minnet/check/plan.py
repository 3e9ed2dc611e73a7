"""Plan a check: which entries, which method, which groups and chunks of work for the kernels' threads.

Pure planning, before any evaluation: validated options, the entries to check,
the method a network gets, and the order, groups and balanced chunks of entries
the kernels run. Imports the registries, the validation helpers and the parallel runner only.
"""
import numba
import numpy as np
from numba import njit, prange

from .. import _validation as v
from ..ops.activations import ACTIVATIONS, PIECEWISE_LINEAR
from ._parallel import CHUNKS_PER_THREAD, go_on, parallel_kernel, share

METHODS = ("auto", "segment", "incremental", "full")
# CHUNKS_PER_THREAD: the segment kernel's chunks per thread, taken dynamically (its scratch per chunk is small)
MODES = ("full", "directional")


# ------------------------------------------------------------ options and method
def _thresholds(thresholds):
    if not isinstance(thresholds, (tuple, list)) or len(thresholds) != 2:
        raise TypeError(f"thresholds must be a pair (correct_below, bug_from), got {thresholds!r}")
    low = v.real(thresholds[0], "thresholds[0]", low=0.0, low_open=True)
    high = v.real(thresholds[1], "thresholds[1]", low=0.0, low_open=True)
    if low > high:
        raise ValueError(f"thresholds must be increasing, got {thresholds!r}")
    return low, high


def check_options(*, epsilon, method, mode, sample, threads, thresholds, seed):
    """The validated options of a check: (epsilon, sample, threads, thresholds, seed); errors name the argument."""
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



def method_for(hidden, method):
    """The method a network with this hidden activation gets: "auto" is the fastest exact path.

    The segment method applies to piecewise-linear hidden layers only (a ValueError otherwise).
    """
    if method == "segment" and hidden not in PIECEWISE_LINEAR:
        raise ValueError(f"method='segment' needs piecewise-linear hidden layers (hidden one of "
                         f"{', '.join(map(repr, PIECEWISE_LINEAR))}), got hidden={hidden!r}; "
                         f"use method='auto' or 'incremental'")
    if method == "auto":
        return "segment" if hidden in PIECEWISE_LINEAR else "incremental"
    return method


def off_units_are_flat(hidden):
    """True when a unit below its kink passes nothing on (slope 0 there, as relu): the kernels skip those examples."""
    slopes = ACTIVATIONS[hidden].slopes
    return slopes is not None and slopes[0] == 0.0


SERIAL_BELOW = 2_000_000  # entries x examples: a check this small runs on one thread unless told otherwise


def threads_for(threads, n_entries, m):
    """(threads, serial): the threads a check runs on, and whether its kernels run as their serial twins.

    As asked, else 1 for a small check (below SERIAL_BELOW entries x examples, where threads save a
    millisecond or two and parallel kernels cost many seconds to compile on a first run), else Numba's.
    A small check on one thread runs the serial twins.
    """
    small = n_entries * m < SERIAL_BELOW
    if threads is None:
        threads = 1 if small else numba.get_num_threads()
    return threads, small and threads == 1


def chunks_for(threads):
    """How many chunks the segment kernels' work is cut into for ``threads`` threads (one on one thread).

    The incremental and full kernels keep one chunk per thread: each chunk holds a work row of its own.
    """
    return 1 if threads == 1 else CHUNKS_PER_THREAD * threads


def group_size(method, m):
    """Entries per group of the incremental kernel (2 * group_size * m <= 8192 columns); 1 for the full one."""
    return max(1, min(64, 4096 // m)) if method != "full" else 1


def selection(layout, *, mode, sample, rng):
    """Which entries to check one by one: k per block (int64 indices in theta order), none (directional: an
    empty array), or None for every entry (no list of theta's size is made)."""
    if mode == "directional":
        return np.empty(0, np.int64)
    if sample is None:
        return None
    picks = [b.offset + np.sort(rng.choice(b.size, size=min(sample, b.size), replace=False))
             for b in layout.blocks]
    return np.concatenate(picks).astype(np.int64)



def require_a_step_that_moves(theta, epsilon):
    """An epsilon that moves no entry of theta gives no difference at all: say so, before any call."""
    if not np.any((theta + epsilon) - (theta - epsilon)):
        smallest = float(np.min(np.abs(theta))) * np.finfo(np.float64).eps
        raise ValueError(f"epsilon={epsilon!r} cannot move any entry of theta: theta + epsilon == theta for all "
                         f"of them (the smallest step that moves one is about {smallest:.1e}); use an epsilon "
                         f"near 1e-7 times theta's scale")



# ------------------------------------------------------------ groups and chunks
@njit(cache=True)
def rows_of(dims, indices, by_index):
    """Counting sort of the entries by row (over all layers), keeping the order of ``by_index``.

    by_index lists the entries by increasing index, so one walk over theta's
    segments (every W row, then every bias) finds each entry's row.
    Returns (order, first position of every row in order (n_rows + 1,)).
    """
    L = dims.shape[0] - 1
    n_rows = 0
    for l in range(L):
        n_rows += dims[l + 1]
    seg_end = np.empty(2 * n_rows, np.int64)  # theta positions where each segment ends
    seg_row = np.empty(2 * n_rows, np.int64)
    seg, row0, p = 0, 0, 0
    for l in range(L):
        for i in range(dims[l + 1]):  # the W rows
            p += dims[l]
            seg_end[seg], seg_row[seg] = p, row0 + i
            seg += 1
        for i in range(dims[l + 1]):  # the biases
            p += 1
            seg_end[seg], seg_row[seg] = p, row0 + i
            seg += 1
        row0 += dims[l + 1]
    k = indices.shape[0]
    count = np.zeros(n_rows + 1, np.int64)
    seg = 0
    for r in range(k):  # entries per row
        q = by_index[r]
        while indices[q] >= seg_end[seg]:
            seg += 1
        count[seg_row[seg] + 1] += 1
    for r in range(n_rows):
        count[r + 1] += count[r]
    start = count[:-1].copy()
    order = np.empty(k, np.int64)
    seg = 0
    for r in range(k):  # the same walk again: recomputing a row is cheaper than storing it
        q = by_index[r]
        while indices[q] >= seg_end[seg]:
            seg += 1
        row = seg_row[seg]
        order[start[row]] = q
        start[row] += 1
    return order, count


DESCENT_CHUNK = 1 << 20  # indices compared per step when looking for a descent (bounded scratch)


def row_runs(dims, indices, every=False):
    """For entries listed by increasing index, where every row's entries are: a run of weights, then its bias.

    Returns (count (n_rows + 1,) the first position of every row in the
    sorted order, w_first (n_rows,) the position in indices of the row's
    first weight, bias (n_rows,) the position of its bias or -1), or three
    empty arrays when the indices are not increasing. every=True: the
    entries are all of theta, in order (indices is not read). NumPy over the
    rows (a few searches each), not compiled: it runs once per check.
    """
    dims = np.asarray(dims, dtype=np.int64)
    k = indices.shape[0]
    if not every:
        for a in range(0, k - 1, DESCENT_CHUNK):  # a descent anywhere: not increasing
            b = min(a + DESCENT_CHUNK, k - 1)
            if np.any(indices[a + 1:b + 1] <= indices[a:b]):
                return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    n_in, n_out = dims[:-1], dims[1:]
    sizes = n_out * (n_in + 1)
    n_parameters = int(sizes.sum())
    # n increasing integers from 0 to n - 1 are every entry: each one is at its own position
    every = every or (k == n_parameters and k > 0 and indices[0] == 0 and indices[k - 1] == k - 1)
    k = n_parameters if every else k
    layer = np.repeat(np.arange(n_out.size), n_out)  # the layer of every row
    i = np.arange(layer.size) - np.repeat(np.cumsum(n_out) - n_out, n_out)  # the row within its layer
    offset = (np.cumsum(sizes) - sizes)[layer]
    w_start = offset + i * n_in[layer]
    w_end = w_start + n_in[layer]
    b = offset + n_out[layer] * n_in[layer] + i
    if every:
        w_first, w_stop, bias = w_start, w_end, b
    else:
        w_first = np.searchsorted(indices, w_start)
        w_stop = np.searchsorted(indices, w_end)
        p = np.searchsorted(indices, b)
        found = p < k
        found[found] = indices[p[found]] == b[found]
        bias = np.where(found, p, -1)
    count = np.zeros(layer.size + 1, np.int64)
    np.cumsum(w_stop - w_first + (bias >= 0), out=count[1:])
    return count, w_first.astype(np.int64), bias.astype(np.int64)


FILL_UNIT = 16384  # positions of ``order`` one thread fills at a time


def fill_range(out, counters=None, n_chunks=1):
    """out[q] = q for every position: ``fill_rows`` with one row of out.size weights (and so its counters)."""
    fill_rows(np.array([0, out.shape[0]], np.int64), np.zeros(1, np.int64), np.full(1, -1, np.int64), out,
              counters, n_chunks)


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def fill_rows(count, w_first, bias, order, counters=None, n_chunks=1):
    """Write ``order`` from ``row_runs``: every row's weights by increasing index, then its bias.

    In units of FILL_UNIT positions, n_chunks runs of them in parallel. counters : ``_parallel.Counters.buffer``
    (n_chunks at most its ticks), or None: every unit reads its stop flag (filling 20 million entries, first
    touch of fresh memory included, takes a tenth of a second).
    """
    k = order.shape[0]
    n_units = (k + FILL_UNIT - 1) // FILL_UNIT
    for c in prange(n_chunks):
        first, last = share(c, n_units, n_chunks)
        for u in range(first, last):
            if counters is not None:
                if not go_on(counters, c):
                    break
            start, stop = u * FILL_UNIT, min((u + 1) * FILL_UNIT, k)
            r = sorted_position(count, start, True) - 1  # the row position start falls in
            p = start
            while p < stop:
                n_weights = count[r + 1] - count[r] - (1 if bias[r] >= 0 else 0)
                end = min(count[r + 1], stop)
                while p < end:
                    q = p - count[r]
                    order[p] = w_first[r] + q if q < n_weights else bias[r]
                    p += 1
                r += 1


def row_groups(dims, indices, group_size, *, fill=True):
    """Order the entries by (layer, row, column) and cut them into groups of at most group_size per row.

    In O(n): within one row, theta
    order is column order with the bias last, so a counting sort by row of
    the entries in theta order is the whole sort; for entries already listed
    in theta order (as the check lists them), every row is one run of them
    and its bias, and only the runs are found here.

    Returns (order, group bounds into order, row of every group counted over
    all layers, runs). With fill=False and runs not None, order is not yet
    written: ``fill_rows(*runs, order, counters, n_chunks)`` writes it (in parallel, so on the
    kernel thread). indices None: every entry of theta, in order.
    """
    dims = np.asarray(dims, dtype=np.int64)
    if indices is None:
        runs = row_runs(dims, np.empty(0, np.int64), True)
    else:
        indices = np.asarray(indices, dtype=np.int64)
        runs = row_runs(dims, indices)
    if runs[0].size:
        row_start = runs[0]
        order = np.empty(row_start[-1], np.int64)
        if fill:
            fill_rows.serial(*runs, order)
    else:
        runs = None
        order, row_start = rows_of(dims, indices, np.argsort(indices, kind="stable"))
    groups, rows = cut_rows(row_start, group_size)
    return order, groups, rows, runs


def cut_rows(row_start, group_size):
    """Cut every row [row_start[r], row_start[r + 1]) of the order into groups of at most group_size.

    Returns (bounds (n_groups + 1,) into the order, the row of every group (n_groups,)). Besides them,
    only arrays of one entry per row: bounds are the running sum of their steps (group_size within a
    row, a jump to the next row's start between rows).
    """
    per_row = (np.diff(row_start) + group_size - 1) // group_size
    rows = np.repeat(np.arange(per_row.size, dtype=np.int64), per_row)
    bounds = np.full(rows.size + 1, group_size, np.int64)
    filled = np.flatnonzero(per_row)  # the rows with entries
    if filled.size:
        first = (np.cumsum(per_row) - per_row)[filled]  # every such row's first group
        last = row_start[filled] + (per_row[filled] - 1) * group_size  # and where its last group starts
        bounds[0] = row_start[filled[0]]
        bounds[first[1:]] = row_start[filled[1:]] - last[:-1]
        np.cumsum(bounds[:-1], out=bounds[:-1])
    bounds[-1] = row_start[-1]
    return bounds, rows


@njit(cache=True)
def sorted_position(a, x, right):
    """``np.searchsorted(a, x, side="right" if right else "left")`` for a sorted 1-D array a without NaN: a
    binary search of its own for the compiled ``fill_rows`` (one small compile where Numba's searchsorted is a large
    one); the planning in Python calls NumPy's."""
    lo, hi = 0, a.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x or (right and a[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


def balanced_bounds(costs, n_chunks):
    """Chunk boundaries (n_chunks + 1 at most, from 0 to costs.size) so that every chunk carries about the
    same total cost: chunk j ends after the first item where the running cost reaches j / n_chunks of it all."""
    n = costs.shape[0]
    if n == 0:
        return np.zeros(1, np.int64)
    n_chunks = min(n_chunks, n)
    cumulative = np.cumsum(costs)
    inner = np.searchsorted(cumulative, cumulative[n - 1] * np.arange(1, n_chunks) / n_chunks) + 1
    return np.unique(np.concatenate(([0], np.minimum(inner, n), [n]))).astype(np.int64)


def balanced_chunks(groups, rows, row_cost, group_cost, n_chunks):
    """``balanced_bounds`` over groups that cost (entries x row_cost[row] + group_cost) each.

    groups : (n_groups + 1,) bounds; rows : (n_groups,); row_cost : (n_rows,) per entry.
    """
    costs = row_cost[rows]
    costs *= np.diff(groups)
    costs += group_cost
    return balanced_bounds(costs, n_chunks)


def segment_row_costs(dims, active, m):
    """The segment kernel's work per entry of every row: (changing examples + 1) x n_L x 2 + 2 m.

    active : (sum of the hidden widths,) examples for which each hidden unit
    can change (relu units off for an example skip it); output rows change all m.
    """
    changing = np.full(int(sum(dims[1:])), float(m))
    changing[:active.size] = active
    return 2.0 * (changing + 1.0) * dims[-1] + 2.0 * m


def kernel_row_costs(dims, m, method, *, active=None):
    """The incremental or full kernel's relative work per entry of every row, and per group.

    Returns (row_cost (n_rows,), group_cost) for ``balanced_chunks``,
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

"""The linear-segment gradient check for piecewise-linear nets (relu, leaky_relu).

Like the kernels of ``_kernels``, this writes for every listed parameter index
p one centered difference ``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)``
(divided by the step actually taken), a kink flag and the size of what was
subtracted (for the judge's rounding error), bitwise the same for any number
of threads. Its cost per entry does not grow with the hidden
widths.

Layer indices in the code are 0-based, as in ``_check``: layer index k is
layer k + 1 of the course, hidden layers are 0 .. L-2 and L-1 is the output
layer. The formulas below use the course's numbering (W_L is the output layer).

Why it is still a finite difference
-----------------------------------
Perturbing W_l[i, j] or b_l[i] by delta (delta = (w +- eps) - w in floating
point) changes only row i of Z_l, by ``dz_t = delta * A_{l-1}[j, t]`` per
example t. The activation of unit i then changes by the scalar
``s_t = D_l[i, t] (g(z_t + dz_t) - g(z_t))``, computed with the exact
identities of ``_check.activation_change`` (for relu and leaky_relu the exact
difference, whether or not unit i itself crosses its kink, which sets the
entry's kink flag as today). The output layer's own entries change the
logits directly: s_t = dz_t along the unit vector e_i.

Every later hidden unit r of layer k > l receives the pre-activation change
``s_t * u_(r,t)``, where u_(.,t) = W_k D_(k-1,t) ... D_(l+1,t) W_(l+1)[:, i] and
D_(k,t) holds each unit's relu slope at Z (1 or 0; 1 or 0.01 for leaky_relu)
times its dropout multiplier. While no such unit crosses 0, every later
layer is the linear map that these slopes describe, so the logits of the
perturbed network are exactly ``Z_L[:, t] + s_t * v_(i,t)`` with
v_(i,t) = W_L D_(L-1,t) W_(L-1) ... D_(l+1,t) W_(l+1)[:, i]: no term is dropped
and nothing is linearized. The function *is* linear on that segment; the
identity holds for the real numbers and the computed value differs from a
whole forward pass only by rounding (a different order of the same sums).
The loss change per example, L(Z_L + s_t v) - L(Z_L), is then evaluated
with the exact identities of the incremental kernel (``_check.loss_change``),
and J(+) - J(-) is summed example by example. For softmax and linear outputs
the sums over the n_L outputs are taken once per (unit, example) instead of
once per column: ``sum_k p_k expm1(s v_k)`` with the series that
``_check.expm1_series`` uses (only while every |s v_k| is below its limit, where
it is exact to double precision) is the polynomial ``sum_n s^n sum_k p_k v_k^n / n!``,
and ``sum_k s v_k (r_k + s v_k / 2) = s r.v + s^2 v.v / 2``: the same
polynomials in another order of summation, not an approximation.

Unit r of layer k can change sign only if ``|s_t| |u_(r,t)| >= |Z_k[r, t]|``.
So per (unit i, example t) ``directions`` computes the ratio
``R_(i,t) = max_(k > l, r) |u_(r,t)| / |Z_k[r, t]|`` over every later hidden unit
(dropped units included, as the other kernels count their crossings too;
``R`` is infinite where some ``Z_k[r, t] = 0`` meets ``u != 0``). An entry is
evaluated here only when every example satisfies ``|s_t| R_(i,t) < 1 - MARGIN``:
then no later unit can cross, so the segment is linear for that step. Any
other entry is flagged, and the driver evaluates it with the general
incremental kernel, which follows the crossing. MARGIN absorbs the rounding
of R itself; and since J is continuous in theta, a crossing that rounding
could still hide would overshoot the kink by a rounding-sized amount and
move J by no more than that.

Cost: the directions v (n_L numbers per hidden unit and example) are carried
backwards from the output like backprop's deltas, O(sum_l n_L n_l n_(l+1) m);
the ratios R forwards, O(n_(l+1) n_(k+1) n_k m) per pair l < k (one pass per
example for the common three-layer nets). Then each entry costs O(n_L) per
example (O(1) for softmax and linear outputs, see above).
Memory: v, R and the sums hold (n_L + 1 + N_SUMS) * m floats per hidden unit.
"""
from collections import namedtuple

import numpy as np
from numba import njit, prange

from .._kernels import block_offsets, layer_offsets
from ..ops.activations import ACTIVATIONS, left_slope
from ..ops.losses import N_SUMS, has_moments, loss_change, moment_loss, moment_sums
from . import _kernels as _check
from ._kernels import SERIES_LIMIT, _serial_twin, activation_change, all_small, decode, fill_dz, finish_group

MARGIN = 1e-4  # a step must stay this far (relative) inside its linear segment

# The read-only arrays every group reads: parameters and the unperturbed forward pass.
Cache = namedtuple("Cache", ["theta", "dims", "Z", "Dm", "A", "X", "Y", "colmax", "out_act", "resid", "V", "R",
                             "P"])
Scratch = namedtuple("Scratch", ["delta", "column", "total", "size", "kinked", "unsafe", "examples", "active", "z0", "g0",
                                 "dmul", "dz", "change", "cur", "loss", "linear"])


# ------------------------------------------------------------ directions
@njit(cache=True)
def hidden_offsets(dims):
    """Start of every hidden layer's units in one list of all hidden units, and the total: (L,)."""
    L = dims.shape[0] - 1
    off = np.zeros(L, np.int64)
    for l in range(L - 1):
        off[l + 1] = off[l] + dims[l + 1]
    return off


@njit(cache=True)
def direction_offsets(dims, m):
    """Offsets of every hidden layer's (n_l, m, n_L) block of V."""
    return hidden_offsets(dims) * m * dims[dims.shape[0] - 1]


@njit(cache=True)
def widest_hidden(dims):
    width = 1
    for k in range(1, dims.shape[0] - 1):
        width = max(width, dims[k])
    return width


@njit(cache=True)
def add_ratios(U, rows, cols, Z, start, m, t, ratio):
    """ratio[i] = max(ratio[i], max_r |U[r, i]| / |Z[start + r m + t]|) over r < rows, i < cols.

    A unit with Z = 0 flips for any change: its ratio is infinite where U is not 0.
    """
    for r in range(rows):
        z = abs(Z[start + r * m + t])
        urow = U[r]
        inv = 1.0 / z if z > 0.0 else np.inf
        if inv == np.inf:  # 0 or subnormal |z|: any change of this unit may flip it
            for i in range(cols):
                if urow[i] != 0.0:
                    ratio[i] = np.inf
        else:
            for i in range(cols):
                ratio[i] = max(ratio[i], abs(urow[i]) * inv)


@njit(cache=True, parallel=True, nogil=True)
def directions(cache, hidden, output, use_drop, bounds):
    """Fill cache.V, R and P for the examples of every chunk bounds[c]:bounds[c + 1].

    V : flat, hidden layer l's block at ``direction_offsets(dims, m)[l]`` holds
        v_(i,t) at ((i m + t) n_L + k): how the logits move per unit change of A_l[i, t].
    R : flat like the hidden layers of Z, R[off[l] + i m + t] = max over later hidden
        units of |u| / |Z| (0 when l is the last hidden layer).
    P : (len(R), N_SUMS), the sums of v that ``losses.moment_loss`` reads (see ``losses.moment_sums``).
    Each example writes only its own entries.
    """
    theta, dims, Z, Dm, V, R = cache.theta, cache.dims, cache.Z, cache.Dm, cache.V, cache.R
    m = cache.X.shape[1]
    L = dims.shape[0] - 1
    n_out = dims[L]
    w_off, _ = block_offsets(dims)
    off = layer_offsets(dims, m)
    hoff = hidden_offsets(dims)
    voff = direction_offsets(dims, m)
    width = widest_hidden(dims)
    slope = left_slope(hidden)
    for c in prange(bounds.shape[0] - 1):
        d = np.empty(hoff[L - 1])  # slopes times dropout multipliers of every hidden unit
        jac = np.empty((2, n_out * width))
        u_buf = np.empty((2, width * width)) if L >= 4 else np.empty((2, 1))
        ratio = np.empty(width)
        for t in range(bounds[c], bounds[c + 1]):
            for l in range(L - 1):
                for r in range(dims[l + 1]):
                    q = off[l] + r * m + t
                    d[hoff[l] + r] = (1.0 if Z[q] > 0.0 else slope) * (Dm[q] if use_drop else 1.0)
            # backwards: J_l = W_(L-1) D_(L-2) ... D_(l+1) W_(l+1), (n_out, n_(l+1)); v_(i,t) = J_l[:, i]
            n_next = dims[L - 1]
            prev = theta[w_off[L - 1]:w_off[L - 1] + n_out * n_next].reshape(n_out, n_next)
            which = 0
            for l in range(L - 2, -1, -1):
                n_l = dims[l + 1]
                if l < L - 2:  # J_l = (J_(l+1) D_(l+1)) W_(l+1)
                    W = theta[w_off[l + 1]:w_off[l + 1] + n_next * n_l].reshape(n_next, n_l)
                    cur = jac[which, :n_out * n_l].reshape(n_out, n_l)
                    which = 1 - which
                    for k in range(n_out):
                        row = cur[k]
                        row[:] = 0.0
                        for r in range(n_next):
                            a = prev[k, r] * d[hoff[l + 1] + r]
                            if a != 0.0:
                                wrow = W[r]
                                for i in range(n_l):
                                    row[i] += a * wrow[i]
                    prev = cur
                for i in range(n_l):
                    base = voff[l] + (i * m + t) * n_out
                    for k in range(n_out):
                        V[base + k] = prev[k, i]
                    moment_sums(output, V[base:base + n_out], cache.out_act, cache.Y, cache.resid, t,
                         cache.P[off[l] + i * m + t])
                n_next = n_l
            # forwards: u for every later hidden layer k, U_k = W_k D_(k-1) ... W_(l+1), (n_(k+1), n_(l+1))
            for l in range(L - 1):
                n_l = dims[l + 1]
                ratio[:n_l] = 0.0
                if l < L - 2:
                    n_k = dims[l + 2]
                    U = theta[w_off[l + 1]:w_off[l + 1] + n_k * n_l].reshape(n_k, n_l)
                    add_ratios(U, n_k, n_l, Z, off[l + 1], m, t, ratio)
                    which = 0
                    for k in range(l + 2, L - 1):  # U_k = W_k D_(k-1) U_(k-1)
                        n_prev, n_k = dims[k], dims[k + 1]
                        W = theta[w_off[k]:w_off[k] + n_k * n_prev].reshape(n_k, n_prev)
                        nxt = u_buf[which, :n_k * n_l].reshape(n_k, n_l)
                        which = 1 - which
                        for r in range(n_k):
                            row = nxt[r]
                            row[:] = 0.0
                            for q in range(n_prev):
                                a = W[r, q] * d[hoff[k - 1] + q]
                                if a != 0.0:
                                    urow = U[q]
                                    for i in range(n_l):
                                        row[i] += a * urow[i]
                        U = nxt
                        add_ratios(U, n_k, n_l, Z, off[k], m, t, ratio)
                for i in range(n_l):
                    base = voff[l] + (i * m + t) * n_out
                    finite = True  # v overflows only for absurd weights: then any step takes the general path
                    for k in range(n_out):
                        finite &= np.isfinite(V[base + k])
                    R[off[l] + i * m + t] = ratio[i] if finite else np.inf


# ------------------------------------------------------------ one group
@njit(cache=True)
def linear_group(params, cache, hidden, output, lambd, epsilon, use_drop, approx, kinks, scales, unsafe_out, s):
    """Centered differences for ``params``: entries of one row i of one layer.

    Columns are (example t, run) with run = 2 * entry + sign (0 for +eps, 1 for -eps).
    unsafe_out[g] is set where a step may cross a later kink: that entry's
    approx and kinks are not valid and must come from the incremental kernel.
    """
    theta, dims, X = cache.theta, cache.dims, cache.X
    L = dims.shape[0] - 1
    m = X.shape[1]
    n_out = dims[L]
    w_off, b_off = block_offsets(dims)
    off = layer_offsets(dims, m)
    n_group = params.shape[0]
    n_runs = 2 * n_group
    l, i, _ = decode(params[0], dims, w_off, b_off)
    delta, column = s.delta[:n_runs], s.column[:n_group]
    largest_delta = 0.0
    for g in range(n_group):
        w = theta[params[g]]
        delta[2 * g] = (w + epsilon) - w
        delta[2 * g + 1] = (w - epsilon) - w
        largest_delta = max(largest_delta, abs(delta[2 * g]), abs(delta[2 * g + 1]))
        column[g] = decode(params[g], dims, w_off, b_off)[2]
    kinked, unsafe, total, size = s.kinked[:n_runs], s.unsafe[:n_group], s.total[:n_group], s.size[:n_group]
    for run in range(n_runs):
        kinked[run] = 0
    for g in range(n_group):
        unsafe[g] = False
        total[g] = 0.0
        size[g] = 0.0
    # Examples whose unit i can change at all: as in the incremental kernel, a
    # dropped unit or a relu unit that stays below 0 for the largest step is skipped.
    row = off[l] + i * m  # unit i of layer l in Z, R and P
    examples = s.examples
    n_ex = 0
    flat_below = left_slope(hidden) == 0.0
    for t in range(m):
        if l < L - 1:
            if use_drop and cache.Dm[row + t] == 0.0:
                continue
            reach = largest_delta * max(cache.colmax[l * m + t], 1.0) * 1.000001  # largest |dz|, with margin
            if flat_below and cache.Z[row + t] + reach < 0.0:
                continue
        examples[n_ex] = t
        n_ex += 1
    dz = s.dz[:n_ex * n_runs]  # change of Z_l[i, t] per column (listed example, run)
    fill_dz(examples, n_ex, column, delta, l, X, cache.A, off, dz)
    active = s.active
    change = s.change[:n_ex * n_runs]  # s_t: change of A_l[i, t] (of Z_L[i, t] for the output layer)
    if l == L - 1:
        for c in range(n_ex * n_runs):
            change[c] = dz[c]
        for a in range(n_ex):
            active[a] = True
    else:
        z0, g0, dmul = s.z0, s.g0, s.dmul
        for a in range(n_ex):
            t = examples[a]
            z0[a] = cache.Z[row + t]
            g0[a] = z0[a]  # not read for relu kinds
            dmul[a] = cache.Dm[row + t] if use_drop else 1.0
        activation_change(hidden, z0, g0, dmul, dz, 1.0, change, kinked, active, n_ex, n_runs)
        limit = 1.0 - MARGIN
        for a in range(n_ex):
            ratio = cache.R[row + examples[a]]
            if active[a] and ratio > 0.0:
                base = a * n_runs
                for run in range(n_runs):
                    step = abs(change[base + run])
                    if step != 0.0 and step * ratio >= limit:
                        unsafe[run // 2] = True
    loss = s.loss[:n_runs]
    vbase = direction_offsets(dims, m)[l] + i * m * n_out if l < L - 1 else 0
    for a in range(n_ex):
        if not active[a]:
            continue
        t = examples[a]
        src = change[a * n_runs:(a + 1) * n_runs]
        summed = l < L - 1 and has_moments(output) and moment_loss(output, cache.P[row + t], cache.Y, t, src, loss,
                                                                    n_runs)
        if not summed:  # the logits' change s_t v, then loss_change as in the incremental kernel
            cur = s.cur[:n_out * n_runs].reshape(n_out, n_runs)
            for k in range(n_out):
                vk = (1.0 if k == i else 0.0) if l == L - 1 else cache.V[vbase + t * n_out + k]
                out_k = cur[k]
                for run in range(n_runs):  # (a zero step moves nothing, even along an overflowed v)
                    out_k[run] = vk * src[run] if src[run] != 0.0 else 0.0
            series = all_small(cur, n_out, n_runs)
            loss_change(output, cur, cache.out_act[:, t:t + 1], cache.Y[:, t:t + 1], cache.resid[:, t:t + 1],
                        n_out, 1, n_runs, loss, s.linear[:n_runs], series)
        for g in range(n_group):
            total[g] += loss[2 * g] - loss[2 * g + 1]
            size[g] += abs(loss[2 * g]) + abs(loss[2 * g + 1])
    finish_group(params, theta, column, total, size, kinked, lambd, epsilon, m, approx, kinks, scales)
    for g in range(n_group):
        unsafe_out[g] = unsafe[g]


@njit(cache=True)
def make_scratch(m, group_size, n_out):
    n_runs = 2 * group_size
    return Scratch(np.empty(n_runs), np.empty(group_size, np.int64), np.empty(group_size), np.empty(group_size),
                   np.zeros(n_runs, np.int64), np.zeros(group_size, np.bool_), np.empty(m, np.int64),
                   np.zeros(m, np.bool_),
                   np.empty(m), np.empty(m), np.empty(m), np.empty(m * n_runs), np.empty(m * n_runs),
                   np.empty(n_out * n_runs), np.empty(n_runs), np.empty(n_runs))


@njit(cache=True, parallel=True, nogil=True)
def linear(cache, hidden, output, lambd, epsilon, use_drop, plan, group_size, results, unsafe):
    """Fill approx[q], kinks[q], scales[q] of ``results`` and unsafe[q] for p = indices[q] of ``plan``.

    plan : ``_kernels.Plan``; results : ``_kernels.Results``: groups, chunks
    and ``done`` (with its last entry the stop flag) as in ``_kernels.incremental``.
    """
    indices, order, groups, chunks = plan
    approx, kinks, scales, done = results
    m = cache.X.shape[1]
    n_out = cache.dims[cache.dims.shape[0] - 1]
    for c in prange(chunks.shape[0] - 1):
        scratch = make_scratch(m, group_size, n_out)
        params = np.empty(group_size, np.int64)
        values = np.empty(group_size)
        sizes = np.empty(group_size)
        flags = np.zeros(group_size, np.bool_)
        risky = np.zeros(group_size, np.bool_)
        for g in range(chunks[c], chunks[c + 1]):
            if done[done.shape[0] - 1] != 0:
                break
            start, n = groups[g], groups[g + 1] - groups[g]
            for q in range(n):
                params[q] = indices[order[start + q]]
            linear_group(params[:n], cache, hidden, output, lambd, epsilon, use_drop, values, flags, sizes, risky,
                         scratch)
            for q in range(n):
                approx[order[start + q]] = values[q]
                kinks[order[start + q]] = flags[q]
                scales[order[start + q]] = sizes[q]
                unsafe[order[start + q]] = risky[q]
            done[c] += n


# ------------------------------------------------------------ driver
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


@njit(cache=True)
def row_runs(dims, indices, every=False):
    """For entries listed by increasing index, where every row's entries are: a run of weights, then its bias.

    Returns (count (n_rows + 1,) the first position of every row in the
    sorted order, w_first (n_rows,) the position in indices of the row's
    first weight, bias (n_rows,) the position of its bias or -1), or three
    empty arrays when the indices are not increasing. every=True: the
    entries are all of theta, in order (indices is not read).
    """
    k = indices.shape[0]
    descents = 0
    for q in range(1, 0 if every else k):  # no early exit: an integer sum the compiler vectorizes
        descents += indices[q] <= indices[q - 1]
    if descents:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    L = dims.shape[0] - 1
    n_rows, n_parameters = 0, 0
    for l in range(L):
        n_rows += dims[l + 1]
        n_parameters += dims[l + 1] * (dims[l] + 1)
    # n increasing integers from 0 to n - 1 are every entry: each one is at its own position
    every = every or (k == n_parameters and k > 0 and indices[0] == 0 and indices[k - 1] == k - 1)
    k = n_parameters if every else k
    count = np.zeros(n_rows + 1, np.int64)
    w_first, bias = np.empty(n_rows, np.int64), np.empty(n_rows, np.int64)
    offset, row = 0, 0
    for l in range(L):
        n_in, n_out = dims[l], dims[l + 1]
        for i in range(n_out):
            b = offset + n_out * n_in + i
            if every:
                w_first[row], w_stop, bias[row] = offset + i * n_in, offset + (i + 1) * n_in, b
            else:
                w_first[row] = np.searchsorted(indices, offset + i * n_in)
                w_stop = np.searchsorted(indices, offset + (i + 1) * n_in)
                p = np.searchsorted(indices, b)
                bias[row] = p if p < k and indices[p] == b else -1
            count[row + 1] = count[row] + (w_stop - w_first[row]) + (1 if bias[row] >= 0 else 0)
            row += 1
        offset += n_out * (n_in + 1)
    return count, w_first, bias


FILL_UNIT = 16384  # positions of ``order`` one thread fills at a time


@njit(cache=True, parallel=True, nogil=True)
def fill_range(out):
    """out[q] = q for every position, in parallel over units of FILL_UNIT positions."""
    k = out.shape[0]
    for u in prange((k + FILL_UNIT - 1) // FILL_UNIT):
        for q in range(u * FILL_UNIT, min((u + 1) * FILL_UNIT, k)):
            out[q] = q


@njit(cache=True, parallel=True, nogil=True)
def fill_rows(count, w_first, bias, order):
    """Write ``order`` from ``row_runs``: every row's weights by increasing index, then its bias."""
    k = order.shape[0]
    for u in prange((k + FILL_UNIT - 1) // FILL_UNIT):
        start, stop = u * FILL_UNIT, min((u + 1) * FILL_UNIT, k)
        r = np.searchsorted(count, start, side="right") - 1  # the row position start falls in
        p = start
        while p < stop:
            n_weights = count[r + 1] - count[r] - (1 if bias[r] >= 0 else 0)
            end = min(count[r + 1], stop)
            while p < end:
                q = p - count[r]
                order[p] = w_first[r] + q if q < n_weights else bias[r]
                p += 1
            r += 1


def row_groups(dims, indices, group_size, fill=True):
    """Order the entries by (layer, row, column) and cut them into groups of at most group_size per row.

    The contract of ``gradcheck._row_groups`` in O(n): within one row, theta
    order is column order with the bias last, so a counting sort by row of
    the entries in theta order is the whole sort; for entries already listed
    in theta order (as the check lists them), every row is one run of them
    and its bias, and only the runs are found here.

    Returns (order, group bounds into order, row of every group counted over
    all layers, runs). With fill=False and runs not None, order is not yet
    written: ``fill_rows(*runs, order)`` writes it (in parallel, so on the
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
            fill_rows_serial(*runs, order)
    else:
        runs = None
        order, row_start = rows_of(dims, indices, np.argsort(indices, kind="stable"))
    groups, rows = cut_rows(row_start, group_size)
    return order, groups, rows, runs


@njit(cache=True)
def cut_rows(row_start, group_size):
    """Cut every row [row_start[r], row_start[r + 1]) of the order into groups of at most group_size.

    Returns (bounds (n_groups + 1,) into the order, the row of every group (n_groups,)).
    """
    n_rows = row_start.shape[0] - 1
    n_groups = 0
    for r in range(n_rows):
        n_groups += (row_start[r + 1] - row_start[r] + group_size - 1) // group_size
    bounds, rows = np.empty(n_groups + 1, np.int64), np.empty(n_groups, np.int64)
    g = 0
    for r in range(n_rows):
        for start in range(row_start[r], row_start[r + 1], group_size):
            bounds[g], rows[g] = start, r
            g += 1
    bounds[n_groups] = row_start[n_rows]
    return bounds, rows


@njit(cache=True)
def balanced_bounds(costs, n_chunks):
    """Chunk boundaries (n_chunks + 1 at most, from 0 to costs.size) so that every chunk carries about the
    same total cost: chunk j ends after the first item where the running cost reaches j / n_chunks of it all."""
    n = costs.shape[0]
    n_chunks = max(1, min(n_chunks, n))
    cumulative = np.cumsum(costs)
    bounds = np.zeros(n_chunks + 1, np.int64)
    c = 0
    for j in range(1, n_chunks):
        inner = min(np.searchsorted(cumulative, cumulative[n - 1] * j / n_chunks) + 1, n)
        if inner > bounds[c]:
            c += 1
            bounds[c] = inner
    if n > bounds[c]:
        c += 1
        bounds[c] = n
    return bounds[:c + 1].copy()


@njit(cache=True)
def balanced_chunks(groups, rows, row_cost, group_cost, n_chunks):
    """``balanced_bounds`` over groups that cost (entries x row_cost[row] + group_cost) each.

    groups : (n_groups + 1,) bounds; rows : (n_groups,); row_cost : (n_rows,) per entry.
    """
    costs = np.empty(rows.shape[0])
    for g in range(rows.shape[0]):
        costs[g] = (groups[g + 1] - groups[g]) * row_cost[rows[g]] + group_cost
    return balanced_bounds(costs, n_chunks)


def row_costs(dims, active, m):
    """The linear kernel's work per entry of every row: (changing examples + 1) x n_L x 2 + 2 m.

    active : (sum of the hidden widths,) examples for which each hidden unit
    can change (relu units off for an example skip it); output rows change all m.
    """
    changing = np.full(int(sum(dims[1:])), float(m))
    changing[:active.size] = active
    return 2.0 * (changing + 1.0) * dims[-1] + 2.0 * m


class LinearEntries:
    """The linear-segment evaluation of some entries: ``run`` on the check's kernel thread, then ``finish``.

    Made before the forward cache exists, so that a check can run it in the
    same call of the kernels as the forward pass (``api._start``). ``run``
    plans the groups and threads (compiled, from the cache: relu units off
    for an example skip it) and runs the kernels; ``finish``, in the calling
    thread, hands the entries a step could take across a later kink to the
    incremental kernel.

    Parameters
    ----------
    net : Network with relu or leaky_relu hidden layers
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
    any; done (n_threads + 1,) entries finished per chunk, then the stop flag (``api._run_kernel``).
    """

    def __init__(self, net, X, Y, drop, use_drop, epsilon, indices, n_threads, factor):
        self.net, self.X, self.Y, self.drop, self.use_drop = net, X, Y, drop, use_drop
        self.epsilon, self.indices, self.n_threads, self.factor = epsilon, indices, n_threads, factor
        self.n = n = net.layout.size if indices is None else indices.size
        self.approx, self.kinks = np.empty(n), np.empty(n, dtype=np.bool_)  # the kernels write every entry
        self.scales, self.unsafe = np.empty(n), np.empty(n, dtype=np.bool_)
        self.errors = np.empty(0)  # made by ``run`` once the kernels' own arrays are freed
        self.any_unsafe = False
        self.done = np.zeros(n_threads + 1, np.int64)  # at most one chunk per thread

    def run(self, theta, Z, A, prepared):
        """Plan and evaluate, on the kernel thread. theta : (n_parameters,) the point of the check (a copy
        the caller keeps unchanged); Z, A : its forward cache; prepared : ``_kernels.prepare`` of it."""
        from . import _tally, api
        if self.n == 0:
            return
        net, X, m = self.net, self.X, self.X.shape[1]
        self.theta, self.Z, self.A, self.prepared = theta, Z, A, prepared
        n_hidden = int(sum(net.layer_dims[1:-1]))
        _, colmax, out_act, resid = prepared
        cache = Cache(theta, net._dims, Z, self.drop, A, X, self.Y, colmax, out_act, resid,
                      np.empty(n_hidden * m * net.layer_dims[-1]), np.empty(n_hidden * m),
                      np.empty((n_hidden * m, N_SUMS)))
        group_size = max(1, min(64, 65536 // m))  # a chunk's columns: m * 2 * group_size <= 131072
        units = Z.reshape(-1, m)[:n_hidden]
        flat_below = ACTIVATIONS[net.hidden].slopes[0] == 0.0  # off units change nothing (relu)
        active = np.sum(units > 0, axis=1) if flat_below else np.full(n_hidden, m)
        order, groups, rows, runs = row_groups(net.layer_dims, self.indices, group_size, fill=False)
        chunks = balanced_chunks(groups, rows, row_costs(net.layer_dims, active, m), 20.0, self.n_threads)
        if self.indices is None:  # every entry: the list is 0 .. n - 1, written in parallel
            self.indices = np.empty(self.n, np.int64)
            api._kernel("fill_range", __name__)(self.indices)
        if runs is not None:
            api._kernel("fill_rows", __name__)(*runs, order)
        if n_hidden:
            bounds = balanced_bounds(np.ones(m), self.n_threads)
            api._kernel("directions", __name__)(cache, net._hidden, net._output, self.use_drop, bounds)
        api._kernel("linear", __name__)(cache, net._hidden, net._output, net.lambd, self.epsilon, self.use_drop,
                                        _check.Plan(self.indices, order, groups, chunks), group_size,
                                        _check.Results(self.approx, self.kinks, self.scales, self.done), self.unsafe)
        del cache, order  # the directions and the row order: the peak memory stays one array of theta's size lower
        self.errors = np.empty(self.n)
        api._kernel("rounding_errors_into", _tally.__name__)(theta, self.indices, self.epsilon, self.scales,
                                                             self.factor, self.errors)
        self.any_unsafe = bool(self.unsafe.any())  # here, while the kernel thread's caches hold it

    def finish(self):
        """In the calling thread, after ``run``: the entries that may cross a later kink, evaluated by the
        general incremental kernel. Returns (approx, kinks, scales, errors, unsafe)."""
        from . import _tally, api
        if self.any_unsafe:
            net, m, epsilon, factor = self.net, self.X.shape[1], self.epsilon, self.factor
            rest = np.flatnonzero(self.unsafe)
            sub = self.indices[rest]
            group_size = max(1, min(64, 4096 // m))  # as gradient_check sizes the incremental kernel's groups
            s_order, s_groups, s_rows, _ = row_groups(net.layer_dims, sub, group_size)
            s_chunks = balanced_chunks(s_groups, s_rows, *api._row_costs(net.layer_dims, m, "incremental"),
                                       self.n_threads)
            s_done = np.zeros(s_chunks.size, np.int64)
            values, flags, sizes = np.empty(sub.size), np.zeros(sub.size, dtype=np.bool_), np.empty(sub.size)
            point = _check.Point(self.theta, net._dims, self.X, self.Y, self.drop, self.Z, self.A, *self.prepared)
            plan = _check.Plan(sub, s_order, s_groups, s_chunks)

            def fallback():
                work = np.empty((s_chunks.size - 1, _check.work_size(_check.work_width(net._dims), m, group_size)))
                api._kernel("incremental")(point, net._hidden, net._output, net.lambd, epsilon, self.use_drop, plan,
                                           group_size, work, _check.Results(values, flags, sizes, s_done))

            api._run_kernel(fallback, self.n_threads, s_done, sub.size, False)
            self.approx[rest], self.kinks[rest], self.scales[rest] = values, flags, sizes
            self.errors[rest] = _tally.rounding_errors(self.theta, sub, epsilon, sizes, factor)
        return self.approx, self.kinks, self.scales, self.errors, self.unsafe


def linear_entries(net, theta, X, Y, drop, use_drop, Z, A, prepared, epsilon, indices, n_threads, factor,
                   show=False):
    """Evaluate entries with the linear-segment kernel, the others' fallback with the incremental one.

    Parameters
    ----------
    theta : ndarray (n_parameters,), the point of the check (a copy the caller keeps unchanged)
    Z, A : the forward cache at theta, as ``Network._gradient`` returns it
    prepared : ``_kernels.prepare(...)`` of that cache (G, colmax, out_act, resid)
    show : bool, a progress bar
    the others as in ``LinearEntries``.

    Returns
    -------
    approx (n,), kinks (n,) bool, scales (n,), errors (n,) the rounding error of each value,
    fallback (n,) bool: the entries the incremental kernel evaluated.
    """
    from . import api
    entries = LinearEntries(net, X, Y, drop, use_drop, epsilon, indices, n_threads, factor)
    api._run_kernel(lambda: entries.run(theta, Z, A, prepared), n_threads, entries.done, entries.n, show)
    return entries.finish()


# For a forked child of a process that ran the parallel kernels (see ``_kernels``).
directions_serial = _serial_twin(directions, "directions_serial")
linear_serial = _serial_twin(linear, "linear_serial")
fill_rows_serial = _serial_twin(fill_rows, "fill_rows_serial")
fill_range_serial = _serial_twin(fill_range, "fill_range_serial")

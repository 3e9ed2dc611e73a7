"""The segment kernel: the linear-segment gradient check for piecewise-linear hidden layers.
Imports ``_point``, ``_incremental``, the registries and the runner's flag; must not import ``evaluate``, the judge or the report.

Like the other evaluators (``_point``), this writes for every listed parameter index
p one centered difference ``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)``
(divided by the step actually taken), a kink flag and the size of what was
subtracted (for the judge's rounding error), bitwise the same for any number
of threads. Its cost per entry does not grow with the hidden
widths.

Layer indices in the code are 0-based, as in ``_point``: layer index k is
layer k + 1 of the course, hidden layers are 0 .. L-2 and L-1 is the output
layer. The formulas below use the course's numbering (W_L is the output layer).

Why it is still a finite difference
-----------------------------------
Perturbing W_l[i, j] or b_l[i] by delta (delta = (w +- eps) - w in floating
point) changes only row i of Z_l, by ``dz_t = delta * A_{l-1}[j, t]`` per
example t. The activation of unit i then changes by the scalar
``s_t = D_l[i, t] (g(z_t + dz_t) - g(z_t))``, computed with the exact
identities of ``_incremental.kink_change`` (for relu and leaky_relu the exact
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
with the exact identities of the incremental kernel (``losses.loss_change``),
and J(+) - J(-) is summed example by example. For softmax and linear outputs
the sums over the n_L outputs are taken once per (unit, example) instead of
once per column: ``sum_k p_k expm1(s v_k)`` with the series that
``_series.expm1_series`` uses (only while every |s v_k| is below its limit, where
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
other entry is flagged, and the evaluator (``evaluate``) evaluates it with the general
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
from ..ops.activations import left_slope
from ..ops.losses import has_moments, loss_change, moment_loss, moment_sums
from ._incremental import all_small, kink_change
from ._parallel import go_on, parallel_kernel, stopped
from ._point import decode, fill_dz, finish_group, group_params, store_group


MARGIN = 1e-4  # a step must stay this far (relative) inside its linear segment

# The read-only arrays every group reads: parameters and the unperturbed forward pass.
Cache = namedtuple("Cache", ["theta", "dims", "Z", "Dm", "A", "X", "Y", "colmax", "out_act", "resid", "V", "R",
                             "P"])
Scratch = namedtuple("Scratch", ["delta", "column", "total", "size", "kinked", "unsafe", "examples", "active", "z0", "g0",
                                 "dmul", "dz", "change", "cur", "loss", "dot"])


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


@njit(cache=True, inline="always")  # one caller: no library of its own to optimize and link
def forward_ratios(cache, d, t, u_buf, ratio, w_off, off, hoff, voff, counters, c):
    """R of example t for every hidden unit (see ``directions``): the largest |u| / |Z| over the later units.

    d : the slopes times dropout multipliers of every hidden unit at example t; u_buf (2, width**2)
    and ratio (width,) scratch; w_off, off, hoff, voff : the offsets ``directions`` computed once.
    Reads cache.V (already filled for t), writes cache.R. Each row of a product U_k (n_l**2 multiply-adds
    for deep wide nets) reads the stop flag in counters (ticks of chunk c); R is unfinished once it is up.
    """
    theta, dims, Z, V, R = cache.theta, cache.dims, cache.Z, cache.V, cache.R
    m = cache.X.shape[1]
    L = dims.shape[0] - 1
    n_out = dims[L]
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
                    if not go_on(counters, c):
                        return
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


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def directions(cache, hidden, output, use_drop, bounds, counters):
    """Fill cache.V, R and P for the examples of every chunk bounds[c]:bounds[c + 1]; each example reads the
    stop flag in counters (``_parallel.Counters.buffer``).

    V : flat, hidden layer l's block at ``direction_offsets(dims, m)[l]`` holds
        v_(i,t) at ((i m + t) n_L + k): how the logits move per unit change of A_l[i, t].
    R : flat like the hidden layers of Z, R[off[l] + i m + t] = max over later hidden
        units of |u| / |Z| (0 when l is the last hidden layer).
    P : (len(R), N_SUMS), the sums of v that ``losses.moment_loss`` reads (see ``losses.moment_sums``).
    Each example writes only its own entries.
    """
    theta, dims, Z, Dm, V = cache.theta, cache.dims, cache.Z, cache.Dm, cache.V
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
            if not go_on(counters, c):
                break
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
            forward_ratios(cache, d, t, u_buf, ratio, w_off, off, hoff, voff, counters, c)


# ------------------------------------------------------------ one group
@njit(cache=True, inline="always")  # one caller: no library of its own to optimize and link
def segment_group(params, cache, hidden, output, lambd, epsilon, use_drop, approx, kinks, scales, unsafe_out, s):
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
    n_ex = np.int64(0)  # an int64 from the start: a literal 0 would compile the callees once more
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
        z0, dmul = s.z0, s.dmul
        for a in range(n_ex):
            t = examples[a]
            z0[a] = cache.Z[row + t]
            dmul[a] = cache.Dm[row + t] if use_drop else 1.0
        kink_change(left_slope(hidden), z0, dmul, dz, 1.0, change, kinked, active, n_ex, n_runs)
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
                        n_out, 1, n_runs, loss, s.dot[:n_runs], series)
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


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def segment(cache, hidden, output, lambd, epsilon, use_drop, plan, group_size, results, unsafe):
    """Fill approx[q], kinks[q], scales[q] of ``results`` and unsafe[q] for p = indices[q] of ``plan``.

    plan : ``_point.Plan``; results : ``_point.Results``: groups, chunks
    and counters as in ``_incremental.incremental``.
    """
    indices, order, groups, chunks = plan
    approx, kinks, scales, counters = results
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
            if stopped(counters):
                break
            start, n = groups[g], groups[g + 1] - groups[g]
            group_params(indices, order, start, n, params)
            segment_group(params[:n], cache, hidden, output, lambd, epsilon, use_drop, values, flags, sizes, risky,
                          scratch)
            store_group(order, start, n, values, flags, sizes, approx, kinks, scales)
            for q in range(n):
                unsafe[order[start + q]] = risky[q]
            counters[c] += n


# ------------------------------------------------------------ driver

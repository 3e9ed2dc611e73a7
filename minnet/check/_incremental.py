"""The incremental kernel: each entry's centered difference from the cached forward pass, carrying changes.
Imports ``_point``, the registries and the runner's flag; must not import ``evaluate``, the judge or the report.

Perturbing W_k[i, j] or b_k[i] changes row i of Z_k only, by
``dz = delta * A_{k-1}[j, e]`` (delta = (w +- eps) - w, A_{-1} = X). From there
the kernel runs the forward pass of the perturbed network for the examples
whose values change, carrying *changes* rather than values:
``da = g(z0 + dz) - g(z0)``, ``dZ_{k+1} = W_{k+1} da`` and so on, and at the
output the change of each example's loss, ``L(z0 + dz) - L(z0)``. Every change
is computed with an exact identity that avoids subtracting nearly equal
numbers (for relu ``da = dz`` while the unit stays on; for tanh
``tanh(dz)(1 - t0^2)/(1 + t0 tanh(dz))``; for softmax
``log1p(sum_k p_k expm1(dz_k)) - sum_k y_k dz_k``), and expm1, log1p and tanh
of tiny arguments are evaluated by their series to full double precision.
Nothing is linearized: these are the values of the perturbed forward pass,
and J(+) - J(-) is summed example by example. The L2 term's change comes from
the one perturbed weight. A group is up to ``group_size`` entries of one row
(same k and i): their columns (entry, sign, example) are processed together
in loops that run over examples, which the compiler vectorizes.
"""
from collections import namedtuple

import numpy as np
from numba import njit, prange

from .._kernels import block_offsets, layer_offsets
from ..ops._series import SERIES_LIMIT
from ..ops.activations import change, left_slope, piecewise
from ..ops.losses import loss_change
from ._parallel import go_on, parallel_kernel, stopped
from ._point import decode, fill_dz, finish_group, gather_output, gather_row, group_params, store_group


# ------------------------------------------------------------ changes
@njit(cache=True)
def activation_change(hidden, z0, g0, dmul, src, scale, out, kinks, active, n_ex, n_runs):
    """out = dmul * (g(z0 + dz) - g(z0)) with dz = scale * src, column by column.

    Columns are ordered (example t, run): column t * n_runs + run belongs to
    example t. z0, g0, dmul : (n_ex,) pre-activation, activation and dropout
    multiplier of the unit. kinks[run] counts crossings of a piecewise-linear
    activation's kink at 0 (``kink_change``); active[t] is False when no column of example t can
    have changed. Smooth activations use their exact change (``activations.change``).
    """
    if piecewise(hidden):
        kink_change(left_slope(hidden), z0, dmul, src, scale, out, kinks, active, n_ex, n_runs)
        return
    for t in range(n_ex):  # no per-example slices here: the exact change, not the indexing, is the cost
        mul = dmul[t]
        active[t] = mul != 0.0
        for q in range(t * n_runs, (t + 1) * n_runs):
            out[q] = mul * change(hidden, z0[t], g0[t], scale * src[q])


@njit(cache=True, inline="always")  # its loop as it was inside activation_change: the same code for both
def kink_change(slope, z0, dmul, src, scale, out, kinks, active, n_ex, n_runs):
    """``activation_change`` of the piecewise-linear activation with this slope below its kink at 0 (above: 1).

    The exact difference of the two linear pieces, whether or not the step crosses the kink; kinks[run]
    counts the crossings. The segment kernel calls it alone: it never compiles the smooth activations' changes.
    """
    for t in range(n_ex):
        # slices per example: indexing them with the loop counter lets the
        # compiler drop negative-index checks and vectorize
        base = t * n_runs
        src_t = src[base:base + n_runs]
        out_t = out[base:base + n_runs]
        z = z0[t]
        mul = dmul[t]
        on0 = z > 0.0
        a0 = z if on0 else slope * z
        same = mul if on0 else slope * mul
        crossings = 0
        for run in range(n_runs):
            d = scale * src_t[run]
            z1 = z + d
            on1 = z1 > 0.0
            crossed = on0 != on1
            a1 = z1 if on1 else slope * z1
            out_t[run] = mul * (a1 - a0) if crossed else same * d
            kinks[run] += crossed
            crossings += crossed
        active[t] = mul != 0.0 and (on0 or slope != 0.0 or crossings > 0)


@njit(cache=True)
def all_small(a, rows, cols):
    """True when every |a[r, c]| < SERIES_LIMIT (a count, so the loop vectorizes)."""
    over = 0
    for r in range(rows):
        row = a[r]
        for c in range(cols):
            over += abs(row[c]) >= SERIES_LIMIT
    return over == 0


# ------------------------------------------------------------ one group
@njit(cache=True)
def incremental_group(params, point, hidden, output, lambd, epsilon, use_drop, off, w_off, b_off,
                      approx, kinks, scales, scratch, counters, c):
    """Centered differences for ``params``: entries of one row i of one layer, into approx, kinks, scales (n,).

    point : ``Point``. Columns are (example t, run) with run = 2 * entry + sign (0 for +eps, 1 for -eps).
    Every unit of a later hidden layer reads the stop flag in counters (chunk c's ticks): a group of a wide
    layer takes a second; once the flag is up it returns, its outputs unfinished.
    """
    theta, dims, X, Y, Dm, Z, A, G, colmax, out_act, resid = point
    L = dims.shape[0] - 1
    m = X.shape[1]
    n_out = dims[L]
    n_group = params.shape[0]
    n_runs = 2 * n_group
    l, i, _ = decode(params[0], dims, w_off, b_off)
    n_l = dims[l + 1]
    delta = scratch.delta[:n_runs]
    column = scratch.column[:n_group]
    largest_delta = 0.0
    for g in range(n_group):
        p = params[g]
        w = theta[p]
        delta[2 * g] = (w + epsilon) - w
        delta[2 * g + 1] = (w - epsilon) - w
        largest_delta = max(largest_delta, abs(delta[2 * g]), abs(delta[2 * g + 1]))
        column[g] = decode(p, dims, w_off, b_off)[2]
    # Examples whose row-i activation can change. A relu unit that stays below 0
    # for the largest possible change, or a dropped unit, changes nothing.
    examples = scratch.examples
    n_ex = np.int64(0)  # an int64 from the start: a literal 0 would compile the callees once more
    zl = off[l] + i * m
    flat_below = piecewise(hidden) and left_slope(hidden) == 0.0
    for e in range(m):
        if l < L - 1:
            if use_drop and Dm[zl + e] == 0.0:
                continue
            if flat_below and Z[zl + e] + largest_delta * max(colmax[l * m + e], 1.0) * 1.000001 < 0.0:
                continue
        examples[n_ex] = e
        n_ex += 1
    n_cols = n_ex * n_runs
    kinked = scratch.kinked[:n_runs]
    for run in range(n_runs):
        kinked[run] = 0
    total = scratch.total[:n_group]
    size = scratch.size[:n_group]
    for g in range(n_group):
        total[g] = 0.0
        size[g] = 0.0
    if n_ex > 0:
        dz = scratch.dz[:n_cols]  # change of Z_l[i, e] per column
        fill_dz(examples, n_ex, column, delta, l, X, A, off, dz)
        y = scratch.y[:n_out * n_ex].reshape(n_out, n_ex)
        act = scratch.act[:n_out * n_ex].reshape(n_out, n_ex)
        res = scratch.res[:n_out * n_ex].reshape(n_out, n_ex)
        gather_output(examples, n_ex, Y, out_act, resid, y, act, res)
        z0, g0, dmul = scratch.z0[:n_ex], scratch.g0[:n_ex], scratch.dmul[:n_ex]
        active = scratch.active[:n_ex]
        cur = scratch.buf_a[:n_out * n_cols].reshape(n_out, n_cols)
        if l == L - 1:
            for k in range(n_out):
                for c in range(n_cols):
                    cur[k, c] = dz[c] if k == i else 0.0
        else:
            da = scratch.da[:n_cols]
            gather_row(Z, G, Dm, use_drop, zl, examples, n_ex, z0, g0, dmul)
            activation_change(hidden, z0, g0, dmul, dz, 1.0, da, kinked, active, n_ex, n_runs)
            k = l + 1  # the layer whose pre-activation changes by W_k[:, i] * da
            if k == L - 1:
                for q in range(n_out):
                    w = theta[w_off[k] + q * n_l + i]
                    for c in range(n_cols):
                        cur[q, c] = w * da[c]
            else:
                unit = scratch.unit[:n_cols]
                changed = scratch.changed
                prev = scratch.buf_b[:n_cols].reshape(1, n_cols)
                in_a = True
                while k < L - 1:
                    n_k, n_next = dims[k + 1], dims[k + 2]
                    nxt = (scratch.buf_a if in_a else scratch.buf_b)[:n_next * n_cols].reshape(n_next, n_cols)
                    nxt[:, :] = 0.0
                    for r in range(n_k):
                        if not go_on(counters, c):
                            return
                        gather_row(Z, G, Dm, use_drop, off[k] + r * m, examples, n_ex, z0, g0, dmul)
                        if k == l + 1:
                            activation_change(hidden, z0, g0, dmul, da, theta[w_off[k] + r * n_l + i], unit,
                                              kinked, active, n_ex, n_runs)
                        else:
                            activation_change(hidden, z0, g0, dmul, prev[r], 1.0, unit, kinked, active, n_ex,
                                              n_runs)
                        n_active = 0  # a unit that did not change for an example adds nothing there
                        for t in range(n_ex):
                            if active[t]:
                                changed[n_active] = t * n_runs
                                n_active += 1
                        weights = theta[w_off[k + 1] + r:w_off[k + 1] + n_next * n_k:n_k]  # W_{k+1}[:, r]
                        for a in range(n_active):
                            base = changed[a]
                            unit_t = unit[base:base + n_runs]
                            for q in range(n_next):
                                w = weights[q]
                                out_t = nxt[q, base:base + n_runs]
                                for run in range(n_runs):
                                    out_t[run] += w * unit_t[run]
                    prev = nxt
                    in_a = not in_a
                    k += 1
                cur = prev
        loss = scratch.loss[:n_cols]
        series = all_small(cur, n_out, n_cols)
        loss_change(output, cur, act, y, res, n_out, n_ex, n_runs, loss, scratch.dot[:n_cols], series)
        for t in range(n_ex):
            base = t * n_runs
            for g in range(n_group):
                total[g] += loss[base + 2 * g] - loss[base + 2 * g + 1]
                size[g] += abs(loss[base + 2 * g]) + abs(loss[base + 2 * g + 1])
    finish_group(params, theta, column, total, size, kinked, lambd, epsilon, m, approx, kinks, scales)


Scratch = namedtuple("Scratch", ["delta", "column", "examples", "total", "size", "kinked", "dz", "y", "act", "res",
                                 "z0", "g0", "dmul", "da", "buf_a", "buf_b", "loss", "active", "unit", "dot",
                                 "changed"])


@njit(cache=True)
def work_width(dims):
    """Widest layer after the first hidden one: what the change buffers must hold."""
    L = dims.shape[0] - 1
    width = dims[L]
    for k in range(2, L + 1):
        width = max(width, dims[k])
    return width


@njit(cache=True)
def work_size(width, m, group_size):
    """Floats of one chunk's large work arrays (see ``make_scratch``)."""
    return (2 * width + 5) * 2 * group_size * m


@njit(cache=True)
def make_scratch(width, m, group_size, n_out, work):
    """Work arrays of one chunk: (example, entry, sign) columns of one group.

    The large ones are cut from ``work`` (``work_size`` floats), which the
    caller allocates once per check and reuses for every kernel call.
    """
    n_cols = 2 * group_size * m
    big = width * n_cols
    return Scratch(np.empty(2 * group_size), np.empty(group_size, np.int64), np.empty(m, np.int64),
                   np.empty(group_size), np.empty(group_size), np.zeros(2 * group_size, np.int64), work[2 * big:2 * big + n_cols],
                   np.empty(n_out * m), np.empty(n_out * m), np.empty(n_out * m), np.empty(m), np.empty(m),
                   np.empty(m), work[2 * big + n_cols:2 * big + 2 * n_cols], work[:big], work[big:2 * big],
                   work[2 * big + 2 * n_cols:2 * big + 3 * n_cols], np.zeros(m, np.bool_),
                   work[2 * big + 3 * n_cols:2 * big + 4 * n_cols], work[2 * big + 4 * n_cols:2 * big + 5 * n_cols],
                   np.empty(m, np.int64))


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def incremental(point, hidden, output, lambd, epsilon, use_drop, plan, group_size, work, results):
    """Fill approx[q], kinks[q], scales[q] of ``results`` for p = indices[q] of ``plan``.

    point : ``Point``, with G and the others of ``prepare``; plan : ``Plan``;
    results : ``Results``. Group g lists the positions
    order[groups[g]:groups[g + 1]] (entries of one row, at most group_size);
    chunk c runs groups chunks[c]:chunks[c + 1] with the work row work[c]
    (``work_size`` floats for the width ``work_width``) and counts its
    finished entries in counters[c] (read by a progress bar) and stops at its
    next group once the stop flag is up (``_parallel.Counters``).
    """
    dims, X = point.dims, point.X
    indices, order, groups, chunks = plan
    approx, kinks, scales, counters = results
    m = X.shape[1]
    L = dims.shape[0] - 1
    off = layer_offsets(dims, m)
    w_off, b_off = block_offsets(dims)
    width = work_width(dims)
    for c in prange(chunks.shape[0] - 1):
        scratch = make_scratch(width, m, group_size, dims[L], work[c])
        params = np.empty(group_size, np.int64)
        values = np.empty(group_size)
        sizes = np.empty(group_size)
        flags = np.zeros(group_size, np.bool_)
        for g in range(chunks[c], chunks[c + 1]):
            if stopped(counters):
                break
            start, n = groups[g], groups[g + 1] - groups[g]
            group_params(indices, order, start, n, params)
            incremental_group(params[:n], point, hidden, output, lambd, epsilon, use_drop, off, w_off, b_off,
                              values, flags, sizes, scratch, counters, c)
            store_group(order, start, n, values, flags, sizes, approx, kinks, scales)
            counters[c] += n

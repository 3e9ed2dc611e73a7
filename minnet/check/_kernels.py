"""Parallel perturbation loops of the gradient check.

Both kernels write, for every listed parameter index p, one centered
difference ``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)``, a kink
flag (a relu/leaky_relu pre-activation moved across 0) and the size of what
was subtracted, ``sum_e (|a_e| + |b_e|) / m`` over the per-example terms
a_e - b_e that J(+) - J(-) was summed from (whole losses for ``full``,
loss changes for ``incremental``, plus the L2 terms). The judge turns that
size into the entry's own rounding error.

Chunk c counts its finished entries in ``done[c]``; the last entry of
``done`` is the stop flag (Ctrl-C), which both kernels read between groups
and then leave the rest undone. It lives in the array the loop writes to:
a flag in an array of its own is read once, before the loop (the compiler
may hoist a load that no store in the loop can change), and never stops it. Work is split into
groups, chunks of groups run in a ``prange`` and scratch is allocated once per
chunk. Each group writes only its own outputs, in a fixed order, so results
are bitwise the same for any number of threads.

The divisor is the step actually taken, ``(w + eps) - (w - eps)`` in floating
point, which is 2 eps up to the rounding of w + eps; dividing by it removes
that rounding (about 1e-10 relative) from every entry.

Layer indices are 0-based here: layer index k is layer k + 1 of the course.
Per-layer arrays are layer-major (n_{k+1}, m) blocks of flat buffers at
``layer_offsets(dims, m)[k]``, as ``forward`` fills them.

The incremental kernel
----------------------
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
import types
from collections import namedtuple

import numpy as np
from numba import njit, prange

from .._kernels import block_offsets, data_loss, forward, hidden_activation, l2_term, layer_offsets, matmul
from ..ops._series import SERIES_LIMIT
from ..ops.activations import activate, activate_grad, change, left_slope, piecewise
from ..ops.losses import example_loss, loss_change, output_activation, output_delta


@njit(cache=True)
def decode(p, dims, w_off, b_off):
    """Parameter index -> (layer index, row, column); column -1 for a bias."""
    l = 0
    while p >= b_off[l] + dims[l + 1]:
        l += 1
    if p < b_off[l]:
        local = p - w_off[l]
        return l, local // dims[l], local % dims[l]
    return l, p - b_off[l], -1


# ------------------------------------------------------------ changes
@njit(cache=True)
def activation_change(hidden, z0, g0, dmul, src, scale, out, kinks, active, n_ex, n_runs):
    """out = dmul * (g(z0 + dz) - g(z0)) with dz = scale * src, column by column.

    Columns are ordered (example t, run): column t * n_runs + run belongs to
    example t. z0, g0, dmul : (n_ex,) pre-activation, activation and dropout
    multiplier of the unit. kinks[run] counts crossings of a piecewise-linear
    activation's kink at 0; active[t] is False when no column of example t can
    have changed. Smooth activations use their exact change (``activations.change``).
    """
    kinked = piecewise(hidden)
    slope = left_slope(hidden) if kinked else 0.0
    over = 0  # changes too large for the series (counted, so the loops vectorize)
    for t in range(n_ex):
        # slices per example: indexing them with the loop counter lets the
        # compiler drop negative-index checks and vectorize
        base = t * n_runs
        src_t = src[base:base + n_runs]
        out_t = out[base:base + n_runs]
        z = z0[t]
        mul = dmul[t]
        if kinked:
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
            continue
        active[t] = mul != 0.0
        a0 = g0[t]
        for run in range(n_runs):
            d = scale * src_t[run]
            over += abs(d) >= SERIES_LIMIT
            out_t[run] = mul * change(hidden, z, a0, d, True)
    if over > 0:  # rare: large epsilon or weights; redo with the library functions
        for t in range(n_ex):
            base = t * n_runs
            for run in range(n_runs):
                d = scale * src[base + run]
                out[base + run] = dmul[t] * change(hidden, z0[t], g0[t], d, False)


@njit(cache=True)
def all_small(a, rows, cols):
    """True when every |a[r, c]| < SERIES_LIMIT (a count, so the loop vectorizes)."""
    over = 0
    for r in range(rows):
        row = a[r]
        for c in range(cols):
            over += abs(row[c]) >= SERIES_LIMIT
    return over == 0


# ------------------------------------------------------------ what the kernels read and write
Point = namedtuple("Point", ["theta", "dims", "X", "Y", "drop", "Z", "A", "G", "colmax", "out_act", "resid"])
Point.__doc__ = """The point of the check and its forward pass, read by every group (read-only there).

theta (n_parameters,); dims int64 (L + 1,); X (n_0, m); Y (n_L, m); drop: the
flat dropout multipliers (``Network._dropout``); Z, A: the flat forward cache;
G, colmax (L * m,), out_act (n_L, m), resid (n_L, m): ``prepare`` of it (the
incremental kernel's; empty for the full one).
"""
Plan = namedtuple("Plan", ["indices", "order", "groups", "chunks"])
Plan.__doc__ = """Which entries, in which groups, on which thread: parameter indices (k,), their positions
grouped by row (k,), group bounds into order, chunk bounds into the groups (one chunk per thread)."""
Results = namedtuple("Results", ["approx", "kinks", "scales", "done"])
Results.__doc__ = """Where the kernels write: per entry the difference, its kink flag and the size of what was
subtracted (k,); done (n_chunks + 1,): entries finished per chunk, then the stop flag."""


# ------------------------------------------------------------ one group
@njit(cache=True)
def incremental_group(params, point, hidden, output, lambd, epsilon, use_drop, off, w_off, b_off,
                      approx, kinks, scales, scratch):
    """Centered differences for ``params``: entries of one row i of one layer, into approx, kinks, scales (n,).

    point : ``Point``. Columns are (example t, run) with run = 2 * entry + sign (0 for +eps, 1 for -eps).
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
    n_ex = 0
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
        loss_change(output, cur, act, y, res, n_out, n_ex, n_runs, loss, scratch.linear[:n_cols], series)
        for t in range(n_ex):
            base = t * n_runs
            for g in range(n_group):
                total[g] += loss[base + 2 * g] - loss[base + 2 * g + 1]
                size[g] += abs(loss[base + 2 * g]) + abs(loss[base + 2 * g + 1])
    finish_group(params, theta, column, total, size, kinked, lambd, epsilon, m, approx, kinks, scales)


@njit(cache=True)
def fill_dz(examples, n_ex, column, delta, l, X, A, off, dz):
    """dz[t * n_runs + run] = delta[run] * (the input the perturbed entry multiplies) for each listed example.

    Entry g of the row (column[g], -1 for the bias) has runs 2g (+eps) and 2g + 1 (-eps); its input is
    X[j, e] in the first layer, A_{l-1}[j, e] after it, and 1 for a bias.
    """
    m = X.shape[1]
    n_group = column.shape[0]
    n_runs = 2 * n_group
    for t in range(n_ex):
        e = examples[t]
        for g in range(n_group):
            j = column[g]
            if j < 0:
                a = 1.0
            elif l == 0:
                a = X[j, e]
            else:
                a = A[off[l - 1] + j * m + e]
            dz[t * n_runs + 2 * g] = delta[2 * g] * a
            dz[t * n_runs + 2 * g + 1] = delta[2 * g + 1] * a


@njit(cache=True)
def finish_group(params, theta, column, total, size, kinked, lambd, epsilon, m, approx, kinks, scales):
    """Each entry's centered difference from its summed loss changes, plus the L2 change of the one weight.

    total[g], size[g] : sum over examples of L(+) - L(-) and of |L(+)| + |L(-)|;
    column[g] < 0 for a bias; kinked[2g], kinked[2g + 1] : kink crossings of the two signs.
    """
    m_ = float(m)
    for g in range(params.shape[0]):
        dJ = total[g] / m_
        subtracted = size[g] / m_
        w = theta[params[g]]
        w_plus, w_minus = w + epsilon, w - epsilon
        if column[g] >= 0 and lambd != 0.0:
            l2 = lambd / (2.0 * m_) * ((w_plus - w_minus) * (w_plus + w_minus))
            dJ += l2
            subtracted += abs(l2)
        approx[g] = dJ / (w_plus - w_minus)
        scales[g] = subtracted
        kinks[g] = kinked[2 * g] + kinked[2 * g + 1] > 0


@njit(cache=True)
def gather_row(Z, G, Dm, use_drop, start, examples, n_ex, z0, g0, dmul):
    """Row values Z, g(Z) and the dropout multiplier at the listed examples."""
    for t in range(n_ex):
        e = examples[t]
        z0[t] = Z[start + e]
        g0[t] = G[start + e]
        dmul[t] = Dm[start + e] if use_drop else 1.0


@njit(cache=True)
def gather_output(examples, n_ex, Y, out_act, resid, y, act, res):
    """Targets, output activations and residuals A - Y at the listed examples."""
    for t in range(n_ex):
        e = examples[t]
        for k in range(Y.shape[0]):
            y[k, t] = Y[k, e]
            act[k, t] = out_act[k, e]
            res[k, t] = resid[k, e]


Scratch = namedtuple("Scratch", ["delta", "column", "examples", "total", "size", "kinked", "dz", "y", "act", "res",
                                 "z0", "g0", "dmul", "da", "buf_a", "buf_b", "loss", "active", "unit", "linear",
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


@njit(cache=True, parallel=True, nogil=True)
def prepare(dims, X, Y, Z, A, hidden):
    """What the incremental kernel reads besides the forward cache, computed in parallel over the examples.

    Returns G = g(Z) without dropout (flat, like Z), colmax (L * m,) with
    max_j |A_{k-1}[j, e]| per layer index k (A_{-1} = X), the output
    activation A_L (n_L, m) and the residual A_L - Y.
    """
    L = dims.shape[0] - 1
    m = X.shape[1]
    off = layer_offsets(dims, m)
    G = np.empty(off[L])
    colmax = np.zeros(L * m)
    for e in prange(m):  # each example's column of every layer
        for l in range(L):
            for j in range(dims[l + 1]):
                k = off[l] + j * m + e
                G[k] = activate(Z[k], hidden) if l < L - 1 else A[k]
        for j in range(dims[0]):
            colmax[e] = max(colmax[e], abs(X[j, e]))
        for l in range(1, L):
            for j in range(dims[l]):
                colmax[l * m + e] = max(colmax[l * m + e], abs(A[off[l - 1] + j * m + e]))
    n_out = dims[L]
    out_act = A[off[L - 1]:off[L]].reshape(n_out, m).copy()
    resid = out_act - Y
    return G, colmax, out_act, resid


@njit(cache=True, parallel=True, nogil=True)
def incremental(point, hidden, output, lambd, epsilon, use_drop, plan, group_size, work, results):
    """Fill approx[q], kinks[q], scales[q] of ``results`` for p = indices[q] of ``plan``.

    point : ``Point``, with G and the others of ``prepare``; plan : ``Plan``;
    results : ``Results``. Group g lists the positions
    order[groups[g]:groups[g + 1]] (entries of one row, at most group_size);
    chunk c runs groups chunks[c]:chunks[c + 1] with the work row work[c]
    (``work_size`` floats for the width ``work_width``) and counts its
    finished entries in done[c] (read by a progress bar); done[-1] != 0
    stops every chunk at its next group.
    """
    dims, X = point.dims, point.X
    indices, order, groups, chunks = plan
    approx, kinks, scales, done = results
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
            if done[done.shape[0] - 1] != 0:
                break
            start, n = groups[g], groups[g + 1] - groups[g]
            for q in range(n):
                params[q] = indices[order[start + q]]
            incremental_group(params[:n], point, hidden, output, lambd, epsilon, use_drop, off, w_off, b_off,
                              values, flags, sizes, scratch)
            for q in range(n):
                approx[order[start + q]] = values[q]
                kinks[order[start + q]] = flags[q]
                scales[order[start + q]] = sizes[q]
            done[c] += n


@njit(cache=True)
def full_losses(theta, dims, X, Y, hidden, output, drop, use_drop, Z, A, losses, z, y):
    """Whole forward pass; per-example losses into ``losses`` (m,)."""
    forward(theta, dims, X, hidden, output, drop, use_drop, Z, A)
    L = dims.shape[0] - 1
    m = X.shape[1]
    nL = dims[L]
    base = layer_offsets(dims, m)[L - 1]
    for e in range(m):
        for k in range(nL):
            z[k] = Z[base + k * m + e]
            y[k] = Y[k, e]
        losses[e] = example_loss(z, y, output)


@njit(cache=True)
def full_kinks(dims, hidden, Z0, Z1, m, drop, use_drop):
    """True when any hidden pre-activation of a kept unit differs in sign between two passes.

    A unit that dropout switched off for an example passes nothing on, so
    its crossing changes nothing (as in the incremental kernel).
    """
    if not piecewise(hidden):
        return False
    off = layer_offsets(dims, m)
    for k in range(off[dims.shape[0] - 2]):
        if (Z0[k] > 0.0) != (Z1[k] > 0.0) and not (use_drop and drop[k] == 0.0):
            return True
    return False


@njit(cache=True, parallel=True, nogil=True)
def full(point, hidden, output, lambd, epsilon, use_drop, indices, bounds, results):
    """The notes' algorithm: two whole forward passes per listed parameter p = indices[q], into ``results`` at q.

    point : ``Point`` (theta, dims, X, Y, drop, Z, A are read); results : ``Results``.
    J(+) - J(-) is taken term by term (per example, per squared weight), the
    same summation the incremental kernel uses, so the two differ only by the
    rounding of the forward values. Chunk c of ``bounds`` counts its finished
    entries in done[c]; done[-1] != 0 stops every chunk at its next entry.
    """
    theta, dims, X, Y, drop, Z, A = point.theta, point.dims, point.X, point.Y, point.drop, point.Z, point.A
    approx, kinks, scales, done = results
    m = X.shape[1]
    nL = dims[dims.shape[0] - 1]
    size = Z.shape[0]
    w_off, b_off = block_offsets(dims)
    for c in prange(bounds.shape[0] - 1):
        local = theta.copy()
        Zp = np.empty(size)
        Ap = np.empty(size)
        Zm = np.empty(size)
        Am = np.empty(size)
        loss_plus = np.empty(m)
        loss_minus = np.empty(m)
        z = np.empty(nL)
        y = np.empty(nL)
        l2_plus = np.empty(theta.shape[0])
        l2_minus = np.empty(theta.shape[0])
        for q in range(bounds[c], bounds[c + 1]):
            if done[done.shape[0] - 1] != 0:
                break
            p = indices[q]
            w = local[p]
            local[p] = w + epsilon
            full_losses(local, dims, X, Y, hidden, output, drop, use_drop, Zp, Ap, loss_plus, z, y)
            n_w = l2_terms(local, dims, w_off, b_off, l2_plus)
            local[p] = w - epsilon
            full_losses(local, dims, X, Y, hidden, output, drop, use_drop, Zm, Am, loss_minus, z, y)
            l2_terms(local, dims, w_off, b_off, l2_minus)
            local[p] = w
            total = 0.0
            subtracted = 0.0
            for e in range(m):
                total += loss_plus[e] - loss_minus[e]
                subtracted += abs(loss_plus[e]) + abs(loss_minus[e])
            l2 = 0.0
            l2_size = 0.0
            for k in range(n_w):
                l2 += l2_plus[k] - l2_minus[k]
                if l2_plus[k] != l2_minus[k]:  # only the perturbed weight's terms differ
                    l2_size += l2_plus[k] + l2_minus[k]
            approx[q] = (total / m + lambd / (2.0 * m) * l2) / ((w + epsilon) - (w - epsilon))
            scales[q] = subtracted / m + lambd / (2.0 * m) * l2_size
            kinks[q] = (full_kinks(dims, hidden, Z, Zp, m, drop, use_drop) or
                        full_kinks(dims, hidden, Z, Zm, m, drop, use_drop))
            done[c] += 1


@njit(cache=True)
def l2_terms(theta, dims, w_off, b_off, out):
    """Write the squared weights, W1 then W2 ..., into out; return their count."""
    k = 0
    for l in range(dims.shape[0] - 1):
        for t in range(w_off[l], b_off[l]):
            out[k] = theta[t] * theta[t]
            k += 1
    return k


# ------------------------------------------------------------ the point of the check
@njit(cache=True, parallel=True, nogil=True)
def cost_and_gradient(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, scratch):
    """J at theta, backprop into ``grad`` and the forward cache in Z and A, with rows split over the threads.

    The numbers of ``_kernels.cost`` followed by ``_kernels.backward``, bit
    for bit: every product is ``_kernels.matmul`` applied row by row (each
    entry summed in the same order), against a transposed copy where the
    serial code reads a transpose. buf1, buf2 : at least max(n_l) * m
    entries; scratch : at least max(max(n_l) * m, max(n_l * n_(l-1))).
    """
    L = dims.shape[0] - 1
    m = X.shape[1]
    w_off, b_off = block_offsets(dims)
    off = layer_offsets(dims, m)
    A_prev = X
    for l in range(L):  # forward
        n, n_prev = dims[l + 1], dims[l]
        W = theta[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
        b = theta[b_off[l]:b_off[l] + n]
        Zl = Z[off[l]:off[l + 1]].reshape(n, m)
        Al = A[off[l]:off[l + 1]].reshape(n, m)
        Dl = drop[off[l]:off[l + 1]].reshape(n, m) if use_drop else Zl
        for i in prange(n):
            matmul(W[i:i + 1], A_prev, Zl[i:i + 1])
            if l < L - 1:
                hidden_activation(Zl[i:i + 1], b[i:i + 1], hidden, Dl[i:i + 1], use_drop, Al[i:i + 1])
            else:
                for e in range(m):
                    Zl[i, e] += b[i]
        if l == L - 1:
            output_activation(Zl, output, Al)
        A_prev = Al
    J = data_loss(Z[off[L - 1]:off[L]].reshape(dims[L], m), Y, output) + l2_term(theta, dims, lambd, m)
    nL = dims[L]
    reg = lambd * (1.0 / m)
    # backward; dZ of the layer at hand lives in buf1
    output_delta(output, A[off[L - 1]:off[L]].reshape(nL, m), Y, m, buf1[:nL * m].reshape(nL, m))
    for l in range(L - 1, -1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W = theta[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
        dW = grad[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
        db = grad[b_off[l]:b_off[l] + n]
        dZ = buf1[:n * m].reshape(n, m)
        A_prev = X if l == 0 else A[off[l - 1]:off[l]].reshape(n_prev, m)
        A_prev_T = scratch[:m * n_prev].reshape(m, n_prev)
        for e in prange(m):
            for j in range(n_prev):
                A_prev_T[e, j] = A_prev[j, e]
        for i in prange(n):
            matmul(dZ[i:i + 1], A_prev_T, dW[i:i + 1])
            if reg != 0.0:
                for j in range(n_prev):
                    dW[i, j] += reg * W[i, j]
            s = 0.0
            for e in range(m):
                s += dZ[i, e]
            db[i] = s
        if l > 0:
            dA = buf2[:n_prev * m].reshape(n_prev, m)
            W_T = scratch[:n * n_prev].reshape(n_prev, n)
            for j in prange(n_prev):
                for i in range(n):
                    W_T[j, i] = W[i, j]
            Zp = Z[off[l - 1]:off[l]].reshape(n_prev, m)
            Dp = drop[off[l - 1]:off[l]].reshape(n_prev, m) if use_drop else Zp
            for j in prange(n_prev):
                matmul(W_T[j:j + 1], dZ, dA[j:j + 1])
                for e in range(m):
                    if use_drop:
                        dA[j, e] *= Dp[j, e] * activate_grad(Zp[j, e], hidden)
                    else:
                        dA[j, e] *= activate_grad(Zp[j, e], hidden)
            # copied, not swapped: with dZ rebound to the other buffer between parallel loops,
            # Numba 0.68 zeroed whole rows of the next dW (measured; the serial twin was right)
            buf1[:n_prev * m] = buf2[:n_prev * m]
    return J


# The same loops compiled without the parallel threading layer: for a forked
# child of a process that already ran the parallel ones. GNU OpenMP cannot be
# used again after fork (Numba stops such a child with SIGTERM); in these,
# prange runs as range.
def _serial_twin(kernel, name):
    """``kernel``'s loops compiled without ``parallel``, under a name of their own (its own cache files)."""
    f = getattr(kernel, "py_func", None)
    if f is None:  # NUMBA_DISABLE_JIT=1: plain Python functions, no threads to avoid
        return kernel
    twin = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__, twin.__doc__ = name, f.__doc__
    options = {key: value for key, value in kernel.targetoptions.items() if key not in ("parallel", "nopython")}
    return njit(**dict(options, cache=True, nogil=True))(twin)


incremental_serial = _serial_twin(incremental, "incremental_serial")
cost_and_gradient_serial = _serial_twin(cost_and_gradient, "cost_and_gradient_serial")
full_serial = _serial_twin(full, "full_serial")
prepare_serial = _serial_twin(prepare, "prepare_serial")

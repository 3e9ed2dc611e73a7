"""What every evaluator of the check shares: the point of the check, its cost and backprop, and one entry's bookkeeping.

The evaluators (``_incremental``, ``_full``, ``_segment``) build on this module; it imports only the
kernels and registries below the check.

The conventions of all of them:

Every evaluator writes, for every listed parameter index p, one centered
difference ``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)``, a kink
flag (a pre-activation of a piecewise-linear unit moved across 0) and the size of what
was subtracted, ``sum_e (|a_e| + |b_e|) / m`` over the per-example terms
a_e - b_e that J(+) - J(-) was summed from (whole losses for ``full``,
loss changes for ``incremental``, plus the L2 terms). The judge turns that
size into the entry's own rounding error.

Chunk c counts its finished entries in ``counters[c]`` and reads the stop flag
(Ctrl-C) between groups (``_parallel.Counters``). Work is split into
groups, chunks of groups run in a ``prange`` and scratch is allocated once per
chunk. Each group writes only its own outputs, in a fixed order, so results
are bitwise the same for any number of threads.

The divisor is the step actually taken, ``(w + eps) - (w - eps)`` in floating
point, which is 2 eps up to the rounding of w + eps; dividing by it removes
that rounding (about 1e-10 relative) from every entry.

Layer indices are 0-based here: layer index k is layer k + 1 of the course.
Per-layer arrays are layer-major (n_{k+1}, m) blocks of flat buffers at
``layer_offsets(dims, m)[k]``, as ``forward`` fills them.
"""
from collections import namedtuple

import numpy as np
from numba import njit, prange

from .._kernels import block_offsets, data_loss, hidden_activation, l2_term, layer_offsets, matmul, times_slope
from ..ops.activations import activate
from ..ops.losses import output_activation, output_delta
from ._parallel import go_on, parallel_kernel, share, stopped


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
Results = namedtuple("Results", ["approx", "kinks", "scales", "counters"])
Results.__doc__ = """Where the kernels write: per entry the difference, its kink flag and the size of what was
subtracted (k,); counters: ``_parallel.Counters.buffer`` (entries finished per chunk, and the stop flag)."""


@njit(cache=True)
def group_params(indices, order, start, n, params):
    """params[:n] = the parameter indices of a group: indices[order[start:start + n]]."""
    for q in range(n):
        params[q] = indices[order[start + q]]


@njit(cache=True)
def store_group(order, start, n, values, flags, sizes, approx, kinks, scales):
    """A group's results (n,) written to its entries' positions order[start:start + n] of the outputs."""
    for q in range(n):
        approx[order[start + q]] = values[q]
        kinks[order[start + q]] = flags[q]
        scales[order[start + q]] = sizes[q]


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
        taken = w_plus - w_minus  # 0 only where the step cannot move w (the evaluators leave such entries out)
        approx[g] = dJ / taken if taken != 0.0 else np.nan
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


@parallel_kernel
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


# ------------------------------------------------------------ the point of the check
# J, backprop and the forward cache at the point, the numbers of ``_kernels.cost`` and ``_kernels.backward`` bit
# for bit: every product is ``_kernels.matmul`` applied row by row (each entry summed in the same order),
# against a transposed copy where the serial code reads a transpose, with every layer's rows cut into n_chunks
# runs for the threads (n_chunks <= ``_parallel.TICKS``). Every row reads the stop flag (``_parallel.Counters``):
# a wide layer's rows take seconds in all.
@njit(cache=True)
def layer_rows(theta, dims, l, A_prev, Z, A, drop, use_drop, hidden, start, stop, counters, c):
    """Rows [start, stop) of layer index l's forward pass: Z_l = W_l A_prev (+ b_l), and A_l = g(Z_l) on hidden
    layers (the output activation is the caller's, once all rows are in). Each row reads the stop flag in
    counters and ticks chunk c's slot; returns False, the rows unfinished, once the flag is up."""
    m = A_prev.shape[1]
    w_off, b_off = block_offsets(dims)
    off = layer_offsets(dims, m)
    n, n_prev = dims[l + 1], dims[l]
    W = theta[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
    b = theta[b_off[l]:b_off[l] + n]
    Zl = Z[off[l]:off[l + 1]].reshape(n, m)
    Al = A[off[l]:off[l + 1]].reshape(n, m)
    Dl = drop[off[l]:off[l + 1]].reshape(n, m) if use_drop else Zl
    hidden_layer = l < dims.shape[0] - 2
    for i in range(start, stop):
        if not go_on(counters, c):
            return False
        matmul(W[i:i + 1], A_prev, Zl[i:i + 1])
        if hidden_layer:
            hidden_activation(Zl[i:i + 1], b[i:i + 1], hidden, Dl[i:i + 1], use_drop, Al[i:i + 1])
        else:
            for e in range(m):
                Zl[i, e] += b[i]
    return True


@njit(cache=True)
def layer_output(dims, l, A, m):
    """Layer index l's activations A_l, (n_l, m), in the flat buffer A: the next layer's input."""
    off = layer_offsets(dims, m)
    return A[off[l]:off[l + 1]].reshape(dims[l + 1], m)


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def forward_cost(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, n_chunks, counters):
    """J at theta, with the forward cache in Z and A; NaN when stopped (counters: ``Counters.buffer``)."""
    L = dims.shape[0] - 1
    m = X.shape[1]
    off = layer_offsets(dims, m)
    A_prev = X
    for l in range(L):
        n = dims[l + 1]
        for c in prange(n_chunks):
            start, stop = share(c, n, n_chunks)
            layer_rows(theta, dims, l, A_prev, Z, A, drop, use_drop, hidden, start, stop, counters, c)
        if stopped(counters):
            return np.nan
        A_prev = layer_output(dims, l, A, m)
    nL = dims[L]
    output_activation(Z[off[L - 1]:off[L]].reshape(nL, m), output, A[off[L - 1]:off[L]].reshape(nL, m))
    return data_loss(Z[off[L - 1]:off[L]].reshape(nL, m), Y, output) + l2_term(theta, dims, lambd, m)


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def backprop(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, scratch, n_chunks,
             counters):
    """Backprop into ``grad`` from the forward cache Z and A (``forward_cost``); stops at the flag.

    buf1, buf2 : at least max(n_l) * m entries; scratch : at least max(max(n_l) * m, max(n_l * n_(l-1))).
    """
    L = dims.shape[0] - 1
    m = X.shape[1]
    w_off, b_off = block_offsets(dims)
    off = layer_offsets(dims, m)
    nL = dims[L]
    reg = lambd * (1.0 / m)
    # dZ of the layer at hand lives in buf1
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
        for c in prange(n_chunks):
            start, stop = share(c, n, n_chunks)
            for i in range(start, stop):
                if not go_on(counters, c):
                    break
                matmul(dZ[i:i + 1], A_prev_T, dW[i:i + 1])
                if reg != 0.0:
                    for j in range(n_prev):
                        dW[i, j] += reg * W[i, j]
                s = 0.0
                for e in range(m):
                    s += dZ[i, e]
                db[i] = s
        if stopped(counters):
            return
        if l > 0:
            dA = buf2[:n_prev * m].reshape(n_prev, m)
            W_T = scratch[:n * n_prev].reshape(n_prev, n)
            for c in prange(n_chunks):
                start, stop = share(c, n_prev, n_chunks)
                for j in range(start, stop):
                    if not go_on(counters, c):
                        break
                    for i in range(n):
                        W_T[j, i] = W[i, j]
            Zp = Z[off[l - 1]:off[l]].reshape(n_prev, m)
            Dp = drop[off[l - 1]:off[l]].reshape(n_prev, m) if use_drop else Zp
            for c in prange(n_chunks):
                start, stop = share(c, n_prev, n_chunks)
                for j in range(start, stop):
                    if not go_on(counters, c):
                        break
                    matmul(W_T[j:j + 1], dZ, dA[j:j + 1])
                    times_slope(dA[j:j + 1], Zp[j:j + 1], Dp[j:j + 1], use_drop, hidden)
            # copied, not swapped: with dZ rebound to the other buffer between parallel loops,
            # Numba 0.68 zeroed whole rows of the next dW (measured; the serial twin was right)
            buf1[:n_prev * m] = buf2[:n_prev * m]


def cost_and_gradient(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, scratch,
                      n_chunks, counters):
    """``forward_cost`` then ``backprop`` (on the kernel thread): J, backprop in ``grad``, the cache in Z and A.

    The numbers of ``_kernels.cost_and_backward``, bit for bit. n_chunks : the threads; counters :
    ``Counters.buffer``; J is NaN and grad unfinished once its flag is up.
    """
    J = forward_cost(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, n_chunks, counters)
    if counters[-1] == 0:
        backprop(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, scratch,
                 n_chunks, counters)
    return J

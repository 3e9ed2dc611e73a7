"""The linear-segment gradient check for piecewise-linear nets (relu, leaky_relu).

Like the kernels of ``_check``, this writes for every listed parameter index
p one centered difference ``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)``
(divided by the step actually taken) and a kink flag, bitwise the same for
any number of threads. Its cost per entry does not grow with the hidden
widths.

Layer indices are 0-based, as in ``_check``: layer index k is layer k + 1 of
the course, hidden layers are 0 .. L-2 and L-1 is the output layer.

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
exactly as the incremental kernel does (``_check.loss_change``), and J(+) - J(-)
is summed example by example.

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
example: the logit change s_t v_(i,t) and the exact loss change.
Memory: v and R hold (n_L + 1) * m floats per hidden unit.
"""
from collections import namedtuple

import numba
import numpy as np
from numba import njit, prange

from . import _check
from . import _kernels as K
from . import _validation as v
from ._check import activation_change, all_small, decode, gather_output, loss_change
from ._kernels import LEAKY_RELU, LEAKY_SLOPE, RELU, block_offsets, layer_offsets

MARGIN = 1e-4  # a step must stay this far (relative) inside its linear segment

# The read-only arrays every group reads: parameters and the unperturbed forward pass.
Cache = namedtuple("Cache", ["theta", "dims", "Z", "Dm", "A", "X", "Y", "out_act", "resid", "V", "R"])
Scratch = namedtuple("Scratch", ["delta", "column", "total", "kinked", "unsafe", "everyone", "examples", "active",
                                 "z0", "g0", "dmul", "dz", "change", "cur", "loss", "linear", "y", "act", "res"])


# ------------------------------------------------------------ directions
@njit(cache=True)
def hidden_offsets(dims):
    """Offsets of the hidden layers' units, each layer after the previous one (L - 1 + 1,)."""
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
def directions(theta, dims, m, hidden, use_drop, Z, Dm, V, R, bounds):
    """Fill V and R for the examples of every chunk bounds[c]:bounds[c + 1].

    V : flat, hidden layer l's block at ``direction_offsets(dims, m)[l]`` holds
        v_(i,t) at ((i m + t) n_L + k): how the logits move per unit change of A_l[i, t].
    R : flat like the hidden layers of Z, R[off[l] + i m + t] = max over later hidden
        units of |u| / |Z| (0 when l is the last hidden layer).
    Each example writes only its own entries.
    """
    L = dims.shape[0] - 1
    n_out = dims[L]
    w_off, _ = block_offsets(dims)
    off = layer_offsets(dims, m)
    hoff = hidden_offsets(dims)
    voff = direction_offsets(dims, m)
    width = widest_hidden(dims)
    slope = 0.0 if hidden == RELU else LEAKY_SLOPE
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
                    R[off[l] + i * m + t] = ratio[i]


# ------------------------------------------------------------ one group
@njit(cache=True)
def linear_group(params, cache, hidden, output, lambd, epsilon, use_drop, approx, kinks, unsafe_out, s):
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
    for g in range(n_group):
        w = theta[params[g]]
        delta[2 * g] = (w + epsilon) - w
        delta[2 * g + 1] = (w - epsilon) - w
        column[g] = decode(params[g], dims, w_off, b_off)[2]
    kinked, unsafe, total = s.kinked[:n_runs], s.unsafe[:n_group], s.total[:n_group]
    for run in range(n_runs):
        kinked[run] = 0
    for g in range(n_group):
        unsafe[g] = False
        total[g] = 0.0
    dz = s.dz[:m * n_runs]  # change of Z_l[i, t] per column
    for t in range(m):
        for g in range(n_group):
            j = column[g]
            if j < 0:
                a = 1.0
            elif l == 0:
                a = X[j, t]
            else:
                a = cache.A[off[l - 1] + j * m + t]
            dz[t * n_runs + 2 * g] = delta[2 * g] * a
            dz[t * n_runs + 2 * g + 1] = delta[2 * g + 1] * a
    active = s.active
    change = s.change[:m * n_runs]  # s_t: change of A_l[i, t] (of Z_L[i, t] for the output layer)
    if l == L - 1:
        for c in range(m * n_runs):
            change[c] = dz[c]
        for t in range(m):
            active[t] = True
    else:
        z0, g0, dmul = s.z0, s.g0, s.dmul
        row = off[l] + i * m
        for t in range(m):
            z0[t] = cache.Z[row + t]
            g0[t] = z0[t]  # not read for relu kinds
            dmul[t] = cache.Dm[row + t] if use_drop else 1.0
        activation_change(hidden, z0, g0, dmul, dz, 1.0, change, kinked, active, m, n_runs)
        limit = 1.0 - MARGIN
        for t in range(m):
            ratio = cache.R[row + t]
            if active[t] and ratio > 0.0:
                base = t * n_runs
                for run in range(n_runs):
                    step = abs(change[base + run])
                    if step != 0.0 and step * ratio >= limit:
                        unsafe[run // 2] = True
    examples = s.examples
    n_ex = 0
    for t in range(m):
        if active[t]:
            examples[n_ex] = t
            n_ex += 1
    if n_ex > 0:
        n_cols = n_ex * n_runs
        y = s.y[:n_out * n_ex].reshape(n_out, n_ex)
        act = s.act[:n_out * n_ex].reshape(n_out, n_ex)
        res = s.res[:n_out * n_ex].reshape(n_out, n_ex)
        gather_output(examples, n_ex, cache.Y, cache.out_act, cache.resid, y, act, res)
        cur = s.cur[:n_out * n_cols].reshape(n_out, n_cols)
        if l == L - 1:
            for k in range(n_out):
                for c in range(n_cols):
                    cur[k, c] = change[c] if k == i else 0.0
        else:
            vbase = direction_offsets(dims, m)[l] + i * m * n_out
            for a in range(n_ex):
                t = examples[a]
                src = change[t * n_runs:(t + 1) * n_runs]
                for k in range(n_out):
                    vk = cache.V[vbase + t * n_out + k]
                    out_t = cur[k, a * n_runs:(a + 1) * n_runs]
                    for run in range(n_runs):
                        out_t[run] = vk * src[run]
        loss = s.loss[:n_cols]
        series = all_small(cur, n_out, n_cols)
        loss_change(output, cur, act, y, res, n_out, n_ex, n_runs, loss, s.linear[:n_cols], series)
        for a in range(n_ex):
            base = a * n_runs
            for g in range(n_group):
                total[g] += loss[base + 2 * g] - loss[base + 2 * g + 1]
    for g in range(n_group):
        dJ = total[g] / m
        w = theta[params[g]]
        w_plus, w_minus = w + epsilon, w - epsilon
        if column[g] >= 0 and lambd != 0.0:
            dJ += lambd / (2.0 * m) * ((w_plus - w_minus) * (w_plus + w_minus))
        approx[g] = dJ / (w_plus - w_minus)
        kinks[g] = kinked[2 * g] + kinked[2 * g + 1] > 0
        unsafe_out[g] = unsafe[g]


@njit(cache=True)
def make_scratch(m, group_size, n_out):
    n_cols = 2 * group_size * m
    return Scratch(np.empty(2 * group_size), np.empty(group_size, np.int64), np.empty(group_size),
                   np.zeros(2 * group_size, np.int64), np.zeros(group_size, np.bool_), np.arange(m),
                   np.empty(m, np.int64), np.zeros(m, np.bool_), np.empty(m), np.empty(m), np.empty(m),
                   np.empty(n_cols), np.empty(n_cols), np.empty(n_out * n_cols), np.empty(n_cols),
                   np.empty(n_cols), np.empty(n_out * m), np.empty(n_out * m), np.empty(n_out * m))


@njit(cache=True, parallel=True, nogil=True)
def linear(cache, hidden, output, lambd, epsilon, use_drop, indices, order, groups, chunks, group_size,
           approx, kinks, unsafe, done):
    """Fill approx[q], kinks[q], unsafe[q] for p = indices[q] (groups and chunks as in ``_check.incremental``)."""
    m = cache.X.shape[1]
    n_out = cache.dims[cache.dims.shape[0] - 1]
    for c in prange(chunks.shape[0] - 1):
        scratch = make_scratch(m, group_size, n_out)
        params = np.empty(group_size, np.int64)
        values = np.empty(group_size)
        flags = np.zeros(group_size, np.bool_)
        risky = np.zeros(group_size, np.bool_)
        for g in range(chunks[c], chunks[c + 1]):
            start, n = groups[g], groups[g + 1] - groups[g]
            for q in range(n):
                params[q] = indices[order[start + q]]
            linear_group(params[:n], cache, hidden, output, lambd, epsilon, use_drop, values, flags, risky,
                         scratch)
            for q in range(n):
                approx[order[start + q]] = values[q]
                kinks[order[start + q]] = flags[q]
                unsafe[order[start + q]] = risky[q]
            done[c] += n


# ------------------------------------------------------------ driver
def _group_costs(dims, groups, group_rows, m, active):
    """Relative work of every group: its entries times (changing examples x n_L + m)."""
    sizes = np.diff(groups).astype(float)
    changing = np.concatenate((active.astype(float), np.full(dims[-1], float(m))))[group_rows]
    return sizes * (2.0 * (changing + 1.0) * dims[-1] + 2.0 * m) + 20.0


def linear_segment_check(net, X, Y, epsilon=1e-7, indices=None, dropout_seed=0, threads=None,
                         return_fallback=False):
    """Centered differences of a relu or leaky_relu Network's J by the linear-segment kernel.

    Parameters
    ----------
    net : Network
        hidden must be "relu" or "leaky_relu" (any output, lambd, keep_prob).
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m); for softmax also integer labels (m,)
    epsilon : float in (0, 1]
    indices : array of int, optional
        Entries of theta to check (default: all), each in [0, n_parameters).
    dropout_seed : int
        With keep_prob < 1, the seed of the fixed dropout masks (as in ``gradient_check``).
    threads : int, optional
        Numba threads for this call.
    return_fallback : bool
        Also return which entries took the incremental kernel.

    Returns
    -------
    approx : ndarray, shape (n_indices,)
        ``(J(theta + eps e_p) - J(theta - eps e_p)) / ((w + eps) - (w - eps))``.
    kinks : ndarray of bool, shape (n_indices,)
        The step moved some hidden pre-activation across 0.
    fallback : ndarray of bool, shape (n_indices,), only with return_fallback
        The step could cross a later kink, so the incremental kernel evaluated it.
    """
    from . import gradcheck
    from .network import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minnet.Network, got {type(net).__name__}")
    if net.hidden not in ("relu", "leaky_relu"):
        raise ValueError(f"the linear-segment check needs hidden='relu' or 'leaky_relu', got {net.hidden!r}")
    epsilon = v.real(epsilon, "epsilon", low=0.0, high=1.0, low_open=True)
    if threads is not None:
        threads = v.integer(threads, "threads", minimum=1)
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"threads must be <= {numba.config.NUMBA_NUM_THREADS} "
                             f"(Numba's thread pool on this machine), got {threads}")
    if indices is None:
        indices = np.arange(net.layout.size, dtype=np.int64)
    else:
        raw = np.asarray(indices)
        if raw.ndim != 1 or not (raw.size == 0 or np.issubdtype(raw.dtype, np.integer)):
            raise TypeError(f"indices must be a 1-D array of integers, got {raw.dtype} of shape {raw.shape}")
        indices = raw.astype(np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= net.layout.size):
            raise ValueError(f"indices must lie in [0, {net.layout.size}), got values from {indices.min()} "
                             f"to {indices.max()}")
    X, Y = net._check_XY(X, Y)
    m = X.shape[1]
    if net.uses_dropout and dropout_seed is None:
        gradcheck._refuse_random_dropout(net, X, Y)
    drop, use_drop = net._dropout(m, dropout_seed)
    dims, hidden, output = net._dims, net._hidden, net._output
    theta = net.theta.copy()
    Z, A = net._buffers(m)
    K.forward(theta, dims, X, hidden, output, drop, use_drop, Z, A)
    G, colmax, out_act, resid = _check.prepare(dims, X, Y, Z, A, hidden)
    n_hidden = int(sum(net.layer_dims[1:-1]))
    V = np.empty(n_hidden * m * net.layer_dims[-1])
    R = np.empty(n_hidden * m)
    cache = Cache(theta, dims, Z, drop, A, X, Y, out_act, resid, V, R)
    approx = np.empty(indices.size)
    kinks = np.zeros(indices.size, dtype=np.bool_)
    unsafe = np.zeros(indices.size, dtype=np.bool_)
    n_threads = threads or numba.get_num_threads()
    group_size = max(1, min(64, 4096 // m))
    units = Z.reshape(-1, m)[:n_hidden]
    active = np.sum(units > 0, axis=1) if net.hidden == "relu" else np.full(n_hidden, m)
    order, groups, rows = gradcheck._row_groups(net.layer_dims, indices, group_size)
    chunks = gradcheck._balanced_bounds(_group_costs(net.layer_dims, groups, rows, m, active), n_threads)
    done = np.zeros(chunks.size - 1, np.int64)

    def kernel():
        if n_hidden:
            bounds = gradcheck._balanced_bounds(np.ones(m), n_threads)
            directions(theta, dims, m, hidden, use_drop, Z, drop, V, R, bounds)
        linear(cache, hidden, output, net.lambd, epsilon, use_drop, indices, order, groups, chunks, group_size,
               approx, kinks, unsafe, done)

    gradcheck._run_kernel(kernel, n_threads, done, indices.size, False)
    if unsafe.any():  # steps that may cross a later kink: the general incremental kernel
        rest = np.flatnonzero(unsafe)
        sub = indices[rest]
        s_order, s_groups, s_rows = gradcheck._row_groups(net.layer_dims, sub, group_size)
        s_costs = gradcheck._group_costs(net.layer_dims, s_groups, s_rows, m, "incremental")
        s_chunks = gradcheck._balanced_bounds(s_costs, n_threads)
        s_done = np.zeros(s_chunks.size - 1, np.int64)
        values, flags = np.empty(sub.size), np.zeros(sub.size, dtype=np.bool_)

        def fallback():
            work = np.empty((s_chunks.size - 1, _check.work_size(_check.work_width(dims), m, group_size)))
            _check.incremental(theta, dims, hidden, output, net.lambd, epsilon, use_drop, Z, G, drop, A, X, Y,
                               colmax, out_act, resid, sub, s_order, s_groups, s_chunks, group_size, work, values,
                               flags, s_done)

        gradcheck._run_kernel(fallback, n_threads, s_done, sub.size, False)
        approx[rest], kinks[rest] = values, flags
    return (approx, kinks, unsafe) if return_fallback else (approx, kinks)

"""Parallel perturbation loops of the gradient check.

Both kernels take a list of parameter indices and chunk boundaries into it,
run a ``prange`` over the chunks (scratch is allocated once per chunk) and
write, for every listed index p, one centered difference
``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)`` and a kink flag.
Each iteration writes only its own output entries, so results do not depend
on the number of threads.

The incremental kernel reads an example-major copy of the forward cache:
for layer index k (0-based, layer k + 1 in course notation) the arrays
Zt, At and Dt hold (m, n_{k+1}) blocks at ``layer_offsets(dims, m)[k]``; Xt is
X.T (m, n_0); WT holds every W^T (n_{k}, n_{k+1}) at W's offset in theta;
Yt is Y.T (m, n_L) and Le the per-example losses of the unperturbed net.
"""
import numpy as np
from numba import njit, prange

from ._kernels import LEAKY_RELU, RELU, activate, block_offsets, example_loss, forward, layer_offsets


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


@njit(cache=True)
def example_major(dims, X, Y, theta, Z, A, drop, use_drop, output):
    """Build the example-major cache the incremental kernel reads (see module doc)."""
    L = dims.shape[0] - 1
    m = X.shape[1]
    off = layer_offsets(dims, m)
    w_off, b_off = block_offsets(dims)
    Zt = np.empty(off[L])
    At = np.empty(off[L])
    Dt = np.ones(off[L])
    for l in range(L):
        n = dims[l + 1]
        for i in range(n):
            for e in range(m):
                Zt[off[l] + e * n + i] = Z[off[l] + i * m + e]
                At[off[l] + e * n + i] = A[off[l] + i * m + e]
                if use_drop and l < L - 1:
                    Dt[off[l] + e * n + i] = drop[off[l] + i * m + e]
    WT = np.empty(theta.shape[0])
    for l in range(L):
        n, n_prev = dims[l + 1], dims[l]
        for i in range(n):
            for j in range(n_prev):
                WT[w_off[l] + j * n + i] = theta[w_off[l] + i * n_prev + j]
    Xt = np.ascontiguousarray(X.T)
    Yt = np.ascontiguousarray(Y.T)
    Le = np.empty(m)
    nL = dims[L]
    for e in range(m):
        Le[e] = example_loss(Zt[off[L - 1] + e * nL:off[L - 1] + (e + 1) * nL], Yt[e], output)
    return Zt, At, Dt, WT, Xt, Yt, Le


@njit(cache=True)
def crosses(z, z0, hidden):
    """True when a relu/leaky_relu pre-activation moved across 0 (a kink)."""
    return (hidden == RELU or hidden == LEAKY_RELU) and ((z > 0.0) != (z0 > 0.0))


@njit(cache=True)
def tail_loss(l, i, e, z_new, dims, hidden, output, use_drop, off, w_off, Zt, At, Dt, WT, Yt, Le,
              buf_a, buf_b):
    """Loss of example e when row i of layer index l has pre-activation z_new.

    Runs the forward pass of that one example from layer l to the output,
    starting from the cached values and carrying only the units that change.
    Returns (loss, kink).
    """
    L = dims.shape[0] - 1
    n = dims[l + 1]
    base = off[l] + e * n
    nL = dims[L]
    if l == L - 1:
        z = buf_a[:n]
        for r in range(n):
            z[r] = Zt[base + r]
        z[i] = z_new
        return example_loss(z, Yt[e], output), False
    kink = crosses(z_new, Zt[base + i], hidden)
    a = activate(z_new, hidden)
    if use_drop:
        a *= Dt[base + i]
    da = a - At[base + i]
    if da == 0.0:
        return Le[e], kink
    nn = dims[l + 2]
    z = buf_a[:nn]
    zb = off[l + 1] + e * nn
    wt = w_off[l + 1] + i * nn
    for r in range(nn):
        z[r] = Zt[zb + r] + WT[wt + r] * da
    in_a = True
    for k in range(l + 1, L - 1):
        n, nn = dims[k + 1], dims[k + 2]
        zb = off[k] + e * n
        nb = off[k + 1] + e * nn
        z_next = buf_b[:nn] if in_a else buf_a[:nn]
        for q in range(nn):
            z_next[q] = Zt[nb + q]
        for r in range(n):
            if crosses(z[r], Zt[zb + r], hidden):
                kink = True
            a = activate(z[r], hidden)
            if use_drop:
                a *= Dt[zb + r]
            d = a - At[zb + r]
            if d != 0.0:
                wt = w_off[k + 1] + r * nn
                for q in range(nn):
                    z_next[q] += WT[wt + q] * d
        z = z_next
        in_a = not in_a
    return example_loss(z[:nL], Yt[e], output), kink


@njit(cache=True)
def incremental_one(p, theta, dims, hidden, output, lambd, epsilon, use_drop, off, w_off, b_off,
                    Zt, At, Dt, WT, Xt, Yt, Le, buf_a, buf_b):
    """Centered difference for theta[p], reusing the cached forward pass."""
    m = Xt.shape[0]
    l, i, j = decode(p, dims, w_off, b_off)
    n_prev = dims[l]
    n = dims[l + 1]
    w = theta[p]
    w_plus = w + epsilon
    w_minus = w - epsilon
    d_plus = w_plus - w
    d_minus = w_minus - w
    total = 0.0
    kink = False
    for e in range(m):
        a = 1.0
        if j >= 0:
            a = Xt[e, j] if l == 0 else At[off[l - 1] + e * n_prev + j]
            if a == 0.0:
                continue  # Z is unchanged for this example, so is its loss
        z0 = Zt[off[l] + e * n + i]
        loss_plus, kink_plus = tail_loss(l, i, e, z0 + d_plus * a, dims, hidden, output, use_drop, off,
                                         w_off, Zt, At, Dt, WT, Yt, Le, buf_a, buf_b)
        loss_minus, kink_minus = tail_loss(l, i, e, z0 + d_minus * a, dims, hidden, output, use_drop, off,
                                           w_off, Zt, At, Dt, WT, Yt, Le, buf_a, buf_b)
        total += loss_plus - loss_minus
        kink = kink or kink_plus or kink_minus
    dJ = total / m
    if j >= 0 and lambd != 0.0:
        dJ += lambd / (2.0 * m) * ((w_plus - w_minus) * (w_plus + w_minus))
    return dJ / (2.0 * epsilon), kink


@njit(cache=True, parallel=True)
def incremental(theta, dims, hidden, output, lambd, epsilon, use_drop, Zt, At, Dt, WT, Xt, Yt, Le,
                indices, bounds, approx, kinks):
    """Fill approx[q], kinks[q] for p = indices[q]; chunk c is bounds[c]:bounds[c+1].

    Zt ... Le : the example-major cache from ``example_major``.
    """
    m = Xt.shape[0]
    off = layer_offsets(dims, m)
    w_off, b_off = block_offsets(dims)
    width = 0
    for k in range(dims.shape[0]):
        width = max(width, dims[k])
    for c in prange(bounds.shape[0] - 1):
        buf_a = np.empty(width)
        buf_b = np.empty(width)
        for q in range(bounds[c], bounds[c + 1]):
            value, kink = incremental_one(indices[q], theta, dims, hidden, output, lambd, epsilon, use_drop,
                                          off, w_off, b_off, Zt, At, Dt, WT, Xt, Yt, Le, buf_a, buf_b)
            approx[q] = value
            kinks[q] = kink


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
def full_kinks(dims, hidden, Z0, Z1, m):
    """True when any hidden pre-activation differs in sign between two passes."""
    if hidden != RELU and hidden != LEAKY_RELU:
        return False
    off = layer_offsets(dims, m)
    for k in range(off[dims.shape[0] - 2]):
        if (Z0[k] > 0.0) != (Z1[k] > 0.0):
            return True
    return False


@njit(cache=True, parallel=True)
def full(theta, dims, X, Y, hidden, output, lambd, epsilon, drop, use_drop, Z, A,
         indices, bounds, approx, kinks):
    """The notes' algorithm: two whole forward passes per listed parameter.

    J(+) - J(-) is taken term by term (per example, per squared weight), the
    same summation the incremental kernel uses, so the two differ only by the
    rounding of the forward values.
    """
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
            for e in range(m):
                total += loss_plus[e] - loss_minus[e]
            l2 = 0.0
            for k in range(n_w):
                l2 += l2_plus[k] - l2_minus[k]
            approx[q] = (total / m + lambd / (2.0 * m) * l2) / (2.0 * epsilon)
            kinks[q] = full_kinks(dims, hidden, Z, Zp, m) or full_kinks(dims, hidden, Z, Zm, m)


@njit(cache=True)
def l2_terms(theta, dims, w_off, b_off, out):
    """Write the squared weights, W1 then W2 ..., into out; return their count."""
    k = 0
    for l in range(dims.shape[0] - 1):
        for t in range(w_off[l], b_off[l]):
            out[k] = theta[t] * theta[t]
            k += 1
    return k

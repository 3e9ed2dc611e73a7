"""The full kernel, the notes' algorithm: two whole forward passes per entry, in parallel over the entries.

Shares the conventions of ``_point`` and its row-by-row forward pass (which reads the stop flag every row);
imports the kernels' layouts, the registries and the runner's flag.
"""
import numpy as np
from numba import njit, prange

from .._kernels import block_offsets, layer_offsets
from ..ops.activations import piecewise
from ..ops.losses import example_loss, output_activation
from ._parallel import parallel_kernel, stopped
from ._point import decode, layer_output, layer_rows


@njit(cache=True)
def full_losses(theta, dims, X, Y, hidden, output, drop, use_drop, Z, A, losses, z, y, counters, c):
    """Whole forward pass (``_kernels.forward``'s numbers, bit for bit, row by row); per-example losses into
    ``losses`` (m,). Every row reads the stop flag in counters (chunk c's ticks): once it is up, the losses
    are not written."""
    L = dims.shape[0] - 1
    m = X.shape[1]
    A_prev = X
    for l in range(L):
        if not layer_rows(theta, dims, l, A_prev, Z, A, drop, use_drop, hidden, 0, dims[l + 1], counters, c):
            return
        A_prev = layer_output(dims, l, A, m)
    nL = dims[L]
    base = layer_offsets(dims, m)[L - 1]
    output_activation(Z[base:base + nL * m].reshape(nL, m), output, A[base:base + nL * m].reshape(nL, m))
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


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def full(point, hidden, output, lambd, epsilon, use_drop, indices, bounds, results):
    """The notes' algorithm: two whole forward passes per listed parameter p = indices[q], into ``results`` at q.

    point : ``Point`` (theta, dims, X, Y, drop, Z, A are read); results : ``Results``.
    J(+) - J(-) is taken term by term (per example, per squared weight), the
    same summation the incremental kernel uses, so the two differ only by the
    rounding of the forward values; of the squared weights only the perturbed
    one's differs (the others are the same numbers in both, their terms exactly
    0), so that one is all the L2 sum holds. Chunk c of ``bounds`` counts its finished
    entries in counters[c] and stops at its next row once the stop flag is up.
    """
    theta, dims, X, Y, drop, Z = point.theta, point.dims, point.X, point.Y, point.drop, point.Z
    approx, kinks, scales, counters = results
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
        for q in range(bounds[c], bounds[c + 1]):
            if stopped(counters):
                break
            p = indices[q]
            w = local[p]
            local[p] = w + epsilon
            full_losses(local, dims, X, Y, hidden, output, drop, use_drop, Zp, Ap, loss_plus, z, y, counters, c)
            local[p] = w - epsilon
            full_losses(local, dims, X, Y, hidden, output, drop, use_drop, Zm, Am, loss_minus, z, y, counters, c)
            local[p] = w
            if stopped(counters):
                break
            total = 0.0
            subtracted = 0.0
            for e in range(m):
                total += loss_plus[e] - loss_minus[e]
                subtracted += abs(loss_plus[e]) + abs(loss_minus[e])
            l2 = 0.0
            l2_size = 0.0
            if decode(p, dims, w_off, b_off)[2] >= 0:  # a weight: its square is the one term that differs
                plus_sq, minus_sq = (w + epsilon) * (w + epsilon), (w - epsilon) * (w - epsilon)
                l2 += plus_sq - minus_sq
                if plus_sq != minus_sq:
                    l2_size += plus_sq + minus_sq
            taken = (w + epsilon) - (w - epsilon)  # 0 only where the step cannot move w (left out upstream)
            approx[q] = (total / m + lambd / (2.0 * m) * l2) / taken if taken != 0.0 else np.nan
            scales[q] = subtracted / m + lambd / (2.0 * m) * l2_size
            kinks[q] = (full_kinks(dims, hidden, Z, Zp, m, drop, use_drop) or
                        full_kinks(dims, hidden, Z, Zm, m, drop, use_drop))
            counters[c] += 1

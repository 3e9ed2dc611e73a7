"""The full kernel, the notes' algorithm: two whole forward passes per entry, in parallel over the entries.

Shares the conventions of ``_point``; imports the forward pass, the registries' losses and the runner's flag.
"""
import numpy as np
from numba import njit, prange

from .._kernels import NO_BLAS, block_offsets, forward_with, layer_offsets
from ..ops.activations import piecewise
from ..ops.losses import example_loss
from ._parallel import parallel_kernel, stopped


@njit(cache=True)
def full_losses(theta, dims, X, Y, hidden, output, drop, use_drop, Z, A, losses, z, y):
    """Whole forward pass; per-example losses into ``losses`` (m,)."""
    forward_with(theta, dims, X, hidden, output, drop, use_drop, Z, A, NO_BLAS)
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


@parallel_kernel
@njit(cache=True, parallel=True, nogil=True)
def full(point, hidden, output, lambd, epsilon, use_drop, indices, bounds, results):
    """The notes' algorithm: two whole forward passes per listed parameter p = indices[q], into ``results`` at q.

    point : ``Point`` (theta, dims, X, Y, drop, Z, A are read); results : ``Results``.
    J(+) - J(-) is taken term by term (per example, per squared weight), the
    same summation the incremental kernel uses, so the two differ only by the
    rounding of the forward values. Chunk c of ``bounds`` counts its finished
    entries in counters[c] and stops at its next entry once the stop flag is up.
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
        l2_plus = np.empty(theta.shape[0])
        l2_minus = np.empty(theta.shape[0])
        for q in range(bounds[c], bounds[c + 1]):
            if stopped(counters):
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
            counters[c] += 1


@njit(cache=True)
def l2_terms(theta, dims, w_off, b_off, out):
    """Write the squared weights, W1 then W2 ..., into out; return their count."""
    k = 0
    for l in range(dims.shape[0] - 1):
        for t in range(w_off[l], b_off[l]):
            out[k] = theta[t] * theta[t]
            k += 1
    return k

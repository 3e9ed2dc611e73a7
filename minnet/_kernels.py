"""Numba kernels: forward pass, cost, backprop, dropout masks, a training epoch, and the stop flag they read.
Imports only the registries (``minnet.ops``); must not import the network or the check.

Pure functions of arrays and scalars (``train_epoch`` takes them in a few named
bundles: `Model`, `Optimizer`, `Plan`); nothing here validates. Activations
and outputs travel as integer codes (``minnet.ops``: the registries, which
hold all their math). Parameters are
the flat vector theta (W1, b1, W2, b2, ..., row-major) and ``dims`` holds
layer_dims. Per-layer arrays (Z, A, dropout multipliers) live in flat
buffers: layer l (1-based) occupies ``n_l * m`` entries after layers 1..l-1.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from .ops.activations import activate, activate_grad, left_slope, piecewise
from .ops.losses import example_loss, output_activation, output_delta

OPTIMIZERS = ("gd", "momentum", "adam")


# ---------------------------------------------------------- the stop flag
# Long kernels (a training epoch, the check's kernels) read a stop flag that another thread raises (Ctrl-C):
# the last entry of an int64 array (the check's ``Counters`` keep their counts in front of it). These plain
# loops keep the read in the loop (their stores may alias the flag's array, and ``product`` may call BLAS);
# the check's prange loops, whose arguments the compiler takes as unaliased, also store a tick (``_parallel``).


def stop_flags():
    """A fresh flag array for the kernels: (1,), 0 until a stop is asked for."""
    return np.zeros(1, np.int64)


@njit(cache=True)
def stopped(flags):
    """In a kernel: True once the flag (the last entry of ``flags``) is up."""
    return flags[flags.shape[0] - 1] != 0


# ---------------------------------------------------------- matrix products
# Two ways to multiply. Hand loops (innermost index walking contiguous
# memory) are what forward and backward use, so that the gradient check,
# which calls them from its own parallel threads, never starts BLAS threads.
# Training uses BLAS (SciPy's, through Numba's np.dot) for every product of
# at least BLAS_FROM multiply-adds: measured on one core, the library call is
# 3-5x faster from about 1,000 multiply-adds up (a 10 x 16 by 16 x 64
# product: 0.35 us against 1.4 us), and the loops win only below a few hundred.
BLAS_FROM = 512
NO_BLAS = 1 << 62


@njit(cache=True)
def matmul(A, B, out):
    """out = A @ B. A (n, p), B (p, m), out (n, m)."""
    n, p = A.shape
    m = B.shape[1]
    for i in range(n):
        for e in range(m):
            out[i, e] = 0.0
        for k in range(p):
            a = A[i, k]
            if a != 0.0:
                for e in range(m):
                    out[i, e] += a * B[k, e]


@njit(cache=True)
def matmul_tn(A, B, out):
    """out = A.T @ B. A (p, n), B (p, m), out (n, m)."""
    p, n = A.shape
    m = B.shape[1]
    out[:, :] = 0.0
    for k in range(p):
        for i in range(n):
            a = A[k, i]
            if a != 0.0:
                for e in range(m):
                    out[i, e] += a * B[k, e]


@njit(cache=True)
def matmul_nt(A, B, out, scratch):
    """out = A @ B.T. A (n, m), B (p, m), out (n, p); scratch holds >= m * p floats."""
    n, m = A.shape
    p = B.shape[0]
    Bt = scratch[:m * p].reshape(m, p)
    for k in range(p):
        for e in range(m):
            Bt[e, k] = B[k, e]
    for i in range(n):
        for k in range(p):
            out[i, k] = 0.0
        for e in range(m):
            a = A[i, e]
            if a != 0.0:
                for k in range(p):
                    out[i, k] += a * Bt[e, k]


@njit(cache=True)
def product(A, B, out, blas_from):
    """out = A @ B (A (n, p), B (p, m)): BLAS when n * p * m >= blas_from, else hand loops."""
    if A.shape[0] * A.shape[1] * B.shape[1] >= blas_from:
        np.dot(A, B, out)
    else:
        matmul(A, B, out)


@njit(cache=True)
def product_tn(A, B, out, blas_from):
    """out = A.T @ B (A (p, n), B (p, m)), chosen like ``product``."""
    if A.shape[0] * A.shape[1] * B.shape[1] >= blas_from:
        np.dot(A.T, B, out)
    else:
        matmul_tn(A, B, out)


@njit(cache=True)
def product_nt(A, B, out, scratch, blas_from):
    """out = A @ B.T (A (n, m), B (p, m)), chosen like ``product``; scratch as for matmul_nt."""
    if A.shape[0] * A.shape[1] * B.shape[0] >= blas_from:
        np.dot(A, B.T, out)
    else:
        matmul_nt(A, B, out, scratch)


# ---------------------------------------------------------------- layouts
@njit(cache=True)
def block_offsets(dims):
    """Offsets of W_l and b_l in theta, l = 1..L (index l - 1)."""
    L = dims.shape[0] - 1
    w_off = np.empty(L, np.int64)
    b_off = np.empty(L, np.int64)
    off = 0
    for l in range(L):
        w_off[l] = off
        off += dims[l + 1] * dims[l]
        b_off[l] = off
        off += dims[l + 1]
    return w_off, b_off


@njit(cache=True)
def layer_offsets(dims, m):
    """Offsets of layer l's (n_l, m) array in a flat per-layer buffer."""
    L = dims.shape[0] - 1
    off = np.empty(L + 1, np.int64)
    off[0] = 0
    for l in range(L):
        off[l + 1] = off[l] + dims[l + 1] * m
    return off


# ---------------------------------------------------------------- dropout
@njit(cache=True)
def draw_dropout(dims, m, keep_probs, drop):
    """Fill ``drop`` with inverted-dropout multipliers D_l / keep_prob_l.

    Uses Numba's generator, seeded by the caller with ``seed_rng``. Hidden
    layers 1..L-1 only, in layer order, each (n_l, m) row-major. A unit is
    kept when a uniform draw is below keep_prob_l.
    """
    off = layer_offsets(dims, m)
    for l in range(dims.shape[0] - 2):
        kp = keep_probs[l]
        for k in range(off[l], off[l + 1]):
            drop[k] = 1.0 / kp if np.random.random() < kp else 0.0


@njit(cache=True)
def seed_rng(seed):
    np.random.seed(seed)


# ---------------------------------------------------------------- forward
def forward(theta, dims, X, hidden, output, drop, use_drop, Z, A):
    """Forward pass over all layers (called from Python).

    X : (n_0, m). Fills Z_l (pre-activations) and A_l (activations, with
    dropout multipliers on hidden layers when use_drop) in the flat buffers
    Z and A. A_L is the output layer's activation (``losses.output_activation``).
    Hand-loop products only: ``forward_with`` with an int64 ``NO_BLAS`` and a
    flag array, the specialization training compiles too (a literal would compile another).
    """
    forward_with(theta, dims, X, hidden, output, drop, use_drop, Z, A, np.int64(NO_BLAS), stop_flags())


@njit(cache=True)
def forward_with(theta, dims, X, hidden, output, drop, use_drop, Z, A, blas_from, stop=None):
    """``forward`` whose products of >= blas_from multiply-adds go to BLAS.

    stop : a flag array (``stop_flags``) read before every layer: once it is up the pass returns unfinished.
    """
    L = dims.shape[0] - 1
    m = X.shape[1]
    w_off, b_off = block_offsets(dims)
    off = layer_offsets(dims, m)
    A_prev = X
    for l in range(L):
        if stop is not None:
            if stopped(stop):
                return
        n, n_prev = dims[l + 1], dims[l]
        W = theta[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
        b = theta[b_off[l]:b_off[l] + n]
        Zl = Z[off[l]:off[l + 1]].reshape(n, m)
        Al = A[off[l]:off[l + 1]].reshape(n, m)
        product(W, A_prev, Zl, blas_from)
        if l < L - 1:
            hidden_activation(Zl, b, hidden, drop[off[l]:off[l + 1]].reshape(n, m) if use_drop else Zl,
                              use_drop, Al)
        else:
            for i in range(n):
                bi = b[i]
                for e in range(m):
                    Zl[i, e] += bi
            output_activation(Zl, output, Al)
        A_prev = Al


@njit(cache=True)
def hidden_activation(Zl, b, hidden, Dl, use_drop, Al):
    """Zl += b (per row); Al = g(Zl), times the dropout multipliers Dl when use_drop.

    One pass, with a loop of its own for piecewise-linear activations (relu's vectorizes).
    """
    n, m = Zl.shape
    kinked = piecewise(hidden)
    slope = left_slope(hidden) if kinked else 0.0
    for i in range(n):
        bi = b[i]
        if kinked:
            for e in range(m):
                z = Zl[i, e] + bi
                Zl[i, e] = z
                Al[i, e] = z if z > 0.0 else slope * z
        else:
            for e in range(m):
                z = Zl[i, e] + bi
                Zl[i, e] = z
                Al[i, e] = activate(z, hidden)
        if use_drop:
            for e in range(m):
                Al[i, e] *= Dl[i, e]


@njit(cache=True)
def data_loss(ZL, Y, output):
    """Mean over examples of the per-example loss. ZL, Y : (n_L, m)."""
    n, m = ZL.shape
    z = np.empty(n)
    y = np.empty(n)
    total = 0.0
    for e in range(m):
        for k in range(n):
            z[k] = ZL[k, e]
            y[k] = Y[k, e]
        total += example_loss(z, y, output)
    return total / m


@njit(cache=True)
def l2_term(theta, dims, lambd, m):
    """lambd / (2m) * sum_l ||W_l||_F^2."""
    if lambd == 0.0:
        return 0.0
    w_off, b_off = block_offsets(dims)
    s = 0.0
    for l in range(dims.shape[0] - 1):
        for k in range(w_off[l], b_off[l]):
            s += theta[k] * theta[k]
    return lambd / (2.0 * m) * s


def cost(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A):
    """J = mean loss + L2 term; also leaves the forward cache in Z and A (called from Python)."""
    forward(theta, dims, X, hidden, output, drop, use_drop, Z, A)
    m = X.shape[1]
    start = int(np.sum(dims[1:-1])) * m  # the output layer's rows in the flat buffer
    ZL = Z[start:start + dims[-1] * m].reshape(dims[-1], m)
    return data_loss(ZL, Y, output) + l2_term(theta, dims, lambd, m)


# --------------------------------------------------------------- backward
def backward(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, buf3):
    """Backprop into ``grad`` (theta's layout) from the cache of ``forward`` (called from Python).

    dZ_L from the output's entry (``losses.output_delta``); dW_l = dZ_l A_{l-1}^T + lambd/m W_l;
    db_l = sum over examples of dZ_l; dZ_{l-1} = (W_l^T dZ_l) * D_{l-1}/keep_prob * g'(Z_{l-1}).
    buf1, buf2, buf3 : scratch of at least max(n_l) * m entries.
    Hand-loop products only: ``backward_with`` with an int64 ``NO_BLAS`` and a flag array (see ``forward``).
    """
    backward_with(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, buf3,
                  np.int64(NO_BLAS), stop_flags())


def cost_and_backward(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, buf3):
    """``cost`` then ``backward``: J, with backprop in ``grad`` and the forward cache in Z and A."""
    J = cost(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A)
    backward(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, buf3)
    return J


@njit(cache=True)
def backward_with(theta, dims, X, Y, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, buf3, blas_from,
                  stop=None):
    """``backward`` whose products of >= blas_from multiply-adds go to BLAS; stop as in ``forward_with``."""
    L = dims.shape[0] - 1
    m = X.shape[1]
    w_off, b_off = block_offsets(dims)
    off = layer_offsets(dims, m)
    nL = dims[L]
    dZ = buf1[:nL * m].reshape(nL, m)
    AL = A[off[L - 1]:off[L]].reshape(nL, m)
    output_delta(output, AL, Y, m, dZ)
    reg = lambd * (1.0 / m)
    in_buf1 = True
    for l in range(L - 1, -1, -1):
        if stop is not None:
            if stopped(stop):
                return
        n, n_prev = dims[l + 1], dims[l]
        W = theta[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
        dW = grad[w_off[l]:w_off[l] + n * n_prev].reshape(n, n_prev)
        db = grad[b_off[l]:b_off[l] + n]
        if l == 0:
            A_prev = X
        else:
            A_prev = A[off[l - 1]:off[l]].reshape(n_prev, m)
        product_nt(dZ, A_prev, dW, buf3, blas_from)
        if reg != 0.0:
            for i in range(n):
                for j in range(n_prev):
                    dW[i, j] += reg * W[i, j]
        if n * m >= blas_from:
            np.dot(dZ, np.ones(m), db)
        else:
            for i in range(n):
                s = 0.0
                for e in range(m):
                    s += dZ[i, e]
                db[i] = s
        if l > 0:
            target = buf2 if in_buf1 else buf1
            in_buf1 = not in_buf1
            dA = target[:n_prev * m].reshape(n_prev, m)
            product_tn(W, dZ, dA, blas_from)
            Zp = Z[off[l - 1]:off[l]].reshape(n_prev, m)
            times_slope(dA, Zp, drop[off[l - 1]:off[l]].reshape(n_prev, m) if use_drop else Zp, use_drop, hidden)
            dZ = dA


@njit(cache=True)
def times_slope(dA, Zp, Dp, use_drop, hidden):
    """dA *= g'(Zp), times the dropout multipliers Dp when use_drop; all (n, m).

    A loop of its own for piecewise-linear activations, whose slopes need no
    call (so that relu's vectorizes); the others call the registry's g'.
    """
    n, m = dA.shape
    kinked = piecewise(hidden)
    slope = left_slope(hidden) if kinked else 0.0
    for i in range(n):
        if kinked and use_drop:
            for e in range(m):
                dA[i, e] *= Dp[i, e] * (1.0 if Zp[i, e] > 0.0 else slope)
        elif kinked:
            for e in range(m):
                dA[i, e] *= 1.0 if Zp[i, e] > 0.0 else slope
        elif use_drop:
            for e in range(m):
                dA[i, e] *= Dp[i, e] * activate_grad(Zp[i, e], hidden)
        else:
            for e in range(m):
                dA[i, e] *= activate_grad(Zp[i, e], hidden)


# --------------------------------------------------------------- training
MAX_FLOAT = 1.7976931348623157e308


# error_model="numpy": a float division needs no zero test, so the loops vectorize
@njit(cache=True, error_model="numpy")
def update(theta, grad, optimizer, lr, beta, beta1, beta2, eps, t, v, s, prev):
    """One optimizer step on the flat theta; t is the 1-based step count.

    prev receives theta as it was before the step. Adam uses the bias-corrected
    moments, ``theta -= lr / c1 * v / (sqrt(s) * (1 / sqrt(c2)) + eps)`` with
    ``c_i = 1 - beta_i ** t``: one division and one square root per parameter,
    which is what the step costs. Returns True when every updated parameter is finite.
    """
    n = theta.shape[0]
    bad = 0
    if optimizer == 0:
        for k in range(n):
            old = theta[k]
            prev[k] = old
            new = old - lr * grad[k]
            theta[k] = new
            bad |= not (abs(new) <= MAX_FLOAT)
    elif optimizer == 1:
        for k in range(n):
            vk = beta * v[k] + (1.0 - beta) * grad[k]
            v[k] = vk
            old = theta[k]
            prev[k] = old
            new = old - lr * vk
            theta[k] = new
            bad |= not (abs(new) <= MAX_FLOAT)
    else:
        step = lr / (1.0 - beta1 ** t)
        scale = 1.0 / np.sqrt(1.0 - beta2 ** t)
        for k in range(n):
            g = grad[k]
            vk = beta1 * v[k] + (1.0 - beta1) * g
            sk = beta2 * s[k] + (1.0 - beta2) * g * g
            v[k] = vk
            s[k] = sk
            old = theta[k]
            prev[k] = old
            new = old - step * vk / (np.sqrt(sk) * scale + eps)
            theta[k] = new
            bad |= not (abs(new) <= MAX_FLOAT)
    return bad == 0


@njit(cache=True)
def gather_columns(XT, Y, rows, Xb, Yb):
    """Xb[:, e] = XT[rows[e]], Yb[:, e] = Y[:, rows[e]]: a mini-batch, 8 examples at a time.

    Reading whole rows of XT and writing 8 neighbouring columns of Xb keeps
    both sides in long runs of memory.
    """
    n_x = XT.shape[1]
    mb = rows.shape[0]
    for e0 in range(0, mb, 8):
        e1 = min(e0 + 8, mb)
        for k in range(n_x):
            for e in range(e0, e1):
                Xb[k, e] = XT[rows[e], k]
    for k in range(Y.shape[0]):
        for e in range(mb):
            Yb[k, e] = Y[k, rows[e]]


class Model(NamedTuple):
    """What ``train_epoch`` trains: the network's layout and its training-time options."""

    dims: np.ndarray
    """layer_dims, int64 (L + 1,)."""
    hidden: int
    """Code of the hidden activation (``minnet.ops.activations``)."""
    output: int
    """Code of the output (``minnet.ops.losses``)."""
    lambd: float
    """L2 strength."""
    keep_probs: np.ndarray
    """Keep probabilities, float64 (L - 1,), one per hidden layer."""
    use_drop: bool
    """Whether dropout masks are drawn and applied."""


class Optimizer(NamedTuple):
    """How ``train_epoch`` steps: the optimizer's code and coefficients, and its state, updated in place."""

    code: int
    """Index in OPTIMIZERS: 0 gd, 1 momentum, 2 adam."""
    lr: float
    beta: float
    """Momentum's coefficient."""
    beta1: float
    beta2: float
    eps: float
    """Adam's coefficients."""
    v: np.ndarray
    """First moment (momentum's velocity), float64 (n_parameters,)."""
    s: np.ndarray
    """Adam's second moment, float64 (n_parameters,)."""
    prev: np.ndarray
    """theta before the latest step, float64 (n_parameters,)."""


class Plan(NamedTuple):
    """One epoch's order of the examples and its dropout seed."""

    perm: np.ndarray
    """Order of the examples, int64 (m,)."""
    batch_size: int
    seed: int
    """Seeds Numba's generator, which draws the dropout masks."""


@njit(cache=True, nogil=True)
def train_epoch(theta, XT, Y, model, optimizer, plan, t, blas_from=BLAS_FROM, stop=None):
    """One epoch of mini-batch training, entirely compiled.

    theta : (n_parameters,), updated in place. XT : (m, n_0), the training
    inputs X transposed (C order), so that a mini-batch gathers whole rows;
    Y : (n_L, m). ``model`` is a `Model`, ``optimizer`` an `Optimizer` (its
    arrays updated in place), ``plan`` a `Plan`; t is the number of steps taken
    before this epoch. Dropout masks are fresh for every mini-batch, drawn
    from Numba's generator seeded with ``plan.seed``.
    Products of at least ``blas_from`` multiply-adds run in BLAS (with its
    own threads; a fixed thread count gives the same result bit for bit), the
    others in hand loops.
    When a cost is not finite the epoch stops and theta goes back to
    ``optimizer.prev``, the last parameters whose cost was finite.
    stop : int64 (2,) or None: [steps taken, flag]. The flag is read before
    every mini-batch and between the layers of its passes; once it is up the
    epoch returns with theta at its last finished step (a step begun is
    dropped before its update). After every step the kernel writes the step
    count into stop[0], which thus always says how many steps theta holds.
    Releases the GIL, so that another thread can raise the flag meanwhile.
    Returns (mean cost of the mini-batches finished, weighted by batch size: the
    epoch's cost when it finished, NaN when none did; finite flag; step count).
    """
    dims, hidden, output, lambd, keep_probs, use_drop = model
    code, lr, beta, beta1, beta2, eps, v, s, prev = optimizer
    perm, batch_size, seed = plan
    m, n_x = XT.shape
    nL = Y.shape[0]
    L = dims.shape[0] - 1
    Z, A, drop, grad, buf1, buf2, buf3, Xb_all, Yb_all = epoch_workspace(dims, n_x, nL, theta.shape[0], batch_size)
    seed_rng(seed)
    total = 0.0
    done = 0  # examples of the finished steps
    for start in range(0, m, batch_size):
        if stop is not None:
            if stopped(stop):
                break
        mb = min(batch_size, m - start)
        Xb = Xb_all[:n_x * mb].reshape(n_x, mb)
        Yb = Yb_all[:nL * mb].reshape(nL, mb)
        gather_columns(XT, Y, perm[start:start + mb], Xb, Yb)
        if use_drop:
            draw_dropout(dims, mb, keep_probs, drop)
        forward_with(theta, dims, Xb, hidden, output, drop, use_drop, Z, A, blas_from, stop)
        if stop is not None:
            if stopped(stop):
                break
        off = layer_offsets(dims, mb)
        J = data_loss(Z[off[L - 1]:off[L]].reshape(nL, mb), Yb, output) + l2_term(theta, dims, lambd, mb)
        if not np.isfinite(J):
            if t > 0:
                copy_into(theta, prev)
            return total / m, False, t
        backward_with(theta, dims, Xb, Yb, hidden, output, lambd, drop, use_drop, Z, A, grad, buf1, buf2, buf3,
                      blas_from, stop)
        if stop is not None:
            if stopped(stop):
                break
        total += J * mb
        t += 1
        done += mb
        if not update(theta, grad, code, lr, beta, beta1, beta2, eps, t, v, s, prev):
            copy_into(theta, prev)
            return total / m, False, t
        if stop is not None:
            stop[0] = t
    return (total / done if done > 0 else np.nan), True, t


@njit(cache=True)
def copy_into(out, values):
    """out[i] = values[i] for every i of two arrays of one length: ``out[:] = values`` without the shape check
    whose error message Numba compiles (1.6 s of the first run's compiling)."""
    for i in range(out.shape[0]):
        out[i] = values[i]


@njit(cache=True)
def epoch_workspace(dims, n_x, n_y, n_parameters, batch_size):
    """The buffers of one epoch, for mini-batches of at most batch_size examples.

    Z, A and drop (per-layer, flat), grad (theta's layout), buf1..buf3
    (backward's scratch, max(n_l) * batch_size each), and the mini-batch
    Xb_all (n_x * batch_size) and Yb_all (n_y * batch_size).
    """
    L = dims.shape[0] - 1
    width = 0
    for l in range(L + 1):
        width = max(width, dims[l])
    size = 0
    for l in range(1, L + 1):
        size += dims[l] * batch_size
    return (np.empty(size), np.empty(size), np.empty(size), np.empty(n_parameters), np.empty(width * batch_size),
            np.empty(width * batch_size), np.empty(width * batch_size), np.empty(n_x * batch_size),
            np.empty(n_y * batch_size))

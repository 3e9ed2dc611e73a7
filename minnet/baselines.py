"""Reference gradient checks that minnet's own check is timed against (``minnet bench``).

Owns the plain NumPy loop and the PyTorch and JAX peers. Must not import PyTorch or JAX at module level
(they are never dependencies: each is imported inside its own function), nor minnet's check.
"""
# ``numpy_loop_check`` is the course's algorithm written plainly in NumPy:
# perturb one entry of theta in place, run two full forward passes, restore
# it, move on.  ``torch_gradcheck`` hands the same cost to
# ``torch.autograd.gradcheck`` in float64.  Both see exactly the cost that
# ``Network.cost`` computes (same loss, same L2 term and, for a network with
# dropout, the same fixed masks as ``gradient_check(..., dropout_seed=...)``).
#
# ``jax_fd_check`` computes the same centered differences as the NumPy loop
# with JAX: the cost is jit-compiled and ``vmap``-ed over chunks of unit
# directions, so one call evaluates J(theta +- eps e_p) for many p at once.
#
# PyTorch and JAX are never dependencies of minnet: each is imported inside
# its own function only, which raises ``ImportError`` when it is missing.
#
# Both leave the libraries' thread settings alone by default.  ``minnet
# bench`` passes ``blas_threads=1`` and ``torch_threads=1``: the matrices here
# are small, so extra BLAS or OpenMP threads do not make a forward pass
# faster, and on a busy machine their synchronization can slow the loops down
# by orders of magnitude (measured: the NumPy loop on the digits workload
# took 30-50 s instead of 0.3 s while other processes ran), which makes
# timings meaningless.
# Limiting NumPy's BLAS uses ``threadpoolctl`` when it is installed (it comes
# with scikit-learn) and is skipped otherwise.
#
# Each function takes (net, X, Y) by position and its options by keyword only.
import contextlib
import functools

import numpy as np

from .ops.activations import ACTIVATIONS
from .ops.losses import OUTPUTS

__all__ = ["numpy_cost", "numpy_loop_check", "torch_gradcheck", "torch_available", "jax_fd_check",
           "jax_available"]


@contextlib.contextmanager
def _blas_threads(n):
    """Limit NumPy's BLAS to n threads for the block (no-op for None or without threadpoolctl)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def _inputs(net, X, Y, dropout_seed):
    """Validated X, Y (one-hot for softmax) and the dropout multipliers D_l / keep_prob_l."""
    from .network import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minnet.Network, got {type(net).__name__}")
    X, Y = net._check_XY(X, Y)
    scales = None
    if net.uses_dropout:
        if dropout_seed is None:
            raise ValueError("a network with dropout needs a dropout_seed (fixed masks) to be checked")
        masks = net.dropout_masks(X.shape[1], dropout_seed)
        scales = [masks[f"D{l}"] / net.keep_prob[l - 1] for l in range(1, net.L)]
    return X, Y, scales


def _views(theta, dims):
    views, i = [], 0
    for l in range(1, len(dims)):
        n, n_prev = dims[l], dims[l - 1]
        W = theta[i:i + n * n_prev].reshape(n, n_prev)
        i += n * n_prev
        b = theta[i:i + n].reshape(n, 1)
        i += n
        views.append((W, b))
    return views


def _cost(views, X, Y, hidden, output, lambd, scales):
    m = X.shape[1]
    A = X
    L = len(views)
    for l, (W, b) in enumerate(views, start=1):
        Z = W @ A + b
        if l < L:
            A = ACTIVATIONS[hidden].array(Z, np)
            if scales is not None:
                A = A * scales[l - 1]
    loss = OUTPUTS[output].array_loss(Z, Y, np)
    l2 = sum(np.sum(W * W) for W, _ in views) if lambd else 0.0
    return float(loss / m + lambd / (2 * m) * l2)


def numpy_cost(net, X, Y, *, dropout_seed=0):
    """``net.cost(X, Y, dropout_seed)`` recomputed in plain NumPy (a cross-check of the baselines)."""
    X, Y, scales = _inputs(net, X, Y, dropout_seed)
    return _cost(_views(net.theta.copy(), net.layer_dims), X, Y, net.hidden, net.output, net.lambd, scales)


def numpy_loop_check(net, X, Y, *, epsilon=1e-7, dropout_seed=0, indices=None, blas_threads=None):
    """The plain NumPy gradient check: two full forward passes per entry of theta.

    For every index ``i``: ``theta[i] += eps``, J+, ``theta[i] -= 2 eps``, J-,
    restore, ``approx[i] = (J+ - J-) / (2 eps)``.  One copy of theta is
    perturbed in place; the W and b used by the forward pass are views into it.

    Parameters
    ----------
    net : minnet.Network
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m); for softmax also integer labels (m,)
    epsilon : float
    dropout_seed : int
        With keep_prob < 1, the seed of the fixed masks (as in ``gradient_check``).
    indices : sequence of int, optional
        Check only these entries of theta (every entry costs the same two
        forward passes, so timing a sample estimates the whole loop's time).
    blas_threads : int or None
        Threads for NumPy's BLAS during the loop (None: leave as configured;
        1 gives stable timings on a busy machine).

    Returns
    -------
    approx : ndarray, shape (n_parameters,)
        The numerical gradient in theta order (W1, b1, W2, ...), NaN where an
        entry was not checked.  Compare it with backprop, e.g.
        ``minnet.difference(approx, gradient_check(net, X, Y).grad)``.
    """
    X, Y, scales = _inputs(net, X, Y, dropout_seed)
    theta = net.theta.copy()
    views = _views(theta, net.layer_dims)
    args = (X, Y, net.hidden, net.output, net.lambd, scales)
    if indices is None:
        indices = range(theta.size)
    else:
        indices = np.asarray(indices, dtype=np.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= theta.size):
            raise ValueError(f"indices must lie in [0, {theta.size - 1}]")
    approx = np.full(theta.size, np.nan)
    with _blas_threads(blas_threads):
        for i in indices:
            old = theta[i]
            theta[i] = old + epsilon
            J_plus = _cost(views, *args)
            theta[i] = old - epsilon
            J_minus = _cost(views, *args)
            theta[i] = old
            approx[i] = (J_plus - J_minus) / (2 * epsilon)
    return approx


def torch_available():
    """True when PyTorch can be imported (it is optional and never required)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_gradcheck(net, X, Y, *, epsilon=1e-7, dropout_seed=0, atol=1e-5, rtol=1e-3, torch_threads=None):
    """``torch.autograd.gradcheck`` on the network's cost as a function of theta (float64).

    PyTorch computes the numerical gradient entry by entry (two full forward
    passes per entry, like the NumPy loop, but in torch) and compares it with
    its own autograd gradient.  ``torch_threads`` sets torch's intra-op
    threads during the check (restored afterwards; None leaves them alone,
    1 gives stable timings on a busy machine).

    Returns
    -------
    bool
        Whether torch's check passed (it raises no exception on failure).

    Raises
    ------
    ImportError
        When PyTorch is not installed (``pip install torch``; minnet never needs it).
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError("torch_gradcheck needs PyTorch (pip install torch); minnet itself does not") from exc
    X, Y, scales = _inputs(net, X, Y, dropout_seed)
    dims, hidden, output, lambd = net.layer_dims, net.hidden, net.output, net.lambd
    m = X.shape[1]
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    tscales = None if scales is None else [torch.from_numpy(s) for s in scales]
    activation, loss_of = ACTIVATIONS[hidden].array, OUTPUTS[output].array_loss

    def cost(theta):
        A, i, l2 = tX, 0, 0.0
        L = len(dims) - 1
        for l in range(1, L + 1):
            n, n_prev = dims[l], dims[l - 1]
            W = theta[i:i + n * n_prev].reshape(n, n_prev)
            i += n * n_prev
            b = theta[i:i + n].reshape(n, 1)
            i += n
            l2 = l2 + torch.sum(W * W)
            Z = W @ A + b
            if l < L:
                A = activation(Z, torch)
                if tscales is not None:
                    A = A * tscales[l - 1]
        return loss_of(Z, tY, torch) / m + lambd / (2 * m) * l2

    theta = torch.tensor(net.theta, dtype=torch.float64, requires_grad=True)
    previous = torch.get_num_threads()
    try:
        if torch_threads is not None:
            torch.set_num_threads(int(torch_threads))
        return bool(torch.autograd.gradcheck(cost, (theta,), eps=epsilon, atol=atol, rtol=rtol,
                                             raise_exception=False))
    finally:
        if torch_threads is not None:
            torch.set_num_threads(previous)


def jax_available():
    """True when JAX can be imported (it is optional and never required)."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


JAX_CHUNK_FLOATS = 1_000_000
"""About how many floats (8 MB) one vmap-ed chunk of perturbed thetas and activations may hold."""


def jax_chunk(layer_dims, m):
    """Directions per vmap-ed chunk for ``jax_fd_check``: as many as fit in ``JAX_CHUNK_FLOATS``.

    Each direction holds two perturbed copies of theta and two forward passes' activations.
    """
    n = sum(layer_dims[l] * (layer_dims[l - 1] + 1) for l in range(1, len(layer_dims)))
    per_direction = 2 * (n + sum(layer_dims[1:]) * m)
    return int(max(1, min(n, JAX_CHUNK_FLOATS // per_direction)))


@functools.lru_cache(maxsize=16)
def _jax_differences(dims, hidden, output, lambd, chunk):
    """The jit-compiled, vmap-ed centered differences for one network shape (compiled once per shape)."""
    import jax
    import jax.numpy as jnp

    activation, loss_of = ACTIVATIONS[hidden].array, OUTPUTS[output].array_loss
    L = len(dims) - 1

    def cost(theta, X, Y, scales):
        A, i, l2 = X, 0, 0.0
        for l in range(1, L + 1):
            n, n_prev = dims[l], dims[l - 1]
            W = theta[i:i + n * n_prev].reshape(n, n_prev)
            i += n * n_prev
            b = theta[i:i + n].reshape(n, 1)
            i += n
            l2 = l2 + jnp.sum(W * W)
            Z = W @ A + b
            if l < L:
                A = activation(Z, jnp)
                if scales is not None:
                    A = A * scales[l - 1]
        loss = loss_of(Z, Y, jnp)
        m = X.shape[1]
        return loss / m + (lambd / (2 * m) * l2 if lambd else 0.0)

    def difference(index, theta, epsilon, X, Y, scales):
        old = theta[index]  # theta[p] +- eps exactly as the NumPy loop sets it; the rest is untouched
        J_plus = cost(theta.at[index].set(old + epsilon), X, Y, scales)
        J_minus = cost(theta.at[index].set(old - epsilon), X, Y, scales)
        return (J_plus - J_minus) / (2 * epsilon)

    return jax.jit(jax.vmap(difference, in_axes=(0, None, None, None, None, None)))


def jax_fd_check(net, X, Y, *, epsilon=1e-7, dropout_seed=0, indices=None, chunk=None):
    """The NumPy loop's centered differences computed with JAX: jit plus vmap over chunks of directions.

    For every index ``p``, ``(J(theta + eps e_p) - J(theta - eps e_p)) / (2 eps)``
    of the same cost as ``numpy_loop_check`` (two full forward passes per entry),
    evaluated for ``chunk`` directions at a time by one compiled, ``vmap``-ed call.
    The function is compiled once per network shape and chunk, so a second call
    times the evaluation only.  Turns on JAX's float64 mode
    (``jax.config.update("jax_enable_x64", True)``) for the whole process.
    XLA uses its own default threads.

    Parameters
    ----------
    net : minnet.Network
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m); for softmax also integer labels (m,)
    epsilon : float
    dropout_seed : int
        With keep_prob < 1, the seed of the fixed masks (as in ``gradient_check``).
    indices : sequence of int, optional
        Check only these entries of theta (default: all).
    chunk : int, optional
        Directions per compiled call (default ``jax_chunk``: about 8 MB of work arrays; larger chunks ran slower).

    Returns
    -------
    approx : ndarray, shape (n_parameters,)
        The numerical gradient in theta order, NaN where an entry was not checked.

    Raises
    ------
    ImportError
        When JAX is not installed (``pip install jax``; minnet never needs it).
    """
    try:
        import jax
    except ImportError as exc:
        raise ImportError("jax_fd_check needs JAX (pip install jax); minnet itself does not") from exc
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    X, Y, scales = _inputs(net, X, Y, dropout_seed)
    n = net.layout.size
    if indices is None:
        indices = np.arange(n, dtype=np.int64)
    else:
        indices = np.asarray(indices, dtype=np.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(f"indices must lie in [0, {n - 1}]")
    if chunk is None:
        chunk = jax_chunk(net.layer_dims, X.shape[1])
    elif isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    chunk = int(min(chunk, max(indices.size, 1)))
    run = _jax_differences(tuple(int(d) for d in net.layer_dims), net.hidden, net.output, float(net.lambd), chunk)
    theta, tX, tY = jnp.asarray(net.theta.copy()), jnp.asarray(X), jnp.asarray(Y)
    tscales = None if scales is None else [jnp.asarray(s) for s in scales]
    approx = np.full(n, np.nan)
    for start in range(0, indices.size, chunk):
        part = indices[start:start + chunk]
        padded = np.pad(part, (0, chunk - part.size), mode="edge")  # one shape: one compilation
        values = run(jnp.asarray(padded), theta, epsilon, tX, tY, tscales)
        approx[part] = np.asarray(values)[:part.size]
    return approx

"""Reference gradient checks that minnet's own check is timed against.

``numpy_loop_check`` is the course's algorithm written plainly in NumPy:
perturb one entry of theta in place, run two full forward passes, restore
it, move on.  ``torch_gradcheck`` hands the same cost to
``torch.autograd.gradcheck`` in float64.  Both see exactly the cost that
``Network.cost`` computes (same loss, same L2 term and, for a network with
dropout, the same fixed masks as ``gradient_check(..., dropout_seed=...)``).

PyTorch is never a dependency of minnet: it is imported inside
``torch_gradcheck`` only, which raises ``ImportError`` when it is missing.

Both leave the libraries' thread settings alone by default.  ``minnet
bench`` passes ``blas_threads=1`` and ``torch_threads=1``: the matrices here
are small, so extra BLAS or OpenMP threads do not make a forward pass
faster, and on a busy machine their synchronization can slow the loops down
by orders of magnitude (measured: the NumPy loop on the digits workload
took 30-50 s instead of 0.3 s while other processes ran), which makes
timings meaningless.
Limiting NumPy's BLAS uses ``threadpoolctl`` when it is installed (it comes
with scikit-learn) and is skipped otherwise.
"""
import contextlib

import numpy as np

LEAKY_SLOPE = 0.01

__all__ = ["numpy_cost", "numpy_loop_check", "torch_gradcheck", "torch_available"]


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _hidden(z, name):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    raise ValueError(f"unknown hidden activation {name!r}")


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
            A = _hidden(Z, hidden)
            if scales is not None:
                A = A * scales[l - 1]
    if output == "sigmoid":
        loss = np.sum(np.maximum(Z, 0.0) - Y * Z + np.log1p(np.exp(-np.abs(Z))))
    elif output == "softmax":
        zmax = Z.max(axis=0, keepdims=True)
        lse = zmax + np.log(np.sum(np.exp(Z - zmax), axis=0, keepdims=True))
        loss = np.sum(lse) - np.sum(Y * Z)
    else:
        loss = 0.5 * np.sum((Z - Y) ** 2)
    l2 = sum(np.sum(W * W) for W, _ in views) if lambd else 0.0
    return float(loss / m + lambd / (2 * m) * l2)


def numpy_cost(net, X, Y, dropout_seed=0):
    """``net.cost(X, Y, dropout_seed)`` recomputed in plain NumPy (a cross-check of the baselines)."""
    X, Y, scales = _inputs(net, X, Y, dropout_seed)
    return _cost(_views(net.theta.copy(), net.layer_dims), X, Y, net.hidden, net.output, net.lambd, scales)


def numpy_loop_check(net, X, Y, epsilon=1e-7, dropout_seed=0, indices=None, blas_threads=None):
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


def torch_gradcheck(net, X, Y, epsilon=1e-7, dropout_seed=0, atol=1e-5, rtol=1e-3, torch_threads=None):
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
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
           "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, LEAKY_SLOPE)}[hidden]

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
                A = act(Z)
                if tscales is not None:
                    A = A * tscales[l - 1]
        if output == "sigmoid":
            loss = torch.sum(torch.logaddexp(torch.zeros_like(Z), Z) - tY * Z)
        elif output == "softmax":
            loss = torch.sum(torch.logsumexp(Z, dim=0)) - torch.sum(tY * Z)
        else:
            loss = 0.5 * torch.sum((Z - tY) ** 2)
        return loss / m + lambd / (2 * m) * l2

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

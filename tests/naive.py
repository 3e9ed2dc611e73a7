"""Slow, obvious NumPy reference for minnet (deeplearning.ai course notation).

``X`` is ``(n_x, m)`` (one example per column), ``W{l}`` is ``(n_l, n_{l-1})``,
``b{l}`` is ``(n_l, 1)``; float64, plain loops over layers.  This is the oracle
and the gradient-checking speed baseline; ``autograd_gradient`` is an
independent check of ``backward``.  For "softmax", Y must be one-hot.
"""
import autograd
import autograd.numpy as anp
import numpy as np

LEAKY_SLOPE = 0.01
HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")  # what this reference implements (its own list)
OUTPUTS = ("sigmoid", "softmax", "linear")


def _sigmoid(z):
    """Overflow-free logistic function."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _g(z, hidden, derivative=False):
    """Hidden activation g(z), or its derivative g'(z)."""
    if hidden == "relu":
        return np.where(z > 0, 1.0, 0.0) if derivative else np.where(z > 0, z, 0.0)
    if hidden == "leaky_relu":
        slope = np.where(z > 0, 1.0, LEAKY_SLOPE)
        return slope if derivative else slope * z
    if hidden == "tanh":
        return 1.0 - np.tanh(z) ** 2 if derivative else np.tanh(z)
    if hidden == "sigmoid":
        s = _sigmoid(z)
        return s * (1.0 - s) if derivative else s
    if hidden == "gelu":  # the tanh form of BERT and GPT-2, 0.5 z (1 + tanh(u)), as z sigmoid(2 u) (no cancellation)
        c = np.sqrt(2.0 / np.pi)
        s = _sigmoid(2.0 * c * (z + 0.044715 * z ** 3))
        return s + z * s * (1.0 - s) * 2.0 * c * (1.0 + 3 * 0.044715 * z ** 2) if derivative else z * s
    raise ValueError(f"unknown hidden activation {hidden!r}")


def _num_layers(parameters):
    return len(parameters) // 2


def init_parameters(layer_dims, seed=0, scale=None):
    """Random test parameters.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_0, n_1, ..., n_L]``.
    seed : int
        Seed for ``numpy.random.default_rng``.
    scale : float or None
        Weight standard deviation; ``None`` means He-like ``sqrt(2 / n_{l-1})``.

    Returns
    -------
    dict
        ``"W1", "b1", ..., "WL", "bL"``; biases are ``0.1 * normal``.
    """
    rng = np.random.default_rng(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        s = np.sqrt(2.0 / layer_dims[l - 1]) if scale is None else scale
        parameters[f"W{l}"] = rng.standard_normal((layer_dims[l], layer_dims[l - 1])) * s
        parameters[f"b{l}"] = rng.standard_normal((layer_dims[l], 1)) * 0.1
    return parameters


def forward(parameters, X, hidden="relu", output="sigmoid", masks=None, keep_probs=None):
    """Forward pass.

    Hidden layers ``1..L-1`` use ``hidden`` (with inverted dropout
    ``A_l = g(Z_l) * D_l / keep_probs[l-1]`` when ``masks`` is given); layer
    ``L`` uses ``output`` ("sigmoid", "softmax" over rows, or "linear").

    Returns
    -------
    AL : ndarray, shape (n_L, m)
    caches : list of (A_prev, Z)
        One tuple per layer, ``caches[l-1]`` for layer ``l``.
    """
    L = _num_layers(parameters)
    A = X
    caches = []
    for l in range(1, L + 1):
        Z = parameters[f"W{l}"] @ A + parameters[f"b{l}"]
        caches.append((A, Z))
        if l < L:
            A = _g(Z, hidden)
            if masks is not None:
                A = A * masks[f"D{l}"] / keep_probs[l - 1]
    Z = caches[-1][1]
    if output == "sigmoid":
        AL = _sigmoid(Z)
    elif output == "softmax":
        E = np.exp(Z - Z.max(axis=0, keepdims=True))
        AL = E / E.sum(axis=0, keepdims=True)
    elif output == "linear":
        AL = Z
    else:
        raise ValueError(f"unknown output activation {output!r}")
    return AL, caches


def cost(parameters, X, Y, hidden, output, lambd=0.0, masks=None, keep_probs=None):
    """Cost ``J = (1/m) sum loss + lambd/(2m) sum_l ||W_l||_F^2``, stable in Z_L.

    Losses: sigmoid BCE ``max(z,0) - y z + log1p(exp(-|z|))`` per entry;
    softmax CE ``logsumexp(z[:, e]) - sum_k y[k, e] z[k, e]`` per example;
    linear ``0.5 (z - y)^2`` per entry.
    """
    m = X.shape[1]
    _, caches = forward(parameters, X, hidden, output, masks, keep_probs)
    Z = caches[-1][1]
    if output == "sigmoid":
        loss = np.maximum(Z, 0.0) - Y * Z + np.log1p(np.exp(-np.abs(Z)))
    elif output == "softmax":
        zmax = Z.max(axis=0, keepdims=True)
        lse = zmax + np.log(np.sum(np.exp(Z - zmax), axis=0, keepdims=True))
        loss = lse - np.sum(Y * Z, axis=0, keepdims=True)
    else:  # linear (forward already rejected unknown outputs)
        loss = 0.5 * (Z - Y) ** 2
    L = _num_layers(parameters)
    l2 = sum(np.sum(parameters[f"W{l}"] ** 2) for l in range(1, L + 1))
    return float(np.sum(loss) / m + lambd / (2 * m) * l2)


def backward(parameters, X, Y, hidden, output, lambd=0.0, masks=None, keep_probs=None):
    """Analytic gradients of :func:`cost`: dict ``"dW1", "db1", ..., "dWL", "dbL"``."""
    m = X.shape[1]
    L = _num_layers(parameters)
    AL, caches = forward(parameters, X, hidden, output, masks, keep_probs)
    grads = {}
    dZ = (AL - Y) / m
    for l in range(L, 0, -1):
        A_prev, _ = caches[l - 1]
        W = parameters[f"W{l}"]
        grads[f"dW{l}"] = dZ @ A_prev.T + lambd / m * W
        grads[f"db{l}"] = np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA = W.T @ dZ
            if masks is not None:
                dA = dA * masks[f"D{l - 1}"] / keep_probs[l - 2]
            dZ = dA * _g(caches[l - 2][1], hidden, derivative=True)
    return {k: grads[k] for l in range(1, L + 1) for k in (f"dW{l}", f"db{l}")}


def theta_from(parameters):
    """Flatten to one vector: W1, b1, W2, b2, ..., each block row-major (a copy)."""
    L = _num_layers(parameters)
    blocks = [parameters[f"{p}{l}"].ravel() for l in range(1, L + 1) for p in "Wb"]
    return np.concatenate(blocks).astype(np.float64, copy=False)


def grads_to_vector(grads):
    """Flatten a grads dict in the same order as :func:`theta_from`."""
    L = len(grads) // 2
    return np.concatenate([grads[f"d{p}{l}"].ravel() for l in range(1, L + 1) for p in "Wb"])


def _views(theta, layer_dims):
    """Parameters dict whose arrays are reshaped slices (views when possible) of theta."""
    parameters, i = {}, 0
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        parameters[f"W{l}"] = theta[i:i + n * n_prev].reshape(n, n_prev)
        i += n * n_prev
        parameters[f"b{l}"] = theta[i:i + n].reshape(n, 1)
        i += n
    if i != len(theta):
        raise ValueError(f"theta has {len(theta)} entries, layer_dims need {i}")
    return parameters


def parameters_from(theta, layer_dims):
    """Inverse of :func:`theta_from`; returns a dict of fresh copies."""
    views = _views(np.asarray(theta, dtype=np.float64), layer_dims)
    return {k: v.copy() for k, v in views.items()}


def numpy_gradcheck_loop(parameters, X, Y, hidden, output, lambd=0.0, masks=None,
                         keep_probs=None, epsilon=1e-7):
    """Two-sided finite differences, one full forward pass per perturbation.

    The plain course algorithm: for each index ``i`` of theta, set
    ``theta[i] = old + eps`` and compute J, set ``theta[i] = old - eps`` and
    compute J, restore ``old``, and store ``(J_plus - J_minus) / (2 eps)``.
    One preallocated theta is perturbed in place; the parameters passed to
    :func:`cost` are views into it (no per-entry copies).

    Returns the approximate gradient, shape ``(n_params,)``, in
    :func:`theta_from` order.
    """
    theta = theta_from(parameters)
    L = _num_layers(parameters)
    layer_dims = [parameters["W1"].shape[1]]
    layer_dims += [parameters[f"W{l}"].shape[0] for l in range(1, L + 1)]
    views = _views(theta, layer_dims)
    approx = np.empty_like(theta)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + epsilon
        J_plus = cost(views, X, Y, hidden, output, lambd, masks, keep_probs)
        theta[i] = old - epsilon
        J_minus = cost(views, X, Y, hidden, output, lambd, masks, keep_probs)
        theta[i] = old
        approx[i] = (J_plus - J_minus) / (2 * epsilon)
    return approx


def difference(approx, grad):
    """Relative difference ``||a - g|| / (||a|| + ||g||)``; 0.0 if both are zero."""
    approx, grad = np.ravel(approx), np.ravel(grad)
    denom = np.linalg.norm(approx) + np.linalg.norm(grad)
    return 0.0 if denom == 0 else float(np.linalg.norm(approx - grad) / denom)


def autograd_cost(theta, layer_dims, X, Y, hidden, output, lambd, masks, keep_probs):
    """The cost of :func:`cost` written independently with ``autograd.numpy``."""
    m = X.shape[1]
    L = len(layer_dims) - 1
    acts = {
        "relu": lambda z: anp.where(z > 0, z, 0.0),
        "leaky_relu": lambda z: anp.where(z > 0, z, LEAKY_SLOPE * z),
        "tanh": anp.tanh,
        "sigmoid": lambda z: 0.5 * (anp.tanh(0.5 * z) + 1.0),
        "gelu": lambda z: 0.5 * z * (1.0 + anp.tanh(anp.sqrt(2.0 / anp.pi) * (z + 0.044715 * z ** 3))),
    }
    A, i, reg = X, 0, 0.0
    for l in range(1, L + 1):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        W = anp.reshape(theta[i:i + n * n_prev], (n, n_prev))
        i += n * n_prev
        b = anp.reshape(theta[i:i + n], (n, 1))
        i += n
        reg = reg + anp.sum(W * W)
        Z = anp.dot(W, A) + b
        if l < L:
            A = acts[hidden](Z)
            if masks is not None:
                A = A * masks[f"D{l}"] / keep_probs[l - 1]
    if output == "sigmoid":
        total = anp.sum(anp.logaddexp(0.0, Z) - Y * Z)
    elif output == "softmax":
        shift = anp.max(Z, axis=0, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(Z - shift), axis=0)) + shift[0]
        total = anp.sum(lse) - anp.sum(Y * Z)
    elif output == "linear":
        total = 0.5 * anp.sum((Z - Y) ** 2)
    else:
        raise ValueError(f"unknown output activation {output!r}")
    return total / m + lambd / (2 * m) * reg


def autograd_gradient(theta, layer_dims, X, Y, hidden, output, lambd=0.0, masks=None,
                      keep_probs=None):
    """Gradient of :func:`autograd_cost` w.r.t. the flat ``theta`` (autograd)."""
    grad_fn = autograd.grad(autograd_cost)
    return grad_fn(np.asarray(theta, dtype=np.float64), layer_dims, X, Y, hidden, output,
                   lambd, masks, keep_probs)


def row_groups(dims, indices, group_size):
    """Order the entries by (layer, row, column) and cut them into groups.

    A group holds at most group_size entries of one row of one layer (a W row
    and its bias), which the incremental kernel processes together.

    Returns (order, group bounds into order, row of every group counted over all layers).
    """
    dims = np.asarray(dims)
    sizes = dims[1:] * dims[:-1] + dims[1:]
    w_off = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    b_off = w_off + dims[1:] * dims[:-1]
    layer = np.searchsorted(b_off + dims[1:], indices, side="right")
    n_prev = dims[:-1][layer]
    is_w = indices < b_off[layer]
    row = np.where(is_w, (indices - w_off[layer]) // n_prev, indices - b_off[layer])
    column = np.where(is_w, (indices - w_off[layer]) % n_prev, n_prev)
    row_key = np.concatenate(([0], np.cumsum(dims[1:])))[layer] + row
    order = np.lexsort((column, row_key)).astype(np.int64)
    keys = row_key[order]
    row_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    rank = np.arange(keys.size) - np.repeat(row_start, np.diff(np.r_[row_start, keys.size]))
    starts = np.flatnonzero(rank % group_size == 0)
    return order, np.r_[starts, keys.size].astype(np.int64), row_key[order][starts]

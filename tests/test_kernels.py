"""Every Numba kernel against the plain NumPy reference in tests/naive.py."""
import numpy as np
import pytest

import minnet
from minnet import _kernels as K
from minnet.ops import activations, losses
from minnet.ops.activations import ACTIVATIONS
from minnet.ops.losses import OUTPUTS

from . import naive

SHAPES = [[1, 1], [3, 1], [2, 4, 1], [5, 3, 2], [4, 6, 5, 3], [7, 3, 4, 2, 3], [16, 8, 8, 8, 4]]
# softmax over one unit is refused (use sigmoid): those shapes get a second output unit
CASES = [(dims if output != "softmax" or dims[-1] > 1 else dims[:-1] + [2], hidden, output)
         for dims in SHAPES for hidden in ACTIVATIONS for output in OUTPUTS]


def random_case(dims, output, m, rng):
    X = rng.standard_normal((dims[0], m))
    if output == "softmax":
        labels = rng.integers(0, dims[-1], m)
        return X, labels, np.eye(dims[-1])[:, labels]
    if output == "sigmoid":
        Y = rng.integers(0, 2, (dims[-1], m)).astype(float)
    else:
        Y = rng.standard_normal((dims[-1], m))
    return X, Y, Y


def random_net(dims, hidden, output, rng, lambd=0.0, keep_prob=1.0):
    if len(dims) == 2:  # no hidden layer: dropout is refused (nothing to drop)
        keep_prob = 1.0
    net = minnet.Network(dims, hidden=hidden, output=output, lambd=lambd, keep_prob=keep_prob)
    net.theta = rng.standard_normal(net.theta.size) * 0.7
    return net


def reference_masks(net, m, seed):
    if not net.uses_dropout:
        return None, None
    return net.dropout_masks(m, seed), list(net.keep_prob)


@pytest.mark.parametrize("dims,hidden,output", CASES)
def test_forward_cost_backward_match_numpy(dims, hidden, output):
    rng = np.random.default_rng(len(dims) * 100 + dims[0])
    for m, lambd, keep_prob in [(1, 0.0, 1.0), (7, 0.7, 1.0), (13, 0.3, 0.75)]:
        net = random_net(dims, hidden, output, rng, lambd, keep_prob)
        X, Y, Y_dense = random_case(dims, output, m, rng)
        seed = 5 if keep_prob < 1 else None
        masks, keep_probs = reference_masks(net, m, 5)
        params = {k: v.copy() for k, v in net.parameters.items()}
        AL_ref, _ = naive.forward(params, X, hidden, output)
        np.testing.assert_allclose(net.forward(X), AL_ref, rtol=1e-12, atol=1e-14)
        J_ref = naive.cost(params, X, Y_dense, hidden, output, lambd, masks, keep_probs)
        assert net.cost(X, Y, dropout_seed=seed) == pytest.approx(J_ref, rel=1e-12, abs=1e-14)
        grads = net.gradients(X, Y, dropout_seed=seed)
        ref = naive.backward(params, X, Y_dense, hidden, output, lambd, masks, keep_probs)
        assert sorted(grads) == sorted(ref)
        for key in ref:
            np.testing.assert_allclose(grads[key], ref[key], rtol=1e-10, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("seed", range(12))
def test_gradients_match_autograd(seed):
    """An independent oracle: autograd differentiates the same cost."""
    rng = np.random.default_rng(seed)
    depth = 1 + seed % 4
    dims = [int(d) for d in rng.integers(1, 7, depth + 1)]
    hidden = list(ACTIVATIONS)[seed % len(ACTIVATIONS)]
    output = list(OUTPUTS)[seed % len(OUTPUTS)]
    if output == "softmax":
        dims[-1] = max(dims[-1], 2)
    m = int(rng.integers(1, 12))
    lambd = [0.0, 0.5, 1.3][seed % 3]
    keep_prob = [1.0, 0.8][seed % 2] if depth > 1 else 1.0
    net = random_net(dims, hidden, output, rng, lambd, keep_prob)
    X, Y, Y_dense = random_case(dims, output, m, rng)
    masks, keep_probs = reference_masks(net, m, seed)
    grad = minnet.flatten_gradients(net.gradients(X, Y, dropout_seed=seed), net.layout)
    oracle = naive.autograd_gradient(net.theta.copy(), dims, X, Y_dense, hidden, output, lambd, masks, keep_probs)
    assert naive.difference(grad, oracle) <= 1e-10


def test_losses_are_stable_for_huge_logits():
    for output in OUTPUTS:
        z = np.array([1e4, -1e4, 3.0])
        y = np.array([0.0, 1.0, 0.0]) if output != "linear" else np.zeros(3)
        value = losses.example_loss(z, y, losses.code(output))
        assert np.isfinite(value)
    # softmax: log-sum-exp of (1e4, -1e4, 3) with label 1 is 2e4 exactly in float64
    assert losses.example_loss(np.array([1e4, -1e4, 3.0]), np.array([0.0, 1.0, 0.0]), losses.code("softmax")) == 2e4
    # sigmoid: softplus(1e4) - 0 = 1e4 and softplus(-1e4) - 1 * (-1e4) = 1e4
    assert losses.example_loss(np.array([1e4]), np.array([0.0]), losses.code("sigmoid")) == 1e4
    assert losses.example_loss(np.array([-1e4]), np.array([1.0]), losses.code("sigmoid")) == 1e4
    assert activations.sigmoid(-1e4) == 0.0 and activations.sigmoid(1e4) == 1.0


def test_activation_kernels_match_numpy():
    z = np.linspace(-6, 6, 101)
    u = np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)
    refs = {
        "relu": (np.maximum(z, 0), (z > 0).astype(float)),
        "leaky_relu": (np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1.0, 0.01)),
        "tanh": (np.tanh(z), 1 - np.tanh(z) ** 2),
        "sigmoid": (1 / (1 + np.exp(-z)), np.exp(-z) / (1 + np.exp(-z)) ** 2),
        # GELU's tanh form 0.5 z (1 + tanh(u)) as z sigmoid(2 u): the same function, without cancellation
        "gelu": (z * naive._sigmoid(2 * u), naive._sigmoid(2 * u) + z * naive._sigmoid(2 * u) * naive._sigmoid(-2 * u)
                 * 2 * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * z ** 2)),
    }
    assert set(refs) == set(ACTIVATIONS)
    for name, (value, slope) in refs.items():
        code = activations.code(name)
        np.testing.assert_allclose([activations.activate(x, code) for x in z], value, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose([activations.activate_grad(x, code) for x in z], slope, rtol=1e-10, atol=1e-300)
        entry = ACTIVATIONS[name]
        np.testing.assert_allclose([entry.forward(x) for x in z], value, rtol=1e-14, atol=1e-300)
        # the array form, for the references, is the textbook one (0.5 z (1 + tanh(u)) for GELU: its
        # 1 + tanh(u) loses digits for z < 0, about 1e-16 of |z|)
        np.testing.assert_allclose(entry.array(z, np), value, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("n,p,m", [(1, 1, 1), (3, 5, 2), (17, 9, 33), (8, 64, 5)])
def test_matrix_products_match_numpy(n, p, m):
    rng = np.random.default_rng(n * p * m)
    A, B = rng.standard_normal((n, p)), rng.standard_normal((p, m))
    A[0, 0] = 0.0  # the zero-skipping branch
    out = np.empty((n, m))
    K.matmul(A, B, out)
    np.testing.assert_allclose(out, A @ B, rtol=1e-12, atol=1e-12)
    At = np.ascontiguousarray(A.T)
    K.matmul_tn(At, B, out)
    np.testing.assert_allclose(out, A @ B, rtol=1e-12, atol=1e-12)
    C = rng.standard_normal((n, m))
    D = rng.standard_normal((p, m))
    out2 = np.empty((n, p))
    K.matmul_nt(C, D, out2, np.empty(m * p))
    np.testing.assert_allclose(out2, C @ D.T, rtol=1e-12, atol=1e-12)


def test_dropout_masks_follow_keep_prob_and_seed():
    net = minnet.Network([3, 50, 40, 1], keep_prob=[0.8, 0.5])
    masks = net.dropout_masks(400, dropout_seed=1)
    assert masks["D1"].shape == (50, 400) and masks["D2"].shape == (40, 400)
    assert set(np.unique(masks["D1"])) <= {0.0, 1.0}
    assert abs(masks["D1"].mean() - 0.8) < 0.02 and abs(masks["D2"].mean() - 0.5) < 0.03
    again = net.dropout_masks(400, dropout_seed=1)
    other = net.dropout_masks(400, dropout_seed=2)
    assert np.array_equal(masks["D1"], again["D1"]) and not np.array_equal(masks["D1"], other["D1"])


def naive_update(theta, grad, optimizer, lr, beta, beta1, beta2, eps, t, v, s):
    if optimizer == "gd":
        return theta - lr * grad, v, s
    if optimizer == "momentum":
        v = beta * v + (1 - beta) * grad
        return theta - lr * v, v, s
    v = beta1 * v + (1 - beta1) * grad
    s = beta2 * s + (1 - beta2) * grad ** 2
    v_hat, s_hat = v / (1 - beta1 ** t), s / (1 - beta2 ** t)
    return theta - lr * v_hat / (np.sqrt(s_hat) + eps), v, s


@pytest.mark.parametrize("optimizer", K.OPTIMIZERS)
def test_optimizer_steps_match_numpy(optimizer):
    rng = np.random.default_rng(3)
    theta, v, s = rng.standard_normal(20), np.zeros(20), np.zeros(20)
    ref = (theta.copy(), v.copy(), s.copy())
    for t in range(1, 6):
        grad = rng.standard_normal(20)
        K.update(theta, grad, K.OPTIMIZERS.index(optimizer), 0.05, 0.9, 0.9, 0.999, 1e-8, t, v, s, np.empty(20))
        ref = naive_update(ref[0], grad, optimizer, 0.05, 0.9, 0.9, 0.999, 1e-8, t, ref[1], ref[2])
        np.testing.assert_allclose(theta, ref[0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("optimizer", K.OPTIMIZERS)
def test_training_epoch_matches_numpy_minibatch_loop(optimizer):
    """One compiled epoch equals the course's Python loop over shuffled mini-batches."""
    rng = np.random.default_rng(11)
    dims, hidden, output = [3, 5, 4, 2], "tanh", "softmax"
    net = random_net(dims, hidden, output, rng, lambd=0.2)
    X, labels, Y = random_case(dims, output, 23, rng)
    perm = rng.permutation(23).astype(np.int64)
    theta, v, s = net.theta.copy(), np.zeros(net.theta.size), np.zeros(net.theta.size)
    ref_theta, ref_v, ref_s = theta.copy(), v.copy(), s.copy()
    model = K.Model(net._dims, activations.code(hidden), losses.code(output), 0.2, net.keep_prob, False)
    state = K.Optimizer(K.OPTIMIZERS.index(optimizer), 0.01, 0.9, 0.9, 0.999, 1e-8, v, s, theta.copy())
    J, finite, t = K.train_epoch(theta, np.ascontiguousarray(X.T), Y, model, state, K.Plan(perm, 5, 0), 0)
    costs = []
    for step, start in enumerate(range(0, 23, 5), start=1):
        idx = perm[start:start + 5]
        params = naive.parameters_from(ref_theta, dims)
        costs.append(naive.cost(params, X[:, idx], Y[:, idx], hidden, output, 0.2) * idx.size)
        grad = naive.grads_to_vector(naive.backward(params, X[:, idx], Y[:, idx], hidden, output, 0.2))
        ref_theta, ref_v, ref_s = naive_update(ref_theta, grad, optimizer, 0.01, 0.9, 0.9, 0.999, 1e-8, step,
                                               ref_v, ref_s)
    assert finite and t == 5
    assert J == pytest.approx(sum(costs) / 23, rel=1e-12)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-11, atol=1e-13)

"""Training through BLAS: both product paths against the NumPy reference, and bit-for-bit repeatability."""
import numpy as np
import pytest

import minnet
from minnet import _kernels as K
from minnet.ops.activations import ACTIVATIONS
from minnet.ops.losses import OUTPUTS

from . import naive
from .test_kernels import CASES, random_case, random_net

BLAS_EVERYWHERE, HAND_LOOPS = 0, K.NO_BLAS


@pytest.mark.parametrize("dims,hidden,output", CASES)
def test_blas_forward_and_backward_match_numpy(dims, hidden, output):
    rng = np.random.default_rng(len(dims) * 10 + dims[-1])
    for m, lambd, keep_prob in [(1, 0.0, 1.0), (9, 0.4, 0.7)]:
        net = random_net(dims, hidden, output, rng, lambd, keep_prob)
        X, _, Y = random_case(dims, output, m, rng)
        drop = net._draw_dropout(m, 3) if net.uses_dropout else np.empty(0)
        masks = net.dropout_masks(m, 3) if net.uses_dropout else None
        keep_probs = list(net.keep_prob) if net.uses_dropout else None
        params = naive.parameters_from(net.theta, dims)
        Z, A = net._buffers(m)
        K.forward_with(net.theta, net._dims, X, net._hidden, net._output, drop, net.uses_dropout, Z, A,
                       BLAS_EVERYWHERE)
        AL_ref, _ = naive.forward(params, X, hidden, output, masks, keep_probs)
        np.testing.assert_allclose(A[-dims[-1] * m:].reshape(dims[-1], m), AL_ref, rtol=1e-12, atol=1e-14)
        grad, width = np.empty(net.theta.size), max(dims) * m
        K.backward_with(net.theta, net._dims, X, Y, net._hidden, net._output, lambd, drop, net.uses_dropout, Z, A, grad,
                        np.empty(width), np.empty(width), np.empty(width), BLAS_EVERYWHERE)
        ref = naive.grads_to_vector(naive.backward(params, X, Y, hidden, output, lambd, masks, keep_probs))
        np.testing.assert_allclose(grad, ref, rtol=1e-10, atol=1e-14)


def reference_epoch(theta, dims, X, Y, hidden, output, lambd, keep_probs, perm, batch, optimizer, seed):
    """The course's loop over shuffled mini-batches, with the kernel's dropout masks drawn in the same order."""
    theta, v, s = theta.copy(), np.zeros(theta.size), np.zeros(theta.size)
    K.seed_rng(seed)
    total, m = 0.0, X.shape[1]
    for step, start in enumerate(range(0, m, batch), start=1):
        idx = perm[start:start + batch]
        masks = None
        if keep_probs is not None:
            drop = np.empty(sum(dims[1:]) * idx.size)
            K.draw_dropout(np.array(dims, np.int64), idx.size, np.array(keep_probs), drop)
            masks, off = {}, 0
            for l in range(1, len(dims) - 1):
                masks[f"D{l}"] = (drop[off:off + dims[l] * idx.size] > 0).reshape(dims[l], idx.size) * 1.0
                off += dims[l] * idx.size
        params = naive.parameters_from(theta, dims)
        total += naive.cost(params, X[:, idx], Y[:, idx], hidden, output, lambd, masks, keep_probs) * idx.size
        grad = naive.grads_to_vector(naive.backward(params, X[:, idx], Y[:, idx], hidden, output, lambd, masks,
                                                    keep_probs))
        if optimizer == "gd":
            theta = theta - 0.01 * grad
        elif optimizer == "momentum":
            v = 0.9 * v + 0.1 * grad
            theta = theta - 0.01 * v
        else:
            v, s = 0.9 * v + 0.1 * grad, 0.999 * s + 0.001 * grad ** 2
            theta = theta - 0.01 * (v / (1 - 0.9 ** step)) / (np.sqrt(s / (1 - 0.999 ** step)) + 1e-8)
    return theta, total / m


@pytest.mark.parametrize("blas_from", [BLAS_EVERYWHERE, HAND_LOOPS])
@pytest.mark.parametrize("optimizer", K.OPTIMIZERS)
@pytest.mark.parametrize("hidden", ACTIVATIONS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_training_epoch_matches_numpy_with_dropout_and_l2(blas_from, optimizer, hidden, output):
    rng = np.random.default_rng(ACTIVATIONS[hidden].code * 3 + OUTPUTS[output].code)
    dims = [6, 7, 5, 3]
    net = random_net(dims, hidden, output, rng, lambd=0.3, keep_prob=[0.8, 0.6])
    net.theta = net.theta * 0.5
    X, _, Y = random_case(dims, output, 26, rng)
    perm = rng.permutation(26).astype(np.int64)
    theta, v, s = net.theta.copy(), np.zeros(net.theta.size), np.zeros(net.theta.size)
    model = K.Model(net._dims, net._hidden, net._output, 0.3, net.keep_prob, True)
    state = K.Optimizer(K.OPTIMIZERS.index(optimizer), 0.01, 0.9, 0.9, 0.999, 1e-8, v, s, theta.copy())
    J, finite, t = K.train_epoch(theta, np.ascontiguousarray(X.T), Y, model, state, K.Plan(perm, 8, 17), 0, blas_from)
    ref_theta, ref_J = reference_epoch(net.theta, dims, X, Y, hidden, output, 0.3, [0.8, 0.6], perm, 8,
                                       optimizer, 17)
    assert finite and t == 4
    assert J == pytest.approx(ref_J, rel=1e-12)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-11, atol=1e-13)


def wide_problem():
    """Wide enough that BLAS runs the products on several threads."""
    rng = np.random.default_rng(5)
    X = rng.random((300, 600))
    labels = np.argmax(rng.standard_normal((10, 300)) @ X, axis=0)
    return X, labels


@pytest.mark.slow_without_jit
@pytest.mark.parametrize("optimizer", K.OPTIMIZERS)
def test_wide_training_is_reproducible_bit_for_bit(optimizer):
    X, labels = wide_problem()
    runs = []
    for _ in range(2):
        net = minnet.Network([300, 256, 128, 10], output="softmax", keep_prob=0.9, lambd=0.2, seed=1)
        history = net.fit(X, labels, optimizer=optimizer, learning_rate=0.001, epochs=3, batch_size=128, seed=4)
        runs.append((np.array(history["cost"]), net.theta.copy()))
    (c1, t1), (c2, t2) = runs
    np.testing.assert_array_equal(c1.view(np.uint64), c2.view(np.uint64))
    np.testing.assert_array_equal(t1.view(np.uint64), t2.view(np.uint64))
    net = minnet.Network([300, 256, 128, 10], output="softmax", keep_prob=0.9, lambd=0.2, seed=1)
    net.fit(X, labels, optimizer=optimizer, learning_rate=0.001, epochs=3, batch_size=128, seed=5)
    assert not np.array_equal(net.theta, t1)


@pytest.mark.slow_without_jit
def test_wide_training_learns():
    X, labels = wide_problem()
    net = minnet.Network([300, 256, 128, 10], output="softmax", seed=1)
    history = net.fit(X, labels, optimizer="adam", learning_rate=0.001, epochs=30, batch_size=64, seed=0)
    assert history["cost"][-1] < 0.5 * history["cost"][0]
    assert net.accuracy(X, labels) >= 0.95


@pytest.mark.parametrize("optimizer", K.OPTIMIZERS)
def test_update_keeps_the_previous_theta_and_reports_overflow(optimizer):
    code = K.OPTIMIZERS.index(optimizer)
    theta, grad = np.array([1.0, -2.0, 3.0]), np.array([0.5, 1e300, -1.0])
    before, v, s, prev = theta.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    assert K.update(theta, grad, code, 0.1, 0.9, 0.9, 0.999, 1e-8, 1, v, s, prev)
    assert np.array_equal(prev, before) and np.all(np.isfinite(theta))
    before = theta.copy()
    assert not K.update(theta, np.array([0.0, np.nan, 0.0]), code, 0.1, 0.9, 0.9, 0.999, 1e-8, 2, v, s, prev)
    assert np.array_equal(prev, before) and np.isnan(theta[1])
    theta, prev = np.array([1e308, 0.0]), np.zeros(2)
    if optimizer != "adam":  # adam's step is at most about the learning rate
        assert not K.update(theta, np.array([-1e308, 0.0]), code, 10.0, 0.0, 0.9, 0.999, 1e-8, 1, np.zeros(2),
                            np.zeros(2), prev)
        assert theta[0] == np.inf and prev[0] == 1e308

"""The registries (minnet.ops) and GELU, the activation added through them alone.

GELU is the tanh form of BERT and GPT-2, 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))).
Its gradients are checked against autograd (an independent autodiff library)
differentiating that textbook form, and the check's exact changes against plain
centered differences of the network's own cost.
"""
import numpy as np
import pytest

import minnet
from minnet.ops import activations, losses
from minnet.ops.activations import ACTIVATIONS
from minnet.ops.losses import OUTPUTS

from . import naive
from .test_kernels import random_case


def test_every_code_dispatches_and_an_unknown_code_raises():
    z = np.linspace(-3, 3, 13)
    for name, entry in ACTIVATIONS.items():
        assert entry.code == activations.code(name)
        for x in z:
            assert activations.activate(x, entry.code) == entry.forward(x)
            assert activations.activate_grad(x, entry.code) == entry.derivative(x)
        if entry.slopes is None:
            assert not activations.piecewise(entry.code)
            for x in z:  # the exact change agrees with the plain difference where that one is accurate
                for d in (1e-2, -0.3):
                    plain = entry.forward(x + d) - entry.forward(x)
                    exact = activations.change(entry.code, x, entry.forward(x), d)
                    assert exact == pytest.approx(plain, rel=1e-9, abs=1e-15)
        else:
            assert activations.piecewise(entry.code) and activations.left_slope(entry.code) == entry.slopes[0]
    unknown = len(ACTIVATIONS)
    for function in (activations.activate, activations.activate_grad):
        with pytest.raises(ValueError, match="unknown activation code"):
            function(0.5, unknown)
    with pytest.raises(ValueError, match="no exact change"):
        activations.change(ACTIVATIONS["relu"].code, 0.5, 0.5, 1e-3)
    with pytest.raises(ValueError, match="unknown output code"):
        losses.example_loss(np.zeros(2), np.zeros(2), len(OUTPUTS))


def test_gelu_change_is_exact_for_small_steps():
    """Below the series' limit the change comes from the series; it agrees with g'(z) d to O(d^2)
    and with the plain difference where that one is accurate."""
    code = activations.code("gelu")
    for z in (-7.0, -2.5, -0.3, 0.0, 0.4, 3.0):
        g0 = activations.gelu(z)
        for d in (1e-9, -3e-7, 2e-5):
            exact = activations.change(code, z, g0, d)
            assert exact == pytest.approx(activations.gelu_grad(z) * d, rel=1e-3, abs=1e-300)
        for d in (1e-2, -0.5):
            assert activations.change(code, z, g0, d) == pytest.approx(activations.gelu(z + d) - g0, rel=1e-9,
                                                                       abs=1e-15)


@pytest.mark.parametrize("seed", range(9))
def test_gelu_gradients_match_autograd(seed):
    rng = np.random.default_rng(seed)
    depth = 1 + seed % 3
    dims = [int(d) for d in rng.integers(1, 7, depth + 1)]
    output = list(OUTPUTS)[seed % 3]
    if output == "softmax":
        dims[-1] = max(dims[-1], 2)
    m = int(rng.integers(1, 12))
    lambd = [0.0, 0.5, 1.3][seed % 3]
    net = minnet.Network(dims, hidden="gelu", output=output, lambd=lambd, seed=seed)
    net.theta = net.theta * 3.0  # wide pre-activations: both tails of GELU
    X, Y, Y_dense = random_case(dims, output, m, rng)
    grad = minnet.flatten_gradients(net.gradients(X, Y), net.layout)
    oracle = naive.autograd_gradient(net.theta.copy(), dims, X, Y_dense, "gelu", output, lambd)
    assert naive.difference(grad, oracle) <= 1e-12


@pytest.mark.parametrize("method", ["full", "incremental"])
@pytest.mark.parametrize("epsilon", [1e-7, 1e-4, 1e-2])
def test_gelu_check_values_are_centered_differences_of_the_cost(method, epsilon):
    rng = np.random.default_rng(3)
    net = minnet.Network([4, 6, 5, 3], hidden="gelu", output="softmax", lambd=0.2, seed=1)
    X, labels = 2.0 * rng.standard_normal((4, 9)), rng.integers(0, 3, 9)
    report = minnet.gradient_check(net, X, labels, epsilon=epsilon, method=method)
    assert report.method == method
    theta = net.theta.copy()
    plain = np.empty(theta.size)
    for p in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[p] += epsilon
        minus[p] -= epsilon
        plain[p] = (net._cost(X, net._check_XY(X, labels)[1], np.empty(0), False, plus)
                    - net._cost(X, net._check_XY(X, labels)[1], np.empty(0), False, minus)) / (plus[p] - minus[p])
    assert np.max(np.abs(report.approx - plain)) <= 1e-8 * max(1.0, np.max(np.abs(plain))) + 1e-16 / epsilon * 10


def test_gelu_is_checked_without_kinks_and_never_by_the_segment_method():
    rng = np.random.default_rng(0)
    net = minnet.Network([5, 8, 4, 1], hidden="gelu", output="sigmoid", lambd=0.1, seed=2)
    X, Y = rng.standard_normal((5, 20)), (rng.random((1, 20)) < 0.5).astype(float)
    report = minnet.gradient_check(net, X, Y)
    assert report.verdict == "correct"
    assert report.method == "incremental"
    assert all(len(block.kinks) == 0 for block in report.blocks.values())
    with pytest.raises(ValueError, match="segment"):
        minnet.gradient_check(net, X, Y, method="segment")


def _gelu(z):
    return 0.5 * z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (z + 0.044715 * z ** 3)))


def _gelu_grad(z, wrong=False):
    c = np.sqrt(2.0 / np.pi)
    t = np.tanh(c * (z + 0.044715 * z ** 3))
    inner = (1.0 + 0.044715 * z ** 2) if wrong else (1.0 + 3 * 0.044715 * z ** 2)  # a learner's slip: 3 z^2 as z^2
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t ** 2) * c * inner


@pytest.mark.parametrize("wrong", [False, True])
def test_a_learners_gelu_backprop_is_judged(wrong):
    """A two-layer GELU net written the way a learner writes it, with and without a slip in g'."""
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((3, 16)), rng.standard_normal((2, 16))
    parameters = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal((4, 1)),
                  "W2": rng.standard_normal((2, 4)), "b2": rng.standard_normal((2, 1))}

    def cost(p):
        A1 = _gelu(p["W1"] @ X + p["b1"])
        return 0.5 * np.sum((p["W2"] @ A1 + p["b2"] - Y) ** 2) / X.shape[1]

    def grads(p):
        Z1 = p["W1"] @ X + p["b1"]
        A1 = _gelu(Z1)
        dZ2 = (p["W2"] @ A1 + p["b2"] - Y) / X.shape[1]
        dZ1 = (p["W2"].T @ dZ2) * _gelu_grad(Z1, wrong)
        return {"dW1": dZ1 @ X.T, "db1": dZ1.sum(axis=1, keepdims=True),
                "dW2": dZ2 @ A1.T, "db2": dZ2.sum(axis=1, keepdims=True)}

    report = minnet.check_gradients(cost, grads, parameters)
    if wrong:
        assert report.verdict == "bug"
        assert {name for name, block in report.blocks.items() if block.verdict != "correct"} == {"W1", "b1"}
    else:
        assert report.verdict == "correct"


def test_gelu_network_trains_saves_and_loads(tmp_path):
    X, Y = minnet.datasets.moons(200, seed=0)
    net = minnet.Network([2, 16, 1], hidden="gelu", output="sigmoid", seed=0)
    before = net.cost(X, Y)
    net.fit(X, Y, epochs=30, learning_rate=0.05)
    assert net.cost(X, Y) < before
    path = tmp_path / "gelu.npz"
    net.save(path)
    loaded = minnet.Network.load(path)
    assert loaded.hidden == "gelu"
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_references_read_the_registries():
    from minnet import baselines
    rng = np.random.default_rng(1)
    for hidden in ACTIVATIONS:
        for output in OUTPUTS:
            dims = [3, 4, 1 if output == "sigmoid" else 3]
            net = minnet.Network(dims, hidden=hidden, output=output, lambd=0.4, seed=3)
            X, Y, _ = random_case(dims, output, 6, rng)
            assert baselines.numpy_cost(net, X, Y) == pytest.approx(net.cost(X, Y), rel=1e-13)


def test_the_command_line_offers_every_registered_activation(tmp_path):
    """GELU reaches the CLI's choices, its check and its training from the registry alone."""
    import json
    import subprocess
    import sys
    check = subprocess.run([sys.executable, "-m", "minnet", "check", "--hidden", "gelu", "--layers", "3,6,2",
                            "--output", "softmax", "--examples", "16", "--json"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["verdict"] == "correct" and report["method"] == "incremental"
    saved = tmp_path / "gelu.npz"
    train = subprocess.run([sys.executable, "-m", "minnet", "train", "--dataset", "moons", "--hidden", "gelu",
                            "--epochs", "50", "--save", str(saved)], capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    assert minnet.Network.load(saved).hidden == "gelu"
    helped = subprocess.run([sys.executable, "-m", "minnet", "check", "--help"], capture_output=True, text=True)
    for name in ACTIVATIONS:
        assert name in helped.stdout

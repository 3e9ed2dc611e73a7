"""Network: parameters as views of theta, layouts, prediction, training."""
import numpy as np
import pytest

import minnet
from minnet import datasets

from . import naive


def test_theta_order_and_views():
    net = minnet.Network([3, 4, 2], init="random", seed=1)
    W1, b1, W2, b2 = (net.parameters[k] for k in ("W1", "b1", "W2", "b2"))
    assert W1.shape == (4, 3) and b1.shape == (4, 1) and W2.shape == (2, 4) and b2.shape == (2, 1)
    expected = np.concatenate([W1.ravel(), b1.ravel(), W2.ravel(), b2.ravel()])
    assert np.array_equal(net.theta, expected)
    W1[1, 2] = 42.0
    assert net.theta[1 * 3 + 2] == 42.0
    net.theta[12] = -7.0  # b1[0]
    assert net.parameters["b1"][0, 0] == -7.0
    net.theta = np.arange(net.theta.size, dtype=float)
    assert net.parameters["W2"][0, 0] == 16.0


@pytest.mark.parametrize("init,scale", [("zeros", 0.0), ("random", 0.01), ("he", np.sqrt(2 / 400)),
                                        ("xavier", np.sqrt(1 / 400))])
def test_initializations(init, scale):
    net = minnet.Network([400, 300, 1], init=init, seed=3)
    W1 = net.parameters["W1"]
    assert W1.std() == pytest.approx(scale, rel=0.02, abs=1e-12)
    assert np.all(net.parameters["b1"] == 0)
    again = minnet.Network([400, 300, 1], init=init, seed=3)
    assert np.array_equal(net.theta, again.theta)
    if init != "zeros":
        other = minnet.Network([400, 300, 1], init=init, seed=4)
        assert not np.array_equal(net.theta, other.theta)


@pytest.mark.parametrize("layer_dims", [[2, 1], [3, 5, 2], [4, 3, 3, 3, 1], [1, 7, 1, 7, 1, 2]])
def test_dictionary_vector_round_trips(layer_dims):
    net = minnet.Network(layer_dims, init="random")
    net.theta = np.random.default_rng(0).standard_normal(net.theta.size)
    theta, layout = minnet.flatten({k: v.copy() for k, v in net.parameters.items()})
    assert np.array_equal(theta, net.theta) and layout == net.layout
    back = minnet.unflatten(theta, layout)
    for key, value in net.parameters.items():
        assert np.array_equal(back[key], value)
    assert np.shares_memory(back["W1"], theta)
    targets = np.full((layer_dims[-1], 3), 0.5)  # sigmoid targets in [0, 1]
    grads = net.gradients(np.ones((layer_dims[0], 3)), targets)
    vector = minnet.flatten_gradients(grads, layout)
    assert vector.shape == theta.shape
    assert np.array_equal(vector, naive.grads_to_vector(grads))
    for index in range(layout.size):
        name, row, column = layout.locate(index)
        assert back[name][row, column] == theta[index]


def test_dictionary_to_vector_orders_course_keys():
    params = {"b2": np.zeros((1, 1)), "W2": np.ones((1, 2)), "W1": np.full((2, 2), 2.0), "b1": np.full((2, 1), 3.0)}
    theta, layout = minnet.flatten(params)
    assert layout.names == ["W1", "b1", "W2", "b2"]
    assert list(theta) == [2, 2, 2, 2, 3, 3, 1, 1, 0]
    custom, custom_layout = minnet.flatten({"kernel": np.ones(3), "gain": np.array(2.0)})
    assert custom_layout.names == ["kernel", "gain"] and list(custom) == [1, 1, 1, 2]


def test_forward_and_predict_shapes():
    X = np.random.default_rng(0).standard_normal((3, 9))
    sig = minnet.Network([3, 4, 2], output="sigmoid")
    assert sig.forward(X).shape == (2, 9) and set(np.unique(sig.predict(X))) <= {0, 1}
    soft = minnet.Network([3, 4, 5], output="softmax")
    A = soft.forward(X)
    np.testing.assert_allclose(A.sum(axis=0), 1.0)
    assert soft.predict(X).shape == (9,) and np.array_equal(soft.predict(X), A.argmax(axis=0))
    lin = minnet.Network([3, 4, 2], output="linear")
    assert np.array_equal(lin.predict(X), lin.forward(X))


def test_softmax_accepts_integer_labels():
    rng = np.random.default_rng(1)
    net = minnet.Network([3, 4, 3], output="softmax", lambd=0.5)
    X, labels = rng.standard_normal((3, 10)), rng.integers(0, 3, 10)
    one_hot = np.eye(3)[:, labels]
    assert net.cost(X, labels) == net.cost(X, one_hot)
    g1, g2 = net.gradients(X, labels), net.gradients(X, one_hot)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)


def test_dropout_only_with_a_seed():
    rng = np.random.default_rng(2)
    net = minnet.Network([4, 6, 6, 1], keep_prob=0.7, lambd=0.1)
    X, Y = rng.standard_normal((4, 12)), rng.integers(0, 2, (1, 12)).astype(float)
    plain = minnet.Network([4, 6, 6, 1], keep_prob=1.0, lambd=0.1)
    assert net.cost(X, Y) == plain.cost(X, Y)
    assert net.cost(X, Y, dropout_seed=3) == net.cost(X, Y, dropout_seed=3)
    assert net.cost(X, Y, dropout_seed=3) != net.cost(X, Y, dropout_seed=4)
    masks = net.dropout_masks(12, 3)
    ref = naive.cost({k: v.copy() for k, v in net.parameters.items()}, X, Y, "relu", "sigmoid", 0.1, masks,
                     [0.7, 0.7])
    assert net.cost(X, Y, dropout_seed=3) == pytest.approx(ref, rel=1e-13)


def test_keep_prob_per_layer():
    net = minnet.Network([2, 3, 3, 3, 1], keep_prob=[0.5, 1.0, 0.9])
    assert list(net.keep_prob) == [0.5, 1.0, 0.9]
    masks = net.dropout_masks(500, 0)
    assert np.all(masks["D2"] == 1.0) and 0.4 < masks["D1"].mean() < 0.6


@pytest.mark.slow_without_jit
@pytest.mark.parametrize("name", ["flower", "moons"])
def test_training_reaches_95_percent(name):
    X, Y = datasets.load(name)
    net = minnet.Network([2, 32, 16, 1], hidden="tanh", seed=0)
    history = net.fit(X, Y, optimizer="adam", learning_rate=0.01, epochs=2000, batch_size=64, seed=0)
    assert history["cost"][-1] < history["cost"][0] / 3
    assert net.accuracy(X, Y) >= 0.95


@pytest.mark.parametrize("optimizer,lr", [("gd", 0.5), ("momentum", 0.5), ("adam", 0.01)])
def test_every_optimizer_lowers_the_cost(optimizer, lr):
    X, Y = datasets.moons(m=200)
    net = minnet.Network([2, 8, 1], hidden="tanh", lambd=0.01, keep_prob=1.0)
    history = net.fit(X, Y, optimizer=optimizer, learning_rate=lr, epochs=200, batch_size=None)
    assert len(history["cost"]) == 200
    assert history["cost"][-1] < 0.6 * history["cost"][0]
    assert history["cost"][-1] == pytest.approx(net.cost(X, Y), rel=0.05)


@pytest.mark.slow_without_jit
def test_softmax_training_on_spirals():
    X, labels = datasets.spirals(m=300)
    net = minnet.Network([2, 64, 32, 3], output="softmax", seed=1)
    net.fit(X, labels, learning_rate=0.01, epochs=600, batch_size=32)
    assert net.accuracy(X, labels) >= 0.95


def test_training_is_reproducible_bit_for_bit():
    X, Y = datasets.flower(m=200)
    runs = []
    for _ in range(2):
        net = minnet.Network([2, 10, 5, 1], keep_prob=0.8, lambd=0.1)
        history = net.fit(X, Y, epochs=30, batch_size=16, seed=7)
        runs.append((net.theta.copy(), history["cost"]))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    net = minnet.Network([2, 10, 5, 1], keep_prob=0.8, lambd=0.1)
    net.fit(X, Y, epochs=30, batch_size=16, seed=8)
    assert not np.array_equal(net.theta, runs[0][0])


def moved_output_weights(m, epochs, batch_size):
    """How many W2 entries a fit changes: only hidden units kept by some dropout mask learn."""
    X, Y = np.ones((2, m)), np.ones((1, m))
    net = minnet.Network([2, 30, 1], hidden="tanh", keep_prob=0.5, init="random")
    before = net.parameters["W2"].copy()
    net.fit(X, Y, optimizer="gd", learning_rate=0.1, epochs=epochs, batch_size=batch_size, seed=3)
    return int(np.sum(net.parameters["W2"] != before))


def test_fresh_dropout_masks_every_step():
    one_step = moved_output_weights(1, 1, None)
    assert 7 < one_step < 23  # about half of the 30 units were kept
    assert moved_output_weights(1, 2, None) > one_step  # a new mask in the next epoch
    assert moved_output_weights(2, 1, 1) > one_step  # and for the next mini-batch of the same epoch


def test_zero_epochs_is_a_no_op():
    X, Y = datasets.xor(m=20)
    net = minnet.Network([2, 3, 1])
    before = net.theta.copy()
    assert net.fit(X, Y, epochs=0)["cost"] == []
    assert np.array_equal(before, net.theta)


def test_repr_and_copy():
    net = minnet.Network([2, 3, 1], lambd=0.5)
    clone = net.copy()
    assert np.array_equal(clone.theta, net.theta) and not np.shares_memory(clone.theta, net.theta)
    assert clone.config == net.config and "n_parameters=13" in repr(net)


def test_dropout_seeds_do_not_alias():
    """Distinct seeds in [0, 2**63) select distinct masks; seeds 2**32 apart used to draw the same ones."""
    net = minnet.Network([3, 40, 1], keep_prob=0.5)
    masks = {seed: net.dropout_masks(50, seed)["D1"] for seed in (5, 5 + 2**32, 5 + 2**62, 2**63 - 1, 0, 2**32)}
    seeds = list(masks)
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            assert not np.array_equal(masks[a], masks[b]), (a, b)
    np.testing.assert_array_equal(net.dropout_masks(50, 2**63 - 1)["D1"], masks[2**63 - 1])
    X, Y = np.ones((3, 50)), np.ones((1, 50))
    assert net.cost(X, Y, dropout_seed=5) != net.cost(X, Y, dropout_seed=5 + 2**32)

"""Network attributes: what may change after construction, net.parameters as a mapping onto theta,
copies and pickles that keep the link, and NaN parameters refused before any kernel runs."""
import copy
import pickle
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

import numpy as np
import pytest

import minnet


def _data(net, m=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((net.layer_dims[0], m))
    return X, (rng.random((net.layer_dims[-1], m)) > 0.5).astype(float)


# ------------------------------------------------------------ read-only structure
@pytest.mark.parametrize("name,value", [("layer_dims", [1, 1]), ("hidden", "tanh"), ("output", "linear"),
                                        ("init", "zeros"), ("seed", 5), ("L", 1)])
def test_structure_is_read_only(name, value):
    net = minnet.Network([3, 4, 1], seed=2)
    before, theta = getattr(net, name), net.theta.copy()
    with pytest.raises(AttributeError, match=rf"{name} cannot be changed.*build a new Network"):
        setattr(net, name, value)
    with pytest.raises(AttributeError, match="build a new Network"):
        delattr(net, name)
    assert getattr(net, name) == before and net.config[name if name != "L" else "seed"] is not None
    np.testing.assert_array_equal(net.theta, theta)


def test_layer_dims_cannot_change_in_place():
    net = minnet.Network([5, 3, 1])
    with pytest.raises(TypeError, match="layer_dims cannot be changed.*build a new Network"):
        net.layer_dims[0] = 1
    dims = net.layer_dims
    assert dims == [5, 3, 1] and dims == (5, 3, 1) and list(dims) == [5, 3, 1] and dims != [5, 3, 2]
    assert not hasattr(dims, "append")
    assert net._dims.tolist() == [5, 3, 1]
    assert net.forward(np.ones((5, 2))).shape == (1, 2)


def test_a_large_input_layer_cannot_be_shrunk_under_the_kernels():
    """The crash of the report: layer_dims[0] = 1 on a wide input layer, then forward on 1 input."""
    net = minnet.Network([100_000, 1], init="zeros")
    with pytest.raises(TypeError):
        net.layer_dims[0] = 1
    with pytest.raises(ValueError, match=r"X must have shape \(n_x=100000, m\)"):
        net.forward(np.ones((1, 1)))


def test_hidden_written_is_refused_so_save_records_what_is_computed(tmp_path):
    net = minnet.Network([2, 4, 1], hidden="relu", seed=1)
    X, _ = _data(net)
    with pytest.raises(AttributeError):
        net.hidden = "tanh"
    net.save(tmp_path / "n.npz")
    np.testing.assert_array_equal(minnet.Network.load(tmp_path / "n.npz").forward(X), net.forward(X))


def test_lambd_is_validated_and_takes_effect():
    net = minnet.Network([2, 3, 1], seed=1)
    X, Y = _data(net)
    plain = net.cost(X, Y)
    for bad, exc in [(-1e6, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), ("1", TypeError),
                     (None, TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="lambd must be"):
            net.lambd = bad
    assert net.lambd == 0.0 and net.cost(X, Y) == plain
    net.lambd = 2
    assert type(net.lambd) is float and net.config["lambd"] == 2.0
    W = np.concatenate([net.parameters["W1"].ravel(), net.parameters["W2"].ravel()])
    assert net.cost(X, Y) == pytest.approx(plain + 2.0 / (2 * X.shape[1]) * np.sum(W ** 2), rel=1e-12)


def test_keep_prob_is_validated_and_takes_effect():
    net = minnet.Network([2, 6, 5, 1], seed=1)
    X, Y = _data(net, m=40)
    assert not net.uses_dropout
    net.keep_prob = 0.5  # a float becomes one value per hidden layer, as in the constructor
    assert net.uses_dropout and net.keep_prob.tolist() == [0.5, 0.5] and net.config["keep_prob"] == [0.5, 0.5]
    assert net.cost(X, Y, dropout_seed=1) != net.cost(X, Y)
    assert np.isfinite(net.fit(X, Y, epochs=2)["cost"]).all()
    net.keep_prob = [1.0, 0.25]
    assert net.keep_prob.tolist() == [1.0, 0.25]
    masks = net.dropout_masks(2000, 3)
    assert masks["D1"].mean() == 1.0 and 0.2 < masks["D2"].mean() < 0.3
    for bad, exc, match in [(0.0, ValueError, r"keep_prob must be a finite number in \(0\.0, 1\.0\]"),
                            (1.5, ValueError, "keep_prob must be"), ([0.5], ValueError, "one number or 2 numbers"),
                            ([0.5, 0.5, 0.5], ValueError, "one number or 2 numbers"),
                            ("0.5", TypeError, "keep_prob must be a real number")]:
        with pytest.raises(exc, match=match):
            net.keep_prob = bad
    assert net.keep_prob.tolist() == [1.0, 0.25]


def test_keep_prob_cannot_be_changed_in_place():
    net = minnet.Network([2, 3, 1], keep_prob=0.5)
    with pytest.raises(ValueError, match="read-only"):
        net.keep_prob[0] = 0.0
    assert net.keep_prob.tolist() == [0.5]


def test_layout_and_parameters_cannot_be_replaced_by_something_else():
    net = minnet.Network([2, 3, 1])
    with pytest.raises(AttributeError):
        net.layout = minnet.Layout.from_layer_dims([50, 3, 1])
    with pytest.raises(TypeError, match="parameters must be a mapping"):
        net.parameters = 5
    with pytest.raises(ValueError, match=r"parameters must have exactly the keys W1, b1, W2, b2; missing W2, b2"):
        net.parameters = {"W1": np.zeros((3, 2)), "b1": np.zeros((3, 1))}


# --------------------------------------------------------------- net.parameters
def test_course_style_updates_write_into_theta():
    """parameters["W1"] = parameters["W1"] - lr * dW1, exactly as the course writes it, trains the net."""
    net = minnet.Network([2, 8, 1], seed=3)
    X, Y = _data(net, m=64)
    X[0] += 2 * Y[0]
    before = net.cost(X, Y)
    parameters = net.parameters
    for _ in range(200):
        grads = net.gradients(X, Y)
        for l in range(1, net.L + 1):
            parameters["W" + str(l)] = parameters["W" + str(l)] - 0.5 * grads["dW" + str(l)]
            parameters["b" + str(l)] = parameters["b" + str(l)] - 0.5 * grads["db" + str(l)]
    assert net.cost(X, Y) < 0.5 * before
    np.testing.assert_array_equal(net.theta[:16], parameters["W1"].ravel())


def test_parameters_is_a_fixed_mapping_of_views():
    net = minnet.Network([3, 4, 2], seed=1)
    p = net.parameters
    assert isinstance(p, MutableMapping) and list(p) == ["W1", "b1", "W2", "b2"] and len(p) == 4
    assert "W1" in p and "W3" not in p and 1 not in p and p.get("W3") is None
    assert all(np.shares_memory(p[k], net.theta) for k in p)
    p["b2"][1, 0] = 9.0
    assert net.theta[-1] == 9.0
    snapshot = p.copy()
    p["W1"] = np.ones((4, 3))
    assert type(snapshot) is dict and not np.shares_memory(snapshot["W1"], net.theta)
    assert not np.array_equal(snapshot["W1"], p["W1"])
    theta, layout = minnet.flatten(p)
    np.testing.assert_array_equal(theta, net.theta)
    with pytest.raises(KeyError):
        p["W3"]
    assert repr(p).startswith("Parameters({'W1': array([[1., 1., 1.],")


@pytest.mark.parametrize("key,value,exc,match", [
    ("W1", np.zeros((3, 4)), ValueError, r"parameters\['W1'\] must have shape \(4, 3\), got \(3, 4\)"),
    ("W1", np.zeros(12), ValueError, r"parameters\['W1'\] must have shape \(4, 3\), got \(12,\)"),
    ("b1", 0.0, ValueError, r"parameters\['b1'\] must have shape \(4, 1\), got \(\)"),
    ("W1", np.full((4, 3), "x"), TypeError, r"parameters\['W1'\] must be a numeric array"),
    ("W1", np.ones((4, 3), dtype=complex), TypeError, r"parameters\['W1'\] must be real"),
    ("W1", np.full((4, 3), np.nan), ValueError, r"parameters\['W1'\] contains NaN or inf"),
    ("b2", None, TypeError, r"parameters\['b2'\] must be a numeric array"),
    ("W3", np.zeros((2, 2)), ValueError, r"parameters has no block 'W3'; its keys are W1, b1, W2, b2"),
    (0, np.zeros((4, 3)), ValueError, r"parameters has no block 0"),
])
def test_parameters_refuse_bad_assignments(key, value, exc, match):
    net = minnet.Network([3, 4, 2], seed=1)
    theta = net.theta.copy()
    with pytest.raises(exc, match=match):
        net.parameters[key] = value
    np.testing.assert_array_equal(net.theta, theta)
    assert list(net.parameters) == ["W1", "b1", "W2", "b2"]


def test_parameters_keys_cannot_be_deleted():
    net = minnet.Network([3, 4, 2])
    for remove in (lambda p: p.__delitem__("W1"), lambda p: p.pop("b1"), lambda p: p.popitem(), lambda p: p.clear()):
        with pytest.raises(TypeError, match="keys are fixed by layer_dims"):
            remove(net.parameters)
    assert list(net.parameters) == ["W1", "b1", "W2", "b2"]


def test_assigning_all_parameters_checks_all_before_writing():
    """net.parameters = update_parameters(...) writes every block, or none when one is bad."""
    net = minnet.Network([3, 4, 2], seed=1)
    new = {k: np.full(v.shape, 0.5) for k, v in net.parameters.items()}
    net.parameters = new
    assert np.all(net.theta == 0.5)
    new = {k: np.full(v.shape, 2.0) for k, v in net.parameters.items()}
    new["b2"] = np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"parameters\['b2'\] must have shape \(2, 1\)"):
        net.parameters = new
    assert np.all(net.theta == 0.5)
    net.parameters = net.parameters  # the course's `parameters = update_parameters(parameters, ...)` idiom
    assert np.all(net.theta == 0.5)


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy, lambda n: pickle.loads(pickle.dumps(n)),
                                       lambda n: n.copy()], ids=["copy", "deepcopy", "pickle", "method"])
def test_copies_keep_parameters_linked_to_their_own_theta(duplicate):
    net = minnet.Network([3, 4, 2], output="softmax", lambd=0.3, keep_prob=0.7, seed=5)
    clone = duplicate(net)
    assert clone.config == net.config and clone.layout == net.layout
    np.testing.assert_array_equal(clone.theta, net.theta)
    assert not np.shares_memory(clone.theta, net.theta)
    clone.parameters["W1"] = clone.parameters["W1"] * 2.0
    np.testing.assert_array_equal(clone.theta[:12], 2.0 * net.theta[:12])
    clone.theta[12] = 7.0
    assert clone.parameters["b1"][0, 0] == 7.0 and net.parameters["b1"][0, 0] == 0.0
    X = np.ones((3, 2))
    assert not np.array_equal(clone.forward(X), net.forward(X))


def test_deepcopy_of_the_parameters_is_a_snapshot():
    net = minnet.Network([3, 4, 2], seed=5)
    snapshot = copy.deepcopy(net.parameters)
    net.parameters["W1"] = np.zeros((4, 3))
    assert snapshot["W1"].any()
    snapshot["W2"] = np.zeros((2, 4))
    assert net.parameters["W2"].any()


# ------------------------------------------------------------------- NaN and inf
def _poisoned(value=np.nan, index=(0, 1), block="W2"):
    net = minnet.Network([3, 4, 2], seed=1)
    net.parameters[block][index] = value  # an in-place write through a view: nothing can refuse it
    return net


def _save(net):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.npz"
        try:
            net.save(path)
        finally:
            assert not path.exists()


CALLS = {
    "forward": lambda net, X, Y: net.forward(X),
    "predict": lambda net, X, Y: net.predict(X),
    "accuracy": lambda net, X, Y: net.accuracy(X, Y),
    "cost": lambda net, X, Y: net.cost(X, Y),
    "gradients": lambda net, X, Y: net.gradients(X, Y),
    "fit": lambda net, X, Y: net.fit(X, Y, epochs=1),
    "save": lambda net, X, Y: _save(net),
}


@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_are_refused_naming_the_entry(call, value):
    net = _poisoned(value)
    X, Y = _data(net, m=5)
    theta = net.theta.copy()
    with pytest.raises(ValueError, match=rf"^W2\[0, 1\] is {value!r} \(theta\[17\]\): the network's parameters "
                                         rf"must be finite"):
        CALLS[call](net, X, Y)
    np.testing.assert_array_equal(net.theta, theta)


def test_relu_no_longer_hides_a_nan_weight():
    """NaN in W1 used to give finite cost, gradients and predictions (relu turned NaN into 0)."""
    net = minnet.Network([3, 4, 1], seed=1)
    X, Y = _data(net)
    net.parameters["W1"][...] = -1.0
    net.parameters["W1"][2, 1] = np.nan
    with pytest.raises(ValueError, match=r"W1\[2, 1\] is nan"):
        net.cost(X, Y)


def test_require_finite_names_the_first_and_counts_the_rest():
    net = _poisoned(np.nan, (1, 0), "b1")
    net.theta[3] = np.inf
    with pytest.raises(ValueError, match=r"^W1\[1, 0\] is inf \(theta\[3\], and 1 more NaN or inf\)"):
        net._require_finite()
    net.theta[3] = 0.0
    with pytest.raises(ValueError, match=r"^b1\[1, 0\] is nan \(theta\[13\]\)"):
        net._require_finite()


def test_finite_parameters_whose_sum_overflows_pass():
    net = minnet.Network([3, 4, 2], seed=1)
    net.theta[:] = 1.7e308
    net._require_finite()
    checkpoint_path = None
    with tempfile.TemporaryDirectory() as folder:
        checkpoint_path = Path(folder) / "big.npz"
        net.save(checkpoint_path)
        np.testing.assert_array_equal(minnet.Network.load(checkpoint_path).theta, net.theta)

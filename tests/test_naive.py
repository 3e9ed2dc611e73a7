"""Tests of the NumPy reference implementation in ``tests/naive.py``."""
import numpy as np
import pytest

try:  # works whether or not tests/ is a package
    from . import naive
except ImportError:
    import naive

ARCHS = [  # depth 1 to 4
    [3, 2],
    [4, 5, 3],
    [3, 4, 3, 3],
    [5, 4, 6, 3, 2],
]


def make_problem(layer_dims, output, m=7, seed=0, dropout=False):
    """Random X, Y, parameters and (optionally) fixed dropout masks."""
    rng = np.random.default_rng(seed + 1000)
    X = rng.standard_normal((layer_dims[0], m))
    n_L = layer_dims[-1]
    if output == "sigmoid":
        Y = (rng.random((n_L, m)) < 0.5).astype(np.float64)
    elif output == "softmax":
        Y = np.eye(n_L)[:, rng.integers(0, n_L, size=m)]
    else:
        Y = rng.standard_normal((n_L, m))
    parameters = naive.init_parameters(layer_dims, seed=seed)
    masks = keep_probs = None
    if dropout and len(layer_dims) > 2:
        keep_probs = [0.8, 0.6, 0.9][: len(layer_dims) - 2]
        masks = {f"D{l}": (rng.random((layer_dims[l], m)) < keep_probs[l - 1]).astype(np.float64)
                 for l in range(1, len(layer_dims) - 1)}
    return parameters, X, Y, masks, keep_probs


@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("lambd", [0.0, 0.7])
@pytest.mark.parametrize("output", naive.OUTPUTS)
@pytest.mark.parametrize("hidden", naive.HIDDEN)
@pytest.mark.parametrize("layer_dims", ARCHS, ids=lambda d: "x".join(map(str, d)))
def test_backward_matches_autograd(layer_dims, hidden, output, lambd, dropout):
    parameters, X, Y, masks, kp = make_problem(layer_dims, output, seed=len(layer_dims),
                                               dropout=dropout)
    grads = naive.backward(parameters, X, Y, hidden, output, lambd, masks, kp)
    for key, value in parameters.items():
        assert grads["d" + key].shape == value.shape
    theta = naive.theta_from(parameters)
    ag = naive.autograd_gradient(theta, layer_dims, X, Y, hidden, output, lambd, masks, kp)
    assert np.all(np.isfinite(ag))
    assert naive.difference(naive.grads_to_vector(grads), ag) <= 1e-10
    # the two cost implementations agree as well
    J = naive.cost(parameters, X, Y, hidden, output, lambd, masks, kp)
    J_ag = naive.autograd_cost(theta, layer_dims, X, Y, hidden, output, lambd, masks, kp)
    assert J == pytest.approx(float(J_ag), rel=1e-12, abs=1e-12)


def test_dropout_masks_change_cost_and_zero_columns():
    parameters, X, Y, masks, kp = make_problem([4, 5, 3], "sigmoid", dropout=True)
    assert masks["D1"].min() == 0.0 and masks["D1"].max() == 1.0
    J_plain = naive.cost(parameters, X, Y, "relu", "sigmoid")
    J_drop = naive.cost(parameters, X, Y, "relu", "sigmoid", masks=masks, keep_probs=kp)
    assert J_plain != J_drop
    # a unit dropped for all examples receives no gradient through W2's column
    masks["D1"][2, :] = 0.0
    grads = naive.backward(parameters, X, Y, "relu", "sigmoid", masks=masks, keep_probs=kp)
    assert np.all(grads["dW2"][:, 2] == 0.0)
    assert np.all(grads["dW1"][2, :] == 0.0) and grads["db1"][2, 0] == 0.0


@pytest.mark.parametrize("output", naive.OUTPUTS)
@pytest.mark.parametrize("dropout", [False, True])
def test_gradcheck_loop_matches_backward(output, dropout):
    layer_dims = [4, 5, 3, 3]
    parameters, X, Y, masks, kp = make_problem(layer_dims, output, m=6, seed=3, dropout=dropout)
    before = naive.theta_from(parameters)
    approx = naive.numpy_gradcheck_loop(parameters, X, Y, "tanh", output, 0.7, masks, kp)
    grads = naive.backward(parameters, X, Y, "tanh", output, 0.7, masks, kp)
    assert approx.shape == before.shape
    assert naive.difference(approx, naive.grads_to_vector(grads)) < 1e-7
    np.testing.assert_array_equal(naive.theta_from(parameters), before)  # untouched


def test_gradcheck_loop_detects_a_wrong_gradient():
    parameters, X, Y, _, _ = make_problem([3, 4, 2], "sigmoid", m=5)
    approx = naive.numpy_gradcheck_loop(parameters, X, Y, "tanh", "sigmoid")
    grad = naive.grads_to_vector(naive.backward(parameters, X, Y, "tanh", "sigmoid"))
    grad[3] *= 1.1
    assert naive.difference(approx, grad) > 1e-4


def test_hand_computed_linear_case():
    # Z = W X + b = [[5.5, -1.5]], A - Y = [[0.5, -0.5]], m = 2
    parameters = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([[0.5]])}
    X = np.array([[1.0, 0.0], [2.0, -1.0]])
    Y = np.array([[5.0, -1.0]])
    AL, caches = naive.forward(parameters, X, output="linear")
    np.testing.assert_array_equal(AL, [[5.5, -1.5]])
    assert len(caches) == 1 and caches[0][0] is X
    # J = 1/(2*2) * (0.25 + 0.25) = 0.125;  + 0.7/(2*2) * (1 + 4) = 0.875
    assert naive.cost(parameters, X, Y, "relu", "linear") == pytest.approx(0.125, abs=1e-15)
    assert naive.cost(parameters, X, Y, "relu", "linear", lambd=0.7) == pytest.approx(1.0, abs=1e-15)
    # dW = (A - Y)/m X^T = [[0.25, 0.75]] (+ 0.35 W), db = 0
    grads = naive.backward(parameters, X, Y, "relu", "linear", lambd=0.7)
    np.testing.assert_allclose(grads["dW1"], [[0.25 + 0.35, 0.75 + 0.70]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(grads["db1"], [[0.0]], rtol=0, atol=1e-15)


def test_hand_computed_zero_logits():
    X = np.ones((2, 4))
    Y_bin = np.array([[0.0, 1.0, 1.0, 0.0]])
    p1 = {"W1": np.zeros((1, 2)), "b1": np.zeros((1, 1))}
    assert naive.cost(p1, X, Y_bin, "relu", "sigmoid") == pytest.approx(np.log(2.0), rel=1e-15)
    Y_cat = np.eye(3)[:, [0, 1, 2, 2]]
    p3 = {"W1": np.zeros((3, 2)), "b1": np.zeros((3, 1))}
    assert naive.cost(p3, X, Y_cat, "relu", "softmax") == pytest.approx(np.log(3.0), rel=1e-15)


def test_stability_huge_logits():
    X = np.array([[1.0, -1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        # sigmoid: logits [1e4, -1e4]; wrong labels cost 1e4 each, right labels 0
        p = {"W1": np.array([[1e4]]), "b1": np.zeros((1, 1))}
        assert naive.cost(p, X, np.array([[0.0, 1.0]]), "relu", "sigmoid") == 1e4
        assert naive.cost(p, X, np.array([[1.0, 0.0]]), "relu", "sigmoid") == 0.0
        g = naive.backward(p, X, np.array([[0.0, 1.0]]), "relu", "sigmoid")
        np.testing.assert_allclose(g["dW1"], [[1.0]])
        # softmax: logits [[1e4, -1e4], [-1e4, 1e4], [0, 0]], both labels class 1
        p = {"W1": np.array([[1e4], [-1e4], [0.0]]), "b1": np.zeros((3, 1))}
        Y = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
        assert naive.cost(p, X, Y, "relu", "softmax") == pytest.approx(1e4, rel=1e-15)
        g = naive.backward(p, X, Y, "relu", "softmax")
        assert all(np.all(np.isfinite(v)) for v in g.values())
        # huge hidden pre-activations are fine too
        for hidden in naive.HIDDEN:
            p = naive.init_parameters([1, 3, 2], scale=1e4)
            J = naive.cost(p, X, np.eye(2), hidden, "softmax")
            assert np.isfinite(J)


def test_theta_round_trip_and_order():
    layer_dims = [3, 4, 2]
    parameters = naive.init_parameters(layer_dims, seed=5)
    theta = naive.theta_from(parameters)
    expected = np.concatenate([parameters["W1"].ravel(), parameters["b1"].ravel(),
                               parameters["W2"].ravel(), parameters["b2"].ravel()])
    np.testing.assert_array_equal(theta, expected)
    back = naive.parameters_from(theta, layer_dims)
    assert list(back) == ["W1", "b1", "W2", "b2"]
    for k in parameters:
        np.testing.assert_array_equal(back[k], parameters[k])
    theta[0] += 1.0  # copies, not views
    assert back["W1"][0, 0] == parameters["W1"][0, 0]
    with pytest.raises(ValueError):
        naive.parameters_from(theta[:-1], layer_dims)


def test_init_parameters_shapes_and_scale():
    parameters = naive.init_parameters([200, 300, 1], seed=1)
    assert parameters["W1"].shape == (300, 200) and parameters["b1"].shape == (300, 1)
    assert parameters["W2"].shape == (1, 300) and parameters["b2"].shape == (1, 1)
    assert parameters["W1"].std() == pytest.approx(np.sqrt(2 / 200), rel=0.05)
    assert np.all(parameters["b1"] != 0.0)
    again = naive.init_parameters([200, 300, 1], seed=1)
    np.testing.assert_array_equal(again["W1"], parameters["W1"])
    assert naive.init_parameters([2, 3], scale=0.5)["W1"].dtype == np.float64


def test_difference():
    assert naive.difference(np.zeros(3), np.zeros(3)) == 0.0
    assert naive.difference(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert naive.difference(np.array([1.0]), np.array([-1.0])) == 1.0
    assert naive.difference(np.array([3.0, 0.0]), np.array([0.0, 4.0])) == pytest.approx(5.0 / 7.0)

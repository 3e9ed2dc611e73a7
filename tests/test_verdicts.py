"""Verdicts a user can trust, on code no one here wrote.

The course's own gradient-checking assignment (written as the course writes
it, in ``course.py``), the course's relu net with b = 0 on XOR inputs (every
b1 entry on a kink), networks trained to convergence with planted bugs, and
cost functions whose J cannot resolve the gradient at any step.
"""
import warnings

import numpy as np
import pytest

import minnet
from minnet import datasets

from . import course


# ================================================== the course's assignment
def course_check(fixed, **kwargs):
    X, Y, parameters = course.gradient_check_n_test_case()
    return minnet.check_gradients(
        lambda p: course.forward_propagation_n(X, Y, p)[0],
        lambda p: course.backward_propagation_n(X, Y, course.forward_propagation_n(X, Y, p)[1], fixed=fixed),
        parameters, **kwargs)


def course_difference(fixed):
    """What the course's own loop prints for the same case."""
    X, Y, parameters = course.gradient_check_n_test_case()
    _, cache = course.forward_propagation_n(X, Y, parameters)
    gradients = course.backward_propagation_n(X, Y, cache, fixed=fixed)
    return course.gradient_check_n(parameters, gradients, X, Y)


def test_course_assignment_with_its_planted_bugs_is_a_bug_in_W2_and_b1():
    report = course_check(fixed=False)
    assert report.verdict == "bug"
    assert report.worst_block in ("W2", "b1")
    assert report.blocks["W2"].verdict == "bug" and report.blocks["b1"].verdict == "bug"
    for name in ("W1", "b2", "W3", "b3"):
        assert report.blocks[name].verdict == "correct"
    # the notes' number at the user's epsilon is the course's own
    assert report.difference == pytest.approx(course_difference(False), rel=1e-6)
    assert "persists" in report.note()


def test_course_assignment_fixed_is_correct_at_the_default_epsilon():
    expected = course_difference(True)
    assert expected > 1e-7  # the course's loop sits just above its own "correct" band
    report = course_check(fixed=True)
    assert report.verdict == "correct", str(report)
    assert report.difference == pytest.approx(expected, rel=1e-3)
    assert report.refereed_difference < 1e-7 and report.resolution < 1e-7
    assert all(b.verdict == "correct" for b in report.blocks.values()), str(report)
    text = str(report)
    assert f"{report.difference:.3e}" in text and "numerical" in text  # both numbers, and why they differ
    assert report.kinks == []  # J's rounding is not a kink


def test_course_functions_plug_in_as_they_are():
    X, Y, parameters = course.gradient_check_n_test_case()
    glued = course_check(fixed=True)
    direct = minnet.check_gradients(
        forward=course.forward_propagation_n,
        backward=lambda X, Y, cache: course.backward_propagation_n(X, Y, cache, fixed=True),
        X=X, Y=Y, parameters=parameters)
    assert np.array_equal(glued.approx, direct.approx) and glued.verdict == direct.verdict
    with pytest.raises(TypeError, match="backward"):
        minnet.check_gradients(forward=course.forward_propagation_n, X=X, Y=Y, parameters=parameters)
    with pytest.raises(TypeError, match="either"):
        minnet.check_gradients(glued, glued, parameters, forward=course.forward_propagation_n)


@pytest.mark.parametrize("mode", ["directional", "sample"])
def test_course_assignment_in_the_other_modes(mode):
    kwargs = {"mode": "directional"} if mode == "directional" else {"sample": 3}
    assert course_check(fixed=True, **kwargs).verdict == "correct"
    buggy = course_check(fixed=False, **kwargs)
    assert buggy.verdict == "bug"
    assert buggy.worst_block in ("W2", "b1")


# ======================================== relu, b = 0, 0/1 inputs: kinks
def relu(x):
    return np.maximum(0, x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def xor_problem():
    """The course's 2-layer relu net, b initialized to 0, on the four XOR points."""
    X = np.array([[0., 0., 1., 1.], [0., 1., 0., 1.]])
    Y = np.array([[0., 1., 1., 0.]])
    rng = np.random.default_rng(0)
    parameters = {"W1": rng.standard_normal((4, 2)) * np.sqrt(2 / 2), "b1": np.zeros((4, 1)),
                  "W2": rng.standard_normal((1, 4)) * np.sqrt(2 / 4), "b2": np.zeros((1, 1))}

    def forward(X, Y, p):
        m = X.shape[1]
        Z1 = np.dot(p["W1"], X) + p["b1"]
        A1 = relu(Z1)
        Z2 = np.dot(p["W2"], A1) + p["b2"]
        A2 = sigmoid(Z2)
        cost = -1. / m * np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))
        return cost, (Z1, A1, Z2, A2, p["W2"])

    def backward(X, Y, cache):
        m = X.shape[1]
        Z1, A1, Z2, A2, W2 = cache
        dZ2 = A2 - Y
        dZ1 = np.dot(W2.T, dZ2) * np.int64(Z1 > 0)
        return {"dW1": 1. / m * np.dot(dZ1, X.T), "db1": 1. / m * np.sum(dZ1, axis=1, keepdims=True),
                "dW2": 1. / m * np.dot(dZ2, A1.T), "db2": 1. / m * np.sum(dZ2, axis=1, keepdims=True)}

    return forward, backward, X, Y, parameters


def test_relu_net_with_zero_biases_on_xor_is_correct_with_its_kinks_listed():
    forward, backward, X, Y, parameters = xor_problem()
    report = minnet.check_gradients(lambda p: forward(X, Y, p)[0], lambda p: backward(X, Y, forward(X, Y, p)[1]),
                                    parameters)
    assert report.verdict == "correct", str(report)
    assert sorted(report.kinks) == [("b1", i, 0) for i in range(4)]
    assert "kink" in str(report)
    # counted, the kinks are what they are: the two one-sided slopes differ
    counted = minnet.check_gradients(forward=forward, backward=backward, X=X, Y=Y, parameters=parameters,
                                     include_kinks=True)
    assert counted.verdict in ("suspicious", "bug")
    assert counted.worst_block == "b1"


def test_a_smooth_cost_has_no_kinks_even_when_its_rounding_is_large():
    # J = 1e3 + sum(w^3): rounding of J is 1e3 times its gradient's scale, no kink anywhere
    cost = lambda p: 1e3 + float(np.sum(p["w"] ** 3))
    grads = lambda p: {"dw": 3 * p["w"] ** 2}
    report = minnet.check_gradients(cost, grads, {"w": np.linspace(0.5, 2.0, 7)})
    assert report.kinks == []
    assert report.verdict == "correct", str(report)


# ======================================== trained to convergence
def nearest_pair(X, labels):
    """The two examples of one class that lie closest together: swapping them is a small bug."""
    best = None
    for i in range(X.shape[1]):
        for j in range(i + 1, X.shape[1]):
            if labels[i] == labels[j]:
                d = np.linalg.norm(X[:, i] - X[:, j])
                best = min(best or (d, i, j), (d, i, j))
    return list(best[1:])


def tanh_softmax_functions(X, labels, lambd, bug=None):
    """A learner's tanh / softmax network with L2, the same function minnet computes.

    bug "one_entry" leaves dW2[1, 2] at 0; "swap_examples" pairs two nearby
    examples' inputs with each other's dZ1 in dW1 (an indexing slip).
    """
    m = X.shape[1]
    Y = np.eye(3)[:, labels]
    order = np.arange(m)
    i, j = nearest_pair(X, labels)
    order[[i, j]] = order[[j, i]]

    def forward(p):
        Z1 = np.dot(p["W1"], X) + p["b1"]
        A1 = np.tanh(Z1)
        Z2 = np.dot(p["W2"], A1) + p["b2"]
        Z2 = Z2 - Z2.max(axis=0, keepdims=True)
        logp = Z2 - np.log(np.sum(np.exp(Z2), axis=0, keepdims=True))
        cost = -np.sum(Y * logp) / m + lambd / (2 * m) * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        return cost, (A1, np.exp(logp))

    def grads(p):
        A1, A2 = forward(p)[1]
        dZ2 = A2 - Y
        dW2 = np.dot(dZ2, A1.T) / m + lambd / m * p["W2"]
        if bug == "one_entry":
            dW2[1, 2] = 0.0
        dZ1 = np.dot(p["W2"].T, dZ2) * (1 - A1 ** 2)
        inputs = X[:, order] if bug == "swap_examples" else X
        dW1 = np.dot(dZ1, inputs.T) / m + lambd / m * p["W1"]
        return {"dW1": dW1, "db1": np.sum(dZ1, axis=1, keepdims=True) / m,
                "dW2": dW2, "db2": np.sum(dZ2, axis=1, keepdims=True) / m}

    return (lambda p: forward(p)[0]), grads


@pytest.fixture(scope="module")
def converged():
    X, labels = datasets.blobs(m=60, n_classes=3, seed=0)
    net = minnet.Network([2, 8, 3], hidden="tanh", output="softmax", lambd=0.1, seed=0)
    net.fit(X, labels, optimizer="adam", learning_rate=0.02, epochs=3000)
    grad = minnet.flatten_gradients(net.gradients(X, labels), net.layout)
    assert np.linalg.norm(grad) < 1e-4 * np.linalg.norm(net.theta)  # converged
    return net, X, labels


@pytest.mark.parametrize("bug, block", [("one_entry", "W2"), ("swap_examples", "W1")])
def test_bugs_planted_in_a_converged_net_are_not_called_correct(converged, bug, block):
    net, X, labels = converged
    cost_fn, grads_fn = tanh_softmax_functions(X, labels, 0.1, bug)
    parameters = {k: v.copy() for k, v in net.parameters.items()}
    assert cost_fn(parameters) == pytest.approx(net.cost(X, labels), rel=1e-12)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert report.verdict in ("suspicious", "bug"), str(report)
    assert report.worst_block == block
    assert report.blocks[block].verdict in ("suspicious", "bug")


def test_a_correct_converged_net_is_never_called_wrong(converged):
    net, X, labels = converged
    cost_fn, grads_fn = tanh_softmax_functions(X, labels, 0.1)
    parameters = {k: v.copy() for k, v in net.parameters.items()}
    # two whole evaluations of J cannot resolve such small gradients to 1e-7: inconclusive, not a bug
    assert minnet.check_gradients(cost_fn, grads_fn, parameters).verdict in ("correct", "inconclusive")
    # the incremental kernel subtracts per-example changes, and can
    report = minnet.gradient_check(net, X, labels)
    assert report.verdict == "correct", str(report)
    assert report.resolution < 1e-9


# ======================================== when J cannot resolve anything
def quadratic():
    cost = lambda p: float(np.sum(p["w"] ** 2))
    wrong = lambda p: {"dw": 3 * p["w"]}  # the gradient is 2 w
    return cost, wrong, {"w": np.array([0.5, -1.2, 2.0])}


def test_an_epsilon_that_cannot_move_theta_is_refused_or_answered_at_steps_that_can():
    cost, wrong, parameters = quadratic()
    with pytest.raises(ValueError, match="epsilon=1e-300 cannot move any entry of theta"):
        minnet.check_gradients(cost, wrong, parameters, epsilon=1e-300)
    net = minnet.Network([3, 4, 1], lambd=0.5)  # b = 0: the biases move, the weights do not
    X = np.random.default_rng(0).standard_normal((3, 8))
    Y = (X[:1] > 0).astype(float)
    for method in minnet.check.METHODS:
        report = minnet.gradient_check(net, X, Y, epsilon=1e-300, method=method)
        assert report.verdict == "correct", str(report)  # at the referee's steps, from theta's own scale
        assert "epsilon 1e-300 could not move 16 of them" in report.note()


def test_a_cost_whose_rounding_swamps_every_difference_is_inconclusive():
    cost = lambda p: 1e9 + float(np.sum(np.sin(p["w"])))
    slightly_wrong = lambda p: {"dw": np.cos(p["w"]) * 1.00001}
    report = minnet.check_gradients(cost, slightly_wrong, {"w": np.array([0.5, -1.2, 2.0])})
    assert report.verdict == "inconclusive", str(report)
    assert report.difference > 0.1  # the notes' number is pure noise here
    assert "another epsilon would not" in str(report)  # no remedy that cannot help
    right = lambda p: {"dw": np.cos(p["w"])}
    assert minnet.check_gradients(cost, right, {"w": np.array([0.5, -1.2, 2.0])}).verdict == "inconclusive"
    # far enough wrong and the referee's larger steps see it anyway: 1 % at steps of theta's own scale
    for factor in (1.01, -1.0):
        wrong = lambda p: {"dw": np.cos(p["w"]) * factor}
        assert minnet.check_gradients(cost, wrong, {"w": np.array([0.5, -1.2, 2.0])}).verdict == "bug"


def test_a_float32_cost_warns_and_is_not_called_a_bug():
    X, Y, parameters = course.gradient_check_n_test_case()

    def cost32(p):
        return np.float32(course.forward_propagation_n(X, Y, p)[0])

    grads = lambda p: course.backward_propagation_n(X, Y, course.forward_propagation_n(X, Y, p)[1], fixed=True)
    with pytest.warns(UserWarning, match="float32"):
        report = minnet.check_gradients(cost32, grads, parameters)
    assert report.verdict in ("correct", "inconclusive"), str(report)


def test_softmax_with_one_output_unit_is_refused():
    with pytest.raises(ValueError, match="sigmoid"):
        minnet.Network([3, 4, 1], output="softmax")
    minnet.Network([3, 4, 2], output="softmax")  # two units are fine


def test_gradient_check_callback_runs_the_given_check():
    seen = []

    def check(net, X, Y):
        seen.append((X.shape, float(net.cost(X, Y))))
        return "checked"

    X, Y = datasets.flower(m=32)
    callback = minnet.GradientCheck(at=[0, 3], check=check)
    history = minnet.Network([2, 4, 1]).fit(X, Y, epochs=3, callbacks=[callback])
    assert history["checks"] == callback.reports == {0: "checked", 3: "checked"}
    assert len(seen) == 2 and seen[0][1] != seen[1][1]
    with pytest.raises(TypeError, match="check"):
        minnet.GradientCheck(at=[0], check="gradient_check")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = minnet.Network([2, 4, 1]).fit(X, Y, epochs=1, callbacks=[minnet.GradientCheck(1)])["checks"][1]
    assert default.verdict == "correct"


# ======================================== the course's helper names
def test_the_course_helpers_return_what_the_course_returns():
    X, Y, parameters = course.gradient_check_n_test_case()
    ours, our_keys = minnet.dictionary_to_vector(parameters)
    theirs, their_keys = course.dictionary_to_vector(parameters)
    assert ours.shape == theirs.shape == (47, 1) and np.array_equal(ours, theirs) and our_keys == their_keys
    back = minnet.vector_to_dictionary(theirs, parameters)
    expected = course.vector_to_dictionary(theirs)
    assert all(np.array_equal(back[k], expected[k]) for k in expected)
    _, cache = course.forward_propagation_n(X, Y, parameters)
    gradients = course.backward_propagation_n(X, Y, cache)  # with dZ and dA entries too
    assert np.array_equal(minnet.gradients_to_vector(gradients), course.gradients_to_vector(gradients))
    flat, layout = minnet.flatten(parameters)
    assert np.array_equal(flat, theirs[:, 0])
    assert np.array_equal(minnet.flatten_gradients(gradients, layout), course.gradients_to_vector(gradients)[:, 0])

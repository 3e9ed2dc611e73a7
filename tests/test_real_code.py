"""Verdicts on backprop code written the way learners and other projects write it.

Every network here is a dict of W1, b1, ... with its own forward, cost,
backward and update rule, as in the course's notebooks and the usual
from-scratch tutorials; none is built by minnet. Each case is one that a
gradient check gets wrong if it skips entries it could not judge, trusts a
kink it did not prove, ignores shapes, shares its parameters with the user's
code, lets its own step decide, or cannot resolve small gradients.
"""
import json
import warnings

import numpy as np
import pytest

import minnet


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def relu(Z):
    return np.maximum(0, Z)


# ------------------------------------------------ an L-layer net, course style
def l_layer(X, Y, activation="relu", lambd=0.0, bug=None):
    """cost_fn and grads_fn of an L-layer net with a sigmoid output, the course's L_model_* written out.

    bug: None, ("factor", "dW1", 5.0), ("entry", "dW2", (i, j), 1.5), ("squeeze", "db2"),
    ("scale", s) (the cost and every gradient times s, the gradient of "dW1" off by 1.5x).
    """
    m = X.shape[1]
    act = {"relu": relu, "sigmoid": sigmoid}[activation]

    def forward(parameters):
        L = len(parameters) // 2
        A, caches = X, []
        for l in range(1, L + 1):
            Z = np.dot(parameters["W" + str(l)], A) + parameters["b" + str(l)]
            A_prev, A = A, (sigmoid(Z) if l == L else act(Z))
            caches.append((A_prev, Z, A))
        cost = -1. / m * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
        cost += lambd / (2 * m) * sum(np.sum(np.square(parameters["W" + str(l)])) for l in range(1, L + 1))
        return cost, caches

    def cost_fn(parameters):
        cost = forward(parameters)[0]
        return cost * bug[1] if bug and bug[0] == "scale" else cost

    def grads_fn(parameters):
        L = len(parameters) // 2
        _, caches = forward(parameters)
        grads = {}
        dZ = caches[-1][2] - Y
        for l in range(L, 0, -1):
            A_prev, Z, A = caches[l - 1]
            if l < L:
                dZ = dA * (np.int64(Z > 0) if activation == "relu" else A * (1 - A))
            grads["dW" + str(l)] = 1. / m * np.dot(dZ, A_prev.T) + lambd / m * parameters["W" + str(l)]
            grads["db" + str(l)] = 1. / m * np.sum(dZ, axis=1, keepdims=True)
            dA = np.dot(parameters["W" + str(l)].T, dZ)
        if bug and bug[0] == "factor":
            grads[bug[1]] = bug[2] * grads[bug[1]]
        if bug and bug[0] == "entry":
            grads[bug[1]][bug[2]] *= bug[3]
        if bug and bug[0] == "squeeze":
            grads[bug[1]] = grads[bug[1]].squeeze()
        if bug and bug[0] == "scale":
            grads = {k: g * bug[1] for k, g in grads.items()}
            grads["dW1"] = grads["dW1"] * 1.5
        return grads

    return cost_fn, grads_fn


def initialize(layer_dims, scale=None, seed=1):
    rng = np.random.default_rng(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        factor = np.sqrt(2 / layer_dims[l - 1]) if scale is None else scale
        parameters["W" + str(l)] = rng.standard_normal((layer_dims[l], layer_dims[l - 1])) * factor
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def data(n_x=4, m=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    Y = (X[:1] + 0.5 * X[1:2] > 0).astype(float)
    return X, Y


def update(parameters, grads, learning_rate):
    """The author's own update rule, as the course writes it."""
    L = len(parameters) // 2
    return {**{"W" + str(l): parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)] for l in range(1, L + 1)},
            **{"b" + str(l): parameters["b" + str(l)] - learning_rate * grads["db" + str(l)] for l in range(1, L + 1)}}


def check(cost_fn, grads_fn, parameters, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing here should warn the user
        return minnet.check_gradients(cost_fn, grads_fn, parameters, **kwargs)


# ================================================== 1. nothing unchecked is correct
def test_a_first_layer_all_at_its_kink_with_a_wrong_dW1_is_a_bug():
    # zero-initialized first layer: every Z1 is 0, so every W1 and b1 entry straddles a relu kink
    X, Y = data()
    parameters = initialize([4, 5, 3, 1])
    parameters["W1"][...] = 0.0
    right = check(*l_layer(X, Y), parameters)
    assert right.verdict != "bug" and right.verdict != "suspicious", str(right)
    wrong = check(*l_layer(X, Y, bug=("factor", "dW1", 5.0)), parameters)
    assert wrong.verdict == "bug", str(wrong)
    assert wrong.worst_block == "W1"


def test_an_all_zero_example_with_zero_biases_puts_every_b1_entry_on_a_kink():
    X, Y = data()
    X[:, 3] = 0.0
    parameters = initialize([4, 5, 1])
    right = check(*l_layer(X, Y), parameters)
    assert right.verdict == "correct", str(right)
    assert right.blocks["b1"].n_checked == 5
    wrong = check(*l_layer(X, Y, bug=("factor", "db1", 5.0)), parameters)
    assert wrong.verdict == "bug" and wrong.worst_block == "b1", str(wrong)


def test_an_absolute_value_at_zero_is_a_proven_kink_and_judged():
    cost = lambda p: float(np.sum(np.abs(p["w"])))
    sign = lambda p: {"dw": np.sign(p["w"])}  # between the one-sided slopes -1 and 1 at 0
    report = check(cost, sign, {"w": np.array([0.0, 0.0, 0.0])})
    assert report.verdict == "correct", str(report)
    assert len(report.kinks) == 3 and "kink" in str(report)
    assert "numerical" not in (report.note() or "")
    wrong = check(cost, lambda p: {"dw": 3.0 * np.ones(3)}, {"w": np.zeros(3)})
    assert wrong.verdict == "bug", str(wrong)


def test_a_block_or_check_with_nothing_judged_is_inconclusive_never_correct():
    from minnet.check import judge
    empty = judge.measure(np.empty(0), np.empty(0), np.empty(0), thresholds=(1e-7, 1e-3))
    assert empty.verdict == "inconclusive"
    value = np.array([1.0, 2.0, 3.0])
    counted = np.array([True, True, False])  # the second block has nothing counted
    found = judge.tally(value, value, value, error=np.zeros(3), thresholds=(1e-7, 1e-3), groups=("starts",
                        np.array([0, 2])), n_groups=2,
                        counted=counted)
    assert [b.verdict for b in found.blocks] == ["correct", "inconclusive"]


def test_a_network_all_at_its_kinks_is_judged_at_a_nearby_point():
    net = minnet.Network([2, 3, 1])
    net.theta[:] = 0.0  # zero initialization: every hidden unit at its kink for every example
    X, Y = data(n_x=2, m=6)
    report = minnet.gradient_check(net, X, Y)
    assert len(report.kinks) == 9 and report.kink_record["n_nearby"] == 9, str(report)
    assert report.verdict == "correct" and "nearby point" in str(report)


# ================================================== 2. a kink must be proven
def test_a_smooth_sigmoid_net_has_no_kinks_and_a_one_entry_bug_is_caught():
    X, Y = data(n_x=5, m=20)
    parameters = initialize([5, 6, 4, 1], scale=1.0, seed=3)
    for l in (1, 2, 3):
        parameters["b" + str(l)] = np.random.default_rng(l).standard_normal(parameters["b" + str(l)].shape)
    right = check(*l_layer(X, Y, activation="sigmoid"), parameters)
    assert right.verdict == "correct" and right.kinks == [], str(right)
    for entry in [(0, 0), (2, 3), (3, 1)]:
        wrong = check(*l_layer(X, Y, activation="sigmoid", bug=("entry", "dW2", entry, 1.5)), parameters)
        assert wrong.kinks == [], str(wrong)
        assert wrong.verdict in ("suspicious", "bug") and wrong.worst_block == "W2", str(wrong)


# ================================================== 3. shapes are part of the gradient
def test_a_squeezed_db_is_a_bug_that_names_both_shapes_and_the_broken_update():
    X, Y = data()
    parameters = initialize([4, 5, 3, 1])
    cost_fn, grads_fn = l_layer(X, Y, bug=("squeeze", "db1"))
    new = update(parameters, grads_fn(parameters), 0.1)
    assert new["b1"].shape == (5, 5)  # what the author's own update does with it
    report = check(cost_fn, grads_fn, parameters)
    assert report.verdict == "bug" and report.worst_block == "b1", str(report)
    assert report.blocks["b1"].verdict == "bug"
    text = str(report)
    assert "(5,)" in text and "(5, 1)" in text and "(5, 5)" in text
    assert report.blocks["W1"].verdict == "correct"
    json.loads(report.to_json())


def test_a_transposed_dW_of_the_right_size_is_a_bug_and_a_missing_one_a_value_error():
    X, Y = data()
    parameters = initialize([4, 3, 3, 1])
    cost_fn, grads_fn = l_layer(X, Y)
    transposed = lambda p: {**grads_fn(p), "dW1": grads_fn(p)["dW1"].T}
    report = check(cost_fn, transposed, parameters)
    assert report.verdict == "bug" and report.worst_block == "W1", str(report)
    assert "(4, 3)" in str(report) and "(3, 4)" in str(report)
    missing = lambda p: {k: g for k, g in grads_fn(p).items() if k != "db2"}
    with pytest.raises(ValueError, match="db2"):
        minnet.check_gradients(cost_fn, missing, parameters)
    extra = lambda p: {**grads_fn(p), "dZ1": np.zeros((3, 12)), "dA1": np.zeros((3, 12))}
    assert check(cost_fn, extra, parameters).verdict == "correct"


# ================================================== 4. each call gets its own parameters
def test_a_cost_that_writes_into_its_W_is_warned_about_and_still_judged_right():
    X, Y = data()
    parameters = initialize([4, 5, 1])
    cost_fn, grads_fn = l_layer(X, Y, lambd=0.5)

    def clipping_cost(p):  # "regularizes" by clipping its argument in place
        np.clip(p["W1"], -0.05 + p["W1"], None, out=p["W1"])  # a no-op that still writes
        p["W1"] *= 1.0
        p["W1"] -= 1e-3 * p["W1"]
        return cost_fn({k: v / (1 - 1e-3) if k == "W1" else v for k, v in p.items()})

    with pytest.warns(UserWarning, match="clipping_cost") as seen:
        report = minnet.check_gradients(clipping_cost, grads_fn, parameters)
    assert len([w for w in seen if "writes into" in str(w.message)]) == 1  # one line, once
    assert report.verdict == "correct", str(report)
    bad = lambda p: {**grads_fn(p), "dW1": grads_fn(p)["dW1"] * 1.18}
    with pytest.warns(UserWarning, match="writes into"):
        assert minnet.check_gradients(clipping_cost, bad, parameters).verdict == "bug"
    assert np.array_equal(parameters["W1"], initialize([4, 5, 1])["W1"])  # the caller's dict is untouched


def test_a_cost_that_memoizes_on_the_dicts_identity_or_rebinds_a_key_is_judged_right():
    X, Y = data()
    parameters = initialize([4, 5, 1])
    cost_fn, grads_fn = l_layer(X, Y)
    memo = {}

    def memoized(p):
        if id(p) not in memo:
            memo[id(p)] = cost_fn(p)
        return memo[id(p)]

    assert minnet.check_gradients(memoized, grads_fn, parameters).verdict == "correct"

    def rebinding(p):
        p["W1"] = p["W1"] * 1.0  # rebinds the key: later writes to minnet's views would not reach it
        return cost_fn(p)

    with pytest.warns(UserWarning, match="rebinding"):
        assert minnet.check_gradients(rebinding, grads_fn, parameters).verdict == "correct"


# ================================================== 5. the step never decides
@pytest.mark.parametrize("epsilon", [1e-2, 3e-2])
def test_a_correct_backprop_at_a_large_epsilon_is_never_a_bug(epsilon):
    for activation, dims, seed in [("relu", [4, 5, 3, 1], 1), ("sigmoid", [4, 6, 1], 2), ("relu", [4, 8, 1], 3)]:
        X, Y = data(seed=seed)
        parameters = initialize(dims, seed=seed)
        report = check(*l_layer(X, Y, activation=activation, lambd=0.3), parameters, epsilon=epsilon)
        assert report.verdict == "correct", str(report)
        # the notes' number at this epsilon is off by the truncation; the referee's smaller steps settle it
        assert report.referee is not None and report.referee["steps"][0] < epsilon / 100
    wrong = check(*l_layer(X, Y, bug=("factor", "dW1", 1.18)), parameters, epsilon=epsilon)
    assert wrong.verdict == "bug", str(wrong)


@pytest.mark.parametrize("epsilon", [1e-310, 5e-324])
def test_a_subnormal_epsilon_gets_an_honest_answer(epsilon):
    X, Y = data()
    parameters = initialize([4, 5, 3, 1])
    for l in (1, 2, 3):  # every entry nonzero: a subnormal step cannot move any of them
        parameters["b" + str(l)][:] = 0.1
    with pytest.raises(ValueError, match="epsilon"):
        minnet.check_gradients(*l_layer(X, Y), parameters, epsilon=epsilon)
    net = minnet.Network([4, 5, 1])
    net.parameters["b1"][...] = 0.1
    net.parameters["b2"][...] = 0.1
    with pytest.raises(ValueError, match="epsilon"):
        minnet.gradient_check(net, X, Y, epsilon=epsilon)
    parameters = initialize([4, 5, 3, 1])  # b = 0 moves, but J cannot see it
    report = check(*l_layer(X, Y), parameters, epsilon=epsilon)
    assert report.verdict in ("correct", "inconclusive"), str(report)
    wrong = check(*l_layer(X, Y, bug=("factor", "dW2", 2.0)), parameters, epsilon=epsilon)
    assert wrong.verdict in ("bug", "inconclusive"), str(wrong)


# ================================================== 6. resolution
def test_tiny_gradients_of_a_small_initialization_are_resolved():
    # J's rounding hides these gradients at small steps, and every Z is within 1e-4 of a relu kink: the referee's
    # larger steps, and a nearby point for the entries still too coarse, resolve them
    X, Y = data(n_x=6, m=30)
    parameters = initialize([6, 8, 5, 1], scale=0.01, seed=2)
    cost_fn, grads_fn = l_layer(X, Y)
    g = minnet.flatten_gradients(grads_fn(parameters), minnet.flatten(parameters)[1])
    assert np.sqrt(np.mean(g[:-1] ** 2)) < 1e-3 and 0.5 < cost_fn(parameters) < 1.0
    report = check(cost_fn, grads_fn, parameters)
    assert report.verdict == "correct", str(report)
    wrong = check(*l_layer(X, Y, bug=("factor", "dW2", 1.5)), parameters)
    assert wrong.verdict == "bug" and wrong.worst_block == "W2", str(wrong)


def test_gradients_near_the_underflow_limit_neither_vanish_nor_hide_a_bug():
    X, Y = data()
    parameters = initialize([4, 5, 1], seed=4)
    parameters["b1"][:] = 0.3
    right = check(*l_layer(X, Y, bug=("scale", 1.0)), parameters)
    assert right.verdict == "bug" and right.worst_block == "W1"  # the planted 1.5x, at ordinary scale
    tiny = check(*l_layer(X, Y, bug=("scale", 1e-170)), parameters)
    assert tiny.verdict == "bug" and tiny.worst_block == "W1", str(tiny)
    assert tiny.blocks["W1"].difference == pytest.approx(right.blocks["W1"].difference, rel=1e-6)
    assert tiny.blocks["b1"].verdict in ("correct", "inconclusive")


# ================================================== 7. JSON
def test_every_report_serializes_to_valid_json_with_null_for_nan_and_inf():
    cost = lambda p: 1e9 + float(np.sum(np.sin(p["w"])))
    nan_grad = lambda p: {"dw": np.cos(p["w"])}
    for report in [check(cost, nan_grad, {"w": np.array([0.5, -1.2, 2.0])}),
                   check(lambda p: float(np.sum(p["w"] ** 2)), lambda p: {"dw": 2 * p["w"]},
                         {"w": np.array([0.5, 0.0])}, epsilon=1e-320)]:
        text = report.to_json()
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text)


def test_include_kinks_takes_only_a_bool():
    cost = lambda p: float(np.sum(p["w"] ** 2))
    grads = lambda p: {"dw": 2 * p["w"]}
    with pytest.raises(TypeError, match="include_kinks"):
        minnet.check_gradients(cost, grads, {"w": np.ones(2)}, include_kinks="no")
    with pytest.raises(TypeError, match="include_kinks"):
        minnet.gradient_check(minnet.Network([2, 2, 1]), *data(n_x=2, m=4), include_kinks="no")

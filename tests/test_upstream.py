"""The upstream line: a wrong dW and db blamed on the dZ they follow from, never on a line that is right.

Real checks of the course's gradient-checking network (``tests/course.py``: its dict holds dZ and dA),
of the learner's 3-layer network with L2 and dropout (``tests/learner.py``) and of the course's L-layer
network (``minnet.course``: dA, dW and db only, so dZ is recovered from dA).
"""
import functools

import numpy as np
import pytest

import minnet
from minnet import course as deep
from minnet.check import judge
from minnet.check.upstream import locate

from . import course, learner


# ============================================ the course's gradient-check network
def backward(change=None):
    """The course's backward_propagation_n without its two planted bugs, with ``change`` planted instead."""
    def backward_propagation_n(X, Y, cache):
        m = X.shape[1]
        (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
        dZ3 = A3 - Y
        dW3 = 1. / m * np.dot(dZ3, A2.T)
        db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
        dA2 = np.dot(W3.T, dZ3)
        dZ2 = np.multiply(dA2, np.int64(A2 > 0))
        if change == "dZ2":  # another activation's derivative
            dZ2 = dA2 * (1 - np.power(A2, 2))
        dW2 = 1. / m * np.dot(dZ2, A1.T)
        db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
        dA1 = np.dot(W2.T, dZ2)
        dZ1 = np.multiply(dA1, np.int64(A1 > 0))
        if change in ("no_mask_dZ1", "no_mask_dZ1_and_db1"):
            dZ1 = dA1
        dW1 = 1. / m * np.dot(dZ1, X.T)
        db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
        if change in ("db1_4_over_m", "no_mask_dZ1_and_db1"):
            db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)
        if change == "dW1_doubled":
            dW1 = 2 * dW1
        return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
                "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return backward_propagation_n


@functools.lru_cache(maxsize=None)
def course_check(change):
    """(grads, parameters, X, verdicts, numerical) of the course's network with ``change`` (or "planted")."""
    X, Y, parameters = course.gradient_check_n_test_case()
    function = course.backward_propagation_n if change == "planted" else backward(change)
    report = minnet.check_gradients(forward=course.forward_propagation_n, backward=function,
                                    parameters=parameters, X=X, Y=Y)
    _, cache = course.forward_propagation_n(X, Y, parameters)
    return function(X, Y, cache), parameters, X, verdicts_of(report), numerical_of(report)


def verdicts_of(report):
    return {name: block.verdict for name, block in report.blocks.items()}


def numerical_of(report):
    """{block: (refereed values, errors)}, as the report holds them."""
    found = {}
    for name, block in report.blocks.items():
        part = slice(block.offset, block.offset + int(np.prod(block.shape)))
        found[name] = (report.refereed[part], report.error[part])
    return found


def test_a_missing_mask_in_dZ1_is_found_in_dZ1():
    grads, parameters, X, verdicts, _ = course_check("no_mask_dZ1")
    assert {name for name, v in verdicts.items() if v != judge.CORRECT} == {"W1", "b1"}
    finding, notes = locate(grads, parameters, X=X, verdicts=verdicts)
    assert {key: finding[key] for key in ("layer", "entry")} == {"layer": 1, "entry": "dZ1"}
    assert notes == []
    # layer 2 is right and dA1 is W2.T @ dZ2: the sentence narrows it down to making dZ1 from dA1
    assert "dZ1" in finding["text"] and "from dA1" in finding["text"] and "derivative" in finding["text"]


def test_a_mistake_in_dZ2_shows_in_layers_2_and_1_and_is_named_in_layer_2():
    grads, parameters, X, verdicts, numerical = course_check("dZ2")
    assert all(verdicts[name] == judge.BUG for name in ("W1", "b1", "W2", "b2"))
    for given in (None, numerical):
        finding, _ = locate(grads, parameters, X=X, verdicts=verdicts, numerical=given)
        assert (finding["layer"], finding["entry"]) == (2, "dZ2")


@pytest.mark.parametrize("change", ["db1_4_over_m", "dW1_doubled", "planted"])
def test_a_wrong_line_of_its_own_blames_nothing_upstream(change):
    """db1 with 4/m: dW1 follows from dZ1 and is right, db1 does not follow. dW1 doubled: the other way."""
    grads, parameters, X, verdicts, numerical = course_check(change)
    assert any(v == judge.BUG for v in verdicts.values())
    for given in (None, numerical):
        assert locate(grads, parameters, X=X, verdicts=verdicts, numerical=given) == (None, [])


def test_correct_code_gives_none():
    grads, parameters, X, verdicts, numerical = course_check(None)
    assert set(verdicts.values()) == {judge.CORRECT}
    assert locate(grads, parameters, X=X, verdicts=verdicts, numerical=numerical) == (None, [])


def test_without_dZ_entries_nothing_is_said():
    grads, parameters, X, verdicts, _ = course_check("no_mask_dZ1")
    without_dZ = {key: value for key, value in grads.items() if not key.startswith("dZ")}
    assert locate(without_dZ, parameters, X=X, verdicts=verdicts) == (None, [])  # no dA0 to recover dZ1 from
    grads, parameters, X, verdicts, _ = course_check("dZ2")
    bare = {key: value for key, value in grads.items() if key[:2] in ("dW", "db")}
    assert locate(bare, parameters, X=X, verdicts=verdicts) == (None, [])


@pytest.mark.parametrize("bad, said", [
    (lambda dZ1: dZ1.T, "has shape (3, 5)"),
    (lambda dZ1: dZ1[:, :2], "has shape (5, 2)"),
    (lambda dZ1: np.where(dZ1 > 0, np.nan, dZ1), "NaN"),
    (lambda dZ1: "dZ1", "not an array of numbers"),
])
def test_a_bad_dZ_is_ignored_with_a_note(bad, said):
    grads, parameters, X, verdicts, _ = course_check("no_mask_dZ1")
    grads = dict(grads, dZ1=bad(grads["dZ1"]))
    finding, notes = locate(grads, parameters, X=X, verdicts=verdicts)
    assert finding is None
    assert len(notes) == 1 and notes[0].startswith("dZ1") and said in notes[0] and "ignored" in notes[0]


def test_a_bad_dA_is_ignored_with_a_note_and_the_rest_still_works():
    grads, parameters, X, verdicts, _ = course_check("no_mask_dZ1")
    grads = dict(grads, dA1=grads["dA1"][:2])
    finding, notes = locate(grads, parameters, X=X, verdicts=verdicts)
    assert (finding["layer"], finding["entry"]) == (1, "dZ1")
    assert "from dA1" not in finding["text"]  # the narrowing needs dA1
    assert len(notes) == 1 and notes[0].startswith("dA1 has shape (2, 3)")


def test_a_bad_X_is_ignored_with_a_note():
    grads, parameters, X, verdicts, _ = course_check("no_mask_dZ1")
    finding, notes = locate(grads, parameters, X=X[:2], verdicts=verdicts)
    assert finding["layer"] == 1 and "db1" in finding["text"] and "dW1" not in finding["text"]
    assert notes and notes[0].startswith("X has shape (2, 3)")


def test_two_mistakes_in_one_layer_need_the_numerical_gradient():
    """dZ1 without its mask and db1 with 4/m: db1 does not follow, so only dW1 can tell, and a wrong dW1
    that follows from dZ1 could also be a wrong L2 term in dW1's own line: said only with the numbers."""
    grads, parameters, X, verdicts, numerical = course_check("no_mask_dZ1_and_db1")
    assert locate(grads, parameters, X=X, verdicts=verdicts) == (None, [])
    finding, _ = locate(grads, parameters, X=X, verdicts=verdicts, numerical=numerical)
    assert (finding["layer"], finding["entry"]) == (1, "dZ1")
    assert finding["text"].startswith("dW1 follows correctly from your dZ1")


def test_an_inconclusive_block_proves_nothing():
    grads, parameters, X, verdicts, _ = course_check("no_mask_dZ1")
    verdicts = dict(verdicts, W1=judge.INCONCLUSIVE, b1=judge.INCONCLUSIVE)
    assert locate(grads, parameters, X=X, verdicts=verdicts) == (None, [])


# ============================================ the learner's network: L2 and dropout
@functools.lru_cache(maxsize=None)
def learner_check(bug, change=None):
    """(grads, parameters, X, verdicts, numerical) of the learner's network (L2 0.7, keep_prob 0.8)."""
    rng = np.random.default_rng(0)
    dims, m = ([4, 5, 5, 1] if bug in learner.SQUARE_BUGS else [4, 5, 3, 1]), 16
    X = rng.standard_normal((dims[0], m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    parameters = learner.initialize_parameters(dims, seed=1)
    masks = learner.draw_masks(dims, m, 0.8, rng)
    cost_fn, grads_fn = learner.make_functions(X, Y, masks, 0.8, 0.7, bug)
    if change == "no_l2_in_dW1":
        plain = grads_fn

        def grads_fn(params):
            return dict(plain(params), dW1=plain(params)["dW1"] - 0.7 / m * params["W1"])
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    return grads_fn(parameters), parameters, X, verdicts_of(report), numerical_of(report)


@pytest.mark.parametrize("bug, layer", [
    ("tanh_derivative_layer2", 2),  # layers 2 and 1 wrong: named where it first shows
    ("dropout_mask_forgotten_layer2", 2),
    ("dropout_not_rescaled_layer1", 1),
    ("W_instead_of_WT", 1),  # dA1 = W2 @ dZ2: in "dA1, or layer 2's backward"
    ("output_dZ_sign", 3),
])
def test_mistakes_above_dW_and_db_with_l2_and_dropout(bug, layer):
    grads, parameters, X, verdicts, numerical = learner_check(bug)
    for given in (None, numerical):
        finding, notes = locate(grads, parameters, X=X, verdicts=verdicts, numerical=given)
        assert (finding["layer"], finding["entry"]) == (layer, f"dZ{layer}") and notes == []


def test_the_narrowing_is_said_only_where_dA_is_right():
    """The forgotten mask leaves dA2 = W3.T @ dZ3 returned: the mistake is in making dZ2 from it. With the
    activation's derivative wrong, dA2 is masked and scaled as it should be, so nothing narrower is said."""
    forgotten = locate(*learner_check("dropout_mask_forgotten_layer2")[:2], X=None,
                       verdicts=learner_check("dropout_mask_forgotten_layer2")[3])[0]
    assert "making dZ2 from dA2" in forgotten["text"]
    derivative = locate(*learner_check("tanh_derivative_layer2")[:2], X=None,
                        verdicts=learner_check("tanh_derivative_layer2")[3])[0]
    assert "making dZ2" not in derivative["text"] and "dZ2 or before it" in derivative["text"]


@pytest.mark.parametrize("bug, change", [
    (None, None), ("no_l2_in_dW3", None), ("l2_half_factor", None), ("l2_in_db2", None),
    ("db1_4_over_m", None), ("dW2_doubled", None), ("one_entry_dW2", None), ("sign_dW1", None),
    ("dW3_without_1_over_m", None), (None, "no_l2_in_dW1"),
])
def test_l2_and_line_mistakes_are_never_blamed_on_dZ(bug, change):
    """dW follows from dZ with any L2 coefficient k, so a wrong k (dW1's L2 term missing, with X there to
    test dW1) must not read as a wrong dZ: db1 is right, and the numerical dW1 is dZ1 @ X.T / m + k' W1."""
    grads, parameters, X, verdicts, numerical = learner_check(bug, change)
    for given in (None, numerical):
        assert locate(grads, parameters, X=X, verdicts=verdicts, numerical=given) == (None, [])


# ============================================ the course's L-layer network: dA only
def l_layer(X, Y, change=None):
    """cost_fn, grads_fn of ``minnet.course``'s network with ``change`` planted in layer 2's backward."""
    def cost_fn(parameters):
        return deep.compute_cost(deep.L_model_forward(X, parameters)[0], Y)

    def grads_fn(parameters):
        AL, caches = deep.L_model_forward(X, parameters)
        grads = deep.L_model_backward(AL, Y, caches)
        if change is None:
            return grads
        (A_prev, W, b), Z = caches[1]
        dA = grads["dA2"]
        dZ = dA.copy() if change == "no_mask" else deep.relu_backward(dA, Z)
        grads["dA1"], grads["dW2"], grads["db2"] = deep.linear_backward(dZ, (A_prev, W, b))
        if change == "db_4_over_m":
            grads["db2"] = 4 * grads["db2"]
        if change == "masked_dA":  # dA1 not W2.T times anything: nothing to recover dZ2 from
            grads["dA1"] = grads["dA1"] * (np.arange(grads["dA1"].size).reshape(grads["dA1"].shape) % 3 > 0)
        if change in ("no_mask", "masked_dA"):  # layer 1 from this dA1, as L_model_backward goes on
            (A0, W1, b1), Z1 = caches[0]
            grads["dA0"], grads["dW1"], grads["db1"] = deep.linear_backward(deep.relu_backward(grads["dA1"], Z1),
                                                                            (A0, W1, b1))
        return grads

    return cost_fn, grads_fn


@pytest.mark.parametrize("change, expected, recovered_from", [
    (None, None, None),
    ("no_mask", (2, "dZ2"), "dA1 = W2.T @ dZ2"),
    ("db_4_over_m", None, None),  # db2's own line
    # dA1 masked is W2.T times nothing: dZ2 is not recovered, and the dZ1 made from that dA1 is blamed
    ("masked_dA", (1, "dZ1"), "dA0 = W1.T @ dZ1"),
])
def test_dZ_is_recovered_from_dA_where_it_has_one_solution(change, expected, recovered_from):
    dims = [8, 6, 4, 1]  # no layer widens: W.T has full column rank everywhere
    X, Y = deep.cat_like_data(dims, 20)
    parameters = deep.initialize_parameters_deep(dims)
    cost_fn, grads_fn = l_layer(X, Y, change)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    grads = grads_fn(parameters)
    assert not any(key.startswith("dZ") for key in grads)
    finding, notes = locate(grads, parameters, X=X, verdicts=verdicts_of(report))
    assert notes == []
    if expected is None:
        assert finding is None
    else:
        assert (finding["layer"], finding["entry"]) == expected
        assert f"as your {recovered_from} gives it" in finding["text"]


def test_dZ_is_not_recovered_through_a_layer_that_widens():
    dims = [4, 5, 3, 1]  # W1.T is 4 x 5: dA0 does not determine dZ1
    X, Y = deep.cat_like_data(dims, 20)
    parameters = deep.initialize_parameters_deep(dims)
    cost_fn, grads_fn = l_layer(X, Y, "no_mask")
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    verdicts = verdicts_of(report)
    only_layer_1 = dict(verdicts, W2=judge.CORRECT, b2=judge.CORRECT)
    assert locate(grads_fn(parameters), parameters, X=X, verdicts=only_layer_1) == (None, [])
    assert locate(grads_fn(parameters), parameters, X=X, verdicts=verdicts)[0]["layer"] == 2

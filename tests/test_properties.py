"""Property tests (hypothesis) over random architectures, batches, L2 strengths and dropout rates.

* backprop (Network.gradients) equals autograd's gradient of an independent cost (tests/naive.py);
* the full and the incremental gradient check compute the same finite differences;
* dictionary_to_vector and vector_to_dictionary are inverse to each other;
* gradient_check calls a correct network "correct".
"""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minnet
from minnet.ops.activations import ACTIVATIONS, PIECEWISE_LINEAR, SMOOTH
from minnet.ops.losses import OUTPUTS

from . import naive

HIDDEN = tuple(ACTIVATIONS)  # every registered activation, GELU included
OUTPUT = tuple(OUTPUTS)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


class Case:
    """A network with random theta, a batch (X, Y one-hot for softmax) and a dropout seed."""

    def __init__(self, net, X, Y, dropout_seed):
        self.net, self.X, self.Y, self.dropout_seed = net, X, Y, dropout_seed

    @property
    def masks(self):
        """The masks of dropout_seed in the oracle's format, or (None, None) without dropout."""
        if not self.net.uses_dropout:
            return None, None
        return self.net.dropout_masks(self.X.shape[1], self.dropout_seed), list(self.net.keep_prob)

    def __repr__(self):
        return (f"Case({self.net!r}, dropout_seed={self.dropout_seed}, theta={self.net.theta.tolist()}, "
                f"X={self.X.tolist()}, Y={self.Y.tolist()})")


@st.composite
def cases(draw, hidden=st.sampled_from(HIDDEN), output=st.sampled_from(OUTPUT), scale=st.floats(0.1, 2.0)):
    L = draw(st.integers(1, 3))
    dims = draw(st.lists(st.integers(1, 6), min_size=L + 1, max_size=L + 1))
    out = draw(output)
    if out == "softmax" and dims[-1] == 1:
        # one class: the loss is identically 0, every gradient is 0 and a relative
        # difference would compare pure round-off (see test_one_class_softmax)
        dims[-1] = draw(st.integers(2, 6))
    m = draw(st.integers(1, 16))
    lambd = draw(st.one_of(st.just(0.0), st.floats(0.0, 2.0)))
    keep = st.one_of(st.just(1.0), st.floats(0.3, 1.0, exclude_min=True))
    if draw(st.booleans()):
        keep_prob = draw(keep)
        if L == 1:  # no hidden layer: dropout is refused (nothing to drop); the same draws as before
            keep_prob = 1.0
    else:
        keep_prob = draw(st.lists(keep, min_size=L - 1, max_size=L - 1))
    net = minnet.Network(dims, hidden=draw(hidden), output=out, lambd=lambd, keep_prob=keep_prob)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net.theta = rng.standard_normal(net.theta.size) * draw(scale)
    X = rng.standard_normal((dims[0], m)) * draw(st.floats(0.1, 3.0))
    if out == "softmax":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    elif out == "sigmoid":
        Y = rng.integers(0, 2, (dims[-1], m)).astype(float)
    else:
        Y = rng.standard_normal((dims[-1], m))
    return Case(net, X, Y, draw(st.integers(0, 2**31 - 2)))


@settings(max_examples=150, **SETTINGS)
@given(cases())
def test_backprop_matches_autograd(case):
    net = case.net
    grads = net.gradients(case.X, case.Y, dropout_seed=case.dropout_seed)
    masks, keep_probs = case.masks
    expected = naive.autograd_gradient(net.theta, net.layer_dims, case.X, case.Y, net.hidden, net.output,
                                       net.lambd, masks, keep_probs)
    got = minnet.flatten_gradients(grads, net.layout)
    diff = naive.difference(got, expected)
    # Past 1e-10, every entry must still be within round-off of the terms it was summed
    # from: a saturated output (A = sigmoid(12.7) vs Y = 1) leaves A - Y ~ 1e-6 known only
    # to ~1e-16, in minnet and in the oracle alike. A wrong formula is off by O(gradient).
    bound = 1e3 * np.finfo(np.float64).eps * roundoff_scale(net, case.X, case.Y, masks, keep_probs)
    assert diff <= 1e-10 or np.all(np.abs(got - expected) <= bound), (diff, got, expected, bound)


def roundoff_scale(net, X, Y, masks, keep_probs):
    """Backprop with every term replaced by its magnitude: what round-off in each entry scales with."""
    params = naive.parameters_from(net.theta, net.layer_dims)
    AL, caches = naive.forward(params, X, net.hidden, net.output, masks, keep_probs)
    m, L = X.shape[1], net.L
    D = (np.abs(AL) + np.abs(Y)) / m
    scale = {}
    for l in range(L, 0, -1):
        A_prev = np.abs(caches[l - 1][0])
        W = np.abs(params[f"W{l}"])
        scale[f"dW{l}"] = D @ A_prev.T + net.lambd / m * W
        scale[f"db{l}"] = D.sum(axis=1, keepdims=True)
        if l > 1:
            D = W.T @ D * np.abs(naive._g(caches[l - 2][1], net.hidden, derivative=True))
            if masks is not None:
                D = D * masks[f"D{l - 1}"] / keep_probs[l - 2]
    return naive.grads_to_vector(scale)


@settings(max_examples=100, **SETTINGS)
@given(cases())
def test_full_and_incremental_check_agree(case):
    kwargs = dict(epsilon=1e-5, dropout_seed=case.dropout_seed)
    full = minnet.gradient_check(case.net, case.X, case.Y, method="full", **kwargs)
    incremental = minnet.gradient_check(case.net, case.X, case.Y, method="incremental", **kwargs)
    assert full.checked.all() and incremental.checked.all()
    # Both are centered differences of the same J. They may differ only by J's own
    # round-off: at most the report's roundoff_floor per entry (10 ulp of max(|J|, 1)
    # over epsilon), which matters only when the whole gradient is that small.
    diff = minnet.difference(incremental.approx, full.approx)
    error = np.linalg.norm(incremental.approx - full.approx)
    assert diff <= 1e-9 or error <= full.roundoff_floor * np.sqrt(full.approx.size), (diff, error)
    np.testing.assert_array_equal(incremental.grad, full.grad)
    np.testing.assert_array_equal(incremental.kink_mask, full.kink_mask)


METHOD = st.sampled_from(("incremental", "full"))


@settings(max_examples=100, **SETTINGS)
@given(cases(hidden=st.sampled_from(SMOOTH)), METHOD)
def test_check_says_correct_on_smooth_networks(case, method):
    report = minnet.gradient_check(case.net, case.X, case.Y, method=method, dropout_seed=case.dropout_seed)
    assert report.verdict == "correct", str(report)
    assert report.kinks == []


@settings(max_examples=100, **SETTINGS)
@given(cases(hidden=st.sampled_from(PIECEWISE_LINEAR)), METHOD)
def test_check_says_correct_on_relu_networks_without_kinks(case, method):
    report = minnet.gradient_check(case.net, case.X, case.Y, method=method, dropout_seed=case.dropout_seed,
                                   include_kinks=False)
    assert report.verdict == "correct", str(report)


# ------------------------------------------------------- flatten and back
block_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
finite = st.floats(allow_nan=False, allow_infinity=False)


def block_arrays(shape):
    return st.one_of(hnp.arrays(np.float64, shape, elements=finite),
                     hnp.arrays(np.int64, shape, elements=st.integers(-2**53, 2**53)),
                     hnp.arrays(np.bool_, shape),
                     hnp.arrays(np.float32, shape, elements=st.floats(width=32, allow_nan=False,
                                                                      allow_infinity=False)))


@st.composite
def course_dicts(draw):
    """"W1", "b1", ... of a random architecture, inserted in a random order."""
    dims = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    blocks = {}
    for l in range(1, len(dims)):
        blocks[f"W{l}"] = draw(block_arrays((dims[l], dims[l - 1])))
        blocks[f"b{l}"] = draw(block_arrays((dims[l], 1)))
    order = draw(st.permutations(list(blocks)))
    return dims, {k: blocks[k] for k in order}


@st.composite
def free_dicts(draw):
    """Any names (not all course-style), any shapes including 0-d and empty blocks."""
    names = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6, unique=True))
    return {name: draw(block_arrays(draw(block_shapes))) for name in names}


def _assert_round_trip(parameters, expected_order):
    theta, layout = minnet.flatten(parameters)
    assert theta.dtype == np.float64 and theta.ndim == 1
    assert layout.names == expected_order
    assert theta.size == layout.size == sum(np.asarray(a).size for a in parameters.values())
    views = minnet.unflatten(theta, layout)
    assert list(views) == expected_order
    for name, array in parameters.items():
        assert views[name].shape == np.shape(array)
        np.testing.assert_array_equal(views[name], np.asarray(array).astype(np.float64))
        assert views[name].size == 0 or np.shares_memory(views[name], theta)
    theta2, layout2 = minnet.flatten(views)
    assert layout2 == layout
    np.testing.assert_array_equal(theta2.view(np.uint64), theta.view(np.uint64))
    return theta, layout


@settings(max_examples=150, **SETTINGS)
@given(course_dicts())
def test_course_dict_round_trip(dims_and_dict):
    dims, parameters = dims_and_dict
    order = [f"{p}{l}" for l in range(1, len(dims)) for p in "Wb"]
    theta, layout = _assert_round_trip(parameters, order)
    assert layout == minnet.Layout.from_layer_dims(dims)
    # the layer-dims form of vector_to_dictionary agrees, and so does a Network with that theta
    by_dims = minnet.unflatten(theta, dims)
    net = minnet.Network(dims)
    net.theta = theta
    for name in order:
        np.testing.assert_array_equal(by_dims[name], np.asarray(parameters[name]).astype(np.float64))
        np.testing.assert_array_equal(net.parameters[name], by_dims[name])


@settings(max_examples=150, **SETTINGS)
@given(free_dicts())
def test_free_dict_round_trip(parameters):
    names = list(parameters)
    if all(re.fullmatch(r"d?[Wb]\d+", n) for n in names):  # W1, b1, W2, ... ("d" ignored, ties kept in order)
        names = sorted(names, key=lambda n: (int(n.lstrip("d")[1:]), n.lstrip("d")[0] == "b"))
    _assert_round_trip(parameters, names)


@settings(max_examples=50, **SETTINGS)
@given(cases())
def test_gradients_to_vector_is_theta_order(case):
    """gradients() keys and shapes mirror parameters, and flatten in theta's order."""
    grads = case.net.gradients(case.X, case.Y)
    assert list(grads) == ["d" + name for name in case.net.layout.names]
    vector = minnet.flatten_gradients(grads, case.net.layout)
    for block in case.net.layout.blocks:
        np.testing.assert_array_equal(vector[block.offset:block.offset + block.size],
                                      grads["d" + block.name].ravel())


def test_one_class_softmax_is_refused():
    """A softmax over one unit is 1 for every input: J is constant and nothing can be learned or checked."""
    with pytest.raises(ValueError, match="output='sigmoid'"):
        minnet.Network([3, 4, 1], hidden="tanh", output="softmax", lambd=0.0)

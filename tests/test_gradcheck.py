"""Gradient checking: minnet.gradient_check on Networks, minnet.check_gradients on a learner's code.

Oracles are independent of the code under test: the learner's NumPy network in
``tests/learner.py`` (with planted mistakes), the NumPy reference loop in
``tests/naive.py``, a sign oracle for relu kinks and plain centered differences
written here.
"""
import json

import time

import numba
import numpy as np
import pytest

import minnet
from minnet.ops.activations import ACTIVATIONS

try:  # works whether or not tests/ is a package
    from . import learner, naive
except ImportError:
    import learner
    import naive

HIDDEN = naive.HIDDEN
OUTPUTS = naive.OUTPUTS


# ------------------------------------------------------------------ helpers
def methods_for(net):
    """Every method that applies to net: "segment" needs relu or leaky_relu hidden layers."""
    return [m for m in minnet.check.METHODS if m != "segment" or net.hidden in ("relu", "leaky_relu")]


def targets(rng, output, n_out, m):
    if output == "sigmoid":
        return (rng.random((n_out, m)) < 0.5).astype(np.float64)
    if output == "softmax":
        return np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
    return rng.standard_normal((n_out, m))


def random_problem(seed):
    """A random correct Network with random X, Y; every (hidden, output) pair over 15 seeds.

    Returns net, X, Y, dropout_seed.
    """
    rng = np.random.default_rng(seed)
    hidden = HIDDEN[seed % len(HIDDEN)]
    output = OUTPUTS[(seed // len(HIDDEN)) % len(OUTPUTS)]
    L = int(rng.integers(1, 5))
    dims = [int(d) for d in rng.integers(1, 9, size=L + 1)]
    if output == "softmax":
        dims[-1] = max(dims[-1], 2)
    lambd = 0.0 if (seed // 12) % 2 == 0 else float(rng.uniform(0.05, 2.0))
    keep_prob = 1.0 if seed % 3 == 0 else [float(k) for k in rng.uniform(0.5, 0.95, size=L - 1)]
    init = ("he", "xavier", "random")[seed % 3]
    net = minnet.Network(dims, hidden=hidden, output=output, lambd=lambd, keep_prob=keep_prob, init=init,
                         seed=seed)
    for l in range(1, L + 1):  # nonzero biases: a zero bias hides bias mistakes and sits on relu kinks
        net.parameters[f"b{l}"][...] = rng.standard_normal(net.parameters[f"b{l}"].shape) * 0.3
    m = int(rng.integers(16, 65))
    X = rng.standard_normal((dims[0], m))
    Y = targets(rng, output, dims[-1], m)
    return net, X, Y, seed + 1


def naive_masks(net, m, dropout_seed):
    """The masks and keep probabilities naive.py needs for the net's deterministic check mode."""
    if not net.uses_dropout:
        return None, None
    return net.dropout_masks(m, dropout_seed), list(net.keep_prob)


def learner_problem(bug=None, lambd=0.7, keep_prob=0.8, m=16, seed=0):
    """X, Y, parameters, fixed masks and the learner's cost_fn / grads_fn with ``bug`` planted."""
    dims = [4, 5, 5, 1] if bug in learner.SQUARE_BUGS else [4, 5, 3, 1]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    parameters = learner.initialize_parameters(dims, seed=seed + 1)
    masks = learner.draw_masks(dims, m, keep_prob, rng)
    cost_fn, grads_fn = learner.make_functions(X, Y, masks, keep_prob, lambd, bug)
    return dims, X, Y, parameters, masks, cost_fn, grads_fn


def centered_differences(cost_fn, parameters, epsilon):
    """The notes' loop, on copies: (J(w + eps) - J(w - eps)) / (2 eps) for every entry, W1, b1, ... order."""
    names = [f"{p}{l}" for l in range(1, len(parameters) // 2 + 1) for p in "Wb"]
    work = {k: np.array(v, dtype=np.float64) for k, v in parameters.items()}
    out = []
    for name in names:
        block = work[name]
        for index in np.ndindex(block.shape):
            w = block[index]
            block[index] = w + epsilon
            J_plus = cost_fn(work)
            block[index] = w - epsilon
            J_minus = cost_fn(work)
            block[index] = w
            out.append((J_plus - J_minus) / (2 * epsilon))
    return np.array(out)


def kink_oracle(net, X, epsilon):
    """Entries of theta whose +-epsilon perturbation flips the sign of some hidden pre-activation."""
    dims, L = net.layer_dims, net.L
    theta = net.theta.copy()

    def hidden_signs(t):
        _, caches = naive.forward(naive.parameters_from(t, dims), X, "relu", "linear")
        return [caches[l][1] > 0 for l in range(L - 1)]

    base = hidden_signs(theta)
    found = set()
    for q in range(theta.size):
        for step in (epsilon, -epsilon):
            shifted = theta.copy()
            shifted[q] += step
            if any(np.any(s != s0) for s, s0 in zip(hidden_signs(shifted), base)):
                found.add(net.layout.locate(q))
    return found


def network_like_learner(dims, parameters, lambd, keep_prob):
    net = minnet.Network(dims, hidden="relu", output="sigmoid", lambd=lambd, keep_prob=keep_prob)
    theta, layout = minnet.flatten(parameters)
    assert layout == net.layout
    net.theta = theta
    return net


# ============================================ 1. planted bugs in a learner's code
@pytest.mark.parametrize("lambd", [0.0, 0.7])
@pytest.mark.parametrize("variant", [None, *learner.EQUIVALENT])
def test_correct_learner_code_is_judged_correct(variant, lambd):
    *_, parameters, _, cost_fn, grads_fn = learner_problem(variant, lambd=lambd)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert report.verdict == "correct"
    assert report.difference < 1e-7
    assert all(b.verdict == "correct" for b in report.blocks.values())
    assert list(report.blocks) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert report.checked.all() and report.kinks == []


@pytest.mark.parametrize("lambd", [0.0, 0.7])
@pytest.mark.parametrize("bug", sorted(learner.AFFECTED))
def test_planted_bug_is_found_in_its_block(bug, lambd):
    *_, parameters, _, cost_fn, grads_fn = learner_problem(bug, lambd=lambd)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    if lambd == 0.0 and bug in learner.L2_BUGS:
        # Without regularization the L2 mistake changes nothing: no false alarm.
        assert report.verdict == "correct"
        assert all(b.verdict == "correct" for b in report.blocks.values())
        return
    affected = learner.AFFECTED[bug]
    assert report.verdict == "bug", str(report)
    assert report.worst_block in affected, str(report)
    if len(affected) == 1:
        (block,) = affected
        assert report.worst_block == block
        assert report.blocks[block].verdict == "bug"
    else:
        assert any(report.blocks[b].verdict == "bug" for b in affected)
    for name, block in report.blocks.items():
        if name not in affected:
            assert block.verdict == "correct", f"{name} flagged although {bug} leaves it alone\n{report}"
    assert f"Look first at {report.worst_block}" in str(report)


def test_planted_bugs_cover_ten_classic_mistakes():
    assert len(learner.AFFECTED) >= 10
    assert sum(len(a) == 1 for a in learner.AFFECTED.values()) >= 8


@pytest.mark.parametrize("bug", sorted(set(learner.AFFECTED) - learner.COST_BUGS))
def test_affected_blocks_are_where_learner_and_minnet_backprop_disagree(bug):
    """Cross-checks the AFFECTED table (which the test above relies on) against minnet's backprop."""
    dims, X, Y, parameters, _, cost_fn, grads_fn = learner_problem(bug, lambd=0.7)
    net = network_like_learner(dims, parameters, 0.7, 0.8)
    # Same masks on both sides: the learner's cost with the network's masks is the network's J.
    masks = net.dropout_masks(X.shape[1], 5)
    cost_fn, grads_fn = learner.make_functions(X, Y, masks, 0.8, 0.7, bug)
    assert cost_fn(parameters) == pytest.approx(net.cost(X, Y, dropout_seed=5), rel=1e-12)
    reference = net.gradients(X, Y, dropout_seed=5)
    mine = grads_fn(parameters)
    differ = {name for name in net.layout.names
              if not np.allclose(mine["d" + name], reference["d" + name], rtol=1e-9, atol=1e-12)}
    assert differ == learner.AFFECTED[bug]


def test_cost_bug_leaves_the_gradients_right_and_the_cost_wrong():
    dims, X, Y, parameters, masks, cost_fn, grads_fn = learner_problem("cost_without_W1_in_l2", lambd=0.7)
    _, _, _, _, _, good_cost, good_grads = learner_problem(None, lambd=0.7)
    assert cost_fn(parameters) < good_cost(parameters)
    for key, value in good_grads(parameters).items():
        assert np.array_equal(grads_fn(parameters)[key], value)


@pytest.mark.parametrize("method", minnet.check.METHODS)
def test_learner_code_and_network_agree_through_both_checks(method):
    dims, X, Y, parameters, _, _, _ = learner_problem(None, lambd=0.7)
    net = network_like_learner(dims, parameters, 0.7, 0.8)
    masks = net.dropout_masks(X.shape[1], 3)
    cost_fn, grads_fn = learner.make_functions(X, Y, masks, 0.8, 0.7)
    assert cost_fn(parameters) == pytest.approx(net.cost(X, Y, dropout_seed=3), rel=1e-12)
    theirs = minnet.flatten_gradients(grads_fn(parameters), net.layout)
    ours = minnet.flatten_gradients(net.gradients(X, Y, dropout_seed=3), net.layout)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)

    net_report = minnet.gradient_check(net, X, Y, method=method, dropout_seed=3)
    assert net_report.verdict == "correct"
    learner_report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert learner_report.verdict == "correct"
    # Both numerical gradients are within rounding (~1e-9 at epsilon 1e-7) of the same derivative.
    assert minnet.difference(net_report.approx, learner_report.approx) < 1e-7
    np.testing.assert_allclose(net_report.grad, learner_report.grad, rtol=1e-10, atol=1e-13)


def test_check_gradients_numbers_are_plain_centered_differences():
    *_, parameters, _, cost_fn, grads_fn = learner_problem("dW2_doubled", lambd=0.7)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters, epsilon=1e-6)
    expected = centered_differences(cost_fn, parameters, 1e-6)
    np.testing.assert_allclose(report.approx, expected, rtol=1e-9, atol=1e-15)
    wanted = naive.grads_to_vector({k: v for k, v in grads_fn(parameters).items() if k[:2] in ("dW", "db")})
    assert np.array_equal(report.grad, wanted)
    assert report.difference == pytest.approx(naive.difference(expected, wanted), rel=1e-6)


def test_worst_entry_points_at_the_planted_entry():
    dims, X, Y, parameters, masks, cost_fn, grads_fn = learner_problem("one_entry_dW2", lambd=0.7)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    block = report.blocks["W2"]
    worst = block.worst[0]
    assert (worst["row"], worst["column"]) == learner.ONE_ENTRY
    assert worst["grad"] == grads_fn(parameters)["dW2"][learner.ONE_ENTRY]
    _, _, _, _, _, _, good_grads = learner_problem(None, lambd=0.7)
    true_value = good_grads(parameters)["dW2"][learner.ONE_ENTRY]
    assert worst["approx"] == pytest.approx(true_value, rel=1e-5, abs=1e-9)
    assert worst["error"] == pytest.approx(0.1, rel=1e-5)
    assert len(block.worst) == min(minnet.check.judge.N_WORST, 15)
    errors = [w["error"] for w in block.worst]
    assert errors == sorted(errors, reverse=True)
    assert all(w["error"] < 1e-6 for w in block.worst[1:])


# ======================================== 2. many random correct networks
@pytest.mark.parametrize("seed", range(60))
def test_random_correct_network_is_judged_correct(seed):
    net, X, Y, dropout_seed = random_problem(seed)
    methods = methods_for(net) if seed % 3 == 0 else ("auto",)
    for method in methods:
        report = minnet.gradient_check(net, X, Y, method=method, dropout_seed=dropout_seed)
        assert report.verdict == "correct", f"{net!r}\n{report}"
        assert all(b.verdict == "correct" for b in report.blocks.values()), str(report)
        assert report.checked.all()
        assert report.n_compared == net.layout.size - len(report.kinks)


def test_random_networks_cover_every_activation_output_and_regularization():
    seen = set()
    for seed in range(60):
        net, *_ = random_problem(seed)
        seen.add((net.hidden, net.output, net.lambd > 0, net.uses_dropout, net.L))
    assert {(h, o) for h, o, *_ in seen} == {(h, o) for h in HIDDEN for o in OUTPUTS}
    assert {s[2] for s in seen} == {False, True}
    assert {s[3] for s in seen} == {False, True}
    assert {s[4] for s in seen} == {1, 2, 3, 4}


# ================================ 3. full vs incremental vs the NumPy loop
# At the default epsilon = 1e-7 each centered difference of the full method carries
# the rounding of its two forward computations divided by 2 epsilon: about
# 1e-16 / 2e-7 ~ 1e-9 per entry, and the incremental kernel rounds differently. At epsilon =
# 1e-5 that noise is ~100 times smaller while both still approximate the same
# finite difference, so agreement to 1e-9 is a meaningful bound. The NumPy loop
# subtracts whole costs J (not per-example losses), so its own rounding is of the
# order eps_mach * J / epsilon ~ 1e-11 per entry; 1e-9 leaves a wide margin.
AGREEMENT_EPSILON = 1e-5


@pytest.mark.parametrize("seed", range(100, 116))
def test_full_incremental_and_numpy_loop_agree(seed):
    net, X, Y, dropout_seed = random_problem(seed)
    full = minnet.gradient_check(net, X, Y, epsilon=AGREEMENT_EPSILON, method="full", dropout_seed=dropout_seed)
    incremental = minnet.gradient_check(net, X, Y, epsilon=AGREEMENT_EPSILON, method="incremental",
                                        dropout_seed=dropout_seed)
    assert naive.difference(full.approx, incremental.approx) <= 1e-9
    assert full.kinks == incremental.kinks
    masks, keep_probs = naive_masks(net, X.shape[1], dropout_seed)
    loop = naive.numpy_gradcheck_loop({k: v.copy() for k, v in net.parameters.items()}, X, Y, net.hidden,
                                      net.output, net.lambd, masks, keep_probs, epsilon=AGREEMENT_EPSILON)
    assert naive.difference(full.approx, loop) <= 1e-9
    assert naive.difference(incremental.approx, loop) <= 1e-9
    # and backprop is the gradient of the NumPy reference cost
    reference = naive.grads_to_vector(naive.backward(net.parameters, X, Y, net.hidden, net.output, net.lambd,
                                                     masks, keep_probs))
    np.testing.assert_allclose(full.grad, reference, rtol=1e-9, atol=1e-12)


# ==================================================================== 4. threads
needs_two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has one thread")


@needs_two_threads
@pytest.mark.parametrize("method", minnet.check.METHODS)
def test_threads_give_bitwise_identical_results_and_are_restored(method):
    rng = np.random.default_rng(7)
    net = minnet.Network([6, 8, 7, 3], hidden="leaky_relu", output="softmax", lambd=0.3, keep_prob=0.8)
    X = rng.standard_normal((6, 48))
    Y = rng.integers(0, 3, size=48)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        two = minnet.gradient_check(net, X, Y, method=method, threads=2)
        assert numba.get_num_threads() == 1
        numba.set_num_threads(2)
        one = minnet.gradient_check(net, X, Y, method=method, threads=1)
        assert numba.get_num_threads() == 2
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one.approx, two.approx)
    assert np.array_equal(one.kink_mask, two.kink_mask)
    assert one.difference == two.difference and one.verdict == two.verdict == "correct"


def test_too_many_threads_is_refused_and_count_unchanged():
    net = minnet.Network([2, 3, 1])
    X, Y = np.ones((2, 4)), np.ones((1, 4))
    before = numba.get_num_threads()
    with pytest.raises(ValueError, match="threads"):
        minnet.gradient_check(net, X, Y, threads=numba.config.NUMBA_NUM_THREADS + 1)
    with pytest.raises(ValueError, match="threads"):
        minnet.gradient_check(net, X, Y, threads=0)
    assert numba.get_num_threads() == before


# ==================================================================== 5. dropout
@pytest.mark.parametrize("method", ["auto", "incremental", "full"])  # a tanh net
def test_deterministic_dropout_check_passes_and_uses_the_seeded_masks(method):
    rng = np.random.default_rng(11)
    net = minnet.Network([5, 6, 4, 2], hidden="tanh", output="sigmoid", lambd=0.2, keep_prob=[0.6, 0.7], seed=2)
    X = rng.standard_normal((5, 32))
    Y = targets(rng, "sigmoid", 2, 32)
    a = minnet.gradient_check(net, X, Y, method=method, dropout_seed=4)
    b = minnet.gradient_check(net, X, Y, method=method, dropout_seed=9)
    assert a.verdict == b.verdict == "correct"
    assert a.cost == net.cost(X, Y, dropout_seed=4)
    assert b.cost == net.cost(X, Y, dropout_seed=9)
    assert a.cost != b.cost and a.cost != net.cost(X, Y)  # masks matter, and differ between seeds
    masks, keep = net.dropout_masks(32, 4), list(net.keep_prob)
    reference = naive.grads_to_vector(naive.backward(net.parameters, X, Y, "tanh", "sigmoid", 0.2, masks, keep))
    np.testing.assert_allclose(a.grad, reference, rtol=1e-9, atol=1e-12)


def test_random_dropout_masks_are_refused():
    rng = np.random.default_rng(12)
    net = minnet.Network([4, 5, 3, 1], keep_prob=0.5)
    X = rng.standard_normal((4, 32))
    Y = targets(rng, "sigmoid", 1, 32)
    with pytest.raises(ValueError, match="dropout"):
        minnet.gradient_check(net, X, Y, dropout_seed=None)
    # without dropout there is nothing random, and dropout_seed is irrelevant
    plain = minnet.Network([4, 5, 3, 1])
    assert np.array_equal(minnet.gradient_check(plain, X, Y, dropout_seed=None).approx,
                          minnet.gradient_check(plain, X, Y, dropout_seed=3).approx)


def test_random_dropout_is_refused_even_when_two_draws_coincide():
    # Two random draws of masks give the same J here (almost every unit is kept), so
    # the refusal must not depend on observing two different costs.
    net = minnet.Network([1, 1, 1], hidden="tanh", keep_prob=1 - 1e-12)
    X, Y = np.array([[0.5]]), np.array([[1.0]])
    with pytest.raises(ValueError, match="dropout_seed"):
        minnet.gradient_check(net, X, Y, dropout_seed=None)
    # a tiny net with keep_prob 0.5 gives equal costs for many pairs of draws: refused every time
    coin = minnet.Network([1, 1, 1], hidden="tanh", keep_prob=0.5)
    for _ in range(20):
        with pytest.raises(ValueError, match="dropout"):
            minnet.gradient_check(coin, X, Y, dropout_seed=None)


def test_learner_cost_with_fresh_masks_is_refused():
    dims, X, Y, parameters, _, _, _ = learner_problem(None)
    rng = np.random.default_rng(0)

    def cost_fn(p):  # draws new dropout masks on every call, as in training
        masks = learner.draw_masks(dims, X.shape[1], 0.8, rng)
        A3, _ = learner.forward_propagation(X, p, masks, 0.8)
        return learner.compute_cost(A3, Y, p, 0.7)

    fixed = learner.draw_masks(dims, X.shape[1], 0.8, np.random.default_rng(1))
    _, grads_fn = learner.make_functions(X, Y, fixed, 0.8, 0.7)
    with pytest.raises(ValueError, match="not deterministic") as info:
        minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert "dropout" in str(info.value)


# ====================================================================== 6. kinks
def kinked_problem():
    """A relu net whose Z1[1, 5] is 1e-9: perturbing W1[1, :] or b1[1] by 1e-7 crosses the kink."""
    rng = np.random.default_rng(3)
    net = minnet.Network([3, 4, 2, 1], hidden="relu", lambd=0.3)
    net.theta = rng.standard_normal(net.theta.size) * 0.8
    X = rng.standard_normal((3, 16))
    Y = targets(rng, "sigmoid", 1, 16)
    W1, b1 = net.parameters["W1"], net.parameters["b1"]
    b1[1, 0] = 1e-9 - W1[1] @ X[:, 5]
    return net, X, Y


@pytest.mark.parametrize("method", minnet.check.METHODS)
def test_kinks_are_listed_and_left_out_unless_asked(method):
    net, X, Y = kinked_problem()
    Z1 = net.parameters["W1"] @ X + net.parameters["b1"]
    assert 0 < Z1[1, 5] < 1e-8
    expected = kink_oracle(net, X, 1e-7)
    assert ("b1", 1, 0) in expected and len(expected) >= 2

    report = minnet.gradient_check(net, X, Y, method=method)
    assert set(report.kinks) == expected
    assert len(report.kinks) == len(expected)
    for name, block in report.blocks.items():
        assert set(block.kinks) == {k for k in expected if k[0] == name}
    assert report.to_dict()["n_kinks"] == len(expected)
    kinked = np.flatnonzero(report.kink_mask)
    # the numerical gradient is genuinely wrong there (half the slope for example 5)...
    assert np.max(np.abs(report.approx[kinked] - report.grad[kinked])) > 1e-5
    # ...so those entries are judged at a nearby point where the network is smooth, and counted from there
    assert report.verdict == "correct", str(report)
    assert report.n_compared == net.layout.size
    assert report.kink_record["n_nearby"] == len(expected) and report.kink_record["n_unresolved"] == 0
    assert np.all(np.abs(report.refereed[kinked] - report.grad[kinked]) <= report.error[kinked])
    assert "relu kink" in str(report) and "nearby point" in str(report)

    counted = minnet.gradient_check(net, X, Y, method=method, include_kinks=True)
    assert set(counted.kinks) == expected
    assert counted.n_compared == net.layout.size
    assert counted.verdict != "correct"
    assert counted.refereed_difference > report.refereed_difference or counted.verdict == "inconclusive"
    assert counted.worst_block in {k[0] for k in expected}
    first = counted.blocks[counted.worst_block].worst[0]
    assert (counted.worst_block, first["row"], first["column"]) in expected


def test_no_kinks_without_relu():
    net, X, Y = kinked_problem()
    smooth = minnet.Network(net.layer_dims, hidden="tanh", lambd=0.3)
    smooth.theta = net.theta
    for method in methods_for(smooth):
        report = minnet.gradient_check(smooth, X, Y, method=method)
        assert report.kinks == [] and not report.kink_mask.any()
        assert report.verdict == "correct"


# ================================================================= 7. directional
@pytest.mark.parametrize("method", minnet.check.METHODS)
def test_directional_mode_on_a_correct_network(method):
    net, X, Y, dropout_seed = random_problem(16)  # leaky_relu, sigmoid output
    report = minnet.gradient_check(net, X, Y, mode="directional", method=method, dropout_seed=dropout_seed)
    assert report.verdict == "correct"
    assert not report.checked.any() and np.isnan(report.approx).all()
    for block in report.blocks.values():
        assert block.n_checked == 0
        assert block.directional is not None
        numerical, backprop = block.directional["numerical"], block.directional["backprop"]
        assert abs(numerical - backprop) <= 1e-6 * max(1.0, abs(backprop))
        assert block.verdict == "correct"
    assert "direction" in str(report)
    json.dumps(report.to_dict())


@pytest.mark.parametrize("bug", ["dW2_doubled", "db1_4_over_m", "sign_dW1", "no_l2_in_dW3", "one_entry_dW2"])
def test_directional_mode_escalates_the_failing_block(bug):
    (block_name,) = learner.AFFECTED[bug]
    *_, parameters, _, cost_fn, grads_fn = learner_problem(bug)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters, mode="directional")
    full = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert report.verdict == "bug"
    assert report.worst_block == block_name
    for name, block in report.blocks.items():
        size = int(np.prod(block.shape))
        if name == block_name:
            assert block.n_checked == size
            assert block.verdict == "bug"
            part = slice(block.offset, block.offset + size)
            np.testing.assert_allclose(report.approx[part], full.approx[part], rtol=1e-12, atol=1e-15)
        else:
            assert block.n_checked == 0
            assert block.directional is not None
            assert block.verdict == "correct"


@pytest.mark.parametrize("k", [1, 2, 4, 1000])
def test_sample_checks_min_k_size_entries_per_block(k):
    net, X, Y, dropout_seed = random_problem(21)
    everything = minnet.gradient_check(net, X, Y, dropout_seed=dropout_seed)
    report = minnet.gradient_check(net, X, Y, sample=k, seed=5, dropout_seed=dropout_seed)
    again = minnet.gradient_check(net, X, Y, sample=k, seed=5, dropout_seed=dropout_seed)
    for block in net.layout.blocks:
        part = slice(block.offset, block.offset + block.size)
        assert report.blocks[block.name].n_checked == min(k, block.size)
        assert report.checked[part].sum() == min(k, block.size)
        assert np.isnan(report.approx[part][~report.checked[part]]).all()
    assert np.array_equal(report.checked, again.checked)
    assert np.array_equal(report.approx[report.checked], everything.approx[report.checked])
    assert report.verdict == "correct"

    *_, parameters, _, cost_fn, grads_fn = learner_problem(None)
    mine = minnet.check_gradients(cost_fn, grads_fn, parameters, sample=k)
    for name, value in parameters.items():
        assert mine.blocks[name].n_checked == min(k, value.size)


def test_sample_and_directional_do_not_mix():
    net = minnet.Network([2, 3, 1])
    with pytest.raises(ValueError, match="sample"):
        minnet.gradient_check(net, np.ones((2, 4)), np.ones((1, 4)), mode="directional", sample=2)


# ========================================================= 8. check_gradients errors
def small_learner():
    *_, parameters, _, cost_fn, grads_fn = learner_problem(None, m=8)
    return parameters, cost_fn, grads_fn


def test_non_callables_are_refused_by_name():
    parameters, cost_fn, grads_fn = small_learner()
    with pytest.raises(TypeError, match="cost_fn"):
        minnet.check_gradients(1.0, grads_fn, parameters)
    with pytest.raises(TypeError, match="grads_fn"):
        minnet.check_gradients(cost_fn, {"dW1": 0}, parameters)


def test_wrong_gradient_keys_and_shapes_are_refused_by_name():
    parameters, cost_fn, grads_fn = small_learner()

    def missing(p):
        g = grads_fn(p)
        del g["db3"]
        return g

    with pytest.raises(ValueError, match="db3"):
        minnet.check_gradients(cost_fn, missing, parameters)

    def renamed(p):  # keys without the "d" work; keys named otherwise do not
        return {k.replace("dW", "grad_W"): v for k, v in grads_fn(p).items()}

    with pytest.raises(ValueError, match="dW1"):
        minnet.check_gradients(cost_fn, renamed, parameters)

    def transposed(p):
        g = grads_fn(p)
        g["dW1"] = g["dW1"].T
        return g

    # a gradient of another shape is a bug in backprop, not a usage error: a verdict, with both shapes named
    report = minnet.check_gradients(cost_fn, transposed, parameters)
    assert report.verdict == "bug" and report.worst_block == "W1" and report.blocks["W1"].shape_error
    assert str(tuple(parameters["W1"].shape)) in str(report)

    def too_big(p):
        g = grads_fn(p)
        g["db2"] = np.zeros((4, 1))
        return g

    report = minnet.check_gradients(cost_fn, too_big, parameters)
    assert report.verdict == "bug" and report.worst_block == "b2", str(report)
    assert "cannot be compared" in str(report) and report.blocks["b2"].n_checked == 0
    json.loads(report.to_json())

    with pytest.raises(TypeError, match="dict"):
        minnet.check_gradients(cost_fn, lambda p: list(grads_fn(p).values()), parameters)

    def not_finite(p):
        g = grads_fn(p)
        g["dW2"] = g["dW2"] * np.nan
        return g

    with pytest.raises(ValueError, match="grads_fn"):
        minnet.check_gradients(cost_fn, not_finite, parameters)

    # the course's own grads dict (with dA, dZ) and keys without "d" are fine
    plain = minnet.check_gradients(cost_fn, lambda p: {k[1:]: v for k, v in grads_fn(p).items()
                                                       if k[:2] in ("dW", "db")}, parameters)
    assert plain.verdict == "correct"


def test_bad_costs_and_parameters_are_refused_by_name():
    parameters, cost_fn, grads_fn = small_learner()
    with pytest.raises(ValueError, match="cost_fn"):
        minnet.check_gradients(lambda p: np.array([cost_fn(p), 1.0]), grads_fn, parameters)
    with pytest.raises(TypeError, match="cost_fn"):
        minnet.check_gradients(lambda p: {"cost": cost_fn(p)}, grads_fn, parameters)
    with pytest.raises(ValueError, match="finite"):
        minnet.check_gradients(lambda p: np.inf, grads_fn, parameters)
    # a (1, 1) array, as np.dot-based course costs return, is a scalar cost
    assert minnet.check_gradients(lambda p: np.array([[cost_fn(p)]]), grads_fn, parameters).verdict == "correct"
    with pytest.raises(TypeError, match="parameters"):
        minnet.check_gradients(cost_fn, grads_fn, list(parameters.values()))
    with pytest.raises(TypeError, match="parameters"):
        minnet.check_gradients(cost_fn, grads_fn, {})
    broken = dict(parameters, W2=parameters["W2"] * np.nan)
    with pytest.raises(ValueError, match="W2"):
        minnet.check_gradients(cost_fn, grads_fn, broken)
    with pytest.raises(ValueError, match="epsilon"):
        minnet.check_gradients(cost_fn, grads_fn, parameters, epsilon=0.0)
    with pytest.raises(ValueError, match="mode"):
        minnet.check_gradients(cost_fn, grads_fn, parameters, mode="random")
    with pytest.raises(ValueError, match="sample"):
        minnet.check_gradients(cost_fn, grads_fn, parameters, sample=0)
    with pytest.raises(TypeError, match="Network"):
        minnet.gradient_check(parameters, np.ones((4, 8)), np.ones((1, 8)))


def test_cost_fn_returning_none_or_text_is_refused_by_name():
    parameters, cost_fn, grads_fn = small_learner()

    def forgot_return(p):
        cost_fn(p)

    # np.asarray(None, dtype=float) is NaN: the message must still point at cost_fn, not at "J is nan"
    with pytest.raises(TypeError, match="cost_fn.*return"):
        minnet.check_gradients(forgot_return, grads_fn, parameters)
    with pytest.raises(TypeError, match="cost_fn"):
        minnet.check_gradients(lambda p: str(cost_fn(p)), grads_fn, parameters)


def test_parameters_are_not_modified():
    parameters, cost_fn, grads_fn = small_learner()
    snapshot = {k: v.copy() for k, v in parameters.items()}
    arrays = dict(parameters)

    def careless_grads(p):  # a learner's grads_fn that also takes a gradient step in place
        g = grads_fn(p)
        for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
            p[name] -= 0.1 * g["d" + name]
        return g

    for mode in minnet.check.MODES:
        with pytest.warns(UserWarning, match="careless_grads writes into W1, b1, W2, b2, W3, b3"):
            report = minnet.check_gradients(cost_fn, careless_grads, parameters, mode=mode)
        assert report.verdict == "correct"
    assert parameters.keys() == snapshot.keys()
    for key in snapshot:
        assert parameters[key] is arrays[key]
        assert np.array_equal(parameters[key], snapshot[key])

    # the same holds when a bug makes the check fail
    *_, bug_cost, bug_grads = learner_problem("dW2_doubled", m=8)
    assert minnet.check_gradients(bug_cost, bug_grads, parameters).verdict == "bug"
    for key in snapshot:
        assert np.array_equal(parameters[key], snapshot[key])


def test_float32_parameters_warn_and_are_converted():
    parameters, cost_fn, grads_fn = small_learner()
    single = {k: v.astype(np.float32) for k, v in parameters.items()}
    seen = set()

    def recording_cost(p):
        seen.update(v.dtype for v in p.values())
        return cost_fn(p)

    with pytest.warns(UserWarning, match="float32"):
        report = minnet.check_gradients(recording_cost, grads_fn, single)
    assert seen == {np.dtype(np.float64)}
    assert report.verdict == "correct"
    assert all(v.dtype == np.float32 for v in single.values())  # the caller's arrays stay as they were


def test_gradient_check_argument_errors():
    net = minnet.Network([3, 4, 1], keep_prob=0.9)
    X, Y = np.ones((3, 5)), np.ones((1, 5))
    with pytest.raises(ValueError, match="method"):
        minnet.gradient_check(net, X, Y, method="fast")
    with pytest.raises(ValueError, match="epsilon"):
        minnet.gradient_check(net, X, Y, epsilon=-1e-7)
    with pytest.raises(ValueError, match="X"):
        minnet.gradient_check(net, np.ones((2, 5)), Y)
    with pytest.raises(ValueError, match="dropout_seed"):
        minnet.gradient_check(net, X, Y, dropout_seed=-1)


# ===================================================================== 9. report
def test_report_to_dict_is_json_and_complete():
    net, X, Y, dropout_seed = random_problem(27)
    report = minnet.gradient_check(net, X, Y, dropout_seed=dropout_seed)
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["difference"] == report.difference
    assert summary["verdict"] == report.verdict == "correct"
    assert summary["worst_block"] == report.worst_block
    assert list(summary["blocks"]) == net.layout.names
    for name, block in summary["blocks"].items():
        assert block["verdict"] == report.blocks[name].verdict
        assert block["difference"] == report.blocks[name].difference
        assert block["n_checked"] == report.blocks[name].n_checked
    assert json.loads(report.to_json()) == summary

    *_, parameters, _, cost_fn, grads_fn = learner_problem("one_entry_dW2")
    bad = minnet.check_gradients(cost_fn, grads_fn, parameters)
    summary = json.loads(json.dumps(bad.to_dict()))
    assert summary["verdict"] == "bug" and summary["worst_block"] == "W2"
    assert summary["blocks"]["W2"]["worst"][0]["row"] == learner.ONE_ENTRY[0]


def test_report_text_names_every_block_and_the_verdict():
    *_, parameters, _, cost_fn, grads_fn = learner_problem("sign_dW1")
    for bug in (None, "sign_dW1"):
        *_, cost_fn, grads_fn = learner_problem(bug)
        report = minnet.check_gradients(cost_fn, grads_fn, parameters)
        text = str(report)
        for name in report.blocks:
            assert name in text
        assert report.verdict.upper() in text
        assert report.verdict in text
        html_text = report._repr_html_()
        assert all(name in html_text for name in report.blocks) and report.verdict in html_text
    assert "W1" in repr(report) and "bug" in repr(report)


def test_thresholds_are_adjustable():
    # A backprop off by a factor 1 + 1e-5 everywhere: far beyond every entry's own
    # error, so the bands alone decide the verdict.
    rng = np.random.default_rng(0)
    net = minnet.Network([4, 5, 3, 1], hidden="tanh", lambd=0.7)
    X = rng.standard_normal((4, 16))
    Y = targets(rng, "sigmoid", 1, 16)
    grads = net.gradients(X, Y)
    cost_fn = lambda p: net_cost_at(net, p, X, Y)
    grads_fn = lambda p: {k: g * (1 + 1e-5) for k, g in grads_at(net, p, X, Y).items()}
    params = {k: v.copy() for k, v in net.parameters.items()}
    default = minnet.check_gradients(cost_fn, grads_fn, params)
    assert default.verdict == "suspicious" and 4e-6 < default.refereed_difference < 6e-6
    assert "suspicious" in str(default)
    strict = minnet.check_gradients(cost_fn, grads_fn, params, thresholds=(1e-7, 1e-6))
    assert strict.verdict == "bug"
    assert np.array_equal(strict.approx, default.approx) and strict.difference == default.difference
    relaxed = minnet.check_gradients(cost_fn, grads_fn, params, thresholds=(1e-4, 1e-3))
    assert relaxed.verdict == "correct"
    assert set(grads) == {"d" + k for k in params}

    *_, parameters, _, cost_fn, grads_fn = learner_problem("dW2_doubled")
    bad = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert bad.verdict == "bug"
    lenient = minnet.check_gradients(cost_fn, grads_fn, parameters, thresholds=(0.9, 0.95))
    assert lenient.verdict == "correct"
    for wrong in [(1e-3, 1e-7), (0.0, 1e-3)]:
        with pytest.raises(ValueError, match="thresholds"):
            minnet.check_gradients(cost_fn, grads_fn, parameters, thresholds=wrong)
    with pytest.raises(TypeError, match="thresholds"):
        minnet.check_gradients(cost_fn, grads_fn, parameters, thresholds=1e-7)


# ======================================================================== 10. fit
def net_cost_at(net, parameters, X, Y):
    probe = net.copy()
    for k, v in parameters.items():
        probe.parameters[k][...] = v
    return probe.cost(X, Y)


def grads_at(net, parameters, X, Y):
    probe = net.copy()
    for k, v in parameters.items():
        probe.parameters[k][...] = v
    return probe.gradients(X, Y)


def test_fit_runs_the_scheduled_checks():
    rng = np.random.default_rng(4)
    net = minnet.Network([3, 6, 4, 1], hidden="relu", lambd=0.1, keep_prob=0.9, seed=3)
    X = rng.standard_normal((3, 64))
    Y = (X[0:1] * X[1:2] > 0).astype(np.float64)
    Xc, Yc = X[:, :24], Y[:, :24]
    start = net.copy()
    check = minnet.GradientCheck(at=(0, 3), data=(Xc, Yc))
    history = net.fit(X, Y, epochs=3, learning_rate=0.05, callbacks=[check])
    checks = history["checks"]
    assert check.reports == checks
    assert sorted(checks) == [0, 3]
    assert len(history["cost"]) == 3
    for report in checks.values():
        assert isinstance(report, minnet.GradCheckReport)
        assert report.verdict == "correct"
        assert report.n_parameters == net.layout.size
    # epoch 0 checks the untrained net and epoch 3 the trained one, on the callback's data
    assert np.array_equal(checks[0].approx, minnet.gradient_check(start, Xc, Yc).approx)
    assert np.array_equal(checks[3].approx, minnet.gradient_check(net, Xc, Yc).approx)
    assert checks[0].cost == start.cost(Xc, Yc, dropout_seed=0)
    assert checks[3].cost == net.cost(Xc, Yc, dropout_seed=0)
    assert checks[0].cost != checks[3].cost


@pytest.mark.parametrize("method", ["incremental", "full"])
def test_progress_bar_changes_nothing_but_shows_progress(method, monkeypatch):
    """With a bar the kernel runs in a helper thread: same numbers, bar filled, threads restored."""
    from minnet.check import _parallel

    updates = []

    class Recorder:
        def __init__(self, total, enabled, unit="entry"):
            self.total = total

        def update(self, n):
            updates.append(n)

        def close(self):
            updates.append("closed")

    monkeypatch.setattr(_parallel, "Progress", Recorder)
    rng = np.random.default_rng(5)
    net = minnet.Network([6, 5, 4, 3], hidden="tanh", output="softmax", lambd=0.4)
    X, labels = rng.standard_normal((6, 9)), rng.integers(0, 3, 9)
    before = numba.get_num_threads()
    quiet = minnet.gradient_check(net, X, labels, method=method, progress=False)
    assert updates == []
    start = time.perf_counter()
    minnet.gradient_check(net, X, labels, method=method, progress=True)
    # done within the first tick (0.1 s): no bar flashes up (a check slower than that, as with the JIT off, may show one)
    assert updates == [] or time.perf_counter() - start >= 0.1
    updates.clear()
    real = _parallel.run

    def slow(work, **kwargs):  # a check that takes a while
        def later():
            time.sleep(0.25)
            work()
        return real(later, **kwargs)

    monkeypatch.setattr(_parallel, "run", slow)
    shown = minnet.gradient_check(net, X, labels, method=method, progress=True, threads=1)
    assert np.array_equal(quiet.approx, shown.approx) and np.array_equal(quiet.kink_mask, shown.kink_mask)
    assert numba.get_num_threads() == before
    assert sum(updates[:-1]) == net.theta.size and updates[-1] == "closed"


@pytest.mark.parametrize("hidden", list(ACTIVATIONS))
@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_large_epsilon_takes_the_library_functions_and_still_agrees(hidden, output):
    """With eps = 0.05 the changes are too large for the short series: both methods must still agree."""
    rng = np.random.default_rng(17)
    net = minnet.Network([4, 6, 5, 3], hidden=hidden, output=output, lambd=0.3, keep_prob=0.8)
    net.theta = rng.standard_normal(net.theta.size)
    X = rng.standard_normal((4, 12)) * 3
    Y = rng.integers(0, 3, 12) if output == "softmax" else (
        rng.integers(0, 2, (3, 12)).astype(float) if output == "sigmoid" else rng.standard_normal((3, 12)))
    full = minnet.gradient_check(net, X, Y, epsilon=0.05, method="full", dropout_seed=2)
    incremental = minnet.gradient_check(net, X, Y, epsilon=0.05, method="incremental", dropout_seed=2)
    assert np.array_equal(full.kink_mask, incremental.kink_mask)
    assert minnet.difference(full.approx, incremental.approx) <= 1e-12


@pytest.mark.parametrize("method", ["auto", "incremental", "full"])
def test_a_small_check_runs_on_one_thread_in_the_serial_twins_with_the_same_numbers(method):
    """Below plan.SERIAL_BELOW entries x examples the default is one thread and the serial twins (nothing
    parallel to compile on a first run); the numbers are those of the parallel kernels, bit for bit."""
    from minnet.check import _parallel, plan
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    rng = np.random.default_rng(11)
    net = minnet.Network([5, 7, 6, 3], output="softmax", lambd=0.3, keep_prob=0.8, seed=4)
    X, labels = rng.standard_normal((5, 30)), rng.integers(0, 3, 30)
    assert plan.threads_for(None, net.layout.size, 30) == (1, True)
    calls = []
    real = _parallel.run

    def spy(work, **kwargs):
        calls.append(kwargs.get("serial", False))
        return real(work, **kwargs)

    _parallel.run = spy
    try:
        small = minnet.gradient_check(net, X, labels, method=method)
    finally:
        _parallel.run = real
    assert calls and all(calls)
    parallel = minnet.gradient_check(net, X, labels, method=method, threads=2)
    for name in ("approx", "refereed", "error", "grad"):
        assert np.array_equal(getattr(small, name), getattr(parallel, name), equal_nan=True), name
    assert small.verdict == parallel.verdict == "correct"

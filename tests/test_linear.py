"""The linear-segment check (minnet.check._linear) against the full method and the incremental kernel.

The full method (two whole forward passes per entry) is the reference: at
epsilon = 1e-5 both compute the same finite difference with rounding near
1e-16 / 1e-5 per entry, so they must agree to 1e-9 (see test_gradcheck's
"full vs incremental"). Against the incremental kernel, which sums the same
per-example loss changes, agreement is at rounding level.
"""
import numba
import numpy as np
import pytest

import minnet
from minnet.ops.activations import PIECEWISE_LINEAR
from minnet import datasets
from minnet.check import _point, evaluate, plan

from . import naive

HIDDEN = PIECEWISE_LINEAR
OUTPUTS = ("sigmoid", "softmax", "linear")
AGREEMENT_EPSILON = 1e-5


def targets(rng, output, n_out, m):
    if output == "sigmoid":
        return (rng.random((n_out, m)) < 0.5).astype(np.float64)
    if output == "softmax":
        return np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
    return rng.standard_normal((n_out, m))


def random_problem(seed):
    """A random relu-kind net, X, Y and dropout seed: every (hidden, output, L, lambd > 0, dropout) over the seeds."""
    rng = np.random.default_rng(seed)
    hidden = HIDDEN[seed % 2]
    output = OUTPUTS[(seed // 2) % 3]
    L = 1 + (seed // 6) % 4
    dims = [int(d) for d in rng.integers(1, 9, size=L + 1)]
    if output == "softmax":
        dims[-1] = max(dims[-1], 2)
    lambd = 0.0 if seed % 5 == 0 else float(rng.uniform(0.05, 2.0))
    keep_prob = 1.0 if seed % 3 == 0 or L == 1 else [float(k) for k in rng.uniform(0.5, 0.95, size=L - 1)]
    net = minnet.Network(dims, hidden=hidden, output=output, lambd=lambd, keep_prob=keep_prob, seed=seed)
    for l in range(1, L + 1):  # nonzero biases: a zero bias sits on relu kinks
        net.parameters[f"b{l}"][...] = rng.standard_normal(net.parameters[f"b{l}"].shape) * 0.3
    m = int(rng.integers(8, 48))
    return net, rng.standard_normal((dims[0], m)), targets(rng, output, dims[-1], m), seed + 1


SEEDS = range(24)  # 2 hidden x 3 outputs x 4 depths


def linear_segment_check(net, X, Y, epsilon=1e-7, indices=None, dropout_seed=0, threads=None,
                         return_fallback=False):
    """The linear-segment kernels' centered differences at epsilon, straight from the kernels (no referee).

    Returns (approx, kinks), and the entries that fell back to the incremental kernel when asked.
    """
    X, Y = net._check_XY(X, Y)
    drop, use_drop = net._dropout(X.shape[1], dropout_seed)
    theta = net.theta.copy()
    _, Z, A = net._gradient(X, Y, drop, use_drop, theta)
    prepared = _point.prepare(net._dims, X, Y, Z, A, net._hidden)
    indices = np.arange(theta.size, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    approx, kinks, _, _, fallback = evaluate.segment_entries(net, theta, X, Y=Y, drop=drop, use_drop=use_drop, Z=Z,
                                                             A=A, prepared=prepared, epsilon=epsilon,
                                                             indices=indices,
                                                             n_threads=threads or numba.get_num_threads(), factor=1.0)
    return (approx, kinks, fallback) if return_fallback else (approx, kinks)


def test_the_seeds_cover_every_kind_of_net():
    seen = set()
    for seed in SEEDS:
        net, *_ = random_problem(seed)
        seen.add((net.hidden, net.output, net.L))
    assert seen == {(h, o, L) for h in HIDDEN for o in OUTPUTS for L in (1, 2, 3, 4)}
    nets = [random_problem(seed)[0] for seed in SEEDS]
    assert {n.lambd > 0 for n in nets} == {False, True} and {n.uses_dropout for n in nets} == {False, True}


@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_the_full_method_and_the_incremental_kernel(seed):
    net, X, Y, dropout_seed = random_problem(seed)
    full = minnet.gradient_check(net, X, Y, epsilon=AGREEMENT_EPSILON, method="full", dropout_seed=dropout_seed)
    approx, kinks = linear_segment_check(net, X, Y, AGREEMENT_EPSILON, dropout_seed=dropout_seed)
    assert minnet.difference(approx, full.approx) <= 1e-9
    assert np.array_equal(kinks, full.kink_mask)
    for epsilon in (AGREEMENT_EPSILON, 1e-7):
        incremental = minnet.gradient_check(net, X, Y, epsilon=epsilon, dropout_seed=dropout_seed)
        approx, kinks = linear_segment_check(net, X, Y, epsilon, dropout_seed=dropout_seed)
        assert minnet.difference(approx, incremental.approx) <= 1e-12
        assert np.array_equal(kinks, incremental.kink_mask)


@pytest.mark.slow_without_jit
@pytest.mark.parametrize("hidden,output", [("relu", "softmax"), ("leaky_relu", "sigmoid"), ("relu", "linear")])
def test_agrees_on_a_trained_net(hidden, output):
    X, labels = datasets.spirals(m=96, seed=1)
    n_out = 3 if output == "softmax" else 1
    Y = labels if output == "softmax" else np.asarray(labels, float).reshape(1, -1) % 2
    net = minnet.Network([2, 12, 8, n_out], hidden=hidden, output=output, lambd=0.3, keep_prob=[0.9, 0.8],
                         seed=2)
    before = net.theta.copy()
    net.fit(X, Y, epochs=300, learning_rate=0.02, seed=3)
    assert not np.array_equal(net.theta, before)
    full = minnet.gradient_check(net, X, Y, epsilon=AGREEMENT_EPSILON, method="full", dropout_seed=5)
    approx, kinks = linear_segment_check(net, X, Y, AGREEMENT_EPSILON, dropout_seed=5)
    assert minnet.difference(approx, full.approx) <= 1e-9
    assert np.array_equal(kinks, full.kink_mask)
    incremental = minnet.gradient_check(net, X, Y, dropout_seed=5)
    approx, kinks = linear_segment_check(net, X, Y, dropout_seed=5)
    assert minnet.difference(approx, incremental.approx) <= 1e-12
    assert np.array_equal(kinks, incremental.kink_mask)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_agrees_with_the_incremental_kernel_on_a_wider_deeper_net(hidden):
    rng = np.random.default_rng(4)
    net = minnet.Network([40, 32, 24, 16, 5], hidden=hidden, output="softmax", lambd=0.7,
                         keep_prob=[0.9, 0.8, 0.7], seed=4)
    X, labels = rng.standard_normal((40, 50)), rng.integers(0, 5, 50)
    incremental = minnet.gradient_check(net, X, labels, dropout_seed=1)
    approx, kinks = linear_segment_check(net, X, labels, dropout_seed=1)
    assert minnet.difference(approx, incremental.approx) <= 1e-12
    assert np.array_equal(kinks, incremental.kink_mask)
    assert np.max(np.abs(approx - incremental.approx) / (np.abs(incremental.approx) + 1e-6)) <= 1e-6


# ------------------------------------------------- steps that reach a later kink
def kink_problem(gap, hidden="relu"):
    """A [3, 4, 3, 2] net whose layer-2 unit r has Z = gap at example 0, moved only by row i of layer 1.

    X[:, 0] = e_0, so Z_1[:, 0] = W1[:, 0] + b1 exactly and A_1[i, 0] is known
    exactly; W2[r] = e_i and b2[r] = gap - A_1[i, 0] put Z_2[r, 0] at gap (exactly
    0 for gap = 0). Returns net, X, labels and the theta indices of W1[i, 0] and b1[i].
    """
    rng = np.random.default_rng(7)
    net = minnet.Network([3, 4, 3, 2], hidden=hidden, output="softmax", lambd=0.2, seed=3)
    X = rng.standard_normal((3, 12))
    X[:, 0] = [1.0, 0.0, 0.0]
    p = net.parameters
    p["b1"][:, 0] = rng.uniform(0.2, 0.5, 4)
    i, r = 2, 1
    p["W1"][i, 0] = 0.75
    a = max(p["W1"][i, 0] + p["b1"][i, 0], 0.0)
    p["W2"][r, :] = 0.0
    p["W2"][r, i] = 1.0
    p["b2"][r, 0] = gap - a if gap else -a
    layout = net.layout
    return net, X, rng.integers(0, 2, 12), (layout["W1"].offset + i * 3, layout["b1"].offset + i)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_a_later_unit_exactly_at_its_kink_takes_the_incremental_path(hidden):
    net, X, labels, moved = kink_problem(0.0, hidden)
    approx, kinks, fallback = linear_segment_check(net, X, labels, AGREEMENT_EPSILON,
                                                           return_fallback=True)
    assert set(np.flatnonzero(fallback)) == set(moved)
    full = minnet.gradient_check(net, X, labels, epsilon=AGREEMENT_EPSILON, method="full")
    assert full.kink_mask[list(moved)].all()  # the step really crossed the later kink
    assert minnet.difference(approx, full.approx) <= 1e-9
    assert np.array_equal(kinks, full.kink_mask)


@pytest.mark.parametrize("gap", [1e-9, -1e-9, 1e-3])
def test_the_fallback_is_taken_exactly_when_a_step_can_reach_a_later_kink(gap):
    net, X, labels, moved = kink_problem(gap)
    for epsilon in (1e-5, 1e-2):
        approx, kinks, fallback = linear_segment_check(net, X, labels, epsilon, return_fallback=True)
        reaches = epsilon * 1.0 >= abs(gap)  # the step moves Z_2[r, 0] by +-epsilon (W2[r, i] = X[0, 0] = 1)
        assert fallback[list(moved)].all() == reaches and fallback[list(moved)].any() == reaches
        if epsilon == 1e-5:  # steps this small reach no other kink of this net
            assert set(np.flatnonzero(fallback)) == (set(moved) if reaches else set())
        full = minnet.gradient_check(net, X, labels, epsilon=epsilon, method="full")
        assert full.kink_mask[list(moved)].all() == reaches
        assert minnet.difference(approx, full.approx) <= 1e-9
        assert np.array_equal(kinks, full.kink_mask)


def test_large_steps_fall_back_and_stay_exact():
    net, X, Y, dropout_seed = random_problem(21)  # leaky_relu, softmax, 4 layers
    full = minnet.gradient_check(net, X, Y, epsilon=0.05, method="full", dropout_seed=dropout_seed)
    approx, kinks, fallback = linear_segment_check(net, X, Y, 0.05, dropout_seed=dropout_seed,
                                                           return_fallback=True)
    assert 0 < fallback.sum() < fallback.size
    assert minnet.difference(approx, full.approx) <= 1e-12
    assert np.array_equal(kinks, full.kink_mask)


# ------------------------------------------------------------ the driver
@pytest.mark.slow_without_jit
def test_one_and_two_threads_give_the_same_bits():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.fail("this test needs Numba's thread pool to hold 2 threads (NUMBA_NUM_THREADS >= 2)")
    rng = np.random.default_rng(0)
    net = minnet.Network([30, 16, 12, 8, 4], hidden="leaky_relu", output="softmax", lambd=0.4,
                         keep_prob=[0.8, 0.9, 0.7], seed=0)
    X, labels = rng.standard_normal((30, 40)), rng.integers(0, 4, 40)
    one = linear_segment_check(net, X, labels, 0.05, threads=1, return_fallback=True)
    two = linear_segment_check(net, X, labels, 0.05, threads=2, return_fallback=True)
    assert one[2].any()  # both paths ran
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()


def test_a_sample_of_entries_in_any_order_gives_those_entries():
    net, X, Y, dropout_seed = random_problem(17)
    everything, all_kinks = linear_segment_check(net, X, Y, dropout_seed=dropout_seed)
    picks = np.random.default_rng(1).permutation(net.theta.size)[: net.theta.size // 2]
    some, kinks = linear_segment_check(net, X, Y, indices=picks, dropout_seed=dropout_seed)
    assert np.array_equal(some, everything[picks]) and np.array_equal(kinks, all_kinks[picks])
    empty = linear_segment_check(net, X, Y, indices=np.array([], np.int64), dropout_seed=dropout_seed)
    assert empty[0].size == 0 and empty[1].size == 0


@pytest.mark.parametrize("dims", [[5, 4, 3], [784, 128, 64, 10], [3, 7, 2, 5], [2, 1]])
def test_row_groups_keep_the_contract_of_the_incremental_grouping(dims):
    rng = np.random.default_rng(1)
    n = sum(dims[k] * dims[k + 1] + dims[k + 1] for k in range(len(dims) - 1))
    for indices in (np.arange(n), rng.permutation(n)[: n // 2], np.sort(rng.choice(n, n // 3, replace=False)),
                    np.array([n - 1, 0, n - 1 - dims[-1]]), np.array([], np.int64)):
        for group_size in (1, 3, 64):
            expected = naive.row_groups(dims, indices.astype(np.int64), group_size)
            got = plan.row_groups(dims, indices.astype(np.int64), group_size)[:3]
            for a, b in zip(expected, got):
                assert np.array_equal(a, b)


def test_every_entry_without_a_list_is_the_list_of_every_entry():
    for dims in ([5, 4, 3], [784, 128, 64, 10], [2, 1]):
        n = sum(dims[k] * dims[k + 1] + dims[k + 1] for k in range(len(dims) - 1))
        listed = plan.row_groups(dims, np.arange(n, dtype=np.int64), 7)
        unlisted = plan.row_groups(dims, None, 7)
        for a, b in zip(listed[:3], unlisted[:3]):
            assert np.array_equal(a, b)
        every = np.full(n, -1, np.int64)
        plan.fill_range(every)
        assert np.array_equal(every, np.arange(n))


def test_balanced_bounds_cut_where_the_running_cost_reaches_each_share():
    rng = np.random.default_rng(4)
    for n in (1, 2, 5, 97, 1000):
        for costs in (rng.random(n), np.ones(n), rng.random(n) * (rng.random(n) < 0.2), np.r_[np.zeros(n - 1), 5.0]):
            for n_chunks in (1, 2, 3, 16, 2000):
                chunks = plan.balanced_bounds(costs, n_chunks)
                cumulative = np.cumsum(costs)  # the expression this replaced, in NumPy
                shares = max(1, min(n_chunks, n))
                inner = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, shares) / shares) + 1
                expected = np.unique(np.concatenate(([0], np.clip(inner, 0, n), [n])))
                assert np.array_equal(chunks, expected) and chunks.dtype == np.int64


@pytest.mark.parametrize("dims", [[784, 128, 64, 10], [30, 2000, 20]])
def test_the_parallel_row_fill_writes_the_same_order(dims):
    rng = np.random.default_rng(2)
    n = sum(dims[k] * dims[k + 1] + dims[k + 1] for k in range(len(dims) - 1))
    for indices in (np.arange(n), np.sort(rng.choice(n, n // 2, replace=False))):
        expected = plan.row_groups(dims, indices, 64)[0]
        order, _, _, runs = plan.row_groups(dims, indices, 64, fill=False)
        assert runs is not None and indices.size > 2 * plan.FILL_UNIT
        plan.fill_rows(*runs, order)
        assert np.array_equal(order, expected)


def test_bad_input_is_refused_before_any_kernel_runs():
    rng = np.random.default_rng(0)
    net = minnet.Network([3, 4, 2], hidden="relu", output="softmax", keep_prob=0.8)
    X, labels = rng.standard_normal((3, 5)), rng.integers(0, 2, 5)

    def check(net, X, Y, **kwargs):
        return minnet.gradient_check(net, X, Y, method="segment", **kwargs)

    with pytest.raises(TypeError, match="net"):
        check("net", X, labels)
    with pytest.raises(ValueError, match="hidden"):
        check(minnet.Network([3, 4, 2], hidden="tanh", output="softmax"), X, labels)
    with pytest.raises(ValueError, match="epsilon"):
        check(net, X, labels, epsilon=0.0)
    with pytest.raises(ValueError, match="threads"):
        check(net, X, labels, threads=numba.config.NUMBA_NUM_THREADS + 1)
    with pytest.raises(ValueError, match="dropout"):
        check(net, X, labels, dropout_seed=None)
    with pytest.raises(ValueError, match="X"):
        check(net, X[:2], labels)
    unresolved = net.copy()
    unresolved.parameters["W2"][0, 0] = 1e200  # w + epsilon == w - epsilon: epsilon cannot move it
    report = check(unresolved, X, labels, epsilon=1e-5)
    assert report.verdict in ("correct", "inconclusive")  # judged at steps of its own scale, or not at all
    assert "could not move 1 of them" in report.note()
    huge = net.copy()
    huge.parameters["W1"][...] = 10.0  # finite parameters and data whose forward pass overflows
    with pytest.raises(ValueError, match="finite"), np.errstate(over="ignore", invalid="ignore"):
        check(huge, np.full_like(X, 1e308), labels)


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_sorted_position_is_numpys_searchsorted(dtype):
    """plan's own binary search (one small compile where NumPy's took three large ones), on sorted arrays with
    repeats, values before, between, on and after the entries, both sides; and on an empty array."""
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 7, 100):
        a = np.sort(rng.integers(0, 20, size)).astype(dtype)
        for x in np.arange(-2, 23, 0.5 if dtype == np.float64 else 1).astype(dtype):
            for right in (False, True):
                expected = np.searchsorted(a, x, side="right" if right else "left")
                assert plan.sorted_position(a, x, right) == expected, (a, x, right)

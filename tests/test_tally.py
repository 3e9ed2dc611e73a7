"""The compiled passes over every checked entry, against plain NumPy, and the check's parallel J and backprop."""
import contextlib

import numba
import numpy as np
import pytest

import minnet
from minnet.ops.activations import ACTIVATIONS
from minnet.ops.losses import OUTPUTS
from minnet.check import _point, _tally, evaluate, judge


def entries(k, seed, holes=True):
    rng = np.random.default_rng(seed)
    grad = rng.standard_normal(k)
    approx = grad + 1e-6 * rng.standard_normal(k)
    value = approx + 1e-8 * rng.standard_normal(k)
    error = np.abs(1e-7 * rng.standard_normal(k))
    grad_error = np.abs(1e-9 * rng.standard_normal(k))
    counted = rng.random(k) > 0.2
    if holes:
        approx[rng.integers(0, k, 5)] = np.nan
        value[rng.integers(0, k, 5)] = np.nan
        error[rng.integers(0, k, 5)] = np.inf
    return approx, value, grad, error, grad_error, counted


def numpy_sums(approx, value, grad, error, grad_error, counted):
    """The same sums, one NumPy expression each (the definitions in ``block_tally``'s docstring)."""
    resolved = np.isfinite(value) & np.isfinite(error)
    v = np.where(resolved, value, 0.0)
    gap = np.where(resolved, np.abs(value - grad), 0.0)
    excess = np.where(resolved, np.maximum(gap - error - grad_error, 0.0), 0.0)
    off = value - grad
    finite = np.isfinite(approx)
    return np.array([np.sum(x[counted]) for x in (
        v ** 2, grad ** 2, excess ** 2, np.where(resolved, error, 0.0) ** 2, gap ** 2,
        np.where(np.isfinite(off), off, 0.0) ** 2, (~resolved).astype(float),
        np.where(finite, approx, 0.0) ** 2, np.where(finite, approx - grad, 0.0) ** 2)])


TALLIES = {"serial": _tally.block_tally.serial, "parallel": _tally.block_tally,
           "kernel thread": lambda *args: _tally.tally_blocks(*args, threads=2)}


@pytest.mark.parametrize("how", TALLIES)
@pytest.mark.parametrize("seed", range(4))
def test_block_sums_agree_with_numpy(seed, how):
    k = 1000 if seed < 2 else 5 * _tally.UNIT + 17  # several units per block, cut inside blocks
    approx, value, grad, error, grad_error, counted = entries(k, seed)
    starts = np.array([0, 0, 17, 400, k], np.int64)  # an empty block, and one at the very end
    if seed >= 2:
        starts = np.array([0, 0, 17, _tally.UNIT + 3, k - 5], np.int64)
    sums, _ = TALLIES[how](approx, value, grad, error, grad_error, counted, starts, 3)
    bounds = list(starts) + [k]
    for b in range(starts.size):
        part = slice(bounds[b], bounds[b + 1])
        expected = numpy_sums(*(x[part] for x in (approx, value, grad, error, grad_error, counted)))
        np.testing.assert_allclose(sums[b], expected, rtol=1e-12, atol=1e-300)


@contextlib.contextmanager
def numba_threads(threads):
    """Run the parallel kernels called inside on that many threads (at most the machine's)."""
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_block_tally_is_the_same_on_any_number_of_threads():
    k = 7 * _tally.UNIT + 5
    approx, value, grad, error, grad_error, counted = entries(k, 11)
    starts = np.array([0, 3 * _tally.UNIT - 1, 6 * _tally.UNIT + 9], np.int64)
    args = (approx, value, grad, error, grad_error, counted, starts, 5)
    serial = _tally.block_tally.serial(*args)
    for threads in (1, 2, 3):
        with numba_threads(threads):
            found = _tally.block_tally(*args)
        assert np.array_equal(found[0], serial[0]) and np.array_equal(found[1], serial[1])


def test_block_sums_without_error_mask_or_backprop_error():
    approx, value, grad, *_ = entries(300, 7, holes=False)
    none = np.empty(0)
    sums, _ = _tally.block_tally.serial(approx, value, grad, none, none, np.empty(0, np.bool_), np.zeros(1,
                                        np.int64), 0)
    expected = numpy_sums(approx, value, grad, np.zeros(300), np.zeros(300), np.ones(300, bool))
    np.testing.assert_allclose(sums[0], expected, rtol=1e-12)


def test_tally_matches_measure_block_by_block():
    approx, value, grad, error, grad_error, counted = entries(500, 3)
    groups = np.repeat(np.arange(3), [100, 250, 150])
    found = judge.tally(approx, value, grad, error=error, thresholds=(1e-7, 1e-3), groups=groups, n_groups=3,
                        grad_error=grad_error, counted=counted)
    for b in range(3):
        keep = counted & (groups == b)
        expected = judge.measure(value[keep], grad[keep], error[keep], thresholds=(1e-7, 1e-3),
                                 grad_error=grad_error[keep])
        assert found.blocks[b].verdict == expected.verdict
        np.testing.assert_allclose(found.blocks[b][:3], expected[:3], rtol=1e-12)
        notes = judge.measure(approx[keep], grad[keep], np.zeros(int(keep.sum())), thresholds=(1e-7, 1e-3)).difference
        assert found.notes[b] == pytest.approx(notes, rel=1e-12)


def test_tally_of_values_whose_squares_overflow():
    grad = np.array([1e200, -3e200, 2.0])
    value = grad * (1 + 1e-9)
    found = judge.tally(value, value, grad, error=np.zeros(3), thresholds=(1e-7, 1e-3), groups=("starts",
                        np.array([0])), n_groups=1)
    assert found.whole.difference == pytest.approx(judge.difference(value, grad), rel=1e-9)
    assert np.isfinite(found.off_norms).all()


def reference_worst(value, grad, allowed, counted, start, stop, n):
    """Sort everything: excess, then gap, both largest first, then position."""
    q = np.arange(start, stop)
    q = q[counted[start:stop]]
    gap = np.abs(value[q] - grad[q])
    score = np.where(np.isfinite(gap), np.maximum(gap - allowed[q], 0.0), np.inf)
    gap = np.where(np.isfinite(gap), gap, np.inf)
    return q[np.lexsort((q, -gap, -score))][:n]


@pytest.mark.parametrize("how", TALLIES)
@pytest.mark.parametrize("seed", range(6))
def test_worst_entries_agree_with_a_full_sort(seed, how):
    rng = np.random.default_rng(seed)
    k = 400 if seed < 3 else 3 * _tally.UNIT + 100  # ties across the units of one block
    grad = rng.standard_normal(k)
    value = grad + np.round(rng.standard_normal(k), 1) * 1e-3  # many ties
    allowed = np.full(k, 5e-4) if seed % 2 else np.abs(rng.standard_normal(k)) * 1e-3
    value[rng.integers(0, k, 3)] = np.nan
    counted = rng.random(k) > 0.3
    none = np.empty(0)
    for start, stop, n in ((0, k, 5), (10, 200, 7), (50, 53, 5), (7, 7, 5), (0, k, 40)):
        starts = np.array([0, start, stop], np.int64)
        _, worst = TALLIES[how](value, value, grad, allowed, none, counted, starts, n)
        found = worst[1][worst[1] >= 0]
        assert list(found) == list(reference_worst(value, grad, allowed, counted, start, stop, n))
        assert list(worst[0][worst[0] >= 0]) == list(reference_worst(value, grad, allowed, counted, 0, start, n))


def test_a_tally_of_entries_out_of_group_order_names_their_own_positions():
    approx, value, grad, error, grad_error, counted = entries(300, 5)
    groups = np.random.default_rng(0).integers(0, 3, 300)
    found = judge.tally(approx, value, grad, error=error, thresholds=(1e-7, 1e-3), groups=groups, n_groups=3,
                        grad_error=grad_error, counted=counted)
    allowed = error + grad_error
    for b in range(3):
        keep = counted & (groups == b)
        expected = reference_worst(np.where(keep, value, np.nan), grad, allowed, keep, 0, 300, judge.N_WORST)
        assert list(found.worst[b][found.worst[b] >= 0]) == list(expected)


def test_taken_steps_and_their_rounding_errors():
    theta = np.array([0.0, 1.0, 1e20, -3.0])
    indices = np.array([3, 2, 0], np.int64)
    steps, stuck = _tally.taken(theta, indices, 1e-7)
    assert stuck == 1
    np.testing.assert_array_equal(steps, (theta[indices] + 1e-7) - (theta[indices] - 1e-7))
    assert steps[1] == 0.0  # 1e-7 cannot move 1e20
    errors = _tally.rounding_errors(theta, indices, 1e-7, np.array([1.0, 1.0, 2.0]), 4 * judge.UNIT_ROUNDOFF)
    np.testing.assert_array_equal(errors, judge.rounding_error(np.array([1.0, 1.0, 2.0]), steps, "incremental"))
    assert errors[1] == np.inf


def test_the_parallel_rounding_errors_are_the_serial_ones_bit_for_bit():
    rng = np.random.default_rng(3)
    theta = np.concatenate((rng.standard_normal(3 * _tally.UNIT + 17) * 10.0 ** rng.integers(-8, 8,
                           3 * _tally.UNIT + 17),
                            [1e20, -1e30, 0.0]))
    indices = rng.permutation(theta.size).astype(np.int64)
    size = rng.random(indices.size) * 10.0 ** rng.integers(-5, 5, indices.size)
    expected = _tally.rounding_errors(theta, indices, 1e-7, size, 4 * judge.UNIT_ROUNDOFF)
    assert np.isinf(expected).sum() == 2  # the steps 1e20 and 1e30 cannot take
    for kernel in (_tally.rounding_errors_into, _tally.rounding_errors_into.serial):
        for threads in (1, 2, 3):
            out = np.full(indices.size, np.nan)
            with numba_threads(threads):
                kernel(theta, indices, 1e-7, size, 4 * judge.UNIT_ROUNDOFF, out)
            assert np.array_equal(out, expected)


def test_the_copy_of_theta_and_its_largest_magnitude():
    rng = np.random.default_rng(5)
    for n in (0, 1, 3, 4, 5, 1001, 3 * _tally.UNIT + 5):
        theta = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
        for threads in (1, 2, 3):
            with numba_threads(threads):
                copy, largest = _tally.copy_and_largest(theta)
            assert np.array_equal(copy, theta) and not np.shares_memory(copy, theta)
            assert largest == (np.max(np.abs(theta)) if n else 0.0)
        assert _tally.copy_and_largest.serial(theta)[1] == largest
        for position in sorted({0, 1, 2, 3, 4, 5, n // 2, n - 1} & set(range(n))):
            for bad in (np.nan, -np.nan, np.inf, -np.inf):
                spoiled = theta.copy()
                spoiled[position] = bad
                assert not np.isfinite(_tally.copy_and_largest(spoiled)[1])
    subnormal = np.array([-5e-324, 0.0, -0.0, 2.5e-310])
    assert _tally.copy_and_largest(subnormal)[1] == 2.5e-310


@pytest.mark.parametrize("step", [1e-7, 3.3e-5, 2.0 ** -30, 5e-324, 1.0])
def test_every_step_moves_below_the_bound_that_skips_the_step_check(step):
    rng = np.random.default_rng(0)
    limit = step * 2.0 ** 50
    w = np.concatenate((rng.uniform(-limit, limit, 20000), np.nextafter(limit, 0) * np.array([1, -1]),
                        limit * (1 - rng.random(2000) * 1e-3)))
    assert _tally.steps_all_move(np.max(np.abs(w)), step)
    steps, stuck = _tally.taken(w, np.arange(w.size), step)
    assert stuck == 0 and np.all(steps > 0)
    far = step * 2.0 ** 54  # where the bound says nothing, a step can indeed be lost
    assert not _tally.steps_all_move(far, step)
    assert _tally.taken(np.array([far]), np.zeros(1, np.int64), step)[1] == 1


NETS = [(hidden, output, keep) for hidden in ACTIVATIONS
        for output in OUTPUTS for keep in (1.0, 0.7)]


@pytest.mark.parametrize("hidden,output,keep", NETS)
def test_the_check_computes_J_and_backprop_bit_for_bit_as_the_network_does(hidden, output, keep):
    rng = np.random.default_rng(1)
    dims = [7, 9, 6, 1 if output == "sigmoid" else 3]
    net = minnet.Network(dims, hidden=hidden, output=output, lambd=0.3, keep_prob=keep, seed=2)
    X = rng.standard_normal((7, 40))
    Y = ((rng.random((1, 40)) > 0.5).astype(float) if output == "sigmoid" else rng.integers(0, 3, 40)
         if output == "softmax" else rng.standard_normal((3, 40)))
    net.fit(X, Y, epochs=3, seed=0)  # trained, not only fresh
    X = rng.standard_normal((7, 13))
    Y = ((rng.random((1, 13)) > 0.5).astype(float) if output == "sigmoid" else rng.integers(0, 3, 13)
         if output == "softmax" else rng.standard_normal((3, 13)))
    X, Y = net._check_XY(X, Y)
    drop, use_drop = net._dropout(13, 0)
    expected = net._cost_and_gradient(X, Y, drop, use_drop, net.theta)
    for threads in (1, 2):
        started = evaluate.start(net, X, Y, drop=drop, use_drop=use_drop, threads=threads, prepare=True)
        point, largest, cost, grad, prepared = started[:5]
        theta, found = point.theta, [cost, grad, point.Z, point.A]
        assert np.array_equal(theta, net.theta) and largest == np.max(np.abs(net.theta))
        assert found[0] == expected[0]
        for a, b in zip(found[1:], expected[1:]):
            np.testing.assert_array_equal(a, b)
        serial = _point.prepare.serial(net._dims, X, Y, found[2], found[3], net._hidden)
        for a, b in zip(prepared, serial):  # the parallel preparation against its serial twin
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("include_kinks", [False, True])
def test_a_report_from_the_judges_tally_equals_one_that_sums_again(include_kinks):
    from minnet.check.report import Entries, GradCheckReport, Run
    rng = np.random.default_rng(5)
    net = minnet.Network([6, 8, 5, 3], output="softmax", lambd=0.4, seed=1)
    net.fit(rng.standard_normal((6, 50)), rng.integers(0, 3, 50), epochs=20)
    X, labels = rng.standard_normal((6, 20)), rng.integers(0, 3, 20)
    report = minnet.gradient_check(net, X, labels, include_kinks=include_kinks)
    assert report.referee is None  # nothing refereed: the report was built from the judge's tally
    grad_error = None if report.referee is None else report.grad_error
    verdicts = judge.verdicts(net.layout, report.approx, report.grad, checked=report.checked,
                              refereed=report.refereed, error=report.error,
                              thresholds=report.thresholds, grad_error=0.0 if grad_error is None else grad_error)
    again = GradCheckReport(net.layout, Entries(report.approx, report.grad, report.refereed, report.error, grad_error,
                                                report.kink_mask), verdicts,
                            run=Run(report.cost, report.epsilon, report.thresholds, report.include_kinks, report.method,
                                report.mode, report.seconds, report.referee, None, report.kink_record, None))
    assert again.to_dict() | {"seconds": 0} == report.to_dict() | {"seconds": 0}
    assert again.error_norm == report.error_norm


@pytest.mark.parametrize("keep,epsilon,trained", [(1.0, 1e-7, False), (1.0, 1e-7, True), (0.8, 1e-7, True),
                                                  (1.0, 1e-3, True), (1.0, 1e-2, True)])
def test_every_entry_evaluated_and_tallied_ahead_gives_the_report_of_the_step_by_step_check(keep, epsilon, trained):
    """The default check runs its first evaluation, and where nothing kinked its tally, in the call of the
    kernels that computes J and backprop; a check that lists every entry (sample above every block's size)
    takes the separate steps. Both must give the same report, bit for bit, kinks and fallbacks included."""
    rng = np.random.default_rng(8)
    net = minnet.Network([9, 12, 7, 4], hidden="relu", output="softmax", lambd=0.5, keep_prob=keep, seed=3)
    if trained:
        net.fit(rng.standard_normal((9, 80)), rng.integers(0, 4, 80), epochs=30, seed=1)
    X, labels = rng.standard_normal((9, 25)), rng.integers(0, 4, 25)
    calls = []
    real = evaluate.start

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(result.first is not None)  # evaluated ahead
        return result

    evaluate.start = spy
    try:
        ahead = minnet.gradient_check(net, X, labels, epsilon=epsilon)
        listed = minnet.gradient_check(net, X, labels, epsilon=epsilon, sample=10**6)
    finally:
        evaluate.start = real
    assert calls[0] and not any(calls[1:])  # any later call: a nearby point's check of kinks
    assert listed.checked.all()
    for name in ("approx", "refereed", "error", "kink_mask"):
        assert np.array_equal(getattr(ahead, name), getattr(listed, name), equal_nan=name != "kink_mask")
    assert ahead.to_dict() | {"seconds": 0} == listed.to_dict() | {"seconds": 0}


def test_a_tally_made_ahead_is_the_tally_itself():
    """The sums an evaluator makes with the values are taken as given, and equal the tally's own."""
    rng = np.random.default_rng(9)
    value, grad = rng.standard_normal(50), rng.standard_normal(50)
    error = np.full(50, 1e-9)
    starts = np.array([0, 20], np.int64)
    made = _tally.block_tally.serial(value, value, grad, error, np.empty(0), np.empty(0, np.bool_), starts,
                                     judge.N_WORST)
    sums = made[0].copy()
    sums[:, _tally.SUM_GAP] = 0.0  # sums that would say: no difference at all
    groups = ("starts", starts)
    used = judge.tally(value, value, grad, error=error, thresholds=(1e-7, 1e-3), groups=groups, n_groups=2,
                       sums=(sums, made[1]))
    assert used.whole.difference == 0.0  # taken as given
    honest = judge.tally(value, value, grad, error=error, thresholds=(1e-7, 1e-3), groups=groups, n_groups=2)
    reused = judge.tally(value, value, grad, error=error, thresholds=(1e-7, 1e-3), groups=groups, n_groups=2, sums=made)
    assert reused[:4] == honest[:4] and np.array_equal(reused.off_norms, honest.off_norms)
    assert np.array_equal(reused.worst, honest.worst)


@pytest.mark.parametrize("read_worst", [False, True])
def test_a_report_is_freed_as_soon_as_it_is_dropped(read_worst):
    """No reference cycle keeps a report, and its arrays of theta's size, alive until a garbage collection."""
    import gc
    import weakref
    rng = np.random.default_rng(2)
    net = minnet.Network([5, 6, 3], output="softmax", lambd=0.1, seed=0)
    X, labels = rng.standard_normal((5, 8)), rng.integers(0, 3, 8)
    gc.disable()
    try:
        report = minnet.gradient_check(net, X, labels)
        if read_worst:
            assert report.blocks["W1"].worst
        gone = weakref.ref(report), weakref.ref(report.blocks["W1"])
        del report
        assert all(ref() is None for ref in gone)
    finally:
        gc.enable()

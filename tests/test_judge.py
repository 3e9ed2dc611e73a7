"""The judge on synthetic numbers: error model, referee and verdict, with no network at all.

A synthetic centered difference ``D(h) = g + c h^2 + noise / h`` stands for
an entry evaluated at step h: c for truncation, noise for J's rounding.
"""
import numpy as np
import pytest

from minnet.check import _steps, judge, referee
from minnet.check.judge import Estimates

U = judge.UNIT_ROUNDOFF
EPS = 1e-7


def synthetic(g_true, curvature, noise, seed=0):
    """An evaluator for entries with true gradients g_true: (positions, step) -> Estimates.

    noise: size of J's rounding (the rounding error model gets it right);
    its sign varies with the step and the entry, deterministically.
    """
    g_true, curvature = np.asarray(g_true, float), np.asarray(curvature, float)

    def evaluate(positions, step):
        positions = np.asarray(positions)
        phase = np.sin(1e3 * np.log(step) + 7.0 * positions + seed)  # in [-1, 1], "random"
        value = g_true[positions] + curvature[positions] * step ** 2 + noise * phase / step
        error = np.full(positions.size, 2 * noise / step)
        return Estimates(value, error, np.zeros(positions.size, bool), None)

    return evaluate


def run(g_backprop, evaluate, k, epsilon=EPS, thresholds=(1e-7, 1e-3), **kwargs):
    first = evaluate(np.arange(k), epsilon)
    verdict = referee.referee(first, np.asarray(g_backprop, float), epsilon=epsilon, evaluate=evaluate,
                              thresholds=thresholds,
                              include_kinks=False, **kwargs)
    found = judge.measure(verdict.value, g_backprop, verdict.error, thresholds=thresholds)
    return first, verdict, found


# ----------------------------------------------------------------- measure
def test_measure_counts_only_the_disagreement_beyond_each_entrys_error():
    g = np.array([1.0, -2.0, 0.5])
    approx = g + np.array([1e-9, -1e-9, 0.0])
    assert judge.measure(approx, g, np.full(3, 2e-9), thresholds=(1e-7, 1e-3)).verdict == "correct"
    off = judge.measure(approx + np.array([1e-4, 0, 0]), g, np.full(3, 2e-9), thresholds=(1e-7, 1e-3))
    assert off.verdict == "suspicious"
    assert off.refereed_difference == pytest.approx((1e-4 + 1e-9 - 2e-9) / (np.linalg.norm(approx + [1e-4, 0, 0])
                                                                             + np.linalg.norm(g)), rel=1e-9)
    assert judge.measure(-g, g, np.full(3, 1e-9), thresholds=(1e-7, 1e-3)).verdict == "bug"


def test_measure_is_inconclusive_when_the_errors_are_too_coarse_and_never_correct():
    g = np.array([1.0, -2.0])
    coarse = judge.measure(g, g, np.full(2, 1e-3), thresholds=(1e-7, 1e-3))
    assert coarse.verdict == "inconclusive" and coarse.refereed_difference == 0.0
    unresolved = judge.measure(np.array([np.nan, 1.0]), np.array([1.0, 1.0]), np.array([np.inf, 0.0]),
                               thresholds=(1e-7, 1e-3))
    assert unresolved.verdict == "inconclusive" and unresolved.resolution == np.inf
    # a proven bug elsewhere is still a bug
    proven = judge.measure(np.array([np.nan, -1.0]), np.array([1.0, 1.0]), np.array([np.inf, 0.0]), thresholds=(1e-7,
                           1e-3))
    assert proven.verdict == "bug"


def test_backprops_own_rounding_is_allowed_but_does_not_coarsen_the_resolution():
    g = np.array([1e-13, -2e-13])
    approx = g * (1 + 1e-4)  # backprop's A - Y cancelled: only 4 digits left
    tiny = np.full(2, 1e-30)
    assert judge.measure(approx, g, tiny, thresholds=(1e-7, 1e-3)).verdict == "suspicious"
    allowed = judge.measure(approx, g, tiny, thresholds=(1e-7, 1e-3), grad_error=np.full(2, 1e-16))
    assert allowed.verdict == "correct" and allowed.resolution < 1e-7


# ----------------------------------------------------------------- referee
def test_rounding_at_the_users_epsilon_is_refereed_away():
    rng = np.random.default_rng(0)
    g = rng.standard_normal(40)
    evaluate = synthetic(g, rng.standard_normal(40), noise=3e-15)  # 1e-8 relative at epsilon 1e-7
    first, verdict, found = run(g, evaluate, 40)
    assert judge.measure(first.value, g, first.error, thresholds=(1e-9, 1e-3)).verdict != "correct"  # doubtful at eps
    assert found.verdict == "correct"
    strict, verdict_strict, found_strict = run(g, evaluate, 40, thresholds=(1e-9, 1e-3))
    assert verdict_strict.refereed.any() and found_strict.verdict == "correct"
    assert np.all(verdict_strict.step[verdict_strict.refereed] > EPS)  # larger steps: less rounding


def test_a_small_bug_persists_at_every_step():
    rng = np.random.default_rng(1)
    g = rng.standard_normal(40)
    evaluate = synthetic(g, rng.standard_normal(40), noise=3e-15)
    wrong = g.copy()
    wrong[7] *= 1 + 1e-5
    first, verdict, found = run(wrong, evaluate, 40)
    assert found.verdict == "suspicious"
    assert verdict.refereed[7]
    assert verdict.summary["n_persistent"] >= 1 and verdict.summary["example"] == 7


def test_truncation_at_a_large_epsilon_is_refereed_by_richardson():
    rng = np.random.default_rng(2)
    g = rng.standard_normal(20)
    evaluate = synthetic(g, 50 * rng.standard_normal(20), noise=1e-16)
    first, verdict, found = run(g, evaluate, 20, epsilon=1e-3)  # truncation 50e-6: "suspicious" at eps
    assert judge.measure(first.value, g, first.error, thresholds=(1e-7, 1e-3)).verdict == "suspicious"
    assert found.verdict == "correct"
    assert verdict.richardson[verdict.refereed].any() or np.all(verdict.step[verdict.refereed] < 1e-3)


def test_the_referee_chooses_steps_by_error_never_by_agreement():
    rng = np.random.default_rng(3)
    g = rng.standard_normal(30)
    evaluate = synthetic(g, rng.standard_normal(30), noise=3e-14)
    _, right, _ = run(g, evaluate, 30, thresholds=(1e-10, 1e-3))
    _, wrong, _ = run(-g, evaluate, 30, thresholds=(1e-10, 1e-3))
    both = right.refereed & wrong.refereed
    assert both.any()
    assert np.array_equal(right.step[both], wrong.step[both]) and np.array_equal(right.value[both], wrong.value[both])


def test_an_entry_no_step_can_move_stays_unresolved():
    def evaluate(positions, step):
        n = np.asarray(positions).size
        return Estimates(np.full(n, np.nan), np.full(n, np.inf), np.zeros(n, bool), None)

    g = np.array([1.0, 2.0])
    _, verdict, found = run(g, evaluate, 2)
    assert found.verdict == "inconclusive"
    assert np.all(np.isinf(verdict.error)) and verdict.summary["n_unresolved"] == 2


def test_nothing_is_refereed_when_the_verdict_is_correct_at_epsilon():
    calls = []
    g = np.linspace(1, 2, 10)
    base = synthetic(g, np.zeros(10), noise=1e-17)

    def evaluate(positions, step):
        calls.append(step)
        return base(positions, step)

    first = evaluate(np.arange(10), EPS)
    verdict = referee.referee(first, g, epsilon=EPS, evaluate=evaluate, thresholds=(1e-7, 1e-3), include_kinks=False)
    assert calls == [EPS] and verdict.summary is None and not verdict.refereed.any()


# ------------------------------------------------------------------- kinks
def test_kinks_from_second_differences():
    S = _steps.ladder(EPS, np.full(5, np.inf))  # the referee's steps, one column per entry
    h = S[:, 0]
    jump = 0.3 * h  # a kink at theta: the slope jumps by 0.3 whatever the step
    smooth = 2.0 * h ** 2  # J'' = 2
    noise = 1e-15 * np.cos(np.arange(h.size))  # rounding: the same size at every step
    faint = 1e-12 * h  # a jump too small to stand above J's rounding at four steps in a row: not proven
    Q = np.stack([jump, smooth, noise, jump + noise, faint], axis=1)
    D = np.zeros_like(Q)
    R = np.broadcast_to((2 * U / h)[:, None], Q.shape)  # J ~ 1
    valid = np.isfinite(S)
    kink, low, high, error = referee._kinks(Q, S, D, R, valid)
    assert list(kink) == [True, False, False, True, False]
    assert low[0] == pytest.approx(-0.15, abs=1e-6) and high[0] == pytest.approx(0.15, abs=1e-6)
    assert error[0] < 1e-6


def test_a_kink_is_judged_by_the_rule_for_kinks_unless_counted():
    g = np.array([1.0, 0.0, 3.0])  # backprop takes relu'(0) = 0 at the kink of entry 1; entry 2 is off

    def evaluate(positions, step):
        positions = np.asarray(positions)
        step = np.broadcast_to(step, positions.shape)
        value = np.where(positions >= 1, 0.5, 1.0)  # the average of the two slopes 0 and 1
        second = np.where(positions >= 1, 1.0 * step, 2 * step ** 2)  # J+ - 2 J0 + J- for a kink / smooth
        return Estimates(value, np.full(positions.size, 1e-12), np.zeros(positions.size, bool), second)

    first = evaluate(np.arange(3), EPS)
    judged = referee.referee(first, g, epsilon=EPS, evaluate=evaluate, thresholds=(1e-7, 1e-3), include_kinks=False)
    assert list(judged.kink) == [False, True, True]
    # between the one-sided slopes 0 and 1: right; outside them: left to a nearby point, never called right
    assert list(judged.pending) == [False, False, True]
    assert judged.error[1] == 0.0 and np.isinf(judged.error[2])
    assert judge.measure(judged.value[:2], g[:2], judged.error[:2], thresholds=(1e-7, 1e-3)).verdict == "correct"
    assert judge.measure(judged.value, g, judged.error, thresholds=(1e-7, 1e-3)).verdict != "correct"
    counted = referee.referee(first, g, epsilon=EPS, evaluate=evaluate, thresholds=(1e-7, 1e-3), include_kinks=True)
    assert not counted.pending.any()
    assert judge.measure(counted.value, g, counted.error, thresholds=(1e-7, 1e-3)).verdict == "bug"


def test_a_disagreement_that_is_one_of_the_one_sided_slopes_is_never_a_bug():
    # J's rounding (error 0.1 at every step) is too coarse to prove a kink whose slopes are 1 and 3, yet the
    # centered difference sits at their mean, 2: backprop's 1 may be right (relu'(0) = 0), or not
    def evaluate(positions, step, jump):
        positions = np.asarray(positions)
        step = np.broadcast_to(step, positions.shape)
        second = jump * step + 1e-3 * step ** 2  # J+ - 2 J0 + J- = (D+ - D-) h
        return Estimates(np.full(positions.size, 2.0), np.full(positions.size, 0.1), np.zeros(positions.size, bool),
                         second)

    for jump, g, expected in [(2.0, 1.0, "inconclusive"), (0.0, 1.0, "bug")]:
        ev = lambda positions, step: evaluate(positions, step, jump)
        first = ev(np.arange(1), EPS)
        judged = referee.referee(first, np.array([g]), epsilon=EPS, evaluate=ev, thresholds=(1e-7, 1e-3),
                                 include_kinks=False)
        assert not judged.kink.any()  # not proven: the jump is within 32 times the rounding
        assert judge.measure(judged.value, np.array([g]), judged.error, thresholds=(1e-7, 1e-3)).verdict == expected
        assert judged.summary["n_straddled"] == (expected == "inconclusive")

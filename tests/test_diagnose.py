"""The diagnosis of a wrong block: each pattern named on its planted mistake, and none claimed on look-alikes.

The numerical gradients and errors are real: ``minnet.check_gradients`` on the learner's 3-layer network
of ``tests/learner.py`` (L2, fixed dropout masks) with its planted mistakes, or on code made from a
correct check's numerical gradient where a look-alike needs an exact construction.
"""
import functools

import numpy as np
import pytest

import minnet
from minnet.check import diagnose, judge
from minnet.check.diagnose import PATTERNS, explain

from . import learner

M = 16  # examples in every learner problem here


def problem(bug=None, lambd=0.7, change=None):
    """The learner's parameters, cost_fn and grads_fn with ``bug`` planted, and ``change`` applied to the grads."""
    dims = [4, 5, 5, 1] if bug in learner.SQUARE_BUGS else [4, 5, 3, 1]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((dims[0], M))
    Y = (rng.random((1, M)) < 0.5).astype(np.float64)
    parameters = learner.initialize_parameters(dims, seed=1)
    masks = learner.draw_masks(dims, M, 0.8, rng)
    cost_fn, grads_fn = learner.make_functions(X, Y, masks, 0.8, lambd, bug)
    if change is None:
        return parameters, cost_fn, grads_fn

    def changed(params):
        grads = {key: np.array(value, dtype=np.float64) for key, value in grads_fn(params).items()}
        change(grads)
        return grads

    return parameters, cost_fn, changed


@functools.lru_cache(maxsize=None)
def checked(bug=None, lambd=0.7):
    parameters, cost_fn, grads_fn = problem(bug, lambd)
    return minnet.check_gradients(cost_fn, grads_fn, parameters), parameters


def arrays(report, name):
    """(shape, code, numerical, error) of one block of a report."""
    block = report.blocks[name]
    part = slice(block.offset, block.offset + int(np.prod(block.shape)))
    return block.shape, report.grad[part], report.refereed[part], report.error[part]


def diagnosis(report, parameters, name, *, m=M, with_W=True):
    shape, code, numerical, error = arrays(report, name)
    return explain(shape, code=code, numerical=numerical, error=error, name=name,
                   W=parameters[name].ravel() if with_W else None, m=m)


def data(found):
    """The diagnosis without its sentence."""
    return None if found is None else {key: value for key, value in found.items() if key != "text"}


# ============================================ the list
def test_patterns_are_one_documented_tuple():
    assert isinstance(PATTERNS, tuple) and len(set(PATTERNS)) == len(PATTERNS)
    assert {"factor", "sign", "transposed", "l2", "zero", "row", "column", "entry"} <= set(PATTERNS)
    assert all(f'"{name}"' in diagnose.__doc__ for name in PATTERNS), "every pattern's rule is documented"


# ============================================ each pattern on its planted mistake
PLANTED = [  # bug, lambd, block, the diagnosis expected (factor compared to 1e-6 relative)
    ("dW2_doubled", 0.7, "W2", {"pattern": "factor", "factor": 2.0}),
    ("db1_4_over_m", 0.7, "b1", {"pattern": "factor", "factor": 4.0}),
    ("db3_without_1_over_m", 0.7, "b3", {"pattern": "factor", "factor": float(M)}),
    ("dW3_without_1_over_m", 0.0, "W3", {"pattern": "factor", "factor": float(M)}),
    ("dW3_without_1_over_m", 0.7, "W3", {"pattern": "data_factor", "factor": float(M)}),
    ("dropout_not_rescaled_layer1", 0.7, "b1", {"pattern": "factor", "factor": 0.8}),
    ("dropout_not_rescaled_layer1", 0.7, "W1", {"pattern": "data_factor", "factor": 0.8}),
    ("dropout_not_rescaled_layer1", 0.0, "W1", {"pattern": "factor", "factor": 0.8}),
    ("sign_dW1", 0.7, "W1", {"pattern": "sign"}),
    ("output_dZ_sign", 0.0, "W2", {"pattern": "sign"}),
    ("output_dZ_sign", 0.7, "b3", {"pattern": "sign"}),
    ("output_dZ_sign", 0.7, "W3", {"pattern": "data_factor", "factor": -1.0}),
    ("no_l2_in_dW3", 0.7, "W3", {"pattern": "l2", "factor": -0.7 / M}),
    ("l2_half_factor", 0.7, "W1", {"pattern": "l2", "factor": -0.7 / (2 * M)}),
    ("l2_half_factor", 0.7, "W2", {"pattern": "l2", "factor": -0.7 / (2 * M)}),
    ("l2_in_db2", 0.7, "b2", {"pattern": "l2", "factor": 0.7 / M}),
    ("cost_without_W1_in_l2", 0.7, "W1", {"pattern": "l2", "factor": 0.7 / M}),
    ("dW2_transposed", 0.0, "W2", {"pattern": "transposed"}),
    ("dW2_transposed", 0.7, "W2", {"pattern": "transposed"}),  # its L2 term is not transposed
    ("one_entry_dW2", 0.7, "W2", {"pattern": "entry", "where": list(learner.ONE_ENTRY)}),
]


@pytest.mark.parametrize("bug, lambd, name, expected", PLANTED)
def test_the_planted_mistake_is_named(bug, lambd, name, expected):
    report, parameters = checked(bug, lambd)
    assert report.blocks[name].verdict == judge.BUG
    found = diagnosis(report, parameters, name)
    assert found is not None, f"{bug}: no pattern for {name}"
    assert found["pattern"] == expected["pattern"]
    assert set(found) == set(expected) | {"text"}
    if "factor" in expected:
        assert isinstance(found["factor"], float)
        assert found["factor"] == pytest.approx(expected["factor"], rel=1e-6)
    if "where" in expected:
        assert found["where"] == expected["where"]
    assert f"d{name}" in found["text"]


@pytest.mark.parametrize("bug", ["tanh_derivative_layer2", "dropout_mask_forgotten_layer2", "W_instead_of_WT"])
def test_a_mistake_no_pattern_explains_gets_none(bug):
    report, parameters = checked(bug, 0.7)
    for name in sorted(learner.AFFECTED[bug]):
        assert report.blocks[name].verdict == judge.BUG
        assert diagnosis(report, parameters, name) is None, (bug, name)


def test_simple_factors_are_named_exactly_and_in_words():
    report, parameters = checked("dW2_doubled")
    found = diagnosis(report, parameters, "W2")
    assert found["factor"] == 2.0
    assert found["text"] == ("your dW2 is 2 times the numerical gradient: a factor of 2 too many (is a 1/2 or a 2 "
                             "misplaced?)")
    found = diagnosis(*checked("db3_without_1_over_m"), "b3")
    assert found["factor"] == 16.0 and "m = 16" in found["text"] and "1/m is missing" in found["text"]


def test_without_m_the_general_ratio_is_given():
    found = diagnosis(*checked("db3_without_1_over_m"), "b3", m=None)
    assert found is None  # one entry: only a simple factor could be claimed, and m is not known
    found = diagnosis(*checked("dW3_without_1_over_m", 0.0), "W3", m=None)
    assert data(found) == {"pattern": "factor", "factor": pytest.approx(16.0, rel=1e-9)}
    assert "m = " not in found["text"] and "4, m or 1/m" not in found["text"]


def test_the_sign_is_not_a_factor_of_minus_one():
    found = diagnosis(*checked("sign_dW1"), "W1")
    assert data(found) == {"pattern": "sign"}


def test_l2_needs_W():
    report, parameters = checked("no_l2_in_dW3")
    assert diagnosis(report, parameters, "W3", with_W=False) is None


def test_a_missing_l2_term_and_one_with_a_wrong_coefficient_are_told_apart():
    missing = diagnosis(*checked("no_l2_in_dW3"), "W3")
    halved = diagnosis(*checked("l2_half_factor"), "W3")
    assert missing["pattern"] == halved["pattern"] == "l2"
    assert missing["factor"] == pytest.approx(-0.7 / M, rel=1e-6)
    assert halved["factor"] == pytest.approx(-0.7 / (2 * M), rel=1e-6)
    assert "0.7/m" in missing["text"] and "0.35/m" in halved["text"]


@pytest.mark.parametrize("change, name, expected", [
    (lambda g: g["dW2"].__setitem__(1, g["dW2"][1] * 1.5), "W2", {"pattern": "row", "where": 1}),
    (lambda g: g["dW1"].__setitem__((slice(None), 2), g["dW1"][:, 2] + 0.05), "W1", {"pattern": "column", "where": 2}),
    (lambda g: g.__setitem__("db1", np.sum(g["dZ1"]) / M), "b1", {"pattern": "summed"}),
    (lambda g: g.__setitem__("dW3", np.zeros_like(g["dW3"])), "W3", {"pattern": "zero"}),
    (lambda g: g["db2"].__setitem__((2, 0), 0.3), "b2", {"pattern": "entry", "where": [2, 0]}),
])
def test_row_column_summed_zero_and_entry_mistakes_through_the_check(change, name, expected):
    parameters, cost_fn, grads_fn = problem(change=change)
    report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert report.blocks[name].verdict == judge.BUG
    assert data(diagnosis(report, parameters, name)) == expected


# ============================================ look-alikes: no claim
@pytest.fixture(scope="module")
def correct_W2():
    """(shape, numerical, error, W) of a correct check's W2 (3 x 5)."""
    report, parameters = checked(None)
    shape, code, numerical, error = arrays(report, "W2")
    assert report.blocks["W2"].verdict == judge.CORRECT
    return shape, numerical.copy(), error.copy(), parameters["W2"].ravel()


def ask(block, code, **options):
    shape, numerical, error, W = block
    options.setdefault("W", W)
    return data(explain(shape, code=code, numerical=numerical, error=error, name="W2", m=M, **options))


def test_a_correct_block_gets_none(correct_W2):
    assert ask(correct_W2, correct_W2[1].copy()) is None


def test_a_factor_on_most_entries_is_no_factor(correct_W2):
    numerical = correct_W2[1]
    code = 2 * numerical
    code[7] = numerical[7]  # one entry right: neither "factor" nor "entry" accounts for it
    assert ask(correct_W2, code) is None
    code = 2 * numerical
    code.reshape(3, 5)[1] = numerical.reshape(3, 5)[1]  # two rows doubled: not one row
    assert ask(correct_W2, code) is None


def test_a_factor_near_2_is_not_2(correct_W2):
    found = ask(correct_W2, 2.001 * correct_W2[1])
    assert found["pattern"] == "factor" and found["factor"] == pytest.approx(2.001, rel=1e-9)
    assert found["factor"] != 2.0


def test_one_entry_and_one_row_are_told_apart(correct_W2):
    numerical = correct_W2[1]
    one = numerical.copy()
    one[6] += 0.1
    assert ask(correct_W2, one) == {"pattern": "entry", "where": [1, 1]}
    row = numerical.copy()
    row[5:7] += 0.1  # two entries of row 1
    assert ask(correct_W2, row) == {"pattern": "row", "where": 1}
    column = numerical.copy()
    column[[1, 11]] += 0.1  # rows 0 and 2 of column 1
    assert ask(correct_W2, column) == {"pattern": "column", "where": 1}
    scattered = numerical.copy()
    scattered[[0, 6]] += 0.1  # (0, 0) and (1, 1): no one row, column or entry
    assert ask(correct_W2, scattered) is None


def test_a_local_pattern_needs_an_informative_rest():
    """Where the rest of the block is 0 in both, a global factor would look local: nothing is claimed."""
    numerical = np.zeros(15)
    numerical[4] = 0.3
    error = np.full(15, 1e-12)
    assert explain((3, 5), code=2.7 * numerical, numerical=numerical, error=error, name="W2") is None
    # a simple factor is exact evidence even from one entry: the zeros are doubled too
    assert explain((3, 5), code=2 * numerical, numerical=numerical, error=error, name="W2")["factor"] == 2.0


def test_an_l2_term_on_most_entries_is_no_l2(correct_W2):
    shape, numerical, error, W = correct_W2
    code = numerical - 0.7 / M * W
    code[3] = numerical[3]
    assert ask(correct_W2, code) is None
    code = numerical - 0.7 / M * W
    code[3] += 0.01  # an L2 term missing and one more entry wrong
    assert ask(correct_W2, code) is None


def test_zero_only_when_the_whole_block_is_zero(correct_W2):
    assert ask(correct_W2, np.zeros(15)) == {"pattern": "zero"}
    code = np.zeros(15)
    code[2] = correct_W2[1][2]
    assert ask(correct_W2, code) is None


def test_transposed_on_a_nearly_symmetric_matrix():
    rng = np.random.default_rng(3)
    S, A = rng.standard_normal((2, 5, 5))
    numerical = (S + S.T + 1e-4 * (A - A.T)).ravel()  # symmetric but for 1e-4
    error = np.full(25, 1e-12)

    def ask5(code):
        return data(explain((5, 5), code=code, numerical=numerical, error=error, name="W2"))

    transposed = numerical.reshape(5, 5).T.ravel()
    assert ask5(transposed) == {"pattern": "transposed"}
    near = numerical.copy()
    near[1] = transposed[1]  # one entry as the transpose has it: a one-entry mistake, not a transposed block
    assert ask5(near) == {"pattern": "entry", "where": [0, 1]}
    off = transposed.copy()
    off[7] += 1e-3  # transposed and one more entry wrong
    assert ask5(off) is None
    half = (0.5 * (numerical.reshape(5, 5) + numerical.reshape(5, 5).T)).ravel()  # only the symmetric part
    assert ask5(half) is None


def test_two_explanations_that_both_fit_give_none():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((4, 4))
    numerical = (A - A.T).ravel()  # antisymmetric: its transpose is its negative
    found = explain((4, 4), code=-numerical, numerical=numerical, error=np.full(16, 1e-12), name="W2")
    assert found is None


def test_unknown_entries_are_no_evidence(correct_W2):
    shape, numerical, error, W = correct_W2
    numerical, error = numerical.copy(), error.copy()
    numerical[2], error[9] = np.nan, np.inf  # unchecked, unresolved
    code = 2 * numerical
    code[2], code[9] = 5.0, -5.0  # whatever backprop says there
    found = explain(shape, code=code, numerical=numerical, error=error, name="W2", m=M)
    assert data(found) == {"pattern": "factor", "factor": 2.0}
    code = numerical.copy()
    code[2], code[9] = 5.0, -5.0  # the only disagreement is where nothing is known
    assert explain(shape, code=code, numerical=numerical, error=error, name="W2", m=M) is None


def test_a_single_entry_needs_a_simple_factor():
    one = {"numerical": [0.25], "error": [1e-12], "name": "b3", "m": M}
    assert explain((1, 1), code=[0.25 * 3.3], **one) is None
    assert explain((1, 1), code=[0.25 * M], **one)["factor"] == M
    assert explain((1, 1), code=[-0.25], **one)["pattern"] == "sign"


def test_random_disagreements_claim_nothing(correct_W2):
    shape, numerical, error, W = correct_W2
    rng = np.random.default_rng(5)
    for _ in range(50):
        code = numerical * (1 + 0.1 * rng.standard_normal(15))
        assert ask(correct_W2, code) is None
        code = 2 * numerical + 1e-3 * rng.standard_normal(15) * np.abs(numerical)
        assert ask(correct_W2, code) is None


def test_non_finite_code_gets_none(correct_W2):
    code = 2 * correct_W2[1]
    code[0] = np.nan
    assert ask(correct_W2, code) is None


def test_sizes_must_match():
    with pytest.raises(ValueError):
        explain((2, 2), code=np.zeros(4), numerical=np.zeros(3), error=np.zeros(4))


def test_a_large_block_is_diagnosed_quickly():
    import time
    rng = np.random.default_rng(6)
    numerical = rng.standard_normal(300 * 300)
    error = np.full(numerical.size, 1e-10)
    started = time.perf_counter()
    for code in (2 * numerical, numerical + rng.standard_normal(numerical.size)):
        explain((300, 300), code=code, numerical=numerical, error=error, W=rng.standard_normal(numerical.size), m=64)
    assert time.perf_counter() - started < 2.0

import sys

import numpy as np
import pytest

from minnet import datasets

BINARY = ["flower", "moons", "circles", "xor"]
MULTI = ["spirals", "blobs"]
GENERATORS = BINARY + MULTI
MS = [2, 3, 7, 50, 101, 400]


def _check_X(X, n_x, m):
    assert X.shape == (n_x, m)
    assert X.dtype == np.float64
    assert X.flags["C_CONTIGUOUS"]
    assert np.all(np.isfinite(X))


def _check_binary_Y(Y, m):
    assert Y.shape == (1, m)
    assert Y.dtype == np.float64
    assert Y.flags["C_CONTIGUOUS"]
    assert set(np.unique(Y)) <= {0.0, 1.0}


# ------------------------------------------------------------- shapes/dtypes
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("m", MS)
def test_binary_shapes_and_balance(name, m):
    X, Y = getattr(datasets, name)(m=m)
    _check_X(X, 2, m)
    _check_binary_Y(Y, m)
    assert set(np.unique(Y)) == {0.0, 1.0}
    ones = int(Y.sum())
    assert abs((m - ones) - ones) <= 1


@pytest.mark.parametrize("name", [n for n in BINARY if n != "xor"])  # xor balances over four clusters
def test_binary_extra_point_goes_to_class_0(name):
    _, Y = getattr(datasets, name)(m=11)
    assert int((Y == 0).sum()) == 6 and int((Y == 1).sum()) == 5


@pytest.mark.parametrize("name", MULTI)
@pytest.mark.parametrize("m,k", [(m, k) for m in (3, 5, 10, 100, 301) for k in (3, 4) if m >= k])
def test_multiclass_shapes_and_balance(name, m, k):
    X, Y = getattr(datasets, name)(m=m, n_classes=k)
    _check_X(X, 2, m)
    assert Y.shape == (m,)
    assert Y.dtype == np.int64
    assert Y.flags["C_CONTIGUOUS"]
    counts = np.bincount(Y, minlength=k)
    assert len(counts) == k
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1


@pytest.mark.parametrize("name", MULTI)
@pytest.mark.parametrize("m", [2, 9, 100])
def test_multiclass_two_classes_returns_binary_row(name, m):
    X, Y = getattr(datasets, name)(m=m, n_classes=2)
    _check_X(X, 2, m)
    _check_binary_Y(Y, m)
    assert set(np.unique(Y)) == {0.0, 1.0}


def test_blobs_n_features():
    X, Y = datasets.blobs(m=40, n_classes=4, n_features=5)
    _check_X(X, 5, 40)
    assert Y.shape == (40,)
    X1, _ = datasets.blobs(m=10, n_classes=2, n_features=1)
    _check_X(X1, 1, 10)


def test_flower_matches_course_recipe():
    m, noise, rng = 400, 0.2, np.random.default_rng(5)
    cols = []
    for j in range(2):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, m // 2)
        t = t + rng.standard_normal(m // 2) * noise
        r = 4 * np.sin(4 * t) + rng.standard_normal(m // 2) * noise
        cols.append(np.c_[r * np.sin(t), r * np.cos(t)].T)
    X, Y = datasets.flower(m=m, noise=noise, seed=5)
    np.testing.assert_array_equal(X, np.hstack(cols))
    np.testing.assert_array_equal(Y[0], np.repeat([0.0, 1.0], m // 2))


def test_noise_free_geometry():
    X, Y = datasets.circles(m=40, noise=0.0, factor=0.3)
    radius = np.hypot(X[0], X[1])
    np.testing.assert_allclose(radius[Y[0] == 0], 1.0)
    np.testing.assert_allclose(radius[Y[0] == 1], 0.3)
    X, Y = datasets.xor(m=40, noise=0.0)
    np.testing.assert_array_equal(Y[0], (np.sign(X[0]) != np.sign(X[1])).astype(float))
    X, Y = datasets.moons(m=40, noise=0.0)
    np.testing.assert_allclose(np.hypot(X[0], X[1])[Y[0] == 0], 1.0)


# ------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("name", GENERATORS)
def test_reproducible(name):
    fn = getattr(datasets, name)
    X1, Y1 = fn(m=60, seed=123)
    X2, Y2 = fn(m=60, seed=123)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
    X3, _ = fn(m=60, seed=124)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", GENERATORS)
def test_does_not_touch_global_rng(name):
    np.random.seed(0)
    expected = np.random.random_sample()
    np.random.seed(0)
    getattr(datasets, name)(m=20, seed=1)
    assert np.random.random_sample() == expected


@pytest.mark.parametrize("name", GENERATORS)
def test_seed_none_and_numpy_int(name):
    fn = getattr(datasets, name)
    X, _ = fn(m=20, seed=None)
    _check_X(X, 2, 20)
    Xa, _ = fn(m=np.int64(20), seed=np.int32(4))
    Xb, _ = fn(m=20, seed=4)
    np.testing.assert_array_equal(Xa, Xb)


# ------------------------------------------------------------------ load()
@pytest.mark.parametrize("name", GENERATORS)
def test_load_dispatch(name):
    X1, Y1 = datasets.load(name, m=30, seed=2)
    X2, Y2 = getattr(datasets, name)(m=30, seed=2)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)


def test_names():
    assert datasets.NAMES == ("flower", "moons", "circles", "spirals", "xor",
                              "blobs", "digits")


def test_load_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        datasets.load("mnist")
    message = str(info.value)
    assert "mnist" in message
    for name in datasets.NAMES:
        assert name in message


def test_load_non_string_name():
    with pytest.raises(TypeError, match="name"):
        datasets.load(3)


def test_load_bad_kwarg_passes_through():
    with pytest.raises(TypeError):
        datasets.load("moons", bogus=1)


# --------------------------------------------------------------- validation
BAD_COMMON = [
    ("m", 2.0, TypeError), ("m", "10", TypeError), ("m", True, TypeError),
    ("m", None, TypeError), ("m", 1, ValueError), ("m", 0, ValueError),
    ("m", -5, ValueError),
    ("noise", "0.1", TypeError), ("noise", True, TypeError),
    ("noise", None, TypeError), ("noise", -0.1, ValueError),
    ("noise", float("nan"), ValueError), ("noise", float("inf"), ValueError),
    ("seed", 1.5, TypeError), ("seed", "0", TypeError), ("seed", False, TypeError),
]


@pytest.mark.parametrize("name", ["flower", "moons", "circles", "spirals", "xor"])
@pytest.mark.parametrize("arg, value, exc", BAD_COMMON)
def test_common_validation(name, arg, value, exc):
    with pytest.raises(exc, match=arg):
        getattr(datasets, name)(**{arg: value})


@pytest.mark.parametrize("arg, value, exc", [
    (a, v, e) for a, v, e in BAD_COMMON if a != "noise"] + [
    ("spread", "1", TypeError), ("spread", -1.0, ValueError),
    ("spread", float("nan"), ValueError), ("spread", float("-inf"), ValueError),
    ("n_features", 2.0, TypeError), ("n_features", True, TypeError),
    ("n_features", 0, ValueError),
])
def test_blobs_validation(arg, value, exc):
    with pytest.raises(exc, match=arg):
        datasets.blobs(**{arg: value})


@pytest.mark.parametrize("name", MULTI)
@pytest.mark.parametrize("value, exc", [
    (3.0, TypeError), ("3", TypeError), (True, TypeError),
    (1, ValueError), (0, ValueError), (-2, ValueError)])
def test_n_classes_validation(name, value, exc):
    with pytest.raises(exc, match="n_classes"):
        getattr(datasets, name)(n_classes=value)


@pytest.mark.parametrize("name", MULTI)
def test_m_smaller_than_n_classes(name):
    with pytest.raises(ValueError, match="m must be >= n_classes"):
        getattr(datasets, name)(m=3, n_classes=4)


@pytest.mark.parametrize("value, exc", [
    (0, ValueError), (1, ValueError), (0.0, ValueError), (1.0, ValueError),
    (-0.5, ValueError), (1.5, ValueError), (float("nan"), ValueError),
    ("0.5", TypeError), (None, TypeError), (True, TypeError)])
def test_factor_validation(value, exc):
    with pytest.raises(exc, match="factor"):
        datasets.circles(factor=value)


def test_zero_noise_allowed():
    for name in ["flower", "moons", "circles", "spirals", "xor"]:
        X, _ = getattr(datasets, name)(m=10, noise=0)
        assert np.all(np.isfinite(X))
    X, _ = datasets.blobs(m=10, spread=0)
    assert np.all(np.isfinite(X))


# ------------------------------------------------------------------- digits
def test_load_digits():
    pytest.importorskip("sklearn")
    X, Y = datasets.load_digits()
    _check_X(X, 64, 1797)
    assert X.min() >= 0.0 and X.max() <= 1.0 and X.max() == 1.0
    assert Y.shape == (1797,) and Y.dtype == np.int64 and Y.flags["C_CONTIGUOUS"]
    assert set(np.unique(Y)) == set(range(10))
    X2, Y2 = datasets.load("digits")
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "minnet\[datasets\]"'):
        datasets.load_digits()
    with pytest.raises(ImportError, match="scikit-learn"):
        datasets.load("digits")

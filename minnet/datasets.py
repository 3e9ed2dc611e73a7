"""Small seeded toy datasets in the deeplearning.ai layout, and scikit-learn's digits.

Owns the generators and their argument checks. Must import nothing of minnet, and scikit-learn only
inside ``load_digits`` (an optional dependency).
"""
# Every generator returns ``X`` of shape ``(n_x, m)`` -- one example per column -- as a finite,
# C-contiguous float64 array. Binary labels are ``(1, m)`` float64 arrays of 0/1; multi-class labels
# are int64 vectors of shape ``(m,)``. Generators use ``np.random.default_rng(seed)`` only, so a given
# seed always gives the same arrays. Examples are grouped by class (nothing is shuffled). After the
# first two arguments, options are keyword-only.
import math
import numbers

import numpy as np

NAMES = ("flower", "moons", "circles", "spirals", "xor", "blobs", "digits")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def _rng(seed):
    if seed is not None and (isinstance(seed, bool)
                             or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
    return np.random.default_rng(None if seed is None else int(seed))


def _sizes(m, k):
    """Split ``m`` into ``k`` near-equal counts, extras to the first groups."""
    return [m // k + (i < m % k) for i in range(k)]


def _finish(points, labels, n_classes):
    """(m, n_x) points -> (n_x, m) X; labels -> (1, m) float or (m,) int64."""
    X = np.ascontiguousarray(np.asarray(points, dtype=np.float64).T)
    labels = np.asarray(labels, dtype=np.int64)
    if n_classes == 2:
        return X, np.ascontiguousarray(labels.astype(np.float64).reshape(1, -1))
    return X, np.ascontiguousarray(labels)


def _binary(parts):
    """Stack ``[(points_class0), (points_class1)]`` into X (2, m), Y (1, m)."""
    labels = np.concatenate([np.full(len(p), j) for j, p in enumerate(parts)])
    return _finish(np.concatenate(parts), labels, 2)


def flower(m=400, noise=0.2, seed=0):
    """Planar "flower" petals (the course's ``load_planar_dataset``).

    Class 0 gets ``m - m // 2`` points, class 1 gets ``m // 2``.

    Returns
    -------
    X : ndarray, shape (2, m), float64
    Y : ndarray, shape (1, m), float64 of 0/1

    Examples
    --------
    >>> X, Y = flower(m=400, seed=0)
    >>> X.shape, Y.shape
    ((2, 400), (1, 400))
    """
    m, noise, rng = _check_int(m, "m", 2), _check_real(noise, "noise"), _rng(seed)
    a, parts = 4.0, []
    for j, n in enumerate((m - m // 2, m // 2)):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + rng.standard_normal(n) * noise
        r = a * np.sin(4 * t) + rng.standard_normal(n) * noise
        parts.append(np.c_[r * np.sin(t), r * np.cos(t)])
    return _binary(parts)


def moons(m=400, noise=0.2, seed=0):
    """Two interleaving half-circles (like ``sklearn.datasets.make_moons``).

    Class 0 (upper moon) gets ``m - m // 2`` points; Gaussian noise of
    standard deviation ``noise`` is added to every coordinate.

    Returns
    -------
    X : ndarray, shape (2, m), float64
    Y : ndarray, shape (1, m), float64 of 0/1

    Examples
    --------
    >>> X, Y = moons(m=100, noise=0.1, seed=1)
    >>> X.shape, Y.shape
    ((2, 100), (1, 100))
    """
    m, noise, rng = _check_int(m, "m", 2), _check_real(noise, "noise"), _rng(seed)
    t0, t1 = np.linspace(0, np.pi, m - m // 2), np.linspace(0, np.pi, m // 2)
    upper = np.c_[np.cos(t0), np.sin(t0)]
    lower = np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]
    return _binary([p + rng.standard_normal(p.shape) * noise for p in (upper, lower)])


def circles(m=400, noise=0.1, *, factor=0.5, seed=0):
    """Two concentric circles: class 0 radius 1, class 1 radius ``factor``.

    ``factor`` must lie in the open interval (0, 1).  Class 0 gets
    ``m - m // 2`` points.

    Returns
    -------
    X : ndarray, shape (2, m), float64
    Y : ndarray, shape (1, m), float64 of 0/1

    Examples
    --------
    >>> X, Y = circles(m=200, factor=0.3, seed=0)
    >>> X.shape, Y.shape
    ((2, 200), (1, 200))
    """
    m, noise, rng = _check_int(m, "m", 2), _check_real(noise, "noise"), _rng(seed)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
        raise TypeError(f"factor must be a real number, got {type(factor).__name__}")
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in the open interval (0, 1), got {factor}")
    parts = []
    for radius, n in ((1.0, m - m // 2), (float(factor), m // 2)):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        ring = radius * np.c_[np.cos(t), np.sin(t)]
        parts.append(ring + rng.standard_normal(ring.shape) * noise)
    return _binary(parts)


def spirals(m=300, n_classes=3, *, noise=0.2, seed=0):
    """CS231n spiral arms, one arm per class.

    Points are split as evenly as possible (extras go to the first classes);
    ``m`` must be at least ``n_classes``.

    Returns
    -------
    X : ndarray, shape (2, m), float64
    Y : ndarray, shape (m,), int64 in ``0 .. n_classes - 1``; when
        ``n_classes == 2`` it is instead shape (1, m), float64 of 0/1.

    Examples
    --------
    >>> X, Y = spirals(m=300, n_classes=3, seed=0)
    >>> X.shape, Y.shape, int(Y.max())
    ((2, 300), (300,), 2)
    """
    m, k = _check_int(m, "m", 2), _check_int(n_classes, "n_classes", 2)
    noise, rng = _check_real(noise, "noise"), _rng(seed)
    if m < k:
        raise ValueError(f"m must be >= n_classes ({k}), got {m}")
    parts, labels = [], []
    for j, n in enumerate(_sizes(m, k)):
        r = np.linspace(0.0, 1.0, n)
        t = np.linspace(j * 4, (j + 1) * 4, n) + rng.standard_normal(n) * noise
        parts.append(np.c_[r * np.sin(t), r * np.cos(t)])
        labels.append(np.full(n, j))
    return _finish(np.concatenate(parts), np.concatenate(labels), k)


def xor(m=400, noise=0.1, seed=0):
    """Four Gaussian clusters at (+-1, +-1); label = XOR of the centre's signs.

    Clusters (1, 1) and (-1, -1) are class 0, (1, -1) and (-1, 1) class 1;
    each point keeps the label of the cluster it was drawn from.

    Returns
    -------
    X : ndarray, shape (2, m), float64
    Y : ndarray, shape (1, m), float64 of 0/1

    Examples
    --------
    >>> X, Y = xor(m=400, seed=0)
    >>> X.shape, float(Y.mean())
    ((2, 400), 0.5)
    """
    m, noise, rng = _check_int(m, "m", 2), _check_real(noise, "noise"), _rng(seed)
    centers = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float64)
    sizes = _sizes(m, 4)
    points = np.repeat(centers, sizes, axis=0)
    points += rng.standard_normal(points.shape) * noise
    return _finish(points, np.repeat([0, 1, 0, 1], sizes), 2)


def blobs(m=300, n_classes=3, *, n_features=2, spread=1.0, seed=0):
    """Isotropic Gaussian blobs around centres drawn uniformly in [-5, 5].

    ``spread`` is the standard deviation of every blob; classes are split
    as evenly as possible and ``m`` must be at least ``n_classes``.

    Returns
    -------
    X : ndarray, shape (n_features, m), float64
    Y : ndarray, shape (m,), int64 in ``0 .. n_classes - 1``; when
        ``n_classes == 2`` it is instead shape (1, m), float64 of 0/1.

    Examples
    --------
    >>> X, Y = blobs(m=90, n_classes=3, n_features=4, seed=0)
    >>> X.shape, Y.shape
    ((4, 90), (90,))
    """
    m, k = _check_int(m, "m", 2), _check_int(n_classes, "n_classes", 2)
    d, spread = _check_int(n_features, "n_features", 1), _check_real(spread, "spread")
    rng = _rng(seed)
    if m < k:
        raise ValueError(f"m must be >= n_classes ({k}), got {m}")
    centers = rng.uniform(-5.0, 5.0, size=(k, d))
    sizes = _sizes(m, k)
    points = np.repeat(centers, sizes, axis=0)
    points += rng.standard_normal(points.shape) * spread
    return _finish(points, np.repeat(np.arange(k), sizes), k)


def load_digits():
    """scikit-learn's 8x8 handwritten digits (needs scikit-learn).

    Returns
    -------
    X : ndarray, shape (64, 1797), float64 pixel intensities in [0, 1]
    Y : ndarray, shape (1797,), int64 digit labels 0..9

    Raises
    ------
    ImportError
        If scikit-learn is missing (``pip install "minnet[datasets]"``).

    Examples
    --------
    >>> X, Y = load_digits()  # doctest: +SKIP
    >>> X.shape, Y.shape  # doctest: +SKIP
    ((64, 1797), (1797,))
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:
        raise ImportError(
            'load_digits needs scikit-learn: pip install "minnet[datasets]" '
            "(or pip install scikit-learn)") from exc
    data = _sk_load_digits()
    X = np.ascontiguousarray(np.asarray(data.data, dtype=np.float64).T / 16.0)
    return X, np.ascontiguousarray(np.asarray(data.target, dtype=np.int64))


_LOADERS = {"flower": flower, "moons": moons, "circles": circles,
            "spirals": spirals, "xor": xor, "blobs": blobs, "digits": load_digits}


def load(name, **kwargs):
    """Build a dataset by name; ``kwargs`` go to the matching function.

    Valid names are listed in ``NAMES``.

    Examples
    --------
    >>> X, Y = load("moons", m=50, seed=3)
    >>> X.shape
    (2, 50)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {', '.join(NAMES)}; "
                        f"got {type(name).__name__}")
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset name {name!r}; "
                         f"valid names are: {', '.join(NAMES)}")
    return _LOADERS[name](**kwargs)

"""Truncated series for exp(x) - 1, log(1 + x) and tanh(x) of small x, exact to double precision.

The check's kernels and the registries use them to compute changes without
subtracting nearly equal numbers. Imports only NumPy and Numba.
"""
import numpy as np
from numba import njit

SERIES_LIMIT = 1e-3  # below it, the truncated series are exact to double precision


@njit(cache=True)
def expm1_series(x):
    """exp(x) - 1 for |x| < SERIES_LIMIT (truncation error below 1e-21 relative)."""
    return x * (1.0 + x * (0.5 + x * (1.0 / 6 + x * (1.0 / 24 + x * (1.0 / 120 + x * (1.0 / 720))))))


@njit(cache=True)
def log1p_series(x):
    """log(1 + x) for |x| < SERIES_LIMIT (truncation error below 1e-19 relative)."""
    return x * (1.0 - x * (0.5 - x * (1.0 / 3 - x * (0.25 - x * (0.2 - x * (1.0 / 6 - x / 7.0))))))


@njit(cache=True)
def tanh_series(x):
    """tanh(x) for |x| < SERIES_LIMIT (truncation error below 1e-24 relative)."""
    x2 = x * x
    return x * (1.0 - x2 * (1.0 / 3 - x2 * (2.0 / 15 - x2 * (17.0 / 315))))


@njit(cache=True)
def expm1_exact(x):
    return expm1_series(x) if abs(x) < SERIES_LIMIT else np.expm1(x)


@njit(cache=True)
def log1p_exact(x):
    return log1p_series(x) if abs(x) < SERIES_LIMIT else np.log1p(x)


@njit(cache=True)
def tanh_exact(x):
    return tanh_series(x) if abs(x) < SERIES_LIMIT else np.tanh(x)

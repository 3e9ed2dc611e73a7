"""Checks at the public boundary: every message names the argument at fault.

Imports only NumPy: every other module may use it.
"""
import numbers
import warnings

import numpy as np


def choice(value, name, options):
    """Return the index of ``value`` in ``options`` (the integer code kernels use)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(map(repr, options))}; got {value!r}")
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return options.index(value)


def boolean(value, name):
    """True or False (a Python or NumPy bool): a string such as "no" is refused, not read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def integer(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def real(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite float within [low, high] (ends open when asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    span = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ValueError(f"{name} must be a finite number in {span}, got {value!r}")
    return value


SEED_LIMIT = 2**63
"""Seeds are integers in [0, 2**63); distinct seeds in that range select distinct random streams."""


def seed(value, name="seed"):
    """None, or an integer in [0, 2**63)."""
    if value is None:
        return None
    value = integer(value, name)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**63), got {value}")
    return value


def not_masked(value, name):
    """Refuse a numpy masked array: minnet computes on plain arrays and would ignore the mask."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array, whose mask minnet would ignore; fill the masked entries "
                        f"({name}.filled(value)) or leave them out ({name}.compressed(), or keep only the "
                        f"complete examples) and pass a plain array")


def float_array(value, name, ndim=None):
    """Convert to a C-contiguous float64 array, refusing what is not numbers.

    float32 (and other float types narrower than float64) are converted with
    a warning, since a gradient check in single precision cannot be trusted.
    Masked arrays are refused: their mask would be silently ignored.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}")
    not_masked(value, name)
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise TypeError(f"{name} must be real, got complex dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and array.dtype != np.float64:
        warnings.warn(f"{name} has dtype {array.dtype}; converting to float64 (minnet computes in float64)",
                      stacklevel=3)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not all_finite(array):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def all_finite(array):
    """Whether a float64 array holds no NaN or inf: one sum, without a temporary array, when it does not.

    A NaN or inf makes the sum NaN or inf; a finite sum proves them absent.
    Only a sum that overflowed from finite values needs the entrywise check.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(array, axis=None)
    return bool(np.isfinite(total) or np.isfinite(array).all())

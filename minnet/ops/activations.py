"""The hidden activations: the one table of them (``ACTIVATIONS``) and their compiled math.

Everything else (kernels, the check, the CLI, checkpoints, plots, references)
reads this module; nothing else names an activation. Imports only NumPy and Numba.

An entry holds its name, its integer code (what the kernels receive), its
forward g and derivative g' as compiled scalar functions, its exact change
g(z + d) - g(z) (for smooth activations; what the incremental check kernel
evaluates without subtracting nearly equal numbers), where its kinks are,
its slopes when it is piecewise linear, and an array form written for any
NumPy-like module (``xp``: numpy, jax.numpy, torch) for the plain references.

Adding an activation: write its scalar functions, add one ``Activation`` to
``_ENTRIES`` and one branch to each dispatcher below (``activate``,
``activate_grad`` and, when smooth, ``change``); a code with no branch raises.
"""
import math
from collections import namedtuple

import numpy as np
from numba import njit

from ._series import expm1_exact, tanh_exact

Activation = namedtuple("Activation", ["name", "code", "forward", "derivative", "kinks", "slopes", "array", "doc"])
Activation.__doc__ = """One hidden activation.

name : str; code : int, its index in ``ACTIVATIONS``; forward, derivative :
compiled ``f(z) -> float``; kinks : tuple of the z where g is not
differentiable; slopes : (left, right) of a piecewise-linear g (kink at 0),
else None; array : ``array(z, xp)``, g on arrays of any NumPy-like module xp;
doc : one line for help texts.
"""

LEAKY_SLOPE = 0.01
GELU_C = math.sqrt(2.0 / math.pi)  # GELU's tanh form (Hendrycks & Gimpel; as in BERT and GPT-2)
GELU_A = 0.044715


# ----------------------------------------------------------------- each activation
@njit(cache=True)
def relu(z):
    return z if z > 0.0 else 0.0


@njit(cache=True)
def relu_grad(z):
    return 1.0 if z > 0.0 else 0.0


@njit(cache=True)
def leaky_relu(z):
    return z if z > 0.0 else LEAKY_SLOPE * z


@njit(cache=True)
def leaky_relu_grad(z):
    return 1.0 if z > 0.0 else LEAKY_SLOPE


@njit(cache=True)
def tanh(z):
    return np.tanh(z)


@njit(cache=True)
def tanh_grad(z):
    t = np.tanh(z)
    return 1.0 - t * t


@njit(cache=True)
def sigmoid(z):
    """Logistic function without overflow for any float z."""
    if z >= 0.0:
        return 1.0 / (1.0 + np.exp(-z))
    ez = np.exp(z)
    return ez / (1.0 + ez)


@njit(cache=True)
def sigmoid_grad(z):
    s = sigmoid(z)
    return s * (1.0 - s)


@njit(cache=True)
def gelu(z):
    """0.5 z (1 + tanh(u)), u = sqrt(2 / pi) (z + 0.044715 z^3), evaluated as z sigmoid(2 u).

    The same function; the second form does not lose the digits of 1 + tanh(u) for z < 0.
    """
    return z * sigmoid(2.0 * GELU_C * (z + GELU_A * z * z * z))


@njit(cache=True)
def gelu_grad(z):
    s = sigmoid(2.0 * GELU_C * (z + GELU_A * z * z * z))
    return s + z * s * (1.0 - s) * 2.0 * GELU_C * (1.0 + 3.0 * GELU_A * z * z)


# exact changes g(z + d) - g(z) of the smooth ones, from g0 = g(z): no subtraction of nearly equal numbers
# and no division (a quotient of the older identities was 0 / 0 where z and z + d saturate), the short
# series below SERIES_LIMIT, exact to double precision there, and the library functions above it
@njit(cache=True)
def tanh_change(z, g0, d):
    """tanh(z + d) - tanh(z) = tanh(d) (1 - tanh(z) tanh(z + d))."""
    return tanh_exact(d) * (1.0 - g0 * np.tanh(z + d))


@njit(cache=True)
def sigmoid_change(z, g0, d):
    """s(z + d) - s(z) = s(z + d) (1 - s(z)) (1 - exp(-d)) for d >= 0, s(z) s(-(z + d)) (exp(d) - 1) for d < 0.

    The same identity with the roles of z and z + d swapped (1 - s(x) = s(-x)): every factor lies in [-1, 1],
    so a step of either sign and any size gives a finite value. The first form alone multiplied 0 by inf where
    z saturates at s = 1 and d < -709 (GELU's 2u moves that far for large z: NaN in the check).
    """
    if d >= 0.0:
        return sigmoid(z + d) * (1.0 - g0) * -expm1_exact(-d)
    return g0 * sigmoid(-(z + d)) * expm1_exact(d)


@njit(cache=True)
def gelu_change(z, g0, d):
    """g(z + d) - g(z) = d s0 + (z + d) (s1 - s0), with s = sigmoid(2 u) and s1 - s0 from sigmoid's identity.

    2u changes by D = 2 c d (1 + a (3 z^2 + 3 z d + d^2)), computed without subtracting u0 from u1.
    """
    x = 2.0 * GELU_C * (z + GELU_A * z * z * z)
    s0 = sigmoid(x)
    D = 2.0 * GELU_C * d * (1.0 + GELU_A * (3.0 * z * z + 3.0 * z * d + d * d))
    return d * s0 + (z + d) * sigmoid_change(x, s0, D)


# ----------------------------------------------------------------- the table
def _where_positive(z, xp, slope):
    return xp.where(z > 0, z, slope * z)


_ENTRIES = (
    Activation("relu", 0, relu, relu_grad, (0.0,), (0.0, 1.0), lambda z, xp: _where_positive(z, xp, 0.0),
               "max(z, 0)"),
    Activation("leaky_relu", 1, leaky_relu, leaky_relu_grad, (0.0,), (LEAKY_SLOPE, 1.0),
               lambda z, xp: _where_positive(z, xp, LEAKY_SLOPE), f"z for z > 0, else {LEAKY_SLOPE} z"),
    Activation("tanh", 2, tanh, tanh_grad, (), None, lambda z, xp: xp.tanh(z), "tanh(z)"),
    Activation("sigmoid", 3, sigmoid, sigmoid_grad, (), None, lambda z, xp: 0.5 + 0.5 * xp.tanh(0.5 * z),
               "1 / (1 + exp(-z))"),
    Activation("gelu", 4, gelu, gelu_grad, (), None,
               lambda z, xp: 0.5 * z * (1.0 + xp.tanh(GELU_C * (z + GELU_A * z * z * z))),
               "0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), GELU's tanh form"),
)
ACTIVATIONS = {entry.name: entry for entry in _ENTRIES}
assert [entry.code for entry in _ENTRIES] == list(range(len(_ENTRIES)))
DEFAULT = _ENTRIES[0].name
PIECEWISE_LINEAR = tuple(entry.name for entry in _ENTRIES if entry.slopes is not None)
SMOOTH = tuple(entry.name for entry in _ENTRIES if not entry.kinks)

# per code, for the kernels (frozen into the compiled code as constants)
_LEFT_SLOPE = np.array([entry.slopes[0] if entry.slopes else np.nan for entry in _ENTRIES])
_PIECEWISE = np.array([entry.slopes is not None for entry in _ENTRIES])


def code(name):
    """The integer code of activation ``name`` (a KeyError for an unknown name; validate first)."""
    return ACTIVATIONS[name].code


# ----------------------------------------------------------------- dispatch by code
@njit(cache=True)
def activate(z, code):
    """g(z) of the activation with this code."""
    if code == 0:
        return relu(z)
    if code == 1:
        return leaky_relu(z)
    if code == 2:
        return tanh(z)
    if code == 3:
        return sigmoid(z)
    if code == 4:
        return gelu(z)
    raise ValueError("unknown activation code")


@njit(cache=True)
def activate_grad(z, code):
    """g'(z) of the activation with this code (the right-hand slope at a kink)."""
    if code == 0:
        return relu_grad(z)
    if code == 1:
        return leaky_relu_grad(z)
    if code == 2:
        return tanh_grad(z)
    if code == 3:
        return sigmoid_grad(z)
    if code == 4:
        return gelu_grad(z)
    raise ValueError("unknown activation code")


@njit(cache=True)
def change(code, z, g0, d):
    """g(z + d) - g(z) of a smooth activation, exact up to rounding; g0 = g(z).

    Piecewise-linear activations have no entry here: the kernels use their slopes.
    """
    if code == 2:
        return tanh_change(z, g0, d)
    if code == 3:
        return sigmoid_change(z, g0, d)
    if code == 4:
        return gelu_change(z, g0, d)
    raise ValueError("no exact change for this activation code")


@njit(cache=True)
def piecewise(code):
    """True when the activation is piecewise linear with its kink at 0."""
    return _PIECEWISE[code]


@njit(cache=True)
def left_slope(code):
    """The slope below the kink of a piecewise-linear activation (0 for relu)."""
    return _LEFT_SLOPE[code]

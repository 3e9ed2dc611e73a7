"""The outputs and their losses: the one table of them (``OUTPUTS``) and their compiled math.

Everything else reads this module; nothing else names an output. Imports only
NumPy, Numba and the other registry (for the logistic function).

Each output is paired with its canonical loss, so the output layer's
dZ_L = dJ/dZ_L is (A_L - Y) / m for every one of them (``output_delta``):
sigmoid with binary cross-entropy, softmax with categorical cross-entropy,
linear (identity) with half the squared error. The compiled functions take
the output's integer code; a code with no branch raises.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from ._series import SERIES_LIMIT, expm1_series, log1p_exact, log1p_series
from .activations import sigmoid

Output = namedtuple("Output", ["name", "code", "targets", "min_units", "array_loss", "doc"])
Output.__doc__ = """One output layer with its loss.

name : str; code : int, its index in ``OUTPUTS``; targets : "binary" (values
in [0, 1], one row per unit), "classes" (one-hot columns, or integer labels
(m,)) or "values" (any real); min_units : the fewest output units it takes;
array_loss : ``array_loss(Z, Y, xp) -> sum of the example losses`` from the
logits Z (n_L, m), for any NumPy-like module xp; doc : one line for help texts.
"""
N_SUMS = 8  # what ``moment_loss`` reads of a direction v, per (hidden unit, example)


def _binary_cross_entropy(Z, Y, xp):
    return xp.sum(xp.maximum(Z, 0.0 * Z) - Y * Z + xp.log1p(xp.exp(-xp.abs(Z))))


def _categorical_cross_entropy(Z, Y, xp):
    rows = [Z[k] for k in range(Z.shape[0])]
    top = rows[0]
    for row in rows[1:]:
        top = xp.maximum(top, row)
    total = sum(xp.exp(row - top) for row in rows)
    return xp.sum(top + xp.log(total)) - xp.sum(Y * Z)


def _half_squared_error(Z, Y, xp):
    return 0.5 * xp.sum((Z - Y) ** 2)


_ENTRIES = (
    Output("sigmoid", 0, "binary", 1, _binary_cross_entropy, "sigmoid output, binary cross-entropy"),
    Output("softmax", 1, "classes", 2, _categorical_cross_entropy, "softmax output, categorical cross-entropy"),
    Output("linear", 2, "values", 1, _half_squared_error, "identity output, half the squared error"),
)
OUTPUTS = {entry.name: entry for entry in _ENTRIES}
assert [entry.code for entry in _ENTRIES] == list(range(len(_ENTRIES)))
DEFAULT = _ENTRIES[0].name
CLASSIFIERS = tuple(entry.name for entry in _ENTRIES if entry.targets != "values")


def code(name):
    """The integer code of output ``name`` (a KeyError for an unknown name; validate first)."""
    return OUTPUTS[name].code


def for_data(binary, units=None):
    """The output for a classification dataset: binary data with one unit -> sigmoid, else softmax.

    units : the number of output units asked for, or None.
    """
    single = next(entry for entry in _ENTRIES if entry.targets == "binary")
    classes = next(entry for entry in _ENTRIES if entry.targets == "classes")
    return single if binary and units in (None, 1) else classes


# ----------------------------------------------------------------- forward and loss
@njit(cache=True)
def example_loss(z, y, output):
    """Loss of one example from its logits.

    z, y : (n_L,) logits and target. Stable for any finite z:
    binary cross-entropy as softplus, softmax as log-sum-exp.
    """
    n = z.shape[0]
    total = 0.0
    if output == 0:
        for k in range(n):
            zk = z[k]
            total += max(zk, 0.0) - y[k] * zk + np.log1p(np.exp(-abs(zk)))
        return total
    if output == 1:
        # lse - z_k = (zmax - z_k) + log1p(sum over k != kmax of exp(z_k - zmax)):
        # exact to rounding of the (small) loss itself, however large the logits
        kmax = 0
        for k in range(1, n):
            if z[k] > z[kmax]:
                kmax = k
        zmax = z[kmax]
        s = 0.0
        for k in range(n):
            if k != kmax:
                s += np.exp(z[k] - zmax)
        tail = np.log1p(s)
        for k in range(n):
            total += y[k] * ((zmax - z[k]) + tail)
        return total
    if output == 2:
        for k in range(n):
            d = z[k] - y[k]
            total += 0.5 * d * d
        return total
    raise ValueError("unknown output code")


@njit(cache=True)
def output_activation(ZL, output, AL):
    """AL = the output activation of the logits ZL, both (n_L, m)."""
    n, m = ZL.shape
    if output == 0:
        for i in range(n):
            for e in range(m):
                AL[i, e] = sigmoid(ZL[i, e])
    elif output == 1:
        for e in range(m):
            zmax = ZL[0, e]
            for i in range(1, n):
                zmax = max(zmax, ZL[i, e])
            s = 0.0
            for i in range(n):
                AL[i, e] = np.exp(ZL[i, e] - zmax)
                s += AL[i, e]
            for i in range(n):
                AL[i, e] /= s
    elif output == 2:
        for i in range(n):
            for e in range(m):
                AL[i, e] = ZL[i, e]
    else:
        raise ValueError("unknown output code")


@njit(cache=True)
def output_delta(output, AL, Y, m, dZ):
    """dZ = dJ/dZ_L = (A_L - Y) / m, the same for every output with its canonical loss. All (n_L, m)."""
    if output < 0 or output > 2:
        raise ValueError("unknown output code")
    inv_m = 1.0 / m
    for i in range(AL.shape[0]):
        for e in range(AL.shape[1]):
            dZ[i, e] = (AL[i, e] - Y[i, e]) * inv_m


# ----------------------------------------------------------------- changes, for the check's kernels
@njit(cache=True)
def loss_change(output, dz, out_act, y, resid, n_out, n_ex, n_runs, acc, dot, series):
    """Per column, L(z0 + dz) - L(z0) of its example.

    dz : (n_out, n_ex * n_runs) change of the logits; out_act, y, resid : (n_out, n_ex)
    the unperturbed output activation, the target and A - Y. acc, dot : (n_cols,)
    out and scratch. series : all |dz| < SERIES_LIMIT, so the series are exact.
    """
    if output < 0 or output > 2:
        raise ValueError("unknown output code")
    n_cols = n_ex * n_runs
    for c in range(n_cols):
        acc[c] = 0.0
        dot[c] = 0.0
    for k in range(n_out):
        row = dz[k]
        for t in range(n_ex):
            base = t * n_runs
            d_t = row[base:base + n_runs]
            acc_t = acc[base:base + n_runs]
            lin_t = dot[base:base + n_runs]
            p = out_act[k, t]
            yk = y[k, t]
            r = resid[k, t]
            if output == 2:
                for run in range(n_runs):
                    d = d_t[run]
                    acc_t[run] += d * (r + 0.5 * d)
            elif output == 0:  # softplus(z + d) - softplus(z) = log1p(s expm1(d))
                if series:
                    for run in range(n_runs):
                        d = d_t[run]
                        acc_t[run] += log1p_series(p * expm1_series(d)) - yk * d
                else:
                    for run in range(n_runs):
                        d = d_t[run]
                        acc_t[run] += log1p_exact(p * np.expm1(d)) - yk * d
            else:  # softmax: log-sum-exp changes by log1p(sum_k p_k expm1(d_k))
                if series:
                    for run in range(n_runs):
                        d = d_t[run]
                        acc_t[run] += p * expm1_series(d)
                        lin_t[run] += yk * d
                else:
                    for run in range(n_runs):
                        d = d_t[run]
                        acc_t[run] += p * np.expm1(d)
                        lin_t[run] += yk * d
    if output == 1:
        for t in range(n_ex):
            weight = 0.0  # sum_k y_k: 1 for one-hot targets, as in example_loss
            for k in range(n_out):
                weight += y[k, t]
            base = t * n_runs
            acc_t = acc[base:base + n_runs]
            lin_t = dot[base:base + n_runs]
            for run in range(n_runs):
                acc_t[run] = weight * log1p_exact(acc_t[run]) - lin_t[run]


@njit(cache=True)
def has_moments(output):
    """True when ``moment_loss`` applies to the output (its loss change is a short series in v)."""
    if output == 0:
        return False
    if output == 1 or output == 2:
        return True
    raise ValueError("unknown output code")


@njit(cache=True)
def moment_sums(output, v, out_act, Y, resid, t, out):
    """What ``moment_loss`` needs of one direction v (n_L,) at example t, into out (N_SUMS,).

    softmax: out[n - 1] = sum_k p_k v_k^n / n! for n = 1..6, out[6] = y.v, out[7] = max_k |v_k|;
    linear: out[0] = (A_L - Y).v, out[1] = v.v; sigmoid: nothing.
    """
    if output == 2:
        rv = 0.0
        vv = 0.0
        for k in range(v.shape[0]):
            rv += resid[k, t] * v[k]
            vv += v[k] * v[k]
        out[0], out[1] = rv, vv
    elif output == 1:
        for n in range(N_SUMS):
            out[n] = 0.0
        for k in range(v.shape[0]):
            vk = v[k]
            term = out_act[k, t]
            for n in range(6):
                term *= vk / (n + 1)  # p_k v_k^(n+1) / (n+1)!
                out[n] += term
            out[6] += Y[k, t] * vk
            out[7] = max(out[7], abs(vk))
        for n in range(6):
            if not np.isfinite(out[n]):  # v^n overflowed: the per-output path (see moment_loss)
                out[7] = np.inf
    elif output != 0:
        raise ValueError("unknown output code")


@njit(cache=True)
def moment_loss(output, P, Y, t, change, loss, n_runs):
    """loss[run] = L(Z_L + change[run] v) - L(Z_L) of example t from v's sums P (N_SUMS,); False if not applicable.

    The same polynomials ``loss_change`` evaluates, summed over the outputs
    first: for softmax sum_k p_k expm1(s v_k) = sum_n s^n sum_k p_k v_k^n / n!
    (the series of ``expm1_series``, applicable while every |s v_k| < SERIES_LIMIT),
    for linear outputs sum_k s v_k (r_k + s v_k / 2) = s r.v + s^2 v.v / 2. Y : (n_L, m).
    """
    if output == 2:
        rv, vv = P[0], P[1]
        if not (np.isfinite(rv) and np.isfinite(vv)):
            return False
        for run in range(n_runs):
            d = change[run]
            loss[run] = d * (rv + 0.5 * d * vv)
        return True
    if output != 1:
        raise ValueError("no moments for this output code")
    largest = 0.0
    for run in range(n_runs):
        largest = max(largest, abs(change[run]))
    if not largest * P[7] < SERIES_LIMIT:  # (NaN for 0 * inf, when the sums overflowed)
        return False
    c1, c2, c3, c4, c5, c6, yv = P[0], P[1], P[2], P[3], P[4], P[5], P[6]
    weight = 0.0  # sum_k y_k: 1 for one-hot targets, as in loss_change
    for k in range(Y.shape[0]):
        weight += Y[k, t]
    over = 0  # sums too large for log1p's series (counted, so the loop vectorizes)
    for run in range(n_runs):
        d = change[run]
        acc = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * (c5 + d * c6)))))
        over += abs(acc) >= SERIES_LIMIT
        loss[run] = weight * log1p_series(acc) - d * yv
    if over > 0:
        for run in range(n_runs):
            d = change[run]
            acc = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * (c5 + d * c6)))))
            loss[run] = weight * log1p_exact(acc) - d * yv
    return True

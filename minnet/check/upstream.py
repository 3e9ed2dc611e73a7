"""Upstream: whether a wrong dW or db is the fault of its own line or of the dZ it is computed from.
Owns the rule that moves the blame from a layer's dW and db lines to its dZ (or what comes before it),
read off the learner's own dZ (or dA) entries. Imports ``judge`` only: never the report, the api or an
evaluator.

The rule
--------
Layer l is examined only when the check proved dW{l} or db{l} wrong (verdict "suspicious" or "bug";
"inconclusive" proves nothing). Its dZ{l} is the learner's own entry "dZ{l}" of shape (n_l, m); where
there is none but "dA{l-1}" is there (the course's ``L_model_backward`` returns dA, dW and db only),
dZ{l} is recovered from dA{l-1} = W{l}.T @ dZ{l} when that has one solution: W{l} has at least as many
columns as rows, a condition number below ``RECOVER_COND``, and dA{l-1} is W{l}.T times something (it is
not, for instance, after a dropout mask). A_prev is X for layer 1, else the entry "A{l-1}" where the
dict holds one; without it only db is tested.

* db{l} follows from dZ{l} when db{l} = sum(dZ{l}, axis=1) / m, to the rounding of that sum
  (``FOLLOWS_RTOL`` of the norm of the sum of |dZ| / m, coarser for float32 entries or a recovered dZ).
* dW{l} follows from dZ{l} when dW{l} = dZ{l} @ A_prev.T / m + k * W{l} for some k (the course's L2
  term, k = lambd / m; k = 0 without L2), to the rounding of that product.

dZ{l} is blamed when a line that follows from it is wrong: db{l} follows and is wrong (db's line is
then right, so the sum of dZ{l} is not), or dW{l} follows and is wrong and the numerical dW{l} is not
dZ{l} @ A_prev.T / m + k' * W{l} for any k' (tested only where ``numerical`` gives dW{l}'s values:
otherwise a wrong L2 coefficient in dW's own line would look the same, and nothing is said). A line
that does not follow is its own mistake (db with 4/m, an L2 term in db, a dW without 1/m) and blames
nothing upstream; a line that follows and is right is never blamed.

A mistake in dZ{l} flows down through dA{l-1} into every lower layer, so where several layers are
blamed the finding names the highest-numbered one: where the mistake first shows in backprop order.
Where it can, the sentence narrows the place down: when layer l+1 is right, its db follows from its
returned dZ{l+1}, and the returned dA{l} is W{l+1}.T @ dZ{l+1}, the mistake is in making dZ{l} from
dA{l}. Entries of the wrong shape or with NaN are ignored, with a note; they are never an error here.
"""
import re

import numpy as np

from . import judge

FOLLOWS_RTOL = 1e-10  # "follows from": equal to this fraction of the norms of the terms summed (float64 rounding)
RECOVER_COND = 1e6  # dZ{l} is recovered from dA{l-1} only through a W{l} conditioned better than this
_WRONG = (judge.SUSPICIOUS, judge.BUG)


def locate(grads, parameters, *, X=None, verdicts, numerical=None, thresholds=judge.THRESHOLDS):
    """Where the mistake that makes a layer's dW and db wrong comes from, when it is in or above dZ.

    Parameters
    ----------
    grads : dict
        The learner's gradients as returned: "dW1", "db1", ... (or "W1", "b1", ...) and any
        "dZ{l}" (n_l, m), "dA{l}" (n_l, m) and "A{l}" (n_l, m) entries; other keys are ignored.
    parameters : dict of str -> ndarray
        "W1" (n_1, n_0), "b1" (n_1, 1), ...
    X : ndarray, shape (n_0, m), optional
        The data, A_prev of layer 1.
    verdicts : dict of str -> str
        {block name: verdict} from the check.
    numerical : dict of str -> (ndarray, ndarray), optional
        {block name: (refereed numerical values, their error bounds)}, each of the block's size: lets a
        wrong dW that follows from dZ be told apart from a wrong L2 coefficient.
    thresholds : (float, float)
        The check's bands (for that test).

    Returns
    -------
    finding : dict or None
        {"layer": l, "entry": "dZ{l}", "text": one sentence}, or None when no layer's dZ is to blame
        or the entries needed are absent.
    notes : list of str
        One line per dZ, dA or A entry (or X) ignored for its shape, for not being numbers or for
        holding NaN or inf: every such entry is looked at, whether or not a wrong layer needed it.
    """
    notes = []
    layers = sorted((int(match.group(1)) for match in map(re.compile(r"W(\d+)$").match, parameters)
                     if match and _array(parameters[match.group(0)])[0] is not None
                     and np.ndim(parameters[match.group(0)]) == 2), reverse=True)
    X = _data(X, parameters, layers, notes)
    entries = _entries(grads, parameters, layers, None if X is None else X.shape[1], notes)
    if X is not None:
        entries["A0"] = (X, 0.0)
    found = []
    for l in layers:
        if not any(verdicts.get(f"{p}{l}") in _WRONG for p in "Wb"):
            continue
        source = _dZ_of(entries, parameters, l)
        if source is None:
            continue
        lines = _evidence(grads, parameters, l, source, entries=entries, verdicts=verdicts, numerical=numerical,
                          thresholds=thresholds)
        if lines:
            found.append((l, source, lines))
    if not found:
        return None, notes
    l, source, lines = found[0]
    narrowed = l + 1 in layers and _narrowed(grads, parameters, l, entries, verdicts)
    return {"layer": l, "entry": f"dZ{l}", "text": _text(l, lines, source[1], narrowed, l == layers[0])}, notes


# ------------------------------------------------------------ the entries
def _array(value):
    """value as a float64 array and its type's unit roundoff, or (None, None) when it is not numbers."""
    try:
        array = np.asarray(value)
    except Exception:  # an object NumPy cannot read: not an array of numbers
        return None, None
    if array.dtype.kind not in "fiub":
        return None, None
    eps = np.finfo(array.dtype).eps if array.dtype.kind == "f" else 0.0
    return array.astype(np.float64), float(eps)


def _entry(grads, key, shape, notes):
    """grads[key] as (float64 array, eps) when it has ``shape`` (None in it: any) and finite values, else None."""
    if key not in grads:
        return None
    array, eps = _array(grads[key])
    if array is None or array.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, array.shape)):
        found = "is not an array of numbers" if array is None else f"has shape {array.shape}"
        wanted = ", ".join("m" if s is None else str(s) for s in shape)
        notes.append(f"{key} {found}, not ({wanted}): ignored for the upstream test.")
        return None
    if not np.all(np.isfinite(array)):
        notes.append(f"{key} holds NaN or inf: ignored for the upstream test.")
        return None
    return array, eps


def _entries(grads, parameters, layers, m, notes):
    """{key: (array, eps)} of the dZ{l}, dA{l} and A{l} entries of grads that have their layer's shape."""
    sizes = {l: np.shape(parameters[f"W{l}"])[0] for l in layers}
    if 1 in layers:
        sizes[0] = np.shape(parameters["W1"])[1]
    entries = {}
    for l in sorted(sizes):
        for key in (f"dZ{l}", f"dA{l}", f"A{l}"):
            if key == "dZ0":
                continue
            found = _entry(grads, key, (sizes[l], m), notes)
            if found is not None:
                entries[key] = found
    return entries


def _data(X, parameters, layers, notes):
    """X as a float64 array when it fits W1, else None (with a note when it was given)."""
    if X is None or 1 not in layers:
        return None
    found = _entry({"X": X}, "X", (np.shape(parameters["W1"])[1], None), notes)
    return None if found is None else found[0]


def _gradient(grads, name):
    """The learner's gradient of block ``name`` ("d" + name, or name itself), as (array, eps) or (None, 0)."""
    key = "d" + name if "d" + name in grads else name
    array, eps = _array(grads.get(key)) if key in grads else (None, None)
    return array, eps or 0.0


def _dZ_of(entries, parameters, l):
    """(dZ{l}, "" or the dA entry it was recovered from, rtol of "follows from" with it), or None."""
    W = np.asarray(parameters[f"W{l}"], dtype=np.float64)
    n, n_prev = W.shape
    if f"dZ{l}" in entries:
        dZ, eps = entries[f"dZ{l}"]
        return dZ, "", max(FOLLOWS_RTOL, 64 * eps)
    if f"dA{l - 1}" not in entries or n_prev < n:
        return None
    dA, eps = entries[f"dA{l - 1}"]
    singular = np.linalg.svd(W, compute_uv=False)
    if singular.size == 0 or singular[-1] <= singular[0] / RECOVER_COND:
        return None
    condition = singular[0] / singular[-1]
    dZ = np.linalg.lstsq(W.T, dA, rcond=None)[0]
    rtol = max(FOLLOWS_RTOL, 64 * eps, 1e3 * condition * judge.UNIT_ROUNDOFF)
    if judge._norm(W.T @ dZ - dA) > rtol * (judge._norm(dA) + singular[0] * judge._norm(dZ)):
        return None  # dA is not W.T times anything: another line, or a mask applied to it
    return dZ, f"dA{l - 1}", rtol


# ------------------------------------------------------------ follows from dZ
def _db_follows(grads, l, dZ, rtol):
    """True or False: db{l} = sum(dZ{l}, axis=1) / m; None when db{l} is absent or of another size."""
    db, eps = _gradient(grads, f"b{l}")
    if db is None or db.size != dZ.shape[0]:
        return None
    m = dZ.shape[1]
    predicted, scale = dZ.sum(axis=1) / m, np.abs(dZ).sum(axis=1) / m
    rtol = max(rtol, 64 * eps)
    return judge._norm(db.ravel() - predicted) <= rtol * (judge._norm(scale) + judge._norm(db))


def _dW_follows(grads, W, dZ, A_prev, rtol, name):
    """(True or False, dZ @ A_prev.T / m): dW = that + k * W for some k; (None, None) where it cannot be told."""
    dW, eps = _gradient(grads, name)
    if dW is None or A_prev is None or dW.shape != W.shape:
        return None, None
    m = dZ.shape[1]
    product = dZ @ A_prev.T / m
    scale = np.abs(dZ) @ np.abs(A_prev).T / m
    rest = (dW - product).ravel()
    w = W.ravel()
    squares = float(w @ w)
    k = float(rest @ w) / squares if squares > 0 else 0.0
    rtol = max(rtol, 64 * eps)
    follows = judge._norm(rest - k * w) <= rtol * (judge._norm(scale) + judge._norm(dW) + abs(k) * judge._norm(w))
    return bool(follows), product


def _reproduces(numerical, name, product, W, thresholds):
    """True when the numerical gradient of ``name`` is ``product`` + k' * W for some k', within its errors."""
    values, errors = (np.asarray(x, dtype=np.float64).ravel() for x in numerical[name])
    known = np.isfinite(values) & np.isfinite(errors)
    if values.size != W.size or not known.any():
        return True  # nothing to tell them apart: never blame dZ on it
    p, w, a = product.ravel()[known], W.ravel()[known], values[known]
    squares = float(w @ w)
    k = float((a - p) @ w) / squares if squares > 0 else 0.0
    found = judge.measure(a, p + k * w, errors[known], thresholds=thresholds)
    return found.refereed_difference < thresholds[0]


def _evidence(grads, parameters, l, source, *, entries, verdicts, numerical, thresholds):
    """The lines of layer l that follow from dZ{l} and are wrong, when they prove dZ{l} wrong; else []."""
    dZ, _, rtol = source
    W = np.asarray(parameters[f"W{l}"], dtype=np.float64)
    A_prev, eps = entries.get(f"A{l - 1}", (None, 0.0))
    if A_prev is not None and A_prev.shape[1] != dZ.shape[1]:
        A_prev = None
    b_follows = _db_follows(grads, l, dZ, rtol)
    W_follows, product = _dW_follows(grads, W, dZ, A_prev, max(rtol, 64 * eps), f"W{l}")
    b_proves = bool(b_follows) and verdicts.get(f"b{l}") in _WRONG
    W_proves = bool(W_follows) and verdicts.get(f"W{l}") in _WRONG and numerical is not None \
        and f"W{l}" in numerical and not _reproduces(numerical, f"W{l}", product, W, thresholds)
    if not (b_proves or W_proves):
        return []
    return [f"dW{l}"] * W_proves + [f"db{l}"] * b_proves


def _narrowed(grads, parameters, l, entries, verdicts):
    """True when dA{l} is right: layer l+1 is right, its db follows from its own dZ{l+1}, dA{l} = W{l+1}.T @ dZ{l+1}."""
    if any(verdicts.get(f"{p}{l + 1}") != judge.CORRECT for p in "Wb"):
        return False
    if f"dZ{l + 1}" not in entries or f"dA{l}" not in entries:
        return False
    (dZ, dZ_eps), (dA, dA_eps) = entries[f"dZ{l + 1}"], entries[f"dA{l}"]
    W = np.asarray(parameters[f"W{l + 1}"], dtype=np.float64)
    rtol = max(FOLLOWS_RTOL, 64 * dZ_eps, 64 * dA_eps)
    if dA.shape[1] != dZ.shape[1] or not _db_follows(grads, l + 1, dZ, rtol):
        return False
    scale = np.abs(W.T) @ np.abs(dZ)
    return judge._norm(W.T @ dZ - dA) <= rtol * (judge._norm(scale) + judge._norm(dA))


# ------------------------------------------------------------ words
def _text(l, lines, recovered_from, narrowed, last):
    """One sentence: which lines follow from dZ{l} yet are wrong, and where the mistake must be."""
    which = " and ".join(lines)
    verb = "follows" if len(lines) == 1 else "follow"
    disagree = "disagrees" if len(lines) == 1 else "disagree"
    dZ = f"dZ{l}" if not recovered_from else f"dZ{l} (as your {recovered_from} = W{l}.T @ dZ{l} gives it)"
    head = f"{which} {verb} correctly from your {dZ} yet {disagree} with the numerical gradient, so the mistake"
    if narrowed:
        return (f"{head} is in making dZ{l} from dA{l}, which is right (it is W{l + 1}.T @ dZ{l + 1} and layer "
                f"{l + 1} is correct): the activation's derivative at layer {l}, or a dropout mask")
    if last:
        return (f"{head} is in dZ{l} or before it: the output layer's dZ{l} (AL - Y for cross-entropy with its "
                f"matching output) or the cost's derivative dA{l}")
    return f"{head} is in dZ{l} or before it: the activation's derivative, dA{l}, or layer {l + 1}'s backward"

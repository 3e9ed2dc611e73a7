"""Diagnose: what a wrong block's disagreement with the numerical gradient looks like, as data and in words.
Owns the list of patterns (``PATTERNS``) and the rule that accepts each. Imports ``judge`` only: never the
report, the api, the referee or an evaluator (they read this module, it reads none of them).

A block's diagnosis is None, or a dict with "pattern" (one of ``PATTERNS``), "factor" (a float) and
"where" (an int, or [row, column], 0-based) where they apply, and "text": one sentence for a learner.

What counts as evidence
-----------------------
Only entries with a finite numerical value and a finite error bound are known; NaN values (unchecked)
and infinite errors (unresolved) are never evidence for or against a pattern. A block whose known
entries do not disagree beyond their errors (refereed difference below ``thresholds[0]``) gets None:
there is nothing proven to explain. A backprop value that is NaN or inf gets None too.

The acceptance rule, for every pattern
--------------------------------------
A pattern predicts what the code should hold if it were the whole mistake: 2 * numerical, numerical
transposed, numerical + k * W, ... with the numerical errors carried along (scaled where the prediction
scales them). It is claimed only when the check itself would no longer see a disagreement between
that prediction and the code: the refereed difference (``judge.measure``: the norm of each entry's
disagreement beyond its own error, over the norms of both) is below ``thresholds[0]``, and the
comparison resolves better than ``thresholds[1]`` (else "within error" would mean little). So a
pattern accounts for the whole disagreement, within the check's own error, or it is not claimed.

On top of that rule, each pattern needs evidence that a look-alike could not give:

* "zero": the code is zero, ||code|| <= thresholds[0] * ||numerical||.
* "sign" / "factor" (code = c * numerical): c is fitted (weighted least squares) and every simple
  factor within 0.1 % of it (2, 1/2, 4, 1/4, m, 1/m, -1 and their negatives; m only when m is given)
  is tried exactly first: a simple factor needs one informative entry (numerical resolved and not
  negligible), the general ratio needs two. -1 is reported as "sign", with no "factor".
* "transposed": code = numerical transposed (the block's 2-D view, both sides >= 2; for a block of
  another shape, code whose row-major entries are those of numerical.T). A square block may keep an
  untransposed L2 term: code = numerical.T + k * (W - W.T), k fitted, as in
  ``dW = A_prev @ dZ.T / m + lambd / m * W``.
* "l2": code - numerical = k * W, k fitted, "factor" = k (negative: an L2 term missing or too
  small; positive: one the cost does not have). Needs W and two known entries where W is not 0.
* "data_factor": code = c * (numerical - k * W) + k * W: the data term off by a constant factor c, the
  L2 term right (a forgotten 1/m or 1/keep_prob in a dW with L2). c and the L2 part are fitted;
  needs W, three informative entries, and numerical and W not nearly proportional. "factor" = c.
  Tried only when no pattern above fits.
* "summed": every entry of the code equals the sum of all numerical entries (a sum over every axis,
  ``np.sum(dZ)`` without ``axis=1``). Needs two entries and every numerical entry known.
* "entry", "row", "column": the disagreement lives in one entry, one row or one column, the rest of
  the block agrees with the numerical gradient (the acceptance rule on the rest alone) and the rest
  holds an informative entry (a global mistake would have shown there). The most specific one that
  fits is claimed: the worst entry alone, else the worst row, else the worst column. "row" needs
  two rows, "column" two columns. Tried only when no global pattern fits.

Ambiguity: when more than one of the global patterns ("sign"/"factor", "transposed", "l2",
"summed") fits, as for an antisymmetric block (code = -numerical = numerical.T), none is claimed.
"zero" is a fact about the code alone and is claimed before the others.
"""
from collections import namedtuple

import numpy as np

from . import judge

PATTERNS = ("zero", "sign", "factor", "transposed", "l2", "data_factor", "summed", "entry", "row", "column")
NEAR = 1e-3  # a fitted ratio is compared with the simple factors within this relative distance
COLLINEAR = 0.999  # |cosine| of numerical and W above which "data_factor" cannot tell its two parts apart

_Data = namedtuple("_Data", ["g", "a", "e", "W", "known", "weights", "rows", "cols", "m", "thresholds"])


def explain(shape, *, code, numerical, error, name=None, W=None, m=None, thresholds=judge.THRESHOLDS):
    """The simple pattern that accounts for a block's whole disagreement, or None.

    Parameters
    ----------
    shape : tuple of int
        The block's shape (its entries are read in C order).
    code, numerical, error : array_like, shape (size,)
        Backprop's values, the refereed numerical gradient and its error bound per entry
        (NaN or inf where an entry is unknown: it is no evidence either way).
    name : str, optional
        The block's name ("W2"); the sentence calls its gradient "d" + name ("dW2").
    W : array_like, shape (size,), optional
        The block's parameter values (for "l2", "data_factor" and the L2 term of "transposed").
    m : int, optional
        The number of examples: names the factors m and 1/m (else the general ratio is given).
    thresholds : (float, float)
        The check's bands; see the module docstring for how each pattern uses them.

    Returns
    -------
    dict or None
        {"pattern", "factor" (where it applies), "where" (where it applies), "text"}.
    """
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape)) if shape else 1
    g, a, e = (np.asarray(x, dtype=np.float64).ravel() for x in (code, numerical, error))
    if not g.size == a.size == e.size == size:
        raise ValueError(f"code, numerical and error must have {size} entries, not {g.size}, {a.size}, {e.size}")
    if W is not None:
        W = np.asarray(W, dtype=np.float64).ravel()
        if W.size != size or not np.all(np.isfinite(W)):
            W = None
    known = np.isfinite(a) & np.isfinite(e) & (np.nan_to_num(e, nan=-1.0) >= 0)
    if not known.any() or not np.all(np.isfinite(g[known])):
        return None
    base = judge.measure(a[known], g[known], e[known], thresholds=thresholds)
    if base.refereed_difference < thresholds[0]:
        return None  # no disagreement proven: nothing to explain
    cols = shape[-1] if len(shape) >= 2 else 1
    floor = thresholds[0] * (judge._norm(a[known]) + judge._norm(g[known])) / np.sqrt(known.sum())
    spread = np.where(known, e, 0.0) + floor + np.finfo(float).tiny
    # 1 / spread^2, scaled to at most 1 (the fits use only their ratios): near the underflow limit spread^2 is 0
    weights = np.where(known, (spread[known].min() / spread) ** 2, 0.0)
    data = _Data(g, np.where(known, a, 0.0), np.where(known, e, 0.0), W, known, weights, size // cols, cols,
                 None if m is None else float(m), tuple(thresholds))
    found = _diagnose(data, len(shape) == 2)
    if found is None:
        return None
    found["text"] = _text(found, "d" + name if name else "this gradient", name or "W", shape, data.m)
    return found


def _diagnose(d, two_d):
    """The pattern dict without its text, or None: zero, then the global patterns, then the local ones."""
    if judge._norm(d.g[d.known]) <= d.thresholds[0] * judge._norm(d.a[d.known]):
        return {"pattern": "zero"}
    found = [f for f in (_factor(d), _transposed(d, two_d), _l2(d), _summed(d)) if f is not None]
    if len(found) > 1:
        return None  # two different explanations fit: claiming either could be wrong
    if found:
        return found[0]
    return _data_factor(d) or _local(d)


# ------------------------------------------------------------ the acceptance rule
def _accepts(d, predicted, error, mask=None):
    """True when the check would see no disagreement between ``predicted`` (+- error) and the code on mask."""
    mask = d.known if mask is None else mask
    if not mask.any():
        return False
    found = judge.measure(predicted[mask], d.g[mask], error[mask], thresholds=d.thresholds)
    return found.refereed_difference < d.thresholds[0] and found.resolution < d.thresholds[1]


def _informative(d, mask):
    """How many entries on mask have a numerical value resolved from 0 and not negligible in the block."""
    big = np.abs(d.a) > 2.0 * d.e + d.thresholds[0] * np.max(np.abs(d.a[d.known]), initial=0.0)
    return int(np.count_nonzero(big & mask))


def _simple(m):
    """[(label, value)] of the factors named in words."""
    named = [("2", 2.0), ("1/2", 0.5), ("4", 4.0), ("1/4", 0.25)]
    if m is not None and m > 0:
        named += [("m", m), ("1/m", 1.0 / m)]
    return named + [("-1", -1.0)] + [("-" + label, -value) for label, value in named]


def _ratio(d, x, y, mask):
    """The weighted least-squares c of y ~ c * x on mask (NaN when x is 0 there)."""
    w = d.weights * mask
    denominator = float(np.sum(w * x * x))
    return float(np.sum(w * x * y)) / denominator if denominator > 0 else np.nan


# ------------------------------------------------------------ the global patterns
def _factor(d):
    """{"pattern": "sign"} or {"pattern": "factor", "factor": c}: code = c * numerical."""
    n_informative = _informative(d, d.known)
    c = _ratio(d, d.a, d.g, d.known)
    if n_informative < 1 or not np.isfinite(c) or c == 0.0:
        return None
    near = sorted((abs(value - c), value) for _, value in _simple(d.m) if abs(value - c) <= NEAR * abs(value))
    for _, value in near:
        if _accepts(d, value * d.a, abs(value) * d.e):
            return {"pattern": "sign"} if value == -1.0 else {"pattern": "factor", "factor": float(value)}
    if n_informative >= 2 and _accepts(d, c * d.a, abs(c) * d.e):
        return {"pattern": "factor", "factor": c}
    return None


def _transposed(d, two_d):
    """{"pattern": "transposed"}: code = numerical.T (square blocks: + k * (W - W.T) for an L2 term kept)."""
    if not two_d or d.rows < 2 or d.cols < 2:
        return None
    order = np.arange(d.rows * d.cols).reshape(d.rows, d.cols).T.ravel()
    mask = d.known & d.known[order]
    if _informative(d, mask) < 1:
        return None
    predicted, error = d.a[order], d.e[order]
    if _accepts(d, predicted, error, mask):
        return {"pattern": "transposed"}
    if d.W is None or d.rows != d.cols:
        return None
    skew = d.W - d.W[order]
    k = _ratio(d, skew, d.g - predicted, mask)
    if np.isfinite(k) and np.count_nonzero(skew[mask]) >= 2 and _accepts(d, predicted + k * skew, error, mask):
        return {"pattern": "transposed"}
    return None


def _l2(d):
    """{"pattern": "l2", "factor": k}: code - numerical = k * W."""
    if d.W is None or np.count_nonzero(d.W[d.known]) < 2:
        return None
    k = _ratio(d, d.W, d.g - d.a, d.known)
    if not np.isfinite(k) or k == 0.0 or not _accepts(d, d.a + k * d.W, d.e):
        return None
    return {"pattern": "l2", "factor": k}


def _summed(d):
    """{"pattern": "summed"}: every entry of the code is the sum of all numerical entries."""
    if d.g.size < 2 or not d.known.all():
        return None
    total = np.full(d.g.size, np.sum(d.a))
    if total[0] == 0.0 or not _accepts(d, total, np.full(d.g.size, np.sum(d.e))):
        return None
    return {"pattern": "summed"}


def _data_factor(d):
    """{"pattern": "data_factor", "factor": c}: code = c * numerical + beta * W, with c != 1 and beta != 0."""
    if d.W is None or _informative(d, d.known | (d.W != 0)) < 3:
        return None
    w = d.weights
    gram = np.array([[np.sum(w * d.a * d.a), np.sum(w * d.a * d.W)], [np.sum(w * d.a * d.W), np.sum(w * d.W * d.W)]])
    if gram[0, 0] <= 0 or gram[1, 1] <= 0 or abs(gram[0, 1]) >= COLLINEAR * np.sqrt(gram[0, 0] * gram[1, 1]):
        return None
    c, beta = np.linalg.solve(gram, [np.sum(w * d.a * d.g), np.sum(w * d.W * d.g)])
    if not (np.isfinite(c) and np.isfinite(beta)) or beta == 0.0 or c in (0.0, 1.0):
        return None
    for _, value in sorted((abs(v - c), v) for _, v in _simple(d.m) if abs(v - c) <= NEAR * abs(v)):
        fixed = _ratio(d, d.W, d.g - value * d.a, d.known)
        if np.isfinite(fixed) and _accepts(d, value * d.a + fixed * d.W, abs(value) * d.e):
            return {"pattern": "data_factor", "factor": float(value)}
    if _accepts(d, c * d.a + beta * d.W, abs(c) * d.e):
        return {"pattern": "data_factor", "factor": float(c)}
    return None


# ------------------------------------------------------------ the local patterns
def _local(d):
    """{"pattern": "entry" | "row" | "column", "where": ...}: the disagreement in one place, the rest right."""
    excess = np.where(d.known, np.maximum(np.abs(d.g - d.a) - d.e, 0.0), 0.0)
    index = np.arange(d.g.size)
    row_of, column_of = index // d.cols, index % d.cols
    k = int(np.argmax(excess))
    if _rest_agrees(d, index != k):
        return {"pattern": "entry", "where": [int(row_of[k]), int(column_of[k])]}
    squares = excess.reshape(d.rows, d.cols) ** 2
    fits = []
    if d.rows >= 2:
        r = int(np.argmax(squares.sum(axis=1)))
        if _rest_agrees(d, row_of != r):
            fits.append({"pattern": "row", "where": r})
    if d.cols >= 2:
        c = int(np.argmax(squares.sum(axis=0)))
        if _rest_agrees(d, column_of != c):
            fits.append({"pattern": "column", "where": c})
    return fits[0] if len(fits) == 1 else None


def _rest_agrees(d, rest):
    """The entries on ``rest`` agree with the numerical gradient, and one of them could have shown a mistake."""
    rest = rest & d.known
    return _informative(d, rest) >= 1 and _accepts(d, d.a, d.e, rest)


# ------------------------------------------------------------ words
def _factor_words(value, m):
    """How a factor is said: "2", "1/2", "m = 16", ... or the general ratio to 4 significant digits."""
    for label, simple in _simple(m):
        if value == simple:
            if m is not None and label.lstrip("-") in ("m", "1/m"):
                return f"{label} = {label.replace('m', f'{m:g}')}"
            return label
    return f"{value:.4g}"


def _text(found, grad, name, shape, m):
    """One plain sentence for a learner, naming the gradient ``grad`` (e.g. "dW2") and its parameter."""
    pattern, factor, where = found["pattern"], found.get("factor"), found.get("where")
    if pattern == "zero":
        return (f"your {grad} is all zeros where the numerical gradient is not: is it computed at all, or "
                f"does a zeros_like or a mask that drops everything stay in place?")
    if pattern == "sign":
        return (f"your {grad} has the opposite sign of the numerical gradient: a sign is flipped (Y - A "
                f"instead of A - Y, or a minus too many?)")
    if pattern == "factor":
        return f"your {grad} is {_factor_words(factor, m)} times the numerical gradient: {_why(factor, m)}"
    if pattern == "transposed":
        shaped = "" if len(set(shape)) == 1 else f" (it had the shape of {name}.T)"
        return (f"your {grad} is the numerical gradient transposed{shaped}: the product is in the wrong "
                f"order (dZ @ A_prev.T / m has the shape of {name})")
    if pattern == "l2":
        per_m = "" if m is None else f" (= {abs(factor) * m:.4g}/m * {name})"
        if factor < 0:
            return (f"your {grad} lacks {-factor:.4g} * {name}{per_m} that the numerical gradient has: the "
                    f"L2 term lambd/m * {name} is missing or too small")
        return (f"your {grad} has an extra {factor:.4g} * {name}{per_m} that the numerical gradient does not "
                f"have: an L2 term the cost does not have (too large, counted twice, or on a bias?)")
    if pattern == "data_factor":
        return (f"your {grad} without its L2 term is {_factor_words(factor, m)} times what it should be, while "
                f"its L2 term is right: {_why(factor, m)}")
    if pattern == "summed":
        return (f"every entry of your {grad} is the sum of all the numerical gradient's entries: a sum over "
                f"every axis (np.sum without axis=1, keepdims=True?)")
    if pattern == "entry":
        at = f"[{where[0]}, {where[1]}]" if len(shape) >= 2 else f"[{where[0]}]"
        return (f"only {grad}{at} is wrong, every other entry of your {grad} agrees with the numerical "
                f"gradient: an index or an in-place edit?")
    part = "row" if pattern == "row" else "column"
    return (f"only {part} {where} of your {grad} is wrong, the rest agrees with the numerical gradient: "
            f"an index, a slice or a broadcast along the wrong axis?")


def _why(factor, m):
    """The likely cause of a constant factor."""
    if factor == -1.0:
        return "its sign is flipped"
    if factor < 0:
        return f"its sign is flipped and {_why(-factor, m)}"
    if m is not None and factor == m:
        return "the 1/m is missing"
    if m is not None and factor == 1.0 / m:
        return "it is divided by m once too often"
    if factor in (2.0, 4.0):
        return f"a factor of {factor:g} too many (is a 1/2 or a 2 misplaced?)"
    if factor in (0.5, 0.25):
        return f"a factor of {1 / factor:g} too few (is a 1/2 or a 2 misplaced?)"
    if m is None:
        return "a constant factor (a 1/m, a keep_prob, or a scale misplaced?)"
    return "a constant factor that is none of 2, 1/2, 4, m or 1/m (a keep_prob, or a scale misplaced?)"

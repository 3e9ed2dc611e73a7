"""Numerical gradient checking: is backprop's dtheta the gradient of J(theta)?

``gradient_check`` checks a minnet ``Network`` with the parallel kernels of
``_check``; ``check_gradients`` checks a learner's own ``cost_fn`` and
``grads_fn``. Both return a ``GradCheckReport`` that says how far apart the
two gradients are and which block (W1, b1, ...) to look at first.
"""
import concurrent.futures
import html
import json
import sys
import time

import numba
import numpy as np

from . import _check
from . import _validation as v
from ._layout import dictionary_to_vector, gradients_to_vector

CORRECT, SUSPICIOUS, BUG = "correct", "suspicious", "bug"
THRESHOLDS = (1e-7, 1e-3)
METHODS = ("incremental", "full")
MODES = ("full", "directional")
N_WORST = 5
ROUNDOFF = 10 * np.finfo(np.float64).eps  # relative error of one evaluation of J, with margin


def _norm(x):
    # Not np.linalg.norm: its BLAS threads compete with Numba's for the cores right after the kernel.
    return float(np.sqrt(np.sum(np.square(x))))


def difference(approx, grad):
    """The notes' ||approx - grad|| / (||approx|| + ||grad||); 0 when both are 0."""
    approx, grad = np.asarray(approx, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    denominator = _norm(approx) + _norm(grad)
    return 0.0 if denominator == 0.0 else _norm(approx - grad) / denominator


class BlockReport:
    """One block of theta (W1, b1, ...) in a gradient check.

    Attributes
    ----------
    name, shape, offset : the block in theta.
    n_checked : entries compared entry by entry (0 when only a direction was checked).
    difference : this block's own ||approx - grad|| / (||approx|| + ||grad||).
    verdict : "correct", "suspicious" or "bug".
    worst : list of dicts (row, column, grad, approx, error), largest error first.
    kinks : entries whose perturbation crossed a relu kink (left out of the verdict by default).
    directional : None, or dict (numerical, backprop) of the directional check.
    """

    def __init__(self, name, shape, offset):
        self.name, self.shape, self.offset = name, tuple(shape), offset
        self.n_checked, self.difference, self.verdict = 0, 0.0, CORRECT
        self.error_norm, self.worst, self.kinks, self.directional = 0.0, [], [], None

    def to_dict(self):
        return {"name": self.name, "shape": list(self.shape), "n_checked": self.n_checked,
                "difference": self.difference, "verdict": self.verdict, "error_norm": self.error_norm,
                "worst": self.worst, "kinks": [list(k) for k in self.kinks], "directional": self.directional}

    def __repr__(self):
        return f"BlockReport({self.name}, difference={self.difference:.3g}, verdict={self.verdict!r})"


class GradCheckReport:
    """Result of a gradient check.

    Attributes
    ----------
    difference : float
        ||approx - grad||_2 / (||approx||_2 + ||grad||_2) over the checked entries
        (kinks left out unless include_kinks), 0 when both are 0.
    verdict : str
        "correct" below thresholds[0], "suspicious" below thresholds[1], else "bug".
        An error smaller than the round-off of the finite difference itself
        (``roundoff_floor``) counts as correct.
    blocks : dict of str -> BlockReport
        "W1", "b1", ... each with its own difference, verdict and worst entries.
    worst_block : str
        The block to look at first.
    kinks : list of (block, row, column)
    approx, grad : ndarray, shape (n_parameters,)
        Numerical and backprop gradients in theta order; approx is NaN where
        an entry was not checked one by one (``checked`` is False there).
    """

    def __init__(self, layout, approx, grad, checked, kink_mask, cost, epsilon, thresholds, include_kinks,
                 method, mode, seconds, directional=None):
        self.layout, self.approx, self.grad, self.checked = layout, approx, grad, checked
        self.kink_mask, self.cost, self.epsilon = kink_mask, float(cost), float(epsilon)
        self.thresholds, self.include_kinks = tuple(thresholds), include_kinks
        self.method, self.mode, self.seconds = method, mode, seconds
        self.roundoff_floor = ROUNDOFF * max(abs(self.cost), 1.0) / self.epsilon
        directional = directional or {}
        counted = checked & (include_kinks | ~kink_mask)
        self.blocks = {}
        approx_parts, grad_parts = [approx[counted]], [grad[counted]]
        for block in layout.blocks:
            report = BlockReport(block.name, block.shape, block.offset)
            part = slice(block.offset, block.offset + block.size)
            entries = counted[part]
            report.n_checked = int(checked[part].sum())
            report.kinks = [layout.locate(block.offset + k) for k in np.flatnonzero(kink_mask[part] & checked[part])]
            if block.name in directional:
                numerical, backprop = directional[block.name]
                report.directional = {"numerical": numerical, "backprop": backprop}
            if report.directional is not None and report.n_checked == 0:  # only a direction was checked
                a, g = np.array([numerical]), np.array([backprop])
                approx_parts.append(a)
                grad_parts.append(g)
            else:
                a, g = approx[part][entries], grad[part][entries]
                errors = np.abs(approx[part] - grad[part])
                errors[~entries] = -1.0
                top = np.argpartition(-errors, N_WORST - 1)[:N_WORST] if errors.size > N_WORST else \
                    np.arange(errors.size)
                for k in top[np.lexsort((top, -errors[top]))]:  # largest first, ties by position
                    if errors[k] < 0:
                        break
                    _, row, column = layout.locate(block.offset + int(k))
                    report.worst.append({"row": row, "column": column, "grad": float(grad[part][k]),
                                         "approx": float(approx[part][k]), "error": float(errors[k])})
            report.difference = difference(a, g)
            report.error_norm = float(_norm(a - g))
            report.verdict = self._verdict(report.difference, report.error_norm, a.size)
            self.blocks[block.name] = report
        a, g = np.concatenate(approx_parts), np.concatenate(grad_parts)
        self.n_compared = int(a.size)
        self.difference = difference(a, g)
        self.error_norm = float(_norm(a - g))
        self.verdict = self._verdict(self.difference, self.error_norm, a.size)
        self.kinks = [k for b in self.blocks.values() for k in b.kinks]
        severity = {CORRECT: 0, SUSPICIOUS: 1, BUG: 2}
        self.worst_block = max(self.blocks.values(),
                               key=lambda b: (severity[b.verdict], b.error_norm, b.difference)).name

    def _verdict(self, diff, error_norm, n):
        if error_norm <= self.roundoff_floor * np.sqrt(max(n, 1)) or diff < self.thresholds[0]:
            return CORRECT
        return SUSPICIOUS if diff < self.thresholds[1] else BUG

    @property
    def n_parameters(self):
        return self.layout.size

    def to_dict(self):
        """A JSON-ready summary (no arrays of theta's size)."""
        return {"difference": self.difference, "verdict": self.verdict, "worst_block": self.worst_block,
                "thresholds": list(self.thresholds), "epsilon": self.epsilon, "method": self.method,
                "mode": self.mode, "n_parameters": self.n_parameters, "n_checked": int(self.checked.sum()),
                "n_kinks": len(self.kinks), "include_kinks": self.include_kinks, "cost": self.cost,
                "roundoff_floor": self.roundoff_floor, "seconds": self.seconds,
                "blocks": {name: b.to_dict() for name, b in self.blocks.items()}}

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    def _rows(self):
        for b in self.blocks.values():
            checked = "direction" if b.directional is not None and b.n_checked == 0 else str(b.n_checked)
            if b.worst:
                w = b.worst[0]
                worst = f"({w['row']}, {w['column']}): {w['grad']: .6e} vs {w['approx']: .6e}"
            elif b.directional is not None:
                worst = f"u.dtheta {b.directional['backprop']: .6e} vs {b.directional['numerical']: .6e}"
            else:
                worst = ""
            yield (b.name, "x".join(map(str, b.shape)), checked, f"{b.difference:.3e}", b.verdict,
                   str(len(b.kinks)), worst)

    def __str__(self):
        low, high = self.thresholds
        head = ("block", "shape", "checked", "difference", "verdict", "kinks",
                "worst entry (row, col): backprop vs numerical")
        rows = [head] + list(self._rows())
        widths = [max(len(r[k]) for r in rows) for k in range(len(head) - 1)]
        lines = [f"Gradient check of {self.n_parameters:,} parameters ({self.method}, mode {self.mode}, "
                 f"epsilon {self.epsilon:g}, {self.seconds:.3g} s)",
                 f"difference = {self.difference:.3e}  ->  {self.verdict.upper()}"
                 f"   (correct < {low:g} <= suspicious < {high:g} <= bug)", ""]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        if self.kinks:
            note = "counted" if self.include_kinks else "left out of the verdict"
            lines.append(f"\n{len(self.kinks)} entries straddle a relu kink ({note}).")
        if self.verdict != CORRECT:
            lines.append(f"\nLook first at {self.worst_block}: its entries differ most from the numerical gradient.")
        return "\n".join(lines)

    def _repr_html_(self):
        colors = {CORRECT: "#1a7f37", SUSPICIOUS: "#9a6700", BUG: "#cf222e"}
        head = ("block", "shape", "checked", "difference", "verdict", "kinks", "worst entry")
        cells = "".join(f"<th>{h}</th>" for h in head)
        body = []
        for r in self._rows():
            tds = "".join(f"<td>{html.escape(c)}</td>" if k != 4 else
                          f"<td style='color:{colors[c]};font-weight:bold'>{c}</td>" for k, c in enumerate(r))
            body.append(f"<tr>{tds}</tr>")
        return (f"<div><p><b>Gradient check</b> of {self.n_parameters:,} parameters: difference "
                f"{self.difference:.3e} &rarr; <b style='color:{colors[self.verdict]}'>{self.verdict}</b>"
                f" (look first at {html.escape(self.worst_block)})</p>"
                f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")

    def __repr__(self):
        return (f"GradCheckReport(difference={self.difference:.3e}, verdict={self.verdict!r}, "
                f"worst_block={self.worst_block!r})")


# -------------------------------------------------------------- common parts
def _thresholds(thresholds):
    if not isinstance(thresholds, (tuple, list)) or len(thresholds) != 2:
        raise TypeError(f"thresholds must be a pair (correct_below, bug_from), got {thresholds!r}")
    low = v.real(thresholds[0], "thresholds[0]", low=0.0, low_open=True)
    high = v.real(thresholds[1], "thresholds[1]", low=0.0, low_open=True)
    if low > high:
        raise ValueError(f"thresholds must be increasing, got {thresholds!r}")
    return low, high


def _selection(layout, mode, sample, rng):
    """Which entries to check one by one: all, k per block, or none (directional)."""
    if mode == "directional":
        return np.empty(0, np.int64)
    if sample is None:
        return np.arange(layout.size, dtype=np.int64)
    picks = [b.offset + np.sort(rng.choice(b.size, size=min(sample, b.size), replace=False))
             for b in layout.blocks]
    return np.concatenate(picks).astype(np.int64)


def _show_progress(progress, n_entries):
    if progress is None:
        return n_entries >= 20000 and sys.stderr.isatty()
    return bool(progress)


class _Progress:
    def __init__(self, total, enabled, unit="entry"):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, unit=unit, unit_scale=total >= 10000, leave=False,
                                desc="gradient check")
            except ImportError:
                pass

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _run(layout, theta, grad, cost, entries, cost_at, epsilon, mode, sample, thresholds, include_kinks,
         method, seed):
    """Shared driver: pick entries, evaluate, escalate failing directions, build the report."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = layout.size
    approx = np.full(n, np.nan)
    kink_mask = np.zeros(n, dtype=bool)
    checked = np.zeros(n, dtype=bool)
    directional = {}
    todo = _selection(layout, mode, sample, rng)
    if mode == "directional":
        floor = ROUNDOFF * max(abs(cost), 1.0) / epsilon
        escalate = []
        for block in layout.blocks:
            u = rng.standard_normal(block.size)
            u /= _norm(u)
            part = slice(block.offset, block.offset + block.size)
            shifted = theta.copy()
            shifted[part] += epsilon * u
            J_plus = cost_at(shifted)
            shifted[part] = theta[part] - epsilon * u
            J_minus = cost_at(shifted)
            numerical = (J_plus - J_minus) / (2 * epsilon)
            backprop = float(u @ grad[part])
            directional[block.name] = (float(numerical), backprop)
            diff = difference(np.array([numerical]), np.array([backprop]))
            if diff >= thresholds[0] and abs(numerical - backprop) > floor:
                escalate.append(np.arange(block.offset, block.offset + block.size, dtype=np.int64))
        todo = np.concatenate(escalate) if escalate else todo
    if todo.size:
        values, kinks = entries(todo)
        approx[todo], kink_mask[todo], checked[todo] = values, kinks, True
    return GradCheckReport(layout, approx, grad, checked, kink_mask, cost, epsilon, thresholds, include_kinks,
                           method, mode, time.perf_counter() - start, directional)


def _common_args(epsilon, method, mode, sample, threads, thresholds, seed):
    epsilon = v.real(epsilon, "epsilon", low=0.0, high=1.0, low_open=True)
    v.choice(method, "method", METHODS)
    v.choice(mode, "mode", MODES)
    if sample is not None:
        sample = v.integer(sample, "sample", minimum=1)
        if mode == "directional":
            raise ValueError("sample cannot be combined with mode='directional'; use one or the other")
    if threads is not None:
        threads = v.integer(threads, "threads", minimum=1)
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"threads must be <= {numba.config.NUMBA_NUM_THREADS} "
                             f"(Numba's thread pool on this machine), got {threads}")
    return epsilon, sample, threads, _thresholds(thresholds), v.seed(seed)


# ------------------------------------------------------------ minnet networks
def _balanced_bounds(costs, n_chunks):
    """Chunk boundaries so that every chunk carries about the same total cost."""
    n = costs.size
    n_chunks = max(1, min(n_chunks, n))
    cumulative = np.cumsum(costs)
    targets = cumulative[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(cumulative, targets, side="left") + 1
    return np.unique(np.concatenate(([0], np.clip(inner, 0, n), [n]))).astype(np.int64)


def _row_groups(dims, indices, group_size):
    """Order the entries by (layer, row, column) and cut them into groups.

    A group holds at most group_size entries of one row of one layer (a W row
    and its bias), which the incremental kernel processes together.

    Returns (order, group bounds into order, row of every group counted over all layers).
    """
    dims = np.asarray(dims)
    sizes = dims[1:] * dims[:-1] + dims[1:]
    w_off = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    b_off = w_off + dims[1:] * dims[:-1]
    layer = np.searchsorted(b_off + dims[1:], indices, side="right")
    n_prev = dims[:-1][layer]
    is_w = indices < b_off[layer]
    row = np.where(is_w, (indices - w_off[layer]) // n_prev, indices - b_off[layer])
    column = np.where(is_w, (indices - w_off[layer]) % n_prev, n_prev)
    row_key = np.concatenate(([0], np.cumsum(dims[1:])))[layer] + row
    order = np.lexsort((column, row_key)).astype(np.int64)
    keys = row_key[order]
    row_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    rank = np.arange(keys.size) - np.repeat(row_start, np.diff(np.r_[row_start, keys.size]))
    starts = np.flatnonzero(rank % group_size == 0)
    return order, np.r_[starts, keys.size].astype(np.int64), row_key[order][starts]


def _group_costs(dims, groups, group_rows, m, method, active=None):
    """Relative work of every group (used to balance threads and progress steps).

    active : (sum n_l,) optional, the number of examples for which each unit's
    activation can change (relu units that are off for an example skip it).
    """
    sizes = np.diff(groups).astype(float)
    if method == "full":
        return sizes
    L = len(dims) - 1
    row_layer = np.repeat(np.arange(L), dims[1:])
    per_column = np.empty(L)
    for l in range(L):
        work = 4.0 * dims[L]
        if l < L - 1:
            work += 2.0 * dims[l + 1] + dims[l + 2] + sum(dims[k + 1] * (2 + dims[k + 2]) for k in range(l + 1, L - 1))
        per_column[l] = work
    examples = np.full(len(row_layer), float(m)) if active is None else active.astype(float)
    rows = group_rows
    return sizes * (2.0 * examples[rows] * per_column[row_layer[rows]] + 20.0)


def gradient_check(net, X, Y, epsilon=1e-7, method="incremental", mode="full", sample=None, dropout_seed=0,
                   threads=None, include_kinks=False, thresholds=THRESHOLDS, seed=0, progress=None):
    """Compare a network's backprop with centered differences of its cost.

    Parameters
    ----------
    net : Network
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m); for softmax also integer labels (m,)
    epsilon : float
        The perturbation: ``(J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)``.
    method : {"incremental", "full"}
        "full" runs the whole forward pass for every perturbation (the notes'
        algorithm); "incremental" starts from the cached forward pass at the
        perturbed layer and carries only the examples whose values change.
    mode : {"full", "directional"}
        "directional" checks one random direction per block (2 cost evaluations)
        and checks a failing block entry by entry.
    sample : int, optional
        Check only this many random entries of every block.
    dropout_seed : int or None
        With keep_prob < 1: the seed of the fixed masks used for every J and for
        backprop (the deterministic check mode). None draws fresh masks, which
        makes J random, and is refused.
    threads : int, optional
        Numba threads for this call (restored afterwards).
    include_kinks : bool
        Count entries whose perturbation crosses a relu kink in the verdict.
    thresholds : (float, float)
        Verdict bands: correct below the first, bug from the second.
    seed : int
        Seeds the sampled entries and the random directions.
    progress : bool or None
        Show a progress bar (None: on a terminal, for long checks).

    Returns
    -------
    GradCheckReport

    Examples
    --------
    >>> from minnet import Network, datasets, gradient_check
    >>> X, Y = datasets.flower(m=64)
    >>> gradient_check(Network([2, 5, 1], lambd=0.7), X, Y).verdict
    'correct'
    """
    from .network import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minnet.Network, got {type(net).__name__}; "
                        f"for your own functions use minnet.check_gradients")
    epsilon, sample, threads, thresholds, seed = _common_args(epsilon, method, mode, sample, threads,
                                                              thresholds, seed)
    include_kinks = bool(include_kinks)
    X, Y = net._check_XY(X, Y)
    m = X.shape[1]
    if net.uses_dropout and dropout_seed is None:
        _refuse_random_dropout(net, X, Y)
    drop, use_drop = net._dropout(m, dropout_seed)
    theta = net.theta.copy()
    cost = _deterministic_cost(lambda: net._cost(X, Y, drop, use_drop, theta))
    grad, Z, A = net._gradient(X, Y, drop, use_drop)  # and the forward cache the kernels start from
    if method == "incremental":
        extra = _check.prepare(net._dims, X, Y, Z, A, net._hidden)
        group_size = max(1, min(64, 4096 // m))  # columns of a group: 2 * group_size * m <= 8192
        units = Z.reshape(-1, m)  # every unit's pre-activations, layer after layer
        active = np.sum(units > 0, axis=1) if net.hidden == "relu" else None
    else:
        group_size = 1
    show = _show_progress(progress, net.layout.size if sample is None else sample * len(net.layout.blocks))

    def entries(indices):
        approx = np.empty(indices.size)
        kinks = np.zeros(indices.size, dtype=np.bool_)
        order, groups, rows = _row_groups(net.layer_dims, indices, group_size)
        costs = _group_costs(net.layer_dims, groups, rows, m, method, active if method == "incremental" else None)
        n_threads = threads or numba.get_num_threads()
        chunks = _balanced_bounds(costs, n_threads)  # one chunk per thread, balanced by cost
        done = np.zeros(chunks.size - 1, np.int64)  # entries finished in each chunk (for the progress bar)

        def kernel():
            if method == "incremental":
                work = np.empty((chunks.size - 1, _check.work_size(_check.work_width(net._dims), m, group_size)))
                _check.incremental(theta, net._dims, net._hidden, net._output, net.lambd, epsilon, use_drop, Z,
                                   extra[0], drop, A, X, Y, extra[1], extra[2], extra[3], indices, order, groups,
                                   chunks, group_size, work, approx, kinks, done)
            else:  # groups of one entry: chunk bounds are positions in order
                out, flags = np.empty(indices.size), np.zeros(indices.size, dtype=np.bool_)
                _check.full(theta, net._dims, X, Y, net._hidden, net._output, net.lambd, epsilon, drop, use_drop,
                            Z, A, indices[order], chunks, out, flags, done)
                approx[order], kinks[order] = out, flags

        _run_kernel(kernel, n_threads, done, indices.size, show)
        return approx, kinks

    def cost_at(shifted):
        return net._cost(X, Y, drop, use_drop, shifted)

    return _run(net.layout, theta, grad, cost, entries, cost_at, epsilon, mode, sample, thresholds,
                include_kinks, method, seed)


_WORKER = []  # the one thread that runs the parallel kernels (see _run_kernel)


def _run_kernel(kernel, n_threads, done, total, show):
    """Run a parallel kernel on n_threads Numba threads, with a progress bar when asked.

    The kernel always runs in the same long-lived helper thread: Numba's
    OpenMP threads belong to the thread that calls a parallel kernel, and two
    such teams (one idle but still spinning) would compete for the cores. The
    kernel releases the GIL, so meanwhile this thread can read ``done``, where
    each chunk counts its finished entries, and move the bar: one kernel call
    either way, so the bar costs no speed.
    """
    def call():
        previous = numba.get_num_threads()  # Numba's thread count belongs to the calling thread
        numba.set_num_threads(n_threads)
        try:
            kernel()
        finally:
            numba.set_num_threads(previous)

    if not _WORKER:
        _WORKER.append(concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="minnet-check"))
    future = _WORKER[0].submit(call)
    if show:
        bar = _Progress(total, True)
        shown = 0
        try:
            while True:
                concurrent.futures.wait([future], timeout=0.1)
                finished = int(done.sum())
                bar.update(finished - shown)
                shown = finished
                if future.done():
                    break
        finally:
            bar.close()
    future.result()  # waits, and re-raises what the kernel raised


def _refuse_random_dropout(net, X, Y):
    """J with fresh dropout masks per call is not a function of theta: say so."""
    m = X.shape[1]
    entropy = np.random.SeedSequence().generate_state(2)
    costs = [net._cost(X, Y, *net._dropout(m, int(s) % (2**31))) for s in entropy]
    raise ValueError(_nondeterministic_message(costs[0], costs[1]) if costs[0] != costs[1] else
                     "dropout_seed=None draws fresh dropout masks for every evaluation of J, so J is random "
                     "and no gradient check can be trusted. Use the deterministic check mode: pass an integer "
                     "dropout_seed (the default, 0) to fix the masks, or set keep_prob=1 while checking.")


def _nondeterministic_message(J1, J2):
    return (f"the cost is not deterministic: J evaluated twice at the same theta gave {J1!r} and {J2!r}. "
            "A gradient check needs one consistent J(theta); with dropout every call drops different units. "
            "Use the deterministic check mode: fix the dropout masks (gradient_check(..., dropout_seed=0), or "
            "draw the masks once and reuse them in your cost and gradients), or set keep_prob=1 while checking.")


def _deterministic_cost(cost_fn):
    first, second = cost_fn(), cost_fn()
    if first != second and not (np.isnan(first) and np.isnan(second)):
        raise ValueError(_nondeterministic_message(first, second))
    if not np.isfinite(first):
        raise ValueError(f"the cost at theta is {first}; a gradient check needs a finite J")
    return first


# ------------------------------------------------------------ a learner's code
def _scalar_cost(value):
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"cost_fn must return the cost J as a real number, got {type(value).__name__}"
                        + (" (is a `return` missing?)" if value is None else ""))
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"cost_fn must return the cost J as a real number, got {type(value).__name__}") from None
    if array.size != 1:
        raise ValueError(f"cost_fn must return a scalar cost, got an array of shape {array.shape}")
    return float(array.reshape(()))


def check_gradients(cost_fn, grads_fn, parameters, epsilon=1e-7, mode="full", sample=None,
                    thresholds=THRESHOLDS, seed=0, progress=None):
    """Gradient-check your own cost and backprop, written in course notation.

    Parameters
    ----------
    cost_fn : callable
        ``cost_fn(parameters) -> float``: J at the given parameters.
    grads_fn : callable
        ``grads_fn(parameters) -> dict`` with "dW1", "db1", ... (or "W1", "b1", ...),
        each shaped like its parameter.
    parameters : dict of str -> ndarray
        "W1" (n_1, n_0), "b1" (n_1, 1), ... for any depth, or any block names.
        Not modified: the functions receive views into minnet's own copy.
    epsilon, mode, sample, thresholds, seed, progress
        As in ``gradient_check``.

    Returns
    -------
    GradCheckReport

    Examples
    --------
    >>> import numpy as np
    >>> params = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}
    >>> cost = lambda p: float(np.sum(p["W1"] ** 2) + p["b1"][0, 0] ** 2)
    >>> grads = lambda p: {"dW1": 2 * p["W1"], "db1": 2 * p["b1"]}
    >>> check_gradients(cost, grads, params).verdict
    'correct'
    """
    if not callable(cost_fn):
        raise TypeError(f"cost_fn must be callable, got {type(cost_fn).__name__}")
    if not callable(grads_fn):
        raise TypeError(f"grads_fn must be callable, got {type(grads_fn).__name__}")
    epsilon, sample, _, thresholds, seed = _common_args(epsilon, "full", mode, sample, None, thresholds, seed)
    if isinstance(parameters, dict):
        for key, value in parameters.items():
            v.float_array(value, f"parameters[{key!r}]")  # numeric, finite; warns about float32
    theta, layout = dictionary_to_vector(parameters)
    views = layout.views(theta)

    def cost_at(vector):
        theta[...] = vector
        try:
            return _scalar_cost(cost_fn(views))
        finally:
            theta[...] = original

    original = theta.copy()
    cost = _deterministic_cost(lambda: _scalar_cost(cost_fn(views)))
    grads = grads_fn(views)
    theta[...] = original  # in case grads_fn wrote into its input
    grad = gradients_to_vector(grads, layout)
    if not np.all(np.isfinite(grad)):
        raise ValueError("grads_fn returned NaN or inf")
    n_entries = layout.size if sample is None else sample * len(layout.blocks)
    show = _show_progress(progress, 20 * n_entries)  # Python calls: slow, so show sooner

    def entries(indices):
        approx = np.empty(indices.size)
        bar = _Progress(indices.size, show)
        try:
            for q, p in enumerate(indices):
                w = original[p]
                theta[p] = w + epsilon
                J_plus = _scalar_cost(cost_fn(views))
                theta[p] = w - epsilon
                J_minus = _scalar_cost(cost_fn(views))
                theta[p] = w
                approx[q] = (J_plus - J_minus) / (2 * epsilon)
                bar.update(1)
        finally:
            theta[...] = original
            bar.close()
        return approx, np.zeros(indices.size, dtype=bool)

    return _run(layout, theta, grad, cost, entries, cost_at, epsilon, mode, sample, thresholds, True,
                "python loop", seed)

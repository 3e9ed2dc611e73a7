"""Plots of training and gradient checks (needs matplotlib: ``pip install "minnet[plot]"``).

Owns the figures; reads networks, histories and reports through their attributes. Must not import
matplotlib at import time (importing minnet never needs it), nor network or check.
"""
# Every function draws on ``ax`` when given, else on a new figure, saves to ``path`` when given, and
# returns the matplotlib ``Figure``. With a ``path`` and no ``ax`` the figure is drawn off screen with the
# Agg backend, without touching pyplot's global state, so saving works on machines with no display.
# The data to plot is positional; ``path``, ``ax``, ``title`` and the other options are keyword-only.
import numpy as np

from . import _validation as v
from .ops.losses import CLASSIFIERS, OUTPUTS

__all__ = ["plot_cost", "plot_decision_boundary", "plot_check", "plot_bench", "VERDICT_COLORS"]

VERDICT_COLORS = {"correct": "#1a7f37", "suspicious": "#bf8700", "bug": "#cf222e", "inconclusive": "#57606a"}
_INSTALL = 'pip install "minnet[plot]"'


def _matplotlib():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"minnet's plots need matplotlib: {_INSTALL} (or pip install matplotlib)") from exc
    return matplotlib


def _figure_and_axes(ax, path, figsize):
    """(figure, axes): the given axes, an off-screen Agg figure when saving, else a pyplot figure."""
    _matplotlib()
    if ax is not None:
        return ax.figure, ax
    if path is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_cost(history_or_costs, *, path=None, ax=None, title="Training cost", log=None):
    """The cost per epoch, with the epochs of any gradient checks marked.

    Parameters
    ----------
    history_or_costs : dict or sequence of float
        The history ``Network.fit`` returns ("cost", and the "checks" that a
        ``GradientCheck`` callback adds, whose epochs are marked with their
        verdict), or the costs themselves.
    path : str or path-like, optional
        Save the figure there (format from the extension: .png, .pdf, .svg).
    ax : matplotlib Axes, optional
    title : str
    log : bool, optional
        Log-scale cost axis; by default when the largest cost exceeds the smallest 20 times.

    Returns
    -------
    matplotlib.figure.Figure
    """
    checks = {}
    if isinstance(history_or_costs, dict):
        if "cost" not in history_or_costs:
            raise ValueError('history_or_costs must be fit()\'s history (with a "cost" list) or a sequence of costs')
        costs, checks = history_or_costs["cost"], history_or_costs.get("checks") or {}
    else:
        costs = history_or_costs
    costs = np.asarray(costs, dtype=np.float64).ravel()
    if costs.size == 0:
        raise ValueError("there are no costs to plot (was the network trained for 0 epochs?)")
    fig, ax = _figure_and_axes(ax, path, (6.4, 4.0))
    epochs = np.arange(1, costs.size + 1)
    window = costs.size // 100 if costs.size >= 500 else 0
    wiggly = np.all(np.isfinite(costs)) and np.sum(np.abs(np.diff(costs))) > 3 * abs(costs[-1] - costs[0])
    if window >= 5 and wiggly:  # noisy (dropout, mini-batches): show a moving average on top
        ax.plot(epochs, costs, color="#54aeff", linewidth=0.8, alpha=0.55, label="cost J per epoch")
        kernel = np.ones(window) / window
        ax.plot(epochs[window - 1:], np.convolve(costs, kernel, mode="valid"), color="#0550ae", linewidth=1.6,
                label=f"moving average over {window} epochs")
    else:
        ax.plot(epochs, costs, color="#0969da", linewidth=1.4, marker="o" if costs.size < 30 else None,
                markersize=3, label="cost J per epoch")
    finite = costs[np.isfinite(costs)]
    if log is None:
        log = finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 20
    if log:
        ax.set_yscale("log")
    last = max(costs.size, 2)
    for epoch, report in sorted(checks.items()):
        verdict = getattr(report, "verdict", None)
        when = ("before training" if epoch == 0 else "after training" if epoch == costs.size
                else f"after epoch {epoch}")
        ax.axvline(min(epoch, last), color=VERDICT_COLORS.get(verdict, "0.4"),
                   linestyle=":" if epoch == 0 else "--", linewidth=1.6, label=f"gradient check {when}: {verdict}" if verdict else f"check {when}")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(-0.02 * last, 1.02 * last)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost J" + (" (log scale)" if log else ""))
    if title:
        ax.set_title(f"{title}\n{costs[0]:.4g} \u2192 {costs[-1]:.4g} in {costs.size:,} epochs", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    return _finish(fig, path)


def _labels(net, Y, m):
    """Class index per example from (1, m) 0/1, (m,) integers or (n_L, m) one-hot."""
    Y = np.asarray(Y)
    if Y.ndim == 1:
        labels = Y
    elif Y.shape[0] == 1:
        labels = Y[0] > 0.5
    else:
        labels = np.argmax(Y, axis=0)
    labels = np.asarray(labels).astype(np.int64).ravel()
    if labels.size != m:
        raise ValueError(f"Y must have one label per example (m = {m}), got shape {np.shape(Y)}")
    return labels


MAX_RESOLUTION = 4000
"""Most grid points along each axis of ``plot_decision_boundary`` (16 million predictions)."""


def plot_decision_boundary(net, X, Y, *, path=None, ax=None, title=None, resolution=300, test=None):
    """The regions a network assigns to each class, with the data on top (2-D inputs only).

    Parameters
    ----------
    net : minnet.Network
        With 2 inputs and a sigmoid or softmax output.
    X : ndarray, shape (2, m)
    Y : ndarray, shape (1, m) of 0/1, (m,) class labels, or (n_L, m) one-hot
    path : str or path-like, optional
    ax : matplotlib Axes, optional
    title : str, optional
        Default: "Decision boundary" with the accuracy (on the training and the
        held-out points apart, when ``test`` is given).
    resolution : int
        Grid points along each axis, in [2, MAX_RESOLUTION].
    test : array of int or bool, optional
        The held-out (test) examples among the columns of X, as indices or a mask:
        drawn hollow, in their class's colour, with a legend entry of their own;
        the other points are the training points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    resolution = v.integer(resolution, "resolution", minimum=2)
    if resolution > MAX_RESOLUTION:
        raise ValueError(f"resolution must be an integer in [2, {MAX_RESOLUTION}] (grid points along each axis), "
                         f"got {resolution}")
    v.not_masked(X, "X")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D inputs, X of shape (2, m); got {X.shape}")
    if net.layer_dims[0] != 2:
        raise ValueError(f"plot_decision_boundary needs a network with 2 inputs, got {net.layer_dims[0]}")
    if net.output not in CLASSIFIERS:
        raise ValueError(f"plot_decision_boundary needs a {' or '.join(CLASSIFIERS)} output, got {net.output!r}")
    labels = _labels(net, Y, X.shape[1])
    held_out = _held_out(test, X.shape[1])
    n_classes = max(int(net.layer_dims[-1]), 2, int(labels.max()) + 1)
    palette = ["#d1242f", "#0969da", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#cf222e", "#57606a",
               "#bc4c00", "#116329"]
    colors = [palette[k % len(palette)] for k in range(n_classes)]
    pad_x = 0.08 * (np.ptp(X[0]) or 1.0)
    pad_y = 0.08 * (np.ptp(X[1]) or 1.0)
    xs = np.linspace(X[0].min() - pad_x, X[0].max() + pad_x, resolution)
    ys = np.linspace(X[1].min() - pad_y, X[1].max() + pad_y, resolution)
    spans = (xs[-1] - xs[0], ys[-1] - ys[0])
    equal = max(spans) <= 3 * min(spans)  # same units on both axes unless that squashes the plot
    height = float(np.clip(5.2 * spans[1] / spans[0], 3.2, 6.0)) + 0.9 if equal else 4.6
    fig, ax = _figure_and_axes(ax, path, (6.0, height))
    from matplotlib.colors import ListedColormap
    gx, gy = np.meshgrid(xs, ys)
    grid = np.vstack([gx.ravel(), gy.ravel()])
    predicted = np.asarray(net.predict(grid)).reshape(-1)[: grid.shape[1]].astype(np.int64)
    regions = predicted.reshape(gx.shape)
    cmap = ListedColormap(colors)
    ax.contourf(gx, gy, regions, levels=np.arange(n_classes + 1) - 0.5, cmap=cmap, alpha=0.22)
    if n_classes == 2 and OUTPUTS[net.output].targets == "binary":
        ax.contour(gx, gy, net.forward(grid).reshape(gx.shape), levels=[0.5], colors="0.25", linewidths=1)
    _scatter(ax, X, labels, colors, held_out)
    if title is None:
        right = np.asarray(net.predict(X)).reshape(-1)[: X.shape[1]].astype(np.int64) == labels
        title = f"Decision boundary: {np.mean(right):.1%} of {X.shape[1]} points right"
        if held_out.any():
            title = (f"Decision boundary: {np.mean(right[~held_out]):.1%} of {int((~held_out).sum())} training "
                     f"points right,\n{np.mean(right[held_out]):.1%} of {int(held_out.sum())} held-out points")
    ax.set_title(title)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    if equal:
        ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    return _finish(fig, path)


def _held_out(test, m):
    """``test`` (indices or a mask of the held-out columns, or None) as a boolean mask of the m columns."""
    mask = np.zeros(m, dtype=bool)
    if test is None:
        return mask
    test = np.asarray(test)
    if test.dtype == bool:
        if test.shape != (m,):
            raise ValueError(f"test as a mask must have one entry per example, shape ({m},); got {test.shape}")
        return test.copy()
    if test.size and (not np.issubdtype(test.dtype, np.integer) or test.min() < -m or test.max() >= m):
        raise ValueError(f"test must be indices of examples (columns of X, 0 to {m - 1}) or a boolean mask")
    mask[test.astype(np.int64)] = True
    return mask


def _scatter(ax, X, labels, colors, held_out):
    """The points in their class's colour: the training points filled, the held-out ones hollow, with an entry
    of their own in the legend."""
    for k in range(len(colors)):
        sel = (labels == k) & ~held_out
        if np.any(sel):
            ax.scatter(X[0, sel], X[1, sel], s=14, color=colors[k], edgecolors="white", linewidths=0.4,
                       label=f"class {k} ({int(sel.sum())}{' training' if held_out.any() else ''})")
    for k in range(len(colors)):
        sel = (labels == k) & held_out
        if np.any(sel):
            ax.scatter(X[0, sel], X[1, sel], s=22, facecolors="none", edgecolors=colors[k], linewidths=1.2,
                       label=f"class {k} ({int(sel.sum())} held out)")


def plot_check(report, *, path=None, ax=None, title=None):
    """Each block's refereed difference as a bar on a log scale, over the verdict bands.

    The bands come from ``report.thresholds``: correct below the first, bug
    from the second, suspicious between.  A bar is the number the block's
    verdict came from, so it stands in the band of its colour: the refereed
    difference, or for an inconclusive block its resolution (hatched: what it
    could not resolve).  A dot marks the notes' difference at epsilon, before
    the referee; the dashed line is the whole check's refereed difference.
    A difference of exactly 0 is drawn at the bottom of the axis, labelled "0".

    Parameters
    ----------
    report : GradCheckReport
    path : str or path-like, optional
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    blocks = getattr(report, "blocks", None)
    if not isinstance(blocks, dict) or not blocks:
        raise TypeError(f"report must be a GradCheckReport with blocks, got {type(report).__name__}")
    low, high = report.thresholds
    names = list(blocks)
    inconclusive = np.array([blocks[n].verdict == "inconclusive" for n in names])
    diffs = np.array([blocks[n].resolution if blocks[n].verdict == "inconclusive" else blocks[n].refereed_difference
                      for n in names], dtype=np.float64)
    diffs = np.where(np.isfinite(diffs), diffs, 1.0)  # nothing resolved: the top of the scale
    at_epsilon = np.array([blocks[n].difference for n in names], dtype=np.float64)
    positive = diffs[diffs > 0]
    bottom = 10.0 ** np.floor(np.log10(min(positive.min() if positive.size else low, low) / 10.0))
    bottom = max(bottom, 1e-20)
    top = 10.0  # a difference is at most 1; the room above holds the labels
    fig, ax = _figure_and_axes(ax, path, (max(5.0, 0.7 * len(names) + 2.5), 4.2))
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    bands = (("correct", bottom, low), ("suspicious", low, high), ("bug", high, top))
    for verdict, y0, y1 in bands:
        ax.axhspan(y0, y1, color=VERDICT_COLORS[verdict], alpha=0.10, linewidth=0)
        ax.text(1.01, np.sqrt(y0 * y1), verdict, transform=ax.get_yaxis_transform(), va="center", ha="left",
                color=VERDICT_COLORS[verdict], fontsize=9, fontweight="bold")
    for y in (low, high):
        ax.axhline(y, color="0.35", linewidth=0.8)
    shown = np.where(diffs > 0, diffs, bottom)
    colors = [VERDICT_COLORS.get(blocks[n].verdict, "0.4") for n in names]
    x = np.arange(len(names))
    bars = ax.bar(x, shown - bottom, bottom=bottom, color=colors, width=0.6, edgecolor="0.2", linewidth=0.5)
    for bar, hatched in zip(bars, inconclusive):
        if hatched:
            bar.set_hatch("//")
    dots = np.isfinite(at_epsilon) & (at_epsilon > 0)
    ax.plot(x[dots], at_epsilon[dots], linestyle="none", marker="o", markersize=5, markerfacecolor="white",
            markeredgecolor="0.1", label="difference at epsilon")
    for k, d in enumerate(diffs):
        label = "0" if d == 0 else f"{d:.1e}"
        ax.annotate(label, xy=(x[k], shown[k]), xytext=(0, 3), textcoords="offset points", ha="center",
                    va="bottom", fontsize=8)
    if report.refereed_difference > 0:
        ax.axhline(report.refereed_difference, color="0.1", linestyle="--", linewidth=1,
                   label=f"whole check, refereed: {report.refereed_difference:.2e} ({report.verdict})")
    if dots.any() or report.refereed_difference > 0:
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    ax.set_xticks(x, names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_xlabel("block of theta")
    ax.set_ylabel(r"refereed difference  $\|a - g\| / (\|a\| + \|g\|)$")
    if title is None:
        title = f"Gradient check: {report.verdict}"
        if report.verdict != "correct":
            title += f", look first at {report.worst_block}"
    ax.set_title(title)
    ax.grid(True, axis="y", which="major", alpha=0.25)
    return _finish(fig, path)


def plot_bench(rows, *, path=None, ax=None, title="Gradient-check time against network size"):
    """Check time against the number of parameters, one line per method and peer, log-log.

    Parameters
    ----------
    rows : list of dict
        The rows ``minnet bench --json`` prints: each needs "method", "parameters"
        and "seconds" (None: not run, left out); "threads" (a line per thread count
        when minnet ran on several) and "estimated" (a hollow marker) are optional.
    path : str or path-like, optional
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(rows, dict) or not all(isinstance(r, dict) for r in rows):
        raise TypeError("rows must be a list of dicts as 'minnet bench --json' prints them")
    timed = [r for r in rows if r.get("seconds") is not None and r["seconds"] > 0]
    if not timed:
        raise ValueError("there are no timings to plot (every run was skipped)")
    several = len({r.get("threads") for r in timed if str(r["method"]).startswith("minnet")}) > 1
    series = {}
    for r in timed:
        label = str(r["method"])
        if several and label.startswith("minnet") and r.get("threads") is not None:
            label += f", {r['threads']} thread{'s' if r['threads'] != 1 else ''}"
        series.setdefault(label, []).append(r)
    fig, ax = _figure_and_axes(ax, path, (8.4, 4.6))
    palette = ["#0969da", "#1a7f37", "#8250df", "#bf8700", "#cf222e", "#1b7c83", "#bc4c00", "#57606a"]
    for k, (label, points) in enumerate(series.items()):
        points.sort(key=lambda r: r["parameters"])
        color = palette[k % len(palette)]
        peer = not label.startswith("minnet")
        marker = "s" if peer else "o"
        ax.plot([r["parameters"] for r in points], [r["seconds"] for r in points], color=color, marker=marker,
                markersize=6, linestyle="--" if peer else "-", linewidth=1.4, label=label)
        guessed = [r for r in points if r.get("estimated")]
        if guessed:  # hollow: timed on a sample and scaled up
            ax.plot([r["parameters"] for r in guessed], [r["seconds"] for r in guessed], color=color, marker=marker,
                    markersize=6, markerfacecolor="white", linestyle="none")
    if any(r.get("estimated") for r in timed):
        ax.plot([], [], marker="o", color="0.4", markerfacecolor="white", linestyle="none",
                label="estimated from a sample")
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = {r["parameters"] for r in timed}
    if len(sizes) == 1:  # one workload: centre its column of points
        size = sizes.pop()
        ax.set_xlim(size / 3, size * 3)
    ax.set_xlabel("parameters (entries of theta)")
    ax.set_ylabel("seconds per check (log scale)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, framealpha=0.85)
    return _finish(fig, path)

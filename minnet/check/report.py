"""Report: the result of a gradient check as a table, HTML and JSON."""
import functools
import html
import json
import math

import numpy as np

from . import _tally
from .judge import BUG, CORRECT, INCONCLUSIVE, N_WORST, SEVERITY, SUSPICIOUS, tally


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def _worst_rows(block, top, approx, grad, refereed, error, grad_error):
    """The rows of a block's worst entries (``_tally.block_tally``'s ranking).

    block : the layout's block; top : int64 positions in theta, worst first;
    approx, grad, refereed, error : (n_parameters,); grad_error : (n_parameters,) or a float.
    A function of the arrays alone: a report that holds it is no reference cycle.
    """
    columns = block.shape[-1] if len(block.shape) >= 2 else 1
    rows = []
    for k in top.tolist():
        allowed = error[k] + (grad_error[k] if np.ndim(grad_error) else grad_error)
        local = k - block.offset
        rows.append({"row": local // columns, "column": local % columns, "grad": float(grad[k]),
                     "approx": _finite_or_none(approx[k]), "refereed": _finite_or_none(refereed[k]),
                     "error": _finite_or_none(abs(refereed[k] - grad[k])), "tolerance": _finite_or_none(allowed)})
    return rows


class BlockReport:
    """One block of theta (W1, b1, ...) in a gradient check.

    Attributes
    ----------
    name, shape, offset : the block in theta.
    n_checked : entries compared entry by entry (0 when only a direction was checked).
    difference : the notes' ||approx - grad|| / (||approx|| + ||grad||) at the user's epsilon.
    refereed_difference : the same over the disagreement beyond each entry's own error,
        with the referee's values; the verdict comes from it.
    resolution : the smallest difference this block's check could resolve.
    verdict : "correct", "suspicious", "bug" or "inconclusive".
    worst : list of dicts, largest disagreement beyond the entry's own error first: row, column,
        grad, approx (at the user's epsilon), refereed (the value the verdict used),
        error (|refereed - grad|) and tolerance (the entry's own error bound).
    kinks : entries whose perturbation crossed a relu kink (left out of the verdict by default).
    directional : None, or dict (numerical, backprop, error) of the directional check.
    """

    def __init__(self, name, shape, offset):
        self.name, self.shape, self.offset = name, tuple(shape), offset
        self.n_checked, self.difference, self.verdict = 0, 0.0, CORRECT
        self.refereed_difference, self.resolution = 0.0, 0.0
        self.error_norm, self.kinks, self.directional = 0.0, [], None
        self._worst = []  # or a function that lists them, called when they are first asked for

    @property
    def worst(self):
        if callable(self._worst):
            self._worst = self._worst()
        return self._worst

    def to_dict(self):
        return {"name": self.name, "shape": list(self.shape), "n_checked": self.n_checked,
                "difference": _finite_or_none(self.difference),
                "refereed_difference": _finite_or_none(self.refereed_difference),
                "resolution": _finite_or_none(self.resolution), "verdict": self.verdict,
                "error_norm": _finite_or_none(self.error_norm), "worst": self.worst,
                "kinks": [list(k) for k in self.kinks], "directional": self.directional}

    def __repr__(self):
        return f"BlockReport({self.name}, difference={self.difference:.3g}, verdict={self.verdict!r})"


class GradCheckReport:
    """Result of a gradient check.

    Attributes
    ----------
    verdict : str
        "correct", "suspicious", "bug" or "inconclusive", from the refereed
        values: an entry's disagreement counts only beyond its own error, and
        "correct" needs a resolution below thresholds[0]; when J could not
        resolve the gradient at any step tried the verdict is "inconclusive".
    difference : float
        The notes' ||approx - grad||_2 / (||approx||_2 + ||grad||_2) at the
        user's epsilon over the checked entries (kinks left out unless
        include_kinks), 0 when both are 0.
    refereed_difference : float
        The disagreement beyond each entry's own error, with the referee's values.
    resolution : float
        ||error|| / (||approx|| + ||grad||): the smallest difference the check could resolve.
    blocks : dict of str -> BlockReport
        "W1", "b1", ... each with its own differences, verdict and worst entries.
    worst_block : str
        The block to look at first.
    kinks : list of (block, row, column)
    referee : dict or None
        What the referee did: entries re-evaluated, steps, one example.
    approx, grad : ndarray, shape (n_parameters,)
        Numerical (at the user's epsilon) and backprop gradients in theta
        order; approx is NaN where an entry was not checked one by one.
    refereed, error : ndarray, shape (n_parameters,)
        The values the verdict used and their error bounds (NaN / inf where not checked).
    """

    def __init__(self, layout, approx, grad, checked, kink_mask, refereed, error, cost, epsilon, thresholds,
                 include_kinks, method, mode, seconds, referee=None, directional=None, grad_error=None,
                 tallied=None, threads=1):
        self.layout, self.approx, self.grad, self.checked = layout, approx, grad, checked
        self.kink_mask, self.refereed, self.error = kink_mask, refereed, error
        self.grad_error = 0.0 if grad_error is None else grad_error  # backprop's rounding, where it was needed
        self.cost, self.epsilon = float(cost), float(epsilon)
        self.thresholds, self.include_kinks = tuple(thresholds), include_kinks
        self.method, self.mode, self.seconds = method, mode, seconds
        self.referee = referee
        directional = directional or {}
        any_kink = bool(kink_mask.any())
        every = bool(checked.all()) and (include_kinks or not any_kink)  # every entry counts
        counted = checked if include_kinks or every else checked & ~kink_mask
        starts = layout.starts
        if any_kink:
            kinks = np.flatnonzero(kink_mask & checked)
            kinks_of = np.split(kinks, np.searchsorted(kinks, starts[1:]))
        else:
            kinks_of = [()] * len(layout.blocks)
        self.blocks = {}
        entrywise = True  # every block compared entry by entry (not only along a direction)
        for block, found in zip(layout.blocks, kinks_of):
            report = BlockReport(block.name, block.shape, block.offset)
            report.n_checked = block.size if every else int(checked[block.offset:block.offset + block.size].sum())
            report.kinks = [layout.locate(int(k)) for k in found]
            if block.name in directional:
                d = directional[block.name]
                report.directional = {key: _finite_or_none(d[key]) for key in ("numerical", "backprop", "error")}
                entrywise &= report.n_checked > 0
            self.blocks[block.name] = report
        a, g, r, e, ge, groups = self._compared(layout, approx, grad, refereed, error, counted, directional,
                                                entrywise and every)
        n_blocks = len(layout.blocks)
        threads = max(1, int(threads))
        if tallied is None or not (entrywise and every):  # else the judge's tally of these very arrays
            tallied = tally(a, r, g, e, self.thresholds, groups, n_blocks, ge, n_worst=0, threads=threads)
            none = np.empty(0)
            theta_grad_error = none if np.ndim(self.grad_error) == 0 else self.grad_error
            worst = _tally.tally_blocks(approx, refereed, grad, error, theta_grad_error,
                                        np.empty(0, np.bool_) if every else counted, starts, N_WORST, threads)[1]
        else:
            worst = tallied.worst
        for block, report, top in zip(layout.blocks, self.blocks.values(), worst):
            if report.n_checked:  # the rows are made when first read: most checks only want the verdict
                report._worst = functools.partial(_worst_rows, block, top[top >= 0], approx, grad, refereed, error,
                                                  self.grad_error)
        whole, norms = tallied.whole, tallied.off_norms
        for report, notes, found, norm in zip(self.blocks.values(), tallied.notes, tallied.blocks, norms):
            report.difference = notes
            report.refereed_difference, report.resolution, report.verdict = found[1:]
            report.error_norm = float(norm)  # ||refereed - grad||
        self.n_compared = int(a.size)
        self.difference = tallied.notes_whole
        self.refereed_difference, self.resolution, verdict = whole[1:]
        self.error_norm = float(np.sqrt(np.sum(norms ** 2)))
        proven = [b.verdict for b in self.blocks.values() if b.verdict in (SUSPICIOUS, BUG)]
        self.verdict = max([verdict] + proven, key=SEVERITY.get)
        self.kinks = [k for b in self.blocks.values() for k in b.kinks]
        self.worst_block = max(self.blocks.values(),
                               key=lambda b: (SEVERITY[b.verdict], b.refereed_difference, b.difference)).name

    def _compared(self, layout, approx, grad, refereed, error, counted, directional, entrywise):
        """The compared values (approx, grad, refereed, error, grad_error) block after block, and their groups.

        Every entry checked and counted: theta's own arrays, no copies. Otherwise the
        counted entries, and one value per block checked only along a direction.
        """
        if entrywise:
            return approx, grad, refereed, error, self.grad_error, ("starts", layout.starts)
        columns, sizes = [[], [], [], [], []], []
        for block in layout.blocks:
            report = self.blocks[block.name]
            if report.directional is not None and report.n_checked == 0:
                d = directional[block.name]
                values = ([d["numerical_at_epsilon"]], [d["backprop"]], [d["numerical"]], [d["error"]], [0.0])
            else:
                part = slice(block.offset, block.offset + block.size)
                keep = np.flatnonzero(counted[part]) + block.offset
                values = (approx[keep], grad[keep], refereed[keep], error[keep],
                          np.broadcast_to(self.grad_error, grad.shape)[keep])
            for column, value in zip(columns, values):
                column.append(np.asarray(value, dtype=np.float64))
            sizes.append(len(values[0]))
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        return tuple(np.concatenate(c) for c in columns) + (("starts", starts),)

    @property
    def n_parameters(self):
        return self.layout.size

    def to_dict(self):
        """A JSON-ready summary (no arrays of theta's size); NaN and inf become None."""
        return {"difference": _finite_or_none(self.difference),
                "refereed_difference": _finite_or_none(self.refereed_difference),
                "resolution": _finite_or_none(self.resolution), "verdict": self.verdict,
                "worst_block": self.worst_block, "thresholds": list(self.thresholds), "epsilon": self.epsilon,
                "method": self.method, "mode": self.mode, "n_parameters": self.n_parameters,
                "n_checked": int(self.checked.sum()), "n_kinks": len(self.kinks),
                "include_kinks": self.include_kinks, "cost": _finite_or_none(self.cost),
                "seconds": self.seconds, "referee": self.referee, "note": self.note(),
                "blocks": {name: b.to_dict() for name, b in self.blocks.items()}}

    def to_json(self, **kwargs):
        kwargs.setdefault("allow_nan", False)
        return json.dumps(self.to_dict(), **kwargs)

    def note(self):
        """One line on what the referee found, or None when nothing was doubtful."""
        r = self.referee
        if not r:
            return None
        name = self._entry_name(r["example_index"])
        how = "Richardson from step" if r["example_richardson"] else "step"
        at = (f"{name}: {how} {r['example_step']:.3g} gives {r['example_value']:.9e} vs backprop "
              f"{r['example_grad']:.9e}, +- {r['example_error']:.2g}")
        n = r["n_refereed"]
        if r["n_persistent"] and self.verdict in (SUSPICIOUS, BUG):
            return (f"Referee: {n} doubtful entries evaluated again at {len(r['steps'])} steps; the disagreement "
                    f"persists in {r['n_persistent']} ({at}): refereed difference {self.refereed_difference:.3e}, "
                    f"so it is in backprop.")
        if r["n_unresolved"]:
            return (f"Referee: {n} entries evaluated again at steps {r['steps'][0]:.3g} to {r['steps'][-1]:.3g}; "
                    f"J could not resolve {r['n_unresolved']} of them at any step ({name}): inconclusive there.")
        if self.verdict == INCONCLUSIVE:
            return (f"Referee: {n} entries evaluated again at steps {r['steps'][0]:.3g} to {r['steps'][-1]:.3g}; "
                    f"the finest resolution J allows is {self.resolution:.1e} ({at}): too coarse to tell.")
        kinks = f", {r['n_kinks_found']} of them kinks" if r["n_kinks_found"] else ""
        return (f"Referee: {n} doubtful entries evaluated again{kinks}; the disagreement shrinks below what "
                f"matters at a better-conditioned step ({at}): it was numerical. Refereed difference "
                f"{self.refereed_difference:.3e} vs {self.difference:.3e} at epsilon {self.epsilon:g}.")

    def _entry_name(self, index):
        name, row, column = self.layout.locate(int(index))
        return f"{name}[{row}]" if len(self.blocks[name].shape) < 2 else f"{name}[{row}, {column}]"

    def _rows(self):
        for b in self.blocks.values():
            checked = "direction" if b.directional is not None and b.n_checked == 0 else str(b.n_checked)
            if b.worst:
                w = b.worst[0]
                value = w["refereed"] if w["refereed"] is not None else float("nan")
                worst = f"({w['row']}, {w['column']}): {w['grad']: .6e} vs {value: .6e}"
            elif b.directional is not None:
                num = b.directional["numerical"]
                worst = f"u.dtheta {b.directional['backprop']: .6e} vs {num if num is not None else float('nan'): .6e}"
            else:
                worst = ""
            yield (b.name, "x".join(map(str, b.shape)), checked, f"{b.difference:.3e}",
                   f"{b.refereed_difference:.3e}", f"{b.resolution:.1e}", b.verdict, str(len(b.kinks)), worst)

    def __str__(self):
        low, high = self.thresholds
        head = ("block", "shape", "checked", "difference", "refereed", "resolves", "verdict", "kinks",
                "worst entry (row, col): backprop vs numerical")
        rows = [head] + list(self._rows())
        widths = [max(len(r[k]) for r in rows) for k in range(len(head) - 1)]
        lines = [f"Gradient check of {self.n_parameters:,} parameters ({self.method}, mode {self.mode}, "
                 f"epsilon {self.epsilon:g}, {self.seconds:.3g} s)",
                 f"difference = {self.difference:.3e} at epsilon {self.epsilon:g}, refereed "
                 f"{self.refereed_difference:.3e} (resolves {self.resolution:.1e})  ->  {self.verdict.upper()}",
                 f"   (correct < {low:g} <= suspicious < {high:g} <= bug; inconclusive when the check cannot "
                 f"resolve {low:g})", ""]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        if self.kinks:
            note = "counted" if self.include_kinks else "left out of the verdict"
            kind = "a kink" if self.method == "python loop" else "a relu kink"
            lines.append(f"\n{len(self.kinks)} entries straddle {kind} ({note}).")
        note = self.note()
        if note:
            lines.append("\n" + note)
        if self.verdict == INCONCLUSIVE:
            lines.append(f"\nInconclusive: J could not resolve the gradient to {low:g} at any step tried "
                         f"(best resolution {self.resolution:.1e}). Try another epsilon, or compute J more "
                         f"precisely (float64, no large constant added to it).")
        elif self.verdict != CORRECT:
            lines.append(f"\nLook first at {self.worst_block}: its entries differ most from the numerical gradient.")
        return "\n".join(lines)

    def _repr_html_(self):
        colors = {CORRECT: "#1a7f37", SUSPICIOUS: "#9a6700", BUG: "#cf222e", INCONCLUSIVE: "#57606a"}
        head = ("block", "shape", "checked", "difference", "refereed", "resolves", "verdict", "kinks", "worst entry")
        cells = "".join(f"<th>{h}</th>" for h in head)
        body = []
        for r in self._rows():
            tds = "".join(f"<td>{html.escape(c)}</td>" if k != 6 else
                          f"<td style='color:{colors[c]};font-weight:bold'>{c}</td>" for k, c in enumerate(r))
            body.append(f"<tr>{tds}</tr>")
        note = self.note()
        return (f"<div><p><b>Gradient check</b> of {self.n_parameters:,} parameters: difference "
                f"{self.difference:.3e}, refereed {self.refereed_difference:.3e} &rarr; "
                f"<b style='color:{colors[self.verdict]}'>{self.verdict}</b>"
                f" (look first at {html.escape(self.worst_block)})</p>"
                + (f"<p>{html.escape(note)}</p>" if note else "") +
                f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")

    def __repr__(self):
        return (f"GradCheckReport(difference={self.difference:.3e}, verdict={self.verdict!r}, "
                f"worst_block={self.worst_block!r})")

"""Report: a gradient check's result as text, HTML and JSON; rendering only.

Every verdict, severity and worst block it shows comes from ``judge``; it
computes none of its own. Imports ``judge`` (and the referee's step bound, for its wording) only.
"""
import functools
import html
import json
import math
from collections import namedtuple

import numpy as np

from .judge import BUG, CORRECT, INCONCLUSIVE, SUSPICIOUS
from ._steps import STEP_BOUND


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def _json_ready(value):
    """value with every float that is NaN or inf replaced by None, in dicts, lists and tuples at any depth."""
    if isinstance(value, dict):
        return {k: _json_ready(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(x) for x in value]
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


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


COLUMNS = ("block", "shape", "checked", "difference", "refereed", "resolution", "verdict", "kinks",
           "worst entry (row, col): backprop vs numerical")
WORDS = ("Words: difference is the notes' ||numerical - backprop|| / (||numerical|| + ||backprop||) at your "
         "epsilon; refereed is that difference once doubtful entries are evaluated again at the step where their "
         "error is smallest, counting only what exceeds that error; resolution is the smallest difference the "
         "check can tell from rounding; a Richardson value combines two steps so that their leading error "
         "cancels.")


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
    kinks : proven kinks (the perturbation crossed a relu kink, or the one-sided slopes
        differ at every small step): judged by the rule for kinks or at a nearby point.
    shape_error : None, or dict (key, shape, expected, update, compared): the gradient had another
        shape than its parameter, a bug whatever its values.
    directional : None, or dict (numerical, backprop, error) of the directional check.
    """

    def __init__(self, name, shape, offset):
        self.name, self.shape, self.offset = name, tuple(shape), offset
        self.n_checked, self.difference, self.verdict = 0, 0.0, CORRECT
        self.refereed_difference, self.resolution = 0.0, 0.0
        self.error_norm, self.kinks, self.directional = 0.0, [], None
        self.shape_error = None  # or {"key", "shape", "expected", "update", "compared"}
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
                "kinks": [list(k) for k in self.kinks], "directional": self.directional,
                "shape_error": _json_ready(self.shape_error)}

    def __repr__(self):
        return f"BlockReport({self.name}, difference={self.difference:.3g}, verdict={self.verdict!r})"


Entries = namedtuple("Entries", ["approx", "grad", "refereed", "error", "grad_error", "kink_mask"])
Entries.__doc__ = """Every entry of theta, (n,) each: the value at epsilon (NaN where not checked one by one),
backprop's, the refereed value and its error bound (NaN / inf where not checked), backprop's own rounding
error ((n,), a float, or None where not needed) and the kinks (bool)."""
Run = namedtuple("Run", ["cost", "epsilon", "thresholds", "include_kinks", "method", "mode", "seconds", "referee",
                         "directional", "kinks", "shapes", "workers", "stopped"], defaults=(None, None))
Run.__doc__ = """How the check ran: J, epsilon, the thresholds, include_kinks, the method and mode, the seconds
it took, and the records of the referee, the directional mode, the kinks and the gradients' shapes (or None),
how many worker processes evaluated a learner's cost (None: this process), and where ``fail_fast`` stopped
the check: {"block": name, "n_checked": entries checked}, or None."""


Findings = namedtuple("Findings", ["diagnosis", "upstream", "notes"])
Findings.__doc__ = """What the numbers say about the blocks that are not correct: {block: ``diagnose.explain``'s
object or None} for every block, the learner's upstream finding (``upstream.locate``) or None, and its notes."""


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
    worst_block : str or None
        The block to look at first; None when the verdict is "correct".
    kinks : list of (block, row, column)
    referee : dict or None
        What the referee did: entries re-evaluated, steps, one example.
    approx, grad : ndarray, shape (n_parameters,)
        Numerical (at the user's epsilon) and backprop gradients in theta
        order; approx is NaN where an entry was not checked one by one.
    refereed, error : ndarray, shape (n_parameters,)
        The values the verdict used and their error bounds (NaN / inf where not checked).
    diagnosis : dict of str -> dict or None
        For every block: None, or for a block that is not correct, the pattern that accounts for the whole
        disagreement within the check's own error: {"pattern", "factor"?, "where"?, "text"} (patterns:
        ``minnet.check.diagnose.PATTERNS``). None also when no simple pattern fits.
    upstream : dict or None
        {"layer", "entry", "text"} when a wrong layer's dW and db follow from the learner's own dZ (their
        gradients dict holds dZ or dA entries): the mistake is in that dZ or above it. None otherwise.
    """

    def __init__(self, layout, entries, verdicts, *, run, findings=None):
        """layout : ``Layout`` of theta; entries : ``Entries``; verdicts : ``judge.Verdicts``; run : ``Run``;
        findings : ``Findings``, or None (nothing was looked at)."""
        self.layout = layout
        findings = findings or Findings({}, None, [])
        self.diagnosis = {b.name: findings.diagnosis.get(b.name) for b in layout.blocks}
        self.upstream, self.upstream_notes = findings.upstream, list(findings.notes)
        self.approx, self.grad = entries.approx, entries.grad
        self.refereed, self.error = entries.refereed, entries.error
        self.kink_mask, self.checked = entries.kink_mask, verdicts.checked
        self.grad_error = 0.0 if entries.grad_error is None else entries.grad_error  # where it was needed
        self.cost, self.epsilon = float(run.cost), float(run.epsilon)
        self.thresholds, self.include_kinks = tuple(run.thresholds), run.include_kinks
        self.method, self.mode, self.seconds = run.method, run.mode, run.seconds
        self.workers = run.workers  # worker processes that evaluated a learner's cost (None: this process)
        self.stopped = run.stopped  # where fail_fast stopped the check, or None
        self.referee = run.referee
        self.kink_record = run.kinks  # how the kinks were judged (None: there were none)
        self.shapes = run.shapes or {}  # blocks whose gradient has another shape than its parameter
        directional = run.directional or {}
        starts = layout.starts
        if self.kink_mask.any():
            kinks = np.flatnonzero(self.kink_mask & self.checked)
            kinks_of = np.split(kinks, np.searchsorted(kinks, starts[1:]))
        else:
            kinks_of = [()] * len(layout.blocks)
        self.blocks = {}
        for block, found in zip(layout.blocks, kinks_of):
            judged = verdicts.blocks[block.name]
            report = BlockReport(block.name, block.shape, block.offset)
            report.n_checked, report.difference, report.verdict = judged.n_checked, judged.difference, judged.verdict
            report.refereed_difference, report.resolution = judged.refereed_difference, judged.resolution
            report.error_norm, report.shape_error = judged.error_norm, judged.shape_error
            report.kinks = [layout.locate(int(k)) for k in found]
            if block.name in directional:
                d = directional[block.name]
                report.directional = {key: _finite_or_none(d[key]) for key in ("numerical", "backprop", "error")}
            if report.n_checked:  # the rows are made when first read: most checks only want the verdict
                report._worst = functools.partial(_worst_rows, block, judged.worst, self.approx, self.grad,
                                                  self.refereed, self.error, self.grad_error)
            self.blocks[block.name] = report
        self.n_compared = verdicts.n_compared
        self.difference, self.refereed_difference = verdicts.difference, verdicts.refereed_difference
        self.resolution, self.error_norm = verdicts.resolution, verdicts.error_norm
        self.verdict, self.worst_block = verdicts.verdict, verdicts.worst_block
        self.kinks = [k for b in self.blocks.values() for k in b.kinks]

    @property
    def n_parameters(self):
        return self.layout.size

    def to_dict(self):
        """A JSON-ready summary (no arrays of theta's size); NaN and inf become None."""
        return {"difference": _finite_or_none(self.difference),
                "refereed_difference": _finite_or_none(self.refereed_difference),
                "resolution": _finite_or_none(self.resolution), "verdict": self.verdict,
                "worst_block": self.worst_block, "thresholds": list(self.thresholds), "epsilon": self.epsilon,
                "method": self.method, "workers": self.workers, "stopped": self.stopped, "mode": self.mode,
                "n_parameters": self.n_parameters,
                "n_checked": int(self.checked.sum()), "n_kinks": len(self.kinks),
                "include_kinks": self.include_kinks, "cost": _finite_or_none(self.cost),
                "seconds": self.seconds, "referee": self.referee, "note": self.note(),
                "kinks_judged": self.kink_record, "upstream": self.upstream, "upstream_notes": self.upstream_notes,
                "blocks": {name: dict(b.to_dict(), diagnosis=self.diagnosis[name])
                           for name, b in self.blocks.items()}}

    def to_json(self, **kwargs):
        """The report as JSON: every NaN and inf, wherever it is, written as null."""
        kwargs.setdefault("allow_nan", False)
        return json.dumps(_json_ready(self.to_dict()), **kwargs)

    def findings_notes(self):
        """One line per block the diagnosis explains (or that no simple pattern fits), then the upstream line."""
        lines = []
        for name, b in self.blocks.items():
            if b.verdict in (SUSPICIOUS, BUG) and b.shape_error is None:
                found = self.diagnosis[name]
                lines.append(f"Diagnosis of {name}: " + (found["text"] if found else
                                                         "no simple pattern (a factor, a sign, a transpose, an L2 "
                                                         "term, one row, column or entry) accounts for the whole "
                                                         "disagreement."))
        if self.upstream:
            lines.append("Upstream: " + self.upstream["text"])
        lines += [f"(upstream test: {note})" for note in self.upstream_notes]
        return lines

    def stopped_note(self):
        """Where ``fail_fast`` stopped the check, or None."""
        if not self.stopped:
            return None
        return (f"fail_fast: stopped after {self.stopped['block']}, the first block with a confirmed bug; "
                f"{self.stopped['n_checked']:,} of {self.n_parameters:,} entries were checked, the blocks after it "
                f"were not.")

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
        steps = (f"at up to {r['n_steps']} steps from {r['steps'][0]:.3g} to {r['steps'][-1]:.3g}" if r["steps"]
                 else "at no step that moves them")
        head = f"Referee: {n} doubtful {'entry' if n == 1 else 'entries'} evaluated again {steps}"
        aside = {  # what became of some of them, where the referee's record counts any
            "n_unmoved": " (epsilon {eps:g} could not move {n} of them: their verdict comes from these steps)",
            "n_beyond": " (epsilon {eps:g} is beyond {bound:g} of the scale of {n} of them, where its difference "
                        "means little: judged at smaller steps)",
            "n_straddled": "; {n} of them disagree by no more than their one-sided slopes do, as at a kink too faint "
                           "to prove: not counted as a disagreement, only as a coarser resolution",
            "n_lonely": "; {n} of them disagree at their best step but at fewer than two steps of their own: not "
                        "counted as a disagreement, only as a coarser resolution",
            "n_one_step": "; {n} of them settled at one better-conditioned step (its error bounded by the step "
                          "4 times larger), the rest on the ladder"}
        for key, phrase in aside.items():
            if r.get(key):
                head += phrase.format(eps=self.epsilon, bound=STEP_BOUND, n=r[key])
        if r["n_persistent"] and self.verdict in (SUSPICIOUS, BUG):
            return (f"{head}; the disagreement persists in {r['n_persistent']} of them ({at}): refereed "
                    f"difference {self.refereed_difference:.3e}, so it is in backprop.")
        nearby = r.get("nearby")
        if nearby and nearby["n_entries"]:
            head += (f"; {nearby['n_entries']} of those J resolved too coarsely here were judged at a nearby point "
                     f"(theta moved by {nearby['move']:g} of its scale in a random direction, epsilon "
                     f"{nearby['epsilon']:.3g}), where they resolve better")
        if r["n_unresolved"]:
            return (f"{head}; J could not resolve {r['n_unresolved']} of them at any step ({name}): "
                    f"inconclusive there, the others agree within their error.")
        if self.verdict == INCONCLUSIVE:
            return (f"{head}; the finest resolution J allows is {self.resolution:.1e} ({at}): too coarse to tell.")
        kinks = r["n_kinks_found"]
        if kinks == n:
            return f"{head}: {'it is a proven kink' if n == 1 else 'all of them are proven kinks'} (see below)."
        rest = f"for the other {n - kinks}" if kinks else "for all of them"
        kinks = f", {kinks} of them proven kinks (see below)" if kinks else ""
        return (f"{head}{kinks}; {rest} the disagreement shrinks below what matters at a "
                f"better-conditioned step ({at}): it was numerical. Refereed difference "
                f"{self.refereed_difference:.3e} vs {self.difference:.3e} at epsilon {self.epsilon:g}.")

    def kink_note(self):
        """One line on the kinks and how each was judged, or None when there were none."""
        k = self.kink_record
        if not k or not k["n_kinks"]:
            return None
        kind = "a relu kink" if self.method != "python loop" else "a kink (one-sided slopes that differ at every step)"
        head = f"{k['n_kinks']} {'entry sits' if k['n_kinks'] == 1 else 'entries sit'} at {kind}"
        if k["counted_as_they_are"]:
            return f"{head}: counted with their centered difference (include_kinks=True)."
        parts = []
        if k["n_between"]:
            parts.append(f"{k['n_between']} right by the rule for kinks (backprop's value lies between the two "
                         f"one-sided slopes)")
        if k["n_nearby"]:
            parts.append(f"{k['n_nearby']} judged at a nearby point where the code is smooth (theta moved by "
                         f"{k['move']:g} of its scale in a random direction, epsilon {k['nearby_epsilon']:.3g})")
        if k["n_unresolved"]:
            parts.append(f"{k['n_unresolved']} could not be judged (still at a kink nearby, or unresolved there): "
                         f"inconclusive")
        return f"{head}: " + "; ".join(parts) + "."

    def shape_notes(self):
        """One line per gradient block whose shape is not its parameter's."""
        lines = []
        for b in self.blocks.values():
            e = b.shape_error
            if e is None:
                continue
            shape, expected = tuple(e["shape"]), tuple(e["expected"])
            line = (f"{e['key']} has shape {shape}, but {b.name} has shape {expected}: a bug whatever its values")
            if e["update"] is None:
                line += f"; the update {b.name} - learning_rate * {e['key']} fails to broadcast"
            elif tuple(e["update"]) != expected:
                line += (f"; the update {b.name} - learning_rate * {e['key']} turns {b.name} into an array of "
                         f"shape {tuple(e['update'])}")
            elif math.prod(shape) != math.prod(expected):
                line += f"; the update broadcasts one value over many entries of {b.name}"
            line += (" (its entries are compared in row-major order)" if e["compared"] else
                     " (its entries cannot be compared)")
            lines.append(line + ".")
        return lines

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
            unjudged = b.n_checked == 0 and b.directional is None  # nothing to show: no 0 beside "inconclusive"
            yield (b.name, "x".join(map(str, b.shape)), checked, "-" if unjudged else f"{b.difference:.3e}",
                   "-" if unjudged else f"{b.refereed_difference:.3e}", "-" if unjudged else f"{b.resolution:.1e}",
                   b.verdict, str(len(b.kinks)), worst)

    def __str__(self):
        rows = [COLUMNS] + list(self._rows())
        widths = [max(len(r[k]) for r in rows) for k in range(len(COLUMNS) - 1)]
        where = "" if self.workers is None else f" on {self.workers} worker process{'es' * (self.workers != 1)}"
        lines = [f"Gradient check of {self.n_parameters:,} parameters ({self.method}{where}, mode {self.mode}, "
                 f"epsilon {self.epsilon:g}, {self.seconds:.3g} s)", self.verdict_sentence(),
                 f"   ({self.legend()})", ""]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        for line in self.shape_notes() + self.findings_notes():
            lines.append("\n" + line)
        for note in (self.note(), self.kink_note(), self.stopped_note()):
            if note:
                lines.append("\n" + note)
        if self.verdict == INCONCLUSIVE:
            lines.append("\n" + self._inconclusive_reason())
        elif self.verdict != CORRECT and self.worst_block is not None:
            why = ("its gradient has the wrong shape" if self.blocks[self.worst_block].shape_error is not None
                   else "its entries differ most from the numerical gradient")
            lines.append(f"\nLook first at {self.worst_block}: {why}.")
        lines.append("\n" + WORDS)
        return "\n".join(lines)

    def verdict_sentence(self):
        """The verdict and the numbers it came from, in one sentence: the report's headline, the CLI's line."""
        low, high = self.thresholds
        said = f"Your difference at epsilon = {self.epsilon:g} is {self.difference:.2e}"
        if self.verdict == CORRECT:
            if self.difference >= low:
                why = (f"; that is rounding: refereed at better-conditioned steps it is "
                       f"{self.refereed_difference:.2e} (the check resolves {self.resolution:.1e}), below {low:g}")
            else:
                why = f", below {low:g} (the check resolves {self.resolution:.1e})"
        elif self.verdict == INCONCLUSIVE:
            why = (f"; at no step tried could the check resolve differences below {low:g} (at best "
                   f"{self.resolution:.1e}), so it cannot tell")
        else:
            band = f"{high:g} or more" if self.verdict == BUG else f"between {low:g} and {high:g}"
            why = f"; refereed, beyond each entry's own error, it is {self.refereed_difference:.2e}: {band}"
        return f"{said}{why}, so: {self.verdict.upper()}."

    def legend(self):
        """What each verdict means, with this check's thresholds."""
        low, high = self.thresholds
        return (f"correct: refereed difference below {low:g}, resolved below {low:g}; suspicious: below {high:g}; "
                f"bug: {high:g} or more; inconclusive: not resolved below {low:g}")

    def _inconclusive_reason(self):
        """Why the check could not decide, and a remedy only where one would help."""
        low = self.thresholds[0]
        k = self.kink_record or {}
        if k.get("n_unresolved"):
            return ("Inconclusive: some kinks could not be judged, at the point or nearby; the other entries say "
                    "nothing against backprop there.")
        if not np.isfinite(self.resolution) and not (self.referee or {}).get("steps"):
            return ("Inconclusive: no step could move the parameters in question, so nothing about them could be "
                    "judged.")
        return (f"Inconclusive: J could not resolve the gradient to {low:g} at any step tried (best resolution "
                f"{self.resolution:.1e}), from the smallest steps, where J's rounding swamps the difference, to "
                f"the largest the parameters' scale allows. Computing J more precisely would help (float64, no "
                f"large constant added to it, sums of many terms in a stable order); another epsilon would not.")

    def _repr_html_(self):
        """The report in a notebook: the verdict and its numbers, the blocks' table with labelled columns,
        the notes and a legend."""
        colors = {CORRECT: "#1a7f37", SUSPICIOUS: "#9a6700", BUG: "#cf222e", INCONCLUSIVE: "#57606a"}
        cells = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in COLUMNS)
        body = []
        for r in self._rows():
            tds = "".join(f"<td>{html.escape(c)}</td>" if k != 6 else
                          f"<td style='color:{colors[c]};font-weight:bold'>{c}</td>" for k, c in enumerate(r))
            body.append(f"<tr>{tds}</tr>")
        notes = [*self.shape_notes(), *self.findings_notes(), self.note(), self.kink_note(), self.stopped_note()]
        if self.verdict == INCONCLUSIVE:
            notes.append(self._inconclusive_reason())
        elif self.verdict != CORRECT and self.worst_block is not None:
            notes.append(f"Look first at {self.worst_block}.")
        paragraphs = "".join(f"<p>{html.escape(n)}</p>" for n in notes if n)
        return (f"<div><p><b>Gradient check</b> of {self.n_parameters:,} parameters ({html.escape(self.method)}, "
                f"{self.seconds:.3g} s): <b style='color:{colors[self.verdict]}'>{self.verdict}</b></p>"
                f"<p>{html.escape(self.verdict_sentence())}</p>"
                f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>{paragraphs}"
                f"<p style='font-size:smaller'>Verdicts: {html.escape(self.legend())}.<br>"
                f"{html.escape(WORDS)}</p></div>")

    def __repr__(self):
        return (f"GradCheckReport(difference={self.difference:.3e}, verdict={self.verdict!r}, "
                f"worst_block={self.worst_block!r})")

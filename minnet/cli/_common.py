"""What the ``minnet`` commands share: CliError and the exit statuses, the argument types, checks of
output files and plots before any work (and of their writing after it), the one-line summary of a check, JSON.
Imports no command module and no other part of the CLI; of minnet only ``check.judge`` (for its verdict
order) and ``training`` (its divergence rule) at import time, and matplotlib only inside the functions that
need it."""
import argparse
import difflib
import functools
import io
import json
import math
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np

from ..check import judge
from ..training import GROWTH

PROG = "minnet"
# The exit statuses, all of them: the one place they are defined and documented (EXIT_STATUS_HELP).
EXIT_STATUS = {"correct": 0, "suspicious": 1, "bug": 3, "inconclusive": 4}  # verdicts, and nothing else
USAGE_ERROR = 2       # argparse's convention: a bad argument, option or file, or an output that cannot be written
USER_CODE_ERROR = 5   # the user's code raised, exited (sys.exit, exit, quit) or lost the worker running it
TRAINING_DIVERGED = 6  # minnet train: the cost became NaN or inf, or grew 1000-fold (TrainingDiverged)
INTERNAL_ERROR = 70   # EX_SOFTWARE of sysexits.h: minnet itself failed; a bug to report, with the traceback
INTERRUPTED = 130     # 128 + SIGINT, as a shell reports it
BROKEN_PIPE = 141     # 128 + SIGPIPE: the reader of the output went away
ERROR_STATUSES = (USAGE_ERROR, USER_CODE_ERROR, TRAINING_DIVERGED, INTERNAL_ERROR, INTERRUPTED, BROKEN_PIPE)
assert len(set(ERROR_STATUSES) | set(EXIT_STATUS.values())) == len(ERROR_STATUSES) + len(EXIT_STATUS)
REPORT_BUG = "this is a bug in minnet: please report it to minnet's maintainers with the traceback"
EXIT_STATUS_HELP = f"""\
exit status:
  {EXIT_STATUS['correct']}    correct: backprop agrees with the numerical gradient
  {EXIT_STATUS['suspicious']}    suspicious: the difference lies between the two thresholds; look at the blocks
  {USAGE_ERROR}    usage error: a bad argument, a file that cannot be checked, or an output file that
       cannot be written (nothing was checked, or its result was not written)
  {EXIT_STATUS['bug']}    bug: backprop is wrong; the report names the block to look at first
  {EXIT_STATUS['inconclusive']}    inconclusive: the check could not reach a verdict (see the report)
  {USER_CODE_ERROR}    your code failed: it raised an exception or called sys.exit(), exit() or quit()
       (the message names the function, your file and line), or a worker process running it died
  {TRAINING_DIVERGED}    (minnet train) training diverged: the cost became NaN or inf, or grew {GROWTH:g}-fold
  {INTERNAL_ERROR}   minnet itself failed, a bug in minnet: it prints the traceback to report to its maintainers
  {INTERRUPTED}  interrupted (Ctrl-C)
  {BROKEN_PIPE}  the reader of the output went away (a closed pipe)
"""


def exit_status_line(success="0 success", extra=""):
    """The statuses of a command that reaches no verdict of its own, as a paragraph of its help."""
    text = (f"Exit status: {success}; {USAGE_ERROR} usage error; {INTERNAL_ERROR} a bug in minnet (it prints the "
            f"traceback to report); {INTERRUPTED} interrupted; {BROKEN_PIPE} closed pipe. {extra}").strip()
    glued = re.sub(r"(\b\d+) ", "\\1\0", text)  # a status stays on the line of its meaning
    return textwrap.fill(glued, width=100, break_on_hyphens=False).replace("\0", " ")


METHODS = ("auto", "segment", "incremental", "full")  # as minnet.gradient_check
PLOT_HINT = 'pip install "minnet[plot]"'
DASK_HINT = 'pip install "minnet[dask]"'
FORMATTER = argparse.RawDescriptionHelpFormatter  # descriptions and epilogs keep their own line breaks


class CliError(Exception):
    """A problem to report as ``minnet: error: <message>`` with exit status ``status`` (a usage error)."""
    status = USAGE_ERROR


class UserCodeError(CliError):
    """The user's code raised or exited: ``minnet: error: <message>`` (naming the function, file and line)
    with exit status USER_CODE_ERROR."""
    status = USER_CODE_ERROR


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (with a "did you mean") instead of usage + message +
    exit, and takes no abbreviation of an option (``--js`` is not ``--json``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        choice = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)", message)
        hint = did_you_mean(choice[1], re.findall(r"'(.*?)'", choice[2])) if choice else ""
        raise CliError(f"{message}{hint} (see '{self.prog} --help')")

    def option_strings(self):
        """Every option this parser takes, as spelled on the command line."""
        return [option for action in self._actions for option in action.option_strings]


def did_you_mean(word, options):
    """' (did you mean --json?)' for the option closest to a mistyped ``word``, or ''."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def exit_status(verdict):
    """The exit status of ``minnet check`` for a verdict: correct 0, suspicious 1, bug 3, inconclusive 4."""
    try:
        return EXIT_STATUS[verdict]
    except KeyError:
        raise ValueError(f"unknown verdict {verdict!r}; expected one of {', '.join(EXIT_STATUS)}") from None


def worse(*verdicts):
    """The worst of some verdicts, in the order of ``minnet.check.judge.SEVERITY`` (bug the worst)."""
    for verdict in verdicts:
        exit_status(verdict)  # an unknown verdict is an error, not a guess
    return max(verdicts, key=judge.SEVERITY.get)


# ----------------------------------------------------------- argument types
def int_list(text, what):
    """'20,8' -> [20, 8]: comma-separated positive integers; ``what`` names the option in messages."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError(f"{what} must not be empty")
    sizes = []
    for part in text.split(","):
        part = part.strip()
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be comma-separated positive integers like '20,8', got {text!r}") from None
        if size < 1:
            raise argparse.ArgumentTypeError(f"{what} must be positive integers, got {size} in {text!r}")
        sizes.append(size)
    return sizes


def layer_dims(text):
    """'2,20,3,1' -> [2, 20, 3, 1]: all layer sizes, input to output, in every command."""
    sizes = int_list(text, "layers")
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"layers needs at least an input and an output size like '2,20,1', "
                                         f"got {text!r}")
    return sizes


def _number(kind, *, minimum=None, maximum=None, low_open=False, what="a number"):
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if low_open else value < minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {text}")
        return value
    convert.__name__ = what
    return convert


positive_int = _number(int, minimum=1, what="a positive integer")
nonnegative_int = _number(int, minimum=0, what="a non-negative integer")
positive_float = _number(float, minimum=0.0, low_open=True, what="a positive number")
nonnegative_float = _number(float, minimum=0.0, what="a non-negative number")
probability = _number(float, minimum=0.0, maximum=1.0, low_open=True, what="a number in (0, 1]")


def jobs_count(text):
    """An argument type: joblib's n_jobs, a nonzero integer (1 in this process, N in N processes, -1 on every
    core, -2 on all but one, ...)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes like 2 (-1: every core), "
                                         f"got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0: 1 runs in this process, N in N processes, -1 on every core")
    return value


def name_list(options, what):
    """An argument type: 'a,b' -> ['a', 'b'], each one of ``options``, repeats dropped."""
    def convert(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"give at least one {what}")
        for name in names:
            if name not in options:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r}; choose from {', '.join(options)}")
        return list(dict.fromkeys(names))
    convert.__name__ = what
    return convert


def fraction(text):
    """An argument type: a number in [0, 1)."""
    value = _number(float, minimum=0.0, what="a fraction in [0, 1)")(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


# ------------------------------------------------------- output and files
def show_progress(args):
    """Progress bars only on a terminal and without --quiet."""
    return sys.stderr.isatty() and not getattr(args, "quiet", False)


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def output_folder(folder, option):
    """Create ``folder`` if missing and make sure a file can be written in it, before any work."""
    if not folder.strip():
        raise CliError(f"{option} needs a folder, like plots (an empty one was given)")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise CliError(f"{option}: {folder!r} is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{option}: cannot create the folder {folder!r}: {exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CliError(f"{option}: cannot write into the folder {folder!r}: {exc.strerror or exc}") from None
    return folder


def _not_a_folder(path, option, example):
    """Refuse an empty path, and a folder (one that exists, or a name ending in a separator) as a file's."""
    if not path.strip():
        raise CliError(f"{option} needs a file name, like {example} (an empty one was given)")
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise CliError(f"{option}: {path!r} is a folder; give a file name, like "
                       f"{os.path.join(path.rstrip('/' + os.sep) or path, example)!r}")


def output_file(path, option, *, example="model.npz"):
    """Check an output file before any work: a name, not a folder, not read-only; its folder is created if
    missing (an error if it cannot be)."""
    _not_a_folder(path, option, example)
    output_folder(os.path.dirname(path) or ".", option)
    if os.path.exists(path) and not os.path.isfile(path):
        raise CliError(f"{option}: {path!r} exists and is not a regular file; give a file name")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"{option}: {path!r} exists and is not writable")
    return path


def plot_path(path, option):
    """Check a plot's target before any work: a file name in a format matplotlib can write here (a name
    without an extension gets .png, as matplotlib would add)."""
    if path is None:
        return None
    _not_a_folder(path, option, "plot.png")
    need_matplotlib(option)
    extension = os.path.splitext(path)[1]
    if not extension:
        path += ".png"
    else:
        problem = _cannot_save(extension[1:].lower())
        if problem is not None:
            working = [name for name in _formats() if _cannot_save(name) is None]
            choice = f"use one of {', '.join('.' + name for name in working)}" if working else "nor any other format"
            raise CliError(f"{option}: matplotlib cannot write {extension!r} files{problem}; {choice}")
    return output_file(path, option, example="plot.png")


def _formats():
    from matplotlib.backend_bases import FigureCanvasBase
    return sorted(FigureCanvasBase.get_supported_filetypes())


@functools.lru_cache(maxsize=None)
def _cannot_save(name):
    """None if matplotlib can save a small figure with text as ``name`` here, else ' (why)' or '' (not a format
    it knows). The pgf format, say, needs LaTeX to measure text: this finds that out before any work."""
    if name not in _formats():
        return ""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(1, 1), layout="constrained")
    FigureCanvasAgg(figure)
    figure.text(0.5, 0.5, "minnet")
    try:
        figure.savefig(io.BytesIO(), format=name, dpi=10)
    except Exception as exc:  # a writer's missing program or library: any error means it cannot be used
        reason = str(exc).strip().splitlines()
        return f" here ({type(exc).__name__}: {reason[0] if reason else 'no reason given'})"
    return None


@contextmanager
def writing(path, option):
    """Turn a failed write of ``path`` (a full disk, a folder gone) into a CliError that names the path and the
    reason; a file this write created is not left half written."""
    existed = os.path.exists(path)
    try:
        yield
    except OSError as exc:
        if not existed:
            try:
                os.remove(path)
            except OSError:
                pass
        reason = str(exc.strerror or exc)
        raise CliError(f"{option}: {reason}" if repr(path) in reason else
                       f"{option}: could not write {path!r}: {reason}") from None


def need_matplotlib(option):
    if not have_matplotlib():
        raise CliError(f"{option} needs matplotlib: {PLOT_HINT}")


def percent(x):
    return f"{100 * x:.2f} %"


def summary(report):
    """A check's report in one line: the verdict with the numbers it came from and, unless correct, the block
    to look at."""
    line = report.verdict_sentence()
    if report.verdict != "correct" and report.worst_block is not None:
        line += f" Look first at {report.worst_block}."
    return line


# ----------------------------------------------------------------------- JSON
def json_safe(value, *, path="", notes=None):
    """``value`` with every NaN or inf replaced by None; ``notes`` collects where and what they were."""
    if isinstance(value, Mapping):
        return {key: json_safe(item, path=f"{path}.{key}" if path else str(key), notes=notes)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, path=f"{path}[{k}]", notes=notes) for k, item in enumerate(value)]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        if notes is not None:
            notes[path] = str(float(value))
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def json_dumps(result):
    """Valid JSON for a result dict: NaN and inf become null, listed under "non_finite" with a note."""
    notes = {}
    safe = json_safe(result, notes=notes)
    if notes:
        safe["non_finite"] = notes
        safe["note"] = "NaN and inf are not JSON: they are written as null; non_finite lists where and which"
    return json.dumps(safe, indent=2, allow_nan=False)

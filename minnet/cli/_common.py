"""What the ``minnet`` commands share: CliError and the exit statuses, the argument types, checks of
output files and plots before any work, the one-line summary of a check, and JSON writing.
Imports no command module and no other part of the CLI; of minnet only ``check.judge`` at import
time (for its verdict order), and matplotlib only inside the functions that need it."""
import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping

import numpy as np

from ..check import judge

PROG = "minnet"
USAGE_ERROR = 2      # argparse's convention: a bad argument, option or file; nothing was checked
INTERRUPTED = 130    # 128 + SIGINT, as a shell reports it
BROKEN_PIPE = 141    # 128 + SIGPIPE: the reader of the output went away
EXIT_STATUS = {"correct": 0, "suspicious": 1, "bug": 3, "inconclusive": 4}
EXIT_STATUS_HELP = """\
exit status:
  0    correct: backprop agrees with the numerical gradient
  1    suspicious: the difference lies between the two thresholds; look at the blocks
  2    usage error: a bad argument, or a file that cannot be checked (nothing was checked)
  3    bug: backprop is wrong; the report names the block to look at first
  4    inconclusive: the check could not reach a verdict (see the report)
  130  interrupted (Ctrl-C)
"""
METHODS = ("auto", "segment", "incremental", "full")  # as minnet.gradient_check
PLOT_HINT = 'pip install "minnet[plot]"'
DASK_HINT = 'pip install "minnet[dask]"'
FORMATTER = argparse.RawDescriptionHelpFormatter  # descriptions and epilogs keep their own line breaks


class CliError(Exception):
    """A problem to report as ``minnet: error: <message>`` with exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line instead of usage + message + exit."""

    def error(self, message):
        raise CliError(f"{message} (see '{self.prog} --help')")


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
    folder = folder or "."
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


def output_file(path, option):
    """Check an output file before any work: not a folder, not read-only; its folder is created if missing."""
    if os.path.isdir(path):
        raise CliError(f"{option}: {path!r} is a folder; give a file name")
    output_folder(os.path.dirname(path), option)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"{option}: {path!r} exists and is not writable")
    return path


def plot_path(path, option):
    """Check a plot's target; a name without an extension gets .png (as matplotlib would add)."""
    if path is None:
        return None
    need_matplotlib(option)
    extension = os.path.splitext(path)[1]
    if not extension:
        path += ".png"
    else:
        from matplotlib.backend_bases import FigureCanvasBase
        formats = FigureCanvasBase.get_supported_filetypes()
        if extension[1:].lower() not in formats:
            raise CliError(f"{option}: matplotlib cannot write {extension!r} files; use .png, .pdf or .svg")
    return output_file(path, option)


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

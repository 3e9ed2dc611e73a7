"""The ``minnet`` command line: ``demo``, ``check``, ``train`` and ``bench``.

Run ``minnet --help`` or ``minnet COMMAND --help`` for the options and
examples.  Exit status: 0 on success, 2 for a usage error (one line on stderr,
no traceback), 130 when interrupted; ``minnet check`` gives every verdict its
own status (``EXIT_STATUS``): 0 correct, 1 suspicious, 3 bug, 4 inconclusive.
"""
import argparse
import functools
import importlib
import importlib.util
import json
import math
import os
import signal
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping
from contextlib import nullcontext, redirect_stdout

import numpy as np

PROG = "minnet"
USAGE_ERROR = 2      # argparse's convention: a bad argument, option or file; nothing was checked
INTERRUPTED = 130    # 128 + SIGINT, as a shell reports it
BROKEN_PIPE = 141    # 128 + SIGPIPE: the reader of the output went away
EXIT_STATUS = {"correct": 0, "suspicious": 1, "bug": 3, "inconclusive": 4}
SEVERITY = ("correct", "suspicious", "inconclusive", "bug")  # the demo reports the worse of two checks
EXIT_STATUS_HELP = """\
exit status:
  0    correct: backprop agrees with the numerical gradient
  1    suspicious: the difference lies between the two thresholds; look at the blocks
  2    usage error: a bad argument, or a file that cannot be checked (nothing was checked)
  3    bug: backprop is wrong; the report names the block to look at first
  4    inconclusive: the check could not reach a verdict (see the report)
  130  interrupted (Ctrl-C)
"""
HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid")
OUTPUTS = ("sigmoid", "softmax", "linear")
OPTIMIZERS = ("gd", "momentum", "adam")
METHODS = ("auto", "segment", "incremental", "full")  # as minnet.gradient_check
MODES = ("full", "directional")
DATASETS = ("flower", "moons", "circles", "spirals", "xor", "blobs", "digits")
PLOT_HINT = 'pip install "minnet[plot]"'

# The demo's settings: tuned so that training accuracy on the flower data
# stays >= 95 % across initialization seeds (measured: 95.0-96.3 % for seeds 0-5).
DEMO = {"m": 400, "layer_dims": [2, 32, 16, 1], "hidden": "relu", "output": "sigmoid", "lambd": 0.1,
        "keep_prob": 0.9, "optimizer": "adam", "learning_rate": 0.01, "epochs": 5000, "seed": 0}

# check of a minnet network: the defaults of the options that only apply to it (None: not given).
CHECK_NETWORK = {"layers": [2, 20, 3, 1], "hidden": "relu", "output": "sigmoid", "lambd": 0.0, "keep_prob": 1.0,
                 "init": "he", "examples": 64, "method": "auto", "threads": None, "dropout_seed": 0,
                 "include_kinks": False}
# check of a user's file: the names it defines (one of the two conventions).
OWN_NAMES = ("cost_fn", "grads_fn", "parameters")
COURSE_NAMES = ("forward_propagation_n", "backward_propagation_n", "X", "Y", "parameters")

# train: the hidden sizes when --layers is not given.
TRAIN_HIDDEN = [20, 8]

# bench: (layer dims, examples); relu hidden, softmax output, lambd 0.7, X standard normal.
WORKLOADS = {"digits": ([64, 32, 16, 10], 256), "medium": ([256, 64, 32, 10], 128),
             "mnist": ([784, 128, 64, 10], 64)}
SLOW_ABOVE = 20_000      # parameters: above this the slow runs need --full-baselines
ESTIMATE_SAMPLE = 2_000  # entries of the NumPy loop timed to estimate a skipped run
REPEAT_LIMIT = 5.0       # seconds: a run longer than this is not repeated
TORCH_LIMIT = 50_000     # parameters: torch.autograd.gradcheck on mnist exhausted 24 GB in the benchmarks
BENCH_EXAMPLES = 64      # m of a --layers workload unless --examples
PEERS = {"numpy": "numpy loop", "torch": "torch gradcheck", "jax": "jax vmap fd"}  # baseline -> its rows' method
SLOW_SKIPPED = "skipped (slow; add --full-baselines)"


class CliError(Exception):
    """A problem to report as ``minnet: error: <message>`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
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
    """The worst of some verdicts: bug, then inconclusive, suspicious, correct."""
    for verdict in verdicts:
        exit_status(verdict)  # an unknown verdict is an error, not a guess
    return max(verdicts, key=SEVERITY.index)


# ----------------------------------------------------------- argument types
def _int_list(text, what):
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
    sizes = _int_list(text, "layers")
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"layers needs at least an input and an output size like '2,20,1', "
                                         f"got {text!r}")
    return sizes


def _number(kind, minimum=None, maximum=None, low_open=False, what="a number"):
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


def _choices(options, what):
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


def _fraction(text):
    value = _number(float, minimum=0.0, what="a fraction in [0, 1)")(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


# ------------------------------------------------------------------ helpers
def _progress(args):
    """Progress bars only on a terminal and without --quiet."""
    return sys.stderr.isatty() and not getattr(args, "quiet", False)


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _output_folder(folder, option):
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


def _output_file(path, option):
    """Check an output file before any work: not a folder, not read-only; its folder is created if missing."""
    if os.path.isdir(path):
        raise CliError(f"{option}: {path!r} is a folder; give a file name")
    _output_folder(os.path.dirname(path), option)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"{option}: {path!r} exists and is not writable")
    return path


def _plot_path(path, option):
    """Check a plot's target; a name without an extension gets .png (as matplotlib would add)."""
    if path is None:
        return None
    _need_matplotlib(option)
    extension = os.path.splitext(path)[1]
    if not extension:
        path += ".png"
    else:
        from matplotlib.backend_bases import FigureCanvasBase
        formats = FigureCanvasBase.get_supported_filetypes()
        if extension[1:].lower() not in formats:
            raise CliError(f"{option}: matplotlib cannot write {extension!r} files; use .png, .pdf or .svg")
    return _output_file(path, option)


def _need_matplotlib(option):
    if not _have_matplotlib():
        raise CliError(f"{option} needs matplotlib: {PLOT_HINT}")


def _percent(x):
    return f"{100 * x:.2f} %"


def _summary(report):
    line = f"difference = {report.difference:.3e}  ->  {report.verdict.upper()}"
    if report.verdict != "correct":
        line += f"  (look first at {report.worst_block})"
    return line


def _dataset(name, examples, seed):
    from . import datasets
    kwargs = {}
    if name == "digits":
        if examples is not None:
            raise CliError("--examples does not apply to the digits dataset (it has 1,797 images)")
    else:
        kwargs["seed"] = seed
        if examples is not None:
            kwargs["m"] = examples
    try:
        return datasets.load(name, **kwargs)
    except ImportError as exc:
        raise CliError(str(exc)) from None


# --------------------------------------------------------------------- demo
def cmd_demo(args):
    from . import Network, datasets, gradient_check
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out: {out!r} is a file, not a folder")
    if _have_matplotlib():  # without it no file is written, so no folder is made
        _output_folder(out, "--out")
    quiet, progress = args.quiet, _progress(args)
    cfg = dict(DEMO, epochs=args.epochs)
    start = time.perf_counter()
    X, Y = datasets.flower(m=cfg["m"], seed=cfg["seed"])
    net = Network(cfg["layer_dims"], hidden=cfg["hidden"], output=cfg["output"], lambd=cfg["lambd"],
                  keep_prob=cfg["keep_prob"], seed=cfg["seed"])
    print(f"minnet demo: check, train and check again on the flower data ({X.shape[1]} points, 2 classes)")
    print(f"network {cfg['layer_dims']}: {cfg['hidden']} hidden layers, {cfg['output']} output, "
          f"L2 lambd={cfg['lambd']}, dropout keep_prob={cfg['keep_prob']}, {net.layout.size:,} parameters")

    print("\n1. Gradient check at initialization, on all {} points. Dropout uses fixed masks "
          "(dropout_seed=0),\n   the deterministic check mode: fresh masks would make J random.".format(X.shape[1]),
          flush=True)
    t = time.perf_counter()
    before = gradient_check(net, X, Y, dropout_seed=0, progress=None if progress else False)
    seconds = time.perf_counter() - t
    print(_summary(before) if quiet else before)
    if seconds > 3.0:
        print(f"   ({seconds:.1f} s: the first run compiles minnet's Numba kernels; later runs load them from "
              f"the cache)")

    batch = "full batch" if cfg.get("batch_size") is None else f"mini-batches of {cfg['batch_size']}"
    optimizer = {"adam": "Adam", "gd": "gradient descent", "momentum": "momentum"}[cfg["optimizer"]]
    print(f"\n2. Training: {optimizer}, learning rate {cfg['learning_rate']}, {cfg['epochs']:,} epochs, "
          f"{batch}, dropout on", flush=True)
    t = time.perf_counter()
    history = net.fit(X, Y, optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"], epochs=cfg["epochs"],
                      seed=cfg["seed"], progress=progress)
    seconds = time.perf_counter() - t
    if history["cost"]:
        print(f"   cost {history['cost'][0]:.4f} -> {history['cost'][-1]:.4f} in {seconds:.2f} s")

    print("\n3. Gradient check after training", flush=True)
    after = gradient_check(net, X, Y, dropout_seed=0, progress=None if progress else False)
    print(_summary(after) if quiet else after)

    accuracy = net.accuracy(X, Y)
    right = int(round(accuracy * X.shape[1]))
    print(f"\n4. Training accuracy: {_percent(accuracy)} ({right} of {X.shape[1]} points)")

    history["checks"] = {0: before, cfg["epochs"]: after}
    if _have_matplotlib():
        from . import plots
        paths = [os.path.join(out, f"minnet_demo_{name}.png") for name in ("cost", "boundary", "check")]
        if history["cost"]:
            plots.plot_cost(history, path=paths[0], title="Flower data: training cost")
        else:
            paths.pop(0)
        plots.plot_decision_boundary(net, X, Y, path=paths[-2], title=f"Flower data after training: "
                                     f"{accuracy:.1%} of {X.shape[1]} points right")
        plots.plot_check(before, path=paths[-1], title=f"Gradient check at initialization: {before.verdict}")
        print("\nPlots: " + ", ".join(paths))
    else:
        print(f"\nPlots: skipped, matplotlib is not installed. To get them: {PLOT_HINT}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s.")
    status = exit_status(worse(before.verdict, after.verdict))
    if status:
        print(f"{PROG} demo: a gradient check did not pass (exit status {status})", file=sys.stderr)
    return status


# -------------------------------------------------------------------- check
def synthetic_data(layer_dims, output, m, seed):
    """Standard-normal X (n_0, m) and labels that suit the output activation."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((layer_dims[0], m))
    n_out = layer_dims[-1]
    if output == "sigmoid":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(np.float64)
    elif output == "softmax":
        Y = rng.integers(0, n_out, size=m)
    else:
        Y = rng.standard_normal((n_out, m))
    return X, Y


def cmd_check(args):
    args.plot = _plot_path(args.plot, "--plot")
    given = [name for name in CHECK_NETWORK if getattr(args, name) not in (None, False)]
    if args.target is not None:
        if given:
            option = "--" + given[0].replace("_", "-")
            raise CliError(f"{option} applies to minnet's own networks, not to a file's functions "
                           f"(checking {args.target})")
        # The user's prints must not spoil the JSON on stdout.
        with redirect_stdout(sys.stderr) if args.json else nullcontext():
            report = _check_target(args)
    else:
        for name, default in CHECK_NETWORK.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        report = _check_network(args)
    if args.json:
        print(json_dumps(report.to_dict()))
    elif args.quiet:
        print(_summary(report))
    else:
        print(report)
    if args.plot:
        from . import plots
        plots.plot_check(report, path=args.plot)
        if not args.json and not args.quiet:
            print(f"\nPlot: {args.plot}")
    return exit_status(report.verdict)


def _check_network(args):
    from . import Network, gradient_check
    net = Network(args.layers, hidden=args.hidden, output=args.output, lambd=args.lambd,
                  keep_prob=args.keep_prob, init=args.init, seed=args.seed)
    X, Y = synthetic_data(args.layers, args.output, args.examples, args.seed)
    return gradient_check(net, X, Y, epsilon=args.epsilon, method=args.method, mode=args.mode,
                          sample=args.sample, dropout_seed=args.dropout_seed, threads=args.threads,
                          include_kinks=args.include_kinks, seed=args.seed,
                          progress=None if _progress(args) and not args.json else False)


def _check_target(args):
    from . import check_gradients
    undo = []  # what importing the user's code added to sys.path and sys.modules
    try:
        names, label = load_target(args.target, undo)
        cost_fn, grads_fn, parameters = backprop_from(names, label)
        return check_gradients(cost_fn, grads_fn, parameters, epsilon=args.epsilon, mode=args.mode,
                               sample=args.sample, seed=args.seed,
                               progress=None if _progress(args) and not args.json else False)
    finally:
        for step in reversed(undo):
            step()


# ------------------------------------------------------ checking a user's file
def load_target(target, undo):
    """Import ``FILE.py``, ``FILE.py:NAME``, ``MODULE`` or ``MODULE:NAME`` and return its names.

    This runs the user's code (the module's top level, and NAME() if given); nothing
    else in minnet executes anything from a file.

    Parameters
    ----------
    target : str
        What to import. With ``:NAME``, NAME must be a function returning a dict or
        namespace with the names (or be such a dict or namespace itself).
    undo : list
        Gets the callables that take the user's folder off ``sys.path`` (it is put
        there so that the file can import its neighbours) and its module out of
        ``sys.modules``; the caller calls them when done.

    Returns
    -------
    names : Mapping
        The names the target defines.
    label : str
        How to name the target in messages.
    """
    path, colon, attribute = target.rpartition(":")
    if not (colon and path and attribute.isidentifier()):
        path, attribute = target, None
    is_file = path.endswith(".py") or os.sep in path or "/" in path or os.path.isfile(path)
    if is_file:
        module = _import_file(path, undo)
    else:
        module = _import_module(path, undo)
    label = path
    if attribute is None:
        return vars(module), label
    if not hasattr(module, attribute):
        raise CliError(f"{label} defines no {attribute!r}")
    label = f"{path}:{attribute}"
    found = getattr(module, attribute)
    if callable(found):
        try:
            found = found()
        except Exception as exc:  # the user's code: report it, minnet's own errors are not caught here
            raise CliError(f"{label}() raised {_describe(exc)}") from None
    if isinstance(found, Mapping):
        return found, label
    if hasattr(found, "__dict__") and not isinstance(found, type):
        return vars(found), label
    raise CliError(f"{label} must be (or return) a dict or namespace with {', '.join(OWN_NAMES)} or the course's "
                   f"{', '.join(COURSE_NAMES)}; got {type(found).__name__}")


def _import_file(path, undo):
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CliError(f"{path} is a folder; give a .py file or MODULE:NAME")
    if not path.endswith(".py"):
        raise CliError(f"{path} is not a .py file (a notebook: save its code as a .py file first)")
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem if stem.isidentifier() and stem not in sys.modules else "_minnet_check_target"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    _on_sys_path(os.path.dirname(os.path.abspath(path)), undo)
    sys.modules[name] = module  # as an import does (dataclasses, pickle and typing look it up)
    undo.append(lambda: sys.modules.pop(name, None))
    _execute(lambda: spec.loader.exec_module(module), path)
    return module


def _on_sys_path(folder, undo):
    sys.path.insert(0, folder)
    undo.append(lambda: sys.path.remove(folder) if folder in sys.path else None)


def _import_module(name, undo):
    _on_sys_path(os.getcwd(), undo)  # as 'python -m' does
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise CliError(f"{name}: no such file, and no module of that name (give FILE.py, FILE.py:NAME or "
                       f"MODULE:NAME)")
    return _execute(lambda: importlib.import_module(name), name)


def _execute(load, label):
    try:
        return load()
    except SyntaxError as exc:
        raise CliError(f"{label} does not import: SyntaxError: {exc.msg} (line {exc.lineno})") from None
    except SystemExit as exc:
        raise CliError(f"{label} called sys.exit({exc.code!r}) while being imported; put its script part "
                       f"under 'if __name__ == \"__main__\":'") from None
    except Exception as exc:  # the user's code
        raise CliError(f"{label} raised {_describe(exc)} while being imported") from None


def _describe(exc):
    """'ZeroDivisionError: division by zero (my_file.py, line 12)': where in the user's code it was raised."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    libraries = tuple(os.path.join(os.path.abspath(folder), "") for folder in
                      [os.path.dirname(os.path.abspath(__file__))]
                      + [sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib")])
    frames = [tb for tb in _traceback(exc.__traceback__)
              if not tb.tb_frame.f_code.co_filename.startswith("<")
              and not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(libraries)]
    if frames:
        code = frames[-1].tb_frame.f_code
        text += f" ({os.path.basename(code.co_filename)}, line {frames[-1].tb_lineno})"
    return text


def _traceback(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def backprop_from(names, label):
    """(cost_fn, grads_fn, parameters) from a target's names, in either convention.

    Parameters
    ----------
    names : Mapping
        Either ``cost_fn(parameters) -> float``, ``grads_fn(parameters) -> {"dW1": ...}`` and
        ``parameters`` ({"W1": (n_1, n_0), "b1": (n_1, 1), ...}), or the course's
        ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``,
        ``backward_propagation_n(X, Y, cache) -> {"dW1": ..., "db1": ..., ...}``, ``X`` (n_0, m),
        ``Y`` (n_L, m) and ``parameters``.
    label : str
        The target, for messages.

    Returns
    -------
    cost_fn, grads_fn, parameters
        Ready for ``minnet.check_gradients``; an exception in the user's functions
        becomes a CliError that names the function.
    """
    if "cost_fn" in names or "grads_fn" in names:
        wanted = OWN_NAMES
    elif "forward_propagation_n" in names or "backward_propagation_n" in names:
        wanted = COURSE_NAMES
    else:
        raise CliError(f"{label} defines neither {_and(OWN_NAMES)} nor the course's {_and(COURSE_NAMES)} "
                       f"(see 'minnet check --help')")
    missing = [name for name in wanted if name not in names]
    if missing:
        raise CliError(f"{label} lacks {_and(missing)} (it defines {_and([n for n in wanted if n in names])})")
    for name in wanted:
        if name.endswith(("_fn", "_n")) and not callable(names[name]):
            raise CliError(f"{name} in {label} must be a function, got {type(names[name]).__name__}")
    parameters = names["parameters"]
    if not isinstance(parameters, Mapping):
        raise CliError(f"parameters in {label} must be a dict like {{'W1': ..., 'b1': ...}}, "
                       f"got {type(parameters).__name__}")
    if wanted == OWN_NAMES:
        return _guarded(names["cost_fn"], "cost_fn"), _guarded(names["grads_fn"], "grads_fn"), dict(parameters)
    cost_fn, grads_fn = course_functions(names["forward_propagation_n"], names["backward_propagation_n"],
                                         names["X"], names["Y"])
    return cost_fn, grads_fn, dict(parameters)


def course_functions(forward, backward, X, Y):
    """cost_fn and grads_fn for ``check_gradients`` from the course's two functions.

    Parameters
    ----------
    forward : callable
        ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``.
    backward : callable
        ``backward_propagation_n(X, Y, cache) -> gradients``: "dW1", "db1", ... and any
        extra entries ("dZ1", "dA1", ...), which are left out.
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m)

    Returns
    -------
    cost_fn : callable
        ``cost_fn(parameters) -> cost``
    grads_fn : callable
        ``grads_fn(parameters) -> {"dW1": ..., ...}`` with exactly the keys "d" + each parameter's name.
    """
    forward = _guarded(forward, "forward_propagation_n")
    backward = _guarded(backward, "backward_propagation_n")

    def run_forward(parameters):
        result = forward(X, Y, parameters)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise CliError(f"forward_propagation_n must return (cost, cache), got {type(result).__name__}"
                           + (f" of length {len(result)}" if isinstance(result, tuple) else ""))
        return result

    def cost_fn(parameters):
        return run_forward(parameters)[0]

    def grads_fn(parameters):
        gradients = backward(X, Y, run_forward(parameters)[1])
        if not isinstance(gradients, Mapping):
            raise CliError(f"backward_propagation_n must return a dict of gradients like {{'dW1': ...}}, "
                           f"got {type(gradients).__name__}")
        missing = ["d" + name for name in parameters if "d" + name not in gradients]
        if missing:
            raise CliError(f"backward_propagation_n returned no {_and(missing)}")
        return {"d" + name: gradients["d" + name] for name in parameters}

    return cost_fn, grads_fn


def _guarded(function, name):
    """``function`` with an exception it raises turned into one CliError line that names it."""
    def call(*args):
        try:
            return function(*args)
        except CliError:
            raise
        except Exception as exc:  # the user's code
            raise CliError(f"{name} raised {_describe(exc)}") from None
    return call


def _and(names):
    names = list(names)
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


# ----------------------------------------------------------------------- JSON
def json_safe(value, path="", notes=None):
    """``value`` with every NaN or inf replaced by None; ``notes`` collects where and what they were."""
    if isinstance(value, Mapping):
        return {key: json_safe(item, f"{path}.{key}" if path else str(key), notes) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, f"{path}[{k}]", notes) for k, item in enumerate(value)]
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


# -------------------------------------------------------------------- train
def cmd_train(args):
    from . import GradientCheck, Network
    args.plot = _plot_path(args.plot, "--plot")
    args.boundary = _plot_path(args.boundary, "--boundary")
    if args.save:
        if getattr(Network, "save", None) is None:
            raise CliError("--save needs Network.save, which this version of minnet does not have")
        _output_file(args.save, "--save")
    X, Y = _dataset(args.dataset, args.examples, args.seed)
    binary = Y.ndim == 2 and Y.shape[0] == 1
    n_classes = 2 if binary else int(Y.max()) + 1
    dims, output = train_layers(args.layers, args.output, args.dataset, X.shape[0], n_classes, binary)
    if output == "softmax" and binary:
        Y = Y[0].astype(np.int64)  # class labels for 2 softmax units
    if args.boundary and X.shape[0] != 2:
        raise CliError(f"--boundary needs 2-D data; {args.dataset} has {X.shape[0]} features")
    if len(dims) == 2 and args.keep_prob < 1.0:
        raise CliError("--keep-prob below 1 needs at least one hidden layer (dropout acts on hidden units)")
    keep_prob = args.keep_prob
    net = Network(dims, hidden=args.hidden, output=output, lambd=args.lambd, keep_prob=keep_prob, seed=args.seed)

    m = X.shape[1]
    order = np.random.default_rng(args.seed).permutation(m)
    n_test = int(round(args.test_split * m))
    if args.test_split and not 1 <= n_test < m:
        raise CliError(f"--test-split {args.test_split} leaves no test or no training examples of {m}")
    test, train = order[:n_test], order[n_test:]
    X_train, Y_train = X[:, train], Y[..., train]
    X_test, Y_test = X[:, test], Y[..., test]

    batch = "full batch" if args.batch_size is None else f"mini-batches of {args.batch_size}"
    if not args.quiet:
        split = f" ({len(train)} for training, {n_test} held out)" if n_test else ""
        print(f"{args.dataset}: {m} examples, {X.shape[0]} features, {n_classes} classes{split}")
        hidden = f"{args.hidden} hidden" if len(dims) > 2 else "no hidden layer"
        print(f"network {dims}: {hidden}, {output} output, lambd={args.lambd}, keep_prob={keep_prob}, "
              f"{net.layout.size:,} parameters")
        print(f"training: {args.optimizer}, learning rate {args.lr}, {args.epochs:,} epochs, {batch}", flush=True)
    callbacks = [GradientCheck(at=[0, args.epochs])] if args.check else []
    t = time.perf_counter()
    history = net.fit(X_train, Y_train, optimizer=args.optimizer, learning_rate=args.lr, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, progress=_progress(args), callbacks=callbacks)
    seconds = time.perf_counter() - t
    for epoch, report in sorted(history.get("checks", {}).items()):
        when = "before training" if epoch == 0 else "after training"
        print(f"gradient check {when} (64 examples): {_summary(report)}")
    if history["cost"]:
        print(f"final cost {history['cost'][-1]:.6f} after {args.epochs:,} epochs ({seconds:.2f} s)")
    else:
        print("no training (0 epochs)")
    print(f"training accuracy {_percent(net.accuracy(X_train, Y_train))}")
    if n_test:
        print(f"test accuracy {_percent(net.accuracy(X_test, Y_test))} ({n_test} held-out examples)")
    if args.save:
        try:
            net.save(args.save)
        except ImportError as exc:
            raise CliError(f"--save: this version of minnet cannot save networks ({exc})") from None
        except OSError as exc:
            raise CliError(f"--save: cannot write {args.save!r}: {exc.strerror or exc}") from None
        print(f"saved the network to {args.save} (read it back with minnet.Network.load)")
    if args.plot or args.boundary:
        from . import plots
        if args.plot:
            if not history["cost"]:
                raise CliError("--plot: there is no cost curve after 0 epochs")
            plots.plot_cost(history, path=args.plot, title=f"{args.dataset}: training cost")
            print(f"cost curve: {args.plot}")
        if args.boundary:
            plots.plot_decision_boundary(net, X, Y, path=args.boundary)
            print(f"decision boundary: {args.boundary}")
    return 0


def train_layers(layers, output, dataset, n_features, n_classes, binary):
    """Check --layers (all sizes, input to output) against the data; returns (layer_dims, output).

    The data fixes the first size (its features) and the last: 1 for a sigmoid output
    on binary data, the number of classes for softmax. Under ``--output auto`` a binary
    dataset gets sigmoid, or softmax if the last size is 2. A mismatch is an error.
    """
    if output == "sigmoid" and not binary:
        raise CliError(f"--output sigmoid needs a binary dataset; {dataset} has {n_classes} classes (use softmax)")
    if layers is None:
        out = "sigmoid" if output == "auto" and binary else "softmax" if output == "auto" else output
        return [n_features] + TRAIN_HIDDEN + [1 if out == "sigmoid" else n_classes], out
    given = ",".join(map(str, layers))

    def suggest(last):
        return ",".join(map(str, [n_features] + layers[1:-1] + [last]))

    if layers[0] != n_features:
        raise CliError(f"--layers {given}: the first size is the input, and {dataset} has {n_features} features "
                       f"(use --layers {suggest(layers[-1])})")
    last = layers[-1]
    if output == "auto":
        if binary and last in (1, 2):
            output = "sigmoid" if last == 1 else "softmax"
        elif binary:
            raise CliError(f"--layers {given}: the last size is the output, and {dataset} has 2 classes: 1 "
                           f"(sigmoid) or 2 (softmax) (use --layers {suggest(1)})")
        else:
            output = "softmax"
    if output == "sigmoid" and last != 1:
        raise CliError(f"--layers {given}: a sigmoid output for binary data has 1 unit (use --layers {suggest(1)})")
    if output == "softmax" and last != n_classes:
        raise CliError(f"--layers {given}: the last size is the softmax output, and {dataset} has {n_classes} "
                       f"classes (use --layers {suggest(n_classes)})")
    return list(layers), output


# -------------------------------------------------------------------- bench
def _rate(n, seconds):
    r = n / seconds if seconds > 0 else float("inf")
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if r >= scale:
            return f"{r / scale:.3g}{unit}"
    return f"{r:.3g}"


def _workload(dims, m, hidden, seed=0):
    """A bench workload: softmax output, lambd 0.7, X standard normal (n_0, m), random class labels."""
    from . import Network
    net = Network(dims, hidden=hidden, output="softmax", lambd=0.7, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    Y = rng.integers(0, dims[-1], size=m)
    return net, X, Y


def _best_time(run, repeat):
    best, result = float("inf"), None
    for k in range(repeat):
        t = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - t
        best = min(best, seconds)
        if seconds > REPEAT_LIMIT:
            break
    return best, result


def thread_counts(text):
    """'1,2,4' -> [1, 2, 4]: the Numba thread counts that ``minnet bench --threads`` sweeps."""
    return list(dict.fromkeys(_int_list(text, "threads")))


def _bench_workloads(args):
    """[(name, layer_dims, m)]: the one --layers workload, or the named ones (--examples overrides m)."""
    if args.layers is not None:
        if args.workloads is not None:
            raise CliError("--workloads and --layers cannot be combined: --layers defines the one workload to time")
        if args.layers[-1] < 2:
            raise CliError(f"--layers {','.join(map(str, args.layers))}: the bench's softmax output needs at "
                           f"least 2 units")
        return [("custom", list(args.layers), args.examples or BENCH_EXAMPLES)]
    return [(name, WORKLOADS[name][0], args.examples or WORKLOADS[name][1])
            for name in args.workloads or list(WORKLOADS)]


def _bench_row(name, net, m, hidden, method, threads, seconds=None, estimated=False, verdict=None, note=None):
    """One row of ``minnet bench``: what ran, on what, and how long it took (None: not run, see note)."""
    n = net.layout.size
    rate = None if seconds is None else n / seconds if seconds > 0 else float("inf")
    return {"workload": name, "layer_dims": list(net.layer_dims), "parameters": n, "m": m, "hidden": hidden,
            "method": method, "threads": threads, "seconds": seconds, "estimated": estimated,
            "entries_per_second": rate, "verdict": verdict, "note": note}


def _bench_peers(args, wanted, name, net, X, Y, status):
    """Rows of the reference checks on one workload (they run once, on one thread where they can)."""
    from . import baselines, difference
    n, m, hidden = net.layout.size, X.shape[1], args.hidden
    slow_ok = args.full_baselines or n <= SLOW_ABOVE
    sample = np.random.default_rng(0).choice(n, size=min(ESTIMATE_SAMPLE, n), replace=False)
    rows = []
    for peer in wanted:
        label = PEERS[peer]
        row = functools.partial(_bench_row, name, net, m, hidden, label, None if peer == "jax" else 1)
        if peer == "torch" and n > TORCH_LIMIT:
            rows.append(row(note=f"skipped (over {TORCH_LIMIT:,} parameters torch's gradcheck runs out of memory)"))
            continue
        if peer == "torch" and not slow_ok:
            rows.append(row(note=SLOW_SKIPPED))
            continue
        if peer == "numpy":
            def run(indices=None):
                return baselines.numpy_loop_check(net, X, Y, indices=indices, blas_threads=1)
        elif peer == "jax":
            chunk = baselines.jax_chunk(net.layer_dims, m)
            baselines.jax_fd_check(net, X, Y, indices=np.arange(chunk), chunk=chunk)  # compile before timing

            def run(indices=None):
                return baselines.jax_fd_check(net, X, Y, indices=indices, chunk=chunk)
        else:
            status.show(f"{name}: {label} over {n:,} entries ...")
            seconds, ok = _best_time(lambda: baselines.torch_gradcheck(net, X, Y, torch_threads=1), 1)
            rows.append(row(seconds=seconds, verdict="passed" if ok else "failed"))
            continue
        if slow_ok:
            status.show(f"{name}: {label} over {n:,} entries ...")
            seconds, approx = _best_time(run, 1)
            rows.append(row(seconds=seconds, verdict=_verdict_of(difference(approx, _backprop(net, X, Y)))))
        else:  # every entry costs the same two forward passes: time a sample and scale up
            status.show(f"{name}: {label} on {sample.size:,} of {n:,} entries ...")
            t = time.perf_counter()
            run(sample)
            rows.append(row(seconds=(time.perf_counter() - t) * n / sample.size, estimated=True))
    return rows


def cmd_bench(args):
    import numba

    from . import baselines, gradient_check
    from .check.api import PIECEWISE_LINEAR
    limit = numba.config.NUMBA_NUM_THREADS
    threads = args.threads or [numba.get_num_threads()]
    for t in threads:
        if t > limit:
            raise CliError(f"--threads {t}: each thread count must be <= {limit} (Numba's thread pool here, "
                           f"NUMBA_NUM_THREADS)")
    wanted = [] if args.baselines == ["none"] else list(args.baselines)
    if "none" in wanted:
        raise CliError("--baselines none cannot be combined with other baselines")
    plot = _plot_path(args.plot, "--plot")
    workloads = [(name, m, *_workload(dims, m, args.hidden)) for name, dims, m in _bench_workloads(args)]
    say = functools.partial(print, file=sys.stderr if args.json else sys.stdout, flush=True)  # JSON keeps stdout
    for peer, available, what in (("torch", baselines.torch_available, "PyTorch"),
                                  ("jax", baselines.jax_available, "JAX")):
        if peer in wanted and not available():
            say(f"{peer} baseline: skipped, {what} is not installed (it is optional: pip install {peer})")
            wanted.remove(peer)
    methods = list(args.methods)
    if "segment" in methods and args.hidden not in PIECEWISE_LINEAR:
        say(f"minnet segment: skipped, it applies to relu and leaky_relu hidden layers only (--hidden {args.hidden})")
        methods.remove("segment")
    if not args.json:
        print(f"Gradient-check speed: {args.hidden} hidden, softmax output, lambd 0.7, X standard normal; minnet "
              f"on {', '.join(map(str, threads))} Numba thread(s), best of {args.repeat} run(s) (runs over "
              f"{REPEAT_LIMIT:g} s are not repeated); baselines run once, numpy and torch on one thread.",
              flush=True)

    # Compile (or load from the cache) every kernel first so that no timing includes it.
    tiny, Xt, Yt = _workload([3, 4, 3], 5, args.hidden)
    for method in methods:
        gradient_check(tiny, Xt, Yt, method=method, threads=threads[0], progress=False)

    rows = []
    status = _Status(enabled=sys.stderr.isatty() and not args.quiet)
    for name, m, net, X, Y in workloads:
        n = net.layout.size
        slow_ok = args.full_baselines or n <= SLOW_ABOVE
        found = _bench_peers(args, wanted, name, net, X, Y, status)
        for t in threads:
            for method in methods:
                if method == "full" and not slow_ok:
                    if t == threads[0]:
                        found.append(_bench_row(name, net, m, args.hidden, "minnet full", None, note=SLOW_SKIPPED))
                    continue
                status.show(f"{name}: minnet {method} on {t} thread(s) over {n:,} entries ...")
                seconds, report = _best_time(
                    lambda: gradient_check(net, X, Y, method=method, threads=t, progress=False), args.repeat)
                found.append(_bench_row(name, net, m, args.hidden, f"minnet {method}", t, seconds=seconds,
                                        verdict=report.verdict))
        _ratios(found, wanted)
        rows.extend(found)
    status.show("")
    if args.json:
        print(json.dumps(json_safe(rows), indent=2, allow_nan=False))
    else:
        print()
        print(_bench_table(rows, wanted))
        if any(r["estimated"] for r in rows):
            print(f"\n~ : timed on {ESTIMATE_SAMPLE:,} random entries and scaled up (every entry costs the same "
                  f"two forward passes); --full-baselines runs it in full.")
    if plot:
        from . import plots
        plots.plot_bench(rows, path=plot)
        if not args.json:
            print(f"\nPlot: {plot}")
    return 0


def _ratios(rows, wanted):
    """Each row's speed-up against each baseline on the same workload: "vs_numpy" = numpy's time / its time."""
    base = {b: next((r for r in rows if r["method"] == PEERS[b] and r["seconds"] is not None), None) for b in wanted}
    for r in rows:
        for b in wanted:
            r[f"vs_{b}"] = None
            if base[b] is not None and r["seconds"] is not None:
                r[f"vs_{b}"] = base[b]["seconds"] / r["seconds"] if r["seconds"] > 0 else float("inf")


def _bench_table(rows, wanted):
    head = ["workload", "parameters", "m", "method", "threads", "seconds", "entries/s", "verdict"] + \
        [f"vs {b}" for b in wanted]
    estimated = {r["workload"]: set() for r in rows}
    for r in rows:
        if r["estimated"]:
            estimated[r["workload"]].add(r["method"])
    cells = []
    for r in rows:
        first = [r["workload"], f"{r['parameters']:,}", str(r["m"]), r["method"],
                 "-" if r["threads"] is None else str(r["threads"])]
        if r["seconds"] is None:
            cells.append((first, r["note"]))
            continue
        seconds = f"~{r['seconds']:.3g} (est.)" if r["estimated"] else f"{r['seconds']:.3g}"
        ratios = []
        for b in wanted:
            ratio = r[f"vs_{b}"]
            rough = "~" if r["estimated"] or PEERS[b] in estimated[r["workload"]] else ""
            ratios.append("-" if ratio is None else f"{rough}{ratio:,.0f}x" if ratio >= 1000 else f"{rough}{ratio:.3g}x")
        cells.append((first + [seconds, _rate(r["parameters"], r["seconds"]), r["verdict"] or "-"] + ratios, None))
    widths = [max([len(head[k])] + [len(c[k]) for c, note in cells if note is None or k < 5])
              for k in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    for c, note in cells:
        if note is None:
            lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
        else:  # a skipped run: its reason spans the timing columns
            lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths[:5])) + "  " + note)
    return "\n".join(lines)


class _Status:
    """A one-line, self-erasing status on a terminal's stderr (nothing otherwise)."""

    def __init__(self, enabled):
        self.enabled = enabled

    def show(self, text):
        if self.enabled:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()


def _backprop(net, X, Y):
    from . import flatten_gradients
    return flatten_gradients(net.gradients(X, Y), net.layout)


def _verdict_of(diff, thresholds=(1e-7, 1e-3)):
    return "correct" if diff < thresholds[0] else "suspicious" if diff < thresholds[1] else "bug"


# ------------------------------------------------------------------- parser
MAIN_EPILOG = """\
examples:
  minnet demo
  minnet check my_assignment.py
  minnet check --layers 4,20,8,3 --output softmax --lambd 0.7 --keep-prob 0.86
  minnet train --dataset moons --layers 2,16,8,1 --epochs 2000 --plot cost.png
  minnet bench --workloads digits,medium

--layers always gives all layer sizes, input to output.
Run 'minnet COMMAND --help' for a command's options and examples.
Exit status: 0 success, 2 usage error, 130 interrupted; 'minnet check' gives each verdict its
own status (see 'minnet check --help').
"""

DEMO_EPILOG = f"""\
The demo trains a {DEMO['layer_dims']} network ({DEMO['hidden']} hidden, {DEMO['output']} output,
lambd={DEMO['lambd']}, keep_prob={DEMO['keep_prob']}) with Adam on the 400-point flower data. It
gradient-checks backprop before and after training (dropout masks fixed: the deterministic check mode),
prints the training accuracy, and writes minnet_demo_cost.png, minnet_demo_boundary.png and
minnet_demo_check.png into --out when matplotlib is installed ({PLOT_HINT}).
Exit status: 0 when both checks pass, else the worse verdict's status as for 'minnet check'
(1 suspicious, 3 bug, 4 inconclusive); 2 usage error; 130 interrupted.

examples:
  minnet demo
  minnet demo --out plots --quiet
  minnet demo --epochs 1000
"""

CHECK_EPILOG = """\
Without a FILE, minnet checks one of its own networks: initialized with --init and --seed, X
standard normal (n_0, m), labels that match the output (0/1 for sigmoid, class indices for
softmax, standard normal for linear). With --keep-prob below 1 the check uses fixed dropout
masks (--dropout-seed).

Checking your own backprop: 'minnet check FILE.py' imports FILE.py (this runs your code, as
'python FILE.py' would, except its 'if __name__ == "__main__":' part) and checks the backprop it
defines at the top level, in one of two ways:
  cost_fn(parameters) -> float            J at the given parameters
  grads_fn(parameters) -> {"dW1": ...}    backprop's gradients, shaped like the parameters
  parameters = {"W1": ..., "b1": ...}     where to check
or the course's
  forward_propagation_n(X, Y, parameters) -> (cost, cache)
  backward_propagation_n(X, Y, cache) -> {"dW1": ..., "db1": ...}   (dZ1, dA1 ... are ignored)
  X, Y, parameters
'FILE.py:NAME' (or 'MODULE:NAME', imported from the current folder) calls NAME() and takes
the names from the dict or namespace it returns. Only --epsilon, --mode, --sample, --seed,
--json, --plot and --quiet apply to a file.

""" + EXIT_STATUS_HELP + """
examples:
  minnet check
  minnet check my_assignment.py
  minnet check examples/course_backprop.py:with_planted_bugs --json
  minnet check --layers 2,20,3,1 --lambd 0.7 --keep-prob 0.86
  minnet check --layers 784,128,64,10 --output softmax --examples 64 --threads 2
  minnet check --layers 256,64,10 --output softmax --mode directional
  minnet check --layers 64,32,10 --output softmax --sample 50 --json > report.json
  minnet check --layers 4,8,1 --plot check.png
"""

TRAIN_EPILOG = """\
--layers gives all layer sizes, input to output, as in 'minnet check'. The dataset fixes the first
(its features: 2 for the 2-D sets, 64 for digits) and the last: 1 for a sigmoid output on binary
data (flower, moons, circles, xor), the number of classes for softmax (spirals 3, blobs 3,
digits 10; 2 on binary data picks softmax). A size that does not match is an error.
'--layers 2,1' trains without a hidden layer. Default: the data's sizes around 20,8.
Output files (--save, --plot, --boundary) are checked before training; missing folders are made.
digits needs scikit-learn (pip install "minnet[datasets]").

examples:
  minnet train --dataset flower --layers 2,32,16,1 --lambd 0.1 --keep-prob 0.9 --epochs 5000
  minnet train --dataset spirals --layers 2,50,3 --epochs 3000 --boundary spirals.png
  minnet train --dataset digits --layers 64,64,32,10 --epochs 300 --batch-size 64 --test-split 0.2
  minnet train --dataset moons --layers 2,16,8,1 --check --save models/moons.npz --plot cost.png
"""

BENCH_EPILOG = f"""\
workloads (softmax output, lambd 0.7, X standard normal; --hidden picks the hidden activation, relu
by default, and --examples overrides m):
  digits  [64, 32, 16, 10]    m = 256   (2,778 parameters)
  medium  [256, 64, 32, 10]   m = 128   (18,858 parameters)
  mnist   [784, 128, 64, 10]  m = 64    (109,386 parameters)
--layers N0,...,NL times that one network instead (m = {BENCH_EXAMPLES} unless --examples).

Baselines: "numpy" is the plain loop (perturb one entry in place, two full forward passes per entry),
"torch" is torch.autograd.gradcheck in float64, "jax" the same centered differences as the NumPy
loop, jit-compiled and vmap-ed over chunks of directions in float64 (torch and jax only if
installed; never required). numpy and torch run on one BLAS / torch thread: the matrices are small,
and on a busy machine extra threads slow the loops down erratically; jax uses XLA's own threads.
On workloads over {SLOW_ABOVE:,} parameters the slow runs (torch, minnet's "full" method) are skipped and
the NumPy and JAX times are estimated from {ESTIMATE_SAMPLE:,} entries, unless --full-baselines
(the full NumPy loop on mnist takes a minute or more). torch is never run over {TORCH_LIMIT:,}
parameters: its gradcheck ran out of 24 GB of memory on mnist.
--threads 1,2,4 times every minnet method at each thread count (the results are bitwise identical).
--json prints one object per row: workload, layer_dims, parameters, m, hidden, method, threads,
seconds, estimated, entries_per_second, verdict, note (why a run was skipped) and vs_<baseline>
(the baseline's time over the row's).

examples:
  minnet bench
  minnet bench --workloads digits --baselines numpy,torch,jax
  minnet bench --layers 784,1024,1024,10 --examples 64 --methods auto,incremental --threads 1,2
  minnet bench --layers 256,64,10 --hidden tanh --baselines none --json > bench.json
  minnet bench --workloads mnist --full-baselines --plot bench.png
"""


def build_parser():
    from . import __version__
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog=PROG, description="minnet: a from-scratch neural network framework with a fast, "
                                            "parallel gradient check.",
                     epilog=MAIN_EPILOG, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"minnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, title="commands")

    p = sub.add_parser("demo", help="check, train and check again on the flower data",
                       description="The main job in one command, on built-in data.", epilog=DEMO_EPILOG,
                       formatter_class=fmt)
    p.add_argument("--out", default=".", metavar="DIR",
                   help="folder for the PNG plots, made if missing (default: current folder)")
    p.add_argument("--epochs", type=nonnegative_int, default=DEMO["epochs"],
                   help=f"training epochs (default {DEMO['epochs']})")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line per check instead of tables")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("check", help="gradient-check your backprop (FILE.py) or a minnet network",
                       description="Gradient-check the backprop of your own code (FILE.py) or of a minnet "
                                   "network on synthetic data.",
                       epilog=CHECK_EPILOG, formatter_class=fmt)
    p.add_argument("target", nargs="?", metavar="FILE.py[:NAME]",
                   help="your code: a .py file (or MODULE:NAME) defining the names below; imports and runs it")
    p.add_argument("--layers", type=layer_dims, metavar="N0,N1,...,NL",
                   help="all layer sizes, input to output (default 2,20,3,1)")
    p.add_argument("--hidden", choices=HIDDEN, help="hidden activation (default relu)")
    p.add_argument("--output", choices=OUTPUTS, help="output activation (default sigmoid)")
    p.add_argument("--lambd", type=nonnegative_float, help="L2 strength (default 0)")
    p.add_argument("--keep-prob", type=probability, help="dropout keep probability (default 1)")
    p.add_argument("--init", choices=("zeros", "random", "he", "xavier"), help="weight initialization (default he)")
    p.add_argument("--examples", type=positive_int, metavar="M", help="examples m (default 64)")
    p.add_argument("--method", choices=METHODS,
                   help="auto (default: segment for relu nets, else incremental), segment, incremental, "
                        "or full (two whole forward passes per entry)")
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: every entry; directional: one random direction per block (default full)")
    p.add_argument("--sample", type=positive_int, default=None, metavar="K",
                   help="check only K random entries of every block")
    p.add_argument("--epsilon", type=positive_float, default=1e-7, help="perturbation (default 1e-7)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N", help="Numba threads")
    p.add_argument("--dropout-seed", type=nonnegative_int, metavar="S",
                   help="seed of the fixed dropout masks (default 0)")
    p.add_argument("--include-kinks", action="store_true",
                   help="count entries whose perturbation crosses a relu kink with their centered difference "
                        "(by default they are judged at a nearby point where the network is smooth)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seeds the network, data and sampling")
    p.add_argument("--json", action="store_true",
                   help="print the report, or an error, as JSON (NaN and inf become null, with a note)")
    p.add_argument("--plot", metavar="PNG", help="save a bar chart of the block differences")
    p.add_argument("--quiet", action="store_true", help="one summary line, no progress bar")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("train", help="train on a built-in dataset",
                       description="Train a network on a built-in dataset and report cost and accuracy.",
                       epilog=TRAIN_EPILOG, formatter_class=fmt)
    p.add_argument("--dataset", choices=DATASETS, default="flower", help="(default flower)")
    p.add_argument("--examples", type=positive_int, default=None, metavar="M",
                   help="examples to generate (not for digits; default: the dataset's own)")
    p.add_argument("--layers", type=layer_dims, default=None, metavar="N0,N1,...,NL",
                   help="all layer sizes, input to output; the data fixes the first and the last "
                        "(default: N0,20,8,NL from the data)")
    p.add_argument("--hidden", choices=HIDDEN, default="relu", help="hidden activation (default relu)")
    p.add_argument("--output", choices=("auto", "sigmoid", "softmax"), default="auto",
                   help="auto: sigmoid for binary data, softmax otherwise (default auto)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(default adam)")
    p.add_argument("--epochs", type=nonnegative_int, default=2000, help="(default 2000)")
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                   help="mini-batch size (default: the full batch)")
    p.add_argument("--lambd", type=nonnegative_float, default=0.0, help="L2 strength (default 0)")
    p.add_argument("--keep-prob", type=probability, default=1.0, help="dropout keep probability (default 1)")
    p.add_argument("--test-split", type=_fraction, default=0.0, metavar="F",
                   help="hold out this fraction of the examples and report its accuracy (default 0)")
    p.add_argument("--check", action="store_true", help="gradient-check before and after training")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seeds the data, the initialization, the split and the shuffling (default 0)")
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz; checked before training)")
    p.add_argument("--plot", metavar="PNG", help="save the cost curve")
    p.add_argument("--boundary", metavar="PNG", help="save the decision boundary (2-D datasets)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no header")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("bench", help="time the gradient check against NumPy, PyTorch and JAX",
                       description="The check-speed table: minnet's gradient check against reference loops, "
                                   "on fixed workloads or your own shape.",
                       epilog=BENCH_EPILOG, formatter_class=fmt)
    p.add_argument("--workloads", type=_choices(tuple(WORKLOADS), "workload"), default=None,
                   metavar="W,...", help="digits, medium, mnist (default: all, unless --layers)")
    p.add_argument("--layers", type=layer_dims, default=None, metavar="N0,N1,...,NL",
                   help="time this one network instead: all layer sizes, input to output (softmax output, "
                        "so NL >= 2)")
    p.add_argument("--examples", type=positive_int, default=None, metavar="M",
                   help=f"examples m (default {BENCH_EXAMPLES} with --layers, else the workload's own)")
    p.add_argument("--hidden", choices=HIDDEN, default="relu", help="hidden activation (default relu)")
    p.add_argument("--methods", type=_choices(METHODS, "method"), default=list(METHODS), metavar="M,...",
                   help="minnet methods to time: auto, segment (relu and leaky_relu only), incremental, full "
                        "(default: all)")
    p.add_argument("--baselines", type=_choices(("numpy", "torch", "jax", "none"), "baseline"), default=["numpy"],
                   metavar="B,...", help="numpy, torch, jax or none (default numpy)")
    p.add_argument("--full-baselines", action="store_true",
                   help="run the slow runs in full on every workload (minutes on mnist)")
    p.add_argument("--threads", type=thread_counts, default=None, metavar="N,...",
                   help="Numba thread counts for minnet, one row each, e.g. 1,2,4 (default: Numba's)")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="R",
                   help="time minnet R times and keep the best (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print the rows, or an error, as JSON (a list of objects; NaN and inf become null)")
    p.add_argument("--plot", metavar="PNG", help="save time against parameters for each method and peer (log-log)")
    p.add_argument("--quiet", action="store_true", help="no status line on stderr")
    p.set_defaults(run=cmd_bench)
    return parser


def main(argv=None):
    """Run the command line and return the exit status (see ``EXIT_STATUS_HELP``).

    A usage error prints one ``minnet: error: ...`` line on stderr (and, with --json, a JSON
    object with the error on stdout) and returns 2; Ctrl-C prints one line and returns 130.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    as_json = "--json" in argv[:argv.index("--")] if "--" in argv else "--json" in argv
    try:
        return _run(argv)
    except CliError as exc:
        return _error(str(exc), USAGE_ERROR, as_json)
    except (ValueError, TypeError) as exc:  # minnet's own checks of what the user gave
        return _error(str(exc), USAGE_ERROR, as_json)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return BROKEN_PIPE
    except OSError as exc:
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        return _error(f"cannot access{where}: {exc.strerror or exc}", USAGE_ERROR, as_json)
    except KeyboardInterrupt:
        return _interrupted(as_json)


def _run(argv):
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        raise CliError("choose a command: demo, check, train or bench (see 'minnet --help')")
    if extra:
        raise CliError(f"unrecognized arguments: {' '.join(extra)} (see '{PROG} {args.command} --help')")
    return args.run(args)


def _error(message, status, as_json):
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit_status": status}))
    return status


def _interrupted(as_json):
    """One line for Ctrl-C; a second Ctrl-C meanwhile is ignored rather than shown as a traceback."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print(f"{PROG}: interrupted", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": "interrupted", "exit_status": INTERRUPTED}))
    except (OSError, ValueError):  # the terminal may be gone already
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    return INTERRUPTED


def run():
    """The ``minnet`` program: ``main()``, then exit with its status.

    After an interrupt Ctrl-C stays ignored until the process has exited, so that
    a second Ctrl-C cannot print a traceback while Python shuts down.
    """
    try:
        status = main()
    except KeyboardInterrupt:  # in the instant between main's handler and here
        status = INTERRUPTED
    if status == INTERRUPTED:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)


if __name__ == "__main__":
    run()

"""``minnet check``: its options, the gradient check of a minnet network on synthetic data or of a
user's FILE.py (imported by ``user_code``), and the report as text, one line, JSON or a plot.
Imports ``_common``, ``_names`` and ``user_code`` of the CLI; no other command."""
from contextlib import contextmanager, nullcontext

from . import user_code
from ._common import (DASK_HINT, EXIT_STATUS_HELP, METHODS, CliError, UserCodeError, exit_status, jobs_count,
                      json_dumps, layer_dims, nonnegative_float, nonnegative_int, plot_path, positive_float,
                      positive_int, probability, show_progress, summary, writing)
from ._names import (BINARY_OUTPUT, DEFAULT_HIDDEN, DEFAULT_OUTPUT, HIDDEN_CHOICES, OUTPUT_CHOICES, SEGMENT_HIDDEN,
                     min_output_units, synthetic_data)

MODES = ("full", "directional")
# check of a minnet network: the defaults of the options that only apply to it (None: not given).
NETWORK_DEFAULTS = {"layers": [2, 20, 3, 1], "hidden": DEFAULT_HIDDEN, "output": DEFAULT_OUTPUT, "lambd": 0.0,
                    "keep_prob": 1.0, "init": "he", "examples": 64, "method": "auto", "threads": None,
                    "dropout_seed": 0, "include_kinks": False}
FILE_ONLY = ("jobs", "scheduler")  # options that apply to a file's functions only
SCHEDULER_TIMEOUT = 5  # seconds to reach a --scheduler: an unreachable one is an error, not a hang

HELP = "gradient-check your backprop (FILE.py) or a minnet network"
DESCRIPTION = "Gradient-check the backprop of your own code (FILE.py) or of a minnet network on synthetic data."
EPILOG = """\
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
--jobs, --scheduler, --json, --plot and --quiet apply to a file.

--jobs N evaluates J(theta +- eps) in N worker processes (-1: one per core); --scheduler ADDRESS
on the workers of a running Dask cluster (pip install "minnet[dask]"; --jobs then caps how many
at once). Each worker imports FILE.py again, by its path (a Dask worker must see the same file
there), so FILE.py must build the same X, Y and parameters every time (seed its random draws).
The report is the same for every --jobs.

""" + EXIT_STATUS_HELP + """
examples:
  minnet check
  minnet check my_assignment.py
  minnet check examples/course_backprop.py:with_planted_bugs --json
  minnet check my_assignment.py --jobs -1
  minnet check my_assignment.py --scheduler tcp://10.0.0.5:8786
  minnet check --layers 2,20,3,1 --lambd 0.7 --keep-prob 0.86
  minnet check --layers 784,128,64,10 --output softmax --examples 64 --threads 2
  minnet check --layers 256,64,10 --output softmax --mode directional
  minnet check --layers 64,32,10 --output softmax --sample 50 --json > report.json
  minnet check --layers 4,8,1 --plot check.png
"""


def add_arguments(parser):
    """The options of ``minnet check``; those of NETWORK_DEFAULTS default to None (not given)."""
    p = parser
    p.add_argument("target", nargs="?", metavar="FILE.py[:NAME]",
                   help="your code: a .py file (or MODULE:NAME) defining the names below; imports and runs it")
    p.add_argument("--layers", type=layer_dims, metavar="N0,N1,...,NL",
                   help="all layer sizes, input to output (default 2,20,3,1)")
    p.add_argument("--hidden", choices=HIDDEN_CHOICES, help=f"hidden activation (default {DEFAULT_HIDDEN})")
    p.add_argument("--output", choices=OUTPUT_CHOICES, help=f"output activation (default {DEFAULT_OUTPUT})")
    p.add_argument("--lambd", type=nonnegative_float, help="L2 strength (default 0)")
    p.add_argument("--keep-prob", type=probability, help="dropout keep probability (default 1)")
    p.add_argument("--init", choices=("zeros", "random", "he", "xavier"), help="weight initialization (default he)")
    p.add_argument("--examples", type=positive_int, metavar="M", help="examples m (default 64)")
    p.add_argument("--method", choices=METHODS,
                   help=f"auto (default: segment for {SEGMENT_HIDDEN} nets, else incremental), segment, "
                        "incremental, or full (two whole forward passes per entry)")
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: every entry; directional: one random direction per block (default full)")
    p.add_argument("--sample", type=positive_int, default=None, metavar="K",
                   help="check only K random entries of every block")
    p.add_argument("--epsilon", type=positive_float, default=1e-7, help="perturbation (default 1e-7)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N", help="Numba threads")
    p.add_argument("--dropout-seed", type=nonnegative_int, metavar="S",
                   help="seed of the fixed dropout masks (default 0)")
    p.add_argument("--include-kinks", action="store_true",
                   help="count entries whose perturbation crosses a kink with their centered difference "
                        "(by default they are judged at a nearby point where the network is smooth)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seeds the network, data and sampling")
    p.add_argument("--jobs", type=jobs_count, default=None, metavar="N",
                   help="with FILE: evaluate the cost in N worker processes (-1: every core; default 1, or the "
                        "cluster's workers with --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with FILE: run the check on the Dask cluster of this scheduler, e.g. tcp://host:8786")
    p.add_argument("--json", action="store_true",
                   help="print the report, or an error, as JSON (NaN and inf become null, with a note)")
    p.add_argument("--plot", metavar="PNG", help="save a bar chart of the block differences")
    p.add_argument("--quiet", action="store_true", help="one summary line, no progress bar")


def run(args):
    """Check, print the report and return the verdict's exit status."""
    args.plot = plot_path(args.plot, "--plot")
    given = [name for name in NETWORK_DEFAULTS if getattr(args, name) not in (None, False)]
    if args.target is not None:
        if given:
            option = "--" + given[0].replace("_", "-")
            raise CliError(f"{option} applies to minnet's own networks, not to a file's functions "
                           f"(checking {args.target})")
        # The user's prints, Python's or C's, must not spoil the JSON on stdout.
        with user_code.stdout_to_stderr() if args.json else nullcontext():
            report = _check_target(args)
    else:
        for name in FILE_ONLY:
            if getattr(args, name) is not None:
                raise CliError(f"--{name} applies to a file's functions (minnet check FILE.py --{name} ...); "
                               f"minnet's own networks run on Numba threads (--threads)")
        for name, default in NETWORK_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        report = _check_network(args)
    status = exit_status(report.verdict)
    if args.json:  # one JSON document: the report, or (the plot not written) the error
        text = json_dumps(report.to_dict())
        _plot(report, args.plot)
        print(text)
        return status
    print(summary(report) if args.quiet else report)
    _plot(report, args.plot)
    if args.plot and not args.quiet:
        print(f"\nPlot: {args.plot}")
    return status


def _plot(report, path):
    if path:
        from .. import plots
        with writing(path, "--plot"):
            plots.plot_check(report, path=path)


def _check_network(args):
    from .. import Network, _memory, gradient_check
    least = min_output_units(args.output)
    if args.layers[-1] < least:
        raise CliError(f"--output {args.output} needs at least {least} output units, and --layers "
                       f"{','.join(map(str, args.layers))} ends in {args.layers[-1]}; for one output unit use "
                       f"--output {BINARY_OUTPUT}")
    net = Network(args.layers, hidden=args.hidden, output=args.output, lambd=args.lambd,
                  keep_prob=args.keep_prob, init=args.init, seed=args.seed)
    _memory.require_network_check(net, args.examples, method=args.method, threads=args.threads, with_data=True,
                                  advice="ask for fewer --examples or smaller --layers, or free memory")
    X, Y = synthetic_data(args.layers, args.output, args.examples, seed=args.seed)
    return gradient_check(net, X, Y, epsilon=args.epsilon, method=args.method, mode=args.mode,
                          sample=args.sample, dropout_seed=args.dropout_seed, threads=args.threads,
                          include_kinks=args.include_kinks, seed=args.seed,
                          progress=None if show_progress(args) and not args.json else False)


def _check_target(args):
    from .. import check_gradients
    from ..check import UserExit
    progress = None if show_progress(args) and not args.json else False
    user_code.import_minnets_own(progress=progress is None, jobs=args.jobs not in (None, 1),
                                 scheduler=args.scheduler is not None)
    undo = []  # what importing the user's code added to sys.path and sys.modules
    try:
        cost_fn, grads_fn, parameters = user_code.load_backprop(args.target, undo)
        with _cluster(args.scheduler):
            return check_gradients(cost_fn, grads_fn, parameters, epsilon=args.epsilon, mode=args.mode,
                                   sample=args.sample, seed=args.seed, n_jobs=args.jobs, progress=progress)
    except UserExit as exc:  # an exit check_gradients caught itself
        raise UserCodeError(str(exc)) from None
    except (Exception, SystemExit) as exc:
        error = user_code.users_error(exc)  # raised in the user's code, here or in a worker: name their line
        if error is None:
            raise
        raise error from None
    finally:
        for step in reversed(undo):
            step()


@contextmanager
def _cluster(address):
    """The check's workers: joblib's own (loky processes), or with an ADDRESS the Dask cluster of that scheduler."""
    if address is None:
        yield
        return
    if not address.strip():  # Client("") would start a cluster of its own
        raise CliError("--scheduler needs the address of a running Dask scheduler, like tcp://host:8786")
    try:
        import joblib
        from dask.distributed import Client
    except ImportError:
        raise CliError(f"--scheduler needs Dask's distributed scheduler: {DASK_HINT}") from None
    try:
        client = Client(address, timeout=SCHEDULER_TIMEOUT)
    except Exception as exc:  # OSError when nobody answers, ValueError for a malformed address, ...
        raise CliError(f"--scheduler {address}: no Dask scheduler could be reached there within "
                       f"{SCHEDULER_TIMEOUT} s ({type(exc).__name__}: {exc})") from None
    try:
        with joblib.parallel_config(backend="dask"):
            yield
    finally:
        client.close()

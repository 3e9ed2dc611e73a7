"""The ``minnet`` command line: ``demo``, ``check``, ``train`` and ``bench``.

Run ``minnet --help`` or ``minnet COMMAND --help`` for the options and
examples.  Exit status: 0 on success; for ``check`` 0 correct, 1 suspicious,
2 bug; 2 also for a bad argument (one line on stderr, no traceback).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

PROG = "minnet"
EXIT_STATUS = {"correct": 0, "suspicious": 1, "bug": 2}
HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid")
OUTPUTS = ("sigmoid", "softmax", "linear")
OPTIMIZERS = ("gd", "momentum", "adam")
METHODS = ("incremental", "full")
MODES = ("full", "directional")
DATASETS = ("flower", "moons", "circles", "spirals", "xor", "blobs", "digits")
PLOT_HINT = 'pip install "minnet[plot]"'

# The demo's settings: tuned so that training accuracy on the flower data
# stays >= 95 % across initialization seeds (measured: 95.0-96.3 % for seeds 0-5).
DEMO = {"m": 400, "layer_dims": [2, 32, 16, 1], "hidden": "relu", "output": "sigmoid", "lambd": 0.1,
        "keep_prob": 0.9, "optimizer": "adam", "learning_rate": 0.01, "epochs": 5000, "seed": 0}

# bench: (layer dims, examples); relu hidden, softmax output, lambd 0.7, X standard normal.
WORKLOADS = {"digits": ([64, 32, 16, 10], 256), "medium": ([256, 64, 32, 10], 128),
             "mnist": ([784, 128, 64, 10], 64)}
SLOW_ABOVE = 20_000      # parameters: above this the slow runs need --full-baselines
ESTIMATE_SAMPLE = 2_000  # entries of the NumPy loop timed to estimate a skipped run
REPEAT_LIMIT = 5.0       # seconds: a run longer than this is not repeated
TORCH_LIMIT = 50_000     # parameters: torch.autograd.gradcheck on mnist exhausted 24 GB in the benchmarks


class CliError(Exception):
    """A problem to report as ``minnet: error: <message>`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line instead of usage + message + exit."""

    def error(self, message):
        raise CliError(f"{message} (see '{self.prog} --help')")


def exit_status(verdict):
    """The exit status of ``minnet check`` for a verdict: correct 0, suspicious 1, bug 2."""
    try:
        return EXIT_STATUS[verdict]
    except KeyError:
        raise ValueError(f"unknown verdict {verdict!r}; expected one of {', '.join(EXIT_STATUS)}") from None


# ----------------------------------------------------------- argument types
def _int_list(text, what, allow_empty):
    text = text.strip()
    if not text or text.lower() == "none":
        if allow_empty:
            return []
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
    """'2,20,3,1' -> [2, 20, 3, 1] (all layer sizes, input first)."""
    sizes = _int_list(text, "layers", allow_empty=False)
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"layers needs at least an input and an output size like '2,20,1', "
                                         f"got {text!r}")
    return sizes


def hidden_sizes(text):
    """'20,8' -> [20, 8]; '' or 'none' -> [] (no hidden layer)."""
    return _int_list(text, "layers (hidden sizes)", allow_empty=True)


def _number(kind, minimum=None, maximum=None, low_open=False, what="a number"):
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float and not np.isfinite(value):
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


def _writable_target(path, option):
    if os.path.isdir(path):
        raise CliError(f"{option}: {path!r} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"{option}: the folder {folder!r} does not exist")


def _plot_path(path, option):
    """Check a plot's target; a name without an extension gets .png (as matplotlib would add)."""
    if path is None:
        return None
    if not os.path.splitext(path)[1]:
        path += ".png"
    _need_matplotlib(option)
    _writable_target(path, option)
    return path


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
    if not os.path.isdir(out):
        raise CliError(f"--out: the folder {out!r} does not exist")
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
    status = max(exit_status(before.verdict), exit_status(after.verdict))
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
    from . import Network, gradient_check
    args.plot = _plot_path(args.plot, "--plot")
    net = Network(args.layers, hidden=args.hidden, output=args.output, lambd=args.lambd,
                  keep_prob=args.keep_prob, init=args.init, seed=args.seed)
    X, Y = synthetic_data(args.layers, args.output, args.examples, args.seed)
    report = gradient_check(net, X, Y, epsilon=args.epsilon, method=args.method, mode=args.mode,
                            sample=args.sample, dropout_seed=args.dropout_seed, threads=args.threads,
                            include_kinks=args.include_kinks, seed=args.seed,
                            progress=None if _progress(args) and not args.json else False)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
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


# -------------------------------------------------------------------- train
def cmd_train(args):
    from . import Network
    args.plot = _plot_path(args.plot, "--plot")
    args.boundary = _plot_path(args.boundary, "--boundary")
    if args.save:
        _writable_target(args.save, "--save")
        if getattr(Network, "save", None) is None:
            raise CliError("--save needs Network.save, which this version of minnet does not have")
    X, Y = _dataset(args.dataset, args.examples, args.seed)
    binary = Y.ndim == 2 and Y.shape[0] == 1
    n_classes = 2 if binary else int(Y.max()) + 1
    output = args.output
    if output == "auto":
        output = "sigmoid" if binary else "softmax"
    if output == "sigmoid" and not binary:
        raise CliError(f"--output sigmoid needs a binary dataset; {args.dataset} has {n_classes} classes "
                       f"(use softmax)")
    if output == "softmax" and binary:
        Y = Y[0].astype(np.int64)  # class labels for 2 softmax units
    n_out = 1 if output == "sigmoid" else n_classes
    dims = [X.shape[0]] + args.layers + [n_out]
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
    check_at = [0, args.epochs] if args.check else None
    t = time.perf_counter()
    history = net.fit(X_train, Y_train, optimizer=args.optimizer, learning_rate=args.lr, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, check_at=check_at, progress=_progress(args))
    seconds = time.perf_counter() - t
    for epoch, report in sorted(history["checks"].items()):
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


# -------------------------------------------------------------------- bench
def _rate(n, seconds):
    r = n / seconds if seconds > 0 else float("inf")
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if r >= scale:
            return f"{r / scale:.3g}{unit}"
    return f"{r:.3g}"


def _workload(name, seed=0):
    from . import Network
    dims, m = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    Y = rng.integers(0, dims[-1], size=m)
    return Network(dims, hidden="relu", output="softmax", lambd=0.7, seed=seed), X, Y


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


def cmd_bench(args):
    import numba

    from . import Network, baselines, difference, gradient_check
    threads = args.threads
    if threads is not None and threads > numba.config.NUMBA_NUM_THREADS:
        raise CliError(f"--threads must be <= {numba.config.NUMBA_NUM_THREADS} (Numba's thread pool here)")
    wanted = [] if args.baselines == ["none"] else args.baselines
    if "none" in wanted:
        raise CliError("--baselines none cannot be combined with other baselines")
    if "torch" in wanted and not baselines.torch_available():
        print("torch baseline: skipped, PyTorch is not installed (it is optional: pip install torch)")
        wanted = [b for b in wanted if b != "torch"]
    n_threads = threads or numba.get_num_threads()
    print(f"Gradient-check speed: relu hidden, softmax output, lambd 0.7, X standard normal; minnet on "
          f"{n_threads} Numba thread(s), best of {args.repeat} run(s) (runs over {REPEAT_LIMIT:g} s are not "
          f"repeated); baselines run once, on one BLAS / torch thread.", flush=True)

    # Compile (or load from the cache) every kernel first so that no timing includes it.
    tiny = Network([3, 4, 3], hidden="relu", output="softmax", lambd=0.7)
    Xt, Yt = np.random.default_rng(0).standard_normal((3, 5)), np.arange(5) % 3
    for method in args.methods:
        gradient_check(tiny, Xt, Yt, method=method, threads=threads, progress=False)

    head = ["workload", "parameters", "m", "method", "seconds", "entries/s", "verdict"] + \
        [f"vs {b}" for b in wanted]
    rows = []
    status = _Status(enabled=sys.stderr.isatty() and not args.quiet)
    skipped = "skipped (slow; add --full-baselines)"

    for name in args.workloads:
        net, X, Y = _workload(name)
        n, m = net.layout.size, X.shape[1]
        first = [name, f"{n:,}", m]
        slow_ok = args.full_baselines or n <= SLOW_ABOVE
        timed = {}   # baseline -> (seconds, estimated?)
        for b in wanted:
            ones = ["1x" if c == b else "" for c in wanted]
            if b == "numpy" and slow_ok:
                status.show(f"{name}: numpy loop over {n:,} entries ...")
                seconds, approx = _best_time(lambda: baselines.numpy_loop_check(net, X, Y, blas_threads=1), 1)
                verdict = _verdict_of(difference(approx, _backprop(net, X, Y)))
                timed[b] = (seconds, False)
                rows.append(first + ["numpy loop", f"{seconds:.3g}", _rate(n, seconds), verdict] + ones)
            elif b == "numpy":
                status.show(f"{name}: numpy loop on {ESTIMATE_SAMPLE:,} of {n:,} entries ...")
                picks = np.random.default_rng(0).choice(n, size=ESTIMATE_SAMPLE, replace=False)
                t = time.perf_counter()
                baselines.numpy_loop_check(net, X, Y, indices=picks, blas_threads=1)
                seconds = (time.perf_counter() - t) * n / ESTIMATE_SAMPLE
                timed[b] = (seconds, True)
                rows.append(first + ["numpy loop", f"~{seconds:.3g} (est.)", _rate(n, seconds), "-"] + ones)
            elif n > TORCH_LIMIT:
                rows.append(first + ["torch gradcheck", f"skipped (over {TORCH_LIMIT:,} parameters torch's "
                                                        f"gradcheck runs out of memory)"])
            elif slow_ok:  # torch
                status.show(f"{name}: torch.autograd.gradcheck over {n:,} entries ...")
                seconds, ok = _best_time(lambda: baselines.torch_gradcheck(net, X, Y, torch_threads=1), 1)
                timed[b] = (seconds, False)
                rows.append(first + ["torch gradcheck", f"{seconds:.3g}", _rate(n, seconds),
                                     "passed" if ok else "failed"] + ones)
            else:
                rows.append(first + ["torch gradcheck", skipped])
        for method in args.methods:
            if method == "full" and not slow_ok:
                rows.append(first + ["minnet full", skipped])
                continue
            status.show(f"{name}: minnet {method} over {n:,} entries ...")
            seconds, report = _best_time(
                lambda: gradient_check(net, X, Y, method=method, threads=threads, progress=False), args.repeat)
            speedups = []
            for b in wanted:
                if b in timed:
                    base, estimated = timed[b]
                    speedups.append(f"{'~' if estimated else ''}{base / seconds:.3g}x")
                else:
                    speedups.append("-")
            rows.append(first + [f"minnet {method}", f"{seconds:.3g}", _rate(n, seconds), report.verdict] + speedups)
    status.show("")
    print()
    print(_table(head, rows))
    if any(r[4].startswith("~") for r in rows):
        print(f"\n~ : the NumPy loop was timed on {ESTIMATE_SAMPLE:,} random entries and scaled up (every entry "
              f"costs the same two forward passes); --full-baselines runs it in full.")
    return 0


class _Status:
    """A one-line, self-erasing status on a terminal's stderr (nothing otherwise)."""

    def __init__(self, enabled):
        self.enabled = enabled

    def show(self, text):
        if self.enabled:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()


def _backprop(net, X, Y):
    from . import gradients_to_vector
    return gradients_to_vector(net.gradients(X, Y), net.layout)


def _verdict_of(diff, thresholds=(1e-7, 1e-3)):
    return "correct" if diff < thresholds[0] else "suspicious" if diff < thresholds[1] else "bug"


def _table(head, rows):
    cells = [head] + [[str(c) for c in r] for r in rows]
    for r in cells:
        r.extend([""] * (len(head) - len(r)))
    spanning = [r for r in cells[1:] if r[4].startswith("skipped")]
    widths = [max(len(r[k]) for r in cells if r not in spanning or k < 4) for k in range(len(head))]
    lines = []
    for r in cells:
        if r in spanning:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:4], widths[:4])) + "  " + r[4])
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------- parser
MAIN_EPILOG = """\
examples:
  minnet demo
  minnet check --layers 4,20,8,3 --output softmax --lambd 0.7 --keep-prob 0.86
  minnet train --dataset moons --layers 16,8 --epochs 2000 --plot cost.png
  minnet bench --workloads digits,medium

Run 'minnet COMMAND --help' for a command's options and examples.
Exit status: 0 success; 2 bad argument; minnet check: 0 correct, 1 suspicious, 2 bug.
"""

DEMO_EPILOG = f"""\
The demo trains a {DEMO['layer_dims']} network ({DEMO['hidden']} hidden, {DEMO['output']} output,
lambd={DEMO['lambd']}, keep_prob={DEMO['keep_prob']}) with Adam on the 400-point flower data. It
gradient-checks backprop before and after training (dropout masks fixed: the deterministic check mode),
prints the training accuracy, and writes minnet_demo_cost.png, minnet_demo_boundary.png and
minnet_demo_check.png into --out when matplotlib is installed ({PLOT_HINT}).
Exit status: 0 when both checks pass, else as for 'minnet check' (1 suspicious, 2 bug).

examples:
  minnet demo
  minnet demo --out plots --quiet
  minnet demo --epochs 1000
"""

CHECK_EPILOG = """\
The network is initialized with --init and --seed; X is standard normal (n_0, m) and the labels
match the output: 0/1 for sigmoid, class indices for softmax, standard normal for linear.
With --keep-prob below 1 the check uses fixed dropout masks (--dropout-seed).

exit status: 0 correct, 1 suspicious, 2 bug (2 also for a bad argument).

examples:
  minnet check
  minnet check --layers 2,20,3,1 --lambd 0.7 --keep-prob 0.86
  minnet check --layers 784,128,64,10 --output softmax --examples 64 --threads 2
  minnet check --layers 256,64,10 --output softmax --mode directional
  minnet check --layers 64,32,10 --output softmax --sample 50 --json > report.json
  minnet check --layers 4,8,1 --plot check.png
"""

TRAIN_EPILOG = """\
--layers gives the hidden sizes only; the input size comes from the dataset, and so does the
output: 1 sigmoid unit for a binary dataset (flower, moons, circles, xor), softmax over the
classes for a multi-class one (spirals, blobs, digits). '--layers ""' trains without a hidden layer.
digits needs scikit-learn (pip install "minnet[datasets]").

examples:
  minnet train --dataset flower --layers 32,16 --lambd 0.1 --keep-prob 0.9 --epochs 5000
  minnet train --dataset spirals --layers 50 --epochs 3000 --boundary spirals.png
  minnet train --dataset digits --layers 64,32 --epochs 300 --batch-size 64 --test-split 0.2
  minnet train --dataset moons --layers 16,8 --check --save moons.npz --plot cost.png
"""

BENCH_EPILOG = f"""\
workloads (relu hidden, softmax output, lambd 0.7, X standard normal):
  digits  [64, 32, 16, 10]    m = 256   (2,778 parameters)
  medium  [256, 64, 32, 10]   m = 128   (18,858 parameters)
  mnist   [784, 128, 64, 10]  m = 64    (109,386 parameters)

Baselines: "numpy" is the plain loop (perturb one entry in place, two full forward passes per entry),
"torch" is torch.autograd.gradcheck in float64 (only if PyTorch is installed; never required).
Both run on one BLAS / torch thread: the matrices are small, and on a busy machine extra threads
slow the loops down erratically.
On workloads over {SLOW_ABOVE:,} parameters the slow runs (torch, minnet's "full" method) are skipped and
the NumPy loop's time is estimated from {ESTIMATE_SAMPLE:,} entries, unless --full-baselines
(the full NumPy loop on mnist takes a minute or more). torch is never run over {TORCH_LIMIT:,}
parameters: its gradcheck ran out of 24 GB of memory on mnist.

examples:
  minnet bench
  minnet bench --workloads digits --baselines numpy,torch
  minnet bench --workloads mnist --baselines none --threads 1
  minnet bench --workloads mnist --full-baselines
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
    p.add_argument("--out", default=".", metavar="DIR", help="folder for the PNG plots (default: current folder)")
    p.add_argument("--epochs", type=nonnegative_int, default=DEMO["epochs"],
                   help=f"training epochs (default {DEMO['epochs']})")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line per check instead of tables")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("check", help="gradient-check a network on random data",
                       description="Gradient-check backprop of a minnet network on synthetic data.",
                       epilog=CHECK_EPILOG, formatter_class=fmt)
    p.add_argument("--layers", type=layer_dims, default=[2, 20, 3, 1], metavar="N0,N1,...,NL",
                   help="all layer sizes, input first (default 2,20,3,1)")
    p.add_argument("--hidden", choices=HIDDEN, default="relu", help="hidden activation (default relu)")
    p.add_argument("--output", choices=OUTPUTS, default="sigmoid", help="output activation (default sigmoid)")
    p.add_argument("--lambd", type=nonnegative_float, default=0.0, help="L2 strength (default 0)")
    p.add_argument("--keep-prob", type=probability, default=1.0, help="dropout keep probability (default 1)")
    p.add_argument("--init", choices=("zeros", "random", "he", "xavier"), default="he",
                   help="weight initialization (default he)")
    p.add_argument("--examples", type=positive_int, default=64, metavar="M", help="examples m (default 64)")
    p.add_argument("--method", choices=METHODS, default="incremental",
                   help="incremental (fast) or full forward pass per entry (default incremental)")
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: every entry; directional: one random direction per block (default full)")
    p.add_argument("--sample", type=positive_int, default=None, metavar="K",
                   help="check only K random entries of every block")
    p.add_argument("--epsilon", type=positive_float, default=1e-7, help="perturbation (default 1e-7)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N", help="Numba threads")
    p.add_argument("--dropout-seed", type=nonnegative_int, default=0, metavar="S",
                   help="seed of the fixed dropout masks (default 0)")
    p.add_argument("--include-kinks", action="store_true",
                   help="count entries whose perturbation crosses a relu kink in the verdict")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seeds the network, data and sampling")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="PNG", help="save a bar chart of the block differences")
    p.add_argument("--quiet", action="store_true", help="one summary line, no progress bar")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("train", help="train on a built-in dataset",
                       description="Train a network on a built-in dataset and report cost and accuracy.",
                       epilog=TRAIN_EPILOG, formatter_class=fmt)
    p.add_argument("--dataset", choices=DATASETS, default="flower", help="(default flower)")
    p.add_argument("--examples", type=positive_int, default=None, metavar="M",
                   help="examples to generate (not for digits; default: the dataset's own)")
    p.add_argument("--layers", type=hidden_sizes, default=[20, 8], metavar="N1,N2,...",
                   help="hidden layer sizes only (default 20,8)")
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
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz)")
    p.add_argument("--plot", metavar="PNG", help="save the cost curve")
    p.add_argument("--boundary", metavar="PNG", help="save the decision boundary (2-D datasets)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no header")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("bench", help="time the gradient check against NumPy and PyTorch",
                       description="The check-speed table: minnet's gradient check against reference loops.",
                       epilog=BENCH_EPILOG, formatter_class=fmt)
    p.add_argument("--workloads", type=_choices(tuple(WORKLOADS), "workload"), default=list(WORKLOADS),
                   metavar="W,...", help="digits, medium, mnist (default: all)")
    p.add_argument("--methods", type=_choices(METHODS, "method"), default=list(METHODS), metavar="M,...",
                   help="minnet methods to time: incremental, full (default: both)")
    p.add_argument("--baselines", type=_choices(("numpy", "torch", "none"), "baseline"), default=["numpy"],
                   metavar="B,...", help="numpy, torch or none (default numpy)")
    p.add_argument("--full-baselines", action="store_true",
                   help="run the slow runs in full on every workload (minutes on mnist)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N", help="Numba threads for minnet")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="R",
                   help="time minnet R times and keep the best (default 3)")
    p.add_argument("--quiet", action="store_true", help="no status line on stderr")
    p.set_defaults(run=cmd_bench)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            raise CliError("choose a command: demo, check, train or bench (see 'minnet --help')")
        if extra:
            raise CliError(f"unrecognized arguments: {' '.join(extra)} (see '{PROG} {args.command} --help')")
        return args.run(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except OSError as exc:
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"{PROG}: error: cannot access{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

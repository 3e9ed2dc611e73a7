"""``minnet demo``: check, train and check again on the flower data with the demo's tuned settings,
then plot; its exit status is the worse check's.
Imports ``_common`` only, of the CLI; no other command."""
import os
import sys
import time

from . import _common
from ._common import (BROKEN_PIPE, EXIT_STATUS, INTERNAL_ERROR, INTERRUPTED, PLOT_HINT, PROG, USAGE_ERROR, CliError,
                      exit_status, nonnegative_int, percent, show_progress, summary, worse, writing)
from ._names import DEFAULT_HIDDEN, DEFAULT_OUTPUT

# The demo's settings: tuned so that training accuracy on the flower data
# stays >= 95 % across initialization seeds (measured: 95.0-96.3 % for seeds 0-5).
DEMO = {"m": 400, "layer_dims": [2, 32, 16, 1], "hidden": DEFAULT_HIDDEN, "output": DEFAULT_OUTPUT, "lambd": 0.1,
        "keep_prob": 0.9, "optimizer": "adam", "learning_rate": 0.01, "epochs": 5000, "seed": 0}

HELP = "check, train and check again on the flower data"
DESCRIPTION = "The main job in one command, on built-in data."
EPILOG = f"""\
The demo trains a {DEMO['layer_dims']} network ({DEMO['hidden']} hidden, {DEMO['output']} output,
lambd={DEMO['lambd']}, keep_prob={DEMO['keep_prob']}) with Adam on the 400-point flower data. It
gradient-checks backprop before and after training (dropout masks fixed: the deterministic check mode),
prints the training accuracy, and writes minnet_demo_cost.png, minnet_demo_boundary.png and
minnet_demo_check.png into --out when matplotlib is installed ({PLOT_HINT}).
Exit status: 0 when both checks pass, else the worse verdict's status as for 'minnet check'
({EXIT_STATUS['suspicious']} suspicious, {EXIT_STATUS['bug']} bug, {EXIT_STATUS['inconclusive']} inconclusive);
{USAGE_ERROR} usage error; {INTERNAL_ERROR} a bug in minnet (it prints the traceback to report);
{INTERRUPTED} interrupted; {BROKEN_PIPE} closed pipe.

examples:
  minnet demo
  minnet demo --out plots --quiet
  minnet demo --epochs 1000
"""


def add_arguments(parser):
    parser.add_argument("--out", default=".", metavar="DIR",
                        help="folder for the PNG plots, made if missing (default: current folder)")
    parser.add_argument("--epochs", type=nonnegative_int, default=DEMO["epochs"],
                        help=f"training epochs (default {DEMO['epochs']})")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar; one line per check instead of tables")


def run(args):
    """Check, train, check again and plot; return the worse check's exit status."""
    from .. import Network, datasets, gradient_check
    out = args.out
    if not out.strip():
        raise CliError("--out needs a folder, like plots (an empty one was given)")
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out: {out!r} is a file, not a folder")
    if _common.have_matplotlib():  # without it no file is written, so no folder is made
        _common.output_folder(out, "--out")
    quiet, progress = args.quiet, show_progress(args)
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
    print(summary(before) if quiet else before)
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
    print(summary(after) if quiet else after)

    accuracy = net.accuracy(X, Y)
    right = int(round(accuracy * X.shape[1]))
    print(f"\n4. Training accuracy: {percent(accuracy)} ({right} of {X.shape[1]} points)")

    history["checks"] = {0: before, cfg["epochs"]: after}
    _plot(net, X, Y, history, before=before, out=out, accuracy=accuracy)
    print(f"\nDone in {time.perf_counter() - start:.1f} s.")
    status = exit_status(worse(before.verdict, after.verdict))
    if status:
        print(f"{PROG} demo: a gradient check did not pass (exit status {status})", file=sys.stderr)
    return status


def _plot(net, X, Y, history, *, before, out, accuracy):
    """The demo's plots into ``out``, or how to get them without matplotlib.

    The cost curve (none after 0 epochs), the decision boundary and the check at initialization.
    """
    if not _common.have_matplotlib():
        print(f"\nPlots: skipped, matplotlib is not installed. To get them: {PLOT_HINT}")
        return
    from .. import plots
    paths = [os.path.join(out, f"minnet_demo_{name}.png") for name in ("cost", "boundary", "check")]
    if history["cost"]:
        with writing(paths[0], "--out"):
            plots.plot_cost(history, path=paths[0], title="Flower data: training cost")
    else:
        paths.pop(0)
    with writing(paths[-2], "--out"):
        plots.plot_decision_boundary(net, X, Y, path=paths[-2], title=f"Flower data after training: "
                                     f"{accuracy:.1%} of {X.shape[1]} points right")
    with writing(paths[-1], "--out"):
        plots.plot_check(before, path=paths[-1], title=f"Gradient check at initialization: {before.verdict}")
    print("\nPlots: " + ", ".join(paths))

"""``minnet train``: train a network on a built-in dataset, fitting --layers and --output to the data,
and report cost and accuracy; save the network and plot on request.
Imports ``_common`` and ``_names`` of the CLI; no other command."""
import time

import numpy as np

from ..training import GROWTH
from ._common import (TRAINING_DIVERGED, CliError, exit_status_line, fraction, layer_dims, nonnegative_float,
                      nonnegative_int, output_file, percent, plot_path, positive_float, positive_int, probability,
                      show_progress, summary, writing)
from ._names import (BINARY_OUTPUT, CLASS_OUTPUT, DEFAULT_HIDDEN, HIDDEN_CHOICES, TRAIN_OUTPUT_CHOICES, auto_output,
                     needs_binary, output_units,
                     train_labels)

DATASETS = ("flower", "moons", "circles", "spirals", "xor", "blobs", "digits")
OPTIMIZERS = ("gd", "momentum", "adam")
TRAIN_HIDDEN = [20, 8]  # the hidden sizes when --layers is not given
CHECK_EXAMPLES = 64  # --check: the first this many training examples (all, when fewer)

HELP = "train on a built-in dataset"
DESCRIPTION = "Train a network on a built-in dataset and report cost and accuracy."
EPILOG = """\
--layers gives all layer sizes, input to output, as in 'minnet check'. The dataset fixes the first
(its features: 2 for the 2-D sets, 64 for digits) and the last: 1 for a sigmoid output on binary
data (flower, moons, circles, xor), the number of classes for softmax (spirals 3, blobs 3,
digits 10; 2 on binary data picks softmax). A size that does not match is an error.
'--layers 2,1' trains without a hidden layer. Default: the data's sizes around 20,8.
Output files (--save, --plot, --boundary) are checked before training; missing folders are made.
digits needs scikit-learn (pip install "minnet[datasets]").
--check gradient-checks on the first {CHECK_EXAMPLES} training examples (all of them, when fewer).
{EXIT_STATUS}

examples:
  minnet train --dataset flower --layers 2,32,16,1 --lambd 0.1 --keep-prob 0.9 --epochs 5000
  minnet train --dataset spirals --layers 2,50,3 --epochs 3000 --boundary spirals.png
  minnet train --dataset digits --layers 64,64,32,10 --epochs 300 --batch-size 64 --test-split 0.2
  minnet train --dataset moons --layers 2,16,8,1 --check --save models/moons.npz --plot cost.png
""".format(CHECK_EXAMPLES=CHECK_EXAMPLES, EXIT_STATUS=exit_status_line(
    "0 trained (the verdicts of --check are reported, not made the status)",
    extra=f"{TRAINING_DIVERGED} training diverged: the cost became NaN or inf, or grew more than {GROWTH:g}-fold "
          f"(try a smaller --lr); Ctrl-C stops between mini-batches and says where."))


def add_arguments(parser):
    p = parser
    p.add_argument("--dataset", choices=DATASETS, default="flower", help="(default flower)")
    p.add_argument("--examples", type=positive_int, default=None, metavar="M",
                   help="examples to generate (not for digits; default: the dataset's own)")
    p.add_argument("--layers", type=layer_dims, default=None, metavar="N0,N1,...,NL",
                   help="all layer sizes, input to output; the data fixes the first and the last "
                        "(default: N0,20,8,NL from the data)")
    p.add_argument("--hidden", choices=HIDDEN_CHOICES, default=DEFAULT_HIDDEN,
                   help=f"hidden activation (default {DEFAULT_HIDDEN})")
    p.add_argument("--output", choices=TRAIN_OUTPUT_CHOICES, default="auto",
                   help="auto: sigmoid for binary data, softmax otherwise (default auto)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(default adam)")
    p.add_argument("--epochs", type=nonnegative_int, default=2000, help="(default 2000)")
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                   help="mini-batch size (default: the full batch)")
    p.add_argument("--lambd", type=nonnegative_float, default=0.0, help="L2 strength (default 0)")
    p.add_argument("--keep-prob", type=probability, default=1.0, help="dropout keep probability (default 1)")
    p.add_argument("--test-split", type=fraction, default=0.0, metavar="F",
                   help="hold out this fraction of the examples and report its accuracy (default 0)")
    p.add_argument("--check", action="store_true", help="gradient-check before and after training")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seeds the data, the initialization, the split and the shuffling (default 0)")
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz; checked before training)")
    p.add_argument("--plot", metavar="PNG", help="save the cost curve")
    p.add_argument("--boundary", metavar="PNG", help="save the decision boundary (2-D datasets)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no header")


def run(args):
    """Check the options and output files, train, report; 0 on success."""
    from .. import GradientCheck, Network
    args.plot = plot_path(args.plot, "--plot")
    args.boundary = plot_path(args.boundary, "--boundary")
    if args.save is not None:
        if getattr(Network, "save", None) is None:
            raise CliError("--save needs Network.save, which this version of minnet does not have")
        output_file(args.save, "--save")
    X, Y = _dataset(args.dataset, examples=args.examples, seed=args.seed)
    binary = Y.ndim == 2 and Y.shape[0] == 1
    n_classes = 2 if binary else int(Y.max()) + 1
    dims, output = _train_layers(args.layers, args.output, dataset=args.dataset, n_features=X.shape[0],
                                 n_classes=n_classes, binary=binary)
    Y = train_labels(Y, output, binary)
    if args.boundary and X.shape[0] != 2:
        raise CliError(f"--boundary needs 2-D data; {args.dataset} has {X.shape[0]} features")
    if len(dims) == 2 and args.keep_prob < 1.0:
        raise CliError("--keep-prob below 1 needs at least one hidden layer (dropout acts on hidden units)")
    net = Network(dims, hidden=args.hidden, output=output, lambd=args.lambd, keep_prob=args.keep_prob,
                  seed=args.seed)

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
        print(f"network {dims}: {hidden}, {output} output, lambd={args.lambd}, keep_prob={args.keep_prob}, "
              f"{net.layout.size:,} parameters")
        print(f"training: {args.optimizer}, learning rate {args.lr}, {args.epochs:,} epochs, {batch}", flush=True)
    n_check = min(CHECK_EXAMPLES, len(train))
    callbacks = ([GradientCheck(at=[0, args.epochs], data=(X_train[:, :n_check], Y_train[..., :n_check]))]
                 if args.check else [])
    t = time.perf_counter()
    history = net.fit(X_train, Y_train, optimizer=args.optimizer, learning_rate=args.lr, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, progress=show_progress(args), callbacks=callbacks)
    seconds = time.perf_counter() - t
    for epoch, report in sorted(history.get("checks", {}).items()):
        when = "before training" if epoch == 0 else "after training"
        print(f"gradient check {when} ({n_check} example{'s' if n_check != 1 else ''}): {summary(report)}")
    if history["cost"]:
        print(f"final cost {history['cost'][-1]:.6f} after {args.epochs:,} epochs ({seconds:.2f} s)")
    else:
        print("no training (0 epochs)")
    print(f"training accuracy {percent(net.accuracy(X_train, Y_train))}")
    if n_test:
        print(f"test accuracy {percent(net.accuracy(X_test, Y_test))} ({n_test} held-out examples)")
    _save_and_plot(args, net, X, Y, history, test=test if n_test else None)
    return 0


def _save_and_plot(args, net, X, Y, history, *, test):
    """--save, --plot and --boundary after training (their paths were checked before it)."""
    if args.save:
        try:
            with writing(args.save, "--save"):
                net.save(args.save)
        except ImportError as exc:
            raise CliError(f"--save: this version of minnet cannot save networks ({exc})") from None
        print(f"saved the network to {args.save} (read it back with minnet.Network.load)")
    if args.plot or args.boundary:
        from .. import plots
        if args.plot:
            if not history["cost"]:
                raise CliError("--plot: there is no cost curve after 0 epochs")
            with writing(args.plot, "--plot"):
                plots.plot_cost(history, path=args.plot, title=f"{args.dataset}: training cost")
            print(f"cost curve: {args.plot}")
        if args.boundary:
            with writing(args.boundary, "--boundary"):
                plots.plot_decision_boundary(net, X, Y, path=args.boundary, test=test)
            print(f"decision boundary: {args.boundary}")


def _dataset(name, *, examples, seed):
    """X, Y of a built-in dataset; digits has its own size and no seed."""
    from .. import _memory, datasets
    kwargs = {}
    if name == "digits":
        if examples is not None:
            raise CliError("--examples does not apply to the digits dataset (it has 1,797 images)")
    else:
        kwargs["seed"] = seed
        if examples is not None:
            _memory.require(_memory.dataset_bytes(examples), what=f"the {name} dataset of {examples:,} examples",
                            advice="ask for fewer --examples, or free memory")
            kwargs["m"] = examples
    try:
        return datasets.load(name, **kwargs)
    except ImportError as exc:
        raise CliError(str(exc)) from None


def _train_layers(layers, output, *, dataset, n_features, n_classes, binary):
    """Check --layers (all sizes, input to output) against the data; returns (layer_dims, output).

    The data fixes the first size (its features) and the last: 1 for a sigmoid output
    on binary data, the number of classes for softmax. Under ``--output auto`` a binary
    dataset gets sigmoid, or softmax if the last size is 2. A mismatch is an error.
    """
    if needs_binary(output) and not binary:
        raise CliError(f"--output {output} needs a binary dataset; {dataset} has {n_classes} classes "
                       f"(use {CLASS_OUTPUT})")
    if layers is None:
        out = auto_output(binary) if output == "auto" else output
        return [n_features] + TRAIN_HIDDEN + [output_units(out, n_classes)], out
    given = ",".join(map(str, layers))

    def suggest(last):
        return ",".join(map(str, [n_features] + layers[1:-1] + [last]))

    if layers[0] != n_features:
        raise CliError(f"--layers {given}: the first size is the input, and {dataset} has {n_features} features "
                       f"(use --layers {suggest(layers[-1])})")
    last = layers[-1]
    if output == "auto":
        output = auto_output(binary, last)
        if output is None:
            raise CliError(f"--layers {given}: the last size is the output, and {dataset} has 2 classes: 1 "
                           f"({BINARY_OUTPUT}) or 2 ({CLASS_OUTPUT}) (use --layers {suggest(1)})")
    units = output_units(output, n_classes)
    if last != units and needs_binary(output):
        raise CliError(f"--layers {given}: a {output} output for binary data has {units} unit "
                       f"(use --layers {suggest(units)})")
    if last != units:
        raise CliError(f"--layers {given}: the last size is the {output} output, and {dataset} has {n_classes} "
                       f"classes (use --layers {suggest(units)})")
    return list(layers), output

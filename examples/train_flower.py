"""Train a 3-layer network on the flower data, gradient-checking before and after.

    python examples/train_flower.py [--fast] [--out DIR]

Prints the checks and the training accuracy; with matplotlib installed it
writes flower_cost.png and flower_boundary.png into --out (default: the
current folder).  --fast (or MINNET_EXAMPLE_FAST=1) trains for fewer epochs.
"""
import argparse
import os
import sys

import minnet
from minnet import datasets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="few epochs, for a quick run")
    parser.add_argument("--out", default=".", help="folder for the plots")
    args = parser.parse_args(argv)
    fast = args.fast or os.environ.get("MINNET_EXAMPLE_FAST") == "1"
    epochs = 300 if fast else 5000

    X, Y = datasets.flower(m=400, seed=0)
    net = minnet.Network([2, 32, 16, 1], hidden="relu", output="sigmoid", lambd=0.1, keep_prob=0.9, seed=0)
    print(net)

    # GradientCheck runs minnet.gradient_check at those epochs (dropout masks fixed by dropout_seed=0);
    # its reports land in history["checks"].
    check = minnet.GradientCheck(at=[0, epochs], data=(X, Y))
    history = net.fit(X, Y, optimizer="adam", learning_rate=0.01, epochs=epochs, seed=0,
                      progress=sys.stderr.isatty(), callbacks=[check])
    for epoch, report in history["checks"].items():
        print(f"\ngradient check {'before' if epoch == 0 else 'after'} training:")
        print(report)
    print(f"\ncost {history['cost'][0]:.4f} -> {history['cost'][-1]:.4f} in {epochs} epochs")
    print(f"training accuracy: {net.accuracy(X, Y):.2%}")

    try:
        from minnet import plots
        cost_png = os.path.join(args.out, "flower_cost.png")
        boundary_png = os.path.join(args.out, "flower_boundary.png")
        plots.plot_cost(history, path=cost_png, title="Flower data: training cost")
        plots.plot_decision_boundary(net, X, Y, path=boundary_png)
        print(f"plots: {cost_png}, {boundary_png}")
    except ImportError as exc:
        print(f"plots skipped: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

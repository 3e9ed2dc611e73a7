"""Classify scikit-learn's 8x8 digits with a softmax network (needs scikit-learn).

    python examples/train_digits.py [--fast]

Holds out 20 % of the images, gradient-checks the network on a batch,
trains with Adam on mini-batches and prints the training and test accuracy.
--fast (or MINNET_EXAMPLE_FAST=1) trains for a few epochs only.
"""
import os
import sys

import numpy as np

import minnet
from minnet import datasets


def main():
    fast = "--fast" in sys.argv[1:] or os.environ.get("MINNET_EXAMPLE_FAST") == "1"
    try:
        X, labels = datasets.load_digits()
    except ImportError:
        print('This example needs scikit-learn: pip install "minnet[datasets]" (or pip install scikit-learn)',
              file=sys.stderr)
        return 1
    order = np.random.default_rng(0).permutation(X.shape[1])
    n_test = X.shape[1] // 5
    test, train = order[:n_test], order[n_test:]
    X_train, y_train, X_test, y_test = X[:, train], labels[train], X[:, test], labels[test]
    print(f"digits: {X_train.shape[1]} training and {n_test} test images of {X.shape[0]} pixels")

    net = minnet.Network([64, 64, 32, 10], hidden="relu", output="softmax", lambd=0.5, seed=0)
    report = minnet.gradient_check(net, X_train[:, :64], y_train[:64])
    print(f"\ngradient check at initialization on 64 images ({report.n_parameters:,} parameters):")
    print(report)

    epochs = 20 if fast else 200
    history = net.fit(X_train, y_train, optimizer="adam", learning_rate=0.003, epochs=epochs, batch_size=64,
                      seed=0, progress=sys.stderr.isatty())
    print(f"\ncost {history['cost'][0]:.4f} -> {history['cost'][-1]:.4f} in {epochs} epochs")
    print(f"training accuracy {net.accuracy(X_train, y_train):.2%}, test accuracy {net.accuracy(X_test, y_test):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

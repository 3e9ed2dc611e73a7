"""Gradient checking a network with dropout: fresh masks are refused, fixed masks pass.

With dropout, every evaluation of the cost drops different units, so J is
not a function of theta and centered differences of it mean nothing.  The
deterministic check mode draws the dropout masks once and uses the same
masks in every J and in backprop.

    python examples/dropout_check_mode.py [--fast]

Part 1 uses a minnet Network, part 2 a learner's own NumPy code with
check_gradients.  --fast (or MINNET_EXAMPLE_FAST=1) uses fewer examples.
"""
import os
import sys
import textwrap

import numpy as np

import minnet

def refused(exc):
    return textwrap.fill(str(exc), width=100, initial_indent="  refused: ", subsequent_indent="    ")


FAST = "--fast" in sys.argv[1:] or os.environ.get("MINNET_EXAMPLE_FAST") == "1"
KEEP_PROB = 0.8


def part1(X, Y):
    net = minnet.Network([X.shape[0], 10, 6, 1], hidden="relu", output="sigmoid", lambd=0.3,
                         keep_prob=KEEP_PROB, seed=0)
    print("Part 1: minnet.gradient_check on", net)
    print("\n  with fresh masks (dropout_seed=None):")
    try:
        minnet.gradient_check(net, X, Y, dropout_seed=None)
    except ValueError as exc:
        print(refused(exc))
    else:
        raise SystemExit("expected the check with fresh dropout masks to be refused")
    print("\n  with fixed masks (dropout_seed=0, the default):\n")
    report = minnet.gradient_check(net, X, Y, dropout_seed=0)
    print(report)
    return report.verdict == "correct"


# ------------------------------------------- a learner's network with dropout
def forward(X, p, masks):
    Z1 = p["W1"] @ X + p["b1"]
    A1 = np.maximum(0, Z1) * masks[0] / KEEP_PROB
    Z2 = p["W2"] @ A1 + p["b2"]
    A2 = 1 / (1 + np.exp(-Z2))
    return Z1, A1, A2


def cost(X, Y, p, masks):
    _, _, A2 = forward(X, p, masks)
    return float(-np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)))


def backward(X, Y, p, masks):
    m = X.shape[1]
    Z1, A1, A2 = forward(X, p, masks)
    dZ2 = A2 - Y
    dA1 = p["W2"].T @ dZ2 * masks[0] / KEEP_PROB
    dZ1 = dA1 * (Z1 > 0)
    return {"dW1": dZ1 @ X.T / m, "db1": dZ1.sum(axis=1, keepdims=True) / m,
            "dW2": dZ2 @ A1.T / m, "db2": dZ2.sum(axis=1, keepdims=True) / m}


def part2(X, Y):
    rng = np.random.default_rng(1)
    params = {"W1": rng.standard_normal((8, X.shape[0])) * 0.5, "b1": np.zeros((8, 1)),
              "W2": rng.standard_normal((1, 8)) * 0.5, "b2": np.zeros((1, 1))}
    m = X.shape[1]
    print("\nPart 2: minnet.check_gradients on a learner's own dropout network")

    def fresh():  # a new mask at every call, as in training
        return [(np.random.default_rng().random((8, m)) < KEEP_PROB).astype(float)]

    print("\n  with fresh masks drawn inside cost and backprop:")
    try:
        minnet.check_gradients(lambda p: cost(X, Y, p, fresh()), lambda p: backward(X, Y, p, fresh()), params)
    except ValueError as exc:
        print(refused(exc))
    else:
        raise SystemExit("expected the check with fresh dropout masks to be refused")

    masks = [(rng.random((8, m)) < KEEP_PROB).astype(float)]  # drawn once, used everywhere
    print("\n  with masks drawn once and reused by cost and backprop:\n")
    report = minnet.check_gradients(lambda p: cost(X, Y, p, masks), lambda p: backward(X, Y, p, masks), params)
    print(report)
    return report.verdict == "correct"


def main():
    rng = np.random.default_rng(0)
    m = 16 if FAST else 64
    X = rng.standard_normal((3, m))
    Y = (rng.random((1, m)) > 0.5).astype(float)
    ok = part1(X, Y) and part2(X, Y)
    print("\nBoth checks pass once the masks are fixed." if ok else "\nA check with fixed masks failed.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

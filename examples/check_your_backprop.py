"""Gradient-check your own backprop, written the way the course writes it.

A learner's 3-layer network in plain NumPy (relu, relu, sigmoid, L2
regularization) has a planted bug: the L2 term is missing from dW2.
``minnet.check_gradients`` finds it, says which block to look at (W2),
and after the fix the check passes.

    python examples/check_your_backprop.py [--fast]

--fast (or MINNET_EXAMPLE_FAST=1) uses fewer examples.
"""
import os
import sys

import numpy as np

import minnet

FAST = "--fast" in sys.argv[1:] or os.environ.get("MINNET_EXAMPLE_FAST") == "1"
LAMBD = 0.7


# ---------------------------------------------------------- the learner's code
def initialize_parameters(layer_dims, seed=1):
    rng = np.random.default_rng(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        parameters["W" + str(l)] = rng.standard_normal((layer_dims[l], layer_dims[l - 1])) * np.sqrt(
            2.0 / layer_dims[l - 1])
        parameters["b" + str(l)] = rng.standard_normal((layer_dims[l], 1)) * 0.1
    return parameters


def relu(Z):
    return np.maximum(0, Z)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def forward_propagation(X, parameters):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    cross_entropy_cost = -np.sum(Y * np.log(A3) + (1 - Y) * np.log(1 - A3)) / m
    L2_regularization_cost = lambd / (2 * m) * (np.sum(np.square(parameters["W1"]))
                                                + np.sum(np.square(parameters["W2"]))
                                                + np.sum(np.square(parameters["W3"])))
    return cross_entropy_cost + L2_regularization_cost


def backward_propagation_with_regularization(X, Y, cache, lambd, buggy):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + lambd / m * W3
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    if buggy:
        dW2 = 1. / m * np.dot(dZ2, A1.T)                      # BUG: forgot + lambd / m * W2
    else:
        dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + lambd / m * W1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# ------------------------------------------------------------- the check
def main():
    rng = np.random.default_rng(0)
    m = 10 if FAST else 50
    X = rng.standard_normal((4, m))
    Y = (rng.random((1, m)) > 0.5).astype(np.float64)
    parameters = initialize_parameters([4, 5, 3, 1])

    def cost_fn(p):
        A3, _ = forward_propagation(X, p)
        return compute_cost_with_regularization(A3, Y, p, LAMBD)

    def grads_fn(buggy):
        def grads(p):
            _, cache = forward_propagation(X, p)
            return backward_propagation_with_regularization(X, Y, cache, LAMBD, buggy)
        return grads

    print("1. The learner's backprop, as first written:\n")
    report = minnet.check_gradients(cost_fn, grads_fn(buggy=True), parameters)
    print(report)
    if report.verdict != "bug" or report.worst_block != "W2":
        print("\nexpected the check to find a bug in W2", file=sys.stderr)
        return 1

    wrong = [name for name, block in report.blocks.items() if block.verdict != "correct"]
    print(f"\nThe check points at {report.worst_block} (blocks off: {', '.join(wrong)}); every other block "
          f"agrees with the numerical gradient.\nLooking at dW2 in the learner's code: the L2 term lambd/m * W2 "
          f"is missing.")

    print("\n2. After adding '+ lambd / m * W2' to dW2:\n")
    fixed = minnet.check_gradients(cost_fn, grads_fn(buggy=False), parameters)
    print(fixed)
    if fixed.verdict != "correct":
        print("\nexpected the fixed backprop to pass", file=sys.stderr)
        return 1
    print(f"\nBackprop is correct: difference {fixed.difference:.1e} < {fixed.thresholds[0]:g}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

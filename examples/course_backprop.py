"""A learner's 3-layer network written the course's way, ready for ``minnet check``.

The file defines what ``minnet check FILE.py`` looks for in the course's
convention: ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``,
``backward_propagation_n(X, Y, cache) -> gradients`` and ``X``, ``Y``,
``parameters``. ``with_planted_bugs()`` returns the same names with the
course's two planted bugs in backprop (dW2 doubled, db1 with 4/m instead of 1/m):

    minnet check examples/course_backprop.py                      # exit 0: correct
    minnet check examples/course_backprop.py:with_planted_bugs    # exit 3: bug, in W2 and b1

Run as a script, it does the same two checks from Python:

    python examples/course_backprop.py
"""
import sys

import numpy as np


def relu(Z):
    return np.maximum(0, Z)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def forward_propagation_n(X, Y, parameters):
    """LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID; returns (cost, cache)."""
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1. / m * np.sum(logprobs)
    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return cost, cache


def backward_propagation_n(X, Y, cache, planted_bugs=False):
    """The gradients of the cost, keyed like the course's ("dZ3", "dW3", ..., "db1")."""
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) * (2 if planted_bugs else 1)       # planted bug: * 2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = (4. if planted_bugs else 1.) / m * np.sum(dZ1, axis=1, keepdims=True)  # planted bug: 4./m
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# Where to check: 3 examples with 4 features, a [4, 5, 3, 1] network.
rng = np.random.default_rng(1)
X = rng.standard_normal((4, 3))
Y = np.array([[1., 1., 0.]])
parameters = {"W1": rng.standard_normal((5, 4)), "b1": rng.standard_normal((5, 1)),
              "W2": rng.standard_normal((3, 5)), "b2": rng.standard_normal((3, 1)),
              "W3": rng.standard_normal((1, 3)), "b3": rng.standard_normal((1, 1))}


def with_planted_bugs():
    """The same names with the buggy backprop: for 'minnet check course_backprop.py:with_planted_bugs'."""
    return {"forward_propagation_n": forward_propagation_n,
            "backward_propagation_n": lambda X, Y, cache: backward_propagation_n(X, Y, cache, planted_bugs=True),
            "X": X, "Y": Y, "parameters": parameters}


def main():
    import minnet

    def cost_fn(p):
        return forward_propagation_n(X, Y, p)[0]

    def grads_fn(planted_bugs):
        return lambda p: backward_propagation_n(X, Y, forward_propagation_n(X, Y, p)[1], planted_bugs)

    buggy = minnet.check_gradients(cost_fn, grads_fn(True), parameters)
    print(f"with the planted bugs: {buggy.verdict}, blocks off: "
          f"{', '.join(name for name, block in buggy.blocks.items() if block.verdict != 'correct')}")
    fixed = minnet.check_gradients(cost_fn, grads_fn(False), parameters)
    print(f"fixed: {fixed.verdict} (difference {fixed.difference:.1e})")
    print("The same from the command line: minnet check course_backprop.py[:with_planted_bugs]")
    return 0 if buggy.verdict == "bug" and fixed.verdict == "correct" else 1


if __name__ == "__main__":
    sys.exit(main())

"""The course's L-layer network (Course 1, Week 4), written the way its learners write it: plain NumPy,
dicts of parameters, caches and gradients, LINEAR -> RELU x (L-1) -> LINEAR -> SIGMOID.

Not part of minnet's machinery: it is the learner's own backprop that ``minnet bench --user-code`` and the
benchmarks check, kept in the package so that the command runs anywhere. Imports NumPy only.
"""
import numpy as np


def initialize_parameters_deep(layer_dims, seed=1):
    """W1 (n1, n0), b1 (n1, 1), ... : He-scaled normal weights, small random biases (none hides behind 0)."""
    rng = np.random.default_rng(seed)
    parameters = {}
    L = len(layer_dims)
    for l in range(1, L):
        parameters["W" + str(l)] = rng.standard_normal((layer_dims[l], layer_dims[l - 1])) / np.sqrt(layer_dims[l - 1])
        parameters["b" + str(l)] = rng.standard_normal((layer_dims[l], 1)) * 0.01
    return parameters


def sigmoid(Z):
    A = 1 / (1 + np.exp(-Z))
    return A, Z


def relu(Z):
    A = np.maximum(0, Z)
    return A, Z


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    if activation == "sigmoid":
        A, activation_cache = sigmoid(Z)
    elif activation == "relu":
        A, activation_cache = relu(Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(A_prev, parameters["W" + str(l)], parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    return AL, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    cost = -1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))
    cost = np.squeeze(cost)
    return cost


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def relu_backward(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    dZ = dA * s * (1 - s)
    return dZ


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward(dA, activation_cache)
    elif activation == "sigmoid":
        dZ = sigmoid_backward(dA, activation_cache)
    dA_prev, dW, db = linear_backward(dZ, linear_cache)
    return dA_prev, dW, db


def L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = - (np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_activation_backward(dAL, current_cache, "sigmoid")
    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(grads["dA" + str(l + 1)], current_cache, "relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def cat_like_data(layer_dims, m, seed=0):
    """X (n0, m) in [0, 1) like the course's flattened cat images, Y (1, m) of 0s and 1s."""
    rng = np.random.default_rng(seed)
    X = rng.random((layer_dims[0], m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    return X, Y


def functions(X, Y):
    """``cost_fn(parameters)`` and ``grads_fn(parameters)`` of the course's model on X, Y: what a learner
    passes to ``minnet.check_gradients``."""
    def cost_fn(parameters):
        AL, _ = L_model_forward(X, parameters)
        return compute_cost(AL, Y)

    def grads_fn(parameters):
        AL, caches = L_model_forward(X, parameters)
        return L_model_backward(AL, Y, caches)

    return cost_fn, grads_fn

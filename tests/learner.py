"""A learner's 3-layer network in the course's style, with planted mistakes.

LINEAR -> RELU -> (dropout) -> LINEAR -> RELU -> (dropout) -> LINEAR -> SIGMOID,
cross-entropy cost with L2 regularization, backprop with L2 and inverted
dropout. The dropout masks D1, D2 are drawn once and passed in, so that J is a
function of the parameters alone (what a gradient check needs).

``bug`` selects one classic mistake (None: the correct code). ``AFFECTED``
lists, for every mistake, the blocks whose gradient it makes wrong; mistakes
in the L2 term are only mistakes when lambd > 0.
"""
import numpy as np

# bug -> blocks whose backprop gradient (or, for a cost bug, whose true gradient) is wrong
AFFECTED = {
    "dW2_doubled": {"W2"},
    "db1_4_over_m": {"b1"},
    "no_l2_in_dW3": {"W3"},
    "l2_in_db2": {"b2"},
    "db3_without_1_over_m": {"b3"},
    "dW3_without_1_over_m": {"W3"},
    "sign_dW1": {"W1"},
    "one_entry_dW2": {"W2"},
    "tanh_derivative_layer2": {"W2", "b2", "W1", "b1"},
    "dropout_not_rescaled_layer1": {"W1", "b1"},
    "dropout_mask_forgotten_layer2": {"W2", "b2", "W1", "b1"},
    "l2_half_factor": {"W1", "W2", "W3"},
    "output_dZ_sign": {"W1", "b1", "W2", "b2", "W3", "b3"},
    "cost_without_W1_in_l2": {"W1"},
    "W_instead_of_WT": {"W1", "b1"},  # needs a square W2
    "dW2_transposed": {"W2"},  # needs a square W2
}
L2_BUGS = {"no_l2_in_dW3", "l2_in_db2", "l2_half_factor", "cost_without_W1_in_l2"}
COST_BUGS = {"cost_without_W1_in_l2"}
SQUARE_BUGS = {"W_instead_of_WT", "dW2_transposed"}
# Written differently from the course, but the same gradient: relu'(A2) == relu'(Z2),
# since A2 = relu(Z2) * D2 / keep_prob is > 0 exactly where Z2 > 0 and the unit is kept,
# and where the unit is dropped dA2 is 0 anyway.
EQUIVALENT = ("relu_derivative_of_A2",)
ONE_ENTRY = (1, 2)  # the entry of dW2 that "one_entry_dW2" gets wrong


def relu(Z):
    return np.maximum(0, Z)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def initialize_parameters(layer_dims, seed=0):
    """He-initialized weights and nonzero random biases (so no bias bug hides behind b = 0)."""
    rng = np.random.default_rng(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        parameters["W" + str(l)] = rng.standard_normal((layer_dims[l], layer_dims[l - 1])) * np.sqrt(
            2 / layer_dims[l - 1])
        parameters["b" + str(l)] = rng.standard_normal((layer_dims[l], 1)) * 0.5
    return parameters


def draw_masks(layer_dims, m, keep_prob, rng):
    """Dropout masks D1, D2 (0/1, kept with probability keep_prob)."""
    D1 = (rng.random((layer_dims[1], m)) < keep_prob).astype(float)
    D2 = (rng.random((layer_dims[2], m)) < keep_prob).astype(float)
    return {"D1": D1, "D2": D2}


def forward_propagation(X, parameters, masks, keep_prob):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    D1, D2 = masks["D1"], masks["D2"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    A1 = A1 * D1
    A1 = A1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    A2 = A2 * D2
    A2 = A2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost(A3, Y, parameters, lambd, bug=None):
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cross_entropy_cost = 1. / m * np.sum(logprobs)
    weights = [parameters["W1"], parameters["W2"], parameters["W3"]]
    if bug == "cost_without_W1_in_l2":
        weights = weights[1:]
    L2_regularization_cost = lambd / (2 * m) * sum(np.sum(np.square(W)) for W in weights)
    return cross_entropy_cost + L2_regularization_cost


def backward_propagation(X, Y, cache, lambd, keep_prob, bug=None):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    if bug == "output_dZ_sign":
        dZ3 = Y - A3
    dW3 = 1. / m * np.dot(dZ3, A2.T) + lambd / m * W3
    if bug == "no_l2_in_dW3":
        dW3 = 1. / m * np.dot(dZ3, A2.T)
    if bug == "dW3_without_1_over_m":
        dW3 = np.dot(dZ3, A2.T) + lambd / m * W3
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    if bug == "db3_without_1_over_m":
        db3 = np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    if bug != "dropout_mask_forgotten_layer2":
        dA2 = dA2 * D2
        dA2 = dA2 / keep_prob
    if bug == "tanh_derivative_layer2":
        dZ2 = dA2 * (1 - np.power(A2, 2))
    elif bug == "relu_derivative_of_A2":
        dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    else:
        dZ2 = np.multiply(dA2, np.int64(Z2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2
    if bug == "dW2_doubled":
        dW2 = 2 * dW2
    if bug == "dW2_transposed":
        dW2 = 1. / m * np.dot(A1, dZ2.T) + lambd / m * W2
    if bug == "one_entry_dW2":
        dW2 = dW2.copy()
        dW2[ONE_ENTRY] += 0.1
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    if bug == "l2_in_db2":
        db2 = db2 + lambd / m * b2

    dA1 = np.dot(W2.T, dZ2)
    if bug == "W_instead_of_WT":
        dA1 = np.dot(W2, dZ2)
    dA1 = dA1 * D1
    if bug != "dropout_not_rescaled_layer1":
        dA1 = dA1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(Z1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + lambd / m * W1
    if bug == "sign_dW1":
        dW1 = -dW1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    if bug == "db1_4_over_m":
        db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)

    if bug == "l2_half_factor":
        dW1 = dW1 - lambd / (2 * m) * W1
        dW2 = dW2 - lambd / (2 * m) * W2
        dW3 = dW3 - lambd / (2 * m) * W3

    # The course's dict also carries dZ and dA; a gradient check should ignore them.
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
            "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
            "dZ1": dZ1, "dW1": dW1, "db1": db1}


def make_functions(X, Y, masks, keep_prob, lambd, bug=None):
    """cost_fn(parameters) -> J and grads_fn(parameters) -> grads, for check_gradients."""

    def cost_fn(parameters):
        A3, _ = forward_propagation(X, parameters, masks, keep_prob)
        return compute_cost(A3, Y, parameters, lambd, bug)

    def grads_fn(parameters):
        _, cache = forward_propagation(X, parameters, masks, keep_prob)
        return backward_propagation(X, Y, cache, lambd, keep_prob, bug)

    return cost_fn, grads_fn

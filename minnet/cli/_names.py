"""The one place in the ``minnet`` command line that knows activation and output names: the options'
choices and defaults, and every decision that depends on an output or a hidden activation.
Meant to read minnet's activation and output registries once they exist. Imports no command
module; of minnet, ``check.api`` only inside ``segment_applies``."""
import numpy as np

HIDDEN_CHOICES = ("relu", "leaky_relu", "tanh", "sigmoid")  # --hidden of check, train and bench
OUTPUT_CHOICES = ("sigmoid", "softmax", "linear")            # --output of check
TRAIN_OUTPUT_CHOICES = ("auto", "sigmoid", "softmax")        # --output of train: classification outputs only
DEFAULT_HIDDEN = "relu"     # --hidden of check, train and bench (the demo has its own tuned settings)
DEFAULT_OUTPUT = "sigmoid"  # --output of check
BENCH_OUTPUT = "softmax"    # the output of every bench workload


def synthetic_data(layer_dims, output, m, *, seed):
    """Standard-normal X (n_0, m) and labels that suit the output activation.

    0/1 for sigmoid, class indices for softmax, standard normal for linear; one
    generator seeded with ``seed`` draws X, then Y.
    """
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


def needs_binary(output):
    """Whether a classification output takes binary data only (sigmoid: one 0/1 unit)."""
    return output == "sigmoid"


def output_units(output, n_classes):
    """The last layer size that an output needs on data with ``n_classes`` classes."""
    return 1 if output == "sigmoid" else n_classes


def auto_output(binary, last=None):
    """The output ``train --output auto`` picks, or None where the last layer size fits none.

    Binary data gets sigmoid, or softmax if the last size is 2; other data gets softmax.
    """
    if not binary:
        return "softmax"
    return {None: "sigmoid", 1: "sigmoid", 2: "softmax"}.get(last)


def train_labels(Y, output, binary):
    """Labels as ``output`` takes them: a binary dataset's (1, m) 0/1 row becomes class indices for softmax."""
    if output == "softmax" and binary:
        return Y[0].astype(np.int64)
    return Y


def segment_applies(hidden):
    """Whether minnet's segment method can check a network with this hidden activation."""
    from ..check.api import PIECEWISE_LINEAR
    return hidden in PIECEWISE_LINEAR

"""The command line's activation and output choices, defaults and decisions, all read from the registries.

Nothing here names an activation or an output: ``minnet.ops`` does. Imports
the registries only, and no command module.
"""
import numpy as np

from ..ops import activations, losses
from ..ops.activations import ACTIVATIONS, PIECEWISE_LINEAR
from ..ops.losses import CLASSIFIERS, OUTPUTS

HIDDEN_CHOICES = tuple(ACTIVATIONS)           # --hidden of check, train and bench
OUTPUT_CHOICES = tuple(OUTPUTS)               # --output of check
TRAIN_OUTPUT_CHOICES = ("auto",) + CLASSIFIERS  # --output of train: classification outputs only
DEFAULT_HIDDEN = activations.DEFAULT          # --hidden of check, train and bench, and the demo's
DEFAULT_OUTPUT = losses.DEFAULT               # --output of check, and the demo's
BINARY_OUTPUT = losses.for_data(binary=True).name  # one 0/1 unit: binary data
CLASS_OUTPUT = losses.for_data(binary=False).name  # one unit per class
BENCH_OUTPUT = CLASS_OUTPUT  # the output of every bench workload
SEGMENT_HIDDEN = " and ".join(PIECEWISE_LINEAR)  # for help texts: where the segment method applies


def synthetic_data(layer_dims, output, m, *, seed):
    """Standard-normal X (n_0, m) and labels that suit the output's targets.

    0/1 for binary targets, class indices for class targets, standard normal
    for real values; one generator seeded with ``seed`` draws X, then Y.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((layer_dims[0], m))
    n_out = layer_dims[-1]
    targets = OUTPUTS[output].targets
    if targets == "binary":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(np.float64)
    elif targets == "classes":
        Y = rng.integers(0, n_out, size=m)
    else:
        Y = rng.standard_normal((n_out, m))
    return X, Y


def needs_binary(output):
    """Whether a classification output takes binary data only (one 0/1 unit); False for "auto"."""
    return output in OUTPUTS and OUTPUTS[output].targets == "binary"


def min_output_units(output):
    """The fewest units of an output layer (two for an output over classes)."""
    return OUTPUTS[output].min_units


def output_units(output, n_classes):
    """The last layer size that an output needs on data with ``n_classes`` classes."""
    return 1 if needs_binary(output) else n_classes


def auto_output(binary, last=None):
    """The output ``train --output auto`` picks, or None where the last layer size fits none.

    Binary data gets the binary output, or the class output if the last size is 2; other data
    gets the class output.
    """
    if binary and last not in (None, 1, 2):
        return None
    return losses.for_data(binary, last).name


def train_labels(Y, output, binary):
    """Labels as ``output`` takes them: a binary dataset's (1, m) 0/1 row becomes class indices for class outputs."""
    if OUTPUTS[output].targets == "classes" and binary:
        return Y[0].astype(np.int64)
    return Y


def segment_applies(hidden):
    """Whether minnet's segment method can check a network with this hidden activation."""
    return hidden in PIECEWISE_LINEAR

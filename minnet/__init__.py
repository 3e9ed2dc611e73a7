"""minnet: a small neural-network framework with Numba kernels and a fast gradient check.

Gathers the public names of the modules below it and must patch none of them: it only imports.
"""
from . import checkpoint, datasets
from ._layout import (Layout, dictionary_to_vector, flatten, flatten_gradients, gradients_to_vector, unflatten,
                      vector_to_dictionary)
from .check import BlockReport, GradCheckReport, check_gradients, difference, gradient_check
from .check.callbacks import GradientCheck
from .network import Callback, Network, TrainingDiverged, TrainingInterrupted

__version__ = "0.1.0"

__all__ = [
    "Network", "TrainingDiverged", "TrainingInterrupted", "Callback", "GradientCheck", "Layout", "datasets",
    "checkpoint",
    "gradient_check", "check_gradients", "GradCheckReport", "BlockReport", "difference",
    "flatten", "unflatten", "flatten_gradients",
    "dictionary_to_vector", "vector_to_dictionary", "gradients_to_vector",
]

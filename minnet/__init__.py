"""minnet: a small neural-network framework with Numba kernels and a fast gradient check."""
from . import datasets
from ._layout import Layout, dictionary_to_vector, gradients_to_vector, vector_to_dictionary
from .network import Network, TrainingDiverged

__version__ = "0.1.0"

__all__ = [
    "Network", "TrainingDiverged", "Layout", "datasets",
    "dictionary_to_vector", "vector_to_dictionary", "gradients_to_vector",
]

"""Registries: the hidden activations (``activations``) and the outputs with their losses (``losses``).
Imports nothing itself; ``activations`` imports only NumPy, Numba and ``_series``, ``losses`` those and ``activations``.

The only modules that name an activation or an output; everything else reads them.
"""

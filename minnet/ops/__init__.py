"""Registries: the hidden activations (``activations``) and the outputs with their losses (``losses``).

The only modules that name an activation or an output; everything else reads them.
"""

"""``python -m minnet.cli``: the same program as ``minnet`` and ``python -m minnet``.

Imports only the package's ``run``.
"""
from . import run

run()

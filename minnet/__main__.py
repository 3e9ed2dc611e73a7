"""``python -m minnet``: the command line (``minnet.cli``).

Imports only ``minnet.cli``.
"""
from .cli import run

run()

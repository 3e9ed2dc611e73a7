"""``python -m minnet.cli``: the same program as ``minnet`` and ``python -m minnet``."""
from . import run

run()

"""``python -m minnet``: the command line (``minnet.cli``)."""
from .cli import run

run()

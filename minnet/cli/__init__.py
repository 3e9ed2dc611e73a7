"""The ``minnet`` command line (``minnet --help``): ``run`` is the program, ``main(argv)`` its status.

``_main`` holds the table of commands, one module each (``demo``, ``check`` with ``user_code``,
``train``, ``bench``); ``_common`` what they share; ``_names`` every activation and output name.
Imports ``_main`` only."""
from ._main import main, run

__all__ = ["main", "run"]

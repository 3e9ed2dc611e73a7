"""The gradient check in three parts: evaluate (``_kernels``), judge (``judge``), report (``report``).

``api`` validates the input and runs the three; the public names are
re-exported from ``minnet``.
"""
from .api import METHODS, MODES, THRESHOLDS, check_gradients, gradient_check
from .judge import BUG, CORRECT, INCONCLUSIVE, SUSPICIOUS, VERDICTS, difference
from .report import BlockReport, GradCheckReport

__all__ = ["gradient_check", "check_gradients", "GradCheckReport", "BlockReport", "difference", "METHODS",
           "MODES", "THRESHOLDS", "VERDICTS", "CORRECT", "SUSPICIOUS", "BUG", "INCONCLUSIVE"]

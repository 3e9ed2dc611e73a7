"""The gradient check as a pipeline: plan, evaluate, judge, report.
Imports the public names of ``api``, ``judge`` and ``report``; no part of the check imports it back.

``plan`` picks the entries, the method and the kernels' work; ``evaluate``
(a network, on the kernels of ``_full``, ``_incremental`` and ``_segment``
over the shared runner ``_parallel``) and ``learner`` (a learner's own
functions) make an ``Evaluation``; ``referee`` settles doubtful entries and
``judge`` alone turns the numbers into verdicts; ``report`` renders them.
``api`` runs the four; the public names are re-exported from ``minnet``.
"""
from ._workers import UserExit, WorkerLost
from .api import METHODS, MODES, THRESHOLDS, check_gradients, gradient_check
from .judge import BUG, CORRECT, INCONCLUSIVE, SEVERITY, SUSPICIOUS, VERDICTS, difference
from .report import BlockReport, GradCheckReport

__all__ = ["gradient_check", "check_gradients", "GradCheckReport", "BlockReport", "difference", "METHODS",
           "MODES", "THRESHOLDS", "VERDICTS", "SEVERITY", "CORRECT", "SUSPICIOUS", "BUG", "INCONCLUSIVE", "WorkerLost",
           "UserExit"]

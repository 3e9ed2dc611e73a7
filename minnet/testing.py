"""The gradient check as a test assertion: ``assert_gradients`` for pytest, unittest or a plain script.

Imports ``minnet.check`` and ``minnet._validation``; nothing in minnet imports this module.
Use it as ``import minnet.testing`` or ``from minnet.testing import assert_gradients``.

Example, a test in your own suite (pytest collects any ``test_*`` function)::

    import numpy as np
    from minnet.testing import assert_gradients

    def cost_fn(parameters):
        return float(np.sum(parameters["W1"] ** 2))

    def grads_fn(parameters):
        return {"dW1": 2 * parameters["W1"]}

    def test_my_backprop():
        assert_gradients(cost_fn, grads_fn, {"W1": np.array([[1.0, -2.0]])})

A wrong backprop fails the test with the whole report as the message: the
verdict, the W or b block to look at first and the per-block table.
"""
import inspect

from . import _validation as v
from .check import CORRECT, INCONCLUSIVE, check_gradients

__all__ = ["assert_gradients", "GradientCheckFailed", "INCONCLUSIVE_CHOICES"]

INCONCLUSIVE_CHOICES = ("fail", "pass")


class GradientCheckFailed(AssertionError):
    """A gradient check whose verdict was not accepted; ``str()`` is the report's text, ``report`` the report."""

    def __init__(self, message, report=None):  # report=None: an exception can be unpickled from its args
        super().__init__(message)
        self.report = report


def assert_gradients(cost_fn=None, grads_fn=None, parameters=None, *, inconclusive="fail", **options):
    """Gradient-check your own backprop and fail like an ``assert`` unless the verdict is "correct".

    Takes exactly what ``minnet.check_gradients`` takes (``cost_fn``,
    ``grads_fn`` and ``parameters``, or the course's ``forward``,
    ``backward``, ``X`` and ``Y``; ``epsilon``, ``mode``, ``sample``,
    ``thresholds``, ``seed``, ``progress``, ``include_kinks``, ``n_jobs``,
    ``fail_fast``), validated and checked by ``check_gradients`` itself.

    Parameters
    ----------
    inconclusive : {"fail", "pass"}
        What an "inconclusive" verdict does: J could not resolve the gradient
        at any step tried (a cost computed in float32, a large constant added
        to J, kinks that could not be judged), so the check says neither right
        nor wrong. "fail" (the default) fails the test, since nothing
        unchecked is called correct; "pass" accepts it.
    **options
        ``check_gradients``'s keyword arguments.

    Returns
    -------
    GradCheckReport
        The report, when the check passes.

    Raises
    ------
    GradientCheckFailed
        An ``AssertionError`` whose message is the report's text (``str(report)``):
        for a verdict "bug" or "suspicious", and for "inconclusive" unless
        ``inconclusive="pass"``. Its ``report`` attribute is the report.
    ValueError, TypeError
        A bad argument, as ``check_gradients`` raises it; ``inconclusive`` not "fail" or "pass".

    Examples
    --------
    In a pytest file, with the course's functions::

        import minnet.testing

        def test_backprop():
            minnet.testing.assert_gradients(forward=forward_propagation_n, backward=backward_propagation_n,
                                            X=X, Y=Y, parameters=parameters)

    >>> import numpy as np
    >>> params = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}
    >>> cost = lambda p: float(np.sum(p["W1"] ** 2) + p["b1"][0, 0] ** 2)
    >>> assert_gradients(cost, lambda p: {"dW1": 2 * p["W1"], "db1": 2 * p["b1"]}, params).verdict
    'correct'
    >>> assert_gradients(cost, lambda p: {"dW1": 2 * p["W1"], "db1": 3 * p["b1"]}, params)
    Traceback (most recent call last):
    ...
    minnet.testing.GradientCheckFailed: Gradient check of 3 parameters ...
    """
    __tracebackhide__ = True  # pytest shows the test's line, not this one
    _SIGNATURE.bind(cost_fn, grads_fn, parameters, inconclusive=inconclusive, **options)  # no private arguments
    accept_inconclusive = v.choice(inconclusive, "inconclusive", INCONCLUSIVE_CHOICES) == 1
    report = check_gradients(cost_fn, grads_fn, parameters, **options)
    if report.verdict == CORRECT or (report.verdict == INCONCLUSIVE and accept_inconclusive):
        return report
    message = str(report)
    if report.verdict == INCONCLUSIVE:
        message += ("\n\nassert_gradients(..., inconclusive='fail'): an inconclusive check fails; "
                    "inconclusive='pass' accepts it.")
    raise GradientCheckFailed(message, report)


def _signature():
    """check_gradients's public parameters, then ``inconclusive``: what ``help()`` shows and calls are bound to."""
    public = [p for p in inspect.signature(check_gradients).parameters.values() if not p.name.startswith("_")]
    extra = inspect.Parameter("inconclusive", inspect.Parameter.KEYWORD_ONLY, default="fail")
    return inspect.Signature(public + [extra])


_SIGNATURE = _signature()
assert_gradients.__signature__ = _SIGNATURE

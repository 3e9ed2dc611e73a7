"""The gradient check as a training callback: `GradientCheck` runs it at chosen epochs of ``Network.fit``.

Owns when a check runs during training and where its reports go. Takes from minnet.training only the
`Callback` protocol (the network must never import this module), the check from this package.
"""
import numpy as np

from .. import _validation as v
from ..training import Callback
from . import gradient_check

DEFAULT_EXAMPLES = 64
"""Training examples a `GradientCheck` without ``data`` checks on: the first 64 (or all, when fewer)."""


class GradientCheck(Callback):
    """Gradient-check the network at chosen epochs of ``Network.fit`` and keep the reports.

    Parameters
    ----------
    at : int or sequence of int
        The epochs after which to check: 0 is before training, ``epochs`` (fit's)
        after the last epoch; each must be at most fit's ``epochs``.
    data : (X, Y), optional
        The data to check on. By default the first 64 training examples
        (``DEFAULT_EXAMPLES``).
    check : callable, optional
        ``check(net, X, Y) -> report``, run at those epochs; by default
        ``minnet.gradient_check`` (dropout masks fixed by its ``dropout_seed=0``).

    ``at`` may be passed by position; ``data`` and ``check`` are keyword-only.

    Attributes
    ----------
    reports : dict
        epoch -> report of the latest ``fit``, in epoch order. ``fit``'s
        history holds them too, as ``history["checks"]`` (which ``plots.plot_cost``
        marks on the cost curve).

    Examples
    --------
    >>> from minnet import GradientCheck, Network, datasets
    >>> X, Y = datasets.flower(m=64)
    >>> history = Network([2, 4, 1]).fit(X, Y, epochs=5, callbacks=[GradientCheck(at=[0, 5])])
    >>> sorted(history["checks"]), history["checks"][5].verdict
    ([0, 5], 'correct')
    """

    def __init__(self, at, *, data=None, check=None):
        if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
            at = (at,)
        if isinstance(at, (str, bytes)) or not hasattr(at, "__iter__"):
            raise TypeError(f"GradientCheck: at must be a sequence of epochs, got {at!r}")
        self.at = tuple(sorted({v.integer(e, "GradientCheck: at", minimum=0) for e in at}))
        if data is not None and (not isinstance(data, (tuple, list)) or len(data) != 2):
            raise TypeError("GradientCheck: data must be a pair (X, Y)")
        self.data = data
        check = gradient_check if check is None else check
        if not callable(check):
            raise TypeError(f"GradientCheck: check must be callable as check(net, X, Y), got {type(check).__name__}")
        self.check = check
        self.reports = {}
        self._X = self._Y = None

    def __repr__(self):
        data = "" if self.data is None else ", data=(...)"
        check = "" if self.check is gradient_check else f", check={getattr(self.check, '__name__', self.check)!r}"
        return f"GradientCheck(at={list(self.at)}{data}{check})"

    def on_train_begin(self, net, training):
        """Validate the epochs and the data against this run, then check at epoch 0 if asked."""
        if self.at and self.at[-1] > training.epochs:
            raise ValueError(f"GradientCheck: at epochs must be <= epochs={training.epochs}, got {self.at[-1]}")
        if self.data is None:
            self._X, self._Y = training.X[:, :DEFAULT_EXAMPLES], training.Y[:, :DEFAULT_EXAMPLES]
        else:
            self._X, self._Y = net._check_XY(*self.data, x_name="GradientCheck data[0]",
                                             y_name="GradientCheck data[1]")
        self.reports = {}
        if 0 in self.at:
            self._run(net, 0, training.history)

    def on_epoch_end(self, net, epoch, training):
        """Check after this epoch if it is one of ``at``."""
        if epoch in self.at:
            self._run(net, epoch, training.history)

    def on_train_end(self, net, training):
        """Let go of the check data."""
        self._X = self._Y = None

    def _run(self, net, epoch, history):
        report = self.check(net, self._X, self._Y)
        self.reports[epoch] = report
        history.setdefault("checks", {})[epoch] = report

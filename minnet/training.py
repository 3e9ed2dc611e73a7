"""Training: ``Network.fit``'s epochs, the validation of its options, the `Callback` protocol and `Training` record.

Sits above _kernels and _validation. Must not import minnet.network (the network delegates ``fit`` here and passes
itself in), nor the gradient check (minnet.check), plots or cli, which use it.

Ctrl-C: an epoch of at least ``THREADED_FROM`` multiply-adds runs on a thread of its own, and the kernel reads a
stop flag before every mini-batch and between the layers of its passes; Ctrl-C raises the flag, the kernel
returns with the parameters at their last finished step (the step it was in is dropped, before its update),
and ``fit`` raises `TrainingInterrupted` (a KeyboardInterrupt) saying how many epochs and mini-batches
finished. Shorter epochs run in the calling thread, where Ctrl-C takes effect at the end of the epoch.
"""
import queue
import threading
from typing import NamedTuple

import numpy as np

from . import _kernels as K
from . import _memory
from . import _validation as v

GROWTH = 1e3
"""Training has diverged when an epoch's cost exceeds GROWTH times the first epoch's cost (at least COST_FLOOR)."""
COST_FLOOR = 1e-2
"""The least first-epoch cost the growth rule compares with: a cost near 0 may grow 1000-fold and still be small."""
THREADED_FROM = 2e7
"""Examples x parameters of an epoch from which it runs on a thread of its own (Ctrl-C within a mini-batch);
shorter epochs (a few ms) run in the calling thread, where a thread's hand-over would cost a percent or more."""


class TrainingDiverged(FloatingPointError, ValueError):
    """Training diverged: ``fit`` stopped at an epoch whose cost is NaN or infinite, or grew by orders of magnitude.

    The rule: epoch e (0-based) diverged when its cost (the mean of its mini-batch costs) is NaN or inf, or,
    from the second epoch on, exceeds ``GROWTH`` (1000) times the first epoch's cost, taken as at least
    ``COST_FLOOR`` (0.01). Either way the parameters are left at the last ones whose cost was computed and
    finite (before the last step), and the message suggests a smaller learning rate.

    Attributes: ``epoch`` (0-based index of the epoch that diverged, as in the message), ``cost`` (its cost),
    ``first_cost`` (the first epoch's cost, or None), ``learning_rate``, ``reason`` ("not finite" or "grew")
    and ``history`` (fit's history so far, the diverged epoch's cost not in it). A ValueError, so the command
    line reports it as an error with a non-zero exit status.
    """


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``fit``: the network is left at its last finished step, and this says where that was.

    A KeyboardInterrupt (code that catches one catches this). Attributes: ``epochs`` (epochs finished),
    ``batches`` (mini-batches finished of the epoch after them), ``steps`` (optimizer steps taken in all) and
    ``history`` (fit's history, its "cost" one entry per finished epoch, and "interrupted": the same three
    numbers as a dict).
    """


class Training(NamedTuple):
    """One run of ``Network.fit``, as its callbacks see it."""

    X: np.ndarray
    """The training inputs, validated: float64, shape (n_0, m)."""
    Y: np.ndarray
    """The targets, validated: float64, shape (n_L, m) (softmax labels one-hot)."""
    epochs: int
    """How many epochs the run trains."""
    history: dict
    """The dict ``fit`` returns: "cost" grows by one entry per epoch; callbacks may add entries of their own."""


class Callback:
    """What ``Network.fit(callbacks=[...])`` calls during training, in the style of Keras callbacks.

    Subclass it and override the hooks you need: each does nothing here and
    returns nothing. ``net`` is the network being trained, ``training`` the
    run's `Training` (validated data, epochs, and the history ``fit`` returns).
    An exception raised by a hook stops ``fit`` and reaches its caller.
    ``minnet.GradientCheck`` is one such callback.
    """

    def on_train_begin(self, net, training):
        """Before the first epoch, once fit has validated its arguments."""

    def on_epoch_end(self, net, epoch, training):
        """After epoch number ``epoch`` (1 .. epochs): ``epoch`` epochs are done.

        ``training.history["cost"][-1]`` is that epoch's cost. Unlike Keras's
        0-based index, ``epoch`` counts the epochs trained, so that 0 would mean
        before training (``on_train_begin``) and ``training.epochs`` the end.
        """

    def on_train_end(self, net, training):
        """After the last epoch, when training finished without an error."""


_HOOKS = ("on_train_begin", "on_epoch_end", "on_train_end")


class _Options(NamedTuple):
    """fit's optimizer and schedule, validated."""

    code: int
    lr: float
    epochs: int
    batch: int
    beta: float
    beta1: float
    beta2: float
    epsilon: float
    seed: int


def fit(net, X, Y, *, optimizer, learning_rate, epochs, batch_size, beta, beta1, beta2, epsilon, seed, verbose,
        progress, callbacks):
    """``Network.fit``: train ``net`` in place and return the history (see ``Network.fit`` for the options).

    ``net`` is the Network; fit reads its configuration and validation methods
    and writes its theta, so that this module needs no import of minnet.network.
    """
    X, Y = net._check_XY(X, Y)
    options = _options(X.shape[1], optimizer, learning_rate, epochs, batch_size, beta, beta1, beta2, epsilon, seed)
    callbacks = _callbacks(callbacks)
    net._activation_size(options.batch, "batch_size")
    _memory.require_training(net, X.shape[1], batch_size=options.batch)
    net._require_finite()
    training = Training(X, Y, options.epochs, {"cost": []})
    for callback in callbacks:
        _call(callback, "on_train_begin", net, training)
    _train(net, training, options, verbose, progress, callbacks)
    for callback in callbacks:
        _call(callback, "on_train_end", net, training)
    return training.history


def _options(m, optimizer, learning_rate, epochs, batch_size, beta, beta1, beta2, epsilon, seed):
    """fit's options validated, in the order fit checks them; the batch is at most the m examples."""
    code = v.choice(optimizer, "optimizer", K.OPTIMIZERS)
    lr = v.real(learning_rate, "learning_rate", low=0.0, low_open=True)
    epochs = v.integer(epochs, "epochs", minimum=0)
    batch = m if batch_size is None else min(v.integer(batch_size, "batch_size", minimum=1), m)
    beta = v.real(beta, "beta", low=0.0, high=1.0, high_open=True)
    beta1 = v.real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
    beta2 = v.real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
    epsilon = v.real(epsilon, "epsilon", low=0.0, low_open=True)
    seed = v.integer(seed, "seed", minimum=0)
    return _Options(code, lr, epochs, batch, beta, beta1, beta2, epsilon, seed)


def _train(net, training, options, verbose, progress, callbacks):
    """The epochs: one compiled ``train_epoch`` each, then the cost checked (``_diverged``), recorded, shown and
    passed to the callbacks. Ctrl-C anywhere in it raises `TrainingInterrupted`."""
    X, Y, epochs, history = training
    m, size = X.shape[1], net.layout.size
    rng = np.random.default_rng(options.seed)
    state = K.Optimizer(options.code, options.lr, options.beta, options.beta1, options.beta2, options.epsilon,
                        np.zeros(size), np.zeros(size), net._theta.copy())
    identity = np.arange(m, dtype=np.int64)
    XT = np.ascontiguousarray(X.T)  # the kernel gathers mini-batches as rows
    use_drop = net.uses_dropout
    per_epoch = -(-m // options.batch)
    runner = _EpochRunner(float(m) * size >= THREADED_FROM)
    bar = _progress(epochs, progress)
    try:
        for epoch in range(epochs):
            perm = rng.permutation(m).astype(np.int64) if options.batch < m else identity
            plan = K.Plan(perm, options.batch, int(rng.integers(2**31 - 1)))
            # lambd and keep_prob are read each epoch: a callback may assign them between epochs
            model = K.Model(net._dims, net._hidden, net._output, net.lambd, net._keep_prob, use_drop)
            J, finite, t = runner.epoch(net._theta, XT, Y, model, state, plan)
            _diverged(net, history, state, J, finite, epoch, options.lr, t)
            history["cost"].append(J)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{J:.4g}", refresh=False)
            if verbose and (epoch % max(1, epochs // 10) == 0 or epoch == epochs - 1):
                print(f"epoch {epoch:>6d}  cost {J:.6f}")
            for callback in callbacks:
                _call(callback, "on_epoch_end", net, epoch + 1, training)
    except KeyboardInterrupt as exc:
        if isinstance(exc, TrainingInterrupted):
            raise
        steps = runner.steps  # what theta holds, written by the kernel after every step
        done = {"epochs": steps // per_epoch, "batches": steps % per_epoch, "steps": steps}
        history["interrupted"] = done
        interrupted = TrainingInterrupted(
            f"training interrupted after {_count(done['epochs'], 'epoch')} and "
            f"{_count(done['batches'], 'mini-batch', 'mini-batches')} of the next ({_count(done['steps'], 'step')}): "
            f"the network is left at its last finished step")
        interrupted.epochs, interrupted.batches, interrupted.steps = done["epochs"], done["batches"], done["steps"]
        interrupted.history = history
        raise interrupted from None
    finally:
        runner.close()
        if bar is not None:
            bar.close()


def _count(n, one, many=None):
    """'1 epoch', '2 epochs'."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _diverged(net, history, state, J, finite, epoch, lr, steps):
    """Raise `TrainingDiverged` when epoch ``epoch``'s cost J is not finite or grew past the rule's bound."""
    first = history["cost"][0] if history["cost"] else None
    if finite and (first is None or not J > GROWTH * max(first, COST_FLOOR)):
        return
    if finite:  # grown: back to the parameters of the last step's own (finite) cost, as for a NaN
        net._theta[:] = state.prev
        message = (f"training diverged at epoch {epoch} (step {steps}): the cost grew from {first:.4g} in the "
                   f"first epoch to {J:.4g}, more than {GROWTH:g} times, with learning_rate={lr}; the "
                   f"parameters were left before the last step. Try a smaller learning_rate.")
    else:
        message = (f"training diverged at epoch {epoch} (step {steps + 1}): the cost became NaN or inf with "
                   f"learning_rate={lr}; the parameters were left at their last finite values. "
                   f"Try a smaller learning_rate.")
    error = TrainingDiverged(message)
    error.epoch, error.cost, error.first_cost, error.learning_rate = epoch, J, first, lr
    error.reason, error.history = "grew" if finite else "not finite", history
    raise error


class _EpochRunner:
    """Runs ``train_epoch``: in the calling thread, or (threaded) on a thread of its own, waiting for it in
    short sleeps that Ctrl-C interrupts; then it raises the kernel's stop flag and waits for it to return.

    ``flags`` is the kernel's [steps taken, flag]: ``steps`` is how many steps theta holds, whenever read.
    """

    def __init__(self, threaded):
        self.flags = np.zeros(2, np.int64)
        self.jobs = None
        if threaded:
            self.jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, name="minnet-train", daemon=True).start()

    def _serve(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            call, outcome, finished = job
            try:
                outcome.append(call())
            except BaseException as exc:  # handed to the caller
                outcome.append(exc)
            finished.set()

    @property
    def steps(self):
        return int(self.flags[0])

    def epoch(self, theta, XT, Y, model, state, plan):
        """One epoch: (J, finite, steps taken in all)."""
        def call():
            return K.train_epoch(theta, XT, Y, model, state, plan, self.steps, np.int64(K.BLAS_FROM), self.flags)

        if self.jobs is None:
            return call()
        outcome, finished = [], threading.Event()
        self.jobs.put((call, outcome, finished))
        try:
            while not finished.wait(0.25):
                pass
        except KeyboardInterrupt:
            self.flags[-1] = 1
            while not finished.is_set():  # the kernel returns at its next mini-batch or layer
                try:
                    finished.wait(0.05)
                except KeyboardInterrupt:
                    pass
            raise
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def close(self):
        if self.jobs is not None:
            self.jobs.put(None)


def _callbacks(callbacks):
    """fit's callbacks as a tuple, each checked to have at least one of the hooks."""
    if callbacks is None:
        return ()
    if any(hasattr(callbacks, hook) for hook in _HOOKS):
        return (callbacks,)
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a sequence of minnet.Callback objects, got {type(callbacks).__name__}")
    callbacks = tuple(callbacks)
    for i, callback in enumerate(callbacks):
        if not any(callable(getattr(callback, hook, None)) for hook in _HOOKS):
            raise TypeError(f"callbacks[{i}] must be a minnet.Callback (with a method on_train_begin, on_epoch_end "
                            f"or on_train_end), got {type(callback).__name__}")
    return callbacks


def _call(callback, hook, *args):
    """Run one hook of a callback, when it has that hook (a plain object may define only some)."""
    method = getattr(callback, hook, None)
    if method is not None:
        method(*args)


def _progress(total, enabled):
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="epoch", leave=False, desc="training")

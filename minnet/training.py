"""Training: ``Network.fit``'s epochs, the validation of its options, the `Callback` protocol and `Training` record.

Sits above _kernels and _validation. Must not import minnet.network (the network delegates ``fit`` here and passes
itself in), nor the gradient check (minnet.check), plots or cli, which use it.
"""
from typing import NamedTuple

import numpy as np

from . import _kernels as K
from . import _validation as v


class TrainingDiverged(FloatingPointError, ValueError):
    """Training produced a cost that is NaN or infinite."""


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
    """The epochs: one compiled ``train_epoch`` each, then the cost recorded, shown and passed to the callbacks."""
    X, Y, epochs, history = training
    m, size = X.shape[1], net.layout.size
    rng = np.random.default_rng(options.seed)
    state = K.Optimizer(options.code, options.lr, options.beta, options.beta1, options.beta2, options.epsilon,
                        np.zeros(size), np.zeros(size), net._theta.copy())
    identity = np.arange(m, dtype=np.int64)
    XT = np.ascontiguousarray(X.T)  # the kernel gathers mini-batches as rows
    use_drop = net.uses_dropout
    t = 0
    bar = _progress(epochs, progress)
    for epoch in range(epochs):
        perm = rng.permutation(m).astype(np.int64) if options.batch < m else identity
        plan = K.Plan(perm, options.batch, int(rng.integers(2**31 - 1)))
        # lambd and keep_prob are read each epoch: a callback may assign them between epochs
        model = K.Model(net._dims, net._hidden, net._output, net.lambd, net._keep_prob, use_drop)
        J, finite, t = K.train_epoch(net._theta, XT, Y, model, state, plan, t, np.int64(K.BLAS_FROM))
        if not finite:
            raise TrainingDiverged(
                f"training diverged at epoch {epoch} (step {t + 1}): the cost became NaN or inf with "
                f"learning_rate={options.lr}; the parameters were left at their last finite values. "
                f"Try a smaller learning_rate.")
        history["cost"].append(J)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(cost=f"{J:.4g}", refresh=False)
        if verbose and (epoch % max(1, epochs // 10) == 0 or epoch == epochs - 1):
            print(f"epoch {epoch:>6d}  cost {J:.6f}")
        for callback in callbacks:
            _call(callback, "on_epoch_end", net, epoch + 1, training)
    if bar is not None:
        bar.close()


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

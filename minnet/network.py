"""The L-layer network: validates input, owns theta, calls the kernels, saves through checkpoint.

Sits above training (which runs ``fit``, and whose `Callback`, `Training`, `TrainingDiverged` and
`TrainingInterrupted` it re-exports),
checkpoint, _layout, _validation and _kernels; must not import the gradient check (minnet.check), plots or cli.
"""
from collections.abc import Sequence

import numpy as np

from . import _kernels as K
from . import _validation as v
from . import checkpoint, training
from ._layout import Layout, Parameters
from .ops import activations, losses
from .ops.activations import ACTIVATIONS
from .ops.losses import CLASSIFIERS, OUTPUTS
from .training import Callback, Training, TrainingDiverged, TrainingInterrupted  # noqa: F401 (re-exported)

INITS = ("zeros", "random", "he", "xavier")

MAX_PARAMETERS = 2**28
"""Most parameters a Network may have (268,435,456: 2 GiB of float64 theta).

Larger ``layer_dims`` are refused with a ValueError before anything is
allocated, and ``load`` refuses larger checkpoints the same way. Raise it
(``minnet.network.MAX_PARAMETERS = ...``) only with the memory to match:
training holds about five vectors of this size.
"""

MAX_ACTIVATIONS = 2**30
"""Most entries of one activation buffer, ``sum(n_1..n_L) * m`` (8 GiB of float64).

A forward pass on more examples at once is refused with a ValueError; pass
the examples in slices (or a smaller ``batch_size`` to ``fit``).
"""


def _parameter_count(dims):
    """Parameters that layer sizes imply, in Python ints (no overflow)."""
    return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))


class _Fixed:
    """A constructor argument that is read-only once the Network is built."""

    def __init__(self, doc):
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name, self.slot = name, "_fixed_" + name

    def __get__(self, net, owner=None):
        return self if net is None else net.__dict__[self.slot]

    def __set__(self, net, value):
        raise AttributeError(f"{self.name} cannot be changed once a Network is built (theta, its layout and the "
                             f"kernels follow from it); build a new Network instead, e.g. "
                             f"Network(**dict(net.config, {self.name}=...))")

    def __delete__(self, net):
        self.__set__(net, None)


class LayerDims(tuple):
    """``layer_dims`` as built: a tuple that compares equal to the list it was built from."""

    def __setitem__(self, index, value):
        raise TypeError("layer_dims cannot be changed once a Network is built; build a new Network instead, "
                        "e.g. Network(**dict(net.config, layer_dims=[...]))")

    def __eq__(self, other):
        return tuple.__eq__(self, tuple(other) if isinstance(other, list) else other)

    def __ne__(self, other):
        return not self == other

    __hash__ = tuple.__hash__


class Network:
    """A fully connected L-layer network in the deeplearning.ai course's notation.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_0, n_1, ..., n_L]``: input size, hidden sizes, output size (L >= 1),
        at most ``MAX_PARAMETERS`` parameters in all.
    hidden : {"relu", "leaky_relu", "tanh", "sigmoid", "gelu"}
        Activation of layers 1..L-1.
    output : {"sigmoid", "softmax", "linear"}
        Output activation and its loss: binary cross-entropy, categorical
        cross-entropy, or half mean squared error ``1/(2m) sum (A - Y)^2``.
    lambd : float
        L2 strength: ``J += lambd/(2m) sum_l ||W_l||^2``.
    keep_prob : float or sequence of float
        Inverted-dropout keep probability, one value or one per hidden layer.
        Dropout acts in training and, with a ``dropout_seed``, in cost and
        gradients (the deterministic check mode).
    init : {"zeros", "random", "he", "xavier"}
        Weights: zeros, normal * 0.01, normal * sqrt(2/n_{l-1}) or normal * sqrt(1/n_{l-1}).
        Biases start at zero.
    seed : int
        Seed of the initialization.

    All but layer_dims are keyword-only.

    Attributes
    ----------
    theta : ndarray, shape (n_parameters,)
        All parameters, W1, b1, W2, b2, ..., each block row-major.
    parameters : Parameters (a mutable mapping of str -> ndarray)
        "W1" (n_1, n_0), "b1" (n_1, 1), ...: reads are views into theta,
        ``net.parameters["W1"] = new_W1`` writes into theta (same shape, finite).
    layout : Layout
        Maps every index of theta to (block, row, column).
    layer_dims, hidden, output, init, seed, L
        Read-only once built: changing them is an AttributeError (build a new
        Network). ``layer_dims`` is a tuple.
    lambd, keep_prob
        May be assigned; validated as in the constructor. ``keep_prob`` reads
        back as a read-only array, one value per hidden layer.

    Notes
    -----
    Every computation (``forward``, ``predict``, ``cost``, ``gradients``,
    ``fit``, ``save``, the gradient check) first refuses a theta holding NaN
    or inf with a ValueError naming the entry, e.g. "W1[0, 3] is nan".

    Examples
    --------
    >>> net = Network([2, 4, 1], lambd=0.1)
    >>> net.theta.shape
    (17,)
    """

    layer_dims = _Fixed("Layer sizes ``(n_0, ..., n_L)``, a tuple; read-only.")
    hidden = _Fixed("Hidden activation; read-only.")
    output = _Fixed("Output activation; read-only.")
    init = _Fixed("Initialization of the weights; read-only.")
    seed = _Fixed("Seed of the initialization; read-only.")
    L = _Fixed("Number of layers with parameters, ``len(layer_dims) - 1``; read-only.")

    def __init__(self, layer_dims, *, hidden=activations.DEFAULT, output=losses.DEFAULT, lambd=0.0, keep_prob=1.0, init="he", seed=0):
        self._build(layer_dims, hidden, output, lambd, keep_prob, init, seed)
        self._initialize()

    def _build(self, layer_dims, hidden=activations.DEFAULT, output=losses.DEFAULT, lambd=0.0, keep_prob=1.0, init="he", seed=0):
        """Validate the configuration and allocate theta (all zeros); draws nothing."""
        if not _ordered(layer_dims):
            kind = f"{layer_dims.ndim}-D array" if isinstance(layer_dims, np.ndarray) else type(layer_dims).__name__
            why = (f"a {kind} has no order, so the order of the layers would be arbitrary"
                   if isinstance(layer_dims, (set, frozenset)) else f"{kind} is not a list, tuple or 1-D array")
            raise TypeError(f"layer_dims must be a sequence of positive integers in order (a list, tuple or 1-D "
                            f"array: input size, hidden sizes, output size), got {layer_dims!r}: {why}")
        if len(layer_dims) < 2:
            raise ValueError(f"layer_dims must hold at least 2 sizes (input and output), got {list(layer_dims)!r}")
        dims = [v.integer(d, f"layer_dims[{i}]", minimum=1) for i, d in enumerate(layer_dims)]
        count = _parameter_count(dims)
        if count > MAX_PARAMETERS:
            raise ValueError(f"layer_dims {dims} imply {count:,} parameters, more than the limit of "
                             f"{MAX_PARAMETERS:,} (minnet.network.MAX_PARAMETERS, "
                             f"{MAX_PARAMETERS * 8 / 2**30:g} GiB of float64); use smaller layers")
        fixed = {"layer_dims": LayerDims(dims), "L": len(dims) - 1,
                 "hidden": hidden, "output": output, "init": init}
        self._hidden = v.choice(hidden, "hidden", tuple(ACTIVATIONS))
        self._output = v.choice(output, "output", tuple(OUTPUTS))
        least = OUTPUTS[output].min_units
        if dims[-1] < least:
            raise ValueError(f"output={output!r} needs at least {least} output units (layer_dims[-1] >= {least}); "
                             f"for one output unit use output={losses.for_data(True).name!r}")
        v.choice(init, "init", INITS)
        fixed["seed"] = v.integer(seed, "seed", minimum=0)
        for name, value in fixed.items():
            self.__dict__["_fixed_" + name] = value
        self.lambd = lambd
        self.keep_prob = keep_prob
        self._dims = np.array(dims, dtype=np.int64)
        self._layout = Layout.from_layer_dims(dims)
        self._theta = np.zeros(self._layout.size)
        self._parameters = Parameters(self._theta, self._layout)

    @classmethod
    def _uninitialized(cls, config):
        """A Network built from ``config`` with theta all zeros: no random initialization."""
        net = cls.__new__(cls)
        net._build(**config)
        return net

    # ------------------------------------------------------------ state
    def _initialize(self):
        rng = np.random.default_rng(self.seed)
        for l in range(1, self.L + 1):
            W = self.parameters[f"W{l}"]
            n_prev = self.layer_dims[l - 1]
            scale = {"zeros": 0.0, "random": 0.01, "he": np.sqrt(2.0 / n_prev),
                     "xavier": np.sqrt(1.0 / n_prev)}[self.init]
            W[...] = rng.standard_normal(W.shape) * scale
            self.parameters[f"b{l}"][...] = 0.0

    @property
    def theta(self):
        return self._theta

    @theta.setter
    def theta(self, value):
        value = v.float_array(value, "theta", ndim=1)
        if value.size != self.layout.size:
            raise ValueError(f"theta must have {self.layout.size} entries, got {value.size}")
        self._theta[...] = value

    @property
    def layout(self):
        return self._layout

    @property
    def parameters(self):
        return self._parameters

    @parameters.setter
    def parameters(self, values):
        """Write every block (``net.parameters = update_parameters(...)``); all are checked first."""
        if values is not self._parameters:
            self._parameters.assign(values)

    @property
    def lambd(self):
        """L2 strength, a finite float >= 0; validated on assignment."""
        return self._lambd

    @lambd.setter
    def lambd(self, value):
        self._lambd = v.real(value, "lambd", low=0.0)

    @property
    def keep_prob(self):
        """Keep probabilities, one per hidden layer, shape (L - 1,), read-only; assign a float or a sequence."""
        view = self._keep_prob.view()
        view.flags.writeable = False
        return view

    @keep_prob.setter
    def keep_prob(self, value):
        self._keep_prob = _keep_probs(value, self.L)

    @property
    def config(self):
        """The constructor's arguments, JSON-ready."""
        return {"layer_dims": list(self.layer_dims), "hidden": self.hidden, "output": self.output,
                "lambd": self.lambd, "keep_prob": self._keep_prob.tolist(), "init": self.init, "seed": self.seed}

    @property
    def uses_dropout(self):
        return bool(np.any(self._keep_prob < 1.0))

    def copy(self):
        net = type(self)._uninitialized(self.config)
        net._theta[...] = self._theta
        return net

    __copy__ = copy

    def __getstate__(self):
        """Pickle, copy and deepcopy keep only the configuration and theta; views are rebuilt."""
        return {"config": self.config, "theta": self._theta}

    def __setstate__(self, state):
        self._build(**state["config"])
        theta = np.asarray(state["theta"])
        if theta.dtype != np.float64 or theta.shape != self._theta.shape:
            raise ValueError(f"theta must be float64 of shape {self._theta.shape}, got {theta.dtype} {theta.shape}")
        self._theta[...] = theta

    def __repr__(self):
        return (f"Network(layer_dims={list(self.layer_dims)}, hidden={self.hidden!r}, output={self.output!r}, "
                f"lambd={self.lambd}, keep_prob={_short(self._keep_prob)}, n_parameters={self.layout.size})")

    def _require_finite(self):
        """Raise ValueError naming the first NaN or inf parameter, e.g. "W1[0, 3] is nan (theta[6])".

        Cheap when theta is finite (one summation, no allocation). Every
        computation calls it before a kernel runs; so does the gradient check.
        """
        found = self._nonfinite()
        if found is not None:
            raise ValueError(f"{found}: the network's parameters must be finite; assign finite values through "
                             f"net.parameters or net.theta, or build a new Network")

    def _nonfinite(self):
        """None when theta is finite, else where its first NaN or inf is, e.g. "W1[0, 3] is nan (theta[6])"."""
        return self.layout.nonfinite(self._theta)

    def save(self, path):
        """Write ``config`` and ``theta`` to the .npz checkpoint ``path``, atomically (``minnet.checkpoint.save``).

        Raises ValueError naming the entry when a parameter is NaN or inf (such a
        checkpoint could not be loaded); TypeError, ValueError or OSError naming
        the path when it cannot be written there.
        """
        self._require_finite()
        checkpoint.save(path, self.config, self._theta)

    @classmethod
    def load(cls, path):
        """A new Network from a checkpoint written by ``save``: its configuration and exactly its theta.

        The file is validated throughout and nothing in it is unpickled
        (``minnet.checkpoint.load``); theta is read straight into the new
        network, with no random initialization, and may have at most
        ``MAX_PARAMETERS`` entries. A file that is not a valid checkpoint is a
        ValueError naming it; a missing one a FileNotFoundError.

        Examples
        --------
        >>> import os, tempfile
        >>> net = Network([2, 3, 1], lambd=0.5)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     net.save(os.path.join(folder, "net.npz"))
        ...     loaded = Network.load(os.path.join(folder, "net.npz"))
        >>> bool((loaded.theta == net.theta).all()) and loaded.config == net.config
        True
        """
        built = []

        def allocate(config):  # validates the config as the constructor does, and holds theta
            built.append(cls._uninitialized(config))
            return built[-1]._theta

        checkpoint.load(path, max_parameters=MAX_PARAMETERS, allocate=allocate,
                        limit_name="minnet.network.MAX_PARAMETERS")
        return built[0]

    # ------------------------------------------------------- validation
    def _check_X(self, X, name="X"):
        """Validated float64 X of shape (n_0, m), m >= 1."""
        X = v.float_array(X, name, ndim=2)
        if X.shape[0] != self.layer_dims[0]:
            raise ValueError(f"{name} must have shape (n_x={self.layer_dims[0]}, m), got {X.shape}")
        if X.shape[1] == 0:
            raise ValueError(f"{name} has no examples (m = 0)")
        return X

    def _check_XY(self, X, Y, x_name="X", y_name="Y"):
        """Validated float64 X (n_0, m) and Y (n_L, m); softmax labels become one-hot."""
        X = self._check_X(X, x_name)
        m, n_out = X.shape[1], self.layer_dims[-1]
        Y = _to_targets(Y, y_name, self.output, n_out, m)
        return X, Y

    def _dropout(self, m, dropout_seed):
        """Flat dropout multipliers for m examples, or (dummy, False) when off."""
        dropout_seed = v.seed(dropout_seed, "dropout_seed")
        if dropout_seed is None or not self.uses_dropout:
            return np.empty(0), False
        return self._draw_dropout(m, dropout_seed), True

    def _draw_dropout(self, m, dropout_seed):
        """Flat multipliers D_l / keep_prob_l for layers 1..L-1, each (n_l, m), from the seed.

        The uniforms come from ``np.random.default_rng(dropout_seed)``, which
        mixes the whole seed (any integer in [0, 2**63)) through SeedSequence:
        distinct seeds draw distinct masks, with no aliasing modulo 2**32.
        """
        drop = np.empty(self._activation_size(m, "m"))
        np.random.default_rng(dropout_seed).random(out=drop)
        off = 0
        for l in range(1, self.L):
            kp, segment = self._keep_prob[l - 1], drop[off:off + self.layer_dims[l] * m]
            np.divide(segment < kp, kp, out=segment)
            off += segment.size
        return drop

    def _activation_size(self, m, what):
        """Entries of one activation buffer for m examples, refused over MAX_ACTIVATIONS."""
        size = int(sum(self.layer_dims[1:])) * m
        if max(size, max(self.layer_dims) * m) > MAX_ACTIVATIONS:
            raise ValueError(f"{what}={m} examples at once need activation buffers of {size:,} entries for "
                             f"layer_dims {list(self.layer_dims)}, more than the limit of {MAX_ACTIVATIONS:,} "
                             f"(minnet.network.MAX_ACTIVATIONS); pass fewer examples at a time")
        return size

    def _buffers(self, m):
        size = self._activation_size(m, "m")
        return np.empty(size), np.empty(size)

    # ----------------------------------------------------- computations
    def forward(self, X):
        """Output activations A_L, shape (n_L, m), without dropout."""
        X = self._check_X(X)
        self._require_finite()
        m = X.shape[1]
        Z, A = self._buffers(m)
        K.forward(self._theta, self._dims, X, self._hidden, self._output, np.empty(0), False, Z, A)
        return A[-self.layer_dims[-1] * m:].reshape(self.layer_dims[-1], m).copy()

    def predict(self, X):
        """Labels: 0/1 (sigmoid, shape (n_L, m)), class index (softmax, shape (m,)), values (linear)."""
        AL = self.forward(X)
        targets = OUTPUTS[self.output].targets
        if targets == "binary":
            return (AL > 0.5).astype(np.int64)
        if targets == "classes":
            return np.argmax(AL, axis=0)
        return AL

    def accuracy(self, X, Y):
        """Fraction of examples whose predicted label matches Y (sigmoid and softmax outputs)."""
        if self.output not in CLASSIFIERS:
            raise ValueError(f"accuracy needs a {' or '.join(CLASSIFIERS)} output; this network's output is "
                             f"{self.output!r}")
        X, Y = self._check_XY(X, Y)
        AL = self.forward(X)
        if OUTPUTS[self.output].targets == "classes":
            return float(np.mean(np.argmax(AL, axis=0) == np.argmax(Y, axis=0)))
        return float(np.mean(np.all((AL > 0.5) == (Y > 0.5), axis=0)))

    def cost(self, X, Y, dropout_seed=None):
        """J = mean loss + lambd/(2m) sum ||W_l||^2.

        With keep_prob < 1 and a ``dropout_seed``, dropout masks drawn from that
        seed are applied (the same masks as ``gradients`` with that seed).
        """
        X, Y = self._check_XY(X, Y)
        drop = self._dropout(X.shape[1], dropout_seed)
        self._require_finite()
        return self._cost(X, Y, *drop)

    def _cost(self, X, Y, drop, use_drop, theta=None):
        Z, A = self._buffers(X.shape[1])
        theta = self._theta if theta is None else theta
        return float(K.cost(theta, self._dims, X, Y, self._hidden, self._output, self.lambd, drop, use_drop, Z, A))

    def gradients(self, X, Y, dropout_seed=None):
        """Backprop: dict "dW1" (n_1, n_0), "db1" (n_1, 1), ... including lambd/m * W."""
        X, Y = self._check_XY(X, Y)
        drop = self._dropout(X.shape[1], dropout_seed)
        self._require_finite()
        grad = self._gradient(X, Y, *drop)[0]
        return {"d" + name: view for name, view in self.layout.views(grad).items()}

    def _gradient(self, X, Y, drop, use_drop, theta=None):
        """Backprop as a flat vector (at theta, default the network's), with its forward cache (Z, A)."""
        return self._cost_and_gradient(X, Y, drop, use_drop, theta)[1:]

    def _cost_and_gradient(self, X, Y, drop, use_drop, theta=None):
        """J, backprop's flat gradient and the forward cache (Z, A), from one forward pass."""
        theta = self._theta if theta is None else theta
        m = X.shape[1]
        Z, A = self._buffers(m)
        J = float(K.cost(theta, self._dims, X, Y, self._hidden, self._output, self.lambd, drop, use_drop, Z, A))
        grad = np.empty(self.layout.size)
        width = max(self.layer_dims) * m
        K.backward(theta, self._dims, X, Y, self._hidden, self._output, self.lambd, drop, use_drop, Z, A,
                   grad, np.empty(width), np.empty(width), np.empty(width))
        return J, grad, Z, A

    def dropout_masks(self, m, dropout_seed):
        """The 0/1 masks "D1" .. "D{L-1}", shape (n_l, m), that ``dropout_seed`` selects."""
        m = v.integer(m, "m", minimum=1)
        dropout_seed = v.seed(dropout_seed, "dropout_seed")
        if dropout_seed is None:
            raise ValueError("dropout_seed must be an integer to select masks, got None")
        drop = self._draw_dropout(m, dropout_seed)
        masks, off = {}, 0
        for l in range(1, self.L):
            n = self.layer_dims[l]
            masks[f"D{l}"] = (drop[off:off + n * m].reshape(n, m) > 0).astype(np.float64)
            off += n * m
        return masks

    # ---------------------------------------------------------- training
    def fit(self, X, Y, *, optimizer="adam", learning_rate=0.01, epochs=100, batch_size=None, beta=0.9,
            beta1=0.9, beta2=0.999, epsilon=1e-8, seed=0, verbose=False, progress=False, callbacks=None):
        """Train with gradient descent, momentum or Adam on (shuffled) mini-batches.

        Parameters
        ----------
        X : ndarray, shape (n_0, m)
        Y : ndarray, shape (n_L, m); for softmax also integer labels (m,)
        optimizer : {"gd", "momentum", "adam"}
        learning_rate : float > 0
        epochs : int >= 0
        batch_size : int >= 1 or None
            None trains on the full batch.
        beta : float, momentum's coefficient; beta1, beta2, epsilon : Adam's (bias-corrected).
        seed : int
            Seeds the shuffling and the dropout masks: same seed, same result, bit for bit.
        verbose : bool
            Print the cost about ten times.
        progress : bool
            Show a progress bar (needs tqdm).
        callbacks : Callback or sequence of Callback, optional
            Called before the first epoch, after each epoch and at the end (see
            `Callback`), in the order given; e.g. ``minnet.GradientCheck(at=[0, epochs])``
            gradient-checks the network before and after training.

        All but X and Y are keyword-only. The loop itself is ``minnet.training.fit``.

        Returns
        -------
        history : dict
            "cost": list of the epoch's mean mini-batch cost, plus what the
            callbacks add ("checks": {epoch: GradCheckReport} from GradientCheck).

        Raises
        ------
        TrainingDiverged
            (a ValueError) when an epoch's cost is NaN or inf, or more than 1000 times the first epoch's
            (``minnet.training.GROWTH``; the first taken as at least ``COST_FLOOR``, 0.01): the message
            suggests a smaller learning_rate; the parameters are left before the last step.
        TrainingInterrupted
            (a KeyboardInterrupt) on Ctrl-C. An epoch of many examples x parameters stops before its next
            mini-batch (or layer), a short one at its end; the network is left at its last finished step,
            and ``epochs``, ``batches`` and ``steps`` (also ``history["interrupted"]``) say where that was.
        """
        return training.fit(self, X, Y, optimizer=optimizer, learning_rate=learning_rate, epochs=epochs,
                            batch_size=batch_size, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon, seed=seed,
                            verbose=verbose, progress=progress, callbacks=callbacks)


def _short(keep_prob):
    return float(keep_prob[0]) if keep_prob.size and np.all(keep_prob == keep_prob[0]) else keep_prob.tolist()


def _ordered(layer_dims):
    """True for an ordered sequence of sizes: a list, tuple, range or other Sequence, or a 1-D array."""
    if isinstance(layer_dims, np.ndarray):
        return layer_dims.ndim == 1
    return isinstance(layer_dims, Sequence) and not isinstance(layer_dims, (str, bytes, bytearray))


_NO_HIDDEN = (", but this network has no hidden layer to drop units from (dropout acts on hidden layers only, "
              "and layer_dims has 2 sizes); use keep_prob=1.0, or add a hidden layer")


def _keep_probs(keep_prob, L):
    """One keep probability per hidden layer, each in (0, 1]; below 1 with no hidden layer is an error."""
    if isinstance(keep_prob, (list, tuple, np.ndarray)):
        values = list(np.ravel(keep_prob)) if isinstance(keep_prob, np.ndarray) else list(keep_prob)
        if len(values) != L - 1:
            raise ValueError(f"keep_prob must be one number or {L - 1} numbers (one per hidden layer), "
                             f"got {len(values)}" + (_NO_HIDDEN if L == 1 else ""))
    else:
        values = [keep_prob] * (L - 1)
        if v.real(keep_prob, "keep_prob", low=0.0, high=1.0, low_open=True) < 1.0 and L == 1:
            raise ValueError(f"keep_prob={keep_prob!r} asks for dropout" + _NO_HIDDEN)
    return np.array([v.real(k, "keep_prob", low=0.0, high=1.0, low_open=True) for k in values],
                    dtype=np.float64).reshape(L - 1)


def _to_targets(Y, name, output, n_out, m):
    """Y as float64 (n_out, m); softmax integer labels (m,) become one-hot."""
    v.not_masked(Y, name)
    targets = OUTPUTS[output].targets
    if targets == "classes" and np.ndim(Y) == 1:
        labels = np.asarray(Y)
        if labels.dtype == object or not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
            raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
        if labels.shape != (m,):
            raise ValueError(f"{name} must have shape (m={m},) as labels or ({n_out}, {m}), got {labels.shape}")
        whole = np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool  # else floats that must be whole
        if not whole and (not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))):
            raise ValueError(f"{name} labels must be whole numbers in [0, {n_out - 1}]")
        if labels.min() < 0 or labels.max() >= n_out:
            raise ValueError(f"{name} labels must be in [0, {n_out - 1}] for {n_out} classes, "
                             f"got values from {labels.min()} to {labels.max()}")
        Y = np.zeros((n_out, m))
        Y[labels.astype(np.int64), np.arange(m)] = 1.0
        return Y
    Y = v.float_array(Y, name)
    if Y.ndim == 1 and n_out == 1:
        Y = Y.reshape(1, -1)
    if Y.shape != (n_out, m):
        raise ValueError(f"{name} must have shape (n_L={n_out}, m={m}), got {Y.shape}")
    if targets == "binary" and (Y.min() < 0.0 or Y.max() > 1.0):
        raise ValueError(f"{name} must hold targets in [0, 1] for a {output} output")
    if targets == "classes":
        if Y.min() < 0.0 or not np.allclose(Y.sum(axis=0), 1.0, rtol=0, atol=1e-9):
            raise ValueError(f"{name} columns must be one-hot (non-negative, summing to 1) for a {output} output")
    return np.ascontiguousarray(Y)

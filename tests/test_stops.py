"""Ctrl-C within a second, everywhere (issue "Never hang, never lie, part 2", item 5), and training's other stops.

* Every phase of the check reads the stop flag: SIGINT during J and backprop, the segment kernel's directions and
  entries, the incremental and the full kernel, and backprop's rounding error makes ``gradient_check`` raise
  KeyboardInterrupt within 1 s. Each test wraps one phase's kernel so that SIGINT comes 0.3 s after the phase
  began, on a network where that phase alone lasts a few seconds (on 2 cores), and checks that the phase was
  still running when the signal came (else the phase is too short on this machine to tell anything: skipped).
  Those tests need Numba's JIT (the compiled kernels' own flags, on wide networks): slow_without_jit.
* Checks in two threads: one thread's Ctrl-C does not hold up the other's check.
* Training: Ctrl-C within an epoch stops between mini-batches (or layers) and raises ``TrainingInterrupted``,
  with the network at its last finished step; a cost that grows by orders of magnitude raises
  ``TrainingDiverged``; and the constructor's validation of keep_prob and layer_dims.
"""
import contextlib
import signal
import threading
import time

import numpy as np
import pytest

import minnet
from minnet import _kernels as K
from minnet import training
from minnet.check import _full, _incremental, _parallel, _point, _segment, evaluate

LIMIT = 1.0  # seconds from SIGINT to the call's return
DELAY = 0.3  # SIGINT this long after the phase began


@contextlib.contextmanager
def sigint_during(module, name, delay=DELAY):
    """Within it, SIGINT comes ``delay`` s after the first call of ``module.name`` begins (once).

    Yields a dict: "sent" (perf_counter at SIGINT), "running" (whether that call had not returned by
    then). The handler raises KeyboardInterrupt only inside the block: a signal that comes after it is dropped.
    """
    state = {"inside": True, "sent": None, "ended": None, "timer": None}
    real = getattr(module, name)

    def fire():
        if state["inside"]:
            state["sent"] = time.perf_counter()
            signal.raise_signal(signal.SIGINT)

    def wrapper(*args, **kwargs):
        if state["timer"] is None:
            state["timer"] = threading.Timer(delay, fire)
            state["timer"].start()
        try:
            return real(*args, **kwargs)
        finally:
            if state["ended"] is None and state["timer"] is not None:
                state["ended"] = time.perf_counter()

    def handler(signum, frame):
        if state["inside"]:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    setattr(module, name, wrapper)
    try:
        yield state
    finally:
        state["inside"] = False
        if state["timer"] is not None:
            state["timer"].cancel()
        setattr(module, name, real)
        signal.signal(signal.SIGINT, previous)
        state["running"] = state["sent"] is not None and (state["ended"] is None or state["ended"] > state["sent"])


def interrupted_within_limit(call, module, name, delay=DELAY):
    """Run call() with SIGINT during ``module.name``: assert KeyboardInterrupt within LIMIT s of the signal."""
    with sigint_during(module, name, delay) as state:
        try:
            call()
            returned = None
        except KeyboardInterrupt as exc:
            returned = time.perf_counter()
            caught = exc
    if not state["running"]:
        pytest.skip(f"{name} finished within {delay} s on this machine: too short to interrupt")
    assert returned is not None, "the call finished although SIGINT came while it ran"
    assert returned - state["sent"] < LIMIT, f"{returned - state['sent']:.2f} s from SIGINT to return"
    return caught


def problem(dims, hidden, m, seed=0):
    rng = np.random.default_rng(seed)
    net = minnet.Network(dims, hidden=hidden, output="softmax", seed=seed)
    return net, rng.standard_normal((dims[0], m)), rng.integers(0, dims[-1], m)


@pytest.fixture(scope="module")
def compiled():
    """Every kernel these tests interrupt, compiled (or loaded from the cache) before any timing."""
    for hidden in ("relu", "tanh"):
        net, X, labels = problem([64, 200, 200, 10], hidden, 64)  # above SERIAL_BELOW: the parallel kernels
        minnet.gradient_check(net, X, labels, sample=3)
        minnet.gradient_check(net, X, labels, method="full", sample=1)
        Xv, Y = net._check_XY(X, labels)
        start = evaluate.start(net, Xv, Y, drop=np.empty(0), use_drop=False, threads=2, prepare=True)
        evaluate.backprop_error(net, start.point, drop=np.empty(0), use_drop=False, threads=2, serial=False)
    net, X, labels = problem([200, 100, 10], "relu", 1000)
    net.fit(X, labels, epochs=1, batch_size=100)  # threaded epochs: 1000 x 21,110 >= THREADED_FROM
    net.fit(X[:, :50], labels[:50], epochs=1, batch_size=10)


# ------------------------------------------------------------ every phase of the check
@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_the_forward_pass_of_the_first_phase():
    net, X, labels = problem([784, 2048, 2048, 10], "tanh", 1024)
    interrupted_within_limit(lambda: minnet.gradient_check(net, X, labels), _point, "forward_cost", delay=0.2)


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_backprop_of_the_first_phase():
    net, X, labels = problem([784, 2048, 2048, 10], "tanh", 512)
    interrupted_within_limit(lambda: minnet.gradient_check(net, X, labels), _point, "backprop")


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_the_segment_kernels_directions():
    net, X, labels = problem([16, 2048, 2048, 10], "relu", 256)
    interrupted_within_limit(lambda: minnet.gradient_check(net, X, labels), _segment, "directions")


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_the_segment_kernel():
    net, X, labels = problem([16, 2048, 2048, 10], "relu", 128)
    interrupted_within_limit(lambda: minnet.gradient_check(net, X, labels), _segment, "segment")


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_the_incremental_kernel():
    net, X, labels = problem([64, 1024, 1024, 10], "tanh", 64)
    interrupted_within_limit(lambda: minnet.gradient_check(net, X, labels), _incremental, "incremental")


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_the_full_kernel():
    net, X, labels = problem([784, 1024, 1024, 10], "relu", 64)
    interrupted_within_limit(lambda: minnet.gradient_check(net, X, labels, method="full"), _full, "full")


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_in_backprops_rounding_error():
    net, X, labels = problem([784, 2048, 2048, 10], "tanh", 512)
    Xv, Y = net._check_XY(X, labels)
    Z, A = net._buffers(Xv.shape[1])
    counters = _parallel.Counters(0)
    _parallel.run(lambda: _point.forward_cost(net.theta, net._dims, Xv, Y, net._hidden, net._output, 0.0,
                                              np.empty(0), False, Z, A, 2, counters.buffer), threads=2)
    point = _point.Point(net.theta.copy(), net._dims, Xv, Y, np.empty(0), Z, A, *([np.empty(0)] * 4))
    interrupted_within_limit(lambda: evaluate.backprop_error(net, point, drop=np.empty(0), use_drop=False, threads=2,
                                                             serial=False), _point, "backprop")


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_a_check_after_an_interrupted_one_is_right():
    """The kernel thread is free at once, and nothing of the stopped check is left in the next."""
    net, X, labels = problem([16, 2048, 2048, 10], "relu", 128)
    with pytest.raises(KeyboardInterrupt), sigint_during(_segment, "segment", 0.1):
        minnet.gradient_check(net, X, labels)
    small, X, labels = problem([6, 5, 4, 3], "relu", 16)
    assert minnet.gradient_check(small, X, labels).verdict == "correct"


# ------------------------------------------------------------ checks in two threads
@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_of_one_thread_does_not_hold_up_anothers_check():
    """The main thread's long check is stopped in backprop (which read no stop flag before); a check another
    thread started meanwhile (its kernels queued behind the long one's) finishes within the limit of the
    signal, and right."""
    net, X, labels = problem([784, 2048, 2048, 10], "tanh", 512)
    small, Xs, labels_s = problem([6, 5, 4, 3], "relu", 16)
    minnet.gradient_check(small, Xs, labels_s)
    other = {}

    def check_in_another_thread():
        other["report"] = minnet.gradient_check(small, Xs, labels_s)
        other["done"] = time.perf_counter()

    real = _point.backprop

    def backprop_then_another_check(*args):  # the other check queues behind this kernel
        if "thread" not in other:
            other["thread"] = threading.Thread(target=check_in_another_thread)
            other["thread"].start()
        return real(*args)

    _point.backprop = backprop_then_another_check
    try:
        with sigint_during(_point, "backprop") as state, pytest.raises(KeyboardInterrupt):
            minnet.gradient_check(net, X, labels)
    finally:
        _point.backprop = real
    other["thread"].join(60)
    if not state["running"]:
        pytest.skip(f"backprop finished within {DELAY} s on this machine: too short to interrupt")
    assert other["report"].verdict == "correct"
    assert other["done"] - state["sent"] < LIMIT


@contextlib.contextmanager
def sigint_after(delay):
    """Within it, SIGINT comes after ``delay`` s (once); the state dict records when ("sent")."""
    state = {"inside": True, "sent": None}

    def fire():
        if state["inside"]:
            state["sent"] = time.perf_counter()
            signal.raise_signal(signal.SIGINT)

    def handler(signum, frame):
        if state["inside"]:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    timer = threading.Timer(delay, fire)
    timer.start()
    try:
        yield state
    finally:
        state["inside"] = False
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_of_a_check_queued_behind_anothers_returns_at_once():
    """The main thread's check waits for the kernel thread, busy with another thread's long check: Ctrl-C drops
    the waiting call at once, and the other check goes on to its own, right, result."""
    net, X, labels = problem([16, 1024, 1024, 10], "relu", 256)
    small, Xs, labels_s = problem([6, 5, 4, 3], "relu", 16)
    other, started = {}, threading.Event()
    real = _segment.segment

    def segment(*args):
        started.set()
        try:
            return real(*args)
        finally:
            other.setdefault("segment_ended", time.perf_counter())

    def long_check():
        other["report"] = minnet.gradient_check(net, X, labels)

    _segment.segment = segment
    try:
        thread = threading.Thread(target=long_check)
        thread.start()
        assert started.wait(60)
        with sigint_after(0.2) as state, pytest.raises(KeyboardInterrupt):
            minnet.gradient_check(small, Xs, labels_s)
        returned = time.perf_counter()
        thread.join(120)
    finally:
        _segment.segment = real
    if other["segment_ended"] < state["sent"]:
        pytest.skip("the other check's kernel finished within 0.2 s on this machine")
    assert returned - state["sent"] < LIMIT
    assert other["report"].verdict == "correct"


# ------------------------------------------------------------ training
def _wide_training(m=4096, batch=256):
    rng = np.random.default_rng(3)
    X, labels = rng.random((784, m)), rng.integers(0, 10, m)
    return minnet.Network([784, 2048, 2048, 10], output="softmax", seed=0), X, labels, batch


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_within_an_epoch_leaves_the_network_at_its_last_finished_step():
    net, X, labels, batch = _wide_training()
    theta0 = net.theta.copy()
    caught = interrupted_within_limit(lambda: net.fit(X, labels, epochs=2, batch_size=batch, seed=7), K,
                                      "train_epoch", delay=0.5)
    assert isinstance(caught, minnet.TrainingInterrupted) and isinstance(caught, KeyboardInterrupt)
    assert caught.epochs == 0 and 0 <= caught.batches < X.shape[1] // batch and caught.steps == caught.batches
    assert caught.history["cost"] == [] and caught.history["interrupted"] == {
        "epochs": 0, "batches": caught.batches, "steps": caught.steps}
    # the same steps again, in the calling thread: the interrupted network is exactly there
    rng = np.random.default_rng(7)
    perm = rng.permutation(X.shape[1]).astype(np.int64)
    seed = int(rng.integers(2**31 - 1))
    rows = perm[:caught.batches * batch]
    again = minnet.Network([784, 2048, 2048, 10], output="softmax", seed=0)
    assert np.array_equal(again.theta, theta0)
    Xv, Y = again._check_XY(X, labels)
    size = again.theta.size
    state = K.Optimizer(2, 0.01, 0.9, 0.9, 0.999, 1e-8, np.zeros(size), np.zeros(size), again.theta.copy())
    model = K.Model(again._dims, again._hidden, again._output, 0.0, again._keep_prob, False)
    K.train_epoch(again._theta, np.ascontiguousarray(Xv[:, rows].T), Y[:, rows], model, state,
                  K.Plan(np.arange(rows.size, dtype=np.int64), batch, seed), 0, np.int64(K.BLAS_FROM),
                  np.zeros(2, np.int64))
    assert np.array_equal(net.theta, again.theta)


@pytest.mark.slow_without_jit
@pytest.mark.usefixtures("compiled")
def test_ctrl_c_between_short_epochs_says_where_it_stopped():
    """Short epochs run in the calling thread: Ctrl-C takes effect when the epoch ends, and the count is right."""
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((4, 64)), rng.integers(0, 3, 64)
    net = minnet.Network([4, 8, 3], output="softmax")
    with sigint_during(K, "train_epoch", 0.2) as state:
        try:
            net.fit(X, labels, epochs=10**7, batch_size=16)
            caught = None
        except KeyboardInterrupt as exc:
            caught, returned = exc, time.perf_counter()
    assert isinstance(caught, training.TrainingInterrupted)
    assert returned - state["sent"] < LIMIT
    assert caught.batches == 0 and caught.steps == 4 * caught.epochs
    assert len(caught.history["cost"]) in (caught.epochs - 1, caught.epochs)


# ------------------------------------------------------------ divergence
def test_a_cost_that_grows_a_thousandfold_stops_training():
    """The command line's --lr 100 on flower: the cost leaps from about 0.7 to millions (it used to end at chance
    accuracy with no word); fit raises TrainingDiverged naming the learning rate, with the rule's numbers."""
    X, Y = minnet.datasets.flower(m=400)
    net = minnet.Network([2, 20, 8, 1], seed=0)
    with pytest.raises(minnet.TrainingDiverged) as info:
        net.fit(X, Y, optimizer="adam", learning_rate=100.0, epochs=2000)
    error = info.value
    assert isinstance(error, ValueError) and error.reason == "grew"
    assert "learning_rate=100.0" in str(error) and "smaller learning_rate" in str(error)
    assert error.cost > training.GROWTH * max(error.first_cost, training.COST_FLOOR)
    assert error.history["cost"][0] == error.first_cost and len(error.history["cost"]) == error.epoch
    assert all(c <= training.GROWTH * max(error.first_cost, training.COST_FLOOR) for c in error.history["cost"])
    assert np.all(np.isfinite(net.theta)) and np.isfinite(net.cost(X, Y))


def test_the_growth_rule_leaves_ordinary_training_alone():
    X, Y = minnet.datasets.flower(m=200)
    history = minnet.Network([2, 8, 1], seed=0).fit(X, Y, learning_rate=0.05, epochs=60, batch_size=16)
    assert len(history["cost"]) == 60
    # a cost near 0 may grow a thousandfold and stay small: the first epoch's cost counts as at least COST_FLOOR
    # (gd just past its stable rate on 0.5 (w + b)^2: w + b grows 1.1-fold a step, the cost 1.21-fold)
    net = minnet.Network([1, 1], output="linear")
    net.theta = [1e-5, 0.0]
    history = net.fit(np.array([[1.0]]), np.array([[0.0]]), optimizer="gd", learning_rate=1.05, epochs=50)
    assert len(history["cost"]) == 50
    assert history["cost"][-1] > training.GROWTH * history["cost"][0] and history["cost"][-1] < 1e-5


def test_a_nan_cost_still_raises_as_not_finite():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((2, 8)), rng.standard_normal((1, 8)) * 10
    net = minnet.Network([2, 3, 1], output="linear")
    with pytest.raises(minnet.TrainingDiverged) as info:
        net.fit(X, Y, optimizer="gd", learning_rate=1e300, epochs=50)
    assert info.value.reason in ("not finite", "grew") and np.all(np.isfinite(net.theta))


# ------------------------------------------------------------ the constructor
@pytest.mark.parametrize("keep_prob", [0.5, [0.5], (0.9,), np.array([0.8])])
def test_dropout_without_a_hidden_layer_is_refused(keep_prob):
    with pytest.raises(ValueError, match="keep_prob.*no hidden layer"):
        minnet.Network([3, 1], keep_prob=keep_prob)
    net = minnet.Network([3, 1])
    with pytest.raises(ValueError, match="keep_prob.*no hidden layer"):
        net.keep_prob = keep_prob
    assert minnet.Network([3, 1], keep_prob=1.0).keep_prob.shape == (0,)


@pytest.mark.parametrize("layer_dims", [{3, 4, 1}, frozenset({3, 1}), {3: 4, 1: 1}, (d for d in (3, 1)), "31",
                                        np.array([[3, 4, 1]])])
def test_layer_dims_must_be_an_ordered_sequence(layer_dims):
    with pytest.raises(TypeError, match="layer_dims must be a sequence of positive integers in order"):
        minnet.Network(layer_dims)


def test_a_set_of_layer_sizes_is_refused_for_its_missing_order():
    with pytest.raises(TypeError, match="a set has no order"):
        minnet.Network({3, 4, 1})


@pytest.mark.parametrize("layer_dims", [[3, 4, 1], (3, 4, 1), np.array([3, 4, 1]), range(3, 0, -1)])
def test_ordered_sequences_of_layer_sizes_are_accepted(layer_dims):
    assert minnet.Network(layer_dims).layer_dims == tuple(int(d) for d in layer_dims)

"""Bad input at every public entry point: the right exception, and a message that names the culprit.

Every case is a (name, call, exception type, regex) row of CASES. Each runs as
its own pytest case; then all of them run again in one fresh interpreter
(``run_all``) to show that none of them crashes the process (a segfault in a
kernel fed an unchecked array would kill it) and that every case was handled.
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest

import minnet
from minnet import checkpoint, datasets


class Case(NamedTuple):
    name: str
    call: Callable
    exc: type
    match: str


# ------------------------------------------------------------------ helpers
def _data(n_x=2, n_y=1, m=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_x, m)), rng.integers(0, 2, (n_y, m)).astype(float)


def _fit(net_kwargs=None, X=None, Y=None, **fit_kwargs):
    net = minnet.Network(**(net_kwargs or {"layer_dims": [2, 3, 1]}))
    X0, Y0 = _data(net.layer_dims[0], net.layer_dims[-1])
    fit_kwargs.setdefault("epochs", 1)
    return net.fit(X0 if X is None else X, Y0 if Y is None else Y, **fit_kwargs)


def _check(net=None, X=None, Y=None, **kwargs):
    net = minnet.Network([2, 3, 1]) if net is None else net
    X0, Y0 = _data()
    return minnet.gradient_check(net, X0 if X is None else X, Y0 if Y is None else Y, **kwargs)


PARAMS = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}


def _cost(p):
    return float(np.sum(p["W1"] ** 2) + np.sum(p["b1"] ** 2))


def _grads(p):
    return {"dW1": 2 * p["W1"], "db1": 2 * p["b1"]}


def _check_gradients(cost_fn=_cost, grads_fn=_grads, parameters=None, **kwargs):
    return minnet.check_gradients(cost_fn, grads_fn, PARAMS if parameters is None else parameters, **kwargs)


def _with_nan(shape, index):
    X = np.ones(shape)
    X[index] = np.nan
    return X


def _load_missing():
    with tempfile.TemporaryDirectory() as folder:
        return minnet.Network.load(os.path.join(folder, "missing.npz"))


def _load_directory():
    with tempfile.TemporaryDirectory() as folder:
        return minnet.Network.load(folder)


def _save_into_directory():
    with tempfile.TemporaryDirectory() as folder:
        return minnet.Network([2, 1]).save(folder)


def _save_missing_folder():
    with tempfile.TemporaryDirectory() as folder:
        return minnet.Network([2, 1]).save(os.path.join(folder, "no", "such", "net.npz"))


def _nan_net():
    net = minnet.Network([2, 3, 1])
    net.parameters["W1"][0, 1] = np.nan  # in place, through a view: nothing can refuse the write itself
    return net


def _save_nan_net():
    with tempfile.TemporaryDirectory() as folder:
        return _nan_net().save(os.path.join(folder, "net.npz"))


def _load_fifo():
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pipe.npz")
        os.mkfifo(path)
        return minnet.Network.load(path)


def _set(attribute, value, net_kwargs=None):
    setattr(minnet.Network(**(net_kwargs or NET)), attribute, value)


def _set_parameter(key, value):
    minnet.Network(**NET).parameters[key] = value


def _masked(shape, index):
    X = np.ma.masked_array(np.ones(shape))
    X[index] = np.ma.masked
    return X


def _plot_resolution(resolution):
    from minnet.plots import plot_decision_boundary
    X, Y = _data()
    return plot_decision_boundary(minnet.Network([2, 3, 1]), X, Y, resolution=resolution)


NET = dict(layer_dims=[2, 3, 1])
SOFTMAX = dict(layer_dims=[2, 3, 3], output="softmax")

CASES = [
    # ------------------------------------------------------------ Network(...)
    Case("layer_dims too short", lambda: minnet.Network([3]), ValueError, r"layer_dims must hold at least 2"),
    Case("layer_dims empty", lambda: minnet.Network([]), ValueError, r"layer_dims must hold at least 2"),
    Case("layer_dims not a sequence", lambda: minnet.Network(5), TypeError, r"layer_dims must be a sequence"),
    Case("layer_dims a string", lambda: minnet.Network("231"), TypeError, r"layer_dims must be a sequence"),
    Case("layer_dims non-integer", lambda: minnet.Network([2, 2.5, 1]), TypeError,
         r"layer_dims\[1\] must be an integer"),
    Case("layer_dims zero", lambda: minnet.Network([2, 0, 1]), ValueError, r"layer_dims\[1\] must be >= 1"),
    Case("layer_dims negative", lambda: minnet.Network([-2, 3, 1]), ValueError, r"layer_dims\[0\] must be >= 1"),
    Case("layer_dims bool", lambda: minnet.Network([2, True, 1]), TypeError, r"layer_dims\[1\] must be an integer"),
    Case("hidden unknown", lambda: minnet.Network([2, 3, 1], hidden="swish"), ValueError,
         r"hidden must be one of 'relu', 'leaky_relu', 'tanh', 'sigmoid', 'gelu'; got 'swish'"),
    Case("hidden not a string", lambda: minnet.Network([2, 3, 1], hidden=None), TypeError,
         r"hidden must be a string"),
    Case("output unknown", lambda: minnet.Network([2, 3, 1], output="relu"), ValueError,
         r"output must be one of 'sigmoid', 'softmax', 'linear'; got 'relu'"),
    Case("init unknown", lambda: minnet.Network([2, 3, 1], init="glorot"), ValueError,
         r"init must be one of 'zeros', 'random', 'he', 'xavier'; got 'glorot'"),
    Case("keep_prob 0", lambda: minnet.Network([2, 3, 1], keep_prob=0), ValueError,
         r"keep_prob must be a finite number in \(0\.0, 1\.0\]"),
    Case("keep_prob 1.5", lambda: minnet.Network([2, 3, 1], keep_prob=1.5), ValueError,
         r"keep_prob must be a finite number in \(0\.0, 1\.0\], got 1\.5"),
    Case("keep_prob wrong count", lambda: minnet.Network([2, 3, 4, 1], keep_prob=[0.5, 0.5, 0.5]), ValueError,
         r"keep_prob must be one number or 2 numbers \(one per hidden layer\), got 3"),
    Case("keep_prob NaN in list", lambda: minnet.Network([2, 3, 4, 1], keep_prob=[0.5, float("nan")]),
         ValueError, r"keep_prob must be a finite number"),
    Case("keep_prob a string", lambda: minnet.Network([2, 3, 1], keep_prob="0.5"), TypeError,
         r"keep_prob must be a real number"),
    Case("lambd negative", lambda: minnet.Network([2, 3, 1], lambd=-0.1), ValueError,
         r"lambd must be a finite number in \[0\.0, inf\], got -0\.1"),
    Case("lambd NaN", lambda: minnet.Network([2, 3, 1], lambd=float("nan")), ValueError,
         r"lambd must be a finite number"),
    Case("lambd inf", lambda: minnet.Network([2, 3, 1], lambd=float("inf")), ValueError,
         r"lambd must be a finite number"),
    Case("lambd a string", lambda: minnet.Network([2, 3, 1], lambd="0.1"), TypeError, r"lambd must be a real number"),
    Case("seed negative", lambda: minnet.Network([2, 3, 1], seed=-1), ValueError, r"seed must be >= 0"),
    Case("theta wrong size", lambda: setattr(minnet.Network([2, 3, 1]), "theta", np.zeros(5)), ValueError,
         r"theta must have 13 entries, got 5"),
    Case("theta with NaN", lambda: setattr(minnet.Network([2, 1]), "theta", np.array([1.0, np.nan, 0.0])),
         ValueError, r"theta contains NaN or inf"),
    Case("layer_dims too many parameters", lambda: minnet.Network([20000, 20000, 1]), ValueError,
         r"layer_dims \[20000, 20000, 1\] imply 400,040,001 parameters, more than the limit of 268,435,456 "
         r"\(minnet\.network\.MAX_PARAMETERS"),
    Case("layer_dims overflowing int64", lambda: minnet.Network([2**40, 2**40, 1]), ValueError,
         r"layer_dims \[1099511627776, 1099511627776, 1\] imply [\d,]{25,} parameters, more than the limit"),
    # ------------------------------------------------------ attributes after construction
    Case("hidden assigned", lambda: _set("hidden", "tanh"), AttributeError,
         r"hidden cannot be changed once a Network is built .*build a new Network"),
    Case("layer_dims assigned", lambda: _set("layer_dims", [1, 1]), AttributeError,
         r"layer_dims cannot be changed once a Network is built"),
    Case("layer_dims changed in place", lambda: minnet.Network(**NET).layer_dims.__setitem__(0, 1), TypeError,
         r"layer_dims cannot be changed once a Network is built"),
    Case("output assigned", lambda: _set("output", "linear"), AttributeError, r"output cannot be changed"),
    Case("init assigned", lambda: _set("init", "zeros"), AttributeError, r"init cannot be changed"),
    Case("seed assigned", lambda: _set("seed", 3), AttributeError, r"seed cannot be changed"),
    Case("L assigned", lambda: _set("L", 5), AttributeError, r"L cannot be changed"),
    Case("lambd assigned negative", lambda: _set("lambd", -1e6), ValueError,
         r"lambd must be a finite number in \[0\.0, inf\], got -1000000\.0"),
    Case("keep_prob assigned 0", lambda: _set("keep_prob", 0.0), ValueError,
         r"keep_prob must be a finite number in \(0\.0, 1\.0\]"),
    Case("keep_prob assigned a wrong count", lambda: _set("keep_prob", [0.5, 0.5]), ValueError,
         r"keep_prob must be one number or 1 numbers"),
    Case("keep_prob changed in place", lambda: minnet.Network(**NET).keep_prob.__setitem__(0, 0.0), ValueError,
         r"read-only"),
    Case("parameters wrong shape", lambda: _set_parameter("W1", np.zeros((2, 3))), ValueError,
         r"parameters\['W1'\] must have shape \(3, 2\), got \(2, 3\)"),
    Case("parameters strings", lambda: _set_parameter("b1", np.array([["a"], ["b"], ["c"]])), TypeError,
         r"parameters\['b1'\] must be a numeric array"),
    Case("parameters NaN", lambda: _set_parameter("b2", np.array([[np.nan]])), ValueError,
         r"parameters\['b2'\] contains NaN or inf"),
    Case("parameters new key", lambda: _set_parameter("W3", np.zeros((1, 1))), ValueError,
         r"parameters has no block 'W3'; its keys are W1, b1, W2, b2"),
    Case("parameters key deleted", lambda: minnet.Network(**NET).parameters.pop("W1"), TypeError,
         r"parameters' keys are fixed by layer_dims; cannot delete 'W1'"),
    Case("parameters replaced by a wrong dict", lambda: _set("parameters", {"W1": np.zeros((3, 2))}), ValueError,
         r"parameters must have exactly the keys W1, b1, W2, b2; missing b1, W2, b2"),
    # ------------------------------------------------------------ NaN parameters
    Case("NaN parameter in forward", lambda: _nan_net().forward(np.ones((2, 3))), ValueError,
         r"W1\[0, 1\] is nan \(theta\[1\]\): the network's parameters must be finite"),
    Case("NaN parameter in predict", lambda: _nan_net().predict(np.ones((2, 3))), ValueError, r"W1\[0, 1\] is nan"),
    Case("NaN parameter in cost", lambda: _nan_net().cost(*_data()), ValueError, r"W1\[0, 1\] is nan"),
    Case("NaN parameter in gradients", lambda: _nan_net().gradients(*_data()), ValueError, r"W1\[0, 1\] is nan"),
    Case("NaN parameter in fit", lambda: _nan_net().fit(*_data(), epochs=1), ValueError, r"W1\[0, 1\] is nan"),
    Case("NaN parameter in save", _save_nan_net, ValueError, r"W1\[0, 1\] is nan"),
    Case("NaN parameter in gradient_check", lambda: minnet.gradient_check(_nan_net(), *_data()), ValueError,
         r"W1\[0, 1\] is nan \(theta\[1\]\): the network's parameters must be finite"),
    # ------------------------------------------------------------------ seeds
    Case("dropout_seed 2**63", lambda: minnet.Network([2, 3, 1], keep_prob=0.5).cost(*_data(), dropout_seed=2**63),
         ValueError, r"dropout_seed must be an integer in \[0, 2\*\*63\), got 9223372036854775808"),
    Case("dropout_seed negative", lambda: minnet.Network([2, 3, 1], keep_prob=0.5).gradients(*_data(), dropout_seed=-1),
         ValueError, r"dropout_seed must be an integer in \[0, 2\*\*63\), got -1"),
    Case("dropout_seed huge in dropout_masks", lambda: minnet.Network([2, 3, 1], keep_prob=0.5).dropout_masks(4, 2**64),
         ValueError, r"dropout_seed must be an integer in \[0, 2\*\*63\)"),
    Case("too many examples at once", lambda: minnet.Network([1, 100_000, 1]).forward(np.ones((1, 20_000))),
         ValueError, r"m=20000 examples at once need activation buffers of 2,000,020,000 entries for layer_dims "
                     r"\[1, 100000, 1\], more than the limit of 1,073,741,824"),
    # ---------------------------------------------------------- masked arrays
    Case("masked X", lambda: _fit(X=_masked((2, 6), (1, 3))), TypeError,
         r"X is a masked array, whose mask minnet would ignore; fill the masked entries"),
    Case("masked Y", lambda: _fit(Y=_masked((1, 6), (0, 2))), TypeError, r"Y is a masked array"),
    Case("masked softmax labels", lambda: _fit(SOFTMAX, Y=np.ma.masked_array([0, 1, 2, 0, 1, 2], mask=[0, 1] * 3)),
         TypeError, r"Y is a masked array"),
    Case("masked X in predict", lambda: minnet.Network(**NET).predict(_masked((2, 3), (0, 0))), TypeError,
         r"X is a masked array"),
    Case("plot resolution 0", lambda: _plot_resolution(0), ValueError, r"resolution must be >= 2, got 0"),
    Case("plot resolution huge", lambda: _plot_resolution(10**6), ValueError,
         r"resolution must be an integer in \[2, 4000\]"),
    Case("plot resolution float", lambda: _plot_resolution(30.0), TypeError, r"resolution must be an integer"),
    # ------------------------------------------------------------------- fit
    Case("optimizer unknown", lambda: _fit(optimizer="sgd"), ValueError,
         r"optimizer must be one of 'gd', 'momentum', 'adam'; got 'sgd'"),
    Case("learning_rate 0", lambda: _fit(learning_rate=0.0), ValueError,
         r"learning_rate must be a finite number in \(0\.0, inf\]"),
    Case("learning_rate negative", lambda: _fit(learning_rate=-0.01), ValueError,
         r"learning_rate must be a finite number"),
    Case("learning_rate NaN", lambda: _fit(learning_rate=float("nan")), ValueError,
         r"learning_rate must be a finite number"),
    Case("epochs negative", lambda: _fit(epochs=-1), ValueError, r"epochs must be >= 0, got -1"),
    Case("epochs float", lambda: _fit(epochs=2.0), TypeError, r"epochs must be an integer"),
    Case("batch_size 0", lambda: _fit(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
    Case("beta 1", lambda: _fit(optimizer="momentum", beta=1.0), ValueError, r"beta must be a finite number"),
    Case("X rows != n_x", lambda: _fit(X=np.zeros((3, 6))), ValueError, r"X must have shape \(n_x=2, m\)"),
    Case("X 1-D", lambda: _fit(X=np.zeros(6)), ValueError, r"X must be a 2-D array"),
    Case("Y columns != m", lambda: _fit(Y=np.zeros((1, 7))), ValueError, r"Y must have shape \(n_L=1, m=6\)"),
    Case("NaN in X", lambda: _fit(X=_with_nan((2, 6), (1, 3))), ValueError, r"X contains NaN or inf"),
    Case("inf in X", lambda: _fit(X=np.full((2, 6), np.inf)), ValueError, r"X contains NaN or inf"),
    Case("NaN in Y", lambda: _fit(Y=_with_nan((1, 6), (0, 2))), ValueError, r"Y contains NaN or inf"),
    Case("strings as X", lambda: _fit(X=np.array([["a"] * 6] * 2)), TypeError, r"X must be a numeric array"),
    Case("objects as Y", lambda: _fit(Y=np.array([[None] * 6], dtype=object)), TypeError,
         r"Y must be a numeric array"),
    Case("ragged X", lambda: _fit(X=[[1.0, 2.0], [3.0]]), TypeError, r"X must be a numeric array"),
    Case("complex X", lambda: _fit(X=np.ones((2, 6), dtype=complex)), TypeError, r"X must be real"),
    Case("no examples", lambda: _fit(X=np.zeros((2, 0)), Y=np.zeros((1, 0))), ValueError,
         r"X has no examples \(m = 0\)"),
    Case("softmax label too large", lambda: _fit(SOFTMAX, Y=np.array([0, 1, 2, 3, 0, 1])), ValueError,
         r"Y labels must be in \[0, 2\] for 3 classes"),
    Case("softmax label negative", lambda: _fit(SOFTMAX, Y=np.array([0, 1, -1, 2, 0, 1])), ValueError,
         r"Y labels must be in \[0, 2\]"),
    Case("softmax label fractional", lambda: _fit(SOFTMAX, Y=np.array([0, 1, 1.5, 2, 0, 1])), ValueError,
         r"Y labels must be whole numbers"),
    Case("softmax Y not one-hot", lambda: _fit(SOFTMAX, Y=np.ones((3, 6))), ValueError,
         r"Y columns must be one-hot"),
    Case("sigmoid target above 1", lambda: _fit(Y=np.full((1, 6), 2.0)), ValueError,
         r"Y must hold targets in \[0, 1\] for a sigmoid output"),
    Case("sigmoid target below 0", lambda: _fit(Y=np.full((1, 6), -0.5)), ValueError,
         r"Y must hold targets in \[0, 1\]"),
    Case("GradientCheck after the last epoch", lambda: _fit(epochs=2, callbacks=[minnet.GradientCheck(at=[5])]),
         ValueError, r"GradientCheck: at epochs must be <= epochs=2, got 5"),
    Case("GradientCheck at a negative epoch", lambda: minnet.GradientCheck(at=[0, -1]), ValueError,
         r"GradientCheck: at must be >= 0, got -1"),
    Case("GradientCheck at not epochs", lambda: minnet.GradientCheck(at="0, 5"), TypeError,
         r"GradientCheck: at must be a sequence of epochs, got '0, 5'"),
    Case("GradientCheck data not a pair", lambda: minnet.GradientCheck(at=[0], data=np.ones((2, 6))), TypeError,
         r"GradientCheck: data must be a pair \(X, Y\)"),
    Case("GradientCheck data of the wrong shape", lambda: _fit(callbacks=[minnet.GradientCheck(
        at=[0], data=(np.ones((3, 4)), np.ones((1, 4))))]), ValueError,
         r"GradientCheck data\[0\] must have shape \(n_x=2, m\), got \(3, 4\)"),
    Case("fit callbacks not callbacks", lambda: _fit(callbacks=[minnet.GradientCheck(at=[0]), "check"]), TypeError,
         r"callbacks\[1\] must be a minnet\.Callback \(with a method on_train_begin, on_epoch_end or "
         r"on_train_end\), got str"),
    Case("fit callbacks a number", lambda: _fit(callbacks=3), TypeError,
         r"callbacks must be a sequence of minnet\.Callback objects, got int"),
    # --------------------------------------------------------- other methods
    Case("predict wrong n_x", lambda: minnet.Network([2, 3, 1]).predict(np.zeros((4, 2))), ValueError,
         r"X must have shape \(n_x=2, m\)"),
    Case("accuracy of a linear net", lambda: minnet.Network([2, 1], output="linear").accuracy(*_data()),
         ValueError, r"accuracy needs a sigmoid or softmax output"),
    Case("dropout_masks m 0", lambda: minnet.Network([2, 3, 1], keep_prob=0.5).dropout_masks(0, 1), ValueError,
         r"m must be >= 1"),
    Case("dropout_masks seed None", lambda: minnet.Network([2, 3, 1], keep_prob=0.5).dropout_masks(4, None),
         ValueError, r"dropout_seed must be an integer"),
    # -------------------------------------------------------- gradient_check
    Case("epsilon 0", lambda: _check(epsilon=0.0), ValueError, r"epsilon must be a finite number in \(0\.0, 1\.0\]"),
    Case("epsilon negative", lambda: _check(epsilon=-1e-7), ValueError, r"epsilon must be a finite number"),
    Case("epsilon a string", lambda: _check(epsilon="1e-7"), TypeError, r"epsilon must be a real number"),
    Case("check_gradients with non-string keys", lambda: _check_gradients(parameters={1: np.ones((1, 1))}), TypeError,
         r"parameters keys must be strings"),
    Case("check_gradients with forward but no backward", lambda: minnet.check_gradients(
        forward=lambda X, Y, p: (0.0, None), X=np.ones((1, 1)), Y=np.ones((1, 1)), parameters={"W1": np.ones((1, 1))}),
         TypeError, r"backward is required"),
    Case("check_gradients with both kinds of functions", lambda: minnet.check_gradients(
        _cost, _grads, {"W1": np.ones((1, 1))}, forward=lambda X, Y, p: (0.0, None)), TypeError,
         r"either cost_fn and grads_fn, or forward, backward, X and Y"),
    Case("GradientCheck check not callable", lambda: minnet.GradientCheck(at=[0], check="yes"), TypeError,
         r"GradientCheck: check must be callable as check\(net, X, Y\), got str"),
    Case("softmax with one output unit", lambda: minnet.Network([2, 3, 1], output="softmax"), ValueError,
         r"output='softmax' needs at least 2 output units"),
    Case("method unknown", lambda: _check(method="central"), ValueError,
         r"method must be one of 'auto', 'segment', 'incremental', 'full'; got 'central'"),
    Case("segment method on a tanh net", lambda: minnet.gradient_check(
        minnet.Network([3, 4, 1], hidden="tanh"), np.ones((3, 2)), np.ones((1, 2)), method="segment"), ValueError,
         r"method='segment' needs piecewise-linear hidden layers"),
    Case("mode unknown", lambda: _check(mode="random"), ValueError,
         r"mode must be one of 'full', 'directional'; got 'random'"),
    Case("threads 0", lambda: _check(threads=0), ValueError, r"threads must be >= 1, got 0"),
    Case("threads beyond the pool", lambda: _check(threads=10_000), ValueError,
         r"threads must be <= \d+ \(Numba's thread pool"),
    Case("sample 0", lambda: _check(sample=0), ValueError, r"sample must be >= 1, got 0"),
    Case("sample with directional", lambda: _check(sample=2, mode="directional"), ValueError,
         r"sample cannot be combined with mode='directional'"),
    Case("thresholds decreasing", lambda: _check(thresholds=(1e-3, 1e-7)), ValueError,
         r"thresholds must be increasing"),
    Case("net not a Network", lambda: minnet.gradient_check("net", *_data()), TypeError,
         r"net must be a minnet\.Network, got str"),
    Case("net a parameter dict", lambda: minnet.gradient_check(PARAMS, *_data()), TypeError,
         r"net must be a minnet\.Network, got dict; for your own functions use minnet\.check_gradients"),
    Case("check X wrong shape", lambda: _check(X=np.zeros((5, 6))), ValueError, r"X must have shape \(n_x=2, m\)"),
    Case("random dropout masks", lambda: _check(net=minnet.Network([2, 8, 1], keep_prob=0.5), dropout_seed=None),
         ValueError, r"the cost is not deterministic.*dropout_seed=0"),
    # ------------------------------------------------------ check_gradients
    Case("cost_fn not callable", lambda: _check_gradients(cost_fn=5), TypeError, r"cost_fn must be callable, got int"),
    Case("grads_fn not callable", lambda: _check_gradients(grads_fn="grads"), TypeError,
         r"grads_fn must be callable, got str"),
    Case("grads wrong keys", lambda: _check_gradients(grads_fn=lambda p: {"dW9": p["W1"], "db9": p["b1"]}),
         ValueError, r"gradients has no entry 'dW1'"),
    Case("grads with NaN", lambda: _check_gradients(grads_fn=lambda p: {"dW1": p["W1"] * np.nan, "db1": p["b1"]}),
         ValueError, r"grads_fn returned NaN or inf"),
    Case("cost not a scalar", lambda: _check_gradients(cost_fn=lambda p: np.array([1.0, 2.0])), ValueError,
         r"cost_fn must return a scalar cost, got an array of shape \(2,\)"),
    Case("cost not a number", lambda: _check_gradients(cost_fn=lambda p: "cheap"), TypeError,
         r"cost_fn must return .*a real number, got str"),
    Case("cost None", lambda: _check_gradients(cost_fn=lambda p: None), TypeError,
         r"cost_fn must return .*a real number, got NoneType"),
    Case("cost NaN", lambda: _check_gradients(cost_fn=lambda p: float("nan")), ValueError,
         r"the cost at theta is nan"),
    Case("parameters empty", lambda: _check_gradients(parameters={}), TypeError,
         r"parameters must be a non-empty dict"),
    Case("parameters with inf", lambda: _check_gradients(parameters={"W1": np.array([[np.inf, 1.0]]),
                                                                     "b1": np.zeros((1, 1))}),
         ValueError, r"parameters\['W1'\] contains NaN or inf"),
    # ------------------------------------------------------------- datasets
    Case("flower m 0", lambda: datasets.flower(m=0), ValueError, r"m must be an integer >= 2, got 0"),
    Case("moons m float", lambda: datasets.moons(m=10.5), TypeError, r"m must be an integer"),
    Case("circles factor 1", lambda: datasets.circles(factor=1.0), ValueError,
         r"factor must be in the open interval \(0, 1\)"),
    Case("flower noise negative", lambda: datasets.flower(noise=-1.0), ValueError,
         r"noise must be finite and >= 0"),
    Case("spirals m < n_classes", lambda: datasets.spirals(m=2, n_classes=3), ValueError,
         r"m must be >= n_classes \(3\), got 2"),
    Case("dataset name unknown", lambda: datasets.load("iris"), ValueError,
         r"unknown dataset name 'iris'; valid names are: flower, moons"),
    Case("dataset name not a string", lambda: datasets.load(3), TypeError, r"name must be a str"),
    # ----------------------------------------------------------- checkpoint
    Case("load missing file", _load_missing, FileNotFoundError, r"no minnet checkpoint at .*missing\.npz"),
    Case("load a directory", _load_directory, IsADirectoryError, r"cannot load a checkpoint from .*: it is a directory"),
    Case("load path None", lambda: minnet.Network.load(None), TypeError, r"path must be a str or os\.PathLike"),
    Case("checkpoint config not a dict", lambda: checkpoint.save("unused.npz", [("W1", 1)], np.zeros(3)),
         TypeError, r"config must be a dict, got list"),
    Case("checkpoint theta not float64", lambda: checkpoint.save("unused.npz", minnet.Network([2, 1]).config,
                                                                 np.zeros(3, dtype=np.float32)),
         TypeError, r"theta must be float64, got dtype float32"),
    *([Case("load a FIFO", _load_fifo, ValueError, r"is not a minnet checkpoint: it is a FIFO, not a regular file")]
      if hasattr(os, "mkfifo") else []),
    Case("save onto a directory", _save_into_directory, IsADirectoryError, r"it is a directory"),
    Case("save into a missing folder", _save_missing_folder, FileNotFoundError, r"the folder .* does not exist"),
]


def test_cases_are_many_and_distinct():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case):
    with pytest.raises(case.exc, match=case.match):
        case.call()


def test_bad_input_keeps_the_object_usable():
    """A refused fit leaves the network as it was and still working."""
    net = minnet.Network([2, 3, 1], seed=3)
    before = net.theta.copy()
    X, Y = _data()
    with pytest.raises(ValueError, match="learning_rate"):
        net.fit(X, Y, learning_rate=-1.0)
    with pytest.raises(ValueError, match="Y must hold targets"):
        net.fit(X, Y + 3.0)
    np.testing.assert_array_equal(net.theta, before)
    assert np.isfinite(net.fit(X, Y, epochs=2)["cost"]).all()


# --------------------------------------------------- all cases, one process
def run_all(stream=sys.stdout):
    """Run every case; print one line per unexpected outcome and a summary. Returns the exit status."""
    handled, failures = 0, []
    for case in CASES:
        try:
            case.call()
        except case.exc as exc:
            if re.search(case.match, str(exc)):
                handled += 1
            else:
                failures.append(f"{case.name}: message {str(exc)!r} does not match {case.match!r}")
        except BaseException as exc:  # noqa: B902 - report everything, including SystemExit
            failures.append(f"{case.name}: expected {case.exc.__name__}, got {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{case.name}: expected {case.exc.__name__}, nothing was raised")
    for line in failures:
        print("FAILED", line, file=stream)
    print(f"handled {handled} of {len(CASES)} bad inputs", file=stream)
    return 0 if handled == len(CASES) and not failures else 1


def test_all_bad_inputs_in_one_interpreter(tmp_path):
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from tests import test_bad_input as t; sys.exit(t.run_all())")
    # cwd is a scratch folder: the case that passes a relative path must not touch the repository
    result = subprocess.run([sys.executable, "-c", code, str(root)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"handled (\d+) of (\d+) bad inputs", result.stdout)
    assert summary is not None, result.stdout + result.stderr
    assert int(summary.group(1)) == int(summary.group(2)) == len(CASES)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ the command line
CLI_CASES = [  # argv, a word the one-line message must contain
    (["check", "--layers", "2,x,1"], "--layers"),
    (["check", "--layers", "2"], "--layers"),
    (["check", "--hidden", "swish"], "--hidden"),
    (["check", "--keep-prob", "1.5"], "--keep-prob"),
    (["check", "--epsilon", "-1"], "--epsilon"),
    (["check", "--examples", "0"], "--examples"),
    (["check", "--threads", "0"], "--threads"),
    (["train", "--dataset", "mnist"], "--dataset"),
    (["train", "--epochs", "-3"], "--epochs"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--optimizer", "sgd"], "--optimizer"),
    (["bench", "--workloads", "imagenet"], "--workloads"),
]


@pytest.mark.parametrize("argv,word", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_bad_command_line(argv, word, capsys):
    from minnet.cli import main
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("minnet: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert word in err, err


def test_bad_command_lines_in_a_real_process():
    """Each bad command line in its own interpreter: one line on stderr, status 2, no crash."""
    for argv, word in CLI_CASES[:4]:
        run = subprocess.run([sys.executable, "-m", "minnet", *argv], capture_output=True, text=True)
        assert run.returncode == 2, (argv, run.stderr)
        assert run.stderr.count("\n") == 1 and word in run.stderr and "Traceback" not in run.stderr


def test_finite_arrays_are_told_apart_from_those_with_nan_or_inf_even_where_the_sum_overflows():
    from minnet import _validation as v
    huge = np.full((3, 4), 1.7e308)  # finite, but their sum overflows to inf
    assert v.all_finite(huge) and v.all_finite(np.empty((0, 3))) and v.all_finite(-huge)
    for bad in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (2, 3), (1, 2)):
            spoiled = huge.copy()
            spoiled[where] = bad
            assert not v.all_finite(spoiled)
            assert not v.all_finite(np.where(np.isfinite(spoiled), 0.5, spoiled))
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        minnet.Network([4, 1]).forward(np.array([[1e308] * 3, [1e308] * 3, [np.inf, 0, 0], [0, 0, 0]]))
    assert minnet.Network([4, 1]).forward(np.full((4, 3), 1e308)).shape == (1, 3)  # finite: accepted

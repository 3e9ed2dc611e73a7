"""Robustness: extreme values, degenerate shapes, divergence, determinism, and a read-only install."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest

import minnet
from minnet.ops.activations import ACTIVATIONS

from . import naive

HIDDEN = tuple(ACTIVATIONS)
OUTPUT = ("sigmoid", "softmax", "linear")


def targets(output, n, m, rng):
    if output == "softmax":
        return np.eye(n)[:, rng.integers(0, n, m)]
    if output == "sigmoid":
        return rng.integers(0, 2, (n, m)).astype(float)
    return rng.standard_normal((n, m))


def reference_gradient(net, X, Y):
    return naive.grads_to_vector(naive.backward(naive.parameters_from(net.theta, net.layer_dims), X, Y,
                                                net.hidden, net.output, net.lambd))


def flat(grads, net):
    return minnet.flatten_gradients(grads, net.layout)


# ----------------------------------------------------------- extreme logits
@pytest.mark.parametrize("output", OUTPUT)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_extreme_logits(hidden, output):
    """|z_L| ~ 1e4: cost and gradients finite and equal to the stable reference, no warnings."""
    rng = np.random.default_rng(3)
    net = minnet.Network([3, 4, 3], hidden=hidden, output=output, lambd=0.1)
    theta = rng.standard_normal(net.theta.size)
    net.theta = theta
    W2, b2 = net.parameters["W2"], net.parameters["b2"]
    X = rng.standard_normal((3, 10))
    Y = targets(output, 3, 10, rng)
    A1 = naive.forward(naive.parameters_from(net.theta, net.layer_dims), X, hidden, output)[1][1][0]
    W2 *= 1e4 / max(np.abs(W2 @ A1).max(), 1e-3)  # logits of size ~1e4
    b2[:, 0] = [1e4, -1e4, 0.5e4]
    Z = naive.forward(naive.parameters_from(net.theta, net.layer_dims), X, hidden, output)[1][-1][1]
    assert 3e3 < np.abs(Z).max() < 1e5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # exp(-1e4) underflowing to 0 is the right answer; overflow, 0/0 and log(0) are not
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            J = net.cost(X, Y)
            grads = net.gradients(X, Y)
            AL = net.forward(X)
            report = minnet.gradient_check(net, X, Y)  # incremental
    assert np.isfinite(J)
    expected_J = naive.cost(naive.parameters_from(net.theta, net.layer_dims), X, Y, hidden, output, net.lambd)
    assert J == pytest.approx(expected_J, rel=1e-12)
    g = flat(grads, net)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, reference_gradient(net, X, Y), rtol=1e-9, atol=1e-12 * np.abs(g).max())
    assert np.all(np.isfinite(AL))
    if output == "sigmoid":
        assert AL.min() >= 0.0 and AL.max() <= 1.0
    elif output == "softmax":
        np.testing.assert_allclose(AL.sum(axis=0), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(report.approx)) and report.verdict == "correct", str(report)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_saturated_outputs_giving_the_right_answer(output):
    """Logits of 1e4 on the right side: loss is 0 or a tiny positive number, never NaN or negative."""
    net = minnet.Network([1, 2], output=output)
    net.theta = np.array([1e4, -1e4, 0.0, 0.0])
    X = np.array([[1.0, -1.0, 0.5]])
    if output == "sigmoid":
        Y = (net.parameters["W1"] @ X > 0).astype(float)
    else:
        Y = np.argmax(net.parameters["W1"] @ X, axis=0)
    J = net.cost(X, Y)
    assert 0.0 <= J < 1e-300
    assert np.all(np.isfinite(flat(net.gradients(X, Y), net)))


def _softmax_large_logit_cases(n_cases=60, seed=0):
    """Single-layer softmax nets with logits ~ 1e2..1e3, every example classified right (J small)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        scale = 10 ** rng.uniform(2, 3)
        n_out, n_in, m = int(rng.integers(2, 6)), int(rng.integers(1, 5)), int(rng.integers(1, 30))
        net = minnet.Network([n_in, n_out], output="softmax")
        W, b = rng.standard_normal((n_out, n_in)) * scale, rng.standard_normal(n_out) * scale
        net.theta = np.concatenate([W.ravel(), b])
        X = rng.standard_normal((n_in, m))
        yield net, X, np.argmax(W @ X + b[:, None], axis=0)


def test_incremental_check_correct_on_confident_softmax():
    for net, X, Y in _softmax_large_logit_cases():
        report = minnet.gradient_check(net, X, Y, method="incremental")
        assert report.verdict == "correct", str(report)


def _confident_softmax():
    """A correct single-layer softmax net, logits ~ 1e2, both examples classified right (J ~ 1.3e-5)."""
    net = minnet.Network([2, 3], output="softmax")
    net.theta = np.array([-176.3, 15.7, -69.8, -13.3, 67.7, 82.7, 72.5, 227.5, 117.5])
    return net, np.array([[-0.75, -0.82], [2.33, -0.66]]), np.array([2, 1])


def test_confident_softmax_backprop_and_incremental_check():
    net, X, Y = _confident_softmax()
    Y1 = np.eye(3)[:, Y]
    expected = naive.autograd_gradient(net.theta, net.layer_dims, X, Y1, net.hidden, net.output)
    assert naive.difference(flat(net.gradients(X, Y), net), expected) <= 1e-10
    assert minnet.gradient_check(net, X, Y, method="incremental").verdict == "correct"


def test_full_check_correct_on_confident_softmax():
    net, X, Y = _confident_softmax()
    report = minnet.gradient_check(net, X, Y, method="full")
    assert report.verdict == "correct", str(report)


# ------------------------------------------------------- degenerate inputs
@pytest.mark.parametrize("hidden", HIDDEN)
def test_all_zero_X(hidden):
    rng = np.random.default_rng(0)
    net = minnet.Network([4, 5, 3, 1], hidden=hidden, output="sigmoid")
    net.parameters["b1"][:, 0] = rng.standard_normal(5)
    X, Y = np.zeros((4, 9)), rng.integers(0, 2, (1, 9)).astype(float)
    grads = net.gradients(X, Y)
    assert np.isfinite(net.cost(X, Y))
    assert not np.any(grads["dW1"])  # dW1 = dZ1 X^T = 0 exactly
    np.testing.assert_allclose(flat(grads, net), reference_gradient(net, X, Y), rtol=1e-12, atol=1e-15)
    assert minnet.gradient_check(net, X, Y).verdict == "correct"
    history = net.fit(X, Y, epochs=5, learning_rate=0.1)
    assert np.all(np.isfinite(history["cost"])) and np.all(np.isfinite(net.theta))


@pytest.mark.parametrize("lambd", [0.0, 0.5])
def test_dead_relu_layer(lambd):
    """All of layer 1's pre-activations negative: nothing before layer 2 gets a gradient."""
    rng = np.random.default_rng(1)
    net = minnet.Network([3, 5, 4, 2], hidden="relu", output="softmax", lambd=lambd)
    net.theta = rng.standard_normal(net.theta.size)
    net.parameters["b1"][:, 0] = -100.0
    net.parameters["b2"][:, 0] = np.abs(net.parameters["b2"][:, 0]) + 0.5  # layer 2 alive, fed by zeros
    X = rng.uniform(-1, 1, (3, 12))
    Y = rng.integers(0, 2, 12)
    grads = net.gradients(X, Y)
    m = X.shape[1]
    for name in ("W1", "W2"):  # only the L2 term: dZ1 = 0 and A1 = 0
        np.testing.assert_allclose(grads["d" + name], lambd / m * net.parameters[name], rtol=1e-15, atol=0)
    assert not np.any(grads["db1"])
    assert np.any(grads["db2"]) and np.any(grads["db3"]) and np.any(grads["dW3"])
    report = minnet.gradient_check(net, X, Y, include_kinks=True)
    assert report.verdict == "correct", str(report)
    assert report.kinks == []  # -100 is far from the kink at 0
    np.testing.assert_array_equal(report.approx[net.layout["b1"].offset:][:5], 0.0)
    W1 = net.parameters["W1"].copy()
    net.fit(X, Y, optimizer="adam", epochs=3, learning_rate=0.01)
    if lambd == 0.0:
        np.testing.assert_array_equal(net.parameters["W1"], W1)  # a dead layer does not learn


@pytest.mark.parametrize("output", OUTPUT)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_one_example_one_unit(hidden, output):
    rng = np.random.default_rng(2)
    n_out = 2 if output == "softmax" else 1
    for dims, m in (([1, 1, 1, n_out], 1), ([1, 1, 1, n_out], 5), ([4, 3, n_out], 1), ([1, n_out], 1)):
        net = minnet.Network(dims, hidden=hidden, output=output, lambd=0.3, keep_prob=0.7 if len(dims) > 2 else 1.0)
        net.theta = rng.standard_normal(net.theta.size)
        X, Y = rng.standard_normal((dims[0], m)), targets(output, n_out, m, rng)
        masks, kp = (net.dropout_masks(m, 4), list(net.keep_prob)) if net.uses_dropout else (None, None)
        expected = naive.autograd_gradient(net.theta, dims, X, Y, hidden, output, net.lambd, masks, kp)
        got = flat(net.gradients(X, Y, dropout_seed=4), net)
        assert naive.difference(got, expected) <= 1e-10
        for method in ("incremental", "full"):
            report = minnet.gradient_check(net, X, Y, method=method, dropout_seed=4)
            assert report.verdict == "correct", str(report)
        history = net.fit(X, Y, epochs=4, batch_size=1, learning_rate=0.05)
        assert len(history["cost"]) == 4 and np.all(np.isfinite(history["cost"]))


# ----------------------------------------------------------------- divergence
def _divergent_problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 8)), rng.standard_normal((1, 8)) * 10


@pytest.mark.parametrize("optimizer,learning_rate", [("gd", 1e10), ("gd", 1e3), ("momentum", 1e12),
                                                      ("adam", 1e300)])
def test_divergent_training_raises(optimizer, learning_rate):
    X, Y = _divergent_problem()
    net = minnet.Network([2, 3, 1], output="linear")
    with pytest.raises(minnet.TrainingDiverged) as info:
        net.fit(X, Y, optimizer=optimizer, learning_rate=learning_rate, epochs=200)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert f"learning_rate={learning_rate!r}" in message or f"learning_rate={float(learning_rate)}" in message
    epoch = int(message.split("diverged at epoch ")[1].split()[0])
    assert 0 < epoch < 200
    assert np.all(np.isfinite(net.theta))
    assert np.isfinite(net.cost(X, Y))  # "left at their last finite values"


def test_divergence_epoch_is_the_failing_one():
    """Training again for exactly `epoch` epochs (same seed) completes: the reported epoch is the first bad one."""
    X, Y = _divergent_problem()
    net = minnet.Network([2, 3, 1], output="linear")
    with pytest.raises(minnet.TrainingDiverged) as info:
        net.fit(X, Y, optimizer="gd", learning_rate=1e10, epochs=100)
    epoch = int(str(info.value).split("diverged at epoch ")[1].split()[0])
    fresh = minnet.Network([2, 3, 1], output="linear")
    history = fresh.fit(X, Y, optimizer="gd", learning_rate=1e10, epochs=epoch)
    assert len(history["cost"]) == epoch and np.all(np.isfinite(history["cost"]))


def test_divergence_in_the_last_step_is_caught():
    X, Y = _divergent_problem()
    net = minnet.Network([2, 3, 1], output="linear")
    try:
        net.fit(X, Y, optimizer="gd", learning_rate=1e308, epochs=1)
    except minnet.TrainingDiverged:
        pass
    assert np.all(np.isfinite(net.theta))


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("keep_prob,batch_size", [(1.0, None), (0.6, None), (1.0, 7), ([0.5, 0.8], 5)])
def test_same_seed_same_bits(optimizer, keep_prob, batch_size):
    X, Y = minnet.datasets.blobs(m=40, n_classes=3, seed=1)
    runs = []
    for _ in range(2):
        net = minnet.Network([2, 6, 5, 3], output="softmax", lambd=0.1, keep_prob=keep_prob, seed=4)
        history = net.fit(X, Y, optimizer=optimizer, learning_rate=0.05, epochs=6, batch_size=batch_size, seed=11)
        runs.append((np.array(history["cost"]), net.theta.copy()))
    (c1, t1), (c2, t2) = runs
    np.testing.assert_array_equal(c1.view(np.uint64), c2.view(np.uint64))
    np.testing.assert_array_equal(t1.view(np.uint64), t2.view(np.uint64))
    # the test can fail: a different seed changes the result whenever something is random
    if keep_prob != 1.0 or batch_size is not None:
        net = minnet.Network([2, 6, 5, 3], output="softmax", lambd=0.1, keep_prob=keep_prob, seed=4)
        net.fit(X, Y, optimizer=optimizer, learning_rate=0.05, epochs=6, batch_size=batch_size, seed=12)
        assert not np.array_equal(net.theta, t1)


def _check_net():
    X, Y = minnet.datasets.blobs(m=48, n_classes=3, n_features=5, seed=2)
    net = minnet.Network([5, 12, 9, 3], hidden="relu", output="softmax", lambd=0.2, keep_prob=0.8, seed=3)
    return net, X, Y


def _approx_bits(report):
    return report.approx.view(np.uint64), report.kink_mask


@pytest.mark.parametrize("method", ["incremental", "full"])
def test_gradient_check_is_bitwise_reproducible(method):
    net, X, Y = _check_net()
    first = minnet.gradient_check(net, X, Y, method=method, threads=1)
    again = minnet.gradient_check(net, X, Y, method=method, threads=1)
    n = numba.config.NUMBA_NUM_THREADS
    others = [minnet.gradient_check(net, X, Y, method=method, threads=t) for t in sorted({min(2, n), n})]
    for report in [again] + others:
        np.testing.assert_array_equal(report.approx.view(np.uint64), first.approx.view(np.uint64))
        np.testing.assert_array_equal(report.kink_mask, first.kink_mask)
        assert report.difference == first.difference
    sampled = [minnet.gradient_check(net, X, Y, method=method, sample=3, seed=5, threads=t).approx
               for t in (1, n)]
    np.testing.assert_array_equal(sampled[0], sampled[1])  # same NaN pattern and values


def test_gradient_check_threads_in_a_wider_pool():
    """In a process with a 4-thread Numba pool (whatever the machine): threads=1..4 agree bit for bit."""
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import minnet
        X, Y = minnet.datasets.blobs(m=48, n_classes=3, n_features=5, seed=2)
        net = minnet.Network([5, 12, 9, 3], hidden="relu", output="softmax", lambd=0.2, keep_prob=0.8, seed=3)
        out = {}
        for method in ("segment", "incremental", "full"):
            out[method] = [minnet.gradient_check(net, X, Y, method=method, threads=t).approx.view(np.uint64).tolist()
                           for t in (1, 2, 3, 4)]
        json.dump(out, sys.stdout)
    """)
    env = dict(os.environ, NUMBA_NUM_THREADS="4")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    net, X, Y = _check_net()
    here = minnet.gradient_check(net, X, Y, method="incremental", threads=1).approx.view(np.uint64).tolist()
    for method, runs in out.items():
        assert all(run == runs[0] for run in runs), method
    assert out["incremental"][0] == here


# --------------------------------------------------------- read-only install
def _no_dac_override_prefix():
    """A command prefix under which file permissions bind, or None when there is none.

    Root ignores read-only modes, so as root the child drops the capabilities
    that bypass them (util-linux ``setpriv``).
    """
    if os.name != "posix":
        return None
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


READ_ONLY_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import minnet
    package = os.path.dirname(os.path.abspath(minnet.__file__))
    assert package == os.path.abspath(sys.argv[1]), (package, sys.argv[1])
    try:  # the premise: this process cannot write into the package
        open(os.path.join(package, "probe"), "w")
    except OSError:
        pass
    else:
        sys.exit("the package directory is writable: the test premise does not hold")
    X, Y = minnet.datasets.flower(m=24, seed=1)
    net = minnet.Network([2, 5, 4, 1], hidden="tanh", lambd=0.3, keep_prob=0.9, seed=2)
    grads = minnet.flatten_gradients(net.gradients(X, Y, dropout_seed=0), net.layout)
    report = minnet.gradient_check(net, X, Y)
    json.dump({"grad": grads.tolist(), "verdict": report.verdict, "approx": report.approx.tolist()}, sys.stdout)
""")


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


@pytest.mark.slow_without_jit
def test_read_only_package(tmp_path):
    """Installed read-only, with NUMBA_CACHE_DIR and with Numba's per-user fallback: both compile from cold,
    so the two run side by side (they take most of this test's time)."""
    prefix = _no_dac_override_prefix()
    if prefix is None:
        pytest.skip("cannot make a directory read-only for this process (root without setpriv, or not POSIX)")
    source = Path(minnet.__file__).resolve().parent
    runs = []
    try:
        for cache in ("NUMBA_CACHE_DIR", "per-user fallback"):
            root = tmp_path / cache.replace(" ", "-")
            package = root / "site" / "minnet"
            shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
            for path in [package, *package.rglob("*")]:
                os.chmod(path, 0o555 if path.is_dir() else 0o444)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_")) and k != "PYTHONPATH"}
            env["PYTHONPATH"] = str(root / "site")
            if cache == "NUMBA_CACHE_DIR":
                cache_dir = root / "numba-cache"
                env["NUMBA_CACHE_DIR"] = str(cache_dir)
                env["HOME"] = str(root / "unused-home")
            else:
                env["HOME"] = str(root / "home")
                cache_dir = root / "home" / ".cache" / "numba"
            process = subprocess.Popen(prefix + [sys.executable, "-c", READ_ONLY_SCRIPT, str(package)], env=env,
                                       cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            runs.append((cache, package, _listing(package), cache_dir, process))
        results = [(cache, package, before, cache_dir, process.communicate(timeout=600), process)
                   for cache, package, before, cache_dir, process in runs]
    finally:
        for _, package, _, _, process in runs:
            process.kill()
            for path in [package, *package.rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
    X, Y = minnet.datasets.flower(m=24, seed=1)
    net = minnet.Network([2, 5, 4, 1], hidden="tanh", lambd=0.3, keep_prob=0.9, seed=2)
    for cache, package, before, cache_dir, (stdout, stderr), process in results:
        assert process.returncode == 0, f"{cache}: {stdout}{stderr}"
        out = json.loads(stdout)
        assert out["verdict"] == "correct", cache
        assert _listing(package) == before, f"{cache}: something was written into the read-only package"
        assert list(cache_dir.rglob("*.nbi")), f"{cache}: Numba cached nothing in {cache_dir}"
        # the same numbers as this process computes with its own compiled kernels
        np.testing.assert_allclose(out["grad"], flat(net.gradients(X, Y, dropout_seed=0), net), rtol=1e-13, atol=0)
        np.testing.assert_allclose(out["approx"], minnet.gradient_check(net, X, Y).approx, rtol=1e-12, atol=1e-15)

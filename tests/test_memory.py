"""``minnet._memory``: the memory a check or a training run needs, estimated before anything is allocated, and the
refusal (a ValueError naming the estimate and the memory available) of what does not fit. The estimates are
held against the peak resident memory of real runs, each in a fresh process."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minnet
from minnet import _memory
from minnet.check import api
from minnet.cli._names import CLASS_OUTPUT

GB = 10**9


def test_available_reads_the_system(monkeypatch):
    found = _memory.available()
    if sys.platform.startswith("linux"):
        assert isinstance(found, int) and 0 < found
    monkeypatch.setattr(_memory, "_meminfo", lambda: None)
    monkeypatch.setattr(_memory, "_psutil", lambda: None)
    monkeypatch.setattr(_memory, "_sysconf", lambda: None)
    monkeypatch.setattr(_memory, "_cgroup_room", lambda: None)
    assert _memory.available() is None
    monkeypatch.setattr(_memory, "_sysconf", lambda: 8 * GB)
    monkeypatch.setattr(_memory, "_cgroup_room", lambda: 2 * GB)  # a container's limit lowers what is free
    assert _memory.available() == 2 * GB


def test_require_refuses_what_does_not_fit(monkeypatch):
    monkeypatch.setattr(_memory, "available", lambda: 3 * GB)
    assert _memory.require(2 * GB, what="this job") == 2 * GB
    with pytest.raises(ValueError, match=r"^not enough memory: this job needs about 5 GB .* but the "
                                         r"machine has 3 GB available; ask for less"):
        _memory.require(5 * GB, what="this job")


def test_unknown_memory_refuses_nothing(monkeypatch):
    monkeypatch.setattr(_memory, "available", lambda: None)
    assert _memory.require(10**30, what="anything") == 10**30
    net = minnet.Network([3, 4, 2], output=CLASS_OUTPUT, seed=0)
    X, Y = np.random.default_rng(0).standard_normal((3, 8)), np.arange(8) % 2
    assert minnet.gradient_check(net, X, Y, progress=False).verdict == "correct"


def test_an_absurd_check_is_refused_before_anything_is_allocated(monkeypatch):
    """One input and 50,000 hidden units over two million examples: a forward cache of 10**11 entries (800 GB
    each array). X itself is 16 MB; the check stops at the estimate."""
    monkeypatch.setattr(api, "evaluate_network", lambda *a, **k: pytest.fail("the check went on"))
    net = minnet.Network([1, 50_000, 2], output=CLASS_OUTPUT, seed=0)
    m = 2_000_000
    X, Y = np.ones((1, m)), np.zeros(m, np.int64)
    with pytest.raises(ValueError, match=r"this gradient check needs about [\d.,]+ GB .* but the machine "
                                         r"has [\d.,]+ [GM]B available"):
        minnet.gradient_check(net, X, Y, progress=False)


def test_refusals_of_a_check_and_of_training_with_little_memory(monkeypatch):
    net = minnet.Network([20, 50, 3], output=CLASS_OUTPUT, seed=0)
    X, Y = np.random.default_rng(0).standard_normal((20, 500)), np.arange(500) % 3
    monkeypatch.setattr(_memory, "available", lambda: 10**6)  # 1 MB
    monkeypatch.setattr(api, "evaluate_network", lambda *a, **k: pytest.fail("the check went on"))
    with pytest.raises(ValueError, match="this gradient check needs about .* but the machine has 1 MB available"):
        minnet.gradient_check(net, X, Y, progress=False)
    assert _memory.require_network_check(net, 500, method="incremental", threads=1, nested=True) == 0  # counted
    with pytest.raises(ValueError, match="this gradient check and its data needs about"):  # the CLI's, before X
        _memory.require_network_check(net, 500, method="auto", threads=1, with_data=True)
    theta = net.theta.copy()
    with pytest.raises(ValueError, match="this training run needs about"):
        net.fit(X, Y, epochs=1)
    assert np.array_equal(net.theta, theta)


def test_estimates_grow_with_every_size_and_exceed_the_data():
    dims, m = [64, 32, 16, 10], 256
    base = _memory.check_bytes(dims, m, method="incremental", threads=2)
    assert base > _memory.data_bytes(dims, m)
    assert _memory.check_bytes(dims, 2 * m, method="incremental", threads=2) > base
    assert _memory.check_bytes([64, 64, 16, 10], m, method="incremental", threads=2) > base
    assert _memory.check_bytes(dims, m, method="incremental", threads=4) > base
    assert _memory.check_bytes(dims, m, method="incremental", threads=2, dropout=True) > base
    assert _memory.check_bytes(dims, m, method="incremental", threads=2, kinks=False) < base
    assert _memory.check_bytes(dims, m, method="segment", threads=2) > base
    full = _memory.check_bytes(dims, m, method="full", threads=2)
    assert full > _memory.data_bytes(dims, m) and _memory.check_bytes(dims, m, method="full", threads=4) > full
    train = _memory.training_bytes(dims, m)
    assert train > _memory.data_bytes(dims, m) and _memory.training_bytes(dims, m, batch_size=32) < train
    assert _memory.training_bytes(dims, m, batch_size=10**9) == train  # a batch is at most the m examples
    assert _memory.check_bytes(dims, m, method="auto", threads=2) == _memory.check_bytes(dims, m, method="segment",
                                                                                        threads=2)
    assert _memory.check_bytes(dims, m, method="auto", threads=2, kinks=False) == \
        _memory.check_bytes(dims, m, method="incremental", threads=2, kinks=False)
    with pytest.raises(ValueError, match="method"):
        _memory.check_bytes(dims, m, method="fast")
    with pytest.raises(ValueError, match="m must be positive"):
        _memory.check_bytes(dims, 0, method="full")


PEAK = textwrap.dedent("""
    import json, sys
    import numpy as np
    import minnet
    from minnet.cli._names import CLASS_OUTPUT, synthetic_data

    def kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    kind, dims, m, method, threads, hidden = json.loads(sys.argv[1])
    tiny = minnet.Network([3, 4, 3], hidden=hidden, output=CLASS_OUTPUT, seed=0)
    Xt, Yt = synthetic_data([3, 4, 3], CLASS_OUTPUT, 5, seed=0)
    minnet.gradient_check(tiny, Xt, Yt, method=method if kind == "check" else "auto", threads=threads, progress=False)
    tiny.fit(Xt, Yt, epochs=2)
    net = minnet.Network(dims, hidden=hidden, output=CLASS_OUTPUT, lambd=0.7, seed=0)
    X, Y = synthetic_data(dims, CLASS_OUTPUT, m, seed=0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak starts again from here
    base = kb("VmRSS")
    if kind == "check":
        minnet.gradient_check(net, X, Y, method=method, threads=threads, progress=False)
    else:
        net.fit(X, Y, epochs=1, batch_size=method)
    print(kb("VmHWM") - base)
""")


def measured_peak(kind, dims, m, method, threads, hidden):
    """Growth of the peak resident memory of one check or one epoch of training, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PEAK, json.dumps([kind, dims, m, method, threads, hidden])],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.slow_without_jit  # the compiled check's and training's memory, measured in processes of their own
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak from /proc/self/status")
@pytest.mark.parametrize("kind, dims, m, method, kinks", [
    ("check", [20, 500, 10], 5000, "incremental", True),     # the forward cache dominates; kinks judged nearby
    ("check", [20, 500, 10], 5000, "incremental", False),    # a smooth activation: one pass
    ("check", [1000, 2000, 10], 16, "incremental", True),    # theta's 2 million entries dominate
    ("train", [784, 128, 64, 10], 20_000, None, True),       # X transposed and the full batch's workspace
])
def test_estimates_are_within_twice_the_measured_peak(kind, dims, m, method, kinks):
    from minnet.ops.activations import PIECEWISE_LINEAR, SMOOTH
    hidden = PIECEWISE_LINEAR[0] if kinks else SMOOTH[0]
    peak = measured_peak(kind, dims, m, method, 2, hidden)
    estimate = (_memory.check_bytes(dims, m, method=method, threads=2, kinks=kinks) if kind == "check" else
                _memory.training_bytes(dims, m, batch_size=method))
    assert peak <= estimate <= 2 * peak, (peak, estimate)

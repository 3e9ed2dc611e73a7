"""fit's callbacks (minnet.Callback, minnet.GradientCheck), keyword-only options, and which module may import which."""
import ast
from pathlib import Path

import numpy as np
import pytest

import minnet
from minnet import datasets

PACKAGE = Path(minnet.__file__).resolve().parent


class Recorder(minnet.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, net, training):
        self.calls.append(("begin", training.epochs, len(training.history["cost"]), training.X.shape))

    def on_epoch_end(self, net, epoch, training):
        self.calls.append(("epoch", epoch, len(training.history["cost"])))

    def on_train_end(self, net, training):
        self.calls.append(("end", training.epochs, len(training.history["cost"])))


def _data(m=40):
    return datasets.flower(m=m, seed=3)


def test_hooks_run_in_order_with_epochs_counted_from_one():
    X, Y = _data()
    first, second = Recorder(), Recorder()
    history = minnet.Network([2, 4, 1]).fit(X, Y, epochs=3, callbacks=[first, second])
    expected = [("begin", 3, 0, (2, 40)), ("epoch", 1, 1), ("epoch", 2, 2), ("epoch", 3, 3), ("end", 3, 3)]
    assert first.calls == second.calls == expected
    assert set(history) == {"cost"}  # no callback added anything
    recorder = Recorder()
    minnet.Network([2, 4, 1]).fit(X, Y, epochs=0, callbacks=recorder)  # a lone callback needs no list
    assert recorder.calls == [("begin", 0, 0, (2, 40)), ("end", 0, 0)]


def test_a_plain_object_with_some_hooks_is_a_callback():
    class EpochsOnly:
        def __init__(self):
            self.costs = []

        def on_epoch_end(self, net, epoch, training):
            self.costs.append(training.history["cost"][-1])

    X, Y = _data()
    seen = EpochsOnly()
    history = minnet.Network([2, 4, 1]).fit(X, Y, epochs=4, callbacks=(seen,))
    assert seen.costs == history["cost"]


def test_a_hook_that_raises_stops_training():
    class Stop(minnet.Callback):
        def on_epoch_end(self, net, epoch, training):
            if epoch == 2:
                raise KeyboardInterrupt

    X, Y = _data()
    after = Recorder()
    with pytest.raises(KeyboardInterrupt):
        minnet.Network([2, 4, 1]).fit(X, Y, epochs=5, callbacks=[Stop(), after])
    assert [call[0] for call in after.calls] == ["begin", "epoch"]  # no end after an error


def test_gradient_check_changes_nothing_in_training_and_keeps_its_reports():
    X, Y = _data()
    plain, checked = minnet.Network([2, 5, 1], keep_prob=0.8), minnet.Network([2, 5, 1], keep_prob=0.8)
    check = minnet.GradientCheck(at=[2, 0, 2])
    h1 = plain.fit(X, Y, epochs=4, batch_size=16, seed=5)
    h2 = checked.fit(X, Y, epochs=4, batch_size=16, seed=5, callbacks=[check])
    assert h1["cost"] == h2["cost"] and np.array_equal(plain.theta, checked.theta)
    assert check.at == (0, 2) and list(check.reports) == [0, 2] and h2["checks"] == check.reports
    assert all(report.verdict == "correct" for report in check.reports.values())
    # a second fit starts a new set of reports; the first fit's history keeps its own
    first = check.reports
    h3 = checked.fit(X, Y, epochs=2, callbacks=[check])
    assert check.reports is not first and h2["checks"] == first and h3["checks"] == check.reports
    assert repr(check) == "GradientCheck(at=[0, 2])"


def test_gradient_check_data_defaults_to_the_first_64_training_examples():
    X, labels = datasets.spirals(100, 3, seed=1)
    seen = []
    check = minnet.GradientCheck(at=[1], check=lambda net, X, Y: seen.append((X, Y)))
    minnet.Network([2, 4, 3], output="softmax").fit(X, labels, epochs=1, callbacks=[check])
    (Xc, Yc), = seen
    np.testing.assert_array_equal(Xc, X[:, :64])
    np.testing.assert_array_equal(Yc, np.eye(3)[:, labels[:64]])  # validated: labels one-hot


def test_two_gradient_checks_share_the_history():
    X, Y = _data()
    calls = []
    early = minnet.GradientCheck(at=[0], check=lambda net, X, Y: calls.append("early") or "early")
    late = minnet.GradientCheck(at=[2], data=(X[:, :8], Y[:, :8]), check=lambda net, X, Y: X.shape[1])
    history = minnet.Network([2, 3, 1]).fit(X, Y, epochs=2, callbacks=[early, late])
    assert history["checks"] == {0: "early", 2: 8}
    assert early.reports == {0: "early"} and late.reports == {2: 8}


def test_options_are_keyword_only():
    X, Y = _data()
    with pytest.raises(TypeError, match="positional"):
        minnet.Network([2, 3, 1], "tanh")
    with pytest.raises(TypeError, match="positional"):
        minnet.Network([2, 3, 1]).fit(X, Y, "adam")
    with pytest.raises(TypeError, match="positional"):
        minnet.GradientCheck([0], (X, Y))
    with pytest.raises(TypeError, match="positional"):
        datasets.blobs(30, 3, 2)
    from minnet import baselines
    with pytest.raises(TypeError, match="positional"):
        baselines.numpy_cost(minnet.Network([2, 1]), X, Y, 0)


# ------------------------------------------------------------------ layering
def _imports(path):
    """(module, names) for every import in the file, relative ones as written ("..network")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append(("." * node.level + (node.module or ""), [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def test_checkpoint_imports_no_network():
    for module, names in _imports(PACKAGE / "checkpoint.py"):
        assert "network" not in module and "network" not in names and not module.startswith(".check")


def test_network_imports_no_check_plots_or_cli():
    for module, names in _imports(PACKAGE / "network.py"):
        assert not {"check", "plots", "cli"} & {module.lstrip("."), *names}, module


def test_the_callback_takes_only_the_protocol_from_training():
    imports = _imports(PACKAGE / "check" / "callbacks.py")
    assert [names for module, names in imports if module == "..training"] == [["Callback"]]
    assert not [names for module, names in imports if module == "..network"]


def test_the_package_patches_no_module():
    """minnet/__init__.py only imports and defines names: no assignment to another module's attribute."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        assert not any(isinstance(t, ast.Attribute) for t in targets), ast.dump(node)
    assert not hasattr(minnet.network, "DEFAULT_CHECK")

"""minnet.plots, drawn headless with the Agg backend."""
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import minnet  # noqa: E402
from minnet import plots  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    X, Y = minnet.datasets.moons(m=80, seed=0)
    net = minnet.Network([2, 8, 1], lambd=0.1, seed=0)
    history = net.fit(X, Y, learning_rate=0.02, epochs=60, callbacks=[minnet.GradientCheck(at=[0, 60])])
    return net, X, Y, history


def _buggy_report():
    params = {"W1": np.array([[1.0, -2.0], [0.5, 0.3]]), "b1": np.array([[0.5], [-0.1]])}

    def cost(p):
        return float(np.sum(np.tanh(p["W1"]) ** 2) + np.sum(p["b1"] ** 2))

    def grads(p):
        t = np.tanh(p["W1"])
        return {"dW1": 2 * t * (1 - t ** 2), "db1": 2.5 * p["b1"]}  # db1 is wrong
    return minnet.check_gradients(cost, grads, params)


def _nonempty(path):
    return path.exists() and path.stat().st_size > 1000


def test_plot_cost_from_history(tmp_path, trained):
    _, _, _, history = trained
    before = plt.get_fignums()
    fig = plots.plot_cost(history, path=tmp_path / "cost.png")
    assert isinstance(fig, Figure)
    assert _nonempty(tmp_path / "cost.png")
    assert plt.get_fignums() == before  # saving draws off screen, outside pyplot
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel().startswith("cost")
    labels = ax.get_legend_handles_labels()[1]
    assert "gradient check before training: correct" in labels
    assert "gradient check after training: correct" in labels


def test_plot_cost_from_a_list_and_noisy_costs(tmp_path):
    assert _nonempty(tmp_path / "a.png") is False
    plots.plot_cost([3.0, 2.0, 1.5, 1.2], path=tmp_path / "a.png")
    assert _nonempty(tmp_path / "a.png")
    noisy = 1 + np.random.default_rng(0).random(1000) * 0.1
    fig = plots.plot_cost(noisy, path=tmp_path / "b.svg")
    assert (tmp_path / "b.svg").stat().st_size > 0
    assert any("moving average" in label for label in fig.axes[0].get_legend_handles_labels()[1])


def test_plot_cost_rejects_empty():
    with pytest.raises(ValueError, match="no costs"):
        plots.plot_cost([])
    with pytest.raises(ValueError, match="history"):
        plots.plot_cost({"checks": {}})


def test_plot_decision_boundary(tmp_path, trained):
    net, X, Y, _ = trained
    fig = plots.plot_decision_boundary(net, X, Y, path=tmp_path / "boundary.png", resolution=60)
    assert _nonempty(tmp_path / "boundary.png")
    assert "Decision boundary" in fig.axes[0].get_title()


def test_plot_decision_boundary_softmax_on_given_axes(tmp_path):
    X, y = minnet.datasets.spirals(m=60, seed=0)
    net = minnet.Network([2, 10, 3], output="softmax", seed=0)
    net.fit(X, y, epochs=20)
    fig, ax = plt.subplots()
    try:
        got = plots.plot_decision_boundary(net, X, y, ax=ax, path=tmp_path / "s.png", resolution=40)
        assert got is fig
        assert _nonempty(tmp_path / "s.png")
    finally:
        plt.close(fig)


def test_plot_decision_boundary_needs_2d(trained):
    X, y = minnet.datasets.blobs(m=30, n_features=3, seed=0)
    net = minnet.Network([3, 4, 3], output="softmax")
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_decision_boundary(net, X, y)


def test_plot_check_bands_and_bars(tmp_path):
    report = _buggy_report()
    assert report.verdict == "bug" and report.worst_block == "b1"
    fig = plots.plot_check(report, path=tmp_path / "check.png")
    assert _nonempty(tmp_path / "check.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["W1", "b1"]
    assert "look first at b1" in ax.get_title()
    texts = {t.get_text() for t in ax.texts}
    assert {"correct", "suspicious", "bug"} <= texts
    low, high = ax.get_ylim()
    assert low < report.thresholds[0] < report.thresholds[1] < high


def test_plot_check_of_a_network_report(tmp_path):
    X, Y = minnet.datasets.flower(m=32, seed=0)
    report = minnet.gradient_check(minnet.Network([2, 5, 1], lambd=0.7), X, Y)
    fig = plots.plot_check(report, path=tmp_path / "net.png")
    assert _nonempty(tmp_path / "net.png")
    assert fig.axes[0].get_title() == "Gradient check: correct"


def test_plot_check_rejects_other_objects():
    with pytest.raises(TypeError, match="GradCheckReport"):
        plots.plot_check({"difference": 1.0})


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "minnet\[plot\]"'):
        plots.plot_cost([1.0, 0.5])

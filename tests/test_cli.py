"""The minnet command line (minnet.cli) and the reference checks it times (minnet.baselines)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minnet
from minnet import baselines, cli

HAVE_MPL = cli._have_matplotlib()


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_module(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "minnet.cli", *argv], capture_output=True, text=True,
                          timeout=120, **kwargs)


# --------------------------------------------------------------------- check
def test_exit_status_maps_verdicts():
    assert [cli.exit_status(v) for v in ("correct", "suspicious", "bug")] == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown verdict"):
        cli.exit_status("fine")


class _FakeReport:
    def __init__(self, verdict):
        self.verdict, self.difference, self.worst_block = verdict, 0.5, "W2"

    def __str__(self):
        return f"fake report: {self.verdict}"

    def to_dict(self):
        return {"difference": self.difference, "verdict": self.verdict, "blocks": {}}


@pytest.mark.parametrize("verdict, status", [("correct", 0), ("suspicious", 1), ("bug", 2)])
def test_check_exit_status_follows_the_report(monkeypatch, capsys, verdict, status):
    monkeypatch.setattr(minnet, "gradient_check", lambda *a, **k: _FakeReport(verdict))
    got, out, _ = run(capsys, "check", "--layers", "3,4,1")
    assert got == status
    assert f"fake report: {verdict}" in out


def test_check_correct_network(capsys):
    status, out, err = run(capsys, "check", "--layers", "3,6,4,2", "--output", "softmax", "--examples", "16")
    assert status == 0
    assert "CORRECT" in out and "W1" in out and "b3" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_check_json_parses(capsys):
    status, out, _ = run(capsys, "check", "--layers", "2,20,3,1", "--lambd", "0.7", "--keep-prob", "0.86",
                         "--examples", "32", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["verdict"] == "correct"
    assert report["difference"] < 1e-7
    assert set(report["blocks"]) == {"W1", "b1", "W2", "b2", "W3", "b3"}


@pytest.mark.parametrize("options", [
    ["--method", "full"],
    ["--mode", "directional"],
    ["--sample", "3", "--seed", "4"],
    ["--hidden", "tanh", "--output", "linear", "--epsilon", "1e-6"],
    ["--hidden", "leaky_relu", "--threads", "1", "--include-kinks"],
])
def test_check_options(capsys, options):
    status, out, _ = run(capsys, "check", "--layers", "4,5,3", "--examples", "8", "--quiet", *options)
    assert status == 0
    assert out.count("\n") == 1 and "CORRECT" in out


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_check_plot(capsys, tmp_path):
    path = tmp_path / "check.png"
    status, out, _ = run(capsys, "check", "--layers", "3,4,1", "--examples", "8", "--plot", str(path))
    assert status == 0 and path.stat().st_size > 0
    assert str(path) in out


# --------------------------------------------------------------------- train
def test_train_binary(capsys):
    status, out, err = run(capsys, "train", "--dataset", "moons", "--layers", "8", "--epochs", "50",
                           "--examples", "60", "--quiet")
    assert status == 0
    assert "final cost" in out and "training accuracy" in out
    assert err == ""


def test_train_multiclass_with_split_and_checks(capsys):
    status, out, _ = run(capsys, "train", "--dataset", "spirals", "--layers", "16,8", "--epochs", "30",
                         "--batch-size", "32", "--optimizer", "momentum", "--lambd", "0.1", "--keep-prob", "0.9",
                         "--test-split", "0.25", "--check")
    assert status == 0
    assert "softmax output" in out and "[2, 16, 8, 3]" in out
    assert "gradient check before training" in out and "gradient check after training" in out
    assert "test accuracy" in out


def test_train_binary_as_softmax_without_hidden_layer(capsys):
    status, out, _ = run(capsys, "train", "--dataset", "xor", "--layers", "", "--output", "softmax",
                         "--epochs", "10", "--examples", "40")
    assert status == 0
    assert "[2, 2]" in out and "no hidden layer" in out


@pytest.mark.slow_without_jit
def test_train_digits(capsys):
    pytest.importorskip("sklearn")
    status, out, _ = run(capsys, "train", "--dataset", "digits", "--layers", "16", "--epochs", "3",
                         "--batch-size", "128", "--test-split", "0.2", "--quiet")
    assert status == 0 and "test accuracy" in out


def test_train_save(capsys, tmp_path):
    if getattr(minnet.Network, "save", None) is None or getattr(minnet.Network, "load", None) is None:
        pytest.skip("Network.save / Network.load are not available")
    path = tmp_path / "model.npz"
    status, out, _ = run(capsys, "train", "--dataset", "circles", "--layers", "5", "--epochs", "5",
                         "--examples", "30", "--save", str(path), "--quiet")
    assert status == 0 and path.exists() and "saved" in out
    net = minnet.Network.load(str(path))
    assert net.layer_dims == [2, 5, 1]


def test_train_save_missing_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(minnet.Network, "save", None, raising=False)
    status, out, err = run(capsys, "train", "--epochs", "1", "--save", str(tmp_path / "m.npz"))
    assert status == 2
    assert err.startswith("minnet: error: --save") and err.count("\n") == 1
    assert out == ""


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_train_plots(capsys, tmp_path):
    cost, boundary = tmp_path / "cost.png", tmp_path / "boundary.png"
    status, _, _ = run(capsys, "train", "--dataset", "blobs", "--layers", "6", "--epochs", "20",
                       "--examples", "60", "--plot", str(cost), "--boundary", str(boundary), "--quiet")
    assert status == 0
    assert cost.stat().st_size > 0 and boundary.stat().st_size > 0


# ---------------------------------------------------------------------- demo
def test_demo(capsys, tmp_path):
    status, out, err = run(capsys, "demo", "--quiet", "--epochs", "5", "--out", str(tmp_path))
    assert status == 0
    assert out.count("CORRECT") == 2
    assert "Training accuracy" in out
    assert err == ""
    if HAVE_MPL:
        for name in ("cost", "boundary", "check"):
            assert (tmp_path / f"minnet_demo_{name}.png").stat().st_size > 0
    else:
        assert 'pip install "minnet[plot]"' in out


def test_demo_without_matplotlib_says_how_to_get_plots(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_have_matplotlib", lambda: False)
    status, out, _ = run(capsys, "demo", "--quiet", "--epochs", "5", "--out", str(tmp_path))
    assert status == 0
    assert 'pip install "minnet[plot]"' in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow_without_jit
def test_demo_settings_reach_95_percent():
    """The demo's advertised result, with its own settings (takes about a second)."""
    d = cli.DEMO
    X, Y = minnet.datasets.flower(m=d["m"], seed=d["seed"])
    net = minnet.Network(d["layer_dims"], hidden=d["hidden"], output=d["output"], lambd=d["lambd"],
                         keep_prob=d["keep_prob"], seed=d["seed"])
    net.fit(X, Y, optimizer=d["optimizer"], learning_rate=d["learning_rate"], epochs=d["epochs"], seed=d["seed"])
    assert net.accuracy(X, Y) >= 0.95


# --------------------------------------------------------------------- bench
@pytest.mark.slow_without_jit
def test_bench_digits(capsys):
    status, out, _ = run(capsys, "bench", "--workloads", "digits", "--baselines", "numpy", "--repeat", "1",
                         "--quiet")
    assert status == 0
    rows = [line.split() for line in out.splitlines() if line.startswith("digits")]
    methods = [" ".join(r[3:5]) for r in rows]
    assert methods == ["numpy loop", "minnet incremental", "minnet full"]
    assert all(r[-1].endswith("x") for r in rows)


@pytest.mark.slow_without_jit
def test_bench_large_workload_estimates_and_skips(capsys):
    status, out, _ = run(capsys, "bench", "--workloads", "mnist", "--repeat", "1", "--quiet")
    assert status == 0
    assert "(est.)" in out and "skipped (slow; add --full-baselines)" in out
    assert "minnet incremental" in out


@pytest.mark.slow_without_jit
def test_bench_with_torch(capsys):
    pytest.importorskip("torch")
    status, out, _ = run(capsys, "bench", "--workloads", "digits", "--baselines", "numpy,torch", "--methods",
                         "incremental", "--repeat", "1", "--quiet")
    assert status == 0
    torch_row = next(line for line in out.splitlines() if "torch gradcheck" in line)
    assert "passed" in torch_row
    assert "vs torch" in out


@pytest.mark.slow_without_jit
def test_bench_without_torch(capsys, monkeypatch):
    monkeypatch.setattr(baselines, "torch_available", lambda: False)
    status, out, _ = run(capsys, "bench", "--workloads", "digits", "--baselines", "torch", "--methods",
                         "incremental", "--repeat", "1", "--quiet")
    assert status == 0
    assert "PyTorch is not installed" in out


# ------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("argv", [
    ["check", "--hidden", "swish"],
    ["check", "--layers", "2,x,1"],
    ["check", "--layers", "3"],
    ["check", "--keep-prob", "1.5"],
    ["check", "--threads", "100000"],
    ["check", "--sample", "2", "--mode", "directional"],
    ["train", "--epochs", "-3"],
    ["train", "--dataset", "mnist"],
    ["train", "--layers", "8,0"],
    ["train", "--lr", "0"],
    ["train", "--dataset", "spirals", "--output", "sigmoid"],
    ["train", "--plot", os.path.join("no", "such", "folder", "cost.png")],
    ["bench", "--workloads", "imagenet"],
    ["bench", "--baselines", "none,numpy"],
    ["demo", "--out", os.path.join("no", "such", "folder")],
    ["frobnicate"],
    [],
])
def test_bad_arguments_give_one_line_and_status_2(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert err.startswith("minnet: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_argument_in_a_real_process():
    result = run_module("check", "--hidden", "swish")
    assert result.returncode == 2
    assert result.stderr.startswith("minnet: error: argument --hidden")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_module_runs_and_reports_its_status():
    result = run_module("check", "--layers", "3,4,1", "--examples", "8", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "CORRECT" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("command", ["demo", "check", "train", "bench"])
def test_help_has_examples(capsys, command):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert "examples:" in out and f"minnet {command}" in out


def test_top_level_help_and_version(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "commands:" in out and "examples:" in out
    status, out, _ = run(capsys, "--version")
    assert status == 0 and minnet.__version__ in out


# ----------------------------------------------------------------- baselines
@pytest.fixture
def small_problem():
    rng = np.random.default_rng(3)
    net = minnet.Network([4, 6, 5, 3], hidden="tanh", output="softmax", lambd=0.4, keep_prob=[0.8, 0.7], seed=1)
    return net, rng.standard_normal((4, 12)), rng.integers(0, 3, size=12)


def test_numpy_cost_matches_network_cost(small_problem):
    net, X, Y = small_problem
    assert baselines.numpy_cost(net, X, Y, dropout_seed=5) == pytest.approx(net.cost(X, Y, dropout_seed=5),
                                                                            rel=1e-12)


def test_numpy_loop_agrees_with_backprop(small_problem):
    net, X, Y = small_problem
    approx = baselines.numpy_loop_check(net, X, Y, dropout_seed=5)
    grad = minnet.gradients_to_vector(net.gradients(X, Y, dropout_seed=5), net.layout)
    assert minnet.difference(approx, grad) < 1e-7
    one_thread = baselines.numpy_loop_check(net, X, Y, dropout_seed=5, blas_threads=1)
    assert one_thread == pytest.approx(approx, rel=1e-6, abs=1e-9)
    part = baselines.numpy_loop_check(net, X, Y, dropout_seed=5, indices=[0, 7])
    assert np.isnan(part).sum() == net.layout.size - 2
    assert part[[0, 7]] == pytest.approx(approx[[0, 7]])


def test_baselines_refuse_random_dropout_and_other_objects(small_problem):
    net, X, Y = small_problem
    with pytest.raises(ValueError, match="dropout_seed"):
        baselines.numpy_loop_check(net, X, Y, dropout_seed=None)
    with pytest.raises(TypeError, match="minnet.Network"):
        baselines.numpy_loop_check(object(), X, Y)


def test_torch_gradcheck(small_problem):
    torch = pytest.importorskip("torch")
    net, X, Y = small_problem
    assert baselines.torch_gradcheck(net, X, Y, dropout_seed=5) is True
    threads = torch.get_num_threads()
    assert baselines.torch_gradcheck(net, X, Y, dropout_seed=5, torch_threads=1) is True
    assert torch.get_num_threads() == threads


def test_plot_target_that_is_a_folder(capsys, tmp_path):
    folder = tmp_path / "plot.png"
    folder.mkdir()
    status, _, err = run(capsys, "check", "--layers", "3,4,1", "--plot", str(folder))
    assert status == 2 and "is a folder" in err and err.count("\n") == 1


# The bench's logic on a workload small enough for any machine (and for the coverage pass).
@pytest.fixture
def tiny_workload(monkeypatch):
    monkeypatch.setitem(cli.WORKLOADS, "tiny", ([5, 4, 3], 6))
    return "tiny"


def test_bench_table_on_a_tiny_workload(capsys, tiny_workload):
    baselines = "numpy,torch" if minnet.baselines.torch_available() else "numpy"
    status, out, _ = run(capsys, "bench", "--workloads", tiny_workload, "--baselines", baselines,
                         "--methods", "incremental,full", "--repeat", "2", "--quiet")
    assert status == 0
    rows = [line.split() for line in out.splitlines() if line.startswith("tiny")]
    methods = [" ".join(r[3:5]) for r in rows]
    assert "numpy loop" in methods and "minnet incremental" in methods and "minnet full" in methods
    minnet_rows = [r for r in rows if r[3] == "minnet"]
    assert all(r[7] == "correct" and r[8].endswith("x") for r in minnet_rows)


def test_bench_estimates_and_skips_above_the_limit(capsys, tiny_workload, monkeypatch):
    monkeypatch.setattr(cli, "SLOW_ABOVE", 10)
    monkeypatch.setattr(cli, "ESTIMATE_SAMPLE", 8)
    monkeypatch.setattr(cli, "TORCH_LIMIT", 20)
    status, out, _ = run(capsys, "bench", "--workloads", tiny_workload, "--baselines", "numpy,torch",
                         "--methods", "incremental,full", "--repeat", "1", "--quiet")
    assert status == 0
    assert "(est.)" in out and "scaled up" in out
    assert "skipped (slow; add --full-baselines)" in out
    if minnet.baselines.torch_available():
        assert "runs out of memory" in out
    else:
        assert "PyTorch is not installed" in out


def test_bench_refuses_none_with_other_baselines(capsys):
    status, _, err = run(capsys, "bench", "--baselines", "none,numpy")
    assert status == 2 and err.startswith("minnet: error:")

"""The minnet command line (minnet.cli) and the reference checks it times (minnet.baselines)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minnet
from minnet import baselines, cli
from minnet.check import judge
from minnet.cli import _common, bench, demo

HAVE_MPL = _common.have_matplotlib()


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_module(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "minnet.cli", *argv], capture_output=True, text=True,
                          timeout=120, **kwargs)


# --------------------------------------------------------------------- check
def test_exit_status_maps_verdicts():
    statuses = [_common.exit_status(v) for v in ("correct", "suspicious", "bug", "inconclusive")]
    assert statuses == [0, 1, 3, 4]
    assert _common.USAGE_ERROR not in statuses and _common.INTERRUPTED not in statuses
    with pytest.raises(ValueError, match="unknown verdict"):
        _common.exit_status("fine")


class _FakeReport:
    def __init__(self, verdict):
        self.verdict, self.difference, self.worst_block = verdict, 0.5, "W2"

    def __str__(self):
        return f"fake report: {self.verdict}"

    def verdict_sentence(self):
        return f"fake difference {self.difference}, so: {self.verdict.upper()}."

    def to_dict(self):
        return {"difference": self.difference, "verdict": self.verdict, "blocks": {}}


@pytest.mark.parametrize("verdict, status", [("correct", 0), ("suspicious", 1), ("bug", 3), ("inconclusive", 4)])
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
    status, out, err = run(capsys, "train", "--dataset", "moons", "--layers", "2,8,1", "--epochs", "50",
                           "--examples", "60", "--quiet")
    assert status == 0
    assert "final cost" in out and "training accuracy" in out
    assert err == ""


def test_train_multiclass_with_split_and_checks(capsys):
    status, out, _ = run(capsys, "train", "--dataset", "spirals", "--layers", "2,16,8,3", "--epochs", "30",
                         "--batch-size", "32", "--optimizer", "momentum", "--lambd", "0.1", "--keep-prob", "0.9",
                         "--test-split", "0.25", "--check")
    assert status == 0
    assert "softmax output" in out and "[2, 16, 8, 3]" in out
    assert "gradient check before training" in out and "gradient check after training" in out
    assert "test accuracy" in out


def test_train_binary_as_softmax_without_hidden_layer(capsys):
    status, out, _ = run(capsys, "train", "--dataset", "xor", "--layers", "2,2", "--output", "softmax",
                         "--epochs", "10", "--examples", "40")
    assert status == 0
    assert "[2, 2]" in out and "no hidden layer" in out


@pytest.mark.slow_without_jit
def test_train_digits(capsys):
    pytest.importorskip("sklearn")
    status, out, _ = run(capsys, "train", "--dataset", "digits", "--layers", "64,16,10", "--epochs", "3",
                         "--batch-size", "128", "--test-split", "0.2", "--quiet")
    assert status == 0 and "test accuracy" in out


def test_train_save(capsys, tmp_path):
    if getattr(minnet.Network, "save", None) is None or getattr(minnet.Network, "load", None) is None:
        pytest.skip("Network.save / Network.load are not available")
    path = tmp_path / "model.npz"
    status, out, _ = run(capsys, "train", "--dataset", "circles", "--layers", "2,5,1", "--epochs", "5",
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
    status, _, _ = run(capsys, "train", "--dataset", "blobs", "--layers", "2,6,3", "--epochs", "20",
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
    monkeypatch.setattr(_common, "have_matplotlib", lambda: False)
    status, out, _ = run(capsys, "demo", "--quiet", "--epochs", "5", "--out", str(tmp_path))
    assert status == 0
    assert 'pip install "minnet[plot]"' in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow_without_jit
def test_demo_settings_reach_95_percent():
    """The demo's advertised result, with its own settings (takes about a second)."""
    d = demo.DEMO
    X, Y = minnet.datasets.flower(m=d["m"], seed=d["seed"])
    net = minnet.Network(d["layer_dims"], hidden=d["hidden"], output=d["output"], lambd=d["lambd"],
                         keep_prob=d["keep_prob"], seed=d["seed"])
    net.fit(X, Y, optimizer=d["optimizer"], learning_rate=d["learning_rate"], epochs=d["epochs"], seed=d["seed"])
    assert net.accuracy(X, Y) >= 0.95


# --------------------------------------------------------------------- bench
@pytest.mark.slow_without_jit
def test_bench_digits(capsys):
    status, out, _ = run(capsys, "bench", "--workloads", "digits", "--baselines", "numpy", "--repeat", "1",
                         "--full", "--quiet")
    assert status == 0
    rows = [line.split() for line in out.splitlines() if line.startswith("digits")]
    methods = [" ".join(r[3:5]) for r in rows]
    assert methods == ["numpy loop", "minnet auto", "minnet segment", "minnet incremental", "minnet full"]
    assert all(r[-1].endswith("x") for r in rows)


@pytest.mark.slow_without_jit
def test_bench_large_workload_estimates_and_skips(capsys, monkeypatch):
    monkeypatch.setattr(bench, "ESTIMATE_SAMPLE", 200)  # the real workload and limits, a tenth of the timed entries
    status, out, _ = run(capsys, "bench", "--workloads", "mnist", "--repeat", "1", "--full", "--quiet")
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
    ["train", "--plot", os.path.join(__file__, "cost.png")],  # its "folder" is a file
    ["train", "--layers", "2,20,8"],  # no output size
    ["train", "--layers", "20,8"],    # hidden sizes only: the old meaning
    ["bench", "--workloads", "imagenet"],
    ["bench", "--baselines", "none,numpy"],
    ["demo", "--out", __file__],  # a file, not a folder
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
    grad = minnet.flatten_gradients(net.gradients(X, Y, dropout_seed=5), net.layout)
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
    monkeypatch.setitem(bench.WORKLOADS, "tiny", ([5, 4, 3], 6))
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
    assert all(r[8] == "correct" and r[9].endswith("x") for r in minnet_rows)


def test_bench_estimates_and_skips_above_the_limit(capsys, tiny_workload, monkeypatch):
    monkeypatch.setattr(bench, "SLOW_ABOVE", 10)
    monkeypatch.setattr(bench, "ESTIMATE_SAMPLE", 8)
    monkeypatch.setattr(bench, "TORCH_LIMIT", 20)
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


# ------------------------------------------------- --layers: one meaning everywhere
def _no_training(monkeypatch):
    """Make any training fail loudly: a refused command must stop before it."""
    def fit(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(minnet.Network, "fit", fit)


def test_train_layers_are_all_sizes(capsys):
    status, out, _ = run(capsys, "train", "--layers", "2,20,8,1", "--epochs", "2", "--examples", "40")
    assert status == 0
    assert "network [2, 20, 8, 1]" in out


def test_train_default_layers_come_from_the_data(capsys):
    status, out, _ = run(capsys, "train", "--dataset", "spirals", "--epochs", "2", "--examples", "30")
    assert status == 0
    assert "network [2, 20, 8, 3]" in out and "softmax output" in out


def test_train_two_outputs_on_binary_data_is_softmax(capsys):
    status, out, _ = run(capsys, "train", "--dataset", "moons", "--layers", "2,6,2", "--epochs", "2",
                         "--examples", "30")
    assert status == 0
    assert "network [2, 6, 2]" in out and "softmax output" in out


@pytest.mark.parametrize("argv, words", [
    (["--layers", "3,20,1"], ["first size is the input", "2 features", "--layers 2,20,1"]),
    (["--layers", "2,20,8,4"], ["last size is the output", "--layers 2,20,8,1"]),
    (["--layers", "2,8,2", "--output", "sigmoid"], ["sigmoid output", "1 unit", "--layers 2,8,1"]),
    (["--dataset", "spirals", "--layers", "2,8,1"], ["3 classes", "--layers 2,8,3"]),
    (["--dataset", "spirals", "--layers", "2,8,3", "--output", "sigmoid"], ["needs a binary dataset"]),
])
def test_train_layers_that_do_not_fit_the_data(capsys, monkeypatch, argv, words):
    _no_training(monkeypatch)
    status, out, err = run(capsys, "train", *argv)
    assert status == 2 and out == ""
    assert err.startswith("minnet: error: ") and err.count("\n") == 1
    for word in words:
        assert word in err


# ------------------------------------------------- output paths, checked first
def test_save_makes_missing_folders(capsys, tmp_path):
    path = tmp_path / "new" / "deeper" / "model.npz"
    status, out, _ = run(capsys, "train", "--layers", "2,4,1", "--epochs", "2", "--examples", "20",
                         "--save", str(path), "--quiet")
    assert status == 0 and path.exists()
    assert minnet.Network.load(str(path)).layer_dims == [2, 4, 1]


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_plots_make_missing_folders(capsys, tmp_path):
    cost, boundary = tmp_path / "a" / "cost.png", tmp_path / "b" / "c" / "regions.png"
    status, _, _ = run(capsys, "train", "--layers", "2,4,1", "--epochs", "3", "--examples", "20",
                       "--plot", str(cost), "--boundary", str(boundary), "--quiet")
    assert status == 0
    assert cost.stat().st_size > 0 and boundary.stat().st_size > 0


def _unwritable(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(_common.tempfile, "TemporaryFile", refuse)


@pytest.mark.parametrize("option", ["--save", "--plot", "--boundary"])
@pytest.mark.parametrize("problem", ["unwritable", "under a file", "a folder", "read-only file"])
def test_bad_output_path_is_refused_before_training(capsys, monkeypatch, tmp_path, option, problem):
    if option != "--save" and not HAVE_MPL:
        pytest.skip("matplotlib is not installed")
    _no_training(monkeypatch)
    name = "out.npz" if option == "--save" else "out.png"
    if problem == "unwritable":
        _unwritable(monkeypatch)
        path, word = tmp_path / name, "cannot write into the folder"
    elif problem == "under a file":
        (tmp_path / "file").write_text("x")
        path, word = tmp_path / "file" / name, "is a file, not a folder"
    elif problem == "a folder":
        path, word = tmp_path / name, "is a folder"
        path.mkdir()
    else:
        path, word = tmp_path / name, "not writable"
        path.write_text("keep")
        monkeypatch.setattr(_common.os, "access", lambda *a, **k: False)
    status, out, err = run(capsys, "train", "--epochs", "2", option, str(path))
    assert status == 2 and out == ""
    assert err.startswith(f"minnet: error: {option}") and err.count("\n") == 1
    assert word in err


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_plot_with_a_format_matplotlib_cannot_write(capsys, monkeypatch, tmp_path):
    _no_training(monkeypatch)
    status, _, err = run(capsys, "train", "--plot", str(tmp_path / "cost.xyz"))
    assert status == 2 and "cannot write '.xyz' files" in err


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_demo_makes_its_out_folder(capsys, tmp_path):
    out = tmp_path / "plots" / "today"
    status, _, _ = run(capsys, "demo", "--quiet", "--epochs", "2", "--out", str(out))
    assert status == 0
    assert (out / "minnet_demo_check.png").stat().st_size > 0


def test_demo_refuses_an_unwritable_out_folder_before_work(capsys, monkeypatch, tmp_path):
    _no_training(monkeypatch)
    monkeypatch.setattr(_common, "have_matplotlib", lambda: True)
    _unwritable(monkeypatch)
    status, out, err = run(capsys, "demo", "--out", str(tmp_path))
    assert status == 2 and out == ""
    assert err.startswith("minnet: error: --out") and "cannot write" in err


# ------------------------------------------------- exit statuses and JSON
@pytest.mark.parametrize("verdicts, status", [
    (("correct", "correct"), 0), (("suspicious", "correct"), 1), (("correct", "bug"), 3),
    (("inconclusive", "suspicious"), 1), (("bug", "inconclusive"), 3),
])  # "worse" in the order of minnet.check.judge.SEVERITY: inconclusive < suspicious < bug
def test_demo_status_is_the_worse_check(capsys, monkeypatch, tmp_path, verdicts, status):
    reports = iter(_FakeReport(v) for v in verdicts)
    monkeypatch.setattr(minnet, "gradient_check", lambda *a, **k: next(reports))
    monkeypatch.setattr(_common, "have_matplotlib", lambda: False)
    got, _, err = run(capsys, "demo", "--quiet", "--epochs", "1", "--out", str(tmp_path))
    assert got == status
    assert (f"exit status {status}" in err) == (status != 0)


def _strict_json(text):
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("argv", [
    ["check", "--json", "--layers", "2,x,1"],
    ["check", "--json", "--sample", "2", "--mode", "directional"],
    ["check", "no_such_file.py", "--json"],
    ["check", "--json", "--frobnicate"],
])
def test_json_errors_are_json(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2
    error = _strict_json(out)
    assert error["exit_status"] == 2 and error["error"] in err
    assert err.startswith("minnet: error: ") and err.count("\n") == 1


def test_nan_and_inf_in_a_result_are_null_with_a_note(capsys, monkeypatch):
    class NonFinite(_FakeReport):
        def to_dict(self):
            return {"difference": float("nan"), "verdict": self.verdict, "cost": float("inf"),
                    "blocks": {"W1": {"difference": np.float64("-inf"), "worst": [{"approx": float("nan")}]}}}
    monkeypatch.setattr(minnet, "gradient_check", lambda *a, **k: NonFinite("inconclusive"))
    status, out, _ = run(capsys, "check", "--layers", "3,4,1", "--json")
    assert status == 4
    report = _strict_json(out)
    assert report["difference"] is None and report["cost"] is None
    assert report["blocks"]["W1"]["difference"] is None and report["blocks"]["W1"]["worst"][0]["approx"] is None
    assert report["non_finite"] == {"difference": "nan", "cost": "inf", "blocks.W1.difference": "-inf",
                                    "blocks.W1.worst[0].approx": "nan"}
    assert "null" in report["note"]


def test_finite_results_have_no_note():
    text = _common.json_dumps({"a": 1.5, "b": [np.int64(2), np.float64(0.25)], "c": None})
    assert json.loads(text) == {"a": 1.5, "b": [2, 0.25], "c": None}


def test_check_help_documents_statuses_and_the_file_convention(capsys):
    status, out, _ = run(capsys, "check", "--help")
    assert status == 0
    for line in ("0    correct", "1    suspicious", "2    usage error", "3    bug", "4    inconclusive",
                 "130  interrupted", "cost_fn(parameters)", "grads_fn(parameters)",
                 "forward_propagation_n(X, Y, parameters)", "backward_propagation_n(X, Y, cache)",
                 "minnet check my_assignment.py"):
        assert line in out


def test_worse_verdict_and_unknown_verdicts():
    assert _common.worse("correct", "suspicious") == "suspicious"
    assert _common.worse("inconclusive", "bug") == "bug" and _common.worse("suspicious", "inconclusive") == "suspicious"
    verdicts = sorted(judge.SEVERITY, key=judge.SEVERITY.get)  # the one order of verdicts, from the judge
    assert all(_common.worse(a, b) == max(a, b, key=verdicts.index) for a in verdicts for b in verdicts)
    with pytest.raises(ValueError, match="unknown verdict"):
        _common.worse("correct", "fine")

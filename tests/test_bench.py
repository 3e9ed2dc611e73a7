"""``minnet bench`` on the user's own shapes: --layers, --examples, --hidden, --threads, --json, --plot,
the optional JAX peer (minnet.baselines.jax_fd_check), rows printed as they finish and kept on Ctrl-C, and
the default plan against --full. Tiny workloads only: nothing here is timed."""
import json
import signal
import subprocess
import sys
import types

import numba
import numpy as np
import pytest

import minnet
from minnet import baselines, cli
from minnet.cli import _common, _names, bench

HAVE_MPL = _common.have_matplotlib()
TINY = ["--layers", "5,4,3", "--examples", "6", "--repeat", "1", "--quiet"]


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def strict_json(text):
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON output")
    return json.loads(text, parse_constant=refuse)


def bench_json(capsys, *argv):
    status, out, err = run(capsys, "bench", *argv, "--json")
    assert status == 0, err
    rows = strict_json(out)
    json.dumps(rows, allow_nan=False)
    return rows, err


def test_layers_examples_and_hidden_define_the_workload(capsys):
    rows, err = bench_json(capsys, *TINY, "--hidden", "tanh", "--methods", "auto,segment,incremental",
                           "--baselines", "numpy")
    assert [r["method"] for r in rows] == ["numpy loop", "minnet auto", "minnet incremental"]
    assert "segment: skipped" in err and "relu and leaky_relu" in err  # notes go to stderr under --json
    for r in rows:
        assert r["workload"] == "custom" and r["layer_dims"] == [5, 4, 3] and r["m"] == 6 and r["hidden"] == "tanh"
        assert r["parameters"] == minnet.Network([5, 4, 3]).layout.size
        assert r["verdict"] == "correct" and r["seconds"] > 0 and r["note"] is None
        assert r["entries_per_second"] == pytest.approx(r["parameters"] / r["seconds"])
        assert r["vs_numpy"] == pytest.approx(rows[0]["seconds"] / r["seconds"])
    assert rows[0]["threads"] == 1


def test_examples_and_hidden_apply_to_the_named_workloads(capsys, monkeypatch):
    monkeypatch.setitem(bench.WORKLOADS, "tiny", ([5, 4, 3], 6))
    rows, _ = bench_json(capsys, "--workloads", "tiny", "--examples", "9", "--hidden", "leaky_relu",
                         "--methods", "segment", "--baselines", "none", "--repeat", "1")
    assert [(r["workload"], r["m"], r["hidden"], r["method"]) for r in rows] == [("tiny", 9, "leaky_relu",
                                                                                  "minnet segment")]


def test_threads_sweep_gives_rows_per_thread_count(capsys):
    counts = list(range(1, min(3, numba.config.NUMBA_NUM_THREADS) + 1))
    rows, _ = bench_json(capsys, *TINY, "--threads", ",".join(map(str, counts)), "--methods", "auto,incremental",
                         "--baselines", "none")
    assert [(r["threads"], r["method"]) for r in rows] == [(t, m) for t in counts
                                                           for m in ("minnet auto", "minnet incremental")]
    assert all(r["verdict"] == "correct" for r in rows)


def test_threads_sweep_in_the_table(capsys):
    status, out, _ = run(capsys, "bench", *TINY, "--threads", "1", "--methods", "incremental", "--baselines", "numpy")
    assert status == 0
    assert out.splitlines()[2].split()[4] == "threads"
    rows = [line.split() for line in out.splitlines() if line.startswith("custom")]
    assert [r[3:6] for r in rows] == [["numpy", "loop", "1"], ["minnet", "incremental", "1"]]


def test_json_writes_inf_and_skipped_runs_as_null(capsys, monkeypatch):
    monkeypatch.setattr(bench, "_best_time", lambda run, repeat: (0.0, run()))  # infinitely fast: inf rates
    monkeypatch.setattr(bench, "SLOW_ABOVE", 10)  # the full method is skipped
    rows, _ = bench_json(capsys, *TINY, "--methods", "incremental,full", "--baselines", "none")
    incremental, full = rows
    assert incremental["seconds"] == 0.0 and incremental["entries_per_second"] is None
    assert full["method"] == "minnet full" and full["seconds"] is None and "skipped" in full["note"]


def test_estimated_rows_are_marked(capsys, monkeypatch):
    monkeypatch.setattr(bench, "SLOW_ABOVE", 10)
    monkeypatch.setattr(bench, "ESTIMATE_SAMPLE", 8)
    rows, _ = bench_json(capsys, *TINY, "--methods", "incremental", "--baselines", "numpy")
    numpy_row, minnet_row = rows
    assert numpy_row["estimated"] is True and numpy_row["verdict"] is None and numpy_row["seconds"] > 0
    assert minnet_row["estimated"] is False and minnet_row["vs_numpy"] > 0


@pytest.mark.parametrize("argv", [
    ["--threads", "100000"],
    ["--threads", "1,100000", "--json"],
    ["--threads", "0"],
    ["--threads", "1,x"],
    ["--layers", "5,x,3"],
    ["--layers", "5"],
    ["--layers", "5,4,1"],                       # softmax needs 2 outputs
    ["--layers", "5,4,3", "--workloads", "digits"],
    ["--examples", "0"],
    ["--hidden", "swish"],
    ["--baselines", "jax,none"],
    ["--methods", "fast"],
    ["--layers", "784,100000,10", "--examples", "10000000"],  # 256,000 GB: refused before any data is made
    ["--layers", "784,100000,10", "--examples", "10000000", "--json"],
])
def test_bad_input_gives_one_line_and_status_2(capsys, argv):
    status, out, err = run(capsys, "bench", *argv)
    assert status == 2
    assert err.startswith("minnet: error: ") and err.count("\n") == 1 and "Traceback" not in err
    if "--json" in argv:
        assert strict_json(out) == {"error": err[len("minnet: error: "):].strip(), "exit_status": 2}
    else:
        assert out == ""


@pytest.mark.skipif(not HAVE_MPL, reason="needs matplotlib")
def test_plot_writes_time_against_parameters(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(bench.WORKLOADS, "tiny", ([5, 4, 3], 6))
    monkeypatch.setitem(bench.WORKLOADS, "small", ([6, 8, 3], 6))
    path = tmp_path / "plots" / "bench"  # a missing folder is made; no extension gets .png
    rows, _ = bench_json(capsys, "--workloads", "tiny,small", "--methods", "incremental", "--baselines", "numpy",
                         "--repeat", "1", "--plot", str(path))
    assert len(rows) == 4  # the JSON on stdout is still only the rows
    png = tmp_path / "plots" / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not HAVE_MPL, reason="needs matplotlib")
def test_plot_bench_draws_a_line_per_method_and_thread_count():
    from minnet import plots
    rows = [{"method": "numpy loop", "parameters": p, "seconds": s, "threads": 1, "estimated": e}
            for p, s, e in ((100, 1.0, False), (1000, 10.0, True))]
    rows += [{"method": "minnet auto", "parameters": p, "seconds": s / t, "threads": t}
             for t in (1, 2) for p, s in ((100, 0.01), (1000, 0.02))]
    rows.append({"method": "minnet full", "parameters": 1000, "seconds": None, "threads": None})  # skipped
    fig = plots.plot_bench(rows)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["numpy loop", "minnet auto, 1 thread", "minnet auto, 2 threads", "estimated from a sample"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="no timings"):
        plots.plot_bench(rows[-1:])
    with pytest.raises(TypeError, match="list of dicts"):
        plots.plot_bench({"method": "x"})


def test_plot_without_matplotlib_is_refused_before_any_work(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(_common, "have_matplotlib", lambda: False)
    monkeypatch.setattr(minnet, "gradient_check", lambda *a, **k: pytest.fail("timed without a way to plot"))
    status, out, err = run(capsys, "bench", *TINY, "--plot", str(tmp_path / "b.png"))
    assert status == 2 and "needs matplotlib" in err and err.count("\n") == 1 and out == ""


# ---------------------------------------------------------------- the JAX peer
def test_jax_peer_is_skipped_when_missing(capsys, monkeypatch):
    monkeypatch.setattr(baselines, "jax_available", lambda: False)
    status, out, _ = run(capsys, "bench", *TINY, "--methods", "incremental", "--baselines", "jax")
    assert status == 0
    assert "JAX is not installed" in out and "jax vmap fd" not in out


def test_importing_minnet_does_not_import_jax_or_torch():
    code = "import sys, minnet, minnet.cli, minnet.baselines; print('jax' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]


@pytest.fixture
def small_problem():
    rng = np.random.default_rng(3)
    net = minnet.Network([4, 6, 5, 3], hidden="tanh", output="softmax", lambd=0.4, keep_prob=[0.8, 0.7], seed=1)
    return net, rng.standard_normal((4, 12)), rng.integers(0, 3, size=12)


@pytest.mark.parametrize("output, hidden", [("softmax", "tanh"), ("sigmoid", "relu"), ("linear", "leaky_relu"),
                                            ("softmax", "sigmoid")])
def test_jax_fd_check_matches_the_numpy_loop(output, hidden):
    pytest.importorskip("jax")
    rng = np.random.default_rng(4)
    dims = [4, 6, 5, 3]
    net = minnet.Network(dims, hidden=hidden, output=output, lambd=0.4, keep_prob=[0.8, 0.7], seed=1)
    X, Y = _names.synthetic_data(dims, output, 12, seed=2)
    loop = baselines.numpy_loop_check(net, X, Y, dropout_seed=5)
    approx = baselines.jax_fd_check(net, X, Y, dropout_seed=5, chunk=7)  # 13 chunks, the last one padded
    # the same differences of the same cost; only the rounding of the two sums of J may differ
    assert np.max(np.abs(approx - loop)) < 1e-7
    grad = minnet.flatten_gradients(net.gradients(X, Y, dropout_seed=5), net.layout)
    assert minnet.difference(approx, grad) < 1e-6


def test_jax_fd_check_entries_and_bad_input(small_problem):
    pytest.importorskip("jax")
    net, X, Y = small_problem
    part = baselines.jax_fd_check(net, X, Y, dropout_seed=5, indices=[0, 7, 50])
    assert np.isnan(part).sum() == net.layout.size - 3
    loop = baselines.numpy_loop_check(net, X, Y, dropout_seed=5, indices=[0, 7, 50])
    assert part[[0, 7, 50]] == pytest.approx(loop[[0, 7, 50]], abs=1e-7)
    with pytest.raises(ValueError, match="indices"):
        baselines.jax_fd_check(net, X, Y, dropout_seed=5, indices=[net.layout.size])
    with pytest.raises(ValueError, match="chunk"):
        baselines.jax_fd_check(net, X, Y, dropout_seed=5, chunk=0)
    with pytest.raises(ValueError, match="dropout_seed"):
        baselines.jax_fd_check(net, X, Y, dropout_seed=None)


def test_bench_with_the_jax_peer(capsys, monkeypatch):
    pytest.importorskip("jax")
    rows, _ = bench_json(capsys, *TINY, "--methods", "incremental", "--baselines", "numpy,jax")
    jax_row = next(r for r in rows if r["method"] == "jax vmap fd")
    assert jax_row["verdict"] == "correct" and jax_row["vs_jax"] == 1.0 and jax_row["threads"] is None
    assert all(r["vs_jax"] > 0 for r in rows)
    monkeypatch.setattr(bench, "SLOW_ABOVE", 10)
    monkeypatch.setattr(bench, "ESTIMATE_SAMPLE", 8)
    rows, _ = bench_json(capsys, *TINY, "--methods", "incremental", "--baselines", "jax")
    assert rows[0]["method"] == "jax vmap fd" and rows[0]["estimated"] is True


# ---------------------------------------------------------------- rows as they finish, Ctrl-C, the default plan
# A first row within a second, then minnet's full method over 42,210 entries: minutes, time enough to interrupt it.
SLOW = ["bench", "--layers", "200,200,10", "--examples", "64", "--methods", "incremental,full", "--baselines",
        "none", "--full-baselines", "--repeat", "1", "--quiet"]


def start_bench(*argv):
    """``python -m minnet`` in a subprocess, its stdout a pipe (not a terminal)."""
    return subprocess.Popen([sys.executable, "-m", "minnet", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def first_line(proc, starts):
    """Read stdout up to the first line that starts with ``starts``; the lines read."""
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, f"the output ended before a row: {lines!r} {proc.stderr.read()}"
        lines.append(line)
        if line.startswith(starts):
            return lines


def interrupt(proc):
    """Ctrl-C, then the rest of the output and the exit status."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_rows_stream_through_a_pipe_and_ctrl_c_keeps_them():
    proc = start_bench(*SLOW)
    try:
        lines = first_line(proc, "custom")
        assert proc.poll() is None  # the first row came while the full method still runs
        assert lines[-1].split()[3:5] == ["minnet", "incremental"]
        status, out, err = interrupt(proc)
    finally:
        proc.kill()
    assert status == _common.INTERRUPTED
    assert "minnet: interrupted: the 1 finished row(s) are kept" in err and "Traceback" not in err
    assert "minnet full" not in out  # the interrupted run is not a row


def test_ctrl_c_keeps_the_json_rows_and_their_plot(tmp_path):
    plot = tmp_path / "bench.png"
    proc = start_bench(*SLOW, "--json", *(["--plot", str(plot)] if HAVE_MPL else []))
    try:
        lines = first_line(proc, "[")
        assert proc.poll() is None
        status, out, err = interrupt(proc)
    finally:
        proc.kill()
    assert status == _common.INTERRUPTED and "Traceback" not in err
    rows = strict_json("".join(lines) + out)  # one JSON list: the finished rows
    assert [(r["method"], r["verdict"]) for r in rows] == [("minnet incremental", "correct")]
    if HAVE_MPL:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrl_c_in_process_keeps_the_finished_rows(capsys, monkeypatch):
    calls = []

    def check(*args, **kwargs):  # the warm-up's call, one row, then Ctrl-C
        calls.append(kwargs["method"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return minnet.check.api.gradient_check(*args, **kwargs)

    monkeypatch.setattr(minnet, "gradient_check", check)
    status, out, err = run(capsys, "bench", *TINY, "--methods", "incremental", "--threads", "1,2",
                           "--baselines", "numpy", "--json")
    assert status == _common.INTERRUPTED and "the 2 finished row(s) are kept" in err
    assert [r["method"] for r in strict_json(out)] == ["numpy loop", "minnet incremental"]
    status, out, _ = run(capsys, "bench", *TINY, "--methods", "incremental", "--baselines", "numpy")
    assert status == 0


def fake_timings(monkeypatch):
    """No timing at all: minnet's check and the NumPy loop return at once."""
    monkeypatch.setattr(minnet, "gradient_check", lambda *a, **k: types.SimpleNamespace(verdict="correct"))
    monkeypatch.setattr(baselines, "numpy_loop_check",
                        lambda net, X, Y, *, indices=None, blas_threads=None:
                        np.zeros(net.layout.size if indices is None else len(indices)))


def plan_of(capsys, *argv):
    """(workload, method, how) of each row: "timed", "estimated" or "skipped"."""
    rows, _ = bench_json(capsys, *argv)
    return [(r["workload"], r["method"], "skipped" if r["seconds"] is None else
             "estimated" if r["estimated"] else "timed") for r in rows]


def test_the_default_plan_is_the_documented_one(capsys, monkeypatch):
    """What ``minnet bench`` runs without options (under 30 s on 2 cores), and with --full (the sweep
    that was the default before: minnet's full method, the NumPy loop in full up to 20,000 parameters)."""
    fake_timings(monkeypatch)
    quick = ["minnet auto", "minnet segment", "minnet incremental"]
    assert plan_of(capsys) == (
        [("digits", "numpy loop", "timed")] + [("digits", m, "timed") for m in quick] +
        [("medium", "numpy loop", "estimated")] + [("medium", m, "timed") for m in quick] +
        [("mnist", "numpy loop", "estimated")] + [("mnist", m, "timed") for m in quick])
    every = quick + ["minnet full"]
    assert plan_of(capsys, "--full") == (
        [("digits", "numpy loop", "timed")] + [("digits", m, "timed") for m in every] +
        [("medium", "numpy loop", "timed")] + [("medium", m, "timed") for m in every] +
        [("mnist", "numpy loop", "estimated")] + [("mnist", m, "timed") for m in quick] +
        [("mnist", "minnet full", "skipped")])
    assert plan_of(capsys, "--workloads", "mnist", "--full-baselines", "--methods", "incremental,full") == [
        ("mnist", "numpy loop", "timed"), ("mnist", "minnet incremental", "timed"), ("mnist", "minnet full", "timed")]


def test_full_is_for_minnets_networks(capsys):
    status, out, err = run(capsys, "bench", "--user-code", "--full")
    assert status == 2 and out == "" and "--full applies to minnet's own networks" in err

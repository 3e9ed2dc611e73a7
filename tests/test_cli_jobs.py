"""`minnet check FILE --jobs N / --scheduler ADDRESS` and `minnet bench --user-code`: the user's file imported
again by its path in every worker process, their errors with their own file and line, small networks only."""
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from minnet import cli
from minnet.cli import _common, bench, user_code

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "course_backprop.py"
OWN = """
    import numpy as np
    parameters = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]]), "b1": np.array([[0.5], [-1.0]])}
    def cost_fn(p):
        return float(np.sum(p["W1"] ** 2) + np.sum(p["b1"] ** 3))
    def grads_fn(p):
        return {"dW1": 2 * p["W1"], "db1": 3 * p["b1"] ** 2}
"""
# raises only away from theta, so only where J(theta +- eps) is evaluated: in the workers under --jobs 2
RAISES_IN_A_WORKER = """
    import os
    import numpy as np
    parameters = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]])}
    def cost_fn(p):
        if p["W1"][0, 0] != 1.0:
            raise ZeroDivisionError(f"pid {os.getpid()}")
        return float(np.sum(p["W1"] ** 2))
    def grads_fn(p):
        return {"dW1": 2 * p["W1"]}
"""


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def write(folder, name, code):
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def blocks(report):
    return {name: (block["verdict"], block["difference"]) for name, block in report["blocks"].items()}


# ---------------------------------------------------------------- --jobs
@pytest.mark.parametrize("target, status", [(EXAMPLE, 0), (f"{EXAMPLE}:with_planted_bugs", 3)])
def test_jobs_gives_the_same_report_and_status(capsys, target, status):
    alone, out, _ = run(capsys, "check", target, "--json")
    serial = json.loads(out)
    got, out, err = run(capsys, "check", target, "--jobs", "2", "--json")
    parallel = json.loads(out)
    assert alone == got == status, err
    assert serial["workers"] is None and parallel["workers"] in (1, 2)
    assert parallel["verdict"] == serial["verdict"] and parallel["difference"] == serial["difference"]
    assert blocks(parallel) == blocks(serial)
    if status == 3:
        assert {name for name, (verdict, _) in blocks(parallel).items() if verdict != "correct"} == {"W2", "b1"}


def test_a_file_imported_under_another_name_reaches_the_workers(capsys, tmp_path):
    """A stem that is no identifier is imported under a made-up module name that no worker has."""
    path = tmp_path / "my-backprop.py"
    path.write_text(EXAMPLE.read_text())
    status, out, err = run(capsys, "check", f"{path}:with_planted_bugs", "--jobs", "2", "--quiet")
    assert status == 3 and "BUG" in out, err


def test_the_files_folder_and_module_are_gone_after_a_parallel_check(capsys, tmp_path):
    path = write(tmp_path, "own_jobs.py", OWN)
    loaded = dict(user_code._LOADED)
    status, out, err = run(capsys, "check", path, "--jobs", "2", "--quiet")
    assert status == 0 and "CORRECT" in out, err
    assert str(tmp_path) not in sys.path and "own_jobs" not in sys.modules
    assert user_code._LOADED == loaded


def test_a_user_error_in_a_worker_names_the_users_file_and_line(capsys, tmp_path):
    path = write(tmp_path, "raises_there.py", RAISES_IN_A_WORKER)
    status, out, err = run(capsys, "check", path, "--jobs", "2")
    assert status == _common.USER_CODE_ERROR and out == ""
    assert err.startswith("minnet: error: cost_fn raised ZeroDivisionError: pid ") and err.count("\n") == 1
    assert "(raises_there.py, line 7)" in err
    assert f"pid {os.getpid()} " not in err  # raised in a worker, not here
    assert str(tmp_path) not in sys.path


def test_an_error_outside_the_users_functions_still_names_their_line(capsys, tmp_path):
    """A cost whose float() raises: the worker's remote traceback is where the user's line is found."""
    path = write(tmp_path, "odd_cost.py", """
        import numpy as np
        parameters = {"W1": np.array([[1.0, -2.0]])}
        class Cost:
            def __init__(self, at_theta):
                self.at_theta = at_theta
            def __float__(self):
                return 1.0 if self.at_theta else 1 / 0
        def cost_fn(p):
            return Cost(p["W1"][0, 0] == 1.0)
        def grads_fn(p):
            return {"dW1": np.zeros((1, 2))}
    """)
    status, _, err = run(capsys, "check", path, "--jobs", "2")
    assert status == _common.USER_CODE_ERROR and err.count("\n") == 1
    assert "ZeroDivisionError: division by zero (odd_cost.py, line 8) in a worker process" in err
    status, _, err = run(capsys, "check", path)  # the same, in this process
    assert status == _common.USER_CODE_ERROR and "ZeroDivisionError: division by zero (odd_cost.py, line 8)" in err


def test_the_workers_prints_do_not_spoil_json(tmp_path):
    path = write(tmp_path, "chatty.py", 'print("hello from the import")\n' + textwrap.dedent(OWN).replace(
        "    return float(", '    print("hello from the cost")\n    return float('))
    result = subprocess.run([sys.executable, "-m", "minnet", "check", str(path), "--jobs", "2", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workers"] in (1, 2)
    assert "hello from the cost" in result.stderr and "hello" not in result.stdout


def test_the_cost_pickles_as_an_import_by_path(tmp_path):
    path = write(tmp_path, "by_path.py", OWN)
    undo = []
    try:
        cost_fn, _, parameters = user_code.load_backprop(str(path), undo)
        J = cost_fn(parameters)
        data = pickle.dumps(cost_fn)
        modules = set(sys.modules)
        assert pickle.loads(data)(parameters) == J and set(sys.modules) == modules  # here: no second import
    finally:
        for step in reversed(undo):
            step()
    assert str(tmp_path) not in sys.path
    (tmp_path / "cost.pickle").write_bytes(data)
    script = ("import pickle, sys; cost = pickle.loads(open(sys.argv[1], 'rb').read()); "
              "from by_path import parameters; print(repr(cost(parameters)))")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cost.pickle")], capture_output=True,
                            text=True, timeout=60, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == J


@pytest.mark.parametrize("argv, words", [
    (["--jobs", "0"], "argument --jobs: must not be 0"),
    (["--jobs", "x"], "argument --jobs: expected a whole number"),
    (["--jobs", "1.5"], "argument --jobs: expected a whole number"),
    (["--scheduler", ""], "--scheduler needs the address"),
])
def test_bad_jobs_and_scheduler_are_usage_errors(capsys, argv, words):
    status, out, err = run(capsys, "check", EXAMPLE, *argv)
    assert status == _common.USAGE_ERROR and out == ""
    assert err.startswith("minnet: error: ") and err.count("\n") == 1 and words in err


@pytest.mark.parametrize("option", [["--jobs", "2"], ["--scheduler", "tcp://127.0.0.1:9"]])
def test_jobs_and_scheduler_need_a_file(capsys, option):
    status, _, err = run(capsys, "check", "--layers", "2,3,1", *option)
    assert status == 2 and f"{option[0]} applies to a file's functions" in err


# ---------------------------------------------------------------- --scheduler
def test_an_unreachable_scheduler_is_an_error_within_10_s(capsys):
    started = time.monotonic()
    status, out, err = run(capsys, "check", EXAMPLE, "--scheduler", "tcp://127.0.0.1:9", "--json")
    assert time.monotonic() - started < 10
    assert status == _common.USAGE_ERROR
    assert json.loads(out)["exit_status"] == 2
    assert err.startswith("minnet: error: --scheduler tcp://127.0.0.1:9: no Dask scheduler") and err.count("\n") == 1


def test_scheduler_without_dask_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import dask.distributed now fails
    status, _, err = run(capsys, "check", EXAMPLE, "--scheduler", "tcp://127.0.0.1:9")
    assert status == 2 and 'pip install "minnet[dask]"' in err


@pytest.fixture(scope="module")
def scheduler():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("target, status", [(EXAMPLE, 0), (f"{EXAMPLE}:with_planted_bugs", 3)])
def test_a_dask_cluster_gives_the_same_verdict(capsys, scheduler, target, status):
    got, out, err = run(capsys, "check", target, "--scheduler", scheduler, "--json")
    assert got == status, err
    report = json.loads(out)
    assert report["workers"] in (1, 2)
    assert report["verdict"] == ("correct" if status == 0 else "bug")
    assert str(EXAMPLE.parent) not in sys.path


def test_a_user_error_on_a_dask_worker_names_the_users_line(capsys, scheduler, tmp_path):
    path = write(tmp_path, "raises_on_dask.py", RAISES_IN_A_WORKER)
    status, _, err = run(capsys, "check", path, "--scheduler", scheduler, "--jobs", "2")
    assert status == _common.USER_CODE_ERROR and err.count("\n") == 1
    assert "cost_fn raised ZeroDivisionError" in err and "(raises_on_dask.py, line 7)" in err


# ---------------------------------------------------------------- bench --user-code
USER_CODE = ["bench", "--user-code", "--layers", "64,8,4,1", "--examples", "32", "--repeat", "1", "--quiet"]


def test_bench_user_code_rows_for_each_jobs_count(capsys):
    status, out, err = run(capsys, *USER_CODE, "--jobs", "1,2", "--json")
    assert status == 0, err
    rows = json.loads(out)
    assert [(r["method"], r["jobs"]) for r in rows] == [("course loop", None), ("minnet n_jobs=1", 1),
                                                         ("minnet n_jobs=2", 2)]
    for r in rows:
        assert r["workload"] == "course" and r["layer_dims"] == [64, 8, 4, 1] and r["m"] == 32
        assert r["parameters"] == 64 * 8 + 8 + 8 * 4 + 4 + 4 + 1
        assert r["verdict"] == "correct" and r["seconds"] > 0 and not r["estimated"]
        assert r["vs_course"] == pytest.approx(rows[0]["seconds"] / r["seconds"])


def test_bench_user_code_estimates_the_loop_above_the_limit_and_prints_a_table(capsys, monkeypatch):
    monkeypatch.setattr(bench, "SLOW_ABOVE", 10)
    monkeypatch.setattr(bench, "ESTIMATE_SAMPLE", 8)
    status, out, err = run(capsys, *USER_CODE, "--jobs", "1")
    assert status == 0, err
    loop = next(line for line in out.splitlines() if line.startswith("course") and "course loop" in line)
    assert "(est.)" in loop and "vs course" in out and "minnet n_jobs=1" in out


def test_the_course_loop_is_the_courses_gradient():
    from minnet import difference, gradients_to_vector
    from minnet.cli import bench_user_code
    cost_fn, grads_fn, parameters = bench_user_code.course_problem([5, 4, 1], 7)
    approx = bench_user_code.course_loop(cost_fn, parameters)
    grad = gradients_to_vector(grads_fn(parameters)).ravel()
    assert approx.shape == grad.shape and difference(approx, grad) < 1e-7
    assert bench_user_code.course_loop(cost_fn, parameters, indices=[3, 0]) == pytest.approx(approx[[3, 0]])


@pytest.mark.parametrize("argv, words", [
    (["bench", "--jobs", "2"], "--jobs applies to --user-code"),
    (["bench", "--user-code", "--jobs", "0"], "argument --jobs: must not be 0"),
    (["bench", "--user-code", "--jobs", "1,x"], "argument --jobs: expected a whole number"),
    (["bench", "--user-code", "--jobs", "1,,2"], "argument --jobs: expected comma-separated"),
    (["bench", "--user-code", "--layers", "4,3,2"], "end --layers with 1"),
    (["bench", "--user-code", "--hidden", "tanh"], "--hidden applies to minnet's own networks"),
    (["bench", "--user-code", "--baselines", "numpy"], "--baselines applies to minnet's own networks"),
])
def test_bench_user_code_bad_arguments(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("minnet: error: ") and err.count("\n") == 1 and words in err


@pytest.mark.parametrize("command, words", [("check", ["--jobs N", "--scheduler ADDRESS", "minnet[dask]"]),
                                            ("bench", ["--user-code", "--jobs N,...", "course loop"])])
def test_help_describes_the_new_options(capsys, command, words):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    for word in words:
        assert word in out

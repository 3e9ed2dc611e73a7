"""A learner's check on worker processes: ``minnet.check_gradients(..., n_jobs=...)``.

The learner's cost travels to joblib's workers (loky processes, or a Dask
cluster under ``joblib.parallel_config(backend="dask")``). These tests hold
the promises made to the learner: the report is bitwise the same for every
n_jobs, a planted bug is found on the workers, closures and notebook code
travel, a cost that cannot travel or that fails, dies or depends on its
process says so clearly, and Ctrl-C stops everything. Cases that could hang
(a killed worker, Ctrl-C) run in their own Python process under a timeout.
"""
import functools
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid

import joblib
import numpy as np
import pytest

import minnet
from minnet import course as l_layer

try:  # works whether or not tests/ is a package
    from . import course as assignment
    from . import learner
except ImportError:
    import course as assignment
    import learner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSIGNMENT_BUGS = {"W2", "b1"}  # tests/course.py's backward_propagation_n: dW2 times 2, db1 with 4/m
L2_STRENGTH = 0.0  # read by penalized_cost; a test sets it in this process only (a worker imports the default)


# ------------------------------------------------------------------ helpers
def l_layer_problem(dims=(20, 5, 3, 1), m=16):
    """The course's L-layer network (minnet/course.py) as a learner checks it.

    Returns
    -------
    dict
        ``cost_fn``, ``grads_fn`` (closures over X and Y) and ``parameters``, for ``check_gradients``.
    """
    dims = list(dims)
    cost_fn, grads_fn = l_layer.functions(*l_layer.cat_like_data(dims, m))
    return {"cost_fn": cost_fn, "grads_fn": grads_fn, "parameters": l_layer.initialize_parameters_deep(dims)}


def assignment_pair():
    """The gradient-checking assignment's own pair, bugs included (tests/course.py).

    Returns
    -------
    dict
        ``forward``, ``backward``, ``X``, ``Y`` and ``parameters``, for ``check_gradients``.
    """
    X, Y, parameters = assignment.gradient_check_n_test_case()
    return {"forward": assignment.forward_propagation_n, "backward": assignment.backward_propagation_n,
            "X": X, "Y": Y, "parameters": parameters}


def assignment_functions(fixed=False):
    """The assignment's network written as a learner's ``cost_fn`` and ``grads_fn``.

    Parameters
    ----------
    fixed : bool
        Without the two bugs the assignment plants (``ASSIGNMENT_BUGS``).

    Returns
    -------
    cost_fn, grads_fn : callable
    parameters : dict of str -> ndarray
    """
    X, Y, parameters = assignment.gradient_check_n_test_case()

    def cost_fn(p):
        return assignment.forward_propagation_n(X, Y, p)[0]

    def grads_fn(p):
        return assignment.backward_propagation_n(X, Y, assignment.forward_propagation_n(X, Y, p)[1], fixed=fixed)

    return cost_fn, grads_fn, parameters


def learner_functions(bug):
    """The 3-layer learner network of tests/learner.py (L2 and fixed dropout masks) with ``bug`` planted.

    Returns
    -------
    cost_fn, grads_fn : callable
    parameters : dict of str -> ndarray
    """
    dims, m, keep_prob = [4, 5, 3, 1], 16, 0.8
    rng = np.random.default_rng(0)
    X = rng.standard_normal((dims[0], m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    parameters = learner.initialize_parameters(dims, seed=1)
    masks = learner.draw_masks(dims, m, keep_prob, rng)
    cost_fn, grads_fn = learner.make_functions(X, Y, masks, keep_prob, 0.7, bug)
    return cost_fn, grads_fn, parameters


def meeting(cost_fn, folder, parties, parent, patience=60.0):
    """``cost_fn``, made to wait at its first call in each worker until ``parties`` workers have called it.

    Every worker then takes part in the check (a quick cost otherwise lets the
    first worker up take every task before the other has started), so the
    report's ``workers`` has a known value. The values are ``cost_fn``'s.

    Parameters
    ----------
    cost_fn : callable
    folder : str
        An empty folder; each worker leaves a file named by its pid in it.
    parties : int
        Workers to wait for.
    parent : int
        The pid of the process that runs the check (which never waits).
    patience : float
        Seconds a worker waits at most (then it goes on, and the test sees too few workers).
    """
    def cost(parameters):
        if os.getpid() != parent:
            mark = os.path.join(folder, str(os.getpid()))
            if not os.path.exists(mark):
                open(mark, "w").close()
                deadline = time.monotonic() + patience
                while len(os.listdir(folder)) < parties and time.monotonic() < deadline:
                    time.sleep(0.01)
        return cost_fn(parameters)

    return cost


def comparable(report):
    """A report's JSON summary without what may differ between runs: its seconds and its worker count."""
    summary = report.to_dict()
    del summary["seconds"], summary["workers"]
    return summary


def assert_same_report(report, serial):
    """``report`` has the numbers and verdicts of ``serial`` (the check in this process), bitwise."""
    assert np.array_equal(report.approx, serial.approx, equal_nan=True)
    assert np.array_equal(report.grad, serial.grad)
    assert report.verdict == serial.verdict
    assert report.difference == serial.difference
    assert {k: b.verdict for k, b in report.blocks.items()} == {k: b.verdict for k, b in serial.blocks.items()}
    assert comparable(report) == comparable(serial)


def block_verdicts(report):
    return {name: block.verdict for name, block in report.blocks.items()}


def line_of(lines, first_line, text):
    """The line number, in its file, of the one line of ``lines`` (starting at ``first_line``) holding ``text``."""
    found = [first_line + k for k, line in enumerate(lines) if text in line]
    assert len(found) == 1, found
    return found[0]


def remote_text(exc):
    """The whole text of ``exc`` with its ``__cause__`` chain (where joblib puts the worker's traceback)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def env_with_minnet():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


# --------------------------------------------------- the same report for every n_jobs
@pytest.mark.parametrize("problem", [l_layer_problem, assignment_pair], ids=["course L-layer", "assignment"])
def test_the_report_is_bitwise_the_same_for_n_jobs_1_2_and_minus_1(problem):
    reports = {n: minnet.check_gradients(**problem(), n_jobs=n) for n in (1, 2, -1)}
    serial = reports[1]
    assert serial.workers is None  # n_jobs=1: the learner's cost ran in this process
    for n in (2, -1):
        assert_same_report(reports[n], serial)
        size = joblib.effective_n_jobs(n)
        if size == 1:  # -1 on a one-core machine
            assert reports[n].workers is None
        else:
            assert 1 <= reports[n].workers <= size


# ---------------------------------------------------------- planted bugs, found on workers
@pytest.mark.parametrize("case", ["assignment", "learner sign_dW1", "learner db1_4_over_m"])
def test_a_planted_bug_is_found_on_two_workers(case, tmp_path):
    if case == "assignment":
        cost_fn, grads_fn, parameters = assignment_functions()
        wrong = ASSIGNMENT_BUGS
    else:
        bug = case.split()[1]
        cost_fn, grads_fn, parameters = learner_functions(bug)
        wrong = learner.AFFECTED[bug]
    serial = minnet.check_gradients(cost_fn, grads_fn, parameters, n_jobs=1)
    both = meeting(cost_fn, str(tmp_path), 2, os.getpid())
    report = minnet.check_gradients(both, grads_fn, parameters, n_jobs=2)
    assert report.verdict == "bug"
    assert {name for name, verdict in block_verdicts(report).items() if verdict == "bug"} == wrong
    assert set(block_verdicts(report).values()) == {"bug", "correct"}
    assert report.workers == 2
    assert_same_report(report, serial)
    assert "on 2 worker processes" in str(report)


@pytest.fixture(scope="module")
def dask_cluster():
    """A local Dask cluster of two one-thread worker processes, shared by this module's Dask tests."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


@pytest.mark.parametrize("case", ["assignment", "learner dW2_doubled"])
def test_a_planted_bug_is_found_on_a_dask_cluster(case, dask_cluster):
    from dask.distributed import Client
    if case == "assignment":
        cost_fn, grads_fn, parameters = assignment_functions()
        wrong = ASSIGNMENT_BUGS
    else:
        bug = case.split()[1]
        cost_fn, grads_fn, parameters = learner_functions(bug)
        wrong = learner.AFFECTED[bug]
    serial = minnet.check_gradients(cost_fn, grads_fn, parameters, n_jobs=1)
    with Client(dask_cluster), joblib.parallel_config(backend="dask"):
        report = minnet.check_gradients(cost_fn, grads_fn, parameters)
    assert report.verdict == "bug"
    assert {name for name, verdict in block_verdicts(report).items() if verdict == "bug"} == wrong
    assert 1 <= report.workers <= 2
    assert_same_report(report, serial)


# ------------------------------------------------ closures and notebook code travel
NOTEBOOK = '''
import numpy as np


class LearnerError(Exception):
    """The learner's own exception."""


rng = np.random.default_rng(0)
X = rng.standard_normal((3, 8))
Y = (rng.random((1, 8)) < 0.5).astype(np.float64)
parameters = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal((4, 1)) * 0.1,
              "W2": rng.standard_normal((1, 4)), "b2": rng.standard_normal((1, 1)) * 0.1}
LIMIT = np.inf  # the largest W1[0, 0] this model accepts


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def forward(parameters):
    if parameters["W1"][0, 0] > LIMIT:
        raise LearnerError("W1[0, 0] is out of range")  # the notebook's raise
    A1 = np.tanh(np.dot(parameters["W1"], X) + parameters["b1"])
    A2 = sigmoid(np.dot(parameters["W2"], A1) + parameters["b2"])
    return A1, A2


def cost_fn(parameters):
    _, A2 = forward(parameters)
    return -np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))


def grads_fn(parameters):
    A1, A2 = forward(parameters)
    m = X.shape[1]
    dZ2 = A2 - Y
    dZ1 = np.dot(parameters["W2"].T, dZ2) * (1 - A1 ** 2)
    return {"dW1": np.dot(dZ1, X.T) / m, "db1": np.sum(dZ1, axis=1, keepdims=True) / m,
            "dW2": np.dot(dZ2, A1.T) / m, "db2": np.sum(dZ2, axis=1, keepdims=True) / m}
'''


def notebook_cell(folder, name="__main__", limit=None):
    """NOTEBOOK run as a notebook runs a cell: exec'd in a fresh namespace called ``name``.

    Parameters
    ----------
    folder : pathlib.Path
        Where the cell's file is written (its functions' code names it, as a notebook's cell file).
    name : str
        The namespace's ``__name__``: "__main__", or a module no worker can import.
    limit : float, optional
        LIMIT: W1[0, 0] above it raises the notebook's LearnerError.

    Returns
    -------
    dict
        The namespace: cost_fn, grads_fn, parameters, LearnerError, ...
    """
    path = folder / "notebook_cell.py"
    path.write_text(NOTEBOOK)
    namespace = {"__name__": name}
    exec(compile(NOTEBOOK, str(path), "exec"), namespace)
    if limit is not None:
        namespace["LIMIT"] = limit
    return namespace


def imported_from_its_file(folder, monkeypatch):
    """NOTEBOOK saved as a file and imported the way importlib's documentation shows ("importing a source file
    directly"): in ``sys.modules``, but from a folder that is not on ``sys.path``, so no worker can import it."""
    import importlib.util
    path = folder / "my_backprop.py"
    path.write_text(NOTEBOOK)
    name = f"my_backprop_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return vars(module)


def closure_functions(folder, monkeypatch):
    """A learner's closures over their data (a lambda and a nested def), as in a training script.

    ``folder`` and ``monkeypatch`` are unused: every entry of ``WHERE`` takes them.
    """
    cost_fn, grads_fn, parameters = assignment_functions(fixed=True)
    scale = 1.0
    return {"cost_fn": lambda p: scale * cost_fn(p), "grads_fn": grads_fn, "parameters": parameters}


WHERE = {
    "closure": closure_functions,
    "notebook cell in __main__": lambda folder, monkeypatch: notebook_cell(folder),
    "module no worker can import": lambda folder, monkeypatch: notebook_cell(folder, name="learner_notebook"),
    "module imported from its file": imported_from_its_file,
}


@pytest.mark.parametrize("where", list(WHERE))
def test_closures_and_notebook_functions_are_checked_on_workers(where, tmp_path, monkeypatch):
    names = WHERE[where](tmp_path, monkeypatch)
    functions = {key: names[key] for key in ("cost_fn", "grads_fn", "parameters")}
    if where != "closure":
        assert names["cost_fn"].__module__ not in ("tests.test_workers", __name__)
    serial = minnet.check_gradients(**functions, n_jobs=1)
    report = minnet.check_gradients(**functions, n_jobs=2)
    assert serial.verdict == "correct"
    assert report.workers >= 1
    assert_same_report(report, serial)


# -------------------------------------------------------- a cost that cannot travel
def counted_calls(cost_fn, parameters):
    """``cost_fn`` counting its calls at theta (``parameters``) and away from it (the check's work).

    Returns
    -------
    cost : callable
    calls : dict
        "at theta" and "elsewhere": the number of calls so far.
    """
    theta = {k: np.array(v, dtype=np.float64) for k, v in parameters.items()}
    calls = {"at theta": 0, "elsewhere": 0}

    @functools.wraps(cost_fn)  # the check names the learner's function
    def cost(p):
        at = all(np.array_equal(p[k], theta[k]) for k in theta)
        calls["at theta" if at else "elsewhere"] += 1
        return cost_fn(p)

    return cost, calls


@pytest.mark.parametrize("holding", ["open log file", "threading.Lock"])
def test_a_cost_that_cannot_reach_the_workers_is_a_TypeError_before_any_work(holding, tmp_path):
    cost_fn, grads_fn, parameters = assignment_functions(fixed=True)
    if holding == "open log file":
        log = open(tmp_path / "costs.log", "w")

        def learner_cost(p):  # the learner logs every J it computes
            J = cost_fn(p)
            log.write(f"{J}\n")
            return J
    else:
        lock = threading.Lock()

        def learner_cost(p):  # the learner's cost is shared with a thread
            with lock:
                return cost_fn(p)
    try:
        cost, calls = counted_calls(learner_cost, parameters)
        with pytest.raises(TypeError, match="n_jobs") as raised:
            minnet.check_gradients(cost, grads_fn, parameters, n_jobs=2)
        assert "n_jobs=1" in str(raised.value)
        assert "learner_cost" in str(raised.value)  # names the learner's function
        assert calls["elsewhere"] == 0  # no J(theta +- eps) was computed: raised before the work started
        # what the message suggests works
        cost, calls = counted_calls(learner_cost, parameters)
        assert minnet.check_gradients(cost, grads_fn, parameters, n_jobs=1).verdict == "correct"
        assert calls["elsewhere"] > 0
    finally:
        if holding == "open log file":
            log.close()


# ------------------------------------------------------ the learner's exception, from a worker
class LearnerError(Exception):
    """A learner's own exception type (defined at a module's top level)."""


def domain_cost(parameters):
    """sum of squares, defined for W1[0, 0] <= 0.5 only (a cost with a domain, at the top of a module)."""
    if parameters["W1"][0, 0] > 0.5:
        raise LearnerError("W1[0, 0] is out of range")  # the module's raise
    return float(sum(np.sum(v ** 2) for v in parameters.values()))


def domain_closure(limit):
    """``domain_cost`` as a closure over its limit."""
    def cost(parameters):
        if parameters["W1"][0, 0] > limit:
            raise LearnerError("W1[0, 0] is out of range")  # the closure's raise
        return float(sum(np.sum(v ** 2) for v in parameters.values()))

    return cost


def squares_grads(parameters):
    return {"d" + k: 2 * v for k, v in parameters.items()}


def failing_case(where, folder):
    """(cost_fn, grads_fn, parameters, the exception type, the file and line of its raise) for ``where``.

    theta's W1[0, 0] sits exactly at the cost's limit: J at theta is fine, J at
    W1[0, 0] + eps raises (in a worker, at n_jobs=2).
    """
    parameters = {"W1": np.array([[0.5, -1.0], [0.25, 2.0]]), "b1": np.array([[0.1], [-0.2]])}
    if where == "module function":
        lines, first = inspect.getsourcelines(domain_cost)
        return (domain_cost, squares_grads, parameters, LearnerError, inspect.getsourcefile(domain_cost),
                line_of(lines, first, "# the module's raise"))
    if where == "closure":
        cost = domain_closure(0.5)
        lines, first = inspect.getsourcelines(cost)
        return (cost, squares_grads, parameters, LearnerError, inspect.getsourcefile(cost),
                line_of(lines, first, "# the closure's raise"))
    names = notebook_cell(folder)
    names = notebook_cell(folder, limit=names["parameters"]["W1"][0, 0])
    return (names["cost_fn"], names["grads_fn"], names["parameters"], names["LearnerError"],
            str(folder / "notebook_cell.py"), line_of(NOTEBOOK.splitlines(), 1, "# the notebook's raise"))


@pytest.mark.parametrize("where", ["module function", "closure", "notebook cell"])
def test_the_learners_exception_in_a_worker_comes_back_as_itself_naming_its_file_and_line(where, tmp_path):
    cost_fn, grads_fn, parameters, error, file, line = failing_case(where, tmp_path)
    assert np.isfinite(cost_fn(parameters))  # J at theta is fine: only a worker's J(theta + eps) raises
    with pytest.raises(error, match="out of range") as raised:
        minnet.check_gradients(cost_fn, grads_fn, parameters, n_jobs=2)
    assert type(raised.value) is error
    text = remote_text(raised.value)
    assert f'File "{file}", line {line}' in text, text


# --------------------------------------------------------- a worker that dies; Ctrl-C
KILLED = """
import json, os, signal
import minnet
from minnet import course


def killing(cost_fn, parent):
    def cost(parameters):
        if os.getpid() != parent:  # a worker dies, as one the OS kills for its memory
            os.kill(os.getpid(), signal.SIGKILL)
        return cost_fn(parameters)
    return cost


if __name__ == "__main__":
    dims = [20, 5, 3, 1]
    parameters = course.initialize_parameters_deep(dims)
    cost_fn, grads_fn = course.functions(*course.cat_like_data(dims, 16))
    outcome = {"n": sum(v.size for v in parameters.values()), "error": None}
    try:
        minnet.check_gradients(killing(cost_fn, os.getpid()), grads_fn, parameters, n_jobs=2)
    except Exception as exc:
        outcome.update(error=type(exc).__name__, runtime_error=isinstance(exc, RuntimeError), message=str(exc))
    outcome["next"] = minnet.check_gradients(cost_fn, grads_fn, parameters, n_jobs=2).verdict
    print(json.dumps(outcome), flush=True)
"""


def test_a_killed_worker_is_a_RuntimeError_naming_the_lost_entries_not_a_hang(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    # a hang raises subprocess.TimeoutExpired: the test fails instead of blocking
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env=env_with_minnet())
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["error"] is not None and outcome["runtime_error"], outcome
    assert "lost" in outcome["message"]
    ranges = [(int(a), int(b)) for a, b in re.findall(r"(\d+)\.\.(\d+)", outcome["message"])]
    assert ranges and all(0 <= a <= b < outcome["n"] for a, b in ranges), outcome["message"]
    assert outcome["next"] == "correct"  # the next check gets fresh workers


LONG_CHECK = """
import os, sys, time
import minnet
from minnet import course


def slow(cost_fn, folder, parent):
    def cost(parameters):  # 20 ms a call in the workers: the check takes ~25 s uninterrupted
        if os.getpid() != parent:
            mark = os.path.join(folder, str(os.getpid()))
            if not os.path.exists(mark):
                open(mark, "w").close()
            time.sleep(0.02)
        return cost_fn(parameters)
    return cost


if __name__ == "__main__":
    dims = [64, 16, 8, 1]
    parameters = course.initialize_parameters_deep(dims)
    cost_fn, grads_fn = course.functions(*course.cat_like_data(dims, 32))
    print("ready", flush=True)
    minnet.check_gradients(slow(cost_fn, sys.argv[1], os.getpid()), grads_fn, parameters, n_jobs=2)
    print("finished", flush=True)
"""


def descendants(pid):
    """{(pid, start time)} of every live descendant of process ``pid`` (psutil, else Linux's /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        found = set()
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return found
        for child in children:
            try:
                found.add((child.pid, child.create_time()))
            except psutil.NoSuchProcess:
                pass
        return found
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in _listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            for kid in kids:
                start = _start_time(kid)
                if start is not None:
                    found.add((kid, start))
                    todo.append(kid)
    return found


def alive(process):
    """Whether the process (pid, start time) from ``descendants`` still runs (a zombie has ended)."""
    pid, start = process
    try:
        import psutil
    except ImportError:
        return _start_time(pid) == start
    try:
        p = psutil.Process(pid)
        return p.create_time() == start and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _start_time(pid):
    """The start time of a live, non-zombie process from /proc/<pid>/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


@pytest.mark.skipif(sys.platform != "linux", reason="SIGINT and the process tree are read the Linux way")
@pytest.mark.parametrize("to", ["process", "process group"])
def test_ctrl_c_stops_a_check_on_two_workers_at_once_and_leaves_no_process(to, tmp_path):
    """A terminal's Ctrl-C signals the whole foreground process group; ``kill -INT`` the process alone."""
    script = tmp_path / "long_check.py"
    script.write_text(LONG_CHECK)
    marks = tmp_path / "workers"
    marks.mkdir()
    # a process started from a background job inherits an ignored SIGINT: give the child the default back
    process = subprocess.Popen([sys.executable, str(script), str(marks)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env_with_minnet(), start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while len(os.listdir(marks)) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # until both workers are computing J
        assert len(os.listdir(marks)) == 2, process.stderr.read().decode() if process.poll() is not None else ""
        children = descendants(process.pid)
        assert len(children) >= 2
        time.sleep(0.5)
        sent = time.monotonic()
        if to == "process":
            process.send_signal(signal.SIGINT)
        else:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the check went on for 30 s after Ctrl-C")
        reaction = time.monotonic() - sent
        out, err = (stream.read().decode() for stream in (process.stdout, process.stderr))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    assert "finished" not in out
    assert process.returncode in (-signal.SIGINT, 128 + signal.SIGINT), err
    assert "KeyboardInterrupt" in err
    assert reaction < 2.0
    gone = time.monotonic() + 2.0
    while any(alive(child) for child in children) and time.monotonic() < gone:
        time.sleep(0.05)
    left = [child for child in children if alive(child)]
    for pid, _ in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of the check's {len(children)} child processes outlived it"


# --------------------------------------------------------------------------- bad n_jobs
@pytest.mark.parametrize("n_jobs,error", [(0, ValueError), (True, TypeError), (1.5, TypeError),
                                          ("2", TypeError)])
def test_a_bad_n_jobs_is_named_before_the_cost_runs(n_jobs, error):
    cost_fn, grads_fn, parameters = assignment_functions(fixed=True)
    cost, calls = counted_calls(cost_fn, parameters)
    with pytest.raises(error, match="n_jobs"):
        minnet.check_gradients(cost, grads_fn, parameters, n_jobs=n_jobs)
    assert calls == {"at theta": 0, "elsewhere": 0}


# ---------------------------------------------- a cost that is not the same function everywhere
def penalized_cost(parameters):
    """The assignment's cost plus L2_STRENGTH * sum(W1 ** 2): L2_STRENGTH is read from this module's globals."""
    X, Y, _ = assignment.gradient_check_n_test_case()
    return assignment.forward_propagation_n(X, Y, parameters)[0] + L2_STRENGTH * np.sum(parameters["W1"] ** 2)


def penalized_grads(parameters):
    X, Y, _ = assignment.gradient_check_n_test_case()
    grads = assignment.backward_propagation_n(X, Y, assignment.forward_propagation_n(X, Y, parameters)[1],
                                              fixed=True)
    grads["dW1"] = grads["dW1"] + 2 * L2_STRENGTH * parameters["W1"]
    return grads


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_cost_that_reads_the_global_random_state_is_not_deterministic(n_jobs):
    cost_fn, grads_fn, parameters = assignment_functions(fixed=True)

    def noisy_cost(p):  # e.g. dropout masks drawn with np.random inside the cost
        return cost_fn(p) + 1e-3 * np.random.random_sample()

    with pytest.raises(ValueError, match="not deterministic"):
        minnet.check_gradients(noisy_cost, grads_fn, parameters, n_jobs=n_jobs)


def test_a_cost_that_differs_in_a_worker_is_not_deterministic(monkeypatch):
    """The learner set the module's L2_STRENGTH in this process; a worker imports the module and sees 0."""
    _, _, parameters = assignment.gradient_check_n_test_case()
    monkeypatch.setattr(sys.modules[penalized_cost.__module__], "L2_STRENGTH", 0.7)
    assert minnet.check_gradients(penalized_cost, penalized_grads, parameters, n_jobs=1).verdict == "correct"
    with pytest.raises(ValueError, match="not deterministic") as raised:
        minnet.check_gradients(penalized_cost, penalized_grads, parameters, n_jobs=2)
    assert "worker" in str(raised.value)


def test_a_check_stopped_by_minnets_own_error_passes_no_joblib_warning_to_the_learner(monkeypatch, recwarn):
    """The learner gets minnet's error alone, as on the serial path: no advice about joblib's task iterators."""
    _, _, parameters = assignment.gradient_check_n_test_case()
    monkeypatch.setattr(sys.modules[penalized_cost.__module__], "L2_STRENGTH", 0.7)
    with pytest.raises(ValueError, match="not deterministic"):
        minnet.check_gradients(penalized_cost, penalized_grads, parameters, n_jobs=2)
    from_joblib = [f"{w.category.__name__}: {w.message}" for w in recwarn
                   if os.path.dirname(joblib.__file__) in os.path.abspath(w.filename)]
    assert not from_joblib


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("leave", ["sys.exit(0)", "sys.exit(3)", "exit()", "quit()"])
def test_an_exit_in_the_learners_cost_is_an_error_never_a_result(n_jobs, leave):
    """sys.exit(0) in the cost must not end the program as if the check had passed: a CI gate would pass on
    code never checked. It is minnet.check.UserExit, naming the function and the user's line."""
    source = ("import sys\nimport numpy as np\n\ndef cost(p):\n    if p['W1'][0, 0] != 1.0:\n"
              f"        {leave}\n    return float(np.sum(p['W1'] ** 2))\n")
    namespace = {"__name__": "__main__"}
    exec(compile(source, "learners_cost.py", "exec"), namespace)
    params = {"W1": np.array([[1.0, -2.0]])}
    with pytest.raises(minnet.check.UserExit, match=r"cost called sys.exit\(.*\) \(learners_cost.py, line 6\)"):
        minnet.check_gradients(namespace["cost"], lambda p: {"dW1": 2 * p["W1"]}, params, n_jobs=n_jobs)


def test_a_correct_smooth_check_costs_at_most_six_calls_per_entry(monkeypatch):
    """Two calls at the user's epsilon and two at each of one better-conditioned step and the step above it:
    the referee's whole ladder (24 calls per entry) only for what stays in doubt."""
    from minnet import course
    dims = [64, 20, 7, 5, 1]
    X, Y = course.cat_like_data(dims, 209)
    parameters = course.initialize_parameters_deep(dims)
    monkeypatch.setattr(course, "relu", lambda Z: (np.tanh(Z), Z))  # a smooth network, the course's code
    monkeypatch.setattr(course, "relu_backward", lambda dA, Z: dA * (1 - np.tanh(Z) ** 2))
    cost_fn, grads_fn = course.functions(X, Y)
    calls = [0]

    def counted(p):
        calls[0] += 1
        return cost_fn(p)

    report = minnet.check_gradients(counted, grads_fn, parameters)
    P = sum(a.size for a in parameters.values())
    assert report.verdict == "correct"
    assert report.referee is not None and report.referee["n_refereed"] > 0  # the first pass alone was not enough
    assert calls[0] <= 6 * P + 10, f"{calls[0]} calls for {P} entries: {calls[0] / P:.2f} per entry"

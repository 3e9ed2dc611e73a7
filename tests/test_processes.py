"""A check in the processes and threads users make: fork, spawn, Ctrl-C, late threads.

Each case runs in its own Python process, under a timeout, so that a hang
fails the test instead of stalling the suite.
"""
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import minnet
from minnet.check import judge

# whole networks checked in child processes: far too slow as plain Python (the coverage pass)
pytestmark = pytest.mark.slow_without_jit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = """
import numpy as np, minnet
rng = np.random.default_rng(0)
net = minnet.Network([5, 6, 4, 2], output="softmax", lambd=0.3)
X, labels = rng.standard_normal((5, 12)), rng.integers(0, 2, 12)
"""


def run_script(body, folder, timeout=300):
    """Run SMALL + body as a script file (spawn re-imports the main module from its file)."""
    script = folder / "script.py"
    script.write_text(textwrap.dedent(SMALL) + textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork exists on POSIX only")
def test_a_forked_child_can_check_and_train_after_the_parent_checked(tmp_path):
    result = run_script("""
    import multiprocessing as mp
    print("parent", minnet.gradient_check(net, X, labels).verdict)

    def child(queue):
        first = minnet.gradient_check(net, X, labels).verdict
        history = net.copy().fit(X, labels, epochs=2, callbacks=[minnet.GradientCheck(at=[0, 2])])
        queue.put((first, sorted((e, r.verdict) for e, r in history["checks"].items())))

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    process = ctx.Process(target=child, args=(queue,))
    process.start()
    print("child", queue.get(timeout=60))
    process.join(timeout=60)
    print("exit", process.exitcode)
    print("parent again", minnet.gradient_check(net, X, labels).verdict)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "parent correct" in result.stdout
    assert "child ('correct', [(0, 'correct'), (2, 'correct')])" in result.stdout
    assert "exit 0" in result.stdout and "parent again correct" in result.stdout


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_children_can_check(method, tmp_path):
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    result = run_script(f"""
    import multiprocessing as mp

    def verdict(args):
        import minnet
        net, X, labels = args
        return minnet.gradient_check(net, X, labels).verdict

    if __name__ == "__main__":
        minnet.gradient_check(net, X, labels)
        with mp.get_context("{method}").Pool(1) as pool:
            print("child", pool.map(verdict, [(net, X, labels)]))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "child ['correct']" in result.stdout


def test_a_thread_that_outlives_the_main_script_can_check(tmp_path):
    result = run_script("""
    import threading, time

    def late():
        time.sleep(0.5)  # the main script has ended by now; the interpreter is shutting down
        print("late", minnet.gradient_check(net, X, labels).verdict, flush=True)

    threading.Thread(target=late).start()
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "late correct" in result.stdout


def read_line(process, timeout):
    """The child's next line of output, or "" after timeout seconds (never blocks for good).

    process.stdout must be unbuffered (``bufsize=0``): a buffered reader would take the lines
    after this one into its buffer too, where ``communicate`` never sees them.
    """
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().decode().strip() if ready else ""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
@pytest.mark.parametrize("method,dims,m,wait", [("full", [784, 256, 128, 10], 256, 1.0),
                                                ("incremental", [784, 256, 128, 10], 256, 1.0),
                                                ("auto", [20000, 64, 200], 512, 0.5)])
def test_ctrl_c_stops_a_running_check_and_the_next_call_starts_at_once(method, dims, m, wait):
    # a check that runs for minutes uninterrupted (auto: the linear-segment path, about 5 s on 2 cores,
    # interrupted within the call that evaluates every entry together with J and backprop)
    script = textwrap.dedent(f"""
    import sys, time, numpy as np, minnet
    rng = np.random.default_rng(0)
    net = minnet.Network({dims}, output="softmax")
    X, labels = rng.standard_normal(({dims[0]}, {m})), rng.integers(0, {dims[-1]}, {m})
    minnet.gradient_check(net, X[:, :4], labels[:4], method="{method}", sample=1)  # compiled
    print("ready", flush=True)
    try:
        minnet.gradient_check(net, X, labels, method="{method}")
        print("finished", flush=True)
    except KeyboardInterrupt:
        stopped = time.perf_counter()
        print("interrupted", flush=True)
    start = time.perf_counter()
    small = minnet.Network([3, 4, 2], output="softmax")
    verdict = minnet.gradient_check(small, rng.standard_normal((3, 6)), rng.integers(0, 2, 6)).verdict
    print("next", verdict, round(time.perf_counter() - start, 3), flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # a process started from a background job inherits an ignored SIGINT: give the child the default back
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               bufsize=0, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert read_line(process, 300) == "ready"
        time.sleep(wait)
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        line = read_line(process, 60)
        reaction = time.perf_counter() - sent
        rest, err = (text.decode() for text in process.communicate(timeout=60))
    finally:
        process.kill()
    assert line == "interrupted", err
    assert reaction < 5.0  # the kernels leave at their next group (well under a second here)
    words = rest.split()
    assert words[:2] == ["next", "correct"], err
    assert float(words[2]) < 5.0  # not waiting for the interrupted kernel to finish


def test_nan_parameters_are_refused_before_the_check_runs():
    net = minnet.Network([3, 4, 1])
    net.theta[5] = np.nan
    X, Y = np.ones((3, 4)), np.zeros((1, 4))
    with pytest.raises(ValueError, match=r"is nan"):
        minnet.gradient_check(net, X, Y)
    params = {"W1": np.array([[1.0, np.inf]]), "b1": np.zeros((1, 1))}
    with pytest.raises(ValueError, match="W1"):
        minnet.check_gradients(lambda p: 0.0, lambda p: {"dW1": p["W1"], "db1": p["b1"]}, params)


@pytest.mark.parametrize("epsilon", [1e-17, 1e-20, 1e-300])
@pytest.mark.parametrize("method", ["full", "incremental"])
def test_an_epsilon_too_small_to_move_theta_is_inconclusive_not_a_crash(epsilon, method):
    rng = np.random.default_rng(0)
    net = minnet.Network([3, 4, 1], lambd=0.5)
    X = rng.standard_normal((3, 8))
    report = minnet.gradient_check(net, X, (X[:1] > 0).astype(float), epsilon=epsilon, method=method)
    # the referee's steps from theta's own scale can: a verdict, never a crash or a false bug, and a note
    assert report.verdict in ("correct", "inconclusive")
    if epsilon < 1e-16:  # it cannot move the weights (|w| ~ 1)
        assert "could not move" in report.note()


def test_check_gradients_names_non_string_keys():
    with pytest.raises(TypeError, match="keys must be strings"):
        minnet.check_gradients(lambda p: 0.0, lambda p: {}, {1: np.ones(2)})


def test_the_check_reads_theta_once(monkeypatch):
    from minnet.check import evaluate
    rng = np.random.default_rng(0)
    net = minnet.Network([3, 5, 2], output="softmax", lambd=0.2)
    X, labels = rng.standard_normal((3, 10)), rng.integers(0, 2, 10)
    original = net.theta.copy()
    calls = []
    real = evaluate.start

    def gradient_then_train(*args, **kwargs):  # another thread trains right after the check started
        result = real(*args, **kwargs)
        calls.append(1)
        net.theta = original + 0.1
        return result

    monkeypatch.setattr(evaluate, "start", gradient_then_train)
    report = minnet.gradient_check(net, X, labels)
    assert calls and report.verdict == "correct"
    net.theta = original
    monkeypatch.undo()
    assert np.array_equal(report.approx, minnet.gradient_check(net, X, labels).approx)

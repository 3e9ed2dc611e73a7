"""`minnet check FILE.py` / `MODULE:NAME`: a user's own backprop, through the real command line."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from minnet import cli
from minnet.cli import _common

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "course_backprop.py"


def minnet_cmd(*argv, cwd=None, timeout=120):
    """The command as a user runs it: a new interpreter, stdout and stderr apart."""
    return subprocess.run([sys.executable, "-m", "minnet", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def write(folder, name, code):
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


OWN = """
    import numpy as np
    parameters = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]]), "b1": np.array([[0.5], [-1.0]])}
    def cost_fn(p):
        return float(np.sum(p["W1"] ** 2) + np.sum(p["b1"] ** 3))
    def grads_fn(p):
        return {"dW1": 2 * p["W1"], "db1": 3 * p["b1"] ** 2 * FACTOR}
    FACTOR = 1.0
"""


# ------------------------------------------------------ the course example
def test_course_example_fixed_is_correct():
    result = minnet_cmd("check", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "CORRECT" in result.stdout and "W3" in result.stdout
    assert result.stderr == ""


def test_course_example_with_planted_bugs_is_a_bug_in_W2_and_b1():
    result = minnet_cmd("check", f"{EXAMPLE}:with_planted_bugs", "--json")
    assert result.returncode == _common.EXIT_STATUS["bug"] == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "bug"
    off = {name for name, block in report["blocks"].items() if block["verdict"] != "correct"}
    assert off == {"W2", "b1"}
    assert report["worst_block"] in off


def test_module_name_form_from_the_current_folder(tmp_path):
    (tmp_path / "course_backprop.py").write_text(EXAMPLE.read_text())
    result = minnet_cmd("check", "course_backprop:with_planted_bugs", "--quiet", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "BUG" in result.stdout and result.stdout.count("\n") == 1


# ------------------------------------------------------ the own convention
def test_own_functions_correct_and_buggy(capsys, tmp_path):
    good = write(tmp_path, "good.py", OWN)
    status, out, _ = run(capsys, "check", good, "--quiet")
    assert status == 0 and "CORRECT" in out
    bad = write(tmp_path, "bad.py", OWN.replace("FACTOR = 1.0", "FACTOR = 1.5"))
    status, out, _ = run(capsys, "check", bad, "--json")
    assert status == 3
    report = json.loads(out)
    assert report["worst_block"] == "b1" and report["blocks"]["W1"]["verdict"] == "correct"


def test_a_function_returning_the_names(capsys, tmp_path):
    path = write(tmp_path, "factory.py", """
        import numpy as np
        from types import SimpleNamespace
        def make():
            p = {"W1": np.array([[1.0, 2.0]])}
            return SimpleNamespace(cost_fn=lambda q: float(np.sum(q["W1"] ** 2)),
                                   grads_fn=lambda q: {"dW1": 2 * q["W1"]}, parameters=p)
    """)
    status, out, _ = run(capsys, "check", f"{path}:make", "--quiet")
    assert status == 0 and "CORRECT" in out


def test_check_options_apply_to_a_file(capsys, tmp_path):
    path = write(tmp_path, "good.py", OWN)
    status, out, _ = run(capsys, "check", path, "--mode", "directional", "--epsilon", "1e-6", "--seed", "3",
                         "--quiet")
    assert status == 0 and "CORRECT" in out
    status, out, _ = run(capsys, "check", path, "--sample", "1", "--json")
    assert status == 0 and json.loads(out)["n_checked"] == 2


def test_the_users_prints_do_not_spoil_json(capsys, tmp_path):
    path = write(tmp_path, "chatty.py", 'print("hello from the import")\n' + textwrap.dedent(OWN))
    status, out, err = run(capsys, "check", path, "--json")
    assert status == 0
    assert json.loads(out)["verdict"] == "correct"
    assert "hello from the import" in err


def test_the_users_main_block_does_not_run(capsys, tmp_path):
    path = write(tmp_path, "script.py", textwrap.dedent(OWN) + 'if __name__ == "__main__":\n    raise SystemExit(7)\n')
    status, _, _ = run(capsys, "check", path, "--quiet")
    assert status == 0


# ------------------------------------------------------------- bad files
BAD = [
    ("missing.py", None, "no such file"),
    ("notes.txt", "x = 1\n", "not a .py file"),
    ("syntax.py", "def f(:\n", "SyntaxError"),
    ("raises.py", "x = 1\n1 / 0\n", "ZeroDivisionError: division by zero (raises.py, line 2)"),
    ("exits.py", "import sys\nsys.exit(1)\n", "sys.exit"),
    ("imports.py", "import no_such_package_for_minnet\n", "No module named 'no_such_package_for_minnet'"),
    ("empty.py", "", "defines neither cost_fn, grads_fn and parameters nor the course's"),
    ("half.py", "def cost_fn(p):\n    return 0.0\n", "lacks grads_fn and parameters"),
    ("course_half.py", "def forward_propagation_n(X, Y, p):\n    return 0.0, None\nX = Y = None\n",
     "lacks backward_propagation_n and parameters"),
    ("not_callable.py", "cost_fn = 3\ngrads_fn = None\nparameters = {}\n", "cost_fn in"),
    ("not_dict.py", "cost_fn = grads_fn = print\nparameters = [1, 2]\n", "parameters in"),
]


RAN_AND_FAILED = {"syntax.py", "raises.py", "exits.py", "imports.py"}  # the user's code failed: its own status


@pytest.mark.parametrize("name, code, words", BAD, ids=[b[0] for b in BAD])
def test_a_file_that_cannot_be_checked(capsys, tmp_path, name, code, words):
    path = tmp_path / name
    if code is not None:
        path.write_text(code)
    status, out, err = run(capsys, "check", path)
    assert status == (_common.USER_CODE_ERROR if name in RAN_AND_FAILED else _common.USAGE_ERROR)
    assert out == ""
    assert err.startswith("minnet: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert words in err


COURSE_TAIL = """
    import numpy as np
    X = np.ones((2, 3))
    Y = np.array([[1.0, 0.0, 1.0]])
    parameters = {"W1": np.array([[0.5, -0.5]]), "b1": np.array([[0.1]])}
"""


@pytest.mark.parametrize("functions, words", [
    ("def forward_propagation_n(X, Y, p):\n    return 1.0\n"
     "def backward_propagation_n(X, Y, c):\n    return {}\n", "must return (cost, cache), got float"),
    ("def forward_propagation_n(X, Y, p):\n    return float(np.sum(p['W1'] @ X)), None\n"
     "def backward_propagation_n(X, Y, c):\n    return {'dW1': np.ones((1, 2))}\n", "returned no db1"),
    ("def forward_propagation_n(X, Y, p):\n    return float(np.sum(p['W1'] @ X)), None\n"
     "def backward_propagation_n(X, Y, c):\n    return c['dW1']\n",
     "backward_propagation_n raised TypeError"),
    ("def forward_propagation_n(X, Y, p):\n    return p['W3'], None\n"
     "def backward_propagation_n(X, Y, c):\n    return {}\n", "forward_propagation_n raised KeyError: 'W3'"),
])
def test_course_functions_that_misbehave(capsys, tmp_path, functions, words):
    path = write(tmp_path, "course.py", COURSE_TAIL)
    path.write_text(path.read_text() + functions)
    status, out, err = run(capsys, "check", path)
    assert status == (_common.USER_CODE_ERROR if " raised " in words else _common.USAGE_ERROR) and out == ""
    assert err.startswith("minnet: error: ") and err.count("\n") == 1
    assert words in err


def test_bad_targets_of_the_name_form(capsys, tmp_path):
    path = write(tmp_path, "f.py", "def boom():\n    raise RuntimeError('no')\nnumber = 3\n")
    for target, words in [(f"{path}:nothing", "defines no 'nothing'"),
                          (f"{path}:boom", "boom() raised RuntimeError: no"),
                          (f"{path}:number", "must be (or return) a dict or namespace"),
                          ("no_such_module_for_minnet:make", "no such file, and no module")]:
        status, out, err = run(capsys, "check", target)
        expected = _common.USER_CODE_ERROR if "raised" in words else _common.USAGE_ERROR
        assert status == expected and out == "" and err.count("\n") == 1, target
        assert words in err, err


def test_network_options_do_not_apply_to_a_file(capsys, tmp_path):
    path = write(tmp_path, "good.py", OWN)
    status, _, err = run(capsys, "check", path, "--layers", "2,3,1")
    assert status == 2 and "--layers applies to minnet's own networks" in err


def test_a_bad_file_in_a_real_process_with_json(tmp_path):
    path = write(tmp_path, "empty.py", "")
    result = minnet_cmd("check", path, "--json")
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert error["exit_status"] == 2 and "defines neither" in error["error"]
    assert result.stderr.startswith("minnet: error: ") and result.stderr.count("\n") == 1


# ------------------------------------------------------------- Ctrl-C
SLOW = """
    import time
    from pathlib import Path
    import numpy as np
    parameters = {"W1": np.ones((3, 3))}
    def cost_fn(p):
        Path(__file__).with_suffix(".ready").touch()
        time.sleep(30)
        return 0.0
    def grads_fn(p):
        return {"dW1": np.zeros((3, 3))}
"""


def _default_sigint():
    # A shell starts background jobs with SIGINT ignored, and Python then installs no handler:
    # give the command the terminal's default, as when a user runs it and presses Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(path, presses):
    process = subprocess.Popen([sys.executable, "-m", "minnet", "check", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        ready = path.with_suffix(".ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        for press in range(presses):
            try:
                process.send_signal(signal.SIGINT)
            except ProcessLookupError:  # it had already exited after the first
                break
            time.sleep(0.02)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


@pytest.mark.skipif(os.name != "posix", reason="SIGINT is sent with POSIX signals")
@pytest.mark.parametrize("presses", [1, 2, 5])
def test_ctrl_c_is_one_line_and_status_130(tmp_path, presses):
    path = write(tmp_path, "slow.py", SLOW)
    status, out, err = _interrupt(path, presses)
    assert status == _common.INTERRUPTED == 130
    assert err == "minnet: interrupted\n"
    assert out == ""


def test_the_users_module_is_importable_while_checked_and_removed_after(capsys, tmp_path):
    path = write(tmp_path, "with_dataclass.py", """
        import dataclasses
        import numpy as np
        @dataclasses.dataclass
        class Net:
            scale: float = 2.0
        net = Net()
        parameters = {"W1": np.array([[1.0, 2.0]])}
        def cost_fn(p):
            return float(np.sum(p["W1"] ** 2))
        def grads_fn(p):
            return {"dW1": net.scale * p["W1"]}
    """)
    status, out, _ = run(capsys, "check", path, "--quiet")
    assert status == 0 and "CORRECT" in out
    assert "with_dataclass" not in sys.modules and str(tmp_path) not in sys.path


def test_an_error_inside_a_library_names_the_users_line(capsys, tmp_path):
    path = write(tmp_path, "shapes.py", """
        import numpy as np
        parameters = {"W1": np.ones((2, 3))}
        def cost_fn(p):
            return float(np.sum(np.linalg.inv(p["W1"])))
        def grads_fn(p):
            return {"dW1": p["W1"]}
    """)
    status, _, err = run(capsys, "check", path)
    assert status == _common.USER_CODE_ERROR and err.count("\n") == 1
    assert "cost_fn raised LinAlgError" in err and "(shapes.py, line 5)" in err


def test_plot_of_a_files_check(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path, plot = write(tmp_path, "good.py", OWN), tmp_path / "plots" / "check.png"
    status, _, _ = run(capsys, "check", path, "--plot", plot, "--quiet")
    assert status == 0 and plot.stat().st_size > 0

"""Every script in examples/ runs to completion with its fast setting."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow_without_jit  # subprocesses and whole training runs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None


def run_example(name, *args, cwd):
    # this checkout's minnet, not whichever one the environment has installed
    path = os.pathsep.join(filter(None, [str(EXAMPLES.parent), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, MINNET_EXAMPLE_FAST="1", MPLBACKEND="Agg", PYTHONPATH=path)
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=180)


@pytest.mark.parametrize("name, expected", [
    ("check_your_backprop.py", "Look first at W2"),
    ("course_backprop.py", "with the planted bugs: bug, blocks off: b1, W2"),
    ("dropout_check_mode.py", "Both checks pass once the masks are fixed."),
    ("check_speed.py", "minnet incremental"),
    pytest.param("train_digits.py", "test accuracy",
                 marks=pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn is not installed")),
])
def test_example_runs(tmp_path, name, expected):
    result = run_example(name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr


def test_train_flower_example(tmp_path):
    result = run_example("train_flower.py", "--fast", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training accuracy" in result.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "flower_cost.png").stat().st_size > 0
        assert (tmp_path / "flower_boundary.png").stat().st_size > 0


def test_every_example_is_tested():
    tested = {"check_your_backprop.py", "course_backprop.py", "dropout_check_mode.py", "check_speed.py",
              "train_digits.py", "train_flower.py"}  # course_backprop.py also in tests/test_check_file.py
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested

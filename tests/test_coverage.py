"""Line coverage of minnet/ with the kernels running as plain Python.

With ``NUMBA_DISABLE_JIT=1`` coverage can see inside the kernels (``prange``
becomes ``range``). The pass runs the test suite once more in that mode,
leaving out what is too slow without compilation (marked
``slow_without_jit``), prints the coverage table and requires >= 90 %.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="this test runs the coverage pass itself")
def test_line_coverage_without_jit_is_at_least_90_percent(tmp_path, capsys):
    pytest.importorskip("coverage")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "COVERAGE_FILE": str(tmp_path / "coverage.data")}
    tests = subprocess.run([sys.executable, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-m", "not slow_without_jit", "tests"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    report = subprocess.run([sys.executable, "-m", "coverage", "report", "--fail-under=90"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    with capsys.disabled():
        print("\nline coverage of minnet/ with NUMBA_DISABLE_JIT=1:\n" + report.stdout)
    assert report.returncode == 0, report.stdout + report.stderr

"""The README's promises that a test can hold it to."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def setup_commands():
    """The fenced block right after '## Set up' (what .ci/run runs, in order)."""
    block = README.split("## Set up", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]


def test_both_setup_commands_install_the_same_way():
    """Both editable: a regular install's leftover Numba cache in site-packages/minnet would
    shadow a later editable install (the package folder without __init__.py wins)."""
    commands = setup_commands()
    assert len(commands) == 2
    assert all(re.match(r'pip install -e "\.\[\w+\]" && ', c) for c in commands), commands
    assert commands[0].endswith("minnet demo") and commands[1].endswith("python -m pytest -q")


def test_every_example_is_listed():
    for path in (ROOT / "examples").glob("*.py"):
        assert f"examples/{path.name}" in README, path.name


def test_ci_runs_the_readme_and_the_coverage_pass():
    run = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in run and ".ci/coverage" in run
    assert "--fail-under=90" in (ROOT / ".ci" / "coverage").read_text()

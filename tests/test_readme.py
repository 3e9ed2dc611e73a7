"""The README's promises that a test can hold it to, and its code, run.

Every fenced block of README.md is run, or marked as not run with a reason,
by an HTML comment right before it (docs/contributing.md lists the marks):

- ``<!-- not run: REASON -->``: the set-up commands (CI runs them), anything that takes minutes;
- ``<!-- run after: PATH -->``: a python block run after the file PATH, in its namespace;
- ``<!-- run beside: PATH as NAME -->``: PATH copied into the block's folder as NAME first.

A python block runs in a fresh process in a temporary folder; one whose
first line is ``# test_NAME.py`` is a pytest file, run with pytest. A bash
block runs one command a line, each expected to exit 0 or with the status
its comment names (``# ... exit status 3``). A block that is neither run nor
marked fails. The figures the README and docs/ quote about the package's
sizes are checked where they now live.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
TIMEOUT = 300  # seconds, one command or python block (each takes a few seconds with Numba's cache warm)

FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARK = re.compile(r"<!--[ \t]*(not run|run after|run beside)[ \t]*:[ \t]*([^\n]*?)[ \t]*-->\s*\Z")
RUNNABLE = {"python", "bash"}


def setup_commands():
    """The fenced block right after '## Set up' (what .ci/run runs, in order)."""
    block = README.split("## Set up", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]


def fenced_blocks(text):
    """[(line number, language, code, mark, argument)] of every fenced block; mark None when unmarked."""
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()]
        mark = MARK.search(before)
        found.append((before.count("\n") + 1, match.group(1), match.group(2),
                      mark.group(1) if mark else None, mark.group(2) if mark else None))
    return found


BLOCKS = fenced_blocks(README)


def problem(language, code, mark, argument):
    """Why a block can be neither run nor skipped (None: it can)."""
    if mark == "not run":
        return None if argument else "'not run' needs a reason"
    if language not in RUNNABLE:
        return f"a {language or 'plain'} block is not run: mark it <!-- not run: REASON -->"
    if mark is not None and language != "python":
        return f"<!-- {mark}: ... --> is for python blocks"
    if mark == "run after" and not (ROOT / argument).is_file():
        return f"run after: no file {argument}"
    if mark == "run beside" and not re.fullmatch(r"\S+ as [\w.]+\.py", argument or ""):
        return "run beside: PATH as NAME.py"
    if mark == "run beside" and not (ROOT / argument.split(" as ")[0]).is_file():
        return f"run beside: no file {argument.split(' as ')[0]}"
    return None


def environment(folder):
    """This checkout's minnet first; the `minnet` command of this interpreter (or a shim calling it)."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    if shutil.which("minnet", path=str(Path(sys.executable).parent)) is None:
        shim = bin_dir / "minnet"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m minnet "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PATH=path, PYTHONPATH=python_path, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")


def commands(code):
    """The commands of a bash block, continuation lines joined, with the exit status each comment names."""
    joined = re.sub(r"[ \t]*\\\n\s*", " ", code)
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            status = re.search(r"#.*\bexit status (\d+)", line)
            yield line.strip(), int(status.group(1)) if status else 0


def run_block(language, code, mark, argument, folder):
    env = environment(folder)
    if language == "bash":
        for entry in ROOT.iterdir():  # relative paths such as examples/... as from the repository's root
            if not entry.name.startswith(".") and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
        for command, expected in commands(code):
            result = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
                                    timeout=TIMEOUT, stdin=subprocess.DEVNULL)
            assert result.returncode == expected, f"{command}\n{result.stdout}\n{result.stderr}"
            assert "Traceback" not in result.stderr, f"{command}\n{result.stderr}"
        return
    if mark == "run beside":
        source, name = argument.split(" as ")
        shutil.copy(ROOT / source, folder / name)
    first = code.splitlines()[0].strip()
    test_file = re.fullmatch(r"#\s*(test_\w+\.py)", first)
    if test_file:
        (folder / test_file.group(1)).write_text(code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.group(1)]
    else:
        prelude = "" if mark != "run after" else (
            f"import runpy as _runpy\n"
            f"globals().update({{k: v for k, v in _runpy.run_path({str(ROOT / argument)!r}).items()"
            f" if not k.startswith('__')}})\n")
        (folder / "block.py").write_text(prelude + code)
        argv = [sys.executable, "block.py"]
    result = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# ------------------------------------------------------------ every block: run, or marked
@pytest.mark.parametrize("line, language, code, mark, argument", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_every_block_is_run_or_marked(line, language, code, mark, argument):
    assert problem(language, code, mark, argument) is None, f"README.md line {line}: " + \
        problem(language, code, mark, argument)


RUN = [b for b in BLOCKS if b[3] != "not run" and problem(*b[1:]) is None]


@pytest.mark.slow_without_jit  # processes running minnet's commands and checks
@pytest.mark.parametrize("line, language, code, mark, argument", RUN, ids=[f"line{b[0]}-{b[1]}" for b in RUN])
def test_the_readme_block_runs(tmp_path, line, language, code, mark, argument):
    run_block(language, code, mark, argument, tmp_path)


def test_the_marks_are_read_as_documented():
    text = ("intro\n```\noutput\n```\n<!-- not run: takes minutes -->\n```bash\nsleep 600\n```\n"
            "<!-- run after: examples/course_backprop.py -->\n\n```python\nprint(X)\n```\n"
            "```python\nprint(1)\n```\n<!-- run beside: examples/course_backprop.py as m.py -->\n```bash\nls\n```\n")
    found = fenced_blocks(text)
    assert [(b[1], b[3], b[4]) for b in found] == [
        ("", None, None), ("bash", "not run", "takes minutes"), ("python", "run after", "examples/course_backprop.py"),
        ("python", None, None), ("bash", "run beside", "examples/course_backprop.py as m.py")]
    verdicts = [problem(*b[1:]) for b in found]
    assert "not run" in verdicts[0] and verdicts[1:4] == [None, None, None] and "python blocks" in verdicts[4]
    assert list(commands("a --x \\\n   --y   # bug: exit status 3\n# a comment\n\nb\n")) == [
        ("a --x --y   # bug: exit status 3", 3), ("b", 0)]


def test_the_readme_runs_code_and_commands():
    """The learner's three lines, the pytest helper and the commands are run, not skipped."""
    run = [b for b in BLOCKS if b[3] != "not run"]
    assert {b[1] for b in run} == {"python", "bash"}
    assert any("check_gradients(forward=" in b[2] for b in run)
    assert any("assert_gradients" in b[2] and b[2].startswith("# test_") for b in run)
    for command in ("minnet demo", "minnet check", "minnet train", "minnet bench"):
        assert any(command in b[2] for b in run if b[1] == "bash"), command


# ------------------------------------------------------------ the set-up commands
def test_both_setup_commands_install_the_same_way():
    """Both editable: a regular install's leftover Numba cache in site-packages/minnet would
    shadow a later editable install (the package folder without __init__.py wins)."""
    commands = setup_commands()
    assert len(commands) == 2
    assert all(re.match(r'pip install -e "\.\[\w+\]" && ', c) for c in commands), commands
    assert commands[0].endswith("minnet demo") and commands[1].endswith("python -m pytest -q")


def test_the_setup_block_is_marked_not_run_and_docs_copy_it_exactly():
    setup = [b for b in BLOCKS if b[2].splitlines() == setup_commands()]
    assert len(setup) == 1 and setup[0][3] == "not run"
    copies = [b for b in fenced_blocks((DOCS / "setup.md").read_text()) if "pip install -e" in b[2]]
    assert [b[2].splitlines() for b in copies] == [setup_commands()]


def test_ci_runs_the_readme_and_the_coverage_pass():
    run = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in run and ".ci/coverage" in run
    assert "--fail-under=90" in (ROOT / ".ci" / "coverage").read_text()


# ------------------------------------------------------------ examples, links, size
def test_every_example_is_listed():
    for path in [*(ROOT / "examples").glob("*.py"), *(ROOT / "examples").glob("*.ipynb")]:
        assert f"examples/{path.name}" in README, path.name


def test_the_readme_stays_short():
    assert len(README.encode()) < 8192


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", ["README.md"] + [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md"))])
def test_links_between_the_pages_resolve(page):
    text = (ROOT / page).read_text()
    prose = FENCE.sub("", text)
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = ((ROOT / page).parent / path).resolve() if path else ROOT / page
        assert file.exists(), f"{page}: {target}"
        if anchor:
            headings = [slug(h) for h in re.findall(r"^#+\s+(.*)$", FENCE.sub("", file.read_text()), re.M)]
            assert anchor in headings, f"{page}: {target} (headings: {headings})"


def test_every_docs_page_is_linked_from_the_readme():
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in README, page.name


# ------------------------------------------------------------ figures quoted, where they now live
def parameters(layers):
    return sum(n * (m + 1) for m, n in zip(layers, layers[1:]))


@pytest.mark.parametrize("page, layers, quoted", [
    ("README.md", [784, 128, 64, 10], "109,386"),
    ("docs/benchmarks.md", [784, 128, 64, 10], "109,386"),
    ("docs/benchmarks.md", [64, 32, 16, 10], "2,778"),
    ("docs/benchmarks.md", [256, 64, 32, 10], "18,858"),
    ("docs/benchmarks.md", [784, 1024, 1024, 10], "1,863,690"),
    ("docs/benchmarks.md", [1024, 20, 7, 5, 1], "20,693"),
    ("docs/cli.md", [2, 20, 3, 1], "127"),
    ("docs/cli.md", [4, 5, 3, 1], "47"),
    ("docs/python-api.md", [4, 5, 3, 1], "47"),
    ("docs/python-api.md", [2, 32, 16, 1], "641"),
    ("docs/how-the-check-works.md", [2, 32, 16, 1], "641"),
])
def test_the_parameter_counts_quoted_are_the_networks(page, layers, quoted):
    assert quoted in (ROOT / page).read_text()
    assert f"{parameters(layers):,}" == quoted


def test_the_course_loop_figure_quoted_is_the_course_loop_s():
    """how-the-check-works.md: the course's fixed assignment prints 1.19e-7 in the course's own loop."""
    from . import course
    assert "prints 1.19e-7 in the course's own loop" in (DOCS / "how-the-check-works.md").read_text()
    X, Y, parameters_ = course.gradient_check_n_test_case()
    _, cache = course.forward_propagation_n(X, Y, parameters_)
    grads = course.backward_propagation_n(X, Y, cache, fixed=True)
    assert f"{course.gradient_check_n(parameters_, grads, X, Y):.2e}" == "1.19e-07"


@pytest.mark.slow_without_jit  # a gradient check of 641 entries and its kernels
def test_the_sample_report_in_the_docs_is_what_minnet_prints():
    """how-the-check-works.md quotes the report of the flower network: the lines it quotes are the report's
    lines, its time aside, and so are every block's row."""
    import minnet
    from minnet import datasets
    text = (DOCS / "how-the-check-works.md").read_text()
    sample = next(b[2] for b in fenced_blocks(text) if b[2].startswith("Gradient check of 641"))
    X, Y = datasets.flower()
    net = minnet.Network([2, 32, 16, 1], hidden="tanh", output="sigmoid", lambd=0.01)
    report = str(minnet.gradient_check(net, X, Y))
    untimed = lambda lines: [re.sub(r", [\d.e+-]+ s\)$", ", TIME s)", line) for line in lines]
    printed = untimed(report.splitlines())
    quoted = [line for line in untimed(sample.splitlines()) if line.strip()]
    assert [line for line in quoted if line not in printed] == []
    rows = [line for line in printed if line.split()[:1] in (["W1"], ["b1"], ["W2"], ["b2"], ["W3"], ["b3"])]
    assert len(rows) == 6 and all(row in quoted for row in rows)

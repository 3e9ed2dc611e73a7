"""The command line against hostile input: the user's code exiting or raising, minnet's own failures, outputs
that cannot be written, targets that are no regular .py file, a user's folder full of look-alike modules,
and typos. Every error is one ``minnet: error:`` line (a traceback too for minnet's own), never a verdict's
status, and under --json stdout holds exactly one JSON document."""
import errno
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import minnet
from minnet import checkpoint, cli
from minnet.cli import _common, _names

HAVE_MPL = _common.have_matplotlib()
needs_matplotlib = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
VERDICTS = set(_common.EXIT_STATUS.values())
USER = _common.USER_CODE_ERROR
GOOD = """
    import numpy as np
    parameters = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]])}
    def cost_fn(p):
        return float(np.sum(p["W1"] ** 2))
    def grads_fn(p):
        return {"dW1": 2 * p["W1"]}
"""


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def minnet_cmd(*argv, cwd=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "minnet", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, **kwargs)


def write(folder, name, code):
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def with_cost_line(folder, name, line):
    """GOOD with ``line`` run first in cost_fn (at line 5 of the file)."""
    code = textwrap.dedent(GOOD).replace("def cost_fn(p):\n", f"def cost_fn(p):\n    {line}\n")
    return write(folder, name, code)


def one_error_line(err, status):
    assert status not in VERDICTS
    assert err.startswith("minnet: error: ") and err.count("\n") == 1 and "Traceback" not in err, err


def never_called(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the work ran before the options were checked")
    monkeypatch.setattr(minnet, "gradient_check", fail)
    monkeypatch.setattr(minnet, "check_gradients", fail)
    monkeypatch.setattr(minnet.Network, "fit", fail)


# ------------------------------------------------------------ the user's code exits or raises
@pytest.mark.parametrize("line, words", [
    ("import sys; sys.exit(0)", "cost_fn exited with 0 (exits.py, line 5: import sys; sys.exit(0))"),
    ("raise SystemExit(3)", "cost_fn exited with 3 (exits.py, line 5: raise SystemExit(3))"),
    ("exit()", "cost_fn exited (exits.py, line 5: exit())"),
    ("quit()", "cost_fn exited (exits.py, line 5: quit())"),
    ("raise KeyError('W9')", "cost_fn raised KeyError: 'W9' (exits.py, line 5)"),
    ("raise MemoryError()", "cost_fn raised MemoryError (exits.py, line 5)"),
], ids=["sys.exit(0)", "SystemExit(3)", "exit()", "quit()", "exception", "MemoryError"])
def test_the_users_exit_or_exception_is_a_user_code_error(capsys, tmp_path, line, words):
    path = with_cost_line(tmp_path, "exits.py", line)
    status, out, err = run(capsys, "check", path)
    assert status == USER == 5 and out == ""
    one_error_line(err, status)
    assert words in err
    status, out, err = run(capsys, "check", path, "--json")
    assert status == USER and json.loads(out) == {"error": err[len("minnet: error: "):].strip(), "exit_status": USER}


def test_exits_at_import_in_name_and_outside_the_guards(capsys, tmp_path):
    at_import = write(tmp_path, "at_import.py", "import sys\nsys.exit(0)\n")
    factory = write(tmp_path, "factory.py", "def make():\n    quit()\n")
    in_float = write(tmp_path, "in_float.py", textwrap.dedent(GOOD) + textwrap.dedent("""
        class Cost:
            def __float__(self):
                raise SystemExit(0)
        def cost_fn(p):
            return Cost()
    """))
    for target, words in [(at_import, "exited with 0 (at_import.py, line 2: sys.exit(0)) while being imported"),
                          (f"{factory}:make", "make() exited (factory.py, line 2: quit())"),
                          (in_float, "called sys.exit(0) (in_float.py, line 11)")]:
        status, out, err = run(capsys, "check", target)
        assert status == USER and out == "", target
        one_error_line(err, status)
        assert words in err


def test_an_exit_in_a_worker_process_is_a_user_code_error(capsys, tmp_path):
    """loky sends a worker's SystemExit back to the parent, where joblib raises it again: without minnet's
    guard, minnet would exit with the user's status. It is a user-code error naming their line."""
    path = write(tmp_path, "exits_there.py", """
        import sys
        import numpy as np
        parameters = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]])}
        def cost_fn(p):
            if p["W1"][0, 0] != 1.0:  # away from theta: only in the workers under --jobs 2
                sys.exit(0)
            return float(np.sum(p["W1"] ** 2))
        def grads_fn(p):
            return {"dW1": 2 * p["W1"]}
    """)
    status, out, err = run(capsys, "check", path, "--jobs", "2", "--json")
    assert status == USER
    assert json.loads(out)["exit_status"] == USER
    one_error_line(err, status)
    assert "cost_fn exited with 0 (exits_there.py, line 7: sys.exit(0))" in err


def test_sys_exit_0_in_a_real_process_does_not_pass(tmp_path):
    path = with_cost_line(tmp_path, "exits.py", "import sys; sys.exit(0)")
    result = minnet_cmd("check", path)
    assert result.returncode == USER, result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert "cost_fn exited with 0 (exits.py, line 5" in result.stderr


# ------------------------------------------------------------ minnet's own failures and memory
def test_an_internal_failure_has_its_own_status_and_a_traceback(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a planted bug")
    monkeypatch.setattr(minnet, "gradient_check", broken)
    status, out, err = run(capsys, "check", "--layers", "3,4,1")
    assert status == _common.INTERNAL_ERROR == 70 and out == ""
    first, *rest = err.splitlines()
    assert first.startswith("minnet: error: minnet failed (RuntimeError: a planted bug)")
    assert "Traceback (most recent call last)" in err and "in broken" in err
    assert "this is a bug in minnet: please report it to minnet's maintainers with the traceback" in rest[-1]
    status, out, err = run(capsys, "check", "--layers", "3,4,1", "--json")
    error = json.loads(out)
    assert status == error["exit_status"] == 70 and "RuntimeError: a planted bug" in error["traceback"]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_too_many_examples_is_a_clear_usage_error(capsys, json_flag):
    status, out, err = run(capsys, "check", "--layers", "2,3,1", "--examples", 10**15, *json_flag)
    assert status == _common.USAGE_ERROR
    one_error_line(err, status)
    assert "not enough memory" in err and "--examples" in err
    assert (json.loads(out)["exit_status"] == 2) if json_flag else out == ""


def test_a_dataset_too_large_for_memory_is_refused_before_it_is_made(capsys):
    status, out, err = run(capsys, "train", "--dataset", "moons", "--examples", 10**12)
    assert status == _common.USAGE_ERROR
    one_error_line(err, status)
    assert "not enough memory" in err and "--examples" in err and out == ""


def test_diverging_training_exits_with_its_own_status(capsys):
    """--lr 100 on flower used to end at chance accuracy with exit 0; now it stops, says why, suggests a smaller
    rate and exits with a status that is no verdict's and no usage error's."""
    status, out, err = run(capsys, "train", "--lr", "100", "--epochs", "200", "--quiet")
    assert status == _common.TRAINING_DIVERGED
    assert status not in VERDICTS and status != _common.USAGE_ERROR
    one_error_line(err, status)
    assert "diverged" in err and "smaller learning_rate" in err


def test_statuses_are_distinct_and_documented(capsys):
    assert len(set(_common.ERROR_STATUSES) | VERDICTS) == len(_common.ERROR_STATUSES) + len(VERDICTS)
    _, out, _ = run(capsys, "check", "--help")
    for status in sorted(VERDICTS) + list(_common.ERROR_STATUSES):
        assert f"\n  {status:<5}" in out
    for command in ("demo", "train", ""):
        _, out, _ = run(capsys, *[command, "--help"] if command else ["--help"])
        assert f"{_common.INTERNAL_ERROR} a bug in minnet" in out and f"{_common.USAGE_ERROR} usage error" in out


# ------------------------------------------------------------ outputs: checked first, failures named
@needs_matplotlib
def test_a_format_whose_writer_is_unavailable_is_refused_before_the_check(capsys, monkeypatch, tmp_path):
    never_called(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path))  # no LaTeX to be found: pgf cannot measure text
    _common._cannot_save.cache_clear()
    try:
        status, out, err = run(capsys, "check", "--layers", "3,4,1", "--plot", tmp_path / "x.pgf")
    finally:
        _common._cannot_save.cache_clear()
    assert status == 2 and out == ""
    one_error_line(err, status)
    assert "--plot: matplotlib cannot write '.pgf' files here" in err and ".png" in err and ".pdf" in err
    assert ".pgf," not in err and not (tmp_path / "x.pgf").exists()


@pytest.mark.parametrize("argv, words", [
    (["check", "--layers", "3,4,1", "--plot", ""], "--plot needs a file name"),
    (["train", "--save", ""], "--save needs a file name"),
    (["train", "--plot", ""], "--plot needs a file name"),
    (["train", "--boundary", ""], "--boundary needs a file name"),
    (["demo", "--out", ""], "--out needs a folder"),
    (["demo", "--out", "  "], "--out needs a folder"),
])
def test_empty_paths_are_refused(capsys, monkeypatch, argv, words):
    if "--plot" in argv or "--boundary" in argv:
        pytest.importorskip("matplotlib")
    never_called(monkeypatch)
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    one_error_line(err, status)
    assert words in err


@pytest.mark.parametrize("option, name", [("--save", "model.npz"), ("--plot", "plot.png")])
def test_a_folder_given_for_a_file_is_refused_before_work(capsys, monkeypatch, tmp_path, option, name):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    never_called(monkeypatch)
    missing = f"{tmp_path / 'new'}{os.sep}"  # a folder by its trailing separator, not there yet
    status, _, err = run(capsys, "train", option, missing)
    assert status == 2
    one_error_line(err, status)
    assert "is a folder; give a file name" in err and name in err
    assert not (tmp_path / "new").exists()


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@needs_matplotlib
def test_a_full_disk_under_json_gives_one_json_error_naming_the_path(capsys, monkeypatch, tmp_path):
    from matplotlib.figure import Figure
    savefig = Figure.savefig

    def onto_a_full_disk(figure, target, *args, **kwargs):  # a file fails; memory (BytesIO) does not
        if isinstance(target, (str, os.PathLike)):
            _full_disk()
        return savefig(figure, target, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", onto_a_full_disk)
    plot = tmp_path / "check.png"
    status, out, err = run(capsys, "check", "--layers", "3,4,1", "--examples", "8", "--plot", plot, "--json")
    assert status == 2
    error = json.loads(out)  # exactly one document: the error, not the report before it
    assert set(error) == {"error", "exit_status"} and error["exit_status"] == 2
    one_error_line(err, status)
    assert f"--plot: could not write {str(plot)!r}: {os.strerror(errno.ENOSPC)}" in err


def test_a_full_disk_on_save_names_the_path(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint.os, "replace", _full_disk)
    path = tmp_path / "model.npz"
    status, _, err = run(capsys, "train", "--layers", "2,3,1", "--examples", "20", "--epochs", "1", "--quiet",
                         "--save", path)
    assert status == 2
    one_error_line(err, status)
    assert "--save" in err and str(path) in err and os.strerror(errno.ENOSPC) in err
    assert not path.exists()


# ------------------------------------------------------------ targets of minnet check FILE
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_and_a_link_to_dev_zero_are_refused_without_reading(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    os.symlink(os.devnull.replace("null", "zero"), tmp_path / "zero.py")
    script = textwrap.dedent(f"""
        import json, resource
        from minnet import cli
        limit = 4 * 2**30  # a read of /dev/zero would stop here, not take the machine's memory
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        print(json.dumps([cli.main(["check", {str(tmp_path / 'pipe.py')!r}]),
                          cli.main(["check", {str(tmp_path / 'zero.py')!r}])]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert json.loads(result.stdout) == [2, 2], result.stderr
    lines = result.stderr.splitlines()
    assert lines == [f"minnet: error: {tmp_path / 'pipe.py'} is not a regular file (a FIFO (named pipe)); "
                     f"give a .py file",
                     f"minnet: error: {tmp_path / 'zero.py'} is not a regular file (a character device); "
                     f"give a .py file"]


def test_a_file_above_the_size_limit_is_refused(capsys, monkeypatch, tmp_path):
    from minnet.cli import user_code
    path = write(tmp_path, "big.py", GOOD)
    monkeypatch.setattr(user_code, "MAX_SOURCE_BYTES", 10)
    status, _, err = run(capsys, "check", path)
    assert status == 2 and "more than the" in err
    one_error_line(err, status)


def test_a_folder_without_its_slash_and_other_files(capsys, tmp_path):
    folder = tmp_path / "assignment"
    folder.mkdir()
    write(folder, "backprop.py", GOOD)
    (tmp_path / "notes.txt").write_text("x = 1\n")
    (tmp_path / "course.ipynb").write_text("{}")
    for target, words, unwanted in [
            (folder, f"{folder} is a folder; give one of its .py files, like {folder / 'backprop.py'}", "defines"),
            (tmp_path / "notes.txt", "notes.txt is a .txt file, not a .py file", "notebook"),
            (tmp_path / "course.ipynb", "a notebook: export its code as a .py file", "")]:
        status, out, err = run(capsys, "check", target)
        assert status == 2 and out == ""
        one_error_line(err, status)
        assert words in err and (not unwanted or unwanted not in err), err
    relative = minnet_cmd("check", "assignment", cwd=tmp_path)  # the name alone, as a newcomer types it
    assert relative.returncode == 2 and "assignment is a folder" in relative.stderr


def _drain(fd, sink):
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        sink.append(chunk)


@pytest.mark.skipif(os.name != "posix", reason="a terminal for the progress bar needs a POSIX pty")
def test_look_alike_modules_beside_the_file_do_not_replace_minnets_imports(tmp_path):
    """A tqdm.py and a numpy.py beside the target, both raising on import, while the progress bar is on (stderr
    a terminal, a check long enough): minnet's tqdm and the user's own numpy are the real ones."""
    import fcntl
    import pty
    import struct
    import termios
    pytest.importorskip("tqdm")
    for name in ("tqdm", "numpy", "joblib"):
        (tmp_path / f"{name}.py").write_text(f"raise RuntimeError('the fake {name}.py was imported')\n")
    path = write(tmp_path, "long.py", """
        import numpy as np
        parameters = {"W1": np.linspace(-1.0, 1.0, 1200).reshape(40, 30)}
        def cost_fn(p):
            return float(np.sum(p["W1"] ** 2))
        def grads_fn(p):
            return {"dW1": 2 * p["W1"]}
    """)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty is 0 columns wide
    chunks = []
    reader = threading.Thread(target=_drain, args=(master, chunks), daemon=True)
    reader.start()
    try:
        result = subprocess.run([sys.executable, "-m", "minnet", "check", str(path)], stdout=subprocess.PIPE,
                                stderr=slave, text=True, timeout=120)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert result.returncode == 0, terminal
    assert "CORRECT" in result.stdout and "fake" not in terminal
    assert "gradient check" in terminal  # the bar was drawn: tqdm was imported, the real one


def test_under_json_stdout_holds_only_the_json(tmp_path):
    path = write(tmp_path, "noisy.py", """
        import ctypes, os
        import numpy as np
        os.write(1, b"garbage at import\\n")
        libc = ctypes.CDLL(None)
        parameters = {"W1": np.array([[1.0, -2.0], [0.5, 3.0]])}
        def cost_fn(p):
            os.write(1, b"garbage from cost_fn\\n")
            libc.printf(b"printf from C\\n")
            print("print from Python")
            return float(np.sum(p["W1"] ** 2))
        def grads_fn(p):
            os.system("echo from a child process")
            return {"dW1": 2 * p["W1"]}
    """)
    result = minnet_cmd("check", path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one document, nothing else
    assert report["verdict"] == "correct"
    for text in ("garbage at import", "garbage from cost_fn", "printf from C", "print from Python",
                 "from a child process"):
        assert text in result.stderr


# ------------------------------------------------------------ typos, --json spelled otherwise, messages
@pytest.mark.parametrize("argv, hint", [
    (["chek"], "(did you mean check?)"),
    (["check", "--jsno"], "(did you mean --json?)"),
    (["check", "--js"], "(did you mean --json?)"),
    (["train", "--dataset", "moon"], "(did you mean moons?)"),
    (["train", "--epoch", "3"], "(did you mean --epochs?)"),
])
def test_typos_get_a_did_you_mean(capsys, argv, hint):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    one_error_line(err, status)
    assert hint in err


def test_no_option_is_taken_by_an_abbreviation(capsys):
    status, out, err = run(capsys, "check", "--layers", "3,4,1", "--js")  # once a silent --json
    assert status == 2 and out == "" and "unrecognized arguments: --js" in err
    status, out, err = run(capsys, "check", "--json", "--lay", "3,4,1")
    assert status == 2 and json.loads(out)["exit_status"] == 2


def test_too_few_output_units_in_command_line_terms(capsys):
    classes, single = _names.CLASS_OUTPUT, _names.BINARY_OUTPUT
    status, _, err = run(capsys, "check", "--layers", "2,3,1", "--output", classes)
    assert status == 2
    one_error_line(err, status)
    assert f"--output {classes} needs at least 2 output units" in err and f"--output {single}" in err
    assert "layer_dims" not in err and "output=" not in err


def test_train_check_names_the_examples_it_used(capsys):
    status, out, _ = run(capsys, "train", "--layers", "2,4,1", "--examples", "40", "--test-split", "0.5",
                         "--epochs", "2", "--check", "--quiet")
    assert status == 0
    assert "gradient check before training (20 examples)" in out
    assert "gradient check after training (20 examples)" in out


@needs_matplotlib
def test_the_boundary_plot_draws_held_out_points_hollow(tmp_path):
    from minnet import datasets, plots
    X, Y = datasets.moons(m=40, seed=0)
    net = minnet.Network([2, 4, 1], seed=0)
    test = np.arange(30, 40)
    fig = plots.plot_decision_boundary(net, X, Y, test=test, path=tmp_path / "b.png", resolution=20)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any("held out" in label for label in labels) and any("training" in label for label in labels)
    points = {label: collection for collection in ax.collections
              if (label := collection.get_label()) in labels}
    held = [c for label, c in points.items() if "held out" in label]
    assert sum(len(c.get_offsets()) for c in held) == 10
    assert all(len(c.get_facecolors()) == 0 for c in held)  # hollow
    assert "held-out points" in ax.get_title()
    fig = plots.plot_decision_boundary(net, X, Y, resolution=20)  # without test: as before
    assert not any("held out" in t.get_text() for t in fig.axes[0].get_legend().get_texts())

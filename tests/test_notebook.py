"""examples/check_your_backprop.ipynb runs from top to bottom in a real Jupyter kernel of this environment.

The kernel is the "python3" kernelspec that the ipykernel package installs
into this environment (sys.prefix/share/jupyter): nothing is installed into
the user's home (no ``python -m ipykernel install --user``; the kernel's
connection file and IPython's profile go to a temporary folder too). Where the
"python3" found first would start another interpreter (one in the user's
home, say), the test writes a kernelspec for this interpreter into a
temporary folder and uses that one.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
if importlib.util.find_spec("ipykernel") is None:  # found, not imported: importing IPython makes ~/.ipython
    pytest.skip("ipykernel is not installed", allow_module_level=True)
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (installed with nbclient)
from jupyter_client.manager import KernelManager  # noqa: E402

pytestmark = pytest.mark.slow_without_jit  # a kernel process: coverage cannot see into it

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "check_your_backprop.ipynb"
THIS_PYTHON = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2], sys.executable}


def kernel_manager(folder):
    """A KernelManager for "python3" that starts this interpreter (jupyter_client puts sys.executable in
    for a bare "python"); a kernelspec of its own in ``folder`` when the one found would start another."""
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        if spec.argv and spec.argv[0] in THIS_PYTHON:
            return KernelManager(kernel_name="python3")
    except Exception:  # no "python3" kernelspec at all
        pass
    from ipykernel.kernelspec import write_kernel_spec
    write_kernel_spec(str(folder / "python3"), overrides={
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]})
    return KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)]))


def outputs(cell, kind):
    return "".join(
        "".join(o.get("data", {}).get(kind, "")) for o in cell.get("outputs", ()) if "data" in o)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # where the kernel is: this environment's interpreter, this checkout's minnet
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, sys, minnet\nprint(json.dumps({'prefix': sys.prefix, 'minnet': minnet.__file__}))"))
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with pytest.MonkeyPatch.context() as patch:  # the connection file and IPython's profile: not in the home
        patch.setenv("JUPYTER_RUNTIME_DIR", str(folder / "runtime"))
        patch.setenv("IPYTHONDIR", str(folder / "ipython"))  # jupyter_client imports IPython here too
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", km=kernel_manager(folder),
                                         resources={"metadata": {"path": str(folder)}})
        client.execute(env=dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg"))  # a cell's error raises here
    return nb


def test_the_notebook_is_stored_without_outputs_and_runs_in_this_environment(executed):
    stored = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(stored)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in stored.cells if c.cell_type == "code")
    assert stored.metadata.kernelspec.name == "python3"
    where = json.loads(executed.cells[-1].outputs[0]["text"])
    assert Path(where["prefix"]).resolve() == Path(sys.prefix).resolve()
    assert Path(where["minnet"]).resolve() == ROOT / "minnet" / "__init__.py"


def test_no_cell_errors(executed):
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert all(o.output_type != "error" for o in cell.outputs), cell.source
            assert cell.execution_count is not None


def test_the_report_shows_the_bug_then_the_fix(executed):
    reports = {tag: cell for cell in executed.cells for tag in cell.metadata.get("tags", ())
               if tag.startswith("report-")}
    assert set(reports) == {"report-with-bugs", "report-fixed"}
    assert list(reports) == ["report-with-bugs", "report-fixed"]  # in this order
    buggy, fixed = reports["report-with-bugs"], reports["report-fixed"]
    # the cell's result is the report, displayed through its _repr_html_
    for cell in (buggy, fixed):
        assert "<table" in outputs(cell, "text/html")
    html = outputs(buggy, "text/html")
    assert "bug" in html and "W2" in html and "b1" in html
    assert "verdict='bug'" in outputs(buggy, "text/plain")
    assert "correct" in outputs(fixed, "text/html")
    assert "verdict='correct'" in outputs(fixed, "text/plain")
    last = [c for c in executed.cells if c.cell_type == "code"][-2]  # assert_gradients passes
    assert outputs(last, "text/plain") == "'correct'"

"""The package's layout, read from its syntax trees: no import cycles, one place for each thing, small parts.

These fail the day a cycle comes back (a function-level import counts too),
a module outside the registries names an activation or an output, a second
severity order appears, a module grows past 600 lines, or a third function
past 80.
"""
import ast
import pathlib

import pytest

from minnet.ops.activations import ACTIVATIONS
from minnet.ops.losses import OUTPUTS

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "minnet"
REGISTRIES = {"minnet.ops.activations", "minnet.ops.losses"}
NAMES = set(ACTIVATIONS) | set(OUTPUTS)
# a learner's own code, written as the course writes it (its relu and sigmoid, its signatures): what minnet
# checks, not minnet's machinery, so the rules of minnet's own code do not apply to it
LEARNERS_CODE = {"minnet.course"}


def modules():
    """{dotted name: (path, syntax tree)} of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = (path, ast.parse(path.read_text(), str(path)))
    return found


def imports(name, path, tree, known):
    """The package's modules that module ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = (base + "." + node.module if node.module else base) if node.level else node.module
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in known else base)
    return {target for target in found if target in known and target != name}


def test_there_are_no_import_cycles():
    known = modules()
    graph = {name: imports(name, path, tree, known) for name, (path, tree) in known.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_layout_test_sees_a_cycle_when_there_is_one(tmp_path):
    """The graph is built from the syntax alone: a cycle through a function-level import is found."""
    known = {"minnet.a": None, "minnet.b": None}
    a = ast.parse("def f():\n    from . import b\n")
    b = ast.parse("from .a import f\n")
    assert imports("minnet.a", pathlib.Path("a.py"), a, known) == {"minnet.b"}
    assert imports("minnet.b", pathlib.Path("b.py"), b, known) == {"minnet.a"}


def _docstrings(tree):
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    return {id(n.body[0].value) for n in nodes
            if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def naming(tree):
    """Where a module names an activation or an output in its code: a string equal to one, or an identifier
    that is one (in any case, with or without a leading underscore or an ``OUT_`` prefix). Docstrings,
    comments and prose that merely mention one do not count."""
    skip = _docstrings(tree)
    spelled = NAMES | {n.upper() for n in NAMES} | {"OUT_" + n.upper() for n in NAMES}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if node.value in NAMES:
                found.append((node.lineno, repr(node.value)))
        else:
            library = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in ("np", "numpy", "math")  # np.tanh is the library's function, not an activation
            identifier = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                          and not library else node.name if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else
                          node.arg if isinstance(node, ast.arg) else None)
            if identifier is not None and identifier.lstrip("_") in spelled:
                found.append((node.lineno, identifier))
    return found


def test_only_the_registries_name_activations_and_outputs():
    offenders = {name: naming(tree) for name, (_, tree) in modules().items()
                 if name not in REGISTRIES | LEARNERS_CODE}
    offenders = {name: found for name, found in offenders.items() if found}
    assert not offenders, f"activation or output names outside the registries: {offenders}"


def test_the_naming_rule_sees_a_name_in_code_and_not_in_prose():
    assert naming(ast.parse('def f(x):\n    """relu and softmax, in words."""\n    return x == "tanh"\n'))
    assert naming(ast.parse("RELU = 0\n"))
    assert not naming(ast.parse('def f():\n    """A relu net."""\n    return "segment for relu nets"\n'))


def test_one_severity_order():
    places = [name for name, (_, tree) in modules().items() for node in ast.walk(tree)
              if isinstance(node, (ast.Assign, ast.AnnAssign))
              for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
              if isinstance(target, ast.Name) and "SEVERITY" in target.id]
    assert places == ["minnet.check.judge"]


def test_modules_and_functions_stay_small():
    long_modules = {name: len(path.read_text().splitlines()) for name, (path, _) in modules().items()}
    assert {name: n for name, n in long_modules.items() if n > 600} == {}
    long_functions = sorted((node.end_lineno - node.lineno + 1, f"{name}.{node.name}")
                            for name, (_, tree) in modules().items() for node in ast.walk(tree)
                            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                            and node.end_lineno - node.lineno + 1 > 80)
    assert len(long_functions) <= 2, long_functions


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_says_what_it_owns(name):
    path, tree = modules()[name]
    doc = ast.get_docstring(tree)
    assert doc, f"{path.name} has no module docstring"


def _compiled(node):
    """Numba-compiled: its options cannot be keyword-only (a compiled caller cannot bind them, Numba 0.6x)."""
    return any("njit" in ast.unparse(d) or "parallel_kernel" in ast.unparse(d) for d in node.decorator_list)


def test_public_functions_take_their_options_by_keyword():
    """After at most 3 natural positionals, options are keyword-only (as scikit-learn's are)."""
    offenders = []
    for name, (path, tree) in modules().items():
        if name in LEARNERS_CODE:
            continue
        if any(part.startswith("_") for part in name.split(".")[1:]) and not path.name == "__init__.py":
            continue  # a private module
        scopes = [(tree.body, "")] + [(n.body, n.name + ".") for n in tree.body
                                      if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
        for body, prefix in scopes:
            for node in body:
                if isinstance(node, ast.FunctionDef) and (not node.name.startswith("_") or node.name == "__init__") \
                        and not _compiled(node):
                    positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                    if len(positional) > 3:
                        offenders.append(f"{name}.{prefix}{node.name}({', '.join(positional)})")
    assert len(offenders) <= 4, offenders

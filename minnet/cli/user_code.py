"""Importing the user's code for ``minnet check FILE.py[:NAME]`` (a regular file of bounded size, its folder
behind minnet's own imports) and adapting what it defines into ``cost_fn``, ``grads_fn`` and ``parameters``
(here, and again by path in each worker process of --jobs), its exits and errors made UserCodeError: the only
code in minnet that runs a user's file. Imports ``_common`` only, of the CLI; no command module."""
import importlib
import importlib.machinery
import importlib.util
import linecache
import os
import re
import socket
import stat
import sys
import sysconfig
import threading
import uuid
from collections.abc import Mapping
from contextlib import contextmanager, redirect_stdout

from ._common import CliError, UserCodeError

# the names a user's file defines (one of the two conventions)
OWN_NAMES = ("cost_fn", "grads_fn", "parameters")
COURSE_NAMES = ("forward_propagation_n", "backward_propagation_n", "X", "Y", "parameters")
MINNET_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # its frames are not the user's
KEEP_LOADED = 2  # a worker keeps the targets of this many checks imported (it serves one check at a time)
_LOADED = {}     # {token: ({role: function}, undo)}: each check's target in this process (undo None: the
                 # process that runs the check, which undoes it itself; a list: imported again in a worker)
_LOADING = threading.Lock()  # a worker's threads (Dask's) import a target once between them
MAX_SOURCE_BYTES = 10 * 2**20  # the largest FILE.py minnet reads: source, not data
# what minnet may import after the user's code has run: imported first, so that a module of the same name
# beside the user's file (a tqdm.py, a joblib.py) cannot stand in for it
MINNETS_LATER_IMPORTS = {"always": ("threadpoolctl",), "progress": ("tqdm.auto",),
                         "jobs": ("joblib", "cloudpickle", "joblib.externals.loky"), "scheduler": ("dask.distributed",)}


def load_target(target, undo, *, folder=None):
    """Import ``FILE.py``, ``FILE.py:NAME``, ``MODULE`` or ``MODULE:NAME`` and return its names.

    This runs the user's code (the module's top level, and NAME() if given); nothing
    else in minnet executes anything from a file.

    Parameters
    ----------
    target : str
        What to import. With ``:NAME``, NAME must be a function returning a dict or
        namespace with the names (or be such a dict or namespace itself).
    undo : list
        Gets the callables that take the user's folder off ``sys.path`` (it is put
        there so that the file can import its neighbours) and its module out of
        ``sys.modules``; the caller calls them when done.

    Returns
    -------
    names : Mapping
        The names the target defines.
    label : str
        How to name the target in messages.
    """
    path, attribute, is_file = _parse(target)
    if is_file:
        module = _import_file(path, undo)
    else:
        module = _import_module(path, undo, folder)
    label = path
    if attribute is None:
        return vars(module), label
    if not hasattr(module, attribute):
        raise CliError(f"{label} defines no {attribute!r}")
    label = f"{path}:{attribute}"
    found = getattr(module, attribute)
    if callable(found):
        try:
            found = found()
        except (Exception, SystemExit) as exc:  # the user's code: report it, minnet's own errors are not caught here
            raise UserCodeError(f"{label}() {_failed(exc)}") from None
    if isinstance(found, Mapping):
        return found, label
    if hasattr(found, "__dict__") and not isinstance(found, type):
        return vars(found), label
    raise CliError(f"{label} must be (or return) a dict or namespace with {', '.join(OWN_NAMES)} or the course's "
                   f"{', '.join(COURSE_NAMES)}; got {type(found).__name__}")


def _parse(target):
    """(path or module name, NAME or None, whether it is a file) of 'FILE.py[:NAME]' or 'MODULE[:NAME]'.

    A name that is there as a file, or as a folder that is no package (no __init__.py), is a path.
    """
    path, colon, attribute = target.rpartition(":")
    if not (colon and path and attribute.isidentifier()):
        path, attribute = target, None
    is_file = (path.endswith(".py") or os.sep in path or "/" in path or os.path.lexists(path)
               and not os.path.isfile(os.path.join(path, "__init__.py")))
    return path, attribute, is_file


def _import_file(path, undo):
    _check_source(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem if stem.isidentifier() and stem not in sys.modules else "_minnet_check_target"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    _on_sys_path(os.path.dirname(os.path.abspath(path)), undo)
    sys.modules[name] = module  # as an import does (dataclasses, pickle and typing look it up)
    undo.append(lambda: sys.modules.pop(name, None))
    _execute(lambda: spec.loader.exec_module(module), path)
    return module


def _check_source(path):
    """Refuse, before opening it, what is not a regular .py file of at most MAX_SOURCE_BYTES (a FIFO would
    hang the import, a link to /dev/zero fill the memory): os.stat follows links to what they name."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        missing = "no such file" if not os.path.islink(path) else "a link to a file that does not exist"
        raise CliError(f"{path}: {missing}") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        found = sorted(name for name in os.listdir(path) if name.endswith(".py"))[:3]
        example = f", like {os.path.join(path, found[0])}" if found else ""
        raise CliError(f"{path} is a folder; give one of its .py files{example} (or MODULE:NAME)")
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"{path} is not a regular file (a {_kind(info.st_mode)}); give a .py file")
    suffix = os.path.splitext(path)[1]
    if suffix != ".py":
        given = f"a {suffix} file" if suffix else "a file without the .py suffix"
        hint = ("a notebook: export its code as a .py file first (jupyter nbconvert --to script)"
                if suffix == ".ipynb" else "minnet check imports Python source: give FILE.py")
        raise CliError(f"{path} is {given}, not a .py file ({hint})")
    if info.st_size > MAX_SOURCE_BYTES:
        raise CliError(f"{path} is {info.st_size / 2**20:.0f} MB, more than the {MAX_SOURCE_BYTES // 2**20} MB of "
                       f"source a file to check may have")


def _kind(mode):
    kinds = {stat.S_ISFIFO: "FIFO (named pipe)", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
             stat.S_ISSOCK: "socket"}
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def _on_sys_path(folder, undo):
    """The user's folder at the end of sys.path (so that the file can import its neighbours, but no neighbour
    can stand in for an installed module minnet or the user imports); taken off again by ``undo``."""
    if folder in sys.path:
        return

    def remove():
        if folder in sys.path:
            del sys.path[len(sys.path) - 1 - sys.path[::-1].index(folder)]

    sys.path.append(folder)
    undo.append(remove)


def _import_module(name, undo, folder=None):
    folder = folder or os.getcwd()
    _on_sys_path(folder, undo)
    try:  # MODULE.py of the folder itself first (as 'python -m' finds it), then any importable module
        local = importlib.machinery.PathFinder.find_spec(name, [folder]) if name.isidentifier() else None
        spec = local or importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise CliError(f"{name}: no such file, and no module of that name (give FILE.py, FILE.py:NAME or "
                       f"MODULE:NAME)")
    if spec is local and spec.origin and spec.origin.endswith(".py") and not spec.submodule_search_locations:
        return _import_file(spec.origin, undo)
    if spec.has_location and spec.origin and spec.origin.endswith(".py"):
        _check_source(spec.origin)
    return _execute(lambda: importlib.import_module(name), name)


def _execute(load, label):
    try:
        return load()
    except SyntaxError as exc:
        raise UserCodeError(f"{label} does not import: SyntaxError: {exc.msg} (line {exc.lineno})") from None
    except SystemExit as exc:
        raise UserCodeError(f"{label} {_exited(exc)} while being imported; put its script part under "
                            f"'if __name__ == \"__main__\":'") from None
    except Exception as exc:  # the user's code
        raise UserCodeError(f"{label} raised {_describe(exc)} while being imported") from None


EXIT_ADVICE = "a check cannot go on after an exit, and an exit status is no verdict: raise an exception instead"


def _failed(exc):
    """'raised ZeroDivisionError: ... (file.py, line 3)', or for an exit 'exited with 0 (file.py, line 3:
    sys.exit(0)); ' and EXIT_ADVICE."""
    if not isinstance(exc, SystemExit):
        return f"raised {_describe(exc)}"
    return f"{_exited(exc)}; {EXIT_ADVICE}"


def _exited(exc):
    """'exited with 0 (file.py, line 3: sys.exit(0))': a SystemExit, where the user's code raised it."""
    frames = _users_frames(exc)[0]
    where = ""
    if frames:
        source = linecache.getline(frames[-1][0], frames[-1][1]).strip()
        where = f" ({os.path.basename(frames[-1][0])}, line {frames[-1][1]}{': ' + source if source else ''})"
    return f"exited{'' if exc.code is None else f' with {exc.code!r}'}{where}"


def _describe(exc):
    """'ZeroDivisionError: division by zero (my_file.py, line 12)': where in the user's code it was raised."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = _users_frames(exc)[0]
    if frames:
        filename, line = frames[-1]
        text += f" ({os.path.basename(filename)}, line {line})"
    return text


REMOTE_FRAME = re.compile(r'^\s*File "(.+?)", line (\d+)', re.MULTILINE)  # a frame in a traceback's text


def _users_frames(exc):
    """([(file, line), ...] of the user's code where ``exc`` was raised, outermost first; whether they are
    a worker process's): minnet's and the libraries' frames left out. Where this process's traceback has
    none, the frames of the worker's traceback, which joblib attaches as the text of ``exc.__cause__``."""
    libraries = tuple(os.path.join(os.path.abspath(folder), "") for folder in
                      [MINNET_FOLDER] + [sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib")])

    def users(filename):
        return not filename.startswith("<") and not os.path.abspath(filename).startswith(libraries)

    here = [(tb.tb_frame.f_code.co_filename, tb.tb_lineno) for tb in _traceback(exc.__traceback__)]
    here = [frame for frame in here if users(frame[0])]
    remote = getattr(exc.__cause__, "tb", None)  # loky's _RemoteTraceback
    if here or not isinstance(remote, str):
        return here, False
    return [(name, int(line)) for name, line in REMOTE_FRAME.findall(remote) if users(name)], True


def users_error(exc):
    """A UserCodeError that names the user's file and line for an exception (or exit) their code raised
    outside the guarded calls (here, or in a worker process: seen in its traceback); None for any other."""
    frames, remote = _users_frames(exc)
    if isinstance(exc, CliError) or not frames:
        return None
    return UserCodeError(f"your code {_failed(exc)}{' in a worker process' if remote else ''}")


def _traceback(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def load_backprop(target, undo):
    """(cost_fn, grads_fn, parameters) of a target, ready for ``check_gradients`` with worker processes.

    ``load_target`` and ``backprop_from``, with both functions wrapped in
    ``UserFunction``: a worker that unpickles one imports the target again by
    its path. ``undo`` gets, besides ``load_target``'s steps, the one that
    forgets the functions here once the check is done.
    """
    names, label = load_target(target, undo)
    cost_fn, grads_fn, parameters = backprop_from(names, label)
    path, attribute, is_file = _parse(target)
    origin = (os.path.abspath(path) if is_file else path, attribute, None if is_file else os.getcwd())
    token = uuid.uuid4().hex
    _LOADED[token] = ({"cost_fn": cost_fn, "grads_fn": grads_fn}, None)  # unpickled here: these, no new import
    undo.append(lambda: _LOADED.pop(token, None))
    return (UserFunction(cost_fn, "cost_fn", origin=origin, token=token),
            UserFunction(grads_fn, "grads_fn", origin=origin, token=token), parameters)


class UserFunction:
    """One of the user's functions as ``minnet check`` hands it to ``check_gradients``.

    Called, it calls the function. Pickled (cloudpickle sends the cost to
    worker processes) it is not looked up by the name the file was imported
    under here, which a worker does not have: it unpickles as
    ``_reloaded(where, attribute, folder, role, token)``, which imports the
    target again in that process, by its absolute path (or as a module from
    this process's folder), once per check, and adapts its names as this
    process did. In a worker the user's prints go to stderr, never onto the
    command's output.

    Parameters
    ----------
    function : callable
        The user's function as ``backprop_from`` adapts it.
    role : {"cost_fn", "grads_fn"}
    origin : tuple
        (the absolute path of FILE.py or MODULE's name, NAME or None, the
        folder MODULE is found in or None): what a worker imports.
    token : str
        The check's: a process imports its target once.
    in_worker : bool
        Made by ``_reloaded`` in a worker process.
    """

    def __init__(self, function, role, *, origin, token, in_worker=False):
        self.function, self.origin, self.role, self.token = function, origin, role, token
        self.in_worker = in_worker
        self.__name__ = self.__qualname__ = role

    def __call__(self, *args):
        if self.in_worker:
            with redirect_stdout(sys.stderr):
                return self.function(*args)
        return self.function(*args)

    def __reduce__(self):
        return _reloaded, (*self.origin, self.role, self.token)


def _reloaded(where, attribute, folder, role, token):
    """The ``role`` function of check ``token``'s target in this process: imported again by its path, once
    per process and check (a worker keeps the newest ``KEEP_LOADED``; older ones are undone)."""
    with _LOADING:
        if token not in _LOADED:
            loaded = [key for key, (_, undo) in _LOADED.items() if undo is not None]
            for key in loaded[:max(0, len(loaded) - KEEP_LOADED + 1)]:
                _undo(_LOADED.pop(key)[1])
            _LOADED[token] = _load_again(where, attribute, folder)
        functions, undo = _LOADED[token]
    return UserFunction(functions[role], role, origin=(where, attribute, folder), token=token,
                        in_worker=undo is not None)


def _load_again(where, attribute, folder):
    target = f"{where}:{attribute}" if attribute else where
    undo = []
    try:
        with redirect_stdout(sys.stderr):
            names, label = load_target(target, undo, folder=folder)
            cost_fn, grads_fn, _ = backprop_from(names, label)
    except BaseException as exc:
        _undo(undo)
        if isinstance(exc, CliError):
            raise type(exc)(f"a worker process ({socket.gethostname()}:{os.getpid()}) could not import your code "
                            f"again (every worker imports {target}, so it must see that file): {exc}") from None
        raise
    return {"cost_fn": cost_fn, "grads_fn": grads_fn}, undo


def _undo(undo):
    for step in reversed(undo):
        step()


def backprop_from(names, label):
    """(cost_fn, grads_fn, parameters) from a target's names, in either convention.

    Parameters
    ----------
    names : Mapping
        Either ``cost_fn(parameters) -> float``, ``grads_fn(parameters) -> {"dW1": ...}`` and
        ``parameters`` ({"W1": (n_1, n_0), "b1": (n_1, 1), ...}), or the course's
        ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``,
        ``backward_propagation_n(X, Y, cache) -> {"dW1": ..., "db1": ..., ...}``, ``X`` (n_0, m),
        ``Y`` (n_L, m) and ``parameters``.
    label : str
        The target, for messages.

    Returns
    -------
    cost_fn, grads_fn, parameters
        Ready for ``minnet.check_gradients``; an exception in the user's functions
        becomes a CliError that names the function.
    """
    if "cost_fn" in names or "grads_fn" in names:
        wanted = OWN_NAMES
    elif "forward_propagation_n" in names or "backward_propagation_n" in names:
        wanted = COURSE_NAMES
    else:
        raise CliError(f"{label} defines neither {_and(OWN_NAMES)} nor the course's {_and(COURSE_NAMES)} "
                       f"(see 'minnet check --help')")
    missing = [name for name in wanted if name not in names]
    if missing:
        raise CliError(f"{label} lacks {_and(missing)} (it defines {_and([n for n in wanted if n in names])})")
    for name in wanted:
        if name.endswith(("_fn", "_n")) and not callable(names[name]):
            raise CliError(f"{name} in {label} must be a function, got {type(names[name]).__name__}")
    parameters = names["parameters"]
    if not isinstance(parameters, Mapping):
        raise CliError(f"parameters in {label} must be a dict like {{'W1': ..., 'b1': ...}}, "
                       f"got {type(parameters).__name__}")
    if wanted == OWN_NAMES:
        return _guarded(names["cost_fn"], "cost_fn"), _guarded(names["grads_fn"], "grads_fn"), dict(parameters)
    cost_fn, grads_fn = course_functions(names["forward_propagation_n"], names["backward_propagation_n"],
                                         X=names["X"], Y=names["Y"])
    return cost_fn, grads_fn, dict(parameters)


def course_functions(forward, backward, *, X, Y):
    """cost_fn and grads_fn for ``check_gradients`` from the course's two functions.

    Parameters
    ----------
    forward : callable
        ``forward_propagation_n(X, Y, parameters) -> (cost, cache)``.
    backward : callable
        ``backward_propagation_n(X, Y, cache) -> gradients``: "dW1", "db1", ... and any
        extra entries ("dZ1", "dA1", ...), which are left out.
    X : ndarray, shape (n_0, m)
    Y : ndarray, shape (n_L, m)

    Returns
    -------
    cost_fn : callable
        ``cost_fn(parameters) -> cost``
    grads_fn : callable
        ``grads_fn(parameters) -> {"dW1": ..., ...}`` with exactly the keys "d" + each parameter's name.
    """
    forward = _guarded(forward, "forward_propagation_n")
    backward = _guarded(backward, "backward_propagation_n")

    def run_forward(parameters):
        result = forward(X, Y, parameters)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise CliError(f"forward_propagation_n must return (cost, cache), got {type(result).__name__}"
                           + (f" of length {len(result)}" if isinstance(result, tuple) else ""))
        return result

    def cost_fn(parameters):
        return run_forward(parameters)[0]

    def grads_fn(parameters):
        gradients = backward(X, Y, run_forward(parameters)[1])
        if not isinstance(gradients, Mapping):
            raise CliError(f"backward_propagation_n must return a dict of gradients like {{'dW1': ...}}, "
                           f"got {type(gradients).__name__}")
        missing = ["d" + name for name in parameters if "d" + name not in gradients]
        if missing:
            raise CliError(f"backward_propagation_n returned no {_and(missing)}")
        return {"d" + name: gradients["d" + name] for name in parameters}

    return cost_fn, grads_fn


def _guarded(function, name):
    """``function`` with an exception it raises, or its exit (sys.exit, exit, quit: a SystemExit), turned into
    one UserCodeError line that names it and the user's file and line; Ctrl-C passes."""
    def call(*args):
        try:
            return function(*args)
        except CliError:
            raise
        except (Exception, SystemExit) as exc:  # the user's code
            raise UserCodeError(f"{name} {_failed(exc)}") from None
    return call


def import_minnets_own(*, progress, jobs, scheduler=False):
    """Import what minnet itself may import while or after the user's code runs (MINNETS_LATER_IMPORTS), before
    it runs: a bar's, worker processes' (``jobs``), a Dask cluster's (``scheduler``). One not installed is left out."""
    wanted = [*MINNETS_LATER_IMPORTS["always"]]
    for needed, kind in ((progress, "progress"), (jobs or scheduler, "jobs"), (scheduler, "scheduler")):
        wanted += MINNETS_LATER_IMPORTS[kind] if needed else ()
    for name in wanted:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


@contextmanager
def stdout_to_stderr():
    """Send what is written on stdout meanwhile to stderr: by Python (sys.stdout) and below it (file descriptor
    1: C code, os.write, the processes started meanwhile), so that the JSON printed after is stdout's only text."""
    _flush_everything()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1: Python's stdout only
        saved = None
    else:
        try:
            os.dup2(2, 1)
        except OSError:  # no file descriptor 2
            os.close(saved)
            saved = None
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _flush_everything()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _flush_everything():
    """Flush Python's stdout and stderr and C's stdio buffers (a printf not yet written)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (Windows)
        pass


def _and(names):
    names = list(names)
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)

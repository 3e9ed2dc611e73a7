"""J(theta +- h) of a learner's cost for many entries: in this process, or in worker processes through joblib.

Every J is the learner's own cost at the perturbed point, with BLAS on one
thread while it runs, on every path: the numbers are bitwise the same for any
``n_jobs`` and backend. Imports no judge, no report and no other check module.
"""
import itertools
import math
import os
import socket
import sys
import time
import uuid
import warnings
from contextlib import contextmanager

import numpy as np

TASK_SECONDS = 0.5    # a task's aim: far above loky's ~1 ms and Dask's ~10 ms of overhead per task
TASKS_PER_WORKER = 4  # at least this many tasks per worker (when there are entries enough): balance, a live bar
_LOADED = {}          # in a worker: the cost functions of the checks it serves, by token (the last few)


class WorkerLost(RuntimeError):
    """A worker process of the check died (killed, out of memory): the entries it held were lost."""


class UserExit(RuntimeError):
    """The learner's code called ``sys.exit()`` (or ``exit()``, ``quit()``) during a check: no result can come
    of it, and its exit status must not stand for one."""


def users_call(fn, argument, *, name):
    """``fn(argument)``, with a ``SystemExit`` from the learner's code turned into ``UserExit``."""
    try:
        return fn(argument)
    except SystemExit as exc:
        raise UserExit(f"{name} called sys.exit({exc.code!r}){_users_line(exc)} during the gradient check: a "
                       f"check cannot go on after that, and its exit status is not a verdict. Remove the exit "
                       f"from the function (raise an exception instead).") from exc


def _users_line(exc):
    """' (file.py, line 12)': the last frame of the traceback outside the standard library and minnet."""
    import sysconfig
    skip = tuple(os.path.join(os.path.abspath(folder), "") for folder in
                 [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                  sysconfig.get_paths()["stdlib"]])
    last, tb = None, exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<") and not os.path.abspath(filename).startswith(skip):
            last = (os.path.basename(filename), tb.tb_lineno)
        tb = tb.tb_next
    return "" if last is None else f" ({last[0]}, line {last[1]})"


def n_jobs_value(n_jobs):
    """``n_jobs`` as given (None, or a nonzero int); raises TypeError or ValueError naming it."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be an int (1, 2, ... or -1 for every core) or None, "
                        f"got {type(n_jobs).__name__} {n_jobs!r}")
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0: 1 runs in this process, N > 1 in N processes, -1 on every core")
    return int(n_jobs)


@contextmanager
def one_blas_thread():
    """BLAS and OpenMP pools on one thread while the learner's cost runs (threadpoolctl).

    OpenBLAS's products differ in their last bits between 1 and 2 threads, so every
    path pins them: the numbers are then the same for every ``n_jobs``.
    """
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        yield


def nondeterministic_message(J1, J2):
    return (f"the cost is not deterministic: J evaluated twice at the same theta gave {J1!r} and {J2!r}. "
            "A gradient check needs one consistent J(theta); with dropout every call drops different units. "
            "Use the deterministic check mode: fix the dropout masks (gradient_check(..., dropout_seed=0), or "
            "draw the masks once and reuse them in your cost and gradients), or set keep_prob=1 while checking.")


def scalar_cost(value):
    """The learner's cost as a float; its own ``__float__`` or ``__array__`` may not exit either (``UserExit``)."""
    return users_call(_as_float, value, name=f"the cost's {type(value).__name__} value")


def _as_float(value):
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"cost_fn must return the cost J as a real number, got {type(value).__name__}"
                        + (" (is a `return` missing?)" if value is None else ""))
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"cost_fn must return the cost J as a real number, got {type(value).__name__}") from None
    if array.size != 1:
        raise ValueError(f"cost_fn must return a scalar cost, got an array of shape {array.shape}")
    return float(array.reshape(()))


def parameters_of(blocks, vector):
    """A fresh dict of fresh arrays, one per block, copied out of the flat ``vector``."""
    return {b.name: vector[b.offset:b.offset + b.size].reshape(b.shape).copy() for b in blocks}


def serial_pairs(cost_at, original, indices, steps, bar):
    """(J(theta + h e_p), J(theta - h e_p)) for every entry p of ``indices``, in this process, in order.

    cost_at : ``cost_at(vector) -> float``; original : (n,) theta; indices : (k,) int64;
    steps : (k,) float64; bar : ``Progress``. Returns two (k,) arrays.
    """
    plus, minus = np.empty(indices.size), np.empty(indices.size)
    work = original.copy()
    with one_blas_thread():
        for q, p in enumerate(indices.tolist()):
            w = original[p]
            work[p] = w + steps[q]
            plus[q] = cost_at(work)
            work[p] = w - steps[q]
            minus[q] = cost_at(work)
            work[p] = w
            bar.update(1)
    return plus, minus


class Payload:
    """What every task of one check needs, sent once: the cost (cloudpickled), the blocks and theta.

    The bytes ride in a uint8 array, which joblib's loky backend writes once
    to a memory-mapped file for all its tasks; the Dask backend scatters the
    object once (``__sizeof__`` tells it the object is large). A worker
    unpickles it once per check (``_LOADED``, by token).
    """

    def __init__(self, cost_fn, blocks, theta, *, what="cost_fn"):
        self.name = f"{what} {getattr(cost_fn, '__qualname__', None) or type(cost_fn).__name__}"
        try:
            data = _dumps((cost_fn, blocks, np.ascontiguousarray(theta, dtype=np.float64)), cost_fn)
        except Exception as exc:  # any failure to pickle: pickle's own errors have no common base
            raise TypeError(f"n_jobs: {self.name} cannot be sent to worker processes ({type(exc).__name__}: "
                            f"{exc}). Use n_jobs=1 to check it in this process, or define it at a module's top "
                            f"level with no unpicklable objects (open files, locks, generators) in reach."
                            ) from exc
        self.token = uuid.uuid4().hex
        self.data = np.frombuffer(data, dtype=np.uint8)

    def __sizeof__(self):
        return object.__sizeof__(self) + self.data.nbytes

    def load(self):
        if self.token not in _LOADED:
            import cloudpickle
            while len(_LOADED) >= 2:  # a worker serves one check at a time: keep the newest
                _LOADED.pop(next(iter(_LOADED)))
            try:
                _LOADED[self.token] = cloudpickle.loads(memoryview(self.data))  # no copy of the bytes
            except Exception as exc:
                raise TypeError(f"n_jobs: a worker process ({socket.gethostname()}:{os.getpid()}) could not load "
                                f"{self.name} ({type(exc).__name__}: {exc}). Every worker needs the modules it "
                                f"uses; use n_jobs=1 to check it in this process.") from exc
        return _LOADED[self.token]


def _dumps(obj, function):
    """cloudpickle's bytes of ``obj``, keeping the user's file names in their code.

    cloudpickle writes "<dynamic-code>" as the file of code it sends by value
    (closures, notebook functions); marshal keeps the real one, so that an
    error in a worker names the user's file and line (the workers run the same
    Python). The modules of ``function`` and of the functions it closes over
    that a worker could not import by name (imported from a file, say) are
    sent by value.
    """
    import copyreg
    import io
    import marshal
    import pickle
    import types
    from collections import ChainMap

    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        dispatch_table = ChainMap({types.CodeType: lambda code: (marshal.loads, (marshal.dumps(code),))},
                                  cloudpickle.Pickler.dispatch_table, copyreg.dispatch_table)

    by_value = [m for m in _unimportable_modules(function) if m not in cloudpickle.list_registry_pickle_by_value()]
    for module in by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        buffer = io.BytesIO()
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return buffer.getvalue()
    finally:
        for module in by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _unimportable_modules(function, depth=3):
    """The modules of ``function`` and of the functions in its closure (to ``depth``) that no finder on
    ``sys.path`` knows by name: a worker could not import them."""
    found, seen, todo = [], set(), [(function, depth)]
    while todo:
        f, left = todo.pop()
        if id(f) in seen or not callable(f):
            continue
        seen.add(id(f))
        module = sys.modules.get(getattr(f, "__module__", None) or "")
        name = getattr(module, "__name__", "__main__")
        if name != "__main__" and module not in found and getattr(module, "__spec__", None) is not None:
            top = name.partition(".")[0]
            if top != __name__.partition(".")[0] and top not in sys.builtin_module_names and not _findable(top):
                found.append(module)
        if left:
            cells = getattr(getattr(f, "__func__", f), "__closure__", None) or ()
            todo.extend((c.cell_contents, left - 1) for c in cells if _has_contents(c))
    return found


def _findable(top):
    """Whether a finder of ``sys.meta_path`` (the path finder, an editable install's own) knows ``top`` by
    name, not by what this process has in ``sys.modules``: what a fresh worker process could import."""
    for finder in sys.meta_path:
        try:
            if getattr(finder, "find_spec", None) and finder.find_spec(top, None) is not None:
                return True
        except Exception:  # a third-party finder that cannot answer: ask the next one
            continue
    return False


def _has_contents(cell):
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def _task(payload, indices, steps):
    """One task, in a worker: J at theta, then J(theta +- h e_p) for its entries, BLAS on one thread.

    Returns (J(theta), plus, minus, worker): J at theta lets the parent see a cost
    whose value differs between processes; worker names the process.
    """
    cost_fn, blocks, theta = payload.load()
    if "numba" in sys.modules:  # a cost written with Numba: its threads too
        import numba
        numba.set_num_threads(1)

    name = getattr(cost_fn, "__qualname__", None) or "cost_fn"

    def cost_at(vector):
        return scalar_cost(users_call(cost_fn, parameters_of(blocks, vector), name=name))

    with one_blas_thread():
        center = cost_at(theta)
    plus, minus = serial_pairs(cost_at, theta, indices, steps, _NoBar)
    return center, plus, minus, f"{socket.gethostname()}:{os.getpid()}"


class _NoBar:
    @staticmethod
    def update(n):
        pass


def task_ranges(n, workers, seconds_per_entry):
    """Contiguous (start, stop) ranges over n entries: about ``TASK_SECONDS`` each, at least
    ``TASKS_PER_WORKER`` per worker while there are entries enough."""
    if n == 0:
        return []
    longest = max(1, math.ceil(n / (TASKS_PER_WORKER * workers)))
    aimed = max(1, int(TASK_SECONDS / max(seconds_per_entry, 1e-9)))
    size = min(longest, aimed)
    return [(a, min(a + size, n)) for a in range(0, n, size)]


class Pool:
    """The learner's cost on joblib's workers: loky processes by default, or whatever
    ``joblib.parallel_config`` names (a Dask cluster).

    n_jobs : as joblib takes it (None: 1, unless a ``parallel_config`` says otherwise).
    ``workers`` collects the names of the processes that took part.
    """

    def __init__(self, n_jobs):
        import joblib
        self.n_jobs = n_jobs
        self.backend = joblib.parallel.get_active_backend()[0]
        self.size = joblib.effective_n_jobs(n_jobs)
        self.workers = set()

    @property
    def in_process(self):
        """One worker and a backend in this process's reach: the plain loop, no pool."""
        return self.size == 1 and type(self.backend).__name__ in ("LokyBackend", "MultiprocessingBackend",
                                                                    "SequentialBackend", "ThreadingBackend")

    def pairs(self, payload, indices, steps, *, center, bar, seconds_per_call):
        """As ``serial_pairs``, on the workers, in ranges of entries; checks every worker's J at theta
        against ``center`` (the parent's), so that a cost that depends on its process is caught."""
        import joblib
        plus, minus = np.empty(indices.size), np.empty(indices.size)
        ranges = task_ranges(indices.size, self.size, 2 * seconds_per_call)
        pending = dict(enumerate(ranges))
        extra = ({"backend": "loky", "inner_max_num_threads": 1} if type(self.backend).__name__ == "LokyBackend"
                 else {})
        try:
            with joblib.parallel_config(**extra):
                parallel = joblib.Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")
                tasks = [joblib.delayed(_numbered)(i, payload, indices[a:b], steps[a:b])
                         for i, (a, b) in enumerate(ranges)]
                results = parallel(tasks)
                try:
                    for i, (J, p, m, worker) in results:
                        a, b = pending.pop(i)
                        if not (J == center or (np.isnan(J) and np.isnan(center))):
                            raise ValueError(nondeterministic_message(center, J) + " (here: J in a worker process "
                                             "differs from J in this one; a cost that reads a global random state "
                                             "or a counter of its own is not a function of theta)")
                        plus[a:b], minus[a:b] = p, m
                        self.workers.add(worker)
                        bar.update(b - a)
                finally:  # stopped early (minnet's own error, Ctrl-C): no joblib warning about the tasks dropped
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        results.close()
        except _lost_worker_errors() as exc:
            lost = sorted(pending.values())
            where = ", ".join(f"{int(indices[a])}..{int(indices[b - 1])}" for a, b in lost[:5])
            raise WorkerLost(f"a worker process of the gradient check died ({type(exc).__name__}: {exc}); "
                             f"the entries of theta in {len(lost)} unfinished task(s) were lost: {where}"
                             f"{', ...' if len(lost) > 5 else ''}. Out of memory? Try fewer n_jobs.") from exc
        return plus, minus


def _numbered(i, payload, indices, steps):
    return i, _task(payload, indices, steps)


def _lost_worker_errors():
    """The exceptions that mean a worker died: loky's, and Dask's when it is installed."""
    from joblib.externals.loky.process_executor import BrokenProcessPool, TerminatedWorkerError
    errors = [TerminatedWorkerError, BrokenProcessPool]
    if "distributed" in sys.modules:
        from distributed.scheduler import KilledWorker
        errors.append(KilledWorker)
    return tuple(errors)


def time_calls(fn, n=1):
    """(fn()'s value, seconds per call) over n calls; the last value."""
    start = time.perf_counter()
    for _ in itertools.repeat(None, n):
        value = fn()
    return value, (time.perf_counter() - start) / n

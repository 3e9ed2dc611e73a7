"""The shared parallel runner of the check's kernels: one kernel thread, thread counts, progress, Ctrl-C, fork.

Every parallel kernel of the check runs through ``run`` on the one kernel
thread, reports its progress in ``Counters`` and leaves at its stop flag.
Imports nothing of minnet: the evaluators, the judge and the tallies build on it.
"""
import contextlib
import os
import queue
import sys
import threading
import types

import numba
import numpy as np
from numba import njit


# ------------------------------------------------------------ progress and the stop flag
class Counters:
    """Finished entries per chunk, and the stop flag the kernels read between groups.

    Both live in one int64 array, ``buffer`` (what the kernels receive): the
    chunks' counts, then the flag. A flag in an array of its own would be read
    once, before the loop (the compiler may hoist a load that no store in the
    loop can change), and never stop it. Kernels read it with ``stopped`` and
    count with ``buffer[c] += 1``.
    """

    def __init__(self, n_chunks):
        self.buffer = np.zeros(n_chunks + 1, np.int64)

    @property
    def done(self):
        """(n_chunks,) entries finished per chunk."""
        return self.buffer[:-1]

    @property
    def stop(self):
        """True once a stop was asked for (Ctrl-C)."""
        return bool(self.buffer[-1])

    def request_stop(self):
        self.buffer[-1] = 1


@njit(cache=True)
def stopped(counters):
    """In a kernel: True once ``Counters.request_stop`` was called (counters: ``Counters.buffer``)."""
    return counters[counters.shape[0] - 1] != 0


def show_progress(progress, n_entries):
    """Whether to show a bar: as asked, or (None) on a terminal for checks of 20,000 entries or more."""
    if progress is None:
        return n_entries >= 20000 and sys.stderr.isatty()
    return bool(progress)


class Progress:
    """A tqdm bar when asked for and tqdm is installed; otherwise nothing."""

    def __init__(self, total, enabled, unit="entry"):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, unit=unit, unit_scale=total >= 10000, leave=False,
                                desc="gradient check")
            except ImportError:
                pass

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------ parallel kernels and their serial twins
_FORK = {"used": False, "allowed": True}  # GNU OpenMP cannot be used again in a forked child
_SERIAL = {"now": False}  # set by ``run(serial=True)``: the kernels run as their serial twins


class Kernel:
    """A parallel kernel, called as itself, or as its serial twin: for a small check, and in a forked child.

    The twin is the same loops compiled without ``parallel`` (prange runs as
    range; the kernels give the same numbers for any thread count), under a
    name of its own (its own cache files), made the first time it is needed.
    For a small check on one thread it does the same work and compiles in a
    fraction of the time (the parallel passes cost most of a first run's
    compiling; on large checks it runs some 5 % slower than the parallel
    kernel on one thread, which they keep); in a
    forked child of a process that ran a parallel kernel it is the only way,
    since GNU OpenMP cannot be used again after fork (Numba stops such a
    child with SIGTERM).
    """

    def __init__(self, dispatcher):
        self.parallel = dispatcher
        self._serial = None
        self.__name__ = getattr(dispatcher, "__name__", "kernel")
        self.__doc__ = dispatcher.__doc__

    @property
    def serial(self):
        if self._serial is None:
            self._serial = _serial_twin(self.parallel, self.__name__ + "_serial")
        return self._serial

    def __call__(self, *args):
        if _FORK["allowed"] and not _SERIAL["now"]:
            _FORK["used"] = True
            return self.parallel(*args)
        return self.serial(*args)


@contextlib.contextmanager
def dynamic():
    """Within it, the prange loops of this thread's kernels hand out their iterations one at a time as
    threads come free (for kernels whose iterations are a few chunks of uneven cost); the numbers are the same."""
    previous = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(previous)


def parallel_kernel(dispatcher):
    """Decorator, over ``@njit(parallel=True, ...)``: a ``Kernel`` with a serial twin for forked children."""
    return Kernel(dispatcher)


def _serial_twin(kernel, name):
    """``kernel``'s loops compiled without ``parallel``, under a name of its own."""
    f = getattr(kernel, "py_func", None)
    if f is None:  # NUMBA_DISABLE_JIT=1: plain Python functions, no threads to avoid
        return kernel
    twin = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__, twin.__doc__ = name, f.__doc__
    options = {key: value for key, value in kernel.targetoptions.items() if key not in ("parallel", "nopython")}
    return njit(**dict(options, cache=True, nogil=True))(twin)


# ------------------------------------------------------------ the kernel thread
class _KernelThread:
    """The one long-lived thread that runs the parallel kernels.

    Numba's OpenMP threads belong to the thread that calls a parallel kernel,
    and two such teams (one idle but still spinning) would compete for the
    cores, so every kernel runs here. A daemon thread fed by a queue: it
    works from any thread, also one that outlives the main script, and a
    forked child makes its own (``os.register_at_fork``).
    """

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="minnet-check", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            call, finished, outcome = self.jobs.get()
            try:
                call()
            except BaseException as exc:  # handed to the caller
                outcome.append(exc)
            finished.set()

    def submit(self, call):
        finished, outcome = threading.Event(), []
        self.jobs.put((call, finished, outcome))
        return finished, outcome


_KERNEL_THREAD = []
_KERNEL_LOCK = threading.Lock()


def _after_fork_in_child():  # the parent's kernel thread does not exist here
    global _KERNEL_LOCK
    _KERNEL_THREAD.clear()
    _KERNEL_LOCK = threading.Lock()
    if _FORK["used"]:
        _FORK["allowed"] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run(work, *, threads, serial=False, counters=None, total=0, show=False):
    """Run ``work()`` on the kernel thread with ``threads`` Numba threads; a progress bar when asked.

    work : callable that runs kernels; serial : they run as their serial twins
    (a small check on one thread: nothing parallel to compile). counters : ``Counters`` they count
    finished entries in (of ``total``), or None. The kernels release the GIL,
    so meanwhile this thread moves the bar. On Ctrl-C it raises the stop
    flag, waits for the kernels to leave at their next group, and raises
    KeyboardInterrupt: the next call starts at once. An exception of ``work``
    is raised here.
    """
    counters = counters if counters is not None else Counters(0)

    def call():
        previous = numba.get_num_threads()  # Numba's thread count belongs to the calling thread
        numba.set_num_threads(threads)
        _SERIAL["now"] = serial  # only the kernel thread calls kernels, one job at a time
        try:
            work()
        finally:
            _SERIAL["now"] = False
            numba.set_num_threads(previous)

    with _KERNEL_LOCK:
        if not _KERNEL_THREAD or not _KERNEL_THREAD[0].thread.is_alive():
            _KERNEL_THREAD[:] = [_KernelThread()]
        worker = _KERNEL_THREAD[0]
    finished, outcome = worker.submit(call)
    bar = None  # made at the first tick: a check done within 0.1 s shows no bar at all
    shown = 0
    try:
        while not finished.wait(0.1 if show else 0.5):
            if show:
                bar = bar or Progress(total, True)
                count = int(counters.done.sum())
                bar.update(count - shown)
                shown = count
        if bar is not None:
            bar.update(int(counters.done.sum()) - shown)
    except KeyboardInterrupt:
        counters.request_stop()
        while not finished.is_set():  # the kernels leave at their next group
            try:
                finished.wait(0.05)
            except KeyboardInterrupt:
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
    if outcome:
        raise outcome[0]

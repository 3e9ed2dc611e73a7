"""The shared parallel runner of the check's kernels: one kernel thread, thread counts, progress, Ctrl-C, fork.

Every parallel kernel of the check runs through ``run`` on the one kernel
thread, reports its progress in ``Counters`` and leaves at its stop flag.
Every call has flags of its own: Ctrl-C (or ``Counters.request_stop``) in one
thread stops that call's kernels only, and a call still waiting for the kernel
thread is dropped at once, so a check in another thread goes on unhindered.
Imports only the kernels' stop flag (``minnet._kernels``): the evaluators, the judge and the tallies build on it.
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

from .._kernels import stopped  # noqa: F401 (the kernels of the check read it from here)


# ------------------------------------------------------------ progress and the stop flag
class Counters:
    """Finished entries per chunk, and the stop flag the kernels read between groups.

    All live in one int64 array, ``buffer`` (what the kernels receive): the
    chunks' counts, ``TICKS`` ticks, then the flag. A flag in an array of its
    own would be read once, before the loop (the compiler may hoist a load
    that no store in the loop can change: measured, a prange loop over rows
    that read a flag of its own never stopped), and never stop it. Kernels
    read it with ``stopped``; they count finished entries with
    ``buffer[c] += 1``, and a loop that counts no entries opens every turn
    with ``go_on(buffer, c)``, which reads the flag and ticks (the store
    keeps the read in the loop).
    """

    def __init__(self, n_chunks):
        self.n_chunks = n_chunks
        self.buffer = np.zeros(n_chunks + TICKS + 1, np.int64)

    @property
    def done(self):
        """(n_chunks,) entries finished per chunk."""
        return self.buffer[:self.n_chunks]

    @property
    def stop(self):
        """True once a stop was asked for (Ctrl-C)."""
        return bool(self.buffer[-1])

    def request_stop(self):
        self.buffer[-1] = 1


CHUNKS_PER_THREAD = 4  # the most chunks a kernel cuts its work into per thread (``plan.chunks_for``)
TICKS = CHUNKS_PER_THREAD * numba.config.NUMBA_NUM_THREADS  # one slot per chunk any kernel runs


@njit(cache=True)
def tick(counters, c):
    """In a kernel: one turn of chunk c's loop that reads ``stopped`` but counts no entries (c < TICKS: a slot of
    its own, written by no other thread meanwhile; no thread id, which a serial twin cannot ask for)."""
    counters[counters.shape[0] - 2 - c] += 1


@njit(cache=True)
def go_on(counters, c):
    """In a kernel, at the top of a turn of chunk c's loop: False once the stop flag is up (leave the loop), else
    the turn's ``tick`` and True."""
    if stopped(counters):
        return False
    tick(counters, c)
    return True


@njit(cache=True)
def share(c, n, n_chunks):
    """Chunk c's part [start, stop) of n items (rows, units) cut into n_chunks runs of (about) equal length."""
    return c * n // n_chunks, (c + 1) * n // n_chunks


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
class _Job:
    """One call of ``run`` on the kernel thread: queued, then running, then done; or dropped while still queued."""

    QUEUED, RUNNING, DONE, DROPPED = range(4)

    def __init__(self, call):
        self.call, self.state, self.outcome = call, self.QUEUED, []
        self.finished, self.lock = threading.Event(), threading.Lock()

    def start(self):
        """On the kernel thread: True when the job is to run (it was not dropped meanwhile)."""
        with self.lock:
            if self.state == self.DROPPED:
                return False
            self.state = self.RUNNING
            return True

    def drop(self):
        """In the caller's thread: True when the job had not started, and now never will."""
        with self.lock:
            if self.state == self.QUEUED:
                self.state = self.DROPPED
                return True
            return False


class _KernelThread:
    """The one long-lived thread that runs the parallel kernels.

    Numba's OpenMP threads belong to the thread that calls a parallel kernel,
    and two such teams (one idle but still spinning) would compete for the
    cores, so every kernel runs here. A daemon thread fed by a queue: it
    works from any thread, also one that outlives the main script, and a
    forked child makes its own (``os.register_at_fork``). Jobs run one at a
    time, in the order they came; a job dropped while it waits is skipped.
    """

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="minnet-check", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            job = self.jobs.get()
            if job.start():
                try:
                    job.call()
                except BaseException as exc:  # handed to the caller
                    job.outcome.append(exc)
                job.state = job.DONE
            job.finished.set()

    def submit(self, call):
        job = _Job(call)
        self.jobs.put(job)
        return job


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
    finished entries in (of ``total``) and read the stop flag of, or None. The kernels release the GIL,
    so meanwhile this thread moves the bar.

    On Ctrl-C it raises the stop flag of this call's ``counters`` only, waits for
    the kernels to leave at their next group (a work of several kernels
    should look at ``counters.stop`` between them), and raises
    KeyboardInterrupt: the next call starts at once. A call still queued
    behind another thread's (a check running in another thread) is dropped
    and raises at once, without waiting for that one. An exception of
    ``work`` is raised here.
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
    job = worker.submit(call)
    bar = None  # made at the first tick: a check done within 0.1 s shows no bar at all
    shown = 0
    try:
        while not job.finished.wait(0.1 if show else 0.5):
            if show:
                bar = bar or Progress(total, True)
                count = int(counters.done.sum())
                bar.update(count - shown)
                shown = count
        if bar is not None:
            bar.update(int(counters.done.sum()) - shown)
    except KeyboardInterrupt:
        counters.request_stop()
        if not job.drop():  # it runs: its kernels leave at their next group
            while not job.finished.is_set():
                try:
                    job.finished.wait(0.05)
                except KeyboardInterrupt:
                    pass
        raise
    finally:
        if bar is not None:
            bar.close()
    if job.outcome:
        raise job.outcome[0]

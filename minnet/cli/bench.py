"""``minnet bench``: time minnet's gradient check against reference loops (NumPy, and PyTorch and JAX
when installed) on fixed workloads or the user's shape, or a learner's own backprop (--user-code, timed by
``bench_user_code``); rows printed as they finish (a table or JSON), kept on Ctrl-C, and a plot. Imports
``_common``, ``_names`` and ``bench_user_code`` of the CLI; no other command. torch and jax only through baselines."""
import functools
import json
import signal
import sys
import time

import numpy as np

from . import bench_user_code
from ._common import (INTERRUPTED, METHODS, PROG, CliError, exit_status_line, int_list, json_safe, layer_dims,
                      name_list, plot_path, positive_int, writing)
from ._names import BENCH_OUTPUT, DEFAULT_HIDDEN, HIDDEN_CHOICES, SEGMENT_HIDDEN, segment_applies, synthetic_data

# (layer dims, examples); hidden from --hidden, BENCH_OUTPUT output, lambd 0.7, X standard normal.
WORKLOADS = {"digits": ([64, 32, 16, 10], 256), "medium": ([256, 64, 32, 10], 128),
             "mnist": ([784, 128, 64, 10], 64)}
DEFAULT_METHODS = ("auto", "segment", "incremental")  # minnet's methods without --full (--full adds "full")
QUICK_ABOVE = 5_000      # parameters: above this a run without --full estimates the NumPy and JAX loops
SLOW_ABOVE = 20_000      # parameters: above this the slow runs need --full-baselines (with --full too)
ESTIMATE_SAMPLE = 2_000  # entries of the NumPy loop timed to estimate a skipped run
REPEAT_LIMIT = 5.0       # seconds: a run longer than this is not repeated
TORCH_LIMIT = 50_000     # parameters: torch.autograd.gradcheck on mnist exhausted 24 GB in the benchmarks
BENCH_EXAMPLES = 64      # m of a --layers workload unless --examples
PEERS = {"numpy": "numpy loop", "torch": "torch gradcheck", "jax": "jax vmap fd",  # baseline -> its rows' method
         "course": bench_user_code.LOOP}  # --user-code's baseline
NETWORK_ONLY = {"workloads": None, "hidden": DEFAULT_HIDDEN, "methods": None, "baselines": ["numpy"],
                "threads": None}  # the options (and defaults) of the minnet-network benchmarks, not --user-code's
SLOW_SKIPPED = "skipped (slow; add --full-baselines)"
WIDTHS = {"seconds": 12, "entries/s": 9, "verdict": 10, "vs": 8}  # the table's timing columns (rows stream)

HELP = "time the gradient check against NumPy, PyTorch and JAX"
DESCRIPTION = ("The check-speed table: minnet's gradient check against reference loops, on fixed workloads or "
               "your own shape, or (--user-code) on a learner's own NumPy backprop. Each row is printed as it "
               "finishes; Ctrl-C keeps the finished rows.")
EPILOG = f"""\
workloads ({BENCH_OUTPUT} output, lambd 0.7, X standard normal; --hidden picks the hidden activation, {DEFAULT_HIDDEN}
by default, and --examples overrides m):
  digits  [64, 32, 16, 10]    m = 256   (2,778 parameters)
  medium  [256, 64, 32, 10]   m = 128   (18,858 parameters)
  mnist   [784, 128, 64, 10]  m = 64    (109,386 parameters)
--layers N0,...,NL times that one network instead (m = {BENCH_EXAMPLES} unless --examples).

What runs: by default (under 30 s on 2 cores) the three workloads, minnet's
{', '.join(DEFAULT_METHODS)} methods against the NumPy loop, which runs in full up to {QUICK_ABOVE:,}
parameters (digits) and is estimated from {ESTIMATE_SAMPLE:,} random entries above (medium, mnist).
--full is the whole sweep (minutes): minnet's "full" method too, and the slow runs in full up to
{SLOW_ABOVE:,} parameters (digits, medium). --full-baselines runs every slow run in full on every
workload (the full NumPy loop on mnist takes a minute or more, minnet's full method far longer).
--workloads, --methods and --baselines pick the runs themselves.

Baselines: "numpy" is the plain loop (perturb one entry in place, two full forward passes per entry),
"torch" is torch.autograd.gradcheck in float64, "jax" the same centered differences as the NumPy
loop, jit-compiled and vmap-ed over chunks of directions in float64 (torch and jax only if
installed; never required). numpy and torch run on one BLAS / torch thread: the matrices are small,
and on a busy machine extra threads slow the loops down erratically; jax uses XLA's own threads.
Over {SLOW_ABOVE:,} parameters the slow runs (torch, minnet's "full" method) are skipped and the NumPy
and JAX times are estimated, unless --full-baselines. torch is never run over {TORCH_LIMIT:,}
parameters: its gradcheck ran out of 24 GB of memory on mnist.
--threads 1,2,4 times every minnet method at each thread count (the results are bitwise identical).
--json prints one object per row, a line each as it finishes, the whole a JSON list: workload,
layer_dims, parameters, m, hidden, method, threads, jobs, seconds, estimated, entries_per_second,
verdict, note (why a run was skipped) and vs_<baseline> (the baseline's time over the row's).
A baseline's row is printed once the workload's baselines have all run (its ratios need them).
Ctrl-C stops the run in progress: the rows finished so far are printed (and closed as a JSON
list with --json), the plot drawn from them, and minnet exits with status {INTERRUPTED}.

--user-code times minnet.check_gradients on a learner's own NumPy backprop instead: the course's
L-layer network (LINEAR->RELU x (L-1)->LINEAR->SIGMOID, as minnet/course.py writes it), layers
{','.join(map(str, bench_user_code.LAYERS))} and m = {bench_user_code.EXAMPLES} on cat-like data unless --layers (ending in 1) and --examples,
at each --jobs count (default 1, 2 and every core; rows "minnet n_jobs=N", column jobs), beside
the course's gradient_check_n loop ("course loop", vs_course): a fresh copy of theta and two
forward passes per entry, estimated from {ESTIMATE_SAMPLE:,} entries over {SLOW_ABOVE:,} parameters unless
--full-baselines. Both run BLAS on one thread; on the default network it takes a few minutes.

examples:
  minnet bench
  minnet bench --full
  minnet bench --workloads digits --baselines numpy,torch,jax
  minnet bench --layers 784,1024,1024,10 --examples 64 --methods auto,incremental --threads 1,2
  minnet bench --layers 256,64,10 --hidden tanh --baselines none --json > bench.json
  minnet bench --workloads mnist --full-baselines --plot bench.png
  minnet bench --user-code --jobs 1,2,4 --json > user_code.json

""" + exit_status_line(extra="Ctrl-C keeps the rows finished so far.")


def add_arguments(parser):
    p = parser
    p.add_argument("--user-code", action="store_true",
                   help="time check_gradients on a learner's own NumPy backprop (minnet/course.py) at each --jobs "
                        "count, beside the course's gradient_check_n loop")
    p.add_argument("--jobs", type=bench_user_code.jobs_list, default=None, metavar="N,...",
                   help="with --user-code: worker-process counts, one row each (default 1, 2 and every core; -1 "
                        "is every core: write --jobs=-1,... when the list starts with it)")
    p.add_argument("--workloads", type=name_list(tuple(WORKLOADS), "workload"), default=None,
                   metavar="W,...", help="digits, medium, mnist (default: all, unless --layers)")
    p.add_argument("--layers", type=layer_dims, default=None, metavar="N0,N1,...,NL",
                   help="time this one network instead: all layer sizes, input to output (softmax output, "
                        "so NL >= 2; with --user-code the course's sigmoid output, so NL = 1)")
    p.add_argument("--examples", type=positive_int, default=None, metavar="M",
                   help=f"examples m (default {BENCH_EXAMPLES} with --layers, else the workload's own; "
                        f"{bench_user_code.EXAMPLES} with --user-code)")
    p.add_argument("--hidden", choices=HIDDEN_CHOICES, default=None,
                   help=f"hidden activation (default {DEFAULT_HIDDEN})")
    p.add_argument("--methods", type=name_list(METHODS, "method"), default=None, metavar="M,...",
                   help=f"minnet methods to time: auto, segment ({SEGMENT_HIDDEN} only), incremental, full "
                        f"(default: {', '.join(DEFAULT_METHODS)}; all four with --full)")
    p.add_argument("--baselines", type=name_list(("numpy", "torch", "jax", "none"), "baseline"),
                   default=None, metavar="B,...", help="numpy, torch, jax or none (default numpy)")
    p.add_argument("--full", action="store_true",
                   help=f"the whole sweep (minutes): minnet's full method too, and the NumPy loop in full up to "
                        f"{SLOW_ABOVE:,} parameters (without it: up to {QUICK_ABOVE:,})")
    p.add_argument("--full-baselines", action="store_true",
                   help="run the slow runs in full on every workload (minutes on mnist)")
    p.add_argument("--threads", type=thread_counts, default=None, metavar="N,...",
                   help="Numba thread counts for minnet, one row each, e.g. 1,2,4 (default: Numba's)")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="R",
                   help="time minnet R times and keep the best (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print the rows, or an error, as JSON (a list of objects, one line each as it finishes; "
                        "NaN and inf become null)")
    p.add_argument("--plot", metavar="PNG", help="save time against parameters for each method and peer (log-log)")
    p.add_argument("--quiet", action="store_true", help="no status line on stderr")


def _rate(n, seconds):
    r = n / seconds if seconds > 0 else float("inf")
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if r >= scale:
            return f"{r / scale:.3g}{unit}"
    return f"{r:.3g}"


def _workload(dims, m, hidden, seed=0):
    """A bench workload: BENCH_OUTPUT output, lambd 0.7, X standard normal (n_0, m), labels to suit."""
    from .. import Network
    net = Network(dims, hidden=hidden, output=BENCH_OUTPUT, lambd=0.7, seed=seed)
    X, Y = synthetic_data(dims, BENCH_OUTPUT, m, seed=seed)
    return net, X, Y


def _best_time(run, repeat):
    best, result = float("inf"), None
    for k in range(repeat):
        t = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - t
        best = min(best, seconds)
        if seconds > REPEAT_LIMIT:
            break
    return best, result


def thread_counts(text):
    """'1,2,4' -> [1, 2, 4]: the Numba thread counts that ``minnet bench --threads`` sweeps."""
    return list(dict.fromkeys(int_list(text, "threads")))


def _bench_workloads(args):
    """[(name, layer_dims, m)]: the one --layers workload, or the named ones (--examples overrides m)."""
    if args.layers is not None:
        if args.workloads is not None:
            raise CliError("--workloads and --layers cannot be combined: --layers defines the one workload to time")
        if args.layers[-1] < 2:
            raise CliError(f"--layers {','.join(map(str, args.layers))}: the bench's {BENCH_OUTPUT} output needs at "
                           f"least 2 units")
        return [("custom", list(args.layers), args.examples or BENCH_EXAMPLES)]
    return [(name, WORKLOADS[name][0], args.examples or WORKLOADS[name][1])
            for name in args.workloads or list(WORKLOADS)]


def _about(name, layer_dims, m, hidden):
    """The first fields of a workload's rows: its name, layer dims, parameters, m and hidden activation."""
    n = sum(a * b + a for a, b in zip(layer_dims[1:], layer_dims[:-1]))
    return {"workload": name, "layer_dims": list(layer_dims), "parameters": n, "m": m, "hidden": hidden}


def _bench_row(about, method, threads, seconds=None, estimated=False, verdict=None, note=None, jobs=None):
    """One row of ``minnet bench``: what ran, on what (``_about``), and how long it took (None: not run, see note)."""
    n = about["parameters"]
    rate = None if seconds is None else n / seconds if seconds > 0 else float("inf")
    return dict(about, method=method, threads=threads, jobs=jobs, seconds=seconds, estimated=estimated,
                entries_per_second=rate, verdict=verdict, note=note)


def _bench_peers(args, wanted, name, net, X, Y, status):
    """Rows of the reference checks on one workload, yielded as each finishes (they run once, on one thread
    where they can)."""
    from .. import baselines, difference
    n, m, hidden = net.layout.size, X.shape[1], args.hidden
    slow_ok = args.full_baselines or n <= SLOW_ABOVE
    whole = args.full_baselines or n <= (SLOW_ABOVE if args.full else min(QUICK_ABOVE, SLOW_ABOVE))
    sample = np.random.default_rng(0).choice(n, size=min(ESTIMATE_SAMPLE, n), replace=False)
    for peer in wanted:
        label = PEERS[peer]
        row = functools.partial(_bench_row, _about(name, net.layer_dims, m, hidden), label,
                                None if peer == "jax" else 1)
        if peer == "torch" and n > TORCH_LIMIT:
            yield row(note=f"skipped (over {TORCH_LIMIT:,} parameters torch's gradcheck runs out of memory)")
            continue
        if peer == "torch" and not slow_ok:
            yield row(note=SLOW_SKIPPED)
            continue
        if peer == "numpy":
            def run(indices=None):
                return baselines.numpy_loop_check(net, X, Y, indices=indices, blas_threads=1)
        elif peer == "jax":
            chunk = baselines.jax_chunk(net.layer_dims, m)
            baselines.jax_fd_check(net, X, Y, indices=np.arange(chunk), chunk=chunk)  # compile before timing

            def run(indices=None):
                return baselines.jax_fd_check(net, X, Y, indices=indices, chunk=chunk)
        else:
            status.show(f"{name}: {label} over {n:,} entries ...")
            seconds, ok = _best_time(lambda: baselines.torch_gradcheck(net, X, Y, torch_threads=1), 1)
            yield row(seconds=seconds, verdict="passed" if ok else "failed")
            continue
        if whole:
            status.show(f"{name}: {label} over {n:,} entries ...")
            seconds, approx = _best_time(run, 1)
            yield row(seconds=seconds, verdict=_verdict_of(difference(approx, _backprop(net, X, Y))))
        else:  # every entry costs the same two forward passes: time a sample and scale up
            status.show(f"{name}: {label} on {sample.size:,} of {n:,} entries ...")
            t = time.perf_counter()
            run(sample)
            yield row(seconds=(time.perf_counter() - t) * n / sample.size, estimated=True)


def run(args):
    """Time the baselines and minnet's methods on every workload, printing each row as it finishes; the plot
    at the end. Returns 0, or INTERRUPTED after Ctrl-C (the finished rows printed and plotted)."""
    if args.user_code:
        return _run_user_code(args)
    if args.jobs is not None:
        raise CliError("--jobs applies to --user-code (worker processes of check_gradients); minnet's own "
                       "networks run on Numba threads (--threads)")
    for name, default in NETWORK_ONLY.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.methods is None:
        args.methods = list(METHODS if args.full else DEFAULT_METHODS)
    threads = _thread_counts_here(args.threads)
    wanted = [] if args.baselines == ["none"] else list(args.baselines)
    if "none" in wanted:
        raise CliError("--baselines none cannot be combined with other baselines")
    plot = plot_path(args.plot, "--plot")
    planned = _bench_workloads(args)
    wanted, methods = _what_runs(args, wanted)
    _require_memory(planned, methods, threads, args.hidden)
    if not args.json:
        print(f"Gradient-check speed: {args.hidden} hidden, {BENCH_OUTPUT} output, lambd 0.7, X standard normal; "
              f"minnet on {', '.join(map(str, threads))} Numba thread(s), best of {args.repeat} run(s) (runs over "
              f"{REPEAT_LIMIT:g} s are not repeated); baselines run once, numpy and torch on one thread.",
              flush=True)
    labels = [PEERS[b] for b in wanted] + [f"minnet {method}" for method in methods]
    status = _Status(enabled=sys.stderr.isatty() and not args.quiet)
    rows = _Rows(args, wanted, [_about(name, dims, m, args.hidden) for name, dims, m in planned], labels, status)

    def produce():
        _warm_up(methods, threads[0], args.hidden)
        rows.begin()
        for name, dims, m in planned:
            net, X, Y = _workload(dims, m, args.hidden)
            for row in _bench_peers(args, wanted, name, net, X, Y, status):
                rows.hold(row)  # printed with the workload's other baselines: their ratios need them all
            rows.release()
            for row in _minnet_rows(args, name, net, X, Y, threads=threads, methods=methods, status=status):
                rows.add(row)

    return _stream(rows, plot, produce)


def _require_memory(planned, methods, threads, hidden):
    """Refuse, before any data is made, a workload whose data and check do not fit in the memory available."""
    from .. import _memory
    for name, dims, m in planned:
        need = _memory.data_bytes(dims, m) + max(
            _memory.check_bytes(dims, m, method=method, threads=max(threads), kinks=segment_applies(hidden))
            for method in methods or ["auto"])
        _memory.require(need, what=f"the {name} workload ({','.join(map(str, dims))}, m = {m:,})")


def _warm_up(methods, threads, hidden):
    """Compile (or load from the cache) every kernel first, so that no timing includes it."""
    from .. import gradient_check
    tiny, Xt, Yt = _workload([3, 4, 3], 5, hidden)
    for method in methods:
        gradient_check(tiny, Xt, Yt, method=method, threads=threads, progress=False)


def _stream(rows, plot, produce):
    """produce() adds the rows, each printed as it finishes; then ``_finish``, or on Ctrl-C ``_interrupted`` (the
    finished rows kept); any other failure closes the table before it is raised."""
    try:
        produce()
    except KeyboardInterrupt:
        return _interrupted(rows, plot)
    except BaseException:
        rows.close(failed=True)
        raise
    return _finish(rows, plot)


def _finish(rows, plot):
    """After the last row: the table's footnote or the end of the JSON list, and the plot; 0."""
    rows.close()
    if plot:
        _plot(rows, plot)
    return 0


def _plot(rows, plot):
    from .. import plots
    with writing(plot, "--plot"):
        plots.plot_bench(rows.rows, path=plot)
    if not rows.json:
        print(f"\nPlot: {plot}", flush=True)


def _interrupted(rows, plot):
    """Ctrl-C: the finished rows printed (the JSON list closed) and plotted, one line on stderr; INTERRUPTED.
    A second Ctrl-C meanwhile is ignored, so that it cannot cut the output short."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to mask
        previous = None
    try:
        rows.status.show("")
        rows.close()
        kept = f"the {len(rows.rows)} finished row(s) are kept" if rows.rows else "no row had finished"
        if plot and any(r["seconds"] is not None for r in rows.rows):
            _plot(rows, plot)
            kept += f", and plotted in {plot}"
        elif plot:
            kept += "; nothing to plot"
        print(f"{PROG}: interrupted: {kept}", file=sys.stderr, flush=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return INTERRUPTED


def _run_user_code(args):
    """``--user-code``: check_gradients on the course's network at each --jobs count, and the course's loop,
    printing each row as it finishes. Returns 0, or INTERRUPTED after Ctrl-C (the finished rows kept)."""
    given = [name for name in NETWORK_ONLY if getattr(args, name) is not None] + (["full"] if args.full else [])
    if given:
        raise CliError(f"--{given[0]} applies to minnet's own networks, not to --user-code (which takes --layers, "
                       f"--examples, --jobs, --repeat and --full-baselines)")
    dims = list(args.layers) if args.layers is not None else bench_user_code.LAYERS
    if dims[-1] != 1:
        raise CliError(f"--layers {','.join(map(str, dims))}: the course's network has one sigmoid output unit; "
                       f"end --layers with 1")
    m = args.examples or bench_user_code.EXAMPLES
    jobs = args.jobs or bench_user_code.default_jobs()
    plot = plot_path(args.plot, "--plot")
    if not args.json:
        print(f"Gradient-check speed of a learner's own NumPy backprop (minnet/course.py, layers "
              f"{','.join(map(str, dims))}, m = {m}): minnet.check_gradients at n_jobs {', '.join(map(str, jobs))}, "
              f"best of {args.repeat} run(s) (runs over {REPEAT_LIMIT:g} s are not repeated), against the course's "
              f"loop, run once; BLAS on one thread.", flush=True)
    status = _Status(enabled=sys.stderr.isatty() and not args.quiet)
    about = _about(bench_user_code.WORKLOAD, dims, m, None)
    labels = [bench_user_code.LOOP] + [f"minnet n_jobs={count}" for count in bench_user_code.job_counts(jobs)]
    rows = _Rows(args, ["course"], [about], labels, status)

    def produce():
        rows.begin()
        for timing in bench_user_code.timings(dims, m, jobs=jobs, repeat=args.repeat, full=args.full_baselines,
                                              sample=ESTIMATE_SAMPLE, slow_above=SLOW_ABOVE, best_time=_best_time,
                                              status=status.show):
            (rows.hold if timing["method"] == bench_user_code.LOOP else rows.add)(_bench_row(about, **timing))

    return _stream(rows, plot, produce)


def _thread_counts_here(wanted):
    """--threads checked against Numba's thread pool; Numba's current count when not given."""
    import numba
    limit = numba.config.NUMBA_NUM_THREADS
    threads = wanted or [numba.get_num_threads()]
    for t in threads:
        if t > limit:
            raise CliError(f"--threads {t}: each thread count must be <= {limit} (Numba's thread pool here, "
                           f"NUMBA_NUM_THREADS)")
    return threads


def _what_runs(args, wanted):
    """(baselines, minnet methods) that can run here; says which are skipped and why."""
    from .. import baselines
    say = functools.partial(print, file=sys.stderr if args.json else sys.stdout, flush=True)  # JSON keeps stdout
    for peer, available, what in (("torch", baselines.torch_available, "PyTorch"),
                                  ("jax", baselines.jax_available, "JAX")):
        if peer in wanted and not available():
            say(f"{peer} baseline: skipped, {what} is not installed (it is optional: pip install {peer})")
            wanted.remove(peer)
    methods = list(args.methods)
    if "segment" in methods and not segment_applies(args.hidden):
        say(f"minnet segment: skipped, it applies to {SEGMENT_HIDDEN} hidden layers only (--hidden {args.hidden})")
        methods.remove("segment")
    return wanted, methods


def _minnet_rows(args, name, net, X, Y, *, threads, methods, status):
    """Rows of minnet's methods on one workload, one per thread count, yielded as each finishes.

    Over SLOW_ABOVE parameters (unless --full-baselines) the "full" method gets one row that says it was skipped.
    """
    from .. import gradient_check
    n, m = net.layout.size, X.shape[1]
    slow_ok = args.full_baselines or n <= SLOW_ABOVE
    about = _about(name, net.layer_dims, m, args.hidden)
    for t in threads:
        for method in methods:
            if method == "full" and not slow_ok:
                if t == threads[0]:
                    yield _bench_row(about, "minnet full", None, note=SLOW_SKIPPED)
                continue
            status.show(f"{name}: minnet {method} on {t} thread(s) over {n:,} entries ...")
            seconds, report = _best_time(
                lambda: gradient_check(net, X, Y, method=method, threads=t, progress=False), args.repeat)
            yield _bench_row(about, f"minnet {method}", t, seconds=seconds, verdict=report.verdict)


class _Rows:
    """The rows as they finish: each printed and flushed at once, a line of the table or one object of the
    JSON list (which ``close`` ends), and kept (``rows``) for the plot.

    A baseline's row waits in ``held`` until the workload's other baselines have run (``release``, or the
    next ``add``), so that its ratios against them are known when it is printed; so do minnet's rows,
    which come after. The table's columns are sized from the plan up front (``abouts``, ``labels``).
    """

    def __init__(self, args, wanted, abouts, labels, status):
        self.json, self.wanted, self.status = args.json, wanted, status
        self.in_full = ("--full-baselines" if args.user_code else
                        f"--full (up to {SLOW_ABOVE:,} parameters) or --full-baselines (on every workload)")
        self.rows, self.held, self.base, self.rough = [], [], {}, set()
        self.open = self.closed = False
        names = ["workload", "parameters", "m", "method", "threads"]
        cells = [[a["workload"], f"{a['parameters']:,}", str(a["m"])] for a in abouts]
        self.widths = [max([len(names[k])] + [len(c[k]) for c in cells]) for k in range(3)]
        self.widths += [max(len(label) for label in labels + ["method"]), len("threads"), WIDTHS["seconds"],
                        WIDTHS["entries/s"], WIDTHS["verdict"]] + [max(WIDTHS["vs"], 3 + len(b)) for b in wanted]
        self.head = names + ["seconds", "entries/s", "verdict"] + [f"vs {b}" for b in wanted]

    def begin(self):
        """The table's header (JSON opens its list with the first row)."""
        if not self.json:
            print()
            print(self._line(self.head).rstrip())
            print("  ".join("-" * w for w in self.widths), flush=True)

    def hold(self, row):
        """A baseline's row: its time is the workload's base for the ratios; printed by ``release``."""
        if row["seconds"] is not None:
            peer = next(b for b in self.wanted if PEERS[b] == row["method"])
            self.base[(row["workload"], peer)] = row["seconds"]
            if row["estimated"]:
                self.rough.add((row["workload"], peer))
        self.held.append(row)

    def release(self):
        held, self.held = self.held, []
        for row in held:
            self._print(row)

    def add(self, row):
        self.release()
        self._print(row)

    def close(self, *, failed=False):
        """The held rows, then the end of the JSON list or the table's footnote; once."""
        if self.closed:
            return
        self.closed = True
        if failed:  # an error on its way to the caller: end the JSON list if it was begun, and no more
            try:
                if self.json and self.open:
                    print("]", flush=True)
            except OSError:  # a closed pipe, say: the error that is raised says so
                pass
            return
        self.release()
        if self.json:
            print("]" if self.open else "[]", flush=True)
        elif any(r["estimated"] for r in self.rows):
            print(f"\n~ : timed on {ESTIMATE_SAMPLE:,} random entries and scaled up (every entry costs the same "
                  f"two forward passes); {self.in_full} runs it in full.", flush=True)

    def _print(self, row):
        for b in self.wanted:
            base, seconds = self.base.get((row["workload"], b)), row["seconds"]
            row[f"vs_{b}"] = None if base is None or seconds is None else base / seconds if seconds > 0 else \
                float("inf")
        self.status.show("")
        if self.json:
            text = ("[ " if not self.open else ", ") + json.dumps(json_safe(row), allow_nan=False)
            self.open = True
        else:
            text = self._table_line(row)
        self.rows.append(row)
        print(text, flush=True)

    def _table_line(self, row):
        first = [row["workload"], f"{row['parameters']:,}", str(row["m"]), row["method"],
                 "-" if row["threads"] is None else str(row["threads"])]
        if row["seconds"] is None:  # a skipped run: its reason spans the timing columns
            return self._line(first) + "  " + row["note"]
        seconds = f"~{row['seconds']:.3g} (est.)" if row["estimated"] else f"{row['seconds']:.3g}"
        ratios = []
        for b in self.wanted:
            ratio = row[f"vs_{b}"]
            rough = "~" if row["estimated"] or (row["workload"], b) in self.rough else ""
            ratios.append("-" if ratio is None else f"{rough}{ratio:,.0f}x" if ratio >= 1000 else
                          f"{rough}{ratio:.3g}x")
        return self._line(first + [seconds, _rate(row["parameters"], row["seconds"]), row["verdict"] or "-"] +
                          ratios).rstrip()

    def _line(self, cells):
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, self.widths))


class _Status:
    """A one-line, self-erasing status on a terminal's stderr (nothing otherwise)."""

    def __init__(self, enabled):
        self.enabled = enabled

    def show(self, text):
        if self.enabled:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()


def _backprop(net, X, Y):
    from .. import flatten_gradients
    return flatten_gradients(net.gradients(X, Y), net.layout)


def _verdict_of(diff, thresholds=(1e-7, 1e-3)):
    return "correct" if diff < thresholds[0] else "suspicious" if diff < thresholds[1] else "bug"

"""``minnet bench``: time minnet's gradient check against reference loops (NumPy, and PyTorch and JAX
when installed) on fixed workloads or the user's shape, or a learner's own backprop (--user-code, timed by
``bench_user_code``); a table, JSON rows or a plot. Imports ``_common``, ``_names`` and ``bench_user_code``
of the CLI; no other command. torch and jax only through baselines."""
import functools
import json
import sys
import time

import numpy as np

from . import bench_user_code
from ._common import (METHODS, CliError, int_list, json_safe, layer_dims, name_list, plot_path, positive_int)
from ._names import BENCH_OUTPUT, DEFAULT_HIDDEN, HIDDEN_CHOICES, SEGMENT_HIDDEN, segment_applies, synthetic_data

# (layer dims, examples); hidden from --hidden, BENCH_OUTPUT output, lambd 0.7, X standard normal.
WORKLOADS = {"digits": ([64, 32, 16, 10], 256), "medium": ([256, 64, 32, 10], 128),
             "mnist": ([784, 128, 64, 10], 64)}
SLOW_ABOVE = 20_000      # parameters: above this the slow runs need --full-baselines
ESTIMATE_SAMPLE = 2_000  # entries of the NumPy loop timed to estimate a skipped run
REPEAT_LIMIT = 5.0       # seconds: a run longer than this is not repeated
TORCH_LIMIT = 50_000     # parameters: torch.autograd.gradcheck on mnist exhausted 24 GB in the benchmarks
BENCH_EXAMPLES = 64      # m of a --layers workload unless --examples
PEERS = {"numpy": "numpy loop", "torch": "torch gradcheck", "jax": "jax vmap fd",  # baseline -> its rows' method
         "course": bench_user_code.LOOP}  # --user-code's baseline
NETWORK_ONLY = {"workloads": None, "hidden": DEFAULT_HIDDEN, "methods": list(METHODS), "baselines": ["numpy"],
                "threads": None}  # the options (and defaults) of the minnet-network benchmarks, not --user-code's
SLOW_SKIPPED = "skipped (slow; add --full-baselines)"

HELP = "time the gradient check against NumPy, PyTorch and JAX"
DESCRIPTION = ("The check-speed table: minnet's gradient check against reference loops, on fixed workloads or "
               "your own shape, or (--user-code) on a learner's own NumPy backprop.")
EPILOG = f"""\
workloads ({BENCH_OUTPUT} output, lambd 0.7, X standard normal; --hidden picks the hidden activation, {DEFAULT_HIDDEN}
by default, and --examples overrides m):
  digits  [64, 32, 16, 10]    m = 256   (2,778 parameters)
  medium  [256, 64, 32, 10]   m = 128   (18,858 parameters)
  mnist   [784, 128, 64, 10]  m = 64    (109,386 parameters)
--layers N0,...,NL times that one network instead (m = {BENCH_EXAMPLES} unless --examples).

Baselines: "numpy" is the plain loop (perturb one entry in place, two full forward passes per entry),
"torch" is torch.autograd.gradcheck in float64, "jax" the same centered differences as the NumPy
loop, jit-compiled and vmap-ed over chunks of directions in float64 (torch and jax only if
installed; never required). numpy and torch run on one BLAS / torch thread: the matrices are small,
and on a busy machine extra threads slow the loops down erratically; jax uses XLA's own threads.
On workloads over {SLOW_ABOVE:,} parameters the slow runs (torch, minnet's "full" method) are skipped and
the NumPy and JAX times are estimated from {ESTIMATE_SAMPLE:,} entries, unless --full-baselines
(the full NumPy loop on mnist takes a minute or more). torch is never run over {TORCH_LIMIT:,}
parameters: its gradcheck ran out of 24 GB of memory on mnist.
--threads 1,2,4 times every minnet method at each thread count (the results are bitwise identical).
--json prints one object per row: workload, layer_dims, parameters, m, hidden, method, threads, jobs,
seconds, estimated, entries_per_second, verdict, note (why a run was skipped) and vs_<baseline>
(the baseline's time over the row's).

--user-code times minnet.check_gradients on a learner's own NumPy backprop instead: the course's
L-layer network (LINEAR->RELU x (L-1)->LINEAR->SIGMOID, as minnet/course.py writes it), layers
{','.join(map(str, bench_user_code.LAYERS))} and m = {bench_user_code.EXAMPLES} on cat-like data unless --layers (ending in 1) and --examples,
at each --jobs count (default 1, 2 and every core; rows "minnet n_jobs=N", column jobs), beside
the course's gradient_check_n loop ("course loop", vs_course): a fresh copy of theta and two
forward passes per entry, estimated from {ESTIMATE_SAMPLE:,} entries over {SLOW_ABOVE:,} parameters unless
--full-baselines. Both run BLAS on one thread; on the default network it takes a few minutes.

examples:
  minnet bench
  minnet bench --workloads digits --baselines numpy,torch,jax
  minnet bench --layers 784,1024,1024,10 --examples 64 --methods auto,incremental --threads 1,2
  minnet bench --layers 256,64,10 --hidden tanh --baselines none --json > bench.json
  minnet bench --workloads mnist --full-baselines --plot bench.png
  minnet bench --user-code --jobs 1,2,4 --json > user_code.json
"""


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
                        "(default: all)")
    p.add_argument("--baselines", type=name_list(("numpy", "torch", "jax", "none"), "baseline"),
                   default=None, metavar="B,...", help="numpy, torch, jax or none (default numpy)")
    p.add_argument("--full-baselines", action="store_true",
                   help="run the slow runs in full on every workload (minutes on mnist)")
    p.add_argument("--threads", type=thread_counts, default=None, metavar="N,...",
                   help="Numba thread counts for minnet, one row each, e.g. 1,2,4 (default: Numba's)")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="R",
                   help="time minnet R times and keep the best (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print the rows, or an error, as JSON (a list of objects; NaN and inf become null)")
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
    """Rows of the reference checks on one workload (they run once, on one thread where they can)."""
    from .. import baselines, difference
    n, m, hidden = net.layout.size, X.shape[1], args.hidden
    slow_ok = args.full_baselines or n <= SLOW_ABOVE
    sample = np.random.default_rng(0).choice(n, size=min(ESTIMATE_SAMPLE, n), replace=False)
    rows = []
    for peer in wanted:
        label = PEERS[peer]
        row = functools.partial(_bench_row, _about(name, net.layer_dims, m, hidden), label,
                                None if peer == "jax" else 1)
        if peer == "torch" and n > TORCH_LIMIT:
            rows.append(row(note=f"skipped (over {TORCH_LIMIT:,} parameters torch's gradcheck runs out of memory)"))
            continue
        if peer == "torch" and not slow_ok:
            rows.append(row(note=SLOW_SKIPPED))
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
            rows.append(row(seconds=seconds, verdict="passed" if ok else "failed"))
            continue
        if slow_ok:
            status.show(f"{name}: {label} over {n:,} entries ...")
            seconds, approx = _best_time(run, 1)
            rows.append(row(seconds=seconds, verdict=_verdict_of(difference(approx, _backprop(net, X, Y)))))
        else:  # every entry costs the same two forward passes: time a sample and scale up
            status.show(f"{name}: {label} on {sample.size:,} of {n:,} entries ...")
            t = time.perf_counter()
            run(sample)
            rows.append(row(seconds=(time.perf_counter() - t) * n / sample.size, estimated=True))
    return rows


def run(args):
    """Time the baselines and every minnet method on every workload; print the table or JSON, plot; 0."""
    from .. import gradient_check
    if args.user_code:
        return _run_user_code(args)
    if args.jobs is not None:
        raise CliError("--jobs applies to --user-code (worker processes of check_gradients); minnet's own "
                       "networks run on Numba threads (--threads)")
    for name, default in NETWORK_ONLY.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    threads = _thread_counts_here(args.threads)
    wanted = [] if args.baselines == ["none"] else list(args.baselines)
    if "none" in wanted:
        raise CliError("--baselines none cannot be combined with other baselines")
    plot = plot_path(args.plot, "--plot")
    workloads = [(name, m, *_workload(dims, m, args.hidden)) for name, dims, m in _bench_workloads(args)]
    wanted, methods = _what_runs(args, wanted)
    if not args.json:
        print(f"Gradient-check speed: {args.hidden} hidden, {BENCH_OUTPUT} output, lambd 0.7, X standard normal; "
              f"minnet on {', '.join(map(str, threads))} Numba thread(s), best of {args.repeat} run(s) (runs over "
              f"{REPEAT_LIMIT:g} s are not repeated); baselines run once, numpy and torch on one thread.",
              flush=True)

    # Compile (or load from the cache) every kernel first so that no timing includes it.
    tiny, Xt, Yt = _workload([3, 4, 3], 5, args.hidden)
    for method in methods:
        gradient_check(tiny, Xt, Yt, method=method, threads=threads[0], progress=False)

    rows = []
    status = _Status(enabled=sys.stderr.isatty() and not args.quiet)
    for name, _, net, X, Y in workloads:
        found = _bench_peers(args, wanted, name, net, X, Y, status)
        found += _minnet_rows(args, name, net, X, Y, threads=threads, methods=methods, status=status)
        _ratios(found, wanted)
        rows.extend(found)
    status.show("")
    _show(args, rows, wanted, plot)
    return 0


def _show(args, rows, wanted, plot):
    """The rows as JSON or a table (ratios against the ``wanted`` baselines), and their plot if asked for."""
    if args.json:
        print(json.dumps(json_safe(rows), indent=2, allow_nan=False))
    else:
        print()
        print(_bench_table(rows, wanted))
        if any(r["estimated"] for r in rows):
            print(f"\n~ : timed on {ESTIMATE_SAMPLE:,} random entries and scaled up (every entry costs the same "
                  f"two forward passes); --full-baselines runs it in full.")
    if plot:
        from .. import plots
        plots.plot_bench(rows, path=plot)
        if not args.json:
            print(f"\nPlot: {plot}")


def _run_user_code(args):
    """``--user-code``: check_gradients on the course's network at each --jobs count, and the course's loop; 0."""
    given = [name for name in NETWORK_ONLY if getattr(args, name) is not None]
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
    found = bench_user_code.timings(dims, m, jobs=jobs, repeat=args.repeat, full=args.full_baselines,
                                    sample=ESTIMATE_SAMPLE, slow_above=SLOW_ABOVE, best_time=_best_time,
                                    status=status.show)
    about = _about(bench_user_code.WORKLOAD, dims, m, None)
    rows = [_bench_row(about, **timing) for timing in found]
    _ratios(rows, ["course"])
    status.show("")
    _show(args, rows, ["course"], plot)
    return 0


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
    """Rows of minnet's methods on one workload, one per thread count.

    Over SLOW_ABOVE parameters (unless --full-baselines) the "full" method gets one row that says it was skipped.
    """
    from .. import gradient_check
    n, m = net.layout.size, X.shape[1]
    slow_ok = args.full_baselines or n <= SLOW_ABOVE
    about = _about(name, net.layer_dims, m, args.hidden)
    rows = []
    for t in threads:
        for method in methods:
            if method == "full" and not slow_ok:
                if t == threads[0]:
                    rows.append(_bench_row(about, "minnet full", None, note=SLOW_SKIPPED))
                continue
            status.show(f"{name}: minnet {method} on {t} thread(s) over {n:,} entries ...")
            seconds, report = _best_time(
                lambda: gradient_check(net, X, Y, method=method, threads=t, progress=False), args.repeat)
            rows.append(_bench_row(about, f"minnet {method}", t, seconds=seconds, verdict=report.verdict))
    return rows


def _ratios(rows, wanted):
    """Each row's speed-up against each baseline on the same workload: "vs_numpy" = numpy's time / its time."""
    base = {b: next((r for r in rows if r["method"] == PEERS[b] and r["seconds"] is not None), None) for b in wanted}
    for r in rows:
        for b in wanted:
            r[f"vs_{b}"] = None
            if base[b] is not None and r["seconds"] is not None:
                r[f"vs_{b}"] = base[b]["seconds"] / r["seconds"] if r["seconds"] > 0 else float("inf")


def _bench_table(rows, wanted):
    head = ["workload", "parameters", "m", "method", "threads", "seconds", "entries/s", "verdict"] + \
        [f"vs {b}" for b in wanted]
    estimated = {r["workload"]: set() for r in rows}
    for r in rows:
        if r["estimated"]:
            estimated[r["workload"]].add(r["method"])
    cells = []
    for r in rows:
        first = [r["workload"], f"{r['parameters']:,}", str(r["m"]), r["method"],
                 "-" if r["threads"] is None else str(r["threads"])]
        if r["seconds"] is None:
            cells.append((first, r["note"]))
            continue
        seconds = f"~{r['seconds']:.3g} (est.)" if r["estimated"] else f"{r['seconds']:.3g}"
        ratios = []
        for b in wanted:
            ratio = r[f"vs_{b}"]
            rough = "~" if r["estimated"] or PEERS[b] in estimated[r["workload"]] else ""
            ratios.append("-" if ratio is None else f"{rough}{ratio:,.0f}x" if ratio >= 1000 else f"{rough}{ratio:.3g}x")
        cells.append((first + [seconds, _rate(r["parameters"], r["seconds"]), r["verdict"] or "-"] + ratios, None))
    widths = [max([len(head[k])] + [len(c[k]) for c, note in cells if note is None or k < 5])
              for k in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    for c, note in cells:
        if note is None:
            lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
        else:  # a skipped run: its reason spans the timing columns
            lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths[:5])) + "  " + note)
    return "\n".join(lines)


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

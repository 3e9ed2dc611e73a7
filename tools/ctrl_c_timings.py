"""How long Ctrl-C takes: SIGINT to a running ``minnet check`` or training run, at several moments, timed to exit.

    python tools/ctrl_c_timings.py [--layers 784,4096,4096,10] [--examples 64] [--delays 2,5,10,20,40]

For each job (the check's auto (tanh: incremental; relu: segment), incremental and full methods through the
command line, and ``Network.fit``
in mini-batches through the Python API) and each delay, a fresh process starts the job, gets SIGINT after
that many seconds, and the table shows the seconds from the signal to the process's exit, its exit status,
and the last line it printed on stderr. The delays fall in different phases of a wide network's check
(the forward pass, backprop, the first pass over the entries, the referee); which phase is reached when
depends on the machine, so the table says which delays the job outlived.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

FIT = """
import sys, numpy as np, minnet
dims = [int(d) for d in sys.argv[1].split(",")]
rng = np.random.default_rng(0)
X, labels = rng.random((dims[0], 4096)), rng.integers(0, dims[-1], 4096)
net = minnet.Network(dims, output="softmax", seed=0)
print("ready", file=sys.stderr, flush=True)
try:
    net.fit(X, labels, epochs=100, batch_size=256)
except KeyboardInterrupt as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(130)
"""


def jobs(layers, examples):
    cli = [sys.executable, "-m", "minnet", "check", "--layers", layers, "--examples", str(examples), "--quiet"]
    return {
        "check auto": cli + ["--hidden", "tanh"],
        "check relu auto": cli + ["--hidden", "relu"],
        "check incremental": cli + ["--hidden", "tanh", "--method", "incremental"],
        "check full": cli + ["--method", "full"],
        "fit (batches of 256)": [sys.executable, "-c", FIT, layers],
    }


def one(command, delay):
    """(seconds from SIGINT to exit or None when it finished first, exit status, last stderr line)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        process.wait(delay)
        finished_first = True
    except subprocess.TimeoutExpired:
        finished_first = False
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        process.wait(120)
        took = time.perf_counter() - sent
    lines = process.stderr.read().strip().splitlines()
    return (None if finished_first else took), process.returncode, (lines[-1] if lines else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", default="784,4096,4096,10")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--delays", default="2,5,10,20,40")
    parser.add_argument("--jobs", default=None, help="comma-separated job names (default: all)")
    args = parser.parse_args(argv)
    table = jobs(args.layers, args.examples)
    names = list(table) if args.jobs is None else args.jobs.split(",")
    print(f"[{args.layers}], m = {args.examples}, {os.cpu_count()} cores")
    print(f"{'job':<24} {'SIGINT at':>9} {'to exit':>8} {'status':>6}  last line on stderr")
    for name in names:
        for delay in (float(d) for d in args.delays.split(",")):
            took, status, line = one(table[name], delay)
            shown = "finished" if took is None else f"{took:.2f} s"
            print(f"{name:<24} {delay:>7.1f} s {shown:>8} {status:>6}  {line[:90]}", flush=True)


if __name__ == "__main__":
    main()

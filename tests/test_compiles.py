"""One compiled specialization serves every activation and output: a fresh process on an empty Numba cache
checks and trains a relu / sigmoid network, then networks of every other activation and output, and none of
the minnet functions compiled for the first is compiled again for the others."""
import json
import os
import subprocess
import sys
import textwrap

import numba
import pytest

from minnet.ops.activations import ACTIVATIONS, PIECEWISE_LINEAR
from minnet.ops.losses import OUTPUTS

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from numba.core import event
    import minnet
    from minnet.cli._names import synthetic_data

    compiles = []  # (function, argument types, phase), every compile of this process

    class Record(event.Listener):
        def on_start(self, ev):
            pass

        def on_end(self, ev):
            d = ev.data["dispatcher"]
            compiles.append((f"{d.py_func.__module__}.{d.py_func.__qualname__}",
                             ", ".join(map(str, ev.data["args"])), phase[0]))

    event.register("numba:compile", Record())
    pairs, methods = json.loads(sys.argv[1])
    phase = [0]
    seconds = []
    for k, (hidden, output) in enumerate(pairs):
        phase[0] = k
        start = time.process_time()
        dims = [4, 6, 5, 3] if k % 2 else [3, 5, 4, 2]  # other widths too: sizes are never compiled in
        dims[-1] = 1 if output == "sigmoid" else dims[-1]
        net = minnet.Network(dims, hidden=hidden, output=output, lambd=0.1, keep_prob=0.8, seed=k)
        X, Y = synthetic_data(dims, output, 24, seed=k)
        for method in methods[hidden]:
            minnet.gradient_check(net, X, Y, method=method, dropout_seed=0, progress=False)
        net.fit(X, Y, epochs=2, batch_size=8)
        minnet.gradient_check(net, X, Y, progress=False)  # a trained network: other branches of the referee
        seconds.append(time.process_time() - start)
    print(json.dumps({"compiles": compiles, "seconds": seconds}))
""")


@pytest.mark.slow_without_jit  # nothing compiles with the JIT off
def test_every_activation_and_output_reuses_the_first_ones_compiled_kernels(tmp_path):
    if numba.config.DISABLE_JIT:
        pytest.skip("Numba's JIT is off: nothing is compiled")
    first = ("relu", "sigmoid")
    others = [(hidden, output) for hidden in ACTIVATIONS for output in OUTPUTS if (hidden, output) != first]
    # every pair once would compile for minutes: each activation and each output at least once, every method
    pairs = [first] + [pair for k, pair in enumerate(others) if k % 2 == 0 or pair[0] == "gelu"]
    assert {h for h, _ in pairs} == set(ACTIVATIONS) and {o for _, o in pairs} == set(OUTPUTS)
    methods = {hidden: ["auto", "incremental", "full"] + (["segment"] if hidden in PIECEWISE_LINEAR else [])
               for hidden in ACTIVATIONS}
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))  # empty: every specialization is compiled here
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([pairs, methods])], env=env,
                         capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    compiles = [(name, args, k) for name, args, k in found["compiles"] if name.startswith("minnet.")]
    in_first = {name: args for name, args, k in compiles if k == 0}
    assert len(in_first) > 20  # the check's kernels and training's were compiled there
    again = [(pairs[k], name, args, in_first[name]) for name, args, k in compiles if k > 0 and name in in_first]
    assert not again, "compiled once more for another activation or output:\n" + "\n".join(map(str, again))
    print(f"\n{len(in_first)} minnet functions compiled for {first} in {found['seconds'][0]:.1f} s of CPU; "
          f"{len(pairs) - 1} other pairs compiled {sum(k > 0 for *_, k in compiles)} functions their way had "
          f"not used before, in {sum(found['seconds'][1:]):.1f} s")

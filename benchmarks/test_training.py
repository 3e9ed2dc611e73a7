"""Training speed against PyTorch (float64, 2 threads), per epoch, at the same accuracy.

Two workloads, both relu hidden layers, softmax output, Adam:

- digits: [64, 32, 16, 10] on scikit-learn's 1,797 digits, batch 64, 40 epochs;
  target: minnet at least 5x PyTorch's speed.
- mnist: [784, 512, 256, 10] on 10,000 MNIST-shaped examples (28 x 28 pixels
  in [0, 1]: the digits scaled up 3x, placed at random offsets, with noise;
  nothing is downloaded), batch 128, 3 epochs; target: at least 1.2x.

Run with ``python -m pytest benchmarks/test_training.py -s`` (``pip install
torch==2.13.0`` for the comparison). minnet's ms per epoch is always
reported; PyTorch runs in its own process (so that no Numba or BLAS thread
pool competes with its threads), from the same initial parameters, on the
same data, mini-batches (same order) and epochs, and the ratio is computed
in the same run. Without torch the comparisons are skipped. Timings need
an otherwise idle machine: both systems' threads wait for each other, and
a busy core slows them many times over.
"""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

import minnet
from minnet import datasets

WORKLOADS = {  # name: (layer_dims, batch_size, epochs, learning_rate, target speed-up over torch)
    "digits": ([64, 32, 16, 10], 64, 40, 0.005, 5.0),
    "mnist": ([784, 512, 256, 10], 128, 3, 0.001, 1.2),
}
TIMES = {}  # (workload, system) -> (seconds per epoch, training accuracy)


def mnist_like(m=10_000, seed=0):
    """MNIST-shaped data: X (784, m) in [0, 1], labels (m,); the 8 x 8 digits at 3x on a 28 x 28 canvas."""
    images, digit_labels = datasets.load_digits()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, digit_labels.size, m)
    big = np.repeat(np.repeat(images[:, pick].T.reshape(m, 8, 8), 3, axis=1), 3, axis=2)
    canvas = np.zeros((m, 28, 28))
    rows, cols = rng.integers(0, 5, m), rng.integers(0, 5, m)
    for k in range(m):
        canvas[k, rows[k]:rows[k] + 24, cols[k]:cols[k] + 24] = big[k]
    canvas += 0.1 * rng.standard_normal(canvas.shape)
    return np.ascontiguousarray(np.clip(canvas, 0.0, 1.0).reshape(m, 784).T), digit_labels[pick]


@pytest.fixture(scope="module")
def data():
    pytest.importorskip("sklearn")
    return {"digits": datasets.load_digits(), "mnist": mnist_like()}


def fresh_net(name):
    return minnet.Network(WORKLOADS[name][0], hidden="relu", output="softmax", seed=0)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_minnet_epoch_time(benchmark, data, name):
    X, labels = data[name]
    dims, batch, epochs, learning_rate, _ = WORKLOADS[name]
    fresh_net(name).fit(X[:, :batch], labels[:batch], epochs=1, batch_size=batch)  # compile

    def train():
        net = fresh_net(name)
        net.fit(X, labels, optimizer="adam", learning_rate=learning_rate, epochs=epochs, batch_size=batch, seed=0)
        return net

    net = benchmark.pedantic(train, rounds=5 if name == "digits" else 3, iterations=1)
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.min if stats is not None else _time(train)
    TIMES[name, "minnet"] = (seconds / epochs, net.accuracy(X, labels))
    print(f"\n{name} minnet: {seconds / epochs * 1e3:.2f} ms/epoch, training accuracy {TIMES[name, 'minnet'][1]:.4f}")
    assert TIMES[name, "minnet"][1] >= 0.95


TORCH_TRAINING = r"""
import json, sys, time
import numpy as np, torch
config = json.loads(sys.argv[1])
torch.set_num_threads(2)
data = np.load(config["data"])
tX, tY = torch.from_numpy(data["XT"]), torch.from_numpy(data["labels"])
dims, batch = config["dims"], config["batch"]


def train():
    layers = []
    for l in range(1, len(dims)):
        linear = torch.nn.Linear(dims[l - 1], dims[l]).double()
        with torch.no_grad():  # minnet's initial parameters
            linear.weight.copy_(torch.from_numpy(data[f"W{l}"]))
            linear.bias.copy_(torch.from_numpy(data[f"b{l}"]))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)  # the order Network.fit(seed=0) draws: a permutation, then a dropout seed
    for _ in range(config["epochs"]):
        order = torch.from_numpy(rng.permutation(tX.shape[0]))
        rng.integers(2**31 - 1)
        for rows in order.split(batch):
            optimizer.zero_grad()
            loss = loss_fn(model(tX[rows]), tY[rows])
            loss.backward()
            optimizer.step()
    return model


best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    model = train()
    best = min(best, time.perf_counter() - start)
with torch.no_grad():
    accuracy = float((model(tX).argmax(dim=1) == tY).double().mean())
print(json.dumps({"seconds": best, "accuracy": accuracy}))
"""


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_torch_epoch_time(benchmark, data, name, tmp_path):
    """PyTorch in its own process, best of 3 trainings there."""
    pytest.importorskip("torch")
    X, labels = data[name]
    dims, batch, epochs, learning_rate, _ = WORKLOADS[name]
    net = fresh_net(name)
    path = tmp_path / f"{name}.npz"
    np.savez(path, XT=np.ascontiguousarray(X.T), labels=labels.astype(np.int64),
             **{key: np.ravel(value) if key[0] == "b" else value for key, value in net.parameters.items()})
    config = {"data": str(path), "dims": dims, "batch": batch, "epochs": epochs, "learning_rate": learning_rate}

    def run():
        out = subprocess.run([sys.executable, "-c", TORCH_TRAINING, json.dumps(config)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    TIMES[name, "torch"] = (result["seconds"] / epochs, result["accuracy"])
    print(f"\n{name} torch: {TIMES[name, 'torch'][0] * 1e3:.2f} ms/epoch (best of 3 in its process), "
          f"training accuracy {result['accuracy']:.4f}")
    assert result["accuracy"] >= 0.95


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_minnet_beats_torch(name):
    if (name, "minnet") not in TIMES or (name, "torch") not in TIMES:
        pytest.skip("needs both timings from this run (torch installed)")
    (minnet_time, minnet_accuracy), (torch_time, torch_accuracy) = TIMES[name, "minnet"], TIMES[name, "torch"]
    target = WORKLOADS[name][-1]
    print(f"\n{name}: minnet {minnet_time * 1e3:.2f} ms/epoch vs torch {torch_time * 1e3:.2f} ms/epoch: "
          f"{torch_time / minnet_time:.2f}x (target >= {target}x); training accuracy {minnet_accuracy:.4f} vs "
          f"{torch_accuracy:.4f}")
    assert abs(minnet_accuracy - torch_accuracy) <= 0.02
    assert torch_time / minnet_time >= target


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

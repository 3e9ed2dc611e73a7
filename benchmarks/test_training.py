"""Training speed: the digits net [64, 32, 16, 10] (relu, softmax, Adam, batch 64).

minnet's ms per epoch is always reported; PyTorch (float64, 2 threads, the
same net, optimizer, batch size and epochs) is timed in the same run when it
is installed (``pip install torch==2.13.0``), and the target is a ratio:
minnet at most 1/3 of PyTorch's time per epoch at the same accuracy.
"""
import json
import subprocess
import sys
import time

import pytest

import minnet
from minnet import datasets

EPOCHS = 40
LEARNING_RATE = 0.005
TIMES = {}


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return datasets.load_digits()


def test_minnet_epoch_time(benchmark, digits):
    X, labels = digits
    minnet.Network([64, 32, 16, 10], output="softmax").fit(X, labels, epochs=1, batch_size=64)  # compile

    def train():
        net = minnet.Network([64, 32, 16, 10], hidden="relu", output="softmax", seed=0)
        net.fit(X, labels, optimizer="adam", learning_rate=LEARNING_RATE, epochs=EPOCHS, batch_size=64, seed=0)
        return net

    net = benchmark.pedantic(train, rounds=5, iterations=1)
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.min if stats is not None else _time(train)
    TIMES["minnet"] = (seconds / EPOCHS, net.accuracy(X, labels))
    print(f"\nminnet: {seconds / EPOCHS * 1e3:.2f} ms/epoch, training accuracy {TIMES['minnet'][1]:.3f}")
    assert TIMES["minnet"][1] >= 0.97


TORCH_TRAINING = r"""
import json, sys, time
import numpy as np, torch
from minnet import datasets
epochs, learning_rate = int(sys.argv[1]), float(sys.argv[2])
torch.set_num_threads(2)
X, labels = datasets.load_digits()
tX, tY = torch.from_numpy(np.ascontiguousarray(X.T)), torch.from_numpy(labels)


def train():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 10)).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for batch in torch.randperm(tX.shape[0], generator=generator).split(64):
            optimizer.zero_grad()
            loss = loss_fn(model(tX[batch]), tY[batch])
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


def test_torch_epoch_time(benchmark, digits):
    """PyTorch in its own process, so that no Numba thread pool competes with its threads."""
    pytest.importorskip("torch")

    def run():
        out = subprocess.run([sys.executable, "-c", TORCH_TRAINING, str(EPOCHS), str(LEARNING_RATE)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    TIMES["torch"] = (result["seconds"] / EPOCHS, result["accuracy"])
    print(f"\ntorch: {TIMES['torch'][0] * 1e3:.2f} ms/epoch (best of 3 in its process), "
          f"training accuracy {result['accuracy']:.3f}")
    assert result["accuracy"] >= 0.97


def test_minnet_is_three_times_faster_than_torch():
    if "minnet" not in TIMES or "torch" not in TIMES:
        pytest.skip("needs both timings from this run (torch installed)")
    (minnet_time, minnet_accuracy), (torch_time, torch_accuracy) = TIMES["minnet"], TIMES["torch"]
    print(f"\nminnet {minnet_time * 1e3:.2f} ms/epoch vs torch {torch_time * 1e3:.2f} ms/epoch: "
          f"{torch_time / minnet_time:.1f}x; accuracy {minnet_accuracy:.3f} vs {torch_accuracy:.3f}")
    assert abs(minnet_accuracy - torch_accuracy) <= 0.02
    assert minnet_time <= torch_time / 3


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

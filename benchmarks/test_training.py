"""Training speed: the digits net [64, 32, 16, 10] (relu, softmax, Adam, batch 64).

minnet's ms per epoch is always reported; PyTorch (float64, 2 threads, the
same net, optimizer, batch size and epochs) is timed in the same run when it
is installed (``pip install torch==2.13.0``), and the target is a ratio:
minnet at most 1/3 of PyTorch's time per epoch at the same accuracy.
"""
import time

import numpy as np
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


def test_torch_epoch_time(benchmark, digits):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    X, labels = digits
    tX = torch.from_numpy(np.ascontiguousarray(X.T))
    tY = torch.from_numpy(labels)

    def train():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                                    torch.nn.ReLU(), torch.nn.Linear(16, 10)).double()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        loss_fn = torch.nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(0)
        for _ in range(EPOCHS):
            for batch in torch.randperm(tX.shape[0], generator=generator).split(64):
                optimizer.zero_grad()
                loss = loss_fn(model(tX[batch]), tY[batch])
                loss.backward()
                optimizer.step()
        return model

    model = benchmark.pedantic(train, rounds=3, iterations=1)
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.min if stats is not None else _time(train)
    with torch.no_grad():
        accuracy = float((model(tX).argmax(dim=1) == tY).double().mean())
    TIMES["torch"] = (seconds / EPOCHS, accuracy)
    print(f"\ntorch: {seconds / EPOCHS * 1e3:.2f} ms/epoch, training accuracy {accuracy:.3f}")
    assert accuracy >= 0.97


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

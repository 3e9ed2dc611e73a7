"""Checkpoints (Network.save / Network.load over minnet.checkpoint): bit-exact round trips, atomic writes,
and refusal of every malformed file."""
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minnet
from minnet import checkpoint

CONFIGS = [
    dict(layer_dims=[2, 1]),
    dict(layer_dims=[3, 5, 2], hidden="tanh", output="softmax", lambd=0.7, keep_prob=0.8, init="xavier", seed=7),
    dict(layer_dims=[4, 6, 5, 3], hidden="leaky_relu", output="linear", lambd=1 / 3, keep_prob=[0.5, 0.9],
         init="random", seed=123),
    dict(layer_dims=[1, 1, 1, 1], hidden="sigmoid", output="sigmoid", lambd=1e-300, init="zeros", seed=2**40),
    dict(layer_dims=[7, 16, 8, 2], hidden="relu", output="sigmoid", keep_prob=[1.0, 0.3], init="he"),
]


def make_net(config, seed=0):
    """A network whose theta is not its initialization: random values including awkward floats."""
    net = minnet.Network(**config)
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(net.theta.size) * 10.0 ** rng.integers(-5, 5, net.theta.size)
    special = [-0.0, 5e-324, -2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3]
    theta[:min(len(special), theta.size)] = special[:theta.size]
    net.theta = theta
    return net


def data_for(net, m=5, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((net.layer_dims[0], m))
    n = net.layer_dims[-1]
    if net.output == "softmax":
        return X, rng.integers(0, n, m)
    if net.output == "sigmoid":
        return X, rng.integers(0, 2, (n, m)).astype(float)
    return X, rng.standard_normal((n, m))


def assert_same_net(a, b):
    assert type(b) is minnet.Network
    assert b.config == a.config
    for key in a.config:  # same values and the same types (1/3 stays a float, seed an int)
        assert type(b.config[key]) is type(a.config[key])
    assert b.theta.dtype == np.float64
    np.testing.assert_array_equal(b.theta.view(np.uint64), a.theta.view(np.uint64))  # bit for bit, -0.0 too
    assert b.layout == a.layout
    np.testing.assert_array_equal(b.keep_prob, a.keep_prob)


def entries(path):
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def write_npz(path, **arrays):
    with open(path, "wb") as f:  # a file object: np.savez appends no suffix
        np.savez(f, **arrays)
    return path


def valid_arrays(net=None, **overrides):
    net = net or minnet.Network([2, 3, 1], lambd=0.5, seed=4)
    arrays = {"format_version": np.array(1, dtype=np.int64),
              "config": np.frombuffer(json.dumps(net.config).encode(), dtype=np.uint8),
              "theta": net.theta.copy()}
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


def config_bytes(**changes):
    config = minnet.Network([2, 3, 1], lambd=0.5, seed=4).config
    config.update(changes)
    return np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)


def refused(path, *patterns):
    """load(path) raises ValueError naming the file, saying what it is not, and matching patterns."""
    with pytest.raises(ValueError) as info:
        minnet.Network.load(path)
    message = str(info.value)
    assert str(path) in message and "is not a minnet checkpoint" in message, message
    for pattern in patterns:
        assert pattern in message, message
    return message


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize("config", CONFIGS, ids=[str(c["layer_dims"]) for c in CONFIGS])
def test_round_trip_is_bit_exact(tmp_path, config):
    net = make_net(config)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = minnet.Network.load(path)
    assert_same_net(net, loaded)
    stored = entries(path)
    assert sorted(stored) == ["config", "format_version", "theta"]
    assert stored["format_version"].dtype.kind == "i" and int(stored["format_version"]) == checkpoint.FORMAT_VERSION
    assert stored["config"].dtype == np.uint8
    assert json.loads(stored["config"].tobytes().decode()) == net.config
    assert stored["theta"].dtype == np.float64 and stored["theta"].shape == net.theta.shape


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c["layer_dims"]) for c in CONFIGS])
def test_loaded_network_computes_the_same(tmp_path, config):
    net = minnet.Network(**config)
    X, Y = data_for(net, m=12)
    net.fit(X, Y, epochs=3, batch_size=5, seed=2)
    net.save(str(tmp_path / "trained.npz"))
    loaded = minnet.Network.load(str(tmp_path / "trained.npz"))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.cost(X, Y, dropout_seed=3) == net.cost(X, Y, dropout_seed=3)
    for key, grad in net.gradients(X, Y, dropout_seed=3).items():
        np.testing.assert_array_equal(loaded.gradients(X, Y, dropout_seed=3)[key], grad)
    # training continues identically from the checkpoint
    h1 = net.fit(X, Y, epochs=2, batch_size=5, seed=9)
    h2 = loaded.fit(X, Y, epochs=2, batch_size=5, seed=9)
    assert h1["cost"] == h2["cost"]
    np.testing.assert_array_equal(loaded.theta, net.theta)


def test_loaded_theta_is_independent_of_the_file_and_of_the_saved_net(tmp_path):
    net = make_net(CONFIGS[1])
    path = tmp_path / "net.npz"
    net.save(path)
    a, b = minnet.Network.load(path), minnet.Network.load(path)
    a.theta = np.zeros(a.theta.size)
    assert np.any(b.theta != 0) and np.any(net.theta != 0)
    # parameters are still views into theta after loading
    b.parameters["W1"][0, 0] = 42.0
    assert b.theta[0] == 42.0


def test_path_types(tmp_path):
    net = make_net(CONFIGS[2])

    class PathLike:
        def __init__(self, path):
            self.path = path

        def __fspath__(self):
            return self.path

    for target in [str(tmp_path / "a.npz"), tmp_path / "b.npz", PathLike(str(tmp_path / "c.npz")),
                   os.fsencode(str(tmp_path / "d.npz"))]:
        net.save(target)
        assert_same_net(net, minnet.Network.load(target))
    # the name is used as given: no ".npz" is appended
    net.save(tmp_path / "model.ckpt")
    assert (tmp_path / "model.ckpt").is_file() and not (tmp_path / "model.ckpt.npz").exists()
    assert_same_net(net, minnet.Network.load(tmp_path / "model.ckpt"))


def test_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = make_net(CONFIGS[0])
    net.save("rel.npz")
    assert sorted(os.listdir(tmp_path)) == ["rel.npz"]
    assert_same_net(net, minnet.Network.load("rel.npz"))


def test_overwrite_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "net.npz"
    first, second = make_net(CONFIGS[1], seed=1), make_net(CONFIGS[2], seed=2)
    first.save(path)
    os.chmod(path, 0o600)
    second.save(path)
    assert_same_net(second, minnet.Network.load(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def test_new_file_gets_ordinary_permissions(tmp_path):
    """Not the 0o600 of a temporary file: the usual 0o666 minus the umask."""
    umask = os.umask(0o022)
    try:
        make_net(CONFIGS[0]).save(tmp_path / "net.npz")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "net.npz").st_mode) == 0o644


@pytest.mark.parametrize("config", CONFIGS[:3], ids=[str(c["layer_dims"]) for c in CONFIGS[:3]])
def test_plain_arrays_round_trip_without_a_network(tmp_path, config):
    """checkpoint.save / load deal in (config, theta): the same file as Network.save, read back as arrays."""
    net = make_net(config)
    checkpoint.save(tmp_path / "f.npz", net.config, net.theta)
    net.save(tmp_path / "m.npz")
    plain, by_method = entries(tmp_path / "f.npz"), entries(tmp_path / "m.npz")
    assert plain.keys() == by_method.keys()
    for key in plain:
        assert plain[key].tobytes() == by_method[key].tobytes() and plain[key].dtype == by_method[key].dtype
    config, theta = checkpoint.load(tmp_path / "f.npz", max_parameters=net.theta.size)
    assert config == net.config and type(config) is dict
    assert theta.dtype == np.float64 and theta.flags.c_contiguous and theta.flags.writeable
    np.testing.assert_array_equal(theta.view(np.uint64), net.theta.view(np.uint64))
    refused(write_npz(tmp_path / "bad.npz", **valid_arrays(theta=None)), "missing theta")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.npz", max_parameters=100)


def test_plain_load_limit_and_allocate(tmp_path):
    path = tmp_path / "net.npz"
    net = make_net(CONFIGS[1])
    net.save(path)
    n = net.theta.size
    with pytest.raises(ValueError, match=rf"more than the limit of {n - 1} \(max_parameters\)"):
        checkpoint.load(path, max_parameters=n - 1)
    buffer = np.full(n, 7.0)
    seen = []
    config, theta = checkpoint.load(path, max_parameters=n, allocate=lambda c: seen.append(c) or buffer)
    assert theta is buffer and seen == [config] == [net.config]
    np.testing.assert_array_equal(buffer, net.theta)

    def refuse(config):
        raise ValueError("hidden must be one of 'relu'")

    with pytest.raises(ValueError, match=r"is not a minnet checkpoint: its config is not a valid Network "
                                         r"configuration: hidden must be one of 'relu'"):
        checkpoint.load(path, max_parameters=n, allocate=refuse)
    for wrong in (np.zeros(n + 1), np.zeros(n, dtype=np.float32), np.zeros((n, 2))[:, 0], list(range(n))):
        with pytest.raises(TypeError, match=rf"allocate must return a writable, C-contiguous float64 vector "
                                            rf"of {n} entries"):
            checkpoint.load(path, max_parameters=n, allocate=lambda c, w=wrong: w)
    # without allocate, layer_dims that imply no size are refused by the checkpoint itself
    bad = write_npz(tmp_path / "dims.npz", **valid_arrays(config=config_bytes(layer_dims=[2, 0, 1])))
    with pytest.raises(ValueError, match=r"layer_dims must be at least 2 positive integers, got \[2, 0, 1\]"):
        checkpoint.load(bad, max_parameters=100)


def test_plain_save_refuses_what_load_would_refuse(tmp_path):
    config, theta = minnet.Network([2, 3, 1]).config, minnet.Network([2, 3, 1]).theta
    cases = [
        ((dict(config, optimizer="adam"), theta), ValueError, "config must have exactly the fields .*unexpected 'optimizer'"),
        (({k: v for k, v in config.items() if k != "seed"}, theta), ValueError, "missing seed"),
        ((dict(config, layer_dims=[2, 0, 1]), theta), ValueError, r"layer_dims must be a list of at least 2 positive"),
        ((dict(config, lambd=float("nan")), theta), ValueError, "config must be JSON-ready"),
        ((dict(config, lambd=np.array(0.5)), theta), TypeError, "config must be JSON-ready"),
        ((config, theta[:-1]), ValueError, r"theta has 12 entries but the config's layer_dims \[2, 3, 1\] imply 13"),
        ((config, theta.reshape(13, 1)), ValueError, r"theta must be a 1-D vector, got shape \(13, 1\)"),
        ((config, theta.astype(np.float32)), TypeError, "theta must be float64, got dtype float32"),
        ((config, np.where(np.arange(13) == 8, np.inf, theta)), ValueError,
         r"theta contains NaN or inf: b1\[2, 0\] is inf \(theta\[8\]\); such a checkpoint could not be loaded"),
    ]
    for (config_, theta_), exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            checkpoint.save(tmp_path / "net.npz", config_, theta_)
    assert os.listdir(tmp_path) == []
    # a big-endian theta is written as a native float64 vector, the same bytes as Network.save's
    checkpoint.save(tmp_path / "be.npz", config, theta.astype(">f8"))
    assert entries(tmp_path / "be.npz")["theta"].dtype == np.float64


def test_save_refuses_what_load_would_refuse(tmp_path):
    net = minnet.Network([2, 3, 1])
    net.parameters["W1"][1, 0] = np.nan  # an in-place write: the setters refuse NaN
    with pytest.raises(ValueError, match=r"W1\[1, 0\] is nan"):
        net.save(tmp_path / "nan.npz")
    with pytest.raises(TypeError, match="config must be a dict, got Parameters"):
        checkpoint.save(tmp_path / "dict.npz", net.parameters, net.theta)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        minnet.Network([2, 1]).save(3)
    assert os.listdir(tmp_path) == []


def test_save_to_bad_locations(tmp_path):
    net = make_net(CONFIGS[0])
    with pytest.raises(IsADirectoryError, match="is a directory"):
        net.save(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.save(tmp_path / "no" / "net.npz")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        net.save(tmp_path / "file" / "net.npz")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def _no_dac_override_prefix():
    """A command prefix under which file permissions bind, or None when there is none.

    Root ignores read-only modes, so as root the child drops the capabilities
    that bypass them (util-linux ``setpriv``).
    """
    if os.name != "posix" or os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_save_into_read_only_folder(tmp_path):
    prefix = _no_dac_override_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
    folder = tmp_path / "ro"
    folder.mkdir()
    make_net(CONFIGS[1], seed=5).save(folder / "old.npz")
    before = (folder / "old.npz").read_bytes()
    os.chmod(folder, 0o555)
    script = textwrap.dedent("""
        import os, sys
        import minnet
        folder = sys.argv[1]
        try:
            open(os.path.join(folder, "probe"), "w")
        except PermissionError:
            pass
        else:
            sys.exit("the folder is writable: the test premise does not hold")
        for name in ("new.npz", "old.npz"):
            try:
                minnet.Network([2, 1]).save(os.path.join(folder, name))
            except PermissionError as exc:
                print("PermissionError:", exc)
            else:
                sys.exit("save into a read-only folder did not raise")
    """)
    try:
        result = subprocess.run(prefix + [sys.executable, "-c", script, str(folder)], capture_output=True,
                                text=True, timeout=120)
    finally:
        os.chmod(folder, 0o755)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ("new.npz", "old.npz")):
        assert name in line and "cannot save the checkpoint" in line and "cannot create a file in" in line
    assert sorted(os.listdir(folder)) == ["old.npz"]
    assert (folder / "old.npz").read_bytes() == before


# ---------------------------------------------------------------- atomicity
class Boom(Exception):
    pass


def _previous(tmp_path):
    path = tmp_path / "net.npz"
    old = make_net(CONFIGS[1], seed=11)
    old.save(path)
    return path, old, path.read_bytes()


def _assert_intact(tmp_path, path, old, before):
    assert path.read_bytes() == before
    assert_same_net(old, minnet.Network.load(path))
    assert sorted(os.listdir(tmp_path)) == [path.name], "a temporary file was left behind"


@pytest.mark.parametrize("where", ["replace", "fsync", "chmod"])
def test_failure_mid_save_keeps_the_previous_file(tmp_path, monkeypatch, where):
    path, old, before = _previous(tmp_path)

    def boom(*args, **kwargs):
        raise Boom(where)

    monkeypatch.setattr(os, where, boom)
    with pytest.raises(Boom):
        make_net(CONFIGS[2]).save(path)
    monkeypatch.undo()
    _assert_intact(tmp_path, path, old, before)


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt, OSError])
def test_failure_while_writing_keeps_the_previous_file(tmp_path, monkeypatch, exc):
    """The write itself fails halfway (disk full, Ctrl-C): half a file exists only as the temp file."""
    path, old, before = _previous(tmp_path)
    savez = np.savez
    seen = {}

    def half_write(file, **arrays):
        savez(file, **arrays)
        file.seek(0)
        file.truncate(file.tell() // 2 + 100)
        seen["name"] = file.name
        raise exc("write failed halfway")

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(exc):
        make_net(CONFIGS[2]).save(path)
    monkeypatch.undo()
    assert os.path.dirname(seen["name"]) == str(tmp_path), "the temporary file must live in the target folder"
    _assert_intact(tmp_path, path, old, before)


def test_failure_on_a_new_path_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args):
        raise Boom()

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Boom):
        make_net(CONFIGS[0]).save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_crash_mid_save_keeps_the_previous_file(tmp_path):
    """The process dies (os._exit) after the new data is written but before the rename."""
    path, old, before = _previous(tmp_path)
    script = textwrap.dedent("""
        import os, sys
        import minnet
        os.fsync = lambda fd: os._exit(17)   # die right after the write, before os.replace
        minnet.Network([4, 6, 5, 3], seed=1).save(sys.argv[1])
    """)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 17, result.stderr
    assert path.read_bytes() == before
    assert_same_net(old, minnet.Network.load(path))
    leftovers = [name for name in os.listdir(tmp_path) if name != path.name]
    assert all(name.startswith(".net.npz.") and name.endswith(".tmp") for name in leftovers), leftovers


# --------------------------------------------------------- malformed files
def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no minnet checkpoint at .*missing.npz.*does not exist"):
        minnet.Network.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        minnet.Network.load(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(tmp_path / "empty.npz", "not an .npz archive")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "random.npz"
    path.write_bytes(rng.integers(0, 256, 200 + 300 * seed, dtype=np.uint8).tobytes())
    refused(path, "not an .npz archive")
    # random bytes behind a zip signature get past the first check but no further
    path.write_bytes(b"PK\x03\x04" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    refused(path)


def test_truncated_files(tmp_path):
    good = tmp_path / "good.npz"
    make_net(CONFIGS[3]).save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    for size in sorted({4, 10, 30, len(data) // 3, len(data) // 2, len(data) - 22, len(data) - 1}):
        cut.write_bytes(data[:size])
        message = refused(cut)
        assert "truncated or corrupted" in message or "not a readable" in message, message


def test_corrupted_theta_bytes(tmp_path):
    path = tmp_path / "net.npz"
    net = make_net(CONFIGS[2])
    net.save(path)
    data = bytearray(path.read_bytes())
    start = bytes(data).find(net.theta.tobytes())
    assert start > 0
    data[start + 8 * 3 + 5] ^= 0x40  # flip one bit of theta[3]: the zip CRC must notice
    path.write_bytes(bytes(data))
    refused(path, "truncated or corrupted")


def test_npy_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "theta.npy"
    np.save(path, np.zeros(3))
    refused(path, "not an .npz archive")


def test_compressed_and_unicode_config_are_accepted(tmp_path):
    """The format allows the config as a unicode string, and np.savez_compressed archives."""
    net = make_net(CONFIGS[1])
    arrays = valid_arrays(net, config=np.array(json.dumps(net.config)))
    path = tmp_path / "c.npz"
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    assert_same_net(net, minnet.Network.load(path))


@pytest.mark.parametrize("name,arrays,expected", [
    ("missing theta", dict(theta=None), "missing theta"),
    ("missing config", dict(config=None), "missing config"),
    ("missing version", dict(format_version=None), "missing format_version"),
    ("extra key", dict(notes=np.arange(3)), "unexpected 'notes'"),
    ("theta float32", dict(theta=np.zeros(13, dtype=np.float32)), "theta must be float64, got dtype float32"),
    ("theta int64", dict(theta=np.zeros(13, dtype=np.int64)), "theta must be float64, got dtype int64"),
    ("theta complex", dict(theta=np.zeros(13, dtype=complex)), "theta must be float64"),
    ("theta too short", dict(theta=np.zeros(12)), "theta has 12 entries but the config's layer_dims [2, 3, 1] imply 13"),
    ("theta too long", dict(theta=np.zeros(14)), "theta has 14 entries"),
    ("theta 2-D", dict(theta=np.zeros((13, 1))), "theta must be a 1-D vector, got shape (13, 1)"),
    ("theta scalar", dict(theta=np.float64(1.0)), "theta must be a 1-D vector"),
    ("theta NaN", dict(theta=np.where(np.arange(13) == 4, np.nan, 1.0)),
     "theta contains NaN or inf: W1[2, 0] is nan (theta[4])"),
    ("theta inf", dict(theta=np.full(13, -np.inf)), "theta contains NaN or inf"),
    ("version 2", dict(format_version=np.array(2)), "format_version 2 is not supported"),
    ("version 0", dict(format_version=np.array(0)), "format_version 0 is not supported"),
    ("version float", dict(format_version=np.array(1.0)), "format_version must be one integer"),
    ("version vector", dict(format_version=np.array([1, 1])), "format_version must be one integer"),
    ("version string", dict(format_version=np.array("1")), "format_version must be one integer"),
    ("config float array", dict(config=np.zeros(5)), "config must be a uint8 byte vector or a unicode string"),
    ("config not UTF-8", dict(config=np.frombuffer(b"\xff\xfe{}", dtype=np.uint8)), "config is not UTF-8"),
    ("config not JSON", dict(config=np.frombuffer(b"{layer_dims: [2, 1]", dtype=np.uint8)), "config is not valid JSON"),
    ("config JSON list", dict(config=np.frombuffer(b"[2, 3, 1]", dtype=np.uint8)), "config must be a JSON object"),
    ("config NaN constant", dict(config=np.frombuffer(json.dumps(dict(
        minnet.Network([2, 3, 1]).config, lambd=float("nan"))).encode(), dtype=np.uint8)), "config is not valid JSON"),
    ("config duplicate field", dict(config=np.frombuffer(
        json.dumps(minnet.Network([2, 3, 1]).config)[:-1].encode() + b', "seed": 5}', dtype=np.uint8)),
     "duplicate field(s) 'seed'"),
    ("config unknown activation", dict(config=config_bytes(hidden="swish")),
     "config is not a valid Network configuration: hidden must be one of"),
    ("config unknown output", dict(config=config_bytes(output="tanh")), "output must be one of"),
    ("config unknown init", dict(config=config_bytes(init="orthogonal")), "init must be one of"),
    ("config layer_dims zero", dict(config=config_bytes(layer_dims=[2, 0, 1])), "layer_dims[1] must be >= 1"),
    ("config layer_dims float", dict(config=config_bytes(layer_dims=[2, 3.0, 1])), "layer_dims[1] must be an integer"),
    ("config layer_dims bool", dict(config=config_bytes(layer_dims=[2, True, 1])), "layer_dims[1] must be an integer"),
    ("config layer_dims short", dict(config=config_bytes(layer_dims=[13])), "layer_dims must hold at least 2 sizes"),
    ("config layer_dims string", dict(config=config_bytes(layer_dims="2,3,1")), "layer_dims must be a list"),
    ("config layer_dims other net", dict(config=config_bytes(layer_dims=[3, 3, 1])), "theta has 13 entries but"),
    ("config lambd negative", dict(config=config_bytes(lambd=-1.0)), "lambd must be a finite number"),
    ("config keep_prob 0", dict(config=config_bytes(keep_prob=[0.0])), "keep_prob must be a finite number"),
    ("config keep_prob count", dict(config=config_bytes(keep_prob=[0.5, 0.5])), "keep_prob must be one number or 1"),
    ("config keep_prob dict", dict(config=config_bytes(keep_prob={"1": 0.5})), "keep_prob must be a number or a list"),
    ("config seed string", dict(config=config_bytes(seed="0")), "seed must be an integer"),
    ("config missing field", dict(config=np.frombuffer(json.dumps({k: v for k, v in minnet.Network(
        [2, 3, 1]).config.items() if k != "init"}).encode(), dtype=np.uint8)), "missing init"),
    ("config extra field", dict(config=config_bytes(optimizer="adam")), "unexpected 'optimizer'"),
])
def test_malformed_archives(tmp_path, name, arrays, expected):
    path = write_npz(tmp_path / "bad.npz", **valid_arrays(**arrays))
    refused(path, expected)


def test_valid_arrays_helper_makes_a_loadable_file(tmp_path):
    """The malformed cases differ from a valid file only in what they change."""
    net = minnet.Network([2, 3, 1], lambd=0.5, seed=4)
    assert_same_net(net, minnet.Network.load(write_npz(tmp_path / "ok.npz", **valid_arrays())))


# ------------------------------------------------------------------ pickles
class _Touch:
    """Unpickling this creates a file: proof that pickled code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _payload(marker):
    return np.array([_Touch(marker), 1.0], dtype=object)


def test_pickle_payload_is_live(tmp_path):
    """The control: NumPy with pickles allowed does run the payload (so the tests below mean something)."""
    marker = tmp_path / "control-marker"
    path = write_npz(tmp_path / "p.npz", **valid_arrays(theta=_payload(marker)))
    with np.load(path, allow_pickle=True) as npz:
        npz["theta"][0].close()
    assert marker.exists()


@pytest.mark.parametrize("key", ["theta", "config", "format_version", "extra"])
def test_pickled_object_arrays_are_refused_unexecuted(tmp_path, key):
    marker = tmp_path / "marker"
    path = write_npz(tmp_path / "p.npz", **valid_arrays(**{key: _payload(marker)}))
    message = refused(path)
    if key == "extra":
        assert "unexpected 'extra'" in message
    else:
        assert f"entry {key!r} is a pickled object array" in message
        assert "refuses them (nothing was unpickled)" in message
    assert not marker.exists()


def test_raw_pickle_file_is_refused_unexecuted(tmp_path):
    import pickle
    marker = tmp_path / "marker"
    path = tmp_path / "net.npz"
    path.write_bytes(pickle.dumps(_payload(marker)))
    refused(path, "not an .npz archive")
    assert not marker.exists()


def test_pickle_hidden_in_an_npy_member_is_refused_unexecuted(tmp_path):
    """A hand-made member whose header claims float64 but whose data is a pickle: read as bytes, never unpickled."""
    import zipfile
    marker = tmp_path / "marker"
    path = write_npz(tmp_path / "p.npz", **valid_arrays(theta=_payload(marker)))
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("theta.npy")
    forged = raw.replace(b"'descr': '|O'", b"'descr': '<f8'")
    assert forged != raw
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in valid_arrays(theta=None).items():
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, array)
        archive.writestr("theta.npy", forged)
    refused(path)
    assert not marker.exists()


# ------------------------------------------------------ hostile and odd files
def _in_thread(call, timeout=30.0):
    """Run call() in a daemon thread; returns its exception (or None), failing if it blocks."""
    import threading
    outcome = {}

    def run():
        try:
            call()
        except BaseException as exc:  # noqa: B902 - hand every outcome back
            outcome["exc"] = exc
        outcome["done"] = True

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome.get("done"), f"{call} blocked for {timeout} s"
    return outcome.get("exc")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    exc = _in_thread(lambda: minnet.Network.load(fifo))
    assert isinstance(exc, ValueError) and "is not a minnet checkpoint: it is a FIFO, not a regular file" in str(exc)
    exc = _in_thread(lambda: make_net(CONFIGS[0]).save(fifo))
    assert isinstance(exc, ValueError) and "it is not a regular file (a FIFO)" in str(exc), exc
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe.npz"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_a_device_is_refused():
    refused("/dev/null", "it is a character device, not a regular file")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_save_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    store, links = tmp_path / "store", tmp_path / "links"
    store.mkdir()
    links.mkdir()
    target, link = store / "net.npz", links / "latest.npz"
    make_net(CONFIGS[1], seed=1).save(target)
    os.symlink(target, link)
    new = make_net(CONFIGS[1], seed=2)
    new.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert_same_net(new, minnet.Network.load(target))
    assert_same_net(new, minnet.Network.load(link))
    assert os.listdir(store) == ["net.npz"] and os.listdir(links) == ["latest.npz"]
    # a dangling link: the checkpoint is written where it points
    dangling = links / "next.npz"
    os.symlink(store / "next.npz", dangling)
    new.save(dangling)
    assert os.path.islink(dangling) and sorted(os.listdir(store)) == ["net.npz", "next.npz"]
    assert_same_net(new, minnet.Network.load(store / "next.npz"))


@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_a_full_disk_names_the_path(tmp_path, monkeypatch, where):
    import errno
    path, old, before = _previous(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np if where == "savez" else os, where, full)
    with pytest.raises(OSError) as info:
        make_net(CONFIGS[2]).save(path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert f"cannot save the checkpoint to {str(path)!r}: No space left on device" in str(info.value)
    _assert_intact(tmp_path, path, old, before)


def test_sizes_over_the_limit_are_refused_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    minnet.Network([2, 3, 1]).save(path)
    monkeypatch.setattr(minnet.network, "MAX_PARAMETERS", 12)
    refused(path, "theta has 13 entries, more than the limit of 12 (minnet.network.MAX_PARAMETERS)")


def _npy_header_only(shape):
    """An .npy member holding a float64 header for ``shape`` and no data at all."""
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_a_huge_consistent_header_is_refused_before_allocating(tmp_path):
    """A small file whose config and theta header agree on [20000, 20000, 1]: 400 million parameters."""
    import zipfile
    config = json.dumps(dict(minnet.Network([2, 1]).config, layer_dims=[20000, 20000, 1])).encode()
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in (("format_version", np.array(1, dtype=np.int64)),
                           ("config", np.frombuffer(config, dtype=np.uint8))):
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, array)
        archive.writestr("theta.npy", _npy_header_only((400_040_001,)))
    assert path.stat().st_size < 10_000
    refused(path, "theta has 400,040,001 entries, more than the limit of 268,435,456")


def test_load_never_initializes_a_throwaway_network(tmp_path, monkeypatch):
    net = make_net(CONFIGS[2])
    net.save(tmp_path / "net.npz")

    def no_initialization(self):
        raise AssertionError("load drew a random initialization")

    monkeypatch.setattr(minnet.Network, "_initialize", no_initialization)
    assert_same_net(net, minnet.Network.load(tmp_path / "net.npz"))


def test_theta_without_its_data_is_refused(tmp_path):
    path = tmp_path / "net.npz"
    arrays = valid_arrays()
    with open(path, "wb") as f:
        np.savez(f, format_version=arrays["format_version"], config=arrays["config"])
    import zipfile
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("theta.npy", _npy_header_only((13,)) + b"\0" * 40)
    refused(path, "entry 'theta' is truncated or corrupted (its data ends after 40 of 104 bytes)")
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("format_version", "config"):
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, arrays[key])
        archive.writestr("theta.npy", _npy_header_only((13,)) + b"\0" * 112)
    refused(path, "entry 'theta' is truncated or corrupted (it holds more data than its header says)")


def test_big_endian_theta_is_read_exactly(tmp_path):
    net = make_net(CONFIGS[1])
    path = write_npz(tmp_path / "be.npz", **valid_arrays(net, theta=net.theta.astype(">f8")))
    assert_same_net(net, minnet.Network.load(path))


def test_every_single_bit_flip_is_a_value_error_or_the_same_network(tmp_path):
    """Fuzz: each bit of a small checkpoint flipped in turn. A zip reader error is never let through."""
    net = make_net(CONFIGS[0])
    good = tmp_path / "good.npz"
    net.save(good)
    data = good.read_bytes()
    flipped = tmp_path / "flipped.npz"
    outcomes = {"refused": 0, "same": 0}
    for bit in range(8 * len(data)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        flipped.write_bytes(bytes(damaged))
        try:
            loaded = minnet.Network.load(flipped)
        except ValueError as exc:
            assert "is not a minnet checkpoint" in str(exc), (bit, exc)
            outcomes["refused"] += 1
        else:  # a flip in a field nothing reads (a timestamp): the same network, never another one
            assert_same_net(net, loaded)
            outcomes["same"] += 1
    assert outcomes["refused"] > outcomes["same"] > 0


def test_load_holds_theta_about_once(tmp_path):
    """theta's data goes straight into the new network: no random initialization, no second full copy."""
    import tracemalloc
    net = minnet.Network([1000, 1000, 10])
    path = tmp_path / "big.npz"
    net.save(path)
    minnet.Network.load(path)  # warm up imports and caches outside the measurement
    tracemalloc.start()
    try:
        loaded = minnet.Network.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(loaded.theta, net.theta)
    assert peak < 1.5 * net.theta.nbytes, f"load peaked at {peak / net.theta.nbytes:.2f} times theta"

"""Checkpoint files: a (config, theta) pair as an .npz archive -- no pickle, validated, written atomically.

Owns the file format, its checks and the atomic write. Must not import minnet.network (the network imports
this module): a model's own rules (its size limit, which configs build) come in through load's arguments.
"""
# The format. A checkpoint is a NumPy ``.npz`` archive (``np.savez``) with exactly three arrays:
#
#   format_version  int64 scalar, the layout of the file (currently 1).
#   config          uint8 vector: the UTF-8 JSON of the config dict, keys sorted; exactly the fields
#                   CONFIG_FIELDS (a Network's ``config``). A NumPy unicode scalar holding the JSON is
#                   accepted too.
#   theta           float64 vector, all parameters in theta order (minnet._layout), as many as
#                   config["layer_dims"] imply.
#
# ``save`` writes to a temporary file in the target's folder, flushes and fsyncs it, then renames it
# onto the target (``os.replace``), so a crash or an error mid-save leaves any previous checkpoint
# intact. A symbolic link is followed: its target is replaced and the link kept. A failure to write
# is an OSError naming the path.
#
# ``load`` opens only regular files (a FIFO, device or socket is refused without blocking), reads the
# archive with pickling disabled and checks every key, dtype, shape and config field before it
# allocates anything the size of theta: theta's size is read from its .npy header, must match the
# config and be at most ``max_parameters``. theta's data is then read straight into the caller's
# buffer (``allocate``; no second copy). Anything unexpected in the file, including any corruption
# the zip reader detects, raises ``ValueError`` naming the file.
#
# ``Network.save`` and ``Network.load`` are the usual way in; these functions serve plain arrays.
import json
import numbers
import os
import stat
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from ._layout import Layout

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
KEYS = ("format_version", "config", "theta")
CONFIG_FIELDS = ("layer_dims", "hidden", "output", "lambd", "keep_prob", "init", "seed")
_MAX_SMALL_MEMBER = 1 << 20  # bytes: generous bound for format_version and config
_NPY_HEADER_SLACK = 1 << 16  # bytes: bound on an .npy header
_CHUNK = 1 << 20  # bytes of theta read at a time
# what the zip and .npy readers raise on a damaged archive; load turns each into a ValueError
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError, NotImplementedError,
                zlib.error, struct.error, OverflowError, UnicodeDecodeError)


# ------------------------------------------------------------------ saving
def save(path, config, theta):
    """Write ``config`` and ``theta`` to ``path`` atomically.

    ``Network.save(path)`` calls this with the network's ``config`` and
    ``theta``. ``save`` refuses what ``load`` would refuse as far as the
    file alone tells: whether a config builds a model is the model's business.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, used exactly as given (no suffix is added). An
        existing file is replaced only once the new one is completely on disk.

        A symbolic link is followed: its target is replaced, the link kept.
    config : dict
        JSON-ready, with exactly the fields ``CONFIG_FIELDS``; ``layer_dims``
        a list of at least 2 positive integers.
    theta : ndarray of float64, shape (n,)
        Finite, with the n entries that ``config["layer_dims"]`` imply.

    Raises
    ------
    TypeError
        ``path`` is not a path, ``config`` not a dict (or not JSON-ready), or
        ``theta`` not float64.
    ValueError
        ``config`` lacks a field or has others, ``theta`` has the wrong shape
        or size, or holds NaN or inf (such a checkpoint could not be loaded),
        or ``path`` is a FIFO, a device or a socket.
    IsADirectoryError, FileNotFoundError, NotADirectoryError, PermissionError, OSError
        ``path`` is a directory, its folder does not exist, is a file, or is not
        writable, or the disk is full; the message names ``path``.
    """
    path = _as_path(path)
    text = _config_text(config)
    theta = _theta_to_save(theta, config["layer_dims"])
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
        "theta": theta,
    }
    target, folder = _save_target(path)
    _write_atomically(path, target, folder, arrays)
    _fsync_directory(folder)


def _save_target(path):
    """(target, folder): the file ``save`` replaces (through a symbolic link) and its folder, both checked."""
    target = os.path.realpath(path)  # through a symbolic link: replace its target, keep the link
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"cannot save the checkpoint to {path!r}: it is a directory; give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"cannot save the checkpoint to {path!r}: it is not a regular file "
                         f"({_kind(mode)}); give a file name")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NotADirectoryError(f"cannot save the checkpoint to {path!r}: {folder!r} is not a directory")
        raise FileNotFoundError(f"cannot save the checkpoint to {path!r}: the folder {folder!r} does not exist")
    return target, folder


def _write_atomically(path, target, folder, arrays):
    """Write ``arrays`` as an .npz to a temporary file in ``folder``, fsync it, then rename it onto ``target``.

    The new file gets the old one's permissions (or the umask's); on any error
    the temporary file is removed, and an OSError is raised again naming ``path``.
    """
    mode = _file_mode(target)
    try:
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix="." + os.path.basename(target) + ".",
                                             suffix=".tmp", delete=False)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot save the checkpoint to {path!r}: cannot create a file in "
                                 f"{folder!r} ({exc.strerror or exc})") from exc
    tmp = handle.name
    try:
        with handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(tmp, mode)
        except OSError:  # file systems without POSIX modes: keep what the folder gives
            pass
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            where = f"{path} (the link's target {target})" if os.path.islink(path) else path
            message = f"cannot save the checkpoint to {where!r}: {exc.strerror or exc}"
            raise (OSError(exc.errno, message) if exc.errno else OSError(message)) from exc
        raise


def _config_text(config):
    """The JSON that ``save`` stores: ``config`` with exactly CONFIG_FIELDS, keys sorted."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    _exactly(config, CONFIG_FIELDS, "config must have exactly the fields")
    if _expected_size(config["layer_dims"]) is None:
        raise ValueError(f"config's layer_dims must be a list of at least 2 positive integers, "
                         f"got {config['layer_dims']!r}")
    try:
        return json.dumps(config, allow_nan=False, sort_keys=True)
    except ValueError as exc:  # NaN or inf
        raise ValueError(f"config must be JSON-ready: {exc}") from None
    except TypeError as exc:
        raise TypeError(f"config must be JSON-ready: {exc}") from None


def _theta_to_save(theta, layer_dims):
    """``theta`` as a C-contiguous native float64 vector, checked against layer_dims and for NaN or inf."""
    theta = np.asarray(theta)
    if theta.dtype.kind != "f" or theta.dtype.itemsize != 8:
        raise TypeError(f"theta must be float64, got dtype {theta.dtype}")
    if theta.ndim != 1:
        raise ValueError(f"theta must be a 1-D vector, got shape {theta.shape}")
    size = _expected_size(layer_dims)
    if theta.size != size:
        raise ValueError(f"theta has {theta.size} entries but the config's layer_dims {layer_dims} imply {size}")
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    found = Layout.from_layer_dims(layer_dims).nonfinite(theta)
    if found is not None:
        raise ValueError(f"theta contains NaN or inf: {found}; such a checkpoint could not be loaded")
    return theta


def _kind(mode):
    """What a non-regular file is, in words."""
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a regular file"


def _as_path(path):
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError("path must not be empty")
    return path


def _file_mode(path):
    """Permissions for the new file: the old file's, else 0o666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    umask = None
    try:  # Linux: read the umask without changing it (os.umask is process-wide)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    except (OSError, ValueError):
        pass
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(folder):
    """Make the rename durable where the platform allows it (not on Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------- loading
def load(path, *, max_parameters, allocate=None, limit_name="max_parameters"):
    """Read a checkpoint written by ``save``: its config and theta.

    Nothing in the file is unpickled or executed: object arrays are refused.
    ``Network.load(path)`` calls this to build a Network.

    Parameters
    ----------
    path : str or os.PathLike
    max_parameters : int
        Most entries theta may have; a larger theta is refused from its
        header, before anything of its size is allocated.
    allocate : callable, optional
        ``allocate(config) -> ndarray``: validates the config (a TypeError or
        ValueError it raises becomes the ValueError below) and returns the
        writable, C-contiguous float64 vector, of the size the config's
        layer_dims imply, that theta's data is read into. Default: a new array.
    limit_name : str
        What ``max_parameters`` is called in the message that refuses a theta
        over it.

    Returns
    -------
    (config, theta) : (dict, ndarray)
        The config with exactly ``CONFIG_FIELDS``, and exactly the saved
        theta, in the array that ``allocate`` returned.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        The file is not a valid minnet checkpoint: not a regular file (a FIFO,
        a device, a socket), not an .npz archive
        (empty, truncated, corrupted), other keys than format_version, config
        and theta, an unsupported version, a pickled object array, a config
        that is not the JSON of a valid configuration (one that ``allocate``
        refuses), a theta over ``max_parameters`` entries, or a theta that is
        not a finite float64 vector of the size the configuration implies.

    Examples
    --------
    >>> import os, tempfile
    >>> config = {"layer_dims": [2, 1], "hidden": "relu", "output": "sigmoid", "lambd": 0.0,
    ...           "keep_prob": [], "init": "he", "seed": 0}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save(os.path.join(folder, "net.npz"), config, np.array([0.5, -1.0, 0.25]))
    ...     loaded, theta = load(os.path.join(folder, "net.npz"), max_parameters=1000)
    >>> loaded == config, theta.tolist()
    (True, [0.5, -1.0, 0.25])
    """
    path = _as_path(path)
    bad = _loadable(path)
    # O_NONBLOCK: should the path become a FIFO after the check above, opening it must not block
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f, _open_archive(f, bad) as archive:
        return _read_checkpoint(archive, bad, max_parameters, allocate, limit_name)


def _loadable(path):
    """The start of load's messages, "'path' is not a minnet checkpoint", once ``path`` is a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no minnet checkpoint at {path!r}: the file does not exist") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"cannot load a checkpoint from {path!r}: it is a directory")
    bad = f"{path!r} is not a minnet checkpoint"
    if not stat.S_ISREG(mode):
        raise ValueError(f"{bad}: it is {_kind(mode)}, not a regular file")
    return bad


def _open_archive(f, bad):
    """The zip archive in the open file ``f``, once ``f`` shows a regular file that starts like one."""
    mode = os.fstat(f.fileno()).st_mode
    if not stat.S_ISREG(mode):
        raise ValueError(f"{bad}: it is {_kind(mode)}, not a regular file")
    if f.read(4) != b"PK\x03\x04":
        raise ValueError(f"{bad}: it is not an .npz archive (empty or wrong file type)")
    f.seek(0)
    try:
        return zipfile.ZipFile(f)
    except (ValueError,) + _READ_ERRORS as exc:
        raise ValueError(f"{bad}: the .npz archive is truncated or corrupted ({exc})") from None


def _read_checkpoint(archive, bad, max_parameters, allocate, limit_name):
    """(config, theta) from the open archive: every member checked, theta read into ``allocate``'s vector."""
    members = _members(archive, bad)
    version = _read_small(archive, members["format_version"], "format_version", bad)
    _check_version(version, bad)
    config = _parse_config(_read_small(archive, members["config"], "config", bad), bad)
    # theta's header is checked against the limit and layer_dims before anything of its size exists
    dtype, size = _check_theta_header(archive, members["theta"], config["layer_dims"], bad,
                                      max_parameters, limit_name)
    theta = _allocate(allocate, config, size, bad)
    _read_theta(archive, members["theta"], dtype, theta, config["layer_dims"], bad)
    return config, theta


def _allocate(allocate, config, size, bad):
    """The vector theta's data goes into: ``allocate(config)``'s, after it accepted the config."""
    if allocate is None:
        if _expected_size(config["layer_dims"]) is None:
            raise ValueError(f"{bad}: its config is not a valid Network configuration: layer_dims must be at "
                             f"least 2 positive integers, got {config['layer_dims']!r}")
        return np.empty(size)
    try:
        theta = allocate(config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{bad}: its config is not a valid Network configuration: {exc}") from None
    if (not isinstance(theta, np.ndarray) or theta.dtype != np.float64 or theta.shape != (size,)
            or not theta.flags.c_contiguous or not theta.flags.writeable):
        raise TypeError(f"allocate must return a writable, C-contiguous float64 vector of {size} entries, "
                        f"got {type(theta).__name__} {getattr(theta, 'dtype', '')} {getattr(theta, 'shape', '')}")
    return theta


def _exactly(found, expected, message):
    """Raise ValueError(message ...) unless ``found`` holds exactly the names ``expected``."""
    missing = [k for k in expected if k not in found]
    extra = sorted(k for k in found if k not in expected)
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        if extra:
            parts.append(f"unexpected {', '.join(map(repr, extra))}")
        raise ValueError(f"{message} {', '.join(expected)} ({'; '.join(parts)})")


def _members(archive, bad):
    """Map each key to its ZipInfo; exactly KEYS, each once, as .npy members."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    keys = [name[:-4] if name.endswith(".npy") else name for name in names]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{bad}: the archive holds duplicate entries {sorted(keys)}")
    _exactly(keys, KEYS, f"{bad}: expected exactly the keys")
    by_key = dict(zip(keys, infos))
    for key in KEYS:
        if not by_key[key].filename.endswith(".npy"):
            raise ValueError(f"{bad}: entry {key!r} is not a .npy array")
    return by_key


def _read_header(member):
    """(shape, fortran_order, dtype) from an open .npy member, positioned at its data."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise ValueError(f"unsupported .npy format version {version}")


def _header(archive, info, key, bad):
    """(shape, dtype) of one member, refusing object dtypes before any data is read."""
    try:
        with archive.open(info) as member:
            shape, _, dtype = _read_header(member)
    except ValueError as exc:
        raise ValueError(f"{bad}: entry {key!r} is not a readable .npy array ({exc})") from None
    except _READ_ERRORS as exc:
        raise ValueError(f"{bad}: entry {key!r} is truncated or corrupted ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{bad}: entry {key!r} is a pickled object array; minnet checkpoints never contain "
                         f"pickles and load refuses them (nothing was unpickled)")
    return shape, dtype


def _read_array(archive, info, key, bad):
    try:
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{bad}: entry {key!r} holds pickled data; minnet checkpoints never contain "
                             f"pickles and load refuses them (nothing was unpickled)") from None
        raise ValueError(f"{bad}: entry {key!r} is truncated or corrupted ({exc})") from None
    except _READ_ERRORS as exc:
        raise ValueError(f"{bad}: entry {key!r} is truncated or corrupted ({exc})") from None


def _read_small(archive, info, key, bad):
    if info.file_size > _MAX_SMALL_MEMBER:
        raise ValueError(f"{bad}: entry {key!r} is implausibly large ({info.file_size} bytes)")
    _header(archive, info, key, bad)
    return _read_array(archive, info, key, bad)


def _check_version(version, bad):
    if version.dtype.kind not in "iu" or version.size != 1 or version.ndim > 1:
        raise ValueError(f"{bad}: format_version must be one integer, got dtype {version.dtype} "
                         f"and shape {version.shape}")
    value = int(version.reshape(()))
    if value not in SUPPORTED_VERSIONS:
        raise ValueError(f"{bad}: format_version {value} is not supported (this minnet reads version "
                         f"{', '.join(map(str, SUPPORTED_VERSIONS))}); was it written by a newer minnet?")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _unique_pairs(pairs):
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate field(s) {', '.join(map(repr, duplicates))}")
    return dict(pairs)


def _parse_config(array, bad):
    """The config dict, with exactly CONFIG_FIELDS."""
    if array.dtype == np.uint8 and array.ndim == 1:
        try:
            text = array.tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{bad}: config is not UTF-8 text ({exc})") from None
    elif array.dtype.kind == "U" and array.size == 1 and array.ndim <= 1:
        text = str(array.reshape(()))
    else:
        raise ValueError(f"{bad}: config must be a uint8 byte vector or a unicode string holding JSON, "
                         f"got dtype {array.dtype} and shape {array.shape}")
    try:
        config = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{bad}: config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{bad}: config must be a JSON object, got {type(config).__name__}")
    _exactly(config, CONFIG_FIELDS, f"{bad}: config must have exactly the fields")
    if not isinstance(config["layer_dims"], list):
        raise ValueError(f"{bad}: its config is not a valid Network configuration: layer_dims must be a "
                         f"list, got {config['layer_dims']!r}")
    if not isinstance(config["keep_prob"], (list, numbers.Real)) or isinstance(config["keep_prob"], bool):
        raise ValueError(f"{bad}: its config is not a valid Network configuration: keep_prob must be a "
                         f"number or a list, got {config['keep_prob']!r}")
    return config


def _expected_size(layer_dims):
    """Parameters that layer_dims implies, or None when they are not all positive integers."""
    if len(layer_dims) < 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in layer_dims):
        return None
    return sum(layer_dims[l] * (layer_dims[l - 1] + 1) for l in range(1, len(layer_dims)))


def _check_theta_header(archive, info, layer_dims, bad, limit, limit_name):
    """(dtype, size) of theta, once its header shows a float64 vector within ``limit`` of the size layer_dims imply."""
    shape, dtype = _header(archive, info, "theta", bad)
    if dtype.kind != "f" or dtype.itemsize != 8:
        raise ValueError(f"{bad}: theta must be float64, got dtype {dtype}")
    if len(shape) != 1:
        raise ValueError(f"{bad}: theta must be a 1-D vector, got shape {shape}")
    if shape[0] > limit:
        raise ValueError(f"{bad}: theta has {shape[0]:,} entries, more than the limit of {limit:,} "
                         f"({limit_name})")
    size = _expected_size(layer_dims)
    if size is not None:
        if shape[0] != size:
            raise ValueError(f"{bad}: theta has {shape[0]} entries but the config's layer_dims "
                             f"{layer_dims} imply {size}")
        if info.file_size > 8 * size + _NPY_HEADER_SLACK:
            raise ValueError(f"{bad}: entry 'theta' is larger than its header says ({info.file_size} bytes)")
    return dtype, shape[0]


def _read_theta(archive, info, dtype, theta, layer_dims, bad):
    """Read theta's data straight into ``theta`` (its size already checked), then check it is finite."""
    out = memoryview(theta).cast("B")
    try:
        with archive.open(info) as member:
            _read_header(member)
            done = 0
            while done < len(out):
                count = member.readinto(out[done:done + _CHUNK])
                if not count:
                    raise ValueError(f"its data ends after {done} of {len(out)} bytes")
                done += count
            if member.read(1):
                raise ValueError("it holds more data than its header says")
    except ValueError as exc:
        raise ValueError(f"{bad}: entry 'theta' is truncated or corrupted ({exc})") from None
    except _READ_ERRORS as exc:
        raise ValueError(f"{bad}: entry 'theta' is truncated or corrupted ({exc})") from None
    if not dtype.isnative:
        theta.byteswap(inplace=True)
    found = Layout.from_layer_dims(layer_dims).nonfinite(theta)
    if found is not None:
        raise ValueError(f"{bad}: theta contains NaN or inf: {found}")

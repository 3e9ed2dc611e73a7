"""Memory: what a gradient check, a training run or a data set will need, estimated from their sizes before
anything is allocated, the memory available now, and ``require``, the refusal (a ValueError) of what does not fit.
Imports of minnet only the activations' registry, inside ``require_network_check`` (the check, training and the
CLI call this module); numba and psutil only inside the functions that read them."""
import os

FLOAT = 8                # bytes of a float64 entry
OVERHEAD = 16 * 2**20    # bytes any check or run adds besides its arrays: the threads' stacks and arenas, small arrays
# Arrays of theta's size (n entries) a check holds at its peak: theta's copy, backprop, the values, errors and
# kinks of every entry, the refereed values, the plan's orders and indices, the report's columns.
CHECK_THETA_ARRAYS = 12
# Arrays of the forward cache's size (sum(n_1 .. n_L) * m) one pass of a check holds: Z, A, the kernels' g(Z) and
# backprop's error (|A|); and of max(n_1 .. n_L) * m: the passes' buffers. Where the hidden activation has kinks,
# the nearby point that judges them runs a second pass while the first is held (measured: 6 such arrays for a
# smooth activation, 10 to 12 with kinks); one more array of the cache's size is the margin.
CHECK_CACHE_ARRAYS = 4
CHECK_WIDTH_ARRAYS = 2
SEGMENT_SUMS = 9         # floats per (hidden unit, example) of the segment method besides its n_L directions
TRAIN_THETA_ARRAYS = 5   # the optimizer's two moments, its last finite theta, the gradient, theta's update
TRAIN_BATCH_ARRAYS = 3   # Z, A and the dropout multipliers of one mini-batch
# Floats per example of a built-in 2-D dataset at its peak: at most 11 while it is made (moons, measured with
# tracemalloc at m = 10**6), then X and Y copied into the training and test split (3) once the draw is gone.
DATASET_FLOATS = 14
GB = 1e9


def available():
    """The bytes of memory available to this process now, or None when the system does not say.

    On Linux /proc/meminfo's MemAvailable, lowered to what a cgroup's memory limit leaves (a container);
    elsewhere psutil's ``virtual_memory().available`` when psutil is installed, else the free pages of
    ``os.sysconf``. None: unknown, and ``require`` refuses nothing.
    """
    found = _meminfo()
    if found is None:
        found = _psutil()
    if found is None:
        found = _sysconf()
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def _meminfo():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _psutil():
    try:
        import psutil
    except ImportError:
        return None
    try:
        return int(psutil.virtual_memory().available)
    except Exception:  # psutil without support for this system
        return None


def _sysconf():
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_room():
    """What a cgroup's memory limit leaves (limit - usage), or None without a limit (v2, then v1)."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(usage_file) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:  # no limit (v1 writes a huge number)
            return None
        return max(0, int(limit) - usage)
    return None


ADVICE = "ask for less (fewer examples or smaller layers), or free memory"


def require(nbytes, *, what, advice=ADVICE):
    """Refuse, before any of it is allocated, work that needs more memory than is available.

    nbytes : the estimate (``check_bytes``, ``training_bytes``, ``data_bytes`` or their sum);
    what : the work, as the message names it ("this gradient check"); advice : what to do instead, in the
    caller's terms (the command line names its options). Returns nbytes; raises
    ValueError with the estimate and the memory available when it does not fit. When the
    available memory is unknown (``available()`` is None) nothing is refused.
    """
    have = available()
    if have is not None and nbytes > have:
        raise ValueError(f"not enough memory: {what} needs about {_gb(nbytes)} (estimated from its sizes) but the "
                         f"machine has {_gb(have)} available; {advice}")
    return nbytes


def require_network_check(net, m, *, method, threads, nested=False, with_data=False, advice=ADVICE):
    """``require`` for a gradient check of a minnet ``Network`` on m examples (``check_bytes``, its sizes,
    dropout and hidden activation read from ``net``; method may be "auto"); with_data: the data too, not
    made yet (``data_bytes``); nested: the check of a nearby point within another check, whose estimate
    counted it (nothing is refused). Returns the estimate, or 0 when nested."""
    if nested:
        return 0
    from .ops.activations import SMOOTH
    need = check_bytes(net.layer_dims, m, method=method, threads=threads, dropout=net.uses_dropout,
                       kinks=net.hidden not in SMOOTH)
    if with_data:
        need += data_bytes(net.layer_dims, m)
    return require(need, what="this gradient check and its data" if with_data else "this gradient check",
                   advice=advice)


def require_training(net, m, *, batch_size):
    """``require`` for ``Network.fit`` of ``net`` on m examples in mini-batches of batch_size (``training_bytes``)."""
    return require(training_bytes(net.layer_dims, m, batch_size=batch_size, dropout=net.uses_dropout),
                   what="this training run")


def _gb(nbytes):
    """'3.2 GB', '12,345 GB' or '45.1 MB' (decimal units, as the system's tools write them)."""
    if nbytes >= 100 * GB:
        return f"{nbytes / GB:,.0f} GB"
    return f"{nbytes / GB:.3g} GB" if nbytes >= GB else f"{nbytes / 1e6:.3g} MB"


def dataset_bytes(m):
    """Bytes that making one of ``minnet.datasets``' 2-D sets of m examples needs at its peak, with the copies
    ``minnet train`` splits it into: DATASET_FLOATS float64 numbers per example."""
    return FLOAT * DATASET_FLOATS * _count(m, "m")


def data_bytes(layer_dims, m):
    """Bytes of a data set for a network of ``layer_dims``: X (n_0, m) and Y (n_L, m), float64."""
    dims = _dims(layer_dims)
    return FLOAT * (dims[0] + dims[-1]) * _count(m, "m")


def check_bytes(layer_dims, m, *, method, threads=None, dropout=False, kinks=True):
    """Bytes a gradient check of a minnet ``Network`` needs at its peak, besides its data (``data_bytes``).

    layer_dims : all layer sizes; m : examples; method : "segment", "incremental" or "full", or
    "auto" (segment with kinks, else incremental, as ``minnet.check.plan.method_for``); threads : the
    kernels' threads (None: Numba's); dropout : the network uses dropout (its multipliers are one more
    array of the cache's size per pass); kinks : the hidden activation has kinks (not smooth), so that
    the nearby point where they are judged may hold a second pass. Counts theta-sized arrays, the forward cache and
    what is computed from it, the passes' buffers, |X| (backprop's error), and each method's work
    arrays (per thread for the incremental and full kernels). Meant to be above the measured peak,
    and within about twice it wherever the arrays are large enough to matter.
    """
    dims, m, threads = _dims(layer_dims), _count(m, "m"), _threads(threads)
    if method == "auto":  # the segment method applies to the piecewise-linear activations, the ones with kinks
        method = "segment" if kinks else "incremental"
    n = _parameters(dims)
    cache = sum(dims[1:]) * m
    passes = 2 if kinks else 1
    floats = (CHECK_THETA_ARRAYS * n + (passes * (CHECK_CACHE_ARRAYS + bool(dropout)) + 1) * cache
              + passes * CHECK_WIDTH_ARRAYS * max(dims[1:]) * m + dims[0] * m + 4 * dims[-1] * m)
    if method == "segment":  # the directions (n_L per hidden unit and example) and their sums; the fallback's work
        floats += sum(dims[1:-1]) * m * (dims[-1] + SEGMENT_SUMS) + threads * _incremental_work(dims, m)
    elif method == "incremental":
        floats += threads * _incremental_work(dims, m)
    elif method == "full":  # per thread: theta's copy, its two L2 terms, the forward caches of J(+) and J(-)
        floats += threads * (3 * n + 4 * cache)
    else:
        raise ValueError(f"method must be 'auto', 'segment', 'incremental' or 'full', got {method!r}")
    return FLOAT * floats + OVERHEAD


def training_bytes(layer_dims, m, *, batch_size=None, dropout=False):
    """Bytes ``Network.fit`` needs besides its data (``data_bytes``): X transposed for the mini-batches, the
    optimizer's state (``TRAIN_THETA_ARRAYS`` arrays of theta's size) and one epoch's workspace (the
    forward cache of a mini-batch, backprop's buffers, the batch itself); batch_size None: all m."""
    dims, m = _dims(layer_dims), _count(m, "m")
    batch = m if batch_size is None else min(_count(batch_size, "batch_size"), m)
    n = _parameters(dims)
    floats = (dims[0] * m + dims[-1] * m + 3 * m + TRAIN_THETA_ARRAYS * n
              + (TRAIN_BATCH_ARRAYS - (not dropout)) * sum(dims[1:]) * batch
              + 3 * max(dims[1:]) * batch + (dims[0] + dims[-1]) * batch)
    return FLOAT * floats + OVERHEAD


def _incremental_work(dims, m):
    """Floats of one thread's work arrays of the incremental kernel (``_incremental.work_size``)."""
    width = max(dims[2:]) if len(dims) > 2 else dims[-1]
    group = max(1, min(64, 4096 // m))
    return (2 * width + 5) * 2 * group * m + 20 * m


def _parameters(dims):
    return sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims)))


def _dims(layer_dims):
    dims = [_count(d, "layer_dims entries") for d in layer_dims]
    if len(dims) < 2:
        raise ValueError(f"layer_dims needs an input and an output size, got {list(layer_dims)}")
    return dims


def _count(value, what):
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
        raise ValueError(f"{what} must be positive integers, got {value!r}")
    return int(value)


def _threads(threads):
    if threads is None:
        try:
            import numba
            return max(1, int(numba.get_num_threads()))
        except ImportError:
            return max(1, os.cpu_count() or 1)
    return max(1, int(threads))

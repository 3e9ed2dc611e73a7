"""The flat parameter vector theta and the table (`Layout`) that maps it back to named blocks.

Owns theta's order, the course's dictionary conversions and the names of bad entries. Sits below
network and checkpoint: imports nothing of minnet but _validation.
"""
# theta holds W1, b1, W2, b2, ... one after another, each block row-major.
# A Layout knows every block's name, offset and shape, so any index of theta
# can be traced back to (block, row, column) and any block viewed in place.
import math
import re
from collections.abc import Mapping, MutableMapping
from typing import NamedTuple

import numpy as np


class Block(NamedTuple):
    """One named block of theta: ``theta[offset:offset + size].reshape(shape)``."""

    name: str
    offset: int
    shape: tuple

    @property
    def size(self):
        return math.prod(self.shape)  # Python ints: no int64 overflow


class Layout:
    """Names, offsets and shapes of the blocks of a flat parameter vector.

    Parameters
    ----------
    blocks : iterable of (name, shape)
        In theta order.

    Examples
    --------
    >>> layout = Layout.from_layer_dims([2, 3, 1])
    >>> [b.name for b in layout.blocks]
    ['W1', 'b1', 'W2', 'b2']
    >>> layout.locate(6)   # b1[0]
    ('b1', 0, 0)
    """

    def __init__(self, blocks):
        table, offset = [], 0
        for name, shape in blocks:
            block = Block(str(name), offset, tuple(int(s) for s in shape))
            table.append(block)
            offset += block.size
        self.blocks = tuple(table)
        self.size = offset
        self._starts = np.array([b.offset for b in self.blocks], dtype=np.int64)
        self._starts.flags.writeable = False
        self._by_name = {b.name: b for b in self.blocks}

    @classmethod
    def from_layer_dims(cls, layer_dims):
        blocks = []
        for l in range(1, len(layer_dims)):
            blocks.append((f"W{l}", (layer_dims[l], layer_dims[l - 1])))
            blocks.append((f"b{l}", (layer_dims[l], 1)))
        return cls(blocks)

    def __len__(self):
        return self.size

    def __getitem__(self, name):
        return self._by_name[name]

    def __contains__(self, name):
        return name in self._by_name

    def __eq__(self, other):
        return isinstance(other, Layout) and self.blocks == other.blocks

    def __repr__(self):
        inner = ", ".join(f"{b.name}{b.shape}" for b in self.blocks)
        return f"Layout({inner}; size={self.size})"

    @property
    def names(self):
        return [b.name for b in self.blocks]

    @property
    def starts(self):
        """Read-only int64 array (n_blocks,): where each block starts in theta."""
        return self._starts

    def block_of(self, index):
        """The block that holds ``theta[index]``."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} is outside theta of size {self.size}")
        return self.blocks[int(np.searchsorted(self._starts, index, side="right")) - 1]

    def locate(self, index):
        """Map an index of theta to ``(block name, row, column)``."""
        block = self.block_of(index)
        local = int(index) - block.offset
        columns = block.shape[-1] if len(block.shape) >= 2 else 1
        return block.name, local // columns, local % columns

    def nonfinite(self, theta):
        """None when ``theta`` is finite, else where its first NaN or inf is, e.g. "W1[0, 3] is nan (theta[6])".

        Cheap when theta is finite (one summation, no allocation).
        """
        from . import _validation as v
        if v.all_finite(theta):
            return None
        bad = np.flatnonzero(~np.isfinite(theta))
        name, row, column = self.locate(int(bad[0]))
        more = f", and {bad.size - 1} more NaN or inf" if bad.size > 1 else ""
        return f"{name}[{row}, {column}] is {float(theta[bad[0]])!r} (theta[{int(bad[0])}]{more})"

    def views(self, theta):
        """Dict of block name -> view into theta with the block's shape."""
        return {b.name: theta[b.offset:b.offset + b.size].reshape(b.shape) for b in self.blocks}


class Parameters(MutableMapping):
    """Course-style access to theta: ``parameters["W1"]`` is a view, assignment writes into theta.

    The keys are the layout's blocks, fixed: new keys and deletions are
    refused. Reading a key returns a view into theta (in-place edits change
    theta); assigning a key copies the value into theta after checking it,
    so ``parameters["W1"] = parameters["W1"] - lr * dW1`` updates the network.

    Parameters
    ----------
    theta : ndarray, shape (layout.size,)
        float64, C-contiguous; written in place.
    layout : Layout

    Examples
    --------
    >>> theta = np.zeros(3)
    >>> p = Parameters(theta, Layout([("W1", (1, 2)), ("b1", (1, 1))]))
    >>> p["W1"] = p["W1"] + 1.0
    >>> theta
    array([1., 1., 0.])
    """

    def __init__(self, theta, layout):
        self._theta = theta
        self._layout = layout

    def _block(self, key):
        if isinstance(key, str) and key in self._layout:
            return self._layout[key]
        return None

    def __getitem__(self, key):
        block = self._block(key)
        if block is None:
            raise KeyError(key)
        return self._theta[block.offset:block.offset + block.size].reshape(block.shape)

    def __setitem__(self, key, value):
        block, array = self._checked(key, value)
        self._theta[block.offset:block.offset + block.size] = array.ravel()

    def _checked(self, key, value):
        """(block, float64 array of the block's shape), or a TypeError/ValueError naming the key."""
        from . import _validation as v
        block = self._block(key)
        if block is None:
            raise ValueError(f"parameters has no block {key!r}; its keys are {', '.join(self._layout.names)}, "
                           f"fixed by layer_dims (build a new Network for other layers)")
        name = f"parameters[{key!r}]"
        array = v.float_array(value, name)
        shape = np.shape(value)  # float_array makes a 0-d value 1-d
        if shape != block.shape:
            raise ValueError(f"{name} must have shape {block.shape}, got {shape}")
        return block, array

    def __delitem__(self, key):
        raise TypeError(f"parameters' keys are fixed by layer_dims; cannot delete {key!r} "
                        f"(build a new Network for other layers)")

    def __iter__(self):
        return iter(self._layout.names)

    def __len__(self):
        return len(self._layout.blocks)

    def __contains__(self, key):
        return self._block(key) is not None

    def assign(self, values):
        """Write every block from a mapping with exactly these keys; nothing is written unless all are valid."""
        if not isinstance(values, Mapping):
            raise TypeError(f"parameters must be a mapping of block name -> array, got {type(values).__name__}")
        missing = [k for k in self if k not in values]
        extra = [k for k in values if k not in self]
        if missing or extra:
            raise ValueError(f"parameters must have exactly the keys {', '.join(self)}"
                             f"{'; missing ' + ', '.join(missing) if missing else ''}"
                             f"{'; unexpected ' + ', '.join(map(repr, extra)) if extra else ''}")
        checked = [self._checked(key, values[key]) for key in self]
        for block, array in checked:
            self._theta[block.offset:block.offset + block.size] = array.ravel()

    def copy(self):
        """A plain dict of copies: a snapshot that later updates do not change."""
        return {key: view.copy() for key, view in self.items()}

    def __repr__(self):
        return f"Parameters({dict(self.items())!r})"


_COURSE_KEY = re.compile(r"^d?([Wb])(\d+)$")


def _course_order(keys):
    """Sort course-style keys as W1, b1, W2, b2, ...; keep other keys as given."""
    matches = [_COURSE_KEY.match(k) if isinstance(k, str) else None for k in keys]
    if not all(matches):
        return list(keys)
    return [k for _, k in sorted(zip(matches, keys), key=lambda mk: (int(mk[0].group(2)), mk[0].group(1) == "b"))]


def _as_float_array(value, name):
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise TypeError(f"{name} must be real, got complex dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def flatten(parameters):
    """Flatten a course-style parameter dict into one vector and its layout.

    Parameters
    ----------
    parameters : dict (or other mapping) of str -> array
        "W1", "b1", ... (any depth); other names are kept in the dict's order.

    Returns
    -------
    theta : ndarray, shape (n_parameters,)
        float64, blocks in order W1, b1, W2, b2, ..., each row-major.
    layout : Layout
        Maps every index of theta to (block, row, column).
    """
    if not isinstance(parameters, Mapping) or not parameters:
        raise TypeError("parameters must be a non-empty dict of name -> array")
    keys = _course_order(list(parameters))
    arrays = [_as_float_array(parameters[k], f"parameters[{k!r}]") for k in keys]
    layout = Layout([(k, a.shape) for k, a in zip(keys, arrays)])
    theta = np.empty(layout.size)
    for block, array in zip(layout.blocks, arrays):
        theta[block.offset:block.offset + block.size] = array.ravel()
    return theta, layout


def unflatten(theta, layout):
    """Split theta into a dict of arrays shaped by ``layout`` (views into theta).

    Parameters
    ----------
    theta : ndarray, shape (layout.size,) or the course's column (layout.size, 1)
    layout : Layout, a list of layer dims, or a parameters dict whose arrays give the shapes
    """
    if isinstance(layout, Mapping):
        layout = flatten(layout)[1]
    elif not isinstance(layout, Layout):
        layout = Layout.from_layer_dims(list(layout))
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim == 2 and theta.shape[1] == 1:
        theta = theta[:, 0]
    if theta.ndim != 1 or theta.size != layout.size:
        raise ValueError(f"theta must be a vector of length {layout.size} (or a column ({layout.size}, 1)), "
                         f"got shape {theta.shape}")
    return layout.views(theta)


def flatten_gradients(gradients, layout, shapes=False):
    """Flatten gradients "dW1", "db1", ... (or "W1", "b1", ...) in ``layout``'s order.

    Parameters
    ----------
    gradients : dict of str -> array
        One entry per block of ``layout``, named like the block or with a "d"
        prefix; other keys ("dZ1", "dA1", ...) are ignored.
    layout : Layout
    shapes : bool
        False: a block must have its parameter's shape, or the same entries
        without its length-1 axes (else ValueError). True: any shape is
        taken, and reported (a gradient check calls it a bug).

    Returns
    -------
    dtheta : ndarray, shape (layout.size,)
    mismatched : dict, only with ``shapes=True``
        block name -> {"key", "shape" (the gradient's), "expected" (the
        parameter's), "update" (the shape ``p - lr * g`` broadcasts to, None
        where it fails), "compared" (False where the sizes differ and the
        gradient does not broadcast to the parameter: its entries are set to 0)}.
    """
    if not isinstance(gradients, Mapping):
        raise TypeError(f"gradients must be a dict, got {type(gradients).__name__}")
    dtheta = np.empty(layout.size)
    mismatched = {}
    for block in layout.blocks:
        key = "d" + block.name if "d" + block.name in gradients else block.name
        if key not in gradients:
            raise ValueError(f"gradients has no entry 'd{block.name}' (or '{block.name}'); keys are "
                             f"{sorted(map(str, gradients))}")
        array = _as_float_array(gradients[key], f"gradients[{key!r}]")
        part = dtheta[block.offset:block.offset + block.size]
        if array.shape == block.shape:
            part[:] = array.ravel()
            continue
        # the same entries in the same order without length-1 axes: fine for a flat vector, not for an update
        if not shapes and array.squeeze().shape != tuple(s for s in block.shape if s != 1):
            raise ValueError(f"gradients[{key!r}] has shape {array.shape}, expected {block.shape}")
        try:
            update = np.broadcast_shapes(block.shape, array.shape)
        except ValueError:
            update = None
        compared = array.size == block.size or update == block.shape
        if array.size == block.size:
            part[:] = array.ravel()
        elif compared:
            part[:] = np.broadcast_to(array, block.shape).ravel()
        else:
            part[:] = 0.0
        mismatched[block.name] = {"key": key, "shape": array.shape, "expected": block.shape, "update": update,
                                  "compared": compared}
    return (dtheta, mismatched) if shapes else dtheta


# ------------------------------------------------- the course's own names
def dictionary_to_vector(parameters):
    """The course's ``dictionary_to_vector``: a column vector and the name of each entry.

    Parameters
    ----------
    parameters : dict of str -> array, "W1", "b1", ... (any depth)

    Returns
    -------
    theta : ndarray, shape (n_parameters, 1)
        W1, b1, W2, b2, ..., each row-major, as the course concatenates them.
    keys : list of str, length n_parameters
        The block every entry comes from ("W1" repeated W1.size times, ...).

    ``flatten`` returns the same numbers as a flat vector with a ``Layout``.
    """
    theta, layout = flatten(parameters)
    keys = [name for block in layout.blocks for name in [block.name] * block.size]
    return theta.reshape(-1, 1), keys


def vector_to_dictionary(theta, layout):
    """The course's ``vector_to_dictionary``, with the shapes passed in.

    The course's version hard-codes the shapes of its [4, 5, 3, 1] network;
    this one takes them from ``layout``: a Layout, the layer dims, or a
    parameters dict. theta may be the course's column (n, 1) or a flat vector.
    Returns views into theta.
    """
    return unflatten(theta, layout)


def gradients_to_vector(gradients, layout=None):
    """The course's ``gradients_to_vector``: dW1, db1, dW2, ... as one column, shape (n_parameters, 1).

    Entries the course's backprop also returns ("dZ1", "dA1", ...) are left
    out. With ``layout`` (the parameters' Layout) the blocks are checked
    against it; ``flatten_gradients`` gives the same numbers as a flat vector.
    """
    if not isinstance(gradients, Mapping):
        raise TypeError(f"gradients must be a dict, got {type(gradients).__name__}")
    if layout is None:
        names = [k[1:] for k in gradients if isinstance(k, str) and _COURSE_KEY.match(k) and k.startswith("d")]
        if not names:
            raise ValueError(f"gradients has no entries named like 'dW1' or 'db1'; keys are {sorted(map(str, gradients))}")
        shapes = {name: np.shape(gradients["d" + name]) for name in names}
        layout = Layout([(name, shapes[name]) for name in _course_order(names)])
    return flatten_gradients(gradients, layout).reshape(-1, 1)

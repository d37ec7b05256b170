"""Argument conversion shared by the public functions, in one place.

Python converts types and checks shapes, the two things C cannot do: ctypes silently truncates or wraps an
oversized or fractional integer, takes any object as a truthy flag, cuts a path at a NUL byte, and a raw
buffer carries no length, so C would read past the end of a short array. Values (positive sizes, finite
numbers, class indices in range) are Swift's to check, so each check lives once."""
from __future__ import annotations

import numbers
import os

import numpy as np

from ._ffi import SA_ERR_INVALID_ARGUMENT, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM, SwiftAttrError

INT64_MAX = 2**63 - 1


def as_int(value, name: str, lo: int = -INT64_MAX, hi: int = INT64_MAX) -> int:
    """``value`` as a Python int in [lo, hi]; bools, non-integral numbers and non-numbers are errors."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise SwiftAttrError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    else:
        f = float(value)
        if not np.isfinite(f) or f != int(f):
            raise SwiftAttrError(f"{name}: expected an integer, got {value!r}")
        v = int(f)
    if not lo <= v <= hi:
        raise SwiftAttrError(f"{name} must be in [{lo}, {hi}] (got {v})")
    return v


def as_float(value, name: str) -> float:
    """``value`` as a Python float (finiteness is checked by C, which names the argument)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise SwiftAttrError(f"{name}: expected a number, got {value!r}")
    return float(value)


def as_choice(value, table: dict, name: str) -> int:
    """The code of the option named ``value`` in ``table``."""
    if not isinstance(value, str) or value not in table:
        raise SwiftAttrError(f"{name}: unknown {value!r}; expected one of {', '.join(table)}", SA_ERR_UNKNOWN_ENUM)
    return table[value]


def as_bool(value, name: str) -> bool:
    """``value`` as a bool: True/False (or numpy bools) only; strings, numbers and None are errors, so
    ``exact_kld='no'`` cannot act as True."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise SwiftAttrError(f"{name}: expected True or False, got {value!r}")


def as_path(value, name: str) -> bytes:
    """A file path (str, bytes or os.PathLike) as bytes for C; an embedded NUL byte is an error (C would
    cut the path there)."""
    try:
        path = os.fsencode(value)
    except TypeError:
        raise SwiftAttrError(f"{name}: expected a file path, got {value!r}") from None
    if b"\0" in path:
        raise SwiftAttrError(f"{name}: the path contains a NUL byte: {value!r}")
    if not path:
        raise SwiftAttrError(f"{name}: the path is empty")
    return path


def as_ints(value, count: int, name: str) -> tuple:
    """An int (repeated ``count`` times) or a sequence of ``count`` ints, each checked by :func:`as_int`
    (``stride=2`` or ``stride=(1, 2)`` for a 2-D layer)."""
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) != count:
            raise SwiftAttrError(f"{name}: expected an int or a sequence of {count} ints, got {value!r}")
        return tuple(as_int(v, f"{name}[{i}]" if count > 1 else name) for i, v in enumerate(items))
    if isinstance(value, (str, bytes)):
        raise SwiftAttrError(f"{name}: expected an int or a sequence of {count} ints, got {value!r}")
    return (as_int(value, name),) * count


def as_shape(value, name: str) -> tuple:
    """A shape: an int or a sequence of ints (a string is not a sequence of digits: ``"12"`` is an error, not
    (1, 2)). The dimensions' values (positive, at most 3 of them) are checked by C."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return (as_int(value, name),)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)):
        raise SwiftAttrError(f"{name}: expected a sequence of integers, got {value!r}")
    items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
    return tuple(as_int(d, f"{name}[{i}]") for i, d in enumerate(items))


def is_torch_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor, recognised by its type's module (torch is never imported here)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "numpy")


def from_torch_tensor(value):
    """A torch tensor as a numpy array of its dtype (detached, on the CPU; bfloat16, which numpy lacks, as
    float32); anything else unchanged."""
    if is_torch_tensor(value):
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.resolve_conj().numpy() if t.is_complex() else t.numpy()
    return value


def as_f32(value, name: str) -> np.ndarray:
    """``value`` (an array-like or a torch tensor) as a float32 C-contiguous array (no copy when it already is
    one). Integer and floating arrays convert; bool, complex, string and object arrays are errors (a bool mask or a complex spectrum is not a
    real-valued input, and ``astype`` would silently drop the imaginary part)."""
    try:
        arr = np.asarray(from_torch_tensor(value))
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"{name}: cannot convert to a float32 array ({e})") from None
    if arr.dtype.kind not in "iuf":
        raise SwiftAttrError(f"{name}: cannot convert an array of dtype {arr.dtype} to float32; "
                             "expected real numbers (an integer or floating-point array)")
    return np.asarray(arr, dtype=np.float32, order="C")


def expect_shape(arr: np.ndarray, shape: tuple, name: str, what: str = "") -> np.ndarray:
    """``arr`` unchanged when its shape is ``shape``, else SA_ERR_SHAPE naming both shapes (``what`` says
    what the expected shape is, e.g. "one per output feature")."""
    if arr.shape != tuple(shape):
        because = f" ({what})" if what else ""
        raise SwiftAttrError(f"{name}: expected shape {tuple(shape)}{because}, got {arr.shape}", SA_ERR_SHAPE)
    return arr


def baseline_rows(net, baselines, n: int, name: str = "baselines", broadcast: bool = False):
    """``baselines`` for C as (array or None, row count) against ``net``'s input shape and a batch of ``n``:
    None → (None, 0), zeros in C; a scalar → one filled example. ``broadcast=False`` (the gradient methods):
    else exactly one example (the input shape, or 1 row) or ``n`` rows, SA_ERR_SHAPE naming ``name``
    otherwise. ``broadcast=True`` (the perturbation methods, Captum's broadcasting): a scalar 0 is also
    (None, 0), and any shape that broadcasts to one example or, with a leading axis of ``n``, to the ``n``
    examples is expanded to it.

    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.ones((1, 3)))])
    >>> [b.shape for b, _ in (baseline_rows(net, 0.5, 2), baseline_rows(net, np.ones((2, 3)), 2))]
    [(1, 3), (2, 3)]
    >>> baseline_rows(net, 0, 2, broadcast=True), baseline_rows(net, np.ones((2, 1)), 2, broadcast=True)[0].shape
    ((None, 0), (2, 3))
    """
    if baselines is None:
        return None, 0
    b = as_f32(baselines, name)
    shape = tuple(net.input_shape)
    if b.ndim == 0:
        if broadcast and float(b) == 0.0:
            return None, 0
        return np.full((1,) + shape, b, dtype=np.float32), 1
    if not broadcast:
        if b.shape == shape:
            return np.ascontiguousarray(b[None]), 1
        if b.shape[1:] == shape and b.shape[0] in (1, n):
            return b, b.shape[0]
        raise SwiftAttrError(f"{name}: expected one example of shape {shape} or {n} examples, got shape {b.shape}",
                             SA_ERR_SHAPE)
    rows = n if b.ndim == len(shape) + 1 and b.shape[0] == n else 1
    try:
        full = np.broadcast_to(b, (rows,) + shape) if b.ndim <= len(shape) + 1 else None
    except ValueError:
        full = None
    if full is None:
        raise SwiftAttrError(f"{name}: shape {b.shape} does not broadcast to one example {shape} or to {n} examples",
                             SA_ERR_SHAPE)
    return np.ascontiguousarray(full, dtype=np.float32), rows

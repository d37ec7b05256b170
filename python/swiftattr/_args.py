"""Argument conversion shared by the public functions: integers and choices are checked here, in Python,
because ctypes would silently truncate an oversized or fractional value before C could see it."""
from __future__ import annotations

import numbers

import numpy as np

from ._ffi import SwiftAttrError

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
        raise SwiftAttrError(f"{name}: unknown {value!r}; expected one of {', '.join(table)}", -6)
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
    import os

    try:
        path = os.fsencode(value)
    except TypeError:
        raise SwiftAttrError(f"{name}: expected a file path, got {value!r}") from None
    if b"\0" in path:
        raise SwiftAttrError(f"{name}: the path contains a NUL byte: {value!r}")
    if not path:
        raise SwiftAttrError(f"{name}: the path is empty")
    return path

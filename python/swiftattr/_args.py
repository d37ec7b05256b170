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

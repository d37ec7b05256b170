"""What the library runs on, and its thread setting.

``build_info()`` names the BLAS and the kernel it chose for this CPU: quote it with every timing. The
speed of every method is the speed of its GEMMs, and an OpenBLAS that does not know the CPU (Debian 12's
0.3.21 on a current Xeon) runs generic SSE3 kernels at a third of the CPU's speed or less.
"""
from __future__ import annotations

import json
import os
import warnings

from ._args import as_int
from ._ffi import check, lib

MAX_THREADS = 256


def build_info() -> dict:
    """The build and machine the library runs on.

    Returns a dict with ``version``, ``abi`` (the C interface version), ``blas`` (``"scipy-openblas32"``,
    the default, or ``"system-openblas"``), ``blas_version``, ``blas_core`` (the kernel OpenBLAS chose:
    ``"SkylakeX"``, ``"Haswell"``, ``"Zen"``, ...; ``"Prescott"`` when it does not know the CPU),
    ``blas_config``, ``blas_kernel_generic`` (True when that kernel lacks AVX2 on a CPU that has it),
    ``threads`` (the library's thread count), ``processors``, ``threads_env_ignored``, ``cpu`` (the model
    name), ``cpu_avx2``, ``arch`` and ``kernels`` (the instruction set of the library's own hot loops:
    ``"avx512f"``, ``"avx2"`` or ``"default"``, the widest the CPU runs unless the environment variable
    ``SWIFTATTR_ISA`` caps it; every choice gives the same results).

    Returns
    -------
    dict

    Examples
    --------
    >>> info = build_info()
    >>> info["threads"] >= 1 and info["blas"] in ("scipy-openblas32", "system-openblas")
    True
    """
    return json.loads(lib.sa_build_info().decode("utf-8", "replace"))


def set_num_threads(n: int) -> None:
    """Set the library's thread count (1 to 256) for calls that start afterwards.

    The default is ``SWIFTATTR_NUM_THREADS`` when set to an integer in 1..256, else the number of online
    processors. Chunked methods run that many workers with single-threaded GEMMs; unchunked work (RATE's
    factorisations) runs OpenBLAS on that many threads. The library's OpenBLAS is its own copy, so numpy's
    and scipy's thread settings are not touched, and this setting does not touch theirs. Results do not
    depend on the count beyond float32 rounding; one count gives bit-identical results run to run.

    Parameters
    ----------
    n : int
        In 1..256.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``n`` is not an integer in 1..256.

    Examples
    --------
    >>> before = get_num_threads()
    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads(before)
    >>> set_num_threads(0)
    Traceback (most recent call last):
    ...
    swiftattr._ffi.SwiftAttrError: n must be in [1, 256] (got 0)
    """
    check(lib.sa_set_num_threads(as_int(n, "n", 1, MAX_THREADS)))


def get_num_threads() -> int:
    """The library's thread count (see :func:`set_num_threads`).

    Returns
    -------
    int
        In 1..256.

    Examples
    --------
    >>> 1 <= get_num_threads() <= MAX_THREADS
    True
    """
    return int(lib.sa_get_num_threads())


def warn_about_environment() -> None:
    """Warn once, at import, when the BLAS runs a generic kernel on a CPU with AVX2, or when
    ``SWIFTATTR_NUM_THREADS`` was set to something that is not a thread count.

    Warns
    -----
    RuntimeWarning
        Naming the BLAS, its kernel, the CPU and the cause (a forced ``OPENBLAS_CORETYPE``, the system's
        OpenBLAS, or an OpenBLAS too old for the CPU), or the ignored ``SWIFTATTR_NUM_THREADS``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_about_environment()
    >>> all(issubclass(w.category, RuntimeWarning) for w in caught)
    True
    """
    info = build_info()
    if info.get("blas_kernel_generic"):
        forced = os.environ.get("OPENBLAS_CORETYPE")
        if forced:
            cause = f"OPENBLAS_CORETYPE={forced} in the environment forces that kernel; unset it"
        elif info["blas"] == "system-openblas":
            cause = ("the system's OpenBLAS does not know this CPU; rebuild with the default BLAS "
                     "(scipy-openblas32: bash scripts/setup.sh, then pip install ./python)")
        else:
            cause = "this OpenBLAS does not know this CPU; upgrade scipy-openblas32 and reinstall swiftattr"
        warnings.warn(
            f"swiftattr: the BLAS ({info['blas']} {info['blas_version']}) runs its generic "
            f"'{info['blas_core']}' kernel on this CPU ({info['cpu']}), which has AVX2, so every method runs at "
            f"a fraction of the CPU's speed: {cause}.",
            RuntimeWarning, stacklevel=3)
    if info.get("threads_env_ignored"):
        warnings.warn(
            f"swiftattr: SWIFTATTR_NUM_THREADS is not an integer in 1..{MAX_THREADS}; using "
            f"{info['threads']} threads", RuntimeWarning, stacklevel=3)

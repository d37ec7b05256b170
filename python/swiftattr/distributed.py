"""Attributions of a large array over many machines with Dask.

:func:`attribute` maps a swiftattr method over blocks of rows of a numpy, zarr or dask array and returns a
dask array. A :class:`~swiftattr.Network` pickles (its pickle carries the model bytes), so the network is
shipped once to each worker; every block is one native call, which releases the GIL, so threads of one
worker also run blocks in parallel.

Seeded methods (Expected Gradients, SmoothGrad, Expected Hessians, Shapley value sampling, KernelSHAP,
LIME) draw the numbers of example i from a stream keyed by (seed, first_example + i, sample): each block is
called with ``first_example`` set to its first row's index in the whole array (plus the caller's
``first_example``), and one seed is drawn for all blocks when none is given, so the result equals one call
on one machine, up to float32 rounding (the blocks run other GEMM shapes).
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Union

import numpy as np

from ._ffi import SA_ERR_INVALID_ARGUMENT, SA_ERR_SHAPE, SwiftAttrError

__all__ = ["attribute"]

# Arguments that hold one entry per example when their leading length is the number of rows: sliced with
# the rows. Any other argument is passed whole to every block.
_PER_EXAMPLE = ("target", "baselines", "feature_mask")
# Methods whose result for one example depends on the others in the call: splitting rows would change it.
_ACROSS_EXAMPLES = ("feature_permutation",)
DEFAULT_CHUNK_ROWS = 1024


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError("sa.distributed needs dask: pip install 'dask[array]' (and 'dask[distributed]' for a "
                          "cluster)") from None
    return dask, da


def _method(method) -> Callable:
    if isinstance(method, str):
        import swiftattr
        fn = getattr(swiftattr, method, None)
        if not callable(fn):
            raise SwiftAttrError(f"method: swiftattr has no method {method!r}", SA_ERR_INVALID_ARGUMENT)
        return fn
    if not callable(method):
        raise SwiftAttrError(f"method: expected a swiftattr function or its name, got {method!r}", SA_ERR_INVALID_ARGUMENT)
    return method


def _rows(X, chunks, da):
    """X as a dask array chunked along rows only (``chunks`` rows per block, or X's own row chunks)."""
    if chunks is not None:
        chunks = int(chunks)
        if chunks < 1:
            raise SwiftAttrError(f"chunks must be a positive number of rows (got {chunks})", SA_ERR_INVALID_ARGUMENT)
    if isinstance(X, da.Array):
        whole = {axis: -1 for axis in range(1, X.ndim)}
        if chunks is not None:
            whole[0] = chunks
        return X.rechunk(whole) if whole else X
    if not hasattr(X, "shape") or not hasattr(X, "__getitem__"):
        X = np.asarray(X)
    if len(X.shape) == 0:
        raise SwiftAttrError("X: expected a batch of examples (rows), got a scalar", SA_ERR_SHAPE)
    rows = chunks or DEFAULT_CHUNK_ROWS
    # zarr, h5py and numpy arrays are read block by block (by the workers, when X can be shipped to them).
    return da.from_array(X, chunks=(rows,) + tuple(X.shape[1:]))


def _per_example(name, value, n, example_ndim):
    """Whether ``value`` (the argument ``name``) holds one entry per row of an n-row batch."""
    if name not in _PER_EXAMPLE or value is None or n <= 1 or isinstance(value, (int, float, str)):
        return False
    shape = np.shape(value)
    if name == "target":
        return len(shape) == 1 and shape[0] == n
    return len(shape) == example_ndim + 1 and shape[0] == n


def _block(fn, net, x, whole, rows, first_example):
    """One block: ``rows`` holds this block's slices of the per-example arguments; ``first_example`` is None
    for a method without one, else the index of the block's first row in the whole call."""
    kwargs = dict(whole, **rows)
    if first_example is not None:
        kwargs["first_example"] = first_example
    result = fn(net, np.asarray(x), **kwargs)
    if not isinstance(result, np.ndarray):
        raise SwiftAttrError(f"{getattr(fn, '__name__', fn)} returned {type(result).__name__}, not an array: "
                             "sa.distributed.attribute maps methods that return one array", SA_ERR_INVALID_ARGUMENT)
    return result


def attribute(method: Union[str, Callable], net, X, chunks: Optional[int] = None, client=None, **method_args):
    """Attributions of every row of ``X``, computed block by block on a Dask cluster: a dask array.

    Parameters
    ----------
    method : callable or str
        A swiftattr method (``sa.integrated_gradients``, ``sa.expected_gradients``, ``sa.deepshap``, …) or
        its name. It is called as ``method(net, block, **method_args)``.
    net : Network
        The network (pickled once per worker).
    X : array of shape (n, *input_shape)
        numpy, zarr (or any array with ``shape``, ``dtype`` and slicing) or dask array.
    chunks : int, optional
        Rows per block (default: a dask array's own row chunks, else 1024).
    client : dask.distributed.Client, optional
        Where to run: the blocks are submitted to it at once (``client.persist``). None: the array is lazy,
        and ``.compute()`` runs it on dask's default scheduler (the local threaded scheduler unless a
        distributed Client is active).
    **method_args
        Passed to every block; ``target``, ``baselines`` and ``feature_mask`` with one entry per row of X
        are split with the rows. Seeded methods get ``first_example`` (the block's first row plus the
        ``first_example`` given here) and one ``seed`` for all blocks (drawn here when none is given).

    Returns
    -------
    dask.array.Array
        Of shape (n, *the method's per-example result shape), chunked as the rows of X: the same numbers as
        ``method(net, X, **method_args)`` in one call, up to float32 rounding.

    Raises
    ------
    ImportError
        When dask is not installed.
    SwiftAttrError
        When ``method`` is not a swiftattr function (or name of one), when it mixes the examples of one call
        (``feature_permutation``), with ``return_convergence_delta=True`` or a method that does not return one
        array, when ``chunks`` is not positive, when X is a scalar (code SA_ERR_SHAPE), and for the method's own
        argument errors (checked here on the first row, before any block is submitted).

    Examples
    --------
    The examples need dask (``pip install 'dask[array]'``), so doctest skips them.

    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32), np.zeros(3, np.float32))])
    >>> phi = sa.distributed.attribute(sa.integrated_gradients, net, np.ones((10, 3), np.float32), chunks=4,
    ...                                target=0)  # doctest: +SKIP
    >>> phi.chunks  # doctest: +SKIP
    ((4, 4, 2), (3,))
    >>> phi.compute()[0].round(3).tolist()  # doctest: +SKIP
    [1.0, 0.0, 0.0]
    >>> phi = sa.distributed.attribute("expected_gradients", net, np.ones((10, 3), np.float32), chunks=4,
    ...                                references=np.zeros((5, 3), np.float32), target=0, seed=1)  # doctest: +SKIP
    >>> phi.shape  # doctest: +SKIP
    (10, 3)
    """
    dask, da = _dask()
    fn = _method(method)
    name = getattr(fn, "__name__", str(fn))
    if name in _ACROSS_EXAMPLES:
        raise SwiftAttrError(f"method: {name} mixes the examples of one call, so rows cannot be split into blocks",
                             SA_ERR_INVALID_ARGUMENT)
    if method_args.get("return_convergence_delta"):
        raise SwiftAttrError("return_convergence_delta: sa.distributed.attribute maps methods that return one array",
                             SA_ERR_INVALID_ARGUMENT)
    x = _rows(X, chunks, da)
    n = x.shape[0]
    parameters = inspect.signature(fn).parameters
    seeded = "first_example" in parameters
    first_example = int(method_args.pop("first_example", 0) or 0)
    if seeded and "seed" in parameters and method_args.get("seed") is None:
        method_args["seed"] = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    example_ndim = x.ndim - 1
    sliced = {k: v for k, v in method_args.items() if _per_example(k, v, n, example_ndim)}
    whole = {k: v for k, v in method_args.items() if k not in sliced}
    start = lambda offset: first_example + offset if seeded else None  # noqa: E731
    rows_of = lambda a, b: {k: np.asarray(v)[a:b] for k, v in sliced.items()}  # noqa: E731
    # The per-example result shape and dtype, from the first row (checks the arguments here, not on a worker).
    probe = _block(fn, net, np.asarray(x[:1].compute(scheduler="sync")), whole, rows_of(0, 1), start(0))
    tail, dtype = probe.shape[1:], probe.dtype
    net_key = dask.delayed(net, pure=False, traverse=False)
    whole_key = dask.delayed(whole, pure=False, traverse=False)
    task = dask.delayed(_block, pure=True)
    pieces, offset = [], 0
    for rows, block in zip(x.chunks[0], x.to_delayed().ravel()):
        part = task(fn, net_key, block, whole_key, rows_of(offset, offset + rows), start(offset))
        pieces.append(da.from_delayed(part, shape=(rows,) + tail, dtype=dtype))
        offset += rows
    result = da.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0]
    return client.persist(result) if client is not None else result

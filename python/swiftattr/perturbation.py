"""Perturbation attributions: occlusion, feature ablation, feature permutation, Shapley value sampling,
KernelSHAP and LIME, with Captum's definitions and argument names.

They need forward passes only: every perturbed input is built in Swift and run through the network in
bounded chunks (``internal_batch_size`` rows, Captum's ``perturbations_per_eval`` as an alias), chunks in
parallel. ``inputs`` is a batch of the network's input shape; the result has that shape.

``feature_mask`` groups input elements into features (superpixels, positions), as in Captum: an integer
array broadcastable to the input shape — one mask for the batch (shape ``input_shape``, ``(1, *input_shape)``
or any broadcastable shape such as ``(1, 1, H, W)`` for all channels) or one per example
(``(n, *input_shape)``). Ids must be contiguous 0..M-1. ``None`` makes every element its own feature.
``baselines``: a scalar, one example, n examples, or an array broadcastable to the batch.

Seeded methods draw, for example i, from a stream keyed by (seed, first_example + i, sample), independent of
``internal_batch_size`` and the thread count.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _ffi
from ._args import INT64_MAX, SA_ERR_SHAPE, as_choice, baseline_rows, as_f32, as_float, as_int, as_ints, from_torch_tensor
from ._ffi import SwiftAttrError, bptr, check, dptr, fptr, iptr, lib
from .attribution import _chunk, _network, _seed, _targets
from ._progress import long_call


def _baselines(net, baselines, n: int):
    """(array or None, count) for C: None or 0 → zeros; a scalar → filled; otherwise broadcast to one example
    or to the n examples (Captum's broadcasting; :func:`swiftattr._args.baseline_rows`)."""
    return baseline_rows(net, baselines, n, broadcast=True)


def _mask(net, feature_mask, n: int):
    """(int64 array or None, mask_rows, number of features): Captum's feature_mask broadcast to one row
    (shared) or n rows (one per example)."""
    if feature_mask is None:
        return None, 1, net.input_size
    try:
        m = np.asarray(from_torch_tensor(feature_mask))
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"feature_mask: expected an integer array ({e})") from None
    if m.dtype.kind not in "iu":
        raise SwiftAttrError(f"feature_mask: expected integer feature ids, got dtype {m.dtype}")
    shape = net.input_shape
    per_example = m.ndim == len(shape) + 1 and m.shape[0] == n and n > 1
    rows = n if per_example else 1
    try:
        full = np.broadcast_to(m, (rows,) + shape) if m.ndim <= len(shape) + 1 else None
    except ValueError:
        full = None
    if full is None:
        raise SwiftAttrError(f"feature_mask: shape {m.shape} does not broadcast to the input shape {shape} "
                             f"(one mask for the batch) or to {(n,) + shape} (one per example)", SA_ERR_SHAPE)
    if full.size and (full.min() < 0 or full.max() > np.iinfo(np.int32).max):
        bad = full.min() if full.min() < 0 else full.max()
        raise SwiftAttrError(f"feature_mask: ids must be in 0...{np.iinfo(np.int32).max} (got {int(bad)})")
    full = np.ascontiguousarray(full, dtype=np.int64)
    return full, rows, int(full.max()) + 1


def _index_array(value, shape: tuple, name: str) -> np.ndarray:
    """An integer array of exactly ``shape`` as int64 (C checks that rows are permutations)."""
    a = np.asarray(from_torch_tensor(value))
    if a.dtype.kind not in "iu":
        raise SwiftAttrError(f"{name}: expected integer indices, got dtype {a.dtype}")
    if a.shape != shape:
        raise SwiftAttrError(f"{name}: expected shape {shape}, got {a.shape}", SA_ERR_SHAPE)
    return np.ascontiguousarray(a, dtype=np.int64)


def _coalitions(coalitions, n: int, m: int):
    """(uint8 array or None, coalition_rows, n_samples) from (K, M) (shared) or (n, K, M) 0/1 entries."""
    if coalitions is None:
        return None, 1, 0
    c = np.asarray(from_torch_tensor(coalitions))
    if c.dtype.kind not in "biu":
        raise SwiftAttrError(f"coalitions: expected 0/1 entries (bool or integer), got dtype {c.dtype}")
    if c.ndim == 2 and c.shape[1] == m:
        rows, k = 1, c.shape[0]
    elif c.ndim == 3 and c.shape[0] in (1, n) and c.shape[2] == m:
        rows, k = c.shape[0], c.shape[1]
    else:
        raise SwiftAttrError(f"coalitions: expected shape (n_samples, {m}) or ({n}, n_samples, {m}) "
                             f"({m} features), got {c.shape}", SA_ERR_SHAPE)
    if k == 0:
        raise SwiftAttrError("coalitions: at least one coalition is needed")
    if c.size and (c.min() < 0 or c.max() > 1):
        raise SwiftAttrError("coalitions: entries must be 0 or 1")
    return np.ascontiguousarray(c, dtype=np.uint8), rows, k


def _batch_size(internal_batch_size, perturbations_per_eval, n: int) -> int:
    """``internal_batch_size`` (rows per forward chunk), or Captum's perturbations_per_eval × n."""
    if internal_batch_size is not None:
        return _chunk(internal_batch_size)
    if perturbations_per_eval is not None:
        p = as_int(perturbations_per_eval, "perturbations_per_eval", 1, INT64_MAX)
        return min(INT64_MAX, p * n)
    return 0


@long_call
def occlusion(net, inputs, sliding_window_shapes, strides=None, baselines=0, target=None,
              internal_batch_size: Optional[int] = None, perturbations_per_eval: Optional[int] = None) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014; Captum's ``Occlusion``).

    φ_j = mean over the windows W covering element j of f(x) − f(x with W set to the baseline): each window of
    ``sliding_window_shapes`` slides over the input with ``strides``, and its output drop is shared by the
    elements it covers.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        A batch of the network's input shape (numpy or torch, converted to float32).
    sliding_window_shapes : int or sequence of int
        The window size, one per input dimension (channels included).
    strides : int or sequence of int, optional
        The step of the window, an int or one per dimension (default 1).
    baselines : float or array_like, default 0
        A scalar, one example ``input_shape``, n examples ``(n, *input_shape)``, or any array broadcastable to
        the batch (Captum's broadcasting). 0 and None mean zeros.
    target : int or array_like of int, optional
        The output to explain: one index for the batch or one per example ``(n,)``; may be None for a network
        with one output.
    internal_batch_size : int, optional
        Rows per forward chunk (default: a fixed memory budget). Chunks run in parallel.
    perturbations_per_eval : int, optional
        Captum's name: ``internal_batch_size = perturbations_per_eval * n``.

    Returns
    -------
    numpy.ndarray, float32, shape (n, *input_shape)
        The attribution of every input element (all elements of one feature share its value).

    Raises
    ------
    SwiftAttrError
        If ``inputs`` does not have the network's input shape, ``baselines`` does not broadcast to the
        batch (code SA_ERR_SHAPE), ``target`` is out of range (SA_ERR_OUT_OF_RANGE), ``sliding_window_shapes`` or
        ``strides`` do not give one size per input dimension (SA_ERR_SHAPE), or a size is not positive, a window
        exceeds the input or a stride exceeds its window (some elements would never be occluded).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> phi = sa.occlusion(net, x, sliding_window_shapes=(1,), target=0)   # one element at a time: w·x
    >>> phi.shape, phi[0].tolist()
    ((2, 4), [1.0, 2.0, -1.0, 0.5])
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    rank = len(net.input_shape)
    window = np.asarray(as_ints(sliding_window_shapes, rank, "sliding_window_shapes"), dtype=np.int64)
    steps = None if strides is None else np.asarray(as_ints(strides, rank, "strides"), dtype=np.int64)
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    out = np.empty_like(x)
    check(lib.sa_occlusion(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, iptr(window), iptr(steps), rank,
                           _batch_size(internal_batch_size, perturbations_per_eval, n), fptr(out)))
    return out


@long_call
def feature_ablation(net, inputs, baselines=0, feature_mask=None, target=None,
                     internal_batch_size: Optional[int] = None,
                     perturbations_per_eval: Optional[int] = None) -> np.ndarray:
    """Feature ablation (Captum's ``FeatureAblation``).

    Every element of feature m gets φ = f(x) − f(x with feature m set to the baseline): one forward pass per
    feature and example.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        A batch of the network's input shape (numpy or torch, converted to float32).
    baselines : float or array_like, default 0
        A scalar, one example ``input_shape``, n examples ``(n, *input_shape)``, or any array broadcastable to
        the batch (Captum's broadcasting). 0 and None mean zeros.
    feature_mask : array_like of int, optional
        Feature ids 0..M-1 (contiguous) grouping input elements: one mask broadcastable to ``input_shape``
        (e.g. ``(1, 1, H, W)`` for all channels) or one per example ``(n, *input_shape)``. None: every element
        is its own feature.
    target : int or array_like of int, optional
        The output to explain: one index for the batch or one per example ``(n,)``; may be None for a network
        with one output.
    internal_batch_size : int, optional
        Rows per forward chunk (default: a fixed memory budget). Chunks run in parallel.
    perturbations_per_eval : int, optional
        Captum's name: ``internal_batch_size = perturbations_per_eval * n``.

    Returns
    -------
    numpy.ndarray, float32, shape (n, *input_shape)
        The attribution of every input element (all elements of one feature share its value).

    Raises
    ------
    SwiftAttrError
        If ``inputs`` does not have the network's input shape, ``baselines`` or ``feature_mask`` do not broadcast to
        the batch (code SA_ERR_SHAPE), ``target`` is out of range (SA_ERR_OUT_OF_RANGE), or the feature ids are
        negative or too large.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> sa.feature_ablation(net, x, target=0)[0].tolist()
    [1.0, 2.0, -1.0, 0.5]
    >>> phi = sa.feature_ablation(net, x, feature_mask=np.array([0, 0, 1, 1]), target=0)   # two features
    >>> phi[0].tolist()
    [3.0, 3.0, -0.5, -0.5]
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    mask, rows, _ = _mask(net, feature_mask, n)
    t = _targets(net, target, n)
    out = np.empty_like(x)
    check(lib.sa_feature_ablation(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, iptr(mask), rows,
                                  _batch_size(internal_batch_size, perturbations_per_eval, n), fptr(out)))
    return out


@long_call
def feature_permutation(net, inputs, feature_mask=None, target=None, seed: Optional[int] = None,
                        permutations=None, internal_batch_size: Optional[int] = None,
                        perturbations_per_eval: Optional[int] = None) -> np.ndarray:
    """Feature permutation (Breiman 2001; Captum's ``FeaturePermutation``).

    Each feature is permuted across the batch (a permutation that is not the identity, so n ≥ 2); its
    elements get φ = f(x) − f(x with that feature permuted).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        A batch of the network's input shape (numpy or torch, converted to float32).
    feature_mask : array_like of int, optional
        Feature ids 0..M-1 (contiguous) grouping input elements: one mask broadcastable to ``input_shape``
        (e.g. ``(1, 1, H, W)`` for all channels) or one per example ``(n, *input_shape)``. None: every element
        is its own feature.
    target : int or array_like of int, optional
        The output to explain: one index for the batch or one per example ``(n,)``; may be None for a network
        with one output.
    seed : int, optional
        Seed of the counter-based stream keyed by (seed, first_example + i, sample); None draws a fresh seed.
    permutations : array_like of int, shape (M, n), optional
        Row m the permutation of the batch for feature m; fixes them, e.g. to Captum's.
    internal_batch_size : int, optional
        Rows per forward chunk (default: a fixed memory budget). Chunks run in parallel.
    perturbations_per_eval : int, optional
        Captum's name: ``internal_batch_size = perturbations_per_eval * n``.

    Returns
    -------
    numpy.ndarray, float32, shape (n, *input_shape)
        The attribution of every input element (all elements of one feature share its value).

    Raises
    ------
    SwiftAttrError
        If ``inputs`` does not have the network's input shape, ``baselines`` or ``feature_mask`` do not broadcast to
        the batch (code SA_ERR_SHAPE), ``target`` is out of range (SA_ERR_OUT_OF_RANGE), ``permutations`` has the
        wrong shape or a row is not a permutation of 0..n-1.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> x = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    >>> phi = sa.feature_permutation(net, x, target=0, permutations=np.tile([1, 0], (4, 1)))  # swap the rows
    >>> phi.tolist()
    [[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    mask, rows, m = _mask(net, feature_mask, n)
    p = None if permutations is None else _index_array(permutations, (m, n), "permutations")
    t = _targets(net, target, n)
    out = np.empty_like(x)
    check(lib.sa_feature_permutation(net._handle, fptr(x), n, iptr(t), t.size, iptr(mask), rows, _seed(seed), iptr(p),
                                     _batch_size(internal_batch_size, perturbations_per_eval, n), fptr(out)))
    return out


@long_call
def shapley_value_sampling(net, inputs, baselines=0, feature_mask=None, n_samples: int = 25,
                           seed: Optional[int] = None, target=None, permutations=None,
                           internal_batch_size: Optional[int] = None, perturbations_per_eval: Optional[int] = None,
                           first_example: int = 0) -> np.ndarray:
    """Shapley value sampling (Castro et al. 2009; Captum's ``ShapleyValueSampling``).

    φ_m = the mean over ``n_samples`` random feature orders of feature m's marginal contribution
    f(x_{S ∪ m}) − f(x_S) when it switches from the baseline to the input after the features S before it in the
    order. Σφ = f(x) − f(baseline) for every example (efficiency).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        A batch of the network's input shape (numpy or torch, converted to float32).
    baselines : float or array_like, default 0
        A scalar, one example ``input_shape``, n examples ``(n, *input_shape)``, or any array broadcastable to
        the batch (Captum's broadcasting). 0 and None mean zeros.
    feature_mask : array_like of int, optional
        Feature ids 0..M-1 (contiguous) grouping input elements: one mask broadcastable to ``input_shape``
        (e.g. ``(1, 1, H, W)`` for all channels) or one per example ``(n, *input_shape)``. None: every element
        is its own feature.
    n_samples : int, default 25
        The number of feature orders per example.
    seed : int, optional
        Seed of the counter-based stream keyed by (seed, first_example + i, sample); None draws a fresh seed.
    target : int or array_like of int, optional
        The output to explain: one index for the batch or one per example ``(n,)``; may be None for a network
        with one output.
    permutations : array_like of int, shape (n_samples, M), optional
        The feature orders, shared by the batch (as Captum draws them); overrides ``n_samples``.
    internal_batch_size : int, optional
        Rows per forward chunk (default: a fixed memory budget). Chunks run in parallel.
    perturbations_per_eval : int, optional
        Captum's name: ``internal_batch_size = perturbations_per_eval * n``.
    first_example : int, default 0
        Index of the first row in the whole batch, so a batch computed in pieces draws what the whole batch
        draws.

    Returns
    -------
    numpy.ndarray, float32, shape (n, *input_shape)
        The attribution of every input element (all elements of one feature share its value).

    Raises
    ------
    SwiftAttrError
        If ``inputs`` does not have the network's input shape, ``baselines`` or ``feature_mask`` do not broadcast to
        the batch (code SA_ERR_SHAPE), ``target`` is out of range (SA_ERR_OUT_OF_RANGE), or ``permutations`` is not of
        shape (n_samples, M) with permutations of 0..M-1 as rows.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> phi = sa.shapley_value_sampling(net, x, n_samples=4, seed=0, target=0)   # exact for a linear f
    >>> phi[0].tolist(), float(phi[0].sum())
    ([1.0, 2.0, -1.0, 0.5], 2.5)
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    mask, rows, m = _mask(net, feature_mask, n)
    if permutations is not None:
        p = np.asarray(from_torch_tensor(permutations))
        if p.ndim != 2 or p.shape[1] != m:
            raise SwiftAttrError(f"permutations: expected shape (n_samples, {m}) ({m} features), got {p.shape}", SA_ERR_SHAPE)
        samples = p.shape[0]
        p = _index_array(p, p.shape, "permutations")
    else:
        p, samples = None, as_int(n_samples, "n_samples")
    t = _targets(net, target, n)
    out = np.empty_like(x)
    check(lib.sa_shapley_value_sampling(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, iptr(mask), rows,
                                        samples, _seed(seed), as_int(first_example, "first_example"), iptr(p),
                                        _batch_size(internal_batch_size, perturbations_per_eval, n), fptr(out)))
    return out


@long_call
def kernel_shap(net, inputs, baselines=0, feature_mask=None, n_samples: int = 25, seed: Optional[int] = None,
                target=None, coalitions=None, coalition_weights=None, internal_batch_size: Optional[int] = None,
                perturbations_per_eval: Optional[int] = None, first_example: int = 0) -> np.ndarray:
    """KernelSHAP (Lundberg & Lee 2017), solved exactly as shap's ``KernelExplainer``.

    φ minimises Σ_z π(z) (f(h(z)) − f(baseline) − Σ_m z_m φ_m)² over coalitions z ∈ {0, 1}^M (h(z) takes the
    input where z_m = 1 and the baseline elsewhere), with the Shapley kernel π(z) = (M − 1) / (C(M, |z|) |z|
    (M − |z|)), under the efficiency constraint Σφ = f(x) − f(baseline). When ``n_samples`` ≥ 2^M − 2 every
    coalition is enumerated and φ are the exact Shapley values; otherwise ``n_samples`` coalitions are drawn
    per example with the kernel as their distribution.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        A batch of the network's input shape (numpy or torch, converted to float32).
    baselines : float or array_like, default 0
        A scalar, one example ``input_shape``, n examples ``(n, *input_shape)``, or any array broadcastable to
        the batch (Captum's broadcasting). 0 and None mean zeros.
    feature_mask : array_like of int, optional
        Feature ids 0..M-1 (contiguous) grouping input elements: one mask broadcastable to ``input_shape``
        (e.g. ``(1, 1, H, W)`` for all channels) or one per example ``(n, *input_shape)``. None: every element
        is its own feature.
    n_samples : int, default 25
        The number of coalitions per example.
    seed : int, optional
        Seed of the counter-based stream keyed by (seed, first_example + i, sample); None draws a fresh seed.
    target : int or array_like of int, optional
        The output to explain: one index for the batch or one per example ``(n,)``; may be None for a network
        with one output.
    coalitions : array_like of 0/1, shape (K, M) or (n, K, M), optional
        The samples to fit, shared or per example (e.g. Captum's or shap's); empty and full coalitions among
        them are skipped. Overrides ``n_samples``.
    coalition_weights : array_like, shape (K,) or (n, K), optional
        One weight per coalition, like ``coalitions`` (default 1 each; shap's ``kernelWeights`` reproduce
        shap's fit). Needs ``coalitions``.
    internal_batch_size : int, optional
        Rows per forward chunk (default: a fixed memory budget). Chunks run in parallel.
    perturbations_per_eval : int, optional
        Captum's name: ``internal_batch_size = perturbations_per_eval * n``.
    first_example : int, default 0
        Index of the first row in the whole batch, so a batch computed in pieces draws what the whole batch
        draws.

    Returns
    -------
    numpy.ndarray, float32, shape (n, *input_shape)
        The attribution of every input element (all elements of one feature share its value).

    Raises
    ------
    SwiftAttrError
        If ``inputs`` does not have the network's input shape, ``baselines`` or ``feature_mask`` do not broadcast to
        the batch (code SA_ERR_SHAPE), ``target`` is out of range (SA_ERR_OUT_OF_RANGE), ``coalitions`` are not 0/1 of
        shape (K, M) or (n, K, M), or ``coalition_weights`` are given without coalitions or with the wrong shape.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> phi = sa.kernel_shap(net, x, n_samples=100, seed=0, target=0)   # 100 ≥ 2^4 − 2: exact Shapley values
    >>> [round(float(v), 3) for v in phi[0]]
    [1.0, 2.0, -1.0, 0.5]
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    mask, rows, m = _mask(net, feature_mask, n)
    c, crows, k = _coalitions(coalitions, n, m)
    samples = k if c is not None else as_int(n_samples, "n_samples")
    w = None
    if coalition_weights is not None:
        if c is None:
            raise SwiftAttrError("coalition_weights: given without coalitions")
        w = np.ascontiguousarray(np.asarray(from_torch_tensor(coalition_weights), dtype=np.float64))
        if w.shape not in ((k,), (crows, k)):
            raise SwiftAttrError(f"coalition_weights: expected shape ({k},) or ({crows}, {k}) (one per coalition), "
                                 f"got {w.shape}", SA_ERR_SHAPE)
    t = _targets(net, target, n)
    out = np.empty_like(x)
    check(lib.sa_kernel_shap(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, iptr(mask), rows, samples,
                             _seed(seed), as_int(first_example, "first_example"), bptr(c), crows, dptr(w),
                             _batch_size(internal_batch_size, perturbations_per_eval, n), fptr(out)))
    return out


@long_call
def lime(net, inputs, baselines=0, feature_mask=None, n_samples: int = 25, similarity: float = 1.0,
         distance_mode: str = "cosine", surrogate: str = "lasso", alpha: float = 0.01, seed: Optional[int] = None,
         target=None, coalitions=None, internal_batch_size: Optional[int] = None,
         perturbations_per_eval: Optional[int] = None, first_example: int = 0) -> np.ndarray:
    """LIME (Ribeiro et al. 2016) with Captum's ``Lime`` defaults.

    ``n_samples`` coalitions z per example (each feature kept with probability ½, the others set to the
    baseline) are weighted by Captum's exponential kernel exp(−D²/(2·similarity²)), D the cosine (default) or
    euclidean distance between the input and the perturbed input, and a weighted linear ``surrogate`` with
    intercept is fitted to f(h(z)) — "lasso" (scikit-learn's Lasso, ``alpha``) or "linear" (least squares).
    Its coefficients are the attributions.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        A batch of the network's input shape (numpy or torch, converted to float32).
    baselines : float or array_like, default 0
        A scalar, one example ``input_shape``, n examples ``(n, *input_shape)``, or any array broadcastable to
        the batch (Captum's broadcasting). 0 and None mean zeros.
    feature_mask : array_like of int, optional
        Feature ids 0..M-1 (contiguous) grouping input elements: one mask broadcastable to ``input_shape``
        (e.g. ``(1, 1, H, W)`` for all channels) or one per example ``(n, *input_shape)``. None: every element
        is its own feature.
    n_samples : int, default 25
        The number of coalitions per example.
    similarity : float, default 1.0
        The kernel width.
    distance_mode : {"cosine", "euclidean"}, default "cosine"
        The distance D of the kernel.
    surrogate : {"lasso", "linear"}, default "lasso"
        The interpretable model.
    alpha : float, default 0.01
        The Lasso's L1 penalty (scikit-learn's convention).
    seed : int, optional
        Seed of the counter-based stream keyed by (seed, first_example + i, sample); None draws a fresh seed.
    target : int or array_like of int, optional
        The output to explain: one index for the batch or one per example ``(n,)``; may be None for a network
        with one output.
    coalitions : array_like of 0/1, shape (K, M) or (n, K, M), optional
        The samples, as for :func:`kernel_shap`.
    internal_batch_size : int, optional
        Rows per forward chunk (default: a fixed memory budget). Chunks run in parallel.
    perturbations_per_eval : int, optional
        Captum's name: ``internal_batch_size = perturbations_per_eval * n``.
    first_example : int, default 0
        Index of the first row in the whole batch, so a batch computed in pieces draws what the whole batch
        draws.

    Returns
    -------
    numpy.ndarray, float32, shape (n, *input_shape)
        The attribution of every input element (all elements of one feature share its value).

    Raises
    ------
    SwiftAttrError
        If ``inputs`` does not have the network's input shape, ``baselines`` or ``feature_mask`` do not broadcast to
        the batch (code SA_ERR_SHAPE), ``target`` is out of range (SA_ERR_OUT_OF_RANGE), ``distance_mode`` or
        ``surrogate`` is unknown (SA_ERR_UNKNOWN_ENUM), or ``coalitions`` are malformed.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> phi = sa.lime(net, x, n_samples=200, surrogate="linear", seed=0, target=0)   # a linear f is fitted exactly
    >>> [round(float(v), 3) for v in phi[0]]
    [1.0, 2.0, -1.0, 0.5]
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    mask, rows, m = _mask(net, feature_mask, n)
    c, crows, k = _coalitions(coalitions, n, m)
    samples = k if c is not None else as_int(n_samples, "n_samples")
    mode = as_choice(distance_mode, _ffi.LIME_DISTANCES, "distance_mode")
    model = as_choice(surrogate, _ffi.LIME_SURROGATES, "surrogate")
    t = _targets(net, target, n)
    out = np.empty_like(x)
    check(lib.sa_lime(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, iptr(mask), rows, samples, _seed(seed),
                      as_int(first_example, "first_example"), bptr(c), crows, as_float(similarity, "similarity"), mode,
                      model, as_float(alpha, "alpha"), _batch_size(internal_batch_size, perturbations_per_eval, n),
                      fptr(out)))
    return out

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
from ._args import INT64_MAX, SA_ERR_SHAPE, as_choice, as_f32, as_float, as_int, as_ints, from_torch_tensor
from ._ffi import SwiftAttrError, bptr, check, dptr, fptr, iptr, lib
from .attribution import _chunk, _network, _seed, _targets
from ._progress import long_call


def _baselines(net, baselines, n: int):
    """(array or None, count) for C: None or 0 → zeros; a scalar → filled; otherwise broadcast to one example
    or to the n examples (Captum's broadcasting)."""
    if baselines is None:
        return None, 0
    b = as_f32(baselines, "baselines")
    shape = net.input_shape
    if b.ndim == 0:
        return (None, 0) if float(b) == 0.0 else (np.full((1,) + shape, b, dtype=np.float32), 1)
    rows = n if b.ndim == len(shape) + 1 and b.shape[0] == n else 1
    try:
        full = np.broadcast_to(b, (rows,) + shape) if b.ndim <= len(shape) + 1 else None
    except ValueError:
        full = None
    if full is not None:
        return np.ascontiguousarray(full, dtype=np.float32), rows
    raise SwiftAttrError(f"baselines: shape {b.shape} does not broadcast to one example {shape} or to {n} examples",
                         SA_ERR_SHAPE)


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
    """Occlusion (Captum's ``Occlusion``): the mean over the windows covering an element of
    f(x) − f(x with the window set to the baseline). ``sliding_window_shapes`` has one size per input
    dimension (channels included); ``strides`` an int or one per dimension (default 1)."""
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
    """Feature ablation (Captum's ``FeatureAblation``): each feature's elements get
    f(x) − f(x with that feature set to the baseline)."""
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
    """Feature permutation (Captum's ``FeaturePermutation``): each feature is permuted across the batch (a
    permutation that is not the identity); its elements get f(x) − f(x with the feature permuted).
    ``permutations`` (M × n integers, row f the permutation of feature f) fixes them, e.g. to Captum's."""
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
    """Shapley value sampling (Castro et al. 2009; Captum's ``ShapleyValueSampling``): the mean over
    ``n_samples`` random feature orders of each feature's marginal contribution when it switches from the
    baseline to the input. Σφ = f(x) − f(baseline) for every example. ``permutations`` (n_samples × M,
    shared by the batch, as Captum draws them) fixes the orders."""
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
    """KernelSHAP (Lundberg & Lee 2017): the Shapley-kernel weighted least-squares fit under the efficiency
    constraint Σφ = f(x) − f(baseline), solved exactly as shap's KernelExplainer. When ``n_samples`` ≥ 2^M − 2
    every coalition is enumerated and φ are the exact Shapley values; otherwise ``n_samples`` coalitions are
    drawn per example with the kernel as their distribution. ``coalitions`` ((K, M) shared or (n, K, M), 0/1)
    passes the samples, e.g. Captum's or shap's, weighted by ``coalition_weights`` ((K,) or (n, K), like the
    coalitions; default 1 each — shap's ``kernelWeights`` reproduce shap's fit); empty and full coalitions among
    them are skipped."""
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
    """LIME (Ribeiro et al. 2016) with Captum's ``Lime`` defaults: ``n_samples`` coalitions per example (each
    feature kept with probability ½), weighted by Captum's exponential kernel exp(−D²/(2·similarity²)) with D
    the cosine (default) or euclidean distance between the input and the perturbed input, and a weighted
    linear ``surrogate`` with intercept — "lasso" (scikit-learn's Lasso, ``alpha``) or "linear" — whose
    coefficients are the attributions. ``coalitions`` as for :func:`kernel_shap`."""
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

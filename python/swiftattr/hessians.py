"""Integrated Hessians and Expected Hessians (Janizek, Sturmfels, Lee 2020): pairwise feature interactions.

    gamma = sa.integrated_hessians(net, x, target=0, softplus_beta=10)   # (N, p, p), p = prod(input_shape)

Γ_ij = Δx_i Δx_j ∫∫ αβ ∂²_ij f(x' + αβΔx) dα dβ + δ_ij Δx_i ∫∫ ∂_i f(x' + αβΔx) dα dβ, so each row sums to the
Integrated Gradients attribution (for networks with a continuous gradient: use ``softplus_beta`` for ReLU
networks). Gradients and Hessians are exact (a second-order pass in the library); only the quadrature in
t = αβ is approximate.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import numpy as np

from . import _ffi
from ._args import as_choice, as_float, as_int
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from .attribution import _baselines, _chunk, _network, _seed, _targets
from .model import Network

__all__ = ["integrated_hessians", "expected_hessians", "with_softplus"]


def _softplus(beta) -> float:
    """None → 0 (no substitution, as C); otherwise a number C checks (positive, finite)."""
    if beta is None:
        return 0.0
    b = as_float(beta, "softplus_beta")
    if b == 0:  # 0 means "none" in C; in Python None does
        raise SwiftAttrError(f"softplus_beta must be positive and finite (got {beta!r}); pass None for no substitution")
    return b


def _interaction(net: Network, index):
    """(C code, output width): None → (-1, p·p); an index → (index, p); C checks the range."""
    p = net.input_size
    if index is None:
        return -1, p * p
    i = as_int(index, "interaction_index")
    if i == -1:  # C's "whole matrix"; in Python an out-of-range index
        raise SwiftAttrError(f"interaction_index = -1 is out of range for an input of {p} features (0..<{p})",
                             _ffi.SA_ERR_OUT_OF_RANGE)
    return i, p


def integrated_hessians(net, inputs, baselines=None, target=None, n_steps: int = 32, method: str = "gausslegendre",
                        softplus_beta: Optional[float] = None, interaction_index: Optional[int] = None,
                        internal_batch_size: Optional[int] = None) -> np.ndarray:
    """Integrated Hessians over the flattened input: (N, p, p), or (N, p) — row ``interaction_index`` of each
    matrix, by Hessian–vector products in O(p) memory per example.

    ``method``: "gausslegendre" (default; Gauss–Legendre in v after t = v², 32 nodes give completeness errors
    below 1e-4 relative on softplus(β = 10) networks), "gausslaguerre" (after t = e^(−u); slow on sharp
    curvature) or "grid" (path_explain's sampling, ``n_steps`` = its ``num_samples``, to reproduce the authors'
    numbers). ``softplus_beta`` computes with every ReLU replaced by Softplus(β) (see :func:`with_softplus`).
    ``internal_batch_size`` bounds the path points evaluated at once."""
    net, x = _network(net, inputs)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    method_code = as_choice(method, _ffi.IH_METHODS, "method")
    beta = _softplus(softplus_beta)
    index, width = _interaction(net, interaction_index)
    out = np.empty(n * width, dtype=np.float32)
    check(lib.sa_integrated_hessians(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, as_int(n_steps, "n_steps"),
                                     method_code, beta, index, _chunk(internal_batch_size), fptr(out)))
    return out.reshape((n, width) if interaction_index is not None else (n, net.input_size, net.input_size))


def expected_hessians(net, inputs, references, target=None, n_samples: int = 200, seed: Optional[int] = None,
                      softplus_beta: Optional[float] = None, interaction_index: Optional[int] = None,
                      internal_batch_size: Optional[int] = None, first_example: int = 0) -> np.ndarray:
    """Expected Hessians (path_explain's ``use_expectation=True``): the integrand of Integrated Hessians
    averaged over ``n_samples`` draws of a reference row and α, β ~ U(0, 1). Seeded like
    :func:`expected_gradients`: example i's draws are keyed by (seed, first_example + i, sample)."""
    net, x = _network(net, inputs)
    n = x.shape[0]
    r = net._batch(references, "references")
    t = _targets(net, target, n)
    beta = _softplus(softplus_beta)
    index, width = _interaction(net, interaction_index)
    out = np.empty(n * width, dtype=np.float32)
    check(lib.sa_expected_hessians(net._handle, fptr(x), n, fptr(r), r.shape[0], iptr(t), t.size,
                                   as_int(n_samples, "n_samples"), _seed(seed), as_int(first_example, "first_example"),
                                   beta, index, _chunk(internal_batch_size), fptr(out)))
    return out.reshape((n, width) if interaction_index is not None else (n, net.input_size, net.input_size))


def with_softplus(net: Network, beta: float = 10.0) -> Network:
    """A new Network: ``net`` with every ReLU replaced by Softplus(β) (Janizek et al. use β = 10)."""
    if not isinstance(net, Network):
        raise SwiftAttrError(f"net: expected a swiftattr Network, got {type(net).__name__}")
    handle = ctypes.c_void_p()
    check(lib.sa_model_with_softplus(net._handle, as_float(beta, "beta"), ctypes.byref(handle)))
    return Network(handle)

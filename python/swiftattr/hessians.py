"""Integrated Hessians and Expected Hessians (Janizek, Sturmfels, Lee 2020): pairwise feature interactions.

    gamma = sa.integrated_hessians(net, x, target=0, softplus_beta=10)   # (N, p, p), p = prod(input_shape)

Γ_ij = Δx_i Δx_j ∫∫ αβ ∂²_ij f(x' + αβΔx) dα dβ + δ_ij Δx_i ∫∫ ∂_i f(x' + αβΔx) dα dβ, so each row sums to the
Integrated Gradients attribution (for networks with a continuous gradient: use ``softplus_beta`` for ReLU
networks). Gradients and Hessians are exact (a second-order pass in the library); only the quadrature in
t = αβ is approximate.

Token networks (an Embedding first) are explained at the embedding output, as the gradient methods are: the
path runs between embedding vectors and, with ``sum_embedding=True`` (the default), Γ is summed over both
embedding axes, Γ_tok[i, j] = Σ_{a∈i, b∈j} Γ[a, b], shape (N, L, L), so each row sums to the token-level
Integrated Gradients; ``sum_embedding=False`` gives (N, L·E, L·E). ``interaction_index`` is then a token
position i: (N, L), or Σ_{a∈i} Γ[a, :] of shape (N, L·E) unsummed. Baselines and references are token ids
((L,), (n, L), (R, L)) or embedding vectors ((n, L, E), (R, L, E); one example as (1, L, E)); None means zero
embedding vectors.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import numpy as np

from . import _ffi
from ._args import as_bool, as_choice, as_float, as_int
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from .attribution import _at_embedding, _baselines, _chunk, _network, _seed, _targets
from .model import Network
from ._progress import long_call

__all__ = ["integrated_hessians", "expected_hessians", "hessian", "hessian_vector_product", "with_softplus"]


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


def _token_interactions(net: Network, n: int, sum_embedding, index, run) -> np.ndarray:
    """Γ of a token network from ``run(i)`` (the method on the network after the embedding, i its flat
    interaction index or None): summed over both embedding axes when ``sum_embedding``; a token ``index``
    sums the E rows of that token (in float64, as the library does)."""
    summed = as_bool(sum_embedding, "sum_embedding")
    L, E = net.input_shape[0], net.embedding_dim
    if index is None:
        gamma = run(None)
        if not summed:
            return gamma
        return gamma.reshape(n, L, E, L, E).sum(axis=(2, 4), dtype=np.float64).astype(np.float32)
    i = as_int(index, "interaction_index")
    if not 0 <= i < L:
        raise SwiftAttrError(f"interaction_index = {i} is out of range for {L} tokens (0..<{L})", _ffi.SA_ERR_OUT_OF_RANGE)
    rows = np.zeros((n, L * E))
    for a in range(E):
        rows += run(i * E + a)
    return (rows.reshape(n, L, E).sum(-1) if summed else rows).astype(np.float32)


@long_call
def integrated_hessians(net, inputs, baselines=None, target=None, n_steps: int = 32, method: str = "gausslegendre",
                        softplus_beta: Optional[float] = None, interaction_index: Optional[int] = None,
                        internal_batch_size: Optional[int] = None, sum_embedding: bool = True) -> np.ndarray:
    """    Integrated Hessians (Janizek, Sturmfels, Lee 2021, "Explaining explanations: axiomatic feature
    interactions for deep networks") over the flattened input.

    Γ_ij = Δx_i Δx_j ∫∫ αβ ∂²_ij f(x' + αβΔx) dα dβ + δ_ij Δx_i ∫∫ ∂_i f(x' + αβΔx) dα dβ, Δx = x − x', so each
    row sums to the Integrated Gradients attribution (for networks with a continuous gradient: use
    ``softplus_beta`` for ReLU networks). Gradients and Hessians are exact (a second-order pass in the
    library); only the quadrature in t = αβ is approximate. Captum has no equivalent; path_explain's
    ``PathExplainerTorch.interactions`` is the authors' implementation.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (N, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32; p = prod(input_shape) features.
        Token networks: token ids (N, L).
    baselines : float or array_like, optional
        The baseline x': None (zeros, the default), a scalar, one example of the input shape (shared) or one
        per example. Token networks: token ids or embedding vectors (see the module notes).
    target : int or array_like of int, shape (N,), optional
        The output explained: one index for every example, or one per example. Default None, allowed only for
        a model with one output.
    n_steps : int, default 32
        Quadrature nodes (``method="grid"``: path_explain's ``num_samples``).
    method : str, default "gausslegendre"
        "gausslegendre" (Gauss–Legendre in v after t = v²; 32 nodes give completeness errors below 1e-4
        relative on softplus(β = 10) networks), "gausslaguerre" (after t = e^(−u); slow on sharp curvature)
        or "grid" (path_explain's sampling, to reproduce the authors' numbers).
    softplus_beta : float, optional
        Compute with every ReLU replaced by Softplus(β) (see :func:`with_softplus`; Janizek et al. use β = 10),
        since a ReLU network's Hessian is 0 almost everywhere. Default None: no substitution.
    interaction_index : int, optional
        Return only row ``interaction_index`` of each matrix, (N, p), by Hessian–vector products in O(p)
        memory per example (token networks: a token position, see the module notes). Default None: the whole
        matrices, (N, p, p).
    internal_batch_size : int, optional
        At most this many path points are evaluated at once (bounds memory). Default None: the library's
        budget.
    sum_embedding : bool, default True
        Token networks only: sum Γ over both embedding axes, (N, L, L); False gives (N, L·E, L·E).

    Returns
    -------
    numpy.ndarray of float32, shape (N, p, p), or (N, p) with ``interaction_index``
        Token networks: (N, L, L) or (N, L) summed, (N, L·E, L·E) or (N, L·E) with ``sum_embedding=False``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor N entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); when ``baselines`` has another shape (SA_ERR_SHAPE); for an unknown ``method``
        (SA_ERR_UNKNOWN_ENUM); for ``interaction_index`` out of range (SA_ERR_OUT_OF_RANGE); for a ``softplus_beta``
        that is not positive and finite.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 3))), sa.Tanh(), sa.Linear(rng.normal(size=(2, 8)))])
    >>> x = rng.normal(size=(4, 3)).astype(np.float32)
    >>> gamma = sa.integrated_hessians(net, x, target=0)
    >>> gamma.shape
    (4, 3, 3)
    >>> bool(np.allclose(gamma, gamma.transpose(0, 2, 1), atol=1e-5))   # symmetric
    True
    >>> ig = sa.integrated_gradients(net, x, target=0)
    >>> bool(np.allclose(gamma.sum(axis=2), ig, atol=1e-4))              # rows sum to Integrated Gradients
    True
    >>> row = sa.integrated_hessians(net, x, target=0, interaction_index=1)
    >>> row.shape, bool(np.allclose(row, gamma[:, 1], atol=1e-5))
    ((4, 3), True)
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    moved = _at_embedding(net, x, sum_embedding, baselines=baselines)
    if moved:
        rest, xe, v, _ = moved
        return _token_interactions(net, n, sum_embedding, interaction_index, lambda i: integrated_hessians(
            rest, xe, v["baselines"], target, n_steps, method, softplus_beta, i, internal_batch_size))
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    method_code = as_choice(method, _ffi.IH_METHODS, "method")
    beta = _softplus(softplus_beta)
    index, width = _interaction(net, interaction_index)
    out = np.empty(n * width, dtype=np.float32)
    check(lib.sa_integrated_hessians(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, as_int(n_steps, "n_steps"),
                                     method_code, beta, index, _chunk(internal_batch_size), fptr(out)))
    return out.reshape((n, width) if interaction_index is not None else (n, net.input_size, net.input_size))


@long_call
def expected_hessians(net, inputs, references, target=None, n_samples: int = 200, seed: Optional[int] = None,
                      softplus_beta: Optional[float] = None, interaction_index: Optional[int] = None,
                      internal_batch_size: Optional[int] = None, first_example: int = 0,
                      sum_embedding: bool = True) -> np.ndarray:
    """    Expected Hessians (Janizek, Sturmfels, Lee 2021; path_explain's ``use_expectation=True``).

    The integrand of :func:`integrated_hessians` averaged over ``n_samples`` draws of a reference row x' and
    α, β ~ U(0, 1): rows sum (in expectation) to the Expected Gradients attribution. Seeded like
    :func:`~swiftattr.expected_gradients`: example i's draws are keyed by (seed, first_example + i, sample).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (N, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32; p = prod(input_shape) features.
        Token networks: token ids (N, L).
    references : array_like, shape (R, *input_shape)
        The reference distribution (R ≥ 1 rows). Token networks: token ids (R, L) or embedding vectors
        (R, L, E); see the module notes.
    target : int or array_like of int, shape (N,), optional
        The output explained: one index for every example, or one per example. Default None, allowed only for
        a model with one output.
    n_samples : int, default 200
        Draws of (reference, α, β) per example.
    seed : int, optional
        Non-negative seed of the draws. Default None: a fresh random seed.
    softplus_beta : float, optional
        Compute with every ReLU replaced by Softplus(β) (see :func:`with_softplus`; Janizek et al. use β = 10),
        since a ReLU network's Hessian is 0 almost everywhere. Default None: no substitution.
    interaction_index : int, optional
        Return only row ``interaction_index`` of each matrix, (N, p), by Hessian–vector products in O(p)
        memory per example (token networks: a token position, see the module notes). Default None: the whole
        matrices, (N, p, p).
    internal_batch_size : int, optional
        At most this many samples are evaluated at once (bounds memory). Default None: the library's budget.
    first_example : int, default 0
        The index of the first row of ``inputs`` in the whole batch, so a batch computed in pieces gives the
        one-call numbers.
    sum_embedding : bool, default True
        Token networks only: sum Γ over both embedding axes, (N, L, L); False gives (N, L·E, L·E).

    Returns
    -------
    numpy.ndarray of float32, shape (N, p, p), or (N, p) with ``interaction_index``
        Token networks as in :func:`integrated_hessians`.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor N entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); when ``references`` does not have the input shape (SA_ERR_SHAPE); for
        ``interaction_index`` out of range (SA_ERR_OUT_OF_RANGE); for a negative ``seed``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 3))), sa.Tanh(), sa.Linear(rng.normal(size=(2, 8)))])
    >>> x = rng.normal(size=(4, 3)).astype(np.float32)
    >>> refs = rng.normal(size=(16, 3)).astype(np.float32)
    >>> gamma = sa.expected_hessians(net, x, refs, target=1, n_samples=64, seed=3)
    >>> gamma.shape
    (4, 3, 3)
    >>> bool(np.array_equal(gamma, sa.expected_hessians(net, x, refs, target=1, n_samples=64, seed=3)))
    True
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    moved = _at_embedding(net, x, sum_embedding, references=references)
    if moved:
        rest, xe, v, _ = moved
        if seed is None:  # one seed for the E row calls of a token index, so they share their draws
            seed = _seed(None)
        return _token_interactions(net, n, sum_embedding, interaction_index, lambda i: expected_hessians(
            rest, xe, v["references"], target, n_samples, seed, softplus_beta, i, internal_batch_size, first_example))
    r = net._batch(references, "references")
    t = _targets(net, target, n)
    beta = _softplus(softplus_beta)
    index, width = _interaction(net, interaction_index)
    out = np.empty(n * width, dtype=np.float32)
    check(lib.sa_expected_hessians(net._handle, fptr(x), n, fptr(r), r.shape[0], iptr(t), t.size,
                                   as_int(n_samples, "n_samples"), _seed(seed), as_int(first_example, "first_example"),
                                   beta, index, _chunk(internal_batch_size), fptr(out)))
    return out.reshape((n, width) if interaction_index is not None else (n, net.input_size, net.input_size))


def hessian_vector_product(net, inputs, v, target=None, return_gradient: bool = False):
    """    Exact Hessian–vector products H(x_i) v_i of output ``target`` with respect to the input.

    One forward-over-reverse pass (Pearlmutter 1994, "Fast exact multiplication by the Hessian"). ReLU
    networks have H = 0 almost everywhere: see :func:`with_softplus`.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (N, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32; p = prod(input_shape) features.
        Token networks: token ids (N, L).
    v : array_like, shape of ``inputs``
        One direction per example.
    target : int or array_like of int, shape (N,), optional
        The output explained: one index for every example, or one per example. Default None, allowed only for
        a model with one output.
    return_gradient : bool, default False
        Also return the gradients ∇f_t(x_i) from the same pass.

    Returns
    -------
    numpy.ndarray of float32, shape of ``inputs``
        H(x_i) v_i; with ``return_gradient`` the pair ``(gradient, hv)``, both of that shape.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor N entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); when ``v`` does not have the shape of ``inputs`` (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 3))), sa.Tanh(), sa.Linear(rng.normal(size=(2, 8)))])
    >>> x = rng.normal(size=(4, 3)).astype(np.float32)
    >>> v = rng.normal(size=(4, 3)).astype(np.float32)
    >>> g, hv = sa.hessian_vector_product(net, x, v, target=0, return_gradient=True)
    >>> hv.shape
    (4, 3)
    >>> H = sa.hessian(net, x, target=0)
    >>> bool(np.allclose(hv, np.einsum("nij,nj->ni", H, v), atol=1e-5))
    True
    >>> bool(np.allclose(g, sa.saliency(net, x, target=0, abs=False)))
    True
    """
    net, x = _network(net, inputs)
    n = x.shape[0]
    vv = net._batch(v, "v")
    if vv.shape != x.shape:
        raise SwiftAttrError(f"v: expected the shape of inputs {x.shape}, got {vv.shape}", _ffi.SA_ERR_SHAPE)
    t = _targets(net, target, n)
    hv = np.empty_like(x)
    g = np.empty_like(x) if as_bool(return_gradient, "return_gradient") else None
    check(lib.sa_hessian_vector_product(net._handle, fptr(x), n, fptr(vv), iptr(t), t.size, fptr(g), fptr(hv)))
    return (g, hv) if g is not None else hv


def hessian(net, inputs, target=None, internal_batch_size: Optional[int] = None) -> np.ndarray:
    """    The exact Hessians ∂²f_t/∂x∂x at each example over the flattened input.

    Exact (the library's second-order pass, as :func:`hessian_vector_product`), not finite differences.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (N, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32; p = prod(input_shape) features.
        Token networks: token ids (N, L).
    target : int or array_like of int, shape (N,), optional
        The output explained: one index for every example, or one per example. Default None, allowed only for
        a model with one output.
    internal_batch_size : int, optional
        At most this many Hessian–vector products are evaluated at once (bounds memory). Default None: the
        library's budget.

    Returns
    -------
    numpy.ndarray of float32, shape (N, p, p)
        p = prod(input_shape).

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor N entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 3))), sa.Tanh(), sa.Linear(rng.normal(size=(2, 8)))])
    >>> x = rng.normal(size=(4, 3)).astype(np.float32)
    >>> H = sa.hessian(net, x, target=1)
    >>> H.shape
    (4, 3, 3)
    >>> bool(np.allclose(H, H.transpose(0, 2, 1), atol=1e-5))
    True
    """
    net, x = _network(net, inputs)
    n, p = x.shape[0], net.input_size
    t = _targets(net, target, n)
    out = np.empty((n, p, p), dtype=np.float32)
    check(lib.sa_hessian(net._handle, fptr(x), n, iptr(t), t.size, _chunk(internal_batch_size), fptr(out)))
    return out


def with_softplus(net: Network, beta: float = 10.0) -> Network:
    """    A new Network: ``net`` with every ReLU replaced by Softplus(β), softplus(z) = log(1 + e^(βz)) / β.

    Janizek, Sturmfels, Lee 2021 use β = 10 so that Integrated Hessians sees the curvature a ReLU network
    hides (its Hessian is 0 almost everywhere); ``net`` itself is not changed.

    Parameters
    ----------
    net : Network
        The model.
    beta : float, default 10.0
        The sharpness β (> 0); as β → ∞ Softplus(β) tends to the ReLU.

    Returns
    -------
    Network
        A copy of ``net`` with the substitution.

    Raises
    ------
    SwiftAttrError
        When ``net`` is not a swiftattr Network; when ``beta`` is not a positive finite number.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 3))), sa.ReLU(), sa.Linear(rng.normal(size=(1, 8)))])
    >>> x = rng.normal(size=(2, 3)).astype(np.float32)
    >>> float(np.abs(sa.hessian(net, x)).max())                     # ReLU: no curvature
    0.0
    >>> smooth = sa.with_softplus(net, beta=10.0)
    >>> bool(np.abs(sa.hessian(smooth, x)).max() > 0)
    True
    >>> bool(np.allclose(smooth.forward(x), net.forward(x), atol=0.1))   # close to the ReLU network
    True
    """
    if not isinstance(net, Network):
        raise SwiftAttrError(f"net: expected a swiftattr Network, got {type(net).__name__}")
    handle = ctypes.c_void_p()
    check(lib.sa_model_with_softplus(net._handle, as_float(beta, "beta"), ctypes.byref(handle)))
    return Network(handle)

"""Gradient attributions: saliency, input×gradient, Integrated Gradients, Expected Gradients, SmoothGrad.

Argument names follow Captum where the concept is the same. Every function takes a batch ``inputs`` of
the network's input shape (a numpy array, an array-like or a torch tensor, on any device, with or without
grad: it is read as float32) and returns a numpy array of that shape; ``target`` is one class index or one
per example (ints, a numpy array or a torch tensor). ``net`` is a :class:`~swiftattr.Network` or a
:class:`~swiftattr.LazyNetwork` (planned for the shape of ``inputs``).

Token networks (an :class:`~swiftattr.Embedding` first; inputs are ids of shape (n, L)) are attributed at
the embedding output, as Captum's ``LayerIntegratedGradients(model, model.embedding)``: with
``sum_embedding=True`` (the default) the result is summed over the embedding axis, shape (n, L); with
``sum_embedding=False`` it is (n, L, E). Baselines and references are token ids ((L,), (n, L), (R, L)) or
embedding vectors ((n, L, E), (R, L, E); one example as (1, L, E)); None means zero embedding vectors.
SmoothGrad adds its noise to the embedding vectors. ``sum_embedding`` is ignored for other networks.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from . import _ffi
from ._args import (INT64_MAX, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, as_bool, as_choice, as_f32, as_float, as_int,
                    baseline_rows, expect_shape, from_torch_tensor)
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from .model import network_for
from ._progress import long_call


def _network(net, inputs):
    """``net`` (a Network, or the Network a LazyNetwork plans for the shape of ``inputs``) and ``inputs`` as a
    float32 batch of its input shape."""
    net = network_for(net, inputs)
    return net, net._batch(inputs)


def _targets(net: Network, target, n: int) -> np.ndarray:
    """``target`` (one class index, or one per example) as int64 for C. Types and the count are checked here
    (SA_ERR_SHAPE for a wrong count, as C); an index that does not fit int64 is reported with its real value
    (a float 2**63 must not wrap to -2**63 on the way); C checks the range against the model's outputs."""
    if target is None:
        if net.output_size != 1:
            raise SwiftAttrError(f"target is required for a model with {net.output_size} outputs")
        target = 0
    if isinstance(target, (bool, np.bool_)):
        raise SwiftAttrError(f"target: expected integer class indices, got {target!r}")
    try:
        t = np.asarray(from_torch_tensor(target))
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"target: expected integer class indices ({e})") from None
    if t.ndim > 1:
        raise SwiftAttrError(f"target: expected one class index or one per example, got an array of shape {t.shape}",
                             SA_ERR_SHAPE)
    t = t.ravel()
    kind = t.dtype.kind
    if kind == "O":  # Python ints beyond 64 bits
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in t):
            raise SwiftAttrError(f"target: expected integer class indices, got {target!r}")
    elif kind == "f":
        bad = ~(np.isfinite(t) & (t == np.round(t)))
        if bad.any():
            shown = target if t.size == 1 else f"{t[bad][0]!r} at target[{int(np.argmax(bad))}]"
            raise SwiftAttrError(f"target: expected integer class indices, got {shown}")
    elif kind not in "iu":
        raise SwiftAttrError(f"target: expected integer class indices, got dtype {t.dtype}")
    if t.size not in (1, n):
        raise SwiftAttrError(f"target: expected one class index or {n} (one per example), got {t.size}", SA_ERR_SHAPE)
    if kind == "O":
        outside = np.array([not -INT64_MAX - 1 <= int(v) <= INT64_MAX for v in t])
    elif kind == "u":
        outside = t > INT64_MAX
    elif kind == "f":
        outside = (t >= 2.0**63) | (t < -(2.0**63))
    else:
        outside = None
    if outside is not None and outside.any():
        i = int(np.argmax(outside))
        where = f"[{i}]" if t.size > 1 else ""
        raise SwiftAttrError(f"target{where} = {int(t[i])} is out of range for a model with {net.output_size} outputs",
                             SA_ERR_OUT_OF_RANGE)  # int() of a float or a Python int is exact: the real value
    return np.ascontiguousarray(t.astype(np.int64))


def _baselines(net: Network, baselines, n: int, name: str = "baselines"):
    """(array or None, count): None → zeros; a scalar → filled; one example → broadcast; n examples
    (:func:`swiftattr._args.baseline_rows`, strict)."""
    return baseline_rows(net, baselines, n, name)


def _token_values(net, values, name: str):
    """Token ids or embedding vectors (``values`` of a token network) as embedding vectors (k, L, E)."""
    a = as_f32(values, name)
    L, E = net.input_shape[0], net.embedding_dim
    if a.ndim == 3 or (a.ndim == 2 and a.shape == (L, E) and a.shape[1] != L):
        vectors = a if a.ndim == 3 else a[None]
        if vectors.shape[1:] != (L, E):
            raise SwiftAttrError(f"{name}: embedding vectors must have shape (k, {L}, {E}), got {a.shape}", SA_ERR_SHAPE)
        return np.ascontiguousarray(vectors)
    return net.embed(a[None] if a.shape == (L,) else a, name)


def _at_embedding(net, x, sum_embedding, **values):
    """For a token network, the call moved to the embedding output in Python: (rest network, embedded
    inputs, the ``values`` (baselines, references) as embedding vectors or None, finish) — or None when the
    C call on the token network computes it (summed over the embedding axis, ids or no baselines).
    ``finish`` sums the result over the embedding axis when asked (keeping a delta, if returned, as is)."""
    if not net.is_token_model:
        return None
    summed = as_bool(sum_embedding, "sum_embedding")
    given = {k: v for k, v in values.items() if v is not None}
    L, E = net.input_shape[0], net.embedding_dim
    vectors = any(np.ndim(v) == 3 or (np.ndim(v) == 2 and np.shape(v) == (L, E) and E != L) for v in given.values())
    if summed and not vectors:
        return None
    moved = {k: (_token_values(net, v, k) if v is not None else None) for k, v in values.items()}

    def finish(result):
        if not summed:
            return result
        if isinstance(result, tuple):
            return (result[0].sum(axis=-1),) + result[1:]
        return result.sum(axis=-1)

    return net.embedding_rest(), net.embed(x), moved, finish


def _chunk(internal_batch_size) -> int:
    if internal_batch_size is None:
        return 0
    return as_int(internal_batch_size, "internal_batch_size", 1, INT64_MAX)


def _seed(seed) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    seed = as_int(seed, "seed", -(2**64), 2**64 - 1)
    if seed < 0:
        raise SwiftAttrError(f"seed must be non-negative (got {seed})")
    return seed


@long_call
def saliency(net, inputs, target=None, abs: bool = True, sum_embedding: bool = True, layer=None) -> np.ndarray:
    """    Saliency map: the gradient of the target output with respect to the inputs, |∂f_t/∂x| when ``abs``.

    Simonyan, Vedaldi, Zisserman 2014, "Deep inside convolutional networks" (Captum's ``Saliency``). Token
    networks: at the embedding output (see the module notes).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples: a numpy array, an array-like or a torch tensor (any device, with or without grad), read
        as float32. Token networks: token ids, shape (n, L).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example (ints, a numpy array or a
        torch tensor). Default None, allowed only for a model with one output.
    abs : bool, default True
        Return the absolute value of the gradient (Captum's default); False gives the signed gradient.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E). Ignored
        for other networks.
    layer : str or int, optional
        With respect to that node's output instead (a module name or node index; see :mod:`swiftattr.layers`
        and :func:`swiftattr.layers.layer_saliency`). Default None: the inputs.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks; (n, *layer output shape) with ``layer``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs or is not integral, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        for the model's outputs (SA_ERR_OUT_OF_RANGE); when ``layer`` names no node.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(3, 4)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W)])                  # f(x) = W x
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> g = sa.saliency(net, x, target=1)
    >>> g.shape
    (5, 4)
    >>> bool(np.allclose(g, np.abs(W[1])))                   # the gradient of W[1]·x is W[1]
    True
    >>> bool(np.allclose(sa.saliency(net, x, target=1, abs=False), W[1]))
    True
    """
    if layer is not None:
        from .layers import layer_saliency
        return layer_saliency(net, inputs, layer, target, abs)
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding)
    if moved:
        rest, xe, _, finish = moved
        return finish(saliency(rest, xe, target, abs))
    t = _targets(net, target, x.shape[0])
    absolute = as_bool(abs, "abs")
    out = np.empty_like(x)
    check(lib.sa_saliency(net._handle, fptr(x), x.shape[0], iptr(t), t.size, int(absolute), fptr(out)))
    return out


@long_call
def input_x_gradient(net, inputs, target=None, sum_embedding: bool = True, layer=None) -> np.ndarray:
    """    Input × gradient: x ⊙ ∂f_t/∂x (Shrikumar et al. 2016; Captum's ``InputXGradient``).

    Token networks: embedding vectors times the gradient there.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples: a numpy array, an array-like or a torch tensor (any device, with or without grad), read
        as float32. Token networks: token ids, shape (n, L).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example (ints, a numpy array or a
        torch tensor). Default None, allowed only for a model with one output.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E). Ignored
        for other networks.
    layer : str or int, optional
        That node's output times the gradient there instead (Captum's LayerGradientXActivation; a module name
        or node index, see :mod:`swiftattr.layers`). Default None: the inputs.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks; (n, *layer output shape) with ``layer``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs or is not integral, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        for the model's outputs (SA_ERR_OUT_OF_RANGE); when ``layer`` names no node.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(3, 4)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W)])                  # f(x) = W x
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi = sa.input_x_gradient(net, x, target=[0, 1, 2, 0, 1])   # one target per example
    >>> phi.shape
    (5, 4)
    >>> f = net.forward(x)                                   # a linear model without bias: Σφ = f_t(x)
    >>> bool(np.allclose(phi.sum(axis=1), f[np.arange(5), [0, 1, 2, 0, 1]], atol=1e-5))
    True
    """
    if layer is not None:
        from .layers import layer_gradient_x_activation
        return layer_gradient_x_activation(net, inputs, layer, target)
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding)
    if moved:
        rest, xe, _, finish = moved
        return finish(input_x_gradient(rest, xe, target))
    t = _targets(net, target, x.shape[0])
    out = np.empty_like(x)
    check(lib.sa_input_x_gradient(net._handle, fptr(x), x.shape[0], iptr(t), t.size, fptr(out)))
    return out


@long_call
def gradient(net, inputs, grad_outputs, sum_embedding: bool = True) -> np.ndarray:
    """    Vector–Jacobian product: the gradient of Σ grad_outputs ⊙ net(inputs) with respect to the inputs.

    Token networks: with respect to the embedding output.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples: a numpy array, an array-like or a torch tensor (any device, with or without grad), read
        as float32. Token networks: token ids, shape (n, L).
    grad_outputs : array_like, shape (n, *output_shape) or (n, output_size)
        One row of output weights per example (the shape of ``net.forward(inputs)``, or flattened).
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E). Ignored
        for other networks.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        Σ_k grad_outputs[i, k] ∂f_k/∂x at each example i ((n, L) or (n, L, E) for token networks).

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape or ``grad_outputs`` is not one row of
        ``output_size`` weights per example (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(3, 4)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W)])                  # f(x) = W x
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> v = np.zeros((5, 3), np.float32); v[:, 2] = 1        # one-hot rows: the gradient of output 2
    >>> g = sa.gradient(net, x, v)
    >>> g.shape
    (5, 4)
    >>> bool(np.allclose(g, sa.saliency(net, x, target=2, abs=False)))
    True
    """
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding)
    if moved:
        rest, xe, _, finish = moved
        return finish(gradient(rest, xe, grad_outputs))
    c = as_f32(grad_outputs, "grad_outputs")
    if c.shape == (x.shape[0],) + net.output_shape:
        c = c.reshape(x.shape[0], net.output_size)
    c = expect_shape(c, (x.shape[0], net.output_size), "grad_outputs", "one row of output weights per example")
    out = np.empty_like(x)
    check(lib.sa_gradient(net._handle, fptr(x), x.shape[0], fptr(c), fptr(out)))
    return out


@long_call
def integrated_gradients(net, inputs, baselines=None, target=None, n_steps: int = 50, method: str = "gausslegendre",
                         internal_batch_size: Optional[int] = None, return_convergence_delta: bool = False,
                         sum_embedding: bool = True, layer=None, multiply_by_inputs: bool = True):
    """    Integrated Gradients (Sundararajan, Taly, Yan 2017, "Axiomatic attribution for deep networks").

    φ = (x − x') ⊙ ∫₀¹ ∇f_t(x' + α(x − x')) dα, computed by a quadrature of ``n_steps`` points along the path
    from the baseline x' to x (Captum's ``IntegratedGradients``). Completeness: Σφ = f_t(x) − f_t(x') up to the
    quadrature error. Token networks: the path runs between embedding vectors (see the module notes for
    ``sum_embedding`` and the forms of ``baselines``).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples: a numpy array, an array-like or a torch tensor (any device, with or without grad), read
        as float32. Token networks: token ids, shape (n, L).
    baselines : float or array_like, optional
        The baseline x': None (zeros, the default), a scalar (every feature), one example of the input shape
        (shared) or one per example, (n, *input_shape). Token networks: token ids ((L,), (n, L)) or embedding
        vectors ((n, L, E); one example as (1, L, E)); None means zero embedding vectors.
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example (ints, a numpy array or a
        torch tensor). Default None, allowed only for a model with one output.
    n_steps : int, default 50
        Number of quadrature points on the path.
    method : str, default "gausslegendre"
        The quadrature: "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or
        "gausslegendre".
    internal_batch_size : int, optional
        At most this many path points are evaluated at once (bounds memory). Default None: the library's budget.
    return_convergence_delta : bool, default False
        Also return the completeness error Σφ − (f_t(x) − f_t(x')) per example.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E). Ignored
        for other networks.
    layer : str or int, optional
        Captum's LayerIntegratedGradients at that node's output (a module name or node index; see
        :func:`swiftattr.layers.layer_integrated_gradients`). Default None: the inputs.
    multiply_by_inputs : bool, default True
        False (Captum's name) returns the path-integrated gradient ∫₀¹ ∇f_t(x' + α(x − x')) dα instead of its
        product with x − x' (the delta stays that of the attributions). Not supported with ``layer``.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        The attributions ((n, L) or (n, L, E) for token networks; (n, *layer output shape) with ``layer``).
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs or is not integral, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        for the model's outputs (SA_ERR_OUT_OF_RANGE); when ``baselines`` has another shape (SA_ERR_SHAPE); for an
        unknown ``method`` (SA_ERR_UNKNOWN_ENUM); for ``n_steps`` < 1; for ``multiply_by_inputs=False`` with
        ``layer``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 4))), sa.Tanh(), sa.Linear(rng.normal(size=(3, 8)))])
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi, delta = sa.integrated_gradients(net, x, target=0, return_convergence_delta=True)
    >>> phi.shape, delta.shape
    ((5, 4), (5,))
    >>> f, f0 = net.forward(x)[:, 0], net.forward(np.zeros((1, 4)))[0, 0]
    >>> bool(np.allclose(phi.sum(axis=1), f - f0, atol=1e-4))   # completeness
    True
    >>> bool(np.abs(delta).max() < 1e-4)
    True
    """
    if layer is not None:
        from .layers import layer_integrated_gradients
        if not as_bool(multiply_by_inputs, "multiply_by_inputs"):
            raise SwiftAttrError("multiply_by_inputs=False is not supported with layer= (layer integrated gradients)")
        return layer_integrated_gradients(net, inputs, layer, baselines, target, n_steps, method, internal_batch_size,
                                          return_convergence_delta)
    net, x = _network(net, inputs)
    multiply = as_bool(multiply_by_inputs, "multiply_by_inputs")
    moved = _at_embedding(net, x, sum_embedding, baselines=baselines)
    if moved:
        rest, xe, v, finish = moved
        return finish(integrated_gradients(rest, xe, v["baselines"], target, n_steps, method, internal_batch_size,
                                           return_convergence_delta, multiply_by_inputs=multiply))
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    method_code = as_choice(method, _ffi.IG_METHODS, "method")
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    call = lib.sa_integrated_gradients if multiply else lib.sa_path_integrated_gradients
    check(call(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, as_int(n_steps, "n_steps"), method_code,
               _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out


@long_call
def expected_gradients(net, inputs, references, target=None, n_samples: int = 200, seed: Optional[int] = None,
                       internal_batch_size: Optional[int] = None, first_example: int = 0,
                       sum_embedding: bool = True) -> np.ndarray:
    """    Expected Gradients (Erion, Janizek, Sturmfels, Lundberg, Lee 2021, "Improving performance of deep learning
    models with axiomatic attribution priors and expected gradients").

    φ = E_{x'∼references, α∼U(0,1)} [(x − x') ⊙ ∇f_t(x' + α(x − x'))], estimated from ``n_samples`` draws per
    example. The same ``seed`` gives the same numbers: example i draws from a stream keyed by
    (seed, first_example + i, sample), whatever ``internal_batch_size`` or the thread count. Σφ estimates
    f_t(x) − mean f_t(references).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples: a numpy array, an array-like or a torch tensor (any device, with or without grad), read
        as float32. Token networks: token ids, shape (n, L).
    references : array_like, shape (R, *input_shape)
        The reference distribution the baselines x' are drawn from (R ≥ 1 rows). Token networks: token ids
        (R, L) or embedding vectors (R, L, E).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example (ints, a numpy array or a
        torch tensor). Default None, allowed only for a model with one output.
    n_samples : int, default 200
        Draws of (reference, α) per example.
    seed : int, optional
        Non-negative seed of the draws. Default None: a fresh random seed (results then differ between calls).
    internal_batch_size : int, optional
        At most this many samples are evaluated at once (bounds memory). Default None: the library's budget.
    first_example : int, default 0
        The index of the first row of ``inputs`` in the whole batch, so a batch computed in pieces
        (``first_example`` = each piece's first row) equals the one-call result up to float32 rounding.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E). Ignored
        for other networks.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs or is not integral, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        for the model's outputs (SA_ERR_OUT_OF_RANGE); when ``references`` does not have the input shape
        (SA_ERR_SHAPE); for a negative ``seed`` or ``n_samples`` < 1.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 4))), sa.Tanh(), sa.Linear(rng.normal(size=(3, 8)))])
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> refs = rng.normal(size=(20, 4)).astype(np.float32)
    >>> phi = sa.expected_gradients(net, x, refs, target=2, n_samples=64, seed=7)
    >>> phi.shape
    (5, 4)
    >>> bool(np.array_equal(phi, sa.expected_gradients(net, x, refs, target=2, n_samples=64, seed=7)))
    True
    >>> pieces = [sa.expected_gradients(net, x[a:a + 2], refs, target=2, n_samples=64, seed=7, first_example=a)
    ...           for a in (0, 2, 4)]
    >>> bool(np.allclose(np.concatenate(pieces), phi, atol=1e-5))   # computed in pieces: the same draws
    True
    """
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding, references=references)
    if moved:
        rest, xe, v, finish = moved
        return finish(expected_gradients(rest, xe, v["references"], target, n_samples, seed, internal_batch_size,
                                         first_example))
    r = net._batch(references, "references")
    t = _targets(net, target, x.shape[0])
    out = np.empty_like(x)
    check(lib.sa_expected_gradients(net._handle, fptr(x), x.shape[0], fptr(r), r.shape[0], iptr(t), t.size,
                                    as_int(n_samples, "n_samples"), _seed(seed), as_int(first_example, "first_example"),
                                    _chunk(internal_batch_size), fptr(out)))
    return out


@long_call
def smoothgrad(net, inputs, target=None, nt_type: str = "smoothgrad", n_samples: int = 5, stdevs: float = 1.0,
               seed: Optional[int] = None, internal_batch_size: Optional[int] = None,
               first_example: int = 0, sum_embedding: bool = True, nt_samples: Optional[int] = None) -> np.ndarray:
    """    SmoothGrad (Smilkov, Thorat, Kim, Viégas, Wattenberg 2017, "SmoothGrad: removing noise by adding noise").

    Gradients ∇f_t at ``n_samples`` noisy copies x + N(0, stdevs²) aggregated per example by ``nt_type``:
    "smoothgrad" (mean), "smoothgrad_sq" (mean of squares) or "vargrad" (variance). The shortcut of
    :func:`swiftattr.noise_tunnel` over the gradient, with the same draws: keyed by (seed, first_example + i,
    sample) as in :func:`expected_gradients`. Token networks: the noise is added to the embedding vectors.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples: a numpy array, an array-like or a torch tensor (any device, with or without grad), read
        as float32. Token networks: token ids, shape (n, L).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example (ints, a numpy array or a
        torch tensor). Default None, allowed only for a model with one output.
    nt_type : str, default "smoothgrad"
        "smoothgrad", "smoothgrad_sq" or "vargrad".
    n_samples : int, default 5
        Noisy copies per example.
    stdevs : float, default 1.0
        Standard deviation of the Gaussian noise (in input units).
    seed : int, optional
        Non-negative seed of the noise. Default None: a fresh random seed.
    internal_batch_size : int, optional
        At most this many noisy copies are evaluated at once (bounds memory). Default None: the library's budget.
    first_example : int, default 0
        The index of the first row of ``inputs`` in the whole batch (see :func:`expected_gradients`).
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E). Ignored
        for other networks.
    nt_samples : int, optional
        Captum's name for ``n_samples``; overrides it when given.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs or is not integral, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        for the model's outputs (SA_ERR_OUT_OF_RANGE); for an unknown ``nt_type`` (SA_ERR_UNKNOWN_ENUM); for a
        negative ``seed``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(3, 4)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W)])                  # f(x) = W x
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> sg = sa.smoothgrad(net, x, target=0, n_samples=8, stdevs=0.5, seed=1)
    >>> sg.shape
    (5, 4)
    >>> bool(np.allclose(sg, W[0], atol=1e-5))               # a linear model's gradient ignores the noise
    True
    >>> vg = sa.smoothgrad(net, x, target=0, nt_type="vargrad", n_samples=8, seed=1)
    >>> bool(np.abs(vg).max() < 1e-5)
    True
    """
    if nt_samples is not None:
        n_samples = nt_samples
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding)
    if moved:
        rest, xe, _, finish = moved
        return finish(smoothgrad(rest, xe, target, nt_type, n_samples, stdevs, seed, internal_batch_size, first_example))
    t = _targets(net, target, x.shape[0])
    nt_code = as_choice(nt_type, _ffi.NT_TYPES, "nt_type")
    out = np.empty_like(x)
    check(lib.sa_smoothgrad(net._handle, fptr(x), x.shape[0], iptr(t), t.size, nt_code,
                            as_int(n_samples, "n_samples"), as_float(stdevs, "stdevs"), _seed(seed),
                            as_int(first_example, "first_example"), _chunk(internal_batch_size), fptr(out)))
    return out

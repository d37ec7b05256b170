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
                    expect_shape, from_torch_tensor)
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
    """(array or None, count): None → zeros; a scalar → filled; one example → broadcast; n examples."""
    if baselines is None:
        return None, 0
    b = as_f32(baselines, name)
    if b.ndim == 0:
        return np.full((1,) + net.input_shape, b, dtype=np.float32), 1
    if b.shape == net.input_shape:
        return np.ascontiguousarray(b[None]), 1
    if b.shape[1:] == net.input_shape and b.shape[0] in (1, n):
        return b, b.shape[0]
    raise SwiftAttrError(f"{name}: expected one example of shape {net.input_shape} or {n} examples, got shape {b.shape}",
                         SA_ERR_SHAPE)


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
    """Gradient of the target output with respect to the inputs (its absolute value when ``abs``; token
    networks: at the embedding output, see the module notes). ``layer``: with respect to that node's output
    instead (a module name or node index; see :mod:`swiftattr.layers`)."""
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
    """Inputs times the gradient of the target output (token networks: embedding vectors times the
    gradient there). ``layer``: that node's output times the gradient there (Captum's
    LayerGradientXActivation; see :mod:`swiftattr.layers`)."""
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
    """Vector–Jacobian product: the gradient of sum(grad_outputs * net(inputs)) with respect to inputs.
    ``grad_outputs`` has the shape of ``net.forward(inputs)``, (n, *output_shape), or (n, output_size).
    Token networks: with respect to the embedding output."""
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
    """Integrated Gradients (Sundararajan et al. 2017): (x − x') ⊙ ∫₀¹ ∇f(x' + α(x − x')) dα.

    ``method``: riemann_left, riemann_right, riemann_middle, riemann_trapezoid or gausslegendre.
    ``internal_batch_size`` bounds the number of path points evaluated at once (memory). With
    ``return_convergence_delta`` also returns Σφ − (f(x) − f(x')) per example. ``multiply_by_inputs=False``
    (Captum's name) returns the path-integrated gradient ∫₀¹ ∇f(x' + α(x − x')) dα instead of its product with
    x − x' (the delta stays that of the attributions). Token networks: the path runs between embedding vectors
    (see the module notes for ``sum_embedding`` and the forms of ``baselines``). ``layer``: Captum's
    LayerIntegratedGradients at that node's output (see :func:`swiftattr.layers.layer_integrated_gradients`)."""
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
    """Expected Gradients (Erion et al.): E over references x' and α∼U(0,1) of (x − x') ⊙ ∇f(x' + α(x − x')),
    from ``n_samples`` draws per example. The same ``seed`` gives the same numbers: example i draws from a
    stream keyed by (seed, first_example + i, sample), whatever ``internal_batch_size`` or the thread count.
    ``first_example`` is the index of the first row in the whole batch, so a batch computed in pieces
    (``first_example`` = each piece's first row) equals the one-call result up to float32 rounding.
    Token networks: references are token ids (R, L) or embedding vectors (R, L, E)."""
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
    """SmoothGrad (Smilkov et al. 2017) over gradients at x + N(0, stdevs²): ``nt_type`` "smoothgrad" (mean),
    "smoothgrad_sq" (mean of squares) or "vargrad" (variance). The same ``seed`` gives the same numbers; the
    draws are keyed by (seed, first_example + i, sample) as in :func:`expected_gradients`. Token networks: the
    noise is added to the embedding vectors. ``nt_samples`` is Captum's name for ``n_samples``; the shortcut of
    :func:`swiftattr.noise_tunnel` over the gradient, with the same draws."""
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

"""Contextual Decomposition (Murdoch, Liu, Yu 2018; Singh, Murdoch, Yu 2019), as the ``acd`` package computes it.

The network's output is split into a relevant part, due to a group of input elements (a mask), and an
irrelevant part, with relevant + irrelevant = the output; ``net`` may be a LazyNetwork (planned for the shape
of ``x``). The rules per layer kind are listed in swiftattr.h (section "Contextual Decomposition").
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._args import SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, as_f32, from_torch_tensor
from ._ffi import SwiftAttrError, check, fptr, lib
from .attribution import _chunk, _targets
from .model import network_for
from ._progress import long_call


def _masks(net, mask):
    """``mask`` as a float32 (M, *input_shape) array and whether one mask (of the input shape) was given. A
    boolean mask converts to 0/1. For a token network input_shape is (L,): one value per position."""
    try:
        arr = np.asarray(from_torch_tensor(mask))
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"mask: cannot convert to an array ({e})") from None
    if arr.dtype.kind == "b":
        arr = arr.astype(np.float32)
    arr = as_f32(arr, "mask")
    shape = net.input_shape
    if arr.shape == shape:
        return np.ascontiguousarray(arr[None]), True
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        if arr.shape[0] == 0:
            raise SwiftAttrError(f"mask: no masks given (shape {arr.shape})")
        return arr, False
    what = " (a token network takes one value per position)" if net.is_token_model else ""
    raise SwiftAttrError(f"mask: expected shape {shape} (one mask) or (M, {', '.join(map(str, shape))}) (M masks){what}, "
                         f"got {arr.shape}", SA_ERR_SHAPE)


@long_call
def contextual_decomposition(net, x, mask, target=None, internal_batch_size: Optional[int] = None):
    """Contextual Decomposition (Murdoch, Liu, Yu 2018; Singh, Murdoch, Yu 2019), as the ``acd`` package computes it.

    Splits the outputs of ``x`` into (relevant, irrelevant): the parts due to the group of input elements
    ``mask`` marks (β, from β₀ = mask·x) and to the rest (γ, from γ₀ = (1 − mask)·x), propagated layer by
    layer with relevant + irrelevant = the output.

    Rules (acd's): Linear and Conv split their bias in proportion (|r| + 1e-20) : (|s| + 1e-20) of the two
    parts' products, BatchNorm as an affine map (proportion |r|/(|r| + |s|), 0 where undefined), max-pooling
    at the argmax of the whole, ReLU-like activations β' = f(β), γ' = f(β + γ) − f(β), Sigmoid and Tanh
    averaged over both orders; average pooling, Flatten and Dropout apply to both parts, add and concat
    combine them. A network ending in Softmax is decomposed at its logits (as acd scores logits).

    Token networks (sa.Embedding first, ``x`` token ids of shape (N, L)): ``mask`` is per position, shape (L,)
    or (M, L); β₀ is the embedding vector of each position times its mask value. LSTM: acd's ``cd_text``
    (Murdoch, Liu, Yu 2018; gates i, f, g split into relevant, irrelevant and bias parts, the output gate
    taken whole), for both outputs (last state, every state); cd_text's span start..stop (inclusive) is the
    mask ``m[start:stop + 1] = 1``. cd_text scores W_out·h without the output bias; a final sa.Linear here
    splits its bias like every affine layer, so relevant + irrelevant = the logits (build the head without a
    bias to get cd_text's numbers).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``x``).
    x : array_like, shape (N, *input_shape)
        A batch of the input shape (token ids (N, L) for a token network).
    mask : array_like, shape input_shape or (M, *input_shape)
        One mask, or M masks computed in one batched call (all (example, mask) pairs run through each layer as
        one matrix product); 0/1 values or booleans (fractional values split an input linearly).
    target : int or array_like of int, optional
        One class index, or one per example (N,): return that output only. None: every output.
    internal_batch_size : int, optional
        Bounds the (example, mask) pairs computed at once (default: a fixed memory budget).

    Returns
    -------
    relevant, irrelevant : numpy.ndarray, float32
        Shape (N, out) for one mask and (N, M, out) for M masks; with ``target``, (N,) or (N, M).

    Raises
    ------
    SwiftAttrError
        If ``mask`` has neither shape ``input_shape`` nor (M, *input_shape) (SA_ERR_SHAPE), ``x`` does not have
        the input shape, or ``target`` is out of range (SA_ERR_OUT_OF_RANGE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, -1.0, 0.5]]), np.zeros(1))])  # f(x) = w·x
    >>> x = np.ones((3, 4), dtype=np.float32)
    >>> rel, irr = sa.contextual_decomposition(net, x, np.array([1, 1, 0, 0]), target=0)
    >>> rel.shape, float(rel[0]), float(irr[0])
    ((3,), 3.0, -0.5)
    >>> rel, irr = sa.contextual_decomposition(net, x, np.eye(4))       # four masks in one call
    >>> rel.shape, [float(v) for v in rel[0, :, 0]]
    ((3, 4, 1), [1.0, 2.0, -1.0, 0.5])
    """
    net = network_for(net, x)
    xs = net._batch(x, "x")
    n = xs.shape[0]
    masks, single = _masks(net, mask)
    count = masks.shape[0]
    t = None if target is None else _targets(net, target, n)
    if t is not None:
        bad = (t < 0) | (t >= net.output_size)
        if bad.any():
            i = int(np.argmax(bad))
            where = f"[{i}]" if t.size > 1 else ""
            raise SwiftAttrError(f"target{where} = {int(t[i])} is out of range for a model with {net.output_size} outputs "
                                 f"(0..<{net.output_size})", SA_ERR_OUT_OF_RANGE)
    relevant = np.empty((n, count, net.output_size), dtype=np.float32)
    irrelevant = np.empty_like(relevant)
    check(lib.sa_contextual_decomposition(net._handle, fptr(xs), n, fptr(masks), count, _chunk(internal_batch_size),
                                          fptr(relevant), fptr(irrelevant)))
    if t is not None:
        index = np.broadcast_to(t, (n,))[:, None, None]
        relevant = np.take_along_axis(relevant, np.broadcast_to(index, (n, count, 1)), 2)[..., 0]
        irrelevant = np.take_along_axis(irrelevant, np.broadcast_to(index, (n, count, 1)), 2)[..., 0]
    if single:
        relevant, irrelevant = relevant[:, 0], irrelevant[:, 0]
    return relevant, irrelevant

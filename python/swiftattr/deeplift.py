"""DeepLIFT and DeepSHAP (Shrikumar, Greenside, Kundaje 2017).

Contributions of every input to the difference of one output from its value at a reference that sum to it
exactly (summation-to-delta): f_t(x) − f_t(x⁰), or, for a network ending in Softmax, the centred logit
difference. Argument names follow Captum's DeepLift and DeepLiftShap. Inputs, baselines and references may be
numpy arrays, array-likes or torch tensors; results are numpy arrays of the input's shape; ``net`` may be a
LazyNetwork (planned for the shape of ``inputs``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _ffi
from ._args import SA_ERR_INVALID_ARGUMENT, as_bool, as_choice, as_f32
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from .attribution import _at_embedding, _baselines, _chunk, _network, _targets
from ._progress import long_call


@long_call
def deeplift(net, inputs, baselines=None, target=None, rule: str = "rescale", maxpool: str = "crossmax",
             multiply_by_inputs: bool = True, return_convergence_delta: bool = False,
             internal_batch_size: Optional[int] = None, sum_embedding: bool = True, layer=None):
    """DeepLIFT contributions φ of ``inputs`` to output ``target``, relative to ``baselines``.

    ``baselines``: None (zeros), a scalar, one example (shared) or one per example. ``rule``: "rescale"
    (Captum's DeepLift), "revealcancel", or "genomics" (Rescale after convolutions, RevealCancel after dense
    layers, the authors' genomics setting).

    ``maxpool``, and which library each rule equals:

    - ``maxpool="gradient"`` routes the multiplier to the argmax of the input, as the gradient does (the
      authors' package). It equals Captum's DeepLift and DeepLiftShap for a max-pool that follows a ReLU
      (to 2e-6 on the benchmark CNN): with torch 2.x Captum's cross-max hook takes effect only for a pool
      that reads the model input, and after a ReLU Captum routes by the gradient. Exact summation-to-delta
      when the references are equal within each pooling window.
    - ``maxpool="crossmax"`` (the default) splits Δy = (max(y, y⁰) − y⁰) + (y − max(y, y⁰)) between the
      argmax of the input and that of the reference: exact summation-to-delta for any baseline. It matches
      shap's DeepExplainer (and Captum only for a pool that reads the model input); on the benchmark CNN it
      differs from Captum's DeepLift by 13–72 %.

    What φ sums to: f_t(x) − f_t(x⁰). A network ending in Softmax (what ``from_sklearn`` makes by default)
    is attributed at its logits z, each contribution minus its mean over the classes, so Σφ is the centred
    logit difference (z_t(x) − z_t(x⁰)) − mean_c (z_c(x) − z_c(x⁰)), not a difference of probabilities
    (``from_sklearn(..., output="logits")`` gives the logits themselves).

    ``multiply_by_inputs=False`` returns the multipliers m instead of m·(x − x⁰), as Captum does. With
    ``return_convergence_delta`` also returns, per example, delta = Σφ − (what φ sums to): Σφ − (f_t(x) −
    f_t(x⁰)), or Σφ − the centred logit difference after a Softmax; always from the contributions m·(x − x⁰),
    so only float32 rounding (about 1e-7 relative) remains.

    Token networks (an Embedding first) are attributed at the embedding output, summed over the embedding
    axis unless ``sum_embedding=False``; ``baselines`` are token ids or embedding vectors (None: zero vectors),
    as in :mod:`swiftattr.attribution`. Through an LSTM every gate's σ/tanh and tanh(c) take Rescale and
    each product ab splits by the Shapley rule Δ(ab) = b̄Δa + āΔb (ā = (a + a⁰)/2), so summation-to-delta
    stays exact; RevealCancel after an LSTM is an error.

    ``layer``: Captum's LayerDeepLift, the contributions of that node's output (a module name or node index;
    see :func:`swiftattr.layers.layer_deeplift`)."""
    if layer is not None:
        from .layers import layer_deeplift
        return layer_deeplift(net, inputs, layer, baselines, target, rule, maxpool, multiply_by_inputs,
                              return_convergence_delta, internal_batch_size)
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding, baselines=baselines)
    if moved:
        rest, xe, v, finish = moved
        return finish(deeplift(rest, xe, v["baselines"], target, rule, maxpool, multiply_by_inputs,
                               return_convergence_delta, internal_batch_size))
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    r = as_choice(rule, _ffi.DEEPLIFT_RULES, "rule")
    m = as_choice(maxpool, _ffi.MAXPOOL_RULES, "maxpool")
    by_inputs = as_bool(multiply_by_inputs, "multiply_by_inputs")
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_deeplift(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, r, m, int(by_inputs),
                          _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out


@long_call
def deepshap(net, inputs, references, target=None, rule: str = "rescale", internal_batch_size: Optional[int] = None,
             maxpool: str = "crossmax", multiply_by_inputs: bool = True, return_convergence_delta: bool = False,
             sum_embedding: bool = True):
    """DeepSHAP, Captum's DeepLiftShap: DeepLIFT averaged over a set of ``references`` (an array of shape
    (R, *input_shape), R ≥ 1, or one example), φ = (1/R) Σ_r φ(x, r). ``rule``, ``maxpool`` and
    ``multiply_by_inputs`` as in :func:`deeplift` (``maxpool="gradient"`` equals Captum's DeepLiftShap after a
    ReLU). ``internal_batch_size`` bounds the (example, reference) pairs computed at once, so memory stays
    bounded whatever the number of references (default: a fixed budget).

    What φ sums to: f_t(x) − mean_r f_t(r); after a final Softmax, the mean over references of the centred
    logit difference (see :func:`deeplift`). With ``return_convergence_delta`` also returns, per example,
    delta = Σφ − (what φ sums to), from the contributions. Token networks: as :func:`deeplift`, references
    as token ids (R, L) or embedding vectors (R, L, E)."""
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding, references=references)
    if moved:
        rest, xe, v, finish = moved
        return finish(deepshap(rest, xe, v["references"], target, rule, internal_batch_size, maxpool, multiply_by_inputs,
                               return_convergence_delta))
    n = x.shape[0]
    refs = as_f32(references, "references")
    if refs.shape == net.input_shape:  # a single reference
        refs = refs[None]
    if refs.ndim >= 1 and refs.shape[0] == 0:
        raise SwiftAttrError("references: the reference set is empty", SA_ERR_INVALID_ARGUMENT)
    refs = net._batch(refs, "references")
    t = _targets(net, target, n)
    r = as_choice(rule, _ffi.DEEPLIFT_RULES, "rule")
    m = as_choice(maxpool, _ffi.MAXPOOL_RULES, "maxpool")
    by_inputs = as_bool(multiply_by_inputs, "multiply_by_inputs")
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_deepshap(net._handle, fptr(x), n, fptr(refs), refs.shape[0], iptr(t), t.size, r, m,
                          int(by_inputs), _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out

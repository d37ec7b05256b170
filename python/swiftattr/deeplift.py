"""DeepLIFT and DeepSHAP (Shrikumar, Greenside, Kundaje 2017).

Contributions of every input to the difference of one output from its value at a reference,
f_t(x) − f_t(x⁰), that sum to it exactly (summation-to-delta). Argument names follow Captum's DeepLift and
DeepLiftShap.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _ffi
from ._args import as_choice as _enum
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from .attribution import _baselines, _chunk, _network, _targets
from .model import _f32



def deeplift(net, inputs, baselines=None, target=None, rule: str = "rescale", maxpool: str = "crossmax",
             multiply_by_inputs: bool = True, return_convergence_delta: bool = False,
             internal_batch_size: Optional[int] = None):
    """DeepLIFT contributions of ``inputs`` to output ``target``, relative to ``baselines``.

    ``baselines``: None (zeros), a scalar, one example (shared) or one per example. ``rule``: "rescale"
    (Captum's DeepLift), "revealcancel", or "genomics" (Rescale after convolutions, RevealCancel after dense
    layers). ``maxpool``: "crossmax" (Captum's rule, exact for any baseline) or "gradient" (route to the
    argmax of the input, the authors' package; exact when the baselines are equal within each window).
    ``multiply_by_inputs=False`` returns the multipliers m instead of m·(x − x⁰), as Captum does. With
    ``return_convergence_delta`` also returns Σ contributions − (f_t(x) − f_t(x⁰)) per example. A network
    ending in Softmax is attributed at its logits, each contribution minus its mean over the classes."""
    net = _network(net)
    x = net._batch(inputs)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    r = _enum(rule, _ffi.DEEPLIFT_RULES, "rule")
    m = _enum(maxpool, _ffi.MAXPOOL_RULES, "maxpool")
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_deeplift(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, r, m, int(bool(multiply_by_inputs)),
                          _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if return_convergence_delta else out


def deepshap(net, inputs, references, target=None, rule: str = "rescale", internal_batch_size: Optional[int] = None,
             maxpool: str = "crossmax", multiply_by_inputs: bool = True, return_convergence_delta: bool = False):
    """DeepSHAP: DeepLIFT averaged over a set of ``references`` (an array of shape (R, *input_shape), R ≥ 1, or
    one example),
    Captum's DeepLiftShap. ``internal_batch_size`` bounds the (example, reference) pairs computed at once, so
    memory stays bounded whatever the number of references (default: a fixed budget). With
    ``return_convergence_delta`` also returns Σφ − (f_t(x) − mean_r f_t(r)) per example."""
    net = _network(net)
    x = net._batch(inputs)
    n = x.shape[0]
    refs = _f32(references, "references")
    if refs.shape == net.input_shape:  # a single reference
        refs = refs[None]
    if refs.ndim >= 1 and refs.shape[0] == 0:
        raise SwiftAttrError("references: the reference set is empty", -2)
    refs = net._batch(refs, "references")
    t = _targets(net, target, n)
    r = _enum(rule, _ffi.DEEPLIFT_RULES, "rule")
    m = _enum(maxpool, _ffi.MAXPOOL_RULES, "maxpool")
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_deepshap(net._handle, fptr(x), n, fptr(refs), refs.shape[0], iptr(t), t.size, r, m,
                          int(bool(multiply_by_inputs)), _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if return_convergence_delta else out

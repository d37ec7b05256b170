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
    """    DeepLIFT contributions φ of ``inputs`` to output ``target``, relative to ``baselines``.

    Shrikumar, Greenside, Kundaje 2017, "Learning important features through propagating activation
    differences" (Captum's ``DeepLift``): multipliers m = Δy/Δx propagated back by the Rescale or RevealCancel
    rules, φ = m ⊙ (x − x⁰), with summation-to-delta Σφ = f_t(x) − f_t(x⁰).

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

    Token networks (an Embedding first) are attributed at the embedding output, summed over the embedding
    axis unless ``sum_embedding=False``; ``baselines`` are token ids or embedding vectors (None: zero vectors),
    as in :mod:`swiftattr.attribution`. Through an LSTM every gate's σ/tanh and tanh(c) take Rescale and
    each product ab splits by the Shapley rule Δ(ab) = b̄Δa + āΔb (ā = (a + a⁰)/2), so summation-to-delta
    stays exact; RevealCancel after an LSTM is an error.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32. Token networks: token ids (n, L).
    baselines : float or array_like, optional
        The reference x⁰: None (zeros, the default), a scalar, one example of the input shape (shared) or one
        per example, (n, *input_shape). Token networks: token ids or embedding vectors (None: zero vectors).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    rule : str, default "rescale"
        "rescale" (Captum's DeepLift), "revealcancel", or "genomics" (Rescale after convolutions, RevealCancel
        after dense layers, the authors' genomics setting).
    maxpool : str, default "crossmax"
        The max-pool rule, "crossmax" or "gradient" (above).
    multiply_by_inputs : bool, default True
        False returns the multipliers m instead of the contributions m·(x − x⁰), as Captum does.
    return_convergence_delta : bool, default False
        Also return, per example, delta = Σφ − (what φ sums to): Σφ − (f_t(x) − f_t(x⁰)), or Σφ − the centred
        logit difference after a Softmax; always from the contributions m·(x − x⁰), so only float32 rounding
        (about 1e-7 relative) remains.
    internal_batch_size : int, optional
        At most this many examples are propagated at once (bounds memory). Default None: the library's
        budget.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E).
    layer : str or int, optional
        Captum's LayerDeepLift, the contributions of that node's output (a module name or node index; see
        :func:`swiftattr.layers.layer_deeplift`). Default None: the inputs.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        The contributions (or multipliers); (n, L) or (n, L, E) for token networks; (n, *layer output shape)
        with ``layer``.
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for an unknown ``rule`` or ``maxpool`` (SA_ERR_UNKNOWN_ENUM); for RevealCancel after
        an LSTM; when ``baselines`` has another shape (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 4)), rng.normal(size=8)), sa.ReLU(),
    ...                      sa.Linear(rng.normal(size=(3, 8)))])
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi, delta = sa.deeplift(net, x, target=1, return_convergence_delta=True)
    >>> phi.shape, delta.shape
    ((5, 4), (5,))
    >>> f, f0 = net.forward(x)[:, 1], net.forward(np.zeros((1, 4)))[0, 1]
    >>> bool(np.allclose(phi.sum(axis=1), f - f0, atol=1e-4))   # summation-to-delta
    True
    >>> m = sa.deeplift(net, x, target=1, multiply_by_inputs=False)   # the multipliers
    >>> bool(np.allclose(m * x, phi, atol=1e-5))
    True
    """
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
    """    DeepSHAP, Captum's DeepLiftShap: DeepLIFT averaged over a set of references, φ = (1/R) Σ_r φ(x, r).

    Lundberg & Lee 2017, "A unified approach to interpreting model predictions" (DeepLIFT of Shrikumar et al.
    2017 with the references as a background distribution). What φ sums to: f_t(x) − mean_r f_t(r); after a
    final Softmax, the mean over references of the centred logit difference (see :func:`deeplift`).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32. Token networks: token ids (n, L).
    references : array_like, shape (R, *input_shape)
        The reference set, R ≥ 1 rows, or one example of the input shape. Token networks: token ids (R, L) or
        embedding vectors (R, L, E).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    rule : str, default "rescale"
        "rescale" (Captum's DeepLift), "revealcancel", or "genomics" (Rescale after convolutions, RevealCancel
        after dense layers, the authors' genomics setting).
    internal_batch_size : int, optional
        At most this many (example, reference) pairs are computed at once, so memory stays bounded whatever
        the number of references. Default None: a fixed budget.
    maxpool : str, default "crossmax"
        The max-pool rule, "crossmax" or "gradient" (as in :func:`deeplift`; ``"gradient"`` equals Captum's
        DeepLiftShap after a ReLU).
    multiply_by_inputs : bool, default True
        False returns the multipliers m instead of the contributions m·(x − x⁰), as Captum does.
    return_convergence_delta : bool, default False
        Also return, per example, delta = Σφ − (what φ sums to), from the contributions.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E).

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks.
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for an unknown ``rule`` or ``maxpool`` (SA_ERR_UNKNOWN_ENUM); for RevealCancel after
        an LSTM; when the reference set is empty (SA_ERR_INVALID_ARGUMENT) or ``references`` does not have the input
        shape (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 4)), rng.normal(size=8)), sa.ReLU(),
    ...                      sa.Linear(rng.normal(size=(3, 8)))])
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> refs = rng.normal(size=(10, 4)).astype(np.float32)
    >>> phi, delta = sa.deepshap(net, x, refs, target=0, return_convergence_delta=True)
    >>> phi.shape
    (5, 4)
    >>> f, fr = net.forward(x)[:, 0], net.forward(refs)[:, 0].mean()
    >>> bool(np.allclose(phi.sum(axis=1), f - fr, atol=1e-4))   # Σφ = f_t(x) − mean_r f_t(r)
    True
    >>> each = [sa.deeplift(net, x, r, target=0) for r in refs]   # the mean of DeepLIFT over the references
    >>> bool(np.allclose(np.mean(each, axis=0), phi, atol=1e-5))
    True
    """
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

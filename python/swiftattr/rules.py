"""Propagation rules: layer-wise relevance propagation (LRP), guided backpropagation and deconvolution, as
Captum's ``LRP``, ``GuidedBackprop`` and ``Deconvolution`` define them.

Inputs may be numpy arrays, array-likes or torch tensors; results are numpy arrays of the input's shape;
``net`` may be a LazyNetwork. Token networks (an Embedding first) are attributed at the embedding output,
summed over the embedding axis unless ``sum_embedding=False``.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import numpy as np

from . import _ffi
from ._args import SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, as_bool, as_choice, as_f32, as_float, as_int
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from ._progress import long_call
from .attribution import _at_embedding, _chunk, _network, _targets


def _node_rules(net, rule):
    """(preset code, per-node codes or None) for ``rule``: a preset name, or a dict {node index: rule name} /
    a list with one rule name (or None: the preset's) per node, over the epsilon preset."""
    if isinstance(rule, str):
        return as_choice(rule, _ffi.LRP_PRESETS, "rule"), None
    count = net.num_layers
    codes = np.full(count, _ffi.SA_LRP_DEFAULT, dtype=np.intc)
    if isinstance(rule, dict):
        items = rule.items()
    elif isinstance(rule, (list, tuple)):
        if len(rule) != count:
            raise SwiftAttrError(f"rule: a list needs one entry per node ({count}), got {len(rule)}", SA_ERR_SHAPE)
        items = enumerate(rule)
    else:
        raise SwiftAttrError(f"rule: expected a rule name ({', '.join(_ffi.LRP_PRESETS)}), a dict {{node: rule}} or a list "
                             f"of one rule per node, got {rule!r}")
    for k, name in items:
        k = as_int(k, "rule: node index")
        if not 0 <= k < count:
            raise SwiftAttrError(f"rule: node {k} does not exist (the model has nodes 0..{count - 1})", SA_ERR_OUT_OF_RANGE)
        if name is not None:
            codes[k] = as_choice(name, _ffi.LRP_NODE_RULES, f"rule[{k}]")
    return _ffi.SA_LRP_EPSILON, codes


def _per_node(net, value, name, default):
    """(the call's value, per-node float64 array or None) for ``value``: a number, or a dict {node: number} /
    a list of one number (or None) per node, over ``default``. Missing entries are NaN (the call's value)."""
    if isinstance(value, (dict, list, tuple)):
        count = net.num_layers
        per = np.full(count, np.nan)
        if isinstance(value, dict):
            items = value.items()
        else:
            if len(value) != count:
                raise SwiftAttrError(f"{name}: a list needs one entry per node ({count}), got {len(value)}", SA_ERR_SHAPE)
            items = enumerate(value)
        for k, v in items:
            k = as_int(k, f"{name}: node index")
            if not 0 <= k < count:
                raise SwiftAttrError(f"{name}: node {k} does not exist (the model has nodes 0..{count - 1})", SA_ERR_OUT_OF_RANGE)
            if v is not None:
                per[k] = as_float(v, f"{name}[{k}]")
        return default, per
    return as_float(value, name), None


def _shifted(rule):
    """A per-node ``rule``, ``epsilon`` or ``gamma`` for the network after the Embedding (node k becomes
    node k − 1)."""
    if isinstance(rule, dict):
        if any(as_int(k, "rule: node index") == 0 for k in rule):
            raise SwiftAttrError("rule: node 0 is the Embedding, which takes no rule")
        return {as_int(k, "rule: node index") - 1: v for k, v in rule.items()}
    if isinstance(rule, (list, tuple)) and rule:
        if rule[0] is not None:
            raise SwiftAttrError("rule: node 0 is the Embedding, which takes no rule (give None)")
        return list(rule[1:])
    return rule


def _bound(net, value, name):
    """A z^B bound: None, a scalar (every input element) or one value per input element."""
    if value is None:
        return None, 0
    b = as_f32(value, name)
    if b.ndim == 0 or b.size == 1:
        return np.ascontiguousarray(b.reshape(1)), 1
    if b.shape != net.input_shape and b.shape != (net.input_size,):
        raise SwiftAttrError(f"{name}: expected a scalar or an array of the input shape {net.input_shape}, got shape {b.shape}",
                             SA_ERR_SHAPE)
    return np.ascontiguousarray(b.reshape(-1)), b.size


@long_call
def lrp(net, inputs, target=None, rule="epsilon", epsilon: float = 1e-9, gamma: float = 0.25, alpha: float = 1.0,
        beta: float = 0.0, low=None, high=None, return_convergence_delta: bool = False,
        internal_batch_size: Optional[int] = None, sum_embedding: bool = True):
    """    Layer-wise relevance propagation of output ``target`` (Bach et al. 2015, "On pixel-wise explanations for
    non-linear classifier decisions by layer-wise relevance propagation"; Montavon et al. 2019, "Layer-wise
    relevance propagation: an overview"), as Captum's ``LRP``.

    Relevance starts at the target output, R = f_t(x), and is redistributed node by node back to the inputs;
    for a Linear or convolution under the ε-rule R_i = Σ_j a_i w_ij R_j / (z_j + ε·sign(z_j)), z_j = Σ_i a_i w_ij + b_j
    (sign(0) = +1).

    ``rule``: a preset for every Linear and convolution — "epsilon" (ε-rule, Captum's default, ε = 1e-9),
    "gamma" (W + γW⁺, the bias kept), "alpha_beta" (α − β = 1; α = 1, β = 0 is Captum's Alpha1_Beta0_Rule:
    positive weights, the bias kept) or "composite" (z^B for the input layer, γ for the other convolutions, ε
    for the other Linear layers) — or rules per node index, a dict ``{node: name}`` or a list with one name (or
    None) per node, over the epsilon preset; node rules: "epsilon", "gamma", "alpha_beta", "zb" (only for a
    Linear or convolution reading the input, with ``low`` ≤ x ≤ ``high``: scalars or arrays of the input
    shape) and "identity" (BatchNorm). BatchNorm, pooling and Add take the ε-rule on their own map (Captum's
    defaults); activations, Dropout, Flatten and Reshape pass relevance through; Concat splits it; an LSTM is
    an error. A network ending in Softmax starts at the target logit (Captum refuses a Softmax). γ, α-β and
    z^B stabilise their denominators with 1e-9, as Captum; a denominator that is exactly 0 (``epsilon=0`` at a
    dead unit) passes nothing. Conv1d and the 1-D pools (which Captum refuses) take the rules of the 2-D kinds;
    a value read by several nodes sums the relevance its readers give it.

    With zero biases and ε → 0 every rule conserves relevance, Σ R = f_t(x).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32. Token networks: token ids (n, L).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    rule : str, dict or list, default "epsilon"
        A preset name ("epsilon", "gamma", "alpha_beta", "composite"), or per-node rules over the epsilon
        preset: ``{node index: rule name}`` or a list of one rule name (or None) per node (see above).
    epsilon : float, dict or list, default 1e-9
        ε of the ε-rule: a number for every node taking the rule, or per node (a dict ``{node: value}`` or a
        list with one value or None per node, over the default), as Captum's ``EpsilonRule(ε)`` per module.
    gamma : float, dict or list, default 0.25
        γ of the γ-rule, a number or per node as ``epsilon`` (Captum's ``GammaRule(γ)``).
    alpha : float, default 1.0
        α of the α-β rule (α − β = 1).
    beta : float, default 0.0
        β of the α-β rule.
    low, high : float or array_like of the input shape, optional
        The input bounds of the z^B rule (``"zb"``, the "composite" preset's input layer): give both or
        neither. Default None.
    return_convergence_delta : bool, default False
        Also return Captum's delta, f_t(x) − Σ R, per example.
    internal_batch_size : int, optional
        At most this many examples are propagated at once (bounds memory). Default None: the library's
        budget.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E).

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        The input relevances ((n, L) or (n, L, E) for token networks).
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(relevance, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for an unknown rule name (SA_ERR_UNKNOWN_ENUM); for a per-node list of the wrong
        length (SA_ERR_SHAPE) or a node that does not exist (SA_ERR_OUT_OF_RANGE); for only one of ``low`` and
        ``high``, or bounds of the wrong shape (SA_ERR_SHAPE); for a "zb" node that does not read the input, or an
        LSTM.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> R, delta = sa.lrp(net, x, target=2, return_convergence_delta=True)
    >>> R.shape
    (5, 4)
    >>> bool(np.allclose(R.sum(axis=1), net.forward(x)[:, 2], atol=1e-4))   # conservation: zero biases
    True
    >>> bool(np.abs(delta).max() < 1e-4)
    True
    >>> R_gamma = sa.lrp(net, x, target=2, rule={0: "gamma", 2: "epsilon"}, gamma={0: 0.5})   # per node
    >>> R_gamma.shape
    (5, 4)
    """
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding)
    if moved:
        rest, xe, _, finish = moved
        return finish(lrp(rest, xe, target, _shifted(rule), _shifted(epsilon), _shifted(gamma), alpha, beta, low, high,
                          return_convergence_delta, internal_batch_size))
    n = x.shape[0]
    t = _targets(net, target, n)
    preset, codes = _node_rules(net, rule)
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    o = lib.sa_lrp_default_options()
    o.rule = preset
    o.epsilon, node_epsilon = _per_node(net, epsilon, "epsilon", 1e-9)
    o.gamma, node_gamma = _per_node(net, gamma, "gamma", 0.25)
    for array, field, pointer in ((codes, "node_rules", ctypes.POINTER(ctypes.c_int)), (node_epsilon, "node_epsilon", _ffi.f64p),
                                  (node_gamma, "node_gamma", _ffi.f64p)):
        if array is not None:  # kept alive by these locals until the call returns
            setattr(o, field, array.ctypes.data_as(pointer))
            o.n_nodes = net.num_layers
    o.alpha = as_float(alpha, "alpha")
    o.beta = as_float(beta, "beta")
    lo, nlo = _bound(net, low, "low")
    hi, nhi = _bound(net, high, "high")
    if (lo is None) != (hi is None):
        raise SwiftAttrError("low and high: give both bounds or neither")
    if lo is not None:
        o.low, o.n_low, o.high, o.n_high = fptr(lo), nlo, fptr(hi), nhi
    o.internal_batch_size = _chunk(internal_batch_size)
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_lrp(net._handle, fptr(x), n, iptr(t), t.size, ctypes.byref(o), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out


def _modified_relu(function, net, inputs, target, internal_batch_size, sum_embedding):
    net, x = _network(net, inputs)
    moved = _at_embedding(net, x, sum_embedding)
    if moved:
        rest, xe, _, finish = moved
        return finish(_modified_relu(function, rest, xe, target, internal_batch_size, True))
    t = _targets(net, target, x.shape[0])
    out = np.empty_like(x)
    check(function(net._handle, fptr(x), x.shape[0], iptr(t), t.size, _chunk(internal_batch_size), fptr(out)))
    return out


@long_call
def guided_backprop(net, inputs, target=None, internal_batch_size: Optional[int] = None, sum_embedding: bool = True):
    """    Guided backpropagation (Springenberg et al. 2015, "Striving for simplicity: the all convolutional net"),
    Captum's ``GuidedBackprop``.

    The gradient of the target output with every ReLU's backward replaced by max(g · 1[x > 0], 0) (only
    positive gradients through active units); every other layer takes its ordinary gradient.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32. Token networks: token ids (n, L).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    internal_batch_size : int, optional
        At most this many examples are propagated at once (bounds memory). Default None: the library's
        budget.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E).

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> gb = sa.guided_backprop(net, x, target=0)
    >>> gb.shape
    (5, 4)
    >>> z = x @ W1.T                                       # the ReLU's input
    >>> bool(np.allclose(gb, np.maximum(W2[0] * (z > 0), 0) @ W1, atol=1e-5))
    True
    """
    return _modified_relu(lib.sa_guided_backprop, net, inputs, target, internal_batch_size, sum_embedding)


@long_call
def deconvolution(net, inputs, target=None, internal_batch_size: Optional[int] = None, sum_embedding: bool = True):
    """    Deconvolution (Zeiler & Fergus 2014, "Visualizing and understanding convolutional networks"), Captum's
    ``Deconvolution``.

    The gradient of the target output with every ReLU's backward replaced by max(g, 0), ignoring the forward
    mask; every other layer takes its ordinary gradient.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32. Token networks: token ids (n, L).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    internal_batch_size : int, optional
        At most this many examples are propagated at once (bounds memory). Default None: the library's
        budget.
    sum_embedding : bool, default True
        Token networks only: sum the result over the embedding axis, (n, L); False gives (n, L, E).

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
        (n, L) or (n, L, E) for token networks.

    Raises
    ------
    SwiftAttrError
        When ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is missing for a
        model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> d = sa.deconvolution(net, x, target=0)
    >>> d.shape
    (5, 4)
    >>> bool(np.allclose(d, np.maximum(W2[0], 0) @ W1, atol=1e-5))   # no forward mask: the same for every x
    True
    """
    return _modified_relu(lib.sa_deconvolution, net, inputs, target, internal_batch_size, sum_embedding)

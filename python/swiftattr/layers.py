"""Layer and neuron attributions (Captum's LayerGradientXActivation, LayerIntegratedGradients, LayerDeepLift,
LayerConductance, LayerGradCam, NeuronIntegratedGradients) and NoiseTunnel over any method.

``layer`` names one node of the network, and the attributions belong to its output (Captum's
``attribute_to_layer_input=False``; attributing to a layer's input is attributing to the output of the node
before it). For a network from :func:`~swiftattr.from_torch` it is a module's name as in
``module.named_modules()`` (``"features.3"``; a container names the value its forward returns); for any network
it may be the node index (0 … ``net.num_layers - 1``). A module called more than once (a ReLU reused in a
block) is ambiguous: pass the node index of the call you mean (the error lists them).

The nodes after the layer see its output replaced, as a Captum hook replaces it, and every other value they
read (a skip connection around the layer) at the actual input. Results are numpy arrays of shape
(n, *layer output shape). Baselines are inputs (None: zeros; one example, shared; or one per example) run
forward to the layer; for token networks they are token ids (None: id 0, as Captum's zero tensor).
"""
from __future__ import annotations

import ctypes
import inspect
from typing import Optional

import numpy as np

from . import _ffi
from ._args import (SA_ERR_INVALID_ARGUMENT, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, as_bool, as_choice, as_f32, as_float,
                    as_int, from_torch_tensor)
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from ._progress import long_call
from .attribution import _baselines, _chunk, _network, _seed, _targets


def layer_index(net, layer) -> int:
    """    The node index ``layer`` names, checked.

    Parameters
    ----------
    net : Network
        The model.
    layer : str or int
        A module name from ``named_modules()`` (only a :func:`~swiftattr.from_torch` network has them) or a
        node index, 0 … ``net.num_layers - 1``.

    Returns
    -------
    int
        The node index.

    Raises
    ------
    SwiftAttrError
        For an unknown name, or a module called more than once (SA_ERR_INVALID_ARGUMENT: the message lists its node
        indices); for an index out of range (SA_ERR_OUT_OF_RANGE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.ones((2, 3))), sa.ReLU()])
    >>> sa.layers.layer_index(net, 1)
    1
    >>> try:
    ...     sa.layers.layer_index(net, 5)
    ... except sa.SwiftAttrError as e:
    ...     print(e.code == sa.layers.SA_ERR_OUT_OF_RANGE)
    True
    """
    if isinstance(layer, str):
        table = getattr(net, "node_names", None) or {}
        if layer not in table:
            known = ", ".join(repr(k) for k in list(table)[:12]) + (", …" if len(table) > 12 else "")
            where = f"the module names are {known}" if table else \
                "this network has no module names (only a from_torch network has them): pass the node index"
            raise SwiftAttrError(f"layer: unknown layer name {layer!r}; {where}", SA_ERR_INVALID_ARGUMENT)
        value = table[layer]
        if isinstance(value, tuple):
            raise SwiftAttrError(f"layer: module {layer!r} is called {len(value)} times (nodes "
                                 f"{', '.join(str(v - 1) for v in value)}); pass the node index of the call you mean",
                                 SA_ERR_INVALID_ARGUMENT)
        return value - 1
    index = as_int(layer, "layer")
    if not 0 <= index < net.num_layers:  # checked here too: the output buffer's size depends on it
        raise SwiftAttrError(f"layer = {index} is out of range: the model has {net.num_layers} nodes "
                             f"(0..<{net.num_layers})", SA_ERR_OUT_OF_RANGE)
    return index


def _to_layer_output(flag, name: str = "attribute_to_layer_input") -> None:
    """Captum's ``attribute_to_layer_input``: only False (the layer's output) is supported."""
    if as_bool(flag, name):
        raise SwiftAttrError(f"{name}=True is not supported: attributions belong to the layer's output; for its "
                             "input pass the node that computes it (the layer's node index − 1 in a chain)",
                             SA_ERR_INVALID_ARGUMENT)


def _value_shape(net, value: int) -> tuple:
    shape, ndim = (ctypes.c_int64 * 3)(), ctypes.c_int64()
    check(lib.sa_model_shape_at(net._handle, value, shape, ctypes.byref(ndim)))
    return tuple(shape[i] for i in range(ndim.value))


def _setup(net, inputs, layer):
    net, x = _network(net, inputs)
    index = layer_index(net, layer)
    return net, x, index, (x.shape[0],) + _value_shape(net, index + 1)


@long_call
def layer_saliency(net, inputs, layer, target=None, abs: bool = True, internal_batch_size: Optional[int] = None,
                   attribute_to_layer_input: bool = False):
    """    Layer saliency: ∂f_t/∂a at the layer's output a, its absolute value when ``abs``.

    :func:`swiftattr.saliency` with ``layer=`` (Simonyan et al. 2014, at a hidden layer).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    abs : bool, default True
        Return the absolute value of the gradient.
    internal_batch_size : int, optional
        At most this many examples are evaluated at once (bounds memory). Default None: the library's budget.
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *layer output shape)

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # nodes 0, 1, 2; no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> g = sa.layer_saliency(net, x, 1, target=0, abs=False)   # at the ReLU's output: the gradient is W2[0]
    >>> g.shape
    (5, 8)
    >>> bool(np.allclose(g, W2[0]))
    True
    """
    _to_layer_output(attribute_to_layer_input)
    net, x, index, shape = _setup(net, inputs, layer)
    t = _targets(net, target, x.shape[0])
    out = np.empty(shape, dtype=np.float32)
    check(lib.sa_layer_saliency(net._handle, fptr(x), x.shape[0], iptr(t), t.size, index, int(as_bool(abs, "abs")),
                                _chunk(internal_batch_size), fptr(out)))
    return out


@long_call
def layer_gradient_x_activation(net, inputs, layer, target=None, internal_batch_size: Optional[int] = None,
                                attribute_to_layer_input: bool = False):
    """    Captum's LayerGradientXActivation: a ⊙ ∂f_t/∂a at the layer's output a.

    :func:`swiftattr.input_x_gradient` with ``layer=``.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    internal_batch_size : int, optional
        At most this many examples are evaluated at once (bounds memory). Default None: the library's budget.
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *layer output shape)

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # nodes 0, 1, 2; no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi = sa.layer_gradient_x_activation(net, x, 1, target=2)
    >>> phi.shape
    (5, 8)
    >>> bool(np.allclose(phi.sum(axis=1), net.forward(x)[:, 2], atol=1e-5))   # linear after the layer, no bias
    True
    """
    _to_layer_output(attribute_to_layer_input)
    net, x, index, shape = _setup(net, inputs, layer)
    t = _targets(net, target, x.shape[0])
    out = np.empty(shape, dtype=np.float32)
    check(lib.sa_layer_gradient_x_activation(net._handle, fptr(x), x.shape[0], iptr(t), t.size, index,
                                             _chunk(internal_batch_size), fptr(out)))
    return out


def _path_call(fn, net, inputs, layer, baselines, target, n_steps, method, internal_batch_size, return_convergence_delta,
               attribute_to_layer_input=False):
    _to_layer_output(attribute_to_layer_input)
    net, x, index, shape = _setup(net, inputs, layer)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    code = as_choice(method, _ffi.IG_METHODS, "method")
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    out = np.empty(shape, dtype=np.float32)
    delta = np.empty(n, dtype=np.float32)
    check(fn(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, index, as_int(n_steps, "n_steps"), code,
             _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out


@long_call
def layer_integrated_gradients(net, inputs, layer, baselines=None, target=None, n_steps: int = 50,
                               method: str = "gausslegendre", internal_batch_size: Optional[int] = None,
                               return_convergence_delta: bool = False, attribute_to_layer_input: bool = False):
    """    Captum's LayerIntegratedGradients: Integrated Gradients (Sundararajan et al. 2017) at a layer's output.

    The path runs between the layer's activations at the baselines and at the inputs,
    φ = (a(x) − a(x')) ⊙ ∫₀¹ ∂f_t/∂a(a(x') + α(a(x) − a(x'))) dα, the nodes after the layer evaluated with the
    skip values of x.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    baselines : float or array_like, optional
        Inputs run forward to the layer: None (zeros, the default), a scalar, one example of the input shape
        (shared) or one per example. Token networks: token ids (None: id 0, as Captum's zero tensor).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    n_steps : int, default 50
        Number of quadrature points on the path.
    method : str, default "gausslegendre"
        "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
    internal_batch_size : int, optional
        At most this many path points are evaluated at once (bounds memory). Default None: the library's budget.
    return_convergence_delta : bool, default False
        Also return the delta Σφ − (f_t(x) − f_t(x')) per example (zero up to quadrature when no skip
        connection passes the layer).
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *layer output shape)
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT); for an unknown
        ``method`` (SA_ERR_UNKNOWN_ENUM); when ``baselines`` has another shape (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # nodes 0, 1, 2; no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi, delta = sa.layer_integrated_gradients(net, x, 0, target=1, return_convergence_delta=True)
    >>> phi.shape, delta.shape
    ((5, 8), (5,))
    >>> bool(np.abs(delta).max() < 1e-2 * np.abs(net.forward(x)[:, 1]).max())
    True
    """
    return _path_call(lib.sa_layer_integrated_gradients, net, inputs, layer, baselines, target, n_steps, method,
                      internal_batch_size, return_convergence_delta, attribute_to_layer_input)


@long_call
def layer_conductance(net, inputs, layer, baselines=None, target=None, n_steps: int = 50,
                      method: str = "gausslegendre", internal_batch_size: Optional[int] = None,
                      return_convergence_delta: bool = False, attribute_to_layer_input: bool = False):
    """    Captum's LayerConductance (Dhamdhere, Sundararajan, Yan 2019, "How important is a neuron?").

    On the input path x' + α(x − x') at the ``n_steps + 1`` nodes α_0 < … < α_n of ``method``,
    φ = Σ_k ∂f_t/∂a(α_k) ⊙ (a(α_{k+1}) − a(α_k)) at the layer's output a.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    baselines : float or array_like, optional
        Inputs run forward to the layer: None (zeros, the default), a scalar, one example of the input shape
        (shared) or one per example. Token networks: token ids (None: id 0, as Captum's zero tensor).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    n_steps : int, default 50
        Number of quadrature points on the path.
    method : str, default "gausslegendre"
        "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
    internal_batch_size : int, optional
        At most this many path points are evaluated at once (bounds memory). Default None: the library's budget.
    return_convergence_delta : bool, default False
        Also return the delta Σφ − (f_t(x) − f_t(x')) per example.
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *layer output shape)
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT); for an unknown
        ``method`` (SA_ERR_UNKNOWN_ENUM); when ``baselines`` has another shape (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # nodes 0, 1, 2; no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi, delta = sa.layer_conductance(net, x, 1, target=0, return_convergence_delta=True)
    >>> phi.shape
    (5, 8)
    >>> bool(np.abs(delta).max() < 1e-2)   # Gauss–Legendre: a small quadrature error
    True
    >>> _, delta = sa.layer_conductance(net, x, 1, target=0, method="riemann_trapezoid", return_convergence_delta=True)
    >>> bool(np.abs(delta).max() < 1e-5)   # nodes from α = 0 to 1, linear after the layer: the sum telescopes
    True
    """
    return _path_call(lib.sa_layer_conductance, net, inputs, layer, baselines, target, n_steps, method,
                      internal_batch_size, return_convergence_delta, attribute_to_layer_input)


@long_call
def layer_deeplift(net, inputs, layer, baselines=None, target=None, rule: str = "rescale", maxpool: str = "crossmax",
                   multiply_by_inputs: bool = True, return_convergence_delta: bool = False,
                   internal_batch_size: Optional[int] = None, attribute_to_layer_input: bool = False):
    """    Captum's LayerDeepLift: DeepLIFT (Shrikumar et al. 2017) contributions of a layer's output.

    Multipliers at the layer's output from the rules of the nodes after it (``rule`` and ``maxpool`` as
    :func:`swiftattr.deeplift`), times a(x) − a(x⁰) (or alone, ``multiply_by_inputs=False``). Captum's
    LayerDeepLift routes a max-pool after a ReLU by the gradient (``maxpool="gradient"``), except a pool that
    reads the attributed layer itself, where its cross-max rule takes effect (``maxpool="crossmax"``);
    measured on a CNN, each choice equals Captum to 2e-7 in its case.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    baselines : float or array_like, optional
        Inputs run forward to the layer: None (zeros, the default), a scalar, one example of the input shape
        (shared) or one per example. Token networks: token ids (None: id 0, as Captum's zero tensor).
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    rule : str, default "rescale"
        "rescale", "revealcancel" or "genomics" (see :func:`swiftattr.deeplift`).
    maxpool : str, default "crossmax"
        "crossmax" or "gradient" (see above and :func:`swiftattr.deeplift`).
    multiply_by_inputs : bool, default True
        False returns the multipliers instead of the contributions.
    return_convergence_delta : bool, default False
        Also return the delta Σφ − (f_t(x) − f_t(x⁰)) per example.
    internal_batch_size : int, optional
        At most this many examples are evaluated at once (bounds memory). Default None: the library's budget.
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *layer output shape)
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT); for an unknown
        ``rule`` or ``maxpool`` (SA_ERR_UNKNOWN_ENUM); when ``baselines`` has another shape (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # nodes 0, 1, 2; no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi, delta = sa.layer_deeplift(net, x, 0, target=2, return_convergence_delta=True)
    >>> phi.shape
    (5, 8)
    >>> bool(np.abs(delta).max() < 1e-4)   # summation-to-delta
    True
    """
    _to_layer_output(attribute_to_layer_input)
    net, x, index, shape = _setup(net, inputs, layer)
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    t = _targets(net, target, n)
    r = as_choice(rule, _ffi.DEEPLIFT_RULES, "rule")
    m = as_choice(maxpool, _ffi.MAXPOOL_RULES, "maxpool")
    by_inputs = as_bool(multiply_by_inputs, "multiply_by_inputs")
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    out = np.empty(shape, dtype=np.float32)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_layer_deeplift(net._handle, fptr(x), n, fptr(b), nb, iptr(t), t.size, index, r, m, int(by_inputs),
                                _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out


@long_call
def grad_cam(net, inputs, layer, target=None, relu_attributions: bool = True, upsample=True,
             interpolate_mode: str = "nearest", internal_batch_size: Optional[int] = None,
             attribute_to_layer_input: bool = False, attr_dim_summation: bool = True):
    """    GradCAM (Selvaraju et al. 2017, "Grad-CAM: visual explanations from deep networks via gradient-based
    localization"), Captum's LayerGradCam.

    Σ_c w_c a_c over the channels of the layer's output a, w_c the mean of ∂f_t/∂a_c over its spatial axes;
    ReLU'd when ``relu_attributions`` (Captum's default is False). Shape (n, 1, *spatial) of the layer, or,
    with ``upsample`` (the default), of the input: resized as Captum's
    ``LayerAttribution.interpolate(attr, x.shape[2:], interpolate_mode)`` (torch's F.interpolate with a size),
    align_corners=False. A layer without spatial axes (a Linear's output) gives one value per example, (n, 1).
    ``attr_dim_summation=False`` (Captum's flag) keeps the channels: w_c a_c per channel, shape (n, C, *spatial)
    of the layer (ReLU'd per element; these maps are not upsampled).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    relu_attributions : bool, default True
        Apply a ReLU to the map (Captum's default is False).
    upsample : bool or str, default True
        Resize the map to the input's spatial shape with ``interpolate_mode``; may also be the mode's name.
        False keeps the layer's spatial shape.
    interpolate_mode : str, default "nearest"
        "nearest" (source index ⌊dst·in/out⌋) or "bilinear" ("linear" for 1-D).
    internal_batch_size : int, optional
        At most this many examples are evaluated at once (bounds memory). Default None: the library's budget.
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.
    attr_dim_summation : bool, default True
        Captum's flag: sum w_c a_c over the channels (axis 1). False: one map per channel, (n, *layer shape),
        the summands of the default's map; needs ``upsample=False``.

    Returns
    -------
    numpy.ndarray of float32, shape (n, 1, *spatial)
        The input's spatial shape with ``upsample``, else the layer's; (n, 1) for a layer without spatial
        axes; (n, *layer shape) with ``attr_dim_summation=False``.

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT); for an unknown
        ``upsample`` or ``interpolate_mode`` (SA_ERR_UNKNOWN_ENUM); for ``attr_dim_summation=False`` with an
        ``upsample`` other than False (SA_ERR_INVALID_ARGUMENT).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(3, 2)).astype(np.float32)
    >>> cnn = sa.Sequential([sa.Conv2d(rng.normal(size=(2, 1, 3, 3))), sa.ReLU(), sa.GlobalAvgPool(), sa.Linear(W)],
    ...                     input_shape=(1, 6, 6))
    >>> x = rng.normal(size=(2, 1, 6, 6)).astype(np.float32)
    >>> sa.grad_cam(cnn, x, 1, target=0).shape                # upsampled to the 6×6 input
    (2, 1, 6, 6)
    >>> cam = sa.grad_cam(cnn, x, 1, target=0, relu_attributions=False, upsample=False)
    >>> cam.shape                                              # the ReLU's 4×4 map
    (2, 1, 4, 4)
    >>> bool(np.allclose(cam.sum(axis=(1, 2, 3)), cnn.forward(x)[:, 0], atol=1e-5))   # pool then Linear, no bias
    True
    >>> per = sa.grad_cam(cnn, x, 1, target=0, relu_attributions=False, upsample=False, attr_dim_summation=False)
    >>> per.shape, bool(np.allclose(per.sum(axis=1, keepdims=True), cam, atol=1e-5))   # the channels' summands
    ((2, 2, 4, 4), True)
    """
    _to_layer_output(attribute_to_layer_input)
    if not as_bool(attr_dim_summation, "attr_dim_summation"):
        return _grad_cam_per_channel(net, inputs, layer, target, relu_attributions, upsample, internal_batch_size)
    net, x, index, _ = _setup(net, inputs, layer)
    if isinstance(upsample, str):
        code = as_choice(upsample, _ffi.UPSAMPLE_MODES, "upsample")
    elif as_bool(upsample, "upsample"):
        code = as_choice(interpolate_mode, _ffi.UPSAMPLE_MODES, "interpolate_mode")
    else:
        code = _ffi.SA_UPSAMPLE_NONE
    shape, ndim = (ctypes.c_int64 * 3)(), ctypes.c_int64()
    check(lib.sa_grad_cam_shape(net._handle, index, code, shape, ctypes.byref(ndim)))
    t = _targets(net, target, x.shape[0])
    out = np.empty((x.shape[0],) + tuple(shape[i] for i in range(ndim.value)), dtype=np.float32)
    check(lib.sa_grad_cam(net._handle, fptr(x), x.shape[0], iptr(t), t.size, index,
                          int(as_bool(relu_attributions, "relu_attributions")), code, _chunk(internal_batch_size), fptr(out)))
    return out


def _grad_cam_per_channel(net, inputs, layer, target, relu_attributions, upsample, internal_batch_size):
    """Captum's LayerGradCam with attr_dim_summation=False: w_c a_c per channel, w_c the spatial mean of the layer
    gradient (:func:`layer_saliency` without abs), a the layer's output; ReLU'd per element when asked."""
    if isinstance(upsample, str) or as_bool(upsample, "upsample"):
        raise SwiftAttrError(f"upsample={upsample!r}: with attr_dim_summation=False the per-channel maps stay at the "
                             "layer's resolution (as Captum's); pass upsample=False", SA_ERR_INVALID_ARGUMENT)
    relu = as_bool(relu_attributions, "relu_attributions")
    net, x, index, shape = _setup(net, inputs, layer)
    g = layer_saliency(net, x, index, target, abs=False, internal_batch_size=internal_batch_size)
    a = net.activations(x, index + 1).reshape(shape)
    spatial = tuple(range(2, g.ndim))
    w = g.mean(axis=spatial, keepdims=True, dtype=np.float32) if spatial else g
    out = (w * a).astype(np.float32, copy=False)
    return np.maximum(out, 0, out=out) if relu else out


@long_call
def guided_grad_cam(net, inputs, layer, target=None, interpolate_mode: str = "nearest",
                    internal_batch_size: Optional[int] = None, attribute_to_layer_input: bool = False):
    """    Guided GradCAM (Selvaraju et al. 2017), Captum's GuidedGradCam.

    Guided backpropagation (:func:`swiftattr.guided_backprop`) times the ReLU'd GradCAM of ``layer`` upsampled
    to the input, broadcast over the input's channels. Needs an image or signal input (n, C, *spatial) and a
    layer with the same number of spatial axes.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    target : int or array_like of int, shape (n,), optional
        The output explained: one class index for every example, or one per example. Default None, allowed
        only for a model with one output.
    interpolate_mode : str, default "nearest"
        "nearest" or "bilinear", the upsampling of the GradCAM map.
    internal_batch_size : int, optional
        At most this many examples are evaluated at once (bounds memory). Default None: the library's budget.
    attribute_to_layer_input : bool, default False
        Captum's flag; only False (the layer's output) is supported: for a layer's input pass the node that
        computes it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, C, *spatial)
        The shape of ``inputs``.

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node (SA_ERR_INVALID_ARGUMENT for an unknown or ambiguous name, SA_ERR_OUT_OF_RANGE
        for an index); when ``inputs`` does not have the network's input shape (SA_ERR_SHAPE); when ``target`` is
        missing for a model with several outputs, has neither 1 nor n entries (SA_ERR_SHAPE) or is out of range
        (SA_ERR_OUT_OF_RANGE); for ``attribute_to_layer_input=True`` (SA_ERR_INVALID_ARGUMENT); for an input without
        channel and spatial axes, or a layer whose GradCAM does not upsample to the input's spatial shape
        (SA_ERR_SHAPE).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(3, 2)).astype(np.float32)
    >>> cnn = sa.Sequential([sa.Conv2d(rng.normal(size=(2, 1, 3, 3))), sa.ReLU(), sa.GlobalAvgPool(), sa.Linear(W)],
    ...                     input_shape=(1, 6, 6))
    >>> x = rng.normal(size=(2, 1, 6, 6)).astype(np.float32)
    >>> ggc = sa.guided_grad_cam(cnn, x, 1, target=0)
    >>> ggc.shape
    (2, 1, 6, 6)
    >>> cam = sa.grad_cam(cnn, x, 1, target=0)
    >>> bool(np.allclose(ggc, sa.guided_backprop(cnn, x, target=0) * cam))
    True
    """
    from .rules import guided_backprop

    net, x = _network(net, inputs)
    if len(net.input_shape) < 2:
        raise SwiftAttrError(f"inputs: Guided GradCAM needs an image or signal input (C, *spatial), the model's is "
                             f"{net.input_shape}", SA_ERR_SHAPE)
    cam = grad_cam(net, x, layer, target, relu_attributions=True, upsample=True, interpolate_mode=interpolate_mode,
                   internal_batch_size=internal_batch_size, attribute_to_layer_input=attribute_to_layer_input)
    if cam.shape[2:] != x.shape[2:]:
        raise SwiftAttrError(f"layer: its GradCAM has shape {cam.shape[1:]}, which does not upsample to the input's "
                             f"spatial shape {x.shape[2:]} (pick a layer with spatial axes)", SA_ERR_SHAPE)
    return guided_backprop(net, x, target) * cam


@long_call
def neuron_integrated_gradients(net, inputs, layer, neuron, baselines=None, n_steps: int = 50,
                                method: str = "gausslegendre", internal_batch_size: Optional[int] = None,
                                return_convergence_delta: bool = False, attribute_to_neuron_input: bool = False):
    """    Captum's NeuronIntegratedGradients: Integrated Gradients (Sundararajan et al. 2017) of one element of a
    layer's output with respect to the inputs.

    φ = (x − x') ⊙ ∫₀¹ ∇a_k(x' + α(x − x')) dα for the neuron a_k of the layer's output.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples (numpy, array-like or torch tensor), read as float32.
    layer : str or int
        The node whose output is attributed: a module name from ``named_modules()`` (a
        :func:`~swiftattr.from_torch` network) or a node index, 0 … ``net.num_layers - 1``.
    neuron : int or tuple of int
        Captum's ``neuron_selector``: a flat index into one example's layer output, or a tuple of indices into
        its shape.
    baselines : float or array_like, optional
        The baseline x': None (zeros, the default), a scalar, one example (shared) or one per example.
    n_steps : int, default 50
        Number of quadrature points on the path.
    method : str, default "gausslegendre"
        "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
    internal_batch_size : int, optional
        At most this many path points are evaluated at once (bounds memory). Default None: the library's budget.
    return_convergence_delta : bool, default False
        Also return Σφ minus the neuron's difference a_k(x) − a_k(x') per example.
    attribute_to_neuron_input : bool, default False
        Captum's flag; only False is supported.

    Returns
    -------
    numpy.ndarray of float32, shape (n, *input_shape)
    delta : numpy.ndarray of float32, shape (n,)
        Only with ``return_convergence_delta``: ``(attributions, delta)``.

    Raises
    ------
    SwiftAttrError
        When ``layer`` names no node; when ``neuron`` is out of range for the layer's output (SA_ERR_OUT_OF_RANGE)
        or a tuple of the wrong length (SA_ERR_SHAPE); when ``inputs`` or ``baselines`` have the wrong shape
        (SA_ERR_SHAPE); for an unknown ``method`` (SA_ERR_UNKNOWN_ENUM); for ``attribute_to_neuron_input=True``
        (SA_ERR_INVALID_ARGUMENT).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.ReLU(), sa.Linear(W2)])   # nodes 0, 1, 2; no biases
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> phi = sa.neuron_integrated_gradients(net, x, 0, neuron=3)   # unit 3 of the first Linear: W1[3]·x
    >>> phi.shape
    (5, 4)
    >>> bool(np.allclose(phi, x * W1[3], atol=1e-5))
    True
    """
    _to_layer_output(attribute_to_neuron_input, "attribute_to_neuron_input")
    net, x, index, shape = _setup(net, inputs, layer)
    per_example = shape[1:]
    if isinstance(neuron, tuple):
        if len(neuron) != len(per_example):
            raise SwiftAttrError(f"neuron: expected {len(per_example)} indices into the layer's output shape "
                                 f"{per_example}, got {neuron!r}", SA_ERR_SHAPE)
        idx = tuple(as_int(v, f"neuron[{k}]") for k, v in enumerate(neuron))
        if any(not 0 <= v < s for v, s in zip(idx, per_example)):
            raise SwiftAttrError(f"neuron = {neuron!r} is out of range for the layer's output shape {per_example}",
                                 SA_ERR_OUT_OF_RANGE)
        flat = int(np.ravel_multi_index(idx, per_example))
    else:
        flat = as_int(neuron, "neuron")
    n = x.shape[0]
    b, nb = _baselines(net, baselines, n)
    code = as_choice(method, _ffi.IG_METHODS, "method")
    with_delta = as_bool(return_convergence_delta, "return_convergence_delta")
    out = np.empty_like(x)
    delta = np.empty(n, dtype=np.float32)
    check(lib.sa_neuron_integrated_gradients(net._handle, fptr(x), n, fptr(b), nb, index, flat, as_int(n_steps, "n_steps"),
                                             code, _chunk(internal_batch_size), fptr(out), fptr(delta)))
    return (out, delta) if with_delta else out


# -- NoiseTunnel -------------------------------------------------------------------------------------------

def _method(method):
    if isinstance(method, str):
        import importlib
        fn = getattr(importlib.import_module(__package__), method, None)
        if not callable(fn):
            raise SwiftAttrError(f"method: unknown attribution method {method!r}; pass a swiftattr function "
                                 "(e.g. sa.integrated_gradients) or its name", _ffi.SA_ERR_UNKNOWN_ENUM)
        return fn
    if not callable(method):
        raise SwiftAttrError(f"method: expected an attribution function or its name, got {method!r}")
    return method


def _per_example(value, n: int, ndim: Optional[int] = None) -> bool:
    """True when ``value`` is an array with one entry per example (its first axis n, and ``ndim`` axes)."""
    if value is None or isinstance(value, (str, bytes)) or np.isscalar(value):
        return False
    try:
        a = np.asarray(from_torch_tensor(value))
    except (TypeError, ValueError):
        return False
    return a.ndim >= 1 and a.shape[0] == n and n > 1 and (ndim is None or a.ndim == ndim)


@long_call
def noise_tunnel(method, net, inputs, nt_type: str = "smoothgrad", nt_samples: int = 5, stdevs: float = 1.0,
                 seed: Optional[int] = None, draw_baseline_from_distrib: bool = False,
                 nt_samples_batch_size: Optional[int] = None, first_example: int = 0, noise=None, **method_args):
    """    Captum's NoiseTunnel (SmoothGrad, Smilkov et al. 2017; VarGrad, Adebayo et al. 2018) over any attribution
    method.

    Each example gets ``nt_samples`` noisy copies x + N(0, stdevs²) (row i·S + s, as Captum's
    repeat_interleave), the method runs on the copies in one call per block of examples (per-example
    ``target``, ``baselines`` and ``feature_mask`` are repeated for the copies), and the copies' attributions
    are aggregated per example: ``nt_type`` "smoothgrad" (mean), "smoothgrad_sq" (mean of squares) or "vargrad"
    (E[a²] − E[a]², as Captum). The noise of example i, sample s depends only on (seed, first_example + i, s)
    — the draws :func:`swiftattr.smoothgrad` makes, so a noise tunnel over ``saliency(abs=False)`` is
    SmoothGrad. With ``return_convergence_delta=True`` in ``method_args`` (methods that have it) the deltas of
    the n·S copies come back too, as Captum.

    Parameters
    ----------
    method : callable or str
        A swiftattr attribution function, or its name (``"integrated_gradients"``, ``"grad_cam"``,
        ``"occlusion"``, …).
    net : Network or LazyNetwork
        The model (a LazyNetwork is planned for the shape of ``inputs``).
    inputs : array_like, shape (n, *input_shape)
        The examples, read as float32 (not token ids: noise is added to the inputs).
    nt_type : str, default "smoothgrad"
        "smoothgrad", "smoothgrad_sq" or "vargrad".
    nt_samples : int, default 5
        Noisy copies S per example (≥ 1).
    stdevs : float or tuple of one float, default 1.0
        Standard deviation of the Gaussian noise.
    seed : int, optional
        Non-negative seed of the noise (and baseline draws). Default None: a fresh random seed.
    draw_baseline_from_distrib : bool, default False
        ``baselines`` (in ``method_args``) is a set of references and each copy takes one, drawn from the same
        seeded stream.
    nt_samples_batch_size : int, optional
        Accepted for Captum's signature (memory is bounded by blocks of examples here).
    first_example : int, default 0
        The index of the first row of ``inputs`` in the whole batch (the noise is keyed by it).
    noise : array_like, shape (n, S, *input_shape) or (n·S, *input_shape), optional
        The noise itself instead of drawing it (to reproduce another library's draws).
    **method_args
        The method's own arguments (``target``, ``baselines``, ``layer``, …).

    Returns
    -------
    numpy.ndarray of float32, shape (n, *method's attribution shape)
        The aggregated attributions; with ``return_convergence_delta=True`` in ``method_args`` the pair
        ``(attributions, deltas)``, deltas of shape (n·S,).

    Raises
    ------
    SwiftAttrError
        For an unknown method name or ``nt_type`` (SA_ERR_UNKNOWN_ENUM); for a token network; for ``noise`` of the
        wrong shape (SA_ERR_SHAPE); for ``return_convergence_delta`` with a method that has none; for
        ``draw_baseline_from_distrib`` without ``baselines`` or with a method that takes none; and whatever the
        method raises for its arguments.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(8, 4))), sa.Tanh(), sa.Linear(rng.normal(size=(3, 8)))])
    >>> x = rng.normal(size=(5, 4)).astype(np.float32)
    >>> nt = sa.noise_tunnel("saliency", net, x, nt_samples=4, stdevs=0.2, seed=0, target=1, abs=False)
    >>> nt.shape
    (5, 4)
    >>> sg = sa.smoothgrad(net, x, target=1, n_samples=4, stdevs=0.2, seed=0)   # the same draws
    >>> bool(np.allclose(nt, sg, atol=1e-5))
    True
    >>> sa.noise_tunnel(sa.integrated_gradients, net, x, nt_type="vargrad", nt_samples=3, seed=0, target=0).shape
    (5, 4)
    """
    fn = _method(method)
    net, x = _network(net, inputs)
    if net.is_token_model:
        raise SwiftAttrError("net: noise_tunnel adds noise to the inputs, and a token network's inputs are token ids; "
                             "attribute a network on the embedding vectors (net.embedding_rest()) instead")
    n, d = x.shape[0], net.input_size
    S = as_int(nt_samples, "nt_samples", 1)
    nt_code = as_choice(nt_type, _ffi.NT_TYPES, "nt_type")
    if isinstance(stdevs, tuple):
        if len(stdevs) != 1:
            raise SwiftAttrError(f"stdevs: one input tensor takes one stdev, got {stdevs!r}")
        stdevs = stdevs[0]
    stdev = as_float(stdevs, "stdevs")
    offset = as_int(first_example, "first_example", 0)
    if nt_samples_batch_size is not None:
        as_int(nt_samples_batch_size, "nt_samples_batch_size", 1)
    draw = as_bool(draw_baseline_from_distrib, "draw_baseline_from_distrib")
    seed_value = _seed(seed)
    if noise is not None:
        noise = as_f32(noise, "noise")
        if noise.shape == (n, S) + net.input_shape:
            noise = noise.reshape((n * S,) + net.input_shape)
        if noise.shape != (n * S,) + net.input_shape:
            raise SwiftAttrError(f"noise: expected shape {(n, S) + net.input_shape} or {(n * S,) + net.input_shape}, "
                                 f"got {noise.shape}", SA_ERR_SHAPE)
    with_delta = bool(method_args.get("return_convergence_delta", False))
    if with_delta and "return_convergence_delta" not in inspect.signature(fn).parameters:
        raise SwiftAttrError(f"return_convergence_delta: {getattr(fn, '__name__', fn)} has no convergence delta")

    repeated = {k: v for k, v in method_args.items()
                if (k == "target" and _per_example(v, n)) or
                   (k in ("baselines", "feature_mask") and not (k == "baselines" and draw) and _per_example(v, n, x.ndim))}
    shared = {k: v for k, v in method_args.items() if k not in repeated}
    references = None
    if draw:
        if "baselines" not in method_args or method_args["baselines"] is None:
            raise SwiftAttrError("draw_baseline_from_distrib: needs baselines, the set of references to draw from")
        if "baselines" not in inspect.signature(fn).parameters:
            raise SwiftAttrError(f"draw_baseline_from_distrib: {getattr(fn, '__name__', fn)} takes no baselines")
        references = net._batch(shared.pop("baselines"), "baselines")
    per_example = {k: np.asarray(from_torch_tensor(v)) for k, v in repeated.items()}

    block = max(1, (1 << 22) // max(1, S * d))
    results, deltas = [], []
    for a in range(0, n, block):
        b = min(n, a + block)
        rows = b - a
        if noise is None:
            noisy = np.empty((rows * S,) + net.input_shape, dtype=np.float32)
            check(lib.sa_noise_tunnel_inputs(fptr(np.ascontiguousarray(x[a:b])), rows, d, S, stdev, seed_value,
                                             offset + a, fptr(noisy)))
        else:
            noisy = np.ascontiguousarray(np.repeat(x[a:b], S, axis=0) + noise[a * S:b * S])
        args = dict(shared)
        for k, v in per_example.items():
            args[k] = np.repeat(v[a:b], S, axis=0)
        if references is not None:
            draws = np.empty(rows * S, dtype=np.int64)
            check(lib.sa_noise_tunnel_baseline_draws(rows, S, references.shape[0], seed_value, offset + a, iptr(draws)))
            args["baselines"] = references[draws]
        result = fn(net, noisy, **args)
        if with_delta:
            result, delta = result
            deltas.append(np.asarray(delta, dtype=np.float32))
        attr = np.ascontiguousarray(result, dtype=np.float32)
        if attr.shape[0] != rows * S:
            raise SwiftAttrError(f"method: {getattr(fn, '__name__', fn)} returned {attr.shape[0]} rows for "
                                 f"{rows * S} noisy inputs", _ffi.SA_ERR_INTERNAL)
        width = int(np.prod(attr.shape[1:], dtype=np.int64))
        out = np.empty((rows,) + attr.shape[1:], dtype=np.float32)
        check(lib.sa_noise_tunnel_aggregate(fptr(attr), rows, S, width, nt_code, fptr(out)))
        results.append(out)
    attributions = np.concatenate(results, axis=0)
    return (attributions, np.concatenate(deltas)) if with_delta else attributions

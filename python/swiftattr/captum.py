"""A drop-in for Captum's attribution classes: change ``from captum.attr import X`` to
``from swiftattr.captum import X`` and keep the rest of the code.

Each class is constructed from a ``torch.nn.Module`` (or a swiftattr :class:`~swiftattr.Network`), converted
once by :func:`swiftattr.from_torch` and cached; the module is converted again when one of its parameters
or buffers changes (a new tensor, or an in-place update such as an optimiser step, which bumps the tensor's
version counter). ``.attribute(...)`` takes Captum's arguments, with Captum's defaults, and returns what
Captum returns: a tensor of the input's shape, dtype and device (a tuple when the inputs were a one-element
tuple), with the convergence delta where Captum has ``return_convergence_delta``.

The conversion uses inference semantics (BatchNorm's running statistics, Dropout off), as Captum does on a
model in ``eval()`` mode; attribute a module in training mode with Captum and the numbers differ.

An argument that Captum takes and swiftattr does not support — several input tensors,
``additional_forward_args``, a custom attribution function, a target tuple for multi-dimensional outputs —
raises :class:`~swiftattr.SwiftAttrError` naming the argument, never a silently different result.

    >>> from swiftattr.captum import IntegratedGradients      # doctest: +SKIP
    >>> ig = IntegratedGradients(model)                          # doctest: +SKIP
    >>> attributions, delta = ig.attribute(x, baseline, target=0, return_convergence_delta=True)  # doctest: +SKIP
"""
from __future__ import annotations

import inspect
from typing import Optional

import numpy as np

import swiftattr as _sa
from ._args import SA_ERR_INVALID_ARGUMENT, as_f32, from_torch_tensor, is_torch_tensor
from ._ffi import SwiftAttrError
from .model import LazyNetwork, Network

__all__ = [
    "IntegratedGradients", "Saliency", "InputXGradient", "DeepLift", "DeepLiftShap", "GradientShap", "NoiseTunnel",
    "Occlusion", "FeatureAblation", "FeaturePermutation", "ShapleyValueSampling", "KernelShap", "Lime",
    "LayerGradCam", "LayerIntegratedGradients", "LayerConductance", "LayerGradientXActivation", "LayerDeepLift",
    "NeuronIntegratedGradients", "GuidedGradCam", "LRP", "GuidedBackprop", "Deconvolution",
]


def _unsupported(where: str, name: str, why: str = "") -> SwiftAttrError:
    return SwiftAttrError(f"{where}: argument {name} is not supported by swiftattr.captum{': ' + why if why else ''}",
                          SA_ERR_INVALID_ARGUMENT)


def _require_default(where: str, **given) -> None:
    """Raises for every argument whose value is not Captum's default (passed as (value, default) pairs)."""
    for name, (value, default) in given.items():
        same = value is default or (not is_torch_tensor(value) and not isinstance(value, np.ndarray) and value == default)
        if not same:
            raise _unsupported(where, f"{name}={value!r}")


class _Inputs:
    """The one input tensor of a call (Captum also takes a one-element tuple), and how to give results back
    in its kind: a tensor of its dtype and device, or a numpy array for numpy inputs."""

    def __init__(self, inputs, where: str):
        self.was_tuple = isinstance(inputs, tuple)
        if self.was_tuple:
            if len(inputs) != 1:
                raise _unsupported(where, "inputs", f"a tuple of {len(inputs)} input tensors (models with one input only)")
            inputs = inputs[0]
        self.like = inputs
        self.array = _numpy(inputs)

    def back(self, array, keep_tuple: bool = True):
        if is_torch_tensor(self.like):
            import torch

            out = torch.from_numpy(np.ascontiguousarray(array)).to(dtype=self.like.dtype, device=self.like.device)
        else:
            out = np.asarray(array)
        return (out,) if self.was_tuple and keep_tuple else out


def _numpy(x, name: str = "baselines"):
    """A tensor (any device, with or without grad), a one-element tuple or an array-like as a numpy array
    (``name``: the argument, for the error on a tuple of several tensors)."""
    if x is None:
        return None
    if isinstance(x, tuple):
        if len(x) != 1:
            raise _unsupported("attribute", name, f"a tuple of {len(x)} tensors (models with one input only)")
        x = x[0]
    return from_torch_tensor(x)


def _mask(feature_mask):
    return _numpy(feature_mask, "feature_mask")


def _target(target, where: str):
    """Captum's target: None, an int, a list of ints or a 1-D tensor (one per example). Tuples address a
    multi-dimensional output, which swiftattr's networks do not have."""
    if isinstance(target, tuple) or (isinstance(target, list) and any(isinstance(t, tuple) for t in target)):
        raise _unsupported(where, f"target={target!r}", "tuples index multi-dimensional outputs")
    return _numpy(target, "target")


class _Converted:
    """``forward_func`` converted to a swiftattr network, once, and again when the module's tensors change."""

    def __init__(self, forward_func):
        if isinstance(forward_func, (Network, LazyNetwork)):
            self.module, self._net = None, forward_func
            return
        module = getattr(forward_func, "__self__", forward_func)  # model.forward → model
        try:
            import torch
        except ImportError:  # pragma: no cover - Captum users have torch
            raise SwiftAttrError("swiftattr.captum: torch is not importable; pass a swiftattr Network instead") from None
        if not isinstance(module, torch.nn.Module):
            raise _unsupported(type(self).__name__, "forward_func",
                               f"a {type(forward_func).__name__}; swiftattr converts torch.nn.Module objects (and takes "
                               "swiftattr Networks), not arbitrary callables")
        self.module, self._net, self._key = module, None, None

    def _version(self):
        m = self.module
        return tuple((id(t), t._version) for t in list(m.parameters()) + list(m.buffers()))

    @property
    def net(self):
        if self.module is None:
            return self._net
        key = self._version()
        if self._net is None or key != self._key:
            self._net, self._key = _sa.from_torch(self.module), key
        return self._net

    def layer_name(self, layer, where: str) -> str:
        """The ``named_modules()`` name of ``layer`` (a module of the converted model), as swiftattr's
        ``layer=`` takes it."""
        if isinstance(layer, (str, int)):
            return layer
        if self.module is None:
            raise _unsupported(where, "layer", "pass a node index or name for a swiftattr Network")
        for name, mod in self.module.named_modules():
            if mod is layer:
                return name
        raise SwiftAttrError(f"{where}: layer {type(layer).__name__} is not a module of the model")


class _Method:
    """What every adapter class shares: Captum's constructor (forward_func first) and the converted network."""

    _sa_function: Optional[str] = None  # the swiftattr function name, for the error when it is unavailable

    def __init__(self, forward_func, *args, **kwargs):
        self.forward_func = forward_func
        self._model = _Converted(forward_func)
        self._init(*args, **kwargs)

    def _init(self):
        pass

    @property
    def net(self):
        return self._model.net

    def _fn(self, name: str):
        fn = getattr(_sa, name, None)
        if fn is None:
            raise SwiftAttrError(f"{type(self).__name__}: swiftattr.{name} is not available in this build")
        return fn

    @staticmethod
    def has_convergence_delta() -> bool:
        return False

    def __repr__(self):
        return f"swiftattr.captum.{type(self).__name__}({type(self.forward_func).__name__})"


def _multiply(where: str, multiply_by_inputs: bool) -> bool:
    if not isinstance(multiply_by_inputs, bool):
        raise SwiftAttrError(f"{where}: multiply_by_inputs: expected True or False, got {multiply_by_inputs!r}")
    return multiply_by_inputs


def _with_delta(inp: _Inputs, result, with_delta: bool):
    if with_delta:
        phi, delta = result
        return inp.back(phi), inp.back(np.asarray(delta), keep_tuple=False)
    return inp.back(result)


class Saliency(_Method):
    """Captum's ``Saliency``: |∂f_t/∂x| (``abs=True``) or the raw gradient.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, abs=True, additional_forward_args=None):
        """|∂f_t/∂x| (``abs=True``, Captum's default) or the signed gradient, per input element.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        abs : bool, default True
            Take the absolute value.
        additional_forward_args : None
            Only None (the model takes one input).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of :func:`swiftattr.saliency`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.Saliency(net).attribute(x, target=0)[0].tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("Saliency.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "Saliency.attribute")
        return inp.back(_sa.saliency(self.net, inp.array, target=_target(target, "Saliency"), abs=abs))


class InputXGradient(_Method):
    """Captum's ``InputXGradient``: x ⊙ ∂f_t/∂x.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None):
        """x ⊙ ∂f_t/∂x.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.input_x_gradient`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.InputXGradient(net).attribute(2 * x)[0].tolist()
        [2.0, 4.0, 6.0]
        """
        _require_default("InputXGradient.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "InputXGradient.attribute")
        return inp.back(_sa.input_x_gradient(self.net, inp.array, target=_target(target, "InputXGradient")))


class IntegratedGradients(_Method):
    """Captum's ``IntegratedGradients``; ``multiply_by_inputs=False`` gives the path-integrated gradient.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    multiply_by_inputs : bool, default True
        Captum's global attributions (times x − baseline); False gives the local ones.

    :meth:`attribute` has the arguments and an example.
    """

    def _init(self, multiply_by_inputs=True):
        self.multiply_by_inputs = _multiply("IntegratedGradients", multiply_by_inputs)

    @staticmethod
    def has_convergence_delta() -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, n_steps=50,
                  method="gausslegendre", internal_batch_size=None, return_convergence_delta=False):
        """Integrated Gradients (Sundararajan et al. 2017):
        (x − x′) ⊙ ∫₀¹ ∂f_t(x′ + α(x − x′))/∂x dα.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor, ndarray, scalar or None, default None
            None (zeros), a scalar, one example (shared) or one per example.
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        n_steps : int, default 50
            Quadrature points.
        method : str, default "gausslegendre"
            "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
        internal_batch_size : int, optional
            Bound on the path points evaluated at once (memory).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Attributions of the input's shape, in the input's kind (tensor of its dtype and device, numpy array,
            or a one-element tuple when the inputs were one); with ``return_convergence_delta`` also the
            convergence delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.integrated_gradients`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> phi, delta = sa.captum.IntegratedGradients(net).attribute(x, target=0, return_convergence_delta=True)
        >>> phi[0].round(3).tolist(), bool(abs(delta).max() < 1e-4)
        ([1.0, 2.0, 3.0], True)
        """
        _require_default("IntegratedGradients.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "IntegratedGradients.attribute")
        r = _sa.integrated_gradients(self.net, inp.array, baselines=_numpy(baselines),
                                     target=_target(target, "IntegratedGradients"), n_steps=n_steps, method=method,
                                     internal_batch_size=internal_batch_size,
                                     return_convergence_delta=return_convergence_delta,
                                     multiply_by_inputs=self.multiply_by_inputs)
        return _with_delta(inp, r, return_convergence_delta)


class DeepLift(_Method):
    """Captum's ``DeepLift`` (the Rescale rule; ``eps`` is Captum's guard for near-zero differences).

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    multiply_by_inputs : bool, default True
        Captum's global attributions (times x − baseline); False gives the local ones.
    eps : float, default 1e-10
        Captum's guard for near-zero differences (stored).

    :meth:`attribute` has the arguments and an example.
    """

    def _init(self, multiply_by_inputs=True, eps=1e-10):
        self.multiply_by_inputs = _multiply("DeepLift", multiply_by_inputs)
        self.eps = eps

    @staticmethod
    def has_convergence_delta() -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None,
                  return_convergence_delta=False, custom_attribution_func=None):
        """DeepLIFT's Rescale rule (Shrikumar et al. 2017), max-pools as Captum (``maxpool="gradient"``).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor, ndarray, scalar or None, default None
            None (zeros), a scalar, one example (shared) or one per example.
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        custom_attribution_func : None
            Only None.

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Attributions of the input's shape, in the input's kind (tensor of its dtype and device, numpy array,
            or a one-element tuple when the inputs were one); with ``return_convergence_delta`` also the
            convergence delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, a custom attribution function), and for the errors
            of :func:`swiftattr.deeplift`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.DeepLift(net).attribute(x, target=0)[0].round(3).tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("DeepLift.attribute", additional_forward_args=(additional_forward_args, None),
                         custom_attribution_func=(custom_attribution_func, None))
        inp = _Inputs(inputs, "DeepLift.attribute")
        r = _sa.deeplift(self.net, inp.array, baselines=_numpy(baselines), target=_target(target, "DeepLift"),
                         maxpool="gradient", multiply_by_inputs=self.multiply_by_inputs,
                         return_convergence_delta=return_convergence_delta)
        return _with_delta(inp, r, return_convergence_delta)


def _references(net, inp: _Inputs, baselines):
    """Captum's reference set ``baselines`` (R, *input_shape) checked under Captum's name (swiftattr calls it
    ``references``) for the network planned for the inputs; token ids and embedding vectors pass unchanged."""
    b = _numpy(baselines)
    plan = _sa.model.network_for(net, inp.array)
    if plan.is_token_model:
        return b
    b = as_f32(b, "baselines")
    return plan._batch(b[None] if b.shape == plan.input_shape else b, "baselines")  # one reference, as deepshap


class DeepLiftShap(DeepLift):
    """Captum's ``DeepLiftShap``: DeepLIFT averaged over the reference set ``baselines`` (R, *input_shape).

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    multiply_by_inputs : bool, default True
        Captum's global attributions (times x − baseline); False gives the local ones.

    :meth:`attribute` has the arguments and an example.
    """

    def _init(self, multiply_by_inputs=True):
        self.multiply_by_inputs = _multiply("DeepLiftShap", multiply_by_inputs)

    def attribute(self, inputs, baselines, target=None, additional_forward_args=None, return_convergence_delta=False,
                  custom_attribution_func=None):
        """DeepLIFT averaged over the references: φ = (1/R) Σ_r φ(x, r).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor or ndarray of shape (R, *input_shape), or one example
            The reference set.
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        custom_attribution_func : None
            Only None.

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Attributions of the input's shape, in the input's kind (tensor of its dtype and device, numpy array,
            or a one-element tuple when the inputs were one); with ``return_convergence_delta`` also the
            convergence delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, a custom attribution function), and for the errors
            of :func:`swiftattr.deepshap`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> refs = np.zeros((4, 3), np.float32)
        >>> sa.captum.DeepLiftShap(net).attribute(x, refs, target=0)[0].round(3).tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("DeepLiftShap.attribute", additional_forward_args=(additional_forward_args, None),
                         custom_attribution_func=(custom_attribution_func, None))
        inp = _Inputs(inputs, "DeepLiftShap.attribute")
        r = _sa.deepshap(self.net, inp.array, _references(self.net, inp, baselines), target=_target(target, "DeepLiftShap"),
                         maxpool="gradient", multiply_by_inputs=self.multiply_by_inputs,
                         return_convergence_delta=return_convergence_delta)
        return _with_delta(inp, r, return_convergence_delta)


class GradientShap(_Method):
    """Captum's ``GradientShap``: expected gradients over the reference set ``baselines`` with ``n_samples``
    draws per example (Gaussian input noise, ``stdevs`` > 0, is not supported). Captum draws with torch's
    global generator; here the draws come from ``seed`` (a swiftattr extension, default 0), so the numbers
    agree with Captum in expectation, not draw for draw.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    multiply_by_inputs : bool, default True
        Only True.

    :meth:`attribute` has the arguments and an example.
    """

    def _init(self, multiply_by_inputs=True):
        self.multiply_by_inputs = _multiply("GradientShap", multiply_by_inputs)
        if not multiply_by_inputs:
            raise _unsupported("GradientShap", "multiply_by_inputs=False")

    @staticmethod
    def has_convergence_delta() -> bool:
        return True

    def attribute(self, inputs, baselines, n_samples=5, stdevs=0.0, target=None, additional_forward_args=None,
                  return_convergence_delta=False, seed=0):
        """Expected Gradients (Erion et al. 2021): (x − r) ⊙ ∂f_t(r + α(x − r))/∂x averaged over
        ``n_samples`` draws of a reference r and α ~ U(0, 1); the delta is Σφ − (f(x) − mean_r f(r)).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor or ndarray of shape (R, *input_shape), or one example
            The reference set.
        n_samples : int, default 5
            Draws per example.
        stdevs : float, default 0.0
            Only 0.0 (no input noise).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        seed : int, default 0
            A swiftattr extension: the seed of the draws.

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Attributions of the input's shape, in the input's kind (tensor of its dtype and device, numpy array,
            or a one-element tuple when the inputs were one); with ``return_convergence_delta`` also the
            convergence delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, ``stdevs`` > 0), and for the errors of
            :func:`swiftattr.expected_gradients`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> refs = np.zeros((4, 3), np.float32)
        >>> gs = sa.captum.GradientShap(net)
        >>> phi, delta = gs.attribute(x, refs, n_samples=8, target=0, return_convergence_delta=True)
        >>> phi[0].round(3).tolist(), bool(abs(delta).max() < 1e-4)
        ([1.0, 2.0, 3.0], True)
        """
        _require_default("GradientShap.attribute", additional_forward_args=(additional_forward_args, None),
                         stdevs=(stdevs, 0.0))
        inp = _Inputs(inputs, "GradientShap.attribute")
        if not isinstance(return_convergence_delta, (bool, np.bool_)):
            raise SwiftAttrError(f"GradientShap.attribute: return_convergence_delta: expected True or False, got "
                                 f"{return_convergence_delta!r}")
        t = _target(target, "GradientShap")
        refs = _references(self.net, inp, baselines)
        phi = _sa.expected_gradients(self.net, inp.array, refs, target=t, n_samples=n_samples, seed=seed)
        if not return_convergence_delta:
            return inp.back(phi)
        # Captum's delta for GradientShap: Σφ − (f(x) − mean over references f(x')), per example
        net = _sa.model.network_for(self.net, inp.array)
        fx = net.forward(inp.array).reshape(len(inp.array), -1)
        fr = net.forward(refs).reshape(-1, fx.shape[1])
        tt = np.broadcast_to(np.asarray(0 if t is None else t).ravel(), (len(fx),))
        delta = phi.reshape(len(fx), -1).sum(1) - (fx[np.arange(len(fx)), tt] - fr[:, tt].mean(0))
        return inp.back(phi), inp.back(delta.astype(np.float32), keep_tuple=False)


class _Perturbation(_Method):
    def _check(self, where, additional_forward_args, show_progress):
        _require_default(where, additional_forward_args=(additional_forward_args, None))
        if not isinstance(show_progress, bool):
            raise SwiftAttrError(f"{where}: show_progress: expected True or False, got {show_progress!r}")
        self._progress = show_progress

    def _progress_args(self, fn) -> dict:
        """``show_progress`` is forwarded when the swiftattr function takes it."""
        if self._progress and "show_progress" in inspect.signature(fn).parameters:
            return {"show_progress": True}
        return {}


def _baseline_value(b):
    b = _numpy(b)
    return 0 if b is None else b


def _interpretable_mask(feature_mask):
    """KernelShap's and Lime's feature_mask as Captum takes it: the ids shifted to start at 0 (Captum
    subtracts the smallest id of the whole mask); None stays None."""
    m = _mask(feature_mask)
    if m is None:
        return None
    m = np.asarray(m)
    if m.dtype.kind not in "iu":
        raise SwiftAttrError(f"feature_mask: expected integer feature ids, got dtype {m.dtype}")
    return m - m.min() if m.size else m


def _check_return_input_shape(return_input_shape, where: str):
    """Refuses a ``return_input_shape`` that is not a bool before any sample is evaluated."""
    if not isinstance(return_input_shape, (bool, np.bool_)):
        raise SwiftAttrError(f"{where}: return_input_shape: expected True or False, got {return_input_shape!r}")


def _interpretable(attributions, feature_mask, where: str):
    """Captum's ``return_input_shape=False`` for KernelShap and Lime: the surrogate's coefficients, one per
    interpretable feature, (n, M) for n examples — M = the largest id of the (shifted) mask + 1; without a
    mask every element is a feature. Each element of a feature holds its coefficient, so it is read at the
    feature's first element (an id that no element of a row has gets 0 there: it is not a feature of that
    row; Captum samples such ids like the others and gives them an arbitrary, typically small, coefficient)."""
    a = np.asarray(attributions)
    n = a.shape[0]
    if feature_mask is None:
        return a.reshape(n, -1)
    try:
        ids = np.broadcast_to(np.asarray(feature_mask), a.shape).reshape(n, -1)
    except ValueError:
        raise SwiftAttrError(f"{where}: feature_mask of shape {np.shape(feature_mask)} does not broadcast to the "
                             f"attributions' {a.shape}") from None
    out = np.zeros((n, int(ids.max()) + 1), dtype=a.dtype)
    flat = a.reshape(n, -1)
    for r in range(n):
        present, first = np.unique(ids[r], return_index=True)
        out[r, present] = flat[r, first]
    return out


def _shaped(inp, out, mask, return_input_shape, where: str):
    """KernelShap's and Lime's result in the input's kind: of the input's shape, or (``return_input_shape``
    False) the coefficients per feature (:func:`_interpretable`), never a tuple. ``return_input_shape`` was
    checked before the samples ran (:func:`_check_return_input_shape`)."""
    if return_input_shape:
        return inp.back(out)
    return inp.back(_interpretable(out, mask, where), keep_tuple=False)


def _one_per_input(value, name: str):
    """Captum's per-input tuple of tuples (one window shape or stride per input tensor) for the one input:
    ((2, 2),) → (2, 2); several entries are refused rather than all but the first ignored."""
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        if len(value) != 1:
            raise _unsupported("Occlusion.attribute", name, f"{len(value)} entries, one per input tensor (one input only)")
        return value[0]
    return value


class Occlusion(_Perturbation):
    """Captum's ``Occlusion``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, sliding_window_shapes, strides=None, baselines=None, target=None,
                  additional_forward_args=None, perturbations_per_eval=1, show_progress=False):
        """f_t(x) − f_t(x with a window replaced by the baseline), given to every element of the window and
        averaged over the windows covering each element (Zeiler & Fergus 2014).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        sliding_window_shapes : tuple of int (or a one-element tuple of it)
            The window's shape (one example's dimensions).
        strides : int or tuple of int, optional
            Steps between windows (default 1).
        baselines : scalar, tensor or ndarray, optional
            The replacement value (default 0).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        perturbations_per_eval : int, default 1
            Perturbed copies evaluated per forward call.
        show_progress : bool, default False
            Show a progress bar (when the swiftattr function has one).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, several window shapes), and for the errors of
            :func:`swiftattr.occlusion`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.Occlusion(net).attribute(x, (1,), target=0)[0].tolist()
        [1.0, 2.0, 3.0]
        """
        self._check("Occlusion.attribute", additional_forward_args, show_progress)
        inp = _Inputs(inputs, "Occlusion.attribute")
        shapes = _one_per_input(sliding_window_shapes, "sliding_window_shapes")
        strides = _one_per_input(strides, "strides")
        fn = _sa.occlusion
        return inp.back(fn(self.net, inp.array, shapes, strides=strides, baselines=_baseline_value(baselines),
                           target=_target(target, "Occlusion"), perturbations_per_eval=perturbations_per_eval,
                           **self._progress_args(fn)))


class FeatureAblation(_Perturbation):
    """Captum's ``FeatureAblation``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, feature_mask=None,
                  perturbations_per_eval=1, show_progress=False):
        """f_t(x) − f_t(x with one feature (group of ``feature_mask``) replaced by the baseline).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : scalar, tensor or ndarray, optional
            The replacement (default 0).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        feature_mask : tensor or ndarray of the input's shape (or one example's), optional
            Integer group of every input element (default: every element its own feature).
        perturbations_per_eval : int, default 1
            Perturbed copies evaluated per forward call.
        show_progress : bool, default False
            Show a progress bar (when the swiftattr function has one).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.feature_ablation`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> mask = np.array([0, 0, 1])
        >>> sa.captum.FeatureAblation(net).attribute(x, target=0, feature_mask=mask)[0].tolist()
        [3.0, 3.0, 3.0]
        """
        self._check("FeatureAblation.attribute", additional_forward_args, show_progress)
        inp = _Inputs(inputs, "FeatureAblation.attribute")
        fn = _sa.feature_ablation
        return inp.back(fn(self.net, inp.array, baselines=_baseline_value(baselines), feature_mask=_mask(feature_mask),
                           target=_target(target, "FeatureAblation"), perturbations_per_eval=perturbations_per_eval,
                           **self._progress_args(fn)))


class FeaturePermutation(_Perturbation):
    """Captum's ``FeaturePermutation`` (the permutations come from ``seed``, a swiftattr extension).

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None, feature_mask=None, perturbations_per_eval=1,
                  show_progress=False, seed=None):
        """f_t(x) − f_t(x with a feature's values permuted across the batch), per example.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        feature_mask : tensor or ndarray of the input's shape (or one example's), optional
            Integer group of every input element (default: every element its own feature).
        perturbations_per_eval : int, default 1
            Perturbed copies evaluated per forward call.
        show_progress : bool, default False
            Show a progress bar (when the swiftattr function has one).
        seed : int, optional
            A swiftattr extension: the seed of the draws (None: drawn afresh).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.feature_permutation`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.FeaturePermutation(net).attribute(x, target=0, seed=0).shape
        (2, 3)
        """
        self._check("FeaturePermutation.attribute", additional_forward_args, show_progress)
        inp = _Inputs(inputs, "FeaturePermutation.attribute")
        fn = _sa.feature_permutation
        return inp.back(fn(self.net, inp.array, feature_mask=_mask(feature_mask), target=_target(target, "FeaturePermutation"),
                           seed=seed, perturbations_per_eval=perturbations_per_eval, **self._progress_args(fn)))


class ShapleyValueSampling(_Perturbation):
    """Captum's ``ShapleyValueSampling`` (orders drawn from ``seed``, a swiftattr extension).

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, feature_mask=None,
                  n_samples=25, perturbations_per_eval=1, show_progress=False, seed=None):
        """Shapley values estimated from ``n_samples`` random feature orders (Castro et al. 2009).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : scalar, tensor or ndarray, optional
            The value of an absent feature (default 0).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        feature_mask : tensor or ndarray of the input's shape (or one example's), optional
            Integer group of every input element (default: every element its own feature).
        n_samples : int, default 25
            Feature orders per example.
        perturbations_per_eval : int, default 1
            Perturbed copies evaluated per forward call.
        show_progress : bool, default False
            Show a progress bar (when the swiftattr function has one).
        seed : int, optional
            A swiftattr extension: the seed of the draws (None: drawn afresh).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.shapley_value_sampling`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.ShapleyValueSampling(net).attribute(x, target=0, n_samples=4, seed=0)[0].round(3).tolist()
        [1.0, 2.0, 3.0]
        """
        self._check("ShapleyValueSampling.attribute", additional_forward_args, show_progress)
        inp = _Inputs(inputs, "ShapleyValueSampling.attribute")
        fn = _sa.shapley_value_sampling
        return inp.back(fn(self.net, inp.array, baselines=_baseline_value(baselines), feature_mask=_mask(feature_mask),
                           n_samples=n_samples, seed=seed, target=_target(target, "ShapleyValueSampling"),
                           perturbations_per_eval=perturbations_per_eval, **self._progress_args(fn)))


class KernelShap(_Perturbation):
    """Captum's ``KernelShap`` (coalitions drawn from ``seed``, a swiftattr extension; the exact constrained
    solve of shap's KernelExplainer).

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, feature_mask=None,
                  n_samples=25, perturbations_per_eval=1, return_input_shape=True, show_progress=False, seed=None):
        """KernelSHAP (Lundberg & Lee 2017): Shapley values from a weighted regression on ``n_samples`` coalitions.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : scalar, tensor or ndarray, optional
            The value of an absent feature (default 0).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        feature_mask : tensor or ndarray of the input's shape (or one example's), optional
            Integer group of every input element (default: every element its own feature).
        n_samples : int, default 25
            Coalitions per example.
        perturbations_per_eval : int, default 1
            Perturbed copies evaluated per forward call.
        show_progress : bool, default False
            Show a progress bar (when the swiftattr function has one).
        return_input_shape : bool, default True
            False: the coefficients per interpretable feature, shape (n, number of features), as Captum's.
        seed : int, optional
            A swiftattr extension: the seed of the draws (None: drawn afresh).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one. With ``return_input_shape=False``
            (n, number of features), never a tuple.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.kernel_shap`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.KernelShap(net).attribute(x, target=0, n_samples=32, seed=0)[0].round(3).tolist()
        [1.0, 2.0, 3.0]
        """
        self._check("KernelShap.attribute", additional_forward_args, show_progress)
        _check_return_input_shape(return_input_shape, "KernelShap.attribute")
        inp = _Inputs(inputs, "KernelShap.attribute")
        fn, mask = _sa.kernel_shap, _interpretable_mask(feature_mask)
        out = fn(self.net, inp.array, baselines=_baseline_value(baselines), feature_mask=mask,
                 n_samples=n_samples, seed=seed, target=_target(target, "KernelShap"),
                 perturbations_per_eval=perturbations_per_eval, **self._progress_args(fn))
        return _shaped(inp, out, mask, return_input_shape, "KernelShap.attribute")


class Lime(_Perturbation):
    """Captum's ``Lime`` with its default interpretable model (a Lasso, α = 0.01) and similarity (the
    exponential kernel of the cosine distance, width 1); other models, similarities and perturbation
    functions are not supported.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    interpretable_model, similarity_func, perturb_func : None
        Only None (Captum's defaults).

    :meth:`attribute` has the arguments and an example.
    """

    def _init(self, interpretable_model=None, similarity_func=None, perturb_func=None):
        for name, value in (("interpretable_model", interpretable_model), ("similarity_func", similarity_func),
                            ("perturb_func", perturb_func)):
            if value is not None:
                raise _unsupported("Lime", name)

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, feature_mask=None,
                  n_samples=50, perturbations_per_eval=1, return_input_shape=True, show_progress=False, seed=None):
        """LIME (Ribeiro et al. 2016): the coefficients of a Lasso fitted to ``n_samples`` perturbed copies.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : scalar, tensor or ndarray, optional
            The value of an absent feature (default 0).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        feature_mask : tensor or ndarray of the input's shape (or one example's), optional
            Integer group of every input element (default: every element its own feature).
        n_samples : int, default 50
            Perturbed copies per example.
        perturbations_per_eval : int, default 1
            Perturbed copies evaluated per forward call.
        show_progress : bool, default False
            Show a progress bar (when the swiftattr function has one).
        return_input_shape : bool, default True
            False: the coefficients per interpretable feature, shape (n, number of features), as Captum's.
        seed : int, optional
            A swiftattr extension: the seed of the draws (None: drawn afresh).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one. With ``return_input_shape=False``
            (n, number of features), never a tuple.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.lime`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.Lime(net).attribute(x, target=0, n_samples=64, seed=0).shape
        (2, 3)
        """
        self._check("Lime.attribute", additional_forward_args, show_progress)
        _check_return_input_shape(return_input_shape, "Lime.attribute")
        inp = _Inputs(inputs, "Lime.attribute")
        fn, mask = _sa.lime, _interpretable_mask(feature_mask)
        out = fn(self.net, inp.array, baselines=_baseline_value(baselines), feature_mask=mask,
                 n_samples=n_samples, seed=seed, target=_target(target, "Lime"),
                 perturbations_per_eval=perturbations_per_eval, **self._progress_args(fn))
        return _shaped(inp, out, mask, return_input_shape, "Lime.attribute")


class NoiseTunnel:
    """Captum's ``NoiseTunnel`` around any of this module's attribution objects: :func:`swiftattr.noise_tunnel`
    runs the wrapped ``.attribute`` on all noisy copies of a block of examples at once (per-example ``target``,
    ``baselines`` and ``feature_mask`` repeated for the copies). The noise is drawn from ``seed`` (a swiftattr
    extension; Captum uses torch's global generator), keyed by example and sample.

    Parameters
    ----------
    attribution_method : a swiftattr.captum attribution object
        The method whose attributions are smoothed.

    :meth:`attribute` has the arguments and an example.
    """

    def __init__(self, attribution_method):
        if not isinstance(attribution_method, _Method):
            raise SwiftAttrError("NoiseTunnel: attribution_method must be a swiftattr.captum attribution object, got "
                                 f"{type(attribution_method).__name__}")
        self.attribution_method = attribution_method

    def has_convergence_delta(self) -> bool:
        return self.attribution_method.has_convergence_delta()

    def attribute(self, inputs, nt_type="smoothgrad", nt_samples=5, nt_samples_batch_size=None, stdevs=1.0,
                  draw_baseline_from_distrib=False, seed=None, **kwargs):
        """The wrapped method's attributions aggregated over ``nt_samples`` noisy copies x + N(0, stdevs²)
        of each example (Smilkov et al. 2017; Adebayo et al. 2018 for VarGrad).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        nt_type : {"smoothgrad", "smoothgrad_sq", "vargrad"}, default "smoothgrad"
            Mean, mean of squares, or variance.
        nt_samples : int, default 5
            Noisy copies per example.
        nt_samples_batch_size : int, optional
            Accepted for Captum's signature.
        stdevs : float, default 1.0
            Standard deviation of the noise.
        draw_baseline_from_distrib : bool, default False
            ``baselines`` is a reference set and each copy takes one.
        seed : int, optional
            A swiftattr extension: the seed of the draws (None: drawn afresh).
        **kwargs
            The wrapped ``attribute``'s arguments (``target``, ``baselines``, ...).

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Attributions of the input's shape, in the input's kind (tensor of its dtype and device, numpy array,
            or a one-element tuple when the inputs were one); with ``return_convergence_delta`` also the
            deltas of the n·nt_samples copies.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.noise_tunnel`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])   # f(x) = x0 + 2 x1 + 3 x2
        >>> x = np.ones((2, 3), np.float32)
        >>> nt = sa.captum.NoiseTunnel(sa.captum.Saliency(net))
        >>> nt.attribute(x, nt_samples=4, stdevs=0.1, seed=0, target=0)[0].tolist()
        [1.0, 2.0, 3.0]
        """
        method = self.attribution_method
        inp = _Inputs(inputs, "NoiseTunnel.attribute")
        signature = inspect.signature(method.attribute)

        def run(net, noisy, **kw):  # the wrapped method on numpy copies (numpy in, numpy out)
            return method.attribute(noisy, **kw)

        run.__name__ = type(method).__name__
        run.__signature__ = signature.replace(parameters=[inspect.Parameter("net", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
                                              + list(signature.parameters.values()))
        args = {k: (_target(v, "NoiseTunnel") if k == "target" else _numpy(v)) for k, v in kwargs.items()}
        out = _sa.noise_tunnel(run, method.net, inp.array, nt_type=nt_type, nt_samples=nt_samples,
                               nt_samples_batch_size=nt_samples_batch_size, stdevs=stdevs,
                               draw_baseline_from_distrib=draw_baseline_from_distrib, seed=seed, **args)
        if kwargs.get("return_convergence_delta", False):
            phi, delta = out
            return inp.back(phi), inp.back(np.asarray(delta), keep_tuple=False)
        return inp.back(out)


class _Layer(_Method):
    """A layer method: Captum's (forward_func, layer) constructor; ``layer`` a module of the model (or a
    swiftattr node index or name)."""

    def _init(self, layer, device_ids=None, **kwargs):
        self.layer = layer
        self._extra(**kwargs)

    def _extra(self):
        pass

    def _layer(self, where: str, attribute_to_layer_input=False):
        _require_default(where, attribute_to_layer_input=(attribute_to_layer_input, False))
        return self._model.layer_name(self.layer, where)


class LayerGradCam(_Layer):
    """Captum's ``LayerGradCam`` (Captum's default ``relu_attributions=False``; the result at the layer's
    resolution, as Captum's; upsample with ``swiftattr.grad_cam(..., upsample=True)``).

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None, attribute_to_layer_input=False,
                  relu_attributions=False, attr_dim_summation=True):
        """GradCAM (Selvaraju et al. 2017): Σ_c w_c a_c over the layer output's channels, w_c the spatial
        mean of ∂f_t/∂a_c (ReLU'd when ``relu_attributions``); with ``attr_dim_summation=False`` the
        per-channel maps w_c a_c, unsummed.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        attribute_to_layer_input : bool, default False
            Only False (attributions belong to the layer's output).
        relu_attributions : bool, default False
            ReLU the map.
        attr_dim_summation : bool, default True
            Sum over the channels (axis 1); False keeps one map per channel, as Captum's.

        Returns
        -------
        tensor or ndarray
            Of shape (n, 1, *the layer's spatial shape), or with ``attr_dim_summation=False`` the layer's
            output shape (n, C, *spatial) (never a tuple), in the input's kind.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, ``attribute_to_layer_input=True``), and for the
            errors of :func:`swiftattr.grad_cam`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Conv2d(np.ones((1, 1, 1, 1), np.float32)), sa.ReLU(), sa.Flatten(),
        ...                      sa.Linear(np.ones((1, 4), np.float32))], input_shape=(1, 2, 2))
        >>> x = np.ones((1, 1, 2, 2), np.float32)
        >>> cam = sa.captum.LayerGradCam(net, 0).attribute(x, target=0)
        >>> cam.shape, cam.sum().item()
        ((1, 1, 2, 2), 4.0)
        """
        _require_default("LayerGradCam.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "LayerGradCam.attribute")
        layer = self._layer("LayerGradCam.attribute", attribute_to_layer_input)
        out = self._fn("grad_cam")(self.net, inp.array, layer, target=_target(target, "LayerGradCam"),
                                   relu_attributions=relu_attributions, upsample=False, attr_dim_summation=attr_dim_summation)
        return inp.back(out, keep_tuple=False)


class LayerIntegratedGradients(_Layer):
    """Captum's ``LayerIntegratedGradients``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.
    multiply_by_inputs : bool, default True
        Only True.

    :meth:`attribute` has the arguments and an example.
    """

    def _extra(self, multiply_by_inputs=True):
        self.multiply_by_inputs = _multiply("LayerIntegratedGradients", multiply_by_inputs)
        _require_default("LayerIntegratedGradients", multiply_by_inputs=(multiply_by_inputs, True))

    @staticmethod
    def has_convergence_delta() -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, n_steps=50,
                  method="gausslegendre", internal_batch_size=None, return_convergence_delta=False,
                  attribute_to_layer_input=False):
        """Integrated Gradients at the layer's output, along the path between its activations at the
        baselines and at the inputs.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor, ndarray, scalar or None, default None
            None (zeros), a scalar, one example (shared) or one per example.
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        n_steps : int, default 50
            Quadrature points.
        method : str, default "gausslegendre"
            "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
        internal_batch_size : int, optional
            Bound on the path points evaluated at once (memory).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        attribute_to_layer_input : bool, default False
            Only False (attributions belong to the layer's output).

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Of shape (n, *the layer output's shape) (never a tuple), in the input's kind; with
            ``return_convergence_delta`` also the delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, ``attribute_to_layer_input=True``), and for the
            errors of :func:`swiftattr.layer_integrated_gradients`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.LayerIntegratedGradients(net, 0).attribute(x, target=0)[0].round(3).tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("LayerIntegratedGradients.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "LayerIntegratedGradients.attribute")
        layer = self._layer("LayerIntegratedGradients.attribute", attribute_to_layer_input)
        r = _sa.integrated_gradients(self.net, inp.array, baselines=_numpy(baselines),
                                     target=_target(target, "LayerIntegratedGradients"), n_steps=n_steps, method=method,
                                     internal_batch_size=internal_batch_size,
                                     return_convergence_delta=return_convergence_delta, layer=layer)
        return _layer_result(inp, r, return_convergence_delta)


def _layer_result(inp, r, with_delta):
    if with_delta:
        return inp.back(r[0], keep_tuple=False), inp.back(np.asarray(r[1]), keep_tuple=False)
    return inp.back(r, keep_tuple=False)


class LayerConductance(_Layer):
    """Captum's ``LayerConductance``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.

    :meth:`attribute` has the arguments and an example.
    """

    @staticmethod
    def has_convergence_delta() -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, n_steps=50,
                  method="gausslegendre", internal_batch_size=None, return_convergence_delta=False,
                  attribute_to_layer_input=False):
        """Conductance (Dhamdhere et al. 2018) of the layer's output units along the input path.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor, ndarray, scalar or None, default None
            None (zeros), a scalar, one example (shared) or one per example.
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        n_steps : int, default 50
            Quadrature points.
        method : str, default "gausslegendre"
            "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
        internal_batch_size : int, optional
            Bound on the path points evaluated at once (memory).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        attribute_to_layer_input : bool, default False
            Only False (attributions belong to the layer's output).

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Of shape (n, *the layer output's shape) (never a tuple), in the input's kind; with
            ``return_convergence_delta`` also the delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, ``attribute_to_layer_input=True``), and for the
            errors of :func:`swiftattr.layer_conductance`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> phi = sa.captum.LayerConductance(net, 0).attribute(x, target=0)   # the quadrature sees ReLU'(0) = 0 at α = 0
        >>> phi.shape, bool(np.allclose(phi[0], [1.0, 2.0, 3.0], atol=0.01))
        ((2, 3), True)
        """
        _require_default("LayerConductance.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "LayerConductance.attribute")
        layer = self._layer("LayerConductance.attribute", attribute_to_layer_input)
        r = self._fn("layer_conductance")(self.net, inp.array, layer, baselines=_numpy(baselines),
                                          target=_target(target, "LayerConductance"), n_steps=n_steps, method=method,
                                          internal_batch_size=internal_batch_size,
                                          return_convergence_delta=return_convergence_delta)
        return _layer_result(inp, r, return_convergence_delta)


class LayerGradientXActivation(_Layer):
    """Captum's ``LayerGradientXActivation``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.
    multiply_by_inputs : bool, default True
        Captum's global attributions (a ⊙ ∂f_t/∂a); False gives ∂f_t/∂a.

    :meth:`attribute` has the arguments and an example.
    """

    def _extra(self, multiply_by_inputs=True):
        self.multiply_by_inputs = _multiply("LayerGradientXActivation", multiply_by_inputs)

    def attribute(self, inputs, target=None, additional_forward_args=None, attribute_to_layer_input=False):
        """a ⊙ ∂f_t/∂a at the layer's output a (only ∂f_t/∂a with ``multiply_by_inputs=False``).

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        attribute_to_layer_input : bool, default False
            Only False (attributions belong to the layer's output).

        Returns
        -------
        tensor or ndarray
            Of shape (n, *the layer output's shape) (never a tuple), in the input's kind.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, ``attribute_to_layer_input=True``), and for the
            errors of :func:`swiftattr.layer_gradient_x_activation`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.LayerGradientXActivation(net, 0).attribute(2 * x, target=0)[0].tolist()
        [2.0, 4.0, 6.0]
        """
        _require_default("LayerGradientXActivation.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "LayerGradientXActivation.attribute")
        layer = self._layer("LayerGradientXActivation.attribute", attribute_to_layer_input)
        t = _target(target, "LayerGradientXActivation")
        if self.multiply_by_inputs:
            out = _sa.input_x_gradient(self.net, inp.array, target=t, layer=layer)
        else:
            out = _sa.saliency(self.net, inp.array, target=t, abs=False, layer=layer)
        return inp.back(out, keep_tuple=False)


class LayerDeepLift(_Layer):
    """Captum's ``LayerDeepLift``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.
    multiply_by_inputs : bool, default True
        Captum's global attributions (times x − baseline); False gives the local ones.

    :meth:`attribute` has the arguments and an example.
    """

    def _extra(self, multiply_by_inputs=True):
        self.multiply_by_inputs = _multiply("LayerDeepLift", multiply_by_inputs)

    @staticmethod
    def has_convergence_delta() -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None,
                  return_convergence_delta=False, attribute_to_layer_input=False, custom_attribution_func=None):
        """DeepLIFT multipliers times the difference from the baseline at the layer's output.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        baselines : tensor, ndarray, scalar or None, default None
            None (zeros), a scalar, one example (shared) or one per example.
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        attribute_to_layer_input : bool, default False
            Only False (attributions belong to the layer's output).
        custom_attribution_func : None
            Only None.

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Of shape (n, *the layer output's shape) (never a tuple), in the input's kind; with
            ``return_convergence_delta`` also the delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, a custom attribution function,
            ``attribute_to_layer_input=True``), and for the errors of :func:`swiftattr.layer_deeplift`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.LayerDeepLift(net, 0).attribute(x, target=0)[0].round(3).tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("LayerDeepLift.attribute", additional_forward_args=(additional_forward_args, None),
                         custom_attribution_func=(custom_attribution_func, None))
        inp = _Inputs(inputs, "LayerDeepLift.attribute")
        layer = self._layer("LayerDeepLift.attribute", attribute_to_layer_input)
        r = _sa.deeplift(self.net, inp.array, baselines=_numpy(baselines), target=_target(target, "LayerDeepLift"),
                         maxpool="gradient", multiply_by_inputs=self.multiply_by_inputs,
                         return_convergence_delta=return_convergence_delta, layer=layer)
        return _layer_result(inp, r, return_convergence_delta)


class NeuronIntegratedGradients(_Layer):
    """Captum's ``NeuronIntegratedGradients``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.
    multiply_by_inputs : bool, default True
        Only True.

    :meth:`attribute` has the arguments and an example.
    """

    def _extra(self, multiply_by_inputs=True):
        _require_default("NeuronIntegratedGradients", multiply_by_inputs=(multiply_by_inputs, True))

    def attribute(self, inputs, neuron_selector, baselines=None, additional_forward_args=None, n_steps=50,
                  method="gausslegendre", internal_batch_size=None, attribute_to_neuron_input=False):
        """Integrated Gradients of one element of the layer's output with respect to the inputs.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        neuron_selector : int or tuple of int
            A flat index into one example's layer output, or indices into its shape (not a function).
        baselines : tensor, ndarray, scalar or None, default None
            None (zeros), a scalar, one example (shared) or one per example.
        additional_forward_args : None
            Only None (the model takes one input).
        n_steps : int, default 50
            Quadrature points.
        method : str, default "gausslegendre"
            "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid" or "gausslegendre".
        internal_batch_size : int, optional
            Bound on the path points evaluated at once (memory).
        attribute_to_neuron_input : bool, default False
            Only False.

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, a function as ``neuron_selector``), and for the
            errors of :func:`swiftattr.neuron_integrated_gradients`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.NeuronIntegratedGradients(net, 0).attribute(x, 1)[0].round(3).tolist()
        [0.0, 1.0, 0.0]
        """
        _require_default("NeuronIntegratedGradients.attribute", additional_forward_args=(additional_forward_args, None),
                         attribute_to_neuron_input=(attribute_to_neuron_input, False))
        if callable(neuron_selector):
            raise _unsupported("NeuronIntegratedGradients.attribute", "neuron_selector", "a function (give an index)")
        inp = _Inputs(inputs, "NeuronIntegratedGradients.attribute")
        layer = self._model.layer_name(self.layer, "NeuronIntegratedGradients")
        out = self._fn("neuron_integrated_gradients")(self.net, inp.array, layer, neuron_selector,
                                                      baselines=_numpy(baselines), n_steps=n_steps, method=method,
                                                      internal_batch_size=internal_batch_size)
        return inp.back(out)


class GuidedBackprop(_Method):
    """Captum's ``GuidedBackprop``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None):
        """Guided backpropagation (Springenberg et al. 2015): the gradient with every ReLU passing back only
        positive gradient where its input was positive.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.guided_backprop`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.GuidedBackprop(net).attribute(x, target=0)[0].tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("GuidedBackprop.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "GuidedBackprop.attribute")
        return inp.back(self._fn("guided_backprop")(self.net, inp.array, target=_target(target, "GuidedBackprop")))


class Deconvolution(_Method):
    """Captum's ``Deconvolution``.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None):
        """Deconvolution (Zeiler & Fergus 2014): the gradient with every ReLU applied to the gradient
        flowing back instead of gated by its input.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets), and for the errors of
            :func:`swiftattr.deconvolution`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> sa.captum.Deconvolution(net).attribute(-x, target=0)[0].tolist()
        [1.0, 2.0, 3.0]
        """
        _require_default("Deconvolution.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "Deconvolution.attribute")
        return inp.back(self._fn("deconvolution")(self.net, inp.array, target=_target(target, "Deconvolution")))


class GuidedGradCam(_Layer):
    """Captum's ``GuidedGradCam``: GradCAM of ``layer`` upsampled to the input, times guided backprop.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).
    layer : torch.nn.Module, str or int
        A module of the model, or (for a Network) a node index or ``named_modules()`` name.
    device_ids : ignored
        Accepted for Captum's signature.

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None, interpolate_mode="nearest",
                  attribute_to_layer_input=False):
        """Guided backpropagation times the ReLU'd GradCAM of the layer upsampled to the input.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        interpolate_mode : {"nearest", "bilinear"}, default "nearest"
            How GradCAM is upsampled.
        attribute_to_layer_input : bool, default False
            Only False (attributions belong to the layer's output).

        Returns
        -------
        tensor or ndarray
            Of the input's shape; a tensor of the input's dtype and device for a tensor input, a numpy array
            for a numpy input; a one-element tuple when the inputs were one.

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, ``attribute_to_layer_input=True``), and for the
            errors of :func:`swiftattr.guided_grad_cam`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Conv2d(np.ones((1, 1, 1, 1), np.float32)), sa.ReLU(), sa.Flatten(),
        ...                      sa.Linear(np.ones((1, 4), np.float32))], input_shape=(1, 2, 2))
        >>> x = np.ones((1, 1, 2, 2), np.float32)
        >>> sa.captum.GuidedGradCam(net, 0).attribute(x, target=0).sum().item()
        4.0
        """
        _require_default("GuidedGradCam.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "GuidedGradCam.attribute")
        layer = self._layer("GuidedGradCam.attribute", attribute_to_layer_input)
        out = self._fn("guided_grad_cam")(self.net, inp.array, layer, target=_target(target, "GuidedGradCam"),
                                          interpolate_mode=interpolate_mode)
        return inp.back(out)


class LRP(_Method):
    """Captum's ``LRP``: the rule of each module is read from its ``rule`` attribute as Captum sets it
    (``EpsilonRule(ε)``, ``GammaRule(γ)``, ``Alpha1_Beta0_Rule``, ``IdentityRule``); modules without one take
    Captum's default, the ε-rule with ε = 1e-9. As in Captum, a rule on a ReLU, Tanh or Dropout is ignored,
    and a γ or α-β rule on a weightless module (a pool) acts as the ε-rule with ε = 1e-9.

    Parameters
    ----------
    forward_func : torch.nn.Module or swiftattr Network
        The model (``model`` or ``model.forward``), converted by :func:`swiftattr.from_torch` and cached;
        a Network is used as it is (then inputs and results are numpy arrays).

    :meth:`attribute` has the arguments and an example.
    """

    def attribute(self, inputs, target=None, additional_forward_args=None, return_convergence_delta=False,
                  verbose=False):
        """Layer-wise relevance propagation (Bach et al. 2015): R = f_t(x) redistributed back to the inputs by
        each module's rule.

        Parameters
        ----------
        inputs : tensor, ndarray or one-element tuple of shape (n, *input_shape)
            The examples (a batch).
        target : int, list of int, 1-D tensor or None, default None
            The output explained: one index, or one per example (None: the only output).
        additional_forward_args : None
            Only None (the model takes one input).
        return_convergence_delta : bool, default False
            Also return the convergence delta per example.
        verbose : bool, default False
            Ignored.

        Returns
        -------
        tensor or ndarray, or (attributions, delta)
            Attributions of the input's shape, in the input's kind (tensor of its dtype and device, numpy array,
            or a one-element tuple when the inputs were one); with ``return_convergence_delta`` also the
            convergence delta, shape (n,).

        Raises
        ------
        SwiftAttrError
            For an argument swiftattr does not support (named in the message: several input tensors,
            ``additional_forward_args``, tuple targets, an unknown rule, ``set_bias_to_zero=True``), and for
            the errors of :func:`swiftattr.lrp`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa, swiftattr.captum
        >>> net = sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32)), sa.ReLU(),
        ...                      sa.Linear(np.array([[1.0, 2.0, 3.0]], np.float32))])
        >>> x = np.ones((2, 3), np.float32)
        >>> phi, delta = sa.captum.LRP(net).attribute(x, target=0, return_convergence_delta=True)
        >>> phi[0].round(3).tolist(), bool(abs(delta).max() < 1e-4)
        ([1.0, 2.0, 3.0], True)
        """
        _require_default("LRP.attribute", additional_forward_args=(additional_forward_args, None))
        inp = _Inputs(inputs, "LRP.attribute")
        plan = _sa.model.network_for(self.net, inp.array)
        rule, epsilon, gamma = _captum_rules(self._model.module, plan) if self._model.module is not None else ({}, {}, {})
        r = self._fn("lrp")(plan, inp.array, target=_target(target, "LRP"), rule=rule or "epsilon",
                            epsilon=epsilon or 1e-9, gamma=gamma or 0.25, return_convergence_delta=return_convergence_delta)
        return _with_delta(inp, r, return_convergence_delta)

    @staticmethod
    def has_convergence_delta() -> bool:
        return True


_WEIGHTED = ("dense", "conv1d", "conv2d")
_PASS_THROUGH = ("relu", "tanh", "dropout", "leaky_relu", "elu", "softplus", "sigmoid")


def _captum_rules(module, plan):
    """({node: rule name}, {node: ε}, {node: γ}) from the ``rule`` attributes Captum users set on modules."""
    from .layers import layer_index

    rules, eps, gam = {}, {}, {}
    kinds = plan.layer_kinds
    for name, mod in module.named_modules():
        rule = getattr(mod, "rule", None)
        if rule is None or name == "":
            continue
        node = layer_index(plan, name)
        kind = kinds[node]
        if kind in _PASS_THROUGH:
            continue
        cls = type(rule).__name__
        weighted = kind in _WEIGHTED
        if cls == "EpsilonRule":
            rules[node], eps[node] = "epsilon", float(getattr(rule, "STABILITY_FACTOR", 1e-9))
        elif cls == "GammaRule":
            if getattr(rule, "set_bias_to_zero", False):
                raise _unsupported("LRP", f"GammaRule(set_bias_to_zero=True) on '{name}'")
            if weighted:
                rules[node], gam[node] = "gamma", float(rule.gamma)
            else:
                rules[node], eps[node] = "epsilon", 1e-9
        elif cls == "Alpha1_Beta0_Rule":
            if getattr(rule, "set_bias_to_zero", False):
                raise _unsupported("LRP", f"Alpha1_Beta0_Rule(set_bias_to_zero=True) on '{name}'")
            rules[node] = "alpha_beta" if weighted else "epsilon"
            if not weighted:
                eps[node] = 1e-9
        elif cls == "IdentityRule":
            rules[node] = "identity"
        else:
            raise _unsupported("LRP", f"rule {cls} on '{name}'")
    return rules, eps, gam

"""Networks: layer constructors named after PyTorch's modules, `Sequential`, save/load and converters."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import _ffi
from ._ffi import SwiftAttrError, check, fptr, lib


def _f32(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float32)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"{name}: cannot convert to a float32 array ({e})") from None
    return arr


def _pair(v, name: str) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise SwiftAttrError(f"{name}: expected an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _single(v, name: str) -> int:
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise SwiftAttrError(f"{name}: expected an int or a 1-tuple, got {v!r}")
        return int(v[0])
    return int(v)


class Layer:
    """Base of the layer descriptions; each knows how to add itself to a C model."""

    kind: str = ""

    def _add(self, handle) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Layer):
    """Dense layer y = W x + b, W of shape (out_features, in_features) as in torch.nn.Linear."""

    kind = "dense"

    def __init__(self, weight, bias=None):
        self.weight = _f32(weight, "Linear weight")
        if self.weight.ndim != 2:
            raise SwiftAttrError(f"Linear weight: expected a 2-D (out_features, in_features) array, got shape {self.weight.shape}")
        self.bias = None if bias is None else _f32(bias, "Linear bias")
        self.out_features, self.in_features = self.weight.shape

    def _add(self, h):
        check(lib.sa_model_add_dense(h, fptr(self.weight), self.out_features, self.in_features, fptr(self.bias)))

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


Dense = Linear


class Conv1d(Layer):
    """1-D convolution, W of shape (out_channels, in_channels, kernel_size)."""

    kind = "conv1d"

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1):
        self.weight = _f32(weight, "Conv1d weight")
        if self.weight.ndim != 3:
            raise SwiftAttrError(f"Conv1d weight: expected (out, in, k), got shape {self.weight.shape}")
        self.bias = None if bias is None else _f32(bias, "Conv1d bias")
        self.stride, self.padding, self.dilation = (_single(stride, "stride"), _single(padding, "padding"), _single(dilation, "dilation"))

    def _add(self, h):
        o, i, k = self.weight.shape
        check(lib.sa_model_add_conv1d(h, fptr(self.weight), o, i, k, fptr(self.bias), self.stride, self.padding, self.dilation))

    def __repr__(self):
        o, i, k = self.weight.shape
        return f"Conv1d({i}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding})"


class Conv2d(Layer):
    """2-D convolution, W of shape (out_channels, in_channels, kh, kw)."""

    kind = "conv2d"

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1):
        self.weight = _f32(weight, "Conv2d weight")
        if self.weight.ndim != 4:
            raise SwiftAttrError(f"Conv2d weight: expected (out, in, kh, kw), got shape {self.weight.shape}")
        self.bias = None if bias is None else _f32(bias, "Conv2d bias")
        self.stride, self.padding, self.dilation = (_pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"))

    def _add(self, h):
        o, i, kh, kw = self.weight.shape
        check(lib.sa_model_add_conv2d(h, fptr(self.weight), o, i, kh, kw, fptr(self.bias), *self.stride, *self.padding, *self.dilation))

    def __repr__(self):
        o, i, kh, kw = self.weight.shape
        return f"Conv2d({i}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding})"


class _Pool1d(Layer):
    _fn = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _single(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _single(stride, "stride")
        self.padding = _single(padding, "padding")

    def _add(self, h):
        check(getattr(lib, self._fn)(h, self.kernel_size, self.stride, self.padding))

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class _Pool2d(Layer):
    _fn = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")

    def _add(self, h):
        check(getattr(lib, self._fn)(h, *self.kernel_size, *self.stride, *self.padding))

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class MaxPool1d(_Pool1d):
    kind, _fn = "maxpool1d", "sa_model_add_maxpool1d"


class MaxPool2d(_Pool2d):
    kind, _fn = "maxpool2d", "sa_model_add_maxpool2d"


class AvgPool1d(_Pool1d):
    kind, _fn = "avgpool1d", "sa_model_add_avgpool1d"


class AvgPool2d(_Pool2d):
    kind, _fn = "avgpool2d", "sa_model_add_avgpool2d"


class GlobalAvgPool(Layer):
    """Mean over all positions of each channel: (C, ...) -> (C,)."""

    kind = "global_avgpool"

    def _add(self, h):
        check(lib.sa_model_add_global_avgpool(h))


class Flatten(Layer):
    kind = "flatten"

    def _add(self, h):
        check(lib.sa_model_add_flatten(h))


class _Activation(Layer):
    param = 0.0

    def _add(self, h):
        check(lib.sa_model_add_activation(h, _ffi.LAYER_KIND[self.kind], float(self.param)))


class ReLU(_Activation):
    kind = "relu"


class LeakyReLU(_Activation):
    kind = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        self.param = negative_slope

    def __repr__(self):
        return f"LeakyReLU({self.param})"


class ELU(_Activation):
    kind = "elu"

    def __init__(self, alpha: float = 1.0):
        self.param = alpha

    def __repr__(self):
        return f"ELU({self.param})"


class Softplus(_Activation):
    kind = "softplus"

    def __init__(self, beta: float = 1.0):
        self.param = beta

    def __repr__(self):
        return f"Softplus(beta={self.param})"


class Sigmoid(_Activation):
    kind = "sigmoid"


class Tanh(_Activation):
    kind = "tanh"


class Softmax(_Activation):
    """Softmax over the example's outputs; allowed as the final layer only."""

    kind = "softmax"


class BatchNorm(Layer):
    """Batch normalisation with inference statistics (torch BatchNorm1d/2d in eval mode)."""

    kind = "batchnorm"

    def __init__(self, running_mean, running_var, weight=None, bias=None, eps: float = 1e-5):
        self.running_mean = _f32(running_mean, "BatchNorm running_mean").ravel()
        self.running_var = _f32(running_var, "BatchNorm running_var").ravel()
        self.weight = None if weight is None else _f32(weight, "BatchNorm weight").ravel()
        self.bias = None if bias is None else _f32(bias, "BatchNorm bias").ravel()
        self.eps = float(eps)
        c = self.running_mean.size
        for name, a in (("running_var", self.running_var), ("weight", self.weight), ("bias", self.bias)):
            if a is not None and a.size != c:
                raise SwiftAttrError(f"BatchNorm {name}: expected {c} values, got {a.size}")

    def _add(self, h):
        c = self.running_mean.size
        check(lib.sa_model_add_batchnorm(h, c, fptr(self.weight), fptr(self.bias), fptr(self.running_mean), fptr(self.running_var), self.eps))

    def __repr__(self):
        return f"BatchNorm({self.running_mean.size}, eps={self.eps})"


BatchNorm1d = BatchNorm
BatchNorm2d = BatchNorm


class Dropout(Layer):
    """Identity at inference."""

    kind = "dropout"

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def _add(self, h):
        check(lib.sa_model_add_dropout(h, self.p))

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Network:
    """A network held by libswiftattr (an immutable `sa_model`). Build with :func:`Sequential`,
    :func:`from_torch`, :func:`from_sklearn` or :func:`load`."""

    def __init__(self, handle, layers: Optional[list] = None):
        self._handle = ctypes.c_void_p(handle) if not isinstance(handle, ctypes.c_void_p) else handle
        self.layers = layers
        shape = (ctypes.c_int64 * 3)()
        ndim = ctypes.c_int64()
        check(lib.sa_model_input_shape(self._handle, shape, ctypes.byref(ndim)))
        self.input_shape = tuple(shape[i] for i in range(ndim.value))
        count = ctypes.c_int64()
        check(lib.sa_model_num_layers(self._handle, ctypes.byref(count)))
        self.num_layers = count.value
        self.layer_kinds = []
        for i in range(self.num_layers):
            k = ctypes.c_int32()
            check(lib.sa_model_layer_kind(self._handle, i, ctypes.byref(k)))
            self.layer_kinds.append(_ffi.LAYER_KINDS[k.value])
        self._sizes = []
        for i in range(self.num_layers + 1):
            s = ctypes.c_int64()
            check(lib.sa_model_size_at(self._handle, i, ctypes.byref(s)))
            self._sizes.append(s.value)
        self.input_size = self._sizes[0]
        self.output_size = self._sizes[-1]

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h is not None and h.value:
            lib.sa_model_free(h)
            self._handle = None

    def __repr__(self):
        body = ", ".join(repr(l) for l in self.layers) if self.layers else ", ".join(self.layer_kinds)
        return f"Network(input_shape={self.input_shape}, [{body}])"

    # -- inputs ------------------------------------------------------------------------------------
    def _batch(self, x, name: str = "inputs") -> np.ndarray:
        """`x` as a float32 C-contiguous batch of the input shape (copied only when needed)."""
        arr = _f32(x, name)
        if arr.shape[1:] != self.input_shape:
            if arr.shape == self.input_shape:
                raise SwiftAttrError(
                    f"{name}: got one example of shape {arr.shape}; pass a batch of shape (n, {', '.join(map(str, self.input_shape))})")
            raise SwiftAttrError(f"{name}: expected shape (n, {', '.join(map(str, self.input_shape))}), got {arr.shape}")
        if arr.shape[0] == 0:
            raise SwiftAttrError(f"{name}: the batch is empty")
        return arr

    def forward(self, x) -> np.ndarray:
        """Outputs for a batch: shape (n, output_size)."""
        x = self._batch(x)
        out = np.empty((x.shape[0], self.output_size), dtype=np.float32)
        check(lib.sa_forward(self._handle, fptr(x), x.shape[0], fptr(out)))
        return out

    __call__ = forward

    def activations(self, x, layer: int) -> np.ndarray:
        """Values at the input of layer ``layer`` (``layer == num_layers``: the output), flattened per example."""
        x = self._batch(x)
        if not 0 <= layer <= self.num_layers:
            raise SwiftAttrError(f"layer = {layer} is out of range 0...{self.num_layers}")
        out = np.empty((x.shape[0], self._sizes[layer]), dtype=np.float32)
        check(lib.sa_forward_to_layer(self._handle, fptr(x), x.shape[0], layer, fptr(out)))
        return out

    def penultimate(self, x) -> np.ndarray:
        """The input of the network's final Linear layer (n × h): the features a Bayesian last layer uses."""
        dense = [i for i, k in enumerate(self.layer_kinds) if k == "dense"]
        if not dense:
            raise SwiftAttrError("model: penultimate features need a final Linear layer, and this model has none")
        return self.activations(x, dense[-1])

    def save(self, path) -> None:
        """Writes the model file (see swiftattr.h, sa_model_save); `swiftattr.load` reads it back."""
        check(lib.sa_model_save(self._handle, os.fsencode(os.fspath(path))))


def Sequential(layers: Sequence[Layer], input_shape: Optional[Sequence[int]] = None) -> Network:
    """A network of ``layers`` in order. ``input_shape`` (per example, e.g. ``(1, 28, 28)``) may be omitted when
    the first layer with parameters is a Linear layer preceded only by elementwise layers."""
    layers = list(layers)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise SwiftAttrError(f"layers[{i}]: expected a swiftattr layer (sa.Linear, sa.ReLU, ...), got {type(layer).__name__}")
    if input_shape is None:
        first = next((l for l in layers if not isinstance(l, (_Activation, Dropout))), None)
        if isinstance(first, Linear):
            input_shape = (first.in_features,)
        else:
            raise SwiftAttrError("input_shape is required unless the first layer with parameters is Linear "
                                 "(e.g. Sequential([...], input_shape=(1, 28, 28)))")
    shape = np.ascontiguousarray([int(d) for d in input_shape], dtype=np.int64)
    handle = ctypes.c_void_p()
    check(lib.sa_model_create(_ffi.iptr(shape), shape.size, ctypes.byref(handle)))
    try:
        for layer in layers:
            layer._add(handle)
    except BaseException:
        lib.sa_model_free(handle)
        raise
    return Network(handle, layers)


def load(path) -> Network:
    """Reads a model file written by ``Network.save`` or ``sa_model_save``."""
    handle = ctypes.c_void_p()
    check(lib.sa_model_load(os.fsencode(os.fspath(path)), ctypes.byref(handle)))
    return Network(handle)

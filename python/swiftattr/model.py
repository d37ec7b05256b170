"""Networks: layer constructors named after PyTorch's modules, `Sequential`, save/load and converters."""
from __future__ import annotations

import copy
import ctypes
import os
import tempfile
import threading
from typing import Optional, Sequence

import numpy as np

from . import _ffi
from ._args import SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, as_f32, as_float, as_int, as_ints, as_path, as_shape, expect_shape
from ._ffi import SwiftAttrError, check, fptr, iptr, lib
from ._progress import long_call


def _weight(value, ndim: int, name: str, layout: str) -> np.ndarray:
    """A float32 weight array of ``ndim`` dimensions laid out as ``layout``."""
    w = as_f32(value, name)
    if w.ndim != ndim:
        raise SwiftAttrError(f"{name}: expected a {ndim}-D {layout} array, got shape {w.shape}", SA_ERR_SHAPE)
    return w


def _vector(value, size: int, name: str, what: str) -> Optional[np.ndarray]:
    """None, or a float32 array of shape (size,): C reads exactly ``size`` floats from its pointer."""
    return None if value is None else expect_shape(as_f32(value, name), (size,), name, what)


class Layer:
    """Base of the layer descriptions; each knows how to add itself to a C model.

    A layer is a plain description (its weights as float32 numpy arrays); it becomes part of a network when
    :func:`Sequential` or :meth:`Graph.build` adds it to a C model. ``kind`` names the node kind in the
    library (``net.layer_kinds``).

    Examples
    --------
    >>> import swiftattr as sa
    >>> from swiftattr.model import Layer
    >>> isinstance(sa.ReLU(), Layer), sa.ReLU().kind
    (True, 'relu')
    """

    kind: str = ""

    def _add(self, handle) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Layer):
    """Dense layer ``y = W x + b``, W of shape (out_features, in_features) as in torch.nn.Linear.

    Parameters
    ----------
    weight : array-like, shape (out_features, in_features)
        W (converted to float32).
    bias : array-like, shape (out_features,), optional
        b; None (the default) means zeros.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``weight`` is not 2-D or ``bias`` does not hold ``out_features`` values;
        ``SA_ERR_INVALID_ARGUMENT`` when either cannot be converted to float32.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> layer = sa.Linear(np.ones((2, 3)), bias=[0.5, -0.5])
    >>> layer.in_features, layer.out_features
    (3, 2)
    >>> sa.Sequential([layer]).forward(np.ones((1, 3))).tolist()
    [[3.5, 2.5]]
    """

    kind = "dense"

    def __init__(self, weight, bias=None):
        self.weight = _weight(weight, 2, "Linear weight", "(out_features, in_features)")
        self.out_features, self.in_features = self.weight.shape
        self.bias = _vector(bias, self.out_features, "Linear bias", "one per output feature")

    def _add(self, h):
        check(lib.sa_model_add_dense(h, fptr(self.weight), self.out_features, self.in_features, fptr(self.bias)))

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


Dense = Linear


class Conv1d(Layer):
    """1-D convolution (torch.nn.Conv1d, groups 1, zero padding), W of shape (out_channels, in_channels, kernel_size).

    Reads (in_channels, L) per example and writes (out_channels, L_out) with
    ``L_out = (L + 2·padding − dilation·(kernel_size − 1) − 1) // stride + 1``.

    Parameters
    ----------
    weight : array-like, shape (out_channels, in_channels, kernel_size)
    bias : array-like, shape (out_channels,), optional
        None (the default) means zeros.
    stride, padding, dilation : int or sequence of one int, optional
        Defaults 1, 0 and 1.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``weight`` is not 3-D or ``bias`` has the wrong size; ``SA_ERR_INVALID_ARGUMENT``
        when stride, padding or dilation is not an int; the C library checks their ranges when the network is built.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Conv1d(np.ones((2, 1, 3)), padding=1)], input_shape=(1, 5))
    >>> net.output_shape
    (2, 5)
    >>> net.forward(np.ones((1, 1, 5)))[0, 0].tolist()
    [2.0, 3.0, 3.0, 3.0, 2.0]
    """

    kind = "conv1d"

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1):
        self.weight = _weight(weight, 3, "Conv1d weight", "(out_channels, in_channels, kernel_size)")
        self.bias = _vector(bias, self.weight.shape[0], "Conv1d bias", "one per output channel")
        (self.stride,), (self.padding,), (self.dilation,) = (as_ints(stride, 1, "stride"), as_ints(padding, 1, "padding"),
                                                             as_ints(dilation, 1, "dilation"))

    def _add(self, h):
        o, i, k = self.weight.shape
        check(lib.sa_model_add_conv1d(h, fptr(self.weight), o, i, k, fptr(self.bias), self.stride, self.padding, self.dilation))

    def __repr__(self):
        o, i, k = self.weight.shape
        return f"Conv1d({i}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding})"


class Conv2d(Layer):
    """2-D convolution (torch.nn.Conv2d, groups 1, zero padding), W of shape (out_channels, in_channels, kh, kw).

    Reads (in_channels, H, W) per example and writes (out_channels, H_out, W_out), each output size as for
    :class:`Conv1d` per axis.

    Parameters
    ----------
    weight : array-like, shape (out_channels, in_channels, kh, kw)
    bias : array-like, shape (out_channels,), optional
        None (the default) means zeros.
    stride, padding, dilation : int or pair of ints, optional
        Defaults 1, 0 and 1 (an int applies to both axes).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``weight`` is not 4-D or ``bias`` has the wrong size; ``SA_ERR_INVALID_ARGUMENT``
        when stride, padding or dilation is neither an int nor a pair of ints.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Conv2d(np.ones((4, 3, 3, 3)), stride=2, padding=1)], input_shape=(3, 8, 8))
    >>> net.output_shape
    (4, 4, 4)
    >>> float(net.forward(np.ones((1, 3, 8, 8)))[0, 0, 1, 1])
    27.0
    """

    kind = "conv2d"

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1):
        self.weight = _weight(weight, 4, "Conv2d weight", "(out_channels, in_channels, kh, kw)")
        self.bias = _vector(bias, self.weight.shape[0], "Conv2d bias", "one per output channel")
        self.stride, self.padding, self.dilation = (as_ints(stride, 2, "stride"), as_ints(padding, 2, "padding"),
                                                    as_ints(dilation, 2, "dilation"))

    def _add(self, h):
        o, i, kh, kw = self.weight.shape
        check(lib.sa_model_add_conv2d(h, fptr(self.weight), o, i, kh, kw, fptr(self.bias), *self.stride, *self.padding, *self.dilation))

    def __repr__(self):
        o, i, kh, kw = self.weight.shape
        return f"Conv2d({i}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding})"


class _Pool1d(Layer):
    _fn = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        (self.kernel_size,) = as_ints(kernel_size, 1, "kernel_size")
        self.stride = self.kernel_size if stride is None else as_ints(stride, 1, "stride")[0]
        (self.padding,) = as_ints(padding, 1, "padding")

    def _add(self, h):
        check(getattr(lib, self._fn)(h, self.kernel_size, self.stride, self.padding))

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class _Pool2d(Layer):
    _fn = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = as_ints(kernel_size, 2, "kernel_size")
        self.stride = self.kernel_size if stride is None else as_ints(stride, 2, "stride")
        self.padding = as_ints(padding, 2, "padding")

    def _add(self, h):
        check(getattr(lib, self._fn)(h, *self.kernel_size, *self.stride, *self.padding))

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class MaxPool1d(_Pool1d):
    """1-D max pooling (torch.nn.MaxPool1d without dilation or ceil_mode): the maximum of each window.

    Parameters
    ----------
    kernel_size : int
    stride : int, optional
        None (the default) means ``kernel_size``.
    padding : int, optional
        Default 0 (padded positions never win the maximum).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when an argument is not an int.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.MaxPool1d(2)], input_shape=(1, 4))
    >>> net.forward(np.array([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
    [[[3.0, 2.0]]]
    """

    kind, _fn = "maxpool1d", "sa_model_add_maxpool1d"


class MaxPool2d(_Pool2d):
    """2-D max pooling (torch.nn.MaxPool2d without dilation or ceil_mode): the maximum of each window.

    Parameters
    ----------
    kernel_size : int or pair of ints
    stride : int or pair of ints, optional
        None (the default) means ``kernel_size``.
    padding : int or pair of ints, optional
        Default 0.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when an argument is neither an int nor a pair of ints.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.MaxPool2d(2)], input_shape=(1, 4, 4))
    >>> net.output_shape
    (1, 2, 2)
    >>> float(net.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0, 1, 1])
    15.0
    """

    kind, _fn = "maxpool2d", "sa_model_add_maxpool2d"


class AvgPool1d(_Pool1d):
    """1-D average pooling (torch.nn.AvgPool1d, count_include_pad=True): the mean of each window.

    Parameters
    ----------
    kernel_size : int
    stride : int, optional
        None (the default) means ``kernel_size``.
    padding : int, optional
        Default 0; padded zeros count in the mean.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when an argument is not an int.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.AvgPool1d(2)], input_shape=(1, 4))
    >>> net.forward(np.array([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
    [[[2.0, 1.0]]]
    """

    kind, _fn = "avgpool1d", "sa_model_add_avgpool1d"


class AvgPool2d(_Pool2d):
    """2-D average pooling (torch.nn.AvgPool2d, count_include_pad=True): the mean of each window.

    Parameters
    ----------
    kernel_size : int or pair of ints
    stride : int or pair of ints, optional
        None (the default) means ``kernel_size``.
    padding : int or pair of ints, optional
        Default 0; padded zeros count in the mean.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when an argument is neither an int nor a pair of ints.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.AvgPool2d(2)], input_shape=(1, 4, 4))
    >>> float(net.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0, 0, 0])
    2.5
    """

    kind, _fn = "avgpool2d", "sa_model_add_avgpool2d"


class GlobalAvgPool(Layer):
    """Mean over all positions of each channel: (C, ...) -> (C,) (torch's AdaptiveAvgPool2d(1) then flatten).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.GlobalAvgPool()], input_shape=(2, 2, 2))
    >>> net.output_shape
    (2,)
    >>> net.forward(np.arange(8.0).reshape(1, 2, 2, 2)).tolist()
    [[1.5, 5.5]]
    """

    kind = "global_avgpool"

    def _add(self, h):
        check(lib.sa_model_add_global_avgpool(h))


class Flatten(Layer):
    """Flattens each example to one axis (torch.nn.Flatten(start_dim=1)): (C, H, W) -> (C·H·W,).

    Examples
    --------
    >>> import swiftattr as sa
    >>> sa.Sequential([sa.Flatten()], input_shape=(2, 3, 4)).output_shape
    (24,)
    """

    kind = "flatten"

    def _add(self, h):
        check(lib.sa_model_add_flatten(h))


class Reshape(Layer):
    """Views each example under another shape of equal size (``nn.Unflatten``, ``x.view(N, C, H, W)``).

    Parameters
    ----------
    shape : sequence of int
        The new per-example shape (without the batch); its product must equal the value's size (checked
        when the network is built).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``shape`` is not a sequence of integers.

    Examples
    --------
    >>> import swiftattr as sa
    >>> sa.Sequential([sa.Reshape((2, 3))], input_shape=(6,)).output_shape
    (2, 3)
    """

    kind = "reshape"

    def __init__(self, shape):
        self.shape = as_shape(shape, "shape")

    def _add(self, h):
        dims = np.ascontiguousarray(self.shape, dtype=np.int64)
        check(lib.sa_model_add_reshape(h, iptr(dims), len(self.shape)))

    def __repr__(self):
        return f"Reshape({self.shape})"


class _Activation(Layer):
    param = 0.0

    def _add(self, h):
        check(lib.sa_model_add_activation(h, _ffi.LAYER_KIND[self.kind], self.param))


class ReLU(_Activation):
    """Elementwise ``max(x, 0)`` (torch.nn.ReLU).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> sa.Sequential([sa.ReLU()], input_shape=(3,)).forward(np.array([[-1.0, 0.0, 2.0]])).tolist()
    [[0.0, 0.0, 2.0]]
    """

    kind = "relu"


class LeakyReLU(_Activation):
    """Elementwise ``x`` for x > 0, ``negative_slope · x`` otherwise (torch.nn.LeakyReLU).

    Parameters
    ----------
    negative_slope : float, optional
        Default 0.01.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``negative_slope`` is not a number.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> sa.Sequential([sa.LeakyReLU(0.5)], input_shape=(2,)).forward(np.array([[-2.0, 2.0]])).tolist()
    [[-1.0, 2.0]]
    """

    kind = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        self.param = as_float(negative_slope, "LeakyReLU negative_slope")

    def __repr__(self):
        return f"LeakyReLU({self.param})"


class ELU(_Activation):
    """Elementwise ``x`` for x > 0, ``alpha · (exp(x) − 1)`` otherwise (torch.nn.ELU).

    Parameters
    ----------
    alpha : float, optional
        Default 1.0.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``alpha`` is not a number.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> y = sa.Sequential([sa.ELU()], input_shape=(2,)).forward(np.array([[-1.0, 2.0]]))
    >>> round(float(y[0, 0]), 3), float(y[0, 1])
    (-0.632, 2.0)
    """

    kind = "elu"

    def __init__(self, alpha: float = 1.0):
        self.param = as_float(alpha, "ELU alpha")

    def __repr__(self):
        return f"ELU({self.param})"


class Softplus(_Activation):
    """Elementwise ``log(1 + exp(beta · x)) / beta`` (torch.nn.Softplus), a smooth ReLU.

    Parameters
    ----------
    beta : float, optional
        Default 1.0; larger values approach ReLU.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``beta`` is not a number.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> y = sa.Sequential([sa.Softplus()], input_shape=(1,)).forward(np.zeros((1, 1)))
    >>> round(float(y[0, 0]), 3)
    0.693
    """

    kind = "softplus"

    def __init__(self, beta: float = 1.0):
        self.param = as_float(beta, "Softplus beta")

    def __repr__(self):
        return f"Softplus(beta={self.param})"


class Sigmoid(_Activation):
    """Elementwise ``1 / (1 + exp(−x))`` (torch.nn.Sigmoid).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> sa.Sequential([sa.Sigmoid()], input_shape=(1,)).forward(np.zeros((1, 1))).tolist()
    [[0.5]]
    """

    kind = "sigmoid"


class Tanh(_Activation):
    """Elementwise ``tanh(x)`` (torch.nn.Tanh).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> y = sa.Sequential([sa.Tanh()], input_shape=(1,)).forward(np.ones((1, 1)))
    >>> round(float(y[0, 0]), 3)
    0.762
    """

    kind = "tanh"


class Softmax(_Activation):
    """Softmax over the example's outputs, ``exp(z_i) / Σ_j exp(z_j)``; allowed as the final layer only.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when the network is built with a node after it.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> p = sa.Sequential([sa.Linear(np.eye(3)), sa.Softmax()]).forward(np.array([[1.0, 1.0, 1.0]]))
    >>> p.shape, round(float(p.sum()), 3)
    ((1, 3), 1.0)
    """

    kind = "softmax"


class BatchNorm(Layer):
    """Batch normalisation with inference statistics (torch BatchNorm1d/2d in eval mode):
    ``y = weight · (x − running_mean) / √(running_var + eps) + bias`` per channel (per feature of a flat value).

    Parameters
    ----------
    running_mean : array-like, shape (C,)
    running_var : array-like, shape (C,)
    weight : array-like, shape (C,), optional
        gamma; None (the default) means ones.
    bias : array-like, shape (C,), optional
        beta; None (the default) means zeros.
    eps : float, optional
        Default 1e-5.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``running_mean`` is not 1-D or another array does not hold C values.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> bn = sa.BatchNorm(running_mean=[1.0, 0.0], running_var=[4.0, 1.0], eps=0.0)
    >>> sa.Sequential([bn], input_shape=(2,)).forward(np.array([[3.0, 2.0]])).tolist()
    [[1.0, 2.0]]
    """

    kind = "batchnorm"

    def __init__(self, running_mean, running_var, weight=None, bias=None, eps: float = 1e-5):
        self.running_mean = _weight(running_mean, 1, "BatchNorm running_mean", "per-channel")
        c = self.running_mean.size
        self.running_var = _vector(running_var, c, "BatchNorm running_var", "one per channel")
        self.weight = _vector(weight, c, "BatchNorm weight", "one per channel")
        self.bias = _vector(bias, c, "BatchNorm bias", "one per channel")
        self.eps = as_float(eps, "BatchNorm eps")

    def _add(self, h):
        c = self.running_mean.size
        check(lib.sa_model_add_batchnorm(h, c, fptr(self.weight), fptr(self.bias), fptr(self.running_mean), fptr(self.running_var), self.eps))

    def __repr__(self):
        return f"BatchNorm({self.running_mean.size}, eps={self.eps})"


BatchNorm1d = BatchNorm
BatchNorm2d = BatchNorm


class Dropout(Layer):
    """Dropout (torch.nn.Dropout): the identity at inference, so attributions see the evaluated network.

    Parameters
    ----------
    p : float, optional
        The drop probability, default 0.5 (recorded, not applied).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``p`` is not a number.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> sa.Sequential([sa.Dropout(0.3)], input_shape=(2,)).forward(np.array([[1.0, 2.0]])).tolist()
    [[1.0, 2.0]]
    """

    kind = "dropout"

    def __init__(self, p: float = 0.5):
        self.p = as_float(p, "Dropout p")

    def _add(self, h):
        check(lib.sa_model_add_dropout(h, self.p))

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Embedding(Layer):
    """Token ids → vectors (torch.nn.Embedding): ``weight`` of shape (num_embeddings, embedding_dim). Only as
    the first layer of a network whose input shape is (L,): the ids (integers in [0, num_embeddings), passed
    as any integer or float array) are checked by every call. Attributions of such a token network are taken
    at the embedding output and, by default, summed over the embedding axis (one value per token; see
    ``sum_embedding`` in :func:`integrated_gradients`).

    Parameters
    ----------
    weight : array-like, shape (num_embeddings, embedding_dim)
        Row t is the vector of token t.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``weight`` is not 2-D; every call reading ids outside [0, num_embeddings) (or not
        integers) raises ``SA_ERR_OUT_OF_RANGE``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Embedding(np.arange(6.0).reshape(3, 2)), sa.Flatten()], input_shape=(2,))
    >>> net.is_token_model, net.forward(np.array([[2, 0]])).tolist()
    (True, [[4.0, 5.0, 0.0, 1.0]])
    """

    kind = "embedding"

    def __init__(self, weight):
        self.weight = _weight(weight, 2, "Embedding weight", "(num_embeddings, embedding_dim)")
        self.num_embeddings, self.embedding_dim = self.weight.shape

    def _add(self, h):
        check(lib.sa_model_add_embedding(h, fptr(self.weight), self.num_embeddings, self.embedding_dim))

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


class LSTM(Layer):
    """One-layer unidirectional batch-first LSTM in torch.nn.LSTM's layout and gate order (i, f, g, o):
    ``weight_ih`` (4·hidden_size, input_size), ``weight_hh`` (4·hidden_size, hidden_size), ``bias_ih`` and
    ``bias_hh`` (4·hidden_size,) or None (zeros). Reads (L, input_size) per example; writes the last hidden
    state (hidden_size,) — torch's ``output[:, -1]`` or ``h_n[-1]`` — or, with ``return_sequences``, every
    hidden state (L, hidden_size), torch's ``output``. The initial states are zero.

    Parameters
    ----------
    weight_ih : array-like, shape (4·hidden_size, input_size)
    weight_hh : array-like, shape (4·hidden_size, hidden_size)
    bias_ih, bias_hh : array-like, shape (4·hidden_size,), optional
        None (the default) means zeros.
    return_sequences : bool, optional
        Default False (the last hidden state only).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when the weight shapes disagree or a bias has not 4·hidden_size values;
        ``SA_ERR_INVALID_ARGUMENT`` when ``return_sequences`` is not a bool.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> lstm = sa.LSTM(rng.normal(size=(12, 2)), rng.normal(size=(12, 3)))
    >>> sa.Sequential([lstm], input_shape=(5, 2)).output_shape
    (3,)
    >>> sa.Sequential([sa.LSTM(lstm.weight_ih, lstm.weight_hh, return_sequences=True)], input_shape=(5, 2)).output_shape
    (5, 3)
    """

    kind = "lstm"

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None, return_sequences: bool = False):
        self.weight_ih = _weight(weight_ih, 2, "LSTM weight_ih", "(4*hidden_size, input_size)")
        self.weight_hh = _weight(weight_hh, 2, "LSTM weight_hh", "(4*hidden_size, hidden_size)")
        g, self.input_size = self.weight_ih.shape
        self.hidden_size = self.weight_hh.shape[1]
        if g != 4 * self.hidden_size or self.weight_hh.shape[0] != g:
            raise SwiftAttrError(f"LSTM weights: weight_ih {self.weight_ih.shape} and weight_hh {self.weight_hh.shape} must be "
                                 f"(4*hidden_size, input_size) and (4*hidden_size, hidden_size)", SA_ERR_SHAPE)
        self.bias_ih = _vector(bias_ih, g, "LSTM bias_ih", "4*hidden_size values")
        self.bias_hh = _vector(bias_hh, g, "LSTM bias_hh", "4*hidden_size values")
        if not isinstance(return_sequences, (bool, np.bool_)):
            raise SwiftAttrError(f"LSTM return_sequences: expected True or False, got {return_sequences!r}")
        self.return_sequences = bool(return_sequences)

    def _add(self, h):
        check(lib.sa_model_add_lstm(h, fptr(self.weight_ih), fptr(self.weight_hh), fptr(self.bias_ih), fptr(self.bias_hh),
                                    self.input_size, self.hidden_size, int(self.return_sequences)))

    def __repr__(self):
        return f"LSTM({self.input_size}, {self.hidden_size}, return_sequences={self.return_sequences})"


class Add(Layer):
    """Elementwise sum of two or more values of one shape (a residual connection). Graph only: give its
    inputs to :meth:`Graph.add`.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when used in :func:`Sequential` (it reads several values) or given fewer
        than two inputs; the C library rejects inputs of different shapes (``SA_ERR_SHAPE``).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> g = sa.Graph(input_shape=(2,))
    >>> h = g.add(sa.Linear(2 * np.eye(2)))
    >>> s = g.add(sa.Add(), [h, g.input])
    >>> g.build().forward(np.array([[1.0, 2.0]])).tolist()
    [[3.0, 6.0]]
    """

    kind = "add"

    def _add(self, h):
        raise SwiftAttrError("Add reads several values: add it to a sa.Graph with its inputs")


class Concat(Layer):
    """Concatenation of two or more values along the first per-example axis (features of (F,) values,
    channels of (C, L) and (C, H, W) values). Graph only: give its inputs to :meth:`Graph.add`.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when used in :func:`Sequential` or given fewer than two inputs; the C library
        rejects values whose other axes differ (``SA_ERR_SHAPE``).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> g = sa.Graph(input_shape=(2,))
    >>> h = g.add(sa.ReLU())
    >>> c = g.add(sa.Concat(), [g.input, h])
    >>> net = g.build()
    >>> net.output_shape, net.forward(np.array([[-1.0, 2.0]])).tolist()
    ((4,), [[-1.0, 2.0, 0.0, 2.0]])
    """

    kind = "concat"

    def _add(self, h):
        raise SwiftAttrError("Concat reads several values: add it to a sa.Graph with its inputs")


class _Model:
    """Owns one C handle and frees it exactly once, when the last Network holding it goes.

    A built model is immutable and safe to use from any number of threads, so shallow copies of a Network
    share one owner; nothing else ever frees the handle."""

    __slots__ = ("handle",)

    def __init__(self, handle: ctypes.c_void_p):
        self.handle = handle

    def __del__(self, _free=lib.sa_model_free):
        # `_free` is bound at class creation: at interpreter exit the module's globals may already be gone.
        h, self.handle = self.handle, None
        if h is not None and h.value:
            _free(h)

    def __copy__(self):  # immutable: a copy is the same owner
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("a swiftattr model handle cannot be pickled; pickle the Network (it carries the model bytes)")


class Network:
    """A network held by libswiftattr (an immutable `sa_model`). Build with :func:`Sequential`,
    :func:`from_torch`, :func:`from_sklearn` or :func:`load`.

    A Network is a value: ``copy.copy`` shares the immutable model, ``copy.deepcopy`` makes a model of its
    own, and a pickle carries the model bytes (the file :meth:`save` writes), so networks travel to process
    pools, Dask and Ray. Unpickled networks have ``layers = None``, as after :func:`load`.

    Parameters
    ----------
    handle : ctypes.c_void_p or int
        An ``sa_model *`` the Network takes ownership of (freed when the last copy goes).
    layers : list of Layer, optional
        The layer descriptions it was built from.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        Per-example shapes (without the batch).
    input_size, output_size : int
        Their products.
    num_layers : int
        The number of nodes; ``layer_kinds`` names each, ``node_inputs[i]`` lists the values node i reads.
    layers : list of Layer or None
        The layer descriptions it was built from (None after :func:`load` or unpickling).

    Examples
    --------
    >>> import copy, pickle, numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.ones((3, 4))), sa.ReLU(), sa.Linear(np.ones((2, 3)))])
    >>> net.input_shape, net.output_shape, net.layer_kinds
    ((4,), (2,), ['dense', 'relu', 'dense'])
    >>> net.node_inputs
    [(0,), (1,), (2,)]
    >>> pickle.loads(pickle.dumps(net)).forward(np.ones((1, 4))).tolist()
    [[12.0, 12.0]]
    """

    def __init__(self, handle, layers: Optional[list] = None):
        self._model = _Model(handle if isinstance(handle, ctypes.c_void_p) else ctypes.c_void_p(handle))
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
            self.layer_kinds.append(_ffi.LAYER_NAME[k.value])
        self._sizes = []
        for i in range(self.num_layers + 1):
            s = ctypes.c_int64()
            check(lib.sa_model_size_at(self._handle, i, ctypes.byref(s)))
            self._sizes.append(s.value)
        self.input_size = self._sizes[0]
        self.output_size = self._sizes[-1]
        check(lib.sa_model_shape_at(self._handle, self.num_layers, shape, ctypes.byref(ndim)))
        self.output_shape = tuple(shape[i] for i in range(ndim.value))
        self.node_inputs = []
        reads = (ctypes.c_int64 * 8)()
        for i in range(self.num_layers):
            n = ctypes.c_int64()
            status = lib.sa_model_node_inputs(self._handle, i, reads, len(reads), ctypes.byref(n))
            if status == _ffi.SA_ERR_BUFFER_TOO_SMALL:  # n holds the count; nodes reading more than 8 values are rare
                reads = (ctypes.c_int64 * n.value)()
                status = lib.sa_model_node_inputs(self._handle, i, reads, len(reads), ctypes.byref(n))
            check(status)
            self.node_inputs.append(tuple(reads[k] for k in range(n.value)))

    @property
    def _handle(self) -> ctypes.c_void_p:
        """The C handle, owned by ``self._model``: pass it to C, never keep it beyond the Network."""
        return self._model.handle

    def __repr__(self):
        body = ", ".join(repr(l) for l in self.layers) if self.layers else ", ".join(self.layer_kinds)
        return f"Network(input_shape={self.input_shape}, [{body}])"

    # -- copies and pickles ------------------------------------------------------------------------
    def __copy__(self):
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)  # shares the owner of the (immutable) model
        return other

    def __deepcopy__(self, memo):
        other = _network_from_model_bytes(self._model_bytes())
        memo[id(self)] = other
        for key, value in self.__dict__.items():
            if key != "_model":
                other.__dict__[key] = copy.deepcopy(value, memo)
        return other

    def __reduce__(self):
        # A converted torch model's module names (layer attributions) travel with it.
        names = self.__dict__.get("node_names")
        return _network_from_model_bytes, (self._model_bytes(),), ({"node_names": names} if names else None)

    def _model_bytes(self) -> bytes:
        """The model file :meth:`save` writes, as bytes (through a private temporary directory)."""
        with tempfile.TemporaryDirectory(prefix="swiftattr-") as d:
            path = os.path.join(d, "model.sam")
            self.save(path)
            with open(path, "rb") as f:
                return f.read()

    # -- inputs ------------------------------------------------------------------------------------
    def _batch(self, x, name: str = "inputs") -> np.ndarray:
        """`x` (an array-like or a torch tensor) as a float32 C-contiguous batch of the input shape (copied only
        when needed)."""
        arr = as_f32(x, name)
        if arr.shape[1:] != self.input_shape:
            if arr.shape == self.input_shape:
                raise SwiftAttrError(
                    f"{name}: got one example of shape {arr.shape}; pass a batch of shape (n, {', '.join(map(str, self.input_shape))})",
                    SA_ERR_SHAPE)
            raise SwiftAttrError(f"{name}: expected shape (n, {', '.join(map(str, self.input_shape))}), got {arr.shape}", SA_ERR_SHAPE)
        if arr.shape[0] == 0:
            raise SwiftAttrError(f"{name}: the batch is empty")
        return arr

    @long_call
    def forward(self, x) -> np.ndarray:
        """Outputs for a batch (a numpy array, array-like or torch tensor): a numpy array of shape
        (n, *output_shape), e.g. (n, classes), or (n, C, H, W) for a network whose output is an image.

        Parameters
        ----------
        x : array-like or torch.Tensor, shape (n, *input_shape)
            n >= 1 examples (converted to float32).

        Returns
        -------
        numpy.ndarray, float32, shape (n, *output_shape)

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_SHAPE`` when ``x`` is not a batch of the input shape (one example without the batch axis
            included); ``SA_ERR_INVALID_ARGUMENT`` for an empty batch.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((2, 3)))])
        >>> net.forward(np.ones((4, 3))).shape
        (4, 2)
        >>> net(np.ones((1, 3))).tolist()
        [[3.0, 3.0]]
        """
        x = self._batch(x)
        out = np.empty((x.shape[0],) + self.output_shape, dtype=np.float32)
        check(lib.sa_forward(self._handle, fptr(x), x.shape[0], fptr(out)))
        return out

    __call__ = forward

    def activations(self, x, layer: int) -> np.ndarray:
        """Value ``layer`` (0: the input, ``j + 1``: the output of node ``j``, ``num_layers``: the output; in a
        chain, the input of layer ``layer``), flattened per example.

        Parameters
        ----------
        x : array-like, shape (n, *input_shape)
        layer : int
            A value number in 0..num_layers.

        Returns
        -------
        numpy.ndarray, float32, shape (n, size of value ``layer``)

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_OUT_OF_RANGE`` when ``layer`` is outside 0..num_layers; ``SA_ERR_SHAPE`` as :meth:`forward`.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(-np.ones((3, 2))), sa.ReLU(), sa.Linear(np.ones((1, 3)))])
        >>> net.activations(np.ones((1, 2)), 1).tolist(), net.activations(np.ones((1, 2)), 2).tolist()
        ([[-2.0, -2.0, -2.0]], [[0.0, 0.0, 0.0]])
        """
        x = self._batch(x)
        layer = as_int(layer, "layer")
        if not 0 <= layer <= self.num_layers:  # checked here too: the output buffer's size depends on it
            raise SwiftAttrError(f"layer = {layer} is out of range 0...{self.num_layers}", SA_ERR_OUT_OF_RANGE)
        out = np.empty((x.shape[0], self._sizes[layer]), dtype=np.float32)
        check(lib.sa_forward_to_layer(self._handle, fptr(x), x.shape[0], layer, fptr(out)))
        return out

    # -- token networks (an Embedding first) ---------------------------------------------------------
    @property
    def is_token_model(self) -> bool:
        """True when node 0 is an Embedding: the inputs are token ids of shape (n, L).

        >>> import numpy as np, swiftattr as sa
        >>> sa.Sequential([sa.Linear(np.ones((1, 2)))]).is_token_model
        False
        """
        return bool(self.layer_kinds) and self.layer_kinds[0] == "embedding"

    @property
    def embedding_dim(self) -> int:
        """E of a token network's Embedding; ``SA_ERR_INVALID_ARGUMENT`` for a network without one.

        >>> import numpy as np, swiftattr as sa
        >>> sa.Sequential([sa.Embedding(np.zeros((10, 4)))], input_shape=(3,)).embedding_dim
        4
        """
        self._require_tokens()
        return self._sizes[1] // self.input_shape[0]

    def _require_tokens(self):
        if not self.is_token_model:
            raise SwiftAttrError("model: its first layer is not an Embedding, so it takes no token ids")

    def embed(self, ids, name: str = "inputs") -> np.ndarray:
        """The embedding vectors (n, L, E) of token ids (n, L) (checked: integers in [0, num_embeddings)).

        Parameters
        ----------
        ids : array-like, shape (n, L)
            Token ids, integers (of any integer or float dtype).
        name : str, optional
            The argument's name in error messages, default ``"inputs"``.

        Returns
        -------
        numpy.ndarray, float32, shape (n, L, E)

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` when the network has no Embedding first; ``SA_ERR_OUT_OF_RANGE`` when an id
            is not an integer in [0, num_embeddings); ``SA_ERR_SHAPE`` for a wrong shape.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Embedding(np.arange(6.0).reshape(3, 2)), sa.Flatten()], input_shape=(2,))
        >>> e = net.embed(np.array([[1, 2]]))
        >>> e.shape, e[0, 1].tolist()
        ((1, 2, 2), [4.0, 5.0])
        """
        self._require_tokens()
        x = self._batch(ids, name)
        out = np.empty(x.shape + (self.embedding_dim,), dtype=np.float32)
        check(lib.sa_embed(self._handle, fptr(x), x.shape[0], fptr(out)))
        return out

    def embedding_rest(self) -> "Network":
        """The network after the Embedding, whose input (L, E) is the embedding output (attributions per
        embedding coordinate are computed on it). Built once and kept.

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` when the network has no Embedding first.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Embedding(np.zeros((10, 4))), sa.Flatten()], input_shape=(3,))
        >>> net.embedding_rest().input_shape, net.embedding_rest().layer_kinds
        ((3, 4), ['flatten'])
        """
        self._require_tokens()
        rest = self.__dict__.get("_rest")
        if rest is None:
            handle = ctypes.c_void_p()
            check(lib.sa_model_embedding_rest(self._handle, ctypes.byref(handle)))
            rest = self.__dict__["_rest"] = Network(handle, self.layers[1:] if self.layers else None)
        return rest

    def with_softplus(self, beta: float = 10.0) -> "Network":
        """This network with every ReLU replaced by Softplus(β) (for Integrated Hessians; see hessians.py).

        Parameters
        ----------
        beta : float, optional
            β of the Softplus layers, default 10.0.

        Returns
        -------
        Network

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((2, 2))), sa.ReLU(), sa.Linear(np.ones((1, 2)))])
        >>> net.with_softplus(5.0).layer_kinds
        ['dense', 'softplus', 'dense']
        """
        from .hessians import with_softplus
        return with_softplus(self, beta)

    def penultimate(self, x) -> np.ndarray:
        """The input of the network's final Linear layer (n × h): the features a Bayesian last layer uses.

        Parameters
        ----------
        x : array-like, shape (n, *input_shape)

        Returns
        -------
        numpy.ndarray, float32, shape (n, h)

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` when the network has no Linear layer.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((3, 2))), sa.ReLU(), sa.Linear(np.ones((1, 3)))])
        >>> net.penultimate(np.ones((1, 2))).tolist()
        [[2.0, 2.0, 2.0]]
        """
        dense = [i for i, k in enumerate(self.layer_kinds) if k == "dense"]
        if not dense:
            raise SwiftAttrError("model: penultimate features need a final Linear layer, and this model has none")
        return self.activations(x, self.node_inputs[dense[-1]][0])

    # -- parameters (swiftattr.h, section Training) --------------------------------------------------
    def parameter_shapes(self) -> list:
        """Shapes of the parameter arrays, in :meth:`parameters` order.

        Returns
        -------
        list of tuple of int

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> sa.Sequential([sa.Linear(np.ones((3, 2))), sa.ReLU(), sa.Linear(np.ones((1, 3)))]).parameter_shapes()
        [(3, 2), (3,), (1, 3), (1,)]
        """
        count, total = ctypes.c_int64(), ctypes.c_int64()
        check(lib.sa_model_parameter_count(self._handle, ctypes.byref(count), ctypes.byref(total)))
        shapes = []
        shape, ndim = (ctypes.c_int64 * 4)(), ctypes.c_int64()
        for i in range(count.value):
            check(lib.sa_model_parameter_shape(self._handle, i, shape, ctypes.byref(ndim)))
            shapes.append(tuple(shape[k] for k in range(ndim.value)))
        return shapes

    def parameters(self) -> list:
        """The trainable parameters as numpy arrays (copies), in PyTorch's order and shapes: each Linear or
        convolution's weight then bias, each BatchNorm's weight (gamma) then bias (beta), in node order, as
        ``list(module.parameters())`` of the module it came from. A layer built without a bias has a zero
        bias here (training learns it); BatchNorm running statistics are not parameters.

        Returns
        -------
        list of numpy.ndarray, float32, shapes :meth:`parameter_shapes`

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> w, b = sa.Sequential([sa.Linear(np.ones((2, 3)))]).parameters()
        >>> w.shape, b.tolist()
        ((2, 3), [0.0, 0.0])
        """
        shapes = self.parameter_shapes()
        total = sum(int(np.prod(s)) for s in shapes)
        flat = np.empty(total, dtype=np.float32)
        check(lib.sa_model_parameters(self._handle, fptr(flat), total))
        return split_parameters(flat, shapes)

    def with_parameters(self, parameters) -> "Network":
        """A new Network: this graph with ``parameters`` (a sequence of arrays in :meth:`parameters` order and
        shapes), e.g. after a step of one's own optimiser on :func:`swiftattr.loss_and_gradients`.

        Parameters
        ----------
        parameters : sequence of array-like
            One array per entry of :meth:`parameter_shapes`, of that shape.

        Returns
        -------
        Network
            A new network (``layers`` is None); this one is unchanged.

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_SHAPE`` when the number of arrays or a shape differs.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((1, 2)))])
        >>> net.with_parameters([2 * np.ones((1, 2)), [1.0]]).forward(np.ones((1, 2))).tolist()
        [[5.0]]
        """
        shapes = self.parameter_shapes()
        parameters = list(parameters)
        if len(parameters) != len(shapes):
            raise SwiftAttrError(f"parameters: the network has {len(shapes)} parameter arrays, got {len(parameters)}", SA_ERR_SHAPE)
        parts = []
        for i, (p, s) in enumerate(zip(parameters, shapes)):
            a = as_f32(p, f"parameters[{i}]")
            if a.shape != s:
                raise SwiftAttrError(f"parameters[{i}]: expected shape {s}, got {a.shape}", SA_ERR_SHAPE)
            parts.append(a.ravel())
        flat = np.ascontiguousarray(np.concatenate(parts) if parts else np.empty(0, np.float32))
        out = ctypes.c_void_p()
        check(lib.sa_model_with_parameters(self._handle, fptr(flat), flat.size, ctypes.byref(out)))
        return Network(out)

    def initialized(self, seed: int = 0) -> "Network":
        """A new Network: this graph with PyTorch's default initialisation, seeded (weights and biases
        uniform on (−1/√fan_in, 1/√fan_in), as ``kaiming_uniform_(a=√5)`` and torch's bias rule give;
        BatchNorm weight 1 and bias 0). The draws depend only on ``seed``; they are not torch's numbers.

        Parameters
        ----------
        seed : int, optional
            In [0, 2**64 − 1], default 0.

        Returns
        -------
        Network

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` when ``seed`` is not an integer in range.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.zeros((3, 4)))]).initialized(seed=1)
        >>> w = net.parameters()[0]
        >>> bool((np.abs(w) <= 0.5).all()), bool(np.array_equal(w, net.initialized(seed=1).parameters()[0]))
        (True, True)
        """
        seed = as_int(seed, "seed", 0, 2**64 - 1)
        out = ctypes.c_void_p()
        check(lib.sa_model_initialized(self._handle, seed, ctypes.byref(out)))
        return Network(out)

    def parameter_nodes(self) -> list:
        """The node index of each parameter array, in :meth:`parameters` order.

        Returns
        -------
        list of int

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> sa.Sequential([sa.Linear(np.ones((3, 2))), sa.ReLU(), sa.Linear(np.ones((1, 3)))]).parameter_nodes()
        [0, 0, 2, 2]
        """
        nodes = [i for i, kind in enumerate(self.layer_kinds) for _ in range(_PARAMETER_ARRAYS[kind])]
        if len(nodes) != len(self.parameter_shapes()):  # the table below disagrees with the library
            raise SwiftAttrError("model: parameter arrays do not match the layer kinds (swiftattr internal error)",
                                 _ffi.SA_ERR_INTERNAL)
        return nodes

    def randomized(self, layers=None, seed: int = 0) -> "Network":
        """A new Network: the parameters of nodes ``layers`` (a node index or a list of them; None: every node
        with parameters) re-drawn with the layer's PyTorch default initialiser, the others kept — the
        model-parameter randomisation of Adebayo et al. (2018). The new values are :meth:`initialized`'s for
        ``seed``, so a layer's draws do not depend on which other layers are chosen and the networks of a
        cascade (top layer, top two, …) share them.

        Parameters
        ----------
        layers : int or sequence of int, optional
            Node indices with parameters (see :meth:`parameter_nodes`); None (the default): all of them.
        seed : int, optional
            Default 0.

        Returns
        -------
        Network

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_OUT_OF_RANGE`` when a chosen node has no parameters; ``SA_ERR_INVALID_ARGUMENT`` when an entry
            is not an integer.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((3, 2))), sa.ReLU(), sa.Linear(np.ones((1, 3)))])
        >>> r = net.randomized(layers=2, seed=0).parameters()
        >>> bool((r[0] == 1).all()), bool((r[2] == 1).all())
        (True, False)
        """
        nodes = self.parameter_nodes()
        with_parameters = sorted(set(nodes))
        if layers is None:
            chosen = set(with_parameters)
        else:
            several = isinstance(layers, (list, tuple, range, np.ndarray))
            items = list(layers) if several else [layers]
            chosen = set()
            for k, v in enumerate(items):
                i = as_int(v, f"layers[{k}]" if several else "layers")
                if i not in with_parameters:
                    raise SwiftAttrError(f"layers: node {i} has no parameters to randomise (nodes with parameters: "
                                         f"{with_parameters})", SA_ERR_OUT_OF_RANGE)
                chosen.add(i)
        fresh = self.initialized(seed).parameters()
        kept = self.parameters()
        return self.with_parameters([fresh[k] if node in chosen else kept[k] for k, node in enumerate(nodes)])

    def save(self, path) -> None:
        """Writes the model file (see swiftattr.h, sa_model_save); `swiftattr.load` reads it back.

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_IO`` when the file cannot be written; ``SA_ERR_INVALID_ARGUMENT`` for a path that is not one.

        Examples
        --------
        >>> import os, tempfile, numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((1, 2)))])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     net.save(os.path.join(d, "net.sam"))
        ...     sa.load(os.path.join(d, "net.sam")).forward(np.ones((1, 2))).tolist()
        [[2.0]]
        """
        check(lib.sa_model_save(self._handle, as_path(path, "path")))


# Parameter arrays per layer kind, in parameters() order (weight then bias; LSTM: W_ih, W_hh, b_ih, b_hh).
# Every kind is listed, so a new kind fails here at import rather than mis-assigning parameters.
_PARAMETER_ARRAYS = {"dense": 2, "conv1d": 2, "conv2d": 2, "batchnorm": 2, "embedding": 1, "lstm": 4,
                     "maxpool1d": 0, "maxpool2d": 0, "avgpool1d": 0, "avgpool2d": 0, "global_avgpool": 0, "flatten": 0,
                     "relu": 0, "leaky_relu": 0, "elu": 0, "softplus": 0, "sigmoid": 0, "tanh": 0, "softmax": 0,
                     "dropout": 0, "add": 0, "concat": 0, "reshape": 0}
assert set(_PARAMETER_ARRAYS) == set(_ffi.LAYER_KINDS), "model.py: _PARAMETER_ARRAYS must list every layer kind"


def _network_from_model_bytes(data) -> Network:
    """A Network from model-file bytes (what a pickle of a Network carries), validated as sa_model_load does."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SwiftAttrError(f"model bytes: expected bytes, got {type(data).__name__}")
    with tempfile.TemporaryDirectory(prefix="swiftattr-") as d:
        path = os.path.join(d, "model.sam")
        with open(path, "wb") as f:
            f.write(data)
        return load(path)


def Sequential(layers: Sequence[Layer], input_shape: Optional[Sequence[int]] = None) -> Network:
    """A network of ``layers`` in order. ``input_shape`` (per example, e.g. ``(1, 28, 28)``) may be omitted when
    the first layer with parameters is a Linear layer preceded only by elementwise layers.

    Parameters
    ----------
    layers : sequence of Layer
        Applied in order (Add and Concat need a :class:`Graph`).
    input_shape : sequence of int, optional
        The per-example input shape, without the batch.

    Returns
    -------
    Network

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when an entry is not a layer or ``input_shape`` is needed and missing; the C
        library's error (naming the layer) when a layer does not fit the shape it reads (``SA_ERR_SHAPE``).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Conv2d(np.ones((2, 1, 3, 3))), sa.ReLU(), sa.Flatten(),
    ...                      sa.Linear(np.ones((3, 8)))], input_shape=(1, 4, 4))
    >>> net.layer_kinds, net.output_shape
    (['conv2d', 'relu', 'flatten', 'dense'], (3,))
    >>> net.forward(np.ones((2, 1, 4, 4))).tolist()
    [[72.0, 72.0, 72.0], [72.0, 72.0, 72.0]]
    """
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
    shape = np.ascontiguousarray(as_shape(input_shape, "input_shape"), dtype=np.int64)
    handle = ctypes.c_void_p()
    check(lib.sa_model_create(_ffi.iptr(shape), shape.size, ctypes.byref(handle)))
    owner = _Model(handle)  # frees the handle if a layer fails
    for layer in layers:
        layer._add(handle)
    owner.handle = None
    return Network(handle, layers)


class Graph:
    """Builds a graph network node by node: residual connections (:class:`Add`), concatenations
    (:class:`Concat`) and fan-out (a value read by several nodes).

    Values are numbered: ``0`` is the input, and :meth:`add` returns the number of the value the new node
    produces. The network's output is the last value.

    Parameters
    ----------
    input_shape : sequence of int
        The per-example input shape (value 0), without the batch.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``input_shape`` is not a sequence of integers.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> g = sa.Graph(input_shape=(4,))
    >>> h = g.add(sa.Linear(np.eye(4)))            # reads the last value (the input)
    >>> r = g.add(sa.ReLU(), h)
    >>> s = g.add(sa.Add(), [r, g.input])           # a residual connection
    >>> net = g.add(sa.Linear(np.ones((2, 4))), s) and g.build()
    >>> net.forward(np.ones((1, 4))).tolist()
    [[8.0, 8.0]]
    """

    input = 0

    def __init__(self, input_shape: Sequence[int]):
        self.input_shape = as_shape(input_shape, "input_shape")
        self._nodes = []  # (layer, inputs)

    @property
    def last(self) -> int:
        """The value the last node produces (0 before any node).

        >>> import swiftattr as sa
        >>> g = sa.Graph(input_shape=(2,))
        >>> g.last, g.add(sa.ReLU()), g.last
        (0, 1, 1)
        """
        return len(self._nodes)

    def add(self, layer: Layer, inputs=None) -> int:
        """Appends ``layer`` reading ``inputs`` (a value number, or a list of them for Add and Concat; default:
        the last value) and returns the number of the value it produces.

        Parameters
        ----------
        layer : Layer
        inputs : int or list of int, optional
            Value numbers in 0..last; Add and Concat need a list of at least two.

        Returns
        -------
        int
            The number of the new node's value.

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` when ``layer`` is not a layer, a value number is out of 0..last, or the
            count of inputs does not suit the layer (shapes are checked by :meth:`build`).

        Examples
        --------
        >>> import swiftattr as sa
        >>> g = sa.Graph(input_shape=(3,))
        >>> a, b = g.add(sa.ReLU()), g.add(sa.Tanh(), 0)
        >>> a, b, g.add(sa.Add(), [a, b])
        (1, 2, 3)
        """
        if not isinstance(layer, Layer):
            raise SwiftAttrError(f"layer: expected a swiftattr layer (sa.Linear, sa.Add, ...), got {type(layer).__name__}")
        multi = isinstance(layer, (Add, Concat))
        if inputs is None:
            if multi:
                raise SwiftAttrError(f"inputs: {type(layer).__name__} needs the list of values it adds or joins")
            inputs = [self.last]
        elif isinstance(inputs, (list, tuple)):
            inputs = [as_int(v, f"inputs[{k}]", 0, self.last) for k, v in enumerate(inputs)]
        else:
            inputs = [as_int(inputs, "inputs", 0, self.last)]
        if multi and len(inputs) < 2:
            raise SwiftAttrError(f"inputs: {type(layer).__name__} needs at least two values (got {len(inputs)})")
        if not multi and len(inputs) != 1:
            raise SwiftAttrError(f"inputs: {type(layer).__name__} reads exactly one value (got {len(inputs)})")
        self._nodes.append((layer, inputs))
        return self.last

    def build(self) -> Network:
        """The network (checked node by node in C: shape errors name the node).

        Returns
        -------
        Network

        Raises
        ------
        SwiftAttrError
            The C library's error (``SA_ERR_SHAPE`` for values that do not fit) naming the node.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> g = sa.Graph(input_shape=(2,))
        >>> _ = g.add(sa.Linear(np.ones((3, 2))))
        >>> net = g.build()
        >>> net.layer_kinds, net.node_inputs
        (['dense'], [(0,)])
        """
        shape = np.ascontiguousarray(self.input_shape, dtype=np.int64)
        handle = ctypes.c_void_p()
        check(lib.sa_model_create(_ffi.iptr(shape), shape.size, ctypes.byref(handle)))
        owner = _Model(handle)  # frees the handle if a node fails
        for index, (layer, inputs) in enumerate(self._nodes):
            if isinstance(layer, (Add, Concat)):
                reads = np.ascontiguousarray(inputs, dtype=np.int64)
                adder = lib.sa_model_add_add if isinstance(layer, Add) else lib.sa_model_add_concat
                check(adder(handle, _ffi.iptr(reads), reads.size))
            else:
                if inputs[0] != index:
                    check(lib.sa_model_set_input(handle, inputs[0]))
                layer._add(handle)
        owner.handle = None
        return Network(handle, [layer for layer, _ in self._nodes])


class LazyNetwork:
    """A network whose per-example input shape comes from its first input: what :func:`from_torch` returns for
    a model given no ``input_shape`` (a convolutional module accepts any image size, and so does this).

    It holds a shape-free conversion and builds from it, on first use of each per-example shape, a
    :class:`Network` for that shape, which it keeps: one plan per input shape. Every function that takes a
    Network takes a LazyNetwork and uses the plan for the shape of its ``inputs``; :meth:`for_shape` gives
    the plan itself (to save it, or to inspect ``layer_kinds`` and ``output_shape``). Copies and pickles
    carry the conversion (and the plans made so far); plans are immutable, so threads may share them.

    Parameters
    ----------
    build : callable
        Per-example input shape (tuple) → :class:`Network`; picklable for the LazyNetwork to be.
    layers : list of Layer, optional
        The converted layers (for display).
    name : str, optional
        Shown by ``repr``, default ``"network"``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> build = lambda shape: sa.Sequential([sa.Conv2d(np.ones((1, 1, 3, 3)), padding=1), sa.GlobalAvgPool()],
    ...                                     input_shape=shape)
    >>> lazy = sa.LazyNetwork(build, name="demo")
    >>> lazy.forward(np.ones((2, 1, 5, 5))).shape, lazy.forward(np.ones((1, 1, 8, 8))).shape
    ((2, 1), (1, 1))
    >>> sorted(lazy.plans)
    [(1, 5, 5), (1, 8, 8)]
    """

    input_shape = None  # per call: the shape of the inputs

    def __init__(self, build, layers: Optional[list] = None, name: str = "network"):
        self._build = build  # per-example shape → Network (picklable)
        self.layers = layers
        self.name = name
        self._plans = {}
        self._lock = threading.Lock()

    def for_shape(self, input_shape) -> Network:
        """The network for per-example ``input_shape`` (built on first use, then kept).

        Parameters
        ----------
        input_shape : sequence of int

        Returns
        -------
        Network

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` when ``input_shape`` is not a sequence of integers; whatever building the
            plan raises (e.g. ``SA_ERR_SHAPE`` for an image too small for the network).

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> lazy = sa.LazyNetwork(lambda s: sa.Sequential([sa.Flatten()], input_shape=s))
        >>> lazy.for_shape((2, 3)).output_shape, lazy.for_shape((2, 3)) is lazy.for_shape([2, 3])
        ((6,), True)
        """
        shape = tuple(as_shape(input_shape, "input_shape"))
        plan = self._plans.get(shape)
        if plan is None:
            with self._lock:
                plan = self._plans.get(shape)
                if plan is None:
                    plan = self._plans[shape] = self._build(shape)
        return plan

    @property
    def plans(self) -> dict:
        """{per-example input shape: Network} built so far (a copy).

        >>> import swiftattr as sa
        >>> sa.LazyNetwork(lambda s: sa.Sequential([sa.Flatten()], input_shape=s)).plans
        {}
        """
        return dict(self._plans)

    def _plan(self, x, name: str = "inputs") -> Network:
        shape = as_f32(x, name).shape
        if len(shape) < 2:
            raise SwiftAttrError(f"{name}: expected a batch (n, *per-example shape), got shape {shape}", SA_ERR_SHAPE)
        return self.for_shape(shape[1:])

    @long_call
    def forward(self, x) -> np.ndarray:
        """Outputs for a batch: shape (n, *output_shape) of the plan for the batch's per-example shape.

        Parameters
        ----------
        x : array-like, shape (n, *per-example shape)

        Returns
        -------
        numpy.ndarray, float32, shape (n, *output_shape)

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_SHAPE`` when ``x`` has fewer than two axes; as :meth:`Network.forward` otherwise.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> lazy = sa.LazyNetwork(lambda s: sa.Sequential([sa.Flatten()], input_shape=s))
        >>> lazy(np.ones((4, 2, 3))).shape
        (4, 6)
        """
        return self._plan(x).forward(x)

    __call__ = forward

    def activations(self, x, layer: int) -> np.ndarray:
        """:meth:`Network.activations` of the plan for the shape of ``x``: shape (n, size of value ``layer``).

        >>> import numpy as np, swiftattr as sa
        >>> lazy = sa.LazyNetwork(lambda s: sa.Sequential([sa.Flatten(), sa.ReLU()], input_shape=s))
        >>> lazy.activations(-np.ones((1, 2, 2)), 1).tolist()
        [[-1.0, -1.0, -1.0, -1.0]]
        """
        return self._plan(x).activations(x, layer)

    def penultimate(self, x) -> np.ndarray:
        """:meth:`Network.penultimate` of the plan for the shape of ``x``: shape (n, h).

        >>> import numpy as np, swiftattr as sa
        >>> lazy = sa.LazyNetwork(lambda s: sa.Sequential([sa.Flatten(), sa.Linear(np.ones((1, 4)))], input_shape=s))
        >>> lazy.penultimate(np.ones((3, 2, 2))).shape
        (3, 4)
        """
        return self._plan(x).penultimate(x)

    def save(self, path) -> None:
        """Always raises: a LazyNetwork is one network per input shape; save ``net.for_shape(input_shape)``.

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT``, always.

        Examples
        --------
        >>> import swiftattr as sa
        >>> sa.LazyNetwork(lambda s: None).save("x.sam")
        Traceback (most recent call last):
        ...
        swiftattr._ffi.SwiftAttrError: a LazyNetwork has one network per input shape: save net.for_shape(input_shape)
        """
        raise SwiftAttrError("a LazyNetwork has one network per input shape: save net.for_shape(input_shape)")

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __copy__(self):
        other = type(self).__new__(type(self))
        other.__setstate__(self.__getstate__())
        other._plans = dict(self._plans)
        return other

    def __repr__(self):
        return f"LazyNetwork({self.name}, plans for {sorted(self._plans)})"


def split_parameters(flat: np.ndarray, shapes) -> list:
    """The concatenated parameter floats ``flat`` as arrays of ``shapes`` (views of ``flat``).

    Parameters
    ----------
    flat : numpy.ndarray, shape (Σ prod(shapes),)
    shapes : sequence of tuple of int

    Returns
    -------
    list of numpy.ndarray
        Views of ``flat``, one per shape.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = split_parameters(np.arange(5.0), [(2, 2), (1,)])
    >>> a.tolist(), b.tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [4.0])
    """
    arrays, offset = [], 0
    for s in shapes:
        size = int(np.prod(s))
        arrays.append(flat[offset:offset + size].reshape(s))
        offset += size
    return arrays


def network_for(net, inputs) -> Network:
    """``net`` itself when it is a Network; the plan of a LazyNetwork for the per-example shape of ``inputs``.

    Parameters
    ----------
    net : Network or LazyNetwork
    inputs : array-like, shape (n, *per-example shape)

    Returns
    -------
    Network

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``net`` is neither.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> lazy = sa.LazyNetwork(lambda s: sa.Sequential([sa.Flatten()], input_shape=s))
    >>> network_for(lazy, np.ones((1, 3, 2))).input_shape
    (3, 2)
    """
    if isinstance(net, Network):
        return net
    if isinstance(net, LazyNetwork):
        return net._plan(inputs)
    raise SwiftAttrError(f"net: expected a swiftattr Network, got {type(net).__name__}")


def load(path) -> Network:
    """Reads a model file written by ``Network.save`` or ``sa_model_save``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network
        With ``layers = None``.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_IO`` when the file cannot be read; ``SA_ERR_FORMAT`` when it is not a valid model file.

    Examples
    --------
    >>> import os, tempfile, numpy as np, swiftattr as sa
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sa.Sequential([sa.Linear(np.ones((2, 3))), sa.Sigmoid()]).save(os.path.join(d, "m.sam"))
    ...     net = sa.load(os.path.join(d, "m.sam"))
    >>> net.layer_kinds, net.layers is None
    (['dense', 'sigmoid'], True)
    """
    handle = ctypes.c_void_p()
    check(lib.sa_model_load(as_path(path, "path"), ctypes.byref(handle)))
    return Network(handle)

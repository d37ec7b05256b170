"""Converters from PyTorch and scikit-learn models to swiftattr networks (weights copy over unchanged)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import model as m
from ._args import as_choice
from ._ffi import SwiftAttrError

_SKLEARN_OUTPUTS = {"proba": True, "logits": False}  # output → ends with a Softmax


def _np(t) -> Optional[np.ndarray]:
    return None if t is None else t.detach().cpu().numpy().astype(np.float32)


def _convert_torch_module(where: str, mod):
    """The swiftattr layer computing leaf module ``mod`` (None for an identity); ``where`` names it in errors
    ("Conv3d at 'features.0' (node features_0)")."""
    import torch.nn as nn

    def unsupported(why: str):
        return SwiftAttrError(f"from_torch: unsupported operation {where}: {why}")

    if isinstance(mod, nn.Linear):
        return m.Linear(_np(mod.weight), _np(mod.bias))
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        if mod.groups != 1:
            raise unsupported("groups != 1")
        if mod.padding_mode != "zeros":
            raise unsupported(f"padding_mode={mod.padding_mode!r}")
        padding = mod.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0,) * len(mod.kernel_size)
            else:
                k, d = mod.kernel_size, mod.dilation
                total = [di * (ki - 1) for ki, di in zip(k, d)]
                if any(t % 2 for t in total):
                    raise unsupported("padding='same' with an even kernel extent (asymmetric padding)")
                padding = tuple(t // 2 for t in total)
        cls = m.Conv1d if isinstance(mod, nn.Conv1d) else m.Conv2d
        return cls(_np(mod.weight), _np(mod.bias), stride=mod.stride, padding=padding, dilation=mod.dilation)
    if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
        dil = mod.dilation if isinstance(mod.dilation, (tuple, list)) else (mod.dilation,)
        if any(d != 1 for d in dil):
            raise unsupported("dilation != 1")
        if mod.ceil_mode or mod.return_indices:
            raise unsupported("ceil_mode or return_indices")
        cls = m.MaxPool1d if isinstance(mod, nn.MaxPool1d) else m.MaxPool2d
        return cls(mod.kernel_size, mod.stride, mod.padding)
    if isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d)):
        if mod.ceil_mode or not mod.count_include_pad or getattr(mod, "divisor_override", None):
            raise unsupported("ceil_mode, count_include_pad=False or divisor_override")
        cls = m.AvgPool1d if isinstance(mod, nn.AvgPool1d) else m.AvgPool2d
        return cls(mod.kernel_size, mod.stride, mod.padding)
    if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        size = mod.output_size if isinstance(mod.output_size, (tuple, list)) else (mod.output_size,)
        if any(s != 1 for s in size):
            raise unsupported("only output_size=1 (global average pooling)")
        return m.GlobalAvgPool()
    if isinstance(mod, nn.Flatten):
        if mod.start_dim != 1 or mod.end_dim != -1:
            raise unsupported("only Flatten(start_dim=1, end_dim=-1)")
        return m.Flatten()
    if isinstance(mod, nn.Unflatten):
        if mod.dim != 1 or any(not isinstance(s, int) or s <= 0 for s in mod.unflattened_size):
            raise unsupported("only Unflatten(1, sizes) with positive sizes (of a flat per-example value)")
        return m.Reshape(tuple(mod.unflattened_size))
    if isinstance(mod, nn.ReLU):
        return m.ReLU()
    if isinstance(mod, nn.LeakyReLU):
        return m.LeakyReLU(mod.negative_slope)
    if isinstance(mod, nn.ELU):
        return m.ELU(mod.alpha)
    if isinstance(mod, nn.Softplus):
        return m.Softplus(mod.beta)
    if isinstance(mod, nn.Sigmoid):
        return m.Sigmoid()
    if isinstance(mod, nn.Tanh):
        return m.Tanh()
    if isinstance(mod, nn.Softmax):
        if mod.dim not in (1, -1, None):
            raise unsupported(f"dim={mod.dim}")
        return m.Softmax()
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if mod.running_mean is None:
            raise unsupported("track_running_stats=False")
        return m.BatchNorm(_np(mod.running_mean), _np(mod.running_var), _np(mod.weight), _np(mod.bias), mod.eps)
    if isinstance(mod, nn.Dropout):
        return m.Dropout(mod.p)
    if isinstance(mod, nn.Identity):
        return None
    if isinstance(mod, nn.Embedding):
        if mod.max_norm is not None:
            raise unsupported("max_norm (the lookup renormalises rows)")
        return m.Embedding(_np(mod.weight))
    raise unsupported("no swiftattr layer corresponds to it")


def from_torch(module, input_shape: Optional[Sequence[int]] = None):
    """Converts any ``torch.nn.Module`` that ``torch.fx`` can trace, built from the supported layers and ops.

    Supported: the modules nn.Linear, Conv1d/2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d(1) (global
    average pooling: its output is (C,), which is what a following flatten gives), BatchNorm1d/2d, Dropout,
    ReLU, LeakyReLU, ELU, Softplus, Sigmoid, Tanh, Softmax (final, dim=1 or -1), Flatten, Identity and any
    nesting of containers and custom modules; their functional forms (F.relu, torch.relu, x.relu(),
    F.leaky_relu, F.elu, F.softplus, torch.sigmoid, torch.tanh, F.softmax, F.max_pool2d, F.avg_pool2d,
    F.adaptive_avg_pool2d, F.dropout, ...); ``a + b`` / torch.add / a.add(b) of two values of one shape
    (residual connections; broadcasting adds are not supported); torch.cat(..., dim=1) (channels of images,
    features of vectors); torch.flatten(x, 1), x.flatten(1), x.view(x.size(0), -1), x.reshape(N, -1) and
    x.view(-1, K); sequence models: nn.Embedding (the first op: the input is then token ids, shape (N, L))
    and nn.LSTM (num_layers=1, unidirectional, batch_first=True) followed by the forms that take its last
    hidden state — ``out[:, -1]``, ``out[:, -1, :]``, ``h_n[-1]``, ``h_n[0]``, ``h_n.squeeze(0)`` of
    ``out, (h_n, c_n) = lstm(x)`` — or using ``out`` (every state, (N, L, H)) as a value. BatchNorm always converts with its running statistics (eval semantics) and Dropout is
    the identity, whatever ``module.training`` says. Any other op raises SwiftAttrError naming the op, the
    path of the module where it occurs and the traced node, e.g. ``unsupported operation torch.mul at
    'layer1.0' (node mul_1)``.

    ``input_shape`` is the per-example shape, e.g. ``(3, 32, 32)``; given (or when every op reading the input
    is a Linear, whose width is the shape), the result is a :class:`Network` for that shape. Without it, the
    result is a :class:`LazyNetwork`: the conversion is done now, and the network for a per-example shape is
    built from it on first use and kept (one plan per input shape, as a PyTorch module accepts any image
    size). Every function taking a Network takes either.

    Parameters
    ----------
    module : torch.nn.Module
        Traced with ``torch.fx``; its weights are copied (float32), the module is not changed.
    input_shape : sequence of int, optional
        The per-example input shape, without the batch.

    Returns
    -------
    Network or LazyNetwork
        A Network when the input shape is given or implied by a first Linear layer; a LazyNetwork otherwise.
        A converted module's node names (``node_names``) travel with the network.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` for an unsupported module or op (naming the op, the module path and the traced
        node); the C library's error (``SA_ERR_SHAPE``) when ``input_shape`` does not fit the layers.

    Examples
    --------
    >>> import numpy as np, torch, swiftattr as sa  # doctest: +SKIP
    >>> nn = torch.nn  # doctest: +SKIP
    >>> module = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()  # doctest: +SKIP
    >>> net = sa.from_torch(module)  # doctest: +SKIP
    >>> net.layer_kinds, net.input_shape  # doctest: +SKIP
    (['dense', 'relu', 'dense'], (4,))
    >>> x = np.ones((1, 4), np.float32)  # doctest: +SKIP
    >>> bool(np.allclose(net.forward(x), module(torch.from_numpy(x)).detach().numpy(), atol=1e-5))  # doctest: +SKIP
    True
    >>> cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # doctest: +SKIP
    >>> lazy = sa.from_torch(cnn)  # doctest: +SKIP
    >>> lazy.forward(np.ones((2, 3, 16, 16))).shape  # doctest: +SKIP
    (2, 8)
    """
    from ._torch_graph import convert

    recipe = convert(module)
    if input_shape is None:
        width = recipe.first_linear_inputs()
        if width is None:
            return m.LazyNetwork(recipe.build, recipe.layers, name=recipe.name)
        input_shape = (width,)
    return recipe.build(input_shape)


def from_sklearn(estimator, output: str = "proba") -> m.Network:
    """Converts a fitted scikit-learn ``MLPClassifier`` or ``MLPRegressor``.

    ``output="proba"`` ends a classifier with a Softmax so the network computes ``predict_proba`` (a binary
    classifier becomes two logits [0, z], so both class probabilities are outputs); ``output="logits"``
    stops before it. Regressors output ``predict`` unchanged. DeepLIFT attributes a network ending in Softmax
    at its logits, so its φ sums to the centred logit difference (see :func:`swiftattr.deeplift`).

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted; activation ``"relu"``, ``"tanh"``, ``"logistic"`` or ``"identity"``.
    output : {"proba", "logits"}, optional
        Default ``"proba"`` (ignored for regressors).

    Returns
    -------
    Network
        Input shape (n_features_in_,); output (n_classes,) (two for a binary classifier) or (n_outputs,).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` for another estimator, an unfitted one, an unsupported activation or a
        multi-label classifier; ``SA_ERR_UNKNOWN_ENUM`` for another ``output``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> from sklearn.neural_network import MLPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> clf = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    >>> net = sa.from_sklearn(clf)
    >>> net.layer_kinds, net.output_shape
    (['dense', 'relu', 'dense', 'softmax'], (2,))
    >>> bool(np.allclose(net.forward(X), clf.predict_proba(X), atol=1e-4))
    True
    >>> sa.from_sklearn(clf, output="logits").layer_kinds
    ['dense', 'relu', 'dense']
    """
    name = type(estimator).__name__
    if name not in ("MLPClassifier", "MLPRegressor"):
        raise SwiftAttrError(f"from_sklearn: expected MLPClassifier or MLPRegressor, got {name}")
    if not hasattr(estimator, "coefs_"):
        raise SwiftAttrError("from_sklearn: the estimator is not fitted")
    softmax = as_choice(output, _SKLEARN_OUTPUTS, "output")
    act = {"relu": m.ReLU, "tanh": m.Tanh, "logistic": m.Sigmoid, "identity": None}
    if estimator.activation not in act:
        raise SwiftAttrError(f"from_sklearn: activation {estimator.activation!r} is not supported")
    layers = []
    n = len(estimator.coefs_)
    for i, (W, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        W = np.asarray(W, dtype=np.float32).T
        b = np.asarray(b, dtype=np.float32)
        last = i == n - 1
        if last and name == "MLPClassifier" and estimator.out_activation_ == "logistic":
            if W.shape[0] != 1:
                raise SwiftAttrError("from_sklearn: multi-label classifiers (logistic outputs > 1) are not supported")
            W = np.vstack([np.zeros_like(W), W])
            b = np.concatenate([np.zeros(1, np.float32), b])
        layers.append(m.Linear(W, b))
        if not last and act[estimator.activation] is not None:
            layers.append(act[estimator.activation]())
    if name == "MLPClassifier" and softmax:
        layers.append(m.Softmax())
    return m.Sequential(layers)

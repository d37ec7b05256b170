"""Training a Network's parameters (swiftattr.h, section Training).

    net, history = sa.train(net, X, y, loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=20,
                            batch_size=64, validation=(X_val, y_val), patience=3, metric="accuracy", seed=0)
    loss, grads = sa.loss_and_gradients(net, X, y, loss="cross_entropy")   # grads: net.parameters() order

Losses are the mean over the mini-batch (PyTorch's ``reduction="mean"``): ``"mse"`` (y: floats of the output
shape), ``"cross_entropy"`` on logits (y: integer class indices), ``"binary_cross_entropy"`` on logits (y:
floats in [0, 1] of the output shape, e.g. shape (n,) or (n, 1) for one logit). A network ending in Softmax
is trained with cross-entropy on the logits before it, one ending in Sigmoid with binary cross-entropy on
the logit before it (the same loss, computed stably). Optimisers follow torch.optim (``"sgd"`` with
momentum, ``"adam"``; ``weight_decay`` is an L2 term added to the gradient). BatchNorm layers train their
weight and bias with the running statistics fixed (inference semantics). Training returns a new Network;
the one passed in is unchanged.
"""
from __future__ import annotations

import ctypes
import math
from typing import Callable, Optional

import numpy as np

from . import _ffi
from ._args import as_bool, as_choice, as_float, as_int, from_torch_tensor
from ._ffi import SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, SwiftAttrError, check, dptr, fptr, iptr, lib
from .attribution import _seed
from . import priors as _priors
from .model import Network, network_for, split_parameters
from ._progress import long_call

__all__ = ["train", "loss_and_gradients"]


def _labels(net: Network, y, loss_code: int, n: int, name: str):
    """``y`` for ``n`` examples as (int64 class indices, None) for cross-entropy or (None, float32 targets of
    the output shape) otherwise, checked so errors name ``name``."""
    arr = np.asarray(from_torch_tensor(y))
    if loss_code == _ffi.SA_LOSS_CROSS_ENTROPY:
        if arr.dtype.kind not in "iu":
            raise SwiftAttrError(f"{name}: cross_entropy takes integer class indices, got an array of dtype {arr.dtype}")
        if arr.shape != (n,):
            raise SwiftAttrError(f"{name}: expected {n} class indices (shape ({n},)), got shape {arr.shape}", SA_ERR_SHAPE)
        k = net.output_size
        bad = np.flatnonzero((arr < 0) | (arr >= k))
        if bad.size:
            i = int(bad[0])
            raise SwiftAttrError(f"{name}[{i}] = {arr[i]} is out of range 0..<{k} (the network has {k} outputs)", SA_ERR_OUT_OF_RANGE)
        return np.ascontiguousarray(arr, dtype=np.int64), None
    if arr.dtype.kind not in "iuf":
        raise SwiftAttrError(f"{name}: expected real-valued targets, got an array of dtype {arr.dtype}")
    values = np.ascontiguousarray(arr, dtype=np.float32)
    if values.size != n * net.output_size or (values.shape != (n,) + net.output_shape and values.shape != (n,)):
        raise SwiftAttrError(f"{name}: expected targets of shape {(n,) + net.output_shape}, got shape {values.shape}", SA_ERR_SHAPE)
    return None, values.reshape(n, -1)


def _examples(net: Network, X, name: str) -> np.ndarray:
    return net._batch(X, name)


def loss_and_gradients(net, X, y, loss: str = "cross_entropy", prior=None, seed: Optional[int] = None):
    """The mean ``loss`` over the batch ``X`` with labels ``y`` plus the attribution priors ``prior`` (None, one
    prior of :mod:`swiftattr.priors` or a list of them), and the gradient of that sum with respect to every
    parameter: ``(loss, [arrays in net.parameters() order and shapes])``. The priors draw their references and
    α's as at the first step of a training run seeded ``seed`` (None: a fresh seed).

    Parameters
    ----------
    net : Network or LazyNetwork
    X : array-like, shape (n, *input_shape)
    y : array-like
        Integer class indices of shape (n,) for ``"cross_entropy"``; floats of shape (n, *output_shape) (or (n,)
        for one output) for ``"mse"`` and ``"binary_cross_entropy"``.
    loss : {"cross_entropy", "mse", "binary_cross_entropy"}, optional
        Default ``"cross_entropy"``.
    prior : Prior or list of Prior, optional
        Default None (the loss alone).
    seed : int, optional
        Seeds the priors' draws; default None (a fresh seed).

    Returns
    -------
    loss : float
    gradients : list of numpy.ndarray, float32, shapes ``net.parameter_shapes()``

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_UNKNOWN_ENUM`` for an unknown ``loss``; ``SA_ERR_SHAPE`` for ``X`` or ``y`` of the wrong shape;
        ``SA_ERR_OUT_OF_RANGE`` for a class index outside 0..<outputs; ``SA_ERR_INVALID_ARGUMENT`` for labels of
        the wrong dtype; ``SA_ERR_NON_FINITE`` for NaN or infinite values in ``X``; a prior's error when it does not
        fit ``net``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.zeros((2, 3)))])
    >>> loss, grads = sa.loss_and_gradients(net, np.ones((4, 3)), np.array([0, 1, 1, 1]))
    >>> round(loss, 3), [g.shape for g in grads]           # equal logits: the loss is log 2
    (0.693, [(2, 3), (2,)])
    >>> round(float(grads[1][0]), 3)                       # d/db_0 = mean(softmax_0 − [y = 0]) = 0.5 − 0.25
    0.25
    """
    net = network_for(net, X)
    code = as_choice(loss, _ffi.LOSSES, "loss")
    seed_value = _seed(seed)
    x = _examples(net, X, "X")
    owned, array = _priors.handles(prior, net)
    classes, values = _labels(net, y, code, x.shape[0], "y")
    shapes = net.parameter_shapes()
    total = sum(int(np.prod(s)) for s in shapes)
    out = np.empty(total, dtype=np.float32)
    value = ctypes.c_double()
    check(lib.sa_loss_and_gradients(net._handle, fptr(x), x.shape[0], iptr(classes), fptr(values), code,
                                    array, len(owned), seed_value, ctypes.byref(value), fptr(out), total))
    del owned
    return value.value, split_parameters(out, shapes)


def _progress_bar(progress, epochs: int):
    """A tqdm bar unless ``progress`` is False or tqdm is not importable."""
    if progress is False:
        return None
    if progress is not None and progress is not True:
        raise SwiftAttrError(f"progress: expected None, True or False, got {progress!r}")
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", leave=False)


@long_call
def train(net, X, y, loss: str = "cross_entropy", optimizer: str = "adam", lr: float = 1e-3, epochs: int = 10,
          batch_size: int = 32, weight_decay: float = 0.0, momentum: float = 0.0, betas=(0.9, 0.999),
          eps: float = 1e-8, prior=None, validation=None, patience: Optional[int] = None, metric: str = "loss",
          seed: Optional[int] = None, shuffle: bool = True, initialize: bool = False,
          callback: Optional[Callable] = None, progress=None):
    """Trains ``net`` on ``X`` (n examples of its input shape) with labels ``y`` and returns
    ``(trained Network, history)``.

    - ``validation``: None or an ``(X_val, y_val)`` pair, evaluated after every epoch; with ``patience`` (a
      positive int) training stops after that many epochs without improvement of ``metric`` (``"loss"``:
      validation loss, ``"accuracy"``: validation accuracy) and the best epoch's weights are returned.
    - ``seed``: seeds the shuffling (a permutation of the examples per epoch that depends only on the seed
      and the epoch) and, with ``initialize=True``, PyTorch's default initialisation (weights and biases
      U(−1/√fan_in, 1/√fan_in)); None draws a fresh seed. For a fixed thread count the same seed gives the
      same weights bit for bit. ``shuffle=False`` keeps the given order.
    - ``callback(epoch, logs)``: called after every epoch (epochs count from 1) with ``logs`` holding
      ``train_loss`` and, with a validation set, ``val_loss`` and ``val_accuracy``; a true return value stops
      training. An exception raised inside it stops training and is re-raised here.
    - ``prior``: None, one attribution prior of :mod:`swiftattr.priors` or a list of them, added to the loss of
      every mini-batch (their references and α's drawn per step from ``seed``).
    - ``progress``: a tqdm bar per epoch when tqdm is importable (None, the default, or True); False: none.

    ``history`` is a dict of per-epoch lists (``train_loss``; ``val_loss`` and, for classification losses,
    ``val_accuracy`` with a validation set), plus ``epochs`` (how many ran) and ``best_epoch`` (from 1, with a
    validation set). A NaN or infinite loss raises SwiftAttrError naming the epoch and step.

    Parameters
    ----------
    net : Network or LazyNetwork
    X : array-like, shape (n, *input_shape)
    y : array-like
        As for :func:`loss_and_gradients`.
    loss : {"cross_entropy", "mse", "binary_cross_entropy"}, optional
        Default ``"cross_entropy"``.
    optimizer : {"adam", "sgd"}, optional
        Default ``"adam"``.
    lr : float, optional
        Learning rate, default 1e-3.
    epochs : int, optional
        Default 10.
    batch_size : int, optional
        Default 32.
    weight_decay, momentum : float, optional
        Default 0.0 (momentum applies to SGD).
    betas : pair of float, optional
        Adam's (β1, β2), default (0.9, 0.999).
    eps : float, optional
        Adam's ε, default 1e-8.
    prior : Prior or list of Prior, optional
        Default None (no prior).
    validation : pair (X_val, y_val), optional
        Default None.
    patience : int, optional
        Epochs without improvement before stopping, >= 1; default None (no early stopping).
    metric : {"loss", "accuracy"}, optional
        What early stopping and ``best_epoch`` follow, default ``"loss"``.
    seed : int, optional
        Default None (a fresh seed).
    shuffle : bool, optional
        Default True.
    initialize : bool, optional
        Re-initialise the parameters (PyTorch's default rule) before training, default False.
    callback : callable ``(epoch, logs) -> bool``, optional
        Default None.
    progress : None, True or False, optional
        The per-epoch tqdm bar, default None (shown when tqdm is importable).

    Returns
    -------
    net : Network
        The trained network (a new one).
    history : dict
        ``train_loss`` (list of float, one per epoch), ``epochs``, and with a validation set ``val_loss``,
        ``val_accuracy`` (classification losses) and ``best_epoch``.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_UNKNOWN_ENUM`` for an unknown loss, optimizer or metric; ``SA_ERR_INVALID_ARGUMENT`` for a
        malformed argument (``patience`` without ``validation``, a non-callable ``callback``, ...); the errors of
        :func:`loss_and_gradients` for the data; ``SA_ERR_NUMERICAL`` for a NaN or infinite loss, gradient or
        weight. An exception raised by ``callback`` is re-raised.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 2)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
    >>> net = sa.Sequential([sa.Linear(np.zeros((2, 2)))])
    >>> trained, history = sa.train(net, X, y, lr=0.1, epochs=5, batch_size=16, seed=0, progress=False)
    >>> history["epochs"], len(history["train_loss"]), history["train_loss"][-1] < history["train_loss"][0]
    (5, 5, True)
    >>> bool((trained.forward(X).argmax(1) == y).mean() > 0.9)
    True
    >>> again, _ = sa.train(net, X, y, lr=0.1, epochs=5, batch_size=16, seed=0, progress=False)
    >>> bool(np.array_equal(again.parameters()[0], trained.parameters()[0]))   # one seed, one thread count
    True
    """
    net = network_for(net, X)
    o = lib.sa_train_default_options()
    o.loss = as_choice(loss, _ffi.LOSSES, "loss")
    o.optimizer = as_choice(optimizer, _ffi.OPTIMIZERS, "optimizer")
    o.metric = as_choice(metric, _ffi.METRICS, "metric")
    o.learning_rate = as_float(lr, "lr")
    o.momentum = as_float(momentum, "momentum")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise SwiftAttrError(f"betas: expected a pair of floats, got {betas!r}")
    o.beta1, o.beta2 = as_float(betas[0], "betas[0]"), as_float(betas[1], "betas[1]")
    o.eps = as_float(eps, "eps")
    o.weight_decay = as_float(weight_decay, "weight_decay")
    o.epochs = as_int(epochs, "epochs")
    o.batch_size = as_int(batch_size, "batch_size")
    o.seed = _seed(seed)
    o.shuffle = int(as_bool(shuffle, "shuffle"))
    o.initialize = int(as_bool(initialize, "initialize"))
    o.patience = 0 if patience is None else as_int(patience, "patience", 1)
    if callback is not None and not callable(callback):
        raise SwiftAttrError(f"callback: expected a callable, got {callback!r}")

    x = _examples(net, X, "X")
    classes, values = _labels(net, y, o.loss, x.shape[0], "y")
    vx = v_classes = v_values = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise SwiftAttrError("validation: expected an (X_val, y_val) pair")
        vx = _examples(net, validation[0], "validation[0]")
        v_classes, v_values = _labels(net, validation[1], o.loss, vx.shape[0], "validation[1]")
    elif patience is not None:
        raise SwiftAttrError("patience: early stopping needs a validation set (validation=(X_val, y_val))")
    owned, array = _priors.handles(prior, net)
    o.priors = ctypes.cast(array, ctypes.POINTER(ctypes.c_void_p)) if array is not None else None
    o.n_priors = len(owned)

    bar = _progress_bar(progress, o.epochs)
    failure = []

    def on_epoch(_user, epoch, train_loss, val_loss, val_accuracy):
        try:
            logs = {"train_loss": train_loss}
            if validation is not None:
                logs["val_loss"] = val_loss
                if not math.isnan(val_accuracy):
                    logs["val_accuracy"] = val_accuracy
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
            return 1 if callback is not None and callback(int(epoch), logs) else 0
        except BaseException as e:  # noqa: BLE001 - re-raised after sa_train returns
            failure.append(e)
            return 1

    c_callback = _ffi.TRAIN_CALLBACK(on_epoch)
    history = np.full((o.epochs, _ffi.TRAIN_HISTORY_COLUMNS), np.nan)
    count = ctypes.c_int64()
    out = ctypes.c_void_p()
    try:
        check(lib.sa_train(net._handle, fptr(x), x.shape[0], iptr(classes), fptr(values),
                           fptr(vx), 0 if vx is None else vx.shape[0], iptr(v_classes), fptr(v_values),
                           ctypes.byref(o), c_callback, None, ctypes.byref(out), dptr(history), history.size,
                           ctypes.byref(count)))
    finally:
        if bar is not None:
            bar.close()
        owned_for_state = owned
        del owned
    trained = Network(out)
    if failure:
        del trained
        raise failure[0]
    _priors.finished(prior, owned_for_state)
    rows = history[:count.value]
    record = {"train_loss": rows[:, 0].tolist(), "epochs": int(count.value)}
    if validation is not None:
        record["val_loss"] = rows[:, 1].tolist()
        if o.loss != _ffi.SA_LOSS_MSE:
            record["val_accuracy"] = rows[:, 2].tolist()
        scores = rows[:, 1] if o.metric == _ffi.SA_METRIC_LOSS else -rows[:, 2]
        record["best_epoch"] = int(np.argmin(scores)) + 1
    return trained, record

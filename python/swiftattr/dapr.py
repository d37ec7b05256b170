"""The Deep Attribution Prior (DAPr; Weinberger, Janizek, Lee, "Learning deep attribution priors based on prior
knowledge", NeurIPS 2020; suinleelab/deep_attribution_priors).

    prior = sa.DAPr(meta, hidden=(), lam=1.0)          # meta: (d, m) meta-features of the d input elements
    net, history = sa.train(net, X, y, prior=prior, seed=0, ...)
    prior.network                                       # the learned prior network g (m → 1)
    prior.importance()                                  # g's predicted importance of each input element

A prior network g maps each input element's meta-features m_j to a predicted importance and is trained jointly
with the model, the penalty pulling the model's expected-gradients attributions towards it:

    lam · mean_nj ρ(g(m_j) − |φ_nj|),   ρ = |·| (the authors') or (·)² with ``squared=True``

φ as for the other priors (:mod:`swiftattr.priors`: ``k`` references and α's per example from ``references``
or the rest of the mini-batch, drawn from the run's seed). Every training step also steps g with Adam at
learning rate ``lr`` (the authors: 1e-3). Each :func:`swiftattr.train` call starts g from ``prior_network``
(by default a new MLP m → hidden → 1 with PyTorch's initialisation drawn from ``seed``), so a run repeats
exactly; afterwards ``network`` holds that run's learned g, whose weights say which meta-features drive
importance (for a linear g, the weight of each meta-feature).
"""
from __future__ import annotations

import ctypes
from typing import Optional, Sequence

import numpy as np

from ._args import SA_ERR_SHAPE, as_bool, as_f32, as_float, as_int
from ._ffi import SwiftAttrError, check, fptr, lib
from .model import Linear, Network, ReLU, Sequential
from .priors import Prior

__all__ = ["DAPr"]


class DAPr(Prior):
    """The Deep Attribution Prior over ``meta_features`` (d, m): see the module notes. ``hidden``: the hidden
    widths of g (``()``: g is linear in the meta-features, the authors' synthetic setting); or pass a
    ``prior_network`` (any Network with input size m and one output).

    Parameters
    ----------
    meta_features : array-like, shape (d, m)
        One row of finite meta-features per input element.
    hidden : sequence of int, optional
        Hidden widths of the default g, default ``()``.
    lam : float, optional
        The penalty's weight, default 1.0.
    squared : bool, optional
        ρ = (·)² instead of |·|, default False.
    lr : float, optional
        g's Adam learning rate, default 1e-3.
    k : int, optional
        References per example, default 1.
    references : array-like, shape (R, *input_shape), optional
        Rows the references are drawn from; default None (the rest of the mini-batch).
    seed : int, optional
        Seeds the default g's initialisation, default 0.
    prior_network : Network, optional
        g itself (input size m, one output); overrides ``hidden`` and ``seed``.

    Attributes
    ----------
    network : Network or None
        The learned g of the last training run (None before one).

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``meta_features`` is not a non-empty (d, m) array, g does not map m values to one,
        or (checked against a model) d is not the model's input size; ``SA_ERR_INVALID_ARGUMENT`` for non-finite
        meta-features, a ``prior_network`` that is not a Network, or a malformed number; as :class:`Prior`.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(32, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
    >>> prior = sa.DAPr(np.eye(4, 2), lam=0.1, seed=0)
    >>> prior
    DAPr(4 features × 2 meta-features, lam=0.1, squared=False, k=1)
    >>> net = sa.Sequential([sa.Linear(np.zeros((2, 4)))]).initialized(0)
    >>> trained, history = sa.train(net, X, y, prior=prior, epochs=2, batch_size=16, seed=0, progress=False)
    >>> prior.network.input_size, prior.importance().shape
    (2, (4,))
    """

    def __init__(self, meta_features, hidden: Sequence[int] = (), lam: float = 1.0, squared: bool = False,
                 lr: float = 1e-3, k: int = 1, references=None, seed: int = 0,
                 prior_network: Optional[Network] = None):
        super().__init__(lam, k, references)
        meta = as_f32(meta_features, "meta_features")
        if meta.ndim != 2 or meta.shape[0] == 0 or meta.shape[1] == 0:
            raise SwiftAttrError(f"meta_features: expected (d, m), one row of meta-features per input element, got "
                                 f"shape {meta.shape}", SA_ERR_SHAPE)
        if not np.isfinite(meta).all():
            raise SwiftAttrError("meta_features: contains NaN or infinite values")
        self.meta_features = np.ascontiguousarray(meta)
        self.squared = as_bool(squared, "squared")
        self.lr = as_float(lr, "lr")
        m = meta.shape[1]
        if prior_network is None:
            widths = [m] + [as_int(h, "hidden", 1) for h in hidden] + [1]
            layers = []
            for i in range(len(widths) - 1):
                layers.append(Linear(np.zeros((widths[i + 1], widths[i]), np.float32), np.zeros(widths[i + 1], np.float32)))
                if i < len(widths) - 2:
                    layers.append(ReLU())
            prior_network = Sequential(layers).initialized(as_int(seed, "seed", 0))
        elif not isinstance(prior_network, Network):
            raise SwiftAttrError(f"prior_network: expected a swiftattr Network, got {type(prior_network).__name__}")
        if prior_network.input_size != m or prior_network.output_size != 1:
            raise SwiftAttrError(f"prior_network: g must map the {m} meta-features to one output, it maps "
                                 f"{prior_network.input_size} to {prior_network.output_size}", SA_ERR_SHAPE)
        self.prior_network = prior_network
        self.network = None  # the learned g of the last training run

    def __repr__(self):
        d, m = self.meta_features.shape
        return f"DAPr({d} features × {m} meta-features, lam={self.lam}, squared={self.squared}, k={self.k})"

    def _check(self, net) -> None:
        super()._check(net)
        if self.meta_features.shape[0] != net.input_size:
            raise SwiftAttrError(f"meta_features: {self.meta_features.shape[0]} rows, but the model has {net.input_size} "
                                 "input elements (one row each)", SA_ERR_SHAPE)

    def _construct(self, out):
        d, m = self.meta_features.shape
        return lib.sa_prior_dapr(self.prior_network._handle, fptr(self.meta_features), d, m, self.lam,
                                 int(self.squared), self.lr, out)

    def _finished(self, handle) -> None:
        """After a call: keep the run's learned g."""
        out = ctypes.c_void_p()
        check(lib.sa_prior_dapr_network(handle.pointer, ctypes.byref(out)))
        self.network = Network(out)

    def importance(self, meta_features=None) -> np.ndarray:
        """g's predicted importance (d,) of each input element (of ``meta_features``, by default the prior's
        own), from the learned g (the initial one before any training).

        Parameters
        ----------
        meta_features : array-like, shape (d', m), optional
            Default: the prior's own (d, m).

        Returns
        -------
        numpy.ndarray, float32, shape (d',)

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_SHAPE`` when the rows do not hold m meta-features.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> g = sa.Sequential([sa.Linear(np.array([[1.0, -1.0]]))])
        >>> sa.DAPr(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]), prior_network=g).importance().tolist()
        [1.0, -1.0, 1.0]
        """
        g = self.network if self.network is not None else self.prior_network
        meta = self.meta_features if meta_features is None else as_f32(meta_features, "meta_features")
        return g.forward(meta).reshape(-1)

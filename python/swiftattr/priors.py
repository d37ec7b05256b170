"""Attribution priors: penalties on a model's attributions, added to the training loss (swiftattr.h, section
Attribution priors; Erion et al.; Ross et al.).

    net, history = sa.train(net, X, y, prior=sa.priors.Gini(lam=0.1), seed=0)
    loss, grads = sa.loss_and_gradients(net, X, y, prior=[sa.priors.L1(1e-2), sa.priors.TotalVariation(1e-3)], seed=0)

With a mini-batch of N examples, d input elements, phi the attributions and pbar_j = mean_n |phi_nj|:

- ``L1(lam)``: lam · mean_nj |phi_nj|;
- ``Gini(lam)``: −lam · Gini(pbar), Gini(v) = ½ mean_jk |v_j − v_k| / mean(v);
- ``Graph(adjacency, lam)``: lam · pbarᵀ (D − A) pbar (A: d × d, D its row sums on the diagonal);
- ``TotalVariation(lam)``: lam · mean_n Σ_c Σ |differences of phi between vertical and horizontal neighbours|
  (models whose input is an image (C, H, W));
- ``InputGradient(mask, lam)``: lam · mean_n Σ_j (mask_j ∂/∂x_nj Σ_c log softmax(f(x_n))_c)² (Ross et al.'s
  "right for the right reasons"; mask of the input shape; no sampling).

For the first four, phi is Expected Gradients of the label's output: ``k`` references and α's per example
(default 1), drawn at every step from ``references`` (an array of the input shape per row) or, with
``references=None``, from the other examples of the same mini-batch (example n takes row
(n + 1 + floor(u·(N − 1))) mod N of the batch, u uniform); the draws depend only on the run's seed, the step
and the example's row in the mini-batch (``prior.draws(n, seed, step)`` returns them). The weights' gradient
of every prior is exact (double back-propagation, through every layer kind, LSTM included). For a token model
(``sa.Embedding`` first) phi is taken at the embedding output and summed over the embedding axis, one value per
token as ``sa.expected_gradients`` of such a model gives (d = the sequence length: masks and adjacencies are per
token, ``references`` are token ids), and the penalty's gradient reaches the embedding table. Priors are plain
values: copy and pickle them freely; the C handle is made when a call needs it.
"""
from __future__ import annotations

import ctypes
import math
from typing import Optional

import numpy as np

from . import _ffi
from ._args import as_f32, as_float, as_int
from ._ffi import SA_ERR_SHAPE, SwiftAttrError, check, fptr, iptr, lib

__all__ = ["Prior", "L1", "Gini", "Graph", "TotalVariation", "InputGradient"]


class _Handle:
    """An ``sa_prior *`` owned by one call (freed when the object goes)."""

    def __init__(self, pointer: ctypes.c_void_p):
        self.pointer = pointer

    def __del__(self):
        if getattr(self, "pointer", None) is not None and self.pointer.value:
            lib.sa_prior_free(self.pointer)
            self.pointer = None


class Prior:
    """Base of the attribution priors: holds ``lam`` and the sampling (``k``, ``references``).

    Parameters
    ----------
    lam : float
        The penalty's weight, finite and >= 0.
    k : int, optional
        Expected-gradients references (and α's) per example, 1 to 65536, default 1.
    references : array-like, shape (R, *input_shape), optional
        The rows references are drawn from; None (the default): the other examples of the mini-batch.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when ``lam`` is negative or not finite, ``k`` is out of range, or ``k`` or
        ``references`` is given to a prior that draws none; ``SA_ERR_SHAPE`` (when a call checks the prior against
        a model) for references not of the model's input shape.

    Examples
    --------
    >>> import swiftattr as sa
    >>> sa.priors.L1(0.1, k=2)
    L1(lam=0.1, k=2)
    >>> sa.priors.L1(-1.0)
    Traceback (most recent call last):
    ...
    swiftattr._ffi.SwiftAttrError: lam must be finite and non-negative (got -1.0)
    """

    samples = True

    def __init__(self, lam: float, k: int = 1, references=None):
        self.lam = as_float(lam, "lam")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise SwiftAttrError(f"lam must be finite and non-negative (got {lam})")
        self.k = as_int(k, "k", 1, 1 << 16)
        self.references = None if references is None else as_f32(references, "references")
        if not self.samples and (self.k != 1 or self.references is not None):
            raise SwiftAttrError(f"{type(self).__name__} penalises the input gradient itself: it draws no references "
                                 "(k and references do not apply)")

    def __repr__(self):
        extra = "" if not self.samples else f", k={self.k}" + ("" if self.references is None else
                                                               f", references={self.references.shape}")
        return f"{type(self).__name__}(lam={self.lam}{extra})"

    # -- C handle -------------------------------------------------------------------------------------

    def _construct(self, out) -> int:
        raise NotImplementedError

    def _check(self, net) -> None:
        """Shapes against ``net`` (before any pointer reaches C)."""
        if self.references is not None:
            r = self.references
            if r.ndim < 1 or r.shape[1:] != tuple(net.input_shape) or r.shape[0] == 0:
                raise SwiftAttrError(f"references: expected shape (R, {', '.join(map(str, net.input_shape))}) with R >= 1 "
                                     f"(rows of the model's input shape), got {r.shape}", SA_ERR_SHAPE)

    def _handle(self, net=None) -> _Handle:
        """A fresh C handle (checked against ``net`` when given)."""
        if net is not None:
            self._check(net)
        out = ctypes.c_void_p()
        check(self._construct(ctypes.byref(out)))
        h = _Handle(out)
        if self.samples and (self.k != 1 or self.references is not None):
            r = self.references
            check(lib.sa_prior_set_sampling(out, self.k, fptr(r), 0 if r is None else r.shape[0],
                                            0 if r is None else int(np.prod(r.shape[1:]))))
        return h

    def draws(self, n: int, seed: int, step: int = 0):
        """The references and α's the prior draws for a mini-batch of ``n`` examples at global step ``step``
        (from 0) of a run seeded ``seed``: ``(index, alpha)``, each of shape (n, k); ``index[i, j]`` is the row of
        ``references`` (or, without, of the mini-batch) that is reference j of example i.

        Parameters
        ----------
        n : int
            Mini-batch size, >= 1.
        seed : int
            The run's seed.
        step : int, optional
            Global step, from 0 (default 0).

        Returns
        -------
        index : numpy.ndarray, int64, shape (n, k)
        alpha : numpy.ndarray, float32, shape (n, k)
            In [0, 1].

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_INVALID_ARGUMENT`` for a prior that draws no references or an argument out of range.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> index, alpha = sa.priors.L1(0.1, k=3).draws(4, seed=0)
        >>> index.shape, alpha.shape
        ((4, 3), (4, 3))
        >>> bool((index != np.arange(4)[:, None]).all())        # never the example itself
        True
        >>> bool(np.array_equal(index, sa.priors.L1(0.1, k=3).draws(4, seed=0)[0]))
        True
        """
        if not self.samples:
            raise SwiftAttrError(f"{type(self).__name__} draws no references")
        n = as_int(n, "n", 1)
        from .attribution import _seed
        h = self._handle()
        index = np.empty((n, self.k), dtype=np.int64)
        alpha = np.empty((n, self.k), dtype=np.float32)
        check(lib.sa_prior_draws(h.pointer, n, _seed(seed), as_int(step, "step", 0), iptr(index), fptr(alpha), index.size))
        return index, alpha


class L1(Prior):
    """lam · mean |phi| (sparsity of the expected-gradients attributions; Erion et al.).

    Parameters
    ----------
    lam : float
    k : int, optional
        Default 1.
    references : array-like, shape (R, *input_shape), optional

    Raises
    ------
    SwiftAttrError
        As :class:`Prior`.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.ones((2, 2)))])
    >>> X, y = np.ones((4, 2)), np.zeros(4, dtype=np.int64)
    >>> base, _ = sa.loss_and_gradients(net, X, y, seed=0)
    >>> total, _ = sa.loss_and_gradients(net, X, y, prior=sa.priors.L1(0.5, references=np.zeros((1, 2))), seed=0)
    >>> round(total - base, 3)          # a linear model: phi = (x − 0) · w = 1 for every feature
    0.5
    """

    def __init__(self, lam: float, k: int = 1, references=None):
        super().__init__(lam, k, references)

    def _construct(self, out):
        return lib.sa_prior_l1(self.lam, out)


class Gini(Prior):
    """−lam · Gini(mean_n |phi_n|): rewards attributions concentrated on few features (Erion et al.),
    Gini(v) = ½ mean_jk |v_j − v_k| / mean(v).

    Parameters
    ----------
    lam : float
    k : int, optional
        Default 1.
    references : array-like, shape (R, *input_shape), optional

    Raises
    ------
    SwiftAttrError
        As :class:`Prior`.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[2.0, 0.0], [0.0, 0.0]]))])
    >>> X, y = np.ones((4, 2)), np.zeros(4, dtype=np.int64)
    >>> base, _ = sa.loss_and_gradients(net, X, y, seed=0)
    >>> total, _ = sa.loss_and_gradients(net, X, y, prior=sa.priors.Gini(1.0, references=np.zeros((1, 2))), seed=0)
    >>> round(total - base, 3)          # pbar = (2, 0): Gini = ½ · mean(0, 2, 2, 0) / 1 = 0.5
    -0.5
    """

    def __init__(self, lam: float, k: int = 1, references=None):
        super().__init__(lam, k, references)

    def _construct(self, out):
        return lib.sa_prior_gini(self.lam, out)


class TotalVariation(Prior):
    """lam · mean_n total variation of the attribution image (inputs of shape (C, H, W)): Σ_c Σ |differences of
    phi between vertical and horizontal neighbours| (Erion et al.).

    Parameters
    ----------
    lam : float
    k : int, optional
        Default 1.
    references : array-like, shape (R, C, H, W), optional

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` (when checked against a model) when its input is not an image (C, H, W); as
        :class:`Prior` otherwise.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Flatten(), sa.Linear(np.ones((2, 4)))], input_shape=(1, 2, 2))
    >>> X, y = np.ones((3, 1, 2, 2)), np.zeros(3, dtype=np.int64)
    >>> tv = sa.priors.TotalVariation(1.0, references=np.zeros((1, 1, 2, 2)))
    >>> loss, grads = sa.loss_and_gradients(net, X, y, prior=tv, seed=0)
    >>> round(loss - sa.loss_and_gradients(net, X, y, seed=0)[0], 3)   # phi is constant: no variation
    0.0
    """

    def __init__(self, lam: float, k: int = 1, references=None):
        super().__init__(lam, k, references)

    def _check(self, net):
        if len(net.input_shape) != 3:
            raise SwiftAttrError(f"TotalVariation needs image inputs [C, H, W], but the model's input shape is "
                                 f"{list(net.input_shape)}", SA_ERR_SHAPE)
        super()._check(net)

    def _construct(self, out):
        return lib.sa_prior_total_variation(self.lam, out)


class Graph(Prior):
    """lam · pbarᵀ (D − A) pbar over the input elements; ``adjacency``: d × d (d = the model's input size),
    D its row sums on the diagonal, pbar_j = mean_n |phi_nj| (Erion et al.'s graph prior).

    Parameters
    ----------
    adjacency : array-like, shape (d, d)
    lam : float
    k : int, optional
        Default 1.
    references : array-like, shape (R, *input_shape), optional

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` when ``adjacency`` is not square, or (checked against a model) not (d, d); as
        :class:`Prior` otherwise.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 3.0], [0.0, 0.0]]))])
    >>> X, y = np.ones((4, 2)), np.zeros(4, dtype=np.int64)
    >>> prior = sa.priors.Graph(np.array([[0.0, 1.0], [1.0, 0.0]]), 1.0, references=np.zeros((1, 2)))
    >>> total, _ = sa.loss_and_gradients(net, X, y, prior=prior, seed=0)
    >>> round(total - sa.loss_and_gradients(net, X, y, seed=0)[0], 3)   # (1 − 3)² for pbar = (1, 3)
    4.0
    """

    def __init__(self, adjacency, lam: float, k: int = 1, references=None):
        super().__init__(lam, k, references)
        a = as_f32(adjacency, "adjacency")
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
            raise SwiftAttrError(f"adjacency: expected a square (d, d) matrix, got shape {a.shape}", SA_ERR_SHAPE)
        self.adjacency = a

    def _check(self, net):
        d = int(np.prod(net.input_shape))
        if self.adjacency.shape != (d, d):
            raise SwiftAttrError(f"adjacency: expected shape ({d}, {d}) (the model's {d} input elements squared), "
                                 f"got {self.adjacency.shape}", SA_ERR_SHAPE)
        super()._check(net)

    def _construct(self, out):
        return lib.sa_prior_graph(fptr(self.adjacency), self.adjacency.shape[0], self.lam, out)


class InputGradient(Prior):
    """lam · mean_n Σ (mask ⊙ ∂/∂x Σ_c log softmax(f(x))_c)²; ``mask`` of the model's input shape (or flat).

    Ross, Hughes, Doshi-Velez (2017), "Right for the right reasons"; it draws no references.

    Parameters
    ----------
    mask : array-like, shape input_shape or (d,)
        1 where input gradients are penalised.
    lam : float

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` (checked against a model) when ``mask`` is neither the input shape nor flat of its size.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.array([[1.0, 2.0], [0.0, 0.0]]))])
    >>> X, y = np.tile([np.log(3.0), 0.0], (2, 1)), np.zeros(2, dtype=np.int64)   # p = (3/4, 1/4)
    >>> prior = sa.priors.InputGradient(np.array([0.0, 1.0]), 1.0)
    >>> total, _ = sa.loss_and_gradients(net, X, y, prior=prior)
    >>> round(total - sa.loss_and_gradients(net, X, y)[0], 3)     # (∂/∂x_1 Σ_c log p_c)² = (2 − 2·¾·2)² = 1
    1.0
    """

    samples = False

    def __init__(self, mask, lam: float):
        super().__init__(lam)
        self.mask = as_f32(mask, "mask")

    def _check(self, net):
        d = int(np.prod(net.input_shape))
        if self.mask.shape not in (tuple(net.input_shape), (d,)):
            raise SwiftAttrError(f"mask: expected shape {tuple(net.input_shape)} (the model's input shape), got {self.mask.shape}",
                                 SA_ERR_SHAPE)

    def _construct(self, out):
        m = self.mask.reshape(-1)
        return lib.sa_prior_input_gradient(fptr(m), m.size, self.lam, out)


def handles(prior, net):
    """(list of live handles, ctypes array of their pointers or None) for ``prior``: None, a Prior or a list of
    them, each checked against ``net``.

    Parameters
    ----------
    prior : None, Prior or list of Prior
    net : Network

    Returns
    -------
    owned : list
        The live handles (keep them until the C call returns).
    array : ctypes array of void pointers, or None

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_INVALID_ARGUMENT`` when an entry is not a prior; a prior's error when it does not fit ``net``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.ones((2, 3)))])
    >>> handles(None, net)
    ([], None)
    >>> owned, array = handles([sa.priors.L1(0.1), sa.priors.Gini(0.1)], net)
    >>> len(owned), len(array)
    (2, 2)
    """
    if prior is None:
        return [], None
    items = list(prior) if isinstance(prior, (list, tuple)) else [prior]
    for i, p in enumerate(items):
        if not hasattr(p, "_handle") or not callable(getattr(p, "_handle")):
            raise SwiftAttrError(f"prior[{i}]: expected a prior (sa.priors.L1, Gini, Graph, TotalVariation, InputGradient, "
                                 f"CDEP, DAPr), got {p!r}")
    owned = [p._handle(net) for p in items]
    if not owned:
        return [], None
    array = (ctypes.c_void_p * len(owned))(*[h.pointer.value for h in owned])
    return owned, array


def finished(prior, owned) -> None:
    """After a call that used ``owned`` (from :func:`handles` for ``prior``): stateful priors (DAPr) keep what
    the run learned.

    Parameters
    ----------
    prior : None, Prior or list of Prior
    owned : list
        What :func:`handles` returned for ``prior``.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> finished(None, [])       # nothing to keep
    """
    if prior is None:
        return
    items = list(prior) if isinstance(prior, (list, tuple)) else [prior]
    for p, h in zip(items, owned):
        done = getattr(p, "_finished", None)
        if done is not None:
            done(h)

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
of every prior is exact (double back-propagation). Priors are plain values: copy and pickle them freely;
the C handle is made when a call needs it.
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
    """Base of the attribution priors: holds ``lam`` and the sampling (``k``, ``references``)."""

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
        ``references`` (or, without, of the mini-batch) that is reference j of example i."""
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
    """lam · mean |phi| (sparsity of the expected-gradients attributions)."""

    def __init__(self, lam: float, k: int = 1, references=None):
        super().__init__(lam, k, references)

    def _construct(self, out):
        return lib.sa_prior_l1(self.lam, out)


class Gini(Prior):
    """−lam · Gini(mean_n |phi_n|): rewards attributions concentrated on few features."""

    def __init__(self, lam: float, k: int = 1, references=None):
        super().__init__(lam, k, references)

    def _construct(self, out):
        return lib.sa_prior_gini(self.lam, out)


class TotalVariation(Prior):
    """lam · mean_n total variation of the attribution image (inputs of shape (C, H, W))."""

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
    """lam · pbarᵀ (D − A) pbar over the input elements; ``adjacency``: d × d (d = the model's input size)."""

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
    """lam · mean_n Σ (mask ⊙ ∂/∂x Σ_c log softmax(f(x))_c)²; ``mask`` of the model's input shape (or flat)."""

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
    them, each checked against ``net``."""
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
    the run learned."""
    if prior is None:
        return
    items = list(prior) if isinstance(prior, (list, tuple)) else [prior]
    for p, h in zip(items, owned):
        done = getattr(p, "_finished", None)
        if done is not None:
            done(h)

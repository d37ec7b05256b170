"""CDEP, Contextual Decomposition Explanation Penalization (Rieger, Singh, Murdoch, Yu 2020): a prior that
penalises the Contextual Decomposition importance of input regions known to be irrelevant.

    net, history = sa.train(net, X, y, prior=sa.CDEP(corners, lam=10.0), seed=0)

With (β_nc, γ_nc) the CD parts (:func:`swiftattr.contextual_decomposition`, acd's rules) of a region at
class c of example n, at the logits, the penalty is ``lam · mean_nc softmax([β_nc, γ_nc])₀`` =
``lam · mean_nc σ(β_nc − γ_nc)``, and its gradient with respect to the weights is taken through the CD
propagation itself. Several regions (``mask`` of shape (K, *input_shape)) add, each averaged over the
examples and classes, as the authors' ColorMNIST code adds one such term per sampled blob; for the four
corners of DecoyMNIST their code uses one region, the union, which a single mask of the union gives.
Every node kind CD supports is differentiated, LSTM included.

Per-example masks (``per_example=True``, shape (n, *input_shape) or (n, K, *input_shape)): row e is the mask
(set) of row e of the ``X`` given to :func:`swiftattr.train` or :func:`swiftattr.loss_and_gradients`, and every
mini-batch row uses the mask of the training example it holds, however the trainer shuffles, as the
authors' ISIC experiment penalises the band-aid patches segmented in each image.
"""
from __future__ import annotations

import numpy as np

from ._args import as_f32
from ._ffi import SA_ERR_NON_FINITE, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, SwiftAttrError, fptr, lib
from .priors import Prior

__all__ = ["CDEP"]


class CDEP(Prior):
    """lam · Σ_regions mean_nc σ(β − γ), (β, γ) the CD parts of each region. ``mask``: values in [0, 1] (or
    booleans), 1 marking the penalised region; shape the model's input shape (one region; any shape of that
    many values is accepted) or (K, *input_shape) for K regions. For a token network, one value per position,
    shape (L,) or (K, L). With ``per_example=True`` a leading axis of one mask (set) per training example.

    Parameters
    ----------
    mask : array-like, shape input_shape or (K, *input_shape); per_example: (n, *input_shape) or (n, K, *input_shape)
        Values in [0, 1] or booleans.
    lam : float
        The penalty's weight, finite and >= 0.
    per_example : bool
        False (default): one mask (set) shared by every example. True: ``mask[e]`` belongs to row e of ``X``.

    Raises
    ------
    SwiftAttrError
        ``SA_ERR_SHAPE`` for an empty or 0-D mask (and, checked against a model, one of neither shape; used
        with an ``X`` whose row count is not the per-example mask's); ``SA_ERR_NON_FINITE`` for NaN or
        infinite values; ``SA_ERR_OUT_OF_RANGE`` for values outside [0, 1].

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> net = sa.Sequential([sa.Linear(np.eye(2, 4)), sa.ReLU(), sa.Linear(np.ones((2, 2)))])
    >>> X, y = np.ones((3, 4)), np.zeros(3, dtype=np.int64)
    >>> prior = sa.CDEP(np.array([True, True, False, False]), lam=1.0)
    >>> prior, prior.regions(net)
    (CDEP(mask=(4,), lam=1.0), 1)
    >>> base, _ = sa.loss_and_gradients(net, X, y)
    >>> total, grads = sa.loss_and_gradients(net, X, y, prior=prior)
    >>> bool(0 < total - base < 1), len(grads)                         # σ(β − γ) lies in (0, 1)
    (True, 4)
    >>> each = sa.CDEP(np.tile([True, True, False, False], (3, 1)), lam=1.0, per_example=True)
    >>> each, sa.loss_and_gradients(net, X, y, prior=each)[0] == total      # the same mask on every row
    (CDEP(mask=(3, 4), lam=1.0, per_example=True), True)
    """

    samples = False

    def __init__(self, mask, lam: float, per_example: bool = False):
        super().__init__(lam)
        if not isinstance(per_example, (bool, np.bool_)):
            raise SwiftAttrError(f"per_example must be True or False, got {per_example!r}")
        m = np.asarray(mask)
        m = as_f32(m.astype(np.float32) if m.dtype == bool else m, "mask")
        if m.ndim < (2 if per_example else 1) or m.size == 0:
            what = "(n, *input_shape) or (n, K, *input_shape), one mask per example" if per_example \
                else "of the model's input shape (or K of them)"
            raise SwiftAttrError(f"mask: expected an array {what}, got shape {m.shape}", SA_ERR_SHAPE)
        if not np.isfinite(m).all():
            raise SwiftAttrError("mask contains a non-finite value", SA_ERR_NON_FINITE)
        if ((m < 0) | (m > 1)).any():
            bad = m[(m < 0) | (m > 1)].flat[0]
            raise SwiftAttrError(f"mask: CDEP masks take values in [0, 1] (1 marks the penalised region); got {bad}",
                                 SA_ERR_OUT_OF_RANGE)
        self.mask = m
        self.per_example = bool(per_example)
        self._count = None

    def __repr__(self):
        return f"CDEP(mask={self.mask.shape}, lam={self.lam}{', per_example=True' if self.per_example else ''})"

    def regions(self, net) -> int:
        """How many regions the mask holds for ``net``: one when it has the model's input size d (any shape
        of d values: the input shape, flat, or H × W for a one-channel image, as acd accepts), K when its shape
        is (K, ...) with d values per region; otherwise SA_ERR_SHAPE. For per-example masks, the same of each
        example's ``mask[e]``.

        Parameters
        ----------
        net : Network

        Returns
        -------
        int

        Raises
        ------
        SwiftAttrError
            ``SA_ERR_SHAPE`` when the mask fits neither form.

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Flatten(), sa.Linear(np.ones((2, 16)))], input_shape=(1, 4, 4))
        >>> sa.CDEP(np.zeros((4, 4)), 1.0).regions(net), sa.CDEP(np.zeros((3, 1, 4, 4)), 1.0).regions(net)
        (1, 3)
        """
        shape = tuple(net.input_shape)
        d = int(np.prod(shape))
        m = self.mask[0] if self.per_example else self.mask
        if m.size == d:
            return 1
        if m.ndim >= 2 and int(np.prod(m.shape[1:])) == d:
            return m.shape[0]
        dims = ", ".join(map(str, shape))
        if self.per_example:
            raise SwiftAttrError(f"mask: expected per-example masks of shape (n, {dims}) (the model's input shape) or "
                                 f"(n, K, {dims}) for K regions, got {self.mask.shape}", SA_ERR_SHAPE)
        raise SwiftAttrError(f"mask: expected shape {shape} (the model's input shape) or (K, {dims}) "
                             f"for K regions, got {m.shape}", SA_ERR_SHAPE)

    def _check(self, net):
        self._count = self.regions(net)

    def _construct(self, out):
        if self._count is None:
            raise SwiftAttrError("CDEP: the mask's regions are known only against a model (pass it to train or "
                                 "loss_and_gradients)")
        flat = np.ascontiguousarray(self.mask.reshape(-1))
        if self.per_example:
            n = self.mask.shape[0]
            return lib.sa_prior_cdep_per_example(fptr(flat), n, self._count, flat.size // (n * self._count), self.lam, out)
        return lib.sa_prior_cdep(fptr(flat), self._count, flat.size // self._count, self.lam, out)

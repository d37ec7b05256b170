"""Sanity checks of attributions (Adebayo et al. 2018), recovery of known drivers, remove-and-retrain.

    r = sa.checks.randomization(net, x, method=sa.saliency, target=3, mode="cascading", seed=0)
    r.spearman["abs"]            # (steps, n): rank correlation of |φ| with the trained network's, top layer first
    r.plot(path="cascade.png")   # the attribution maps of the cascade and the similarity curves
    sa.checks.recovery(phi, truth)                       # rank correlation, precision@k, AUROC of the true features
    sa.checks.roar(net, X, y, X_test, y_test, phi, phi_test, ks=[0, 2, 4])   # accuracy after retraining

Similarities compare each example's attribution with the trained network's: the Spearman rank correlation
of |φ| and of φ over all elements (ties get average ranks; two constant maps correlate 1, a constant and a
varying one 0), and for image inputs (C, H, W) the SSIM and the Pearson correlation of HOG features of the
maps Σ_c |φ_c| scaled to [0, 1] by their maximum (SSIM and HOG as scikit-image's defaults, in numpy).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ._args import INT64_MAX, SA_ERR_SHAPE, as_choice, as_f32, as_float, as_int, as_ints
from ._ffi import SwiftAttrError
from .attribution import _network, _seed
from .metrics import _finite, _first, _method, _one_per_example as _labels

__all__ = ["randomization", "label_randomization", "RandomizationResult", "spearman", "ssim", "hog", "recovery",
           "roar", "keep_and_retrain", "RetrainCurve"]


# -- similarity measures -----------------------------------------------------------------------------
def _rows(a, name: str) -> np.ndarray:
    arr = np.asarray(_finite(as_f32(a, name), name), dtype=np.float64)
    if arr.ndim == 0:
        raise SwiftAttrError(f"{name}: expected an array of values (one row, or one row per example), got a scalar",
                             SA_ERR_SHAPE)
    return arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr[None]


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 0..p−1 along each row of ``a`` (n, p), ties given the mean of their ranks."""
    n, p = a.shape
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    new = np.ones((n, p), dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    group = (np.cumsum(new, axis=1) - 1 + (np.arange(n) * p)[:, None]).ravel()
    mean = np.bincount(group, weights=np.tile(np.arange(p, dtype=np.float64), n), minlength=n * p) / \
        np.maximum(np.bincount(group, minlength=n * p), 1)
    ranks = np.empty((n, p))
    np.put_along_axis(ranks, order, mean[group].reshape(n, p), axis=1)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation; 1 where both rows are constant, 0 where only one is."""
    da, db = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    sa_, sb = np.sqrt((da * da).sum(axis=1)), np.sqrt((db * db).sum(axis=1))
    flat_a, flat_b = sa_ <= 1e-12 * (np.abs(a).max(axis=1) + 1e-300), sb <= 1e-12 * (np.abs(b).max(axis=1) + 1e-300)
    r = np.divide((da * db).sum(axis=1), sa_ * sb, out=np.zeros(a.shape[0]), where=~(flat_a | flat_b))
    return np.where(flat_a & flat_b, 1.0, np.clip(r, -1.0, 1.0))


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation (Spearman 1904) of each row of ``a`` with the same row of ``b``.

    ((n, ...) arrays, each example flattened; a 1-D pair is one row): the Pearson correlation of average ranks
    (ties get average ranks; two constant rows correlate 1, a constant and a varying one 0).

    Parameters
    ----------
    a, b : array_like, shape (n, ...) or (p,)
        Of equal shapes.

    Returns
    -------
    numpy.ndarray, float64, shape (n,)

    Raises
    ------
    SwiftAttrError
        If the shapes differ (SA_ERR_SHAPE) or the values are not finite.

    Examples
    --------
    >>> import swiftattr as sa
    >>> [round(float(r), 3) for r in sa.checks.spearman([[1, 2, 3, 4], [1, 2, 3, 4]], [[10, 20, 30, 25], [4, 3, 2, 1]])]
    [0.8, -1.0]
    """
    ra, rb = _rows(a, "a"), _rows(b, "b")
    if ra.shape != rb.shape:
        raise SwiftAttrError(f"a and b: expected equal shapes, got {np.shape(a)} and {np.shape(b)}", SA_ERR_SHAPE)
    return _pearson(_average_ranks(ra), _average_ranks(rb))


def _images(a, name: str) -> np.ndarray:
    arr = np.asarray(_finite(as_f32(a, name), name), dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise SwiftAttrError(f"{name}: expected an image (H, W) or a batch (n, H, W), got shape {arr.shape}", SA_ERR_SHAPE)
    return arr


def _box_sums(a: np.ndarray, w: int) -> np.ndarray:
    """Sums of every w×w window of each image of ``a`` (n, H, W) that fits: (n, H − w + 1, W − w + 1)."""
    c = np.zeros((a.shape[0], a.shape[1] + 1, a.shape[2] + 1))
    c[:, 1:, 1:] = a.cumsum(axis=1).cumsum(axis=2)
    return c[:, w:, w:] - c[:, :-w, w:] - c[:, w:, :-w] + c[:, :-w, :-w]


def ssim(a, b, data_range: float = 1.0, win_size: int = 7) -> np.ndarray:
    """Mean structural similarity of each image pair (Wang et al. 2004).

    As scikit-image's ``structural_similarity`` with its defaults: SSIM = (2μ_aμ_b + C1)(2σ_ab + C2) /
    ((μ_a² + μ_b² + C1)(σ_a² + σ_b² + C2)) over a uniform ``win_size`` window, sample covariances,
    C1 = (0.01·data_range)², C2 = (0.03·data_range)², the mean over the windows that fit.

    Parameters
    ----------
    a, b : array_like, shape (H, W) or (n, H, W)
        Of equal shapes.
    data_range : float, default 1.0
        The range of the values (maps scaled to [0, 1] have 1).
    win_size : int, default 7
        Odd, at most the image's sides.

    Returns
    -------
    numpy.ndarray, float64, shape (n,)
        One value in a (1,) array for one pair of images.

    Raises
    ------
    SwiftAttrError
        If the shapes differ or are not images (SA_ERR_SHAPE), ``data_range`` is not positive and finite, or
        ``win_size`` is even or larger than a side.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> a = np.random.default_rng(0).random((2, 16, 16))
    >>> [round(float(v), 3) for v in sa.checks.ssim(a, a)], bool(sa.checks.ssim(a, 1 - a)[0] < 0)
    ([1.0, 1.0], True)
    """
    x, y = _images(a, "a"), _images(b, "b")
    if x.shape != y.shape:
        raise SwiftAttrError(f"a and b: expected equal shapes, got {x.shape} and {y.shape}", SA_ERR_SHAPE)
    w = as_int(win_size, "win_size", 1, INT64_MAX)
    data_range = as_float(data_range, "data_range")
    if not (data_range > 0 and np.isfinite(data_range)):
        raise SwiftAttrError(f"data_range must be positive and finite (got {data_range!r})")
    if w % 2 == 0 or w > min(x.shape[1:]):
        raise SwiftAttrError(f"win_size = {w}: must be odd and at most the image's sides {x.shape[1:]}")
    area = w * w
    mean = lambda v: _box_sums(v, w) / area  # noqa: E731
    ux, uy = mean(x), mean(y)
    cov = area / (area - 1)
    vx, vy, vxy = cov * (mean(x * x) - ux * ux), cov * (mean(y * y) - uy * uy), cov * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(s.shape[0], -1).mean(axis=1)


def hog(images, orientations: int = 9, pixels_per_cell=(8, 8), cells_per_block=(3, 3)) -> np.ndarray:
    """Histogram-of-oriented-gradients features (Dalal & Triggs 2005) as scikit-image's ``hog``.

    With block_norm "L2-Hys": central-difference gradients (0 on the border), unsigned orientations in
    ``orientations`` bins over [0°, 180°), per-cell means of the gradient magnitude, blocks of cells
    normalised (L2, clipped at 0.2, L2 again).

    Parameters
    ----------
    images : array_like, shape (H, W) or (n, H, W)
    orientations : int, default 9
    pixels_per_cell : (int, int), default (8, 8)
    cells_per_block : (int, int), default (3, 3)

    Returns
    -------
    numpy.ndarray, float64, shape (n, features)
        features = blocks × cells_per_block × orientations.

    Raises
    ------
    SwiftAttrError
        If the images are too small for one block (SA_ERR_SHAPE) or a size is not positive.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> h = sa.checks.hog(np.random.default_rng(0).random((2, 24, 24)))   # one block of 3 × 3 cells
    >>> h.shape
    (2, 81)
    """
    x = _images(images, "images")
    n, H, W = x.shape
    ch, cw, bh, bw = as_ints(pixels_per_cell, 2, "pixels_per_cell") + as_ints(cells_per_block, 2, "cells_per_block")
    for name, v in (("pixels_per_cell", (ch, cw)), ("cells_per_block", (bh, bw))):
        if min(v) < 1:
            raise SwiftAttrError(f"{name} must be positive (got {v})")
    bins = as_int(orientations, "orientations", 1, INT64_MAX)
    rows, cols = H // ch, W // cw
    if rows - bh + 1 <= 0 or cols - bw + 1 <= 0:
        raise SwiftAttrError(f"images: {H}×{W} is too small for cells of {ch}×{cw} in blocks of {bh}×{bw} "
                             f"(at least {bh * ch}×{bw * cw})", SA_ERR_SHAPE)
    gr, gc = np.zeros_like(x), np.zeros_like(x)
    gr[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    gc[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    magnitude = np.hypot(gc, gr)[:, :rows * ch, :cols * cw]
    angle = (np.rad2deg(np.arctan2(gr, gc)) % 180)[:, :rows * ch, :cols * cw]
    which = np.minimum((angle / (180.0 / bins)).astype(np.int64), bins - 1)
    cell = (np.arange(rows * ch) // ch)[:, None] * cols + (np.arange(cols * cw) // cw)[None, :]
    index = (np.arange(n)[:, None, None] * rows * cols + cell[None]) * bins + which
    hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * rows * cols * bins)
    hist = hist.reshape(n, rows, cols, bins) / (ch * cw)
    eps = 1e-5
    blocks = np.stack([hist[:, r:r + bh, c:c + bw] for r in range(rows - bh + 1) for c in range(cols - bw + 1)], axis=1)
    blocks = blocks.reshape(n, blocks.shape[1], -1)
    out = blocks / np.sqrt((blocks ** 2).sum(axis=2, keepdims=True) + eps ** 2)
    out = np.minimum(out, 0.2)
    out = out / np.sqrt((out ** 2).sum(axis=2, keepdims=True) + eps ** 2)
    return out.reshape(n, -1)


def _hog_cells(shape) -> tuple:
    """Cells for HOG of an H×W map: scikit-image's 8×8 when the map holds 3×3 of them, else a third of each side."""
    return (min(8, shape[0] // 3), min(8, shape[1] // 3))


def _maps(phi: np.ndarray) -> np.ndarray:
    """Σ_c |φ_c| of (n, C, H, W) attributions, each scaled to [0, 1] by its maximum (a zero map stays zero)."""
    m = np.abs(phi).sum(axis=1)
    top = m.reshape(m.shape[0], -1).max(axis=1)
    return m / np.where(top > 0, top, 1.0)[:, None, None]


def _similarities(phi0: np.ndarray, phi: np.ndarray, image: bool) -> dict:
    n = phi0.shape[0]
    out = {"abs": spearman(np.abs(phi0).reshape(n, -1), np.abs(phi).reshape(n, -1)),
           "signed": spearman(phi0.reshape(n, -1), phi.reshape(n, -1))}
    if image:
        m0, m = _maps(phi0), _maps(phi)
        out["ssim"] = ssim(m0, m)
        cells = _hog_cells(m.shape[1:])
        out["hog"] = _pearson(hog(m0, pixels_per_cell=cells), hog(m, pixels_per_cell=cells)) if min(cells) >= 1 else None
    return out


# -- model-parameter and label randomisation ---------------------------------------------------------
@dataclass
class RandomizationResult:
    """The similarities of the attributions of randomised networks to the trained network's.

    Returned by :func:`randomization` and :func:`label_randomization`.

    Attributes
    ----------
    mode : str
        "cascading", "independent" or "random labels".
    labels : list of str
        One name per step (e.g. "dense 9" for node 9, a Linear).
    layers : list of list of int
        The nodes randomised at each step (cascading: the top k; independent: one).
    spearman : dict
        {"abs": (steps, n), "signed": (steps, n)}: rank correlations of |φ| and of φ.
    ssim, hog : numpy.ndarray, shape (steps, n), or None
        For image inputs (C, H, W), else None.
    attributions : numpy.ndarray, shape (n, ...)
        The trained network's.
    randomized : list of numpy.ndarray
        One (n, ...) array per step.
    """

    mode: str
    labels: list
    layers: list
    spearman: dict
    ssim: Optional[np.ndarray]
    hog: Optional[np.ndarray]
    attributions: np.ndarray
    randomized: list = field(repr=False)

    def plot(self, example: int = 0, path=None, title: Optional[str] = None):
        """The figure of Adebayo et al.: attribution maps per step and the similarity curves.

        The attribution map of ``example`` for the trained network and each step, and below the mean (± one
        standard deviation over examples) of every similarity per step. Never changes the backend nor calls
        ``show()``.

        Parameters
        ----------
        example : int, default 0
            The example whose maps are drawn.
        path : str or path-like, optional
            Where to save the figure.
        title : str, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plot import _figure, _save

        i = as_int(example, "example", 0, self.attributions.shape[0] - 1)
        steps = len(self.labels)
        fig = _figure((max(6.0, 1.5 * (steps + 1)), 6.0))
        # Equal columns with the curves' x-axis over (−0.5, steps + 0.5): each point sits under its map.
        grid = fig.add_gridspec(2, steps + 1, height_ratios=[1, 1.6], hspace=0.25, wspace=0.08,
                                left=0.12, right=0.97, top=0.9 if title else 0.95, bottom=0.2)
        maps = [self.attributions] + list(self.randomized)
        names = ["trained"] + list(self.labels)
        for k, (phi, name) in enumerate(zip(maps, names)):
            ax = fig.add_subplot(grid[0, k])
            a = np.asarray(phi[i], dtype=np.float64)
            img = np.abs(a).sum(axis=0) if a.ndim == 3 else np.abs(a).reshape(1, -1) if a.ndim == 1 else np.abs(a)
            ax.imshow(img, cmap="gray", aspect="auto" if img.shape[0] == 1 else "equal")
            ax.set_title(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        ax = fig.add_subplot(grid[1, :])
        x = np.arange(steps + 1)
        curves = [("Spearman |φ|", self.spearman["abs"]), ("Spearman φ", self.spearman["signed"])]
        if self.ssim is not None:
            curves.append(("SSIM", self.ssim))
        if self.hog is not None:
            curves.append(("HOG correlation", self.hog))
        for name, values in curves:  # the trained network compared with itself: 1
            mean = np.concatenate([[1.0], values.mean(axis=1)])
            sd = np.concatenate([[0.0], values.std(axis=1)])
            ax.plot(x, mean, marker="o", label=name)
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.15)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xlim(-0.5, steps + 0.5)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("similarity to trained")
        ax.set_xlabel("cascading randomisation from the top layer" if self.mode == "cascading"
                      else "randomised layer (independently)" if self.mode == "independent" else self.mode)
        ax.legend(fontsize=8, loc="lower left")
        if title:
            fig.suptitle(title)
        _save(fig, path)
        return fig


def _attribute(fn, net, x, target, method_args) -> np.ndarray:
    args = dict(method_args)
    if target is not None:
        args["target"] = target
    return _first(fn(net, x, **args)).astype(np.float32)


def _result(mode, labels, layers, phi0, phis, image: bool) -> RandomizationResult:
    sims = [_similarities(phi0, phi, image) for phi in phis]
    stack = lambda key: None if not image or sims[0].get(key) is None else np.stack([s[key] for s in sims])  # noqa: E731
    return RandomizationResult(mode=mode, labels=labels, layers=layers,
                               spearman={"abs": np.stack([s["abs"] for s in sims]),
                                         "signed": np.stack([s["signed"] for s in sims])},
                               ssim=stack("ssim"), hog=stack("hog"), attributions=phi0, randomized=phis)


def _is_image(net) -> bool:
    shape = net.input_shape
    return len(shape) == 3 and min(shape[1:]) >= 7


def randomization(net, inputs, method="saliency", target=None, mode: str = "cascading", seed: Optional[int] = None,
                  layers=None, method_args: Optional[dict] = None, **kwargs) -> RandomizationResult:
    """Model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    The attributions of ``method`` on networks whose weights are re-drawn with each layer's initialiser
    (:meth:`Network.randomized` with ``seed``), compared with the trained network's (see the module notes for
    the similarities). An attribution that passes changes when the weights it explains are randomised.

    Parameters
    ----------
    net : Network or LazyNetwork
    inputs : array_like, shape (n, *input_shape)
    method : callable or str, default "saliency"
        An attribution function or its name.
    target : int or array_like of int, optional
    mode : {"cascading", "independent"}, default "cascading"
        "cascading" — step k randomises the top k layers with parameters (top layer first; the last step is
        the fully randomised network); "independent" — step k randomises layer k alone (top first).
    seed : int, optional
    layers : int or sequence of int, optional
        Limits the randomised nodes (default: every node with parameters).
    method_args : dict, optional
        Arguments for the method; also as keywords (``method_args`` carries a name the call uses itself, e.g.
        IG's ``method="riemann_trapezoid"``).
    **kwargs
        More arguments for the method.

    Returns
    -------
    RandomizationResult

    Raises
    ------
    SwiftAttrError
        If ``mode`` or the method's name is unknown (SA_ERR_UNKNOWN_ENUM), a node of ``layers`` has no
        parameters, or the network has none.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.standard_normal((8, 4)), np.zeros(8)), sa.ReLU(),
    ...                      sa.Linear(rng.standard_normal((2, 8)), np.zeros(2))])
    >>> x = rng.standard_normal((5, 4)).astype(np.float32)
    >>> r = sa.checks.randomization(net, x, method="saliency", target=0, seed=0)
    >>> r.labels, r.layers, r.spearman["abs"].shape, r.ssim is None
    (['dense 2', 'dense 0'], [[2], [2, 0]], (2, 5), True)
    """
    fn = _method(method)
    net, x = _network(net, inputs)
    mode = as_choice(mode, {"cascading": "cascading", "independent": "independent"}, "mode")
    args = dict(method_args or {}, **kwargs)
    seed = _seed(seed)
    nodes = sorted(set(net.parameter_nodes()), reverse=True)
    if layers is not None:
        given = list(layers) if isinstance(layers, (list, tuple, range, np.ndarray)) else [layers]
        chosen = {as_int(v, "layers") for v in given}
        unknown = sorted(v for v in chosen if v not in nodes)
        if unknown:
            raise SwiftAttrError(f"layers: node {unknown[0]} has no parameters to randomise (nodes with parameters: "
                                 f"{sorted(nodes)})")
        nodes = [i for i in nodes if i in chosen]
    if not nodes:
        raise SwiftAttrError("net: it has no layer with parameters to randomise")
    steps = [nodes[:k + 1] for k in range(len(nodes))] if mode == "cascading" else [[i] for i in nodes]
    labels = [f"{net.layer_kinds[i]} {i}" for i in nodes]
    phi0 = _attribute(fn, net, x, target, args)
    phis = [_attribute(fn, net.randomized(step, seed), x, target, args) for step in steps]
    return _result(mode, labels, steps, phi0, phis, _is_image(net))


def label_randomization(net, X, y, inputs, method="saliency", target=None, seed: Optional[int] = None,
                        train_args: Optional[dict] = None, method_args: Optional[dict] = None,
                        **kwargs) -> RandomizationResult:
    """The data-randomisation test (Adebayo et al. 2018): attributions of a network fitted to permuted labels.

    A network of ``net``'s architecture is trained from a fresh initialisation on ``X`` with the labels ``y``
    permuted (sa.train with ``train_args`` and ``initialize=True``), and its attributions of ``inputs`` are
    compared with those of the trained ``net``. One step, labelled "random labels"; ``.trained`` is the
    network fitted to permuted labels and ``.train_history`` its history.

    Parameters
    ----------
    net : Network or LazyNetwork
        The trained network.
    X : array_like, shape (m, *input_shape)
    y : array_like, shape (m,) or (m, out)
        The training labels (as sa.train takes them).
    inputs : array_like, shape (n, *input_shape)
        The examples to explain.
    method : callable or str, default "saliency"
    target : int or array_like of int, optional
    seed : int, optional
        Seeds the permutation and, unless ``train_args`` has one, the training.
    train_args : dict, optional
        For sa.train (e.g. ``epochs``, ``lr``, ``loss``).
    method_args : dict, optional
    **kwargs
        More arguments for the method.

    Returns
    -------
    RandomizationResult
        With ``trained`` and ``train_history`` set.

    Raises
    ------
    SwiftAttrError
        If ``y`` does not have one label per row of ``X``, the method's name is unknown, or training fails.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.standard_normal((8, 4)), np.zeros(8)), sa.ReLU(),
    ...                      sa.Linear(rng.standard_normal((2, 8)), np.zeros(2))])
    >>> x = rng.standard_normal((5, 4)).astype(np.float32)
    >>> X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 2, 64)
    >>> r = sa.checks.label_randomization(net, X, y, x, target=0, seed=0, train_args={"epochs": 2, "progress": False})
    >>> r.labels, r.spearman["abs"].shape, len(r.train_history["train_loss"])
    (['random labels'], (1, 5), 2)
    """
    from .training import train

    fn = _method(method)
    net, x = _network(net, inputs)
    seed = _seed(seed)
    labels = _labels(y, net._batch(X, "X").shape[0], "y", "X")
    permuted = labels[np.random.default_rng(seed).permutation(labels.shape[0])]
    options = dict(train_args or {})
    options.setdefault("seed", seed)
    options["initialize"] = True
    fitted, history = train(net, X, permuted, **options)
    args = dict(method_args or {}, **kwargs)
    phi0 = _attribute(fn, net, x, target, args)
    result = _result("random labels", ["random labels"], [[]], phi0, [_attribute(fn, fitted, x, target, args)],
                     _is_image(net))
    result.trained, result.train_history = fitted, history
    return result


# -- recovery of known drivers -----------------------------------------------------------------------
def _importance(phi, shape, name: str) -> np.ndarray:
    a = np.abs(np.asarray(_finite(as_f32(phi, name), name), dtype=np.float64))
    if a.shape == shape:
        return a
    if a.shape[1:] == shape:
        return a.mean(axis=0)
    raise SwiftAttrError(f"{name}: expected shape {shape} or (n, {', '.join(map(str, shape))}) to match truth, "
                         f"got {a.shape}", SA_ERR_SHAPE)


def recovery(phi, truth, k: Optional[int] = None) -> dict:
    """How well attributions ``phi`` recover known drivers ``truth`` (e.g. from :mod:`swiftattr.simulate`).

    Parameters
    ----------
    phi : array_like, shape of ``truth`` or (n, *truth.shape)
        The importances, or one row per example (their mean |φ| is the importance).
    truth : array_like, shape (p,) or (p, p)
        The true importance of each feature (nonzero for the drivers; a bool mask works) or of each pair
        ((p, p) for interactions: the pairs i < j of |truth| + |truth|ᵀ).
    k : int, optional
        For precision@k (default: the number of drivers).

    Returns
    -------
    dict
        {"spearman": rank correlation of the importance with |truth|, "precision_at_k": the share of drivers
        among the k most important, "k", "auroc": the probability that a driver outranks a non-driver (ties
        count half)}.

    Raises
    ------
    SwiftAttrError
        If ``truth`` is not (p,) or (p, p), ``phi`` does not match it (SA_ERR_SHAPE), a value is not finite,
        or ``truth`` has no driver or no non-driver.

    Examples
    --------
    >>> import swiftattr as sa
    >>> m = sa.checks.recovery([[3.0, 0.1, 2.0, 0.0], [2.0, 0.0, 3.0, 0.2]], truth=[1, 0, 1, 0])
    >>> m["precision_at_k"], m["k"], m["auroc"]
    (1.0, 2, 1.0)
    """
    t = np.asarray(truth)
    t = np.abs(np.asarray(_finite(as_f32(t.astype(np.float64) if t.dtype == bool else t, "truth"), "truth"),
                          dtype=np.float64))
    if t.ndim not in (1, 2) or (t.ndim == 2 and t.shape[0] != t.shape[1]):
        raise SwiftAttrError(f"truth: expected (p,) feature importances or a (p, p) interaction matrix, got {t.shape}",
                             SA_ERR_SHAPE)
    imp = _importance(phi, t.shape, "phi")
    if t.ndim == 2:
        iu = np.triu_indices(t.shape[0], 1)
        t, imp = (t + t.T)[iu], (imp + imp.T)[iu]
    positive = t > 0
    P = int(positive.sum())
    if P == 0 or P == t.size:
        raise SwiftAttrError("truth: needs at least one driver (nonzero) and one non-driver (zero)")
    k = P if k is None else as_int(k, "k", 1, t.size)
    top = np.argsort(-imp, kind="stable")[:k]
    ranks = _average_ranks(imp[None])[0] + 1
    auroc = (ranks[positive].sum() - P * (P + 1) / 2) / (P * (t.size - P))
    return {"spearman": float(spearman(imp[None], t[None])[0]), "precision_at_k": float(positive[top].mean()),
            "k": k, "auroc": float(auroc)}


# -- remove and retrain ------------------------------------------------------------------------------
@dataclass
class RetrainCurve:
    """The scores of remove-and-retrain (:func:`roar`) or keep-and-retrain (:func:`keep_and_retrain`).

    Attributes
    ----------
    k : numpy.ndarray, shape (K,)
        The numbers of features removed (ROAR) or kept (keep-and-retrain) per example.
    score : numpy.ndarray, shape (K,)
        The test score after retraining with the top ``k`` features (per example) replaced by their training
        mean (ROAR) or with all but them replaced (keep-and-retrain).
    metric : str
        "accuracy" for classification, "r2" (R²) for ``loss="mse"``.
    keep : bool
        True for keep-and-retrain.
    """

    k: np.ndarray
    score: np.ndarray
    metric: str
    keep: bool


def _masked(x: np.ndarray, phi: np.ndarray, mean: np.ndarray, k: int, keep: bool) -> np.ndarray:
    n = x.shape[0]
    flat, f = x.reshape(n, -1), np.abs(phi.reshape(n, -1))
    top = np.zeros(flat.shape, dtype=bool)
    if k > 0:
        np.put_along_axis(top, np.argsort(-f, axis=1, kind="stable")[:, :k], True, axis=1)
    replace = ~top if keep else top
    return np.where(replace, mean.reshape(1, -1), flat).reshape(x.shape).astype(np.float32)


def roar(net, X, y, X_test, y_test, attributions, attributions_test, ks, keep: bool = False, loss: str = "cross_entropy",
         seed: Optional[int] = None, **train_args) -> RetrainCurve:
    """Remove-and-retrain (Hooker et al. 2019, "A benchmark for interpretability methods in deep neural networks").

    For each k in ``ks``, each example's k most attributed elements (by |φ|; ``attributions`` of ``X``,
    ``attributions_test`` of ``X_test``) are replaced by the training mean of that element, a network of
    ``net``'s architecture is trained from a fresh initialisation (sa.train with ``loss``, ``seed`` and
    ``train_args``; the same seed for every k, so only the data differ) and scored on the modified test set
    (path_explain's benchmarks). ``keep=True`` keeps the top k and replaces the rest (keep-and-retrain). A
    faithful attribution makes ROAR's score fall fastest.

    Parameters
    ----------
    net : Network or LazyNetwork
        Its architecture is retrained.
    X, y : array_like, shapes (m, *input_shape) and (m,) or (m, out)
        The training set.
    X_test, y_test : array_like, shapes (m_test, *input_shape) and (m_test,) or (m_test, out)
        The test set.
    attributions, attributions_test : array_like
        Of the shapes of ``X`` and ``X_test``, finite.
    ks : sequence of int
        The numbers of elements to replace (or keep).
    keep : bool, default False
    loss : str, default "cross_entropy"
        sa.train's loss; "mse" scores R², the others accuracy.
    seed : int, optional
    **train_args
        For sa.train (e.g. ``epochs``, ``lr``).

    Returns
    -------
    RetrainCurve

    Raises
    ------
    SwiftAttrError
        If the attributions do not have the shapes of ``X`` and ``X_test`` (SA_ERR_SHAPE) or are not finite,
        ``y`` does not match ``X``, ``ks`` is empty or not a list of numbers in 0..p, or training fails.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.standard_normal((8, 4)), np.zeros(8)), sa.ReLU(),
    ...                      sa.Linear(rng.standard_normal((2, 8)), np.zeros(2))])
    >>> x = rng.standard_normal((5, 4)).astype(np.float32)
    >>> X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 2, 64)
    >>> phi = sa.saliency(net, X, target=0)
    >>> c = sa.checks.roar(net, X, y, X, y, phi, phi, ks=[0, 2], seed=0, epochs=2, progress=False)
    >>> c.k.tolist(), c.score.shape, c.metric, c.keep
    ([0, 2], (2,), 'accuracy', False)
    """
    from .training import train

    net, x = _network(net, X)
    xt = net._batch(X_test, "X_test")
    phi = as_f32(attributions, "attributions")
    phi_t = as_f32(attributions_test, "attributions_test")
    if phi.shape != x.shape:
        raise SwiftAttrError(f"attributions: expected the shape of X {x.shape}, got {phi.shape}", SA_ERR_SHAPE)
    if phi_t.shape != xt.shape:
        raise SwiftAttrError(f"attributions_test: expected the shape of X_test {xt.shape}, got {phi_t.shape}", SA_ERR_SHAPE)
    _finite(phi, "attributions")
    _finite(phi_t, "attributions_test")
    _labels(y, x.shape[0], "y", "X")
    yt = _labels(y_test, xt.shape[0], "y_test", "X_test")
    p = net.input_size
    if isinstance(ks, (str, bytes)) or not isinstance(ks, (list, tuple, range, np.ndarray)):
        raise SwiftAttrError(f"ks: expected a list of numbers of features, got {ks!r}")
    k_list = np.array([as_int(k, f"ks[{i}]", 0, p) for i, k in enumerate(ks)], dtype=np.int64)
    if k_list.size == 0:
        raise SwiftAttrError("ks: give at least one number of features")
    seed = _seed(seed)
    mean = x.reshape(x.shape[0], -1).astype(np.float64).mean(axis=0)
    scores = []
    for k in k_list:  # one retraining per k
        fitted, _ = train(net, _masked(x, phi, mean, int(k), keep), y, loss=loss, seed=seed, initialize=True,
                          **train_args)
        out = fitted.forward(_masked(xt, phi_t, mean, int(k), keep)).reshape(xt.shape[0], -1)
        if loss == "mse":
            target = yt.reshape(out.shape).astype(np.float64)
            scores.append(1 - ((out - target) ** 2).sum() / ((target - target.mean(axis=0)) ** 2).sum())
        elif loss == "binary_cross_entropy":
            scores.append(float(((out[:, 0] > 0) == (yt.reshape(-1) > 0.5)).mean()))
        else:
            scores.append(float((out.argmax(axis=1) == yt).mean()))
    return RetrainCurve(k=k_list, score=np.array(scores), metric="r2" if loss == "mse" else "accuracy", keep=bool(keep))


def keep_and_retrain(net, X, y, X_test, y_test, attributions, attributions_test, ks, **kwargs) -> RetrainCurve:
    """:func:`roar` with ``keep=True``: only the top k features of each example are kept.

    A faithful attribution makes the score rise fastest.

    Parameters
    ----------
    net, X, y, X_test, y_test, attributions, attributions_test, ks
        As for :func:`roar`; ``ks`` are the numbers of elements kept.
    **kwargs
        For :func:`roar` (``loss``, ``seed``, sa.train's arguments); not ``keep``.

    Returns
    -------
    RetrainCurve
        With ``keep=True``.

    Raises
    ------
    SwiftAttrError
        As :func:`roar`.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.standard_normal((8, 4)), np.zeros(8)), sa.ReLU(),
    ...                      sa.Linear(rng.standard_normal((2, 8)), np.zeros(2))])
    >>> x = rng.standard_normal((5, 4)).astype(np.float32)
    >>> X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 2, 64)
    >>> phi = sa.saliency(net, X, target=0)
    >>> c = sa.checks.keep_and_retrain(net, X, y, X, y, phi, phi, ks=[1, 4], seed=0, epochs=2, progress=False)
    >>> c.k.tolist(), c.keep, bool(((0 <= c.score) & (c.score <= 1)).all())
    ([1, 4], True, True)
    """
    return roar(net, X, y, X_test, y_test, attributions, attributions_test, ks, keep=True, **kwargs)

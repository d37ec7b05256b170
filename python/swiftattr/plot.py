"""Plot helpers (matplotlib is imported lazily, so it is needed only when plotting).

Every plot draws on a ``matplotlib.figure.Figure`` of its own (or on the caller's axes) and never touches
pyplot or the backend: after ``%matplotlib inline`` the session's backend stays what it was, and no figure
is left registered with pyplot. A returned Figure displays in a notebook as the cell's value; ``path=``
saves it (the format from the file name).
"""
from __future__ import annotations

import io
import os

import numpy as np

from ._args import INT64_MAX, SA_ERR_SHAPE, as_f32, as_int, as_path, as_shape
from ._ffi import SwiftAttrError


class Axes(list):
    """The list of axes a plot drew on; ``.figure`` is their Figure, and a notebook displays it as the cell's
    value (the figure is not registered with pyplot, so nothing else shows it)."""

    @property
    def figure(self):
        return self[0].figure

    def _repr_png_(self):
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=110)
        return buf.getvalue()


def _figure(figsize):
    from matplotlib.figure import Figure  # lazy: plotting is optional

    return Figure(figsize=figsize)


def _save(fig, path, dpi=110) -> None:
    """Saves ``fig`` to ``path`` (a file path, checked as every path is, or a writable file object)."""
    if path is None:
        return
    fig.savefig(path if hasattr(path, "write") else os.fsdecode(as_path(path, "path")), dpi=dpi)


def rate(result, *, top=None, names=None, class_names=None, axes=None, path=None):
    """Sorted RATE bars for each output class, with the 1/m line of a uniform ranking.

    result: a RateResult; top: show only the `top` largest values; names: labels of the variables
    (or groups); class_names: one title per class; axes: a matplotlib Axes per class (a new Figure's when
    None); path: save the figure there when given. Returns the list of axes used (an :class:`Axes`, whose
    ``.figure`` is the Figure).
    """
    values = np.asarray(result.rate)
    classes, m = values.shape
    if top is not None:
        top = as_int(top, "top", 1, INT64_MAX)
    scored = m if result.nullify is None or result.groups is not None else m - len(np.unique(result.nullify))
    created = axes is None
    if created:
        fig = _figure((8, 2.6 * classes))
        axes = list(fig.subplots(classes, 1, squeeze=False)[:, 0])
    axes = list(np.asarray(axes, dtype=object).ravel())
    if len(axes) < classes:
        raise SwiftAttrError(f"axes: expected {classes} Axes (one per class), got {len(axes)}")
    for c in range(classes):
        ax = axes[c]
        order = np.argsort(values[c])[::-1]
        if top is not None:
            order = order[:top]
        ax.bar(np.arange(order.size), values[c][order], color="#3b6ea8")
        ax.axhline(1.0 / max(scored, 1), color="#c0392b", linestyle="--", linewidth=1, label=f"1/{scored}")
        labels = [str(names[i]) if names is not None else str(i) for i in order]
        if order.size <= 40:
            ax.set_xticks(np.arange(order.size))
            ax.set_xticklabels(labels, rotation=90, fontsize=7)
        ax.set_ylabel("RATE")
        title = class_names[c] if class_names is not None else (f"class {c}" if classes > 1 else "RATE")
        ax.set_title(f"{title}  (Δ = {result.delta[c]:.3g}, ESS = {result.ess[c]:.1f}%)")
        ax.legend(loc="upper right", fontsize=8)
    if created:
        axes[0].figure.tight_layout()
    _save(axes[0].figure, path)
    return Axes(axes[:classes])


def image_attributions(images, attributions, *, titles=None, shape=None, method_names=None, path=None):
    """A grid of images (first row) and their attribution maps (one row per method), red for positive and
    blue for negative contributions on a symmetric scale per map.

    images: (k, ...) array; attributions: one (k, ...) array or a list of them (one per method); shape:
    the (H, W) to reshape each example to (default: the trailing two dimensions, channels summed);
    method_names: row labels; titles: one per column; path: save the figure there when given.
    Returns the matplotlib Figure.
    """
    images = as_f32(images, "images")
    if isinstance(attributions, (list, tuple)):
        maps = [as_f32(a, f"attributions[{i}]") for i, a in enumerate(attributions)]
    else:
        maps = [as_f32(attributions, "attributions")]
    if shape is not None:
        shape = as_shape(shape, "shape")
    k = images.shape[0]
    for i, a in enumerate(maps):
        if a.shape[0] != k:
            raise SwiftAttrError(f"attributions[{i}]: expected {k} examples (one per image), got {a.shape[0]}", SA_ERR_SHAPE)

    def as_image(a):
        a = np.asarray(a, dtype=np.float64)
        if shape is not None:
            return a.reshape(shape)
        if a.ndim == 3:  # C×H×W: sum over channels
            return a.sum(0)
        if a.ndim == 2:
            return a
        side = int(round(np.sqrt(a.size)))
        return a.reshape(side, -1) if side * side == a.size else a.reshape(1, -1)

    fig = _figure((1.8 * k, 1.9 * (1 + len(maps))))
    axes = fig.subplots(1 + len(maps), k, squeeze=False)
    for j in range(k):
        axes[0, j].imshow(as_image(images[j]), cmap="gray_r")
        if titles is not None:
            axes[0, j].set_title(str(titles[j]), fontsize=8)
        for r, m in enumerate(maps, start=1):
            img = as_image(m[j])
            lim = float(np.abs(img).max()) or 1.0
            axes[r, j].imshow(img, cmap="bwr", vmin=-lim, vmax=lim)
            if j == 0 and method_names is not None:
                axes[r, j].set_ylabel(method_names[r - 1], fontsize=8)
        for r in range(1 + len(maps)):
            axes[r, j].set_xticks([])
            axes[r, j].set_yticks([])
    fig.tight_layout()
    _save(fig, path)
    return fig


def interactions(gamma, feature_names=None, *, top=10, path=None):
    """One example's interaction matrix Γ (p × p, e.g. ``sa.integrated_hessians(...)[i]``) as a heatmap on a
    diverging colour map centred at zero (with a colour bar), beside a bar chart of the ``top`` off-diagonal
    pairs of largest |Γ_ij| (each unordered pair once, since Γ is symmetric).

    feature_names: p labels (default "0"…"p−1"); path: save the figure there when given. Returns the two
    axes used (an :class:`Axes`, whose ``.figure`` is the Figure).
    """
    g = as_f32(gamma, "gamma")
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise SwiftAttrError(f"gamma: expected one example's p × p interaction matrix, got shape {g.shape}", SA_ERR_SHAPE)
    p = g.shape[0]
    top = as_int(top, "top", 1, INT64_MAX)
    if feature_names is None:
        names = [str(i) for i in range(p)]
    else:
        names = [str(v) for v in feature_names]
        if len(names) != p:
            raise SwiftAttrError(f"feature_names: expected {p} names, got {len(names)}", SA_ERR_SHAPE)
    fig = _figure((11, 4.6))
    heat, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    scale = float(np.abs(g).max()) or 1.0
    image = heat.imshow(g, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
    fig.colorbar(image, ax=heat, fraction=0.046, pad=0.04, label="Γ")
    if p <= 30:
        heat.set_xticks(np.arange(p))
        heat.set_yticks(np.arange(p))
        heat.set_xticklabels(names, rotation=90, fontsize=7)
        heat.set_yticklabels(names, fontsize=7)
    heat.set_title("interactions")
    rows, cols = np.triu_indices(p, k=1)
    values = g[rows, cols]
    order = np.argsort(-np.abs(values))[:top]
    labels = [f"{names[rows[k]]} × {names[cols[k]]}" for k in order]
    colours = ["#c0392b" if values[k] > 0 else "#2e6da4" for k in order]
    bars.barh(np.arange(order.size)[::-1], values[order], color=colours)
    bars.set_yticks(np.arange(order.size)[::-1])
    bars.set_yticklabels(labels, fontsize=8)
    bars.axvline(0, color="black", linewidth=0.8)
    bars.set_title(f"top {order.size} pairs by |Γ|")
    from matplotlib.ticker import MaxNLocator

    bars.xaxis.set_major_locator(MaxNLocator(5))  # few enough ticks that their labels never overlap
    fig.tight_layout()
    _save(fig, path)
    return Axes([heat, bars])

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

from ._args import INT64_MAX, SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM, as_f32, as_int, as_path, as_shape
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


def _acd_levels(hierarchy, kind, levels, max_levels):
    """The hierarchy's levels to draw (indices): ``levels`` as given, else all, or ``max_levels`` of them
    evenly spaced from the first to the last."""
    if not isinstance(hierarchy, dict) or "levels" not in hierarchy or hierarchy.get("kind") != kind:
        raise SwiftAttrError(f"hierarchy: expected the {kind} result of sa.acd, got {type(hierarchy).__name__}")
    n = len(hierarchy["levels"])
    if n == 0:
        raise SwiftAttrError("hierarchy: it has no levels to draw")
    if levels is not None:
        chosen = [as_int(t, "levels", -n, n - 1) % n for t in np.atleast_1d(np.asarray(levels, dtype=object))]
    else:
        m = as_int(max_levels, "max_levels", 1, INT64_MAX)
        chosen = sorted(set(np.linspace(0, n - 1, min(n, m)).round().astype(int).tolist()))
    return chosen


def _score_norm(hierarchy, chosen):
    """A colour scale centred at zero over the scores of the drawn components."""
    from matplotlib.colors import Normalize

    scores = [abs(s) for t in chosen for s in hierarchy["levels"][t]["scores"]]
    scale = max(scores, default=0.0) or 1.0
    return Normalize(-scale, scale)


def acd_text(hierarchy, words, *, levels=None, max_levels=40, cmap="RdBu_r", path=None):
    """An ACD hierarchy of a sequence (``sa.acd`` on a 1-D input) as rows of words, one row per level (the
    finest on top): each phrase (component) is a box coloured by its score on a diverging colour map centred
    at zero (with a colour bar); words outside every component are grey.

    words: the L tokens; levels: which levels to draw (indices; default all, or ``max_levels`` evenly spaced);
    path: save the figure there when given. Returns the axes used (an :class:`Axes`: the rows' and the colour
    bar's)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.patches import Rectangle

    chosen = _acd_levels(hierarchy, "1d", levels, max_levels)
    length = hierarchy["shape"][0]
    words = [str(w) for w in words]
    if len(words) != length:
        raise SwiftAttrError(f"words: expected {length} words (one per position), got {len(words)}", SA_ERR_SHAPE)
    widths = np.array([max(len(w), 2) + 1.5 for w in words], dtype=float)
    starts = np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    total = float(widths.sum())
    norm, colours = _score_norm(hierarchy, chosen), colormaps[cmap]
    fig = _figure((min(max(4.0, 0.11 * total + 1.5), 30.0), 0.42 * len(chosen) + 1.0))
    ax = fig.add_axes([0.08, 0.08, 0.80, 0.86])
    bar = fig.add_axes([0.90, 0.08, 0.015, 0.86])
    for row, t in enumerate(chosen):
        level = hierarchy["levels"][t]
        y = len(chosen) - 1 - row
        score_of = dict(zip(level["components"], level["scores"]))
        labels = np.asarray(level["labels"])
        for label, idx in zip(level["components"], level["indices"]):
            x0, x1 = starts[idx.min()], starts[idx.max()] + widths[idx.max()]
            ax.add_patch(Rectangle((x0 + 0.15, y + 0.1), x1 - x0 - 0.3, 0.8, facecolor=colours(norm(score_of[label])),
                                   edgecolor="#333333", linewidth=0.6))
        for i, w in enumerate(words):
            ax.text(starts[i] + widths[i] / 2, y + 0.5, w, ha="center", va="center", fontsize=8,
                    color="black" if labels[i] > 0 else "#9a9a9a")
    ax.set_xlim(0, total)
    ax.set_ylim(0, len(chosen))
    ax.set_yticks(np.arange(len(chosen)) + 0.5)
    ax.set_yticklabels([f"level {t}" for t in chosen[::-1]], fontsize=7)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title("ACD hierarchy (phrases coloured by CD score)", fontsize=9)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colours), cax=bar, label="score")
    _save(fig, path)
    return Axes([ax, bar])


def acd_image(hierarchy, image=None, *, levels=None, max_levels=12, columns=6, color_by="label", cmap="RdBu_r",
              path=None):
    """An ACD hierarchy of an image (``sa.acd`` on a 2-D input) as one panel per level, the component map of
    that level over the image (drawn faintly in grey when given). ``color_by="label"`` (the default, as the
    authors draw it) gives each component its own colour, kept from level to level as its label is;
    ``color_by="score"`` colours each component by its score on a diverging colour map centred at zero, with
    a shared colour bar, and outlines the components. (Components of one level never touch: touching blocks are one component.)

    image: (H, W), (C, H, W) or (H, W, 3) (averaged over channels); levels: which levels (indices; default
    ``max_levels`` evenly spaced from the first to the last); columns: panels per row; path: save the figure
    there when given. Returns the panels' axes (an :class:`Axes`)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    chosen = _acd_levels(hierarchy, "2d", levels, max_levels)
    if color_by not in ("label", "score"):
        raise SwiftAttrError(f"color_by: unknown {color_by!r}; expected one of label, score", SA_ERR_UNKNOWN_ENUM)
    h, w = hierarchy["shape"]
    background = None
    if image is not None:
        img = as_f32(image, "image")
        if img.shape == (h, w):
            background = img
        elif img.ndim == 3 and img.shape[1:] == (h, w):
            background = img.mean(axis=0)
        elif img.ndim == 3 and img.shape[:2] == (h, w):
            background = img.mean(axis=2)
        else:
            raise SwiftAttrError(f"image: expected shape ({h}, {w}), (C, {h}, {w}) or ({h}, {w}, C), got {img.shape}",
                                 SA_ERR_SHAPE)
    cols = min(as_int(columns, "columns", 1, INT64_MAX), len(chosen))
    rows = -(-len(chosen) // cols)
    if color_by == "score":
        norm, colours = _score_norm(hierarchy, chosen), colormaps[cmap]
    else:
        colours, norm = ListedColormap(colormaps["tab20"].colors), Normalize(0, 20)
    height = 2.15 * rows + 0.35
    fig = _figure((2.0 * cols + (0.9 if color_by == "score" else 0.2), height))
    top = 1 - 0.42 / height  # room for the two-line titles of the first row
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = []
    for k, t in enumerate(chosen):
        ax = grid[k // cols, k % cols]
        level = hierarchy["levels"][t]
        labels = np.asarray(level["labels"])
        value = np.full((h, w), np.nan)
        for label, score in zip(level["components"], level["scores"]):
            value[labels == label] = score if color_by == "score" else (label - 1) % 20 + 0.5
        if background is not None:
            ax.imshow(background, cmap="gray_r", alpha=0.25, interpolation="nearest")
        ax.imshow(np.ma.masked_invalid(value), cmap=colours, norm=norm, alpha=0.85, interpolation="nearest")
        if color_by == "score" and 0 < np.count_nonzero(labels) < labels.size:
            # Outlines, so that components scoring near zero (near white) stay visible.
            # (on the mask refined 4× so that the outlines follow the pixel edges)
            f = 4
            fine = np.kron((labels > 0).astype(float), np.ones((f, f)))
            ax.contour((np.arange(w * f) + 0.5) / f - 0.5, (np.arange(h * f) + 0.5) / f - 0.5, fine, levels=[0.5],
                       colors="black", linewidths=0.6)
        merged = t >= hierarchy["iteration_levels"]
        best = max(level["scores"], default=float("nan"))
        ax.set_title(f"level {t}{' (merge)' if merged else ''}: {len(level['components'])} comp.\nmax score {best:.3g}",
                     fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        axes.append(ax)
    for k in range(len(chosen), rows * cols):
        grid[k // cols, k % cols].set_visible(False)
    if color_by == "score":
        fig.subplots_adjust(left=0.02, right=0.86, bottom=0.03, top=top, wspace=0.08, hspace=0.35)
        bar = fig.add_axes([0.89, 0.1, 0.02, 0.75])
        fig.colorbar(ScalarMappable(norm=norm, cmap=colours), cax=bar, label="score")
    else:
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=top, wspace=0.08, hspace=0.35)
    _save(fig, path)
    return Axes(axes)

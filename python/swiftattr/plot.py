"""Plot helpers (matplotlib is imported lazily, so it is needed only when plotting)."""
from __future__ import annotations

import numpy as np


def rate(result, *, top=None, names=None, class_names=None, axes=None):
    """Sorted RATE bars for each output class, with the 1/m line of a uniform ranking.

    result: a RateResult; top: show only the `top` largest values; names: labels of the variables
    (or groups); class_names: one title per class; axes: a matplotlib Axes per class (created if None).
    Returns the list of axes.
    """
    import matplotlib.pyplot as plt  # lazy: plotting is optional

    values = np.asarray(result.rate)
    classes, m = values.shape
    scored = m if result.nullify is None or result.groups is not None else m - len(np.unique(result.nullify))
    if axes is None:
        _, axes = plt.subplots(classes, 1, figsize=(8, 2.6 * classes), squeeze=False)
        axes = list(axes[:, 0])
    axes = list(np.atleast_1d(axes))
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
    return axes


def image_attributions(images, attributions, *, titles=None, shape=None, method_names=None, path=None):
    """A grid of images (first row) and their attribution maps (one row per method), red for positive and
    blue for negative contributions on a symmetric scale per map.

    images: (k, ...) array; attributions: one (k, ...) array or a list of them (one per method); shape:
    the (H, W) to reshape each example to (default: the trailing two dimensions, channels summed);
    method_names: row labels; titles: one per column; path: save the figure there when given.
    Returns the matplotlib Figure.
    """
    import matplotlib

    if path is not None and matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    maps = [np.asarray(attributions)] if not isinstance(attributions, (list, tuple)) else [np.asarray(a) for a in attributions]
    k = images.shape[0]

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

    fig, axes = plt.subplots(1 + len(maps), k, figsize=(1.8 * k, 1.9 * (1 + len(maps))), squeeze=False)
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
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig

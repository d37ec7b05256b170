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

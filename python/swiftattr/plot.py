"""Plot helpers (matplotlib is imported lazily, so it is needed only when plotting).

Every plot draws on a ``matplotlib.figure.Figure`` of its own (or on the caller's axes) and never touches
pyplot or the backend: after ``%matplotlib inline`` the session's backend stays what it was, and no figure
is left registered with pyplot. A returned Figure displays in a notebook as the cell's value; ``path=``
saves it (the format from the file name).

- images: :func:`image` (Captum's ``visualize_image_attr`` modes and signs, with a colour bar in attribution
  units), :func:`image_attributions` (examples × methods on one shared, per-row or per-panel scale);
- sequences: :func:`sequence_logo` (one-hot DNA, RNA or protein contributions as letters, with a zoom window);
- tables: :func:`summary` (shap's beeswarm) and :func:`bar`; :func:`interactions` (Integrated Hessians);
- text: :func:`text` (highlighted tokens: HTML in a notebook, PNG when saved);
- several methods side by side: :func:`compare`;
- global importance and hierarchies: :func:`rate`, :func:`acd_text`, :func:`acd_image`.

:func:`image`, :func:`image_attributions`, :func:`sequence_logo`, :func:`summary`, :func:`bar`, :func:`text` and
:func:`compare` return the Figure; :func:`rate`, :func:`interactions` and the ACD plots return the list of
axes they drew on (an :class:`Axes`, whose ``.figure`` is the Figure).
"""
from __future__ import annotations

import io
import os

import numpy as np

from ._args import INT64_MAX, as_bool, as_choice, as_f32, as_float, as_int, as_path, as_shape
from ._ffi import SA_ERR_INVALID_ARGUMENT, SA_ERR_NON_FINITE, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM, SwiftAttrError


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


def _figure(figsize, layout=None):
    from matplotlib.figure import Figure  # lazy: plotting is optional

    return Figure(figsize=figsize, layout=layout)


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


# --- image attributions (Captum's visualize_image_attr) -----------------------------------------------------

SIGNS = ("all", "positive", "negative", "absolute_value")
IMAGE_METHODS = ("heat_map", "blended_heat_map", "original_image", "masked_image", "alpha_scaling")
SCALES = ("shared", "row", "panel")
_DEFAULT_CMAPS = {"all": "RdBu_r", "positive": "Reds", "negative": "Blues_r", "absolute_value": "Greens"}


def _option(value, options, name):
    """``value`` when it is one of ``options`` (strings), else SA_ERR_UNKNOWN_ENUM naming ``name``."""
    return options[as_choice(value, {o: i for i, o in enumerate(options)}, name)]


def _finite(a, name):
    """``a`` as float64 when every value is finite: a NaN would leave a hole in the picture, silently."""
    a = np.asarray(a, dtype=np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        i = tuple(int(v) for v in np.unravel_index(int(np.argmax(bad)), a.shape))
        raise SwiftAttrError(f"{name}: non-finite value {a[i]} at index {i}", SA_ERR_NON_FINITE)
    return a


def _outlier_perc(value, name="outlier_perc"):
    v = as_float(value, name)
    if not 0.0 <= v < 100.0:
        raise SwiftAttrError(f"{name} must be in [0, 100), got {v}", SA_ERR_OUT_OF_RANGE)
    return v


def _cumulative_threshold(values, percentile):
    """Captum's outlier threshold: sort the (non-negative) values and return the first whose cumulative sum
    reaches ``percentile`` % of the total, so the largest values carrying the last 100 − percentile % of the
    total mass are clipped (not the top percent of pixels by count)."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size == 0:
        return 0.0
    sums = np.cumsum(v)
    return float(v[min(int(np.searchsorted(sums, sums[-1] * 0.01 * percentile)), v.size - 1)])


def _signed_part(a, sign):
    """The part of the map that ``sign`` shows: all: φ; positive: max(φ, 0); negative: min(φ, 0); absolute_value: |φ|."""
    if sign == "positive":
        return np.maximum(a, 0.0)
    if sign == "negative":
        return np.minimum(a, 0.0)
    if sign == "absolute_value":
        return np.abs(a)
    return a


def _scale_limit(maps, sign, outlier_perc):
    """The colour scale's extent t over ``maps`` (pooled): Captum's cumulative-sum threshold of |part| at
    100 − outlier_perc % (max |part| when outlier_perc = 0); 1 for an all-zero part, so the scale stays valid."""
    pooled = np.concatenate([np.abs(_signed_part(m, sign)).ravel() for m in maps])
    return _cumulative_threshold(pooled, 100.0 - outlier_perc) or 1.0


def _limits(sign, t):
    """The colour bar's (vmin, vmax) for extent t: ±t for all, [0, t] for positive and absolute_value, [−t, 0] for negative."""
    return {"all": (-t, t), "positive": (0.0, t), "negative": (-t, 0.0), "absolute_value": (0.0, t)}[sign]


def _channels_last(a, name, shape=None):
    """One example as (H, W) or (H, W, C): from (H, W), PyTorch's (C, H, W), channels-last (H, W, C) (recognised
    when the last axis has 1, 3 or 4 entries and the first does not), or flat (reshaped to ``shape``, or to a
    square)."""
    a = np.asarray(a)
    if shape is not None:
        if int(np.prod(shape)) != a.size:
            raise SwiftAttrError(f"shape: {tuple(shape)} does not hold the {a.size} values of {name}", SA_ERR_SHAPE)
        a = a.reshape(shape)
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        if side * side != a.size:
            raise SwiftAttrError(f"{name}: {a.size} values are not a square image; give shape=(H, W)", SA_ERR_SHAPE)
        a = a.reshape(side, side)
    if a.ndim == 2:
        return a
    if a.ndim == 3:
        return a if a.shape[-1] in (1, 3, 4) and a.shape[0] not in (1, 3, 4) else np.moveaxis(a, 0, -1)
    raise SwiftAttrError(f"{name}: expected one image of shape (H, W), (C, H, W) or (H, W, C), got {a.shape}", SA_ERR_SHAPE)


def _attribution_map(a, name, shape=None):
    """An attribution as one (H, W) map, summed over channels (as Captum's visualisation does)."""
    a = _channels_last(_finite(a, name), name, shape)
    return a.sum(axis=-1) if a.ndim == 3 else a


def _display_image(img, name, hw, shape=None):
    """An image for display: (H, W) grey or (H, W, 3) RGB, rescaled to [0, 1] by its own min and max."""
    img = _channels_last(_finite(img, name), name, shape)
    if img.ndim == 3:  # RGB(A) shows in colour, other channel counts as their mean
        img = img[..., :3] if img.shape[-1] in (3, 4) else img.mean(axis=-1)
    if img.shape[:2] != tuple(hw):
        raise SwiftAttrError(f"{name}: an image of {img.shape[0]}×{img.shape[1]} pixels for an attribution of "
                             f"{hw[0]}×{hw[1]}", SA_ERR_SHAPE)
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def _grey(img):
    return img.mean(axis=-1) if img.ndim == 3 else img


def _image_panel(ax, amap, img, method, sign, t, cmap, alpha_overlay, image_cmap):
    """Draws one panel; returns the heat map's AxesImage (for its colour bar) or None."""
    ax.set_xticks([])
    ax.set_yticks([])
    if method == "original_image":
        ax.imshow(img, cmap=image_cmap if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        return None
    part = _signed_part(amap, sign)
    if method in ("heat_map", "blended_heat_map"):
        alpha = None
        if method == "blended_heat_map":
            ax.imshow(_grey(img), cmap=image_cmap, vmin=0, vmax=1, interpolation="nearest")
            alpha = alpha_overlay
        vmin, vmax = _limits(sign, t)
        return ax.imshow(part, cmap=cmap or _DEFAULT_CMAPS[sign], vmin=vmin, vmax=vmax, alpha=alpha, interpolation="nearest")
    weight = np.clip(np.abs(part) / t, 0.0, 1.0)  # masked_image, alpha_scaling: |part| on [0, 1]
    if method == "masked_image":  # the image times the weight (a grey image in image_cmap)
        if img.ndim == 2:
            ax.imshow(img * weight, cmap=image_cmap, vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img * weight[..., None], vmin=0, vmax=1, interpolation="nearest")
        return None
    from matplotlib import colormaps

    rgb = img if img.ndim == 3 else colormaps[image_cmap](img)[..., :3]  # the image with opacity = the weight
    ax.imshow(np.concatenate([rgb, weight[..., None]], axis=-1), interpolation="nearest")
    return None


def _colorbar(fig, mappable, axes, parts, label="attribution"):
    """A colour bar for ``mappable``'s scale beside ``axes`` (opaque even when the map is blended), with arrows
    at the ends whose values were clipped."""
    from matplotlib.cm import ScalarMappable

    vmin, vmax = mappable.norm.vmin, mappable.norm.vmax
    high = any(float(p.max()) > vmax for p in parts)
    low = any(float(p.min()) < vmin for p in parts)
    extend = "both" if high and low else "max" if high else "min" if low else "neither"
    bar = fig.colorbar(ScalarMappable(norm=mappable.norm, cmap=mappable.cmap), ax=axes, extend=extend, shrink=0.9)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def _check_method_sign(method, sign, has_image):
    method = _option(method, IMAGE_METHODS, "method")
    sign = _option(sign, SIGNS, "sign")
    if method in ("masked_image", "alpha_scaling") and sign == "all":
        raise SwiftAttrError(f"sign: {method} weights pixels by the size of one sign; use positive, negative or "
                             "absolute_value, not all", SA_ERR_INVALID_ARGUMENT)
    if method != "heat_map" and not has_image:
        raise SwiftAttrError(f"image: method {method!r} draws the image, so it is required", SA_ERR_INVALID_ARGUMENT)
    return method, sign


def image(attribution, image=None, *, method="heat_map", sign="absolute_value", outlier_perc=2.0, cmap=None,
          alpha_overlay=0.5, colorbar=True, title=None, shape=None, image_cmap="gray", figsize=None, ax=None,
          path=None):
    """One example's attribution drawn as Captum's ``visualize_image_attr`` (with lists of methods and
    signs, as ``visualize_image_attr_multiple``): one panel per (method, sign).

    Parameters
    ----------
    attribution : array, (H, W), (C, H, W), (H, W, C), or flat with ``shape``
        One example's attribution; channels are summed, as Captum's visualisation does.
    image : array or None, default None
        The example itself in any of those layouts (rescaled to [0, 1] for display); every method but
        ``heat_map`` draws it.
    method : str or list of str, default "heat_map"
        ``heat_map``; ``blended_heat_map`` (the heat map at ``alpha_overlay`` over the grey image);
        ``original_image``; ``masked_image`` (the image times w = min(|part|/t, 1)); ``alpha_scaling`` (the
        image with opacity w).
    sign : str or list of str, default "absolute_value"
        The part of φ shown: ``all`` (φ, colour bar [−t, t]), ``positive`` (max(φ, 0), [0, t]), ``negative``
        (min(φ, 0), [−t, 0]) or ``absolute_value`` (|φ|, [0, t]). Masked and alpha plots need a sign other
        than ``all``. One sign, or one per method.
    outlier_perc : float in [0, 100), default 2
        Captum's outlier clipping: the values of |part| are sorted and t is the first whose cumulative sum
        reaches 100 − outlier_perc % of the total (t = max |part| for 0). Clipped ends get arrows on the bar.
    cmap : str or None
        The heat map's colour map; default RdBu_r for ``all`` (red positive), Reds, Blues_r and Greens.
    alpha_overlay : float in [0, 1], default 0.5
    colorbar : bool, default True
        A colour bar, in attribution units, beside each heat map.
    title : str, list of str or None
        One title, or one per panel.
    shape : tuple or None
        The per-example shape a flat attribution (and image) is reshaped to, e.g. (8, 8).
    image_cmap : str, default "gray"
        How a one-channel image is drawn ("gray_r" for dark ink on white).
    figsize : (float, float) or None
    ax : matplotlib Axes or None
        Draw the one panel there.
    path : path or file object or None
        Save the figure there.

    Returns
    -------
    matplotlib.figure.Figure
        Heat maps keep their AxesImage in ``ax.images``; colour bars have the label "<colorbar>".

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> phi = np.array([[1.0, -2.0], [0.5, 0.0]])
    >>> fig = sa.plot.image(phi, sign="all", outlier_perc=0)
    >>> [tuple(map(float, a.get_ylim())) for a in fig.axes if a.get_label() == "<colorbar>"]
    [(-2.0, 2.0)]
    """
    methods = [method] if isinstance(method, str) else list(method)
    signs = [sign] if isinstance(sign, str) else list(sign)
    if len(signs) == 1 and len(methods) > 1:
        signs = signs * len(methods)
    if len(signs) != len(methods) or not methods:
        raise SwiftAttrError(f"sign: expected one sign or one per method ({len(methods)}), got {len(signs)}", SA_ERR_SHAPE)
    pairs = [_check_method_sign(m, s, image is not None) for m, s in zip(methods, signs)]
    outlier_perc = _outlier_perc(outlier_perc)
    alpha_overlay = as_float(alpha_overlay, "alpha_overlay")
    if not 0.0 <= alpha_overlay <= 1.0:
        raise SwiftAttrError(f"alpha_overlay must be in [0, 1], got {alpha_overlay}", SA_ERR_OUT_OF_RANGE)
    colorbar = as_bool(colorbar, "colorbar")
    shape = as_shape(shape, "shape") if shape is not None else None
    amap = _attribution_map(as_f32(attribution, "attribution"), "attribution", shape)
    img = _display_image(as_f32(image, "image"), "image", amap.shape, shape) if image is not None else None
    if ax is not None and len(pairs) != 1:
        raise SwiftAttrError(f"ax: one Axes draws one panel; got {len(pairs)} methods", SA_ERR_INVALID_ARGUMENT)
    titles = [title] if title is None or isinstance(title, str) else list(title)
    if len(titles) == 1:
        titles = titles * len(pairs)
    if len(titles) != len(pairs):
        raise SwiftAttrError(f"title: expected one title or one per panel ({len(pairs)}), got {len(titles)}", SA_ERR_SHAPE)
    if ax is None:
        fig = _figure(figsize or (3.4 * len(pairs) + 0.6, 3.2), layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(1, len(pairs))))
    else:
        fig, axes = ax.figure, [ax]
    for panel, (m, s), name in zip(axes, pairs, titles):
        t = _scale_limit([amap], s, outlier_perc)
        im = _image_panel(panel, amap, img, m, s, t, cmap, alpha_overlay, image_cmap)
        if im is not None and colorbar:
            _colorbar(fig, im, panel, [_signed_part(amap, s)])
        if name is not None:
            panel.set_title(str(name), fontsize=9)
    _save(fig, path)
    return fig


def image_attributions(images, attributions, *, titles=None, shape=None, method_names=None, method="heat_map",
                       sign="all", outlier_perc=2.0, scale="shared", cmap=None, alpha_overlay=0.5, colorbar=True,
                       show_images=True, image_cmap="gray", path=None):
    """A grid comparing the attributions of several examples and methods: the images in the first row
    (unless ``show_images=False``), then one row per method, one column per example.

    Parameters
    ----------
    images : array (k, ...)
        The k examples, in any layout :func:`image` takes.
    attributions : array (k, ...) or list of them
        One array per method, of the images' shape (channels summed).
    titles : list of k str or None
        Column titles.
    shape : tuple or None
        The per-example shape flat inputs are reshaped to, e.g. (8, 8).
    method_names : list of str or None
        Row labels, one per method.
    method, sign, outlier_perc, cmap, alpha_overlay, image_cmap
        As in :func:`image` (``sign`` defaults to ``all`` here).
    scale : {"shared", "row", "panel"}, default "shared"
        ``shared``: one colour scale and one colour bar for every panel, so colours compare across methods
        and examples; ``row``: one per method; ``panel``: each panel its own, with its own bar.
    colorbar : bool, default True
    show_images : bool, default True
    path : path or file object or None
        Save the figure there.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> images, phi = np.zeros((2, 4, 4)), np.arange(32.0).reshape(2, 4, 4)
    >>> fig = sa.plot.image_attributions(images, [phi, -phi], method_names=["IG", "−IG"], outlier_perc=0)
    >>> len(fig.axes)  # 2 images, 2 × 2 maps and one shared colour bar
    7
    """
    images = as_f32(images, "images")
    if isinstance(attributions, (list, tuple)):
        maps = [as_f32(a, f"attributions[{i}]") for i, a in enumerate(attributions)]
        names = [f"attributions[{i}]" for i in range(len(maps))]
    else:
        maps, names = [as_f32(attributions, "attributions")], ["attributions"]
    if not maps:
        raise SwiftAttrError("attributions: expected at least one array", SA_ERR_SHAPE)
    shape = as_shape(shape, "shape") if shape is not None else None
    method, sign = _check_method_sign(method, sign, True)
    outlier_perc = _outlier_perc(outlier_perc)
    scale = _option(scale, SCALES, "scale")
    colorbar, show_images = as_bool(colorbar, "colorbar"), as_bool(show_images, "show_images")
    alpha_overlay = as_float(alpha_overlay, "alpha_overlay")
    k = images.shape[0] if images.ndim else 0
    if k == 0:
        raise SwiftAttrError(f"images: expected a batch (k, ...) of at least one image, got shape {images.shape}", SA_ERR_SHAPE)
    for a, name in zip(maps, names):
        if a.ndim == 0 or a.shape[0] != k:
            raise SwiftAttrError(f"{name}: expected {k} examples (one per image), got shape {a.shape}", SA_ERR_SHAPE)
    for label, given in (("titles", titles), ("method_names", method_names)):
        want = k if label == "titles" else len(maps)
        if given is not None and len(given) != want:
            raise SwiftAttrError(f"{label}: expected {want} labels, got {len(given)}", SA_ERR_SHAPE)
    grid = [[_attribution_map(a[j], f"{name}[{j}]", shape) for j in range(k)] for a, name in zip(maps, names)]
    pictures = [_display_image(images[j], f"images[{j}]", grid[0][j].shape, shape) for j in range(k)]
    if scale == "shared":
        limits = [[_scale_limit([m for row in grid for m in row], sign, outlier_perc)] * k for _ in grid]
    elif scale == "row":
        limits = [[_scale_limit(row, sign, outlier_perc)] * k for row in grid]
    else:
        limits = [[_scale_limit([m], sign, outlier_perc) for m in row] for row in grid]
    top = 1 if show_images else 0
    fig = _figure((1.75 * k + (0.9 if colorbar else 0.2) + (0.3 if method_names else 0), 1.8 * (top + len(maps)) + 0.2),
                  layout="constrained")
    axes = fig.subplots(top + len(maps), k, squeeze=False)
    for j in range(k):
        if show_images:
            _image_panel(axes[0, j], None, pictures[j], "original_image", sign, 1.0, None, alpha_overlay, image_cmap)
        if titles is not None:
            axes[0, j].set_title(str(titles[j]), fontsize=8)
    heat = []
    for r, row in enumerate(grid):
        ims = [_image_panel(axes[top + r, j], row[j], pictures[j], method, sign, limits[r][j], cmap, alpha_overlay,
                            image_cmap) for j in range(k)]
        heat.append(ims)
        if method_names is not None:
            axes[top + r, 0].set_ylabel(str(method_names[r]), fontsize=8)
    if colorbar and heat[0][0] is not None:
        parts = [[_signed_part(m, sign) for m in row] for row in grid]
        if scale == "shared":
            _colorbar(fig, heat[0][0], axes[top:, :], [p for row in parts for p in row])
        elif scale == "row":
            for r in range(len(grid)):
                _colorbar(fig, heat[r][0], axes[top + r, :], parts[r])
        else:
            for r in range(len(grid)):
                for j in range(k):
                    _colorbar(fig, heat[r][j], axes[top + r, j], [parts[r][j]], label=None)
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


# --- sequence logos -------------------------------------------------------------------------------------------

ALPHABETS = {"dna": "ACGT", "rna": "ACGU", "protein": "ACDEFGHIKLMNPQRSTVWY"}
# DNA as the DeepLIFT authors colour it (A green, C blue, G orange, T red); amino acids by chemistry.
_LETTER_COLOURS = {"A": "#109648", "C": "#255c99", "G": "#f7a41d", "T": "#d62839", "U": "#d62839"}
_PROTEIN_COLOURS = {**{a: "#109648" for a in "GSTYC"}, **{a: "#8e44ad" for a in "QN"}, **{a: "#255c99" for a in "KRH"},
                    **{a: "#d62839" for a in "DE"}, **{a: "#222222" for a in "AVLIPWFM"}}
_GLYPHS = {}


def _glyph(letter):
    """The outline of ``letter`` in DejaVu Sans Bold (shipped with matplotlib) mapped onto the unit square:
    (vertices, codes), drawn by scaling its width to the column and its height to the contribution."""
    if letter not in _GLYPHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath

        path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
        box = path.get_extents()
        v = (path.vertices - [box.x0, box.y0]) / [max(box.width, 1e-9), max(box.height, 1e-9)]
        _GLYPHS[letter] = (v, path.codes)
    return _GLYPHS[letter]


def _alphabet(alphabet, channels):
    if alphabet is None:
        alphabet = {4: "dna", 20: "protein"}.get(channels)
        if alphabet is None:
            raise SwiftAttrError(f"alphabet: cannot infer an alphabet for {channels} channels; give alphabet= "
                                 "(dna, rna, protein, or the letters, one per channel)", SA_ERR_INVALID_ARGUMENT)
    if isinstance(alphabet, str) and alphabet.lower() in ALPHABETS:
        alphabet = ALPHABETS[alphabet.lower()]
    letters = [str(a) for a in alphabet]
    if any(len(a) == 0 for a in letters):
        raise SwiftAttrError("alphabet: letters must be non-empty strings", SA_ERR_INVALID_ARGUMENT)
    return letters


def _contributions(contributions, onehot, alphabet, name="contributions"):
    """(k, C, L) float64 contributions (times ``onehot`` when given) and the letters; (L, C) input is
    transposed when C matches the alphabet and L does not."""
    c = _finite(as_f32(contributions, name), name)
    if c.ndim not in (2, 3):
        raise SwiftAttrError(f"{name}: expected (C, L) for one sequence or (k, C, L), got shape {c.shape}", SA_ERR_SHAPE)
    c = c if c.ndim == 3 else c[None]
    if onehot is not None:
        o = _finite(as_f32(onehot, "onehot"), "onehot")
        o = o if o.ndim == 3 else o[None]
        if o.shape != c.shape:
            raise SwiftAttrError(f"onehot: expected the shape of {name} {c.shape[1:] if c.shape[0] == 1 else c.shape}, "
                                 f"got {o.shape[1:] if o.shape[0] == 1 else o.shape}", SA_ERR_SHAPE)
        c = c * o
    size = len(_alphabet(alphabet, c.shape[1])) if alphabet is not None or c.shape[1] in (4, 20) else None
    if size is None and c.shape[2] in (4, 20):
        c = np.swapaxes(c, 1, 2)
    elif size is not None and c.shape[1] != size and c.shape[2] == size:
        c = np.swapaxes(c, 1, 2)
    letters = _alphabet(alphabet, c.shape[1])
    if len(letters) != c.shape[1]:
        raise SwiftAttrError(f"alphabet: {len(letters)} letters for {c.shape[1]} channels", SA_ERR_SHAPE)
    return c, letters


def _window(window, length, contributions, width):
    """(start, end) of the positions drawn: ``window`` as given; None draws everything up to 120 positions,
    and otherwise the ``width`` positions of largest total |contribution| (the zoom a long sequence needs)."""
    if window is None:
        if length <= 120:
            return 0, length
        w = min(as_int(width, "zoom_width", 1, INT64_MAX), length)
        mass = np.abs(contributions).sum(axis=(0, 1))
        best = int(np.argmax(np.convolve(mass, np.ones(w), mode="valid")))
        inside = mass[best:best + w]  # centre the window on the mass it holds (many windows may hold all of it)
        centre = best + (float(np.dot(np.arange(w), inside) / inside.sum()) if inside.sum() > 0 else w / 2.0)
        start = int(np.clip(round(centre - w / 2.0), 0, length - w))
        return start, start + w
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise SwiftAttrError(f"window: expected a (start, end) pair of positions, got {window!r}", SA_ERR_INVALID_ARGUMENT)
    start = as_int(window[0], "window[0]", 0, length - 1)
    end = as_int(window[1], "window[1]", start + 1, length)
    return start, end


def _draw_logo(ax, c, letters, start, end, colours, flip_negative):
    """Letters of one sequence's (C, L) contributions at positions start..end−1: at each position the letters
    sorted by |value|, the smallest nearest the axis, positives stacked up and negatives down (upside down,
    as the DeepLIFT authors draw them, unless ``flip_negative=False``). Returns the (low, high) of the stacks."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    patches, faces = [], []
    low = high = 0.0
    for pos in range(start, end):
        column = c[:, pos]
        up = down = 0.0
        for ch in np.argsort(np.abs(column), kind="stable"):
            h = float(column[ch])
            if h == 0.0:
                continue
            v, codes = _glyph(letters[ch])
            x = pos - 0.45 + 0.9 * v[:, 0]  # centred on the position's tick
            if h > 0:
                y, up = up + h * v[:, 1], up + h
            elif flip_negative:
                y, down = down + h * v[:, 1], down + h  # scaled by h < 0: the glyph hangs upside down
            else:
                y, down = down + h + (-h) * v[:, 1], down + h
            patches.append(PathPatch(Path(np.column_stack([x, y]), codes)))
            faces.append(colours.get(letters[ch], "#555555"))
        low, high = min(low, down), max(high, up)
    ax.add_collection(PatchCollection(patches, facecolors=faces, edgecolors="none", match_original=False))
    ax.axhline(0.0, color="#555555", linewidth=0.6)
    ax.set_xlim(start - 0.5, end - 0.5)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # ticks at positions, never between letters
    return low, high


def sequence_logo(contributions, onehot=None, *, alphabet=None, window=None, zoom_width=60, titles=None, colors=None,
                  flip_negative=True, overview=None, sharey=True, figsize=None, ax=None, path=None):
    """Sequence logos of one-hot (DNA, RNA, protein) contributions: at each position every letter is drawn
    as its glyph scaled to the height of its contribution, the smallest nearest the axis, positive letters
    stacked above it and negative ones below, upside down (the DeepLIFT authors' logos).

    Parameters
    ----------
    contributions : array (C, L) or (k, C, L)
        One sequence's contributions, or k logos stacked (examples or methods), in the network's N × C × L
        layout; (L, C) is recognised when C matches the alphabet.
    onehot : array or None
        The input's one-hot encoding: contributions × onehot keeps the letters present (the "actual"
        contributions). Without it every channel is drawn (e.g. hypothetical contributions).
    alphabet : {"dna", "rna", "protein"}, str of letters, or None
        Default: ACGT for C = 4, the 20 amino acids for C = 20.
    window : (start, end) or None
        Positions drawn. Default: all when L ≤ 120, else the ``zoom_width`` positions of largest total
        |contribution|, centred on it.
    zoom_width : int, default 60
    titles : str or list of k str or None
    colors : dict letter → colour or None
        Overrides of the default colours (A green, C blue, G orange, T red; amino acids by chemistry).
    flip_negative : bool, default True
        Draw negative letters upside down (False: upright).
    overview : bool or None
        A strip above the logos with the whole sequence's stacks (the heights above and below the axis at
        every position) and the window shaded; default when the window is not the whole sequence.
    sharey : bool, default True
        One y-scale for every logo.
    figsize : (float, float) or None
    ax : matplotlib Axes or None
        Draw one logo there (no overview).
    path : path or file object or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> contributions = np.zeros((4, 1000))
    >>> contributions[:, 500:507] = 1.0
    >>> fig = sa.plot.sequence_logo(contributions, zoom_width=40)
    >>> strip, logo = fig.axes
    >>> [float(v) for v in logo.get_xlim()]  # the 40 positions 483–522, around the motif at 500–506
    [482.5, 522.5]
    """
    c, letters = _contributions(contributions, onehot, alphabet)
    k, _, length = c.shape
    start, end = _window(window, length, c, zoom_width)
    colours = dict(_PROTEIN_COLOURS if len(letters) == 20 else _LETTER_COLOURS)
    if colors is not None:
        if not isinstance(colors, dict):
            raise SwiftAttrError(f"colors: expected a dict letter → colour, got {type(colors).__name__}")
        colours.update({str(a): v for a, v in colors.items()})
    flip_negative, sharey = as_bool(flip_negative, "flip_negative"), as_bool(sharey, "sharey")
    overview = (start, end) != (0, length) if overview is None else as_bool(overview, "overview")
    if titles is not None:
        titles = [titles] if isinstance(titles, str) else list(titles)
        if len(titles) != k:
            raise SwiftAttrError(f"titles: expected {k} titles (one per logo), got {len(titles)}", SA_ERR_SHAPE)
    if ax is not None:
        if k != 1:
            raise SwiftAttrError(f"ax: one Axes draws one logo; got {k}", SA_ERR_INVALID_ARGUMENT)
        fig, axes, strip = ax.figure, [ax], None
    else:
        width = min(max(4.0, 0.16 * (end - start) + 1.2), 24.0)
        rows = [0.9] * overview + [1.9] * k
        fig = _figure(figsize or (width, sum(rows) + 0.5), layout="constrained")
        grid = fig.subplots(len(rows), 1, squeeze=False, gridspec_kw={"height_ratios": rows})[:, 0]
        strip, axes = (grid[0] if overview else None), list(grid[1:] if overview else grid)
    bounds = [_draw_logo(a, c[i], letters, start, end, colours, flip_negative) for i, a in enumerate(axes)]
    low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
    for i, (a, (lo, hi)) in enumerate(zip(axes, bounds)):
        lo, hi = (low, high) if sharey else (lo, hi)
        pad = 0.05 * ((hi - lo) or 1.0)
        a.set_ylim(lo - pad, hi + pad)
        a.set_ylabel("contribution", fontsize=8)
        a.tick_params(labelsize=7)
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
        if titles is not None:
            a.set_title(str(titles[i]), fontsize=9, loc="left")
        if i < len(axes) - 1:
            a.set_xticklabels([])
    axes[-1].set_xlabel("position", fontsize=8)
    if strip is not None:
        up, down = np.maximum(c, 0).sum(axis=1), np.minimum(c, 0).sum(axis=1)  # stacks' heights: no cancelling
        for i in range(k):
            line, = strip.plot(np.arange(length), up[i], linewidth=0.7, label=None if titles is None else str(titles[i]))
            strip.plot(np.arange(length), down[i], linewidth=0.7, color=line.get_color())
        strip.axvspan(start - 0.5, end - 0.5, color="#f0c419", alpha=0.35, linewidth=0)
        strip.axhline(0.0, color="#555555", linewidth=0.5)
        if titles is not None and k > 1:
            strip.legend(fontsize=7, frameon=False, loc="upper right")
        strip.set_xlim(-0.5, length - 0.5)
        strip.set_title(f"whole sequence (height of the stacks above and below); window {start}–{end - 1}", fontsize=8,
                        loc="left")
        strip.tick_params(labelsize=7)
        for side in ("top", "right"):
            strip.spines[side].set_visible(False)
    _save(fig, path)
    return fig


# --- tabular attributions (shap's summary and bar plots) --------------------------------------------------

def _feature_cmap():
    """Low feature values blue, high red (shap's convention for the beeswarm)."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("swiftattr_feature_value", ["#1e88e5", "#7b3fa0", "#ff0d57"])


def _tabular(attributions, feature_names, name="attributions", ndim=(2,)):
    a = _finite(as_f32(attributions, name), name)
    if a.ndim not in ndim:
        want = " or ".join({1: "(p,) for one example", 2: "(n, p)"}[d] for d in ndim)
        raise SwiftAttrError(f"{name}: expected {want}, got shape {a.shape}", SA_ERR_SHAPE)
    p = a.shape[-1]
    if feature_names is None:
        names = [f"feature {j}" for j in range(p)]
    else:
        names = [str(v) for v in feature_names]
        if len(names) != p:
            raise SwiftAttrError(f"feature_names: expected {p} names (one per feature), got {len(names)}", SA_ERR_SHAPE)
    return a, names


def _swarm(x, rng, bins=100, half_width=0.4):
    """Vertical offsets that pile points of nearby x into a swarm: x is cut into ``bins`` bins and the points of
    a bin alternate above and below the row (0, +1, −1, +2, …), scaled to ±``half_width``."""
    span = float(x.max() - x.min())
    q = np.round(bins * (x - x.min()) / span) if span > 0 else np.zeros_like(x)
    order = np.lexsort((rng.random(x.size), q))
    sq = q[order]
    first = np.r_[0, np.flatnonzero(np.diff(sq)) + 1]
    rank = np.arange(x.size) - np.repeat(first, np.diff(np.r_[first, x.size]))
    off = np.ceil(rank / 2.0) * np.where(rank % 2 == 1, 1.0, -1.0)
    offsets = np.empty(x.size)
    offsets[order] = off
    return offsets * (half_width / max(1.0, float(np.abs(offsets).max())))


def _others_label(count):
    return f"{count} other feature{'s' if count != 1 else ''}"


def summary(attributions, features=None, *, feature_names=None, max_display=20, seed=0, alpha=0.8, figsize=None,
            ax=None, path=None):
    """shap's summary plot: one row per feature (the most important by mean |φ| at the top), one dot per
    example at its attribution, piled into a swarm where dots crowd, coloured by the example's value of the
    feature (low blue, high red; each feature's values clipped to its 5th–95th percentiles, NaN grey).

    Parameters
    ----------
    attributions : array (n, p)
    features : array (n, p) or None
        The inputs the colours come from (None: dots in one colour).
    feature_names : list of p str or None
    max_display : int, default 20
        Rows drawn; the title says how many features were left out.
    seed : int, default 0
        Breaks ties in the swarm (the same seed draws the same plot).
    alpha : float, default 0.8
    figsize : (float, float) or None
    ax : matplotlib Axes or None
    path : path or file object or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> fig = sa.plot.summary(X * [0.1, 2.0, -1.0], X, feature_names=["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]  # bottom to top
    ['a', 'c', 'b']
    """
    a, names = _tabular(attributions, feature_names)
    n, p = a.shape
    values = None
    if features is not None:
        values = np.asarray(as_f32(features, "features"), dtype=np.float64)
        if values.shape != a.shape:
            raise SwiftAttrError(f"features: expected shape {a.shape} (that of attributions), got {values.shape}", SA_ERR_SHAPE)
        if np.isinf(values).any():
            raise SwiftAttrError("features: infinite values cannot be coloured (NaN is drawn grey)", SA_ERR_NON_FINITE)
    top = min(as_int(max_display, "max_display", 1, INT64_MAX), p)
    rng = np.random.default_rng(as_int(seed, "seed", 0, 2**63 - 1))
    order = np.argsort(-np.abs(a).mean(axis=0), kind="stable")[:top]
    if ax is None:
        fig = _figure(figsize or (7.5, 0.38 * top + 1.4), layout="constrained")
        ax = fig.subplots()
    fig = ax.figure
    cmap = _feature_cmap()
    from matplotlib.colors import Normalize

    mappable = None
    for row, j in enumerate(order):
        y = top - 1 - row
        offsets = _swarm(a[:, j], rng)
        if values is None:
            ax.scatter(a[:, j], y + offsets, s=10, color="#1e88e5", alpha=alpha, linewidths=0, rasterized=n > 500)
            continue
        v = values[:, j]
        ok = np.isfinite(v)
        if (~ok).any():
            ax.scatter(a[~ok, j], y + offsets[~ok], s=10, color="#9a9a9a", alpha=alpha, linewidths=0)
        lo, hi = (np.percentile(v[ok], [5, 95]) if ok.any() else (0.0, 1.0))
        if hi <= lo:
            lo, hi = (float(v[ok].min()), float(v[ok].max())) if ok.any() else (0.0, 1.0)
        shade = np.clip((v[ok] - lo) / (hi - lo), 0, 1) if hi > lo else np.full(ok.sum(), 0.5)
        mappable = ax.scatter(a[ok, j], y + offsets[ok], s=10, c=shade, cmap=cmap, norm=Normalize(0, 1), alpha=alpha,
                              linewidths=0, rasterized=n > 500)
    ax.axvline(0.0, color="#777777", linewidth=0.8, zorder=0)
    ax.set_yticks(np.arange(top))
    ax.set_yticklabels([names[j] for j in order[::-1]], fontsize=8)
    ax.set_ylim(-0.6, top - 0.4)
    ax.set_xlabel("attribution (effect on the model's output)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if p > top:
        ax.set_title(f"top {top} of {p} features by mean |attribution|", fontsize=9)
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=ax, aspect=40, pad=0.01)
        bar.set_ticks([0, 1])
        bar.set_ticklabels(["low", "high"])
        bar.set_label("feature value", fontsize=8)
        bar.ax.tick_params(labelsize=7, length=0)
        bar.outline.set_visible(False)
    _save(fig, path)
    return fig


def bar(attributions, *, feature_names=None, max_display=10, figsize=None, ax=None, path=None):
    """shap's bar plot: for (n, p) attributions each feature's mean |φ| over the examples; for one example's
    (p,) attributions its signed values (red positive, blue negative). The ``max_display`` largest are
    drawn, the most important at the top, each labelled with its value, and the rest summed into one bar.

    Parameters
    ----------
    attributions : array (n, p) or (p,)
    feature_names : list of p str or None
    max_display : int, default 10
    figsize : (float, float) or None
    ax : matplotlib Axes or None
    path : path or file object or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> fig = sa.plot.bar(np.array([0.5, -2.0, 1.0, 0.1]), feature_names=list("wxyz"), max_display=2)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['x', 'y', 'sum of 2 other features']
    """
    a, names = _tabular(attributions, feature_names, ndim=(1, 2))
    single = a.ndim == 1
    values = a if single else np.abs(a).mean(axis=0)
    p = values.size
    top = min(as_int(max_display, "max_display", 1, INT64_MAX), p)
    order = np.argsort(-np.abs(values), kind="stable")
    shown, rest = order[:top], order[top:]
    heights = list(values[shown])
    labels = [names[j] for j in shown]
    if rest.size:
        heights.append(float(values[rest].sum()))
        labels.append(f"sum of {_others_label(rest.size)}")
    if ax is None:
        fig = _figure(figsize or (7.0, 0.36 * len(heights) + 1.1), layout="constrained")
        ax = fig.subplots()
    fig = ax.figure
    y = np.arange(len(heights))[::-1]
    colours = ["#ff0d57" if h >= 0 else "#1e88e5" for h in heights] if single else ["#1e88e5"] * len(heights)
    if rest.size:
        colours[-1] = "#b0b0b0"
    ax.barh(y, heights, color=colours, height=0.7)
    span = max(abs(h) for h in heights) or 1.0
    for yy, h in zip(y, heights):
        ax.text(h + (0.01 * span if h >= 0 else -0.01 * span), yy, f"{h:+.3g}" if single else f"{h:.3g}",
                va="center", ha="left" if h >= 0 else "right", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(0.0, color="#777777", linewidth=0.8)
    lo, hi = min(0.0, min(heights)), max(0.0, max(heights))
    if lo == hi:  # all zero
        lo, hi = -span, span
    ax.set_xlim(lo - 0.25 * span * (lo < 0), hi + 0.25 * span * (hi > 0))  # room for the values' labels
    ax.set_xlabel("attribution" if single else "mean |attribution|", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _save(fig, path)
    return fig


# --- token attributions as highlighted text ----------------------------------------------------------------

_TEXT_FIGURE = []


def _text_figure_class():
    """A matplotlib Figure that a notebook shows as HTML (``_repr_html_``), while ``savefig`` still draws the PNG."""
    if not _TEXT_FIGURE:
        from matplotlib.figure import Figure

        class TextFigure(Figure):
            """The PNG rendering of highlighted tokens, with their HTML in ``.html`` (shown by notebooks)."""

            html = ""

            def _repr_html_(self):
                return self.html

        _TEXT_FIGURE.append(TextFigure)
    return _TEXT_FIGURE[0]


def _hex(rgba):
    return "#" + "".join(f"{int(round(255 * v)):02x}" for v in rgba[:3])


def text(tokens, attributions, *, labels=None, outlier_perc=0.0, cmap="RdBu_r", width=9.0, fontsize=11, path=None):
    """Tokens highlighted by their attributions on a diverging colour scale centred at zero (red positive,
    blue negative), one scale for every row: ±t with t Captum's outlier threshold of |φ| (max |φ| by default).

    Parameters
    ----------
    tokens : list of str, or list of lists of str
        The L tokens of one sequence (shared by every row), or one list per row.
    attributions : array (L,) or (k, L), or a list of k 1-D arrays
        One value per token; with one token list per row, rows may have their own lengths (e.g. without the
        padding).
    labels : str, list of k str or None
        Row labels (e.g. the method or the prediction).
    outlier_perc : float in [0, 100), default 0
    cmap : str or Colormap, default "RdBu_r"
    width : float, default 9
        The PNG's width in inches (tokens wrap to it).
    fontsize : float, default 11
    path : path or file object or None
        A name ending in ``.html`` writes the HTML; any other saves the PNG.

    Returns
    -------
    matplotlib.figure.Figure
        A Figure (drawn as a PNG by ``savefig``) whose ``_repr_html_`` gives the highlighted tokens, each value
        in a tooltip, so that a notebook shows the HTML; ``.html`` holds it.

    Examples
    --------
    >>> import swiftattr as sa
    >>> fig = sa.plot.text(["not", "<good>"], [-1.0, 2.0])
    >>> "&lt;good&gt;" in fig._repr_html_()
    True
    """
    import html as _html

    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if isinstance(tokens, str):
        raise SwiftAttrError("tokens: expected a list of tokens (split the text first), got a string", SA_ERR_INVALID_ARGUMENT)
    tokens = list(tokens)
    ragged = bool(tokens) and not isinstance(tokens[0], str)
    if ragged and isinstance(attributions, (list, tuple)):  # rows of their own lengths
        a = [_finite(as_f32(v, f"attributions[{i}]"), f"attributions[{i}]") for i, v in enumerate(attributions)]
        for i, v in enumerate(a):
            if v.ndim != 1:
                raise SwiftAttrError(f"attributions[{i}]: expected one value per token, got shape {v.shape}", SA_ERR_SHAPE)
    else:
        arr = _finite(as_f32(attributions, "attributions"), "attributions")
        if arr.ndim not in (1, 2) or arr.size == 0:
            raise SwiftAttrError(f"attributions: expected (L,) or (k, L) token attributions, got shape {arr.shape}",
                                 SA_ERR_SHAPE)
        a = list(arr if arr.ndim == 2 else arr[None])
    k = len(a)
    rows = [list(map(str, t)) for t in tokens] if ragged else [list(map(str, tokens))] * k
    if len(rows) != k or k == 0:
        raise SwiftAttrError(f"tokens: expected {k} token lists (one per row), got {len(rows)}", SA_ERR_SHAPE)
    for i, (r, v) in enumerate(zip(rows, a)):
        if len(r) != v.size:
            raise SwiftAttrError(f"tokens: row {i} has {len(r)} tokens for {v.size} attributions", SA_ERR_SHAPE)
    if labels is not None:
        labels = [str(v) for v in ([labels] if isinstance(labels, str) else labels)]
        if len(labels) != k:
            raise SwiftAttrError(f"labels: expected {k} labels (one per row), got {len(labels)}", SA_ERR_SHAPE)
    t = _scale_limit(a, "all", _outlier_perc(outlier_perc))
    norm, colours = Normalize(-t, t), colormaps[cmap] if isinstance(cmap, str) else cmap
    size = as_float(fontsize, "fontsize")
    # HTML: one line per row, each token a span whose background is its colour.
    lines = []
    for i in range(k):
        spans = []
        for tok, v in zip(rows[i], a[i]):
            rgba = colours(norm(v))
            ink = "#ffffff" if 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5 else "#000000"
            spans.append(f'<span title="{v:.4g}" style="background-color:{_hex(rgba)};color:{ink};padding:1px 3px;'
                         f'margin:0 1px;border-radius:3px">{_html.escape(tok)}</span>')
        head = f'<b style="margin-right:6px">{_html.escape(labels[i])}</b>' if labels is not None else ""
        lines.append(f'<div style="margin:4px 0;line-height:1.9">{head}{"".join(spans)}</div>')
    legend = "".join(f'<span style="background-color:{_hex(colours(norm(v)))};padding:1px 6px">{v:+.3g}</span>'
                     for v in np.linspace(-t, t, 5))
    page = (f'<div style="font-family:monospace;font-size:{size:g}px">{"".join(lines)}'
            f'<div style="margin-top:6px;font-size:{0.8 * size:g}px">attribution scale: {legend}</div></div>')
    # PNG: monospace tokens laid out in points (a DejaVu Sans Mono character is 0.6 em wide), wrapped to width.
    fig_w = as_float(width, "width")
    char, line_h = 0.6 * size, 1.9 * size
    label_w = (max(len(s) for s in labels) + 2) * char if labels is not None else 0.0
    usable = fig_w * 72.0 - label_w - 30.0
    placed, y = [], 0.0
    for i in range(k):
        x = 0.0
        placed.append((i, None, y + line_h / 2, None, None))  # where the row's label goes
        for tok, v in zip(rows[i], a[i]):
            w = (len(tok) + 0.6) * char
            if x > 0 and x + w > usable:
                x, y = 0.0, y + line_h
            placed.append((i, label_w + x, y + line_h / 2, tok, v))
            x += w + 0.5 * char
        y += line_h * (1.35 if i < k - 1 else 1.0)
    text_in, bar_in = (y + 8.0) / 72.0, 0.7  # the tokens' block, and the colour bar's zone below it
    fig_h = text_in + bar_in
    fig = _text_figure_class()(figsize=(fig_w, fig_h))
    fig.html = page
    ax = fig.add_axes([0.0, bar_in / fig_h, 1.0, text_in / fig_h])
    ax.set_xlim(-10, fig_w * 72.0 - 10)
    ax.set_ylim(y + 4.0, -4.0)
    ax.axis("off")
    for i, x, yy, tok, v in placed:
        if tok is None:
            if labels is not None:
                ax.text(0, yy, labels[i], fontsize=size * 0.9, fontweight="bold", va="center", ha="left")
            continue
        rgba = colours(norm(v))
        ink = "white" if 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5 else "black"
        ax.text(x, yy, tok, family="DejaVu Sans Mono", fontsize=size, va="center", ha="left", color=ink,
                bbox={"boxstyle": "round,pad=0.25", "facecolor": rgba, "edgecolor": "none"})
    bar_ax = fig.add_axes([0.3, 0.4 / fig_h, 0.4, 0.1 / fig_h], label="<colorbar>")
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=colours), cax=bar_ax, orientation="horizontal")
    bar.set_label("attribution", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    if path is not None and not hasattr(path, "write") and os.fsdecode(as_path(path, "path")).lower().endswith((".html", ".htm")):
        with open(os.fsdecode(as_path(path, "path")), "w", encoding="utf-8") as f:
            f.write(page)
    else:
        _save(fig, path)
    return fig


# --- several methods side by side --------------------------------------------------------------------------

COMPARE_KINDS = ("image", "sequence", "tabular", "text")


def compare(attributions, inputs=None, *, kind="image", feature_names=None, path=None, **options):
    """Several methods' attributions of the same inputs side by side, on one scale.

    Parameters
    ----------
    attributions : dict name → array
        E.g. ``{"IG": ig, "DeepLIFT": dl, "EG": eg}``, all of one shape.
    inputs : array, list of str or None
        ``kind="image"``: the k images; ``"sequence"``: the one-hot sequence (multiplied in as ``onehot``);
        ``"text"``: the tokens; ``"tabular"``: unused.
    kind : {"image", "sequence", "tabular", "text"}, default "image"
        ``image``: :func:`image_attributions`, one row per method, one shared colour bar. ``sequence``: one
        example's (C, L) contributions per method as stacked logos with one y-scale. ``tabular``: grouped
        bars per feature, mean |φ| for (n, p) attributions or the signed values of one example's (p,), in
        the order of the first method (``max_display``, default 10). ``text``: :func:`text` with one row per
        method.
    feature_names : list of str or None
        For ``kind="tabular"``.
    path : path or file object or None
    **options
        Passed to the function drawn (e.g. ``window=`` for sequences, ``outlier_perc=`` for images).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> phi = np.random.default_rng(0).standard_normal((2, 5, 5))
    >>> fig = sa.plot.compare({"IG": phi, "DeepLIFT": 2 * phi}, np.zeros((2, 5, 5)), outlier_perc=0)
    >>> bar, = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    >>> bool(np.isclose(bar.get_ylim()[1], 2 * np.abs(phi).max()))
    True
    """
    if not isinstance(attributions, dict) or not attributions:
        raise SwiftAttrError("attributions: expected a dict method name → attributions, e.g. {'IG': ig, 'DeepLIFT': dl}",
                             SA_ERR_INVALID_ARGUMENT)
    kind = _option(kind, COMPARE_KINDS, "kind")
    names = [str(n) for n in attributions]
    arrays = [as_f32(v, f"attributions[{n!r}]") for n, v in attributions.items()]
    for n, v in zip(names[1:], arrays[1:]):
        if v.shape != arrays[0].shape:
            raise SwiftAttrError(f"attributions[{n!r}]: shape {v.shape} differs from {names[0]!r}'s {arrays[0].shape}",
                                 SA_ERR_SHAPE)
    if kind == "image":
        if inputs is None:
            raise SwiftAttrError("inputs: the images are required for kind='image'", SA_ERR_INVALID_ARGUMENT)
        return image_attributions(inputs, arrays, method_names=names, path=path, **options)
    if kind == "sequence":
        stacked = np.stack([a if a.ndim == 2 else a.reshape(a.shape[-2:]) if a.ndim == 3 and a.shape[0] == 1 else a
                            for a in arrays])
        if stacked.ndim != 3:
            raise SwiftAttrError(f"attributions: kind='sequence' compares one example's (C, L) contributions, got "
                                 f"shape {arrays[0].shape}", SA_ERR_SHAPE)
        onehot = None
        if inputs is not None:
            o = as_f32(inputs, "inputs")
            onehot = np.broadcast_to(o.reshape(stacked.shape[1:]) if o.size == stacked[0].size else o, stacked.shape)
        return sequence_logo(stacked, onehot, titles=names, path=path, **options)
    if kind == "text":
        if inputs is None:
            raise SwiftAttrError("inputs: the tokens are required for kind='text'", SA_ERR_INVALID_ARGUMENT)
        return text(inputs, np.stack([a.ravel() for a in arrays]), labels=names, path=path, **options)
    a0, fnames = _tabular(arrays[0], feature_names, "attributions", ndim=(1, 2))
    table = np.stack([_tabular(a, feature_names, f"attributions[{n!r}]", ndim=(1, 2))[0] for n, a in zip(names, arrays)])
    values = table if a0.ndim == 1 else np.abs(table).mean(axis=1)
    top = min(as_int(options.pop("max_display", 10), "max_display", 1, INT64_MAX), values.shape[1])
    if options:
        raise SwiftAttrError(f"{next(iter(options))}: not an option of kind='tabular'", SA_ERR_INVALID_ARGUMENT)
    order = np.argsort(-np.abs(values[0]), kind="stable")[:top]
    m = len(names)
    fig = _figure((7.5, 0.22 * top * m + 1.4), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / m
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    for i, name in enumerate(names):
        y = np.arange(top)[::-1] + 0.4 - (i + 0.5) * height
        ax.barh(y, values[i, order], height=height * 0.95, color=palette(i % 10), label=name)
    ax.set_yticks(np.arange(top)[::-1])
    ax.set_yticklabels([fnames[j] for j in order], fontsize=8)
    ax.axvline(0.0, color="#777777", linewidth=0.8)
    ax.set_xlabel("attribution" if a0.ndim == 1 else "mean |attribution|", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _save(fig, path)
    return fig

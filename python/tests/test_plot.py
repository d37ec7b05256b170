"""Plots never change matplotlib's backend nor pyplot's state (issue 8): after `%matplotlib inline` a plot with
``path=`` used to switch the session to Agg because it did not recognise the backend's name."""
import sys
import types

import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import, small_cnn

matplotlib = optional_import("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

BACKEND = "module://swiftattr_test_backend"


@pytest.fixture
def foreign_backend():
    """A backend whose name the library cannot know (as the notebook's inline backend), Agg underneath."""
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureManagerBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    module = types.ModuleType("swiftattr_test_backend")
    module.FigureCanvas = FigureCanvasAgg
    module.FigureManager = FigureManagerBase
    module.show = lambda *a, **k: None
    sys.modules[module.__name__] = module
    previous = matplotlib.get_backend()
    matplotlib.use(BACKEND)
    assert matplotlib.get_backend() == BACKEND
    figures = plt.get_fignums()
    yield plt, figures
    matplotlib.use(previous)
    del sys.modules[module.__name__]


def rate_result():
    rng = np.random.default_rng(16)
    return sa.rate(esa_mean=rng.standard_normal((2, 6)), esa_cov=np.stack([np.eye(6), 2 * np.eye(6)]))


def test_image_attributions_keeps_the_backend(foreign_backend, tmp_path, rng):
    plt, figures = foreign_backend
    net = small_cnn(rng)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    phi = sa.saliency(net, x, target=0)
    for path in (None, tmp_path / "maps.png", str(tmp_path / "maps2.png")):
        fig = sa.plot.image_attributions(x, phi, path=path, method_names=["saliency"], titles=["a", "b", "c"])
        assert matplotlib.get_backend() == BACKEND
        assert plt.get_fignums() == figures  # no pyplot figure left behind
        assert isinstance(fig, Figure) and len(fig.axes) == 7  # 2 × 3 panels and the shared colour bar
        if path is not None:
            assert (tmp_path / str(path).split("/")[-1]).stat().st_size > 1000


def test_rate_plot_keeps_the_backend(foreign_backend, tmp_path):
    plt, figures = foreign_backend
    axes = sa.plot.rate(rate_result(), top=4, path=tmp_path / "rate.png")
    assert matplotlib.get_backend() == BACKEND
    assert plt.get_fignums() == figures
    assert len(axes) == 2 and isinstance(axes.figure, Figure) and axes[1].figure is axes.figure
    assert axes._repr_png_().startswith(b"\x89PNG")  # a notebook displays the figure
    assert len(axes[0].patches) == 4  # top=4 bars
    assert (tmp_path / "rate.png").stat().st_size > 1000
    # Drawing into the caller's axes uses them and creates nothing else.
    fig = Figure()
    mine = fig.subplots(2, 1)
    assert sa.plot.rate(rate_result(), axes=mine) == list(mine)
    assert plt.get_fignums() == figures


def test_plot_arguments(tmp_path):
    res = rate_result()
    with pytest.raises(sa.SwiftAttrError, match="top: expected an integer, got 1.5"):
        sa.plot.rate(res, top=1.5)
    with pytest.raises(sa.SwiftAttrError, match="top must be in"):
        sa.plot.rate(res, top=0)
    with pytest.raises(sa.SwiftAttrError, match="path: the path contains a NUL byte"):
        sa.plot.image_attributions(np.ones((1, 4, 4)), np.ones((1, 4, 4)), path=str(tmp_path / "a\0.png"))
    with pytest.raises(sa.SwiftAttrError, match="axes: expected 2 Axes"):
        sa.plot.rate(res, axes=[Figure().subplots()])


# --- issue 15: every plot keeps the backend, and what it draws is where it belongs ---------------------------

def colorbars(fig):
    """The colour bars' axes of ``fig`` (matplotlib labels them "<colorbar>")."""
    return [a for a in fig.axes if a.get_label() == "<colorbar>"]


def heat_images(fig):
    return [a.images[-1] for a in fig.axes if a.get_label() != "<colorbar>" and a.images]


def every_plot(tmp_path, rng):
    """(name, callable(path) → Figure) for every plot function of issue 15, on small inputs."""
    img = rng.random((3, 10, 10)).astype(np.float32)
    phi = rng.standard_normal((3, 10, 10)).astype(np.float32)
    seq = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 200)].T
    contrib = rng.standard_normal((4, 200)).astype(np.float32)
    X = rng.standard_normal((40, 5))
    A = X * [2, -1, 0.5, 0, 1]
    tokens = ["a", "<b>", "c", "d"]
    yield "image", lambda path: sa.plot.image(phi, img, method=["original_image", "heat_map", "blended_heat_map",
                                                                "masked_image", "alpha_scaling"],
                                              sign=["all", "all", "all", "positive", "absolute_value"], path=path)
    for scale in ("shared", "row", "panel"):
        yield f"grid-{scale}", lambda path, scale=scale: sa.plot.image_attributions(img[:, None], [phi[:, None], -phi[:, None]],
                                                                                      scale=scale, path=path)
    yield "logo", lambda path: sa.plot.sequence_logo(contrib, seq, path=path)
    yield "summary", lambda path: sa.plot.summary(A, X, feature_names=list("vwxyz"), path=path)
    yield "bar", lambda path: sa.plot.bar(A, feature_names=list("vwxyz"), max_display=3, path=path)
    yield "bar-one", lambda path: sa.plot.bar(A[0], path=path)
    yield "text", lambda path: sa.plot.text(tokens, [0.5, -1.0, 0.0, 2.0], path=path)
    yield "compare-image", lambda path: sa.plot.compare({"IG": phi, "EG": phi / 2}, img, path=path)
    yield "compare-sequence", lambda path: sa.plot.compare({"IG": contrib, "DeepSHAP": contrib / 2}, seq, kind="sequence",
                                                           path=path)
    yield "compare-tabular", lambda path: sa.plot.compare({"IG": A, "EG": A / 2}, kind="tabular", path=path)
    yield "compare-text", lambda path: sa.plot.compare({"IG": [1, 2, 3, 4.0], "EG": [-1, 0, 1, 0.0]}, tokens, kind="text",
                                                       path=path)


def test_every_plot_draws_to_a_file_and_keeps_the_backend(foreign_backend, tmp_path, rng):
    plt, figures = foreign_backend
    for name, draw in every_plot(tmp_path, rng):
        path = tmp_path / f"{name}.png"
        fig = draw(path)
        assert isinstance(fig, Figure), name
        assert matplotlib.get_backend() == BACKEND, name
        assert plt.get_fignums() == figures, name  # nothing registered with pyplot, nothing shown
        assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 2000, name


def test_image_colorbar_limits_follow_the_sign():
    phi = np.zeros((10, 10))
    phi[:5] = np.linspace(0.1, 3.0, 50).reshape(5, 10)  # positives up to 3
    phi[5:] = -np.linspace(0.1, 1.5, 50).reshape(5, 10)  # negatives down to -1.5
    expected = {"all": (-3.0, 3.0), "absolute_value": (0.0, 3.0), "positive": (0.0, 3.0), "negative": (-1.5, 0.0)}
    for sign, (lo, hi) in expected.items():
        fig = sa.plot.image(phi, sign=sign, outlier_perc=0)
        (im,), (bar,) = heat_images(fig), colorbars(fig)
        assert (im.norm.vmin, im.norm.vmax) == pytest.approx((lo, hi), abs=1e-6), sign
        assert bar.get_ylim() == pytest.approx((lo, hi), abs=1e-6), sign
        assert bar._colorbar.extend == "neither", sign  # nothing clipped at outlier_perc=0


def test_image_outlier_clipping_is_captums_cumulative_threshold():
    # |φ| sorted: 0, 98 ones, 2 (total 100). Clipping 2 %: the first value whose cumulative sum reaches 98 is a one,
    # so the scale is ±1 and the -2 is clipped (an arrow at the low end); without clipping it is ±2.
    phi = np.ones((10, 10))
    phi[0, 0], phi[0, 1] = -2.0, 0.0
    fig = sa.plot.image(phi, sign="all", outlier_perc=2)
    (bar,) = colorbars(fig)
    assert bar.get_ylim() == pytest.approx((-1.0, 1.0))
    assert bar._colorbar.extend == "min"
    assert colorbars(sa.plot.image(phi, sign="all", outlier_perc=0))[0].get_ylim() == pytest.approx((-2.0, 2.0))
    # The threshold is by mass, not by count: 90 values of 0.01 and 10 of 1 (total 10.9); half the mass is reached
    # within the ones, so clipping 50 % gives 1, where the median by count would be 0.01.
    phi = np.full((10, 10), 0.01)
    phi.flat[:10] = 1.0
    assert colorbars(sa.plot.image(phi, sign="absolute_value", outlier_perc=50))[0].get_ylim() == pytest.approx((0.0, 1.0))


def test_image_scale_matches_captum_when_installed(rng):
    visualization = optional_import("captum.attr._utils.visualization")
    image = rng.random((12, 12, 3))
    attr = rng.standard_normal((12, 12, 3)) ** 3  # heavy tails, so clipping matters
    for sign in ("positive", "negative", "absolute_value"):
        fig = sa.plot.image(attr, image, method="masked_image", sign=sign, outlier_perc=5, colorbar=False)
        drawn = fig.axes[0].images[0].get_array()
        weights = np.abs(visualization._normalize_attr(attr.sum(axis=2), sign, 5))  # Captum sums channels first
        shown = (image - image.min()) / (image.max() - image.min())
        np.testing.assert_allclose(drawn, shown * weights[..., None], atol=1e-6, err_msg=sign)


def test_masked_and_alpha_images_weight_pixels_by_the_scaled_part():
    image = np.linspace(0, 1, 16).reshape(4, 4)
    phi = np.zeros((4, 4))
    phi[0, 0], phi[1, 1], phi[2, 2] = 4.0, 2.0, -1.0
    masked = sa.plot.image(phi, image, method="masked_image", sign="positive", outlier_perc=0).axes[0].images[0].get_array()
    weight = np.clip(np.maximum(phi, 0) / 4.0, 0, 1)
    np.testing.assert_allclose(masked, image * weight, atol=1e-12)  # a grey image stays grey (in image_cmap)
    rgba = sa.plot.image(phi, image, method="alpha_scaling", sign="absolute_value", outlier_perc=0).axes[0].images[0].get_array()
    np.testing.assert_allclose(rgba[..., 3], np.abs(phi) / 4.0, atol=1e-12)
    np.testing.assert_allclose(rgba[..., 0], image, atol=1e-6)  # "gray": r = g = b = the pixel
    colour = np.stack([image, 1 - image, image ** 2])  # (C, H, W)
    rgba = sa.plot.image(phi, colour, method="alpha_scaling", sign="negative", outlier_perc=0).axes[0].images[0].get_array()
    np.testing.assert_allclose(rgba[..., :3], np.moveaxis(colour, 0, -1), atol=1e-12)
    np.testing.assert_allclose(rgba[..., 3], np.abs(np.minimum(phi, 0)) / 1.0, atol=1e-12)


def test_shared_row_and_panel_scales():
    images = np.zeros((2, 4, 4))
    first = np.zeros((2, 4, 4))
    first[0, 0, 0], first[1, 0, 0] = 1.0, 2.0
    second = 3 * first
    shared = sa.plot.image_attributions(images, [first, second], outlier_perc=0, scale="shared")
    assert [im.norm.vmax for im in heat_images(shared)[2:]] == pytest.approx([6.0] * 4)  # after the two images
    assert len(colorbars(shared)) == 1 and colorbars(shared)[0].get_ylim() == pytest.approx((-6.0, 6.0))
    row = sa.plot.image_attributions(images, [first, second], outlier_perc=0, scale="row")
    assert [im.norm.vmax for im in heat_images(row)[2:]] == pytest.approx([2.0, 2.0, 6.0, 6.0])
    assert [b.get_ylim()[1] for b in colorbars(row)] == pytest.approx([2.0, 6.0])
    panel = sa.plot.image_attributions(images, [first, second], outlier_perc=0, scale="panel", show_images=False)
    assert [im.norm.vmax for im in heat_images(panel)] == pytest.approx([1.0, 2.0, 3.0, 6.0])
    assert len(colorbars(panel)) == 4


def logo_paths(fig):
    """Per logo axes: the list of (x range, y range) of each drawn letter."""
    from matplotlib.collections import PatchCollection

    out = []
    for ax in fig.axes:
        for coll in ax.collections:
            if isinstance(coll, PatchCollection):
                out.append([(tuple(p.vertices[:, 0][[0]].tolist()), (p.vertices[:, 1].min(), p.vertices[:, 1].max()))
                            for p in coll.get_paths()])
    return out


def test_sequence_logo_stacks_letters_by_contribution():
    c = np.zeros((4, 3))
    c[:, 0] = [0.5, 1.0, 0.0, -0.25]  # A +0.5, C +1, T −0.25 at position 0
    c[2, 2] = -2.0  # G −2 at position 2
    fig = sa.plot.sequence_logo(c)
    (letters,) = logo_paths(fig)
    assert len(letters) == 4  # zero contributions draw nothing
    spans = sorted(y for _, y in letters)
    # A (smaller) nearest the axis: [0, 0.5]; C on top of it: [0.5, 1.5]; T below: [−0.25, 0]; G: [−2, 0]
    assert spans == pytest.approx([(-2.0, 0.0), (-0.25, 0.0), (0.0, 0.5), (0.5, 1.5)], abs=1e-9)
    logo = fig.axes[0]
    assert logo.get_xlim() == (-0.5, 2.5)
    lo, hi = logo.get_ylim()
    assert lo < -2.0 and hi > 1.5
    # One-hot input keeps the letters present: A at 0, G at 2.
    onehot = np.zeros((4, 3))
    onehot[0, 0] = onehot[2, 2] = onehot[1, 1] = 1
    (kept,) = logo_paths(sa.plot.sequence_logo(c, onehot))
    assert sorted(y for _, y in kept) == pytest.approx([(-2.0, 0.0), (0.0, 0.5)], abs=1e-9)
    # (L, C) is recognised and gives the same letters.
    assert sorted(y for _, y in logo_paths(sa.plot.sequence_logo(c.T))[0]) == pytest.approx(spans, abs=1e-9)


def test_sequence_logo_zooms_on_the_motif_of_a_long_sequence(rng):
    c = np.zeros((4, 1000))
    c[:, 600:612] = rng.random((4, 12)) + 0.5
    fig = sa.plot.sequence_logo(c, zoom_width=50)
    strip, logo = fig.axes
    start, end = logo.get_xlim()
    assert end - start == 50 and start <= 599.5 and end >= 611.5
    assert strip.get_xlim() == (-0.5, 999.5)  # the overview shows the whole sequence
    fig = sa.plot.sequence_logo(c, window=(10, 30))
    assert fig.axes[1].get_xlim() == (9.5, 29.5)
    assert len(sa.plot.sequence_logo(c[:, :100]).axes) == 1  # short: all of it, no overview


def test_summary_orders_features_and_colours_by_value(rng):
    X = rng.standard_normal((200, 3))
    A = X * [0.1, 3.0, -1.0]
    fig = sa.plot.summary(A, X, feature_names=["small", "big", "middle"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["small", "middle", "big"]  # bottom to top
    big = ax.collections[0]  # the top row is drawn first
    np.testing.assert_allclose(big.get_offsets()[:, 0], A[:, 1])
    rows = np.round(big.get_offsets()[:, 1])
    assert np.all(rows == 2) and np.all(np.abs(big.get_offsets()[:, 1] - 2) <= 0.4 + 1e-12)
    shade = big.get_array()
    hi, lo = np.argmax(X[:, 1]), np.argmin(X[:, 1])
    assert shade[hi] == 1.0 and shade[lo] == 0.0  # high values at the red end, clipped at the 95th percentile
    assert len(colorbars(fig)) == 1
    # The same seed gives the same swarm.
    again = sa.plot.summary(A, X).axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(again, big.get_offsets())


def test_bar_values(rng):
    A = rng.standard_normal((50, 6)) * [1, 2, 3, 4, 5, 6]
    ax = sa.plot.bar(A, feature_names=list("abcdef"), max_display=3).axes[0]
    widths = [p.get_width() for p in ax.patches]
    mean = np.abs(A).mean(axis=0)
    assert widths == pytest.approx([mean[5], mean[4], mean[3], mean[:3].sum()])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["f", "e", "d", "sum of 3 other features"]
    one = sa.plot.bar(np.array([0.5, -2.0, 1.0]), feature_names=["x", "y", "z"]).axes[0]
    assert [p.get_width() for p in one.patches] == pytest.approx([-2.0, 1.0, 0.5])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all-zero attributions: a valid axis, no singular-limits warning
        zero = sa.plot.bar(np.zeros(3)).axes[0]
    assert zero.get_xlim()[0] < 0 < zero.get_xlim()[1]


def test_text_html_and_png(tmp_path):
    fig = sa.plot.text(["good", "<bad>", "&"], [1.0, -2.0, 0.0])
    assert isinstance(fig, Figure)
    html = fig._repr_html_()
    assert html == fig.html and "&lt;bad&gt;" in html and "&amp;" in html and "<bad>" not in html
    assert 'title="-2"' in html and 'title="1"' in html
    (bar,) = colorbars(fig)
    assert bar.get_xlim() == pytest.approx((-2.0, 2.0))  # one symmetric scale, ±max|φ|
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    # Rows of their own lengths (e.g. padding left out), on one scale.
    ragged = sa.plot.text([["a", "b", "c"], ["d"]], [np.array([1.0, 0.0, -1.0]), np.array([4.0])], labels=["x", "y"])
    assert colorbars(ragged)[0].get_xlim() == pytest.approx((-4.0, 4.0))
    assert ragged.html.count("<span title=") == 4
    with pytest.raises(sa.SwiftAttrError, match="tokens: row 1 has 1 tokens for 2 attributions"):
        sa.plot.text([["a"], ["b"]], [np.ones(1), np.ones(2)])
    sa.plot.text(["a", "b"], [1.0, 2.0], path=tmp_path / "t.html")
    assert (tmp_path / "t.html").read_text(encoding="utf-8").startswith("<div")


def test_compare_puts_methods_on_one_scale(rng):
    phi = rng.standard_normal((2, 6, 6))
    fig = sa.plot.compare({"IG": phi, "DeepLIFT": 2 * phi}, np.zeros((2, 6, 6)), outlier_perc=0)
    assert len(colorbars(fig)) == 1
    assert colorbars(fig)[0].get_ylim()[1] == pytest.approx(2 * np.abs(phi).max())
    seq = np.zeros((4, 20))
    seq[:, 5] = [1, 0, 0, 0]
    logos = sa.plot.compare({"IG": seq, "DeepSHAP": seq / 4}, kind="sequence")
    assert logos.axes[0].get_ylim() == logos.axes[1].get_ylim()  # one y-scale
    tab = sa.plot.compare({"IG": np.array([1.0, -3.0]), "EG": np.array([2.0, 0.0])}, kind="tabular",
                          feature_names=["p", "q"]).axes[0]
    assert [t.get_text() for t in tab.get_yticklabels()] == ["q", "p"]  # ordered by the first method's |φ|


def test_plot_input_errors(tmp_path):
    phi = np.ones((4, 4))
    cases = [
        (lambda: sa.plot.image(phi, method="glow"), "method: unknown 'glow'", sa._ffi.SA_ERR_UNKNOWN_ENUM),
        (lambda: sa.plot.image(phi, sign="both"), "sign: unknown 'both'", sa._ffi.SA_ERR_UNKNOWN_ENUM),
        (lambda: sa.plot.image(phi, phi, method="masked_image", sign="all"), "sign: masked_image weights", None),
        (lambda: sa.plot.image(phi, method="blended_heat_map"), "image: method 'blended_heat_map' draws the image", None),
        (lambda: sa.plot.image(np.full((4, 4), np.nan)), "attribution: non-finite value nan at index", sa._ffi.SA_ERR_NON_FINITE),
        (lambda: sa.plot.image(phi, outlier_perc=100), r"outlier_perc must be in \[0, 100\)", sa._ffi.SA_ERR_OUT_OF_RANGE),
        (lambda: sa.plot.image(phi, np.ones((5, 5)), method="blended_heat_map"), "image: an image of 5×5 pixels", sa._ffi.SA_ERR_SHAPE),
        (lambda: sa.plot.image(np.ones(10)), "attribution: 10 values are not a square image", sa._ffi.SA_ERR_SHAPE),
        (lambda: sa.plot.image(phi, method=["heat_map", "heat_map"], sign=["all"] * 3), "sign: expected one sign or one per", None),
        (lambda: sa.plot.image_attributions(np.ones((2, 4, 4)), np.ones((3, 4, 4))), "attributions: expected 2 examples", None),
        (lambda: sa.plot.image_attributions(np.ones((2, 4, 4)), np.ones((2, 4, 4)), scale="global"), "scale: unknown", None),
        (lambda: sa.plot.image_attributions(np.ones((2, 4, 4)), np.ones((2, 4, 4)), titles=["a"]), "titles: expected 2 labels", None),
        (lambda: sa.plot.sequence_logo(np.ones((5, 7))), "alphabet: cannot infer an alphabet for 5 channels", None),
        (lambda: sa.plot.sequence_logo(np.ones((4, 7)), alphabet="ACG"), "alphabet: 3 letters for 4 channels", None),
        (lambda: sa.plot.sequence_logo(np.ones((4, 7)), window=(3, 9)), r"window\[1\] must be in", None),
        (lambda: sa.plot.sequence_logo(np.ones((4, 7)), np.ones((4, 6))), "onehot: expected the shape", None),
        (lambda: sa.plot.sequence_logo(np.ones(7)), r"contributions: expected \(C, L\)", None),
        (lambda: sa.plot.summary(np.ones((5, 3)), np.ones((5, 2))), r"features: expected shape \(5, 3\)", None),
        (lambda: sa.plot.summary(np.ones((5, 3)), feature_names=["a"]), "feature_names: expected 3 names", None),
        (lambda: sa.plot.bar(np.ones((2, 2, 2))), r"attributions: expected \(p,\) for one example or \(n, p\)", None),
        (lambda: sa.plot.text("a b", [1.0, 2.0]), "tokens: expected a list of tokens", None),
        (lambda: sa.plot.text(["a"], [1.0, 2.0]), "tokens: row 0 has 1 tokens for 2 attributions", None),
        (lambda: sa.plot.compare([np.ones(3)]), "attributions: expected a dict", None),
        (lambda: sa.plot.compare({"a": np.ones(3), "b": np.ones(4)}, kind="tabular"), r"attributions\['b'\]: shape", None),
        (lambda: sa.plot.compare({"a": np.ones(3)}, kind="audio"), "kind: unknown 'audio'", sa._ffi.SA_ERR_UNKNOWN_ENUM),
        (lambda: sa.plot.image(phi, path=str(tmp_path / "a\0.png")), "path: the path contains a NUL byte", None),
    ]
    for call, message, code in cases:
        with pytest.raises(sa.SwiftAttrError, match=message) as info:
            call()
        if code is not None:
            assert info.value.code == code, message


def test_the_plot_docstring_examples_run():
    import doctest

    result = doctest.testmod(sa.plot, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 7 and result.failed == 0

"""sa.acd against the acd package's own agglomeration (fixture acd_hierarchies.npz, written by
fixtures/make_acd_fixtures.py with acd's CD replaced by a closed-form scorer), the C error codes of bad
arguments, and the plots. torch-free: the scorer here is the same closed form in numpy.

Exactness: every score of the fixture is a sum of multiples of 1/8 below 2^10 in magnitude, exact in
float32 as in float64, so labels must agree exactly and scores to the last bit (asserted to 1e-6)."""
import ctypes
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi
from conftest import optional_import

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "acd_hierarchies.npz")


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIXTURE))


def closed_form_scorer(a, pairs, label, subtract, channels=1):
    """Relevant logits Σ_{i∈S} A[c, i] + planted pairs, made a score as acd does (target − other for 1-D)."""
    units = a.shape[1]

    def score(masks):
        assert masks.dtype == np.float32 and masks.shape[1] == channels * units
        planes = masks.reshape(len(masks), channels, units)
        assert np.all(planes == planes[:, :1]), "a position's mask covers every channel"
        sel = planes[:, 0] > 0.5
        logits = sel.astype(np.float64) @ a.T
        for i, j, c, value in pairs:
            logits[:, int(c)] += value * (sel[:, int(i)] & sel[:, int(j)])
        return logits[:, label] - logits[:, 1 - label] if subtract else logits[:, label]

    return score


def check_against_fixture(h, fx, name, grid_labels):
    labels, scores = fx[f"{name}_labels"], fx[f"{name}_scores"]
    assert len(h["levels"]) == len(labels)
    assert h["iteration_levels"] == int(fx[f"{name}_iteration_levels"])
    np.testing.assert_allclose(h["unit_scores"].ravel(), fx[f"{name}_unit_scores"].ravel(), rtol=0, atol=1e-6)
    assert h["full_score"] == pytest.approx(float(fx[f"{name}_full_score"]), abs=1e-6)
    for t, level in enumerate(h["levels"]):
        np.testing.assert_array_equal(grid_labels(level["labels"]), labels[t], err_msg=f"{name} level {t}")
        want = {k + 1: v for k, v in enumerate(scores[t]) if not np.isnan(v)}
        assert level["components"] == sorted(want), f"{name} level {t}"
        np.testing.assert_allclose(level["scores"], [want[k] for k in level["components"]], rtol=0, atol=1e-6)
        for k, idx in zip(level["components"], level["indices"]):
            np.testing.assert_array_equal(idx, np.flatnonzero(level["labels"].ravel() == k))


@pytest.mark.parametrize("name", ["t14_p50", "t14_p90"])
def test_1d_equals_acd(fx, name):
    a, pairs = fx[f"{name}_a"], fx[f"{name}_pairs"]
    length, label = int(fx[f"{name}_length"]), int(fx[f"{name}_label"])
    h = sa.acd(closed_form_scorer(a, pairs, label, subtract=True), shape=(length,),
               percentile_include=float(fx[f"{name}_percentile"]))
    assert h["kind"] == "1d" and h["merges"] == []
    check_against_fixture(h, fx, name, lambda labels: labels)
    assert np.all(h["levels"][-1]["labels"] == 1)


@pytest.mark.parametrize("name", ["i8_p90", "i8_p95", "i9_s2", "i12_p70"])
def test_2d_equals_acd(fx, name):
    a, pairs = fx[f"{name}_a"], fx[f"{name}_pairs"]
    side, block, label = int(fx[f"{name}_side"]), int(fx[f"{name}_block"]), int(fx[f"{name}_label"])
    h = sa.acd(closed_form_scorer(a, pairs, label, subtract=False), shape=(side, side), sweep_dim=block,
               percentile_include=float(fx[f"{name}_percentile"]), num_iters=int(fx[f"{name}_iters"]))
    assert h["kind"] == "2d" and h["levels"][0]["labels"].shape == (side, side)
    # Block-grid labels: the label of each block's top-left pixel.
    check_against_fixture(h, fx, name, lambda labels: labels[::block, ::block].ravel())
    assert len(h["merges"]) == len(h["levels"]) - h["iteration_levels"]
    if h["merges"]:
        assert len(h["levels"][-1]["components"]) == 1
    for k, (kept, absorbed, gain) in enumerate(h["merges"]):
        before, after = h["levels"][h["iteration_levels"] + k - 1], h["levels"][h["iteration_levels"] + k]
        assert kept < absorbed and absorbed not in after["components"]
        s = dict(zip(before["components"], before["scores"]))
        union = dict(zip(after["components"], after["scores"]))[kept]
        assert gain == pytest.approx(union - max(s[kept], s[absorbed]), abs=1e-6)


def test_channels_share_the_pixel_mask(fx):
    name = "i8_p90"
    a, pairs, label = fx[f"{name}_a"], fx[f"{name}_pairs"], int(fx[f"{name}_label"])
    h = sa.acd(closed_form_scorer(a, pairs, label, subtract=False, channels=3), shape=(8, 8), channels=3,
               percentile_include=90, num_iters=100)
    check_against_fixture(h, fx, name, lambda labels: labels.ravel())


def test_scorer_errors_propagate():
    class Boom(Exception):
        pass

    def bad(masks):
        raise Boom("from the scorer")

    with pytest.raises(Boom):
        sa.acd(bad, shape=(5,))
    with pytest.raises(sa.SwiftAttrError, match="scorer") as e:
        sa.acd(lambda m: np.zeros(len(m) + 1), shape=(5,))
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="scorer") as e:
        sa.acd(lambda m: np.full(len(m), np.nan), shape=(3, 3))
    assert e.value.code == _ffi.SA_ERR_NON_FINITE


@pytest.mark.parametrize("kwargs, word, code", [
    (dict(percentile_include=120), "percentile_include", _ffi.SA_ERR_INVALID_ARGUMENT),
    (dict(percentile_include="high"), "percentile_include", _ffi.SA_ERR_INVALID_ARGUMENT),
    (dict(sweep_dim=0), "sweep_dim", _ffi.SA_ERR_INVALID_ARGUMENT),
    (dict(num_iters=0), "num_iters", _ffi.SA_ERR_INVALID_ARGUMENT),
    (dict(shape=(2, 3, 4)), "shape", _ffi.SA_ERR_SHAPE),
    (dict(shape=None), "shape", _ffi.SA_ERR_INVALID_ARGUMENT),
    (dict(channels=0), "channels", _ffi.SA_ERR_INVALID_ARGUMENT),
])
def test_bad_arguments_name_the_argument(kwargs, word, code):
    args = dict(shape=(4,))
    args.update(kwargs)
    with pytest.raises(sa.SwiftAttrError, match=word) as e:
        sa.acd(lambda m: m.sum(axis=1), **args)
    assert e.value.code == code


def test_bad_model_arguments():
    net = sa.Sequential([sa.Linear(np.ones((2, 4), np.float32), np.zeros(2, np.float32))], input_shape=(4,))
    with pytest.raises(sa.SwiftAttrError, match="model"):
        sa.acd("not a model", np.ones(4))
    with pytest.raises(sa.SwiftAttrError, match="x") as e:
        sa.acd(net, np.ones(5), target=0)
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="score_rule") as e:
        sa.acd(net, np.ones(4), target=0, score_rule="other")
    assert e.value.code == _ffi.SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="target"):
        sa.acd(net, np.ones(4))


def test_c_error_codes():
    lib = _ffi.lib
    units, levels = ctypes.c_int64(), ctypes.c_int64()
    dims = (ctypes.c_int64 * 2)(28, 28)
    assert lib.sa_acd_capacity(2, dims, 3, ctypes.byref(units), ctypes.byref(levels)) == 0
    assert (units.value, levels.value) == (100, 199)
    assert lib.sa_acd_capacity(1, dims, 5, ctypes.byref(units), ctypes.byref(levels)) == 0
    assert (units.value, levels.value) == (6, 6)
    assert lib.sa_acd_capacity(3, dims, 1, ctypes.byref(units), ctypes.byref(levels)) == _ffi.SA_ERR_SHAPE
    assert lib.sa_acd_capacity(2, dims, 0, ctypes.byref(units), ctypes.byref(levels)) == _ffi.SA_ERR_INVALID_ARGUMENT
    assert b"block_size" in _ffi.lib.sa_last_error()
    assert lib.sa_acd_capacity(2, dims, 1, None, ctypes.byref(levels)) == _ffi.SA_ERR_NULL_POINTER
    out = np.zeros(16, np.float32)
    lab = np.zeros(16, np.int32)
    n = ctypes.c_int64()
    fs = ctypes.c_float()
    i32, f32 = lab.ctypes.data_as(_ffi.i32p), out.ctypes.data_as(_ffi.f32p)
    status = lib.sa_acd_1d_scored(_ffi.group_scorer_t(), None, 4, 1, 50.0, 1, 0, i32, f32, f32, ctypes.byref(fs), ctypes.byref(n))
    assert status == _ffi.SA_ERR_NULL_POINTER and b"scorer" in lib.sa_last_error()
    ok = _ffi.group_scorer_t(lambda c, m, k, p, s: 0)
    assert lib.sa_acd_1d_scored(ok, None, 0, 1, 50.0, 1, 0, i32, f32, f32, ctypes.byref(fs), ctypes.byref(n)) \
        == _ffi.SA_ERR_INVALID_ARGUMENT and b"length" in lib.sa_last_error()
    assert lib.sa_acd_2d_scored(ok, None, 2, 2, 1, 50.0, 1, -1, i32, f32, f32, ctypes.byref(fs), None, None,
                                ctypes.byref(n), None) == _ffi.SA_ERR_INVALID_ARGUMENT
    assert b"max_iterations" in lib.sa_last_error()
    failing = _ffi.group_scorer_t(lambda c, m, k, p, s: 7)
    assert lib.sa_acd_1d_scored(failing, None, 4, 1, 50.0, 1, 0, i32, f32, f32, ctypes.byref(fs), ctypes.byref(n)) \
        == _ffi.SA_ERR_INVALID_ARGUMENT and b"status 7" in lib.sa_last_error()


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_network_scores_by_cd_of_a_linear_model(kind):
    """A bias-free linear model: CD's relevant logit of a group is Σ_{i∈S} W[c, i] x_i, exactly the closed
    form, so the model's hierarchy is the scorer's (to float32 rounding of sums of multiples of 1/8: none)."""
    rng = np.random.default_rng(3)
    shape = (1, 6, 6) if kind == "2d" else (2, 9)
    size = int(np.prod(shape))
    w = (rng.integers(-16, 17, size=(10, size)) / 8).astype(np.float32)
    x = np.ones(shape, np.float32)
    net = sa.Sequential([sa.Flatten(), sa.Linear(w, np.zeros(10, np.float32))], input_shape=shape)
    h = sa.acd(net, x, target=4, percentile_include=90)
    scorer = closed_form_scorer(w.astype(np.float64).reshape(10, shape[0], -1).sum(axis=1) if kind == "1d" else w,
                                [], 4, subtract=False, channels=shape[0] if kind == "1d" else 1)
    g = sa.acd(scorer, shape=shape[1:], channels=shape[0], percentile_include=90)
    assert len(h["levels"]) == len(g["levels"])
    for a, b in zip(h["levels"], g["levels"]):
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)


@pytest.fixture(scope="module")
def text_hierarchy(fx):
    name = "t14_p90"
    return sa.acd(closed_form_scorer(fx[f"{name}_a"], fx[f"{name}_pairs"], 1, subtract=True), shape=(14,),
                  percentile_include=90)


@pytest.fixture(scope="module")
def image_hierarchy(fx):
    name = "i8_p95"
    return sa.acd(closed_form_scorer(fx[f"{name}_a"], fx[f"{name}_pairs"], 3, subtract=False), shape=(8, 8),
                  percentile_include=95, num_iters=2)


def test_plot_acd_text(text_hierarchy, tmp_path):
    optional_import("matplotlib")
    words = [f"w{i}" for i in range(14)]
    axes = sa.plot.acd_text(text_hierarchy, words, path=tmp_path / "text.png")
    assert len(axes) == 2 and (tmp_path / "text.png").stat().st_size > 0
    rows = [t.get_text() for t in axes[0].get_yticklabels()]
    assert rows == [f"level {t}" for t in range(len(text_hierarchy["levels"]))][::-1]
    # One coloured box per component of every level.
    assert len(axes[0].patches) == sum(len(level["components"]) for level in text_hierarchy["levels"])
    axes = sa.plot.acd_text(text_hierarchy, words, levels=[0, -1])
    assert len(axes[0].get_yticklabels()) == 2
    with pytest.raises(sa.SwiftAttrError, match="words") as e:
        sa.plot.acd_text(text_hierarchy, words[:-1])
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="hierarchy"):
        sa.plot.acd_text({"kind": "2d", "levels": []}, words)


def test_plot_acd_image(image_hierarchy, tmp_path):
    optional_import("matplotlib")
    n = len(image_hierarchy["levels"])
    image = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    axes = sa.plot.acd_image(image_hierarchy, image, path=tmp_path / "image.png")
    assert len(axes) == min(n, 12) and (tmp_path / "image.png").stat().st_size > 0
    assert axes[-1].get_title().startswith(f"level {n - 1}")
    axes = sa.plot.acd_image(image_hierarchy, image[None].repeat(3, 0), levels=[0, 1], color_by="score")
    assert len(axes) == 2 and len(axes[0].figure.axes) == 3  # two panels and the colour bar
    with pytest.raises(sa.SwiftAttrError, match="image") as e:
        sa.plot.acd_image(image_hierarchy, np.zeros((7, 8)))
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="color_by") as e:
        sa.plot.acd_image(image_hierarchy, color_by="rainbow")
    assert e.value.code == _ffi.SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="levels"):
        sa.plot.acd_image(image_hierarchy, levels=[n])

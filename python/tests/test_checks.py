"""sa.checks: Network.randomized, cascading and independent parameter randomisation on a trained CNN, label
randomisation, SSIM/HOG/Spearman against scikit-image/scipy (skipped without them), recovery, ROAR."""
import numpy as np
import pytest

import swiftattr as sa
from swiftattr import checks
from swiftattr._ffi import SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM
from conftest import optional_import


def bars(rng, n):
    """1×12×12 images of one of three strokes (a row, a column, the diagonal) at a random place, plus noise."""
    y = rng.integers(0, 3, n)
    x = 0.1 * rng.standard_normal((n, 1, 12, 12)).astype(np.float32)
    at = rng.integers(2, 10, n)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, at[i], 2:10] += 1
        elif y[i] == 1:
            x[i, 0, 2:10, at[i]] += 1
        else:
            x[i, 0, np.arange(2, 10), np.arange(2, 10)] += 1
    return x, y


def cnn_architecture():
    z = np.zeros
    return sa.Sequential([sa.Conv2d(z((6, 1, 3, 3)), z(6)), sa.ReLU(), sa.MaxPool2d(2),
                          sa.Conv2d(z((8, 6, 3, 3)), z(8)), sa.ReLU(), sa.Flatten(), sa.Linear(z((3, 72)), z(3))],
                         input_shape=(1, 12, 12))


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    x, y = bars(rng, 600)
    net, history = sa.train(cnn_architecture(), x, y, lr=0.01, epochs=8, batch_size=32, seed=1, initialize=True,
                            progress=False)
    assert (net.forward(x).argmax(axis=1) == y).mean() > 0.95
    return net, x, y


def test_randomized_redraws_only_the_chosen_layers():
    net = cnn_architecture().initialized(3)
    assert net.parameter_nodes() == [0, 0, 3, 3, 6, 6]
    r = net.randomized(layers=[6], seed=5)
    fresh, old, new = net.initialized(5).parameters(), net.parameters(), r.parameters()
    for k in range(4):
        np.testing.assert_array_equal(new[k], old[k])
    for k in (4, 5):
        np.testing.assert_array_equal(new[k], fresh[k])
    # Cascades nest: randomising {6, 3} keeps layer 6's draws from randomising {6}.
    both = net.randomized(layers=[3, 6], seed=5).parameters()
    np.testing.assert_array_equal(both[4], new[4])
    np.testing.assert_array_equal(both[2], fresh[2])
    everything = net.randomized(seed=5).parameters()
    for a, b in zip(everything, fresh):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(sa.SwiftAttrError, match="node 1 has no parameters") as e:
        net.randomized(layers=1)
    assert e.value.code == SA_ERR_OUT_OF_RANGE


def test_cascading_randomization_decorrelates_gradients_of_a_trained_cnn(trained, tmp_path):
    net, x, _ = trained
    xs = x[:16]
    t = net.forward(xs).argmax(axis=1)
    r = sa.checks.randomization(net, xs, method=sa.saliency, target=t, seed=0, abs=False)
    assert r.labels == ["dense 6", "conv2d 3", "conv2d 0"] and r.layers == [[6], [6, 3], [6, 3, 0]]
    for key in ("abs", "signed"):
        assert r.spearman[key].shape == (3, 16)
    assert r.ssim.shape == (3, 16) and r.hog.shape == (3, 16)
    signed, absolute = r.spearman["signed"].mean(axis=1), r.spearman["abs"].mean(axis=1)
    # Far from the trained network's 1 from the first step (the target's logit weights are new), and towards
    # 0 as the cascade reaches the input: the fully randomised network's signed gradients are unrelated; |φ|
    # keeps some of the input's structure (the paper's Gradient row), less at each step.
    assert np.all(signed < 0.7) and abs(signed[-1]) < 0.1
    assert np.all(np.diff(absolute) < 0) and absolute[-1] < 0.5
    fig = r.plot(path=tmp_path / "cascade.png")
    assert (tmp_path / "cascade.png").stat().st_size > 0 and len(fig.axes) == 5
    # Independent randomisation: one layer at a time.
    ind = sa.checks.randomization(net, xs, method="saliency", target=t, mode="independent", seed=0)
    assert ind.layers == [[6], [3], [0]]


def test_a_constant_attribution_passes_randomization_with_correlation_one(trained):
    net, x, _ = trained
    r = sa.checks.randomization(net, x[:5], method=lambda net, inputs, target=None: np.ones_like(inputs), target=0,
                                seed=2)
    for values in (r.spearman["abs"], r.spearman["signed"], r.ssim, r.hog):
        np.testing.assert_array_equal(values, 1.0)


def test_randomization_passes_method_arguments(trained):
    # IG's own `method=` (its quadrature) travels in method_args; other keywords go to the method directly.
    net, x, _ = trained
    r = sa.checks.randomization(net, x[:3], method="integrated_gradients", target=1, seed=0, layers=[6, 3],
                                method_args={"method": "riemann_trapezoid"}, n_steps=4)
    want = sa.integrated_gradients(net.randomized([6], 0), x[:3], target=1, method="riemann_trapezoid", n_steps=4)
    np.testing.assert_array_equal(r.randomized[0], want)  # the same computation
    assert r.layers == [[6], [6, 3]]


def test_label_randomization(trained):
    net, x, y = trained
    t = net.forward(x[:8]).argmax(axis=1)
    r = sa.checks.label_randomization(net, x, y, x[:8], method=sa.saliency, target=t, seed=4,
                                      train_args=dict(epochs=2, lr=0.01, progress=False))
    assert r.spearman["abs"].shape == (1, 8) and r.labels == ["random labels"]
    assert r.spearman["signed"].mean() < 0.5  # a network fitted to noise attends elsewhere
    assert r.trained.parameter_shapes() == net.parameter_shapes() and r.train_history["epochs"] == 2


def test_spearman_with_ties_matches_scipy(rng):
    stats = optional_import("scipy.stats")
    a = rng.integers(0, 5, (4, 30)).astype(np.float32)
    b = rng.standard_normal((4, 30)).astype(np.float32)
    got = checks.spearman(a, b)
    want = [stats.spearmanr(a[i], b[i]).statistic for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert checks.spearman(np.ones(5), np.ones(5))[0] == 1.0 and checks.spearman(np.ones(5), np.arange(5))[0] == 0.0


def test_ssim_and_hog_match_scikit_image(rng):
    optional_import("skimage")
    from skimage.feature import hog as sk_hog
    from skimage.metrics import structural_similarity

    a = rng.random((2, 28, 28))
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)
    got = checks.ssim(a, b, data_range=1.0)
    want = [structural_similarity(a[i], b[i], data_range=1.0) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 inputs here, float64 there
    h = checks.hog(a)
    for i in range(2):
        np.testing.assert_allclose(h[i], sk_hog(a[i].astype(np.float32).astype(np.float64)), rtol=1e-4, atol=1e-6)
    h = checks.hog(a, orientations=6, pixels_per_cell=(4, 5), cells_per_block=(2, 2))
    np.testing.assert_allclose(h[1], sk_hog(a[1].astype(np.float32).astype(np.float64), orientations=6,
                                            pixels_per_cell=(4, 5), cells_per_block=(2, 2)), rtol=1e-4, atol=1e-6)


def test_ssim_and_hog_properties(rng):
    a = rng.random((3, 16, 16))
    np.testing.assert_allclose(checks.ssim(a, a), 1.0)
    assert np.all(checks.ssim(a, 1 - a) < 0)
    assert checks.hog(a, pixels_per_cell=(4, 4)).shape == (3, 2 * 2 * 9 * 3 * 3)
    with pytest.raises(sa.SwiftAttrError, match="too small") as e:
        checks.hog(a)
    assert e.value.code == SA_ERR_SHAPE


def test_recovery():
    truth = np.array([0, 2.0, 0, 1.0, 0, 0])
    perfect = sa.checks.recovery([0.1, 3, 0, 2, 0.2, 0], truth)
    assert perfect["precision_at_k"] == 1.0 and perfect["auroc"] == 1.0 and perfect["k"] == 2
    assert perfect["spearman"] > 0.8
    assert sa.checks.recovery([0.1, 3, 0, 2, 0.2, 0], truth > 0) == {**perfect, "spearman": pytest.approx(perfect["spearman"], abs=0.2)}
    wrong = sa.checks.recovery([1, 0, 1, 0, 1, 1], truth)
    assert wrong["precision_at_k"] == 0.0 and wrong["auroc"] == 0.0
    # Per-example attributions: mean |φ|; interactions: the pairs i < j of a symmetric truth.
    rows = np.array([[0, -3, 0, 2, 0, 0], [0, 1, 0, -4, 0.1, 0]])
    assert sa.checks.recovery(rows, truth)["precision_at_k"] == 1.0
    g = np.zeros((4, 4))
    g[0, 2] = 1
    gamma = np.zeros((4, 4))
    gamma[2, 0] = gamma[0, 2] = 0.5
    gamma[1, 3] = 0.1
    r = sa.checks.recovery(gamma, g)
    assert r["precision_at_k"] == 1.0 and r["auroc"] == 1.0
    with pytest.raises(sa.SwiftAttrError, match="truth"):
        sa.checks.recovery([1, 2], [0, 0])
    with pytest.raises(sa.SwiftAttrError, match="phi") as e:
        sa.checks.recovery(np.ones(5), truth)
    assert e.value.code == SA_ERR_SHAPE


def test_roar_and_keep_and_retrain_rank_exact_attributions_above_random(rng):
    # y = sign of a sparse linear score: the exact contributions w ⊙ x identify the 3 drivers per example.
    d, n = 10, 800
    w = np.zeros(d, np.float32)
    w[[1, 4, 7]] = [2.0, -1.5, 1.0]
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X @ w > 0).astype(np.int64)
    Xt = rng.standard_normal((300, d)).astype(np.float32)
    yt = (Xt @ w > 0).astype(np.int64)
    z = np.zeros
    net = sa.Sequential([sa.Linear(z((16, d)), z(16)), sa.ReLU(), sa.Linear(z((2, 16)), z(2))])
    exact, exact_t = X * w, Xt * w
    noise, noise_t = rng.standard_normal(X.shape), rng.standard_normal(Xt.shape)
    opts = dict(ks=[0, 3], epochs=15, lr=0.01, seed=0, progress=False)
    roar_exact = sa.checks.roar(net, X, y, Xt, yt, exact, exact_t, **opts)
    roar_random = sa.checks.roar(net, X, y, Xt, yt, noise, noise_t, **opts)
    assert roar_exact.metric == "accuracy" and roar_exact.score.shape == (2,)
    assert roar_exact.score[0] > 0.9 and roar_exact.score[0] == roar_random.score[0]  # k = 0: the same training
    assert roar_exact.score[1] < 0.65 < roar_random.score[1]  # the drivers are gone: near chance
    kar = sa.checks.keep_and_retrain(net, X, y, Xt, yt, exact, exact_t, **opts)
    assert kar.keep and kar.score[1] > 0.9  # the three drivers alone suffice
    with pytest.raises(sa.SwiftAttrError, match="attributions_test") as e:
        sa.checks.roar(net, X, y, Xt, yt, exact, exact, **opts)
    assert e.value.code == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match=r"ks\[0\]"):
        sa.checks.roar(net, X, y, Xt, yt, exact, exact_t, ks=[11])


def test_randomization_errors(trained):
    net, x, _ = trained
    with pytest.raises(sa.SwiftAttrError, match="mode") as e:
        sa.checks.randomization(net, x[:2], target=0, mode="cascade")
    assert e.value.code == SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="layers"):
        sa.checks.randomization(net, x[:2], target=0, layers=[1])
    with pytest.raises(sa.SwiftAttrError, match="method"):
        sa.checks.randomization(net, x[:2], method="gradcam", target=0)
    with pytest.raises(sa.SwiftAttrError, match="no layer with parameters"):
        sa.checks.randomization(sa.Sequential([sa.ReLU()], input_shape=(3,)), np.ones((1, 3)), target=0)


# -- bad input: refused with the argument's name ----------------------------------------------------------
def test_similarities_refuse_non_finite_values_by_name(rng):
    from swiftattr._ffi import SA_ERR_NON_FINITE

    a = rng.standard_normal((2, 9))
    b = a.copy()
    b[1, 4] = np.nan
    with pytest.raises(sa.SwiftAttrError, match="b") as e:
        sa.checks.spearman(a, b)
    assert e.value.code == SA_ERR_NON_FINITE
    img = rng.random((2, 16, 16))
    bad = img.copy()
    bad[0, 3, 3] = np.inf
    with pytest.raises(sa.SwiftAttrError, match="a"):
        sa.checks.ssim(bad, img)
    with pytest.raises(sa.SwiftAttrError, match="images"):
        sa.checks.hog(bad)
    truth = np.array([1.0, 0, 0, 1.0])
    with pytest.raises(sa.SwiftAttrError, match="phi"):
        sa.checks.recovery(np.array([1.0, np.nan, 0, 2]), truth)
    with pytest.raises(sa.SwiftAttrError, match="truth"):
        sa.checks.recovery(np.ones(4), np.array([1.0, np.nan, 0, 0]))


def test_ssim_and_hog_argument_checks(rng):
    img = rng.random((1, 16, 16))
    with pytest.raises(sa.SwiftAttrError, match="data_range"):
        sa.checks.ssim(img, img, data_range=0.0)
    with pytest.raises(sa.SwiftAttrError, match="pixels_per_cell"):
        sa.checks.hog(img, pixels_per_cell=(0, 4))
    with pytest.raises(sa.SwiftAttrError, match="cells_per_block"):
        sa.checks.hog(img, cells_per_block=(1, -1))
    with pytest.raises(sa.SwiftAttrError, match="pixels_per_cell"):
        sa.checks.hog(img, pixels_per_cell=(4, 4, 4))
    # One int means a square cell, as for sa's layer sizes (was a TypeError).
    np.testing.assert_array_equal(sa.checks.hog(img, pixels_per_cell=4), sa.checks.hog(img, pixels_per_cell=(4, 4)))


def test_randomization_layers_must_be_node_indices(trained):
    net, x, _ = trained
    for bad in ("dense", [0.5], [None]):
        with pytest.raises(sa.SwiftAttrError, match="layers"):
            sa.checks.randomization(net, x[:2], target=0, layers=bad)


def test_roar_argument_checks(rng):
    X = rng.standard_normal((40, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = sa.Sequential([sa.Linear(np.zeros((2, 5), np.float32), np.zeros(2, np.float32))])
    phi = np.abs(X)
    opts = dict(epochs=1, lr=0.01, seed=0)
    with pytest.raises(sa.SwiftAttrError, match="ks"):
        sa.checks.roar(net, X, y, X, y, phi, phi, ks=2, **opts)
    with pytest.raises(sa.SwiftAttrError, match="y_test") as e:
        sa.checks.roar(net, X, y, X, y[:-1], phi, phi, ks=[1], **opts)
    assert e.value.code == SA_ERR_SHAPE
    bad = phi.copy()
    bad[3, 1] = np.nan
    with pytest.raises(sa.SwiftAttrError, match="attributions"):
        sa.checks.roar(net, X, y, X, y, bad, phi, ks=[1], **opts)
    with pytest.raises(sa.SwiftAttrError, match="y_test"):
        sa.checks.roar(net, X, y, X, y[:-1].astype(np.float32), phi, phi, ks=[1], loss="mse", **opts)


def test_label_randomization_needs_one_label_per_example(trained):
    net, x, y = trained
    with pytest.raises(sa.SwiftAttrError, match="y") as e:
        sa.checks.label_randomization(net, x[:20], y[:19], x[:2], target=0, train_args={"epochs": 1})
    assert e.value.code == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="y"):
        sa.checks.label_randomization(net, x[:20], 3, x[:2], target=0, train_args={"epochs": 1})


def test_spearman_of_scalars_is_refused_by_name():
    with pytest.raises(sa.SwiftAttrError, match="a"):
        sa.checks.spearman(1.0, 2.0)  # was a numpy unpacking error

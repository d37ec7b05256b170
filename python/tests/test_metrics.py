"""sa.metrics: infidelity and max-sensitivity against Captum (a committed fixture), their conventions on a
linear model, seeded draws, deletion/insertion curves, completeness residuals and argument errors."""
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import metrics
from swiftattr._ffi import SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def f():
    return np.load(os.path.join(HERE, "fixtures", "metrics_captum.npz"))


@pytest.fixture(scope="module")
def net(f):
    return sa.Sequential([sa.Conv2d(f["conv_w"], f["conv_b"], padding=1), sa.ReLU(), sa.MaxPool2d(2), sa.Flatten(),
                          sa.Linear(f["dense_w"], f["dense_b"])], input_shape=(2, 8, 8))


def linear_net(rng, d=12):
    w = rng.standard_normal((1, d)).astype(np.float32)
    return sa.Sequential([sa.Linear(w, np.array([0.3], np.float32))]), w[0]


# -- Captum ----------------------------------------------------------------------------------------
# Captum ran the float32 network in float64; we run it in float32. b = f(x) − f(x − I) has |b| ~ 0.1 (I of std
# 0.1) from outputs of size ~1 rounded to 2^-24 relative, so b carries ~1e-7/0.1 = 1e-6 relative error and the
# squared residuals ~1e-5 relative at worst: rtol 1e-4.
def test_infidelity_matches_captum(f, net):
    got = sa.metrics.infidelity(net, f["x"], f["attributions"], target=f["target"], perturbations=f["noise"])
    np.testing.assert_allclose(got, f["infidelity"], rtol=1e-4)
    got = sa.metrics.infidelity(net, f["x"], f["attributions"], target=f["target"], perturbations=f["noise"],
                                normalize=True)
    np.testing.assert_allclose(got, f["infidelity_normalized"], rtol=1e-4, atol=1e-9)


# Saliency of a ReLU network is piecewise constant, so float32 and float64 agree to rounding of the gradient
# (~1e-7 relative); IG with 24 Gauss–Legendre nodes sums 24 such gradients. The ratio of norms: rtol 1e-4.
def test_sensitivity_max_matches_captum(f, net):
    got = sa.metrics.sensitivity_max(sa.saliency, net, f["x"], target=f["target"], perturbations=f["delta"])
    np.testing.assert_allclose(got, f["sensitivity_saliency"], rtol=1e-4)
    got = sa.metrics.sensitivity_max("integrated_gradients", net, f["x"], target=f["target"], perturbations=f["delta"],
                                     baselines=f["baselines"], n_steps=24, method="gausslegendre")
    np.testing.assert_allclose(got, f["sensitivity_ig"], rtol=1e-4)


# -- conventions on a linear model -----------------------------------------------------------------
def test_infidelity_of_exact_local_attributions_is_zero(rng):
    # f(x) − f(x − I) = wᵀI exactly for f = wᵀx + c, so the gradient w has zero infidelity under Captum's
    # convention (x − I); with x + I instead each term would be (2wᵀI)². Outputs ~3 in float32 with I ~ 1:
    # residuals ~1e-6, squares ~1e-12.
    net, w = linear_net(rng)
    x = rng.standard_normal((5, 12)).astype(np.float32)
    grad = np.broadcast_to(w, x.shape)
    inf = sa.metrics.infidelity(net, x, grad, n_perturb_samples=20, noise_std=1.0, seed=3)
    assert inf.shape == (5,) and np.all(inf < 1e-9)
    wrong = sa.metrics.infidelity(net, x, -grad, n_perturb_samples=20, noise_std=1.0, seed=3)
    assert np.all(wrong > 1.0)
    # normalize finds β = −1 for −w: zero again.
    assert np.all(sa.metrics.infidelity(net, x, -grad, n_perturb_samples=20, noise_std=1.0, seed=3, normalize=True) < 1e-9)


def test_sensitivity_of_a_linear_models_gradient_is_zero_and_of_ixg_is_bounded(rng):
    net, w = linear_net(rng)
    x = rng.standard_normal((4, 12)).astype(np.float32)
    assert np.all(sa.metrics.sensitivity_max(sa.saliency, net, x, seed=1) == 0)
    # input×gradient changes by w⊙δ with |δ| ≤ r: the ratio is at most r‖w‖/‖w⊙x‖ and close to it for large S.
    s = sa.metrics.sensitivity_max(sa.input_x_gradient, net, x, perturb_radius=0.05, n_perturb_samples=50, seed=1)
    bound = 0.05 * np.linalg.norm(w) / np.linalg.norm(w * x, axis=1)
    assert np.all(s <= bound * (1 + 1e-5)) and np.all(s > 0.3 * bound)


def test_sensitivity_expands_per_example_arguments_only(net, f, rng):
    # Zero perturbations: φ(x + 0) is φ(x) computed in another batch (GEMMs of other shapes): ratios ~1e-6.
    x, t = f["x"], f["target"]
    zero = np.zeros((4, 3, 2, 8, 8), np.float32)
    masks = rng.integers(0, 5, (4, 2, 8, 8))
    masks[:, 0, 0, :5] = np.arange(5)
    s = sa.metrics.sensitivity_max(sa.feature_ablation, net, x, target=t, perturbations=zero, feature_mask=masks,
                                   baselines=f["baselines"])
    assert np.all(s < 1e-5)
    refs = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)  # as many references as examples: still shared
    s = sa.metrics.sensitivity_max(sa.deepshap, net, x, target=t, perturbations=zero, references=refs)
    assert np.all(s < 1e-5)


def test_draws_depend_only_on_seed_and_example_index():
    a = metrics.draw_perturbations("normal", (3, 4), 5, 7, 0.5, seed=11)
    b = metrics.draw_perturbations("normal", (3, 4), 2, 7, 0.5, seed=11, first_example=3)
    np.testing.assert_array_equal(a[3:], b)  # the same generator, the same numbers
    assert not np.array_equal(a[0], a[1])
    c = metrics.draw_perturbations("normal", (3, 4), 5, 7, 0.5, seed=12)
    assert not np.array_equal(a, c)
    u = metrics.draw_perturbations("uniform", (1000,), 2, 3, 0.02, seed=0)
    assert u.min() >= -0.02 and u.max() <= 0.02 and abs(u.std() - 0.02 / np.sqrt(3)) < 1e-3
    z = metrics.draw_perturbations("normal", (4000,), 1, 5, 2.0, seed=0)
    assert abs(z.std() - 2.0) < 0.05


def test_seeded_metrics_repeat_and_split(net, f):
    x, t = f["x"], f["target"]
    a = sa.metrics.infidelity(net, x, f["attributions"], target=t, n_perturb_samples=5, noise_std=0.1, seed=4)
    np.testing.assert_array_equal(a, sa.metrics.infidelity(net, x, f["attributions"], target=t, n_perturb_samples=5, noise_std=0.1, seed=4))
    # A piece with first_example draws what the whole batch drew (forward GEMMs of another shape: float32
    # rounding of outputs ~1 is ~1e-7, of b = f(x) − f(x − I) with |b| ~ 0.1 ~1e-6 relative, of its square 2e-6).
    piece = sa.metrics.infidelity(net, x[2:], f["attributions"][2:], target=t[2:], n_perturb_samples=5, noise_std=0.1, seed=4,
                                  first_example=2)
    np.testing.assert_allclose(piece, a[2:], rtol=1e-5)
    chunked = sa.metrics.infidelity(net, x, f["attributions"], target=t, n_perturb_samples=5, noise_std=0.1, seed=4,
                                    internal_batch_size=7)
    np.testing.assert_allclose(chunked, a, rtol=1e-5)
    s = sa.metrics.sensitivity_max(sa.saliency, net, x, target=t, seed=4)
    np.testing.assert_array_equal(s, sa.metrics.sensitivity_max(sa.saliency, net, x, target=t, seed=4))


# -- deletion and insertion ------------------------------------------------------------------------
def test_exact_attributions_beat_random_order_on_a_linear_model(rng):
    net, w = linear_net(rng, d=30)
    x = rng.standard_normal((8, 30)).astype(np.float32)
    exact = x * w  # the exact contributions to f(x) − f(0)
    random = rng.standard_normal(x.shape).astype(np.float32)
    d_exact, d_random = sa.metrics.deletion(net, x, exact), sa.metrics.deletion(net, x, random)
    i_exact, i_random = sa.metrics.insertion(net, x, exact), sa.metrics.insertion(net, x, random)
    assert d_exact.scores.shape == (8, 31) and d_exact.fractions[0] == 0 and d_exact.fractions[-1] == 1
    # Removing the largest contributions first gives the lowest output at every step (pointwise), so the
    # area is below any other order's; inserting them first gives the highest.
    assert np.all(d_exact.scores <= d_random.scores + 1e-5)
    assert np.all(i_exact.scores >= i_random.scores - 1e-5)
    assert np.all(d_exact.auc < d_random.auc) and np.all(i_exact.auc > i_random.auc)
    # End points: f(x) and f(baseline).
    fx, f0 = net.forward(x)[:, 0], net.forward(np.zeros((1, 30)))[0, 0]
    np.testing.assert_allclose(d_exact.scores[:, 0], fx, rtol=1e-6)
    np.testing.assert_allclose(d_exact.scores[:, -1], f0, rtol=1e-6)
    np.testing.assert_allclose(i_exact.scores[:, 0], f0, rtol=1e-6)
    np.testing.assert_allclose(i_exact.scores[:, -1], fx, rtol=1e-6)


def test_deletion_with_superpixels_and_blur(net, f, rng):
    x, t = f["x"], f["target"]
    phi = sa.input_x_gradient(net, x, target=t)
    mask = (np.arange(8)[:, None] // 4 * 2 + np.arange(8)[None, :] // 4).reshape(1, 1, 8, 8)
    c = sa.metrics.deletion(net, x, phi, target=t, feature_mask=mask)
    assert c.scores.shape == (4, 5) and c.order.shape == (4, 4)
    # The first step removes exactly the superpixel with the largest summed attribution.
    for i in range(4):
        sums = [phi[i][:, mask[0, 0] == k].sum() for k in range(4)]
        assert c.order[i, 0] == int(np.argmax(sums))
        removed = x[i].copy()
        removed[:, mask[0, 0] == c.order[i, 0]] = 0
        np.testing.assert_allclose(c.scores[i, 1], net.forward(removed[None])[0, t[i]], rtol=1e-5, atol=1e-6)
    blurred = sa.metrics.insertion(net, x, phi, target=t, baselines="blur", blur_sigma=1.0)
    blur = metrics._gaussian_blur(x, 1.0, 2)
    np.testing.assert_allclose(blurred.scores[:, 0], net.forward(blur)[np.arange(4), t], rtol=1e-5, atol=1e-6)
    # A Gaussian blur keeps a constant image and the mean of a periodic-free image roughly.
    const = np.full((1, 2, 8, 8), 0.7, np.float32)
    np.testing.assert_allclose(metrics._gaussian_blur(const, 1.5, 2), const, rtol=1e-6)


def test_chunked_curves_equal_one_call(net, f):
    phi = sa.saliency(net, f["x"], target=f["target"], abs=False)
    a = sa.metrics.deletion(net, f["x"], phi, target=f["target"], n_steps=10)
    b = sa.metrics.deletion(net, f["x"], phi, target=f["target"], n_steps=10, internal_batch_size=11)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


# -- completeness ----------------------------------------------------------------------------------
def test_completeness_residuals_of_methods(rng):
    net = sa.Sequential([sa.Linear(rng.standard_normal((8, 5)), rng.standard_normal(8)), sa.Softplus(),
                         sa.Linear(rng.standard_normal((2, 8)), rng.standard_normal(2))])
    x = rng.standard_normal((6, 5)).astype(np.float32)
    b = (0.3 * rng.standard_normal((6, 5))).astype(np.float32)
    ig, delta = sa.integrated_gradients(net, x, b, target=1, n_steps=64, return_convergence_delta=True)
    r = sa.metrics.completeness(net, x, ig, target=1, baselines=b)
    np.testing.assert_allclose(r, delta, atol=2e-5)  # the library's own convergence delta
    assert np.all(np.abs(sa.metrics.completeness(net, x, ig, target=1, baselines=b, relative=True)) < 1e-3)
    # Zero attributions leave the whole change: −(f(x) − f(x')).
    change = net.forward(x)[:, 1].astype(np.float64) - net.forward(b)[:, 1]
    np.testing.assert_allclose(sa.metrics.completeness(net, x, np.zeros_like(x), target=1, baselines=b), -change,
                               rtol=1e-6, atol=1e-6)
    # Interactions: Σ_ij Γ_ij = f(x) − f(x').
    gamma = sa.integrated_hessians(net, x, b, target=1)
    assert np.all(np.abs(sa.metrics.completeness(net, x, gamma, target=1, baselines=b, relative=True)) < 1e-3)
    # Shapley sampling is exact in efficiency; references: f(x') is their mean output.
    sv = sa.shapley_value_sampling(net, x, baselines=b, target=1, n_samples=3, seed=0)
    assert np.all(np.abs(sa.metrics.completeness(net, x, sv, target=1, baselines=b)) < 1e-4)
    ks = sa.kernel_shap(net, x, baselines=b, target=1, n_samples=40, seed=0)  # efficiency is imposed
    assert np.all(np.abs(sa.metrics.completeness(net, x, ks, target=1, baselines=b)) < 1e-4)
    refs = rng.standard_normal((9, 5)).astype(np.float32)
    relu = sa.Sequential([sa.Linear(rng.standard_normal((8, 5)), rng.standard_normal(8)), sa.ReLU(),
                          sa.Linear(rng.standard_normal((2, 8)), rng.standard_normal(2))])
    # DeepLIFT's summation-to-delta and DeepSHAP's (against the references' mean output); float32 sums of
    # ~10 terms of size ~1: 1e-5.
    dl = sa.deeplift(relu, x, b, target=1)
    assert np.all(np.abs(sa.metrics.completeness(relu, x, dl, target=1, baselines=b)) < 1e-5)
    ds = sa.deepshap(relu, x, refs, target=1)
    assert np.all(np.abs(sa.metrics.completeness(relu, x, ds, target=1, references=refs)) < 1e-5)
    # Contextual Decomposition: relevant + irrelevant = the output (per target, per mask; logits under Softmax).
    masks = (rng.random((3, 5)) < 0.5).astype(np.float32)
    cd = sa.contextual_decomposition(relu, x, masks, target=1)
    r = sa.metrics.completeness(relu, x, cd, target=1)
    assert r.shape == (6, 3) and np.all(np.abs(r) < 1e-5)
    assert np.all(np.abs(sa.metrics.completeness(relu, x, sa.contextual_decomposition(relu, x, masks[0]))) < 1e-5)
    soft = sa.Sequential([sa.Linear(rng.standard_normal((3, 5))), sa.Softmax()])
    assert np.all(np.abs(sa.metrics.completeness(soft, x, sa.contextual_decomposition(soft, x, masks[0]))) < 1e-5)
    mean_ref = net.forward(refs)[:, 1].astype(np.float64).mean()
    r = sa.metrics.completeness(net, x, np.zeros_like(x), target=1, references=refs)
    np.testing.assert_allclose(r, -(net.forward(x)[:, 1] - mean_ref), rtol=1e-6, atol=1e-6)


# -- errors ----------------------------------------------------------------------------------------
def test_argument_errors(net, f, rng):
    x, t, phi = f["x"], f["target"], f["attributions"]
    with pytest.raises(sa.SwiftAttrError, match="attributions") as e:
        sa.metrics.infidelity(net, x, phi[:2], target=t)
    assert e.value.code == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="perturbations") as e:
        sa.metrics.infidelity(net, x, phi, target=t, perturbations=f["noise"][:, :, :1])
    assert e.value.code == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="n_perturb_samples"):
        sa.metrics.infidelity(net, x, phi, target=t, perturbations=f["noise"], n_perturb_samples=3)
    with pytest.raises(sa.SwiftAttrError, match="n_perturb_samples"):
        sa.metrics.infidelity(net, x, phi, target=t, n_perturb_samples=0)
    with pytest.raises(sa.SwiftAttrError, match="noise_std"):
        sa.metrics.infidelity(net, x, phi, target=t, noise_std=-1)
    with pytest.raises(sa.SwiftAttrError, match="normalize"):
        sa.metrics.infidelity(net, x, phi, target=t, normalize="yes")
    with pytest.raises(sa.SwiftAttrError, match="target"):
        sa.metrics.infidelity(net, x, phi)
    with pytest.raises(sa.SwiftAttrError, match="method") as e:
        sa.metrics.sensitivity_max("gradcam", net, x, target=t)
    assert e.value.code == SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="perturb_radius"):
        sa.metrics.sensitivity_max(sa.saliency, net, x, target=t, perturb_radius=0)
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sa.metrics.deletion(net, x, phi, target=t, baselines="mean")
    with pytest.raises(sa.SwiftAttrError, match="blur_sigma"):
        sa.metrics.deletion(net, x, phi, target=t, blur_sigma=1.0)
    with pytest.raises(sa.SwiftAttrError, match="blur_sigma"):
        sa.metrics.deletion(net, x, phi, target=t, baselines="blur", blur_sigma=5.0)  # radius 15 > 8 pixels
    with pytest.raises(sa.SwiftAttrError, match="contiguous"):
        sa.metrics.deletion(net, x, phi, target=t, feature_mask=np.where(np.arange(8) < 4, 0, 2).reshape(1, 1, 1, 8))
    with pytest.raises(sa.SwiftAttrError, match="references"):
        sa.metrics.completeness(net, x, phi, target=t, baselines=0.0, references=x)
    tokens = sa.Sequential([sa.Embedding(rng.standard_normal((5, 3))), sa.Flatten(), sa.Linear(rng.standard_normal((1, 6)))],
                           input_shape=(2,))
    with pytest.raises(sa.SwiftAttrError, match="token"):
        sa.metrics.infidelity(tokens, np.zeros((1, 2)), np.zeros((1, 2)))

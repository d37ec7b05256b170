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


# -- seeded draws through the library (sa_random_normal, sa_random_uniform) ------------------------------
def _philox4x32(counter, key):
    """Philox4x32-10 in plain Python (Random123's constants), to check the documented counter layout."""
    c, k = list(counter), list(key)
    M = 0xFFFFFFFF
    for r in range(10):
        if r:
            k = [(k[0] + 0x9E3779B9) & M, (k[1] + 0xBB67AE85) & M]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & M, p1 & M, ((p0 >> 32) ^ c[3] ^ k[1]) & M, p0 & M]
    return c


def _draw(fn, seed, first, n, count, stream, *bounds):
    from swiftattr._ffi import check, fptr

    out = np.empty((n, count), np.float32)
    check(fn(seed, first, n, count, stream, *bounds, fptr(out)))
    return out


def test_library_draws_follow_the_documented_counter_layout():
    from swiftattr._ffi import lib

    seed, example, stream = 0x0123456789ABCDEF, 5, 0x494E4644
    out = _draw(lib.sa_random_normal, seed, example, 1, 3, stream)
    for block in (0, 1):
        w = _philox4x32([example & 0xFFFFFFFF, example >> 32, stream, block], [seed & 0xFFFFFFFF, seed >> 32])
        u0 = ((w[0] << 32 | w[1]) >> 11) * 2.0**-53
        u1 = ((w[2] << 32 | w[3]) >> 11) * 2.0**-53
        r = np.sqrt(-2 * np.log(1 - u0))
        expect = [r * np.cos(2 * np.pi * u1), r * np.sin(2 * np.pi * u1)][: 3 - 2 * block]
        # float64 Box–Muller in numpy and in Swift agree to a few ulps of double; each rounds to float32 alike
        # unless within 1e-15 of a float32 rounding boundary: compare to 1 float32 ulp.
        np.testing.assert_allclose(out[0, 2 * block: 2 * block + len(expect)], expect, rtol=2**-23, atol=1e-30)
    u = _draw(lib.sa_random_uniform, seed, example, 1, 2, stream, -1.0, 3.0)
    w = _philox4x32([example, 0, stream, 0], [seed & 0xFFFFFFFF, seed >> 32])
    u0 = ((w[0] << 32 | w[1]) >> 11) * 2.0**-53
    assert u[0, 0] == np.float32(-1.0 + 4.0 * u0)


def test_library_draws_in_pieces_equal_one_call_bit_for_bit():
    from swiftattr._ffi import lib

    for fn, bounds in ((lib.sa_random_normal, ()), (lib.sa_random_uniform, (-0.5, 0.25))):
        whole = _draw(fn, 7, 0, 9, 13, 99, *bounds)  # an odd count: the last block gives one value
        np.testing.assert_array_equal(whole[4:9], _draw(fn, 7, 4, 5, 13, 99, *bounds))
        np.testing.assert_array_equal(whole[:, :6], _draw(fn, 7, 0, 9, 6, 99, *bounds))  # a row's prefix: fewer samples
        assert not np.array_equal(whole, _draw(fn, 7, 0, 9, 13, 100, *bounds))  # another stream
        assert not np.array_equal(whole, _draw(fn, 8, 0, 9, 13, 99, *bounds))  # another seed
    u = _draw(lib.sa_random_uniform, 1, 0, 200, 1000, 3, -0.5, 0.25)
    assert u.min() >= -0.5 and u.max() < 0.25
    # 2e5 uniforms: the mean's standard error is 0.75/sqrt(12·2e5) = 5e-4; 6 of them is 3e-3.
    assert abs(u.mean() - (-0.125)) < 3e-3
    z = _draw(lib.sa_random_normal, 1, 0, 200, 1000, 3)
    assert abs(z.mean()) < 0.015 and abs(z.std() - 1) < 0.01  # standard errors 2.2e-3 and 1.6e-3


def test_perturbation_draws_are_the_library_draws_and_split_exactly():
    from swiftattr._ffi import lib

    a = metrics.draw_perturbations("normal", (3, 5), 6, 4, 0.5, seed=11, stream=77)
    lib_draws = _draw(lib.sa_random_normal, 11, 0, 6, 4 * 15, 77).reshape(a.shape) * np.float32(0.5)
    np.testing.assert_array_equal(a, lib_draws)
    for kind in ("normal", "uniform"):
        whole = metrics.draw_perturbations(kind, (3, 5), 6, 4, 0.1, seed=11, stream=77)
        pieces = np.concatenate([metrics.draw_perturbations(kind, (3, 5), b - a_, 4, 0.1, seed=11, first_example=a_,
                                                            stream=77) for a_, b in ((0, 1), (1, 4), (4, 6))])
        np.testing.assert_array_equal(whole, pieces)
    with pytest.raises(sa.SwiftAttrError, match="kind") as e:
        metrics.draw_perturbations("cauchy", (3,), 2, 2, 1.0, seed=0)
    assert e.value.code == SA_ERR_UNKNOWN_ENUM


def test_seeded_infidelity_in_pieces_uses_the_same_noise(net, f, monkeypatch):
    # The perturbation noise a piece draws is exactly the whole batch's rows (bit for bit); the scores then
    # differ only by the forward GEMMs' shapes (tolerance in test_seeded_metrics_repeat_and_split).
    seen = []
    real = metrics.draw_perturbations
    monkeypatch.setattr(metrics, "draw_perturbations", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    x, t, phi = f["x"], f["target"], f["attributions"]
    sa.metrics.infidelity(net, x, phi, target=t, n_perturb_samples=3, noise_std=0.1, seed=4)
    sa.metrics.infidelity(net, x[1:], phi[1:], target=t[1:], n_perturb_samples=3, noise_std=0.1, seed=4, first_example=1)
    np.testing.assert_array_equal(seen[0][1:], seen[1])
    sa.metrics.sensitivity_max(sa.saliency, net, x, target=t, n_perturb_samples=3, seed=4)
    sa.metrics.sensitivity_max(sa.saliency, net, x[2:], target=t[2:], n_perturb_samples=3, seed=4, first_example=2)
    np.testing.assert_array_equal(seen[2][2:], seen[3])
    assert seen[2].min() >= -0.02 and seen[2].max() < 0.02


def test_library_draw_argument_errors():
    from swiftattr._ffi import SA_ERR_INVALID_ARGUMENT, SA_ERR_NON_FINITE, SA_ERR_NULL_POINTER, SwiftAttrError, check, lib

    out = np.empty(8, np.float32)
    from swiftattr._ffi import fptr

    cases = [(lambda: lib.sa_random_normal(0, 0, 0, 4, 0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "n"),
             (lambda: lib.sa_random_normal(0, 0, 2, 0, 0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "count"),
             (lambda: lib.sa_random_normal(0, -1, 2, 4, 0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "first_example"),
             (lambda: lib.sa_random_normal(0, 2**63 - 1, 2, 4, 0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "first_example"),
             (lambda: lib.sa_random_normal(0, 0, 2, 2**34, 0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "count"),
             (lambda: lib.sa_random_normal(0, 0, 2**20, 2**33, 0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "out"),
             (lambda: lib.sa_random_normal(0, 0, 2, 4, 0, None), SA_ERR_NULL_POINTER, "out"),
             (lambda: lib.sa_random_uniform(0, 0, 2, 4, 0, 1.0, 1.0, fptr(out)), SA_ERR_INVALID_ARGUMENT, "lo"),
             (lambda: lib.sa_random_uniform(0, 0, 2, 4, 0, float("nan"), 1.0, fptr(out)), SA_ERR_NON_FINITE, "lo"),
             (lambda: lib.sa_random_uniform(0, 0, 2, 4, 0, 0.0, float("inf"), fptr(out)), SA_ERR_NON_FINITE, "hi")]
    for call, code, name in cases:
        with pytest.raises(SwiftAttrError, match=name) as e:
            check(call())
        assert e.value.code == code, (name, e.value)


# -- bad input: refused with the argument's name, never a numpy error or a silent NaN --------------------
def test_non_finite_attributions_are_refused_by_name(net, f):
    from swiftattr._ffi import SA_ERR_NON_FINITE

    x, t = f["x"], f["target"]
    phi = f["attributions"].copy()
    phi[1, 0, 2, 3] = np.nan
    for call in (lambda: sa.metrics.infidelity(net, x, phi, target=t, n_perturb_samples=2, seed=0),
                 lambda: sa.metrics.deletion(net, x, phi, target=t, n_steps=4),
                 lambda: sa.metrics.insertion(net, x, phi, target=t, n_steps=4),
                 lambda: sa.metrics.completeness(net, x, phi, target=t)):
        with pytest.raises(sa.SwiftAttrError, match="attributions") as e:
            call()
        assert e.value.code == SA_ERR_NON_FINITE


def test_sensitivity_refuses_a_method_whose_result_has_another_shape(net, f):
    x, t = f["x"], f["target"]
    calls = []

    def varying(net, x, **k):  # a row size that differs between the two calls
        calls.append(1)
        return np.zeros((x.shape[0], len(calls)))

    for bad in (lambda net, x, **k: np.zeros((1,) + x.shape[1:]),  # one row for the batch
                lambda net, x, **k: np.float32(0.0),                # a scalar
                varying):
        with pytest.raises(sa.SwiftAttrError, match="method") as e:
            sa.metrics.sensitivity_max(bad, net, x, target=t, n_perturb_samples=2, seed=0)
        assert e.value.code == SA_ERR_SHAPE


def test_infidelity_refuses_wrong_argument_types(net, f):
    x, t, phi = f["x"], f["target"], f["attributions"]
    with pytest.raises(sa.SwiftAttrError, match="attributions"):
        sa.metrics.infidelity(net, x, phi.astype(bool), target=t)
    with pytest.raises(sa.SwiftAttrError, match="first_example"):
        sa.metrics.infidelity(net, x, phi, target=t, seed=0, first_example=-1)
    with pytest.raises(sa.SwiftAttrError, match="inputs"):
        sa.metrics.infidelity(net, x[:0], phi[:0], target=t)


def test_curves_refuse_non_finite_baselines_by_name(net, f):
    x, t, phi = f["x"], f["target"], f["attributions"]
    b = np.zeros(x.shape[1:], np.float32)
    b[0, 0, 0] = np.inf
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sa.metrics.deletion(net, x, phi, target=t, baselines=b, n_steps=4)

"""Adaptive wavelet distillation (swiftattr.awd): the transform against PyWavelets (committed fixture made by
fixtures/make_wavelets.py), the wavelet conditions, the gradient of awave's loss against finite differences,
and the fit's promises (db5 stays db5 without attribution penalty; a fitted filter is an exact wavelet)."""
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import awd

FIX = np.load(os.path.join(os.path.dirname(__file__), "fixtures", "wavelets.npz"))


@pytest.mark.parametrize("order", range(1, 11))
def test_daubechies_filters_equal_pywavelets(order):
    np.testing.assert_allclose(awd.daubechies(order), FIX[f"db{order}"], rtol=0, atol=1e-13)


def test_1d_transform_equals_pywt_wavedec_periodization():
    w = awd.DWT1d("db5", levels=3)
    np.testing.assert_allclose(w.forward(FIX["signal"][None])[0], FIX["signal_db5_3"], atol=1e-12)
    assert [s.stop - s.start for s in w.bands((64,))] == [8, 8, 16, 32]


def test_2d_transform_equals_pywt_wavedec2_layout():
    w = awd.DWT2d("db2", levels=2)
    np.testing.assert_allclose(w.forward(FIX["image"][None])[0], FIX["image_db2_2"], atol=1e-12)


@pytest.mark.parametrize("cls, shape", [(awd.DWT1d, (3, 2, 64)), (awd.DWT2d, (2, 1, 16, 32))])
def test_inverse_reconstructs_and_the_matrix_is_orthogonal(cls, shape):
    w = cls("db5", levels=3)
    x = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_allclose(w.inverse(w.forward(x)), x, atol=1e-12)
    m = w.matrix(shape[1:])
    np.testing.assert_allclose(m @ m.T, np.eye(m.shape[0]), atol=1e-12)
    np.testing.assert_allclose(m @ x[0].ravel(), w.forward(x)[0].ravel(), atol=1e-12)


def test_daubechies_filters_satisfy_every_wavelet_condition():
    for n in (1, 2, 5, 8):
        r = awd._condition_residuals(awd.daubechies(n))
        assert np.abs(r).max() < 1e-12, n


def test_scaling_function_integrates_to_one_and_wavelet_to_zero():
    t, phi, psi = awd.DWT1d("db5").scaling_and_wavelet(iterations=10)
    dt = t[1] - t[0]
    assert abs(phi.sum() * dt - 1) < 1e-9 and abs(psi.sum() * dt) < 1e-9
    assert abs((phi ** 2).sum() * dt - 1) < 1e-2  # ‖φ‖ = 1 up to the cascade's sampling


def _smooth_net(d, seed=0):
    rng = np.random.default_rng(seed)
    w1 = (rng.normal(size=(8, d)) / np.sqrt(d)).astype(np.float32)
    w2 = rng.normal(size=(2, 8)).astype(np.float32)
    return sa.Sequential([sa.Linear(w1, rng.normal(size=8).astype(np.float32) * 0.1), sa.Tanh(),
                          sa.Linear(w2, np.zeros(2, np.float32))])


def _loss(w, net, x, h, **kw):
    old = w.filter
    w.filter = h
    try:
        return awd.wavelet_loss(w, net, x, **kw)
    finally:
        w.filter = old


def test_the_loss_gradient_without_network_equals_finite_differences():
    """Reconstruction, the five conditions and the coefficients' L1 are float64 polynomials (L1: piecewise)
    in h₀: central differences with step 1e-6 agree to ~1e-8."""
    w = awd.DWT1d("db3", levels=2)
    x = np.random.default_rng(1).normal(size=(4, 32))
    h = w.filter + np.random.default_rng(2).normal(size=w.filter.size) * 0.05  # off the wavelet manifold
    _, _, g = _loss(w, None, x, h, lam_wave=0.3)
    fd = np.array([(_loss(w, None, x, h + 1e-6 * e, lam_wave=0.3)[0] - _loss(w, None, x, h - 1e-6 * e, lam_wave=0.3)[0])
                   / 2e-6 for e in np.eye(h.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("attribution", ["saliency", "input_x_gradient", "integrated_gradients"])
def test_the_attribution_term_gradient_equals_finite_differences(attribution):
    """The attribution term differentiated through the network's gradient (Hessian–vector products) against
    central differences of the term. The network runs in float32, so the term carries a relative error of
    ~1e-6; with step 1e-3 the difference quotient's rounding error is ~1e-6·|term|/1e-3 ≈ 1e-3 relative and
    its truncation error ~1e-6: compared to 1e-2 of the gradient's norm."""
    w = awd.DWT1d("db2", levels=2)
    net = _smooth_net(16)
    x = np.random.default_rng(3).normal(size=(6, 16))
    h = w.filter + np.random.default_rng(4).normal(size=w.filter.size) * 0.02
    kw = dict(target=1, attribution=attribution, lam_attr=1.0, n_steps=8,
              constraint_weights={k: 0.0 for k in ("lsum", "hsum", "l2norm", "cmf", "conv")})

    def term(hh):
        return _loss(w, net, x, hh, **kw)[1]["l1_attr"]

    _, parts, g = _loss(w, net, x, h, **kw)
    _, _, g_rec = _loss(w, net, x, h, **{**kw, "lam_attr": 0.0})
    g_attr = g - g_rec
    fd = np.array([(term(h + 1e-3 * e) - term(h - 1e-3 * e)) / 2e-3 for e in np.eye(h.size)])
    assert np.linalg.norm(g_attr - fd) <= 1e-2 * np.linalg.norm(fd), (g_attr, fd)
    assert np.linalg.norm(fd) > 1e-3  # the term depends on h₀


def test_without_attribution_penalty_db5_stays_db5():
    """db5 is a stationary point of the loss without the attribution term: its gradient is rounding (1e-12 of
    the filter). Adam normalises each step by the gradient's running RMS, so at a stationary point it still
    moves by up to lr per step in the rounding's direction and then oscillates within O(lr) of the minimum:
    the fit stays within lr·steps of db5, the bound of Adam's step, and keeps the conditions to O(lr²)."""
    net = _smooth_net(64)
    x = np.random.default_rng(5).normal(size=(40, 64))
    w = awd.DWT1d("db5", levels=3)
    _, _, g = awd.wavelet_loss(w, net, x, lam_attr=0.0)
    assert np.abs(g).max() < 1e-11
    r = awd.fit(net, x, wave="db5", levels=3, lam_attr=0.0, lam_wave=0.0, epochs=3, batch_size=20, lr=1e-4, project=False)
    assert np.abs(r.filter - awd.daubechies(5)).max() <= 6 * 1e-4
    assert r.history[-1]["reconstruction"] < 1e-4


def test_a_fitted_filter_is_an_exact_wavelet_and_reconstructs():
    net = _smooth_net(64)
    x = np.random.default_rng(6).normal(size=(40, 64))
    r = awd.fit(net, x, wave="db5", levels=3, target=0, lam_attr=1.0, lam_wave=0.1, epochs=3, batch_size=20, lr=1e-2)
    assert np.abs(r.filter - awd.daubechies(5)).max() > 1e-4  # it moved
    assert max(r.constraint_residuals().values()) < 1e-4
    rec = r.transform.inverse(r.transform.forward(x))
    assert np.linalg.norm(rec - x) <= 1e-5 * np.linalg.norm(x)
    assert len(r.history) == 3 and {"loss", "reconstruction", "l1_attr"} <= set(r.history[0])


def test_distill_finds_the_coefficients_a_linear_network_reads():
    w = awd.DWT1d("db4", levels=3)
    m = w.matrix((64,))
    beta = np.zeros(64)
    beta[[3, 20]] = [2.0, -1.5]
    weight = (beta @ m).astype(np.float32)[None]  # f(x) = βᵀ W x reads coefficients 3 and 20
    net = sa.Sequential([sa.Linear(weight, np.zeros(1, np.float32))])
    x = np.random.default_rng(7).normal(size=(200, 64))
    y = x @ weight[0].astype(np.float64)
    out = awd.distill(w, net, x, y, k=2, attribution="input_x_gradient")
    assert sorted(out["indices"]) == [3, 20]
    assert out["score"] > 0.999 and out["network_score"] > 0.999


def test_bad_arguments_raise():
    with pytest.raises(sa.SwiftAttrError, match="wave"):
        awd.DWT1d("morlet")
    with pytest.raises(sa.SwiftAttrError, match="divisible"):
        awd.DWT1d("db2", levels=3).forward(np.zeros((1, 12)))
    with pytest.raises(sa.SwiftAttrError, match="attribution"):
        awd.wavelet_loss(awd.DWT1d("db2", 2), _smooth_net(16), np.zeros((2, 16)), attribution="lrp", lam_attr=1.0)
    with pytest.raises(sa.SwiftAttrError, match="constraint_weights"):
        awd.wavelet_loss(awd.DWT1d("db2", 2), None, np.zeros((2, 16)), constraint_weights={"cmff": 1.0})


# -- bad input: refused with the argument's name ----------------------------------------------------------
def test_signals_must_be_finite_real_numbers():
    from swiftattr._ffi import SA_ERR_NON_FINITE

    w = awd.DWT1d("db2", levels=2)
    x = np.zeros((2, 16))
    x[1, 3] = np.nan
    with pytest.raises(sa.SwiftAttrError, match="inputs") as e:
        w.forward(x)
    assert e.value.code == SA_ERR_NON_FINITE
    with pytest.raises(sa.SwiftAttrError, match="coefficients"):
        w.inverse(np.full((1, 16), np.inf))
    with pytest.raises(sa.SwiftAttrError, match="inputs"):
        w.forward(np.array([["a"] * 16]))
    with pytest.raises(sa.SwiftAttrError, match="inputs"):
        w.forward(np.ones((1, 16)) + 1j)  # the imaginary part would be dropped silently
    with pytest.raises(sa.SwiftAttrError, match="X") as e:
        awd.fit(_smooth_net(16), x, wave="db2", levels=2, epochs=1, target=0)
    assert e.value.code == SA_ERR_NON_FINITE


def test_fit_argument_checks():
    from swiftattr._ffi import SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM

    net, x = _smooth_net(16), np.random.default_rng(0).normal(size=(6, 16))
    with pytest.raises(sa.SwiftAttrError, match="target") as e:
        awd.fit(net, x, wave="db2", levels=2, epochs=1, target=np.zeros(4, np.int64))
    assert e.value.code == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="X"):
        awd.fit(net, x[:0], wave="db2", levels=2, epochs=1, target=0)
    for name, value in (("lr", -1.0), ("lr", float("nan")), ("lam_attr", float("nan")), ("lam_wave", float("inf"))):
        with pytest.raises(sa.SwiftAttrError, match=name):
            awd.fit(net, x, wave="db2", levels=2, epochs=1, target=0, **{name: value})
    with pytest.raises(sa.SwiftAttrError, match="attribution") as e:
        awd.fit(net, x, wave="db2", levels=2, epochs=1, target=0, attribution="lrp")
    assert e.value.code == SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="wave") as e:
        awd.DWT1d("morlet")
    assert e.value.code == SA_ERR_UNKNOWN_ENUM


def test_distill_argument_checks():
    from swiftattr._ffi import SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM

    net, x = _smooth_net(16), np.random.default_rng(0).normal(size=(6, 16))
    w = awd.DWT1d("db2", levels=2)
    y = np.zeros(6)
    with pytest.raises(sa.SwiftAttrError, match="y") as e:
        awd.distill(w, net, x, y[:5], k=2, target=0)
    assert e.value.code == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="y_test"):
        awd.distill(w, net, x, y, k=2, target=0, X_test=x, y_test=y[:4])
    with pytest.raises(sa.SwiftAttrError, match="model") as e:
        awd.distill(w, net, x, y, k=2, target=0, model="forest")
    assert e.value.code == SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="target"):
        awd.distill(w, net, x, y, k=2, target=[0, 0])


def test_projection_and_seed_checks():
    from swiftattr._ffi import SA_ERR_NON_FINITE

    with pytest.raises(sa.SwiftAttrError, match="h0") as e:
        awd.project_to_wavelet(np.array([0.5, np.nan, 0.5, 0.1]))  # was NaN returned after max_iter steps
    assert e.value.code == SA_ERR_NON_FINITE
    net, x = _smooth_net(16), np.random.default_rng(0).normal(size=(6, 16))
    with pytest.raises(sa.SwiftAttrError, match="seed"):
        awd.fit(net, x, wave="db2", levels=2, epochs=1, target=0, seed=-1)  # was numpy's ValueError


@pytest.mark.parametrize("wave, levels, n", [("db3", 2, 32), ("db5", 3, 64), ("haar", 3, 16), ("db8", 3, 32)])
def test_the_1d_reverse_mode_filter_gradient_equals_forward_tangents(wave, levels, n):
    """1-D transforms take ⟨Ḡ, ∂W/∂h_k⟩ by reverse mode through the level matrices; the forward-tangent path
    (which 2-D uses) gives W and ∂W/∂h_k explicitly. Both are float64 sums of the same products in other
    orders: equal to 1e-12 (db8 at level 3 wraps its 16 taps around 8 samples)."""
    rng = np.random.default_rng(8)
    w = awd.DWT1d(wave, levels)
    h = w.filter + 0.05 * rng.normal(size=w.filter.size)
    lin = awd._Linearised(w, h, (n,))
    cols, dcols = w._analysis_tangents(np.eye(n), h)
    dw = np.swapaxes(dcols.reshape(h.size, n, n), 1, 2)
    g = rng.normal(size=(n, n))
    np.testing.assert_allclose(lin.w, cols.reshape(n, n).T, atol=1e-12)
    np.testing.assert_allclose(lin.tap_gradient(g), np.tensordot(dw, g, axes=([1, 2], [0, 1])), atol=1e-12)

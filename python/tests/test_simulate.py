"""sa.simulate: the generators' definitions, and IG / Integrated Hessians / RATE / TRIM recovering the planted
drivers of networks trained on them (precision@k = 1 on easy settings)."""
import numpy as np
import pytest

import swiftattr as sa
from swiftattr._ffi import SA_ERR_UNKNOWN_ENUM


def mlp(d, h=32, out=1, act=sa.Softplus):
    z = np.zeros
    return sa.Sequential([sa.Linear(z((h, d)), z(h)), act(), sa.Linear(z((h, h)), z(h)), act(), sa.Linear(z((out, h)), z(out))])


def test_interaction_generators_follow_path_explain():
    a, b = np.array([-1.0, 0.5, 2.0]), np.array([0.5, -2.0, 1.0])
    g = sa.simulate.INTERACTIONS
    np.testing.assert_allclose(g["multiply"](a, b), a * b)
    np.testing.assert_allclose(g["maximum"](a, b), [0.5, 0.5, 2.0])
    np.testing.assert_allclose(g["minimum"](a, b), [-1.0, -2.0, 1.0])
    np.testing.assert_allclose(g["squaresum"](a, b), (a + b) ** 2)
    np.testing.assert_allclose(g["sign_modify"](a, b), [-1.0, -0.5, 2.0])
    np.testing.assert_allclose(g["cossum"](a, b), np.cos(a + b))
    np.testing.assert_allclose(g["tanhsum"](a, b), np.tanh(a + b))
    d = sa.simulate.interactions(n=4000, d=6, kind=["multiply", "cossum"], n_interactions=4, seed=3)
    X, y = d["X"], d["y"]
    assert X.shape == (4000, 6) and X.dtype == np.float32 and y.shape == (4000,)
    assert abs(y.std() - 1) < 1e-5 and abs(X.mean()) < 0.05 and abs(X.std() - 1) < 0.05
    # y is exactly Σ c g(x_i, x_j) with the returned pairs, kinds and (rescaled) coefficients.
    rebuilt = sum(c * g[k](X[:, i].astype(np.float64), X[:, j].astype(np.float64))
                  for (i, j), k, c in zip(d["pairs"], d["kinds"], d["coefficients"]))
    np.testing.assert_allclose(y, rebuilt, rtol=1e-5, atol=1e-5)
    assert len({tuple(p) for p in d["pairs"]}) == 4 and set(d["kinds"]) <= {"multiply", "cossum"}
    assert np.allclose(d["truth"], d["truth"].T) and (d["truth"] > 0).sum() == 8
    again = sa.simulate.interactions(n=4000, d=6, kind=["multiply", "cossum"], n_interactions=4, seed=3)
    np.testing.assert_array_equal(again["X"], X)


def test_rate_data_and_frequency_definitions():
    d = sa.simulate.rate_data(n=3000, p=8, n_causal=3, correlation=0.6, pve=0.7, seed=0)
    c = np.corrcoef(d["X"].T.astype(np.float64))
    assert abs(c[0, 1] - 0.6) < 0.05 and abs(c[0, 2] - 0.36) < 0.05  # AR(1): ρ^|i−j|
    assert d["truth"].sum() == 3 and set(np.flatnonzero(d["truth"])) == set(d["causal"])
    r2 = 1 - np.var(d["y"] - d["X"] @ np.linalg.lstsq(d["X"], d["y"], rcond=None)[0]) / np.var(d["y"])
    assert abs(r2 - 0.7) < 0.05  # the linear signal explains pve of the variance
    cls = sa.simulate.rate_data(n=100, p=5, n_causal=2, n_interacting=2, task="classification", seed=1)
    assert cls["y"].dtype == np.int64 and set(np.unique(cls["y"])) == {0, 1} and cls["pairs"].shape == (1, 2)
    f = sa.simulate.frequency(n=200, length=32, band=2, n_bands=4, seed=0)
    T = f["transform"]
    np.testing.assert_allclose(T.coefficients(f["X"]), f["coefficients"], atol=1e-4)
    assert f["truth"].tolist() == [0, 0, 1, 0] and f["truth_coefficients"].sum() == f["bands"][2].sum()


def test_generator_errors():
    with pytest.raises(sa.SwiftAttrError, match="kind") as e:
        sa.simulate.interactions(kind="product")
    assert e.value.code == SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="n_interactions"):
        sa.simulate.interactions(d=3, n_interactions=4)
    with pytest.raises(sa.SwiftAttrError, match="correlation"):
        sa.simulate.rate_data(correlation=1.0)
    with pytest.raises(sa.SwiftAttrError, match="n_causal"):
        sa.simulate.rate_data(p=3, n_causal=4)
    with pytest.raises(sa.SwiftAttrError, match="band"):
        sa.simulate.frequency(n_bands=4, band=4)


def test_ig_and_integrated_hessians_recover_planted_interactions():
    d = sa.simulate.interactions(n=3000, d=6, kind="multiply", n_interactions=2, equal_coeffs=True, seed=0)
    net, _ = sa.train(mlp(6), d["X"], d["y"], loss="mse", lr=0.01, epochs=40, batch_size=64, seed=0, initialize=True,
                      progress=False)
    x = d["X"][:40]
    assert np.mean((net.forward(d["X"])[:, 0] - d["y"]) ** 2) < 0.05
    ig = sa.integrated_gradients(net, x)
    assert sa.checks.recovery(ig, d["feature_truth"])["precision_at_k"] == 1.0
    gamma = sa.integrated_hessians(net, x)
    r = sa.checks.recovery(gamma, d["truth"])
    assert r["precision_at_k"] == 1.0 and r["auroc"] == 1.0


@pytest.mark.parametrize("correlation, projection", [(0.0, "covariance"), (0.3, "pseudoinverse")])
def test_rate_recovers_planted_linear_drivers(correlation, projection):
    # With correlated inputs the covariance projection X_cᵀf also credits a causal feature's neighbours;
    # the pseudo-inverse (regression) projection does not.
    d = sa.simulate.rate_data(n=1000, p=10, n_causal=3, correlation=correlation, pve=0.9, seed=2)
    net, _ = sa.train(mlp(10, h=16, act=sa.ReLU), d["X"], d["y"], loss="mse", lr=0.01, epochs=30, seed=0,
                      initialize=True, progress=False)
    post = sa.bayesian_last_layer(net, d["X"], d["y"], task="regression")
    res = sa.rate_last_layer(d["X"], post.H, post.W_mean, post.W_cov, post.b, projection=projection)
    assert sa.checks.recovery(res.rate[0], d["truth"])["precision_at_k"] == 1.0


def test_trim_recovers_the_planted_band():
    f = sa.simulate.frequency(n=1500, length=32, band=2, n_bands=4, amplitude=1.5, seed=1)
    net, _ = sa.train(mlp(32, h=32, out=2, act=sa.ReLU), f["X"], f["y"], lr=0.01, epochs=15, seed=0, initialize=True,
                      progress=False)
    assert (net.forward(f["X"]).argmax(axis=1) == f["y"]).mean() > 0.85
    x = f["X"][:50]
    phi = sa.trim(sa.integrated_gradients, net, x, f["transform"], target=f["y"][:50])
    band_importance = np.abs(phi) @ f["bands"].T  # (n, bands): Σ|φ| over each band's coefficients
    assert sa.checks.recovery(band_importance, f["truth"])["precision_at_k"] == 1.0
    assert sa.checks.recovery(phi, f["truth_coefficients"])["auroc"] > 0.95


def test_bad_arguments_are_refused_by_name():
    from swiftattr._ffi import SA_ERR_UNKNOWN_ENUM

    with pytest.raises(sa.SwiftAttrError, match="kind"):
        sa.simulate.interactions(n=50, d=3, kind=123, seed=0)  # was a TypeError (list(123))
    with pytest.raises(sa.SwiftAttrError, match="kind") as e:
        sa.simulate.interactions(n=50, d=3, kind=["multiply", "divide"], seed=0)
    assert e.value.code == SA_ERR_UNKNOWN_ENUM
    with pytest.raises(sa.SwiftAttrError, match="equal_coeffs"):
        sa.simulate.interactions(n=50, d=3, equal_coeffs="no", seed=0)  # a non-empty string is not True
    with pytest.raises(sa.SwiftAttrError, match="amplitude"):
        sa.simulate.frequency(n=10, length=16, amplitude=float("nan"), seed=0)  # was NaN signals, silently
    with pytest.raises(sa.SwiftAttrError, match="correlation"):
        sa.simulate.rate_data(n=10, p=4, n_causal=2, correlation=float("nan"), seed=0)

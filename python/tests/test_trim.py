"""TRIM (attribution in a transformed domain) and the Reshape node it relies on.

Tolerances: the transformed network computes f(T⁻¹ s + r) with one extra float32 GEMM of p (or k + p) terms
per value; for orthonormal T with |x| ≲ 3 that adds an error of order p·2⁻²⁴·|x| ≈ 1e-5 at p = 64, so
agreements are asserted at 1e-4 (absolute, on outputs of order 1), and completeness at the same level.
"""
import copy
import pickle

import numpy as np
import pytest

import swiftattr as sa


def mlp(rng, d=12, h=16, out=3):
    return sa.Sequential([sa.Linear(rng.standard_normal((h, d)) / np.sqrt(d), 0.1 * rng.standard_normal(h)), sa.Softplus(2.0),
                          sa.Linear(rng.standard_normal((out, h)) / np.sqrt(h), 0.1 * rng.standard_normal(out))])


def cnn(rng, c=2, hw=6):
    return sa.Sequential([sa.Conv2d(0.3 * rng.standard_normal((4, c, 3, 3)), 0.1 * rng.standard_normal(4), padding=1), sa.ReLU(),
                          sa.GlobalAvgPool(), sa.Linear(rng.standard_normal((3, 4)), rng.standard_normal(3))],
                         input_shape=(c, hw, hw))


def test_reshape_layer_views_values_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    w = 0.3 * rng.standard_normal((4, 2, 3, 3))
    net = sa.Sequential([sa.Reshape((2, 5, 5)), sa.Conv2d(w, padding=1), sa.ReLU(), sa.Flatten()], input_shape=(50,))
    ref = sa.Sequential([sa.Conv2d(w, padding=1), sa.ReLU(), sa.Flatten()], input_shape=(2, 5, 5))
    x = rng.standard_normal((3, 50)).astype(np.float32)
    np.testing.assert_array_equal(net.forward(x), ref.forward(x.reshape(3, 2, 5, 5)))  # same computation
    assert net.layer_kinds[0] == "reshape"
    net.save(tmp_path / "m.sam")
    back = sa.load(tmp_path / "m.sam")
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).forward(x), net.forward(x))
    g = sa.saliency(net, x, target=7, abs=False)
    np.testing.assert_allclose(g.reshape(3, 2, 5, 5), sa.saliency(ref, x.reshape(3, 2, 5, 5), target=7, abs=False), atol=1e-6)


@pytest.mark.parametrize("shape", [(0,), (7,), (2, 26), (1, 2, 3, 4)])
def test_reshape_rejects_a_size_change(shape):
    with pytest.raises(sa.SwiftAttrError):
        sa.Sequential([sa.Reshape(shape), sa.Flatten()], input_shape=(50,))


def test_fourier_basis_is_orthonormal_and_tagged():
    for shape in [(8,), (7,), (2, 9), (1, 4, 6), (3, 5, 5)]:
        t = sa.fourier_transform(shape)
        p = int(np.prod(shape))
        assert t.matrix.shape == (p, p) and t.complete
        np.testing.assert_allclose(t.matrix @ t.matrix.T, np.eye(p), atol=1e-5)
        assert t.frequencies.min() == 0 and t.frequencies.max() <= np.sqrt(0.5) + 1e-6
    x = np.random.default_rng(1).standard_normal((4, 3, 5, 5)).astype(np.float32)
    t = sa.fourier_transform((3, 5, 5))
    np.testing.assert_allclose(t.reconstruct(t.coefficients(x)), x, atol=1e-5)
    assert np.abs(t.residual(x)).max() < 1e-5
    # A pure cosine of frequency 2/8 lands in the coefficients tagged 0.25 only.
    n = np.arange(8)
    s = sa.fourier_transform((8,)).coefficients(np.cos(2 * np.pi * 2 * n / 8)[None])
    f = sa.fourier_transform((8,)).frequencies
    assert np.abs(s[0, f != 0.25]).max() < 1e-5 and np.abs(s[0, f == 0.25]).max() > 1


def test_frequency_bands_partition_the_coefficients():
    t = sa.fourier_transform((16,))
    bands = sa.frequency_bands(t, 4)
    assert bands.shape == (4, 16)
    np.testing.assert_array_equal(bands.sum(axis=0), np.ones(16))
    assert bands[0, np.argmin(t.frequencies)] == 1 and bands[3, np.argmax(t.frequencies)] == 1
    with pytest.raises(sa.SwiftAttrError):
        sa.frequency_bands(t, 0)


def test_identity_transform_equals_the_plain_methods():
    rng = np.random.default_rng(2)
    net = mlp(rng)
    x = rng.standard_normal((5, 12)).astype(np.float32)
    ident = sa.Transform(np.eye(12))
    for method, kw in [(sa.saliency, {"abs": False}), (sa.input_x_gradient, {}), (sa.integrated_gradients, {}),
                       (sa.deeplift, {})]:
        np.testing.assert_allclose(sa.trim(method, net, x, ident, target=1, **kw), method(net, x, target=1, **kw),
                                   atol=1e-5, err_msg=method.__name__)


def test_fourier_ig_is_complete_and_saliency_is_the_rotated_gradient():
    rng = np.random.default_rng(3)
    net = cnn(rng)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    t = sa.fourier_transform((2, 6, 6))
    phi = sa.trim(sa.integrated_gradients, net, x, t, target=2, n_steps=64)
    assert phi.shape == (4, 72)
    # Baseline s' = 0 is the input T⁻¹0 = 0: completeness Σφ = f(x) − f(0).
    gap = net.forward(x)[:, 2] - net.forward(np.zeros_like(x))[:, 2]
    np.testing.assert_allclose(phi.sum(axis=1), gap, atol=2e-3 * max(1, np.abs(gap).max()))
    # ∂g/∂s = (T⁻¹)ᵀ ∇f = T ∇f for orthonormal T.
    grad = sa.saliency(net, x, target=0, abs=False).reshape(4, -1)
    np.testing.assert_allclose(sa.trim(sa.saliency, net, x, t, target=0, abs=False), grad @ t.matrix.T, atol=1e-5)
    # DeepLIFT keeps summation-to-delta in the transformed domain.
    c = sa.trim(sa.deeplift, net, x, t, target=1)
    np.testing.assert_allclose(c.sum(axis=1), net.forward(x)[:, 1] - net.forward(np.zeros_like(x))[:, 1], atol=1e-4)


def test_truncated_transform_uses_the_residual():
    rng = np.random.default_rng(4)
    net = mlp(rng, d=16)
    full = sa.fourier_transform((16,))
    low = full.frequencies <= 0.2
    t = sa.Transform(full.matrix[low], full.matrix[low].T, frequencies=full.frequencies[low])
    assert not t.complete
    x = rng.standard_normal((3, 16)).astype(np.float32)
    g = t.network(net)
    assert g.input_shape == (int(low.sum()) + 16,)
    z = np.concatenate([t.coefficients(x), t.residual(x)], axis=1)
    np.testing.assert_allclose(g.forward(z), net.forward(x), atol=1e-5)
    phi = sa.trim(sa.integrated_gradients, net, x, t, target=0, n_steps=64)
    assert phi.shape == (3, int(low.sum()))
    # The baseline keeps the residual: x' = r, so completeness is f(x) − f(r).
    r = t.residual(x)
    np.testing.assert_allclose(phi.sum(axis=1), net.forward(x)[:, 0] - net.forward(r)[:, 0], atol=1e-3)
    # Without the residual the network sees only the low band.
    g0 = t.network(net, use_residuals=False)
    np.testing.assert_allclose(g0.forward(t.coefficients(x)), net.forward(t.reconstruct(t.coefficients(x))), atol=1e-5)
    with pytest.raises(sa.SwiftAttrError, match="residual"):
        sa.trim(sa.expected_gradients, net, x, t, references=t.coefficients(x), target=0)
    with pytest.raises(sa.SwiftAttrError, match="residual"):
        sa.trim(sa.deepshap, net, x, t, references=t.coefficients(x), target=0)


def test_bad_arguments_raise():
    rng = np.random.default_rng(5)
    net = mlp(rng)
    x = rng.standard_normal((2, 12)).astype(np.float32)
    with pytest.raises(sa.SwiftAttrError, match="matrix"):
        sa.Transform(np.ones(12))
    with pytest.raises(sa.SwiftAttrError, match="inverse"):
        sa.Transform(np.eye(12), inverse=np.eye(11))
    with pytest.raises(sa.SwiftAttrError, match="inverse"):
        sa.Transform(np.eye(3), inverse=np.full((3, 3), np.nan))
    with pytest.raises(sa.SwiftAttrError, match="input_shape"):
        sa.trim(sa.saliency, net, x, sa.fourier_transform((10,)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="inputs"):
        sa.trim(sa.saliency, net, x[:, :10], sa.Transform(np.eye(12)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sa.trim(sa.saliency, net, x, sa.Transform(np.eye(12)), baselines=np.zeros(12), target=0)
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sa.trim(sa.integrated_gradients, net, x, sa.Transform(np.eye(12)), baselines=np.zeros(5), target=0)
    with pytest.raises(sa.SwiftAttrError, match="method"):
        sa.trim("ig", net, x, sa.Transform(np.eye(12)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="input_shape"):
        sa.fourier_transform((0, 3))
    t = sa.Transform(np.eye(12))
    copy.deepcopy(t), pickle.loads(pickle.dumps(t))  # plain numpy state: copies are safe


def test_transformed_graph_keeps_its_wiring():
    """The transform's nodes shift every value of the graph; add, concat and fan-out must still read the right
    values (the input is read twice here)."""
    rng = np.random.default_rng(6)
    W1, W2, W3 = (0.5 * rng.standard_normal(s) for s in [(6, 6), (6, 6), (3, 12)])
    g = sa.Graph(input_shape=(6,))
    h = g.add(sa.Linear(W1))
    r = g.add(sa.Tanh(), h)
    h2 = g.add(sa.Linear(W2), r)
    s = g.add(sa.Add(), [h2, g.input])
    c = g.add(sa.Concat(), [s, r])
    g.add(sa.Linear(W3), c)
    net = g.build()
    t = sa.fourier_transform((6,))
    x = rng.standard_normal((4, 6)).astype(np.float32)
    tn = t.network(net)
    assert tn.input_shape == (6,) and tn.num_layers == net.num_layers + 1
    np.testing.assert_allclose(tn.forward(t.coefficients(x)), net.forward(x), atol=1e-5)
    grad = sa.saliency(net, x, target=2, abs=False)
    np.testing.assert_allclose(sa.trim(sa.saliency, net, x, t, target=2, abs=False), grad @ t.matrix.T, atol=1e-5)


def test_cd_of_a_frequency_band():
    """CD of coefficient groups (TRIM's "CD of a band"): with T = I it is plain CD; with the Fourier basis
    β + γ is the output for every band and the full mask gives β = the output; with a truncated transform the
    residual counts as irrelevant and β + γ is still the output."""
    rng = np.random.default_rng(7)
    net = mlp(rng)
    x = rng.standard_normal((3, 12)).astype(np.float32)
    masks = (rng.random((4, 12)) < 0.5).astype(np.float32)
    rel, irr = sa.trim(sa.contextual_decomposition, net, x, sa.Transform(np.eye(12)), mask=masks)
    ref_rel, ref_irr = sa.contextual_decomposition(net, x, masks)
    np.testing.assert_allclose(rel, ref_rel, atol=1e-5)
    np.testing.assert_allclose(irr, ref_irr, atol=1e-5)
    t = sa.fourier_transform((12,))
    bands = sa.frequency_bands(t, 3)
    rel, irr = sa.trim(sa.contextual_decomposition, net, x, t, mask=bands)
    assert rel.shape == (3, 3, 3)
    np.testing.assert_allclose(rel + irr, np.broadcast_to(net.forward(x)[:, None, :], rel.shape), atol=1e-4)
    full_rel, full_irr = sa.trim(sa.contextual_decomposition, net, x, t, mask=np.ones(12, np.float32))
    np.testing.assert_allclose(full_rel, net.forward(x), atol=1e-4)
    # A truncated transform: the residual is irrelevant, so the low band's β + γ is still the output.
    low = t.frequencies <= 0.2
    tl = sa.Transform(t.matrix[low], t.matrix[low].T)
    rel, irr = sa.trim(sa.contextual_decomposition, net, x, tl, mask=np.ones(int(low.sum()), np.float32))
    np.testing.assert_allclose(rel + irr, net.forward(x), atol=1e-4)

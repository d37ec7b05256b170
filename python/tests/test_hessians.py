"""Integrated and Expected Hessians through the Python wrapper: shapes, completeness, an independent torch
reference of the exact Hessian and of path_explain's grid estimator, seeds, and errors (same codes as C)."""
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi
from conftest import optional_import, small_cnn, smooth_mlp


def relu_mlp(rng, d=5, h=12, out=2):
    return sa.Sequential([
        sa.Linear(rng.standard_normal((h, d)) / np.sqrt(d), rng.standard_normal(h) * 0.3), sa.ReLU(),
        sa.Linear(rng.standard_normal((h, h)) / np.sqrt(h), rng.standard_normal(h) * 0.3), sa.ReLU(),
        sa.Linear(rng.standard_normal((out, h)) / np.sqrt(h)),
    ])


@pytest.mark.parametrize("build,shape", [(smooth_mlp, (6,)), (small_cnn, (2, 8, 8))])
def test_shapes_symmetry_and_completeness(rng, build, shape):
    net = build(rng)
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    base = 0.3 * rng.standard_normal(shape).astype(np.float32)
    p = int(np.prod(shape))
    gamma = sa.integrated_hessians(net, x, base, target=1)
    assert gamma.shape == (3, p, p) and gamma.dtype == np.float32
    np.testing.assert_array_equal(gamma, gamma.transpose(0, 2, 1))
    ig = sa.integrated_gradients(net, x, base, target=1).reshape(3, p)
    # Completeness at the default 32 nodes: the quadrature error is below 1e-6 on these gentle networks and
    # float32 sums of p terms add ~p·ε₃₂·max|Γ|; 1e-4 of max|IG| as the issue asks.
    assert np.abs(gamma.sum(-1) - ig).max() <= 1e-4 * np.abs(ig).max()
    row = sa.integrated_hessians(net, x, base, target=1, interaction_index=p // 2)
    assert row.shape == (3, p)
    np.testing.assert_allclose(row, gamma[:, p // 2], rtol=0, atol=1e-4 * np.abs(gamma).max())


def test_softplus_beta_equals_explicit_network(rng):
    net = relu_mlp(rng)
    x = rng.standard_normal((2, 5)).astype(np.float32)
    soft = net.with_softplus(10)
    assert soft.layer_kinds == ["dense", "softplus", "dense", "softplus", "dense"]
    assert sa.with_softplus(net, 10).layer_kinds == soft.layer_kinds
    explicit = sa.Sequential([net.layers[0], sa.Softplus(10), net.layers[2], sa.Softplus(10), net.layers[4]])
    np.testing.assert_array_equal(soft.forward(x), explicit.forward(x))
    a = sa.integrated_hessians(net, x, target=0, softplus_beta=10)
    np.testing.assert_array_equal(a, sa.integrated_hessians(soft, x, target=0))
    # A ReLU network has no curvature: only the diagonal (first-order) term remains.
    plain = sa.integrated_hessians(net, x, target=0)
    np.testing.assert_array_equal(plain, np.stack([np.diag(np.diag(m)) for m in plain]))


def _torch_mlp(torch, rng, d, beta):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Softplus(beta), torch.nn.Linear(16, 16),
                                torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    return model


def _reference(torch, model, x, base, t_nodes, wg, wh, target):
    """Γ by the same quadrature nodes with float64 torch autograd Hessians (independent of the library)."""
    out = []
    for xi, bi in zip(x, base):
        xi, bi = torch.tensor(xi, dtype=torch.float64), torch.tensor(bi, dtype=torch.float64)
        delta = xi - bi
        f = lambda v: model(v[None])[0, target]
        g = torch.zeros((len(xi), len(xi)), dtype=torch.float64)
        for t, a, b in zip(t_nodes, wg, wh):
            point = bi + t * delta
            grad = torch.autograd.functional.jacobian(f, point)
            hess = torch.autograd.functional.hessian(f, point)
            g += b * torch.outer(delta, delta) * hess + a * torch.diag(delta * grad)
        out.append(g.numpy())
    return np.stack(out)


def test_grid_matches_torch_reference_of_path_explain_sampling(rng):
    """path_explain's use_expectation=False estimator (s = ⌈√n⌉ grid, n kept at rounded linspace, each
    sample weighted 1/n), written out in float64 torch: swiftattr's grid must give the same numbers up to
    float32 arithmetic (1e-4 of max|Γ|). path_explain itself is not installed here (it needs tensorflow)."""
    torch = optional_import("torch")
    d, n = 4, 10
    model = _torch_mlp(torch, rng, d, beta=10.0)
    net = sa.from_torch(model.float(), input_shape=(d,))
    model = model.double()
    x = rng.standard_normal((2, d)).astype(np.float32)
    base = 0.2 * rng.standard_normal((2, d)).astype(np.float32)
    s = int(np.ceil(np.sqrt(n)))
    grid = np.linspace(0, 1, s)
    products = np.outer(grid, grid).ravel()[np.round(np.linspace(0, s * s - 1, n)).astype(int)]
    expected = _reference(torch, model, x.astype(np.float64), base.astype(np.float64), products,
                          np.full(n, 1 / n), products / n, target=1)
    got = sa.integrated_hessians(net, x, base, target=1, n_steps=n, method="grid")
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_default_rule_matches_torch_reference(rng):
    """The exact Hessian of the library against torch autograd, through the whole Integrated Hessians sum at
    a fine reference rule (Gauss–Legendre on [0, 1] in v, t = v², 200 nodes)."""
    torch = optional_import("torch")
    d = 3
    model = _torch_mlp(torch, rng, d, beta=10.0)
    net = sa.from_torch(model.float(), input_shape=(d,))
    model = model.double()
    x = rng.standard_normal((1, d)).astype(np.float32)
    v, w = np.polynomial.legendre.leggauss(200)
    v, w = (v + 1) / 2, w / 2 * 4 * ((v + 1) / 2) * -np.log((v + 1) / 2)
    t = v * v
    expected = _reference(torch, model, x.astype(np.float64), np.zeros_like(x, dtype=np.float64), t, w, w * t, 0)
    got = sa.integrated_hessians(net, x, target=0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_expected_hessians_seeded_and_split(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    refs = rng.standard_normal((7, 6)).astype(np.float32)
    a = sa.expected_hessians(net, x, refs, target=0, n_samples=12, seed=5)
    assert a.shape == (4, 6, 6)
    np.testing.assert_array_equal(a, sa.expected_hessians(net, x, refs, target=0, n_samples=12, seed=5))
    assert not np.array_equal(a, sa.expected_hessians(net, x, refs, target=0, n_samples=12, seed=6))
    tail = sa.expected_hessians(net, x[2:], refs, target=0, n_samples=12, seed=5, first_example=2)
    # Two rows instead of four are other GEMM shapes (a BLAS kernel may round them differently): the same draws
    # agree to float32 rounding of sums of 12 samples, 1e-5 of the scale (test_fork_seeds' ROUNDING); other
    # draws differ by O(1).
    np.testing.assert_allclose(tail, a[2:], rtol=0, atol=1e-5 * np.abs(a).max())
    row = sa.expected_hessians(net, x, refs, target=0, n_samples=12, seed=5, interaction_index=3)
    np.testing.assert_allclose(row, a[:, 3], rtol=0, atol=1e-4 * np.abs(a).max())


def test_errors_carry_c_codes(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((2, 6)).astype(np.float32)
    cases = [
        (dict(method="simpson"), _ffi.SA_ERR_UNKNOWN_ENUM, "method"),
        (dict(interaction_index=6), _ffi.SA_ERR_OUT_OF_RANGE, "interaction_index"),
        (dict(interaction_index=-1), _ffi.SA_ERR_OUT_OF_RANGE, "interaction_index"),
        (dict(softplus_beta=0), _ffi.SA_ERR_INVALID_ARGUMENT, "softplus_beta"),
        (dict(softplus_beta=-1.0), _ffi.SA_ERR_INVALID_ARGUMENT, "softplus_beta"),
        (dict(n_steps=0), _ffi.SA_ERR_INVALID_ARGUMENT, "n_steps"),
        (dict(target=3), _ffi.SA_ERR_OUT_OF_RANGE, "target"),
    ]
    for kwargs, code, word in cases:
        kwargs.setdefault("target", 0)
        with pytest.raises(sa.SwiftAttrError, match=word) as e:
            sa.integrated_hessians(net, x, **kwargs)
        assert e.value.code == code, (kwargs, e.value)
    with pytest.raises(sa.SwiftAttrError, match="n_samples"):
        sa.expected_hessians(net, x, x, target=0, n_samples=0)
    with pytest.raises(sa.SwiftAttrError, match="beta"):
        net.with_softplus(0)


def test_grid_equals_path_explain_fixture():
    """path_explain's own PathExplainerTorch.interactions(use_expectation=False, num_samples=16) on a
    softplus(β = 10) MLP (fixtures/make_path_explain_fixture.py; float64 torch): method="grid" with the same
    16 samples gives the same Γ up to float32 arithmetic (1e-4 of max|Γ|)."""
    f = np.load(os.path.join(os.path.dirname(__file__), "fixtures", "path_explain_grid.npz"))
    net = sa.Sequential([sa.Linear(f["p0"], f["p1"]), sa.Softplus(10), sa.Linear(f["p2"], f["p3"]), sa.Softplus(10),
                         sa.Linear(f["p4"], f["p5"])])
    got = sa.integrated_hessians(net, f["x"], f["baseline"][0], target=f["target"], n_steps=int(f["n_samples"]),
                                 method="grid")
    np.testing.assert_allclose(got, f["gamma"], rtol=0, atol=1e-4 * np.abs(f["gamma"]).max())
    # and the grid is far from exact at 16 samples: completeness fails by percents, the default rule does not
    ig = sa.integrated_gradients(net, f["x"], f["baseline"][0], target=f["target"])
    exact = sa.integrated_hessians(net, f["x"], f["baseline"][0], target=f["target"])
    assert np.abs(exact.sum(-1) - ig).max() <= 1e-4 * np.abs(ig).max()
    assert np.abs(got.sum(-1) - ig).max() > 1e-2 * np.abs(ig).max()


def test_plot_interactions(tmp_path, rng):
    optional_import("matplotlib")
    net = smooth_mlp(rng)
    gamma = sa.integrated_hessians(net, rng.standard_normal((1, 6)).astype(np.float32), target=0)[0]
    axes = sa.plot.interactions(gamma, feature_names=list("abcdef"), top=4, path=tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 0
    heat, bars = axes
    lo, hi = heat.images[0].get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(gamma).max())  # zero-centred
    assert len(bars.patches) == 4
    iu = np.triu_indices(6, 1)
    # the largest pair is drawn first, at the top
    assert bars.patches[0].get_width() == pytest.approx(gamma[iu][np.argmax(np.abs(gamma[iu]))])
    assert bars.patches[0].get_y() > bars.patches[-1].get_y()
    with pytest.raises(sa.SwiftAttrError, match="gamma"):
        sa.plot.interactions(gamma[0])
    with pytest.raises(sa.SwiftAttrError, match="feature_names"):
        sa.plot.interactions(gamma, feature_names=["a"])


def token_mlp(rng, vocab=7, L=4, E=3):
    """Embedding → Flatten → Linear → Softplus → Linear: smooth after the embedding."""
    return sa.Sequential([
        sa.Embedding(rng.standard_normal((vocab, E))), sa.Flatten(),
        sa.Linear(rng.standard_normal((5, L * E)) / np.sqrt(L * E), rng.standard_normal(5) * 0.3), sa.Softplus(2.0),
        sa.Linear(rng.standard_normal((2, 5)) / np.sqrt(5)),
    ], input_shape=(L,))


TOKEN_IDS = np.array([[1, 2, 3, 4], [6, 5, 0, 2]], dtype=np.float32)


def test_token_shapes_sum_embedding_and_completeness(rng):
    net = token_mlp(rng)
    L, E = 4, net.embedding_dim
    pad = np.zeros(L)
    gamma = sa.integrated_hessians(net, TOKEN_IDS, pad, target=1)
    assert gamma.shape == (2, L, L) and gamma.dtype == np.float32
    np.testing.assert_array_equal(gamma, gamma.transpose(0, 2, 1))
    ig = sa.integrated_gradients(net, TOKEN_IDS, pad, target=1, n_steps=64)
    # Both quadratures converge far below 1e-4 here; float32 sums add ~1e-6 of the scale.
    assert np.abs(gamma.sum(-1) - ig).max() <= 1e-4 * np.abs(ig).max()
    full = sa.integrated_hessians(net, TOKEN_IDS, pad, target=1, sum_embedding=False)
    assert full.shape == (2, L * E, L * E)
    # The library's block sums and numpy's add the same float32 entries in float64 in different orders: they
    # can differ by one float32 rounding of the result (~6e-8 relative).
    np.testing.assert_allclose(full.reshape(2, L, E, L, E).sum(axis=(2, 4), dtype=np.float64), gamma,
                               rtol=0, atol=1e-6 * np.abs(gamma).max())
    direct = sa.integrated_hessians(net.embedding_rest(), net.embed(TOKEN_IDS), net.embed(pad[None]), target=1)
    np.testing.assert_array_equal(full, direct.reshape(full.shape))
    row = sa.integrated_hessians(net, TOKEN_IDS, pad, target=1, interaction_index=2)
    assert row.shape == (2, L)
    np.testing.assert_allclose(row, gamma[:, 2], rtol=0, atol=1e-5 * np.abs(gamma).max())
    row_full = sa.integrated_hessians(net, TOKEN_IDS, pad, target=1, interaction_index=2, sum_embedding=False)
    assert row_full.shape == (2, L * E)
    np.testing.assert_allclose(row_full, full[:, 2 * E:3 * E].sum(1), rtol=0, atol=1e-5 * np.abs(full).max())
    # No baselines: zero embedding vectors.
    zero = sa.integrated_hessians(net, TOKEN_IDS, target=1)
    np.testing.assert_allclose(zero.sum(-1), sa.integrated_gradients(net, TOKEN_IDS, target=1, n_steps=64),
                               rtol=0, atol=1e-4 * np.abs(ig).max())


def test_token_id_and_vector_baselines_agree(rng):
    net = token_mlp(rng)
    ids = np.array([3, 3, 1, 0])
    vec = net.embed(ids[None])
    a = sa.integrated_hessians(net, TOKEN_IDS, ids, target=0)
    b = sa.integrated_hessians(net, TOKEN_IDS, vec, target=0)
    # ids: block sums in the library; vectors: the same float32 matrix block-summed in numpy (float64).
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(a).max())
    np.testing.assert_allclose(sa.integrated_hessians(net, TOKEN_IDS, ids, target=0, interaction_index=1),
                               sa.integrated_hessians(net, TOKEN_IDS, vec, target=0, interaction_index=1),
                               rtol=0, atol=1e-6 * np.abs(a).max())
    refs = np.array([[0, 0, 0, 0], [3, 3, 1, 0]])
    e1 = sa.expected_hessians(net, TOKEN_IDS, refs, target=0, n_samples=16, seed=4)
    assert e1.shape == (2, 4, 4)
    np.testing.assert_array_equal(e1, sa.expected_hessians(net, TOKEN_IDS, refs, target=0, n_samples=16, seed=4))
    e2 = sa.expected_hessians(net, TOKEN_IDS, net.embed(refs), target=0, n_samples=16, seed=4)
    np.testing.assert_allclose(e1, e2, rtol=0, atol=1e-6 * np.abs(e1).max())
    full = sa.expected_hessians(net, TOKEN_IDS, refs, target=0, n_samples=16, seed=4, sum_embedding=False)
    assert full.shape == (2, 12, 12)
    row = sa.expected_hessians(net, TOKEN_IDS, refs, target=0, n_samples=16, seed=4, interaction_index=3, sum_embedding=False)
    assert row.shape == (2, 12)
    np.testing.assert_allclose(row, full[:, 9:12].sum(1), rtol=0, atol=1e-5 * np.abs(full).max())


def test_token_errors(rng):
    net = token_mlp(rng)
    with pytest.raises(sa.SwiftAttrError, match="interaction_index") as e:
        sa.integrated_hessians(net, TOKEN_IDS, target=0, interaction_index=4)
    assert e.value.code == _ffi.SA_ERR_OUT_OF_RANGE
    with pytest.raises(sa.SwiftAttrError, match="interaction_index") as e:
        sa.integrated_hessians(net, TOKEN_IDS, target=0, interaction_index=4, sum_embedding=False)
    assert e.value.code == _ffi.SA_ERR_OUT_OF_RANGE
    with pytest.raises(sa.SwiftAttrError, match="baselines") as e:
        sa.integrated_hessians(net, TOKEN_IDS, np.zeros((1, 4, 2)), target=0)
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="baselines") as e:
        sa.integrated_hessians(net, TOKEN_IDS, np.zeros(5), target=0)
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="references") as e:
        sa.expected_hessians(net, TOKEN_IDS, np.full((1, 4), 7), target=0, n_samples=2, seed=0)
    assert e.value.code == _ffi.SA_ERR_OUT_OF_RANGE
    with pytest.raises(sa.SwiftAttrError, match="sum_embedding"):
        sa.integrated_hessians(net, TOKEN_IDS, target=0, sum_embedding="yes")


def test_hessian_vector_products_equal_the_hessian_and_finite_differences():
    """H v from one forward-over-reverse pass against the full Hessian (the same pass with the identity as
    directions: equal to float32 rounding of the GEMMs, 1e-5 of the scale) and against central differences
    of the gradient (step 1e-2 on a softplus(β = 2) net: truncation ~1e-4 relative, rounding ~1e-5)."""
    rng = np.random.default_rng(11)
    net = sa.Sequential([sa.Linear(rng.normal(size=(12, 5)).astype(np.float32), rng.normal(size=12).astype(np.float32)),
                         sa.Softplus(2.0), sa.Linear(rng.normal(size=(3, 12)).astype(np.float32), np.zeros(3, np.float32)),
                         sa.Softmax()])
    x = rng.normal(size=(4, 5)).astype(np.float32)
    v = rng.normal(size=(4, 5)).astype(np.float32)
    g, hv = sa.hessian_vector_product(net, x, v, target=[0, 1, 2, 1], return_gradient=True)
    full = sa.hessian(net, x, target=[0, 1, 2, 1])
    scale = np.abs(hv).max()
    np.testing.assert_allclose(hv, np.einsum("nij,nj->ni", full, v), atol=1e-5 * scale)
    np.testing.assert_allclose(g, sa.saliency(net, x, target=[0, 1, 2, 1], abs=False), atol=1e-6 * np.abs(g).max())
    eps = 1e-2
    fd = (sa.saliency(net, x + eps * v, target=[0, 1, 2, 1], abs=False).astype(np.float64)
          - sa.saliency(net, x - eps * v, target=[0, 1, 2, 1], abs=False)) / (2 * eps)
    np.testing.assert_allclose(hv, fd, atol=2e-3 * scale)
    np.testing.assert_allclose(full, np.swapaxes(full, 1, 2), atol=1e-5 * np.abs(full).max())  # symmetric


def test_hessian_vector_product_checks_its_arguments():
    net = sa.Sequential([sa.Linear(np.ones((2, 3), np.float32), np.zeros(2, np.float32)), sa.Tanh()])
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(sa.SwiftAttrError, match="v"):
        sa.hessian_vector_product(net, x, np.zeros((2, 4), np.float32), target=0)
    with pytest.raises(sa.SwiftAttrError, match="target"):
        sa.hessian_vector_product(net, x, x, target=5)
    v = x.copy()
    v[1, 2] = np.nan
    with pytest.raises(sa.SwiftAttrError, match="v"):
        sa.hessian_vector_product(net, x, v, target=0)

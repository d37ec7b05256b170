"""End-to-end checks of the gradient methods through the Python wrapper."""
import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import, small_cnn, smooth_mlp

METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


def captum_toy():
    # f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))
    return sa.Sequential([sa.Linear(np.eye(2)), sa.ReLU(), sa.Linear([[1.0, -1.0]], [-1.0]), sa.ReLU()])


def test_captum_vector():
    phi, delta = sa.integrated_gradients(captum_toy(), [[3.0, 1.0]], target=0, return_convergence_delta=True)
    np.testing.assert_allclose(phi, [[1.5, -0.5]], atol=1e-5)
    assert abs(delta[0]) < 1e-5


@pytest.mark.parametrize("method", METHODS)
def test_linear_model_is_exact(rng, method):
    W = rng.standard_normal((4, 5)).astype(np.float32)
    net = sa.Sequential([sa.Linear(W, rng.standard_normal(4))])
    x = rng.standard_normal((3, 5)).astype(np.float32)
    base = rng.standard_normal((3, 5)).astype(np.float32)
    t = np.array([0, 2, 3])
    phi = sa.integrated_gradients(net, x, base, target=t, n_steps=7, method=method)
    np.testing.assert_allclose(phi, W[t] * (x - base), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build,shape", [(smooth_mlp, (6,)), (small_cnn, (2, 8, 8))])
def test_completeness(rng, build, shape):
    net = build(rng)
    x = rng.standard_normal((5,) + shape).astype(np.float32)
    base = 0.3 * rng.standard_normal((5,) + shape).astype(np.float32)
    phi, delta = sa.integrated_gradients(net, x, base, target=1, return_convergence_delta=True)
    gap = net.forward(x)[:, 1] - net.forward(base)[:, 1]
    total = phi.reshape(5, -1).sum(1)
    assert phi.shape == x.shape
    np.testing.assert_allclose(total - gap, delta, atol=1e-5)
    assert np.all(np.abs(delta) <= 1e-3 * np.abs(gap) + 1e-6)


def test_baselines_broadcast_and_scalar(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    one = sa.integrated_gradients(net, x, b, target=0)
    many = sa.integrated_gradients(net, x, np.tile(b, (4, 1)), target=0)
    np.testing.assert_allclose(one, many, rtol=1e-6, atol=1e-7)
    zeros = sa.integrated_gradients(net, x, None, target=0)
    scalar = sa.integrated_gradients(net, x, 0.0, target=0)
    np.testing.assert_array_equal(zeros, scalar)


def test_internal_batch_size_does_not_change_results(rng):
    net = small_cnn(rng)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    a = sa.integrated_gradients(net, x, target=[0, 1, 2], n_steps=20)
    b = sa.integrated_gradients(net, x, target=[0, 1, 2], n_steps=20, internal_batch_size=7)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_saliency_and_input_x_gradient_against_finite_differences(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((2, 6))
    g = sa.saliency(net, x, target=2, abs=False)
    eps = 1e-2
    fd = np.zeros_like(g)
    for j in range(6):
        e = np.zeros(6)
        e[j] = eps
        fd[:, j] = (net.forward(x + e)[:, 2].astype(np.float64) - net.forward(x - e)[:, 2]) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=2e-2, atol=2e-3)
    np.testing.assert_array_equal(sa.saliency(net, x, target=2), np.abs(g))
    np.testing.assert_allclose(sa.input_x_gradient(net, x, target=2), x * g, rtol=1e-6)


def test_gradient_with_full_cotangent(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((3, 6))
    c = rng.standard_normal((3, 3))
    g = sa.gradient(net, x, c)
    expected = sum(c[:, [k]] * sa.saliency(net, x, target=k, abs=False) for k in range(3))
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-5)


def test_expected_gradients_seed_and_linear_closed_form(rng):
    W = rng.standard_normal((2, 4)).astype(np.float32)
    net = sa.Sequential([sa.Linear(W)])
    x = rng.standard_normal((3, 4)).astype(np.float32)
    refs = rng.standard_normal((50, 4)).astype(np.float32)
    a = sa.expected_gradients(net, x, refs, target=1, n_samples=4000, seed=7)
    b = sa.expected_gradients(net, x, refs, target=1, n_samples=4000, seed=7)
    c = sa.expected_gradients(net, x, refs, target=1, n_samples=4000, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    closed = (x - refs.mean(0)) * W[1]
    np.testing.assert_allclose(a, closed, atol=0.1)


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_seed_and_linear_closed_form(rng, nt_type):
    W = rng.standard_normal((2, 4)).astype(np.float32)
    net = sa.Sequential([sa.Linear(W)])
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out = sa.smoothgrad(net, x, target=0, nt_type=nt_type, n_samples=10, stdevs=0.5, seed=3)
    expected = {"smoothgrad": W[0], "smoothgrad_sq": W[0] ** 2, "vargrad": 0 * W[0]}[nt_type]
    np.testing.assert_allclose(out, np.broadcast_to(expected, x.shape), rtol=1e-5, atol=1e-5)


def test_smoothgrad_is_reproducible_and_chunk_independent(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    a = sa.smoothgrad(net, x, target=0, n_samples=20, stdevs=0.3, seed=11)
    b = sa.smoothgrad(net, x, target=0, n_samples=20, stdevs=0.3, seed=11, internal_batch_size=7)
    c = sa.smoothgrad(net, x, target=0, n_samples=20, stdevs=0.3, seed=12)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(a, c)
    v = sa.smoothgrad(net, x, target=0, nt_type="vargrad", n_samples=20, stdevs=0.3, seed=11)
    assert np.all(v >= 0) and v.max() > 0


def test_threads_give_serial_numbers(rng):
    from concurrent.futures import ThreadPoolExecutor

    net = small_cnn(rng)
    xs = [rng.standard_normal((4, 2, 8, 8)).astype(np.float32) for _ in range(8)]
    serial = [sa.integrated_gradients(net, x, target=1, n_steps=16) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda x: sa.integrated_gradients(net, x, target=1, n_steps=16), xs))
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)


def test_image_attribution_figure(tmp_path, rng):
    optional_import("matplotlib")
    net = small_cnn(rng)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    phi = sa.integrated_gradients(net, x, target=0)
    path = tmp_path / "maps.png"
    fig = sa.plot.image_attributions(x, [phi, sa.saliency(net, x, target=0)], method_names=["IG", "saliency"], path=path)
    assert path.stat().st_size > 1000
    assert len(fig.axes) == 10  # 3 × 3 panels and the shared colour bar
    assert sum(a.get_label() == "<colorbar>" for a in fig.axes) == 1


def test_integrated_gradients_without_multiplying_by_inputs_is_the_path_integral():
    """multiply_by_inputs=False gives ∫∇f: times (x − x') it is IG (the same computation, so equal to float32
    rounding of one product), and it is defined where x = x' too (where IG is 0)."""
    rng = np.random.default_rng(3)
    net = sa.Sequential([sa.Linear(rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=6).astype(np.float32)),
                         sa.Tanh(), sa.Linear(rng.normal(size=(2, 6)).astype(np.float32), np.zeros(2, np.float32))])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    b = x.copy()
    b[:, 2] = 0.0  # x = x' except in column 2
    g = sa.integrated_gradients(net, x, b, target=1, multiply_by_inputs=False)
    ig = sa.integrated_gradients(net, x, b, target=1)
    np.testing.assert_allclose(g * (x - b), ig, rtol=1e-6, atol=1e-7)
    assert np.abs(g[:, [0, 1, 3]]).min() > 0  # the gradient along the path, not zero where x = x'
    with pytest.raises(sa.SwiftAttrError, match="multiply_by_inputs"):
        sa.integrated_gradients(net, x, b, target=1, multiply_by_inputs="no")

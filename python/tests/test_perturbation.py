"""Perturbation methods against Captum (fixture from python/tests/fixtures/make_perturbation_fixtures.py, read
without torch), given the same permutations and coalitions Captum drew; efficiency; seeded reproducibility
independent of chunking; argument errors with the C status codes.

Tolerance: Captum ran the float32 network in float64; we run it in float32. Each attribution is a difference
(or a fit to differences) of outputs of magnitude ≤ |f| ≈ 1 computed with ~1e-7 relative rounding per
layer, so errors are ~1e-6 of the largest attribution; 1e-4 of the largest value leaves a wide margin while
any definitional difference (a window, an edge, a weight) moves values by far more (measured: 1e-7–2e-6).
"""
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr._ffi import (SA_ERR_INVALID_ARGUMENT, SA_ERR_NON_FINITE, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE,
                            SA_ERR_UNKNOWN_ENUM)

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "perturbation_captum.npz")


@pytest.fixture(scope="module")
def f():
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def net(f):
    return sa.Sequential([sa.Conv2d(f["conv_w"], f["conv_b"], padding=1), sa.ReLU(), sa.MaxPool2d(2), sa.Flatten(),
                          sa.Linear(f["dense_w"], f["dense_b"])], input_shape=(2, 8, 8))


def close(ours, captum):
    assert ours.shape == captum.shape
    scale = np.abs(captum).max()
    assert scale > 0
    assert np.abs(ours - captum).max() <= 1e-4 * scale, np.abs(ours - captum).max() / scale


def test_occlusion_matches_captum(f, net):
    x, b, t = f["x"], f["baselines"], f["target"]
    # Window 3 with stride 2 over 8: positions 0, 2, 4, 6, the last one cut at the edge.
    close(sa.occlusion(net, x, (1, 3, 3), strides=(1, 2, 2), baselines=b, target=t), f["occlusion_a"])
    close(sa.occlusion(net, x, (2, 4, 4), strides=2, baselines=0.5, target=t), f["occlusion_b"])
    close(sa.occlusion(net, x, (1, 2, 3), baselines=b, target=t), f["occlusion_c"])


def test_feature_ablation_matches_captum(f, net):
    x, b, t = f["x"], f["baselines"], f["target"]
    close(sa.feature_ablation(net, x, b, feature_mask=f["superpixels"], target=t), f["ablation_shared"])
    close(sa.feature_ablation(net, x, b, feature_mask=f["per_example_mask"], target=t), f["ablation_per_example"])
    close(sa.feature_ablation(net, x, 0.25, target=t), f["ablation_default"])


def test_feature_permutation_matches_captum(f, net):
    close(sa.feature_permutation(net, f["perm_x"], feature_mask=f["perm_mask"], target=f["perm_target"],
                                 permutations=f["perm_permutations"]), f["permutation"])


def test_shapley_value_sampling_matches_captum(f, net):
    close(sa.shapley_value_sampling(net, f["x"], f["baselines"], feature_mask=f["superpixels"], target=f["target"],
                                    permutations=f["shapley_permutations"]), f["shapley"])


def test_kernel_shap_matches_captum(f, net):
    # Captum imposes efficiency softly (weight 1e6 on the full and empty coalitions), we exactly: measured 2e-6.
    close(sa.kernel_shap(net, f["x"], f["baselines"], feature_mask=f["superpixels"], target=f["target"],
                         coalitions=f["kernel_shap_coalitions"]), f["kernel_shap"])


def test_lime_matches_captum(f, net):
    x, b, t, m = f["x"], f["baselines"], f["target"], f["superpixels"]
    close(sa.lime(net, x, b, feature_mask=m, target=t, coalitions=f["lime_lasso_coalitions"], alpha=0.001),
          f["lime_lasso"])
    close(sa.lime(net, x, b, feature_mask=m, target=t, coalitions=f["lime_linear_coalitions"], surrogate="linear",
                  distance_mode="euclidean", similarity=5.0), f["lime_linear"])


def _per_feature_sum(phi, mask):
    """Σ over features of each feature's attribution (each feature's value appears on all its elements)."""
    m = np.broadcast_to(mask, (1,) + phi.shape[1:])[0]
    return np.array([sum(row[m == k][0] for k in np.unique(m)) for row in phi])


def test_efficiency_of_shapley_sampling_and_kernel_shap(f, net):
    x, b, t, m = f["x"], f["baselines"], f["target"], f["superpixels"]
    y = net.forward(x)[np.arange(3), t] - net.forward(b)[np.arange(3), t]
    for phi in (sa.shapley_value_sampling(net, x, b, feature_mask=m, target=t, n_samples=3, seed=1),
                sa.kernel_shap(net, x, b, feature_mask=m, target=t, n_samples=50, seed=1)):
        # Float32 outputs of magnitude ≤ 1, differences summed in double: 1e-5 absolute.
        np.testing.assert_allclose(_per_feature_sum(phi, m), y, atol=1e-5)


@pytest.mark.parametrize("method", ["shapley", "kernel_shap", "lime", "permutation"])
def test_seeded_draws_do_not_depend_on_chunking(f, net, method):
    x, b, t, m = f["x"], f["baselines"], f["target"], f["superpixels"]
    calls = {
        "shapley": lambda seed=7, **k: sa.shapley_value_sampling(net, x, b, feature_mask=m, target=t, n_samples=4, seed=seed, **k),
        "kernel_shap": lambda seed=7, **k: sa.kernel_shap(net, x, b, feature_mask=m, target=t, n_samples=30, seed=seed, **k),
        "lime": lambda seed=7, **k: sa.lime(net, x, b, feature_mask=m, target=t, n_samples=30, seed=seed, **k),
        "permutation": lambda seed=7, **k: sa.feature_permutation(net, f["perm_x"], feature_mask=f["perm_mask"],
                                                          target=f["perm_target"], seed=seed, **k),
    }
    call = calls[method]
    whole = call()
    np.testing.assert_array_equal(whole, call())
    for size in (1, 7):
        # The same perturbed inputs in other GEMM shapes: float32 rounding only (see the module docstring).
        np.testing.assert_allclose(call(internal_batch_size=size), whole, atol=1e-4 * np.abs(whole).max())
    assert not np.allclose(call(seed=8), whole)


def test_seeded_draws_depend_on_the_example_index(f, net):
    x, b, t, m = f["x"], f["baselines"], f["target"], f["superpixels"]
    whole = sa.shapley_value_sampling(net, x, b, feature_mask=m, target=t, n_samples=4, seed=3)
    tail = sa.shapley_value_sampling(net, x[1:], b[1:], feature_mask=m, target=t[1:], n_samples=4, seed=3,
                                     first_example=1)
    np.testing.assert_allclose(tail, whole[1:], atol=1e-5 * np.abs(whole).max())


def test_kernel_shap_enumeration_is_exact_shapley(net, f):
    """Four 4×8 blocks: 2^4 − 2 = 14 coalitions enumerated; compare with Shapley values by brute force."""
    import itertools
    from math import factorial

    x, b = f["x"][:1], f["baselines"][:1]
    mask = np.arange(4).reshape(1, 1, 2, 2).repeat(4, 2).repeat(4, 3)
    phi = sa.kernel_shap(net, x, b, feature_mask=mask, target=1, n_samples=14)

    def value(subset):
        keep = np.isin(np.broadcast_to(mask, x.shape), list(subset))
        return float(net.forward(np.where(keep, x, b))[0, 1])

    exact = np.zeros(4)
    for j in range(4):
        others = [k for k in range(4) if k != j]
        for r in range(4):
            for s in itertools.combinations(others, r):
                w = factorial(r) * factorial(4 - r - 1) / factorial(4)
                exact[j] += w * (value(s + (j,)) - value(s))
    got = np.array([phi[0][np.broadcast_to(mask, x.shape)[0] == j][0] for j in range(4)])
    np.testing.assert_allclose(got, exact, atol=1e-5)


def test_argument_errors(f, net):
    x, t = f["x"], f["target"]
    cases = [
        (lambda: sa.occlusion(net, x, (1, 9, 3), target=t), SA_ERR_INVALID_ARGUMENT, "sliding_window_shapes"),
        (lambda: sa.occlusion(net, x, (1, 2), target=t), SA_ERR_INVALID_ARGUMENT, "sliding_window_shapes"),
        (lambda: sa.occlusion(net, x, (1, 2, 2), strides=3, target=t), SA_ERR_INVALID_ARGUMENT, "strides"),
        (lambda: sa.feature_ablation(net, x, feature_mask=np.zeros((2, 8, 9), np.int64), target=t), SA_ERR_SHAPE,
         "feature_mask"),
        (lambda: sa.feature_ablation(net, x, feature_mask=np.full((1, 8, 8), 2), target=t), SA_ERR_INVALID_ARGUMENT,
         "contiguous"),
        (lambda: sa.feature_ablation(net, x, feature_mask=np.full((8, 8), -1), target=t), SA_ERR_INVALID_ARGUMENT,
         "feature_mask"),
        (lambda: sa.feature_ablation(net, x, feature_mask=np.zeros((8, 8)), target=t), SA_ERR_INVALID_ARGUMENT,
         "feature_mask"),
        (lambda: sa.shapley_value_sampling(net, x, n_samples=0, target=t), SA_ERR_INVALID_ARGUMENT, "n_samples"),
        (lambda: sa.kernel_shap(net, x, n_samples=0, target=t), SA_ERR_INVALID_ARGUMENT, "n_samples"),
        (lambda: sa.lime(net, x, n_samples=-1, target=t), SA_ERR_INVALID_ARGUMENT, "n_samples"),
        (lambda: sa.lime(net, x, similarity=0.0, target=t), SA_ERR_INVALID_ARGUMENT, "similarity"),
        (lambda: sa.lime(net, x, surrogate="ridge", target=t), SA_ERR_UNKNOWN_ENUM, "surrogate"),
        (lambda: sa.shapley_value_sampling(net, x, feature_mask=f["superpixels"], target=t,
                                           permutations=np.zeros((2, 16), np.int64)), SA_ERR_INVALID_ARGUMENT,
         "permutations"),
        (lambda: sa.kernel_shap(net, x, feature_mask=f["superpixels"], target=t,
                                coalitions=np.full((4, 16), 2)), SA_ERR_INVALID_ARGUMENT, "coalitions"),
        (lambda: sa.kernel_shap(net, x, feature_mask=f["superpixels"], target=t,
                                coalitions=np.ones((4, 15), np.uint8)), SA_ERR_SHAPE, "coalitions"),
        (lambda: sa.feature_permutation(net, x[:1], target=0), SA_ERR_INVALID_ARGUMENT, "at least 2"),
        (lambda: sa.feature_ablation(net, np.where(x == x.max(), np.nan, x), target=t), SA_ERR_NON_FINITE, "x"),
        (lambda: sa.occlusion(net, x, (1, 2, 2), baselines=np.nan, target=t), SA_ERR_NON_FINITE, "baselines"),
        (lambda: sa.feature_ablation(net, x, target=3), SA_ERR_OUT_OF_RANGE, "target"),
    ]
    for call, code, word in cases:
        with pytest.raises(sa.SwiftAttrError) as e:
            call()
        assert e.value.code == code, (word, e.value.code, str(e.value))
        assert word in str(e.value), (word, str(e.value))


def test_kernel_shap_with_weights_equals_shaps_solve(f, net):
    """shap's KernelExplainer.solve (l1_reg=False), transcribed: eliminate the last feature with the efficiency
    constraint and solve the kernelWeights-weighted normal equations. Given shap's coalitions and weights,
    kernel_shap must give the same φ (float32 outputs, double solve: 1e-4 of max|φ|)."""
    x, b, m = f["x"][:1], f["baselines"][:1], f["superpixels"]
    rng = np.random.default_rng(5)
    z = (rng.random((40, 16)) < 0.5).astype(np.uint8)
    z[0], z[1] = 1, 0  # a full and an empty coalition: skipped by both (shap never samples them)
    w = rng.random(40) + 0.1
    phi = sa.kernel_shap(net, x, b, feature_mask=m, target=2, coalitions=z, coalition_weights=w)
    z, w = z[2:], w[2:]
    ids = np.broadcast_to(m, (1,) + x.shape[1:])[0]
    keep = z[:, ids]  # (K, 2, 8, 8): the coalition's features taken from x
    ey = net.forward(np.where(keep, x, b).astype(np.float32))[:, 2].astype(np.float64)
    fx, fnull = float(net.forward(x)[0, 2]), float(net.forward(b)[0, 2])
    y = ey - fnull - z[:, -1] * (fx - fnull)
    design = (z[:, :-1].astype(np.float64) - z[:, -1:])
    weighted = w[:, None] * design
    head = np.linalg.solve(design.T @ weighted, weighted.T @ y)
    expected = np.append(head, (fx - fnull) - head.sum())
    got = np.array([phi[0][ids == k][0] for k in range(16)])
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())


def test_kernel_shap_weight_errors(f, net):
    x, t, m = f["x"], f["target"], f["superpixels"]
    z = np.eye(16, dtype=np.uint8)
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.kernel_shap(net, x, feature_mask=m, target=t, coalitions=z, coalition_weights=np.ones(15))
    assert e.value.code == SA_ERR_SHAPE and "coalition_weights" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.kernel_shap(net, x, feature_mask=m, target=t, coalitions=z, coalition_weights=-np.ones(16))
    assert e.value.code == SA_ERR_INVALID_ARGUMENT and "coalition_weights" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.kernel_shap(net, x, feature_mask=m, target=t, coalition_weights=np.ones(16))
    assert "coalition_weights" in str(e.value)

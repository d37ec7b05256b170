"""swiftattr.captum without torch: a swiftattr Network in, numpy out, and every unsupported Captum argument
refused by name. The snippets from Captum's tutorials are in test_captum_snippets.py (they need torch)."""
import numpy as np
import pytest

import swiftattr as sa
import swiftattr.captum as sc
from conftest import optional_import

def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else t


def close(a, b, rtol=1e-4):
    a, b = np.asarray(_np(a), dtype=np.float64), np.asarray(_np(b), dtype=np.float64)
    scale = max(np.abs(b).max(), 1e-6)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.abs(a - b).max() <= rtol * scale, np.abs(a - b).max() / scale


# ------------------------------------------------------------------ without torch: errors on a Network


def _mlp():
    rng = np.random.default_rng(0)
    return sa.Sequential([sa.Linear(rng.normal(size=(4, 3)).astype(np.float32), np.zeros(4, np.float32)), sa.ReLU(),
                          sa.Linear(rng.normal(size=(2, 4)).astype(np.float32), np.zeros(2, np.float32))])


def test_adapter_takes_a_swiftattr_network_and_returns_numpy_for_numpy():
    net = _mlp()
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    phi, delta = sc.IntegratedGradients(net).attribute(x, target=1, return_convergence_delta=True)
    close(phi, sa.integrated_gradients(net, x, target=1))
    assert isinstance(phi, np.ndarray) and delta.shape == (5,)
    assert np.abs(delta).max() < 1e-4


@pytest.mark.parametrize("call, name", [
    (lambda net, x: sc.Saliency(net).attribute(x, target=0, additional_forward_args=(1,)), "additional_forward_args"),
    (lambda net, x: sc.Saliency(net).attribute((x, x), target=0), "inputs"),
    (lambda net, x: sc.Saliency(net).attribute(x, target=(0, 1)), "target"),
    (lambda net, x: sc.DeepLift(net).attribute(x, target=0, custom_attribution_func=lambda *a: a), "custom_attribution_func"),
    (lambda net, x: sc.GradientShap(net).attribute(x, np.zeros((2, 3), np.float32), stdevs=0.1, target=0), "stdevs"),
    (lambda net, x: sc.Lime(net, interpretable_model=object()), "interpretable_model"),
    (lambda net, x: sc.LayerIntegratedGradients(net, 0, multiply_by_inputs=False), "multiply_by_inputs"),
])
def test_unsupported_arguments_raise_naming_them(call, name):
    net = _mlp()
    x = np.ones((2, 3), np.float32)
    with pytest.raises(sa.SwiftAttrError, match=name):
        call(net, x)


def test_a_plain_callable_is_refused_with_a_clear_error():
    optional_import("torch")
    with pytest.raises(sa.SwiftAttrError, match="forward_func"):
        sc.Saliency(lambda x: x)




# ------------------------------------------------------------------ bad input: named, never a silent choice
def test_several_tensors_are_refused_naming_the_argument():
    net = _mlp()
    x = np.ones((2, 3), np.float32)
    m = np.zeros((1, 3), np.int64)
    with pytest.raises(sa.SwiftAttrError, match="feature_mask"):
        sc.FeatureAblation(net).attribute(x, target=0, feature_mask=(m, m))
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sc.IntegratedGradients(net).attribute(x, baselines=(x, x), target=0)
    # One window shape per input tensor: two for one input is not the first of them, silently.
    with pytest.raises(sa.SwiftAttrError, match="sliding_window_shapes"):
        sc.Occlusion(net).attribute(x, sliding_window_shapes=((1,), (2,)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="strides"):
        sc.Occlusion(net).attribute(x, sliding_window_shapes=(1,), strides=((1,), (1,)), target=0)
    np.testing.assert_array_equal(sc.Occlusion(net).attribute(x, sliding_window_shapes=((1,),), target=0),
                                  sc.Occlusion(net).attribute(x, sliding_window_shapes=(1,), target=0))


def test_bad_values_are_refused_by_name():
    net = _mlp()
    x = np.ones((2, 3), np.float32)
    with pytest.raises(sa.SwiftAttrError, match="non-finite") as e:  # C names its argument x
        sc.Saliency(net).attribute(np.full((2, 3), np.nan, np.float32), target=0)
    assert e.value.code == sa._ffi.SA_ERR_NON_FINITE
    with pytest.raises(sa.SwiftAttrError, match="inputs"):
        sc.Saliency(net).attribute(x[:0], target=0)
    with pytest.raises(sa.SwiftAttrError, match="target"):
        sc.Saliency(net).attribute(x, target=[0, 1, 1])
    with pytest.raises(sa.SwiftAttrError, match="method"):
        sc.IntegratedGradients(net).attribute(x, target=0, method="simpson")
    with pytest.raises(sa.SwiftAttrError, match="return_convergence_delta"):
        sc.GradientShap(net).attribute(x, np.zeros((2, 3), np.float32), target=0, return_convergence_delta="yes")
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sc.GradientShap(net).attribute(x, np.zeros((2, 4), np.float32), target=0, return_convergence_delta=True)


# ------------------------------------------------------------------ return_input_shape=False (KernelShap, Lime)
def _linear():
    return sa.Sequential([sa.Linear(np.array([[1.0, -2.0, 3.0, 0.5], [0.0, 1.0, 1.0, 1.0]], np.float32))])


def test_return_input_shape_false_gives_one_coefficient_per_feature():
    """Captum's form: (n, M) coefficients, M = max − min of the mask ids + 1 (Captum shifts the ids to start at
    0, so a mask of ids 1 and 2 is taken). On a linear model KernelSHAP's regression is exact for any full-rank coalitions, so the
    coefficient of a group is the sum of w_i x_i over it; each equals the value every element of the group
    carries in the input-shaped result."""
    net, x = _linear(), np.array([[1.0, 1.0, 2.0, -1.0], [0.5, -1.0, 0.0, 2.0]], np.float32)
    w = np.array([1.0, -2.0, 3.0, 0.5])
    ks = sc.KernelShap(net)
    plain = ks.attribute(x, target=0, n_samples=64, seed=0, return_input_shape=False)
    close(plain, w * x)  # no mask: every element a feature, (n, d)
    mask = np.array([[1, 1, 2, 2]])  # ids 1 and 2: shifted to 0 and 1, as Captum does
    coef = ks.attribute(x, target=0, n_samples=64, seed=0, feature_mask=mask, return_input_shape=False)
    groups = np.stack([(w * x)[:, :2].sum(1), (w * x)[:, 2:].sum(1)], axis=1)
    close(coef, groups, rtol=1e-4)
    full = ks.attribute(x, target=0, n_samples=64, seed=0, feature_mask=mask)
    np.testing.assert_array_equal(coef[:, [0, 0, 1, 1]], full)
    np.testing.assert_array_equal(full, ks.attribute(x, target=0, n_samples=64, seed=0, feature_mask=mask - 1))
    lime = sc.Lime(net)
    per_example = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
    coef = lime.attribute(x, target=1, n_samples=40, seed=1, feature_mask=per_example, return_input_shape=False)
    full = lime.attribute(x, target=1, n_samples=40, seed=1, feature_mask=per_example)
    assert coef.shape == (2, 2)
    np.testing.assert_array_equal(coef[0, [0, 0, 1, 1]], full[0])
    np.testing.assert_array_equal(coef[1, [0, 1, 1, 1]], full[1])
    with pytest.raises(sa.SwiftAttrError, match="return_input_shape"):
        ks.attribute(x, target=0, return_input_shape="no")


def test_interpretable_masks_and_flags_are_checked_before_any_sample(monkeypatch):
    """A bool or float feature_mask is a SwiftAttrError naming it (not numpy's TypeError from shifting the
    ids), and a bad return_input_shape is refused before KernelShap or Lime evaluates anything."""
    net, x = _linear(), np.ones((2, 4), np.float32)
    for cls in (sc.KernelShap, sc.Lime):
        for bad in (np.array([[True, False, True, False]]), np.array([[0.0, 0.0, 1.0, 1.0]])):
            with pytest.raises(sa.SwiftAttrError, match="feature_mask"):
                cls(net).attribute(x, target=0, n_samples=8, feature_mask=bad)
    calls = []
    monkeypatch.setattr(sa, "kernel_shap", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(sa, "lime", lambda *a, **k: calls.append(1))
    for cls in (sc.KernelShap, sc.Lime):
        with pytest.raises(sa.SwiftAttrError, match="return_input_shape"):
            cls(net).attribute(x, target=0, n_samples=8, return_input_shape=1)
    assert calls == []


def test_return_input_shape_false_matches_captum_live():
    """Captum's own KernelShap on the same linear model and grouping (skipped without torch and captum)."""
    torch = optional_import("torch")
    captum_attr = optional_import("captum.attr")
    import warnings
    model = torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0, 3.0, 0.5], [0.0, 1.0, 1.0, 1.0]]))
    x, mask = torch.tensor([[1.0, 1.0, 2.0, -1.0], [0.5, -1.0, 0.0, 2.0]]), torch.tensor([[1, 1, 2, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = captum_attr.KernelShap(model).attribute(x, target=0, n_samples=64, feature_mask=mask, return_input_shape=False)
    got = sc.KernelShap(model).attribute(x, target=0, n_samples=64, seed=0, feature_mask=mask, return_input_shape=False)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    close(got, want, rtol=1e-3)  # Captum's Lasso-free least squares in float32: ~1e-5 of the scale


"""Captum's own tutorial snippets with only the import changed (swiftattr.captum) give Captum's numbers.

Needs torch and captum (skipped without them, as in CI). Tolerances: both libraries compute in float32
over a handful of layers; 1e-4 relative to the attributions' scale covers the different summation orders
(a few ulps per GEMM, ~1e-6 relative). Sampling methods are compared where the draws do not matter (exact
KernelSHAP over every coalition, Shapley sampling on an additive model) or on their identities."""
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



torch = optional_import("torch")
captum_attr = optional_import("captum.attr")
# Captum's own notices on its reference computations (inputs set to require grad, hooks on activations) are
# not this suite's: silenced so that `pytest -W error::UserWarning` tests swiftattr alone.
pytestmark = [pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients:UserWarning"),
              pytest.mark.filterwarnings("ignore:Setting forward, backward hooks and attributes on non-linear:UserWarning"),
              pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU activations:UserWarning")]
nn = torch.nn


class ToyModel(nn.Module):
    """The model of Captum's README and getting-started tutorial."""

    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(3, 3)
        self.relu = nn.ReLU()
        self.lin2 = nn.Linear(3, 2)
        self.lin1.weight = nn.Parameter(torch.arange(-4.0, 5.0).view(3, 3))
        self.lin1.bias = nn.Parameter(torch.zeros(1, 3).view(3))
        self.lin2.weight = nn.Parameter(torch.arange(-3.0, 3.0).view(2, 3))
        self.lin2.bias = nn.Parameter(torch.ones(1, 2).view(2))

    def forward(self, x):
        return self.lin2(self.relu(self.lin1(x)))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


def _both(name):
    return getattr(captum_attr, name), getattr(sc, name)


@pytest.fixture
def toy():
    torch.manual_seed(123)
    model = ToyModel().eval()
    inp = torch.rand(2, 3)
    baseline = torch.zeros(2, 3)
    return model, inp, baseline


def test_readme_integrated_gradients_snippet(toy):
    model, input, baseline = toy
    results = []
    for IntegratedGradients in _both("IntegratedGradients"):
        ig = IntegratedGradients(model)
        attributions, delta = ig.attribute(input, baseline, target=0, return_convergence_delta=True)
        results.append((attributions, delta))
    (a0, d0), (a1, d1) = results
    assert isinstance(a1, torch.Tensor) and a1.dtype == a0.dtype and a1.shape == a0.shape
    close(a1, a0)
    assert d1.shape == d0.shape and float(d1.abs().max()) < 1e-4


def test_readme_deeplift_snippet(toy):
    model, input, baseline = toy
    (a0, d0), (a1, d1) = [DL(model).attribute(input, baseline, target=0, return_convergence_delta=True)
                          for DL in _both("DeepLift")]
    close(a1, a0)
    assert float(d1.abs().max()) < 1e-4 and float(d0.abs().max()) < 1e-4  # both sum to the difference


def test_readme_deepliftshap_and_gradientshap_snippets(toy):
    model, input, _ = toy
    baselines = torch.randn(4, 3)
    a0 = captum_attr.DeepLiftShap(model).attribute(input, baselines, target=0)
    a1 = sc.DeepLiftShap(model).attribute(input, baselines, target=0)
    close(a1, a0)
    # GradientShap draws its own references and α's: compare the completeness identity in expectation
    phi, delta = sc.GradientShap(model).attribute(input, baselines, n_samples=2000, target=0, return_convergence_delta=True)
    assert phi.shape == input.shape and float(delta.abs().max()) < 0.05 * float(model(input).detach()[:, 0].abs().max() + 1)


def test_saliency_and_input_x_gradient_snippets(toy):
    model, input, _ = toy
    for name, kw in (("Saliency", {}), ("Saliency", {"abs": False}), ("InputXGradient", {})):
        ref, ours = _both(name)
        close(ours(model).attribute(input, target=1, **kw), ref(model).attribute(input, target=1, **kw))


def test_one_element_tuple_inputs_give_a_tuple(toy):
    model, input, baseline = toy
    out = sc.IntegratedGradients(model).attribute((input,), (baseline,), target=0)
    ref = captum_attr.IntegratedGradients(model).attribute((input,), (baseline,), target=0)
    assert isinstance(out, tuple) and len(out) == 1
    close(out[0], ref[0])


def test_feature_ablation_snippet_with_a_feature_mask(toy):
    model, input, _ = toy
    mask = torch.tensor([[0, 0, 1]])
    ref, ours = _both("FeatureAblation")
    close(ours(model).attribute(input, target=1, feature_mask=mask), ref(model).attribute(input, target=1, feature_mask=mask))


def test_occlusion_snippet_on_an_image_model():
    model = SmallCNN().eval()
    x = torch.rand(3, 1, 8, 8)
    ref, ours = _both("Occlusion")
    kw = dict(sliding_window_shapes=(1, 3, 3), strides=(1, 2, 2), target=2, baselines=0)
    close(ours(model).attribute(x, **kw), ref(model).attribute(x, **kw))


def test_integrated_gradients_on_an_image_model_and_target_per_example():
    model = SmallCNN().eval()
    x = torch.rand(3, 1, 8, 8)
    target = torch.tensor([0, 2, 1])
    ref, ours = _both("IntegratedGradients")
    close(ours(model).attribute(x, target=target, n_steps=20), ref(model).attribute(x, target=target, n_steps=20))


def test_shapley_value_sampling_on_an_additive_model_is_exact_for_any_order():
    model = nn.Sequential(nn.Linear(4, 1)).eval()
    x = torch.rand(2, 4)
    ref, ours = _both("ShapleyValueSampling")
    close(ours(model).attribute(x, target=0, n_samples=3), ref(model).attribute(x, target=0, n_samples=3))


def test_kernel_shap_with_every_coalition_is_exact(toy):
    model, input, _ = toy
    phi = sc.KernelShap(model).attribute(input, target=0, n_samples=200)
    exact = captum_attr.ShapleyValueSampling(model).attribute(input, target=0, n_samples=200)  # 3! orders: exact
    close(phi, exact, rtol=2e-2)


def test_conversion_follows_in_place_weight_updates(toy):
    model, input, baseline = toy
    ig = sc.IntegratedGradients(model)
    before = ig.attribute(input, baseline, target=0)
    with torch.no_grad():
        model.lin2.weight.mul_(2.0)  # an optimiser step: same tensor, new version
    after = ig.attribute(input, baseline, target=0)
    close(after, captum_attr.IntegratedGradients(model).attribute(input, baseline, target=0))
    close(after, 2 * before)


def test_results_keep_the_input_dtype(toy):
    model, input, baseline = toy
    out = sc.Saliency(model.double()).attribute(input.double(), target=0)
    assert out.dtype == torch.float64


def test_integrated_gradients_without_multiplying_by_inputs(toy):
    model, input, baseline = toy
    ref = captum_attr.IntegratedGradients(model, multiply_by_inputs=False).attribute(input, baseline, target=0)
    ours = sc.IntegratedGradients(model, multiply_by_inputs=False).attribute(input, baseline, target=0)
    close(ours, ref)


@pytest.fixture
def cnn():
    torch.manual_seed(5)
    return SmallCNN().eval(), torch.rand(3, 1, 8, 8)


def test_layer_gradcam_snippet(cnn):
    model, x = cnn
    for relu in (False, True):
        ref = captum_attr.LayerGradCam(model, model.conv2).attribute(x, target=1, relu_attributions=relu)
        ours = sc.LayerGradCam(model, model.conv2).attribute(x, target=1, relu_attributions=relu)
        close(ours, ref)


def test_layer_integrated_gradients_and_conductance_snippets(cnn):
    model, x = cnn
    for name in ("LayerIntegratedGradients", "LayerConductance"):
        ref_cls, our_cls = _both(name)
        ref, d0 = ref_cls(model, model.conv1).attribute(x, target=2, n_steps=16, return_convergence_delta=True)
        ours, d1 = our_cls(model, model.conv1).attribute(x, target=2, n_steps=16, return_convergence_delta=True)
        close(ours, ref)
        close(d1, d0, rtol=1e-3) if float(d0.abs().max()) > 1e-3 else None


def test_layer_gradient_x_activation_and_neuron_ig_snippets(cnn):
    model, x = cnn
    close(sc.LayerGradientXActivation(model, model.relu1).attribute(x, target=0),
          captum_attr.LayerGradientXActivation(model, model.relu1).attribute(x, target=0))
    close(sc.NeuronIntegratedGradients(model, model.conv2).attribute(x, (1, 2, 3), n_steps=16),
          captum_attr.NeuronIntegratedGradients(model, model.conv2).attribute(x, (1, 2, 3), n_steps=16))


def test_noise_tunnel_snippet_without_noise_is_the_wrapped_method(cnn):
    model, x = cnn
    ig = sc.IntegratedGradients(model)
    out = sc.NoiseTunnel(ig).attribute(x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=1, n_steps=16)
    close(out, captum_attr.IntegratedGradients(model).attribute(x, target=1, n_steps=16))
    var = sc.NoiseTunnel(sc.Saliency(model)).attribute(x, nt_type="vargrad", nt_samples=4, stdevs=0.0, target=1)
    assert float(var.abs().max()) < 1e-10
    noisy = sc.NoiseTunnel(sc.Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=4, stdevs=0.2, target=1,
                                                         seed=3)
    assert noisy.shape == x.shape and float((noisy - sc.Saliency(model).attribute(x, target=1)).abs().max()) > 1e-4


def test_guided_backprop_deconvolution_and_guided_gradcam_snippets(cnn):
    model, x = cnn
    for name in ("GuidedBackprop", "Deconvolution"):
        ref, ours = _both(name)
        close(ours(model).attribute(x, target=2), ref(model).attribute(x, target=2))
    close(sc.GuidedGradCam(model, model.conv2).attribute(x, target=2),
          captum_attr.GuidedGradCam(model, model.conv2).attribute(x, target=2))


def test_lrp_snippets_with_captum_rules_on_modules():
    from captum.attr._utils.lrp_rules import EpsilonRule, GammaRule

    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.rand(4, 6)
    ref, d0 = captum_attr.LRP(model).attribute(x, target=1, return_convergence_delta=True)
    ours, d1 = sc.LRP(model).attribute(x, target=1, return_convergence_delta=True)
    close(ours, ref)
    close(d1, d0, rtol=1e-3)
    model[0].rule = GammaRule(gamma=0.5)
    model[2].rule = EpsilonRule(epsilon=0.1)
    ours = sc.LRP(model).attribute(x, target=1)  # first: Captum deletes every module's rule after its call
    close(ours, captum_attr.LRP(model).attribute(x, target=1))

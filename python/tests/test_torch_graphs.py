"""Graph models from torch: forward and attributions against torch and Captum (fixtures/graph_captum.npz, made
by fixtures/make_graph_fixtures.py; the tests that read only the fixture run without torch), the conversion
of any traceable module (functional ops, residual adds, concatenations, reshapes), unsupported-op errors,
LazyNetwork (one plan per input shape), torch tensors as inputs and forward's output shape."""
import copy
import importlib.util
import os
import pickle

import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = np.load(os.path.join(HERE, "fixtures", "graph_captum.npz"))
CASES = ["resnet", "densenet", "twobranch"]


def _net(name):
    return sa.model._network_from_model_bytes(FIXTURE[f"{name}_model"].tobytes())


def _case(name):
    return (FIXTURE[f"{name}_{k}"] for k in ("x", "b", "t"))


def _script():
    """The fixture script as a module (its models; torch is imported only when they are built)."""
    spec = importlib.util.spec_from_file_location("make_graph_fixtures", os.path.join(HERE, "fixtures", "make_graph_fixtures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _within(actual, expected, rel):
    """max |actual − expected| ≤ rel · max |expected| (a tolerance relative to the attribution's scale)."""
    err, scale = np.abs(actual - expected).max(), np.abs(expected).max()
    assert scale > 0
    assert err <= rel * scale, f"max error {err:.3e} > {rel:g} · {scale:.3e}"


@pytest.mark.parametrize("name", CASES)
def test_fixture_graphs_hold_add_and_concat(name):
    kinds = _net(name).layer_kinds
    assert ("add" in kinds) or ("concat" in kinds)
    if name == "resnet":  # a strided 1×1 downsample + BatchNorm, an identity shortcut, a max-pool after a ReLU
        assert kinds.count("add") == 2 and "batchnorm" in kinds and "maxpool2d" in kinds
    if name == "twobranch":
        assert "add" in kinds and "concat" in kinds


@pytest.mark.parametrize("name", CASES)
def test_forward_equals_torch(name):
    # torch's output in float64 of the float32 weights; swiftattr computes in float32. Each output is ~10
    # layers of dot products of length ≤ 90 (a 3×3 conv over 10 channels): a float32 error of ~√90·6e-8
    # ≈ 6e-7 relative per layer, ~1e-5 relative of the output scale over the depth (measured: 3e-8 absolute).
    x, _, _ = _case(name)
    expected = FIXTURE[f"{name}_out"]
    out = _net(name).forward(x)
    assert out.shape == expected.shape
    _within(out, expected, 1e-5)


@pytest.mark.parametrize("name", CASES)
def test_integrated_gradients_equal_captum(name):
    # Same rule (Gauss-Legendre, the same n_steps, baselines and targets); Captum in float64. The float32
    # gradients carry ~1e-6 relative error per step (the forward bound above, twice for the backward pass),
    # the weighted sum of 32 steps does not amplify it: 1e-4 of max|φ| leaves a margin of ~50.
    x, b, t = _case(name)
    phi = sa.integrated_gradients(_net(name), x, baselines=b, target=t, n_steps=int(FIXTURE["n_steps"]),
                                  method="gausslegendre")
    assert phi.shape == x.shape
    _within(phi, FIXTURE[f"{name}_ig"], 1e-4)


@pytest.mark.parametrize("name", CASES)
def test_deeplift_equals_captum(name):
    # Captum's DeepLift (Rescale); with torch 2.x it routes a max-pool after a ReLU by the gradient, so
    # maxpool="gradient". Tolerance as for IG (one forward and one backward pass in float32).
    x, b, t = _case(name)
    phi, delta = sa.deeplift(_net(name), x, baselines=b, target=t, maxpool="gradient", return_convergence_delta=True)
    _within(phi, FIXTURE[f"{name}_dl"], 1e-4)


def test_forward_keeps_the_output_shape():
    """An image-valued output stays (n, C, H, W); a vector output is (n, F)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    net = sa.Sequential([sa.Conv2d(w, np.zeros(3, np.float32), padding=1), sa.ReLU()], input_shape=(2, 5, 4))
    x = rng.standard_normal((6, 2, 5, 4)).astype(np.float32)
    out = net.forward(x)
    assert out.shape == (6, 3, 5, 4) and net.output_shape == (3, 5, 4)
    np.testing.assert_array_equal(out.reshape(6, -1), net.activations(x, net.num_layers))
    weights = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(sa.gradient(net, x, weights), sa.gradient(net, x, weights.reshape(6, -1)))
    assert _net("resnet").forward(FIXTURE["resnet_x"]).shape == (5, 3)


# -- with torch ---------------------------------------------------------------------------------------------

def _torch():
    return optional_import("torch")


def _models():
    """benchmarks/models.py (randomize_batchnorm, resnet_torch)."""
    import sys

    sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks"))
    import models

    return models


@pytest.mark.parametrize("name", CASES)
def test_conversion_reproduces_the_fixture(name):
    """from_torch of the fixture's module (rebuilt from its seeds) is the stored network: the same layers
    compute the same floats (bit-exact: the same computation repeats), and a LazyNetwork plans it."""
    _torch()
    mod = _script().build_models()[name]
    x = FIXTURE[f"{name}_x"]
    stored = _net(name).forward(x)
    lazy = sa.from_torch(mod)
    assert isinstance(lazy, sa.LazyNetwork)
    np.testing.assert_array_equal(lazy.forward(x), stored)
    np.testing.assert_array_equal(sa.from_torch(mod, input_shape=x.shape[1:]).forward(x), stored)


def test_lazy_network_plans_per_input_shape():
    torch = _torch()
    mod = _script().build_models()["resnet"]
    net = sa.from_torch(mod)
    assert net.plans == {}
    for hw in [(8, 8), (12, 10), (8, 8)]:
        x = torch.randn(3, 3, *hw)
        with torch.no_grad():
            expected = mod(x).numpy()
        _within(net.forward(x), expected, 1e-5)  # as test_forward_equals_torch (float32 vs float32 here)
    assert sorted(net.plans) == [(3, 8, 8), (3, 12, 10)]
    assert net.for_shape((3, 8, 8)) is net.plans[(3, 8, 8)]
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 10)).astype(np.float32)
    phi = sa.integrated_gradients(net, x, target=1, n_steps=8)
    np.testing.assert_array_equal(phi, sa.integrated_gradients(net.for_shape((3, 12, 10)), x, target=1, n_steps=8))
    for other in (copy.copy(net), copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(other.forward(x), net.forward(x))
        assert sorted(other.plans) == sorted(net.plans)
    with pytest.raises(sa.SwiftAttrError, match="for_shape"):
        net.save("/tmp/never-written.sam")
    with pytest.raises(sa.SwiftAttrError, match="batch"):
        net.forward(np.zeros(3, np.float32))


def test_functional_forms_and_reshapes():
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.c3 = nn.Conv2d(8, 3, 1)
            self.bn = nn.BatchNorm2d(3)
            self.id = nn.Identity()
            self.l1 = nn.Linear(3 * 2 * 2, 6)
            self.l2 = nn.Linear(6, 6)
            self.l3 = nn.Linear(15, 4)

        def forward(self, x):
            h = F.leaky_relu(self.c1(x), 0.1)
            r = torch.relu(self.c2(h))
            r += h  # operator.iadd
            g = torch.cat([torch.add(r, h), F.elu(h, alpha=0.5)], dim=1)
            g = F.max_pool2d(torch.sigmoid(self.bn(self.c3(g))), 2)
            g = F.avg_pool2d(self.id(F.softplus(g, beta=2.0)), kernel_size=2, stride=2)
            v = F.dropout(g.view(g.size(0), -1), 0.5, training=False)
            w = torch.tanh(self.l1(v.reshape(v.shape[0], -1)))
            u = self.l2(w).relu() + w
            z = torch.cat((u, w, torch.flatten(F.adaptive_avg_pool2d(g, 1), 1)), 1)
            return F.softmax(self.l3(z), dim=1)

    torch.manual_seed(0)
    mod = Net().eval()
    _models().randomize_batchnorm(mod, torch.Generator().manual_seed(1))
    x = torch.randn(4, 2, 8, 8)
    with torch.no_grad():
        expected = mod(x).numpy()
    net = sa.from_torch(mod)
    _within(net.forward(x), expected, 1e-5)
    kinds = net.for_shape((2, 8, 8)).layer_kinds
    for k in ("leaky_relu", "relu", "add", "concat", "elu", "sigmoid", "maxpool2d", "softplus", "avgpool2d",
              "flatten", "tanh", "softmax", "batchnorm", "global_avgpool"):
        assert k in kinds, k


def test_views_back_to_images():
    """x.view(N, C, H, W), x.reshape(N, C, L) and nn.Unflatten(1, sizes) become Reshape nodes."""
    torch = _torch()
    nn = torch.nn

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(5, 2 * 4 * 4)
            self.c = nn.Conv2d(2, 3, 3, padding=1)
            self.u = nn.Unflatten(1, (3, 16))
            self.c1 = nn.Conv1d(3, 2, 3)

        def forward(self, x):
            h = torch.relu(self.l(x)).view(x.size(0), 2, 4, 4)
            h = self.u(torch.tanh(self.c(h)).flatten(1))
            return self.c1(h.reshape(h.shape[0], 3, 16)).flatten(1)

    torch.manual_seed(0)
    mod = Decoder().eval()
    x = torch.randn(3, 5)
    with torch.no_grad():
        expected = mod(x).numpy()
    net = sa.from_torch(mod)
    _within(net.forward(x), expected, 1e-5)
    assert net.layer_kinds.count("reshape") == 3


def test_one_dimensional_layers_and_batchnorm_in_train_mode():
    """Conv1d, pools, AdaptiveAvgPool1d(1), BatchNorm1d; a module left in train mode converts with its running
    statistics (eval semantics), and Dropout is the identity."""
    torch = _torch()
    nn = torch.nn
    mod = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2),
                        nn.Conv1d(4, 4, 3), nn.AvgPool1d(2), nn.ELU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(4, 3))
    _models().randomize_batchnorm(mod, torch.Generator().manual_seed(2))
    mod.train()
    net = sa.from_torch(mod)
    x = torch.randn(5, 2, 12)
    with torch.no_grad():
        expected = mod.eval()(x).numpy()
    _within(net.forward(x), expected, 1e-5)


def test_unsupported_operations_name_the_op_and_module():
    torch = _torch()
    nn = torch.nn

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return torch.mul(self.fc(x), x)

    class Mul(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Gate()

        def forward(self, x):
            return self.block(x)

    with pytest.raises(sa.SwiftAttrError, match=r"unsupported operation torch\.mul at 'block' \(node mul\)"):
        sa.from_torch(Mul())

    class Broadcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)
            self.b = nn.Linear(4, 1)

        def forward(self, x):
            return self.a(x) + self.b(x)

    with pytest.raises(sa.SwiftAttrError, match=r"operator\.add at '<root>' \(node add\).*broadcasting"):
        sa.from_torch(Broadcast())

    mod3 = nn.Sequential(nn.Identity(), nn.Sequential(nn.Conv3d(1, 2, 3)))
    with pytest.raises(sa.SwiftAttrError, match=r"unsupported operation Conv3d at '1\.0' \(node _1_0\)"):
        sa.from_torch(mod3)

    class Scale(nn.Module):
        def forward(self, x):
            return x * 2.0

    with pytest.raises(sa.SwiftAttrError, match=r"unsupported operation operator\.mul"):
        sa.from_torch(Scale())

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) + 1.0

    with pytest.raises(sa.SwiftAttrError, match=r"operator\.add at '<root>'.*not a tensor"):
        sa.from_torch(Constant())

    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            h = self.fc(x)
            return self.relu(h) + h  # torch adds relu(h) to itself: h was overwritten

    with pytest.raises(sa.SwiftAttrError, match=r"ReLU at 'relu' \(node relu\): in place"):
        sa.from_torch(InPlace())

    class Untraceable(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(sa.SwiftAttrError, match="torch.fx cannot trace Untraceable"):
        sa.from_torch(Untraceable())


def test_torch_tensors_everywhere():
    """Tensors (float64, requiring grad) give the same numbers as the numpy float32 arrays they hold: the same
    computation repeats, so bit-exact. Results are numpy arrays of the input's shape."""
    torch = _torch()
    net = _net("resnet")
    x, b, t = _case("resnet")
    xt = torch.from_numpy(x).double().requires_grad_(True)
    bt, tt = torch.from_numpy(b), torch.from_numpy(t)
    np.testing.assert_array_equal(net.forward(xt), net.forward(x))
    np.testing.assert_array_equal(net(xt), net.forward(x))
    calls = [
        lambda X, B, T: sa.integrated_gradients(net, X, baselines=B, target=T, n_steps=4),
        lambda X, B, T: sa.saliency(net, X, target=T),
        lambda X, B, T: sa.input_x_gradient(net, X, target=T),
        lambda X, B, T: sa.expected_gradients(net, X, B, target=T, n_samples=3, seed=1),
        lambda X, B, T: sa.smoothgrad(net, X, target=T, n_samples=3, seed=1),
        lambda X, B, T: net.penultimate(X),
        lambda X, B, T: sa.gradient(net, X, np.ones((5, 3)) if isinstance(B, np.ndarray) else torch.ones(5, 3)),
    ]
    for call in calls:
        expected = call(x, b, t)
        got = call(xt, bt, tt)
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, expected)
    chain = sa.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)))
    xs = torch.randn(3, 4, requires_grad=True)
    np.testing.assert_array_equal(sa.deeplift(chain, xs, baselines=torch.zeros(4), target=torch.tensor(1)),
                                  sa.deeplift(chain, xs.detach().numpy(), baselines=np.zeros(4), target=1))
    np.testing.assert_array_equal(sa.deepshap(chain, xs, torch.randn(5, 4).numpy(), target=0).shape, (3, 4))
    H = torch.from_numpy(net.penultimate(x)).double().requires_grad_(True)
    fit = sa.bayesian_last_layer(H=H, y=torch.arange(5.0, dtype=torch.float64), task="regression")
    np.testing.assert_array_equal(fit.W_mean, sa.bayesian_last_layer(H=H.detach().numpy(), y=np.arange(5.0), task="regression").W_mean)
    with pytest.raises(sa.SwiftAttrError, match="dtype bool"):
        net.forward(torch.zeros(1, 3, 8, 8, dtype=torch.bool))
